//! Assembly: the services every handler shares, and one start/stop path for the Socket Mode
//! listener, the job workers, the HTTP sidecar and the database pool.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::clients::fathom::Fathom;
use crate::clients::llm::{Anthropic, Llm};
use crate::config::Config;
use crate::crypto::Cipher;
use crate::handlers::{Dispatcher, Handler, Route, Router};
use crate::jobs::{self, Queue, Registry};
use crate::slack::api::{MorphismSlack, SlackApi};
use crate::slack::socket::{SocketMode, SocketStatus};
use crate::store::Store;

/// The services shared by handlers and jobs.
pub struct App {
    pub config: Config,
    pub store: Store,
    pub slack: Arc<dyn SlackApi>,
    pub cipher: Cipher,
    pub socket: SocketStatus,
    pub metrics: PrometheusHandle,
    pub queue: Queue,
    /// Names this process in job locks and leases.
    pub instance_id: String,
    pub fathom: Fathom,
    /// Tenants and users by Slack ids (created on first contact, cached briefly).
    pub people: crate::handlers::Directory,
    /// `None` without `ANTHROPIC_API_KEY`: drafts come from the template.
    pub llm: Option<Arc<dyn Llm>>,
}

/// Extra routes and job kinds (the features register theirs in `features`).
#[derive(Default)]
pub struct Extensions {
    pub routes: Vec<(Route, Arc<dyn Handler>)>,
    pub jobs: Registry,
}

/// A started bot.
pub struct Running {
    pub app: Arc<App>,
    /// Where the sidecar listens (useful when `HTTP_ADDR` asked for port 0).
    pub http_addr: SocketAddr,
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
}

/// Opens the cipher: `ENCRYPTION_KEY`, or with SQLite a key file beside the database.
pub fn cipher(config: &Config) -> anyhow::Result<Cipher> {
    match &config.encryption_key {
        Some(key) => Cipher::new(key, &config.encryption_keys_previous)
            .map_err(|e| anyhow::anyhow!("ENCRYPTION_KEY {e}")),
        None => {
            let dir = config
                .sqlite_dir()
                .context("ENCRYPTION_KEY is required unless the database is a SQLite file")?;
            Cipher::from_key_file(&dir.join("encryption.key"))
        }
    }
}

/// Opens the database (migrating it), binds the sidecar, connects to Slack, starts workers.
pub async fn start(config: Config, extensions: Extensions) -> anyhow::Result<Running> {
    let store = Store::open(&config.database_url).await?;
    let cipher = cipher(&config)?;
    let slack: Arc<dyn SlackApi> = Arc::new(
        MorphismSlack::new(
            &config.endpoints.slack_api,
            &config.slack_bot_token,
            &config.slack_app_token,
        )
        .context("setting up the Slack client (TLS roots)")?,
    );
    let listener = tokio::net::TcpListener::bind(config.http_addr)
        .await
        .with_context(|| format!("binding HTTP_ADDR {}", config.http_addr))?;
    let http_addr = listener.local_addr()?;

    let socket_status = SocketStatus::default();
    let http = crate::clients::http_client();
    let fathom = Fathom::new(http.clone(), &config.endpoints.fathom_api);
    let llm = config.anthropic_api_key.clone().map(|key| {
        Arc::new(Anthropic::new(
            http.clone(),
            &config.endpoints.anthropic_api,
            key,
            &config.anthropic_model,
        )) as Arc<dyn Llm>
    });
    let app = Arc::new(App {
        fathom,
        people: Default::default(),
        llm,
        store: store.clone(),
        slack: slack.clone(),
        cipher,
        socket: socket_status.clone(),
        metrics: crate::telemetry::metrics(),
        queue: Queue::default(),
        instance_id: uuid::Uuid::new_v4().simple().to_string()[..12].to_owned(),
        config,
    });

    let mut router = Router::new();
    for (route, handler) in extensions.routes {
        router.add(route, handler);
    }
    let dispatcher = Arc::new(Dispatcher::new(app.clone(), router));
    let socket = SocketMode::new(
        slack,
        dispatcher.clone(),
        socket_status,
        app.config.slack_connections,
        app.config.slack_ping_interval,
    );

    let shutdown = CancellationToken::new();
    let tasks = vec![
        tokio::spawn(socket.run(shutdown.clone())),
        tokio::spawn(jobs::run_workers(
            app.clone(),
            extensions.jobs,
            app.config.job_workers,
            shutdown.clone(),
        )),
        tokio::spawn(serve(listener, app.clone(), shutdown.clone())),
        tokio::spawn(housekeeping(app.clone(), shutdown.clone())),
        tokio::spawn(jobs::poller::run(app.clone(), shutdown.clone())),
    ];
    info!(%http_addr, database = app.store.backend(), "started");
    let task = tokio::spawn(async move {
        for task in tasks {
            let _ = task.await;
        }
        // The sockets are closed: let envelopes already acked finish before the pool goes.
        dispatcher.drain(Duration::from_secs(10)).await;
        store.close().await;
        info!("stopped");
    });
    Ok(Running {
        app,
        http_addr,
        shutdown,
        task,
    })
}

async fn serve(listener: tokio::net::TcpListener, app: Arc<App>, shutdown: CancellationToken) {
    let router = crate::server::router(app);
    if let Err(e) = axum::serve(listener, router)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
    {
        warn!(error = %e, "the HTTP sidecar stopped with an error");
    }
}

/// Small periodic chores: forget old delivery keys.
async fn housekeeping(app: Arc<App>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {
                let cutoff = crate::store::now() - chrono::Duration::hours(24);
                if let Err(e) = app.store.prune_deliveries(cutoff).await {
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
