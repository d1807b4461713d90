//! A trained policy as a [`Strategy`]: the policy picks the concession
//! curve that sets this turn's target level, an
//! offer at or above the target is accepted, and the bid is the outcome near
//! the target that the frequency opponent model expects the other side to
//! like best. The same type plays in rollouts (sampling, recording each
//! decision) and as a deployed party (greedy).

use std::sync::{Arc, Mutex};

use super::features::{History, OBS_DIM, level};
use super::model::{Mlp, log_softmax};
use crate::core::domain::Outcome;
use crate::core::inverse::Inverse;
use crate::core::protocol::Action;
use crate::core::rng::SplitMix64;
use crate::core::strategy::{FrequencyModel, Observation, PartyContext, Strategy, Turn};

/// Share of the range above the target the opponent model picks from, and
/// how many candidates it scores (bounded cost per offer on huge spaces).
const MODEL_WINDOW: f64 = 0.05;
const MODEL_CANDIDATES: usize = 256;

/// One decision, as PPO needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub obs: [f32; OBS_DIM],
    pub action: u8,
    pub logp: f32,
    pub value: f32,
}

/// How actions are chosen.
#[derive(Debug, Clone)]
pub enum Mode {
    /// The most likely level (deployment, evaluation).
    Greedy,
    /// Sampled from the policy; every decision is appended to the log.
    Sample(Arc<Mutex<Vec<Step>>>),
}

pub struct LearnedParty {
    mlp: Arc<Mlp>,
    mode: Mode,
    state: Option<State>,
}

struct State {
    ctx: PartyContext,
    index: Arc<Inverse>,
    rng: SplitMix64,
    history: History,
    model: FrequencyModel,
}

impl LearnedParty {
    pub fn new(mlp: Arc<Mlp>, mode: Mode) -> Self {
        Self { mlp, mode, state: None }
    }
}

impl State {
    fn bid(&self, target: f64) -> Option<Outcome> {
        if self.model.is_informed() {
            let hi = target + MODEL_WINDOW * (self.index.max_utility() - target).max(0.0).max(0.02);
            let best = self
                .index
                .in_range(target, hi, MODEL_CANDIDATES)
                .into_iter()
                .map(|(o, _)| {
                    let liked = self.model.estimate(&o);
                    (o, liked)
                })
                .max_by(|a, b| a.1.total_cmp(&b.1));
            if let Some((o, _)) = best {
                return Some(o);
            }
        }
        self.index.worst_at_or_above(target).or_else(|| self.index.best()).map(|(o, _)| o)
    }
}

/// Index of the largest logit (first on ties).
fn argmax(x: &[f32]) -> usize {
    let mut best = 0;
    for (k, v) in x.iter().enumerate() {
        if *v > x[best] {
            best = k;
        }
    }
    best
}

impl Strategy for LearnedParty {
    fn init(&mut self, ctx: &PartyContext) {
        let mut rng = SplitMix64::new(ctx.seed);
        let index = ctx.outcome_index(&mut rng);
        let low = ctx.preferences.reservation_value.max(index.min_utility());
        let history = History::new(low, index.max_utility(), ctx.deadline.rounds);
        let model = FrequencyModel::new(&ctx.domain);
        self.state = Some(State { ctx: ctx.clone(), index, rng, history, model });
    }

    fn observe(&mut self, obs: &Observation) {
        let Some(st) = self.state.as_mut() else { return };
        if let Action::Offer(offer) = &obs.action {
            st.history.received(st.ctx.preferences.utility(&st.ctx.domain, offer));
            st.model.update(offer);
        }
    }

    fn act(&mut self, turn: &Turn) -> Action {
        let Some(st) = self.state.as_mut() else { return Action::EndNegotiation };
        let obs = st.history.observe(turn.time, turn.round);
        let (logits, value) = self.mlp.forward(&obs);
        let action = match &self.mode {
            Mode::Greedy => argmax(&logits),
            Mode::Sample(log) => {
                let logp = log_softmax(&logits);
                let r = st.rng.next_f64() as f32;
                let mut acc = 0.0;
                let mut pick = logp.len() - 1;
                for (k, lp) in logp.iter().enumerate() {
                    acc += lp.exp();
                    if r < acc {
                        pick = k;
                        break;
                    }
                }
                log.lock().expect("step log").push(Step { obs, action: pick as u8, logp: logp[pick], value });
                pick
            }
        };
        let share = level(action, turn.time);
        st.history.chose(share);
        let target = st.history.target(share);
        if let Some(standing) = &turn.standing {
            let u = st.ctx.preferences.utility(&st.ctx.domain, &standing.offer);
            if u >= st.ctx.preferences.reservation_value && u >= target - 1e-9 {
                return Action::Accept;
            }
        }
        match st.bid(target) {
            Some(outcome) => Action::Offer(outcome),
            None => Action::EndNegotiation,
        }
    }
}
