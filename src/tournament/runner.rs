//! Runs a tournament's sessions on the direct engine, on every core, and
//! hands each result line over as soon as its negotiation finishes.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;
use std::sync::mpsc::{TryRecvError, sync_channel};

use rayon::prelude::*;
use serde_json::json;
use thiserror::Error;

use super::config::Tournament;
use super::plan::{Planned, party_at};
use super::summary::Row;
use crate::core::analysis::Analysis;
use crate::core::inverse::OutcomeIndex;
use crate::core::record::{Assessment, RecordContext, record};
use crate::core::scenario::Scenario;
use crate::core::session::SessionResult;
use crate::core::strategy::StrategySpec;
use crate::core::utility::Preferences;
use crate::engine::{SessionSpec, direct, shared_indexes};
use crate::net::cluster::ScenarioWire;
use crate::net::cluster::config::ClusterConfig;
use crate::net::cluster::launcher::{self, Job, Launch, Report};

#[derive(Debug, Error)]
pub enum RunError {
    #[error("writing results: {0}")]
    Io(#[from] std::io::Error),
    #[error("session `{key}`: {message}")]
    Session { key: String, message: String },
    #[error("cannot start the thread pool: {0}")]
    Pool(String),
    #[error("cluster: {0}")]
    Cluster(String),
}

/// A scenario made ready for its sessions: one per turn-order rotation,
/// sharing the outcome indexes and the analysis of the original.
struct Prepared {
    /// The scenario's analysis, in its own party order: rotated results are
    /// turned back before their distances are taken (the distances do not
    /// depend on the order, and one analysis serves every rotation).
    analysis: Analysis,
    rotations: Vec<Rotation>,
}

struct Rotation {
    /// The scenario with its parties in this turn order, named by its label.
    scenario: Scenario,
    preferences: Vec<Arc<Preferences>>,
    indexes: Vec<Option<Arc<OutcomeIndex>>>,
}

fn prepare(t: &Tournament, venue: usize, with_indexes: bool) -> Prepared {
    let v = &t.venues[venue];
    let prefs = v.scenario.preferences();
    let analysis = {
        let refs: Vec<&Preferences> = prefs.iter().map(|p| p.as_ref()).collect();
        Analysis::run(&v.scenario.domain, &refs, v.scenario.seed)
    };
    // Every session of a scenario meets the same preferences: each party's
    // outcome index is built once and shared by all of them.
    let indexes = if with_indexes { shared_indexes(&v.scenario.domain, &prefs) } else { Vec::new() };
    let n = prefs.len();
    let rotations = (0..if t.rotate_order { n } else { 1 })
        .map(|k| {
            let order: Vec<usize> = (0..n).map(|j| party_at(k, j, n)).collect();
            let mut scenario = v.scenario.clone();
            scenario.name = v.label.clone();
            scenario.parties = order.iter().map(|&p| v.scenario.parties[p].clone()).collect();
            Rotation {
                preferences: order.iter().map(|&p| prefs[p].clone()).collect(),
                indexes: if indexes.is_empty() {
                    Vec::new()
                } else {
                    order.iter().map(|&p| indexes[p].clone()).collect()
                },
                scenario,
            }
        })
        .collect();
    Prepared { analysis, rotations }
}

/// One finished negotiation: its results.jsonl line and the row read back
/// from that line.
pub struct Done {
    pub index: usize,
    pub line: String,
    pub row: Row,
}

fn strategies_of(t: &Tournament, p: &Planned) -> Vec<StrategySpec> {
    p.assignment.iter().map(|&e| t.entrants[e].spec.clone()).collect()
}

fn run_one(t: &Tournament, prepared: &Prepared, p: &Planned) -> Result<Done, RunError> {
    let rot = &prepared.rotations[p.rotation];
    let mut spec = SessionSpec::new(
        p.index as u64,
        rot.scenario.domain.clone(),
        rot.preferences.clone(),
        strategies_of(t, p),
        rot.scenario.deadline,
        p.seed,
    )
    .with_trace(t.trace);
    spec.shared_indexes = rot.indexes.clone();
    let result = direct::run(&spec).map_err(|e| RunError::Session { key: p.key.clone(), message: e.to_string() })?;
    done_of(t, prepared, p, &result, "direct", None)
}

/// The results.jsonl line of a finished negotiation; `placed`: the node
/// that ran it and how many attempts it took (cluster runs).
fn done_of(
    t: &Tournament,
    prepared: &Prepared,
    p: &Planned,
    result: &SessionResult,
    engine: &str,
    placed: Option<(&str, u32)>,
) -> Result<Done, RunError> {
    let fail = |message: String| RunError::Session { key: p.key.clone(), message };
    let rot = &prepared.rotations[p.rotation];
    let spec_labels: Vec<String> = strategies_of(t, p).iter().map(|s| s.to_string()).collect();
    let n = result.undiscounted.len();
    let mut original = vec![0.0; n];
    for (j, u) in result.undiscounted.iter().enumerate() {
        original[party_at(p.rotation, j, n)] = *u;
    }
    let distances = prepared.analysis.distances(&original);
    let assessment = Assessment {
        distances,
        pareto_efficient: result.agreement.is_some() && distances.pareto.is_some_and(|d| d < 1e-9),
    };
    let cx = RecordContext {
        scenario: &rot.scenario,
        preferences: &rot.preferences,
        analysis: &prepared.analysis,
        engine,
        strategies: &spec_labels,
    };
    let mut rec = record(&cx, json!(p.index), p.seed, result, &assessment);
    let obj = rec.as_object_mut().expect("a record is an object");
    obj.insert("tournament".into(), json!(t.name));
    obj.insert("key".into(), json!(p.key));
    obj.insert("repetition".into(), json!(p.repetition));
    obj.insert("rotation".into(), json!(p.rotation));
    obj.insert(
        "assignment".into(),
        json!(p.assignment.iter().map(|&e| t.entrants[e].label.as_str()).collect::<Vec<_>>()),
    );
    obj.insert(
        "reservation_values".into(),
        json!(rot.preferences.iter().map(|p| p.reservation_value).collect::<Vec<_>>()),
    );
    if let Some((node, attempts)) = placed {
        obj.insert("node".into(), json!(node));
        obj.insert("attempts".into(), json!(attempts));
    }
    let line = rec.to_string();
    // The tables use what the line says, read back exactly as a resumed run
    // reads it: a resumed tournament and a clean one agree to the last bit.
    let row = Row::from_line(&line).map_err(|e| fail(format!("reading back its record: {e}")))?;
    Ok(Done { index: p.index, line, row })
}

/// Runs `pending` (plan indexes) on `threads` threads (all cores if `None`),
/// appending one line per negotiation to `out` as it finishes (flushed
/// whenever the writer has caught up) and calling `on_done` with it.
pub fn run(
    t: &Tournament,
    plan: &[Planned],
    pending: &[usize],
    threads: Option<usize>,
    out: &mut impl Write,
    mut on_done: impl FnMut(Done),
) -> Result<(), RunError> {
    if pending.is_empty() {
        return Ok(());
    }
    let mut builder = rayon::ThreadPoolBuilder::new();
    if let Some(n) = threads {
        builder = builder.num_threads(n);
    }
    let pool = builder.build().map_err(|e| RunError::Pool(e.to_string()))?;
    let mut needed = vec![false; t.venues.len()];
    for &i in pending {
        needed[plan[i].venue] = true;
    }
    let prepared: Vec<Option<Prepared>> =
        pool.install(|| needed.par_iter().enumerate().map(|(v, &need)| need.then(|| prepare(t, v, true))).collect());

    // Workers send finished lines in small batches (one wake-up per batch,
    // not per negotiation); this thread writes them. The bound keeps memory
    // flat when the disk is slower than the negotiations.
    let workers = pool.current_num_threads();
    let batch = (pending.len() / (workers * 16)).clamp(1, 64);
    let (tx, rx) = sync_channel::<Result<Vec<Done>, RunError>>(64);
    std::thread::scope(|scope| {
        let prepared = &prepared;
        scope.spawn(move || {
            pool.install(|| {
                // Stops early once the writer has gone (an error there).
                let _ = pending.par_chunks(batch).try_for_each_with(tx, |tx, chunk| {
                    let done: Result<Vec<Done>, RunError> = chunk
                        .iter()
                        .map(|&i| {
                            let p = &plan[i];
                            run_one(t, prepared[p.venue].as_ref().expect("prepared above"), p)
                        })
                        .collect();
                    tx.send(done).map_err(|_| ())
                });
            })
        });
        // Owned here, so that an early return drops it and the workers stop.
        let rx = rx;
        loop {
            let msg = match rx.try_recv() {
                Ok(m) => m,
                Err(TryRecvError::Empty) => {
                    out.flush()?;
                    match rx.recv() {
                        Ok(m) => m,
                        Err(_) => break,
                    }
                }
                Err(TryRecvError::Disconnected) => break,
            };
            for done in msg? {
                out.write_all(done.line.as_bytes())?;
                out.write_all(b"\n")?;
                on_done(done);
            }
        }
        out.flush()?;
        Ok(())
    })
}

/// Runs `pending` on the nodes of a cluster, writing and handing over each
/// line as its result comes back (in finishing order, as locally). Every
/// rotated scenario travels to a node once; the analysis and the records
/// stay here.
pub fn run_on_cluster(
    t: &Tournament,
    plan: &[Planned],
    pending: &[usize],
    config: ClusterConfig,
    out: &mut impl Write,
    mut on_done: impl FnMut(Done),
) -> Result<Report, RunError> {
    if pending.is_empty() {
        return Ok(Report::default());
    }
    let mut needed = vec![false; t.venues.len()];
    for &i in pending {
        needed[plan[i].venue] = true;
    }
    let prepared: Vec<Option<Prepared>> =
        needed.par_iter().enumerate().map(|(v, &need)| need.then(|| prepare(t, v, false))).collect();
    // Scenario ids: one per (venue, rotation) that has sessions to run.
    let mut ids: HashMap<(usize, usize), u32> = HashMap::new();
    let mut scenarios = Vec::new();
    for &i in pending {
        let p = &plan[i];
        ids.entry((p.venue, p.rotation)).or_insert_with(|| {
            let rot = &prepared[p.venue].as_ref().expect("prepared above").rotations[p.rotation];
            scenarios.push(ScenarioWire::of(&rot.scenario));
            (scenarios.len() - 1) as u32
        });
    }
    let jobs: Vec<Job> = pending
        .iter()
        .map(|&i| {
            let p = &plan[i];
            Job { key: i as u64, scenario: ids[&(p.venue, p.rotation)], strategies: strategies_of(t, p), seed: p.seed }
        })
        .collect();
    let launch = Launch { config, scenarios, trace: t.trace };
    let mut failure: Option<RunError> = None;
    // The launcher's shell runs on a runtime of its own beside the
    // consumer (this thread).
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| RunError::Pool(e.to_string()))?;
    let report = launcher::run_blocking(runtime.handle(), launch, Box::new(jobs.into_iter()), |f| {
        let p = &plan[f.key as usize];
        let prepared = prepared[p.venue].as_ref().expect("prepared above");
        let written = done_of(t, prepared, p, &f.result, "cluster", Some((&f.node, f.attempts))).and_then(|done| {
            out.write_all(done.line.as_bytes())?;
            out.write_all(b"\n")?;
            out.flush()?;
            on_done(done);
            Ok(())
        });
        written.map_err(|e| {
            let message = e.to_string();
            failure = Some(e);
            message
        })
    });
    match (report, failure) {
        (_, Some(e)) => Err(e),
        (Ok(report), None) => Ok(report),
        (Err(e), None) => Err(RunError::Cluster(e.to_string())),
    }
}
