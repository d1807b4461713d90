//! Summaries of many negotiations, for the terminal.

use crate::core::record::Assessment;
use crate::core::session::SessionResult;

/// Running means over many negotiations.
#[derive(Debug, Default, Clone)]
pub struct Summary {
    pub n: usize,
    pub agreements: usize,
    pub utility_sums: Vec<f64>,
    pub rounds: f64,
    pub offers: f64,
    pub welfare: f64,
    /// Sums and counts of distances, over negotiations where a point exists.
    pub nash: (f64, usize),
    pub pareto: (f64, usize),
    pub efficient: usize,
    pub endings: std::collections::BTreeMap<&'static str, usize>,
    /// The first result's agreement, rounds and utilities, and whether a
    /// later one differed: deterministic strategies repeat one negotiation.
    first: Option<(Option<crate::core::domain::Outcome>, u32, Vec<u64>)>,
    pub varied: bool,
}

impl Summary {
    pub fn add(&mut self, r: &SessionResult, assessment: Option<&Assessment>) {
        self.n += 1;
        if r.agreement.is_some() {
            self.agreements += 1;
        }
        if self.utility_sums.len() < r.utilities.len() {
            self.utility_sums.resize(r.utilities.len(), 0.0);
        }
        for (s, u) in self.utility_sums.iter_mut().zip(&r.utilities) {
            *s += u;
        }
        self.rounds += r.rounds as f64;
        self.offers += r.offers as f64;
        self.welfare += r.utilities.iter().sum::<f64>();
        if let Some(a) = assessment {
            for (acc, d) in [(&mut self.nash, a.distances.nash), (&mut self.pareto, a.distances.pareto)] {
                if let Some(d) = d {
                    acc.0 += d;
                    acc.1 += 1;
                }
            }
            if a.pareto_efficient {
                self.efficient += 1;
            }
        }
        *self.endings.entry(r.ending.label()).or_default() += 1;
        // Compared in place: a run of millions allocates nothing here.
        match &self.first {
            None => {
                let bits = r.utilities.iter().map(|u| u.to_bits()).collect();
                self.first = Some((r.agreement.clone(), r.rounds, bits));
            }
            Some((agreement, rounds, bits)) if !self.varied => {
                let same = *agreement == r.agreement
                    && *rounds == r.rounds
                    && bits.len() == r.utilities.len()
                    && bits.iter().zip(&r.utilities).all(|(b, u)| *b == u.to_bits());
                self.varied = !same;
            }
            Some(_) => {}
        }
    }

    pub fn mean_utilities(&self) -> Vec<f64> {
        self.utility_sums.iter().map(|s| s / self.n.max(1) as f64).collect()
    }

    pub fn mean(&self, total: f64) -> f64 {
        total / self.n.max(1) as f64
    }

    /// Mean of a distance over the negotiations that have one.
    pub fn mean_of(acc: (f64, usize)) -> Option<f64> {
        (acc.1 > 0).then(|| acc.0 / acc.1 as f64)
    }
}
