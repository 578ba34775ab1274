//! Conversations and their messages.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use portico_model::wire::{ConversationPatch, NewConversation, NewMessage, Page};
use portico_model::*;
use rusqlite::types::Value as Sql;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{
    ApiError, AppState, Auth, Json, Path, Query, authorize, bad_cursor, decode_cursor,
    encode_cursor, shape,
};
use crate::error::{PortalError, Result};
use crate::store::{self, Actor, Writer};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/conversations", get(list).post(create))
        .route("/v1/conversations/{id}", get(read).patch(patch))
        .route(
            "/v1/conversations/{id}/messages",
            get(list_messages).post(post_message),
        )
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    pub status: Option<ConversationStatus>,
    pub assignee_id: Option<UserId>,
    /// `true` lists only conversations nobody is assigned to.
    pub unassigned: Option<bool>,
    pub team_id: Option<TeamId>,
    pub account_id: Option<AccountId>,
    pub limit: Option<usize>,
    pub cursor: Option<String>,
}

/// Conversations, most recently updated first. Customers see their account's.
async fn list(
    State(st): State<AppState>,
    Auth(viewer): Auth,
    Query(q): Query<ListQuery>,
) -> Result<Json<Page<Map<String, Value>>>, ApiError> {
    let limit = super::PageQuery {
        limit: q.limit,
        cursor: None,
    }
    .limit()?;
    let account = if viewer.is_staff() {
        q.account_id
    } else {
        viewer.account_id
    };
    if !viewer.is_staff() && q.account_id.is_some_and(|a| Some(a) != viewer.account_id) {
        return Err(PortalError::not_found(Kind::Account, q.account_id.unwrap()).into());
    }
    let cursor = q
        .cursor
        .as_deref()
        .map(|c| {
            decode_cursor(c)
                .and_then(|s| {
                    let (ts, id) = s.split_once(':')?;
                    Some((ts.parse::<i64>().ok()?, id.parse::<uuid::Uuid>().ok()?))
                })
                .ok_or_else(bad_cursor)
        })
        .transpose()?;
    let v = viewer.clone();
    let rows = st
        .read(move |c| {
            let mut sql = String::from("SELECT data, updated_ts FROM conversations WHERE 1 = 1");
            let mut args: Vec<Sql> = Vec::new();
            let mut bind = |sql: &mut String, clause: &str, v: Sql| {
                args.push(v);
                sql.push_str(&clause.replace('?', &format!("?{}", args.len())));
            };
            if let Some(a) = account {
                bind(&mut sql, " AND account_id = ?", Sql::Text(a.to_string()));
            }
            if let Some(s) = q.status {
                bind(&mut sql, " AND status = ?", Sql::Text(s.as_str().into()));
            }
            if let Some(a) = q.assignee_id.filter(|_| v.is_staff()) {
                bind(&mut sql, " AND assignee_id = ?", Sql::Text(a.to_string()));
            }
            if q.unassigned == Some(true) && v.is_staff() {
                sql.push_str(" AND assignee_id IS NULL");
            }
            if let Some(t) = q.team_id.filter(|_| v.is_staff()) {
                bind(&mut sql, " AND team_id = ?", Sql::Text(t.to_string()));
            }
            if v.is_staff() && v.access == ConversationAccess::Teams {
                // The policy's conversation access as SQL, so pages stay
                // full; `redact` below still decides row by row.
                args.push(Sql::Text(v.user_id.to_string()));
                let mut clause = format!(" AND (assignee_id = ?{}", args.len());
                for t in &v.team_ids {
                    args.push(Sql::Text(t.to_string()));
                    clause.push_str(&format!(" OR team_id = ?{}", args.len()));
                }
                clause.push(')');
                sql.push_str(&clause);
            }
            if let Some((ts, id)) = cursor {
                args.push(Sql::Integer(ts));
                let n = args.len();
                args.push(Sql::Text(id.to_string()));
                sql.push_str(&format!(
                    " AND (updated_ts < ?{n} OR (updated_ts = ?{n} AND id < ?{}))",
                    n + 1
                ));
            }
            args.push(Sql::Integer(limit as i64));
            sql.push_str(&format!(
                " ORDER BY updated_ts DESC, id DESC LIMIT ?{}",
                args.len()
            ));
            let mut stmt = c.prepare_cached(&sql)?;
            let rows = stmt.query_map(rusqlite::params_from_iter(args), |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (data, ts) = row?;
                out.push((store::parse::<Conversation>(&data)?, ts));
            }
            Ok(out)
        })
        .await?;
    let next_cursor = (rows.len() == limit)
        .then(|| {
            rows.last()
                .map(|(r, ts)| encode_cursor(&format!("{ts}:{}", r.id)))
        })
        .flatten();
    let items = rows
        .iter()
        .filter_map(|(r, _)| redact(&viewer, r))
        .collect();
    Ok(Json(Page { items, next_cursor }))
}

async fn read(
    State(st): State<AppState>,
    Auth(viewer): Auth,
    Path(id): Path<uuid::Uuid>,
) -> Result<Json<Map<String, Value>>, ApiError> {
    let conv: Conversation = st.read(move |c| store::require(c, id)).await?;
    Ok(shape(&viewer, &conv)?)
}

/// Opens a conversation with its first message.
async fn create(
    State(st): State<AppState>,
    Auth(viewer): Auth,
    Json(input): Json<NewConversation>,
) -> Result<(StatusCode, Json<Map<String, Value>>), ApiError> {
    input.validate()?;
    let account = super::target_account(&viewer, input.account_id, "conversation")?;
    authorize(
        &viewer,
        Action::OpenRequest(account),
        Kind::Account,
        account,
    )?;
    let v = viewer.clone();
    let conv = st
        .write(Actor::from(&viewer), move |w| {
            open_in(w, &v, account, input, None)
        })
        .await?;
    Ok((StatusCode::CREATED, shape(&viewer, &conv)?))
}

/// Opens a conversation with its first message inside the caller's
/// transaction: routing, SLA and assignment run as for any new conversation.
/// The same path for the API and for mail arriving at a support mailbox
/// (`origin` says who wrote the mail and what it had beyond its text).
pub(crate) fn open_in(
    w: &mut Writer<'_>,
    v: &Viewer,
    account: AccountId,
    input: NewConversation,
    origin: Option<crate::mail::ingest::Origin>,
) -> Result<Conversation> {
    let _: Account = store::require(w, account.0)?;
    let requester = if v.is_staff() {
        primary_user(w, account)?
    } else {
        v.user_id
    };
    let mut conv = Conversation {
        id: w.new_id(),
        account_id: account,
        channel: input.channel,
        subject: input.subject,
        status: ConversationStatus::Open,
        requester_id: requester,
        product_area: input.product_area,
        request_id: None,
        last_message_at: w.at(),
        message_count: 0,
        snoozed_until: None,
        priority: Priority::Normal,
        assignee_id: if v.is_staff() { Some(v.user_id) } else { None },
        team_id: None,
        tags: vec![],
        sla_policy_id: None,
        sla: None,
        sla_next_check: None,
        version: 0,
        created_at: w.at(),
        updated_at: w.at(),
    };
    w.insert(&mut conv)?;
    let first = input.body.clone();
    let msg = NewMessage {
        id: None,
        internal: false,
        body: input.body,
        mentions: vec![],
    };
    append_message(w, v, &mut conv, msg, origin)?;
    crate::work::conversation_created(w, &mut conv, &first)?;
    Ok(conv)
}

/// The account's first admin stands in as requester when staff open a thread.
fn primary_user(w: &Writer<'_>, account: AccountId) -> Result<UserId> {
    let users: Vec<User> = store::query(
        w,
        "SELECT data FROM users WHERE account_id = ?1 ORDER BY id LIMIT 1",
        [account.to_string()],
    )?;
    users.first().map(|u| u.id).ok_or_else(|| {
        Invalid::new("account_id", "the account has no users to converse with").into()
    })
}

/// Staff triage: status, snooze, priority, assignee, team, tags.
async fn patch(
    State(st): State<AppState>,
    Auth(viewer): Auth,
    Path(id): Path<uuid::Uuid>,
    Json(p): Json<ConversationPatch>,
) -> Result<Json<Map<String, Value>>, ApiError> {
    let v = viewer.clone();
    let conv = st
        .write(Actor::from(&viewer), move |w| apply_patch(w, &v, id, p))
        .await?;
    Ok(shape(&viewer, &conv)?)
}

/// Staff triage of one conversation inside the caller's transaction: the
/// same rules for the HTTP PATCH and for pushed offline mutations.
pub(crate) fn apply_patch(
    w: &mut Writer<'_>,
    v: &Viewer,
    id: uuid::Uuid,
    p: ConversationPatch,
) -> Result<Conversation> {
    let mut conv: Conversation = store::require(w, id)?;
    if !conv.visible_to(v) {
        return Err(PortalError::not_found(Kind::Conversation, id));
    }
    authorize(v, Action::Triage, Kind::Conversation, id)?;
    p.validate()?;
    super::check_version("conversation", p.if_version, conv.version)?;
    if p.is_empty() {
        return Err(Invalid::new("body", "nothing to change: give at least one field").into());
    }
    let before = serde_json::to_value(&conv).expect("records serialize");
    let (before_status, before_assignee) = (conv.status, conv.assignee_id);
    if let Some(s) = p.status {
        conv.status = s;
        if s != ConversationStatus::Snoozed {
            conv.snoozed_until = None;
        }
    }
    if let Some(until) = p.snoozed_until {
        conv.snoozed_until = until;
    }
    if let Some(pr) = p.priority {
        conv.priority = pr;
    }
    if let Some(a) = p.assignee_id {
        if let Some(user) = a {
            let u: User = store::get(w, user.0)?
                .ok_or_else(|| Invalid::new("assignee_id", "no such staff user"))?;
            if !u.role.is_staff() {
                return Err(Invalid::new(
                    "assignee_id",
                    "conversations are assigned to staff, not customers",
                )
                .into());
            }
        }
        conv.assignee_id = a;
    }
    if let Some(t) = p.team_id {
        if let Some(team) = t
            && store::get::<Team>(w, team.0)?.is_none()
        {
            return Err(Invalid::new("team_id", "no such team").into());
        }
        conv.team_id = t;
    }
    conv.tags.retain(|t| !p.remove_tags.contains(t));
    for t in p.add_tags {
        if !conv.tags.contains(&t) {
            conv.tags.push(t);
        }
    }
    crate::work::sla_on_change(w, &mut conv, before_status, None)?;
    w.update(&mut conv)?;
    w.audit(
        "conversation.updated",
        &conv,
        serde_json::json!({ "before": changed_fields(&before, &conv) }),
    )?;
    // Capacity freed (resolved, or handed off): queued work moves on.
    let freed = (conv.status == ConversationStatus::Resolved
        && before_status != ConversationStatus::Resolved)
        || (before_assignee.is_some() && conv.assignee_id != before_assignee);
    if let (true, Some(team)) = (freed, conv.team_id) {
        crate::work::drain_queue(w, team)?;
    }
    crate::work::conversation_updated(w, &mut conv)?;
    Ok(conv)
}

/// The previous values of the fields a write changed, for the audit trail.
fn changed_fields(before: &Value, after: &Conversation) -> Value {
    let after = serde_json::to_value(after).expect("records serialize");
    let mut out = Map::new();
    if let (Value::Object(b), Value::Object(a)) = (before, &after) {
        for (k, v) in b {
            if a.get(k) != Some(v) && !matches!(k.as_str(), "version" | "updated_at") {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    Value::Object(out)
}

/// One page of a conversation's messages as `viewer` may read them.
/// Customers' pages skip internal notes in SQL: the cursor is the last row
/// fetched, so a hidden note there would hand out its id.
pub(super) fn message_page(
    c: &rusqlite::Connection,
    viewer: &Viewer,
    conversation: uuid::Uuid,
    after: Option<uuid::Uuid>,
    limit: usize,
) -> Result<Vec<Message>, PortalError> {
    store::query(
        c,
        "SELECT data FROM messages WHERE conversation_id = ?1 AND id > ?2 \
         AND (?4 OR data ->> '$.kind' != 'internal_note') ORDER BY id LIMIT ?3",
        rusqlite::params![
            conversation.to_string(),
            after.map(|u| u.to_string()).unwrap_or_default(),
            limit as i64,
            viewer.is_staff()
        ],
    )
}

async fn list_messages(
    State(st): State<AppState>,
    Auth(viewer): Auth,
    Path(id): Path<uuid::Uuid>,
    Query(q): Query<super::PageQuery>,
) -> Result<Json<Page<Map<String, Value>>>, ApiError> {
    let limit = q.limit()?;
    let after = q.id_cursor()?;
    let v = viewer.clone();
    let msgs: Vec<Message> = st
        .read(move |c| {
            let conv: Conversation = store::require(c, id)?;
            if !conv.visible_to(&v) {
                return Err(PortalError::not_found(Kind::Conversation, id));
            }
            message_page(c, &v, id, after, limit)
        })
        .await?;
    Ok(Json(super::page_of(&viewer, msgs, limit, |m| {
        m.id.to_string()
    })))
}

/// Posts a reply or internal note. A client-minted `id` makes retries safe:
/// the same id and body again returns the stored message, not a copy.
async fn post_message(
    State(st): State<AppState>,
    Auth(viewer): Auth,
    Path(id): Path<uuid::Uuid>,
    Json(input): Json<NewMessage>,
) -> Result<(StatusCode, Json<Map<String, Value>>), ApiError> {
    input.validate()?;
    let v = viewer.clone();
    let (msg, created) = st
        .write(Actor::from(&viewer), move |w| post_in(w, &v, id, input))
        .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, shape(&viewer, &msg)?))
}

/// Posts a message inside the caller's transaction. A message id already
/// stored with the same author and body is the earlier send, returned as it
/// was (`false`); with anything else it is a conflict.
pub(crate) fn post_in(
    w: &mut Writer<'_>,
    v: &Viewer,
    id: uuid::Uuid,
    input: NewMessage,
) -> Result<(Message, bool)> {
    input.validate()?;
    let mut conv: Conversation = store::require(w, id)?;
    if !conv.visible_to(v) {
        return Err(PortalError::not_found(Kind::Conversation, id));
    }
    if let Some(mid) = input.id
        && let Some(existing) = store::get::<Message>(w, mid.0)?
    {
        if existing.conversation_id == conv.id
            && existing.body == input.body
            && existing.author_id == Some(v.user_id)
        {
            return Ok((existing, false));
        }
        return Err(PortalError::Conflict(format!(
            "message id {mid} is already used for another message"
        )));
    }
    let msg = append_message(w, v, &mut conv, input, None)?;
    Ok((msg, true))
}

/// Appends a message and bumps the conversation; shared by create, reply
/// and incoming mail. An agent's reply on an email conversation is queued
/// for sending in the same transaction (see `crate::mail::outbox`), so it
/// goes out if and only if the reply is stored, once.
pub(crate) fn append_message(
    w: &mut Writer<'_>,
    v: &Viewer,
    conv: &mut Conversation,
    input: NewMessage,
    origin: Option<crate::mail::ingest::Origin>,
) -> Result<Message> {
    let kind = match (v.is_staff(), input.internal) {
        (true, true) => {
            authorize(v, Action::PostInternalNote, Kind::Conversation, conv.id)?;
            MessageKind::InternalNote
        }
        (true, false) => MessageKind::Agent,
        (false, false) => {
            authorize(
                v,
                Action::PostReply(conv.account_id),
                Kind::Conversation,
                conv.id,
            )?;
            MessageKind::Customer
        }
        (false, true) => return Err(PortalError::Forbidden("internal notes are for staff")),
    };
    if !input.mentions.is_empty() && kind != MessageKind::InternalNote {
        return Err(Invalid::new("mentions", "only internal notes mention staff").into());
    }
    let author: User = store::require(w, v.user_id.0)?;
    let (author_id, author_name, email) = match origin {
        Some(o) => (o.author_id, o.author_name, Some(o.email)),
        None => (Some(v.user_id), author.name, None),
    };
    let mut msg = Message {
        id: input.id.unwrap_or_else(|| w.new_id()),
        conversation_id: conv.id,
        account_id: conv.account_id,
        kind,
        author_id,
        author_name,
        body: input.body,
        mentions: input.mentions,
        email,
        delivery: None,
        version: 0,
        created_at: w.at(),
        updated_at: w.at(),
    };
    let outgoing = kind == MessageKind::Agent && conv.channel == Channel::Email;
    if outgoing {
        crate::mail::outbox::enqueue(w, conv, &mut msg)?;
    }
    w.insert(&mut msg)?;
    let before_status = conv.status;
    conv.message_count += 1;
    conv.last_message_at = w.at();
    // A customer writing reopens a pending, snoozed or resolved thread.
    if kind == MessageKind::Customer && conv.status != ConversationStatus::Open {
        conv.status = ConversationStatus::Open;
        conv.snoozed_until = None;
    }
    crate::work::sla_on_change(w, conv, before_status, Some(kind))?;
    w.update(conv)?;
    Ok(msg)
}
