//! The result record: one JSON object per negotiation, with the full trace.
//! `negotium run --out` writes it and the gRPC API serves it, so both give
//! users the same thing.

use std::sync::Arc;

use serde_json::{Value as Json, json};

use super::analysis::{Analysis, Distances, Point};
use super::explain::Explanation;
use super::protocol::{Action, Ending};
use super::scenario::Scenario;
use super::session::SessionResult;
use super::utility::Preferences;

/// A reference point: its utilities, its outcome, and the outcome as a
/// person reads it (the scenario's units and labels).
pub fn point_json(scenario: &Scenario, p: Option<&Point>) -> Json {
    match p {
        Some(p) => json!({
            "utilities": p.utilities,
            "outcome": scenario.domain.outcome_json(&p.outcome),
            "shown": scenario.show(&p.outcome),
        }),
        None => Json::Null,
    }
}

/// How one result relates to the scenario's analysis. Computed once per
/// negotiation from the undiscounted utilities (the analysis ignores discount).
pub struct Assessment {
    pub distances: Distances,
    pub pareto_efficient: bool,
}

impl Assessment {
    pub fn of(analysis: &Analysis, r: &SessionResult) -> Self {
        let distances = analysis.distances(&r.undiscounted);
        let pareto_efficient = r.agreement.is_some() && distances.pareto.is_some_and(|d| d < 1e-9);
        Self { distances, pareto_efficient }
    }
}

/// What a record needs besides the result itself.
pub struct RecordContext<'a> {
    pub scenario: &'a Scenario,
    pub preferences: &'a [Arc<Preferences>],
    pub analysis: &'a Analysis,
    pub engine: &'a str,
    pub strategies: &'a [String],
    /// Whether records carry the [`Explanation`]: where a person reads one
    /// negotiation (runs, served sessions), not a tournament's thousands of
    /// lines, whose tables are the reading.
    pub explain: bool,
}

/// The JSONL record of one negotiation.
pub fn record(cx: &RecordContext<'_>, session: Json, seed: u64, r: &SessionResult, a: &Assessment) -> Json {
    let (scenario, prefs, engine, strategies) = (cx.scenario, cx.preferences, cx.engine, cx.strategies);
    let d = &scenario.domain;
    let dist = &a.distances;
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
        Ending::Aborted { reason } => (json!({ "party": null, "reason": reason }), None),
        _ => (Json::Null, None),
    };
    let mut rec = json!({
        "session": session,
        "scenario": scenario.name,
        "seed": seed,
        "engine": engine,
        "parties": scenario.parties.iter().map(|p| &p.name).collect::<Vec<_>>(),
        "strategies": strategies,
        "agreement": r.agreement.as_ref().map(|o| d.outcome_json(o)),
        "utilities": r.utilities,
        "undiscounted_utilities": r.undiscounted,
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
        "pareto_efficient": a.pareto_efficient,
        "analysis_exact": cx.analysis.exact,
        "analysis_outcomes": cx.analysis.evaluated,
        "trace": trace,
        "trace_truncated": r.trace_truncated,
    });
    if cx.explain {
        rec["explanation"] = json!(Explanation::of(scenario, cx.analysis, r, &a.distances));
    }
    rec
}
