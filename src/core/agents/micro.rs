//! MiCRO (de Jonge, "An Analysis of the Linear Bilateral ANAC Domains Using
//! the MiCRO Benchmark Strategy", IJCAI 2022): concede one outcome at a time,
//! and only as often as the opponent has made new offers.
//!
//! The party walks down its outcomes from the best, by its own utility. With
//! m distinct bids made and n distinct offers received, it concedes (offers
//! the next outcome down) when n ≥ m and that outcome is rational; otherwise
//! it repeats one of its m bids at random. It accepts an offer worth at least
//! what it would offer now: the next outcome when it is ready to concede,
//! else its lowest bid so far. It ignores time altogether.
//!
//! Where this differs from the paper, deliberately:
//! - Outcomes of equal utility come in the inverse's order (enumeration
//!   order on small spaces), where the paper leaves the order open.
//! - With several opponents, n is the fewest distinct offers any of them
//!   made (the paper is bilateral; this keeps MiCRO reciprocal to each).

use std::collections::HashSet;

use super::seat::{Seat, outcome_key};
use crate::core::inverse::Bid;
use crate::core::protocol::Action;
use crate::core::strategy::{Observation, PartyContext, Strategy, Turn};

/// The utility window the next outcome down is first looked for in; it
/// doubles until an outcome turns up.
const FIRST_WINDOW: f64 = 1e-6;
/// Windows tried before settling for a tie (bisection reaches 2^-64 of the
/// first bracket).
const MAX_PROBES: usize = 96;

#[derive(Debug, Clone, Default)]
pub struct Micro {
    state: Option<State>,
}

#[derive(Debug, Clone)]
struct State {
    seat: Seat,
    /// Distinct bids made, in order (so utilities never increase).
    made: Vec<Bid>,
    made_keys: HashSet<Vec<u64>>,
    /// Distinct offers received, per party position.
    heard: Vec<HashSet<Vec<u64>>>,
    /// The next outcome down, once looked up (None inside: there is none).
    next: Option<Option<Bid>>,
}

impl State {
    /// The best outcome not bid yet that is no better than the last bid: the
    /// next one in the walk down.
    fn find_next(&self) -> Option<Bid> {
        let Some(last) = self.made.last().map(|b| b.1) else { return self.seat.index.best() };
        let index = &self.seat.index;
        // Everything better than the last bid was bid already (the walk
        // takes the best outcome left each time), so the next one is the
        // best outcome not bid yet in a window below it. A window whose
        // answer is cut short at `limit` may miss it: bisect between the
        // widest window known to hold nothing new and the narrowest known
        // to be cut short.
        let limit = self.made.len() + 64;
        let (mut empty, mut cut_short) = (0.0_f64, f64::INFINITY);
        let mut window = FIRST_WINDOW;
        let mut seen: Option<Bid> = None;
        for _ in 0..MAX_PROBES {
            let bids = index.in_range(last - window, last, limit);
            let full = bids.len() == limit;
            let best = bids.into_iter().filter(|(o, _)| !self.made_keys.contains(&outcome_key(o))).fold(
                None::<Bid>,
                |best, b| match best {
                    Some(x) if x.1 >= b.1 => Some(x),
                    _ => Some(b),
                },
            );
            if !full {
                if best.is_some() {
                    return best;
                }
                if last - window <= self.seat.min_utility {
                    return None;
                }
                empty = window;
            } else {
                cut_short = window;
                if best.as_ref().is_some_and(|b| seen.as_ref().is_none_or(|s| b.1 > s.1)) {
                    seen = best;
                }
            }
            window = if cut_short.is_finite() { (empty + cut_short) / 2.0 } else { window * 2.0 };
        }
        // Ties beyond `limit` at one utility: any of them is next.
        seen
    }
}

impl Strategy for Micro {
    fn init(&mut self, ctx: &PartyContext) {
        self.state = Some(State {
            seat: Seat::new(ctx, None),
            made: Vec::new(),
            made_keys: HashSet::new(),
            heard: vec![HashSet::new(); ctx.n_parties],
            next: None,
        });
    }

    fn observe(&mut self, obs: &Observation) {
        let Some(st) = self.state.as_mut() else { return };
        if let Action::Offer(offer) = &obs.action
            && let Some(heard) = st.heard.get_mut(obs.party)
        {
            heard.insert(outcome_key(offer));
        }
    }

    fn act(&mut self, turn: &Turn) -> Action {
        let Some(st) = self.state.as_mut() else { return Action::EndNegotiation };
        let me = st.seat.ctx.party;
        let n = st.heard.iter().enumerate().filter(|(p, _)| *p != me).map(|(_, h)| h.len()).min().unwrap_or(0);
        let ready = n >= st.made.len();
        let concession = if ready {
            let next = match st.next.clone() {
                Some(next) => next,
                None => {
                    let next = st.find_next();
                    st.next = Some(next.clone());
                    next
                }
            };
            next.filter(|(_, u)| *u >= st.seat.reservation)
        } else {
            None
        };
        let threshold = concession.as_ref().or(st.made.last()).map_or(f64::INFINITY, |b| b.1);
        if let Some(u) = st.seat.standing_utility(turn)
            && u >= threshold
            && u >= st.seat.reservation
        {
            return Action::Accept;
        }
        match concession {
            Some(bid) => {
                st.made_keys.insert(outcome_key(&bid.0));
                st.made.push(bid.clone());
                st.next = None;
                st.seat.offer(Some(bid))
            }
            None if st.made.is_empty() => Action::EndNegotiation,
            None => {
                let k = st.seat.rng.below(st.made.len() as u64) as usize;
                let bid = st.made[k].clone();
                st.seat.offer(Some(bid))
            }
        }
    }
}

/// The whole walk down from the best outcome, as MiCRO would concede it.
#[cfg(test)]
pub fn walk(ctx: &PartyContext) -> Vec<Bid> {
    let mut st = State {
        seat: Seat::new(ctx, None),
        made: Vec::new(),
        made_keys: HashSet::new(),
        heard: Vec::new(),
        next: None,
    };
    while let Some(bid) = st.find_next().filter(|b| b.1 >= st.seat.reservation) {
        st.made_keys.insert(outcome_key(&bid.0));
        st.made.push(bid);
    }
    st.made
}
