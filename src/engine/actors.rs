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
use std::time::Instant;

use actix::prelude::*;
use tokio::sync::mpsc;

use super::SessionSpec;
use crate::core::protocol::{Action, Ending};
use crate::core::session::{SessionResult, SessionRun, TurnRequest};
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

/// A finished session, tagged with its id.
pub type SessionReport = (u64, SessionResult);

/// Runs one session's protocol and talks to its parties' endpoints.
pub struct SessionActor {
    id: u64,
    seed: u64,
    run: Option<SessionRun>,
    endpoints: Vec<PartyEndpoint>,
    /// Set for wall-time deadlines only.
    started_at: Option<Instant>,
    report: mpsc::UnboundedSender<SessionReport>,
}

impl SessionActor {
    pub fn new(
        spec: &SessionSpec,
        endpoints: Vec<PartyEndpoint>,
        report: mpsc::UnboundedSender<SessionReport>,
    ) -> Self {
        Self {
            id: spec.id,
            seed: spec.seed,
            run: Some(SessionRun::new(spec.domain.clone(), spec.preferences.clone(), spec.deadline, spec.record_trace)),
            endpoints,
            started_at: spec.deadline.seconds.map(|_| Instant::now()),
            report,
        }
    }

    fn elapsed(&self) -> f64 {
        self.started_at.map_or(0.0, |s| s.elapsed().as_secs_f64())
    }

    fn next_turn(&mut self, ctx: &mut Context<Self>) {
        let elapsed = self.elapsed();
        let Some(run) = self.run.as_mut() else { return };
        let Some(req) = run.next_turn(elapsed) else {
            self.finish(ctx);
            return;
        };
        let party = req.party;
        self.endpoints[party]
            .send(ToParty::Turn(req))
            .into_actor(self)
            .then(move |answer, act, ctx| {
                let elapsed = act.elapsed();
                if let Some(run) = act.run.as_mut() {
                    match answer {
                        Ok(Ok(Some(action))) => run.apply(party, action, elapsed),
                        Ok(Ok(None)) => run.fail(party, "answered a turn without an action".into()),
                        Ok(Err(reason)) => run.fail(party, reason),
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

    /// A session stopped before its protocol ended (its arbiter shutting
    /// down, say) still reports, so that no caller waits for it forever.
    fn stopped(&mut self, ctx: &mut Context<Self>) {
        if let Some(run) = self.run.as_mut() {
            let party = run.protocol().next_party().unwrap_or(0);
            run.fail(party, "the session was stopped before it ended".into());
            self.finish(ctx);
        }
    }

    fn started(&mut self, ctx: &mut Context<Self>) {
        let Some(run) = self.run.as_ref() else { return };
        let starts: Vec<_> = run
            .contexts(self.seed)
            .into_iter()
            .zip(&self.endpoints)
            .map(|(pc, e)| e.send(ToParty::Start(pc)))
            .collect();
        futures_join(starts)
            .into_actor(self)
            .then(|answers, act, ctx| {
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
            .wait(ctx);
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
/// `on_result` in the order of `specs`. Blocks the calling thread.
pub fn run_sessions(
    specs: Vec<SessionSpec>,
    opts: ActorRunOptions,
    mut on_result: impl FnMut(SessionReport),
) -> Result<(), StrategyError> {
    // Strategies are built (not yet initialised) up front: a bad name fails
    // here, before any actor exists.
    let mut prepared = Vec::with_capacity(specs.len());
    for spec in specs {
        let strategies = spec.build_strategies()?;
        prepared.push((spec, strategies));
    }
    // Sessions are tagged with their position internally, so ids chosen by
    // the caller need not be unique.
    let ids: Vec<u64> = prepared.iter().map(|(s, _)| s.id).collect();
    let total = prepared.len();
    let system = System::new();
    system.block_on(async move {
        let arbiters: Vec<Arbiter> = (0..opts.arbiters.max(1)).map(|_| Arbiter::new()).collect();
        let (tx, mut rx) = mpsc::unbounded_channel::<SessionReport>();
        let mut pending = prepared.into_iter().enumerate();
        let mut launch = |n: usize| {
            for (k, (mut spec, strategies)) in pending.by_ref().take(n) {
                let tx = tx.clone();
                spec.id = k as u64;
                arbiters[k % arbiters.len()].spawn_fn(move || start_local_session(&spec, strategies, tx));
            }
        };
        launch(opts.concurrency.max(1));
        // Results arrive in completion order; hand them out in spec order.
        let mut held: BTreeMap<usize, SessionReport> = BTreeMap::new();
        let mut next = 0usize;
        while next < total {
            let Some(report) = rx.recv().await else { break };
            let k = report.0 as usize;
            held.insert(k, (ids[k], report.1));
            launch(1);
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
    });
    Ok(())
}
