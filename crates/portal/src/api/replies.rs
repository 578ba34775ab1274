//! Saved replies over HTTP: staff list the team's replies and their own,
//! write personal ones, and leads and admins write the team's. Rows reach
//! desktops through sync like any record, shaped by the same row rule
//! (a personal reply only ever reaches its owner).

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use portico_model::wire::{NewSavedReply, Page, SavedReplyPatch};
use portico_model::*;
use serde_json::{Map, Value, json};

use super::{ApiError, AppState, Auth, Json, Path, authorize, check_version, shape};
use crate::error::{PortalError, Result};
use crate::store::{self, Actor, Writer};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/saved-replies", get(list).post(create))
        .route(
            "/v1/saved-replies/{id}",
            get(read).patch(update).delete(remove),
        )
}

/// Staff only; a personal reply of someone else looks missing.
fn readable(w: &rusqlite::Connection, v: &Viewer, id: SavedReplyId) -> Result<SavedReply> {
    authorize(v, Action::Triage, Kind::SavedReply, id)?;
    let r: SavedReply = store::require(w, id.0)?;
    if !r.visible_to(v) {
        return Err(PortalError::not_found(Kind::SavedReply, id));
    }
    Ok(r)
}

/// The right to change `r`: its owner for a personal reply, a lead or admin
/// for the team's.
fn writable(w: &rusqlite::Connection, v: &Viewer, id: SavedReplyId) -> Result<SavedReply> {
    let r = readable(w, v, id)?;
    authorize(
        v,
        Action::ManageSavedReplies {
            team: r.owner_id.is_none(),
        },
        Kind::SavedReply,
        id,
    )?;
    Ok(r)
}

async fn list(
    State(st): State<AppState>,
    Auth(v): Auth,
) -> Result<Json<Page<Map<String, Value>>>, ApiError> {
    authorize(&v, Action::Triage, Kind::SavedReply, "list")?;
    let rows: Vec<SavedReply> = st
        .read(|c| {
            store::query(
                c,
                "SELECT data FROM saved_replies ORDER BY data ->> '$.title', id",
                [],
            )
        })
        .await?;
    Ok(Json(Page {
        items: rows.iter().filter_map(|r| redact(&v, r)).collect(),
        next_cursor: None,
    }))
}

async fn read(
    State(st): State<AppState>,
    Auth(v): Auth,
    Path(id): Path<SavedReplyId>,
) -> Result<Json<Map<String, Value>>, ApiError> {
    let vv = v.clone();
    let r = st.read(move |c| readable(c, &vv, id)).await?;
    Ok(shape(&v, &r)?)
}

async fn create(
    State(st): State<AppState>,
    Auth(v): Auth,
    Json(input): Json<NewSavedReply>,
) -> Result<(StatusCode, Json<Map<String, Value>>), ApiError> {
    authorize(
        &v,
        Action::ManageSavedReplies {
            team: !input.personal,
        },
        Kind::SavedReply,
        "new",
    )?;
    let vv = v.clone();
    let r = st
        .write(Actor::from(&v), move |w: &mut Writer<'_>| {
            let mut r = SavedReply {
                id: w.new_id(),
                title: input.title.trim().to_owned(),
                body: input.body,
                owner_id: input.personal.then_some(vv.user_id),
                version: 0,
                created_at: w.at(),
                updated_at: w.at(),
            };
            w.insert(&mut r)?;
            w.audit(
                "saved_reply.created",
                &r,
                json!({ "personal": input.personal }),
            )?;
            Ok(r)
        })
        .await?;
    Ok((StatusCode::CREATED, shape(&v, &r)?))
}

async fn update(
    State(st): State<AppState>,
    Auth(v): Auth,
    Path(id): Path<SavedReplyId>,
    Json(p): Json<SavedReplyPatch>,
) -> Result<Json<Map<String, Value>>, ApiError> {
    let vv = v.clone();
    let r = st
        .write(Actor::from(&v), move |w| {
            let mut r = writable(w, &vv, id)?;
            check_version("saved reply", p.if_version, r.version)?;
            let before = r.body.clone();
            if let Some(t) = p.title {
                r.title = t.trim().to_owned();
            }
            if let Some(b) = p.body {
                r.body = b;
            }
            w.update(&mut r)?;
            w.audit(
                "saved_reply.updated",
                &r,
                json!({ "before": before, "after": r.body }),
            )?;
            Ok(r)
        })
        .await?;
    Ok(shape(&v, &r)?)
}

async fn remove(
    State(st): State<AppState>,
    Auth(v): Auth,
    Path(id): Path<SavedReplyId>,
) -> Result<StatusCode, ApiError> {
    let vv = v.clone();
    st.write(Actor::from(&v), move |w| {
        let r = writable(w, &vv, id)?;
        w.delete(&r)?;
        w.audit("saved_reply.deleted", &r, Value::Null)
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
