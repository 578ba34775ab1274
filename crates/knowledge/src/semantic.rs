//! The semantic side: sentence embeddings from the bundled `pocket-encoder`
//! model (MiniLM-L3, 384 dimensions, weights inside the crate: nothing is
//! downloaded at build or run time) and exact cosine ranking.
//!
//! Exact search over the documents a filter admits: a help centre holds
//! thousands of articles, where a scan of 384-float vectors takes well under
//! the time of embedding the question (~7 ms); no approximate index needed.

use std::sync::RwLock;

use pocket_encoder::Encoder;

use crate::{Doc, KnowledgeError, Result};

/// Characters of the body embedded with the title and summary. The model
/// reads 128 word pieces at most; the opening of an article says what it is
/// about.
const BODY_PREFIX_CHARS: usize = 400;

pub(crate) struct Vectors {
    encoder: Encoder,
    rows: RwLock<Vec<Option<Vec<f32>>>>,
}

/// A document's similarity to a question.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Similarity {
    pub slot: u32,
    pub cosine: f32,
}

fn failed(e: pocket_encoder::Error) -> KnowledgeError {
    KnowledgeError::Embedding(e.to_string())
}

/// What is embedded for a document.
pub(crate) fn doc_text(d: &Doc) -> String {
    let mut body: String = d.body.chars().take(BODY_PREFIX_CHARS).collect();
    if body.trim().is_empty() {
        body = d.title.clone();
    }
    format!("{}. {} {}", d.title, d.summary, body)
}

impl Vectors {
    pub fn new() -> Result<Vectors> {
        Ok(Vectors {
            encoder: Encoder::new().map_err(failed)?,
            rows: RwLock::default(),
        })
    }

    pub fn embed_docs(&self, docs: &[Doc]) -> Result<Vec<Vec<f32>>> {
        let texts: Vec<String> = docs.iter().map(doc_text).collect();
        let mut out = Vec::with_capacity(texts.len());
        // The encoder takes at most 4096 inputs per call.
        for chunk in texts.chunks(1024) {
            out.extend(self.encoder.embed(chunk).map_err(failed)?);
        }
        Ok(out)
    }

    pub fn embed_query(&self, text: &str) -> Result<Vec<f32>> {
        if text.trim().is_empty() {
            return Err(KnowledgeError::EmptyQuery);
        }
        // Questions longer than the model's window are cut by it; cap the
        // bytes so a pasted log cannot exceed the encoder's input limit.
        let capped: String = text.chars().take(4_000).collect();
        let mut v = self.encoder.embed(&[capped]).map_err(failed)?;
        Ok(v.pop().unwrap_or_default())
    }

    pub fn put(&self, slot: u32, vector: Vec<f32>) {
        let mut rows = self.rows.write().unwrap_or_else(|p| p.into_inner());
        let i = slot as usize;
        if rows.len() <= i {
            rows.resize(i + 1, None);
        }
        rows[i] = Some(vector);
    }

    pub fn clear(&self, slot: u32) {
        let mut rows = self.rows.write().unwrap_or_else(|p| p.into_inner());
        if let Some(r) = rows.get_mut(slot as usize) {
            *r = None;
        }
    }

    /// Admitted slots by descending cosine similarity to `q`.
    pub fn rank(&self, q: &[f32], admitted: &[u32]) -> Vec<Similarity> {
        let rows = self.rows.read().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<Similarity> = admitted
            .iter()
            .filter_map(|s| {
                let v = rows.get(*s as usize)?.as_ref()?;
                Some(Similarity {
                    slot: *s,
                    cosine: cosine(q, v),
                })
            })
            .collect();
        out.sort_by(|a, b| b.cosine.total_cmp(&a.cosine).then(a.slot.cmp(&b.slot)));
        out
    }
}

/// Both vectors are unit length (the encoder normalises), so the dot
/// product is the cosine.
pub(crate) fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}
