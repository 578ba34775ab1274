//! The built-in composer: deterministic, offline, grounded sentence by
//! sentence. It writes nothing of its own: facts the question is about come
//! first (they are about the asker's own account), then the passage
//! sentences sharing the most words with the question, each citing its
//! passage.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;

use super::{Answer, Citation, Composer, Grounding, Sentence};
use crate::text;

/// Facts quoted at most.
const MAX_FACTS: usize = 3;
/// Passage sentences quoted at most, and per passage.
const MAX_SENTENCES: usize = 3;
const MAX_PER_SOURCE: usize = 2;
/// Weight of a word from the best passage's title that the question lacks.
const TITLE_WORD_WEIGHT: f32 = 0.5;
/// Sentences scoring below this share of the best one are dropped.
const KEEP_ABOVE_BEST: f32 = 0.6;
/// Passages considered (they come best first).
const MAX_SOURCES: usize = 3;
/// The best passage, when this similar to the question, is quoted from its
/// opening even when no sentence shares a word with it ("paraphrase"
/// questions). Only the best: a neighbouring topic's opening is noise.
const QUOTE_OPENING_AT: f32 = 0.55;

#[derive(Debug, Clone, Copy, Default)]
pub struct Extractive;

impl Extractive {
    pub fn answer(&self, g: &Grounding) -> Answer {
        let q: HashSet<String> = text::terms(&g.question).into_iter().collect();
        let mut out: Vec<Sentence> = Vec::new();
        for f in &g.facts {
            if out.len() == MAX_FACTS {
                break;
            }
            let topical = f
                .topics
                .iter()
                .any(|t| text::terms(t).iter().any(|w| q.contains(w)));
            if topical {
                out.push(Sentence {
                    text: f.text.clone(),
                    citations: vec![Citation::Fact { key: f.key.clone() }],
                });
            }
        }
        // Words that make a sentence relevant: the question's, and at half
        // weight the best passage's title ("SSO" asks about "single
        // sign-on" when that is what the best article is titled).
        let mut weights: HashMap<String, f32> = q.iter().map(|t| (t.clone(), 1.0)).collect();
        if let Some(best) = g.sources.first() {
            for t in text::terms(&best.title) {
                weights.entry(t).or_insert(TITLE_WORD_WEIGHT);
            }
        }
        // And the words of the facts being quoted: "SSO is not included in
        // the Team plan" makes the plan comparison the passage to quote.
        for s in &out {
            for t in text::terms(&s.text) {
                weights.entry(t).or_insert(TITLE_WORD_WEIGHT);
            }
        }
        // A word found in many of the passages' sentences ("set",
        // "workspace") says little about which sentence answers: weigh each
        // by its inverse sentence frequency.
        let all: Vec<Vec<String>> = g
            .sources
            .iter()
            .take(MAX_SOURCES)
            .map(|s| text::sentences(&s.text))
            .collect();
        let mut df: HashMap<String, f32> = HashMap::new();
        let mut n = 0.0f32;
        for sentence in all.iter().flatten() {
            n += 1.0;
            let words: HashSet<String> = text::terms(sentence).into_iter().collect();
            for w in words {
                *df.entry(w).or_default() += 1.0;
            }
        }
        let idf = |w: &str| (1.0 + n / df.get(w).copied().unwrap_or(1.0)).ln();
        // (source rank, sentence position, score, text)
        let mut picked: Vec<(usize, usize, f32, String)> = Vec::new();
        for (rank, sentences) in all.iter().enumerate() {
            let s = &g.sources[rank];
            // Title words help pick sentences only from a passage that is
            // about the question at all.
            let on_topic = text::terms(&format!("{} {}", s.title, s.text))
                .iter()
                .any(|t| q.contains(t));
            let mut scored: Vec<(usize, f32, String)> = sentences
                .iter()
                .cloned()
                .enumerate()
                .filter_map(|(pos, sentence)| {
                    let words: HashSet<String> = text::terms(&sentence).into_iter().collect();
                    let asked = words.iter().filter(|w| q.contains(*w)).count();
                    let shared: f32 = words
                        .iter()
                        .filter_map(|w| weights.get(w).map(|x| x * idf(w)))
                        .sum();
                    // At least one word of the question itself.
                    (asked > 0 || (rank == 0 && on_topic && shared >= 1.0)).then(|| {
                        // Shared words matter most; a short, dense sentence
                        // beats a long one with the same words; earlier
                        // passages rank higher.
                        let score =
                            shared / (words.len() as f32).sqrt().max(1.0) - rank as f32 * 0.1;
                        (pos, score, sentence)
                    })
                })
                .collect();
            if scored.is_empty()
                && rank == 0
                && s.similarity.is_some_and(|x| x >= QUOTE_OPENING_AT)
                && let Some(first) = sentences.first()
            {
                scored.push((0, 0.01, first.clone()));
            }
            scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            for (pos, score, sentence) in scored.into_iter().take(MAX_PER_SOURCE) {
                picked.push((rank, pos, score, sentence));
            }
        }
        // Sentences much weaker than the best are left out: they are usually
        // from a neighbouring topic and would cite a passage that does not
        // answer.
        let best = picked.iter().map(|p| p.2).fold(f32::MIN, f32::max);
        picked.retain(|p| p.2 >= best * KEEP_ABOVE_BEST);
        picked.sort_by(|a, b| b.2.total_cmp(&a.2).then(a.0.cmp(&b.0)).then(a.1.cmp(&b.1)));
        picked.truncate(MAX_SENTENCES);
        // Read in passage order, then sentence order, like the articles.
        picked.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
        for (rank, _, _, sentence) in picked {
            let s = &g.sources[rank];
            out.push(Sentence {
                text: sentence,
                citations: vec![Citation::Source { n: s.n, id: s.id }],
            });
        }
        Answer::render(out, "extractive", None)
    }
}

impl Composer for Extractive {
    fn name(&self) -> &'static str {
        "extractive"
    }

    fn compose<'a>(
        &'a self,
        g: &'a Grounding,
    ) -> Pin<Box<dyn Future<Output = Answer> + Send + 'a>> {
        let a = self.answer(g);
        Box::pin(async move { a })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compose::{Fact, Source};
    use uuid::Uuid;

    fn grounding(question: &str) -> Grounding {
        Grounding {
            question: question.into(),
            sources: vec![
                Source {
                    n: 1,
                    id: Uuid::from_u128(1),
                    kind: "article".into(),
                    title: "Add a seat".into(),
                    text: "Seats are licences for your users. To add a seat, open Billing and choose Add seats. The new seat is charged for the rest of the period.".into(),
                    similarity: Some(0.7),
                },
                Source {
                    n: 2,
                    id: Uuid::from_u128(2),
                    kind: "article".into(),
                    title: "Dashboards".into(),
                    text: "Dashboards show your reports.".into(),
                    similarity: Some(0.2),
                },
            ],
            facts: vec![
                Fact {
                    key: "seats".into(),
                    text: "You use 8 of 10 seats.".into(),
                    topics: vec!["seat".into(), "user".into()],
                },
                Fact {
                    key: "invoice".into(),
                    text: "Your latest invoice is paid.".into(),
                    topics: vec!["invoice".into()],
                },
            ],
        }
    }

    #[test]
    fn every_sentence_is_copied_and_cited() {
        let g = grounding("How do I add a seat?");
        let a = Extractive.answer(&g);
        assert_eq!(a.sentences[0].text, "You use 8 of 10 seats.");
        assert!(
            a.cited_facts() == vec!["seats"],
            "only topical facts: {a:?}"
        );
        assert_eq!(a.cited_sources(), vec![1]);
        for s in &a.sentences {
            assert_eq!(s.citations.len(), 1);
            let copied = g.facts.iter().any(|f| f.text == s.text)
                || g.sources.iter().any(|src| src.text.contains(&s.text));
            assert!(copied, "{} was not copied from the grounding", s.text);
        }
        assert!(a.text.contains("[1]"));
    }

    #[test]
    fn nothing_relevant_gives_an_empty_answer() {
        let mut g = grounding("kubernetes helm chart");
        g.sources[0].similarity = Some(0.1);
        let a = Extractive.answer(&g);
        assert!(a.sentences.is_empty());
        assert_eq!(super::super::confidence(&g, &a), 0.0);
    }
}
