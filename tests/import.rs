//! Genius XML and GeniusWeb JSON importers, on the ANAC files researchers
//! have (`../shared/data`, skipped with a message where absent) and on broken
//! ones:
//!
//! (a) every real folder loads or is refused with a reason, none panics;
//! (b) the analysis of four real domains equals a brute force written here
//!     straight from the XML numbers (GENIUS semantics);
//! (c) bad input is exit code 2 from `negotium run/analyze/import`, with a
//!     message naming the file and the element;
//! (d) fuzzing: arbitrary bytes and mutated real files never panic;
//! (e) import → TOML → parse gives the same domain and the same utility bits,
//!     on every loadable real domain.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use negotium::core::analysis::Analysis;
use negotium::core::domain::{Cardinality, Issue, Outcome, Value};
use negotium::core::scenario::{Scenario, ScenarioError};
use negotium::core::utility::{Aggregation, UtilityFunction, ValueFunction};
use negotium::import::toml_out::{ExportOptions, check_round_trip, to_toml};
use negotium::import::{decode, genius, geniusweb, load_any};
use proptest::prelude::any;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data");
const BIN: &str = env!("CARGO_BIN_EXE_negotium");

fn data() -> Option<PathBuf> {
    let p = PathBuf::from(DATA);
    if p.is_dir() {
        Some(p)
    } else {
        eprintln!("SKIPPED: {DATA} is absent (the ANAC test data lives next to the repository, not in it)");
        None
    }
}

/// Every directory under `root` (itself included), sorted.
fn dirs(root: &Path) -> Vec<PathBuf> {
    let mut out = vec![root.to_path_buf()];
    let mut i = 0;
    while i < out.len() {
        let mut subs: Vec<PathBuf> =
            std::fs::read_dir(&out[i]).unwrap().map(|e| e.unwrap().path()).filter(|p| p.is_dir()).collect();
        subs.sort();
        out.extend(subs);
        i += 1;
    }
    out.sort();
    out
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).filter(|p| p.is_file()).collect();
    v.sort();
    v
}

/// A domain folder: one that directly holds `.xml` or `.json` files.
fn is_domain_folder(dir: &Path) -> bool {
    files_in(dir).iter().any(|p| p.extension().is_some_and(|e| e == "xml" || e == "json"))
}

fn rel(p: &Path) -> String {
    p.strip_prefix(DATA).unwrap_or(p).display().to_string()
}

/// A refusal, by its reason.
fn reason(e: &ScenarioError) -> &'static str {
    let m = &e.message;
    if m.contains("every evaluation") {
        "an issue whose evaluations are all zero"
    } else if m.contains("unsupported") {
        "unsupported"
    } else if m.contains("malformed") {
        "malformed"
    } else {
        "other"
    }
}

/// Every loadable real scenario, by folder (relative path).
fn load_all(root: &Path) -> (BTreeMap<String, Scenario>, BTreeMap<String, ScenarioError>) {
    let mut ok = BTreeMap::new();
    let mut refused = BTreeMap::new();
    for dir in dirs(root).into_iter().filter(|d| is_domain_folder(d)) {
        match load_any(&dir) {
            Ok(s) => {
                ok.insert(rel(&dir), s);
            }
            Err(e) => {
                refused.insert(rel(&dir), e);
            }
        }
    }
    (ok, refused)
}

// ---------------------------------------------------------------- (a) ----

#[test]
fn every_real_folder_loads_or_is_refused_with_a_reason() {
    let Some(root) = data() else { return };
    let mut loaded = Vec::new();
    let mut refused: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut containers = 0;
    for dir in dirs(&root) {
        let result = std::panic::catch_unwind(|| load_any(&dir));
        let result = result.unwrap_or_else(|_| panic!("{} panicked", dir.display()));
        if !is_domain_folder(&dir) {
            // genius/, genius/y2010, …: only folders (or a README) inside.
            let e = result.err().unwrap_or_else(|| panic!("{} loaded without files", dir.display()));
            assert!(e.message.contains("not a Genius or GeniusWeb domain folder"), "{e}");
            containers += 1;
            continue;
        }
        match result {
            Ok(s) => {
                assert!(s.parties.len() >= 2, "{}", dir.display());
                assert_eq!(s.domain.name, s.name);
                loaded.push((rel(&dir), s));
            }
            Err(e) => {
                assert!(e.to_string().starts_with(&e.file), "{e}");
                assert!(e.message.len() > 20, "a reason: {e}");
                eprintln!("refused {}: {e}", rel(&dir));
                refused.entry(reason(&e)).or_default().push(rel(&dir));
            }
        }
    }
    // Single files are not scenarios: each is refused (with a hint), none panics.
    let mut files = 0;
    for dir in dirs(&root) {
        for f in files_in(&dir) {
            let r = std::panic::catch_unwind(|| load_any(&f)).unwrap_or_else(|_| panic!("{} panicked", f.display()));
            let e = r.err().unwrap_or_else(|| panic!("{} loaded as a scenario", f.display()));
            if f.extension().is_some_and(|x| x == "xml" || x == "json") {
                assert!(e.message.contains("pass the folder"), "{e}");
            }
            files += 1;
        }
    }
    let genius = loaded.iter().filter(|(r, _)| r.starts_with("genius/")).count();
    let web = loaded.iter().filter(|(r, _)| r.starts_with("geniusweb/")).count();
    let parties: usize = loaded.iter().map(|(_, s)| s.parties.len()).sum();
    let hyper = loaded
        .iter()
        .filter(|(_, s)| matches!(s.parties[0].preferences.utility, UtilityFunction::HyperRectangles { .. }))
        .count();
    println!("ANAC data: {files} files in {} folders", dirs(&root).len());
    println!(
        "domain folders: {} loaded ({genius} Genius, {web} GeniusWeb; {parties} parties; {hyper} hyper-rectangle), {} refused, {containers} container folders refused as empty",
        loaded.len(),
        refused.values().map(Vec::len).sum::<usize>()
    );
    for (why, list) in &refused {
        println!("refused because of {why}: {}", list.join(", "));
    }
    assert_eq!(files, 527 + 12 + 1, "527 XML, 12 JSON and the README");
    assert_eq!((genius, web), (142, 4));
    assert_eq!(parties, 371);
    assert_eq!(hyper, 12);
    assert_eq!(containers, 10);
    assert_eq!(
        refused,
        BTreeMap::from([(
            "an issue whose evaluations are all zero",
            vec!["genius/y2015/group4-zoning_plan".to_string()]
        )])
    );
}

#[test]
fn the_all_zero_issue_of_zoning_plan_is_named_with_file_and_line() {
    let Some(root) = data() else { return };
    let e = load_any(&root.join("genius/y2015/group4-zoning_plan")).unwrap_err();
    assert!(e.file.ends_with("Group4_util1.xml"), "{e}");
    assert!(e.line.is_some(), "{e}");
    assert!(e.message.contains("<issue name=\"Park\""), "{e}");
    assert!(e.message.contains("every evaluation of issue `Park` is 0"), "{e}");
}

#[test]
fn forty_issue_hyper_rectangle_domains_load_without_enumerating() {
    let Some(root) = data() else { return };
    let t = std::time::Instant::now();
    let s = load_any(&root.join("genius/y2014/50issuesDiscountedwithRV")).unwrap();
    assert!(t.elapsed().as_secs_f64() < 2.0);
    assert_eq!(s.domain.issues.len(), 40, "the \"50issues\" files hold 40 issues");
    assert_eq!(s.domain.cardinality(), Cardinality::Finite(u128::MAX), "10^40 saturates u128");
    let p = &s.parties[0].preferences;
    assert_eq!((p.reservation_value, p.discount), (0.75, 0.5));
    let UtilityFunction::HyperRectangles { rectangles, aggregation, max_utility } = &p.utility else { panic!() };
    assert_eq!(*aggregation, Aggregation::Sum);
    assert!(*max_utility > 0.0 && !rectangles.is_empty());
    // The last rectangle of profile-1: utility 68, INCLUDES index=29 (issue 28, "c1-i12") 3..9.
    let last = rectangles.last().unwrap();
    assert_eq!(last.utility, 68.0);
    assert_eq!(last.includes, vec![(28, 3.0, 9.0)]);
    assert_eq!(s.domain.issues[28].name(), "c1-i12");
    let an = Analysis::run(&s.domain, &s.preferences().iter().map(|p| p.as_ref()).collect::<Vec<_>>(), 0);
    assert!(!an.exact && an.note.unwrap().contains("approximate"));
}

// ---------------------------------------------------------------- (b) ----

/// A brute force straight from the XML numbers: no library code.
mod brute {
    use roxmltree::{Document, Node};

    fn kids<'a, 'i>(n: Node<'a, 'i>, tag: &'a str) -> impl Iterator<Item = Node<'a, 'i>> {
        n.children().filter(move |c| c.tag_name().name() == tag)
    }

    pub struct Party {
        /// utility of every outcome, last issue fastest
        pub utils: Vec<f64>,
        pub rv: f64,
    }

    /// Issues (name, values) of a domain file.
    pub fn domain(text: &str) -> Vec<(String, Vec<String>)> {
        let doc = Document::parse(text).unwrap();
        let obj = kids(kids(doc.root_element(), "utility_space").next().unwrap(), "objective").next().unwrap();
        kids(obj, "issue")
            .map(|i| {
                let vals = kids(i, "item").map(|it| it.attribute("value").unwrap().to_string()).collect();
                (i.attribute("name").unwrap().to_string(), vals)
            })
            .collect()
    }

    pub fn party(text: &str, issues: &[(String, Vec<String>)]) -> Party {
        let doc = Document::parse(text).unwrap();
        let root = doc.root_element();
        let obj = kids(root, "objective").next().unwrap();
        let rv = kids(root, "reservation").next().map_or(0.0, |r| r.attribute("value").unwrap().parse().unwrap());
        // per issue: weight and evaluation / max evaluation per value
        let mut tables: Vec<(f64, Vec<f64>)> = Vec::new();
        for (name, values) in issues {
            let node = kids(obj, "issue").find(|i| i.attribute("name") == Some(name)).unwrap();
            let index = node.attribute("index").unwrap();
            let w: f64 = kids(obj, "weight")
                .find(|w| w.attribute("index") == Some(index))
                .unwrap()
                .attribute("value")
                .unwrap()
                .parse()
                .unwrap();
            let evals: Vec<f64> = values
                .iter()
                .map(|v| {
                    let item = kids(node, "item").find(|it| it.attribute("value") == Some(v)).unwrap();
                    item.attribute("evaluation").unwrap().parse().unwrap()
                })
                .collect();
            let max = evals.iter().copied().fold(f64::MIN, f64::max);
            tables.push((w, evals.iter().map(|e| e / max).collect()));
        }
        let n: usize = issues.iter().map(|(_, v)| v.len()).product();
        let mut utils = Vec::with_capacity(n);
        for k in 0..n {
            let mut rest = k;
            let mut idx = vec![0; issues.len()];
            for i in (0..issues.len()).rev() {
                idx[i] = rest % issues[i].1.len();
                rest /= issues[i].1.len();
            }
            utils.push(tables.iter().zip(&idx).map(|((w, t), &j)| w * t[j]).sum());
        }
        Party { utils, rv }
    }

    pub struct Expected {
        pub outcomes: usize,
        pub pareto: Vec<Vec<f64>>,
        /// every frontier point maximising the Nash product (within 1e-12)
        pub nash: Vec<Vec<f64>>,
        pub ks: Vec<Vec<f64>>,
        pub nash_score: f64,
        pub ks_score: f64,
    }

    pub fn analyse(parties: &[Party]) -> Expected {
        let n = parties[0].utils.len();
        let u = |k: usize| parties.iter().map(|p| p.utils[k]).collect::<Vec<f64>>();
        let d: Vec<f64> = parties.iter().map(|p| p.rv.max(p.utils.iter().copied().fold(f64::MAX, f64::min))).collect();
        let hi: Vec<f64> = parties.iter().map(|p| p.utils.iter().copied().fold(f64::MIN, f64::max)).collect();
        let grid = |x: f64| (x * 1e9).round() as i64;
        let rational: Vec<usize> = (0..n).filter(|&k| parties.iter().all(|p| p.utils[k] >= p.rv)).collect();
        let dominates = |a: &[f64], b: &[f64]| {
            a.iter().zip(b).all(|(x, y)| grid(*x) >= grid(*y)) && a.iter().zip(b).any(|(x, y)| grid(*x) > grid(*y))
        };
        let front: Vec<Vec<f64>> =
            rational.iter().map(|&k| u(k)).filter(|a| !rational.iter().any(|&j| dominates(&u(j), a))).collect();
        let nash_of = |a: &[f64]| a.iter().zip(&d).map(|(x, dp)| (x - dp).max(0.0)).product::<f64>();
        let ks_of = |a: &[f64]| {
            let r: Vec<f64> =
                a.iter().zip(&d).zip(&hi).map(|((x, dp), h)| if h > dp { (x - dp) / (h - dp) } else { 1.0 }).collect();
            r.iter().copied().fold(f64::MIN, f64::max) - r.iter().copied().fold(f64::MAX, f64::min)
        };
        let nash_score = front.iter().map(|a| nash_of(a)).fold(f64::MIN, f64::max);
        let ks_score = front.iter().map(|a| ks_of(a)).fold(f64::MAX, f64::min);
        Expected {
            outcomes: n,
            nash: front.iter().filter(|a| nash_of(a) >= nash_score - 1e-12).cloned().collect(),
            ks: front.iter().filter(|a| ks_of(a) <= ks_score + 1e-12).cloned().collect(),
            pareto: front,
            nash_score,
            ks_score,
        }
    }
}

/// GENIUS semantics, checked against the brute force and against the
/// numbers measured once. Offline cross-check: NegMAS 0.16's parse of the
/// same folders (weights, raw evaluations, reservation values), with each
/// issue divided by its largest evaluation by hand (NegMAS does not), gives
/// the same outcome counts, frontier sizes and Nash points.
#[test]
fn analysis_of_real_domains_matches_a_brute_force_from_the_xml() {
    let Some(root) = data() else { return };
    // folder, domain file, outcomes, Pareto size, Nash, Kalai–Smorodinsky
    #[allow(clippy::type_complexity)]
    let cases: &[(&str, &str, usize, usize, [f64; 2], [f64; 2])] = &[
        (
            "genius/y2010/ItexvsCypress",
            "ItexvsCypress_domain.xml",
            180,
            18,
            [0.6704784151387018, 0.7214778614020514],
            [0.6704784151387018, 0.7214778614020514],
        ),
        (
            "genius/y2010/EnglandZimbabwe",
            "EnglandZimbabwe_domain.xml",
            576,
            25,
            [0.9109162864320959, 0.7332182800675319],
            [0.8222863965160295, 0.7865697962902025],
        ),
        (
            "genius/y2012/CameraB",
            "Camera-B-domain.xml",
            3600,
            16,
            [0.8206512605042018, 0.8907000000000002],
            [0.8394012605042017, 0.8183714285714286],
        ),
        (
            "genius/y2012/AirportSiteSelectionA",
            "AirportSiteSelection-A-domain.xml",
            420,
            17,
            [0.9, 0.7261904761904762],
            [0.8, 0.7817460317460317],
        ),
    ];
    for (folder, domain_file, outcomes, pareto, nash, ks) in cases {
        let dir = root.join(folder);
        let s = load_any(&dir).unwrap();
        let issues = brute::domain(&std::fs::read_to_string(dir.join(domain_file)).unwrap());
        let parties: Vec<brute::Party> = s
            .parties
            .iter()
            .map(|p| {
                let f = files_in(&dir).into_iter().find(|f| f.file_stem().unwrap() == p.name.as_str()).unwrap();
                brute::party(&std::fs::read_to_string(f).unwrap(), &issues)
            })
            .collect();
        let want = brute::analyse(&parties);
        let prefs = s.preferences();
        let refs: Vec<&_> = prefs.iter().map(|p| p.as_ref()).collect();
        let an = Analysis::run(&s.domain, &refs, 0);
        assert!(an.exact);
        // Utilities of every outcome, straight from the XML, bit for bit.
        for (p, b) in prefs.iter().zip(&parties) {
            let all = p.utility.utilities_of_all(&s.domain).unwrap();
            for (k, (x, y)) in all.iter().zip(&b.utils).enumerate() {
                assert!((x - y).abs() <= 1e-15, "{folder} outcome {k}: {x} vs {y}");
            }
            assert_eq!(p.reservation_value, b.rv);
        }
        let got_pareto: Vec<Vec<f64>> = an.pareto.iter().map(|p| p.utilities.clone()).collect();
        let close = |a: &[f64], b: &[f64]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-9);
        assert_eq!(got_pareto.len(), want.pareto.len(), "{folder}: Pareto size");
        for p in &got_pareto {
            assert!(want.pareto.iter().any(|q| close(p, q)), "{folder}: {p:?} is not on the brute-force frontier");
        }
        let got_nash = an.nash.as_ref().unwrap().utilities.clone();
        let got_ks = an.kalai_smorodinsky.as_ref().unwrap().utilities.clone();
        assert!(want.nash.iter().any(|q| close(&got_nash, q)), "{folder}: Nash {got_nash:?} vs {:?}", want.nash);
        assert!(want.ks.iter().any(|q| close(&got_ks, q)), "{folder}: KS {got_ks:?} vs {:?}", want.ks);
        println!(
            "{folder}: {} outcomes, Pareto {}, Nash {:?} (product {:.6}), KS {:?} (spread {:.6}), disagreement {:?}",
            want.outcomes,
            want.pareto.len(),
            got_nash,
            want.nash_score,
            got_ks,
            want.ks_score,
            an.disagreement
        );
        assert_eq!(an.outcomes, outcomes.to_string(), "{folder}");
        assert_eq!(want.outcomes, *outcomes, "{folder}");
        assert_eq!(want.pareto.len(), *pareto, "{folder}");
        assert!(close(&got_nash, nash), "{folder}: Nash {got_nash:?}");
        assert!(close(&got_ks, ks), "{folder}: KS {got_ks:?}");
    }
}

// ---------------------------------------------------------------- (c) ----

fn negotium(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN).args(args).env("NEGOTIUM_LOG", "warn").output().expect("run negotium");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const DOMAIN_XML: &str = r#"<negotiation_template>
<utility_space number_of_issues="2">
<objective index="0" name="root" type="objective" etype="objective">
  <issue index="1" name="Color" type="discrete">
    <item index="1" value="red"/>
    <item index="2" value="blue"/>
  </issue>
  <issue index="2" name="Size" type="integer" lowerbound="1" upperbound="5"/>
</objective>
</utility_space>
</negotiation_template>
"#;

fn profile_xml(color_evals: (&str, &str), size: (&str, &str), weights: (&str, &str)) -> String {
    format!(
        r#"<utility_space>
<objective index="0" name="root" type="objective" etype="objective">
  <issue index="1" name="Color" type="discrete">
    <item index="1" value="red" evaluation="{}"/>
    <item index="2" value="blue" evaluation="{}"/>
  </issue>
  <issue index="2" name="Size" type="integer" lowerbound="1" upperbound="5">
    <evaluator ftype="linear" slope="{}" offset="{}"/>
  </issue>
  <weight index="1" value="{}"/>
  <weight index="2" value="{}"/>
</objective>
<discount_factor value="0.9"/>
<reservation value="0.25"/>
</utility_space>
"#,
        color_evals.0, color_evals.1, size.0, size.1, weights.0, weights.1
    )
}

fn folder(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

fn good_genius() -> tempfile::TempDir {
    folder(&[
        ("toy_domain.xml", DOMAIN_XML),
        ("buyer.xml", &profile_xml(("10", "5"), ("-0.25", "1.0"), ("0.6", "0.4"))),
        ("seller.xml", &profile_xml(("2", "8"), ("0.3", "0.0"), ("0.3", "0.7"))),
    ])
}

#[test]
fn a_small_genius_folder_has_genius_semantics() {
    let dir = good_genius();
    let s = load_any(dir.path()).unwrap();
    assert_eq!(s.parties.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), ["buyer", "seller"], "file-name order");
    assert_eq!(s.parties[0].strategy.to_string(), "boulware");
    assert_eq!(s.deadline.rounds, Some(100));
    assert_eq!(s.seed, 0);
    let b = &s.parties[0].preferences;
    assert_eq!((b.reservation_value, b.discount), (0.25, 0.9));
    let UtilityFunction::LinearAdditive { weights, values } = &b.utility else { panic!() };
    assert_eq!(weights, &[0.6, 0.4]);
    assert_eq!(values[0], ValueFunction::Table { utilities: vec![1.0, 0.5] }, "evaluations ÷ largest");
    assert_eq!(values[1], ValueFunction::Linear { slope: -0.25, offset: 1.0, origin: 1.0 });
    let o = Outcome::from(vec![Value::Discrete(1), Value::Integer(3)]);
    assert_eq!(b.utility(&s.domain, &o), 0.6 * 0.5 + 0.4 * (1.0 - 0.25 * 2.0));
    // The seller's integer evaluator is clamped to [0, 1]: 0.3·(5 − 1) = 1.2 counts as 1.
    let sl = &s.parties[1].preferences;
    let top = Outcome::from(vec![Value::Discrete(1), Value::Integer(5)]);
    assert_eq!(sl.utility(&s.domain, &top), 0.3 + 0.7);
}

fn assert_bad_input(dir: &Path, file: &str, element: &str) {
    let path = dir.to_str().unwrap();
    let out = dir.join("out.toml");
    for args in [vec!["analyze", path], vec!["run", path], vec!["import", path, "-o", out.to_str().unwrap()]] {
        let (code, _, err) = negotium(&args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(file), "{args:?} should name {file}: {err}");
        assert!(err.contains(element), "{args:?} should name {element}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    assert!(!out.exists());
}

#[test]
fn malformed_xml_is_exit_2_naming_file_and_line() {
    let dir = good_genius();
    std::fs::write(dir.path().join("seller.xml"), "<utility_space>\n<objective>\n<issue name=\"Color\">\n</objective>")
        .unwrap();
    assert_bad_input(dir.path(), "seller.xml:4:", "malformed XML");
}

#[test]
fn a_profile_naming_an_unknown_issue_is_exit_2() {
    let dir = good_genius();
    let bad = profile_xml(("1", "2"), ("0.1", "0.0"), ("0.5", "0.5")).replace("name=\"Color\"", "name=\"Colour\"");
    std::fs::write(dir.path().join("seller.xml"), bad).unwrap();
    assert_bad_input(
        dir.path(),
        "seller.xml:3:",
        "<issue name=\"Colour\" index=\"1\">: names an issue the domain does not have",
    );
}

#[test]
fn an_issue_whose_evaluations_are_all_zero_is_exit_2() {
    let dir = good_genius();
    std::fs::write(dir.path().join("seller.xml"), profile_xml(("0", "0.0"), ("0.1", "0.0"), ("0.5", "0.5"))).unwrap();
    assert_bad_input(dir.path(), "seller.xml:3:", "every evaluation of issue `Color` is 0");
    if let Some(root) = data() {
        let zoning = root.join("genius/y2015/group4-zoning_plan");
        let (code, _, err) = negotium(&["analyze", zoning.to_str().unwrap()]);
        assert_eq!(code, 2);
        assert!(err.contains("Group4_util1.xml:") && err.contains("<issue name=\"Park\""), "{err}");
    }
}

#[test]
fn an_empty_folder_and_missing_files_are_exit_2() {
    let dir = folder(&[("notes.txt", "nothing here")]);
    assert_bad_input(dir.path(), &dir.path().display().to_string(), "it holds 1 other file");
    let dir = folder(&[("toy_domain.xml", DOMAIN_XML)]);
    assert_bad_input(dir.path(), &dir.path().display().to_string(), "0 profile file(s)");
    let dir = folder(&[
        ("a.xml", &profile_xml(("1", "2"), ("0.1", "0.0"), ("0.5", "0.5"))),
        ("b.xml", &profile_xml(("1", "2"), ("0.1", "0.0"), ("0.5", "0.5"))),
    ]);
    assert_bad_input(dir.path(), &dir.path().display().to_string(), "no Genius domain file");
    let dir = folder(&[("a.xml", DOMAIN_XML), ("b.json", "{}")]);
    assert_bad_input(dir.path(), &dir.path().display().to_string(), "mixes Genius XML");
    let (code, _, err) = negotium(&["analyze", "/nonexistent/folder"]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn unsupported_profiles_say_so() {
    let dir = good_genius();
    let uncertain = profile_xml(("1", "2"), ("0.1", "0.0"), ("0.5", "0.5"))
        .replace("<utility_space>", "<utility_space type=\"uncertain\">");
    std::fs::write(dir.path().join("seller.xml"), uncertain).unwrap();
    assert_bad_input(dir.path(), "seller.xml:1:", "unsupported: profile type `uncertain`");
    let dir = web_folder();
    std::fs::write(dir.path().join("b.json"), r#"{"DefaultPartialOrdering": {"name": "b"}}"#).unwrap();
    assert_bad_input(dir.path(), "b.json", "unsupported: GeniusWeb profile type `DefaultPartialOrdering`");
}

const WEB_DOMAIN: &str = r#"{"name": "toy", "issuesValues": {
  "zeta": {"values": ["x", "y", "z"]},
  "alpha": {"range": [1, 5, 1]},
  "price": {"range": {"low": 0, "high": 1, "step": 0.25}}
}}"#;

fn web_profile(name: &str, zeta: [f64; 3], weights: [f64; 3], bid: &str) -> String {
    format!(
        r#"{{"LinearAdditiveUtilitySpace": {{"name": "{name}",
  "issueUtilities": {{
    "zeta": {{"discreteutils": {{"valueUtilities": {{"x": {}, "y": {}, "z": {}}}}}}},
    "alpha": {{"numberutils": {{"lowValue": 1, "lowUtility": 0.2, "highValue": 5, "highUtility": 1.0}}}},
    "price": {{"numberutils": {{"lowValue": 0, "lowUtility": 1.0, "highValue": 1, "highUtility": 0.0}}}}
  }},
  "issueWeights": {{"zeta": {}, "alpha": {}, "price": {}}},
  "reservationBid": {{"issuevalues": {bid}}}
}}}}"#,
        zeta[0], zeta[1], zeta[2], weights[0], weights[1], weights[2]
    )
}

fn web_folder() -> tempfile::TempDir {
    folder(&[
        ("toy.json", WEB_DOMAIN),
        ("a.json", &web_profile("a", [1.0, 0.5, 0.0], [0.5, 0.25, 0.25], r#"{"zeta": "y", "alpha": 3, "price": 0.5}"#)),
        ("b.json", &web_profile("b", [0.0, 0.4, 0.9], [0.2, 0.3, 0.5], r#"{"zeta": "x"}"#)),
    ])
}

#[test]
fn a_small_geniusweb_folder_keeps_issue_order_and_models_ranges() {
    let dir = web_folder();
    let s = load_any(dir.path()).unwrap();
    let names: Vec<&str> = s.domain.issues.iter().map(Issue::name).collect();
    assert_eq!(names, ["zeta", "alpha", "price"], "file order, not sorted");
    assert_eq!(s.domain.issues[1], Issue::Integer { name: "alpha".into(), min: 1, max: 5 });
    let Issue::Discrete { values, .. } = &s.domain.issues[2] else { panic!("{:?}", s.domain.issues[2]) };
    assert_eq!(values, &["0.00", "0.25", "0.50", "0.75", "1.00"]);
    let a = &s.parties[0].preferences;
    let UtilityFunction::LinearAdditive { values: fs, .. } = &a.utility else { panic!() };
    assert_eq!(fs[2], ValueFunction::Table { utilities: vec![1.0, 0.75, 0.5, 0.25, 0.0] });
    // Reservation value = utility of the reservation bid.
    let bid = Outcome::from(vec![Value::Discrete(1), Value::Integer(3), Value::Discrete(2)]);
    assert_eq!(a.reservation_value, a.utility(&s.domain, &bid));
    assert!((a.reservation_value - (0.5 * 0.5 + 0.25 * 0.6 + 0.25 * 0.5)).abs() < 1e-15);
    // A partial bid counts only the issues it names.
    assert_eq!(s.parties[1].preferences.reservation_value, 0.0);
    // Round trip.
    let text = to_toml(&s, &ExportOptions::default()).unwrap();
    let back = check_round_trip(&s, &text, "toy.toml").unwrap();
    assert_eq!(back.parties[0].preferences, s.parties[0].preferences);
}

#[test]
fn bad_geniusweb_files_are_exit_2_naming_file_and_element() {
    let dir = web_folder();
    std::fs::write(dir.path().join("b.json"), "{\"LinearAdditiveUtilitySpace\": {\n  \"name\": \"b\",\n}").unwrap();
    assert_bad_input(dir.path(), "b.json:3:", "malformed JSON");
    let dir = web_folder();
    let bad =
        web_profile("b", [0.0, 0.4, 0.9], [0.2, 0.3, 0.5], "{}").replace("\"zeta\": {\"disc", "\"zita\": {\"disc");
    std::fs::write(dir.path().join("b.json"), bad).unwrap();
    assert_bad_input(
        dir.path(),
        "b.json",
        "LinearAdditiveUtilitySpace.issueUtilities.\"zita\": names an issue the domain does not have",
    );
    let dir = web_folder();
    std::fs::write(dir.path().join("b.json"), web_profile("b", [0.0, 1.5, 0.9], [0.2, 0.3, 0.5], "{}")).unwrap();
    assert_bad_input(dir.path(), "b.json", "utility of \"y\" 1.5 is outside [0, 1]");
}

// The weights choice: as written, with a warning; export refuses unless told.
#[test]
fn weights_that_miss_one_load_as_written_and_export_only_when_renormalised() {
    let dir = folder(&[
        ("toy_domain.xml", DOMAIN_XML),
        ("buyer.xml", &profile_xml(("10", "5"), ("-0.25", "1.0"), ("0.6", "0.5"))),
        ("seller.xml", &profile_xml(("2", "8"), ("0.25", "0.0"), ("0.3", "0.7"))),
    ]);
    let s = load_any(dir.path()).unwrap();
    let UtilityFunction::LinearAdditive { weights, .. } = &s.parties[0].preferences.utility else { panic!() };
    assert_eq!(weights, &[0.6, 0.5], "never renormalised silently");
    let e = to_toml(&s, &ExportOptions::default()).unwrap_err();
    assert!(e.0.contains("party `buyer`: weights sum to 1.1") && e.0.contains("--renormalize-weights"), "{e}");
    let text = to_toml(&s, &ExportOptions { renormalize_weights: true, source: None }).unwrap();
    assert!(text.contains("# weights summed to 1.1 in the source and were divided by their sum"), "{text}");
    let back = check_round_trip(&s, &text, "x.toml").unwrap();
    let UtilityFunction::LinearAdditive { weights, .. } = &back.parties[0].preferences.utility else { panic!() };
    assert_eq!(weights, &[0.6 / 1.1, 0.5 / 1.1]);

    // Through the binary: one true message each. Commands that use the
    // weights as written say so; `import --renormalize-weights` says what it
    // writes, and not that they were kept.
    let (code, _, err) = negotium(&["analyze", dir.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("buyer.xml: weights sum to 1.1, not 1; loaded as written"), "{err}");
    let toy = dir.path().join("toy.toml");
    let (code, _, err) =
        negotium(&["import", dir.path().to_str().unwrap(), "-o", toy.to_str().unwrap(), "--renormalize-weights"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("buyer.xml: weights sum to 1.1, not 1; written divided by their sum"), "{err}");
    assert!(!err.contains("as written"), "no contrary message: {err}");
    assert_eq!(err.matches("weights sum to").count(), 1, "one message for one profile: {err}");

    // The same through the binary, on the real file (SYAgent's JapanTrip_util1.xml sums to 1.1).
    let Some(root) = data() else { return };
    let sy = root.join("genius/y2016/SYAgent");
    let s = load_any(&sy).unwrap();
    let p = s.parties.iter().find(|p| p.name == "JapanTrip_util1").unwrap();
    let UtilityFunction::LinearAdditive { weights, .. } = &p.preferences.utility else { panic!() };
    assert_eq!(weights.iter().sum::<f64>(), 1.0999999999999999);
    let (code, _, err) = negotium(&["analyze", sy.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("JapanTrip_util1.xml: weights sum to 1.0999999999999999, not 1; loaded as written"), "{err}");
    let out = tempfile::tempdir().unwrap();
    let toml = out.path().join("sy.toml");
    let (code, _, err) = negotium(&["import", sy.to_str().unwrap(), "-o", toml.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("party `JapanTrip_util1`: weights sum to 1.0999999999999999"), "{err}");
    let (code, stdout, err) =
        negotium(&["import", sy.to_str().unwrap(), "-o", toml.to_str().unwrap(), "--renormalize-weights"]);
    assert_eq!(code, 0, "{err}");
    assert!(stdout.contains("wrote"), "{stdout}");
    let text = std::fs::read_to_string(&toml).unwrap();
    assert!(text.contains("were divided by their sum"));
    let (code, _, err) = negotium(&["analyze", toml.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
}

// ---------------------------------------------------------------- (e) ----

#[test]
fn import_then_toml_then_parse_is_exact_on_every_real_domain() {
    let Some(root) = data() else { return };
    let (ok, _) = load_all(&root);
    let (mut exact, mut equal_prefs, mut utility_equal, mut renormalised) = (0, 0, 0, 0);
    let mut refused_weights = Vec::new();
    for (name, s) in &ok {
        let text = match to_toml(s, &ExportOptions::default()) {
            Ok(t) => t,
            Err(e) => {
                assert!(e.0.contains("weights sum to"), "{name}: {e}");
                refused_weights.push(name.clone());
                renormalised += 1;
                to_toml(s, &ExportOptions { renormalize_weights: true, source: None }).unwrap()
            }
        };
        let back = check_round_trip(s, &text, name).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(back.domain, s.domain, "{name}");
        exact += 1;
        for (a, b) in s.parties.iter().zip(&back.parties) {
            if a.preferences == b.preferences {
                equal_prefs += 1;
            } else {
                utility_equal += 1;
            }
        }
    }
    println!(
        "round trip: {exact} scenarios ({renormalised} only with --renormalize-weights: {}); parties with equal preferences {equal_prefs}, with equal utilities (integer linear written as a table) {utility_equal}",
        refused_weights.join(", ")
    );
    assert_eq!(exact, ok.len());
    assert_eq!(exact, 146);
    // Weights off 1 by more than 1e-6: Laptop 1.0000518, Phone 0.99358, bank
    // robbery 0.98928, car 1.00751 / 0.99429, SYAgent's JapanTrip 1.1.
    assert_eq!(
        refused_weights,
        [
            "genius/y2011/Laptop",
            "genius/y2012/LaptopA",
            "genius/y2012/LaptopB",
            "genius/y2012/LaptopC",
            "genius/y2012/PhoneA",
            "genius/y2012/PhoneB",
            "genius/y2012/PhoneC",
            "genius/y2013/Laptop",
            "genius/y2015/group3-bank_robbery",
            "genius/y2015/group5-car_domain",
            "genius/y2016/SYAgent",
        ]
    );
    assert_eq!((equal_prefs, utility_equal), (354, 17));
}

#[test]
fn the_binary_imports_a_real_folder_to_a_toml_that_runs() {
    let Some(root) = data() else { return };
    let out = tempfile::tempdir().unwrap();
    for folder in ["genius/y2010/ItexvsCypress", "genius/y2014/10issuesDiscountedwithRV", "geniusweb/Party"] {
        let toml = out.path().join("s.toml");
        let src = root.join(folder);
        let (code, stdout, err) = negotium(&["import", src.to_str().unwrap(), "-o", toml.to_str().unwrap()]);
        assert_eq!(code, 0, "{folder}: {err}");
        assert!(stdout.starts_with("wrote"), "{stdout}");
        let text = std::fs::read_to_string(&toml).unwrap();
        let back = Scenario::parse(&text, "s.toml").unwrap();
        let direct = load_any(&src).unwrap();
        assert_eq!(back.domain, direct.domain);
        let (code, _, err) = negotium(&["run", toml.to_str().unwrap()]);
        assert_eq!(code, 0, "{folder}: {err}");
        let (code, _, err) = negotium(&["run", src.to_str().unwrap()]);
        assert_eq!(code, 0, "{folder}: {err}");
    }
}

#[test]
fn awkward_names_and_real_value_functions_round_trip() {
    let domain = r#"<negotiation_template><utility_space><objective index="0" name="r">
  <issue index="1" name="we&quot;ird.na me" type="discrete"><item value="a=b"/><item value="&#10;line"/><item value=""/></issue>
  <issue index="2" name="heat" type="real"><range lowerbound="10" upperbound="30"/></issue>
  <issue index="3" name="cold" type="real"><range lowerbound="0" upperbound="4"/></issue>
  <issue index="4" name="flat" vtype="real" etype="discrete" lowerbound="-1" upperbound="1"/>
</objective></utility_space></negotiation_template>"#;
    let profile = |tri: &str| {
        format!(
            r#"<utility_space><objective index="0" name="r">
  <issue index="1" name="we&quot;ird.na me"><item value="a=b" evaluation="3"/><item value="&#10;line" evaluation="1"/><item value="" evaluation="0"/></issue>
  <issue index="2" name="heat"><evaluator ftype="triangular" {tri}/></issue>
  <issue index="3" name="cold"><evaluator ftype="linear" parameter0="1" parameter1="-0.25"/></issue>
  <issue index="4" name="flat"><evaluator ftype="constant" parameter0="0.5"/></issue>
  <weight index="1" value="0.25"/><weight index="2" value="0.25"/><weight index="3" value="0.25"/><weight index="4" value="0.25"/>
</objective></utility_space>"#
        )
    };
    let dir = folder(&[
        ("d.xml", domain),
        ("p1.xml", &profile(r#"parameter0="10" parameter1="30" parameter2="20""#)),
        ("p2.xml", &profile(r#"parameter0="12" parameter1="28" parameter2="27""#)),
    ]);
    let s = load_any(dir.path()).unwrap();
    assert_eq!(
        s.domain.issues[3],
        Issue::Real { name: "flat".into(), min: -1.0, max: 1.0 },
        "`type` is absent: vtype wins"
    );
    let UtilityFunction::LinearAdditive { values, .. } = &s.parties[0].preferences.utility else { panic!() };
    assert_eq!(values[0], ValueFunction::Table { utilities: vec![1.0, 1.0 / 3.0, 0.0] });
    assert_eq!(values[1], ValueFunction::Triangular { low: 10.0, peak: 20.0, high: 30.0 });
    // GENIUS' real linear evaluator: parameter1·x + parameter0, clamped; x itself, not x − lowerbound.
    assert_eq!(values[2], ValueFunction::Linear { slope: -0.25, offset: 1.0, origin: 0.0 });
    let heat = &s.domain.issues[1];
    assert_eq!(values[1].eval(heat, &Value::Real(15.0)), 0.5);
    assert_eq!(values[1].eval(heat, &Value::Real(25.0)), 0.5);
    let text = to_toml(&s, &ExportOptions::default()).unwrap();
    let back = check_round_trip(&s, &text, "awkward.toml").unwrap();
    assert_eq!(back.parties[0].preferences, s.parties[0].preferences, "every function here has an exact form");
    // A real linear evaluator measured from 0 on a range that does not start at 0 has no exact TOML form.
    let shifted = domain.replace(r#"lowerbound="0" upperbound="4""#, r#"lowerbound="1" upperbound="4""#);
    std::fs::write(dir.path().join("d.xml"), shifted).unwrap();
    let s = load_any(dir.path()).unwrap();
    let e = to_toml(&s, &ExportOptions::default()).unwrap_err();
    assert!(e.0.contains("party `p1`: issue `cold`") && e.0.contains("no exact form"), "{e}");
}

#[test]
fn excludes_pay_when_any_bound_is_violated_as_in_genius() {
    let domain = r#"<negotiation_template><utility_space><objective index="0" name="r">
  <issue index="1" name="x" type="integer" lowerbound="0" upperbound="9"/>
  <issue index="2" name="y" type="integer" lowerbound="0" upperbound="9"/>
</objective></utility_space></negotiation_template>"#;
    let profile = r#"<utility_space type="nonlinear"><objective index="0" name="r">
  <utility maxutility="100"><ufun type="PlainUfun" weight="1" aggregation="sum">
    <hyperRectangle utility="30"><INCLUDES index="1" min="0" max="4"/><INCLUDES index="2" min="2" max="9"/></hyperRectangle>
    <hyperRectangle utility="50"><EXCLUDES index="2" min="3" max="6"/><EXCLUDES index="1" min="5" max="9"/></hyperRectangle>
    <hyperRectangle utility="7"/>
  </ufun></utility></objective>
  <reservation value="0.1"/></utility_space>"#;
    let dir = folder(&[("d.xml", domain), ("p1.xml", profile), ("p2.xml", profile)]);
    let s = load_any(dir.path()).unwrap();
    let p = &s.parties[0].preferences;
    for x in 0..10 {
        for y in 0..10 {
            let inc = (0..=4).contains(&x) && (2..=9).contains(&y);
            let exc_violated = !(3..=6).contains(&y) || !(5..=9).contains(&x);
            let genius = (30.0 * inc as i32 as f64 + 50.0 * exc_violated as i32 as f64 + 7.0) / 100.0;
            let o = Outcome::from(vec![Value::Integer(x), Value::Integer(y)]);
            assert_eq!(p.utility(&s.domain, &o), genius, "x={x} y={y}");
        }
    }
    let text = to_toml(&s, &ExportOptions::default()).unwrap();
    assert!(text.contains("utility = \"hyper-rectangles\""));
    let back = check_round_trip(&s, &text, "h.toml").unwrap();
    assert_eq!(back.parties[0].preferences, *p);
}

// ---------------------------------------------------------------- (d) ----

/// What the fuzz run fed: parser calls and how many were accepted.
#[derive(Default)]
struct Tally {
    calls: AtomicUsize,
    accepted: AtomicUsize,
}

impl Tally {
    fn count(&self, ok: bool) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.accepted.fetch_add(ok as usize, Ordering::Relaxed);
    }
    fn get(&self) -> (usize, usize) {
        (self.calls.load(Ordering::Relaxed), self.accepted.load(Ordering::Relaxed))
    }
}

/// A file to mutate, with the domain its profiles are read against.
struct Seed {
    bytes: Vec<u8>,
    genius: genius::GeniusDomain,
    web: geniusweb::GeniusWebDomain,
}

/// Feeds `bytes` to all four parsers (domain and profile, both formats).
fn feed(bytes: &[u8], seed: &Seed, tally: &Tally) {
    let text = decode(bytes);
    tally.count(genius::parse_domain(&text, "fuzz.xml").is_ok());
    tally.count(genius::parse_profile(&text, "fuzz.xml", &seed.genius).is_ok());
    tally.count(geniusweb::parse_domain(&text, "fuzz.json").is_ok());
    tally.count(geniusweb::parse_profile(&text, "fuzz.json", &seed.web).is_ok());
}

/// Real files (and the small ones above), each with its own domain.
fn seeds() -> Vec<Seed> {
    let toy_g = genius::parse_domain(DOMAIN_XML, "d.xml").unwrap();
    let toy_w = geniusweb::parse_domain(WEB_DOMAIN, "d.json").unwrap();
    let mut v = vec![
        Seed { bytes: DOMAIN_XML.into(), genius: toy_g.clone(), web: toy_w.clone() },
        Seed {
            bytes: profile_xml(("10", "5"), ("-0.25", "1.0"), ("0.6", "0.4")).into_bytes(),
            genius: toy_g.clone(),
            web: toy_w.clone(),
        },
        Seed { bytes: WEB_DOMAIN.into(), genius: toy_g.clone(), web: toy_w.clone() },
        Seed {
            bytes: web_profile("a", [1.0, 0.5, 0.0], [0.5, 0.25, 0.25], r#"{"zeta": "y"}"#).into_bytes(),
            genius: toy_g.clone(),
            web: toy_w.clone(),
        },
    ];
    let Some(root) = data() else { return v };
    let read = |f: &str| std::fs::read_to_string(root.join(f)).unwrap();
    for (domain, profile) in [
        ("genius/y2010/ItexvsCypress/ItexvsCypress_domain.xml", "genius/y2010/ItexvsCypress/ItexvsCypress_Itex.xml"),
        ("genius/y2012/CarA/Car-A-domain.xml", "genius/y2012/CarA/Car-A-prof1.xml"),
        ("genius/y2014/10issues/10issues-domain.xml", "genius/y2014/10issues/profile-1.xml"),
        ("genius/y2015/group9-vacation/Vacation.xml", "genius/y2015/group9-vacation/Vacation_util4.xml"),
    ] {
        let g = genius::parse_domain(&read(domain), domain).unwrap();
        v.push(Seed { bytes: read(domain).into_bytes(), genius: g.clone(), web: toy_w.clone() });
        v.push(Seed { bytes: read(profile).into_bytes(), genius: g, web: toy_w.clone() });
    }
    let w = geniusweb::parse_domain(&read("geniusweb/Party/party.json"), "party.json").unwrap();
    for f in ["geniusweb/Party/party.json", "geniusweb/Party/party1.json"] {
        v.push(Seed { bytes: read(f).into_bytes(), genius: toy_g.clone(), web: w.clone() });
    }
    v
}

/// Arbitrary bytes (bare, and behind each format's opening) and real files
/// with up to 8 byte edits (delete, insert, replace with a syntax character
/// or digit, truncate) never panic any of the four parsers.
#[test]
fn fuzzed_input_never_panics_either_importer() {
    use proptest::test_runner::{Config, TestRunner};
    let seeds = seeds();
    let config = Config { cases: 300, failure_persistence: None, ..Config::default() };
    let (bytes_tally, mutated_tally) = (Tally::default(), Tally::default());
    let mut runner = TestRunner::new(config.clone());
    runner
        .run(&proptest::collection::vec(any::<u8>(), 0..512), |bytes| {
            feed(&bytes, &seeds[0], &bytes_tally);
            for prefix in
                [&b"<utility_space><objective>"[..], b"{\"LinearAdditiveUtilitySpace\": {\"issueUtilities\": "]
            {
                let mut b = prefix.to_vec();
                b.extend(&bytes);
                feed(&b, &seeds[0], &bytes_tally);
            }
            Ok(())
        })
        .unwrap();
    let edits = proptest::collection::vec((any::<proptest::sample::Index>(), 0u8..4, any::<u8>()), 1..8);
    let mut runner = TestRunner::new(config);
    runner
        .run(&(0..seeds.len(), edits), |(which, edits)| {
            let seed = &seeds[which];
            let mut bytes = seed.bytes.clone();
            const NASTY: &[u8] = b"<>\"'=/&;0123456789.-e \n{}[]:,";
            for (at, op, b) in edits {
                let i = at.index(bytes.len().max(1));
                let c = NASTY[b as usize % NASTY.len()];
                match op {
                    0 if !bytes.is_empty() => {
                        bytes.remove(i.min(bytes.len() - 1));
                    }
                    1 => bytes.insert(i.min(bytes.len()), c),
                    2 if !bytes.is_empty() => {
                        let j = i.min(bytes.len() - 1);
                        bytes[j] = c;
                    }
                    _ => bytes.truncate(i.min(bytes.len())),
                }
            }
            feed(&bytes, seed, &mutated_tally);
            Ok(())
        })
        .unwrap();
    // Unmutated, every seed is accepted by its own parser.
    let clean = Tally::default();
    for seed in &seeds {
        feed(&seed.bytes, seed, &clean);
    }
    let ((bc, ba), (mc, ma), (cc, ca)) = (bytes_tally.get(), mutated_tally.get(), clean.get());
    println!(
        "fuzz: 300 cases of arbitrary bytes → {bc} parser calls, {ba} accepted; 300 mutated files ({} seeds) → {mc} calls, {ma} accepted; unmutated seeds: {ca} of {cc} calls accepted; no panic",
        seeds.len()
    );
    assert_eq!(bc, 300 * 3 * 4);
    assert_eq!(mc, 300 * 4);
    assert_eq!(ca, seeds.len(), "each seed parses with exactly one of the four parsers");
}
