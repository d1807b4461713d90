//! The engine: runs sessions. [`direct`] drives strategies in a plain loop
//! (tournaments, benchmarks, rollouts); [`actors`] runs every session and
//! party as actix actors, the shape that remote parties and external agents
//! plug into. Both share [`crate::core::session::SessionRun`], so the same
//! seed gives the same trace on either.

pub mod actors;
pub mod direct;

use std::sync::Arc;

use crate::core::domain::Domain;
use crate::core::protocol::Deadline;
use crate::core::strategy::{Strategy, StrategyError, StrategySpec};
use crate::core::utility::Preferences;

/// Everything needed to run one session.
#[derive(Clone)]
pub struct SessionSpec {
    pub id: u64,
    pub domain: Arc<Domain>,
    pub preferences: Vec<Arc<Preferences>>,
    pub strategies: Vec<StrategySpec>,
    pub deadline: Deadline,
    pub seed: u64,
    pub record_trace: bool,
}

impl SessionSpec {
    pub fn build_strategies(&self) -> Result<Vec<Box<dyn Strategy>>, StrategyError> {
        self.strategies.iter().map(StrategySpec::build).collect()
    }
}
