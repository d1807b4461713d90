//! The training configuration (TOML; `training/ppo.toml` documents every
//! field). Saved beside checkpoints so a run can be resumed and a model
//! traced back to how it was trained.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    pub seed: u64,
    /// PPO iterations: each collects `episodes` fresh episodes...
    pub iterations: u64,
    /// ...and takes this many synchronous gradient steps on them.
    pub epochs: u64,
    /// Episodes per iteration, split across workers (the global batch).
    pub episodes: usize,
    pub hidden: usize,
    pub learning_rate: f64,
    pub clip: f64,
    pub value_coef: f64,
    pub entropy_coef: f64,
    pub gamma: f64,
    pub lambda: f64,
    pub max_grad_norm: f64,
    /// Workers the parameter server waits for before the first step.
    pub workers: usize,
    /// Gradients computed on a version up to this many steps old still count.
    pub staleness: u64,
    /// A worker silent this long during a step is dropped from it.
    pub worker_timeout_s: f64,
    /// Checkpoint every this many iterations (0: only at the end).
    pub checkpoint_every: u64,
    pub pool: PoolConfig,
    pub eval: PoolConfig,
}

/// Where episodes come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PoolConfig {
    /// Scenario TOML files or Genius / GeniusWeb folders (relative to the
    /// config file). Missing paths are skipped with a warning: the ANAC data
    /// is not part of the repository.
    pub scenarios: Vec<PathBuf>,
    /// Folders whose every sub-folder is a Genius / GeniusWeb scenario.
    pub collections: Vec<PathBuf>,
    /// Skip scenarios with more outcomes than this.
    pub max_outcomes: u64,
    /// Share of episodes on a freshly generated W-like random domain.
    pub random_share: f64,
    /// Opponents, as on the command line (`"boulware"`, `"{ type = ... }"`).
    pub opponents: Vec<String>,
    /// Seed stream for random domains and pairings (differs between the
    /// training and the evaluation pool, so evaluation domains are unseen).
    pub stream: u64,
    /// Episodes per (candidate) in evaluation.
    pub episodes: usize,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            seed: 1,
            iterations: 30,
            epochs: 4,
            episodes: 64,
            hidden: 64,
            learning_rate: 3e-3,
            clip: 0.2,
            value_coef: 0.5,
            entropy_coef: 0.003,
            gamma: 1.0,
            lambda: 0.95,
            max_grad_norm: 1.0,
            workers: 1,
            staleness: 0,
            worker_timeout_s: 30.0,
            checkpoint_every: 5,
            pool: PoolConfig::default(),
            eval: PoolConfig { stream: 2, opponents: held_out_opponents(), ..PoolConfig::default() },
        }
    }
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            scenarios: Vec::new(),
            collections: Vec::new(),
            max_outcomes: 100_000,
            random_share: 1.0,
            opponents: ["boulware", "linear", "conceder", "hardliner", "tit-for-tat", "random"]
                .map(String::from)
                .to_vec(),
            stream: 1,
            episodes: 400,
        }
    }
}

fn held_out_opponents() -> Vec<String> {
    [
        "{ type = \"time-dependent\", e = 0.5 }",
        "{ type = \"time-dependent\", e = 2.0 }",
        "{ type = \"tit-for-tat\", kindness = 0.7 }",
        "{ type = \"conceder\", opponent_model = \"frequency\" }",
        "hardliner",
    ]
    .map(String::from)
    .to_vec()
}

/// Whole-number fields that must be at least 1 (their errors say "positive").
const POSITIVE: [&str; 5] = ["iterations", "epochs", "episodes", "hidden", "workers"];

/// The longest `worker_timeout_s` taken: a year is already "never", and
/// anything far larger no longer fits a `Duration`.
const MAX_WORKER_TIMEOUT_S: f64 = 365.0 * 24.0 * 3600.0;

impl TrainConfig {
    /// Reads a config; relative pool paths become relative to its folder.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut cfg: TrainConfig = toml::from_str(&text).map_err(|e| {
            let why = crate::core::toml_error::explain_line(&text, &e, &POSITIVE);
            format!("{}: {why}", path.display())
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        // Absolute, so the copy saved beside a model still points right.
        for pool in [&mut cfg.pool, &mut cfg.eval] {
            for p in pool.scenarios.iter_mut().chain(pool.collections.iter_mut()) {
                if p.is_relative() {
                    *p = std::path::absolute(base.join(&*p)).unwrap_or_else(|_| base.join(&*p));
                }
            }
        }
        cfg.validate()?;
        Ok(cfg)
    }

    /// Whether the config can run; every consumer (the parameter server,
    /// the workers) relies on it, so a bad file is an error, not a panic.
    pub fn validate(&self) -> Result<(), String> {
        let bad = |what: &str| Err(format!("training config: {what}"));
        if self.iterations == 0 || self.epochs == 0 || self.episodes == 0 {
            return bad("iterations, epochs and episodes must be positive");
        }
        if self.hidden == 0 || self.learning_rate.is_nan() || self.learning_rate <= 0.0 {
            return bad("hidden and learning_rate must be positive");
        }
        if self.workers == 0 {
            return bad("workers must be at least 1");
        }
        // Turned into a `Duration` (and multiplied) by the parameter server.
        if !(self.worker_timeout_s > 0.0 && self.worker_timeout_s <= MAX_WORKER_TIMEOUT_S) {
            return bad("worker_timeout_s must be positive and at most a year (31536000)");
        }
        for pool in [&self.pool, &self.eval] {
            if !(0.0..=1.0).contains(&pool.random_share) {
                return bad("random_share must lie in [0, 1]");
            }
            if pool.opponents.is_empty() {
                return bad("a pool needs at least one opponent");
            }
        }
        Ok(())
    }

    /// Total synchronous steps of the run.
    pub fn total_steps(&self) -> u64 {
        self.iterations * self.epochs
    }
}
