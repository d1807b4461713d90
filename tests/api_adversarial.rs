//! Adversarial agents against one in-process `negotium serve` node.
//!
//! Hundreds of sessions (party A local and built in, party B external) are
//! played by raw test agents that misbehave on purpose: acting out of turn,
//! bidding outside the domain, sending malformed or empty messages, falling
//! silent, dropping their connection, and sending messages the server cannot
//! pin on any party (wrong tokens, unknown sessions, sessions not joined,
//! second joins). Every session's result is read back with `GetResult` and
//! from a `WatchSession` stream opened before the agent joined. Meanwhile
//! well-behaved agents (`client::play`) play unrelated sessions that must end
//! exactly as an all-local run of the same scenario and seed does; at the end
//! the node must still answer and host a fresh session correctly.
//!
//! Every wait is bounded, so a hang fails the test instead of blocking it.
//! Run with `--nocapture` to see how many bad messages of each kind were sent.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};
use negotium::core::rng::SplitMix64;
use negotium::core::scenario::Scenario;
use negotium::core::strategy::StrategySpec;
use negotium::core::utility::{UtilityFunction, ValueFunction};
use negotium::core::workload::Workload;
use negotium::engine::{SessionSpec, direct};
use negotium::net::client::{Seat, connect, play};
use negotium::net::convert::outcome_to_pb;
use negotium::net::pb;
use negotium::net::pb::negotiation_client::NegotiationClient;
use negotium::net::server::{ServerConfig, serve};
use tokio::sync::{Semaphore, mpsc};
use tokio::time::timeout;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::transport::Channel;

type Kind = pb::server_message::Kind;
type AgentKind = pb::agent_message::Kind;

const TURN_TIMEOUT: Duration = Duration::from_millis(300);
/// The longest wait for any one message, call or result.
const STEP: Duration = Duration::from_secs(15);
/// The whole test.
const OVERALL: Duration = Duration::from_secs(180);
/// Misbehaving sessions in flight at once.
const IN_FLIGHT: usize = 32;

// ---------------------------------------------------------------- scenarios

/// A W1-like workload: integer issues `i0..` of values `0..values`, linear
/// additive tables, A valuing high values and B low ones.
#[derive(Debug, Clone, Copy)]
struct Shape {
    issues: usize,
    values: usize,
    rounds: u32,
}

/// Sessions of misbehaving agents: small and quick.
const SMALL: Shape = Shape { issues: 3, values: 6, rounds: 30 };
/// Sessions of well-behaved agents: W1's domain, fewer rounds.
const W1ISH: Shape = Shape { issues: 3, values: 10, rounds: 40 };

/// Local strategies of party A in misbehaving sessions: none of them accepts
/// an offer worth nothing to A (B's best), so B's valid answers keep a
/// session going.
const BAD_A: [&str; 4] = ["boulware", "conceder", "linear", "hardliner"];
/// Local strategies of party A in well-behaved sessions.
const GOOD_A: [&str; 6] = ["boulware", "conceder", "linear", "hardliner", "tit-for-tat", "random"];

/// Distinct reservation values for A and B (so that a swap would show).
fn reservations(j: u64) -> [f64; 2] {
    [0.10 + 0.01 * (j % 7) as f64, 0.20 + 0.01 * (j % 5) as f64]
}

/// Scenario text of negotiation `j`: A local with strategy `a`, B external
/// (with `b` as what a local run would use in its place).
fn scenario_text(shape: Shape, j: u64, a: &str, b: &str) -> String {
    let w = Workload { issues: shape.issues, values: shape.values, rounds: shape.rounds, reservation: 0.1, seed: 1 };
    let prefs = w.preferences(j);
    let res = reservations(j);
    let mut text = format!("name = \"adversarial-{j}\"\nseed = {}\n[protocol]\nrounds = {}\n", 7 + j, shape.rounds);
    for i in 0..shape.issues {
        text += &format!("[[issues]]\nname = \"i{i}\"\ntype = \"integer\"\nmin = 0\nmax = {}\n", shape.values - 1);
    }
    for (k, (name, strategy, external)) in [("A", a, false), ("B", b, true)].into_iter().enumerate() {
        let UtilityFunction::LinearAdditive { weights, values } = &prefs[k].utility else { unreachable!("linear") };
        text += &format!(
            "[[parties]]\nname = \"{name}\"\nstrategy = \"{strategy}\"\nexternal = {external}\nreservation = {:?}\n",
            res[k]
        );
        let ws: Vec<String> = weights.iter().enumerate().map(|(i, x)| format!("i{i} = {x:?}")).collect();
        text += &format!("weights = {{ {} }}\n", ws.join(", "));
        for (i, f) in values.iter().enumerate() {
            let ValueFunction::Table { utilities } = f else { unreachable!("tables") };
            let us: Vec<String> = utilities.iter().map(|x| format!("{x:?}")).collect();
            text += &format!("values.i{i} = {{ table = [{}] }}\n", us.join(", "));
        }
    }
    text
}

// ---------------------------------------------------------------- actions

fn int(x: i64) -> pb::Value {
    pb::Value { kind: Some(pb::value::Kind::Integer(x)) }
}

fn offer(values: HashMap<String, pb::Value>) -> pb::Action {
    pb::Action { kind: Some(pb::action::Kind::Offer(pb::Outcome { values })) }
}

/// Every issue at 0: B's best outcome, worth 0 to A (A never accepts it).
fn zeros_map(shape: Shape) -> HashMap<String, pb::Value> {
    (0..shape.issues).map(|i| (format!("i{i}"), int(0))).collect()
}

fn zeros(shape: Shape) -> pb::Action {
    offer(zeros_map(shape))
}

fn accept() -> pb::Action {
    pb::Action { kind: Some(pb::action::Kind::Accept(pb::Accept {})) }
}

fn end_negotiation() -> pb::Action {
    pb::Action { kind: Some(pb::action::Kind::EndNegotiation(pb::EndNegotiation {})) }
}

/// Offer variant `v` that lies outside the domain of `shape`.
fn outside_offer(v: usize, shape: Shape) -> (&'static str, pb::Action) {
    let mut m = zeros_map(shape);
    let which = format!("i{}", v / 8 % shape.issues);
    let max = shape.values as i64 - 1;
    let label = match v % 8 {
        0 => {
            m.insert(which, int(max + 1));
            "integer just beyond max"
        }
        1 => {
            m.insert(which, int(if (v / 8).is_multiple_of(2) { i64::MAX } else { -1 }));
            "integer far outside"
        }
        2 => {
            m.remove(&which);
            m.insert("no-such-issue".into(), int(0));
            "unknown issue name"
        }
        3 => {
            m.remove(&which);
            "missing issue"
        }
        4 => {
            m.insert(which, pb::Value { kind: Some(pb::value::Kind::Discrete("3".into())) });
            "discrete string for an integer issue"
        }
        5 => {
            m.insert("extra".into(), int(0));
            "an extra issue"
        }
        6 => {
            m.insert(which, pb::Value { kind: Some(pb::value::Kind::Real(1.0)) });
            "real for an integer issue"
        }
        _ => {
            m.insert(which, pb::Value { kind: None });
            "value without content"
        }
    };
    (label, offer(m))
}

// ---------------------------------------------------------------- a raw agent

/// One agent stream driven message by message. Messages not yet asked for
/// are kept, so that one stream can carry several sessions.
struct Agent {
    tx: Option<mpsc::UnboundedSender<pb::AgentMessage>>,
    rx: tonic::Streaming<pb::ServerMessage>,
    held: VecDeque<Kind>,
}

impl Agent {
    async fn open(channel: Channel) -> Result<Self> {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut client = NegotiationClient::new(channel);
        let inbound = timeout(STEP, client.negotiate(UnboundedReceiverStream::new(rx)))
            .await
            .context("opening an agent stream timed out")??
            .into_inner();
        Ok(Self { tx: Some(tx), rx: inbound, held: VecDeque::new() })
    }

    fn send(&self, kind: Option<AgentKind>) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(pb::AgentMessage { kind });
        }
    }

    fn join(&self, session_id: &str, party: &str, token: &str) {
        self.send(Some(AgentKind::Join(pb::Join {
            session_id: session_id.into(),
            party: party.into(),
            token: token.into(),
        })));
    }

    fn act(&self, session_id: &str, turn: u64, action: Option<pb::Action>) {
        self.send(Some(AgentKind::Act(pb::Act { session_id: session_id.into(), turn, action, party: String::new() })));
    }

    fn leave(&self, session_id: &str, reason: &str) {
        self.send(Some(AgentKind::Leave(pb::Leave {
            session_id: session_id.into(),
            party: String::new(),
            reason: reason.into(),
        })));
    }

    /// The next message (held ones first) that `wanted` picks.
    async fn expect(&mut self, what: &str, wanted: impl Fn(&Kind) -> bool) -> Result<Kind> {
        if let Some(k) = self.held.iter().position(&wanted) {
            return Ok(self.held.remove(k).expect("present"));
        }
        let deadline = Instant::now() + STEP;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match timeout(left, self.rx.next()).await {
                Err(_) => bail!("waiting for {what}: nothing within {STEP:?}; held {:?}", self.held),
                Ok(None) => bail!("waiting for {what}: the server closed the stream; held {:?}", self.held),
                Ok(Some(Err(s))) => bail!("waiting for {what}: the stream broke: {s}"),
                Ok(Some(Ok(m))) => {
                    let kind = m.kind.context("a server message without content")?;
                    if wanted(&kind) {
                        return Ok(kind);
                    }
                    self.held.push_back(kind);
                }
            }
        }
    }

    async fn settings(&mut self, id: &str) -> Result<pb::SessionSettings> {
        match self.expect("settings", |k| matches!(k, Kind::Settings(s) if s.session_id == id)).await? {
            Kind::Settings(s) => Ok(s),
            _ => unreachable!(),
        }
    }

    /// Joins `h` as B and checks the settings it gets.
    async fn join_checked(&mut self, h: &Hosted) -> Result<pb::SessionSettings> {
        self.join(&h.id, "B", &h.token);
        let s = self.settings(&h.id).await?;
        let issues = s.domain.as_ref().map_or(0, |d| d.issues.len());
        ensure!(
            s.party == "B"
                && s.party_index == 1
                && s.parties == ["A", "B"]
                && s.protocol == "saop"
                && s.deadline_rounds == h.shape.rounds
                && s.deadline_seconds == 0.0
                && s.turn_timeout_seconds == TURN_TIMEOUT.as_secs_f64()
                && s.party_seed == SplitMix64::derive(h.seed, 1).next_u64()
                && issues == h.shape.issues
                && s.profile.as_ref().map(|p| p.reservation_value) == Some(h.reservations[1]),
            "settings {s:?}"
        );
        Ok(s)
    }

    /// The next YourTurn of session `id`. Party A (local) always offers
    /// before B's turn, so the standing offer must be A's, announced by the
    /// ActionDone messages that came before.
    async fn turn(&mut self, id: &str) -> Result<pb::YourTurn> {
        let t = match self.expect("YourTurn", |k| matches!(k, Kind::YourTurn(t) if t.session_id == id)).await? {
            Kind::YourTurn(t) => t,
            _ => unreachable!(),
        };
        let mut seen = Vec::new();
        self.held.retain(|k| match k {
            Kind::ActionDone(a) if a.session_id == id => {
                seen.push(a.clone());
                false
            }
            _ => true,
        });
        let last = seen.last().with_context(|| format!("YourTurn {} without an ActionDone before it", t.turn))?;
        ensure!(last.party == 0 && last.round == t.round, "ActionDone {last:?} before YourTurn {t:?}");
        let Some(pb::action::Kind::Offer(o)) = last.action.as_ref().and_then(|a| a.kind.as_ref()) else {
            bail!("A's action before YourTurn {} is not an offer: {last:?}", t.turn);
        };
        ensure!(t.standing_offer.as_ref() == Some(o) && t.proposer == 0, "standing offer of {t:?} is not A's {o:?}");
        ensure!(t.time > 0.0 && t.time <= 1.0, "relative time {}", t.time);
        Ok(t)
    }

    async fn error(&mut self, id: &str, code: &str) -> Result<pb::Error> {
        let what = format!("Error {code:?} for {id:?}");
        // The server echoes at most 256 characters of an id.
        let echoed = negotium::net::untrusted::echo(id);
        match self.expect(&what, |k| matches!(k, Kind::Error(e) if e.session_id == echoed && e.code == code)).await? {
            Kind::Error(e) => Ok(e),
            _ => unreachable!(),
        }
    }

    async fn finished(&mut self, id: &str) -> Result<pb::SessionResult> {
        match self.expect("Finished", |k| matches!(k, Kind::Finished(f) if f.session_id == id)).await? {
            Kind::Finished(f) => f.result.context("Finished without a result"),
            _ => unreachable!(),
        }
    }

    /// Answers `k` turns of session `id` with valid offers; returns the
    /// number of the next turn, checking that turns are numbered 0, 1, ...
    async fn answer_validly(&mut self, id: &str, k: u64, shape: Shape) -> Result<u64> {
        for expected in 0..k {
            let t = self.turn(id).await?;
            ensure!(t.turn == expected, "turn numbered {} where {expected} was due", t.turn);
            ensure!(t.round == expected as u32, "turn {} in round {}", t.turn, t.round);
            self.act(id, t.turn, Some(zeros(shape)));
        }
        Ok(k)
    }

    /// Nothing about session `id` other than what `allowed` lets through
    /// arrived before a marker error (a join of a session that does not
    /// exist, answered in order on this stream).
    async fn nothing_else_about(&mut self, id: &str, allowed: impl Fn(&Kind) -> bool) -> Result<()> {
        let marker = format!("marker-{id}");
        self.join(&marker, "B", "x");
        self.error(&marker, "not-found").await?;
        for k in &self.held {
            let about = match k {
                Kind::Settings(s) => s.session_id == id,
                Kind::YourTurn(t) => t.session_id == id,
                Kind::ActionDone(a) => a.session_id == id,
                Kind::Finished(f) => f.session_id == id,
                Kind::Error(e) => e.session_id == id,
            };
            ensure!(!about || allowed(k), "unexpected message about {id}: {k:?}");
        }
        Ok(())
    }
}

// ---------------------------------------------------------------- the node

/// A session created for one case, watched from before anyone joined.
struct Hosted {
    id: String,
    token: String,
    text: String,
    seed: u64,
    shape: Shape,
    reservations: [f64; 2],
    watch: tokio::task::JoinHandle<Result<Watched>>,
}

/// What a watcher saw: the number of actions, then the result.
struct Watched {
    actions: usize,
    result: pb::SessionResult,
}

struct Env {
    url: String,
    channels: Vec<Channel>,
    next_channel: AtomicUsize,
    next_scenario: AtomicU64,
    tally: Mutex<BTreeMap<&'static str, usize>>,
    created: Mutex<Vec<String>>,
}

impl Env {
    /// Eight connections to the node, used in turn.
    async fn new(url: String) -> Result<Self> {
        let mut channels = Vec::new();
        for _ in 0..8 {
            channels.push(connect(&url, None).await?);
        }
        Ok(Self {
            url,
            channels,
            next_channel: AtomicUsize::new(0),
            next_scenario: AtomicU64::new(0),
            tally: Mutex::new(BTreeMap::new()),
            created: Mutex::new(Vec::new()),
        })
    }

    fn channel(&self) -> Channel {
        self.channels[self.next_channel.fetch_add(1, Ordering::Relaxed) % self.channels.len()].clone()
    }

    fn management(&self) -> NegotiationClient<Channel> {
        NegotiationClient::new(self.channel())
    }

    /// Every session the node lists, page by page.
    async fn list_all(&self) -> Result<Vec<pb::SessionInfo>> {
        let mut all = Vec::new();
        let mut page_token = String::new();
        loop {
            let req = pb::ListSessionsRequest { page_size: 1000, page_token };
            let page = timeout(STEP, self.management().list_sessions(req)).await??.into_inner();
            all.extend(page.sessions);
            if page.next_page_token.is_empty() {
                return Ok(all);
            }
            page_token = page.next_page_token;
        }
    }

    fn count(&self, kind: &'static str, n: usize) {
        *self.tally.lock().expect("tally").entry(kind).or_default() += n;
    }

    /// Creates a session (A local with strategy `a`, B external) and starts
    /// watching it.
    async fn host(&self, a: &str, shape: Shape) -> Result<Hosted> {
        self.host_with(a, shape, 0.0).await
    }

    /// [`Env::host`] with a join timeout of its own (0: the node's).
    async fn host_with(&self, a: &str, shape: Shape, join_timeout_seconds: f64) -> Result<Hosted> {
        let j = self.next_scenario.fetch_add(1, Ordering::Relaxed);
        let text = scenario_text(shape, j, a, "boulware");
        let seed = 1_000 + j;
        let mut m = self.management();
        let req = pb::CreateSessionRequest {
            scenario_toml: text.clone(),
            seed,
            has_seed: true,
            join_timeout_seconds,
            ..Default::default()
        };
        let created = timeout(STEP, m.create_session(req)).await.context("CreateSession timed out")??.into_inner();
        ensure!(created.tokens.len() == 1 && created.tokens[0].party == "B", "tokens: {:?}", created.tokens);
        let id = created.session_id;
        self.created.lock().expect("created").push(id.clone());
        let mut events = timeout(STEP, m.watch_session(pb::WatchSessionRequest { session_id: id.clone() }))
            .await
            .context("WatchSession timed out")??
            .into_inner();
        let watch = tokio::spawn(async move {
            let mut actions = 0;
            loop {
                let event = match timeout(STEP * 2, events.next()).await {
                    Err(_) => bail!("watch: no event within {:?}", STEP * 2),
                    Ok(None) => bail!("watch: the stream ended without a result"),
                    Ok(Some(Err(s))) => bail!("watch: the stream broke: {s}"),
                    Ok(Some(Ok(e))) => e.kind.context("watch: an event without content")?,
                };
                match event {
                    pb::session_event::Kind::Action(_) => actions += 1,
                    pb::session_event::Kind::Finished(result) => {
                        // The result is the last event.
                        match timeout(STEP, events.next()).await {
                            Ok(None) => return Ok(Watched { actions, result }),
                            Ok(Some(other)) => bail!("watch: {other:?} after the result"),
                            Err(_) => bail!("watch: the stream stayed open after the result"),
                        }
                    }
                }
            }
        });
        let token = created.tokens[0].token.clone();
        Ok(Hosted { id, token, text, seed, shape, reservations: reservations(j), watch })
    }

    /// The result of a session once it has finished: its watch stream ends
    /// with it (a watcher cut off for falling behind watches again).
    async fn result(&self, id: &str) -> Result<pb::SessionResult> {
        let mut m = self.management();
        let finished = async {
            loop {
                let request = pb::WatchSessionRequest { session_id: id.into() };
                let mut events =
                    m.watch_session(request).await.with_context(|| format!("WatchSession {id}"))?.into_inner();
                while let Some(event) = events.next().await {
                    match event {
                        Ok(pb::SessionEvent { kind: Some(pb::session_event::Kind::Finished(r)) }) => return Ok(r),
                        Ok(_) => {}
                        Err(s) if s.code() == tonic::Code::ResourceExhausted => break,
                        Err(s) => bail!("WatchSession {id}: {s}"),
                    }
                }
            }
        };
        timeout(STEP, finished).await.with_context(|| format!("session {id} has not finished within {STEP:?}"))?
    }

    /// Checks that a session ended without agreement (`ended_by`, and for a
    /// violation party B at fault with `needle` in the reason), that both
    /// parties got their reservation values, and that its watcher saw the same
    /// result last. Returns the result.
    async fn expect_no_deal(&self, h: Hosted, ended_by: &str, needle: Option<&str>) -> Result<pb::SessionResult> {
        let r = self.result(&h.id).await?;
        let reason = r.violation.as_ref().map(|v| (v.party, v.reason.as_str()));
        ensure!(r.ended_by == ended_by, "ended by {:?} {reason:?}, expected {ended_by:?} {needle:?}", r.ended_by);
        match needle {
            Some(needle) => {
                let v = r.violation.as_ref().context("a violation without details")?;
                ensure!(v.party == 1, "violation pinned on party {} ({:?})", v.party, v.reason);
                ensure!(v.reason.contains(needle), "violation reason {:?} lacks {needle:?}", v.reason);
            }
            None => ensure!(r.violation.is_none(), "unexpected violation {:?}", r.violation),
        }
        ensure!(r.agreement.is_none(), "an agreement: {:?}", r.agreement);
        ensure!(r.utilities == h.reservations, "utilities {:?}, reservations {:?}", r.utilities, h.reservations);
        let watched = timeout(STEP * 3, h.watch).await.context("watcher hung")?.context("watcher panicked")??;
        ensure!(watched.result == r, "the watcher's last event differs from GetResult");
        Ok(r)
    }

    /// Checks a session played to its end by a well-behaved agent against an
    /// all-local run of the same scenario and seed.
    async fn expect_as_direct(&self, h: Hosted, r: &pb::SessionResult) -> Result<()> {
        let scenario = Scenario::parse(&h.text, "scenario").context("scenario")?;
        let strategies: Vec<StrategySpec> = scenario.parties.iter().map(|p| p.strategy.clone()).collect();
        let spec =
            SessionSpec::new(0, scenario.domain.clone(), scenario.preferences(), strategies, scenario.deadline, h.seed)
                .with_trace(true);
        let local = direct::run(&spec).context("direct run")?;
        let label = local.ending.label();
        ensure!(r.ended_by == label, "ended by {:?} ({:?}), locally by {label:?}", r.ended_by, r.violation);
        let agreement = local.agreement.as_ref().map(|o| outcome_to_pb(&scenario.domain, o));
        ensure!(r.agreement == agreement, "agreement {:?}, locally {agreement:?}", r.agreement);
        ensure!(r.utilities == local.utilities, "utilities {:?}, locally {:?}", r.utilities, local.utilities);
        ensure!(r.rounds == local.rounds, "rounds {}, locally {}", r.rounds, local.rounds);
        ensure!(r.offers == local.offers, "offers {}, locally {}", r.offers, local.offers);
        ensure!(r.seed == h.seed && r.session_id == h.id, "seed {} / id {}", r.seed, r.session_id);
        let stored = self.result(&h.id).await?;
        ensure!(&stored == r, "GetResult differs from the agent's Finished");
        let watched = timeout(STEP * 3, h.watch).await.context("watcher hung")?.context("watcher panicked")??;
        ensure!(&watched.result == r, "the watcher's last event differs from the result");
        ensure!(
            watched.actions == local.trace.len(),
            "watched {} actions, {} locally",
            watched.actions,
            local.trace.len()
        );
        Ok(())
    }
}

// ---------------------------------------------------------------- misbehaving agents

/// Acting out of turn: before any YourTurn, with a wrong or stale turn
/// number, or answering the same turn twice.
async fn out_of_turn(env: Arc<Env>, n: usize) -> Result<()> {
    let h = env.host(BAD_A[n / 5 % 4], SMALL).await?;
    let (id, shape) = (h.id.clone(), h.shape);
    let mut ag = Agent::open(env.channel()).await?;
    ag.join(&id, "B", &h.token);
    match n % 5 {
        // Right behind the Join, before anything came back.
        0 => ag.act(&id, 1 + n as u64, Some(zeros(shape))),
        1 => {
            ag.settings(&id).await?;
            ag.act(&id, u64::MAX, Some(accept()));
        }
        2 => {
            ag.settings(&id).await?;
            let t = ag.turn(&id).await?;
            ag.act(&id, t.turn + 1 + n as u64 % 3, Some(zeros(shape)));
        }
        3 => {
            ag.settings(&id).await?;
            let t = ag.turn(&id).await?;
            ag.act(&id, t.turn, Some(zeros(shape)));
            ag.act(&id, t.turn, Some(zeros(shape)));
        }
        _ => {
            ag.settings(&id).await?;
            let next = ag.answer_validly(&id, 1 + n as u64 % 3, shape).await?;
            let t = ag.turn(&id).await?;
            ensure!(t.turn == next, "turn {} where {next} was due", t.turn);
            ag.act(&id, t.turn - 1, Some(end_negotiation()));
        }
    }
    env.count("act out of turn", 1);
    let r = env.expect_no_deal(h, "violation", Some("out of turn")).await?;
    let told = ag.error(&id, "violation").await?;
    ensure!(told.message.contains("out of turn"), "told {:?}", told.message);
    ensure!(ag.finished(&id).await? == r, "the agent's Finished differs from GetResult");
    Ok(())
}

/// Offers outside the domain, at the first turn or later.
async fn outside_domain(env: Arc<Env>, n: usize) -> Result<()> {
    let h = env.host(BAD_A[n / 3 % 4], SMALL).await?;
    let (id, shape) = (h.id.clone(), h.shape);
    let mut ag = Agent::open(env.channel()).await?;
    ag.join_checked(&h).await?;
    let next = ag.answer_validly(&id, n as u64 % 3, shape).await?;
    let t = ag.turn(&id).await?;
    ensure!(t.turn == next, "turn {} where {next} was due", t.turn);
    let (label, bad) = outside_offer(n, shape);
    ag.act(&id, t.turn, Some(bad));
    env.count("offer outside the domain", 1);
    let r = env.expect_no_deal(h, "violation", Some("outside the domain")).await.context(label)?;
    ensure!(ag.finished(&id).await? == r, "the agent's Finished differs from GetResult");
    Ok(())
}

/// An Act without an action, or with an action without content.
async fn act_without_action(env: Arc<Env>, n: usize) -> Result<()> {
    let h = env.host(BAD_A[n / 2 % 4], SMALL).await?;
    let (id, shape) = (h.id.clone(), h.shape);
    let mut ag = Agent::open(env.channel()).await?;
    ag.join_checked(&h).await?;
    let next = ag.answer_validly(&id, n as u64 / 2 % 3, shape).await?;
    let t = ag.turn(&id).await?;
    ensure!(t.turn == next, "turn {} where {next} was due", t.turn);
    ag.act(&id, t.turn, if n.is_multiple_of(2) { None } else { Some(pb::Action { kind: None }) });
    env.count("act without action", 1);
    let r = env.expect_no_deal(h, "violation", Some("malformed")).await?;
    ensure!(ag.finished(&id).await? == r, "the agent's Finished differs from GetResult");
    Ok(())
}

/// Empty AgentMessages before joining, between joining and the turn, and
/// during the turn: each gets an Error, none ends anything; the agent then
/// ends the negotiation itself.
async fn empty_messages(env: Arc<Env>, n: usize) -> Result<()> {
    let h = env.host(BAD_A[n % 4], SMALL).await?;
    let (id, shape) = (h.id.clone(), h.shape);
    let mut ag = Agent::open(env.channel()).await?;
    let per = 1 + n % 3;
    for _ in 0..per {
        ag.send(None);
    }
    for _ in 0..per {
        ag.error("", "malformed").await?;
    }
    ag.join(&id, "B", &h.token);
    for _ in 0..per {
        ag.send(None);
    }
    ag.settings(&id).await?;
    let next = ag.answer_validly(&id, n as u64 % 2, shape).await?;
    let t = ag.turn(&id).await?;
    ensure!(t.turn == next, "turn {} where {next} was due", t.turn);
    for _ in 0..per {
        ag.send(None);
    }
    ag.act(&id, t.turn, Some(end_negotiation()));
    for _ in 0..2 * per {
        ag.error("", "malformed").await?;
    }
    env.count("empty AgentMessage", 3 * per);
    let r = env.expect_no_deal(h, "end-negotiation", None).await?;
    ensure!(ag.finished(&id).await? == r, "the agent's Finished differs from GetResult");
    ensure!(!ag.held.iter().any(|k| matches!(k, Kind::Error(e) if e.code == "violation")), "{:?}", ag.held);
    Ok(())
}

/// A stream that joins nothing sends only empty messages.
async fn empty_burst(env: Arc<Env>, n: usize) -> Result<()> {
    let mut ag = Agent::open(env.channel()).await?;
    let burst = 20 + n % 5;
    for _ in 0..burst {
        ag.send(None);
    }
    for _ in 0..burst {
        let e = ag.error("", "malformed").await?;
        ensure!(!e.message.is_empty(), "an Error without a message");
    }
    env.count("empty AgentMessage", burst);
    Ok(())
}

/// Silence past the turn deadline, at the first turn or later; some agents
/// keep sending empty messages meanwhile, some answer after the deadline.
async fn silence(env: Arc<Env>, n: usize) -> Result<()> {
    let h = env.host(BAD_A[n / 4 % 4], SMALL).await?;
    let (id, shape) = (h.id.clone(), h.shape);
    let mut ag = Agent::open(env.channel()).await?;
    ag.join_checked(&h).await?;
    let next = ag.answer_validly(&id, n as u64 % 3, shape).await?;
    let t = ag.turn(&id).await?;
    ensure!(t.turn == next, "turn {} where {next} was due", t.turn);
    let got_turn = Instant::now();
    if n % 4 == 1 {
        for _ in 0..3 {
            ag.send(None);
            tokio::time::sleep(TURN_TIMEOUT / 6).await;
        }
        env.count("empty AgentMessage", 3);
    }
    env.count("silence past the turn deadline", 1);
    let finished = ag.finished(&id).await?;
    let waited = got_turn.elapsed();
    ensure!(waited >= TURN_TIMEOUT / 2, "timed out after only {waited:?}");
    if n % 4 == 2 {
        // The answer comes too late: it must change nothing.
        ag.act(&id, t.turn, Some(zeros(shape)));
        env.count("act after the session ended", 1);
    }
    let r = env.expect_no_deal(h, "violation", Some("no answer within")).await?;
    ensure!(finished == r, "the agent's Finished differs from GetResult");
    ensure!(env.result(&id).await? == r, "the result changed");
    Ok(())
}

/// A connection dropped before or during the agent's turn: only the request
/// stream, the whole stream, or the whole connection.
async fn dropped(env: Arc<Env>, n: usize) -> Result<()> {
    let h = env.host(BAD_A[n / 5 % 4], SMALL).await?;
    let (id, shape) = (h.id.clone(), h.shape);
    let own = n % 5 >= 2 && n % 5 <= 3;
    let channel = if own { connect(&env.url, None).await? } else { env.channel() };
    let mut ag = Agent::open(channel.clone()).await?;
    ag.join_checked(&h).await?;
    match n % 5 {
        0 => {
            ag.tx = None;
        }
        1 => {
            ag.turn(&id).await?;
            ag.tx = None;
        }
        2 => {
            drop(ag);
            drop(channel);
            env.count("dropped connection", 1);
            env.expect_no_deal(h, "violation", Some("connection dropped")).await?;
            return Ok(());
        }
        3 => {
            ag.turn(&id).await?;
            drop(ag);
            drop(channel);
            env.count("dropped connection", 1);
            env.expect_no_deal(h, "violation", Some("connection dropped")).await?;
            return Ok(());
        }
        _ => {
            ag.answer_validly(&id, 1 + n as u64 % 3, shape).await?;
            ag.turn(&id).await?;
            drop(ag);
            env.count("dropped connection", 1);
            env.expect_no_deal(h, "violation", Some("connection dropped")).await?;
            return Ok(());
        }
    }
    // Only the request side closed: the server must end the response side.
    env.count("dropped connection", 1);
    env.expect_no_deal(h, "violation", Some("connection dropped")).await?;
    let deadline = Instant::now() + STEP;
    loop {
        match timeout(deadline.saturating_duration_since(Instant::now()), ag.rx.next()).await {
            Err(_) => bail!("the server kept the response stream open"),
            Ok(None | Some(Err(_))) => return Ok(()),
            Ok(Some(Ok(_))) => {}
        }
    }
}

/// Joins with wrong tokens and for parties that are not external: refused
/// with an Error, after which the session can still be joined and played.
async fn wrong_token(env: Arc<Env>, n: usize) -> Result<()> {
    let h = env.host(if n.is_multiple_of(2) { BAD_A[n / 2 % 4] } else { GOOD_A[n / 2 % 6] }, SMALL).await?;
    let id = h.id.clone();
    let mut ag = Agent::open(env.channel()).await?;
    let t = &h.token;
    let flipped = {
        let mut c: Vec<char> = t.chars().collect();
        let k = n % c.len();
        c[k] = if c[k] == '0' { '1' } else { '0' };
        c.into_iter().collect::<String>()
    };
    let wrong = [String::new(), t[..t.len() - 1].to_string(), format!("{t}0"), flipped, "f".repeat(t.len())];
    for w in &wrong {
        ag.join(&id, "B", w);
    }
    for _ in &wrong {
        ag.error(&id, "unauthenticated").await?;
    }
    env.count("join with a wrong token", wrong.len());
    // The local party and a party that does not exist.
    ag.join(&id, "A", t);
    ag.join(&id, "nobody", t);
    for _ in 0..2 {
        ag.error(&id, "not-found").await?;
    }
    env.count("join of a party that is not external", 2);
    let list = env.list_all().await?;
    let info = list.iter().find(|s| s.session_id == id).context("session not listed")?;
    ensure!(info.state == "waiting" && info.waiting_for == ["B"], "listed as {info:?}");
    if n.is_multiple_of(2) {
        // The same stream now joins properly and ends the negotiation.
        ag.join(&id, "B", t);
        ag.settings(&id).await?;
        let turn = ag.turn(&id).await?;
        ag.act(&id, turn.turn, Some(end_negotiation()));
        let r = env.expect_no_deal(h, "end-negotiation", None).await?;
        ensure!(ag.finished(&id).await? == r, "the agent's Finished differs from GetResult");
    } else {
        // A well-behaved agent on another stream plays it to the end.
        let seat = Seat::new(&id, "B", t, StrategySpec::named("boulware").build()?);
        let results = timeout(STEP * 2, play(env.channel(), vec![seat])).await.context("play hung")??;
        env.expect_as_direct(h, &results[0]).await?;
    }
    Ok(())
}

/// Joins of sessions that do not exist.
async fn unknown_session(env: Arc<Env>, n: usize) -> Result<()> {
    let mut ag = Agent::open(env.channel()).await?;
    let ids = [
        String::new(),
        format!("{:032x}", n as u128 * 0x9e37_79b9_7f4a_7c15),
        "../../etc/passwd".to_string(),
        "sessão-ünïcode-✓".to_string(),
        "x".repeat(4096 + n),
        format!("{n} OR 1=1"),
        "\u{0}".to_string(),
        "SELECT".to_string(),
    ];
    for id in &ids {
        ag.join(id, "B", "0123456789abcdef");
    }
    for id in &ids {
        ag.error(id, "not-found").await?;
    }
    env.count("join of an unknown session", ids.len());
    Ok(())
}

/// Acts for sessions this stream has not joined (unknown ones, and a live
/// one whose agent is on another stream and owes the very turn acted for):
/// refused, and the live session carries on with its own agent.
async fn not_joined(env: Arc<Env>, n: usize) -> Result<()> {
    let h = env.host(BAD_A[n % 4], SMALL).await?;
    let (id, shape) = (h.id.clone(), h.shape);
    let mut owner = Agent::open(env.channel()).await?;
    let mut rogue = Agent::open(env.channel()).await?;
    // Before anyone joined.
    rogue.act(&id, 0, Some(zeros(shape)));
    owner.join_checked(&h).await?;
    let t = owner.turn(&id).await?;
    // While the owner holds the turn: what would be a valid answer, and worse.
    rogue.act(&id, t.turn, Some(accept()));
    rogue.act(&id, t.turn + 1, Some(zeros(shape)));
    rogue.act(&id, t.turn, None);
    rogue.act("no-such-session", 0, Some(end_negotiation()));
    owner.act(&id, t.turn, Some(zeros(shape)));
    let t2 = owner.turn(&id).await?;
    ensure!(t2.turn == t.turn + 1, "turn {} after turn {}", t2.turn, t.turn);
    owner.act(&id, t2.turn, Some(end_negotiation()));
    for _ in 0..4 {
        rogue.error(&id, "not-joined").await?;
    }
    rogue.error("no-such-session", "not-joined").await?;
    env.count("act for a session not joined", 5);
    let r = env.expect_no_deal(h, "end-negotiation", None).await?;
    ensure!(r.offers == 3, "{} offers (A, B, A expected)", r.offers);
    ensure!(owner.finished(&id).await? == r, "the agent's Finished differs from GetResult");
    rogue.nothing_else_about(&id, |k| matches!(k, Kind::Error(e) if e.code == "not-joined")).await?;
    Ok(())
}

/// Agents that leave their party (Leave): before their first turn, during a
/// turn, with a reason far over the limit; a stream leaving a party it does
/// not play is refused and changes nothing.
async fn leave(env: Arc<Env>, n: usize) -> Result<()> {
    let h = env.host(BAD_A[n / 4 % 4], SMALL).await?;
    let (id, shape) = (h.id.clone(), h.shape);
    let mut ag = Agent::open(env.channel()).await?;
    ag.join_checked(&h).await?;
    match n % 4 {
        0 => {
            ag.leave(&id, "HardHeaded raised ValueError: no bid");
            env.count("leave", 1);
            let r = env.expect_no_deal(h, "violation", Some("the agent left: HardHeaded raised ValueError")).await?;
            // Its seat is gone: leaving again is about a finished session.
            ag.leave(&id, "again");
            ag.error(&id, "finished").await?;
            ensure!(env.result(&id).await? == r, "the result changed");
        }
        1 => {
            let next = ag.answer_validly(&id, n as u64 % 3, shape).await?;
            let t = ag.turn(&id).await?;
            ensure!(t.turn == next, "turn {} where {next} was due", t.turn);
            ag.leave(&id, "did not answer within 1.0 s");
            env.count("leave", 1);
            env.expect_no_deal(h, "violation", Some("the agent left: did not answer within 1.0 s")).await?;
        }
        2 => {
            let huge = "x".repeat(100_000 + n);
            ag.leave(&id, &huge);
            env.count("leave", 1);
            let r = env.expect_no_deal(h, "violation", Some("the agent left: xxx")).await?;
            let reason = r.violation.map(|v| v.reason).unwrap_or_default();
            ensure!(reason.len() <= 1_100, "a reason of {} bytes was kept", reason.len());
        }
        _ => {
            let mut rogue = Agent::open(env.channel()).await?;
            rogue.leave(&id, "not mine");
            rogue.error(&id, "not-joined").await?;
            env.count("leave a party not played", 1);
            let t = ag.turn(&id).await?;
            ag.act(&id, t.turn, Some(end_negotiation()));
            let r = env.expect_no_deal(h, "end-negotiation", None).await?;
            ensure!(ag.finished(&id).await? == r, "the agent's Finished differs from GetResult");
        }
    }
    Ok(())
}

/// Second joins of a joined party, on the same stream and on another one,
/// before and during its turn: refused; the first agent keeps the party.
async fn already_joined(env: Arc<Env>, n: usize) -> Result<()> {
    let h = env.host(BAD_A[n % 4], SMALL).await?;
    let (id, shape) = (h.id.clone(), h.shape);
    let mut owner = Agent::open(env.channel()).await?;
    let mut rival = Agent::open(env.channel()).await?;
    owner.join_checked(&h).await?;
    owner.join(&id, "B", &h.token);
    rival.join(&id, "B", &h.token);
    let t = owner.turn(&id).await?;
    rival.join(&id, "B", &h.token);
    owner.act(&id, t.turn, Some(zeros(shape)));
    owner.error(&id, "already-joined").await?;
    for _ in 0..2 {
        rival.error(&id, "already-joined").await?;
    }
    env.count("second join of a joined party", 3);
    let t2 = owner.turn(&id).await?;
    owner.act(&id, t2.turn, Some(end_negotiation()));
    let r = env.expect_no_deal(h, "end-negotiation", None).await?;
    ensure!(owner.finished(&id).await? == r, "the agent's Finished differs from GetResult");
    rival.nothing_else_about(&id, |k| matches!(k, Kind::Error(e) if e.code == "already-joined")).await?;
    Ok(())
}

/// One stream, five sessions: out of turn, outside the domain, silent, ended
/// properly, and played validly for a while then ended. Each misbehaviour
/// ends only its own session.
async fn multiplexed(env: Arc<Env>, n: usize) -> Result<()> {
    let mut hosted = Vec::new();
    for k in 0..5 {
        hosted.push(env.host(BAD_A[(n + k) % 4], SMALL).await?);
    }
    let shape = SMALL;
    let ids: Vec<String> = hosted.iter().map(|h| h.id.clone()).collect();
    let mut ag = Agent::open(env.channel()).await?;
    for h in &hosted {
        ag.join(&h.id, "B", &h.token);
    }
    for id in &ids {
        ag.settings(id).await?;
    }
    let t = ag.turn(&ids[0]).await?;
    ag.act(&ids[0], t.turn + 2, Some(zeros(shape)));
    let t = ag.turn(&ids[1]).await?;
    ag.act(&ids[1], t.turn, Some(outside_offer(n, shape).1));
    let t = ag.turn(&ids[3]).await?;
    ag.act(&ids[3], t.turn, Some(end_negotiation()));
    let next = ag.answer_validly(&ids[4], 3, shape).await?;
    let t = ag.turn(&ids[4]).await?;
    ensure!(t.turn == next, "turn {} where {next} was due", t.turn);
    ag.act(&ids[4], t.turn, Some(end_negotiation()));
    env.count("act out of turn", 1);
    env.count("offer outside the domain", 1);
    env.count("silence past the turn deadline", 1);
    let mut hosted = hosted.into_iter();
    let expected = [
        ("violation", Some("out of turn")),
        ("violation", Some("outside the domain")),
        ("violation", Some("no answer within")),
        ("end-negotiation", None),
        ("end-negotiation", None),
    ];
    for (k, (ended_by, needle)) in expected.into_iter().enumerate() {
        let h = hosted.next().expect("five sessions");
        let r = env.expect_no_deal(h, ended_by, needle).await.with_context(|| format!("session {k} of the stream"))?;
        ensure!(ag.finished(&ids[k]).await? == r, "session {k}: the agent's Finished differs from GetResult");
    }
    Ok(())
}

/// No agent ever joins: after the session's join timeout, B is at fault.
async fn never_joined(env: Arc<Env>, n: usize) -> Result<()> {
    let h = env.host_with(BAD_A[n % 4], SMALL, 0.3).await?;
    env.count("never joined", 1);
    env.expect_no_deal(h, "violation", Some("no agent joined within")).await?;
    Ok(())
}

/// A message beyond the node's size limit, before or during the turn: the
/// stream breaks, which is a dropped connection.
async fn oversized(env: Arc<Env>, n: usize) -> Result<()> {
    let h = env.host(BAD_A[n % 4], SMALL).await?;
    let (id, shape) = (h.id.clone(), h.shape);
    let mut ag = Agent::open(env.channel()).await?;
    ag.join_checked(&h).await?;
    let t = if n.is_multiple_of(2) { ag.turn(&id).await?.turn } else { 0 };
    let mut values = zeros_map(shape);
    values.insert("i0".repeat(600_000), int(0));
    ag.act(&id, t, Some(offer(values)));
    env.count("oversized message", 1);
    env.expect_no_deal(h, "violation", Some("connection dropped")).await?;
    Ok(())
}

/// Several streams join the same party with its token at once: exactly one
/// gets it, the others are refused and hear nothing more of the session.
async fn join_race(env: Arc<Env>, n: usize) -> Result<()> {
    let h = env.host(BAD_A[n % 4], SMALL).await?;
    let id = h.id.clone();
    let mut agents = Vec::new();
    for _ in 0..4 {
        agents.push(Agent::open(env.channel()).await?);
    }
    for ag in &agents {
        ag.join(&id, "B", &h.token);
    }
    let mut winners = Vec::new();
    for (k, ag) in agents.iter_mut().enumerate() {
        let got = ag
            .expect("settings or already-joined", |m| match m {
                Kind::Settings(s) => s.session_id == id,
                Kind::Error(e) => e.session_id == id && e.code == "already-joined",
                _ => false,
            })
            .await?;
        if matches!(got, Kind::Settings(_)) {
            winners.push(k);
        }
    }
    ensure!(winners.len() == 1, "{} streams got the party", winners.len());
    env.count("second join of a joined party", 3);
    let winner = &mut agents[winners[0]];
    let t = winner.turn(&id).await?;
    winner.act(&id, t.turn, Some(end_negotiation()));
    let r = env.expect_no_deal(h, "end-negotiation", None).await?;
    ensure!(winner.finished(&id).await? == r, "the agent's Finished differs from GetResult");
    for (k, ag) in agents.iter_mut().enumerate() {
        if k != winners[0] {
            ag.nothing_else_about(&id, |_| false).await?;
        }
    }
    Ok(())
}

/// Scenarios the node must refuse, with a management error and no session.
async fn bad_create(env: Arc<Env>, n: usize) -> Result<()> {
    let good = scenario_text(SMALL, 10_000 + n as u64, "boulware", "boulware");
    let texts = [
        "this is not toml".to_string(),
        good.replacen("strategy = \"boulware\"", "strategy = \"no-such-strategy\"", 1),
        good.replacen("max = 5", "max = -5", 1),
        good.replace("reservation = ", "reservation = 7"),
        String::new(),
    ];
    let mut m = env.management();
    for text in texts {
        let req = pb::CreateSessionRequest {
            scenario_toml: text,
            seed: 0,
            has_seed: false,
            join_timeout_seconds: -1.0,
            ..Default::default()
        };
        match timeout(STEP, m.create_session(req)).await.context("CreateSession timed out")? {
            Err(s) if s.code() == tonic::Code::InvalidArgument => {}
            other => bail!("a bad scenario was answered with {other:?}"),
        }
    }
    env.count("bad CreateSession", 5);
    Ok(())
}

/// Silence while a wall-time deadline runs out is no fault: the session
/// ends by its deadline, not with a violation.
async fn silent_at_wall_deadline(env: Arc<Env>, n: usize) -> Result<()> {
    let j = env.next_scenario.fetch_add(1, Ordering::Relaxed);
    let rounds = format!("rounds = {}\n", SMALL.rounds);
    let text =
        scenario_text(SMALL, j, BAD_A[n % 4], "boulware").replacen(&rounds, &format!("{rounds}seconds = 0.2\n"), 1);
    ensure!(text.contains("seconds = 0.2"), "no wall-time deadline in the scenario");
    let mut m = env.management();
    let req = pb::CreateSessionRequest {
        scenario_toml: text,
        seed: j,
        has_seed: true,
        join_timeout_seconds: 2.0,
        ..Default::default()
    };
    let created = timeout(STEP, m.create_session(req)).await.context("CreateSession timed out")??.into_inner();
    let id = created.session_id;
    env.created.lock().expect("created").push(id.clone());
    let mut ag = Agent::open(env.channel()).await?;
    ag.join(&id, "B", &created.tokens[0].token);
    let s = ag.settings(&id).await?;
    ensure!(s.deadline_seconds == 0.2, "settings {s:?}");
    env.count("silence until a wall-time deadline (no fault)", 1);
    let r = ag.finished(&id).await?;
    ensure!(r.ended_by == "deadline" && r.violation.is_none(), "ended by {:?} {:?}", r.ended_by, r.violation);
    ensure!(r.agreement.is_none(), "an agreement: {:?}", r.agreement);
    ensure!(r.utilities == reservations(j), "utilities {:?}, reservations {:?}", r.utilities, reservations(j));
    ensure!(env.result(&id).await? == r, "GetResult differs from the agent's Finished");
    Ok(())
}

// ---------------------------------------------------------------- well-behaved agents

/// Four sessions played over one stream by `client::play` (boulware for B),
/// each checked against a local run.
async fn well_behaved(env: Arc<Env>, n: usize) -> Result<()> {
    let mut hosted = Vec::new();
    let mut seats = Vec::new();
    for k in 0..4 {
        let h = env.host(GOOD_A[(4 * n + k) % GOOD_A.len()], W1ISH).await?;
        seats.push(Seat::new(&h.id, "B", &h.token, StrategySpec::named("boulware").build()?));
        hosted.push(h);
    }
    let results = timeout(STEP * 3, play(env.channel(), seats)).await.context("play hung")??;
    ensure!(results.len() == 4, "{} results", results.len());
    for (k, (h, r)) in hosted.into_iter().zip(&results).enumerate() {
        env.expect_as_direct(h, r).await.with_context(|| format!("session {k} of the stream"))?;
    }
    Ok(())
}

// ---------------------------------------------------------------- the test

/// What a misbehaving case does, and how many times it runs.
const PLAN: [(&str, usize); 18] = [
    ("out_of_turn", 120),
    ("outside_domain", 120),
    ("act_without_action", 50),
    ("empty_messages", 40),
    ("empty_burst", 10),
    ("silence", 60),
    ("dropped", 60),
    ("wrong_token", 30),
    ("unknown_session", 15),
    ("not_joined", 30),
    ("already_joined", 30),
    ("multiplexed", 10),
    ("never_joined", 10),
    ("oversized", 10),
    ("join_race", 20),
    ("bad_create", 10),
    ("silent_at_wall_deadline", 10),
    ("leave", 20),
];

async fn run_case(name: &str, env: Arc<Env>, n: usize) -> Result<()> {
    match name {
        "out_of_turn" => out_of_turn(env, n).await,
        "outside_domain" => outside_domain(env, n).await,
        "act_without_action" => act_without_action(env, n).await,
        "empty_messages" => empty_messages(env, n).await,
        "empty_burst" => empty_burst(env, n).await,
        "silence" => silence(env, n).await,
        "dropped" => dropped(env, n).await,
        "wrong_token" => wrong_token(env, n).await,
        "unknown_session" => unknown_session(env, n).await,
        "not_joined" => not_joined(env, n).await,
        "already_joined" => already_joined(env, n).await,
        "multiplexed" => multiplexed(env, n).await,
        "never_joined" => never_joined(env, n).await,
        "oversized" => oversized(env, n).await,
        "join_race" => join_race(env, n).await,
        "bad_create" => bad_create(env, n).await,
        "silent_at_wall_deadline" => silent_at_wall_deadline(env, n).await,
        "leave" => leave(env, n).await,
        other => bail!("no case {other}"),
    }
}

async fn adversarial(url: String) -> Result<()> {
    let started = Instant::now();
    let env = Arc::new(Env::new(url).await?);

    // Well-behaved sessions first, so that they overlap the misbehaviour.
    let good: Vec<_> = (0..6)
        .map(|n| {
            let env = env.clone();
            tokio::spawn(async move { (n, well_behaved(env, n).await) })
        })
        .collect();

    // Interleaved, so that every kind runs alongside the others.
    let mut order = Vec::new();
    let most = PLAN.iter().map(|p| p.1).max().unwrap_or(0);
    for n in 0..most {
        for (name, count) in PLAN {
            if n < count {
                order.push((name, n));
            }
        }
    }
    let gate = Arc::new(Semaphore::new(IN_FLIGHT));
    let tasks: Vec<_> = order
        .into_iter()
        .map(|(name, n)| {
            let (env, gate) = (env.clone(), gate.clone());
            tokio::spawn(async move {
                let _permit = gate.acquire_owned().await.expect("gate open");
                (name, n, timeout(STEP * 4, run_case(name, env, n)).await)
            })
        })
        .collect();
    let mut failures: Vec<String> = Vec::new();
    let mut by_case: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for t in tasks {
        let (name, n, outcome) = t.await.context("a case panicked")?;
        let entry = by_case.entry(name).or_default();
        entry.0 += 1;
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                entry.1 += 1;
                failures.push(format!("{name} #{n}: {e:#}"));
            }
            Err(_) => {
                entry.1 += 1;
                failures.push(format!("{name} #{n}: hung"));
            }
        }
    }
    for g in good {
        let (n, outcome) = g.await.context("a well-behaved agent panicked")?;
        let entry = by_case.entry("well_behaved (4 sessions each)").or_default();
        entry.0 += 1;
        if let Err(e) = outcome {
            entry.1 += 1;
            failures.push(format!("well_behaved #{n}: {e:#}"));
        }
    }
    let misbehaving_done = started.elapsed();

    // The node still answers, and nothing it hosted is left hanging.
    let list = env.list_all().await.context("ListSessions")?;
    let states: HashMap<&str, &str> = list.iter().map(|s| (s.session_id.as_str(), s.state.as_str())).collect();
    let created = env.created.lock().expect("created").clone();
    for id in &created {
        match states.get(id.as_str()) {
            Some(&"finished") => {}
            other => failures.push(format!("session {id} is {other:?} after its case ended")),
        }
    }
    // A finished session can no longer be joined.
    let mut late = Agent::open(env.channel()).await?;
    for id in created.iter().take(40) {
        late.join(id, "B", "0000");
        late.error(id, "finished").await?;
    }
    env.count("join of a finished session", created.len().min(40));
    // Watching a finished session gives its result, then the stream ends.
    for id in created.iter().rev().take(10) {
        let mut m = env.management();
        let stored = env.result(id).await?;
        let mut events =
            timeout(STEP, m.watch_session(pb::WatchSessionRequest { session_id: id.clone() })).await??.into_inner();
        let first = timeout(STEP, events.next()).await?.context("no event")??;
        ensure!(first.kind == Some(pb::session_event::Kind::Finished(stored)), "watching {id} gave {first:?}");
        ensure!(timeout(STEP, events.next()).await?.is_none(), "the watch of {id} stayed open");
    }
    // Management calls about sessions that do not exist.
    let mut m = env.management();
    let missing = pb::GetResultRequest { session_id: "no-such-session".into() };
    let code = timeout(STEP, m.get_result(missing)).await?.err().map(|s| s.code());
    ensure!(code == Some(tonic::Code::NotFound), "GetResult of an unknown session: {code:?}");
    let missing = pb::WatchSessionRequest { session_id: "no-such-session".into() };
    let code = timeout(STEP, m.watch_session(missing)).await?.err().map(|s| s.code());
    ensure!(code == Some(tonic::Code::NotFound), "WatchSession of an unknown session: {code:?}");

    // A fresh session after all that.
    let fresh = env.host("conceder", W1ISH).await?;
    let seat = Seat::new(&fresh.id, "B", &fresh.token, StrategySpec::named("boulware").build()?);
    let results = timeout(STEP * 2, play(env.channel(), vec![seat])).await.context("play hung")??;
    env.expect_as_direct(fresh, &results[0]).await.context("the fresh session")?;

    let tally = env.tally.lock().expect("tally").clone();
    let total: usize = tally.iter().filter(|(k, _)| !k.contains("no fault")).map(|(_, n)| n).sum();
    println!("bad messages sent, by kind:");
    for (kind, count) in &tally {
        println!("  {count:>5}  {kind}");
    }
    println!("  {total:>5}  in all (no-fault cases left out), over {} sessions", created.len());
    println!("cases (run, failed):");
    for (name, (run, failed)) in &by_case {
        println!("  {name:<30} {run:>4} {failed:>4}");
    }
    println!("misbehaviour done in {misbehaving_done:?}, everything in {:?}", started.elapsed());
    if !failures.is_empty() {
        let shown: Vec<&str> = failures.iter().take(25).map(String::as_str).collect();
        bail!("{} of the checks failed:\n{}", failures.len(), shown.join("\n"));
    }
    ensure!(total >= 1000, "only {total} bad messages sent");
    Ok(())
}

/// Runs `body` against a fresh node on 127.0.0.1 (turn timeout 300 ms, join
/// timeout 5 s, caps out of the way) and stops the node afterwards.
fn with_node<F, Fut>(body: F) -> Result<()>
where
    F: FnOnce(String) -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    let system = actix::System::with_tokio_rt(|| {
        tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a tokio runtime")
    });
    system.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let config = ServerConfig {
            turn_timeout: TURN_TIMEOUT,
            join_timeout: Duration::from_secs(5),
            max_sessions: 100_000,
            max_sessions_per_client: 100_000,
            max_unseated_streams_per_client: 100_000,
            ..ServerConfig::default()
        };
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        // `serve` starts its arbiters here, on the system's thread.
        let server = tokio::spawn(serve(config, listener, None, async {
            let _ = stop_rx.await;
        }));
        let outcome = match timeout(OVERALL, body(url)).await {
            Ok(r) => r,
            Err(_) => Err(anyhow::anyhow!("the test did not finish within {OVERALL:?}")),
        };
        let _ = stop_tx.send(());
        let _ = timeout(Duration::from_secs(5), server).await;
        outcome
    })
}

#[test]
fn misbehaving_agents_end_only_their_own_sessions() {
    if let Err(e) = with_node(adversarial) {
        panic!("{e:#}");
    }
}

/// An Act for a session that is over, sent on the stream that played it, is
/// something the node cannot take and cannot pin on anyone; the proto says
/// such messages are answered with an Error ("nothing else changes"). Today
/// the stream's `joined` map still holds the finished session, the Act goes
/// to a stopped actor and vanishes without a word.
#[test]
fn act_for_a_finished_session_is_answered() {
    let outcome = with_node(|url| async move {
        let env = Env::new(url).await?;
        let h = env.host("boulware", SMALL).await?;
        let id = h.id.clone();
        let mut ag = Agent::open(env.channel()).await?;
        ag.join_checked(&h).await?;
        let t = ag.turn(&id).await?;
        ag.act(&id, t.turn, Some(end_negotiation()));
        env.expect_no_deal(h, "end-negotiation", None).await?;
        ag.finished(&id).await?;
        ag.act(&id, t.turn + 1, Some(zeros(SMALL)));
        ag.act(&id, t.turn, Some(end_negotiation()));
        for k in 0..2 {
            ag.error(&id, "finished").await.with_context(|| format!("the Error for Act {k}"))?;
        }
        Ok(())
    });
    if let Err(e) = outcome {
        panic!("{e:#}");
    }
}
