//! AI drafts for review on the desktop: listed from the mirror (drafts are
//! records, synced like any other), shown with what they cite, and
//! approved (as written or edited) or rejected through the outbox, so a
//! review works offline and reaches the server exactly once.
//!
//! A review queued here and not yet confirmed takes the draft out of the
//! "to review" list at once and, for an approval, shows the reply in the
//! thread marked pending (the outbox overlay). A review the server refuses
//! (someone else reviewed it first, an action the reviewer may not run)
//! puts the draft back and is listed among the rejections with the reason.

use std::collections::HashMap;

use portico_model::sync::MutationOp;
use portico_model::{ConversationId, Draft, DraftId, DraftState, Invalid, Kind, MessageId};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use crate::engine::{Engine, Queued, Result, mint_uuid};
use crate::mirror::MirrorError;

/// A review queued on this desktop, not yet confirmed by the server.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum QueuedReview {
    Approved,
    Rejected,
}

/// A passage the draft cites, and whether this desktop can open it.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Citation {
    /// The `[n]` marker in the draft's text.
    pub n: u32,
    pub kind: Kind,
    pub id: uuid::Uuid,
    pub title: String,
    /// The cited record is in the local store (articles are mirrored), so
    /// it opens offline.
    pub available: bool,
}

/// One draft as the reviewer sees it.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DraftView {
    pub draft: Draft,
    /// Set while a review made here is on its way to the server.
    pub queued: Option<QueuedReview>,
    /// The conversation's subject, when it is mirrored.
    pub subject: Option<String>,
    pub account_name: Option<String>,
    pub citations: Vec<Citation>,
}

/// Drafts with a review queued (or applied and not pulled yet) here.
fn queued_reviews(conn: &Connection) -> Result<HashMap<DraftId, QueuedReview>, MirrorError> {
    let mut stmt = conn.prepare_cached(
        "SELECT op ->> '$.draft_id', op ->> '$.type' FROM outbox
          WHERE state IN ('pending', 'applied')
            AND op ->> '$.type' IN ('approve_draft', 'reject_draft')",
    )?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
    let mut out = HashMap::new();
    for row in rows {
        let (id, op) = row?;
        let Ok(id) = id.parse() else { continue };
        let review = if op == "approve_draft" {
            QueuedReview::Approved
        } else {
            QueuedReview::Rejected
        };
        out.insert(DraftId(id), review);
    }
    Ok(out)
}

fn view_of(
    conn: &Connection,
    draft: Draft,
    queued: &HashMap<DraftId, QueuedReview>,
) -> Result<DraftView, MirrorError> {
    let (subject, account_name) = conn
        .prepare_cached(
            "SELECT (SELECT data ->> '$.subject' FROM records WHERE kind = 'conversation' AND id = ?1),
                    (SELECT data ->> '$.name' FROM records WHERE kind = 'account' AND id = ?2)",
        )?
        .query_row(
            params![draft.conversation_id.to_string(), draft.account_id.to_string()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
    let mut citations = Vec::with_capacity(draft.sources.len());
    for s in &draft.sources {
        let available = conn
            .prepare_cached("SELECT 1 FROM records WHERE kind = ?1 AND id = ?2")?
            .exists(params![s.kind.as_str(), s.id.to_string()])?;
        citations.push(Citation {
            n: s.n,
            kind: s.kind,
            id: s.id,
            title: s.title.clone(),
            available,
        });
    }
    Ok(DraftView {
        queued: queued.get(&draft.id).copied(),
        draft,
        subject,
        account_name,
        citations,
    })
}

fn parse(data: &str) -> Result<Draft, MirrorError> {
    serde_json::from_str(data).map_err(|_| MirrorError::Corrupt("draft"))
}

impl Engine {
    /// Drafts waiting for review, newest first: pending on the server and
    /// not reviewed here yet.
    pub fn drafts_to_review(&self, limit: usize) -> Result<Vec<DraftView>> {
        let db = self.inner.db();
        let conn = db.mirror.conn();
        let queued = queued_reviews(conn)?;
        let mut stmt = conn.prepare_cached(
            "SELECT data FROM records
              WHERE kind = 'draft' AND data ->> '$.state' = 'pending'
              ORDER BY id DESC",
        )?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        let mut out = Vec::new();
        for data in rows {
            let draft = parse(&data?)?;
            if queued.contains_key(&draft.id) {
                continue;
            }
            out.push(view_of(conn, draft, &queued)?);
            if out.len() >= limit.clamp(1, crate::query::MAX_PAGE) {
                break;
            }
        }
        Ok(out)
    }

    /// The drafts of one conversation still to review, oldest first, with a
    /// review queued here shown as such.
    pub fn conversation_drafts(&self, conversation: ConversationId) -> Result<Vec<DraftView>> {
        let db = self.inner.db();
        let conn = db.mirror.conn();
        let queued = queued_reviews(conn)?;
        let mut stmt = conn.prepare_cached(
            "SELECT data FROM records
              WHERE kind = 'draft' AND data ->> '$.conversation_id' = ?1
                AND data ->> '$.state' = 'pending'
              ORDER BY id",
        )?;
        let rows = stmt.query_map([conversation.to_string()], |r| r.get::<_, String>(0))?;
        let mut out = Vec::new();
        for data in rows {
            out.push(view_of(conn, parse(&data?)?, &queued)?);
        }
        Ok(out)
    }

    /// Approves a draft: `body` (the reviewer's edit, or `None` for the
    /// draft as written) is sent as my reply, and the proposed actions at
    /// `run_actions` run, nothing else. Guarded by the version reviewed: if
    /// someone changed or reviewed the draft since, the server refuses and
    /// the refusal is listed with its reason.
    pub fn approve_draft(
        &self,
        id: DraftId,
        body: Option<String>,
        run_actions: Vec<u32>,
    ) -> Result<Queued> {
        let draft = self.reviewable(id)?;
        if let Some(i) = run_actions
            .iter()
            .find(|i| **i as usize >= draft.actions.len())
        {
            return Err(Invalid::new(
                "run_actions",
                format!(
                    "the draft proposes {} actions; there is no action {i}",
                    draft.actions.len()
                ),
            )
            .into());
        }
        self.enqueue(MutationOp::ApproveDraft {
            conversation_id: draft.conversation_id,
            draft_id: id,
            message_id: MessageId(mint_uuid(self.inner.clock.as_ref())),
            body: body.unwrap_or(draft.body),
            run_actions,
            if_version: Some(draft.version),
        })
    }

    /// Rejects a draft with the reviewer's reason; nothing is sent.
    pub fn reject_draft(&self, id: DraftId, reason: impl Into<String>) -> Result<Queued> {
        let draft = self.reviewable(id)?;
        self.enqueue(MutationOp::RejectDraft {
            conversation_id: draft.conversation_id,
            draft_id: id,
            reason: reason.into(),
            if_version: Some(draft.version),
        })
    }

    /// A mirrored draft still to review here, or why not.
    fn reviewable(&self, id: DraftId) -> Result<Draft> {
        let db = self.inner.db();
        let conn = db.mirror.conn();
        let data: Option<String> = conn
            .prepare_cached("SELECT data FROM records WHERE kind = 'draft' AND id = ?1")?
            .query_row([id.to_string()], |r| r.get(0))
            .optional()?;
        let Some(data) = data else {
            return Err(Invalid::new("draft", "this draft is not in the local store").into());
        };
        let draft = parse(&data)?;
        if draft.state != DraftState::Pending {
            return Err(Invalid::new(
                "draft",
                format!("the draft is already {}", draft.state.as_str()),
            )
            .into());
        }
        if queued_reviews(conn)?.contains_key(&id) {
            return Err(Invalid::new("draft", "you already reviewed this draft").into());
        }
        Ok(draft)
    }
}
