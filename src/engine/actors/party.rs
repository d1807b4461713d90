//! What a session says to a party, and the party that runs a strategy in
//! this process.

use actix::prelude::*;

use crate::core::protocol::{Action, Ending};
use crate::core::session::TurnRequest;
use crate::core::strategy::{PartyContext, Strategy};

/// What a session says to a party.
#[derive(Message)]
#[rtype(result = "Result<Option<Action>, String>")]
pub enum ToParty {
    /// The session begins; answered with `None`.
    Start(PartyContext),
    /// Act now; answered with the action.
    Turn(TurnRequest, TurnClock),
    /// The session is over; answered with `None`.
    Finish(Ending),
}

/// A turn's times by the session's clock: what an agent elsewhere is told
/// so that it can budget its thinking. The protocol's own relative time is
/// in the [`TurnRequest`]; strategies in this process need nothing more.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TurnClock {
    /// Seconds since every party was ready.
    pub elapsed_s: f64,
    /// Seconds left before the wall-time deadline, where there is one.
    pub remaining_s: Option<f64>,
    /// Seconds the session waits for this answer.
    pub answer_within_s: f64,
}

/// How a session reaches a party, wherever it runs: the party's mailbox.
/// An `Err` answer, a closed mailbox or a timeout is the party's violation.
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
            ToParty::Turn(req, _) => {
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
