//! The launcher: places sessions on nodes and streams their results back.
//!
//! - [`core`] decides: placement, heartbeats, which node is dead, re-runs,
//!   exactly-once. It is a state machine with time as an input.
//! - this module is its shell: one task that dials nodes, moves messages,
//!   resolves DNS and hands results to the consumer, doing what the core
//!   says and nothing else.
//! - `sim` (tests only) runs the core against simulated nodes and links
//!   under seeded fault schedules.
//!
//! Faults: a node whose stream ends, or that misses heartbeats for the node
//! timeout, is dead; every session it hosted or played a party of is queued
//! again under a new attempt (same seed: same negotiation), and late messages
//! of the old attempt are ignored. A re-run goes to a node it was not lost
//! on where there is one, and counts toward the attempt limit: a session
//! that takes down every node it touches ends the run with its story
//! instead of walking through the cluster. Nodes that are down are dialled
//! again after a pause that doubles each time they are lost (1 s to 30 s),
//! and DNS is resolved again every few seconds, so a node that starts late
//! gets work.

pub mod core;
#[cfg(test)]
mod sim;

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use thiserror::Error;
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::UnboundedReceiverStream;

pub use self::core::Notice;
use self::core::{Command, Core, Link};
use super::ScenarioWire;
use super::config::ClusterConfig;
use crate::core::session::SessionResult;
use crate::core::strategy::StrategySpec;
use crate::net::client::{AdminToken, ClientError, ClientTls, connect};
use crate::net::pb;
use crate::net::pb::cluster_client::ClusterClient;

/// One session to run: which scenario (an index into
/// [`Launch::scenarios`]), the strategy of each party in turn order, and
/// its seed. `key` is the caller's name for it, returned with its result.
#[derive(Debug, Clone)]
pub struct Job {
    pub key: u64,
    pub scenario: u32,
    pub strategies: Vec<StrategySpec>,
    pub seed: u64,
}

/// A session's result, reported once.
#[derive(Debug, Clone)]
pub struct Finished {
    pub key: u64,
    pub result: SessionResult,
    /// The node that hosted the attempt that counted.
    pub node: String,
    /// 1 unless earlier attempts were lost with a node.
    pub attempts: u32,
}

/// What to run.
pub struct Launch {
    pub config: ClusterConfig,
    pub scenarios: Vec<ScenarioWire>,
    /// Keep every offer in the results.
    pub trace: bool,
}

/// How a run went, beyond its results: the engine's batch report.
pub use crate::engine::executor::Report;

#[derive(Debug, Error)]
pub enum LaunchError {
    #[error("no node reachable for {0:.0} s (last problem: {1})")]
    NoNodes(f64, String),
    #[error("session {key} gave up after {attempts} attempts (--max-attempts); last: {message}")]
    Exhausted { key: u64, attempts: u32, message: String },
    #[error("a scenario cannot be sent: {0}")]
    Scenario(String),
    #[error(
        "node {0} refused this launcher: {1} (give the nodes' cluster token: --cluster-token, NEGOTIUM_CLUSTER_TOKEN or the cluster file's token_file)"
    )]
    Unauthorized(String, String),
    #[error("{0}")]
    Runtime(String),
    #[error("stopped: {0}")]
    Consumer(String),
}

/// What the launcher hands its caller, in order.
#[derive(Debug)]
pub enum Up {
    /// A session's result.
    Done(Finished),
    /// Something to tell the person running it (see [`Notice`]).
    Notice(Notice),
}

/// Runs `jobs` on the cluster on `runtime`, calling `on_done` on this
/// thread for each session as it finishes (in finishing order), and
/// `on_notice` with what the person running it should hear. `on_done`
/// failing stops the run. Blocks until every job has been reported; call it
/// from outside the runtime.
pub fn run_blocking(
    runtime: &tokio::runtime::Handle,
    launch: Launch,
    jobs: Box<dyn Iterator<Item = Job> + Send>,
    mut on_done: impl FnMut(Finished) -> Result<(), String>,
    mut on_notice: impl FnMut(&Notice),
) -> Result<Report, LaunchError> {
    let (tx, mut rx) = mpsc::channel::<Up>(RESULT_BUFFER);
    let handle = runtime.spawn(run(launch, jobs, tx));
    while let Some(up) = rx.blocking_recv() {
        match up {
            Up::Done(done) => {
                if let Err(e) = on_done(done) {
                    handle.abort();
                    return Err(LaunchError::Consumer(e));
                }
            }
            Up::Notice(n) => on_notice(&n),
        }
    }
    runtime.block_on(handle).map_err(|e| LaunchError::Runtime(e.to_string()))?
}

/// Results on their way to the consumer; past it they wait in the shell's
/// backlog, which the core bounds ([`core::REPORT_BACKLOG`]).
const RESULT_BUFFER: usize = 64;
/// Events the launcher's task may have waiting from its nodes.
const EVENT_BUFFER: usize = 4096;

/// What a node's connection task tells the shell.
enum StreamEvent {
    /// The stream is open; unbounded, because the core's windows bound what
    /// it sends (sessions, their seats, scenarios) besides one heartbeat a
    /// period.
    Opened(mpsc::UnboundedSender<pb::LauncherMessage>),
    Link(Link),
}

/// The shell around [`Core`]: carries out its commands and feeds it events,
/// ticks, discovery answers and the consumer's progress. It waits only in
/// `select!`, so the core hears its nodes however slow the consumer or DNS.
pub async fn run(
    launch: Launch,
    jobs: Box<dyn Iterator<Item = Job> + Send>,
    out: mpsc::Sender<Up>,
) -> Result<Report, LaunchError> {
    let config = launch.config.clone();
    let mut core = Core::new(launch, jobs, Instant::now());
    // From the per-node connection tasks; bounded, so a flood from a node
    // waits in its TCP window rather than in memory.
    let (events, mut inbox) = mpsc::channel::<(usize, u64, StreamEvent)>(EVENT_BUFFER);
    // One resolution at a time is out (the core asks for the next only
    // after this one answered).
    let (resolved_tx, mut resolved) = mpsc::channel::<Result<Vec<String>, String>>(1);
    // Each node's open stream, by generation: the core addresses a stream,
    // not a node, so nothing meant for a dead stream reaches its successor.
    let mut streams: HashMap<usize, (u64, mpsc::UnboundedSender<pb::LauncherMessage>)> = HashMap::new();
    // Results and notices on their way to the caller, in order; the core
    // bounds the results, and rate-limits the notices.
    let mut backlog: VecDeque<Up> = VecDeque::new();
    let mut tick = tokio::time::interval(core::tick_period(config.heartbeat));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        for command in core.take_commands() {
            match command {
                Command::Dial { node, addr, generation } => {
                    let (events, config) = (events.clone(), config.clone());
                    tokio::spawn(async move {
                        let end = open(&addr, &config, node, generation, &events).await;
                        let _ = events.send((node, generation, StreamEvent::Link(end))).await;
                    });
                }
                Command::Send { node, generation, message } => {
                    if let Some((g, tx)) = streams.get(&node)
                        && *g == generation
                    {
                        let _ = tx.send(message);
                    }
                }
                Command::Close { node, generation } => {
                    // Dropping the sender ends the stream to the node.
                    if streams.get(&node).is_some_and(|(g, _)| *g == generation) {
                        streams.remove(&node);
                    }
                }
                Command::Report(done) => backlog.push_back(Up::Done(*done)),
                Command::Notice(notice) => backlog.push_back(Up::Notice(notice)),
                Command::Resolve => {
                    let (config, resolved_tx) = (config.clone(), resolved_tx.clone());
                    tokio::spawn(async move {
                        let _ = resolved_tx.send(config.resolve().await).await;
                    });
                }
            }
        }
        if core.finished() {
            break;
        }
        tokio::select! {
            Some((node, generation, event)) = inbox.recv() => {
                let link = match event {
                    StreamEvent::Opened(tx) => {
                        streams.insert(node, (generation, tx));
                        Link::Connected
                    }
                    StreamEvent::Link(link) => {
                        if matches!(link, Link::Closed(_) | Link::Unauthorized(_))
                            && streams.get(&node).is_some_and(|(g, _)| *g == generation)
                        {
                            streams.remove(&node);
                        }
                        link
                    }
                };
                core.on_event(node, generation, link, Instant::now())?;
            }
            Some(answer) = resolved.recv() => match answer {
                Ok(addrs) => core.discovered(addrs, Instant::now())?,
                Err(reason) => core.discovery_failed(reason, Instant::now())?,
            },
            permit = out.reserve(), if !backlog.is_empty() => {
                let permit = permit.map_err(|_| LaunchError::Consumer("the results consumer stopped".into()))?;
                let up = backlog.pop_front().expect("not empty");
                let result = matches!(up, Up::Done(_));
                permit.send(up);
                if result {
                    core.consumed(1, Instant::now())?;
                }
            }
            _ = tick.tick() => core.tick(Instant::now())?,
        }
    }
    Ok(core.report())
}

/// Why a dial failed, in the words a person needs: the address is said
/// beside it, so only the cause ("tcp connect error: Connection refused").
fn unreachable(e: ClientError) -> String {
    match e {
        ClientError::Connect { reason, .. } => reason,
        other => other.to_string(),
    }
}

/// Opens the work stream to `addr` and forwards its messages; returns how
/// it ended (`Closed` with why, or `Unauthorized`).
async fn open(
    addr: &str,
    config: &ClusterConfig,
    node: usize,
    generation: u64,
    events: &mpsc::Sender<(usize, u64, StreamEvent)>,
) -> Link {
    let (tls, timeout) = (config.tls.as_ref(), config.node_timeout);
    let token = config.token.as_ref().map(|t| t.expose().to_string());
    let (tx, rx) = mpsc::unbounded_channel();
    let opening = async {
        let channel = connect(addr, tls.map(ClientTls::config)).await.map_err(|e| Link::Closed(unreachable(e)))?;
        let mut client = ClusterClient::with_interceptor(channel, AdminToken::new(token))
            .max_decoding_message_size(64 << 20)
            .max_encoding_message_size(64 << 20);
        match client.work(UnboundedReceiverStream::new(rx)).await {
            Ok(r) => Ok(r.into_inner()),
            Err(status) if matches!(status.code(), tonic::Code::Unauthenticated | tonic::Code::PermissionDenied) => {
                Err(Link::Unauthorized(status.message().to_string()))
            }
            Err(status) => Err(Link::Closed(format!("refused: {}", status.message()))),
        }
    };
    let mut inbound = match tokio::time::timeout(timeout, opening).await {
        Ok(Ok(inbound)) => inbound,
        Ok(Err(end)) => return end,
        Err(_) => return Link::Closed(format!("no answer within {:.1} s", timeout.as_secs_f64())),
    };
    let _ = events.send((node, generation, StreamEvent::Opened(tx))).await;
    loop {
        match inbound.next().await {
            None => return Link::Closed("the node closed the stream".into()),
            Some(Err(status)) => return Link::Closed(format!("stream broke: {}", status.message())),
            Some(Ok(m)) => {
                if events.send((node, generation, StreamEvent::Link(Link::Message(m)))).await.is_err() {
                    return Link::Closed("the launcher stopped".into());
                }
            }
        }
    }
}
