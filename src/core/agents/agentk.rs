//! AgentK (Kawaguchi, Fujita and Ito; winner of ANAC 2010; "Compromising
//! Strategy Based on Estimated Maximum Utility for Automated Negotiation
//! Agents", in New Trends in Agent-Based Complex Automated Negotiations,
//! 2012): estimate the best the opponent will still offer from the mean and
//! spread of its offers so far, and concede towards that estimate.
//!
//! - With μ and σ the mean and standard deviation of the received offers'
//!   utilities, the width of a uniform distribution of that spread is
//!   d = √12·σ, and the estimated maximum the opponent will offer is
//!   emax = μ + (1 − μ)·d.
//! - Target(t) = 1 − (1 − emax)·t^α with α = 1 + τ + 10μ − 2τμ (τ, the
//!   "tremor", is 2): the more generous the opponent (high μ), the harder
//!   the agent stays.
//! - It accepts an offer at or above the target; below it, with probability
//!   t⁵/5 + (u − emax) + (u − target) (clipped to [0, 1]), so that late
//!   offers near the estimate get taken.
//! - It bids the best offer received when that reaches the target, else a
//!   random bid at or above the target.
//!
//! Where this differs from the paper, deliberately:
//! - Utilities are the party's own scale with max 1 assumed by the paper;
//!   targets are clipped to the party's rational range instead.
//! - "A random bid at or above the target" is drawn uniformly (by
//!   rejection, or from the first [`super::seat::BAND_CANDIDATES`] bids of
//!   the band where few qualify), not by random search with a lowered
//!   target.

use super::seat::{Seat, SeatAgent};
use crate::core::inverse::Bid;
use crate::core::protocol::Action;
use crate::core::strategy::Turn;

#[derive(Debug, Clone)]
pub struct AgentK {
    tremor: f64,
}

impl AgentK {
    pub fn new(tremor: f64) -> Self {
        Self { tremor }
    }

    /// (target, emax) at time `t`.
    fn target(&self, seat: &Seat, t: f64) -> (f64, f64) {
        let n = seat.heard.len();
        if n == 0 {
            return (seat.max_utility, seat.max_utility);
        }
        let mean = seat.heard.iter().map(|h| h.1).sum::<f64>() / n as f64;
        let var = seat.heard.iter().map(|h| (h.1 - mean).powi(2)).sum::<f64>() / n as f64;
        let d = (12.0 * var).sqrt().min(1.0);
        let emax = (mean + (1.0 - mean) * d).min(seat.max_utility);
        let alpha = 1.0 + self.tremor + 10.0 * mean - 2.0 * self.tremor * mean;
        let target = 1.0 - (1.0 - emax) * t.powf(alpha.max(f64::MIN_POSITIVE));
        (target.clamp(seat.min_utility, seat.max_utility), emax)
    }

    fn next_bid(seat: &mut Seat, target: f64) -> Option<Bid> {
        if let Some(r) = seat.best_received()
            && r.utility >= target
        {
            return Some((r.offer.clone(), r.utility));
        }
        seat.random_in(target, seat.max_utility)
    }
}

impl SeatAgent for AgentK {
    fn act(&mut self, seat: &mut Seat, turn: &Turn) -> Action {
        let t = turn.time;
        let (target, emax) = self.target(seat, t);
        if let Some(u) = seat.standing_utility(turn)
            && u >= seat.reservation
        {
            let p = (t.powi(5) / 5.0 + (u - emax) + (u - target)).clamp(0.0, 1.0);
            if u >= target || seat.rng.next_f64() < p {
                return Action::Accept;
            }
        }
        let bid = Self::next_bid(seat, target);
        seat.offer(bid)
    }
}
