//! Issues, values, outcomes and the outcome space.
//!
//! An outcome is one value per issue, in the domain's issue order. Discrete
//! values are stored as the index of the value name so that utilities are table
//! look-ups; names come back only when an outcome is shown to a person or
//! written to a file.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

use super::rng::SplitMix64;

/// Largest outcome space that is ever enumerated (by strategies and by the
/// analysis); larger ones are sampled, and say so.
pub const ENUMERATION_LIMIT: u128 = 1 << 22;

/// Integer bounds are kept within ±2^53 so that every width and value is
/// exact in both i64 and f64.
pub const INTEGER_BOUND: i64 = 1 << 53;

/// One negotiated issue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Issue {
    /// Named values (e.g. `exclusivity = ["none", "regional", "global"]`).
    Discrete { name: String, values: Vec<String> },
    /// Every integer in `min..=max`.
    Integer { name: String, min: i64, max: i64 },
    /// Any real number in `[min, max]`; never enumerable.
    Real { name: String, min: f64, max: f64 },
}

impl Issue {
    pub fn name(&self) -> &str {
        match self {
            Issue::Discrete { name, .. } | Issue::Integer { name, .. } | Issue::Real { name, .. } => name,
        }
    }

    /// Number of values; `None` for a real issue.
    pub fn cardinality(&self) -> Option<u128> {
        match self {
            Issue::Discrete { values, .. } => Some(values.len() as u128),
            Issue::Integer { min, max, .. } => Some((*max as i128 - *min as i128 + 1).max(0) as u128),
            Issue::Real { .. } => None,
        }
    }

    /// The `k`-th value of an enumerable issue.
    pub fn value_at(&self, k: u64) -> Value {
        match self {
            Issue::Discrete { .. } => Value::Discrete(k as u32),
            Issue::Integer { min, .. } => Value::Integer(min + k as i64),
            Issue::Real { min, .. } => Value::Real(*min),
        }
    }

    pub fn contains(&self, v: &Value) -> bool {
        match (self, v) {
            (Issue::Discrete { values, .. }, Value::Discrete(i)) => (*i as usize) < values.len(),
            (Issue::Integer { min, max, .. }, Value::Integer(x)) => min <= x && x <= max,
            (Issue::Real { min, max, .. }, Value::Real(x)) => x.is_finite() && *min <= *x && *x <= *max,
            _ => false,
        }
    }

    fn sample(&self, rng: &mut SplitMix64) -> Value {
        match self {
            Issue::Real { min, max, .. } => Value::Real(min + (max - min) * rng.next_f64()),
            _ => self.value_at(rng.below_u128(self.cardinality().unwrap_or(1).max(1)) as u64),
        }
    }

    /// Parses a value written by a person or an external agent.
    pub fn parse_value(&self, v: &serde_json::Value) -> Result<Value, String> {
        let bad = || format!("value {v} is not in issue `{}`", self.name());
        let value = match self {
            Issue::Discrete { values, .. } => {
                let s = match v {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                Value::Discrete(values.iter().position(|x| *x == s).ok_or_else(bad)? as u32)
            }
            Issue::Integer { .. } => Value::Integer(v.as_i64().ok_or_else(bad)?),
            Issue::Real { .. } => Value::Real(v.as_f64().ok_or_else(bad)?),
        };
        if self.contains(&value) { Ok(value) } else { Err(bad()) }
    }

    pub fn value_json(&self, v: &Value) -> serde_json::Value {
        match (self, v) {
            (Issue::Discrete { values, .. }, Value::Discrete(i)) => {
                serde_json::Value::String(values.get(*i as usize).cloned().unwrap_or_default())
            }
            (_, Value::Integer(x)) => serde_json::Value::from(*x),
            (_, Value::Real(x)) => serde_json::Value::from(*x),
            (_, Value::Discrete(i)) => serde_json::Value::from(*i),
        }
    }
}

/// The value an outcome gives one issue.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Value {
    Discrete(u32),
    Integer(i64),
    Real(f64),
}

impl Value {
    /// Numeric reading for value functions of integer and real issues.
    pub fn as_f64(&self) -> f64 {
        match self {
            Value::Discrete(i) => *i as f64,
            Value::Integer(x) => *x as f64,
            Value::Real(x) => *x,
        }
    }
}

/// One value per issue, in the domain's issue order. Shared, not copied: an
/// offer goes into the standing offer, every other party's observations and
/// the trace, and each of those is a reference count, not an allocation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome(pub Arc<[Value]>);

impl From<Vec<Value>> for Outcome {
    fn from(values: Vec<Value>) -> Self {
        Outcome(values.into())
    }
}

/// Size of an outcome space: exact while it fits in u128, saturated beyond.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cardinality {
    Finite(u128),
    /// At least one real issue.
    Infinite,
}

impl Cardinality {
    pub fn at_most(&self, limit: u128) -> bool {
        matches!(self, Cardinality::Finite(n) if *n <= limit)
    }
}

impl fmt::Display for Cardinality {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cardinality::Finite(u128::MAX) => write!(f, "more than 3.4e38"),
            Cardinality::Finite(n) if *n >= 10u128.pow(12) => write!(f, "{:.3e}", *n as f64),
            Cardinality::Finite(n) => write!(f, "{n}"),
            Cardinality::Infinite => write!(f, "infinite (real issues)"),
        }
    }
}

/// The issues of a negotiation: the outcome space.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Domain {
    pub name: String,
    pub issues: Vec<Issue>,
}

impl Domain {
    pub fn new(name: impl Into<String>, issues: Vec<Issue>) -> Self {
        Self { name: name.into(), issues }
    }

    pub fn issue_index(&self, name: &str) -> Option<usize> {
        self.issues.iter().position(|i| i.name() == name)
    }

    pub fn cardinality(&self) -> Cardinality {
        let mut n: u128 = 1;
        for issue in &self.issues {
            match issue.cardinality() {
                Some(c) => n = n.saturating_mul(c),
                None => return Cardinality::Infinite,
            }
        }
        Cardinality::Finite(n)
    }

    /// The outcome with mixed-radix index `k` (last issue varies fastest).
    pub fn outcome_at(&self, k: u128) -> Outcome {
        if let Ok(k) = u64::try_from(k) {
            return self.outcome_at_u64(k);
        }
        let mut k = k;
        let mut values = vec![Value::Discrete(0); self.issues.len()];
        for (slot, issue) in values.iter_mut().zip(&self.issues).rev() {
            let c = issue.cardinality().unwrap_or(1).max(1);
            *slot = issue.value_at((k % c) as u64);
            k /= c;
        }
        Outcome::from(values)
    }

    /// [`Domain::outcome_at`] in 64-bit arithmetic (every space a strategy
    /// enumerates fits; 128-bit division is a library call).
    fn outcome_at_u64(&self, mut k: u64) -> Outcome {
        let mut values = vec![Value::Discrete(0); self.issues.len()];
        for (slot, issue) in values.iter_mut().zip(&self.issues).rev() {
            let c = issue.cardinality().unwrap_or(1).clamp(1, u64::MAX as u128) as u64;
            *slot = issue.value_at(k % c);
            k /= c;
        }
        Outcome::from(values)
    }

    /// Lazy enumeration of every outcome; `None` for spaces with real issues.
    pub fn outcomes(&self) -> Option<impl Iterator<Item = Outcome> + '_> {
        match self.cardinality() {
            Cardinality::Finite(n) => Some((0..n).map(|k| self.outcome_at(k))),
            Cardinality::Infinite => None,
        }
    }

    pub fn random_outcome(&self, rng: &mut SplitMix64) -> Outcome {
        Outcome(self.issues.iter().map(|i| i.sample(rng)).collect())
    }

    /// Checks an outcome received from a party (possibly remote and hostile).
    pub fn validate(&self, outcome: &Outcome) -> Result<(), String> {
        if outcome.0.len() != self.issues.len() {
            return Err(format!(
                "outcome has {} values but the domain has {} issues",
                outcome.0.len(),
                self.issues.len()
            ));
        }
        for (issue, v) in self.issues.iter().zip(outcome.0.iter()) {
            if !issue.contains(v) {
                return Err(format!("value {v:?} is outside issue `{}`", issue.name()));
            }
        }
        Ok(())
    }

    /// `{issue: value}` with discrete values by name, for results and people.
    pub fn outcome_json(&self, outcome: &Outcome) -> serde_json::Value {
        let map = self
            .issues
            .iter()
            .zip(outcome.0.iter())
            .map(|(i, v)| (i.name().to_string(), i.value_json(v)))
            .collect::<serde_json::Map<_, _>>();
        serde_json::Value::Object(map)
    }

    /// Inverse of [`Domain::outcome_json`].
    pub fn parse_outcome(&self, json: &serde_json::Value) -> Result<Outcome, String> {
        let obj = json.as_object().ok_or("an outcome is an object {issue: value}")?;
        let mut values = Vec::with_capacity(self.issues.len());
        for issue in &self.issues {
            let v = obj.get(issue.name()).ok_or_else(|| format!("outcome lacks issue `{}`", issue.name()))?;
            values.push(issue.parse_value(v)?);
        }
        if obj.len() != self.issues.len() {
            return Err("outcome names an issue the domain does not have".into());
        }
        Ok(Outcome::from(values))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn domain() -> Domain {
        Domain::new(
            "d",
            vec![
                Issue::Discrete { name: "color".into(), values: vec!["red".into(), "blue".into()] },
                Issue::Integer { name: "n".into(), min: 3, max: 5 },
            ],
        )
    }

    #[test]
    fn enumerates_every_outcome_once() {
        let d = domain();
        assert_eq!(d.cardinality(), Cardinality::Finite(6));
        let all: Vec<_> = d.outcomes().unwrap().collect();
        assert_eq!(all.len(), 6);
        assert_eq!(all[0], Outcome::from(vec![Value::Discrete(0), Value::Integer(3)]));
        assert_eq!(all[5], Outcome::from(vec![Value::Discrete(1), Value::Integer(5)]));
        for (i, a) in all.iter().enumerate() {
            assert!(all[i + 1..].iter().all(|b| a != b));
        }
    }

    #[test]
    fn huge_spaces_saturate_and_real_ones_are_infinite() {
        let issues = (0..50).map(|i| Issue::Integer { name: format!("i{i}"), min: 0, max: 9 }).collect();
        let d = Domain::new("big", issues);
        assert_eq!(d.cardinality(), Cardinality::Finite(u128::MAX));
        let r = Domain::new("r", vec![Issue::Real { name: "x".into(), min: 0.0, max: 1.0 }]);
        assert_eq!(r.cardinality(), Cardinality::Infinite);
        assert!(r.outcomes().is_none());
    }

    #[test]
    fn json_round_trip_and_validation() {
        let d = domain();
        let o = d.outcome_at(4);
        let j = d.outcome_json(&o);
        assert_eq!(j, serde_json::json!({"color": "blue", "n": 4}));
        assert_eq!(d.parse_outcome(&j).unwrap(), o);
        assert!(d.parse_outcome(&serde_json::json!({"color": "green", "n": 4})).is_err());
        assert!(d.validate(&Outcome::from(vec![Value::Discrete(0), Value::Integer(9)])).is_err());
        assert!(d.validate(&Outcome::from(vec![Value::Discrete(0)])).is_err());
    }
}
