//! End-to-end tests of the `negotium` binary: `run`, `analyze` and `bench`,
//! their JSON output, and how bad input is reported (exit code 2, file and
//! line in the message, never a panic).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::LazyLock;

use common::Run;
use serde_json::{Map, Value as Json};
use tempfile::TempDir;

mod common;

/// A small valid bilateral scenario. Line numbers matter to the error tests;
/// they are computed from the text with [`line_of`], not hard-coded.
static DEAL: LazyLock<String> = LazyLock::new(|| common::deal("itest-deal", Some(["conceder", "boulware"])));

/// The same deal with three rounds and random / tit-for-tat parties: some
/// seeds agree, some run into the deadline.
fn mixed() -> String {
    DEAL.replace("rounds = 30", "rounds = 3")
        .replace("strategy = \"conceder\"", "strategy = \"random\"")
        .replace("strategy = \"boulware\"", "strategy = \"tit-for-tat\"")
}

/// Three parties over the same issues.
fn trio() -> String {
    common::trio("itest-trio", Some(["conceder", "boulware", "linear"]))
}

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_negotium"))
}

fn run(args: &[&str]) -> Run {
    common::negotium(args)
}

fn run_ok(args: &[&str]) -> Run {
    let r = run(args);
    assert_eq!(r.code, Some(0), "negotium {args:?} failed:\nstdout:\n{}\nstderr:\n{}", r.stdout, r.stderr);
    r
}

fn run_bad(args: &[&str]) -> Run {
    let r = run(args);
    assert_eq!(r.code, Some(2), "negotium {args:?} should exit 2:\nstdout:\n{}\nstderr:\n{}", r.stdout, r.stderr);
    r
}

fn write(dir: &TempDir, name: &str, text: &str) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, text).expect("write scenario");
    path
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

/// 1-based line of the first occurrence of `needle` in `text`.
fn line_of(text: &str, needle: &str) -> usize {
    let at = text.find(needle).unwrap_or_else(|| panic!("`{needle}` not in the scenario"));
    text[..at].matches('\n').count() + 1
}

fn read_jsonl(path: &Path) -> Vec<Json> {
    let text = std::fs::read_to_string(path).expect("results file");
    text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l}: {e}"))).collect()
}

fn f64s(v: &Json) -> Vec<f64> {
    v.as_array().unwrap_or_else(|| panic!("not an array: {v}")).iter().map(|x| x.as_f64().expect("a number")).collect()
}

fn assert_close(a: f64, b: f64, tol: f64, what: &str) {
    assert!((a - b).abs() <= tol, "{what}: {a} vs {b} (tolerance {tol})");
}

const RECORD_KEYS: &[&str] = &[
    "session",
    "scenario",
    "seed",
    "strategies",
    "agreement",
    "utilities",
    "rounds",
    "offers",
    "ended_by",
    "distance_to_nash",
    "distance_to_pareto",
    "welfare",
    "trace",
];

/// Checks one JSONL record; `reservations` are the parties' reservation
/// values (discount is 1 in these scenarios).
fn check_record(rec: &Json, reservations: &[f64]) {
    let obj = rec.as_object().unwrap_or_else(|| panic!("a record is an object: {rec}"));
    for key in RECORD_KEYS {
        assert!(obj.contains_key(*key), "record lacks `{key}`: {rec}");
    }
    let n = reservations.len();
    let utilities = f64s(&rec["utilities"]);
    assert_eq!(utilities.len(), n, "one utility per party: {rec}");
    assert_eq!(rec["strategies"].as_array().map(Vec::len), Some(n), "{rec}");
    assert!(rec["rounds"].as_u64().is_some() && rec["offers"].as_u64().is_some(), "{rec}");
    let welfare = rec["welfare"].as_f64().expect("welfare is a number");
    // `exact`: the analysis and every party's bids, as the record says of each.
    let bids = rec["bids_exact"].as_array().unwrap_or_else(|| panic!("bids_exact is an array: {rec}"));
    assert_eq!(bids.len(), n, "bids_exact per party: {rec}");
    let exact = rec["analysis_exact"] == true && bids.iter().all(|b| *b != false);
    assert_eq!(rec["exact"], exact, "{rec}");
    match &rec["agreement"] {
        Json::Object(_) => {
            assert_eq!(rec["ended_by"], "agreement", "{rec}");
            assert_close(welfare, utilities.iter().sum(), 1e-12, "welfare = Σ utilities");
        }
        Json::Null => {
            assert_ne!(rec["ended_by"], "agreement", "{rec}");
            for (u, r) in utilities.iter().zip(reservations) {
                assert_close(*u, *r, 1e-12, "utility without agreement = reservation value");
            }
        }
        other => panic!("agreement must be an object or null, not {other}"),
    }
    let trace = rec["trace"].as_array().unwrap_or_else(|| panic!("trace is an array: {rec}"));
    assert!(!trace.is_empty(), "the trace was recorded: {rec}");
    for t in trace {
        for key in ["round", "party", "action"] {
            assert!(t.get(key).is_some(), "trace entry lacks `{key}`: {t}");
        }
        assert!(t["party"].as_u64().is_some_and(|p| (p as usize) < n), "{t}");
    }
    let offers_in_trace = trace.iter().filter(|t| t["action"] == "offer").count() as u64;
    assert_eq!(rec["offers"].as_u64(), Some(offers_in_trace), "offers counts the trace's offers: {rec}");
}

fn without_engine(mut rec: Json) -> Json {
    rec.as_object_mut().expect("object").remove("engine");
    rec
}

// ---------------------------------------------------------------- run

#[test]
fn run_once_on_both_engines() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "deal.toml", &DEAL);
    let mut outputs = Vec::new();
    for engine in ["direct", "actors"] {
        let r = run_ok(&["run", s(&path), "--engine", engine]);
        let out = r.stdout.to_lowercase();
        assert!(out.contains("deal reached in round"), "{engine}: {}", r.stdout);
        assert!(out.contains("  buyer ") && out.contains("  seller "), "{engine}: {}", r.stdout);
        assert!(out.contains("walk-away value"), "{engine}: {}", r.stdout);
        assert!(out.contains(&format!("engine {engine}")), "{engine}: {}", r.stdout);
        outputs.push(r.stdout.replace(&format!("engine {engine}"), "engine X"));
    }
    assert_eq!(outputs[0], outputs[1], "both engines report the same negotiation");
}

#[test]
fn repeat_writes_one_record_per_negotiation_identical_across_engines() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "mixed.toml", &mixed());
    let mut per_engine = Vec::new();
    for engine in ["direct", "actors"] {
        let out = dir.path().join(format!("results-{engine}.jsonl"));
        run_ok(&["run", s(&path), "--engine", engine, "--repeat", "20", "--out", s(&out)]);
        let recs = read_jsonl(&out);
        assert_eq!(recs.len(), 20, "{engine}: 20 lines");
        for (j, rec) in recs.iter().enumerate() {
            check_record(rec, &[0.2, 0.3]);
            assert_eq!(rec["engine"], engine);
            assert_eq!(rec["session"].as_u64(), Some(j as u64));
            assert_eq!(rec["seed"].as_u64(), Some(11 + j as u64), "negotiation j uses the scenario seed + j");
            assert_eq!(rec["scenario"], "itest-deal");
            assert_eq!(rec["strategies"], serde_json::json!(["random", "tit-for-tat"]));
        }
        per_engine.push(recs);
    }
    let agreements = per_engine[0].iter().filter(|r| r["agreement"].is_object()).count();
    assert!(agreements > 0 && agreements < 20, "the scenario should mix agreements ({agreements}) and deadlines");
    let seeds: std::collections::BTreeSet<String> = per_engine[0].iter().map(|r| r["trace"].to_string()).collect();
    assert!(seeds.len() > 1, "different seeds give different traces");
    for (j, (d, a)) in per_engine[0].iter().zip(&per_engine[1]).enumerate() {
        assert_eq!(without_engine(d.clone()), without_engine(a.clone()), "line {j}: direct and actors differ");
    }
}

#[test]
fn repeat_with_deterministic_strategies_on_both_engines() {
    // The original deal (time-based strategies) with --seed: same checks.
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "deal.toml", &DEAL);
    let mut lines = Vec::new();
    for engine in ["direct", "actors"] {
        let out = dir.path().join(format!("{engine}.jsonl"));
        run_ok(&["run", s(&path), "--engine", engine, "--repeat", "20", "--seed", "100", "--out", s(&out)]);
        let recs = read_jsonl(&out);
        assert_eq!(recs.len(), 20);
        for (j, rec) in recs.iter().enumerate() {
            check_record(rec, &[0.2, 0.3]);
            assert_eq!(rec["seed"].as_u64(), Some(100 + j as u64));
        }
        lines.push(recs.into_iter().map(without_engine).collect::<Vec<_>>());
    }
    assert_eq!(lines[0], lines[1]);
}

#[test]
fn strategy_override_changes_the_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "deal.toml", &DEAL);
    let out = dir.path().join("r.jsonl");
    run_ok(&["run", s(&path), "--engine", "direct", "--out", s(&out), "--strategy", "buyer=hardliner"]);
    let recs = read_jsonl(&out);
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0]["strategies"], serde_json::json!(["hardliner", "boulware"]));
    check_record(&recs[0], &[0.2, 0.3]);

    // An inline table, addressed by index.
    let r = run_ok(&[
        "run",
        s(&path),
        "--engine",
        "actors",
        "--out",
        s(&out),
        "--force",
        "--strategy",
        "1={ type = \"time-dependent\", e = 0.5 }",
    ]);
    assert!(r.stdout.contains("time-dependent(e=0.5)"), "{}", r.stdout);
    let recs = read_jsonl(&out);
    assert_eq!(recs[0]["strategies"], serde_json::json!(["conceder", "time-dependent(e=0.5)"]));

    // Hardliner against hardliner never agrees: utilities are the reservation values.
    run_ok(&[
        "run",
        s(&path),
        "--engine",
        "direct",
        "--out",
        s(&out),
        "--force",
        "--strategy",
        "buyer=hardliner",
        "--strategy",
        "seller=hardliner",
    ]);
    let recs = read_jsonl(&out);
    assert_eq!(recs[0]["ended_by"], "deadline");
    assert_eq!(recs[0]["rounds"].as_u64(), Some(30));
    check_record(&recs[0], &[0.2, 0.3]);
}

#[test]
fn unknown_strategy_override_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "deal.toml", &DEAL);
    let r = run_bad(&["run", s(&path), "--strategy", "buyer=nonsense"]);
    assert!(r.stderr.contains("unknown strategy `nonsense`"), "{}", r.stderr);
    for name in ["boulware", "conceder", "linear", "hardliner", "random", "tit-for-tat"] {
        assert!(r.stderr.contains(name), "stderr should list `{name}`: {}", r.stderr);
    }
    let r = run_bad(&["run", s(&path), "--strategy", "nobody=boulware"]);
    assert!(r.stderr.contains("no party `nobody`") && r.stderr.contains("buyer, seller"), "{}", r.stderr);
    let r = run_bad(&["run", s(&path), "--strategy", "buyer"]);
    assert!(r.stderr.contains("ROLE=NAME"), "{}", r.stderr);
    let r = run_bad(&["run", s(&path), "--strategy", "buyer={ type = \"time-dependent\" }"]);
    assert!(r.stderr.contains("`e` is required"), "{}", r.stderr);
}

#[test]
fn three_parties() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "trio.toml", &trio());
    let mut lines = Vec::new();
    for engine in ["direct", "actors"] {
        let out = dir.path().join(format!("{engine}.jsonl"));
        let r = run_ok(&["run", s(&path), "--engine", engine, "--repeat", "3", "--out", s(&out)]);
        assert!(r.stdout.contains("broker"), "{}", r.stdout);
        let recs = read_jsonl(&out);
        assert_eq!(recs.len(), 3);
        for rec in &recs {
            check_record(rec, &[0.2, 0.3, 0.1]);
            assert_eq!(rec["parties"], serde_json::json!(["buyer", "seller", "broker"]));
        }
        lines.push(recs.into_iter().map(without_engine).collect::<Vec<_>>());
    }
    assert_eq!(lines[0], lines[1]);
}

// ---------------------------------------------------------------- analyze

fn point(v: &Json, what: &str) -> Vec<f64> {
    let obj = v.as_object().unwrap_or_else(|| panic!("`{what}` is an object: {v}"));
    assert!(obj.get("outcome").is_some_and(Json::is_object), "`{what}` has an outcome: {v}");
    f64s(&obj["utilities"])
}

fn dominates(a: &[f64], b: &[f64]) -> bool {
    const EPS: f64 = 1e-9;
    a.iter().zip(b).all(|(x, y)| x + EPS >= *y) && a.iter().zip(b).any(|(x, y)| *x > y + EPS)
}

fn check_analysis(text: &str, name: &str, n: usize, outcomes: u64) {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, name, text);
    let r = run_ok(&["analyze", s(&path), "--json"]);
    let lines: Vec<&str> = r.stdout.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one JSON object: {}", r.stdout);
    let a: Json = serde_json::from_str(lines[0]).expect("valid JSON");
    assert_eq!(a["outcomes"].as_u64(), Some(outcomes), "{a}");
    let d = f64s(&a["disagreement"]);
    assert_eq!(d.len(), n);
    let pareto: Vec<Vec<f64>> = a["pareto"].as_array().expect("pareto is a list").iter().map(f64s).collect();
    assert!(!pareto.is_empty());
    for (i, p) in pareto.iter().enumerate() {
        assert_eq!(p.len(), n);
        for (j, q) in pareto.iter().enumerate() {
            assert!(i == j || !dominates(q, p), "pareto point {p:?} is dominated by {q:?}");
        }
    }
    let points: Map<String, Json> =
        ["nash", "kalai_smorodinsky", "max_welfare"].iter().map(|k| (k.to_string(), a[*k].clone())).collect();
    for (k, v) in &points {
        let u = point(v, k);
        assert_eq!(u.len(), n, "{k}");
        assert!(!pareto.iter().any(|p| dominates(p, &u)), "{k} {u:?} is dominated by a pareto point");
    }
    let product = |u: &[f64]| u.iter().zip(&d).map(|(x, di)| x - di).product::<f64>();
    let nash = point(&points["nash"], "nash");
    for p in &pareto {
        assert!(product(&nash) + 1e-9 >= product(p), "Nash {nash:?} has a smaller product than {p:?}");
    }
    let welfare = |u: &[f64]| u.iter().sum::<f64>();
    let mw = point(&points["max_welfare"], "max_welfare");
    for p in &pareto {
        assert!(welfare(&mw) + 1e-9 >= welfare(p), "max welfare {mw:?} < {p:?}");
    }

    // The table form names the same points, and lists the frontier's.
    let t = run_ok(&["analyze", s(&path)]);
    for label in ["Nash", "Pareto frontier", "max welfare"] {
        assert!(t.stdout.contains(label), "{}", t.stdout);
    }
    for p in pareto.iter().take(20) {
        let shown: Vec<String> = p.iter().map(|x| format!("{x:.4}")).collect();
        let shown = format!("  ({})  ", shown.join(", "));
        assert!(t.stdout.contains(&shown), "frontier point {shown} in the table:\n{}", t.stdout);
    }
}

/// Past 20 frontier points the table says how many more `--json` holds.
#[test]
fn analyze_text_lists_the_frontier_up_to_twenty_points() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/market-cooperation.toml");
    let a: Json = serde_json::from_str(&run_ok(&["analyze", s(&path), "--json"]).stdout).unwrap();
    let n = a["pareto"].as_array().unwrap().len();
    assert!(n > 20, "this scenario has a long frontier ({n})");
    let t = run_ok(&["analyze", s(&path)]).stdout;
    let listed = t.lines().filter(|l| l.starts_with("  (")).count();
    assert_eq!(listed, 20, "{t}");
    assert!(t.contains(&format!("  … {} more, all in --json", n - 20)), "{t}");
}

#[test]
fn analyze_json_bilateral() {
    check_analysis(&DEAL, "deal.toml", 2, 30);
}

#[test]
fn analyze_json_three_parties() {
    check_analysis(&trio(), "trio.toml", 3, 30);
}

// ---------------------------------------------------------------- bench

fn bench_json(args: &[&str]) -> Json {
    let mut all = vec!["bench", "--workload", "w1", "--n", "200", "--json"];
    all.extend_from_slice(args);
    let r = run_ok(&all);
    let v: Json = serde_json::from_str(r.stdout.trim()).unwrap_or_else(|e| panic!("bench JSON: {e}\n{}", r.stdout));
    for key in ["negotiations_per_s", "offers_per_s", "agreement_rate", "rounds_mean", "mean_utilities"] {
        assert!(v.get(key).is_some(), "bench lacks `{key}`: {v}");
    }
    assert_eq!(v["n_negotiations"].as_u64(), Some(200), "{v}");
    // A number, not a string (it fits a u64; see `analyze::outcomes_json`).
    assert_eq!(v["n_outcomes"].as_u64(), Some(1000), "{v}");
    v
}

/// What NegMAS 0.16 (`bench_sao.py`) reports on W1, n = 200, seed 1.
fn assert_reference(v: &Json, rounds_mean: f64, mean_utilities: [f64; 2]) {
    assert_close(v["agreement_rate"].as_f64().unwrap(), 1.0, 1e-12, "agreement_rate");
    assert_close(v["rounds_mean"].as_f64().unwrap(), rounds_mean, 1e-9, "rounds_mean");
    let mu = f64s(&v["mean_utilities"]);
    assert_eq!(mu.len(), 2);
    assert_close(mu[0], mean_utilities[0], 1e-9, "mean utility of A");
    assert_close(mu[1], mean_utilities[1], 1e-9, "mean utility of B");
}

const BOULWARE_CONCEDER: [f64; 2] = [0.8897047394186677, 0.24190595481001986];
const LINEAR_LINEAR: [f64; 2] = [0.6053070728233125, 0.6051026448399831];

#[test]
fn bench_w1_matches_negmas_boulware_conceder() {
    let v = bench_json(&[]);
    assert_eq!(v["pair"], "boulware-conceder");
    assert_eq!(v["engine"], "direct");
    assert_reference(&v, 58.505, BOULWARE_CONCEDER);
}

#[test]
fn bench_w1_matches_negmas_linear_linear() {
    let v = bench_json(&["--pair", "linear-linear"]);
    assert_reference(&v, 46.845, LINEAR_LINEAR);
}

#[test]
fn bench_w1_actors_match_negmas() {
    let v = bench_json(&["--engine", "actors", "--threads", "2", "--concurrency", "16"]);
    assert_eq!(v["engine"], "actors");
    assert_reference(&v, 58.505, BOULWARE_CONCEDER);
}

#[test]
fn bench_bad_input() {
    let r = run_bad(&["bench", "--workload", "w9", "--n", "10"]);
    assert!(r.stderr.contains("unknown workload `w9`"), "{}", r.stderr);
    let r = run_bad(&["bench", "--workload", "w1", "--n", "10", "--pair", "boulware"]);
    assert!(r.stderr.contains("expected A-B"), "{}", r.stderr);
    let r = run_bad(&["bench", "--workload", "w1", "--n", "10", "--pair", "boulware-genius"]);
    assert!(r.stderr.contains("unknown strategy `genius`") && r.stderr.contains("boulware"), "{}", r.stderr);
}

// ---------------------------------------------------------------- bad scenarios

/// Writes `text` as `bad.toml`, runs `run` and `analyze` on it and checks
/// both exit 2 with `bad.toml:LINE:` and every `needles` in stderr.
fn assert_scenario_error(text: &str, line: usize, needles: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "bad.toml", text);
    for cmd in [
        &["run", s(&path), "--engine", "direct"][..],
        &["run", s(&path), "--engine", "actors"],
        &["analyze", s(&path), "--json"],
    ] {
        let r = run_bad(cmd);
        let at = format!("{}:{line}: ", path.display());
        assert!(r.stderr.contains(&at), "{cmd:?}: stderr should contain `{at}`:\n{}", r.stderr);
        for needle in needles {
            assert!(r.stderr.contains(needle), "{cmd:?}: stderr should contain `{needle}`:\n{}", r.stderr);
        }
        assert!(r.stdout.is_empty(), "{cmd:?}: nothing on stdout: {}", r.stdout);
    }
}

#[test]
fn weights_naming_a_missing_issue() {
    let text = DEAL.replace("weights = { price = 0.7, color = 0.3 }", "weights = { price = 0.7, colour = 0.3 }");
    let line = line_of(&text, "colour = 0.3");
    assert_scenario_error(&text, line, &["unknown issue `colour`", "buyer"]);
}

#[test]
fn values_naming_a_missing_issue() {
    let text = DEAL.replace("values.color = { red = 0.2", "values.colour = { red = 0.2");
    let line = line_of(&text, "values.colour");
    assert_scenario_error(&text, line, &["unknown issue `colour`", "seller"]);
}

#[test]
fn weights_not_summing_to_one() {
    let text = DEAL.replace("weights = { price = 0.6, color = 0.4 }", "weights = { price = 0.6, color = 0.6 }");
    let line = line_of(&text, "price = 0.6, color = 0.6");
    assert_scenario_error(&text, line, &["sum to", "seller"]);
}

#[test]
fn unknown_strategy_in_the_file() {
    let text = DEAL.replace("strategy = \"boulware\"", "strategy = \"smart\"");
    let line = line_of(&text, "\"smart\"");
    assert_scenario_error(&text, line, &["unknown strategy `smart`", "boulware", "tit-for-tat", "conceder"]);
}

#[test]
fn toml_syntax_error() {
    let text = DEAL.replace("rounds = 30", "rounds = = 30");
    let line = line_of(&text, "rounds = = 30");
    assert_scenario_error(&text, line, &[]);
}

#[test]
fn value_outside_the_unit_interval() {
    let text = DEAL.replace("red = 0.2, green = 1.0", "red = 1.2, green = 1.0");
    let line = line_of(&text, "red = 1.2");
    assert_scenario_error(&text, line, &["outside [0, 1]", "color"]);
}

/// A folder of scenario files is the usual wrong folder: the message says
/// what it holds, whichever command was given it.
#[test]
fn a_folder_of_scenario_files_is_refused_saying_what_it_holds() {
    let scenarios = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    for args in [vec!["run", s(&scenarios)], vec!["analyze", s(&scenarios)], vec!["import", s(&scenarios)]] {
        let r = run_bad(&args);
        for needle in [
            "not a Genius or GeniusWeb domain folder",
            "it holds 4 .toml files: data-alliance.toml, market-cooperation.toml, series-a.toml",
            "give one of them, or a tournament file",
        ] {
            assert!(r.stderr.contains(needle), "{args:?}: `{needle}` in {}", r.stderr);
        }
        assert!(!r.stderr.contains("empty folder"), "{}", r.stderr);
    }
    let r = run_bad(&["tournament", s(&scenarios)]);
    assert!(r.stderr.contains("a tournament is a TOML file, not a folder; not a Genius"), "{}", r.stderr);
    assert!(r.stderr.contains("it holds 4 .toml files"), "{}", r.stderr);
}

#[test]
fn missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nowhere.toml");
    for cmd in [&["run", s(&path)][..], &["analyze", s(&path), "--json"]] {
        let r = run_bad(cmd);
        assert!(r.stderr.contains("cannot read"), "{}", r.stderr);
        assert!(r.stderr.contains(s(&path)), "the message names the file: {}", r.stderr);
    }
}

/// A number out of its range says so in the file's terms, not serde's
/// ("invalid value: integer `-5`, expected u32").
#[test]
fn a_negative_round_count_is_said_in_the_users_terms() {
    let text = DEAL.replace("rounds = 30", "rounds = -5");
    let line = line_of(&text, "rounds = -5");
    assert_scenario_error(&text, line, &["rounds must be a positive whole number, got -5"]);
    let text = DEAL.replace("seed = 11", "seed = 1.5");
    assert_scenario_error(&text, line_of(&text, "seed = 1.5"), &["seed must be a whole number, got 1.5"]);
}

/// Numeric options take negative numbers as values (no "use -- -1" tip)
/// and refuse them saying what they count; an inline strategy table that
/// does not parse is quoted as typed, with the column.
#[test]
fn command_line_numbers_and_strategy_tables_are_refused_in_the_users_terms() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "deal.toml", &DEAL);
    for (args, said) in [
        (vec!["run", s(&path), "--repeat", "-1"], "--repeat must be a positive number of negotiations, got -1"),
        (vec!["run", s(&path), "--repeat", "2.5"], "--repeat must be a positive number of negotiations, got 2.5"),
        (vec!["run", s(&path), "--seed", "-3"], "--seed must be a whole number, 0 or more, got -3"),
        (vec!["run", s(&path), "--concurrency", "lots"], "--concurrency must be a whole number, got `lots`"),
        (vec!["bench", "--n", "-10"], "--n must be a positive number of negotiations, got -10"),
    ] {
        let r = run_bad(&args);
        assert!(r.stderr.contains(said), "{args:?}: {}", r.stderr);
        assert!(!r.stderr.contains("-- -"), "no clap tip: {}", r.stderr);
    }
    let table = r#"{ type = "time-dependent", e = }"#;
    let r = run_bad(&["run", s(&path), "--strategy", &format!("buyer={table}")]);
    assert!(r.stderr.contains(&format!("`{table}` is not a valid strategy table: column ")), "{}", r.stderr);
    assert!(!r.stderr.contains("v = {"), "no internal wrapper: {}", r.stderr);
    let r = run_bad(&["run", s(&path), "--strategy", r#"buyer={ type = "time-dependent", e = "x" }"#]);
    assert!(r.stderr.contains("--strategy buyer"), "{}", r.stderr);
}

#[test]
fn zero_repeats_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "deal.toml", &DEAL);
    let r = run_bad(&["run", s(&path), "--repeat", "0"]);
    assert!(r.stderr.contains("--repeat"), "{}", r.stderr);
}

// ---------------------------------------------------------------- helpers for the scenarios below

/// Like [`run`], but fails the test instead of hanging when negotium runs
/// longer than `limit` (output goes to files, so a large one cannot block).
fn spawn_within(args: &[&str], limit: std::time::Duration) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let (out_path, err_path) = (dir.path().join("stdout"), dir.path().join("stderr"));
    let mut child = bin()
        .args(args)
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .expect("the negotium binary starts");
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for negotium") {
            break status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("negotium {args:?} did not finish within {limit:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    let r = Run {
        code: status.code(),
        stdout: std::fs::read_to_string(&out_path).expect("utf-8 stdout"),
        stderr: std::fs::read_to_string(&err_path).expect("utf-8 stderr"),
    };
    assert!(!r.stderr.contains("panicked"), "negotium {args:?} panicked:\n{}", r.stderr);
    r
}

/// [`spawn_within`], and it must succeed.
fn run_within(args: &[&str], limit: std::time::Duration) -> Run {
    let r = spawn_within(args, limit);
    assert_eq!(r.code, Some(0), "negotium {args:?} failed:\nstdout:\n{}\nstderr:\n{}", r.stdout, r.stderr);
    r
}

const LIMIT: std::time::Duration = std::time::Duration::from_secs(60);

/// `analyze --json` on `path`, parsed.
fn analyze_json(path: &Path) -> Json {
    let r = run_within(&["analyze", s(path), "--json"], LIMIT);
    serde_json::from_str(r.stdout.trim()).unwrap_or_else(|e| panic!("analyze JSON: {e}\n{}", r.stdout))
}

fn euclid(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum::<f64>().sqrt()
}

/// 1-based line of the `[[...]]` header of the table that contains `needle`.
fn table_line(text: &str, needle: &str) -> usize {
    let line = line_of(text, needle);
    let lines: Vec<&str> = text.lines().collect();
    (1..=line).rev().find(|&l| lines[l - 1].trim_start().starts_with("[[")).expect("a table header above the needle")
}

// ---------------------------------------------------------------- hyper-rectangles

/// Two parties with ANAC 2014-style preferences: rectangles aggregated by
/// sum (north) and by max (south). Discrete ranges address value indexes.
const RECTANGLES: &str = r#"name = "itest-rectangles"
seed = 4
[protocol]
rounds = 40
[[issues]]
name = "x"
type = "integer"
min = 0
max = 9
[[issues]]
name = "y"
type = "integer"
min = 0
max = 9
[[issues]]
name = "mode"
type = "discrete"
values = ["a", "b", "c"]
[[parties]]
name = "north"
strategy = "conceder"
reservation = 0.1
utility = "hyper-rectangles"
aggregation = "sum"
[[parties.rectangles]]
utility = 30.0
ranges = { x = [0, 4] }
[[parties.rectangles]]
utility = 50.0
ranges = { x = [3, 9], y = [5, 9] }
excludes = { mode = [2, 2] }
[[parties.rectangles]]
utility = 20.0
ranges = { mode = [0, 1] }
[[parties]]
name = "south"
strategy = "linear"
reservation = 0.2
utility = "hyper-rectangles"
aggregation = "max"
[[parties.rectangles]]
utility = 0.9
ranges = { x = [5, 9], y = [0, 6] }
[[parties.rectangles]]
utility = 0.6
ranges = { y = [0, 9], mode = [1, 2] }
[[parties.rectangles]]
utility = 1.0
ranges = { x = [6, 9], y = [0, 2], mode = [2, 2] }
"#;

/// [`RECTANGLES`]' utilities, by hand: north sums its hits over 100, south
/// takes its best hit (its best rectangle is worth 1).
fn rectangle_utilities(x: i64, y: i64, mode: &str) -> [f64; 2] {
    let m = ["a", "b", "c"].iter().position(|v| *v == mode).expect("a mode") as i64;
    let inside = |v: i64, lo: i64, hi: i64| (lo..=hi).contains(&v);
    let mut north = 0.0;
    if inside(x, 0, 4) {
        north += 30.0;
    }
    if inside(x, 3, 9) && inside(y, 5, 9) && m != 2 {
        north += 50.0;
    }
    if inside(m, 0, 1) {
        north += 20.0;
    }
    let mut south: f64 = 0.0;
    if inside(x, 5, 9) && inside(y, 0, 6) {
        south = south.max(0.9);
    }
    if inside(m, 1, 2) {
        south = south.max(0.6);
    }
    if inside(x, 6, 9) && inside(y, 0, 2) && m == 2 {
        south = south.max(1.0);
    }
    [north / 100.0, south]
}

fn rectangle_utilities_of(outcome: &Json) -> [f64; 2] {
    let x = outcome["x"].as_i64().expect("x");
    let y = outcome["y"].as_i64().expect("y");
    rectangle_utilities(x, y, outcome["mode"].as_str().expect("mode"))
}

#[test]
fn hyper_rectangles_run_on_both_engines() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "rect.toml", RECTANGLES);
    let mut lines = Vec::new();
    for engine in ["direct", "actors"] {
        let out = dir.path().join(format!("{engine}.jsonl"));
        let r = run_ok(&["run", s(&path), "--engine", engine, "--repeat", "3", "--out", s(&out)]);
        assert!(r.stdout.contains("north") && r.stdout.contains("south"), "{}", r.stdout);
        let recs = read_jsonl(&out);
        assert_eq!(recs.len(), 3);
        for rec in &recs {
            check_record(rec, &[0.1, 0.2]);
            // Every offer's utilities are those the rectangles give.
            for t in rec["trace"].as_array().unwrap().iter().filter(|t| t["action"] == "offer") {
                let expected = rectangle_utilities_of(&t["outcome"]);
                let got = f64s(&t["utilities"]);
                for (g, e) in got.iter().zip(expected) {
                    assert_close(*g, e, 1e-12, &format!("utility of {}", t["outcome"]));
                }
            }
            if rec["agreement"].is_object() {
                let expected = rectangle_utilities_of(&rec["agreement"]);
                for (g, e) in f64s(&rec["utilities"]).iter().zip(expected) {
                    assert_close(*g, e, 1e-12, "utility of the agreement");
                }
            }
        }
        lines.push(recs.into_iter().map(without_engine).collect::<Vec<_>>());
    }
    assert_eq!(lines[0], lines[1], "both engines give the same records");
}

#[test]
fn hyper_rectangles_analyze_json() {
    check_analysis(RECTANGLES, "rect.toml", 2, 300);

    // The frontier, recomputed by brute force from the hand-written utilities.
    let dir = tempfile::tempdir().unwrap();
    let a = analyze_json(&write(&dir, "rect.toml", RECTANGLES));
    assert_eq!(a["exact"], true, "{a}");
    assert!(a["note"].is_null(), "{a}");
    assert_eq!(f64s(&a["disagreement"]), vec![0.1, 0.2], "d_p = max(rv, min u) and min u = 0 for both");
    assert_eq!(f64s(&a["max_utilities"]), vec![1.0, 1.0], "{a}");
    let mut all = Vec::new();
    for x in 0..=9 {
        for y in 0..=9 {
            for mode in ["a", "b", "c"] {
                all.push(rectangle_utilities(x, y, mode));
            }
        }
    }
    let rational: Vec<[f64; 2]> = all.into_iter().filter(|u| u[0] >= 0.1 && u[1] >= 0.2).collect();
    let front: Vec<[f64; 2]> = rational.iter().copied().filter(|u| !rational.iter().any(|v| dominates(v, u))).collect();
    let pareto: Vec<Vec<f64>> = a["pareto"].as_array().unwrap().iter().map(f64s).collect();
    assert_eq!(pareto.len(), front.len(), "one frontier entry per non-dominated outcome: {a}");
    for p in &pareto {
        assert!(front.iter().any(|f| euclid(f, p) < 1e-9), "{p:?} is not on the brute-force frontier {front:?}");
    }
    for f in &front {
        assert!(pareto.iter().any(|p| euclid(f, p) < 1e-9), "{f:?} is missing from the frontier {pareto:?}");
    }
    let nash = point(&a["nash"], "nash");
    let product = |u: &[f64]| (u[0] - 0.1) * (u[1] - 0.2);
    let best = front.iter().map(|u| product(u)).fold(f64::NEG_INFINITY, f64::max);
    assert_close(product(&nash), best, 1e-12, "the Nash product");
    assert_eq!(rectangle_utilities_of(&a["nash"]["outcome"]).to_vec(), nash, "the Nash outcome has its utilities");
}

// ---------------------------------------------------------------- discount

/// One issue, opposed preferences: every outcome is Pareto-efficient, so any
/// agreement is; the buyer discounts by half over the whole deadline.
const SPLIT: &str = r#"name = "itest-split"
seed = 8
[protocol]
rounds = 30
[[issues]]
name = "price"
type = "integer"
min = 0
max = 9
[[parties]]
name = "buyer"
strategy = "conceder"
reservation = 0.2
discount = 0.5
weights = { price = 1.0 }
values.price = { linear = [1.0, 0.0] }
[[parties]]
name = "seller"
strategy = "boulware"
reservation = 0.3
weights = { price = 1.0 }
values.price = { linear = [0.0, 1.0] }
"#;

/// Checks a record of a scenario whose party 0 has `discount` and the others
/// none: `utilities` are discounted, `undiscounted_utilities` are raw, and
/// the analysis fields come from the raw ones (`analysis` is `analyze --json`).
fn check_discounted_record(rec: &Json, analysis: &Json, reservations: &[f64], discount: f64) {
    let utilities = f64s(&rec["utilities"]);
    let raw = f64s(&rec["undiscounted_utilities"]);
    assert_eq!(raw.len(), reservations.len(), "{rec}");
    let time = rec["time"].as_f64().expect("time");
    assert!(time > 0.0 && time <= 1.0, "{rec}");
    match &rec["agreement"] {
        Json::Object(_) => {
            // The raw utilities are those of the agreed outcome, as the trace shows them.
            let offered = rec["trace"]
                .as_array()
                .unwrap()
                .iter()
                .find(|t| t["action"] == "offer" && t["outcome"] == rec["agreement"])
                .unwrap_or_else(|| panic!("the agreement was offered first: {rec}"));
            assert_eq!(f64s(&offered["utilities"]), raw, "{rec}");
        }
        _ => assert_eq!(raw, reservations, "no agreement: the raw utilities are the reservation values"),
    }
    assert_close(utilities[0], raw[0] * discount.powf(time), 1e-12, "party 0: utility × d^t");
    assert!(utilities[0] < raw[0] || raw[0] == 0.0, "party 0 discounts: {rec}");
    for (u, r) in utilities.iter().zip(&raw).skip(1) {
        assert_eq!(u, r, "the other parties do not discount: {rec}");
    }
    assert_close(rec["welfare"].as_f64().unwrap(), utilities.iter().sum(), 1e-12, "welfare = Σ utilities");

    let pareto: Vec<Vec<f64>> = analysis["pareto"].as_array().unwrap().iter().map(f64s).collect();
    let to_front = pareto.iter().map(|p| euclid(p, &raw)).fold(f64::INFINITY, f64::min);
    let distance = rec["distance_to_pareto"].as_f64().expect("a distance to the frontier");
    assert_close(distance, to_front, 1e-12, "distance_to_pareto is measured from the undiscounted utilities");
    let nash = point(&analysis["nash"], "nash");
    assert_close(rec["distance_to_nash"].as_f64().unwrap(), euclid(&nash, &raw), 1e-12, "distance_to_nash");
    let efficient = rec["pareto_efficient"].as_bool().expect("pareto_efficient");
    let agreed = rec["agreement"].is_object();
    assert_eq!(efficient, agreed && distance < 1e-9, "pareto_efficient ⇔ agreement and distance_to_pareto = 0: {rec}");
}

#[test]
fn discounted_agreement_on_the_frontier_is_pareto_efficient() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "split.toml", SPLIT);
    let analysis = analyze_json(&path);
    let pareto: Vec<Vec<f64>> = analysis["pareto"].as_array().unwrap().iter().map(f64s).collect();
    let mut lines = Vec::new();
    for engine in ["direct", "actors"] {
        let out = dir.path().join(format!("{engine}.jsonl"));
        run_ok(&["run", s(&path), "--engine", engine, "--out", s(&out)]);
        let recs = read_jsonl(&out);
        let rec = &recs[0];
        assert_eq!(rec["ended_by"], "agreement", "conceder and boulware agree here: {rec}");
        check_discounted_record(rec, &analysis, &[0.2, 0.3], 0.5);
        assert_eq!(rec["pareto_efficient"], true, "every outcome of this space is efficient: {rec}");
        assert!(rec["distance_to_pareto"].as_f64().unwrap() < 1e-9, "{rec}");
        // The discounted vector itself lies below the frontier: judging it
        // would have called this agreement inefficient.
        let discounted = f64s(&rec["utilities"]);
        let off = pareto.iter().map(|p| euclid(p, &discounted)).fold(f64::INFINITY, f64::min);
        assert!(off > 1e-6, "the discounted utilities {discounted:?} should be off the frontier");
        lines.push(without_engine(rec.clone()));
    }
    assert_eq!(lines[0], lines[1]);
}

#[test]
fn discount_is_applied_to_utilities_only() {
    // The mixed deal (agreements and deadlines) with a discounting buyer.
    let text = mixed().replace("reservation = 0.2\n", "reservation = 0.2\ndiscount = 0.5\n");
    assert!(text.contains("discount = 0.5"));
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "mixed.toml", &text);
    let analysis = analyze_json(&path);
    let mut per_engine = Vec::new();
    for engine in ["direct", "actors"] {
        let out = dir.path().join(format!("{engine}.jsonl"));
        run_ok(&["run", s(&path), "--engine", engine, "--repeat", "20", "--out", s(&out)]);
        let recs = read_jsonl(&out);
        assert_eq!(recs.len(), 20);
        for rec in &recs {
            check_discounted_record(rec, &analysis, &[0.2, 0.3], 0.5);
        }
        let agreements = recs.iter().filter(|r| r["agreement"].is_object()).count();
        assert!(agreements > 0 && agreements < 20, "both kinds of ending are checked ({agreements} agreements)");
        per_engine.push(recs.into_iter().map(without_engine).collect::<Vec<_>>());
    }
    assert_eq!(per_engine[0], per_engine[1]);
}

// ---------------------------------------------------------------- sampled spaces

/// Twelve issues of ten values: 10^12 outcomes, far beyond enumeration.
/// Every issue is fully opposed between the two parties. `real`: the first
/// issue is a real number in [0, 9] instead (infinitely many outcomes).
fn huge(real: bool) -> String {
    let mut text = String::from("name = \"itest-huge\"\nseed = 9\n[protocol]\nrounds = 30\n");
    for i in 0..12 {
        let kind = if real && i == 0 { "real" } else { "integer" };
        text += &format!("[[issues]]\nname = \"i{i}\"\ntype = \"{kind}\"\nmin = 0\nmax = 9\n");
    }
    let weights: Vec<String> = (0..12).map(|i| format!("i{i} = {}", if i < 4 { 0.1 } else { 0.075 })).collect();
    for (name, strategy, reservation, up) in [("buyer", "conceder", 0.2, false), ("seller", "boulware", 0.3, true)] {
        text += &format!(
            "[[parties]]\nname = \"{name}\"\nstrategy = \"{strategy}\"\nreservation = {reservation}\nweights = {{ {} }}\n",
            weights.join(", ")
        );
        for i in 0..12 {
            let rising = up ^ (i % 3 == 0);
            let (a, b) = if rising { (0.0, 1.0) } else { (1.0, 0.0) };
            text += &format!("values.i{i} = {{ linear = [{a:.1}, {b:.1}] }}\n");
        }
    }
    text
}

#[test]
fn a_large_linear_two_party_space_is_analysed_exactly_without_enumerating() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "huge.toml", &huge(false));
    let a = analyze_json(&path);
    assert_eq!(a["exact"], true, "{a}");
    assert_eq!(a["outcomes"].as_u64(), Some(1_000_000_000_000), "{a}");
    assert!(a["note"].is_null(), "{a}");
    assert!(a["nash"].is_object() && !a["pareto"].as_array().unwrap().is_empty(), "{a}");
    let out = dir.path().join("run.jsonl");
    let r = run_within(&["run", s(&path), "--out", s(&out)], LIMIT);
    assert!(!r.stdout.contains("note: approximate"), "{}", r.stdout);
    let rec = &read_jsonl(&out)[0];
    check_record(rec, &[0.2, 0.3]);
    assert_eq!(rec["analysis_exact"], true, "{rec}");
    // 10^12 outcomes, beyond splitting: both parties bid by the search,
    // which says how far its answers may be from the exact ones.
    for (exact, gap) in rec["bids_exact"].as_array().unwrap().iter().zip(rec["bids_gap"].as_array().unwrap()) {
        let gap = gap.as_f64().unwrap_or_else(|| panic!("a search's gap is known: {rec}"));
        assert!((0.0..0.1).contains(&gap), "{rec}");
        assert!(*exact == false || gap == 0.0, "{rec}");
    }
}

#[test]
fn sampled_space_is_analysed_approximately_and_negotiated() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "huge.toml", &huge(true));
    let a = analyze_json(&path);
    assert_eq!(a["exact"], false, "{a}");
    assert_eq!(a["outcomes"], "infinite (real issues)", "{a}");
    let note = a["note"].as_str().unwrap_or_else(|| panic!("a note explains the sample: {a}"));
    assert!(note.starts_with("approximate"), "{note}");
    assert!(a["evaluated"].as_u64().is_some_and(|n| n > 0), "{a}");
    assert!(!a["pareto"].as_array().unwrap().is_empty(), "{a}");
    assert!(a["nash"].is_object(), "{a}");

    let mut lines = Vec::new();
    for engine in ["direct", "actors"] {
        let out = dir.path().join(format!("{engine}.jsonl"));
        let r = run_within(&["run", s(&path), "--engine", engine, "--out", s(&out)], LIMIT);
        assert!(r.stdout.contains("note: approximate"), "{}", r.stdout);
        let recs = read_jsonl(&out);
        assert_eq!(recs.len(), 1);
        let rec = &recs[0];
        check_record(rec, &[0.2, 0.3]);
        assert!(["agreement", "deadline"].contains(&rec["ended_by"].as_str().unwrap()), "{rec}");
        assert_eq!(rec["analysis_exact"], false, "{rec}");
        // Real issues: both parties bid from a seeded sample, in either engine.
        assert_eq!(rec["bids_exact"], serde_json::json!([false, false]), "{rec}");
        assert_eq!(rec["exact"], false, "{rec}");
        lines.push(without_engine(rec.clone()));
    }
    assert_eq!(lines[0], lines[1], "sampled candidates are seeded: both engines agree");
}

// ---------------------------------------------------------------- wall-time deadline

#[test]
fn wall_time_deadline_ends_hardliners() {
    let text = DEAL
        .replace("rounds = 30", "seconds = 0.2")
        .replace("strategy = \"conceder\"", "strategy = \"hardliner\"")
        .replace("strategy = \"boulware\"", "strategy = \"hardliner\"");
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "clock.toml", &text);
    for engine in ["direct", "actors"] {
        let out = dir.path().join(format!("{engine}.jsonl"));
        let started = std::time::Instant::now();
        let r = run_within(&["run", s(&path), "--engine", engine, "--out", s(&out)], LIMIT);
        assert!(started.elapsed() >= std::time::Duration::from_millis(200), "{engine}: ended before the deadline");
        assert!(r.stdout.contains("deadline"), "{engine}: {}", r.stdout);
        let recs = read_jsonl(&out);
        let rec = &recs[0];
        assert_eq!(rec["ended_by"], "deadline", "{engine}: {}", rec["ended_by"]);
        assert!(rec["agreement"].is_null() && rec["ended_by_party"].is_null(), "{engine}");
        assert_eq!(f64s(&rec["utilities"]), vec![0.2, 0.3], "{engine}: reservation values");
        assert!(rec["rounds"].as_u64().is_some_and(|n| n >= 1), "{engine}");
        let time = rec["time"].as_f64().unwrap();
        assert!(time > 0.0 && time <= 1.0, "{engine}: relative time {time}");
        let trace = rec["trace"].as_array().unwrap();
        let offers = rec["offers"].as_u64().unwrap();
        if rec["trace_truncated"] == true {
            assert_eq!(trace.len(), 100_000, "{engine}: a truncated trace keeps the first 100,000 actions");
            assert!(offers > trace.len() as u64, "{engine}");
        } else {
            assert_eq!(offers, trace.len() as u64, "{engine}: hardliners only offer");
        }
    }
}

// ---------------------------------------------------------------- walking away

#[test]
fn party_with_nothing_acceptable_ends_the_negotiation() {
    // The sulky party's best outcome is worth 0.5, below its reservation 0.6.
    let text = r#"name = "itest-sulky"
seed = 2
[protocol]
rounds = 20
[[issues]]
name = "x"
type = "integer"
min = 0
max = 9
[[parties]]
name = "eager"
strategy = "conceder"
reservation = 0.2
weights = { x = 1.0 }
values.x = { linear = [1.0, 0.0] }
[[parties]]
name = "sulky"
strategy = "boulware"
reservation = 0.6
weights = { x = 1.0 }
values.x = { linear = [0.0, 0.5] }
"#;
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "sulky.toml", text);
    for engine in ["direct", "actors"] {
        for strategy in ["boulware", "random", "tit-for-tat", "hardliner"] {
            let out = dir.path().join(format!("{engine}-{strategy}.jsonl"));
            let r = run_ok(&[
                "run",
                s(&path),
                "--engine",
                engine,
                "--strategy",
                &format!("sulky={strategy}"),
                "--out",
                s(&out),
            ]);
            assert!(r.stdout.contains("sulky walked away"), "{engine}/{strategy}: {}", r.stdout);
            let rec = &read_jsonl(&out)[0];
            check_record(rec, &[0.2, 0.6]);
            assert_eq!(rec["ended_by"], "end-negotiation", "{engine}/{strategy}: {rec}");
            assert_eq!(rec["ended_by_party"].as_u64(), Some(1), "{engine}/{strategy}: {rec}");
            assert!(rec["violation"].is_null(), "{rec}");
            assert_eq!(rec["trace"].as_array().unwrap().last().unwrap()["party"], 1, "{rec}");
            // No outcome is rational for both: no frontier to measure against.
            assert!(rec["distance_to_pareto"].is_null() && rec["pareto_efficient"] == false, "{rec}");
        }
    }
}

// ---------------------------------------------------------------- more bad scenarios

#[test]
fn integer_bounds_beyond_2_pow_53() {
    let text = DEAL.replacen("max = 9", "max = 1e17", 1);
    let line = table_line(&text, "max = 1e17");
    assert_scenario_error(&text, line, &["price", "2^53"]);
}

#[test]
fn real_issue_with_an_infinite_bound() {
    let text = DEAL.replacen("type = \"integer\"\nmin = 0\nmax = 9", "type = \"real\"\nmin = 0.0\nmax = inf", 1);
    let line = table_line(&text, "max = inf");
    assert_scenario_error(&text, line, &["price", "finite"]);
}

#[test]
fn rectangle_with_a_nan_utility() {
    let text = RECTANGLES.replacen("utility = 50.0", "utility = nan", 1);
    let line = table_line(&text, "utility = nan");
    assert_scenario_error(&text, line, &["north", "finite"]);
}

#[test]
fn linear_additive_party_with_an_aggregation() {
    let text = DEAL.replacen("name = \"seller\"\n", "name = \"seller\"\naggregation = \"sum\"\n", 1);
    let line = table_line(&text, "aggregation = \"sum\"");
    assert_scenario_error(&text, line, &["seller", "hyper-rectangles"]);
}

#[test]
fn empty_any_acceptance() {
    let strategy = "strategy = { type = \"boulware\", acceptance = { type = \"any\", of = [] } }";
    let text = DEAL.replacen("strategy = \"boulware\"", strategy, 1);
    let line = line_of(&text, strategy);
    assert_scenario_error(&text, line, &["seller", "acceptance", "non-empty"]);
}

#[test]
fn negative_tit_for_tat_kindness() {
    let strategy = "strategy = { type = \"tit-for-tat\", kindness = -1 }";
    let text = DEAL.replacen("strategy = \"boulware\"", strategy, 1);
    let line = line_of(&text, strategy);
    assert_scenario_error(&text, line, &["seller", "kindness", "non-negative"]);
}

#[test]
fn integer_bound_just_beyond_2_pow_53() {
    let text = DEAL.replacen("max = 9", "max = 9007199254740993", 1);
    let line = table_line(&text, "max = 9007199254740993");
    assert_scenario_error(&text, line, &["price", "2^53"]);
}

#[test]
fn infinite_wall_time_deadline_is_bad_input() {
    // Two hardliners and no round limit: only the clock could end them.
    let text = DEAL
        .replace("rounds = 30", "seconds = inf")
        .replace("strategy = \"conceder\"", "strategy = \"hardliner\"")
        .replace("strategy = \"boulware\"", "strategy = \"hardliner\"");
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "bad.toml", &text);
    let at = format!("{}:{}: ", path.display(), line_of(&text, "[protocol]"));
    for engine in ["direct", "actors"] {
        let r = spawn_within(&["run", s(&path), "--engine", engine], std::time::Duration::from_secs(10));
        assert_eq!(r.code, Some(2), "{engine}: exit 2\nstdout:\n{}\nstderr:\n{}", r.stdout, r.stderr);
        assert!(r.stderr.contains(&at) && r.stderr.contains("deadline"), "{engine}: {}", r.stderr);
    }
}

#[test]
fn huge_wall_time_deadline_with_a_round_limit_runs_on_both_engines() {
    let text = DEAL.replace("rounds = 30", "rounds = 5\nseconds = 1e20");
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "deal.toml", &text);
    let mut lines = Vec::new();
    for engine in ["direct", "actors"] {
        let out = dir.path().join(format!("{engine}.jsonl"));
        run_within(&["run", s(&path), "--engine", engine, "--out", s(&out)], LIMIT);
        let rec = read_jsonl(&out).remove(0);
        check_record(&rec, &[0.2, 0.3]);
        assert_ne!(rec["ended_by"], "aborted", "{engine}: {rec}");
        assert!(rec["rounds"].as_u64().is_some_and(|r| r <= 5), "{engine}: {rec}");
        lines.push(without_engine(rec));
    }
    assert_eq!(lines[0], lines[1]);
}

#[test]
fn a_closed_stdout_is_not_a_panic() {
    // `negotium run … | head -1`: the reader goes away before the report.
    let mut child = Command::new(env!("CARGO_BIN_EXE_negotium"))
        .args(["run", "scenarios/series-a.toml", "--repeat", "200", "--engine", "direct"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}: {stderr}", out.status);
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// Two runs into one results file at once interleaved their lines (and a
/// later `--resume` could not read it); the file is now locked while a run
/// writes it, and a second run is refused before it reads or cuts anything.
#[test]
fn a_results_file_or_tournament_folder_in_use_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write(&dir, "deal.toml", &DEAL);
    let out = dir.path().join("out.jsonl");
    run_ok(&["run", s(&scenario), "--repeat", "5", "--out", s(&out)]);
    let before = std::fs::read_to_string(&out).unwrap();
    // Another writer holds the lock (as a running launcher does).
    let holder = std::fs::OpenOptions::new().read(true).write(true).open(&out).unwrap();
    holder.lock().unwrap();
    for args in [
        vec!["run", s(&scenario), "--repeat", "8", "--out", s(&out), "--resume"],
        vec!["run", s(&scenario), "--repeat", "8", "--out", s(&out)],
    ] {
        let r = run_bad(&args);
        assert!(r.stderr.contains("in use by another negotium run"), "{}", r.stderr);
    }
    assert_eq!(std::fs::read_to_string(&out).unwrap(), before, "nothing read, cut or written");
    drop(holder);
    run_ok(&["run", s(&scenario), "--repeat", "8", "--out", s(&out), "--resume"]);
    assert_eq!(read_jsonl(&out).len(), 8);

    let t = write(
        &dir,
        "t.toml",
        &format!("name = \"t\"\nstrategies = [\"boulware\", \"conceder\"]\nscenarios = [\"{}\"]\n", s(&scenario)),
    );
    let folder = dir.path().join("t-out");
    run_ok(&["tournament", s(&t), "--out", s(&folder)]);
    let holder = std::fs::OpenOptions::new().read(true).write(true).open(folder.join("results.jsonl")).unwrap();
    holder.lock().unwrap();
    let r = run_bad(&["tournament", s(&t), "--out", s(&folder)]);
    assert!(r.stderr.contains("in use by another negotium run"), "{}", r.stderr);
}

/// `--resume` once checked only that a line's negotiation was below
/// `--repeat`: a changed seed, strategy or scenario mixed two runs in one
/// file. Each is refused now, by name, before anything is run or written;
/// the same settings append exactly the missing negotiations.
#[test]
fn resume_refuses_other_settings_and_appends_only_the_missing_negotiations() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write(&dir, "deal.toml", &DEAL);
    let out = dir.path().join("out.jsonl");
    run_ok(&["run", s(&scenario), "--repeat", "4", "--out", s(&out)]);
    let four = std::fs::read_to_string(&out).unwrap();

    let resume = |more: &[&str]| {
        let mut args = vec!["run", s(&scenario), "--out", s(&out), "--resume", "--repeat", "8"];
        args.extend_from_slice(more);
        run(&args)
    };
    for (more, named) in
        [(&["--seed", "99"][..], "seed differs"), (&["--strategy", "buyer=hardliner"][..], "strategies differ")]
    {
        let r = resume(more);
        assert_eq!(r.code, Some(2), "{more:?}: {}", r.stderr);
        assert!(r.stderr.contains(named) && r.stderr.contains("out.jsonl:1:"), "{more:?}: {}", r.stderr);
        assert_eq!(std::fs::read_to_string(&out).unwrap(), four, "{more:?}: the file is left as it was");
    }
    let r = resume(&["--seed", "99"]);
    assert!(r.stderr.contains("seed 99"), "the seed this run would give is named: {}", r.stderr);
    // The same file name, other preferences.
    std::fs::write(&scenario, DEAL.replace("reservation = 0.2", "reservation = 0.25")).unwrap();
    let r = resume(&[]);
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert!(r.stderr.contains("scenario differs"), "{}", r.stderr);
    std::fs::write(&scenario, &*DEAL).unwrap();

    let r = resume(&[]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(r.stdout.contains("4 negotiations, engine") && r.stdout.contains("resumed:"), "{}", r.stdout);
    let resumed = std::fs::read_to_string(&out).unwrap();
    assert!(resumed.starts_with(&four), "the first four lines are kept as they were");
    let clean = dir.path().join("clean.jsonl");
    run_ok(&["run", s(&scenario), "--repeat", "8", "--out", s(&clean)]);
    assert_eq!(resumed, std::fs::read_to_string(&clean).unwrap(), "resumed and clean runs write the same file");

    // Lines of an older negotium carry no digest: still resumed, with a note.
    let old: String = four
        .lines()
        .map(|l| {
            let mut v: Json = serde_json::from_str(l).unwrap();
            v.as_object_mut().unwrap().remove("scenario_digest").expect("lines carry a digest");
            format!("{v}\n")
        })
        .collect();
    std::fs::write(&out, &old).unwrap();
    let r = resume(&[]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(r.stderr.contains("4 line(s)") && r.stderr.contains("no scenario digest"), "{}", r.stderr);
    assert_eq!(read_jsonl(&out).len(), 8);
}

// ------------------------------------------------------- results in words

#[test]
fn units_and_labels_show_in_the_summary_and_the_record() {
    let text = DEAL.replace("max = 9\n", "max = 9\nunit = \"k€\"\n").replace(
        "values = [\"red\", \"green\", \"blue\"]\n",
        "values = [\"red\", \"green\", \"blue\"]\nlabels = { red = \"bright red\" }\n",
    );
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "units.toml", &text);
    let r = run_ok(&["run", s(&path), "--engine", "direct", "--json"]);
    let rec: Json = serde_json::from_str(r.stdout.trim()).expect("one record");
    let deal = rec["explanation"]["deal"].as_array().expect("a deal");
    let price = rec["agreement"]["price"].as_i64().unwrap();
    assert_eq!(deal[0]["shown"], format!("{price} k€"));
    let words = run_ok(&["run", s(&path), "--engine", "direct"]).stdout;
    assert!(words.contains(&format!("price  {price} k€")), "{words}");
    // The unit is no part of the negotiation: the same numbers as without it.
    let plain = run_ok(&["run", s(&write(&dir, "plain.toml", &DEAL)), "--engine", "direct", "--json"]).stdout;
    let plain: Json = serde_json::from_str(plain.trim()).unwrap();
    assert_eq!((&rec["utilities"], &rec["trace"]), (&plain["utilities"], &plain["trace"]));
}

#[test]
fn a_label_for_a_value_the_issue_lacks_is_bad_input() {
    let text = DEAL.replace(
        "values = [\"red\", \"green\", \"blue\"]\n",
        "values = [\"red\", \"green\", \"blue\"]\nlabels = { purple = \"x\" }\n",
    );
    let line = line_of(&text, "name = \"color\"") - 1;
    assert_scenario_error(&text, line, &["`purple`", "red, green, blue"]);
}

#[test]
fn repeats_say_whether_they_varied() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "deal.toml", &DEAL);
    let same = run_ok(&["run", s(&path), "--engine", "direct", "--repeat", "5"]).stdout;
    assert!(same.contains("All 5 negotiations were identical"), "{same}");
    assert!(same.contains("mean utility:        buyer "), "party names in the means: {same}");
    assert!(same.contains("Deal reached in round"), "the one negotiation in words: {same}");
    let path = write(&dir, "mixed.toml", &mixed());
    let varied = run_ok(&["run", s(&path), "--engine", "direct", "--repeat", "50"]).stdout;
    assert!(!varied.contains("identical") && !varied.contains("Deal reached"), "{varied}");
    assert!(varied.contains("agreements:          ") && varied.contains(" of 50 ("), "{varied}");
    let json = run_ok(&["run", s(&path), "--engine", "direct", "--repeat", "50", "--json"]).stdout;
    let summary: Json = serde_json::from_str(json.trim()).unwrap();
    assert_eq!((summary["negotiations"].as_u64(), summary["identical"].as_bool()), (Some(50), Some(false)));
    assert!(summary["mean_utilities"]["seller"].is_f64());
}

/// An earlier run's results are not lost to a repeated command: a second
/// run into the same file is refused unless it resumes or is forced.
#[test]
fn a_results_file_that_holds_a_run_is_kept_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "deal.toml", &DEAL);
    let out = dir.path().join("r.jsonl");
    run_ok(&["run", s(&path), "--engine", "direct", "--repeat", "3", "--out", s(&out)]);
    let before = std::fs::read_to_string(&out).unwrap();
    let r = run_bad(&["run", s(&path), "--engine", "direct", "--repeat", "3", "--out", s(&out)]);
    assert!(r.stderr.contains("already holds results") && r.stderr.contains("--force"), "{}", r.stderr);
    assert_eq!(std::fs::read_to_string(&out).unwrap(), before, "the file is untouched");
    run_ok(&["run", s(&path), "--engine", "direct", "--repeat", "4", "--out", s(&out), "--resume"]);
    assert_eq!(read_jsonl(&out).len(), 4);
    run_ok(&["run", s(&path), "--engine", "direct", "--repeat", "2", "--out", s(&out), "--force"]);
    assert_eq!(read_jsonl(&out).len(), 2, "--force replaces the run");
}

/// The native agents, as a user meets them: `negotium strategies` lists
/// each with its parameters (and README's table has a row for each), a
/// run seats one by its original spelling on both engines with the same
/// record, and a bad parameter is exit 2 naming the valid range.
#[test]
fn native_agents_are_listed_seated_and_checked() {
    let r = run_ok(&["strategies", "--json"]);
    let listed: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let agents = listed["agents"].as_array().unwrap();
    assert!(agents.len() >= 7, "{listed}");
    for a in agents {
        let name = a["name"].as_str().unwrap();
        assert!(readme.contains(&format!("| `{name}` | {} |", a["original"].as_str().unwrap())), "README lacks {name}");
    }
    let text = run_ok(&["strategies"]).stdout;
    assert!(text.contains("hardheaded (HardHeaded, ANAC 2011 winner)") && text.contains("top_bids = 4"), "{text}");

    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "deal.toml", &DEAL);
    let mut records = Vec::new();
    for engine in ["direct", "actors"] {
        let out = dir.path().join(format!("{engine}.jsonl"));
        run_ok(&[
            "run",
            s(&path),
            "--engine",
            engine,
            "--repeat",
            "4",
            "--out",
            s(&out),
            "--strategy",
            "buyer=HardHeaded",
            "--strategy",
            "seller={ type = \"agentk\", tremor = 1.5 }",
        ]);
        let recs = read_jsonl(&out);
        assert_eq!(recs[0]["strategies"], serde_json::json!(["HardHeaded", "agentk(tremor=1.5)"]));
        records.push(recs.into_iter().map(without_engine).collect::<Vec<_>>());
    }
    assert_eq!(records[0], records[1], "the same sessions on both engines");

    let r = run_bad(&["run", s(&path), "--strategy", "buyer={ type = \"hardheaded\", e = 0 }"]);
    assert!(r.stderr.contains("`e` must be a number in [0.001, 10]"), "{}", r.stderr);
    let r = run_bad(&["run", s(&path), "--strategy", "buyer={ type = \"micro\", speed = 2 }"]);
    assert!(r.stderr.contains("unknown parameter `speed`") && r.stderr.contains("no parameters"), "{}", r.stderr);
}
