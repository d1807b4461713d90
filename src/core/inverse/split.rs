//! Exact inverse utility for linear-additive preferences, without
//! enumerating the space: meet in the middle.
//!
//! A utility is `0.0 + t₁(x₁) + … + t_k(x_k)`, added left to right in f64
//! (`t_i(v) = w_i · f_i(v)`), exactly as [`UtilityFunction::eval`] does. The
//! issues are cut in two: every *prefix* `x₁ … x_m` with its left-to-right
//! float sum `a` (the exact start of each utility that has it), and every
//! *suffix* `x_{m+1} … x_k` with its sum `s`, bucketed by `s` in an
//! [`OutcomeIndex`]. `a + s` is within [`SplitInverse::slack`] of the
//! outcome's utility (float addition does not associate, so it is not the
//! utility itself), which makes it a search key, never an answer: each query
//! looks, for every prefix, at the suffixes whose `a + s` falls in a window a
//! little wider than needed, and decides on the utilities recomputed left to
//! right from `a`. Answers are therefore bit-equal to enumerating the space
//! and scanning it, with the same tie rules (lowest enumeration index, or
//! highest where the caller asks for it); a property test checks that against
//! [`OutcomeIndex`] on random domains.
//!
//! Cost: building is `|suffixes|` (three linear passes) plus `|prefixes|`; a
//! query is a bucket lookup per prefix plus the outcomes in its window (a
//! handful: the window is `2 · slack` wide beyond the answer). The split is
//! chosen to minimise build plus the expected queries of one negotiation
//! ([`SplitInverse::choose_split`]); see the module comment of
//! [`super`] for when this beats enumerating.

use std::sync::Arc;

use super::index::{Candidates, OutcomeIndex, scaled_band};
use super::{Around, rational_draw};
use crate::core::domain::{Domain, Issue, Outcome};
use crate::core::limits::VALUE_CELLS;
use crate::core::rng::SplitMix64;
use crate::core::utility::{Preferences, UtilityFunction};

/// Largest half kept in memory (either side): 2^22 entries, as
/// [`crate::core::domain::ENUMERATION_LIMIT`].
pub const HALF_LIMIT: u64 = 1 << 22;

/// Buckets of the suffix half at most (four suffixes a bucket below that):
/// every query probes it once per prefix, so short buckets pay for the
/// scatter's cache misses (measured on 7×10: 3.9× faster per negotiation than 1,024).
const HALF_BUCKETS: usize = 1 << 16;

/// Outcomes a window may hold before a query gives up exactness and
/// answers from what it has seen (only a space with millions of outcomes
/// within rounding of each other gets here).
const WINDOW_LIMIT: usize = 1 << 20;

#[derive(Debug, Clone)]
pub struct SplitInverse {
    domain: Arc<Domain>,
    reservation: f64,
    /// Left-to-right float sum of every prefix (issues before the cut), by
    /// prefix enumeration index.
    prefix: Vec<f64>,
    /// The suffix half: the issues from the cut on.
    suffix: Tail,
    /// Bound on |fl(a + s) − u| over all outcomes (rounding of both sums).
    slack: f64,
    min_utility: f64,
    max_utility: f64,
}

/// Per-issue utility tables `w_i · f_i(v)`; `None` unless the preferences
/// are linear-additive over finite issues.
pub fn tables(domain: &Domain, prefs: &Preferences) -> Option<Vec<Vec<f64>>> {
    let UtilityFunction::LinearAdditive { weights, values } = &prefs.utility else { return None };
    if weights.len() != domain.issues.len() || values.len() != domain.issues.len() {
        return None;
    }
    // Integer issues are not bounded by the server's value limits: keep the
    // tables under the one-sample budget (4 Mi values), as sampling would.
    let cells = domain.issues.iter().try_fold(0u128, |n, i| Some(n.saturating_add(i.cardinality()?)));
    if cells.is_none_or(|n| n > VALUE_CELLS as u128) {
        return None;
    }
    domain
        .issues
        .iter()
        .zip(weights)
        .zip(values)
        .map(|((issue, w), f)| {
            if matches!(issue, Issue::Real { .. }) {
                return None;
            }
            let c = u64::try_from(issue.cardinality()?).ok()?;
            if c == 0 || c > HALF_LIMIT {
                return None;
            }
            Some((0..c).map(|k| w * f.eval(issue, &issue.value_at(k))).collect())
        })
        .collect()
}

/// Left-to-right float sums (from `start`) of every combination of the
/// tables, in enumeration order (last table fastest): the order and the
/// operations of [`UtilityFunction::utilities_of_all`].
fn sums(tables: &[Vec<f64>], start: f64) -> Vec<f64> {
    let n: usize = tables.iter().map(Vec::len).product();
    let mut out = Vec::with_capacity(n);
    out.push(start);
    let mut next = Vec::with_capacity(n);
    for t in tables {
        next.clear();
        for &u in &out {
            next.extend(t.iter().map(|v| u + v));
        }
        std::mem::swap(&mut out, &mut next);
    }
    out
}

/// How far a left-to-right sum of one value per table can be from the same
/// values summed in another grouping (a split's `a + s`, a search's bound
/// `partial + Σ extremes`): each of the 2k roundings errs by at most ε/2 of
/// a partial sum, and no partial sum exceeds the sum of the largest
/// magnitudes; twice that, for margin.
pub fn rounding_slack(tables: &[Vec<f64>]) -> f64 {
    let magnitude: f64 = tables.iter().map(|t| t.iter().fold(0.0f64, |m, v| m.max(v.abs()))).sum();
    (2 * tables.len() + 2) as f64 * f64::EPSILON * magnitude.max(f64::MIN_POSITIVE)
}

/// The lowest and the highest utility over the whole space: the per-issue
/// extremes added left to right (rounding is monotone, so the sum of the
/// extremes is the extreme of the sums).
pub fn extremes(tables: &[Vec<f64>]) -> (f64, f64) {
    tables.iter().fold((0.0, 0.0), |(lo, hi), t| {
        (lo + t.iter().copied().fold(f64::INFINITY, f64::min), hi + t.iter().copied().fold(f64::NEG_INFINITY, f64::max))
    })
}

impl SplitInverse {
    /// The cut that minimises building plus `queries` lookups (each one
    /// bucket probe per prefix); `None` where no cut keeps both halves
    /// within [`HALF_LIMIT`] (or there are fewer than two issues).
    pub fn choose_split(tables: &[Vec<f64>], queries: u64) -> Option<usize> {
        let sizes: Vec<u64> = tables.iter().map(|t| t.len() as u64).collect();
        (1..sizes.len())
            .filter_map(|m| {
                let a = sizes[..m].iter().try_fold(1u64, |p, &c| p.checked_mul(c))?;
                let b = sizes[m..].iter().try_fold(1u64, |p, &c| p.checked_mul(c))?;
                (a <= HALF_LIMIT && b <= HALF_LIMIT).then(|| (m, Self::cost(a, b, queries)))
            })
            .min_by_key(|&(_, c)| c)
            .map(|(m, _)| m)
    }

    /// Work units (about 3 ns each here) of one negotiation with halves of
    /// `a` prefixes and `b` suffixes: a suffix costs three (its share of
    /// building the bucketed half), a prefix one, and a query three bucket
    /// probes per prefix at twelve units each (measured: 9 ns a suffix on
    /// W4's 10^4-suffix half, about 40 ns a probe on 10^10's 10^6 one).
    pub fn cost(a: u64, b: u64, queries: u64) -> u64 {
        3u64.saturating_mul(b).saturating_add(a).saturating_add(queries.saturating_mul(a).saturating_mul(36))
    }

    pub fn build(domain: Arc<Domain>, prefs: &Preferences, tables: Vec<Vec<f64>>, split: usize) -> Self {
        let prefix = sums(&tables[..split], 0.0);
        let suffix = Tail::build(&domain, split, &tables);
        let slack = rounding_slack(&tables);
        let (min_utility, max_utility) = extremes(&tables);
        Self { domain, reservation: prefs.reservation_value, prefix, suffix, slack, min_utility, max_utility }
    }

    pub fn min_utility(&self) -> f64 {
        self.min_utility
    }

    pub fn max_utility(&self) -> f64 {
        self.max_utility
    }

    pub fn is_empty(&self) -> bool {
        self.max_utility < self.reservation
    }

    /// Sizes of the two halves (prefixes, suffixes).
    pub fn halves(&self) -> (usize, u64) {
        (self.prefix.len(), self.suffix.len)
    }

    pub fn outcome(&self, id: u64) -> Outcome {
        self.domain.outcome_at(id as u128)
    }

    /// The utility of outcome (prefix, suffix), added left to right as
    /// [`UtilityFunction::eval`] adds it.
    #[inline]
    fn utility(&self, p: usize, s: u64) -> f64 {
        self.suffix.utility(self.prefix[p], s as u32)
    }

    /// Calls `visit(id, utility)` for every outcome whose `a + s` lies in
    /// `[lo, hi]` (so every outcome with utility in `[lo + slack, hi −
    /// slack]`, and some near the edges), prefixes in enumeration order;
    /// stops when `visit` returns false.
    fn window(&self, lo: f64, hi: f64, mut visit: impl FnMut(u64, f64) -> bool) {
        for (p, &a) in self.prefix.iter().enumerate() {
            for (s, _) in self.suffix.index.in_range(lo - a, hi - a) {
                let id = p as u64 * self.suffix.len + s as u64;
                if !visit(id, self.utility(p, s as u64)) {
                    return;
                }
            }
        }
    }

    /// The best rational outcome: highest utility, lowest id among equals
    /// (`last`: the highest id), judged on `f · u` (f = 1: undiscounted).
    pub fn best_by(&self, f: f64, last: bool) -> Option<(u64, f64)> {
        if self.is_empty() {
            return None;
        }
        let top = self.max_utility;
        let want = f * top;
        // Utilities whose f·u rounds to f·top lie within a few ulps of top.
        let lo = top - 8.0 * f64::EPSILON * top.abs() - 2.0 * self.slack;
        let mut found: Option<(u64, f64)> = None;
        let mut seen = 0usize;
        self.window(lo - self.slack, top + self.slack, |id, u| {
            // The window visits ids out of order: compare them.
            if u >= self.reservation && f * u == want && found.is_none_or(|(b, _)| if last { id > b } else { id < b }) {
                found = Some((id, u));
            }
            seen += 1;
            seen < WINDOW_LIMIT
        });
        found
    }

    /// The rational outcome with the lowest `f · u` at or above `target`
    /// (lowest id among equals) and, where `tolerance` is given, the one
    /// with the highest `f · u` below the target by at most `tolerance`
    /// (lowest id among equals): the two candidates of NegMAS's bidding
    /// rule (`super::Inverse::nearest`).
    ///
    /// One pass over the prefixes. For each, the suffix buckets are walked
    /// up from just under the target and down from just over it, each walk
    /// ending once it has passed an outcome that surely qualifies (by a
    /// margin of slacks, since keys are not utilities) or the best answer
    /// of the prefixes before (whose ids are lower, so a tie never moves it).
    /// Every outcome in between has its utility recomputed and decides.
    pub fn around(&self, target: f64, f: f64, tolerance: Option<f64>) -> Around<u64> {
        let (rv, d) = (self.reservation, self.slack);
        let band = |lo: f64, hi: f64| if f == 1.0 { (lo, hi) } else { scaled_band(lo, hi, f) };
        let (t_lo, t_hi) = band(target, target);
        // Keys (a + s) of candidates above: u ≥ max(t_lo, rv), so a key at
        // least that less a slack; at or over `sure`, u > max(t_hi, rv): the
        // outcome qualifies.
        let up_from = t_lo.max(rv) - d;
        let sure_up = t_hi.max(rv) + 2.0 * d;
        // Below: u < t_hi, so keys under t_hi + d; at or under `sure_down`,
        // u < t_lo: the outcome is below the target.
        let down_from = t_hi + d;
        let sure_down = t_lo - 2.0 * d;
        let floor = tolerance.map(|tol| band(target - tol, target).0.max(rv) - d);
        let mut up: Option<(u64, f64)> = None;
        let mut below: Option<(u64, f64)> = None;
        let mut seen = 0usize;
        for (p, &a) in self.prefix.iter().enumerate() {
            let base = p as u64 * self.suffix.len;
            // Later prefixes have higher ids: only a strictly lower f·u,
            // so a lower u, can replace the answer so far.
            let cap = up.map_or(f64::INFINITY, |(_, u)| u + d);
            seen += self.suffix.up(a, up_from, sure_up, cap, d, |s, u| {
                let (id, v) = (base + s as u64, f * u);
                // Within a prefix, buckets do not visit ids in order.
                let better = up.is_none_or(|(bid, bu)| v < f * bu || (v == f * bu && id < bid));
                (u >= rv && v >= target && better).then(|| {
                    up = Some((id, u));
                    u + d
                })
            });
            if let Some((floor, tol)) = floor.zip(tolerance) {
                let floor = below.map_or(floor, |(_, u)| floor.max(u - d));
                seen += self.suffix.down(a, down_from, sure_down, floor, d, |s, u| {
                    let (id, v) = (base + s as u64, f * u);
                    let better = below.is_none_or(|(bid, bu)| v > f * bu || (v == f * bu && id < bid));
                    (u >= rv && v < target && v >= target - tol && better).then(|| {
                        below = Some((id, u));
                        u - d
                    })
                });
            }
            if seen >= WINDOW_LIMIT {
                break;
            }
        }
        (up, below)
    }

    /// Up to `limit` rational outcomes with utility in `[lo, hi]`, prefixes
    /// in enumeration order.
    pub fn in_range(&self, lo: f64, hi: f64, limit: usize) -> Vec<(u64, f64)> {
        let mut out = Vec::new();
        let lo = lo.max(self.reservation);
        if limit == 0 || lo > hi {
            return out;
        }
        self.window(lo - self.slack, hi + self.slack, |id, u| {
            if (lo..=hi).contains(&u) {
                out.push((id, u));
            }
            out.len() < limit
        });
        out
    }

    /// A uniformly drawn rational outcome ([`super::rational_draw`]).
    pub fn random(&self, rng: &mut SplitMix64) -> Option<(u64, f64)> {
        if self.is_empty() {
            return None;
        }
        let draw = || {
            let (p, s) = (rng.below(self.prefix.len() as u64) as usize, rng.below(self.suffix.len));
            (p as u64 * self.suffix.len + s, self.utility(p, s))
        };
        rational_draw(self.reservation, draw, || self.around(self.reservation, 1.0, None).0)
    }
}

/// The last issues of a space, every combination's left-to-right float sum
/// (from 0.0) bucketed: a split's suffix half, or the tail with which a
/// search completes its partial outcomes. A key `a + s` (a head's sum plus a
/// tail's) is within the slack of the outcome's utility; the walks below
/// use keys to find candidates and recomputed utilities to decide.
#[derive(Debug, Clone)]
pub(super) struct Tail {
    index: OutcomeIndex,
    tables: Vec<Vec<f64>>,
    /// Enumeration stride of each tail issue within the tail (u32: a tail
    /// holds at most [`HALF_LIMIT`] entries, and 32-bit division is the
    /// cost of recomputing a candidate's utility).
    strides: Vec<u32>,
    pub(super) len: u64,
}

impl Tail {
    /// The tail of issues `[from, k)`.
    pub(super) fn build(domain: &Domain, from: usize, tables: &[Vec<f64>]) -> Self {
        let tables = tables[from..].to_vec();
        let sums = sums(&tables, 0.0);
        let tail_domain = Arc::new(Domain::new(format!("{} (tail)", domain.name), domain.issues[from..].to_vec()));
        // The sums' extremes are the tables' (see `extremes`), bit for bit.
        let index = OutcomeIndex::bucketed_within(
            Candidates::All(tail_domain),
            &sums,
            f64::NEG_INFINITY,
            HALF_BUCKETS,
            extremes(&tables),
        );
        let mut strides = vec![1u32; tables.len()];
        for j in (0..strides.len().saturating_sub(1)).rev() {
            strides[j] = strides[j + 1] * tables[j + 1].len() as u32;
        }
        Self { index, tables, strides, len: sums.len() as u64 }
    }

    /// The utility of a head whose sum is `a` followed by tail `s`, added
    /// left to right as [`UtilityFunction::eval`] adds it.
    #[inline]
    pub(super) fn utility(&self, a: f64, s: u32) -> f64 {
        let mut u = a;
        for (t, &stride) in self.tables.iter().zip(&self.strides) {
            u += t[((s / stride) % t.len() as u32) as usize];
        }
        u
    }

    /// The value index of each tail issue in tail `s`.
    pub(super) fn digits(&self, s: u32) -> impl Iterator<Item = u32> + '_ {
        self.tables.iter().zip(&self.strides).map(move |(t, &stride)| (s / stride) % t.len() as u32)
    }

    /// Walks the tails of head sum `a` upward from key `from` and calls
    /// `visit(s, u)` for each with a key up to `cap`; `visit` returns a
    /// new (lower) cap when its outcome improved the answer. The walk stops
    /// past the first tail whose key is at least `sure` (its outcome
    /// qualifies, so no better one lies more than the slack `d` beyond it).
    /// Returns the outcomes visited. Tail sums are compared after a float
    /// subtraction: every bound has one more slack of margin.
    pub(super) fn up(
        &self,
        a: f64,
        from: f64,
        sure: f64,
        cap: f64,
        d: f64,
        mut visit: impl FnMut(u32, f64) -> Option<f64>,
    ) -> usize {
        let lo_s = from - d - a;
        let mut cap_s = cap + d - a;
        let mut first_sure: Option<f64> = None;
        let mut seen = 0;
        for (b, ids, sums) in self.index.buckets_up(lo_s) {
            if cap_s.is_finite() && b > self.index.bucket_of(cap_s) {
                break;
            }
            for (&s_id, &s) in ids.iter().zip(sums) {
                if s >= sure + d - a && first_sure.is_none_or(|m| s < m) {
                    first_sure = Some(s);
                }
                if s < lo_s || s > cap_s {
                    continue;
                }
                seen += 1;
                if let Some(new_cap) = visit(s_id, self.utility(a, s_id)) {
                    cap_s = cap_s.min(new_cap + d - a);
                }
            }
            if let Some(m) = first_sure {
                cap_s = cap_s.min(m + 3.0 * d);
            }
            if seen >= WINDOW_LIMIT {
                break;
            }
        }
        seen
    }

    /// [`Self::up`] downward: from key `from`, tails with a key down to
    /// `floor`, stopping past the first whose key is at most `sure`;
    /// `visit` returns a new (higher) floor.
    pub(super) fn down(
        &self,
        a: f64,
        from: f64,
        sure: f64,
        floor: f64,
        d: f64,
        mut visit: impl FnMut(u32, f64) -> Option<f64>,
    ) -> usize {
        let hi_s = from + d - a;
        let mut low_s = floor - d - a;
        let mut first_sure: Option<f64> = None;
        let mut seen = 0;
        for (b, ids, sums) in self.index.buckets_down(hi_s) {
            if b < self.index.bucket_of(low_s) {
                break;
            }
            for (&s_id, &s) in ids.iter().zip(sums) {
                if s <= sure - d - a && first_sure.is_none_or(|m| s > m) {
                    first_sure = Some(s);
                }
                if s > hi_s || s < low_s {
                    continue;
                }
                seen += 1;
                if let Some(new_floor) = visit(s_id, self.utility(a, s_id)) {
                    low_s = low_s.max(new_floor - d - a);
                }
            }
            if let Some(m) = first_sure {
                low_s = low_s.max(m - 3.0 * d);
            }
            if seen >= WINDOW_LIMIT {
                break;
            }
        }
        seen
    }
}

#[cfg(test)]
mod tests {
    use super::super::Inverse;
    use super::*;
    use crate::core::domain::Issue;
    use crate::core::utility::ValueFunction;
    use proptest::prelude::*;

    /// A linear-additive domain with coarse value utilities (k/steps), so
    /// that equal utilities, and equal sums of different values, are common.
    fn setup(sizes: &[usize], cells: &[u32], weights: &[u32], steps: u32, rv: f64) -> (Arc<Domain>, Preferences) {
        let issues: Vec<Issue> = sizes
            .iter()
            .enumerate()
            .map(|(i, &c)| Issue::Integer { name: format!("i{i}"), min: 0, max: c as i64 - 1 })
            .collect();
        let mut cell = cells.iter().cycle();
        let values = sizes
            .iter()
            .map(|&c| ValueFunction::Table {
                utilities: (0..c).map(|_| *cell.next().unwrap() as f64 / steps as f64).collect(),
            })
            .collect();
        let total: u32 = weights.iter().take(sizes.len()).sum::<u32>().max(1);
        let weights = weights.iter().take(sizes.len()).map(|&w| w as f64 / total as f64).collect();
        let prefs = Preferences::new(UtilityFunction::LinearAdditive { weights, values }, rv);
        (Arc::new(Domain::new("p", issues)), prefs)
    }

    /// The enumerating inverse, the split at `cut`, the search (a head of
    /// one issue, the rest its tail) and the search with a tail of at most
    /// `tail` entries (a head of several issues; none where `tail` is 1).
    fn all_four(d: &Arc<Domain>, p: &Preferences, cut: usize, tail: u64) -> [Inverse; 4] {
        use crate::core::inverse::SearchInverse;
        let t = || tables(d, p).unwrap();
        [
            Inverse::Index(OutcomeIndex::build(Candidates::All(d.clone()), d, p)),
            Inverse::Split(SplitInverse::build(d.clone(), p, t(), cut)),
            Inverse::Search(SearchInverse::build(d.clone(), p, t())),
            Inverse::Search(SearchInverse::with_tail_limit(d.clone(), p, t(), tail)),
        ]
    }

    fn sorted(mut bids: Vec<(Outcome, f64)>) -> Vec<(Vec<i64>, f64)> {
        let mut keyed: Vec<(Vec<i64>, f64)> =
            bids.drain(..).map(|(o, u)| (o.0.iter().map(|v| v.as_f64() as i64).collect(), u)).collect();
        keyed.sort_by(|a, b| a.0.cmp(&b.0));
        keyed
    }

    proptest! {
        /// Every query the strategies ask gives the enumerating answer, id
        /// and utility, whatever the cut.
        #[test]
        fn answers_equal_enumerating(
            sizes in proptest::collection::vec(1usize..7, 2..6),
            cells in proptest::collection::vec(0u32..9, 1..40),
            weights in proptest::collection::vec(1u32..5, 5),
            steps in 1u32..9,
            rv in 0.0f64..0.6,
            targets in proptest::collection::vec(-0.1f64..1.1, 1..8),
            f in prop_oneof![Just(1.0f64), 0.3f64..1.0],
            cut_at in 0usize..4,
            tail in 1u64..40,
        ) {
            let (d, p) = setup(&sizes, &cells, &weights, steps, rv);
            let cut = 1 + cut_at % (sizes.len() - 1);
            let [index, split, search, headed] = all_four(&d, &p, cut, tail);
            for other in [&split, &search, &headed] {
                prop_assert_eq!(index.min_utility(), other.min_utility());
                prop_assert_eq!(index.max_utility(), other.max_utility());
                prop_assert_eq!(index.is_empty(), other.is_empty());
                prop_assert_eq!(index.best(), other.best());
                for &t in &targets {
                    prop_assert_eq!(index.worst_at_or_above(t), other.worst_at_or_above(t), "worst at or above {}", t);
                    for tol in [1e-6, 0.05, 0.3] {
                        prop_assert_eq!(index.nearest(t, f, tol), other.nearest(t, f, tol), "nearest {} f {} tol {}", t, f, tol);
                    }
                    prop_assert_eq!(
                        sorted(index.in_range(t, t + 0.2, usize::MAX)),
                        sorted(other.in_range(t, t + 0.2, usize::MAX))
                    );
                }
            }
            // Small spaces: the search completed every query.
            prop_assert!(search.is_exact() && headed.is_exact());
        }
    }

    #[test]
    fn the_cut_follows_the_expected_queries() {
        let t = vec![vec![0.0; 10]; 5];
        // W4: one issue of prefixes against 10^4 suffixes for a negotiation's queries.
        assert_eq!(SplitInverse::choose_split(&t, 300), Some(1));
        // Few queries: a smaller suffix is cheaper to build.
        assert_eq!(SplitInverse::choose_split(&t, 1), Some(2));
        // Neither half may exceed HALF_LIMIT: 60 issues of 10 values have no cut.
        assert_eq!(SplitInverse::choose_split(&vec![vec![0.0; 10]; 60], 300), None);
    }

    #[test]
    fn a_space_too_large_to_enumerate_is_answered_on_its_own_utilities() {
        // 10 issues of 10 values: 10^10 outcomes, never enumerated (the
        // property test above checks exactness where enumerating can).
        let sizes = vec![10usize; 10];
        let cells: Vec<u32> = (0..100).map(|k| (k * 37 % 101) as u32).collect();
        let (d, p) = setup(&sizes, &cells, &[3, 1, 4, 1, 5, 9, 2, 6, 5, 3], 100, 0.1);
        let Some(Inverse::Split(s)) = Inverse::shared(&d, &p) else { panic!("a 10^10 linear space splits") };
        let (a, b) = s.halves();
        assert_eq!(a as u64 * b, 10_000_000_000);
        for x in [0.2, 0.5, 0.77, 0.95, 1.0] {
            let t = s.min_utility() + x * (s.max_utility() - s.min_utility());
            let (id, u) = s.around(t, 1.0, None).0.unwrap();
            assert!(u >= t && u - t < 1e-3, "target {t}: {u}");
            assert_eq!(u, p.utility(&d, &s.outcome(id)));
        }
        let (id, u) = s.best_by(1.0, false).unwrap();
        assert_eq!((u, p.utility(&d, &s.outcome(id))), (s.max_utility(), s.max_utility()));
    }
}
