//! How every negotium gRPC server meets the network — `serve`, `node` and
//! `ps` alike: the [`gate`](super::gate) (connection caps and timeouts),
//! TLS, the [`Guard`](super::auth::Guard) (credentials), and HTTP/2 limits.
//! One function, so that no server can be started without them.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tonic::service::Routes;
use tonic::transport::{Server, ServerTlsConfig};

use super::auth::{Credentials, GuardLayer};
use super::gate::Gate;

/// TLS material as PEM text.
#[derive(Debug, Clone, Default)]
pub struct TlsFiles {
    pub cert: String,
    pub key: String,
    /// Requiring client certificates signed by this CA (mutual TLS).
    pub client_ca: Option<String>,
}

/// Everything about how a server is reached, beside its services.
#[derive(Clone)]
pub struct Exposure {
    pub tls: Option<TlsFiles>,
    pub credentials: Credentials,
    pub gate: Arc<Gate>,
}

/// Where the binary's servers listen, and its clients dial, unless told
/// otherwise: all on loopback, so that nothing beyond this machine reaches
/// a role left open by accident (`--listen 0.0.0.0:PORT` opens a server up,
/// and then needs its tokens or `--insecure`: `Credentials::check_exposure`).
pub mod defaults {
    /// `serve` and `node` (`--listen`); `session`, `agent` (`--server`).
    pub const SERVE: &str = "127.0.0.1:7000";
    /// `ps` (`--listen`); `worker` (`--ps`).
    pub const PS: &str = "127.0.0.1:7100";
    /// `bench-api` (`--listen`): a free port, picked at each run.
    pub const BENCH_API: &str = "127.0.0.1:0";
}

/// Binds a listener for `flag` (the option that named the address, e.g.
/// `--listen`), every server's one way to bind: the error names the address
/// and the option, and says what the failure usually means.
pub async fn listen(addr: std::net::SocketAddr, flag: &str) -> Result<TcpListener, ListenError> {
    TcpListener::bind(addr).await.map_err(|cause| ListenError { addr, flag: flag.to_string(), cause })
}

/// A server could not bind its address.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr} ({flag}): {}", listen_hint(.cause))]
pub struct ListenError {
    pub addr: std::net::SocketAddr,
    pub flag: String,
    /// Not a `source`: the message already says it, once.
    pub cause: std::io::Error,
}

fn listen_hint(e: &std::io::Error) -> String {
    use std::io::ErrorKind;
    match e.kind() {
        ErrorKind::AddrInUse => "the address is already in use (another process holds the port: stop it, or choose another port; port 0 picks a free one)".into(),
        ErrorKind::AddrNotAvailable => "this machine has no such address".into(),
        ErrorKind::PermissionDenied => "permission denied (ports below 1024 need privileges)".into(),
        _ => e.to_string(),
    }
}

/// Calls open at once on one connection.
const STREAMS_PER_CONNECTION: u32 = 256;
/// Header bytes a call may carry (a token is well under 1 KiB).
const MAX_HEADER_BYTES: u32 = 16 << 10;

/// Serves `routes` on `listener` until `shutdown` completes.
pub async fn serve(
    routes: Routes,
    listener: TcpListener,
    exposure: Exposure,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    let mut builder = Server::builder()
        .http2_keepalive_interval(Some(Duration::from_secs(20)))
        .http2_keepalive_timeout(Some(Duration::from_secs(20)))
        .tcp_keepalive(Some(Duration::from_secs(60)))
        .max_concurrent_streams(Some(STREAMS_PER_CONNECTION))
        .http2_max_header_list_size(MAX_HEADER_BYTES);
    if let Some(t) = exposure.tls {
        let mut tls = ServerTlsConfig::new()
            .identity(tonic::transport::Identity::from_pem(t.cert, t.key))
            // A handshake that has not finished by then is a slow client
            // holding a socket.
            .timeout(Duration::from_secs(10));
        if let Some(ca) = t.client_ca {
            tls = tls.client_ca_root(tonic::transport::Certificate::from_pem(ca));
        }
        builder = builder.tls_config(tls)?;
    }
    builder
        .layer(GuardLayer::new(exposure.credentials))
        .add_routes(routes)
        .serve_with_incoming_shutdown(exposure.gate.incoming(listener), shutdown)
        .await
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_default_address_is_loopback() {
        for a in [super::defaults::SERVE, super::defaults::PS, super::defaults::BENCH_API] {
            let addr: std::net::SocketAddr = a.parse().unwrap();
            assert!(addr.ip().is_loopback(), "{a}");
        }
    }
}
