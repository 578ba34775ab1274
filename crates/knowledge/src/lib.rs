//! Knowledge retrieval and grounded answering for Portico.
//!
//! - [`Library`]: the searchable knowledge (articles, release notes,
//!   community answers). Full text in tantivy (stemming, typo tolerance,
//!   phrases, facet filters) plus sentence embeddings from the offline
//!   `pocket-encoder` model, fused into one ranking ([`Mode::Hybrid`]).
//! - [`compose`]: turning retrieved passages and account facts into an
//!   answer with citations, with a deterministic extractive composer and an
//!   OpenAI-compatible chat-completions client behind one trait.
//!
//! This crate knows nothing of viewers or records: the caller (portal-core)
//! turns the field policy into a [`Filter`] before retrieval and re-checks
//! every hit against the policy afterwards, so what may be seen is decided in
//! one place (`portico_model::policy`).

pub mod compose;
mod lexical;
mod semantic;
pub mod text;

use std::collections::HashMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use semantic::Similarity;

/// Errors of the library. `code()` is stable.
#[derive(Debug, thiserror::Error)]
pub enum KnowledgeError {
    #[error("search index failed: {0}")]
    Index(#[from] tantivy::TantivyError),
    #[error("embedding model failed: {0}")]
    Embedding(String),
    #[error("the search query is empty or has no searchable words")]
    EmptyQuery,
}

impl KnowledgeError {
    pub fn code(&self) -> &'static str {
        match self {
            KnowledgeError::Index(_) => "search_index_failed",
            KnowledgeError::Embedding(_) => "embedding_failed",
            KnowledgeError::EmptyQuery => "empty_query",
        }
    }
}

pub type Result<T, E = KnowledgeError> = std::result::Result<T, E>;

/// The token that stands for "every plan" / "every version" in a facet.
pub const ANY: &str = "*";

/// One searchable document with the facets filters use. Empty `plans` or
/// `versions` mean "applies to every plan / version".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Doc {
    pub id: Uuid,
    /// `article`, `release_note`, `community_post`.
    pub kind: String,
    pub title: String,
    pub summary: String,
    pub body: String,
    pub product_area: String,
    pub plans: Vec<String>,
    pub versions: Vec<String>,
    pub locale: String,
    /// `public`, `customers`, `internal`.
    pub audience: String,
    /// Editorial state (`draft`, `in_review`, `approved`, `archived`;
    /// `published` for release notes and community posts).
    pub state: String,
}

/// Facet filters, applied inside the index before ranking. `None` means "no
/// restriction"; a list means "one of these".
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Filter {
    pub kinds: Option<Vec<String>>,
    pub states: Option<Vec<String>>,
    pub audiences: Option<Vec<String>>,
    /// Documents for this plan or for every plan.
    pub plan: Option<String>,
    /// Documents for this version or for every version.
    pub version: Option<String>,
    pub product_area: Option<String>,
    /// Documents in one of these locales.
    pub locales: Option<Vec<String>>,
}

/// How to rank.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// BM25 over stemmed words, with fuzzy matches for typos.
    Lexical,
    /// Cosine similarity of sentence embeddings only.
    Semantic,
    /// Both, fused by reciprocal rank.
    #[default]
    Hybrid,
}

/// One result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hit {
    pub id: Uuid,
    pub kind: String,
    /// Fused score (higher is better); comparable within one result list.
    pub score: f32,
    /// 1-based rank in the lexical list, if the document was there.
    pub lexical_rank: Option<u32>,
    /// Cosine similarity of the question and the document (when embeddings
    /// are on): an absolute signal answers use for confidence.
    pub similarity: Option<f32>,
}

/// Ranks deeper than this in either list do not take part in fusion.
const FUSION_DEPTH: usize = 50;
/// Reciprocal rank fusion constant (Cormack et al.; 60 is the usual choice).
const RRF_K: f32 = 60.0;
/// Below this cosine a document is not semantically related enough to be
/// added by the semantic side alone.
const SEMANTIC_FLOOR: f32 = 0.25;

/// The searchable knowledge: a tantivy index and, optionally, embeddings.
pub struct Library {
    lexical: lexical::Lexical,
    semantic: Option<semantic::Vectors>,
    slots: Mutex<Slots>,
}

/// Stable small integers for documents: the index stores the slot as a fast
/// field and the vectors live at that position.
#[derive(Default)]
struct Slots {
    by_id: HashMap<Uuid, u32>,
    free: Vec<u32>,
    next: u32,
}

impl Slots {
    fn slot_for(&mut self, id: Uuid) -> u32 {
        if let Some(s) = self.by_id.get(&id) {
            return *s;
        }
        let s = self.free.pop().unwrap_or_else(|| {
            self.next += 1;
            self.next - 1
        });
        self.by_id.insert(id, s);
        s
    }
}

/// Whether to compute sentence embeddings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Embeddings {
    On,
    /// Lexical only (benchmarks of the full-text side, tools).
    Off,
}

impl Library {
    /// An empty library in memory. With embeddings on, the bundled model is
    /// loaded once per process (about 80 ms).
    pub fn new(embeddings: Embeddings) -> Result<Library> {
        Ok(Library {
            lexical: lexical::Lexical::new()?,
            semantic: match embeddings {
                Embeddings::On => Some(semantic::Vectors::new()?),
                Embeddings::Off => None,
            },
            slots: Mutex::default(),
        })
    }

    pub fn has_embeddings(&self) -> bool {
        self.semantic.is_some()
    }

    /// Adds or replaces documents, then makes them searchable (one commit).
    pub fn upsert(&self, docs: &[Doc]) -> Result<()> {
        if docs.is_empty() {
            return Ok(());
        }
        // Embedding is the slow part (milliseconds per document): done before
        // any lock is taken.
        let vectors = match &self.semantic {
            Some(s) => Some(s.embed_docs(docs)?),
            None => None,
        };
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        let placed: Vec<u32> = docs.iter().map(|d| slots.slot_for(d.id)).collect();
        self.lexical.write(|w| {
            for (doc, slot) in docs.iter().zip(&placed) {
                w.replace(*slot, doc)?;
            }
            Ok(())
        })?;
        if let (Some(s), Some(v)) = (&self.semantic, vectors) {
            for (slot, vector) in placed.iter().zip(v) {
                s.put(*slot, vector);
            }
        }
        Ok(())
    }

    /// Removes documents (unknown ids are ignored).
    pub fn remove(&self, ids: &[Uuid]) -> Result<()> {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        let gone: Vec<u32> = ids.iter().filter_map(|id| slots.by_id.remove(id)).collect();
        if gone.is_empty() {
            return Ok(());
        }
        self.lexical.write(|w| {
            for s in &gone {
                w.delete(*s);
            }
            Ok(())
        })?;
        for s in gone {
            if let Some(v) = &self.semantic {
                v.clear(s);
            }
            slots.free.push(s);
        }
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.slots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .by_id
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The best `limit` documents for `query` among those the filter admits.
    /// `Semantic`/`Hybrid` fall back to lexical ranking when embeddings are off.
    pub fn search(
        &self,
        query: &str,
        filter: &Filter,
        mode: Mode,
        limit: usize,
    ) -> Result<Vec<Hit>> {
        let limit = limit.clamp(1, 200);
        let semantic = self.semantic.as_ref().filter(|_| mode != Mode::Lexical);
        let lexical = if mode == Mode::Semantic && semantic.is_some() {
            Vec::new()
        } else {
            match self.lexical.search(query, filter, FUSION_DEPTH.max(limit)) {
                Ok(hits) => hits,
                // A question of only stop words still has a meaning for the
                // embedding model.
                Err(KnowledgeError::EmptyQuery) if semantic.is_some() => Vec::new(),
                Err(e) => return Err(e),
            }
        };
        let Some(vectors) = semantic else {
            return Ok(lexical
                .into_iter()
                .take(limit)
                .enumerate()
                .map(|(i, h)| Hit {
                    id: h.id,
                    kind: h.kind,
                    score: h.score,
                    lexical_rank: Some(i as u32 + 1),
                    similarity: None,
                })
                .collect());
        };
        let q = vectors.embed_query(query)?;
        let admitted = self.lexical.admitted_slots(filter)?;
        let ranked = vectors.rank(&q, &admitted);
        let similarity: HashMap<u32, f32> = ranked.iter().map(|s| (s.slot, s.cosine)).collect();
        // A quoted phrase is a requirement: meaning may reorder the documents
        // containing it, not add others.
        let phrase_only = mode == Mode::Hybrid && !text::split_phrases(query).0.is_empty();
        let lexical_slots: std::collections::HashSet<u32> =
            lexical.iter().map(|h| h.slot).collect();
        let semantic_list: Vec<&Similarity> = ranked
            .iter()
            .filter(|s| s.cosine >= SEMANTIC_FLOOR)
            .filter(|s| !phrase_only || lexical_slots.contains(&s.slot))
            .take(FUSION_DEPTH.max(limit))
            .collect();
        let mut fused: HashMap<u32, (f32, Option<u32>)> = HashMap::new();
        if mode == Mode::Hybrid {
            for (i, h) in lexical.iter().enumerate() {
                let e = fused.entry(h.slot).or_insert((0.0, None));
                e.0 += 1.0 / (RRF_K + i as f32 + 1.0);
                e.1 = Some(i as u32 + 1);
            }
        }
        for (i, s) in semantic_list.iter().enumerate() {
            fused.entry(s.slot).or_insert((0.0, None)).0 += 1.0 / (RRF_K + i as f32 + 1.0);
        }
        let mut out: Vec<(u32, f32, Option<u32>)> = fused
            .into_iter()
            .map(|(slot, (s, r))| (slot, s, r))
            .collect();
        out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        out.truncate(limit);
        let slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        let id_of: HashMap<u32, Uuid> = slots.by_id.iter().map(|(id, s)| (*s, *id)).collect();
        drop(slots);
        let kinds: HashMap<u32, String> = lexical.into_iter().map(|h| (h.slot, h.kind)).collect();
        let mut hits = Vec::with_capacity(out.len());
        for (slot, score, lexical_rank) in out {
            let Some(id) = id_of.get(&slot) else { continue };
            let kind = match kinds.get(&slot) {
                Some(k) => k.clone(),
                None => self.lexical.kind_of(slot)?.unwrap_or_default(),
            };
            hits.push(Hit {
                id: *id,
                kind,
                score,
                lexical_rank,
                similarity: similarity.get(&slot).copied(),
            });
        }
        Ok(hits)
    }

    /// Cosine similarity between two texts with the bundled model; `None`
    /// when embeddings are off. Used to group questions into content gaps.
    pub fn similarity(&self, a: &str, b: &str) -> Result<Option<f32>> {
        let Some(v) = &self.semantic else {
            return Ok(None);
        };
        let (x, y) = (v.embed_query(a)?, v.embed_query(b)?);
        Ok(Some(semantic::cosine(&x, &y)))
    }
}
