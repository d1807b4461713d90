//! Many sessions as actors in one actix system: the batch shape of the
//! actor engine (`negotium run --engine actors`, benchmarks, the engine
//! tests that compare it with the direct loop).

use std::collections::BTreeMap;

use actix::prelude::*;
use tokio::sync::mpsc;

use super::options::ActorRunOptions;
use super::party::PartyActor;
use super::session::{SessionActor, SessionReport};
use crate::core::strategy::{Strategy, StrategyError};
use crate::engine::SessionSpec;

/// Starts a session whose parties are local actors, on the current arbiter.
/// A spec that cannot become a session with these strategies is refused
/// before any actor starts.
pub fn start_local_session(
    spec: &SessionSpec,
    strategies: Vec<Box<dyn Strategy>>,
    report: mpsc::UnboundedSender<SessionReport>,
) -> Result<(), StrategyError> {
    let session = SessionActor::prepare(spec, strategies.len(), report)?;
    start_prepared(session, strategies);
    Ok(())
}

/// Starts the parties and then the session, on the current arbiter. The
/// session was prepared for exactly these strategies.
fn start_prepared(session: SessionActor, strategies: Vec<Box<dyn Strategy>>) {
    let endpoints = strategies.into_iter().map(|s| PartyActor::new(s).start().recipient()).collect();
    session.attach(endpoints).start();
}

/// Which sessions may start: at most `concurrency` in flight, holding no
/// more estimated bytes than `memory` together, except that one may always
/// run (a session larger than the whole budget runs alone).
#[derive(Debug)]
struct Admission {
    concurrency: usize,
    memory: u64,
    in_flight: usize,
    bytes: u64,
}

impl Admission {
    fn new(concurrency: usize, memory: u64) -> Self {
        Self { concurrency: concurrency.max(1), memory, in_flight: 0, bytes: 0 }
    }

    fn admits(&self, bytes: u64) -> bool {
        self.in_flight == 0 || (self.in_flight < self.concurrency && self.bytes.saturating_add(bytes) <= self.memory)
    }

    fn start(&mut self, bytes: u64) {
        self.in_flight += 1;
        self.bytes = self.bytes.saturating_add(bytes);
    }

    fn end(&mut self, bytes: u64) {
        self.in_flight -= 1;
        self.bytes = self.bytes.saturating_sub(bytes);
    }
}

/// Runs sessions as actors in a fresh actix system and hands each result to
/// `on_result` in the order of `specs`. Specs are pulled lazily, at most
/// `concurrency` at a time and within `memory` by their estimates
/// ([`Admission`]), so millions of sessions need no more memory than those
/// in flight. Blocks the calling thread. A spec that cannot become a
/// session, or whose strategies do not build, stops the launching of new
/// sessions; those already running finish and are reported, then the error
/// is returned.
pub fn run_sessions(
    specs: impl IntoIterator<Item = SessionSpec>,
    opts: ActorRunOptions,
    mut on_result: impl FnMut(SessionReport),
) -> Result<(), StrategyError> {
    let mut specs = specs.into_iter().peekable();
    // A bad strategy name fails before any actor exists.
    if let Some(first) = specs.peek() {
        first.build_strategies()?;
    }
    let system = System::new();
    system.block_on(async move {
        // Each owns one thread; sessions are dealt round-robin, a session
        // and its local parties on the same one, so a turn is a
        // same-thread message.
        let arbiters: Vec<Arbiter> = (0..opts.arbiters.max(1)).map(|_| Arbiter::new()).collect();
        // Every session's report comes back on this one channel. One report
        // per session launched, and at most `concurrency` are launched
        // ahead of the reports read: bounded by construction.
        let (tx, mut rx) = mpsc::unbounded_channel::<SessionReport>();
        // Sessions are tagged with their position internally, so ids chosen
        // by the caller need not be unique.
        // Per session launched: the caller's id, and the bytes it was
        // admitted with.
        let mut launched: Vec<(u64, u64)> = Vec::new();
        let mut admission = Admission::new(opts.concurrency, opts.memory);
        let mut error: Option<StrategyError> = None;
        // The next spec's estimate, kept while it waits for room.
        let mut pending: Option<u64> = None;
        let mut launch =
            |admission: &mut Admission, launched: &mut Vec<(u64, u64)>, error: &mut Option<StrategyError>| loop {
                if error.is_some() {
                    return;
                }
                let Some(next) = specs.peek() else { return };
                let bytes = *pending.get_or_insert_with(|| next.memory_estimate());
                if !admission.admits(bytes) {
                    return;
                }
                pending = None;
                let Some(mut spec) = specs.next() else { return };
                let k = launched.len();
                let original = spec.id;
                spec.id = k as u64;
                // Checked here, on the launching thread, so that a session
                // that cannot start is this call's error and never a report
                // that the loop below would wait for forever.
                let prepared = spec
                    .build_strategies()
                    .and_then(|s| SessionActor::prepare(&spec, s.len(), tx.clone()).map(|session| (session, s)));
                let (session, strategies) = match prepared {
                    Ok(p) => p,
                    Err(e) => {
                        *error = Some(e);
                        return;
                    }
                };
                launched.push((original, bytes));
                admission.start(bytes);
                arbiters[k % arbiters.len()].spawn_fn(move || start_prepared(session, strategies));
            };
        launch(&mut admission, &mut launched, &mut error);
        // Results arrive in completion order; hand them out in spec order.
        let mut held: BTreeMap<usize, SessionReport> = BTreeMap::new();
        let mut next = 0usize;
        while next < launched.len() {
            let Some((k, result)) = rx.recv().await else { break };
            let k = k as usize;
            held.insert(k, (launched[k].0, result));
            admission.end(launched[k].1);
            launch(&mut admission, &mut launched, &mut error);
            while let Some(entry) = held.first_entry() {
                if *entry.key() != next {
                    break;
                }
                on_result(entry.remove());
                next += 1;
            }
        }
        for a in arbiters {
            a.stop();
        }
        match error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::Admission;

    #[test]
    fn sessions_start_within_the_count_and_the_bytes_and_one_always_may() {
        let mut a = Admission::new(3, 100);
        // One always runs, even larger than the whole budget.
        assert!(a.admits(500));
        a.start(500);
        assert!(!a.admits(1));
        a.end(500);
        for _ in 0..2 {
            assert!(a.admits(40));
            a.start(40);
        }
        // 80 held: 30 more would pass the bytes.
        assert!(!a.admits(30) && a.admits(20));
        a.start(20);
        // Three in flight: the count stops even what fits.
        assert!(!a.admits(0));
        a.end(40);
        assert!(a.admits(40) && !a.admits(41));
    }
}
