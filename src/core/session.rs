//! One negotiation session, independent of how parties are reached.
//!
//! [`SessionRun`] owns the protocol and decides what each party sees: before
//! its turn a party is handed every action of the others since its previous
//! turn, then the turn itself. The direct engine calls strategies with these;
//! the actor engine puts them into messages. Both go through this type, which
//! is why their traces are identical.

use std::sync::Arc;

use serde::Serialize;

use super::domain::{Domain, Outcome};
use super::protocol::{Action, Deadline, Ending, Saop};
use super::rng::SplitMix64;
use super::strategy::{Observation, PartyContext, Turn};
use super::utility::Preferences;

/// Trace entries kept per session. A wall-time deadline between two fast
/// strategies can see millions of offers; past this the trace is cut (and
/// marked so) rather than growing without bound.
pub const TRACE_LIMIT: usize = 100_000;

/// One action in a session's trace.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TraceEntry {
    pub round: u32,
    pub party: usize,
    /// Relative time when it was taken.
    pub time: f64,
    pub action: Action,
}

/// What a finished session produced.
#[derive(Debug, Clone, PartialEq)]
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
}

/// The request a party gets: what happened since its last turn, then the turn.
#[derive(Debug, Clone, PartialEq)]
pub struct TurnRequest {
    pub party: usize,
    pub observations: Vec<Observation>,
    pub turn: Turn,
}

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
    pub fn new(
        domain: Arc<Domain>,
        preferences: Vec<Arc<Preferences>>,
        deadline: Deadline,
        record_trace: bool,
    ) -> Self {
        let n = preferences.len();
        Self {
            domain,
            preferences,
            protocol: Saop::new(n, deadline),
            pending: vec![Vec::new(); n],
            trace: Vec::new(),
            record_trace,
            offers: 0,
            actions: 0,
            last_time: 0.0,
        }
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
            })
            .collect()
    }

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

    /// Applies a party's action; offers outside the domain and acting out of
    /// turn are violations, and an action arriving after the wall-time
    /// deadline is dropped (the deadline ended the session first).
    pub fn apply(&mut self, party: usize, action: Action, elapsed_s: f64) {
        if self.protocol.tick(elapsed_s).is_some() {
            return;
        }
        if self.protocol.next_party() != Some(party) {
            self.protocol.step(party, action);
            return;
        }
        if let Action::Offer(o) = &action {
            if let Err(why) = self.domain.validate(o) {
                self.protocol.violation(party, format!("offer outside the domain: {why}"));
                return;
            }
        }
        let time = self.protocol.relative_time(elapsed_s);
        self.last_time = time;
        let round = self.protocol.round();
        if matches!(action, Action::Offer(_)) {
            self.offers += 1;
        }
        self.actions += 1;
        if self.record_trace && self.trace.len() < TRACE_LIMIT {
            self.trace.push(TraceEntry { round, party, time, action: action.clone() });
        }
        for (p, queue) in self.pending.iter_mut().enumerate() {
            if p != party {
                queue.push(Observation { party, action: action.clone(), time });
            }
        }
        self.protocol.step(party, action);
    }

    /// Whether a wall-time deadline has passed at `elapsed_s`.
    pub fn deadline_passed(&self, elapsed_s: f64) -> bool {
        self.protocol.deadline().seconds.is_some_and(|s| elapsed_s >= s)
    }

    /// A party could not be reached or answered nonsense.
    pub fn fail(&mut self, party: usize, reason: String) {
        self.protocol.violation(party, reason);
    }

    /// Ends the session from outside, blaming no party.
    pub fn abort(&mut self, reason: String) {
        self.protocol.abort(reason);
    }

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
        }
    }
}
