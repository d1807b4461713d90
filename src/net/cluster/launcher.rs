//! The launcher: places sessions on nodes and streams their results back.
//!
//! One task owns all state (nodes, sessions in flight, the retry queue) and
//! reacts to events from per-node connection tasks and to a heartbeat tick;
//! nothing is shared, so exactly-once is a property of one `HashMap`: a
//! session is reported when its current attempt's result (and, for a split
//! session, every remote party's `SeatDone`) has arrived, and never again.
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

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use thiserror::Error;
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::UnboundedReceiverStream;

use super::ScenarioWire;
use super::config::{ClusterConfig, Placement};
use crate::core::session::SessionResult;
use crate::core::strategy::StrategySpec;
use crate::net::auth::Secret;
use crate::net::client::{AdminToken, ClientTls, connect};
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

/// How a run went, beyond its results.
#[derive(Debug, Default, Clone)]
pub struct Report {
    pub sessions: u64,
    /// Sessions that ran more than once because a node was lost.
    pub retried: u64,
    /// Every node that took part.
    pub nodes: Vec<String>,
    /// Nodes lost during the run.
    pub lost: Vec<String>,
}

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

/// Runs `jobs` on the cluster, calling `on_done` on this thread for each
/// session as it finishes (in finishing order). `on_done` failing stops the
/// run. Blocks until every job has been reported.
pub fn run_blocking(
    launch: Launch,
    jobs: Box<dyn Iterator<Item = Job> + Send>,
    mut on_done: impl FnMut(Finished) -> Result<(), String>,
) -> Result<Report, LaunchError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| LaunchError::Runtime(e.to_string()))?;
    let (tx, mut rx) = mpsc::channel::<Finished>(1024);
    let handle = runtime.spawn(run(launch, jobs, tx));
    while let Some(done) = rx.blocking_recv() {
        if let Err(e) = on_done(done) {
            handle.abort();
            return Err(LaunchError::Consumer(e));
        }
    }
    runtime.block_on(handle).map_err(|e| LaunchError::Runtime(e.to_string()))?
}

/// A session queued again: the next placement number, the re-runs so far,
/// and the nodes to avoid.
struct Retry {
    job: Job,
    attempt: u32,
    reruns: u32,
    avoid: Vec<usize>,
}

/// Events the launcher's task may have waiting from its nodes.
const EVENT_BUFFER: usize = 4096;
/// Longest pause between dials of a node that keeps being lost.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

enum Event {
    /// Sends to the node; unbounded: the launcher's windows bound what it
    /// sends (sessions, their seats, scenarios) besides one heartbeat a
    /// period.
    Connected(mpsc::UnboundedSender<pb::LauncherMessage>),
    Message(pb::NodeMessage),
    Closed(String),
    /// The node refused this launcher's credentials: retrying cannot help.
    Unauthorized(String),
}

#[derive(PartialEq)]
enum LinkState {
    Connecting,
    Live,
    Down,
}

struct Node {
    addr: String,
    /// The most sessions the node hosts for this launcher (its Hello).
    max_sessions: usize,
    /// Pause before the next dial: doubles each time the node is lost.
    backoff: Duration,
    /// Where other nodes reach it (its `--advertise`, else `addr`).
    reachable: String,
    state: LinkState,
    /// Connection generation: events of an older connection are ignored.
    generation: u64,
    tx: Option<mpsc::UnboundedSender<pb::LauncherMessage>>,
    /// Scenarios this connection holds: (last use, sessions in flight).
    loaded: HashMap<u32, (u64, u32)>,
    hosting: usize,
    draining: bool,
    /// Another node's link to it broke: no new work until it answers a
    /// heartbeat sent after that.
    suspect: Option<Instant>,
    last_seen: Instant,
    last_dial: Instant,
    last_problem: String,
}

/// Why a session is queued again.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Requeue {
    /// It failed where it ran: counts toward the attempt limit.
    Failed,
    /// A node it needed was lost: a re-run, but not the session's fault.
    Lost,
    /// A draining node refused it before it ran: not a re-run.
    Refused,
}

/// Scenarios a node keeps loaded for one launcher (the node refuses more).
use super::node::MAX_LOADED;

impl Node {
    /// A session of `scenario` hosted here is over (or will not count).
    fn release(&mut self, scenario: u32) {
        self.hosting = self.hosting.saturating_sub(1);
        if let Some((_, in_flight)) = self.loaded.get_mut(&scenario) {
            *in_flight = in_flight.saturating_sub(1);
        }
    }

    fn send(&self, kind: pb::launcher_message::Kind) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(pb::LauncherMessage { kind: Some(kind) });
        }
    }
}

struct Running {
    job: Job,
    /// Placement number: messages of older placements are ignored.
    attempt: u32,
    /// Times the session ran before and was lost to a fault (a refusal by
    /// a draining node is not one).
    reruns: u32,
    /// Nodes earlier attempts were lost or failed on: avoided for re-runs.
    avoid: Vec<usize>,
    host: usize,
    /// (party, node) of every remote party.
    seats: Vec<(usize, usize)>,
    /// Remote parties whose node said `SeatDone` (each counted once).
    seats_done: Vec<usize>,
    result: Option<SessionResult>,
}

struct Launcher {
    launch: Launch,
    /// Scenario uses so far (the clock of the loaded-scenario LRU).
    uses: u64,
    nodes: Vec<Node>,
    running: HashMap<u64, Running>,
    /// Jobs to run again.
    retry: VecDeque<Retry>,
    jobs: Box<dyn Iterator<Item = Job> + Send>,
    jobs_left: bool,
    /// From the per-node connection tasks; bounded, so a flood from a node
    /// waits in its TCP window rather than in memory.
    events: mpsc::Sender<(usize, u64, Event)>,
    out: mpsc::Sender<Finished>,
    report: Report,
    retried: HashSet<u64>,
    next_node: usize,
    started: Instant,
}

async fn run(
    launch: Launch,
    jobs: Box<dyn Iterator<Item = Job> + Send>,
    out: mpsc::Sender<Finished>,
) -> Result<Report, LaunchError> {
    let (events, mut inbox) = mpsc::channel(EVENT_BUFFER);
    let mut l = Launcher {
        launch,
        uses: 0,
        nodes: Vec::new(),
        running: HashMap::new(),
        retry: VecDeque::new(),
        jobs,
        jobs_left: true,
        events,
        out,
        report: Report::default(),
        retried: HashSet::new(),
        next_node: 0,
        started: Instant::now(),
    };
    l.discover().await;
    let mut tick = tokio::time::interval(l.launch.config.heartbeat.min(Duration::from_millis(500)));
    let mut last_heartbeat = Instant::now();
    let mut last_discovery = Instant::now();
    let mut none_live_since: Option<Instant> = None;
    loop {
        l.dispatch().await?;
        if !l.jobs_left && l.retry.is_empty() && l.running.is_empty() {
            break;
        }
        tokio::select! {
            event = inbox.recv() => {
                let (node, generation, event) = event.expect("the launcher holds a sender");
                l.handle(node, generation, event)?;
            }
            _ = tick.tick() => {
                let now = Instant::now();
                if now.duration_since(last_heartbeat) >= l.launch.config.heartbeat {
                    last_heartbeat = now;
                    l.heartbeat()?;
                }
                if now.duration_since(last_discovery) >= Duration::from_secs(2) {
                    last_discovery = now;
                    l.discover().await;
                }
                l.redial();
                if l.nodes.iter().any(|n| n.state == LinkState::Live) {
                    none_live_since = None;
                } else {
                    let since = *none_live_since.get_or_insert(now);
                    if now.duration_since(since) > l.launch.config.no_node_timeout {
                        let problem = l.nodes.iter().map(|n| format!("{}: {}", n.addr, n.last_problem))
                            .collect::<Vec<_>>().join("; ");
                        return Err(LaunchError::NoNodes(now.duration_since(since).as_secs_f64(),
                            if problem.is_empty() { "no node address resolved".into() } else { problem }));
                    }
                }
            }
        }
    }
    l.report.retried = l.retried.len() as u64;
    Ok(l.report)
}

impl Launcher {
    /// Adds nodes that discovery knows and the launcher does not.
    async fn discover(&mut self) {
        for addr in self.launch.config.resolve().await {
            if !self.nodes.iter().any(|n| n.addr == addr) {
                let past = Instant::now() - Duration::from_secs(3600);
                self.nodes.push(Node {
                    reachable: addr.clone(),
                    max_sessions: usize::MAX,
                    backoff: Duration::from_secs(1),
                    addr,
                    state: LinkState::Down,
                    generation: 0,
                    tx: None,
                    loaded: HashMap::new(),
                    hosting: 0,
                    draining: false,
                    suspect: None,
                    last_seen: past,
                    last_dial: past,
                    last_problem: String::new(),
                });
            }
        }
        self.redial();
    }

    /// Dials nodes that are down, each after its backoff.
    fn redial(&mut self) {
        let now = Instant::now();
        for (i, n) in self.nodes.iter_mut().enumerate() {
            if n.state != LinkState::Down || now.duration_since(n.last_dial) < n.backoff {
                continue;
            }
            n.state = LinkState::Connecting;
            n.last_dial = now;
            n.generation += 1;
            let (events, addr, generation) = (self.events.clone(), n.addr.clone(), n.generation);
            let timeout = self.launch.config.node_timeout;
            let (tls, token) = (self.launch.config.tls.clone(), self.launch.config.token.clone());
            tokio::spawn(async move {
                let end = open(&addr, tls.as_ref(), token, i, generation, timeout, &events).await;
                let _ = events.send((i, generation, end)).await;
            });
        }
    }

    fn heartbeat(&mut self) -> Result<(), LaunchError> {
        let now = Instant::now();
        let timeout = self.launch.config.node_timeout;
        let mut dead = Vec::new();
        for (i, n) in self.nodes.iter().enumerate() {
            if n.state == LinkState::Live {
                if now.duration_since(n.last_seen) > timeout {
                    dead.push(i);
                } else {
                    n.send(pb::launcher_message::Kind::Heartbeat(pb::Heartbeat { sent_unix_ms: 0 }));
                }
            }
        }
        for i in dead {
            let silent = format!("silent for {:.1} s", timeout.as_secs_f64());
            self.lose(i, silent)?;
        }
        Ok(())
    }

    fn live(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| {
                let n = &self.nodes[i];
                n.state == LinkState::Live && !n.draining && n.suspect.is_none()
            })
            .collect()
    }

    /// Places sessions while some node has room in its window.
    async fn dispatch(&mut self) -> Result<(), LaunchError> {
        // At the start, wait for the nodes being dialled (up to the node
        // timeout): the first to answer would otherwise take whole windows
        // before the others are up.
        if self.started.elapsed() < self.launch.config.node_timeout
            && self.nodes.iter().any(|n| n.state == LinkState::Connecting && n.generation == 1)
        {
            return Ok(());
        }
        loop {
            let live = self.live();
            if live.is_empty() {
                return Ok(());
            }
            let window = self.launch.config.window;
            // Room for a session, and for its scenario: a node whose loaded
            // scenarios are all in use (a window above MAX_LOADED) takes
            // no new scenario until one is idle.
            let room = |n: &Node| {
                n.hosting < window.min(n.max_sessions)
                    && (n.loaded.len() < MAX_LOADED || n.loaded.values().any(|&(_, in_flight)| in_flight == 0))
            };
            if !live.iter().any(|&i| room(&self.nodes[i])) {
                return Ok(());
            }
            let Retry { job, attempt, reruns, avoid } = match self.retry.pop_front() {
                Some(r) => r,
                None => match self.jobs_left.then(|| self.jobs.next()).flatten() {
                    Some(job) => Retry { job, attempt: 0, reruns: 0, avoid: Vec::new() },
                    None => {
                        self.jobs_left = false;
                        return Ok(());
                    }
                },
            };
            // The least loaded node with room, one the session was not lost
            // on where there is one; ties go round robin.
            let start = self.next_node;
            let by_load = |avoiding: bool| {
                (0..live.len())
                    .map(|k| (k + start) % live.len())
                    .filter(|&k| room(&self.nodes[live[k]]) && !(avoiding && avoid.contains(&live[k])))
                    .min_by_key(|&k| self.nodes[live[k]].hosting)
            };
            let pos = by_load(true).or_else(|| by_load(false)).expect("a node with room exists");
            self.next_node = (pos + 1) % live.len();
            let host = live[pos];
            let n = job.strategies.len();
            let seats: Vec<(usize, usize)> = match self.launch.config.placement {
                Placement::Split if live.len() > 1 => {
                    (1..n).map(|k| (k, live[(pos + k) % live.len()])).filter(|&(_, node)| node != host).collect()
                }
                _ => Vec::new(),
            };
            self.uses += 1;
            let node = &mut self.nodes[host];
            match node.loaded.get_mut(&job.scenario) {
                Some((last, in_flight)) => {
                    *last = self.uses;
                    *in_flight += 1;
                }
                None => {
                    // Runs over many scenarios (W draws one per negotiation):
                    // free the least recently used idle one first, so that
                    // the node never holds more than MAX_LOADED.
                    if node.loaded.len() >= MAX_LOADED
                        && let Some(old) = node
                            .loaded
                            .iter()
                            .filter(|(_, (_, in_flight))| *in_flight == 0)
                            .min_by_key(|(_, (last, _))| *last)
                            .map(|(&id, _)| id)
                    {
                        node.loaded.remove(&old);
                        node.send(pb::launcher_message::Kind::Unload(pb::UnloadScenario { id: old }));
                    }
                    let wire = &self.launch.scenarios[job.scenario as usize];
                    let scenario_json =
                        serde_json::to_string(wire).map_err(|e| LaunchError::Scenario(e.to_string()))?;
                    node.send(pb::launcher_message::Kind::Scenario(pb::LoadScenario {
                        id: job.scenario,
                        scenario_json,
                    }));
                    node.loaded.insert(job.scenario, (self.uses, 1));
                }
            }
            node.send(pb::launcher_message::Kind::Host(pb::HostSession {
                job: job.key,
                attempt,
                scenario: job.scenario,
                strategies: job.strategies.iter().map(|s| s.to_json().to_string()).collect(),
                seed: job.seed,
                remote: seats.iter().map(|&(k, _)| k as u32).collect(),
                trace: self.launch.trace,
            }));
            node.hosting += 1;
            let r = Running { job, attempt, reruns, avoid, host, seats, seats_done: Vec::new(), result: None };
            self.running.insert(r.job.key, r);
            // Let node events in between when the windows are large.
            tokio::task::yield_now().await;
        }
    }

    fn handle(&mut self, i: usize, generation: u64, event: Event) -> Result<(), LaunchError> {
        if self.nodes[i].generation != generation {
            return Ok(());
        }
        match event {
            Event::Connected(tx) => {
                let n = &mut self.nodes[i];
                tracing::info!(node = %n.addr, "node connected");
                n.state = LinkState::Live;
                n.tx = Some(tx);
                n.loaded.clear();
                n.hosting = 0;
                n.draining = false;
                n.suspect = None;
                n.last_seen = Instant::now();
                n.last_problem.clear();
                if !self.report.nodes.contains(&n.addr) {
                    self.report.nodes.push(n.addr.clone());
                }
            }
            Event::Closed(reason) => {
                if self.nodes[i].state == LinkState::Live {
                    self.lose(i, reason)?;
                } else {
                    let n = &mut self.nodes[i];
                    n.state = LinkState::Down;
                    n.tx = None;
                    n.last_problem = reason;
                }
            }
            Event::Unauthorized(reason) => {
                return Err(LaunchError::Unauthorized(self.nodes[i].addr.clone(), reason));
            }
            Event::Message(m) => {
                self.nodes[i].last_seen = Instant::now();
                if let Some(kind) = m.kind {
                    self.on_message(i, kind)?;
                }
            }
        }
        Ok(())
    }

    fn on_message(&mut self, i: usize, kind: pb::node_message::Kind) -> Result<(), LaunchError> {
        use pb::node_message::Kind;
        let current =
            |r: &HashMap<u64, Running>, job: u64, attempt: u32| r.get(&job).is_some_and(|r| r.attempt == attempt);
        match kind {
            Kind::Hello(h) => {
                let n = &mut self.nodes[i];
                if !h.advertise.is_empty() {
                    n.reachable = h.advertise;
                }
                // Older nodes say nothing: no cap of theirs to respect.
                n.max_sessions = if h.max_sessions == 0 { usize::MAX } else { h.max_sessions as usize };
            }
            Kind::Heartbeat(_) => {
                // The answer to a heartbeat sent after the suspicion clears it.
                let n = &mut self.nodes[i];
                if n.suspect.is_some_and(|since| since.elapsed() > self.launch.config.heartbeat) {
                    n.suspect = None;
                }
            }
            Kind::Hosted(h) if current(&self.running, h.job, h.attempt) => {
                let r = &self.running[&h.job];
                let host = self.nodes[r.host].reachable.clone();
                let mut lost = None;
                for &(party, node) in &r.seats {
                    let name = &self.launch.scenarios[r.job.scenario as usize].parties[party].0;
                    let Some(token) = h.tokens.iter().find(|t| &t.party == name) else {
                        return Err(LaunchError::Runtime(format!("the host issued no token for party `{name}`")));
                    };
                    if self.nodes[node].state != LinkState::Live {
                        lost = Some(node);
                        break;
                    }
                    self.nodes[node].send(pb::launcher_message::Kind::Seat(pb::PlaySeat {
                        job: h.job,
                        attempt: h.attempt,
                        host: host.clone(),
                        session_id: h.session_id.clone(),
                        party: name.clone(),
                        token: token.token.clone(),
                        strategy: r.job.strategies[party].to_json().to_string(),
                        party_index: party as u32,
                    }));
                }
                if let Some(node) = lost {
                    let reason = format!("node {} went away before it could play its party", self.nodes[node].addr);
                    self.requeue(h.job, reason, Requeue::Lost, Some(node))?;
                }
            }
            Kind::Done(d) if current(&self.running, d.job, d.attempt) => {
                let result: SessionResult = serde_json::from_str(&d.result_json).map_err(|e| {
                    LaunchError::Runtime(format!("node {}: unreadable result: {e}", self.nodes[i].addr))
                })?;
                self.running.get_mut(&d.job).expect("current").result = Some(result);
                self.complete_if_done(d.job);
            }
            Kind::SeatDone(s) if current(&self.running, s.job, s.attempt) => {
                let r = self.running.get_mut(&s.job).expect("current");
                let party = s.party as usize;
                if r.seats.iter().any(|&(p, _)| p == party) && !r.seats_done.contains(&party) {
                    r.seats_done.push(party);
                }
                self.complete_if_done(s.job);
            }
            Kind::Failed(f) if current(&self.running, f.job, f.attempt) => {
                if f.draining {
                    self.nodes[i].draining = true;
                    tracing::info!(node = %self.nodes[i].addr, "node is draining; placing its sessions elsewhere");
                }
                if !f.peer.is_empty()
                    && let Some(n) = self.nodes.iter_mut().find(|n| n.reachable == f.peer && n.state == LinkState::Live)
                {
                    n.suspect.get_or_insert_with(Instant::now);
                }
                let reason = format!("node {}: {}", self.nodes[i].addr, f.message);
                // A broken link to a host counts as an attempt: a node that
                // died costs one, a link that can never open (TLS settings)
                // ends the run with its reason instead of retrying forever.
                self.requeue(f.job, reason, if f.draining { Requeue::Refused } else { Requeue::Failed }, Some(i))?;
            }
            // A message of an attempt that no longer counts.
            _ => {}
        }
        Ok(())
    }

    fn complete_if_done(&mut self, key: u64) {
        let r = &self.running[&key];
        if r.result.is_none() || r.seats_done.len() < r.seats.len() {
            return;
        }
        let r = self.running.remove(&key).expect("present");
        let host = &mut self.nodes[r.host];
        host.release(r.job.scenario);
        // It works again: the next loss starts the backoff afresh.
        host.backoff = Duration::from_secs(1);
        self.report.sessions += 1;
        let done =
            Finished { key, result: r.result.expect("checked"), node: host.addr.clone(), attempts: r.reruns + 1 };
        // The consumer is slower than the nodes: wait for it (backpressure
        // all the way to the windows).
        let out = self.out.clone();
        if let Err(mpsc::error::TrySendError::Full(done)) = out.try_send(done) {
            let _ = tokio::task::block_in_place(|| out.blocking_send(done).is_ok());
        }
    }

    /// Queues `key` again under a new placement number, avoiding `on` (the
    /// node it failed or was lost on). Every re-run but a draining node's
    /// refusal counts toward the attempt limit.
    fn requeue(&mut self, key: u64, reason: String, why: Requeue, on: Option<usize>) -> Result<(), LaunchError> {
        let Some(r) = self.running.remove(&key) else { return Ok(()) };
        self.nodes[r.host].release(r.job.scenario);
        let reruns = r.reruns + u32::from(why != Requeue::Refused);
        let mut avoid = r.avoid;
        if let Some(n) = on.filter(|n| !avoid.contains(n)) {
            avoid.push(n);
        }
        if why != Requeue::Refused && reruns >= self.launch.config.max_attempts {
            let nodes: Vec<&str> = avoid.iter().map(|&n| self.nodes[n].addr.as_str()).collect();
            let message = format!("{reason} (earlier attempts ended on: {})", nodes.join(", "));
            return Err(LaunchError::Exhausted { key, attempts: reruns, message });
        }
        tracing::debug!(session = key, reruns, "session queued again: {reason}");
        if why != Requeue::Refused {
            self.retried.insert(key);
        }
        self.retry.push_back(Retry { job: r.job, attempt: r.attempt + 1, reruns, avoid });
        Ok(())
    }

    /// Node `i` is gone: every session it hosted or played in runs again.
    fn lose(&mut self, i: usize, reason: String) -> Result<(), LaunchError> {
        let n = &mut self.nodes[i];
        n.state = LinkState::Down;
        n.tx = None;
        n.hosting = 0;
        n.last_problem = reason.clone();
        let drained = n.draining && !self.running.values().any(|r| r.host == i || r.seats.iter().any(|&(_, s)| s == i));
        if drained {
            // It said it was stopping and finished its work: not a loss.
            tracing::info!(node = %n.addr, "node drained and left: {reason}");
            return Ok(());
        }
        n.backoff = (n.backoff * 2).min(MAX_BACKOFF);
        tracing::warn!(node = %n.addr, "node lost: {reason}");
        if !self.report.lost.contains(&n.addr) {
            self.report.lost.push(n.addr.clone());
        }
        let affected: Vec<u64> = self
            .running
            .iter()
            .filter(|(_, r)| r.host == i || r.seats.iter().any(|&(_, node)| node == i))
            .map(|(&k, _)| k)
            .collect();
        let why = format!("node {} lost: {reason}", self.nodes[i].addr);
        tracing::warn!(node = %self.nodes[i].addr, sessions = affected.len(), "re-running the node's sessions elsewhere");
        for key in affected {
            self.requeue(key, why.clone(), Requeue::Lost, Some(i))?;
        }
        Ok(())
    }
}

/// Opens the work stream to `addr` and forwards its messages; returns how
/// it ended (`Closed` with why, or `Unauthorized`).
async fn open(
    addr: &str,
    tls: Option<&ClientTls>,
    token: Option<Secret>,
    node: usize,
    generation: u64,
    timeout: Duration,
    events: &mpsc::Sender<(usize, u64, Event)>,
) -> Event {
    let (tx, rx) = mpsc::unbounded_channel();
    let opening = async {
        let channel = connect(&ClientTls::url(tls, addr), tls.map(ClientTls::config))
            .await
            .map_err(|e| Event::Closed(e.to_string()))?;
        let mut client = ClusterClient::with_interceptor(channel, AdminToken::new(token.map(|t| t.expose().into())))
            .max_decoding_message_size(64 << 20)
            .max_encoding_message_size(64 << 20);
        match client.work(UnboundedReceiverStream::new(rx)).await {
            Ok(r) => Ok(r.into_inner()),
            Err(status) if matches!(status.code(), tonic::Code::Unauthenticated | tonic::Code::PermissionDenied) => {
                Err(Event::Unauthorized(status.message().to_string()))
            }
            Err(status) => Err(Event::Closed(format!("refused: {}", status.message()))),
        }
    };
    let mut inbound = match tokio::time::timeout(timeout, opening).await {
        Ok(Ok(inbound)) => inbound,
        Ok(Err(end)) => return end,
        Err(_) => return Event::Closed(format!("no answer within {:.1} s", timeout.as_secs_f64())),
    };
    let _ = events.send((node, generation, Event::Connected(tx))).await;
    loop {
        match inbound.next().await {
            None => return Event::Closed("the node closed the stream".into()),
            Some(Err(status)) => return Event::Closed(format!("stream broke: {}", status.message())),
            Some(Ok(m)) => {
                if events.send((node, generation, Event::Message(m))).await.is_err() {
                    return Event::Closed("the launcher stopped".into());
                }
            }
        }
    }
}
