//! Configuration → services → the running tasks (the Socket Mode loop, the job workers, the
//! features' background tasks, the HTTP sidecar, housekeeping), and the one shutdown path.
//! Only the command line (and tests) start the bot.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::Config;
use crate::dispatch::{Dispatcher, Router};
use crate::jobs::{self, Registry};
use crate::registry::Features;
use crate::server::SidecarState;
use crate::services::Services;
use crate::slack::socket::{SocketMode, SocketStatus};
use crate::store::Store;

/// A started bot.
pub struct Running {
    pub services: Arc<Services>,
    pub socket: SocketStatus,
    /// Where the sidecar listens (useful when `HTTP_ADDR` asked for port 0).
    pub http_addr: SocketAddr,
    jobs: Registry,
    shutdown: CancellationToken,
    task: JoinHandle<()>,
}

impl Running {
    /// Asks every part to stop; `stopped` waits for them.
    pub fn shutdown(&self) {
        self.shutdown.cancel();
    }

    pub async fn stopped(self) {
        let _ = self.task.await;
    }

    /// Runs every job due now, here, without waiting for a worker (a test hook).
    pub async fn run_due_jobs(&self) -> anyhow::Result<usize> {
        jobs::run_due(&self.services, &self.jobs).await
    }
}

/// Opens the database (migrating it), binds the sidecar, connects to Slack, starts workers
/// and the features' tasks.
pub async fn start(config: Config, features: Features) -> anyhow::Result<Running> {
    let listener = tokio::net::TcpListener::bind(config.http.addr)
        .await
        .with_context(|| format!("binding HTTP_ADDR {}", config.http.addr))?;
    let http_addr = listener.local_addr()?;
    let services = Arc::new(Services::build(config).await?);
    let socket = SocketStatus::default();
    let Features {
        routes,
        fallback,
        jobs: registry,
        tasks: feature_tasks,
        http,
    } = features;

    let mut router = Router::new(fallback);
    for (route, handler) in routes {
        router.add(route, handler);
    }
    let dispatcher = Arc::new(Dispatcher::new(services.clone(), router));
    let sidecar = SidecarState {
        store: services.store.clone(),
        socket: socket.clone(),
        metrics: crate::telemetry::metrics(),
        metrics_token: services.config.http.metrics_token.clone(),
        retention_days: services.config.retention.days,
        audit_days: services.config.retention.audit_days,
    };
    let mounted = http.into_iter().fold(axum::Router::new(), |all, routes| {
        all.merge(routes(services.clone()))
    });

    // The job gauges exist from the first scrape on (housekeeping refreshes them).
    crate::server::record_job_counts(&services.store).await;
    let shutdown = CancellationToken::new();
    let mut tasks = vec![
        tokio::spawn(
            SocketMode::new(
                services.slack.clone(),
                dispatcher.clone(),
                socket.clone(),
                services.config.slack.connections,
                services.config.slack.ping_interval,
            )
            .run(shutdown.clone()),
        ),
        tokio::spawn(jobs::run_workers(
            services.clone(),
            registry.clone(),
            services.config.jobs.workers,
            shutdown.clone(),
        )),
        tokio::spawn(crate::server::serve(
            listener,
            crate::server::router(
                sidecar,
                mounted,
                services.config.http.limits,
                services.config.http.guard.clone(),
            ),
            services.config.http.limits,
            shutdown.clone(),
        )),
        tokio::spawn(housekeeping(services.clone(), shutdown.clone())),
    ];
    for task in feature_tasks {
        tasks.push(tokio::spawn(task(services.clone(), shutdown.clone())));
    }
    info!(%http_addr, database = services.store.backend(), "started");
    let task = tokio::spawn(stop_after(tasks, dispatcher, services.store.clone()));
    Ok(Running {
        services,
        socket,
        http_addr,
        jobs: registry,
        shutdown,
        task,
    })
}

/// The one shutdown path: once every task has stopped (the sockets are closed), let the
/// envelopes already acked finish, then close the pool.
async fn stop_after(tasks: Vec<JoinHandle<()>>, dispatcher: Arc<Dispatcher>, store: Store) {
    for task in tasks {
        let _ = task.await;
    }
    dispatcher.drain(Duration::from_secs(10)).await;
    store.close().await;
    info!("stopped");
}

/// Small periodic chores: refresh the job gauges, forget old delivery keys.
async fn housekeeping(services: Arc<Services>, shutdown: CancellationToken) {
    let mut gauges = tokio::time::interval(Duration::from_secs(15));
    let mut prune = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = gauges.tick() => crate::server::record_job_counts(&services.store).await,
            _ = prune.tick() => {
                let cutoff = crate::store::now() - chrono::Duration::hours(24);
                if let Err(e) = services.store.prune_deliveries(cutoff).await {
                    warn!(error = %e, "could not prune delivery keys");
                }
            }
        }
    }
}

/// Resolves on ctrl-c or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    info!("shutting down");
}
