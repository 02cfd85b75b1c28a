//! The `saddle` command end to end: training on a small slice of the bundled
//! MNIST, evaluation, prediction, and a clear error with a non-zero exit (and
//! no run directory that looks complete) for each kind of bad input.

mod common;

use common::{assert_fails_with, idx_bytes, mnist_folder, saddle, scratch, small_mnist, stderr, stdout};
use saddle::data::read_idx;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// One finished run shared by the tests that need one: LeNet-5, one epoch on
/// 3000 MNIST images.
fn trained_run() -> &'static PathBuf {
    static RUN: OnceLock<PathBuf> = OnceLock::new();
    RUN.get_or_init(|| {
        let dir = scratch("shared");
        let data = dir.join("data");
        std::fs::create_dir_all(&data).unwrap();
        small_mnist(&data, 3000, 500, 28);
        let run = dir.join("run");
        let o = saddle(&[
            "train",
            "mnist",
            "--data",
            data.to_str().unwrap(),
            "--epochs",
            "2",
            "--batch-size",
            "64",
            "--out",
            run.to_str().unwrap(),
            "--quiet",
        ]);
        assert!(o.status.success(), "train failed: {}{}", stdout(&o), stderr(&o));
        run
    })
}

#[test]
fn train_writes_a_complete_run_that_eval_and_predict_read() {
    let run = trained_run();
    for f in ["config.json", "metrics.csv", "diagnostics.csv", "model.safetensors", "summary.json"] {
        assert!(run.join(f).is_file(), "{f} missing");
    }
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).unwrap()).unwrap();
    for key in [
        "task",
        "model",
        "parameters",
        "epochs",
        "seed",
        "held_out",
        "held_out_accuracy",
        "held_out_loss",
        "train_seconds",
        "train_images_per_second",
    ] {
        assert!(summary.get(key).is_some(), "summary.json lacks {key}");
    }
    assert_eq!(summary["held_out"], "test");
    let acc = summary["held_out_accuracy"].as_f64().unwrap();
    assert!(acc > 0.75, "LeNet-5 after 2 epochs on 3000 images: test accuracy {acc}");
    let csv = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    assert!(csv.starts_with("step,epoch,loss,lr,grad_norm,train_loss,train_accuracy,test_loss,test_accuracy\n"));
    assert_eq!(csv.lines().count(), 1 + 2 * 47 + 2, "a row per step (47 per epoch) and per epoch");

    let o = saddle(&["eval", run.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("accuracy") && out.contains("confusion matrix"), "{out}");
    assert!(out.contains(&format!("{:.2}%", 100.0 * acc)), "eval agrees with summary.json: {out}");

    // A test digit as a binary PGM, scaled up to 56×56 and inverted (dark on light).
    let images =
        read_idx(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/mnist/t10k-images-idx3-ubyte.gz"), 3).unwrap();
    let mut pgm = b"P5\n56 56\n255\n".to_vec();
    pgm.extend((0..56 * 56).map(|p| 255 - images.data[(p / 56 / 2) * 28 + (p % 56) / 2]));
    let img = run.parent().unwrap().join("seven.pgm");
    std::fs::write(&img, pgm).unwrap();
    let o = saddle(&["predict", run.to_str().unwrap(), img.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    // The first test image is a 7.
    assert!(stdout(&o).contains("class 7"), "{}", stdout(&o));
    assert!(stdout(&o).contains("inverted"), "{}", stdout(&o));
}

#[test]
fn bad_data_files_are_named_and_leave_no_run() {
    let dir = scratch("bad-data");
    let run = dir.join("run");
    let r = run.to_str().unwrap();
    let train = |data: &Path| {
        saddle(&["train", "mnist", "--data", data.to_str().unwrap(), "--epochs", "1", "--out", r, "--quiet"])
    };

    assert_fails_with(&train(&dir.join("absent")), &["absent", "no such folder"]);

    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    small_mnist(&data, 100, 20, 28);
    let images = data.join("train-images-idx3-ubyte");
    let good = std::fs::read(&images).unwrap();

    std::fs::write(&images, &good[..good.len() - 100]).unwrap();
    assert_fails_with(&train(&data), &["train-images-idx3-ubyte", "need 78400 data bytes, found 78300"]);

    std::fs::write(&images, std::fs::read(data.join("train-labels-idx1-ubyte")).unwrap()).unwrap();
    assert_fails_with(
        &train(&data),
        &["train-images-idx3-ubyte", "magic number 0x00000801 found, expected 0x00000803"],
    );

    std::fs::write(&images, &good).unwrap();
    let labels = data.join("train-labels-idx1-ubyte");
    let l = std::fs::read(&labels).unwrap();
    std::fs::write(&labels, idx_bytes(0x0801, &[99], &l[8..107])).unwrap();
    assert_fails_with(&train(&data), &["99 labels for 100 images"]);
    std::fs::write(&labels, &l).unwrap();

    std::fs::remove_file(&images).unwrap();
    std::fs::write(data.join("train-images-idx3-ubyte.gz"), [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 1, 2, 3]).unwrap();
    assert_fails_with(&train(&data), &["train-images-idx3-ubyte.gz", "corrupt gzip"]);

    std::fs::remove_file(data.join("train-images-idx3-ubyte.gz")).unwrap();
    assert_fails_with(&train(&data), &["no train-images-idx3-ubyte or train-images-idx3-ubyte.gz"]);

    assert!(!run.exists(), "a failed run must not leave a run directory");
}

#[test]
fn nonsense_flags_are_refused_with_the_flag_named() {
    for (args, needle) in [
        (vec!["train", "mnist", "--lr", "abc"], "--lr"),
        (vec!["train", "mnist", "--lr", "-1"], "expected a positive number, got '-1'"),
        (vec!["train", "mnist", "--epochs", "0"], "--epochs"),
        (vec!["train", "mnist", "--epochs", "-1"], "'--epochs <EPOCHS>': must be a whole number ≥ 1, got -1"),
        (vec!["--threads", "-2", "train", "mnist"], "'--threads <N>': must be a whole number ≥ 1, got -2"),
        (vec!["train", "mnist", "--batch-size", "many"], "--batch-size"),
        (vec!["train", "mnist", "--optim", "lbfgs"], "--optim"),
        (vec!["train", "mnist", "--model", "resnet"], "--model"),
        (vec!["train", "cifar"], "cifar"),
        (vec!["bench", "gemm", "--sizes", "0"], "--sizes"),
    ] {
        let o = saddle(&args);
        assert_fails_with(&o, &[needle]);
    }
}

#[test]
fn out_must_not_overwrite_an_existing_run() {
    let run = trained_run();
    let o = saddle(&["train", "mnist", "--epochs", "1", "--out", run.to_str().unwrap(), "--quiet"]);
    assert_fails_with(&o, &["--out", "already exists"]);
}

#[test]
fn broken_runs_and_checkpoints_are_named() {
    let run = trained_run();
    let dir = scratch("broken-run");
    let copy = |name: &str| {
        let to = dir.join(name);
        std::fs::create_dir_all(&to).unwrap();
        for f in ["config.json", "metrics.csv", "diagnostics.csv", "model.safetensors", "summary.json"] {
            std::fs::copy(run.join(f), to.join(f)).unwrap();
        }
        to
    };
    let eval = |p: &Path| saddle(&["eval", p.to_str().unwrap()]);

    assert_fails_with(&eval(&dir.join("nothing")), &["nothing", "no such run directory"]);

    let incomplete = copy("incomplete");
    std::fs::remove_file(incomplete.join("summary.json")).unwrap();
    assert_fails_with(&eval(&incomplete), &["incomplete run: no summary.json"]);

    let old = copy("old");
    let config = std::fs::read_to_string(old.join("config.json"))
        .unwrap()
        .replace(&format!("\"format\": {}", saddle::train::RUN_FORMAT), "\"format\": 0");
    std::fs::write(old.join("config.json"), config).unwrap();
    assert_fails_with(&eval(&old), &["run format 0"]);

    let (tensors, _) = saddle::nn::read_safetensors(&run.join("model.safetensors")).unwrap();
    let as_list = |skip: &str, reshape: &str| -> Vec<(String, saddle::Tensor)> {
        tensors
            .iter()
            .filter(|(k, _)| k.as_str() != skip)
            .map(|(k, (s, d))| {
                let t = saddle::Tensor::from_vec(d.clone(), s);
                (k.clone(), if k == reshape { t.reshape(&[s.iter().product()]) } else { t })
            })
            .collect()
    };
    let missing = copy("missing");
    saddle::nn::write_safetensors(&missing.join("model.safetensors"), &as_list("7.weight", ""), None).unwrap();
    assert_fails_with(&eval(&missing), &["model.safetensors", "missing tensor '7.weight'"]);
    let misshaped = copy("misshaped");
    saddle::nn::write_safetensors(&misshaped.join("model.safetensors"), &as_list("", "0.weight"), None).unwrap();
    assert_fails_with(&eval(&misshaped), &["tensor '0.weight' has shape [150], the model expects [6, 1, 5, 5]"]);
}

#[test]
fn eval_refuses_images_of_the_wrong_size_and_predict_unreadable_pictures() {
    let run = trained_run();
    let dir = scratch("sizes");
    small_mnist(&dir, 50, 20, 20);
    let o = saddle(&["eval", run.to_str().unwrap(), "--data", dir.to_str().unwrap()]);
    assert_fails_with(&o, &["images are [1, 20, 20] but the model", "expects [1, 28, 28]"]);

    let not_an_image = dir.join("digit.png");
    std::fs::write(&not_an_image, "hello").unwrap();
    let o = saddle(&["predict", run.to_str().unwrap(), not_an_image.to_str().unwrap()]);
    assert_fails_with(&o, &["digit.png", "not a PNG or PGM image"]);
    let o = saddle(&["predict", run.to_str().unwrap(), dir.join("absent.png").to_str().unwrap()]);
    assert_fails_with(&o, &["absent.png"]);
}

#[test]
fn schedule_prints_a_table_and_writes_png_and_svg() {
    let dir = scratch("schedule");
    let stem = dir.join("cos");
    let o = saddle(&[
        "schedule",
        "cosine",
        "--lr",
        "0.1",
        "--steps",
        "100",
        "--warmup",
        "10",
        "--out",
        stem.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    // Warm-up over 10 steps: step 0 runs at 0.1 · 1/10 = 0.01, step 9 at 0.1; the cosine spans the other 90.
    assert!(out.contains("warmup(10) then cosine(t_max=90, eta_min=0)"), "{out}");
    assert!(out.contains("       0   1.000000e-2"), "{out}");
    assert!(out.contains("peak 1.000000e-1"), "{out}");
    for ext in ["png", "svg"] {
        let f = stem.with_extension(ext);
        assert!(std::fs::metadata(&f).map(|m| m.len() > 1000).unwrap_or(false), "{} missing or empty", f.display());
    }
    assert!(std::fs::read(stem.with_extension("png")).unwrap().starts_with(b"\x89PNG"));
    assert_fails_with(&saddle(&["schedule", "cosin"]), &["--schedule", "unknown schedule 'cosin'"]);
    assert_fails_with(&saddle(&["schedule", "plateau"]), &["cannot be drawn ahead of time"]);
    assert_fails_with(&saddle(&["train", "mnist", "--schedule", "step:abc"]), &["--schedule", "SIZE must be a number"]);
}

#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    // `saddle schedule … | head -1` once the reader is gone: no panic, no message.
    let dir = scratch("pipe");
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let o = Command::new(env!("CARGO_BIN_EXE_saddle"))
        .args(["schedule", "cosine", "--out", dir.join("cos").to_str().unwrap()])
        .stdout(writer)
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert_eq!(stderr(&o), "");
}

#[test]
fn optim_lab_plots_every_surface_and_the_mnist_comparison() {
    let dir = scratch("lab");
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    small_mnist(&data, 256, 64, 28);
    let out = dir.join("plots");
    let o = saddle(&[
        "optim-lab",
        "--out",
        out.to_str().unwrap(),
        "--mnist-images",
        "256",
        "--data",
        data.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    for name in ["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw"] {
        assert!(text.contains(name), "{name} missing: {text}");
    }
    for stem in [
        "surface-ravine",
        "surface-rosenbrock",
        "surface-saddle",
        "surface-plateau",
        "surface-saddle-loss",
        "mnist-loss",
    ] {
        for ext in ["png", "svg"] {
            assert!(out.join(format!("{stem}.{ext}")).is_file(), "{stem}.{ext} missing");
        }
    }
    // On the plateau plain SGD is stuck near f = 1 while Adam reaches the minimum.
    let plateau = text.lines().find(|l| l.trim_start().starts_with("plateau")).unwrap();
    let losses: Vec<f64> = plateau.split_whitespace().skip(1).map(|v| v.parse().unwrap()).collect();
    assert!(losses[0] > 0.9 && losses[5] < 1e-3, "{plateau}");
}

#[test]
fn a_run_records_its_optimizer_state_and_schedule() {
    let run = trained_run();
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["optim"], "adam");
    assert!(config["optimizer"].as_str().unwrap().starts_with("Adam(lr=0.012, betas=(0.9, 0.999)"));
    let (state, meta) = saddle::nn::read_safetensors(&run.join("optimizer.safetensors")).unwrap();
    assert!(state.contains_key("0.weight.exp_avg") && state.contains_key("0.weight.exp_avg_sq"));
    assert_eq!(meta["step.0.weight"], "94"); // 2 epochs of 47 steps
}

#[test]
fn slots_bad_input_is_named() {
    let dir = scratch("slots-bad");
    std::fs::write(dir.join("train"), "fly:O to:O boston:B-city <=> atis_flight\nfly to:O <=> atis_flight\n").unwrap();
    std::fs::write(dir.join("test"), "fly:O <=> atis_flight\n").unwrap();
    let out = dir.join("run");
    let o = saddle(&["train", "slots", "--data", dir.to_str().unwrap(), "--out", out.to_str().unwrap(), "--quiet"]);
    assert_fails_with(&o, &["train: line 2, column 1: 'fly' is not word:TAG"]);
    assert!(!out.exists());
    assert_fails_with(
        &saddle(&["train", "slots", "--model", "lenet5"]),
        &["--model", "'lenet5' is not a recurrent model"],
    );
    assert_fails_with(&saddle(&["train", "mnist", "--model", "lstm"]), &["--model", "'lstm' is not an image model"]);
    let empty = scratch("slots-empty");
    assert_fails_with(&saddle(&["train", "slots", "--data", empty.to_str().unwrap()]), &["no corpus found"]);
    let image_run = trained_run();
    assert_fails_with(&saddle(&["tag", image_run.to_str().unwrap(), "hello"]), &["has no tagger"]);
}

#[test]
fn grad_flow_prints_the_lectures_recurrence_and_plots_the_flow() {
    let dir = scratch("grad-flow");
    let o = saddle(&["grad-flow", "--out", dir.to_str().unwrap(), "--seeds", "1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    // The lecture's lesson, with the defaults (one seed; the command trains three): the LSTM solves
    // the adding problem over 60 steps, the RNN does no better than always answering 1.
    assert!(
        out.contains("does no better than always answering 1") && out.contains("lstm: ‖∂L/∂h_1‖/‖∂L/∂h_60‖"),
        "{out}"
    );
    let verdict =
        |model: &str| out.lines().find(|l| l.trim_start().starts_with(&format!("{model}: "))).unwrap().to_string();
    assert!(verdict("lstm").ends_with("it solves the task"), "{out}");
    assert!(verdict("rnn").ends_with("does no better than always answering 1"), "{out}");
    // w^1000 and 1000·w^999 for w = 0.99, 1, 1.01.
    assert!(out.contains("0.99     4.3172e-5"), "{out}");
    assert!(out.contains("1.01      2.0959e4        2.0751e7"), "{out}");
    for row in [
        "rnn at initialization",
        "rnn, trained, clip 1",
        "lstm at initialization",
        "lstm, trained",
        "clipping fired in",
    ] {
        assert!(out.contains(row), "{row}: {out}");
    }
    for f in ["recurrence.png", "recurrence.svg", "grad-flow.png", "grad-flow.svg"] {
        assert!(dir.join(f).is_file(), "{f} missing");
    }
    assert_plotted(&dir.join("grad-flow.png"), (900, 560));
}

/// `path` is a PNG picture of `size` with a white background and something
/// drawn on it in colour (curves, not only black text and axes).
fn assert_plotted(path: &Path, size: (u32, u32)) {
    let bytes = std::fs::read(path).unwrap();
    let mut reader = png::Decoder::new(std::io::Cursor::new(bytes)).read_info().unwrap();
    let mut rgb = vec![0; reader.output_buffer_size().unwrap()];
    let frame = reader.next_frame(&mut rgb).unwrap();
    assert_eq!((frame.width, frame.height), size, "{}", path.display());
    assert_eq!(frame.color_type, png::ColorType::Rgb, "{}", path.display());
    let pixels: Vec<&[u8]> = rgb.chunks(3).collect();
    let white = pixels.iter().filter(|p| p.iter().all(|&c| c == 255)).count();
    assert!(white > pixels.len() / 2, "{}: not a white background", path.display());
    assert!(pixels.iter().any(|p| p[0] != p[1] || p[1] != p[2]), "{}: nothing drawn in colour", path.display());
}

/// `saddle diagnose` on the shared run, once: its output and the report's path.
fn diagnosed_run() -> &'static (String, PathBuf) {
    static DIAGNOSED: OnceLock<(String, PathBuf)> = OnceLock::new();
    DIAGNOSED.get_or_init(|| {
        let run = trained_run();
        let o = saddle(&["diagnose", run.to_str().unwrap(), "--probe", "64", "--lanczos", "8", "--grid", "5"]);
        assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
        (stdout(&o), run.join("report.html"))
    })
}

#[test]
fn diagnose_prints_verdicts_and_writes_a_self_contained_report() {
    let (out, report) = diagnosed_run();
    for needle in ["curvature at the final weights", "λ_max", "λ_min", "trace", "report"] {
        assert!(out.contains(needle), "diagnose output lacks {needle:?}: {out}");
    }
    // Either the loss kept falling or each plateau has a verdict and advice.
    assert!(out.contains("no plateau") || (out.contains("plateau 1 (steps") && out.contains("try: ")), "{out}");
    let html = std::fs::read_to_string(report).unwrap();
    assert_eq!(
        html.matches("<figure>").count(),
        9,
        "loss, gradient norm, lr, layers, update ratio, cosine, spectrum, two slices"
    );
    assert_eq!(html.matches("<svg").count(), 9);
    // Self-contained: nothing is fetched (the SVG namespace is a name, not a fetch).
    for fetch in ["src=", "href=", "<link", "<img", "url("] {
        assert!(!html.contains(fetch), "report.html fetches something: {fetch}");
    }
    assert!(html.contains("<h2>Verdicts</h2>"));
}

/// Renders `report.html` in headless Chromium and checks, through the page's
/// own script, that every figure drew.
#[test]
#[cfg_attr(not(has_chromium), ignore = "needs chromium (CI installs Debian's)")]
fn report_renders_in_headless_chromium() {
    let (_, report) = diagnosed_run();
    let chromium = option_env!("SADDLE_TEST_CHROMIUM").unwrap_or("chromium");
    let profile = scratch("chromium-profile");
    let dump = |extra: &[&str]| {
        let mut args = vec![
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ];
        let user_data = format!("--user-data-dir={}", profile.display());
        args.push(&user_data);
        args.extend_from_slice(extra);
        let url = format!("file://{}", report.display());
        let o = Command::new(chromium).args(&args).arg(&url).output().expect("chromium runs");
        assert!(o.status.success(), "chromium failed: {}", stderr(&o));
        o
    };
    let dom = stdout(&dump(&["--virtual-time-budget=5000", "--dump-dom"]));
    assert!(dom.contains(r#"data-rendered="9/9""#), "not every figure rendered: {}", &dom[..dom.len().min(400)]);
    let shot = profile.join("report.png");
    dump(&["--window-size=1100,5000", &format!("--screenshot={}", shot.display())]);
    let png = std::fs::read(&shot).unwrap();
    assert!(png.starts_with(b"\x89PNG") && png.len() > 50_000, "screenshot of {} bytes", png.len());
}

#[test]
fn diagnose_names_what_a_run_lacks() {
    let dir = scratch("diagnose-bad");
    assert_fails_with(
        &saddle(&["diagnose", dir.join("nowhere").to_str().unwrap()]),
        &["nowhere", "no such run directory"],
    );
    // A complete run without its diagnostics.
    let run = dir.join("run");
    let src = trained_run();
    std::fs::create_dir_all(&run).unwrap();
    for f in ["config.json", "summary.json", "model.safetensors", "metrics.csv"] {
        std::fs::copy(src.join(f), run.join(f)).unwrap();
    }
    assert_fails_with(&saddle(&["diagnose", run.to_str().unwrap()]), &["no diagnostics.csv", "--monitor-every 0"]);
    // A corrupt one: the line and column are named.
    let csv = std::fs::read_to_string(src.join("diagnostics.csv")).unwrap();
    let mut lines: Vec<String> = csv.lines().map(String::from).collect();
    let mut fields: Vec<&str> = lines[3].split(',').collect();
    fields[1] = "oops";
    lines[3] = fields.join(",");
    std::fs::write(run.join("diagnostics.csv"), lines.join("\n")).unwrap();
    assert_fails_with(&saddle(&["diagnose", run.to_str().unwrap()]), &["diagnostics.csv", "line 4, column 2 (loss)"]);
    assert!(!run.join("report.html").exists(), "no report from a failed diagnosis");
    // --diagnose needs the monitor.
    let o = saddle(&["train", "mnist", "--diagnose", "--monitor-every", "0", "--out", dir.join("x").to_str().unwrap()]);
    assert_fails_with(&o, &["--diagnose", "--monitor-every 0"]);
    assert!(!dir.join("x").exists());
}

/// The weights and the per-step metrics of a run, for comparing two runs bit for bit.
fn run_bits(run: &Path) -> (saddle::io::StateDict, String) {
    let (weights, _) = saddle::io::read_safetensors(&run.join("model.safetensors")).unwrap();
    (weights, std::fs::read_to_string(run.join("metrics.csv")).unwrap())
}

/// `saddle train mnist` on `data` into `out`, two epochs, a checkpoint every 7 steps.
fn train_command(data: &Path, out: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_saddle"));
    let (data, out) = (data.to_str().unwrap(), out.to_str().unwrap());
    c.args(["train", "mnist", "--data", data, "--epochs", "2", "--checkpoint-every", "7", "--out", out, "--quiet"]);
    c.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::piped());
    c
}

#[test]
fn a_run_killed_at_any_moment_resumes_to_the_same_bits() {
    let (dir, data) = mnist_folder("kill", 2000, 200);
    let straight = dir.join("straight");
    assert!(train_command(&data, &straight).status().unwrap().success());
    let expected = run_bits(&straight);
    // Kill points spread over the run, which takes a second or two here.
    for (i, ms) in [40u64, 250, 500, 800, 1100].into_iter().enumerate() {
        let run = dir.join(format!("killed-{i}"));
        let mut child = train_command(&data, &run).spawn().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(ms));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        if !run.join("config.json").is_file() {
            continue; // killed before the run existed: nothing to resume
        }
        if !run.join("summary.json").is_file() {
            let o = saddle(&["train", "--resume", run.to_str().unwrap(), "--quiet"]);
            assert!(o.status.success(), "resume after a kill at {ms} ms: {}{}", stdout(&o), stderr(&o));
        }
        assert!(run_bits(&run) == expected, "killed at {ms} ms and resumed: weights or metrics differ");
    }
}

#[test]
fn ctrl_c_checkpoints_says_how_to_resume_and_exits_130() {
    let (dir, data) = mnist_folder("interrupt", 2000, 200);
    let run = dir.join("run");
    let mut c = train_command(&data, &run);
    c.stdout(std::process::Stdio::piped());
    let child = c.spawn().unwrap();
    // Wait for the first checkpoint, so that the interrupt falls inside training.
    let start = std::time::Instant::now();
    while !run.join("checkpoint/state.json").is_file() && start.elapsed().as_secs() < 60 {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    // SAFETY: sends SIGINT to the child we started.
    unsafe { libc_kill(child.id() as i32, 2) };
    let o = child.wait_with_output().unwrap();
    if run.join("summary.json").is_file() {
        return; // finished before the signal arrived (a very fast machine): nothing to test
    }
    assert_eq!(o.status.code(), Some(130), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("saddle train --resume"), "{}", stdout(&o));
    let o = saddle(&["train", "--resume", run.to_str().unwrap(), "--quiet"]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let straight = dir.join("straight");
    assert!(train_command(&data, &straight).status().unwrap().success());
    assert!(run_bits(&run) == run_bits(&straight), "interrupted and resumed: weights or metrics differ");
}

extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, signal: i32) -> i32;
}

#[test]
fn resume_takes_its_settings_from_the_run() {
    let o = saddle(&["train", "--resume", "somewhere", "--epochs", "3"]);
    assert_fails_with(&o, &["--resume", "--epochs"]);
    let o = saddle(&["train", "mnist", "--resume", "somewhere"]);
    assert_fails_with(&o, &["--resume"]);
    assert_fails_with(&saddle(&["train", "--resume", "/no/such/run"]), &["/no/such/run", "no such run directory"]);
    assert_fails_with(&saddle(&["train", "--resume", trained_run().to_str().unwrap()]), &["the run is complete"]);
}

#[test]
fn a_diverged_run_says_so_and_every_command_reads_it() {
    let (dir, data) = mnist_folder("diverge", 300, 50);
    let run = dir.join("run");
    let o = saddle(&[
        "train",
        "mnist",
        "--data",
        data.to_str().unwrap(),
        "--optim",
        "sgd",
        "--lr",
        "1e30",
        "--schedule",
        "constant",
        "--monitor-every",
        "1",
        "--out",
        run.to_str().unwrap(),
        "--quiet",
    ]);
    assert_fails_with(&o, &["diverged at step", "saddle diagnose"]);
    let summary = std::fs::read_to_string(run.join("summary.json")).unwrap();
    assert!(summary.contains("\"diverged\": {"), "{summary}");
    for args in [vec!["eval"], vec!["diagnose", "--probe", "16", "--lanczos", "3", "--grid", "3"]] {
        let mut a = args.clone();
        a.insert(1, run.to_str().unwrap());
        let o = saddle(&a);
        assert!(o.status.success(), "{args:?}: {}{}", stdout(&o), stderr(&o));
        if args[0] == "diagnose" {
            assert!(
                stdout(&o).contains("exploding gradients") && stdout(&o).contains("diverged at step"),
                "{}",
                stdout(&o)
            );
        }
    }
}

#[test]
fn surprises_in_data_and_flags_are_refused_by_name() {
    let dir = scratch("surprises");
    let train = |data: &Path, extra: &[&str]| {
        let out = dir.join("never");
        let mut args =
            vec!["train", "mnist", "--data", data.to_str().unwrap(), "--out", out.to_str().unwrap(), "--quiet"];
        args.extend(extra);
        let o = saddle(&args);
        assert!(!out.join("summary.json").exists());
        o
    };
    let data = dir.join("labels");
    std::fs::create_dir_all(&data).unwrap();
    small_mnist(&data, 100, 20, 28);
    let labels = data.join("train-labels-idx1-ubyte");
    let mut bytes = std::fs::read(&labels).unwrap();
    bytes[8] = 200; // the first label
    std::fs::write(&labels, &bytes).unwrap();
    assert_fails_with(&train(&data, &[]), &["no training image is labelled 10 (the labels go up to 200)"]);

    let both = dir.join("both");
    std::fs::create_dir_all(&both).unwrap();
    small_mnist(&both, 100, 20, 28);
    std::fs::copy(both.join("t10k-labels-idx1-ubyte"), both.join("t10k-labels-idx1-ubyte.gz")).unwrap();
    assert_fails_with(&train(&both, &[]), &["both t10k-labels-idx1-ubyte and t10k-labels-idx1-ubyte.gz"]);

    let flat = dir.join("flat");
    std::fs::create_dir_all(&flat).unwrap();
    small_mnist(&flat, 100, 20, 28);
    let images = flat.join("train-images-idx3-ubyte");
    let mut bytes = std::fs::read(&images).unwrap();
    bytes[16..].fill(7);
    std::fs::write(&images, &bytes).unwrap();
    assert_fails_with(&train(&flat, &[]), &["every pixel of the training images has the same value"]);

    assert_fails_with(&saddle(&["train", "mnist", "--momentum", "0.5"]), &["--momentum", "adam has no momentum"]);
    assert_fails_with(&saddle(&["train", "mnist", "--optim", "sgd", "--momentum", "0.5"]), &["--momentum", "sgd"]);
}

#[test]
fn a_run_opens_from_any_folder() {
    let run = trained_run();
    let elsewhere = scratch("elsewhere");
    let o = Command::new(env!("CARGO_BIN_EXE_saddle"))
        .current_dir(&elsewhere)
        .args(["eval", run.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
}

#[test]
fn lr_find_suggests_a_rate_and_plots_the_test() {
    let (dir, data) = mnist_folder("lr-find", 200, 20);
    let out = dir.join("plots");
    let o = saddle(&[
        "lr-find",
        "mnist",
        "--data",
        data.to_str().unwrap(),
        "--batch-size",
        "16",
        "--lr-steps",
        "30",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("suggested learning rate") && text.contains("a tenth of"), "{text}");
    for f in ["lr-find.png", "lr-find.svg"] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    assert_plotted(&out.join("lr-find.png"), (900, 560));
    assert_fails_with(&saddle(&["lr-find", "--resume", dir.to_str().unwrap()]), &["lr-find starts from a fresh model"]);
    assert_fails_with(&saddle(&["lr-find", "mnist", "--lr-steps", "1"]), &["--lr-steps", "must be a whole number ≥ 2"]);
}

#[test]
fn a_stuck_run_is_warned_of_while_training_and_on_stuck_stop_ends_it() {
    let (dir, data) = mnist_folder("on-stuck", 200, 20);
    let train = |out: &str, extra: &[&str]| {
        let out = dir.join(out);
        let mut args = vec!["train", "mnist", "--data", data.to_str().unwrap(), "--out", out.to_str().unwrap()];
        args.extend_from_slice(&["--batch-size", "8", "--monitor-every", "1", "--quiet"]);
        args.extend_from_slice(extra);
        saddle(&args)
    };
    // A rate of 1e-7 moves nothing: said once, with its numbers, then stopped with a checkpoint.
    let o = train("tiny", &["--epochs", "3", "--lr", "1e-7", "--schedule", "constant", "--on-stuck", "stop"]);
    assert_eq!(o.status.code(), Some(3), "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert_eq!(out.matches("warning   step").count(), 1, "{out}");
    assert!(out.contains("learning rate too small") && out.contains("updates move the weights by"), "{out}");
    assert!(out.contains("stopped   at step") && out.contains("--on-stuck stop: learning rate too small"), "{out}");
    assert!(dir.join("tiny/checkpoint/state.json").is_file());
    // Trained to its end with the warning only, the diagnosis after the fact agrees, down to the
    // final weights: not at a critical point, but held back by the rate.
    let o = train("tiny-warned", &["--epochs", "3", "--lr", "1e-7", "--schedule", "constant"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let run = dir.join("tiny-warned");
    let o = saddle(&["diagnose", run.to_str().unwrap(), "--probe", "16", "--lanczos", "3", "--grid", "3"]);
    let out = stdout(&o);
    assert!(out.contains("but the plateau that reaches them is a problem: learning rate too small"), "{out}");
    // The default recipe on the same data: no warning.
    let o = train("healthy", &["--epochs", "3"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stdout(&o).contains("warning"), "{}", stdout(&o));
}
