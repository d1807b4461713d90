//! The actor engine: a [`SessionActor`] owns the protocol, every party sits
//! behind a [`PartyEndpoint`] — an actix `Recipient<ToParty>`. A local
//! [`PartyActor`] holding a strategy is one such endpoint; a proxy for a
//! party on another node, an external agent's gRPC stream or a learned
//! policy are others, and the session cannot tell them apart.
//!
//! Lifecycle: the session sends `Start` to every party, then one `Turn` at a
//! time (carrying what happened since that party's last turn), then
//! `Finish`; the result goes out on a channel and every actor stops. A party
//! that fails to answer ends the session with a recorded violation, never a
//! panic.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use actix::prelude::*;
use tokio::sync::mpsc;

use super::{ActionHook, SessionSpec};
use crate::core::protocol::{Action, Ending};
use crate::core::session::{SessionResult, SessionRun, TraceEntry, TurnRequest};
use crate::core::strategy::{PartyContext, Strategy, StrategyError};

/// What a session says to a party.
#[derive(Message)]
#[rtype(result = "Result<Option<Action>, String>")]
pub enum ToParty {
    /// The session begins; answered with `None`.
    Start(PartyContext),
    /// Act now; answered with the action.
    Turn(TurnRequest),
    /// The session is over; answered with `None`.
    Finish(Ending),
}

/// How a session reaches a party, wherever it runs.
pub type PartyEndpoint = Recipient<ToParty>;

/// A party whose strategy runs in this process.
pub struct PartyActor {
    strategy: Box<dyn Strategy>,
}

impl PartyActor {
    pub fn new(strategy: Box<dyn Strategy>) -> Self {
        Self { strategy }
    }
}

impl Actor for PartyActor {
    type Context = Context<Self>;
}

impl Handler<ToParty> for PartyActor {
    type Result = Result<Option<Action>, String>;

    fn handle(&mut self, msg: ToParty, ctx: &mut Context<Self>) -> Self::Result {
        match msg {
            ToParty::Start(pc) => {
                self.strategy.init(&pc);
                Ok(None)
            }
            ToParty::Turn(req) => {
                for obs in &req.observations {
                    self.strategy.observe(obs);
                }
                Ok(Some(self.strategy.act(&req.turn)))
            }
            ToParty::Finish(ending) => {
                self.strategy.finish(&ending);
                ctx.stop();
                Ok(None)
            }
        }
    }
}

/// A party reports, outside its turn, that it can no longer take part (an
/// external agent acted out of turn or dropped its connection). The session
/// ends at once with that party's violation.
#[derive(Message)]
#[rtype(result = "()")]
pub struct PartyFailed {
    pub party: usize,
    pub reason: String,
}

/// A finished session, tagged with its id. Its channel carries one report
/// per session started, so its length is bounded by the sessions in flight.
pub type SessionReport = (u64, SessionResult);

/// Runs one session's protocol and talks to its parties' endpoints.
pub struct SessionActor {
    id: u64,
    contexts: Vec<PartyContext>,
    run: Option<SessionRun>,
    endpoints: Vec<PartyEndpoint>,
    started_at: Instant,
    turn_timeout: Duration,
    start_timeout: Duration,
    on_action: Option<ActionHook>,
    wall_limit: Option<Duration>,
    /// One report per session, so unbounded cannot grow: see [`SessionReport`].
    report: mpsc::UnboundedSender<SessionReport>,
}

impl SessionActor {
    pub fn new(
        spec: &SessionSpec,
        endpoints: Vec<PartyEndpoint>,
        report: mpsc::UnboundedSender<SessionReport>,
    ) -> Self {
        let run = SessionRun::new(spec.domain.clone(), spec.preferences.clone(), spec.deadline, spec.record_trace);
        Self {
            id: spec.id,
            contexts: spec.contexts(&run),
            run: Some(run),
            endpoints,
            started_at: Instant::now(),
            turn_timeout: spec.turn_timeout,
            start_timeout: spec.start_timeout,
            on_action: spec.on_action.clone(),
            wall_limit: spec.wall_limit,
            report,
        }
    }

    /// Ends the session now as aborted (nobody's fault), if it still runs.
    fn abort(&mut self, reason: String, ctx: &mut Context<Self>) {
        if let Some(run) = self.run.as_mut() {
            run.abort(reason);
            self.finish(ctx);
        }
    }

    /// Seconds since the session started; only wall-time deadlines read it.
    fn elapsed(&self) -> f64 {
        match self.run.as_ref().and_then(|r| r.protocol().deadline().seconds) {
            Some(_) => self.started_at.elapsed().as_secs_f64(),
            None => 0.0,
        }
    }

    /// How long to wait for the next answer: the turn limit, or less when a
    /// wall-time deadline comes sooner.
    fn wait_limit(&self) -> Duration {
        let deadline = self.run.as_ref().and_then(|r| r.protocol().deadline().seconds);
        match deadline {
            Some(s) => {
                let left = s - self.started_at.elapsed().as_secs_f64();
                Duration::try_from_secs_f64(left.max(0.0)).map_or(self.turn_timeout, |d| d.min(self.turn_timeout))
            }
            None => self.turn_timeout,
        }
    }

    fn next_turn(&mut self, ctx: &mut Context<Self>) {
        let elapsed = self.elapsed();
        let limit = self.wait_limit();
        let Some(run) = self.run.as_mut() else { return };
        let Some(req) = run.next_turn(elapsed) else {
            self.finish(ctx);
            return;
        };
        let party = req.party;
        self.endpoints[party]
            .send(ToParty::Turn(req))
            .timeout(limit)
            .into_actor(self)
            .then(move |answer, act, ctx| {
                let elapsed = act.elapsed();
                if let Some(run) = act.run.as_mut() {
                    match answer {
                        Ok(Ok(Some(action))) => {
                            let entry = act.on_action.as_ref().map(|_| TraceEntry {
                                round: run.protocol().round(),
                                party,
                                time: run.protocol().relative_time(elapsed),
                                action: action.clone(),
                            });
                            run.apply(party, action, elapsed);
                            let refused = matches!(run.protocol().ending(), Some(Ending::Violation { party: p, .. }) if *p == party);
                            if let (Some(hook), Some(entry)) = (&act.on_action, entry)
                                && !refused {
                                    hook(&entry);
                                }
                        }
                        Ok(Ok(None)) => run.fail(party, "answered a turn without an action".into()),
                        Ok(Err(reason)) => run.fail(party, reason),
                        // A wall-time deadline that passed while waiting ends the
                        // session (at the next turn) as a deadline, not as the
                        // party's fault.
                        Err(MailboxError::Timeout) if run.deadline_passed(elapsed) => {}
                        Err(MailboxError::Timeout) => {
                            run.fail(party, format!("no answer within {:.1} s", limit.as_secs_f64()))
                        }
                        Err(e) => run.fail(party, format!("party unreachable: {e}")),
                    }
                }
                act.next_turn(ctx);
                fut::ready(())
            })
            .spawn(ctx);
    }

    fn finish(&mut self, ctx: &mut Context<Self>) {
        let Some(run) = self.run.take() else { return };
        let result = run.finish();
        match &result.ending {
            Ending::Violation { party, reason } => {
                tracing::warn!(session = self.id, party, reason = %reason, "protocol violation ends the session");
            }
            ending => {
                tracing::debug!(session = self.id, ending = ending.label(), rounds = result.rounds, "session ended")
            }
        }
        for e in &self.endpoints {
            e.do_send(ToParty::Finish(result.ending.clone()));
        }
        // The receiver may be gone when the caller gave up; nothing to keep then.
        let _ = self.report.send((self.id, result));
        ctx.stop();
    }
}

impl Actor for SessionActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if let Some(wall) = self.wall_limit {
            ctx.run_later(wall, move |act, ctx| {
                act.abort(format!("ran past the server's limit of {:.0} s per session", wall.as_secs_f64()), ctx);
            });
        }
        let limit = self.start_timeout;
        let starts: Vec<_> = std::mem::take(&mut self.contexts)
            .into_iter()
            .zip(&self.endpoints)
            .map(|(pc, e)| e.send(ToParty::Start(pc)).timeout(limit))
            .collect();
        futures_join(starts)
            .into_actor(self)
            .then(|answers, act, ctx| {
                // A wall-time deadline counts from when every party is
                // ready, not from when the session was set up.
                act.started_at = Instant::now();
                for (party, a) in answers.into_iter().enumerate() {
                    let failure = match a {
                        Ok(Ok(_)) => None,
                        Ok(Err(reason)) => Some(reason),
                        Err(e) => Some(format!("party unreachable: {e}")),
                    };
                    if let (Some(reason), Some(run)) = (failure, act.run.as_mut()) {
                        run.fail(party, format!("could not start: {reason}"));
                    }
                }
                act.next_turn(ctx);
                fut::ready(())
            })
            // Spawned, not awaited with `wait`: while agents join (up to the
            // join timeout) the session must still take `Abort` and
            // `PartyFailed`; a start that completes after either finds the
            // session over and does nothing.
            .spawn(ctx);
    }

    /// A session stopped before its protocol ended (its arbiter shutting
    /// down, say) still reports, so that no caller waits for it forever.
    fn stopped(&mut self, ctx: &mut Context<Self>) {
        if let Some(run) = self.run.as_mut() {
            run.abort("the session was stopped before it ended".into());
            self.finish(ctx);
        }
    }
}

impl Handler<PartyFailed> for SessionActor {
    type Result = ();

    fn handle(&mut self, msg: PartyFailed, ctx: &mut Context<Self>) {
        if let Some(run) = self.run.as_mut() {
            run.fail(msg.party, msg.reason);
            self.finish(ctx);
        }
    }
}

/// Ends a session from outside: cancelled by its owner or an admin, say.
/// It ends as `aborted`, with the reason.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Abort(pub String);

impl Handler<Abort> for SessionActor {
    type Result = ();

    fn handle(&mut self, msg: Abort, ctx: &mut Context<Self>) {
        self.abort(msg.0, ctx);
    }
}

/// Awaits every future in order (a tiny join_all, to avoid a crate for it).
async fn futures_join<F: std::future::Future>(futs: Vec<F>) -> Vec<F::Output> {
    let mut out = Vec::with_capacity(futs.len());
    for f in futs {
        out.push(f.await);
    }
    out
}

/// Starts a session whose parties are local actors, on the current arbiter.
pub fn start_local_session(
    spec: &SessionSpec,
    strategies: Vec<Box<dyn Strategy>>,
    report: mpsc::UnboundedSender<SessionReport>,
) {
    let endpoints = strategies.into_iter().map(|s| PartyActor::new(s).start().recipient()).collect();
    SessionActor::new(spec, endpoints, report).start();
}

/// Options for [`run_sessions`].
#[derive(Debug, Clone, Copy)]
pub struct ActorRunOptions {
    /// Sessions in flight at once.
    pub concurrency: usize,
    /// Arbiters (threads) sessions are spread over.
    pub arbiters: usize,
}

impl Default for ActorRunOptions {
    fn default() -> Self {
        Self { concurrency: 1024, arbiters: std::thread::available_parallelism().map_or(1, |n| n.get()) }
    }
}

/// Runs sessions as actors in a fresh actix system and hands each result to
/// `on_result` in the order of `specs`. Specs are pulled lazily, at most
/// `concurrency` at a time, so millions of sessions need no more memory than
/// those in flight. Blocks the calling thread. A spec whose strategies do not
/// build stops the launching of new sessions; those already running finish
/// and are reported, then the error is returned.
pub fn run_sessions(
    specs: impl IntoIterator<Item = SessionSpec>,
    opts: ActorRunOptions,
    mut on_result: impl FnMut(SessionReport),
) -> Result<(), StrategyError> {
    let mut specs = specs.into_iter().peekable();
    // A bad strategy name fails before any actor exists.
    if let Some(first) = specs.peek() {
        first.build_strategies()?;
    }
    let system = System::new();
    system.block_on(async move {
        let arbiters: Vec<Arbiter> = (0..opts.arbiters.max(1)).map(|_| Arbiter::new()).collect();
        // One report per session launched, and at most `concurrency` are
        // launched ahead of the reports read: bounded by construction.
        let (tx, mut rx) = mpsc::unbounded_channel::<SessionReport>();
        // Sessions are tagged with their position internally, so ids chosen
        // by the caller need not be unique.
        let mut ids: Vec<u64> = Vec::new();
        let mut error: Option<StrategyError> = None;
        let mut launch = |n: usize, ids: &mut Vec<u64>, error: &mut Option<StrategyError>| {
            for _ in 0..n {
                if error.is_some() {
                    return;
                }
                let Some(mut spec) = specs.next() else { return };
                let strategies = match spec.build_strategies() {
                    Ok(s) => s,
                    Err(e) => {
                        *error = Some(e);
                        return;
                    }
                };
                let k = ids.len();
                ids.push(spec.id);
                spec.id = k as u64;
                let tx = tx.clone();
                arbiters[k % arbiters.len()].spawn_fn(move || start_local_session(&spec, strategies, tx));
            }
        };
        launch(opts.concurrency.max(1), &mut ids, &mut error);
        // Results arrive in completion order; hand them out in spec order.
        let mut held: BTreeMap<usize, SessionReport> = BTreeMap::new();
        let mut next = 0usize;
        while next < ids.len() {
            let Some((k, result)) = rx.recv().await else { break };
            let k = k as usize;
            held.insert(k, (ids[k], result));
            launch(1, &mut ids, &mut error);
            while let Some(entry) = held.first_entry() {
                if *entry.key() != next {
                    break;
                }
                on_result(entry.remove());
                next += 1;
            }
        }
        for a in arbiters {
            a.stop();
        }
        match error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    })
}
