//! A soak of `negotium serve`: honest sessions and every abuse of the
//! security review at once, for a fixed time, against one server process on
//! 127.0.0.1. Every honest session must end exactly as a local run of the
//! same negotiation; the server must answer throughout; its peak memory is
//! read from /proc at the end.
//!
//!     cargo build --release && cargo run --release --example soak -- [SECONDS] [BIN]
//!
//! SOAK_SERVE_ARGS adds flags to `negotium serve` (e.g. `--keep-results-mib 32`).
//!
//! (`bash benches/soak.sh` does both.) Every abuse loop is paced, so the
//! run is bounded in messages as well as in time. Each kind of abuse dials
//! from a loopback address of its own (127.0.0.2, .3, …) and the honest
//! agents from 127.0.0.1: to the server they are different clients, as
//! they would be on a network.

#[path = "common/mod.rs"]
mod common;

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use negotium::core::scenario::Scenario;
use negotium::core::strategy::StrategySpec;
use negotium::core::workload::Workload;
use negotium::engine::{SessionSpec, direct};
use negotium::net::client::{Seat, connect, management, play};
use negotium::net::pb;
use negotium::net::pb::negotiation_client::NegotiationClient;
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::transport::{Channel, Endpoint, Uri};

/// Dials the server from `from` (a loopback address of the caller's choice).
#[derive(Clone, Copy)]
struct From(Ipv4Addr);

impl tower_service::Service<Uri> for From {
    type Response = hyper_util::rt::TokioIo<tokio::net::TcpStream>;
    type Error = std::io::Error;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let from = self.0;
        Box::pin(async move {
            let to: SocketAddr = format!("{}:{}", uri.host().unwrap_or("127.0.0.1"), uri.port_u16().unwrap_or(80))
                .parse()
                .map_err(|e| std::io::Error::other(format!("{e}")))?;
            let socket = tokio::net::TcpSocket::new_v4()?;
            socket.bind(SocketAddr::from((from, 0)))?;
            let stream = socket.connect(to).await?;
            stream.set_nodelay(true)?;
            Ok(hyper_util::rt::TokioIo::new(stream))
        })
    }
}

/// A channel to `url` from loopback address 127.0.0.`host`.
async fn dial(url: &str, host: u8) -> Option<Channel> {
    Endpoint::from_shared(url.to_string()).ok()?.connect_with_connector(From(Ipv4Addr::new(127, 0, 0, host))).await.ok()
}

/// Counts of one run, printed at the end.
#[derive(Default)]
struct Counts {
    /// Why the first few honest sessions that failed did.
    why: std::sync::Mutex<Vec<String>>,
    honest: AtomicU64,
    honest_equal: AtomicU64,
    honest_failed: AtomicU64,
    refused: AtomicU64,
    abuse: AtomicU64,
    down: AtomicU64,
}

fn kib(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with(key)).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()))
        .unwrap_or(0)
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn local(text: &str) -> negotium::core::session::SessionResult {
    let sc = Scenario::parse(text, "w.toml").expect("W parses");
    let strategies = sc.parties.iter().map(|p| p.strategy.clone()).collect();
    let spec = SessionSpec::new(0, sc.domain.clone(), sc.preferences(), strategies, sc.deadline, sc.seed);
    direct::run(&spec).expect("built-ins build")
}

fn wide(issues: usize) -> String {
    let mut t = "name = \"wide\"\n[protocol]\nrounds = 10\n".to_string();
    for i in 0..issues {
        t += &format!("[[issues]]\nname = \"i{i}\"\ntype = \"integer\"\nmin = 0\nmax = 1\n");
    }
    for name in ["a", "b"] {
        t += &format!("[[parties]]\nname = \"{name}\"\nexternal = true\nweights = {{ ");
        t += &(0..issues).map(|i| format!("i{i} = {:?}", 1.0 / issues as f64)).collect::<Vec<_>>().join(", ");
        t += " }\n";
        for i in 0..issues {
            t += &format!("values.i{i} = {{ linear = [0.0, 1.0] }}\n");
        }
    }
    t
}

fn create(text: String, join: f64) -> pb::CreateSessionRequest {
    pb::CreateSessionRequest {
        scenario_toml: text,
        seed: 0,
        has_seed: false,
        join_timeout_seconds: join,
        ..Default::default()
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let seconds: u64 = args.first().and_then(|s| s.parse().ok()).unwrap_or(600);
    let bin = args.get(1).cloned().unwrap_or_else(|| "target/release/negotium".into());
    // The server's log (warnings, the default): its size shows whether a
    // caller could make it grow.
    let log_path = std::env::temp_dir().join("negotium-soak-serve.log");
    let log = std::fs::File::create(&log_path).expect("the log file");
    let mut child = Command::new(&bin)
        .args(["serve", "--listen", "127.0.0.1:0", "--turn-timeout", "2", "--join-timeout", "5"])
        .args(std::env::var("SOAK_SERVE_ARGS").unwrap_or_default().split_whitespace())
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .expect("start negotium serve");
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line).unwrap();
    let addr = line.trim().strip_prefix("listening on ").expect("listening on ADDR").to_string();
    let server = Server(child);
    let pid = server.0.id();
    let url = format!("http://{addr}");
    println!("soak: negotium serve (pid {pid}) on {addr} for {seconds} s");

    let counts = Arc::new(Counts::default());
    let stop = Arc::new(AtomicBool::new(false));
    let until = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    let running = {
        let stop = stop.clone();
        move || !stop.load(Ordering::Relaxed) && Instant::now() < until
    };

    // Honest agents: W1 sessions with B external, played and checked.
    for agent in 0..4u64 {
        let (url, counts, running) = (url.clone(), counts.clone(), running.clone());
        tasks.push(tokio::spawn(async move {
            let w = Workload::named("w1").unwrap();
            let mut j = agent * 1_000_000;
            while running() {
                j += 1;
                let pair =
                    [("boulware", "conceder"), ("linear", "tit-for-tat"), ("conceder", "boulware")][j as usize % 3];
                let text = w.scenario_text(j, pair.0, pair.1, true);
                let ok: Result<pb::SessionResult, String> = async {
                    let channel = connect(&url, None).await.map_err(|e| format!("connect: {e}"))?;
                    let r = management(channel.clone(), None)
                        .create_session(create(text.clone(), 20.0))
                        .await
                        .map_err(|e| format!("create: {e}"))?
                        .into_inner();
                    let strategy = StrategySpec::named(pair.1).build().map_err(|e| e.to_string())?;
                    let seat = Seat::new(&r.session_id, "B", &r.tokens[0].token, strategy);
                    let results = play(channel, vec![seat]).await.map_err(|e| format!("play: {e}"))?;
                    results.into_iter().next().ok_or_else(|| "no result".to_string())
                }
                .await;
                counts.honest.fetch_add(1, Ordering::Relaxed);
                let failure = match ok {
                    Ok(got) => {
                        let want = local(&text);
                        if got.utilities == want.utilities
                            && got.rounds == want.rounds
                            && got.ended_by == want.ending.label()
                        {
                            counts.honest_equal.fetch_add(1, Ordering::Relaxed);
                            None
                        } else {
                            Some(format!("differs from the local run: {} {:?}", got.ended_by, got.violation))
                        }
                    }
                    Err(e) => Some(e),
                };
                if let Some(why) = failure {
                    counts.honest_failed.fetch_add(1, Ordering::Relaxed);
                    let mut w = counts.why.lock().unwrap();
                    if w.len() < 5 {
                        w.push(why);
                    }
                }
            }
        }));
    }

    // Abuse, each loop paced.
    // Each gets the server's URL, its own source address, and the counts.
    type Abuse = fn(String, u8, Arc<Counts>) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;
    let abuses: Vec<(&str, Duration, Abuse)> = vec![
        ("wide domains", Duration::from_millis(200), |url, host, c| {
            Box::pin(async move {
                let Some(ch) = dial(&url, host).await else { return };
                let mut m = management(ch, None);
                for issues in [2_000, 256] {
                    match m.create_session(create(wide(issues), 0.5)).await {
                        Ok(_) => c.abuse.fetch_add(1, Ordering::Relaxed),
                        Err(_) => c.refused.fetch_add(1, Ordering::Relaxed),
                    };
                }
            })
        }),
        ("unread errors with long ids", Duration::from_millis(500), |url, host, c| {
            Box::pin(async move {
                let Some(ch) = dial(&url, host).await else { return };
                let (tx, rx) = mpsc::unbounded_channel();
                let Ok(resp) = NegotiationClient::new(ch).negotiate(UnboundedReceiverStream::new(rx)).await else {
                    return;
                };
                let id = "x".repeat(64 << 10);
                for turn in 0..200 {
                    let act = pb::Act { session_id: id.clone(), turn, action: None, party: String::new() };
                    let _ = tx.send(pb::AgentMessage { kind: Some(pb::agent_message::Kind::Act(act)) });
                }
                c.abuse.fetch_add(200, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_secs(3)).await;
                drop(resp);
            })
        }),
        ("unread watchers", Duration::from_secs(2), |url, host, c| {
            Box::pin(async move {
                let Some(ch) = dial(&url, host).await else { return };
                let mut m = management(ch, None);
                let text = Workload::named("w1")
                    .unwrap()
                    .scenario_text(9, "hardliner", "hardliner", false)
                    .replace("rounds = 100", "rounds = 10000");
                let Ok(r) = m.create_session(create(text, 1.0)).await else { return };
                let w = m.watch_session(pb::WatchSessionRequest { session_id: r.into_inner().session_id }).await;
                c.abuse.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_secs(5)).await;
                drop(w);
            })
        }),
        ("endless deadlines, cancelled sessions", Duration::from_millis(300), |url, host, c| {
            Box::pin(async move {
                let Some(ch) = dial(&url, host).await else { return };
                let mut m = management(ch, None);
                let w = Workload::named("w1").unwrap();
                for d in ["rounds = 4294967295", "seconds = 1e308"] {
                    let text = w.scenario_text(1, "hardliner", "hardliner", false).replace("rounds = 100", d);
                    if m.create_session(create(text, 1.0)).await.is_err() {
                        c.refused.fetch_add(1, Ordering::Relaxed);
                    }
                }
                if let Ok(r) = m.create_session(create(w.scenario_text(2, "boulware", "conceder", true), 60.0)).await {
                    let r = r.into_inner();
                    let _ = m
                        .cancel_session(pb::CancelSessionRequest {
                            session_id: r.session_id,
                            owner_token: r.owner_token,
                        })
                        .await;
                    c.abuse.fetch_add(1, Ordering::Relaxed);
                }
            })
        }),
        ("950 KB scenarios, six at once", Duration::from_secs(3), |url, host, c| {
            Box::pin(async move {
                let Some(ch) = dial(&url, host).await else { return };
                let text = common::many_values(30_000);
                let calls: Vec<_> = (0..6)
                    .map(|_| {
                        let (mut m, text) = (management(ch.clone(), None), text.clone());
                        tokio::spawn(async move { m.create_session(create(text, 0.5)).await.is_ok() })
                    })
                    .collect();
                for call in calls {
                    if call.await.unwrap_or(false) {
                        c.abuse.fetch_add(1, Ordering::Relaxed);
                    } else {
                        c.refused.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        }),
        ("idle connections and streams", Duration::from_secs(5), |url, host, c| {
            Box::pin(async move {
                let addr: SocketAddr = url.trim_start_matches("http://").parse().unwrap();
                let mut held = Vec::new();
                for _ in 0..300 {
                    let Ok(socket) = tokio::net::TcpSocket::new_v4() else { continue };
                    if socket.bind(SocketAddr::from((Ipv4Addr::new(127, 0, 0, host), 0))).is_ok()
                        && let Ok(s) = socket.connect(addr).await
                    {
                        held.push(s);
                    }
                }
                let Some(ch) = dial(&url, host).await else { return };
                let mut streams = Vec::new();
                for _ in 0..32 {
                    let (tx, rx) = mpsc::unbounded_channel::<pb::AgentMessage>();
                    if let Ok(s) = NegotiationClient::new(ch.clone()).negotiate(UnboundedReceiverStream::new(rx)).await
                    {
                        streams.push((tx, s));
                    }
                }
                c.abuse.fetch_add(held.len() as u64 + 32, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_secs(4)).await;
            })
        }),
        ("long names, list pages, refused joins, file probes", Duration::from_millis(250), |url, host, c| {
            Box::pin(async move {
                let Some(ch) = dial(&url, host).await else { return };
                let mut m = management(ch.clone(), None);
                let w = Workload::named("w1").unwrap();
                let named = w
                    .scenario_text(3, "boulware", "conceder", true)
                    .replace("name = \"W3-3\"", &format!("name = \"{}\n forged\"", "n".repeat(300_000)));
                if m.create_session(create(named, 1.0)).await.is_err() {
                    c.refused.fetch_add(1, Ordering::Relaxed);
                }
                let probe = w.scenario_text(3, "boulware", "conceder", false).replacen(
                    "strategy = \"boulware\"",
                    "strategy = { learned = \"/etc/passwd\" }",
                    1,
                );
                if m.create_session(create(probe, 1.0)).await.is_err() {
                    c.refused.fetch_add(1, Ordering::Relaxed);
                }
                let _ = m.list_sessions(pb::ListSessionsRequest { page_size: 1000, page_token: String::new() }).await;
                let (tx, rx) = mpsc::unbounded_channel();
                if let Ok(s) = NegotiationClient::new(ch).negotiate(UnboundedReceiverStream::new(rx)).await {
                    let mut s = s.into_inner();
                    for _ in 0..20 {
                        let join = pb::Join { session_id: "y".repeat(500 << 10), party: "p".into(), token: "t".into() };
                        let _ = tx.send(pb::AgentMessage { kind: Some(pb::agent_message::Kind::Join(join)) });
                    }
                    drop(tx);
                    while let Some(Ok(_)) = s.next().await {}
                }
                c.abuse.fetch_add(23, Ordering::Relaxed);
            })
        }),
    ];
    for (k, (_, pause, abuse)) in abuses.into_iter().enumerate() {
        let (url, counts, running) = (url.clone(), counts.clone(), running.clone());
        let host = 2 + k as u8;
        tasks.push(tokio::spawn(async move {
            while running() {
                abuse(url.clone(), host, counts.clone()).await;
                tokio::time::sleep(pause).await;
            }
        }));
    }

    // The server must answer throughout; memory sampled every second.
    let mut peak_rss = 0;
    let mut samples: Vec<(u64, u64)> = Vec::new();
    let started = Instant::now();
    while Instant::now() < until {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let rss = kib(pid, "VmRSS:");
        peak_rss = peak_rss.max(rss);
        samples.push((started.elapsed().as_secs(), rss));
        if !server_alive(&url, Duration::from_secs(5)).await {
            counts.down.fetch_add(1, Ordering::Relaxed);
        }
        if samples.len().is_multiple_of(60) {
            println!(
                "  {:>4} s: RSS {:.0} MiB, honest {} ({} equal), abuse {} sent / {} refused",
                started.elapsed().as_secs(),
                rss as f64 / 1024.0,
                counts.honest.load(Ordering::Relaxed),
                counts.honest_equal.load(Ordering::Relaxed),
                counts.abuse.load(Ordering::Relaxed),
                counts.refused.load(Ordering::Relaxed)
            );
        }
    }
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(30), t).await;
    }
    let alive = server_alive(&url, Duration::from_secs(10)).await;
    let hwm = kib(pid, "VmHWM:");
    let c = &counts;
    let summary: HashMap<&str, serde_json::Value> = HashMap::from([
        ("seconds", seconds.into()),
        ("peak_rss_mib", (hwm as f64 / 1024.0).into()),
        ("final_rss_mib", (kib(pid, "VmRSS:") as f64 / 1024.0).into()),
        ("honest_sessions", c.honest.load(Ordering::Relaxed).into()),
        ("honest_equal_to_local", c.honest_equal.load(Ordering::Relaxed).into()),
        ("honest_failed", c.honest_failed.load(Ordering::Relaxed).into()),
        ("abuse_sent", c.abuse.load(Ordering::Relaxed).into()),
        ("abuse_refused", c.refused.load(Ordering::Relaxed).into()),
        ("checks_unanswered", c.down.load(Ordering::Relaxed).into()),
        ("server_up_at_end", alive.into()),
        ("server_log_bytes", std::fs::metadata(&log_path).map_or(0, |m| m.len()).into()),
    ]);
    println!("{}", serde_json::to_string(&summary).unwrap());
    for why in c.why.lock().unwrap().iter() {
        println!("  an honest session failed: {why}");
    }
    let ok = alive && c.honest_failed.load(Ordering::Relaxed) == 0 && c.down.load(Ordering::Relaxed) == 0;
    drop(server);
    std::process::exit(if ok { 0 } else { 1 });
}

/// Whether the server answers a one-session page of ListSessions within `limit`.
async fn server_alive(url: &str, limit: Duration) -> bool {
    let check = async {
        let ch = connect(url, None).await.ok()?;
        management(ch, None)
            .list_sessions(pb::ListSessionsRequest { page_size: 1, page_token: String::new() })
            .await
            .ok()
    };
    tokio::time::timeout(limit, check).await.ok().flatten().is_some()
}
