//! AgreeableAgent2018 (Sahar Mirzayi and colleagues; winner of ANAC 2018,
//! ANAC 2018 report, Aydoğan et al. 2019): a time-dependent agent that
//! spends its first moments learning the opponent, then bids what the
//! opponent is likely to like among the bids it can still accept.
//!
//! - Target p(t) = pmin + (pmax − pmin)(1 − t^(1/e)), a Boulware curve.
//! - Until `learning_time` it offers its best bid only, so that the
//!   frequency model sees the opponent's offers before it matters.
//! - Afterwards it draws its bid by roulette wheel among the bids in a band
//!   at its target, each weighted by the model's estimate of the opponent's
//!   utility: likely win-win bids, without always repeating one.
//! - It accepts an offer at least as good as its next bid (AC_next).
//!
//! Where this differs from the original, deliberately:
//! - The report describes the shape, not the constants: e, pmin and the
//!   learning time are parameters here with defaults of ours (0.1, 0.6,
//!   0.05); the original also chooses e from the domain's size.
//! - The band is [target, target + 5% of the range], at most
//!   [`super::seat::BAND_CANDIDATES`] bids.

use super::seat::{Seat, SeatAgent};
use crate::core::protocol::Action;
use crate::core::strategy::{Acceptance, ModelKind, Turn};

const BAND: f64 = 0.05;
const LEARNING_RATE: f64 = 0.1;

#[derive(Debug, Clone)]
pub struct Agreeable {
    e: f64,
    min_utility: f64,
    learning_time: f64,
}

impl Agreeable {
    pub fn new(e: f64, min_utility: f64, learning_time: f64) -> Self {
        Self { e, min_utility, learning_time }
    }
}

impl SeatAgent for Agreeable {
    fn model(&self) -> Option<ModelKind> {
        Some(ModelKind::Frequency { rate: LEARNING_RATE })
    }

    fn act(&mut self, seat: &mut Seat, turn: &Turn) -> Action {
        let (high, t) = (seat.max_utility, turn.time);
        let low = self.min_utility.max(seat.min_utility).min(high);
        let target = low + (high - low) * (1.0 - t.powf(1.0 / self.e));
        let bid = if t < self.learning_time {
            seat.index.best()
        } else {
            let band = seat.band(target, target + BAND * (high - seat.min_utility));
            let weights: Vec<f64> = band.iter().map(|b| seat.opponent_estimate(&b.0).max(1e-9)).collect();
            let total: f64 = weights.iter().sum();
            let mut spin = seat.rng.next_f64() * total;
            let k = weights.iter().position(|w| {
                spin -= w;
                spin < 0.0
            });
            k.or(band.len().checked_sub(1)).map(|k| band[k].clone())
        };
        if let Some(u) = seat.standing_utility(turn)
            && seat.accepts(&Acceptance::Next, u, turn, target, bid.as_ref())
        {
            return Action::Accept;
        }
        seat.offer(bid)
    }
}
