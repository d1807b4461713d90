//! Scenarios from the files researchers have: our TOML, Genius XML and
//! GeniusWeb JSON (a folder holding a domain and its profiles).
//!
//! [`load_any`] is what every command that takes a scenario calls.

use std::path::Path;

use crate::core::scenario::{Scenario, ScenarioError};

/// A TOML scenario file, or a folder of Genius XML / GeniusWeb JSON files.
pub fn load_any(path: &Path) -> Result<Scenario, ScenarioError> {
    let file = path.display().to_string();
    if path.is_dir() {
        return Err(ScenarioError { file, line: None, message: "importing folders is not implemented yet".into() });
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| ScenarioError { file: file.clone(), line: None, message: format!("cannot read: {e}") })?;
    Scenario::parse(&text, &file)
}
