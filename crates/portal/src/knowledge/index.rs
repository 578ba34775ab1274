//! The search library kept in step with the change log, and search shaped
//! by the field policy.
//!
//! The library is loaded from the knowledge tables on first use, then every
//! search first applies the change-log rows committed since (articles,
//! release notes, community posts): a search always sees the writes that
//! committed before it (read-your-writes), with no hook in the write path.
//!
//! Permissions: the viewer's [`knowledge_scope`] becomes the index filter, so
//! ranking happens among admitted documents only; then each hit is read from
//! the store and shaped with `redact` — the policy has the last word on every
//! row that leaves.

use std::sync::Arc;

use portico_knowledge::{Doc, Filter, Hit, Library, Mode};
use portico_model::policy::knowledge_scope;
use portico_model::*;
use rusqlite::Connection;
use serde::Serialize;
use serde_json::{Map, Value};

use super::Knowledge;
use crate::error::{PortalError, Result};
use crate::store::{self, Store};

pub(crate) struct Loaded {
    pub library: Arc<Library>,
    /// The change-log seq the library reflects.
    cursor: i64,
}

/// Kinds the library holds.
const KINDS: [Kind; 3] = [Kind::Article, Kind::ReleaseNote, Kind::CommunityPost];

fn index_error(e: portico_knowledge::KnowledgeError) -> PortalError {
    match e {
        portico_knowledge::KnowledgeError::EmptyQuery => {
            Invalid::new("q", "give at least one word to search for").into()
        }
        other => PortalError::Knowledge(other),
    }
}

pub fn article_doc(a: &Article) -> Doc {
    Doc {
        id: a.id.0,
        kind: Kind::Article.as_str().into(),
        title: a.title.clone(),
        summary: a.summary.clone(),
        body: a.body.clone(),
        product_area: a.product_area.clone(),
        plans: a.plans.clone(),
        versions: a.versions.clone(),
        locale: a.locale.clone(),
        audience: a.audience.as_str().into(),
        state: a.state.as_str().into(),
    }
}

/// Release notes use the article vocabulary: published is `approved`,
/// unpublished `draft`, audience `customers`; so one scope filters both.
fn note_doc(n: &ReleaseNote) -> Doc {
    Doc {
        id: n.id.0,
        kind: Kind::ReleaseNote.as_str().into(),
        title: n.title.clone(),
        summary: String::new(),
        body: n.body.clone(),
        product_area: n.product_area.clone(),
        plans: n.plans.clone(),
        versions: vec![n.version_tag.clone()],
        locale: "en".into(),
        audience: Audience::Customers.as_str().into(),
        state: if n.published {
            ArticleState::Approved
        } else {
            ArticleState::Draft
        }
        .as_str()
        .into(),
    }
}

/// Community posts are public to every signed-in person.
fn post_doc(p: &CommunityPost) -> Doc {
    Doc {
        id: p.id.0,
        kind: Kind::CommunityPost.as_str().into(),
        title: p.title.clone(),
        summary: String::new(),
        body: p.body.clone(),
        product_area: p.product_area.clone(),
        plans: vec![],
        versions: vec![],
        locale: "en".into(),
        audience: Audience::Public.as_str().into(),
        state: ArticleState::Approved.as_str().into(),
    }
}

fn doc_of(kind: Kind, row: &str) -> Result<Option<Doc>> {
    Ok(match kind {
        Kind::Article => Some(article_doc(&store::parse(row)?)),
        Kind::ReleaseNote => Some(note_doc(&store::parse(row)?)),
        Kind::CommunityPost => Some(post_doc(&store::parse(row)?)),
        _ => None,
    })
}

fn max_seq(c: &Connection) -> Result<i64> {
    Ok(
        c.query_row("SELECT coalesce(max(seq), 0) FROM change_log", [], |r| {
            r.get(0)
        })?,
    )
}

impl Knowledge {
    /// The library, loaded or brought up to date with the change log.
    /// Blocking: embeds new documents (milliseconds each).
    pub fn ready(&self, store: &Store) -> Result<Arc<Library>> {
        let mut slot = self.library_slot();
        match slot.as_mut() {
            None => {
                let library = Library::new(self.embeddings).map_err(index_error)?;
                let (docs, cursor) = store.read(|c| {
                    let cursor = max_seq(c)?;
                    let mut docs = Vec::new();
                    for kind in KINDS {
                        let sql = format!("SELECT data FROM {}", kind.table());
                        let mut stmt = c.prepare(&sql)?;
                        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
                        for row in rows {
                            docs.extend(doc_of(kind, &row?)?);
                        }
                    }
                    Ok((docs, cursor))
                })?;
                tracing::info!(documents = docs.len(), "loading the knowledge library");
                library.upsert(&docs).map_err(index_error)?;
                let library = Arc::new(library);
                *slot = Some(Loaded {
                    library: library.clone(),
                    cursor,
                });
                Ok(library)
            }
            Some(loaded) => {
                let after = loaded.cursor;
                let (changes, upto) = store.read(|c| {
                    let upto = max_seq(c)?;
                    let mut stmt = c.prepare_cached(
                        "SELECT kind, entity_id, op, row FROM change_log
                         WHERE seq > ?1 AND seq <= ?2 AND kind IN ('article', 'release_note', 'community_post')
                         ORDER BY seq",
                    )?;
                    let rows = stmt.query_map([after, upto], |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, Option<String>>(3)?,
                        ))
                    })?;
                    let mut out = Vec::new();
                    for r in rows {
                        out.push(r?);
                    }
                    Ok((out, upto))
                })?;
                let mut upserts = Vec::new();
                let mut removals = Vec::new();
                for (kind, id, op, row) in changes {
                    let Some(kind) = Kind::parse(&kind) else {
                        continue;
                    };
                    match (op.as_str(), row) {
                        ("upsert", Some(row)) => {
                            if let Some(d) = doc_of(kind, &row)? {
                                upserts.retain(|u: &Doc| u.id != d.id);
                                upserts.push(d);
                            }
                        }
                        _ => {
                            if let Ok(id) = id.parse::<uuid::Uuid>() {
                                upserts.retain(|u: &Doc| u.id != id);
                                removals.push(id);
                            }
                        }
                    }
                }
                loaded.library.remove(&removals).map_err(index_error)?;
                loaded.library.upsert(&upserts).map_err(index_error)?;
                loaded.cursor = upto;
                Ok(loaded.library.clone())
            }
        }
    }
}

/// What a viewer asks the search for.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchParams {
    pub q: String,
    /// `article`, `release_note`, `community_post` (comma-separated).
    pub kind: Option<String>,
    pub product_area: Option<String>,
    pub plan: Option<String>,
    pub version: Option<String>,
    pub locale: Option<String>,
    /// Staff only: `public`, `customers`, `internal`.
    pub audience: Option<Audience>,
    /// Staff only: `draft`, `in_review`, `approved`, `archived`.
    pub state: Option<ArticleState>,
    #[serde(default)]
    pub mode: Mode,
    pub limit: Option<usize>,
}

/// One result as the viewer may see it.
#[derive(Debug, Clone, Serialize)]
pub struct SearchHit {
    pub kind: Kind,
    pub id: uuid::Uuid,
    pub score: f32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lexical_rank: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub similarity: Option<f32>,
    /// The record, redacted for the viewer.
    pub record: Map<String, Value>,
}

pub const MAX_QUERY_CHARS: usize = 500;

/// The index filter for `viewer` with the facets they asked for. A customer
/// cannot widen their scope: asking for another plan's, an internal or an
/// unapproved audience is refused, not silently ignored.
pub fn filter_for(viewer: &Viewer, p: &SearchParams) -> Result<Filter> {
    let scope = knowledge_scope(viewer);
    let mut f = Filter {
        kinds: p
            .kind
            .as_ref()
            .map(|k| k.split(',').map(|s| s.trim().to_owned()).collect()),
        product_area: p.product_area.clone(),
        version: p.version.clone(),
        locales: p.locale.clone().map(|l| vec![l]),
        plan: p.plan.clone(),
        ..Filter::default()
    };
    if let Some(kinds) = &f.kinds
        && let Some(bad) = kinds
            .iter()
            .find(|k| !KINDS.iter().any(|kind| kind.as_str() == k.as_str()))
    {
        return Err(Invalid::new(
            "kind",
            format!("{bad} is not searchable; use article, release_note or community_post"),
        )
        .into());
    }
    f.states = match (&scope.states, p.state) {
        (None, s) => s.map(|s| vec![s.as_str().to_owned()]),
        (Some(allowed), Some(s)) if !allowed.contains(&s) => {
            return Err(Invalid::new("state", "customers search approved knowledge only").into());
        }
        (Some(allowed), _) => Some(allowed.iter().map(|s| s.as_str().to_owned()).collect()),
    };
    f.audiences = match (&scope.audiences, p.audience) {
        (None, a) => a.map(|a| vec![a.as_str().to_owned()]),
        (Some(allowed), Some(a)) if !allowed.contains(&a) => {
            return Err(Invalid::new("audience", "this audience is for staff").into());
        }
        (Some(allowed), Some(a)) if allowed.contains(&a) => Some(vec![a.as_str().to_owned()]),
        (Some(allowed), _) => Some(allowed.iter().map(|a| a.as_str().to_owned()).collect()),
    };
    if let Some(own) = &scope.plan {
        let own = own.clone().unwrap_or_default();
        if p.plan.as_ref().is_some_and(|asked| *asked != own) {
            return Err(
                Invalid::new("plan", "customers search the knowledge of their own plan").into(),
            );
        }
        f.plan = Some(own);
    }
    Ok(f)
}

/// Reads a hit's record and shapes it for the viewer; `None` when the
/// policy hides it (or it was deleted since the index saw it).
pub fn shaped(
    c: &Connection,
    viewer: &Viewer,
    kind: Kind,
    id: uuid::Uuid,
) -> Result<Option<Map<String, Value>>> {
    Ok(match kind {
        Kind::Article => store::get::<Article>(c, id)?.and_then(|r| redact(viewer, &r)),
        Kind::ReleaseNote => store::get::<ReleaseNote>(c, id)?.and_then(|r| redact(viewer, &r)),
        Kind::CommunityPost => store::get::<CommunityPost>(c, id)?.and_then(|r| redact(viewer, &r)),
        _ => None,
    })
}

/// Search for `viewer`. Blocking.
pub fn search(
    store: &Store,
    k: &Knowledge,
    viewer: &Viewer,
    p: &SearchParams,
) -> Result<Vec<SearchHit>> {
    if p.q.chars().count() > MAX_QUERY_CHARS {
        return Err(Invalid::new("q", format!("at most {MAX_QUERY_CHARS} characters")).into());
    }
    if p.q.trim().is_empty() {
        return Err(Invalid::new("q", "give at least one word to search for").into());
    }
    let limit = match p.limit {
        None => 10,
        Some(n) if (1..=50).contains(&n) => n,
        Some(_) => return Err(Invalid::new("limit", "must be between 1 and 50").into()),
    };
    let mut filter = filter_for(viewer, p)?;
    // No locale asked for: the reader's language, falling back to English.
    let reader = match &p.locale {
        Some(_) => None,
        None => store.read(|c| reader_locale(c, viewer))?,
    };
    if let Some(l) = &reader {
        filter.locales = Some(vec![l.clone(), FALLBACK_LOCALE.into()]);
    }
    let library = k.ready(store)?;
    // Room for English articles dropped below for their translation.
    let fetch = if reader.is_some() { limit * 2 } else { limit };
    let hits = library
        .search(&p.q, &filter, p.mode, fetch)
        .map_err(index_error)?;
    store.read(|c| {
        let mut out = shape_hits(c, viewer, hits)?;
        if let Some(l) = &reader {
            prefer_locale(&mut out, l);
        }
        out.truncate(limit);
        Ok(out)
    })
}

/// The language knowledge falls back to.
pub const FALLBACK_LOCALE: &str = "en";

/// The viewer's reading language when it is not the fallback one.
pub fn reader_locale(c: &Connection, viewer: &Viewer) -> Result<Option<String>> {
    let user: Option<User> = store::get(c, viewer.user_id.0)?;
    Ok(user
        .and_then(|u| u.locale)
        .map(|l| language_of(&l))
        .filter(|l| l != FALLBACK_LOCALE))
}

/// `fr` of `fr-CA`: articles are written per language.
fn language_of(locale: &str) -> String {
    locale
        .split('-')
        .next()
        .unwrap_or(locale)
        .to_ascii_lowercase()
}

/// Drops a fallback-language article when its translation in the reader's
/// language is among the hits (an original and its translations share the
/// original's id: `translation_of`, else their own).
fn prefer_locale(hits: &mut Vec<SearchHit>, locale: &str) {
    let slug = |h: &SearchHit| {
        (h.kind == Kind::Article).then(|| {
            h.record
                .get("translation_of")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .unwrap_or_else(|| h.id.to_string())
        })
    };
    let translated: std::collections::HashSet<String> = hits
        .iter()
        .filter(|h| h.record.get("locale").and_then(Value::as_str) == Some(locale))
        .filter_map(slug)
        .collect();
    hits.retain(|h| {
        h.record.get("locale").and_then(Value::as_str) == Some(locale)
            || !slug(h).is_some_and(|s| translated.contains(&s))
    });
}

fn shape_hits(c: &Connection, viewer: &Viewer, hits: Vec<Hit>) -> Result<Vec<SearchHit>> {
    let mut out = Vec::with_capacity(hits.len());
    for h in hits {
        let Some(kind) = Kind::parse(&h.kind) else {
            continue;
        };
        if let Some(record) = shaped(c, viewer, kind, h.id)? {
            out.push(SearchHit {
                kind,
                id: h.id,
                score: h.score,
                lexical_rank: h.lexical_rank,
                similarity: h.similarity,
                record,
            });
        }
    }
    Ok(out)
}
