//! Criterion benches for the hot paths: one W negotiation on the direct path
//! (utility functions and parties built inside, as the peer times it), the
//! inverse utility (the enumerating index, and the split W4 parties get),
//! and the Pareto analysis.
//!
//!     cargo bench --bench hot_paths

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use negotium::core::analysis::Analysis;
use negotium::core::inverse::{Candidates, Inverse, OutcomeIndex};
use negotium::core::rng::SplitMix64;
use negotium::core::strategy::StrategySpec;
use negotium::core::workload::Workload;
use negotium::engine::{SessionSpec, direct};

fn spec(w: &Workload, j: u64) -> SessionSpec {
    SessionSpec::new(
        j,
        w.domain(),
        w.preferences(j).to_vec(),
        vec![StrategySpec::named("boulware"), StrategySpec::named("conceder")],
        w.deadline(),
        w.seed + j,
    )
}

fn negotiation(c: &mut Criterion) {
    for name in ["w1", "w4"] {
        let w = Workload::named(name).expect("known workload");
        let mut j = 0u64;
        c.bench_function(&format!("{name}_boulware_conceder_negotiation"), |b| {
            b.iter(|| {
                j += 1;
                black_box(direct::run(&spec(&w, j % 200)).expect("valid strategies"))
            })
        });
    }
}

fn inverse_index(c: &mut Criterion) {
    let w = Workload::named("w4").expect("known workload");
    let d = w.domain();
    let [a, _] = w.preferences(0);
    c.bench_function("w4_outcome_index_build_100k", |b| {
        b.iter(|| black_box(OutcomeIndex::build(Candidates::All(d.clone()), &d, &a)))
    });
    let idx = OutcomeIndex::build(Candidates::All(d.clone()), &d, &a);
    c.bench_function("w4_worst_at_or_above", |b| {
        let mut t = 0.0;
        b.iter(|| {
            t = (t + 0.0137) % 1.0;
            black_box(idx.worst_at_or_above(t))
        })
    });
}

/// What a W4 party really builds and asks (the split: 10 prefixes against
/// 10^4 suffixes): one build per party per negotiation, a query per turn.
fn inverse_split(c: &mut Criterion) {
    let w = Workload::named("w4").expect("known workload");
    let d = w.domain();
    let [a, _] = w.preferences(0);
    let deadline = w.deadline();
    let build = || Inverse::for_party(&d, &a, &deadline, &mut SplitMix64::new(1));
    assert!(matches!(build(), Inverse::Split(_)), "W4 splits");
    c.bench_function("w4_split_build", |b| b.iter(|| black_box(build())));
    let inv = build();
    c.bench_function("w4_split_nearest", |b| {
        let mut t = 0.0;
        b.iter(|| {
            t = (t + 0.0137) % 1.0;
            black_box(inv.nearest(t, 1.0, 1e-6))
        })
    });
}

fn analysis(c: &mut Criterion) {
    for name in ["w1", "w4"] {
        let w = Workload::named(name).expect("known workload");
        let d = w.domain();
        let [a, b] = w.preferences(0);
        c.bench_function(&format!("{name}_analysis_pareto_nash_ks"), |bench| {
            bench.iter(|| black_box(Analysis::run(&d, &[&a, &b], 1)))
        });
    }
}

criterion_group!(benches, negotiation, inverse_index, inverse_split, analysis);
criterion_main!(benches);
