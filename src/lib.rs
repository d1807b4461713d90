//! negotium: automated negotiation at scale.
//!
//! Layers, dependencies pointing down only:
//!
//! - [`cli`] — the `negotium` commands; the only place that prints for people.
//! - [`learn`] — learned bidding policies: RL environment, burn model,
//!   PPO, parameter server and training workers (local or over gRPC).
//! - [`net`] — the public gRPC API (`proto/negotium/v1`): `negotium serve`,
//!   external agents, a Rust client, multi-node runs ([`net::cluster`]), and
//!   the one door every server sits behind (credentials, connection and
//!   stream bounds: [`net::transport`]).
//! - [`tournament`] — strategies × scenarios × repetitions with role
//!   rotation, resumable, on whichever executor the command chose.
//! - [`store`] — results files (`run --out`, tournaments): appended as
//!   sessions finish, resumed only with the settings they were started with.
//! - [`engine`] — runs sessions: a direct loop for batch work, actix actors
//!   for sessions whose parties may live anywhere, one executor trait over
//!   both (and a cluster) for batches.
//! - [`import`] — scenarios from Genius XML and GeniusWeb JSON folders (and
//!   our TOML), for every command that takes a scenario.
//! - [`core`] — pure negotiation logic: domains ([`core::domain`]), utility
//!   functions ([`core::utility`]), the SAOP protocol ([`core::protocol`]),
//!   strategies ([`core::strategy`]), sessions ([`core::session`]), analysis
//!   ([`core::analysis`]), scenario files ([`core::scenario`]), what a
//!   scenario may cost ([`core::limits`]), result records
//!   ([`core::record`]) and the reference workload ([`core::workload`]).

pub mod cli;
pub mod core;
pub mod engine;
pub mod import;
pub mod learn;
pub mod net;
pub mod store;
pub mod tournament;
