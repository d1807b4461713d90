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
use thiserror::Error;

use super::domain::Outcome;

/// What a party may do on its turn. The set is SAOP's and nothing more, so
/// that any party — a strategy in this process, a remote node, an external
/// agent — is judged by the same three-way choice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Action {
    /// Replace the standing offer with this bid; it counts as the
    /// proposer's own acceptance.
    Offer(Outcome),
    /// Support the standing offer; a violation when there is none.
    Accept,
    /// Walk away: the session ends without agreement, and this party is
    /// named as the one that ended it (not as a violator).
    EndNegotiation,
}

impl Action {
    /// A stable label for logs, records and the wire (`offer`, `accept`,
    /// `end`); it does not change when variants gain fields.
    pub fn kind(&self) -> &'static str {
        match self {
            Action::Offer(_) => "offer",
            Action::Accept => "accept",
            Action::EndNegotiation => "end",
        }
    }
}

/// Why a protocol cannot be set up as asked. Library callers can build
/// sessions without a scenario file, so the checks the scenario loader makes
/// are made again here: a bad setup is an error, never a panic or a session
/// that cannot end.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ProtocolError {
    #[error("a negotiation needs at least two parties, got {0}")]
    TooFewParties(usize),
    #[error("the protocol needs a deadline: rounds and/or seconds")]
    NoDeadline,
    #[error("the deadline must be a positive, finite number of rounds or seconds")]
    BadDeadline,
}

/// When a session must stop without agreement. At least one is set.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Deadline {
    pub rounds: Option<u32>,
    pub seconds: Option<f64>,
}

impl Deadline {
    /// A deadline of `r` rounds and no wall-time limit: the deterministic
    /// kind, the same trace on any machine.
    pub fn rounds(r: u32) -> Self {
        Self { rounds: Some(r), seconds: None }
    }

    /// Whether this deadline ends every session: without one a session of
    /// two parties that never agree would run forever, and a NaN or
    /// infinite limit is never reached.
    pub fn check(&self) -> Result<(), ProtocolError> {
        if self.rounds.is_none() && self.seconds.is_none() {
            return Err(ProtocolError::NoDeadline);
        }
        if self.rounds == Some(0) || self.seconds.is_some_and(|s| !(s.is_finite() && s > 0.0)) {
            return Err(ProtocolError::BadDeadline);
        }
        Ok(())
    }

    /// Progress in [0, 1] at `round` and `elapsed_s`: the later of the two
    /// clocks, so a wall-time limit hurries a session with rounds to spare.
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
    /// A stable label for records and logs, the same as the serialised `kind`.
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

/// The SAOP state machine for one session. It decides turn order,
/// agreement and deadlines and nothing else: it never reads a clock, never
/// sees a domain (the session checks offers against it) and never talks to a
/// party, so both engines and the tests drive the very same rules.
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
    /// A protocol for `n_parties` in their index order, party 0 opening.
    /// Refuses fewer than two parties (nobody to agree with) and a deadline
    /// that would never end the session.
    pub fn new(n_parties: usize, deadline: Deadline) -> Result<Self, ProtocolError> {
        if n_parties < 2 {
            return Err(ProtocolError::TooFewParties(n_parties));
        }
        deadline.check()?;
        Ok(Self { n_parties, deadline, round: 0, next: 0, standing: None, supporters: 0, ending: None })
    }

    /// The deadline strategies are told about (and concede against).
    pub fn deadline(&self) -> Deadline {
        self.deadline
    }

    /// The party expected to act, or `None` once the session has ended.
    pub fn next_party(&self) -> Option<usize> {
        self.ending.is_none().then_some(self.next)
    }

    /// The round under way, from 0; what a party's turn and the trace are
    /// stamped with.
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

    /// The offer a party would accept by answering [`Action::Accept`].
    pub fn standing(&self) -> Option<&Standing> {
        self.standing.as_ref()
    }

    /// How the session ended; `None` while it runs. Set once: later
    /// actions, violations and aborts do not overwrite it.
    pub fn ending(&self) -> Option<&Ending> {
        self.ending.as_ref()
    }

    /// Time in [0, 1] as strategies see it: the later of round progress and
    /// wall-clock progress, so either deadline drives concession.
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

    /// The rule `party` would break by taking `action` now, if any. Lets a
    /// caller decide whether an action counts before it records it; an
    /// ended session refuses nothing (it ignores everything instead).
    pub fn breach(&self, party: usize, action: &Action) -> Option<String> {
        if self.ending.is_some() {
            return None;
        }
        if party != self.next {
            return Some(format!("acted out of turn (expected party {})", self.next));
        }
        if matches!(action, Action::Accept) && self.standing.is_none() {
            return Some("accepted when no offer was on the table".into());
        }
        None
    }

    /// Applies `party`'s action. Any breach of the rules ends the session
    /// with a recorded violation; the returned ending says so.
    pub fn step(&mut self, party: usize, action: Action) -> Option<&Ending> {
        if self.ending.is_some() {
            return self.ending.as_ref();
        }
        if let Some(reason) = self.breach(party, &action) {
            return self.violation(party, reason);
        }
        match action {
            Action::EndNegotiation => {
                self.ending = Some(Ending::EndedBy { party });
                return self.ending.as_ref();
            }
            // `breach` refused an accept with no standing offer above.
            Action::Accept => {
                if let Some(standing) = &self.standing {
                    self.supporters += 1;
                    if self.supporters == self.n_parties {
                        self.ending =
                            Some(Ending::Agreement { outcome: standing.offer.clone(), proposer: standing.proposer });
                        return self.ending.as_ref();
                    }
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

    /// Ends the session without blaming anyone (a host shutting down, an
    /// owner cancelling); a session already ended keeps its ending.
    pub fn abort(&mut self, reason: String) {
        if self.ending.is_none() {
            self.ending = Some(Ending::Aborted { reason });
        }
    }

    /// Ends the session with `party`'s violation: the protocol's own
    /// breaches, and those only its caller can see (a bid outside the
    /// domain, a party that cannot be reached or answers nonsense). A
    /// session already ended keeps its ending: the first cause is the one
    /// reported.
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
        let mut p = Saop::new(2, Deadline::rounds(10)).unwrap();
        assert_eq!(p.next_party(), Some(0));
        assert!(p.step(0, Action::Offer(o(1))).is_none());
        let end = p.step(1, Action::Accept).cloned();
        assert_eq!(end, Some(Ending::Agreement { outcome: o(1), proposer: 0 }));
        assert_eq!(p.rounds_used(), 1);
        assert_eq!(p.next_party(), None);
    }

    #[test]
    fn multilateral_needs_every_other_party_in_a_row() {
        let mut p = Saop::new(3, Deadline::rounds(10)).unwrap();
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
        let mut p = Saop::new(2, Deadline::rounds(2)).unwrap();
        assert!((p.relative_time(0.0) - 1.0 / 3.0).abs() < 1e-12);
        for (party, x) in [(0, 1), (1, 2), (0, 3)] {
            assert!(p.step(party, Action::Offer(o(x))).is_none());
        }
        assert_eq!(p.step(1, Action::Offer(o(4))), Some(&Ending::Deadline));
        assert_eq!(p.rounds_used(), 2);
    }

    #[test]
    fn wall_time_deadline_is_an_input() {
        let mut p = Saop::new(2, Deadline { rounds: None, seconds: Some(2.0) }).unwrap();
        assert!(p.tick(1.0).is_none());
        assert!((p.relative_time(1.0) - 0.5).abs() < 1e-12);
        assert_eq!(p.tick(2.0), Some(&Ending::Deadline));
    }

    #[test]
    fn a_protocol_that_could_not_end_is_refused() {
        assert_eq!(Saop::new(1, Deadline::rounds(5)).err(), Some(ProtocolError::TooFewParties(1)));
        assert_eq!(Saop::new(0, Deadline::rounds(5)).err(), Some(ProtocolError::TooFewParties(0)));
        assert_eq!(Saop::new(2, Deadline { rounds: None, seconds: None }).err(), Some(ProtocolError::NoDeadline));
        for seconds in [f64::NAN, f64::INFINITY, 0.0, -1.0] {
            let d = Deadline { rounds: None, seconds: Some(seconds) };
            assert_eq!(Saop::new(2, d).err(), Some(ProtocolError::BadDeadline), "{seconds}");
        }
        assert_eq!(Saop::new(2, Deadline::rounds(0)).err(), Some(ProtocolError::BadDeadline));
    }

    #[test]
    fn breach_foretells_what_step_refuses() {
        let mut p = Saop::new(2, Deadline::rounds(5)).unwrap();
        assert!(p.breach(0, &Action::Accept).is_some_and(|r| r.contains("no offer")));
        assert!(p.breach(1, &Action::Offer(o(1))).is_some_and(|r| r.contains("out of turn")));
        assert_eq!(p.breach(0, &Action::Offer(o(1))), None);
        p.step(0, Action::Offer(o(1)));
        assert_eq!(p.breach(1, &Action::Accept), None);
    }

    #[test]
    fn violations_end_the_session_with_a_reason() {
        let mut p = Saop::new(2, Deadline::rounds(5)).unwrap();
        assert_eq!(p.step(0, Action::Accept).map(Ending::label), Some("violation"));
        let mut p = Saop::new(2, Deadline::rounds(5)).unwrap();
        match p.step(1, Action::Offer(o(1))) {
            Some(Ending::Violation { party: 1, reason }) => assert!(reason.contains("out of turn")),
            other => panic!("unexpected {other:?}"),
        }
        let mut p = Saop::new(2, Deadline::rounds(5)).unwrap();
        p.step(0, Action::Offer(o(1)));
        assert_eq!(p.step(1, Action::EndNegotiation), Some(&Ending::EndedBy { party: 1 }));
    }
}
