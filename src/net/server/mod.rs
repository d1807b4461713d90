//! `negotium serve`: a node that hosts sessions and lets external agents
//! join them over the public gRPC API.
//!
//! - [`config`] — the node's limits and timeouts ([`ServerConfig`]).
//! - `session` — building a session from a scenario, and publishing its
//!   result when it ends ([`HostOptions`], [`Created`]).
//! - `management` — the calls that create, list, watch, fetch and cancel
//!   sessions.
//! - `agents` — one agent stream (`Negotiate`): the parties it joined and
//!   the messages it sends.
//! - [`hosting`] — the arbiters sessions live on, and serving the API on
//!   bound listeners behind [`super::transport`] until a shutdown future
//!   completes.
//!
//! The sessions themselves are kept in [`super::registry`]; the party an
//! external agent plays is [`super::external::ExternalParty`].
//!
//! Threads: tonic handlers run on the tokio runtime of the actix system;
//! sessions and their parties live on a few arbiters (round robin). A
//! handler reaches an agent's party through its `Addr<ExternalParty>`, and
//! each session reports its result on a channel that a small task turns into
//! the stored result, the watchers' last event and every agent's `Finished`.
//! Parsing a scenario and analysing a result run on the blocking pool, a
//! few at a time (see `NegotiationService::heavy`).
//!
//! What a caller may cost (see README "Security"): every scenario is checked
//! ([`Scenario::check`](crate::core::scenario::Scenario::check)) and
//! admitted under [`Limits`](crate::core::limits::Limits); a session's
//! estimated memory is reserved from [`MemoryBudget`] before anything is
//! built; results are kept within a count and a byte budget; agent streams
//! are bounded in bytes ([`super::outbound`]); connections by
//! [`super::gate`]; credentials by [`super::auth`].

mod agents;
pub mod config;
pub mod hosting;
mod management;
mod session;

use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::{Arc, Mutex};

use actix::ArbiterHandle;
use tokio::sync::Semaphore;
use tonic::Status;

use super::registry::{MemoryBudget, Registry, Retention};
pub use super::transport::TlsFiles;
pub use config::ServerConfig;
pub use hosting::{Hosting, serve};
pub use session::{Created, HostOptions};

/// What a node holds at one moment ([`NegotiationService::census`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Census {
    /// Sessions not finished yet.
    pub running: usize,
    /// Finished sessions whose results are kept for `GetResult`.
    pub retained: usize,
    /// Agent streams open (joined a party or not).
    pub agent_streams: usize,
}

/// The service behind `negotium serve`.
///
/// Cheap to clone: tonic clones it per connection, every spawned task
/// holds one; the fields are the shared state all of them see.
#[derive(Clone)]
pub struct NegotiationService {
    /// Read by every handler, never changed after start.
    config: Arc<ServerConfig>,
    /// Every session this node knows and every agent stream's outbound
    /// queue: handlers, agent streams and result tasks all meet here. A
    /// plain mutex: no one holds it across an `.await`.
    registry: Arc<Mutex<Registry>>,
    /// Handles to the threads sessions live on; [`Hosting`] owns the
    /// threads and stops them.
    arbiters: Arc<Vec<ArbiterHandle>>,
    /// Round robin over `arbiters`: spreads sessions without a lock.
    next_arbiter: Arc<AtomicUsize>,
    /// Ids of agent streams, unique per node: the registry keys their
    /// outbound queues and a seat names the stream that joined it by it.
    next_connection: Arc<AtomicU64>,
    /// What running sessions (and a node's scenarios loaded for launchers)
    /// may hold together; each reservation gives its share back on drop.
    pub(in crate::net) memory: Arc<MemoryBudget>,
    /// Parsing and analysis a caller can ask for run on the blocking pool,
    /// at most this many at once, so they never take every thread.
    heavy: Arc<Semaphore>,
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).expect("the OS random source is available");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

fn lock(registry: &Mutex<Registry>) -> std::sync::MutexGuard<'_, Registry> {
    // A panic while holding the lock would be a bug; the data stays usable.
    registry.lock().unwrap_or_else(|e| e.into_inner())
}

impl NegotiationService {
    pub fn new(config: ServerConfig, arbiters: Vec<ArbiterHandle>) -> Self {
        let heavy = Arc::new(Semaphore::new(config.arbiters.max(1)));
        Self {
            memory: MemoryBudget::new(config.session_memory),
            config: Arc::new(config),
            registry: Arc::new(Mutex::new(Registry::default())),
            arbiters: Arc::new(arbiters),
            next_arbiter: Arc::new(AtomicUsize::new(0)),
            next_connection: Arc::new(AtomicU64::new(0)),
            heavy,
        }
    }

    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// Estimated bytes held by running sessions, and finished results kept.
    pub fn memory_in_use(&self) -> (u64, usize, u64) {
        let (n, bytes) = lock(&self.registry).retained();
        (self.memory.used(), n, bytes)
    }

    /// What the node holds now, for operators and for tests that wait on
    /// the server's state instead of the clock.
    pub fn census(&self) -> Census {
        let reg = lock(&self.registry);
        Census { running: reg.running(), retained: reg.retained().0, agent_streams: reg.connections.len() }
    }

    fn retention(&self) -> Retention {
        Retention { count: self.config.keep_results, bytes: self.config.keep_result_bytes }
    }

    /// Runs `f` on the blocking pool under the heavy-work permits.
    async fn heavy<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Result<T, Status> {
        let _permit = self.heavy.acquire().await.map_err(|_| Status::unavailable("the server is stopping"))?;
        tokio::task::spawn_blocking(f).await.map_err(|_| Status::internal("a worker thread failed"))
    }
}
