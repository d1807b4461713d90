//! HardHeaded (van Krimpen, Looije and Hajizadeh; winner of ANAC 2011;
//! "HardHeaded", in Complex Automated Negotiations, Studies in
//! Computational Intelligence 435, 2013): concede very late, and within
//! each step choose the bid the opponent's frequency model likes best.
//!
//! - Target p(t) = Pmin + (Pmax − Pmin)(1 − F(t)), F(t) = ka + (1 − ka)·t^(1/e),
//!   with the chapter's e = 0.05 and ka = 0.05: a Boulware curve that stays
//!   near the best utility until the last moments. Pmin is the chapter's
//!   minimum bid utility (0.585) or the reservation value, whichever is higher.
//! - It opens with its best bid. Each later bid lies between the new target
//!   and its previous bid; of those, the top few by the opponent model
//!   (`top_bids`, 4 in the chapter) are candidates, and one is drawn at random.
//! - The opponent model is the frequency model (values counted, issue
//!   weights learnt at rate 0.2 when the opponent keeps a value).
//! - When the best offer received is at least the target, it offers that
//!   back instead.
//! - It accepts an offer at least as good as its next bid or its previous
//!   one (AC_next or AC_prev).
//!
//! Where this differs from the chapter, deliberately:
//! - The discount factor does not change e (the chapter lowers the
//!   concession's hardness on discounted domains): decisions use
//!   undiscounted utility, as GENIUS's agents see it without that rule.
//! - The bids "between target and previous bid" are at most
//!   [`super::seat::BAND_CANDIDATES`] of them, in the inverse's order, on
//!   spaces where the band holds more.

use super::seat::{Seat, SeatAgent};
use crate::core::inverse::Bid;
use crate::core::protocol::Action;
use crate::core::strategy::{Acceptance, ModelKind, Turn};

/// The chapter's learning coefficient for issue weights.
const LEARNING_RATE: f64 = 0.2;

#[derive(Debug, Clone)]
pub struct HardHeaded {
    e: f64,
    ka: f64,
    min_utility: f64,
    top_bids: usize,
    /// AC_next or AC_prev.
    acceptance: Acceptance,
}

impl HardHeaded {
    pub fn new(e: f64, ka: f64, min_utility: f64, top_bids: usize) -> Self {
        let acceptance = Acceptance::Any(vec![Acceptance::Next, Acceptance::Prev]);
        Self { e, ka, min_utility, top_bids: top_bids.max(1), acceptance }
    }

    pub(super) fn target(&self, seat: &Seat, t: f64) -> f64 {
        let p_max = seat.max_utility;
        let p_min = self.min_utility.max(seat.min_utility).min(p_max);
        let f = self.ka + (1.0 - self.ka) * t.powf(1.0 / self.e);
        p_min + (p_max - p_min) * (1.0 - f)
    }

    fn next_bid(&self, seat: &mut Seat, t: f64) -> Option<Bid> {
        let Some(&previous) = seat.sent.last() else { return seat.index.best() };
        let target = self.target(seat, t);
        if let Some(r) = seat.best_received()
            && r.utility >= target
        {
            return Some((r.offer.clone(), r.utility));
        }
        let mut band = seat.band(target, previous.max(target));
        if seat.informed() && band.len() > 1 {
            // The top few for the opponent, the first among equals kept first.
            let mut scored: Vec<(f64, Bid)> = band.into_iter().map(|b| (seat.opponent_estimate(&b.0), b)).collect();
            scored.sort_by(|a, b| b.0.total_cmp(&a.0));
            scored.truncate(self.top_bids);
            band = scored.into_iter().map(|(_, b)| b).collect();
        }
        seat.pick(band)
    }
}

impl SeatAgent for HardHeaded {
    fn model(&self) -> Option<ModelKind> {
        Some(ModelKind::Frequency { rate: LEARNING_RATE })
    }

    fn act(&mut self, seat: &mut Seat, turn: &Turn) -> Action {
        let bid = self.next_bid(seat, turn.time);
        let target = self.target(seat, turn.time);
        if let Some(u) = seat.standing_utility(turn)
            && seat.accepts(&self.acceptance, u, turn, target, bid.as_ref())
        {
            return Action::Accept;
        }
        seat.offer(bid)
    }
}
