//! `negotium eval`: a policy against fixed baselines on held-out scenarios
//! and opponents. Every candidate plays exactly the same matchups (drawn
//! from the evaluation pool's seed stream), so differences are the
//! candidates', not the draw's.

use std::collections::HashMap;
use std::sync::Arc;

use rayon::prelude::*;
use serde::Serialize;

use super::env::{Matchup, Pool};
use super::model::{Mlp, PolicySpec};
use super::party::{LearnedParty, Mode};
use crate::core::analysis::Analysis;
use crate::core::strategy::{Strategy, StrategySpec};

/// Fixed baselines: the time-dependent family (the "best fixed
/// time-dependent baseline" is the best of these), tit-for-tat for reference.
pub const BASELINES: &[&str] = &[
    "{ type = \"time-dependent\", e = 0.1 }",
    "boulware",
    "{ type = \"time-dependent\", e = 0.5 }",
    "linear",
    "{ type = \"time-dependent\", e = 2.0 }",
    "conceder",
    "tit-for-tat",
];

#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub candidate: String,
    pub episodes: usize,
    pub own_utility: f64,
    pub agreement_rate: f64,
    pub social_welfare: f64,
    /// Mean distance of the outcome to the Nash point (utility space).
    pub nash_distance: f64,
}

enum Candidate {
    Learned(Arc<Mlp>),
    Fixed(StrategySpec),
}

impl Candidate {
    fn build(&self) -> Result<Box<dyn Strategy>, String> {
        match self {
            Candidate::Learned(mlp) => Ok(Box::new(LearnedParty::new(mlp.clone(), Mode::Greedy))),
            Candidate::Fixed(s) => s.build().map_err(|e| e.to_string()),
        }
    }
}

/// One row per candidate: the policy first (if given), then the baselines.
pub fn evaluate(policy: Option<(&PolicySpec, &[f32])>, pool: &Pool, episodes: usize) -> Result<Vec<Row>, String> {
    let mut candidates: Vec<(String, Candidate)> = Vec::new();
    if let Some((spec, flat)) = policy {
        candidates.push(("learned".into(), Candidate::Learned(Arc::new(Mlp::new(spec, flat)?))));
    }
    for b in BASELINES {
        let s = StrategySpec::parse_cli(b).map_err(|e| e.to_string())?;
        candidates.push((s.to_string(), Candidate::Fixed(s)));
    }
    let matchups: Vec<Matchup> = (0..episodes as u64).map(|j| pool.draw(j)).collect();
    // Analyses per case (fixed cases are shared between matchups).
    let mut cache: HashMap<usize, Arc<Analysis>> = HashMap::new();
    let analyses: Vec<(Arc<Analysis>, usize)> = matchups
        .iter()
        .map(|m| {
            let key = Arc::as_ptr(&m.case) as usize;
            let a = cache
                .entry(key)
                .or_insert_with(|| {
                    let p = &m.case.preferences;
                    Arc::new(Analysis::run(&m.case.domain, &[&p[0], &p[1]], 0))
                })
                .clone();
            (a, m.side)
        })
        .collect();
    let mut rows = Vec::new();
    for (name, cand) in &candidates {
        let results: Vec<Result<(f64, bool, f64, f64), String>> = matchups
            .par_iter()
            .zip(analyses.par_iter())
            .map(|(m, (analysis, side))| {
                let (r, pos) = m.play(cand.build()?)?;
                let other = 1 - pos;
                // Utilities in case order (profile 0, profile 1) for the analysis.
                let mut by_profile = [0.0; 2];
                by_profile[*side] = r.undiscounted[pos];
                by_profile[1 - side] = r.undiscounted[other];
                let nash = analysis.distances(&by_profile).nash.unwrap_or(f64::NAN);
                Ok((r.utilities[pos], r.agreement.is_some(), r.utilities.iter().sum(), nash))
            })
            .collect();
        let mut row = Row {
            candidate: name.clone(),
            episodes,
            own_utility: 0.0,
            agreement_rate: 0.0,
            social_welfare: 0.0,
            nash_distance: 0.0,
        };
        let mut nash_n = 0usize;
        for r in results {
            let (own, agreed, welfare, nash) = r?;
            row.own_utility += own;
            row.agreement_rate += agreed as u8 as f64;
            row.social_welfare += welfare;
            if nash.is_finite() {
                row.nash_distance += nash;
                nash_n += 1;
            }
        }
        let n = episodes.max(1) as f64;
        row.own_utility /= n;
        row.agreement_rate /= n;
        row.social_welfare /= n;
        row.nash_distance /= nash_n.max(1) as f64;
        rows.push(row);
    }
    Ok(rows)
}

/// The best time-dependent baseline by mean own utility.
pub fn best_time_dependent(rows: &[Row]) -> Option<&Row> {
    rows.iter()
        .filter(|r| !matches!(r.candidate.as_str(), "learned" | "tit-for-tat"))
        .max_by(|a, b| a.own_utility.total_cmp(&b.own_utility))
}

/// The table as text.
pub fn table(rows: &[Row]) -> String {
    let mut s = format!(
        "{:<28} {:>9} {:>12} {:>10} {:>9} {:>10}\n",
        "candidate", "episodes", "own utility", "agreement", "welfare", "to Nash"
    );
    for r in rows {
        s += &format!(
            "{:<28} {:>9} {:>12.4} {:>10.3} {:>9.4} {:>10.4}\n",
            r.candidate, r.episodes, r.own_utility, r.agreement_rate, r.social_welfare, r.nash_distance
        );
    }
    s
}
