//! The labelled runs that train in seconds on bundled or generated data:
//! each is trained and diagnosed, and must get the verdict known from how it
//! is built (`saddle bench diagnosis` runs them all, with the confusion table).

use saddle::diagnose::{labelled_runs, Verdict};

/// Trains and diagnoses the labelled run `name`, and checks its verdict.
fn check(name: &str) {
    let run = labelled_runs(None).into_iter().find(|r| r.name == name).expect("a labelled run of that name");
    let dir = std::env::temp_dir().join(format!("saddle-labelled-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let d = run.train_and_diagnose(&dir, &mut []).unwrap();
    let given = d.verdict();
    for f in d.findings.iter().chain([&d.end]) {
        println!("{}–{}: {} ({})", f.from_step, f.to_step, f.verdict, f.evidence.join("; "));
    }
    assert!(run.expected.accepts(given), "{name}: expected {}, given {given}", run.expected);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_healthy_perceptron_with_a_pause_in_its_noise_is_not_an_alarm() {
    check("mnist-mlp-adam");
}

#[test]
fn a_learning_rate_far_too_large_is_an_explosion_even_once_it_killed_the_units() {
    check("mnist-lr-huge");
}

#[test]
fn a_learning_rate_far_too_small_is_named() {
    check("mnist-lr-tiny");
}

#[test]
fn a_deep_sigmoid_network_vanishes_through_its_layers() {
    check("mnist-deep-sigmoid");
}

#[test]
fn a_linear_network_at_zero_is_at_a_saddle_point() {
    check("mnist-linear-zeros");
}

#[test]
fn a_plain_rnn_loses_a_cue_100_words_back() {
    check("cue-rnn-100");
}

#[test]
fn the_run_verdict_is_its_first_problem_else_the_final_weights() {
    let runs = labelled_runs(None);
    assert!(runs.iter().any(|r| r.expected.accepts(Verdict::LocalMinimum)), "a converged run is labelled");
    assert!(runs.iter().filter(|r| r.expected.is_healthy()).count() >= 3, "several healthy runs");
    for v in [Verdict::Exploding, Verdict::LearningRateTooSmall, Verdict::Vanishing, Verdict::SaddlePoint] {
        assert!(runs.iter().any(|r| r.expected.accepts(v)), "a run labelled {v}");
    }
}
