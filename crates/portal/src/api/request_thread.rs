//! What customers do on a request beyond opening it: the reply thread with
//! staff, attached files, and votes on feature requests.
//!
//! - **Comments** are the messages of the request's conversation, opened by
//!   the first comment and linked both ways, so staff answer from the desk
//!   like any conversation (routing, SLA, live updates) and internal notes
//!   stay staff-only by the message policy.
//! - **Attachments** (see `crate::attachments`) are checked by size, type and
//!   magic bytes, kept in the database under random ids, listed on the
//!   request and downloaded only by those who may see it.
//! - **Votes**: one per customer user on their account's feature requests;
//!   the count is on the request. See `docs/decisions.md`.

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use portico_model::wire::{NewConversation, NewMessage, Page};
use portico_model::*;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{ApiError, AppState, Auth, Json, PageQuery, Path, Query, page_of, shape};
use crate::attachments::{self, MAX_ATTACHMENT_BYTES};
use crate::error::{PortalError, Result};
use crate::store::{self, Actor, Writer};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/requests/{id}/comments",
            get(list_comments).post(post_comment),
        )
        .route(
            "/v1/requests/{id}/attachments",
            post(upload).layer(DefaultBodyLimit::disable()),
        )
        .route(
            "/v1/requests/{id}/attachments/{attachment_id}",
            get(download),
        )
        .route("/v1/requests/{id}/vote", post(vote).delete(unvote))
}

/// The request if the viewer may see it; another account's is "not found".
fn visible_request(c: &rusqlite::Connection, v: &Viewer, id: RequestId) -> Result<Request> {
    let r: Request = store::require(c, id.0)?;
    if !r.visible_to(v) {
        return Err(PortalError::not_found(Kind::Request, id));
    }
    Ok(r)
}

async fn list_comments(
    State(st): State<AppState>,
    Auth(viewer): Auth,
    Path(id): Path<RequestId>,
    Query(q): Query<PageQuery>,
) -> Result<Json<Page<Map<String, Value>>>, ApiError> {
    let limit = q.limit()?;
    let after = q.id_cursor()?;
    let v = viewer.clone();
    let msgs: Vec<Message> = st
        .read(move |c| {
            let r = visible_request(c, &v, id)?;
            let Some(conv_id) = r.conversation_id else {
                return Ok(vec![]);
            };
            let conv: Conversation = store::require(c, conv_id.0)?;
            if !conv.visible_to(&v) {
                return Err(PortalError::not_found(Kind::Request, id));
            }
            super::conversations::message_page(c, &v, conv_id.0, after, limit)
        })
        .await?;
    Ok(Json(page_of(&viewer, msgs, limit, |m| m.id.to_string())))
}

/// A reply on the request's thread (an internal note with `internal: true`,
/// staff only). The first reply opens the thread's conversation.
async fn post_comment(
    State(st): State<AppState>,
    Auth(viewer): Auth,
    Path(id): Path<RequestId>,
    Json(input): Json<NewMessage>,
) -> Result<(StatusCode, Json<Map<String, Value>>), ApiError> {
    input.validate()?;
    let v = viewer.clone();
    let (msg, created) = st
        .write(Actor::from(&viewer), move |w| comment_in(w, &v, id, input))
        .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, shape(&viewer, &msg)?))
}

fn comment_in(
    w: &mut Writer<'_>,
    v: &Viewer,
    id: RequestId,
    input: NewMessage,
) -> Result<(Message, bool)> {
    let mut r = visible_request(w, v, id)?;
    if let Some(conv) = r.conversation_id {
        return super::conversations::post_in(w, v, conv.0, input);
    }
    if input.internal {
        if !v.is_staff() {
            return Err(PortalError::Forbidden("internal notes are for staff"));
        }
        return Err(Invalid::new(
            "internal",
            "the request has no thread yet: reply first, or use the request's internal_note",
        )
        .into());
    }
    let mut conv = super::conversations::open_in(
        w,
        v,
        r.account_id,
        NewConversation {
            account_id: None,
            channel: Channel::Chat,
            subject: r.title.clone(),
            body: input.body,
            product_area: r.product_area.clone(),
        },
        None,
    )?;
    conv.request_id = Some(r.id);
    w.update(&mut conv)?;
    r.conversation_id = Some(conv.id);
    w.update(&mut r)?;
    let first: Message = store::query(
        w,
        "SELECT data FROM messages WHERE conversation_id = ?1 ORDER BY id LIMIT 1",
        [conv.id.to_string()],
    )?
    .pop()
    .ok_or_else(|| PortalError::Conflict("the thread's first message is missing".into()))?;
    Ok((first, true))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UploadQuery {
    name: String,
}

/// Raw bytes as the body, their type in `Content-Type`, the file name in
/// `?name=`. Checked before anything is stored; stored in one transaction
/// with the request's attachment list.
async fn upload(
    State(st): State<AppState>,
    Auth(viewer): Auth,
    Path(id): Path<RequestId>,
    Query(q): Query<UploadQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<AttachmentRef>), ApiError> {
    // Permission and declared size first: nothing is read for a request the
    // viewer cannot touch or a file that is too large anyway.
    let v = viewer.clone();
    st.read(move |c| visible_request(c, &v, id).map(|_| ()))
        .await?;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|l| l.to_str().ok())
        .and_then(|l| l.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_ATTACHMENT_BYTES as u64) {
        return Err(attachments::too_large().into());
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|t| t.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let checked_type = attachments::allowed_type(&content_type, &q.name)?;
    let bytes = axum::body::to_bytes(body, MAX_ATTACHMENT_BYTES + 1)
        .await
        .map_err(|_| attachments::too_large())?;
    if bytes.len() > MAX_ATTACHMENT_BYTES {
        return Err(attachments::too_large().into());
    }
    let file = attachments::check(&q.name, checked_type, &bytes)?;
    let v = viewer.clone();
    let stored = st
        .write(Actor::from(&viewer), move |w| {
            let mut r = visible_request(w, &v, id)?;
            if r.attachments.len() >= attachments::MAX_PER_REQUEST {
                return Err(PortalError::Conflict(format!(
                    "a request holds at most {} attachments",
                    attachments::MAX_PER_REQUEST
                )));
            }
            let author: User = store::require(w, v.user_id.0)?;
            let att = attachments::store(w, &r, &author, file, &bytes)?;
            r.attachments.push(att.clone());
            w.update(&mut r)?;
            w.audit(
                "request.attachment_added",
                &r,
                serde_json::json!({ "attachment_id": att.id, "name": att.name, "size": att.size }),
            )?;
            Ok(att)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(stored)))
}

/// The file as a download: never rendered in Portico's origin.
async fn download(
    State(st): State<AppState>,
    Auth(viewer): Auth,
    Path((id, attachment_id)): Path<(RequestId, uuid::Uuid)>,
) -> Result<Response, ApiError> {
    let v = viewer.clone();
    let (meta, bytes) = st
        .read(move |c| {
            visible_request(c, &v, id)?;
            attachments::load(c, id, attachment_id)
        })
        .await?;
    Ok((
        [
            (header::CONTENT_TYPE, meta.content_type.clone()),
            (
                header::CONTENT_DISPOSITION,
                attachments::disposition(&meta.name),
            ),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
            (
                header::CONTENT_SECURITY_POLICY,
                "sandbox; default-src 'none'".to_owned(),
            ),
            (header::CACHE_CONTROL, "private, no-store".to_owned()),
        ],
        bytes,
    )
        .into_response())
}

#[derive(Debug, Serialize)]
struct VoteState {
    request_id: RequestId,
    votes: u32,
    /// Whether the signed-in user's vote is counted now.
    voted: bool,
    /// False when the call changed nothing (a replayed vote).
    changed: bool,
}

async fn vote(
    State(st): State<AppState>,
    Auth(viewer): Auth,
    Path(id): Path<RequestId>,
) -> Result<Json<VoteState>, ApiError> {
    set_vote(st, viewer, id, true).await
}

async fn unvote(
    State(st): State<AppState>,
    Auth(viewer): Auth,
    Path(id): Path<RequestId>,
) -> Result<Json<VoteState>, ApiError> {
    set_vote(st, viewer, id, false).await
}

/// One vote per user: the vote table's key makes a replay change nothing,
/// and the count on the request moves in the same transaction.
async fn set_vote(
    st: AppState,
    viewer: Viewer,
    id: RequestId,
    on: bool,
) -> Result<Json<VoteState>, ApiError> {
    let v = viewer.clone();
    let state = st
        .write(Actor::from(&viewer), move |w| {
            let mut r = visible_request(w, &v, id)?;
            if !v.role.is_customer() {
                return Err(PortalError::Forbidden(
                    "votes are for customers; staff see the count",
                ));
            }
            if r.kind != RequestKind::Feature {
                return Err(Invalid::new("id", "only feature requests take votes").into());
            }
            let rows = if on {
                w.execute(
                    "INSERT OR IGNORE INTO request_votes (request_id, user_id, account_id, voted_at) VALUES (?1, ?2, ?3, ?4)",
                    rusqlite::params![r.id.to_string(), v.user_id.to_string(), r.account_id.to_string(), w.at().to_string()],
                )?
            } else {
                w.execute(
                    "DELETE FROM request_votes WHERE request_id = ?1 AND user_id = ?2",
                    rusqlite::params![r.id.to_string(), v.user_id.to_string()],
                )?
            };
            let changed = rows > 0;
            if changed {
                r.votes = w.query_row(
                    "SELECT count(*) FROM request_votes WHERE request_id = ?1",
                    [r.id.to_string()],
                    |row| row.get(0),
                )?;
                w.update(&mut r)?;
                w.audit(
                    if on { "request.voted" } else { "request.unvoted" },
                    &r,
                    serde_json::json!({ "votes": r.votes }),
                )?;
            }
            Ok(VoteState {
                request_id: r.id,
                votes: r.votes,
                voted: on,
                changed,
            })
        })
        .await?;
    Ok(Json(state))
}
