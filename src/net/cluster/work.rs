//! One launcher's work stream as a node decides it, with no I/O.
//!
//! [`LauncherWork`] takes the launcher's messages and the completions of
//! what it asked for, and answers with [`Step`]s for the node's shell:
//! reply, load a scenario, host a session, play a seat. Loading a scenario
//! (parsing it and building its outcome indexes can take seconds) is a step
//! the shell runs off the stream, so heartbeats are answered meanwhile and
//! the launcher does not take a busy node for a dead one; sessions of a
//! scenario still loading wait for it here.
//!
//! `S` is what a loaded scenario is to the shell (the node keeps the parsed
//! scenario and its indexes; the simulated cluster, less).

use std::collections::HashMap;
use std::sync::Arc;

use crate::net::pb;
use crate::net::pb::node_message::Kind as Reply;

/// Scenarios a node keeps loaded for one launcher (the launcher unloads the
/// least recently used idle one beyond this).
pub const MAX_LOADED: usize = 256;

/// What the node's shell must do.
#[derive(Debug)]
pub enum Step<S> {
    Reply(Reply),
    /// Parse, check and index this scenario off the stream, then call
    /// [`LauncherWork::loaded`] with `id` and `load`.
    Load {
        id: u32,
        load: u64,
        json: String,
    },
    /// Host this session (its scenario is ready); call
    /// [`LauncherWork::session_ended`] once it is over or could not start.
    Host {
        session: pb::HostSession,
        scenario: Arc<S>,
    },
    Seat(pb::PlaySeat),
}

enum Loaded<S> {
    /// Being loaded (load number `load`); sessions that came meanwhile.
    Loading {
        load: u64,
        waiting: Vec<pb::HostSession>,
    },
    Ready(Arc<S>),
    /// A scenario that does not load stays as its error, for its sessions.
    Unusable(String),
}

/// The state of one launcher's stream on a node.
pub struct LauncherWork<S> {
    scenarios: HashMap<u32, Loaded<S>>,
    /// Load numbers, so that a load overtaken by an unload and a new load of
    /// the same id is not taken for the new one.
    loads: u64,
    /// Loads asked for and not completed: at most [`MAX_LOADED`].
    loads_out: usize,
    /// Sessions of this launcher here, those waiting for their scenario
    /// included.
    hosting: usize,
    /// The most it may have at a time (`--max-sessions-per-client`).
    max_sessions: usize,
}

fn failed(job: u64, attempt: u32, message: String, draining: bool) -> Reply {
    Reply::Failed(pb::JobFailed { job, attempt, message, draining, peer: String::new() })
}

impl<S> LauncherWork<S> {
    pub fn new(max_sessions: usize) -> Self {
        Self { scenarios: HashMap::new(), loads: 0, loads_out: 0, hosting: 0, max_sessions }
    }

    /// Sessions hosted for this launcher now.
    pub fn hosting(&self) -> usize {
        self.hosting
    }

    /// A message from the launcher. `draining`: the node refuses new work;
    /// `now_unix_ms` stamps heartbeats.
    pub fn on_message(&mut self, kind: pb::launcher_message::Kind, draining: bool, now_unix_ms: u64) -> Vec<Step<S>> {
        use pb::launcher_message::Kind;
        match kind {
            Kind::Scenario(s) => {
                if !self.scenarios.contains_key(&s.id) && self.scenarios.len() >= MAX_LOADED
                    || self.loads_out >= MAX_LOADED
                {
                    let e = format!("this node keeps at most {MAX_LOADED} scenarios loaded per launcher");
                    let old = self.scenarios.insert(s.id, Loaded::Unusable(e));
                    return self.fail_waiting(old, "its scenario was sent again");
                }
                self.loads += 1;
                self.loads_out += 1;
                let old = self.scenarios.insert(s.id, Loaded::Loading { load: self.loads, waiting: Vec::new() });
                let mut steps = self.fail_waiting(old, "its scenario was sent again");
                steps.push(Step::Load { id: s.id, load: self.loads, json: s.scenario_json });
                steps
            }
            Kind::Unload(u) => {
                let old = self.scenarios.remove(&u.id);
                self.fail_waiting(old, "its scenario was unloaded")
            }
            Kind::Host(h) => self.host(h, draining),
            Kind::Seat(s) if draining => {
                vec![Step::Reply(failed(s.job, s.attempt, "the node is draining".into(), true))]
            }
            Kind::Seat(s) => vec![Step::Seat(s)],
            Kind::Heartbeat(_) => vec![Step::Reply(Reply::Heartbeat(pb::Heartbeat { sent_unix_ms: now_unix_ms }))],
        }
    }

    fn host(&mut self, h: pb::HostSession, draining: bool) -> Vec<Step<S>> {
        let (job, attempt) = (h.job, h.attempt);
        if draining {
            return vec![Step::Reply(failed(job, attempt, "the node is draining".into(), true))];
        }
        if self.hosting >= self.max_sessions {
            let message = format!(
                "this node hosts at most {} sessions per launcher at a time (--max-sessions-per-client); lower --window",
                self.max_sessions
            );
            return vec![Step::Reply(failed(job, attempt, message, false))];
        }
        match self.scenarios.get_mut(&h.scenario) {
            Some(Loaded::Ready(scenario)) => {
                self.hosting += 1;
                vec![Step::Host { scenario: scenario.clone(), session: h }]
            }
            Some(Loaded::Loading { waiting, .. }) => {
                self.hosting += 1;
                waiting.push(h);
                Vec::new()
            }
            Some(Loaded::Unusable(e)) => vec![Step::Reply(failed(job, attempt, e.clone(), false))],
            None => {
                let message = format!("scenario {} was not sent on this stream", h.scenario);
                vec![Step::Reply(failed(job, attempt, message, false))]
            }
        }
    }

    /// Load `load` of scenario `id` completed; its waiting sessions start
    /// (or fail with its error).
    pub fn loaded(&mut self, id: u32, load: u64, result: Result<S, String>, draining: bool) -> Vec<Step<S>> {
        self.loads_out = self.loads_out.saturating_sub(1);
        let Some(Loaded::Loading { load: current, .. }) = self.scenarios.get(&id) else { return Vec::new() };
        if *current != load {
            return Vec::new();
        }
        let ready = match result {
            Ok(s) => Ok(Arc::new(s)),
            Err(e) => Err(format!("scenario {id}: {e}")),
        };
        let next = match &ready {
            Ok(s) => Loaded::Ready(s.clone()),
            Err(e) => Loaded::Unusable(e.clone()),
        };
        let waiting = match self.scenarios.insert(id, next) {
            Some(Loaded::Loading { waiting, .. }) => waiting,
            _ => Vec::new(),
        };
        let mut steps = Vec::with_capacity(waiting.len());
        for h in waiting {
            let (message, draining) = match (&ready, draining) {
                (_, true) => ("the node is draining".to_string(), true),
                (Ok(scenario), false) => {
                    steps.push(Step::Host { scenario: scenario.clone(), session: h });
                    continue;
                }
                (Err(e), false) => (e.clone(), false),
            };
            self.hosting -= 1;
            steps.push(Step::Reply(failed(h.job, h.attempt, message, draining)));
        }
        steps
    }

    /// A session hosted here ended, or could not start.
    pub fn session_ended(&mut self) {
        self.hosting = self.hosting.saturating_sub(1);
    }

    /// Fails the sessions that waited for a scenario that went away.
    fn fail_waiting(&mut self, old: Option<Loaded<S>>, why: &str) -> Vec<Step<S>> {
        let Some(Loaded::Loading { waiting, .. }) = old else { return Vec::new() };
        self.hosting -= waiting.len();
        waiting.into_iter().map(|h| Step::Reply(failed(h.job, h.attempt, why.to_string(), false))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pb::launcher_message::Kind;

    fn host(job: u64, scenario: u32) -> Kind {
        Kind::Host(pb::HostSession { job, scenario, ..Default::default() })
    }

    fn load(id: u32) -> Kind {
        Kind::Scenario(pb::LoadScenario { id, scenario_json: "{}".into() })
    }

    #[test]
    fn heartbeats_are_answered_while_a_scenario_loads_and_its_sessions_wait_for_it() {
        let mut w = LauncherWork::<&str>::new(8);
        let steps = w.on_message(load(3), false, 0);
        let [Step::Load { id: 3, load, .. }] = steps[..] else { panic!("{steps:?}") };
        assert!(w.on_message(host(1, 3), false, 0).is_empty(), "waits for its scenario");
        assert!(matches!(
            w.on_message(Kind::Heartbeat(pb::Heartbeat::default()), false, 7)[..],
            [Step::Reply(Reply::Heartbeat(pb::Heartbeat { sent_unix_ms: 7 }))]
        ));
        assert_eq!(w.hosting(), 1);
        let steps = w.loaded(3, load, Ok("ready"), false);
        assert!(matches!(&steps[..], [Step::Host { session, scenario }] if session.job == 1 && **scenario == "ready"));
        assert!(matches!(&w.on_message(host(2, 3), false, 0)[..], [Step::Host { .. }]));
        assert_eq!(w.hosting(), 2);
    }

    #[test]
    fn a_scenario_that_fails_to_load_fails_its_sessions_then_and_later() {
        let mut w = LauncherWork::<()>::new(8);
        w.on_message(load(1), false, 0);
        w.on_message(host(5, 1), false, 0);
        let steps = w.loaded(1, 1, Err("bad table".into()), false);
        assert!(matches!(&steps[..], [Step::Reply(Reply::Failed(f))] if f.job == 5 && f.message.contains("bad table")));
        assert!(matches!(&w.on_message(host(6, 1), false, 0)[..], [Step::Reply(Reply::Failed(f))] if f.job == 6));
        assert_eq!(w.hosting(), 0);
    }

    #[test]
    fn a_load_overtaken_by_unload_and_reload_is_ignored() {
        let mut w = LauncherWork::<u8>::new(8);
        w.on_message(load(1), false, 0);
        w.on_message(host(1, 1), false, 0);
        let failed = w.on_message(Kind::Unload(pb::UnloadScenario { id: 1 }), false, 0);
        assert!(matches!(&failed[..], [Step::Reply(Reply::Failed(f))] if f.job == 1));
        w.on_message(load(1), false, 0);
        assert!(w.loaded(1, 1, Ok(1), false).is_empty(), "the first load is stale");
        w.on_message(host(2, 1), false, 0);
        assert!(matches!(&w.loaded(1, 2, Ok(2), false)[..], [Step::Host { scenario, .. }] if **scenario == 2));
    }

    #[test]
    fn caps_and_draining_refuse_with_the_reason() {
        let mut w = LauncherWork::<()>::new(1);
        w.on_message(load(1), false, 0);
        w.loaded(1, 1, Ok(()), false);
        assert!(matches!(&w.on_message(host(1, 1), false, 0)[..], [Step::Host { .. }]));
        assert!(matches!(&w.on_message(host(2, 1), false, 0)[..],
            [Step::Reply(Reply::Failed(f))] if f.message.contains("at most 1") && !f.draining));
        w.session_ended();
        assert!(matches!(&w.on_message(host(3, 1), true, 0)[..], [Step::Reply(Reply::Failed(f))] if f.draining));
        assert!(matches!(&w.on_message(host(4, 9), false, 0)[..],
            [Step::Reply(Reply::Failed(f))] if f.message.contains("not sent")));
        for id in 2..=MAX_LOADED as u32 {
            w.on_message(load(id), false, 0);
        }
        let refused = w.on_message(load(10_000), false, 0);
        assert!(refused.is_empty());
        assert!(matches!(&w.on_message(host(5, 10_000), false, 0)[..],
            [Step::Reply(Reply::Failed(f))] if f.message.contains("at most 256")));
    }
}
