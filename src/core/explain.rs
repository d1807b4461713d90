//! What one negotiation came to, in the terms a person weighs a deal by:
//! the deal term by term, what each party got against its best deal and its
//! walk-away value, what delay cost it, how balanced the deal is, and the
//! joint gain left on the table (deals on the Pareto frontier that leave
//! nobody worse off).
//!
//! Pure: computed from the scenario, its analysis and the result; the
//! records of runs and served sessions carry it (`explanation`), so `run`,
//! `agent` and `session result` tell the same story from the same numbers. Utilities here are before
//! discount, as the analysis takes them, except `PartyFacts::utility`.

use serde::{Deserialize, Serialize};

use super::analysis::{Analysis, Distances};
use super::protocol::Ending;
use super::scenario::Scenario;
use super::session::SessionResult;
use super::terms::Term;

/// Utilities closer than this are equal (the analysis' grid is 1e-9).
const EPS: f64 = 1e-9;
/// Relative gains within this of each other read as balanced.
pub const BALANCED_SPREAD: f64 = 0.10;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Explanation {
    /// The agreement term by term; none without one.
    pub deal: Option<Vec<Term>>,
    pub ending: EndingFacts,
    pub parties: Vec<PartyFacts>,
    /// Only with an agreement.
    pub balance: Option<Balance>,
    pub joint_gain: JointGain,
    /// False where the analysis sampled the outcome space: the frontier,
    /// fair points and joint gain are then among the sampled outcomes.
    pub analysis_exact: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndingFacts {
    /// As records label it: agreement, deadline, end-negotiation, violation, aborted.
    pub kind: String,
    /// Who walked away or broke the rules.
    pub party: Option<String>,
    pub reason: Option<String>,
    /// Rounds played.
    pub round: u32,
    /// The deadline.
    pub deadline_rounds: Option<u32>,
    pub deadline_seconds: Option<f64>,
    /// Share of the deadline used, 0 to 1.
    pub relative_time: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartyFacts {
    pub name: String,
    /// What the party got, after discount (its reservation value where there is no deal).
    pub utility: f64,
    pub undiscounted: f64,
    /// Its walk-away value (BATNA).
    pub reservation: f64,
    /// Its best outcome anywhere in the space.
    pub best: f64,
    /// `undiscounted − reservation`: negative below the walk-away value.
    pub above_reservation: f64,
    /// Share of the way from its disagreement point to its best outcome
    /// (the Kalai–Smorodinsky scale); none where the two coincide.
    pub share_of_gain: Option<f64>,
    /// Per unit of relative time; 1 is none.
    pub discount: f64,
    /// `discount^relative_time`: what delay multiplied its utility by.
    pub discount_factor: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Balance {
    /// The party that got the largest share of its possible gain, when the
    /// shares differ by more than [`BALANCED_SPREAD`].
    pub favours: Option<String>,
    /// Largest minus smallest share of gain.
    pub spread: f64,
    pub distance_to_nash: Option<f64>,
    pub distance_to_kalai_smorodinsky: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JointGain {
    /// Frontier outcomes that give every party at least what it got and
    /// one party more.
    pub improving: usize,
    /// The one with the largest total gain (ties: the most even gains).
    pub best: Option<Improvement>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Improvement {
    pub terms: Vec<Term>,
    /// What turns the agreement into it, one phrase per issue; empty without an agreement.
    pub changes: Vec<String>,
    pub utilities: Vec<f64>,
    /// Per party, over what it got (undiscounted).
    pub gains: Vec<f64>,
}

impl Explanation {
    /// `distances`: the result's, as [`super::record::Assessment`] holds them.
    pub fn of(scenario: &Scenario, analysis: &Analysis, r: &SessionResult, distances: &Distances) -> Self {
        let names: Vec<&str> = scenario.parties.iter().map(|p| p.name.as_str()).collect();
        let name = |k: usize| names.get(k).map(|s| s.to_string());
        let (party, reason) = match &r.ending {
            Ending::EndedBy { party } => (name(*party), None),
            Ending::Violation { party, reason } => (name(*party), Some(reason.clone())),
            Ending::Aborted { reason } => (None, Some(reason.clone())),
            Ending::Agreement { .. } | Ending::Deadline => (None, None),
        };
        let ending = EndingFacts {
            kind: r.ending.label().into(),
            party,
            reason,
            round: r.rounds,
            deadline_rounds: scenario.deadline.rounds,
            deadline_seconds: scenario.deadline.seconds,
            relative_time: r.time,
        };
        let parties: Vec<PartyFacts> = scenario
            .parties
            .iter()
            .enumerate()
            .map(|(k, p)| {
                let pref = &p.preferences;
                let (u, raw) =
                    (r.utilities.get(k).copied().unwrap_or(0.0), r.undiscounted.get(k).copied().unwrap_or(0.0));
                let best = analysis.max_utilities.get(k).copied().unwrap_or(1.0);
                let floor = analysis.disagreement.get(k).copied().unwrap_or(pref.reservation_value);
                PartyFacts {
                    name: p.name.clone(),
                    utility: u,
                    undiscounted: raw,
                    reservation: pref.reservation_value,
                    best,
                    above_reservation: raw - pref.reservation_value,
                    share_of_gain: (best - floor > EPS).then(|| (raw - floor) / (best - floor)),
                    discount: pref.discount,
                    discount_factor: pref.discounted(1.0, r.time),
                }
            })
            .collect();
        let balance = r.agreement.as_ref().map(|_| {
            let shares: Vec<(usize, f64)> =
                parties.iter().enumerate().filter_map(|(k, p)| p.share_of_gain.map(|s| (k, s))).collect();
            let hi = shares.iter().copied().max_by(|a, b| a.1.total_cmp(&b.1));
            let lo = shares.iter().map(|s| s.1).fold(f64::INFINITY, f64::min);
            let spread = hi.map_or(0.0, |(_, h)| h - lo);
            Balance {
                favours: hi.filter(|_| spread > BALANCED_SPREAD).map(|(k, _)| parties[k].name.clone()),
                spread,
                distance_to_nash: distances.nash,
                distance_to_kalai_smorodinsky: distances.kalai_smorodinsky,
            }
        });
        Explanation {
            deal: r.agreement.as_ref().map(|o| scenario.presentation.terms(&scenario.domain, o)),
            ending,
            parties,
            balance,
            joint_gain: joint_gain(scenario, analysis, r),
            analysis_exact: analysis.exact,
        }
    }
}

/// The frontier outcomes that dominate what the parties got (the agreement,
/// or their reservation values without one), and the best of them.
fn joint_gain(scenario: &Scenario, analysis: &Analysis, r: &SessionResult) -> JointGain {
    let got = &r.undiscounted;
    let mut improving = 0;
    let mut best: Option<(usize, f64, f64)> = None;
    for (k, p) in analysis.pareto.iter().enumerate() {
        let gains = p.utilities.iter().zip(got).map(|(u, g)| u - g);
        let dominates =
            p.utilities.len() == got.len() && gains.clone().all(|d| d >= -EPS) && gains.clone().any(|d| d > EPS);
        if !dominates {
            continue;
        }
        improving += 1;
        let total: f64 = gains.clone().sum();
        let least = gains.fold(f64::INFINITY, f64::min);
        let better = match best {
            None => true,
            Some((_, t, l)) => total > t + EPS || (total > t - EPS && least > l + EPS),
        };
        if better {
            best = Some((k, total, least));
        }
    }
    let best = best.map(|(k, _, _)| {
        let p = &analysis.pareto[k];
        let (d, show) = (&scenario.domain, &scenario.presentation);
        Improvement {
            terms: show.terms(d, &p.outcome),
            changes: r.agreement.as_ref().map(|a| show.changes(d, a, &p.outcome)).unwrap_or_default(),
            utilities: p.utilities.clone(),
            gains: p.utilities.iter().zip(got).map(|(u, g)| (u - g).max(0.0)).collect(),
        }
    });
    JointGain { improving, best }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::domain::{Domain, Issue, Outcome, Value};
    use crate::core::protocol::Deadline;
    use crate::core::scenario::Party;
    use crate::core::strategy::StrategySpec;
    use crate::core::utility::{Preferences, UtilityFunction, ValueFunction};
    use std::sync::Arc;

    /// Price split against a side issue both value: any deal without the
    /// perk leaves joint gain on the table.
    fn scenario() -> Scenario {
        let d = Domain::new(
            "t",
            vec![
                Issue::Integer { name: "price".into(), min: 0, max: 4 },
                Issue::Discrete { name: "perk".into(), values: vec!["no".into(), "yes".into()] },
            ],
        );
        let party = |name: &str, up: bool, rv: f64| Party {
            name: name.into(),
            preferences: Arc::new(Preferences {
                utility: UtilityFunction::LinearAdditive {
                    weights: vec![0.5, 0.5],
                    values: vec![
                        ValueFunction::linear_between(0.0, 4.0, if up { 0.0 } else { 1.0 }, if up { 1.0 } else { 0.0 }),
                        ValueFunction::Table { utilities: vec![0.0, 1.0] },
                    ],
                },
                reservation_value: rv,
                discount: 0.5,
            }),
            strategy: StrategySpec::named("boulware"),
            external: false,
        };
        Scenario {
            name: "t".into(),
            description: String::new(),
            domain: Arc::new(d),
            parties: vec![party("seller", true, 0.1), party("buyer", false, 0.2)],
            deadline: Deadline::rounds(10),
            seed: 1,
            presentation: Default::default(),
        }
    }

    fn result(s: &Scenario, agreement: Option<Outcome>, time: f64) -> SessionResult {
        let prefs = s.preferences();
        let undiscounted: Vec<f64> =
            prefs.iter().map(|p| agreement.as_ref().map_or(p.reservation_value, |o| p.utility(&s.domain, o))).collect();
        SessionResult {
            ending: match &agreement {
                Some(o) => Ending::Agreement { outcome: o.clone(), proposer: 0 },
                None => Ending::Deadline,
            },
            agreement,
            utilities: prefs.iter().zip(&undiscounted).map(|(p, u)| p.discounted(*u, time)).collect(),
            undiscounted,
            rounds: 5,
            offers: 10,
            time,
            trace: vec![],
            trace_truncated: false,
            bids_exact: vec![],
            bids_gap: vec![],
        }
    }

    fn analysis(s: &Scenario) -> Analysis {
        let prefs = s.preferences();
        let refs: Vec<&Preferences> = prefs.iter().map(|p| p.as_ref()).collect();
        Analysis::run(&s.domain, &refs, 1)
    }

    fn explain(s: &Scenario, an: &Analysis, r: &SessionResult) -> Explanation {
        Explanation::of(s, an, r, &an.distances(&r.undiscounted))
    }

    #[test]
    fn a_deal_without_the_perk_misses_a_gain_for_both() {
        let s = scenario();
        let an = analysis(&s);
        let deal = Outcome::from(vec![Value::Integer(3), Value::Discrete(0)]);
        let e = explain(&s, &an, &result(&s, Some(deal), 0.5));
        let best = e.joint_gain.best.as_ref().expect("a dominating deal");
        // The perk is worth 0.5 to each: adding it is the best joint move.
        assert_eq!(best.changes, vec!["perk: yes instead of no".to_string()]);
        assert!((best.gains[0] - 0.5).abs() < 1e-12 && (best.gains[1] - 0.5).abs() < 1e-12);
        assert!(an.is_pareto_efficient(&best.utilities));
        // Discount 0.5 at half the deadline: ×√0.5.
        assert!((e.parties[0].discount_factor - 0.5f64.sqrt()).abs() < 1e-12);
        assert!((e.parties[0].above_reservation - (0.375 - 0.1)).abs() < 1e-12);
        let b = e.balance.unwrap();
        assert_eq!(b.favours.as_deref(), Some("seller"));
    }

    #[test]
    fn a_frontier_deal_leaves_nothing_and_no_deal_leaves_the_frontier() {
        let s = scenario();
        let an = analysis(&s);
        let fair = Outcome::from(vec![Value::Integer(2), Value::Discrete(1)]);
        let e = explain(&s, &an, &result(&s, Some(fair), 0.2));
        assert_eq!(e.joint_gain, JointGain { improving: 0, best: None });
        assert_eq!(e.balance.unwrap().favours, None);
        let none = explain(&s, &an, &result(&s, None, 1.0));
        assert!(none.deal.is_none() && none.balance.is_none());
        // Every rational frontier deal beats walking away for both.
        assert_eq!(none.joint_gain.improving, an.pareto.len());
        let best = none.joint_gain.best.unwrap();
        assert!(best.changes.is_empty() && best.gains.iter().all(|g| *g > 0.0));
    }
}
