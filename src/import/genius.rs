//! Genius XML: a domain (`negotiation_template`) and its profiles
//! (`utility_space`), with GENIUS' semantics.
//!
//! - Issue type: `type`, else `vtype`, else `etype`, else discrete.
//! - Discrete evaluations are divided by the issue's largest evaluation
//!   (`EvaluatorDiscrete`); an issue whose evaluations are all zero (largest
//!   below GENIUS' 1e-5 threshold) is refused, see the module doc of
//!   [`crate::import`].
//! - Integer issues: `offset + slope·(x − lowerbound)` clamped to [0, 1]
//!   (`EvaluatorInteger`), as [`ValueFunction::Linear`] with origin `lowerbound`.
//! - Real issues (`EvaluatorReal`): `linear` is `parameter1·x + parameter0`
//!   clamped to [0, 1] (origin 0, not the lower bound); `constant` is
//!   `parameter0`; `triangular` rises from `parameter0` to its top at
//!   `parameter2` and falls to `parameter1`.
//! - `discount_factor` outside (0, 1] means no discount (GENIUS'
//!   `validateDiscount`); `reservation` defaults to 0 and must lie in [0, 1].
//! - Nonlinear (ANAC 2014): `utility maxutility` › `ufun aggregation` ›
//!   `hyperRectangle utility`. A rectangle with `INCLUDES` pays when every
//!   bound holds; one with `EXCLUDES` pays when any bound is violated (GENIUS'
//!   `ExclusiveHyperRectangle`, which then ignores its `INCLUDES`). The latter
//!   is split into disjoint rectangles — "bound 1 violated", "bound 1 holds and
//!   bound 2 violated", … — which pay exactly the same under every
//!   aggregation. Bounds name issues by their XML `index`. Nested `ufun`s and
//!   weights other than 1 are refused as unsupported.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use roxmltree::{Document, Node};

use super::{error, file_stem, folder_name, read_text};
use crate::core::domain::{Domain, INTEGER_BOUND, Issue};
use crate::core::scenario::{Scenario, ScenarioError};
use crate::core::utility::{Aggregation, HyperRectangle, Preferences, UtilityFunction, ValueFunction};

/// Largest evaluation GENIUS still divides by (`EvaluatorDiscrete.normalize`).
const GENIUS_MIN_MAX_EVALUATION: f64 = 0.00001;

/// A parsed Genius domain file.
#[derive(Debug, Clone)]
pub struct GeniusDomain {
    pub domain: Domain,
    /// `index` attributes of objectives (weights may name them; ignored).
    objective_indexes: Vec<i64>,
    /// Issue position by XML `index` attribute, and by name.
    by_index: HashMap<i64, usize>,
    by_name: HashMap<String, usize>,
}

impl GeniusDomain {
    fn position_of_index(&self, index: i64) -> Option<usize> {
        self.by_index.get(&index).copied()
    }
    fn position_of_name(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).copied()
    }
}

/// Position of each value of a discrete issue.
fn value_positions(values: &[String]) -> HashMap<&str, usize> {
    values.iter().enumerate().map(|(k, v)| (v.as_str(), k)).collect()
}

/// Where errors point: the file and a line.
struct Cx<'a, 'input> {
    file: &'a str,
    doc: &'a Document<'input>,
}

impl Cx<'_, '_> {
    fn at(&self, node: Node<'_, '_>, message: impl AsRef<str>) -> ScenarioError {
        let line = self.doc.text_pos_at(node.range().start).row as usize;
        error(self.file, Some(line), format!("{}: {}", describe(node), message.as_ref()))
    }

    fn attr<'n>(&self, node: Node<'n, '_>, name: &str) -> Result<&'n str, ScenarioError> {
        node.attribute(name).ok_or_else(|| self.at(node, format!("missing attribute `{name}`")))
    }

    fn number(&self, node: Node<'_, '_>, name: &str) -> Result<f64, ScenarioError> {
        let text = self.attr(node, name)?;
        parse_f64(text).ok_or_else(|| self.at(node, format!("`{name}` must be a finite number, not {text:?}")))
    }

    fn integer(&self, node: Node<'_, '_>, name: &str) -> Result<i64, ScenarioError> {
        let text = self.attr(node, name)?;
        text.trim()
            .parse::<i64>()
            .ok()
            .filter(|x| x.abs() <= INTEGER_BOUND)
            .ok_or_else(|| self.at(node, format!("`{name}` must be an integer within ±2^53, not {text:?}")))
    }
}

fn parse_f64(text: &str) -> Option<f64> {
    text.trim().parse::<f64>().ok().filter(|x| x.is_finite())
}

/// `<issue name="Price" index="1">`: the tag and the attributes that identify it.
fn describe(node: Node<'_, '_>) -> String {
    if !node.is_element() {
        return "document".into();
    }
    let mut s = format!("<{}", node.tag_name().name());
    for key in ["name", "index", "value", "ftype"] {
        if let Some(v) = node.attribute(key) {
            let v: String = v.chars().take(60).collect();
            s.push_str(&format!(" {key}={v:?}"));
        }
    }
    s.push('>');
    s
}

fn elements<'a, 'input>(node: Node<'a, 'input>, tag: &'a str) -> impl Iterator<Item = Node<'a, 'input>> + 'a {
    node.children().filter(move |c| c.is_element() && c.tag_name().name() == tag)
}

fn child<'a, 'input>(node: Node<'a, 'input>, tag: &'a str) -> Option<Node<'a, 'input>> {
    elements(node, tag).next()
}

fn parse_xml<'input>(text: &'input str, file: &str) -> Result<Document<'input>, ScenarioError> {
    Document::parse(text).map_err(|e| error(file, Some(e.pos().row as usize), format!("malformed XML: {e}")))
}

fn issue_type<'a>(node: Node<'a, '_>) -> &'a str {
    node.attribute("type").or_else(|| node.attribute("vtype")).or_else(|| node.attribute("etype")).unwrap_or("discrete")
}

/// Parses a domain file (root `negotiation_template`).
pub fn parse_domain(text: &str, file: &str) -> Result<GeniusDomain, ScenarioError> {
    let doc = parse_xml(text, file)?;
    let cx = Cx { file, doc: &doc };
    let root = doc.root_element();
    if root.tag_name().name() != "negotiation_template" {
        return Err(cx.at(root, "a Genius domain file has the root element <negotiation_template>"));
    }
    let space = child(root, "utility_space").ok_or_else(|| cx.at(root, "no <utility_space> element"))?;
    let objective = child(space, "objective").ok_or_else(|| cx.at(space, "no <objective> element"))?;
    let mut objective_indexes: Vec<i64> =
        objective.attribute("index").and_then(|i| i.trim().parse().ok()).into_iter().collect();
    if let Some(nested) = child(objective, "objective") {
        return Err(cx.at(nested, "unsupported: nested objectives (only issues directly under the root objective)"));
    }
    let mut issues: Vec<Issue> = Vec::new();
    let mut by_index = HashMap::new();
    let mut by_name = HashMap::new();
    for node in elements(objective, "issue") {
        let name = cx.attr(node, "name")?.to_string();
        if by_name.insert(name.clone(), issues.len()).is_some() {
            return Err(cx.at(node, format!("issue `{name}` is defined twice")));
        }
        let index = match node.attribute("index") {
            Some(_) => Some(cx.integer(node, "index")?),
            None => None,
        };
        if let Some(i) = index
            && by_index.insert(i, issues.len()).is_some()
        {
            return Err(cx.at(node, "two issues have this index"));
        }
        let issue = match issue_type(node) {
            "discrete" => {
                let mut values: Vec<String> = Vec::new();
                let mut seen: HashSet<&str> = HashSet::new();
                for item in elements(node, "item") {
                    let v = cx.attr(item, "value")?;
                    if !seen.insert(v) {
                        return Err(cx.at(item, format!("value `{v}` is listed twice")));
                    }
                    values.push(v.to_string());
                }
                if values.is_empty() {
                    return Err(cx.at(node, "a discrete issue needs at least one <item value=…>"));
                }
                Issue::Discrete { name, values }
            }
            "integer" => {
                let (min, max) = (cx.integer(node, "lowerbound")?, cx.integer(node, "upperbound")?);
                if min > max {
                    return Err(cx.at(node, format!("lowerbound {min} is above upperbound {max}")));
                }
                Issue::Integer { name, min, max }
            }
            "real" => {
                let bounds = child(node, "range").unwrap_or(node);
                let (min, max) = (cx.number(bounds, "lowerbound")?, cx.number(bounds, "upperbound")?);
                if min >= max {
                    return Err(cx.at(bounds, format!("lowerbound {min} is not below upperbound {max}")));
                }
                Issue::Real { name, min, max }
            }
            other => {
                return Err(cx.at(node, format!("unsupported issue type `{other}` (discrete, integer, real)")));
            }
        };
        issues.push(issue);
    }
    if issues.is_empty() {
        return Err(cx.at(objective, "the domain has no <issue>"));
    }
    objective_indexes.sort_unstable();
    let name = objective.attribute("name").unwrap_or("").to_string();
    Ok(GeniusDomain { domain: Domain::new(name, issues), objective_indexes, by_index, by_name })
}

/// Parses a profile file (root `utility_space`) against its domain.
pub fn parse_profile(text: &str, file: &str, domain: &GeniusDomain) -> Result<Preferences, ScenarioError> {
    let doc = parse_xml(text, file)?;
    let cx = Cx { file, doc: &doc };
    let root = doc.root_element();
    if root.tag_name().name() != "utility_space" {
        return Err(cx.at(root, "a Genius profile has the root element <utility_space>"));
    }
    let objective = child(root, "objective").ok_or_else(|| cx.at(root, "no <objective> element"))?;
    let find = |tag: &'static str| child(root, tag).or_else(|| child(objective, tag));
    let reservation_value = match find("reservation") {
        Some(node) => {
            let r = cx.number(node, "value")?;
            if !(0.0..=1.0).contains(&r) {
                return Err(cx.at(node, format!("reservation value {r} is outside [0, 1]")));
            }
            r
        }
        None => 0.0,
    };
    let discount = match find("discount_factor") {
        Some(node) => {
            let d = cx.number(node, "value")?;
            if d > 0.0 && d <= 1.0 {
                d
            } else {
                if d != 0.0 {
                    tracing::warn!("{file}: discount factor {d} is outside [0, 1]; no discount, as in GENIUS");
                }
                1.0
            }
        }
        None => 1.0,
    };
    let utility = match root.attribute("type") {
        None | Some("linear") | Some("additive") | Some("linearadditive") => linear_additive(&cx, objective, domain)?,
        Some("nonlinear") => hyper_rectangles(&cx, objective, domain)?,
        Some(other) => {
            return Err(cx.at(
                root,
                format!(
                    "unsupported: profile type `{other}` (supported: linear-additive and nonlinear hyper-rectangle profiles; uncertain and constraint profiles are not)"
                ),
            ));
        }
    };
    Ok(Preferences { utility, reservation_value, discount })
}

fn linear_additive(
    cx: &Cx<'_, '_>,
    objective: Node<'_, '_>,
    gd: &GeniusDomain,
) -> Result<UtilityFunction, ScenarioError> {
    let d = &gd.domain;
    let n = d.issues.len();
    if let Some(nested) = child(objective, "objective") {
        return Err(cx.at(nested, "unsupported: nested objectives"));
    }
    if let Some(u) = child(objective, "utility") {
        return Err(cx.at(u, "a <utility> (hyper-rectangle) profile needs type=\"nonlinear\" on <utility_space>"));
    }
    // Profile issues, matched to the domain by name (by index where unnamed).
    let mut issue_nodes: Vec<Option<Node<'_, '_>>> = vec![None; n];
    let mut profile_index: HashMap<i64, usize> = HashMap::new();
    for node in elements(objective, "issue") {
        let k = match node.attribute("name") {
            Some(name) => gd.position_of_name(name).ok_or_else(|| {
                cx.at(node, format!("names an issue the domain does not have (issues: {})", issue_names(d)))
            })?,
            None => {
                let index = cx.integer(node, "index")?;
                gd.position_of_index(index).ok_or_else(|| cx.at(node, "no issue of the domain has this index"))?
            }
        };
        if issue_nodes[k].is_some() {
            return Err(cx.at(node, format!("issue `{}` is evaluated twice", d.issues[k].name())));
        }
        if node.attribute("index").is_some() {
            profile_index.insert(cx.integer(node, "index")?, k);
        }
        issue_nodes[k] = Some(node);
    }
    let mut weights: Vec<Option<f64>> = vec![None; n];
    for node in elements(objective, "weight") {
        let index = cx.integer(node, "index")?;
        let k = profile_index.get(&index).copied().or_else(|| gd.position_of_index(index));
        let Some(k) = k else {
            let objective_index = objective.attribute("index").and_then(|i| i.trim().parse::<i64>().ok());
            if objective_index == Some(index) || gd.objective_indexes.binary_search(&index).is_ok() {
                continue; // the weight of the objective itself (y2012 Fitness): no issue
            }
            return Err(cx.at(node, "names no issue of the domain"));
        };
        let w = cx.number(node, "value")?;
        if w < 0.0 {
            return Err(cx.at(node, format!("weight {w} is negative")));
        }
        if weights[k].replace(w).is_some() {
            return Err(cx.at(node, format!("issue `{}` has two weights", d.issues[k].name())));
        }
    }
    let mut ws = Vec::with_capacity(n);
    let mut fns = Vec::with_capacity(n);
    for (k, issue) in d.issues.iter().enumerate() {
        let node = issue_nodes[k]
            .ok_or_else(|| cx.at(objective, format!("no <issue> evaluates issue `{}` of the domain", issue.name())))?;
        ws.push(weights[k].ok_or_else(|| cx.at(objective, format!("no <weight> for issue `{}`", issue.name())))?);
        fns.push(evaluator(cx, node, issue)?);
    }
    Ok(UtilityFunction::LinearAdditive { weights: ws, values: fns })
}

fn issue_names(d: &Domain) -> String {
    d.issues.iter().map(|i| i.name()).collect::<Vec<_>>().join(", ")
}

fn evaluator(cx: &Cx<'_, '_>, node: Node<'_, '_>, issue: &Issue) -> Result<ValueFunction, ScenarioError> {
    match issue {
        Issue::Discrete { values, .. } => {
            let mut evals: Vec<Option<f64>> = vec![None; values.len()];
            let positions = value_positions(values);
            for item in elements(node, "item") {
                let v = cx.attr(item, "value")?;
                let k = positions.get(v).copied().ok_or_else(|| {
                    cx.at(item, format!("`{v}` is not a value of issue `{}` in the domain", issue.name()))
                })?;
                let Some(text) = item.attribute("evaluation").filter(|t| *t != "null") else { continue };
                let e = parse_f64(text)
                    .ok_or_else(|| cx.at(item, format!("`evaluation` must be a finite number, not {text:?}")))?;
                if e < 0.0 {
                    return Err(cx.at(item, format!("evaluation {e} is negative")));
                }
                if evals[k].replace(e).is_some() {
                    return Err(cx.at(item, format!("value `{v}` is evaluated twice")));
                }
            }
            let mut es = Vec::with_capacity(values.len());
            for (v, e) in values.iter().zip(&evals) {
                es.push(e.ok_or_else(|| cx.at(node, format!("value `{v}` has no evaluation")))?);
            }
            let max = es.iter().copied().fold(0.0, f64::max);
            if max < GENIUS_MIN_MAX_EVALUATION {
                return Err(cx.at(
                    node,
                    format!(
                        "every evaluation of issue `{}` is 0 (largest {max}): utilities are evaluations divided by the largest one, which is undefined here",
                        issue.name()
                    ),
                ));
            }
            Ok(ValueFunction::Table { utilities: es.iter().map(|e| e / max).collect() })
        }
        Issue::Integer { min, .. } => {
            let ev = child(node, "evaluator").ok_or_else(|| cx.at(node, "an integer issue needs an <evaluator>"))?;
            if let Some(t) = ev.attribute("ftype").filter(|t| !t.eq_ignore_ascii_case("linear")) {
                return Err(cx.at(ev, format!("unsupported: ftype `{t}` on an integer issue (linear)")));
            }
            let origin = match node.attribute("lowerbound") {
                Some(_) => cx.integer(node, "lowerbound")?,
                None => *min,
            };
            Ok(ValueFunction::Linear {
                slope: cx.number(ev, "slope")?,
                offset: cx.number(ev, "offset")?,
                origin: origin as f64,
            })
        }
        Issue::Real { .. } => {
            let ev = child(node, "evaluator").ok_or_else(|| cx.at(node, "a real issue needs an <evaluator>"))?;
            let ftype = cx.attr(ev, "ftype")?.to_ascii_lowercase();
            match ftype.as_str() {
                "linear" => Ok(ValueFunction::Linear {
                    slope: cx.number(ev, "parameter1")?,
                    offset: cx.number(ev, "parameter0")?,
                    origin: 0.0,
                }),
                "constant" => {
                    let u = cx.number(ev, "parameter0")?;
                    if !(0.0..=1.0).contains(&u) {
                        return Err(cx.at(ev, format!("constant utility {u} is outside [0, 1]")));
                    }
                    Ok(ValueFunction::Constant { utility: u })
                }
                "triangular" => {
                    let (low, high, peak) =
                        (cx.number(ev, "parameter0")?, cx.number(ev, "parameter1")?, cx.number(ev, "parameter2")?);
                    if !(low <= peak && peak <= high && low < high) {
                        return Err(cx.at(
                            ev,
                            format!("triangular needs parameter0 (low {low}) ≤ parameter2 (top {peak}) ≤ parameter1 (high {high}), low < high"),
                        ));
                    }
                    Ok(ValueFunction::Triangular { low, peak, high })
                }
                other => Err(cx.at(ev, format!("unsupported: ftype `{other}` (linear, constant, triangular)"))),
            }
        }
    }
}

/// One `INCLUDES`/`EXCLUDES` bound: issue position, min, max.
type Bound = (usize, f64, f64);

fn hyper_rectangles(
    cx: &Cx<'_, '_>,
    objective: Node<'_, '_>,
    gd: &GeniusDomain,
) -> Result<UtilityFunction, ScenarioError> {
    let d = &gd.domain;
    let utility =
        child(objective, "utility").ok_or_else(|| cx.at(objective, "a nonlinear profile needs a <utility> element"))?;
    let max_utility = cx.number(utility, "maxutility")?;
    if max_utility <= 0.0 {
        return Err(cx.at(utility, format!("maxutility {max_utility} must be positive")));
    }
    let ufun = child(utility, "ufun").ok_or_else(|| cx.at(utility, "no <ufun> element"))?;
    if let Some(inner) = child(ufun, "ufun") {
        return Err(cx.at(inner, "unsupported: nested <ufun>"));
    }
    if let Some(w) = ufun.attribute("weight").filter(|w| parse_f64(w) != Some(1.0)) {
        return Err(cx.at(ufun, format!("unsupported: ufun weight {w} (only 1)")));
    }
    let aggregation = match ufun.attribute("aggregation").unwrap_or("sum").to_ascii_lowercase().as_str() {
        "sum" => Aggregation::Sum,
        "min" => Aggregation::Min,
        "max" => Aggregation::Max,
        other => return Err(cx.at(ufun, format!("unsupported aggregation `{other}` (sum, min, max)"))),
    };
    let bound = |node: Node<'_, '_>| -> Result<Bound, ScenarioError> {
        let index = cx.integer(node, "index")?;
        let k = gd.position_of_index(index).ok_or_else(|| cx.at(node, "no issue of the domain has this index"))?;
        if matches!(d.issues[k], Issue::Discrete { .. }) {
            return Err(cx.at(node, format!("unsupported: a bound on discrete issue `{}`", d.issues[k].name())));
        }
        Ok((k, cx.number(node, "min")?, cx.number(node, "max")?))
    };
    let mut rectangles = Vec::new();
    for rect in elements(ufun, "hyperRectangle") {
        let u = cx.number(rect, "utility")?;
        if let Some(w) = rect.attribute("weight").filter(|w| parse_f64(w) != Some(1.0)) {
            return Err(cx.at(rect, format!("unsupported: hyperRectangle weight {w} (only 1)")));
        }
        let includes: Vec<Bound> = elements(rect, "INCLUDES").map(bound).collect::<Result<_, _>>()?;
        let excludes: Vec<Bound> = elements(rect, "EXCLUDES").map(bound).collect::<Result<_, _>>()?;
        if excludes.is_empty() {
            rectangles.extend(rectangle(d, u, &includes, None));
        } else {
            if !includes.is_empty() {
                tracing::warn!(
                    "{}: {} has both INCLUDES and EXCLUDES; GENIUS uses the EXCLUDES only, and so does this import",
                    cx.file,
                    describe(rect)
                );
            }
            // Pays when any bound is violated: split into disjoint pieces.
            for j in 0..excludes.len() {
                rectangles.extend(rectangle(d, u, &excludes[..j], Some(excludes[j])));
            }
        }
    }
    if rectangles.is_empty() {
        return Err(cx.at(ufun, "no <hyperRectangle> that an outcome can fall into"));
    }
    Ok(UtilityFunction::HyperRectangles { rectangles, aggregation, max_utility })
}

/// A rectangle over the intersection of `includes` (None where empty: it
/// never pays) that also avoids `exclude`. Bounds are merged per issue and
/// sorted by issue name, as scenario TOML writes them, so that a written and
/// re-read profile is equal to the imported one.
fn rectangle(d: &Domain, utility: f64, includes: &[Bound], exclude: Option<Bound>) -> Option<HyperRectangle> {
    let mut merged: Vec<Bound> = Vec::new();
    for &(k, lo, hi) in includes {
        match merged.iter_mut().find(|b| b.0 == k) {
            Some(b) => *b = (k, b.1.max(lo), b.2.min(hi)),
            None => merged.push((k, lo, hi)),
        }
    }
    if merged.iter().any(|b| b.1 > b.2) {
        return None;
    }
    let by_name = |a: &Bound, b: &Bound| d.issues[a.0].name().cmp(d.issues[b.0].name());
    merged.sort_by(by_name);
    // An excluded range that is empty excludes nothing.
    let excludes: Vec<Bound> = exclude.into_iter().filter(|b| b.1 <= b.2).collect();
    Some(HyperRectangle { utility, includes: merged, excludes })
}

/// Loads a folder of Genius XML files (sorted by file name).
pub fn load_folder(dir: &Path, files: &[PathBuf]) -> Result<Scenario, ScenarioError> {
    let folder = dir.display().to_string();
    let mut domain: Option<(String, String)> = None;
    let mut profiles: Vec<(PathBuf, String)> = Vec::new();
    for path in files {
        let file = path.display().to_string();
        let text = read_text(path)?;
        if !text.trim_start().starts_with('<') {
            tracing::warn!("{file}: not an XML document (no leading `<`); skipped");
            continue;
        }
        let doc = parse_xml(&text, &file)?;
        let root = doc.root_element();
        match root.tag_name().name() {
            "negotiation_template" => {
                if let Some((first, _)) = &domain {
                    return Err(error(
                        &folder,
                        None,
                        format!("two domain files (<negotiation_template>): {first} and {file}"),
                    ));
                }
                drop(doc);
                domain = Some((file, text));
            }
            "utility_space" => {
                drop(doc);
                profiles.push((path.clone(), text));
            }
            other => {
                let cx = Cx { file: &file, doc: &doc };
                return Err(cx.at(
                    root,
                    format!("root element <{other}> is neither <negotiation_template> (a domain) nor <utility_space> (a profile)"),
                ));
            }
        }
    }
    let Some((domain_file, domain_text)) = domain else {
        return Err(error(&folder, None, "no Genius domain file (an XML file whose root is <negotiation_template>)"));
    };
    if profiles.len() < 2 {
        return Err(error(
            &folder,
            None,
            format!(
                "{} profile file(s) (<utility_space>) next to {domain_file}; a negotiation needs at least two",
                profiles.len()
            ),
        ));
    }
    let gd = parse_domain(&domain_text, &domain_file)?;
    let mut parties = Vec::new();
    for (path, text) in &profiles {
        let prefs = parse_profile(text, &path.display().to_string(), &gd)?;
        parties.push((file_stem(path), prefs));
    }
    let name = folder_name(dir);
    let description = format!(
        "Imported from Genius XML in {folder}: domain {}, profiles {}",
        file_stem(Path::new(&domain_file)),
        profiles.iter().map(|(p, _)| file_stem(p)).collect::<Vec<_>>().join(", ")
    );
    Ok(super::scenario(name, description, gd.domain, parties))
}
