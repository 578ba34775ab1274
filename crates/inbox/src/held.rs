//! Held senders (email channel): mail from an address no account claims is
//! held on the server, not turned into a conversation. Staff list those
//! senders and link one to an account; the held mail then becomes
//! conversations there, which reach this desktop through sync like any
//! other. Both are online-only: the held mail is on the server and is not
//! mirrored (it belongs to no account, so no sync scope covers it). Picking
//! the account reads the local store, so it works offline too.

use portico_model::email::HeldContact;
use portico_model::{Account, AccountId, ConversationId, Kind};
use serde::{Deserialize, Serialize};

use crate::engine::{Engine, EngineError, Result};

/// Most accounts a name search answers.
pub const MAX_ACCOUNT_MATCHES: usize = 50;

/// What linking a held sender did.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Linked {
    pub account_id: AccountId,
    /// The conversations the held mail became (replies to each other's
    /// mail join one), oldest first. They reach the inbox with the next sync.
    pub conversations: Vec<ConversationId>,
}

#[derive(Deserialize)]
struct Items<T> {
    items: Vec<T>,
}

#[derive(Deserialize)]
struct Placed {
    placed: Vec<PlacedMail>,
}

#[derive(Deserialize)]
struct PlacedMail {
    conversation_id: Option<ConversationId>,
}

impl Engine {
    /// The held senders, newest first, from the server (staff only: the
    /// server refuses anyone else).
    pub async fn held_contacts(&self) -> Result<Vec<HeldContact>> {
        let page: Items<HeldContact> = self
            .inner
            .api
            .get("/v1/mail/contacts", "the held senders")
            .await?;
        Ok(page.items)
    }

    /// Links the held sender `contact` to `account` on the server.
    pub async fn link_contact(&self, contact: uuid::Uuid, account: AccountId) -> Result<Linked> {
        let answer: Placed = self
            .inner
            .api
            .post(
                &format!("/v1/mail/contacts/{contact}/link"),
                &serde_json::json!({ "account_id": account }),
                "linking the sender",
            )
            .await?;
        let mut conversations: Vec<ConversationId> = Vec::new();
        for id in answer.placed.into_iter().filter_map(|p| p.conversation_id) {
            if !conversations.contains(&id) {
                conversations.push(id);
            }
        }
        Ok(Linked {
            account_id: account,
            conversations,
        })
    }

    /// Mirrored accounts whose name or domain contains `text` (any case),
    /// by name: what a person picks an account from.
    pub fn accounts_named(&self, text: &str, limit: usize) -> Result<Vec<Account>> {
        let pattern = format!(
            "%{}%",
            text.trim()
                .to_lowercase()
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        );
        let limit = limit.clamp(1, MAX_ACCOUNT_MATCHES) as i64;
        let db = self.inner.db();
        let mut stmt = db.mirror.conn().prepare_cached(
            "SELECT data FROM records WHERE kind = ?1
               AND (lower(data ->> '$.name') LIKE ?2 ESCAPE '\\'
                    OR lower(data ->> '$.domain') LIKE ?2 ESCAPE '\\')
             ORDER BY lower(data ->> '$.name'), id LIMIT ?3",
        )?;
        let rows = stmt.query_map(
            rusqlite::params![Kind::Account.as_str(), pattern, limit],
            |r| r.get::<_, String>(0),
        )?;
        let mut out = Vec::new();
        for data in rows {
            let account: Account = serde_json::from_str(&data?).map_err(|_| {
                EngineError::Local("a stored account record is not valid JSON".into())
            })?;
            out.push(account);
        }
        Ok(out)
    }
}
