//! Negotiation strategies: one [`Strategy`] trait for every party, and the
//! built-in strategies in the BOA split (bidding, acceptance, opponent model).
//!
//! A strategy never knows where it runs: the engine's direct path, an actor,
//! another node or behind the gRPC gateway all hand it the same
//! [`Observation`]s and [`Turn`]s in the same order, which is what makes
//! traces identical across engines.

mod acceptance;
mod bidding;
mod boa;
mod opponent;
mod spec;

pub use acceptance::{AcceptInput, Acceptance};
pub use bidding::Bidding;
pub use boa::{Boa, Convention};
pub use opponent::{BayesianModel, FrequencyModel, ModelKind, OpponentModel, Slots};
pub use spec::{LearnedLoader, STRATEGY_NAMES, StrategyError, StrategySpec, register_learned_loader, strategy_names};

use std::sync::{Arc, OnceLock};

use super::domain::Domain;
use super::inverse::Inverse;
use super::protocol::{Action, Deadline, Ending, Standing};
use super::rng::SplitMix64;
use super::utility::Preferences;

/// What a party knows when a session starts.
#[derive(Debug, Clone)]
pub struct PartyContext {
    pub domain: Arc<Domain>,
    pub preferences: Arc<Preferences>,
    /// This party's position in the protocol's turn order.
    pub party: usize,
    pub n_parties: usize,
    pub deadline: Deadline,
    /// Seed for the party's own randomness (derived from the session seed).
    pub seed: u64,
    /// An outcome index for these preferences built by the host and shared
    /// across sessions; `None`: the strategy builds its own.
    pub index: Option<Arc<Inverse>>,
    /// Where the inverse the strategy bids with is left, for the engine to
    /// say afterwards whether its bids were exact.
    pub bids: BidsSlot,
}

/// The inverse utility a party bid with, once its strategy asked for one
/// ([`PartyContext::outcome_index`]). The engine keeps a clone of each
/// party's slot and reads it when the session ends: whether bids were
/// exact depends on the answers given (a search may stop short), so only
/// the inverse that answered can tell.
#[derive(Debug, Clone, Default)]
pub struct BidsSlot(Arc<OnceLock<Arc<Inverse>>>);

impl BidsSlot {
    /// `Some(true)`: every answer was the one enumerating the space gives;
    /// `None`: the party never asked (a remote agent, say).
    pub fn exact(&self) -> Option<bool> {
        self.0.get().map(|i| i.is_exact())
    }

    /// How far its answers may be from the exact ones ([`Inverse::gap`]);
    /// `None` where it never asked or bid from a sample.
    pub fn gap(&self) -> Option<f64> {
        self.0.get().and_then(|i| i.gap())
    }
}

impl PartyContext {
    /// The host's shared inverse utility, or the cheapest one for this
    /// party's negotiation ([`Inverse::for_party`]: exact, or a seeded
    /// sample where no exact one applies).
    pub fn outcome_index(&self, rng: &mut SplitMix64) -> Arc<Inverse> {
        let inverse = match &self.index {
            Some(shared) => shared.clone(),
            None => Arc::new(Inverse::for_party(&self.domain, &self.preferences, &self.deadline, rng)),
        };
        // A strategy asks once per session; a second ask keeps the first.
        let _ = self.bids.0.set(inverse.clone());
        inverse
    }
}

/// Another party's action, delivered before this party's next turn.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    pub party: usize,
    pub action: Action,
    /// Relative time at which it was taken.
    pub time: f64,
}

/// A request to act.
#[derive(Debug, Clone, PartialEq)]
pub struct Turn {
    pub round: u32,
    /// Relative time in [0, 1].
    pub time: f64,
    pub standing: Option<Standing>,
}

pub trait Strategy: Send {
    /// Called once before the first turn.
    fn init(&mut self, ctx: &PartyContext);
    /// Another party acted.
    fn observe(&mut self, _observation: &Observation) {}
    /// Offer, accept the standing offer, or end the negotiation.
    fn act(&mut self, turn: &Turn) -> Action;
    /// The session is over.
    fn finish(&mut self, _ending: &Ending) {}
}
