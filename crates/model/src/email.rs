//! What a message carries when it travelled by email: the parts of the mail
//! people read (sanitized HTML, folded quote, attachments) and, for replies
//! going out, how delivery went. Kept on the `Message` record so the desktop
//! shows them offline from its mirror like any other field.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// The mail a message came from (inbound) or went out as (outbound).
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MessageEmail {
    /// The sender's address, lowercased.
    pub from: String,
    pub to: Vec<String>,
    #[serde(default)]
    pub cc: Vec<String>,
    pub subject: String,
    /// The `Message-ID` header, without angle brackets.
    pub message_id: String,
    /// The HTML part after sanitizing (no scripts, handlers, styles that
    /// load anything, or remote images); `None` for plain-text mail.
    #[serde(default)]
    pub html: Option<String>,
    /// Quoted history cut from the plain-text body (the "On … wrote:" tail),
    /// for the desktop to fold away.
    #[serde(default)]
    pub quoted: Option<String>,
    #[serde(default)]
    pub attachments: Vec<Attachment>,
    /// What could not be kept and why, in words for the agent (a refused
    /// attachment, a body cut at the length limit, broken MIME).
    #[serde(default)]
    pub notes: Vec<String>,
}

/// A file that came with a mail. `stored` files download from
/// `/v1/attachments/{id}`; refused ones keep their name and the reason.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    pub id: uuid::Uuid,
    pub filename: String,
    pub content_type: String,
    pub size: u64,
    /// Shown inside the HTML body (`cid:` image) rather than listed.
    #[serde(default)]
    pub inline: bool,
    pub stored: bool,
    #[serde(default)]
    pub refused: Option<String>,
}

/// Where an outgoing email reply stands.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Waiting in the outbox (first try, or a retry after a temporary failure).
    Queued,
    /// Accepted by the SMTP server.
    Sent,
    /// Refused for good by the SMTP server, or retries ran out.
    Failed,
    /// Accepted, then returned by the recipient's server (a bounce).
    Bounced,
}

/// Delivery of an agent's reply on an email conversation.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    pub status: DeliveryStatus,
    pub to: Vec<String>,
    pub attempts: u32,
    /// Why the last attempt failed or the mail bounced, as the server said it.
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub next_attempt_at: Option<Timestamp>,
    pub updated_at: Timestamp,
}

/// A sender whose mail is held because it could not be matched to an
/// account (`GET /v1/mail/contacts`), as staff see it. Linking it to an
/// account turns the held mail into conversations there.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldContact {
    pub id: uuid::Uuid,
    pub email: String,
    pub name: String,
    /// Why the sender was not placed on an account.
    pub reason: String,
    /// Mails waiting for a link.
    pub held: u32,
    /// Subject of the latest held mail.
    pub latest_subject: Option<String>,
    /// Set once staff linked the sender; its later mail goes there directly.
    pub linked_account_id: Option<crate::AccountId>,
}
