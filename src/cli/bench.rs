//! `negotium bench`: the reference workload W, timed like the peer's
//! `bench_sao.py` — building the utility functions and the parties is inside
//! the timed region, as it is there.

use std::time::Instant;

use std::borrow::Cow;
use std::sync::Arc;

use serde_json::json;

use super::cluster::ClusterArgs;
use super::report::Summary;
use super::{CliError, Engine, exec_error, peak_rss_mib};
use crate::core::domain::Domain;
use crate::core::strategy::StrategySpec;
use crate::core::workload::Workload;
use crate::engine::executor::{Job, Stage, Stages};

#[derive(clap::Args)]
pub struct BenchArgs {
    /// w1 (3 issues × 10 values), w4 (5 × 10), or KxV (K issues × V values, e.g. 10x10: the scaling runs)
    #[arg(long, default_value = "w1")]
    workload: String,
    /// Strategies of A and B, e.g. boulware-conceder, linear-linear.
    #[arg(long, default_value = "boulware-conceder")]
    pair: String,
    /// Negotiations (default: 50,000 for w1, 5,000 for w4).
    #[arg(long, value_parser = super::args::positive::<u64>("negotiations"))]
    n: Option<u64>,
    /// Seed; negotiation j uses seed + j (the peer's default is 1).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[arg(long, value_enum, default_value = "direct")]
    engine: Engine,
    /// Worker threads (direct) or arbiters (actors); default: every core.
    #[arg(long)]
    threads: Option<usize>,
    /// Sessions in flight at once on the actor engine (fewer where they
    /// would hold more than 2 GiB together by their estimates).
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
    let mut w = Workload::named(&args.workload).ok_or_else(|| {
        CliError::Input(format!(
            "unknown workload `{}` (w1, w4, or KxV: K issues × V values, e.g. 10x10)",
            args.workload
        ))
    })?;
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
    let cluster = args.cluster.config()?;
    let placement = cluster.as_ref().map(|c| c.placement);
    let executor = args.engine.executor(cluster, Some(threads), args.concurrency)?;
    let engine = executor.label();
    let stages = WorkloadStages { workload: &w, name: &args.workload, domain: domain.clone(), n };
    let seed = w.seed;
    let jobs = (0..n).map(move |j| Job {
        key: j,
        stage: j as u32,
        strategies: strategies.clone(),
        seed: seed.wrapping_add(j),
    });
    let mut summary = Summary::default();
    // Whether every party of every negotiation bid exactly, as the
    // inverses that answered say (a search may stop short on some).
    let mut exact = true;
    // The widest gap any party's answers may have from the exact ones
    // (`None`: some bid from a sample, so no bound is known).
    let mut gap: Option<f64> = Some(0.0);
    let started = Instant::now();
    let report = executor
        .execute(&stages, false, Box::new(jobs), &mut |done| {
            summary.add(&done.result, None);
            exact &= done.result.bids_exact.iter().all(|b| *b == Some(true));
            for g in &done.result.bids_gap {
                gap = gap.zip(*g).map(|(a, b)| a.max(b));
            }
            Ok(())
        })
        .map_err(exec_error)?;
    let mut nodes = report.nodes;
    if let Some(placement) = placement {
        nodes.push(format!("placement {placement:?}").to_lowercase());
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
        "n_outcomes": super::analyze::outcomes_json(&domain.cardinality()),
        "exact": exact,
        "bids_gap": gap.filter(|g| g.is_finite()),
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
        let bids = match gap {
            _ if exact => "exact".to_string(),
            Some(g) if g.is_finite() => format!("search cut short: each within {g:.1e} of the exact answer"),
            Some(_) => "search cut short (no bound)".to_string(),
            None => "sampled (best of a seeded sample, no bound)".to_string(),
        };
        outln!("  bids             {bids}");
    }
    Ok(())
}

/// Every negotiation of W has preferences of its own: each is a stage of its
/// own, built when its session runs (inside the timed region, as the peer
/// builds its utility functions), not all of them before the first.
struct WorkloadStages<'a> {
    workload: &'a Workload,
    name: &'a str,
    domain: Arc<Domain>,
    n: u64,
}

impl Stages for WorkloadStages<'_> {
    fn count(&self) -> usize {
        self.n as usize
    }

    fn stage(&self, index: u32) -> Cow<'_, Stage> {
        let w = self.workload;
        Cow::Owned(Stage {
            name: format!("{}-{index}", self.name),
            domain: self.domain.clone(),
            party_names: vec!["A".into(), "B".into()],
            preferences: w.preferences(index.into()).to_vec(),
            deadline: w.deadline(),
            indexes: Vec::new(),
        })
    }
}
