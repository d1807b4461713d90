//! Tournaments: strategies × scenarios × repetitions, with role rotation.
//!
//! - [`config`] — the tournament file (TOML): strategies, scenarios (files,
//!   Genius / GeniusWeb folders, built-in workload W), repetitions, options.
//! - [`plan`] — every session it holds, under a stable key and seed.
//! - [`runner`] — hands sessions to the executor the command chose (each
//!   party's outcome index shared per scenario where sessions run in this
//!   process), and streams result lines.
//! - [`summary`] — rows read from result lines; per-strategy means;
//!   results.csv, summary.csv and summary.md.
//! - [`significance`] — bootstrap intervals of means and of their
//!   differences: which gaps in a ranking are real.
//!
//! results.jsonl is a [`crate::store`] file, as `run --out` writes; `negotium
//! tournament` (src/cli/tournament.rs) ties them together.

pub mod config;
pub mod plan;
pub mod runner;
pub mod significance;
pub mod summary;

pub use config::{Entrant, Tournament, Venue};
pub use plan::{Planned, plan};
pub use summary::{Row, StrategyStats, summarize};
