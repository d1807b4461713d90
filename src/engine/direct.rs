//! The direct path: the protocol and strategies in one loop, no messages.

use std::time::Instant;

use super::SessionSpec;
use crate::core::session::SessionResult;
use crate::core::strategy::{Strategy, StrategyError};

/// Runs one session to its end on the calling thread. A spec that cannot
/// become a session (a strategy per party, a deadline that ends it) or
/// whose strategies do not build is an error before any party acts.
pub fn run(spec: &SessionSpec) -> Result<SessionResult, StrategyError> {
    let strategies = spec.build_strategies()?;
    run_with(spec, strategies)
}

/// Runs a session with strategies already built (e.g. learned policies),
/// one per party of `spec` in turn order; `spec.strategies` is not read.
pub fn run_with(spec: &SessionSpec, mut strategies: Vec<Box<dyn Strategy>>) -> Result<SessionResult, StrategyError> {
    let mut session = spec.session(strategies.len())?;
    let contexts = spec.contexts(&session);
    let bids: Vec<_> = contexts.iter().map(|c| c.bids.clone()).collect();
    for (strategy, ctx) in strategies.iter_mut().zip(contexts) {
        strategy.init(&ctx);
    }
    // Only wall-time deadlines read the clock; round deadlines stay pure.
    let start = spec.deadline.seconds.map(|_| Instant::now());
    let elapsed = || start.map_or(0.0, |s| s.elapsed().as_secs_f64());
    while let Some(req) = session.next_turn(elapsed()) {
        let strategy = &mut strategies[req.party];
        for obs in &req.observations {
            strategy.observe(obs);
        }
        let action = strategy.act(&req.turn);
        // Nobody watches a direct run: the session's own trace and counts
        // are all that an applied action feeds, whatever became of it.
        let _ = session.apply(req.party, action, elapsed());
    }
    let mut result = session.finish();
    result.bids_exact = bids.iter().map(|b| b.exact()).collect();
    result.bids_gap = bids.iter().map(|b| b.gap()).collect();
    for s in &mut strategies {
        s.finish(&result.ending);
    }
    Ok(result)
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::core::protocol::{Deadline, ProtocolError};
    use crate::core::strategy::StrategySpec;

    fn spec(parties: usize, strategies: usize, deadline: Deadline) -> SessionSpec {
        crate::engine::test_spec(parties, strategies, deadline)
    }

    #[test]
    fn a_spec_that_cannot_be_a_session_is_an_error_not_a_panic() {
        let r = Deadline::rounds(10);
        assert_eq!(run(&spec(2, 3, r)).err(), Some(StrategyError::PartyCount { strategies: 3, parties: 2 }));
        assert_eq!(run(&spec(3, 2, r)).err(), Some(StrategyError::PartyCount { strategies: 2, parties: 3 }));
        assert_eq!(run(&spec(1, 1, r)).err(), Some(ProtocolError::TooFewParties(1).into()));
        let endless = Deadline { rounds: None, seconds: Some(f64::NAN) };
        assert_eq!(run(&spec(2, 2, endless)).err(), Some(ProtocolError::BadDeadline.into()));
        // Strategies built by the caller are counted too.
        let built = spec(2, 1, r).build_strategies();
        assert!(built.is_err());
        let one = vec![StrategySpec::named("boulware").build().unwrap()];
        assert_eq!(run_with(&spec(2, 2, r), one).err(), Some(StrategyError::PartyCount { strategies: 1, parties: 2 }));
        assert!(run(&spec(2, 2, r)).is_ok());
    }
}
