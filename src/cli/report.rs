//! Result records (one JSON object per negotiation) and summaries.

use serde_json::{Value as Json, json};

use crate::core::analysis::{Analysis, Point};
use crate::core::domain::Domain;
use crate::core::protocol::{Action, Ending};
use crate::core::scenario::Scenario;
use crate::core::session::SessionResult;

pub fn point_json(d: &Domain, p: Option<&Point>) -> Json {
    match p {
        Some(p) => json!({ "utilities": p.utilities, "outcome": d.outcome_json(&p.outcome) }),
        None => Json::Null,
    }
}

/// The JSONL record of one negotiation.
pub fn record(
    scenario: &Scenario,
    analysis: &Analysis,
    session: u64,
    seed: u64,
    engine: &str,
    strategies: &[String],
    r: &SessionResult,
) -> Json {
    let d = &scenario.domain;
    let prefs = scenario.preferences();
    let dist = analysis.distances(&r.utilities);
    let trace: Vec<Json> = r
        .trace
        .iter()
        .map(|t| {
            let mut e = json!({ "round": t.round, "party": t.party, "time": t.time, "action": t.action.kind() });
            if let Action::Offer(o) = &t.action {
                e["outcome"] = d.outcome_json(o);
                e["utilities"] = json!(prefs.iter().map(|p| p.utility(d, o)).collect::<Vec<_>>());
            }
            e
        })
        .collect();
    let (violation, ended_party) = match &r.ending {
        Ending::Violation { party, reason } => (json!({ "party": party, "reason": reason }), Some(*party)),
        Ending::EndedBy { party } => (Json::Null, Some(*party)),
        _ => (Json::Null, None),
    };
    json!({
        "session": session,
        "scenario": scenario.name,
        "seed": seed,
        "engine": engine,
        "parties": scenario.parties.iter().map(|p| &p.name).collect::<Vec<_>>(),
        "strategies": strategies,
        "agreement": r.agreement.as_ref().map(|o| d.outcome_json(o)),
        "utilities": r.utilities,
        "rounds": r.rounds,
        "offers": r.offers,
        "ended_by": r.ending.label(),
        "ended_by_party": ended_party,
        "violation": violation,
        "time": r.time,
        "welfare": r.utilities.iter().sum::<f64>(),
        "distance_to_pareto": dist.pareto,
        "distance_to_nash": dist.nash,
        "distance_to_kalai_smorodinsky": dist.kalai_smorodinsky,
        "distance_to_max_welfare": dist.max_welfare,
        "pareto_efficient": r.agreement.is_some() && analysis.is_pareto_efficient(&r.utilities),
        "analysis_exact": analysis.exact,
        "trace": trace,
        "trace_truncated": r.trace_truncated,
    })
}

/// Running means over many negotiations.
#[derive(Debug, Default, Clone)]
pub struct Summary {
    pub n: usize,
    pub agreements: usize,
    pub utility_sums: Vec<f64>,
    pub rounds: f64,
    pub offers: f64,
    pub welfare: f64,
    pub nash: f64,
    pub pareto: f64,
    pub efficient: usize,
    pub endings: std::collections::BTreeMap<&'static str, usize>,
}

impl Summary {
    pub fn add(&mut self, analysis: Option<&Analysis>, r: &SessionResult) {
        self.n += 1;
        if r.agreement.is_some() {
            self.agreements += 1;
        }
        if self.utility_sums.len() < r.utilities.len() {
            self.utility_sums.resize(r.utilities.len(), 0.0);
        }
        for (s, u) in self.utility_sums.iter_mut().zip(&r.utilities) {
            *s += u;
        }
        self.rounds += r.rounds as f64;
        self.offers += r.offers as f64;
        self.welfare += r.utilities.iter().sum::<f64>();
        if let Some(a) = analysis {
            let d = a.distances(&r.utilities);
            self.nash += d.nash.unwrap_or(0.0);
            self.pareto += d.pareto.unwrap_or(0.0);
            if r.agreement.is_some() && a.is_pareto_efficient(&r.utilities) {
                self.efficient += 1;
            }
        }
        *self.endings.entry(r.ending.label()).or_default() += 1;
    }

    pub fn mean_utilities(&self) -> Vec<f64> {
        self.utility_sums.iter().map(|s| s / self.n.max(1) as f64).collect()
    }

    pub fn mean(&self, total: f64) -> f64 {
        total / self.n.max(1) as f64
    }
}
