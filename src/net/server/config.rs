//! A node's limits and timeouts.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::core::limits::{Limits, SESSION_MEMORY};
use crate::net::auth::Credentials;
use crate::net::external::LatencyLog;
use crate::net::gate::GateConfig;

/// Limits and timeouts of a node. Every field has a `negotium serve` flag.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// How long an agent may take to answer a turn.
    pub turn_timeout: Duration,
    /// Added to the turn timeout on an agent's first turn, for its setup
    /// after SessionSettings.
    pub setup_allowance: Duration,
    /// How long a session waits for its external agents to join.
    pub join_timeout: Duration,
    /// Sessions running at once.
    pub max_sessions: usize,
    /// Sessions one client address may have running or kept (finished,
    /// result not yet dropped) at once.
    pub max_sessions_per_client: usize,
    /// Agent streams from one client address that have not joined a party.
    pub max_unseated_streams_per_client: usize,
    /// Parties one agent stream may play at once.
    pub max_seats_per_stream: usize,
    /// An agent stream that plays no party for this long is closed.
    pub unseated_stream_timeout: Duration,
    /// Largest gRPC message a client may send.
    pub max_message_bytes: usize,
    pub credentials: Credentials,
    /// TCP connections: caps and idle timeouts.
    pub connections: GateConfig,
    /// What a scenario may be (issues, values, parties, deadline).
    pub limits: Limits,
    /// Estimated bytes all running sessions may hold together.
    pub session_memory: u64,
    /// Finished sessions kept for `GetResult` (oldest dropped first) ...
    pub keep_results: usize,
    /// ... and the bytes their results may take together.
    pub keep_result_bytes: u64,
    /// Models remote scenarios may name (`{ learned = "NAME" }` is
    /// `NAME.mpk` here); `None`: no learned strategies from callers.
    pub models: Option<PathBuf>,
    /// Threads hosting sessions.
    pub arbiters: usize,
    /// Collect turn round-trip times (benchmarks).
    pub latencies: Option<Arc<LatencyLog>>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            turn_timeout: Duration::from_secs(10),
            setup_allowance: Duration::from_secs(10),
            join_timeout: Duration::from_secs(60),
            max_sessions: 10_000,
            max_sessions_per_client: 1_000,
            max_unseated_streams_per_client: 16,
            max_seats_per_stream: 4_096,
            unseated_stream_timeout: Duration::from_secs(60),
            max_message_bytes: 1 << 20,
            credentials: Credentials::default(),
            connections: GateConfig::default(),
            limits: Limits::default(),
            session_memory: SESSION_MEMORY,
            keep_results: 100_000,
            keep_result_bytes: 256 << 20,
            models: None,
            arbiters: std::thread::available_parallelism().map_or(1, |n| n.get()),
            latencies: None,
        }
    }
}
