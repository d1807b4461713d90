//! `negotium tournament`: runs every session of a tournament file that DIR
//! does not hold yet, then writes the tables from all of them.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context as _;
use indicatif::ProgressBar;
use serde_json::json;

use super::cluster::ClusterArgs;
use super::{CliError, Engine};
use crate::store::{self, StoreError};
use crate::tournament::runner::{self, Resumable};
use crate::tournament::summary::{self, Row, StrategyStats};
use crate::tournament::{Tournament, plan};

#[derive(clap::Args)]
pub struct TournamentArgs {
    /// Tournament file (TOML): strategies, scenarios, repetitions.
    path: PathBuf,
    /// Directory for results.jsonl, results.csv, summary.csv and summary.md
    /// (default: results/<file name without .toml>). Running again into a
    /// directory that holds results resumes: only missing sessions run.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Worker threads of the direct engine, arbiters of the actor engine
    /// (default: every core).
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// What runs the sessions here (without --cluster and its kin).
    #[arg(long, value_enum, default_value = "direct")]
    engine: Engine,
    /// Sessions in flight at once on the actor engine (fewer where they
    /// would hold more than 2 GiB together by their estimates).
    #[arg(long, default_value_t = 1024)]
    concurrency: usize,
    /// Resume a stopped tournament (with no results.jsonl in DIR yet: start it).
    #[arg(long)]
    resume: bool,
    /// Print one JSON object (counts, timing, per-strategy means) instead of the table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    cluster: ClusterArgs,
}

impl TournamentArgs {
    /// `negotium run TOURNAMENT.toml`: the tournament with run's cluster options.
    pub fn of_run(path: PathBuf, out: Option<PathBuf>, resume: bool, cluster: ClusterArgs) -> Self {
        Self { path, out, threads: None, engine: Engine::Direct, concurrency: 1024, resume, json: false, cluster }
    }
}

pub fn tournament(args: TournamentArgs) -> Result<(), CliError> {
    let started = Instant::now();
    if args.threads == Some(0) {
        return Err(CliError::Input("--threads must be at least 1".into()));
    }
    let t = Tournament::load(&args.path).map_err(|e| CliError::Input(e.to_string()))?;
    let plan = plan(&t).map_err(|e| CliError::Input(format!("{}: {e}", args.path.display())))?;
    if plan.is_empty() {
        return Err(CliError::Input(format!(
            "{}: this tournament holds no negotiation (without self-play it needs at least two strategies)",
            args.path.display()
        )));
    }
    let dir = args.out.clone().unwrap_or_else(|| default_dir(&args.path));
    let results_path = dir.join("results.jsonl");
    // As `run --resume` and `train --resume`: safe on every attempt of a
    // retried job, the first included.
    if args.resume && !results_path.is_file() {
        eprintln!("note: --resume: {} holds no results yet; starting the tournament", results_path.display());
    }
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create {}", dir.display()))
        .map_err(CliError::Failure)?;
    let (existing, file) = store::open::<Row>(&results_path, &Resumable::new(&t, &plan)).map_err(|e| match e {
        StoreError::Content(e) => CliError::Input(e.to_string()),
        StoreError::Locked(_) => CliError::Input(e.to_string()),
        StoreError::Io(e) => {
            CliError::Failure(anyhow::Error::new(e).context(format!("reading {}", results_path.display())))
        }
    })?;

    let already = existing.done.len();
    let mut rows: Vec<Option<Row>> = vec![None; plan.len()];
    for (i, row) in existing.done {
        rows[i] = Some(row);
    }
    let pending: Vec<usize> = (0..plan.len()).filter(|&i| rows[i].is_none()).collect();
    let progress = if pending.len() >= 100 {
        let bar =
            super::progress::bar(plan.len() as u64, already as u64, "{bar:40} {pos}/{len} negotiations  {rate}  {eta}");
        bar.reset_eta();
        bar
    } else {
        ProgressBar::hidden()
    };
    let cluster = args.cluster.config()?;
    let on_cluster = cluster.is_some();
    let strategies = t.entrants.iter().map(|e| &e.spec);
    let executor = args.engine.executor_for(cluster, args.threads, args.concurrency, strategies)?;
    let run_started = Instant::now();
    let mut out = BufWriter::with_capacity(1 << 16, file);
    let on_done = |done: runner::Done| {
        rows[done.index] = Some(done.row);
        progress.inc(1);
    };
    let report = runner::run(&t, &plan, &pending, executor.as_ref(), &mut out, on_done)
        .map_err(|e| CliError::Failure(anyhow::Error::new(e)))?;
    let cluster_report = on_cluster.then_some(report);
    out.flush()?;
    drop(out);
    progress.finish_and_clear();
    let run_s = run_started.elapsed().as_secs_f64();

    let rows: Vec<Row> = rows.into_iter().map(|r| r.expect("every session ran")).collect();
    let stats = summary::summarize(&rows);
    write(&dir.join("results.csv"), &summary::results_csv(&rows))?;
    write(&dir.join("summary.csv"), &summary::summary_csv(&stats))?;
    let markdown = summary::summary_markdown(&t.name, &stats) + "\n" + &summary::pairwise_markdown(&rows, &stats);
    write(&dir.join("summary.md"), &markdown)?;
    let wall_s = started.elapsed().as_secs_f64();
    let ran = pending.len();
    let threads = args.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));

    if args.json {
        let report = json!({
            "tournament": t.name,
            "strategies": t.entrants.len(),
            "scenarios": t.venues.len(),
            "repetitions": t.repetitions,
            "negotiations": plan.len(),
            "already_done": already,
            "ran": ran,
            "truncated_bytes": existing.truncated_bytes,
            "foreign_lines": existing.foreign,
            "threads": threads,
            "engine": executor.label(),
            "wall_s": wall_s,
            "run_s": run_s,
            "negotiations_per_s": ran as f64 / wall_s,
            "nodes": cluster_report.as_ref().map(|r| r.nodes.clone()),
            "nodes_lost": cluster_report.as_ref().map(|r| r.lost.clone()),
            "retried": cluster_report.as_ref().map(|r| r.retried),
            "out": dir.display().to_string(),
            "summary": stats.iter().map(stats_json).collect::<Vec<_>>(),
        });
        return emit(&format!("{report}\n"));
    }
    let mut text = String::new();
    let on_off = |b: bool| if b { "on" } else { "off" };
    let _ = writeln!(
        text,
        "tournament `{}`: {} strategies × {} scenarios × {} repetitions (self-play {}, order rotation {}) = {} negotiations",
        t.name,
        t.entrants.len(),
        t.venues.len(),
        t.repetitions,
        on_off(t.self_play),
        on_off(t.rotate_order),
        plan.len()
    );
    if already > 0 {
        let _ = writeln!(text, "  {already} already in {}, {ran} run now", results_path.display());
    }
    match (&cluster_report, ran > 0) {
        (Some(r), true) => {
            let _ = writeln!(
                text,
                "  ran {ran} in {wall_s:.3} s ({} negotiations/s) on {} node(s): {}",
                per_second(ran as f64 / wall_s),
                r.nodes.len(),
                r.nodes.join(", ")
            );
            if !r.lost.is_empty() {
                let _ = writeln!(
                    text,
                    "  nodes lost: {}; {} negotiation(s) re-run elsewhere (see `attempts` in results.jsonl)",
                    r.lost.join(", "),
                    r.retried
                );
            }
        }
        (None, true) => {
            let _ = writeln!(
                text,
                "  ran {ran} in {wall_s:.3} s ({} negotiations/s, {threads} thread(s), engine {})",
                per_second(ran as f64 / wall_s),
                executor.label()
            );
        }
        _ => {}
    }
    if existing.truncated_bytes > 0 {
        let _ = writeln!(text, "  note: cut a partial last line ({} bytes) of a stopped run", existing.truncated_bytes);
    }
    if existing.undigested > 0 {
        let _ = writeln!(
            text,
            "  note: {} line(s) say no scenario digest (written by an older negotium): their seeds and strategies \
             were checked, their scenarios could not be; move {} away if a scenario file changed since",
            existing.undigested,
            results_path.display()
        );
    }
    if existing.foreign > 0 || existing.duplicates > 0 {
        let _ = writeln!(
            text,
            "  note: ignored {} line(s) of sessions this tournament does not hold and {} repeated line(s)",
            existing.foreign, existing.duplicates
        );
    }
    text.push('\n');
    text.push_str(&summary::summary_text(&stats));
    text.push_str("  utility, advantage (utility − reservation value) and welfare after discount; distances before\n");
    text.push_str(
        "  95% CI of the mean utility by bootstrap; gap to next: real where its 95% interval leaves 0 out (summary.md: every pair)\n",
    );
    text.push('\n');
    let _ = writeln!(text, "results: {}/{{results.jsonl, results.csv, summary.csv, summary.md}}", dir.display());
    emit(&text)
}

/// Writes what the command prints in one go; a closed stdout (`| head`) is
/// not an error.
fn emit(text: &str) -> Result<(), CliError> {
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

fn default_dir(path: &Path) -> PathBuf {
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "tournament".into());
    PathBuf::from("results").join(stem)
}

fn write(path: &Path, text: &str) -> Result<(), CliError> {
    let mut f =
        File::create(path).with_context(|| format!("cannot create {}", path.display())).map_err(CliError::Failure)?;
    f.write_all(text.as_bytes())?;
    Ok(())
}

fn stats_json(s: &StrategyStats) -> serde_json::Value {
    json!({
        "strategy": s.strategy,
        "n": s.n,
        "mean_utility": s.mean_utility,
        "mean_advantage": s.mean_advantage,
        "agreement_rate": s.agreement_rate,
        "mean_welfare": s.mean_welfare,
        "mean_distance_to_nash": s.mean_distance_to_nash,
        "mean_distance_to_pareto": s.mean_distance_to_pareto,
        "mean_rounds": s.mean_rounds,
        "utility_interval": s.utility_interval.map(|i| [i.low, i.high]),
        "gap_to_next": s.gap_to_next.map(|(d, i)| json!({ "difference": d, "interval": [i.low, i.high], "real": i.excludes_zero() })),
    })
}

/// A rate with the digits that matter: Python agents run a few negotiations
/// a second, native ones hundreds of thousands.
fn per_second(rate: f64) -> String {
    match rate {
        r if r >= 100.0 => format!("{r:.0}"),
        r if r >= 10.0 => format!("{r:.1}"),
        r => format!("{r:.2}"),
    }
}
