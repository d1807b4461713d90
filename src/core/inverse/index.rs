//! The enumerating inverse: every outcome (or a seeded sample), bucketed by
//! utility.
//!
//! Time-dependent bidding asks "the worst outcome at or above u" about a
//! hundred times a negotiation. Sorting every outcome per negotiation would
//! cost O(n log n) (4 ms at 10^5 outcomes); instead outcomes are bucketed by
//! utility with a counting sort in O(n), and a query scans one bucket plus a
//! precomputed "next non-empty bucket" jump. Four outcomes a bucket, but at
//! most 1,024 buckets: on large spaces the scatter into many buckets misses
//! the cache on every write, which costs more than scanning longer buckets
//! (measured on W4: +28% negotiations/s).
//!
//! Spaces larger than [`ENUMERATION_LIMIT`] (or with real issues) are
//! represented by a seeded sample plus the party's best outcome: the index is
//! then approximate, and says so through [`OutcomeIndex::is_sampled`].

use std::sync::Arc;

use crate::core::domain::{Domain, ENUMERATION_LIMIT, Outcome};
use crate::core::limits::sample_size;
use crate::core::rng::SplitMix64;
use crate::core::utility::Preferences;

/// See the module comment: more buckets than this cost cache misses.
const MAX_BUCKETS: usize = 1 << 10;
/// Outcomes sampled where the space is larger than that; fewer where the
/// domain is wide (see [`super::limits::sample_size`]).
pub const SAMPLE_SIZE: usize = 50_000;

/// Undiscounted utilities `[lo / f, hi / f]`, widened by far more than the
/// rounding of a division and a product, so that every `u` with
/// `f · u` in `[lo, hi]` is inside.
pub(super) fn scaled_band(lo: f64, hi: f64, f: f64) -> (f64, f64) {
    const SLACK: f64 = 1e-12;
    let (a, b) = (lo / f, hi / f);
    (a - SLACK * a.abs().max(1.0), b + SLACK * b.abs().max(1.0))
}

/// The outcomes a party considers, by id.
#[derive(Debug, Clone)]
pub enum Candidates {
    /// Every outcome; the id is the enumeration index.
    All(Arc<Domain>),
    /// A seeded sample of a space too large to enumerate.
    Sampled(Arc<Vec<Outcome>>),
}

impl Candidates {
    pub fn for_domain(domain: &Arc<Domain>, prefs: &Preferences, rng: &mut SplitMix64) -> Self {
        if domain.cardinality().at_most(ENUMERATION_LIMIT) {
            return Candidates::All(domain.clone());
        }
        let size = sample_size(SAMPLE_SIZE + 1, domain, &[prefs]);
        let mut sample: Vec<Outcome> = Vec::with_capacity(size);
        sample.extend(prefs.utility.best_outcome_hint(domain));
        while sample.len() < size {
            sample.push(domain.random_outcome(rng));
        }
        Candidates::Sampled(Arc::new(sample))
    }

    pub fn outcome(&self, id: u32) -> Outcome {
        match self {
            Candidates::All(d) => d.outcome_at(id as u128),
            Candidates::Sampled(s) => s[id as usize].clone(),
        }
    }

    /// Utilities of every candidate, in id order.
    pub fn utilities(&self, domain: &Domain, prefs: &Preferences) -> Vec<f64> {
        match self {
            Candidates::All(d) => prefs.utility.utilities_of_all(d).unwrap_or_default(),
            Candidates::Sampled(s) => s.iter().map(|o| prefs.utility(domain, o)).collect(),
        }
    }
}

/// Outcomes with utility at or above the reservation value, bucketed by utility.
#[derive(Debug, Clone)]
pub struct OutcomeIndex {
    candidates: Candidates,
    /// Lowest and highest utility over *all* candidates (rational or not).
    min_utility: f64,
    max_utility: f64,
    lo: f64,
    scale: f64,
    /// Bucket b holds entries `start[b]..start[b + 1]`.
    start: Vec<u32>,
    ids: Vec<u32>,
    utils: Vec<f64>,
    /// First non-empty bucket at or after b (len = buckets + 1; u32::MAX if none).
    next_nonempty: Vec<u32>,
    /// Last non-empty bucket before b (len = buckets + 1; u32::MAX if none).
    prev_nonempty: Vec<u32>,
    best: Option<u32>,
}

impl OutcomeIndex {
    pub fn build(candidates: Candidates, domain: &Domain, prefs: &Preferences) -> Self {
        let all = candidates.utilities(domain, prefs);
        Self::from_utilities(candidates, &all, prefs.reservation_value)
    }

    pub fn from_utilities(candidates: Candidates, all: &[f64], reservation: f64) -> Self {
        Self::bucketed(candidates, all, reservation, MAX_BUCKETS)
    }

    /// [`Self::from_utilities`] with up to `max_buckets` buckets: a search
    /// structure asked many times per build (a split's half) wants short
    /// buckets more than a cheap scatter.
    pub fn bucketed(candidates: Candidates, all: &[f64], reservation: f64, max_buckets: usize) -> Self {
        // Plain comparisons instead of f64::min/max (no NaN can occur:
        // utilities are clamped sums of finite numbers).
        let (mut min_utility, mut max_utility) = (f64::INFINITY, f64::NEG_INFINITY);
        for &u in all {
            if u < min_utility {
                min_utility = u;
            }
            if u > max_utility {
                max_utility = u;
            }
        }
        Self::bucketed_within(candidates, all, reservation, max_buckets, (min_utility, max_utility))
    }

    /// [`Self::bucketed`] where the lowest and the highest of `all` are
    /// known (a tail's are the sums of its tables' extremes): a pass less,
    /// a tenth of building a W4 party's split.
    pub(super) fn bucketed_within(
        candidates: Candidates,
        all: &[f64],
        reservation: f64,
        max_buckets: usize,
        (min_utility, max_utility): (f64, f64),
    ) -> Self {
        // Two linear passes (bucket of each outcome, scatter): this runs
        // once per party per negotiation, so it is the hot path of the
        // direct engine. (Recomputing each bucket in the scatter instead of
        // storing it measured 5% slower on W4.)
        let lo = reservation.max(min_utility);
        let buckets = (all.len() / 4).clamp(1, max_buckets.max(1));
        let span = max_utility - lo;
        let scale = if span > 0.0 { buckets as f64 / span } else { 0.0 };
        let last = buckets - 1;

        let mut start = vec![0u32; buckets + 1];
        let bucket: Vec<u32> = all
            .iter()
            .map(|&u| {
                if u < reservation {
                    return u32::MAX;
                }
                let b = (((u - lo) * scale) as usize).min(last);
                start[b + 1] += 1;
                b as u32
            })
            .collect();
        for b in 0..buckets {
            start[b + 1] += start[b];
        }
        let n_rational = start[buckets] as usize;
        let mut fill = start.clone();
        let mut ids = vec![0u32; n_rational];
        let mut utils = vec![0.0f64; n_rational];
        for (id, (&u, &b)) in all.iter().zip(&bucket).enumerate() {
            if b == u32::MAX {
                continue;
            }
            let pos = fill[b as usize] as usize;
            fill[b as usize] += 1;
            ids[pos] = id as u32;
            utils[pos] = u;
        }
        // No per-bucket extremes: a query that needs a neighbouring
        // bucket's scans its few entries, which costs less than a pass over
        // every entry at each build (a fifth of building a split's half).
        let mut next_nonempty = vec![u32::MAX; buckets + 1];
        for b in (0..buckets).rev() {
            next_nonempty[b] = if start[b + 1] > start[b] { b as u32 } else { next_nonempty[b + 1] };
        }
        let mut prev_nonempty = vec![u32::MAX; buckets + 1];
        for b in 0..buckets {
            prev_nonempty[b + 1] = if start[b + 1] > start[b] { b as u32 } else { prev_nonempty[b] };
        }
        // The best outcome sits in the highest non-empty bucket.
        let best = (0..buckets).rev().find(|&b| start[b + 1] > start[b]).and_then(|b| {
            (start[b]..start[b + 1]).max_by(|&p, &q| utils[p as usize].total_cmp(&utils[q as usize]).then(q.cmp(&p)))
        });
        Self { candidates, min_utility, max_utility, lo, scale, start, ids, utils, next_nonempty, prev_nonempty, best }
    }

    /// Non-empty buckets from the one `from` falls in upward: (bucket, ids,
    /// utilities), entries of a bucket in id order. Buckets are ordered by
    /// utility (`bucket_of` is monotone), entries within one are not.
    pub(super) fn buckets_up(&self, from: f64) -> impl Iterator<Item = (usize, &[u32], &[f64])> + '_ {
        let mut b = if self.ids.is_empty() { u32::MAX } else { self.next_nonempty[self.bucket_of(from)] };
        std::iter::from_fn(move || {
            if b == u32::MAX {
                return None;
            }
            let k = b as usize;
            let (s, e) = (self.start[k] as usize, self.start[k + 1] as usize);
            b = self.next_nonempty[k + 1];
            Some((k, &self.ids[s..e], &self.utils[s..e]))
        })
    }

    /// Non-empty buckets from the one `from` falls in downward.
    pub(super) fn buckets_down(&self, from: f64) -> impl Iterator<Item = (usize, &[u32], &[f64])> + '_ {
        let mut b = if self.ids.is_empty() { u32::MAX } else { self.prev_nonempty[self.bucket_of(from) + 1] };
        std::iter::from_fn(move || {
            if b == u32::MAX {
                return None;
            }
            let k = b as usize;
            let (s, e) = (self.start[k] as usize, self.start[k + 1] as usize);
            b = self.prev_nonempty[k];
            Some((k, &self.ids[s..e], &self.utils[s..e]))
        })
    }

    /// The bucket a utility falls in (the first for anything below `lo`).
    #[inline]
    pub(super) fn bucket_of(&self, u: f64) -> usize {
        if u <= self.lo { 0 } else { (((u - self.lo) * self.scale) as usize).min(self.start.len() - 2) }
    }

    /// True where the space was too large to enumerate and a sample stands in.
    pub fn is_sampled(&self) -> bool {
        matches!(self.candidates, Candidates::Sampled(_))
    }

    /// Lowest utility over all candidates.
    pub fn min_utility(&self) -> f64 {
        self.min_utility
    }

    pub fn max_utility(&self) -> f64 {
        self.max_utility
    }

    /// Rational outcomes indexed.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// (id, utility) of the best rational outcome.
    pub fn best(&self) -> Option<(u32, f64)> {
        self.best.map(|p| (self.ids[p as usize], self.utils[p as usize]))
    }

    /// (id, utility) of the rational outcome with the lowest utility ≥ `target`.
    pub fn worst_at_or_above(&self, target: f64) -> Option<(u32, f64)> {
        if self.ids.is_empty() {
            return None;
        }
        let b = self.bucket_of(target);
        // Entries of a bucket sit in id order: the first of equal utilities
        // has the lowest id.
        let lowest = |s: usize, e: usize, floor: f64| {
            let mut found: Option<usize> = None;
            for p in s..e {
                let u = self.utils[p];
                if u >= floor && found.is_none_or(|q| u < self.utils[q]) {
                    found = Some(p);
                }
            }
            found
        };
        let pos = match lowest(self.start[b] as usize, self.start[b + 1] as usize, target) {
            Some(p) => p,
            None => {
                let nb = self.next_nonempty[b + 1];
                if nb == u32::MAX {
                    return None;
                }
                let nb = nb as usize;
                lowest(self.start[nb] as usize, self.start[nb + 1] as usize, f64::NEG_INFINITY)?
            }
        };
        Some((self.ids[pos], self.utils[pos]))
    }

    /// The highest indexed utility ≤ `target` (no tie rule: a search bound).
    pub fn highest_at_or_below(&self, target: f64) -> Option<f64> {
        if self.ids.is_empty() || target < self.lo {
            return None;
        }
        let b = self.bucket_of(target);
        let (s, e) = (self.start[b] as usize, self.start[b + 1] as usize);
        let here = self.utils[s..e].iter().copied().filter(|&u| u <= target).reduce(f64::max);
        here.or_else(|| {
            let pb = self.prev_nonempty[b];
            if pb == u32::MAX {
                return None;
            }
            let pb = pb as usize;
            self.utils[self.start[pb] as usize..self.start[pb + 1] as usize].iter().copied().reduce(f64::max)
        })
    }

    /// (id, utility) of the best rational outcome by `f · u`, the highest
    /// id among equals (distinct utilities can become equal once scaled).
    pub fn best_last(&self, f: f64) -> Option<(u32, f64)> {
        let (_, top) = self.best()?;
        self.scaled_equals(f * top, f).max_by_key(|&(id, _)| id)
    }

    /// Every rational (id, utility) whose `f · u` is exactly `v`.
    fn scaled_equals(&self, v: f64, f: f64) -> impl Iterator<Item = (u32, f64)> + '_ {
        self.in_scaled_range(v, v, f).filter(move |&(_, u)| f * u == v)
    }

    /// [`Self::worst_at_or_above`] on utilities scaled by `f` (a discount
    /// factor in (0, 1]): the rational outcome whose `f · u` is the lowest at
    /// or above `target`, decided on the very floats `f · u` (not on
    /// `u ≥ target / f`, which rounds differently). The lowest id among
    /// equal `f · u`, which distinct utilities can share.
    pub fn worst_scaled_at_or_above(&self, target: f64, f: f64) -> Option<(u32, f64)> {
        if f == 1.0 {
            return self.worst_at_or_above(target);
        }
        let (lo, hi) = scaled_band(target, target, f);
        // Below `lo`, f·u < target for certain; above `hi`, f·u ≥ target:
        // only the band between needs the exact test.
        let by_scaled = |a: &(u32, f64), b: &(u32, f64)| (f * a.1).total_cmp(&(f * b.1)).then(a.0.cmp(&b.0));
        let exact = self.in_range(lo, hi).filter(|&(_, u)| f * u >= target).min_by(by_scaled);
        exact.or_else(|| {
            let (_, u) = self.worst_at_or_above(hi)?;
            self.scaled_equals(f * u, f).min_by(by_scaled)
        })
    }

    /// Every rational (id, utility) whose `f · u` may lie in `[lo, hi]`
    /// (a little wider: callers test `f · u` themselves).
    pub fn in_scaled_range(&self, lo: f64, hi: f64, f: f64) -> impl Iterator<Item = (u32, f64)> + '_ {
        let (lo, hi) = if f == 1.0 { (lo, hi) } else { scaled_band(lo, hi, f) };
        self.in_range(lo, hi)
    }

    /// Every rational (id, utility) with utility in `[lo, hi]`, bucket order.
    pub fn in_range(&self, lo: f64, hi: f64) -> impl Iterator<Item = (u32, f64)> + '_ {
        let (first, last) = (self.bucket_of(lo), self.bucket_of(hi));
        let (s, e) = (self.start[first] as usize, self.start[last + 1] as usize);
        (s..e).filter(move |&p| (lo..=hi).contains(&self.utils[p])).map(move |p| (self.ids[p], self.utils[p]))
    }

    /// The `k`-th rational entry (any order); used for uniform sampling.
    pub fn entry(&self, k: usize) -> (u32, f64) {
        (self.ids[k], self.utils[k])
    }

    pub fn outcome(&self, id: u32) -> Outcome {
        self.candidates.outcome(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::domain::Issue;
    use proptest::prelude::*;

    fn index(utils: &[f64], rv: f64) -> OutcomeIndex {
        let d =
            Arc::new(Domain::new("t", vec![Issue::Integer { name: "x".into(), min: 0, max: utils.len() as i64 - 1 }]));
        OutcomeIndex::from_utilities(Candidates::All(d), utils, rv)
    }

    #[test]
    fn worst_at_or_above_skips_irrational_outcomes() {
        let idx = index(&[0.05, 0.9, 0.3, 0.31, 0.7], 0.1);
        assert_eq!(idx.len(), 4);
        assert_eq!(idx.worst_at_or_above(0.0), Some((2, 0.3)));
        assert_eq!(idx.worst_at_or_above(0.305), Some((3, 0.31)));
        assert_eq!(idx.worst_at_or_above(0.9), Some((1, 0.9)));
        assert_eq!(idx.worst_at_or_above(0.95), None);
        assert_eq!(idx.best(), Some((1, 0.9)));
        let mut r: Vec<_> = idx.in_range(0.3, 0.7).map(|(id, _)| id).collect();
        r.sort();
        assert_eq!(r, vec![2, 3, 4]);
    }

    proptest! {
        /// Scaled queries decide on the floats f·u themselves: the same
        /// answer as scanning every outcome, ties to the lowest id.
        #[test]
        fn scaled_queries_agree_with_a_scan(
            steps in proptest::collection::vec(0u32..40, 1..200), rv in 0.0f64..0.3, t in 0.0f64..1.0, f in 0.05f64..1.0,
        ) {
            // Coarse utilities, so that ties are common.
            let utils: Vec<f64> = steps.iter().map(|&k| k as f64 / 39.0).collect();
            let idx = index(&utils, rv);
            let rational = || utils.iter().enumerate().filter(|(_, u)| **u >= rv).map(|(k, u)| (k as u32, *u));
            let by_scaled = |a: &(u32, f64), b: &(u32, f64)| (f * a.1).total_cmp(&(f * b.1)).then(a.0.cmp(&b.0));
            let want = rational().filter(|&(_, u)| f * u >= t).min_by(by_scaled);
            prop_assert_eq!(idx.worst_scaled_at_or_above(t, f), want);
            let lo = t - 0.05;
            let mut got: Vec<u32> = idx.in_scaled_range(lo, t, f).filter(|&(_, u)| (lo..=t).contains(&(f * u))).map(|p| p.0).collect();
            got.sort();
            let want: Vec<u32> = rational().filter(|&(_, u)| (lo..=t).contains(&(f * u))).map(|p| p.0).collect();
            prop_assert_eq!(got, want);
            let top = rational().map(|p| f * p.1).fold(f64::NEG_INFINITY, f64::max);
            prop_assert_eq!(idx.best_last(f), rational().rfind(|p| f * p.1 == top));
        }

        #[test]
        fn agrees_with_a_sorted_scan(utils in proptest::collection::vec(0.0f64..1.0, 1..300), rv in 0.0f64..0.5, t in -0.1f64..1.1) {
            let idx = index(&utils, rv);
            let expect = utils.iter().enumerate().filter(|(_, u)| **u >= rv && **u >= t)
                .min_by(|a, b| a.1.total_cmp(b.1)).map(|(_, u)| *u);
            prop_assert_eq!(idx.worst_at_or_above(t).map(|(_, u)| u), expect);
            let lo = t; let hi = t + 0.2;
            let n = utils.iter().filter(|u| **u >= rv && **u >= lo && **u <= hi).count();
            prop_assert_eq!(idx.in_range(lo, hi).count(), n);
        }
    }
}
