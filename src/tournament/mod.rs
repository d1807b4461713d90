//! Tournaments: strategies × scenarios × repetitions, with role rotation.
//!
//! - [`config`] — the tournament file (TOML): strategies, scenarios (files,
//!   Genius / GeniusWeb folders, built-in workload W), repetitions, options.
//! - [`plan`] — every session it holds, under a stable key and seed.
//! - [`runner`] — runs sessions on the direct engine on every core, each
//!   party's outcome index shared per scenario, and streams result lines.
//! - [`store`] — results.jsonl: appended as sessions finish, read back to
//!   resume a tournament that was stopped (a partial last line is cut).
//! - [`summary`] — rows read from result lines; per-strategy means;
//!   results.csv, summary.csv and summary.md.
//!
//! `negotium tournament` (src/cli/tournament.rs) ties them together.

pub mod config;
pub mod plan;
pub mod runner;
pub mod store;
pub mod summary;

pub use config::{Entrant, Tournament, Venue};
pub use plan::{Planned, plan};
pub use summary::{Row, StrategyStats, summarize};
