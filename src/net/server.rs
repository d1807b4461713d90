//! `negotium serve`: a node that hosts sessions and lets external agents
//! join them over the public gRPC API.
//!
//! Threads: tonic handlers run on the tokio runtime of the actix system;
//! sessions and their parties live on a few arbiters (round robin). A
//! handler reaches an agent's party through its `Addr<ExternalParty>`, and
//! each session reports its result on a channel that a small task turns into
//! the stored result, the watchers' last event and every agent's `Finished`.
//! Parsing a scenario and analysing a result run on the blocking pool, a
//! few at a time (see `NegotiationService::heavy`).
//!
//! What a caller may cost (see README "Security"): every scenario is checked
//! ([`Scenario::check`]) and admitted under [`Limits`]; a session's estimated
//! memory is reserved from [`MemoryBudget`] before anything is built; results
//! are kept within a count and a byte budget; agent streams are bounded in
//! bytes ([`super::outbound`]); connections by [`super::gate`]; credentials
//! by [`super::auth`].

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use actix::prelude::*;
use prost::Message as _;
use tokio::sync::{Semaphore, broadcast, mpsc, oneshot};
use tokio_stream::Stream;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tonic::service::Routes;
use tonic::{Request, Response, Status, Streaming};
use tracing::Instrument;

use super::auth::{Caller, Credentials, same_secret};
use super::convert::{Decoder, action_done, domain_to_pb, profile_to_pb, result_to_pb};
use super::external::{AttachSession, ExternalParty, LatencyLog};
use super::gate::{Gate, GateConfig};
use super::outbound;
use super::pb;
use super::pb::cluster_server::ClusterServer;
use super::pb::negotiation_server::{Negotiation, NegotiationServer};
use super::registry::{Done, Entry, Live, MemoryBudget, Registry, Retention, Seat, WATCH_BUFFER, Watchers};
pub use super::transport::TlsFiles;
use super::transport::{self, Exposure};
use super::untrusted::{LogBudget, shown};
use crate::core::analysis::Analysis;
use crate::core::inverse::OutcomeIndex;
use crate::core::limits::{Footprint, Limits};
use crate::core::record::{Assessment, RecordContext, record};
use crate::core::rng::SplitMix64;
use crate::core::scenario::{ModelSource, Scenario};
use crate::core::session::SessionResult;
use crate::core::strategy::StrategySpec;
use crate::engine::SessionSpec;
use crate::engine::actors::{Abort, PartyActor, PartyEndpoint, SessionActor, SessionReport};

/// Limits and timeouts of a node. Every field has a `negotium serve` flag.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// How long an agent may take to answer a turn.
    pub turn_timeout: Duration,
    /// How long a session waits for its external agents to join.
    pub join_timeout: Duration,
    /// Sessions running at once.
    pub max_sessions: usize,
    /// Sessions one client address may have running or kept (finished,
    /// result not yet dropped) at once.
    pub max_sessions_per_client: usize,
    /// Agent streams from one client address that have not joined a party.
    pub max_unseated_streams_per_client: usize,
    /// Parties one agent stream may play at once.
    pub max_seats_per_stream: usize,
    /// An agent stream that plays no party for this long is closed.
    pub unseated_stream_timeout: Duration,
    /// Largest gRPC message a client may send.
    pub max_message_bytes: usize,
    pub credentials: Credentials,
    /// TCP connections: caps and idle timeouts.
    pub connections: GateConfig,
    /// What a scenario may be (issues, values, parties, deadline).
    pub limits: Limits,
    /// Estimated bytes all running sessions may hold together.
    pub session_memory: u64,
    /// Finished sessions kept for `GetResult` (oldest dropped first) ...
    pub keep_results: usize,
    /// ... and the bytes their results may take together.
    pub keep_result_bytes: u64,
    /// Models remote scenarios may name (`{ learned = "NAME" }` is
    /// `NAME.mpk` here); `None`: no learned strategies from callers.
    pub models: Option<PathBuf>,
    /// Threads hosting sessions.
    pub arbiters: usize,
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
            max_unseated_streams_per_client: 16,
            max_seats_per_stream: 4_096,
            unseated_stream_timeout: Duration::from_secs(60),
            max_message_bytes: 1 << 20,
            credentials: Credentials::default(),
            connections: GateConfig::default(),
            limits: Limits::default(),
            session_memory: 2 << 30,
            keep_results: 100_000,
            keep_result_bytes: 256 << 20,
            models: None,
            arbiters: std::thread::available_parallelism().map_or(1, |n| n.get()),
            latencies: None,
        }
    }
}

/// Largest message the server sends: a result's record carries its whole
/// trace (the round cap bounds it), far above what clients may send.
const MAX_SENT_MESSAGE: usize = 64 << 20;

/// How a session started by a cluster launcher differs from one created
/// over the API (the default).
#[derive(Default)]
pub struct HostOptions {
    /// Per party, an outcome index shared with the scenario's other sessions.
    pub shared_indexes: Vec<Option<Arc<OutcomeIndex>>>,
    /// Keep every offer in the result (API sessions always do).
    pub trace: bool,
    /// Set: the raw result goes here when the session ends, and the session
    /// is forgotten (no record, no `GetResult`); the per-client cap does
    /// not apply, the node bounds each launcher's sessions itself.
    pub on_result: Option<oneshot::Sender<SessionResult>>,
}

/// A session just created: its id, a token per external party, and the
/// owner's token for `CancelSession`.
#[derive(Debug, Clone)]
pub struct Created {
    pub session_id: String,
    pub tokens: Vec<(String, String)>,
    pub owner_token: String,
}

/// The service behind `negotium serve`.
#[derive(Clone)]
pub struct NegotiationService {
    pub(super) config: Arc<ServerConfig>,
    pub(super) registry: Arc<Mutex<Registry>>,
    arbiters: Arc<Vec<ArbiterHandle>>,
    next_arbiter: Arc<AtomicUsize>,
    pub(super) next_connection: Arc<AtomicU64>,
    /// What running sessions may hold together.
    pub(super) memory: Arc<MemoryBudget>,
    /// Parsing and analysis a caller can ask for run on the blocking pool,
    /// at most this many at once, so they never take every thread.
    heavy: Arc<Semaphore>,
}

pub(super) fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).expect("the OS random source is available");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

pub(super) fn lock(registry: &Mutex<Registry>) -> std::sync::MutexGuard<'_, Registry> {
    // A panic while holding the lock would be a bug; the data stays usable.
    registry.lock().unwrap_or_else(|e| e.into_inner())
}

static CREATE_LOG: LogBudget = LogBudget::new(20);

impl NegotiationService {
    pub fn new(config: ServerConfig, arbiters: Vec<ArbiterHandle>) -> Self {
        let heavy = Arc::new(Semaphore::new(config.arbiters.max(1)));
        Self {
            memory: MemoryBudget::new(config.session_memory),
            config: Arc::new(config),
            registry: Arc::new(Mutex::new(Registry::default())),
            arbiters: Arc::new(arbiters),
            next_arbiter: Arc::new(AtomicUsize::new(0)),
            next_connection: Arc::new(AtomicU64::new(0)),
            heavy,
        }
    }

    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// Estimated bytes held by running sessions, and finished results kept.
    pub fn memory_in_use(&self) -> (u64, usize, u64) {
        let (n, bytes) = lock(&self.registry).retained();
        (self.memory.used(), n, bytes)
    }

    fn retention(&self) -> Retention {
        Retention { count: self.config.keep_results, bytes: self.config.keep_result_bytes }
    }

    /// Runs `f` on the blocking pool under the heavy-work permits.
    async fn heavy<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Result<T, Status> {
        let _permit = self.heavy.acquire().await.map_err(|_| Status::unavailable("the server is stopping"))?;
        tokio::task::spawn_blocking(f).await.map_err(|_| Status::internal("a worker thread failed"))
    }

    /// Starts a session for an API client.
    pub fn create(
        &self,
        scenario: Scenario,
        seed: u64,
        client: IpAddr,
        join_timeout: Duration,
    ) -> Result<Created, Status> {
        self.host(scenario, seed, Some(client), join_timeout, HostOptions::default())
    }

    /// Starts a session: `client` is the API client it counts against
    /// (`None` for a launcher's, with `options.on_result` set).
    pub fn host(
        &self,
        scenario: Scenario,
        seed: u64,
        client: Option<IpAddr>,
        join_timeout: Duration,
        options: HostOptions,
    ) -> Result<Created, Status> {
        let launcher = options.on_result.is_some();
        let local: Vec<bool> = scenario.parties.iter().map(|p| !p.external).collect();
        let footprint = Footprint::of(&scenario, &local, !options.shared_indexes.is_empty());
        let memory = self.memory.reserve(footprint.running, "this session").map_err(Status::resource_exhausted)?;
        {
            let mut reg = lock(&self.registry);
            if reg.running() >= self.config.max_sessions {
                return Err(Status::resource_exhausted(format!(
                    "this node runs its maximum of {} sessions (--max-sessions)",
                    self.config.max_sessions
                )));
            }
            if let Some(c) = client
                && !reg.make_room(c, self.config.max_sessions_per_client)
            {
                return Err(Status::resource_exhausted(format!(
                    "at most {} unfinished sessions per client (--max-sessions-per-client)",
                    self.config.max_sessions_per_client
                )));
            }
        }
        let session_id = random_hex(16);
        let owner_token = random_hex(24);
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
        // Counted from the start, the wait for agents included.
        spec.wall_limit = Duration::try_from_secs_f64(self.config.limits.max_seconds).ok();
        let watchers = Watchers::default();
        {
            let (cell, id, domain) = (watchers.clone(), session_id.clone(), scenario.domain.clone());
            spec.on_action = Some(Arc::new(move |e| {
                if let Some(tx) = cell.get() {
                    let _ = tx.send(pb::SessionEvent {
                        kind: Some(pb::session_event::Kind::Action(action_done(&id, &domain, e))),
                    });
                }
            }));
        }

        let arbiter = self.arbiters[self.next_arbiter.fetch_add(1, Ordering::Relaxed) % self.arbiters.len()].clone();
        let names: Vec<String> = scenario.parties.iter().map(|p| p.name.clone()).collect();
        let decoder = Arc::new(Decoder::new(scenario.domain.clone()));
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
                let (id, decoder, latencies) = (session_id.clone(), decoder.clone(), self.config.latencies.clone());
                let addr = ExternalParty::start_in_arbiter(&arbiter, move |_| {
                    ExternalParty::new(id, k, decoder, settings, join_timeout, latencies)
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
        // One report per session: the channel cannot grow.
        let (report_tx, report_rx) = mpsc::unbounded_channel::<SessionReport>();
        // Refused here, before the actor exists; one endpoint per scenario
        // party makes this unreachable from a checked scenario.
        let actor =
            SessionActor::new(&spec, endpoints, report_tx).map_err(|e| Status::invalid_argument(e.to_string()))?;
        let session = SessionActor::start_in_arbiter(&arbiter, move |ctx| {
            let me = ctx.address().recipient();
            for e in &externals {
                e.do_send(AttachSession(me.clone()));
            }
            actor
        });
        lock(&self.registry).insert(
            session_id.clone(),
            Live {
                scenario: scenario.name.clone(),
                parties: names,
                seats,
                client,
                owner: owner_token.clone(),
                watchers,
                session: Some(session),
                _memory: memory,
            },
        );
        if let Some(suppressed) = CREATE_LOG.allow() {
            tracing::info!(session = %session_id, scenario = %shown(&scenario.name), seed, suppressed, "session created");
        }
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
        Ok(Created { session_id, tokens, owner_token })
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
        if let Some(live) = reg.remove_live(&session_id)
            && (live.seats.iter().any(|s| s.bound.is_some()) || live.watchers.get().is_some())
        {
            let public = result_to_pb(&session_id, &scenario.name, seed, &scenario.domain, &result, String::new());
            Self::tell_finished(&reg, &session_id, &live, &public);
        }
        drop(reg);
        let _ = on_result.send(result);
    }

    /// Sends `Finished` to watchers and to every stream that joined a party.
    fn tell_finished(reg: &Registry, session_id: &str, live: &Live, result: &pb::SessionResult) {
        if let Some(w) = live.watchers.get() {
            let _ = w.send(pb::SessionEvent { kind: Some(pb::session_event::Kind::Finished(result.clone())) });
        }
        for seat in &live.seats {
            let Some(out) = seat.bound.and_then(|c| reg.connections.get(&c)) else { continue };
            // A stream that is gone or cut off has nothing more to read.
            let _ = out.send(pb::server_message::Kind::Finished(pb::Finished {
                session_id: session_id.to_string(),
                result: Some(result.clone()),
                party: seat.name.clone(),
            }));
        }
    }

    /// Waits for a session's result, analyses it, and publishes it.
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
        // Analysis can take a while on large spaces: off the async threads,
        // a few at a time (its memory is bounded by the sample budgets).
        let built = self
            .heavy(move || {
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
                let line =
                    record(&cx, id.clone().into(), seed, &result, &Assessment::of(&analysis, &result)).to_string();
                (scenario.name.clone(), result_to_pb(&id, &scenario.name, seed, &scenario.domain, &result, line))
            })
            .await;
        let Ok((scenario_name, result)) = built else { return };
        tracing::info!(session = %session_id, ended_by = %result.ended_by, "session finished");
        let bytes = result.encoded_len() as u64;
        let mut reg = lock(&self.registry);
        let Some(Entry::Live(live)) = reg.sessions.get(&session_id) else { return };
        Self::tell_finished(&reg, &session_id, live, &result);
        let done = Done {
            scenario: scenario_name,
            parties: live.parties.clone(),
            client: live.client,
            result: Arc::new(result),
            bytes,
        };
        reg.finish(&session_id, done, self.retention());
    }

    /// Parses and admits a scenario a remote caller sent: the file checks,
    /// the server's limits, and models only from `--models`.
    fn admit(config: &ServerConfig, text: &str) -> Result<Scenario, Status> {
        let scenario = Scenario::parse_from(text, "scenario", ModelSource::Published(config.models.as_deref()))
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        config.limits.admit(&scenario).map_err(Status::invalid_argument)?;
        Ok(scenario)
    }
}

type EventStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// A session's events for one watcher, ending with its result. A watcher
/// that falls [`WATCH_BUFFER`] events behind is cut off with a status
/// rather than buffered.
struct WatchStream {
    inner: BroadcastStream<pb::SessionEvent>,
    done: bool,
}

impl Stream for WatchStream {
    type Item = Result<pb::SessionEvent, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        match Pin::new(&mut self.inner).poll_next(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Ready(Some(Ok(e))) => {
                self.done = matches!(e.kind, Some(pb::session_event::Kind::Finished(_)));
                Poll::Ready(Some(Ok(e)))
            }
            Poll::Ready(Some(Err(BroadcastStreamRecvError::Lagged(n)))) => {
                self.done = true;
                Poll::Ready(Some(Err(Status::resource_exhausted(format!(
                    "the watcher fell {n} events behind and was cut off (it must read as fast as the session acts)"
                )))))
            }
        }
    }
}

/// The most sessions one `ListSessions` page holds.
const MAX_PAGE: usize = 1_000;

#[tonic::async_trait]
impl Negotiation for NegotiationService {
    async fn create_session(
        &self,
        req: Request<pb::CreateSessionRequest>,
    ) -> Result<Response<pb::CreateSessionResponse>, Status> {
        let caller = Caller::of(&req);
        let r = req.into_inner();
        let config = self.config.clone();
        // Parsing a large scenario and building its strategies (a learned
        // model is read from disk) is heavy: off the async threads.
        let scenario = self.heavy(move || Self::admit(&config, &r.scenario_toml).map(|s| (s, r))).await??;
        let (scenario, r) = scenario;
        let seed = if r.has_seed { r.seed } else { scenario.seed };
        let join_timeout = if r.join_timeout_seconds > 0.0 && r.join_timeout_seconds.is_finite() {
            Duration::from_secs_f64(r.join_timeout_seconds.min(3600.0))
        } else {
            self.config.join_timeout
        };
        let created = self.create(scenario, seed, caller.client, join_timeout)?;
        Ok(Response::new(pb::CreateSessionResponse {
            session_id: created.session_id,
            tokens: created.tokens.into_iter().map(|(party, token)| pb::PartyToken { party, token }).collect(),
            owner_token: created.owner_token,
        }))
    }

    async fn list_sessions(
        &self,
        req: Request<pb::ListSessionsRequest>,
    ) -> Result<Response<pb::ListSessionsResponse>, Status> {
        let r = req.into_inner();
        let size = if r.page_size == 0 { 100 } else { (r.page_size as usize).min(MAX_PAGE) };
        // Half the message budget: names are capped, but a page of many
        // many-party sessions must still fit in one message.
        let budget = self.config.max_message_bytes / 2;
        let reg = lock(&self.registry);
        let mut sessions = Vec::new();
        let mut bytes = 0;
        let mut next_page_token = String::new();
        let from = (std::ops::Bound::Excluded(r.page_token.clone()), std::ops::Bound::Unbounded);
        let range =
            if r.page_token.is_empty() { reg.sessions.range::<String, _>(..) } else { reg.sessions.range(from) };
        for (id, entry) in range {
            let info = match entry {
                Entry::Live(l) => {
                    let waiting_for: Vec<String> =
                        l.seats.iter().filter(|s| s.bound.is_none()).map(|s| s.name.clone()).collect();
                    pb::SessionInfo {
                        session_id: id.clone(),
                        scenario: l.scenario.clone(),
                        state: if waiting_for.is_empty() { "running" } else { "waiting" }.into(),
                        parties: l.parties.clone(),
                        waiting_for,
                        ended_by: String::new(),
                    }
                }
                Entry::Done(d) => pb::SessionInfo {
                    session_id: id.clone(),
                    scenario: d.scenario.clone(),
                    state: "finished".into(),
                    parties: d.parties.clone(),
                    waiting_for: Vec::new(),
                    ended_by: d.result.ended_by.clone(),
                },
            };
            let b = info.encoded_len() + 8;
            if sessions.len() == size || (bytes + b > budget && !sessions.is_empty()) {
                next_page_token = sessions.last().map(|s: &pb::SessionInfo| s.session_id.clone()).unwrap_or_default();
                break;
            }
            bytes += b;
            sessions.push(info);
        }
        Ok(Response::new(pb::ListSessionsResponse { sessions, next_page_token }))
    }

    type WatchSessionStream = EventStream<pb::SessionEvent>;

    async fn watch_session(
        &self,
        req: Request<pb::WatchSessionRequest>,
    ) -> Result<Response<Self::WatchSessionStream>, Status> {
        let id = req.into_inner().session_id;
        let reg = lock(&self.registry);
        match reg.sessions.get(&id) {
            None => Err(Status::not_found(format!("no session `{}`", shown(&id)))),
            Some(Entry::Done(d)) => {
                let event = pb::SessionEvent { kind: Some(pb::session_event::Kind::Finished((*d.result).clone())) };
                Ok(Response::new(Box::pin(tokio_stream::once(Ok(event)))))
            }
            Some(Entry::Live(l)) => {
                let rx = l.watchers.get_or_init(|| broadcast::channel(WATCH_BUFFER).0).subscribe();
                Ok(Response::new(Box::pin(WatchStream { inner: BroadcastStream::new(rx), done: false })))
            }
        }
    }

    async fn get_result(&self, req: Request<pb::GetResultRequest>) -> Result<Response<pb::SessionResult>, Status> {
        let id = req.into_inner().session_id;
        let reg = lock(&self.registry);
        match reg.sessions.get(&id) {
            None => Err(Status::not_found(format!("no session `{}`", shown(&id)))),
            Some(Entry::Live(_)) => Err(Status::failed_precondition("the session has not finished")),
            Some(Entry::Done(d)) => Ok(Response::new((*d.result).clone())),
        }
    }

    async fn cancel_session(
        &self,
        req: Request<pb::CancelSessionRequest>,
    ) -> Result<Response<pb::CancelSessionResponse>, Status> {
        let caller = Caller::of(&req);
        let r = req.into_inner();
        let mut reg = lock(&self.registry);
        let live = match reg.sessions.get_mut(&r.session_id) {
            None => return Err(Status::not_found(format!("no session `{}`", shown(&r.session_id)))),
            Some(Entry::Done(_)) => return Err(Status::failed_precondition("the session has already finished")),
            Some(Entry::Live(l)) => l,
        };
        let owner = !r.owner_token.is_empty() && same_secret(&live.owner, &r.owner_token);
        if !(caller.admin || owner) {
            return Err(Status::permission_denied("cancelling a session needs its owner token or the admin token"));
        }
        let by = if owner { "its owner" } else { "an admin" };
        if let Some(session) = &live.session {
            session.do_send(Abort(format!("cancelled by {by}")));
        }
        tracing::info!(session = %shown(&r.session_id), by, "session cancelled");
        Ok(Response::new(pb::CancelSessionResponse {}))
    }

    type NegotiateStream = EventStream<pb::ServerMessage>;

    async fn negotiate(
        &self,
        req: Request<Streaming<pb::AgentMessage>>,
    ) -> Result<Response<Self::NegotiateStream>, Status> {
        let caller = Caller::of(&req);
        let conn = self.next_connection.fetch_add(1, Ordering::Relaxed);
        let (out, stream) = outbound::channel();
        {
            let mut reg = lock(&self.registry);
            reg.connections.insert(conn, out.clone());
            // Cluster members (other nodes' links) keep streams open between
            // sessions; anonymous agents' streams are capped per address
            // until they join a party.
            if !caller.cluster_member {
                reg.unseated_open(caller.client, conn, self.config.max_unseated_streams_per_client);
            }
        }
        let span = tracing::info_span!("connection", conn, client = %caller.client);
        tokio::spawn(self.clone().serve_agent(conn, caller, req.into_inner(), out).instrument(span));
        Ok(Response::new(Box::pin(stream)))
    }
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

    /// The public API as routes, with this server's message limits.
    pub fn routes(&self) -> Routes {
        Routes::new(
            NegotiationServer::new(self.service.clone())
                .max_decoding_message_size(self.service.config.max_message_bytes)
                .max_encoding_message_size(MAX_SENT_MESSAGE),
        )
    }

    /// How this server meets the network: its TLS, credentials and gate.
    pub fn exposure(&self, tls: Option<TlsFiles>) -> Exposure {
        Exposure {
            tls,
            credentials: self.service.config.credentials.clone(),
            gate: Gate::new(self.service.config.connections.clone()),
        }
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
        let mut routes = self.routes();
        if let Some(c) = cluster {
            routes = routes.add_service(c);
        }
        self.serve_many(vec![(listener, routes)], tls, shutdown).await
    }

    /// Serves each listener its routes (a node's public port and its
    /// cluster port), each behind its own gate, until `shutdown`.
    pub async fn serve_many(
        self,
        listeners: Vec<(tokio::net::TcpListener, Routes)>,
        tls: Option<TlsFiles>,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), tonic::transport::Error> {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            shutdown.await;
            let _ = stop.send(true);
        });
        let servers: Vec<_> = listeners
            .into_iter()
            .map(|(listener, routes)| {
                let mut stopped = stopped.clone();
                let exposure = self.exposure(tls.clone());
                tokio::spawn(transport::serve(routes, listener, exposure, async move {
                    let _ = stopped.wait_for(|s| *s).await;
                }))
            })
            .collect();
        let mut result = Ok(());
        for s in servers {
            match s.await {
                Ok(Err(e)) if result.is_ok() => result = Err(e),
                _ => {}
            }
        }
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
    use anyhow::Context as _;
    let system = actix::System::with_tokio_rt(|| {
        tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a tokio runtime")
    });
    system.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))?;
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
