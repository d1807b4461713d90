//! Running training: the parameter server actor with local worker threads
//! (`negotium train`), the parameter server alone behind gRPC
//! (`negotium ps`), and a remote worker (`negotium worker`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use actix::{Actor, Addr};
use burn::backend::{Autodiff, NdArray};
use tokio::sync::mpsc;

use super::checkpoint;
use super::config::TrainConfig;
use super::device::{self, Device};
use super::env::Pool;
use super::model::{self, PolicySpec};
use super::ps::{self, Event, FetchReply, GradientMsg, ParameterServer, PsCore, PsError, PushAck};
use super::remote;
use super::worker::{self, PsLink, WorkerSummary};

/// The CPU training backend.
pub type Cpu = Autodiff<NdArray>;

/// A worker thread's link to an actor in the same process.
pub struct LocalLink {
    pub ps: Addr<ParameterServer>,
    pub rt: tokio::runtime::Handle,
}

fn mailbox(e: actix::MailboxError) -> PsError {
    PsError::Other(format!("parameter server: {e}"))
}

impl PsLink for LocalLink {
    fn join(&mut self) -> Result<(u64, TrainConfig), PsError> {
        self.rt.block_on(self.ps.send(ps::Join)).map_err(mailbox)?
    }
    fn fetch(&mut self, worker: u64, after: Option<u64>) -> Result<FetchReply, PsError> {
        self.rt.block_on(self.ps.send(ps::Fetch { worker, after })).map_err(mailbox)?
    }
    fn push(&mut self, msg: GradientMsg) -> Result<PushAck, PsError> {
        self.rt.block_on(self.ps.send(ps::Push(msg))).map_err(mailbox)?
    }
}

/// Runs a worker on `device` (checked first: no panic without a driver);
/// `pool` as in [`worker::run`].
pub fn run_worker(link: &mut dyn PsLink, device: Device, pool: Option<Arc<Pool>>) -> Result<WorkerSummary, String> {
    device::check(device)?;
    match device {
        Device::Cpu => worker::run::<Cpu>(link, pool, Default::default()),
        #[cfg(feature = "cuda")]
        Device::Cuda(n) => {
            use burn::backend::Cuda;
            use burn::backend::cuda::CudaDevice;
            probe_cuda(n)?;
            worker::run::<Autodiff<Cuda>>(link, pool, CudaDevice::new(n))
        }
        #[cfg(not(feature = "cuda"))]
        Device::Cuda(_) => unreachable!("device::check refuses cuda without the feature"),
    }
}

/// A driver may be installed on a machine whose GPU is gone or busy:
/// burn-cuda then panics on first use. One tiny tensor, with the panic
/// caught and its hook silenced, turns that into an error message.
#[cfg(feature = "cuda")]
fn probe_cuda(n: usize) -> Result<(), String> {
    use burn::backend::Cuda;
    use burn::backend::cuda::CudaDevice;
    use burn::tensor::Tensor;
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let probe = std::panic::catch_unwind(|| {
        let device = CudaDevice::new(n);
        Tensor::<Cuda, 1>::zeros([1], &device).into_data();
    });
    std::panic::set_hook(hook);
    probe.map_err(|e| {
        let why = e
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        format!("CUDA device cuda:{n} is not usable ({why}); use --device cpu")
    })
}

/// How a run ended.
#[derive(Debug, Clone)]
pub struct Trained {
    pub version: u64,
    pub params: Arc<Vec<f32>>,
    pub model: PathBuf,
}

/// The parameter server's starting state: fresh, or from `dir`'s checkpoint.
pub fn initial_core(cfg: TrainConfig, dir: &Path, resume: bool) -> Result<PsCore, String> {
    if !resume {
        return PsCore::new(cfg);
    }
    let ck = checkpoint::load(dir)?;
    if ck.version % cfg.epochs != 0 {
        return Err("checkpoint is not at an iteration boundary".into());
    }
    PsCore::resume(cfg, ck)
}

/// Options of an in-process run.
#[derive(Debug, Clone)]
pub struct LocalRun {
    pub workers: usize,
    pub out: PathBuf,
    pub resume: bool,
    /// Also serve the parameter server (remote workers may join the local
    /// ones).
    pub serve: Option<remote::PsServe>,
    /// Stop a worker thread after this many steps (tests: a worker dying).
    pub kill_after: Option<u64>,
}

/// Parameter server plus `workers` local threads (or none: `negotium ps`),
/// until training is done. `on_event` sees every step and checkpoint.
pub fn run(mut cfg: TrainConfig, opts: &LocalRun, mut on_event: impl FnMut(&Event)) -> Result<Trained, String> {
    if opts.serve.is_none() {
        // Alone, the server waits for exactly the workers it starts (a
        // late joiner would make the first iteration's sharding depend on
        // thread timing).
        cfg.workers = opts.workers.max(1);
    }
    cfg.validate()?;
    std::fs::create_dir_all(&opts.out).map_err(|e| format!("{}: {e}", opts.out.display()))?;
    std::fs::write(opts.out.join("config.toml"), toml::to_string(&cfg).map_err(|e| e.to_string())?)
        .map_err(|e| format!("{}: {e}", opts.out.display()))?;
    let core = initial_core(cfg.clone(), &opts.out, opts.resume)?;
    // Local workers share one pool: its files are read and its outcome
    // indexes built once, not once per thread.
    let pool = if opts.workers > 0 { Some(Arc::new(Pool::load(&cfg.pool)?)) } else { None };
    let system = actix::System::with_tokio_rt(|| {
        tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("tokio runtime")
    });
    let out = opts.out.clone();
    let (threads, result) = system.block_on(async move {
        // Step reports and checkpoints, read by this loop as they come; one
        // per parameter-server step, which waits for the workers' compute.
        let (tx, mut rx) = mpsc::unbounded_channel();
        // Bound before the actor starts: a port that is taken is then an
        // error, not an actor dropped half-started with the runtime.
        let listening = match &opts.serve {
            Some(how) => Some((remote::bind(how).await?, how)),
            None => None,
        };
        let addr = ParameterServer::new(core, tx, Some(out.clone())).start();
        // Dropped when training is over: the RPC server stops taking calls.
        let (_stop_serving, stopped) = tokio::sync::oneshot::channel::<()>();
        if let Some(((listener, bound), how)) = listening {
            tracing::info!(%bound, "parameter server listening");
            let (ps, how) = (addr.clone(), how.clone());
            tokio::spawn(async move {
                let shutdown = async {
                    let _ = stopped.await;
                };
                if let Err(e) = remote::serve(ps, listener, &how, shutdown).await {
                    tracing::error!("parameter server RPCs: {e}");
                }
            });
            on_event(&Event::Listening(bound));
        }
        let rt = tokio::runtime::Handle::current();
        let threads: Vec<_> = (0..opts.workers)
            .map(|k| {
                let mut link = LocalLink { ps: addr.clone(), rt: rt.clone() };
                let kill = if k == 0 { opts.kill_after } else { None };
                let pool = pool.clone();
                std::thread::spawn(move || match kill {
                    Some(pushes_left) => run_worker(&mut Vanish { link: &mut link, pushes_left }, Device::Cpu, pool),
                    None => run_worker(&mut link, Device::Cpu, pool),
                })
            })
            .collect();
        while let Some(ev) = rx.recv().await {
            on_event(&ev);
            if let Event::Done { version, params } = ev {
                let spec = PolicySpec::new(cfg.hidden);
                let model = model::save(&out.join("policy.mpk"), &spec, &params)?;
                // Keep the actor running while the workers collect their
                // `Done` (joining them here would block the actor's thread).
                // Remote workers likewise need their answer sent before the
                // server goes away.
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
                while std::time::Instant::now() < deadline {
                    let told = addr.send(ps::AllTold).await.unwrap_or(true);
                    if told && threads.iter().all(|t| t.is_finished()) {
                        break;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                }
                // Let the last replies leave the sockets.
                if opts.serve.is_some() {
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                }
                return Ok((threads, Trained { version, params, model }));
            }
        }
        Err("parameter server stopped".to_string())
    })?;
    for t in threads.into_iter().filter(|t| t.is_finished()) {
        match t.join() {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::debug!("worker after the end: {e}"),
            Err(_) => return Err("a worker thread panicked".into()),
        }
    }
    Ok(result)
}

/// A worker's link that, after `pushes_left` gradients, takes one more
/// assignment and vanishes mid-step without a word (what a killed process
/// looks like to the server).
struct Vanish<'a> {
    link: &'a mut dyn PsLink,
    pushes_left: u64,
}

impl PsLink for Vanish<'_> {
    fn join(&mut self) -> Result<(u64, TrainConfig), PsError> {
        self.link.join()
    }
    fn fetch(&mut self, worker: u64, after: Option<u64>) -> Result<FetchReply, PsError> {
        let reply = self.link.fetch(worker, after)?;
        Ok(if self.pushes_left == 0 { FetchReply::Done } else { reply })
    }
    fn push(&mut self, msg: GradientMsg) -> Result<PushAck, PsError> {
        self.pushes_left = self.pushes_left.saturating_sub(1);
        self.link.push(msg)
    }
}

/// `negotium worker --ps ADDR`: connects and works until done, its calls
/// driven by `rt` (see [`remote::RemoteLink`]).
pub fn remote_worker(
    addr: &str,
    device: Device,
    dial: &remote::PsDial,
    rt: tokio::runtime::Handle,
) -> Result<WorkerSummary, String> {
    let mut link = remote::RemoteLink::connect(addr, &device.to_string(), dial, rt)?;
    run_worker(&mut link, device, None)
}
