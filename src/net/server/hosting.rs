//! Serving: the arbiters a node's sessions live on, and the public API on
//! listeners the caller bound, until a shutdown future completes.
//!
//! Nothing here binds an address, builds a runtime or waits for a signal:
//! the binary does (see `cli`), and a test starts a server in-process on
//! port 0 with a oneshot for its shutdown.

use std::future::Future;

use actix::Arbiter;
use tokio::net::TcpListener;
use tonic::service::Routes;

use super::{NegotiationService, ServerConfig, TlsFiles};
use crate::net::gate::Gate;
use crate::net::pb::cluster_server::ClusterServer;
use crate::net::pb::negotiation_server::NegotiationServer;
use crate::net::transport::{self, Exposure};

/// Largest message the server sends: a result's record carries its whole
/// trace (the round cap bounds it), far above what clients may send.
const MAX_SENT_MESSAGE: usize = 64 << 20;

/// A node's session hosting: the service and the arbiters its sessions live on.
pub struct Hosting {
    pub service: NegotiationService,
    /// The threads sessions live on; stopped when serving ends (the service
    /// holds only their handles).
    arbiters: Vec<Arbiter>,
}

impl Hosting {
    /// Call on the thread of a running actix system (it starts the arbiters
    /// that host sessions there).
    pub fn start(config: ServerConfig) -> Self {
        let arbiters: Vec<Arbiter> = (0..config.arbiters.max(1)).map(|_| Arbiter::new()).collect();
        let handles = arbiters.iter().map(Arbiter::handle).collect();
        Self { service: NegotiationService::new(config, handles), arbiters }
    }

    /// The public API as routes, with this server's message limits.
    pub fn routes(&self) -> Routes {
        Routes::new(
            NegotiationServer::new(self.service.clone())
                .max_decoding_message_size(self.service.config().max_message_bytes)
                .max_encoding_message_size(MAX_SENT_MESSAGE),
        )
    }

    /// How this server meets the network: its TLS, credentials and gate.
    pub fn exposure(&self, tls: Option<TlsFiles>) -> Exposure {
        Exposure {
            tls,
            credentials: self.service.config().credentials.clone(),
            gate: Gate::new(self.service.config().connections.clone()),
        }
    }

    /// Serves the public API (and, on a cluster node, the cluster service)
    /// on `listener` until `shutdown` completes; the future may be spawned
    /// anywhere.
    pub async fn serve(
        self,
        listener: TcpListener,
        tls: Option<TlsFiles>,
        cluster: Option<ClusterServer<crate::net::cluster::node::NodeService>>,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), tonic::transport::Error> {
        let mut routes = self.routes();
        if let Some(c) = cluster {
            routes = routes.add_service(c);
        }
        self.serve_many(vec![(listener, routes)], tls, shutdown).await
    }

    /// Serves each listener its routes (a node's public port and its
    /// cluster port), each behind its own gate, until `shutdown`.
    pub async fn serve_many(
        self,
        listeners: Vec<(TcpListener, Routes)>,
        tls: Option<TlsFiles>,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), tonic::transport::Error> {
        // One shutdown, many servers: a watch channel every server awaits.
        let (stop, stopped) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            shutdown.await;
            let _ = stop.send(true);
        });
        let servers: Vec<_> = listeners
            .into_iter()
            .map(|(listener, routes)| {
                let mut stopped = stopped.clone();
                let exposure = self.exposure(tls.clone());
                tokio::spawn(transport::serve(routes, listener, exposure, async move {
                    let _ = stopped.wait_for(|s| *s).await;
                }))
            })
            .collect();
        let mut result = Ok(());
        for s in servers {
            match s.await {
                Ok(Err(e)) if result.is_ok() => result = Err(e),
                _ => {}
            }
        }
        for a in self.arbiters {
            a.stop();
        }
        result
    }
}

/// Serves on `listener` until `shutdown` completes. Call it on the thread
/// of a running actix system (see [`Hosting::start`]); the returned future
/// may then be spawned anywhere.
pub fn serve(
    config: ServerConfig,
    listener: TcpListener,
    tls: Option<TlsFiles>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> impl Future<Output = Result<(), tonic::transport::Error>> + Send {
    Hosting::start(config).serve(listener, tls, None, shutdown)
}
