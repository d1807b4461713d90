//! Multi-node runs: a launcher hands sessions to `negotium node` processes
//! over the cluster protocol (`proto/negotium/v1/cluster.proto`).
//!
//! - [`config`] — which nodes (a list, a cluster file or DNS discovery), the
//!   placement policy, windows and timeouts.
//! - [`node`] — the node: hosts sessions for launchers and plays parties of
//!   sessions hosted elsewhere, drains on shutdown.
//! - [`work`] — what a node decides on one launcher's stream (pure: loads,
//!   sessions waiting for their scenario, caps, draining).
//! - [`peer`] — a node's links to other nodes: one agent stream per host
//!   node, shared by every party it plays there (the remote-party path).
//! - [`launcher`] — places sessions, streams results back, notices dead nodes
//!   (stream end or missed heartbeats) and re-runs their sessions from their
//!   seeds, reporting each session exactly once; its decisions are a pure
//!   core ([`launcher::core`]) tested under simulated faults.
//! - [`metrics`] — per-node counters and the Prometheus endpoint.
//! - [`executor`] — the launcher as an [`Executor`](crate::engine::executor::Executor),
//!   what `run`, `bench` and `tournament` take.
//!
//! A session's parties may sit on different nodes: the host runs the session
//! actor and its local parties; each remote party is an
//! [`ExternalParty`](super::external::ExternalParty) on the host whose mailbox
//! is the other node's agent stream. Strategies see the same observations in
//! the same order as in one process, so traces are identical.

pub mod config;
pub mod executor;
pub mod launcher;
pub mod metrics;
pub mod node;
pub mod peer;
pub mod work;

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::core::domain::Domain;
use crate::core::protocol::Deadline;
use crate::core::scenario::{Party, Scenario};
use crate::core::strategy::StrategySpec;
use crate::core::utility::Preferences;

/// A scenario as it travels to nodes: what a session needs, nothing of the
/// file it came from. JSON keeps every float exact.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScenarioWire {
    pub name: String,
    pub domain: Arc<Domain>,
    /// (name, preferences) in turn order.
    pub parties: Vec<(String, Arc<Preferences>)>,
    pub deadline: Deadline,
}

impl ScenarioWire {
    pub fn of(s: &Scenario) -> Self {
        Self {
            name: s.name.clone(),
            domain: s.domain.clone(),
            parties: s.parties.iter().map(|p| (p.name.clone(), p.preferences.clone())).collect(),
            deadline: s.deadline,
        }
    }

    /// The scenario, every party with a placeholder strategy (a session
    /// always says which strategies play), after the check every scenario
    /// passes ([`Scenario::check`]): a wire scenario is as trusted as a file.
    pub fn into_scenario(self) -> Result<Scenario, String> {
        let scenario = Scenario {
            name: self.name,
            description: String::new(),
            domain: self.domain,
            parties: self
                .parties
                .into_iter()
                .map(|(name, preferences)| Party {
                    name,
                    preferences,
                    strategy: StrategySpec::named("hardliner"),
                    external: false,
                })
                .collect(),
            deadline: self.deadline,
            seed: 0,
            // Nodes return results, not records: how a deal reads stays
            // with the launcher.
            presentation: Default::default(),
        };
        scenario.check()?;
        Ok(scenario)
    }
}
