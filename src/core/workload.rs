//! The reference workload W of DESIGN.md, built exactly as the peer
//! (NegMAS, `bench_sao.py`) builds it, so both run the same negotiations.

use std::sync::Arc;

use super::domain::{Domain, Issue};
use super::protocol::Deadline;
use super::rng::SplitMix64;
use super::utility::{Preferences, UtilityFunction, ValueFunction};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Workload {
    pub issues: usize,
    pub values: usize,
    pub rounds: u32,
    pub reservation: f64,
    pub seed: u64,
}

impl Workload {
    /// W1: 3 issues × 10 values. W4: 5 × 10. `KxV`: K issues × V values
    /// (the same draws and value functions: the scaling workloads).
    pub fn named(name: &str) -> Option<Self> {
        let (issues, values) = match name {
            "w1" => (3, 10),
            "w4" => (5, 10),
            _ => {
                let (k, v) = name.split_once('x')?;
                (k.parse().ok().filter(|k| (1..=1000).contains(k))?, v.parse().ok().filter(|v| (2..=1000).contains(v))?)
            }
        };
        Some(Self { issues, values, rounds: 100, reservation: 0.1, seed: 1 })
    }

    pub fn domain(&self) -> Arc<Domain> {
        let issues = (0..self.issues)
            .map(|i| Issue::Integer { name: format!("i{i}"), min: 0, max: self.values as i64 - 1 })
            .collect();
        Arc::new(Domain::new(format!("W {}x{}", self.issues, self.values), issues))
    }

    pub fn deadline(&self) -> Deadline {
        Deadline::rounds(self.rounds)
    }

    /// Preferences of A (values high) and B (values low) for negotiation `j`.
    pub fn preferences(&self, j: u64) -> [Arc<Preferences>; 2] {
        let mut rng = SplitMix64::new(self.seed.wrapping_add(j));
        let mut weights = || {
            let w: Vec<f64> = (0..self.issues).map(|_| rng.next_f64()).collect();
            let s: f64 = w.iter().sum();
            w.into_iter().map(|x| x / s).collect::<Vec<f64>>()
        };
        let (wa, wb) = (weights(), weights());
        let v = self.values;
        let table = |rising: bool| ValueFunction::Table {
            utilities: (0..v).map(|x| x as f64 / (v - 1) as f64).map(|u| if rising { u } else { 1.0 - u }).collect(),
        };
        let prefs = |w: Vec<f64>, rising: bool| {
            let values = (0..self.issues).map(|_| table(rising)).collect();
            Arc::new(Preferences::new(UtilityFunction::LinearAdditive { weights: w, values }, self.reservation))
        };
        [prefs(wa, true), prefs(wb, false)]
    }

    /// Negotiation `j` as scenario TOML, for the API (which takes scenario
    /// text): party A plays `a`, party B plays `b`, and B is external where
    /// `b_external`. Parsed back, it is exactly this workload's negotiation
    /// `j` (floats written in full).
    pub fn scenario_text(&self, j: u64, a: &str, b: &str, b_external: bool) -> String {
        let [pa, pb] = self.preferences(j);
        let mut text = format!(
            "name = \"W{}-{j}\"\nseed = {}\n[protocol]\nrounds = {}\n",
            self.issues,
            self.seed + j,
            self.rounds
        );
        for i in 0..self.issues {
            text += &format!("[[issues]]\nname = \"i{i}\"\ntype = \"integer\"\nmin = 0\nmax = {}\n", self.values - 1);
        }
        for (name, prefs, strategy, external) in [("A", &pa, a, false), ("B", &pb, b, b_external)] {
            let UtilityFunction::LinearAdditive { weights, values } = &prefs.utility else {
                unreachable!("W is linear")
            };
            text += &format!(
                "[[parties]]\nname = \"{name}\"\nstrategy = \"{strategy}\"\nexternal = {external}\nreservation = {:?}\n",
                prefs.reservation_value
            );
            let ws: Vec<String> = weights.iter().enumerate().map(|(i, x)| format!("i{i} = {x:?}")).collect();
            text += &format!("weights = {{ {} }}\n", ws.join(", "));
            for (i, f) in values.iter().enumerate() {
                let ValueFunction::Table { utilities } = f else { unreachable!("W uses tables") };
                let us: Vec<String> = utilities.iter().map(|x| format!("{x:?}")).collect();
                text += &format!("values.i{i} = {{ table = [{}] }}\n", us.join(", "));
            }
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utilities_span_zero_to_one_and_oppose() {
        let w = Workload::named("w1").unwrap();
        let d = w.domain();
        let [a, b] = w.preferences(0);
        let best_for_a = d.outcome_at(999);
        assert!((a.utility(&d, &best_for_a) - 1.0).abs() < 1e-12);
        assert!(b.utility(&d, &best_for_a).abs() < 1e-12);
    }

    #[test]
    fn the_scenario_text_is_the_same_negotiation() {
        let w = Workload::named("w1").unwrap();
        let s = crate::core::scenario::Scenario::parse(&w.scenario_text(7, "boulware", "conceder", true), "w.toml")
            .unwrap();
        assert_eq!(s.domain.issues, w.domain().issues);
        assert_eq!(s.preferences(), w.preferences(7).to_vec());
        assert!(s.parties[1].external && !s.parties[0].external);
        assert_eq!((s.seed, s.deadline), (w.seed + 7, w.deadline()));
    }
}
