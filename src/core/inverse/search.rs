//! Inverse utility for linear-additive spaces too large to split: branch
//! and bound over the issues, exact wherever the search completes.
//!
//! The search walks issues in order, each issue's values by ascending
//! `t_i(v) = w_i · f_i(v)` (descending for "the highest below"), carrying
//! the left-to-right float sum of the values chosen so far, so a leaf's sum
//! is its utility bit for bit (as [`super::split`] recomputes it). A
//! subtree is skipped when the bounds `partial + Σ min / Σ max` of the issues
//! still open (widened by [`SearchInverse`]'s slack against rounding) cannot
//! meet the query, and a level is left as soon as its sorted values have
//! passed the query. Ties are decided on (utility, enumeration index) at the
//! leaves, so a search that completes gives exactly what enumerating would.
//!
//! A query may visit at most [`NODE_BUDGET`] nodes. On a space such as
//! 50 issues × 10 values (10^50 outcomes) near a target in the bulk of the
//! distribution, proving that no outcome lies between the target and the best
//! one found needs more than that (it is subset-sum), so the search stops
//! and answers with the best outcome it found: one at or above the target,
//! typically within the granularity of the last issues' utilities. Such an
//! answer is not proven exact; [`SearchInverse::was_cut_short`] says whether
//! any query so far stopped early. Still, it bids near its target, where a
//! seeded sample of 50,000 random outcomes rarely holds anything above the
//! distribution's bulk.

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::index::scaled_band;
use std::ops::ControlFlow;

use super::split::{Tail, extremes, rounding_slack};
use super::{Around, rational_draw};
use crate::core::domain::{Domain, Outcome};
use crate::core::rng::SplitMix64;
use crate::core::utility::Preferences;

/// Nodes one query may visit (about 0.1 ms here).
pub const NODE_BUDGET: usize = 20_000;

/// Entries of the tail at most: the last issues whose combinations fit are
/// bucketed once, so that a search ends at the head and completes each
/// head exactly with a bucket walk instead of a depth of branching.
const TAIL_LIMIT: u64 = 1 << 17;

/// Nodes charged for one walk of the tail (a few buckets and recomputed
/// utilities).
const TAIL_COST: usize = 8;

#[derive(Debug)]
pub struct SearchInverse {
    domain: Arc<Domain>,
    reservation: f64,
    tables: Vec<Vec<f64>>,
    /// Each issue's value indices by ascending table value (ties by index).
    order: Vec<Vec<u32>>,
    /// `suffix_min[i]`: the sum of the per-issue minima of issues `i..`.
    suffix_min: Vec<f64>,
    suffix_max: Vec<f64>,
    slack: f64,
    min_utility: f64,
    max_utility: f64,
    cut_short: AtomicBool,
    /// The last issues bucketed, from issue `head` on: see [`TAIL_LIMIT`].
    tail: Option<(usize, Tail)>,
    /// Bits of the largest [`SearchInverse::gap`] so far (0.0 initially).
    gap: AtomicU64,
}

impl Clone for SearchInverse {
    fn clone(&self) -> Self {
        Self {
            domain: self.domain.clone(),
            reservation: self.reservation,
            tables: self.tables.clone(),
            order: self.order.clone(),
            suffix_min: self.suffix_min.clone(),
            suffix_max: self.suffix_max.clone(),
            slack: self.slack,
            min_utility: self.min_utility,
            max_utility: self.max_utility,
            cut_short: AtomicBool::new(self.cut_short.load(Ordering::Relaxed)),
            gap: AtomicU64::new(self.gap.load(Ordering::Relaxed)),
            tail: self.tail.clone(),
        }
    }
}

/// Where a subtree's utilities lie against what a query wants.
enum Fit {
    /// Entirely below: skip it (values further on are larger).
    Below,
    /// Entirely above: skip it.
    Above,
    Inside,
}

/// An outcome as value indices, compared in enumeration order.
pub type Digits = Box<[u32]>;

impl SearchInverse {
    pub fn build(domain: Arc<Domain>, prefs: &Preferences, tables: Vec<Vec<f64>>) -> Self {
        Self::with_tail_limit(domain, prefs, tables, TAIL_LIMIT)
    }

    /// [`Self::build`] with a tail of at most `tail_limit` entries (tests
    /// use small ones, so that heads of several issues are walked).
    pub(super) fn with_tail_limit(
        domain: Arc<Domain>,
        prefs: &Preferences,
        tables: Vec<Vec<f64>>,
        tail_limit: u64,
    ) -> Self {
        let k = tables.len();
        let order = tables
            .iter()
            .map(|t| {
                let mut o: Vec<u32> = (0..t.len() as u32).collect();
                o.sort_by(|&a, &b| t[a as usize].total_cmp(&t[b as usize]).then(a.cmp(&b)));
                o
            })
            .collect();
        let mut suffix_min = vec![0.0; k + 1];
        let mut suffix_max = vec![0.0; k + 1];
        for i in (0..k).rev() {
            suffix_min[i] = suffix_min[i + 1] + tables[i].iter().copied().fold(f64::INFINITY, f64::min);
            suffix_max[i] = suffix_max[i + 1] + tables[i].iter().copied().fold(f64::NEG_INFINITY, f64::max);
        }
        let slack = rounding_slack(&tables);
        let (min_utility, max_utility) = extremes(&tables);
        // The longest run of last issues whose combinations fit the tail
        // (at least two entries, and a head of at least one issue).
        let mut head = k;
        let mut entries = 1u64;
        while head > 1 && entries.saturating_mul(tables[head - 1].len() as u64) <= tail_limit {
            head -= 1;
            entries *= tables[head].len() as u64;
        }
        let tail = (entries > 1).then(|| (head, Tail::build(&domain, head, &tables)));
        Self {
            tail,
            domain,
            reservation: prefs.reservation_value,
            tables,
            order,
            suffix_min,
            suffix_max,
            slack,
            min_utility,
            max_utility,
            cut_short: AtomicBool::new(false),
            gap: AtomicU64::new(0.0f64.to_bits()),
        }
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

    /// Whether any query so far stopped at [`NODE_BUDGET`] (its answer then
    /// was the best found, not proven the exact one).
    pub fn was_cut_short(&self) -> bool {
        self.cut_short.load(Ordering::Relaxed)
    }

    /// The widest interval (in discounted utility, from a target) that a
    /// query cut short could not settle: an exact answer lies between the
    /// target and the answer given, so no answer is further than this from
    /// the exact one. 0 while every query completed; infinite where one
    /// found nothing it could prove absent.
    pub fn gap(&self) -> f64 {
        f64::from_bits(self.gap.load(Ordering::Relaxed))
    }

    fn note_gap(&self, gap: f64) {
        // Non-negative floats order as their bits do.
        self.gap.fetch_max(gap.max(0.0).to_bits(), Ordering::Relaxed);
    }

    pub fn outcome(&self, digits: &[u32]) -> Outcome {
        Outcome::from(
            self.domain.issues.iter().zip(digits).map(|(issue, &d)| issue.value_at(d as u64)).collect::<Vec<_>>(),
        )
    }

    /// Depth-first over the first `levels` issues; `fit(lo, hi)` places a
    /// subtree's bounds, `leaf(digits, partial)` sees each point reached at
    /// depth `levels` (a whole outcome and its utility where `levels` is
    /// every issue) and breaks to stop or continues with the nodes its own
    /// work cost. Values ascend (`descending`: descend). False where the
    /// budget ran out.
    fn walk(
        &self,
        levels: usize,
        descending: bool,
        mut fit: impl FnMut(f64, f64) -> Fit,
        mut leaf: impl FnMut(&[u32], f64) -> ControlFlow<(), usize>,
    ) -> bool {
        let k = self.tables.len();
        let d = self.slack;
        let mut digits = vec![0u32; k];
        let mut next = vec![0usize; k];
        let mut partial = vec![0.0f64; k + 1];
        let mut depth = 0usize;
        let mut nodes = 0usize;
        loop {
            let order = &self.order[depth];
            if next[depth] == order.len() {
                if depth == 0 {
                    return true;
                }
                depth -= 1;
                continue;
            }
            let j = next[depth];
            next[depth] += 1;
            let v = if descending { order[order.len() - 1 - j] } else { order[j] };
            let p = partial[depth] + self.tables[depth][v as usize];
            nodes += 1;
            if nodes > NODE_BUDGET {
                self.cut_short.store(true, Ordering::Relaxed);
                return false;
            }
            let (lo, hi) = (p + self.suffix_min[depth + 1] - d, p + self.suffix_max[depth + 1] + d);
            match (fit(lo, hi), descending) {
                // Values further on only move further away: leave the level.
                (Fit::Above, false) | (Fit::Below, true) => next[depth] = order.len(),
                (Fit::Above, true) | (Fit::Below, false) => {}
                (Fit::Inside, _) => {
                    digits[depth] = v;
                    if depth + 1 == levels {
                        match leaf(&digits[..levels], p) {
                            ControlFlow::Break(()) => return true,
                            ControlFlow::Continue(cost) => nodes += cost,
                        }
                    } else {
                        partial[depth + 1] = p;
                        depth += 1;
                        next[depth] = 0;
                    }
                }
            }
        }
    }

    /// The best rational outcome by `f · u`, lowest index among equals
    /// (`last`: highest).
    pub fn best_by(&self, f: f64, last: bool) -> Option<(Digits, f64)> {
        if self.is_empty() {
            return None;
        }
        let top = self.max_utility;
        let want = f * top;
        // Utilities whose f·u rounds to f·top lie within a few ulps of top.
        let floor = top - 8.0 * f64::EPSILON * top.abs() - 2.0 * self.slack;
        let mut found: Option<(Digits, f64)> = None;
        self.walk(
            self.tables.len(),
            false,
            |_, hi| if hi < floor { Fit::Below } else { Fit::Inside },
            |digits, u| {
                let better = |b: &Digits| if last { digits > &b[..] } else { digits < &b[..] };
                if u >= self.reservation && f * u == want && found.as_ref().is_none_or(|(b, _)| better(b)) {
                    found = Some((digits.into(), u));
                }
                ControlFlow::Continue(0)
            },
        );
        found
    }

    /// A head's digits followed by tail `s`'s.
    fn joined(head: &[u32], tail: &Tail, s: u32) -> Digits {
        head.iter().copied().chain(tail.digits(s)).collect()
    }

    /// As [`super::split::SplitInverse::around`]: the rational outcome with
    /// the lowest `f · u` at or above `target` and, with a tolerance, the one
    /// with the highest `f · u` below it by at most that (lowest index among
    /// equals on both). With a tail, the walk ends at the head and each
    /// head is completed by the split's bucket walks over the tail.
    pub fn around(&self, target: f64, f: f64, tolerance: Option<f64>) -> Around<Digits> {
        let (rv, d) = (self.reservation, self.slack);
        let band = |lo: f64, hi: f64| if f == 1.0 { (lo, hi) } else { scaled_band(lo, hi, f) };
        let (t_lo, t_hi) = band(target, target);
        let want_lo = t_lo.max(rv) - d;
        let levels = self.tail.as_ref().map_or(self.tables.len(), |(h, _)| *h);
        // Above an answer u no utility has an f·u as low (a few ulps cover
        // the rounding of f·u).
        let above = |u: f64| u + 8.0 * f64::EPSILON * u.abs();
        let mut up: Option<(Digits, f64)> = None;
        let ceiling = Cell::new(f64::INFINITY);
        // Whether (v, digits) beats the answer so far: lower f·u, then the
        // lower index; `digits` built only when it decides.
        let beats_up = |up: &Option<(Digits, f64)>, v: f64, digits: &dyn Fn() -> Digits| match up {
            None => Some(digits()),
            Some((bd, bu)) if v < f * bu => Some(digits()),
            Some((bd, bu)) if v == f * bu => Some(digits()).filter(|dg| dg < bd),
            _ => None,
        };
        let complete = self.walk(
            levels,
            false,
            |lo, hi| {
                if hi < want_lo {
                    Fit::Below
                } else if lo > ceiling.get() {
                    Fit::Above
                } else {
                    Fit::Inside
                }
            },
            |head, a| {
                let Some((_, tail)) = &self.tail else {
                    let v = f * a;
                    if a >= rv
                        && v >= target
                        && let Some(dg) = beats_up(&up, v, &|| head.into())
                    {
                        up = Some((dg, a));
                        ceiling.set(above(a));
                    }
                    return ControlFlow::Continue(0);
                };
                let cap = up.as_ref().map_or(f64::INFINITY, |(_, u)| above(*u) + d);
                let seen = tail.up(a, want_lo, t_hi.max(rv) + 2.0 * d, cap, d, |s, u| {
                    let v = f * u;
                    if u < rv || v < target {
                        return None;
                    }
                    let dg = beats_up(&up, v, &|| Self::joined(head, tail, s))?;
                    up = Some((dg, u));
                    ceiling.set(above(u));
                    Some(above(u) + d)
                });
                ControlFlow::Continue(seen + TAIL_COST)
            },
        );
        if !complete {
            self.note_gap(up.as_ref().map_or(f64::INFINITY, |(_, u)| f * u - target));
        }
        let below = tolerance.and_then(|tol| {
            let floor = band(target - tol, target).0.max(rv) - d;
            // Below an answer u no utility has an f·u as high.
            let under = |u: f64| u - 8.0 * f64::EPSILON * u.abs();
            let mut below: Option<(Digits, f64)> = None;
            let floor_now = Cell::new(floor);
            let beats = |below: &Option<(Digits, f64)>, v: f64, digits: &dyn Fn() -> Digits| match below {
                None => Some(digits()),
                Some((bd, bu)) if v > f * bu => Some(digits()),
                Some((bd, bu)) if v == f * bu => Some(digits()).filter(|dg| dg < bd),
                _ => None,
            };
            let qualifies = |u: f64| u >= rv && f * u < target && f * u >= target - tol;
            let complete = self.walk(
                levels,
                true,
                |lo, hi| {
                    if lo > t_hi + d {
                        Fit::Above
                    } else if hi < floor_now.get() {
                        Fit::Below
                    } else {
                        Fit::Inside
                    }
                },
                |head, a| {
                    let Some((_, tail)) = &self.tail else {
                        if qualifies(a)
                            && let Some(dg) = beats(&below, f * a, &|| head.into())
                        {
                            below = Some((dg, a));
                            floor_now.set(under(a) - 2.0 * d);
                        }
                        return ControlFlow::Continue(0);
                    };
                    let floor = below.as_ref().map_or(floor, |(_, u)| floor.max(under(*u) - d));
                    let seen = tail.down(a, t_hi + d, t_lo - 2.0 * d, floor, d, |s, u| {
                        if !qualifies(u) {
                            return None;
                        }
                        let dg = beats(&below, f * u, &|| Self::joined(head, tail, s))?;
                        below = Some((dg, u));
                        floor_now.set(under(u) - 2.0 * d);
                        Some(under(u) - d)
                    });
                    ControlFlow::Continue(seen + TAIL_COST)
                },
            );
            if !complete {
                // The exact one lies between the answer (or the tolerance's
                // edge) and the target.
                self.note_gap(below.as_ref().map_or(tol, |(_, u)| target - f * u));
            }
            below
        });
        (up, below)
    }

    /// Up to `limit` rational outcomes with utility in `[lo, hi]`, by
    /// ascending values (the budget may stop it first).
    pub fn in_range(&self, lo: f64, hi: f64, limit: usize) -> Vec<(Digits, f64)> {
        let mut out = Vec::new();
        let lo = lo.max(self.reservation);
        if limit == 0 || lo > hi {
            return out;
        }
        let d = self.slack;
        self.walk(
            self.tables.len(),
            false,
            |a, b| {
                if b < lo - d {
                    Fit::Below
                } else if a > hi + d {
                    Fit::Above
                } else {
                    Fit::Inside
                }
            },
            |digits, u| {
                if (lo..=hi).contains(&u) {
                    out.push((digits.into(), u));
                }
                if out.len() < limit { ControlFlow::Continue(0) } else { ControlFlow::Break(()) }
            },
        );
        out
    }

    /// A uniformly drawn rational outcome ([`super::rational_draw`]).
    pub fn random(&self, rng: &mut SplitMix64) -> Option<(Digits, f64)> {
        if self.is_empty() {
            return None;
        }
        let draw = || {
            let digits: Digits = self.tables.iter().map(|t| rng.below(t.len() as u64) as u32).collect();
            let u = digits.iter().zip(&self.tables).fold(0.0, |u, (&d, t)| u + t[d as usize]);
            (digits, u)
        };
        rational_draw(self.reservation, draw, || self.around(self.reservation, 1.0, None).0)
    }
}
