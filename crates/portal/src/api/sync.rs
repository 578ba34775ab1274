//! Sync: the change feed (every committed write after a cursor, as the
//! viewer may see it), bootstrap pages, and pushed offline mutations applied
//! exactly once. Rows are redacted by the same policy as every other exit.

use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use portico_model::sync::{
    BootstrapPage, MAX_PUSH, MutationOp, MutationResult, Outcome, PushRequest, PushResponse,
    SYNC_PROTOCOL,
};
use portico_model::wire::{Change, ChangeOp, ChangesPage, ConversationPatch, NewMessage};
use portico_model::*;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::{ApiError, AppState, Auth, Json, Query};
use crate::error::{PortalError, Result};
use crate::knowledge::drafts;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/sync/changes", get(changes))
        .route("/v1/sync/bootstrap", get(bootstrap))
        .route("/v1/sync/push", post(push))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChangesQuery {
    #[serde(default)]
    after: i64,
    limit: Option<usize>,
    /// The pushing installation: its last processed mutation id comes back.
    client_id: Option<uuid::Uuid>,
    /// The scope the client bootstrapped under (see `sync::scope_key`).
    scope: Option<String>,
}

const MAX_CHANGES: usize = 1_000;

async fn changes(
    State(st): State<AppState>,
    Auth(viewer): Auth,
    Query(q): Query<ChangesQuery>,
) -> Result<Json<ChangesPage>, ApiError> {
    let limit = q.limit.unwrap_or(500);
    if limit == 0 || limit > MAX_CHANGES {
        return Err(Invalid::new("limit", format!("must be between 1 and {MAX_CHANGES}")).into());
    }
    if q.after < 0 {
        return Err(Invalid::new(
            "after",
            "must be a sequence number from a previous page, or 0",
        )
        .into());
    }
    let v = viewer.clone();
    let page = st
        .read(move |c| {
            let mut page = read_changes(c, &v, q.after, limit)?;
            // A cursor from the future means this server's history is not the
            // one the client synced from (restored backup, new database).
            let newest: i64 =
                c.query_row("SELECT coalesce(max(seq), 0) FROM change_log", [], |r| {
                    r.get(0)
                })?;
            // ...and a different scope means rows it holds may no longer be
            // visible (or new ones are): start over.
            let scope_changed = q
                .scope
                .as_deref()
                .is_some_and(|s| s != portico_model::sync::scope_key(&v));
            page.resync = q.after > newest || scope_changed;
            if let Some(client) = q.client_id {
                page.last_mutation_id = Some(last_mutation(c, v.user_id, client)?);
            }
            Ok(page)
        })
        .await?;
    Ok(Json(page))
}

pub use crate::store::{ParentScope, RawChange, parent_scope};

/// Up to `limit` change-log rows after `after`, in commit order. With
/// `scope`, only that account's rows, global ones and the community (what a
/// customer could possibly see); the policy still decides row by row.
pub fn read_raw(
    c: &rusqlite::Connection,
    after: i64,
    limit: usize,
    scope: Option<&str>,
) -> Result<Vec<RawChange>> {
    let sql = match scope {
        Some(_) => {
            "SELECT l.seq, l.kind, l.entity_id, l.op, l.version, l.row, l.account_id, c.id, c.team_id, c.assignee_id
             FROM change_log l LEFT JOIN conversations c ON l.kind = 'message' AND c.id = l.row ->> '$.conversation_id'
             WHERE l.seq > ?1 AND (l.account_id = ?3 OR l.account_id IS NULL OR l.kind = 'community_post') ORDER BY l.seq LIMIT ?2"
        }
        None => {
            "SELECT l.seq, l.kind, l.entity_id, l.op, l.version, l.row, l.account_id, c.id, c.team_id, c.assignee_id
             FROM change_log l LEFT JOIN conversations c ON l.kind = 'message' AND c.id = l.row ->> '$.conversation_id'
             WHERE l.seq > ?1 AND ?3 IS NULL ORDER BY l.seq LIMIT ?2"
        }
    };
    let mut stmt = c.prepare_cached(sql)?;
    let rows = stmt.query_map(rusqlite::params![after, limit as i64, scope], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, u64>(4)?,
            r.get::<_, Option<String>>(5)?,
            r.get::<_, Option<String>>(6)?,
            (
                r.get::<_, Option<String>>(7)?,
                r.get::<_, Option<String>>(8)?,
                r.get::<_, Option<String>>(9)?,
            ),
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (seq, kind, id, op, version, row, account_id, parent) = row?;
        let parent = parent.0.map(|_| parent_scope(parent.1, parent.2));
        let kind = Kind::parse(&kind).ok_or_else(|| {
            PortalError::Conflict(format!("change {seq} has unknown kind {kind}"))
        })?;
        let id: uuid::Uuid = id
            .parse()
            .map_err(|_| PortalError::Conflict(format!("change {seq} has a malformed id")))?;
        let op = if op == "delete" {
            ChangeOp::Delete
        } else {
            ChangeOp::Upsert
        };
        out.push(RawChange {
            seq,
            kind,
            id,
            op,
            version,
            row,
            account_id,
            parent,
        });
    }
    Ok(out)
}

/// The change as `viewer` may see it, or `None`. The one rule for the feed
/// and the live socket: upserts are redacted by the policy; tombstones carry
/// no data and reach customers only for their own account's rows.
///
/// Staff with team access: a message shows with its conversation
/// (`in_conversation_scope` on the conversation's team and assignee); a
/// conversation that is outside their access after this change reaches them
/// as a removal (kind and id only), so a conversation moved to another team
/// leaves their desktop rather than staying there stale.
pub fn shape_change(viewer: &Viewer, raw: &RawChange) -> Result<Option<Change>> {
    Ok(shaped(viewer, raw, redact_text)?.map(|(op, row)| Change {
        seq: raw.seq,
        kind: raw.kind,
        id: raw.id,
        op,
        version: raw.version,
        row,
    }))
}

/// [`shape_change`]'s decision with the row shaped by `redact` (a map for
/// the feed, JSON text for the live socket, see `live::change_frame`):
/// `None` if `viewer` may not see the change, else the op they see (a
/// removal has no row).
pub fn shaped<T>(
    viewer: &Viewer,
    raw: &RawChange,
    redact: impl FnOnce(
        &Viewer,
        Kind,
        &str,
    ) -> std::result::Result<Option<T>, portico_model::policy::CorruptRow>,
) -> Result<Option<(ChangeOp, Option<T>)>> {
    let kind = raw.kind;
    let team_access = viewer.is_staff() && viewer.access == ConversationAccess::Teams;
    if team_access && kind == Kind::Message && raw.op == ChangeOp::Upsert {
        let (team, assignee) = raw.parent.unwrap_or((None, None));
        if !in_conversation_scope(viewer, team, assignee) {
            return Ok(None);
        }
    }
    match (&raw.op, &raw.row) {
        (ChangeOp::Upsert, Some(row)) => {
            let shaped = redact(viewer, kind, row).map_err(|e| PortalError::Corrupt {
                kind,
                source: e.source,
            })?;
            if shaped.is_none() && team_access && kind == Kind::Conversation {
                return Ok(Some((ChangeOp::Delete, None)));
            }
            Ok(shaped.map(|row| (ChangeOp::Upsert, Some(row))))
        }
        _ => {
            let own = viewer
                .account_id
                .is_some_and(|a| raw.account_id.as_deref() == Some(a.to_string().as_str()));
            Ok((viewer.is_staff() || own).then_some((ChangeOp::Delete, None)))
        }
    }
}

/// Reads up to `limit` change rows after `after`, keeping those the viewer
/// may see. Customers only ever scan their own account's rows, global ones,
/// and the community (public to every customer).
pub fn read_changes(
    c: &rusqlite::Connection,
    viewer: &Viewer,
    after: i64,
    limit: usize,
) -> Result<ChangesPage> {
    let scope = viewer
        .account_id
        .filter(|_| !viewer.is_staff())
        .map(|a| a.to_string());
    let mut raw = read_raw(c, after, limit + 1, scope.as_deref())?;
    let has_more = raw.len() > limit;
    raw.truncate(limit);
    let next_after = raw.last().map_or(after, |r| r.seq);
    let mut changes = Vec::new();
    for r in &raw {
        changes.extend(shape_change(viewer, r)?);
    }
    Ok(ChangesPage {
        protocol: portico_model::sync::SYNC_PROTOCOL,
        changes,
        next_after,
        has_more,
        last_mutation_id: None,
        resync: false,
    })
}

fn last_mutation(c: &rusqlite::Connection, user: UserId, client: uuid::Uuid) -> Result<u64> {
    Ok(c.query_row(
        "SELECT coalesce(max(mutation_id), 0) FROM client_mutations WHERE user_id = ?1 AND client_id = ?2",
        [user.to_string(), client.to_string()],
        |r| r.get(0),
    )?)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BootstrapQuery {
    kind: String,
    after_id: Option<uuid::Uuid>,
    limit: Option<usize>,
    snapshot: Option<i64>,
}

const MAX_BOOTSTRAP: usize = 5_000;

/// One keyset page of one kind, redacted for the viewer. The first call pins
/// the snapshot seq; the client pulls changes after it once every kind is in.
async fn bootstrap(
    State(st): State<AppState>,
    Auth(viewer): Auth,
    Query(q): Query<BootstrapQuery>,
) -> Result<Json<BootstrapPage<Box<RawValue>>>, ApiError> {
    let kind = Kind::parse(&q.kind).ok_or_else(|| {
        Invalid::new(
            "kind",
            format!(
                "{:?} is not a record kind, e.g. conversation or message",
                q.kind
            ),
        )
    })?;
    let limit = q.limit.unwrap_or(1_000);
    if limit == 0 || limit > MAX_BOOTSTRAP {
        return Err(Invalid::new("limit", format!("must be between 1 and {MAX_BOOTSTRAP}")).into());
    }
    let v = viewer.clone();
    let page = st
        .read(move |c| {
            let snapshot = match q.snapshot {
                Some(s) => s,
                None => c.query_row("SELECT coalesce(max(seq), 0) FROM change_log", [], |r| r.get(0))?,
            };
            let after = q.after_id.map(|u| u.to_string()).unwrap_or_default();
            // Customers scan their own account's rows, global ones and the
            // community; the policy then decides row by row.
            let account = v.account_id.filter(|_| !v.is_staff()).map(|a| a.to_string());
            let community = kind == Kind::CommunityPost;
            let scoped = format!(
                "SELECT id, data, NULL, NULL FROM {} WHERE id > ?1 AND (account_id = ?3 OR account_id IS NULL OR ?4)
                 ORDER BY id LIMIT ?2",
                kind.table()
            );
            let all = format!("SELECT id, data, NULL, NULL FROM {} WHERE id > ?1 ORDER BY id LIMIT ?2", kind.table());
            // Staff with team access see a message with its conversation.
            let team_access = v.is_staff() && v.access == ConversationAccess::Teams && kind == Kind::Message;
            let with_parent = "SELECT m.id, m.data, c.team_id, c.assignee_id FROM messages m
                 LEFT JOIN conversations c ON c.id = m.conversation_id WHERE m.id > ?1 ORDER BY m.id LIMIT ?2";
            let sql = match (&account, team_access) {
                (Some(_), _) => scoped.as_str(),
                (None, true) => with_parent,
                (None, false) => all.as_str(),
            };
            let mut stmt = c.prepare_cached(sql)?;
            let read_row = |r: &rusqlite::Row<'_>| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    parent_scope(r.get(2)?, r.get(3)?),
                ))
            };
            let rows: Vec<(String, String, ParentScope)> = match &account {
                Some(a) => stmt
                    .query_map(rusqlite::params![after, limit as i64, a, community], read_row)?
                    .collect::<Result<_, _>>()?,
                None => stmt.query_map(rusqlite::params![after, limit as i64], read_row)?.collect::<Result<_, _>>()?,
            };
            let mut out = Vec::new();
            let mut last = None;
            let mut scanned = 0;
            for (id, data, (team, assignee)) in rows {
                scanned += 1;
                if team_access && !in_conversation_scope(&v, team, assignee) {
                    last = Some(id);
                    continue;
                }
                // Shaped as text straight from the typed record: the same
                // fields as `redact_text`, without a map per row.
                let shaped = redact_text_json(&v, kind, &data).map_err(|e| PortalError::Corrupt { kind, source: e.source })?;
                if let Some(text) = shaped {
                    out.push(RawValue::from_string(text).map_err(|source| PortalError::Corrupt { kind, source })?);
                }
                last = Some(id);
            }
            Ok(BootstrapPage {
                protocol: SYNC_PROTOCOL,
                snapshot,
                kind,
                scope: portico_model::sync::scope_key(&v),
                rows: out,
                next_after_id: if scanned == limit { last } else { None },
            })
        })
        .await?;
    Ok(Json(page))
}

/// Applies pushed mutations in order, each at most once per (user, client,
/// mutation id). Each runs in its own transaction that also records its
/// outcome; a refused one is recorded as rejected in a second transaction,
/// so a replay gets the same answer and nothing half-applied remains.
async fn push(
    State(st): State<AppState>,
    Auth(viewer): Auth,
    Json(req): Json<PushRequest>,
) -> Result<Json<PushResponse>, ApiError> {
    if req.protocol != SYNC_PROTOCOL {
        return Err(PortalError::UnsupportedProtocol {
            got: req.protocol,
            want: SYNC_PROTOCOL,
        }
        .into());
    }
    if req.mutations.len() > MAX_PUSH {
        return Err(Invalid::new(
            "mutations",
            format!("push at most {MAX_PUSH} mutations at a time"),
        )
        .into());
    }
    if req.mutations.windows(2).any(|w| w[0].id >= w[1].id)
        || req.mutations.first().is_some_and(|m| m.id == 0)
    {
        return Err(Invalid::new(
            "mutations",
            "mutation ids start at 1 and increase within a push",
        )
        .into());
    }
    let mut results = Vec::with_capacity(req.mutations.len());
    for m in req.mutations {
        let (v, client, id) = (viewer.clone(), req.client_id, m.id);
        let op = m.op.clone();
        let first = st
            .write(crate::store::Actor::from(&viewer), move |w| {
                if let Some(stored) = stored_outcome(w, &v, client, id)? {
                    return Ok((stored, true));
                }
                apply_op(w, &v, op)?;
                record(w, &v, client, id, &Outcome::Applied)?;
                Ok((Outcome::Applied, false))
            })
            .await;
        let (outcome, duplicate) = match first {
            Ok(done) => done,
            Err(e) if e.status() >= 500 => return Err(e.into()),
            Err(e) => {
                let outcome = Outcome::Rejected {
                    code: e.code().to_owned(),
                    message: e.to_string(),
                };
                let v = viewer.clone();
                st.write(crate::store::Actor::from(&viewer), move |w| {
                    if let Some(stored) = stored_outcome(w, &v, client, id)? {
                        return Ok((stored, true));
                    }
                    record(w, &v, client, id, &outcome)?;
                    Ok((outcome, false))
                })
                .await?
            }
        };
        results.push(MutationResult {
            id,
            outcome,
            duplicate,
        });
    }
    let (v, client) = (viewer.clone(), req.client_id);
    let last_mutation_id = st
        .read(move |c| last_mutation(c, v.user_id, client))
        .await?;
    Ok(Json(PushResponse {
        protocol: SYNC_PROTOCOL,
        results,
        last_mutation_id,
    }))
}

fn stored_outcome(
    c: &rusqlite::Connection,
    v: &Viewer,
    client: uuid::Uuid,
    id: u64,
) -> Result<Option<Outcome>> {
    use rusqlite::OptionalExtension;
    let stored: Option<String> = c
        .query_row(
            "SELECT outcome FROM client_mutations WHERE user_id = ?1 AND client_id = ?2 AND mutation_id = ?3",
            rusqlite::params![v.user_id.to_string(), client.to_string(), id],
            |r| r.get(0),
        )
        .optional()?;
    Ok(stored.and_then(|s| serde_json::from_str(&s).ok()))
}

fn record(
    w: &crate::store::Writer<'_>,
    v: &Viewer,
    client: uuid::Uuid,
    id: u64,
    outcome: &Outcome,
) -> Result<()> {
    w.execute(
        "INSERT INTO client_mutations (user_id, client_id, mutation_id, outcome, at) VALUES (?1, ?2, ?3, ?4, ?5)",
        rusqlite::params![
            v.user_id.to_string(),
            client.to_string(),
            id,
            serde_json::to_string(outcome).expect("outcomes serialize"),
            w.at().to_string()
        ],
    )?;
    Ok(())
}

/// The same code paths as the HTTP API: a pushed mutation obeys every rule
/// a direct request does.
fn apply_op(w: &mut crate::store::Writer<'_>, v: &Viewer, op: MutationOp) -> Result<()> {
    use super::conversations::{apply_patch, post_in};
    let id = op.conversation_id().0;
    match op {
        MutationOp::Assign { assignee_id, .. } => {
            apply_patch(
                w,
                v,
                id,
                ConversationPatch {
                    assignee_id: Some(assignee_id),
                    ..Default::default()
                },
            )?;
        }
        MutationOp::SetStatus {
            status,
            snoozed_until,
            if_version,
            ..
        } => {
            let p = ConversationPatch {
                status: Some(status),
                snoozed_until: snoozed_until.map(Some),
                if_version,
                ..Default::default()
            };
            apply_patch(w, v, id, p)?;
        }
        MutationOp::SetPriority { priority, .. } => {
            apply_patch(
                w,
                v,
                id,
                ConversationPatch {
                    priority: Some(priority),
                    ..Default::default()
                },
            )?;
        }
        MutationOp::AddTags { tags, .. } => {
            apply_patch(
                w,
                v,
                id,
                ConversationPatch {
                    add_tags: tags,
                    ..Default::default()
                },
            )?;
        }
        MutationOp::RemoveTags { tags, .. } => {
            apply_patch(
                w,
                v,
                id,
                ConversationPatch {
                    remove_tags: tags,
                    ..Default::default()
                },
            )?;
        }
        MutationOp::Reply {
            message_id, body, ..
        } => {
            post_in(
                w,
                v,
                id,
                NewMessage {
                    id: Some(message_id),
                    internal: false,
                    body,
                    mentions: vec![],
                },
            )?;
        }
        MutationOp::Note {
            message_id,
            body,
            mentions,
            ..
        } => {
            post_in(
                w,
                v,
                id,
                NewMessage {
                    id: Some(message_id),
                    internal: true,
                    body,
                    mentions,
                },
            )?;
        }
        MutationOp::ApproveDraft {
            draft_id,
            message_id,
            body,
            run_actions,
            if_version,
            ..
        } => {
            let approve = drafts::Approve {
                body: Some(body),
                run_actions: run_actions.into_iter().map(|i| i as usize).collect(),
                if_version,
                message_id: Some(message_id),
            };
            let (d, _) = drafts::approve(w, v, draft_id, approve)?;
            same_conversation(&d, id)?;
        }
        MutationOp::RejectDraft {
            draft_id,
            reason,
            if_version,
            ..
        } => {
            let reject = drafts::Reject { reason, if_version };
            let d = drafts::reject(w, v, draft_id, reject)?;
            same_conversation(&d, id)?;
        }
    }
    Ok(())
}

/// A draft reviewed through a push must be of the conversation the push
/// names (the desktop files its outbox by conversation); otherwise the
/// whole write is rolled back, as if the draft did not exist.
fn same_conversation(d: &portico_model::Draft, conversation: uuid::Uuid) -> Result<()> {
    if d.conversation_id.0 != conversation {
        return Err(PortalError::not_found(portico_model::Kind::Draft, d.id));
    }
    Ok(())
}
