//! `negotium bench`: the reference workload W, timed like the peer's
//! `bench_sao.py` — building the utility functions and the parties is inside
//! the timed region, as it is there.

use std::time::Instant;

use rayon::prelude::*;
use serde_json::json;

use super::cluster::{ClusterArgs, launch_error, launcher_runtime};
use super::report::Summary;
use super::{CliError, Engine, peak_rss_mib};
use crate::core::session::SessionResult;
use crate::core::strategy::StrategySpec;
use crate::core::workload::Workload;
use crate::engine::actors::{ActorRunOptions, run_sessions};
use crate::engine::{SessionSpec, direct};
use crate::net::cluster::ScenarioWire;
use crate::net::cluster::launcher::{self, Job, Launch};

#[derive(clap::Args)]
pub struct BenchArgs {
    /// w1 (3 issues × 10 values) or w4 (5 × 10).
    #[arg(long, default_value = "w1")]
    workload: String,
    /// Strategies of A and B, e.g. boulware-conceder, linear-linear.
    #[arg(long, default_value = "boulware-conceder")]
    pair: String,
    /// Negotiations (default: 50,000 for w1, 5,000 for w4).
    #[arg(long)]
    n: Option<u64>,
    /// Seed; negotiation j uses seed + j (the peer's default is 1).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[arg(long, value_enum, default_value = "direct")]
    engine: Engine,
    /// Worker threads (direct) or arbiters (actors); default: every core.
    #[arg(long)]
    threads: Option<usize>,
    /// Sessions in flight at once on the actor engine.
    #[arg(long, default_value_t = 1024)]
    concurrency: usize,
    /// One JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// On a cluster: every negotiation is a session placed on the nodes
    /// (with --placement split, every offer of B crosses gRPC).
    #[command(flatten)]
    cluster: ClusterArgs,
}

pub fn bench(args: BenchArgs) -> Result<(), CliError> {
    let mut w = Workload::named(&args.workload)
        .ok_or_else(|| CliError::Input(format!("unknown workload `{}` (w1, w4)", args.workload)))?;
    w.seed = args.seed;
    let (a, b) = args
        .pair
        .split_once('-')
        .ok_or_else(|| CliError::Input(format!("--pair `{}`: expected A-B, e.g. boulware-conceder", args.pair)))?;
    let strategies = vec![StrategySpec::named(a), StrategySpec::named(b)];
    for s in &strategies {
        s.validate().map_err(|e| CliError::Input(e.to_string()))?;
    }
    let n = args.n.unwrap_or(if w.issues <= 3 { 50_000 } else { 5_000 });
    let threads = args.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let domain = w.domain();
    let spec_of = |j: u64| {
        SessionSpec::new(
            j,
            domain.clone(),
            w.preferences(j).to_vec(),
            strategies.clone(),
            w.deadline(),
            w.seed.wrapping_add(j),
        )
    };

    let cluster = args.cluster.config()?;
    let engine = if cluster.is_some() { "cluster" } else { args.engine.label() };
    let mut summary = Summary::default();
    let started = Instant::now();
    let mut nodes = Vec::new();
    match (cluster, args.engine) {
        (Some(config), _) => {
            // Each negotiation has its own preferences: one scenario each
            // (nodes keep a bounded number loaded).
            let placement = config.placement;
            let scenarios = (0..n)
                .map(|j| {
                    let [a, b] = w.preferences(j);
                    ScenarioWire {
                        name: format!("{}-{j}", args.workload),
                        domain: domain.clone(),
                        parties: vec![("A".into(), a), ("B".into(), b)],
                        deadline: w.deadline(),
                    }
                })
                .collect();
            let launch = Launch { config, scenarios, trace: false };
            let (seed, strategies) = (w.seed, strategies.clone());
            let jobs = (0..n).map(move |j| Job {
                key: j,
                scenario: j as u32,
                strategies: strategies.clone(),
                seed: seed.wrapping_add(j),
            });
            let runtime = launcher_runtime()?;
            let report = launcher::run_blocking(runtime.handle(), launch, Box::new(jobs), |done| {
                summary.add(&done.result, None);
                Ok(())
            })
            .map_err(launch_error)?;
            nodes = report.nodes;
            nodes.push(format!("placement {placement:?}").to_lowercase());
        }
        (None, Engine::Direct) => {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .map_err(|e| CliError::Failure(e.into()))?;
            let results: Vec<SessionResult> = pool.install(|| {
                (0..n).into_par_iter().map(|j| direct::run(&spec_of(j)).expect("strategies validated above")).collect()
            });
            for r in &results {
                summary.add(r, None);
            }
        }
        (None, Engine::Actors) => {
            // Utility functions are built inside the timed region here too.
            let opts = ActorRunOptions { concurrency: args.concurrency, arbiters: threads };
            run_sessions((0..n).map(spec_of), opts, |(_, r)| summary.add(&r, None))
                .map_err(|e| CliError::Input(e.to_string()))?;
        }
    }
    let wall = started.elapsed().as_secs_f64();
    let offers = summary.offers;
    let report = json!({
        "workload": args.workload,
        "pair": args.pair,
        "engine": engine,
        "threads": threads,
        "nodes": nodes,
        "n_negotiations": summary.n,
        "n_outcomes": domain.cardinality().to_string(),
        "wall_s": wall,
        "negotiations_per_s": summary.n as f64 / wall,
        "offers_total": offers,
        "offers_per_negotiation": summary.mean(offers),
        "offers_per_s": offers / wall,
        "agreement_rate": summary.agreements as f64 / summary.n.max(1) as f64,
        "rounds_mean": summary.mean(summary.rounds),
        "mean_utilities": summary.mean_utilities(),
        "peak_rss_mib": peak_rss_mib(),
    });
    if args.json {
        outln!("{report}");
    } else {
        outln!(
            "{} {} ({} outcomes), engine {}, {} thread(s), n={}",
            args.workload,
            args.pair,
            domain.cardinality(),
            engine,
            threads,
            summary.n
        );
        if !nodes.is_empty() {
            outln!("  nodes            {}", nodes.join(", "));
        }
        outln!("  negotiations/s   {:.0}", report["negotiations_per_s"].as_f64().unwrap_or(0.0));
        outln!("  offers/s         {:.0}", report["offers_per_s"].as_f64().unwrap_or(0.0));
        outln!("  agreement rate   {:.3}", report["agreement_rate"].as_f64().unwrap_or(0.0));
        outln!("  mean rounds      {:.3}", report["rounds_mean"].as_f64().unwrap_or(0.0));
        let mu = summary.mean_utilities();
        outln!("  mean utilities   A {:.4}  B {:.4}", mu.first().unwrap_or(&0.0), mu.get(1).unwrap_or(&0.0));
        if let Some(m) = peak_rss_mib() {
            outln!("  peak memory      {m:.1} MiB");
        }
    }
    Ok(())
}
