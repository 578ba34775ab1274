//! Which conversation a mail belongs to.
//!
//! Every Message-ID seen or sent is remembered with its conversation
//! (`mail_threads`), so a reply's `In-Reply-To` / `References` find the
//! thread. Our own Message-IDs and the Reply-To address also carry a reply
//! token (`c` + conversation id + a truncated HMAC under a per-database key),
//! which still finds the thread when a mail client dropped the headers (the
//! token rides in `support+c…@`) or the mapping is gone. The HMAC means a
//! token cannot be made up for someone else's conversation.

use hmac::{Hmac, Mac};
use portico_model::{ConversationId, MessageId};
use rusqlite::{Connection, OptionalExtension, params};
use sha2::Sha256;

use super::parse::Parsed;
use crate::error::Result;

/// Hex characters of the HMAC kept in a token: 40 bits, enough that guessing
/// one for a known conversation id takes about a trillion tries.
const TAG_HEX: usize = 10;

/// The per-database key of reply tokens (made by the migration).
pub fn reply_key(conn: &Connection) -> Result<Vec<u8>> {
    let hex: String = conn.query_row(
        "SELECT value FROM mail_settings WHERE key = 'reply_token_key'",
        [],
        |r| r.get(0),
    )?;
    Ok(hex.into_bytes())
}

fn tag(key: &[u8], conv: ConversationId) -> String {
    let mut m = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    m.update(conv.0.as_bytes());
    let out = m.finalize().into_bytes();
    out.iter().map(|b| format!("{b:02x}")).collect::<String>()[..TAG_HEX].to_owned()
}

/// The reply token of a conversation: `c<32 hex id><10 hex tag>`.
pub fn token(key: &[u8], conv: ConversationId) -> String {
    format!("c{}{}", conv.0.simple(), tag(key, conv))
}

/// The conversation a token names, if the token is genuine.
pub fn parse_token(key: &[u8], s: &str) -> Option<ConversationId> {
    let s = s.strip_prefix('c')?;
    if s.len() != 32 + TAG_HEX || !s.is_ascii() {
        return None;
    }
    let conv = ConversationId(uuid::Uuid::try_parse(&s[..32]).ok()?);
    let expected = tag(key, conv);
    // Constant time is not needed for 10 public-ish hex chars compared once
    // per mail, but costs nothing.
    let same = expected
        .bytes()
        .zip(s[32..].to_ascii_lowercase().bytes())
        .fold(0u8, |acc, (a, b)| acc | (a ^ b))
        == 0;
    same.then_some(conv)
}

/// Message-ID of an outgoing reply: unique per message, carrying the token.
pub fn outbound_message_id(
    key: &[u8],
    conv: ConversationId,
    msg: MessageId,
    domain: &str,
) -> String {
    format!("{}.{}@{}", msg.0.simple(), token(key, conv), domain)
}

/// Tokens found in a Message-ID's local part or an address's `+tag`.
fn tokens_in(s: &str) -> impl Iterator<Item = &str> {
    let local = s.split('@').next().unwrap_or_default();
    local.split(['.', '+']).filter(|p| p.starts_with('c'))
}

/// Remembers that `header_id` belongs to `conv` (and which message it is).
pub fn remember(
    conn: &Connection,
    header_id: &str,
    conv: ConversationId,
    msg: Option<MessageId>,
) -> Result<()> {
    conn.execute(
        "INSERT INTO mail_threads (header_id, conversation_id, message_id) VALUES (?1, ?2, ?3)
         ON CONFLICT (header_id) DO NOTHING",
        params![header_id, conv.to_string(), msg.map(|m| m.to_string())],
    )?;
    Ok(())
}

/// The conversation a known Message-ID belongs to, with the message.
pub fn lookup(
    conn: &Connection,
    header_id: &str,
) -> Result<Option<(ConversationId, Option<MessageId>)>> {
    Ok(conn
        .query_row(
            "SELECT conversation_id, message_id FROM mail_threads WHERE header_id = ?1",
            [header_id],
            |r| Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?)),
        )
        .optional()?
        .and_then(|(c, m)| Some((c.parse().ok()?, m.and_then(|m| m.parse().ok())))))
}

/// Conversations a mail points at, best first: the message it answers, the
/// rest of its References (newest first), then reply tokens in those ids and
/// in the addresses it was sent to. The caller decides whether the sender
/// may join the candidate (same account).
pub fn candidates(conn: &Connection, key: &[u8], mail: &Parsed) -> Result<Vec<ConversationId>> {
    let mut out = Vec::new();
    let ids: Vec<&String> = mail
        .in_reply_to
        .iter()
        .chain(mail.references.iter().rev())
        .collect();
    for id in &ids {
        if let Some((conv, _)) = lookup(conn, id)? {
            out.push(conv);
        }
    }
    let addresses = mail.to.iter().chain(&mail.cc).chain(&mail.delivered_to);
    for s in ids
        .iter()
        .map(|s| s.as_str())
        .chain(addresses.map(String::as_str))
    {
        for t in tokens_in(s) {
            if let Some(conv) = parse_token(key, t) {
                out.push(conv);
            }
        }
    }
    out.dedup();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_cannot_be_forged() {
        let key = b"k1".to_vec();
        let conv = ConversationId(uuid::Uuid::now_v7());
        let t = token(&key, conv);
        assert_eq!(parse_token(&key, &t), Some(conv));
        assert_eq!(
            parse_token(b"other key", &t),
            None,
            "another database's token"
        );
        let other = ConversationId(uuid::Uuid::now_v7());
        let forged = format!("c{}{}", other.0.simple(), &t[33..]);
        assert_eq!(
            parse_token(&key, &forged),
            None,
            "a tag moved to another conversation"
        );
        assert_eq!(parse_token(&key, "c1234"), None);
    }

    #[test]
    fn tokens_are_found_in_message_ids_and_plus_addresses() {
        let key = b"k".to_vec();
        let conv = ConversationId(uuid::Uuid::now_v7());
        let msg = MessageId(uuid::Uuid::now_v7());
        let mid = outbound_message_id(&key, conv, msg, "portico.test");
        let found: Vec<_> = tokens_in(&mid)
            .filter_map(|t| parse_token(&key, t))
            .collect();
        assert_eq!(found, vec![conv]);
        let addr = format!("support+{}@portico.test", token(&key, conv));
        let found: Vec<_> = tokens_in(&addr)
            .filter_map(|t| parse_token(&key, t))
            .collect();
        assert_eq!(found, vec![conv]);
    }
}
