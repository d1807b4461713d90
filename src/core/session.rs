//! One negotiation session, independent of how parties are reached.
//!
//! [`SessionRun`] owns the protocol and decides what each party sees: before
//! its turn a party is handed every action of the others since its previous
//! turn, then the turn itself. The direct engine calls strategies with these;
//! the actor engine puts them into messages. Both go through this type, which
//! is why their traces are identical.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::domain::{Domain, Outcome};
use super::protocol::{Action, Deadline, Ending, ProtocolError, Saop};
use super::rng::SplitMix64;
use super::strategy::{Observation, PartyContext, Turn};
use super::utility::Preferences;

/// Trace entries kept per session. A wall-time deadline between two fast
/// strategies can see millions of offers; past this the trace is cut (and
/// marked so) rather than growing without bound.
pub const TRACE_LIMIT: usize = 100_000;

/// One action in a session's trace, as it counted: what results files
/// record and watchers are shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceEntry {
    /// The round it was taken in, from 0.
    pub round: u32,
    /// Who took it, by index in the session's turn order.
    pub party: usize,
    /// Relative time when it was taken.
    pub time: f64,
    pub action: Action,
}

/// What a finished session produced.
/// Serialisable: cluster nodes send it to the launcher as JSON (exact
/// floats), which writes the record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionResult {
    pub agreement: Option<Outcome>,
    pub ending: Ending,
    /// Per party: discounted utility of the agreement, or its (discounted)
    /// reservation value where there is none.
    pub utilities: Vec<f64>,
    /// The same without discounting: what analysis (Pareto, Nash, ...)
    /// compares, since the analysis ignores discount.
    pub undiscounted: Vec<f64>,
    pub rounds: u32,
    pub offers: u64,
    /// Relative time at the end.
    pub time: f64,
    pub trace: Vec<TraceEntry>,
    /// True where the trace stopped at [`TRACE_LIMIT`] entries.
    pub trace_truncated: bool,
    /// Per party: whether its bids were exact ([`crate::core::strategy::BidsSlot`]),
    /// `None` where it never asked an inverse utility. Filled by the
    /// engine (the session does not see the strategies); empty: unknown.
    #[serde(default)]
    pub bids_exact: Vec<Option<bool>>,
    /// Per party: how far its bids may be from the exact ones, in utility
    /// (0 where exact; `None` for a sample or a party that never asked).
    #[serde(default)]
    pub bids_gap: Vec<Option<f64>>,
}

/// The request a party gets: what happened since its last turn, then the
/// turn. Observations travel with the turn rather than as messages of their
/// own, so a remote party costs one round trip per turn.
#[derive(Debug, Clone, PartialEq)]
pub struct TurnRequest {
    pub party: usize,
    pub observations: Vec<Observation>,
    pub turn: Turn,
}

/// What [`SessionRun::apply`] made of one action. It is the one account of
/// it: the engines feed their watchers, traces and counts from this value
/// rather than guess afterwards from the protocol's state, which cannot tell
/// an action that counted from one that arrived too late.
#[derive(Debug, Clone, PartialEq)]
#[must_use = "an action that did not count must not reach watchers"]
pub enum Applied {
    /// The action took its turn. The entry is the one the trace holds (or
    /// would hold, when the trace is off or full): what a watcher is shown.
    Counted(TraceEntry),
    /// The action broke the rules (out of turn, a bid outside the domain,
    /// an accept with nothing on the table); the session has ended with
    /// this party's violation, and nobody else saw the action.
    Refused { violation: String },
    /// The session had ended before the action arrived (its wall-time
    /// deadline passed while the party thought, or something else ended
    /// it); the action was dropped unseen and blames nobody.
    TooLate,
}

/// One session's state between its parties: the protocol, what each party
/// has yet to be shown, the trace and the counts. Engines own the parties
/// and the clock and feed this type; it decides everything else, which is
/// why the direct and actor engines give the same trace for the same seed.
pub struct SessionRun {
    domain: Arc<Domain>,
    preferences: Vec<Arc<Preferences>>,
    protocol: Saop,
    /// Actions each party has not yet been shown.
    pending: Vec<Vec<Observation>>,
    trace: Vec<TraceEntry>,
    record_trace: bool,
    offers: u64,
    /// Every action applied, traced or not.
    actions: u64,
    last_time: f64,
}

impl SessionRun {
    /// A session for one party per entry of `preferences`, in turn order.
    /// Refuses a setup the protocol refuses (fewer than two parties, a
    /// deadline that never ends the session).
    pub fn new(
        domain: Arc<Domain>,
        preferences: Vec<Arc<Preferences>>,
        deadline: Deadline,
        record_trace: bool,
    ) -> Result<Self, ProtocolError> {
        let n = preferences.len();
        Ok(Self {
            domain,
            preferences,
            protocol: Saop::new(n, deadline)?,
            pending: vec![Vec::new(); n],
            trace: Vec::new(),
            record_trace,
            offers: 0,
            actions: 0,
            last_time: 0.0,
        })
    }

    /// What each party is told at the start; party seeds derive from `seed`.
    pub fn contexts(&self, seed: u64) -> Vec<PartyContext> {
        (0..self.preferences.len())
            .map(|p| PartyContext {
                domain: self.domain.clone(),
                preferences: self.preferences[p].clone(),
                party: p,
                n_parties: self.preferences.len(),
                deadline: self.protocol.deadline(),
                seed: SplitMix64::derive(seed, p as u64).next_u64(),
                index: None,
                bids: Default::default(),
            })
            .collect()
    }

    /// Read-only: engines ask it for the deadline and the ending, but only
    /// this type moves it, so nothing bypasses the trace and the counts.
    pub fn protocol(&self) -> &Saop {
        &self.protocol
    }

    /// The next party to act, or `None` when the session is over.
    pub fn next_turn(&mut self, elapsed_s: f64) -> Option<TurnRequest> {
        self.protocol.tick(elapsed_s);
        let party = self.protocol.next_party()?;
        let time = self.protocol.relative_time(elapsed_s);
        Some(TurnRequest {
            party,
            observations: std::mem::take(&mut self.pending[party]),
            turn: Turn { round: self.protocol.round(), time, standing: self.protocol.standing().cloned() },
        })
    }

    /// Applies a party's action and says what became of it (see
    /// [`Applied`]): only a counted action reaches the trace, the counts
    /// and the other parties. A breach of the rules ends the session with
    /// the party's violation; an action arriving after the session ended
    /// (a wall-time deadline passing while the party thought) is dropped.
    pub fn apply(&mut self, party: usize, action: Action, elapsed_s: f64) -> Applied {
        if self.protocol.tick(elapsed_s).is_some() {
            return Applied::TooLate;
        }
        let breach = self.protocol.breach(party, &action).or_else(|| match &action {
            Action::Offer(o) => self.domain.validate(o).err().map(|why| format!("offer outside the domain: {why}")),
            _ => None,
        });
        if let Some(violation) = breach {
            self.protocol.violation(party, violation.clone());
            return Applied::Refused { violation };
        }
        let time = self.protocol.relative_time(elapsed_s);
        self.last_time = time;
        let round = self.protocol.round();
        if matches!(action, Action::Offer(_)) {
            self.offers += 1;
        }
        self.actions += 1;
        for (p, queue) in self.pending.iter_mut().enumerate() {
            if p != party {
                queue.push(Observation { party, action: action.clone(), time });
            }
        }
        // One clone more than the protocol needs, for the entry handed
        // back: an offer's bid is a few values, and handing back a borrow
        // would tie every caller to this type's lifetime.
        self.protocol.step(party, action.clone());
        let entry = TraceEntry { round, party, time, action };
        if self.record_trace && self.trace.len() < TRACE_LIMIT {
            self.trace.push(entry.clone());
        }
        Applied::Counted(entry)
    }

    /// Whether a wall-time deadline has passed at `elapsed_s`.
    pub fn deadline_passed(&self, elapsed_s: f64) -> bool {
        self.protocol.deadline().seconds.is_some_and(|s| elapsed_s >= s)
    }

    /// Ends the session with `party`'s violation for what only the engine
    /// sees: a party that cannot be reached, times out, or answers a turn
    /// without an action. A session already ended keeps its ending.
    pub fn violation(&mut self, party: usize, reason: String) {
        self.protocol.violation(party, reason);
    }

    /// Ends the session from outside, blaming no party.
    pub fn abort(&mut self, reason: String) {
        self.protocol.abort(reason);
    }

    /// The result, consuming the session. A session finished before its
    /// protocol ended (the engine stopped asking) counts as having reached
    /// its deadline: no agreement, reservation values for everyone.
    pub fn finish(self) -> SessionResult {
        let ending = self.protocol.ending().cloned().unwrap_or(Ending::Deadline);
        let time = self.last_time;
        let agreement = match &ending {
            Ending::Agreement { outcome, .. } => Some(outcome.clone()),
            _ => None,
        };
        let undiscounted: Vec<f64> = self
            .preferences
            .iter()
            .map(|p| match &agreement {
                Some(o) => p.utility(&self.domain, o),
                None => p.reservation_value,
            })
            .collect();
        let utilities = self.preferences.iter().zip(&undiscounted).map(|(p, u)| p.discounted(*u, time)).collect();
        SessionResult {
            agreement,
            ending,
            utilities,
            undiscounted,
            rounds: self.protocol.rounds_used(),
            offers: self.offers,
            time,
            trace_truncated: self.record_trace && self.actions > self.trace.len() as u64,
            trace: self.trace,
            bids_exact: Vec::new(),
            bids_gap: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::domain::{Issue, Value};
    use crate::core::utility::{UtilityFunction, ValueFunction};

    fn setup(deadline: Deadline, discount: f64) -> SessionRun {
        let domain = Arc::new(Domain::new("d", vec![Issue::Integer { name: "x".into(), min: 0, max: 9 }]));
        let prefs = |at_min: f64, at_max: f64| {
            let mut p = Preferences::new(
                UtilityFunction::LinearAdditive {
                    weights: vec![1.0],
                    values: vec![ValueFunction::linear_between(0.0, 9.0, at_min, at_max)],
                },
                0.1,
            );
            p.discount = discount;
            Arc::new(p)
        };
        SessionRun::new(domain, vec![prefs(0.0, 1.0), prefs(1.0, 0.0)], deadline, true).unwrap()
    }

    fn offer(x: i64) -> Action {
        Action::Offer(Outcome::from(vec![Value::Integer(x)]))
    }

    fn counted(a: Applied) -> TraceEntry {
        match a {
            Applied::Counted(e) => e,
            other => panic!("expected a counted action, got {other:?}"),
        }
    }

    #[test]
    fn each_party_sees_the_others_actions_before_its_turn() {
        let mut s = setup(Deadline::rounds(10), 1.0);
        let first = s.next_turn(0.0).unwrap();
        assert_eq!((first.party, first.observations.len()), (0, 0));
        counted(s.apply(0, offer(9), 0.0));
        let second = s.next_turn(0.0).unwrap();
        assert_eq!(second.party, 1);
        assert_eq!(second.observations, vec![Observation { party: 0, action: offer(9), time: second.turn.time }]);
        assert_eq!(second.turn.standing.as_ref().map(|st| st.proposer), Some(0));
        counted(s.apply(1, Action::Accept, 0.0));
        let r = s.finish();
        assert_eq!(r.agreement, Some(Outcome::from(vec![Value::Integer(9)])));
        assert_eq!((r.rounds, r.offers, r.trace.len()), (1, 1, 2));
    }

    #[test]
    fn a_counted_action_is_the_entry_the_trace_holds() {
        let mut s = setup(Deadline::rounds(10), 1.0);
        let opening = counted(s.apply(0, offer(9), 0.0));
        let answer = counted(s.apply(1, offer(2), 0.0));
        assert_eq!((opening.round, opening.party, &opening.action), (0, 0, &offer(9)));
        assert_eq!((answer.round, answer.party), (0, 1));
        assert!((opening.time - 1.0 / 11.0).abs() < 1e-12);
        assert_eq!(s.finish().trace, vec![opening, answer]);
    }

    #[test]
    fn out_of_turn_and_outside_domain_are_refused_and_not_traced() {
        let mut s = setup(Deadline::rounds(10), 1.0);
        match s.apply(1, offer(3), 0.0) {
            Applied::Refused { violation } => assert!(violation.contains("out of turn"), "{violation}"),
            other => panic!("unexpected {other:?}"),
        }
        let r = s.finish();
        assert!(matches!(r.ending, Ending::Violation { party: 1, .. }));
        assert_eq!((r.offers, r.trace.len()), (0, 0));
        let mut s = setup(Deadline::rounds(10), 1.0);
        let Applied::Refused { violation } = s.apply(0, offer(42), 0.0) else { panic!("a bid outside the domain") };
        match s.finish().ending {
            Ending::Violation { party: 0, reason } => {
                assert!(reason.contains("outside the domain"), "{reason}");
                assert_eq!(reason, violation, "the refusal names the violation recorded");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn an_accept_with_nothing_on_the_table_is_refused_before_anyone_sees_it() {
        let mut s = setup(Deadline::rounds(10), 1.0);
        assert!(matches!(s.apply(0, Action::Accept, 0.0), Applied::Refused { .. }));
        // Party 1 would have been shown the accept had it counted.
        assert_eq!(s.next_turn(0.0), None, "the violation ended the session");
        let r = s.finish();
        assert!(matches!(r.ending, Ending::Violation { party: 0, .. }));
        assert_eq!(r.trace, Vec::new());
        assert!(!r.trace_truncated);
    }

    #[test]
    fn an_answer_after_the_wall_deadline_is_too_late_and_does_not_count() {
        let mut s = setup(Deadline { rounds: None, seconds: Some(1.0) }, 1.0);
        counted(s.apply(0, offer(5), 0.2));
        assert_eq!(s.apply(1, Action::Accept, 1.5), Applied::TooLate);
        let r = s.finish();
        assert_eq!(r.ending, Ending::Deadline);
        assert_eq!(r.agreement, None);
        assert_eq!(r.utilities, vec![0.1, 0.1]);
        assert_eq!(r.trace.len(), 1);
    }

    #[test]
    fn an_action_after_a_violation_is_too_late_and_blames_nobody_else() {
        let mut s = setup(Deadline::rounds(10), 1.0);
        s.violation(0, "unreachable".into());
        assert_eq!(s.apply(0, offer(1), 0.0), Applied::TooLate);
        assert_eq!(s.apply(1, offer(1), 0.0), Applied::TooLate);
        assert_eq!(s.finish().ending, Ending::Violation { party: 0, reason: "unreachable".into() });
    }

    #[test]
    fn a_setup_the_protocol_refuses_is_an_error() {
        let domain = Arc::new(Domain::new("d", vec![Issue::Integer { name: "x".into(), min: 0, max: 9 }]));
        let one = vec![Arc::new(Preferences::new(
            UtilityFunction::LinearAdditive {
                weights: vec![1.0],
                values: vec![ValueFunction::linear_between(0.0, 9.0, 0.0, 1.0)],
            },
            0.0,
        ))];
        let err = SessionRun::new(domain, one, Deadline::rounds(3), false).err();
        assert_eq!(err, Some(ProtocolError::TooFewParties(1)));
    }

    #[test]
    fn discount_applies_to_results_but_not_to_undiscounted() {
        let mut s = setup(Deadline::rounds(3), 0.5);
        for (party, action) in [(0, offer(9)), (1, offer(0)), (0, offer(9)), (1, Action::Accept)] {
            counted(s.apply(party, action, 0.0));
        }
        let r = s.finish();
        assert_eq!(r.undiscounted, vec![1.0, 0.0]);
        // Agreement in round 1 of 3: relative time 2/4.
        assert!((r.utilities[0] - 0.5f64.powf(0.5)).abs() < 1e-12);
    }

    #[test]
    fn traces_stop_growing_at_the_limit() {
        let mut s = setup(Deadline::rounds(u32::MAX), 1.0);
        for k in 0..(TRACE_LIMIT + 10) {
            counted(s.apply(k % 2, offer((k % 10) as i64), 0.0));
        }
        let r = s.finish();
        assert_eq!(r.trace.len(), TRACE_LIMIT);
        assert!(r.trace_truncated);
        assert_eq!(r.offers, (TRACE_LIMIT + 10) as u64);
    }
}
