//! Data-parallel training under Open MPI's `mpirun`: 2 and 3 ranks give the
//! model of one process, on shared memory and on TCP; a rank killed with
//! SIGKILL or failing ends the job with a clear error, and the run resumes
//! from its checkpoint on another number of ranks. These tests need saddle
//! built with `--features mpi` and an `mpirun` (CI installs Debian's
//! `openmpi-bin`); elsewhere they report themselves ignored.

mod common;

use common::{mnist_folder, scratch, stderr, stdout};
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// `mpirun -n ranks [mca…] saddle args…`, allowed to run as root (CI's containers).
fn mpirun(ranks: usize, mca: &[&str], args: &[&str]) -> Command {
    let mut c = Command::new(option_env!("SADDLE_TEST_MPIRUN").unwrap_or("mpirun"));
    c.env("OMPI_ALLOW_RUN_AS_ROOT", "1").env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1");
    // More ranks than cores, as a 2-core CI machine needs for 3 ranks.
    c.args(["--oversubscribe", "-n", &ranks.to_string()]).args(mca);
    c.arg(env!("CARGO_BIN_EXE_saddle")).args(args);
    c
}

fn run(mut c: Command) -> Output {
    let o = c.output().expect("mpirun runs");
    assert!(o.status.success(), "{c:?} failed:\n{}\n{}", stdout(&o), stderr(&o));
    o
}

/// Step losses from `metrics.csv`, and every weight of `model.safetensors`.
fn outcome(run: &Path) -> (Vec<f32>, Vec<f32>) {
    let csv = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    let losses = csv.lines().skip(1).filter_map(|l| l.split(',').nth(2)?.parse().ok()).collect();
    let (tensors, _) = saddle::io::read_safetensors(&run.join("model.safetensors")).unwrap();
    (losses, tensors.into_values().flat_map(|(_, v)| v).collect())
}

/// The largest difference between `a` and `b`, over the largest magnitude in `b`.
fn relative(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(0f32, |m, v| m.max(v.abs()));
    a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs())) / scale
}

/// `saddle FLAGS --data data --out out`.
fn train_args(flags: &str, data: &Path, out: &Path) -> Vec<String> {
    let mut a: Vec<String> = flags.split(' ').map(str::to_string).collect();
    a.extend(["--data".into(), data.display().to_string(), "--out".into(), out.display().to_string()]);
    a
}

/// `saddle train mnist` for 50 steps of LeNet-5 with SGD and momentum: 600
/// images of `data` in batches of 12, into `out`.
fn fifty_steps(data: &Path, out: &Path) -> Vec<String> {
    let flags = "train mnist --epochs 1 --batch-size 12 --optim momentum --lr 0.02 --schedule constant --quiet";
    train_args(flags, data, out)
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
#[cfg_attr(
    not(all(feature = "mpi", has_mpirun)),
    ignore = "needs --features mpi and Open MPI's mpirun (CI installs openmpi-bin)"
)]
fn ranks_give_the_model_of_one_process_on_shared_memory_and_tcp() {
    let (dir, data) = mnist_folder("mpi-equal", 600, 100);
    let alone = common::saddle(&[&["--threads", "1"][..], &strs(&fifty_steps(&data, &dir.join("alone")))].concat());
    assert!(alone.status.success(), "{}", stderr(&alone));
    let (losses, weights) = outcome(&dir.join("alone"));
    assert_eq!(losses.len(), 50);

    let tcp = ["--mca", "btl", "tcp,self"];
    for (name, ranks, mca) in
        [("two", 2, &[][..]), ("three", 3, &[][..]), ("two-tcp", 2, &tcp[..]), ("two-again", 2, &[][..])]
    {
        let o = run(mpirun(ranks, mca, &strs(&fifty_steps(&data, &dir.join(name)))));
        // Rank 0 alone prints.
        assert_eq!(stdout(&o).matches("done ").count(), 1, "{name}: {}", stdout(&o));
        assert!(stdout(&o).contains(&format!("{ranks} ranks")), "{name}: {}", stdout(&o));
        let (l, w) = outcome(&dir.join(name));
        assert!(relative(&l, &losses) < 1e-5, "{name}: losses differ by {:e}", relative(&l, &losses));
        assert!(relative(&w, &weights) < 1e-5, "{name}: weights differ by {:e}", relative(&w, &weights));
    }
    // The same number of ranks gives the same bits, on either transport.
    let (two, again, tcp) = (outcome(&dir.join("two")), outcome(&dir.join("two-again")), outcome(&dir.join("two-tcp")));
    assert!(two == again, "two runs on 2 ranks differ");
    assert!(two == tcp, "2 ranks differ between shared memory and TCP");
}

/// The first step's loss and gradient norm in `run`'s `metrics.csv`.
fn first_step(run: &Path) -> [f32; 2] {
    let csv = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    let row: Vec<f32> = csv.lines().nth(1).unwrap().split(',').filter_map(|v| v.parse().ok()).collect();
    [row[2], row[4]]
}

#[test]
#[cfg_attr(
    not(all(feature = "mpi", has_mpirun)),
    ignore = "needs --features mpi and Open MPI's mpirun (CI installs openmpi-bin)"
)]
fn synchronized_batch_norm_normalizes_over_every_ranks_share() {
    let (dir, data) = mnist_folder("mpi-sync-bn", 120, 24);
    let flags = "train mnist --model resnet20 --epochs 1 --batch-size 12 --optim momentum --lr 0.002 --quiet";
    let resnet = |out: &str| train_args(flags, &data, &dir.join(out));
    let alone = common::saddle(&strs(&resnet("alone")));
    assert!(alone.status.success(), "{}", stderr(&alone));
    run(mpirun(2, &[], &[&strs(&resnet("synced"))[..], &["--sync-batch-norm"]].concat()));
    run(mpirun(2, &[], &strs(&resnet("per-rank"))));
    // The first step only: ResNet-20 on 12 images a step is chaotic enough
    // that a difference of 1e-7 in the weights grows ×10 a step (one process
    // against itself with its weights scaled by 1 + 1e-7 does the same).
    let (want, synced, per_rank) =
        (first_step(&dir.join("alone")), first_step(&dir.join("synced")), first_step(&dir.join("per-rank")));
    assert!(relative(&synced, &want) < 1e-5, "synchronized: {synced:?} against {want:?}");
    assert!(relative(&per_rank, &want) > 1e-3, "per-rank statistics: {per_rank:?} against {want:?}");
}

/// The pid of rank `rank` among the children of `mpirun`.
fn rank_pid(mpirun: u32, rank: usize) -> Option<u32> {
    let children = std::fs::read_to_string(format!("/proc/{mpirun}/task/{mpirun}/children")).ok()?;
    children.split_whitespace().filter_map(|p| p.parse().ok()).find(|pid: &u32| {
        let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
        env.split(|&b| b == 0).any(|v| v == format!("OMPI_COMM_WORLD_RANK={rank}").as_bytes())
    })
}

/// Waits for `child` at most `limit`; kills it and fails past that.
fn wait_at_most(child: &mut std::process::Child, limit: Duration, what: &str) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("{what}: still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
#[cfg_attr(
    not(all(feature = "mpi", has_mpirun)),
    ignore = "needs --features mpi and Open MPI's mpirun (CI installs openmpi-bin)"
)]
fn a_killed_rank_ends_the_job_and_the_run_resumes_on_other_ranks() {
    let dir = scratch("mpi-kill");
    let run_dir = dir.join("run");
    let flags = ["train", "mnist", "--epochs", "2", "--checkpoint-every", "100", "--quiet"];
    let mut job = mpirun(2, &[], &[&flags[..], &["--out", run_dir.to_str().unwrap()]].concat())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Once a checkpoint exists, SIGKILL rank 1.
    let start = Instant::now();
    while !run_dir.join("checkpoint/state.json").is_file() {
        assert!(start.elapsed() < Duration::from_secs(120), "no checkpoint after 2 minutes");
        std::thread::sleep(Duration::from_millis(50));
    }
    let victim = rank_pid(job.id(), 1).expect("rank 1 is a child of mpirun");
    Command::new("kill").args(["-9", &victim.to_string()]).status().unwrap();
    let killed = Instant::now();
    let status = wait_at_most(&mut job, Duration::from_secs(30), "mpirun after a rank was killed");
    let o = job.wait_with_output().unwrap();
    assert!(!status.success(), "a killed rank must fail the job");
    eprintln!("the job ended {:.1} s after the kill: {}", killed.elapsed().as_secs_f64(), stderr(&o));
    assert!(!run_dir.join("summary.json").exists(), "a killed run must not look complete");
    // Resumable from its checkpoint, here on 3 ranks, then on 1 process.
    let resumed = run(mpirun(3, &[], &["train", "--resume", run_dir.to_str().unwrap(), "--quiet"]));
    assert!(stdout(&resumed).contains("resuming"), "{}", stdout(&resumed));
    let summary = std::fs::read_to_string(run_dir.join("summary.json")).expect("the resumed run finishes");
    assert!(summary.contains("\"steps\": 470"), "2 epochs of 235 batches of 256: {summary}");
}

#[test]
#[cfg_attr(
    not(all(feature = "mpi", has_mpirun)),
    ignore = "needs --features mpi and Open MPI's mpirun (CI installs openmpi-bin)"
)]
fn an_error_on_one_rank_is_printed_with_its_rank_and_ends_the_job() {
    let dir = scratch("mpi-error");
    // Rank 0 alone checks the run folder: the others hear that it failed.
    std::fs::write(dir.join("taken"), "").unwrap();
    let mut c = mpirun(2, &[], &["train", "mnist", "--out", dir.to_str().unwrap()]);
    let o = c.output().unwrap();
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("error (rank 0 of 2): --out:") && stderr(&o).contains("already exists"),
        "{}",
        stderr(&o)
    );
    // Commands of one process refuse to run on several.
    let o = mpirun(2, &[], &["eval", dir.to_str().unwrap()]).output().unwrap();
    assert!(!o.status.success());
    assert!(stderr(&o).contains("`saddle eval` runs on one process"), "{}", stderr(&o));
}

#[test]
#[cfg(not(feature = "mpi"))]
fn a_saddle_without_mpi_refuses_to_be_one_of_several_ranks() {
    let out = scratch("mpi-absent").join("run");
    let o = Command::new(env!("CARGO_BIN_EXE_saddle"))
        .env("OMPI_COMM_WORLD_SIZE", "2")
        .args(["train", "mnist", "--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    common::assert_fails_with(&o, &["mpirun started 2 ranks", "built without MPI", "--features mpi"]);
    assert!(!out.exists(), "no run folder");
}
