//! PPO: clipped surrogate objective, GAE(λ) advantages, value loss and an
//! entropy bonus, computed by burn on any autodiff backend.
//!
//! Exactness of data-parallel averaging: each worker returns the gradient of
//! the *mean* loss over its shard with its sample count; the parameter server
//! weights by count, which is the gradient of the mean over the whole batch.
//! Two consequences are deliberate: advantages are computed per episode
//! (whole episodes never straddle shards) and are not normalised per batch
//! (a per-shard normalisation would make N shards differ from one batch;
//! rewards are utilities in [0, 1], so the scale is tame anyway).

use burn::tensor::activation::log_softmax;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use super::config::TrainConfig;
use super::env::Episode;
use super::features::OBS_DIM;
use super::model::PolicySpec;
use super::params;

/// Transitions of some episodes, flattened for the loss.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    pub obs: Vec<f32>,
    pub actions: Vec<i64>,
    pub logp: Vec<f32>,
    pub advantages: Vec<f32>,
    pub returns: Vec<f32>,
}

/// Loss components of one gradient computation (means over its samples).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct LossStats {
    pub loss: f32,
    pub policy: f32,
    pub value: f32,
    pub entropy: f32,
}

impl Batch {
    pub fn len(&self) -> usize {
        self.actions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }

    /// Adds an episode: the reward (the learner's final utility) arrives
    /// after its last decision; GAE runs backwards from a terminal value 0.
    pub fn push(&mut self, ep: &Episode, gamma: f64, lambda: f64) {
        let n = ep.steps.len();
        let mut adv = vec![0.0f64; n];
        let mut next_value = 0.0;
        let mut acc = 0.0;
        for t in (0..n).rev() {
            let reward = if t == n - 1 { ep.reward } else { 0.0 };
            let v = ep.steps[t].value as f64;
            let delta = reward + gamma * next_value - v;
            acc = delta + gamma * lambda * acc;
            adv[t] = acc;
            next_value = v;
        }
        for (s, a) in ep.steps.iter().zip(adv) {
            self.obs.extend_from_slice(&s.obs);
            self.actions.push(s.action as i64);
            self.logp.push(s.logp);
            self.advantages.push(a as f32);
            self.returns.push((a + s.value as f64) as f32);
        }
    }
}

/// Gradient (traversal order) of the mean PPO loss over `batch`, for the
/// policy with parameters `flat`; refuses parameters that do not fit
/// `spec` (they come from the parameter server, possibly over the network).
pub fn gradient<B: AutodiffBackend>(
    spec: &PolicySpec,
    flat: &[f32],
    batch: &Batch,
    cfg: &TrainConfig,
    device: &B::Device,
) -> Result<(Vec<f32>, LossStats), String> {
    let net = params::load::<B, _>(spec.init::<B>(device), flat, device)?;
    let n = batch.len();
    if n == 0 {
        return Ok((vec![0.0; flat.len()], LossStats::default()));
    }
    let obs = Tensor::<B, 2>::from_data(TensorData::new(batch.obs.clone(), [n, OBS_DIM]), device);
    let actions = Tensor::<B, 2, Int>::from_data(TensorData::new(batch.actions.clone(), [n, 1]), device);
    let vec1 = |v: &Vec<f32>| Tensor::<B, 1>::from_data(TensorData::new(v.clone(), [n]), device);
    let (old_logp, adv, ret) = (vec1(&batch.logp), vec1(&batch.advantages), vec1(&batch.returns));

    let (logits, values) = net.forward(obs);
    let logp_all = log_softmax(logits, 1);
    let logp = logp_all.clone().gather(1, actions).flatten::<1>(0, 1);
    let ratio = (logp - old_logp).exp();
    let clip = cfg.clip as f32;
    let unclipped = ratio.clone() * adv.clone();
    let clipped = ratio.clamp(1.0 - clip, 1.0 + clip) * adv;
    let policy = unclipped.min_pair(clipped).mean().neg();
    let value = (values - ret).powi_scalar(2).mean();
    let entropy = (logp_all.clone().exp() * logp_all).sum_dim(1).mean().neg();
    let loss = policy.clone() + value.clone() * cfg.value_coef as f32 - entropy.clone() * cfg.entropy_coef as f32;

    let scalar = |t: Tensor<B, 1>| t.into_data().iter::<f32>().next().unwrap_or(f32::NAN);
    let stats = LossStats {
        loss: scalar(loss.clone()),
        policy: scalar(policy),
        value: scalar(value),
        entropy: scalar(entropy),
    };
    let grads = loss.backward();
    Ok((params::gradients::<B, _>(&net, &grads), stats))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::learn::party::Step;

    #[test]
    fn gae_puts_the_final_reward_on_the_last_decision() {
        let step = |value: f32| Step { obs: [0.0; OBS_DIM], action: 0, logp: 0.0, value };
        let ep = Episode { steps: vec![step(0.5), step(0.6)], reward: 0.9, agreement: true };
        let mut b = Batch::default();
        b.push(&ep, 1.0, 0.5);
        // δ1 = 0.9 − 0.6 = 0.3; δ0 = 0.6 − 0.5 = 0.1; A0 = δ0 + λ·δ1 = 0.25.
        assert!((b.advantages[1] - 0.3).abs() < 1e-6);
        assert!((b.advantages[0] - 0.25).abs() < 1e-6);
        assert!((b.returns[0] - 0.75).abs() < 1e-6 && (b.returns[1] - 0.9).abs() < 1e-6);
        assert_eq!(b.len(), 2);
    }
}
