//! Fixtures shared by the integration tests: an in-process node, scenario
//! texts of the reference workload, bounded waits, the binary.
#![allow(dead_code)]

use std::time::Duration;

use negotium::core::workload::Workload;
use negotium::net::pb;
use negotium::net::pb::negotiation_client::NegotiationClient;
use negotium::net::server::{Hosting, NegotiationService, ServerConfig, TlsFiles};
use tokio_stream::StreamExt;

/// The negotium binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_negotium");

/// A node on its own thread (an actix system on a tokio runtime), stopped
/// on drop. `service` is its session hosting, for looking inside.
pub struct Node {
    pub port: u16,
    pub service: NegotiationService,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Node {
    pub fn start(config: ServerConfig, tls: Option<TlsFiles>) -> Node {
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let system = actix::System::with_tokio_rt(|| {
                tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
            });
            system.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let port = listener.local_addr().unwrap().port();
                let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
                // The arbiters start here, on the system's thread.
                let hosting = Hosting::start(config);
                let service = hosting.service.clone();
                let server = hosting.serve(listener, tls, None, async {
                    let _ = stop_rx.await;
                });
                tx.send((port, stop_tx, service)).unwrap();
                server.await.unwrap();
            });
        });
        let (port, stop, service) = rx.recv_timeout(Duration::from_secs(10)).expect("node started");
        Node { port, service, stop: Some(stop), thread: Some(thread) }
    }

    pub fn url(&self, scheme: &str) -> String {
        format!("{scheme}://localhost:{}", self.port)
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Awaits `f` for at most `secs` seconds; a hang fails the test.
pub async fn within_secs<T>(secs: u64, what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(secs), f)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within {secs} s"))
}

pub async fn within<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    within_secs(30, what, f).await
}

/// Waits at most `secs` seconds for `done` to hold: for server state that
/// has no event to await (see `NegotiationService::census`).
pub async fn eventually(secs: u64, what: &str, mut done: impl FnMut() -> bool) {
    within_secs(secs, what, async {
        while !done() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
}

/// A management client, as `negotium::net::client::management` makes it.
pub type Admin = NegotiationClient<
    tonic::service::interceptor::InterceptedService<tonic::transport::Channel, negotium::net::client::AdminToken>,
>;

/// The result of session `id` once it has finished, within 60 s. It waits
/// on the session's watch stream, which ends with the result, rather than
/// asking again and again; a watcher cut off for falling behind (a long
/// session) watches again.
pub async fn result_of(admin: &mut Admin, id: &str) -> pb::SessionResult {
    within_secs(60, "the result", async {
        loop {
            let request = pb::WatchSessionRequest { session_id: id.into() };
            let mut events = admin.watch_session(request).await.unwrap_or_else(|s| panic!("{s}")).into_inner();
            while let Some(event) = events.next().await {
                match event {
                    Ok(pb::SessionEvent { kind: Some(pb::session_event::Kind::Finished(r)) }) => return r,
                    Ok(_) => {}
                    Err(s) if s.code() == tonic::Code::ResourceExhausted => break,
                    Err(s) => panic!("{s}"),
                }
            }
        }
    })
    .await
}

/// Scenario text of W1 negotiation `j` (DESIGN.md's reference workload):
/// party A plays `a`, party B plays `b` and is external where `b_external`.
pub fn w1_scenario(j: u64, a: &str, b: &str, b_external: bool) -> String {
    Workload::named("w1").expect("w1 exists").scenario_text(j, a, b, b_external)
}

/// A scenario of `issues` binary integer issues, equal weights, two
/// parties (external or not), `rounds` rounds.
pub fn wide_scenario(issues: usize, external: bool, rounds: u32) -> String {
    let mut text = format!("name = \"wide-{issues}\"\n[protocol]\nrounds = {rounds}\n");
    for i in 0..issues {
        text += &format!("[[issues]]\nname = \"i{i}\"\ntype = \"integer\"\nmin = 0\nmax = 1\n");
    }
    let w = 1.0 / issues as f64;
    for (name, up) in [("a", true), ("b", false)] {
        text += &format!("[[parties]]\nname = \"{name}\"\nstrategy = \"hardliner\"\nexternal = {external}\n");
        let ws: Vec<String> = (0..issues).map(|i| format!("i{i} = {w:?}")).collect();
        text += &format!("weights = {{ {} }}\n", ws.join(", "));
        let f = if up { "[0.0, 1.0]" } else { "[1.0, 0.0]" };
        for i in 0..issues {
            text += &format!("values.i{i} = {{ linear = {f} }}\n");
        }
    }
    text
}

/// A bilateral deal over price and colour, the scenario most command tests
/// start from; each party plays its strategy of `strategies` (none: the
/// caller, a tournament, says who plays). Tests find lines in it by text,
/// never by number.
pub fn deal(name: &str, strategies: Option<[&str; 2]>) -> String {
    let strategy = |i: usize| strategies.map(|s| format!("strategy = \"{}\"\n", s[i])).unwrap_or_default();
    format!(
        r#"name = "{name}"
seed = 11
[protocol]
rounds = 30
[[issues]]
name = "price"
type = "integer"
min = 0
max = 9
[[issues]]
name = "color"
type = "discrete"
values = ["red", "green", "blue"]
[[parties]]
name = "buyer"
{}reservation = 0.2
weights = {{ price = 0.7, color = 0.3 }}
values.price = {{ linear = [1.0, 0.0] }}
values.color = {{ red = 1.0, green = 0.5, blue = 0.0 }}
[[parties]]
name = "seller"
{}reservation = 0.3
weights = {{ price = 0.6, color = 0.4 }}
values.price = {{ linear = [0.0, 1.0] }}
values.color = {{ red = 0.2, green = 1.0, blue = 0.6 }}
"#,
        strategy(0),
        strategy(1)
    )
}

/// [`deal`] with a third party over the same issues.
pub fn trio(name: &str, strategies: Option<[&str; 3]>) -> String {
    let two = strategies.map(|s| [s[0], s[1]]);
    let strategy = strategies.map(|s| format!("strategy = \"{}\"\n", s[2])).unwrap_or_default();
    format!(
        r#"{}[[parties]]
name = "broker"
{strategy}reservation = 0.1
weights = {{ price = 0.5, color = 0.5 }}
values.price = {{ triangular = [0.0, 4.5, 9.0] }}
values.color = {{ red = 0.5, green = 0.0, blue = 1.0 }}
"#,
        deal(name, two)
    )
}

/// What a run of the binary printed and how it ended.
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs the binary to its end; whatever it was given, it must not panic.
pub fn negotium(args: &[&str]) -> Run {
    let std::process::Output { status, stdout, stderr } =
        std::process::Command::new(BIN).args(args).output().expect("the negotium binary runs");
    let r = Run {
        code: status.code(),
        stdout: String::from_utf8(stdout).expect("utf-8 stdout"),
        stderr: String::from_utf8(stderr).expect("utf-8 stderr"),
    };
    assert!(!r.stderr.contains("panicked"), "negotium {args:?} panicked:\n{}", r.stderr);
    r
}

/// A server command of the binary (`serve`, `node`, `ps`) running as a
/// process, killed when dropped: where it listens (its `listening on`
/// line) and the file its stderr goes to (a file, never a terminal, as
/// `serve 2> serve.log` would).
pub struct Served {
    child: std::process::Child,
    pub addr: String,
    pub log: std::path::PathBuf,
}

impl Served {
    /// Starts `negotium ARGS` with `env` set, stderr into `log`, and waits
    /// (at most 30 s) for its `listening on ADDR` line.
    pub fn start(args: &[&str], env: &[(&str, &str)], log: &std::path::Path) -> Served {
        use std::io::BufRead as _;
        let mut child = std::process::Command::new(BIN)
            .args(args)
            .envs(env.iter().copied())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::fs::File::create(log).expect("create the log"))
            .spawn()
            .expect("start negotium");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        // On a thread, so that a silent server cannot hang the test; the
        // reader keeps stdout open for the server's later lines.
        std::thread::spawn(move || {
            let mut reader = std::io::BufReader::new(stdout);
            loop {
                let mut line = String::new();
                match reader.read_line(&mut line) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {
                        if let Some(a) = line.trim().strip_prefix("listening on ") {
                            let _ = tx.send(a.to_string());
                        }
                    }
                }
            }
        });
        let addr = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_else(|_| {
            let _ = child.kill();
            panic!(
                "negotium {args:?} did not say where it listens; stderr:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            )
        });
        Served { child, addr, log: log.to_path_buf() }
    }

    /// Everything it wrote to stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.log).expect("read the log")
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A 127.0.0.1 port where nothing listens (bound, then let go).
pub fn dead_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}
