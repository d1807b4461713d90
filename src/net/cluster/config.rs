//! Which nodes a launcher uses and how it places sessions on them.
//!
//! ```toml
//! # cluster.toml: either a static list…
//! nodes = ["node-0:7000", "node-1:7000", "node-2:7000"]
//! # …or DNS discovery: every A/AAAA record is a node; re-resolved while running
//! # discover = "negotium-nodes.negotium.svc.cluster.local:7000"
//! placement = "spread"   # "spread": each session on one node; "split": its parties on different nodes
//! window = 256           # sessions in flight per node (backpressure)
//! heartbeat_ms = 1000
//! node_timeout_ms = 5000 # a node silent this long is dead: its sessions re-run elsewhere
//!
//! # Nodes that serve TLS (`negotium node --tls-cert … [--client-ca …]`):
//! # paths are relative to this file.
//! [tls]
//! ca = "ca.pem"          # the CA that signed the nodes' certificates
//! cert = "launcher.pem"  # with key: a client certificate (nodes with --client-ca)
//! key = "launcher.key"
//! domain = "negotium-node"  # the name in the nodes' certificates (nodes are dialled by address)
//!
//! # The nodes' cluster token (`negotium node --cluster-token`): a file
//! # holding it, relative to this file; NEGOTIUM_CLUSTER_TOKEN or
//! # --cluster-token override it.
//! # token_file = "cluster.token"
//! ```

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::net::auth::Secret;
use crate::net::client::ClientTls;

/// Where the nodes are.
#[derive(Debug, Clone, PartialEq)]
pub enum Discovery {
    /// `host:port` of each node. Nodes that are down are retried while the
    /// run lasts, so one started late still gets work.
    Static(Vec<String>),
    /// A DNS name (a Kubernetes headless Service) and the port: every address
    /// it resolves to is a node; resolved again every few seconds.
    Dns(String),
}

/// How a session's parties are placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Each session runs whole on one node: no offer crosses the network
    /// (throughput).
    Spread,
    /// A session's parties sit on different nodes (as many as there are);
    /// every offer of a remote party crosses gRPC.
    Split,
}

impl std::str::FromStr for Placement {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "spread" => Ok(Placement::Spread),
            "split" => Ok(Placement::Split),
            other => Err(format!("unknown placement `{other}`; valid: spread, split")),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ClusterConfig {
    pub discovery: Discovery,
    pub placement: Placement,
    /// Sessions in flight per node.
    pub window: usize,
    /// How often the launcher and nodes exchange heartbeats.
    pub heartbeat: Duration,
    /// A node silent this long is taken for dead.
    pub node_timeout: Duration,
    /// Attempts per session before the run fails (a session that fails on
    /// every node is a bug or a bad input, not bad luck).
    pub max_attempts: u32,
    /// How long the run waits with no live node before giving up.
    pub no_node_timeout: Duration,
    /// Dial nodes over TLS.
    pub tls: Option<ClientTls>,
    /// The nodes' cluster token, sent on every work stream.
    pub token: Option<Secret>,
}

impl ClusterConfig {
    pub fn new(discovery: Discovery) -> Self {
        Self {
            discovery,
            placement: Placement::Spread,
            window: 256,
            heartbeat: Duration::from_millis(1000),
            node_timeout: Duration::from_millis(5000),
            max_attempts: 5,
            no_node_timeout: Duration::from_secs(30),
            tls: None,
            token: None,
        }
    }

    /// Every address `name:port` resolves to, resolved again while running.
    pub fn dns(name: &str) -> Result<Self, String> {
        check_address(name)?;
        Ok(Self::new(Discovery::Dns(name.to_string())))
    }

    /// `a:7000,b:7000`.
    pub fn from_list(list: &str) -> Result<Self, String> {
        let nodes: Vec<String> = list.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect();
        if nodes.is_empty() {
            return Err("--nodes: expected HOST:PORT[,HOST:PORT...]".into());
        }
        for n in &nodes {
            check_address(n)?;
        }
        Ok(Self::new(Discovery::Static(nodes)))
    }

    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::parse_in(&text, base).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        Self::parse_in(text, Path::new("."))
    }

    /// Parses a cluster file whose relative paths start at `base`.
    pub fn parse_in(text: &str, base: &Path) -> Result<Self, String> {
        let raw: ClusterToml = toml::from_str(text).map_err(|e| {
            crate::core::toml_error::explain_line(
                text,
                &e,
                &["window", "heartbeat_ms", "node_timeout_ms", "max_attempts"],
            )
        })?;
        let discovery = match (raw.nodes, raw.discover) {
            (Some(nodes), None) if !nodes.is_empty() => {
                for n in &nodes {
                    check_address(n)?;
                }
                Discovery::Static(nodes)
            }
            (None, Some(name)) => {
                check_address(&name)?;
                Discovery::Dns(name)
            }
            (Some(_), Some(_)) => return Err("give either `nodes` or `discover`, not both".into()),
            _ => return Err("no nodes: give `nodes = [\"host:port\", ...]` or `discover = \"name:port\"`".into()),
        };
        let mut c = Self::new(discovery);
        if let Some(p) = raw.placement {
            c.placement = p.parse()?;
        }
        if let Some(w) = raw.window {
            if w == 0 {
                return Err("`window` must be at least 1".into());
            }
            c.window = w;
        }
        if let Some(ms) = raw.heartbeat_ms {
            c.heartbeat = Duration::from_millis(ms.max(10));
        }
        if let Some(ms) = raw.node_timeout_ms {
            c.node_timeout = Duration::from_millis(ms.max(50));
        }
        if c.node_timeout <= c.heartbeat {
            return Err("`node_timeout_ms` must exceed `heartbeat_ms`".into());
        }
        if let Some(n) = raw.max_attempts {
            c.max_attempts = n.max(1);
        }
        if let Some(s) = raw.no_node_timeout_s {
            c.no_node_timeout = Duration::from_secs_f64(s.max(0.1));
        }
        // Written paths lead somewhere, or the error says where they led.
        let found = |what: &str, written: &str| {
            let path = base.join(written);
            match crate::import::missing(what, written, &path, "the cluster file") {
                Some(message) => Err(message),
                None => Ok(path),
            }
        };
        if let Some(t) = raw.tls {
            found("`tls.ca`", &t.ca)?;
            for p in [&t.cert, &t.key].into_iter().flatten() {
                found("`tls.cert`/`tls.key`", p)?;
            }
            let at = |p: &Option<String>| p.as_ref().map(|p| base.join(p));
            let (cert, key) = (at(&t.cert), at(&t.key));
            c.tls = Some(ClientTls::read(&base.join(&t.ca), cert.as_deref(), key.as_deref(), t.domain)?);
        }
        if let Some(f) = raw.token_file {
            let path = found("`token_file`", &f)?;
            let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
            c.token =
                Some(Secret::new(text.trim()).ok_or_else(|| format!("{}: the token file is empty", path.display()))?);
        }
        Ok(c)
    }

    /// The node addresses known now (DNS: resolved now). A failed lookup
    /// says why; the launcher's core decides what it means (pods come and
    /// go) and when to say so.
    pub async fn resolve(&self) -> Result<Vec<String>, String> {
        match &self.discovery {
            Discovery::Static(nodes) => Ok(nodes.clone()),
            Discovery::Dns(name) => match tokio::net::lookup_host(name.as_str()).await {
                Ok(addrs) => {
                    let mut v: Vec<String> = addrs.map(|a| a.to_string()).collect();
                    v.sort();
                    v.dedup();
                    Ok(v)
                }
                Err(e) => Err(format!("{}: {e}", crate::net::untrusted::shown(name))),
            },
        }
    }
}

/// `host:port`, with a host of DNS-name or IP characters: what a node may
/// be told to dial (a node never dials a URL, a path or a long string it
/// was sent).
pub(crate) fn check_address(a: &str) -> Result<(), String> {
    let fine = |h: &str| {
        h.len() <= 253 && h.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '[' | ']'))
    };
    if a.contains("://") {
        return Err(format!(
            "`{}` is not HOST:PORT: give a node without a scheme (TLS settings choose https)",
            crate::net::untrusted::shown(a)
        ));
    }
    match a.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && fine(host) && port.parse::<u16>().is_ok() => Ok(()),
        _ => Err(format!("`{}` is not HOST:PORT", crate::net::untrusted::shown(a))),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClusterToml {
    nodes: Option<Vec<String>>,
    discover: Option<String>,
    placement: Option<String>,
    window: Option<usize>,
    heartbeat_ms: Option<u64>,
    node_timeout_ms: Option<u64>,
    max_attempts: Option<u32>,
    no_node_timeout_s: Option<f64>,
    tls: Option<TlsToml>,
    token_file: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsToml {
    ca: String,
    cert: Option<String>,
    key: Option<String>,
    domain: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_and_lists() {
        let c = ClusterConfig::parse("nodes = [\"a:7000\", \"b:7001\"]\nplacement = \"split\"\nwindow = 8\n").unwrap();
        assert_eq!(c.discovery, Discovery::Static(vec!["a:7000".into(), "b:7001".into()]));
        assert_eq!(c.placement, Placement::Split);
        assert_eq!(c.window, 8);
        let d = ClusterConfig::parse("discover = \"nodes.svc:7000\"").unwrap();
        assert_eq!(d.discovery, Discovery::Dns("nodes.svc:7000".into()));
        assert_eq!(d.placement, Placement::Spread);
        for bad in [
            "",
            "nodes = []",
            "nodes = [\"a\"]",
            "nodes = [\"a:1\"]\ndiscover = \"b:2\"",
            "nodes = [\"a:1\"]\nplacement = \"scatter\"",
            "nodes = [\"a:1\"]\nwindow = 0",
            "nodes = [\"a:1\"]\nspeed = 2",
            "nodes = [\"a:1\"]\nheartbeat_ms = 500\nnode_timeout_ms = 400",
        ] {
            assert!(ClusterConfig::parse(bad).is_err(), "accepted: {bad}");
        }
        assert!(ClusterConfig::from_list("a:1, b:2").is_ok());
        assert!(ClusterConfig::from_list("a").is_err());
        for bad in ["http://a:1", "a/b:1", "a b:1", "a:99999"] {
            assert!(check_address(bad).is_err(), "accepted {bad}");
        }
        assert!(check_address("[::1]:7000").is_ok() && check_address("node-0.nodes.svc:7000").is_ok());
    }
}
