//! Writes a [`Scenario`] as scenario TOML that [`Scenario::parse`] reads back
//! to the same domain and the same utilities, bit for bit.
//!
//! Floats are written with Rust's shortest round-trip form (`{:?}`), so they
//! parse back to the same bits. Value functions map as follows:
//!
//! - discrete tables: `{ value = utility, … }`;
//! - integer issues: `linear = [at_min, at_max]` where that reproduces the
//!   function exactly (same slope, offset and origin bits), otherwise
//!   `table = [...]` with the utility of every value (at most
//!   [`MAX_TABLE`] values), which evaluates to the same bits;
//! - real issues: `triangular`, `constant`, and `linear` where exact;
//!   otherwise the export is refused with the reason;
//! - hyper-rectangles: `[[parties.rectangles]]` with `ranges`/`excludes`.
//!
//! Scenario TOML requires weights that sum to 1 (±1e-6). A party whose
//! weights do not (imported as written, see [`crate::import`]) is refused
//! unless [`ExportOptions::renormalize_weights`] is set; its weights are then
//! divided by their sum and a comment says so. [`check_round_trip`] verifies
//! an export.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use thiserror::Error;

use crate::core::domain::{Cardinality, Domain, Issue, Outcome};
use crate::core::rng::SplitMix64;
use crate::core::scenario::{Scenario, WEIGHT_TOLERANCE};
use crate::core::utility::{Aggregation, Preferences, UtilityFunction, ValueFunction};

/// Largest integer issue written as a table of utilities.
pub const MAX_TABLE: u128 = 100_000;

#[derive(Debug, Clone, Default)]
pub struct ExportOptions {
    /// Divide weights that do not sum to 1 by their sum (recorded in a comment)
    /// instead of refusing the export.
    pub renormalize_weights: bool,
    /// Where the scenario came from, for the header comment.
    pub source: Option<String>,
}

/// Why a scenario cannot be written as scenario TOML.
#[derive(Debug, Clone, PartialEq, Error)]
#[error("{0}")]
pub struct ExportError(pub String);

/// A TOML basic string: quoted, with every control character escaped, valid
/// as a value and as a key.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Shortest form that parses back to the same bits.
fn num(x: f64) -> String {
    format!("{x:?}")
}

fn comment(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

/// The scenario as scenario TOML.
pub fn to_toml(s: &Scenario, opts: &ExportOptions) -> Result<String, ExportError> {
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(
        w,
        "# Scenario written by `negotium import`{}",
        opts.source.as_deref().map(|s| format!(" from {}", comment(s))).unwrap_or_default()
    );
    let _ = writeln!(w, "# Floats are exact (shortest round-trip form); edit with care.");
    let _ = writeln!(w, "name = {}", quote(&s.name));
    if !s.description.is_empty() {
        let _ = writeln!(w, "description = {}", quote(&s.description));
    }
    let _ = writeln!(w, "seed = {}", s.seed);
    let _ = writeln!(w, "\n[protocol]");
    if let Some(r) = s.deadline.rounds {
        let _ = writeln!(w, "rounds = {r}");
    }
    if let Some(sec) = s.deadline.seconds {
        let _ = writeln!(w, "seconds = {}", num(sec));
    }
    for issue in &s.domain.issues {
        let _ = writeln!(w, "\n[[issues]]\nname = {}", quote(issue.name()));
        match issue {
            Issue::Discrete { values, .. } => {
                let vs: Vec<String> = values.iter().map(|v| quote(v)).collect();
                let _ = writeln!(w, "type = \"discrete\"\nvalues = [{}]", vs.join(", "));
            }
            Issue::Integer { min, max, .. } => {
                let _ = writeln!(w, "type = \"integer\"\nmin = {min}\nmax = {max}");
            }
            Issue::Real { min, max, .. } => {
                let _ = writeln!(w, "type = \"real\"\nmin = {}\nmax = {}", num(*min), num(*max));
            }
        }
    }
    for party in &s.parties {
        party_toml(w, &s.domain, &party.name, &party.preferences, &party.strategy, party.external, opts)?;
    }
    Ok(out)
}

fn party_toml(
    w: &mut String,
    d: &Domain,
    name: &str,
    p: &Preferences,
    strategy: &crate::core::strategy::StrategySpec,
    external: bool,
    opts: &ExportOptions,
) -> Result<(), ExportError> {
    let who = |m: String| ExportError(format!("party `{name}`: {m}"));
    if !(0.0..=1.0).contains(&p.reservation_value) {
        return Err(who(format!(
            "reservation value {} is outside [0, 1], which scenario TOML refuses",
            p.reservation_value
        )));
    }
    if !(p.discount > 0.0 && p.discount <= 1.0) {
        return Err(who(format!("discount {} is outside (0, 1]", p.discount)));
    }
    let _ = writeln!(w, "\n[[parties]]\nname = {}", quote(name));
    if !(strategy.name == super::DEFAULT_STRATEGY && strategy.params.is_empty()) {
        let mut table = serde_json::Map::new();
        table.insert("type".into(), serde_json::Value::String(strategy.name.clone()));
        table.extend(strategy.params.clone());
        let value = if strategy.params.is_empty() {
            quote(&strategy.name)
        } else {
            let t = toml::Value::try_from(serde_json::Value::Object(table)).map_err(|e| who(e.to_string()))?;
            inline(&t)
        };
        let _ = writeln!(w, "strategy = {value}");
    }
    if external {
        let _ = writeln!(w, "external = true");
    }
    let _ = writeln!(w, "reservation = {}", num(p.reservation_value));
    let _ = writeln!(w, "discount = {}", num(p.discount));
    match &p.utility {
        UtilityFunction::LinearAdditive { weights, values } => {
            let sum: f64 = weights.iter().sum();
            let mut weights = weights.clone();
            if (sum - 1.0).abs() > WEIGHT_TOLERANCE {
                if !opts.renormalize_weights {
                    return Err(who(format!(
                        "weights sum to {sum:?}, and scenario TOML requires 1 (±{WEIGHT_TOLERANCE:e}); \
                         pass --renormalize-weights to write them divided by their sum (utilities then change)"
                    )));
                }
                weights.iter_mut().for_each(|x| *x /= sum);
                let _ = writeln!(
                    w,
                    "# weights summed to {sum:?} in the source and were divided by their sum (--renormalize-weights)"
                );
            }
            let ws: Vec<String> =
                d.issues.iter().zip(&weights).map(|(i, x)| format!("{} = {}", quote(i.name()), num(*x))).collect();
            let _ = writeln!(w, "weights = {{ {} }}", ws.join(", "));
            let _ = writeln!(w, "[parties.values]");
            for (issue, f) in d.issues.iter().zip(values) {
                let body = value_function_toml(issue, f).map_err(|m| who(format!("issue `{}`: {m}", issue.name())))?;
                let _ = writeln!(w, "{} = {body}", quote(issue.name()));
            }
        }
        UtilityFunction::HyperRectangles { rectangles, aggregation, max_utility } => {
            let agg = match aggregation {
                Aggregation::Sum => "sum",
                Aggregation::Min => "min",
                Aggregation::Max => "max",
            };
            let _ = writeln!(
                w,
                "utility = \"hyper-rectangles\"\naggregation = \"{agg}\"\nmax_utility = {}",
                num(*max_utility)
            );
            if rectangles.is_empty() {
                return Err(who("no rectangles; scenario TOML needs at least one".into()));
            }
            for r in rectangles {
                let ranges = bounds_toml(d, &r.includes).map_err(who)?;
                let excludes = bounds_toml(d, &r.excludes).map_err(who)?;
                let _ = writeln!(w, "[[parties.rectangles]]\nutility = {}", num(r.utility));
                if !ranges.is_empty() {
                    let _ = writeln!(w, "ranges = {{ {ranges} }}");
                }
                if !excludes.is_empty() {
                    let _ = writeln!(w, "excludes = {{ {excludes} }}");
                }
            }
        }
    }
    Ok(())
}

fn inline(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => quote(s),
        toml::Value::Float(x) => num(*x),
        toml::Value::Table(t) => {
            let kv: Vec<String> = t.iter().map(|(k, v)| format!("{} = {}", quote(k), inline(v))).collect();
            format!("{{ {} }}", kv.join(", "))
        }
        toml::Value::Array(a) => format!("[{}]", a.iter().map(inline).collect::<Vec<_>>().join(", ")),
        other => other.to_string(),
    }
}

fn bounds_toml(d: &Domain, bounds: &[(usize, f64, f64)]) -> Result<String, String> {
    let mut by_name: BTreeMap<&str, (f64, f64)> = BTreeMap::new();
    for &(k, lo, hi) in bounds {
        let issue = d.issues.get(k).ok_or_else(|| format!("a rectangle names issue #{k}, which does not exist"))?;
        if by_name.insert(issue.name(), (lo, hi)).is_some() {
            return Err(format!("a rectangle bounds issue `{}` twice, which scenario TOML cannot write", issue.name()));
        }
        if lo.partial_cmp(&hi).is_none_or(|o| o.is_gt()) {
            return Err(format!("a rectangle's range of `{}` is empty ([{lo}, {hi}])", issue.name()));
        }
    }
    Ok(by_name
        .iter()
        .map(|(n, (lo, hi))| format!("{} = [{}, {}]", quote(n), num(*lo), num(*hi)))
        .collect::<Vec<_>>()
        .join(", "))
}

fn value_function_toml(issue: &Issue, f: &ValueFunction) -> Result<String, String> {
    let unit = |x: f64| (0.0..=1.0).contains(&x);
    match (issue, f) {
        (Issue::Discrete { values, .. }, ValueFunction::Table { utilities }) => {
            if utilities.len() != values.len() {
                return Err(format!("{} utilities for {} values", utilities.len(), values.len()));
            }
            if let Some(u) = utilities.iter().find(|u| !unit(**u)) {
                return Err(format!("utility {u} is outside [0, 1]"));
            }
            let kv: Vec<String> =
                values.iter().zip(utilities).map(|(v, u)| format!("{} = {}", quote(v), num(*u))).collect();
            Ok(format!("{{ {} }}", kv.join(", ")))
        }
        (Issue::Discrete { .. }, other) => Err(format!("a discrete issue needs a table of utilities, not {other:?}")),
        (_, ValueFunction::Constant { utility }) if unit(*utility) => Ok(format!("{{ constant = {} }}", num(*utility))),
        (_, ValueFunction::Triangular { low, peak, high }) if low <= peak && peak <= high && low < high => {
            Ok(format!("{{ triangular = [{}, {}, {}] }}", num(*low), num(*peak), num(*high)))
        }
        (Issue::Integer { .. }, _) | (Issue::Real { .. }, ValueFunction::Linear { .. }) => {
            let (lo, hi) = match issue {
                Issue::Integer { min, max, .. } => (*min as f64, *max as f64),
                Issue::Real { min, max, .. } => (*min, *max),
                Issue::Discrete { .. } => unreachable!("handled above"),
            };
            if let ValueFunction::Linear { .. } = f {
                let (a, b) = (f.eval(issue, &issue.value_at(0)), at(f, issue, hi));
                if unit(a) && unit(b) && ValueFunction::linear_between(lo, hi, a, b) == *f {
                    return Ok(format!("{{ linear = [{}, {}] }}", num(a), num(b)));
                }
            }
            let Issue::Integer { .. } = issue else {
                return Err(format!(
                    "{f:?} on a real issue has no exact form in scenario TOML (linear = [at_min, at_max] measures from the lower bound)"
                ));
            };
            let n = issue.cardinality().unwrap_or(u128::MAX);
            if n > MAX_TABLE {
                return Err(format!(
                    "{f:?} has no exact form in scenario TOML, and {n} values are too many for a table (at most {MAX_TABLE})"
                ));
            }
            let utilities: Vec<f64> = (0..n as u64).map(|k| f.eval(issue, &issue.value_at(k))).collect();
            if let Some(u) = utilities.iter().find(|u| !unit(**u)) {
                return Err(format!("utility {u} is outside [0, 1]"));
            }
            Ok(format!("{{ table = [{}] }}", utilities.iter().map(|u| num(*u)).collect::<Vec<_>>().join(", ")))
        }
        (_, other) => Err(format!("{other:?} has no form in scenario TOML")),
    }
}

fn at(f: &ValueFunction, issue: &Issue, x: f64) -> f64 {
    let v = match issue {
        Issue::Integer { .. } => crate::core::domain::Value::Integer(x as i64),
        _ => crate::core::domain::Value::Real(x),
    };
    f.eval(issue, &v)
}

/// Checks that `text` (an export of `original`) parses back to the same
/// scenario: same domain, parties, reservation values, discounts and
/// strategies, and the same utility bits on every outcome (spaces up to
/// 2^16 outcomes) or on 4,096 seeded samples. Renormalised weights are
/// checked to be the written ones divided by their sum instead.
pub fn check_round_trip(original: &Scenario, text: &str, file: &str) -> Result<Scenario, String> {
    let back = Scenario::parse(text, file).map_err(|e| format!("the written TOML does not parse: {e}"))?;
    let same =
        |what: &str, ok: bool| if ok { Ok(()) } else { Err(format!("{what} differs after writing and reading back")) };
    same("the name", back.name == original.name)?;
    same("the description", back.description == original.description)?;
    same("the domain", back.domain == original.domain)?;
    same("the deadline", back.deadline == original.deadline)?;
    same("the seed", back.seed == original.seed)?;
    same("the number of parties", back.parties.len() == original.parties.len())?;
    let outcomes = sample_outcomes(&original.domain);
    for (a, b) in original.parties.iter().zip(&back.parties) {
        let (pa, pb) = (&a.preferences, &b.preferences);
        let who = |m: &str| format!("party `{}`: {m}", a.name);
        if a.name != b.name || a.strategy != b.strategy || a.external != b.external {
            return Err(who("name, strategy or external flag differs"));
        }
        if pa.reservation_value.to_bits() != pb.reservation_value.to_bits()
            || pa.discount.to_bits() != pb.discount.to_bits()
        {
            return Err(who("reservation value or discount differs"));
        }
        if pa == pb {
            continue;
        }
        if let (
            UtilityFunction::LinearAdditive { weights: wa, .. },
            UtilityFunction::LinearAdditive { weights: wb, .. },
        ) = (&pa.utility, &pb.utility)
        {
            let sum: f64 = wa.iter().sum();
            if (sum - 1.0).abs() > WEIGHT_TOLERANCE {
                if wa.iter().zip(wb).all(|(x, y)| x / sum == *y) {
                    continue;
                }
                return Err(who("renormalised weights differ from weights ÷ sum"));
            }
        }
        for o in &outcomes {
            let (ua, ub) = (pa.utility(&original.domain, o), pb.utility(&back.domain, o));
            if ua.to_bits() != ub.to_bits() && ua != ub {
                return Err(who(&format!("utility of {} is {ua:?} imported but {ub:?} read back", original.show(o))));
            }
        }
    }
    Ok(back)
}

fn sample_outcomes(d: &Domain) -> Vec<Outcome> {
    match d.cardinality() {
        Cardinality::Finite(n) if n <= 1 << 16 => (0..n).map(|k| d.outcome_at(k)).collect(),
        _ => {
            let mut rng = SplitMix64::new(0x1e9);
            (0..4096).map(|_| d.random_outcome(&mut rng)).collect()
        }
    }
}
