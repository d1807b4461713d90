//! `negotium run`.

use std::collections::HashSet;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::PathBuf;

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;

use super::analyze::fmt_utils;
use super::cluster::{ClusterArgs, launch_error, launcher_runtime};
use super::report::Summary;
use super::tournament::TournamentArgs;
use super::{CliError, Engine, load_scenario};
use crate::core::analysis::Analysis;
use crate::core::record::{Assessment, RecordContext, record};
use crate::core::session::SessionResult;
use crate::core::strategy::StrategySpec;
use crate::engine::actors::{ActorRunOptions, run_sessions};
use crate::engine::{SessionSpec, direct, shared_indexes};
use crate::net::cluster::ScenarioWire;
use crate::net::cluster::launcher::{self, Job, Launch};
use crate::tournament::store::{self, StoreError};

#[derive(clap::Args)]
pub struct RunArgs {
    /// Scenario file (TOML).
    scenario: PathBuf,
    /// Seed of the first negotiation (default: the scenario's); negotiation j uses seed + j.
    #[arg(long)]
    seed: Option<u64>,
    /// Number of negotiations.
    #[arg(long, default_value_t = 1)]
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
    /// Sessions in flight at once on the actor engine.
    #[arg(long, default_value_t = 1024)]
    concurrency: usize,
    /// Continue a run that stopped: keep the negotiations already in --out
    /// and run only the others, appending (no file yet: start it). Safe to
    /// give on every attempt of a retried job.
    #[arg(long, requires = "out")]
    resume: bool,
    #[command(flatten)]
    cluster: ClusterArgs,
}

/// Negotiations processed per batch on the direct path (bounds memory).
const BATCH: u64 = 4096;

pub fn run(args: RunArgs) -> Result<(), CliError> {
    if is_tournament(&args.scenario) {
        if args.repeat != 1 || !args.strategies.is_empty() || args.seed.is_some() {
            return Err(CliError::Input(
                "a tournament file sets its own repetitions, strategies and seed; \
                 --repeat, --strategy and --seed apply to scenarios"
                    .into(),
            ));
        }
        let t = TournamentArgs::of_run(args.scenario, args.out, args.resume, args.cluster);
        return super::tournament::tournament(t);
    }
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
    if args.repeat == 0 {
        return Err(CliError::Input("--repeat must be at least 1".into()));
    }
    let cluster = args.cluster.config()?;
    let base_seed = args.seed.unwrap_or(scenario.seed);
    let prefs = scenario.preferences();
    let analysis = {
        let refs: Vec<&_> = prefs.iter().map(|p| p.as_ref()).collect();
        Analysis::run(&scenario.domain, &refs, base_seed)
    };
    let labels: Vec<String> = scenario.parties.iter().map(|p| p.strategy.to_string()).collect();
    // Every negotiation of a run shares the scenario's preferences: build
    // each party's outcome index once, not once per session (on a cluster
    // the nodes build their own).
    let indexes = if cluster.is_none() { shared_indexes(&scenario.domain, &prefs) } else { Vec::new() };
    let strategies: Vec<StrategySpec> = scenario.parties.iter().map(|p| p.strategy.clone()).collect();
    let spec_of = |j: u64| {
        let mut spec = SessionSpec::new(
            j,
            scenario.domain.clone(),
            prefs.clone(),
            strategies.clone(),
            scenario.deadline,
            base_seed.wrapping_add(j),
        )
        .with_trace(args.out.is_some());
        spec.shared_indexes = indexes.clone();
        spec
    };

    // The results file is locked before it is read or cut: a second run
    // into the same file is refused, not interleaved.
    let locked = match &args.out {
        Some(path) => Some(store::lock(path).map_err(|e| match e {
            StoreError::Io(e) => {
                CliError::Failure(anyhow::Error::new(e).context(format!("cannot write {}", path.display())))
            }
            other => CliError::Input(other.to_string()),
        })?),
        None => None,
    };
    // Negotiations a resumed run already has.
    let kept = match (&args.out, args.resume) {
        (Some(path), true) => kept_negotiations(path, args.repeat)?,
        _ => HashSet::new(),
    };
    let mut out = match (locked, &args.out) {
        (Some(mut file), Some(path)) => {
            let ready = if args.resume { file.seek(SeekFrom::End(0)).map(|_| ()) } else { file.set_len(0) };
            ready.with_context(|| format!("cannot write {}", path.display())).map_err(CliError::Failure)?;
            Some(BufWriter::new(file))
        }
        _ => None,
    };
    let todo = args.repeat - kept.len() as u64;
    let pending = (0..args.repeat).filter(|j| !kept.contains(j));
    let progress = if todo >= 100 {
        let bar = ProgressBar::new(todo);
        bar.set_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} negotiations  {per_sec}  eta {eta}")
                .expect("static template"),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    let mut summary = Summary::default();
    let mut last: Option<(SessionResult, Assessment)> = None;
    let mut write_err: Option<std::io::Error> = None;
    let engine = if cluster.is_some() { "cluster" } else { args.engine.label() };
    let cx =
        RecordContext { scenario: &scenario, preferences: &prefs, analysis: &analysis, engine, strategies: &labels };
    let mut consume = |j: u64, r: SessionResult, placed: Option<(&str, u32)>| {
        let assessment = Assessment::of(&analysis, &r);
        if let Some(w) = out.as_mut() {
            let mut line = record(&cx, j.into(), base_seed.wrapping_add(j), &r, &assessment);
            if let Some((node, attempts)) = placed {
                line["node"] = node.into();
                line["attempts"] = attempts.into();
            }
            if let Err(e) = writeln!(w, "{line}") {
                write_err.get_or_insert(e);
            }
        }
        summary.add(&r, Some(&assessment));
        progress.inc(1);
        last = Some((r, assessment));
    };

    let mut cluster_report = None;
    match (cluster, args.engine) {
        (Some(config), _) => {
            for s in &strategies {
                s.validate().map_err(|e| CliError::Input(e.to_string()))?;
            }
            let launch = Launch { config, scenarios: vec![ScenarioWire::of(&scenario)], trace: args.out.is_some() };
            // Pulled lazily by the launcher: a run of millions holds only its windows.
            let skip = kept.clone();
            let jobs = (0..args.repeat).filter(move |j| !skip.contains(j)).map(move |j| Job {
                key: j,
                scenario: 0,
                strategies: strategies.clone(),
                seed: base_seed.wrapping_add(j),
            });
            let runtime = launcher_runtime()?;
            let report = launcher::run_blocking(runtime.handle(), launch, Box::new(jobs), |done| {
                consume(done.key, done.result, Some((&done.node, done.attempts)));
                Ok(())
            })
            .map_err(launch_error)?;
            cluster_report = Some(report);
        }
        (None, Engine::Direct) => {
            let pending: Vec<u64> = pending.collect();
            for chunk in pending.chunks(BATCH as usize) {
                let results: Vec<(u64, SessionResult)> = chunk
                    .par_iter()
                    .map(|&j| direct::run(&spec_of(j)).map(|r| (j, r)))
                    .collect::<Result<_, _>>()
                    .map_err(|e| CliError::Input(e.to_string()))?;
                for (j, r) in results {
                    consume(j, r, None);
                }
            }
        }
        (None, Engine::Actors) => {
            let opts = ActorRunOptions { concurrency: args.concurrency, ..Default::default() };
            run_sessions(pending.map(spec_of), opts, |(j, r)| consume(j, r, None))
                .map_err(|e| CliError::Input(e.to_string()))?;
        }
    }
    progress.finish_and_clear();
    if let Some(e) = write_err {
        return Err(CliError::Failure(anyhow::Error::new(e).context("writing results")));
    }
    if let Some(mut w) = out {
        w.flush()?;
    }

    let names: Vec<&str> = scenario.parties.iter().map(|p| p.name.as_str()).collect();
    outln!("{} — {} negotiation(s), engine {engine}", scenario.name, summary.n);
    if !kept.is_empty() {
        outln!("resumed:             {} negotiation(s) already in the results were kept", kept.len());
    }
    if let Some(r) = &cluster_report {
        outln!("nodes:               {}", r.nodes.join(", "));
        if !r.lost.is_empty() {
            outln!("nodes lost:          {} ({} negotiation(s) re-run elsewhere)", r.lost.join(", "), r.retried);
        }
    }
    if summary.n == 0 {
        return Ok(());
    }
    for (name, label) in names.iter().zip(&labels) {
        outln!("  {name:<16} {label}");
    }
    if summary.n == 1 {
        let (r, assessment) = last.expect("one result");
        match &r.agreement {
            Some(o) => outln!("agreement:           {}", scenario.domain.outcome_display(o)),
            None => outln!("no agreement:        {}", describe_ending(&r, &names)),
        }
        for (name, u) in names.iter().zip(&r.utilities) {
            outln!("  utility {name:<16} {u:.4}");
        }
        outln!("rounds:              {} ({} offers)", r.rounds, r.offers);
        let d = assessment.distances;
        outln!("social welfare:      {:.4}", r.utilities.iter().sum::<f64>());
        print_distance("distance to Nash:   ", d.nash);
        print_distance("distance to Pareto: ", d.pareto);
        print_distance("distance to K–S:    ", d.kalai_smorodinsky);
    } else {
        outln!("agreement rate:      {:.3}", summary.agreements as f64 / summary.n as f64);
        outln!("mean utilities:      {}", fmt_utils(&summary.mean_utilities()));
        outln!("mean rounds:         {:.2}", summary.mean(summary.rounds));
        outln!("mean social welfare: {:.4}", summary.mean(summary.welfare));
        print_distance("mean dist. to Nash: ", Summary::mean_of(summary.nash));
        print_distance("mean dist. Pareto:  ", Summary::mean_of(summary.pareto));
        outln!("Pareto-efficient:    {:.3} of negotiations", summary.efficient as f64 / summary.n as f64);
        let endings: Vec<String> = summary.endings.iter().map(|(k, v)| format!("{k} {v}")).collect();
        outln!("endings:             {}", endings.join(", "));
    }
    if let Some(note) = &analysis.note {
        outln!("note: {note}");
    }
    if let Some(path) = &args.out {
        outln!("results: {}", path.display());
    }
    Ok(())
}

/// A tournament file names strategies at its top level; a scenario names parties.
fn is_tournament(path: &std::path::Path) -> bool {
    path.extension().is_some_and(|e| e == "toml")
        && std::fs::read_to_string(path)
            .ok()
            .and_then(|text| text.parse::<toml::Table>().ok())
            .is_some_and(|t| t.contains_key("strategies") && !t.contains_key("parties"))
}

/// The negotiations a results file already holds (`session` of each whole
/// line); a partial last line, left by a crash, is cut off.
fn kept_negotiations(path: &std::path::Path, repeat: u64) -> Result<HashSet<u64>, CliError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(HashSet::new()),
        Err(e) => return Err(CliError::Input(format!("--resume: cannot read {}: {e}", path.display()))),
    };
    let whole = text.rfind('\n').map_or(0, |k| k + 1);
    if whole < text.len() {
        let file = std::fs::OpenOptions::new().write(true).open(path)?;
        file.set_len(whole as u64)?;
    }
    let mut kept = HashSet::new();
    for (n, line) in text[..whole].lines().enumerate() {
        let j = serde_json::from_str::<serde_json::Value>(line)
            .ok()
            .and_then(|v| v["session"].as_u64())
            .filter(|&j| j < repeat)
            .ok_or_else(|| {
                CliError::Input(format!("--resume: {}:{}: not a result of this run", path.display(), n + 1))
            })?;
        kept.insert(j);
    }
    Ok(kept)
}

fn print_distance(label: &str, d: Option<f64>) {
    match d {
        Some(d) => outln!("{label} {d:.4}"),
        None => outln!("{label} n/a (no acceptable outcome)"),
    }
}

fn describe_ending(r: &SessionResult, names: &[&str]) -> String {
    use crate::core::protocol::Ending;
    let name = |p: &usize| names.get(*p).copied().unwrap_or("?").to_string();
    match &r.ending {
        Ending::Deadline => "the deadline passed".into(),
        Ending::EndedBy { party } => format!("{} walked away", name(party)),
        Ending::Violation { party, reason } => format!("protocol violation by {}: {reason}", name(party)),
        Ending::Agreement { .. } => "agreement".into(),
        Ending::Aborted { reason } => format!("aborted: {reason}"),
    }
}
