//! Python strategies (`{ python = "module:Class" }`): sessions whose
//! Python parties are seated by an agent host (`negotium-agents serve`,
//! from the package in `python/`), as [`AgentHosted`], one more
//! [`Executor`].
//!
//! The executor hosts the batch's sessions in this process, behind a node
//! listening on 127.0.0.1 only: every Python party is an external seat,
//! every other party a local actor. One host process (with one worker per
//! core) joins the Python seats over the public API, as any agent would, and
//! keeps each agent behind a hard per-call deadline: an agent that hangs,
//! raises or dies is cut off with a recorded violation and the rest of the
//! batch goes on. Results reach the caller in job order, as from the local
//! executors, so a run's records, summary and plots are the same whether its
//! parties are native or Python.
//!
//! [`check`] asks the host whether each class imports and instantiates
//! before anything runs: a missing Python, package or class is a clear
//! error naming what to install.

use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use serde_json::{Value as Json, json};
use tokio::sync::{mpsc, oneshot};

use super::server::{HostOptions, Hosting, ServerConfig};
use crate::core::scenario::{Party, Scenario};
use crate::core::session::SessionResult;
use crate::core::strategy::StrategySpec;
use crate::core::terms::Presentation;
use crate::engine::executor::{ExecError, Executor, Finished, Jobs, OnDone, Report, Stages};

/// Seconds a Python agent may take per call unless its strategy says
/// `deadline = S`.
pub const DEFAULT_DEADLINE: f64 = 10.0;
/// How long the host may take to start its workers (they import NegMAS).
const READY_WITHIN: Duration = Duration::from_secs(120);
/// How long a seat may take to join: the host forks a process per seat.
const JOIN_WITHIN: Duration = Duration::from_secs(60);
/// Errors of the host echoed to the terminal, at most (the rest counted).
const SHOWN_ERRORS: usize = 20;

/// Which Python runs the host, and with how many workers.
#[derive(Debug, Clone)]
pub struct PythonHost {
    /// `NEGOTIUM_PYTHON`, or `python3`.
    pub python: String,
    /// Worker processes; `None`: the host's default (one per core).
    pub workers: Option<usize>,
}

impl PythonHost {
    pub fn from_env() -> Self {
        let python =
            std::env::var("NEGOTIUM_PYTHON").ok().filter(|p| !p.is_empty()).unwrap_or_else(|| "python3".into());
        Self { python, workers: None }
    }

    fn command(&self) -> Command {
        let mut c = Command::new(&self.python);
        c.args(["-m", "negotium.host"]);
        c
    }
}

/// Whether every Python strategy among `specs` can be played: the Python
/// runs, the package is installed, each class imports and takes its
/// parameters. The error says what to install or fix.
pub fn check<'a>(host: &PythonHost, specs: impl IntoIterator<Item = &'a StrategySpec>) -> Result<(), String> {
    let mut seen = BTreeMap::new();
    for spec in specs.into_iter().filter(|s| s.is_python()) {
        seen.entry(spec.to_json().to_string()).or_insert(spec);
    }
    // Each check imports its agent's package (seconds for NegMAS's): all
    // at once, then their answers in order.
    let mut checks = Vec::new();
    for spec in seen.values() {
        let class = spec.python_class().unwrap_or_default();
        let params = spec.params.get("params").cloned().unwrap_or_else(|| json!({}));
        let child = host
            .command()
            .args(["check", class, "--params", &params.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                format!(
                    "cannot run `{}` for the Python strategy {class}: {e}; install Python 3.10+ or set \
                     NEGOTIUM_PYTHON",
                    host.python
                )
            })?;
        checks.push((class, child));
    }
    for (class, child) in checks {
        let out = child.wait_with_output().map_err(|e| format!("checking the Python strategy {class}: {e}"))?;
        if out.status.success() {
            continue;
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        let said = stderr.trim().lines().last().unwrap_or("").trim();
        if stderr.contains("No module named 'negotium'") || stderr.contains("No module named negotium") {
            return Err(format!(
                "the Python package `negotium` is not installed for {}: pip install ./python (from the negotium \
                 repository; add [negmas] for NegMAS agents), or set NEGOTIUM_PYTHON to a Python that has it",
                host.python
            ));
        }
        return Err(format!("Python strategy {class}: {said}"));
    }
    Ok(())
}

/// Sessions with Python parties: see the module comment.
#[derive(Debug, Clone)]
pub struct AgentHosted {
    pub host: PythonHost,
    /// Sessions in flight at once (each Python seat is a process while its
    /// session runs).
    pub concurrency: usize,
    /// The longest per-call deadline of the batch's Python strategies
    /// ([`longest_deadline`]): the node's turn timeout stays behind it.
    pub deadline: f64,
}

/// The longest per-call deadline among `specs`' Python strategies.
pub fn longest_deadline<'a>(specs: impl IntoIterator<Item = &'a StrategySpec>) -> f64 {
    specs
        .into_iter()
        .filter(|s| s.is_python())
        .map(|s| s.params.get("deadline").and_then(Json::as_f64).unwrap_or(DEFAULT_DEADLINE))
        .fold(DEFAULT_DEADLINE, f64::max)
}

impl Executor for AgentHosted {
    fn label(&self) -> &'static str {
        "agent-host"
    }

    fn shares_indexes(&self) -> bool {
        true
    }

    fn execute(
        &self,
        stages: &dyn Stages,
        trace: bool,
        jobs: Jobs,
        on_done: &mut OnDone<'_>,
    ) -> Result<Report, ExecError> {
        let system = actix::System::with_tokio_rt(|| {
            tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("a tokio runtime")
        });
        system.block_on(self.run(stages, trace, jobs, on_done))
    }
}

/// What the host's stdout says, as the executor needs it.
enum HostEvent {
    Ready,
    /// A seat it could not take (session id, message).
    Refused(Option<String>, String),
    /// Its stdout closed: the host is gone.
    Exited,
}

/// The host process; killed when dropped, so that no worker outlives a
/// batch that failed.
struct HostProcess {
    child: Child,
    stdin: Option<ChildStdin>,
}

impl Drop for HostProcess {
    fn drop(&mut self) {
        drop(self.stdin.take());
        // A host told of the end of its input exits once its seats end; give
        // it a moment before making sure.
        for _ in 0..20 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl HostProcess {
    fn start(host: &PythonHost, server: &str) -> Result<(Self, mpsc::UnboundedReceiver<HostEvent>), ExecError> {
        let mut cmd = host.command();
        cmd.args(["serve", "--server", server]);
        if let Some(n) = host.workers {
            cmd.args(["--workers", &n.to_string()]);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| ExecError::Host(format!("cannot start `{} -m negotium.host`: {e}", host.python)))?;
        let stdout = child.stdout.take().expect("piped stdout");
        let stdin = child.stdin.take();
        let (tx, rx) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let Ok(event) = serde_json::from_str::<Json>(&line) else { continue };
                let kind = event.get("event").and_then(Json::as_str).unwrap_or("");
                let sent = match kind {
                    "ready" => tx.send(HostEvent::Ready),
                    "error" => {
                        let session = event.get("session").and_then(Json::as_str).map(str::to_string);
                        let party = event.get("party").and_then(Json::as_str).unwrap_or("");
                        let message = event.get("message").and_then(Json::as_str).unwrap_or("");
                        tx.send(HostEvent::Refused(session, format!("{party}: {message}")))
                    }
                    _ => Ok(()),
                };
                if sent.is_err() {
                    return;
                }
            }
            let _ = tx.send(HostEvent::Exited);
        });
        Ok((Self { child, stdin }, rx))
    }

    /// Hands the host one seat to play.
    fn seat(&mut self, line: &Json) -> Result<(), ExecError> {
        let stdin = self.stdin.as_mut().ok_or_else(|| ExecError::Host("the host's input is closed".into()))?;
        writeln!(stdin, "{line}")
            .and_then(|()| stdin.flush())
            .map_err(|e| ExecError::Host(format!("the agent host stopped taking seats: {e}")))
    }
}

impl AgentHosted {
    async fn run(
        &self,
        stages: &dyn Stages,
        trace: bool,
        mut jobs: Jobs,
        on_done: &mut OnDone<'_>,
    ) -> Result<Report, ExecError> {
        let host_error = |e: std::io::Error| ExecError::Host(format!("cannot listen on 127.0.0.1: {e}"));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(host_error)?;
        let server = listener.local_addr().map_err(host_error)?.to_string();
        // The host cuts an agent off at its own deadline and says why; the
        // node's turn timeout is only the backstop behind it.
        let hosting = Hosting::start(ServerConfig {
            turn_timeout: Duration::try_from_secs_f64(self.deadline.max(DEFAULT_DEADLINE) + 5.0)
                .unwrap_or(Duration::from_secs(60)),
            setup_allowance: Duration::from_secs(60),
            join_timeout: JOIN_WITHIN,
            ..ServerConfig::default()
        });
        let service = hosting.service.clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let serving = tokio::spawn(hosting.serve(listener, None, None, async {
            let _ = stopped.await;
        }));
        let (mut process, mut events) = HostProcess::start(&self.host, &server)?;
        match tokio::time::timeout(READY_WITHIN, events.recv()).await {
            Ok(Some(HostEvent::Ready)) => {}
            Ok(Some(HostEvent::Refused(_, m))) => return Err(ExecError::Host(format!("the agent host refused: {m}"))),
            Ok(Some(HostEvent::Exited) | None) => {
                return Err(ExecError::Host("the agent host exited before it was ready".into()));
            }
            Err(_) => return Err(ExecError::Host(format!("the agent host was not ready within {READY_WITHIN:?}"))),
        }

        let mut in_flight: VecDeque<(u64, oneshot::Receiver<SessionResult>)> = VecDeque::new();
        let mut sessions = 0u64;
        let mut errors = 0usize;
        let outcome: Result<(), ExecError> = async {
            loop {
                while in_flight.len() < self.concurrency.max(1) {
                    let Some(job) = jobs.next() else { break };
                    let stage = stages.stage(job.stage);
                    let parties = stage
                        .party_names
                        .iter()
                        .zip(&stage.preferences)
                        .zip(&job.strategies)
                        .map(|((name, prefs), s)| Party {
                            name: name.clone(),
                            preferences: prefs.clone(),
                            strategy: s.clone(),
                            external: s.is_python(),
                        })
                        .collect();
                    let scenario = Scenario {
                        name: stage.name.clone(),
                        description: String::new(),
                        domain: stage.domain.clone(),
                        parties,
                        deadline: stage.deadline,
                        seed: job.seed,
                        presentation: Presentation::default(),
                    };
                    let (tx, rx) = oneshot::channel();
                    let options = HostOptions { shared_indexes: stage.indexes.clone(), trace, on_result: Some(tx) };
                    let created = service
                        .host(scenario, job.seed, None, JOIN_WITHIN, options)
                        .map_err(|s| ExecError::Host(format!("hosting a session: {}", s.message())))?;
                    for (party, token) in &created.tokens {
                        let k = stage.party_names.iter().position(|n| n == party).unwrap_or_default();
                        let spec = &job.strategies[k];
                        process.seat(&json!({
                            "session": created.session_id,
                            "party": party,
                            "token": token,
                            "agent": spec.python_class(),
                            "params": spec.params.get("params").cloned().unwrap_or_else(|| json!({})),
                            "deadline": spec.params.get("deadline").and_then(Json::as_f64).unwrap_or(DEFAULT_DEADLINE),
                        }))?;
                    }
                    in_flight.push_back((job.key, rx));
                }
                let Some((key, mut rx)) = in_flight.pop_front() else { return Ok(()) };
                let result = loop {
                    tokio::select! {
                        r = &mut rx => break r.map_err(|_| ExecError::Host("a hosted session ended without a result".into()))?,
                        e = events.recv() => match e {
                            Some(HostEvent::Refused(session, message)) => {
                                errors += 1;
                                if errors <= SHOWN_ERRORS {
                                    eprintln!("agent host: {message}");
                                }
                                // A seat that will never be joined: end its
                                // session now rather than at the join timeout.
                                if let Some(id) = session {
                                    service.abort(&id, format!("the agent host could not seat {message}"));
                                }
                            }
                            Some(HostEvent::Ready) => {}
                            Some(HostEvent::Exited) | None => {
                                return Err(ExecError::Host("the agent host exited during the run".into()));
                            }
                        },
                    }
                };
                sessions += 1;
                let caught_up = in_flight.is_empty();
                on_done(Finished { key, result, placed: None, caught_up, trace_text: None }).map_err(ExecError::Stopped)?;
            }
        }
        .await;
        if errors > SHOWN_ERRORS {
            eprintln!("agent host: {} more errors not shown", errors - SHOWN_ERRORS);
        }
        drop(process);
        let _ = stop.send(());
        let _ = serving.await;
        outcome.map(|()| Report { sessions, ..Report::default() })
    }
}
