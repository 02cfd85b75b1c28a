//! A small generated travel corpus for slot filling, built around the point
//! the lecture makes: in "arrive Taipei on November 2nd" and "leave Taipei on
//! November 2nd" the word *Taipei* is a destination in one sentence and an
//! origin in the other, and the dates are an arrival and a departure date. A
//! tagger that sees one word at a time cannot tell them apart; it needs memory
//! of the verb before it, sometimes several words back.
//!
//! Tags follow ATIS's names (`B-toloc.city_name`, `B-fromloc.city_name`,
//! `B-arrive_date.month_name`, `B-depart_date.day_number`, …), so a model
//! trained here reads ATIS's tag set. The corpus is a pure function of its
//! seed: it is bundled as code, not as a file.
//!
//! Uses: `data::text`, `rng`.

use super::TaggedSentence;
use crate::Rng;

const CITIES: &[&str] = &[
    "taipei",
    "boston",
    "denver",
    "new york",
    "san francisco",
    "tokyo",
    "london",
    "paris",
    "seattle",
    "dallas",
    "kaohsiung",
    "los angeles",
    "chicago",
    "atlanta",
    "salt lake city",
    "osaka",
    "seoul",
    "miami",
];
const MONTHS: &[&str] = &[
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];
const DAYS: &[&str] = &["1st", "2nd", "3rd", "4th", "5th", "9th", "12th", "15th", "21st", "22nd", "28th", "30th"];
const ARRIVE: &[&str] = &["arrive", "arrive in", "land in", "get to", "arriving in"];
const LEAVE: &[&str] = &["leave", "depart from", "fly out of", "leaving", "departing"];
const OPENERS: &[&str] = &["", "i want to", "i would like to", "please", "i need to", "can i"];
const FILLERS: &[&str] = &["", "the beautiful city of", "downtown"];

/// Words and tags being assembled.
#[derive(Default)]
struct Builder {
    words: Vec<String>,
    tags: Vec<String>,
}

impl Builder {
    /// Adds untagged words.
    fn plain(&mut self, text: &str) {
        for w in text.split_whitespace() {
            self.words.push(w.to_string());
            self.tags.push("O".into());
        }
    }
    /// Adds a chunk of one or more words tagged `B-slot`, `I-slot`, ….
    fn chunk(&mut self, text: &str, slot: &str) {
        for (i, w) in text.split_whitespace().enumerate() {
            self.words.push(w.to_string());
            self.tags.push(format!("{}-{slot}", if i == 0 { "B" } else { "I" }));
        }
    }
}

fn pick<'a>(rng: &mut Rng, items: &[&'a str]) -> &'a str {
    items[rng.below(items.len())]
}

/// `n` sentences drawn from the templates with generator `seed`.
///
/// ```
/// let corpus = saddle::data::travel_corpus(100, 0);
/// assert_eq!(corpus.len(), 100);
/// assert!(corpus.iter().all(|s| s.words.len() == s.tags.len()));
/// ```
pub fn travel_corpus(n: usize, seed: u64) -> Vec<TaggedSentence> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|_| {
            let mut b = Builder::default();
            b.plain(pick(&mut rng, OPENERS));
            // One or two legs; each leg is an arrival or a departure, with a date half the time.
            let legs = 1 + rng.below(2);
            for leg in 0..legs {
                if leg > 0 {
                    b.plain("and");
                }
                let arrive = rng.below(2) == 0;
                let (verbs, place, when) =
                    if arrive { (ARRIVE, "toloc", "arrive_date") } else { (LEAVE, "fromloc", "depart_date") };
                b.plain(pick(&mut rng, verbs));
                b.plain(pick(&mut rng, FILLERS));
                b.chunk(pick(&mut rng, CITIES), &format!("{place}.city_name"));
                if rng.below(2) == 0 {
                    b.plain("on");
                    b.chunk(pick(&mut rng, MONTHS), &format!("{when}.month_name"));
                    b.chunk(pick(&mut rng, DAYS), &format!("{when}.day_number"));
                }
            }
            TaggedSentence { words: b.words, tags: b.tags, intent: Some("atis_flight".into()) }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::chunks;

    #[test]
    fn seeded_aligned_and_the_same_city_is_tagged_by_the_verb_before_it() {
        let a = travel_corpus(500, 3);
        assert_eq!(a, travel_corpus(500, 3));
        assert_ne!(a, travel_corpus(500, 4));
        let mut seen_from = false;
        let mut seen_to = false;
        for s in &a {
            assert_eq!(s.words.len(), s.tags.len());
            assert!(!chunks(&s.tags).is_empty());
            for (w, t) in s.words.iter().zip(&s.tags) {
                if w == "taipei" {
                    seen_from |= t == "B-fromloc.city_name";
                    seen_to |= t == "B-toloc.city_name";
                }
            }
        }
        assert!(seen_from && seen_to, "taipei appears both as an origin and as a destination");
    }
}
