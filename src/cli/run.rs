//! `negotium run`.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;

use super::analyze::fmt_utils;
use super::report::Summary;
use super::{CliError, Engine, load_scenario};
use crate::core::analysis::Analysis;
use crate::core::record::{Assessment, RecordContext, record};
use crate::core::session::SessionResult;
use crate::core::strategy::StrategySpec;
use crate::engine::actors::{ActorRunOptions, run_sessions};
use crate::engine::{SessionSpec, direct, shared_indexes};

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
    /// Write one JSON object per negotiation (with the full offer trace) here.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Sessions in flight at once on the actor engine.
    #[arg(long, default_value_t = 1024)]
    concurrency: usize,
}

/// Negotiations processed per batch on the direct path (bounds memory).
const BATCH: u64 = 4096;

pub fn run(args: RunArgs) -> Result<(), CliError> {
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
    let base_seed = args.seed.unwrap_or(scenario.seed);
    let prefs = scenario.preferences();
    let analysis = {
        let refs: Vec<&_> = prefs.iter().map(|p| p.as_ref()).collect();
        Analysis::run(&scenario.domain, &refs, base_seed)
    };
    let labels: Vec<String> = scenario.parties.iter().map(|p| p.strategy.to_string()).collect();
    // Every negotiation of a run shares the scenario's preferences: build
    // each party's outcome index once, not once per session.
    let indexes = shared_indexes(&scenario.domain, &prefs);
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

    let mut out = match &args.out {
        Some(path) => Some(BufWriter::new(
            File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))
                .map_err(CliError::Failure)?,
        )),
        None => None,
    };
    let progress = if args.repeat >= 100 {
        let bar = ProgressBar::new(args.repeat);
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
    let engine = args.engine.label();
    let cx =
        RecordContext { scenario: &scenario, preferences: &prefs, analysis: &analysis, engine, strategies: &labels };
    let mut consume = |j: u64, r: SessionResult| {
        let assessment = Assessment::of(&analysis, &r);
        if let Some(w) = out.as_mut() {
            let line = record(&cx, j.into(), base_seed.wrapping_add(j), &r, &assessment);
            if let Err(e) = writeln!(w, "{line}") {
                write_err.get_or_insert(e);
            }
        }
        summary.add(&r, Some(&assessment));
        progress.inc(1);
        last = Some((r, assessment));
    };

    match args.engine {
        Engine::Direct => {
            let mut start = 0;
            while start < args.repeat {
                let end = (start + BATCH).min(args.repeat);
                let results: Vec<(u64, SessionResult)> = (start..end)
                    .into_par_iter()
                    .map(|j| direct::run(&spec_of(j)).map(|r| (j, r)))
                    .collect::<Result<_, _>>()
                    .map_err(|e| CliError::Input(e.to_string()))?;
                for (j, r) in results {
                    consume(j, r);
                }
                start = end;
            }
        }
        Engine::Actors => {
            let opts = ActorRunOptions { concurrency: args.concurrency, ..Default::default() };
            run_sessions((0..args.repeat).map(spec_of), opts, |(j, r)| consume(j, r))
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
    println!("{} — {} negotiation(s), engine {engine}", scenario.name, summary.n);
    for (name, label) in names.iter().zip(&labels) {
        println!("  {name:<16} {label}");
    }
    if summary.n == 1 {
        let (r, assessment) = last.expect("one result");
        match &r.agreement {
            Some(o) => println!("agreement:           {}", scenario.domain.outcome_display(o)),
            None => println!("no agreement:        {}", describe_ending(&r, &names)),
        }
        for (name, u) in names.iter().zip(&r.utilities) {
            println!("  utility {name:<16} {u:.4}");
        }
        println!("rounds:              {} ({} offers)", r.rounds, r.offers);
        let d = assessment.distances;
        println!("social welfare:      {:.4}", r.utilities.iter().sum::<f64>());
        print_distance("distance to Nash:   ", d.nash);
        print_distance("distance to Pareto: ", d.pareto);
        print_distance("distance to K–S:    ", d.kalai_smorodinsky);
    } else {
        println!("agreement rate:      {:.3}", summary.agreements as f64 / summary.n as f64);
        println!("mean utilities:      {}", fmt_utils(&summary.mean_utilities()));
        println!("mean rounds:         {:.2}", summary.mean(summary.rounds));
        println!("mean social welfare: {:.4}", summary.mean(summary.welfare));
        print_distance("mean dist. to Nash: ", Summary::mean_of(summary.nash));
        print_distance("mean dist. Pareto:  ", Summary::mean_of(summary.pareto));
        println!("Pareto-efficient:    {:.3} of negotiations", summary.efficient as f64 / summary.n as f64);
        let endings: Vec<String> = summary.endings.iter().map(|(k, v)| format!("{k} {v}")).collect();
        println!("endings:             {}", endings.join(", "));
    }
    if let Some(note) = &analysis.note {
        println!("note: {note}");
    }
    if let Some(path) = &args.out {
        println!("results: {}", path.display());
    }
    Ok(())
}

fn print_distance(label: &str, d: Option<f64>) {
    match d {
        Some(d) => println!("{label} {d:.4}"),
        None => println!("{label} n/a (no acceptable outcome)"),
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
