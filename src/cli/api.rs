//! `negotium serve`, `negotium session …` and `negotium agent`: a node that
//! hosts sessions for external agents, and the client side of the API.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use tonic::transport::ClientTlsConfig;

use super::{CliError, load_scenario};
use crate::core::strategy::StrategySpec;
use crate::net::client::{ClientError, ClientTls, Seat, connect, management, play};
use crate::net::pb;
use crate::net::server::{ServerConfig, TlsFiles, run_node};

#[derive(clap::Args)]
pub struct ServeArgs {
    /// Address to listen on, e.g. 127.0.0.1:7000 (port 0 picks one).
    #[arg(long, default_value = "127.0.0.1:7000")]
    listen: SocketAddr,
    /// PEM certificate chain: serve TLS (with --tls-key).
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// PEM CA: require client certificates it signed (mutual TLS).
    #[arg(long, requires = "tls_cert")]
    client_ca: Option<PathBuf>,
    /// Token the management calls (create, list, watch, result) must carry.
    #[arg(long, env = "NEGOTIUM_ADMIN_TOKEN")]
    admin_token: Option<String>,
    /// Seconds an agent may take per turn.
    #[arg(long, default_value_t = 10.0)]
    turn_timeout: f64,
    /// Seconds a session waits for its agents to join.
    #[arg(long, default_value_t = 60.0)]
    join_timeout: f64,
    #[arg(long, default_value_t = 10_000)]
    max_sessions: usize,
    #[arg(long, default_value_t = 1_000)]
    max_sessions_per_client: usize,
    #[arg(long, default_value_t = 64)]
    max_connections_per_client: usize,
    /// Largest message in bytes.
    #[arg(long, default_value_t = 1 << 20)]
    max_message_bytes: usize,
}

fn seconds(name: &str, s: f64) -> Result<Duration, CliError> {
    Duration::try_from_secs_f64(s)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| CliError::Input(format!("--{name} must be a positive number of seconds")))
}

fn read(path: &PathBuf) -> Result<String, CliError> {
    std::fs::read_to_string(path).map_err(|e| CliError::Input(format!("{}: cannot read: {e}", path.display())))
}

pub fn serve(args: ServeArgs) -> Result<(), CliError> {
    let (listen, config, tls) = hosting(args)?;
    run_node(listen, config, tls).map_err(CliError::Failure)
}

/// The listen address, limits and TLS material that `serve` and `node` share.
pub fn hosting(args: ServeArgs) -> Result<(SocketAddr, ServerConfig, Option<TlsFiles>), CliError> {
    let config = ServerConfig {
        turn_timeout: seconds("turn-timeout", args.turn_timeout)?,
        join_timeout: seconds("join-timeout", args.join_timeout)?,
        max_sessions: args.max_sessions,
        max_sessions_per_client: args.max_sessions_per_client,
        max_connections_per_client: args.max_connections_per_client,
        max_message_bytes: args.max_message_bytes,
        admin_token: args.admin_token,
        ..ServerConfig::default()
    };
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(TlsFiles {
            cert: read(cert)?,
            key: read(key)?,
            client_ca: args.client_ca.as_ref().map(read).transpose()?,
        }),
        _ => None,
    };
    Ok((args.listen, config, tls))
}

/// How a client reaches a node.
#[derive(clap::Args, Clone)]
pub struct ServerArgs {
    /// Node URL: http://HOST:PORT, or https:// with --ca.
    #[arg(long, default_value = "http://127.0.0.1:7000")]
    server: String,
    /// PEM CA that signed the node's certificate.
    #[arg(long)]
    ca: Option<PathBuf>,
    /// PEM client certificate and key, for nodes that require mutual TLS.
    #[arg(long, requires = "key")]
    cert: Option<PathBuf>,
    #[arg(long, requires = "cert")]
    key: Option<PathBuf>,
    /// Name to check the node's certificate against (default: the URL's host).
    #[arg(long)]
    tls_domain: Option<String>,
    #[arg(long, env = "NEGOTIUM_ADMIN_TOKEN")]
    admin_token: Option<String>,
}

impl ServerArgs {
    fn tls(&self) -> Result<Option<ClientTlsConfig>, CliError> {
        let Some(ca) = &self.ca else { return Ok(None) };
        let tls = ClientTls::read(ca, self.cert.as_deref(), self.key.as_deref(), self.tls_domain.clone())
            .map_err(CliError::Input)?;
        Ok(Some(tls.config()))
    }
}

#[derive(clap::Subcommand)]
pub enum SessionCommand {
    /// Create a session on a node from a scenario; prints its id and one
    /// token per external party.
    Create {
        scenario: PathBuf,
        #[arg(long)]
        seed: Option<u64>,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// List the node's sessions.
    List {
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Print a finished session's result record (JSON).
    Result {
        session_id: String,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Print a session's actions as they happen, then its result.
    Watch {
        session_id: String,
        #[command(flatten)]
        server: ServerArgs,
    },
}

fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| CliError::Failure(e.into()))
}

fn remote(e: ClientError) -> CliError {
    match e {
        ClientError::Status(s) if s.code() == tonic::Code::InvalidArgument => CliError::Input(s.message().to_string()),
        other => CliError::Failure(anyhow::Error::new(other)),
    }
}

pub fn session(cmd: SessionCommand) -> Result<(), CliError> {
    runtime()?.block_on(async move {
        match cmd {
            SessionCommand::Create { scenario, seed, server } => {
                // Parse locally first: errors then carry the real file name.
                load_scenario(&scenario)?;
                let text = read(&scenario)?;
                let channel = connect(&server.server, server.tls()?).await.map_err(remote)?;
                let mut client = management(channel, server.admin_token.clone());
                let req = pb::CreateSessionRequest {
                    scenario_toml: text,
                    seed: seed.unwrap_or(0),
                    has_seed: seed.is_some(),
                    join_timeout_seconds: 0.0,
                };
                let r = client.create_session(req).await.map_err(|s| remote(s.into()))?.into_inner();
                outln!("session {}", r.session_id);
                for t in r.tokens {
                    outln!("token {} {}", t.party, t.token);
                }
            }
            SessionCommand::List { server } => {
                let channel = connect(&server.server, server.tls()?).await.map_err(remote)?;
                let r = management(channel, server.admin_token.clone())
                    .list_sessions(pb::ListSessionsRequest {})
                    .await
                    .map_err(|s| remote(s.into()))?
                    .into_inner();
                for s in r.sessions {
                    let waiting = if s.waiting_for.is_empty() {
                        String::new()
                    } else {
                        format!(" (waiting for {})", s.waiting_for.join(", "))
                    };
                    outln!("{}  {:<9} {}{waiting}", s.session_id, s.state, s.scenario);
                }
            }
            SessionCommand::Result { session_id, server } => {
                let channel = connect(&server.server, server.tls()?).await.map_err(remote)?;
                let r = management(channel, server.admin_token.clone())
                    .get_result(pb::GetResultRequest { session_id })
                    .await
                    .map_err(|s| remote(s.into()))?
                    .into_inner();
                outln!("{}", r.record_json);
            }
            SessionCommand::Watch { session_id, server } => {
                use tokio_stream::StreamExt;
                let channel = connect(&server.server, server.tls()?).await.map_err(remote)?;
                let mut events = management(channel, server.admin_token.clone())
                    .watch_session(pb::WatchSessionRequest { session_id })
                    .await
                    .map_err(|s| remote(s.into()))?
                    .into_inner();
                while let Some(e) = events.next().await {
                    match e.map_err(|s| remote(s.into()))?.kind {
                        Some(pb::session_event::Kind::Action(a)) => {
                            let kind = match a.action.and_then(|x| x.kind) {
                                Some(pb::action::Kind::Offer(o)) => {
                                    let mut v: Vec<String> =
                                        o.values.iter().map(|(k, v)| format!("{k}={}", show(v))).collect();
                                    v.sort();
                                    format!("offers {}", v.join(", "))
                                }
                                Some(pb::action::Kind::Accept(_)) => "accepts".into(),
                                _ => "ends the negotiation".into(),
                            };
                            outln!("round {:>4}  party {}  {kind}", a.round, a.party);
                        }
                        Some(pb::session_event::Kind::Finished(r)) => outln!("{}", r.record_json),
                        None => {}
                    }
                }
            }
        }
        Ok(())
    })
}

fn show(v: &pb::Value) -> String {
    match &v.kind {
        Some(pb::value::Kind::Discrete(s)) => s.clone(),
        Some(pb::value::Kind::Integer(x)) => x.to_string(),
        Some(pb::value::Kind::Real(x)) => x.to_string(),
        None => "?".into(),
    }
}

#[derive(clap::Args)]
pub struct AgentArgs {
    #[arg(long)]
    session: String,
    #[arg(long)]
    party: String,
    #[arg(long)]
    token: String,
    /// A built-in strategy to play with (NAME or an inline TOML table).
    #[arg(long, default_value = "boulware")]
    strategy: String,
    #[command(flatten)]
    server: ServerArgs,
}

/// Plays one party of a remote session with a built-in strategy.
pub fn agent(args: AgentArgs) -> Result<(), CliError> {
    let strategy = StrategySpec::parse_cli(&args.strategy)
        .and_then(|s| s.build())
        .map_err(|e| CliError::Input(format!("--strategy: {e}")))?;
    runtime()?.block_on(async move {
        let channel = connect(&args.server.server, args.server.tls()?).await.map_err(remote)?;
        let results =
            play(channel, vec![Seat::new(&args.session, &args.party, &args.token, strategy)]).await.map_err(remote)?;
        for r in results {
            outln!("{}", r.record_json);
        }
        Ok(())
    })
}
