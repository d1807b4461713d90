//! A training worker: for each step it fetches the parameters and its
//! shard, simulates its share of the iteration's episodes (once per
//! iteration; later epochs reuse them, as PPO does), computes the gradient
//! and pushes it. The same loop runs as a thread beside an in-process
//! parameter server or as `negotium worker` over gRPC: only the [`PsLink`]
//! differs. A worker is a plain thread rather than an actor: it blocks on
//! CPU work for seconds at a time, which an actor's mailbox would only hide.

use std::sync::Arc;

use burn::tensor::backend::AutodiffBackend;

use super::config::TrainConfig;
use super::env::Pool;
use super::model::{Mlp, PolicySpec};
use super::ppo::{self, Batch};
use super::ps::{Assignment, FetchReply, GradientMsg, PsError, PushAck, WorkerStats};
use crate::core::rng::SplitMix64;

/// How a worker reaches the parameter server (blocking calls).
pub trait PsLink {
    fn join(&mut self) -> Result<(u64, TrainConfig), PsError>;
    fn fetch(&mut self, worker: u64, after: Option<u64>) -> Result<FetchReply, PsError>;
    fn push(&mut self, msg: GradientMsg) -> Result<PushAck, PsError>;
}

/// Seed of episode `j` of iteration `iteration`: a function of the run's
/// seed alone, so the global batch is the same whatever the worker count.
pub fn episode_seed(seed: u64, iteration: u64, j: usize) -> u64 {
    SplitMix64::derive(seed.wrapping_add(iteration.wrapping_mul(0x9E37_79B9)), j as u64).next_u64()
}

/// Rollouts of one shard of one iteration.
pub struct Shard {
    pub key: (u64, usize, usize),
    pub batch: Batch,
    pub stats: WorkerStats,
}

/// Simulates episodes `j ≡ shard (mod shards)` of `iteration` with `params`.
pub fn collect(
    cfg: &TrainConfig,
    pool: &Pool,
    params: &[f32],
    iteration: u64,
    shard: usize,
    shards: usize,
) -> Result<Shard, String> {
    let spec = PolicySpec::new(cfg.hidden);
    let mlp = Arc::new(Mlp::new(&spec, params)?);
    let mut batch = Batch::default();
    let mut stats = WorkerStats::default();
    for j in (shard..cfg.episodes).step_by(shards.max(1)) {
        let ep = pool.draw(episode_seed(cfg.seed, iteration, j)).rollout(mlp.clone())?;
        stats.episodes += 1;
        stats.reward_sum += ep.reward;
        stats.agreements += ep.agreement as u64;
        if !ep.steps.is_empty() {
            batch.push(&ep, cfg.gamma, cfg.lambda);
        }
    }
    Ok(Shard { key: (iteration, shard, shards), batch, stats })
}

/// A worker's state between steps.
pub struct Worker<B: AutodiffBackend> {
    pub cfg: TrainConfig,
    pool: Arc<Pool>,
    device: B::Device,
    data: Option<Shard>,
}

impl<B: AutodiffBackend> Worker<B> {
    /// `pool`: the episodes' pool when the caller already holds it (local
    /// workers share one); `None` loads it from the config.
    pub fn new(cfg: TrainConfig, pool: Option<Arc<Pool>>, device: B::Device) -> Result<Self, String> {
        let pool = match pool {
            Some(pool) => pool,
            None => Arc::new(Pool::load(&cfg.pool)?),
        };
        Ok(Self { cfg, pool, device, data: None })
    }

    /// The gradient for one assignment (worker id left 0 for the caller).
    pub fn work(&mut self, a: &Assignment) -> Result<GradientMsg, String> {
        let key = (a.iteration, a.shard, a.shards);
        let fresh = self.data.as_ref().is_none_or(|d| d.key != key);
        if fresh {
            self.data = Some(collect(&self.cfg, &self.pool, &a.params, a.iteration, a.shard, a.shards)?);
        }
        let data = self.data.as_ref().expect("collected above");
        let spec = PolicySpec::new(self.cfg.hidden);
        let (grad, loss) = ppo::gradient::<B>(&spec, &a.params, &data.batch, &self.cfg, &self.device)?;
        // Rewards are reported once per iteration, with its first step.
        let mut stats = if fresh { data.stats.clone() } else { WorkerStats::default() };
        stats.loss = loss;
        Ok(GradientMsg { worker: 0, version: a.version, grad, samples: data.batch.len() as u64, stats })
    }
}

/// What a worker did before training ended.
#[derive(Debug, Clone, Default)]
pub struct WorkerSummary {
    pub steps: u64,
    pub rejoins: u64,
}

/// Joins, then works until the parameter server says done. A refusal
/// because this worker was dropped makes it join again.
pub fn run<B: AutodiffBackend>(
    link: &mut dyn PsLink,
    pool: Option<Arc<Pool>>,
    device: B::Device,
) -> Result<WorkerSummary, String> {
    let (mut id, cfg) = link.join().map_err(|e| e.to_string())?;
    let mut worker = Worker::<B>::new(cfg, pool, device)?;
    let mut summary = WorkerSummary::default();
    let mut after = None;
    loop {
        let a = match link.fetch(id, after) {
            Ok(FetchReply::Work(a)) => a,
            Ok(FetchReply::Done) => return Ok(summary),
            Ok(FetchReply::Wait) => continue,
            Err(PsError::UnknownWorker(_)) => {
                id = link.join().map_err(|e| e.to_string())?.0;
                summary.rejoins += 1;
                after = None;
                continue;
            }
            Err(e) => return Err(e.to_string()),
        };
        let mut msg = worker.work(&a)?;
        msg.worker = id;
        after = Some(a.version);
        match link.push(msg) {
            Ok(_) => summary.steps += 1,
            Err(PsError::UnknownWorker(_)) => {
                id = link.join().map_err(|e| e.to_string())?.0;
                summary.rejoins += 1;
                after = None;
            }
            Err(e) => return Err(e.to_string()),
        }
    }
}
