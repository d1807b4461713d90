//! Core types to and from their wire form. Everything that arrives from the
//! network is validated here (values inside the domain, numbers finite), so
//! that a hostile agent cannot put a malformed outcome into a session.

use std::sync::Arc;

use super::pb;
use super::untrusted::shown;
use crate::core::domain::{Domain, Issue, Outcome, Value};
use crate::core::protocol::{Action, Ending};
use crate::core::session::{SessionResult, TraceEntry};
use crate::core::terms::Presentation;
use crate::core::utility::{Aggregation, HyperRectangle, Preferences, UtilityFunction, ValueFunction};

/// The domain as agents get it, with how the scenario shows each issue.
pub fn domain_to_pb(d: &Domain, shown: &Presentation) -> pb::Domain {
    pb::Domain {
        name: d.name.clone(),
        issues: d
            .issues
            .iter()
            .enumerate()
            .map(|(k, i)| pb::Issue {
                name: i.name().to_string(),
                display: shown.issues.get(k).filter(|s| !s.is_plain()).map(|s| pb::IssueDisplay {
                    unit: s.unit.clone().unwrap_or_default(),
                    display: s.display.clone().unwrap_or_default(),
                    labels: s.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                }),
                kind: Some(match i {
                    Issue::Discrete { values, .. } => {
                        pb::issue::Kind::Discrete(pb::DiscreteIssue { values: values.clone() })
                    }
                    Issue::Integer { min, max, .. } => {
                        pb::issue::Kind::Integer(pb::IntegerIssue { min: *min, max: *max })
                    }
                    Issue::Real { min, max, .. } => pb::issue::Kind::Real(pb::RealIssue { min: *min, max: *max }),
                }),
            })
            .collect(),
    }
}

pub fn domain_from_pb(d: &pb::Domain) -> Result<Domain, String> {
    let mut issues = Vec::with_capacity(d.issues.len());
    for i in &d.issues {
        let name = i.name.clone();
        issues.push(match &i.kind {
            Some(pb::issue::Kind::Discrete(v)) => Issue::Discrete { name, values: v.values.clone() },
            Some(pb::issue::Kind::Integer(r)) => Issue::Integer { name, min: r.min, max: r.max },
            Some(pb::issue::Kind::Real(r)) => Issue::Real { name, min: r.min, max: r.max },
            None => return Err(format!("issue `{}` has no kind", i.name)),
        });
    }
    Ok(Domain::new(d.name.clone(), issues))
}

pub fn outcome_to_pb(d: &Domain, o: &Outcome) -> pb::Outcome {
    let values = d
        .issues
        .iter()
        .zip(o.0.iter())
        .map(|(issue, v)| {
            let kind = match (issue, v) {
                (Issue::Discrete { values, .. }, Value::Discrete(k)) => {
                    pb::value::Kind::Discrete(values.get(*k as usize).cloned().unwrap_or_default())
                }
                (_, Value::Integer(x)) => pb::value::Kind::Integer(*x),
                (_, Value::Real(x)) => pb::value::Kind::Real(*x),
                (_, Value::Discrete(k)) => pb::value::Kind::Integer(*k as i64),
            };
            (issue.name().to_string(), pb::Value { kind: Some(kind) })
        })
        .collect();
    pb::Outcome { values }
}

/// An outcome sent by an agent: every issue exactly once, every value inside
/// its issue. Discrete values are found by a scan; [`Decoder`] finds them in
/// O(log n) where a domain's offers are read many times.
pub fn outcome_from_pb(d: &Domain, o: &pb::Outcome) -> Result<Outcome, String> {
    outcome_with(d, o, |_, issue, s| match issue {
        Issue::Discrete { values, .. } => values.iter().position(|x| x == s).map(|k| k as u32),
        _ => None,
    })
}

fn outcome_with(
    d: &Domain,
    o: &pb::Outcome,
    position: impl Fn(usize, &Issue, &str) -> Option<u32>,
) -> Result<Outcome, String> {
    if o.values.len() != d.issues.len() {
        return Err(format!("the outcome names {} issues, the domain has {}", o.values.len(), d.issues.len()));
    }
    let mut values = Vec::with_capacity(d.issues.len());
    for (k, issue) in d.issues.iter().enumerate() {
        let v = o.values.get(issue.name()).ok_or_else(|| format!("the outcome lacks issue `{}`", issue.name()))?;
        let value = match (issue, &v.kind) {
            (Issue::Discrete { .. }, Some(pb::value::Kind::Discrete(s))) => Value::Discrete(
                position(k, issue, s).ok_or_else(|| format!("`{}` is not a value of `{}`", shown(s), issue.name()))?,
            ),
            (Issue::Integer { .. }, Some(pb::value::Kind::Integer(x))) => Value::Integer(*x),
            (Issue::Real { .. }, Some(pb::value::Kind::Real(x))) => Value::Real(*x),
            (Issue::Real { .. }, Some(pb::value::Kind::Integer(x))) => Value::Real(*x as f64),
            (_, other) => return Err(format!("issue `{}` cannot take {}", issue.name(), kind_name(other))),
        };
        if !issue.contains(&value) {
            return Err(format!("value {} is outside issue `{}`", kind_name(&v.kind), issue.name()));
        }
        values.push(value);
    }
    Ok(Outcome::from(values))
}

/// A wire value as an error message shows it (a caller's string, cut).
fn kind_name(k: &Option<pb::value::Kind>) -> String {
    match k {
        None => "no value".into(),
        Some(pb::value::Kind::Discrete(s)) => format!("the string `{}`", shown(s)),
        Some(pb::value::Kind::Integer(x)) => format!("the integer {x}"),
        Some(pb::value::Kind::Real(x)) => format!("the real {x}"),
    }
}

/// Reads an agent's actions against one domain. Built once per session:
/// each discrete issue's values sorted, so that a value is found by binary
/// search instead of a scan of (possibly) thousands of names per offer.
#[derive(Debug)]
pub struct Decoder {
    pub domain: Arc<Domain>,
    /// Per issue, value positions in the order of their names.
    sorted: Vec<Vec<u32>>,
}

impl Decoder {
    pub fn new(domain: Arc<Domain>) -> Self {
        let sorted = domain
            .issues
            .iter()
            .map(|i| match i {
                Issue::Discrete { values, .. } => {
                    let mut order: Vec<u32> = (0..values.len() as u32).collect();
                    order.sort_unstable_by(|&a, &b| values[a as usize].cmp(&values[b as usize]));
                    order
                }
                _ => Vec::new(),
            })
            .collect();
        Self { domain, sorted }
    }

    pub fn outcome(&self, o: &pb::Outcome) -> Result<Outcome, String> {
        outcome_with(&self.domain, o, |k, issue, s| {
            let Issue::Discrete { values, .. } = issue else { return None };
            let order = &self.sorted[k];
            order.binary_search_by(|&p| values[p as usize].as_str().cmp(s)).ok().map(|j| order[j])
        })
    }

    pub fn action(&self, a: Option<&pb::Action>) -> Result<Action, String> {
        action_with(a, |o| self.outcome(o))
    }
}

pub fn action_to_pb(d: &Domain, a: &Action) -> pb::Action {
    pb::Action {
        kind: Some(match a {
            Action::Offer(o) => pb::action::Kind::Offer(outcome_to_pb(d, o)),
            Action::Accept => pb::action::Kind::Accept(pb::Accept {}),
            Action::EndNegotiation => pb::action::Kind::EndNegotiation(pb::EndNegotiation {}),
        }),
    }
}

pub fn action_from_pb(d: &Domain, a: Option<&pb::Action>) -> Result<Action, String> {
    action_with(a, |o| outcome_from_pb(d, o))
}

fn action_with(
    a: Option<&pb::Action>,
    outcome: impl Fn(&pb::Outcome) -> Result<Outcome, String>,
) -> Result<Action, String> {
    match a.and_then(|a| a.kind.as_ref()) {
        Some(pb::action::Kind::Offer(o)) => {
            Ok(Action::Offer(outcome(o).map_err(|e| format!("offer outside the domain: {e}"))?))
        }
        Some(pb::action::Kind::Accept(_)) => Ok(Action::Accept),
        Some(pb::action::Kind::EndNegotiation(_)) => Ok(Action::EndNegotiation),
        None => Err("malformed message: an Act without an action".into()),
    }
}

fn value_function_to_pb(f: &ValueFunction) -> pb::ValueFunction {
    use pb::value_function::Kind;
    pb::ValueFunction {
        kind: Some(match f {
            ValueFunction::Table { utilities } => Kind::Table(pb::Table { utilities: utilities.clone() }),
            ValueFunction::Linear { slope, offset, origin } => {
                Kind::Linear(pb::Linear { slope: *slope, offset: *offset, origin: *origin })
            }
            ValueFunction::Triangular { low, peak, high } => {
                Kind::Triangular(pb::Triangular { low: *low, peak: *peak, high: *high })
            }
            ValueFunction::Constant { utility } => Kind::Constant(*utility),
        }),
    }
}

fn value_function_from_pb(f: &pb::ValueFunction) -> Result<ValueFunction, String> {
    use pb::value_function::Kind;
    Ok(match &f.kind {
        Some(Kind::Table(t)) => ValueFunction::Table { utilities: t.utilities.clone() },
        Some(Kind::Linear(l)) => ValueFunction::Linear { slope: l.slope, offset: l.offset, origin: l.origin },
        Some(Kind::Triangular(t)) => ValueFunction::Triangular { low: t.low, peak: t.peak, high: t.high },
        Some(Kind::Constant(c)) => ValueFunction::Constant { utility: *c },
        None => return Err("a value function has no kind".into()),
    })
}

pub fn profile_to_pb(p: &Preferences) -> pb::Profile {
    let utility = match &p.utility {
        UtilityFunction::LinearAdditive { weights, values } => {
            pb::profile::Utility::LinearAdditive(pb::LinearAdditive {
                weights: weights.clone(),
                values: values.iter().map(value_function_to_pb).collect(),
            })
        }
        UtilityFunction::HyperRectangles { rectangles, aggregation, max_utility } => {
            let ranges = |v: &[(usize, f64, f64)]| {
                v.iter().map(|&(issue, min, max)| pb::Range { issue: issue as u32, min, max }).collect()
            };
            pb::profile::Utility::HyperRectangles(pb::HyperRectangles {
                rectangles: rectangles
                    .iter()
                    .map(|r| pb::HyperRectangle {
                        utility: r.utility,
                        includes: ranges(&r.includes),
                        excludes: ranges(&r.excludes),
                    })
                    .collect(),
                aggregation: match aggregation {
                    Aggregation::Sum => "sum",
                    Aggregation::Min => "min",
                    Aggregation::Max => "max",
                }
                .into(),
                max_utility: *max_utility,
            })
        }
    };
    pb::Profile { utility: Some(utility), reservation_value: p.reservation_value, discount: p.discount }
}

pub fn profile_from_pb(p: &pb::Profile) -> Result<Preferences, String> {
    let utility = match &p.utility {
        Some(pb::profile::Utility::LinearAdditive(la)) => UtilityFunction::LinearAdditive {
            weights: la.weights.clone(),
            values: la.values.iter().map(value_function_from_pb).collect::<Result<_, _>>()?,
        },
        Some(pb::profile::Utility::HyperRectangles(h)) => {
            let ranges = |v: &[pb::Range]| v.iter().map(|r| (r.issue as usize, r.min, r.max)).collect();
            UtilityFunction::HyperRectangles {
                rectangles: h
                    .rectangles
                    .iter()
                    .map(|r| HyperRectangle {
                        utility: r.utility,
                        includes: ranges(&r.includes),
                        excludes: ranges(&r.excludes),
                    })
                    .collect(),
                aggregation: match h.aggregation.as_str() {
                    "sum" => Aggregation::Sum,
                    "min" => Aggregation::Min,
                    "max" => Aggregation::Max,
                    other => return Err(format!("unknown aggregation `{other}`")),
                },
                max_utility: h.max_utility,
            }
        }
        None => return Err("a profile has no utility function".into()),
    };
    Ok(Preferences { utility, reservation_value: p.reservation_value, discount: p.discount })
}

pub fn action_done(session_id: &str, d: &Domain, e: &TraceEntry) -> pb::ActionDone {
    pb::ActionDone {
        session_id: session_id.to_string(),
        party: e.party as u32,
        action: Some(action_to_pb(d, &e.action)),
        round: e.round,
        time: e.time,
        to_party: String::new(),
    }
}

/// The wire form of a result; `record_json` is the same record `run --out` writes.
pub fn result_to_pb(
    session_id: &str,
    scenario: &str,
    seed: u64,
    d: &Arc<Domain>,
    r: &SessionResult,
    record_json: String,
) -> pb::SessionResult {
    pb::SessionResult {
        session_id: session_id.to_string(),
        scenario: scenario.to_string(),
        seed,
        agreement: r.agreement.as_ref().map(|o| outcome_to_pb(d, o)),
        utilities: r.utilities.clone(),
        rounds: r.rounds,
        offers: r.offers,
        ended_by: r.ending.label().to_string(),
        violation: match &r.ending {
            Ending::Violation { party, reason } => Some(pb::Violation { party: *party as u32, reason: reason.clone() }),
            _ => None,
        },
        record_json,
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
                Issue::Integer { name: "n".into(), min: 0, max: 5 },
                Issue::Real { name: "x".into(), min: 0.0, max: 1.0 },
            ],
        )
    }

    #[test]
    fn outcomes_round_trip_and_bad_ones_are_refused() {
        let d = domain();
        let o = Outcome::from(vec![Value::Discrete(1), Value::Integer(3), Value::Real(0.25)]);
        assert_eq!(outcome_from_pb(&d, &outcome_to_pb(&d, &o)).unwrap(), o);
        let mut bad = outcome_to_pb(&d, &o);
        bad.values.insert("n".into(), pb::Value { kind: Some(pb::value::Kind::Integer(9)) });
        assert!(outcome_from_pb(&d, &bad).unwrap_err().contains("outside"));
        bad.values.insert("n".into(), pb::Value { kind: Some(pb::value::Kind::Discrete("3".into())) });
        assert!(outcome_from_pb(&d, &bad).is_err());
        bad.values.remove("n");
        assert!(outcome_from_pb(&d, &bad).is_err());
        let mut nan = outcome_to_pb(&d, &o);
        nan.values.insert("x".into(), pb::Value { kind: Some(pb::value::Kind::Real(f64::NAN)) });
        assert!(outcome_from_pb(&d, &nan).is_err());
        assert!(action_from_pb(&d, None).unwrap_err().contains("malformed"));
        let dec = Decoder::new(Arc::new(d.clone()));
        assert_eq!(dec.outcome(&outcome_to_pb(&d, &o)).unwrap(), o);
        let mut unknown = outcome_to_pb(&d, &o);
        unknown.values.insert("color".into(), pb::Value { kind: Some(pb::value::Kind::Discrete("x".repeat(1 << 20))) });
        let e = dec.outcome(&unknown).unwrap_err();
        assert!(e.len() < 200 && e.contains("is not a value of `color`"), "{}", e.len());
    }

    #[test]
    fn the_decoder_finds_every_value_of_a_wide_issue() {
        let values: Vec<String> = (0..5000).map(|k| format!("v{}", (k * 7919) % 5000)).collect();
        let d = Arc::new(Domain::new("w", vec![Issue::Discrete { name: "x".into(), values: values.clone() }]));
        let dec = Decoder::new(d.clone());
        for k in (0..5000).step_by(37) {
            let o = Outcome::from(vec![Value::Discrete(k)]);
            assert_eq!(dec.outcome(&outcome_to_pb(&d, &o)).unwrap(), o);
        }
    }

    #[test]
    fn agents_get_how_the_scenario_shows_each_issue() {
        use crate::core::terms::IssueDisplay;
        let d = domain();
        let mut shown = Presentation { issues: vec![IssueDisplay::default(); d.issues.len()] };
        shown.issues[0].unit = Some("k€".into());
        let pb = domain_to_pb(&d, &shown);
        assert_eq!(pb.issues[0].display.as_ref().map(|s| s.unit.as_str()), Some("k€"));
        assert!(pb.issues[1..].iter().all(|i| i.display.is_none()), "plain issues say nothing");
        assert_eq!(domain_from_pb(&pb).unwrap(), d, "the values stay raw");
    }

    #[test]
    fn domains_and_profiles_round_trip() {
        let d = domain();
        assert_eq!(domain_from_pb(&domain_to_pb(&d, &Presentation::default())).unwrap(), d);
        let p = Preferences {
            utility: UtilityFunction::LinearAdditive {
                weights: vec![0.2, 0.3, 0.5],
                values: vec![
                    ValueFunction::Table { utilities: vec![1.0, 0.0] },
                    ValueFunction::linear_between(0.0, 5.0, 0.0, 1.0),
                    ValueFunction::Triangular { low: 0.0, peak: 0.5, high: 1.0 },
                ],
            },
            reservation_value: 0.3,
            discount: 0.9,
        };
        assert_eq!(profile_from_pb(&profile_to_pb(&p)).unwrap(), p);
    }
}
