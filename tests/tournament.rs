//! `negotium tournament` end to end: session counts (role rotation, order
//! rotation, self-play), resuming a killed run, the summary against means
//! recomputed from results.jsonl, and bad tournament files (exit 2, file:line).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::LazyLock;

use common::negotium;
use serde_json::Value as Json;
use tempfile::TempDir;

mod common;

/// A bilateral scenario; its parties' strategies are the tournament's.
static DEAL: LazyLock<String> = LazyLock::new(|| common::deal("deal", None));

/// The same issues with a third party.
fn trio() -> String {
    common::trio("trio", None)
}

/// Three strategies (one seeded-random, one labelled), two scenarios, two
/// repetitions; `extra` is appended (options).
fn tournament_text(extra: &str) -> String {
    format!(
        r#"name = "itest"
strategies = [
  "boulware",
  {{ type = "random", p_accept = 0.1 }},
  {{ type = "time-dependent", e = 2.0, label = "td2" }},
]
scenarios = ["scenarios/deal.toml", "scenarios/trio.toml"]
repetitions = 2
seed = 5
{extra}
"#
    )
}

const LABELS: [&str; 3] = ["boulware", "random(p_accept=0.1)", "td2"];

struct Fixture {
    dir: TempDir,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(dir.path().join("scenarios")).unwrap();
        std::fs::write(dir.path().join("scenarios/deal.toml"), &*DEAL).unwrap();
        std::fs::write(dir.path().join("scenarios/trio.toml"), trio()).unwrap();
        Self { dir }
    }

    /// Writes a tournament file and returns its path.
    fn tournament(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn out(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// Runs a tournament with `--json` and returns its report.
fn run_json(file: &Path, out: &Path, more: &[&str]) -> Json {
    let mut args = vec!["tournament", file.to_str().unwrap(), "--out", out.to_str().unwrap(), "--json"];
    args.extend(more);
    let r = negotium(&args);
    assert_eq!(r.code, Some(0), "stdout: {}\nstderr: {}", r.stdout, r.stderr);
    serde_json::from_str(r.stdout.trim()).expect("--json prints one JSON object")
}

fn lines(path: &Path) -> Vec<Json> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn by_key(lines: &[Json]) -> BTreeMap<String, Json> {
    let mut map = BTreeMap::new();
    for l in lines {
        let key = l["key"].as_str().unwrap().to_string();
        assert!(map.insert(key.clone(), l.clone()).is_none(), "key {key} appears twice");
    }
    map
}

fn strs(v: &Json) -> Vec<String> {
    v.as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect()
}

#[test]
fn counts_follow_role_rotation_order_rotation_and_self_play() {
    let fx = Fixture::new();
    // S = 3 strategies; deal: n = 2, trio: n = 3; 2 repetitions.
    let cases = [
        ("", (9 * 2 + 27 * 3) * 2),
        ("self_play = false", (6 * 2 + 24 * 3) * 2),
        ("rotate_order = false", (9 + 27) * 2),
        ("self_play = false\nrotate_order = false", (6 + 24) * 2),
    ];
    for (i, (extra, expected)) in cases.iter().enumerate() {
        let file = fx.tournament(&format!("t{i}.toml"), &tournament_text(extra));
        let out = fx.out(&format!("out{i}"));
        let report = run_json(&file, &out, &[]);
        assert_eq!(report["negotiations"], *expected, "{extra}");
        assert_eq!(report["ran"], *expected, "{extra}");
        let results = lines(&out.join("results.jsonl"));
        assert_eq!(results.len(), *expected, "{extra}");
        by_key(&results);

        let self_play = !extra.contains("self_play = false");
        let rotate = !extra.contains("rotate_order = false");
        // Role rotation: per scenario, every strategy plays every profile
        // equally often; with order rotation every profile opens equally often.
        let mut plays: HashMap<(String, String, String), usize> = HashMap::new();
        let mut opens: HashMap<(String, String), usize> = HashMap::new();
        for r in &results {
            let scenario = r["scenario"].as_str().unwrap().to_string();
            let parties = strs(&r["parties"]);
            let assignment = strs(&r["assignment"]);
            assert_eq!(parties.len(), assignment.len());
            if !self_play {
                assert!(assignment.iter().any(|a| a != &assignment[0]), "self-play session {}", r["key"]);
            }
            for (p, s) in parties.iter().zip(&assignment) {
                *plays.entry((scenario.clone(), p.clone(), s.clone())).or_default() += 1;
            }
            *opens.entry((scenario, parties[0].clone())).or_default() += 1;
        }
        for (scenario, parties) in [("deal", vec!["buyer", "seller"]), ("trio", vec!["buyer", "seller", "broker"])] {
            let n = parties.len();
            let rotations = if rotate { n } else { 1 };
            for p in &parties {
                let counts: Vec<usize> = LABELS
                    .iter()
                    .map(|s| plays.get(&(scenario.into(), p.to_string(), s.to_string())).copied().unwrap_or(0))
                    .collect();
                assert!(counts.iter().all(|&c| c == counts[0] && c > 0), "{extra}: {scenario}/{p}: {counts:?}");
                if self_play {
                    assert_eq!(counts[0], 3usize.pow(n as u32 - 1) * rotations * 2, "{extra}: {scenario}/{p}");
                }
                let opened = opens.get(&(scenario.into(), p.to_string())).copied().unwrap_or(0);
                if rotate || *p == parties[0] {
                    assert!(opened > 0, "{extra}: {scenario}: {p} never opens");
                } else {
                    assert_eq!(opened, 0, "{extra}: {scenario}: {p} opens without rotation");
                }
            }
        }
    }
}

#[test]
fn a_killed_run_resumes_without_losing_or_repeating_sessions() {
    let fx = Fixture::new();
    // With traces: long lines, so the cut line is clearly partial.
    let file = fx.tournament("t.toml", &tournament_text("trace = true"));
    let clean = fx.out("clean");
    let report = run_json(&file, &clean, &[]);
    let total = report["negotiations"].as_u64().unwrap() as usize;
    assert_eq!(total, 198);
    let clean_text = std::fs::read_to_string(clean.join("results.jsonl")).unwrap();
    let clean_lines: Vec<&str> = clean_text.lines().collect();
    assert_eq!(clean_lines.len(), total);
    assert!(clean_lines.iter().all(|l| l.contains("\"trace\":[{")), "traces are recorded");

    // A run killed after K lines, in the middle of line K + 1.
    let k = 57;
    let killed = fx.out("killed");
    std::fs::create_dir(&killed).unwrap();
    let partial = &clean_lines[k][..clean_lines[k].len() / 2];
    let mut text: String = clean_lines[..k].iter().map(|l| format!("{l}\n")).collect();
    text.push_str(partial);
    std::fs::write(killed.join("results.jsonl"), text).unwrap();

    let report = run_json(&file, &killed, &["--resume", "--threads", "1"]);
    assert_eq!(report["already_done"], k);
    assert_eq!(report["ran"], total - k);
    assert_eq!(report["truncated_bytes"], partial.len());

    let resumed = by_key(&lines(&killed.join("results.jsonl")));
    let expected = by_key(&lines(&clean.join("results.jsonl")));
    assert_eq!(resumed.len(), total);
    assert_eq!(resumed.keys().collect::<Vec<_>>(), expected.keys().collect::<Vec<_>>());
    for (key, line) in &expected {
        assert_eq!(&resumed[key], line, "session {key} differs after resuming");
    }
    for table in ["results.csv", "summary.csv", "summary.md"] {
        assert_eq!(
            std::fs::read_to_string(killed.join(table)).unwrap(),
            std::fs::read_to_string(clean.join(table)).unwrap(),
            "{table}"
        );
    }

    // Running again into the same directory runs nothing.
    let again = run_json(&file, &killed, &[]);
    assert_eq!(again["ran"], 0);
    assert_eq!(again["already_done"], total);
    assert_eq!(lines(&killed.join("results.jsonl")).len(), total);
}

#[test]
fn summary_equals_means_recomputed_from_results() {
    let fx = Fixture::new();
    let file = fx.tournament("t.toml", &tournament_text(""));
    let out = fx.out("out");
    let report = run_json(&file, &out, &[]);
    let results = lines(&out.join("results.jsonl"));

    #[derive(Default)]
    struct Acc {
        n: usize,
        utility: f64,
        advantage: f64,
        agreed: usize,
        welfare: f64,
        nash: (f64, usize),
        pareto: (f64, usize),
        rounds: f64,
    }
    let mut acc: BTreeMap<String, Acc> = BTreeMap::new();
    for r in &results {
        let utilities: Vec<f64> = r["utilities"].as_array().unwrap().iter().map(|u| u.as_f64().unwrap()).collect();
        let rvs: Vec<f64> = r["reservation_values"].as_array().unwrap().iter().map(|u| u.as_f64().unwrap()).collect();
        assert!((r["welfare"].as_f64().unwrap() - utilities.iter().sum::<f64>()).abs() < 1e-12);
        for (i, s) in strs(&r["assignment"]).into_iter().enumerate() {
            let a = acc.entry(s).or_default();
            a.n += 1;
            a.utility += utilities[i];
            a.advantage += utilities[i] - rvs[i];
            a.agreed += !r["agreement"].is_null() as usize;
            a.welfare += r["welfare"].as_f64().unwrap();
            a.rounds += r["rounds"].as_f64().unwrap();
            for (m, field) in [(&mut a.nash, "distance_to_nash"), (&mut a.pareto, "distance_to_pareto")] {
                if let Some(d) = r[field].as_f64() {
                    m.0 += d;
                    m.1 += 1;
                }
            }
        }
    }
    assert_eq!(acc.keys().collect::<Vec<_>>(), {
        let mut l = LABELS.to_vec();
        l.sort();
        l
    });

    let csv = std::fs::read_to_string(out.join("summary.csv")).unwrap();
    let mut rows = csv.lines();
    let head: Vec<&str> = rows.next().unwrap().split(',').collect();
    let col = |name: &str| head.iter().position(|h| *h == name).unwrap_or_else(|| panic!("no column {name}"));
    let close = |a: f64, b: f64, what: &str| assert!((a - b).abs() <= 1e-12 * (1.0 + b.abs()), "{what}: {a} vs {b}");
    let mut previous = f64::INFINITY;
    let mut seen = 0;
    for (rank, line) in rows.enumerate() {
        let cells: Vec<&str> = line.split(',').collect();
        let num = |name: &str| cells[col(name)].parse::<f64>().unwrap();
        let label = cells[col("strategy")];
        let a = &acc[label];
        let n = a.n as f64;
        assert_eq!(cells[col("rank")], (rank + 1).to_string());
        assert_eq!(cells[col("n")], a.n.to_string(), "{label}");
        close(num("mean_utility"), a.utility / n, label);
        close(num("mean_advantage"), a.advantage / n, label);
        close(num("agreement_rate"), a.agreed as f64 / n, label);
        close(num("mean_welfare"), a.welfare / n, label);
        close(num("mean_rounds"), a.rounds / n, label);
        close(num("mean_distance_to_nash"), a.nash.0 / a.nash.1 as f64, label);
        close(num("mean_distance_to_pareto"), a.pareto.0 / a.pareto.1 as f64, label);
        // Sorted by mean utility, best first.
        assert!(num("mean_utility") <= previous, "summary is not sorted by mean utility");
        previous = num("mean_utility");
        seen += 1;
        // The --json report carries the same numbers.
        let js = report["summary"].as_array().unwrap().iter().find(|s| s["strategy"] == label).unwrap();
        close(js["mean_utility"].as_f64().unwrap(), a.utility / n, label);
        assert_eq!(js["n"], a.n);
    }
    assert_eq!(seen, 3);
    // Every (negotiation, party) is counted once.
    let parties: usize = results.iter().map(|r| r["parties"].as_array().unwrap().len()).sum();
    assert_eq!(acc.values().map(|a| a.n).sum::<usize>(), parties);

    // results.csv: one row per negotiation, per-party columns up to three.
    let csv = std::fs::read_to_string(out.join("results.csv")).unwrap();
    assert_eq!(csv.lines().count(), results.len() + 1);
    let head = csv.lines().next().unwrap();
    for column in ["key", "scenario", "repetition", "strategy_3", "utility_3", "agreement", "welfare", "rounds"] {
        assert!(head.split(',').any(|h| h == column), "results.csv lacks {column}: {head}");
    }
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(md.contains("| td2 |"), "{md}");

    // The table is printed too.
    let r = negotium(&["tournament", file.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    for label in LABELS {
        assert!(r.stdout.contains(label), "{}", r.stdout);
    }
}

#[test]
fn workload_scenarios_and_rounds_override() {
    let fx = Fixture::new();
    let file = fx.tournament(
        "w.toml",
        r#"name = "w"
strategies = ["boulware", "conceder"]
workload = { name = "w1", seeds = [1, 2] }
rounds = 20
"#,
    );
    let out = fx.out("out");
    let report = run_json(&file, &out, &[]);
    // 2 seeds × 4 ordered pairs × 2 openers × 1 repetition.
    assert_eq!(report["negotiations"], 16);
    let results = lines(&out.join("results.jsonl"));
    let scenarios: std::collections::BTreeSet<&str> = results.iter().map(|r| r["scenario"].as_str().unwrap()).collect();
    assert_eq!(scenarios.into_iter().collect::<Vec<_>>(), ["w1-seed1", "w1-seed2"]);
    assert!(results.iter().all(|r| r["rounds"].as_u64().unwrap() <= 20));
    assert!(results.iter().all(|r| r["trace"] == serde_json::json!([])), "no traces by default");
}

/// Line (1-based) of the first occurrence of `needle` in `text`.
fn line_of(text: &str, needle: &str) -> usize {
    let at = text.find(needle).unwrap_or_else(|| panic!("`{needle}` not in the text"));
    text[..at].matches('\n').count() + 1
}

#[test]
fn bad_tournament_files_exit_2_with_file_and_line() {
    let fx = Fixture::new();
    let base = tournament_text("");
    let broken_scenario = DEAL.replace("weights = { price = 0.7, color = 0.3 }", "weights = { price = 0.7 }");
    std::fs::write(fx.dir.path().join("scenarios/broken.toml"), &broken_scenario).unwrap();
    let cases: Vec<(&str, String, &str, &str)> = vec![
        ("unknown strategy", base.replace("\"boulware\",", "\"genius\","), "\"genius\"", "unknown strategy `genius`"),
        ("bad parameter", base.replace("e = 2.0", "e = -1.0"), "e = -1.0", "must be a positive number"),
        (
            "duplicate label",
            base.replace("label = \"td2\"", "label = \"boulware\""),
            "label = \"boulware\"",
            "listed twice",
        ),
        ("missing scenario", base.replace("scenarios/trio.toml", "scenarios/none.toml"), "scenarios = [", "none.toml"),
        (
            "broken scenario",
            base.replace("scenarios/trio.toml", "scenarios/broken.toml"),
            "scenarios = [",
            "broken.toml:",
        ),
        ("unknown key", base.replace("repetitions = 2", "repetitons = 2"), "repetitons", "unknown field"),
        ("zero repetitions", base.replace("repetitions = 2", "repetitions = 0"), "repetitions = 0", "at least 1"),
        (
            "negative seed",
            base.replace("seed = 5", "seed = -5"),
            "seed = -5",
            "seed must be a whole number, 0 or more, got -5",
        ),
        (
            "negative repetitions",
            base.replace("repetitions = 2", "repetitions = -2"),
            "repetitions = -2",
            "repetitions must be a positive whole number, got -2",
        ),
        (
            "unknown workload",
            base.replace("seed = 5", "seed = 5\nworkload = { name = \"w9\" }"),
            "workload =",
            "unknown workload",
        ),
        ("not toml", base.replace("repetitions = 2", "repetitions = = 2"), "repetitions = = 2", ""),
    ];
    for (what, text, needle, message) in cases {
        let file = fx.tournament("bad.toml", &text);
        let r = negotium(&["tournament", file.to_str().unwrap(), "--out", fx.out("bad-out").to_str().unwrap()]);
        assert_eq!(r.code, Some(2), "{what}: {}", r.stderr);
        let at = format!("bad.toml:{}:", line_of(&text, needle));
        assert!(r.stderr.contains(&at), "{what}: expected `{at}` in: {}", r.stderr);
        assert!(r.stderr.contains(message), "{what}: expected `{message}` in: {}", r.stderr);
    }
    // One strategy without self-play holds no negotiation.
    let lone = fx.tournament(
        "lone.toml",
        "name = \"lone\"\nstrategies = [\"boulware\"]\nscenarios = [\"scenarios/deal.toml\"]\nself_play = false\n",
    );
    let r = negotium(&["tournament", lone.to_str().unwrap(), "--out", fx.out("lone-out").to_str().unwrap()]);
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert!(r.stderr.contains("no negotiation"), "{}", r.stderr);

    // Nothing to resume starts the tournament, as `run --resume` does (safe
    // on a retried job's first attempt); results of another tournament are refused.
    let good = fx.tournament("good.toml", &base);
    let empty = fx.out("empty");
    let r = negotium(&["tournament", good.to_str().unwrap(), "--out", empty.to_str().unwrap(), "--resume"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(r.stderr.contains("holds no results yet"), "{}", r.stderr);
    assert!(!lines(&empty.join("results.jsonl")).is_empty());
    let other = fx.tournament("other.toml", &base.replace("name = \"itest\"", "name = \"other\""));
    let out = fx.out("shared");
    run_json(&good, &out, &[]);
    let r = negotium(&["tournament", other.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert!(r.stderr.contains("results.jsonl:1:") && r.stderr.contains("`itest`"), "{}", r.stderr);
    // A corrupt line in the middle is reported, not skipped.
    let path = out.join("results.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut ls: Vec<&str> = text.lines().collect();
    ls[3] = "{ not json";
    std::fs::write(&path, ls.join("\n") + "\n").unwrap();
    let r = negotium(&["tournament", good.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert!(r.stderr.contains("results.jsonl:4:"), "{}", r.stderr);
}

#[test]
fn a_run_killed_for_real_resumes() {
    let fx = Fixture::new();
    let text = |trace: bool| {
        format!(
            "name = \"kill\"\nstrategies = [\"boulware\", \"conceder\", \"linear\", \"tit-for-tat\"]\n\
             workload = {{ name = \"w1\", seeds = [1, 2] }}\nrepetitions = 40\ntrace = {trace}\n"
        )
    };
    let total = 2 * 16 * 2 * 40;
    let file = fx.tournament("kill.toml", &text(true));
    let out = fx.out("killed");
    let mut child = Command::new(env!("CARGO_BIN_EXE_negotium"))
        .args(["tournament", file.to_str().unwrap(), "--out", out.to_str().unwrap(), "--json"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let results = out.join("results.jsonl");
    let started = std::time::Instant::now();
    while std::fs::metadata(&results).map_or(0, |m| m.len()) < 200_000 && started.elapsed().as_secs() < 60 {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let before = std::fs::read_to_string(&results).unwrap().lines().count();

    let report = run_json(&file, &out, &["--resume"]);
    assert_eq!(report["negotiations"], total);
    assert!(report["already_done"].as_u64().unwrap() as usize <= before);
    assert_eq!(report["already_done"].as_u64().unwrap() + report["ran"].as_u64().unwrap(), total as u64);
    let resumed = by_key(&lines(&results));
    assert_eq!(resumed.len(), total);

    // The same tournament without traces, clean: same tables.
    let clean_file = fx.tournament("clean.toml", &text(false));
    let clean = fx.out("clean");
    run_json(&clean_file, &clean, &[]);
    for table in ["results.csv", "summary.csv"] {
        assert_eq!(
            std::fs::read_to_string(out.join(table)).unwrap(),
            std::fs::read_to_string(clean.join(table)).unwrap(),
            "{table}"
        );
    }
}

/// Scenario paths are relative to the tournament file, not to the working
/// directory: a file one folder down that names `scenarios/…` as if it sat
/// beside them is refused with where the path led and by which rule.
#[test]
fn a_scenario_path_that_leads_nowhere_says_where_it_led() {
    let fx = Fixture::new();
    std::fs::create_dir(fx.dir.path().join("sub")).unwrap();
    let text = tournament_text("");
    fx.tournament("sub/t.toml", &text);
    // Run from the folder where `scenarios/deal.toml` does exist.
    let out = Command::new(common::BIN)
        .current_dir(fx.dir.path())
        .args(["tournament", "sub/t.toml", "--out", "out"])
        .output()
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let led = fx.dir.path().join("sub/scenarios/deal.toml");
    let want = format!(
        "sub/t.toml:{}: scenario `scenarios/deal.toml` (resolved to {}, relative to the tournament file sub/t.toml): no such file or folder",
        line_of(&text, "scenarios = ["),
        led.display()
    );
    assert!(stderr.contains(&want), "expected `{want}` in: {stderr}");
}

/// README's tournament file, saved where README says (the repository
/// root): every scenario it names is found.
#[test]
fn the_readme_tournament_file_works_from_the_repository_root() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    if !root.join("../shared/data/genius/y2012/CameraB").is_dir() {
        eprintln!("skipped: ../shared/data/genius/y2012/CameraB is not here");
        return;
    }
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let from = readme.find("`my-tournament.toml`, saved in the repository root:").expect("README's tournament");
    let block = &readme[from..];
    let start = block.find("```toml\n").expect("its TOML block") + "```toml\n".len();
    let text = &block[start..start + block[start..].find("```").expect("the block's end")];
    let t = negotium::tournament::Tournament::parse(text, "my-tournament.toml", root).unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<&str> = t.venues.iter().map(|v| v.scenario.name.as_str()).collect();
    assert_eq!(names.len(), 2, "{names:?}");
}

#[test]
fn genius_folders_take_part() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data");
    let party = data.join("geniusweb/Party");
    let vacation = data.join("genius/y2015/group9-vacation");
    if !party.is_dir() || !vacation.is_dir() {
        eprintln!("skipped: ../shared/data (GeniusWeb Party, Genius y2015/group9-vacation) is not here");
        return;
    }
    let fx = Fixture::new();
    let file = fx.tournament(
        "g.toml",
        &format!(
            "name = \"g\"\nstrategies = [\"boulware\", \"conceder\"]\nscenarios = [{:?}, {:?}]\n",
            party.display().to_string(),
            vacation.display().to_string()
        ),
    );
    let out = fx.out("out");
    let report = run_json(&file, &out, &[]);
    // Party: 2 parties, 4 pairs × 2 openers; vacation: 3 parties, 8 triples × 3 openers.
    assert_eq!(report["negotiations"], 4 * 2 + 8 * 3);
    let results = lines(&out.join("results.jsonl"));
    assert!(results.iter().any(|r| r["parties"].as_array().unwrap().len() == 3));
}

/// The tournament takes the executor the command chose: the actor engine
/// plays every session as the direct one does, rotations and three-party
/// scenarios included.
#[test]
fn the_actor_engine_plays_the_same_tournament() {
    let fx = Fixture::new();
    let file = fx.tournament("t.toml", &tournament_text("trace = true"));
    let direct = fx.out("direct");
    let actors = fx.out("actors");
    assert_eq!(run_json(&file, &direct, &[])["engine"], "direct");
    let report = run_json(&file, &actors, &["--engine", "actors", "--threads", "2", "--concurrency", "8"]);
    assert_eq!(report["engine"], "actors");
    let without_engine = |mut l: Json| {
        assert!(l.as_object_mut().unwrap().remove("engine").is_some(), "lines name their engine");
        l
    };
    let d = by_key(&lines(&direct.join("results.jsonl")));
    let a = by_key(&lines(&actors.join("results.jsonl")));
    assert_eq!(d.len(), 198);
    assert_eq!(d.keys().collect::<Vec<_>>(), a.keys().collect::<Vec<_>>());
    for (key, line) in d {
        assert_eq!(without_engine(line), without_engine(a[&key].clone()), "session {key}");
    }
}

/// A tournament resumed after one of its strategies changed under the same
/// label would mix two strategies in one row; it is refused, by name.
#[test]
fn a_tournament_whose_strategy_changed_is_not_resumed() {
    let fx = Fixture::new();
    let file = fx.tournament("t.toml", &tournament_text(""));
    let out = fx.out("out");
    run_json(&file, &out, &[]);
    let before = std::fs::read_to_string(out.join("results.jsonl")).unwrap();
    let changed = fx.tournament("t.toml", &tournament_text("").replace("e = 2.0", "e = 3.0"));
    let r = negotium(&["tournament", changed.to_str().unwrap(), "--out", out.to_str().unwrap(), "--resume"]);
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert!(r.stderr.contains("strategies differ") && r.stderr.contains("results.jsonl:"), "{}", r.stderr);
    assert_eq!(std::fs::read_to_string(out.join("results.jsonl")).unwrap(), before, "nothing written");
}

/// Native ANAC agents take part like built-ins, bilateral and
/// multilateral, and the summary says which gaps are real: each strategy's
/// interval holds its mean, a gap called real has an interval that leaves
/// 0 out, and summary.md carries every pair.
#[test]
fn native_agents_play_and_the_summary_says_which_gaps_are_real() {
    let fx = Fixture::new();
    let file = fx.tournament(
        "agents.toml",
        "name = \"agents\"\nstrategies = [\"hardheaded\", \"AgentK\", \"micro\", { type = \"ponpokoagent\", pattern = 1 }, \
         \"nicetitfortat\", \"conceder\"]\nscenarios = [\"scenarios/deal.toml\", \"scenarios/trio.toml\"]\nrepetitions = 2\n",
    );
    let out = fx.out("out");
    let report = run_json(&file, &out, &[]);
    let results = lines(&out.join("results.jsonl"));
    assert!(results.iter().all(|r| r["violation"].is_null()), "no agent breaks the rules");
    assert!(results.iter().any(|r| r["parties"].as_array().unwrap().len() == 3));
    let stats = report["summary"].as_array().expect("summary rows");
    assert_eq!(stats.len(), 6);
    for (k, s) in stats.iter().enumerate() {
        let mean = s["mean_utility"].as_f64().unwrap();
        let ci: Vec<f64> = s["utility_interval"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
        assert!(ci[0] <= mean && mean <= ci[1], "{s}");
        match stats.get(k + 1) {
            Some(next) => {
                let gap = &s["gap_to_next"];
                let d = gap["difference"].as_f64().unwrap();
                assert!((d - (mean - next["mean_utility"].as_f64().unwrap())).abs() < 1e-12);
                let i: Vec<f64> = gap["interval"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
                assert_eq!(gap["real"].as_bool().unwrap(), i[0] > 0.0 || i[1] < 0.0, "{gap}");
            }
            None => assert!(s["gap_to_next"].is_null()),
        }
    }
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(md.contains("## Pairwise") && md.contains("| hardheaded |"), "{md}");
    let csv = std::fs::read_to_string(out.join("summary.csv")).unwrap();
    assert!(csv.lines().next().unwrap().contains("utility_ci_low,utility_ci_high,gap_to_next_low"), "{csv}");
}
