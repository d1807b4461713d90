//! IAMhaggler2011 (Williams, Robu, Gerding and Jennings, "Using Gaussian
//! Processes to Optimise Concession in Complex Negotiations against Unknown
//! Opponents", IJCAI 2011; ANAC 2011 finalist): predict how the opponent
//! will concede, and aim for the time and utility where the expected gain
//! is highest.
//!
//! - Time is cut into 36 slots; for each slot the agent keeps the best
//!   utility (to itself) of the opponent's offers in it.
//! - A Gaussian process (Matérn 3/2 covariance, linear prior mean fitted by
//!   least squares) regresses those maxima on time and predicts, for every
//!   slot still to come, a mean and a spread of the best offer then.
//! - It picks the (t*, u*) that maximises u·P(best offer at t* ≥ u)·d^t*
//!   over the slots to come and a grid of utilities (d the discount
//!   factor), and concedes linearly from where its target stands now to u*
//!   at t*. The fit is redone once per slot, after the first two slots with
//!   offers; before that it asks for its best.
//! - It offers a random bid in a narrow band at its target, and accepts an
//!   offer at or above its target or its next bid.
//!
//! Where this differs from the paper, deliberately:
//! - The covariance's hyperparameters are fixed (length scale 0.3, signal
//!   0.1, noise 0.02 in utility) where the paper fits them by maximum
//!   likelihood each time.
//! - u* is never below the reservation value or the best offer received
//!   (the paper's agent would not accept less than that either, through its
//!   acceptance rule), and where several slots promise the same gain the
//!   latest wins. Without both, a flat prediction (a Boulware opponent
//!   before its late concession) makes "the best offer so far, now" the
//!   optimum, and the agent gives in at once.

use super::seat::Seat;
use crate::core::protocol::Action;
use crate::core::strategy::{Acceptance, Observation, PartyContext, Strategy, Turn};

const SLOTS: usize = 36;
const LENGTH_SCALE: f64 = 0.3;
const SIGNAL: f64 = 0.1;
const NOISE: f64 = 0.02;
/// Steps of the coarse and the fine grid u* is searched on.
const COARSE: usize = 20;
const FINE: usize = 20;
/// The band the bid is drawn from, above the target.
const BAND: f64 = 0.02;

#[derive(Debug, Clone)]
pub struct IamHaggler {
    acceptance: Acceptance,
    state: Option<State>,
}

impl Default for IamHaggler {
    fn default() -> Self {
        Self { acceptance: Acceptance::Any(vec![Acceptance::Target, Acceptance::Next]), state: None }
    }
}

#[derive(Debug, Clone)]
struct State {
    seat: Seat,
    /// Best utility received per slot.
    slot_best: [Option<f64>; SLOTS],
    /// The slot the plan was last made in.
    planned_in: Option<usize>,
    /// The concession line: from (t0, u0) to (t*, u*).
    from: (f64, f64),
    to: (f64, f64),
}

fn slot_of(t: f64) -> usize {
    ((t * SLOTS as f64) as usize).min(SLOTS - 1)
}

fn slot_time(s: usize) -> f64 {
    (s as f64 + 0.5) / SLOTS as f64
}

fn matern(a: f64, b: f64) -> f64 {
    let r = 3f64.sqrt() * (a - b).abs() / LENGTH_SCALE;
    SIGNAL * SIGNAL * (1.0 + r) * (-r).exp()
}

/// The standard normal distribution function (Abramowitz and Stegun
/// 7.1.26, absolute error below 1.5e-7: far finer than the utility grid).
pub fn normal_cdf(x: f64) -> f64 {
    let z = x.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * z);
    let poly =
        t * (0.254_829_592 + t * (-0.284_496_736 + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erf = 1.0 - poly * (-z * z).exp();
    if x >= 0.0 { 0.5 * (1.0 + erf) } else { 0.5 * (1.0 - erf) }
}

/// Gaussian process regression of `ys` on `xs` (a linear prior mean, then
/// the Matérn covariance on the residuals): the predicted mean and
/// standard deviation at each of `at`.
pub fn predict(xs: &[f64], ys: &[f64], at: &[f64]) -> Vec<(f64, f64)> {
    let n = xs.len();
    let (mx, my) = (xs.iter().sum::<f64>() / n as f64, ys.iter().sum::<f64>() / n as f64);
    let sxx: f64 = xs.iter().map(|x| (x - mx).powi(2)).sum();
    let slope = if sxx > 0.0 { xs.iter().zip(ys).map(|(x, y)| (x - mx) * (y - my)).sum::<f64>() / sxx } else { 0.0 };
    let prior = |x: f64| my + slope * (x - mx);
    // K + σn²I = L Lᵀ (Cholesky; positive definite by the noise term).
    let mut l = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..=i {
            let mut s = matern(xs[i], xs[j]) + if i == j { NOISE * NOISE } else { 0.0 };
            for k in 0..j {
                s -= l[i * n + k] * l[j * n + k];
            }
            l[i * n + j] = if i == j { s.max(1e-18).sqrt() } else { s / l[j * n + j] };
        }
    }
    let solve_lower = |b: &[f64]| {
        let mut y = vec![0.0; n];
        for i in 0..n {
            let s: f64 = (0..i).map(|k| l[i * n + k] * y[k]).sum();
            y[i] = (b[i] - s) / l[i * n + i];
        }
        y
    };
    let residuals: Vec<f64> = xs.iter().zip(ys).map(|(x, y)| y - prior(*x)).collect();
    let z = solve_lower(&residuals);
    // alpha = L⁻ᵀ z
    let mut alpha = vec![0.0; n];
    for i in (0..n).rev() {
        let s: f64 = (i + 1..n).map(|k| l[k * n + i] * alpha[k]).sum();
        alpha[i] = (z[i] - s) / l[i * n + i];
    }
    at.iter()
        .map(|&t| {
            let k: Vec<f64> = xs.iter().map(|&x| matern(t, x)).collect();
            let mean = prior(t) + k.iter().zip(&alpha).map(|(a, b)| a * b).sum::<f64>();
            let v = solve_lower(&k);
            let var = matern(t, t) - v.iter().map(|x| x * x).sum::<f64>();
            (mean, var.max(0.0).sqrt())
        })
        .collect()
}

impl State {
    fn target(&self, t: f64) -> f64 {
        let ((t0, u0), (t1, u1)) = (self.from, self.to);
        let u = if t >= t1 || t1 <= t0 { u1 } else { u0 + (u1 - u0) * (t - t0) / (t1 - t0) };
        u.clamp(self.seat.min_utility, self.seat.max_utility)
    }

    /// Refits once per slot and sets the concession line from now.
    fn plan(&mut self, t: f64) {
        let slot = slot_of(t);
        if self.planned_in == Some(slot) {
            return;
        }
        let (xs, ys): (Vec<f64>, Vec<f64>) =
            (0..slot).filter_map(|s| self.slot_best[s].map(|u| (slot_time(s), u))).unzip();
        if xs.len() < 2 {
            return;
        }
        self.planned_in = Some(slot);
        let future: Vec<f64> = (slot..SLOTS).map(slot_time).collect();
        let predicted = predict(&xs, &ys, &future);
        let discount = self.seat.ctx.preferences.discount;
        let floor = self.seat.min_utility.max(self.seat.best_received().map_or(f64::NEG_INFINITY, |r| r.utility));
        let (lo, hi) = (floor.min(self.seat.max_utility), self.seat.max_utility);
        let mut best = (f64::NEG_INFINITY, (1.0, lo));
        // Latest first, so that ties (no discount and a flat prediction:
        // the best offer so far is as likely now as later) go to waiting.
        for (tf, (mean, sd)) in future.iter().zip(&predicted).rev() {
            let d = if discount < 1.0 { discount.powf(*tf) } else { 1.0 };
            let gain = |u: f64| {
                let p = if *sd > 0.0 { 1.0 - normal_cdf((u - mean) / sd) } else { f64::from(u <= *mean) };
                u * p * d
            };
            // A coarse pass over the range, then a fine one around its best
            // (u·P(≥ u) rises, peaks once and falls): a grid of 1/400 of the
            // range for 42 evaluations.
            let coarse = |k: usize| lo + (hi - lo) * k as f64 / COARSE as f64;
            let k =
                (0..=COARSE).max_by(|&a, &b| gain(coarse(a)).total_cmp(&gain(coarse(b))).then(b.cmp(&a))).unwrap_or(0);
            let (from, to) = (coarse(k.saturating_sub(1)), coarse((k + 1).min(COARSE)));
            for j in 0..=FINE {
                let u = from + (to - from) * j as f64 / FINE as f64;
                let g = gain(u);
                if g > best.0 {
                    best = (g, (*tf, u));
                }
            }
        }
        self.from = (t, self.target(t));
        self.to = best.1;
    }
}

impl Strategy for IamHaggler {
    fn init(&mut self, ctx: &PartyContext) {
        let seat = Seat::new(ctx, None);
        let top = seat.max_utility;
        self.state = Some(State { seat, slot_best: [None; SLOTS], planned_in: None, from: (0.0, top), to: (1.0, top) });
    }

    fn observe(&mut self, obs: &Observation) {
        let Some(st) = self.state.as_mut() else { return };
        st.seat.observe(obs);
        if let Some(&(time, u)) = st.seat.heard.last().filter(|_| matches!(obs.action, Action::Offer(_))) {
            let best = &mut st.slot_best[slot_of(time)];
            *best = Some(best.map_or(u, |b: f64| b.max(u)));
        }
    }

    fn act(&mut self, turn: &Turn) -> Action {
        let Some(st) = self.state.as_mut() else { return Action::EndNegotiation };
        st.plan(turn.time);
        let target = st.target(turn.time);
        let band = st.seat.band(target, target + BAND * (st.seat.max_utility - st.seat.min_utility));
        let bid = st.seat.pick(band);
        if let Some(u) = st.seat.standing_utility(turn)
            && st.seat.accepts(&self.acceptance, u, turn, target, bid.as_ref())
        {
            return Action::Accept;
        }
        st.seat.offer(bid)
    }
}
