//! Stacked Alternating Offers (SAOP) as a pure state machine.
//!
//! Parties act in a fixed cyclic order. The first must offer; each later one
//! accepts the standing offer, replaces it with its own, or ends the
//! negotiation. An offer counts as its proposer's acceptance, so agreement is
//! reached when every other party has accepted it in turn. A round is one turn
//! of every party; relative time is `(round + 1) / (rounds + 1)` (the NegMAS
//! convention) or elapsed / limit for wall-time deadlines, whichever is later.
//! Time is an input: the caller passes elapsed seconds, the machine never
//! reads a clock, which keeps it deterministic and testable.

use serde::{Deserialize, Serialize};

use super::domain::Outcome;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Action {
    Offer(Outcome),
    Accept,
    EndNegotiation,
}

impl Action {
    pub fn kind(&self) -> &'static str {
        match self {
            Action::Offer(_) => "offer",
            Action::Accept => "accept",
            Action::EndNegotiation => "end",
        }
    }
}

/// When a session must stop without agreement. At least one is set.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Deadline {
    pub rounds: Option<u32>,
    pub seconds: Option<f64>,
}

impl Deadline {
    pub fn rounds(r: u32) -> Self {
        Self { rounds: Some(r), seconds: None }
    }

    pub fn relative_time(&self, round: u32, elapsed_s: f64) -> f64 {
        let by_round = self.rounds.map_or(0.0, |r| (round as f64 + 1.0) / (r as f64 + 1.0));
        let by_clock = self.seconds.map_or(0.0, |s| if s > 0.0 { elapsed_s / s } else { 1.0 });
        by_round.max(by_clock).min(1.0)
    }
}

/// How a session ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Ending {
    Agreement {
        outcome: Outcome,
        proposer: usize,
    },
    /// The round or wall-time deadline passed.
    Deadline,
    /// A party walked away.
    EndedBy {
        party: usize,
    },
    /// A party broke the rules (or could not be reached); no agreement.
    Violation {
        party: usize,
        reason: String,
    },
    /// Stopped from outside (e.g. the host shutting down); nobody's fault.
    Aborted {
        reason: String,
    },
}

impl Ending {
    pub fn label(&self) -> &'static str {
        match self {
            Ending::Agreement { .. } => "agreement",
            Ending::Deadline => "deadline",
            Ending::EndedBy { .. } => "end-negotiation",
            Ending::Violation { .. } => "violation",
            Ending::Aborted { .. } => "aborted",
        }
    }
}

/// The offer on the table and who made it.
#[derive(Debug, Clone, PartialEq)]
pub struct Standing {
    pub offer: Outcome,
    pub proposer: usize,
}

#[derive(Debug, Clone)]
pub struct Saop {
    n_parties: usize,
    deadline: Deadline,
    round: u32,
    /// Whose turn it is within the round.
    next: usize,
    standing: Option<Standing>,
    /// Parties that support the standing offer, its proposer included.
    supporters: usize,
    ending: Option<Ending>,
}

impl Saop {
    pub fn new(n_parties: usize, deadline: Deadline) -> Self {
        assert!(n_parties >= 2, "a negotiation needs two parties");
        Self { n_parties, deadline, round: 0, next: 0, standing: None, supporters: 0, ending: None }
    }

    pub fn deadline(&self) -> Deadline {
        self.deadline
    }

    /// The party expected to act, or `None` once the session has ended.
    pub fn next_party(&self) -> Option<usize> {
        self.ending.is_none().then_some(self.next)
    }

    pub fn round(&self) -> u32 {
        self.round
    }

    /// Rounds begun so far (the count reported in results).
    pub fn rounds_used(&self) -> u32 {
        match self.deadline.rounds {
            Some(r) => self.round.saturating_add(1).min(r),
            None => self.round.saturating_add(1),
        }
    }

    pub fn standing(&self) -> Option<&Standing> {
        self.standing.as_ref()
    }

    pub fn ending(&self) -> Option<&Ending> {
        self.ending.as_ref()
    }

    pub fn relative_time(&self, elapsed_s: f64) -> f64 {
        self.deadline.relative_time(self.round, elapsed_s)
    }

    /// Ends the session if the wall-time deadline has passed. Call before
    /// asking a party to act.
    pub fn tick(&mut self, elapsed_s: f64) -> Option<&Ending> {
        if self.ending.is_none() && self.deadline.seconds.is_some_and(|s| elapsed_s >= s) {
            self.ending = Some(Ending::Deadline);
        }
        self.ending.as_ref()
    }

    /// Applies `party`'s action. Any breach of the rules ends the session
    /// with a recorded violation; the returned ending says so.
    pub fn step(&mut self, party: usize, action: Action) -> Option<&Ending> {
        if self.ending.is_some() {
            return self.ending.as_ref();
        }
        if party != self.next {
            return self.violation(party, format!("acted out of turn (expected party {})", self.next));
        }
        match action {
            Action::EndNegotiation => {
                self.ending = Some(Ending::EndedBy { party });
                return self.ending.as_ref();
            }
            Action::Accept => {
                let Some(standing) = &self.standing else {
                    return self.violation(party, "accepted when no offer was on the table".into());
                };
                self.supporters += 1;
                if self.supporters == self.n_parties {
                    self.ending =
                        Some(Ending::Agreement { outcome: standing.offer.clone(), proposer: standing.proposer });
                    return self.ending.as_ref();
                }
            }
            Action::Offer(offer) => {
                self.standing = Some(Standing { offer, proposer: party });
                self.supporters = 1;
            }
        }
        self.advance();
        self.ending.as_ref()
    }

    /// Ends the session without blaming anyone.
    pub fn abort(&mut self, reason: String) {
        if self.ending.is_none() {
            self.ending = Some(Ending::Aborted { reason });
        }
    }

    /// Records a violation by `party` (also used by the runner for bids
    /// outside the domain and for unreachable parties).
    pub fn violation(&mut self, party: usize, reason: String) -> Option<&Ending> {
        if self.ending.is_none() {
            self.ending = Some(Ending::Violation { party, reason });
        }
        self.ending.as_ref()
    }

    fn advance(&mut self) {
        self.next += 1;
        if self.next == self.n_parties {
            self.next = 0;
            self.round = self.round.saturating_add(1);
            if self.deadline.rounds.is_some_and(|r| self.round >= r) {
                self.ending = Some(Ending::Deadline);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::domain::Value;

    fn o(x: i64) -> Outcome {
        Outcome::from(vec![Value::Integer(x)])
    }

    #[test]
    fn bilateral_agreement_when_the_other_accepts() {
        let mut p = Saop::new(2, Deadline::rounds(10));
        assert_eq!(p.next_party(), Some(0));
        assert!(p.step(0, Action::Offer(o(1))).is_none());
        let end = p.step(1, Action::Accept).cloned();
        assert_eq!(end, Some(Ending::Agreement { outcome: o(1), proposer: 0 }));
        assert_eq!(p.rounds_used(), 1);
        assert_eq!(p.next_party(), None);
    }

    #[test]
    fn multilateral_needs_every_other_party_in_a_row() {
        let mut p = Saop::new(3, Deadline::rounds(10));
        p.step(0, Action::Offer(o(1)));
        p.step(1, Action::Accept);
        assert!(p.step(2, Action::Offer(o(2))).is_none(), "a counter-offer resets support");
        p.step(0, Action::Accept);
        assert!(p.ending().is_none());
        assert_eq!(p.step(1, Action::Accept).map(Ending::label), Some("agreement"));
        assert_eq!(p.rounds_used(), 2);
    }

    #[test]
    fn deadline_in_rounds_and_relative_time() {
        let mut p = Saop::new(2, Deadline::rounds(2));
        assert!((p.relative_time(0.0) - 1.0 / 3.0).abs() < 1e-12);
        for (party, x) in [(0, 1), (1, 2), (0, 3)] {
            assert!(p.step(party, Action::Offer(o(x))).is_none());
        }
        assert_eq!(p.step(1, Action::Offer(o(4))), Some(&Ending::Deadline));
        assert_eq!(p.rounds_used(), 2);
    }

    #[test]
    fn wall_time_deadline_is_an_input() {
        let mut p = Saop::new(2, Deadline { rounds: None, seconds: Some(2.0) });
        assert!(p.tick(1.0).is_none());
        assert!((p.relative_time(1.0) - 0.5).abs() < 1e-12);
        assert_eq!(p.tick(2.0), Some(&Ending::Deadline));
    }

    #[test]
    fn violations_end_the_session_with_a_reason() {
        let mut p = Saop::new(2, Deadline::rounds(5));
        assert_eq!(p.step(0, Action::Accept).map(Ending::label), Some("violation"));
        let mut p = Saop::new(2, Deadline::rounds(5));
        match p.step(1, Action::Offer(o(1))) {
            Some(Ending::Violation { party: 1, reason }) => assert!(reason.contains("out of turn")),
            other => panic!("unexpected {other:?}"),
        }
        let mut p = Saop::new(2, Deadline::rounds(5));
        p.step(0, Action::Offer(o(1)));
        assert_eq!(p.step(1, Action::EndNegotiation), Some(&Ending::EndedBy { party: 1 }));
    }
}
