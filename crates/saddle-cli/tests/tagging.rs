//! `saddle train slots` end to end: the generated travel corpus (slot
//! filling, `tag`, `eval`, `diagnose`) and a CoNLL-U corpus of parts of
//! speech that the tests write, where only characters tell unseen names
//! from unseen nouns.

mod common;

use common::{assert_fails_with, saddle, scratch, stderr, stdout};
use std::path::Path;

/// A CoNLL-U corpus of parts of speech whose content words are never seen
/// twice, names (`Zorbi`, PROPN) and nouns (`lanto`, NOUN) in the same
/// places: `Zorbi sees lanto .`, `lanto runs .`. Context cannot tell them
/// apart in the test set; their first letter can.
fn write_conllu_names(dir: &Path) {
    let mut state = 7u64;
    let mut next = |n: usize| {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (state >> 33) as usize % n
    };
    for (split, n) in [("train", 400), ("test", 100)] {
        let mut text = String::new();
        for s in 0..n {
            let mut content = || {
                let mut w: String = (0..5).map(|_| "aeioulnrstkm".as_bytes()[next(12)] as char).collect();
                if next(2) == 0 {
                    w[..1].make_ascii_uppercase();
                    (w, "PROPN")
                } else {
                    (w, "NOUN")
                }
            };
            let (a, b) = (content(), content());
            let words = match s % 2 {
                0 => vec![(a.0.as_str(), a.1), ("sees", "VERB"), (b.0.as_str(), b.1), (".", "PUNCT")],
                _ => vec![(a.0.as_str(), a.1), ("runs", "VERB"), (".", "PUNCT")],
            };
            text += &format!("# sent_id = {split}-{s}\n");
            for (i, (w, t)) in words.iter().enumerate() {
                text += &format!("{}\t{w}\t_\t{t}\t_\t_\t0\t_\t_\t_\n", i + 1);
            }
            text.push('\n');
        }
        std::fs::write(dir.join(format!("en_names-ud-{split}.conllu")), text).unwrap();
    }
}

#[test]
fn a_pos_tagger_with_characters_and_a_crf_trains_on_conllu_and_reports_tag_accuracy() {
    let dir = scratch("conllu");
    write_conllu_names(&dir);
    let run = dir.join("run");
    let o = saddle(&[
        "train",
        "slots",
        "--data",
        dir.to_str().unwrap(),
        "--bidirectional",
        "--crf",
        "--char-filters",
        "16",
        "--char-dim",
        "8",
        "--embedding-dim",
        "16",
        "--hidden-size",
        "32",
        "--epochs",
        "20",
        "--lr",
        "0.01",
        "--out",
        run.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("(CoNLL-U, FORM → UPOS)"), "{}", stdout(&o));
    assert!(stdout(&o).contains("model     bilstm-chars-crf"), "{}", stdout(&o));
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).unwrap()).unwrap();
    // Parts of speech are no chunks: token accuracy, no chunk F1.
    assert!(summary["test_f1"].is_null(), "{summary}");
    let accuracy = summary["test_token_accuracy"].as_f64().unwrap();
    // Without characters: 0.78 (a coin toss on the content words).
    assert!(accuracy > 0.95, "unseen names and nouns are told apart by their letters: test token accuracy {accuracy}");
    let eval = stdout(&saddle(&["eval", run.to_str().unwrap()]));
    assert!(eval.contains("tag                               accuracy precision        F1"), "{eval}");
    assert!(eval.contains("PROPN") && !eval.contains("all slots"), "{eval}");
    let tag = stdout(&saddle(&["tag", run.to_str().unwrap(), "Brontu sees lamik ."]));
    assert!(tag.contains("Brontu               PROPN  (unknown word)"), "{tag}");
    assert!(tag.contains("lamik                NOUN  (unknown word)"), "{tag}");
    // The diagnosis reads the run's own loss (the CRF's) and its character batches.
    let diagnosis = saddle(&["diagnose", run.to_str().unwrap()]);
    assert!(stdout(&diagnosis).contains("gradient through time"), "{}{}", stdout(&diagnosis), stderr(&diagnosis));

    // A broken line names file, line and column, and nothing is left behind.
    std::fs::write(
        dir.join("en_names-ud-test.conllu"),
        "1\tthe\t_\tDET\t_\t_\t0\t_\t_\t_\n3\tdog\t_\tNOUN\t_\t_\t0\t_\t_\t_\n",
    )
    .unwrap();
    let bad = dir.join("bad");
    let o = saddle(&["train", "slots", "--data", dir.to_str().unwrap(), "--out", bad.to_str().unwrap()]);
    assert_fails_with(
        &o,
        &["en_names-ud-test.conllu: line 2, column 1: ID '3' where word 2 of the sentence was expected"],
    );
    assert!(!bad.exists());
}

#[test]
fn slots_train_tag_and_eval_on_the_generated_travel_corpus() {
    let dir = scratch("slots");
    let run = dir.join("run");
    let o = saddle(&[
        "train",
        "slots",
        "--epochs",
        "2",
        "--hidden-size",
        "32",
        "--embedding-dim",
        "16",
        "--lr",
        "0.01",
        "--out",
        run.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).unwrap()).unwrap();
    let f1 = summary["test_f1"].as_f64().unwrap();
    assert!(f1 > 90.0, "an LSTM tells origin from destination on the travel corpus: slot F1 {f1}");
    // Each figure is named by its split: the dev set after each epoch, the test set at the end.
    assert_eq!(summary["held_out"], "dev");
    assert!(summary["test_token_accuracy"].as_f64().unwrap() > 0.9, "{summary}");
    let csv = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    assert!(csv.starts_with("step,epoch,loss,lr,grad_norm,train_loss,train_accuracy,dev_loss,dev_accuracy\n"));
    assert!(run.join("vocab.json").is_file());

    // The lecture's pair: the same city, tagged by the verb before it.
    let tag = |s: &str| stdout(&saddle(&["tag", run.to_str().unwrap(), s]));
    assert!(tag("arrive Taipei on November 2nd").contains("Taipei               B-toloc.city_name"));
    assert!(tag("leave Taipei on November 2nd").contains("Taipei               B-fromloc.city_name"));
    assert!(tag("fly to atlantis").contains("(unknown word)"));
    // Typed text is split as the corpus was: punctuation off the words, and a special token is a word like any other.
    let out = tag("leave Taipei, on November 2nd.");
    assert!(out.contains("Taipei               B-fromloc.city_name"), "{out}");
    assert!(out.contains("(not tagged: , .;"), "{out}");
    // A typed <pad> is an unknown word like any other, and does not end the sentence.
    let (pad, other) = (tag("leave <pad> Taipei on November 2nd"), tag("leave xyzzy Taipei on November 2nd"));
    assert_eq!(pad.replace("<pad>", "xyzzy"), other);

    let o = saddle(&["eval", run.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("toloc.city_name") && stdout(&o).contains("all slots"), "{}", stdout(&o));

    // A recurrent run's diagnosis adds the gradient flow through time.
    let o = saddle(&["diagnose", run.to_str().unwrap(), "--probe", "32", "--lanczos", "4", "--grid", "3"]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("gradient through time"), "{}", stdout(&o));
    let html = std::fs::read_to_string(run.join("report.html")).unwrap();
    assert!(html.contains("Gradient flow through time") && html.matches("<figure>").count() == 10);
}
