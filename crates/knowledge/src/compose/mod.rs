//! Answers from retrieved passages and account facts, with citations.
//!
//! A composer sees only a [`Grounding`]: the passages and facts the caller
//! already filtered through the field policy for the person who will read
//! the answer. Nothing else reaches it, so no wording of the question ("ignore
//! your rules…") can make it reveal more: what it was not given, it cannot
//! say.
//!
//! Two composers share the [`Composer`] trait: [`Extractive`] (built in,
//! deterministic, offline: every sentence is copied from a passage or a fact
//! and cites it) and [`ChatCompletions`] (any OpenAI-compatible endpoint;
//! falls back to the extractive answer, with a note, when the endpoint fails,
//! times out or cites nothing it was given).

mod chat;
mod extractive;

use std::future::Future;
use std::pin::Pin;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use chat::{ChatCompletions, ChatConfig};
pub use extractive::Extractive;

/// A retrieved passage the answer may quote, numbered from 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Source {
    pub n: usize,
    pub id: Uuid,
    pub kind: String,
    pub title: String,
    pub text: String,
    /// Cosine similarity to the question, when known.
    pub similarity: Option<f32>,
}

/// A fact about the asker's account, already phrased as a sentence and read
/// through the field policy. `topics` are words that make it relevant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fact {
    pub key: String,
    pub text: String,
    pub topics: Vec<String>,
}

/// Everything a composer may use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Grounding {
    pub question: String,
    pub sources: Vec<Source>,
    pub facts: Vec<Fact>,
}

/// What a sentence rests on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Citation {
    Source { n: usize, id: Uuid },
    Fact { key: String },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sentence {
    pub text: String,
    pub citations: Vec<Citation>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Answer {
    /// The answer as one text, with `[n]` markers for passages.
    pub text: String,
    pub sentences: Vec<Sentence>,
    /// `extractive` or `chat_completions`.
    pub composer: String,
    /// Why the answer came from another composer than asked, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Answer {
    /// Passages cited anywhere in the answer, in first-cited order.
    pub fn cited_sources(&self) -> Vec<usize> {
        let mut out = Vec::new();
        for s in &self.sentences {
            for c in &s.citations {
                if let Citation::Source { n, .. } = c
                    && !out.contains(n)
                {
                    out.push(*n);
                }
            }
        }
        out
    }

    pub fn cited_facts(&self) -> Vec<&str> {
        let mut out = Vec::new();
        for s in &self.sentences {
            for c in &s.citations {
                if let Citation::Fact { key } = c
                    && !out.contains(&key.as_str())
                {
                    out.push(key.as_str());
                }
            }
        }
        out
    }

    /// Rebuilds `text` from the sentences.
    fn render(sentences: Vec<Sentence>, composer: &str, note: Option<String>) -> Answer {
        let text = sentences
            .iter()
            .map(|s| {
                let marks: String = s
                    .citations
                    .iter()
                    .filter_map(|c| match c {
                        Citation::Source { n, .. } => Some(format!(" [{n}]")),
                        Citation::Fact { .. } => None,
                    })
                    .collect();
                format!("{}{marks}", s.text)
            })
            .collect::<Vec<_>>()
            .join(" ");
        Answer {
            text,
            sentences,
            composer: composer.into(),
            note,
        }
    }
}

/// How sure we are that an answer answers: the best similarity among the
/// passages it cites (or 0.6 when it rests on account facts), scaled by how
/// many of the question's words the answer covers (in its sentences, the
/// topics of the facts it quotes, the titles of the passages it cites). A
/// fact that merely shares one word with an unrelated question scores low.
/// 0 for an empty answer.
pub fn confidence(g: &Grounding, a: &Answer) -> f32 {
    let cited: Vec<&Source> = a
        .cited_sources()
        .iter()
        .filter_map(|n| g.sources.iter().find(|s| s.n == *n))
        .collect();
    let from_sources = cited
        .iter()
        .map(|s| s.similarity.unwrap_or(0.5))
        .fold(0.0f32, f32::max);
    let facts = a.cited_facts();
    let from_facts = if facts.is_empty() { 0.0 } else { 0.6 };
    let base = from_sources.max(from_facts);
    let asked: std::collections::HashSet<String> =
        crate::text::terms(&g.question).into_iter().collect();
    if asked.is_empty() || base == 0.0 {
        return base.clamp(0.0, 1.0);
    }
    let mut said: std::collections::HashSet<String> = std::collections::HashSet::new();
    for s in &a.sentences {
        said.extend(crate::text::terms(&s.text));
    }
    for f in g.facts.iter().filter(|f| facts.contains(&f.key.as_str())) {
        for t in &f.topics {
            said.extend(crate::text::terms(t));
        }
    }
    for s in &cited {
        said.extend(crate::text::terms(&s.title));
    }
    let covered = asked.iter().filter(|t| said.contains(*t)).count() as f32 / asked.len() as f32;
    (base * (0.5 + 0.5 * covered)).clamp(0.0, 1.0)
}

/// A way of writing an answer.
pub trait Composer: Send + Sync {
    fn name(&self) -> &'static str;
    /// Always answers: a composer that cannot reach its model falls back to
    /// the extractive answer and says so in `note`.
    fn compose<'a>(&'a self, g: &'a Grounding)
    -> Pin<Box<dyn Future<Output = Answer> + Send + 'a>>;
}
