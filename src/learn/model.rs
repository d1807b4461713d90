//! The policy: a small MLP with a categorical head over target levels and a
//! value head. [`PolicyNet`] is the burn module (generic over the backend,
//! used for gradients and saved as a burn record); [`Mlp`] is the same
//! function in plain Rust, used for every decision in rollouts and when the
//! policy bids as a party: one observation at a time through a tensor
//! library costs microseconds of dispatch per offer, the plain forward pass
//! a few hundred nanoseconds. A test checks they agree.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::record::{FullPrecisionSettings, NamedMpkFileRecorder};
use burn::tensor::Tensor;
use burn::tensor::backend::Backend;
use serde::{Deserialize, Serialize};

use super::features::{N_ACTIONS, OBS_DIM};
use super::params;
use crate::core::rng::SplitMix64;

/// The model's shape, saved beside its weights (`policy.json` next to
/// `policy.mpk`) so a model file is loadable on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySpec {
    pub inputs: usize,
    pub hidden: usize,
    pub actions: usize,
}

impl PolicySpec {
    pub fn new(hidden: usize) -> Self {
        Self { inputs: OBS_DIM, hidden, actions: N_ACTIONS }
    }

    /// (inputs, outputs) of each linear layer, in parameter order.
    fn layers(&self) -> [(usize, usize); 4] {
        [(self.inputs, self.hidden), (self.hidden, self.hidden), (self.hidden, self.actions), (self.hidden, 1)]
    }

    pub fn n_params(&self) -> usize {
        self.layers().iter().map(|(i, o)| i * o + o).sum()
    }

    pub fn init<B: Backend>(&self, device: &B::Device) -> PolicyNet<B> {
        let lin = |(i, o): (usize, usize)| LinearConfig::new(i, o).init(device);
        let [l1, l2, pi, v] = self.layers();
        PolicyNet { l1: lin(l1), l2: lin(l2), pi: lin(pi), v: lin(v) }
    }

    /// Initial parameters drawn from our seeded generator rather than the
    /// backend's, so they are the same on every backend and machine:
    /// U(−1/√in, 1/√in) (burn's default range), the policy head scaled by
    /// 0.01 so the first policy is close to uniform.
    pub fn initial_params(&self, seed: u64) -> Vec<f32> {
        let mut rng = SplitMix64::new(seed);
        let mut out = Vec::with_capacity(self.n_params());
        for (k, (i, o)) in self.layers().into_iter().enumerate() {
            let bound = 1.0 / (i as f64).sqrt() * if k == 2 { 0.01 } else { 1.0 };
            for _ in 0..i * o {
                out.push(((rng.next_f64() * 2.0 - 1.0) * bound) as f32);
            }
            out.extend(std::iter::repeat_n(0.0f32, o));
        }
        out
    }
}

#[derive(Module, Debug)]
pub struct PolicyNet<B: Backend> {
    l1: Linear<B>,
    l2: Linear<B>,
    pi: Linear<B>,
    v: Linear<B>,
}

impl<B: Backend> PolicyNet<B> {
    /// Logits `[batch, actions]` and values `[batch]`.
    pub fn forward(&self, obs: Tensor<B, 2>) -> (Tensor<B, 2>, Tensor<B, 1>) {
        let h = self.l1.forward(obs).tanh();
        let h = self.l2.forward(h).tanh();
        let logits = self.pi.forward(h.clone());
        let value = self.v.forward(h).flatten(0, 1);
        (logits, value)
    }
}

/// Paths of a saved model: the burn record and its spec.
pub fn model_paths(path: &Path) -> (PathBuf, PathBuf) {
    let base = if path.extension().is_some_and(|e| e == "mpk" || e == "json") {
        path.with_extension("")
    } else {
        path.to_path_buf()
    };
    (base.with_extension("mpk"), base.with_extension("json"))
}

/// Saves flat parameters as a burn record (`.mpk`) plus the spec (`.json`).
pub fn save(path: &Path, spec: &PolicySpec, flat: &[f32]) -> Result<PathBuf, String> {
    type B = burn::backend::NdArray;
    let (record, json) = model_paths(path);
    if let Some(dir) = record.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let device = Default::default();
    let net = params::load::<B, _>(spec.init::<B>(&device), flat, &device)?;
    let recorder = NamedMpkFileRecorder::<FullPrecisionSettings>::new();
    // burn warns on stderr when it replaces a file; replacing is intended.
    let _ = std::fs::remove_file(&record);
    net.save_file(record.with_extension(""), &recorder).map_err(|e| format!("{}: {e}", record.display()))?;
    let text = serde_json::to_string_pretty(spec).map_err(|e| e.to_string())?;
    std::fs::write(&json, text).map_err(|e| format!("{}: {e}", json.display()))?;
    Ok(record)
}

/// Loads a saved model as flat parameters and its spec.
pub fn load(path: &Path) -> Result<(PolicySpec, Vec<f32>), String> {
    type B = burn::backend::NdArray;
    let (record, json) = model_paths(path);
    // Named as the user wrote it: `models/nope.mpk` is missing, not the
    // `.json` we would read first; a companion file is named as such.
    let (record_there, json_there) = (record.is_file(), json.is_file());
    if !record_there || !json_there {
        let missing = match (record_there, json_there) {
            (false, false) => {
                format!("no such model ({} and {} are both missing)", file_name(&record), file_name(&json))
            }
            (false, true) => {
                format!("the record {} is missing (its spec {} is there)", record.display(), file_name(&json))
            }
            _ => format!(
                "its spec {} is missing (a model is a .mpk record with its .json spec beside it)",
                json.display()
            ),
        };
        return Err(format!("{}: {missing}", path.display()));
    }
    let text = std::fs::read_to_string(&json).map_err(|e| format!("{}: {e}", json.display()))?;
    let spec: PolicySpec = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", json.display()))?;
    if spec.inputs != OBS_DIM || spec.actions != N_ACTIONS {
        return Err(format!(
            "{}: model has {} inputs and {} actions; this build's policy has {OBS_DIM} and {N_ACTIONS}",
            json.display(),
            spec.inputs,
            spec.actions
        ));
    }
    let device = Default::default();
    let recorder = NamedMpkFileRecorder::<FullPrecisionSettings>::new();
    let fresh = spec.init::<B>(&device);
    let want = params::shapes::<B, _>(&fresh);
    let net = fresh
        .load_file(record.with_extension(""), &recorder, &device)
        .map_err(|e| format!("{}: {e}", record.display()))?;
    // burn takes the record's tensors as they are: a `.json` from another
    // model (or edited) would pass here and fail every later use.
    if params::shapes::<B, _>(&net) != want {
        return Err(format!(
            "{}: the record does not hold the model {} describes ({} hidden units); save them together",
            record.display(),
            json.display(),
            spec.hidden
        ));
    }
    Ok((spec, params::flatten::<B, _>(&net)))
}

fn file_name(p: &Path) -> String {
    p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| p.display().to_string())
}

/// The policy as plain Rust: weights copied out of the flat parameters.
#[derive(Debug, Clone)]
pub struct Mlp {
    /// (weights `[in][out]` row-major, bias, in, out) per layer.
    layers: Vec<(Vec<f32>, Vec<f32>, usize, usize)>,
}

impl Mlp {
    /// The policy `spec` with parameters `flat` (traversal order). They come
    /// from files and the network, so a vector of another length is an
    /// error.
    pub fn new(spec: &PolicySpec, flat: &[f32]) -> Result<Self, String> {
        if flat.len() != spec.n_params() {
            return Err(format!("{} parameter values for a model of {}", flat.len(), spec.n_params()));
        }
        let mut pos = 0;
        let layers = spec
            .layers()
            .into_iter()
            .map(|(i, o)| {
                let w = flat[pos..pos + i * o].to_vec();
                let b = flat[pos + i * o..pos + i * o + o].to_vec();
                pos += i * o + o;
                (w, b, i, o)
            })
            .collect();
        Ok(Self { layers })
    }

    fn linear(&self, k: usize, x: &[f32], out: &mut Vec<f32>) {
        let (w, b, i, o) = &self.layers[k];
        out.clear();
        out.extend_from_slice(b);
        for (r, &xi) in x.iter().enumerate().take(*i) {
            let row = &w[r * o..(r + 1) * o];
            for (acc, &wij) in out.iter_mut().zip(row) {
                *acc += xi * wij;
            }
        }
    }

    /// Logits over the actions and the value estimate.
    pub fn forward(&self, obs: &[f32]) -> (Vec<f32>, f32) {
        let (mut h1, mut h2, mut logits, mut v) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        self.linear(0, obs, &mut h1);
        h1.iter_mut().for_each(|x| *x = x.tanh());
        self.linear(1, &h1, &mut h2);
        h2.iter_mut().for_each(|x| *x = x.tanh());
        self.linear(2, &h2, &mut logits);
        self.linear(3, &h2, &mut v);
        (logits, v[0])
    }
}

/// Log-probabilities from logits (stable log-softmax).
pub fn log_softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f32 = logits.iter().map(|l| (l - max).exp()).sum();
    let log_sum = sum.ln() + max;
    logits.iter().map(|l| l - log_sum).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::NdArray;
    use burn::tensor::TensorData;

    #[test]
    fn plain_forward_matches_burn() {
        let spec = PolicySpec::new(16);
        let flat = spec.initial_params(7);
        let device = Default::default();
        let net = params::load::<NdArray, _>(spec.init::<NdArray>(&device), &flat, &device).unwrap();
        assert_eq!(params::flatten::<NdArray, _>(&net), flat, "round trip through the module");
        let mlp = Mlp::new(&spec, &flat).unwrap();
        let obs: Vec<f32> = (0..OBS_DIM).map(|k| (k as f32 * 0.37).sin()).collect();
        let x = Tensor::<NdArray, 2>::from_data(TensorData::new(obs.clone(), [1, OBS_DIM]), &device);
        let (logits, value) = net.forward(x);
        let logits: Vec<f32> = logits.into_data().iter::<f32>().collect();
        let value: Vec<f32> = value.into_data().iter::<f32>().collect();
        let (l2, v2) = mlp.forward(&obs);
        for (a, b) in logits.iter().zip(&l2) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
        assert!((value[0] - v2).abs() < 1e-5);
    }

    #[test]
    fn saved_models_load_back() {
        let dir = tempfile::tempdir().unwrap();
        let spec = PolicySpec::new(8);
        let flat = spec.initial_params(3);
        save(&dir.path().join("p.mpk"), &spec, &flat).unwrap();
        let (spec2, flat2) = load(&dir.path().join("p")).unwrap();
        assert_eq!(spec, spec2);
        assert_eq!(flat, flat2);
        let err = load(&dir.path().join("missing.mpk")).unwrap_err();
        assert!(err.contains("missing.json"), "{err}");
    }

    #[test]
    fn parameter_vectors_of_another_length_are_errors() {
        let spec = PolicySpec::new(4);
        let mut flat = spec.initial_params(1);
        flat.pop();
        assert!(Mlp::new(&spec, &flat).is_err());
        let device = Default::default();
        assert!(params::load::<NdArray, _>(spec.init::<NdArray>(&device), &flat, &device).is_err());
        flat.extend([0.0, 0.0]);
        assert!(Mlp::new(&spec, &flat).is_err());
        assert!(params::load::<NdArray, _>(spec.init::<NdArray>(&device), &flat, &device).is_err());
        let dir = tempfile::tempdir().unwrap();
        assert!(save(&dir.path().join("p"), &spec, &flat).is_err());
    }

    #[test]
    fn a_spec_that_disagrees_with_its_record_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.mpk");
        save(&path, &PolicySpec::new(8), &PolicySpec::new(8).initial_params(3)).unwrap();
        // The .json edited (or copied from another model) after the save.
        let other = serde_json::to_string(&PolicySpec::new(16)).unwrap();
        std::fs::write(dir.path().join("p.json"), other).unwrap();
        let err = load(&path).unwrap_err();
        assert!(err.contains("p.mpk"), "{err}");
    }
}
