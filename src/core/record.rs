//! The result record: one JSON object per negotiation, with the full trace.
//! `negotium run --out` writes it and the gRPC API serves it, so both give
//! users the same thing.

use std::fmt;
use std::io;
use std::sync::Arc;

use serde::Serialize;
use serde_json::{Value as Json, json};

use super::analysis::{Analysis, Distances, Point};
use super::domain::{Domain, Issue, Outcome, Value};
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

impl Record {
    /// The line's text before the trace: the fields as serde_json writes
    /// them, without their closing brace, and `"trace":` after a comma.
    fn head(&self) -> String {
        debug_assert!(self.fields.is_object(), "a record is an object");
        let mut head = self.fields.to_string();
        head.pop(); // the closing brace of an object
        if head.len() > 1 {
            head.push(',');
        }
        head.push_str("\"trace\":");
        head
    }

    /// Writes the record's line (no newline) straight to `out`: the trace
    /// is copied once, not into a line first.
    pub fn write_to(&self, out: &mut impl io::Write) -> io::Result<()> {
        out.write_all(self.head().as_bytes())?;
        out.write_all(self.trace.as_bytes())?;
        out.write_all(b"}")
    }
}

impl fmt::Display for Record {
    /// The record's line: the fields as serde_json writes them, with the
    /// trace as their last entry.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}}}", self.head(), self.trace)
    }
}

/// The trace as JSON text: per entry `action`, `outcome` (by issue name, as
/// [`Domain::outcome_json`] writes it), `party`, `round`, `time` and
/// `utilities`, in that (sorted) order, as a JSON map would have them.
///
/// Time-dependent parties repeat their offer for many rounds: the text of a
/// party's last offer (its outcome and utilities) is kept and copied while
/// it repeats. Floats go through [`put_f64`]'s cache, and issue names are
/// escaped once per trace.
pub fn trace_text(d: &Domain, prefs: &[Arc<Preferences>], trace: &[TraceEntry]) -> String {
    /// A party's last offer and its two pieces of text.
    #[derive(Default)]
    struct Last {
        offer: Option<Outcome>,
        outcome: Vec<u8>,
        utilities: Vec<u8>,
    }
    let keys = OutcomeKeys::new(d);
    let mut last: Vec<Last> = Vec::new();
    let mut out: Vec<u8> = Vec::with_capacity(16 + trace.len() * (112 + 32 * d.issues.len()));
    out.push(b'[');
    for (k, t) in trace.iter().enumerate() {
        if k > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"action\":\"");
        // Kinds are lower-case words: nothing to escape.
        out.extend_from_slice(t.action.kind().as_bytes());
        out.push(b'"');
        let offer = match &t.action {
            Action::Offer(o) => {
                if last.len() <= t.party {
                    last.resize_with(t.party + 1, Last::default);
                }
                let l = &mut last[t.party];
                if l.offer.as_ref() != Some(o) {
                    l.outcome.clear();
                    keys.write(&mut l.outcome, d, o);
                    l.utilities.clear();
                    l.utilities.extend_from_slice(b",\"utilities\":[");
                    for (j, p) in prefs.iter().enumerate() {
                        if j > 0 {
                            l.utilities.push(b',');
                        }
                        put_f64(&mut l.utilities, p.utility(d, o));
                    }
                    l.utilities.push(b']');
                    l.offer = Some(o.clone());
                }
                out.extend_from_slice(&l.outcome);
                Some(t.party)
            }
            _ => None,
        };
        out.extend_from_slice(b",\"party\":");
        out.extend_from_slice(itoa::Buffer::new().format(t.party).as_bytes());
        out.extend_from_slice(b",\"round\":");
        out.extend_from_slice(itoa::Buffer::new().format(t.round).as_bytes());
        out.extend_from_slice(b",\"time\":");
        put_f64(&mut out, t.time);
        if let Some(party) = offer {
            out.extend_from_slice(&last[party].utilities);
        }
        out.push(b'}');
    }
    out.push(b']');
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

/// Writes JSON into memory, which cannot fail.
fn put<T: Serialize + ?Sized>(out: &mut Vec<u8>, x: &T) {
    serde_json::to_writer(&mut *out, x).expect("writing JSON into memory");
}

/// `x` as serde_json writes it (`null` where not finite), through a small
/// cache per thread: traces write the same floats over and over (the times
/// of every negotiation with the same deadline, the utilities of every
/// negotiation over the same profiles), and formatting one costs several
/// times a lookup. Direct-mapped: a slot holds the last float that hashed
/// to it, so the cache stays at 64 KiB whatever it sees.
fn put_f64(out: &mut Vec<u8>, x: f64) {
    use std::cell::RefCell;
    const SLOTS: usize = 2048;
    /// Longest text of a finite f64 ("-2.2250738585072014e-308").
    const LONGEST: usize = 24;
    #[derive(Clone, Copy)]
    struct Slot {
        bits: u64,
        /// 0: empty (no float's text is).
        len: u8,
        text: [u8; LONGEST],
    }
    thread_local! {
        static CACHE: RefCell<Vec<Slot>> =
            RefCell::new(vec![Slot { bits: 0, len: 0, text: [0; LONGEST] }; SLOTS]);
    }
    let bits = x.to_bits();
    let slot = (bits.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - SLOTS.trailing_zeros())) as usize;
    CACHE.with_borrow_mut(|cache| {
        let c = &mut cache[slot];
        if c.len > 0 && c.bits == bits {
            out.extend_from_slice(&c.text[..c.len as usize]);
            return;
        }
        let from = out.len();
        put(out, &x);
        let text = &out[from..];
        if text.len() <= LONGEST {
            c.text[..text.len()].copy_from_slice(text);
            c.len = text.len() as u8;
            c.bits = bits;
        }
    });
}

/// Writes `,"outcome":{…}` of an offer, issues by name: the names sorted and
/// escaped once for a whole trace.
struct OutcomeKeys {
    /// (issue position, `"name":` as JSON) in name order.
    keys: Vec<(usize, Vec<u8>)>,
}

impl OutcomeKeys {
    fn new(d: &Domain) -> Self {
        let mut keys: Vec<(usize, Vec<u8>)> = d
            .issues
            .iter()
            .enumerate()
            .map(|(i, issue)| {
                let mut k = Vec::with_capacity(issue.name().len() + 3);
                put(&mut k, issue.name());
                k.push(b':');
                (i, k)
            })
            .collect();
        keys.sort_by(|a, b| d.issues[a.0].name().cmp(d.issues[b.0].name()));
        Self { keys }
    }

    fn write(&self, out: &mut Vec<u8>, d: &Domain, o: &Outcome) {
        out.extend_from_slice(b",\"outcome\":{");
        for (j, (i, key)) in self.keys.iter().enumerate() {
            if j > 0 {
                out.push(b',');
            }
            out.extend_from_slice(key);
            match (&d.issues[*i], &o.0[*i]) {
                (Issue::Discrete { values, .. }, Value::Discrete(x)) => {
                    put(out, values.get(*x as usize).map_or("", String::as_str))
                }
                (_, Value::Integer(x)) => out.extend_from_slice(itoa::Buffer::new().format(*x).as_bytes()),
                (_, Value::Real(x)) => put_f64(out, *x),
                (_, Value::Discrete(x)) => out.extend_from_slice(itoa::Buffer::new().format(*x).as_bytes()),
            }
        }
        out.push(b'}');
    }
}

/// The JSONL record of one negotiation. `trace`: the trace already written
/// by [`trace_text`] where the engine did it (then `r.trace` is not read).
pub fn record(
    cx: &RecordContext<'_>,
    session: Json,
    seed: u64,
    r: &SessionResult,
    a: &Assessment,
    trace: Option<String>,
) -> Record {
    let (scenario, prefs, engine, strategies) = (cx.scenario, cx.preferences, cx.engine, cx.strategies);
    let d = &scenario.domain;
    let dist = &a.distances;
    let trace = trace.unwrap_or_else(|| trace_text(d, prefs, &r.trace));
    let (violation, ended_party) = match &r.ending {
        Ending::Violation { party, reason } => (json!({ "party": party, "reason": reason }), Some(*party)),
        Ending::EndedBy { party } => (Json::Null, Some(*party)),
        Ending::Aborted { reason } => (json!({ "party": null, "reason": reason }), None),
        _ => (Json::Null, None),
    };
    // In turn order, as `utilities`; an engine that could not tell (a
    // result from before the field existed) says nothing of any party.
    let bids_exact = if r.bids_exact.len() == scenario.parties.len() {
        r.bids_exact.clone()
    } else {
        vec![None; scenario.parties.len()]
    };
    // Nothing in the record is approximate: the analysis enumerated or
    // merged, and no party bid from a sample or a search cut short (a
    // party that asked no inverse, such as a remote agent, bids as it will).
    let exact = cx.analysis.exact && bids_exact.iter().all(|b| *b != Some(false));
    // JSON has no infinity: a gap without bound is null, as is an unknown one.
    let bids_gap: Vec<Option<f64>> = if r.bids_gap.len() == scenario.parties.len() {
        r.bids_gap.iter().map(|g| g.filter(|g| g.is_finite())).collect()
    } else {
        vec![None; scenario.parties.len()]
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
        "bids_exact": bids_exact,
        "bids_gap": bids_gap,
        "exact": exact,
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
        let other = Outcome::from(vec![Value::Real(-0.0), Value::Discrete(0), Value::Integer(5)]);
        let entry = |round, party, time, action| TraceEntry { round, party, time, action };
        // Repeated offers and times (the text kept from the last one), a
        // party's offer between two of another's, -0.0 after 0.0.
        let trace = vec![
            entry(0, 1, 0.0, Action::Offer(other.clone())),
            entry(0, 0, -0.0, Action::Offer(offer.clone())),
            entry(1, 1, 1.0 / 3.0, Action::Offer(offer.clone())),
            entry(1, 0, 1.0 / 3.0, Action::Offer(offer.clone())),
            entry(2, 1, 0.5, Action::Offer(other.clone())),
            entry(2, 0, 0.5, Action::Offer(other.clone())),
            entry(3, 1, 0.6, Action::Offer(other.clone())),
            entry(3, 0, 0.6, Action::Accept),
            entry(7, 1, 0.7, Action::EndNegotiation),
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

    /// The cache writes what serde_json writes, slots shared by many floats
    /// (10^4 of them in 2,048 slots) and asked twice, non-finite included.
    #[test]
    fn cached_floats_are_written_as_serde_json_writes_them() {
        let mut rng = crate::core::rng::SplitMix64::new(3);
        let mut xs: Vec<f64> = (0..10_000).map(|_| f64::from_bits(rng.next_u64())).collect();
        xs.extend([0.0, -0.0, 1.0, 0.1 + 0.2, f64::NAN, f64::INFINITY, f64::MIN_POSITIVE, -f64::MAX, 1e-308]);
        for _ in 0..2 {
            for &x in &xs {
                let mut out = Vec::new();
                put_f64(&mut out, x);
                assert_eq!(String::from_utf8(out).unwrap(), serde_json::to_string(&x).unwrap(), "{x:e}");
            }
        }
    }
}
