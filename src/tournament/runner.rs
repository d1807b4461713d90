//! Runs a tournament's sessions on the executor the command chose and
//! hands each result line over as soon as its negotiation finishes.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, OnceLock};

use rayon::prelude::*;
use serde::Deserialize;
use serde_json::json;
use thiserror::Error;

use super::config::Tournament;
use super::plan::{Planned, party_at};
use super::summary::Row;
use crate::core::analysis::Analysis;
use crate::core::record::{Assessment, Record, RecordContext, record};
use crate::core::scenario::Scenario;
use crate::core::session::SessionResult;
use crate::core::strategy::StrategySpec;
use crate::core::utility::Preferences;
use crate::engine::executor::{ExecError, Executor, Job, Placed, Report, Stage};
use crate::store::{self, Expect, LineId, Lookup, Sessions};

#[derive(Debug, Error)]
pub enum RunError {
    #[error("writing results: {0}")]
    Io(#[from] std::io::Error),
    #[error("session `{key}`: {message}")]
    Session { key: String, message: String },
    #[error(transparent)]
    Engine(ExecError),
}

/// A scenario made ready for its sessions: one per turn-order rotation,
/// sharing the analysis of the original.
struct Prepared {
    /// The scenario's analysis, in its own party order: rotated results are
    /// turned back before their distances are taken (the distances do not
    /// depend on the order, and one analysis serves every rotation).
    analysis: Analysis,
    /// What every line of this scenario says it was played on.
    digest: String,
    rotations: Vec<Rotation>,
}

struct Rotation {
    /// The scenario with its parties in this turn order, named by its label.
    scenario: Scenario,
    preferences: Vec<Arc<Preferences>>,
}

fn prepare(t: &Tournament, venue: usize) -> Prepared {
    let v = &t.venues[venue];
    let prefs = v.scenario.preferences();
    let analysis = {
        let refs: Vec<&Preferences> = prefs.iter().map(|p| p.as_ref()).collect();
        Analysis::run(&v.scenario.domain, &refs, v.scenario.seed)
    };
    let n = prefs.len();
    let rotations = (0..if t.rotate_order { n } else { 1 })
        .map(|k| {
            let order: Vec<usize> = (0..n).map(|j| party_at(k, j, n)).collect();
            let mut scenario = v.scenario.clone();
            scenario.name = v.label.clone();
            scenario.parties = order.iter().map(|&p| v.scenario.parties[p].clone()).collect();
            Rotation { preferences: order.iter().map(|&p| prefs[p].clone()).collect(), scenario }
        })
        .collect();
    Prepared { analysis, digest: store::scenario_digest(&v.scenario), rotations }
}

/// One finished negotiation: its results.jsonl record and the row read
/// from that record's fields.
pub struct Done {
    pub index: usize,
    pub record: Record,
    pub row: Row,
}

fn strategies_of(t: &Tournament, p: &Planned) -> Vec<StrategySpec> {
    p.assignment.iter().map(|&e| t.entrants[e].spec.clone()).collect()
}

/// The results.jsonl line of a finished negotiation; `placed`: the node
/// that ran it and how many attempts it took (cluster runs).
fn done_of(
    t: &Tournament,
    prepared: &Prepared,
    p: &Planned,
    result: &SessionResult,
    trace_text: Option<String>,
    engine: &str,
    placed: Option<&Placed>,
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
        explain: false,
    };
    let mut rec = record(&cx, json!(p.index), p.seed, result, &assessment, trace_text);
    let obj = rec.fields.as_object_mut().expect("a record is an object");
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
    obj.insert(store::DIGEST_FIELD.into(), json!(prepared.digest));
    if let Some(placed) = placed {
        obj.insert("node".into(), json!(placed.node));
        obj.insert("attempts".into(), json!(placed.attempts));
    }
    // The tables use what the line says: its fields as written (numbers
    // round-trip exactly through the text, so a resumed tournament, which
    // reads the line back, and a clean one agree to the last bit), without
    // parsing the trace back.
    let row = Row::deserialize(&rec.fields).map_err(|e| fail(format!("reading back its record: {e}")))?;
    Ok(Done { index: p.index, record: rec, row })
}

/// Runs `pending` (plan indexes) on `executor`, appending one line per
/// negotiation to `out` as it finishes (flushed whenever the executor has
/// no other result waiting) and calling `on_done` with it.
pub fn run(
    t: &Tournament,
    plan: &[Planned],
    pending: &[usize],
    executor: &dyn Executor,
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
        needed.par_iter().enumerate().map(|(v, &need)| need.then(|| prepare(t, v))).collect();
    // One stage per (scenario, rotation) that has sessions to run: on a
    // cluster each travels to a node once.
    let mut ids: HashMap<(usize, usize), u32> = HashMap::new();
    let mut stages = Vec::new();
    for &i in pending {
        let p = &plan[i];
        ids.entry((p.venue, p.rotation)).or_insert_with(|| {
            let rot = &prepared[p.venue].as_ref().expect("prepared above").rotations[p.rotation];
            stages.push(Stage::of(&rot.scenario));
            (stages.len() - 1) as u32
        });
    }
    if executor.shares_indexes() {
        // Every session of a scenario meets the same preferences: each
        // party's outcome index is built once and shared by all of them.
        stages = stages.into_par_iter().map(Stage::with_shared_indexes).collect();
    }
    let jobs: Vec<Job> = pending
        .iter()
        .map(|&i| {
            let p = &plan[i];
            Job { key: i as u64, stage: ids[&(p.venue, p.rotation)], strategies: strategies_of(t, p), seed: p.seed }
        })
        .collect();
    let label = executor.label();
    let mut failure: Option<RunError> = None;
    let outcome = executor.execute(&stages, t.trace, Box::new(jobs.into_iter()), &mut |f| {
        let p = &plan[f.key as usize];
        let prepared = prepared[p.venue].as_ref().expect("prepared above");
        let written = done_of(t, prepared, p, &f.result, f.trace_text, label, f.placed.as_ref()).and_then(|done| {
            done.record.write_to(out)?;
            out.write_all(b"\n")?;
            if f.caught_up {
                out.flush()?;
            }
            on_done(done);
            Ok(())
        });
        written.map_err(|e| {
            let message = e.to_string();
            failure = Some(e);
            message
        })
    });
    out.flush()?;
    match (outcome, failure) {
        (_, Some(e)) => Err(e),
        (Ok(report), None) => Ok(report),
        (Err(ExecError::Strategy { key: Some(i), error }), None) => {
            Err(RunError::Session { key: plan[i as usize].key.clone(), message: error.to_string() })
        }
        (Err(e), None) => Err(RunError::Engine(e)),
    }
}

/// What a tournament's results.jsonl must say of each session it holds,
/// looked up by key. Lines of sessions it no longer holds (a strategy or a
/// scenario left the file since) stay in the file and out of the tables.
pub struct Resumable<'a> {
    t: &'a Tournament,
    by_key: HashMap<&'a str, &'a Planned>,
    count: usize,
    /// Per scenario, taken on first use: a resume that finds few lines
    /// digests few scenarios.
    digests: Vec<OnceLock<String>>,
}

impl<'a> Resumable<'a> {
    pub fn new(t: &'a Tournament, plan: &'a [Planned]) -> Self {
        Self {
            t,
            by_key: plan.iter().map(|p| (p.key.as_str(), p)).collect(),
            count: plan.len(),
            digests: t.venues.iter().map(|_| OnceLock::new()).collect(),
        }
    }
}

impl Sessions for Resumable<'_> {
    fn count(&self) -> usize {
        self.count
    }

    fn tournament(&self) -> Option<&str> {
        Some(&self.t.name)
    }

    fn lookup(&self, id: LineId<'_>) -> Lookup<'_> {
        let Some(p) = id.key.and_then(|k| self.by_key.get(k)) else { return Lookup::Foreign };
        let digest = self.digests[p.venue].get_or_init(|| store::scenario_digest(&self.t.venues[p.venue].scenario));
        let strategies = strategies_of(self.t, p).iter().map(|s| s.to_string()).collect::<Vec<_>>();
        Lookup::Held(p.index, Expect { seed: p.seed, strategies: Cow::Owned(strategies), scenario_digest: digest })
    }
}
