//! The BOA strategy: bidding, acceptance and an optional opponent model
//! composed behind the one [`Strategy`] trait.

use std::sync::Arc;

use super::acceptance::AcceptInput;
use super::bidding::BiddingInput;
use super::{Acceptance, Bidding, ModelKind, Observation, OpponentModel, PartyContext, Strategy, Turn};
use crate::core::inverse::{Bid, Inverse};
use crate::core::protocol::Action;
use crate::core::rng::SplitMix64;

/// Share of the utility range above the target that the opponent model may
/// choose from, and how many candidates it looks at.
const MODEL_WINDOW: f64 = 0.05;
const MODEL_CANDIDATES: usize = 2_000;
/// How far below the target a bid may fall when it is nearer (rounding slack).
const BELOW_TOLERANCE: f64 = 1e-6;

/// How a party with a discount factor decides. The two tools the field
/// measures against differ here, and a result is only comparable to one of
/// them when the convention is the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Convention {
    /// NegMAS's time-based negotiators (the default): the utility range is
    /// the discounted one at the party's first action; offers are judged,
    /// and bids chosen, by their utility discounted at the moment of the
    /// turn. So a discounted party asks for more and accepts later.
    #[default]
    Negmas,
    /// GENIUS's time-dependent agents: decisions on undiscounted utility;
    /// the discount counts only in the result.
    Genius,
}

#[derive(Debug, Clone)]
pub struct Boa {
    bidding: Bidding,
    acceptance: Acceptance,
    model: Option<ModelKind>,
    convention: Convention,
    state: Option<State>,
}

#[derive(Debug, Clone)]
struct State {
    ctx: PartyContext,
    index: Arc<Inverse>,
    rng: SplitMix64,
    low: f64,
    high: f64,
    /// One model per other party, by party position.
    models: Vec<Option<OpponentModel>>,
    first_received: Option<f64>,
    last_received: Option<f64>,
    best_received: f64,
    /// (time, utility) of offers received, where the acceptance looks back.
    received: Vec<(f64, f64)>,
    /// Utility of my previous bid at the turn I made it.
    previous_bid: Option<f64>,
    /// Whether utilities are discounted when deciding (the NegMAS
    /// convention and a discount below 1).
    discounting: bool,
    /// Whether the range [low, high] was set from the first action's
    /// discounted utilities yet (NegMAS convention).
    range_set: bool,
    /// The discount factor d^t of the turn being decided (1: none).
    factor: f64,
}

impl Boa {
    pub fn new(bidding: Bidding, acceptance: Acceptance, model: Option<ModelKind>) -> Self {
        Self { bidding, acceptance, model, convention: Convention::default(), state: None }
    }

    pub fn with_convention(mut self, convention: Convention) -> Self {
        self.convention = convention;
        self
    }
}

impl State {
    /// The bid for `target` and its utility; the best outcome if none qualifies.
    fn bid(&mut self, target: Option<f64>) -> Option<Bid> {
        let Some(target) = target else { return self.index.random(&mut self.rng) };
        if self.models.iter().flatten().any(OpponentModel::is_informed) {
            let hi = target + MODEL_WINDOW * (self.high - self.low);
            let mut best: Option<(Bid, f64)> = None;
            // The window in undiscounted utility (the index's scale).
            let (lo, hi) = (target / self.factor, hi / self.factor);
            for bid in self.index.in_range(lo, hi, MODEL_CANDIDATES) {
                let liked: f64 = self.models.iter().flatten().map(|m| m.estimate(&bid.0)).sum();
                if best.as_ref().is_none_or(|(_, b)| liked > *b) {
                    best = Some((bid, liked));
                }
            }
            if let Some((bid, _)) = best {
                return Some(bid);
            }
        }
        if target.is_nan() {
            return self.index.best();
        }
        // NegMAS' `worst_in` rule, kept so that agreements match the
        // peer's; on the turn's discounted utilities where the party
        // discounts when deciding.
        self.index.nearest(target, self.factor, BELOW_TOLERANCE)
    }
}

impl Strategy for Boa {
    fn init(&mut self, ctx: &PartyContext) {
        let mut rng = SplitMix64::new(ctx.seed);
        let index = ctx.outcome_index(&mut rng);
        let low = ctx.preferences.reservation_value.max(index.min_utility());
        let high = index.max_utility();
        let models = (0..ctx.n_parties)
            .map(|p| self.model.filter(|_| p != ctx.party).map(|kind| OpponentModel::new(kind, &ctx.domain)))
            .collect();
        self.state = Some(State {
            ctx: ctx.clone(),
            index,
            rng,
            low,
            high,
            models,
            first_received: None,
            last_received: None,
            best_received: f64::NEG_INFINITY,
            received: Vec::new(),
            previous_bid: None,
            discounting: self.convention == Convention::Negmas && ctx.preferences.discount < 1.0,
            range_set: false,
            factor: 1.0,
        });
    }

    fn observe(&mut self, obs: &Observation) {
        let Some(st) = self.state.as_mut() else { return };
        if let Action::Offer(offer) = &obs.action {
            let u = st.ctx.preferences.utility(&st.ctx.domain, offer);
            st.first_received.get_or_insert(u);
            st.last_received = Some(u);
            st.best_received = st.best_received.max(u);
            if self.acceptance.needs_history() {
                let seen = if st.discounting { st.ctx.preferences.discounted(u, obs.time) } else { u };
                st.received.push((obs.time, seen));
            }
            if let Some(Some(m)) = st.models.get_mut(obs.party) {
                m.update(offer, obs.time);
            }
        }
    }

    fn act(&mut self, turn: &Turn) -> Action {
        let Some(st) = self.state.as_mut() else { return Action::EndNegotiation };
        if st.discounting {
            st.factor = st.ctx.preferences.discount.powf(turn.time);
            if !st.range_set {
                // NegMAS takes its range from the discounted utility
                // function the first time it acts, and keeps it.
                let (f, rv) = (st.factor, st.ctx.preferences.reservation_value);
                st.low = rv.max(f * st.index.min_utility());
                st.high = f * st.index.max_utility();
                st.range_set = true;
            }
        }
        let target = self.bidding.target(&BiddingInput {
            time: turn.time,
            low: st.low,
            high: st.high,
            first_received: st.first_received,
            last_received: st.last_received,
        });
        let mut bid = None;
        if let Some(standing) = &turn.standing {
            let u = st.factor * st.ctx.preferences.utility(&st.ctx.domain, &standing.offer);
            if u >= st.ctx.preferences.reservation_value {
                if self.acceptance.needs_next_bid() {
                    bid = st.bid(target);
                }
                let f = st.factor;
                let mut input = AcceptInput {
                    offer_utility: u,
                    target: target.unwrap_or(st.high),
                    next_bid_utility: bid.as_ref().map_or(f64::INFINITY, |b| f * b.1),
                    time: turn.time,
                    best_received: st.best_received,
                    previous_bid_utility: st.previous_bid.unwrap_or(f64::INFINITY),
                    received: &st.received,
                    rng: &mut st.rng,
                };
                if self.acceptance.accepts(&mut input) {
                    return Action::Accept;
                }
            }
        }
        let bid = match bid {
            Some(b) => Some(b),
            None => st.bid(target),
        };
        match bid {
            Some((outcome, u)) => {
                st.previous_bid = Some(st.factor * u);
                Action::Offer(outcome)
            }
            // No outcome is worth more than the reservation value: walk away.
            None => Action::EndNegotiation,
        }
    }
}
