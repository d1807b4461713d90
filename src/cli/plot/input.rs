//! Reading a results file: one JSON record per line, as `negotium run --out`
//! and `negotium tournament` write them. Every problem with the file is bad
//! input (exit 2) and names the line.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value as Json;

use crate::cli::CliError;

/// What every line is read as first: enough to pick lines and the mode.
#[derive(Debug, Default, Deserialize)]
pub struct Head {
    #[serde(default)]
    pub session: Option<Json>,
    #[serde(default)]
    pub key: Option<Json>,
    #[serde(default)]
    pub tournament: Option<Json>,
}

impl Head {
    /// Whether `--session N` names this line (by `session`, or a tournament's `key`).
    pub fn is(&self, n: &str) -> bool {
        [&self.session, &self.key].into_iter().flatten().any(|v| id_text(v) == n)
    }
}

/// One action of the trace.
#[derive(Debug, Deserialize)]
pub struct TraceEntry {
    #[serde(default)]
    pub round: u64,
    pub party: usize,
    #[serde(default)]
    pub outcome: Option<Json>,
    /// Every party's (undiscounted) utility of the offer; offers only.
    #[serde(default)]
    pub utilities: Option<Vec<f64>>,
}

/// One negotiation, as the negotiation plot needs it.
#[derive(Debug, Deserialize)]
pub struct Record {
    #[serde(default)]
    pub session: Option<Json>,
    #[serde(default)]
    pub key: Option<Json>,
    #[serde(default)]
    pub scenario: String,
    pub parties: Vec<String>,
    #[serde(default)]
    pub strategies: Vec<String>,
    #[serde(default)]
    pub agreement: Option<Json>,
    #[serde(default)]
    pub utilities: Vec<f64>,
    #[serde(default)]
    pub undiscounted_utilities: Option<Vec<f64>>,
    #[serde(default)]
    pub rounds: Option<u64>,
    #[serde(default)]
    pub offers: Option<u64>,
    #[serde(default)]
    pub ended_by: Option<String>,
    #[serde(default)]
    pub ended_by_party: Option<usize>,
    #[serde(default)]
    pub violation: Option<Json>,
    #[serde(default)]
    pub distance_to_pareto: Option<f64>,
    #[serde(default)]
    pub distance_to_nash: Option<f64>,
    #[serde(default)]
    pub distance_to_kalai_smorodinsky: Option<f64>,
    #[serde(default)]
    pub pareto_efficient: Option<bool>,
    #[serde(default)]
    pub analysis_exact: Option<bool>,
    /// Tournaments may set other reservation values than the scenario's.
    #[serde(default)]
    pub reservation_values: Option<Vec<f64>>,
    /// The deal in words (records since units came to scenarios).
    #[serde(default)]
    pub explanation: Option<crate::core::explain::Explanation>,
    #[serde(default)]
    pub trace: Vec<TraceEntry>,
    #[serde(default)]
    pub trace_truncated: bool,
}

impl Record {
    /// What names this negotiation: its tournament key, its session, or its line.
    pub fn id(&self, line: usize) -> String {
        self.key.as_ref().or(self.session.as_ref()).map(id_text).unwrap_or_else(|| format!("line {line}"))
    }

    /// Utilities of the agreement (or of no agreement) as the analysis sees
    /// them: undiscounted.
    pub fn point(&self) -> &[f64] {
        self.undiscounted_utilities.as_deref().unwrap_or(&self.utilities)
    }
}

/// One negotiation, as the tournament plot needs it (the trace is skipped).
#[derive(Debug, Deserialize)]
pub struct Score {
    #[serde(default)]
    pub scenario: String,
    pub parties: Vec<String>,
    #[serde(default)]
    pub strategies: Vec<String>,
    #[serde(default)]
    pub assignment: Option<Json>,
    #[serde(default)]
    pub tournament: Option<Json>,
    #[serde(default)]
    pub agreement: Option<Json>,
    pub utilities: Vec<f64>,
    #[serde(default)]
    pub welfare: Option<f64>,
    #[serde(default)]
    pub distance_to_nash: Option<f64>,
}

impl Score {
    /// Each party's strategy: the tournament's `assignment` where it names one
    /// per party (`{party: strategy}` or a list), else `strategies`.
    pub fn strategy_of(&self, party: usize) -> Option<String> {
        let from_assignment = match &self.assignment {
            Some(Json::Object(map)) => self.parties.get(party).and_then(|name| map.get(name)).and_then(strategy_text),
            Some(Json::Array(list)) if list.len() == self.parties.len() => list.get(party).and_then(strategy_text),
            _ => None,
        };
        from_assignment.or_else(|| self.strategies.get(party).cloned())
    }
}

fn strategy_text(v: &Json) -> Option<String> {
    match v {
        Json::String(s) => Some(s.clone()),
        Json::Object(o) => o.get("name").or_else(|| o.get("label")).and_then(|n| n.as_str()).map(str::to_string),
        _ => None,
    }
}

/// `7` for 7, `abc` for "abc": how a user types an id on the command line.
pub fn id_text(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Calls `f(line number, line, head)` for each non-blank line of `path`.
/// Fails on a file that cannot be read, a line that is not a JSON object,
/// and a file without records.
pub fn each_line(
    path: &Path,
    mut f: impl FnMut(usize, &str, Head) -> Result<Flow, CliError>,
) -> Result<usize, CliError> {
    let shown = path.display();
    let file = File::open(path).map_err(|e| CliError::Input(format!("cannot read {shown}: {e}")))?;
    let mut records = 0;
    for (k, line) in BufReader::new(file).lines().enumerate() {
        let n = k + 1;
        let line = line.map_err(|e| CliError::Input(format!("{shown}:{n}: cannot read: {e}")))?;
        let text = line.trim();
        if text.is_empty() {
            continue;
        }
        let head: Head = parse(path, n, text)?;
        records += 1;
        if let Flow::Stop = f(n, text, head)? {
            break;
        }
    }
    if records == 0 {
        return Err(CliError::Input(format!(
            "{shown}: no records (the file is empty; expected one JSON object per line, \
             as `negotium run --out` writes)"
        )));
    }
    Ok(records)
}

/// Whether [`each_line`] goes on.
pub enum Flow {
    Continue,
    Stop,
}

/// Parses one line, with an error that says where and what is wrong.
pub fn parse<T: DeserializeOwned>(path: &Path, n: usize, text: &str) -> Result<T, CliError> {
    let shown = path.display();
    if !text.starts_with('{') {
        let start: String = text.chars().take(40).collect();
        return Err(CliError::Input(format!(
            "{shown}:{n}: not a JSON object (starts with `{start}`); expected one negotiation record per line"
        )));
    }
    serde_json::from_str(text).map_err(|e| {
        let what = if e.is_data() { "not a negotiation record" } else { "not valid JSON" };
        CliError::Input(format!("{shown}:{n}: {what}: {e}"))
    })
}
