//! The binary's servers (`serve`, `node`, `ps`, `bench-api`) and their
//! clients (`session`, `agent`) as processes, as a person meets them: the
//! addresses they take, what they say when an address is taken or dead,
//! what `session list` says of a session nobody joined, and logs that stay
//! plain text in a file.

use std::path::Path;
use std::time::{Duration, Instant};

use common::{Served, dead_port, negotium};

mod common;

fn examples(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples").join(name).display().to_string()
}

/// `--server 127.0.0.1:PORT` without a scheme reaches the server; a dead
/// address says where it dialled and why, once (no chain of "transport
/// error"s).
#[test]
fn a_bare_server_address_is_dialled_and_a_dead_one_says_why_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = Served::start(&["serve", "--listen", "127.0.0.1:0"], &[], &dir.path().join("serve.log"));
    let listed = negotium(&["session", "list", "--server", &server.addr]);
    assert_eq!(listed.code, Some(0), "{}", listed.stderr);
    let url = negotium(&["session", "list", "--server", &format!("http://{}", server.addr)]);
    assert_eq!(url.code, Some(0), "{}", url.stderr);

    let dead = format!("127.0.0.1:{}", dead_port());
    let r = negotium(&["session", "list", "--server", &dead]);
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(r.stderr.contains(&format!("cannot connect to http://{dead}: ")), "{}", r.stderr);
    assert!(r.stderr.to_lowercase().matches("connection refused").count() == 1, "{}", r.stderr);
    assert!(!r.stderr.contains("transport error"), "{}", r.stderr);

    // TLS options make a bare address https; a URL that contradicts them,
    // or is not an address, is bad input.
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, "not a certificate").unwrap();
    let plain = negotium(&["session", "list", "--server", &format!("http://{dead}"), "--ca", ca.to_str().unwrap()]);
    assert_eq!(plain.code, Some(2), "{}", plain.stderr);
    assert!(plain.stderr.contains("https://"), "{}", plain.stderr);
    let junk = negotium(&["session", "list", "--server", "localhost"]);
    assert_eq!(junk.code, Some(2), "{}", junk.stderr);
    assert!(junk.stderr.contains("HOST:PORT"), "{}", junk.stderr);
}

/// A session whose agent never joins: `session list` says how it ended,
/// not whom it was waiting for; the server's log (a file) has no colour
/// codes, and the engine's lines name the session by the server's id.
#[test]
fn a_session_nobody_joined_ends_by_join_timeout_in_the_list_and_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let server = Served::start(
        &["serve", "--listen", "127.0.0.1:0", "--join-timeout", "0.5"],
        &[("NEGOTIUM_LOG", "info")],
        &dir.path().join("serve.log"),
    );
    let created = negotium(&["session", "create", &examples("series-a-external.toml"), "--server", &server.addr]);
    assert_eq!(created.code, Some(0), "{}", created.stderr);
    let id = created.stdout.lines().find_map(|l| l.strip_prefix("session ")).expect("a session id").to_string();

    let deadline = Instant::now() + Duration::from_secs(30);
    let line = loop {
        let listed = negotium(&["session", "list", "--server", &server.addr]);
        assert_eq!(listed.code, Some(0), "{}", listed.stderr);
        let line = listed.stdout.lines().find(|l| l.starts_with(&id)).expect("the session is listed").to_string();
        if line.contains("finished") {
            break line;
        }
        assert!(Instant::now() < deadline, "not finished within 30 s: {line}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(line.contains("(ended: join timeout, investor never joined)"), "{line}");
    assert!(!line.contains("waiting for"), "{line}");

    let log = server.stderr();
    assert!(!log.contains("\x1b["), "colour codes in a log file:\n{log}");
    let engine = log.lines().find(|l| l.contains("protocol violation ends the session")).expect("the engine's line");
    assert!(engine.contains(&format!("session={id}")), "{engine}");
    let server_line = log.lines().find(|l| l.contains("session finished")).expect("the server's line");
    assert!(server_line.contains(&format!("session={id}")), "{server_line}");
}

/// Every listener the binary binds names its address and option when the
/// port is taken, in the same words.
#[test]
fn every_listener_names_the_address_it_cannot_take() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("training/ppo.toml").display().to_string();
    let free = "127.0.0.1:0";
    let runs = tempfile::tempdir().unwrap();
    let checkpoints = runs.path().display().to_string();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["serve", "--listen", &addr], "--listen"),
        (vec!["node", "--listen", &addr], "--listen"),
        (vec!["node", "--listen", free, "--cluster-listen", &addr], "--cluster-listen"),
        (vec!["node", "--listen", free, "--metrics", &addr], "--metrics"),
        (vec!["ps", "--listen", &addr, "--config", &config, "--checkpoint-dir", &checkpoints, "--quiet"], "--listen"),
        (vec!["bench-api", "--listen", &addr, "--sessions", "1"], "--listen"),
    ];
    for (args, flag) in cases {
        let r = negotium(&args);
        assert_eq!(r.code, Some(1), "{args:?}: {}", r.stderr);
        let want = format!("cannot listen on {addr} ({flag}): the address is already in use");
        assert!(r.stderr.contains(&want), "{args:?}: {}", r.stderr);
    }
}

/// `bench-api --listen` picks where the measured server listens; beyond
/// loopback its open calls need `--insecure`.
#[test]
fn bench_api_listens_where_told() {
    let port = dead_port().to_string();
    let r = negotium(&["bench-api", "--listen", &format!("127.0.0.1:{port}"), "--sessions", "2", "--json"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let report: serde_json::Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(report["sessions"], 2);
    let open = negotium(&["bench-api", "--listen", "0.0.0.0:0", "--sessions", "1"]);
    assert_eq!(open.code, Some(2), "{}", open.stderr);
    assert!(open.stderr.contains("--insecure"), "{}", open.stderr);
}
