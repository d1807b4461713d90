//! `negotium run`.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use indicatif::ProgressBar;
use serde::de::IgnoredAny;

use super::cluster::ClusterArgs;
use super::explain;
use super::report::Summary;
use super::tournament::TournamentArgs;
use super::{CliError, Engine, exec_error, load_scenario};
use crate::core::analysis::Analysis;
use crate::core::explain::Explanation;
use crate::core::record::{Assessment, RecordContext, record};
use crate::core::scenario::Scenario;
use crate::core::session::SessionResult;
use crate::core::strategy::StrategySpec;
use crate::core::utility::Preferences;
use crate::engine::executor::{Executor, Job, Report, Stage};
use crate::store::{self, Expect, LineId, Lookup, StoreError};

#[derive(clap::Args)]
pub struct RunArgs {
    /// Scenario file (TOML).
    scenario: PathBuf,
    /// Seed of the first negotiation (default: the scenario's); negotiation j uses seed + j.
    #[arg(long)]
    seed: Option<u64>,
    /// Number of negotiations.
    #[arg(long, default_value_t = 1, value_parser = super::args::positive::<u64>("negotiations"))]
    repeat: u64,
    /// Override a party's strategy: ROLE=NAME or ROLE='{ type = "time-dependent", e = 0.5 }'.
    #[arg(long = "strategy", value_name = "ROLE=NAME")]
    strategies: Vec<String>,
    #[arg(long, value_enum, default_value = "actors")]
    engine: Engine,
    /// Write one JSON object per negotiation (with the full offer trace) here
    /// (for a tournament file: the results directory).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Sessions in flight at once on the actor engine (fewer where they
    /// would hold more than 2 GiB together by their estimates).
    #[arg(long, default_value_t = 1024)]
    concurrency: usize,
    /// Continue a run that stopped: keep the negotiations already in --out
    /// and run only the others, appending (no file yet: start it). Safe to
    /// give on every attempt of a retried job.
    #[arg(long, requires = "out")]
    resume: bool,
    /// Replace the results already in --out (without it, or --resume, a
    /// file that holds results is refused: an earlier run is not lost by a typo).
    #[arg(long, requires = "out", conflicts_with = "resume")]
    force: bool,
    /// Print JSON instead of words: one negotiation's whole record, or a
    /// run's summary numbers.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    cluster: ClusterArgs,
}

pub fn run(args: RunArgs) -> Result<(), CliError> {
    if is_tournament(&args.scenario) {
        if args.repeat != 1 || !args.strategies.is_empty() || args.seed.is_some() {
            return Err(CliError::Input(
                "a tournament file sets its own repetitions, strategies and seed; \
                 --repeat, --strategy and --seed apply to scenarios"
                    .into(),
            ));
        }
        if args.force {
            return Err(CliError::Input(
                "--force applies to a scenario's results file; a tournament folder keeps what it holds and runs \
                 the rest (move it away to start over)"
                    .into(),
            ));
        }
        let t = TournamentArgs::of_run(args.scenario, args.out, args.resume, args.cluster);
        return super::tournament::tournament(t);
    }
    let scenario = scenario_of(&args)?;
    if args.repeat == 0 {
        return Err(CliError::Input("--repeat must be at least 1".into()));
    }
    let strategies = scenario.parties.iter().map(|p| &p.strategy);
    let executor = args.engine.executor_for(args.cluster.config()?, None, args.concurrency, strategies)?;
    let batch = Batch::new(scenario, args.seed, args.repeat)?;
    let (kept, out) = match &args.out {
        Some(path) => {
            let (kept, file) = open_results(path, &batch, args.resume, args.force)?;
            (kept, Some((path.as_path(), BufWriter::new(file))))
        }
        None => (HashSet::new(), None),
    };
    let tally = negotiate(&batch, executor.as_ref(), &kept, out)?;
    if args.json {
        print_json(&batch, &tally);
    } else {
        print_report(&batch, &tally, kept.len(), args.out.as_deref());
    }
    Ok(())
}

/// The scenario with the strategies of `--strategy`; a party left external
/// has no one to play it here.
fn scenario_of(args: &RunArgs) -> Result<Scenario, CliError> {
    let mut scenario = load_scenario(&args.scenario)?;
    for s in &args.strategies {
        let (role, spec) =
            s.split_once('=').ok_or_else(|| CliError::Input(format!("--strategy `{s}`: expected ROLE=NAME")))?;
        let spec = StrategySpec::parse_cli(spec).map_err(|e| CliError::Input(format!("--strategy {role}: {e}")))?;
        scenario.set_strategy(role.trim(), spec).map_err(|e| CliError::Input(format!("--strategy {role}: {e}")))?;
    }
    if let Some(p) = scenario.parties.iter().find(|p| p.external) {
        return Err(CliError::Input(format!(
            "party `{}` is external: host this scenario with `negotium serve` and connect its agent, \
             or give it a local strategy with --strategy {}=NAME",
            p.name, p.name
        )));
    }
    Ok(scenario)
}

/// The negotiations of one run: `repeat` sessions of one scenario and its
/// strategies, negotiation j with seed `base_seed + j`.
struct Batch {
    scenario: Scenario,
    preferences: Vec<Arc<Preferences>>,
    analysis: Analysis,
    strategies: Vec<StrategySpec>,
    /// As records write them.
    labels: Vec<String>,
    base_seed: u64,
    repeat: u64,
    digest: String,
}

impl Batch {
    fn new(scenario: Scenario, seed: Option<u64>, repeat: u64) -> Result<Self, CliError> {
        let strategies: Vec<StrategySpec> = scenario.parties.iter().map(|p| p.strategy.clone()).collect();
        // Checked here, before any session: a cluster would otherwise learn
        // of a bad strategy from its nodes.
        for s in &strategies {
            s.validate().map_err(|e| CliError::Input(e.to_string()))?;
        }
        let base_seed = seed.unwrap_or(scenario.seed);
        let preferences = scenario.preferences();
        let analysis = {
            let refs: Vec<&_> = preferences.iter().map(|p| p.as_ref()).collect();
            Analysis::run(&scenario.domain, &refs, base_seed)
        };
        Ok(Self {
            labels: strategies.iter().map(|s| s.to_string()).collect(),
            digest: store::scenario_digest(&scenario),
            scenario,
            preferences,
            analysis,
            strategies,
            base_seed,
            repeat,
        })
    }

    fn record_context<'a>(&'a self, engine: &'a str) -> RecordContext<'a> {
        RecordContext {
            scenario: &self.scenario,
            preferences: &self.preferences,
            analysis: &self.analysis,
            engine,
            strategies: &self.labels,
            explain: true,
        }
    }

    fn seed(&self, j: u64) -> u64 {
        self.base_seed.wrapping_add(j)
    }
}

/// A run's results file holds negotiations by number, each under the seed,
/// strategies and scenario this run would give it.
impl store::Sessions for Batch {
    fn count(&self) -> usize {
        self.repeat as usize
    }

    fn lookup(&self, id: LineId<'_>) -> Lookup<'_> {
        match (id.key, id.session) {
            (None, Some(j)) if j < self.repeat => Lookup::Held(
                j as usize,
                Expect { seed: self.seed(j), strategies: Cow::Borrowed(&self.labels), scenario_digest: &self.digest },
            ),
            (None, Some(j)) => Lookup::Refused(format!(
                "negotiation {j} is beyond this run's --repeat {} (was --repeat lowered?); give --repeat {} \
                 or more, or another --out",
                self.repeat,
                j + 1
            )),
            _ => Lookup::Refused("not a result of a `negotium run`; give another --out".into()),
        }
    }
}

/// Takes the results file's lock before reading or cutting it (a second run
/// into the same file is refused, not interleaved) and returns the
/// negotiations it already has: none unless `resume`. A file that holds
/// results is emptied only with `force`.
fn open_results(path: &Path, batch: &Batch, resume: bool, force: bool) -> Result<(HashSet<u64>, File), CliError> {
    let refused = |e: StoreError| match e {
        StoreError::Io(e) => {
            CliError::Failure(anyhow::Error::new(e).context(format!("cannot write {}", path.display())))
        }
        StoreError::Content(e) => CliError::Input(format!("--resume: {e}")),
        other => CliError::Input(other.to_string()),
    };
    if !resume {
        let file = store::lock(path).map_err(refused)?;
        let held = file.metadata().map(|m| m.len()).unwrap_or(0);
        if held > 0 && !force {
            return Err(CliError::Input(format!(
                "{} already holds results ({held} bytes); give --resume to continue that run, --force to replace \
                 it, or another --out",
                path.display()
            )));
        }
        file.set_len(0).with_context(|| format!("cannot write {}", path.display())).map_err(CliError::Failure)?;
        return Ok((HashSet::new(), file));
    }
    let (existing, file) = store::open::<IgnoredAny>(path, batch).map_err(refused)?;
    if existing.undigested > 0 {
        eprintln!(
            "note: {} line(s) of {} say no scenario digest (written by an older negotium): their seeds and \
             strategies were checked, their scenario could not be; move the file away if the scenario changed",
            existing.undigested,
            path.display()
        );
    }
    Ok((existing.done.into_iter().map(|(j, _)| j as u64).collect(), file))
}

/// What a run's negotiations came to.
struct Tally {
    summary: Summary,
    /// The last result (all there is to say of a run of one).
    last: Option<(SessionResult, Assessment)>,
    engine: &'static str,
    report: Report,
}

/// Runs the negotiations `kept` lacks on `executor`, writing each record to
/// `out` as it comes.
fn negotiate(
    batch: &Batch,
    executor: &dyn Executor,
    kept: &HashSet<u64>,
    mut out: Option<(&Path, BufWriter<File>)>,
) -> Result<Tally, CliError> {
    let progress = progress_bar(batch.repeat - kept.len() as u64);
    let engine = executor.label();
    let mut stage = Stage::of(&batch.scenario);
    if executor.shares_indexes() {
        // Every negotiation of a run shares the scenario's preferences:
        // each party's outcome index is built once, not once per session.
        stage = stage.with_shared_indexes();
    }
    let (strategies, skip, repeat, base_seed) = (batch.strategies.clone(), kept.clone(), batch.repeat, batch.base_seed);
    // Pulled lazily: a run of millions holds only what is in flight.
    let jobs = (0..repeat).filter(move |j| !skip.contains(j)).map(move |j| Job {
        key: j,
        stage: 0,
        strategies: strategies.clone(),
        seed: base_seed.wrapping_add(j),
    });
    let cx = batch.record_context(engine);
    let mut summary = Summary::default();
    let mut last = None;
    let mut write_err: Option<std::io::Error> = None;
    let trace = out.is_some();
    let outcome = executor.execute(&vec![stage], trace, Box::new(jobs), &mut |done| {
        let j = done.key;
        let assessment = Assessment::of(&batch.analysis, &done.result);
        if let Some((_, w)) = out.as_mut() {
            let mut line = record(&cx, j.into(), batch.seed(j), &done.result, &assessment, done.trace_text);
            line.fields[store::DIGEST_FIELD] = batch.digest.as_str().into();
            if let Some(placed) = &done.placed {
                line.fields["node"] = placed.node.as_str().into();
                line.fields["attempts"] = placed.attempts.into();
            }
            let written = writeln!(w, "{line}").and_then(|()| if done.caught_up { w.flush() } else { Ok(()) });
            if let Err(e) = written {
                let message = e.to_string();
                write_err = Some(e);
                return Err(message);
            }
        }
        summary.add(&done.result, Some(&assessment));
        progress.inc(1);
        last = Some((done.result, assessment));
        Ok(())
    });
    progress.finish_and_clear();
    if let Some(e) = write_err {
        return Err(CliError::Failure(anyhow::Error::new(e).context("writing results")));
    }
    let report = outcome.map_err(exec_error)?;
    if let Some((path, mut w)) = out {
        w.flush().with_context(|| format!("writing {}", path.display())).map_err(CliError::Failure)?;
    }
    Ok(Tally { summary, last, engine, report })
}

/// A bar for runs long enough to wait for.
fn progress_bar(todo: u64) -> ProgressBar {
    if todo < 100 {
        return ProgressBar::hidden();
    }
    super::progress::bar(todo, 0, "{bar:40} {pos}/{len} negotiations  {rate}  {eta}")
}

fn print_report(batch: &Batch, tally: &Tally, kept: usize, out: Option<&Path>) {
    let (scenario, summary) = (&batch.scenario, &tally.summary);
    let count = if summary.n == 1 { "1 negotiation".to_string() } else { format!("{} negotiations", summary.n) };
    outln!("{} — {count}, engine {}", scenario.name, tally.engine);
    if kept > 0 {
        outln!("resumed:             {kept} negotiation(s) already in the results were kept");
    }
    let r = &tally.report;
    if !r.nodes.is_empty() {
        outln!("nodes:               {}", r.nodes.join(", "));
        if !r.lost.is_empty() {
            outln!("nodes lost:          {} ({} negotiation(s) re-run elsewhere)", r.lost.join(", "), r.retried);
        }
    }
    if summary.n == 0 {
        return;
    }
    let names: Vec<&str> = scenario.parties.iter().map(|p| p.name.as_str()).collect();
    for (name, label) in names.iter().zip(&batch.labels) {
        outln!("  {name:<16} {label}");
    }
    if summary.n > 1 {
        print_many(summary, &names);
    }
    match &tally.last {
        Some((r, assessment)) if summary.n == 1 || !summary.varied => {
            if summary.n > 1 {
                outln!();
                outln!(
                    "All {} negotiations were identical: these strategies do not draw on the seed, so a repeat \
                     plays the same negotiation again. To vary them, give a strategy that does (e.g. --strategy \
                     {}=random), or compare strategies and scenarios with `negotium tournament`. The negotiation:",
                    summary.n,
                    names.first().copied().unwrap_or("ROLE")
                );
            }
            explain::print(&Explanation::of(scenario, &batch.analysis, r, &assessment.distances));
        }
        _ => {}
    }
    if let Some(note) = &batch.analysis.note {
        outln!("note: {note}");
    }
    if let Some(path) = out {
        outln!("results: {}", path.display());
    }
}

/// `--json`: the record of a run of one (as `--out` writes it), or the
/// numbers `print_many` puts in words.
fn print_json(batch: &Batch, tally: &Tally) {
    let summary = &tally.summary;
    if let (1, Some((r, assessment))) = (summary.n, &tally.last) {
        outln!("{}", record(&batch.record_context(tally.engine), 0.into(), batch.base_seed, r, assessment, None));
        return;
    }
    let names = batch.scenario.parties.iter().map(|p| p.name.clone());
    let means: serde_json::Map<String, serde_json::Value> =
        names.zip(summary.mean_utilities()).map(|(n, u)| (n, u.into())).collect();
    let explanation = tally
        .last
        .as_ref()
        .filter(|_| !summary.varied)
        .map(|(r, a)| Explanation::of(&batch.scenario, &batch.analysis, r, &a.distances));
    let obj = serde_json::json!({
        "scenario": batch.scenario.name,
        "engine": tally.engine,
        "negotiations": summary.n,
        "agreements": summary.agreements,
        "mean_utilities": means,
        "mean_rounds": summary.mean(summary.rounds),
        "mean_welfare": summary.mean(summary.welfare),
        "mean_distance_to_nash": Summary::mean_of(summary.nash),
        "mean_distance_to_pareto": Summary::mean_of(summary.pareto),
        "pareto_efficient": summary.efficient,
        "endings": summary.endings,
        "identical": !summary.varied,
        "explanation": explanation,
        "analysis_note": batch.analysis.note,
    });
    outln!("{obj}");
}

fn print_many(summary: &Summary, names: &[&str]) {
    let n = summary.n;
    let of = |k: usize, n: usize| match k {
        0 => format!("none of the {n}"),
        k if k == n => format!("all {n}"),
        k => format!("{k} of {n} ({:.0}%)", 100.0 * k as f64 / n as f64),
    };
    outln!("agreements:          {}", of(summary.agreements, n));
    let means: Vec<String> =
        names.iter().zip(summary.mean_utilities()).map(|(name, u)| format!("{name} {u:.4}")).collect();
    outln!("mean utility:        {} (after discount; walk-away value without a deal)", means.join(", "));
    outln!("mean rounds:         {:.2}", summary.mean(summary.rounds));
    outln!(
        "mean joint utility:  {:.4} (the sum of all parties\' utilities, after discount)",
        summary.mean(summary.welfare)
    );
    match Summary::mean_of(summary.nash) {
        Some(d) => outln!("mean distance to the Nash point: {d:.4} (the fair point; before discount)"),
        None => outln!("mean distance to the Nash point: n/a (no outcome is acceptable to every party)"),
    }
    if summary.agreements > 0 {
        outln!("deals on the Pareto frontier: {}", of(summary.efficient, summary.agreements));
    }
    let endings: Vec<String> = summary.endings.iter().map(|(k, v)| format!("{k} {v}")).collect();
    outln!("endings:             {}", endings.join(", "));
}

/// A tournament file names strategies at its top level; a scenario names parties.
fn is_tournament(path: &std::path::Path) -> bool {
    path.extension().is_some_and(|e| e == "toml")
        && std::fs::read_to_string(path)
            .ok()
            .and_then(|text| text.parse::<toml::Table>().ok())
            .is_some_and(|t| t.contains_key("strategies") && !t.contains_key("parties"))
}
