//! The direct path: the protocol and strategies in one loop, no messages.

use std::time::Instant;

use super::SessionSpec;
use crate::core::session::{SessionResult, SessionRun};
use crate::core::strategy::{Strategy, StrategyError};

/// Runs one session to its end on the calling thread.
pub fn run(spec: &SessionSpec) -> Result<SessionResult, StrategyError> {
    let strategies = spec.build_strategies()?;
    Ok(run_with(spec, strategies))
}

/// Runs a session with strategies already built (e.g. learned policies).
pub fn run_with(spec: &SessionSpec, mut strategies: Vec<Box<dyn Strategy>>) -> SessionResult {
    let mut session = SessionRun::new(spec.domain.clone(), spec.preferences.clone(), spec.deadline, spec.record_trace);
    for (strategy, ctx) in strategies.iter_mut().zip(spec.contexts(&session)) {
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
        session.apply(req.party, action, elapsed());
    }
    let result = session.finish();
    for s in &mut strategies {
        s.finish(&result.ending);
    }
    result
}
