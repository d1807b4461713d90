//! Outcome-space analysis: Pareto frontier, Nash, Kalai–Smorodinsky, max
//! welfare and egalitarian points, and distances of an agreement to them.
//!
//! Conventions (GENIUS / NegMAS, discrete spaces): disagreement point
//! d_p = max(reservation value_p, min u_p); the frontier is taken over
//! rational outcomes (every u_p ≥ reservation value_p); Nash maximises
//! Π(u_p − d_p) on it; Kalai–Smorodinsky minimises max_p a_p − min_p a_p with
//! a_p = (u_p − d_p)/(max u_p − d_p); max welfare maximises Σ u_p; discount is
//! ignored. Utilities are compared on a 1e-9 grid so that floating-point sums
//! cannot make a dominated outcome look efficient.

use super::domain::{Cardinality, Domain, Outcome};
use super::inverse::split::{extremes, rounding_slack, tables};
use super::limits::{analysis_enumerates, sample_note, sample_size};
use super::rng::SplitMix64;
use super::utility::Preferences;

/// Outcomes sampled (seeded) where the space is not enumerated; fewer
/// where the domain is wide (see [`super::limits::sample_size`]).
pub const ANALYSIS_SAMPLE: usize = 200_000;
const GRID: f64 = 1e9;

#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub utilities: Vec<f64>,
    pub outcome: Outcome,
}

#[derive(Debug, Clone)]
pub struct Analysis {
    /// Size of the outcome space.
    pub outcomes: String,
    /// False where the space was sampled.
    pub exact: bool,
    /// How many outcomes were evaluated.
    pub evaluated: usize,
    pub note: Option<String>,
    pub disagreement: Vec<f64>,
    /// Highest utility of each party over the whole space.
    pub max_utilities: Vec<f64>,
    /// Frontier points, sorted by the first party's utility (descending).
    pub pareto: Vec<Point>,
    pub nash: Option<Point>,
    pub kalai_smorodinsky: Option<Point>,
    pub max_welfare: Option<Point>,
    pub egalitarian: Option<Point>,
}

/// Distances of a utility vector to the analysis' reference points.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Distances {
    pub pareto: Option<f64>,
    pub nash: Option<f64>,
    pub kalai_smorodinsky: Option<f64>,
    pub max_welfare: Option<f64>,
    pub egalitarian: Option<f64>,
}

fn euclid(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum::<f64>().sqrt()
}

/// Partial outcomes [`Analysis::merged`] may evaluate over all its levels
/// (so also keep): 3.2 million, 8 bytes each kept and 24 while a level is
/// merged — about the memory and the work of the 200,000-outcome sample it
/// replaces.
const MERGE_LIMIT: usize = ANALYSIS_SAMPLE * 16;

/// Which of `cand` (two partial sums each, in enumeration order) may still
/// complete to a frontier point: see [`Analysis::merged`].
fn undominated(cand: &[(f64, f64, u32, u32)], margin: f64) -> Vec<bool> {
    let mut order: Vec<usize> = (0..cand.len()).collect();
    // By a descending, then b descending, then enumeration order.
    order.sort_unstable_by(|&x, &y| {
        cand[y].0.total_cmp(&cand[x].0).then(cand[y].1.total_cmp(&cand[x].1)).then(x.cmp(&y))
    });
    let mut keep = vec![true; cand.len()];
    let mut max_b = f64::NEG_INFINITY;
    // Highest b among those whose a leads the current one by the margin.
    let (mut far, mut far_b) = (0usize, f64::NEG_INFINITY);
    for (pos, &i) in order.iter().enumerate() {
        let (a, b, _, _) = cand[i];
        while far < pos && cand[order[far]].0 >= a + margin {
            far_b = far_b.max(cand[order[far]].1);
            far += 1;
        }
        let twin = pos > 0 && {
            let (pa, pb, _, _) = cand[order[pos - 1]];
            pa == a && pb == b
        };
        if max_b >= b + margin || far_b >= b || twin {
            keep[i] = false;
        }
        max_b = max_b.max(b);
    }
    keep
}

/// Indices of the non-dominated rows of `points` (row-major, `dims` columns).
/// Two parties: one sort and a sweep, O(n log n). More parties:
/// sort-filter-skyline — sorted by utility sum, a point is only compared with
/// frontier points already found (the only ones that can dominate it),
/// O(n·f) for a frontier of size f. Utilities are compared on a 1e-9 grid.
pub fn pareto_indices(points: &[f64], dims: usize) -> Vec<usize> {
    if points.is_empty() || dims == 0 {
        return Vec::new();
    }
    let q: Vec<i64> = points.iter().map(|x| (x * GRID).round() as i64).collect();
    let row = |k: usize| &q[k * dims..(k + 1) * dims];
    let n = points.len() / dims;
    let mut order: Vec<usize> = (0..n).collect();
    if dims == 2 {
        order.sort_unstable_by(|&a, &b| row(b).cmp(row(a)));
        let mut front = Vec::new();
        let mut best1 = i64::MIN;
        let mut last: Option<usize> = None;
        for i in order {
            if last.is_some_and(|l| row(l) == row(i)) {
                front.push(i);
            } else if row(i)[1] > best1 {
                best1 = row(i)[1];
                last = Some(i);
                front.push(i);
            }
        }
        return front;
    }
    let sums: Vec<i64> = (0..n).map(|k| row(k).iter().sum()).collect();
    order.sort_unstable_by(|&a, &b| sums[b].cmp(&sums[a]).then_with(|| row(b).cmp(row(a))));
    let dominates = |a: &[i64], b: &[i64]| a.iter().zip(b).all(|(x, y)| x >= y) && a != b;
    let mut front: Vec<usize> = Vec::new();
    for i in order {
        if !front.iter().any(|&f| dominates(row(f), row(i))) {
            front.push(i);
        }
    }
    front
}

impl Analysis {
    pub fn run(domain: &Domain, parties: &[&Preferences], seed: u64) -> Self {
        let card = domain.cardinality();
        let n = parties.len();
        match card {
            Cardinality::Finite(size) if analysis_enumerates(domain, n) => {
                // Column per party, then one flat row-major table: no outcome
                // is materialised until it is a reference point.
                let cols: Vec<Vec<f64>> =
                    parties.iter().map(|p| p.utility.utilities_of_all(domain).unwrap_or_default()).collect();
                let rows = size as usize;
                let flat: Vec<f64> = (0..rows).flat_map(|k| cols.iter().map(move |c| c[k])).collect();
                Self::from_points(card, true, &|k| domain.outcome_at(k as u128), &flat, n, parties, None)
            }
            _ => {
                if let Some(a) = Self::merged(domain, parties) {
                    return a;
                }
                let size = sample_size(ANALYSIS_SAMPLE, domain, parties);
                let mut rng = SplitMix64::new(seed);
                let mut sample: Vec<Outcome> =
                    parties.iter().filter_map(|p| p.utility.best_outcome_hint(domain)).collect();
                while sample.len() < size {
                    sample.push(domain.random_outcome(&mut rng));
                }
                let flat: Vec<f64> =
                    sample.iter().flat_map(|o| parties.iter().map(move |p| p.utility(domain, o))).collect();
                let mut a = Self::from_points(card, false, &|k| sample[k].clone(), &flat, n, parties, None);
                if let (Some(note), Some(why)) = (a.note.as_mut(), sample_note(ANALYSIS_SAMPLE, size, domain, n)) {
                    note.push_str(&format!(" ({why})"));
                }
                a
            }
        }
    }

    /// Two parties with linear-additive preferences over a space too large
    /// to enumerate: exact, by merging the issues one at a time and keeping
    /// only partial outcomes whose completions can still reach the
    /// frontier. A partial outcome (the issues so far, its two left-to-right
    /// sums) is dropped where another one beats it in both utilities by a
    /// whole grid step in one of them (every completion of it is then
    /// dominated on the 1e-9 grid), where it equals another one of a lower
    /// enumeration index in both sums (so a frontier point keeps its
    /// lowest-index outcome, as the enumerating path picks it for Nash and
    /// the others), or where it cannot become rational for a party. The
    /// frontier, Nash, Kalai–Smorodinsky, max welfare and egalitarian points
    /// are then those of enumerating, except that an outcome whose
    /// utilities equal a lower-index one's exactly is listed once, not again.
    /// `None` (the caller samples) where it does not apply or where the
    /// partial frontier outgrows [`MERGE_LIMIT`].
    fn merged(domain: &Domain, parties: &[&Preferences]) -> Option<Self> {
        let [pa, pb] = parties else { return None };
        let (ta, tb) = (tables(domain, pa)?, tables(domain, pb)?);
        let k = ta.len();
        let (rv_a, rv_b) = (pa.reservation_value, pb.reservation_value);
        let bound = |t: &[Vec<f64>], pick: fn(f64, f64) -> f64, start: f64| {
            let mut rest = vec![0.0; t.len() + 1];
            for i in (0..t.len()).rev() {
                rest[i] = rest[i + 1] + t[i].iter().copied().fold(start, pick);
            }
            rest
        };
        let (max_a, max_b) = (bound(&ta, f64::max, f64::NEG_INFINITY), bound(&tb, f64::max, f64::NEG_INFINITY));
        let slack = rounding_slack(&ta).max(rounding_slack(&tb));
        // A lead this large in partial sums survives any completion's
        // rounding and the grid's.
        let margin = 1.001 / GRID + 2.0 * slack;
        // Each level: (sum a, sum b, parent, value) in enumeration order.
        let mut levels: Vec<Vec<(u32, u32)>> = Vec::with_capacity(k);
        let mut sums: Vec<(f64, f64)> = vec![(0.0, 0.0)];
        let mut stored = 0usize;
        let mut evaluated = 0usize;
        for i in 0..k {
            let c = ta[i].len();
            // Bounded work as well as memory: all levels together evaluate
            // no more partial outcomes than the limit.
            if evaluated.saturating_add(sums.len().saturating_mul(c)) > MERGE_LIMIT {
                return None;
            }
            let mut cand: Vec<(f64, f64, u32, u32)> = Vec::with_capacity(sums.len() * c);
            for (parent, &(a, b)) in sums.iter().enumerate() {
                for v in 0..c {
                    let (a, b) = (a + ta[i][v], b + tb[i][v]);
                    if a + max_a[i + 1] + slack < rv_a || b + max_b[i + 1] + slack < rv_b {
                        continue;
                    }
                    cand.push((a, b, parent as u32, v as u32));
                }
            }
            evaluated += cand.len();
            let keep = undominated(&cand, margin);
            let kept: Vec<(f64, f64, u32, u32)> =
                cand.into_iter().zip(keep).filter(|(_, k)| *k).map(|(c, _)| c).collect();
            stored += kept.len();
            if stored > MERGE_LIMIT {
                return None;
            }
            sums = kept.iter().map(|&(a, b, _, _)| (a, b)).collect();
            levels.push(kept.iter().map(|&(_, _, p, v)| (p, v)).collect());
        }
        let outcome_of = |pos: usize| {
            let mut digits = vec![0u32; k];
            let mut at = pos;
            for i in (0..k).rev() {
                let (parent, v) = levels[i][at];
                digits[i] = v;
                at = parent as usize;
            }
            Outcome::from(
                domain.issues.iter().zip(&digits).map(|(issue, &d)| issue.value_at(d as u64)).collect::<Vec<_>>(),
            )
        };
        let flat: Vec<f64> = sums.iter().flat_map(|&(a, b)| [a, b]).collect();
        // Extremes over the whole space: per-issue extremes added in order
        // (rounding is monotone).
        let ((min_a, top_a), (min_b, top_b)) = (extremes(&ta), extremes(&tb));
        let (min_u, max_u) = ([min_a, min_b], [top_a, top_b]);
        let mut a =
            Self::from_points(domain.cardinality(), true, &outcome_of, &flat, 2, parties, Some((&min_u, &max_u)));
        a.evaluated = evaluated;
        Some(a)
    }

    fn from_points(
        card: Cardinality,
        exact: bool,
        outcome_of: &dyn Fn(usize) -> Outcome,
        flat: &[f64],
        n: usize,
        parties: &[&Preferences],
        extremes: Option<(&[f64], &[f64])>,
    ) -> Self {
        let row = |k: usize| &flat[k * n..(k + 1) * n];
        let count = flat.len() / n.max(1);
        // Extremes over the whole space, as NegMAS' `kalai_points` takes them.
        let (min_u, max_utilities): (Vec<f64>, Vec<f64>) = match extremes {
            Some((lo, hi)) => (lo.to_vec(), hi.to_vec()),
            None => (
                (0..n).map(|p| (0..count).map(|k| row(k)[p]).fold(f64::INFINITY, f64::min)).collect(),
                (0..n).map(|p| (0..count).map(|k| row(k)[p]).fold(f64::NEG_INFINITY, f64::max)).collect(),
            ),
        };
        let disagreement: Vec<f64> = (0..n).map(|p| parties[p].reservation_value.max(min_u[p])).collect();
        let rational: Vec<usize> =
            (0..count).filter(|&k| (0..n).all(|p| row(k)[p] >= parties[p].reservation_value)).collect();
        let rational_flat: Vec<f64> = rational.iter().flat_map(|&k| row(k).iter().copied()).collect();
        let mut front: Vec<usize> = pareto_indices(&rational_flat, n).into_iter().map(|i| rational[i]).collect();
        front.sort_by(|&a, &b| {
            let by_utility = row(b).iter().zip(row(a)).map(|(x, y)| x.total_cmp(y)).find(|o| o.is_ne());
            by_utility.unwrap_or(std::cmp::Ordering::Equal).then(a.cmp(&b))
        });
        let point = |k: usize| Point { utilities: row(k).to_vec(), outcome: outcome_of(k) };
        let argbest = |score: &dyn Fn(&[f64]) -> f64| -> Option<Point> {
            let mut best: Option<(usize, f64)> = None;
            for &k in &front {
                let s = score(row(k));
                if best.is_none_or(|(_, b)| s > b + 1e-12) {
                    best = Some((k, s));
                }
            }
            best.map(|(k, _)| point(k))
        };
        let d = disagreement.clone();
        let nash = argbest(&|u| u.iter().zip(&d).map(|(x, dp)| (x - dp).max(0.0)).product());
        let maxu = max_utilities.clone();
        let ks = argbest(&|u| {
            let a: Vec<f64> = (0..u.len())
                .map(|p| {
                    let span = maxu[p] - d[p];
                    if span > 0.0 { (u[p] - d[p]) / span } else { 1.0 }
                })
                .collect();
            let hi = a.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let lo = a.iter().copied().fold(f64::INFINITY, f64::min);
            -(hi - lo)
        });
        let max_welfare = argbest(&|u| u.iter().sum());
        let egalitarian = argbest(&|u| u.iter().copied().fold(f64::INFINITY, f64::min));
        let evaluated = count;
        let note = (!exact).then(|| {
            format!(
                "approximate: the space has {} outcomes, too many to enumerate for {n} parties; analysed a seeded sample of {evaluated}",
                match card {
                    Cardinality::Finite(_) => card.to_string(),
                    Cardinality::Infinite => "infinitely many (real issues)".into(),
                }
            )
        });
        Analysis {
            outcomes: card.to_string(),
            exact,
            evaluated,
            note,
            disagreement,
            max_utilities,
            pareto: front.iter().map(|&k| point(k)).collect(),
            nash,
            kalai_smorodinsky: ks,
            max_welfare,
            egalitarian,
        }
    }

    pub fn distances(&self, utilities: &[f64]) -> Distances {
        let to = |p: &Option<Point>| p.as_ref().map(|p| euclid(&p.utilities, utilities));
        Distances {
            pareto: self.pareto.iter().map(|p| euclid(&p.utilities, utilities)).min_by(f64::total_cmp),
            nash: to(&self.nash),
            kalai_smorodinsky: to(&self.kalai_smorodinsky),
            max_welfare: to(&self.max_welfare),
            egalitarian: to(&self.egalitarian),
        }
    }

    /// Whether the utility vector lies on the frontier (within 1e-9).
    pub fn is_pareto_efficient(&self, utilities: &[f64]) -> bool {
        self.distances(utilities).pareto.is_some_and(|d| d < 1e-9)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::domain::Issue;
    use crate::core::utility::{UtilityFunction, ValueFunction};
    use proptest::prelude::*;

    fn dominated(a: &[f64], b: &[f64]) -> bool {
        // b dominates a
        b.iter().zip(a).all(|(x, y)| x >= y) && b.iter().zip(a).any(|(x, y)| x > y)
    }

    proptest! {
        #[test]
        fn frontier_points_are_not_dominated_and_the_rest_are(
            pts in proptest::collection::vec(proptest::collection::vec(0u32..20, 3), 1..120),
            two in any::<bool>(),
        ) {
            let dims = if two { 2 } else { 3 };
            let points: Vec<Vec<f64>> = pts.iter().map(|p| p[..dims].iter().map(|&x| x as f64 / 20.0).collect()).collect();
            let flat: Vec<f64> = points.iter().flatten().copied().collect();
            let front = pareto_indices(&flat, dims);
            for &i in &front {
                prop_assert!(!points.iter().any(|q| dominated(&points[i], q)));
            }
            for i in 0..points.len() {
                if !front.contains(&i) {
                    prop_assert!(points.iter().any(|q| dominated(&points[i], q)));
                }
            }
        }

        #[test]
        fn nash_maximises_the_product_over_the_frontier(w0 in 0.05f64..0.95, w1 in 0.05f64..0.95, rv in 0.0f64..0.4) {
            let d = Domain::new("t", vec![
                Issue::Integer { name: "a".into(), min: 0, max: 6 },
                Issue::Integer { name: "b".into(), min: 0, max: 6 },
            ]);
            let up = |w: f64, inc: bool| Preferences::new(UtilityFunction::LinearAdditive {
                weights: vec![w, 1.0 - w],
                values: vec![
                    ValueFunction::linear_between(0.0, 6.0, if inc { 0.0 } else { 1.0 }, if inc { 1.0 } else { 0.0 }),
                    ValueFunction::linear_between(0.0, 6.0, if inc { 0.0 } else { 1.0 }, if inc { 1.0 } else { 0.0 }),
                ],
            }, rv);
            let (a, b) = (up(w0, true), up(w1, false));
            let an = Analysis::run(&d, &[&a, &b], 1);
            prop_assert!(an.exact);
            let nash = an.nash.clone().unwrap();
            let prod = |u: &[f64]| (u[0] - an.disagreement[0]).max(0.0) * (u[1] - an.disagreement[1]).max(0.0);
            for p in &an.pareto {
                prop_assert!(prod(&p.utilities) <= prod(&nash.utilities) + 1e-12);
                prop_assert!(p.utilities[0] >= rv && p.utilities[1] >= rv);
            }
            prop_assert!(an.is_pareto_efficient(&nash.utilities));
            // KS: a_p = (u_p − d_p)/(max u_p − d_p), max over the whole space
            // (an ideal that is irrational for the other party still counts).
            let all = |p: usize| (0..49u128).map(|k| [&a, &b][p].utility(&d, &d.outcome_at(k))).fold(f64::MIN, f64::max);
            let spread = |u: &[f64]| {
                let r: Vec<f64> = (0..2).map(|p| (u[p] - an.disagreement[p]) / (all(p) - an.disagreement[p])).collect();
                (r[0] - r[1]).abs()
            };
            let ks = an.kalai_smorodinsky.clone().unwrap();
            for p in &an.pareto {
                prop_assert!(spread(&ks.utilities) <= spread(&p.utilities) + 1e-12);
            }
            let egal = an.egalitarian.clone().unwrap();
            for p in &an.pareto {
                prop_assert!(p.utilities[0].min(p.utilities[1]) <= egal.utilities[0].min(egal.utilities[1]) + 1e-12);
            }
            let mw = an.max_welfare.clone().unwrap();
            for p in &an.pareto {
                prop_assert!(p.utilities.iter().sum::<f64>() <= mw.utilities.iter().sum::<f64>() + 1e-12);
            }
        }
    }

    proptest! {
        /// Merging issue by issue gives the enumerating analysis: the same
        /// reference points (utilities and outcomes) and the same frontier,
        /// but for outcomes whose utilities repeat a lower-index one's exactly.
        #[test]
        fn merging_issues_gives_the_enumerating_analysis(
            sizes in proptest::collection::vec(1usize..6, 1..5),
            cells in proptest::collection::vec(0u32..7, 2..60),
            wa in proptest::collection::vec(1u32..5, 4),
            wb in proptest::collection::vec(1u32..5, 4),
            rv in (0.0f64..0.5, 0.0f64..0.5),
        ) {
            let d = Domain::new("m", sizes.iter().enumerate()
                .map(|(i, &c)| Issue::Integer { name: format!("i{i}"), min: 0, max: c as i64 - 1 }).collect());
            let mut cell = cells.iter().cycle();
            let mut prefs = |w: &[u32], rv: f64| {
                let total: u32 = w.iter().take(sizes.len()).sum();
                Preferences::new(UtilityFunction::LinearAdditive {
                    weights: w.iter().take(sizes.len()).map(|&x| x as f64 / total as f64).collect(),
                    values: sizes.iter().map(|&c| ValueFunction::Table {
                        utilities: (0..c).map(|_| *cell.next().unwrap() as f64 / 6.0).collect(),
                    }).collect(),
                }, rv)
            };
            let (a, b) = (prefs(&wa, rv.0), prefs(&wb, rv.1));
            let full = Analysis::run(&d, &[&a, &b], 1);
            let merged = Analysis::merged(&d, &[&a, &b]).unwrap();
            prop_assert!(full.exact && merged.exact);
            prop_assert_eq!(&full.max_utilities, &merged.max_utilities);
            prop_assert_eq!(&full.disagreement, &merged.disagreement);
            prop_assert_eq!(&full.nash, &merged.nash);
            prop_assert_eq!(&full.kalai_smorodinsky, &merged.kalai_smorodinsky);
            prop_assert_eq!(&full.max_welfare, &merged.max_welfare);
            prop_assert_eq!(&full.egalitarian, &merged.egalitarian);
            let mut once = full.pareto.clone();
            once.dedup_by(|x, y| x.utilities == y.utilities);
            prop_assert_eq!(once, merged.pareto);
        }
    }

    #[test]
    fn a_large_two_party_linear_space_is_analysed_exactly() {
        // 20 issues × 10 values: 10^20 outcomes. W's preferences (weights
        // drawn, opposed values): the frontier fits, so the analysis is exact.
        let w = crate::core::workload::Workload { issues: 20, ..crate::core::workload::Workload::named("w1").unwrap() };
        let [a, b] = w.preferences(0);
        let an = Analysis::run(&w.domain(), &[&a, &b], 1);
        assert!(an.exact, "{:?}", an.note);
        assert_eq!(an.outcomes, "1.000e20");
        let nash = an.nash.clone().unwrap();
        assert!(an.is_pareto_efficient(&nash.utilities));
        assert_eq!(nash.utilities, vec![a.utility(&w.domain(), &nash.outcome), b.utility(&w.domain(), &nash.outcome)]);
        // The frontier is monotone: as A gains, B loses.
        for pair in an.pareto.windows(2) {
            assert!(pair[0].utilities[0] >= pair[1].utilities[0] && pair[0].utilities[1] <= pair[1].utilities[1]);
        }
    }

    #[test]
    fn kalai_smorodinsky_balances_relative_gains() {
        let d = Domain::new("t", vec![Issue::Integer { name: "split".into(), min: 0, max: 10 }]);
        let a = Preferences::new(
            UtilityFunction::LinearAdditive {
                weights: vec![1.0],
                values: vec![ValueFunction::linear_between(0.0, 10.0, 0.0, 1.0)],
            },
            0.0,
        );
        let b = Preferences::new(
            UtilityFunction::LinearAdditive {
                weights: vec![1.0],
                values: vec![ValueFunction::linear_between(0.0, 10.0, 1.0, 0.0)],
            },
            0.0,
        );
        let an = Analysis::run(&d, &[&a, &b], 1);
        assert_eq!(an.pareto.len(), 11);
        let ks = an.kalai_smorodinsky.clone().unwrap();
        assert!((ks.utilities[0] - 0.5).abs() < 1e-12);
        let egal = an.egalitarian.clone().unwrap();
        assert!((egal.utilities[0] - 0.5).abs() < 1e-12);
        let dist = an.distances(&[0.3, 0.7]);
        assert!(dist.pareto.unwrap() < 1e-12);
        assert!((dist.nash.unwrap() - (0.08f64).sqrt()).abs() < 1e-9);
    }

    #[test]
    fn huge_spaces_are_merged_for_two_linear_parties_and_sampled_otherwise() {
        let issues: Vec<Issue> = (0..30).map(|i| Issue::Integer { name: format!("i{i}"), min: 0, max: 9 }).collect();
        let d = Domain::new("big", issues);
        let f = |inc: bool| {
            Preferences::new(
                UtilityFunction::LinearAdditive {
                    weights: vec![1.0 / 30.0; 30],
                    values: (0..30)
                        .map(|_| {
                            ValueFunction::linear_between(
                                0.0,
                                9.0,
                                if inc { 0.0 } else { 1.0 },
                                if inc { 1.0 } else { 0.0 },
                            )
                        })
                        .collect(),
                },
                0.0,
            )
        };
        let (a, b) = (f(true), f(false));
        // Two parties: merged exactly, 10^30 outcomes. Every outcome lies on
        // u_A + u_B = 1, but those with equal sums of values tie exactly,
        // so the partial frontier stays small.
        let an = Analysis::run(&d, &[&a, &b], 3);
        assert!(an.exact && an.note.is_none());
        let nash = an.nash.clone().unwrap();
        assert!((nash.utilities[0] - 0.5).abs() < 0.02, "{:?}", nash.utilities);
        // A real issue: sampled, and marked.
        let mut issues = d.issues.clone();
        issues[0] = Issue::Real { name: "i0".into(), min: 0.0, max: 9.0 };
        let d = Domain::new("big-real", issues);
        let an = Analysis::run(&d, &[&a, &b], 3);
        assert!(!an.exact);
        assert!(an.note.as_deref().unwrap().starts_with("approximate"));
        assert!(an.nash.is_some());
    }
}
