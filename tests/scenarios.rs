//! The scenarios shipped in `scenarios/`: each one loads, its analysis is
//! exact and matches the README's table, and a session on it gives the same
//! result whether the parties build their own outcome indexes or share ones
//! built once (as `negotium run` does).

use std::path::PathBuf;

use negotium::core::analysis::Analysis;
use negotium::core::domain::Cardinality;
use negotium::core::scenario::Scenario;
use negotium::core::strategy::StrategySpec;
use negotium::engine::{SessionSpec, direct, shared_indexes};

const SCENARIO_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios");

/// The README's table: file stem, parties, outcomes.
const README_TABLE: &[(&str, usize, u128)] = &[
    ("startup-tech-partner", 2, 74_880),
    ("series-a", 2, 43_008),
    ("market-cooperation", 2, 120_540),
    ("data-alliance", 3, 26_400),
];

/// Every `scenarios/*.toml`, sorted by path, parsed.
fn shipped() -> Vec<(PathBuf, Scenario)> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(SCENARIO_DIR)
        .unwrap_or_else(|e| panic!("cannot read {SCENARIO_DIR}: {e}"))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no scenario in {SCENARIO_DIR}");
    paths
        .into_iter()
        .map(|path| {
            let file = path.display().to_string();
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{file}: {e}"));
            let sc = Scenario::parse(&text, &file).unwrap_or_else(|e| panic!("{e}"));
            (path, sc)
        })
        .collect()
}

fn stem(path: &std::path::Path) -> &str {
    path.file_stem().and_then(|s| s.to_str()).expect("utf-8 file name")
}

#[test]
fn every_shipped_scenario_is_in_the_readme_table() {
    let stems: Vec<String> = shipped().iter().map(|(p, _)| stem(p).to_string()).collect();
    let mut expected: Vec<&str> = README_TABLE.iter().map(|(s, _, _)| *s).collect();
    expected.sort_unstable();
    assert_eq!(stems, expected, "scenarios/ and the README table list the same files");
}

#[test]
fn shipped_scenarios_analyse_exactly_as_the_readme_says() {
    for (path, sc) in shipped() {
        let name = stem(&path);
        let &(_, parties, outcomes) = README_TABLE
            .iter()
            .find(|(s, _, _)| *s == name)
            .unwrap_or_else(|| panic!("{name} is not in the README table"));
        assert_eq!(sc.parties.len(), parties, "{name}: parties");
        assert_eq!(sc.domain.cardinality(), Cardinality::Finite(outcomes), "{name}: outcomes");

        let prefs = sc.preferences();
        let refs: Vec<&_> = prefs.iter().map(|p| p.as_ref()).collect();
        let an = Analysis::run(&sc.domain, &refs, sc.seed);
        assert!(an.exact, "{name}: an enumerable space is analysed exactly ({:?})", an.note);
        assert!(an.note.is_none(), "{name}: no note on an exact analysis: {:?}", an.note);
        assert_eq!(an.evaluated as u128, outcomes, "{name}: every outcome evaluated");
        assert_eq!(an.outcomes, outcomes.to_string(), "{name}");
        assert_eq!(an.disagreement.len(), parties, "{name}");
        assert!(!an.pareto.is_empty(), "{name}: empty Pareto frontier");
        for p in &an.pareto {
            assert_eq!(p.utilities.len(), parties, "{name}");
            for (k, (u, pref)) in p.utilities.iter().zip(&prefs).enumerate() {
                assert!(*u >= pref.reservation_value, "{name}: frontier point {p:?} is irrational for party {k}");
                // Weighted sums may pass 1 by a rounding error (1.0000000000000002).
                assert!((-1e-12..=1.0 + 1e-12).contains(u), "{name}: utility {u} outside [0, 1]");
                assert_eq!(*u, pref.utility(&sc.domain, &p.outcome), "{name}: frontier utilities match the outcome");
            }
        }
        let nash = an.nash.clone().unwrap_or_else(|| panic!("{name}: no Nash point"));
        assert!(an.is_pareto_efficient(&nash.utilities), "{name}: Nash {nash:?} is off the frontier");
        assert!(an.max_welfare.is_some() && an.kalai_smorodinsky.is_some(), "{name}");
    }
}

#[test]
fn sharing_outcome_indexes_does_not_change_results() {
    for (path, sc) in shipped() {
        let name = stem(&path);
        let prefs = sc.preferences();
        let strategies: Vec<StrategySpec> = sc.parties.iter().map(|p| p.strategy.clone()).collect();
        let own =
            SessionSpec::new(0, sc.domain.clone(), prefs.clone(), strategies, sc.deadline, sc.seed).with_trace(true);
        let mut shared = own.clone();
        shared.shared_indexes = shared_indexes(&sc.domain, &prefs);
        assert_eq!(shared.shared_indexes.len(), prefs.len(), "{name}: one shared index per party");
        assert!(shared.shared_indexes.iter().all(Option::is_some), "{name}: enumerable, so every index is built");

        let a = direct::run(&own).unwrap_or_else(|e| panic!("{name}: {e}"));
        let b = direct::run(&shared).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!a.trace.is_empty(), "{name}: the trace was recorded");
        assert_eq!(a.trace, b.trace, "{name}: traces differ with a shared index");
        assert_eq!(a, b, "{name}: results differ with a shared index");
    }
}

/// Each shipped scenario says how its deal reads (units or labels on some
/// issue), and the joint gain its default negotiation leaves is real: the
/// suggested deal is on the analysis' frontier and dominates the agreement.
#[test]
fn the_default_negotiation_explains_its_deal_and_the_joint_gain_it_missed() {
    use negotium::core::explain::Explanation;
    for (path, sc) in shipped() {
        let name = stem(&path);
        assert!(sc.presentation.issues.iter().any(|d| !d.is_plain()), "{name}: no unit or label on any issue");
        let prefs = sc.preferences();
        let refs: Vec<&_> = prefs.iter().map(|p| p.as_ref()).collect();
        let an = Analysis::run(&sc.domain, &refs, sc.seed);
        let strategies = sc.parties.iter().map(|p| p.strategy.clone()).collect();
        let spec = SessionSpec::new(0, sc.domain.clone(), prefs.clone(), strategies, sc.deadline, sc.seed);
        let r = direct::run(&spec).unwrap();
        let e = Explanation::of(&sc, &an, &r, &an.distances(&r.undiscounted));
        let deal = e.deal.as_ref().unwrap_or_else(|| panic!("{name}: the default negotiation agrees"));
        let agreement = r.agreement.as_ref().unwrap();
        for (term, (k, issue)) in deal.iter().zip(sc.domain.issues.iter().enumerate()) {
            assert_eq!(term.issue, issue.name());
            assert_eq!(term.shown, sc.presentation.value(&sc.domain, k, &agreement.0[k]));
        }
        let best = e.joint_gain.best.as_ref().unwrap_or_else(|| panic!("{name}: the default deal leaves a gain"));
        assert!(an.is_pareto_efficient(&best.utilities), "{name}: the suggestion is on the frontier");
        let got = &r.undiscounted;
        assert!(best.utilities.iter().zip(got).all(|(b, g)| *b >= g - 1e-9), "{name}: nobody worse off");
        assert!(best.gains.iter().any(|g| *g > 1e-9), "{name}: someone better off");
        assert!(!best.changes.is_empty(), "{name}: the changes are named");
        // The suggestion's utilities are its outcome's, under the scenario's own preferences.
        let outcome = sc.domain.parse_outcome(&serde_json::Value::Object(
            best.terms.iter().map(|t| (t.issue.clone(), t.value.clone())).collect(),
        ));
        let outcome = outcome.unwrap_or_else(|e| panic!("{name}: {e}"));
        for (p, u) in prefs.iter().zip(&best.utilities) {
            assert!((p.utility(&sc.domain, &outcome) - u).abs() < 1e-12, "{name}");
        }
        assert_eq!(
            e.joint_gain.improving,
            an.pareto
                .iter()
                .filter(|p| {
                    p.utilities.iter().zip(got).all(|(b, g)| *b >= g - 1e-9)
                        && p.utilities.iter().zip(got).any(|(b, g)| *b > g + 1e-9)
                })
                .count()
        );
    }
}

/// A discount changes how the built-ins decide under NegMAS's convention
/// (the default) and not under GENIUS's; without a discount the two are one.
#[test]
fn the_negmas_and_genius_conventions_differ_only_under_discount() {
    let text = |discount: f64| {
        format!(
            r#"
name = "discounted"
[protocol]
rounds = 60
[[issues]]
name = "price"
type = "integer"
min = 0
max = 30
[[issues]]
name = "term"
type = "integer"
min = 1
max = 12
[[parties]]
name = "a"
discount = {discount}
reservation = 0.1
weights = {{ price = 0.7, term = 0.3 }}
values.price = {{ linear = [1.0, 0.0] }}
values.term = {{ linear = [0.0, 1.0] }}
[[parties]]
name = "b"
discount = {discount}
reservation = 0.1
weights = {{ price = 0.4, term = 0.6 }}
values.price = {{ linear = [0.0, 1.0] }}
values.term = {{ linear = [1.0, 0.0] }}
"#
        )
    };
    let run = |discount: f64, convention: &str| {
        let sc = Scenario::parse(&text(discount), "discounted.toml").unwrap();
        let strategy = |name: &str| {
            StrategySpec::parse_cli(&format!("{{ type = \"{name}\", convention = \"{convention}\" }}")).unwrap()
        };
        let spec = SessionSpec::new(
            0,
            sc.domain.clone(),
            sc.preferences(),
            vec![strategy("boulware"), strategy("linear")],
            sc.deadline,
            1,
        )
        .with_trace(true);
        let r = direct::run(&spec).unwrap();
        let offers: Vec<_> = r.trace.iter().map(|e| (e.party, e.action.clone())).collect();
        (r.rounds, r.agreement, offers)
    };
    assert_eq!(run(1.0, "negmas"), run(1.0, "genius"), "no discount, one convention");
    assert_eq!(run(0.5, "genius"), run(1.0, "genius"), "GENIUS decides on undiscounted utility");
    let (negmas, genius) = (run(0.5, "negmas"), run(0.5, "genius"));
    assert_ne!(negmas.2, genius.2, "NegMAS's convention decides on discounted utility");
    assert!(negmas.0 > genius.0, "discounted bids ask for more: agreement later ({} vs {} rounds)", negmas.0, genius.0);
    let bad = StrategySpec::parse_cli("{ type = \"boulware\", convention = \"anac\" }").unwrap().build().err().unwrap();
    assert!(bad.to_string().contains("must be \"negmas\" or \"genius\""), "{bad}");
}
