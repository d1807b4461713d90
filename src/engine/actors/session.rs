//! The session actor: owns one session's [`SessionRun`] and talks to its
//! parties' endpoints, one turn at a time, under the turn and wall-time
//! limits.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use tokio::sync::mpsc;

use super::party::{PartyEndpoint, ToParty, TurnClock};
use crate::core::protocol::Ending;
use crate::core::session::{Applied, SessionResult, SessionRun};
use crate::core::strategy::{BidsSlot, PartyContext, StrategyError};
use crate::engine::{ActionHook, SessionSpec};

/// A party reports, outside its turn, that it can no longer take part (an
/// external agent acted out of turn or dropped its connection). The session
/// ends at once with that party's violation.
#[derive(Message)]
#[rtype(result = "()")]
pub struct PartyViolation {
    pub party: usize,
    pub reason: String,
}

/// Ends a session from outside: cancelled by its owner or an admin, say.
/// It ends as `aborted`, with the reason.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Abort(pub String);

/// A finished session, tagged with its id. Its channel carries one report
/// per session started, so its length is bounded by the sessions in flight.
pub type SessionReport = (u64, SessionResult);

/// Runs one session's protocol and talks to its parties' endpoints.
pub struct SessionActor {
    id: u64,
    /// The id its log lines give (see [`SessionSpec::log_id`]).
    log_id: Arc<str>,
    /// Handed to the parties in `Start`, then empty.
    contexts: Vec<PartyContext>,
    /// Each party's inverse, once its strategy built one (exactness of bids).
    bids: Vec<BidsSlot>,
    /// `None` once finished: later answers, aborts and violations find the
    /// session over and do nothing.
    run: Option<SessionRun>,
    /// The parties' mailboxes, by party index; as many as the session has
    /// parties (checked in [`SessionActor::new`]).
    endpoints: Vec<PartyEndpoint>,
    started_at: Instant,
    turn_timeout: Duration,
    setup_allowance: Duration,
    /// Which parties have been asked for a turn (the setup allowance is
    /// for the first one only).
    asked: Vec<bool>,
    start_timeout: Duration,
    /// Shared with whoever watches the session (the gRPC WatchSession
    /// stream); called on this actor's thread with every counted action
    /// and nothing else.
    on_action: Option<ActionHook>,
    wall_limit: Option<Duration>,
    /// Where the one report goes; unbounded cannot grow: see
    /// [`SessionReport`].
    report: mpsc::UnboundedSender<SessionReport>,
}

impl SessionActor {
    /// A session for `spec` whose parties answer at `endpoints` (by party
    /// index). Refuses a spec that cannot become a session, or endpoints
    /// that are not one per party, before anything is sent.
    pub fn new(
        spec: &SessionSpec,
        endpoints: Vec<PartyEndpoint>,
        report: mpsc::UnboundedSender<SessionReport>,
    ) -> Result<Self, StrategyError> {
        Ok(Self::prepare(spec, endpoints.len(), report)?.attach(endpoints))
    }

    /// The session checked and set up for `parties` endpoints still to be
    /// attached: the runner checks on its own thread and starts the parties
    /// on the session's arbiter.
    pub(super) fn prepare(
        spec: &SessionSpec,
        parties: usize,
        report: mpsc::UnboundedSender<SessionReport>,
    ) -> Result<Self, StrategyError> {
        let run = spec.session(parties)?;
        let contexts = spec.contexts(&run);
        Ok(Self {
            id: spec.id,
            log_id: spec.log_id.clone().unwrap_or_else(|| spec.id.to_string().into()),
            bids: contexts.iter().map(|c| c.bids.clone()).collect(),
            contexts,
            run: Some(run),
            endpoints: Vec::new(),
            started_at: Instant::now(),
            turn_timeout: spec.turn_timeout,
            setup_allowance: spec.setup_allowance,
            asked: vec![false; parties],
            start_timeout: spec.start_timeout,
            on_action: spec.on_action.clone(),
            wall_limit: spec.wall_limit,
            report,
        })
    }

    /// Attaches the endpoints of a prepared session: exactly as many as it
    /// was prepared for.
    pub(super) fn attach(mut self, endpoints: Vec<PartyEndpoint>) -> Self {
        self.endpoints = endpoints;
        self
    }

    /// Ends the session now as aborted (nobody's fault), if it still runs.
    fn abort(&mut self, reason: String, ctx: &mut Context<Self>) {
        if let Some(run) = self.run.as_mut() {
            run.abort(reason);
            self.finish(ctx);
        }
    }

    /// Seconds since the session started (the protocol reads them only
    /// under a wall-time deadline).
    fn elapsed(&self) -> f64 {
        self.started_at.elapsed().as_secs_f64()
    }

    /// The clock of `party`'s turn now: how long to wait for its answer is
    /// the turn limit (plus the setup allowance on its first turn), or less
    /// when a wall-time deadline comes sooner.
    fn clock(&self, party: usize, elapsed: f64) -> TurnClock {
        let first = !self.asked.get(party).copied().unwrap_or(true);
        let turn = self.turn_timeout + if first { self.setup_allowance } else { Duration::ZERO };
        let remaining = self.run.as_ref().and_then(|r| r.protocol().deadline().seconds).map(|s| (s - elapsed).max(0.0));
        let within = match remaining {
            Some(left) => Duration::try_from_secs_f64(left).map_or(turn, |d| d.min(turn)),
            None => turn,
        };
        TurnClock { elapsed_s: elapsed, remaining_s: remaining, answer_within_s: within.as_secs_f64() }
    }

    fn next_turn(&mut self, ctx: &mut Context<Self>) {
        let elapsed = self.elapsed();
        let Some(run) = self.run.as_mut() else { return };
        let Some(req) = run.next_turn(elapsed) else {
            self.finish(ctx);
            return;
        };
        let party = req.party;
        let clock = self.clock(party, elapsed);
        let limit = Duration::try_from_secs_f64(clock.answer_within_s).unwrap_or(self.turn_timeout);
        if let Some(asked) = self.asked.get_mut(party) {
            *asked = true;
        }
        let Some(run) = self.run.as_mut() else { return };
        let Some(endpoint) = self.endpoints.get(party) else {
            // Cannot happen for a session built by `new`; a violation
            // rather than a panic should `attach` ever be misused.
            run.violation(party, "no endpoint for this party".into());
            self.finish(ctx);
            return;
        };
        endpoint
            .send(ToParty::Turn(req, clock))
            .timeout(limit)
            .into_actor(self)
            .then(move |answer, act, ctx| {
                let elapsed = act.elapsed();
                if let Some(run) = act.run.as_mut() {
                    match answer {
                        // Watchers see what the session counted, from the
                        // session's own account: never an action that came
                        // after the deadline or broke the rules.
                        Ok(Ok(Some(action))) => match run.apply(party, action, elapsed) {
                            Applied::Counted(entry) => {
                                if let Some(hook) = &act.on_action {
                                    hook(&entry);
                                }
                            }
                            Applied::Refused { .. } | Applied::TooLate => {}
                        },
                        Ok(Ok(None)) => run.violation(party, "answered a turn without an action".into()),
                        Ok(Err(reason)) => run.violation(party, reason),
                        // A wall-time deadline that passed while waiting ends the
                        // session (at the next turn) as a deadline, not as the
                        // party's fault.
                        Err(MailboxError::Timeout) if run.deadline_passed(elapsed) => {}
                        Err(MailboxError::Timeout) => {
                            run.violation(party, format!("no answer within {:.1} s", limit.as_secs_f64()))
                        }
                        Err(e) => run.violation(party, format!("party unreachable: {e}")),
                    }
                }
                act.next_turn(ctx);
                fut::ready(())
            })
            .spawn(ctx);
    }

    fn finish(&mut self, ctx: &mut Context<Self>) {
        let Some(run) = self.run.take() else { return };
        let mut result = run.finish();
        result.bids_exact = self.bids.iter().map(BidsSlot::exact).collect();
        result.bids_gap = self.bids.iter().map(BidsSlot::gap).collect();
        match &result.ending {
            Ending::Violation { party, reason } => {
                tracing::warn!(session = %self.log_id, party, reason = %reason, "protocol violation ends the session");
            }
            ending => {
                tracing::debug!(session = %self.log_id, ending = ending.label(), rounds = result.rounds, "session ended")
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
                    let violation = match a {
                        Ok(Ok(_)) => None,
                        Ok(Err(reason)) => Some(reason),
                        Err(e) => Some(format!("party unreachable: {e}")),
                    };
                    if let (Some(reason), Some(run)) = (violation, act.run.as_mut()) {
                        run.violation(party, format!("could not start: {reason}"));
                    }
                }
                act.next_turn(ctx);
                fut::ready(())
            })
            // Spawned, not awaited with `wait`: while agents join (up to the
            // join timeout) the session must still take `Abort` and
            // `PartyViolation`; a start that completes after either finds
            // the session over and does nothing.
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

impl Handler<PartyViolation> for SessionActor {
    type Result = ();

    fn handle(&mut self, msg: PartyViolation, ctx: &mut Context<Self>) {
        if let Some(run) = self.run.as_mut() {
            run.violation(msg.party, msg.reason);
            self.finish(ctx);
        }
    }
}

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

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::core::protocol::{Action, Deadline};
    use crate::core::session::TraceEntry;
    use crate::core::strategy::StrategySpec;
    use crate::engine::actors::{ActorRunOptions, PartyActor, run_sessions};

    fn spec(parties: usize, deadline: Deadline) -> SessionSpec {
        crate::engine::test_spec(parties, parties, deadline).with_trace(true)
    }

    /// Answers its turns with `Accept`, but only after blocking its thread
    /// (the session's too: they share an arbiter) for `delay`, so that the
    /// answer is already there when the session next looks — after its
    /// wall-time deadline, yet before its wait times out.
    struct Late {
        delay: Duration,
    }

    impl Actor for Late {
        type Context = Context<Self>;
    }

    impl Handler<ToParty> for Late {
        type Result = Result<Option<Action>, String>;

        fn handle(&mut self, msg: ToParty, ctx: &mut Context<Self>) -> Self::Result {
            match msg {
                ToParty::Start(_) => Ok(None),
                ToParty::Turn(..) => {
                    std::thread::sleep(self.delay);
                    Ok(Some(Action::Accept))
                }
                ToParty::Finish(_) => {
                    ctx.stop();
                    Ok(None)
                }
            }
        }
    }

    #[test]
    fn watchers_never_see_an_answer_that_came_after_the_wall_deadline() {
        let mut spec = spec(2, Deadline { rounds: None, seconds: Some(0.3) });
        let seen: Arc<Mutex<Vec<TraceEntry>>> = Arc::default();
        let log = seen.clone();
        spec.on_action = Some(Arc::new(move |e| log.lock().unwrap().push(e.clone())));
        let (_, result) = System::new().block_on(async move {
            let (tx, mut rx) = mpsc::unbounded_channel::<SessionReport>();
            let opener = StrategySpec::named("boulware").build().unwrap();
            let endpoints = vec![
                PartyActor::new(opener).start().recipient(),
                Late { delay: Duration::from_millis(600) }.start().recipient(),
            ];
            SessionActor::new(&spec, endpoints, tx).unwrap().start();
            rx.recv().await.unwrap()
        });
        assert_eq!(result.ending, Ending::Deadline, "the late accept made no agreement");
        let seen = seen.lock().unwrap();
        // The opening offer came in time and is seen; the late accept is not.
        assert_eq!(seen.iter().map(|e| (e.party, e.action.kind())).collect::<Vec<_>>(), vec![(0, "offer")]);
        assert_eq!(*seen, result.trace, "watchers see what the trace holds");
    }

    #[test]
    fn endpoints_that_are_not_one_per_party_are_refused() {
        let spec = spec(2, Deadline::rounds(5));
        let err = System::new().block_on(async move {
            let (tx, _rx) = mpsc::unbounded_channel::<SessionReport>();
            let one = StrategySpec::named("boulware").build().unwrap();
            SessionActor::new(&spec, vec![PartyActor::new(one).start().recipient()], tx).err()
        });
        assert_eq!(err, Some(StrategyError::PartyCount { strategies: 1, parties: 2 }));
    }

    #[test]
    fn run_sessions_refuses_a_spec_that_cannot_be_a_session() {
        let good = spec(2, Deadline::rounds(5));
        let mut bad = good.clone();
        bad.strategies.pop();
        let mut reported = 0;
        let err = run_sessions(
            vec![good, bad],
            ActorRunOptions { concurrency: 4, arbiters: 1, ..Default::default() },
            |_| reported += 1,
        );
        assert_eq!(err.err(), Some(StrategyError::PartyCount { strategies: 1, parties: 2 }));
        assert_eq!(reported, 1, "the session launched before the bad one still reports");
    }
}
