//! `negotium node`, and the `--cluster` / `--nodes` / `--discover` options
//! that make `run` and `tournament` launch their sessions on nodes.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::CliError;
use super::api::{ServeArgs, announce, hosting, serving_system, stop_signal};
use crate::net::auth::{Role, Secret};
use crate::net::client::ClientTls;
use crate::net::cluster::config::{ClusterConfig, Placement};
use crate::net::cluster::node::{self, NodeListeners, NodeOptions};

#[derive(clap::Args)]
pub struct NodeArgs {
    #[command(flatten)]
    serve: ServeArgs,
    /// Serve the cluster service (launchers, other nodes) on this address
    /// only, apart from the public agent port of --listen.
    #[arg(long, value_name = "ADDR")]
    cluster_listen: Option<SocketAddr>,
    /// HOST:PORT where other nodes reach this one (default: the address the
    /// launcher dialled). In Kubernetes: the pod's name in the headless Service.
    #[arg(long)]
    advertise: Option<String>,
    /// Serve Prometheus metrics (/metrics) and a readiness check (/healthz) here.
    #[arg(long, value_name = "ADDR")]
    metrics: Option<SocketAddr>,
    /// Token launchers (and other nodes) must show to use this node's
    /// cluster service; without it the admin token serves for both.
    #[arg(long, env = "NEGOTIUM_CLUSTER_TOKEN", hide_env_values = true)]
    cluster_token: Option<String>,
    /// On SIGTERM, seconds to let running sessions finish before stopping.
    #[arg(long, default_value_t = 30.0)]
    drain_seconds: f64,
    /// PEM CA that signed the other nodes' certificates: dial them over TLS
    /// (needed when nodes serve TLS and parties are split).
    #[arg(long)]
    peer_ca: Option<PathBuf>,
    /// PEM client certificate and key shown to other nodes (mutual TLS).
    #[arg(long, requires = "peer_key", requires = "peer_ca")]
    peer_cert: Option<PathBuf>,
    #[arg(long, requires = "peer_cert")]
    peer_key: Option<PathBuf>,
    /// Name to check the other nodes' certificates against.
    #[arg(long, requires = "peer_ca")]
    peer_tls_domain: Option<String>,
}

pub fn node(args: NodeArgs) -> Result<(), CliError> {
    let insecure = args.serve.insecure;
    // Without a port of its own the cluster service shares the public one.
    let public: &[Role] = if args.cluster_listen.is_some() { &[Role::Admin] } else { &[Role::Admin, Role::Cluster] };
    let (listen, config, tls) = hosting(args.serve, args.cluster_token, public)?;
    if let Some(addr) = args.cluster_listen {
        config.credentials.check_exposure(addr, insecure, &[Role::Admin, Role::Cluster]).map_err(CliError::Input)?;
    }
    let drain = Duration::try_from_secs_f64(args.drain_seconds)
        .map_err(|_| CliError::Input("--drain-seconds must be a number of seconds".into()))?;
    let peer_tls = match &args.peer_ca {
        Some(ca) => Some(
            ClientTls::read(ca, args.peer_cert.as_deref(), args.peer_key.as_deref(), args.peer_tls_domain.clone())
                .map_err(CliError::Input)?,
        ),
        None => None,
    };
    let options = NodeOptions {
        listen,
        cluster_listen: args.cluster_listen,
        peer_tls,
        advertise: args.advertise.unwrap_or_default(),
        metrics: args.metrics,
        config,
        tls,
        drain,
    };
    serving_system()
        .block_on(async move {
            let listeners = NodeListeners::bind(&options).await?;
            let stopped = stop_signal(true)?;
            let mut lines = Vec::new();
            if let Some(m) = &listeners.metrics {
                lines.push(("metrics on", m.local_addr()?));
            }
            lines.push(("listening on", listeners.public.local_addr()?));
            if let Some(c) = &listeners.cluster {
                lines.push(("cluster on", c.local_addr()?));
            }
            announce(&lines)?;
            node::run(options, listeners, stopped).await
        })
        .map_err(CliError::Failure)
}

/// Where a launcher finds its nodes.
#[derive(clap::Args, Clone, Default)]
pub struct ClusterArgs {
    /// Run the sessions on the nodes of this cluster file (see deploy/cluster.toml).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["nodes", "discover"])]
    cluster: Option<PathBuf>,
    /// Run the sessions on these `negotium node`s: HOST:PORT,HOST:PORT,...
    #[arg(long, value_name = "LIST", conflicts_with = "discover")]
    nodes: Option<String>,
    /// Run the sessions on every address NAME resolves to (a Kubernetes
    /// headless Service), resolved again while running: NAME:PORT.
    #[arg(long, value_name = "NAME:PORT")]
    discover: Option<String>,
    /// spread: each session on one node; split: a session's parties on
    /// different nodes (overrides the cluster file).
    #[arg(long, value_parser = ["spread", "split"])]
    placement: Option<String>,
    /// Sessions in flight per node (overrides the cluster file).
    #[arg(long)]
    window: Option<usize>,
    /// The nodes' cluster token (overrides the cluster file's `token_file`).
    #[arg(long, env = "NEGOTIUM_CLUSTER_TOKEN", hide_env_values = true)]
    cluster_token: Option<String>,
}

impl ClusterArgs {
    /// The cluster to launch on, if any option names one.
    pub fn config(&self) -> Result<Option<ClusterConfig>, CliError> {
        let mut config = match (&self.cluster, &self.nodes, &self.discover) {
            (Some(path), _, _) => ClusterConfig::load(path).map_err(CliError::Input)?,
            (_, Some(list), _) => ClusterConfig::from_list(list).map_err(CliError::Input)?,
            (_, _, Some(name)) => ClusterConfig::dns(name).map_err(CliError::Input)?,
            _ => {
                if self.placement.is_some() || self.window.is_some() {
                    return Err(CliError::Input(
                        "--placement and --window need --cluster, --nodes or --discover".into(),
                    ));
                }
                return Ok(None);
            }
        };
        if let Some(p) = &self.placement {
            config.placement = p.parse::<Placement>().map_err(CliError::Input)?;
        }
        if let Some(w) = self.window {
            if w == 0 {
                return Err(CliError::Input("--window must be at least 1".into()));
            }
            config.window = w;
        }
        if let Some(t) = self.cluster_token.clone().and_then(Secret::new) {
            config.token = Some(t);
        }
        Ok(Some(config))
    }
}

/// Prints what a launcher waits for, as it happens (stderr: stdout holds
/// the results and summary).
pub fn show_notice(notice: &crate::net::cluster::launcher::Notice) {
    let kind = if notice.is_warning() { "warning" } else { "note" };
    eprintln!("{kind}: {notice}");
}

/// The runtime a launcher's shell runs on: the command owns it, the library
/// only spawns onto it. Two threads: the shell is one task, the rest is the
/// nodes' streams.
pub fn launcher_runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| CliError::Failure(e.into()))
}
