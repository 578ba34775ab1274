//! Community Q&A: customers ask and answer each other, staff answer and
//! verify answers. Posts are public to every signed-in person; which company
//! asked (and who, as a user id) is a staff field, so customers see the
//! author's display name only.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use portico_model::wire::Page;
use portico_model::*;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{ApiError, AppState, Auth, Json, Path, Query, encode_cursor, shape};
use crate::error::{PortalError, Result};
use crate::store::{self, Actor, Writer};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/community/questions", get(list_questions).post(ask))
        .route("/v1/community/questions/{id}", get(read_question))
        .route("/v1/community/questions/{id}/answers", post(answer))
        .route("/v1/community/answers/{id}/verify", post(verify))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    product_area: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
}

/// Questions, newest first.
async fn list_questions(
    State(st): State<AppState>,
    Auth(viewer): Auth,
    Query(q): Query<ListQuery>,
) -> Result<Json<Page<Map<String, Value>>>, ApiError> {
    let page = super::PageQuery {
        limit: q.limit,
        cursor: q.cursor,
    };
    let (limit, before) = (page.limit()?, page.id_cursor()?);
    let area = q.product_area;
    let posts: Vec<CommunityPost> = st
        .read(move |c| {
            store::query(
                c,
                "SELECT data FROM community_posts
                 WHERE data ->> '$.parent_id' IS NULL AND id < ?1
                   AND (?2 IS NULL OR data ->> '$.product_area' = ?2)
                 ORDER BY id DESC LIMIT ?3",
                rusqlite::params![
                    before.map(|b| b.to_string()).unwrap_or_else(|| "g".into()),
                    area,
                    limit as i64
                ],
            )
        })
        .await?;
    let next_cursor = (posts.len() == limit)
        .then(|| posts.last().map(|p| encode_cursor(&p.id.to_string())))
        .flatten();
    let items = posts.iter().filter_map(|p| redact(&viewer, p)).collect();
    Ok(Json(Page { items, next_cursor }))
}

#[derive(Debug, Serialize)]
struct Thread {
    question: Map<String, Value>,
    /// Verified answers first, then accepted, then oldest first.
    answers: Vec<Map<String, Value>>,
}

async fn read_question(
    State(st): State<AppState>,
    Auth(viewer): Auth,
    Path(id): Path<CommunityPostId>,
) -> Result<Json<Thread>, ApiError> {
    let (question, mut answers) = st
        .read(move |c| {
            let q = question_of(c, id)?;
            let answers: Vec<CommunityPost> = store::query(
                c,
                "SELECT data FROM community_posts WHERE data ->> '$.parent_id' = ?1 ORDER BY id LIMIT 500",
                [id.to_string()],
            )?;
            Ok((q, answers))
        })
        .await?;
    answers.sort_by_key(|a| (!a.verified, !a.accepted, a.id.0));
    Ok(Json(Thread {
        question: shape(&viewer, &question)?.0,
        answers: answers.iter().filter_map(|a| redact(&viewer, a)).collect(),
    }))
}

fn question_of(c: &rusqlite::Connection, id: CommunityPostId) -> Result<CommunityPost> {
    let q: CommunityPost = store::require(c, id.0)?;
    if q.parent_id.is_some() {
        return Err(PortalError::NotFound {
            kind: "community question",
            id: id.to_string(),
        });
    }
    Ok(q)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewQuestion {
    title: String,
    body: String,
    #[serde(default)]
    product_area: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewAnswer {
    body: String,
}

fn check_text(field: &str, text: &str, max: usize) -> Result<()> {
    if text.trim().is_empty() {
        return Err(Invalid::new(field, "must not be empty").into());
    }
    if text.chars().count() > max {
        return Err(Invalid::new(field, format!("at most {max} characters")).into());
    }
    Ok(())
}

/// A post written by the viewer: a customer's carries their account (staff
/// only), staff's is marked as staff's.
fn new_post(
    w: &mut Writer<'_>,
    v: &Viewer,
    title: String,
    body: String,
    product_area: String,
    parent: Option<CommunityPostId>,
) -> Result<CommunityPost> {
    let author: User = store::require(w, v.user_id.0)?;
    let mut p = CommunityPost {
        id: w.new_id(),
        account_id: if v.is_staff() { None } else { v.account_id },
        author_id: Some(v.user_id),
        author_name: author.name,
        title,
        body,
        product_area,
        parent_id: parent,
        accepted: false,
        votes: 0,
        by_staff: v.is_staff(),
        verified: false,
        version: 0,
        created_at: w.at(),
        updated_at: w.at(),
    };
    w.insert(&mut p)?;
    w.audit(
        if parent.is_some() {
            "community.answered"
        } else {
            "community.asked"
        },
        &p,
        Value::Null,
    )?;
    Ok(p)
}

async fn ask(
    State(st): State<AppState>,
    Auth(viewer): Auth,
    Json(input): Json<NewQuestion>,
) -> Result<(StatusCode, Json<Map<String, Value>>), ApiError> {
    check_text("title", &input.title, 300)?;
    check_text("body", &input.body, 20_000)?;
    if input.product_area.chars().count() > 100 {
        return Err(Invalid::new("product_area", "at most 100 characters").into());
    }
    let v = viewer.clone();
    let post = st
        .write(Actor::from(&viewer), move |w| {
            new_post(w, &v, input.title, input.body, input.product_area, None)
        })
        .await?;
    Ok((StatusCode::CREATED, shape(&viewer, &post)?))
}

async fn answer(
    State(st): State<AppState>,
    Auth(viewer): Auth,
    Path(id): Path<CommunityPostId>,
    Json(input): Json<NewAnswer>,
) -> Result<(StatusCode, Json<Map<String, Value>>), ApiError> {
    check_text("body", &input.body, 20_000)?;
    let v = viewer.clone();
    let post = st
        .write(Actor::from(&viewer), move |w| {
            let q = question_of(w, id)?;
            new_post(w, &v, String::new(), input.body, q.product_area, Some(q.id))
        })
        .await?;
    Ok((StatusCode::CREATED, shape(&viewer, &post)?))
}

/// Staff vouch for an answer (idempotent: verifying again changes nothing).
async fn verify(
    State(st): State<AppState>,
    Auth(viewer): Auth,
    Path(id): Path<CommunityPostId>,
) -> Result<Json<Map<String, Value>>, ApiError> {
    if !viewer.is_staff() {
        return Err(PortalError::Forbidden("only staff verify community answers").into());
    }
    let post = st
        .write(Actor::from(&viewer), move |w| {
            let mut a: CommunityPost = store::require(w, id.0)?;
            if a.parent_id.is_none() {
                return Err(
                    Invalid::new("id", "questions are not verified; verify an answer").into(),
                );
            }
            if !a.verified {
                a.verified = true;
                w.update(&mut a)?;
                w.audit("community.answer_verified", &a, Value::Null)?;
            }
            Ok(a)
        })
        .await?;
    Ok(shape(&viewer, &post)?)
}
