//! Scenario files (TOML): issues, parties with their utility functions,
//! protocol, deadline, default strategies and seed.
//!
//! Every error names the file and line, and a scenario that loads is valid:
//! weights sum to 1, value functions stay in [0, 1], strategies exist.
//!
//! ```toml
//! name = "Series-A financing"
//! seed = 7
//! [protocol]
//! rounds = 100            # and/or seconds = 30.0
//! [[issues]]
//! name = "valuation"
//! type = "integer"        # discrete (values = [...]) | integer (min, max) | real (min, max)
//! min = 8
//! max = 20
//! [[parties]]
//! name = "founder"
//! strategy = "boulware"   # or { type = "time-dependent", e = 0.5 }
//! # external = true       # played by an agent over the gRPC API (negotium serve)
//! reservation = 0.3
//! weights = { valuation = 1.0 }
//! values.valuation = { linear = [0.0, 1.0] }   # utility at min and at max
//! ```

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value as Json;
use toml::Spanned;

use super::domain::{Domain, INTEGER_BOUND, Issue};
use super::protocol::Deadline;
use super::strategy::StrategySpec;
use super::terms::{IssueDisplay, Presentation};
use super::utility::{Aggregation, HyperRectangle, Preferences, UtilityFunction, ValueFunction};

/// Weights may miss 1 by this much (rounding in hand-written files).
pub const WEIGHT_TOLERANCE: f64 = 1e-6;

#[derive(Debug, Clone, PartialEq)]
pub struct ScenarioError {
    pub file: String,
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{}: {}", self.file, l, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

impl std::error::Error for ScenarioError {}

/// One party of a scenario.
#[derive(Debug, Clone)]
pub struct Party {
    pub name: String,
    pub preferences: Arc<Preferences>,
    pub strategy: StrategySpec,
    /// Played by an agent that joins over the gRPC API (`negotium serve`);
    /// `strategy` is then only what a local run would use in its place.
    pub external: bool,
}

#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: String,
    pub description: String,
    pub domain: Arc<Domain>,
    pub parties: Vec<Party>,
    pub deadline: Deadline,
    pub seed: u64,
    /// Units and labels for people; no part of the negotiation.
    pub presentation: Presentation,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScenarioToml {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    seed: u64,
    protocol: Spanned<ProtocolToml>,
    issues: Vec<Spanned<IssueToml>>,
    parties: Vec<Spanned<PartyToml>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProtocolToml {
    #[serde(rename = "type", default = "saop")]
    kind: String,
    rounds: Option<u32>,
    seconds: Option<f64>,
}

fn saop() -> String {
    "saop".into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IssueToml {
    name: String,
    #[serde(rename = "type")]
    kind: String,
    values: Option<Vec<String>>,
    /// Kept as written: integer issues need TOML integers (a float would
    /// round bounds beyond 2^53 silently), real issues take either.
    min: Option<toml::Value>,
    max: Option<toml::Value>,
    unit: Option<String>,
    display: Option<String>,
    labels: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PartyToml {
    name: String,
    strategy: Option<Spanned<toml::Value>>,
    #[serde(default)]
    external: bool,
    #[serde(default)]
    reservation: f64,
    #[serde(default = "one")]
    discount: f64,
    #[serde(default = "linear_additive")]
    utility: String,
    weights: Option<Spanned<BTreeMap<String, f64>>>,
    values: Option<BTreeMap<String, toml::Value>>,
    aggregation: Option<String>,
    max_utility: Option<f64>,
    rectangles: Option<Vec<Spanned<RectangleToml>>>,
}

fn one() -> f64 {
    1.0
}

fn linear_additive() -> String {
    "linear-additive".into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RectangleToml {
    utility: f64,
    #[serde(default)]
    ranges: BTreeMap<String, [f64; 2]>,
    #[serde(default)]
    excludes: BTreeMap<String, [f64; 2]>,
}

/// A TOML text and its file name, for errors with `file:line` (shared by
/// every TOML format negotium reads: scenarios, tournaments).
pub(crate) struct Ctx<'a> {
    pub(crate) file: &'a str,
    pub(crate) text: &'a str,
}

impl Ctx<'_> {
    pub(crate) fn err(&self, offset: Option<usize>, message: impl Into<String>) -> ScenarioError {
        let line = offset.map(|o| self.text[..o.min(self.text.len())].matches('\n').count() + 1);
        ScenarioError { file: self.file.to_string(), line, message: message.into() }
    }
    pub(crate) fn at<T>(&self, s: &Spanned<T>, message: impl Into<String>) -> ScenarioError {
        self.err(Some(s.span().start), message)
    }
    /// toml cannot attach spans to dotted keys (`values.price = ...`), so
    /// those errors point at the first line after `from` that names `key`.
    fn near(&self, from: usize, key: &str, message: impl Into<String>) -> ScenarioError {
        let offset = self.text.get(from..).and_then(|t| t.find(key)).map(|k| from + k).unwrap_or(from);
        self.err(Some(offset), message)
    }
}

/// Where the models of `{ learned = "…" }` strategies may come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelSource<'a> {
    /// Paths, relative to the scenario file's folder: a file on this
    /// machine, read by its own user.
    Files,
    /// A remote caller's scenario: a model is a name the operator published
    /// in this folder (`--models`); `None`: the server publishes none. A
    /// model that does not load is refused without a word of why (the
    /// reason could quote the file).
    Published(Option<&'a std::path::Path>),
}

impl Scenario {
    pub fn parse(text: &str, file: &str) -> Result<Self, ScenarioError> {
        Self::parse_from(text, file, ModelSource::Files)
    }

    /// [`Scenario::parse`] with models taken from `models`.
    pub fn parse_from(text: &str, file: &str, models: ModelSource<'_>) -> Result<Self, ScenarioError> {
        let cx = Ctx { file, text };
        let raw: ScenarioToml = toml::from_str(text).map_err(|e| {
            let (offset, msg) = super::toml_error::explain(text, &e, &["rounds"]);
            cx.err(offset, msg)
        })?;

        let mut issues: Vec<Issue> = Vec::new();
        let mut displays: Vec<IssueDisplay> = Vec::new();
        let mut issue_names = HashSet::new();
        for it in &raw.issues {
            let i = it.get_ref();
            if !issue_names.insert(i.name.as_str()) {
                return Err(cx.at(it, format!("issue `{}` is defined twice", i.name)));
            }
            let issue = match i.kind.as_str() {
                "discrete" => {
                    let values = i.values.clone().filter(|v| !v.is_empty()).ok_or_else(|| {
                        cx.at(it, format!("discrete issue `{}` needs a non-empty `values` list", i.name))
                    })?;
                    let mut seen = HashSet::new();
                    if let Some(v) = values.iter().find(|v| !seen.insert(v.as_str())) {
                        return Err(cx.at(it, format!("issue `{}` lists value `{v}` twice", i.name)));
                    }
                    Issue::Discrete { name: i.name.clone(), values }
                }
                "integer" => {
                    let (Some(min), Some(max)) = (i.min.as_ref(), i.max.as_ref()) else {
                        return Err(cx.at(it, format!("integer issue `{}` needs `min` and `max`", i.name)));
                    };
                    // A whole float (`8.0`) is accepted while it is exact.
                    let whole = |v: &toml::Value| match v {
                        toml::Value::Integer(x) => Some(*x),
                        toml::Value::Float(x) if x.fract() == 0.0 && x.abs() <= INTEGER_BOUND as f64 => Some(*x as i64),
                        toml::Value::Float(x) if x.fract() == 0.0 => Some(i64::MAX),
                        _ => None,
                    };
                    let (Some(min), Some(max)) = (whole(min), whole(max)) else {
                        return Err(cx.at(it, format!("integer issue `{}` needs whole-number bounds", i.name)));
                    };
                    if min.abs() > INTEGER_BOUND || max.abs() > INTEGER_BOUND {
                        return Err(cx.at(it, format!("integer issue `{}`: bounds must lie within ±2^53", i.name)));
                    }
                    if min > max {
                        return Err(cx.at(it, format!("issue `{}`: min {min} is above max {max}", i.name)));
                    }
                    Issue::Integer { name: i.name.clone(), min, max }
                }
                "real" => {
                    let number =
                        |v: Option<&toml::Value>| v.and_then(|v| v.as_float().or(v.as_integer().map(|x| x as f64)));
                    let (Some(min), Some(max)) = (number(i.min.as_ref()), number(i.max.as_ref())) else {
                        return Err(cx.at(it, format!("real issue `{}` needs numbers `min` and `max`", i.name)));
                    };
                    if !min.is_finite() || !max.is_finite() {
                        return Err(cx.at(it, format!("issue `{}`: bounds must be finite numbers", i.name)));
                    }
                    if min >= max {
                        return Err(cx.at(it, format!("issue `{}`: min {min} is not below max {max}", i.name)));
                    }
                    Issue::Real { name: i.name.clone(), min, max }
                }
                other => {
                    return Err(
                        cx.at(it, format!("issue `{}`: unknown type `{other}` (discrete, integer, real)", i.name))
                    );
                }
            };
            issues.push(issue);
            displays.push(IssueDisplay {
                unit: i.unit.clone(),
                display: i.display.clone(),
                labels: i.labels.clone().unwrap_or_default(),
            });
        }
        if issues.is_empty() {
            return Err(cx.err(None, "a scenario needs at least one [[issues]] entry"));
        }
        let domain = Arc::new(Domain::new(raw.name.clone(), issues));
        let presentation = if displays.iter().all(IssueDisplay::is_plain) {
            Presentation::default()
        } else {
            Presentation { issues: displays }
        };
        if let Err(e) = presentation.check(&domain) {
            let at = raw.issues.iter().find(|it| e.contains(&format!("`{}`", it.get_ref().name)));
            return Err(match at {
                Some(it) => cx.at(it, e),
                None => cx.err(None, e),
            });
        }
        // Issue positions by name, once: parties name every issue twice
        // (weights and values), and a scan per name is quadratic.
        let positions: HashMap<&str, usize> = domain.issues.iter().enumerate().map(|(k, i)| (i.name(), k)).collect();

        let p = raw.protocol.get_ref();
        if p.kind != "saop" {
            return Err(cx.at(&raw.protocol, format!("unknown protocol `{}` (supported: saop)", p.kind)));
        }
        if p.rounds.is_none() && p.seconds.is_none() {
            return Err(cx.at(&raw.protocol, "the protocol needs a deadline: `rounds` and/or `seconds`"));
        }
        if p.rounds == Some(0) || p.seconds.is_some_and(|s| !(s.is_finite() && s > 0.0)) {
            return Err(cx.at(&raw.protocol, "the deadline must be a positive, finite number"));
        }
        let deadline = Deadline { rounds: p.rounds, seconds: p.seconds };

        if raw.parties.len() < 2 {
            return Err(cx.err(None, "a negotiation needs at least two [[parties]]"));
        }
        let mut parties: Vec<Party> = Vec::new();
        let mut party_names = HashSet::new();
        for sp in &raw.parties {
            let party = sp.get_ref();
            if !party_names.insert(party.name.as_str()) {
                return Err(cx.at(sp, format!("party `{}` is defined twice", party.name)));
            }
            let utility = match party.utility.as_str() {
                "linear-additive" => linear_additive_ufun(&cx, sp, &domain, &positions)?,
                "hyper-rectangles" => hyper_rectangles_ufun(&cx, sp, &domain, &positions)?,
                other => {
                    return Err(cx.at(
                        sp,
                        format!(
                            "party `{}`: unknown utility `{other}` (linear-additive, hyper-rectangles)",
                            party.name
                        ),
                    ));
                }
            };
            if !(0.0..=1.0).contains(&party.reservation) {
                return Err(
                    cx.at(sp, format!("party `{}`: reservation {} is outside [0, 1]", party.name, party.reservation))
                );
            }
            if !(party.discount > 0.0 && party.discount <= 1.0) {
                return Err(cx.at(sp, format!("party `{}`: discount {} is outside (0, 1]", party.name, party.discount)));
            }
            let strategy = match &party.strategy {
                None => StrategySpec::named("boulware"),
                Some(s) => {
                    let json = serde_json::to_value(s.get_ref()).map_err(|e| cx.at(s, e.to_string()))?;
                    let at = |e: &dyn fmt::Display| cx.at(s, format!("party `{}`: {e}", party.name));
                    let mut spec = StrategySpec::from_json(&json).map_err(|e| at(&e))?;
                    match models {
                        ModelSource::Files => {
                            spec.relative_to(std::path::Path::new(file).parent().unwrap_or(std::path::Path::new("")))
                        }
                        ModelSource::Published(dir) => spec.publish_in(dir).map_err(|e| at(&e))?,
                    }
                    match (spec.validate(), models) {
                        (Ok(()), _) => {}
                        (Err(_), ModelSource::Published(_)) if spec.name == "learned" => {
                            return Err(at(&"this model is not published here, or cannot be loaded"));
                        }
                        (Err(e), _) => return Err(at(&e)),
                    }
                    spec
                }
            };
            parties.push(Party {
                name: party.name.clone(),
                preferences: Arc::new(Preferences {
                    utility,
                    reservation_value: party.reservation,
                    discount: party.discount,
                }),
                strategy,
                external: party.external,
            });
        }
        let scenario = Scenario {
            name: raw.name,
            description: raw.description,
            domain,
            parties,
            deadline,
            seed: raw.seed,
            presentation,
        };
        // The file-level checks above give lines; this is the same check
        // every other door (imports, the cluster wire) goes through.
        scenario.check().map_err(|e| cx.err(None, e))?;
        Ok(scenario)
    }

    /// What every part of negotium relies on, whichever door a scenario came
    /// through (a TOML file, a Genius or GeniusWeb folder, a scenario sent
    /// over the cluster protocol): at least one issue and two parties,
    /// names unique, issues well-formed, a positive finite deadline, and
    /// preferences that fit the domain (one weight and value function per
    /// issue, tables as long as their issue, rectangles naming real issues,
    /// every number finite). Linear in the scenario's size.
    ///
    /// Weights that miss 1 are allowed here: GENIUS files carry them and
    /// are loaded as written, with a warning; scenario TOML refuses them
    /// itself, with a line.
    pub fn check(&self) -> Result<(), String> {
        let issues = &self.domain.issues;
        if issues.is_empty() {
            return Err("a scenario needs at least one issue".into());
        }
        let mut names = HashSet::new();
        for issue in issues {
            if !names.insert(issue.name()) {
                return Err(format!("issue `{}` is defined twice", issue.name()));
            }
            match issue {
                Issue::Discrete { name, values } => {
                    if values.is_empty() {
                        return Err(format!("discrete issue `{name}` has no values"));
                    }
                    let mut seen = HashSet::new();
                    if let Some(v) = values.iter().find(|v| !seen.insert(v.as_str())) {
                        return Err(format!("issue `{name}` lists value `{v}` twice"));
                    }
                }
                Issue::Integer { name, min, max } => {
                    if min.abs() > INTEGER_BOUND || max.abs() > INTEGER_BOUND {
                        return Err(format!("integer issue `{name}`: bounds must lie within ±2^53"));
                    }
                    if min > max {
                        return Err(format!("issue `{name}`: min {min} is above max {max}"));
                    }
                }
                Issue::Real { name, min, max } => {
                    if !(min.is_finite() && max.is_finite()) {
                        return Err(format!("issue `{name}`: bounds must be finite numbers"));
                    }
                    if min >= max {
                        return Err(format!("issue `{name}`: min {min} is not below max {max}"));
                    }
                }
            }
        }
        self.presentation.check(&self.domain)?;
        let d = self.deadline;
        if d.rounds.is_none() && d.seconds.is_none() {
            return Err("the protocol needs a deadline: rounds and/or seconds".into());
        }
        if d.rounds == Some(0) || d.seconds.is_some_and(|s| !(s.is_finite() && s > 0.0)) {
            return Err("the deadline must be a positive, finite number".into());
        }
        if self.parties.len() < 2 {
            return Err("a negotiation needs at least two parties".into());
        }
        let mut names = HashSet::new();
        for p in &self.parties {
            if !names.insert(p.name.as_str()) {
                return Err(format!("party `{}` is defined twice", p.name));
            }
            check_preferences(&self.domain, &p.preferences).map_err(|e| format!("party `{}`: {e}", p.name))?;
        }
        Ok(())
    }

    /// Replaces the strategy of the party named (or numbered) `role`; an
    /// external party then becomes local.
    pub fn set_strategy(&mut self, role: &str, spec: StrategySpec) -> Result<(), String> {
        spec.validate().map_err(|e| e.to_string())?;
        let k = self.party_position(role)?;
        self.parties[k].strategy = spec;
        self.parties[k].external = false;
        Ok(())
    }

    /// Makes `role` (a name or number) the party that opens; the others
    /// keep their order after it, wrapping around, as SAOP's turn order
    /// does.
    pub fn open_with(&mut self, role: &str) -> Result<(), String> {
        let k = self.party_position(role)?;
        self.parties.rotate_left(k);
        Ok(())
    }

    fn party_position(&self, role: &str) -> Result<usize, String> {
        let names: Vec<&str> = self.parties.iter().map(|p| p.name.as_str()).collect();
        self.parties
            .iter()
            .position(|p| p.name == role)
            .or_else(|| role.parse::<usize>().ok().filter(|&k| k < self.parties.len()))
            .ok_or_else(|| format!("no party `{role}` in this scenario; parties: {}", names.join(", ")))
    }

    /// An outcome as a person reads it, with the scenario's units and labels.
    pub fn show(&self, outcome: &super::domain::Outcome) -> String {
        self.presentation.outcome(&self.domain, outcome)
    }

    pub fn preferences(&self) -> Vec<Arc<Preferences>> {
        self.parties.iter().map(|p| p.preferences.clone()).collect()
    }
}

fn linear_additive_ufun(
    cx: &Ctx<'_>,
    sp: &Spanned<PartyToml>,
    domain: &Domain,
    positions: &HashMap<&str, usize>,
) -> Result<UtilityFunction, ScenarioError> {
    let party = sp.get_ref();
    let who = &party.name;
    if party.rectangles.is_some() || party.aggregation.is_some() || party.max_utility.is_some() {
        return Err(cx.at(
            sp,
            format!("party `{who}`: rectangles, aggregation and max_utility need utility = \"hyper-rectangles\""),
        ));
    }
    let weights = party.weights.as_ref().ok_or_else(|| cx.at(sp, format!("party `{who}` needs `weights`")))?;
    let values = party.values.as_ref().ok_or_else(|| cx.at(sp, format!("party `{who}` needs `values`")))?;
    for name in weights.get_ref().keys() {
        if !positions.contains_key(name.as_str()) {
            return Err(cx.at(weights, format!("party `{who}`: weights name unknown issue `{name}`")));
        }
    }
    let from = sp.span().start;
    for name in values.keys() {
        if !positions.contains_key(name.as_str()) {
            return Err(cx.near(from, name, format!("party `{who}`: values name unknown issue `{name}`")));
        }
    }
    let mut w = Vec::new();
    let mut fns = Vec::new();
    for issue in &domain.issues {
        let name = issue.name();
        let wi = *weights
            .get_ref()
            .get(name)
            .ok_or_else(|| cx.at(weights, format!("party `{who}` gives no weight to issue `{name}`")))?;
        if !(wi >= 0.0 && wi.is_finite()) {
            return Err(cx.at(weights, format!("party `{who}`: weight of `{name}` must be a non-negative number")));
        }
        w.push(wi);
        let vf = values
            .get(name)
            .ok_or_else(|| cx.at(sp, format!("party `{who}` gives no value function for issue `{name}`")))?;
        fns.push(value_function(cx, from, vf, issue, who)?);
    }
    let sum: f64 = w.iter().sum();
    if (sum - 1.0).abs() > WEIGHT_TOLERANCE {
        return Err(
            cx.at(weights, format!("party `{who}`: weights sum to {sum}, not 1 (utilities must lie in [0, 1])"))
        );
    }
    Ok(UtilityFunction::LinearAdditive { weights: w, values: fns })
}

fn value_function(
    cx: &Ctx<'_>,
    from: usize,
    v: &toml::Value,
    issue: &Issue,
    who: &str,
) -> Result<ValueFunction, ScenarioError> {
    let name = issue.name();
    let bad = |m: String| cx.near(from, &format!("values.{name}"), format!("party `{who}`, issue `{name}`: {m}"));
    let unit = |x: f64| -> Result<f64, ScenarioError> {
        if (0.0..=1.0).contains(&x) { Ok(x) } else { Err(bad(format!("utility {x} is outside [0, 1]"))) }
    };
    let finite = |xs: &[f64]| -> Result<(), ScenarioError> {
        if xs.iter().all(|x| x.is_finite()) { Ok(()) } else { Err(bad("numbers must be finite".into())) }
    };
    let json: Json = serde_json::to_value(v).map_err(|e| bad(e.to_string()))?;
    let table = json.as_object().ok_or_else(|| bad("a value function is a table".into()))?;
    let nums = |key: &str, n: usize| -> Result<Vec<f64>, ScenarioError> {
        let a = table.get(key).and_then(Json::as_array).ok_or_else(|| bad(format!("`{key}` needs a list")))?;
        let xs: Option<Vec<f64>> = a.iter().map(Json::as_f64).collect();
        let xs = xs.ok_or_else(|| bad(format!("`{key}` needs numbers")))?;
        if n > 0 && xs.len() != n {
            return Err(bad(format!("`{key}` needs {n} numbers")));
        }
        Ok(xs)
    };
    match issue {
        Issue::Discrete { values, .. } => {
            let known: HashSet<&str> = values.iter().map(String::as_str).collect();
            for k in table.keys() {
                if !known.contains(k.as_str()) {
                    return Err(bad(format!("`{k}` is not a value of this issue (values: {})", list_some(values))));
                }
            }
            let mut utilities = Vec::new();
            for value in values {
                let u = table
                    .get(value)
                    .and_then(Json::as_f64)
                    .ok_or_else(|| bad(format!("no utility for value `{value}`")))?;
                utilities.push(unit(u)?);
            }
            Ok(ValueFunction::Table { utilities })
        }
        _ if table.len() != 1 => Err(bad(
            "use one of: linear = [at_min, at_max], triangular = [low, peak, high], table = [...], constant = u".into(),
        )),
        _ => {
            let (lo, hi) = match issue {
                Issue::Integer { min, max, .. } => (*min as f64, *max as f64),
                Issue::Real { min, max, .. } => (*min, *max),
                Issue::Discrete { .. } => unreachable!("handled above"),
            };
            let key = table.keys().next().map(String::as_str).unwrap_or("");
            match key {
                "linear" => {
                    let xs = nums("linear", 2)?;
                    Ok(ValueFunction::linear_between(lo, hi, unit(xs[0])?, unit(xs[1])?))
                }
                "triangular" => {
                    let xs = nums("triangular", 3)?;
                    finite(&xs)?;
                    if !(xs[0] <= xs[1] && xs[1] <= xs[2] && xs[0] < xs[2]) {
                        return Err(bad("triangular needs low ≤ peak ≤ high with low < high".into()));
                    }
                    Ok(ValueFunction::Triangular { low: xs[0], peak: xs[1], high: xs[2] })
                }
                "table" => {
                    let Issue::Integer { min, max, .. } = issue else {
                        return Err(bad("a table needs an integer issue".into()));
                    };
                    let xs = nums("table", (max - min + 1) as usize)?;
                    Ok(ValueFunction::Table { utilities: xs.into_iter().map(unit).collect::<Result<_, _>>()? })
                }
                "constant" => {
                    let u = table["constant"].as_f64().ok_or_else(|| bad("`constant` needs a number".into()))?;
                    Ok(ValueFunction::Constant { utility: unit(u)? })
                }
                other => Err(bad(format!(
                    "unknown value function `{other}` (linear = [at_min, at_max], triangular = [low, peak, high], table = [...], constant = u)"
                ))),
            }
        }
    }
}

fn hyper_rectangles_ufun(
    cx: &Ctx<'_>,
    sp: &Spanned<PartyToml>,
    _domain: &Domain,
    positions: &HashMap<&str, usize>,
) -> Result<UtilityFunction, ScenarioError> {
    let party = sp.get_ref();
    let who = &party.name;
    let aggregation = match party.aggregation.as_deref().unwrap_or("sum") {
        "sum" => Aggregation::Sum,
        "min" => Aggregation::Min,
        "max" => Aggregation::Max,
        other => return Err(cx.at(sp, format!("party `{who}`: unknown aggregation `{other}` (sum, min, max)"))),
    };
    let rects = party
        .rectangles
        .as_ref()
        .filter(|r| !r.is_empty())
        .ok_or_else(|| cx.at(sp, format!("party `{who}` needs [[parties.rectangles]]")))?;
    let mut rectangles = Vec::new();
    for r in rects {
        let conv = |m: &BTreeMap<String, [f64; 2]>| -> Result<Vec<(usize, f64, f64)>, ScenarioError> {
            m.iter()
                .map(|(name, [lo, hi])| {
                    let k = positions
                        .get(name.as_str())
                        .copied()
                        .ok_or_else(|| cx.at(r, format!("party `{who}`: rectangle names unknown issue `{name}`")))?;
                    Ok((k, *lo, *hi))
                })
                .collect()
        };
        let rect = r.get_ref();
        let numbers = rect.ranges.values().chain(rect.excludes.values()).flatten().chain([&rect.utility]);
        if numbers.into_iter().any(|x| !x.is_finite()) {
            return Err(cx.at(r, format!("party `{who}`: rectangle numbers must be finite")));
        }
        if let Some((name, [lo, hi])) = rect.ranges.iter().chain(&rect.excludes).find(|(_, [lo, hi])| lo > hi) {
            return Err(cx.at(r, format!("party `{who}`: range of `{name}` has min {lo} above max {hi}")));
        }
        let includes = conv(&rect.ranges)?;
        let excludes = conv(&rect.excludes)?;
        rectangles.push(HyperRectangle { utility: rect.utility, includes, excludes });
    }
    let max_utility = match party.max_utility {
        Some(m) if m > 0.0 && m.is_finite() => m,
        Some(m) => return Err(cx.at(sp, format!("party `{who}`: max_utility {m} must be a positive number"))),
        None => match aggregation {
            Aggregation::Sum => rectangles.iter().map(|r| r.utility.max(0.0)).sum(),
            _ => rectangles.iter().map(|r| r.utility).fold(0.0, f64::max),
        },
    };
    Ok(UtilityFunction::HyperRectangles { rectangles, aggregation, max_utility })
}

/// Up to 20 names, then how many there are in all (error messages quote
/// lists that may be huge).
fn list_some(names: &[String]) -> String {
    const SHOWN: usize = 20;
    let head = names.iter().take(SHOWN).map(String::as_str).collect::<Vec<_>>().join(", ");
    if names.len() > SHOWN { format!("{head}, … ({} in all)", names.len()) } else { head }
}

/// The part of [`Scenario::check`] about one party's preferences.
fn check_preferences(domain: &Domain, p: &Preferences) -> Result<(), String> {
    if !(p.reservation_value.is_finite() && (0.0..=1.0).contains(&p.reservation_value)) {
        return Err(format!("reservation {} is outside [0, 1]", p.reservation_value));
    }
    if !(p.discount > 0.0 && p.discount <= 1.0) {
        return Err(format!("discount {} is outside (0, 1]", p.discount));
    }
    let issues = &domain.issues;
    let finite = |xs: &[f64], what: &str| -> Result<(), String> {
        if xs.iter().all(|x| x.is_finite()) { Ok(()) } else { Err(format!("{what}: numbers must be finite")) }
    };
    match &p.utility {
        UtilityFunction::LinearAdditive { weights, values } => {
            if weights.len() != issues.len() || values.len() != issues.len() {
                return Err(format!(
                    "{} weights and {} value functions for {} issues",
                    weights.len(),
                    values.len(),
                    issues.len()
                ));
            }
            if let Some(w) = weights.iter().find(|w| !(w.is_finite() && **w >= 0.0)) {
                return Err(format!("weight {w} is not a non-negative number"));
            }
            for (f, issue) in values.iter().zip(issues) {
                let name = issue.name();
                match f {
                    ValueFunction::Table { utilities } => {
                        let expected = match issue {
                            Issue::Real { .. } => {
                                return Err(format!("issue `{name}` is real: a table cannot value it"));
                            }
                            _ => issue.cardinality().unwrap_or(0),
                        };
                        if utilities.len() as u128 != expected {
                            return Err(format!(
                                "issue `{name}` has {expected} values but its table {} entries",
                                utilities.len()
                            ));
                        }
                        if let Some(u) = utilities.iter().find(|u| !(u.is_finite() && (0.0..=1.0).contains(*u))) {
                            return Err(format!("issue `{name}`: utility {u} is outside [0, 1]"));
                        }
                    }
                    ValueFunction::Linear { slope, offset, origin } => {
                        finite(&[*slope, *offset, *origin], &format!("issue `{name}`"))?
                    }
                    ValueFunction::Triangular { low, peak, high } => {
                        finite(&[*low, *peak, *high], &format!("issue `{name}`"))?;
                        if !(low <= peak && peak <= high && low < high) {
                            return Err(format!("issue `{name}`: triangular needs low ≤ peak ≤ high with low < high"));
                        }
                    }
                    ValueFunction::Constant { utility } => {
                        if !(utility.is_finite() && (0.0..=1.0).contains(utility)) {
                            return Err(format!("issue `{name}`: utility {utility} is outside [0, 1]"));
                        }
                    }
                }
            }
        }
        UtilityFunction::HyperRectangles { rectangles, max_utility, .. } => {
            if rectangles.is_empty() {
                return Err("a hyper-rectangle utility needs rectangles".into());
            }
            if !(max_utility.is_finite() && *max_utility > 0.0) {
                return Err(format!("max_utility {max_utility} must be a positive number"));
            }
            for r in rectangles {
                finite(&[r.utility], "a rectangle's utility")?;
                for &(k, lo, hi) in r.includes.iter().chain(&r.excludes) {
                    if k >= issues.len() {
                        return Err(format!("a rectangle names issue {k}; the domain has {}", issues.len()));
                    }
                    finite(&[lo, hi], "a rectangle's range")?;
                    if lo > hi {
                        return Err(format!(
                            "a rectangle's range of `{}` has min {lo} above max {hi}",
                            issues[k].name()
                        ));
                    }
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name = "toy"
seed = 3
[protocol]
rounds = 20
[[issues]]
name = "price"
type = "integer"
min = 0
max = 10
[[issues]]
name = "color"
type = "discrete"
values = ["red", "blue"]
[[parties]]
name = "buyer"
strategy = "conceder"
reservation = 0.2
weights = { price = 0.6, color = 0.4 }
values.price = { linear = [1.0, 0.0] }
values.color = { red = 1.0, blue = 0.0 }
[[parties]]
name = "seller"
strategy = { type = "time-dependent", e = 0.5 }
weights = { price = 0.5, color = 0.5 }
values.price = { linear = [0.0, 1.0] }
values.color = { red = 0.3, blue = 1.0 }
"#;

    #[test]
    fn parses_a_valid_scenario() {
        let s = Scenario::parse(GOOD, "toy.toml").unwrap();
        assert_eq!(s.parties.len(), 2);
        assert_eq!(s.deadline, Deadline::rounds(20));
        assert_eq!(s.parties[1].strategy.to_string(), "time-dependent(e=0.5)");
        let o = s.domain.outcome_at(0);
        assert!((s.parties[0].preferences.utility(&s.domain, &o) - 1.0).abs() < 1e-12);
    }

    fn error_of(text: &str) -> ScenarioError {
        Scenario::parse(text, "bad.toml").unwrap_err()
    }

    #[test]
    fn weights_not_summing_to_one_are_refused_with_a_line() {
        let e = error_of(&GOOD.replace("price = 0.6, color = 0.4", "price = 0.6, color = 0.5"));
        assert!(e.message.contains("sum to 1.1"), "{e}");
        assert_eq!(e.line, Some(19));
        assert!(e.to_string().starts_with("bad.toml:19: "));
    }

    #[test]
    fn missing_and_unknown_issues_are_named() {
        let e = error_of(&GOOD.replace("weights = { price = 0.6, color = 0.4 }", "weights = { price = 1.0 }"));
        assert!(e.message.contains("no weight to issue `color`"), "{e}");
        let e = error_of(&GOOD.replace("values.color = { red = 1.0, blue = 0.0 }", "values.colour = { red = 1.0 }"));
        assert!(e.message.contains("unknown issue `colour`"), "{e}");
    }

    #[test]
    fn unknown_strategy_lists_valid_ones_and_syntax_errors_have_lines() {
        let e = error_of(&GOOD.replace("strategy = \"conceder\"", "strategy = \"smart\""));
        assert!(e.message.contains("unknown strategy `smart`") && e.message.contains("boulware"), "{e}");
        assert_eq!(e.line, Some(17));
        let e = error_of(&GOOD.replace("rounds = 20", "rounds = = 20"));
        assert_eq!(e.line, Some(5), "{e}");
    }

    #[test]
    fn check_refuses_what_the_wire_could_carry_and_files_cannot() {
        let good = Scenario::parse(GOOD, "toy.toml").unwrap();
        assert!(good.check().is_ok());
        let mut s = good.clone();
        s.parties.clear();
        assert!(s.check().unwrap_err().contains("two parties"));
        let mut s = good.clone();
        let mut p = (*s.parties[0].preferences).clone();
        if let UtilityFunction::LinearAdditive { weights, .. } = &mut p.utility {
            weights[0] = f64::NAN;
        }
        s.parties[0].preferences = Arc::new(p);
        assert!(s.check().unwrap_err().contains("non-negative"), "{:?}", s.check());
        let mut s = good.clone();
        let mut p = (*s.parties[1].preferences).clone();
        if let UtilityFunction::LinearAdditive { values, .. } = &mut p.utility {
            values[1] = ValueFunction::Table { utilities: vec![] };
        }
        s.parties[1].preferences = Arc::new(p);
        assert!(s.check().unwrap_err().contains("its table 0 entries"), "{:?}", s.check());
        let mut s = good.clone();
        s.domain = Arc::new(Domain::new("d", vec![Issue::Integer { name: "price".into(), min: 5, max: 1 }]));
        assert!(s.check().is_err());
        let mut s = good.clone();
        s.deadline = Deadline { rounds: None, seconds: None };
        assert!(s.check().unwrap_err().contains("deadline"));
        let mut s = good;
        s.parties[0].preferences = Arc::new(Preferences::new(
            UtilityFunction::HyperRectangles {
                rectangles: vec![HyperRectangle { utility: 1.0, includes: vec![(9, 0.0, 1.0)], excludes: vec![] }],
                aggregation: Aggregation::Sum,
                max_utility: 1.0,
            },
            0.0,
        ));
        assert!(s.check().unwrap_err().contains("names issue 9"), "{:?}", s.check());
    }

    #[test]
    fn parsing_is_linear_in_the_number_of_values() {
        // 200,000 values of one discrete issue: a scan per value (as
        // before) is 2·10^10 string comparisons per party, minutes even in
        // a release build; hashing takes seconds in a debug build. The
        // bound is far from both.
        let n = 200_000;
        let values: Vec<String> = (0..n).map(|k| format!("\"v{k}\"")).collect();
        let table: Vec<String> = (0..n).map(|k| format!("v{k} = {}", if k == 0 { 1.0 } else { 0.0 })).collect();
        let text = format!(
            "name = \"wide\"\n[protocol]\nrounds = 10\n[[issues]]\nname = \"x\"\ntype = \"discrete\"\nvalues = [{}]\n\
             [[parties]]\nname = \"a\"\nweights = {{ x = 1.0 }}\nvalues.x = {{ {} }}\n\
             [[parties]]\nname = \"b\"\nweights = {{ x = 1.0 }}\nvalues.x = {{ {} }}\n",
            values.join(","),
            table.join(", "),
            table.join(", ")
        );
        let started = std::time::Instant::now();
        let s = Scenario::parse(&text, "wide.toml").unwrap();
        assert_eq!(s.domain.issues[0].cardinality(), Some(n as u128));
        assert!(started.elapsed() < std::time::Duration::from_secs(120), "{:?}", started.elapsed());
    }

    #[test]
    fn value_out_of_range_and_missing_deadline() {
        let e = error_of(&GOOD.replace("red = 1.0, blue = 0.0", "red = 1.5, blue = 0.0"));
        assert!(e.message.contains("outside [0, 1]"), "{e}");
        let e = error_of(&GOOD.replace("rounds = 20", ""));
        assert!(e.message.contains("needs a deadline"), "{e}");
    }
}
