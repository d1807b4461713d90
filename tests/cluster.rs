//! Multi-node runs end to end, with real `negotium node` processes: on
//! 127.0.0.1 ports (a tournament with one node killed mid-run, parties split
//! across three nodes, a node that starts late, a launcher killed and
//! resumed, metrics and draining), and on three network namespaces joined by
//! veth pairs that the test creates itself (skipped where it cannot).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value as Json;
use tempfile::TempDir;

mod common;

const BIN: &str = env!("CARGO_BIN_EXE_negotium");

fn scenarios() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios")
}

/// A node process, killed when dropped.
struct Node {
    child: Child,
    addr: String,
    metrics: Option<String>,
    /// With --cluster-listen: where the cluster service is.
    cluster: Option<String>,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Node {
    fn start(extra: &[&str]) -> Node {
        Self::start_in(None, "127.0.0.1:0", extra)
    }

    /// `netns`: run inside that network namespace.
    fn start_in(netns: Option<&str>, listen: &str, extra: &[&str]) -> Node {
        let mut cmd = match netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, BIN]);
                c
            }
            None => Command::new(BIN),
        };
        cmd.args(["node", "--listen", listen]).args(extra).stdout(Stdio::piped()).stderr(Stdio::null());
        let mut child = cmd.spawn().expect("start a node");
        let mut lines = BufReader::new(child.stdout.take().expect("piped"));
        let (mut addr, mut metrics, mut cluster) = (None, None, None);
        let wants_cluster = extra.contains(&"--cluster-listen");
        while addr.is_none() || (wants_cluster && cluster.is_none()) {
            let mut line = String::new();
            if lines.read_line(&mut line).expect("read the node's stdout") == 0 {
                panic!("the node exited before listening");
            }
            if let Some(a) = line.trim().strip_prefix("listening on ") {
                addr = Some(a.to_string());
            } else if let Some(m) = line.trim().strip_prefix("metrics on ") {
                metrics = Some(m.to_string());
            } else if let Some(c) = line.trim().strip_prefix("cluster on ") {
                cluster = Some(c.to_string());
            }
        }
        Node { child, addr: addr.expect("set"), metrics, cluster }
    }

    fn terminate(&self) {
        let ok = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().expect("kill");
        assert!(ok.success());
    }
}

fn run(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().expect("run negotium")
}

fn ok(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "exit {:?}\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// results.jsonl lines by key (`key` for tournaments, `session` for runs),
/// without the fields that say where and how a line was made. Panics on a
/// key seen twice.
fn records(path: &Path, key: &str) -> (BTreeMap<String, Json>, BTreeMap<String, (String, u64)>) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let (mut out, mut placed) = (BTreeMap::new(), BTreeMap::new());
    for line in text.lines() {
        let mut v: Json = serde_json::from_str(line).expect("a JSON line");
        let obj = v.as_object_mut().expect("an object");
        let k = obj[key].to_string();
        obj.remove("engine");
        // Where a party ran on another node, the record cannot tell how it
        // bid (null); the session's own node says it of its parties.
        let bids = obj.remove("bids_exact").unwrap_or_else(|| panic!("session {k} lacks bids_exact"));
        let parties = obj["parties"].as_array().map_or(0, Vec::len);
        assert!(
            bids.as_array().is_some_and(|b| b.len() == parties && b.iter().all(|x| x.is_boolean() || x.is_null())),
            "session {k}: bids_exact {bids}"
        );
        let gaps = obj.remove("bids_gap").unwrap_or_else(|| panic!("session {k} lacks bids_gap"));
        assert!(
            gaps.as_array().is_some_and(|g| g.len() == parties && g.iter().all(|x| x.is_number() || x.is_null())),
            "session {k}: bids_gap {gaps}"
        );
        if let (Some(node), Some(attempts)) = (obj.remove("node"), obj.remove("attempts")) {
            placed.insert(k.clone(), (node.as_str().unwrap_or("").to_string(), attempts.as_u64().unwrap_or(0)));
        }
        assert!(out.insert(k.clone(), v).is_none(), "session {k} reported twice in {}", path.display());
    }
    (out, placed)
}

fn lines_in(path: &Path) -> usize {
    std::fs::read_to_string(path).map_or(0, |t| t.lines().count())
}

fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `scenario` `repeat` times in one process and with `--placement
/// split` over `nodes` (plus `extra` launcher options), asserts that both
/// give the same records, and returns where each session ran and the
/// launcher's output.
fn split_equals_local(
    dir: &Path,
    scenario: &Path,
    repeat: &str,
    nodes: &[&str],
    extra: &[&str],
) -> (BTreeMap<String, (String, u64)>, String) {
    let base = ["run", scenario.to_str().unwrap(), "--repeat", repeat];
    let local = dir.join("local.jsonl");
    ok(&run(&[&base[..], &["--engine", "direct", "--out", local.to_str().unwrap()]].concat()));
    let dist = dir.join("dist.jsonl");
    let list = nodes.join(",");
    let launch = [&base[..], &["--nodes", &list, "--placement", "split", "--out", dist.to_str().unwrap()], extra];
    let out = ok(&run(&launch.concat()));
    let (want, _) = records(&local, "session");
    let (got, placed) = records(&dist, "session");
    assert_eq!(got, want, "split over {list} differs from one process");
    (placed, out)
}

/// Two bilateral venues (the Series-A scenario and two W1 domains) and a
/// three-party one, three strategies, self-play and order rotation: 270
/// negotiations with their traces.
fn tournament(dir: &Path) -> PathBuf {
    let s = scenarios();
    let text = format!(
        r#"name = "cluster"
strategies = ["boulware", "conceder", "tit-for-tat"]
scenarios = ["{}", "{}"]
workload = {{ name = "w1", seeds = [1, 2] }}
repetitions = 2
trace = true
"#,
        s.join("series-a.toml").display(),
        s.join("data-alliance.toml").display()
    );
    let path = dir.join("t.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn a_tournament_survives_a_node_killed_mid_run_with_every_session_once() {
    let tmp = TempDir::new().unwrap();
    let t = tournament(tmp.path());
    let local = tmp.path().join("local");
    ok(&run(&["tournament", t.to_str().unwrap(), "--out", local.to_str().unwrap()]));

    let nodes: Vec<Node> = (0..3).map(|_| Node::start(&[])).collect();
    let list = nodes.iter().map(|n| n.addr.as_str()).collect::<Vec<_>>().join(",");
    let dist = tmp.path().join("dist");
    let mut launcher = Command::new(BIN)
        .args(["run", t.to_str().unwrap(), "--out", dist.to_str().unwrap(), "--nodes", &list])
        .args(["--placement", "split", "--window", "8"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let results = dist.join("results.jsonl");
    wait_for("the first results", Duration::from_secs(120), || lines_in(&results) >= 30);
    let mut nodes = nodes;
    let victim = nodes.remove(1);
    let victim_addr = victim.addr.clone();
    drop(victim); // SIGKILL
    let mut stdout = String::new();
    launcher.stdout.take().unwrap().read_to_string(&mut stdout).unwrap();
    let status = launcher.wait().unwrap();
    assert!(status.success(), "{stdout}");
    assert!(stdout.contains(&format!("nodes lost: {victim_addr}")), "{stdout}");

    let (want, _) = records(&local.join("results.jsonl"), "key");
    let (got, placed) = records(&results, "key");
    assert_eq!(want.len(), 270);
    assert_eq!(got.keys().collect::<Vec<_>>(), want.keys().collect::<Vec<_>>(), "every session exactly once");
    for (k, w) in &want {
        assert_eq!(&got[k], w, "session {k} differs from the single-process run");
    }
    assert!(placed.values().any(|(_, a)| *a > 1), "some sessions were re-run");
    assert!(placed.values().all(|(node, a)| *a == 1 || node != &victim_addr));
    // The tables are the same too.
    let table = |dir: &Path| std::fs::read_to_string(dir.join("summary.csv")).unwrap();
    assert_eq!(table(&local), table(&dist));
}

#[test]
fn parties_split_over_three_nodes_give_the_local_traces() {
    let tmp = TempDir::new().unwrap();
    let nodes: Vec<Node> = (0..3).map(|_| Node::start(&[])).collect();
    let addrs: Vec<&str> = nodes.iter().map(|n| n.addr.as_str()).collect();
    let (placed, out) = split_equals_local(tmp.path(), &scenarios().join("data-alliance.toml"), "12", &addrs, &[]);
    assert!(out.contains("engine cluster"), "{out}");
    // Hosts rotate, so every node hosted some session.
    for n in &nodes {
        assert!(placed.values().any(|(node, _)| node == &n.addr), "{} hosted nothing", n.addr);
    }
    // Three parties, three nodes: some traces hold offers from all three.
    let (got, _) = records(&tmp.path().join("dist.jsonl"), "session");
    assert!(got.values().any(|r| r["trace"].as_array().is_some_and(|t| t.len() >= 3)));
}

#[test]
fn a_learned_policy_plays_on_another_node() {
    let tmp = TempDir::new().unwrap();
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/policy.mpk");
    let strategy = format!("investor={{ learned = \"{}\" }}", model.display());
    let scenario = scenarios().join("series-a.toml");
    let local = tmp.path().join("local.jsonl");
    let base = ["run", scenario.to_str().unwrap(), "--repeat", "6", "--strategy", &strategy];
    ok(&run(&[&base[..], &["--engine", "direct", "--out", local.to_str().unwrap()]].concat()));
    let nodes: Vec<Node> = (0..2).map(|_| Node::start(&[])).collect();
    let list = nodes.iter().map(|n| n.addr.as_str()).collect::<Vec<_>>().join(",");
    let dist = tmp.path().join("dist.jsonl");
    ok(&run(&[&base[..], &["--nodes", &list, "--placement", "split", "--out", dist.to_str().unwrap()]].concat()));
    let (want, _) = records(&local, "session");
    assert_eq!(records(&dist, "session").0, want);
    assert!(want.values().all(|r| r["strategies"][1].as_str().is_some_and(|s| s.starts_with("learned"))));
}

#[test]
fn a_node_that_starts_late_gets_work() {
    let tmp = TempDir::new().unwrap();
    let early = Node::start(&[]);
    // A free port for the late node.
    let late_addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let scenario = scenarios().join("series-a.toml");
    let out = tmp.path().join("run.jsonl");
    let list = format!("{},{late_addr}", early.addr);
    let mut launcher = Command::new(BIN)
        .args(["run", scenario.to_str().unwrap(), "--repeat", "3000", "--out", out.to_str().unwrap()])
        .args(["--nodes", &list, "--window", "2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("the first results", Duration::from_secs(60), || lines_in(&out) >= 20);
    let _late = Node::start_in(None, &late_addr, &[]);
    let status = launcher.wait().unwrap();
    assert!(status.success());
    let (got, placed) = records(&out, "session");
    assert_eq!(got.len(), 3000);
    let on_late = placed.values().filter(|(node, _)| node == &late_addr).count();
    assert!(on_late > 0, "the late node ran nothing");
}

#[test]
fn a_killed_launcher_resumes_without_losing_or_repeating_sessions() {
    let tmp = TempDir::new().unwrap();
    let nodes: Vec<Node> = (0..2).map(|_| Node::start(&[])).collect();
    let list = nodes.iter().map(|n| n.addr.as_str()).collect::<Vec<_>>().join(",");
    let scenario = scenarios().join("series-a.toml");
    let out = tmp.path().join("run.jsonl");
    let args = ["run", scenario.to_str().unwrap(), "--repeat", "800", "--out", out.to_str().unwrap(), "--nodes", &list];
    let mut launcher = Command::new(BIN).args(args).args(["--window", "4"]).stdout(Stdio::null()).spawn().unwrap();
    wait_for("the first results", Duration::from_secs(60), || lines_in(&out) >= 30);
    launcher.kill().unwrap();
    launcher.wait().unwrap();
    let before = lines_in(&out);
    assert!(before < 800, "the launcher finished before it was killed");
    let resumed = ok(&run(&[&args[..], &["--resume"]].concat()));
    assert!(resumed.contains("already in the results were kept"), "{resumed}");
    let local = tmp.path().join("local.jsonl");
    ok(&run(&[
        "run",
        scenario.to_str().unwrap(),
        "--repeat",
        "800",
        "--engine",
        "direct",
        "--out",
        local.to_str().unwrap(),
    ]));
    let (want, _) = records(&local, "session");
    let (got, _) = records(&out, "session");
    assert_eq!(got, want);
}

fn http_get(addr: &str, path: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    use std::io::Write;
    write!(s, "GET {path} HTTP/1.1\r\nhost: x\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    text
}

#[test]
fn nodes_count_sessions_for_prometheus_and_drain_on_sigterm() {
    let tmp = TempDir::new().unwrap();
    let mut node = Node::start(&["--metrics", "127.0.0.1:0", "--drain-seconds", "20"]);
    let metrics = node.metrics.clone().expect("a metrics address");
    assert!(http_get(&metrics, "/healthz").starts_with("HTTP/1.1 200"));
    let scenario = scenarios().join("series-a.toml");
    let out = tmp.path().join("run.jsonl");
    ok(&run(&[
        "run",
        scenario.to_str().unwrap(),
        "--repeat",
        "40",
        "--nodes",
        &node.addr,
        "--out",
        out.to_str().unwrap(),
    ]));
    let text = http_get(&metrics, "/metrics");
    assert!(text.contains("negotium_sessions_done_total{node=\""), "{text}");
    let done: f64 = text
        .lines()
        .find(|l| l.starts_with("negotium_sessions_done_total"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert_eq!(done, 40.0);
    let offers = text.lines().find(|l| l.starts_with("negotium_offers_total")).unwrap();
    assert!(!offers.ends_with(" 0"), "{offers}");

    // Idle: SIGTERM stops it at once (well within the drain time).
    let started = Instant::now();
    node.terminate();
    let status = node.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn a_node_drained_mid_run_hands_its_new_work_to_the_others() {
    let tmp = TempDir::new().unwrap();
    let mut draining = Node::start(&["--drain-seconds", "30"]);
    let other = Node::start(&[]);
    let scenario = scenarios().join("series-a.toml");
    let out = tmp.path().join("run.jsonl");
    let list = format!("{},{}", draining.addr, other.addr);
    let launcher = Command::new(BIN)
        .args(["run", scenario.to_str().unwrap(), "--repeat", "600", "--out", out.to_str().unwrap()])
        .args(["--nodes", &list, "--window", "4", "--placement", "split"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("the first results", Duration::from_secs(60), || lines_in(&out) >= 30);
    // Split parties: the other node holds an agent stream to this one, which
    // must not keep it from stopping.
    draining.terminate();
    let status = draining.child.wait().unwrap();
    assert!(status.success(), "the drained node exits cleanly: {status:?}");
    let done = launcher.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&done.stdout);
    assert!(done.status.success(), "{stdout}");
    assert!(!stdout.contains("nodes lost"), "a drained node is not lost: {stdout}");
    let (got, placed) = records(&out, "session");
    assert_eq!(got.len(), 600);
    assert!(placed.values().all(|(_, attempts)| *attempts == 1), "draining loses no session");
    let last_on_drained = placed.iter().filter(|(_, (node, _))| node == &draining.addr).count();
    assert!(last_on_drained < 600 && last_on_drained > 0);
}

#[test]
fn dns_discovery_finds_the_nodes_behind_a_name() {
    let node = Node::start(&[]);
    let port = node.addr.rsplit_once(':').unwrap().1;
    let scenario = scenarios().join("series-a.toml");
    // `localhost` may also resolve to ::1, where nothing listens: that
    // address is simply a node that is down.
    let out =
        ok(&run(&["run", scenario.to_str().unwrap(), "--repeat", "5", "--discover", &format!("localhost:{port}")]));
    assert!(out.contains(&format!("nodes:               {}", node.addr)), "{out}");
    assert!(out.contains("5 negotiations, engine cluster"), "{out}");
}

#[test]
fn nodes_under_mutual_tls_split_parties_and_refuse_plain_launchers() {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, "negotium test CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    // One certificate for every node (they are dialled by address and
    // checked against this name), one for clients (launcher and peers).
    for (name, san) in [("node", "negotium-node"), ("client", "negotium-client")] {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec![san.to_string()]).unwrap().signed_by(&key, &ca).unwrap();
        std::fs::write(dir.join(format!("{name}.pem")), cert.pem()).unwrap();
        std::fs::write(dir.join(format!("{name}.key")), key.serialize_pem()).unwrap();
    }
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    let p = |f: &str| dir.join(f).to_str().unwrap().to_string();
    let tls_args = [
        "--tls-cert",
        &p("node.pem"),
        "--tls-key",
        &p("node.key"),
        "--client-ca",
        &p("ca.pem"),
        "--peer-ca",
        &p("ca.pem"),
        "--peer-cert",
        &p("client.pem"),
        "--peer-key",
        &p("client.key"),
        "--peer-tls-domain",
        "negotium-node",
    ]
    .map(String::from);
    let tls_args: Vec<&str> = tls_args.iter().map(String::as_str).collect();
    let nodes: Vec<Node> = (0..2).map(|_| Node::start(&tls_args)).collect();
    let list: Vec<String> = nodes.iter().map(|n| format!("\"{}\"", n.addr)).collect();
    let cluster = dir.join("cluster.toml");
    std::fs::write(
        &cluster,
        format!(
            "nodes = [{}]\nplacement = \"split\"\nno_node_timeout_s = 3\n[tls]\nca = \"ca.pem\"\ncert = \"client.pem\"\nkey = \"client.key\"\ndomain = \"negotium-node\"\n",
            list.join(", ")
        ),
    )
    .unwrap();
    let scenario = scenarios().join("series-a.toml");
    let dist = dir.join("dist.jsonl");
    ok(&run(&[
        "run",
        scenario.to_str().unwrap(),
        "--repeat",
        "6",
        "--out",
        dist.to_str().unwrap(),
        "--cluster",
        cluster.to_str().unwrap(),
    ]));
    let local = dir.join("local.jsonl");
    ok(&run(&[
        "run",
        scenario.to_str().unwrap(),
        "--repeat",
        "6",
        "--engine",
        "direct",
        "--out",
        local.to_str().unwrap(),
    ]));
    assert_eq!(records(&dist, "session").0, records(&local, "session").0);
    // Without TLS the nodes are unreachable: a clear failure.
    let plain = nodes.iter().map(|n| n.addr.as_str()).collect::<Vec<_>>().join(",");
    let bad = dir.join("plain.toml");
    std::fs::write(&bad, format!("nodes = [{}]\nno_node_timeout_s = 1\n", list.join(", "))).unwrap();
    let out = run(&["run", scenario.to_str().unwrap(), "--cluster", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{plain}: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn bad_cluster_options_are_input_errors() {
    let tmp = TempDir::new().unwrap();
    let scenario = scenarios().join("series-a.toml");
    let bad = tmp.path().join("cluster.toml");
    std::fs::write(&bad, "nodes = [\"a:1\"]\nplacement = \"scatter\"\n").unwrap();
    for args in [
        vec!["run", scenario.to_str().unwrap(), "--cluster", bad.to_str().unwrap()],
        vec!["run", scenario.to_str().unwrap(), "--nodes", "nonsense"],
        vec!["run", scenario.to_str().unwrap(), "--placement", "split"],
    ] {
        let out = run(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    // No node answers: a clear failure, not a hang or a panic.
    std::fs::write(&bad, "nodes = [\"127.0.0.1:9\"]\nno_node_timeout_s = 1\n").unwrap();
    let out = run(&["run", scenario.to_str().unwrap(), "--cluster", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no node reachable") && err.contains("127.0.0.1:9"), "{err}");
}

/// A launcher whose only node is a dead port says at once what it waits
/// for and why the node fails, and goes on trying without a line per dial.
#[test]
fn a_launcher_says_what_it_waits_for_and_why_each_node_fails() {
    let tmp = TempDir::new().unwrap();
    let dead = format!("127.0.0.1:{}", common::dead_port());
    let file = tmp.path().join("cluster.toml");
    std::fs::write(&file, format!("nodes = [\"{dead}\"]\nno_node_timeout_s = 3\n")).unwrap();
    let scenario = scenarios().join("series-a.toml");
    let started = Instant::now();
    let out = run(&["run", scenario.to_str().unwrap(), "--cluster", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("\x1b["), "colour codes in a pipe:\n{err}");
    let lines: Vec<&str> = err.lines().collect();
    assert!(lines[0].contains("waiting for a node to answer") && lines[0].contains(&dead), "{err}");
    let failing: Vec<&&str> = lines.iter().filter(|l| l.contains(&format!("node {dead} unreachable"))).collect();
    assert!(
        failing.first().is_some_and(|l| l.to_lowercase().contains("connection refused")),
        "the reason is named: {err}"
    );
    // Dialled about once a second for 3 s: one line, the reason unchanged.
    assert_eq!(failing.len(), 1, "{err}");
    assert!(err.contains("no node reachable"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[test]
fn nodes_with_tokens_take_work_only_from_launchers_that_show_them() {
    let tmp = TempDir::new().unwrap();
    let node = Node::start(&["--admin-token", "adm-secret", "--cluster-token", "clu-secret"]);
    let scenario = scenarios().join("series-a.toml");
    let started = Instant::now();
    let out = run(&["run", scenario.to_str().unwrap(), "--repeat", "2", "--nodes", &node.addr]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("refused this launcher") && err.contains("--cluster-token"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(20), "refused at once, not after retries");
    // The admin token is not the cluster token.
    let out = run(&["run", scenario.to_str().unwrap(), "--nodes", &node.addr, "--cluster-token", "adm-secret"]);
    assert_eq!(out.status.code(), Some(1));
    let dist = tmp.path().join("dist.jsonl");
    ok(&run(&[
        "run",
        scenario.to_str().unwrap(),
        "--repeat",
        "2",
        "--nodes",
        &node.addr,
        "--cluster-token",
        "clu-secret",
        "--out",
        dist.to_str().unwrap(),
    ]));
    assert_eq!(lines_in(&dist), 2);
    // Without any token a node will not listen beyond loopback (the check
    // comes before the address is bound).
    let out = run(&["node", "--listen", "0.0.0.0:0"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("refusing to serve") && err.contains("--insecure"), "{err}");
}

/// Four parties: with two nodes, `split` puts two remote parties of each
/// session on one node, over one link. Seats used to be keyed by session
/// alone, so the two collided, every session failed once and ran again.
#[test]
fn four_parties_split_over_two_nodes_run_once_each_as_locally() {
    let tmp = TempDir::new().unwrap();
    let mut text = String::from("name = \"four\"\nseed = 3\n[protocol]\nrounds = 50\n");
    for i in ["x", "y"] {
        text += &format!("[[issues]]\nname = \"{i}\"\ntype = \"integer\"\nmin = 0\nmax = 9\n");
    }
    for (k, strategy) in ["boulware", "conceder", "linear", "tit-for-tat"].iter().enumerate() {
        let w = 0.2 + 0.2 * k as f64;
        let f = if k % 2 == 0 { "[0.0, 1.0]" } else { "[1.0, 0.0]" };
        text += &format!(
            "[[parties]]\nname = \"p{k}\"\nstrategy = \"{strategy}\"\nweights = {{ x = {w:?}, y = {:?} }}\nvalues.x = {{ linear = {f} }}\nvalues.y = {{ linear = [0.0, 1.0] }}\n",
            1.0 - w
        );
    }
    let scenario = tmp.path().join("four.toml");
    std::fs::write(&scenario, text).unwrap();
    let nodes: Vec<Node> = (0..2).map(|_| Node::start(&[])).collect();
    let addrs: Vec<&str> = nodes.iter().map(|n| n.addr.as_str()).collect();
    let (placed, out) = split_equals_local(tmp.path(), &scenario, "40", &addrs, &[]);
    assert!(placed.values().all(|(_, attempts)| *attempts == 1), "{placed:?}\n{out}");
    assert!(!out.contains("lost"), "{out}");
    for n in &nodes {
        assert!(placed.values().any(|(node, _)| node == &n.addr), "{} hosted nothing", n.addr);
    }
}

/// A cluster service that says hello, then drops its stream whenever a
/// session is placed on it (a node that crashes on every session). Returns
/// its address and how many sessions it was given.
fn crashing_node() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use negotium::net::pb;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio_stream::StreamExt;

    #[derive(Clone)]
    struct Crashing(std::sync::Arc<AtomicUsize>);

    #[tonic::async_trait]
    impl pb::cluster_server::Cluster for Crashing {
        type WorkStream =
            std::pin::Pin<Box<dyn tokio_stream::Stream<Item = Result<pb::NodeMessage, tonic::Status>> + Send>>;
        async fn work(
            &self,
            req: tonic::Request<tonic::Streaming<pb::LauncherMessage>>,
        ) -> Result<tonic::Response<Self::WorkStream>, tonic::Status> {
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            let hello = pb::NodeHello { node_id: "crashing".into(), advertise: String::new(), max_sessions: 0 };
            let _ = tx.send(Ok(pb::NodeMessage { kind: Some(pb::node_message::Kind::Hello(hello)) }));
            let (mut inbound, count) = (req.into_inner(), self.0.clone());
            tokio::spawn(async move {
                while let Some(Ok(m)) = inbound.next().await {
                    match m.kind {
                        Some(pb::launcher_message::Kind::Host(_)) => {
                            count.fetch_add(1, Ordering::Relaxed);
                            let _ = tx.send(Err(tonic::Status::internal("crashed")));
                            return;
                        }
                        Some(pb::launcher_message::Kind::Heartbeat(h)) => {
                            let _ = tx.send(Ok(pb::NodeMessage { kind: Some(pb::node_message::Kind::Heartbeat(h)) }));
                        }
                        _ => {}
                    }
                }
            });
            Ok(tonic::Response::new(Box::pin(tokio_stream::wrappers::UnboundedReceiverStream::new(rx))))
        }
    }

    let count = std::sync::Arc::new(AtomicUsize::new(0));
    let (tx, rx) = std::sync::mpsc::channel();
    let service = Crashing(count.clone());
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap().to_string()).unwrap();
            tonic::transport::Server::builder()
                .add_service(pb::cluster_server::ClusterServer::new(service))
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
                .await
                .unwrap();
        });
    });
    (rx.recv().unwrap(), count)
}

#[test]
fn re_runs_avoid_the_node_they_were_lost_on_and_stop_at_the_attempt_limit() {
    let tmp = TempDir::new().unwrap();
    let scenario = scenarios().join("series-a.toml");
    let (crashing, given) = crashing_node();
    let healthy = Node::start(&[]);
    let dist = tmp.path().join("dist.jsonl");
    let list = format!("{crashing},{}", healthy.addr);
    let out = ok(&run(&[
        "run",
        scenario.to_str().unwrap(),
        "--repeat",
        "30",
        "--nodes",
        &list,
        "--out",
        dist.to_str().unwrap(),
    ]));
    let (got, placed) = records(&dist, "session");
    assert_eq!(got.len(), 30);
    assert!(placed.values().all(|(node, attempts)| node == &healthy.addr && *attempts <= 2), "{placed:?}");
    let sent = given.load(std::sync::atomic::Ordering::Relaxed);
    assert!((1..30).contains(&sent), "the crashing node got {sent} sessions\n{out}");
    // Alone, it takes each session down every time: the run gives up at
    // the attempt limit with the story, instead of re-running for ever.
    let alone = tmp.path().join("alone.toml");
    std::fs::write(&alone, format!("nodes = [\"{crashing}\"]\nmax_attempts = 2\n")).unwrap();
    let started = Instant::now();
    let out = run(&["run", scenario.to_str().unwrap(), "--repeat", "3", "--cluster", alone.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("gave up after 2 attempts") && err.contains(&crashing), "{err}");
    assert!(started.elapsed() < Duration::from_secs(30), "{:?}", started.elapsed());
}

/// Scenarios that only the cluster wire could carry (the file checks never
/// saw them): two of them panicked arbiter threads. Now each is refused by
/// the check every scenario passes, its sessions fail with the reason, a
/// seat naming a URL is refused before anything is dialled, and the node
/// keeps answering.
#[test]
fn a_node_checks_wire_scenarios_and_seats_as_it_checks_files() {
    use negotium::net::pb;
    use tokio_stream::StreamExt;
    let node = Node::start(&["--cluster-token", "clu"]);
    let good = {
        let sc = negotium::core::scenario::Scenario::parse(
            &std::fs::read_to_string(scenarios().join("series-a.toml")).unwrap(),
            "series-a.toml",
        )
        .unwrap();
        serde_json::to_value(negotium::net::cluster::ScenarioWire::of(&sc)).unwrap()
    };
    let mut bad: Vec<(&str, Json)> = Vec::new();
    let mut v = good.clone();
    v["parties"] = Json::Array(vec![]);
    bad.push(("two parties", v));
    let mut v = good.clone();
    // JSON has no NaN (it arrives as null and fails to parse); a negative
    // weight is what gets through the JSON and not through the check.
    v["parties"][0][1]["utility"]["weights"][0] = Json::from(-0.5);
    bad.push(("non-negative", v));
    let mut v = good.clone();
    v["parties"][0][1]["utility"] = serde_json::json!({"type": "hyper-rectangles", "rectangles": [{"utility": 1.0, "includes": [[99, 0.0, 1.0]]}], "aggregation": "sum", "max_utility": 1.0});
    bad.push(("names issue 99", v));
    let mut v = good.clone();
    v["deadline"] = serde_json::json!({"rounds": null, "seconds": null});
    bad.push(("deadline", v));
    let mut v = good.clone();
    v["domain"]["issues"][0] =
        serde_json::json!({"type": "integer", "name": v["domain"]["issues"][0]["name"], "min": 9, "max": 1});
    bad.push(("above max", v));
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let channel = negotium::net::client::connect(&format!("http://{}", node.addr), None).await.unwrap();
        let token = negotium::net::client::AdminToken::new(Some("clu".into()));
        let mut client = pb::cluster_client::ClusterClient::with_interceptor(channel, token);
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let mut inbound =
            client.work(tokio_stream::wrappers::UnboundedReceiverStream::new(rx)).await.unwrap().into_inner();
        let send = |kind| tx.send(pb::LauncherMessage { kind: Some(kind) }).unwrap();
        use pb::launcher_message::Kind;
        for (k, (_, v)) in bad.iter().enumerate() {
            send(Kind::Scenario(pb::LoadScenario { id: k as u32, scenario_json: v.to_string() }));
            let strategies = vec!["\"boulware\"".to_string(); 2];
            let host = pb::HostSession {
                job: k as u64,
                attempt: 0,
                scenario: k as u32,
                strategies,
                seed: 1,
                remote: vec![],
                trace: false,
            };
            send(Kind::Host(host));
        }
        let seat = pb::PlaySeat {
            job: 99,
            host: "http://169.254.169.254/latest:80".into(),
            strategy: "\"boulware\"".into(),
            ..Default::default()
        };
        send(Kind::Seat(seat));
        send(Kind::Heartbeat(pb::Heartbeat { sent_unix_ms: 0 }));
        let mut failed = std::collections::BTreeMap::new();
        let mut heartbeat = false;
        while !(heartbeat && failed.len() == bad.len() + 1) {
            let m = tokio::time::timeout(Duration::from_secs(30), inbound.next())
                .await
                .expect("the node answers")
                .unwrap()
                .unwrap();
            match m.kind {
                Some(pb::node_message::Kind::Failed(f)) => {
                    failed.insert(f.job, f.message);
                }
                Some(pb::node_message::Kind::Heartbeat(_)) => heartbeat = true,
                _ => {}
            }
        }
        for (k, (why, _)) in bad.iter().enumerate() {
            assert!(failed[&(k as u64)].contains(why), "{why}: {}", failed[&(k as u64)]);
        }
        assert!(failed[&99].contains("is not HOST:PORT"), "{}", failed[&99]);
    });
    // Still serving launchers.
    let out = run(&[
        "run",
        scenarios().join("series-a.toml").to_str().unwrap(),
        "--nodes",
        &node.addr,
        "--cluster-token",
        "clu",
    ]);
    ok(&out);
}

/// `--cluster-listen`: the cluster service on a port of its own, which an
/// operator keeps internal; the public port serves agents only.
#[test]
fn the_cluster_service_can_have_a_port_apart_from_the_agents() {
    let tmp = TempDir::new().unwrap();
    let nodes: Vec<Node> = (0..2).map(|_| Node::start(&["--cluster-listen", "127.0.0.1:0"])).collect();
    let scenario = scenarios().join("data-alliance.toml");
    let cluster: Vec<&str> = nodes.iter().map(|n| n.cluster.as_deref().unwrap()).collect();
    split_equals_local(tmp.path(), &scenario, "6", &cluster, &[]);
    let base = ["run", scenario.to_str().unwrap(), "--repeat", "6"];
    // The public port has no cluster service.
    let file = tmp.path().join("public.toml");
    std::fs::write(&file, format!("nodes = [\"{}\"]\nno_node_timeout_s = 1\n", nodes[0].addr)).unwrap();
    let out = run(&[&base[..], &["--cluster", file.to_str().unwrap()]].concat());
    assert_eq!(out.status.code(), Some(1));
}

/// The reference workload draws a scenario per negotiation: more scenarios
/// than a node keeps loaded (256) pass through one launcher stream, the
/// launcher freeing idle ones before it loads new ones.
#[test]
fn a_run_over_more_scenarios_than_a_node_keeps_loaded() {
    let node = Node::start(&[]);
    let out = ok(&run(&["bench", "--workload", "w1", "--n", "700", "--nodes", &node.addr, "--json"]));
    let v: Json = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["n_negotiations"], 700, "{v}");
    assert_eq!(v["agreement_rate"], 1.0, "{v}");
}

/// Three hosts: network namespaces on one bridge (in a namespace of its
/// own), created and removed by this test; nothing touches the host's own
/// network. Needs root and `ip`; skipped with a message otherwise.
#[test]
fn three_hosts_in_network_namespaces() {
    let id = std::process::id();
    let net = Netns::new(id);
    if let Err(why) = &net {
        eprintln!("SKIPPED three_hosts_in_network_namespaces: cannot create network namespaces ({why})");
        if std::env::var_os("NEGOTIUM_REQUIRE_NETNS").is_some() {
            panic!("NEGOTIUM_REQUIRE_NETNS is set: {why}");
        }
        return;
    }
    let net = net.unwrap();
    // Beyond loopback a node needs its tokens (or --insecure).
    let tokens = ["--admin-token", "adm-secret", "--cluster-token", "clu-secret"];
    let nodes: Vec<Node> =
        (1..=3).map(|k| Node::start_in(Some(&net.host(k)), &format!("{}:7000", net.ip(k)), &tokens)).collect();
    let list = nodes.iter().map(|n| n.addr.as_str()).collect::<Vec<_>>().join(",");
    let tmp = TempDir::new().unwrap();
    let scenario = scenarios().join("data-alliance.toml");
    let dist = tmp.path().join("dist.jsonl");
    // The launcher is a fourth host.
    let out = Command::new("ip")
        .args(["netns", "exec", &net.host(4), BIN, "run", scenario.to_str().unwrap(), "--repeat", "9"])
        .args(["--out", dist.to_str().unwrap(), "--nodes", &list, "--placement", "split"])
        .args(["--cluster-token", "clu-secret"])
        .output()
        .unwrap();
    ok(&out);
    let local = tmp.path().join("local.jsonl");
    ok(&run(&[
        "run",
        scenario.to_str().unwrap(),
        "--repeat",
        "9",
        "--engine",
        "direct",
        "--out",
        local.to_str().unwrap(),
    ]));
    let (want, _) = records(&local, "session");
    let (got, placed) = records(&dist, "session");
    assert_eq!(got, want);
    for k in 1..=3 {
        let addr = format!("{}:7000", net.ip(k));
        assert!(placed.values().any(|(node, _)| node == &addr), "{addr} hosted nothing");
    }
}

/// `ns-<id>-sw` holds a bridge; hosts `ns-<id>-1..4` each have a veth pair
/// into it and address 10.213.0.k/24.
struct Netns {
    id: u32,
}

impl Netns {
    fn host(&self, k: u32) -> String {
        format!("ngt{}-{k}", self.id)
    }

    fn ip(&self, k: u32) -> String {
        format!("10.213.0.{k}")
    }

    fn new(id: u32) -> Result<Netns, String> {
        let ip = |args: &[&str]| -> Result<(), String> {
            let out = Command::new("ip").args(args).output().map_err(|e| format!("ip: {e}"))?;
            if out.status.success() {
                Ok(())
            } else {
                Err(format!("ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
            }
        };
        let net = Netns { id };
        let sw = format!("ngt{id}-sw");
        ip(&["netns", "add", &sw])?;
        ip(&["-n", &sw, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &sw, "link", "set", "br0", "up"])?;
        for k in 1..=4 {
            let host = net.host(k);
            ip(&["netns", "add", &host])?;
            let (inner, outer) = (format!("ngt{id}h{k}"), format!("ngt{id}s{k}"));
            ip(&["link", "add", &inner, "netns", &host, "type", "veth", "peer", "name", &outer, "netns", &sw])?;
            ip(&["-n", &sw, "link", "set", &outer, "master", "br0"])?;
            ip(&["-n", &sw, "link", "set", &outer, "up"])?;
            ip(&["-n", &host, "addr", "add", &format!("{}/24", net.ip(k)), "dev", &inner])?;
            ip(&["-n", &host, "link", "set", &inner, "up"])?;
            ip(&["-n", &host, "link", "set", "lo", "up"])?;
        }
        Ok(net)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        for name in (1..=4).map(|k| self.host(k)).chain([format!("ngt{}-sw", self.id)]) {
            let _ = Command::new("ip").args(["netns", "del", &name]).output();
        }
    }
}

/// A node as a library: its caller binds the ports (0: any) and owns the
/// runtime, and a future, not a signal, tells it to drain and stop.
#[test]
fn a_node_runs_in_process_and_stops_when_its_shutdown_future_completes() {
    use negotium::net::client::{connect, management};
    use negotium::net::cluster::node::{self, NodeListeners, NodeOptions};
    use negotium::net::pb;
    use negotium::net::server::ServerConfig;

    let system = actix::System::with_tokio_rt(|| {
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
    });
    system.block_on(async {
        let any = "127.0.0.1:0".parse().unwrap();
        let options = NodeOptions {
            listen: any,
            cluster_listen: Some(any),
            advertise: String::new(),
            metrics: None,
            config: ServerConfig::default(),
            tls: None,
            peer_tls: None,
            drain: Duration::from_secs(5),
        };
        let listeners = NodeListeners::bind(&options).await.unwrap();
        let public = listeners.public.local_addr().unwrap();
        let cluster = listeners.cluster.as_ref().unwrap().local_addr().unwrap();
        assert_ne!(public.port(), cluster.port());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        // On the system's thread, where its session arbiters start.
        let running = actix::spawn(node::run(options, listeners, async {
            let _ = stopped.await;
        }));
        for addr in [public, cluster] {
            let channel = connect(&format!("http://{addr}"), None).await.unwrap();
            management(channel, None).list_sessions(pb::ListSessionsRequest::default()).await.unwrap();
        }
        assert!(!running.is_finished(), "the node stopped before it was told to");
        stop.send(()).unwrap();
        let ran = tokio::time::timeout(Duration::from_secs(10), running).await.expect("stopped within 10 s");
        ran.expect("the node's task").expect("a clean stop");
    });
}
