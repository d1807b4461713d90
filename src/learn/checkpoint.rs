//! Checkpoints: version, parameters, Adam's state and the config, as JSON
//! (floats round-trip exactly with serde_json's `float_roundtrip`), written
//! atomically. Taken at iteration boundaries only: a worker's rollouts for
//! an iteration depend on the parameters at its start, so resuming there
//! replays exactly the same episodes, which is what makes `--resume` give
//! identical results on the CPU.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::config::TrainConfig;
use super::ps::Adam;

pub const FILE: &str = "checkpoint.json";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub version: u64,
    pub params: Vec<f32>,
    pub adam: Adam,
    pub config: TrainConfig,
}

pub fn save(dir: &Path, ck: &Checkpoint) -> Result<PathBuf, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let path = dir.join(FILE);
    let tmp = dir.join(format!("{FILE}.tmp"));
    let text = serde_json::to_string(ck).map_err(|e| e.to_string())?;
    std::fs::write(&tmp, text).map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, &path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

pub fn load(dir: &Path) -> Result<Checkpoint, String> {
    let path = dir.join(FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}
