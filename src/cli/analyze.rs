//! `negotium analyze`.

use std::path::Path;

use serde_json::json;

use super::{CliError, load_scenario};
use crate::core::analysis::Analysis;
use crate::core::domain::Cardinality;
use crate::core::record::point_json;

/// Pareto points the text report lists (`--json` has them all).
const PARETO_SHOWN: usize = 20;

/// An outcome count for JSON: a number while it fits a u64 (serde_json
/// writes it exactly; readers that parse numbers as doubles, as JavaScript
/// does, are exact up to 2^53), else the text `negotium` prints ("more than
/// 3.4e38", "infinite (real issues)"), as a JSON number could not hold it.
pub(crate) fn outcomes_json(n: &Cardinality) -> serde_json::Value {
    match *n {
        Cardinality::Finite(k) if k < u128::MAX => match u64::try_from(k) {
            Ok(k) => json!(k),
            Err(_) => json!(n.to_string()),
        },
        _ => json!(n.to_string()),
    }
}

pub fn analyze(path: &Path, as_json: bool) -> Result<(), CliError> {
    let scenario = load_scenario(path)?;
    let prefs = scenario.preferences();
    let refs: Vec<&_> = prefs.iter().map(|p| p.as_ref()).collect();
    let an = Analysis::run(&scenario.domain, &refs, scenario.seed);
    if as_json {
        let outcomes = outcomes_json(&scenario.domain.cardinality());
        let obj = json!({
            "scenario": scenario.name,
            "parties": scenario.parties.iter().map(|p| &p.name).collect::<Vec<_>>(),
            "outcomes": outcomes,
            "exact": an.exact,
            "note": an.note,
            "evaluated": an.evaluated,
            "disagreement": an.disagreement,
            "max_utilities": an.max_utilities,
            "pareto": an.pareto.iter().map(|p| &p.utilities).collect::<Vec<_>>(),
            "nash": point_json(&scenario, an.nash.as_ref()),
            "kalai_smorodinsky": point_json(&scenario, an.kalai_smorodinsky.as_ref()),
            "max_welfare": point_json(&scenario, an.max_welfare.as_ref()),
            "egalitarian": point_json(&scenario, an.egalitarian.as_ref()),
        });
        outln!("{}", serde_json::to_string(&obj)?);
        return Ok(());
    }
    let names: Vec<&str> = scenario.parties.iter().map(|p| p.name.as_str()).collect();
    outln!("{} — parties: {}", scenario.name, names.join(", "));
    outln!("outcomes:            {}", an.outcomes);
    if let Some(note) = &an.note {
        outln!("note:                {note}");
    }
    outln!("disagreement point:  {}", fmt_utils(&an.disagreement));
    outln!("Pareto frontier:     {} outcomes", an.pareto.len());
    for p in an.pareto.iter().take(PARETO_SHOWN) {
        outln!("  {}  {}", fmt_utils(&p.utilities), scenario.show(&p.outcome));
    }
    if an.pareto.len() > PARETO_SHOWN {
        outln!("  … {} more, all in --json", an.pareto.len() - PARETO_SHOWN);
    }
    for (label, p) in [
        ("Nash", &an.nash),
        ("Kalai–Smorodinsky", &an.kalai_smorodinsky),
        ("max welfare", &an.max_welfare),
        ("egalitarian", &an.egalitarian),
    ] {
        match p {
            Some(p) => outln!("{label:<20} {}  {}", fmt_utils(&p.utilities), scenario.show(&p.outcome)),
            None => outln!("{label:<20} none (no outcome is acceptable to every party)"),
        }
    }
    Ok(())
}

pub fn fmt_utils(u: &[f64]) -> String {
    let parts: Vec<String> = u.iter().map(|x| format!("{x:.4}")).collect();
    format!("({})", parts.join(", "))
}
