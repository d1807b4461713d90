//! [`ExternalParty`]: the endpoint of a party played by an external agent.
//!
//! To the session it is an ordinary party (`Recipient<ToParty>`). Towards
//! the agent it writes `SessionSettings`, `ActionDone` and `YourTurn`
//! messages to the agent's stream and waits for the matching `Act`. It is
//! where an agent's misbehaviour becomes a protocol violation: an `Act` for
//! no pending turn (acting out of turn), an action that does not parse
//! against the domain, a dropped stream. Silence is timed out by the session.
//!
//! Its life: waiting for the agent to join, then joined (one stream, at
//! most one turn pending), then, if the agent misbehaves or leaves, failed
//! for the rest of the session; the session's `Finish` stops it from any
//! of these.

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
    /// Pushed to by every party's endpoint, on whichever arbiter it lives.
    pub micros: Mutex<Vec<u32>>,
}

type Answer = Result<Option<Action>, String>;

/// A turn sent to the agent and not answered yet.
struct Pending {
    turn: u64,
    /// Completes the session's `Turn` request: the agent's action, or why
    /// the party failed.
    answer: oneshot::Sender<Answer>,
    sent: Instant,
}

/// Where the party is in its life. An agent joins once, and a party that
/// failed stays failed: `Bind` moves only from `Waiting`, a failure only
/// forward to `Violated`.
enum Stage {
    /// No agent has joined yet.
    Waiting {
        /// Completes the session's `Start` once the agent joins (set when
        /// `Start` came first, which is the usual order).
        joined: Option<oneshot::Sender<()>>,
    },
    /// An agent plays the party through its stream.
    Joined {
        /// The agent's stream; every party the stream plays holds a clone.
        out: Outbound,
        /// The turn the agent owes an answer to.
        pending: Option<Pending>,
        /// The number the next `YourTurn` carries.
        next_turn: u64,
    },
    /// The party can no longer take part, and why: every later turn is
    /// answered with this.
    Violated(String),
}

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
    stage: Stage,
    /// Where to report a failure that no turn is waiting for; attached
    /// when the session starts, before it sends anything.
    session: Option<Recipient<PartyViolation>>,
    /// Shared with the benchmark that reads it.
    latencies: Option<Arc<LatencyLog>>,
}

/// Whether the agent can still be told why its party failed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stream {
    Open,
    Gone,
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
            stage: Stage::Waiting { joined: None },
            session: None,
            latencies,
        }
    }

    fn violated(&self) -> Option<&str> {
        match &self.stage {
            Stage::Violated(reason) => Some(reason),
            _ => None,
        }
    }

    /// Queues a message for the agent. An agent that does not read its
    /// stream (its queue passed the budget) can no longer take part.
    fn send(&mut self, kind: pb::server_message::Kind) {
        let Stage::Joined { out, .. } = &self.stage else { return };
        match out.send(kind) {
            Ok(()) => {}
            // A closed stream shows up as `Disconnected`; nothing to do here.
            Err(Gone::Closed) => {}
            Err(Gone::CutOff) => self.violation("the agent did not read its stream (cut off)".into(), Stream::Gone),
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

    /// Ends this party's participation: tells the agent why (if its stream
    /// is still open), and answers a pending turn with the reason, or tells
    /// the session directly when no turn is pending.
    fn violation(&mut self, reason: String, stream: Stream) {
        if self.violated().is_some() {
            return;
        }
        if let Some(suppressed) = FAIL_LOG.allow() {
            tracing::warn!(session = %self.session_id, party = self.party, reason = %shown(&reason), suppressed, "external party fails");
        }
        let error = self.error(&reason);
        let pending = match std::mem::replace(&mut self.stage, Stage::Violated(reason.clone())) {
            Stage::Joined { out, pending, .. } => {
                if stream == Stream::Open {
                    // Cut off or closed now: the agent learns nothing more.
                    let _ = out.send(error);
                }
                pending
            }
            Stage::Waiting { .. } | Stage::Violated(_) => None,
        };
        match pending {
            Some(p) => {
                let _ = p.answer.send(Err(reason));
            }
            None => {
                if let Some(s) = &self.session {
                    s.do_send(PartyViolation { party: self.party, reason });
                }
            }
        }
    }
}

static FAIL_LOG: LogBudget = LogBudget::new(10);

impl Actor for ExternalParty {
    type Context = Context<Self>;
}

impl Handler<ToParty> for ExternalParty {
    type Result = ResponseFuture<Answer>;

    fn handle(&mut self, msg: ToParty, ctx: &mut Context<Self>) -> Self::Result {
        match msg {
            ToParty::Start(_) => {
                let joined = match &mut self.stage {
                    Stage::Joined { .. } => return Box::pin(async { Ok(None) }),
                    Stage::Violated(reason) => {
                        let reason = reason.clone();
                        return Box::pin(async move { Err(reason) });
                    }
                    Stage::Waiting { joined } => joined,
                };
                let (tx, rx) = oneshot::channel();
                *joined = Some(tx);
                let limit = self.join_timeout;
                Box::pin(async move {
                    match tokio::time::timeout(limit, rx).await {
                        Ok(Ok(())) => Ok(None),
                        Ok(Err(_)) => Err("the party's endpoint closed before the agent joined".into()),
                        Err(_) => Err(format!("no agent joined within {:.1} s", limit.as_secs_f64())),
                    }
                })
            }
            ToParty::Turn(req, clock) => {
                match &self.stage {
                    Stage::Joined { .. } => {}
                    Stage::Violated(reason) => {
                        let reason = reason.clone();
                        return Box::pin(async move { Err(reason) });
                    }
                    // The session asks for turns only once `Start` saw the
                    // agent join.
                    Stage::Waiting { .. } => return Box::pin(async { Err("no agent has joined".to_string()) }),
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
                let standing = req.turn.standing.as_ref();
                let mut your_turn = pb::YourTurn {
                    session_id: self.session_id.clone(),
                    turn: 0,
                    round: req.turn.round,
                    time: req.turn.time,
                    standing_offer: standing.map(|s| outcome_to_pb(&self.decoder.domain, &s.offer)),
                    proposer: standing.map_or(0, |s| s.proposer as u32),
                    party: self.name.clone(),
                    elapsed_seconds: clock.elapsed_s,
                    remaining_seconds: clock.remaining_s,
                    answer_within_seconds: clock.answer_within_s,
                };
                // Sending the observations may have cut the stream off.
                let (tx, rx) = oneshot::channel();
                match &mut self.stage {
                    Stage::Joined { pending, next_turn, .. } => {
                        your_turn.turn = *next_turn;
                        *next_turn += 1;
                        // Pending before it is sent: if sending fails, the
                        // failure answers this turn.
                        *pending = Some(Pending { turn: your_turn.turn, answer: tx, sent: Instant::now() });
                    }
                    Stage::Violated(reason) => {
                        let reason = reason.clone();
                        return Box::pin(async move { Err(reason) });
                    }
                    Stage::Waiting { .. } => return Box::pin(async { Err("no agent has joined".to_string()) }),
                }
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
        let Stage::Waiting { joined } = &mut self.stage else {
            return Err("this party has already been joined".into());
        };
        let joined = joined.take();
        self.stage = Stage::Joined { out: msg.0, pending: None, next_turn: 0 };
        let settings = pb::server_message::Kind::Settings(self.settings.clone());
        self.send(settings);
        if let Some(w) = joined {
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
        // Acts reach only parties a stream joined.
        let Stage::Joined { pending, .. } = &mut self.stage else { return };
        let Some(p) = pending.take_if(|p| p.turn == msg.turn) else {
            self.violation(format!("acted out of turn (sent an action for turn {})", msg.turn), Stream::Open);
            return;
        };
        if let Some(log) = &self.latencies {
            let us = p.sent.elapsed().as_micros().min(u32::MAX as u128) as u32;
            log.micros.lock().expect("latency log").push(us);
        }
        let answer = self.decoder.action(msg.action.as_ref());
        if let Err(reason) = &answer {
            // The answer tells the session; the agent hears why (a stream
            // cut off or closed now has nothing more to read).
            let error = self.error(reason);
            if let Stage::Joined { out, .. } = std::mem::replace(&mut self.stage, Stage::Violated(reason.clone())) {
                let _ = out.send(error);
            }
        }
        let _ = p.answer.send(answer.map(Some));
    }
}

/// The agent's stream ended or broke, or the agent left the party.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Disconnected(pub String);

impl Handler<Disconnected> for ExternalParty {
    type Result = ();

    fn handle(&mut self, msg: Disconnected, _: &mut Context<Self>) {
        self.violation(msg.0, Stream::Gone);
    }
}

/// Where to report failures that happen outside a turn.
#[derive(Message)]
#[rtype(result = "()")]
pub struct AttachSession(pub Recipient<PartyViolation>);

impl Handler<AttachSession> for ExternalParty {
    type Result = ();

    fn handle(&mut self, msg: AttachSession, _: &mut Context<Self>) {
        self.session = Some(msg.0);
    }
}

#[cfg(test)]
mod tests {
    use tokio_stream::StreamExt;

    use super::*;
    use crate::core::scenario::Scenario;
    use crate::core::session::TurnRequest;
    use crate::core::strategy::{PartyContext, Turn};
    use crate::net::outbound::OutboundStream;

    const SCENARIO: &str = r#"
name = "pair"
[protocol]
rounds = 10
[[issues]]
name = "price"
type = "integer"
min = 0
max = 9
[[parties]]
name = "a"
strategy = "boulware"
weights = { price = 1.0 }
values.price = { linear = [1.0, 0.0] }
[[parties]]
name = "b"
external = true
weights = { price = 1.0 }
values.price = { linear = [0.0, 1.0] }
"#;

    fn turn() -> ToParty {
        ToParty::Turn(
            TurnRequest { party: 1, observations: Vec::new(), turn: Turn { round: 0, time: 0.0, standing: None } },
            crate::engine::actors::TurnClock::default(),
        )
    }

    async fn next(stream: &mut OutboundStream) -> pb::server_message::Kind {
        let m = tokio::time::timeout(Duration::from_secs(5), stream.next()).await.expect("a message in time");
        m.expect("the stream is open").expect("a message, not a status").kind.expect("content")
    }

    /// Waiting, then joined once, then failed for good: a second join is
    /// refused, an Act for another turn answers the pending one with the
    /// violation, and every later turn gets the same reason.
    #[test]
    fn a_party_is_joined_once_and_stays_failed() {
        actix::System::new().block_on(async {
            let sc = Scenario::parse(SCENARIO, "pair.toml").unwrap();
            let settings = pb::SessionSettings { party: "b".into(), ..Default::default() };
            let decoder = Arc::new(Decoder::new(sc.domain.clone()));
            let party = ExternalParty::new("s".into(), 1, decoder, settings, Duration::from_secs(5), None).start();
            let context = PartyContext {
                domain: sc.domain.clone(),
                preferences: sc.preferences()[1].clone(),
                party: 1,
                n_parties: 2,
                deadline: sc.deadline,
                seed: 0,
                index: None,
                bids: Default::default(),
            };
            // The session starts before the agent joins; Start waits for it.
            let started = party.send(ToParty::Start(context));
            let (out, mut stream) = crate::net::outbound::channel();
            assert_eq!(party.send(Bind(out.clone())).await.unwrap(), Ok(()));
            assert!(matches!(next(&mut stream).await, pb::server_message::Kind::Settings(_)));
            assert!(matches!(started.await.unwrap(), Ok(None)));
            let again = party.send(Bind(out)).await.unwrap();
            assert_eq!(again, Err("this party has already been joined".to_string()));

            let answer = party.send(turn());
            let pb::server_message::Kind::YourTurn(t) = next(&mut stream).await else { panic!("no YourTurn") };
            assert_eq!((t.turn, t.party.as_str()), (0, "b"));
            party.do_send(AgentAct { turn: 7, action: None });
            let reason = answer.await.unwrap().unwrap_err();
            assert!(reason.contains("acted out of turn") && reason.contains("turn 7"), "{reason}");
            let pb::server_message::Kind::Error(e) = next(&mut stream).await else { panic!("no Error") };
            assert_eq!((e.code.as_str(), e.message.as_str()), ("violation", reason.as_str()));
            assert_eq!(party.send(turn()).await.unwrap().unwrap_err(), reason);
        });
    }
}
