//! Every native agent: plays whole sessions within the rules, repeats
//! itself for a seed, never takes less than its reservation value; and the
//! properties each agent's description promises.

use std::sync::Arc;

use proptest::prelude::{ProptestConfig, any, prop, prop_assert_eq, proptest};

use super::*;
use crate::core::domain::{Domain, Issue};
use crate::core::protocol::{Action, Deadline, Ending};
use crate::core::session::{SessionResult, SessionRun};
use crate::core::strategy::{PartyContext, StrategySpec};
use crate::core::utility::Preferences;
use crate::core::workload::Workload;

fn spec(name: &str) -> Box<dyn Strategy> {
    StrategySpec::named(name).build().unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// One session of W1 negotiation `j` between `a` and `b`, traced.
fn play(
    mut a: Box<dyn Strategy>,
    mut b: Box<dyn Strategy>,
    j: u64,
    rounds: u32,
) -> (SessionResult, [Arc<Preferences>; 2]) {
    let w = Workload::named("w1").unwrap();
    let prefs = w.preferences(j);
    let mut run = SessionRun::new(w.domain(), prefs.to_vec(), Deadline::rounds(rounds), true).unwrap();
    let contexts = run.contexts(j);
    a.init(&contexts[0]);
    b.init(&contexts[1]);
    let mut parties = [a, b];
    while let Some(req) = run.next_turn(0.0) {
        let s = &mut parties[req.party];
        for o in &req.observations {
            s.observe(o);
        }
        let action = s.act(&req.turn);
        let _ = run.apply(req.party, action, 0.0);
    }
    (run.finish(), prefs)
}

fn names() -> Vec<&'static str> {
    AGENTS.iter().map(|a| a.name).collect()
}

#[test]
fn every_agent_plays_within_the_rules_and_repeats_itself() {
    for name in names() {
        for opponent in ["boulware", "conceder", name] {
            for j in 0..4 {
                let (r, prefs) = play(spec(name), spec(opponent), j, 100);
                assert!(!matches!(r.ending, Ending::Violation { .. }), "{name} vs {opponent}: {:?}", r.ending);
                for (p, u) in r.utilities.iter().enumerate() {
                    assert!(*u >= prefs[p].reservation_value - 1e-12, "{name} vs {opponent}: party {p} got {u}");
                }
                let (again, _) = play(spec(name), spec(opponent), j, 100);
                assert_eq!(r.trace, again.trace, "{name} vs {opponent}, negotiation {j}: the same seed, another trace");
            }
        }
    }
}

#[test]
fn agents_agree_with_a_conceder_on_w1() {
    // W1's parties are opposed on every issue but weigh issues differently:
    // every agent here finds a deal with an opponent that concedes early.
    for name in names() {
        let agreed = (0..10)
            .filter(|&j| matches!(play(spec(name), spec("conceder"), j, 100).0.ending, Ending::Agreement { .. }))
            .count();
        assert!(agreed >= 8, "{name} agreed {agreed} of 10 times with conceder");
    }
}

#[test]
fn names_and_parameters_are_checked() {
    for (text, needle) in [
        ("{ type = \"hardheaded\", e = 0 }", "`e` must be a number in [0.001, 10]"),
        ("{ type = \"hardheaded\", speed = 1 }", "valid parameters: e (concession exponent"),
        ("{ type = \"hardheaded\", top_bids = 2.5 }", "must be a whole number in [1, 1000]"),
        ("{ type = \"micro\", e = 1 }", "valid parameters: none (it takes no parameters)"),
        ("{ type = \"ponpokoagent\", pattern = 7 }", "must be a whole number in [-1, 4]"),
        ("{ type = \"agentk\", tremor = \"x\" }", "`tremor` must be a number"),
    ] {
        let err = StrategySpec::parse_cli(text).unwrap().build().err().unwrap().to_string();
        assert!(err.contains(needle), "{text}: {err}");
    }
    for spelling in [
        "HardHeaded",
        "hard-headed",
        "NiceTitForTat",
        "MiCRO",
        "PonPokoAgent",
        "AgentK",
        "IAMhaggler2011",
        "AgreeableAgent2018",
    ] {
        assert!(StrategySpec::named(spelling).build().is_ok(), "{spelling}");
    }
    let unknown = StrategySpec::named("agentq").build().err().unwrap().to_string();
    for name in names() {
        assert!(unknown.contains(name), "{unknown}");
    }
}

#[test]
fn hardheaded_concedes_late_from_just_below_its_best() {
    let hh = hardheaded::HardHeaded::new(0.05, 0.05, 0.585, 4);
    let seat = seat_on_w1();
    let (max, low) = (seat.max_utility, 0.585_f64.max(seat.min_utility));
    assert!((hh.target(&seat, 0.0) - (max - 0.05 * (max - low))).abs() < 1e-12);
    assert!(hh.target(&seat, 0.8) > max - 0.07 * (max - low), "still hard at t = 0.8");
    let mut last = f64::INFINITY;
    for k in 0..=100 {
        let t = hh.target(&seat, k as f64 / 100.0);
        assert!(t <= last && t >= low - 1e-12);
        last = t;
    }
    assert!((last - low).abs() < 1e-9, "reaches its minimum at the deadline");
}

fn seat_on_w1() -> seat::Seat {
    let w = Workload::named("w1").unwrap();
    let prefs = w.preferences(0);
    let run = SessionRun::new(w.domain(), prefs.to_vec(), Deadline::rounds(100), false).unwrap();
    let ctx: PartyContext = run.contexts(0).remove(0);
    seat::Seat::new(&ctx, None)
}

#[test]
fn micro_concedes_only_as_often_as_its_opponent_makes_new_offers() {
    // Against a hardliner (one offer, repeated) MiCRO never goes past its second bid.
    let (r, _) = play(spec("micro"), spec("hardliner"), 3, 100);
    let mut mine: Vec<_> = r
        .trace
        .iter()
        .filter(|e| e.party == 0)
        .filter_map(|e| match &e.action {
            Action::Offer(o) => Some(o.clone()),
            _ => None,
        })
        .collect();
    mine.dedup();
    let distinct: std::collections::HashSet<_> = mine.iter().map(seat::outcome_key).collect();
    assert!(distinct.len() <= 2, "{} distinct bids against one repeated offer", distinct.len());
    // Against itself each concedes in step with the other, so they meet.
    let (r, _) = play(spec("micro"), spec("micro"), 3, 1000);
    assert!(matches!(r.ending, Ending::Agreement { .. }), "{:?}", r.ending);
}

#[test]
fn iamhaggler_extrapolates_the_opponents_trend() {
    let xs: Vec<f64> = (0..10).map(|k| 0.05 + 0.05 * k as f64).collect();
    let ys: Vec<f64> = xs.iter().map(|x| 0.3 + 0.4 * x).collect();
    let p = iamhaggler::predict(&xs, &ys, &[0.25, 0.9]);
    assert!((p[0].0 - 0.4).abs() < 1e-3 && p[0].1 < 0.03, "inside the data: {:?}", p[0]);
    assert!((p[1].0 - 0.66).abs() < 1e-2, "the line continues: {:?}", p[1]);
    assert!(p[1].1 > p[0].1, "less sure further out");
    assert!((iamhaggler::normal_cdf(0.0) - 0.5).abs() < 1e-9);
    assert!((iamhaggler::normal_cdf(1.959_964) - 0.975).abs() < 1e-6);
    assert!((iamhaggler::normal_cdf(-1.959_964) - 0.025).abs() < 1e-6);
}

#[test]
fn ponpoko_thresholds_are_ordered() {
    for p in 0..ponpoko::PATTERNS {
        for k in 0..=1000 {
            let (high, low) = ponpoko::thresholds(p, k as f64 / 1000.0);
            assert!(high >= low && high <= 1.0 && low >= 0.0, "pattern {p} at {k}: {high} {low}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// MiCRO's walk down visits every rational outcome once, best first,
    /// whatever the domain (ties and all).
    #[test]
    fn micro_walks_down_every_rational_outcome_once(
        sizes in prop::collection::vec(1u32..6, 1..4),
        weights in prop::collection::vec(0.0f64..1.0, 3),
        coarse in any::<bool>(),
        rv in 0.0f64..0.6,
    ) {
        let issues: Vec<Issue> = sizes.iter().enumerate().map(|(i, &n)| Issue::Integer { name: format!("i{i}"), min: 0, max: n as i64 }).collect();
        let domain = Arc::new(Domain::new("d", issues));
        let w: Vec<f64> = weights[..sizes.len()].iter().map(|x| if coarse { (x * 2.0).round() / 2.0 } else { *x }).collect();
        let values = sizes
            .iter()
            .map(|&n| crate::core::utility::ValueFunction::Table { utilities: (0..=n).map(|x| x as f64 / n.max(1) as f64).collect() })
            .collect();
        let total: f64 = w.iter().sum::<f64>().max(1e-9);
        let w: Vec<f64> = w.iter().map(|x| x / total).collect();
        let prefs = Arc::new(Preferences::new(crate::core::utility::UtilityFunction::LinearAdditive { weights: w, values }, rv));
        let ctx = PartyContext {
            domain: domain.clone(),
            preferences: prefs.clone(),
            party: 0,
            n_parties: 2,
            deadline: Deadline::rounds(100),
            seed: 1,
            index: None,
            bids: Default::default(),
        };
        let walked = micro::walk(&ctx);
        let mut all: Vec<f64> = domain.outcomes().unwrap().map(|o| prefs.utility(&domain, &o)).filter(|u| *u >= rv).collect();
        all.sort_by(|a, b| b.total_cmp(a));
        let got: Vec<f64> = walked.iter().map(|b| b.1).collect();
        prop_assert_eq!(&got, &all);
        let keys: std::collections::HashSet<_> = walked.iter().map(|b| seat::outcome_key(&b.0)).collect();
        prop_assert_eq!(keys.len(), walked.len());
    }
}
