//! GeniusWeb JSON: a domain (`{"name", "issuesValues"}`) and
//! `LinearAdditiveUtilitySpace` profiles.
//!
//! - Issue order is the order of `issuesValues` in the domain file (JSON
//!   objects are read in file order, not sorted).
//! - Discrete value utilities are used as written (GeniusWeb does not divide
//!   by the largest one) and must lie in [0, 1]; a value a profile leaves out
//!   is worth 0, as in GeniusWeb, with a warning.
//! - Number issues (`{"range": [low, high, step]}` or `{"range": {"low",
//!   "high", "step"}}`): a whole-number range with step 1 becomes an integer
//!   issue with a linear value function; any other range becomes a discrete
//!   issue whose values are the numbers of the range written out (at most
//!   [`MAX_RANGE_VALUES`]), each with its interpolated utility. `numberutils`
//!   must span the domain's range (GeniusWeb's `isFitting`): utility =
//!   lowUtility + (highUtility − lowUtility)·(x − lowValue)/(highValue − lowValue).
//! - The reservation value is the utility of `reservationBid` (0 without
//!   one); issues the bid leaves out add nothing.
//! - A folder without a domain file uses the domain embedded in its first
//!   profile.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use super::{error, file_stem, folder_name, read_text};
use crate::core::domain::{Domain, INTEGER_BOUND, Issue, Value};
use crate::core::scenario::{Scenario, ScenarioError};
use crate::core::utility::{Preferences, UtilityFunction, ValueFunction};

/// Largest number range turned into discrete values.
pub const MAX_RANGE_VALUES: usize = 100_000;

/// A JSON value whose objects keep their keys in file order.
#[derive(Debug, Clone, PartialEq)]
enum J {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Arr(Vec<J>),
    Obj(Vec<(String, J)>),
}

impl J {
    fn get(&self, key: &str) -> Option<&J> {
        match self {
            J::Obj(kv) => kv.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
    fn obj(&self) -> Option<&[(String, J)]> {
        match self {
            J::Obj(kv) => Some(kv),
            _ => None,
        }
    }
    fn num(&self) -> Option<f64> {
        match self {
            J::Num(x) if x.is_finite() => Some(*x),
            _ => None,
        }
    }
    fn kind(&self) -> &'static str {
        match self {
            J::Null => "null",
            J::Bool(_) => "a boolean",
            J::Num(_) => "a number",
            J::Str(_) => "a string",
            J::Arr(_) => "an array",
            J::Obj(_) => "an object",
        }
    }
}

impl<'de> Deserialize<'de> for J {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = J;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_unit<E>(self) -> Result<J, E> {
                Ok(J::Null)
            }
            fn visit_bool<E>(self, b: bool) -> Result<J, E> {
                Ok(J::Bool(b))
            }
            fn visit_i64<E>(self, x: i64) -> Result<J, E> {
                Ok(J::Num(x as f64))
            }
            fn visit_u64<E>(self, x: u64) -> Result<J, E> {
                Ok(J::Num(x as f64))
            }
            fn visit_f64<E>(self, x: f64) -> Result<J, E> {
                Ok(J::Num(x))
            }
            fn visit_str<E>(self, s: &str) -> Result<J, E> {
                Ok(J::Str(s.to_string()))
            }
            fn visit_string<E>(self, s: String) -> Result<J, E> {
                Ok(J::Str(s))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<J, A::Error> {
                let mut v = Vec::new();
                while let Some(x) = a.next_element()? {
                    v.push(x);
                }
                Ok(J::Arr(v))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<J, A::Error> {
                let mut kv: Vec<(String, J)> = Vec::new();
                let mut seen: HashSet<String> = HashSet::new();
                while let Some((k, v)) = a.next_entry::<String, J>()? {
                    if !seen.insert(k.clone()) {
                        return Err(de::Error::custom(format!("key {k:?} appears twice in one object")));
                    }
                    kv.push((k, v));
                }
                Ok(J::Obj(kv))
            }
        }
        d.deserialize_any(V)
    }
}

fn parse_json(text: &str, file: &str) -> Result<J, ScenarioError> {
    serde_json::from_str(text)
        .map_err(|e| error(file, Some(e.line()).filter(|&l| l > 0), format!("malformed JSON: {e}")))
}

/// How one issue's values are modelled.
#[derive(Debug, Clone)]
enum Kind {
    Discrete,
    /// Whole numbers `low..=high`, step 1: an integer issue.
    Integers {
        low: i64,
        high: i64,
    },
    /// Any other range: a discrete issue whose k-th value is `numbers[k]`.
    Numbers {
        low: f64,
        high: f64,
        numbers: Vec<f64>,
    },
}

/// A parsed GeniusWeb domain.
#[derive(Debug, Clone)]
pub struct GeniusWebDomain {
    pub domain: Domain,
    kinds: Vec<Kind>,
    /// Issue position by name.
    by_name: HashMap<String, usize>,
}

/// Parses a domain file: `{"name": …, "issuesValues": {…}}`.
pub fn parse_domain(text: &str, file: &str) -> Result<GeniusWebDomain, ScenarioError> {
    domain_of(&parse_json(text, file)?, file, "")
}

fn domain_of(json: &J, file: &str, at: &str) -> Result<GeniusWebDomain, ScenarioError> {
    let bad = |path: &str, m: String| error(file, None, format!("{at}{path}: {m}"));
    let name = match json.get("name") {
        Some(J::Str(s)) => s.clone(),
        None => String::new(),
        Some(other) => return Err(bad("name", format!("must be a string, not {}", other.kind()))),
    };
    let issues_values = json
        .get("issuesValues")
        .ok_or_else(|| bad("issuesValues", "missing (a GeniusWeb domain is {\"name\", \"issuesValues\"})".into()))?
        .obj()
        .ok_or_else(|| bad("issuesValues", "must be an object {issue: values}".into()))?;
    let mut issues = Vec::new();
    let mut kinds = Vec::new();
    for (name, set) in issues_values {
        let path = format!("issuesValues.{name:?}");
        let (issue, kind) = if let Some(values) = set.get("values") {
            let J::Arr(values) = values else {
                return Err(bad(&path, "`values` must be an array of strings".into()));
            };
            let mut vs: Vec<String> = Vec::new();
            let mut seen: HashSet<&str> = HashSet::new();
            for v in values {
                let J::Str(s) = v else {
                    return Err(bad(&path, format!("values must be strings, not {}", v.kind())));
                };
                if !seen.insert(s) {
                    return Err(bad(&path, format!("value {s:?} is listed twice")));
                }
                vs.push(s.clone());
            }
            if vs.is_empty() {
                return Err(bad(&path, "an issue needs at least one value".into()));
            }
            (Issue::Discrete { name: name.clone(), values: vs }, Kind::Discrete)
        } else if let Some(range) = set.get("range") {
            number_issue(name, range).map_err(|m| bad(&format!("{path}.range"), m))?
        } else {
            return Err(bad(&path, "needs {\"values\": [...]} or {\"range\": [low, high, step]}".into()));
        };
        issues.push(issue);
        kinds.push(kind);
    }
    if issues.is_empty() {
        return Err(bad("issuesValues", "the domain has no issue".into()));
    }
    let by_name = issues.iter().enumerate().map(|(k, i)| (i.name().to_string(), k)).collect();
    Ok(GeniusWebDomain { domain: Domain::new(name, issues), kinds, by_name })
}

fn number_issue(name: &str, range: &J) -> Result<(Issue, Kind), String> {
    let (low, high, step) = match range {
        J::Arr(v) if v.len() == 3 => (v[0].num(), v[1].num(), v[2].num()),
        J::Obj(_) => {
            (range.get("low").and_then(J::num), range.get("high").and_then(J::num), range.get("step").and_then(J::num))
        }
        _ => return Err("must be [low, high, step] or {\"low\", \"high\", \"step\"}".into()),
    };
    let (Some(low), Some(high), Some(step)) = (low, high, step) else {
        return Err("low, high and step must be finite numbers".into());
    };
    if low > high || step <= 0.0 {
        return Err(format!("needs low ≤ high and step > 0 (low {low}, high {high}, step {step})"));
    }
    let whole = |x: f64| x.fract() == 0.0 && x.abs() <= INTEGER_BOUND as f64;
    if step == 1.0 && whole(low) && whole(high) {
        let (lo, hi) = (low as i64, high as i64);
        return Ok((Issue::Integer { name: name.to_string(), min: lo, max: hi }, Kind::Integers { low: lo, high: hi }));
    }
    let count = ((high - low) / step + 1e-9).floor() + 1.0;
    if count > MAX_RANGE_VALUES as f64 {
        return Err(format!(
            "unsupported: a range of {count} values (at most {MAX_RANGE_VALUES} unless whole numbers with step 1)"
        ));
    }
    let numbers: Vec<f64> = (0..count as usize).map(|k| low + k as f64 * step).collect();
    let decimals = [low, step].iter().map(|x| decimals_of(*x)).max().unwrap_or(0);
    let mut values: Vec<String> = Vec::with_capacity(numbers.len());
    for x in &numbers {
        let s = format!("{x:.decimals$}");
        if values.last() == Some(&s) {
            return Err("the step is too small to tell values apart".into());
        }
        values.push(s);
    }
    Ok((Issue::Discrete { name: name.to_string(), values }, Kind::Numbers { low, high, numbers }))
}

/// Digits after the decimal point in the shortest form of `x` (at most 17).
fn decimals_of(x: f64) -> usize {
    let s = format!("{x:?}");
    let (mantissa, exp) = match s.split_once('e') {
        Some((m, e)) => (m, e.parse::<i64>().unwrap_or(0)),
        None => (s.as_str(), 0),
    };
    let frac = mantissa.split_once('.').map(|(_, f)| f.trim_end_matches('0').len() as i64).unwrap_or(0);
    (frac - exp).clamp(0, 17) as usize
}

/// Parses a profile file: `{"LinearAdditiveUtilitySpace": {…}}`.
pub fn parse_profile(text: &str, file: &str, domain: &GeniusWebDomain) -> Result<Preferences, ScenarioError> {
    profile_of(&parse_json(text, file)?, file, domain)
}

const PROFILE: &str = "LinearAdditiveUtilitySpace";

fn profile_body<'a>(json: &'a J, file: &str) -> Result<&'a J, ScenarioError> {
    let kv = json
        .obj()
        .ok_or_else(|| error(file, None, format!("a GeniusWeb profile is an object, not {}", json.kind())))?;
    match kv {
        [(k, body)] if k == PROFILE => Ok(body),
        [(k, _)] => Err(error(file, None, format!("{k}: unsupported: GeniusWeb profile type `{k}` (only {PROFILE})"))),
        _ => Err(error(file, None, format!("a GeniusWeb profile is {{\"{PROFILE}\": {{…}}}}"))),
    }
}

fn profile_of(json: &J, file: &str, gd: &GeniusWebDomain) -> Result<Preferences, ScenarioError> {
    let body = profile_body(json, file)?;
    let at = format!("{PROFILE}.");
    let bad = |path: &str, m: String| error(file, None, format!("{at}{path}: {m}"));
    let d = &gd.domain;
    let names = || d.issues.iter().map(|i| i.name()).collect::<Vec<_>>().join(", ");
    let n = d.issues.len();

    let utils = body
        .get("issueUtilities")
        .and_then(J::obj)
        .ok_or_else(|| bad("issueUtilities", "missing, or not an object {issue: utilities}".into()))?;
    let mut fns: Vec<Option<ValueFunction>> = vec![None; n];
    for (name, u) in utils {
        let path = format!("issueUtilities.{name:?}");
        let k = gd
            .by_name
            .get(name)
            .copied()
            .ok_or_else(|| bad(&path, format!("names an issue the domain does not have (issues: {})", names())))?;
        fns[k] = Some(value_function(u, &d.issues[k], &gd.kinds[k]).map_err(|m| bad(&path, m))?);
        if let Some(missing) = missing_values(u, &d.issues[k], &gd.kinds[k]) {
            tracing::warn!("{file}: {at}{path}: no utility for {missing}; worth 0, as in GeniusWeb");
        }
    }
    let weights = body
        .get("issueWeights")
        .and_then(J::obj)
        .ok_or_else(|| bad("issueWeights", "missing, or not an object {issue: weight}".into()))?;
    let mut ws: Vec<Option<f64>> = vec![None; n];
    for (name, w) in weights {
        let path = format!("issueWeights.{name:?}");
        let k = gd
            .by_name
            .get(name)
            .copied()
            .ok_or_else(|| bad(&path, format!("names an issue the domain does not have (issues: {})", names())))?;
        let w = w.num().filter(|w| *w >= 0.0).ok_or_else(|| bad(&path, "a weight is a non-negative number".into()))?;
        ws[k] = Some(w);
    }
    let mut weights = Vec::with_capacity(n);
    let mut values = Vec::with_capacity(n);
    for (k, issue) in d.issues.iter().enumerate() {
        weights.push(ws[k].ok_or_else(|| bad("issueWeights", format!("no weight for issue `{}`", issue.name())))?);
        values.push(
            fns[k].take().ok_or_else(|| bad("issueUtilities", format!("no utilities for issue `{}`", issue.name())))?,
        );
    }
    let reservation_value = match body.get("reservationBid") {
        None | Some(J::Null) => 0.0,
        Some(bid) => {
            let vals = bid
                .get("issuevalues")
                .and_then(J::obj)
                .ok_or_else(|| bad("reservationBid", "needs {\"issuevalues\": {issue: value}}".into()))?;
            let mut chosen: Vec<Option<Value>> = vec![None; n];
            for (name, v) in vals {
                let path = format!("reservationBid.issuevalues.{name:?}");
                let k = gd.by_name.get(name).copied().ok_or_else(|| {
                    bad(&path, format!("names an issue the domain does not have (issues: {})", names()))
                })?;
                chosen[k] = Some(bid_value(v, &d.issues[k], &gd.kinds[k]).map_err(|m| bad(&path, m))?);
            }
            // Σ w·f(v) in issue order, as `UtilityFunction::eval` sums.
            d.issues
                .iter()
                .zip(&weights)
                .zip(&values)
                .zip(&chosen)
                .map(|(((issue, w), f), v)| v.as_ref().map_or(0.0, |v| w * f.eval(issue, v)))
                .sum()
        }
    };
    let utility = UtilityFunction::LinearAdditive { weights, values };
    Ok(Preferences { utility, reservation_value, discount: 1.0 })
}

fn unit(x: Option<f64>, what: &str) -> Result<f64, String> {
    match x {
        Some(u) if (0.0..=1.0).contains(&u) => Ok(u),
        Some(u) => Err(format!("{what} {u} is outside [0, 1]")),
        None => Err(format!("{what} must be a number")),
    }
}

fn value_function(u: &J, issue: &Issue, kind: &Kind) -> Result<ValueFunction, String> {
    match (kind, issue, u.get("discreteutils"), u.get("numberutils")) {
        (Kind::Discrete, Issue::Discrete { values, .. }, Some(du), None) => {
            let table = du
                .get("valueUtilities")
                .and_then(J::obj)
                .ok_or("discreteutils needs {\"valueUtilities\": {value: utility}}")?;
            let mut utilities = vec![0.0; values.len()];
            let positions: HashMap<&str, usize> = values.iter().enumerate().map(|(k, v)| (v.as_str(), k)).collect();
            for (v, x) in table {
                let k =
                    positions.get(v.as_str()).copied().ok_or_else(|| format!("{v:?} is not a value of this issue"))?;
                utilities[k] = unit(x.num(), &format!("utility of {v:?}"))?;
            }
            Ok(ValueFunction::Table { utilities })
        }
        (Kind::Integers { .. } | Kind::Numbers { .. }, _, None, Some(nu)) => {
            let num =
                |key: &str| nu.get(key).and_then(J::num).ok_or_else(|| format!("numberutils needs a number `{key}`"));
            let (lv, hv) = (num("lowValue")?, num("highValue")?);
            let lu = unit(nu.get("lowUtility").and_then(J::num), "lowUtility")?;
            let hu = unit(nu.get("highUtility").and_then(J::num), "highUtility")?;
            let (low, high) = match kind {
                Kind::Integers { low, high } => (*low as f64, *high as f64),
                Kind::Numbers { low, high, .. } => (*low, *high),
                Kind::Discrete => unreachable!("matched above"),
            };
            if lv != low || hv != high {
                return Err(format!("numberutils span [{lv}, {hv}] but the domain's range is [{low}, {high}]"));
            }
            match kind {
                Kind::Integers { .. } => Ok(ValueFunction::linear_between(low, high, lu, hu)),
                Kind::Numbers { numbers, .. } => {
                    let span = hv - lv;
                    let utilities = numbers
                        .iter()
                        .map(|x| if span > 0.0 { (lu + (hu - lu) * (x - lv) / span).clamp(0.0, 1.0) } else { lu })
                        .collect();
                    Ok(ValueFunction::Table { utilities })
                }
                Kind::Discrete => unreachable!("matched above"),
            }
        }
        (Kind::Discrete, ..) => Err("a discrete issue needs {\"discreteutils\": {\"valueUtilities\": {…}}}".into()),
        _ => Err(
            "a number issue needs {\"numberutils\": {\"lowValue\", \"lowUtility\", \"highValue\", \"highUtility\"}}"
                .into(),
        ),
    }
}

/// The values of a discrete issue that a `discreteutils` table leaves out.
fn missing_values(u: &J, issue: &Issue, kind: &Kind) -> Option<String> {
    let (Kind::Discrete, Issue::Discrete { values, .. }) = (kind, issue) else { return None };
    let table = u.get("discreteutils")?.get("valueUtilities")?.obj()?;
    let keys: HashSet<&str> = table.iter().map(|(k, _)| k.as_str()).collect();
    let missing: Vec<&str> = values.iter().map(String::as_str).filter(|v| !keys.contains(v)).collect();
    (!missing.is_empty()).then(|| {
        let mut s = String::new();
        for (i, v) in missing.iter().enumerate() {
            let _ = write!(s, "{}{v:?}", if i > 0 { ", " } else { "" });
        }
        s
    })
}

fn bid_value(v: &J, issue: &Issue, kind: &Kind) -> Result<Value, String> {
    match kind {
        Kind::Discrete => {
            let J::Str(s) = v else { return Err(format!("a value of a discrete issue is a string, not {}", v.kind())) };
            let Issue::Discrete { values, .. } = issue else { unreachable!("discrete kind") };
            values
                .iter()
                .position(|x| x == s)
                .map(|k| Value::Discrete(k as u32))
                .ok_or_else(|| format!("{s:?} is not a value of this issue"))
        }
        Kind::Integers { low, high } => {
            let x = v.num().ok_or_else(|| format!("a number issue's value is a number, not {}", v.kind()))?;
            if x.fract() != 0.0 || x < *low as f64 || x > *high as f64 {
                return Err(format!("{x} is not a whole number in [{low}, {high}]"));
            }
            Ok(Value::Integer(x as i64))
        }
        Kind::Numbers { numbers, .. } => {
            let x = v.num().ok_or_else(|| format!("a number issue's value is a number, not {}", v.kind()))?;
            let tolerance = 1e-9 * x.abs().max(1.0);
            numbers
                .iter()
                .position(|y| (y - x).abs() <= tolerance)
                .map(|k| Value::Discrete(k as u32))
                .ok_or_else(|| format!("{x} is not a value of this range"))
        }
    }
}

/// What a JSON file of a GeniusWeb folder is.
enum FileKind {
    Domain(GeniusWebDomain),
    Profile(J),
}

fn classify(text: &str, file: &str) -> Result<FileKind, ScenarioError> {
    let json = parse_json(text, file)?;
    if json.get("issuesValues").is_some() {
        return Ok(FileKind::Domain(domain_of(&json, file, "")?));
    }
    profile_body(&json, file)?;
    Ok(FileKind::Profile(json))
}

/// Loads a folder of GeniusWeb JSON files (sorted by file name).
pub fn load_folder(dir: &Path, files: &[PathBuf]) -> Result<Scenario, ScenarioError> {
    let folder = dir.display().to_string();
    let mut domain: Option<(String, GeniusWebDomain)> = None;
    let mut profiles: Vec<(PathBuf, J)> = Vec::new();
    for path in files {
        let file = path.display().to_string();
        match classify(&read_text(path)?, &file)? {
            FileKind::Domain(d) => {
                if let Some((first, _)) = &domain {
                    return Err(error(
                        &folder,
                        None,
                        format!("two domain files (with \"issuesValues\"): {first} and {file}"),
                    ));
                }
                domain = Some((file, d));
            }
            FileKind::Profile(json) => profiles.push((path.clone(), json)),
        }
    }
    if profiles.len() < 2 {
        return Err(error(
            &folder,
            None,
            format!(
                "{} GeniusWeb profile file(s) ({{\"{PROFILE}\": …}}); a negotiation needs at least two",
                profiles.len()
            ),
        ));
    }
    let (domain_file, gd) = match domain {
        Some(d) => d,
        None => {
            let (path, json) = &profiles[0];
            let file = path.display().to_string();
            let embedded = profile_body(json, &file)?.get("domain").ok_or_else(|| {
                error(
                    &folder,
                    None,
                    "no GeniusWeb domain file (an object with \"issuesValues\"), and the profiles embed none",
                )
            })?;
            tracing::info!("{folder}: no domain file; using the domain embedded in {file}");
            let gd = domain_of(embedded, &file, &format!("{PROFILE}.domain."))?;
            (file, gd)
        }
    };
    let mut parties = Vec::new();
    for (path, json) in &profiles {
        parties.push((file_stem(path), profile_of(json, &path.display().to_string(), &gd)?));
    }
    let description = format!(
        "Imported from GeniusWeb JSON in {folder}: domain {}, profiles {}",
        file_stem(Path::new(&domain_file)),
        profiles.iter().map(|(p, _)| file_stem(p)).collect::<Vec<_>>().join(", ")
    );
    Ok(super::scenario(folder_name(dir), description, gd.domain, parties))
}
