//! Tournament files (TOML): who plays, on which scenarios, how often.
//!
//! ```toml
//! name = "time-dependent round robin"
//! strategies = ["boulware", "conceder", { type = "time-dependent", e = 0.5, label = "td-0.5" }]
//! scenarios = ["../scenarios/series-a.toml", "genius/party_domain"]   # relative to this file
//! workload = { name = "w1", seeds = [1, 2, 3] }   # built-in W domains (DESIGN.md)
//! repetitions = 5
//! self_play = true      # may a strategy meet itself (all parties the same)?
//! rotate_order = true   # every profile also opens the negotiation in turn
//! seed = 0
//! rounds = 100          # optional: overrides every scenario's round deadline
//! trace = false         # true: keep every offer in results.jsonl (W1: about 16 KB a
//!                       # negotiation; writing it costs several times the negotiation)
//! ```
//!
//! Errors name the file and line, as scenario errors do; a scenario that
//! fails to load is reported at the line that lists it, followed by its own
//! file:line.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::core::protocol::Deadline;
use crate::core::scenario::{Ctx, Party, Scenario, ScenarioError};
use crate::core::strategy::StrategySpec;
use crate::core::workload::Workload;

/// One strategy of the tournament, under the name it is reported by.
#[derive(Debug, Clone)]
pub struct Entrant {
    /// `label` if the file gives one, else the strategy as written
    /// (`boulware`, `time-dependent(e=0.5)`).
    pub label: String,
    pub spec: StrategySpec,
}

/// One scenario of the tournament, under a name unique within it.
#[derive(Debug, Clone)]
pub struct Venue {
    /// The scenario's name; a second scenario of the same name gets `#2`.
    pub label: String,
    pub scenario: Scenario,
}

/// A tournament file, loaded: strategies built and checked, scenarios read.
#[derive(Debug, Clone)]
pub struct Tournament {
    pub name: String,
    pub entrants: Vec<Entrant>,
    pub venues: Vec<Venue>,
    pub repetitions: u32,
    /// Whether an assignment may give every party the same strategy.
    pub self_play: bool,
    /// Whether each scenario is also played with its parties' turn order
    /// rotated, so that every profile opens in turn (NegMAS' `rotate_ufuns`).
    pub rotate_order: bool,
    pub seed: u64,
    /// Keep each negotiation's offers in its record.
    pub trace: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TournamentToml {
    name: String,
    strategies: Spanned<Vec<Spanned<toml::Value>>>,
    #[serde(default)]
    scenarios: Vec<Spanned<String>>,
    workload: Option<Spanned<WorkloadToml>>,
    repetitions: Option<Spanned<u32>>,
    #[serde(default = "yes")]
    self_play: bool,
    #[serde(default = "yes")]
    rotate_order: bool,
    #[serde(default)]
    seed: u64,
    rounds: Option<Spanned<u32>>,
    #[serde(default)]
    trace: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WorkloadToml {
    name: String,
    #[serde(default = "first_seed")]
    seeds: Vec<u64>,
}

fn yes() -> bool {
    true
}

fn first_seed() -> Vec<u64> {
    vec![1]
}

impl Tournament {
    /// Reads a tournament file and every scenario it names.
    pub fn load(path: &Path) -> Result<Self, ScenarioError> {
        let file = path.display().to_string();
        if path.is_dir() {
            // The same mistake as `run scenarios/`, said the same way.
            let message = match crate::import::load_folder(path) {
                Err(e) => format!("a tournament is a TOML file, not a folder; {}", e.message),
                Ok(_) => "a tournament is a TOML file; this folder is one scenario (give it to `negotium run`, \
                          or name it in a tournament's `scenarios`)"
                    .to_string(),
            };
            return Err(ScenarioError { file, line: None, message });
        }
        let text = std::fs::read_to_string(path).map_err(|e| ScenarioError {
            file: file.clone(),
            line: None,
            message: format!("cannot read: {e}"),
        })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Self::parse(&text, &file, &base)
    }

    /// Parses a tournament; scenario paths are taken relative to `base`.
    pub fn parse(text: &str, file: &str, base: &Path) -> Result<Self, ScenarioError> {
        let cx = Ctx { file, text };
        let raw: TournamentToml = toml::from_str(text).map_err(|e| {
            let (offset, msg) = crate::core::toml_error::explain(text, &e, &["repetitions", "rounds"]);
            cx.err(offset, msg)
        })?;

        let mut entrants: Vec<Entrant> = Vec::new();
        if raw.strategies.get_ref().is_empty() {
            return Err(cx.at(&raw.strategies, "`strategies` is empty: a tournament needs at least one strategy"));
        }
        for s in raw.strategies.get_ref() {
            let mut value = s.get_ref().clone();
            let label = match value.as_table_mut().map(|t| t.remove("label")) {
                Some(Some(toml::Value::String(l))) => Some(l),
                Some(Some(_)) => return Err(cx.at(s, "`label` must be a string")),
                _ => None,
            };
            let json = serde_json::to_value(&value).map_err(|e| cx.at(s, e.to_string()))?;
            let mut spec = StrategySpec::from_json(&json).map_err(|e| cx.at(s, e.to_string()))?;
            spec.relative_to(base);
            spec.validate().map_err(|e| cx.at(s, e.to_string()))?;
            let label = label.unwrap_or_else(|| spec.to_string());
            if label.trim().is_empty() {
                return Err(cx.at(s, "a strategy's label must not be empty"));
            }
            if entrants.iter().any(|e| e.label == label) {
                return Err(
                    cx.at(s, format!("strategy `{label}` is listed twice (give one a different `label` to run both)"))
                );
            }
            entrants.push(Entrant { label, spec });
        }

        let repetitions = match &raw.repetitions {
            Some(r) if *r.get_ref() == 0 => return Err(cx.at(r, "`repetitions` must be at least 1")),
            Some(r) => *r.get_ref(),
            None => 1,
        };
        if let Some(r) = raw.rounds.as_ref().filter(|r| *r.get_ref() == 0) {
            return Err(cx.at(r, "`rounds` must be at least 1"));
        }
        let rounds = raw.rounds.as_ref().map(|r| *r.get_ref());

        let mut scenarios: Vec<Scenario> = Vec::new();
        for s in &raw.scenarios {
            let path: PathBuf = base.join(s.get_ref());
            if let Some(message) =
                crate::import::missing("scenario", s.get_ref(), &path, &format!("the tournament file {file}"))
            {
                return Err(cx.at(s, message));
            }
            let scenario =
                crate::import::load_any(&path).map_err(|e| cx.at(s, format!("scenario `{}`: {e}", s.get_ref())))?;
            scenarios.push(scenario);
        }
        if let Some(w) = &raw.workload {
            let spec = w.get_ref();
            let Some(workload) = Workload::named(&spec.name) else {
                return Err(cx.at(w, format!("unknown workload `{}` (w1, w4)", spec.name)));
            };
            if spec.seeds.is_empty() {
                return Err(cx.at(w, "`workload.seeds` is empty"));
            }
            for &seed in &spec.seeds {
                scenarios.push(workload_scenario(&spec.name, Workload { seed, ..workload }));
            }
        }
        if scenarios.is_empty() {
            return Err(cx.err(Some(0), "no scenarios: give `scenarios = [\"file.toml\", ...]` and/or `workload`"));
        }

        let mut venues: Vec<Venue> = Vec::new();
        for mut scenario in scenarios {
            if let Some(r) = rounds {
                scenario.deadline = Deadline { rounds: Some(r), seconds: scenario.deadline.seconds };
            }
            let mut label = scenario.name.clone();
            let mut k = 1;
            while venues.iter().any(|v| v.label == label) {
                k += 1;
                label = format!("{}#{k}", scenario.name);
            }
            venues.push(Venue { label, scenario });
        }

        Ok(Tournament {
            name: raw.name,
            entrants,
            venues,
            repetitions,
            self_play: raw.self_play,
            rotate_order: raw.rotate_order,
            seed: raw.seed,
            trace: raw.trace,
        })
    }
}

/// Workload W's domain for one seed, as a two-party scenario: `A` (values
/// high, opens) and `B` (values low); the preferences of the peer's
/// negotiation 0 with that seed (`bench_tournament.py` builds the same).
fn workload_scenario(name: &str, w: Workload) -> Scenario {
    let [a, b] = w.preferences(0);
    let party = |name: &str, preferences| Party {
        name: name.into(),
        preferences,
        strategy: StrategySpec::named("boulware"),
        external: false,
    };
    Scenario {
        name: format!("{name}-seed{}", w.seed),
        description: format!("workload {name} (DESIGN.md), seed {}", w.seed),
        domain: w.domain(),
        parties: vec![party("A", a), party("B", b)],
        deadline: w.deadline(),
        seed: w.seed,
        presentation: Default::default(),
    }
}
