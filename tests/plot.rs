//! `negotium plot`, driven through the binary: negotiation and tournament
//! plots in SVG and PNG, and bad input (exit 2 with a clear message).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_negotium");
const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn negotium(args: &[&str], cwd: &Path) -> Output {
    Command::new(BIN).args(args).current_dir(cwd).output().expect("run negotium")
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn ok(out: Output) -> String {
    let t = text(&out);
    assert!(out.status.success(), "negotium failed: {t}");
    t
}

/// `negotium run SCENARIO --out DIR/NAME` (direct engine), returns the path.
fn results(dir: &Path, scenario: &str, name: &str, extra: &[&str]) -> PathBuf {
    let out = dir.join(name);
    let mut args = vec!["run", scenario, "--engine", "direct", "--out", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    ok(negotium(&args, &repo(".")));
    out
}

fn assert_svg(path: &Path, words: &[&str]) -> String {
    let svg = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(svg.trim_start().starts_with("<svg") || svg.trim_start().starts_with("<?xml"), "not SVG: {}", &svg[..80]);
    assert!(svg.trim_end().ends_with("</svg>"), "SVG not closed");
    assert_eq!(svg.matches("<text").count(), svg.matches("</text>").count(), "unbalanced <text> elements");
    for w in words {
        assert!(svg.contains(w), "{} lacks `{w}`", path.display());
    }
    svg
}

fn assert_png(path: &Path) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(bytes.starts_with(PNG_SIGNATURE), "{} is not a PNG", path.display());
    assert!(bytes.len() > 10_000, "{} is suspiciously small ({} bytes)", path.display(), bytes.len());
}

#[test]
fn negotiation_plot_in_svg_and_png() {
    let dir = tempfile::tempdir().unwrap();
    let res = results(dir.path(), "scenarios/series-a.toml", "sa.jsonl", &[]);
    let plots = dir.path().join("plots");
    let out = ok(negotium(
        &["plot", res.to_str().unwrap(), "--scenario", "scenarios/series-a.toml", "--out", plots.to_str().unwrap()],
        &repo("."),
    ));
    let svg = assert_svg(
        &plots.join("sa-session-0.svg"),
        &[
            "founder",
            "investor",
            "Nash",
            "Nash (",
            "Kalai–Smorodinsky (",
            "Pareto frontier (",
            "all 43,008 outcomes",
            "Series-A",
            "missed joint gain (",
            "pre_money: $",
        ],
    );
    assert!(
        svg.contains("utility of founder (before discount)") && svg.contains("utility of investor (before discount)"),
        "axis labels say which utility"
    );
    assert!(!svg.contains("approximate"), "an enumerated space is exact");
    assert_png(&plots.join("sa-session-0.png"));
    assert!(out.contains("sa-session-0.png"), "{out}");
}

#[test]
fn without_a_scenario_the_traces_are_plotted_and_a_note_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let res = results(dir.path(), "scenarios/series-a.toml", "sa.jsonl", &["--repeat", "3"]);
    // From the temporary folder, no scenario file can be found by name.
    let out = ok(negotium(&["plot", "sa.jsonl", "--session", "2", "--format", "svg"], dir.path()));
    assert!(out.contains("note:") && out.contains("--scenario"), "{out}");
    let svg = assert_svg(
        &dir.path().join("sa-session-2.svg"),
        &["founder&apos;s offers", "investor&apos;s offers", "negotiation 2"],
    );
    assert!(
        !svg.contains("Pareto frontier (") && !svg.contains("Nash ("),
        "no frontier nor Nash point without the scenario"
    );
    assert!(!dir.path().join("sa-session-2.png").exists(), "--format svg writes no PNG");
    assert!(res.exists());
}

#[test]
fn every_negotiation_with_all_and_the_scenario_found_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let res = results(dir.path(), "scenarios/series-a.toml", "sa.jsonl", &["--repeat", "3"]);
    // From the repository, ./scenarios holds a file with the record's scenario name.
    let out = ok(negotium(&["plot", res.to_str().unwrap(), "--all", "--format", "svg"], &repo(".")));
    assert!(out.contains("found by name"), "{out}");
    for k in 0..3 {
        assert_svg(&dir.path().join(format!("sa-session-{k}.svg")), &["Nash (", "Pareto frontier ("]);
    }
}

#[test]
fn multilateral_shows_the_first_two_parties_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let res = results(dir.path(), "scenarios/data-alliance.toml", "da.jsonl", &[]);
    let out = ok(negotium(
        &["plot", res.to_str().unwrap(), "--scenario", "scenarios/data-alliance.toml", "--format", "svg"],
        &repo("."),
    ));
    assert!(out.contains("3 parties") && out.contains("first two"), "{out}");
    assert_svg(
        &dir.path().join("da-session-0.svg"),
        &["utility of startup", "utility of cloud", "data-owner&apos;s offers", "projected", "Nash"],
    );
}

/// A tournament file as `negotium tournament` writes it: run records plus
/// `tournament`, `key`, `repetition` and `assignment`.
fn tournament_file(dir: &Path) -> PathBuf {
    let mut lines = Vec::new();
    for (k, (founder, investor)) in
        [("boulware", "conceder"), ("conceder", "boulware"), ("linear", "hardliner")].into_iter().enumerate()
    {
        let res = results(
            dir,
            "scenarios/series-a.toml",
            &format!("part{k}.jsonl"),
            &[
                "--repeat",
                "3",
                "--strategy",
                &format!("founder={founder}"),
                "--strategy",
                &format!("investor={investor}"),
            ],
        );
        for (r, line) in std::fs::read_to_string(res).unwrap().lines().enumerate() {
            let mut v: Value = serde_json::from_str(line).unwrap();
            v["tournament"] = json!("demo");
            v["key"] = json!(format!("series-a/{founder}-{investor}/{r}"));
            v["repetition"] = json!(r);
            v["assignment"] = json!({ "founder": founder, "investor": investor });
            lines.push(v.to_string());
        }
    }
    let path = dir.join("results.jsonl");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    path
}

#[test]
fn tournament_results_give_per_strategy_bar_charts() {
    let dir = tempfile::tempdir().unwrap();
    let res = tournament_file(dir.path());
    let out = ok(negotium(&["plot", res.to_str().unwrap()], &repo(".")));
    for s in ["boulware", "conceder", "linear", "hardliner"] {
        assert!(out.contains(s), "the table lacks {s}: {out}");
    }
    let svg = assert_svg(
        &dir.path().join("results-strategies.svg"),
        &["own utility", "agreement rate", "social welfare", "distance to Nash", "boulware (n=6)", "hardliner (n=3)"],
    );
    assert!(svg.contains("±"), "error bars are labelled mean ± standard error");
    assert!(svg.matches("<rect").count() >= 4 * 3, "bars");
    assert_png(&dir.path().join("results-strategies.png"));

    // --session picks one negotiation of a tournament by key.
    ok(negotium(
        &["plot", res.to_str().unwrap(), "--session", "series-a/linear-hardliner/1", "--format", "svg"],
        &repo("."),
    ));
    assert_svg(&dir.path().join("results-session-series-a_linear-hardliner_1.svg"), &["linear", "hardliner"]);
}

#[test]
fn tournament_flag_summarises_plain_run_results() {
    let dir = tempfile::tempdir().unwrap();
    let res = results(dir.path(), "scenarios/series-a.toml", "sa.jsonl", &["--repeat", "4"]);
    ok(negotium(&["plot", res.to_str().unwrap(), "--tournament", "--format", "svg"], &repo(".")));
    assert_svg(&dir.path().join("sa-strategies.svg"), &["boulware (n=4)", "agreement rate"]);
}

#[test]
fn a_png_without_a_font_is_still_written_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let res = results(dir.path(), "scenarios/series-a.toml", "sa.jsonl", &[]);
    let out = Command::new(BIN)
        .args(["plot", res.to_str().unwrap(), "--format", "png"])
        .env("NEGOTIUM_FONT", dir.path().join("no-such-font.ttf"))
        .current_dir(dir.path())
        .output()
        .unwrap();
    let t = ok(out);
    assert!(t.contains("warning:") && t.contains("without text"), "{t}");
    assert_png(&dir.path().join("sa-session-0.png"));
}

fn fails_with(args: &[&str], cwd: &Path, expected: &[&str]) {
    let out = negotium(args, cwd);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(2), "expected exit 2 for {args:?}: {t}");
    for e in expected {
        assert!(t.contains(e), "message for {args:?} lacks `{e}`: {t}");
    }
    assert!(!t.contains("panicked"), "{t}");
}

#[test]
fn bad_input_exits_2_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fails_with(&["plot", "missing.jsonl"], d, &["cannot read missing.jsonl"]);

    std::fs::write(d.join("empty.jsonl"), "\n  \n").unwrap();
    fails_with(&["plot", "empty.jsonl"], d, &["empty.jsonl", "no records"]);

    let res = results(d, "scenarios/series-a.toml", "sa.jsonl", &[]);
    let good = std::fs::read_to_string(&res).unwrap();
    std::fs::write(d.join("garbage.jsonl"), format!("{good}this is not json\n")).unwrap();
    fails_with(&["plot", "garbage.jsonl"], d, &["garbage.jsonl:2", "not a JSON object"]);

    std::fs::write(d.join("broken.jsonl"), "{\"parties\": [\"a\", \"b\"\n").unwrap();
    fails_with(&["plot", "broken.jsonl"], d, &["broken.jsonl:1", "not valid JSON"]);

    std::fs::write(d.join("other.jsonl"), "{\"hello\": 1}\n").unwrap();
    fails_with(&["plot", "other.jsonl"], d, &["other.jsonl:1", "not a negotiation record", "parties"]);

    fails_with(&["plot", "sa.jsonl", "--session", "42"], d, &["no negotiation with session or key `42`"]);

    let alliance = repo("scenarios/data-alliance.toml");
    fails_with(&["plot", "sa.jsonl", "--scenario", alliance.to_str().unwrap()], d, &["does not fit"]);
    fails_with(&["plot", "sa.jsonl", "--scenario", "nowhere.toml"], d, &["nowhere.toml"]);
}

#[test]
fn a_record_with_the_parties_in_another_order_fits_its_scenario() {
    // Tournaments rotate who opens: the record lists the parties in turn order.
    let dir = tempfile::tempdir().unwrap();
    let res = results(dir.path(), "scenarios/series-a.toml", "sa.jsonl", &[]);
    let mut v: Value = serde_json::from_str(std::fs::read_to_string(res).unwrap().trim()).unwrap();
    let flip = |x: &mut Value| {
        if let Some(a) = x.as_array_mut() {
            a.reverse();
        }
    };
    for k in ["parties", "strategies", "utilities", "undiscounted_utilities"] {
        flip(&mut v[k]);
    }
    for t in v["trace"].as_array_mut().unwrap() {
        t["party"] = json!(1 - t["party"].as_u64().unwrap());
        flip(&mut t["utilities"]);
    }
    v["reservation_values"] = json!([0.35, 0.4]);
    std::fs::write(dir.path().join("turned.jsonl"), format!("{v}\n")).unwrap();
    let scenario = repo("scenarios/series-a.toml");
    ok(negotium(&["plot", "turned.jsonl", "--scenario", scenario.to_str().unwrap(), "--format", "svg"], dir.path()));
    let svg = assert_svg(&dir.path().join("turned-session-0.svg"), &["utility of investor", "Nash ("]);
    // The y axis label is the rotated one.
    let tag_of = |label: &str| {
        let at = svg.find(label).unwrap();
        let start = svg[..at].rfind("<text").unwrap();
        svg[start..at].to_string()
    };
    assert!(!tag_of("utility of investor").contains("rotate("), "the investor, first in the record, is on x");
    assert!(tag_of("utility of founder").contains("rotate("), "the founder is on y");
}
