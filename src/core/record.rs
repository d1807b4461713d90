//! The result record: one JSON object per negotiation, with the full trace.
//! `negotium run --out` writes it and the gRPC API serves it, so both give
//! users the same thing.

use std::fmt;
use std::sync::Arc;

use serde::Serialize;
use serde_json::{Value as Json, json};

use super::analysis::{Analysis, Distances, Point};
use super::domain::{Domain, Issue, Value};
use super::explain::Explanation;
use super::protocol::{Action, Ending};
use super::scenario::Scenario;
use super::session::{SessionResult, TraceEntry};
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

/// One negotiation's record: its fields, and its trace already written as
/// JSON text. A trace is most of a record, and building a JSON value per
/// offer (a map per entry, another per outcome, a string per key) cost
/// more than the negotiation; the text is written straight from the
/// trace, with serde_json's own number and string formatting, so the line
/// reads back as the same JSON.
#[derive(Debug, Clone)]
pub struct Record {
    /// Every field but `trace` (callers add their own before writing).
    pub fields: Json,
    /// Valid JSON by construction ([`trace_text`]); spliced into the line
    /// as it is, never parsed again.
    trace: String,
}

impl Record {
    /// The whole record as one JSON value (parses the trace back).
    pub fn into_json(self) -> Json {
        let mut v = self.fields;
        v["trace"] = serde_json::from_str(&self.trace).unwrap_or(Json::Null);
        v
    }
}

impl fmt::Display for Record {
    /// The record's line: the fields as serde_json writes them, with the
    /// trace as their last entry.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fields = self.fields.to_string();
        let open = fields.strip_suffix('}').ok_or(fmt::Error)?;
        let sep = if open.len() > 1 { "," } else { "" };
        write!(f, "{open}{sep}\"trace\":{}}}", self.trace)
    }
}

/// The trace as JSON text: per entry `action`, `outcome` (by issue name, as
/// [`Domain::outcome_json`] writes it), `party`, `round`, `time` and
/// `utilities`, in that (sorted) order, as a JSON map would have them.
fn trace_text(d: &Domain, prefs: &[Arc<Preferences>], trace: &[TraceEntry]) -> String {
    // Writing into a Vec cannot fail, and every piece is valid JSON.
    fn put<T: Serialize + ?Sized>(out: &mut Vec<u8>, x: &T) {
        serde_json::to_writer(&mut *out, x).expect("writing JSON into memory");
    }
    let mut by_name: Vec<usize> = (0..d.issues.len()).collect();
    by_name.sort_by(|&a, &b| d.issues[a].name().cmp(d.issues[b].name()));
    let mut out: Vec<u8> = Vec::with_capacity(16 + trace.len() * (64 + 24 * d.issues.len()));
    out.push(b'[');
    for (k, t) in trace.iter().enumerate() {
        if k > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"action\":");
        put(&mut out, t.action.kind());
        if let Action::Offer(o) = &t.action {
            out.extend_from_slice(b",\"outcome\":{");
            for (j, &i) in by_name.iter().enumerate() {
                if j > 0 {
                    out.push(b',');
                }
                let issue = &d.issues[i];
                put(&mut out, issue.name());
                out.push(b':');
                match (issue, &o.0[i]) {
                    (Issue::Discrete { values, .. }, Value::Discrete(x)) => {
                        put(&mut out, values.get(*x as usize).map_or("", String::as_str))
                    }
                    (_, Value::Integer(x)) => put(&mut out, x),
                    (_, Value::Real(x)) => put(&mut out, x),
                    (_, Value::Discrete(x)) => put(&mut out, x),
                }
            }
            out.push(b'}');
        }
        out.extend_from_slice(b",\"party\":");
        put(&mut out, &t.party);
        out.extend_from_slice(b",\"round\":");
        put(&mut out, &t.round);
        out.extend_from_slice(b",\"time\":");
        put(&mut out, &t.time);
        if let Action::Offer(o) = &t.action {
            out.extend_from_slice(b",\"utilities\":[");
            for (j, p) in prefs.iter().enumerate() {
                if j > 0 {
                    out.push(b',');
                }
                put(&mut out, &p.utility(d, o));
            }
            out.push(b']');
        }
        out.push(b'}');
    }
    out.push(b']');
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

/// The JSONL record of one negotiation.
pub fn record(cx: &RecordContext<'_>, session: Json, seed: u64, r: &SessionResult, a: &Assessment) -> Record {
    let (scenario, prefs, engine, strategies) = (cx.scenario, cx.preferences, cx.engine, cx.strategies);
    let d = &scenario.domain;
    let dist = &a.distances;
    let trace = trace_text(d, prefs, &r.trace);
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
        "trace_truncated": r.trace_truncated,
    });
    if cx.explain {
        rec["explanation"] = json!(Explanation::of(scenario, cx.analysis, r, &a.distances));
    }
    Record { fields: rec, trace }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::domain::Outcome;
    use crate::core::utility::{UtilityFunction, ValueFunction};

    /// The trace written as text reads back as the JSON value it replaced:
    /// a map per entry, outcomes by issue name, serde_json's numbers.
    #[test]
    fn the_trace_text_is_the_json_it_replaced() {
        let d = Domain::new(
            "t",
            vec![
                Issue::Real { name: "z price".into(), min: 0.0, max: 1.0 },
                Issue::Discrete { name: "colour".into(), values: vec!["\"red\"".into(), "grün\n".into()] },
                Issue::Integer { name: "a".into(), min: -5, max: 5 },
            ],
        );
        let prefs = vec![Arc::new(Preferences::new(
            UtilityFunction::LinearAdditive {
                weights: vec![0.3, 0.3, 0.4],
                values: vec![
                    ValueFunction::linear_between(0.0, 1.0, 0.0, 1.0),
                    ValueFunction::Table { utilities: vec![0.1, 0.9] },
                    ValueFunction::linear_between(-5.0, 5.0, 1.0, 0.0),
                ],
            },
            0.2,
        ))];
        let offer = Outcome::from(vec![Value::Real(0.1 + 0.2), Value::Discrete(1), Value::Integer(-3)]);
        let trace = vec![
            TraceEntry { round: 0, party: 0, time: 1.0 / 3.0, action: Action::Offer(offer.clone()) },
            TraceEntry { round: 0, party: 1, time: 1.0 / 3.0, action: Action::Accept },
            TraceEntry { round: 7, party: 1, time: 0.7, action: Action::EndNegotiation },
        ];
        let old: Vec<Json> = trace
            .iter()
            .map(|t| {
                let mut e = json!({ "round": t.round, "party": t.party, "time": t.time, "action": t.action.kind() });
                if let Action::Offer(o) = &t.action {
                    e["outcome"] = d.outcome_json(o);
                    e["utilities"] = json!(prefs.iter().map(|p| p.utility(&d, o)).collect::<Vec<_>>());
                }
                e
            })
            .collect();
        let text = trace_text(&d, &prefs, &trace);
        assert_eq!(serde_json::from_str::<Json>(&text).unwrap(), Json::Array(old.clone()));
        // Textually too: the same keys in the same order as a JSON map writes them.
        assert_eq!(text, serde_json::to_string(&old).unwrap());
        let rec = Record { fields: json!({ "b": 1, "a": [2] }), trace: text };
        let back: Json = serde_json::from_str(&rec.to_string()).unwrap();
        assert_eq!(back, json!({ "a": [2], "b": 1, "trace": old }));
        assert_eq!(rec.into_json(), back);
        let empty = Record { fields: json!({}), trace: "[]".into() };
        assert_eq!(empty.to_string(), r#"{"trace":[]}"#);
    }
}
