//! negotium: automated negotiation at scale.
//!
//! Layers, dependencies pointing down only:
//!
//! - [`cli`] — the `negotium` commands; the only place that prints for people.
//! - [`learn`] — learned bidding policies: RL environment, burn model,
//!   PPO, parameter server and training workers (local or over gRPC).
//! - [`net`] — the public gRPC API (`proto/negotium/v1`): `negotium serve`,
//!   external agents, and a Rust client.
//! - [`tournament`] — strategies × scenarios × repetitions with role
//!   rotation, resumable, on the direct engine.
//! - [`engine`] — runs sessions: a direct loop for batch work, actix actors
//!   for sessions whose parties may live anywhere.
//! - [`import`] — scenarios from Genius XML and GeniusWeb JSON folders (and
//!   our TOML), for every command that takes a scenario.
//! - [`core`] — pure negotiation logic: domains ([`core::domain`]), utility
//!   functions ([`core::utility`]), the SAOP protocol ([`core::protocol`]),
//!   strategies ([`core::strategy`]), sessions ([`core::session`]), analysis
//!   ([`core::analysis`]), scenario files ([`core::scenario`]), result
//!   records ([`core::record`]) and the reference workload
//!   ([`core::workload`]).
//!
//! Planned (see DESIGN.md): multi-node runs in `net`.

pub mod cli;
pub mod core;
pub mod engine;
pub mod import;
pub mod learn;
pub mod net;
pub mod tournament;
