//! The server as an attacker and as an operator meet it: what a request
//! without credentials may cost, the limits on scenarios and sessions,
//! bounded streams, credentials on every service, models only from the
//! operator's folder, and one stream playing several parties of a session.
//! Each test reproduces a finding of the security review (issue 10); every
//! wait is bounded.

mod common;

use std::collections::HashMap;
use std::io::Read;
use std::time::{Duration, Instant};

use common::{Admin, Node, eventually, result_of, w1_scenario, wide_scenario, within, within_secs};
use negotium::core::scenario::Scenario;
use negotium::core::strategy::StrategySpec;
use negotium::engine::{SessionSpec, direct};
use negotium::net::auth::{Credentials, Secret};
use negotium::net::client::{Seat, connect, management, play};
use negotium::net::gate::GateConfig;
use negotium::net::pb;
use negotium::net::pb::negotiation_client::NegotiationClient;
use negotium::net::server::ServerConfig;
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::Code;
use tonic::transport::Channel;

async fn admin(node: &Node, token: Option<&str>) -> Admin {
    management(connect(&node.url("http"), None).await.unwrap(), token.map(String::from))
}

fn create(text: String, join_timeout: f64) -> pb::CreateSessionRequest {
    pb::CreateSessionRequest {
        scenario_toml: text,
        seed: 0,
        has_seed: false,
        join_timeout_seconds: join_timeout,
        ..Default::default()
    }
}

/// An agent stream written by hand: what it sends, what it gets.
struct RawStream {
    tx: mpsc::UnboundedSender<pb::AgentMessage>,
    rx: tonic::Streaming<pb::ServerMessage>,
}

impl RawStream {
    async fn open(node: &Node) -> Result<RawStream, tonic::Status> {
        let channel = connect(&node.url("http"), None).await.unwrap();
        Self::open_on(channel).await
    }

    async fn open_on(channel: Channel) -> Result<RawStream, tonic::Status> {
        let mut client = NegotiationClient::new(channel).max_decoding_message_size(64 << 20);
        let (tx, rx) = mpsc::unbounded_channel();
        let rx = client.negotiate(UnboundedReceiverStream::new(rx)).await?.into_inner();
        Ok(RawStream { tx, rx })
    }

    fn act(&self, session_id: &str, turn: u64, party: &str) {
        let act = pb::Act { session_id: session_id.into(), turn, action: None, party: party.into() };
        let _ = self.tx.send(pb::AgentMessage { kind: Some(pb::agent_message::Kind::Act(act)) });
    }

    fn join(&self, session_id: &str, party: &str, token: &str) {
        let join = pb::Join { session_id: session_id.into(), party: party.into(), token: token.into() };
        let _ = self.tx.send(pb::AgentMessage { kind: Some(pb::agent_message::Kind::Join(join)) });
    }

    /// Reads until the stream ends; returns the messages and how it ended.
    async fn drain(&mut self) -> (Vec<pb::ServerMessage>, Option<tonic::Status>) {
        let mut got = Vec::new();
        loop {
            match within("the stream", self.rx.next()).await {
                None => return (got, None),
                Some(Ok(m)) => got.push(m),
                Some(Err(s)) => return (got, Some(s)),
            }
        }
    }
}

// ------------------------------------------------------------ 1. cost of one request

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wide_domain_is_refused_by_default_and_sampled_within_budget_when_allowed() {
    // 2,000 binary issues, both parties external: the end-of-session
    // analysis once sampled 200,000 × 2,000 values (6.4 GB).
    let node = Node::start(ServerConfig::default(), None);
    let mut a = admin(&node, None).await;
    let err = a.create_session(create(wide_scenario(2_000, true, 10), 0.2)).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("2000 issues") && err.message().contains("--max-issues"), "{}", err.message());

    let limits = negotium::core::limits::Limits { max_issues: 4_096, ..Default::default() };
    let node = Node::start(ServerConfig { limits, ..ServerConfig::default() }, None);
    let mut a = admin(&node, None).await;
    let r = a.create_session(create(wide_scenario(2_000, true, 10), 0.2)).await.unwrap().into_inner();
    let result = result_of(&mut a, &r.session_id).await;
    assert_eq!(result.ended_by, "violation", "nobody joined");
    let record: serde_json::Value = serde_json::from_str(&result.record_json).unwrap();
    assert_eq!(record["analysis_exact"], false);
    // Sampled within the value budget: at most 4 Mi values, so 2,097 of
    // these 2,000-value outcomes, not 200,000.
    let evaluated = record["analysis_outcomes"].as_u64().unwrap();
    assert!(evaluated * 2_000 <= negotium::core::limits::VALUE_CELLS as u64, "{record}");
    assert!(evaluated >= 1_000, "{record}");
    assert_eq!(node.service.memory_in_use().0, 0, "a finished session holds no budget");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_are_refused_when_their_estimated_memory_does_not_fit() {
    // Local parties over 2^22 outcomes each build a 48 MiB index (over a
    // deadline this long enumerating costs less than splitting the issues;
    // over 10 rounds the split would take kilobytes): with 64 MiB for all
    // sessions, one fits and a second is refused while the first runs.
    let big = "name = \"big\"\n[protocol]\nrounds = 10000\n[[issues]]\nname = \"x\"\ntype = \"integer\"\nmin = 0\nmax = 2047\n\
               [[issues]]\nname = \"y\"\ntype = \"integer\"\nmin = 0\nmax = 2047\n";
    let party = |name: &str, external: bool, up: bool| {
        let f = if up { "[0.0, 1.0]" } else { "[1.0, 0.0]" };
        format!(
            "[[parties]]\nname = \"{name}\"\nstrategy = \"hardliner\"\nexternal = {external}\nweights = {{ x = 0.5, y = 0.5 }}\n\
             values.x = {{ linear = {f} }}\nvalues.y = {{ linear = {f} }}\n"
        )
    };
    let text = format!("{big}{}{}", party("a", false, true), party("b", true, false));
    let node = Node::start(ServerConfig { session_memory: 64 << 20, ..ServerConfig::default() }, None);
    let mut a = admin(&node, None).await;
    let first = a.create_session(create(text.clone(), 30.0)).await.unwrap().into_inner();
    let err = a.create_session(create(text.clone(), 30.0)).await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted);
    assert!(err.message().contains("busy") && err.message().contains("--session-memory-mib"), "{}", err.message());
    // Cancelled, it gives its share back and the next one fits.
    a.cancel_session(pb::CancelSessionRequest { session_id: first.session_id.clone(), owner_token: first.owner_token })
        .await
        .unwrap();
    assert_eq!(result_of(&mut a, &first.session_id).await.ended_by, "aborted");
    a.create_session(create(text.clone(), 30.0)).await.unwrap();
    // Both local: two indexes, more than the whole budget on its own.
    let both = format!("{big}{}{}", party("a", false, true), party("b", false, false));
    let node = Node::start(ServerConfig { session_memory: 64 << 20, ..ServerConfig::default() }, None);
    let err = admin(&node, None).await.create_session(create(both, 1.0)).await.unwrap_err();
    assert!(err.message().contains("more than this server gives"), "{}", err.message());
}

// ------------------------------------------------------------ 2. bounded output

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_that_does_not_read_its_errors_is_cut_off() {
    // Acts for sessions never joined, with long ids, and nothing read: each
    // is answered with an Error, which once queued without bound (3 GB).
    let node = Node::start(ServerConfig::default(), None);
    let mut s = RawStream::open(&node).await.unwrap();
    // Ids longer than an error echoes (256 characters): each answer is as
    // large as it gets. HTTP/2 buffers about half a megabyte of them; the
    // server's queue takes 64 KiB more, then cuts the stream off.
    let id = "x".repeat(300);
    for turn in 0..5_000 {
        s.act(&id, turn, "");
    }
    // The server answers what it can, cuts the stream off and ends it;
    // reading after that shows a bounded backlog, then the status.
    eventually(10, "the stream cut off", || node.service.census().agent_streams == 0).await;
    let (got, end) = s.drain().await;
    let end = end.expect("the stream ends with a status");
    assert_eq!(end.code(), Code::ResourceExhausted, "{end}");
    assert!(end.message().contains("did not read"), "{}", end.message());
    assert!(got.len() < 5_000, "{} errors were queued", got.len());
    for m in &got {
        let Some(pb::server_message::Kind::Error(e)) = &m.kind else { panic!("{m:?}") };
        assert_eq!(e.code, "not-joined");
        assert!(e.session_id.len() <= 256, "the echo is cut");
    }
    // The node still serves.
    admin(&node, None).await.list_sessions(pb::ListSessionsRequest::default()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_that_does_not_read_is_cut_off_not_buffered() {
    // Two hardliners for 40,000 rounds: 80,000 actions, far more than a
    // watcher may lag behind by (and than HTTP/2 buffers for it).
    let text = w1_scenario(3, "hardliner", "hardliner", false).replace("rounds = 100", "rounds = 40000");
    let limits = negotium::core::limits::Limits { max_rounds: 40_000, ..Default::default() };
    let node = Node::start(ServerConfig { limits, ..ServerConfig::default() }, None);
    let mut a = admin(&node, None).await;
    let r = a.create_session(create(text, 1.0)).await.unwrap().into_inner();
    let mut watch =
        a.watch_session(pb::WatchSessionRequest { session_id: r.session_id.clone() }).await.unwrap().into_inner();
    let result = result_of(&mut a, &r.session_id).await;
    assert_eq!(result.ended_by, "deadline");
    let mut actions = 0;
    let end = loop {
        match within("watch", watch.next()).await {
            Some(Ok(_)) => actions += 1,
            Some(Err(s)) => break Some(s),
            None => break None,
        }
    };
    let end = end.expect("cut off with a status");
    assert_eq!(end.code(), Code::ResourceExhausted);
    assert!(end.message().contains("behind"), "{}", end.message());
    assert!(actions < 80_000, "{actions}");
}

// ------------------------------------------------------------ 3. retention

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finished_results_are_kept_within_count_and_bytes_and_count_against_their_client() {
    let config = ServerConfig {
        keep_results: 10,
        keep_result_bytes: 1 << 20,
        max_sessions_per_client: 5,
        ..ServerConfig::default()
    };
    let node = Node::start(config, None);
    let mut a = admin(&node, None).await;
    let mut ids: Vec<String> = Vec::new();
    for j in 0..30 {
        let r = a.create_session(create(w1_scenario(j, "boulware", "conceder", false), 1.0)).await;
        let r = match r {
            Ok(r) => r.into_inner(),
            // Five at once per client: wait for one to finish.
            Err(s) if s.code() == Code::ResourceExhausted => {
                result_of(&mut a, ids.last().unwrap()).await;
                a.create_session(create(w1_scenario(j, "boulware", "conceder", false), 1.0)).await.unwrap().into_inner()
            }
            Err(s) => panic!("{s}"),
        };
        ids.push(r.session_id);
    }
    let last = result_of(&mut a, ids.last().unwrap()).await;
    assert_eq!(last.ended_by, "agreement");
    let (held, kept, bytes) = node.service.memory_in_use();
    assert!(kept <= 5 && bytes <= 1 << 20, "{kept} results, {bytes} bytes");
    assert!(held < 1 << 20, "running sessions hold {held} bytes");
    // The oldest results were dropped to make room for this client's newer ones.
    let err = a.get_result(pb::GetResultRequest { session_id: ids[0].clone() }).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
}

// ------------------------------------------------------------ 4. endless sessions

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadlines_are_capped_and_sessions_can_be_cancelled() {
    let node = Node::start(ServerConfig::default(), None);
    let mut a = admin(&node, None).await;
    let endless = w1_scenario(1, "hardliner", "hardliner", false);
    for (deadline, flag) in [("rounds = 4294967295", "--max-rounds"), ("seconds = 1e308", "--max-session-seconds")] {
        let err = a.create_session(create(endless.replace("rounds = 100", deadline), 1.0)).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert!(err.message().contains(flag), "{}", err.message());
    }
    // An agent that never joins within a long join timeout: cancelled.
    let r = a.create_session(create(w1_scenario(1, "boulware", "conceder", true), 600.0)).await.unwrap().into_inner();
    let wrong = a
        .cancel_session(pb::CancelSessionRequest { session_id: r.session_id.clone(), owner_token: "nope".into() })
        .await;
    // Without an admin token every caller is an admin: ask a guarded node below.
    assert!(wrong.is_ok());
    let result = result_of(&mut a, &r.session_id).await;
    assert_eq!(result.ended_by, "aborted");
    let record: serde_json::Value = serde_json::from_str(&result.record_json).unwrap();
    assert!(record.to_string().contains("cancelled by an admin"), "{record}");

    let config = ServerConfig {
        credentials: Credentials { admin: Secret::new("adm"), ..Credentials::default() },
        ..ServerConfig::default()
    };
    let guarded = Node::start(config, None);
    let mut a = admin(&guarded, Some("adm")).await;
    let r = a.create_session(create(w1_scenario(1, "boulware", "conceder", true), 600.0)).await.unwrap().into_inner();
    let mut anyone = admin(&guarded, None).await;
    let err = anyone
        .cancel_session(pb::CancelSessionRequest { session_id: r.session_id.clone(), owner_token: "nope".into() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    anyone
        .cancel_session(pb::CancelSessionRequest { session_id: r.session_id.clone(), owner_token: r.owner_token })
        .await
        .unwrap();
    let result = result_of(&mut a, &r.session_id).await;
    assert!(result.record_json.contains("cancelled by its owner"), "{}", result.record_json);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_running_past_the_wall_cap_is_aborted() {
    // Round deadline of 1,000 with an agent that takes 20 ms a turn: 20 s,
    // past the server's 1 s cap.
    let limits = negotium::core::limits::Limits { max_seconds: 1.0, ..Default::default() };
    let node = Node::start(ServerConfig { limits, ..ServerConfig::default() }, None);
    let mut a = admin(&node, None).await;
    let text = w1_scenario(2, "hardliner", "hardliner", true).replace("rounds = 100", "rounds = 1000");
    let r = a.create_session(create(text, 10.0)).await.unwrap().into_inner();
    let slow = SlowAgent::spawn(&node, &r.session_id, "B", &r.tokens[0].token, Duration::from_millis(20)).await;
    let started = Instant::now();
    let result = result_of(&mut a, &r.session_id).await;
    assert_eq!(result.ended_by, "aborted");
    assert!(result.record_json.contains("limit of 1 s per session"), "{}", result.record_json);
    assert!(started.elapsed() < Duration::from_secs(15));
    slow.abort();
}

/// An agent that answers every turn with its best offer, after `delay`.
struct SlowAgent;

impl SlowAgent {
    async fn spawn(
        node: &Node,
        session: &str,
        party: &str,
        token: &str,
        delay: Duration,
    ) -> tokio::task::JoinHandle<()> {
        let mut s = RawStream::open(node).await.unwrap();
        s.join(session, party, token);
        let session = session.to_string();
        tokio::spawn(async move {
            while let Some(Ok(m)) = s.rx.next().await {
                if let Some(pb::server_message::Kind::YourTurn(t)) = m.kind {
                    tokio::time::sleep(delay).await;
                    let values: HashMap<String, pb::Value> = (0..3)
                        .map(|i| (format!("i{i}"), pb::Value { kind: Some(pb::value::Kind::Integer(0)) }))
                        .collect();
                    let action = pb::Action { kind: Some(pb::action::Kind::Offer(pb::Outcome { values })) };
                    let act =
                        pb::Act { session_id: session.clone(), turn: t.turn, action: Some(action), party: t.party };
                    let _ = s.tx.send(pb::AgentMessage { kind: Some(pb::agent_message::Kind::Act(act)) });
                }
            }
        })
    }
}

// ------------------------------------------------------------ 6. slow connections

#[test]
fn connections_that_make_no_call_are_closed_and_capped_per_address() {
    let gate = GateConfig {
        max_per_client: 4,
        first_call: Duration::from_millis(300),
        idle: Duration::from_millis(600),
        ..GateConfig::default()
    };
    let node = Node::start(ServerConfig { connections: gate, ..ServerConfig::default() }, None);
    // Connect and send nothing (no TLS hello, no HTTP/2 preface): the
    // server sends its HTTP/2 settings, then closes.
    let started = Instant::now();
    let mut idle = std::net::TcpStream::connect(node.addr()).unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = Vec::new();
    let _ = idle.read_to_end(&mut buf);
    assert!(buf.len() < 100, "{} bytes", buf.len());
    assert!(started.elapsed() < Duration::from_secs(5), "closed after {:?}", started.elapsed());
    let mut buf = [0u8; 64];
    // Four at once from one address; the fifth is closed at once.
    let held: Vec<_> = (0..4).map(|_| std::net::TcpStream::connect(node.addr()).unwrap()).collect();
    let mut fifth = std::net::TcpStream::connect(node.addr()).unwrap();
    fifth.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let started = Instant::now();
    assert_eq!(fifth.read(&mut buf).unwrap_or(0), 0);
    assert!(started.elapsed() < Duration::from_millis(250), "refused before the first-call timeout");
    drop(held);
    // Once the server has seen them go, honest clients are served again.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(within_secs(10, "a call once the slots are free", async {
        loop {
            if let Ok(channel) = connect(&node.url("http"), None).await
                && management(channel, None).list_sessions(pb::ListSessionsRequest::default()).await.is_ok()
            {
                break;
            }
            // A refused connection fails at once: pace the retries.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_agent_streams_from_one_address_do_not_lock_out_its_agents() {
    let config = ServerConfig {
        max_unseated_streams_per_client: 4,
        unseated_stream_timeout: Duration::from_millis(800),
        ..ServerConfig::default()
    };
    let node = Node::start(config, None);
    let channel = connect(&node.url("http"), None).await.unwrap();
    let mut idle = Vec::new();
    for _ in 0..4 {
        idle.push(RawStream::open_on(channel.clone()).await.unwrap());
    }
    // A fifth from the same address is let in; the oldest idle one makes room.
    let fifth = RawStream::open_on(channel.clone()).await.unwrap();
    let (_, end) = idle[0].drain().await;
    let end = end.expect("closed with a status");
    assert_eq!(end.code(), Code::ResourceExhausted, "{end}");
    assert!(end.message().contains("--max-unseated-streams-per-client"), "{}", end.message());
    // The others are closed once idle for the timeout.
    for s in idle.iter_mut().skip(1) {
        let (_, end) = s.drain().await;
        let end = end.expect("closed with a status");
        assert_eq!(end.code(), Code::DeadlineExceeded, "{end}");
    }
    drop(fifth);
    let mut a = admin(&node, None).await;
    let r = a.create_session(create(w1_scenario(4, "boulware", "conceder", true), 10.0)).await.unwrap().into_inner();
    let seat = Seat::new(&r.session_id, "B", &r.tokens[0].token, StrategySpec::named("conceder").build().unwrap());
    let results = within("play", play(channel, vec![seat])).await.unwrap();
    assert_eq!(results[0].ended_by, "agreement");
}

// ------------------------------------------------------------ 7. listing

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_are_listed_a_page_at_a_time_and_names_are_capped() {
    let node = Node::start(ServerConfig::default(), None);
    let mut a = admin(&node, None).await;
    let mut created = Vec::new();
    for j in 0..230 {
        let r = a.create_session(create(w1_scenario(j, "boulware", "conceder", true), 60.0)).await.unwrap();
        created.push(r.into_inner().session_id);
    }
    let mut listed = Vec::new();
    let mut pages = 0;
    let mut token = String::new();
    loop {
        let r =
            a.list_sessions(pb::ListSessionsRequest { page_size: 100, page_token: token }).await.unwrap().into_inner();
        pages += 1;
        listed.extend(r.sessions.into_iter().map(|s| s.session_id));
        if r.next_page_token.is_empty() {
            break;
        }
        token = r.next_page_token;
    }
    assert_eq!(pages, 3);
    created.sort();
    assert_eq!(listed, created, "every session once, in id order");
    let long = w1_scenario(1, "boulware", "conceder", true)
        .replace("name = \"W3-1\"", &format!("name = \"{}\"", "n".repeat(1 << 19)));
    let err = a.create_session(create(long, 1.0)).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("--max-name-bytes") && err.message().len() < 300, "{}", err.message());
}

// ------------------------------------------------------------ 9, 10. credentials and models

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_but_the_agent_stream_needs_its_token() {
    let config = ServerConfig {
        credentials: Credentials { admin: Secret::new("adm"), ..Credentials::default() },
        ..ServerConfig::default()
    };
    let node = Node::start(config, None);
    let channel = connect(&node.url("http"), None).await.unwrap();
    // The cluster service is not served by `serve`; a node's is covered in
    // tests/cluster.rs. Training has its own server (tests/training.rs).
    let mut anonymous = admin(&node, None).await;
    let err = anonymous.list_sessions(pb::ListSessionsRequest::default()).await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    let err = anonymous.get_result(pb::GetResultRequest { session_id: "x".into() }).await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    // An unknown service is refused before any handler.
    let mut cluster = pb::cluster_client::ClusterClient::new(channel.clone());
    let (_tx, rx) = mpsc::unbounded_channel::<pb::LauncherMessage>();
    let err = cluster.work(UnboundedReceiverStream::new(rx)).await.unwrap_err();
    assert!(matches!(err.code(), Code::Unauthenticated | Code::Unimplemented), "{err}");
    // The agent stream opens without a token.
    RawStream::open_on(channel).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_scenarios_name_published_models_only_and_errors_quote_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret.json");
    std::fs::write(&secret, r#"{"aws_secret_access_key": "hunter2-AKIA", "inputs": "hunter2-AKIA"}"#).unwrap();
    let probe = |path: &str| {
        w1_scenario(1, "boulware", "conceder", false).replacen(
            "strategy = \"boulware\"",
            &format!("strategy = {{ learned = \"{path}\" }}"),
            1,
        )
    };
    let node = Node::start(ServerConfig::default(), None);
    let mut a = admin(&node, None).await;
    let err = a.create_session(create(probe(secret.to_str().unwrap()), 1.0)).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("publishes no models"), "{}", err.message());
    assert!(!err.message().contains("hunter2"));

    // With --models: names in that folder only.
    let models = tempfile::tempdir().unwrap();
    let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
    for ext in ["mpk", "json"] {
        std::fs::copy(shipped.join(format!("policy.{ext}")), models.path().join(format!("policy.{ext}"))).unwrap();
    }
    std::fs::write(models.path().join("broken.json"), r#"{"hidden": "hunter2-AKIA"}"#).unwrap();
    negotium::learn::register();
    let node = Node::start(ServerConfig { models: Some(models.path().into()), ..ServerConfig::default() }, None);
    let mut a = admin(&node, None).await;
    for bad in [secret.to_str().unwrap(), "../secret", "policy/../../etc/passwd", ".hidden"] {
        let err = a.create_session(create(probe(bad), 1.0)).await.unwrap_err();
        assert!(err.message().contains("no paths"), "{bad}: {}", err.message());
    }
    let err = a.create_session(create(probe("broken"), 1.0)).await.unwrap_err();
    assert!(err.message().contains("not published here, or cannot be loaded"), "{}", err.message());
    assert!(!err.message().contains("hunter2"), "{}", err.message());
    let r = a.create_session(create(probe("policy"), 1.0)).await.unwrap().into_inner();
    assert_eq!(result_of(&mut a, &r.session_id).await.ended_by, "agreement");
}

// ------------------------------------------------------------ 14. party identity

const THREE: &str = r#"
name = "three"
seed = 5
[protocol]
rounds = 60
[[issues]]
name = "x"
type = "integer"
min = 0
max = 9
[[issues]]
name = "y"
type = "integer"
min = 0
max = 9
[[parties]]
name = "p0"
strategy = "boulware"
weights = { x = 0.7, y = 0.3 }
values.x = { linear = [0.0, 1.0] }
values.y = { linear = [1.0, 0.0] }
[[parties]]
name = "p1"
strategy = "conceder"
external = true
weights = { x = 0.4, y = 0.6 }
values.x = { linear = [1.0, 0.0] }
values.y = { linear = [0.0, 1.0] }
[[parties]]
name = "p2"
strategy = "linear"
external = true
weights = { x = 0.5, y = 0.5 }
values.x = { linear = [1.0, 0.0] }
values.y = { linear = [1.0, 0.0] }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_stream_plays_two_parties_of_one_session_as_a_local_run_does() {
    let node = Node::start(ServerConfig::default(), None);
    let mut a = admin(&node, None).await;
    let r = a.create_session(create(THREE.into(), 10.0)).await.unwrap().into_inner();
    let token = |p: &str| r.tokens.iter().find(|t| t.party == p).unwrap().token.clone();
    let seats = vec![
        Seat::new(&r.session_id, "p1", &token("p1"), StrategySpec::named("conceder").build().unwrap()),
        Seat::new(&r.session_id, "p2", &token("p2"), StrategySpec::named("linear").build().unwrap()),
    ];
    let channel = connect(&node.url("http"), None).await.unwrap();
    let results = within("play", play(channel, seats)).await.unwrap();
    let sc = Scenario::parse(THREE, "three.toml").unwrap();
    let strategies = sc.parties.iter().map(|p| p.strategy.clone()).collect();
    let spec = SessionSpec::new(0, sc.domain.clone(), sc.preferences(), strategies, sc.deadline, 5).with_trace(true);
    let want = direct::run(&spec).unwrap();
    for got in &results {
        assert_eq!(got.ended_by, want.ending.label());
        assert_eq!(got.utilities, want.utilities);
        assert_eq!((got.rounds, got.offers), (want.rounds, want.offers));
    }
    // An Act that names no party is ambiguous on such a stream.
    let r = a.create_session(create(THREE.into(), 10.0)).await.unwrap().into_inner();
    let token = |p: &str| r.tokens.iter().find(|t| t.party == p).unwrap().token.clone();
    let mut s = RawStream::open(&node).await.unwrap();
    s.join(&r.session_id, "p1", &token("p1"));
    s.join(&r.session_id, "p2", &token("p2"));
    s.act(&r.session_id, 0, "");
    let error = within("an error", async {
        loop {
            if let Some(Ok(m)) = s.rx.next().await
                && let Some(pb::server_message::Kind::Error(e)) = m.kind
            {
                break e;
            }
        }
    })
    .await;
    assert_eq!(error.code, "ambiguous", "{error:?}");
}
