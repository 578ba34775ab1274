//! The email channel: support mailboxes in, threaded replies out.
//!
//! Mail arrives by IMAP ([`imap`]) or by a provider's inbound hook
//! (`POST /v1/mail/inbound`); both hand raw RFC 822 bytes to [`ingest`],
//! which parses them ([`parse`]), recognises automatic mail ([`classify`]),
//! finds the thread ([`thread`]) and the customer ([`sender`]), and writes
//! through the same path as the API (`conversations::open_in` /
//! `append_message`), so routing, SLAs and assignment treat an email like a
//! chat. Agents' replies on email conversations are queued in the
//! transaction that stores them and sent over SMTP by [`outbox`].
//!
//! Decisions and the handling of hostile mail are in `docs/email.md`.

pub mod classify;
pub mod imap;
pub mod ingest;
pub mod invitation;
pub mod outbox;
pub mod parse;
pub mod sender;
pub mod thread;

/// Largest mail taken whole. A bigger one (a 50 MB attachment) is read only
/// up to [`HEAD_BYTES`]: its text is kept, its attachments are not, and the
/// agent sees why. The original stays in the mailbox.
pub const MAX_MESSAGE_BYTES: usize = 30 * 1024 * 1024;

/// How much of an over-size mail is read: enough for headers and the text
/// part that comes first in practically every mailer's layout.
pub const HEAD_BYTES: usize = 1024 * 1024;

/// Largest single attachment stored (what most providers allow per file).
pub const MAX_ATTACHMENT_BYTES: usize = 10 * 1024 * 1024;

/// Largest total of attachments stored for one mail.
pub const MAX_ATTACHMENTS_TOTAL: usize = 25 * 1024 * 1024;

/// What the HTTP side of the channel needs.
#[derive(Debug, Clone)]
pub struct MailSettings {
    pub identity: MailIdentity,
    /// Bearer secret of `POST /v1/mail/inbound`; `None` disables the hook.
    pub hook_secret: Option<String>,
}

/// Who the desk is on email, shared by ingest (to spot our own mail) and
/// the outbox (From, Reply-To, Message-ID domain).
#[derive(Debug, Clone)]
pub struct MailIdentity {
    /// The support address, e.g. `support@example.com`, lowercased.
    pub address: String,
    /// The display name on replies, e.g. `Example Support`.
    pub name: String,
    /// Signature for teams without their own (`PUT /v1/mail/signatures/{team}`).
    pub default_signature: String,
    /// The `authserv-id` of the receiving server whose
    /// `Authentication-Results` we trust; `None` trusts the topmost one.
    pub authserv_id: Option<String>,
}

impl MailIdentity {
    pub fn new(address: &str, name: &str) -> MailIdentity {
        MailIdentity {
            address: address.trim().to_lowercase(),
            name: name.to_owned(),
            default_signature: format!("-- \n{name}"),
            authserv_id: None,
        }
    }

    /// The part after `@`: the domain of our Message-IDs.
    pub fn domain(&self) -> &str {
        self.address
            .rsplit_once('@')
            .map_or("localhost", |(_, d)| d)
    }

    /// `support+tag@domain`: where replies carrying a reply token go.
    pub fn tagged(&self, tag: &str) -> String {
        match self.address.split_once('@') {
            Some((local, domain)) => format!("{local}+{tag}@{domain}"),
            None => self.address.clone(),
        }
    }
}

/// Lowercased address with surrounding space and angle brackets removed.
pub fn normalize_address(raw: &str) -> String {
    raw.trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim()
        .to_lowercase()
}

/// The domain of an address, lowercased; `None` when it has no `@`.
pub fn domain_of(address: &str) -> Option<&str> {
    address
        .rsplit_once('@')
        .map(|(_, d)| d)
        .filter(|d| !d.is_empty())
}
