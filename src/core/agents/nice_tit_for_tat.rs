//! Nice Tit-for-Tat (Baarslag, Hindriks and Jonker, "A Tit for Tat
//! Negotiation Strategy for Real-Time Bilateral Negotiations", in Complex
//! Automated Negotiations, 2013; ANAC 2011 finalist): reciprocate the
//! opponent's concessions towards the Nash point, and bid what the
//! opponent likes best at the level reached.
//!
//! - With an opponent model, it estimates the Nash point N (the bid
//!   maximising own utility × the model's estimate) and measures the
//!   opponent's concession as the share of the way from its first offer to
//!   N it has gone, in the agent's own utility.
//! - It concedes the same share of its own way from its best utility to
//!   N: target = max − (max − u(N))·share, never below u(N).
//! - Of the bids in a small band above the target it offers the one the
//!   model likes best.
//! - It accepts an offer at least as good as its next bid; near the end
//!   (t ≥ `endgame`, 0.98) also one as good as the best of the last window
//!   (AC_combi(t, MAX^W)), which stands in for the paper's estimate of the
//!   best the opponent will still offer.
//!
//! Where this differs from the paper, deliberately:
//! - The opponent model is the BOA library's Bayesian model (Hindriks and
//!   Tykhonov's scalable variant, as the paper's agent uses), with its
//!   fixed concession assumption.
//! - N is searched among at most [`NASH_CANDIDATES`] rational bids in the
//!   inverse's order (all of them on ANAC 2010–2012 domains), after each of
//!   the first eight offers and then after every eighth.
//! - The end game is AC_combi(MAX^W) rather than the paper's expected
//!   utility of waiting.

use super::seat::Seat;
use crate::core::inverse::Bid;
use crate::core::protocol::Action;
use crate::core::strategy::{Acceptance, ModelKind, Observation, PartyContext, Strategy, Turn};

/// Bids the Nash point is searched among.
const NASH_CANDIDATES: usize = 5_000;
/// The Nash point is searched again after each of the first offers, then
/// after every this many: the model moves less and less with each offer,
/// and a search costs every candidate's estimate.
const REFRESH_EVERY: usize = 8;
/// Share of the utility range above the target the bid is chosen in.
const BAND: f64 = 0.05;

#[derive(Debug, Clone)]
pub struct NiceTitForTat {
    acceptance: Acceptance,
    state: Option<State>,
}

#[derive(Debug, Clone)]
struct State {
    seat: Seat,
    /// Own utility of the estimated Nash point, and how many offers the
    /// model had seen when it was found.
    nash: Option<f64>,
    seen: usize,
    /// The bids the Nash point is searched among, looked up once.
    candidates: Option<Vec<Bid>>,
}

impl NiceTitForTat {
    pub fn new(endgame: f64) -> Self {
        Self { acceptance: Acceptance::CombiMaxW { t: endgame }, state: None }
    }
}

impl State {
    fn nash_utility(&mut self) -> f64 {
        let heard = self.seat.heard.len();
        if self.nash.is_none()
            || (heard != self.seen && (heard <= REFRESH_EVERY || heard.is_multiple_of(REFRESH_EVERY)))
        {
            self.seen = heard;
            let seat = &self.seat;
            let candidates = self
                .candidates
                .get_or_insert_with(|| seat.index.in_range(seat.min_utility, seat.max_utility, NASH_CANDIDATES));
            let nash = candidates
                .iter()
                .map(|(o, u)| (u * seat.opponent_estimate(o), *u))
                .fold(None::<(f64, f64)>, |best, x| match best {
                    Some(b) if b.0 >= x.0 => Some(b),
                    _ => Some(x),
                })
                .map_or(seat.min_utility, |(_, u)| u);
            self.nash = Some(nash);
        }
        self.nash.unwrap_or(self.seat.min_utility)
    }

    fn target(&mut self) -> f64 {
        let max = self.seat.max_utility;
        let (Some(first), Some(last)) = (self.seat.heard.first(), self.seat.heard.last()) else { return max };
        let (first, last) = (first.1, last.1);
        let nash = self.nash_utility().max(self.seat.min_utility);
        let share = if nash > first { ((last - first) / (nash - first)).clamp(0.0, 1.0) } else { 1.0 };
        (max - (max - nash) * share).max(nash)
    }

    fn next_bid(&mut self, target: f64) -> Option<Bid> {
        let hi = target + BAND * (self.seat.max_utility - self.seat.min_utility);
        let band = self.seat.band(target, hi);
        self.seat.liked_best(band)
    }
}

impl Strategy for NiceTitForTat {
    fn init(&mut self, ctx: &PartyContext) {
        self.state =
            Some(State { seat: Seat::new(ctx, Some(ModelKind::Bayesian)), nash: None, seen: 0, candidates: None });
    }

    fn observe(&mut self, obs: &Observation) {
        if let Some(st) = self.state.as_mut() {
            st.seat.observe(obs);
        }
    }

    fn act(&mut self, turn: &Turn) -> Action {
        let Some(st) = self.state.as_mut() else { return Action::EndNegotiation };
        let target = st.target();
        let bid = st.next_bid(target);
        if let Some(u) = st.seat.standing_utility(turn)
            && st.seat.accepts(&self.acceptance, u, turn, target, bid.as_ref())
        {
            return Action::Accept;
        }
        st.seat.offer(bid)
    }
}
