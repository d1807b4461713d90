//! What requests cost a `negotium serve` process:
//!
//! - resident memory per session waiting for its agent, and per finished
//!   session kept for `GetResult` (from /proc before and after);
//! - the time of one CreateSession of an ~900 KB scenario (one issue of
//!   30,000 values), and how long a small call waits while six of those
//!   are parsed at once.
//!
//!     cargo run --release --example server_costs -- [BIN] [WAITING] [FINISHED]
//!
//! Defaults: target/release/negotium, 2,000 waiting (W1, party B external)
//! and 15,000 finished (W1, both parties local). Works against older
//! binaries too (the fields it uses are all in v1 from the start).

#[path = "common/mod.rs"]
mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use negotium::core::workload::Workload;
use negotium::net::client::{connect, management};
use negotium::net::pb;

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let bin = args.first().cloned().unwrap_or_else(|| "target/release/negotium".into());
    let waiting: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(2_000);
    let finished: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(15_000);
    let mut child = Command::new(&bin)
        .args(["serve", "--listen", "127.0.0.1:0", "--join-timeout", "600"])
        .args(["--max-sessions", "100000", "--max-sessions-per-client", "100000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start negotium serve");
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line).unwrap();
    let addr = line.trim().strip_prefix("listening on ").expect("listening on ADDR").to_string();
    let pid = child.id();
    let mut m = management(connect(&format!("http://{addr}"), None).await.unwrap(), None);
    let w = Workload::named("w1").unwrap();
    let create = |text: String| pb::CreateSessionRequest {
        scenario_toml: text,
        seed: 0,
        has_seed: false,
        join_timeout_seconds: 600.0,
        ..Default::default()
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let base = rss_kib(pid);
    for j in 0..waiting {
        m.create_session(create(w.scenario_text(j, "boulware", "conceder", true))).await.expect("created");
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let with_waiting = rss_kib(pid);
    let mut last = String::new();
    for j in 0..finished {
        let r = m.create_session(create(w.scenario_text(j, "conceder", "conceder", false))).await.expect("created");
        last = r.into_inner().session_id;
    }
    // Until the last one has finished (they finish in order of creation, roughly).
    loop {
        match m.get_result(pb::GetResultRequest { session_id: last.clone() }).await {
            Ok(_) => break,
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let with_finished = rss_kib(pid);
    let per = |kib: u64, n: u64| kib as f64 / n.max(1) as f64;
    println!(
        "{bin}: baseline {:.1} MiB; {waiting} waiting sessions +{:.1} MiB ({:.1} KiB each); \
         {finished} finished sessions +{:.1} MiB ({:.1} KiB each)",
        base as f64 / 1024.0,
        (with_waiting - base) as f64 / 1024.0,
        per(with_waiting - base, waiting),
        with_finished.saturating_sub(with_waiting) as f64 / 1024.0,
        per(with_finished.saturating_sub(with_waiting), finished)
    );
    // Parsing: one big scenario alone, then six at once beside a small call.
    let big = common::many_values(30_000);
    let started = std::time::Instant::now();
    let one = m.create_session(create(big.clone())).await;
    let alone = started.elapsed();
    let calls: Vec<_> = (0..6)
        .map(|_| {
            let (mut m, req) = (m.clone(), create(big.clone()));
            tokio::spawn(async move { m.create_session(req).await.is_ok() })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let started = std::time::Instant::now();
    m.list_sessions(pb::ListSessionsRequest { page_size: 1, page_token: String::new() }).await.expect("list");
    let small = started.elapsed();
    let started = std::time::Instant::now();
    for c in calls {
        let _ = c.await;
    }
    println!(
        "  one {} KB CreateSession: {:.2} s ({}); a ListSessions beside six of them: {:.3} s; the six took {:.2} s more",
        big.len() / 1000,
        alone.as_secs_f64(),
        if one.is_ok() { "created" } else { "refused" },
        small.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    let _ = child.kill();
    let _ = child.wait();
}
