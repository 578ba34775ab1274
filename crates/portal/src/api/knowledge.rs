//! Knowledge-base articles, scoped by audience, plan and approval state.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use portico_model::wire::{ArticleInput, Page};
use portico_model::*;
use serde_json::{Map, Value};

use super::{ApiError, AppState, Auth, Json, PageQuery, Path, Query, authorize, shape};
use crate::error::Result;
use crate::store::{self, Actor};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/articles", get(list).post(create))
        .route("/v1/articles/{id}", get(read).put(update))
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

async fn read(
    State(st): State<AppState>,
    Auth(viewer): Auth,
    Path(id): Path<ArticleId>,
) -> Result<Json<Map<String, Value>>, ApiError> {
    let a: Article = st.read(move |c| store::require(c, id.0)).await?;
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
            a.state = state;
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
