//! The public gRPC API over real sockets on 127.0.0.1: a Rust agent gets the
//! same results as an all-local run; TLS, mutual TLS, the admin token, caps,
//! message size and join timeouts behave as a production service should.

mod common;

use common::{Node, eventually, result_of, within};
use negotium::core::scenario::Scenario;
use negotium::core::strategy::StrategySpec;
use negotium::engine::{SessionSpec, direct};
use negotium::net::auth::{Credentials, Secret};
use negotium::net::client::{Seat, connect, management, play};
use negotium::net::pb;
use negotium::net::server::{Hosting, ServerConfig, TlsFiles};
use tonic::transport::{Certificate, ClientTlsConfig, Identity};

const SCENARIO: &str = r#"
name = "api deal"
seed = 11
[protocol]
rounds = 40
[[issues]]
name = "price"
type = "integer"
min = 0
max = 19
[[issues]]
name = "color"
type = "discrete"
values = ["red", "green", "blue"]
[[issues]]
name = "speed"
type = "integer"
min = 1
max = 5
[[parties]]
name = "buyer"
strategy = "conceder"
reservation = 0.2
weights = { price = 0.55, color = 0.3, speed = 0.15 }
values.price = { linear = [1.0, 0.0] }
values.color = { red = 1.0, green = 0.45, blue = 0.0 }
values.speed = { linear = [0.0, 1.0] }
[[parties]]
name = "seller"
external = true
strategy = "boulware"
reservation = 0.25
weights = { price = 0.6, color = 0.25, speed = 0.15 }
values.price = { linear = [0.0, 1.0] }
values.color = { red = 0.2, green = 1.0, blue = 0.7 }
values.speed = { linear = [1.0, 0.0] }
"#;

fn scenario() -> Scenario {
    Scenario::parse(SCENARIO, "api.toml").unwrap()
}

fn create_request(seed: u64) -> pb::CreateSessionRequest {
    pb::CreateSessionRequest {
        scenario_toml: SCENARIO.into(),
        seed,
        has_seed: true,
        join_timeout_seconds: 10.0,
        ..Default::default()
    }
}

/// A raw agent stream: what the test sends, and what comes back.
struct RawAgent {
    tx: tokio::sync::mpsc::UnboundedSender<pb::AgentMessage>,
    rx: tonic::Streaming<pb::ServerMessage>,
}

impl RawAgent {
    async fn open(channel: tonic::transport::Channel) -> Self {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let mut client = pb::negotiation_client::NegotiationClient::new(channel);
        let rx = client.negotiate(tokio_stream::wrappers::UnboundedReceiverStream::new(rx)).await.unwrap().into_inner();
        Self { tx, rx }
    }

    fn send(&self, kind: pb::agent_message::Kind) {
        self.tx.send(pb::AgentMessage { kind: Some(kind) }).unwrap();
    }

    async fn next(&mut self) -> pb::server_message::Kind {
        let m = within("a server message", tokio_stream::StreamExt::next(&mut self.rx)).await;
        m.expect("the stream is open").expect("a message").kind.expect("content")
    }

    async fn turn(&mut self) -> pb::YourTurn {
        loop {
            match self.next().await {
                pb::server_message::Kind::YourTurn(t) => return t,
                pb::server_message::Kind::ActionDone(_) => {}
                other => panic!("expected YourTurn, got {other:?}"),
            }
        }
    }
}

fn offer_of(price: i64) -> pb::Action {
    let v = |k: pb::value::Kind| pb::Value { kind: Some(k) };
    let values = [
        ("price".to_string(), v(pb::value::Kind::Integer(price))),
        ("color".to_string(), v(pb::value::Kind::Discrete("green".into()))),
        ("speed".to_string(), v(pb::value::Kind::Integer(1))),
    ];
    pb::Action { kind: Some(pb::action::Kind::Offer(pb::Outcome { values: values.into_iter().collect() })) }
}

/// The same negotiation with the external party played locally.
fn local(seed: u64, seller: &str) -> negotium::core::session::SessionResult {
    let sc = scenario();
    let strategies = vec![sc.parties[0].strategy.clone(), StrategySpec::named(seller)];
    let spec = SessionSpec::new(0, sc.domain.clone(), sc.preferences(), strategies, sc.deadline, seed).with_trace(true);
    direct::run(&spec).unwrap()
}

fn trace_of(record_json: &str) -> Vec<serde_json::Value> {
    let v: serde_json::Value = serde_json::from_str(record_json).unwrap();
    v["trace"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rust_agent_gets_the_same_results_as_a_local_run() {
    let node = Node::start(ServerConfig::default(), None);
    let channel = connect(&node.url("http"), None).await.unwrap();
    let mut admin = management(channel.clone(), None);
    // Ten sessions, different seeds and strategies, all on one agent stream.
    let cases: Vec<(u64, &str)> = (0..10)
        .map(|k| (100 + k, ["boulware", "linear", "tit-for-tat", "random", "hardliner"][k as usize % 5]))
        .collect();
    let mut seats = Vec::new();
    for &(seed, strategy) in &cases {
        let r = admin.create_session(create_request(seed)).await.unwrap().into_inner();
        assert_eq!(r.tokens.len(), 1);
        assert_eq!(r.tokens[0].party, "seller");
        let s = StrategySpec::named(strategy).build().unwrap();
        seats.push(Seat::new(&r.session_id, "seller", &r.tokens[0].token, s));
    }
    let results = within("play", play(channel, seats)).await.unwrap();
    for ((seed, strategy), remote) in cases.iter().zip(&results) {
        let want = local(*seed, strategy);
        assert_eq!(remote.ended_by, want.ending.label(), "{strategy} seed {seed}");
        assert_eq!(remote.utilities, want.utilities, "{strategy} seed {seed}");
        assert_eq!((remote.rounds, remote.offers), (want.rounds, want.offers), "{strategy} seed {seed}");
        assert_eq!(remote.agreement.is_some(), want.agreement.is_some());
        let trace = trace_of(&remote.record_json);
        assert_eq!(trace.len(), want.trace.len());
        for (got, t) in trace.iter().zip(&want.trace) {
            assert_eq!(got["party"], t.party as u64);
            assert_eq!(got["round"], t.round);
            assert_eq!(got["action"], t.action.kind());
        }
        // The stored result is the same one.
        let fetched = admin
            .get_result(pb::GetResultRequest { session_id: remote.session_id.clone() })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(&fetched, remote);
    }
    let listed = admin.list_sessions(pb::ListSessionsRequest::default()).await.unwrap().into_inner();
    assert_eq!(listed.sessions.len(), 10);
    assert!(listed.sessions.iter().all(|s| s.state == "finished"));
}

/// The server as a library: its caller binds port 0, owns the runtime and
/// says when to stop. Once told, it returns, and takes its port with it.
#[test]
fn an_in_process_server_on_port_0_stops_when_its_shutdown_future_completes() {
    let system = actix::System::with_tokio_rt(|| {
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
    });
    system.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hosting = Hosting::start(ServerConfig::default());
        let service = hosting.service.clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(hosting.serve(listener, None, None, async {
            let _ = stopped.await;
        }));
        let channel = connect(&format!("http://{addr}"), None).await.unwrap();
        let mut admin = management(channel.clone(), None);
        let r = admin.create_session(create_request(3)).await.unwrap().into_inner();
        let seat =
            Seat::new(&r.session_id, "seller", &r.tokens[0].token, StrategySpec::named("linear").build().unwrap());
        let results = within("play", play(channel, vec![seat])).await.unwrap();
        assert_eq!(results[0].ended_by, local(3, "linear").ending.label());
        assert_eq!(service.census().running, 0, "the result is stored before the agent hears of it");
        eventually(10, "the agent stream to close", || service.census().agent_streams == 0).await;
        drop(admin);
        assert!(!server.is_finished(), "the server stopped before it was told to");
        stop.send(()).unwrap();
        within("the server to stop", server).await.expect("the server task").expect("a clean stop");
        assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "the port still accepts connections");
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watchers_see_every_action_then_the_result() {
    let node = Node::start(ServerConfig::default(), None);
    let channel = connect(&node.url("http"), None).await.unwrap();
    let mut admin = management(channel.clone(), None);
    let r = admin.create_session(create_request(5)).await.unwrap().into_inner();
    let mut events =
        admin.watch_session(pb::WatchSessionRequest { session_id: r.session_id.clone() }).await.unwrap().into_inner();
    let seat = Seat::new(&r.session_id, "seller", &r.tokens[0].token, StrategySpec::named("boulware").build().unwrap());
    let results = within("play", play(channel, vec![seat])).await.unwrap();
    let mut actions = 0;
    let mut finished = None;
    while let Some(e) = within("watch", tokio_stream::StreamExt::next(&mut events)).await {
        match e.unwrap().kind {
            Some(pb::session_event::Kind::Action(_)) => actions += 1,
            Some(pb::session_event::Kind::Finished(r)) => finished = Some(r),
            None => {}
        }
    }
    assert_eq!(actions, trace_of(&results[0].record_json).len());
    assert_eq!(finished.as_ref(), Some(&results[0]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_that_never_joins_times_out_as_a_violation() {
    let node = Node::start(ServerConfig::default(), None);
    let channel = connect(&node.url("http"), None).await.unwrap();
    let mut admin = management(channel, None);
    let mut req = create_request(1);
    req.join_timeout_seconds = 0.3;
    let r = admin.create_session(req).await.unwrap().into_inner();
    let result = result_of(&mut admin, &r.session_id).await;
    assert_eq!(result.ended_by, "violation");
    let v = result.violation.unwrap();
    assert_eq!(v.party, 1);
    assert!(v.reason.contains("no agent joined within 0.3 s"), "{}", v.reason);
    assert_eq!(result.utilities, vec![0.2, 0.25]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_scenarios_are_invalid_arguments_with_a_line() {
    let node = Node::start(ServerConfig::default(), None);
    let mut admin = management(connect(&node.url("http"), None).await.unwrap(), None);
    let mut req = create_request(1);
    req.scenario_toml = SCENARIO.replace("price = 0.55", "price = 0.65");
    let line = req.scenario_toml.lines().position(|l| l.contains("price = 0.65")).unwrap() + 1;
    let err = admin.create_session(req).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(
        err.message().contains(&format!("scenario:{line}:")) && err.message().contains("sum to"),
        "{}",
        err.message()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_token_guards_management_calls() {
    let config = ServerConfig {
        credentials: Credentials { admin: Secret::new("s3cret"), ..Credentials::default() },
        ..ServerConfig::default()
    };
    let node = Node::start(config, None);
    let channel = connect(&node.url("http"), None).await.unwrap();
    for token in [None, Some("wrong".to_string())] {
        let err = management(channel.clone(), token).create_session(create_request(1)).await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::Unauthenticated);
        let err =
            management(channel.clone(), None).list_sessions(pb::ListSessionsRequest::default()).await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::Unauthenticated);
    }
    let r = management(channel.clone(), Some("s3cret".into()))
        .create_session(create_request(1))
        .await
        .unwrap()
        .into_inner();
    // Agents prove themselves with their party token, not the admin token.
    let seat = Seat::new(&r.session_id, "seller", &r.tokens[0].token, StrategySpec::named("boulware").build().unwrap());
    let results = within("play", play(channel, vec![seat])).await.unwrap();
    assert_eq!(results[0].utilities, local(1, "boulware").utilities);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caps_on_sessions_connections_and_message_size() {
    let config = ServerConfig {
        max_sessions_per_client: 2,
        max_unseated_streams_per_client: 2,
        max_message_bytes: 4096,
        ..ServerConfig::default()
    };
    let node = Node::start(config, None);
    let channel = connect(&node.url("http"), None).await.unwrap();
    let mut admin = management(channel.clone(), None);
    admin.create_session(create_request(1)).await.unwrap();
    admin.create_session(create_request(2)).await.unwrap();
    let err = admin.create_session(create_request(3)).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::ResourceExhausted, "{err}");

    let mut raw = pb::negotiation_client::NegotiationClient::new(channel.clone());
    let (_keep1, rx1) = tokio::sync::mpsc::unbounded_channel::<pb::AgentMessage>();
    let (_keep2, rx2) = tokio::sync::mpsc::unbounded_channel::<pb::AgentMessage>();
    let (_keep3, rx3) = tokio::sync::mpsc::unbounded_channel::<pb::AgentMessage>();
    let mut s1 = raw.negotiate(tokio_stream::wrappers::UnboundedReceiverStream::new(rx1)).await.unwrap().into_inner();
    let _s2 = raw.negotiate(tokio_stream::wrappers::UnboundedReceiverStream::new(rx2)).await.unwrap();
    // A third stream that joins nothing yet is let in; the oldest makes room.
    let _s3 = raw.negotiate(tokio_stream::wrappers::UnboundedReceiverStream::new(rx3)).await.unwrap();
    let err = within("the evicted stream", tokio_stream::StreamExt::next(&mut s1)).await.unwrap().unwrap_err();
    assert_eq!(err.code(), tonic::Code::ResourceExhausted, "{err}");

    let mut big = create_request(4);
    big.scenario_toml = format!("{SCENARIO}\n# {}", "x".repeat(8192));
    let err = admin.create_session(big).await.unwrap_err();
    assert!(matches!(err.code(), tonic::Code::OutOfRange | tonic::Code::ResourceExhausted), "{err}");
    // Still serving.
    assert_eq!(admin.list_sessions(pb::ListSessionsRequest::default()).await.unwrap().into_inner().sessions.len(), 2);
}

/// A CA, a server certificate for localhost and a client certificate, as PEM.
struct Pki {
    ca: String,
    server_cert: String,
    server_key: String,
    client_cert: String,
    client_key: String,
}

fn pki() -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, "negotium test CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let server_key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec!["localhost".to_string()]).unwrap().signed_by(&server_key, &ca).unwrap();
    let client_key = KeyPair::generate().unwrap();
    let client =
        CertificateParams::new(vec!["agent.example".to_string()]).unwrap().signed_by(&client_key, &ca).unwrap();
    Pki {
        ca: ca.pem(),
        server_cert: server.pem(),
        server_key: server_key.serialize_pem(),
        client_cert: client.pem(),
        client_key: client_key.serialize_pem(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_serves_agents_and_plain_clients_are_refused() {
    let p = pki();
    let node = Node::start(
        ServerConfig::default(),
        Some(TlsFiles { cert: p.server_cert.clone(), key: p.server_key.clone(), client_ca: None }),
    );
    let tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&p.ca)).domain_name("localhost");
    let channel = connect(&node.url("https"), Some(tls)).await.unwrap();
    let mut admin = management(channel.clone(), None);
    let r = admin.create_session(create_request(3)).await.unwrap().into_inner();
    let seat = Seat::new(&r.session_id, "seller", &r.tokens[0].token, StrategySpec::named("boulware").build().unwrap());
    let results = within("play", play(channel, vec![seat])).await.unwrap();
    assert_eq!(results[0].utilities, local(3, "boulware").utilities);

    // Plain text to a TLS port gets nowhere.
    let plain = async {
        let channel = connect(&node.url("http"), None).await?;
        management(channel, None).list_sessions(pb::ListSessionsRequest::default()).await.map_err(Into::into)
    };
    let plain: Result<_, negotium::net::client::ClientError> = within("plain", plain).await;
    assert!(plain.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_refuses_clients_without_a_certificate() {
    let p = pki();
    let node = Node::start(
        ServerConfig::default(),
        Some(TlsFiles { cert: p.server_cert.clone(), key: p.server_key.clone(), client_ca: Some(p.ca.clone()) }),
    );
    let without = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&p.ca)).domain_name("localhost");
    let refused = async {
        let channel = connect(&node.url("https"), Some(without)).await?;
        management(channel, None).list_sessions(pb::ListSessionsRequest::default()).await.map_err(Into::into)
    };
    let refused: Result<_, negotium::net::client::ClientError> = within("no client cert", refused).await;
    assert!(refused.is_err(), "a client without a certificate must be refused");

    let with = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&p.ca))
        .identity(Identity::from_pem(&p.client_cert, &p.client_key))
        .domain_name("localhost");
    let channel = connect(&node.url("https"), Some(with)).await.unwrap();
    let mut admin = management(channel.clone(), None);
    let r = admin.create_session(create_request(4)).await.unwrap().into_inner();
    let seat = Seat::new(&r.session_id, "seller", &r.tokens[0].token, StrategySpec::named("linear").build().unwrap());
    let results = within("play", play(channel, vec![seat])).await.unwrap();
    assert_eq!(results[0].utilities, local(4, "linear").utilities);
}

/// `negotium agent` and `negotium session result` say what `run` says of a
/// negotiation, from the record the server keeps; `--json` gives the record.
#[test]
fn the_agent_and_session_commands_print_the_deal_in_words() {
    let node = Node::start(ServerConfig::default(), None);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let created = rt.block_on(async {
        let channel = connect(&node.url("http"), None).await.unwrap();
        management(channel, None).create_session(create_request(21)).await.unwrap().into_inner()
    });
    let server = node.url("http");
    let id = created.session_id.as_str();
    let token = created.tokens[0].token.as_str();
    let agent = common::negotium(&[
        "agent",
        "--session",
        id,
        "--party",
        "seller",
        "--token",
        token,
        "--strategy",
        "linear",
        "--server",
        &server,
    ]);
    assert_eq!(agent.code, Some(0), "{}", agent.stderr);
    for line in ["api deal — session", "  seller ", "walk-away value", "joint"] {
        assert!(agent.stdout.contains(line), "agent output lacks `{line}`:\n{}", agent.stdout);
    }
    let words = common::negotium(&["session", "result", id, "--server", &server]);
    assert_eq!(words.code, Some(0), "{}", words.stderr);
    assert_eq!(words.stdout, agent.stdout, "the same summary from the stored result");
    let json = common::negotium(&["session", "result", id, "--json", "--server", &server]);
    let record: serde_json::Value = serde_json::from_str(json.stdout.trim()).expect("--json prints the record");
    let explanation = &record["explanation"];
    assert_eq!(explanation["ending"]["kind"], record["ended_by"]);
    let name = explanation["parties"][1]["name"].as_str().unwrap();
    let utility = explanation["parties"][1]["utility"].as_f64().unwrap();
    assert_eq!((name, utility), ("seller", record["utilities"][1].as_f64().unwrap()));
    assert!(record["trace"].as_array().is_some_and(|t| !t.is_empty()));
}

/// YourTurn says how long the session has run, how long it may still run
/// and how long this answer may take; the first turn of each party allows
/// for the agent's setup on top of the turn timeout, later turns do not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn turns_carry_the_wall_clock_and_the_first_allows_for_setup() {
    let config = ServerConfig {
        turn_timeout: std::time::Duration::from_millis(600),
        setup_allowance: std::time::Duration::from_millis(1_400),
        ..ServerConfig::default()
    };
    let node = Node::start(config, None);
    let channel = connect(&node.url("http"), None).await.unwrap();
    let mut admin = management(channel.clone(), None);
    let mut req = create_request(7);
    req.scenario_toml = SCENARIO.replace("rounds = 40", "rounds = 40\nseconds = 30");
    let r = admin.create_session(req).await.unwrap().into_inner();
    let mut agent = RawAgent::open(channel).await;
    let token = r.tokens[0].token.clone();
    agent.send(pb::agent_message::Kind::Join(pb::Join {
        session_id: r.session_id.clone(),
        party: "seller".into(),
        token,
    }));
    let pb::server_message::Kind::Settings(settings) = agent.next().await else { panic!("no settings") };
    assert_eq!(settings.setup_seconds, 1.4);
    assert_eq!(settings.turn_timeout_seconds, 0.6);

    let first = agent.turn().await;
    assert!((first.answer_within_seconds - 2.0).abs() < 1e-9, "first answer window {}", first.answer_within_seconds);
    let remaining = first.remaining_seconds.expect("a wall-time deadline leaves time");
    assert!(first.elapsed_seconds >= 0.0 && first.elapsed_seconds < 5.0, "elapsed {}", first.elapsed_seconds);
    assert!((first.elapsed_seconds + remaining - 30.0).abs() < 1e-6, "{} + {remaining}", first.elapsed_seconds);
    // Past the turn timeout, within the setup allowance: still counted.
    tokio::time::sleep(std::time::Duration::from_millis(1_000)).await;
    agent.send(pb::agent_message::Kind::Act(pb::Act {
        session_id: r.session_id.clone(),
        turn: first.turn,
        action: Some(offer_of(19)),
        party: String::new(),
    }));
    let second = agent.turn().await;
    assert!((second.answer_within_seconds - 0.6).abs() < 1e-9, "later answer window {}", second.answer_within_seconds);
    assert!(
        second.elapsed_seconds >= first.elapsed_seconds + 1.0,
        "{} then {}",
        first.elapsed_seconds,
        second.elapsed_seconds
    );
    // The same wait on a later turn is past its deadline.
    tokio::time::sleep(std::time::Duration::from_millis(1_000)).await;
    let result = result_of(&mut admin, &r.session_id).await;
    assert_eq!(result.ended_by, "violation");
    let v = result.violation.unwrap();
    assert!(v.reason.contains("no answer within 0.6 s"), "{}", v.reason);
    assert_eq!(result.offers, 3, "the buyer's two offers and the seller's first, late but within the allowance");
}

/// CreateSession can make another party open and replace the strategies of
/// local parties; the session is then the scenario so changed, exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_session_chooses_who_opens_and_the_local_strategies() {
    let node = Node::start(ServerConfig::default(), None);
    let channel = connect(&node.url("http"), None).await.unwrap();
    let mut admin = management(channel.clone(), None);
    let mut req = create_request(21);
    req.first_party = "seller".into();
    req.strategies =
        vec![pb::PartyStrategy { party: "buyer".into(), strategy: "{ type = \"time-dependent\", e = 0.5 }".into() }];
    let r = admin.create_session(req).await.unwrap().into_inner();
    let seat = Seat::new(&r.session_id, "seller", &r.tokens[0].token, StrategySpec::named("linear").build().unwrap());
    let remote = within("play", play(channel, vec![seat])).await.unwrap().remove(0);

    let mut sc = scenario();
    sc.open_with("seller").unwrap();
    sc.set_strategy("buyer", StrategySpec::parse_cli("{ type = \"time-dependent\", e = 0.5 }").unwrap()).unwrap();
    assert_eq!(sc.parties[0].name, "seller");
    let strategies = vec![StrategySpec::named("linear"), sc.parties[1].strategy.clone()];
    let spec = SessionSpec::new(0, sc.domain.clone(), sc.preferences(), strategies, sc.deadline, 21).with_trace(true);
    let want = direct::run(&spec).unwrap();
    assert_eq!(remote.utilities, want.utilities);
    assert_eq!((remote.rounds, remote.offers), (want.rounds, want.offers));
    let trace = trace_of(&remote.record_json);
    assert_eq!(trace[0]["party"], 0, "the seller opens");
    let record: serde_json::Value = serde_json::from_str(&remote.record_json).unwrap();
    assert_eq!(record["parties"], serde_json::json!(["seller", "buyer"]));

    // Each option refused in words that say what is wrong.
    let refused = |first: &str, party: &str, strategy: &str| {
        let mut req = create_request(1);
        req.first_party = first.into();
        if !party.is_empty() {
            req.strategies = vec![pb::PartyStrategy { party: party.into(), strategy: strategy.into() }];
        }
        req
    };
    for (req, needle) in [
        (refused("", "seller", "boulware"), "is external"),
        (refused("", "nobody", "boulware"), "no party `nobody`"),
        (refused("", "buyer", "{ type = \"boulware\", speed = 2 }"), "unknown parameter `speed`"),
        (refused("", "buyer", "genius"), "unknown strategy `genius`"),
        (refused("mediator", "", ""), "first_party: no party `mediator`"),
    ] {
        let err = admin.create_session(req).await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument, "{needle}: {err:?}");
        assert!(err.message().contains(needle), "{needle}: {}", err.message());
    }
}
