//! What every native agent keeps about its seat: its inverse utility, its
//! seeded randomness, the offers it has received and made, and (where the
//! agent models its opponents) one frequency model per other party.

use std::sync::Arc;

use crate::core::domain::{Outcome, Value};
use crate::core::inverse::{Bid, Inverse};
use crate::core::protocol::Action;
use crate::core::rng::SplitMix64;
use crate::core::strategy::{
    AcceptInput, Acceptance, ModelKind, Observation, OpponentModel, PartyContext, Strategy, Turn,
};

/// How many outcomes an agent looks at when it chooses among the bids of a
/// utility band (by its opponent model, or at random).
pub const BAND_CANDIDATES: usize = 2_000;
/// Uniform draws [`Seat::random_in`] tries before it lists the band.
const RANDOM_DRAWS: usize = 16;

/// An offer another party made.
#[derive(Debug, Clone)]
pub struct Received {
    /// Its utility to this party (undiscounted).
    pub utility: f64,
    pub offer: Outcome,
}

#[derive(Debug, Clone)]
pub struct Seat {
    pub ctx: PartyContext,
    pub index: Arc<Inverse>,
    pub rng: SplitMix64,
    pub reservation: f64,
    /// The best and the worst rational utility on offer.
    pub max_utility: f64,
    pub min_utility: f64,
    /// By party position; `None` for this party and where nothing is modelled.
    pub models: Vec<Option<OpponentModel>>,
    /// The best offer received so far (the latest among equals).
    pub best: Option<Received>,
    /// (time, utility) of the offers received, as acceptance conditions read them.
    pub heard: Vec<(f64, f64)>,
    /// Utilities of this party's own offers, in order.
    pub sent: Vec<f64>,
}

impl Seat {
    /// `model`: the opponent model, where the agent keeps one.
    pub fn new(ctx: &PartyContext, model: Option<ModelKind>) -> Self {
        let mut rng = SplitMix64::new(ctx.seed);
        let index = ctx.outcome_index(&mut rng);
        let reservation = ctx.preferences.reservation_value;
        let models = (0..ctx.n_parties)
            .map(|p| match model {
                Some(kind) if p != ctx.party => Some(OpponentModel::new(kind, &ctx.domain)),
                _ => None,
            })
            .collect();
        Self {
            max_utility: index.max_utility(),
            min_utility: reservation.max(index.min_utility()),
            index,
            rng,
            reservation,
            models,
            best: None,
            heard: Vec::new(),
            sent: Vec::new(),
            ctx: ctx.clone(),
        }
    }

    pub fn utility(&self, o: &Outcome) -> f64 {
        self.ctx.preferences.utility(&self.ctx.domain, o)
    }

    /// Records another party's offer (and feeds its model).
    pub fn observe(&mut self, obs: &Observation) {
        if let Action::Offer(offer) = &obs.action {
            let utility = self.utility(offer);
            if let Some(Some(m)) = self.models.get_mut(obs.party) {
                m.update(offer, obs.time);
            }
            if self.best.as_ref().is_none_or(|b| utility >= b.utility) {
                self.best = Some(Received { utility, offer: offer.clone() });
            }
            self.heard.push((obs.time, utility));
        }
    }

    /// The standing offer's utility to this party, where there is one.
    pub fn standing_utility(&self, turn: &Turn) -> Option<f64> {
        turn.standing.as_ref().map(|s| self.utility(&s.offer))
    }

    /// The best offer received so far.
    pub fn best_received(&self) -> Option<&Received> {
        self.best.as_ref()
    }

    /// Whether some opponent model has seen an offer.
    pub fn informed(&self) -> bool {
        self.models.iter().flatten().any(OpponentModel::is_informed)
    }

    /// The opponents' estimated utility of `o`: the mean over their models.
    pub fn opponent_estimate(&self, o: &Outcome) -> f64 {
        let (sum, n) = self.models.iter().flatten().fold((0.0, 0usize), |(s, n), m| (s + m.estimate(o), n + 1));
        if n == 0 { 0.5 } else { sum / n as f64 }
    }

    /// Rational bids with utility in `[lo, hi]`, at most [`BAND_CANDIDATES`];
    /// where the band holds none, the worst bid above it (or the best bid).
    pub fn band(&self, lo: f64, hi: f64) -> Vec<Bid> {
        let bids = self.index.in_range(lo, hi, BAND_CANDIDATES);
        if !bids.is_empty() {
            return bids;
        }
        self.index.worst_at_or_above(lo).or_else(|| self.index.best()).into_iter().collect()
    }

    /// A bid drawn uniformly among the rational bids with utility in
    /// `[lo, hi]`: by rejection from uniform draws where the band is wide
    /// (no list built), else from the band's list (or what [`Seat::band`]
    /// falls back to).
    pub fn random_in(&mut self, lo: f64, hi: f64) -> Option<Bid> {
        for _ in 0..RANDOM_DRAWS {
            match self.index.random(&mut self.rng) {
                Some(b) if (lo..=hi).contains(&b.1) => return Some(b),
                Some(_) => {}
                None => return None,
            }
        }
        let band = self.band(lo, hi);
        self.pick(band)
    }

    /// The candidate the opponents like best by their models (the first
    /// among equals), or one drawn at random before the models know anything.
    pub fn liked_best(&mut self, candidates: Vec<Bid>) -> Option<Bid> {
        if candidates.is_empty() {
            return None;
        }
        if !self.informed() {
            return self.pick(candidates);
        }
        let mut best: Option<(Bid, f64)> = None;
        for bid in candidates {
            let liked = self.opponent_estimate(&bid.0);
            if best.as_ref().is_none_or(|(_, b)| liked > *b) {
                best = Some((bid, liked));
            }
        }
        best.map(|(b, _)| b)
    }

    /// One of `candidates` drawn uniformly with the seat's seed.
    pub fn pick(&mut self, mut candidates: Vec<Bid>) -> Option<Bid> {
        if candidates.is_empty() {
            return None;
        }
        let k = self.rng.below(candidates.len() as u64) as usize;
        Some(candidates.swap_remove(k))
    }

    /// Whether `acceptance` takes the standing offer (worth `u`), given the
    /// agent's `target` now and the `next` bid it would make otherwise.
    /// Never an offer below the reservation value.
    pub fn accepts(&mut self, acceptance: &Acceptance, u: f64, turn: &Turn, target: f64, next: Option<&Bid>) -> bool {
        if u < self.reservation {
            return false;
        }
        let best_received = self.best.as_ref().map_or(f64::NEG_INFINITY, |b| b.utility);
        acceptance.accepts(&mut AcceptInput {
            offer_utility: u,
            target,
            next_bid_utility: next.map_or(f64::INFINITY, |b| b.1),
            time: turn.time,
            best_received,
            previous_bid_utility: self.sent.last().copied().unwrap_or(f64::INFINITY),
            received: &self.heard,
            rng: &mut self.rng,
        })
    }

    /// Offers `bid` (recording its utility), or walks away where there is
    /// no rational bid at all.
    pub fn offer(&mut self, bid: Option<Bid>) -> Action {
        match bid {
            Some((outcome, u)) => {
                self.sent.push(u);
                Action::Offer(outcome)
            }
            None => Action::EndNegotiation,
        }
    }
}

/// An outcome as a hashable key (values by their bits): agents that count
/// distinct offers (MiCRO) compare outcomes this way.
pub fn outcome_key(o: &Outcome) -> Vec<u64> {
    o.0.iter()
        .map(|v| match v {
            Value::Discrete(i) => u64::from(*i),
            Value::Integer(x) => *x as u64,
            Value::Real(x) => x.to_bits(),
        })
        .collect()
}

/// An agent whose whole state between turns is its [`Seat`] (and its
/// parameters): [`Seated`] makes it a [`Strategy`].
pub trait SeatAgent: Send {
    /// The opponent model, where the agent keeps one.
    fn model(&self) -> Option<ModelKind> {
        None
    }

    fn act(&mut self, seat: &mut Seat, turn: &Turn) -> Action;
}

/// A [`SeatAgent`] with the seat it is given at the start.
#[derive(Debug, Clone)]
pub struct Seated<A> {
    agent: A,
    seat: Option<Seat>,
}

impl<A: SeatAgent> Seated<A> {
    pub fn new(agent: A) -> Self {
        Self { agent, seat: None }
    }
}

impl<A: SeatAgent> Strategy for Seated<A> {
    fn init(&mut self, ctx: &PartyContext) {
        self.seat = Some(Seat::new(ctx, self.agent.model()));
    }

    fn observe(&mut self, obs: &Observation) {
        if let Some(seat) = self.seat.as_mut() {
            seat.observe(obs);
        }
    }

    fn act(&mut self, turn: &Turn) -> Action {
        match self.seat.as_mut() {
            Some(seat) => self.agent.act(seat, turn),
            None => Action::EndNegotiation,
        }
    }
}
