//! End-to-end tests of the `negotium` binary: `run`, `analyze` and `bench`,
//! their JSON output, and how bad input is reported (exit code 2, file and
//! line in the message, never a panic).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Map, Value as Json};
use tempfile::TempDir;

/// A small valid bilateral scenario. Line numbers matter to the error tests;
/// they are computed from the text with [`line_of`], not hard-coded.
const DEAL: &str = r#"name = "itest-deal"
seed = 11
[protocol]
rounds = 30
[[issues]]
name = "price"
type = "integer"
min = 0
max = 9
[[issues]]
name = "color"
type = "discrete"
values = ["red", "green", "blue"]
[[parties]]
name = "buyer"
strategy = "conceder"
reservation = 0.2
weights = { price = 0.7, color = 0.3 }
values.price = { linear = [1.0, 0.0] }
values.color = { red = 1.0, green = 0.5, blue = 0.0 }
[[parties]]
name = "seller"
strategy = "boulware"
reservation = 0.3
weights = { price = 0.6, color = 0.4 }
values.price = { linear = [0.0, 1.0] }
values.color = { red = 0.2, green = 1.0, blue = 0.6 }
"#;

/// The same deal with three rounds and random / tit-for-tat parties: some
/// seeds agree, some run into the deadline.
fn mixed() -> String {
    DEAL.replace("rounds = 30", "rounds = 3")
        .replace("strategy = \"conceder\"", "strategy = \"random\"")
        .replace("strategy = \"boulware\"", "strategy = \"tit-for-tat\"")
}

/// Three parties over the same issues.
fn trio() -> String {
    format!(
        "{}{}",
        DEAL.replace("itest-deal", "itest-trio"),
        r#"[[parties]]
name = "broker"
strategy = "linear"
reservation = 0.1
weights = { price = 0.5, color = 0.5 }
values.price = { triangular = [0.0, 4.5, 9.0] }
values.color = { red = 0.5, green = 0.0, blue = 1.0 }
"#
    )
}

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_negotium"))
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn run(args: &[&str]) -> Run {
    let Output { status, stdout, stderr } = bin().args(args).output().expect("the negotium binary runs");
    let r = Run {
        code: status.code(),
        stdout: String::from_utf8(stdout).expect("utf-8 stdout"),
        stderr: String::from_utf8(stderr).expect("utf-8 stderr"),
    };
    assert!(!r.stderr.contains("panicked"), "negotium {args:?} panicked:\n{}", r.stderr);
    r
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
    let path = write(&dir, "deal.toml", DEAL);
    let mut outputs = Vec::new();
    for engine in ["direct", "actors"] {
        let r = run_ok(&["run", s(&path), "--engine", engine]);
        let out = r.stdout.to_lowercase();
        assert!(out.contains("agreement"), "{engine}: {}", r.stdout);
        assert!(out.contains("utility buyer") && out.contains("utility seller"), "{engine}: {}", r.stdout);
        assert!(out.contains("rounds:"), "{engine}: {}", r.stdout);
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
    let path = write(&dir, "deal.toml", DEAL);
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
    let path = write(&dir, "deal.toml", DEAL);
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
    let path = write(&dir, "deal.toml", DEAL);
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

    // The table form names the same points.
    let t = run_ok(&["analyze", s(&path)]);
    for label in ["Nash", "Pareto frontier", "max welfare"] {
        assert!(t.stdout.contains(label), "{}", t.stdout);
    }
}

#[test]
fn analyze_json_bilateral() {
    check_analysis(DEAL, "deal.toml", 2, 30);
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

#[test]
fn zero_repeats_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "deal.toml", DEAL);
    let r = run_bad(&["run", s(&path), "--repeat", "0"]);
    assert!(r.stderr.contains("--repeat"), "{}", r.stderr);
}
