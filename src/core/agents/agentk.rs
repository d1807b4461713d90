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
//! - "A random bid at or above the target" is drawn from the first
//!   [`super::seat::BAND_CANDIDATES`] bids of the band in the inverse's
//!   order (uniform over the band where it holds fewer, as on ANAC
//!   2010–2012 domains), not by random search with a lowered target.

use super::seat::Seat;
use crate::core::inverse::Bid;
use crate::core::protocol::Action;
use crate::core::strategy::{Observation, PartyContext, Strategy, Turn};

#[derive(Debug, Clone)]
pub struct AgentK {
    tremor: f64,
    state: Option<Seat>,
}

impl AgentK {
    pub fn new(tremor: f64) -> Self {
        Self { tremor, state: None }
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
        let band = seat.band(target, seat.max_utility);
        seat.pick(band)
    }
}

impl Strategy for AgentK {
    fn init(&mut self, ctx: &PartyContext) {
        self.state = Some(Seat::new(ctx, None));
    }

    fn observe(&mut self, obs: &Observation) {
        if let Some(seat) = self.state.as_mut() {
            seat.observe(obs);
        }
    }

    fn act(&mut self, turn: &Turn) -> Action {
        let Some(mut seat) = self.state.take() else { return Action::EndNegotiation };
        let t = turn.time;
        let (target, emax) = self.target(&seat, t);
        if let Some(u) = seat.standing_utility(turn)
            && u >= seat.reservation
        {
            let p = (t.powi(5) / 5.0 + (u - emax) + (u - target)).clamp(0.0, 1.0);
            if u >= target || seat.rng.next_f64() < p {
                self.state = Some(seat);
                return Action::Accept;
            }
        }
        let bid = Self::next_bid(&mut seat, target);
        let action = seat.offer(bid);
        self.state = Some(seat);
        action
    }
}
