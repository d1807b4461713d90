//! What the policy sees and what it decides, independent of the domain.
//!
//! Every utility is expressed as a share of the party's own range
//! `[low, high]` (`low = max(reservation value, lowest utility)`), so a
//! policy trained on 3×10 integer domains reads an ANAC domain with 10^5
//! outcomes the same way. The action picks a target level on that range; the
//! bid is then picked near the target with the opponent model (see
//! [`super::party`]), and an offer at or above the target is accepted.

/// Length of the observation vector.
pub const OBS_DIM: usize = 12;

/// The action: which concession curve to follow this turn. Action k sets
/// the target level (share of the range) to `1 − t^(1/e_k)`: a policy that
/// always picks one k is the time-dependent strategy with that exponent,
/// and switching between curves by what the opponent does is what a fixed
/// strategy cannot do. Over absolute levels (tried first) this starts from
/// a sensible family, so PPO spends its samples on adapting rather than on
/// rediscovering "concede with time"; a categorical head (over a Gaussian
/// one) keeps the ratio exact and the entropy bonus meaningful.
pub const EXPONENTS: [f64; 9] = [0.03, 0.06, 0.1, 0.15, 0.25, 0.4, 0.6, 1.0, 2.0];

/// Number of actions.
pub const N_ACTIONS: usize = EXPONENTS.len();

/// Target level of action `k` at relative time `t`.
pub fn level(k: usize, t: f64) -> f64 {
    1.0 - t.clamp(0.0, 1.0).powf(1.0 / EXPONENTS[k])
}

/// What a party keeps between turns to build observations.
#[derive(Debug, Clone)]
pub struct History {
    low: f64,
    high: f64,
    /// Opponent offers, as shares of this party's range, oldest first.
    received: Vec<f64>,
    best: f64,
    last_level: f64,
    rounds: Option<u32>,
}

impl History {
    pub fn new(low: f64, high: f64, rounds: Option<u32>) -> Self {
        Self { low, high, received: Vec::new(), best: 0.0, last_level: 1.0, rounds }
    }

    /// Share of the range: 0 at `low`, 1 at `high` (below `low` is negative).
    pub fn share(&self, u: f64) -> f64 {
        let range = self.high - self.low;
        if range > 1e-12 { ((u - self.low) / range).clamp(-1.0, 1.0) } else { 1.0 }
    }

    /// Utility of a target level.
    pub fn target(&self, level: f64) -> f64 {
        self.low + (self.high - self.low).max(0.0) * level
    }

    pub fn received(&mut self, utility: f64) {
        let s = self.share(utility);
        self.best = if self.received.is_empty() { s } else { self.best.max(s) };
        self.received.push(s);
    }

    pub fn chose(&mut self, level: f64) {
        self.last_level = level;
    }

    /// The observation at relative time `time` in round `round`.
    pub fn observe(&self, time: f64, round: u32) -> [f32; OBS_DIM] {
        let n = self.received.len();
        let back = |k: usize| if n > k { self.received[n - 1 - k] } else { 0.0 };
        let first = self.received.first().copied().unwrap_or(0.0);
        let rounds_left = match self.rounds {
            Some(r) => (r.saturating_sub(round) as f64).min(10.0) / 10.0,
            None => 1.0,
        };
        [
            time as f32,
            self.last_level as f32,
            back(0) as f32,
            back(1) as f32,
            back(2) as f32,
            self.best as f32,
            if n > 0 { (back(0) - first) as f32 } else { 0.0 },
            if n > 4 { (back(0) - back(4)) as f32 } else { 0.0 },
            if n > 0 { 1.0 } else { 0.0 },
            self.low as f32,
            (self.high - self.low) as f32,
            rounds_left as f32,
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_are_shares_of_the_range() {
        let mut h = History::new(0.2, 1.0, Some(100));
        h.received(0.6);
        h.received(0.8);
        let o = h.observe(0.5, 95);
        assert!((o[2] - 0.75).abs() < 1e-6 && (o[3] - 0.5).abs() < 1e-6);
        assert!((o[6] - 0.25).abs() < 1e-6, "concession seen");
        assert!((o[11] - 0.5).abs() < 1e-6, "5 rounds left");
        assert!((h.target(0.5) - 0.6).abs() < 1e-12);
        assert!((0..N_ACTIONS - 1).all(|k| level(k, 0.5) > level(k + 1, 0.5)), "tougher first");
        assert_eq!(level(3, 0.0), 1.0);
    }
}
