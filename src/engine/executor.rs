//! One way to run a batch of sessions, whatever runs them: [`Direct`] (the
//! protocol loop on a thread pool), [`Actors`] (sessions and parties as
//! actors) and, in `net::cluster::executor`, a cluster of nodes. `run`,
//! `bench` and `tournament` describe their sessions once, as [`Stage`]s and
//! [`Job`]s, and take whichever executor the command line chose.
//!
//! Results reach the caller on its own thread, one at a time, as they come:
//! the local executors hand them over in job order (a run's results file is
//! the same on either engine), a cluster in finishing order. Either way an
//! executor pulls jobs only as fast as results are taken, so a run of
//! millions holds only what is in flight.

use std::borrow::Cow;
use std::cell::Cell;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::mpsc::{channel, sync_channel};

use thiserror::Error;

use super::actors::{ActorRunOptions, run_sessions};
use super::{SessionSpec, direct, shared_indexes};
use crate::core::domain::Domain;
use crate::core::inverse::Inverse;
use crate::core::protocol::Deadline;
use crate::core::record;
use crate::core::scenario::Scenario;
use crate::core::session::SessionResult;
use crate::core::strategy::{StrategyError, StrategySpec};
use crate::core::utility::Preferences;

/// A scenario as its sessions meet it: the parties in turn order.
#[derive(Clone)]
pub struct Stage {
    pub name: String,
    pub domain: Arc<Domain>,
    pub party_names: Vec<String>,
    pub preferences: Vec<Arc<Preferences>>,
    pub deadline: Deadline,
    /// Per party, an outcome index shared by every session of this stage
    /// (empty: each session builds its own).
    pub indexes: Vec<Option<Arc<Inverse>>>,
}

impl Stage {
    pub fn of(scenario: &Scenario) -> Self {
        Self {
            name: scenario.name.clone(),
            domain: scenario.domain.clone(),
            party_names: scenario.parties.iter().map(|p| p.name.clone()).collect(),
            preferences: scenario.preferences(),
            deadline: scenario.deadline,
            indexes: Vec::new(),
        }
    }

    /// Builds each party's outcome index once for all the sessions of this
    /// stage: worth it when many sessions meet the same preferences in this
    /// process ([`Executor::shares_indexes`]).
    pub fn with_shared_indexes(mut self) -> Self {
        self.indexes = shared_indexes(&self.domain, &self.preferences);
        self
    }

    fn spec(&self, job: Job, trace: bool) -> SessionSpec {
        let mut spec = SessionSpec::new(
            job.key,
            self.domain.clone(),
            self.preferences.clone(),
            job.strategies,
            self.deadline,
            job.seed,
        )
        .with_trace(trace);
        spec.shared_indexes = self.indexes.clone();
        spec
    }
}

/// The stages a batch plays, by index. Most callers hold a `Vec<Stage>`;
/// a workload whose every session has preferences of its own builds each
/// stage when its session runs instead of all of them up front.
pub trait Stages: Sync {
    fn count(&self) -> usize;
    /// Stage `index` (< [`count`](Self::count)).
    fn stage(&self, index: u32) -> Cow<'_, Stage>;
}

impl Stages for Vec<Stage> {
    fn count(&self) -> usize {
        self.len()
    }

    fn stage(&self, index: u32) -> Cow<'_, Stage> {
        Cow::Borrowed(&self[index as usize])
    }
}

/// One session to run: its stage, the strategy of each party in turn
/// order, and its seed. `key` is the caller's name for it, handed back with
/// its result (and the session's id).
#[derive(Debug, Clone)]
pub struct Job {
    pub key: u64,
    pub stage: u32,
    pub strategies: Vec<StrategySpec>,
    pub seed: u64,
}

/// Jobs are pulled lazily, from another thread where an executor needs one.
pub type Jobs = Box<dyn Iterator<Item = Job> + Send>;

/// Where a cluster ran a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    pub node: String,
    /// 1 unless earlier attempts were lost with a node.
    pub attempts: u32,
}

/// A session's result, handed over once.
#[derive(Debug, Clone)]
pub struct Finished {
    pub key: u64,
    pub result: SessionResult,
    /// `None` for sessions run in this process.
    pub placed: Option<Placed>,
    /// The trace already written as the record's JSON text
    /// ([`crate::core::record::trace_text`]) by the worker that ran the
    /// session, its entries then dropped from `result` (a trace is most of
    /// a result's memory, and writing it most of a record's cost: done where
    /// the session ran, it spreads over the cores instead of queueing on
    /// the one thread that writes results). `None`: still in `result`.
    pub trace_text: Option<String>,
    /// No other result is waiting: a good moment to flush what was written,
    /// so that a run stopped now loses little, without a write per session
    /// while results pour in.
    pub caught_up: bool,
}

/// How a batch went, beyond its results (a cluster's nodes; empty locally).
#[derive(Debug, Default, Clone)]
pub struct Report {
    pub sessions: u64,
    /// Sessions that ran more than once because a node was lost.
    pub retried: u64,
    /// Every node that took part.
    pub nodes: Vec<String>,
    /// Nodes lost during the batch.
    pub lost: Vec<String>,
}

#[derive(Debug, Error)]
pub enum ExecError {
    /// A session's strategies do not build; `key` when the executor knows
    /// which session (the actor engine stops at the first without saying).
    #[error("{error}")]
    Strategy { key: Option<u64>, error: StrategyError },
    #[error("cannot start the thread pool: {0}")]
    Pool(String),
    #[error("cluster: {0}")]
    Cluster(String),
    /// The Python agent host failed (see `net::agent_host`).
    #[error("agent host: {0}")]
    Host(String),
    /// The caller's `on_done` refused a result: the batch stopped.
    #[error("stopped: {0}")]
    Stopped(String),
}

/// Called with each result; an error stops the batch.
pub type OnDone<'a> = dyn FnMut(Finished) -> Result<(), String> + 'a;

/// Runs batches of sessions.
pub trait Executor {
    /// What result records name as their `engine`.
    fn label(&self) -> &'static str;

    /// Whether sessions run in this process, where an outcome index built
    /// once serves every session of a stage ([`Stage::with_shared_indexes`]);
    /// remote nodes build their own.
    fn shares_indexes(&self) -> bool;

    /// Runs every job, calling `on_done` on this thread with each result.
    /// Blocks until all are handed over, the first failure, or `on_done`
    /// refusing one.
    fn execute(
        &self,
        stages: &dyn Stages,
        trace: bool,
        jobs: Jobs,
        on_done: &mut OnDone<'_>,
    ) -> Result<Report, ExecError>;
}

/// The protocol and strategies in one loop per session, on a thread pool.
#[derive(Debug, Clone, Copy, Default)]
pub struct Direct {
    /// Worker threads; `None`: every core.
    pub threads: Option<usize>,
}

/// Sessions run ahead of the results taken, at most: bounds memory (each
/// result may carry its whole trace) while keeping every core busy.
const IN_FLIGHT: usize = 4096;
/// Sessions per task once a batch is under way: one wake-up and one message
/// per chunk, not per session.
const MAX_CHUNK: usize = 32;

/// A chunk's results, or the first session of it whose strategies failed.
type ChunkResult = Result<Vec<(u64, SessionResult, Option<String>)>, ExecError>;

impl Executor for Direct {
    fn label(&self) -> &'static str {
        "direct"
    }

    fn shares_indexes(&self) -> bool {
        true
    }

    fn execute(
        &self,
        stages: &dyn Stages,
        trace: bool,
        mut jobs: Jobs,
        on_done: &mut OnDone<'_>,
    ) -> Result<Report, ExecError> {
        let mut builder = rayon::ThreadPoolBuilder::new();
        if let Some(n) = self.threads {
            builder = builder.num_threads(n);
        }
        let pool = builder.build().map_err(|e| ExecError::Pool(e.to_string()))?;
        // Chunks grow from one session to MAX_CHUNK: a batch of a handful
        // still spreads over every core, a long one pays little per session.
        // A credit per chunk in flight: the feeder waits for one before
        // pulling more jobs, the receiver returns it once the chunk is
        // handed over, so no more than IN_FLIGHT sessions are ever held.
        let credits = IN_FLIGHT / MAX_CHUNK;
        let (credit_tx, credit_rx) = sync_channel::<()>(credits);
        for _ in 0..credits {
            credit_tx.send(()).expect("room for every credit");
        }
        let (tx, rx) = channel::<(usize, ChunkResult)>();
        let mut sessions = 0u64;
        std::thread::scope(|threads| {
            let pool = &pool;
            threads.spawn(move || {
                // In place: this thread feeds the pool without taking one of
                // its workers; FIFO: earlier chunks run first, so few wait
                // to be handed over in order.
                pool.in_place_scope_fifo(|scope| {
                    let mut seq = 0;
                    while credit_rx.recv().is_ok() {
                        let chunk: Vec<Job> = jobs.by_ref().take((seq + 1).min(MAX_CHUNK)).collect();
                        if chunk.is_empty() {
                            break;
                        }
                        let tx = tx.clone();
                        scope.spawn_fifo(move |_| {
                            let _ = tx.send((seq, run_chunk(stages, trace, chunk)));
                        });
                        seq += 1;
                    }
                });
            });
            // Owned here: returning early drops them, the feeder's next wait
            // for a credit fails and it stops pulling jobs.
            let (rx, credit_tx) = (rx, credit_tx);
            let mut held: BTreeMap<usize, ChunkResult> = BTreeMap::new();
            let mut next = 0usize;
            while let Ok((seq, chunk)) = rx.recv() {
                held.insert(seq, chunk);
                while let Ok((seq, chunk)) = rx.try_recv() {
                    held.insert(seq, chunk);
                }
                while let Some(chunk) = held.remove(&next) {
                    next += 1;
                    let last_ready = !held.contains_key(&next);
                    let chunk = chunk?;
                    let n = chunk.len();
                    for (i, (key, result, trace_text)) in chunk.into_iter().enumerate() {
                        sessions += 1;
                        let caught_up = last_ready && i + 1 == n;
                        on_done(Finished { key, result, placed: None, caught_up, trace_text })
                            .map_err(ExecError::Stopped)?;
                    }
                    let _ = credit_tx.try_send(());
                }
            }
            Ok(())
        })?;
        Ok(Report { sessions, ..Report::default() })
    }
}

fn run_chunk(stages: &dyn Stages, trace: bool, chunk: Vec<Job>) -> ChunkResult {
    chunk
        .into_iter()
        .map(|job| {
            let key = job.key;
            let spec = stages.stage(job.stage).spec(job, trace);
            let mut r = direct::run(&spec).map_err(|error| ExecError::Strategy { key: Some(key), error })?;
            let text = trace.then(|| {
                let text = record::trace_text(&spec.domain, &spec.preferences, &r.trace);
                r.trace = Vec::new();
                text
            });
            Ok((key, r, text))
        })
        .collect()
}

/// Every session and party an actix actor, as remote parties and external
/// agents see them.
#[derive(Debug, Clone, Copy, Default)]
pub struct Actors {
    pub options: ActorRunOptions,
}

impl Executor for Actors {
    fn label(&self) -> &'static str {
        "actors"
    }

    fn shares_indexes(&self) -> bool {
        true
    }

    fn execute(
        &self,
        stages: &dyn Stages,
        trace: bool,
        jobs: Jobs,
        on_done: &mut OnDone<'_>,
    ) -> Result<Report, ExecError> {
        // The actor engine takes no refusal from its consumer: once one
        // comes, no new session is launched and those running are drained.
        let stopped = Cell::new(false);
        let mut refusal: Option<String> = None;
        let mut sessions = 0u64;
        let specs = jobs.take_while(|_| !stopped.get()).map(|job| stages.stage(job.stage).spec(job, trace));
        run_sessions(specs, self.options, |(key, result)| {
            if stopped.get() {
                return;
            }
            sessions += 1;
            // run_sessions cannot tell whether more results wait: the
            // caller's writer flushes when full and at the end.
            if let Err(e) = on_done(Finished { key, result, placed: None, caught_up: false, trace_text: None }) {
                refusal = Some(e);
                stopped.set(true);
            }
        })
        .map_err(|error| ExecError::Strategy { key: None, error })?;
        match refusal {
            Some(e) => Err(ExecError::Stopped(e)),
            None => Ok(Report { sessions, ..Report::default() }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::workload::Workload;

    fn stages_and_jobs(n: u64, pair: [&str; 2]) -> (Vec<Stage>, Vec<Job>) {
        let w = Workload::named("w1").expect("w1 exists");
        let stages = (0..n)
            .map(|j| Stage {
                name: format!("w1-{j}"),
                domain: w.domain(),
                party_names: vec!["A".into(), "B".into()],
                preferences: w.preferences(j).to_vec(),
                deadline: w.deadline(),
                indexes: Vec::new(),
            })
            .collect();
        let strategies: Vec<StrategySpec> = pair.iter().map(|s| StrategySpec::named(s)).collect();
        let jobs = (0..n)
            .map(|j| Job { key: 1000 + j, stage: j as u32, strategies: strategies.clone(), seed: w.seed + j })
            .collect();
        (stages, jobs)
    }

    /// Each result with its trace as the record's text, wherever the
    /// executor wrote it (the direct one in its workers).
    fn collect(exec: &dyn Executor, stages: &[Stage], jobs: Vec<Job>) -> Vec<(u64, SessionResult, String)> {
        let mut got = Vec::new();
        let report = exec
            .execute(&stages.to_vec(), true, Box::new(jobs.into_iter()), &mut |f| {
                let text = f.trace_text.unwrap_or_else(|| {
                    let stage = &stages[(f.key - 1000) as usize];
                    record::trace_text(&stage.domain, &stage.preferences, &f.result.trace)
                });
                got.push((f.key, f.result, text));
                Ok(())
            })
            .expect("batch runs");
        assert_eq!(report.sessions as usize, got.len());
        got
    }

    #[test]
    fn local_executors_hand_over_the_same_results_in_job_order() {
        // More than one credit's worth of chunks, fewer than the pool's
        // first chunks: both ends of the feeding ramp.
        let (stages, jobs) = stages_and_jobs(300, ["boulware", "conceder"]);
        let direct = collect(&Direct { threads: Some(3) }, &stages, jobs.clone());
        let keys: Vec<u64> = direct.iter().map(|(k, ..)| *k).collect();
        assert_eq!(keys, (1000..1300).collect::<Vec<_>>());
        let actors = collect(
            &Actors { options: ActorRunOptions { concurrency: 16, arbiters: 2, ..Default::default() } },
            &stages,
            jobs,
        );
        assert_eq!(direct.len(), actors.len());
        for ((kd, d, td), (ka, a, ta)) in direct.iter().zip(&actors) {
            assert_eq!(kd, ka);
            // The direct workers wrote the trace and dropped its entries.
            assert!(d.trace.is_empty() && !a.trace.is_empty(), "session {kd}");
            assert_eq!(td, ta, "session {kd}");
            assert_eq!(d.bids_exact, vec![Some(true); 2], "session {kd}: W1 is enumerated");
            assert_eq!(d.bids_exact, a.bids_exact, "session {kd}");
            assert_eq!(d.utilities, a.utilities, "session {kd}");
        }
    }

    #[test]
    fn a_refusal_stops_the_batch() {
        let (stages, jobs) = stages_and_jobs(200, ["linear", "linear"]);
        for exec in [&Direct { threads: Some(2) } as &dyn Executor, &Actors::default()] {
            let mut taken = 0;
            let err = exec
                .execute(&stages, false, Box::new(jobs.clone().into_iter()), &mut |_| {
                    taken += 1;
                    if taken == 5 { Err("disk full".into()) } else { Ok(()) }
                })
                .expect_err("the fifth result is refused");
            assert!(matches!(&err, ExecError::Stopped(m) if m == "disk full"), "{}: {err}", exec.label());
            assert_eq!(taken, 5, "{}: nothing is handed over after a refusal", exec.label());
        }
    }

    #[test]
    fn a_strategy_that_does_not_build_fails_the_batch_naming_its_session() {
        let (stages, mut jobs) = stages_and_jobs(50, ["linear", "linear"]);
        jobs[20].strategies[1] = StrategySpec::named("no-such-strategy");
        let err = Direct { threads: Some(2) }
            .execute(&stages, false, Box::new(jobs.into_iter()), &mut |_| Ok(()))
            .expect_err("session 1020 cannot start");
        assert!(matches!(err, ExecError::Strategy { key: Some(1020), .. }), "{err}");
    }

    #[test]
    fn an_empty_batch_reports_nothing() {
        let (stages, _) = stages_and_jobs(1, ["linear", "linear"]);
        let got = collect(&Direct::default(), &stages, Vec::new());
        assert!(got.is_empty());
    }
}
