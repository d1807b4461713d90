//! The outcome space behind a negotiation plot: the scenario's outcomes in
//! the first two parties' utilities, and its analysis. A record names its
//! scenario only, so the scenario comes from `--scenario`, or from a scenario
//! file found next to the results (or in ./scenarios) whose name and parties
//! are the record's. Either way the record's offers must have the utilities
//! the scenario gives them, or the plot would mislead.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use super::input::Record;
use super::shown;
use crate::cli::{CliError, load_scenario};
use crate::core::analysis::Analysis;
use crate::core::domain::{Cardinality, ENUMERATION_LIMIT};
use crate::core::rng::SplitMix64;
use crate::core::scenario::Scenario;
use crate::core::utility::Preferences;

/// Outcomes drawn for spaces that are not enumerated.
const CLOUD_SAMPLE: usize = 50_000;
/// Above this many outcomes the cloud is thinned to one point per cell of a
/// fine grid (1/250 of the unit square's side, about 3 pixels): the picture is the same and
/// the SVG stays small.
const CLOUD_EXACT_MAX: usize = 5_000;
const CLOUD_GRID: f64 = 250.0;
/// Recorded and recomputed utilities of an offer may differ by this much.
const TOLERANCE: f64 = 1e-6;

pub struct Space {
    pub path: PathBuf,
    pub analysis: Analysis,
    /// (u_first, u_second) of every outcome (or of a sample), thinned.
    pub cloud: Vec<(f64, f64)>,
    /// Outcomes behind the cloud, and whether they are a sample.
    pub cloud_from: usize,
    pub cloud_sampled: bool,
    pub outcomes: String,
    scenario: Scenario,
    prefs: Vec<std::sync::Arc<Preferences>>,
}

impl Space {
    fn build(path: PathBuf, scenario: Scenario) -> Self {
        let prefs = scenario.preferences();
        let refs: Vec<&Preferences> = prefs.iter().map(|p| p.as_ref()).collect();
        let analysis = Analysis::run(&scenario.domain, &refs, scenario.seed);
        let d = &scenario.domain;
        let enumerated = match d.cardinality() {
            Cardinality::Finite(n) if n <= ENUMERATION_LIMIT => {
                match (prefs[0].utility.utilities_of_all(d), prefs[1].utility.utilities_of_all(d)) {
                    (Some(a), Some(b)) => Some(a.into_iter().zip(b).collect::<Vec<_>>()),
                    _ => None,
                }
            }
            _ => None,
        };
        let (points, sampled) = match enumerated {
            Some(p) => (p, false),
            None => {
                let mut rng = SplitMix64::new(scenario.seed);
                let mut sample: Vec<(f64, f64)> = prefs
                    .iter()
                    .filter_map(|p| p.utility.best_outcome_hint(d))
                    .map(|o| (prefs[0].utility(d, &o), prefs[1].utility(d, &o)))
                    .collect();
                while sample.len() < CLOUD_SAMPLE {
                    let o = d.random_outcome(&mut rng);
                    sample.push((prefs[0].utility(d, &o), prefs[1].utility(d, &o)));
                }
                (sample, true)
            }
        };
        let cloud_from = points.len();
        let cloud = if points.len() <= CLOUD_EXACT_MAX {
            points
        } else {
            let mut seen = HashSet::new();
            points
                .into_iter()
                .filter_map(|(x, y)| {
                    let cell = ((x * CLOUD_GRID).round() as i64, (y * CLOUD_GRID).round() as i64);
                    seen.insert(cell).then(|| (cell.0 as f64 / CLOUD_GRID, cell.1 as f64 / CLOUD_GRID))
                })
                .collect()
        };
        Self {
            path,
            outcomes: analysis.outcomes.clone(),
            analysis,
            cloud,
            cloud_from,
            cloud_sampled: sampled,
            scenario,
            prefs,
        }
    }

    pub fn parties(&self) -> Vec<&str> {
        self.scenario.parties.iter().map(|p| p.name.as_str()).collect()
    }

    /// Whether `record` was negotiated on this space: same parties, and every
    /// recorded offer has the utilities this scenario gives it.
    fn check(&self, record: &Record) -> Result<(), String> {
        let ours = self.parties();
        if ours != record.parties {
            return Err(format!("its parties are {ours:?}, the record's are {:?}", record.parties));
        }
        let d = &self.scenario.domain;
        for t in &record.trace {
            let (Some(outcome), Some(recorded)) = (&t.outcome, &t.utilities) else { continue };
            let o =
                d.parse_outcome(outcome).map_err(|e| format!("the offer of round {} does not fit: {e}", t.round))?;
            let computed: Vec<f64> = self.prefs.iter().map(|p| p.utility(d, &o)).collect();
            if computed.len() != recorded.len() || computed.iter().zip(recorded).any(|(a, b)| (a - b).abs() > TOLERANCE)
            {
                return Err(format!(
                    "the offer of round {} has utilities {} in the record but {} in this scenario",
                    t.round,
                    fmt(recorded),
                    fmt(&computed)
                ));
            }
        }
        Ok(())
    }
}

fn fmt(u: &[f64]) -> String {
    let parts: Vec<String> = u.iter().map(|x| format!("{x:.4}")).collect();
    format!("({})", parts.join(", "))
}

/// The scenario as the record's negotiation saw it: its parties in the
/// record's order (a tournament rotates who opens) and with the record's
/// `reservation_values` where it has them.
fn as_negotiated(scenario: &Scenario, record: &Record) -> Result<Scenario, String> {
    let ours: Vec<&str> = scenario.parties.iter().map(|p| p.name.as_str()).collect();
    let mut sorted_ours = ours.clone();
    sorted_ours.sort_unstable();
    let mut sorted_theirs: Vec<&str> = record.parties.iter().map(String::as_str).collect();
    sorted_theirs.sort_unstable();
    if sorted_ours != sorted_theirs {
        return Err(format!("its parties are {ours:?}, the record's are {:?}", record.parties));
    }
    let mut s = scenario.clone();
    s.parties = record
        .parties
        .iter()
        .map(|name| scenario.parties.iter().find(|p| p.name == *name).cloned().expect("same names"))
        .collect();
    if let Some(rv) = &record.reservation_values
        && rv.len() == s.parties.len()
    {
        for (party, &r) in s.parties.iter_mut().zip(rv) {
            if party.preferences.reservation_value != r {
                let mut prefs = (*party.preferences).clone();
                prefs.reservation_value = r;
                party.preferences = std::sync::Arc::new(prefs);
            }
        }
    }
    Ok(s)
}

/// What makes two records share a space: scenario, party order, reservation values.
type Key = (String, Vec<String>, Vec<u64>);

fn key_of(record: &Record) -> Key {
    let rv = record.reservation_values.iter().flatten().map(|r| r.to_bits()).collect();
    (record.scenario.clone(), record.parties.clone(), rv)
}

/// Spaces by scenario, built once each.
pub struct Spaces {
    explicit: Option<PathBuf>,
    explicit_scenario: Option<Scenario>,
    /// Folders searched for a scenario file when none is given.
    search: Vec<PathBuf>,
    /// Scenario files found there, read once: (path, name, parties sorted).
    catalogue: Option<Vec<(PathBuf, String, Vec<String>)>>,
    built: HashMap<Key, Option<Rc<Space>>>,
}

impl Spaces {
    pub fn new(explicit: Option<PathBuf>, results: &Path) -> Self {
        let near = results.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let mut search = vec![near.to_path_buf(), near.join("scenarios"), PathBuf::from("scenarios")];
        if let Some(up) = near.parent() {
            search.push(up.join("scenarios"));
        }
        let mut seen = HashSet::new();
        search.retain(|p| seen.insert(p.canonicalize().unwrap_or_else(|_| p.clone())));
        Self { explicit, explicit_scenario: None, search, catalogue: None, built: HashMap::new() }
    }

    /// The space of `record` (called `id`), with notes for the user. With
    /// `strict` (one plot asked for), a `--scenario` that does not fit is an
    /// error; else that record is plotted without its space.
    pub fn for_record(
        &mut self,
        record: &Record,
        id: &str,
        strict: bool,
    ) -> Result<(Option<Rc<Space>>, Vec<String>), CliError> {
        let mut notes = Vec::new();
        let key = key_of(record);
        if let Some(path) = self.explicit.clone() {
            if self.explicit_scenario.is_none() {
                self.explicit_scenario = Some(load_scenario(&path)?);
            }
            let scenario = self.explicit_scenario.as_ref().expect("loaded above");
            let fitted = match self.built.get(&key) {
                Some(Some(space)) => space.check(record).map(|()| space.clone()),
                _ => as_negotiated(scenario, record).and_then(|s| {
                    let space = Rc::new(Space::build(path.clone(), s));
                    space.check(record).map(|()| space)
                }),
            };
            return match fitted {
                Ok(space) => {
                    self.built.insert(key, Some(space.clone()));
                    Ok((Some(space), notes))
                }
                Err(why) => {
                    let msg = format!(
                        "--scenario {} does not fit negotiation {id} (scenario `{}`): {why}",
                        path.display(),
                        record.scenario
                    );
                    if strict {
                        return Err(CliError::Input(msg));
                    }
                    notes.push(format!("{msg}; plotted without the outcome space"));
                    Ok((None, notes))
                }
            };
        }
        if let Some(s) = self.built.get(&key) {
            return Ok((s.clone(), notes));
        }
        let found = self.find(record);
        match &found {
            Some(s) => notes.push(format!(
                "scenario `{}` read from {} (found by name; --scenario chooses another)",
                record.scenario,
                shown(&s.path)
            )),
            None => notes.push(format!(
                "the record names its scenario (`{}`) but not its file: plotted without the outcome space, \
                 Pareto frontier, Nash and Kalai–Smorodinsky points; pass --scenario PATH to add them",
                record.scenario
            )),
        }
        self.built.insert(key, found.clone());
        Ok((found, notes))
    }

    fn find(&mut self, record: &Record) -> Option<Rc<Space>> {
        let search = &self.search;
        let catalogue = self.catalogue.get_or_insert_with(|| {
            let mut files: Vec<PathBuf> = search
                .iter()
                .filter_map(|dir| std::fs::read_dir(dir).ok())
                .flat_map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())))
                .filter(|p| p.extension().is_some_and(|e| e == "toml") && p.is_file())
                .take(500)
                .collect();
            files.sort();
            files
                .into_iter()
                .filter_map(|path| {
                    let text = std::fs::read_to_string(&path).ok()?;
                    let s = Scenario::parse(&text, &path.display().to_string()).ok()?;
                    let mut parties: Vec<String> = s.parties.iter().map(|p| p.name.clone()).collect();
                    parties.sort_unstable();
                    Some((path, s.name, parties))
                })
                .collect()
        });
        let mut wanted = record.parties.clone();
        wanted.sort_unstable();
        for (path, name, parties) in catalogue.iter() {
            if *name != record.scenario || *parties != wanted {
                continue;
            }
            let Ok(scenario) = crate::import::load_any(path) else { continue };
            let Ok(scenario) = as_negotiated(&scenario, record) else { continue };
            let space = Space::build(path.clone(), scenario);
            if space.check(record).is_ok() {
                return Some(Rc::new(space));
            }
        }
        None
    }
}
