//! The engine: runs sessions. [`direct`] drives strategies in a plain loop
//! (tournaments, benchmarks, rollouts); [`actors`] runs every session and
//! party as actix actors, the shape that remote parties and external agents
//! plug into. Both share [`crate::core::session::SessionRun`], so the same
//! seed gives the same trace on either (for round deadlines; a wall-time
//! deadline depends on how fast each engine is). [`executor`] puts either
//! (and, from `net`, a cluster) behind one trait for batches of sessions.

pub mod actors;
pub mod direct;
pub mod executor;

use std::sync::Arc;
use std::time::Duration;

use crate::core::domain::Domain;
use crate::core::inverse::Inverse;
use crate::core::limits;
use crate::core::protocol::{Deadline, ProtocolError};
use crate::core::session::{SessionRun, TraceEntry};
use crate::core::strategy::{PartyContext, Strategy, StrategyError, StrategySpec};
use crate::core::utility::Preferences;

/// How long a party may take to answer one turn when the scenario sets no
/// wall-time deadline (a stuck party must not hold its session forever).
pub const DEFAULT_TURN_TIMEOUT: Duration = Duration::from_secs(60);

/// Everything needed to run one session.
#[derive(Clone)]
pub struct SessionSpec {
    pub id: u64,
    /// What logs call the session: a server's session id (hex), so that its
    /// log lines and the engine's name the same session the same way;
    /// `None`: its number `id`.
    pub log_id: Option<Arc<str>>,
    pub domain: Arc<Domain>,
    pub preferences: Vec<Arc<Preferences>>,
    pub strategies: Vec<StrategySpec>,
    pub deadline: Deadline,
    pub seed: u64,
    pub record_trace: bool,
    /// Per party, an outcome index built once and shared by every session of
    /// the same scenario (empty: each party builds its own).
    pub shared_indexes: Vec<Option<Arc<Inverse>>>,
    /// Longest wait for one party's answer (actor engine).
    pub turn_timeout: Duration,
    /// Added to the turn timeout on each party's first turn, for an
    /// agent's setup after it learned the settings (actor engine).
    pub setup_allowance: Duration,
    /// Longest wait for every party to be ready (an external agent joining).
    pub start_timeout: Duration,
    /// Called with every action that counted (actor engine), e.g. to stream
    /// a session to watchers: the entries the trace holds (or would, when
    /// it is off or full), never an action refused or arriving after the
    /// deadline (see [`crate::core::session::Applied`]).
    pub on_action: Option<ActionHook>,
    /// Longest a session may run, whatever its deadline says (actor
    /// engine): a server's cap, so that slow agents under a round deadline
    /// cannot hold a session for days. Past it the session is aborted.
    pub wall_limit: Option<Duration>,
}

/// See [`SessionSpec::on_action`].
pub type ActionHook = Arc<dyn Fn(&TraceEntry) + Send + Sync>;

impl SessionSpec {
    /// What the session is estimated to hold while it runs: its fixed cost
    /// and the inverse each party without a shared one builds
    /// ([`crate::core::limits::inverse_bytes`], the server's estimate too).
    /// A party that asks no inverse (an agent elsewhere) is counted as one
    /// that does: an estimate that errs high.
    pub fn memory_estimate(&self) -> u64 {
        let own = self
            .preferences
            .iter()
            .enumerate()
            .filter(|(k, _)| self.shared_indexes.get(*k).is_none_or(Option::is_none));
        let inverses: u64 = own.map(|(_, p)| limits::inverse_bytes(&self.domain, p, &self.deadline)).sum();
        limits::Footprint::SESSION_OVERHEAD + inverses
    }

    pub fn new(
        id: u64,
        domain: Arc<Domain>,
        preferences: Vec<Arc<Preferences>>,
        strategies: Vec<StrategySpec>,
        deadline: Deadline,
        seed: u64,
    ) -> Self {
        Self {
            id,
            log_id: None,
            domain,
            preferences,
            strategies,
            deadline,
            seed,
            record_trace: false,
            shared_indexes: Vec::new(),
            turn_timeout: DEFAULT_TURN_TIMEOUT,
            setup_allowance: Duration::ZERO,
            start_timeout: DEFAULT_TURN_TIMEOUT,
            on_action: None,
            wall_limit: None,
        }
    }

    pub fn with_trace(mut self, record: bool) -> Self {
        self.record_trace = record;
        self
    }

    /// The strategies of [`Self::strategies`], one per party; refuses a
    /// spec that could not become a session (see [`Self::check`]) before
    /// building any.
    pub fn build_strategies(&self) -> Result<Vec<Box<dyn Strategy>>, StrategyError> {
        self.check(self.strategies.len())?;
        self.strategies.iter().map(StrategySpec::build).collect()
    }

    /// Whether this spec can become a session played by `strategies`
    /// parties (strategies built elsewhere, or endpoints): one per party,
    /// and a setup the protocol accepts. Both engines call it before any
    /// party exists, so a bad spec from a library caller is an error, not
    /// an index out of bounds mid-session.
    pub fn check(&self, strategies: usize) -> Result<(), StrategyError> {
        let parties = self.preferences.len();
        if strategies != parties {
            return Err(StrategyError::PartyCount { strategies, parties });
        }
        if parties < 2 {
            return Err(ProtocolError::TooFewParties(parties).into());
        }
        self.deadline.check()?;
        Ok(())
    }

    /// The session state for this spec, checked against `strategies`
    /// parties.
    pub fn session(&self, strategies: usize) -> Result<SessionRun, StrategyError> {
        self.check(strategies)?;
        Ok(SessionRun::new(self.domain.clone(), self.preferences.clone(), self.deadline, self.record_trace)?)
    }

    /// What each party is told at the start, shared indexes attached.
    pub fn contexts(&self, run: &SessionRun) -> Vec<PartyContext> {
        let mut contexts = run.contexts(self.seed);
        for (ctx, index) in contexts.iter_mut().zip(&self.shared_indexes) {
            ctx.index = index.clone();
        }
        contexts
    }
}

/// Inverse utilities for parties that will meet many times over the same
/// preferences (repeated runs, tournaments): built once, shared read-only
/// ([`Inverse::shared`]). Sampled ones are not shared: they depend on each
/// session's seed.
pub fn shared_indexes(domain: &Arc<Domain>, preferences: &[Arc<Preferences>]) -> Vec<Option<Arc<Inverse>>> {
    let shared: Vec<Option<Arc<Inverse>>> =
        preferences.iter().map(|p| Inverse::shared(domain, p).map(Arc::new)).collect();
    if shared.iter().all(Option::is_none) { Vec::new() } else { shared }
}

/// A one-issue session of `parties` parties and `strategies` Boulware
/// strategies (counts may disagree, to test the refusal), for the engines'
/// unit tests.
#[cfg(test)]
pub(crate) fn test_spec(parties: usize, strategies: usize, deadline: Deadline) -> SessionSpec {
    use crate::core::domain::Issue;
    use crate::core::utility::{UtilityFunction, ValueFunction};
    let domain = Arc::new(Domain::new("d", vec![Issue::Integer { name: "x".into(), min: 0, max: 9 }]));
    let prefs = Arc::new(Preferences::new(
        UtilityFunction::LinearAdditive {
            weights: vec![1.0],
            values: vec![ValueFunction::linear_between(0.0, 9.0, 0.0, 1.0)],
        },
        0.1,
    ));
    let strategies = vec![StrategySpec::named("boulware"); strategies];
    SessionSpec::new(0, domain, vec![prefs; parties], strategies, deadline, 1)
}
