//! `negotium node`: hosts sessions for launchers and plays parties of
//! sessions hosted on other nodes; serves the public agent API beside it.
//!
//! Per launcher stream, the node keeps the scenarios it was sent (with each
//! party's outcome index, built once) and answers every `HostSession` with
//! the session's result, every `PlaySeat` with `SeatDone`, and every
//! heartbeat with one of its own. On SIGTERM or ctrl-c it drains: refuses new
//! work (the launcher places it elsewhere), lets running sessions finish for
//! up to the drain time, then stops.
//!
//! Only launchers that proved the cluster token reach this service (see
//! [`crate::net::auth`]); even so, a scenario from one passes the same
//! check and limits as one from a file or the API, its sessions count
//! against the memory budget, and one launcher has at most
//! `max_sessions_per_client` sessions and [`MAX_LOADED`] scenarios here at
//! a time.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};
use tracing::Instrument;

use super::ScenarioWire;
use super::config::check_address;
use super::metrics::{self, Metrics};
use super::peer::PeerLinks;
use super::work::{LauncherWork, Step};
use crate::core::inverse::Inverse;
use crate::core::limits::Footprint;
use crate::core::scenario::Scenario;
use crate::core::strategy::StrategySpec;
use crate::engine::shared_indexes;
use crate::net::auth::Secret;
use crate::net::client::{ClientTls, Seat};
use crate::net::outbound::{self, Outbound};
use crate::net::pb;
use crate::net::pb::cluster_server::{Cluster, ClusterServer};
use crate::net::registry::Reservation;
use crate::net::server::{HostOptions, Hosting, NegotiationService, ServerConfig, TlsFiles};
use crate::net::transport::listen;
use crate::net::untrusted::shown;

/// Largest cluster message (scenarios with big tables, results with traces).
const MAX_CLUSTER_MESSAGE: usize = 64 << 20;
pub use super::work::MAX_LOADED;
/// Bytes of replies that may wait for a launcher that does not read them.
const REPLY_BUDGET: usize = 4 * MAX_CLUSTER_MESSAGE;

/// The cluster service of one node.
#[derive(Clone)]
pub struct NodeService {
    hosting: NegotiationService,
    peers: Arc<PeerLinks>,
    metrics: Arc<Metrics>,
    node_id: Arc<str>,
    advertise: Arc<str>,
    join_timeout: Duration,
}

/// A scenario a launcher sent, ready for its sessions.
struct Loaded {
    scenario: Scenario,
    indexes: Vec<Option<Arc<Inverse>>>,
    /// The memory its indexes take, given back when it is unloaded.
    _memory: Reservation,
}

type Reply = Outbound<pb::NodeMessage>;

impl From<pb::node_message::Kind> for pb::NodeMessage {
    fn from(kind: pb::node_message::Kind) -> Self {
        pb::NodeMessage { kind: Some(kind) }
    }
}

fn send(tx: &Reply, kind: pb::node_message::Kind) {
    // A launcher that stopped reading is cut off; its stream then ends.
    let _ = tx.send(kind);
}

fn failed(tx: &Reply, job: u64, attempt: u32, message: String, draining: bool) {
    send(tx, pb::node_message::Kind::Failed(pb::JobFailed { job, attempt, message, draining, peer: String::new() }));
}

impl NodeService {
    pub fn new(
        hosting: NegotiationService,
        metrics: Arc<Metrics>,
        node_id: String,
        advertise: String,
        join_timeout: Duration,
        peer_tls: Option<ClientTls>,
        peer_token: Option<Secret>,
    ) -> Self {
        Self {
            hosting,
            peers: Arc::new(PeerLinks::new(metrics.clone(), peer_tls, peer_token)),
            metrics,
            node_id: node_id.into(),
            advertise: advertise.into(),
            join_timeout,
        }
    }

    fn draining(&self) -> bool {
        self.metrics.draining.load(Ordering::Relaxed)
    }

    /// Sessions one launcher may have here at a time.
    fn per_launcher(&self) -> usize {
        self.hosting.config().max_sessions_per_client
    }

    /// A scenario as a launcher sent it: parsed, checked, admitted, and
    /// its outcome indexes built under the memory budget.
    fn load(&self, json: &str) -> Result<Loaded, String> {
        let wire: ScenarioWire = serde_json::from_str(json).map_err(|e| format!("does not parse here: {e}"))?;
        let scenario = wire.into_scenario()?;
        self.hosting.config().limits.admit(&scenario)?;
        let local = vec![true; scenario.parties.len()];
        // The shared indexes cost what one session's own would.
        let bytes = Footprint::of(&scenario, &local, false).running;
        let memory = self.hosting.memory.reserve(bytes, "this scenario's outcome indexes")?;
        let indexes = shared_indexes(&scenario.domain, &scenario.preferences());
        Ok(Loaded { scenario, indexes, _memory: memory })
    }

    async fn serve_launcher(self, mut inbound: Streaming<pb::LauncherMessage>, tx: Reply) {
        self.metrics.launchers.fetch_add(1, Ordering::Relaxed);
        let mut work = LauncherWork::<Loaded>::new(self.per_launcher());
        // Loads run one at a time, in order, off this loop (heartbeats are
        // answered meanwhile); the work state bounds how many are asked.
        let (load_tx, load_rx) = mpsc::unbounded_channel::<(u32, u64, String)>();
        let (loaded_tx, mut loaded_rx) = mpsc::unbounded_channel::<(u32, u64, Result<Loaded, String>)>();
        tokio::spawn(self.clone().loader(load_rx, loaded_tx));
        // One message per hosted session when it ends: bounded by the
        // per-launcher cap.
        let (ended_tx, mut ended_rx) = mpsc::unbounded_channel::<()>();
        let end = loop {
            let steps = tokio::select! {
                m = inbound.next() => match m {
                    None => break None,
                    Some(Err(status)) => break Some(shown(status.message()).to_string()),
                    Some(Ok(pb::LauncherMessage { kind: None })) => continue,
                    Some(Ok(pb::LauncherMessage { kind: Some(kind) })) => work.on_message(kind, self.draining(), unix_ms()),
                },
                Some((id, load, result)) = loaded_rx.recv() => {
                    match &result {
                        Ok(l) => tracing::info!(scenario = %shown(&l.scenario.name), id, "scenario loaded"),
                        Err(e) => tracing::error!(id, "a scenario that does not load: {}", shown(e)),
                    }
                    work.loaded(id, load, result, self.draining())
                }
                Some(()) = ended_rx.recv() => {
                    work.session_ended();
                    continue;
                }
                _ = tx.closed() => break Some("the launcher did not read its stream (cut off)".to_string()),
            };
            for step in steps {
                match step {
                    Step::Reply(kind) => send(&tx, kind),
                    Step::Load { id, load, json } => {
                        let _ = load_tx.send((id, load, json));
                    }
                    Step::Host { session, scenario } => {
                        if !self.host(&scenario, session, &tx, &ended_tx) {
                            work.session_ended();
                        }
                    }
                    Step::Seat(s) => self.seat(s, &tx),
                }
            }
        };
        self.metrics.launchers.fetch_sub(1, Ordering::Relaxed);
        match end {
            None => tracing::info!("launcher stream ended"),
            Some(reason) => {
                self.metrics.stream_errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("launcher stream broke: {reason}");
            }
        }
    }

    /// Loads scenarios in the order asked, each on the blocking pool; a
    /// load that panics is reported as an error that says so.
    async fn loader(
        self,
        mut asked: mpsc::UnboundedReceiver<(u32, u64, String)>,
        done: mpsc::UnboundedSender<(u32, u64, Result<Loaded, String>)>,
    ) {
        while let Some((id, load, json)) = asked.recv().await {
            let this = self.clone();
            let result = match tokio::task::spawn_blocking(move || this.load(&json)).await {
                Ok(result) => result,
                Err(e) => {
                    let why = if e.is_panic() { panic_message(e.into_panic()) } else { e.to_string() };
                    tracing::error!(id, "loading a scenario panicked: {why}");
                    Err(format!("loading it failed on this node ({why})"))
                }
            };
            if done.send((id, load, result)).is_err() {
                return;
            }
        }
    }

    /// Hosts one session of a loaded scenario; `false` if it could not
    /// start (the launcher was told why).
    fn host(&self, loaded: &Arc<Loaded>, h: pb::HostSession, tx: &Reply, ended: &mpsc::UnboundedSender<()>) -> bool {
        let (job, attempt) = (h.job, h.attempt);
        let mut scenario = loaded.scenario.clone();
        if h.strategies.len() != scenario.parties.len() {
            let message = format!("{} strategies for {} parties", h.strategies.len(), scenario.parties.len());
            failed(tx, job, attempt, message, false);
            return false;
        }
        if let Some(&k) = h.remote.iter().find(|&&k| k as usize >= scenario.parties.len()) {
            failed(tx, job, attempt, format!("no party {k} to play remotely"), false);
            return false;
        }
        for (k, text) in h.strategies.iter().enumerate() {
            let spec = serde_json::from_str(text)
                .map_err(|e| e.to_string())
                .and_then(|json| StrategySpec::from_json(&json).map_err(|e| e.to_string()));
            match spec {
                Ok(spec) => {
                    let party = &mut scenario.parties[k];
                    party.strategy = spec;
                    party.external = h.remote.contains(&(k as u32));
                }
                Err(e) => {
                    failed(tx, job, attempt, format!("party {k}: {e}"), false);
                    return false;
                }
            }
        }
        let (result_tx, result_rx) = oneshot::channel();
        let options =
            HostOptions { shared_indexes: loaded.indexes.clone(), trace: h.trace, on_result: Some(result_tx) };
        let created = match self.hosting.host(scenario, h.seed, None, self.join_timeout, options) {
            Ok(created) => created,
            Err(status) => {
                self.metrics.sessions_failed.fetch_add(1, Ordering::Relaxed);
                failed(tx, job, attempt, status.message().to_string(), false);
                return false;
            }
        };
        let session_id = created.session_id;
        if !h.remote.is_empty() {
            let tokens = created.tokens.into_iter().map(|(party, token)| pb::PartyToken { party, token }).collect();
            send(
                tx,
                pb::node_message::Kind::Hosted(pb::Hosted { job, attempt, session_id: session_id.clone(), tokens }),
            );
        }
        self.metrics.sessions_running.fetch_add(1, Ordering::Relaxed);
        let (metrics, tx, ended) = (self.metrics.clone(), tx.clone(), ended.clone());
        let span = tracing::debug_span!("session", session = %session_id, job, attempt);
        tokio::spawn(
            async move {
                let outcome = result_rx.await;
                metrics.sessions_running.fetch_sub(1, Ordering::Relaxed);
                let _ = ended.send(());
                match outcome {
                    Ok(result) => {
                        metrics.sessions_done.fetch_add(1, Ordering::Relaxed);
                        metrics.offers.fetch_add(result.offers, Ordering::Relaxed);
                        match serde_json::to_string(&result) {
                            Ok(result_json) => {
                                send(&tx, pb::node_message::Kind::Done(pb::SessionDone { job, attempt, result_json }))
                            }
                            Err(e) => failed(&tx, job, attempt, format!("its result does not serialise: {e}"), false),
                        }
                    }
                    Err(_) => {
                        metrics.sessions_failed.fetch_add(1, Ordering::Relaxed);
                        failed(&tx, job, attempt, "the session stopped without a result".into(), false);
                    }
                }
            }
            .instrument(span),
        );
        true
    }

    fn seat(&self, s: pb::PlaySeat, tx: &Reply) {
        let (job, attempt, party) = (s.job, s.attempt, s.party_index);
        // The host is dialled: only a well-formed address, never a URL.
        if let Err(e) = check_address(&s.host) {
            return failed(tx, job, attempt, format!("party {party}: the host node's address: {e}"), false);
        }
        let strategy = serde_json::from_str(&s.strategy)
            .map_err(|e| e.to_string())
            .and_then(|json| StrategySpec::from_json(&json).map_err(|e| e.to_string()))
            .and_then(|spec| spec.build().map_err(|e| e.to_string()));
        let strategy = match strategy {
            Ok(s) => s,
            Err(e) => return failed(tx, job, attempt, format!("party {party}: {e}"), false),
        };
        let outcome = self.peers.play(&s.host, Seat::new(&s.session_id, &s.party, &s.token, strategy));
        self.metrics.seats_running.fetch_add(1, Ordering::Relaxed);
        let (metrics, tx, peer) = (self.metrics.clone(), tx.clone(), s.host);
        tokio::spawn(async move {
            let outcome = outcome.await.unwrap_or_else(|_| Err("the link dropped the seat".into()));
            metrics.seats_running.fetch_sub(1, Ordering::Relaxed);
            let kind = match outcome {
                Ok(()) => pb::node_message::Kind::SeatDone(pb::SeatDone { job, attempt, party }),
                Err(e) => pb::node_message::Kind::Failed(pb::JobFailed {
                    job,
                    attempt,
                    message: format!("party {party}: {e}"),
                    draining: false,
                    peer,
                }),
            };
            send(&tx, kind);
        });
    }
}

/// What a panic said, as far as it said anything.
fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".into())
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

type WorkStream = Pin<Box<dyn Stream<Item = Result<pb::NodeMessage, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl Cluster for NodeService {
    type WorkStream = WorkStream;

    async fn work(&self, req: Request<Streaming<pb::LauncherMessage>>) -> Result<Response<WorkStream>, Status> {
        if self.draining() {
            return Err(Status::unavailable("the node is draining"));
        }
        let launcher = crate::net::auth::Caller::of(&req).client;
        let (tx, rx) = outbound::bounded(REPLY_BUDGET);
        send(
            &tx,
            pb::node_message::Kind::Hello(pb::NodeHello {
                node_id: self.node_id.to_string(),
                advertise: self.advertise.to_string(),
                max_sessions: self.per_launcher().min(u32::MAX as usize) as u32,
            }),
        );
        let span = tracing::info_span!("launcher", node = %self.node_id, launcher = %launcher);
        tokio::spawn(self.clone().serve_launcher(req.into_inner(), tx).instrument(span));
        Ok(Response::new(Box::pin(rx)))
    }
}

/// How to run a node.
pub struct NodeOptions {
    pub listen: SocketAddr,
    /// A port of its own for the cluster service (launchers and other
    /// nodes); `None`: the cluster service shares the public port.
    pub cluster_listen: Option<SocketAddr>,
    /// Where other nodes reach this one; empty: where launchers reach it.
    pub advertise: String,
    /// Prometheus endpoint (`/metrics`, `/healthz`).
    pub metrics: Option<SocketAddr>,
    pub config: ServerConfig,
    pub tls: Option<TlsFiles>,
    /// How this node dials other nodes (when they serve TLS).
    pub peer_tls: Option<ClientTls>,
    /// Longest wait for running sessions on shutdown.
    pub drain: Duration,
}

/// The sockets a node serves on, bound before it starts (port 0 picks
/// one), so that whoever starts it knows where it listens.
pub struct NodeListeners {
    /// The public agent API (and the cluster service without a port of
    /// its own).
    pub public: tokio::net::TcpListener,
    /// The cluster service alone (`--cluster-listen`).
    pub cluster: Option<tokio::net::TcpListener>,
    /// Prometheus (`/metrics`, `/healthz`).
    pub metrics: Option<tokio::net::TcpListener>,
}

impl NodeListeners {
    /// Binds the addresses `options` names.
    pub async fn bind(options: &NodeOptions) -> anyhow::Result<Self> {
        let public = listen(options.listen, "--listen").await?;
        let cluster = match options.cluster_listen {
            Some(addr) => Some(listen(addr, "--cluster-listen").await?),
            None => None,
        };
        let metrics = match options.metrics {
            Some(addr) => Some(listen(addr, "--metrics").await?),
            None => None,
        };
        Ok(Self { public, cluster, metrics })
    }
}

/// Runs a node on `listeners` until `shutdown` completes, then drains:
/// refuses new work, waits up to `options.drain` for running sessions and
/// seats, and stops. Call it on the thread of a running actix system (the
/// arbiters that host sessions start there).
pub async fn run(
    options: NodeOptions,
    listeners: NodeListeners,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let NodeListeners { public: listener, cluster: cluster_listener, metrics: metrics_listener } = listeners;
    let local = listener.local_addr()?;
    let cluster_local = match &cluster_listener {
        Some(l) => Some(l.local_addr()?),
        None => None,
    };
    // Launchers and other nodes reach it where the cluster service is.
    let reached = cluster_local.unwrap_or(local);
    let node_id = if options.advertise.is_empty() { reached.to_string() } else { options.advertise.clone() };
    let metrics = Arc::new(Metrics::default());
    if let Some(l) = metrics_listener {
        tokio::spawn(metrics::serve(l, metrics.clone(), node_id.clone()));
    }
    tokio::spawn(metrics.clone().keep_rate(Duration::from_secs(5)));
    let join_timeout = options.config.join_timeout;
    // Links to other nodes prove this node a cluster member.
    let peer_token = options.config.credentials.cluster.clone().or(options.config.credentials.admin.clone());
    let hosting = Hosting::start(options.config);
    let service = NodeService::new(
        hosting.service.clone(),
        metrics.clone(),
        node_id.clone(),
        options.advertise,
        join_timeout,
        options.peer_tls,
        peer_token,
    );
    let cluster = ClusterServer::new(service)
        .max_decoding_message_size(MAX_CLUSTER_MESSAGE)
        .max_encoding_message_size(MAX_CLUSTER_MESSAGE);
    let (stop, stopped) = oneshot::channel::<()>();
    let stopped = async {
        let _ = stopped.await;
    };
    let server = match cluster_listener {
        None => tokio::spawn(hosting.serve(listener, options.tls, Some(cluster), stopped)),
        Some(cl) => {
            // The public port serves agents only; the cluster port
            // serves launchers and the agent streams of other nodes.
            let listeners = vec![(listener, hosting.routes()), (cl, hosting.routes().add_service(cluster))];
            tokio::spawn(hosting.serve_many(listeners, options.tls, stopped))
        }
    };
    tracing::info!(node = %node_id, "node listening on {local}");
    shutdown.await;
    metrics.draining.store(true, Ordering::Relaxed);
    let started = std::time::Instant::now();
    tracing::info!(node = %node_id, "draining");
    while started.elapsed() < options.drain
        && (metrics.sessions_running.load(Ordering::Relaxed) > 0 || metrics.seats_running.load(Ordering::Relaxed) > 0)
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let left = metrics.sessions_running.load(Ordering::Relaxed);
    tracing::info!(node = %node_id, sessions_left = left, "stopping");
    let _ = stop.send(());
    // A graceful stop waits for every connection to close, and other
    // nodes keep their agent streams to this one open for good: give
    // them a moment, then leave them to whoever owns the runtime (the
    // binary closes them by exiting).
    match tokio::time::timeout(Duration::from_secs(2), server).await {
        Ok(served) => served??,
        Err(_) => tracing::info!(node = %node_id, "closing the connections still open"),
    }
    Ok(())
}
