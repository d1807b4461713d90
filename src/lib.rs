//! negotium: automated negotiation at scale.
//!
//! Layers, top to bottom; a module uses only those below it:
//!
//! - [`cli`] — the `negotium` commands: parse arguments, build the runtime,
//!   bind ports, wait for signals, print for people, map errors to exit
//!   codes. The binary's, not an API (public only for `main`).
//! - [`learn`] — learned bidding policies: RL environment, burn model,
//!   PPO, parameter server and training workers (local threads, or over
//!   gRPC through [`net`]).
//! - [`tournament`] — strategies × scenarios × repetitions with role
//!   rotation, resumable, on whichever executor the command chose.
//! - [`store`] — results files (`run --out`, tournaments): appended as
//!   sessions finish, resumed only with the settings they were started with.
//! - [`net`] — the public gRPC API (`proto/negotium/v1`): the server that
//!   hosts sessions for external agents ([`net::server`]), a Rust client,
//!   multi-node runs (`negotium node` and the launcher, [`net::cluster`]),
//!   and the one door every server sits behind (credentials, connection
//!   and stream bounds: [`net::transport`]). Servers take bound listeners
//!   and a shutdown future, so tests start them in-process on port 0.
//! - [`engine`] — runs sessions: a direct loop for batch work, actix actors
//!   for sessions whose parties may live anywhere, one executor trait over
//!   both (and a cluster) for batches.
//! - [`import`] — scenarios from Genius XML and GeniusWeb JSON folders (and
//!   our TOML), for every command that takes a scenario; beside the engine,
//!   on [`core`] alone.
//! - [`core`] — pure negotiation logic, no I/O: domains ([`core::domain`]),
//!   utility functions ([`core::utility`]), the SAOP protocol
//!   ([`core::protocol`]), strategies ([`core::strategy`]), the native
//!   ANAC agents ([`core::agents`]), sessions
//!   ([`core::session`]), analysis ([`core::analysis`]), scenario files
//!   ([`core::scenario`]), what a scenario may cost ([`core::limits`]),
//!   result records ([`core::record`]) and the reference workload
//!   ([`core::workload`]).

pub mod cli;
pub mod core;
pub mod engine;
pub mod import;
pub mod learn;
pub mod net;
pub mod store;
pub mod tournament;
