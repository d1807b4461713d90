//! The network layer: the public gRPC API (`proto/negotium/v1`).
//!
//! - [`pb`] — code generated from the proto files.
//! - [`convert`] — core types to and from their wire form, with every value
//!   an agent sends checked against the domain.
//! - [`external`] — the party endpoint behind which an external agent sits.
//! - [`server`] — `negotium serve`: sessions, agents, security and limits.
//! - [`client`] — a Rust client; an external agent is a few lines with it.
//! - [`cluster`] — multi-node runs: `negotium node`, the launcher, remote
//!   parties, metrics.

pub mod client;
pub mod cluster;
pub mod convert;
pub mod external;
pub mod server;

/// Generated from `proto/negotium/v1/negotiation.proto`.
#[allow(clippy::all, missing_docs)]
pub mod pb {
    tonic::include_proto!("negotium.v1");
}
