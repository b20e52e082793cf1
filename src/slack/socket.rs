//! Our Socket Mode loop on tokio-tungstenite.
//!
//! Why not slack-morphism's listener: it never sets TCP_NODELAY (acks in flight together wait
//! ~40 ms for delayed ACKs), reads each connection's frames one at a time, acks only after the
//! callback returns, closes the old socket before opening the new one, and rejects control
//! frames without `debug_info`. Here: TCP_NODELAY, several connections, every envelope handled
//! on its own task with the ack sent as soon as it is known, replacement opened before the old
//! socket closes, pings to catch a silent link.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info, info_span, warn};

use super::api::SlackApi;
use super::envelope::{self, Envelope, Incoming, kind_label};

/// Receives every envelope once it is parsed; must not block (spawn the work).
pub trait EnvelopeHandler: Send + Sync + 'static {
    fn handle(self: Arc<Self>, envelope: Envelope, acker: Acker);
}

/// Sends the ack for one envelope exactly once: explicitly with `ack`, or empty when dropped
/// (a handler that fails or panics still acks, so Slack does not retry it).
pub struct Acker {
    out: mpsc::UnboundedSender<Message>,
    envelope_id: String,
    kind: &'static str,
    received: Instant,
    in_flight: Arc<AtomicUsize>,
    sent: bool,
}

impl Acker {
    pub fn ack(mut self, payload: Option<serde_json::Value>) {
        self.send(payload);
    }

    fn send(&mut self, payload: Option<serde_json::Value>) {
        if std::mem::replace(&mut self.sent, true) {
            return;
        }
        let body = match payload {
            Some(payload) => {
                serde_json::json!({ "envelope_id": self.envelope_id, "payload": payload })
            }
            None => serde_json::json!({ "envelope_id": self.envelope_id }),
        };
        let _ = self.out.send(Message::Text(body.to_string().into()));
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
        metrics::histogram!("slack_ack_seconds", "type" => self.kind)
            .record(self.received.elapsed().as_secs_f64());
    }
}

impl Drop for Acker {
    fn drop(&mut self) {
        self.send(None);
    }
}

/// Recently seen dedupe keys, so a redelivery on any of our connections is acked and dropped
/// without touching the database. The store keeps the durable record across replicas.
struct RecentKeys {
    set: HashSet<String>,
    order: VecDeque<String>,
}

impl RecentKeys {
    const CAPACITY: usize = 10_000;

    fn first_time(&mut self, key: &str) -> bool {
        if self.set.contains(key) {
            return false;
        }
        if self.order.len() == Self::CAPACITY
            && let Some(old) = self.order.pop_front()
        {
            self.set.remove(&old);
        }
        self.set.insert(key.to_owned());
        self.order.push_back(key.to_owned());
        true
    }
}

/// Shared view of the connections, for `/ready`.
#[derive(Clone, Default)]
pub struct SocketStatus {
    open: Arc<AtomicUsize>,
}

impl SocketStatus {
    pub fn open_connections(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }
}

pub struct SocketMode {
    api: Arc<dyn SlackApi>,
    handler: Arc<dyn EnvelopeHandler>,
    connections: usize,
    ping_interval: Duration,
    status: SocketStatus,
    recent: Arc<Mutex<RecentKeys>>,
    next_conn_id: Arc<AtomicU64>,
    /// Every connection's reader and writer, so shutdown can wait for the last acks.
    tasks: tokio_util::task::TaskTracker,
}

enum Signal {
    /// Slack asked us to move (`disconnect`): open a new connection, then close this one.
    Replace(String),
    /// The link is gone (closed, errored, or silent): open a new one.
    Dead(String),
}

struct Conn {
    id: u64,
    signals: mpsc::UnboundedReceiver<Signal>,
    close: CancellationToken,
}

impl SocketMode {
    pub fn new(
        api: Arc<dyn SlackApi>,
        handler: Arc<dyn EnvelopeHandler>,
        status: SocketStatus,
        connections: usize,
        ping_interval: Duration,
    ) -> Self {
        Self {
            api,
            handler,
            connections: connections.max(1),
            ping_interval,
            status,
            recent: Arc::new(Mutex::new(RecentKeys {
                set: HashSet::new(),
                order: VecDeque::new(),
            })),
            next_conn_id: Arc::new(AtomicU64::new(1)),
            tasks: tokio_util::task::TaskTracker::new(),
        }
    }

    /// Holds the connections open until `shutdown` fires, then closes them once the acks
    /// in flight have gone out.
    pub async fn run(self, shutdown: CancellationToken) {
        let this = Arc::new(self);
        let slots: Vec<_> = (0..this.connections)
            .map(|slot| tokio::spawn(this.clone().slot(slot, shutdown.clone())))
            .collect();
        for slot in slots {
            let _ = slot.await;
        }
        // The connections are closing: let their writers send the acks still in flight.
        this.tasks.close();
        if tokio::time::timeout(Duration::from_secs(6), this.tasks.wait())
            .await
            .is_err()
        {
            warn!("some Socket Mode connections did not close in time");
        }
    }

    async fn slot(self: Arc<Self>, slot: usize, shutdown: CancellationToken) {
        let mut failures = 0u32;
        let mut current: Option<Conn> = None;
        loop {
            let Some(conn) = current.as_mut() else {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    result = self.connect() => match result {
                        Ok(conn) => {
                            failures = 0;
                            current = Some(conn);
                        }
                        Err(e) => {
                            failures += 1;
                            // Up to twice the cap with jitter: 0.5 s, 1 s, 2 s … at most 30 s.
                            let wait = crate::retry::backoff(
                                failures,
                                Duration::from_millis(500),
                                Duration::from_secs(15),
                            );
                            warn!(slot, error = %e, retry_in_ms = wait.as_millis() as u64,
                                  "could not open a Socket Mode connection");
                            tokio::select! {
                                _ = shutdown.cancelled() => return,
                                _ = tokio::time::sleep(wait) => {}
                            }
                        }
                    }
                }
                continue;
            };
            tokio::select! {
                _ = shutdown.cancelled() => {
                    conn.close.cancel();
                    return;
                }
                signal = conn.signals.recv() => match signal {
                    Some(Signal::Replace(reason)) => {
                        info!(slot, conn = conn.id, %reason, "Slack asked to reconnect; opening the replacement first");
                        match self.connect().await {
                            Ok(new) => {
                                if let Some(old) = current.replace(new) {
                                    old.close.cancel();
                                }
                            }
                            Err(e) => warn!(slot, error = %e,
                                "could not open a replacement; keeping the old connection until it closes"),
                        }
                    }
                    dead => {
                        let reason = match dead { Some(Signal::Dead(r)) => r, _ => "ended".to_owned() };
                        warn!(slot, conn = conn.id, %reason, "Socket Mode connection lost; reconnecting");
                        conn.close.cancel();
                        current = None;
                    }
                }
            }
        }
    }

    /// Opens one connection, waits for Slack's `hello`, and starts its reader and writer.
    async fn connect(&self) -> anyhow::Result<Conn> {
        let (sink, stream) = self.open_until_hello().await?;
        let id = self.next_conn_id.fetch_add(1, Ordering::Relaxed);
        Ok(self.spawn_conn(id, sink, stream))
    }

    /// A fresh websocket URL, the socket, and Slack's `hello` on it.
    async fn open_until_hello(&self) -> anyhow::Result<(WsSink, WsStream)> {
        let url = self.api.open_socket_url().await?;
        let (ws, _) = tokio::time::timeout(
            Duration::from_secs(10),
            // `true`: TCP_NODELAY, so acks in flight together are not held back by Nagle.
            tokio_tungstenite::connect_async_with_config(url.as_str(), None, true),
        )
        .await
        .map_err(|_| anyhow::anyhow!("timed out connecting the websocket"))??;
        let (mut sink, mut stream) = ws.split();

        let hello = tokio::time::timeout(Duration::from_secs(10), async {
            while let Some(frame) = stream.next().await {
                if let Message::Text(text) = frame? {
                    match envelope::parse(&text) {
                        Ok(Incoming::Hello) => return Ok(()),
                        _ => {
                            debug!(frame = %envelope::excerpt(&text), "frame before hello ignored")
                        }
                    }
                }
            }
            anyhow::bail!("the socket closed before hello")
        })
        .await;
        match hello {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => {
                let _ = sink.close().await;
                anyhow::bail!("no hello from Slack within 10 s");
            }
        }
        Ok((sink, stream))
    }

    /// Starts the reader and the writer of a connection that said hello.
    fn spawn_conn(&self, id: u64, sink: WsSink, mut stream: WsStream) -> Conn {
        let (signal_tx, signals) = mpsc::unbounded_channel();
        let (out_tx, out_rx) = mpsc::unbounded_channel();
        let close = CancellationToken::new();
        let in_flight = Arc::new(AtomicUsize::new(0));
        let started = Instant::now();
        let last_seen = Arc::new(AtomicU64::new(0));
        self.status.open.fetch_add(1, Ordering::AcqRel);
        metrics::gauge!("slack_connections_open").increment(1.0);
        info!(conn = id, "Socket Mode connection ready");

        let reader = Reader {
            conn: id,
            handler: self.handler.clone(),
            recent: self.recent.clone(),
            out: out_tx.clone(),
            signals: signal_tx.clone(),
            in_flight: in_flight.clone(),
            started,
            last_seen: last_seen.clone(),
            closing: close.clone(),
        };
        let span = info_span!("socket", conn = id);
        let status = self.status.clone();
        let reader_close = close.clone();
        self.tasks.spawn(
            async move {
                // After we close, keep reading briefly for Slack's close reply, then give up.
                let closed_long_ago = async {
                    reader_close.cancelled().await;
                    tokio::time::sleep(Duration::from_secs(5)).await;
                };
                tokio::select! {
                    _ = reader.run(&mut stream) => {}
                    _ = closed_long_ago => {}
                }
                status.open.fetch_sub(1, Ordering::AcqRel);
                metrics::gauge!("slack_connections_open").decrement(1.0);
            }
            .instrument(span.clone()),
        );
        let writer = Writer {
            out: out_rx,
            signals: signal_tx,
            close: close.clone(),
            in_flight,
            ping_interval: self.ping_interval,
            started,
            last_seen,
        };
        self.tasks.spawn(writer.run(sink).instrument(span));
        Conn { id, signals, close }
    }
}

struct Reader {
    conn: u64,
    handler: Arc<dyn EnvelopeHandler>,
    recent: Arc<Mutex<RecentKeys>>,
    out: mpsc::UnboundedSender<Message>,
    signals: mpsc::UnboundedSender<Signal>,
    in_flight: Arc<AtomicUsize>,
    started: Instant,
    last_seen: Arc<AtomicU64>,
    /// Set once this connection is being closed: new envelopes are left unacked so Slack
    /// delivers them on another connection.
    closing: CancellationToken,
}

type WsStream = futures_util::stream::SplitStream<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
>;

impl Reader {
    async fn run(&self, stream: &mut WsStream) {
        let reason = loop {
            let frame = match stream.next().await {
                None => break "the socket closed".to_owned(),
                Some(Err(e)) => break format!("websocket error: {e}"),
                Some(Ok(frame)) => frame,
            };
            let received = Instant::now();
            self.last_seen
                .store(self.started.elapsed().as_millis() as u64, Ordering::Release);
            match frame {
                Message::Text(text) => self.on_text(&text, received),
                Message::Close(_) => break "Slack closed the socket".to_owned(),
                _ => {}
            }
        };
        let _ = self.signals.send(Signal::Dead(reason));
    }

    fn on_text(&self, text: &str, received: Instant) {
        let incoming = match envelope::parse(text) {
            Ok(incoming) => incoming,
            Err(e) => {
                metrics::counter!("slack_envelopes_total", "type" => "unknown", "outcome" => "malformed")
                    .increment(1);
                warn!(conn = self.conn, error = %e, frame = %envelope::excerpt(text), "malformed frame ignored");
                return;
            }
        };
        match incoming {
            Incoming::Hello => debug!("hello"),
            Incoming::Disconnect { reason } => {
                let _ = self.signals.send(Signal::Replace(reason));
            }
            Incoming::Other { kind } => debug!(%kind, "frame of an unknown type ignored"),
            Incoming::Unreadable {
                envelope_id,
                kind,
                error,
            } => {
                metrics::counter!("slack_envelopes_total", "type" => kind_label(&kind), "outcome" => "unreadable")
                    .increment(1);
                warn!(%envelope_id, %kind, %error, frame = %envelope::excerpt(text),
                      "envelope could not be read; acked so Slack does not retry it");
                self.acker(envelope_id, kind_label(&kind), received)
                    .ack(None);
            }
            Incoming::Envelope(envelope) if self.closing.is_cancelled() => {
                debug!(envelope_id = %envelope.id, "closing: left for Slack to deliver elsewhere");
            }
            Incoming::Envelope(envelope) => {
                let kind = kind_label(&envelope.kind);
                let acker = self.acker(envelope.id.clone(), kind, received);
                let first = self
                    .recent
                    .lock()
                    .map(|mut recent| recent.first_time(&envelope.dedupe_key))
                    .unwrap_or(true);
                if !first {
                    metrics::counter!("slack_envelopes_total", "type" => kind, "outcome" => "duplicate")
                        .increment(1);
                    debug!(envelope_id = %envelope.id, retry = ?envelope.retry_attempt, "redelivery acked and dropped");
                    acker.ack(None);
                    return;
                }
                metrics::counter!("slack_envelopes_total", "type" => kind, "outcome" => "received")
                    .increment(1);
                self.handler.clone().handle(*envelope, acker);
            }
        }
    }

    fn acker(&self, envelope_id: String, kind: &'static str, received: Instant) -> Acker {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        Acker {
            out: self.out.clone(),
            envelope_id,
            kind,
            received,
            in_flight: self.in_flight.clone(),
            sent: false,
        }
    }
}

struct Writer {
    out: mpsc::UnboundedReceiver<Message>,
    signals: mpsc::UnboundedSender<Signal>,
    close: CancellationToken,
    in_flight: Arc<AtomicUsize>,
    ping_interval: Duration,
    started: Instant,
    last_seen: Arc<AtomicU64>,
}

type WsSink = futures_util::stream::SplitSink<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    Message,
>;

impl Writer {
    async fn run(mut self, mut sink: WsSink) {
        let mut ping = tokio::time::interval(self.ping_interval);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ping.tick().await;
        let silent_after = self.ping_interval * 2 + Duration::from_millis(500);
        loop {
            tokio::select! {
                biased;
                message = self.out.recv() => {
                    let Some(message) = message else { break };
                    // Acks that are ready together go out in one flush.
                    let mut result = sink.feed(message).await;
                    while result.is_ok() {
                        match self.out.try_recv() {
                            Ok(more) => result = sink.feed(more).await,
                            Err(_) => break,
                        }
                    }
                    if let Err(e) = result.and(sink.flush().await) {
                        let _ = self.signals.send(Signal::Dead(format!("write failed: {e}")));
                        break;
                    }
                }
                _ = ping.tick() => {
                    let seen = Duration::from_millis(self.last_seen.load(Ordering::Acquire));
                    if self.started.elapsed().saturating_sub(seen) > silent_after {
                        let _ = self.signals.send(Signal::Dead(format!(
                            "no frame from Slack for over {} ms", silent_after.as_millis())));
                        break;
                    }
                    if let Err(e) = sink.send(Message::Ping(Vec::new().into())).await {
                        let _ = self.signals.send(Signal::Dead(format!("ping failed: {e}")));
                        break;
                    }
                }
                _ = self.close.cancelled() => {
                    self.drain(&mut sink).await;
                    break;
                }
            }
        }
        let _ = sink.close().await;
    }

    /// Before closing: send the acks still being computed (up to a few seconds) so nothing
    /// that arrived on this socket is left for Slack to retry.
    async fn drain(&mut self, sink: &mut WsSink) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
        loop {
            // Read the count first: an ack sent after this read is either already queued
            // (and drained below) or keeps the count above zero for another round.
            let pending = self.in_flight.load(Ordering::Acquire);
            while let Ok(message) = self.out.try_recv() {
                if sink.send(message).await.is_err() {
                    return;
                }
            }
            if pending == 0 {
                return;
            }
            match tokio::time::timeout_at(deadline, self.out.recv()).await {
                Ok(Some(message)) => {
                    if sink.send(message).await.is_err() {
                        return;
                    }
                }
                _ => return,
            }
        }
    }
}
