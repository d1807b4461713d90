//! The sessions a node knows, and what they may cost it.
//!
//! A session is [`Live`] from `CreateSession` until its result is ready, then
//! [`Done`]: the result and a few names, nothing else (no actors, no watch
//! channel, no seats). Finished results are kept for `GetResult` within a
//! count and a byte budget, oldest dropped first. Every API session counts
//! against the client that created it until its result is dropped: a client
//! at its cap makes room by dropping its own oldest result, never anyone
//! else's.
//!
//! [`MemoryBudget`] is what running sessions (and the scenarios nodes keep
//! loaded for launchers) may hold together, from each one's estimated
//! [`Footprint`](crate::core::limits::Footprint); work that does not fit is
//! refused before anything is built.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use actix::Addr;
use tokio::sync::broadcast;

use super::external::ExternalParty;
use super::outbound::Outbound;
use super::pb;
use super::untrusted::shown;
use crate::core::protocol::Ending;
use crate::core::session::SessionResult;
use crate::engine::actors::SessionActor;

/// One external party's seat in a session.
pub struct Seat {
    pub party: usize,
    pub name: String,
    pub token: String,
    /// The party's endpoint: the agent stream that joins binds to it.
    pub addr: Addr<ExternalParty>,
    /// The connection that joined it.
    pub bound: Option<u64>,
}

/// Events of a live session for `WatchSession`; the channel exists only
/// once someone watches (most sessions are never watched).
pub type Watchers = Arc<OnceLock<broadcast::Sender<pb::SessionEvent>>>;

/// Events a watcher may lag behind before it is cut off.
pub const WATCH_BUFFER: usize = 256;

/// A session that has not finished.
pub struct Live {
    pub scenario: String,
    pub parties: Vec<String>,
    pub seats: Vec<Seat>,
    /// Who created it (`None`: a launcher, which bounds its own sessions).
    pub client: Option<IpAddr>,
    pub owner: String,
    /// Shared with the session's action callback, which publishes to it
    /// from the session's arbiter.
    pub watchers: Watchers,
    /// Where `CancelSession` sends its abort (`None` in unit tests only).
    pub session: Option<Addr<SessionActor>>,
    /// What it holds of the memory budget, given back when it ends.
    pub _memory: Reservation,
    /// How it ended ([`ending_text`]), once it has and its result is being
    /// analysed.
    pub ended: Option<String>,
}

/// A finished session, as kept for `GetResult`.
pub struct Done {
    pub scenario: String,
    pub parties: Vec<String>,
    pub client: Option<IpAddr>,
    /// Shared so that a call takes it out of the registry lock and copies
    /// it (a trace may be megabytes) after letting go.
    pub result: Arc<pb::SessionResult>,
    /// How it ended, for people ([`ending_text`]).
    pub ending: String,
    /// Its size on the wire, counted against the retention budget.
    pub bytes: u64,
}

/// How a session ended, in the words `session list` shows: who did what,
/// and for a party that broke off before it played, that its agent never
/// joined (`never_joined`: the seats no agent bound by the end).
pub fn ending_text(result: &SessionResult, parties: &[String], never_joined: &[String]) -> String {
    let name = |p: usize| parties.get(p).map_or_else(|| format!("party {p}"), |n| shown(n).to_string());
    match &result.ending {
        Ending::Agreement { .. } => format!("agreement after {} rounds", result.rounds),
        Ending::Deadline => format!("deadline after {} rounds, no agreement", result.rounds),
        Ending::EndedBy { party } => format!("{} ended the negotiation", name(*party)),
        Ending::Violation { party, .. } if parties.get(*party).is_some_and(|p| never_joined.contains(p)) => {
            let absent: Vec<String> = never_joined.iter().map(|n| shown(n).to_string()).collect();
            format!("join timeout, {} never joined", absent.join(" and "))
        }
        Ending::Violation { party, reason } => format!("violation by {}: {}", name(*party), shown(reason)),
        Ending::Aborted { reason } => format!("aborted: {}", shown(reason)),
    }
}

pub enum Entry {
    Live(Live),
    Done(Done),
}

/// How many finished results are kept.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    pub count: usize,
    pub bytes: u64,
}

/// Sessions by id (ordered: `ListSessions` pages through them), and the
/// counts kept beside them.
#[derive(Default)]
pub struct Registry {
    pub sessions: BTreeMap<String, Entry>,
    /// Finished sessions, oldest first; ids dropped out of turn (a client
    /// making room) are skipped when they come up.
    finished: VecDeque<String>,
    retained: usize,
    retained_bytes: u64,
    /// Per client: its sessions (running and retained) and its retained
    /// ones, oldest first.
    clients: HashMap<IpAddr, ClientSessions>,
    /// Outbound queues of agent streams by connection id, to deliver
    /// `Finished` to the streams that played a session.
    pub connections: HashMap<u64, Outbound>,
    /// Agent streams per client that have not joined a party yet, oldest
    /// first.
    unseated: HashMap<IpAddr, VecDeque<u64>>,
}

#[derive(Default)]
struct ClientSessions {
    count: usize,
    finished: VecDeque<String>,
}

impl Registry {
    pub fn running(&self) -> usize {
        self.sessions.len() - self.retained
    }

    /// Room for one more session of `client` under `cap`: drops the
    /// client's oldest finished result if it must; `false` if all its
    /// sessions are still running.
    pub fn make_room(&mut self, client: IpAddr, cap: usize) -> bool {
        let Some(c) = self.clients.get(&client) else { return cap > 0 };
        if c.count < cap {
            return true;
        }
        let Some(oldest) = self.clients.get_mut(&client).and_then(|c| c.finished.pop_front()) else {
            return false;
        };
        self.forget(&oldest);
        // The id stays in `finished` until it comes up; a client that keeps
        // making room would make that list grow: sweep it now and then.
        if self.finished.len() > 2 * self.retained + 64 {
            let sessions = &self.sessions;
            self.finished.retain(|id| matches!(sessions.get(id), Some(Entry::Done(_))));
        }
        true
    }

    /// A new session of `client` (API sessions only).
    pub fn insert(&mut self, id: String, live: Live) {
        if let Some(client) = live.client {
            self.clients.entry(client).or_default().count += 1;
        }
        self.sessions.insert(id, Entry::Live(live));
    }

    /// The session is over: keep `done` within `retention`.
    pub fn finish(&mut self, id: &str, done: Done, retention: Retention) {
        if !matches!(self.sessions.get(id), Some(Entry::Live(_))) {
            return;
        }
        if let Some(client) = done.client {
            self.clients.entry(client).or_default().finished.push_back(id.to_string());
        }
        self.retained += 1;
        self.retained_bytes += done.bytes;
        self.sessions.insert(id.to_string(), Entry::Done(done));
        self.finished.push_back(id.to_string());
        while self.retained > retention.count || self.retained_bytes > retention.bytes {
            let Some(old) = self.finished.pop_front() else { break };
            // The client's own list starts with this id unless it was
            // dropped already.
            if let Some(Entry::Done(d)) = self.sessions.get(&old)
                && let Some(c) = d.client.and_then(|c| self.clients.get_mut(&c))
                && c.finished.front() == Some(&old)
            {
                c.finished.pop_front();
            }
            self.forget(&old);
        }
    }

    /// A session that leaves without a stored result (a launcher's).
    pub fn remove_live(&mut self, id: &str) -> Option<Live> {
        match self.sessions.remove(id) {
            Some(Entry::Live(l)) => {
                if let Some(c) = l.client {
                    self.uncount(c);
                }
                Some(l)
            }
            Some(other) => {
                self.sessions.insert(id.to_string(), other);
                None
            }
            None => None,
        }
    }

    /// Drops a finished session's result.
    fn forget(&mut self, id: &str) {
        if let Some(Entry::Done(d)) = self.sessions.remove(id) {
            self.retained -= 1;
            self.retained_bytes -= d.bytes;
            if let Some(c) = d.client {
                self.uncount(c);
            }
        }
    }

    fn uncount(&mut self, client: IpAddr) {
        if let Some(c) = self.clients.get_mut(&client) {
            c.count = c.count.saturating_sub(1);
            if c.count == 0 && c.finished.is_empty() {
                self.clients.remove(&client);
            }
        }
    }

    /// Sessions of `client` counted against its cap.
    pub fn count_of(&self, client: IpAddr) -> usize {
        self.clients.get(&client).map_or(0, |c| c.count)
    }

    pub fn retained(&self) -> (usize, u64) {
        (self.retained, self.retained_bytes)
    }

    /// A new agent stream of `client` that plays no party yet. At `cap`,
    /// the client's oldest such stream is ended to make room, so that idle
    /// streams from one address (a NAT, an ingress) never lock its agents
    /// out.
    pub fn unseated_open(&mut self, client: IpAddr, conn: u64, cap: usize) {
        let open = self.unseated.entry(client).or_default();
        while open.len() >= cap.max(1) {
            let Some(old) = open.pop_front() else { break };
            if let Some(out) = self.connections.get(&old) {
                out.end(tonic::Status::resource_exhausted(format!(
                    "closed to make room: this address opened {cap} agent streams that joined no party \
                     (--max-unseated-streams-per-client)"
                )));
            }
        }
        open.push_back(conn);
    }

    /// The stream joined a party, or ended.
    pub fn unseated_done(&mut self, client: IpAddr, conn: u64) {
        if let Some(open) = self.unseated.get_mut(&client) {
            open.retain(|&c| c != conn);
            if open.is_empty() {
                self.unseated.remove(&client);
            }
        }
    }
}

/// Memory that running work may hold, in estimated bytes.
#[derive(Debug)]
pub struct MemoryBudget {
    limit: u64,
    /// Reserved and given back from any thread without a lock: a
    /// compare-and-swap loop keeps it at or below `limit`.
    used: AtomicU64,
}

/// A share of the budget, given back on drop.
#[derive(Debug)]
pub struct Reservation {
    /// The budget to give `bytes` back to on drop.
    budget: Option<Arc<MemoryBudget>>,
    bytes: u64,
}

impl Reservation {
    /// Holds nothing (work that is accounted elsewhere).
    pub fn none() -> Self {
        Self { budget: None, bytes: 0 }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if let Some(b) = &self.budget {
            b.used.fetch_sub(self.bytes, Ordering::AcqRel);
        }
    }
}

impl MemoryBudget {
    pub fn new(limit: u64) -> Arc<Self> {
        Arc::new(Self { limit, used: AtomicU64::new(0) })
    }

    /// `bytes` more, if they fit; else the message that refuses the work.
    pub fn reserve(self: &Arc<Self>, bytes: u64, what: &str) -> Result<Reservation, String> {
        let mib = |b: u64| b as f64 / (1 << 20) as f64;
        if bytes > self.limit {
            return Err(format!(
                "{what} needs about {:.1} MiB, more than this server gives all running sessions together ({:.0} MiB, --session-memory-mib)",
                mib(bytes),
                mib(self.limit)
            ));
        }
        let mut used = self.used.load(Ordering::Acquire);
        loop {
            if used + bytes > self.limit {
                return Err(format!(
                    "the server is busy: {what} needs about {:.1} MiB and {:.1} of {:.0} MiB are in use by running sessions (--session-memory-mib); try again later",
                    mib(bytes),
                    mib(used),
                    mib(self.limit)
                ));
            }
            match self.used.compare_exchange(used, used + bytes, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return Ok(Reservation { budget: Some(self.clone()), bytes }),
                Err(now) => used = now,
            }
        }
    }

    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn done(client: IpAddr, bytes: u64) -> Done {
        Done {
            scenario: "s".into(),
            parties: vec![],
            client: Some(client),
            result: Arc::new(pb::SessionResult::default()),
            ending: String::new(),
            bytes,
        }
    }

    fn live(client: IpAddr) -> Live {
        Live {
            scenario: "s".into(),
            parties: vec![],
            seats: vec![],
            client: Some(client),
            owner: String::new(),
            watchers: Watchers::default(),
            session: None,
            _memory: Reservation::none(),
            ended: None,
        }
    }

    const A: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));

    #[test]
    fn an_ending_says_who_did_what_and_whose_agent_never_came() {
        let ended = |ending: Ending| SessionResult {
            agreement: None,
            ending,
            utilities: vec![],
            undiscounted: vec![],
            rounds: 12,
            offers: 0,
            time: 0.0,
            trace: vec![],
            trace_truncated: false,
            bids_exact: vec![],
            bids_gap: vec![],
        };
        let parties = ["founder".to_string(), "investor".to_string()];
        let absent = ["investor".to_string()];
        let text = |ending, never: &[String]| ending_text(&ended(ending), &parties, never);
        let joined = Ending::Violation { party: 1, reason: "could not start: no agent joined within 60.0 s".into() };
        assert_eq!(text(joined, &absent), "join timeout, investor never joined");
        let late = Ending::Violation { party: 0, reason: "acted out of turn".into() };
        assert_eq!(text(late, &absent), "violation by founder: acted out of turn");
        assert_eq!(text(Ending::Deadline, &[]), "deadline after 12 rounds, no agreement");
        assert_eq!(text(Ending::EndedBy { party: 1 }, &[]), "investor ended the negotiation");
        assert_eq!(text(Ending::Aborted { reason: "cancelled".into() }, &[]), "aborted: cancelled");
    }

    #[test]
    fn retention_holds_count_and_bytes_and_clients_pay_for_their_own() {
        let mut r = Registry::default();
        let keep = Retention { count: 3, bytes: 1000 };
        for k in 0..3 {
            r.insert(format!("a{k}"), live(A));
            r.finish(&format!("a{k}"), done(A, 100), keep);
        }
        assert_eq!(r.retained(), (3, 300));
        assert_eq!(r.count_of(A), 3, "retained results count against their client");
        // B's big result pushes A's oldest out (count 3).
        r.insert("b0".into(), live(B));
        r.finish("b0", done(B, 600), keep);
        assert_eq!(r.retained(), (3, 800));
        assert!(!r.sessions.contains_key("a0"));
        assert_eq!(r.count_of(A), 2);
        // Bytes: 900 more would pass 1000; the oldest go.
        r.insert("b1".into(), live(B));
        r.finish("b1", done(B, 900), keep);
        assert_eq!(r.retained(), (1, 900));
        // A at its cap of 2 running sessions cannot make room; with a
        // finished one it drops its own.
        r.insert("a3".into(), live(A));
        r.insert("a4".into(), live(A));
        assert!(!r.make_room(A, 2));
        r.finish("a3", done(A, 10), keep);
        assert!(r.make_room(A, 2));
        assert!(!r.sessions.contains_key("a3"));
        assert!(r.sessions.contains_key("b1"), "nobody else's result is dropped");
        assert_eq!(r.running(), 1);
        // A client that makes room for ever leaves no trail.
        for k in 0..1_000 {
            let id = format!("c{k}");
            r.insert(id.clone(), live(B));
            r.finish(&id, done(B, 1), Retention { count: 100_000, bytes: 1 << 30 });
            assert!(r.make_room(B, 3));
        }
        assert!(r.finished.len() <= 2 * r.retained + 64, "{}", r.finished.len());
    }

    #[test]
    fn the_memory_budget_refuses_what_does_not_fit_and_gets_it_back() {
        let b = MemoryBudget::new(100 << 20);
        let one = b.reserve(60 << 20, "this session").unwrap();
        let e = b.reserve(60 << 20, "this session").unwrap_err();
        assert!(e.contains("busy") && e.contains("--session-memory-mib"), "{e}");
        assert!(b.reserve(200 << 20, "this session").unwrap_err().contains("more than this server gives"));
        drop(one);
        assert_eq!(b.used(), 0);
        assert!(b.reserve(60 << 20, "this session").is_ok());
    }
}
