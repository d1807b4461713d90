//! `negotium serve`: a node that hosts sessions and lets external agents
//! join them over the public gRPC API.
//!
//! Threads: tonic handlers run on the tokio runtime of the actix system;
//! sessions and their parties live on a few arbiters (round robin). A
//! handler reaches an agent's party through its `Addr<ExternalParty>`, and
//! each session reports its result on a channel that a small task turns into
//! the stored result, the watchers' last event and every agent's `Finished`.
//!
//! Security: TLS from PEM files (mutual TLS with `client_ca`), a bearer
//! token per external party issued by `CreateSession` (compared in constant
//! time), an optional admin token for the management RPCs, a maximum message
//! size, a per-turn deadline, and caps on sessions and connections per client
//! address. Misbehaviour ends only the offending party's participation (a
//! recorded violation); the server and other sessions carry on.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_stream::wrappers::{TcpListenerStream, UnboundedReceiverStream};
use tokio_stream::{Stream, StreamExt};
use tonic::transport::{Server, ServerTlsConfig};
use tonic::{Request, Response, Status, Streaming};
use tracing::Instrument;

use super::convert::{action_done, domain_to_pb, profile_to_pb, result_to_pb};
use super::external::{AgentAct, AttachSession, Bind, Disconnected, ExternalParty, LatencyLog, Outbound};
use super::pb;
use super::pb::cluster_server::ClusterServer;
use super::pb::negotiation_server::{Negotiation, NegotiationServer};
use crate::core::analysis::Analysis;
use crate::core::inverse::OutcomeIndex;
use crate::core::record::{Assessment, RecordContext, record};
use crate::core::rng::SplitMix64;
use crate::core::scenario::Scenario;
use crate::core::session::SessionResult;
use crate::core::strategy::StrategySpec;
use crate::engine::SessionSpec;
use crate::engine::actors::{PartyActor, PartyEndpoint, SessionActor, SessionReport};

/// Limits and timeouts of a node.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// How long an agent may take to answer a turn.
    pub turn_timeout: Duration,
    /// How long a session waits for its external agents to join.
    pub join_timeout: Duration,
    pub max_sessions: usize,
    /// Unfinished sessions created from one client address.
    pub max_sessions_per_client: usize,
    /// Agent streams open from one client address.
    pub max_connections_per_client: usize,
    /// Largest gRPC message accepted or sent.
    pub max_message_bytes: usize,
    /// If set, management RPCs need `authorization: Bearer <token>`.
    pub admin_token: Option<String>,
    /// Threads hosting sessions.
    pub arbiters: usize,
    /// Finished sessions kept for `GetResult` (oldest dropped first).
    pub keep_results: usize,
    /// Collect turn round-trip times (benchmarks).
    pub latencies: Option<Arc<LatencyLog>>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            turn_timeout: Duration::from_secs(10),
            join_timeout: Duration::from_secs(60),
            max_sessions: 10_000,
            max_sessions_per_client: 1_000,
            max_connections_per_client: 64,
            max_message_bytes: 1 << 20,
            admin_token: None,
            arbiters: std::thread::available_parallelism().map_or(1, |n| n.get()),
            keep_results: 100_000,
            latencies: None,
        }
    }
}

/// How a session started by a cluster launcher differs from one created
/// over the API (the default).
#[derive(Default)]
pub struct HostOptions {
    /// Per party, an outcome index shared with the scenario's other sessions.
    pub shared_indexes: Vec<Option<Arc<OutcomeIndex>>>,
    /// Keep every offer in the result (API sessions always do).
    pub trace: bool,
    /// Set: the raw result goes here when the session ends, and the session
    /// is forgotten (no record, no `GetResult`); the per-client session cap
    /// does not apply, the launcher bounds its sessions itself.
    pub on_result: Option<oneshot::Sender<SessionResult>>,
}

/// One external party's seat in a session.
struct Seat {
    party: usize,
    name: String,
    token: String,
    addr: Addr<ExternalParty>,
    /// The connection that joined it.
    bound: Option<u64>,
}

enum State {
    Running,
    Finished(Arc<pb::SessionResult>),
}

struct Hosted {
    scenario: String,
    parties: Vec<String>,
    seats: Vec<Seat>,
    state: State,
    client: IpAddr,
    watchers: broadcast::Sender<pb::SessionEvent>,
}

#[derive(Default)]
struct Registry {
    sessions: HashMap<String, Hosted>,
    finished_order: std::collections::VecDeque<String>,
    sessions_per_client: HashMap<IpAddr, usize>,
    connections_per_client: HashMap<IpAddr, usize>,
    /// Outbound streams by connection id, to deliver `Finished`.
    connections: HashMap<u64, Outbound>,
}

impl Registry {
    fn running(&self) -> usize {
        self.sessions.values().filter(|h| matches!(h.state, State::Running)).count()
    }
}

/// The service behind `negotium serve`.
#[derive(Clone)]
pub struct NegotiationService {
    config: Arc<ServerConfig>,
    registry: Arc<Mutex<Registry>>,
    arbiters: Arc<Vec<ArbiterHandle>>,
    next_arbiter: Arc<AtomicUsize>,
    next_connection: Arc<AtomicU64>,
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).expect("the OS random source is available");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// Equal-time comparison, so that a token cannot be guessed byte by byte.
fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn client_of<T>(req: &Request<T>) -> IpAddr {
    req.remote_addr().map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |a| a.ip())
}

fn lock(registry: &Mutex<Registry>) -> std::sync::MutexGuard<'_, Registry> {
    // A panic while holding the lock would be a bug; the data stays usable.
    registry.lock().unwrap_or_else(|e| e.into_inner())
}

impl NegotiationService {
    pub fn new(config: ServerConfig, arbiters: Vec<ArbiterHandle>) -> Self {
        Self {
            config: Arc::new(config),
            registry: Arc::new(Mutex::new(Registry::default())),
            arbiters: Arc::new(arbiters),
            next_arbiter: Arc::new(AtomicUsize::new(0)),
            next_connection: Arc::new(AtomicU64::new(0)),
        }
    }

    fn check_admin<T>(&self, req: &Request<T>) -> Result<(), Status> {
        let Some(expected) = &self.config.admin_token else { return Ok(()) };
        let given = req.metadata().get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
        match given.strip_prefix("Bearer ") {
            Some(t) if same_secret(t, expected) => Ok(()),
            _ => Err(Status::unauthenticated("management calls need `authorization: Bearer <admin token>`")),
        }
    }

    /// Starts a session for an API client; returns its id and the external
    /// parties' tokens.
    pub fn create(
        &self,
        scenario: Scenario,
        seed: u64,
        client: IpAddr,
        join_timeout: Duration,
    ) -> Result<(String, Vec<(String, String)>), Status> {
        self.host(scenario, seed, client, join_timeout, HostOptions::default())
    }

    /// Starts a session as [`NegotiationService::create`] does, with the
    /// cluster's options.
    pub fn host(
        &self,
        scenario: Scenario,
        seed: u64,
        client: IpAddr,
        join_timeout: Duration,
        options: HostOptions,
    ) -> Result<(String, Vec<(String, String)>), Status> {
        let launcher = options.on_result.is_some();
        {
            let reg = lock(&self.registry);
            if reg.running() >= self.config.max_sessions {
                return Err(Status::resource_exhausted(format!(
                    "this node runs its maximum of {} sessions",
                    self.config.max_sessions
                )));
            }
            // The launcher bounds its own sessions in flight.
            if !launcher
                && reg.sessions_per_client.get(&client).copied().unwrap_or(0) >= self.config.max_sessions_per_client
            {
                return Err(Status::resource_exhausted(format!(
                    "at most {} unfinished sessions per client",
                    self.config.max_sessions_per_client
                )));
            }
        }
        let session_id = random_hex(16);
        let prefs = scenario.preferences();
        let strategies: Vec<StrategySpec> = scenario
            .parties
            .iter()
            .map(|p| if p.external { StrategySpec::named("external") } else { p.strategy.clone() })
            .collect();
        let mut spec =
            SessionSpec::new(0, scenario.domain.clone(), prefs.clone(), strategies.clone(), scenario.deadline, seed)
                .with_trace(!launcher || options.trace);
        spec.shared_indexes = options.shared_indexes;
        spec.turn_timeout = self.config.turn_timeout;
        spec.start_timeout = join_timeout + Duration::from_secs(1);
        let (watch_tx, _) = broadcast::channel(1024);
        {
            let (tx, id, domain) = (watch_tx.clone(), session_id.clone(), scenario.domain.clone());
            spec.on_action = Some(Arc::new(move |e| {
                let _ = tx.send(pb::SessionEvent {
                    kind: Some(pb::session_event::Kind::Action(action_done(&id, &domain, e))),
                });
            }));
        }

        let arbiter = self.arbiters[self.next_arbiter.fetch_add(1, Ordering::Relaxed) % self.arbiters.len()].clone();
        let names: Vec<String> = scenario.parties.iter().map(|p| p.name.clone()).collect();
        let mut endpoints: Vec<PartyEndpoint> = Vec::new();
        let mut seats = Vec::new();
        for (k, party) in scenario.parties.iter().enumerate() {
            if party.external {
                let settings = pb::SessionSettings {
                    session_id: session_id.clone(),
                    party: party.name.clone(),
                    party_index: k as u32,
                    parties: names.clone(),
                    domain: Some(domain_to_pb(&scenario.domain)),
                    profile: Some(profile_to_pb(&party.preferences)),
                    protocol: "saop".into(),
                    deadline_rounds: scenario.deadline.rounds.unwrap_or(0),
                    deadline_seconds: scenario.deadline.seconds.unwrap_or(0.0),
                    turn_timeout_seconds: self.config.turn_timeout.as_secs_f64(),
                    party_seed: SplitMix64::derive(seed, k as u64).next_u64(),
                };
                let (id, domain, latencies) =
                    (session_id.clone(), scenario.domain.clone(), self.config.latencies.clone());
                let addr = ExternalParty::start_in_arbiter(&arbiter, move |_| {
                    ExternalParty::new(id, k, domain, settings, join_timeout, latencies)
                });
                endpoints.push(addr.clone().recipient());
                seats.push(Seat { party: k, name: party.name.clone(), token: random_hex(24), addr, bound: None });
            } else {
                let strategy = party.strategy.build().map_err(|e| Status::invalid_argument(e.to_string()))?;
                endpoints.push(PartyActor::start_in_arbiter(&arbiter, move |_| PartyActor::new(strategy)).recipient());
            }
        }
        let tokens: Vec<(String, String)> = seats.iter().map(|s| (s.name.clone(), s.token.clone())).collect();
        let externals: Vec<Addr<ExternalParty>> = seats.iter().map(|s| s.addr.clone()).collect();
        {
            let mut reg = lock(&self.registry);
            if !launcher {
                *reg.sessions_per_client.entry(client).or_default() += 1;
            }
            reg.sessions.insert(
                session_id.clone(),
                Hosted {
                    scenario: scenario.name.clone(),
                    parties: names,
                    seats,
                    state: State::Running,
                    client,
                    watchers: watch_tx,
                },
            );
        }
        let (report_tx, report_rx) = mpsc::unbounded_channel::<SessionReport>();
        let spec_for_actor = spec.clone();
        SessionActor::start_in_arbiter(&arbiter, move |ctx| {
            let me = ctx.address().recipient();
            for e in &externals {
                e.do_send(AttachSession(me.clone()));
            }
            SessionActor::new(&spec_for_actor, endpoints, report_tx)
        });
        tracing::info!(session = %session_id, scenario = %scenario.name, seed, "session created");
        match options.on_result {
            None => {
                tokio::spawn(self.clone().finish_when_done(session_id.clone(), scenario, seed, strategies, report_rx));
            }
            Some(on_result) => {
                tokio::spawn(self.clone().hand_over_when_done(
                    session_id.clone(),
                    scenario,
                    seed,
                    report_rx,
                    on_result,
                ));
            }
        }
        Ok((session_id, tokens))
    }

    /// A launcher's session: the raw result goes back to the launcher (which
    /// writes the record), the remote parties are told, and nothing is kept.
    async fn hand_over_when_done(
        self,
        session_id: String,
        scenario: Scenario,
        seed: u64,
        mut report: mpsc::UnboundedReceiver<SessionReport>,
        on_result: oneshot::Sender<SessionResult>,
    ) {
        let Some((_, result)) = report.recv().await else { return };
        let mut reg = lock(&self.registry);
        // Spread sessions have nobody to tell: no wire result for them.
        if let Some(hosted) = reg.sessions.remove(&session_id)
            && (hosted.seats.iter().any(|s| s.bound.is_some()) || hosted.watchers.receiver_count() > 0)
        {
            let public = result_to_pb(&session_id, &scenario.name, seed, &scenario.domain, &result, String::new());
            Self::tell_finished(&reg.connections, &session_id, &hosted, &Arc::new(public));
        }
        drop(reg);
        let _ = on_result.send(result);
    }

    /// Sends `Finished` to watchers and to every stream that joined a party.
    fn tell_finished(
        connections: &HashMap<u64, Outbound>,
        session_id: &str,
        hosted: &Hosted,
        result: &Arc<pb::SessionResult>,
    ) {
        let _ = hosted
            .watchers
            .send(pb::SessionEvent { kind: Some(pb::session_event::Kind::Finished((**result).clone())) });
        for conn in hosted.seats.iter().filter_map(|s| s.bound) {
            if let Some(out) = connections.get(&conn) {
                let _ = out.send(Ok(pb::ServerMessage {
                    kind: Some(pb::server_message::Kind::Finished(pb::Finished {
                        session_id: session_id.to_string(),
                        result: Some((**result).clone()),
                    })),
                }));
            }
        }
    }

    /// Waits for a session's result and publishes it.
    async fn finish_when_done(
        self,
        session_id: String,
        scenario: Scenario,
        seed: u64,
        strategies: Vec<StrategySpec>,
        mut report: mpsc::UnboundedReceiver<SessionReport>,
    ) {
        let Some((_, result)) = report.recv().await else { return };
        let id = session_id.clone();
        // Analysis can take a while on large spaces: off the async threads.
        let record_json = tokio::task::spawn_blocking(move || {
            let prefs = scenario.preferences();
            let refs: Vec<&_> = prefs.iter().map(|p| p.as_ref()).collect();
            let analysis = Analysis::run(&scenario.domain, &refs, seed);
            let labels: Vec<String> = strategies.iter().map(ToString::to_string).collect();
            let cx = RecordContext {
                scenario: &scenario,
                preferences: &prefs,
                analysis: &analysis,
                engine: "serve",
                strategies: &labels,
            };
            let line = record(&cx, id.clone().into(), seed, &result, &Assessment::of(&analysis, &result)).to_string();
            result_to_pb(&id, &scenario.name, seed, &scenario.domain, &result, line)
        })
        .await;
        let Ok(result) = record_json else { return };
        tracing::info!(session = %session_id, ended_by = %result.ended_by, "session finished");
        let result = Arc::new(result);
        let mut guard = lock(&self.registry);
        let reg = &mut *guard;
        let Some(hosted) = reg.sessions.get_mut(&session_id) else { return };
        hosted.state = State::Finished(result.clone());
        let client = hosted.client;
        Self::tell_finished(&reg.connections, &session_id, hosted, &result);
        if let Some(n) = reg.sessions_per_client.get_mut(&client) {
            *n = n.saturating_sub(1);
        }
        reg.finished_order.push_back(session_id);
        while reg.finished_order.len() > self.config.keep_results {
            if let Some(old) = reg.finished_order.pop_front() {
                reg.sessions.remove(&old);
            }
        }
    }

    /// Handles one agent stream until it ends.
    async fn serve_agent(self, conn: u64, client: IpAddr, mut inbound: Streaming<pb::AgentMessage>, out: Outbound) {
        // (session id) -> (party, endpoint) joined on this connection.
        let mut joined: HashMap<String, (usize, Addr<ExternalParty>)> = HashMap::new();
        let error = |session_id: &str, code: &str, message: String| {
            let _ = out.send(Ok(pb::ServerMessage {
                kind: Some(pb::server_message::Kind::Error(pb::Error {
                    session_id: session_id.to_string(),
                    code: code.to_string(),
                    message,
                })),
            }));
        };
        let end_reason = loop {
            let msg = match inbound.next().await {
                None => break "the agent closed its stream".to_string(),
                Some(Err(status)) => break format!("the agent's stream broke: {}", status.message()),
                Some(Ok(m)) => m,
            };
            match msg.kind {
                Some(pb::agent_message::Kind::Join(j)) => {
                    // Forget finished sessions, so a long-lived stream does
                    // not accumulate them.
                    joined.retain(|_, (_, addr)| addr.connected());
                    let seat = {
                        let mut reg = lock(&self.registry);
                        match reg.sessions.get_mut(&j.session_id) {
                            None => Err(("not-found", format!("no session `{}`", j.session_id))),
                            Some(h) if matches!(h.state, State::Finished(_)) => {
                                Err(("finished", "the session is over".into()))
                            }
                            Some(h) => match h.seats.iter_mut().find(|s| s.name == j.party) {
                                None => Err(("not-found", format!("no external party `{}` in this session", j.party))),
                                Some(s) if !same_secret(&s.token, &j.token) => {
                                    Err(("unauthenticated", "wrong token for this party".into()))
                                }
                                Some(s) if s.bound.is_some() => {
                                    Err(("already-joined", "this party has already been joined".into()))
                                }
                                Some(s) => {
                                    s.bound = Some(conn);
                                    Ok((s.party, s.addr.clone()))
                                }
                            },
                        }
                    };
                    match seat {
                        Err((code, message)) => {
                            tracing::warn!(session = %j.session_id, party = %j.party, code, "join refused");
                            error(&j.session_id, code, message);
                        }
                        Ok((party, addr)) => match addr.send(Bind(out.clone())).await {
                            Ok(Ok(())) => {
                                joined.insert(j.session_id.clone(), (party, addr));
                            }
                            Ok(Err(message)) => error(&j.session_id, "already-joined", message),
                            Err(_) => error(&j.session_id, "finished", "the session is over".into()),
                        },
                    }
                }
                Some(pb::agent_message::Kind::Act(a)) => match joined.get(&a.session_id) {
                    Some((_, addr)) => {
                        // The party's endpoint stops with its session.
                        if addr.try_send(AgentAct { turn: a.turn, action: a.action }).is_err() {
                            joined.remove(&a.session_id);
                            error(&a.session_id, "finished", "the session is over".into());
                        }
                    }
                    None => {
                        // "finished" only to the stream that played it.
                        let over = lock(&self.registry).sessions.get(&a.session_id).is_some_and(|h| {
                            matches!(h.state, State::Finished(_)) && h.seats.iter().any(|s| s.bound == Some(conn))
                        });
                        if over {
                            error(&a.session_id, "finished", "the session is over".into());
                        } else {
                            error(&a.session_id, "not-joined", "this stream has not joined that session".into());
                        }
                    }
                },
                None => error("", "malformed", "a message without content".into()),
            }
        };
        tracing::info!(reason = %end_reason, sessions = joined.len(), "agent stream ended");
        for (_, (_, addr)) in joined {
            addr.do_send(Disconnected(format!("connection dropped: {end_reason}")));
        }
        let mut reg = lock(&self.registry);
        reg.connections.remove(&conn);
        if let Some(n) = reg.connections_per_client.get_mut(&client) {
            *n = n.saturating_sub(1);
        }
    }
}

type EventStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl Negotiation for NegotiationService {
    async fn create_session(
        &self,
        req: Request<pb::CreateSessionRequest>,
    ) -> Result<Response<pb::CreateSessionResponse>, Status> {
        self.check_admin(&req)?;
        let client = client_of(&req);
        let r = req.into_inner();
        let scenario =
            Scenario::parse(&r.scenario_toml, "scenario").map_err(|e| Status::invalid_argument(e.to_string()))?;
        if scenario.parties.iter().any(|p| !p.external && p.strategy.build().is_err()) {
            return Err(Status::invalid_argument("a local party's strategy does not build"));
        }
        let seed = if r.has_seed { r.seed } else { scenario.seed };
        let join_timeout = if r.join_timeout_seconds > 0.0 && r.join_timeout_seconds.is_finite() {
            Duration::from_secs_f64(r.join_timeout_seconds.min(3600.0))
        } else {
            self.config.join_timeout
        };
        let (session_id, tokens) = self.create(scenario, seed, client, join_timeout)?;
        Ok(Response::new(pb::CreateSessionResponse {
            session_id,
            tokens: tokens.into_iter().map(|(party, token)| pb::PartyToken { party, token }).collect(),
        }))
    }

    async fn list_sessions(
        &self,
        req: Request<pb::ListSessionsRequest>,
    ) -> Result<Response<pb::ListSessionsResponse>, Status> {
        self.check_admin(&req)?;
        let reg = lock(&self.registry);
        let mut sessions: Vec<pb::SessionInfo> = reg
            .sessions
            .iter()
            .map(|(id, h)| {
                let waiting_for: Vec<String> =
                    h.seats.iter().filter(|s| s.bound.is_none()).map(|s| s.name.clone()).collect();
                let state = match h.state {
                    State::Finished(_) => "finished",
                    State::Running if !waiting_for.is_empty() => "waiting",
                    State::Running => "running",
                };
                pb::SessionInfo {
                    session_id: id.clone(),
                    scenario: h.scenario.clone(),
                    state: state.into(),
                    parties: h.parties.clone(),
                    waiting_for,
                }
            })
            .collect();
        sessions.sort_by(|a, b| a.session_id.cmp(&b.session_id));
        Ok(Response::new(pb::ListSessionsResponse { sessions }))
    }

    type WatchSessionStream = EventStream<pb::SessionEvent>;

    async fn watch_session(
        &self,
        req: Request<pb::WatchSessionRequest>,
    ) -> Result<Response<Self::WatchSessionStream>, Status> {
        self.check_admin(&req)?;
        let id = req.into_inner().session_id;
        let reg = lock(&self.registry);
        let hosted = reg.sessions.get(&id).ok_or_else(|| Status::not_found(format!("no session `{id}`")))?;
        if let State::Finished(result) = &hosted.state {
            let event = pb::SessionEvent { kind: Some(pb::session_event::Kind::Finished((**result).clone())) };
            return Ok(Response::new(Box::pin(tokio_stream::once(Ok(event)))));
        }
        let mut rx = hosted.watchers.subscribe();
        let (tx, out) = mpsc::unbounded_channel();
        // Forwards until the result; a watcher too slow for the broadcast
        // buffer (1,024 events) misses the events it lagged behind on.
        tokio::spawn(async move {
            loop {
                match rx.recv().await {
                    Ok(e) => {
                        let last = matches!(e.kind, Some(pb::session_event::Kind::Finished(_)));
                        if tx.send(Ok(e)).is_err() || last {
                            break;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => break,
                }
            }
        });
        let stream = UnboundedReceiverStream::new(out);
        Ok(Response::new(Box::pin(stream)))
    }

    async fn get_result(&self, req: Request<pb::GetResultRequest>) -> Result<Response<pb::SessionResult>, Status> {
        self.check_admin(&req)?;
        let id = req.into_inner().session_id;
        let reg = lock(&self.registry);
        match reg.sessions.get(&id).map(|h| &h.state) {
            None => Err(Status::not_found(format!("no session `{id}`"))),
            Some(State::Running) => Err(Status::failed_precondition("the session has not finished")),
            Some(State::Finished(r)) => Ok(Response::new((**r).clone())),
        }
    }

    type NegotiateStream = EventStream<pb::ServerMessage>;

    async fn negotiate(
        &self,
        req: Request<Streaming<pb::AgentMessage>>,
    ) -> Result<Response<Self::NegotiateStream>, Status> {
        let client = client_of(&req);
        let conn = self.next_connection.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::unbounded_channel();
        {
            let mut reg = lock(&self.registry);
            let open = reg.connections_per_client.entry(client).or_default();
            if *open >= self.config.max_connections_per_client {
                return Err(Status::resource_exhausted(format!(
                    "at most {} agent streams per client",
                    self.config.max_connections_per_client
                )));
            }
            *open += 1;
            reg.connections.insert(conn, tx.clone());
        }
        let span = tracing::info_span!("connection", conn, client = %client);
        tokio::spawn(self.clone().serve_agent(conn, client, req.into_inner(), tx).instrument(span));
        Ok(Response::new(Box::pin(UnboundedReceiverStream::new(rx))))
    }
}

/// TLS material as PEM text.
#[derive(Debug, Clone, Default)]
pub struct TlsFiles {
    pub cert: String,
    pub key: String,
    /// Requiring client certificates signed by this CA (mutual TLS).
    pub client_ca: Option<String>,
}

/// A node's session hosting: the service and the arbiters its sessions live on.
pub struct Hosting {
    pub service: NegotiationService,
    arbiters: Vec<Arbiter>,
}

impl Hosting {
    /// Call on the thread of a running actix system (it starts the arbiters
    /// that host sessions there).
    pub fn start(config: ServerConfig) -> Self {
        let arbiters: Vec<Arbiter> = (0..config.arbiters.max(1)).map(|_| Arbiter::new()).collect();
        let handles = arbiters.iter().map(Arbiter::handle).collect();
        Self { service: NegotiationService::new(config, handles), arbiters }
    }

    /// Serves the public API (and, on a cluster node, the cluster service)
    /// on `listener` until `shutdown` completes; the future may be spawned
    /// anywhere.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        tls: Option<TlsFiles>,
        cluster: Option<ClusterServer<super::cluster::node::NodeService>>,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), tonic::transport::Error> {
        let max = self.service.config.max_message_bytes;
        let mut builder = Server::builder().tcp_nodelay(true).http2_keepalive_interval(Some(Duration::from_secs(20)));
        if let Some(t) = tls {
            let mut tls = ServerTlsConfig::new().identity(tonic::transport::Identity::from_pem(t.cert, t.key));
            if let Some(ca) = t.client_ca {
                tls = tls.client_ca_root(tonic::transport::Certificate::from_pem(ca));
            }
            builder = builder.tls_config(tls)?;
        }
        let svc = NegotiationServer::new(self.service).max_decoding_message_size(max).max_encoding_message_size(max);
        // `tcp_nodelay` above only applies to sockets tonic binds itself:
        // without it on ours, small turn messages wait for delayed ACKs (40 ms).
        let incoming = TcpListenerStream::new(listener).map(|conn| {
            conn.inspect(|stream| {
                let _ = stream.set_nodelay(true);
            })
        });
        let result = builder
            .add_service(svc)
            .add_optional_service(cluster)
            .serve_with_incoming_shutdown(incoming, shutdown)
            .await;
        for a in self.arbiters {
            a.stop();
        }
        result
    }
}

/// Serves on `listener` until `shutdown` completes. Call it on the thread
/// of a running actix system (see [`Hosting::start`]); the returned future
/// may then be spawned anywhere.
pub fn serve(
    config: ServerConfig,
    listener: tokio::net::TcpListener,
    tls: Option<TlsFiles>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> impl std::future::Future<Output = Result<(), tonic::transport::Error>> + Send {
    Hosting::start(config).serve(listener, tls, None, shutdown)
}

/// Runs a node in a fresh actix system on a multi-threaded tokio runtime,
/// printing `listening on ADDR` once the port is bound. Blocks until ctrl-c.
pub fn run_node(addr: SocketAddr, config: ServerConfig, tls: Option<TlsFiles>) -> anyhow::Result<()> {
    let system = actix::System::with_tokio_rt(|| {
        tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a tokio runtime")
    });
    system.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        println!("listening on {}", listener.local_addr()?);
        use std::io::Write as _;
        std::io::stdout().flush()?;
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        serve(config, listener, tls, shutdown).await?;
        Ok(())
    })
}
