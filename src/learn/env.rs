//! Negotiation as an RL environment: the core's protocol driven by the
//! direct engine's loop (no actor messages per offer), over a pool of
//! scenarios (shipped, imported ANAC, freshly generated W-like domains) and
//! opponents. A [`Matchup`] is drawn from a seed alone, so every candidate
//! in an evaluation meets exactly the same negotiations, and a worker's
//! share of an iteration is reproducible wherever it runs.

use std::path::Path;
use std::sync::{Arc, Mutex};

use super::config::PoolConfig;
use super::model::Mlp;
use super::party::{LearnedParty, Mode, Step};
use crate::core::domain::{Domain, Issue};
use crate::core::inverse::Inverse;
use crate::core::protocol::Deadline;
use crate::core::rng::SplitMix64;
use crate::core::session::SessionResult;
use crate::core::strategy::{Strategy, StrategySpec};
use crate::core::utility::{Preferences, UtilityFunction, ValueFunction};
use crate::engine::{SessionSpec, direct, shared_indexes};

/// Rounds given to scenarios whose deadline is wall time only (training
/// must not depend on how fast a machine is).
const DEFAULT_ROUNDS: u32 = 100;

/// A bilateral negotiation setting: a domain and two profiles.
#[derive(Debug)]
pub struct Case {
    pub domain: Arc<Domain>,
    pub preferences: [Arc<Preferences>; 2],
    pub rounds: u32,
    /// Outcome indexes shared by every episode on this case.
    pub indexes: Vec<Option<Arc<Inverse>>>,
}

impl Case {
    fn new(domain: Arc<Domain>, preferences: [Arc<Preferences>; 2], rounds: u32) -> Self {
        let indexes = shared_indexes(&domain, &preferences);
        Self { domain, preferences, rounds, indexes }
    }

    /// A W-like random domain: 2–4 integer issues of 4–10 values, mostly
    /// opposed interests (some issues shared), random weights, reservation
    /// values and deadline.
    pub fn random(rng: &mut SplitMix64) -> Self {
        let k = 2 + rng.below(3) as usize;
        let v = 4 + rng.below(7) as usize;
        let issues = (0..k).map(|i| Issue::Integer { name: format!("i{i}"), min: 0, max: v as i64 - 1 }).collect();
        let domain = Arc::new(Domain::new(format!("random {k}x{v}"), issues));
        let mut tables: Vec<Vec<f64>> = Vec::new();
        for _ in 0..k {
            let mut t: Vec<f64> = (0..v).map(|_| rng.next_f64()).collect();
            t.sort_by(f64::total_cmp);
            let (lo, hi) = (t[0], t[v - 1].max(t[0] + 1e-9));
            tables.push(t.into_iter().map(|x| (x - lo) / (hi - lo)).collect());
        }
        let shared: Vec<bool> = (0..k).map(|_| rng.next_f64() < 0.2).collect();
        let mut prefs = |rising: bool| {
            let w: Vec<f64> = (0..k).map(|_| 0.05 + rng.next_f64()).collect();
            let s: f64 = w.iter().sum();
            let values = (0..k)
                .map(|i| {
                    let mut t = tables[i].clone();
                    if !rising && !shared[i] {
                        t.reverse();
                    }
                    ValueFunction::Table { utilities: t }
                })
                .collect();
            let weights = w.into_iter().map(|x| x / s).collect();
            let rv = rng.next_f64() * 0.4;
            Arc::new(Preferences::new(UtilityFunction::LinearAdditive { weights, values }, rv))
        };
        let (a, b) = (prefs(true), prefs(false));
        let rounds = 20 + rng.below(181) as u32;
        Self::new(domain, [a, b], rounds)
    }
}

/// Scenarios and opponents to draw from.
pub struct Pool {
    pub cases: Vec<Arc<Case>>,
    pub opponents: Vec<StrategySpec>,
    pub random_share: f64,
    pub stream: u64,
    /// What was skipped while loading, and why (for the user).
    pub skipped: Vec<String>,
}

/// One negotiation to play: the case, which profile the learner holds,
/// whether it moves first, and whom it meets.
#[derive(Clone)]
pub struct Matchup {
    pub case: Arc<Case>,
    pub side: usize,
    pub first: bool,
    pub opponent: StrategySpec,
    pub seed: u64,
}

/// An episode's decisions and how it ended for the learner.
#[derive(Debug, Clone)]
pub struct Episode {
    pub steps: Vec<Step>,
    pub reward: f64,
    pub agreement: bool,
}

impl Pool {
    pub fn load(cfg: &PoolConfig) -> Result<Self, String> {
        let mut opponents = Vec::new();
        for o in &cfg.opponents {
            let spec = StrategySpec::parse_cli(o).map_err(|e| format!("opponent `{o}`: {e}"))?;
            spec.validate().map_err(|e| format!("opponent `{o}`: {e}"))?;
            opponents.push(spec);
        }
        let mut pool = Pool {
            cases: Vec::new(),
            opponents,
            random_share: cfg.random_share,
            stream: cfg.stream,
            skipped: Vec::new(),
        };
        let mut paths: Vec<std::path::PathBuf> = Vec::new();
        for p in &cfg.scenarios {
            if p.is_dir() && !looks_like_scenario_folder(p) {
                paths.extend(sorted_children(p, |c| c.extension().is_some_and(|e| e == "toml") || c.is_dir()));
            } else {
                paths.push(p.clone());
            }
        }
        for c in &cfg.collections {
            if !c.is_dir() {
                pool.skipped.push(format!("{}: not found", c.display()));
                continue;
            }
            paths.extend(sorted_children(c, Path::is_dir));
        }
        for p in paths {
            match load_case(&p, cfg.max_outcomes) {
                Ok(c) => pool.cases.push(Arc::new(c)),
                Err(why) => pool.skipped.push(why),
            }
        }
        if pool.cases.is_empty() && pool.random_share < 1.0 {
            pool.skipped.push("no scenario loaded: every episode uses a random domain".into());
            pool.random_share = 1.0;
        }
        Ok(pool)
    }

    /// The negotiation for episode `seed`.
    pub fn draw(&self, seed: u64) -> Matchup {
        let mut rng = SplitMix64::derive(seed, self.stream);
        let case = if self.cases.is_empty() || rng.next_f64() < self.random_share {
            Arc::new(Case::random(&mut rng))
        } else {
            self.cases[rng.below(self.cases.len() as u64) as usize].clone()
        };
        let side = rng.below(2) as usize;
        let first = rng.below(2) == 0;
        let opponent = self.opponents[rng.below(self.opponents.len() as u64) as usize].clone();
        Matchup { case, side, first, opponent, seed: rng.next_u64() }
    }
}

impl Matchup {
    /// Plays `me` against the opponent; returns the result and the
    /// learner's position in it.
    pub fn play(&self, me: Box<dyn Strategy>) -> Result<(SessionResult, usize), String> {
        let opponent = self.opponent.build().map_err(|e| e.to_string())?;
        let c = &self.case;
        let (mine, theirs) = (self.side, 1 - self.side);
        let (order, strategies, pos) =
            if self.first { ([mine, theirs], vec![me, opponent], 0) } else { ([theirs, mine], vec![opponent, me], 1) };
        let preferences = order.iter().map(|&k| c.preferences[k].clone()).collect();
        let mut spec =
            SessionSpec::new(0, c.domain.clone(), preferences, Vec::new(), Deadline::rounds(c.rounds), self.seed);
        spec.shared_indexes =
            if c.indexes.is_empty() { Vec::new() } else { order.iter().map(|&k| c.indexes[k].clone()).collect() };
        Ok((direct::run_with(&spec, strategies).map_err(|e| e.to_string())?, pos))
    }

    /// One training episode with the policy sampling its actions.
    pub fn rollout(&self, mlp: Arc<Mlp>) -> Result<Episode, String> {
        let log = Arc::new(Mutex::new(Vec::new()));
        let me = LearnedParty::new(mlp, Mode::Sample(log.clone()));
        let (result, pos) = self.play(Box::new(me))?;
        let steps = std::mem::take(&mut *log.lock().expect("step log"));
        Ok(Episode { steps, reward: result.utilities[pos], agreement: result.agreement.is_some() })
    }
}

fn looks_like_scenario_folder(dir: &Path) -> bool {
    !sorted_children(dir, |c| c.extension().is_some_and(|e| e == "xml" || e == "json")).is_empty()
}

fn sorted_children(dir: &Path, keep: impl Fn(&Path) -> bool) -> Vec<std::path::PathBuf> {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| keep(p)).collect())
        .unwrap_or_default();
    out.sort();
    out
}

fn load_case(path: &Path, max_outcomes: u64) -> Result<Case, String> {
    if !path.exists() {
        return Err(format!("{}: not found", path.display()));
    }
    let s = crate::import::load_any(path).map_err(|e| e.to_string())?;
    if s.parties.len() < 2 {
        return Err(format!("{}: needs two parties", path.display()));
    }
    if !s.domain.cardinality().at_most(max_outcomes as u128) {
        return Err(format!("{}: more than {max_outcomes} outcomes", path.display()));
    }
    let rounds = s.deadline.rounds.unwrap_or(DEFAULT_ROUNDS);
    let prefs = [s.parties[0].preferences.clone(), s.parties[1].preferences.clone()];
    Ok(Case::new(s.domain.clone(), prefs, rounds))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::learn::model::PolicySpec;

    #[test]
    fn episodes_are_reproducible_and_record_decisions() {
        let pool = Pool::load(&PoolConfig::default()).unwrap();
        let spec = PolicySpec::new(8);
        let mlp = Arc::new(Mlp::new(&spec, &spec.initial_params(1)).unwrap());
        for seed in 0..20 {
            let a = pool.draw(seed).rollout(mlp.clone()).unwrap();
            let b = pool.draw(seed).rollout(mlp.clone()).unwrap();
            assert_eq!(a.steps, b.steps);
            assert_eq!(a.reward, b.reward);
            assert!((0.0..=1.0).contains(&a.reward));
        }
    }
}
