//! Training end to end, on tiny configs: gradient averaging is exact, a
//! worker dying mid-step does not stop training, resuming from a checkpoint
//! gives identical results, workers join over gRPC, and a trained model
//! plays in a scenario and an evaluation through the CLI.

use std::path::Path;
use std::process::Command;
use std::sync::mpsc;

use negotium::learn::config::TrainConfig;
use negotium::learn::device::Device;
use negotium::learn::env::Pool;
use negotium::learn::model::PolicySpec;
use negotium::learn::ppo;
use negotium::learn::ps::{Event, GradientMsg, PsCore, WorkerStats};
use negotium::learn::remote::{PsDial, PsServe};
use negotium::learn::train::{self, Cpu, LocalRun};
use negotium::learn::worker::collect;

fn tiny() -> TrainConfig {
    let mut cfg =
        TrainConfig { iterations: 2, epochs: 2, episodes: 12, hidden: 16, workers: 2, ..TrainConfig::default() };
    cfg.pool.scenarios = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios")];
    cfg.pool.random_share = 0.5;
    cfg.eval.episodes = 20;
    cfg
}

fn run(cfg: TrainConfig, workers: usize, out: &Path, resume: bool, kill_after: Option<u64>) -> (Vec<f32>, Vec<Event>) {
    let opts = LocalRun { workers, out: out.to_path_buf(), resume, serve: None, kill_after };
    let mut events = Vec::new();
    let trained = train::run(cfg, &opts, |e| events.push(e.clone())).expect("training");
    (trained.params.to_vec(), events)
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
fn gradient_averaging_is_exact() {
    let cfg = tiny();
    let pool = Pool::load(&cfg.pool).unwrap();
    let spec = PolicySpec::new(cfg.hidden);
    let params = spec.initial_params(cfg.seed);
    let device = Default::default();
    let whole = collect(&cfg, &pool, &params, 0, 0, 1).unwrap();
    let (g_whole, _) = ppo::gradient::<Cpu>(&spec, &params, &whole.batch, &cfg, &device).unwrap();

    // Two shards: the sample-weighted mean of their gradients is the whole
    // batch's gradient, and the parameter server's step is the same step.
    let mut two = PsCore::new(TrainConfig { workers: 2, ..cfg.clone() }).unwrap();
    let ids = [two.join(Default::default()).unwrap(), two.join(Default::default()).unwrap()];
    let mut one = PsCore::new(TrainConfig { workers: 1, ..cfg.clone() }).unwrap();
    let solo = one.join(Default::default()).unwrap();
    let mut avg = vec![0.0f64; params.len()];
    let mut total = 0;
    for (shard, id) in ids.into_iter().enumerate() {
        let part = collect(&cfg, &pool, &params, 0, shard, 2).unwrap();
        let (g, _) = ppo::gradient::<Cpu>(&spec, &params, &part.batch, &cfg, &device).unwrap();
        let n = part.batch.len() as u64;
        total += n;
        for (a, x) in avg.iter_mut().zip(&g) {
            *a += *x as f64 * n as f64;
        }
        let msg = GradientMsg { worker: id, version: 0, grad: g, samples: n, stats: WorkerStats::default() };
        two.push(msg, Default::default()).unwrap();
    }
    assert_eq!(total, whole.batch.len() as u64, "shards partition the batch");
    let avg: Vec<f32> = avg.iter().map(|a| (a / total as f64) as f32).collect();
    let d = max_diff(&avg, &g_whole);
    println!("max |mean of shard gradients - whole-batch gradient| = {d:e}");
    assert!(d < 1e-6, "{d}");
    let msg = GradientMsg { worker: solo, version: 0, grad: g_whole, samples: total, stats: WorkerStats::default() };
    one.push(msg, Default::default()).unwrap();
    assert_eq!((one.version(), two.version()), (1, 1));
    let d = max_diff(one.params(), two.params());
    println!("max |update with 2 shards - update with 1 batch| = {d:e}");
    assert!(d < 1e-6, "{d}");

    // End to end: one worker and two workers train the same model.
    let dir = tempfile::tempdir().unwrap();
    let (p1, _) = run(cfg.clone(), 1, &dir.path().join("one"), false, None);
    let (p2, _) = run(cfg, 2, &dir.path().join("two"), false, None);
    let d = max_diff(&p1, &p2);
    println!("max |params after 4 steps, 1 vs 2 workers| = {d:e}");
    assert!(d < 1e-4, "{d}");
}

#[test]
fn training_continues_when_a_worker_dies_mid_step() {
    let cfg = TrainConfig { iterations: 3, worker_timeout_s: 0.5, ..tiny() };
    let dir = tempfile::tempdir().unwrap();
    // Worker 0 takes one step, fetches the next and vanishes.
    let (_, events) = run(cfg.clone(), 2, dir.path(), false, Some(1));
    let steps: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::Step(r) => Some(r.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(steps.last().map(|r| r.version), Some(cfg.total_steps()), "every step was taken");
    assert_eq!(steps[0].workers, 2);
    assert_eq!(steps.iter().map(|r| r.dropped.len()).sum::<usize>(), 1, "one worker dropped");
    assert_eq!(steps.last().unwrap().workers, 1, "the rest carried on alone");
}

#[test]
fn resuming_from_a_checkpoint_gives_identical_results() {
    let cfg = TrainConfig { iterations: 4, checkpoint_every: 1, ..tiny() };
    let dir = tempfile::tempdir().unwrap();
    let (straight, _) = run(cfg.clone(), 2, &dir.path().join("straight"), false, None);
    let half = dir.path().join("half");
    run(TrainConfig { iterations: 2, ..cfg.clone() }, 2, &half, false, None);
    let (resumed, events) = run(cfg, 2, &half, true, None);
    assert!(events.iter().any(|e| matches!(e, Event::Step(r) if r.version == 5)), "resumed after version 4");
    assert!(!events.iter().any(|e| matches!(e, Event::Step(r) if r.version <= 4)), "did not start over");
    assert_eq!(straight, resumed, "bit-identical parameters");
}

#[test]
fn remote_workers_train_over_grpc_with_the_token_and_bad_gradients_are_refused() {
    use negotium::learn::ps::{GradientMsg as Msg, PsError};
    use negotium::learn::remote::RemoteLink;
    use negotium::learn::worker::PsLink;
    use negotium::net::auth::Secret;
    // The rogue worker below is dropped at this timeout.
    let cfg = TrainConfig { worker_timeout_s: 2.0, ..tiny() };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_path_buf();
    let (tx, rx) = mpsc::channel();
    let serve = PsServe { token: Secret::new("train-secret"), ..PsServe::local("127.0.0.1:0".parse().unwrap()) };
    let server = std::thread::spawn(move || {
        let opts = LocalRun { workers: 0, out, resume: false, serve: Some(serve), kill_after: None };
        train::run(cfg, &opts, move |e| {
            if let Event::Listening(addr) = e {
                tx.send(*addr).unwrap();
            }
        })
    });
    let addr = rx.recv_timeout(std::time::Duration::from_secs(30)).expect("server listening").to_string();
    // The workers' calls run here, as `negotium worker` runs them.
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    // Without the token nothing is taken, not even a join.
    let mut anonymous = RemoteLink::connect(&addr, "cpu", &PsDial::default(), rt.handle().clone()).unwrap();
    let err = anonymous.join().unwrap_err();
    assert!(err.to_string().contains("training token"), "{err}");
    let dial = PsDial { tls: None, token: Secret::new("train-secret") };
    // A worker with the token whose gradient is malformed: refused with
    // the reason (a `zip` once truncated it into the average).
    let mut rogue = RemoteLink::connect(&addr, "cpu", &dial, rt.handle().clone()).unwrap();
    let (id, _) = rogue.join().unwrap();
    let bad = Msg { worker: id, version: 0, grad: vec![f32::NAN; 3], samples: 10, stats: WorkerStats::default() };
    match rogue.push(bad) {
        Err(PsError::Other(m)) => assert!(m.contains("gradient refused") && m.contains("3 values"), "{m}"),
        other => panic!("{other:?}"),
    }
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let (addr, dial, rt) = (addr.clone(), dial.clone(), rt.handle().clone());
            std::thread::spawn(move || train::remote_worker(&addr, Device::Cpu, &dial, rt))
        })
        .collect();
    for w in workers {
        let summary = w.join().unwrap().expect("worker");
        assert!(summary.steps > 0);
    }
    let trained = server.join().unwrap().expect("parameter server");
    assert_eq!(trained.version, tiny().total_steps());
    assert!(trained.model.exists());
}

fn negotium(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_negotium")).args(args).output().expect("negotium runs")
}

#[test]
fn trained_policy_plays_in_scenarios_and_evaluations() {
    let dir = tempfile::tempdir().unwrap();
    let (params, _) = run(tiny(), 1, dir.path(), false, None);
    assert!(!params.is_empty());
    let model = dir.path().join("policy.mpk");
    let model_s = model.to_str().unwrap();

    // In a scenario file.
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/data-alliance.toml")).unwrap();
    let scenario = dir.path().join("s.toml");
    std::fs::write(&scenario, text).unwrap();
    let spec = format!("{{ learned = \"{model_s}\" }}");
    for engine in ["direct", "actors"] {
        let out = negotium(&[
            "run",
            scenario.to_str().unwrap(),
            "--repeat",
            "3",
            "--engine",
            engine,
            "--strategy",
            &format!("0={spec}"),
        ]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{engine}: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
        assert!(stdout.contains("learned"), "{stdout}");
    }
    // In a tournament, with the model's path relative to the file.
    let tournament = dir.path().join("t.toml");
    let t = format!(
        "name = \"t\"\nstrategies = [{{ learned = \"policy.mpk\" }}, \"boulware\"]\nscenarios = [\"{}\"]\nrepetitions = 1\n",
        scenario.display()
    );
    std::fs::write(&tournament, t).unwrap();
    let results = dir.path().join("results");
    let out = negotium(&["tournament", tournament.to_str().unwrap(), "--out", results.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("learned"), "{stdout}");

    // A missing model is bad input (exit 2), named as the user wrote it...
    let out = negotium(&["run", scenario.to_str().unwrap(), "--strategy", "0={ learned = \"/nowhere/p.mpk\" }"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("/nowhere/p.mpk: no such model (p.mpk and p.json are both missing)"), "{stderr}");
    // ...and a record without its spec says which companion is missing.
    let lone = dir.path().join("lone");
    std::fs::create_dir(&lone).unwrap();
    std::fs::copy(&model, lone.join("m.mpk")).unwrap();
    let lone_model = format!("0={{ learned = \"{}\" }}", lone.join("m.mpk").display());
    let out = negotium(&["run", scenario.to_str().unwrap(), "--strategy", &lone_model]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("m.mpk: its spec") && stderr.contains("m.json is missing"), "{stderr}");

    // The evaluation table: config.toml beside the model gives the pool,
    // and the table says which.
    let out = negotium(&["eval", model_s, "--episodes", "12"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let beside = dir.path().join("config.toml");
    assert!(stdout.contains(&format!("held-out pool ({} [eval])", beside.display())), "{stdout}");
    assert!(stdout.contains("  opponents: ") && stdout.contains("  scenarios: "), "{stdout}");
    for col in ["own utility", "agreement", "welfare", "to Nash", "learned", "boulware", "best time-dependent"] {
        assert!(stdout.contains(col), "{col}: {stdout}");
    }
}

/// The shipped model is evaluated on the pool it was trained for
/// (models/config.toml), not on the built-in one, and the table says so.
#[test]
fn eval_of_the_shipped_model_uses_its_own_config() {
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/policy.mpk");
    let out = negotium(&["eval", model.to_str().unwrap(), "--episodes", "6"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("models/config.toml [eval])"), "{stdout}");
    // The held-out opponent the built-in pool lacks.
    assert!(stdout.contains("random(p_accept=0.1)"), "{stdout}");
    assert!(stdout.contains("random domains: 50% of episodes"), "{stdout}");
}

#[test]
fn asking_for_a_gpu_without_one_is_a_clear_error() {
    if cfg!(feature = "cuda") && negotium::learn::device::cuda_driver_present() {
        return;
    }
    let out = negotium(&["worker", "--ps", "127.0.0.1:1", "--device", "cuda:0"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("CUDA") && stderr.contains("--device cpu") && !stderr.contains("panicked"), "{stderr}");
}

/// A config small enough for a few CLI runs: one step on random domains.
const TINY_TOML: &str = "seed = 3\niterations = 1\nepochs = 1\nepisodes = 4\nhidden = 8\nworkers = 1\n\
                         checkpoint_every = 0\n[pool]\nrandom_share = 1.0\n[eval]\nepisodes = 4\n";

fn train_cli(args: &[&str]) -> (Option<i32>, String) {
    let out = negotium(&[&["train"], args, &["--quiet"]].concat());
    (out.status.code(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

/// `train --out DIR` once overwrote an earlier run in DIR without a word.
#[test]
fn train_refuses_an_earlier_run_unless_resumed_or_forced() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("tiny.toml");
    std::fs::write(&cfg, TINY_TOML).unwrap();
    let (cfg, out) = (cfg.to_str().unwrap(), dir.path().join("run"));
    let out_s = out.to_str().unwrap();
    let (code, said) = train_cli(&[cfg, "--out", out_s]);
    assert_eq!(code, Some(0), "{said}");
    let model = std::fs::read(out.join("policy.mpk")).unwrap();

    let (code, said) = train_cli(&[cfg, "--out", out_s]);
    assert_eq!(code, Some(2), "{said}");
    assert!(said.contains("already holds a training run") && said.contains("checkpoint.json"), "{said}");
    assert!(said.contains("--resume") && said.contains("--force"), "{said}");
    assert_eq!(std::fs::read(out.join("policy.mpk")).unwrap(), model, "the earlier run is untouched");

    let (code, said) = train_cli(&[cfg, "--out", out_s, "--force"]);
    assert_eq!(code, Some(0), "{said}");
    let (code, said) = train_cli(&[cfg, "--out", out_s, "--force", "--resume"]);
    assert_eq!(code, Some(2), "one or the other: {said}");

    // --resume with no checkpoint yet starts the run (safe on every start).
    let fresh = dir.path().join("fresh");
    let (code, said) = train_cli(&[cfg, "--out", fresh.to_str().unwrap(), "--resume"]);
    assert_eq!(code, Some(0), "{said}");
    assert!(fresh.join("policy.mpk").exists());

    // A number out of range in the config, in the file's terms.
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, TINY_TOML.replace("iterations = 1", "iterations = -1")).unwrap();
    let (code, said) = train_cli(&[bad.to_str().unwrap(), "--out", dir.path().join("bad").to_str().unwrap()]);
    assert_eq!(code, Some(2), "{said}");
    assert!(said.contains("line 2, column 14: iterations must be a positive whole number, got -1"), "{said}");
}
