//! Which negotiations a tournament holds, each under a stable key.
//!
//! For a scenario with n parties and S strategies:
//!
//! - every assignment of strategies to parties is played: all S^n n-tuples
//!   (bilateral: all ordered pairs), so each strategy plays each profile
//!   against every combination of the others. Without self-play the S
//!   tuples that give every party the same strategy are left out (NegMAS'
//!   rule; for two parties: ordered pairs of different strategies).
//! - with `rotate_order`, each assignment is also played with the turn order
//!   rotated n times, so every profile opens once (NegMAS' `rotate_ufuns`);
//! - each of these `repetitions` times.
//!
//! Sessions per scenario: (S^n, minus S without self-play) × (n with
//! rotation, else 1) × repetitions. Full tuples rather than combinations
//! keep every (strategy, profile, position) cell equally filled, which is
//! what makes per-strategy means comparable; the price is S^n growth, so
//! multilateral tournaments with many strategies grow fast.
//!
//! A session's key names the scenario, the parties in turn order with their
//! strategies, and the repetition: `series-a:founder=boulware,investor=conceder#0`.
//! It does not depend on the order of the file's lists, so adding a strategy
//! or scenario to a tournament leaves the keys (and seeds) of the sessions
//! already run as they were. Its seed is derived from the tournament seed and
//! the key. (A record's `session` number is its position in the plan when it
//! ran; after the file changes, only `key` still identifies it.)

use std::collections::HashSet;

use super::config::Tournament;
use crate::core::rng::SplitMix64;

/// More sessions than this is almost certainly a mistake (S^n growth).
pub const MAX_SESSIONS: u64 = 50_000_000;

/// One negotiation of the tournament.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    /// Position in the plan (the order of results.csv).
    pub index: usize,
    /// Index into `Tournament::venues`.
    pub venue: usize,
    /// Which party opens: session position j is the scenario's party
    /// `(rotation + j) % n`.
    pub rotation: usize,
    /// Entrant (index into `Tournament::entrants`) per session position.
    pub assignment: Vec<usize>,
    pub repetition: u32,
    pub key: String,
    pub seed: u64,
}

/// Scenario party at session position `j` under `rotation`.
pub fn party_at(rotation: usize, j: usize, n: usize) -> usize {
    (rotation + j) % n
}

/// Every session of the tournament, in a fixed order: scenario, assignment
/// (over the scenario's parties), rotation, repetition.
pub fn plan(t: &Tournament) -> Result<Vec<Planned>, String> {
    let s = t.entrants.len();
    let mut total: u64 = 0;
    for v in &t.venues {
        let n = v.scenario.parties.len();
        let tuples = (s as u64).checked_pow(n as u32).unwrap_or(u64::MAX);
        let tuples = if t.self_play { tuples } else { tuples.saturating_sub(s as u64) };
        let rotations = if t.rotate_order { n as u64 } else { 1 };
        total = total.saturating_add(tuples.saturating_mul(rotations).saturating_mul(t.repetitions as u64));
    }
    if total > MAX_SESSIONS {
        return Err(format!(
            "this tournament holds {total} negotiations (more than {MAX_SESSIONS}): \
             fewer strategies, parties or repetitions, or rotate_order = false"
        ));
    }

    let mut sessions = Vec::with_capacity(total as usize);
    let mut keys = HashSet::with_capacity(total as usize);
    for (vi, v) in t.venues.iter().enumerate() {
        let n = v.scenario.parties.len();
        let rotations = if t.rotate_order { n } else { 1 };
        // Tuple number `code` in base S: tuple[p] = entrant of scenario
        // party p, the last party's entrant varying fastest.
        for code in 0..(s as u64).pow(n as u32) {
            let mut tuple = vec![0usize; n];
            let mut rest = code;
            for slot in tuple.iter_mut().rev() {
                *slot = (rest % s as u64) as usize;
                rest /= s as u64;
            }
            if !t.self_play && tuple.iter().all(|&e| e == tuple[0]) {
                continue;
            }
            for rotation in 0..rotations {
                let assignment: Vec<usize> = (0..n).map(|j| tuple[party_at(rotation, j, n)]).collect();
                let roles: Vec<String> = assignment
                    .iter()
                    .enumerate()
                    .map(|(j, &e)| {
                        format!("{}={}", v.scenario.parties[party_at(rotation, j, n)].name, t.entrants[e].label)
                    })
                    .collect();
                for repetition in 0..t.repetitions {
                    let key = format!("{}:{}#{repetition}", v.label, roles.join(","));
                    if !keys.insert(key.clone()) {
                        return Err(format!(
                            "two sessions share the key `{key}`: strategy labels or party names \
                             contain `,`, `=` or `#` in a way that makes keys ambiguous; relabel them"
                        ));
                    }
                    sessions.push(Planned {
                        index: sessions.len(),
                        venue: vi,
                        rotation,
                        assignment: assignment.clone(),
                        repetition,
                        seed: session_seed(t.seed, &key),
                        key,
                    });
                }
            }
        }
    }
    Ok(sessions)
}

/// The negotiation seed of a session: the tournament seed mixed with a hash
/// of the key (FNV-1a, stable across platforms and releases).
pub fn session_seed(tournament_seed: u64, key: &str) -> u64 {
    let mut h: u64 = 0xCBF2_9CE4_8422_2325;
    for b in key.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01B3);
    }
    SplitMix64::derive(tournament_seed, h).next_u64()
}
