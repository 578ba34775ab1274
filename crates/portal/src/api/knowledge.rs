//! Knowledge-base articles, scoped by audience, plan and approval state;
//! search over articles, release notes and community posts; resolved
//! conversations into draft articles or revisions.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use portico_model::wire::{ArticleInput, Page};
use portico_model::*;
use serde_json::{Map, Value};

use super::{ApiError, AppState, Auth, Json, PageQuery, Path, Query, authorize, shape};
use crate::error::{PortalError, Result};
use crate::knowledge::index::{self, SearchParams};
use crate::knowledge::resolve;
use crate::store::{self, Actor};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/articles", get(list).post(create))
        .route("/v1/articles/{id}", get(read).put(update))
        .route("/v1/articles/{id}/diff", get(revision_diff))
        .route("/v1/search", get(search))
        .route("/v1/conversations/{id}/knowledge", post(from_conversation))
}

/// Full-text + semantic search over the knowledge the viewer may read.
async fn search(
    State(st): State<AppState>,
    Auth(viewer): Auth,
    Query(p): Query<SearchParams>,
) -> Result<Json<Value>, ApiError> {
    let mode = p.mode;
    let (store, k) = (st.store.clone(), st.knowledge.clone());
    let hits = tokio::task::spawn_blocking(move || index::search(&store, &k, &viewer, &p))
        .await
        .map_err(|_| PortalError::Unavailable)??;
    Ok(Json(serde_json::json!({ "items": hits, "mode": mode })))
}

/// A revision's proposed change as a unified diff against the article it
/// revises (staff: revisions are drafts).
async fn revision_diff(
    State(st): State<AppState>,
    Auth(viewer): Auth,
    Path(id): Path<ArticleId>,
) -> Result<Json<Value>, ApiError> {
    let (rev, original) = st
        .read(move |c| {
            let rev: Article = store::require(c, id.0)?;
            let original = match rev.revises {
                Some(o) => Some(store::require::<Article>(c, o.0)?),
                None => None,
            };
            Ok((rev, original))
        })
        .await?;
    let _ = shape(&viewer, &rev)?;
    let Some(original) = original else {
        return Err(Invalid::new("id", "this article is not a revision of another").into());
    };
    Ok(Json(serde_json::json!({
        "article_id": original.id,
        "revision_id": rev.id,
        "diff": resolve::diff(&original.body, &rev.body),
    })))
}

/// Drafts an article (or a revision of one) from a resolved conversation.
async fn from_conversation(
    State(st): State<AppState>,
    Auth(viewer): Auth,
    Path(id): Path<ConversationId>,
    Json(input): Json<resolve::Resolve>,
) -> Result<(StatusCode, Json<resolve::Resolution>), ApiError> {
    let v = viewer.clone();
    let (article, diff) = st
        .write(Actor::from(&viewer), move |w| {
            resolve::resolve(w, &v, id, input)
        })
        .await?;
    let article = redact(&viewer, &article)
        .ok_or_else(|| PortalError::not_found(Kind::Article, article.id))?;
    Ok((
        StatusCode::CREATED,
        Json(resolve::Resolution { article, diff }),
    ))
}

/// Articles the viewer may read, newest first. Hidden rows are skipped while
/// filling the page, so a customer's page is full even when most rows are
/// internal.
async fn list(
    State(st): State<AppState>,
    Auth(viewer): Auth,
    Query(q): Query<PageQuery>,
) -> Result<Json<Page<Map<String, Value>>>, ApiError> {
    let limit = q.limit()?;
    let mut before = q.id_cursor()?;
    let mut items = Vec::new();
    loop {
        let batch: Vec<Article> = st.read(move |c| store::list_all(c, before, limit)).await?;
        let exhausted = batch.len() < limit;
        for a in &batch {
            before = Some(a.id.0);
            if let Some(m) = redact(&viewer, a) {
                items.push(m);
                if items.len() == limit {
                    break;
                }
            }
        }
        if items.len() == limit || exhausted {
            let next_cursor = (items.len() == limit).then(|| {
                super::encode_cursor(&before.expect("a full page has a last row").to_string())
            });
            return Ok(Json(Page { items, next_cursor }));
        }
    }
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadQuery {
    /// The language wanted; default: the reader's own.
    locale: Option<String>,
}

/// One article, in the reader's language when a translation (same slug)
/// exists that they may read; else as asked (English is the fallback).
async fn read(
    State(st): State<AppState>,
    Auth(viewer): Auth,
    Path(id): Path<ArticleId>,
    Query(q): Query<ReadQuery>,
) -> Result<Json<Map<String, Value>>, ApiError> {
    if let Some(l) = &q.locale {
        portico_model::validate::check_locale("locale", l)?;
    }
    let v = viewer.clone();
    let a: Article = st
        .read(move |c| {
            let a: Article = store::require(c, id.0)?;
            let wanted = match q.locale {
                Some(l) => Some(l),
                None => index::reader_locale(c, &v)?,
            };
            let Some(wanted) = wanted.filter(|l| *l != a.locale) else {
                return Ok(a);
            };
            // The original and its translations share the original's id.
            let root = a.translation_of.unwrap_or(a.id);
            let translation = store::query::<Article>(
                c,
                "SELECT data FROM articles WHERE (id = ?1 OR data ->> '$.translation_of' = ?1) AND data ->> '$.locale' = ?2",
                [root.to_string(), wanted.clone()],
            )?
            .into_iter()
            .find(|t| t.visible_to(&v) && a.visible_to(&v));
            Ok(translation.unwrap_or(a))
        })
        .await?;
    Ok(shape(&viewer, &a)?)
}

fn check_state_change(viewer: &Viewer, id: impl ToString, to: ArticleState) -> Result<()> {
    authorize(
        viewer,
        Action::WriteKnowledge,
        Kind::Article,
        id.to_string(),
    )?;
    if matches!(to, ArticleState::Approved | ArticleState::Archived) {
        authorize(viewer, Action::ApproveKnowledge, Kind::Article, id)?;
    }
    Ok(())
}

async fn create(
    State(st): State<AppState>,
    Auth(viewer): Auth,
    Json(input): Json<ArticleInput>,
) -> Result<(StatusCode, Json<Map<String, Value>>), ApiError> {
    let state = input.state.unwrap_or(ArticleState::Draft);
    check_state_change(&viewer, "new", state)?;
    let v = viewer.clone();
    let article = st
        .write(Actor::from(&viewer), move |w| {
            let mut a = Article {
                id: w.new_id(),
                slug: input.slug,
                title: input.title,
                summary: input.summary,
                body: input.body,
                product_area: input.product_area,
                plans: input.plans,
                versions: input.versions,
                locale: input.locale,
                audience: input.audience,
                state,
                author_id: Some(v.user_id),
                revises: None,
                from_conversation_id: None,
                translation_of: input.translation_of,
                version: 0,
                created_at: w.at(),
                updated_at: w.at(),
            };
            w.insert(&mut a)?;
            w.audit("article.created", &a, Value::Null)?;
            Ok(a)
        })
        .await?;
    Ok((StatusCode::CREATED, shape(&viewer, &article)?))
}

async fn update(
    State(st): State<AppState>,
    Auth(viewer): Auth,
    Path(id): Path<ArticleId>,
    Json(input): Json<ArticleInput>,
) -> Result<Json<Map<String, Value>>, ApiError> {
    authorize(&viewer, Action::WriteKnowledge, Kind::Article, id)?;
    let v = viewer.clone();
    let article = st
        .write(Actor::from(&viewer), move |w| {
            let mut a: Article = store::require(w, id.0)?;
            super::check_version("article", input.if_version, a.version)?;
            let state = input.state.unwrap_or(a.state);
            if state != a.state {
                check_state_change(&v, id, state)?;
            } else if a.state == ArticleState::Approved {
                // Editing approved text changes what customers read: same bar as approving.
                authorize(&v, Action::ApproveKnowledge, Kind::Article, id)?;
            }
            let from = a.state;
            a.slug = input.slug;
            a.title = input.title;
            a.summary = input.summary;
            a.body = input.body;
            a.product_area = input.product_area;
            a.plans = input.plans;
            a.versions = input.versions;
            a.locale = input.locale;
            a.audience = input.audience;
            a.translation_of = input.translation_of;
            a.state = state;
            if let (Some(original), ArticleState::Approved) = (a.revises, state) {
                return apply_revision(w, a, original);
            }
            w.update(&mut a)?;
            w.audit(
                "article.updated",
                &a,
                serde_json::json!({ "state_from": from, "state_to": state }),
            )?;
            Ok(a)
        })
        .await?;
    Ok(shape(&viewer, &article)?)
}

/// Approving a revision publishes its text on the article it revises (which
/// keeps its id and slug, so links stay) and archives the revision.
fn apply_revision(
    w: &mut crate::store::Writer<'_>,
    mut revision: Article,
    original: ArticleId,
) -> Result<Article> {
    let mut a: Article = store::require(w, original.0)?;
    let before = a.body.clone();
    a.title = revision.title.clone();
    a.summary = revision.summary.clone();
    a.body = revision.body.clone();
    a.product_area = revision.product_area.clone();
    a.plans = revision.plans.clone();
    a.versions = revision.versions.clone();
    a.locale = revision.locale.clone();
    a.audience = revision.audience;
    a.state = ArticleState::Approved;
    w.update(&mut a)?;
    w.audit(
        "article.revision_applied",
        &a,
        serde_json::json!({ "revision_id": revision.id, "diff": resolve::diff(&before, &a.body) }),
    )?;
    revision.state = ArticleState::Archived;
    w.update(&mut revision)?;
    w.audit(
        "article.updated",
        &revision,
        serde_json::json!({ "state_to": "archived", "applied_to": a.id }),
    )?;
    Ok(a)
}
