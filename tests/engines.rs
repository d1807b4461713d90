//! The direct and actor engines run the same sessions to the same results,
//! and the actor engine survives parties that fail.

use std::time::Duration;

use actix::prelude::*;
use negotium::core::protocol::{Action, Ending};
use negotium::core::scenario::Scenario;
use negotium::core::session::SessionResult;
use negotium::core::strategy::StrategySpec;
use negotium::core::workload::Workload;
use negotium::engine::actors::{ActorRunOptions, PartyActor, SessionActor, SessionReport, ToParty, run_sessions};
use negotium::engine::{SessionSpec, direct};

const SCENARIO: &str = r#"name = "engines"
seed = 5
[protocol]
rounds = 40
[[issues]]
name = "price"
type = "integer"
min = 0
max = 20
[[issues]]
name = "speed"
type = "real"
min = 0.0
max = 1.0
[[issues]]
name = "color"
type = "discrete"
values = ["red", "green", "blue"]
[[parties]]
name = "buyer"
strategy = "conceder"
reservation = 0.25
weights = { price = 0.5, speed = 0.2, color = 0.3 }
values.price = { linear = [1.0, 0.0] }
values.speed = { linear = [0.0, 1.0] }
values.color = { red = 1.0, green = 0.5, blue = 0.0 }
[[parties]]
name = "seller"
strategy = "boulware"
reservation = 0.35
weights = { price = 0.6, speed = 0.1, color = 0.3 }
values.price = { linear = [0.0, 1.0] }
values.speed = { triangular = [0.0, 0.3, 1.0] }
values.color = { red = 0.2, green = 1.0, blue = 0.6 }
"#;

/// The strategies each engine comparison runs, against one another.
fn strategy_specs() -> Vec<StrategySpec> {
    [
        "boulware",
        "conceder",
        "linear",
        "random",
        "tit-for-tat",
        "hardliner",
        "{ type = \"time-dependent\", e = 0.5, opponent_model = \"frequency\" }",
        "{ type = \"random\", p_accept = 0.05 }",
        "{ type = \"tit-for-tat\", kindness = 0.5, acceptance = \"ac_next\" }",
    ]
    .iter()
    .map(|s| StrategySpec::parse_cli(s).unwrap_or_else(|e| panic!("{s}: {e}")))
    .collect()
}

fn pairs() -> Vec<[StrategySpec; 2]> {
    let specs = strategy_specs();
    let mut out = Vec::new();
    for a in &specs {
        for b in &specs {
            out.push([a.clone(), b.clone()]);
        }
    }
    out
}

fn workload_spec(id: u64, seed_offset: u64, strategies: &[StrategySpec]) -> SessionSpec {
    let w = Workload::named("w1").expect("w1 exists");
    SessionSpec::new(
        id,
        w.domain(),
        w.preferences(seed_offset).to_vec(),
        strategies.to_vec(),
        w.deadline(),
        w.seed.wrapping_add(seed_offset),
    )
    .with_trace(true)
}

fn scenario() -> Scenario {
    Scenario::parse(SCENARIO, "x.toml").unwrap_or_else(|e| panic!("{e}"))
}

fn scenario_spec(sc: &Scenario, id: u64, seed: u64, strategies: &[StrategySpec]) -> SessionSpec {
    SessionSpec::new(id, sc.domain.clone(), sc.preferences(), strategies.to_vec(), sc.deadline, seed).with_trace(true)
}

/// Runs every spec on both engines and compares the results field by field.
fn assert_engines_agree(specs: Vec<SessionSpec>, opts: ActorRunOptions) -> Vec<SessionResult> {
    let direct_results: Vec<SessionResult> =
        specs.iter().map(|s| direct::run(s).unwrap_or_else(|e| panic!("direct: {e}"))).collect();
    let mut actor_results: Vec<SessionReport> = Vec::new();
    run_sessions(specs.clone(), opts, |r| actor_results.push(r)).expect("actors run");
    assert_eq!(actor_results.len(), specs.len(), "one report per session");
    for ((spec, d), (id, a)) in specs.iter().zip(&direct_results).zip(&actor_results) {
        let labels: Vec<String> = spec.strategies.iter().map(StrategySpec::to_string).collect();
        let what = format!("session {} (seed {}, {labels:?})", spec.id, spec.seed);
        assert_eq!(*id, spec.id, "{what}: reports come in spec order");
        assert!(!d.trace.is_empty(), "{what}: the trace was recorded");
        assert_eq!(d.trace, a.trace, "{what}: traces differ");
        assert_eq!(d.utilities, a.utilities, "{what}: utilities differ");
        assert_eq!(d.ending, a.ending, "{what}: endings differ");
        assert_eq!(d, a, "{what}: results differ");
        check_consistency(spec, d, &what);
    }
    direct_results
}

/// Invariants of any result.
fn check_consistency(spec: &SessionSpec, r: &SessionResult, what: &str) {
    let offers = r.trace.iter().filter(|t| matches!(t.action, Action::Offer(_))).count() as u64;
    assert_eq!(r.offers, offers, "{what}: offers = offers in the trace");
    assert_eq!(r.utilities.len(), spec.preferences.len(), "{what}");
    if let Some(rounds) = spec.deadline.rounds {
        assert!(r.rounds >= 1 && r.rounds <= rounds, "{what}: {} rounds", r.rounds);
    }
    match (&r.ending, &r.agreement) {
        (Ending::Agreement { outcome, .. }, Some(a)) => {
            assert_eq!(outcome, a, "{what}");
            for (p, u) in spec.preferences.iter().zip(&r.utilities) {
                assert_eq!(p.utility(&spec.domain, a), *u, "{what}: utility of the agreement");
            }
        }
        (Ending::Agreement { .. }, None) | (_, Some(_)) => {
            panic!("{what}: ending {:?} vs agreement {:?}", r.ending, r.agreement)
        }
        (_, None) => {
            for (p, u) in spec.preferences.iter().zip(&r.utilities) {
                assert_eq!(p.reservation_value, *u, "{what}: no agreement gives the reservation value");
            }
        }
    }
}

#[test]
fn engines_agree_on_the_workload() {
    // Every pair of strategies, three seeds each, all in flight together.
    let mut specs = Vec::new();
    for pair in pairs() {
        for seed_offset in [0, 7, 1234] {
            let id = specs.len() as u64;
            specs.push(workload_spec(id, seed_offset, &pair));
        }
    }
    let n = specs.len();
    let results = assert_engines_agree(specs, ActorRunOptions { concurrency: 64, arbiters: 3, ..Default::default() });
    assert_eq!(results.len(), n);
    let endings: std::collections::BTreeSet<&str> = results.iter().map(|r| r.ending.label()).collect();
    assert!(endings.contains("agreement") && endings.contains("deadline"), "{endings:?}");
}

#[test]
fn engines_agree_on_a_parsed_scenario() {
    // A real-valued issue makes sessions slower (debug builds), so each
    // strategy meets two others here rather than all of them, on both sides.
    let sc = scenario();
    let all = strategy_specs();
    let n = all.len();
    let mut specs = Vec::new();
    for k in 0..n {
        for pair in [[all[k].clone(), all[(k + 1) % n].clone()], [all[(k + 3) % n].clone(), all[k].clone()]] {
            for seed in [sc.seed, u64::MAX] {
                let id = 1000 + specs.len() as u64;
                specs.push(scenario_spec(&sc, id, seed, &pair));
            }
        }
    }
    // Few sessions in flight and one arbiter: results still come in order.
    assert_engines_agree(specs, ActorRunOptions { concurrency: 3, arbiters: 1, ..Default::default() });
}

/// A memory budget smaller than one session: they run one at a time (one
/// always may), with the same results in the same order.
#[test]
fn a_memory_budget_below_one_session_runs_them_one_at_a_time() {
    let pair = [StrategySpec::named("boulware"), StrategySpec::named("conceder")];
    let specs: Vec<SessionSpec> = (0..12).map(|j| workload_spec(j, 0, &pair)).collect();
    assert!(specs[0].memory_estimate() > 1_000, "a W1 party's index holds 12 kB");
    assert_engines_agree(specs, ActorRunOptions { concurrency: 8, arbiters: 2, memory: 1 });
}

#[test]
fn seeds_matter_for_random_strategies() {
    let random = StrategySpec::named("random");
    let specs: Vec<SessionSpec> =
        (0..10).map(|j| workload_spec(j, 0, &[random.clone(), StrategySpec::named("boulware")])).collect();
    let specs: Vec<SessionSpec> = specs
        .into_iter()
        .enumerate()
        .map(|(j, mut s)| {
            s.seed = 1000 + j as u64;
            s
        })
        .collect();
    let results = assert_engines_agree(specs, ActorRunOptions { concurrency: 4, arbiters: 2, ..Default::default() });
    let distinct: std::collections::BTreeSet<String> = results.iter().map(|r| format!("{:?}", r.trace)).collect();
    assert!(distinct.len() > 1, "different seeds, same preferences: random traces should differ");
}

#[test]
fn engines_agree_with_three_parties() {
    let text = format!(
        "{SCENARIO}{}",
        r#"[[parties]]
name = "broker"
strategy = "linear"
reservation = 0.1
weights = { price = 0.4, speed = 0.4, color = 0.2 }
values.price = { triangular = [0.0, 10.0, 20.0] }
values.speed = { constant = 0.7 }
values.color = { red = 0.5, green = 0.0, blue = 1.0 }
"#
    );
    let sc = Scenario::parse(&text, "x.toml").unwrap_or_else(|e| panic!("{e}"));
    let specs_all = strategy_specs();
    let mut specs = Vec::new();
    for (k, a) in specs_all.iter().enumerate() {
        let b = &specs_all[(k + 1) % specs_all.len()];
        let c = &specs_all[(k + 4) % specs_all.len()];
        for seed in [3, 4] {
            let id = specs.len() as u64;
            specs.push(scenario_spec(&sc, id, seed, &[a.clone(), b.clone(), c.clone()]));
        }
    }
    assert_engines_agree(specs, ActorRunOptions { concurrency: 8, arbiters: 2, ..Default::default() });
}

#[test]
fn hardliners_end_by_deadline_with_reservation_values() {
    let hard = StrategySpec::named("hardliner");
    let sc = scenario();
    let specs = vec![
        workload_spec(0, 3, &[hard.clone(), hard.clone()]),
        scenario_spec(&sc, 1, 42, &[hard.clone(), hard.clone()]),
    ];
    let results =
        assert_engines_agree(specs.clone(), ActorRunOptions { concurrency: 2, arbiters: 1, ..Default::default() });
    for (spec, r) in specs.iter().zip(&results) {
        assert_eq!(r.ending, Ending::Deadline);
        assert_eq!(r.agreement, None);
        assert_eq!(r.rounds, spec.deadline.rounds.unwrap());
        let reservations: Vec<f64> = spec.preferences.iter().map(|p| p.reservation_value).collect();
        assert_eq!(r.utilities, reservations);
        // Every turn is an offer: two per round.
        assert_eq!(r.offers, 2 * u64::from(spec.deadline.rounds.unwrap()));
    }
}

#[test]
fn bad_strategy_fails_before_any_actor_exists() {
    let spec = workload_spec(0, 0, &[StrategySpec::named("genius"), StrategySpec::named("boulware")]);
    let err = direct::run(&spec).expect_err("direct refuses");
    assert!(err.to_string().contains("unknown strategy `genius`"), "{err}");
    let mut called = false;
    let err = run_sessions(vec![spec], ActorRunOptions::default(), |_| called = true).expect_err("actors refuse");
    assert!(err.to_string().contains("unknown strategy `genius`"), "{err}");
    assert!(!called);
}

#[test]
fn empty_batch_returns() {
    let mut called = false;
    run_sessions(Vec::new(), ActorRunOptions { concurrency: 4, arbiters: 1, ..Default::default() }, |_| called = true)
        .unwrap();
    assert!(!called);
}

// ---------------------------------------------------------------- failing parties

/// How a test party misbehaves.
#[derive(Clone, Copy, Debug)]
enum Fault {
    /// `Err("boom")` on every turn.
    ErrOnTurn,
    /// `Ok(None)` on a turn: no action.
    NoAction,
    /// `Err` when the session starts.
    ErrOnStart,
    /// Stops itself when the session starts, so its mailbox closes.
    StopOnStart,
    /// An offer that is not in the domain.
    BadOffer,
    /// Never answers a turn.
    Silent,
}

struct Faulty(Fault);

impl Actor for Faulty {
    type Context = Context<Self>;
}

impl Handler<ToParty> for Faulty {
    type Result = ResponseFuture<Result<Option<Action>, String>>;

    fn handle(&mut self, msg: ToParty, ctx: &mut Context<Self>) -> Self::Result {
        if let (ToParty::Turn(..), Fault::Silent) = (&msg, self.0) {
            return Box::pin(std::future::pending());
        }
        let answer = match (msg, self.0) {
            (ToParty::Start(_), Fault::ErrOnStart) => Err("boom at start".into()),
            (ToParty::Start(_), Fault::StopOnStart) => {
                ctx.stop();
                Ok(None)
            }
            (ToParty::Start(_), _) => Ok(None),
            (ToParty::Turn(..), Fault::ErrOnTurn) => Err("boom".into()),
            (ToParty::Turn(..), Fault::BadOffer) => {
                Ok(Some(Action::Offer(negotium::core::domain::Outcome::from(Vec::new()))))
            }
            (ToParty::Turn(..), _) => Ok(None),
            (ToParty::Finish(_), _) => {
                ctx.stop();
                Ok(None)
            }
        };
        Box::pin(std::future::ready(answer))
    }
}

/// Runs `spec` with the faulty party at position `faulty_at` and a local
/// `PartyActor` for the other; returns the report or panics after 10 s.
fn run_with_fault(spec: &SessionSpec, fault: Fault, faulty_at: usize) -> SessionReport {
    let spec = spec.clone();
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    // A thread of its own, so that a hang fails the test instead of blocking it.
    std::thread::spawn(move || {
        let report = System::new().block_on(async move {
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<SessionReport>();
            let mut strategies = spec.build_strategies().expect("valid strategies").into_iter();
            let endpoints: Vec<Recipient<ToParty>> = (0..spec.strategies.len())
                .map(|k| {
                    let s = strategies.next().unwrap();
                    if k == faulty_at {
                        Faulty(fault).start().recipient()
                    } else {
                        PartyActor::new(s).start().recipient()
                    }
                })
                .collect();
            SessionActor::new(&spec, endpoints, tx).expect("one endpoint per party").start();
            rx.recv().await.expect("a report")
        });
        let _ = done_tx.send(report);
    });
    done_rx.recv_timeout(Duration::from_secs(10)).unwrap_or_else(|_| panic!("{fault:?}: no report within 10 s"))
}

fn violation_of(r: &SessionResult) -> (usize, &str) {
    match &r.ending {
        Ending::Violation { party, reason } => (*party, reason.as_str()),
        other => panic!("expected a violation, got {other:?}"),
    }
}

#[test]
fn failing_party_ends_the_session_with_a_violation() {
    let strategies = [StrategySpec::named("boulware"), StrategySpec::named("conceder")];
    for faulty_at in [0, 1] {
        let spec = workload_spec(77, 5, &strategies);
        let (id, r) = run_with_fault(&spec, Fault::ErrOnTurn, faulty_at);
        assert_eq!(id, 77);
        let (party, reason) = violation_of(&r);
        assert_eq!(party, faulty_at);
        assert!(reason.contains("boom"), "{reason}");
        assert_eq!(r.agreement, None);
        assert_eq!(r.ending.label(), "violation");
        let reservations: Vec<f64> = spec.preferences.iter().map(|p| p.reservation_value).collect();
        assert_eq!(r.utilities, reservations);
        // The faulty party fails its first turn: only the other one's opening
        // offer (if it moves first) is in the trace.
        assert_eq!(r.trace.len(), faulty_at);
        assert_eq!(r.offers as usize, faulty_at);
    }
}

#[test]
fn other_party_faults_are_violations_too() {
    let strategies = [StrategySpec::named("linear"), StrategySpec::named("linear")];
    let spec = workload_spec(5, 1, &strategies);
    let cases = [
        (Fault::NoAction, "without an action"),
        (Fault::ErrOnStart, "boom at start"),
        (Fault::StopOnStart, "unreachable"),
        (Fault::BadOffer, "outside the domain"),
    ];
    for (fault, needle) in cases {
        for faulty_at in [0, 1] {
            let (_, r) = run_with_fault(&spec, fault, faulty_at);
            let (party, reason) = violation_of(&r);
            assert_eq!(party, faulty_at, "{fault:?}");
            assert!(reason.contains(needle), "{fault:?}: {reason}");
            assert_eq!(r.agreement, None, "{fault:?}");
        }
    }
}

#[test]
fn session_actor_with_local_parties_matches_direct() {
    // The building blocks used directly give what run_sessions and direct give.
    let sc = scenario();
    let spec = scenario_spec(&sc, 9, 123, &[StrategySpec::named("random"), StrategySpec::named("tit-for-tat")]);
    let expected = direct::run(&spec).unwrap();
    let got = System::new().block_on({
        let spec = spec.clone();
        async move {
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<SessionReport>();
            let endpoints =
                spec.build_strategies().unwrap().into_iter().map(|s| PartyActor::new(s).start().recipient()).collect();
            SessionActor::new(&spec, endpoints, tx).expect("one endpoint per party").start();
            rx.recv().await.unwrap()
        }
    });
    assert_eq!(got.0, 9);
    assert_eq!(got.1, expected);
}

/// Two specs that share an id must still both be reported (in spec order),
/// not hang: `run_sessions` tags sessions by position, not by id.
#[test]
fn duplicate_session_ids_are_all_reported() {
    let strategies = [StrategySpec::named("boulware"), StrategySpec::named("conceder")];
    let specs: Vec<SessionSpec> = (0..3).map(|j| workload_spec(0, j, &strategies)).collect();
    let expected: Vec<SessionResult> = specs.iter().map(|s| direct::run(s).unwrap()).collect();
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut got = Vec::new();
        let _ = run_sessions(specs, ActorRunOptions { concurrency: 4, arbiters: 1, ..Default::default() }, |(_, r)| {
            got.push(r)
        });
        let _ = done_tx.send(got);
    });
    let got = done_rx.recv_timeout(Duration::from_secs(10)).expect("run_sessions hung on duplicate session ids");
    assert_eq!(got, expected);
}

#[test]
fn a_silent_party_is_timed_out_not_waited_for() {
    let strategies = [StrategySpec::named("boulware"), StrategySpec::named("conceder")];
    let mut spec = workload_spec(3, 2, &strategies);
    spec.turn_timeout = Duration::from_millis(200);
    for faulty_at in [0, 1] {
        let (_, r) = run_with_fault(&spec, Fault::Silent, faulty_at);
        let (party, reason) = violation_of(&r);
        assert_eq!(party, faulty_at);
        assert!(reason.contains("no answer within 0.2 s"), "{reason}");
    }
}

#[test]
fn silence_past_a_wall_deadline_is_a_deadline_not_a_violation() {
    let strategies = [StrategySpec::named("boulware"), StrategySpec::named("conceder")];
    let mut spec = workload_spec(4, 2, &strategies);
    spec.deadline = negotium::core::protocol::Deadline { rounds: None, seconds: Some(0.3) };
    let (_, r) = run_with_fault(&spec, Fault::Silent, 1);
    assert_eq!(r.ending, Ending::Deadline);
    assert_eq!(r.agreement, None);
}
