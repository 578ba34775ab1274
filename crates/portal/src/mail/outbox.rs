//! Agents' replies on email conversations, out over SMTP.
//!
//! Like webhooks, a transactional outbox: [`enqueue`] runs inside the write
//! that stores the reply (from the API, a pushed offline mutation or the
//! live hub alike), so a reply goes out if and only if it was stored, and a
//! replayed offline push (same message id) queues nothing new. [`send_due`]
//! sends due rows with lettre and writes each outcome onto the message's
//! `delivery` field, which reaches the desktop through the change feed:
//! queued → sent, or failed with the server's words. Temporary failures
//! (4xx, no connection) retry with the webhooks' backoff; permanent ones
//! (5xx) fail at once.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use portico_model::email::{Delivery, DeliveryStatus, MessageEmail};
use portico_model::*;
use rusqlite::{OptionalExtension, TransactionBehavior, params};

use super::{MailIdentity, thread};
use crate::clock::Clock;
use crate::error::{PortalError, Result};
use crate::store::{self, Actor, Store, Writer};
use crate::webhooks::backoff;

/// Attempts before a reply is marked failed: with the webhooks' backoff,
/// about an hour of retries — long enough for a relay restart, short enough
/// that the agent learns the same day.
pub const MAX_ATTEMPTS: u32 = 8;

/// How long a claimed row is reserved for the sender working on it.
const LEASE_MS: i64 = 5 * 60 * 1000;

/// Rows sent per pass.
const BATCH: usize = 50;

/// Stores who the desk is, for [`enqueue`] (which runs inside domain
/// writes and has no configuration at hand).
pub fn configure(store: &Store, identity: &MailIdentity) -> Result<()> {
    store.write_raw(|c| {
        c.execute(
            "INSERT INTO mail_settings (key, value) VALUES ('support_address', ?1), ('support_name', ?2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            params![identity.address, identity.name],
        )?;
        Ok(())
    })
}

fn setting(w: &Writer<'_>, key: &str) -> Result<Option<String>> {
    Ok(w.query_row(
        "SELECT value FROM mail_settings WHERE key = ?1",
        [key],
        |r| r.get(0),
    )
    .optional()?)
}

/// Queues `msg` (an agent's reply on the email conversation `conv`, not yet
/// inserted) for sending, and fills in its `email` (addresses, subject,
/// Message-ID) and `delivery` (queued). The recipient is the sender of the
/// conversation's latest customer mail, else the requester.
pub fn enqueue(w: &mut Writer<'_>, conv: &Conversation, msg: &mut Message) -> Result<()> {
    let address = setting(w, "support_address")?.unwrap_or_else(|| "support@localhost".into());
    let identity = MailIdentity::new(&address, "");
    let key = thread::reply_key(w)?;
    let header_id = thread::outbound_message_id(&key, conv.id, msg.id, identity.domain());
    let thread_mail: Vec<Message> = store::query(
        w,
        "SELECT data FROM messages WHERE conversation_id = ?1 AND data ->> '$.email.message_id' IS NOT NULL ORDER BY id",
        [conv.id.to_string()],
    )?;
    let last_customer = thread_mail
        .iter()
        .rev()
        .find(|m| m.kind == MessageKind::Customer)
        .and_then(|m| m.email.as_ref());
    let to = match last_customer {
        Some(e) => e.from.clone(),
        None => store::require::<User>(w, conv.requester_id.0)?.email,
    };
    let refs: Vec<String> = thread_mail
        .iter()
        .filter_map(|m| m.email.as_ref().map(|e| e.message_id.clone()))
        .filter(|id| !id.is_empty())
        .collect();
    // The last 20 are plenty to thread (RFC 5322 allows trimming the middle).
    let refs = refs[refs.len().saturating_sub(20)..].to_vec();
    let in_reply_to = refs.last().cloned();
    let subject = match last_customer
        .map(|e| e.subject.as_str())
        .filter(|s| !s.is_empty())
    {
        Some(s) => s.to_owned(),
        None => conv.subject.clone(),
    };
    let subject = if subject.to_ascii_lowercase().starts_with("re:") {
        subject
    } else {
        format!("Re: {subject}")
    };
    msg.email = Some(MessageEmail {
        from: identity.address.clone(),
        to: vec![to.clone()],
        subject,
        message_id: header_id.clone(),
        ..MessageEmail::default()
    });
    msg.delivery = Some(Delivery {
        status: DeliveryStatus::Queued,
        to: vec![to],
        attempts: 0,
        error: None,
        next_attempt_at: Some(w.at()),
        updated_at: w.at(),
    });
    w.execute(
        "INSERT INTO mail_outbound (message_id, conversation_id, in_reply_to, refs, next_attempt_at, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
        params![
            msg.id.to_string(),
            conv.id.to_string(),
            in_reply_to,
            refs.join(" "),
            w.at().as_millisecond()
        ],
    )?;
    thread::remember(w, &header_id, conv.id, Some(msg.id))
}

/// How to reach the SMTP server.
#[derive(Debug, Clone)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub username: Option<String>,
    pub password: Option<String>,
}

/// Transport security towards the SMTP server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Security {
    /// TLS from the first byte (port 465).
    Tls,
    /// Plain connection upgraded with STARTTLS (port 587); refused if the
    /// server does not offer it.
    Starttls,
    /// No encryption: only for a relay on the same machine or in tests.
    None,
}

/// Sends queued replies.
#[derive(Clone)]
pub struct Sender {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    identity: MailIdentity,
}

impl Sender {
    pub fn new(config: &SmtpConfig, identity: MailIdentity) -> Result<Sender> {
        let bad = |e: lettre::transport::smtp::Error| {
            PortalError::Invalid(Invalid::new(
                "smtp_host",
                format!("cannot use this SMTP server: {e}"),
            ))
        };
        let mut b = match config.security {
            Security::Tls => {
                AsyncSmtpTransport::<Tokio1Executor>::relay(&config.host).map_err(bad)?
            }
            Security::Starttls => {
                AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&config.host).map_err(bad)?
            }
            Security::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.host),
        };
        b = b.port(config.port).timeout(Some(Duration::from_secs(30)));
        if let (Some(u), Some(p)) = (&config.username, &config.password) {
            b = b.credentials(Credentials::new(u.clone(), p.clone()));
        }
        Ok(Sender {
            transport: b.build(),
            identity,
        })
    }
}

/// A claimed row with what composing needs.
struct Due {
    message_id: String,
    /// `reply` (an agent's message) or `notice` (mail Portico sends itself,
    /// such as invitations; see `mail::invitation`).
    kind: String,
    in_reply_to: Option<String>,
    refs: String,
    attempts: u32,
}

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct SendReport {
    pub sent: usize,
    pub retry: usize,
    pub failed: usize,
}

/// Sends every due reply (up to a batch) and records the outcomes.
pub async fn send_due(store: &Arc<Store>, sender: &Sender, at: Timestamp) -> Result<SendReport> {
    let due = claim(store, at).await?;
    let mut report = SendReport::default();
    for row in due {
        let st = store.clone();
        let id = row.message_id.clone();
        let notice = row.kind == "notice";
        let composed = tokio::task::spawn_blocking(move || {
            st.read(|c| {
                Ok(if notice {
                    super::invitation::notice(c, &id)?.map(Composed::Notice)
                } else {
                    compose_parts(c, &id)?.map(|p| Composed::Reply(Box::new(p)))
                })
            })
        })
        .await
        .map_err(|_| PortalError::Unavailable)??;
        let built = composed.map(|c| match c {
            Composed::Reply(parts) => build(&sender.identity, &parts, &row),
            Composed::Notice(n) => build_notice(&sender.identity, &n),
        });
        let result = match built {
            Some(mail) => match mail {
                Ok(mail) => sender.transport.send(mail).await.map(|_| ()).map_err(|e| {
                    let permanent = e.is_permanent();
                    (permanent, e.to_string())
                }),
                Err(e) => Err((true, format!("cannot compose the mail: {e}"))),
            },
            None => Err((true, "the message or its conversation is gone".into())),
        };
        let outcome = match &result {
            Ok(()) => Outcome::Sent,
            Err((permanent, why)) if *permanent || row.attempts + 1 >= MAX_ATTEMPTS => {
                Outcome::Failed(why.clone())
            }
            Err((_, why)) => Outcome::Retry(why.clone()),
        };
        match &outcome {
            Outcome::Sent => report.sent += 1,
            Outcome::Retry(why) => {
                tracing::warn!(message = %row.message_id, error = %why, "email reply not sent; will retry");
                report.retry += 1
            }
            Outcome::Failed(why) => {
                tracing::error!(message = %row.message_id, error = %why, "email reply failed for good");
                report.failed += 1
            }
        }
        let st = store.clone();
        tokio::task::spawn_blocking(move || {
            st.write(Actor::SYSTEM, at, |w| record(w, &row, &outcome))
        })
        .await
        .map_err(|_| PortalError::Unavailable)??;
    }
    Ok(report)
}

enum Composed {
    Reply(Box<Parts>),
    Notice(super::invitation::Notice),
}

/// A notice (an invitation) as a plain-text mail from the desk's address.
fn build_notice(
    identity: &MailIdentity,
    n: &super::invitation::Notice,
) -> std::result::Result<lettre::Message, String> {
    let from = Mailbox::new(
        Some(identity.name.clone()).filter(|n| !n.is_empty()),
        identity
            .address
            .parse()
            .map_err(|e| format!("support address: {e}"))?,
    );
    let to = Mailbox::new(
        Some(n.to_name.clone()),
        n.to_address
            .parse()
            .map_err(|e| format!("recipient {}: {e}", n.to_address))?,
    );
    let mut b = lettre::Message::builder()
        .from(from)
        .to(to)
        .subject(n.subject.clone());
    if let Ok(name) = HeaderName::new_from_ascii("Auto-Submitted".into()) {
        b = b.raw_header(HeaderValue::new(name, "auto-generated".into()));
    }
    b.body(n.body.clone()).map_err(|e| e.to_string())
}

enum Outcome {
    Sent,
    Retry(String),
    Failed(String),
}

async fn claim(store: &Arc<Store>, at: Timestamp) -> Result<Vec<Due>> {
    let st = store.clone();
    tokio::task::spawn_blocking(move || {
        st.write_raw(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let now = at.as_millisecond();
            let due = {
                let mut stmt = tx.prepare_cached(
                    "SELECT message_id, in_reply_to, refs, attempts, kind FROM mail_outbound
                     WHERE sent_at IS NULL AND failed = 0 AND next_attempt_at <= ?1
                     ORDER BY next_attempt_at, id LIMIT ?2",
                )?;
                let rows = stmt.query_map(params![now, BATCH as i64], |r| {
                    Ok(Due {
                        message_id: r.get(0)?,
                        in_reply_to: r.get(1)?,
                        refs: r.get(2)?,
                        attempts: r.get(3)?,
                        kind: r.get(4)?,
                    })
                })?;
                rows.collect::<rusqlite::Result<Vec<_>>>()?
            };
            for d in &due {
                tx.execute(
                    "UPDATE mail_outbound SET next_attempt_at = ?2 WHERE message_id = ?1",
                    params![d.message_id, now + LEASE_MS],
                )?;
            }
            tx.commit()?;
            Ok(due)
        })
    })
    .await
    .map_err(|_| PortalError::Unavailable)?
}

/// What a reply mail is made of, read from the records.
struct Parts {
    msg: Message,
    signature: Option<String>,
}

fn compose_parts(c: &rusqlite::Connection, message_id: &str) -> Result<Option<Parts>> {
    let Some(msg) =
        store::get::<Message>(c, message_id.parse().map_err(|_| PortalError::Unavailable)?)?
    else {
        return Ok(None);
    };
    let Some(conv) = store::get::<Conversation>(c, msg.conversation_id.0)? else {
        return Ok(None);
    };
    let signature = match conv.team_id {
        Some(t) => c
            .query_row(
                "SELECT signature FROM mail_signatures WHERE team_id = ?1",
                [t.to_string()],
                |r| r.get(0),
            )
            .optional()?,
        None => None,
    };
    Ok(Some(Parts { msg, signature }))
}

fn angle(id: &str) -> String {
    format!("<{id}>")
}

/// The reply as a mail: From the agent at the desk's address, Reply-To the
/// tagged address (reply token), threading headers, a plain-text part and
/// an HTML alternative, each with the team's signature.
fn build(
    identity: &MailIdentity,
    parts: &Parts,
    row: &Due,
) -> std::result::Result<lettre::Message, String> {
    let msg = &parts.msg;
    let email = msg
        .email
        .as_ref()
        .ok_or("the message has no email envelope")?;
    let token = email
        .message_id
        .split('@')
        .next()
        .and_then(|l| l.split('.').nth(1))
        .unwrap_or_default();
    let from_name = if identity.name.is_empty() {
        msg.author_name.clone()
    } else {
        format!("{} ({})", msg.author_name, identity.name)
    };
    let from = Mailbox::new(
        Some(from_name),
        identity
            .address
            .parse()
            .map_err(|e| format!("support address: {e}"))?,
    );
    let reply_to = Mailbox::new(
        Some(identity.name.clone()).filter(|n| !n.is_empty()),
        identity
            .tagged(token)
            .parse()
            .map_err(|e| format!("reply-to: {e}"))?,
    );
    let signature = parts
        .signature
        .clone()
        .unwrap_or_else(|| identity.default_signature.clone());
    let text = format!("{}\n\n{}\n", msg.body.trim_end(), signature);
    let html = format!(
        "<div>{}</div><br><div>{}</div>",
        html_lines(msg.body.trim_end()),
        html_lines(&signature)
    );
    let mut b = lettre::Message::builder()
        .from(from)
        .reply_to(reply_to)
        .subject(email.subject.clone())
        .message_id(Some(angle(&email.message_id)))
        .date(jiff_to_system(msg.created_at));
    for to in &email.to {
        b = b.to(to.parse().map_err(|e| format!("recipient {to}: {e}"))?);
    }
    if let Some(irt) = &row.in_reply_to {
        b = b.in_reply_to(angle(irt));
    }
    if !row.refs.is_empty() {
        b = b.references(row.refs.split(' ').map(angle).collect::<Vec<_>>().join(" "));
    }
    // Asks Exchange and similar not to answer with out-of-office mail.
    if let Ok(name) = HeaderName::new_from_ascii("X-Auto-Response-Suppress".into()) {
        b = b.raw_header(HeaderValue::new(name, "OOF, AutoReply".into()));
    }
    b.multipart(MultiPart::alternative_plain_html(text, html))
        .map_err(|e| e.to_string())
}

fn jiff_to_system(t: Timestamp) -> std::time::SystemTime {
    std::time::SystemTime::UNIX_EPOCH + Duration::from_millis(t.as_millisecond().max(0) as u64)
}

/// Plain text as HTML: escaped, lines joined by `<br>`.
fn html_lines(text: &str) -> String {
    crate::invoices::escape(text).replace('\n', "<br>\n")
}

/// Stores an attempt's outcome on the outbox row and on the message.
fn record(w: &mut Writer<'_>, row: &Due, outcome: &Outcome) -> Result<()> {
    let attempts = row.attempts + 1;
    let now = w.at();
    let (status, error, next) = match outcome {
        Outcome::Sent => (DeliveryStatus::Sent, None, None),
        Outcome::Retry(why) => (
            DeliveryStatus::Queued,
            Some(why.clone()),
            Some(now.checked_add(backoff(attempts)).unwrap_or(now)),
        ),
        Outcome::Failed(why) => (DeliveryStatus::Failed, Some(why.clone()), None),
    };
    w.execute(
        "UPDATE mail_outbound SET attempts = ?2, next_attempt_at = ?3, last_error = ?4,
             sent_at = CASE WHEN ?5 THEN ?6 ELSE sent_at END, failed = ?7
         WHERE message_id = ?1",
        params![
            row.message_id,
            attempts,
            next.unwrap_or(now).as_millisecond(),
            error,
            status == DeliveryStatus::Sent,
            now.as_millisecond(),
            status == DeliveryStatus::Failed,
        ],
    )?;
    let Ok(id) = row.message_id.parse::<uuid::Uuid>() else {
        return Ok(());
    };
    if let Some(mut msg) = store::get::<Message>(w, id)? {
        // A bounce that already arrived is the later, truer word.
        if msg
            .delivery
            .as_ref()
            .is_some_and(|d| d.status == DeliveryStatus::Bounced)
        {
            return Ok(());
        }
        let to = msg
            .delivery
            .as_ref()
            .map(|d| d.to.clone())
            .unwrap_or_default();
        msg.delivery = Some(Delivery {
            status,
            to,
            attempts,
            error,
            next_attempt_at: next,
            updated_at: now,
        });
        w.update(&mut msg)?;
    }
    Ok(())
}

/// Runs [`send_due`] every `every` (a due-rows index lookup when idle).
/// Errors are logged; the loop goes on.
pub fn spawn_worker(
    store: Arc<Store>,
    clock: Arc<dyn Clock>,
    sender: Sender,
    every: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            match send_due(&store, &sender, clock.now()).await {
                Ok(r) if r.sent + r.retry + r.failed > 0 => {
                    tracing::info!(?r, "email replies sent")
                }
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "email send pass failed"),
            }
            tokio::time::sleep(every).await;
        }
    })
}
