//! The binary's servers (`serve`, `node`, `ps`, `bench-api`) and their
//! clients (`session`, `agent`) as processes, as a person meets them: the
//! addresses they take, and what they say when an address is dead.

use common::{Served, dead_port, negotium};

mod common;

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
