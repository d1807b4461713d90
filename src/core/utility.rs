//! Utility functions, reservation values and discounting.
//!
//! Every utility function maps an outcome into [0, 1]; scenario loading
//! rejects weights and value tables that would leave that range, so the
//! analysis and the strategies can rely on it.

use serde::{Deserialize, Serialize};

use super::domain::{Cardinality, Domain, Issue, Outcome, Value};

/// How one issue's value is turned into a utility in [0, 1].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum ValueFunction {
    /// Discrete issues by value index; integer issues by `x - min`.
    Table {
        utilities: Vec<f64>,
    },
    /// `offset + slope·(x − origin)`, clamped to [0, 1] (GENIUS' linear evaluator).
    Linear {
        slope: f64,
        offset: f64,
        origin: f64,
    },
    /// 0 at `low` and `high`, 1 at `peak`, linear between, 0 outside.
    Triangular {
        low: f64,
        peak: f64,
        high: f64,
    },
    Constant {
        utility: f64,
    },
}

impl ValueFunction {
    /// A linear function through (min, at_min) and (max, at_max).
    pub fn linear_between(min: f64, max: f64, at_min: f64, at_max: f64) -> Self {
        let slope = if max > min { (at_max - at_min) / (max - min) } else { 0.0 };
        ValueFunction::Linear { slope, offset: at_min, origin: min }
    }

    #[inline]
    pub fn eval(&self, issue: &Issue, v: &Value) -> f64 {
        match self {
            ValueFunction::Table { utilities } => {
                let k = match (issue, v) {
                    (Issue::Integer { min, .. }, Value::Integer(x)) => (x - min) as usize,
                    (_, Value::Discrete(i)) => *i as usize,
                    _ => return 0.0,
                };
                utilities.get(k).copied().unwrap_or(0.0)
            }
            ValueFunction::Linear { slope, offset, origin } => (offset + slope * (v.as_f64() - origin)).clamp(0.0, 1.0),
            ValueFunction::Triangular { low, peak, high } => {
                let x = v.as_f64();
                if x <= *low || x >= *high {
                    if x == *peak { 1.0 } else { 0.0 }
                } else if x <= *peak {
                    (x - low) / (peak - low)
                } else {
                    (high - x) / (high - peak)
                }
            }
            ValueFunction::Constant { utility } => *utility,
        }
    }

    /// The value of the issue this function likes best (used to seed samples
    /// of spaces too large to enumerate).
    pub fn best_value(&self, issue: &Issue) -> Value {
        let candidates: Vec<Value> = match issue {
            Issue::Discrete { values, .. } => (0..values.len() as u32).map(Value::Discrete).collect(),
            Issue::Integer { min, max, .. } if max.abs_diff(*min) <= 100_000 => {
                (*min..=*max).map(Value::Integer).collect()
            }
            Issue::Integer { min, max, .. } => {
                let mut v = vec![Value::Integer(*min), Value::Integer(*max)];
                if let ValueFunction::Triangular { peak, .. } = self {
                    v.push(Value::Integer((peak.round() as i64).clamp(*min, *max)));
                }
                v
            }
            Issue::Real { min, max, .. } => {
                let mut v = vec![Value::Real(*min), Value::Real(*max)];
                if let ValueFunction::Triangular { peak, .. } = self {
                    v.push(Value::Real(peak.clamp(*min, *max)));
                }
                v
            }
        };
        candidates
            .into_iter()
            .max_by(|a, b| self.eval(issue, a).total_cmp(&self.eval(issue, b)))
            .unwrap_or(Value::Discrete(0))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Aggregation {
    Sum,
    Min,
    Max,
}

/// A box in outcome space that pays `utility` when an outcome falls inside.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HyperRectangle {
    pub utility: f64,
    /// (issue index, min, max): the outcome's value must lie in [min, max].
    pub includes: Vec<(usize, f64, f64)>,
    /// (issue index, min, max): the outcome's value must lie outside [min, max].
    #[serde(default)]
    pub excludes: Vec<(usize, f64, f64)>,
}

impl HyperRectangle {
    /// An issue index beyond the outcome is a range the outcome misses
    /// ([`crate::core::scenario::Scenario::check`] refuses such rectangles;
    /// this keeps a stray one from panicking a thread).
    #[inline]
    fn contains(&self, o: &Outcome) -> bool {
        let inside = |i: usize, lo: f64, hi: f64| o.0.get(i).is_some_and(|v| (lo..=hi).contains(&v.as_f64()));
        self.includes.iter().all(|&(i, lo, hi)| inside(i, lo, hi))
            && self.excludes.iter().all(|&(i, lo, hi)| !inside(i, lo, hi))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum UtilityFunction {
    /// u(o) = Σ_i w_i · f_i(o_i); weights sum to 1.
    LinearAdditive { weights: Vec<f64>, values: Vec<ValueFunction> },
    /// ANAC 2014 style: aggregate of the rectangles an outcome falls into,
    /// divided by `max_utility` and clamped to [0, 1].
    HyperRectangles { rectangles: Vec<HyperRectangle>, aggregation: Aggregation, max_utility: f64 },
}

impl UtilityFunction {
    #[inline]
    pub fn eval(&self, domain: &Domain, o: &Outcome) -> f64 {
        match self {
            UtilityFunction::LinearAdditive { weights, values } => weights
                .iter()
                .zip(values)
                .zip(domain.issues.iter().zip(o.0.iter()))
                .map(|((w, f), (issue, v))| w * f.eval(issue, v))
                .sum(),
            UtilityFunction::HyperRectangles { rectangles, aggregation, max_utility } => {
                let hit = rectangles.iter().filter(|r| r.contains(o)).map(|r| r.utility);
                let total = match aggregation {
                    Aggregation::Sum => hit.sum::<f64>(),
                    Aggregation::Min => hit.reduce(f64::min).unwrap_or(0.0),
                    Aggregation::Max => hit.reduce(f64::max).unwrap_or(0.0),
                };
                if *max_utility > 0.0 { (total / max_utility).clamp(0.0, 1.0) } else { 0.0 }
            }
        }
    }

    /// Utilities of every outcome in enumeration order ([`Domain::outcome_at`]).
    /// Linear-additive functions expand issue by issue, one addition per outcome.
    pub fn utilities_of_all(&self, domain: &Domain) -> Option<Vec<f64>> {
        let Cardinality::Finite(n) = domain.cardinality() else { return None };
        let n = usize::try_from(n).ok()?;
        match self {
            UtilityFunction::LinearAdditive { weights, values } => {
                let mut utils = Vec::with_capacity(n);
                utils.push(0.0);
                let mut next = Vec::with_capacity(n);
                for ((issue, w), f) in domain.issues.iter().zip(weights).zip(values) {
                    let c = issue.cardinality()? as u64;
                    let table: Vec<f64> = (0..c).map(|k| w * f.eval(issue, &issue.value_at(k))).collect();
                    next.clear();
                    for &u in &utils {
                        next.extend(table.iter().map(|t| u + t));
                    }
                    std::mem::swap(&mut utils, &mut next);
                }
                Some(utils)
            }
            _ => Some((0..n as u128).map(|k| self.eval(domain, &domain.outcome_at(k))).collect()),
        }
    }

    /// An outcome with the highest utility this function's structure reveals
    /// (exact for linear-additive; the centre of the best rectangle otherwise).
    pub fn best_outcome_hint(&self, domain: &Domain) -> Option<Outcome> {
        match self {
            UtilityFunction::LinearAdditive { values, .. } => {
                Some(Outcome(domain.issues.iter().zip(values).map(|(i, f)| f.best_value(i)).collect()))
            }
            UtilityFunction::HyperRectangles { rectangles, .. } => {
                let best = rectangles.iter().max_by(|a, b| a.utility.total_cmp(&b.utility))?;
                let mut values: Vec<Value> = domain.issues.iter().map(|i| i.value_at(0)).collect();
                for &(k, lo, hi) in &best.includes {
                    let mid = (lo + hi) / 2.0;
                    values[k] = match &domain.issues[k] {
                        Issue::Integer { .. } => Value::Integer(mid.round() as i64),
                        Issue::Real { .. } => Value::Real(mid),
                        Issue::Discrete { .. } => Value::Discrete(mid.round().max(0.0) as u32),
                    };
                }
                let o = Outcome::from(values);
                domain.validate(&o).ok().map(|_| o)
            }
        }
    }
}

/// What one party wants: its utility function, its BATNA and its impatience.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Preferences {
    pub utility: UtilityFunction,
    /// Utility of no agreement (the party's BATNA), in [0, 1].
    pub reservation_value: f64,
    /// Per unit of relative time: u·d^t. 1 means no discounting.
    pub discount: f64,
}

impl Preferences {
    pub fn new(utility: UtilityFunction, reservation_value: f64) -> Self {
        Self { utility, reservation_value, discount: 1.0 }
    }

    #[inline]
    pub fn utility(&self, domain: &Domain, o: &Outcome) -> f64 {
        self.utility.eval(domain, o)
    }

    /// Discounted utility of an agreement reached at relative time `t`.
    pub fn discounted(&self, u: f64, t: f64) -> f64 {
        if self.discount >= 1.0 { u } else { u * self.discount.powf(t) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn domain() -> Domain {
        Domain::new(
            "d",
            vec![
                Issue::Discrete { name: "a".into(), values: vec!["x".into(), "y".into(), "z".into()] },
                Issue::Integer { name: "b".into(), min: 0, max: 4 },
                Issue::Real { name: "c".into(), min: 0.0, max: 10.0 },
            ],
        )
    }

    #[test]
    fn linear_additive_weights_value_functions() {
        let d = domain();
        let u = UtilityFunction::LinearAdditive {
            weights: vec![0.5, 0.3, 0.2],
            values: vec![
                ValueFunction::Table { utilities: vec![0.0, 0.5, 1.0] },
                ValueFunction::linear_between(0.0, 4.0, 1.0, 0.0),
                ValueFunction::Triangular { low: 0.0, peak: 5.0, high: 10.0 },
            ],
        };
        let o = Outcome::from(vec![Value::Discrete(1), Value::Integer(1), Value::Real(2.5)]);
        let expect = 0.5 * 0.5 + 0.3 * 0.75 + 0.2 * 0.5;
        assert!((u.eval(&d, &o) - expect).abs() < 1e-12);
        assert_eq!(
            u.best_outcome_hint(&d).unwrap(),
            Outcome::from(vec![Value::Discrete(2), Value::Integer(0), Value::Real(5.0)])
        );
    }

    #[test]
    fn utilities_of_all_match_eval_in_enumeration_order() {
        let d = Domain::new(
            "e",
            vec![
                Issue::Integer { name: "p".into(), min: 2, max: 6 },
                Issue::Discrete { name: "q".into(), values: vec!["a".into(), "b".into()] },
            ],
        );
        let u = UtilityFunction::LinearAdditive {
            weights: vec![0.7, 0.3],
            values: vec![
                ValueFunction::linear_between(2.0, 6.0, 0.0, 1.0),
                ValueFunction::Table { utilities: vec![1.0, 0.2] },
            ],
        };
        let all = u.utilities_of_all(&d).unwrap();
        assert_eq!(all.len(), 10);
        for (k, got) in all.iter().enumerate() {
            assert!((got - u.eval(&d, &d.outcome_at(k as u128))).abs() < 1e-12);
        }
    }

    #[test]
    fn hyper_rectangles_aggregate_and_normalise() {
        let d = Domain::new(
            "h",
            vec![
                Issue::Integer { name: "x".into(), min: 0, max: 9 },
                Issue::Integer { name: "y".into(), min: 0, max: 9 },
            ],
        );
        let rects = vec![
            HyperRectangle { utility: 30.0, includes: vec![(0, 0.0, 4.0)], excludes: vec![] },
            HyperRectangle { utility: 50.0, includes: vec![(0, 3.0, 9.0), (1, 5.0, 9.0)], excludes: vec![] },
        ];
        let o = Outcome::from(vec![Value::Integer(3), Value::Integer(6)]);
        let sum = UtilityFunction::HyperRectangles {
            rectangles: rects.clone(),
            aggregation: Aggregation::Sum,
            max_utility: 100.0,
        };
        let min = UtilityFunction::HyperRectangles {
            rectangles: rects.clone(),
            aggregation: Aggregation::Min,
            max_utility: 100.0,
        };
        let max =
            UtilityFunction::HyperRectangles { rectangles: rects, aggregation: Aggregation::Max, max_utility: 40.0 };
        assert!((sum.eval(&d, &o) - 0.8).abs() < 1e-12);
        assert!((min.eval(&d, &o) - 0.3).abs() < 1e-12);
        assert_eq!(max.eval(&d, &o), 1.0, "capped at 1");
        assert_eq!(sum.eval(&d, &Outcome::from(vec![Value::Integer(9), Value::Integer(0)])), 0.0);
    }

    #[test]
    fn discount_applies_per_unit_of_relative_time() {
        let mut p = Preferences::new(UtilityFunction::LinearAdditive { weights: vec![], values: vec![] }, 0.2);
        assert_eq!(p.discounted(0.8, 0.5), 0.8);
        p.discount = 0.25;
        assert!((p.discounted(0.8, 0.5) - 0.4).abs() < 1e-12);
    }
}
