//! How a deal reads to a person: each issue's unit, display form and value
//! labels, an outcome term by term, and what changes between two outcomes
//! ("pre_money: up from 14 M$ to 16 M$").
//!
//! Presentation is not part of the negotiation: strategies, the analysis,
//! the cluster wire and the scenario digest never see it, so adding a unit
//! to a scenario changes no result and does not stop a `--resume`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use super::domain::{Domain, Issue, Outcome, Value};

/// How one issue's values are shown.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IssueDisplay {
    /// Written after a number: `14 M$`, `25%`, `36 months`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// The whole form of a value, `{}` standing for it: `"${}M"` → `$14M`.
    /// Wins over `unit`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display: Option<String>,
    /// Discrete values by name → what a person reads.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

impl IssueDisplay {
    pub fn is_plain(&self) -> bool {
        self.unit.is_none() && self.display.is_none() && self.labels.is_empty()
    }

    /// The value with its unit or display form; a label stands alone.
    fn show(&self, raw: &str, is_number: bool) -> String {
        if let Some(label) = self.labels.get(raw) {
            return label.clone();
        }
        if let Some(form) = &self.display {
            return form.replace("{}", raw);
        }
        match &self.unit {
            // Symbols that sit against the number, as people write them.
            Some(u) if is_number && matches!(u.as_str(), "%" | "‰" | "x" | "×") => format!("{raw}{u}"),
            Some(u) if is_number => format!("{raw} {u}"),
            _ => raw.to_string(),
        }
    }
}

/// One entry per issue, in the domain's order; empty where the scenario
/// says nothing of how to show its values.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Presentation {
    pub issues: Vec<IssueDisplay>,
}

/// One term of a deal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Term {
    pub issue: String,
    /// As results write it (`outcome_json`).
    pub value: Json,
    /// As a person reads it.
    pub shown: String,
}

impl Presentation {
    /// Checks labels against the domain: a label for a value that does not
    /// exist is a typo the user wants to hear of.
    pub fn check(&self, domain: &Domain) -> Result<(), String> {
        if self.issues.is_empty() {
            return Ok(());
        }
        if self.issues.len() != domain.issues.len() {
            return Err(format!("{} issue displays for {} issues", self.issues.len(), domain.issues.len()));
        }
        for (d, issue) in self.issues.iter().zip(&domain.issues) {
            if let Some(form) = &d.display
                && !form.contains("{}")
            {
                return Err(format!("issue `{}`: display `{form}` has no `{{}}` for the value", issue.name()));
            }
            if d.labels.is_empty() {
                continue;
            }
            let Issue::Discrete { values, .. } = issue else {
                return Err(format!("issue `{}`: labels are for discrete values", issue.name()));
            };
            if let Some(bad) = d.labels.keys().find(|k| !values.contains(k)) {
                return Err(format!(
                    "issue `{}`: label for `{bad}`, which is not one of its values ({})",
                    issue.name(),
                    values.join(", ")
                ));
            }
        }
        Ok(())
    }

    fn of(&self, k: usize) -> Option<&IssueDisplay> {
        self.issues.get(k)
    }

    /// Issue `k`'s unit, for axis labels and tables.
    pub fn unit(&self, k: usize) -> Option<&str> {
        self.of(k).and_then(|d| d.unit.as_deref())
    }

    /// One value as a person reads it.
    pub fn value(&self, domain: &Domain, k: usize, v: &Value) -> String {
        let issue = &domain.issues[k];
        let (raw, is_number) = match issue.value_json(v) {
            Json::String(s) => (s, false),
            Json::Number(n) => (fmt_number(&n), true),
            other => (other.to_string(), false),
        };
        match self.of(k) {
            Some(d) => d.show(&raw, is_number),
            None => raw,
        }
    }

    /// The outcome term by term.
    pub fn terms(&self, domain: &Domain, outcome: &Outcome) -> Vec<Term> {
        domain
            .issues
            .iter()
            .zip(outcome.0.iter())
            .enumerate()
            .map(|(k, (issue, v))| Term {
                issue: issue.name().to_string(),
                value: issue.value_json(v),
                shown: self.value(domain, k, v),
            })
            .collect()
    }

    /// `pre_money = 14 M$; board = 2F-1I; …` on one line (labels may hold commas).
    pub fn outcome(&self, domain: &Domain, outcome: &Outcome) -> String {
        self.terms(domain, outcome).iter().map(|t| format!("{} = {}", t.issue, t.shown)).collect::<Vec<_>>().join("; ")
    }

    /// What turns `from` into `to`, one phrase per issue that differs:
    /// numbers are raised or lowered, named values replaced.
    pub fn changes(&self, domain: &Domain, from: &Outcome, to: &Outcome) -> Vec<String> {
        let mut out = Vec::new();
        for (k, issue) in domain.issues.iter().enumerate() {
            let (a, b) = (&from.0[k], &to.0[k]);
            if a == b {
                continue;
            }
            let name = issue.name();
            let (was, now) = (self.value(domain, k, a), self.value(domain, k, b));
            out.push(match issue {
                Issue::Discrete { .. } => format!("{name}: {now} instead of {was}"),
                _ if b.as_f64() > a.as_f64() => format!("{name}: up from {was} to {now}"),
                _ => format!("{name}: down from {was} to {now}"),
            });
        }
        out
    }
}

/// Whole numbers without a fraction; others as short as they are exact to
/// four places.
fn fmt_number(n: &serde_json::Number) -> String {
    if let Some(i) = n.as_i64() {
        return i.to_string();
    }
    let x = n.as_f64().unwrap_or(f64::NAN);
    let s = format!("{x:.4}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn domain() -> Domain {
        Domain::new(
            "d",
            vec![
                Issue::Integer { name: "pre_money".into(), min: 10, max: 30 },
                Issue::Discrete { name: "board".into(), values: vec!["2F-1I".into(), "2F-2I".into()] },
                Issue::Real { name: "stake".into(), min: 0.0, max: 100.0 },
            ],
        )
    }

    fn presentation() -> Presentation {
        Presentation {
            issues: vec![
                IssueDisplay { unit: Some("M$".into()), ..Default::default() },
                IssueDisplay {
                    labels: [("2F-1I".to_string(), "founders' majority".to_string())].into(),
                    ..Default::default()
                },
                IssueDisplay { unit: Some("%".into()), ..Default::default() },
            ],
        }
    }

    fn outcome(m: i64, b: u32, s: f64) -> Outcome {
        Outcome::from(vec![Value::Integer(m), Value::Discrete(b), Value::Real(s)])
    }

    #[test]
    fn values_read_with_their_units_and_labels() {
        let (d, p) = (domain(), presentation());
        assert_eq!(p.outcome(&d, &outcome(14, 0, 25.0)), "pre_money = 14 M$; board = founders' majority; stake = 25%");
        assert_eq!(
            Presentation::default().outcome(&d, &outcome(14, 1, 12.5)),
            "pre_money = 14; board = 2F-2I; stake = 12.5"
        );
        let form = Presentation {
            issues: vec![
                IssueDisplay { display: Some("${}M".into()), ..Default::default() },
                Default::default(),
                Default::default(),
            ],
        };
        assert_eq!(form.value(&d, 0, &Value::Integer(16)), "$16M");
    }

    #[test]
    fn changes_say_which_way_each_term_moves() {
        let (d, p) = (domain(), presentation());
        let c = p.changes(&d, &outcome(14, 1, 25.0), &outcome(16, 0, 20.0));
        assert_eq!(
            c,
            vec![
                "pre_money: up from 14 M$ to 16 M$".to_string(),
                "board: founders' majority instead of 2F-2I".into(),
                "stake: down from 25% to 20%".into(),
            ]
        );
        assert!(p.changes(&d, &outcome(14, 1, 25.0), &outcome(14, 1, 25.0)).is_empty());
    }

    #[test]
    fn labels_must_name_values_of_discrete_issues() {
        let d = domain();
        assert!(presentation().check(&d).is_ok());
        let mut p = presentation();
        p.issues[1].labels.insert("3F".into(), "x".into());
        assert!(p.check(&d).unwrap_err().contains("`3F`"));
        let mut p = presentation();
        p.issues[0].labels.insert("10".into(), "x".into());
        assert!(p.check(&d).unwrap_err().contains("discrete"));
        let mut p = presentation();
        p.issues[0].display = Some("$M".into());
        assert!(p.check(&d).is_err());
    }
}
