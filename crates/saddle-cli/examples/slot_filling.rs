//! Slot filling with a BiLSTM-CRF with character features, written against
//! saddle's library API: tag each word of a travel request with its slot.
//!
//! ```sh
//! cargo run --release -p saddle-cli --example slot_filling
//! ```
//!
//! It trains on the generated travel corpus, where the same city is a
//! destination after "arrive" and an origin after "leave", so the tagger needs
//! memory of the verb before the city.

use saddle::data::{travel_corpus, TaggedSentence};
use saddle::nn::{CellKind, Module, Tagger, TaggerConfig};
use saddle::optim::{AdamConfig, LrScheduler, Optimizer};
use saddle::train::{fit, slot_metrics, FitOptions, Vocabularies};
use saddle::Rng;

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run() -> saddle::Result<()> {
    let (train, test) = (travel_corpus(2000, 1), travel_corpus(300, 2));
    // Words (lower-cased, digits as 0) seen at least once, the tags, and the
    // characters of the words as written, from the training sentences.
    let v = Vocabularies::build(&train, 1, true);
    let train_set = v.dataset(&train);

    let cfg = TaggerConfig {
        bidirectional: true,
        // Tag-to-tag transition scores, trained on whole sequences, decoded by Viterbi.
        crf: true,
        // 16 features per word from a CNN over its characters (vectors of 8).
        char_vocab_size: v.chars.as_ref().map_or(0, Vec::len),
        char_dim: 8,
        char_filters: 16,
        ..TaggerConfig::new(CellKind::Lstm, v.words.len(), v.tags.len(), 32, 64)
    };
    let mut model = Tagger::new(cfg, &mut Rng::new(0));
    let mut opt = Optimizer::new(model.named_parameters(), AdamConfig { lr: 0.01, ..Default::default() })?;
    let options = FitOptions { epochs: 3, batch_size: 32, ..Default::default() };
    fit(&mut model, &mut opt, &mut LrScheduler::constant(0.01), &train_set, None, &options, &mut [])?;

    // conlleval's chunk F1 on the held-out sentences.
    let metrics = slot_metrics(&mut model, &test, &v);
    println!("token accuracy {:.2}%, slot F1 {:.2}", metrics.token_accuracy(), metrics.overall.f1());

    let tagset = v.tagset();
    for sentence in ["arrive taipei on november 2nd", "leave taipei on november 2nd"] {
        let words: Vec<String> = sentence.split(' ').map(String::from).collect();
        let data = v.dataset(&[TaggedSentence::untagged(words)]);
        let tags: Vec<&str> = model.tag(&data, 1)[0].iter().map(|&i| tagset.token(i)).collect();
        let shown: Vec<String> = sentence.split(' ').zip(tags).map(|(w, t)| format!("{w}/{t}")).collect();
        println!("{}", shown.join(" "));
    }
    Ok(())
}
