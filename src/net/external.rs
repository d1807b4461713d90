//! [`ExternalParty`]: the endpoint of a party played by an external agent.
//!
//! To the session it is an ordinary party (`Recipient<ToParty>`). Towards
//! the agent it writes `SessionSettings`, `ActionDone` and `YourTurn`
//! messages to the agent's stream and waits for the matching `Act`. It is
//! where an agent's misbehaviour becomes a protocol violation: an `Act` for
//! no pending turn (acting out of turn), an action that does not parse
//! against the domain, a dropped stream. Silence is timed out by the session.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix::prelude::*;
use tokio::sync::oneshot;

use super::convert::{Decoder, action_done, outcome_to_pb};
use super::outbound::{Gone, Outbound};
use super::pb;
use super::untrusted::{LogBudget, shown};
use crate::core::protocol::Action;
use crate::core::session::TraceEntry;
use crate::engine::actors::{PartyViolation, ToParty};

/// Round-trip times of turns (YourTurn sent to Act received), for benchmarks.
#[derive(Debug, Default)]
pub struct LatencyLog {
    pub micros: Mutex<Vec<u32>>,
}

type Answer = Result<Option<Action>, String>;

pub struct ExternalParty {
    session_id: String,
    party: usize,
    /// The party's name: every message to the agent carries it, since one
    /// stream may play several parties of a session.
    name: String,
    decoder: Arc<Decoder>,
    /// Sent when the agent joins.
    settings: pb::SessionSettings,
    join_timeout: Duration,
    outbound: Option<Outbound>,
    /// Completes the session's `Start` once the agent has joined.
    join_waiter: Option<oneshot::Sender<()>>,
    /// The turn the agent owes an answer to.
    pending: Option<(u64, oneshot::Sender<Answer>, Instant)>,
    next_turn: u64,
    /// The violation that ended this party's part, once there is one.
    violated: Option<String>,
    session: Option<Recipient<PartyViolation>>,
    latencies: Option<Arc<LatencyLog>>,
}

impl ExternalParty {
    pub fn new(
        session_id: String,
        party: usize,
        decoder: Arc<Decoder>,
        settings: pb::SessionSettings,
        join_timeout: Duration,
        latencies: Option<Arc<LatencyLog>>,
    ) -> Self {
        Self {
            session_id,
            party,
            name: settings.party.clone(),
            decoder,
            settings,
            join_timeout,
            outbound: None,
            join_waiter: None,
            pending: None,
            next_turn: 0,
            violated: None,
            session: None,
            latencies,
        }
    }

    /// Queues a message for the agent. An agent that does not read its
    /// stream (its queue passed the budget) can no longer take part.
    fn send(&mut self, kind: pb::server_message::Kind) {
        let Some(out) = &self.outbound else { return };
        match out.send(kind) {
            Ok(()) => {}
            // A closed stream shows up as `Disconnected`; nothing to do here.
            Err(Gone::Closed) => {}
            Err(Gone::CutOff) => {
                self.outbound = None;
                self.violation("the agent did not read its stream (cut off)".into());
            }
        }
    }

    fn error(&self, message: &str) -> pb::server_message::Kind {
        pb::server_message::Kind::Error(pb::Error {
            session_id: self.session_id.clone(),
            code: "violation".into(),
            message: message.to_string(),
            party: self.name.clone(),
        })
    }

    /// Ends this party's participation: answers a pending turn with the
    /// reason, or tells the session directly when no turn is pending.
    fn violation(&mut self, reason: String) {
        if self.violated.is_some() {
            return;
        }
        if let Some(suppressed) = VIOLATION_LOG.allow() {
            tracing::warn!(session = %self.session_id, party = self.party, reason = %shown(&reason), suppressed, "external party committed a violation");
        }
        self.violated = Some(reason.clone());
        let error = self.error(&reason);
        self.send(error);
        match self.pending.take() {
            Some((_, tx, _)) => {
                let _ = tx.send(Err(reason));
            }
            None => {
                if let Some(s) = &self.session {
                    s.do_send(PartyViolation { party: self.party, reason });
                }
            }
        }
    }
}

static VIOLATION_LOG: LogBudget = LogBudget::new(10);

impl Actor for ExternalParty {
    type Context = Context<Self>;
}

impl Handler<ToParty> for ExternalParty {
    type Result = ResponseFuture<Answer>;

    fn handle(&mut self, msg: ToParty, ctx: &mut Context<Self>) -> Self::Result {
        match msg {
            ToParty::Start(_) => {
                if self.outbound.is_some() {
                    return Box::pin(async { Ok(None) });
                }
                let (tx, rx) = oneshot::channel();
                self.join_waiter = Some(tx);
                let limit = self.join_timeout;
                Box::pin(async move {
                    match tokio::time::timeout(limit, rx).await {
                        Ok(Ok(())) => Ok(None),
                        Ok(Err(_)) => Err("the party's endpoint closed before the agent joined".into()),
                        Err(_) => Err(format!("no agent joined within {:.1} s", limit.as_secs_f64())),
                    }
                })
            }
            ToParty::Turn(req) => {
                if let Some(reason) = &self.violated {
                    let reason = reason.clone();
                    return Box::pin(async move { Err(reason) });
                }
                for obs in &req.observations {
                    let entry = TraceEntry {
                        round: req.turn.round,
                        party: obs.party,
                        time: obs.time,
                        action: obs.action.clone(),
                    };
                    let mut done = action_done(&self.session_id, &self.decoder.domain, &entry);
                    done.to_party = self.name.clone();
                    self.send(pb::server_message::Kind::ActionDone(done));
                }
                if let Some(reason) = &self.violated {
                    let reason = reason.clone();
                    return Box::pin(async move { Err(reason) });
                }
                let turn = self.next_turn;
                self.next_turn += 1;
                let standing = req.turn.standing.as_ref();
                let your_turn = pb::YourTurn {
                    session_id: self.session_id.clone(),
                    turn,
                    round: req.turn.round,
                    time: req.turn.time,
                    standing_offer: standing.map(|s| outcome_to_pb(&self.decoder.domain, &s.offer)),
                    proposer: standing.map_or(0, |s| s.proposer as u32),
                    party: self.name.clone(),
                };
                // Pending before it is sent: if sending fails, the failure
                // answers this turn.
                let (tx, rx) = oneshot::channel();
                self.pending = Some((turn, tx, Instant::now()));
                self.send(pb::server_message::Kind::YourTurn(your_turn));
                Box::pin(async move { rx.await.unwrap_or_else(|_| Err("the agent's turn was abandoned".into())) })
            }
            ToParty::Finish(_) => {
                ctx.stop();
                Box::pin(async { Ok(None) })
            }
        }
    }
}

/// The agent proved it plays this party: its stream takes over.
#[derive(Message)]
#[rtype(result = "Result<(), String>")]
pub struct Bind(pub Outbound);

impl Handler<Bind> for ExternalParty {
    type Result = Result<(), String>;

    fn handle(&mut self, msg: Bind, _: &mut Context<Self>) -> Self::Result {
        if self.outbound.is_some() || self.violated.is_some() {
            return Err("this party has already been joined".into());
        }
        self.outbound = Some(msg.0);
        let settings = pb::server_message::Kind::Settings(self.settings.clone());
        self.send(settings);
        if let Some(w) = self.join_waiter.take() {
            let _ = w.send(());
        }
        Ok(())
    }
}

/// An `Act` from the agent.
#[derive(Message)]
#[rtype(result = "()")]
pub struct AgentAct {
    pub turn: u64,
    pub action: Option<pb::Action>,
}

impl Handler<AgentAct> for ExternalParty {
    type Result = ();

    fn handle(&mut self, msg: AgentAct, _: &mut Context<Self>) {
        if self.violated.is_some() {
            return;
        }
        match self.pending.take() {
            Some((turn, tx, sent)) if turn == msg.turn => {
                if let Some(log) = &self.latencies {
                    let us = sent.elapsed().as_micros().min(u32::MAX as u128) as u32;
                    log.micros.lock().expect("latency log").push(us);
                }
                let answer = self.decoder.action(msg.action.as_ref());
                if let Err(reason) = &answer {
                    self.violated = Some(reason.clone());
                    let error = self.error(reason);
                    self.send(error);
                }
                let _ = tx.send(answer.map(Some));
            }
            other => {
                self.pending = other;
                self.violation(format!("acted out of turn (sent an action for turn {})", msg.turn));
            }
        }
    }
}

/// The agent's stream ended or broke.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Disconnected(pub String);

impl Handler<Disconnected> for ExternalParty {
    type Result = ();

    fn handle(&mut self, msg: Disconnected, _: &mut Context<Self>) {
        self.outbound = None;
        self.violation(msg.0);
    }
}

/// Where to report violations that happen outside a turn.
#[derive(Message)]
#[rtype(result = "()")]
pub struct AttachSession(pub Recipient<PartyViolation>);

impl Handler<AttachSession> for ExternalParty {
    type Result = ();

    fn handle(&mut self, msg: AttachSession, _: &mut Context<Self>) {
        self.session = Some(msg.0);
    }
}
