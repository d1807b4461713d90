//! The launcher's decisions, with no I/O and no clock of its own.
//!
//! [`Core`] is fed what happened — a node's stream opened, sent a message or
//! ended ([`Core::on_event`]), time passed ([`Core::tick`]), discovery
//! answered ([`Core::discovered`]), the consumer took a result
//! ([`Core::consumed`]) — each with the time it happened, and answers with
//! [`Command`]s for the shell to carry out ([`Core::take_commands`]): dial,
//! send, report, resolve. It never waits, so nothing the shell waits on (a
//! slow results writer, a slow DNS answer) can hold up its judgement of the
//! nodes; and because time is an input, the simulated cluster in
//! [`super::sim`] runs it through thousands of fault schedules in seconds.
//!
//! Exactly-once is a property of one map: a session is reported when its
//! current attempt's result (and, for a split session, every remote party's
//! `SeatDone`) has arrived, and is then removed; messages of any other
//! attempt are ignored.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use super::{Finished, Job, Launch, LaunchError, Report};
use crate::core::session::SessionResult;
use crate::net::cluster::config::Placement;
use crate::net::cluster::node::MAX_LOADED;
use crate::net::pb;
use crate::net::pb::launcher_message::Kind as Out;

/// What the shell must do for the core.
#[derive(Debug)]
pub enum Command {
    /// Open a work stream to `addr`; report its events as node `node` of
    /// `generation`.
    Dial { node: usize, addr: String, generation: u64 },
    /// Send on node `node`'s stream of `generation`; a stream that has
    /// ended since drops it (its end is on its way as an event).
    Send { node: usize, generation: u64, message: pb::LauncherMessage },
    /// Close node `node`'s stream of `generation`: the core gave up on it
    /// (silent too long), so the node should see its launcher go.
    Close { node: usize, generation: u64 },
    /// Hand one result to the consumer, then call [`Core::consumed`].
    Report(Box<Finished>),
    /// Resolve the node addresses again and answer with [`Core::discovered`]
    /// (or [`Core::discovery_failed`]).
    Resolve,
    /// Tell the person running the launcher (the command prints it).
    Notice(Notice),
}

/// What a person watching a launcher should hear, when the core judges it
/// worth saying: at once when nothing can run, then only when a reason
/// changes or [`NOTICE_PERIOD`] has passed, never once per dial.
#[derive(Debug, Clone, PartialEq)]
pub enum Notice {
    /// No node is live: the run waits for one, and gives up after `give_up`.
    Waiting { nodes: Vec<String>, give_up: Duration },
    /// A node could not be reached (or its stream broke before it was
    /// ever up): why, and when it is dialled again.
    Unreachable { addr: String, reason: String, retry: Duration },
    /// A node that was said to be unreachable answered.
    Reached { addr: String },
    /// Discovery (DNS) failed: why; it is asked again every few seconds.
    DiscoveryFailed { reason: String },
}

impl Notice {
    /// Something is wrong (not just news).
    pub fn is_warning(&self) -> bool {
        matches!(self, Notice::Unreachable { .. } | Notice::DiscoveryFailed { .. })
    }
}

impl std::fmt::Display for Notice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Notice::Waiting { nodes, give_up } if nodes.is_empty() => write!(
                f,
                "waiting for discovery to find a node (giving up after {:.0} s without one)",
                give_up.as_secs_f64()
            ),
            Notice::Waiting { nodes, give_up } => write!(
                f,
                "waiting for a node to answer (giving up after {:.0} s without one): {}",
                give_up.as_secs_f64(),
                nodes.join(", ")
            ),
            Notice::Unreachable { addr, reason, retry } => {
                write!(f, "node {addr} unreachable: {reason}; dialling again every {:.0} s", retry.as_secs_f64())
            }
            Notice::Reached { addr } => write!(f, "node {addr} answered"),
            Notice::DiscoveryFailed { reason } => {
                write!(f, "discovery failed: {reason}; asking again every {:.0} s", DISCOVERY_PERIOD.as_secs_f64())
            }
        }
    }
}

/// A failure that goes on unchanged is said again after this long.
pub const NOTICE_PERIOD: Duration = Duration::from_secs(10);
/// With no node live this long and no failure heard (dials that hang), the
/// run says what it waits for.
const WAITING_NOTICE_AFTER: Duration = Duration::from_secs(2);

/// What happened on one node's work stream.
#[derive(Debug)]
pub enum Link {
    Connected,
    Message(pb::NodeMessage),
    /// The stream ended or could not be opened, and why.
    Closed(String),
    /// The node refused this launcher's credentials: retrying cannot help.
    Unauthorized(String),
}

/// Results handed to the consumer and not yet taken, past which no new
/// session is placed: a slow consumer slows the run instead of filling
/// memory, while the launcher goes on hearing its nodes.
pub const REPORT_BACKLOG: usize = 1024;
/// How often discovery is asked again (a node started late gets work).
const DISCOVERY_PERIOD: Duration = Duration::from_secs(2);
/// Longest pause between dials of a node that keeps being lost.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// First pause before redialling a lost node.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);

/// How often the shell should call [`Core::tick`].
pub fn tick_period(heartbeat: Duration) -> Duration {
    heartbeat.min(Duration::from_millis(500))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
    /// Stream generation: events of an older stream are ignored.
    generation: u64,
    /// Scenarios this stream holds: (last use, sessions in flight).
    loaded: HashMap<u32, (u64, u32)>,
    hosting: usize,
    draining: bool,
    /// Another node's link to it broke: no new work until it answers a
    /// heartbeat sent after that.
    suspect: Option<Instant>,
    last_seen: Instant,
    last_dial: Instant,
    last_problem: String,
    /// The last reason a notice gave for this node being unreachable, and
    /// when.
    shown: Option<(String, Instant)>,
}

impl Node {
    /// A session of `scenario` hosted here is over (or will not count).
    fn release(&mut self, scenario: u32) {
        self.hosting = self.hosting.saturating_sub(1);
        if let Some((_, in_flight)) = self.loaded.get_mut(&scenario) {
            *in_flight = in_flight.saturating_sub(1);
        }
    }
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

/// A session queued again: the next placement number, the re-runs so far,
/// and the nodes to avoid.
struct Retry {
    job: Job,
    attempt: u32,
    reruns: u32,
    avoid: Vec<usize>,
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

/// The launcher's state and decisions.
pub struct Core {
    launch: Launch,
    /// Scenario uses so far (the clock of the loaded-scenario LRU).
    uses: u64,
    nodes: Vec<Node>,
    running: HashMap<u64, Running>,
    /// Jobs to run again, first in line.
    retry: VecDeque<Retry>,
    jobs: Box<dyn Iterator<Item = Job> + Send>,
    jobs_left: bool,
    commands: Vec<Command>,
    /// Results reported and not yet taken by the consumer.
    unconsumed: usize,
    report: Report,
    retried: HashSet<u64>,
    next_node: usize,
    started: Instant,
    last_tick: Instant,
    last_heartbeat: Instant,
    last_resolve: Instant,
    /// A `Resolve` is out and not answered yet.
    resolving: bool,
    none_live_since: Option<Instant>,
    /// This spell without a live node was announced (`Notice::Waiting`).
    waiting_said: bool,
    /// The last discovery failure a notice gave, and when.
    discovery_shown: Option<(String, Instant)>,
    /// The last discovery failure, for the give-up message.
    discovery_problem: String,
}

impl Core {
    /// A launcher about to start at `now`; its first commands resolve the
    /// nodes.
    pub fn new(launch: Launch, jobs: Box<dyn Iterator<Item = Job> + Send>, now: Instant) -> Self {
        Self {
            launch,
            uses: 0,
            nodes: Vec::new(),
            running: HashMap::new(),
            retry: VecDeque::new(),
            jobs,
            jobs_left: true,
            commands: vec![Command::Resolve],
            unconsumed: 0,
            report: Report::default(),
            retried: HashSet::new(),
            next_node: 0,
            started: now,
            last_tick: now,
            last_heartbeat: now,
            last_resolve: now,
            resolving: true,
            none_live_since: None,
            waiting_said: false,
            discovery_shown: None,
            discovery_problem: String::new(),
        }
    }

    /// What the shell must do now, in order.
    pub fn take_commands(&mut self) -> Vec<Command> {
        std::mem::take(&mut self.commands)
    }

    /// Every session was reported and taken: the run is over.
    pub fn finished(&self) -> bool {
        !self.jobs_left && self.retry.is_empty() && self.running.is_empty() && self.unconsumed == 0
    }

    /// How the run went; complete once [`Core::finished`].
    pub fn report(&self) -> Report {
        Report { retried: self.retried.len() as u64, ..self.report.clone() }
    }

    /// Node addresses discovery knows now; new ones are dialled.
    pub fn discovered(&mut self, addrs: Vec<String>, now: Instant) -> Result<(), LaunchError> {
        self.resolving = false;
        self.discovery_shown = None;
        self.discovery_problem.clear();
        for addr in addrs {
            if !self.nodes.iter().any(|n| n.addr == addr) {
                let past = now.checked_sub(Duration::from_secs(3600)).unwrap_or(now);
                self.nodes.push(Node {
                    reachable: addr.clone(),
                    max_sessions: usize::MAX,
                    backoff: FIRST_BACKOFF,
                    addr,
                    state: LinkState::Down,
                    generation: 0,
                    loaded: HashMap::new(),
                    hosting: 0,
                    draining: false,
                    suspect: None,
                    last_seen: past,
                    last_dial: past,
                    last_problem: String::new(),
                    shown: None,
                });
            }
        }
        self.redial(now);
        self.dispatch(now)
    }

    /// Discovery could not answer (a failed DNS lookup): no node is added
    /// or dropped, since pods come and go; it is asked again.
    pub fn discovery_failed(&mut self, reason: String, now: Instant) -> Result<(), LaunchError> {
        self.resolving = false;
        if self.nodes.iter().all(|n| n.state != LinkState::Live) {
            self.say_waiting();
        }
        if due(&self.discovery_shown, &reason, now) {
            self.discovery_shown = Some((reason.clone(), now));
            self.commands.push(Command::Notice(Notice::DiscoveryFailed { reason: reason.clone() }));
        }
        self.discovery_problem = reason;
        self.dispatch(now)
    }

    /// Says, once per spell without a live node, what the run waits for.
    fn say_waiting(&mut self) {
        if self.waiting_said {
            return;
        }
        self.waiting_said = true;
        let nodes = self.nodes.iter().map(|n| n.addr.clone()).collect();
        self.commands.push(Command::Notice(Notice::Waiting { nodes, give_up: self.launch.config.no_node_timeout }));
    }

    /// The consumer took `n` results.
    pub fn consumed(&mut self, n: usize, now: Instant) -> Result<(), LaunchError> {
        self.unconsumed = self.unconsumed.saturating_sub(n);
        self.dispatch(now)
    }

    /// Something happened on node `node`'s stream of `generation`.
    pub fn on_event(&mut self, node: usize, generation: u64, link: Link, now: Instant) -> Result<(), LaunchError> {
        if self.nodes.get(node).is_none_or(|n| n.generation != generation) {
            return Ok(());
        }
        match link {
            Link::Connected => {
                let n = &mut self.nodes[node];
                tracing::info!(node = %n.addr, "node connected");
                n.state = LinkState::Live;
                n.loaded.clear();
                n.hosting = 0;
                n.draining = false;
                n.suspect = None;
                n.last_seen = now;
                n.last_problem.clear();
                if n.shown.take().is_some() {
                    self.commands.push(Command::Notice(Notice::Reached { addr: n.addr.clone() }));
                }
                self.waiting_said = false;
                if !self.report.nodes.contains(&n.addr) {
                    self.report.nodes.push(n.addr.clone());
                }
            }
            Link::Closed(reason) => {
                if self.nodes[node].state == LinkState::Live {
                    self.lose(node, reason)?;
                } else {
                    if self.nodes.iter().all(|n| n.state != LinkState::Live) {
                        self.say_waiting();
                    }
                    let n = &mut self.nodes[node];
                    n.state = LinkState::Down;
                    if due(&n.shown, &reason, now) {
                        n.shown = Some((reason.clone(), now));
                        let notice =
                            Notice::Unreachable { addr: n.addr.clone(), reason: reason.clone(), retry: n.backoff };
                        self.commands.push(Command::Notice(notice));
                    }
                    n.last_problem = reason;
                }
            }
            Link::Unauthorized(reason) => {
                return Err(LaunchError::Unauthorized(self.nodes[node].addr.clone(), reason));
            }
            Link::Message(m) => {
                self.nodes[node].last_seen = now;
                if let Some(kind) = m.kind {
                    self.on_message(node, kind, now)?;
                }
            }
        }
        self.dispatch(now)
    }

    /// Time passed: heartbeats, silent nodes, redials, discovery, and the
    /// run's end when no node has been live for too long.
    ///
    /// A launcher that was itself held up (the machine paused it, or a
    /// shell waited where it should not) did not hear its nodes meanwhile:
    /// that time does not count as their silence.
    pub fn tick(&mut self, now: Instant) -> Result<(), LaunchError> {
        let gap = now.saturating_duration_since(self.last_tick);
        self.last_tick = now;
        let heartbeat = self.launch.config.heartbeat;
        if gap > heartbeat + tick_period(heartbeat) {
            let deaf = gap - tick_period(heartbeat);
            tracing::warn!(seconds = deaf.as_secs_f64(), "the launcher was held up; node silence restarts");
            for n in &mut self.nodes {
                n.last_seen = (n.last_seen + deaf).min(now);
            }
            if let Some(since) = self.none_live_since.as_mut() {
                *since = (*since + deaf).min(now);
            }
        }
        if now.saturating_duration_since(self.last_heartbeat) >= heartbeat {
            self.last_heartbeat = now;
            self.heartbeat(now)?;
        }
        if !self.resolving && now.saturating_duration_since(self.last_resolve) >= DISCOVERY_PERIOD {
            self.last_resolve = now;
            self.resolving = true;
            self.commands.push(Command::Resolve);
        }
        self.redial(now);
        if self.nodes.iter().any(|n| n.state == LinkState::Live) {
            self.none_live_since = None;
        } else {
            let since = *self.none_live_since.get_or_insert(now);
            let waited = now.saturating_duration_since(since);
            if waited >= WAITING_NOTICE_AFTER {
                self.say_waiting();
            }
            if waited > self.launch.config.no_node_timeout {
                let problem =
                    self.nodes.iter().map(|n| format!("{}: {}", n.addr, n.last_problem)).collect::<Vec<_>>().join("; ");
                let problem = match (problem.is_empty(), self.discovery_problem.is_empty()) {
                    (false, _) => problem,
                    (true, true) => "no node address resolved".into(),
                    (true, false) => format!("no node address resolved: {}", self.discovery_problem),
                };
                return Err(LaunchError::NoNodes(waited.as_secs_f64(), problem));
            }
        }
        self.dispatch(now)
    }

    fn send(&mut self, node: usize, kind: Out) {
        let n = &self.nodes[node];
        if n.state == LinkState::Live {
            let message = pb::LauncherMessage { kind: Some(kind) };
            self.commands.push(Command::Send { node, generation: n.generation, message });
        }
    }

    /// Dials nodes that are down, each after its backoff.
    fn redial(&mut self, now: Instant) {
        for (i, n) in self.nodes.iter_mut().enumerate() {
            if n.state != LinkState::Down || now.saturating_duration_since(n.last_dial) < n.backoff {
                continue;
            }
            n.state = LinkState::Connecting;
            n.last_dial = now;
            n.generation += 1;
            self.commands.push(Command::Dial { node: i, addr: n.addr.clone(), generation: n.generation });
        }
    }

    fn heartbeat(&mut self, now: Instant) -> Result<(), LaunchError> {
        let timeout = self.launch.config.node_timeout;
        let mut dead = Vec::new();
        for i in 0..self.nodes.len() {
            let n = &self.nodes[i];
            if n.state != LinkState::Live {
                continue;
            }
            if now.saturating_duration_since(n.last_seen) > timeout {
                dead.push(i);
            } else {
                self.send(i, Out::Heartbeat(pb::Heartbeat { sent_unix_ms: 0 }));
            }
        }
        for i in dead {
            self.lose(i, format!("silent for {:.1} s", timeout.as_secs_f64()))?;
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
    fn dispatch(&mut self, now: Instant) -> Result<(), LaunchError> {
        // At the start, wait for the nodes being dialled (up to the node
        // timeout): the first to answer would otherwise take whole windows
        // before the others are up.
        if now.saturating_duration_since(self.started) < self.launch.config.node_timeout
            && self.nodes.iter().any(|n| n.state == LinkState::Connecting && n.generation == 1)
        {
            return Ok(());
        }
        while self.unconsumed < REPORT_BACKLOG {
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
            self.place(&live, room, Retry { job, attempt, reruns, avoid })?;
        }
        Ok(())
    }

    /// Sends one session to the least loaded live node with room, one the
    /// session was not lost on where there is one; ties go round robin.
    fn place(&mut self, live: &[usize], room: impl Fn(&Node) -> bool, r: Retry) -> Result<(), LaunchError> {
        let Retry { job, attempt, reruns, avoid } = r;
        let start = self.next_node;
        let by_load = |avoiding: bool| {
            (0..live.len())
                .map(|k| (k + start) % live.len())
                .filter(|&k| room(&self.nodes[live[k]]) && !(avoiding && avoid.contains(&live[k])))
                .min_by_key(|&k| self.nodes[live[k]].hosting)
        };
        let Some(pos) = by_load(true).or_else(|| by_load(false)) else {
            // dispatch checked that a node has room; keep the job if not.
            self.retry.push_front(Retry { job, attempt, reruns, avoid });
            return Ok(());
        };
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
        let uses = self.uses;
        let node = &mut self.nodes[host];
        let mut unload = None;
        let load = match node.loaded.get_mut(&job.scenario) {
            Some((last, in_flight)) => {
                *last = uses;
                *in_flight += 1;
                false
            }
            None => {
                // Runs over many scenarios (W draws one per negotiation):
                // free the least recently used idle one first, so that the
                // node never holds more than MAX_LOADED.
                if node.loaded.len() >= MAX_LOADED
                    && let Some(old) = node
                        .loaded
                        .iter()
                        .filter(|(_, (_, in_flight))| *in_flight == 0)
                        .min_by_key(|(_, (last, _))| *last)
                        .map(|(&id, _)| id)
                {
                    node.loaded.remove(&old);
                    unload = Some(old);
                }
                node.loaded.insert(job.scenario, (uses, 1));
                true
            }
        };
        node.hosting += 1;
        if let Some(id) = unload {
            self.send(host, Out::Unload(pb::UnloadScenario { id }));
        }
        if load {
            let wire = &self.launch.scenarios[job.scenario as usize];
            let scenario_json = serde_json::to_string(wire).map_err(|e| LaunchError::Scenario(e.to_string()))?;
            self.send(host, Out::Scenario(pb::LoadScenario { id: job.scenario, scenario_json }));
        }
        self.send(
            host,
            Out::Host(pb::HostSession {
                job: job.key,
                attempt,
                scenario: job.scenario,
                strategies: job.strategies.iter().map(|s| s.to_json().to_string()).collect(),
                seed: job.seed,
                remote: seats.iter().map(|&(k, _)| k as u32).collect(),
                trace: self.launch.trace,
            }),
        );
        let r = Running { job, attempt, reruns, avoid, host, seats, seats_done: Vec::new(), result: None };
        self.running.insert(r.job.key, r);
        Ok(())
    }

    fn on_message(&mut self, i: usize, kind: pb::node_message::Kind, now: Instant) -> Result<(), LaunchError> {
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
                let heartbeat = self.launch.config.heartbeat;
                let n = &mut self.nodes[i];
                if n.suspect.is_some_and(|since| now.saturating_duration_since(since) > heartbeat) {
                    n.suspect = None;
                }
            }
            Kind::Hosted(h) if current(&self.running, h.job, h.attempt) => self.seat(h)?,
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
                    n.suspect.get_or_insert(now);
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

    /// The host made the session: tell each remote party's node to play it.
    fn seat(&mut self, h: pb::Hosted) -> Result<(), LaunchError> {
        let r = &self.running[&h.job];
        let host = self.nodes[r.host].reachable.clone();
        let mut seats = Vec::with_capacity(r.seats.len());
        let mut gone = None;
        for &(party, node) in &r.seats {
            let name = &self.launch.scenarios[r.job.scenario as usize].parties[party].0;
            let Some(token) = h.tokens.iter().find(|t| &t.party == name) else {
                return Err(LaunchError::Runtime(format!("the host issued no token for party `{name}`")));
            };
            if self.nodes[node].state != LinkState::Live {
                gone = Some(node);
                break;
            }
            let seat = pb::PlaySeat {
                job: h.job,
                attempt: h.attempt,
                host: host.clone(),
                session_id: h.session_id.clone(),
                party: name.clone(),
                token: token.token.clone(),
                strategy: r.job.strategies[party].to_json().to_string(),
                party_index: party as u32,
            };
            seats.push((node, seat));
        }
        if let Some(node) = gone {
            let reason = format!("node {} went away before it could play its party", self.nodes[node].addr);
            return self.requeue(h.job, reason, Requeue::Lost, Some(node));
        }
        for (node, seat) in seats {
            self.send(node, Out::Seat(seat));
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
        host.backoff = FIRST_BACKOFF;
        self.report.sessions += 1;
        let done =
            Finished { key, result: r.result.expect("checked"), node: host.addr.clone(), attempts: r.reruns + 1 };
        self.unconsumed += 1;
        self.commands.push(Command::Report(Box::new(done)));
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
        let involved = |r: &Running| r.host == i || r.seats.iter().any(|&(_, s)| s == i);
        let n = &mut self.nodes[i];
        self.commands.push(Command::Close { node: i, generation: n.generation });
        n.state = LinkState::Down;
        n.hosting = 0;
        n.last_problem = reason.clone();
        if n.draining && !self.running.values().any(involved) {
            // It said it was stopping and finished its work: not a loss.
            tracing::info!(node = %n.addr, "node drained and left: {reason}");
            return Ok(());
        }
        n.backoff = (n.backoff * 2).min(MAX_BACKOFF);
        tracing::warn!(node = %n.addr, "node lost: {reason}");
        if !self.report.lost.contains(&n.addr) {
            self.report.lost.push(n.addr.clone());
        }
        let mut affected: Vec<u64> = self.running.iter().filter(|(_, r)| involved(r)).map(|(&k, _)| k).collect();
        // In key order: the same faults give the same re-runs.
        affected.sort_unstable();
        let why = format!("node {} lost: {reason}", self.nodes[i].addr);
        tracing::warn!(node = %self.nodes[i].addr, sessions = affected.len(), "re-running the node's sessions elsewhere");
        for key in affected {
            self.requeue(key, why.clone(), Requeue::Lost, Some(i))?;
        }
        Ok(())
    }
}

/// Whether a failure is worth a notice: a new reason, or the same one
/// after [`NOTICE_PERIOD`].
fn due(shown: &Option<(String, Instant)>, reason: &str, now: Instant) -> bool {
    match shown {
        Some((said, at)) => said != reason || now.saturating_duration_since(*at) >= NOTICE_PERIOD,
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::cluster::config::ClusterConfig;

    fn notices(core: &mut Core) -> Vec<Notice> {
        core.take_commands()
            .into_iter()
            .filter_map(|c| match c {
                Command::Notice(n) => Some(n),
                _ => None,
            })
            .collect()
    }

    fn dial(core: &mut Core) -> u64 {
        let dials: Vec<u64> = core
            .take_commands()
            .into_iter()
            .filter_map(|c| match c {
                Command::Dial { generation, .. } => Some(generation),
                _ => None,
            })
            .collect();
        *dials.last().expect("a dial")
    }

    /// A node that refuses every dial: the run says at once what it waits
    /// for and why the node fails, then the same reason only every
    /// NOTICE_PERIOD, a new reason at once, and the node's answer.
    #[test]
    fn unreachable_nodes_are_announced_without_a_flood() {
        let t0 = Instant::now();
        let config = ClusterConfig::from_list("127.0.0.1:1").unwrap();
        let launch = Launch { config, scenarios: Vec::new(), trace: false };
        let mut core = Core::new(launch, Box::new(std::iter::empty()), t0);
        core.discovered(vec!["127.0.0.1:1".into()], t0).unwrap();
        let g = dial(&mut core);
        core.on_event(0, g, Link::Closed("connection refused".into()), t0).unwrap();
        let said = notices(&mut core);
        assert!(
            matches!(&said[..], [Notice::Waiting { nodes, .. }, Notice::Unreachable { addr, reason, .. }]
            if nodes == &["127.0.0.1:1"] && addr == "127.0.0.1:1" && reason == "connection refused"),
            "{said:?}"
        );
        assert!(said[1].to_string().contains("127.0.0.1:1 unreachable: connection refused"), "{}", said[1]);
        // Redialled every second with the same failure: quiet until the period.
        let mut t = t0;
        let mut repeats = 0;
        while t < t0 + NOTICE_PERIOD + Duration::from_secs(1) {
            t += Duration::from_millis(500);
            core.tick(t).unwrap();
            let g = core.take_commands().into_iter().find_map(|c| match c {
                Command::Dial { generation, .. } => Some(generation),
                _ => None,
            });
            if let Some(g) = g {
                core.on_event(0, g, Link::Closed("connection refused".into()), t).unwrap();
                repeats += notices(&mut core).len();
            }
        }
        assert_eq!(repeats, 1, "the same reason is said again once per period");
        core.tick(t + Duration::from_secs(1)).unwrap();
        let g = dial(&mut core);
        core.on_event(0, g, Link::Closed("dns error".into()), t + Duration::from_secs(1)).unwrap();
        assert!(matches!(&notices(&mut core)[..], [Notice::Unreachable { reason, .. }] if reason == "dns error"));
        core.tick(t + Duration::from_secs(2)).unwrap();
        let g = dial(&mut core);
        core.on_event(0, g, Link::Connected, t + Duration::from_secs(2)).unwrap();
        assert!(matches!(&notices(&mut core)[..], [Notice::Reached { addr }] if addr == "127.0.0.1:1"));
    }
}
