//! Opponent models (the O of BOA).

use crate::core::domain::{Domain, Issue, Outcome, Value};

/// Bins for real issues: the model counts values per bin.
const REAL_BINS: usize = 10;
/// Issue weight gained each time an opponent keeps an issue's value.
const WEIGHT_LEARNING_RATE: f64 = 0.1;

/// Where each issue's values fall for a model: a discrete value is its own
/// slot, a small integer range one slot per value, anything wider
/// [`REAL_BINS`] equal bins.
#[derive(Debug, Clone)]
pub struct Slots {
    bins: Vec<(f64, f64, usize)>,
}

impl Slots {
    pub fn new(domain: &Domain) -> Self {
        let bins = domain
            .issues
            .iter()
            .map(|i| match i {
                Issue::Discrete { values, .. } => (0.0, 1.0, values.len()),
                Issue::Integer { min, max, .. } if max.abs_diff(*min) < 64 => {
                    (*min as f64, 1.0, (max - min + 1) as usize)
                }
                Issue::Integer { min, max, .. } => {
                    (*min as f64, (*max as f64 - *min as f64) / REAL_BINS as f64, REAL_BINS)
                }
                Issue::Real { min, max, .. } => (*min, (max - min) / REAL_BINS as f64, REAL_BINS),
            })
            .collect();
        Self { bins }
    }

    /// Slots of each issue (at least one).
    pub fn sizes(&self) -> impl Iterator<Item = usize> + '_ {
        self.bins.iter().map(|b| b.2.max(1))
    }

    pub fn slot(&self, issue: usize, v: &Value) -> usize {
        let (origin, width, n) = self.bins[issue];
        let k = match v {
            Value::Discrete(i) => *i as usize,
            other => {
                if width > 0.0 {
                    ((other.as_f64() - origin) / width) as usize
                } else {
                    0
                }
            }
        };
        k.min(n.saturating_sub(1))
    }

    fn of(&self, offer: &Outcome) -> Vec<usize> {
        offer.0.iter().enumerate().map(|(i, v)| self.slot(i, v)).collect()
    }
}

/// Frequency model (after HardHeaded, ANAC 2011): values an opponent offers
/// often are the ones it likes; issues whose value it rarely changes weigh most.
#[derive(Debug, Clone)]
pub struct FrequencyModel {
    counts: Vec<Vec<f64>>,
    /// The largest count per issue (counts only grow, so it is kept, not searched).
    maxima: Vec<f64>,
    weights: Vec<f64>,
    last: Option<Vec<usize>>,
    slots: Slots,
    learning_rate: f64,
}

impl FrequencyModel {
    pub fn new(domain: &Domain) -> Self {
        Self::with_learning_rate(domain, WEIGHT_LEARNING_RATE)
    }

    /// `rate`: the issue weight gained when the opponent keeps an issue's
    /// value between two offers (HardHeaded's chapter uses 0.2).
    pub fn with_learning_rate(domain: &Domain, rate: f64) -> Self {
        let slots = Slots::new(domain);
        let n = domain.issues.len().max(1);
        Self {
            counts: slots.sizes().map(|k| vec![0.0; k]).collect(),
            maxima: vec![0.0; domain.issues.len()],
            weights: vec![1.0 / n as f64; domain.issues.len()],
            last: None,
            slots,
            learning_rate: rate,
        }
    }

    /// Whether the model has seen an offer yet (before that it knows nothing).
    pub fn is_informed(&self) -> bool {
        self.last.is_some()
    }

    pub fn update(&mut self, offer: &Outcome) {
        let slots = self.slots.of(offer);
        if let Some(last) = &self.last {
            for (i, (a, b)) in slots.iter().zip(last).enumerate() {
                if a == b {
                    self.weights[i] += self.learning_rate;
                }
            }
            let total: f64 = self.weights.iter().sum();
            self.weights.iter_mut().for_each(|w| *w /= total);
        }
        for (i, s) in slots.iter().enumerate() {
            self.counts[i][*s] += 1.0;
            self.maxima[i] = self.maxima[i].max(self.counts[i][*s]);
        }
        self.last = Some(slots);
    }

    /// Estimated opponent utility in [0, 1].
    pub fn estimate(&self, outcome: &Outcome) -> f64 {
        if self.last.is_none() {
            return 0.5;
        }
        outcome
            .0
            .iter()
            .enumerate()
            .map(|(i, v)| self.weights[i] * (self.counts[i][self.slots.slot(i, v)] + 1.0) / (self.maxima[i] + 1.0))
            .sum()
    }
}

/// The opponent's utility of its own offers that the Bayesian model
/// assumes: it starts at its best and concedes this much by the deadline.
const BAYES_CONCESSION: f64 = 0.2;
/// Spread of the offers' utilities around that assumption.
const BAYES_SIGMA: f64 = 0.3;
/// Weight hypotheses per issue: 1/10, 2/10, ..., 1 (before normalising).
const WEIGHT_LEVELS: usize = 10;

/// Bayesian opponent model (after Hindriks and Tykhonov, "Opponent
/// modelling in automated multi-issue negotiation using Bayesian
/// learning", AAMAS 2008; their scalable variant, issues learnt
/// independently). Per issue, hypotheses over its weight (ten levels) and
/// over the shape of its value function across the issue's slots in
/// their listed order: downhill, uphill, or peaked at one slot. Each offer
/// updates every issue's hypotheses by the likelihood that the opponent
/// valued it at what a conceding opponent would at that time,
/// 1 − 0.2·t, with a spread of 0.3; the estimate is the expected
/// utility under the posteriors.
///
/// Where this differs from the paper: the concession assumption's rate and
/// spread are fixed here (the paper leaves them to the agent), and real
/// and wide integer issues are learnt over ten bins.
#[derive(Debug, Clone)]
pub struct BayesianModel {
    slots: Slots,
    /// Per issue: P(weight level k).
    weights: Vec<Vec<f64>>,
    /// Per issue: the shapes (each a value per slot) and P(shape).
    shapes: Vec<Vec<Vec<f64>>>,
    shape_p: Vec<Vec<f64>>,
    /// The posteriors' expected weight per issue and expected value per
    /// slot, kept between offers: estimates are asked far more often than
    /// the model learns.
    mean_weight: Vec<f64>,
    mean_value: Vec<Vec<f64>>,
    informed: bool,
}

fn shapes_for(n: usize) -> Vec<Vec<f64>> {
    if n <= 1 {
        return vec![vec![1.0]];
    }
    let last = (n - 1) as f64;
    let mut shapes =
        vec![(0..n).map(|k| 1.0 - k as f64 / last).collect::<Vec<_>>(), (0..n).map(|k| k as f64 / last).collect()];
    for peak in 1..n - 1 {
        let span = peak.max(n - 1 - peak) as f64;
        shapes.push((0..n).map(|k| 1.0 - (k as f64 - peak as f64).abs() / span).collect());
    }
    shapes
}

fn normalise(p: &mut [f64]) {
    let total: f64 = p.iter().sum();
    if total > 0.0 && total.is_finite() {
        p.iter_mut().for_each(|x| *x /= total);
    } else {
        let n = p.len() as f64;
        p.iter_mut().for_each(|x| *x = 1.0 / n);
    }
}

impl BayesianModel {
    pub fn new(domain: &Domain) -> Self {
        let slots = Slots::new(domain);
        let shapes: Vec<Vec<Vec<f64>>> = slots.sizes().map(shapes_for).collect();
        let shape_p = shapes.iter().map(|h| vec![1.0 / h.len() as f64; h.len()]).collect();
        let weights = vec![vec![1.0 / WEIGHT_LEVELS as f64; WEIGHT_LEVELS]; domain.issues.len()];
        let mut model =
            Self { slots, weights, shapes, shape_p, mean_weight: Vec::new(), mean_value: Vec::new(), informed: false };
        model.refresh();
        model
    }

    fn refresh(&mut self) {
        self.mean_weight =
            self.weights.iter().map(|p| p.iter().enumerate().map(|(k, p)| p * Self::level(k)).sum()).collect();
        self.mean_value = self
            .shapes
            .iter()
            .zip(&self.shape_p)
            .map(|(hs, ps)| {
                let slots = hs.first().map_or(0, Vec::len);
                (0..slots).map(|k| hs.iter().zip(ps).map(|(h, p)| p * h[k]).sum()).collect()
            })
            .collect();
    }

    fn level(k: usize) -> f64 {
        (k + 1) as f64 / WEIGHT_LEVELS as f64
    }

    fn expected_weight(&self, i: usize) -> f64 {
        self.mean_weight[i]
    }

    fn expected_value(&self, i: usize, slot: usize) -> f64 {
        self.mean_value[i][slot]
    }

    pub fn is_informed(&self) -> bool {
        self.informed
    }

    /// Learns from an offer made at relative time `time`.
    pub fn update(&mut self, offer: &Outcome, time: f64) {
        let slots = self.slots.of(offer);
        let n = slots.len();
        let w: Vec<f64> = (0..n).map(|i| self.expected_weight(i)).collect();
        let e: Vec<f64> = (0..n).map(|i| self.expected_value(i, slots[i])).collect();
        let expected = 1.0 - BAYES_CONCESSION * time;
        let likelihood = |u: f64| (-(u - expected).powi(2) / (2.0 * BAYES_SIGMA * BAYES_SIGMA)).exp();
        for i in 0..n {
            let (others_w, others): (f64, f64) =
                (0..n).filter(|&j| j != i).fold((0.0, 0.0), |(a, b), j| (a + w[j], b + w[j] * e[j]));
            // The utility each hypothesis gives this offer, the other
            // issues at their expected weights and values, weights normalised.
            for k in 0..WEIGHT_LEVELS {
                let wk = Self::level(k);
                self.weights[i][k] *= likelihood((wk * e[i] + others) / (wk + others_w));
            }
            let total_w = w[i] + others_w;
            for (h, p) in self.shapes[i].iter().zip(self.shape_p[i].iter_mut()) {
                *p *= likelihood((w[i] * h[slots[i]] + others) / total_w);
            }
            normalise(&mut self.weights[i]);
            normalise(&mut self.shape_p[i]);
        }
        self.refresh();
        self.informed = true;
    }

    /// Estimated opponent utility in [0, 1].
    pub fn estimate(&self, outcome: &Outcome) -> f64 {
        if !self.informed {
            return 0.5;
        }
        let (mut total_w, mut u) = (0.0, 0.0);
        for (i, v) in outcome.0.iter().enumerate() {
            let w = self.expected_weight(i);
            total_w += w;
            u += w * self.expected_value(i, self.slots.slot(i, v));
        }
        if total_w > 0.0 { u / total_w } else { 0.5 }
    }
}

/// Which opponent model a strategy keeps.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ModelKind {
    /// The frequency model, with its issue-weight learning rate.
    Frequency {
        rate: f64,
    },
    Bayesian,
}

impl ModelKind {
    /// The frequency model with the library's learning rate.
    pub const FREQUENCY: ModelKind = ModelKind::Frequency { rate: WEIGHT_LEARNING_RATE };
}

/// One opponent model, of either kind, behind one interface.
#[derive(Debug, Clone)]
pub enum OpponentModel {
    Frequency(FrequencyModel),
    Bayesian(BayesianModel),
}

impl OpponentModel {
    pub fn new(kind: ModelKind, domain: &Domain) -> Self {
        match kind {
            ModelKind::Frequency { rate } => OpponentModel::Frequency(FrequencyModel::with_learning_rate(domain, rate)),
            ModelKind::Bayesian => OpponentModel::Bayesian(BayesianModel::new(domain)),
        }
    }

    pub fn is_informed(&self) -> bool {
        match self {
            OpponentModel::Frequency(m) => m.is_informed(),
            OpponentModel::Bayesian(m) => m.is_informed(),
        }
    }

    /// Learns from the opponent's offer, made at relative time `time`.
    pub fn update(&mut self, offer: &Outcome, time: f64) {
        match self {
            OpponentModel::Frequency(m) => m.update(offer),
            OpponentModel::Bayesian(m) => m.update(offer, time),
        }
    }

    pub fn estimate(&self, outcome: &Outcome) -> f64 {
        match self {
            OpponentModel::Frequency(m) => m.estimate(outcome),
            OpponentModel::Bayesian(m) => m.estimate(outcome),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learns_preferred_values_and_stable_issues() {
        let d = Domain::new(
            "d",
            vec![
                Issue::Integer { name: "price".into(), min: 0, max: 9 },
                Issue::Discrete { name: "color".into(), values: vec!["r".into(), "g".into()] },
            ],
        );
        let mut m = FrequencyModel::new(&d);
        for p in [9, 8, 7, 6] {
            m.update(&Outcome::from(vec![Value::Integer(p), Value::Discrete(1)]));
        }
        let liked = Outcome::from(vec![Value::Integer(8), Value::Discrete(1)]);
        let disliked = Outcome::from(vec![Value::Integer(0), Value::Discrete(0)]);
        assert!(m.estimate(&liked) > m.estimate(&disliked));
        assert!(m.weights[1] > m.weights[0], "the value it never changes weighs more");
    }

    #[test]
    fn the_bayesian_model_learns_what_a_conceding_opponent_prefers() {
        let d = Domain::new(
            "d",
            vec![
                Issue::Integer { name: "price".into(), min: 0, max: 9 },
                Issue::Integer { name: "extras".into(), min: 0, max: 4 },
            ],
        );
        let mut m = BayesianModel::new(&d);
        assert_eq!(m.estimate(&Outcome::from(vec![Value::Integer(0), Value::Integer(0)])), 0.5);
        // It opens at high prices and comes down slowly; it always asks for
        // no extras: price matters, and it likes it high and extras low.
        for (k, p) in [9, 9, 8, 8, 7, 7, 6].into_iter().enumerate() {
            m.update(&Outcome::from(vec![Value::Integer(p), Value::Integer(0)]), k as f64 / 10.0);
        }
        let at = |p: i64, x: i64| m.estimate(&Outcome::from(vec![Value::Integer(p), Value::Integer(x)]));
        assert!(at(9, 0) > at(0, 0), "high prices are its liking");
        assert!(at(9, 0) > at(9, 4), "so are few extras");
        assert!(at(9, 0) > 0.8 && at(0, 4) < 0.3, "{} {}", at(9, 0), at(0, 4));
        let any = OpponentModel::new(ModelKind::Bayesian, &d);
        assert!(!any.is_informed());
    }
}
