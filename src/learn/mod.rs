//! Learned bidding policies: an RL environment on the core's protocol code,
//! a burn policy, PPO, and data-parallel training through a parameter
//! server, in one process or over gRPC. The trained model is then an
//! ordinary strategy: `strategy = { learned = "models/policy.mpk" }`.
//!
//! - [`features`] — domain-independent observations and the action space.
//! - [`model`] — the burn module (any backend), its plain-Rust twin for
//!   fast inference, saving and loading (burn record + spec).
//! - [`params`] — parameters and gradients as flat vectors (the wire form).
//! - [`party`] — the policy as a [`Strategy`](crate::core::strategy::Strategy).
//! - [`env`] — scenario and opponent pools; episodes on the direct engine.
//! - [`ppo`] — GAE and the clipped PPO loss → gradients.
//! - [`ps`] — the parameter server: state machine and actix actor.
//! - [`worker`] — rollouts and gradients for one shard per step.
//! - [`remote`] — the parameter server over gRPC, and the worker's client.
//! - [`train`] — `train`, `ps` and `worker` put together.
//! - [`checkpoint`] — resumable training state.
//! - [`eval`] — a policy against fixed baselines on held-out pools.
//! - [`config`] — the training configuration.
//! - [`device`] — cpu / cuda:N, checked before use.

pub mod checkpoint;
pub mod config;
pub mod device;
pub mod env;
pub mod eval;
pub mod features;
pub mod model;
pub mod params;
pub mod party;
pub mod ppo;
pub mod ps;
pub mod remote;
pub mod train;
pub mod worker;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use crate::core::strategy::{Strategy, register_learned_loader};

/// Loaded policies by path: a tournament builds a strategy per session,
/// and must not read the model file each time.
static CACHE: OnceLock<Mutex<HashMap<PathBuf, Arc<model::Mlp>>>> = OnceLock::new();

fn load_learned(path: &Path) -> Result<Box<dyn Strategy>, String> {
    let cache = CACHE.get_or_init(Default::default);
    let key = model::model_paths(path).0;
    let cached = cache.lock().map_err(|_| "model cache poisoned".to_string())?.get(&key).cloned();
    let mlp = match cached {
        Some(m) => m,
        None => {
            let (spec, flat) = model::load(path)?;
            let m = Arc::new(model::Mlp::new(&spec, &flat)?);
            cache.lock().map_err(|_| "model cache poisoned".to_string())?.insert(key, m.clone());
            m
        }
    };
    Ok(Box::new(party::LearnedParty::new(mlp, party::Mode::Greedy)))
}

/// Makes `{ learned = "PATH" }` strategies buildable; call once at start-up
/// (the CLI does).
pub fn register() {
    register_learned_loader(load_learned);
}
