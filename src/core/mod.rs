//! The pure core: domains, utility functions, the protocol, strategies and
//! analysis. No actix, tokio, tonic or burn here, no clock and no I/O besides
//! reading scenario text handed in by the caller: everything is a function of
//! its inputs and a seed.

pub mod agents;
pub mod analysis;
pub mod domain;
pub mod explain;
pub mod inverse;
pub mod limits;
pub mod protocol;
pub mod record;
pub mod rng;
pub mod scenario;
pub mod session;
pub mod strategy;
pub mod terms;
pub mod toml_error;
pub mod utility;
pub mod workload;
