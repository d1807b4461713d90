//! The `negotium` commands. `main` parses arguments and maps errors to exit
//! codes: 0 success, 1 a failure while running, 2 bad input (arguments,
//! scenario files, strategy names).

/// `println!` for reports: once stdout's reader has gone (`negotium run … |
/// head`) the rest is dropped quietly and the command still finishes its
/// work and its files, instead of panicking halfway.
macro_rules! outln {
    () => {
        $crate::cli::write_out(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::cli::write_out(format_args!("{}\n", format_args!($($arg)*)))
    };
}

mod analyze;
mod api;
mod args;
mod bench;
mod bench_api;
mod cluster;
mod explain;
mod import;
mod plot;
mod progress;
mod report;
mod run;
mod strategies;
mod tournament;
mod train;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

use crate::core::strategy::StrategySpec;
use crate::engine::actors::ActorRunOptions;
use crate::engine::executor::{Actors, Direct, ExecError, Executor};
use crate::net::agent_host;
use crate::net::cluster::config::ClusterConfig;
use crate::net::cluster::executor::Cluster;

#[derive(Parser)]
#[command(name = "negotium", version, about = "Automated negotiation at scale")]
struct Cli {
    /// Log as JSON lines (for log collectors) instead of text.
    #[arg(long, global = true)]
    log_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Engine {
    /// Sessions and parties as actix actors.
    Actors,
    /// The protocol and strategies in one loop per session, on all cores.
    Direct,
}

impl Engine {
    /// [`Engine::executor`] for a batch whose parties play `strategies`:
    /// where any is a Python strategy, the agent host runs the batch
    /// instead, once it said that every Python class can be played (else
    /// exit 2, before anything runs).
    fn executor_for<'a>(
        self,
        cluster: Option<ClusterConfig>,
        threads: Option<usize>,
        concurrency: usize,
        strategies: impl IntoIterator<Item = &'a StrategySpec> + Clone,
    ) -> Result<Box<dyn Executor>, CliError> {
        if !strategies.clone().into_iter().any(StrategySpec::is_python) {
            return self.executor(cluster, threads, concurrency);
        }
        if cluster.is_some() {
            return Err(CliError::Input(
                "Python strategies do not run on a cluster yet: run them without --nodes/--discover (each \
                 node would need its own agent host)"
                    .into(),
            ));
        }
        let host = agent_host::PythonHost { workers: threads, ..agent_host::PythonHost::from_env() };
        agent_host::check(&host, strategies.clone()).map_err(CliError::Input)?;
        // Python agents are CPU-bound: more sessions in flight than cores
        // only make each wait, and a waiting agent nears its deadline.
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let deadline = agent_host::longest_deadline(strategies);
        Ok(Box::new(agent_host::AgentHosted { host, concurrency: concurrency.min(cores.max(2)), deadline }))
    }

    /// What runs the sessions: the nodes of `cluster` where there is one
    /// (the engine choice is then the nodes' own), else this engine here.
    /// `threads`: the direct engine's workers, the actor engine's arbiters
    /// (`None`: every core).
    fn executor(
        self,
        cluster: Option<ClusterConfig>,
        threads: Option<usize>,
        concurrency: usize,
    ) -> Result<Box<dyn Executor>, CliError> {
        Ok(match (cluster, self) {
            (Some(config), _) => {
                Box::new(Cluster { config, runtime: cluster::launcher_runtime()?, on_notice: cluster::show_notice })
            }
            (None, Engine::Direct) => Box::new(Direct { threads }),
            (None, Engine::Actors) => {
                let mut options = ActorRunOptions { concurrency, ..Default::default() };
                if let Some(n) = threads {
                    options.arbiters = n;
                }
                Box::new(Actors { options })
            }
        })
    }
}

// Parsed once per process: the size of its largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Run negotiations of a scenario and summarise them.
    Run(run::RunArgs),
    /// Outcome count, Pareto frontier, Nash, Kalai–Smorodinsky and max-welfare points.
    Analyze {
        scenario: PathBuf,
        /// One JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// The reference workload W (DESIGN.md), timed as the peer times it.
    Bench(bench::BenchArgs),
    /// Host sessions that external agents join over gRPC.
    Serve(api::ServeArgs),
    /// A cluster node: hosts sessions and parties for launchers (`run`/`tournament`
    /// with --cluster, --nodes or --discover) and serves the agent API.
    Node(cluster::NodeArgs),
    /// Create, list, watch sessions on a node and fetch their results.
    #[command(subcommand)]
    Session(api::SessionCommand),
    /// Play one party of a session on a node with a built-in strategy.
    Agent(api::AgentArgs),
    /// Offers per second and turn latency through the gRPC API (127.0.0.1).
    BenchApi(bench_api::BenchApiArgs),
    /// Convert a Genius XML / GeniusWeb JSON folder into a scenario TOML file.
    Import(import::ImportArgs),
    /// Run a tournament: strategies × scenarios × repetitions.
    Tournament(tournament::TournamentArgs),
    /// Every strategy that can be named: the built-ins and the native ANAC agents, with their parameters.
    Strategies(strategies::StrategiesArgs),
    /// Plot results: one negotiation's utility space, or a tournament's strategies.
    Plot(plot::PlotArgs),
    /// Train a bidding policy: parameter server and N local workers (PPO).
    Train(train::TrainArgs),
    /// Parameter server alone, for workers joining over gRPC.
    Ps(train::PsArgs),
    /// A training worker joining a parameter server over gRPC.
    Worker(train::WorkerArgs),
    /// A trained policy against fixed baselines on held-out scenarios and opponents.
    Eval(train::EvalArgs),
}

/// An error and the exit code it deserves.
#[derive(Debug)]
pub enum CliError {
    /// Bad arguments or files: exit 2.
    Input(String),
    /// Something failed while running: exit 1.
    Failure(anyhow::Error),
}

/// A batch that did not finish: strategies that do not build are bad input
/// (exit 2); a cluster without a node, a session that fails on every node or
/// a results file that cannot be written is a failure to run (exit 1).
fn exec_error(e: ExecError) -> CliError {
    match e {
        ExecError::Strategy { error, .. } => CliError::Input(error.to_string()),
        other => CliError::Failure(anyhow::anyhow!("{other}")),
    }
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        CliError::Failure(e.into())
    }
}

impl From<serde_json::Error> for CliError {
    fn from(e: serde_json::Error) -> Self {
        CliError::Failure(e.into())
    }
}

pub fn main() -> ExitCode {
    let mut command = args::negatives_reach_parsers(Cli::command());
    let cli = command
        .try_get_matches_from_mut(std::env::args_os())
        .and_then(|m| Cli::from_arg_matches(&m))
        .unwrap_or_else(|e| args::plain(e).exit());
    init_tracing(cli.log_json);
    crate::learn::register();
    let result = match cli.command {
        Command::Run(args) => run::run(args),
        Command::Analyze { scenario, json } => analyze::analyze(&scenario, json),
        Command::Bench(args) => bench::bench(args),
        Command::Serve(args) => api::serve(args),
        Command::Node(args) => cluster::node(args),
        Command::Session(cmd) => api::session(cmd),
        Command::Agent(args) => api::agent(args),
        Command::BenchApi(args) => bench_api::bench_api(args),
        Command::Import(args) => import::import(args),
        Command::Tournament(args) => tournament::tournament(args),
        Command::Strategies(args) => strategies::strategies(args),
        Command::Plot(args) => plot::plot(args),
        Command::Train(args) => train::train(args),
        Command::Ps(args) => train::ps(args),
        Command::Worker(args) => train::worker(args),
        Command::Eval(args) => train::evaluate(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError::Input(msg)) => {
            eprintln!("error: {msg}");
            ExitCode::from(2)
        }
        Err(CliError::Failure(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// A failure while running (exit 1) from a message.
pub(crate) fn failure(msg: impl std::fmt::Display) -> CliError {
    CliError::Failure(anyhow::anyhow!("{msg}"))
}

/// See `outln!`.
pub(crate) fn write_out(args: std::fmt::Arguments<'_>) {
    use std::io::Write as _;
    let _ = std::io::stdout().lock().write_fmt(args);
}

fn init_tracing(json: bool) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("NEGOTIUM_LOG").unwrap_or_else(|_| EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour(std::io::IsTerminal::is_terminal(&std::io::stderr()), std::env::var_os("NO_COLOR")));
    let _ = if json { builder.json().try_init() } else { builder.try_init() };
}

/// Whether to colour a stream: only a terminal, and never with `NO_COLOR`
/// set to anything but "" (https://no-color.org). Log files and pipes
/// (`serve 2> serve.log`, a test reading stderr) get plain text.
fn colour(terminal: bool, no_color: Option<std::ffi::OsString>) -> bool {
    terminal && no_color.is_none_or(|v| v.is_empty())
}

/// Reads a scenario (TOML file, or a folder of Genius / GeniusWeb files);
/// every failure is bad input (exit 2).
pub fn load_scenario(path: &std::path::Path) -> Result<crate::core::scenario::Scenario, CliError> {
    crate::import::load_any(path).map_err(|e| CliError::Input(e.to_string()))
}

/// Peak resident memory of this process in MiB (Linux; `None` elsewhere).
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn colour_only_on_a_terminal_and_never_with_no_color() {
        assert!(super::colour(true, None));
        assert!(super::colour(true, Some("".into())), "an empty NO_COLOR does not count");
        assert!(!super::colour(true, Some("1".into())));
        assert!(!super::colour(false, None));
    }
}
