//! `saddle tag`, and the slot-filling table of `saddle eval`: a recurrent
//! tagger labels each word of a sentence with its slot.

use saddle::data::{tokenize, word_index, ChunkMetrics, TaggedSentence, Tokens, Vocab, MAX_SENTENCE_WORDS};
use saddle::train::{Model, Run};
use saddle::{Error, Result};
use std::path::PathBuf;

/// What fits the tags: with chunk tags (BIO, BIOES), precision, recall and
/// F1 per chunk type; with tags of single words (parts of speech), each
/// tag's accuracy, precision and F1; token accuracy always.
pub fn print_metrics(m: &ChunkMetrics) {
    let row = |name: &str, a: f64, b: f64, f1: f64, gold: usize, found: usize| {
        println!("{name:<32} {a:>9.2} {b:>9.2} {f1:>9.2} {gold:>7} {found:>7}")
    };
    if m.has_chunks() {
        println!("{:<32} {:>9} {:>9} {:>9} {:>7} {:>7}", "slot", "precision", "recall", "F1", "gold", "found");
        for (kind, s) in &m.by_type {
            row(kind, s.precision(), s.recall(), s.f1(), s.gold, s.predicted);
        }
        let o = &m.overall;
        row("all slots", o.precision(), o.recall(), o.f1(), o.gold, o.predicted);
    } else {
        println!("{:<32} {:>9} {:>9} {:>9} {:>7} {:>7}", "tag", "accuracy", "precision", "F1", "gold", "found");
        for (tag, s) in &m.by_tag {
            row(tag, s.recall(), s.precision(), s.f1(), s.gold, s.predicted);
        }
    }
    println!("token accuracy {:.2}% ({} of {} words)", m.token_accuracy(), m.correct_tokens, m.tokens);
}

#[derive(clap::Args)]
#[command(after_help = "Example:\n  saddle tag runs/slots-lstm-DATE \"i want to fly from boston to denver\"")]
pub struct TagArgs {
    /// A run directory written by `saddle train slots`.
    run: PathBuf,
    /// The sentence to tag: split at spaces and at punctuation on either end of a word, as the
    /// training text was; words compared lower-cased, digits as 0.
    sentence: String,
}

/// `saddle tag RUN "sentence"`: each word with its slot.
pub fn tag(args: TagArgs) -> Result<()> {
    let run = Run::open(&args.run)?;
    let (Model::Tagger(tagger), Some(v)) = (&run.model, &run.vocabularies) else {
        return Err(Error::format(
            run.path.join("config.json"),
            format!("a '{}' run has no tagger", run.config.spec.task.name()),
        ));
    };
    let (vocab, tagset) = (v.words(), v.tagset());
    let Tokens { words, dropped } = tokenize(&args.sentence, &vocab);
    if words.is_empty() {
        return Err(Error::config("SENTENCE", "is empty; give the words to tag, as in \"fly from boston to denver\""));
    }
    if words.len() > MAX_SENTENCE_WORDS {
        return Err(Error::config(
            "SENTENCE",
            format!("has {} words; at most {MAX_SENTENCE_WORDS} are tagged at once", words.len()),
        ));
    }
    let ids: Vec<usize> = words.iter().map(|w| word_index(&vocab, w)).collect();
    let tags = tagger.tag(&v.dataset(&[TaggedSentence::untagged(words.clone())]), 1).remove(0);
    for ((w, &id), &t) in words.iter().zip(&ids).zip(&tags) {
        let unknown = if id == Vocab::UNK { "  (unknown word)" } else { "" };
        println!("{w:<20} {}{unknown}", tagset.token(t));
    }
    if !dropped.is_empty() {
        println!("(not tagged: {}; the training sentences hold no such punctuation)", dropped.join(" "));
    }
    Ok(())
}
