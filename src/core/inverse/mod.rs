//! Inverse utility: which outcomes give a party about a target utility.
//!
//! Two implementations behind one [`Inverse`]:
//!
//! * [`index::OutcomeIndex`] enumerates the space (or, beyond
//!   [`crate::core::domain::ENUMERATION_LIMIT`], a seeded sample, and is
//!   then approximate) and buckets every outcome by utility. Building costs
//!   a few passes over all outcomes; a query scans one bucket.
//! * [`split::SplitInverse`] (linear-additive preferences over finite
//!   issues) never enumerates: it meets in the middle over two halves of
//!   the issues and recomputes every candidate's utility left to right, so
//!   its answers are bit-equal to the enumerating ones at any size where its
//!   halves fit. Building costs the larger half; a query, one bucket probe
//!   per prefix.
//!
//! Which one a party gets is decided by cost ([`Inverse::for_party`]): the
//! expected work of one negotiation (about three queries a round) for each,
//! in the same units. Small spaces (W1, 10^3) enumerate; W4 (10^5) and
//! linear-additive spaces whose split fits [`SPLIT_BUDGET`] (about 10^10
//! outcomes of ten-valued issues) split; everything else enumerates or
//! samples as before. Where an index is shared by many
//! sessions (tournaments), building is paid once and enumerating wins
//! wherever it is possible.

pub mod index;
pub mod search;
pub mod split;

use std::sync::Arc;

pub use index::{Candidates, OutcomeIndex, SAMPLE_SIZE};
pub use search::SearchInverse;
pub use split::SplitInverse;

use super::domain::{Domain, ENUMERATION_LIMIT, Outcome};
use super::protocol::Deadline;
use super::rng::SplitMix64;
use super::utility::Preferences;

/// Queries a party asks in one negotiation, per round of its deadline (a
/// bid, the rule's nearest-below check, and the acceptance's next bid).
const QUERIES_PER_ROUND: u64 = 3;
/// Rounds assumed where the deadline is wall time only.
const ROUNDS_WITHOUT_LIMIT: u64 = 1_000;
/// Work units per outcome of building an [`OutcomeIndex`] (a utility, its
/// bucket, the scatter and the extremes), in [`SplitInverse::cost`]'s units.
const INDEX_UNITS_PER_OUTCOME: u64 = 4;

fn queries_for(deadline: &Deadline) -> u64 {
    QUERIES_PER_ROUND * deadline.rounds.map_or(ROUNDS_WITHOUT_LIMIT, u64::from)
}

/// Queries assumed for an inverse shared by a whole stage: a hundred
/// rounds' worth (what each of its negotiations asks; building is shared,
/// queries are not).
const SHARED_QUERIES: u64 = QUERIES_PER_ROUND * 100;
/// Work units one negotiation may spend on a split (about half a second here):
/// beyond it, as on 10^12 outcomes where both halves hold 10^6, a party
/// bids from the seeded sample instead, marked approximate. A search that
/// stays exact there (branch and bound over the issues) is not built yet.
const SPLIT_BUDGET: u64 = 150_000_000;

/// A [`SplitInverse`] decided on but not built.
struct SplitPlan {
    tables: Vec<Vec<f64>>,
    cut: usize,
    prefixes: u64,
    suffixes: u64,
}

impl SplitPlan {
    /// The split where it applies and costs less than enumerating (or
    /// `always`, where enumerating is not an option).
    fn decide(domain: &Domain, prefs: &Preferences, queries: u64, always: bool) -> Option<Self> {
        let tables = split::tables(domain, prefs)?;
        let cut = SplitInverse::choose_split(&tables, queries)?;
        let prefixes: u64 = tables[..cut].iter().map(|t| t.len() as u64).product();
        let suffixes: u64 = tables[cut..].iter().map(|t| t.len() as u64).product();
        let split_cost = SplitInverse::cost(prefixes, suffixes, queries);
        let index_cost = (prefixes as u128 * suffixes as u128).saturating_mul(INDEX_UNITS_PER_OUTCOME as u128);
        if split_cost > SPLIT_BUDGET
            || (domain.cardinality().at_most(ENUMERATION_LIMIT) && !always && index_cost <= split_cost as u128)
        {
            return None;
        }
        Some(Self { tables, cut, prefixes, suffixes })
    }

    /// Prefix sums (8 bytes), suffix utilities and ids (12), and the
    /// suffix's bucketing (also 12 per suffix at most).
    fn bytes(&self) -> u64 {
        let values: u64 = self.tables.iter().map(|t| t.len() as u64).sum();
        8 * self.prefixes + 24 * self.suffixes + 8 * values
    }

    fn build(self, domain: &Arc<Domain>, prefs: &Preferences) -> SplitInverse {
        SplitInverse::build(domain.clone(), prefs, self.tables, self.cut)
    }
}

/// A party's inverse utility; see the module comment. Answers are
/// (outcome, utility).
#[derive(Debug, Clone)]
pub enum Inverse {
    Index(OutcomeIndex),
    Split(SplitInverse),
    Search(SearchInverse),
}

/// An outcome and its (undiscounted) utility.
pub type Bid = (Outcome, f64);

/// The two candidates of NegMAS's bidding rule, outcomes named by `K`: the
/// lowest at or above the target, and the highest below it within the
/// tolerance.
pub type Around<K> = (Option<(K, f64)>, Option<(K, f64)>);

/// Draws made by [`rational_draw`] before it gives up on chance.
const DRAWS: usize = 64;

/// A uniformly drawn rational outcome by rejection from uniform outcomes
/// (`draw`): exactly uniform when it succeeds; after [`DRAWS`] misses (a
/// reservation value that few outcomes reach), `fallback` (the worst
/// rational outcome).
pub(crate) fn rational_draw<K>(
    reservation: f64,
    mut draw: impl FnMut() -> (K, f64),
    fallback: impl FnOnce() -> Option<(K, f64)>,
) -> Option<(K, f64)> {
    (0..DRAWS).map(|_| draw()).find(|&(_, u)| u >= reservation).or_else(fallback)
}

fn index_bid(i: &OutcomeIndex, (id, u): (u32, f64)) -> Bid {
    (i.outcome(id), u)
}

fn split_bid(s: &SplitInverse, (id, u): (u64, f64)) -> Bid {
    (s.outcome(id), u)
}

impl Inverse {
    /// The cheaper exact inverse for one negotiation of `deadline` over
    /// these preferences: enumerate, split, or (linear-additive spaces
    /// beyond both) search; the seeded sample where none applies.
    pub fn for_party(domain: &Arc<Domain>, prefs: &Preferences, deadline: &Deadline, rng: &mut SplitMix64) -> Self {
        if let Some(plan) = SplitPlan::decide(domain, prefs, queries_for(deadline), false) {
            return Inverse::Split(plan.build(domain, prefs));
        }
        if let Some(search) = Self::search_for(domain, prefs) {
            return search;
        }
        let candidates = Candidates::for_domain(domain, prefs, rng);
        Inverse::Index(OutcomeIndex::build(candidates, domain, prefs))
    }

    /// An inverse that many sessions over these preferences share: built
    /// once, so enumerating wins wherever the space can be enumerated;
    /// beyond that, the split or the search where they apply. `None`: each
    /// session samples its own (the sample depends on the session's seed).
    pub fn shared(domain: &Arc<Domain>, prefs: &Preferences) -> Option<Self> {
        if domain.cardinality().at_most(ENUMERATION_LIMIT) {
            return Some(Inverse::Index(OutcomeIndex::build(Candidates::All(domain.clone()), domain, prefs)));
        }
        SplitPlan::decide(domain, prefs, SHARED_QUERIES, true)
            .map(|plan| Inverse::Split(plan.build(domain, prefs)))
            .or_else(|| Self::search_for(domain, prefs))
    }

    /// The branch-and-bound search, for linear-additive spaces beyond
    /// enumerating.
    fn search_for(domain: &Arc<Domain>, prefs: &Preferences) -> Option<Self> {
        if domain.cardinality().at_most(ENUMERATION_LIMIT) {
            return None;
        }
        split::tables(domain, prefs).map(|t| Inverse::Search(SearchInverse::build(domain.clone(), prefs, t)))
    }

    /// Memory of the [`SplitInverse`] a party of this negotiation would get;
    /// `None` where it would enumerate, search or sample instead (limits
    /// account for those).
    pub fn split_bytes(domain: &Domain, prefs: &Preferences, deadline: &Deadline) -> Option<u64> {
        SplitPlan::decide(domain, prefs, queries_for(deadline), false).map(|p| p.bytes())
    }

    /// Whether every answer so far is the one enumerating the whole space
    /// gives (a sample never is; a search is until a query stops short).
    pub fn is_exact(&self) -> bool {
        match self {
            Inverse::Index(i) => !i.is_sampled(),
            Inverse::Split(_) => true,
            Inverse::Search(s) => !s.was_cut_short(),
        }
    }

    /// How far an answer so far may be from the exact one, in utility: 0
    /// where every answer was exact, the search's [`SearchInverse::gap`]
    /// where it stopped short; `None` for a sample (no bound is known).
    pub fn gap(&self) -> Option<f64> {
        match self {
            Inverse::Index(i) => (!i.is_sampled()).then_some(0.0),
            Inverse::Split(_) => Some(0.0),
            Inverse::Search(s) => Some(s.gap()),
        }
    }

    /// Lowest utility over all outcomes (rational or not).
    pub fn min_utility(&self) -> f64 {
        match self {
            Inverse::Index(i) => i.min_utility(),
            Inverse::Split(s) => s.min_utility(),
            Inverse::Search(s) => s.min_utility(),
        }
    }

    pub fn max_utility(&self) -> f64 {
        match self {
            Inverse::Index(i) => i.max_utility(),
            Inverse::Split(s) => s.max_utility(),
            Inverse::Search(s) => s.max_utility(),
        }
    }

    /// No outcome is worth the reservation value.
    pub fn is_empty(&self) -> bool {
        match self {
            Inverse::Index(i) => i.is_empty(),
            Inverse::Split(s) => s.is_empty(),
            Inverse::Search(s) => s.is_empty(),
        }
    }

    /// The best rational outcome, lowest enumeration index among equals.
    pub fn best(&self) -> Option<Bid> {
        match self {
            Inverse::Index(i) => i.best().map(|b| index_bid(i, b)),
            Inverse::Split(s) => s.best_by(1.0, false).map(|b| split_bid(s, b)),
            Inverse::Search(s) => s.best_by(1.0, false).map(|(d, u)| (s.outcome(&d), u)),
        }
    }

    /// The rational outcome with the lowest utility ≥ `target`, lowest
    /// enumeration index among equals.
    pub fn worst_at_or_above(&self, target: f64) -> Option<Bid> {
        match self {
            Inverse::Index(i) => i.worst_at_or_above(target).map(|b| index_bid(i, b)),
            Inverse::Split(s) => s.around(target, 1.0, None).0.map(|b| split_bid(s, b)),
            Inverse::Search(s) => s.around(target, 1.0, None).0.map(|(d, u)| (s.outcome(&d), u)),
        }
    }

    /// NegMAS's bidding rule on utilities scaled by `f` (the turn's
    /// discount factor; 1: none): the rational outcome whose `f · u` is the
    /// lowest at or above `target`, except that one at most `tolerance`
    /// below it wins when strictly nearer; with nothing at or above the
    /// target, the best outcome (by `f · u`, the highest index among
    /// equals, as NegMAS's inverter returns the last of its sorted
    /// outcomes). Otherwise equal `f · u` go to the lowest enumeration
    /// index: NegMAS's order where its sort is stable (README, "Exactly
    /// NegMAS").
    pub fn nearest(&self, target: f64, f: f64, tolerance: f64) -> Option<Bid> {
        let pick = |up: (f64, Bid), below: Option<(f64, Bid)>| match below {
            Some((bu, b)) if target - f * bu < f * up.0 - target => Some(b),
            _ => Some(up.1),
        };
        match self {
            Inverse::Index(i) => {
                let Some(up) = i.worst_scaled_at_or_above(target, f) else {
                    return i.best_last(f).map(|b| index_bid(i, b));
                };
                let below = i
                    .in_scaled_range(target - tolerance, target, f)
                    .filter(|&(_, v)| f * v < target)
                    .max_by(|a, b| (f * a.1).total_cmp(&(f * b.1)).then(b.0.cmp(&a.0)));
                pick((up.1, index_bid(i, up)), below.map(|b| (b.1, index_bid(i, b))))
            }
            Inverse::Split(s) => match s.around(target, f, Some(tolerance)) {
                (Some(up), below) => pick((up.1, split_bid(s, up)), below.map(|b| (b.1, split_bid(s, b)))),
                (None, _) => s.best_by(f, true).map(|b| split_bid(s, b)),
            },
            Inverse::Search(s) => match s.around(target, f, Some(tolerance)) {
                (Some((d, u)), below) => pick((u, (s.outcome(&d), u)), below.map(|(d, u)| (u, (s.outcome(&d), u)))),
                (None, _) => s.best_by(f, true).map(|(d, u)| (s.outcome(&d), u)),
            },
        }
    }

    /// Up to `limit` rational outcomes with utility in `[lo, hi]`, in the
    /// inverse's own order (bucket order; prefixes in enumeration order;
    /// ascending values).
    pub fn in_range(&self, lo: f64, hi: f64, limit: usize) -> Vec<Bid> {
        match self {
            Inverse::Index(i) => i.in_range(lo, hi).take(limit).map(|b| index_bid(i, b)).collect(),
            Inverse::Split(s) => s.in_range(lo, hi, limit).into_iter().map(|b| split_bid(s, b)).collect(),
            Inverse::Search(s) => s.in_range(lo, hi, limit).into_iter().map(|(d, u)| (s.outcome(&d), u)).collect(),
        }
    }

    /// A rational outcome drawn uniformly with `rng`.
    pub fn random(&self, rng: &mut SplitMix64) -> Option<Bid> {
        match self {
            Inverse::Index(i) if i.is_empty() => None,
            Inverse::Index(i) => Some(index_bid(i, i.entry(rng.below(i.len() as u64) as usize))),
            Inverse::Split(s) => s.random(rng).map(|b| split_bid(s, b)),
            Inverse::Search(s) => s.random(rng).map(|(d, u)| (s.outcome(&d), u)),
        }
    }
}
