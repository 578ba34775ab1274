//! Saved replies in the composer: the team's and my own, synced from the
//! server like any record, and filled in for one conversation. A
//! placeholder (`{{customer.first_name}}`) the conversation has no value for
//! is left in the text *and* reported, and the desk refuses to send a reply
//! that still holds one unless the person confirms: a customer never gets
//! "Hi {{customer.first_name}}" by accident.

use portico_model::{ConversationId, Kind, SavedReply, SavedReplyId, UserId};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::engine::{Engine, EngineError, Result};
use crate::mirror::MirrorError;

/// The placeholders a saved reply may use.
pub const PLACEHOLDERS: &[&str] = &[
    "customer.name",
    "customer.first_name",
    "customer.email",
    "account.name",
    "agent.name",
    "agent.first_name",
    "conversation.subject",
];

/// A saved reply filled in for one conversation.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FilledReply {
    pub text: String,
    /// Placeholders left in `text` (unknown, or no value here), in order.
    pub unfilled: Vec<String>,
}

/// Every `{{name}}` in `text`, in order (names trimmed).
pub fn placeholders(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        out.push(after[..end].trim().to_owned());
        rest = &after[end + 2..];
    }
    out
}

/// Replaces each `{{name}}` for which `value` has a non-empty answer.
pub fn fill(text: &str, value: impl Fn(&str) -> Option<String>) -> FilledReply {
    let mut out = String::with_capacity(text.len());
    let mut unfilled = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        out.push_str(&rest[..start]);
        let name = after[..end].trim();
        match value(name).filter(|v| !v.trim().is_empty()) {
            Some(v) => out.push_str(&v),
            None => {
                out.push_str(&rest[start..start + 2 + end + 2]);
                unfilled.push(name.to_owned());
            }
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    FilledReply {
        text: out,
        unfilled,
    }
}

fn first_name(full: &str) -> Option<String> {
    full.split_whitespace().next().map(str::to_owned)
}

fn text(m: &Map<String, Value>, key: &str) -> Option<String> {
    m.get(key).and_then(Value::as_str).map(str::to_owned)
}

impl Engine {
    /// The saved replies I may use (the team's and mine), by title.
    pub fn saved_replies(&self) -> Result<Vec<SavedReply>> {
        let db = self.inner.db();
        let mut stmt = db.mirror.conn().prepare_cached(
            "SELECT data FROM records WHERE kind = 'saved_reply'
              ORDER BY data ->> '$.title' COLLATE NOCASE, id",
        )?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        let mut out = Vec::new();
        for data in rows {
            out.push(
                serde_json::from_str(&data?).map_err(|_| MirrorError::Corrupt("saved_reply"))?,
            );
        }
        Ok(out)
    }

    /// A saved reply filled in for `conversation`, written by `me`.
    pub fn fill_saved_reply(
        &self,
        id: SavedReplyId,
        conversation: ConversationId,
        me: UserId,
    ) -> Result<FilledReply> {
        let reply = self
            .record(Kind::SavedReply, id.0)?
            .ok_or_else(|| EngineError::Invalid {
                field: "id".into(),
                message: "this saved reply is not on this computer".into(),
            })?;
        let body = text(&reply, "body").unwrap_or_default();
        let conv = self
            .conversation(conversation)?
            .ok_or_else(|| EngineError::Invalid {
                field: "conversation".into(),
                message: "this conversation is not on this computer".into(),
            })?
            .data;
        let uuid = |m: &Map<String, Value>, key| text(m, key).and_then(|s| s.parse().ok());
        let customer = match uuid(&conv, "requester_id") {
            Some(u) => self.record(Kind::User, u)?,
            None => None,
        };
        let account = match uuid(&conv, "account_id") {
            Some(a) => self.record(Kind::Account, a)?,
            None => None,
        };
        let agent = self.record(Kind::User, me.0)?;
        let field = |m: &Option<Map<String, Value>>, key| m.as_ref().and_then(|m| text(m, key));
        Ok(fill(&body, |name| match name {
            "customer.name" => field(&customer, "name"),
            "customer.first_name" => field(&customer, "name").and_then(|n| first_name(&n)),
            "customer.email" => field(&customer, "email"),
            "account.name" => field(&account, "name"),
            "agent.name" => field(&agent, "name"),
            "agent.first_name" => field(&agent, "name").and_then(|n| first_name(&n)),
            "conversation.subject" => text(&conv, "subject"),
            _ => None,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_what_it_knows_and_reports_the_rest() {
        let f = fill(
            "Hi {{customer.first_name}}, about {{ conversation.subject }} {{nope}} {{x",
            |n| match n {
                "customer.first_name" => Some("Ana".into()),
                "conversation.subject" => Some("SSO".into()),
                _ => None,
            },
        );
        assert_eq!(f.text, "Hi Ana, about SSO {{nope}} {{x");
        assert_eq!(f.unfilled, vec!["nope"]);
        assert_eq!(placeholders(&f.text), vec!["nope"]);
    }

    #[test]
    fn an_empty_value_is_not_a_value() {
        let f = fill("Hi {{customer.name}}", |_| Some("  ".into()));
        assert_eq!(f.unfilled, vec!["customer.name"]);
        assert_eq!(f.text, "Hi {{customer.name}}");
    }
}
