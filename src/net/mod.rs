//! The network layer: the public gRPC API (`proto/negotium/v1`).
//!
//! - [`pb`] — code generated from the proto files.
//! - [`convert`] — core types to and from their wire form, with every value
//!   an agent sends checked against the domain.
//! - [`server`] — `negotium serve`: hosting sessions, the management calls,
//!   agent streams, serving on bound listeners until a shutdown future;
//!   [`registry`] — the sessions a node knows and the memory they hold;
//!   [`external`] — the party endpoint behind which an external agent sits.
//! - Every server's door: [`transport`] (one function that serves), with
//!   [`gate`] (connection caps and timeouts), [`auth`] (credentials per
//!   call), [`outbound`] (streams bounded in bytes) and [`untrusted`]
//!   (callers' strings in logs and errors).
//! - [`client`] — a Rust client; an external agent is a few lines with it.
//! - [`agent_host`] — Python strategies: sessions whose Python parties an
//!   agent host process (`negotium-agents`) plays over the API.
//! - [`cluster`] — multi-node runs: `negotium node`, the launcher, remote
//!   parties, metrics.

pub mod agent_host;
pub mod auth;
pub mod client;
pub mod cluster;
pub mod convert;
pub mod external;
pub mod gate;
pub mod outbound;
pub mod registry;
pub mod server;
pub mod transport;
pub mod untrusted;

/// Generated from `proto/negotium/v1/negotiation.proto`.
#[allow(clippy::all, missing_docs)]
pub mod pb {
    tonic::include_proto!("negotium.v1");
}
