//! Opponent models (the O of BOA).

use crate::core::domain::{Domain, Issue, Outcome, Value};

/// Bins for real issues: the model counts values per bin.
const REAL_BINS: usize = 10;
/// Issue weight gained each time an opponent keeps an issue's value.
const WEIGHT_LEARNING_RATE: f64 = 0.1;

/// Frequency model (after HardHeaded, ANAC 2011): values an opponent offers
/// often are the ones it likes; issues whose value it rarely changes weigh most.
#[derive(Debug, Clone)]
pub struct FrequencyModel {
    counts: Vec<Vec<f64>>,
    /// The largest count per issue (counts only grow, so it is kept, not searched).
    maxima: Vec<f64>,
    weights: Vec<f64>,
    last: Option<Vec<usize>>,
    bins: Vec<(f64, f64, usize)>,
    learning_rate: f64,
}

impl FrequencyModel {
    pub fn new(domain: &Domain) -> Self {
        Self::with_learning_rate(domain, WEIGHT_LEARNING_RATE)
    }

    /// `rate`: the issue weight gained when the opponent keeps an issue's
    /// value between two offers (HardHeaded's chapter uses 0.2).
    pub fn with_learning_rate(domain: &Domain, rate: f64) -> Self {
        let bins: Vec<(f64, f64, usize)> = domain
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
        let n = domain.issues.len().max(1);
        Self {
            counts: bins.iter().map(|b| vec![0.0; b.2.max(1)]).collect(),
            maxima: vec![0.0; bins.len()],
            weights: vec![1.0 / n as f64; domain.issues.len()],
            last: None,
            bins,
            learning_rate: rate,
        }
    }

    fn slot(&self, issue: usize, v: &Value) -> usize {
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

    /// Whether the model has seen an offer yet (before that it knows nothing).
    pub fn is_informed(&self) -> bool {
        self.last.is_some()
    }

    pub fn update(&mut self, offer: &Outcome) {
        let slots: Vec<usize> = offer.0.iter().enumerate().map(|(i, v)| self.slot(i, v)).collect();
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
            .map(|(i, v)| self.weights[i] * (self.counts[i][self.slot(i, v)] + 1.0) / (self.maxima[i] + 1.0))
            .sum()
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
}
