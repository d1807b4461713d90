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
