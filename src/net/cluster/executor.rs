//! The cluster behind the engine's [`Executor`]: `run`, `bench` and
//! `tournament` hand their sessions to nodes exactly as to a local engine.

use crate::engine::executor::{ExecError, Executor, Finished, Jobs, OnDone, Placed, Report, Stages};

use super::ScenarioWire;
use super::config::ClusterConfig;
use super::launcher::{self, Job, Launch, LaunchError};

/// Sessions placed on the nodes of a cluster, results in finishing order.
pub struct Cluster {
    pub config: ClusterConfig,
    /// Where the launcher's shell runs: the command builds it.
    pub runtime: tokio::runtime::Runtime,
    /// Tells the person running it what the launcher waits for (the
    /// command prints it; this layer does not).
    pub on_notice: fn(&launcher::Notice),
}

impl Executor for Cluster {
    fn label(&self) -> &'static str {
        "cluster"
    }

    /// Nodes build their own indexes: none would travel.
    fn shares_indexes(&self) -> bool {
        false
    }

    fn execute(
        &self,
        stages: &dyn Stages,
        trace: bool,
        jobs: Jobs,
        on_done: &mut OnDone<'_>,
    ) -> Result<Report, ExecError> {
        // Every stage travels to a node once; the analysis and the records
        // stay with the caller.
        let scenarios = (0..stages.count())
            .map(|i| {
                let s = stages.stage(i as u32);
                ScenarioWire {
                    name: s.name.clone(),
                    domain: s.domain.clone(),
                    parties: s.party_names.iter().cloned().zip(s.preferences.iter().cloned()).collect(),
                    deadline: s.deadline,
                }
            })
            .collect();
        let launch = Launch { config: self.config.clone(), scenarios, trace };
        let jobs = jobs.map(|j| Job { key: j.key, scenario: j.stage, strategies: j.strategies, seed: j.seed });
        let report = launcher::run_blocking(
            self.runtime.handle(),
            launch,
            Box::new(jobs),
            |f| {
                // Results come at the network's pace: flushing each costs little.
                on_done(Finished {
                    key: f.key,
                    result: f.result,
                    placed: Some(Placed { node: f.node, attempts: f.attempts }),
                    caught_up: true,
                    trace_text: None,
                })
            },
            self.on_notice,
        )
        .map_err(|e| match e {
            LaunchError::Consumer(message) => ExecError::Stopped(message),
            other => ExecError::Cluster(other.to_string()),
        })?;
        Ok(report)
    }
}
