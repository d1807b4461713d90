//! What a scenario may cost, and how much of it the rest of the core may
//! spend.
//!
//! Two kinds of bound live here:
//!
//! - **Budgets** that hold everywhere, local runs included: a sampled
//!   analysis or a sampled outcome index materialises `sample × issues`
//!   values and evaluates every sampled outcome for every party, so the
//!   sample shrinks as issues, parties or the cost of evaluating a utility
//!   grow ([`sample_size`]). Without this a 2,000-issue domain asked for
//!   200,000 outcomes × 2,000 values (6.4 GB) in one analysis. The result
//!   says how many outcomes were evaluated and why.
//! - **[`Limits`]** a server admits a scenario under (issues, values,
//!   parties, names, deadline), and [`Footprint`]: what a session of a
//!   scenario holds while it runs and what its end-of-session analysis
//!   needs, estimated before anything is built, so that a server can refuse
//!   work it has no memory for instead of finding out.

use super::domain::{Cardinality, Domain, ENUMERATION_LIMIT, Issue};
use super::inverse::Inverse;
use super::protocol::Deadline;
use super::scenario::Scenario;
use super::utility::{Preferences, UtilityFunction, ValueFunction};

/// Values (one per issue per outcome) one sample may materialise: 64 MiB of
/// `Value`s.
pub const VALUE_CELLS: usize = 4 << 20;
/// Utilities (one per party per outcome) one analysis table may hold. Two
/// parties over the largest enumerable space (2^22 outcomes) fit exactly.
pub const UTILITY_CELLS: usize = 8 << 20;
/// Elementary evaluation steps (one weighted value, or one rectangle bound)
/// one sample may cost: about a second of one core.
pub const EVAL_STEPS: u64 = 1 << 30;

/// Estimated bytes the sessions running at once may hold together, by
/// default: a server's `--session-memory-mib`, and a local run on the actor
/// engine.
pub const SESSION_MEMORY: u64 = 2 << 30;

/// Bytes of one `Value` and the per-outcome overhead of an `Outcome`
/// (an `Arc<[Value]>`: pointer, length, two counts).
const VALUE_BYTES: u64 = 16;
const OUTCOME_BYTES: u64 = 48;

/// Steps to evaluate one outcome under `p`.
pub fn eval_steps(p: &Preferences) -> u64 {
    match &p.utility {
        UtilityFunction::LinearAdditive { weights, .. } => weights.len().max(1) as u64,
        UtilityFunction::HyperRectangles { rectangles, .. } => {
            rectangles.iter().map(|r| 1 + (r.includes.len() + r.excludes.len()) as u64).sum::<u64>().max(1)
        }
    }
}

/// How many outcomes a sample of `wanted` may really hold for `parties`
/// over `domain` (at least 1): the smallest of `wanted` and what the value,
/// utility and evaluation budgets allow.
pub fn sample_size(wanted: usize, domain: &Domain, parties: &[&Preferences]) -> usize {
    let issues = domain.issues.len().max(1);
    let steps: u64 = parties.iter().map(|p| eval_steps(p)).sum::<u64>().max(1);
    wanted
        .min(VALUE_CELLS / issues)
        .min(UTILITY_CELLS / parties.len().max(1))
        .min(usize::try_from(EVAL_STEPS / steps).unwrap_or(usize::MAX))
        .max(1)
}

/// Why a sample is smaller than asked, for notes in results (`None` when
/// it is not).
pub fn sample_note(wanted: usize, got: usize, domain: &Domain, parties: usize) -> Option<String> {
    (got < wanted).then(|| {
        format!(
            "{got} outcomes instead of {wanted}: the domain has {} issues and {parties} parties, and one sample is kept under {} values, {} utilities and {} evaluation steps",
            domain.issues.len(),
            VALUE_CELLS,
            UTILITY_CELLS,
            EVAL_STEPS
        )
    })
}

/// Whether an analysis enumerates the space (else it samples): small enough
/// to enumerate, and its utility table within [`UTILITY_CELLS`].
pub fn analysis_enumerates(domain: &Domain, parties: usize) -> bool {
    match domain.cardinality() {
        Cardinality::Finite(n) => {
            n <= ENUMERATION_LIMIT && n.saturating_mul(parties.max(1) as u128) <= UTILITY_CELLS as u128
        }
        Cardinality::Infinite => false,
    }
}

/// What a server admits. Every number is configurable (`negotium serve
/// --help`); the defaults leave the ANAC and GeniusWeb domains far inside.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    pub max_parties: usize,
    pub max_issues: usize,
    /// Values of one discrete issue, and entries of one value table.
    pub max_values: usize,
    /// Discrete values, table entries and rectangle bounds, all parties
    /// together.
    pub max_cells: usize,
    /// Rectangles of one party's hyper-rectangle utility.
    pub max_rectangles: usize,
    /// Bytes of any name (scenario, issue, value, party).
    pub max_name_bytes: usize,
    /// Deadline caps: a session ends by then at the latest.
    pub max_rounds: u32,
    pub max_seconds: f64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_parties: 16,
            max_issues: 256,
            max_values: 1 << 16,
            max_cells: 1 << 20,
            max_rectangles: 10_000,
            max_name_bytes: 256,
            max_rounds: 10_000,
            max_seconds: 3_600.0,
        }
    }
}

impl Limits {
    /// Checks `s` against every limit; the error names the limit and the
    /// option that raises it.
    pub fn admit(&self, s: &Scenario) -> Result<(), String> {
        let name = |what: &str, n: &str| -> Result<(), String> {
            if n.len() > self.max_name_bytes {
                return Err(format!(
                    "{what} is {} bytes long; names are at most {} bytes (--max-name-bytes)",
                    n.len(),
                    self.max_name_bytes
                ));
            }
            Ok(())
        };
        name("the scenario's name", &s.name)?;
        if s.parties.len() > self.max_parties {
            return Err(format!(
                "{} parties; this server takes at most {} (--max-parties)",
                s.parties.len(),
                self.max_parties
            ));
        }
        let issues = &s.domain.issues;
        if issues.len() > self.max_issues {
            return Err(format!(
                "{} issues; this server takes at most {} (--max-issues)",
                issues.len(),
                self.max_issues
            ));
        }
        let mut cells = 0usize;
        for issue in issues {
            name("an issue's name", issue.name())?;
            if let Issue::Discrete { values, .. } = issue {
                if values.len() > self.max_values {
                    return Err(format!(
                        "issue `{}` has {} values; this server takes at most {} (--max-values)",
                        short(issue.name()),
                        values.len(),
                        self.max_values
                    ));
                }
                for v in values {
                    name("a value's name", v)?;
                }
                cells += values.len();
            }
        }
        // Presentation strings are capped like names: a label per value at most.
        for d in &s.presentation.issues {
            for text in d.unit.iter().chain(&d.display).chain(d.labels.values()) {
                name("a unit, display form or label", text)?;
            }
        }
        for p in &s.parties {
            name("a party's name", &p.name)?;
            match &p.preferences.utility {
                UtilityFunction::LinearAdditive { values, .. } => {
                    for (f, issue) in values.iter().zip(issues) {
                        if let ValueFunction::Table { utilities } = f {
                            if utilities.len() > self.max_values {
                                return Err(format!(
                                    "party `{}` has a table of {} entries for issue `{}`; this server takes at most {} (--max-values)",
                                    short(&p.name),
                                    utilities.len(),
                                    short(issue.name()),
                                    self.max_values
                                ));
                            }
                            cells += utilities.len();
                        }
                    }
                }
                UtilityFunction::HyperRectangles { rectangles, .. } => {
                    if rectangles.len() > self.max_rectangles {
                        return Err(format!(
                            "party `{}` has {} rectangles; this server takes at most {} (--max-rectangles)",
                            short(&p.name),
                            rectangles.len(),
                            self.max_rectangles
                        ));
                    }
                    cells += rectangles.iter().map(|r| 1 + r.includes.len() + r.excludes.len()).sum::<usize>();
                }
            }
        }
        if cells > self.max_cells {
            return Err(format!(
                "the scenario holds {cells} values, table entries and rectangle bounds; this server takes at most {} (--max-cells)",
                self.max_cells
            ));
        }
        if let Some(r) = s.deadline.rounds
            && r > self.max_rounds
        {
            return Err(format!("rounds = {r} is above this server's limit of {} (--max-rounds)", self.max_rounds));
        }
        if let Some(t) = s.deadline.seconds
            && t > self.max_seconds
        {
            return Err(format!(
                "seconds = {t} is above this server's limit of {} s (--max-session-seconds)",
                self.max_seconds
            ));
        }
        Ok(())
    }
}

/// A name cut short for an error message (the caller wrote it; it may be huge).
fn short(s: &str) -> String {
    match s.char_indices().nth(48) {
        Some((k, _)) => format!("{}…", &s[..k]),
        None => s.to_string(),
    }
}

/// Estimated bytes a session of a scenario needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Footprint {
    /// Held while the session runs: the scenario, each local party's
    /// outcome index, each external party's copy of its settings.
    pub running: u64,
    /// Needed for a moment when it ends: the analysis of its outcome space.
    pub analysis: u64,
}

/// What the scenario's domain and preferences take in memory.
fn scenario_bytes(s: &Scenario) -> u64 {
    let names: u64 = s
        .domain
        .issues
        .iter()
        .map(|i| {
            32 + i.name().len() as u64
                + match i {
                    Issue::Discrete { values, .. } => values.iter().map(|v| 24 + v.len() as u64).sum(),
                    _ => 0,
                }
        })
        .sum();
    let prefs: u64 = s
        .parties
        .iter()
        .map(|p| {
            64u64
                + match &p.preferences.utility {
                    UtilityFunction::LinearAdditive { values, .. } => values
                        .iter()
                        .map(|f| {
                            40 + if let ValueFunction::Table { utilities } = f { 8 * utilities.len() as u64 } else { 0 }
                        })
                        .sum::<u64>(),
                    UtilityFunction::HyperRectangles { rectangles, .. } => {
                        rectangles.iter().map(|r| 64 + 24 * (r.includes.len() + r.excludes.len()) as u64).sum::<u64>()
                    }
                }
        })
        .sum();
    names + prefs
}

/// What the inverse utility one party builds for a negotiation of
/// `deadline` holds ([`Inverse::for_party`]): its split, its enumerated
/// index, or its sample (outcomes and their values are most of it).
pub fn inverse_bytes(domain: &Domain, p: &Preferences, deadline: &Deadline) -> u64 {
    if let Some(bytes) = Inverse::split_bytes(domain, p, deadline) {
        return bytes;
    }
    match domain.cardinality() {
        // Utilities (8 bytes) and ids (4) of every rational outcome.
        Cardinality::Finite(n) if n <= ENUMERATION_LIMIT => 12 * n as u64,
        _ => {
            let m = sample_size(super::inverse::SAMPLE_SIZE + 1, domain, &[p]) as u64;
            m * (domain.issues.len() as u64 * VALUE_BYTES + OUTCOME_BYTES + 12)
        }
    }
}

impl Footprint {
    /// Fixed cost of a session beyond its scenario: actors, mailboxes,
    /// protocol state, the registry entry.
    pub const SESSION_OVERHEAD: u64 = 16 << 10;

    /// The footprint of one session of `s` where `local[k]` says whether
    /// party k's strategy runs here (and so builds an outcome index) or is
    /// an external agent. `shared_indexes`: the local parties' indexes are
    /// already built and shared (cluster sessions), so they cost nothing
    /// more.
    pub fn of(s: &Scenario, local: &[bool], shared_indexes: bool) -> Self {
        let scenario = scenario_bytes(s);
        let prefs = s.preferences();
        let mut running = Self::SESSION_OVERHEAD + scenario;
        let issues = s.domain.issues.len() as u64;
        for (k, p) in prefs.iter().enumerate() {
            if !local.get(k).copied().unwrap_or(false) {
                // An external party's endpoint keeps the settings it sends.
                running += scenario;
                continue;
            }
            if shared_indexes {
                continue;
            }
            running += inverse_bytes(&s.domain, p, &s.deadline);
        }
        let n = prefs.len() as u64;
        let refs: Vec<&Preferences> = prefs.iter().map(|p| p.as_ref()).collect();
        let analysis = match s.domain.cardinality() {
            // The utility columns, the flat table, its grid copy and the
            // sort order of the frontier sweep.
            Cardinality::Finite(rows) if analysis_enumerates(&s.domain, refs.len()) => rows as u64 * (n * 8 * 3 + 16),
            _ => {
                let m = sample_size(super::analysis::ANALYSIS_SAMPLE, &s.domain, &refs) as u64;
                m * (issues * VALUE_BYTES + OUTCOME_BYTES + n * 8 * 3 + 16)
            }
        };
        Self { running, analysis }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::protocol::Deadline;
    use crate::core::scenario::Party;
    use crate::core::strategy::StrategySpec;
    use std::sync::Arc;

    fn binary_issues(k: usize) -> Scenario {
        let issues: Vec<Issue> = (0..k).map(|i| Issue::Integer { name: format!("i{i}"), min: 0, max: 1 }).collect();
        let domain = Arc::new(Domain::new("wide", issues));
        let w = 1.0 / k as f64;
        let party = |name: &str| Party {
            name: name.into(),
            preferences: Arc::new(Preferences::new(
                UtilityFunction::LinearAdditive {
                    weights: vec![w; k],
                    values: vec![ValueFunction::linear_between(0.0, 1.0, 0.0, 1.0); k],
                },
                0.0,
            )),
            strategy: StrategySpec::named("hardliner"),
            external: false,
        };
        Scenario {
            name: "wide".into(),
            description: String::new(),
            domain,
            parties: vec![party("a"), party("b")],
            deadline: Deadline::rounds(10),
            seed: 1,
            presentation: Default::default(),
        }
    }

    #[test]
    fn samples_shrink_with_issues_so_values_stay_under_the_budget() {
        let s = binary_issues(2_000);
        let prefs = s.preferences();
        let refs: Vec<&Preferences> = prefs.iter().map(|p| p.as_ref()).collect();
        let n = sample_size(200_000, &s.domain, &refs);
        assert!(n * 2_000 <= VALUE_CELLS, "{n}");
        assert!(n >= 1_000, "{n}");
        assert!(sample_note(200_000, n, &s.domain, 2).unwrap().contains("2000 issues"));
        // A W-sized domain keeps the whole sample.
        let small = binary_issues(5);
        let prefs = small.preferences();
        let refs: Vec<&Preferences> = prefs.iter().map(|p| p.as_ref()).collect();
        assert_eq!(sample_size(200_000, &small.domain, &refs), 200_000);
    }

    #[test]
    fn the_footprint_of_a_wide_domain_is_bounded_by_the_budgets() {
        let f = Footprint::of(&binary_issues(2_000), &[true, true], false);
        // Two sampled indexes and one sampled analysis, each under its
        // value budget (64 MiB of values) plus per-outcome overheads.
        assert!(f.analysis < 200 << 20, "{f:?}");
        assert!(f.running < 200 << 20, "{f:?}");
        let external = Footprint::of(&binary_issues(2_000), &[false, false], false);
        assert!(external.running < f.running);
    }

    #[test]
    fn units_and_labels_are_capped_as_names_are() {
        use crate::core::terms::{IssueDisplay, Presentation};
        let mut s = binary_issues(2);
        let unit = |u: String| IssueDisplay { unit: Some(u), ..Default::default() };
        s.presentation = Presentation { issues: vec![unit("k€".into()), Default::default()] };
        assert!(Limits::default().admit(&s).is_ok());
        s.presentation.issues[1] = unit("x".repeat(100_000));
        let e = Limits::default().admit(&s).unwrap_err();
        assert!(e.contains("label") && e.contains("--max-name-bytes"), "{e}");
    }

    #[test]
    fn limits_name_the_option_that_raises_them() {
        let limits = Limits { max_issues: 100, ..Limits::default() };
        let e = limits.admit(&binary_issues(2_000)).unwrap_err();
        assert!(e.contains("2000 issues") && e.contains("--max-issues"), "{e}");
        let mut s = binary_issues(3);
        s.deadline = Deadline { rounds: Some(u32::MAX), seconds: None };
        let e = Limits::default().admit(&s).unwrap_err();
        assert!(e.contains("4294967295") && e.contains("--max-rounds"), "{e}");
        s.deadline = Deadline { rounds: None, seconds: Some(1e308) };
        assert!(Limits::default().admit(&s).unwrap_err().contains("--max-session-seconds"));
        s.deadline = Deadline::rounds(100);
        s.name = "x".repeat(10_000);
        assert!(Limits::default().admit(&s).unwrap_err().contains("10000 bytes"));
    }
}
