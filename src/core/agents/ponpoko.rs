//! PonPokoAgent (Takaki Matsune; winner of ANAC 2017, multilateral): hard
//! to read on purpose. At the start it draws one of five threshold
//! patterns (some oscillating in time); each turn it accepts an offer above
//! the lower threshold and otherwise offers a random bid between the lower
//! and the upper one.
//!
//! The patterns, with t relative time (high, low):
//! 0. 1 − 0.1t, and 0.1·|sin 40t| below it;
//! 1. 1, and 1 − 0.22t;
//! 2. 1 − 0.1t, and 0.15·|sin 20t| below it;
//! 3. 1 − 0.05t, and 1 − 0.1t (1 − 0.3t after t = 0.99);
//! 4. 1 − 0.15t·|sin 20t|, and 1 − 0.21t·|sin 20t|.
//!
//! Where this differs from the original, deliberately:
//! - The constants are ours, after the shapes the ANAC 2017 report
//!   describes (flat, linear and oscillating thresholds drawn at random);
//!   the agents' README table says how its behaviour compares with the
//!   NegMAS port's.
//! - Thresholds are clipped to the party's rational range, and the
//!   pattern comes from the party's seed (so a run repeats).

use super::seat::Seat;
use crate::core::protocol::Action;
use crate::core::strategy::{Observation, PartyContext, Strategy, Turn};

pub const PATTERNS: u64 = 5;

#[derive(Debug, Clone, Default)]
pub struct PonPoko {
    /// A fixed pattern, or `None`: drawn from the seed.
    fixed: Option<u64>,
    state: Option<(Seat, u64)>,
}

impl PonPoko {
    pub fn new(pattern: Option<u64>) -> Self {
        Self { fixed: pattern, state: None }
    }
}

/// (high, low) of `pattern` at time `t`.
pub fn thresholds(pattern: u64, t: f64) -> (f64, f64) {
    match pattern {
        0 => (1.0 - 0.1 * t, 1.0 - 0.1 * t - 0.1 * (40.0 * t).sin().abs()),
        1 => (1.0, 1.0 - 0.22 * t),
        2 => (1.0 - 0.1 * t, 1.0 - 0.1 * t - 0.15 * (20.0 * t).sin().abs()),
        3 if t > 0.99 => (1.0 - 0.05 * t, 1.0 - 0.3 * t),
        3 => (1.0 - 0.05 * t, 1.0 - 0.1 * t),
        _ => (1.0 - 0.15 * t * (20.0 * t).sin().abs(), 1.0 - 0.21 * t * (20.0 * t).sin().abs()),
    }
}

impl Strategy for PonPoko {
    fn init(&mut self, ctx: &PartyContext) {
        let mut seat = Seat::new(ctx, None);
        let pattern = self.fixed.unwrap_or_else(|| seat.rng.below(PATTERNS));
        self.state = Some((seat, pattern));
    }

    fn observe(&mut self, obs: &Observation) {
        if let Some((seat, _)) = self.state.as_mut() {
            seat.observe(obs);
        }
    }

    fn act(&mut self, turn: &Turn) -> Action {
        let Some((seat, pattern)) = self.state.as_mut() else { return Action::EndNegotiation };
        let (high, low) = thresholds(*pattern, turn.time);
        let clip = |x: f64| x.clamp(seat.min_utility, seat.max_utility);
        let (high, low) = (clip(high), clip(low));
        if let Some(u) = seat.standing_utility(turn)
            && u > low
            && u >= seat.reservation
        {
            return Action::Accept;
        }
        let bid = seat.random_in(low, high);
        seat.offer(bid)
    }
}
