//! How [`super::run_sessions`] spreads its work.

/// Options for [`super::run_sessions`].
#[derive(Debug, Clone, Copy)]
pub struct ActorRunOptions {
    /// Sessions in flight at once: what bounds memory (each holds its
    /// parties' strategies) and the report channel, however many sessions
    /// are asked for.
    pub concurrency: usize,
    /// Arbiters (threads) sessions are spread over.
    pub arbiters: usize,
    /// Bytes the sessions in flight may hold together, by their estimates
    /// ([`crate::engine::SessionSpec::memory_estimate`]): fewer than
    /// `concurrency` run at once where each holds much (a sampled
    /// 50-issue ANAC 2014 party holds about 40 MB), and one always runs.
    /// The default is the server's session memory. (The server's own
    /// budget refuses what does not fit; a local run waits for room.)
    pub memory: u64,
}

impl Default for ActorRunOptions {
    fn default() -> Self {
        Self {
            concurrency: 1024,
            arbiters: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory: crate::core::limits::SESSION_MEMORY,
        }
    }
}
