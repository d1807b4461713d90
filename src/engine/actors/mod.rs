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
//!
//! One concept per file: `party.rs` is what a session says to a party, and
//! the local party; `session.rs` the session actor and the messages it
//! takes from outside; `runner.rs` runs many sessions in a fresh actix
//! system; `options.rs` tunes that runner. The paths callers use are the
//! re-exports below.

mod options;
mod party;
mod runner;
mod session;

pub use options::ActorRunOptions;
pub use party::{PartyActor, PartyEndpoint, ToParty, TurnClock};
pub use runner::{run_sessions, start_local_session};
pub use session::{Abort, PartyViolation, SessionActor, SessionReport};
