//! What the inbox screens read, as the person should see it: the mirror's
//! lists and records with this desktop's unconfirmed edits applied, so a
//! triage action shows at once in every list and pane, online or not.

use std::collections::HashSet;

use portico_model::{Alert, ConversationId, UserId};
use rusqlite::OptionalExtension;
use serde::Serialize;
use serde_json::Value;

use crate::drafts::DraftView;
use crate::engine::{Engine, EngineError, LocalRecord, Result};
use crate::mirror::MirrorError;
use crate::query::{self, AccountSummary, ConversationRow, InboxQuery, Mention};
use crate::search::{self, Hit, SearchQuery};

/// One conversation opened: the record and messages with local edits, and
/// what the side panel shows about its account.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConversationDetail {
    pub conversation: LocalRecord,
    /// Oldest first; replies and notes not on the server yet are `pending`.
    pub messages: Vec<LocalRecord>,
    /// `None` if the account is not mirrored.
    pub account: Option<AccountSummary>,
    /// AI drafts of replies waiting for review, oldest first.
    pub drafts: Vec<DraftView>,
}

impl Engine {
    /// A page of a conversation list with local edits applied: a row an
    /// edit moved out of the list (resolved, reassigned) is gone, a row an
    /// edit moved in (assigned to me offline) is there, in sort order.
    pub fn inbox(&self, q: &InboxQuery) -> Result<Vec<ConversationRow>> {
        let edited = self.edited_conversations()?;
        let (mut rows, my_teams) = {
            let db = self.inner.db();
            (
                query::inbox(&db.mirror, q)?,
                query::teams_of(&db.mirror, q.me)?,
            )
        };
        if edited.is_empty() {
            return Ok(rows);
        }
        let limit = q.limit.clamp(1, query::MAX_PAGE);
        let full = rows.len() >= limit;
        let mut kept = Vec::with_capacity(rows.len());
        for mut row in rows.drain(..) {
            if edited.contains(&row.conversation.id) {
                let Some(c) = self.overlaid(row.conversation.id)? else {
                    continue;
                };
                row.overlay(c);
                if !q.admits(&row.conversation, row.plan.as_deref(), &my_teams) {
                    continue;
                }
            }
            kept.push(row);
        }
        let present: HashSet<ConversationId> = kept.iter().map(|r| r.conversation.id).collect();
        for id in edited.iter().filter(|id| !present.contains(id)) {
            let Some(c) = self.overlaid(*id)? else {
                continue;
            };
            let Some(mut row) = query::row_of(self.inner.db().mirror.conn(), *id)? else {
                continue;
            };
            row.overlay(c);
            if !q.admits(&row.conversation, row.plan.as_deref(), &my_teams) || !q.after_bound(&row)
            {
                continue;
            }
            // On a full page, a row sorting after its last row belongs to a
            // later page.
            if full
                && let Some(last) = kept.last()
                && q.order(&row, last).is_gt()
            {
                continue;
            }
            kept.push(row);
        }
        kept.sort_by(|a, b| q.order(a, b));
        kept.truncate(limit);
        Ok(kept)
    }

    /// Opens a conversation: record and messages with local edits, and the
    /// account summary. `None` if it is not mirrored.
    pub fn open_conversation(&self, id: ConversationId) -> Result<Option<ConversationDetail>> {
        let Some(conversation) = self.conversation(id)? else {
            return Ok(None);
        };
        let messages = self.messages(id)?;
        let account = {
            let db = self.inner.db();
            query::conversation(&db.mirror, id)?.and_then(|v| v.account)
        };
        let drafts = self.conversation_drafts(id)?;
        Ok(Some(ConversationDetail {
            conversation,
            messages,
            account,
            drafts,
        }))
    }

    /// The newest reply to the customer someone else sent in `conversation`
    /// after the message `seen` (the last one the person had in front of
    /// them when they started writing), if any: sending then would answer
    /// twice, so the desk asks first. Server-known messages only: a reply
    /// queued here is mine.
    pub fn answered_since(
        &self,
        conversation: ConversationId,
        seen: Option<portico_model::MessageId>,
        me: UserId,
    ) -> Result<Option<portico_model::Message>> {
        let db = self.inner.db();
        let data: Option<String> = db
            .mirror
            .conn()
            .prepare_cached(
                "SELECT data FROM records
                  WHERE kind = 'message' AND conversation_id = ?1 AND id > ?2
                    AND data ->> '$.kind' = 'agent'
                    AND coalesce(data ->> '$.author_id', '') <> ?3
                  ORDER BY id DESC LIMIT 1",
            )?
            .query_row(
                rusqlite::params![
                    conversation.to_string(),
                    seen.map(|m| m.to_string()).unwrap_or_default(),
                    me.to_string()
                ],
                |r| r.get(0),
            )
            .optional()?;
        data.map(|d| serde_json::from_str(&d).map_err(|_| MirrorError::Corrupt("message").into()))
            .transpose()
    }

    /// Internal notes mentioning `me`, newest first.
    pub fn mentions(&self, me: UserId, limit: usize) -> Result<Vec<Mention>> {
        Ok(query::mentions(&self.inner.db().mirror, me, limit)?)
    }

    /// Alerts for `me` on key accounts, unread first.
    pub fn key_account_alerts(&self, me: UserId, limit: usize) -> Result<Vec<Alert>> {
        Ok(query::key_account_alerts(
            &self.inner.db().mirror,
            me,
            limit,
        )?)
    }

    /// Offline full-text search over the mirror.
    pub fn search(&self, q: &SearchQuery) -> Result<Vec<Hit>> {
        Ok(search::search(&self.inner.db().mirror, q)?)
    }

    /// Staff members in the mirror (for the assignee and mention pickers),
    /// by name.
    pub fn staff(&self) -> Result<Vec<portico_model::User>> {
        let db = self.inner.db();
        let mut stmt = db.mirror.conn().prepare_cached(
            "SELECT data FROM records WHERE kind = 'user' AND kind <> 'message' AND account_id IS NULL
              ORDER BY data ->> '$.name'",
        )?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        let mut out = Vec::new();
        for data in rows {
            out.push(serde_json::from_str(&data?).map_err(|_| MirrorError::Corrupt("user"))?);
        }
        Ok(out)
    }

    /// Conversations with queued or unpulled edits.
    fn edited_conversations(&self) -> Result<Vec<ConversationId>> {
        let db = self.inner.db();
        let mut stmt = db.mirror.conn().prepare_cached(
            "SELECT DISTINCT conversation_id FROM outbox WHERE state IN ('pending', 'applied')",
        )?;
        let ids = stmt
            .query_map([], |r| r.get::<_, String>(0))?
            .filter_map(|r| r.ok().and_then(|s| s.parse().ok()))
            .collect();
        Ok(ids)
    }

    /// A conversation with local edits, typed.
    fn overlaid(&self, id: ConversationId) -> Result<Option<portico_model::Conversation>> {
        let Some(local) = self.conversation(id)? else {
            return Ok(None);
        };
        serde_json::from_value(Value::Object(local.data))
            .map(Some)
            .map_err(|e| EngineError::Local(format!("conversation {id} with local edits: {e}")))
    }
}
