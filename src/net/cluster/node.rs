//! `negotium node`: hosts sessions for launchers and plays parties of
//! sessions hosted on other nodes; serves the public agent API beside it.
//!
//! Per launcher stream, the node keeps the scenarios it was sent (with each
//! party's outcome index, built once) and answers every `HostSession` with
//! the session's result, every `PlaySeat` with `SeatDone`, and every
//! heartbeat with one of its own. On SIGTERM or ctrl-c it drains: refuses new
//! work (the launcher places it elsewhere), lets running sessions finish for
//! up to the drain time, then stops.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::UnboundedReceiverStream;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};
use tracing::Instrument;

use super::ScenarioWire;
use super::metrics::{self, Metrics};
use super::peer::PeerLinks;
use crate::core::inverse::OutcomeIndex;
use crate::core::scenario::Scenario;
use crate::core::strategy::StrategySpec;
use crate::engine::shared_indexes;
use crate::net::client::{ClientTls, Seat};
use crate::net::pb;
use crate::net::pb::cluster_server::{Cluster, ClusterServer};
use crate::net::server::{HostOptions, Hosting, NegotiationService, ServerConfig, TlsFiles};

/// Largest cluster message (scenarios with big tables, results with traces).
const MAX_CLUSTER_MESSAGE: usize = 64 << 20;

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
    indexes: Vec<Option<Arc<OutcomeIndex>>>,
}

type Reply = mpsc::UnboundedSender<Result<pb::NodeMessage, Status>>;

fn send(tx: &Reply, kind: pb::node_message::Kind) {
    let _ = tx.send(Ok(pb::NodeMessage { kind: Some(kind) }));
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
    ) -> Self {
        Self {
            hosting,
            peers: Arc::new(PeerLinks::new(metrics.clone(), peer_tls)),
            metrics,
            node_id: node_id.into(),
            advertise: advertise.into(),
            join_timeout,
        }
    }

    fn draining(&self) -> bool {
        self.metrics.draining.load(Ordering::Relaxed)
    }

    async fn serve_launcher(self, mut inbound: Streaming<pb::LauncherMessage>, tx: Reply) {
        self.metrics.launchers.fetch_add(1, Ordering::Relaxed);
        // A scenario that does not parse stays as its error, for its sessions.
        let mut scenarios: HashMap<u32, Result<Arc<Loaded>, String>> = HashMap::new();
        let end = loop {
            let msg = match inbound.next().await {
                None => break None,
                Some(Err(status)) => break Some(status.message().to_string()),
                Some(Ok(m)) => m,
            };
            use pb::launcher_message::Kind;
            match msg.kind {
                Some(Kind::Scenario(s)) => match serde_json::from_str::<ScenarioWire>(&s.scenario_json) {
                    Ok(wire) => {
                        let scenario = wire.into_scenario();
                        let (domain, prefs) = (scenario.domain.clone(), scenario.preferences());
                        // Built once per scenario, off the async threads.
                        let indexes = tokio::task::spawn_blocking(move || shared_indexes(&domain, &prefs))
                            .await
                            .unwrap_or_default();
                        tracing::info!(scenario = %scenario.name, id = s.id, "scenario loaded");
                        scenarios.insert(s.id, Ok(Arc::new(Loaded { scenario, indexes })));
                    }
                    Err(e) => {
                        tracing::error!(id = s.id, "a scenario that does not parse: {e}");
                        scenarios.insert(s.id, Err(format!("scenario {} does not parse here: {e}", s.id)));
                    }
                },
                Some(Kind::Unload(u)) => {
                    scenarios.remove(&u.id);
                }
                Some(Kind::Host(h)) => self.host(&scenarios, h, &tx),
                Some(Kind::Seat(s)) => self.seat(s, &tx),
                Some(Kind::Heartbeat(_)) => {
                    send(&tx, pb::node_message::Kind::Heartbeat(pb::Heartbeat { sent_unix_ms: unix_ms() }))
                }
                None => {}
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

    fn host(&self, scenarios: &HashMap<u32, Result<Arc<Loaded>, String>>, h: pb::HostSession, tx: &Reply) {
        let (job, attempt) = (h.job, h.attempt);
        if self.draining() {
            return failed(tx, job, attempt, "the node is draining".into(), true);
        }
        let loaded = match scenarios.get(&h.scenario) {
            Some(Ok(loaded)) => loaded,
            Some(Err(e)) => return failed(tx, job, attempt, e.clone(), false),
            None => {
                let message = format!("scenario {} was not sent on this stream", h.scenario);
                return failed(tx, job, attempt, message, false);
            }
        };
        let mut scenario = loaded.scenario.clone();
        if h.strategies.len() != scenario.parties.len() {
            let message = format!("{} strategies for {} parties", h.strategies.len(), scenario.parties.len());
            return failed(tx, job, attempt, message, false);
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
                Err(e) => return failed(tx, job, attempt, format!("party {k}: {e}"), false),
            }
        }
        let (result_tx, result_rx) = oneshot::channel();
        let options =
            HostOptions { shared_indexes: loaded.indexes.clone(), trace: h.trace, on_result: Some(result_tx) };
        let unspecified = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
        let (session_id, tokens) = match self.hosting.host(scenario, h.seed, unspecified, self.join_timeout, options) {
            Ok(created) => created,
            Err(status) => {
                self.metrics.sessions_failed.fetch_add(1, Ordering::Relaxed);
                return failed(tx, job, attempt, status.message().to_string(), false);
            }
        };
        if !h.remote.is_empty() {
            let tokens = tokens.into_iter().map(|(party, token)| pb::PartyToken { party, token }).collect();
            send(
                tx,
                pb::node_message::Kind::Hosted(pb::Hosted { job, attempt, session_id: session_id.clone(), tokens }),
            );
        }
        self.metrics.sessions_running.fetch_add(1, Ordering::Relaxed);
        let (metrics, tx) = (self.metrics.clone(), tx.clone());
        let span = tracing::debug_span!("session", session = %session_id, job, attempt);
        tokio::spawn(
            async move {
                let outcome = result_rx.await;
                metrics.sessions_running.fetch_sub(1, Ordering::Relaxed);
                match outcome {
                    Ok(result) => {
                        metrics.sessions_done.fetch_add(1, Ordering::Relaxed);
                        metrics.offers.fetch_add(result.offers, Ordering::Relaxed);
                        let result_json = serde_json::to_string(&result).expect("a result serialises");
                        send(&tx, pb::node_message::Kind::Done(pb::SessionDone { job, attempt, result_json }));
                    }
                    Err(_) => {
                        metrics.sessions_failed.fetch_add(1, Ordering::Relaxed);
                        failed(&tx, job, attempt, "the session stopped without a result".into(), false);
                    }
                }
            }
            .instrument(span),
        );
    }

    fn seat(&self, s: pb::PlaySeat, tx: &Reply) {
        let (job, attempt, party) = (s.job, s.attempt, s.party_index);
        if self.draining() {
            return failed(tx, job, attempt, "the node is draining".into(), true);
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
        let peer = req.remote_addr().map(|a| a.to_string()).unwrap_or_default();
        let (tx, rx) = mpsc::unbounded_channel();
        send(
            &tx,
            pb::node_message::Kind::Hello(pb::NodeHello {
                node_id: self.node_id.to_string(),
                advertise: self.advertise.to_string(),
            }),
        );
        let span = tracing::info_span!("launcher", node = %self.node_id, launcher = %peer);
        tokio::spawn(self.clone().serve_launcher(req.into_inner(), tx).instrument(span));
        Ok(Response::new(Box::pin(UnboundedReceiverStream::new(rx))))
    }
}

/// How to run a node.
pub struct NodeOptions {
    pub listen: SocketAddr,
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

/// Runs a node in a fresh actix system until SIGTERM or ctrl-c, then
/// drains. Prints `listening on ADDR` (and `metrics on ADDR`) once bound.
pub fn run(options: NodeOptions) -> anyhow::Result<()> {
    let system = actix::System::with_tokio_rt(|| {
        tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a tokio runtime")
    });
    system.block_on(async move {
        use std::io::Write as _;
        let listener = tokio::net::TcpListener::bind(options.listen)
            .await
            .with_context(|| format!("cannot listen on {}", options.listen))?;
        let local = listener.local_addr()?;
        let node_id = if options.advertise.is_empty() { local.to_string() } else { options.advertise.clone() };
        let metrics = Arc::new(Metrics::default());
        if let Some(addr) = options.metrics {
            let l =
                tokio::net::TcpListener::bind(addr).await.with_context(|| format!("cannot serve metrics on {addr}"))?;
            println!("metrics on {}", l.local_addr()?);
            tokio::spawn(metrics::serve(l, metrics.clone(), node_id.clone()));
        }
        tokio::spawn(metrics.clone().keep_rate(Duration::from_secs(5)));
        let join_timeout = options.config.join_timeout;
        let hosting = Hosting::start(options.config);
        let service = NodeService::new(
            hosting.service.clone(),
            metrics.clone(),
            node_id.clone(),
            options.advertise,
            join_timeout,
            options.peer_tls,
        );
        let cluster = ClusterServer::new(service)
            .max_decoding_message_size(MAX_CLUSTER_MESSAGE)
            .max_encoding_message_size(MAX_CLUSTER_MESSAGE);
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(hosting.serve(listener, options.tls, Some(cluster), async {
            let _ = stopped.await;
        }));
        tracing::info!(node = %node_id, "node listening on {local}");
        println!("listening on {local}");
        std::io::stdout().flush()?;

        shutdown_signal().await;
        metrics.draining.store(true, Ordering::Relaxed);
        let started = std::time::Instant::now();
        tracing::info!(node = %node_id, "draining");
        while started.elapsed() < options.drain
            && (metrics.sessions_running.load(Ordering::Relaxed) > 0
                || metrics.seats_running.load(Ordering::Relaxed) > 0)
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let left = metrics.sessions_running.load(Ordering::Relaxed);
        tracing::info!(node = %node_id, sessions_left = left, "stopping");
        let _ = stop.send(());
        // A graceful stop waits for every connection to close, and other
        // nodes keep their agent streams to this one open for good: give
        // them a moment, then close them by exiting.
        match tokio::time::timeout(Duration::from_secs(2), server).await {
            Ok(served) => served??,
            Err(_) => tracing::info!(node = %node_id, "closing the connections still open"),
        }
        Ok(())
    })
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
