//! `negotium serve`, `negotium session …` and `negotium agent`: a node that
//! hosts sessions for external agents, and the client side of the API.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use tonic::transport::ClientTlsConfig;

use super::{CliError, explain, load_scenario};
use crate::core::limits::Limits;
use crate::core::strategy::StrategySpec;
use crate::net::auth::{Credentials, Role, Secret};
use crate::net::client::{ClientError, ClientTls, Seat, connect, management, play};
use crate::net::gate::{GateConfig, raise_fd_limit};
use crate::net::pb;
use crate::net::server::{self, ServerConfig, TlsFiles};
use crate::net::transport::defaults;

/// TLS for a server: certificate, key, and optionally the CA whose client
/// certificates it requires (mutual TLS). Shared by serve, node and ps.
#[derive(clap::Args, Clone, Default)]
pub struct ServerTlsArgs {
    /// PEM certificate chain: serve TLS (with --tls-key).
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// PEM CA: require client certificates it signed (mutual TLS).
    #[arg(long, requires = "tls_cert")]
    client_ca: Option<PathBuf>,
}

impl ServerTlsArgs {
    pub fn files(&self) -> Result<Option<TlsFiles>, CliError> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Ok(Some(TlsFiles {
                cert: read(cert)?,
                key: read(key)?,
                client_ca: self.client_ca.as_ref().map(read).transpose()?,
            })),
            _ => Ok(None),
        }
    }
}

#[derive(clap::Args)]
pub struct ServeArgs {
    /// Address to listen on, e.g. 127.0.0.1:7000 (port 0 picks one).
    #[arg(long, default_value = defaults::SERVE)]
    listen: SocketAddr,
    #[command(flatten)]
    tls: ServerTlsArgs,
    /// Token the management calls (create, list, watch, result, cancel) must carry.
    #[arg(long, env = "NEGOTIUM_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// Serve an address beyond loopback with calls open to anyone (when a
    /// mesh or a firewall authenticates callers instead).
    #[arg(long)]
    pub(crate) insecure: bool,
    /// Models remote scenarios may name: `{ learned = "NAME" }` is NAME.mpk
    /// (with NAME.json) in this folder. Without it, no learned strategy is
    /// taken from a caller.
    #[arg(long, value_name = "DIR")]
    models: Option<PathBuf>,
    /// Seconds an agent may take per turn.
    #[arg(long, default_value_t = 10.0, help_heading = "Timeouts")]
    turn_timeout: f64,
    /// Seconds added to the turn timeout on an agent's first turn, for its
    /// setup after it learned the settings (0: none).
    #[arg(long, default_value_t = 10.0, help_heading = "Timeouts")]
    setup_timeout: f64,
    /// Seconds a session waits for its agents to join.
    #[arg(long, default_value_t = 60.0, help_heading = "Timeouts")]
    join_timeout: f64,
    /// Seconds an agent stream may stay open without playing a party.
    #[arg(long, default_value_t = 60.0, help_heading = "Timeouts")]
    unseated_stream_timeout: f64,
    /// Seconds a connection may stay open with no call in progress.
    #[arg(long, default_value_t = 120.0, help_heading = "Timeouts")]
    connection_idle_timeout: f64,
    /// Sessions running at once.
    #[arg(long, default_value_t = 10_000, help_heading = "Limits")]
    max_sessions: usize,
    /// Sessions one client address may have running or kept at once (its
    /// oldest finished result is dropped to make room).
    #[arg(long, default_value_t = 1_000, help_heading = "Limits")]
    max_sessions_per_client: usize,
    /// Agent streams one address may hold open before they join a party.
    #[arg(long, alias = "max-connections-per-client", default_value_t = 16, help_heading = "Limits")]
    max_unseated_streams_per_client: usize,
    /// Parties one agent stream may play at once.
    #[arg(long, default_value_t = 4_096, help_heading = "Limits")]
    max_seats_per_stream: usize,
    /// TCP connections at once (default: three quarters of the file
    /// descriptors, at most 4096).
    #[arg(long, help_heading = "Limits")]
    max_connections: Option<usize>,
    /// TCP connections from one address.
    #[arg(long, default_value_t = 256, help_heading = "Limits")]
    max_connections_per_address: usize,
    /// Largest message a client may send, in bytes.
    #[arg(long, default_value_t = 1 << 20, help_heading = "Limits")]
    max_message_bytes: usize,
    /// Estimated memory all running sessions may hold together, in MiB.
    #[arg(long, default_value_t = crate::core::limits::SESSION_MEMORY >> 20, help_heading = "Limits")]
    session_memory_mib: u64,
    /// Finished sessions kept for GetResult ...
    #[arg(long, default_value_t = 100_000, help_heading = "Limits")]
    keep_results: usize,
    /// ... and the MiB their results may take together.
    #[arg(long, default_value_t = 256, help_heading = "Limits")]
    keep_results_mib: u64,
    /// Parties of one scenario.
    #[arg(long, default_value_t = 16, help_heading = "Scenario limits")]
    max_parties: usize,
    /// Issues of one scenario.
    #[arg(long, default_value_t = 256, help_heading = "Scenario limits")]
    max_issues: usize,
    /// Values of one discrete issue, entries of one value table.
    #[arg(long, default_value_t = 65_536, help_heading = "Scenario limits")]
    max_values: usize,
    /// Values, table entries and rectangle bounds of one scenario, all parties together.
    #[arg(long, default_value_t = 1 << 20, help_heading = "Scenario limits")]
    max_cells: usize,
    /// Rectangles of one party's hyper-rectangle utility.
    #[arg(long, default_value_t = 10_000, help_heading = "Scenario limits")]
    max_rectangles: usize,
    /// Bytes of any name (scenario, issue, value, party).
    #[arg(long, default_value_t = 256, help_heading = "Scenario limits")]
    max_name_bytes: usize,
    /// Largest round deadline.
    #[arg(long, default_value_t = 10_000, help_heading = "Scenario limits")]
    max_rounds: u32,
    /// Largest wall-time deadline, and the longest any session runs, in seconds.
    #[arg(long, default_value_t = 3_600.0, help_heading = "Scenario limits")]
    max_session_seconds: f64,
}

fn seconds(name: &str, s: f64) -> Result<Duration, CliError> {
    Duration::try_from_secs_f64(s)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| CliError::Input(format!("--{name} must be a positive number of seconds")))
}

fn seconds_or_zero(name: &str, s: f64) -> Result<Duration, CliError> {
    if s == 0.0 { Ok(Duration::ZERO) } else { seconds(name, s) }
}

fn read(path: &PathBuf) -> Result<String, CliError> {
    std::fs::read_to_string(path).map_err(|e| CliError::Input(format!("{}: cannot read: {e}", path.display())))
}

pub fn serve(args: ServeArgs) -> Result<(), CliError> {
    let (listen, config, tls) = hosting(args, None, &[Role::Admin])?;
    serving_system()
        .block_on(async move {
            let listener = crate::net::transport::listen(listen, "--listen").await?;
            let interrupted = stop_signal(false)?;
            announce(&[("listening on", listener.local_addr()?)])?;
            // Sessions' arbiters start here, on the system's thread.
            server::serve(config, listener, tls, interrupted).await?;
            Ok(())
        })
        .map_err(CliError::Failure)
}

/// The runtime `serve` and `node` run in: an actix system (sessions are
/// actors) on a multi-threaded tokio runtime (tonic's handlers).
pub(super) fn serving_system() -> actix::SystemRunner {
    actix::System::with_tokio_rt(|| {
        tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a tokio runtime")
    })
}

/// Resolves on ctrl-c (and with `terminate`, on SIGTERM: how Kubernetes
/// stops a pod). The handlers are installed by this call, not when the
/// future is first polled: a script that signals as soon as it reads the
/// announcement stops the server rather than killing it.
pub(super) fn stop_signal(terminate: bool) -> std::io::Result<impl Future<Output = ()> + Send + 'static> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut term = if terminate { Some(signal(SignalKind::terminate())?) } else { None };
        Ok(async move {
            let term = async {
                match &mut term {
                    Some(t) => {
                        t.recv().await;
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = term => {}
            }
        })
    }
    #[cfg(not(unix))]
    {
        let _ = terminate;
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}

/// Prints where a server listens, `WHAT ADDR` a line, flushed at once:
/// scripts and tests wait for these lines before they dial.
pub(super) fn announce(lines: &[(&str, SocketAddr)]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    for (what, addr) in lines {
        writeln!(out, "{what} {addr}")?;
    }
    out.flush()
}

/// The listen address, limits, credentials and TLS material that `serve`
/// and `node` share; refuses to expose open calls beyond loopback.
pub fn hosting(
    args: ServeArgs,
    cluster_token: Option<String>,
    serves: &[Role],
) -> Result<(SocketAddr, ServerConfig, Option<TlsFiles>), CliError> {
    let positive = |name: &str, n: usize| {
        if n == 0 { Err(CliError::Input(format!("--{name} must be at least 1"))) } else { Ok(n) }
    };
    if !(args.max_session_seconds.is_finite() && args.max_session_seconds > 0.0) {
        return Err(CliError::Input("--max-session-seconds must be a positive number".into()));
    }
    if let Some(dir) = &args.models
        && !dir.is_dir()
    {
        return Err(CliError::Input(format!("--models: {} is not a folder", dir.display())));
    }
    let credentials = Credentials {
        admin: args.admin_token.and_then(Secret::new),
        cluster: cluster_token.and_then(Secret::new),
        training: None,
    };
    credentials.check_exposure(args.listen, args.insecure, serves).map_err(CliError::Input)?;
    let config = ServerConfig {
        turn_timeout: seconds("turn-timeout", args.turn_timeout)?,
        setup_allowance: seconds_or_zero("setup-timeout", args.setup_timeout)?,
        join_timeout: seconds("join-timeout", args.join_timeout)?,
        unseated_stream_timeout: seconds("unseated-stream-timeout", args.unseated_stream_timeout)?,
        max_sessions: positive("max-sessions", args.max_sessions)?,
        max_sessions_per_client: positive("max-sessions-per-client", args.max_sessions_per_client)?,
        max_unseated_streams_per_client: args.max_unseated_streams_per_client,
        max_seats_per_stream: positive("max-seats-per-stream", args.max_seats_per_stream)?,
        max_message_bytes: positive("max-message-bytes", args.max_message_bytes)?,
        credentials,
        connections: GateConfig {
            max_connections: match args.max_connections {
                Some(n) => positive("max-connections", n)?,
                None => GateConfig::default().max_connections,
            },
            max_per_client: positive("max-connections-per-address", args.max_connections_per_address)?,
            idle: seconds("connection-idle-timeout", args.connection_idle_timeout)?,
            ..GateConfig::default()
        },
        limits: Limits {
            max_parties: args.max_parties,
            max_issues: args.max_issues,
            max_values: args.max_values,
            max_cells: args.max_cells,
            max_rectangles: args.max_rectangles,
            max_name_bytes: args.max_name_bytes,
            max_rounds: args.max_rounds,
            max_seconds: args.max_session_seconds,
        },
        session_memory: args.session_memory_mib << 20,
        keep_results: args.keep_results,
        keep_result_bytes: args.keep_results_mib << 20,
        models: args.models,
        ..ServerConfig::default()
    };
    let tls = args.tls.files()?;
    // A server holds a descriptor per connection; start with all the
    // process may have.
    raise_fd_limit();
    Ok((args.listen, config, tls))
}

/// TLS for a client: the CA that signed the server, and optionally a client
/// certificate (mutual TLS). Shared by the session commands, agent and worker.
#[derive(clap::Args, Clone, Default)]
pub struct ClientTlsArgs {
    /// PEM CA that signed the server's certificate: connect over TLS.
    #[arg(long)]
    ca: Option<PathBuf>,
    /// PEM client certificate and key, for servers that require mutual TLS.
    #[arg(long, requires = "key")]
    cert: Option<PathBuf>,
    #[arg(long, requires = "cert")]
    key: Option<PathBuf>,
    /// Name to check the server's certificate against (default: its host).
    #[arg(long)]
    tls_domain: Option<String>,
}

impl ClientTlsArgs {
    pub fn read(&self) -> Result<Option<ClientTls>, CliError> {
        let Some(ca) = &self.ca else { return Ok(None) };
        ClientTls::read(ca, self.cert.as_deref(), self.key.as_deref(), self.tls_domain.clone())
            .map(Some)
            .map_err(CliError::Input)
    }
}

/// How a client reaches a node.
#[derive(clap::Args, Clone)]
pub struct ServerArgs {
    /// The server: HOST:PORT (https with --ca, else http), or a URL.
    #[arg(long, default_value = defaults::SERVE)]
    server: String,
    #[command(flatten)]
    tls: ClientTlsArgs,
    #[arg(long, env = "NEGOTIUM_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
}

impl ServerArgs {
    fn tls(&self) -> Result<Option<ClientTlsConfig>, CliError> {
        Ok(self.tls.read()?.map(|t| t.config()))
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
        /// The party that opens (the others follow in the scenario's order).
        #[arg(long, value_name = "PARTY")]
        first: Option<String>,
        /// `PARTY=NAME` or `PARTY={ type = ..., ... }`: the strategy of a
        /// local party, replacing the scenario's (repeatable).
        #[arg(long, value_name = "PARTY=STRATEGY")]
        strategy: Vec<String>,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// List the node's sessions.
    List {
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Print a finished session's result: the deal in plain words, or the
    /// whole record with --json.
    Result {
        session_id: String,
        /// The whole result record (JSON, with the trace).
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Print a session's actions as they happen, then its result.
    Watch {
        session_id: String,
        /// The result as its whole record (JSON).
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// End a running session now (it ends as aborted): with the owner token
    /// `session create` printed, or the admin token.
    Cancel {
        session_id: String,
        /// The owner token `session create` printed.
        #[arg(long, env = "NEGOTIUM_OWNER_TOKEN", hide_env_values = true)]
        owner_token: Option<String>,
        #[command(flatten)]
        server: ServerArgs,
    },
}

fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| CliError::Failure(e.into()))
}

/// A client's error as the command reports it: the server's own words,
/// once (a status, not the chain of errors that carried it).
fn remote(e: ClientError) -> CliError {
    match e {
        ClientError::Status(s) if s.code() == tonic::Code::InvalidArgument => CliError::Input(s.message().to_string()),
        ClientError::Status(s) => super::failure(format!("the server refused: {}", s.message())),
        ClientError::Address(message) => CliError::Input(format!("--server: {message}")),
        other => CliError::Failure(anyhow::Error::new(other)),
    }
}

pub fn session(cmd: SessionCommand) -> Result<(), CliError> {
    runtime()?.block_on(async move {
        match cmd {
            SessionCommand::Create { scenario, seed, first, strategy, server } => {
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
                    first_party: first.unwrap_or_default(),
                    strategies: strategy
                        .iter()
                        .map(|s| {
                            let (party, spec) = s
                                .split_once('=')
                                .ok_or_else(|| CliError::Input(format!("--strategy `{s}`: expected PARTY=STRATEGY")))?;
                            Ok(pb::PartyStrategy { party: party.trim().into(), strategy: spec.trim().into() })
                        })
                        .collect::<Result<_, CliError>>()?,
                };
                let r = client.create_session(req).await.map_err(|s| remote(s.into()))?.into_inner();
                outln!("session {}", r.session_id);
                for t in r.tokens {
                    outln!("token {} {}", t.party, t.token);
                }
                outln!("owner {}", r.owner_token);
            }
            SessionCommand::List { server } => {
                let channel = connect(&server.server, server.tls()?).await.map_err(remote)?;
                let mut client = management(channel, server.admin_token.clone());
                let mut page_token = String::new();
                loop {
                    let r = client
                        .list_sessions(pb::ListSessionsRequest { page_size: 0, page_token })
                        .await
                        .map_err(|s| remote(s.into()))?
                        .into_inner();
                    for s in r.sessions {
                        // A finished session says how it ended, never whom it
                        // waited for; an older server gives only `ended_by`.
                        let status = if !s.ending.is_empty() {
                            format!(" (ended: {})", s.ending)
                        } else if !s.ended_by.is_empty() {
                            format!(" (ended: {})", s.ended_by)
                        } else if s.state == "finished" || s.state == "finishing" {
                            String::new()
                        } else if !s.waiting_for.is_empty() {
                            format!(" (waiting for {})", s.waiting_for.join(", "))
                        } else {
                            String::new()
                        };
                        outln!("{}  {:<9} {}{status}", s.session_id, s.state, s.scenario);
                    }
                    if r.next_page_token.is_empty() {
                        break;
                    }
                    page_token = r.next_page_token;
                }
            }
            SessionCommand::Cancel { session_id, owner_token, server } => {
                let channel = connect(&server.server, server.tls()?).await.map_err(remote)?;
                management(channel, server.admin_token.clone())
                    .cancel_session(pb::CancelSessionRequest {
                        session_id: session_id.clone(),
                        owner_token: owner_token.unwrap_or_default(),
                    })
                    .await
                    .map_err(|s| remote(s.into()))?;
                outln!("session {session_id} cancelled");
            }
            SessionCommand::Result { session_id, json, server } => {
                let channel = connect(&server.server, server.tls()?).await.map_err(remote)?;
                let r = management(channel, server.admin_token.clone())
                    .get_result(pb::GetResultRequest { session_id })
                    .await
                    .map_err(|s| remote(s.into()))?
                    .into_inner();
                explain::print_record(&r.record_json, json);
            }
            SessionCommand::Watch { session_id, json, server } => {
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
                        Some(pb::session_event::Kind::Finished(r)) => explain::print_record(&r.record_json, json),
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
    /// Print the whole result record (JSON, with the trace) instead of the deal in plain words.
    #[arg(long)]
    json: bool,
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
            explain::print_record(&r.record_json, args.json);
        }
        Ok(())
    })
}
