//! The parameter server: holds the parameters and Adam's state, and runs
//! synchronous data-parallel steps. For version v it hands each expected
//! worker the parameters and its shard, gathers their gradients, averages
//! them weighted by sample count, applies Adam and publishes v+1.
//!
//! [`PsCore`] is the whole policy as a state machine with time as an input
//! (no sockets, no clock), so staleness, timeouts and rejoining are unit
//! tested in microseconds; [`ParameterServer`] is the actix actor around it
//! that parks fetches until there is work, ticks the clock and writes
//! checkpoints. Local worker threads and the gRPC service both talk to the
//! actor through the same messages.
//!
//! Lifecycle: workers join (the first step waits for `workers` of them);
//! the expected set and shards are fixed at the start of every iteration
//! (workers joining mid-iteration wait for the next one); an expected worker
//! silent for `worker_timeout_s` is dropped and the step completes with the
//! others; a dropped worker's next call is refused and it joins again.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use serde::{Deserialize, Serialize};
use thiserror::Error;
use tokio::sync::{mpsc, oneshot};

use super::checkpoint::{self, Checkpoint};
use super::config::TrainConfig;
use super::model::PolicySpec;
use super::ppo::LossStats;

#[derive(Debug, Clone, Error, PartialEq)]
pub enum PsError {
    #[error("unknown worker {0} (dropped after a timeout?); join again")]
    UnknownWorker(u64),
    #[error("gradient for version {got}, but the parameter server is at {at}")]
    FutureVersion { got: u64, at: u64 },
    /// A gradient that cannot be averaged: refused, counted, and the step
    /// waits for a good one (or drops the worker at its timeout).
    #[error("gradient refused: {0}")]
    BadGradient(String),
    /// More workers than the server takes.
    #[error("the parameter server has its maximum of {0} workers")]
    Full(usize),
    #[error("{0}")]
    Other(String),
}

/// Adam on the flat parameter vector. Ours rather than burn's optimizer:
/// it never sees ParamIds (see [`super::params`]), its state is two plain
/// vectors that checkpoint as they are, and it is bit-for-bit reproducible.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Adam {
    pub lr: f64,
    pub t: u64,
    pub m: Vec<f32>,
    pub v: Vec<f32>,
}

impl Adam {
    const B1: f64 = 0.9;
    const B2: f64 = 0.999;
    const EPS: f64 = 1e-8;

    pub fn new(lr: f64, n: usize) -> Self {
        Self { lr, t: 0, m: vec![0.0; n], v: vec![0.0; n] }
    }

    pub fn step(&mut self, params: &mut [f32], grad: &[f32]) {
        self.t += 1;
        let c1 = 1.0 - Self::B1.powi(self.t as i32);
        let c2 = 1.0 - Self::B2.powi(self.t as i32);
        for (((p, g), m), v) in params.iter_mut().zip(grad).zip(&mut self.m).zip(&mut self.v) {
            let g = *g as f64;
            let m1 = Self::B1 * *m as f64 + (1.0 - Self::B1) * g;
            let v1 = Self::B2 * *v as f64 + (1.0 - Self::B2) * g * g;
            *m = m1 as f32;
            *v = v1 as f32;
            let upd = self.lr * (m1 / c1) / ((v1 / c2).sqrt() + Self::EPS);
            *p = (*p as f64 - upd) as f32;
        }
    }
}

/// What a worker reports with its gradient.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkerStats {
    pub loss: LossStats,
    pub episodes: u64,
    pub reward_sum: f64,
    pub agreements: u64,
}

/// A gradient for one version, over `samples` decisions.
#[derive(Debug, Clone, PartialEq)]
pub struct GradientMsg {
    pub worker: u64,
    pub version: u64,
    pub grad: Vec<f32>,
    pub samples: u64,
    pub stats: WorkerStats,
}

/// Work for one step: parameters of `version` and the worker's shard of
/// iteration `iteration` (episodes j with j % shards == shard).
#[derive(Debug, Clone, PartialEq)]
pub struct Assignment {
    pub version: u64,
    pub iteration: u64,
    pub params: Arc<Vec<f32>>,
    pub shard: usize,
    pub shards: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub enum FetchReply {
    Work(Assignment),
    /// Nothing for this worker yet (parked by the actor, never sent).
    Wait,
    /// Training is over.
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushAck {
    Accepted,
    /// Too old (beyond the staleness bound) or not part of this step.
    Ignored,
}

/// One applied step, for progress bars, metrics and tests.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StepReport {
    /// The version published by this step.
    pub version: u64,
    pub iteration: u64,
    pub workers: usize,
    pub samples: u64,
    pub episodes: u64,
    pub mean_reward: f64,
    pub agreement_rate: f64,
    pub loss: f32,
    pub policy_loss: f32,
    pub value_loss: f32,
    pub entropy: f32,
    pub grad_norm: f64,
    /// Time from the previous publication to this one, on the clock the
    /// caller passes in.
    pub step_s: f64,
    /// Of which the parameter server spent in the call that completed the
    /// step (averaging and updating). Measured by the actor around the
    /// call: [`PsCore`] reads no clock and leaves it 0.
    pub ps_s: f64,
    /// Workers dropped during this step.
    pub dropped: Vec<u64>,
}

/// The parameter server's state machine. Time is passed in as `now`, the
/// time since an origin the caller picks (the actor: its start; tests:
/// simulated seconds); it never reads a clock, so the same calls give the
/// same reports bit for bit.
#[derive(Debug, Clone)]
pub struct PsCore {
    cfg: TrainConfig,
    params: Arc<Vec<f32>>,
    adam: Adam,
    version: u64,
    next_id: u64,
    /// Registered workers and when each was last heard from.
    live: BTreeMap<u64, Duration>,
    started: bool,
    /// Workers expected in this iteration's steps, with their shard.
    expected: BTreeMap<u64, usize>,
    received: BTreeMap<u64, GradientMsg>,
    dropped: Vec<u64>,
    step_started: Duration,
    /// Workers already told that training is over.
    told_done: BTreeSet<u64>,
    /// Gradients refused as malformed, since the start.
    refused: u64,
}

/// Workers one parameter server registers at most (each costs a map entry
/// and, while expected, a gradient): a flood of joins is refused, not
/// stored.
pub const MAX_WORKERS: usize = 1024;
/// Samples one gradient may claim (its weight in the average).
const MAX_SAMPLES: u64 = 1 << 40;

impl PsCore {
    /// A fresh run of `cfg`. Refuses a config that does not validate: the
    /// core divides by its epochs and turns its timeout into a `Duration`.
    pub fn new(cfg: TrainConfig) -> Result<Self, String> {
        cfg.validate()?;
        let spec = PolicySpec::new(cfg.hidden);
        let params = spec.initial_params(cfg.seed);
        let adam = Adam::new(cfg.learning_rate, params.len());
        Ok(Self::from_parts(cfg, params, adam, 0))
    }

    /// A run of `cfg` continued from `ck`; refuses a checkpoint whose
    /// vectors do not fit the config's model.
    pub fn resume(cfg: TrainConfig, ck: Checkpoint) -> Result<Self, String> {
        cfg.validate()?;
        let n = PolicySpec::new(cfg.hidden).n_params();
        if ck.params.len() != n {
            return Err(format!("checkpoint holds {} parameters; this config's model has {n}", ck.params.len()));
        }
        // Adam zips its moments with the parameters: a short one would
        // silently freeze the parameters past its end.
        if ck.adam.m.len() != n || ck.adam.v.len() != n {
            return Err(format!(
                "checkpoint's optimizer state holds {} and {} moments for {n} parameters",
                ck.adam.m.len(),
                ck.adam.v.len()
            ));
        }
        Ok(Self::from_parts(cfg, ck.params, ck.adam, ck.version))
    }

    fn from_parts(cfg: TrainConfig, params: Vec<f32>, adam: Adam, version: u64) -> Self {
        Self {
            cfg,
            params: Arc::new(params),
            adam,
            version,
            next_id: 1,
            live: BTreeMap::new(),
            started: false,
            expected: BTreeMap::new(),
            received: BTreeMap::new(),
            dropped: Vec::new(),
            step_started: Duration::ZERO,
            told_done: BTreeSet::new(),
            refused: 0,
        }
    }

    /// Gradients refused as malformed so far.
    pub fn refused(&self) -> u64 {
        self.refused
    }

    /// Why `msg` cannot be averaged, if it cannot: a wrong length (a `zip`
    /// would silently truncate it), a number that is not finite, a weight
    /// of no samples or of absurdly many.
    fn malformed(&self, msg: &GradientMsg) -> Option<String> {
        if msg.grad.len() != self.params.len() {
            return Some(format!("{} values for a model of {} parameters", msg.grad.len(), self.params.len()));
        }
        if let Some(k) = msg.grad.iter().position(|g| !g.is_finite()) {
            return Some(format!("value {k} is {}", msg.grad[k]));
        }
        if msg.samples == 0 || msg.samples > MAX_SAMPLES {
            return Some(format!("{} samples", msg.samples));
        }
        let l = &msg.stats.loss;
        if ![l.loss, l.policy, l.value, l.entropy].iter().all(|x| x.is_finite()) || !msg.stats.reward_sum.is_finite() {
            return Some("statistics that are not finite".into());
        }
        None
    }

    pub fn config(&self) -> &TrainConfig {
        &self.cfg
    }
    pub fn version(&self) -> u64 {
        self.version
    }
    pub fn params(&self) -> &Arc<Vec<f32>> {
        &self.params
    }
    pub fn is_done(&self) -> bool {
        self.version >= self.cfg.total_steps()
    }
    /// Training is over and every registered worker has heard so.
    pub fn all_told(&self) -> bool {
        self.is_done() && self.live.keys().all(|id| self.told_done.contains(id))
    }
    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            version: self.version,
            params: self.params.to_vec(),
            adam: self.adam.clone(),
            config: self.cfg.clone(),
        }
    }

    fn iteration(&self) -> u64 {
        self.version / self.cfg.epochs
    }

    /// Fixes who works on the iteration starting now, and their shards.
    fn assign(&mut self, now: Duration) {
        self.expected = self.live.keys().enumerate().map(|(shard, &id)| (id, shard)).collect();
        self.received.clear();
        self.step_started = now;
    }

    pub fn join(&mut self, now: Duration) -> Result<u64, PsError> {
        if self.live.len() >= MAX_WORKERS {
            return Err(PsError::Full(MAX_WORKERS));
        }
        let id = self.next_id;
        self.next_id += 1;
        self.live.insert(id, now);
        if !self.started && self.live.len() >= self.cfg.workers {
            self.started = true;
            self.assign(now);
        } else if self.started && self.expected.is_empty() {
            // Everyone else was dropped: restart the iteration with whoever is here.
            self.assign(now);
        }
        Ok(id)
    }

    fn seen(&mut self, id: u64, now: Duration) -> Result<(), PsError> {
        match self.live.get_mut(&id) {
            Some(t) => {
                *t = now;
                Ok(())
            }
            None => Err(PsError::UnknownWorker(id)),
        }
    }

    /// Work for `id` newer than `after`, if any.
    pub fn fetch(&mut self, id: u64, after: Option<u64>, now: Duration) -> Result<FetchReply, PsError> {
        self.seen(id, now)?;
        if self.is_done() {
            self.told_done.insert(id);
            return Ok(FetchReply::Done);
        }
        let fresh = after.is_none_or(|a| a < self.version);
        match self.expected.get(&id) {
            Some(&shard) if self.started && fresh && !self.received.contains_key(&id) => {
                Ok(FetchReply::Work(Assignment {
                    version: self.version,
                    iteration: self.iteration(),
                    params: self.params.clone(),
                    shard,
                    shards: self.expected.len(),
                }))
            }
            _ => Ok(FetchReply::Wait),
        }
    }

    /// A gradient arrives; returns the step it completed, if any.
    pub fn push(&mut self, msg: GradientMsg, now: Duration) -> Result<(PushAck, Option<StepReport>), PsError> {
        self.seen(msg.worker, now)?;
        if msg.version > self.version {
            return Err(PsError::FutureVersion { got: msg.version, at: self.version });
        }
        if let Some(why) = self.malformed(&msg) {
            self.refused += 1;
            tracing::warn!(worker = msg.worker, refused = self.refused, "gradient refused: {why}");
            return Err(PsError::BadGradient(why));
        }
        if self.version - msg.version > self.cfg.staleness || !self.expected.contains_key(&msg.worker) {
            return Ok((PushAck::Ignored, None));
        }
        match self.received.get(&msg.worker) {
            Some(old) if old.version >= msg.version => return Ok((PushAck::Ignored, None)),
            _ => {}
        }
        self.received.insert(msg.worker, msg);
        Ok((PushAck::Accepted, self.try_step(now)))
    }

    /// Drops expected workers silent past the timeout (and registered ones
    /// that never came back, so that joins cannot pile up); may complete a
    /// step.
    pub fn tick(&mut self, now: Duration) -> Option<StepReport> {
        // A config that was never validated (a library caller's) must not
        // panic here: a timeout too large for a Duration is no timeout.
        let timeout = Duration::try_from_secs_f64(self.cfg.worker_timeout_s).unwrap_or(Duration::MAX);
        let gone: Vec<u64> = self
            .live
            .iter()
            .filter(|(id, t)| !self.expected.contains_key(id) && now.saturating_sub(**t) > timeout.saturating_mul(4))
            .map(|(&id, _)| id)
            .collect();
        for id in gone {
            self.live.remove(&id);
        }
        let late: Vec<u64> = self
            .expected
            .keys()
            .filter(|id| !self.received.contains_key(id))
            .filter(|id| self.live.get(id).is_none_or(|&t| now.saturating_sub(t) > timeout))
            .copied()
            .collect();
        for id in late {
            tracing::warn!(worker = id, version = self.version, "worker timed out; dropped from the step");
            self.expected.remove(&id);
            self.live.remove(&id);
            self.dropped.push(id);
        }
        self.try_step(now)
    }

    fn try_step(&mut self, now: Duration) -> Option<StepReport> {
        if !self.started || self.is_done() || self.expected.is_empty() {
            return None;
        }
        if !self.expected.keys().all(|id| self.received.contains_key(id)) {
            return None;
        }
        // Sum in shard order, never arrival order: the same inputs give the
        // same bits however the network interleaved them.
        let mut parts: Vec<&GradientMsg> = self.received.values().collect();
        parts.sort_by_key(|m| self.expected.get(&m.worker).copied().unwrap_or(usize::MAX));
        let total: u64 = parts.iter().map(|m| m.samples).sum();
        let mut avg = vec![0.0f64; self.params.len()];
        let mut report = StepReport { workers: parts.len(), samples: total, ..StepReport::default() };
        if total > 0 {
            for m in &parts {
                let w = m.samples as f64 / total as f64;
                for (a, g) in avg.iter_mut().zip(&m.grad) {
                    *a += *g as f64 * w;
                }
                report.loss += m.stats.loss.loss * w as f32;
                report.policy_loss += m.stats.loss.policy * w as f32;
                report.value_loss += m.stats.loss.value * w as f32;
                report.entropy += m.stats.loss.entropy * w as f32;
            }
        }
        let episodes: u64 = parts.iter().map(|m| m.stats.episodes).sum();
        if episodes > 0 {
            report.mean_reward = parts.iter().map(|m| m.stats.reward_sum).sum::<f64>() / episodes as f64;
            report.agreement_rate = parts.iter().map(|m| m.stats.agreements).sum::<u64>() as f64 / episodes as f64;
        }
        report.episodes = episodes;
        let norm = avg.iter().map(|g| g * g).sum::<f64>().sqrt();
        report.grad_norm = norm;
        let scale = if self.cfg.max_grad_norm > 0.0 && norm > self.cfg.max_grad_norm {
            self.cfg.max_grad_norm / norm
        } else {
            1.0
        };
        let grad: Vec<f32> = avg.iter().map(|g| (g * scale) as f32).collect();
        let mut params = self.params.to_vec();
        self.adam.step(&mut params, &grad);
        self.params = Arc::new(params);
        self.version += 1;
        self.received.clear();
        report.version = self.version;
        report.iteration = (self.version - 1) / self.cfg.epochs;
        report.dropped = std::mem::take(&mut self.dropped);
        report.step_s = now.saturating_sub(self.step_started).as_secs_f64();
        if self.version.is_multiple_of(self.cfg.epochs) {
            self.assign(now);
        } else {
            self.step_started = now;
        }
        Some(report)
    }
}

/// What the actor tells whoever runs it.
#[derive(Debug, Clone)]
pub enum Event {
    /// The gRPC service is up on this address.
    Listening(std::net::SocketAddr),
    Step(StepReport),
    Checkpoint {
        version: u64,
        path: PathBuf,
    },
    Done {
        version: u64,
        params: Arc<Vec<f32>>,
    },
}

/// A fetch waiting for work: worker, `after`, where to answer.
type Parked = (u64, Option<u64>, oneshot::Sender<Result<FetchReply, PsError>>);

/// The actix actor around [`PsCore`].
pub struct ParameterServer {
    core: PsCore,
    /// Origin of the core's clock.
    start: Instant,
    /// Fetches with nothing to hand out yet; answered when state changes.
    parked: Vec<Parked>,
    /// Steps, checkpoints and the end, to whoever runs the server (the CLI's
    /// progress, tests). Unbounded but slow: one event per step, checkpoint
    /// or start, never per message.
    events: mpsc::UnboundedSender<Event>,
    checkpoint_dir: Option<PathBuf>,
    finished: bool,
}

impl ParameterServer {
    pub fn new(core: PsCore, events: mpsc::UnboundedSender<Event>, checkpoint_dir: Option<PathBuf>) -> Self {
        Self { core, start: Instant::now(), parked: Vec::new(), events, checkpoint_dir, finished: false }
    }

    fn now(&self) -> Duration {
        self.start.elapsed()
    }

    /// Runs `call` on the core with the current time, and stamps a step it
    /// completes with how long the call took: the core has no clock, so
    /// the time the server spends on a step is the shell's to measure.
    fn timed<T>(
        &mut self,
        call: impl FnOnce(&mut PsCore, Duration) -> T,
        step: impl FnOnce(&mut T) -> Option<&mut StepReport>,
    ) -> T {
        let t0 = Instant::now();
        let now = self.now();
        let mut out = call(&mut self.core, now);
        if let Some(report) = step(&mut out) {
            report.ps_s = t0.elapsed().as_secs_f64();
        }
        out
    }

    /// After any change: report the step, checkpoint, wake parked fetches.
    fn after(&mut self, step: Option<StepReport>) {
        if let Some(report) = step {
            let version = report.version;
            let _ = self.events.send(Event::Step(report));
            let epochs = self.core.config().epochs;
            let every = self.core.config().checkpoint_every;
            let boundary = version % epochs == 0;
            if boundary && (self.core.is_done() || (every > 0 && (version / epochs).is_multiple_of(every))) {
                self.write_checkpoint();
            }
        }
        if self.core.is_done() && !self.finished {
            self.finished = true;
            let _ = self.events.send(Event::Done { version: self.core.version(), params: self.core.params().clone() });
        }
        let now = self.now();
        let parked = std::mem::take(&mut self.parked);
        for (id, after, tx) in parked {
            match self.core.fetch(id, after, now) {
                Ok(FetchReply::Wait) if !tx.is_closed() => self.parked.push((id, after, tx)),
                Ok(FetchReply::Wait) => {}
                other => {
                    let _ = tx.send(other);
                }
            }
        }
    }

    fn write_checkpoint(&mut self) {
        let Some(dir) = &self.checkpoint_dir else { return };
        let ck = self.core.checkpoint();
        match checkpoint::save(dir, &ck) {
            Ok(path) => {
                let _ = self.events.send(Event::Checkpoint { version: ck.version, path });
            }
            Err(e) => tracing::error!("checkpoint failed: {e}"),
        }
    }
}

impl Actor for ParameterServer {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let every = Duration::from_secs_f64((self.core.config().worker_timeout_s / 4.0).clamp(0.01, 1.0));
        ctx.run_interval(every, |ps, _| {
            let step = ps.timed(|core, now| core.tick(now), Option::as_mut);
            ps.after(step);
        });
    }
}

/// A worker registers; the reply carries the training config.
#[derive(Message)]
#[rtype(result = "Result<(u64, TrainConfig), PsError>")]
pub struct Join;

impl Handler<Join> for ParameterServer {
    type Result = MessageResult<Join>;
    fn handle(&mut self, _: Join, _: &mut Context<Self>) -> Self::Result {
        let id = self.core.join(self.now());
        self.after(None);
        MessageResult(id.map(|id| (id, self.core.config().clone())))
    }
}

/// Work newer than `after`; answered when there is some (long poll).
#[derive(Message)]
#[rtype(result = "Result<FetchReply, PsError>")]
pub struct Fetch {
    pub worker: u64,
    pub after: Option<u64>,
}

impl Handler<Fetch> for ParameterServer {
    type Result = ResponseFuture<Result<FetchReply, PsError>>;
    fn handle(&mut self, f: Fetch, _: &mut Context<Self>) -> Self::Result {
        let reply = self.core.fetch(f.worker, f.after, self.now());
        if reply != Ok(FetchReply::Wait) {
            return Box::pin(async move { reply });
        }
        let (tx, rx) = oneshot::channel();
        self.parked.push((f.worker, f.after, tx));
        Box::pin(async move { rx.await.unwrap_or_else(|_| Err(PsError::Other("parameter server stopped".into()))) })
    }
}

#[derive(Message)]
#[rtype(result = "Result<PushAck, PsError>")]
pub struct Push(pub GradientMsg);

impl Handler<Push> for ParameterServer {
    type Result = Result<PushAck, PsError>;
    fn handle(&mut self, p: Push, _: &mut Context<Self>) -> Self::Result {
        let (ack, step) =
            self.timed(|core, now| core.push(p.0, now), |r| r.as_mut().ok().and_then(|(_, step)| step.as_mut()))?;
        self.after(step);
        Ok(ack)
    }
}

/// Whether training is over and every worker has been told (a server
/// lingers until then, so remote workers end cleanly).
#[derive(Message)]
#[rtype(result = "bool")]
pub struct AllTold;

impl Handler<AllTold> for ParameterServer {
    type Result = bool;
    fn handle(&mut self, _: AllTold, _: &mut Context<Self>) -> bool {
        self.core.all_told()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(workers: usize) -> TrainConfig {
        TrainConfig { hidden: 4, workers, epochs: 2, iterations: 3, worker_timeout_s: 1.0, ..TrainConfig::default() }
    }

    fn grad(core: &PsCore, worker: u64, version: u64, value: f32, samples: u64) -> GradientMsg {
        GradientMsg { worker, version, grad: vec![value; core.params().len()], samples, stats: WorkerStats::default() }
    }

    fn s(x: f64) -> Duration {
        Duration::from_secs_f64(x)
    }

    #[test]
    fn waits_for_quorum_then_steps_when_all_pushed() {
        let mut ps = PsCore::new(cfg(2)).unwrap();
        let a = ps.join(s(0.0)).unwrap();
        assert_eq!(ps.fetch(a, None, s(0.0)), Ok(FetchReply::Wait), "first step waits for two workers");
        let b = ps.join(s(0.0)).unwrap();
        let FetchReply::Work(wa) = ps.fetch(a, None, s(0.0)).unwrap() else { panic!() };
        let FetchReply::Work(wb) = ps.fetch(b, None, s(0.0)).unwrap() else { panic!() };
        assert_eq!((wa.shard, wb.shard, wa.shards), (0, 1, 2));
        assert!(ps.push(grad(&ps, a, 0, 1.0, 10), s(0.1)).unwrap().1.is_none());
        let (_, step) = ps.push(grad(&ps, b, 0, 1.0, 30), s(0.2)).unwrap();
        let step = step.expect("both in: step applied");
        assert_eq!((step.version, step.samples, step.workers), (1, 40, 2));
        assert_eq!(ps.fetch(a, Some(0), s(0.2)).map(|r| matches!(r, FetchReply::Work(w) if w.version == 1)), Ok(true));
    }

    #[test]
    fn silent_workers_are_dropped_and_may_rejoin() {
        let mut ps = PsCore::new(cfg(2)).unwrap();
        let a = ps.join(s(0.0)).unwrap();
        let b = ps.join(s(0.0)).unwrap();
        ps.fetch(a, None, s(0.0)).unwrap();
        ps.fetch(b, None, s(0.0)).unwrap();
        ps.push(grad(&ps, a, 0, 1.0, 10), s(0.5)).unwrap();
        assert!(ps.tick(s(0.9)).is_none(), "within the timeout");
        let step = ps.tick(s(1.6)).expect("b dropped, step completes with a");
        assert_eq!((step.version, step.workers, step.dropped.clone()), (1, 1, vec![b]));
        assert_eq!(ps.fetch(b, Some(0), s(1.7)), Err(PsError::UnknownWorker(b)));
        let c = ps.join(s(1.8)).unwrap();
        // Mid-iteration joiners wait for the next iteration.
        assert_eq!(ps.fetch(c, None, s(1.8)), Ok(FetchReply::Wait));
        ps.fetch(a, Some(0), s(1.8)).unwrap();
        ps.push(grad(&ps, a, 1, 1.0, 10), s(1.9)).unwrap();
        assert!(matches!(ps.fetch(c, None, s(2.0)), Ok(FetchReply::Work(w)) if w.shards == 2 && w.version == 2));
    }

    #[test]
    fn staleness_bound() {
        let mut c = cfg(1);
        c.staleness = 1;
        let mut ps = PsCore::new(c.clone()).unwrap();
        let a = ps.join(s(0.0)).unwrap();
        ps.push(grad(&ps, a, 0, 1.0, 1), s(0.0)).unwrap();
        assert_eq!(ps.version(), 1);
        // One version old: accepted and counted for step 1 → 2.
        assert_eq!(ps.push(grad(&ps, a, 0, 1.0, 1), s(0.0)).unwrap().0, PushAck::Accepted);
        assert_eq!(ps.version(), 2);
        assert_eq!(ps.push(grad(&ps, a, 0, 1.0, 1), s(0.0)).unwrap().0, PushAck::Ignored, "two versions old");
        let mut sync = PsCore::new(cfg(1)).unwrap();
        let a = sync.join(s(0.0)).unwrap();
        sync.push(grad(&sync, a, 0, 1.0, 1), s(0.0)).unwrap();
        assert_eq!(sync.push(grad(&sync, a, 0, 1.0, 1), s(0.0)).unwrap().0, PushAck::Ignored);
        assert!(matches!(sync.push(grad(&sync, a, 5, 1.0, 1), s(0.0)), Err(PsError::FutureVersion { .. })));
    }

    #[test]
    fn malformed_gradients_are_refused_counted_and_the_step_waits() {
        let mut ps = PsCore::new(cfg(1)).unwrap();
        let a = ps.join(s(0.0)).unwrap();
        let n = ps.params().len();
        let before = ps.params().clone();
        let mut short = grad(&ps, a, 0, 1.0, 10);
        short.grad.truncate(n - 1);
        let mut nan = grad(&ps, a, 0, 1.0, 10);
        nan.grad[3] = f32::NAN;
        let mut inf = grad(&ps, a, 0, 1.0, 10);
        inf.grad[0] = f32::INFINITY;
        let mut long = grad(&ps, a, 0, 1.0, 10);
        long.grad.push(0.0);
        let none = grad(&ps, a, 0, 1.0, 0);
        let mut stats = grad(&ps, a, 0, 1.0, 10);
        stats.stats.reward_sum = f64::NAN;
        for bad in [short, nan, inf, long, none, stats] {
            assert!(matches!(ps.push(bad, s(0.1)), Err(PsError::BadGradient(_))));
        }
        assert_eq!(ps.refused(), 6);
        assert_eq!(ps.params(), &before, "nothing was averaged");
        assert_eq!(ps.version(), 0);
        let (ack, step) = ps.push(grad(&ps, a, 0, 1.0, 10), s(0.2)).unwrap();
        assert_eq!(ack, PushAck::Accepted);
        assert!(step.is_some(), "a good gradient still completes the step");
    }

    #[test]
    fn joins_are_capped_and_workers_that_never_return_are_forgotten() {
        let mut ps = PsCore::new(cfg(2)).unwrap();
        for _ in 0..MAX_WORKERS {
            ps.join(s(0.0)).unwrap();
        }
        assert_eq!(ps.join(s(0.0)), Err(PsError::Full(MAX_WORKERS)));
        // The first two are expected (the quorum), the rest never fetch.
        ps.tick(s(10.0));
        assert!(ps.join(s(10.0)).is_ok(), "silent joiners were dropped");
    }

    /// One step of two workers on the simulated clock: joins at 0, pushes
    /// at 0.1 and 0.25 s.
    fn two_worker_step() -> StepReport {
        let mut ps = PsCore::new(cfg(2)).unwrap();
        let (a, b) = (ps.join(s(0.0)).unwrap(), ps.join(s(0.0)).unwrap());
        ps.push(grad(&ps, a, 0, 1.0, 10), s(0.1)).unwrap();
        ps.push(grad(&ps, b, 0, 2.0, 10), s(0.25)).unwrap().1.expect("both in")
    }

    #[test]
    fn the_core_reads_no_clock_and_times_steps_on_the_one_passed_in() {
        let (first, second) = (two_worker_step(), two_worker_step());
        assert_eq!(first, second, "the same calls give the same report");
        assert_eq!(first.step_s, 0.25, "from the assignment at 0 s to the last push at 0.25 s");
        assert_eq!(first.ps_s, 0.0, "the shell measures the server's own time");
    }

    #[test]
    fn a_config_or_checkpoint_that_does_not_fit_is_refused() {
        let mut bad = cfg(1);
        bad.epochs = 0;
        assert!(PsCore::new(bad).is_err());
        let mut huge = cfg(1);
        huge.worker_timeout_s = 1e300;
        assert!(PsCore::new(huge).is_err());
        let ps = PsCore::new(cfg(1)).unwrap();
        let mut ck = ps.checkpoint();
        ck.adam.v.pop();
        let err = PsCore::resume(cfg(1), ck).err().unwrap();
        assert!(err.contains("moments"), "{err}");
        let mut ck = ps.checkpoint();
        ck.params.push(0.0);
        assert!(PsCore::resume(cfg(1), ck).is_err());
        assert!(PsCore::resume(cfg(1), ps.checkpoint()).is_ok());
    }

    #[test]
    fn averaging_is_weighted_by_samples() {
        // Two shards with gradients 1 and 4 over 30 and 10 samples average
        // to 1.75, exactly what one worker with that gradient produces.
        let mut two = PsCore::new(cfg(2)).unwrap();
        let (a, b) = (two.join(s(0.0)).unwrap(), two.join(s(0.0)).unwrap());
        two.push(grad(&two, a, 0, 1.0, 30), s(0.0)).unwrap();
        two.push(grad(&two, b, 0, 4.0, 10), s(0.0)).unwrap();
        let mut one = PsCore::new(cfg(1)).unwrap();
        let c = one.join(s(0.0)).unwrap();
        one.push(grad(&one, c, 0, 1.75, 40), s(0.0)).unwrap();
        assert_eq!(two.params(), one.params());
        assert!(!one.is_done());
    }
}
