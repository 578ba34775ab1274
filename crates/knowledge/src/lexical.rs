//! The full-text side: a tantivy index in memory.
//!
//! Text is analysed by [`crate::text::analyzer`] (lower case, ASCII folding,
//! stop words out, English stemming), so "seats", "Seat" and "seating" meet.
//! Each query word matches exactly (BM25); a word the index has never seen
//! (a typo, most likely) of five letters or more also matches within an
//! edit distance (one, or two from nine letters) at a lower weight: typo
//! tolerance without letting short or correctly spelled words fan out. Quoted text is a
//! phrase. Facets are raw `STRING` fields; filters are constant-score clauses
//! so they select without changing the ranking.

use std::sync::Mutex;

use tantivy::collector::{DocSetCollector, TopDocs};
use tantivy::query::{
    AllQuery, BooleanQuery, BoostQuery, ConstScoreQuery, FuzzyTermQuery, Occur, PhraseQuery, Query,
    TermQuery,
};
use tantivy::schema::{
    Field, INDEXED, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing, TextOptions,
    Value,
};
use tantivy::{DocAddress, Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term};
use uuid::Uuid;

use crate::{ANY, Doc, Filter, KnowledgeError, Result, text};

const TITLE_BOOST: f32 = 2.5;
const SUMMARY_BOOST: f32 = 1.5;
const FUZZY_WEIGHT: f32 = 0.4;
const PHRASE_BOOST: f32 = 2.0;

#[derive(Clone, Copy)]
struct Fields {
    slot: Field,
    id: Field,
    kind: Field,
    title: Field,
    summary: Field,
    body: Field,
    product_area: Field,
    plan: Field,
    version: Field,
    locale: Field,
    audience: Field,
    state: Field,
}

pub(crate) struct Lexical {
    fields: Fields,
    writer: Mutex<IndexWriter>,
    reader: IndexReader,
}

pub(crate) struct LexicalHit {
    pub slot: u32,
    pub id: Uuid,
    pub kind: String,
    pub score: f32,
}

/// The writes of one commit.
pub(crate) struct Batch<'a> {
    writer: &'a IndexWriter,
    fields: Fields,
}

impl Batch<'_> {
    pub fn replace(&mut self, slot: u32, d: &Doc) -> Result<()> {
        let f = self.fields;
        self.delete(slot);
        let mut doc = TantivyDocument::default();
        doc.add_u64(f.slot, slot as u64);
        doc.add_text(f.id, d.id.to_string());
        doc.add_text(f.kind, &d.kind);
        doc.add_text(f.title, &d.title);
        doc.add_text(f.summary, &d.summary);
        doc.add_text(f.body, &d.body);
        doc.add_text(f.product_area, &d.product_area);
        for p in any_if_empty(&d.plans) {
            doc.add_text(f.plan, p);
        }
        for v in any_if_empty(&d.versions) {
            doc.add_text(f.version, v);
        }
        doc.add_text(f.locale, &d.locale);
        doc.add_text(f.audience, &d.audience);
        doc.add_text(f.state, &d.state);
        self.writer.add_document(doc)?;
        Ok(())
    }

    pub fn delete(&mut self, slot: u32) {
        self.writer
            .delete_term(Term::from_field_u64(self.fields.slot, slot as u64));
    }
}

fn any_if_empty(values: &[String]) -> Vec<&str> {
    if values.is_empty() {
        vec![ANY]
    } else {
        values.iter().map(String::as_str).collect()
    }
}

impl Lexical {
    pub fn new() -> Result<Lexical> {
        let mut b = Schema::builder();
        let text_opts = TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(text::ANALYZER)
                .set_index_option(IndexRecordOption::WithFreqsAndPositions),
        );
        let fields = Fields {
            slot: b.add_u64_field("slot", INDEXED | STORED | tantivy::schema::FAST),
            id: b.add_text_field("id", STRING | STORED),
            kind: b.add_text_field("kind", STRING | STORED),
            title: b.add_text_field("title", text_opts.clone()),
            summary: b.add_text_field("summary", text_opts.clone()),
            body: b.add_text_field("body", text_opts),
            product_area: b.add_text_field("product_area", STRING),
            plan: b.add_text_field("plan", STRING),
            version: b.add_text_field("version", STRING),
            locale: b.add_text_field("locale", STRING),
            audience: b.add_text_field("audience", STRING),
            state: b.add_text_field("state", STRING),
        };
        let index = Index::create_in_ram(b.build());
        index
            .tokenizers()
            .register(text::ANALYZER, text::analyzer());
        // One indexing thread: the server shares its cores with requests.
        let writer = index.writer_with_num_threads(1, 30_000_000)?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        Ok(Lexical {
            fields,
            writer: Mutex::new(writer),
            reader,
        })
    }

    /// Runs `f` on the writer, commits, and makes the result searchable
    /// before returning (documents are visible only after commit + reload).
    pub fn write(&self, f: impl FnOnce(&mut Batch<'_>) -> Result<()>) -> Result<()> {
        let mut writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let mut batch = Batch {
            writer: &writer,
            fields: self.fields,
        };
        if let Err(e) = f(&mut batch) {
            writer.rollback()?;
            return Err(e);
        }
        writer.commit()?;
        self.reader.reload()?;
        Ok(())
    }

    fn filter_clauses(&self, filter: &Filter) -> Vec<(Occur, Box<dyn Query>)> {
        let f = self.fields;
        let one_of = |field: Field, values: Vec<String>| -> (Occur, Box<dyn Query>) {
            let terms: Vec<(Occur, Box<dyn Query>)> = values
                .iter()
                .map(|v| {
                    let q: Box<dyn Query> = Box::new(TermQuery::new(
                        Term::from_field_text(field, v),
                        IndexRecordOption::Basic,
                    ));
                    (Occur::Should, q)
                })
                .collect();
            (
                Occur::Must,
                Box::new(ConstScoreQuery::new(
                    Box::new(BooleanQuery::new(terms)),
                    0.0,
                )),
            )
        };
        let mut out = Vec::new();
        if let Some(k) = &filter.kinds {
            out.push(one_of(f.kind, k.clone()));
        }
        if let Some(s) = &filter.states {
            out.push(one_of(f.state, s.clone()));
        }
        if let Some(a) = &filter.audiences {
            out.push(one_of(f.audience, a.clone()));
        }
        if let Some(p) = &filter.plan {
            out.push(one_of(f.plan, vec![p.clone(), ANY.into()]));
        }
        if let Some(v) = &filter.version {
            out.push(one_of(f.version, vec![v.clone(), ANY.into()]));
        }
        if let Some(a) = &filter.product_area {
            out.push(one_of(f.product_area, vec![a.clone()]));
        }
        if let Some(l) = &filter.locales {
            out.push(one_of(f.locale, l.clone()));
        }
        out
    }

    fn text_query(&self, query: &str, searcher: &tantivy::Searcher) -> Result<Box<dyn Query>> {
        let f = self.fields;
        let (phrases, words) = text::split_phrases(query);
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        // Every phrase must appear (in the title, summary or body).
        for phrase in phrases {
            let terms = text::terms(&phrase);
            if terms.is_empty() {
                continue;
            }
            let mut either: Vec<(Occur, Box<dyn Query>)> = Vec::new();
            for (field, boost) in [
                (f.title, TITLE_BOOST),
                (f.summary, SUMMARY_BOOST),
                (f.body, 1.0),
            ] {
                let q: Box<dyn Query> = if terms.len() == 1 {
                    Box::new(TermQuery::new(
                        Term::from_field_text(field, &terms[0]),
                        IndexRecordOption::WithFreqs,
                    ))
                } else {
                    Box::new(PhraseQuery::new(
                        terms
                            .iter()
                            .map(|t| Term::from_field_text(field, t))
                            .collect(),
                    ))
                };
                either.push((
                    Occur::Should,
                    Box::new(BoostQuery::new(q, boost * PHRASE_BOOST)),
                ));
            }
            clauses.push((Occur::Must, Box::new(BooleanQuery::new(either))));
        }
        // Loose words: any may match; more matches rank higher.
        let mut any: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for term in text::terms(&words) {
            // A word the index knows was most likely typed as meant: fuzzy
            // expansion (a walk of the term dictionary per field, the bulk
            // of a query's cost) is only for words it has never seen.
            let mut known = false;
            for field in [f.title, f.summary, f.body] {
                known |= searcher.doc_freq(&Term::from_field_text(field, &term))? > 0;
            }
            for (field, boost) in [
                (f.title, TITLE_BOOST),
                (f.summary, SUMMARY_BOOST),
                (f.body, 1.0),
            ] {
                let t = Term::from_field_text(field, &term);
                let exact: Box<dyn Query> =
                    Box::new(TermQuery::new(t.clone(), IndexRecordOption::WithFreqs));
                any.push((Occur::Should, Box::new(BoostQuery::new(exact, boost))));
                let distance = match term.chars().count() {
                    _ if known => 0,
                    0..=4 => 0,
                    5..=8 => 1,
                    _ => 2,
                };
                if distance > 0 {
                    let fuzzy: Box<dyn Query> = Box::new(FuzzyTermQuery::new(t, distance, true));
                    any.push((
                        Occur::Should,
                        Box::new(BoostQuery::new(fuzzy, boost * FUZZY_WEIGHT)),
                    ));
                }
            }
        }
        if !any.is_empty() {
            clauses.push((Occur::Must, Box::new(BooleanQuery::new(any))));
        }
        if clauses.is_empty() {
            return Err(KnowledgeError::EmptyQuery);
        }
        Ok(Box::new(BooleanQuery::new(clauses)))
    }

    pub fn search(&self, query: &str, filter: &Filter, limit: usize) -> Result<Vec<LexicalHit>> {
        let searcher = self.reader.searcher();
        let mut clauses = vec![(Occur::Must, self.text_query(query, &searcher)?)];
        clauses.extend(self.filter_clauses(filter));
        let q = BooleanQuery::new(clauses);
        let top = searcher.search(&q, &TopDocs::with_limit(limit).order_by_score())?;
        let mut out = Vec::with_capacity(top.len());
        for (score, addr) in top {
            let doc: TantivyDocument = searcher.doc(addr)?;
            let slot = doc
                .get_first(self.fields.slot)
                .and_then(|v| v.as_u64())
                .unwrap_or_default() as u32;
            let id = doc
                .get_first(self.fields.id)
                .and_then(|v| v.as_str())
                .and_then(|s| s.parse().ok())
                .unwrap_or_default();
            let kind = doc
                .get_first(self.fields.kind)
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_owned();
            out.push(LexicalHit {
                slot,
                id,
                kind,
                score,
            });
        }
        Ok(out)
    }

    /// Slots of every document the filter admits, for the semantic side.
    pub fn admitted_slots(&self, filter: &Filter) -> Result<Vec<u32>> {
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![(Occur::Must, Box::new(AllQuery))];
        clauses.extend(self.filter_clauses(filter));
        let searcher = self.reader.searcher();
        let docs = searcher.search(&BooleanQuery::new(clauses), &DocSetCollector)?;
        let mut by_segment: Vec<Vec<u32>> = vec![Vec::new(); searcher.segment_readers().len()];
        for DocAddress {
            segment_ord,
            doc_id,
        } in docs
        {
            by_segment[segment_ord as usize].push(doc_id);
        }
        let mut out = Vec::new();
        for (ord, ids) in by_segment.into_iter().enumerate() {
            if ids.is_empty() {
                continue;
            }
            let col = searcher
                .segment_reader(ord as u32)
                .fast_fields()
                .u64("slot")?;
            out.extend(
                ids.into_iter()
                    .filter_map(|d| col.first(d))
                    .map(|s| s as u32),
            );
        }
        Ok(out)
    }

    /// The kind of the document at `slot`.
    pub fn kind_of(&self, slot: u32) -> Result<Option<String>> {
        let searcher = self.reader.searcher();
        let q = TermQuery::new(
            Term::from_field_u64(self.fields.slot, slot as u64),
            IndexRecordOption::Basic,
        );
        let Some((_, addr)) = searcher
            .search(&q, &TopDocs::with_limit(1).order_by_score())?
            .into_iter()
            .next()
        else {
            return Ok(None);
        };
        let doc: TantivyDocument = searcher.doc(addr)?;
        Ok(doc
            .get_first(self.fields.kind)
            .and_then(|v| v.as_str())
            .map(str::to_owned))
    }
}
