//! One received mail into the desk, in the caller's write transaction.
//!
//! The mail is logged (`mail_inbound`, raw bytes kept) before anything else,
//! then placed: a bounce marks the outgoing message it returns, automatic
//! and list mail stop there, an unknown sender is held as a contact, and a
//! person's mail joins its thread or opens a conversation through the same
//! functions the API uses (`open_in`, `append_message`), so routing, SLA and
//! assignment run exactly as for chat.

use std::collections::HashMap;

use portico_model::email::{Attachment, DeliveryStatus, MessageEmail};
use portico_model::wire::{NewConversation, NewMessage};
use portico_model::*;
use rusqlite::{OptionalExtension, params};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::classify::MailKind;
use super::parse::{self, FilePart, Parsed};
use super::sender::{self, Sender};
use super::{
    HEAD_BYTES, MAX_ATTACHMENT_BYTES, MAX_ATTACHMENTS_TOTAL, MAX_MESSAGE_BYTES, MailIdentity,
    thread,
};
use crate::api::conversations::{append_message, open_in};
use crate::error::Result;
use crate::store::{self, Writer};

/// A mail as received: its bytes (the head only, when it was over
/// [`MAX_MESSAGE_BYTES`]) and its full size.
#[derive(Debug, Clone)]
pub struct Received {
    /// Where it came from, e.g. `imap:support@mail.example.com/INBOX` or `hook`.
    pub source: String,
    pub raw: Vec<u8>,
    pub size: usize,
}

impl Received {
    /// Keeps `raw` whole, or its head when it is over the limit.
    pub fn new(source: impl Into<String>, mut raw: Vec<u8>) -> Received {
        let size = raw.len();
        if size > MAX_MESSAGE_BYTES {
            raw.truncate(HEAD_BYTES);
        }
        Received {
            source: source.into(),
            raw,
            size,
        }
    }

    pub fn truncated(&self) -> bool {
        self.size > self.raw.len()
    }
}

/// What became of a mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Disposition {
    /// Opened a new conversation.
    Conversation,
    /// Joined an existing conversation.
    Reply,
    /// From an unknown sender: waits for staff to link the contact.
    Held,
    AutoReply,
    Bounce,
    List,
    /// Sent by the support address itself (a forwarding loop).
    Own,
    /// Already received (same Message-ID): nothing new written.
    Duplicate,
    /// Not a mail at all, or no sender: logged with its bytes, nothing else.
    Rejected,
}

impl Disposition {
    fn as_str(self) -> &'static str {
        match self {
            Disposition::Conversation => "conversation",
            Disposition::Reply => "reply",
            Disposition::Held => "held",
            Disposition::AutoReply => "auto_reply",
            Disposition::Bounce => "bounce",
            Disposition::List => "list",
            Disposition::Own => "own",
            Disposition::Duplicate => "duplicate",
            Disposition::Rejected => "rejected",
        }
    }
}

/// The result of [`receive`].
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub disposition: Disposition,
    pub conversation_id: Option<ConversationId>,
    pub message_id: Option<MessageId>,
    pub contact_id: Option<uuid::Uuid>,
    /// Why, in words (the auto-reply header, the hold reason, the bounce).
    pub detail: Option<String>,
}

impl Outcome {
    fn just(disposition: Disposition, detail: impl Into<String>) -> Outcome {
        Outcome {
            disposition,
            conversation_id: None,
            message_id: None,
            contact_id: None,
            detail: Some(detail.into()),
        }
    }
}

/// Who a placed mail is written as.
pub struct Origin {
    pub email: MessageEmail,
    pub author_id: Option<UserId>,
    pub author_name: String,
}

/// Executable and script types: refused whatever the size, because opening
/// one runs it.
const REFUSED_EXTENSIONS: &[&str] = &[
    "exe", "com", "scr", "pif", "bat", "cmd", "msi", "msp", "dll", "cpl", "vbs", "vbe", "js",
    "jse", "wsf", "wsh", "ps1", "psm1", "jar", "hta", "lnk", "reg", "sh", "apk", "app", "iso",
    "img",
];
const REFUSED_TYPES: &[&str] = &[
    "application/x-msdownload",
    "application/x-dosexec",
    "application/x-executable",
    "application/x-msdos-program",
    "application/javascript",
    "text/javascript",
    "application/x-sh",
    "application/java-archive",
    "application/hta",
    "application/x-ms-shortcut",
];

/// Logs and places one mail. Never fails on the mail's content: bad mail is
/// logged as `rejected` with its bytes. Errors are storage errors only (the
/// transaction then rolls back and the mail is retried).
pub fn receive(w: &mut Writer<'_>, identity: &MailIdentity, mail: &Received) -> Result<Outcome> {
    let parsed = parse::parse(&mail.raw, identity.authserv_id.as_deref());
    let dedupe = parsed
        .as_ref()
        .and_then(|p| p.message_id.clone())
        .unwrap_or_else(|| format!("sha256:{:x}", Sha256::digest(&mail.raw)));
    let existing: Option<(String, Option<String>)> = w
        .query_row(
            "SELECT disposition, conversation_id FROM mail_inbound WHERE dedupe_key = ?1",
            [&dedupe],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    if let Some((was, conv)) = existing {
        let mut o = Outcome::just(
            Disposition::Duplicate,
            format!("already received (then: {was})"),
        );
        o.conversation_id = conv.and_then(|c| c.parse().ok());
        return Ok(o);
    }
    let (from, subject) = parsed
        .as_ref()
        .map(|p| {
            (
                p.from.clone().map(|f| f.0).unwrap_or_default(),
                p.subject.clone(),
            )
        })
        .unwrap_or_default();
    w.execute(
        "INSERT INTO mail_inbound (source, dedupe_key, header_id, from_addr, subject, size, truncated, disposition, received_at, raw)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'pending', ?8, ?9)",
        params![
            mail.source,
            dedupe,
            parsed.as_ref().and_then(|p| p.message_id.clone()),
            from,
            subject,
            mail.size as i64,
            mail.truncated(),
            w.at().as_millisecond(),
            mail.raw,
        ],
    )?;
    let row = w.last_insert_rowid();
    let outcome = match parsed {
        None => Outcome::just(Disposition::Rejected, "not a mail: no header could be read"),
        Some(p) => place(w, identity, &p, mail, None)?,
    };
    record(w, row, &outcome)?;
    Ok(outcome)
}

/// Stores what became of inbound row `row`.
fn record(w: &Writer<'_>, row: i64, o: &Outcome) -> Result<()> {
    w.execute(
        "UPDATE mail_inbound SET disposition = ?2, detail = ?3, conversation_id = ?4, message_id = ?5, contact_id = ?6 WHERE id = ?1",
        params![
            row,
            o.disposition.as_str(),
            o.detail,
            o.conversation_id.map(|c| c.to_string()),
            o.message_id.map(|m| m.to_string()),
            o.contact_id.map(|c| c.to_string()),
        ],
    )?;
    Ok(())
}

/// Places a parsed mail. `account` forces the account (a held contact that
/// staff linked); otherwise the sender decides.
fn place(
    w: &mut Writer<'_>,
    identity: &MailIdentity,
    p: &Parsed,
    mail: &Received,
    account: Option<AccountId>,
) -> Result<Outcome> {
    let Some((from, from_name)) = p.from.clone() else {
        return Ok(Outcome::just(
            Disposition::Rejected,
            "the mail has no From address",
        ));
    };
    if from == identity.address {
        return Ok(Outcome::just(
            Disposition::Own,
            "sent from the support address itself; ignored so it cannot loop",
        ));
    }
    match &p.kind {
        MailKind::Person => {}
        MailKind::Bounce(b) if b.delayed => {
            return Ok(Outcome::just(
                Disposition::AutoReply,
                format!("delivery delayed, still being tried: {}", b.reason),
            ));
        }
        MailKind::Bounce(b) => return bounced(w, b),
        MailKind::AutoReply(why) => return Ok(Outcome::just(Disposition::AutoReply, why.clone())),
        MailKind::List(why) => return Ok(Outcome::just(Disposition::List, why.clone())),
    }
    let who = match account {
        Some(a) => Sender::OnAccount {
            account: a,
            via: "linked_contact",
        },
        None => sender::identify(w, &from, p.auth_failure.as_deref())?,
    };
    let (viewer, account, author_id, author_name) = match who {
        Sender::Unknown { reason } => {
            let id = sender::hold(
                w,
                &from,
                &from_name,
                &reason,
                w.at().as_millisecond(),
                w.new_id(),
            )?;
            let mut o = Outcome::just(Disposition::Held, reason);
            o.contact_id = Some(id);
            return Ok(o);
        }
        Sender::User(u) => {
            let v = crate::auth::viewer_for_user(w, &u)?;
            let account = u.account_id.expect("customer users have an account");
            (v, account, Some(u.id), u.name)
        }
        Sender::OnAccount { account, .. } => {
            // Not a portal user: the account's first user stands in as the
            // requester (as when staff open a conversation); the message is
            // written as the real sender.
            let stand_in: Option<User> = store::query(
                w,
                "SELECT data FROM users WHERE account_id = ?1 ORDER BY id LIMIT 1",
                [account.to_string()],
            )?
            .pop();
            let Some(stand_in) = stand_in else {
                let id = sender::hold(
                    w,
                    &from,
                    &from_name,
                    "the account has no users yet",
                    w.at().as_millisecond(),
                    w.new_id(),
                )?;
                let mut o = Outcome::just(Disposition::Held, "the account has no users yet");
                o.contact_id = Some(id);
                return Ok(o);
            };
            let v = Viewer {
                user_id: stand_in.id,
                role: Role::CustomerMember,
                account_id: Some(account),
                plan_code: None,
                access: ConversationAccess::All,
                team_ids: vec![],
            };
            let name = if from_name.is_empty() {
                from.clone()
            } else {
                format!("{from_name} <{from}>")
            };
            (v, account, None, name)
        }
    };

    // The thread: the first candidate on the sender's own account.
    let key = thread::reply_key(w)?;
    let mut notes = p.notes.clone();
    let mut conversation: Option<Conversation> = None;
    for c in thread::candidates(w, &key, p)? {
        match store::get::<Conversation>(w, c.0)? {
            Some(conv) if conv.account_id == account => {
                conversation = Some(conv);
                break;
            }
            Some(_) => {
                tracing::warn!(%from, conversation = %c, "mail refers to another account's conversation; not joined");
                notes.push("This mail referred to a conversation of another account; it was not added there.".into());
            }
            None => {}
        }
    }

    let (email, files) = build_email(w, p, mail, &from, &mut notes)?;
    let (mut body, truncated_body) = body_text(p);
    if truncated_body {
        notes.push(
            "The text was longer than 64 KB and was cut; the original mail has all of it.".into(),
        );
    }
    if body.trim().is_empty() {
        body = "(no text)".into();
    }
    let origin = Origin {
        email: MessageEmail { notes, ..email },
        author_id,
        author_name,
    };
    let (conv_id, msg, disposition) = match conversation {
        Some(mut conv) => {
            let input = NewMessage {
                id: None,
                internal: false,
                body,
                mentions: vec![],
            };
            let msg = append_message(w, &viewer, &mut conv, input, Some(origin))?;
            (conv.id, msg, Disposition::Reply)
        }
        None => {
            let mut subject: String = p.subject.chars().take(300).collect();
            if subject.trim().is_empty() {
                subject = "(no subject)".into();
            }
            let input = NewConversation {
                account_id: Some(account),
                channel: Channel::Email,
                subject,
                body,
                product_area: String::new(),
            };
            let conv = open_in(w, &viewer, account, input, Some(origin))?;
            let msg: Message = store::query(
                w,
                "SELECT data FROM messages WHERE conversation_id = ?1 ORDER BY id LIMIT 1",
                [conv.id.to_string()],
            )?
            .pop()
            .expect("a new conversation has its first message");
            (conv.id, msg, Disposition::Conversation)
        }
    };
    for (att, part) in files {
        store_attachment(w, &att, part, &msg)?;
    }
    if let Some(mid) = &p.message_id {
        thread::remember(w, mid, conv_id, Some(msg.id))?;
    }
    Ok(Outcome {
        disposition,
        conversation_id: Some(conv_id),
        message_id: Some(msg.id),
        contact_id: None,
        detail: None,
    })
}

/// The text of the message record, at most 64 KiB characters.
fn body_text(p: &Parsed) -> (String, bool) {
    const MAX: usize = 64 * 1024;
    if p.text.chars().count() > MAX {
        (p.text.chars().take(MAX).collect(), true)
    } else {
        (p.text.clone(), false)
    }
}

/// The mail's parts for the message record: attachments decided (stored or
/// refused, with ids), HTML sanitized with `cid:` images pointing at them.
fn build_email<'p>(
    w: &Writer<'_>,
    p: &'p Parsed,
    mail: &Received,
    from: &str,
    notes: &mut Vec<String>,
) -> Result<(MessageEmail, Vec<(Attachment, &'p FilePart)>)> {
    if mail.truncated() {
        notes.push(format!(
            "This mail is {:.1} MB, over the {} MB limit: only its first {} MB was read, and its attachments were not stored. Ask the customer to share large files another way.",
            mail.size as f64 / 1_048_576.0,
            MAX_MESSAGE_BYTES / 1_048_576,
            HEAD_BYTES / 1_048_576,
        ));
    }
    let mut total = 0usize;
    let mut atts = Vec::new();
    let mut files = Vec::new();
    let mut cids = HashMap::new();
    for part in &p.attachments {
        let id: uuid::Uuid = w.new_id();
        let refused = refusal(part, mail.truncated(), total);
        if refused.is_none() {
            total += part.bytes.len();
        }
        let att = Attachment {
            id,
            filename: part.filename.clone(),
            content_type: part.content_type.clone(),
            size: part.bytes.len() as u64,
            inline: part.inline,
            stored: refused.is_none(),
            refused: refused.clone(),
        };
        if let Some(why) = &refused {
            notes.push(format!(
                "Attachment \"{}\" was not stored: {why}.",
                part.filename
            ));
        } else {
            if let Some(cid) = &part.content_id {
                cids.insert(cid.clone(), format!("/v1/attachments/{id}"));
            }
            files.push((att.clone(), part));
        }
        atts.push(att);
    }
    let email = MessageEmail {
        from: from.to_owned(),
        to: p.to.clone(),
        cc: p.cc.clone(),
        subject: p.subject.clone(),
        message_id: p.message_id.clone().unwrap_or_default(),
        html: p.html.as_deref().map(|h| parse::sanitize_html(h, &cids)),
        quoted: p.quoted.clone(),
        attachments: atts,
        notes: vec![],
    };
    Ok((email, files))
}

/// Why an attachment is not stored, if it is not.
fn refusal(part: &FilePart, truncated: bool, stored_so_far: usize) -> Option<String> {
    let ext = part
        .filename
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase());
    if ext
        .as_deref()
        .is_some_and(|e| REFUSED_EXTENSIONS.contains(&e))
        || REFUSED_TYPES.contains(&part.content_type.as_str())
    {
        return Some("executable and script files are refused".into());
    }
    if truncated {
        return Some("the mail was over the size limit and was not received whole".into());
    }
    if part.bytes.len() > MAX_ATTACHMENT_BYTES {
        return Some(format!(
            "it is over the {} MB limit per file",
            MAX_ATTACHMENT_BYTES / 1_048_576
        ));
    }
    if stored_so_far + part.bytes.len() > MAX_ATTACHMENTS_TOTAL {
        return Some(format!(
            "the mail's attachments are over {} MB in total",
            MAX_ATTACHMENTS_TOTAL / 1_048_576
        ));
    }
    None
}

fn store_attachment(
    w: &Writer<'_>,
    att: &Attachment,
    part: &FilePart,
    msg: &Message,
) -> Result<()> {
    w.execute(
        "INSERT INTO mail_attachments (id, message_id, account_id, filename, content_type, size, sha256, data)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            att.id.to_string(),
            msg.id.to_string(),
            msg.account_id.to_string(),
            att.filename,
            att.content_type,
            att.size as i64,
            format!("{:x}", Sha256::digest(&part.bytes)),
            part.bytes,
        ],
    )?;
    Ok(())
}

/// A bounce: the outgoing message it returns is marked `bounced` with the
/// reporting server's reason, where the desktop shows it.
fn bounced(w: &mut Writer<'_>, b: &super::classify::Bounce) -> Result<Outcome> {
    let found = match &b.original_id {
        Some(id) => thread::lookup(w, id)?,
        None => None,
    };
    let Some((conv, Some(mid))) = found else {
        return Ok(Outcome::just(
            Disposition::Bounce,
            format!("a bounce for no message we sent: {}", b.reason),
        ));
    };
    if let Some(mut msg) = store::get::<Message>(w, mid.0)?
        && let Some(d) = msg.delivery.as_mut()
    {
        d.status = DeliveryStatus::Bounced;
        d.error = Some(match &b.recipient {
            Some(r) => format!("{r}: {}", b.reason),
            None => b.reason.clone(),
        });
        d.next_attempt_at = None;
        d.updated_at = w.at();
        w.update(&mut msg)?;
    }
    Ok(Outcome {
        disposition: Disposition::Bounce,
        conversation_id: Some(conv),
        message_id: Some(mid),
        contact_id: None,
        detail: Some(b.reason.clone()),
    })
}

/// Staff link a held contact to `account`: the contact is remembered (its
/// later mail goes to the account) and every mail held for it is placed
/// there now, oldest first. Returns the outcomes.
pub fn link_contact(
    w: &mut Writer<'_>,
    identity: &MailIdentity,
    contact: uuid::Uuid,
    account: AccountId,
) -> Result<Vec<Outcome>> {
    let _: Account = store::require(w, account.0)?;
    let n = w.execute(
        "UPDATE mail_contacts SET linked_account_id = ?2, linked_at = ?3 WHERE id = ?1",
        params![
            contact.to_string(),
            account.to_string(),
            w.at().as_millisecond()
        ],
    )?;
    if n == 0 {
        return Err(crate::error::PortalError::NotFound {
            kind: "contact",
            id: contact.to_string(),
        });
    }
    let held: Vec<(i64, String, Vec<u8>, i64)> = {
        let mut stmt = w.prepare(
            "SELECT id, source, raw, size FROM mail_inbound WHERE contact_id = ?1 AND disposition = 'held' ORDER BY id",
        )?;
        let rows = stmt.query_map([contact.to_string()], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    let mut out = Vec::new();
    for (row, source, raw, size) in held {
        let mail = Received {
            source,
            raw,
            size: size as usize,
        };
        let Some(p) = parse::parse(&mail.raw, identity.authserv_id.as_deref()) else {
            continue;
        };
        let mut o = place(w, identity, &p, &mail, Some(account))?;
        o.contact_id = Some(contact);
        record(w, row, &o)?;
        out.push(o);
    }
    Ok(out)
}

/// Receives `mail` in its own write transaction at `at`, together with
/// `also` (moving a mailbox position). If placing it fails, the mail is
/// logged as `rejected` (bytes kept) with `also` in a second transaction, so
/// one bad mail never blocks the ones behind it and is never lost. Errors
/// are storage errors only.
pub fn store_received(
    store: &crate::store::Store,
    at: jiff::Timestamp,
    identity: &MailIdentity,
    mail: &Received,
    also: impl Fn(&Writer<'_>) -> Result<()>,
) -> Result<Outcome> {
    let first = store.write(crate::store::Actor::SYSTEM, at, |w| {
        let o = receive(w, identity, mail)?;
        also(w)?;
        Ok(o)
    });
    match first {
        Ok(o) => Ok(o),
        Err(e) => {
            tracing::error!(source = %mail.source, error = %e, "mail could not be placed; kept as rejected");
            store.write(crate::store::Actor::SYSTEM, at, |w| {
                let o = reject(w, mail, &format!("could not be placed: {e}"))?;
                also(w)?;
                Ok(o)
            })
        }
    }
}

/// Logs a mail that could not be placed (a storage-level failure while
/// placing it) as `rejected`, keeping its bytes for a later look.
pub fn reject(w: &mut Writer<'_>, mail: &Received, why: &str) -> Result<Outcome> {
    let key = format!("sha256:{:x}", Sha256::digest(&mail.raw));
    w.execute(
        "INSERT INTO mail_inbound (source, dedupe_key, from_addr, subject, size, truncated, disposition, detail, received_at, raw)
         VALUES (?1, ?2, '', '', ?3, ?4, 'rejected', ?5, ?6, ?7)
         ON CONFLICT (dedupe_key) DO NOTHING",
        params![mail.source, key, mail.size as i64, mail.truncated(), why, w.at().as_millisecond(), mail.raw],
    )?;
    Ok(Outcome::just(Disposition::Rejected, why))
}
