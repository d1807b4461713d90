//! `negotium train`, `ps`, `worker` and `eval`: training a bidding policy
//! and measuring it. The work is in [`crate::learn`]; this file parses,
//! prints, and writes the metrics CSV and the training curve.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use indicatif::ProgressBar;
use plotters::prelude::*;

use super::CliError;
use super::api::{ClientTlsArgs, ServerTlsArgs};
use super::plot::style;
use crate::learn::config::TrainConfig;
use crate::learn::device::Device;
use crate::learn::env::Pool;
use crate::learn::eval;
use crate::learn::ps::{Event, StepReport};
use crate::learn::remote::{PsDial, PsServe};
use crate::learn::train::{self, LocalRun};
use crate::net::auth::Secret;
use crate::net::transport::defaults;

#[derive(clap::Args)]
pub struct TrainArgs {
    /// Training configuration (see training/ppo.toml).
    config: PathBuf,
    /// Local worker threads (default: the config's `workers`).
    #[arg(long, value_parser = super::args::positive::<usize>("workers"))]
    workers: Option<usize>,
    /// Continue from the checkpoint in --out.
    #[arg(long, conflicts_with = "force")]
    resume: bool,
    /// Replace an earlier run in --out (without it, or --resume, a folder
    /// that holds one is refused).
    #[arg(long)]
    force: bool,
    /// Folder for checkpoints, metrics.csv, curve.svg and the model (policy.mpk + policy.json).
    #[arg(long, default_value = "runs/train")]
    out: PathBuf,
    /// No progress bar (logs and CI).
    #[arg(long)]
    quiet: bool,
}

#[derive(clap::Args)]
pub struct PsArgs {
    /// Address to serve the training RPCs on (beyond loopback it needs
    /// --token, or --insecure).
    #[arg(long, default_value = defaults::PS)]
    listen: std::net::SocketAddr,
    #[command(flatten)]
    tls: ServerTlsArgs,
    /// Token workers must show (`negotium worker --token`).
    #[arg(long, env = "NEGOTIUM_TRAINING_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Serve an address beyond loopback without a token.
    #[arg(long)]
    insecure: bool,
    #[arg(long)]
    config: PathBuf,
    /// Folder for checkpoints, metrics and the final model.
    #[arg(long, default_value = "runs/ps")]
    checkpoint_dir: PathBuf,
    /// Continue from the checkpoint in --checkpoint-dir.
    #[arg(long, conflicts_with = "force")]
    resume: bool,
    /// Replace an earlier run in --checkpoint-dir.
    #[arg(long)]
    force: bool,
    #[arg(long)]
    quiet: bool,
}

#[derive(clap::Args)]
pub struct WorkerArgs {
    /// Parameter server address: HOST:PORT (https with --ca, else http), or a URL.
    #[arg(long, default_value = defaults::PS)]
    ps: String,
    #[command(flatten)]
    tls: ClientTlsArgs,
    /// The parameter server's training token.
    #[arg(long, env = "NEGOTIUM_TRAINING_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// cpu, or cuda:N (needs a build with --features cuda and a driver).
    #[arg(long, default_value = "cpu")]
    device: String,
}

#[derive(clap::Args)]
pub struct EvalArgs {
    /// A trained model (policy.mpk, its policy.json beside it).
    model: PathBuf,
    /// Config whose [eval] pool to use (default: config.toml beside the
    /// model, as `negotium train` leaves it, else the built-in held-out pool).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Negotiations per candidate (default: the pool's `episodes`).
    #[arg(long, value_parser = super::args::positive::<usize>("negotiations per candidate"))]
    episodes: Option<usize>,
    /// JSON lines instead of a table.
    #[arg(long)]
    json: bool,
}

fn load_config(path: &Path) -> Result<TrainConfig, CliError> {
    TrainConfig::load(path).map_err(CliError::Input)
}

/// Progress bar, metrics CSV and curve for a run writing into `out`.
struct Monitor {
    bar: ProgressBar,
    csv: std::fs::File,
    rows: Vec<StepReport>,
    last_reward: f64,
    started: Instant,
}

impl Monitor {
    fn new(out: &Path, total: u64, done: u64, quiet: bool) -> Result<Self, CliError> {
        std::fs::create_dir_all(out)?;
        let path = out.join("metrics.csv");
        let fresh = done == 0 || !path.exists();
        let mut csv =
            std::fs::OpenOptions::new().create(true).append(!fresh).write(true).truncate(fresh).open(&path)?;
        if fresh {
            writeln!(
                csv,
                "version,iteration,workers,samples,episodes,mean_reward,agreement_rate,loss,policy_loss,value_loss,entropy,grad_norm,step_s,ps_s,dropped"
            )?;
        }
        let template = "{bar:30} {pos}/{len} steps {elapsed_precise} {eta} {msg}";
        let bar = if quiet { ProgressBar::hidden() } else { super::progress::bar(total, done, template) };
        Ok(Self { bar, csv, rows: Vec::new(), last_reward: f64::NAN, started: Instant::now() })
    }

    fn event(&mut self, ev: &Event) {
        match ev {
            Event::Step(r) => {
                if r.episodes > 0 {
                    self.last_reward = r.mean_reward;
                }
                let _ = writeln!(
                    self.csv,
                    "{},{},{},{},{},{},{},{},{},{},{},{},{:.6},{:.6},{}",
                    r.version,
                    r.iteration,
                    r.workers,
                    r.samples,
                    r.episodes,
                    if r.episodes > 0 { format!("{:.6}", r.mean_reward) } else { String::new() },
                    if r.episodes > 0 { format!("{:.6}", r.agreement_rate) } else { String::new() },
                    r.loss,
                    r.policy_loss,
                    r.value_loss,
                    r.entropy,
                    r.grad_norm,
                    r.step_s,
                    r.ps_s,
                    r.dropped.len()
                );
                self.bar.set_position(r.version);
                self.bar
                    .set_message(format!("reward {:.3}  loss {:.4}  workers {}", self.last_reward, r.loss, r.workers));
                self.rows.push(r.clone());
            }
            Event::Checkpoint { version, path } => {
                self.note(format!("checkpoint at version {version}: {}", path.display()));
            }
            Event::Listening(addr) => self.note(format!("parameter server listening on {addr}")),
            Event::Done { .. } => self.bar.finish(),
        }
    }

    /// A line for the log, above the bar (or alone without one).
    fn note(&self, line: String) {
        if self.bar.is_hidden() {
            eprintln!("{line}");
        } else {
            self.bar.println(line);
        }
    }

    /// Throughput and the parameter server's share of step time, over the
    /// steps after the first iteration (which also pays for joining and
    /// loading the scenario pool).
    fn summary(&self) -> String {
        if self.rows.is_empty() {
            return "no steps taken".into();
        }
        let steady: Vec<&StepReport> = self.rows.iter().filter(|r| r.iteration > self.rows[0].iteration).collect();
        let rows = if steady.is_empty() { self.rows.iter().collect() } else { steady };
        let samples: u64 = rows.iter().map(|r| r.samples).sum();
        let episodes: u64 = rows.iter().map(|r| r.episodes).sum();
        let step: f64 = rows.iter().map(|r| r.step_s).sum();
        let ps: f64 = rows.iter().map(|r| r.ps_s).sum();
        format!(
            "{} steps in {:.1} s; after the first iteration: {:.0} samples/s (decisions through a gradient step), \
             {:.1} episodes/s, parameter server {:.3}% of step time",
            self.rows.len(),
            self.started.elapsed().as_secs_f64(),
            samples as f64 / step.max(1e-9),
            episodes as f64 / step.max(1e-9),
            100.0 * ps / step.max(1e-12)
        )
    }
}

pub fn train(args: TrainArgs) -> Result<(), CliError> {
    let cfg = load_config(&args.config)?;
    let workers = args.workers.unwrap_or(cfg.workers).max(1);
    let opts = LocalRun { workers, out: args.out.clone(), resume: args.resume, serve: None, kill_after: None };
    run_ps(cfg, &opts, args.force, args.quiet)
}

pub fn ps(args: PsArgs) -> Result<(), CliError> {
    let cfg = load_config(&args.config)?;
    let token = args.token.and_then(Secret::new);
    let credentials = crate::net::auth::Credentials { training: token.clone(), ..Default::default() };
    credentials
        .check_exposure(args.listen, args.insecure, &[crate::net::auth::Role::Training])
        .map_err(CliError::Input)?;
    let serve = PsServe { listen: args.listen, tls: args.tls.files()?, token, insecure: args.insecure };
    let opts = LocalRun {
        workers: 0,
        out: args.checkpoint_dir.clone(),
        resume: args.resume,
        serve: Some(serve),
        kill_after: None,
    };
    run_ps(cfg, &opts, args.force, args.quiet)
}

/// What a training run leaves in its folder (`force` removes them first, so
/// that a run killed early cannot be resumed from the run it replaced).
const RUN_FILES: [&str; 8] = [
    crate::learn::checkpoint::FILE,
    "metrics.csv",
    "policy.mpk",
    "policy.json",
    "curve.svg",
    "curve.png",
    "config.toml",
    "checkpoint.json.tmp",
];

/// Refuses to write over an earlier run in `out` unless resuming it or
/// told to replace it. Returns whether there is a checkpoint to resume:
/// `--resume` without one starts the run (as `run --resume` does), so it is
/// safe to give on every start of a restarted parameter server.
fn claim_out(out: &Path, resume: bool, force: bool) -> Result<bool, CliError> {
    let found: Vec<&str> = RUN_FILES.iter().copied().filter(|f| out.join(f).exists()).collect();
    if resume {
        if out.join(crate::learn::checkpoint::FILE).exists() {
            return Ok(true);
        }
        if !found.is_empty() {
            eprintln!("note: --resume: no checkpoint in {} yet; starting the run afresh", out.display());
        }
        return Ok(false);
    }
    if found.is_empty() {
        return Ok(false);
    }
    if !force {
        return Err(CliError::Input(format!(
            "{} already holds a training run ({}); give --resume to continue it, --force to replace it, \
             or another folder",
            out.display(),
            found.join(", ")
        )));
    }
    for f in found {
        std::fs::remove_file(out.join(f))?;
    }
    Ok(false)
}

fn run_ps(cfg: TrainConfig, opts: &LocalRun, force: bool, quiet: bool) -> Result<(), CliError> {
    let opts = &LocalRun { resume: claim_out(&opts.out, opts.resume, force)?, ..opts.clone() };
    let done =
        if opts.resume { crate::learn::checkpoint::load(&opts.out).map_err(CliError::Input)?.version } else { 0 };
    let mut monitor = Monitor::new(&opts.out, cfg.total_steps(), done, quiet)?;
    let trained = train::run(cfg, opts, |ev| monitor.event(ev)).map_err(super::failure)?;
    let curve = opts.out.join("curve.svg");
    if let Err(e) = write_curve(&opts.out, &curve) {
        eprintln!("warning: no training curve: {e}");
    }
    outln!("{}", monitor.summary());
    outln!(
        "model: {} (version {}); metrics: {}; curve: {} (and .png)",
        trained.model.display(),
        trained.version,
        opts.out.join("metrics.csv").display(),
        curve.display()
    );
    Ok(())
}

pub fn worker(args: WorkerArgs) -> Result<(), CliError> {
    let device: Device = args.device.parse().map_err(CliError::Input)?;
    crate::learn::device::check(device).map_err(CliError::Input)?;
    let dial = PsDial { tls: args.tls.read()?, token: args.token.and_then(Secret::new) };
    // One thread runs the connection; this one computes and blocks on calls.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| super::failure(format!("cannot start a runtime: {e}")))?;
    let summary = train::remote_worker(&args.ps, device, &dial, rt.handle().clone()).map_err(super::failure)?;
    outln!("worker done: {} steps, {} rejoins", summary.steps, summary.rejoins);
    Ok(())
}

pub fn evaluate(args: EvalArgs) -> Result<(), CliError> {
    let (spec, flat) = crate::learn::model::load(&args.model).map_err(CliError::Input)?;
    // The model's own config: the one `negotium train` saved beside it.
    let beside = args.model.parent().map(|d| d.join("config.toml")).filter(|p| p.exists());
    let (cfg, source) = match args.config.or(beside) {
        Some(p) => (load_config(&p)?, format!("{} [eval]", p.display())),
        None => {
            eprintln!(
                "note: no config.toml beside {} (`negotium train` writes one); using the built-in held-out pool, \
                 random domains only; give --config FILE for the model's own",
                args.model.display()
            );
            (TrainConfig::default(), "built-in".to_string())
        }
    };
    let pool = Pool::load(&cfg.eval).map_err(CliError::Input)?;
    for s in &pool.skipped {
        eprintln!("note: skipped {s}");
    }
    let episodes = args.episodes.unwrap_or(cfg.eval.episodes);
    let rows = eval::evaluate(Some((&spec, &flat)), &pool, episodes).map_err(super::failure)?;
    if args.json {
        for r in &rows {
            outln!("{}", serde_json::to_string(r)?);
        }
        return Ok(());
    }
    print_pool(&source, &pool);
    crate::cli::write_out(format_args!("{}", eval::table(&rows)));
    if let (Some(best), Some(me)) = (eval::best_time_dependent(&rows), rows.first()) {
        outln!(
            "learned vs best time-dependent ({}): own utility {:+.4}, agreement {:+.3}, welfare {:+.4}",
            best.candidate,
            me.own_utility - best.own_utility,
            me.agreement_rate - best.agreement_rate,
            me.social_welfare - best.social_welfare
        );
    }
    Ok(())
}

/// Which negotiations an evaluation plays: the config it came from, the
/// scenarios (by name, the first 20), the share of random domains and the
/// opponents.
fn print_pool(source: &str, pool: &Pool) {
    const SHOWN: usize = 20;
    let mut names: Vec<String> = pool.cases.iter().take(SHOWN).map(|c| c.domain.name.clone()).collect();
    if pool.cases.len() > SHOWN {
        names.push(format!("… {} more", pool.cases.len() - SHOWN));
    }
    outln!("held-out pool ({source}):");
    outln!(
        "  scenarios: {}{}",
        pool.cases.len(),
        if names.is_empty() { String::new() } else { format!(" ({})", names.join(", ")) }
    );
    outln!("  random domains: {:.0}% of episodes", pool.random_share * 100.0);
    outln!("  opponents: {}", pool.opponents.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "));
}

/// curve.svg, and curve.png rendered from it as `negotium plot` renders.
fn write_curve(out: &Path, svg_path: &Path) -> Result<(), String> {
    let csv = std::fs::read_to_string(out.join("metrics.csv")).map_err(|e| e.to_string())?;
    let svg = curve_svg(&csv)?;
    std::fs::write(svg_path, &svg).map_err(|e| e.to_string())?;
    let raster = super::plot::Rasterizer::new();
    if let Some(w) = raster.warning() {
        eprintln!("warning: {w}");
    }
    let png = raster.png(&svg)?;
    std::fs::write(svg_path.with_extension("png"), png).map_err(|e| e.to_string())
}

/// Mean reward per iteration and loss per step, from metrics.csv.
fn curve_svg(csv: &str) -> Result<String, String> {
    let mut reward: Vec<(f64, f64)> = Vec::new();
    let mut loss: Vec<(f64, f64)> = Vec::new();
    for line in csv.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let num = |k: usize| f.get(k).and_then(|s| s.parse::<f64>().ok());
        if let (Some(v), Some(l)) = (num(0), num(7)) {
            loss.push((v, l));
            if let Some(r) = num(5) {
                reward.push((v, r));
            }
        }
    }
    if loss.is_empty() {
        return Err("no steps recorded".into());
    }
    // Steps are whole numbers: an integer axis has integer ticks only.
    let x_max = loss.iter().map(|p| p.0).fold(1.0, f64::max).ceil() as i64;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 640)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let (top, bottom) = root.split_vertically(320);
        let draw = |area: &DrawingArea<SVGBackend, plotters::coord::Shift>,
                    title: &str,
                    y_desc: &str,
                    pts: &[(f64, f64)],
                    color: RGBColor|
         -> Result<(), String> {
            let lo = pts.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
            let hi = pts.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
            let (lo, hi) = if lo.is_finite() && hi > lo {
                let pad = (hi - lo) * 0.05;
                (lo - pad, hi + pad)
            } else if lo.is_finite() {
                (lo - 0.5, lo + 0.5)
            } else {
                (0.0, 1.0)
            };
            // As many decimals as the range needs to tell ticks apart.
            let decimals = (1 - ((hi - lo) / 5.0).log10().floor() as i64).clamp(0, 6) as usize;
            let mut chart = ChartBuilder::on(area)
                .caption(title, style::font(18.0))
                .margin(12)
                .margin_right(24)
                .x_label_area_size(48)
                .y_label_area_size(80)
                .build_cartesian_2d(0i64..x_max, lo..hi)
                .map_err(|e| e.to_string())?;
            style::mesh(&mut chart)
                .x_labels((x_max as usize + 1).min(11))
                .y_labels(6)
                .x_label_formatter(&|v| v.to_string())
                .y_label_formatter(&|v| format!("{v:.decimals$}"))
                .x_desc("step (parameter-server version)")
                .y_desc(y_desc)
                .draw()
                .map_err(|e| e.to_string())?;
            let line = pts.iter().map(|&(x, y)| (x.round() as i64, y));
            chart.draw_series(LineSeries::new(line, color.stroke_width(2))).map_err(|e| e.to_string())?;
            Ok(())
        };
        draw(&top, "mean reward (own utility) per iteration", "mean reward", &reward, style::PALETTE[0])?;
        draw(&bottom, "PPO loss per step", "loss", &loss, style::AGREEMENT)?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The curve has titled, labelled y axes and whole-number step ticks
    /// (a 3-step run once showed 0.5, 1.5, ...), in `negotium plot`'s style.
    #[test]
    fn the_curve_has_y_labels_and_whole_steps() {
        let csv = "version,iteration,workers,samples,episodes,mean_reward,agreement_rate,loss\n\
                   1,0,1,10,4,0.21,0.5,3.0\n2,0,1,10,0,,,2.0\n3,1,1,10,4,0.28,0.5,1.5\n";
        let svg = curve_svg(csv).unwrap();
        if let Ok(path) = std::env::var("NEGOTIUM_CURVE_SVG") {
            std::fs::write(path, &svg).unwrap();
        }
        let texts: Vec<&str> = svg
            .split("<text")
            .skip(1)
            .filter_map(|t| t.split_once('>'))
            .map(|(_, rest)| rest.split("</text>").next().unwrap_or("").trim())
            .collect();
        for text in ["mean reward", "loss", "step (parameter-server version)", "1", "2", "3", "0.220", "1.50"] {
            assert!(texts.contains(&text), "{text} in the curve: {texts:?}");
        }
        for fractional in ["0.5", "1.5", "2.5"] {
            assert!(!texts.contains(&fractional), "no fractional step tick {fractional}: {texts:?}");
        }
    }
}
