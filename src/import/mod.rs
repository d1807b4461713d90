//! Scenarios from the files researchers have: our TOML, Genius XML and
//! GeniusWeb JSON (a folder holding a domain and its profiles).
//!
//! [`load_any`] is what every command that takes a scenario calls; a folder
//! becomes a [`Scenario`] and [`toml_out`] writes one back as scenario TOML.
//!
//! Choices, each one tested in `tests/import.rs`:
//!
//! - A folder is Genius when it holds `.xml` files and GeniusWeb when it holds
//!   `.json` files (both at once is refused). Inside, files are told apart by
//!   content: the domain is the `<negotiation_template>` document (Genius) or
//!   the object with `issuesValues` (GeniusWeb); profiles are `<utility_space>`
//!   documents or `{"LinearAdditiveUtilitySpace": …}` objects. A file that is
//!   not XML at all (the `pareto.xml` tables next to the ANAC 2014 domains) is
//!   skipped with a warning; malformed XML is an error.
//! - Parties are the profiles in file-name order, named by their file stems;
//!   every party plays `boulware`; the deadline is 100 rounds (neither format
//!   carries one); the seed is 0. The scenario and its domain are named after
//!   the folder.
//! - Weights that do not sum to 1 (y2016/SYAgent's `JapanTrip_util1.xml` sums
//!   to 1.0999999999999999, the 2011–2013 Laptop profiles to 1.0000518) are
//!   loaded as written, as GENIUS and GeniusWeb do, with a warning naming the
//!   file and the sum; they are never renormalised silently. Scenario TOML
//!   demands weights that sum to 1, so [`toml_out`] refuses to write such a
//!   party unless asked to renormalise (`negotium import --renormalize-weights`),
//!   which it then records in a comment (and says instead of the warning).
//! - A Genius issue whose evaluations are all zero is refused, naming the file
//!   and the element: dividing by the largest evaluation is undefined there
//!   (GENIUS silently gives every value 0). This refuses the real folder
//!   y2015/group4-zoning_plan.

pub mod genius;
pub mod geniusweb;
pub mod toml_out;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::core::domain::Domain;
use crate::core::protocol::Deadline;
use crate::core::scenario::{Party, Scenario, ScenarioError, WEIGHT_TOLERANCE};
use crate::core::strategy::StrategySpec;
use crate::core::utility::{Preferences, UtilityFunction};

/// Deadline of an imported scenario: neither format carries one.
pub const DEFAULT_ROUNDS: u32 = 100;

/// Strategy every imported party plays until told otherwise.
pub const DEFAULT_STRATEGY: &str = "boulware";

/// A TOML scenario file, or a folder of Genius XML / GeniusWeb JSON files;
/// profiles whose weights miss 1 are loaded as written, with a warning
/// (see [`WeightSum`]).
pub fn load_any(path: &Path) -> Result<Scenario, ScenarioError> {
    let (scenario, sums) = load_noting_weights(path)?;
    for w in sums {
        tracing::warn!("{w}; loaded as written (as GENIUS does), so utilities may leave [0, 1]");
    }
    Ok(scenario)
}

/// A profile whose linear-additive weights do not sum to 1, by its file.
/// The loader only notes it: what becomes of the weights is the caller's
/// to say (`import --renormalize-weights` writes them divided by the sum,
/// everything else keeps them as written).
#[derive(Debug, Clone, PartialEq)]
pub struct WeightSum {
    pub file: String,
    pub party: String,
    pub sum: f64,
}

impl std::fmt::Display for WeightSum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: weights sum to {:?}, not 1", self.file, self.sum)
    }
}

/// [`load_any`] without the warnings: the weight sums that miss 1, returned.
pub fn load_noting_weights(path: &Path) -> Result<(Scenario, Vec<WeightSum>), ScenarioError> {
    if path.is_dir() {
        return load_folder(path);
    }
    Ok((load_file(path)?, Vec::new()))
}

fn load_file(path: &Path) -> Result<Scenario, ScenarioError> {
    let file = path.display().to_string();
    if let Some(ext) = extension(path).filter(|e| e == "xml" || e == "json") {
        let kind = if ext == "xml" { "Genius XML" } else { "GeniusWeb JSON" };
        return Err(error(
            &file,
            None,
            format!(
                "a single {kind} file is not a scenario: pass the folder that holds the domain and its profiles{}",
                path.parent().map(|p| format!(" ({})", p.display())).unwrap_or_default()
            ),
        ));
    }
    let text = std::fs::read_to_string(path).map_err(|e| error(&file, None, format!("cannot read: {e}")))?;
    Scenario::parse(&text, &file)
}

/// A folder holding one domain and its profiles, Genius or GeniusWeb, and
/// its profiles' weight sums that miss 1.
pub fn load_folder(dir: &Path) -> Result<(Scenario, Vec<WeightSum>), ScenarioError> {
    let folder = dir.display().to_string();
    let entries = std::fs::read_dir(dir).map_err(|e| error(&folder, None, format!("cannot read folder: {e}")))?;
    let mut files: Vec<PathBuf> = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| error(&folder, None, format!("cannot read folder: {e}")))?;
        let path = entry.path();
        if path.is_file() {
            files.push(path);
        }
    }
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    let xml: Vec<PathBuf> = files.iter().filter(|p| extension(p).as_deref() == Some("xml")).cloned().collect();
    let json: Vec<PathBuf> = files.iter().filter(|p| extension(p).as_deref() == Some("json")).cloned().collect();
    match (xml.is_empty(), json.is_empty()) {
        (true, true) => Err(error(&folder, None, not_a_domain(dir, &files))),
        (false, false) => Err(error(
            &folder,
            None,
            format!(
                "the folder mixes Genius XML ({} files) and GeniusWeb JSON ({} files); keep one format per folder",
                xml.len(),
                json.len()
            ),
        )),
        (false, true) => checked(&folder, genius::load_folder(dir, &xml)?, &xml),
        (true, false) => checked(&folder, geniusweb::load_folder(dir, &json)?, &json),
    }
}

/// Why a folder with no `.xml` or `.json` file is no scenario, saying what
/// it does hold: a folder of scenario files (`scenarios/`) or of domains
/// (`y2012/`) is the usual mistake, and the way out is one of its entries.
fn not_a_domain(dir: &Path, files: &[PathBuf]) -> String {
    const SHOWN: usize = 5;
    let names = |paths: &[PathBuf]| {
        let mut list: Vec<String> = paths.iter().take(SHOWN).map(|p| file_stem_with_ext(p)).collect();
        if paths.len() > SHOWN {
            list.push(format!("… {} more", paths.len() - SHOWN));
        }
        list.join(", ")
    };
    let mut folders: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|it| it.flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect())
        .unwrap_or_default();
    folders.sort();
    let toml: Vec<PathBuf> = files.iter().filter(|p| extension(p).as_deref() == Some("toml")).cloned().collect();
    let others = files.len() - toml.len();
    let mut held: Vec<String> = Vec::new();
    if !toml.is_empty() {
        held.push(format!("{} .toml file{}: {}", toml.len(), plural(toml.len()), names(&toml)));
    }
    if !folders.is_empty() {
        held.push(format!("{} folder{}: {}", folders.len(), plural(folders.len()), names(&folders)));
    }
    if others > 0 {
        held.push(format!("{others} other file{}", plural(others)));
    }
    let advice = match (toml.is_empty(), folders.is_empty()) {
        (false, true) => "; give one of them, or a tournament file that names them",
        (true, false) => "; give one of them, if it is a domain folder",
        (false, false) => "; give one scenario file or domain folder, or a tournament file",
        (true, true) => "",
    };
    let what = if held.is_empty() { "it is empty".to_string() } else { format!("it holds {}", held.join(", ")) };
    format!("not a Genius or GeniusWeb domain folder (no .xml or .json file in it); {what}{advice}")
}

fn file_stem_with_ext(p: &Path) -> String {
    p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| p.display().to_string())
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// The check every scenario passes, whichever format it came in
/// ([`Scenario::check`]); the importers' own checks name the file and line.
/// Also notes the weight sums, naming each party's profile file (parties
/// are named by their files' stems).
fn checked(folder: &str, s: Scenario, files: &[PathBuf]) -> Result<(Scenario, Vec<WeightSum>), ScenarioError> {
    s.check().map_err(|e| error(folder, None, e))?;
    let mut sums = Vec::new();
    for p in &s.parties {
        if let UtilityFunction::LinearAdditive { weights, .. } = &p.preferences.utility {
            let sum: f64 = weights.iter().sum();
            if (sum - 1.0).abs() > WEIGHT_TOLERANCE {
                let file = files.iter().find(|f| file_stem(f) == p.name);
                let file = file.map_or_else(|| format!("{folder} (party `{}`)", p.name), |f| f.display().to_string());
                sums.push(WeightSum { file, party: p.name.clone(), sum });
            }
        }
    }
    Ok((s, sums))
}

fn extension(path: &Path) -> Option<String> {
    path.extension().map(|e| e.to_string_lossy().to_ascii_lowercase())
}

/// `None` where `resolved` exists; else what a person needs to fix a path
/// written in one of our files (a tournament's scenarios, a cluster file's
/// certificates; `what` it was, e.g. "scenario"): what was written, where
/// that led, and the rule that led there (`relative_to`: paths in a file
/// are relative to that file, whatever the working directory, so that a
/// file means the same wherever it is run from).
pub fn missing(what: &str, written: &str, resolved: &Path, relative_to: &str) -> Option<String> {
    if resolved.exists() {
        return None;
    }
    Some(format!(
        "{what} `{written}` (resolved to {}, relative to {relative_to}): no such file or folder",
        absolute(resolved).display()
    ))
}

/// `path` made absolute with `.` and `..` folded away: what a message shows.
fn absolute(path: &Path) -> PathBuf {
    use std::path::Component;
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut out = PathBuf::new();
    for c in abs.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

pub(crate) fn error(file: &str, line: Option<usize>, message: impl Into<String>) -> ScenarioError {
    ScenarioError { file: file.to_string(), line, message: message.into() }
}

/// A file's text: UTF-8 (byte-order mark dropped), or Latin-1 where it is not
/// UTF-8 (older Genius files declare ISO-8859-1).
pub(crate) fn read_text(path: &Path) -> Result<String, ScenarioError> {
    let file = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| error(&file, None, format!("cannot read: {e}")))?;
    Ok(decode(&bytes))
}

/// See [`read_text`]; public so that the fuzz tests feed raw bytes.
pub fn decode(bytes: &[u8]) -> String {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_string(),
        Err(_) => bytes.iter().map(|&b| b as char).collect(),
    }
}

pub(crate) fn file_stem(path: &Path) -> String {
    path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| path.display().to_string())
}

pub(crate) fn folder_name(dir: &Path) -> String {
    let canonical = dir.canonicalize().ok();
    canonical
        .as_deref()
        .unwrap_or(dir)
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| dir.display().to_string())
}

/// The scenario an imported folder becomes: the domain and the scenario are
/// named after the folder, parties after their profile files.
pub(crate) fn scenario(
    name: String,
    description: String,
    mut domain: Domain,
    parties: Vec<(String, Preferences)>,
) -> Scenario {
    domain.name = name.clone();
    Scenario {
        name,
        description,
        domain: Arc::new(domain),
        parties: parties
            .into_iter()
            .map(|(name, preferences)| Party {
                name,
                preferences: Arc::new(preferences),
                strategy: StrategySpec::named(DEFAULT_STRATEGY),
                external: false,
            })
            .collect(),
        deadline: Deadline::rounds(DEFAULT_ROUNDS),
        seed: 0,
        presentation: Default::default(),
    }
}
