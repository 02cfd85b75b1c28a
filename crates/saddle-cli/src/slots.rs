//! `saddle train slots`, `saddle tag` and slot-filling evaluation: a recurrent
//! tagger labels each word of a sentence with its slot.

use crate::train::{train_job, Job, TrainArgs};
use saddle::data::{
    read_atis, read_conll, read_seq_in_out, travel_corpus, word_form, ChunkMetrics, TaggedDataset, TaggedSentence,
    Vocab,
};
use saddle::nn::{Tagger, TaggerCell, TaggerConfig};
use saddle::train::{slot_metrics, Run, Vocabularies};
use saddle::{Error, Result, Rng};
use std::path::{Path, PathBuf};

/// Sentences held out of ATIS's `train_dev` as the dev set (its last lines).
const ATIS_DEV: usize = 500;

/// Training, dev and test sentences, and a description of where they came from.
pub struct Corpus {
    pub train: Vec<TaggedSentence>,
    pub dev: Vec<TaggedSentence>,
    pub test: Vec<TaggedSentence>,
    pub source: String,
}

/// The first of `names` that exists in `dir`.
fn first_file(dir: &Path, names: &[&str]) -> Option<PathBuf> {
    names.iter().map(|n| dir.join(n)).find(|p| p.is_file())
}

/// Reads a corpus folder in one of the three layouts, or generates the travel corpus.
pub fn load(data: Option<&Path>) -> Result<Corpus> {
    let Some(dir) = data else {
        return Ok(Corpus {
            train: travel_corpus(3000, 1),
            dev: travel_corpus(300, 2),
            test: travel_corpus(500, 3),
            source: "generated travel corpus (3000 / 300 / 500 sentences)".into(),
        });
    };
    if !dir.is_dir() {
        return Err(Error::io(dir, std::io::Error::new(std::io::ErrorKind::NotFound, "no such folder")));
    }
    let split = |mut train: Vec<TaggedSentence>, dev: Option<Vec<TaggedSentence>>| {
        let dev = dev.unwrap_or_else(|| train.split_off(train.len().saturating_sub(ATIS_DEV.min(train.len() / 5))));
        (train, dev)
    };
    let seq = |sub: &str| -> Option<Result<Vec<TaggedSentence>>> {
        let d = dir.join(sub);
        d.join("seq.in").is_file().then(|| read_seq_in_out(&d.join("seq.in"), &d.join("seq.out")))
    };
    if let Some(train) = seq("train") {
        let test = seq("test").ok_or_else(|| Error::format(dir, "has train/seq.in but no test/seq.in"))??;
        let dev = seq("valid").or_else(|| seq("dev")).transpose()?;
        let (train, dev) = split(train?, dev);
        return Ok(Corpus { train, dev, test, source: format!("{} (seq.in/seq.out)", dir.display()) });
    }
    if let Some(train) = first_file(dir, &["train.conll", "train.txt.conll"]) {
        let test =
            first_file(dir, &["test.conll"]).ok_or_else(|| Error::format(dir, "has train.conll but no test.conll"))?;
        let dev = first_file(dir, &["dev.conll", "valid.conll"]).map(|p| read_conll(&p)).transpose()?;
        let (train, dev) = split(read_conll(&train)?, dev);
        return Ok(Corpus { train, dev, test: read_conll(&test)?, source: format!("{} (CoNLL)", dir.display()) });
    }
    let train = first_file(dir, &["train_dev.gz", "train_dev", "train.gz", "train", "train.txt"]);
    let test = first_file(dir, &["test.gz", "test", "test.txt"]);
    match (train, test) {
        (Some(train), Some(test)) => {
            let (train, dev) = split(read_atis(&train)?, None);
            Ok(Corpus {
                train,
                dev,
                test: read_atis(&test)?,
                source: format!("{} (ATIS word:TAG; dev = last {} of train)", dir.display(), ATIS_DEV),
            })
        }
        _ => Err(Error::format(
            dir,
            "no corpus found; expected ATIS files (train_dev or train, and test; word:TAG … <=> intent per line), \\
             train/ and test/ folders with seq.in and seq.out, or train.conll and test.conll",
        )),
    }
}

fn cell(name: &str) -> Result<TaggerCell> {
    match name {
        "rnn" => Ok(TaggerCell::Rnn),
        "lstm" => Ok(TaggerCell::Lstm),
        "gru" => Ok(TaggerCell::Gru),
        other => {
            Err(Error::config("--model", format!("'{other}' is not a recurrent model; expected rnn, lstm or gru")))
        }
    }
}

pub fn train(args: TrainArgs) -> Result<PathBuf> {
    let model_name = args.model.clone().unwrap_or_else(|| "lstm".into());
    let kind = cell(&model_name)?;
    let corpus = load(args.data.as_deref())?;
    if corpus.train.is_empty() || corpus.test.is_empty() {
        return Err(Error::format(args.data.clone().unwrap_or_default(), "the training or the test set is empty"));
    }
    // Words are looked up by their word_form (TaggedDataset does the same).
    let forms: Vec<String> = corpus.train.iter().flat_map(|s| s.words.iter().map(|w| word_form(w))).collect();
    let vocab = Vocab::build(forms.iter().map(String::as_str), args.min_count);
    let mut tags: Vec<String> = corpus.train.iter().flat_map(|s| s.tags.iter().cloned()).collect();
    tags.sort();
    tags.dedup();
    let tagset = Vocab::from_tokens(tags);
    println!(
        "data      {}: {} training, {} dev, {} test sentences; {} words, {} tags",
        corpus.source,
        corpus.train.len(),
        corpus.dev.len(),
        corpus.test.len(),
        vocab.len(),
        tagset.len()
    );
    let cfg = TaggerConfig {
        cell: kind,
        vocab_size: vocab.len(),
        tags: tagset.len(),
        embedding_dim: args.embedding_dim as usize,
        hidden_size: args.hidden_size as usize,
        num_layers: args.layers as usize,
        bidirectional: args.bidirectional,
        dropout: args.dropout,
        context: args.context as usize,
    };
    let mut model = Tagger::new(cfg, &mut Rng::new(args.seed));
    let name = format!("{}{model_name}", if args.bidirectional { "bi" } else { "" });
    let (train_set, dev_set) =
        (TaggedDataset::new(&corpus.train, &vocab, &tagset), TaggedDataset::new(&corpus.dev, &vocab, &tagset));
    let job = Job {
        task: "slots",
        model_name: name,
        unit: "sentences",
        held_out: "dev",
        epochs: args.epochs.unwrap_or(10) as usize,
        batch_size: args.batch_size.unwrap_or(16) as usize,
        input: [0, 0, 0],
        classes: tagset.len(),
        normalization: saddle::data::Normalization { mean: 0.0, std: 1.0 },
        data: args.data.as_ref().map_or_else(|| "travel".into(), |d| d.display().to_string()),
        tagger: Some(cfg),
    };
    let vocabularies = Vocabularies { words: vocab.tokens().to_vec(), tags: tagset.tokens().to_vec() };
    let test = corpus.test.clone();
    let (summary, path) = train_job(&args, &job, &mut model, &train_set, &dev_set, |dir, model| {
        vocabularies.save(dir)?;
        let m = slot_metrics(model, &test, &vocab, &tagset);
        println!(
            "test      slot F1 {:.2} (precision {:.2}, recall {:.2}), token accuracy {:.2}%",
            m.overall.f1(),
            m.overall.precision(),
            m.overall.recall(),
            m.token_accuracy()
        );
        Ok(Some(m.overall.f1()))
    })?;
    println!(
        "done      test slot F1 {:.2}; {:.1} s training ({:.0} sentences/s); saved to {}",
        summary.test_f1.unwrap_or(f64::NAN),
        summary.train_seconds,
        summary.train_images_per_second,
        path.display()
    );
    Ok(path)
}

/// `saddle eval` for a slot-filling run: precision, recall and F1 per slot type.
pub fn eval(run: &Run, data: Option<&Path>) -> Result<()> {
    let (mut tagger, vocab, tagset) = run.tagger()?;
    let source =
        data.map(Path::to_path_buf).or_else(|| (run.config.data != "travel").then(|| PathBuf::from(&run.config.data)));
    let corpus = load(source.as_deref())?;
    let m = slot_metrics(&mut tagger, &corpus.test, &vocab, &tagset);
    println!("run       {} ({}, {} epochs)", run.path.display(), run.config.model, run.summary.epochs);
    println!("data      {}: {} test sentences, {} words", corpus.source, corpus.test.len(), m.tokens);
    print_metrics(&m);
    Ok(())
}

fn print_metrics(m: &ChunkMetrics) {
    println!("{:<32} {:>9} {:>9} {:>9} {:>7} {:>7}", "slot", "precision", "recall", "F1", "gold", "found");
    for (kind, s) in &m.by_type {
        println!(
            "{kind:<32} {:>9.2} {:>9.2} {:>9.2} {:>7} {:>7}",
            s.precision(),
            s.recall(),
            s.f1(),
            s.gold,
            s.predicted
        );
    }
    let o = &m.overall;
    println!(
        "{:<32} {:>9.2} {:>9.2} {:>9.2} {:>7} {:>7}",
        "all slots",
        o.precision(),
        o.recall(),
        o.f1(),
        o.gold,
        o.predicted
    );
    println!("token accuracy {:.2}% ({} of {} words)", m.token_accuracy(), m.correct_tokens, m.tokens);
}

#[derive(clap::Args)]
#[command(after_help = "Example:\n  saddle tag runs/slots-lstm-DATE \"i want to fly from boston to denver\"")]
pub struct TagArgs {
    /// A run directory written by `saddle train slots`.
    run: PathBuf,
    /// The sentence to tag (words separated by spaces; compared lower-cased, digits as 0).
    sentence: String,
}

/// `saddle tag RUN "sentence"`: each word with its slot.
pub fn tag(args: TagArgs) -> Result<()> {
    let run = Run::open(&args.run)?;
    let (tagger, vocab, tagset) = run.tagger()?;
    let words: Vec<&str> = args.sentence.split_whitespace().collect();
    if words.is_empty() {
        return Err(Error::config("SENTENCE", "is empty; give the words to tag, as in \"fly from boston to denver\""));
    }
    let ids: Vec<usize> = words.iter().map(|w| vocab.index(&word_form(w))).collect();
    let tags = tagger.tag(std::slice::from_ref(&ids), 1).remove(0);
    for ((w, &id), &t) in words.iter().zip(&ids).zip(&tags) {
        let unknown = if id == Vocab::UNK { "  (unknown word)" } else { "" };
        println!("{w:<20} {}{unknown}", tagset.token(t));
    }
    Ok(())
}
