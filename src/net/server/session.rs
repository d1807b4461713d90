//! Building a session from a scenario, and publishing its result when it
//! ends.
//!
//! A session's parties are started on one arbiter beside it: an
//! [`ExternalParty`] per external seat (its token goes back to the caller),
//! a [`PartyActor`] per local strategy. The session reports once, on a
//! channel; a task waits for that report and either stores the analysed
//! result (an API session) or hands the raw one back (a launcher's).

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use actix::prelude::*;
use prost::Message as _;
use tokio::sync::{mpsc, oneshot};
use tonic::Status;

use super::{NegotiationService, lock, random_hex};
use crate::core::analysis::Analysis;
use crate::core::inverse::Inverse;
use crate::core::limits::Footprint;
use crate::core::record::{Assessment, RecordContext, record};
use crate::core::rng::SplitMix64;
use crate::core::scenario::Scenario;
use crate::core::session::SessionResult;
use crate::core::strategy::StrategySpec;
use crate::engine::SessionSpec;
use crate::engine::actors::{PartyActor, PartyEndpoint, SessionActor, SessionReport};
use crate::net::convert::{Decoder, action_done, domain_to_pb, profile_to_pb, result_to_pb};
use crate::net::external::{AttachSession, ExternalParty};
use crate::net::pb;
use crate::net::registry::{Done, Entry, Live, Registry, Seat, Watchers, ending_text};
use crate::net::untrusted::{LogBudget, shown};

/// How a session started by a cluster launcher differs from one created
/// over the API (the default).
#[derive(Default)]
pub struct HostOptions {
    /// Per party, an outcome index shared with the scenario's other sessions.
    pub shared_indexes: Vec<Option<Arc<Inverse>>>,
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

static CREATE_LOG: LogBudget = LogBudget::new(20);

impl NegotiationService {
    /// Ends a running session now as aborted (nobody's fault), if it still
    /// runs: for the host of a batch whose seat cannot be taken.
    pub fn abort(&self, session_id: &str, reason: String) {
        if let Some(Entry::Live(Live { session: Some(session), .. })) = lock(&self.registry).sessions.get(session_id) {
            session.do_send(crate::engine::actors::Abort(reason));
        }
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
        spec.log_id = Some(session_id.as_str().into());
        spec.shared_indexes = options.shared_indexes;
        spec.turn_timeout = self.config.turn_timeout;
        spec.setup_allowance = self.config.setup_allowance;
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
                    domain: Some(domain_to_pb(&scenario.domain, &scenario.presentation)),
                    profile: Some(profile_to_pb(&party.preferences)),
                    protocol: "saop".into(),
                    deadline_rounds: scenario.deadline.rounds.unwrap_or(0),
                    deadline_seconds: scenario.deadline.seconds.unwrap_or(0.0),
                    turn_timeout_seconds: self.config.turn_timeout.as_secs_f64(),
                    party_seed: SplitMix64::derive(seed, k as u64).next_u64(),
                    setup_seconds: self.config.setup_allowance.as_secs_f64(),
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
                ended: None,
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
        // Over: say how at once, before the analysis (which may take a while).
        let ending = {
            let mut reg = lock(&self.registry);
            let Some(Entry::Live(live)) = reg.sessions.get_mut(&session_id) else { return };
            let never_joined: Vec<String> =
                live.seats.iter().filter(|s| s.bound.is_none()).map(|s| s.name.clone()).collect();
            let ending = ending_text(&result, &live.parties, &never_joined);
            live.ended = Some(ending.clone());
            ending
        };
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
                    explain: true,
                };
                let line = record(&cx, id.clone().into(), seed, &result, &Assessment::of(&analysis, &result), None)
                    .to_string();
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
            ending,
            bytes,
        };
        reg.finish(&session_id, done, self.retention());
    }
}
