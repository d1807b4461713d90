//! `negotium bench-api`: offers per second through the public API and the
//! round-trip time of a turn (YourTurn sent to Act received, measured by the
//! node), with agents as separate streams over 127.0.0.1.
//!
//! Each session is a W1 negotiation (DESIGN.md) whose party B is external;
//! `--agents` streams each play an equal share of the sessions at once.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use super::CliError;
use crate::core::strategy::StrategySpec;
use crate::core::workload::Workload;
use crate::net::auth::{Credentials, Role};
use crate::net::client::{Seat, connect, management, play};
use crate::net::external::LatencyLog;
use crate::net::pb;
use crate::net::server::{ServerConfig, serve};
use crate::net::transport::defaults;

#[derive(clap::Args)]
pub struct BenchApiArgs {
    /// Agent streams (each a separate connection).
    #[arg(long, default_value_t = 1, value_parser = super::args::positive::<usize>("agent streams"))]
    agents: usize,
    /// Sessions in all, shared among the agents and run at once.
    #[arg(long, default_value_t = 200, value_parser = super::args::positive::<u64>("sessions"))]
    sessions: u64,
    /// Strategies of the local party A and the external party B.
    #[arg(long, default_value = "boulware-conceder")]
    pair: String,
    #[arg(long)]
    json: bool,
    /// Address the measured server listens on (port 0: a free one); the
    /// agents run in this process and dial it.
    #[arg(long, default_value = defaults::BENCH_API)]
    listen: std::net::SocketAddr,
    /// Listen beyond loopback although the server's calls are open (it
    /// has no tokens) for as long as the benchmark runs.
    #[arg(long)]
    insecure: bool,
}

pub fn bench_api(args: BenchApiArgs) -> Result<(), CliError> {
    let (a, b) = args.pair.split_once('-').ok_or_else(|| CliError::Input("--pair: expected A-B".into()))?;
    for s in [a, b] {
        StrategySpec::named(s).validate().map_err(|e| CliError::Input(e.to_string()))?;
    }
    if args.agents == 0 || args.sessions < args.agents as u64 {
        return Err(CliError::Input("need at least one agent and one session per agent".into()));
    }
    Credentials::default().check_exposure(args.listen, args.insecure, &[Role::Admin]).map_err(CliError::Input)?;
    let w = Workload::named("w1").expect("w1 exists");
    let log = Arc::new(LatencyLog::default());
    let config = ServerConfig {
        max_unseated_streams_per_client: args.agents + 1,
        max_sessions_per_client: args.sessions as usize + 1,
        max_sessions: args.sessions as usize + 1,
        latencies: Some(log.clone()),
        ..ServerConfig::default()
    };
    let system = actix::System::with_tokio_rt(|| {
        tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a tokio runtime")
    });
    let (a, b) = (a.to_string(), b.to_string());
    let pair = args.pair.clone();
    let report = system.block_on(async move {
        let listener = crate::net::transport::listen(args.listen, "--listen").await?;
        let mut bound = listener.local_addr()?;
        if bound.ip().is_unspecified() {
            // Every interface: the agents take the loopback one.
            bound.set_ip(if bound.is_ipv4() { Ipv4Addr::LOCALHOST.into() } else { Ipv6Addr::LOCALHOST.into() });
        }
        let url = bound.to_string();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(serve(config, listener, None, async {
            let _ = stop_rx.await;
        }));
        let channel = connect(&url, None).await?;
        let mut admin = management(channel, None);
        let mut seats: Vec<Vec<Seat>> = (0..args.agents).map(|_| Vec::new()).collect();
        for j in 0..args.sessions {
            let req = pb::CreateSessionRequest {
                scenario_toml: w.scenario_text(j, &a, &b, true),
                seed: 0,
                has_seed: false,
                join_timeout_seconds: 120.0,
                ..Default::default()
            };
            let r = admin.create_session(req).await?.into_inner();
            let token = &r.tokens[0].token;
            let strategy = StrategySpec::named(&b).build().expect("validated");
            seats[(j as usize) % args.agents].push(Seat::new(&r.session_id, "B", token, strategy));
        }
        let started = Instant::now();
        let mut agents = Vec::new();
        for share in seats {
            let url = url.clone();
            agents.push(tokio::spawn(async move { play(connect(&url, None).await?, share).await }));
        }
        let mut results = Vec::new();
        for a in agents {
            results.extend(a.await.map_err(|e| anyhow::anyhow!(e))??);
        }
        let wall = started.elapsed().as_secs_f64();
        let _ = stop_tx.send(());
        tokio::time::sleep(Duration::from_millis(50)).await;
        let offers: u64 = results.iter().map(|r| r.offers).sum();
        let agreements = results.iter().filter(|r| r.ended_by == "agreement").count();
        let mut lat = log.micros.lock().expect("latency log").clone();
        lat.sort_unstable();
        let pct =
            |p: f64| lat.get(((lat.len() as f64 - 1.0) * p).round() as usize).copied().unwrap_or(0) as f64 / 1000.0;
        Ok::<_, anyhow::Error>(json!({
            "agents": args.agents,
            "sessions": args.sessions,
            "pair": pair,
            "wall_s": wall,
            "offers_total": offers,
            "offers_per_s": offers as f64 / wall,
            "agent_turns": lat.len(),
            "agent_turns_per_s": lat.len() as f64 / wall,
            "agreement_rate": agreements as f64 / results.len().max(1) as f64,
            "turn_latency_ms": { "p50": pct(0.5), "p90": pct(0.9), "p99": pct(0.99), "max": pct(1.0) },
        }))
    });
    let report = report.map_err(CliError::Failure)?;
    if args.json {
        outln!("{report}");
    } else {
        outln!("{} agent stream(s), {} sessions, {}", args.agents, args.sessions, args.pair);
        outln!("  offers/s            {:.0}", report["offers_per_s"].as_f64().unwrap_or(0.0));
        outln!("  agent turns/s       {:.0}", report["agent_turns_per_s"].as_f64().unwrap_or(0.0));
        let l = &report["turn_latency_ms"];
        outln!("  turn round trip ms  p50 {}  p90 {}  p99 {}  max {}", l["p50"], l["p90"], l["p99"], l["max"]);
        outln!("  agreement rate      {:.3}", report["agreement_rate"].as_f64().unwrap_or(0.0));
    }
    Ok(())
}
