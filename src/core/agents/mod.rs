//! The field's agents, native: ANAC champions and the opponents the
//! literature measures against, each a [`Strategy`] named like a built-in
//! (`strategy = "hardheaded"`, or `{ type = "hardheaded", e = 0.1 }`).
//!
//! Each agent's file opens with what it does, the published description it
//! follows and every place where it deliberately differs. They are written
//! from those descriptions; the NegMAS ports (`negmas-genius-agents`,
//! hosted through the Python agent host) are the behavioural reference they
//! are compared against (README, "Native agents"), not code translated.
//! Reusable parts live in the BOA library (`core::strategy`: the frequency
//! opponent model, AC_next, AC_prev, AC_gap, AC_combi(MAX^W)); [`seat`]
//! holds what every agent keeps about its seat. Randomness comes from the
//! party's seed, so a run repeats.

mod agentk;
mod agreeable;
mod hardheaded;
mod iamhaggler;
mod micro;
mod nice_tit_for_tat;
mod ponpoko;
mod seat;

use serde_json::{Map, Value as Json};

use super::strategy::{Strategy, StrategyError};
use seat::Seated;

/// A numeric parameter of an agent: its default and the closed range it
/// must lie in.
#[derive(Debug, Clone, Copy)]
pub struct Param {
    pub name: &'static str,
    pub default: f64,
    pub min: f64,
    pub max: f64,
    /// Whole numbers only.
    pub integer: bool,
    pub doc: &'static str,
}

const fn real(name: &'static str, default: f64, min: f64, max: f64, doc: &'static str) -> Param {
    Param { name, default, min, max, integer: false, doc }
}

const fn whole(name: &'static str, default: f64, min: f64, max: f64, doc: &'static str) -> Param {
    Param { name, default, min, max, integer: true, doc }
}

/// One native agent: what README's agent table shows, and how to build it
/// from its checked parameters (in the order of `params`).
pub struct AgentInfo {
    /// The strategy name (lower case; the original's spelling is accepted too).
    pub name: &'static str,
    /// The original's name, as GENIUS and NegMAS spell it.
    pub original: &'static str,
    /// What it won or where it played.
    pub year: &'static str,
    pub summary: &'static str,
    pub source: &'static str,
    pub params: &'static [Param],
    build: fn(&[f64]) -> Box<dyn Strategy>,
}

/// Every native agent, in the order of README's table.
pub const AGENTS: &[AgentInfo] = &[
    AgentInfo {
        name: "agentk",
        original: "AgentK",
        year: "ANAC 2010 winner",
        summary: "concedes towards the best it estimates the opponent will still offer (mean and spread of its offers)",
        source: "Kawaguchi, Fujita, Ito: Compromising strategy based on estimated maximum utility (2012)",
        params: &[real("tremor", 2.0, 0.0, 10.0, "how much the opponent's generosity hardens the concession")],
        build: |p| Box::new(Seated::new(agentk::AgentK::new(p[0]))),
    },
    AgentInfo {
        name: "hardheaded",
        original: "HardHeaded",
        year: "ANAC 2011 winner",
        summary: "Boulware to the last moments; of the bids at its level, the ones the frequency model says the opponent likes",
        source: "van Krimpen, Looije, Hajizadeh: HardHeaded (2013)",
        params: &[
            real("e", 0.05, 1e-3, 10.0, "concession exponent (below 1: Boulware)"),
            real("ka", 0.05, 0.0, 1.0, "share of the range conceded at once"),
            real("min_utility", 0.585, 0.0, 1.0, "the lowest target (or the reservation value, if higher)"),
            whole("top_bids", 4.0, 1.0, 1000.0, "bids best for the opponent the next bid is drawn from"),
        ],
        build: |p| Box::new(Seated::new(hardheaded::HardHeaded::new(p[0], p[1], p[2], p[3] as usize))),
    },
    AgentInfo {
        name: "iamhaggler2011",
        original: "IAMhaggler2011",
        year: "ANAC 2011 finalist",
        summary: "predicts the opponent's concession with a Gaussian process; concedes towards the time and utility of highest expected gain",
        source: "Williams, Robu, Gerding, Jennings: Using Gaussian processes to optimise concession (IJCAI 2011)",
        params: &[],
        build: |_| Box::<iamhaggler::IamHaggler>::default(),
    },
    AgentInfo {
        name: "nicetitfortat",
        original: "NiceTitForTat",
        year: "ANAC 2011 finalist",
        summary: "reciprocates the opponent's concessions towards the estimated Nash point; bids what the opponent likes",
        source: "Baarslag, Hindriks, Jonker: A tit for tat negotiation strategy for real-time bilateral negotiations (2013)",
        params: &[real("endgame", 0.98, 0.0, 1.0, "time from which it takes the best of the last window")],
        build: |p| Box::new(nice_tit_for_tat::NiceTitForTat::new(p[0])),
    },
    AgentInfo {
        name: "ponpokoagent",
        original: "PonPokoAgent",
        year: "ANAC 2017 winner",
        summary: "one of five threshold patterns (some oscillating) drawn at the start; random bids between the thresholds",
        source: "Matsune: PonPokoAgent, ANAC 2017 report (Aydoğan et al. 2018)",
        params: &[whole("pattern", -1.0, -1.0, 4.0, "a fixed pattern 0-4, or -1: drawn from the seed")],
        build: |p| Box::new(ponpoko::PonPoko::new((p[0] >= 0.0).then_some(p[0] as u64))),
    },
    AgentInfo {
        name: "agreeableagent2018",
        original: "AgreeableAgent2018",
        year: "ANAC 2018 winner",
        summary: "Boulware after a short learning phase; roulette-wheel bids weighted by the opponent's estimated utility",
        source: "Mirzayi et al.: AgreeableAgent2018, ANAC 2018 report (Aydoğan et al. 2019)",
        params: &[
            real("e", 0.1, 1e-3, 10.0, "concession exponent (below 1: Boulware)"),
            real("min_utility", 0.6, 0.0, 1.0, "the lowest target (or the reservation value, if higher)"),
            real("learning_time", 0.05, 0.0, 1.0, "time until which it offers its best bid only"),
        ],
        build: |p| Box::new(Seated::new(agreeable::Agreeable::new(p[0], p[1], p[2]))),
    },
    AgentInfo {
        name: "micro",
        original: "MiCRO",
        year: "benchmark (2022)",
        summary: "concedes one outcome at a time, and only as often as the opponent makes new offers; ignores time",
        source: "de Jonge: An analysis of the linear bilateral ANAC domains using the MiCRO benchmark strategy (IJCAI 2022)",
        params: &[],
        build: |_| Box::<micro::Micro>::default(),
    },
];

/// The agent of this name (case-insensitive; `-` and `_` ignored, so
/// `NiceTitForTat`, `nice-tit-for-tat` and `nicetitfortat` are one).
pub fn find(name: &str) -> Option<&'static AgentInfo> {
    let folded: String = name.chars().filter(|c| !matches!(c, '-' | '_')).collect::<String>().to_lowercase();
    AGENTS.iter().find(|a| a.name == folded)
}

impl AgentInfo {
    /// The agent with `params` checked against its table: an unknown name
    /// or a value out of range is an error that lists the valid ones.
    pub fn build(&self, params: &Map<String, Json>) -> Result<Box<dyn Strategy>, StrategyError> {
        let values = self.values(params)?;
        Ok((self.build)(&values))
    }

    fn values(&self, params: &Map<String, Json>) -> Result<Vec<f64>, StrategyError> {
        if let Some(extra) = params.keys().find(|k| !self.params.iter().any(|p| p.name == k.as_str())) {
            let valid = if self.params.is_empty() {
                "none (it takes no parameters)".to_string()
            } else {
                self.params.iter().map(|p| format!("{} ({})", p.name, p.doc)).collect::<Vec<_>>().join(", ")
            };
            return Err(StrategyError::UnknownParameter { strategy: self.name.into(), param: extra.clone(), valid });
        }
        self.params
            .iter()
            .map(|p| {
                let Some(v) = params.get(p.name) else { return Ok(p.default) };
                let bad = |problem: String| StrategyError::BadParameter {
                    strategy: self.name.into(),
                    param: p.name.into(),
                    problem,
                };
                let x = v.as_f64().ok_or_else(|| bad(format!("must be a number ({})", p.doc)))?;
                if !(p.min..=p.max).contains(&x) || (p.integer && x.fract() != 0.0) {
                    let kind = if p.integer { "a whole number" } else { "a number" };
                    return Err(bad(format!("must be {kind} in [{}, {}] ({}), got {x}", p.min, p.max, p.doc)));
                }
                Ok(x)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
