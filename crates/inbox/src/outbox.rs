//! The outbox: changes made on this desktop, possibly offline, queued for the
//! server, and the optimistic overlay they produce.
//!
//! Server rows in `records` are never edited locally. What the person sees is
//! the server row with the outbox's *live* mutations (`pending`, and
//! `applied` ones whose effect a pull has not brought yet) applied in id
//! order, recomputed on every read. So confirming, rejecting or reverting a
//! mutation only changes its outbox row, and a refused edit cannot leave a
//! trace in the mirror. See `migrations/inbox/0003_outbox.sql` for the states.
//!
//! Every function here works on a connection or transaction the caller holds,
//! so the engine decides what commits together.

use jiff::Timestamp;
use portico_model::sync::{Mutation, MutationOp, MutationResult, Outcome};
use portico_model::{ConversationId, ConversationStatus, MessageId};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use serde_json::{Map, Value};

/// Where a queued mutation stands; mirrors the `state` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum EntryState {
    /// Queued; shown in the overlay; pushed next.
    Pending,
    /// The server applied it; shown until a pull brings its effect.
    Applied,
    /// The server processed it but this client lost the answer; hidden from
    /// the overlay and pushed again so the replay tells the outcome.
    Processed,
    /// Refused; hidden from the overlay; listed until acknowledged.
    Rejected,
}

impl EntryState {
    fn as_str(self) -> &'static str {
        match self {
            EntryState::Pending => "pending",
            EntryState::Applied => "applied",
            EntryState::Processed => "processed",
            EntryState::Rejected => "rejected",
        }
    }

    fn parse(s: &str) -> Option<EntryState> {
        [
            EntryState::Pending,
            EntryState::Applied,
            EntryState::Processed,
            EntryState::Rejected,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }
}

/// A mutation the server refused, kept for the person until they acknowledge
/// it: an edit is never reverted silently.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejection {
    pub mutation_id: u64,
    pub conversation_id: ConversationId,
    pub op: MutationOp,
    /// The server's stable code, e.g. `version_conflict` or `not_found`.
    pub code: String,
    /// The server's explanation, for the person.
    pub message: String,
    pub created_at: Timestamp,
}

/// One outbox row as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub id: u64,
    pub op: MutationOp,
    pub state: EntryState,
    pub code: Option<String>,
    pub message: Option<String>,
    pub created_at: Timestamp,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum OutboxError {
    #[error("local database failed: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("outbox row {0} is unreadable: {1}")]
    Corrupt(u64, String),
}

type Result<T, E = OutboxError> = std::result::Result<T, E>;

fn state_get(conn: &Connection, key: &str) -> Result<Option<String>> {
    Ok(conn
        .query_row("SELECT value FROM sync_state WHERE key = ?1", [key], |r| {
            r.get(0)
        })
        .optional()?)
}

fn state_set(conn: &Connection, key: &str, value: &str) -> Result<()> {
    conn.execute(
        "INSERT INTO sync_state (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        params![key, value],
    )?;
    Ok(())
}

/// This installation's client id, minting it (with `mint`) on first use. It
/// is stored once, in sync_state, and survives rebuilds: with the mutation id
/// it is the idempotency key, so a new one would let a replay apply twice.
pub(crate) fn client_id(
    conn: &Connection,
    mint: impl FnOnce() -> uuid::Uuid,
) -> Result<uuid::Uuid> {
    if let Some(v) = state_get(conn, "client_id")?
        && let Ok(id) = v.parse()
    {
        return Ok(id);
    }
    let id = mint();
    state_set(conn, "client_id", &id.to_string())?;
    Ok(id)
}

/// The highest mutation id minted here (or reported processed by the server).
pub(crate) fn last_mutation_id(conn: &Connection) -> Result<u64> {
    Ok(state_get(conn, "last_mutation_id")?
        .and_then(|v| v.parse().ok())
        .unwrap_or(0))
}

/// Raises the mutation-id counter to at least `n`. Called with the server's
/// `last_mutation_id`: if this file ever fell behind (restored from a backup),
/// new mutations must not reuse ids the server already answered for.
pub(crate) fn raise_counter(conn: &Connection, n: u64) -> Result<()> {
    if n > last_mutation_id(conn)? {
        state_set(conn, "last_mutation_id", &n.to_string())?;
    }
    Ok(())
}

/// Queues `op` with the next mutation id. The caller's transaction makes the
/// queued row and the overlay (derived from it) appear together.
pub(crate) fn enqueue(conn: &Connection, op: &MutationOp, at: Timestamp) -> Result<u64> {
    let id = last_mutation_id(conn)? + 1;
    state_set(conn, "last_mutation_id", &id.to_string())?;
    conn.execute(
        "INSERT INTO outbox (id, conversation_id, op, state, created_at) VALUES (?1, ?2, ?3, 'pending', ?4)",
        params![
            id,
            op.conversation_id().to_string(),
            serde_json::to_string(op).expect("mutations serialize"),
            at.to_string()
        ],
    )?;
    Ok(id)
}

fn read_entry(r: &rusqlite::Row<'_>) -> rusqlite::Result<SavedRow> {
    Ok(SavedRow {
        id: r.get(0)?,
        conversation_id: String::new(),
        op: r.get(1)?,
        state: r.get(2)?,
        code: r.get(3)?,
        message: r.get(4)?,
        created_at: r.get(5)?,
    })
}

fn parse_entry(raw: SavedRow) -> Result<Entry> {
    let id = raw.id;
    let op = serde_json::from_str(&raw.op).map_err(|e| OutboxError::Corrupt(id, e.to_string()))?;
    let state = EntryState::parse(&raw.state)
        .ok_or_else(|| OutboxError::Corrupt(id, format!("state {:?}", raw.state)))?;
    let created_at = raw
        .created_at
        .parse()
        .map_err(|e: jiff::Error| OutboxError::Corrupt(id, e.to_string()))?;
    Ok(Entry {
        id,
        op,
        state,
        code: raw.code,
        message: raw.message,
        created_at,
    })
}

fn entries(conn: &Connection, filter: &str, args: impl rusqlite::Params) -> Result<Vec<Entry>> {
    entries_limited(conn, filter, i64::MAX, args)
}

/// Outbox rows matching `filter` (with `args` as ?1…), in id order, at most
/// `limit` of them.
fn entries_limited(
    conn: &Connection,
    filter: &str,
    limit: i64,
    args: impl rusqlite::Params,
) -> Result<Vec<Entry>> {
    let sql = format!(
        "SELECT id, op, state, code, message, created_at FROM outbox WHERE {filter} ORDER BY id LIMIT {limit}"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(args, read_entry)?;
    let mut out = Vec::new();
    for row in rows {
        out.push(parse_entry(row?)?);
    }
    Ok(out)
}

/// The mutations that shape what the person sees of `conversation`, in the
/// order they were made: queued ones and applied ones not yet pulled.
pub(crate) fn live_ops(conn: &Connection, conversation: ConversationId) -> Result<Vec<Entry>> {
    entries(
        conn,
        "conversation_id = ?1 AND state IN ('pending', 'applied')",
        [conversation.to_string()],
    )
}

/// The next mutations to push, in id order: queued ones, and processed ones
/// whose outcome this client still has to learn (their replay tells it).
pub(crate) fn to_push(conn: &Connection, limit: usize) -> Result<Vec<Mutation>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    Ok(
        entries_limited(conn, "state IN ('pending', 'processed')", limit, [])?
            .into_iter()
            .map(|e| Mutation { id: e.id, op: e.op })
            .collect(),
    )
}

/// Mutations the server has not confirmed yet (queued or outcome unknown).
pub(crate) fn pending_count(conn: &Connection) -> Result<u64> {
    Ok(conn.query_row(
        "SELECT count(*) FROM outbox WHERE state IN ('pending', 'processed')",
        [],
        |r| r.get(0),
    )?)
}

/// What recording push results changed, for the engine's events.
#[derive(Debug, Default)]
pub(crate) struct Recorded {
    pub applied: Vec<u64>,
    pub rejected: Vec<Rejection>,
    pub duplicates: usize,
    pub conversations: Vec<ConversationId>,
}

/// Records the server's answers. Applied mutations stay in the overlay until
/// a pull brings their effect (so the view never flickers back to the old
/// server row); rejected ones leave the overlay (the edit is reverted) and
/// are kept as rejections. An answer for an id no longer queued changes
/// nothing, so recording the same answer twice is harmless.
pub(crate) fn record_results(conn: &Connection, results: &[MutationResult]) -> Result<Recorded> {
    let mut out = Recorded::default();
    for r in results {
        if r.duplicate {
            out.duplicates += 1;
        }
        let Some(entry) = entries(
            conn,
            "id = ?1 AND state IN ('pending', 'processed')",
            [r.id],
        )?
        .pop() else {
            continue;
        };
        match &r.outcome {
            Outcome::Applied => {
                conn.execute("UPDATE outbox SET state = 'applied' WHERE id = ?1", [r.id])?;
                out.applied.push(r.id);
            }
            Outcome::Rejected { code, message } => {
                conn.execute(
                    "UPDATE outbox SET state = 'rejected', code = ?2, message = ?3 WHERE id = ?1",
                    params![r.id, code, message],
                )?;
                out.rejected.push(Rejection {
                    mutation_id: r.id,
                    conversation_id: entry.op.conversation_id(),
                    op: entry.op.clone(),
                    code: code.clone(),
                    message: message.clone(),
                    created_at: entry.created_at,
                });
            }
        }
        let conv = entry.op.conversation_id();
        if !out.conversations.contains(&conv) {
            out.conversations.push(conv);
        }
    }
    Ok(out)
}

/// After a pull that drained the feed: the effect of every applied mutation
/// is now in the mirror, so they are dropped; queued mutations at or below
/// the server's `last_mutation_id` were processed by the server (the answer
/// got lost) and leave the overlay until a replay tells their outcome; they
/// are never dropped here, because one of them may have been rejected.
/// Returns the conversations whose view changed.
pub(crate) fn confirm_pulled(
    conn: &Connection,
    last_mutation_id: Option<u64>,
) -> Result<Vec<ConversationId>> {
    let mut touched: Vec<ConversationId> = entries(conn, "state = 'applied'", [])?
        .into_iter()
        .map(|e| e.op.conversation_id())
        .collect();
    conn.execute("DELETE FROM outbox WHERE state = 'applied'", [])?;
    if let Some(last) = last_mutation_id {
        for e in entries(conn, "state = 'pending' AND id <= ?1", [last])? {
            touched.push(e.op.conversation_id());
        }
        conn.execute(
            "UPDATE outbox SET state = 'processed' WHERE state = 'pending' AND id <= ?1",
            [last],
        )?;
        raise_counter(conn, last)?;
    }
    touched.sort();
    touched.dedup();
    Ok(touched)
}

/// Whether any mutation waits for a replay to learn its outcome.
pub(crate) fn has_processed(conn: &Connection) -> Result<bool> {
    Ok(conn
        .query_row(
            "SELECT 1 FROM outbox WHERE state = 'processed' LIMIT 1",
            [],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

/// Refused mutations not yet acknowledged, oldest first.
pub(crate) fn rejections(conn: &Connection) -> Result<Vec<Rejection>> {
    Ok(entries(conn, "state = 'rejected'", [])?
        .into_iter()
        .map(|e| Rejection {
            mutation_id: e.id,
            conversation_id: e.op.conversation_id(),
            op: e.op,
            code: e.code.unwrap_or_default(),
            message: e.message.unwrap_or_default(),
            created_at: e.created_at,
        })
        .collect())
}

/// The person has seen a rejection: forget it. False when there is none.
pub(crate) fn acknowledge(conn: &Connection, mutation_id: u64) -> Result<bool> {
    Ok(conn.execute(
        "DELETE FROM outbox WHERE id = ?1 AND state = 'rejected'",
        [mutation_id],
    )? > 0)
}

/// One outbox row copied verbatim out of a store being replaced.
#[derive(Debug, Clone)]
pub(crate) struct SavedRow {
    id: u64,
    conversation_id: String,
    op: String,
    state: String,
    code: Option<String>,
    message: Option<String>,
    created_at: String,
}

/// The outbox and identity copied out of a store that is about to be
/// replaced, to be written into the new one.
#[derive(Debug, Default, Clone)]
pub(crate) struct Saved {
    pub client_id: Option<String>,
    pub last_mutation_id: u64,
    pub rows: Vec<SavedRow>,
    /// True when reading stopped early on damage: some rows may be lost.
    pub incomplete: bool,
}

/// Copies the outbox out of `conn`, best effort: a damaged store yields the
/// rows that can still be read and says whether reading stopped early.
pub(crate) fn save(conn: &Connection) -> Saved {
    let get = |key: &str| -> Option<String> {
        conn.query_row("SELECT value FROM sync_state WHERE key = ?1", [key], |r| {
            r.get(0)
        })
        .ok()
    };
    let mut saved = Saved {
        client_id: get("client_id"),
        last_mutation_id: get("last_mutation_id")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
        ..Saved::default()
    };
    let read = (|| -> rusqlite::Result<()> {
        let mut stmt = conn.prepare(
            "SELECT id, conversation_id, op, state, code, message, created_at FROM outbox ORDER BY id",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            saved.rows.push(SavedRow {
                id: r.get(0)?,
                conversation_id: r.get(1)?,
                op: r.get(2)?,
                state: r.get(3)?,
                code: r.get(4)?,
                message: r.get(5)?,
                created_at: r.get(6)?,
            });
        }
        Ok(())
    })();
    if let Err(e) = read {
        tracing::warn!(error = %e, kept = saved.rows.len(), "outbox only partly readable");
        saved.incomplete = true;
    }
    if let Some(max) = saved.rows.iter().map(|r| r.id).max() {
        saved.last_mutation_id = saved.last_mutation_id.max(max);
    }
    saved
}

/// Writes a saved outbox and identity into a fresh store.
pub(crate) fn restore(conn: &Connection, saved: &Saved) -> Result<()> {
    if let Some(id) = &saved.client_id {
        state_set(conn, "client_id", id)?;
    }
    if saved.last_mutation_id > 0 {
        state_set(
            conn,
            "last_mutation_id",
            &saved.last_mutation_id.to_string(),
        )?;
    }
    for r in &saved.rows {
        conn.execute(
            "INSERT OR IGNORE INTO outbox (id, conversation_id, op, state, code, message, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![r.id, r.conversation_id, r.op, r.state, r.code, r.message, r.created_at],
        )?;
    }
    Ok(())
}

/// Applies one mutation to a conversation row as the server would, so the
/// person sees the edit before the server confirms it. `message_on_server`
/// says whether a reply or note already arrived by pull (then it is counted
/// by the server row already).
pub(crate) fn apply_to_conversation(
    row: &mut Map<String, Value>,
    op: &MutationOp,
    at: Timestamp,
    message_on_server: bool,
) {
    match op {
        MutationOp::Assign { assignee_id, .. } => {
            row.insert("assignee_id".into(), json(assignee_id));
        }
        MutationOp::SetStatus {
            status,
            snoozed_until,
            ..
        } => {
            row.insert("status".into(), json(status));
            if *status != ConversationStatus::Snoozed {
                row.insert("snoozed_until".into(), Value::Null);
            }
            if snoozed_until.is_some() {
                row.insert("snoozed_until".into(), json(snoozed_until));
            }
        }
        MutationOp::SetPriority { priority, .. } => {
            row.insert("priority".into(), json(priority));
        }
        MutationOp::AddTags { tags, .. } => {
            let mut current = tag_list(row);
            for t in tags {
                if !current.contains(t) {
                    current.push(t.clone());
                }
            }
            row.insert("tags".into(), json(&current));
        }
        MutationOp::RemoveTags { tags, .. } => {
            let mut current = tag_list(row);
            current.retain(|t| !tags.contains(t));
            row.insert("tags".into(), json(&current));
        }
        MutationOp::RejectDraft { .. } => {}
        MutationOp::Reply { .. } | MutationOp::Note { .. } | MutationOp::ApproveDraft { .. } => {
            if !message_on_server {
                let count = row
                    .get("message_count")
                    .and_then(Value::as_u64)
                    .unwrap_or(0);
                row.insert("message_count".into(), Value::from(count + 1));
                row.insert("last_message_at".into(), json(&at));
            }
        }
    }
}

fn tag_list(row: &Map<String, Value>) -> Vec<String> {
    row.get("tags")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|t| t.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The message a queued reply or note will become, shaped like the server's
/// row so the thread shows it (marked pending) before the server has it.
pub(crate) fn pending_message(
    op: &MutationOp,
    account_id: Option<&Value>,
    at: Timestamp,
) -> Option<(MessageId, Map<String, Value>)> {
    let (conversation_id, message_id, body, kind, mentions) = match op {
        MutationOp::Reply {
            conversation_id,
            message_id,
            body,
        } => (conversation_id, message_id, body, "agent", &Vec::new()),
        MutationOp::Note {
            conversation_id,
            message_id,
            body,
            mentions,
        } => (conversation_id, message_id, body, "internal_note", mentions),
        MutationOp::ApproveDraft {
            conversation_id,
            message_id,
            body,
            ..
        } => (conversation_id, message_id, body, "agent", &Vec::new()),
        _ => return None,
    };
    let mut m = Map::new();
    m.insert("id".into(), Value::from(message_id.to_string()));
    m.insert(
        "conversation_id".into(),
        Value::from(conversation_id.to_string()),
    );
    if let Some(a) = account_id {
        m.insert("account_id".into(), a.clone());
    }
    m.insert("kind".into(), Value::from(kind));
    m.insert("author_id".into(), Value::Null);
    m.insert("author_name".into(), Value::from(""));
    m.insert("body".into(), Value::from(body.clone()));
    m.insert(
        "mentions".into(),
        serde_json::to_value(mentions).expect("ids serialize"),
    );
    m.insert("version".into(), Value::from(0));
    m.insert("created_at".into(), Value::from(at.to_string()));
    m.insert("updated_at".into(), Value::from(at.to_string()));
    Some((*message_id, m))
}

/// A field value for the overlay (every field type serializes infallibly).
fn json<T: Serialize + ?Sized>(v: &T) -> Value {
    serde_json::to_value(v).expect("overlay values serialize")
}
