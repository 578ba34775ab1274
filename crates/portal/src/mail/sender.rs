//! Who wrote a mail: a portal user of an account, someone at a domain staff
//! verified for an account (or a contact staff linked to one), or nobody we
//! know. Unknown senders are held as contacts until staff link them, so
//! strangers never reach a queue, an SLA clock or an account's history.

use portico_model::{AccountId, User, UserStatus};
use rusqlite::{Connection, OptionalExtension, params};

use super::domain_of;
use crate::error::Result;
use crate::store;

/// The answer of [`identify`].
#[derive(Debug, Clone)]
pub enum Sender {
    /// A customer user of the account (invited or active).
    User(User),
    /// Not a user, but placed on an account by a verified domain or a
    /// contact staff linked; `via` says which, for the audit trail.
    OnAccount {
        account: AccountId,
        via: &'static str,
    },
    /// Held: no user, no verified domain, or an address that failed
    /// authentication.
    Unknown { reason: String },
}

/// Identifies the sender `address` (lowercased). `auth_failure` is the
/// receiving server's verdict against the From domain: such a sender is
/// never placed on an account by address or domain, whatever it claims.
pub fn identify(conn: &Connection, address: &str, auth_failure: Option<&str>) -> Result<Sender> {
    if let Some(why) = auth_failure {
        return Ok(Sender::Unknown {
            reason: format!("{why}: the From address may be forged"),
        });
    }
    let user: Option<User> =
        store::query(conn, "SELECT data FROM users WHERE email = ?1", [address])?.pop();
    match user {
        Some(u) if u.role.is_staff() => {
            return Ok(Sender::Unknown {
                reason: "a staff address: staff answer from the desk, not by mail to support"
                    .into(),
            });
        }
        Some(u) if u.status != UserStatus::Disabled => return Ok(Sender::User(u)),
        _ => {}
    }
    let linked: Option<String> = conn
        .query_row(
            "SELECT linked_account_id FROM mail_contacts WHERE email = ?1 AND linked_account_id IS NOT NULL",
            [address],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(a) = linked.and_then(|a| a.parse().ok()) {
        return Ok(Sender::OnAccount {
            account: a,
            via: "linked_contact",
        });
    }
    if let Some(a) = domain_of(address)
        .map(|d| verified_domain(conn, d))
        .transpose()?
        .flatten()
    {
        return Ok(Sender::OnAccount {
            account: a,
            via: "verified_domain",
        });
    }
    Ok(Sender::Unknown {
        reason: "no user has this address and its domain is not verified for an account".into(),
    })
}

/// The account a domain is verified for.
pub fn verified_domain(conn: &Connection, domain: &str) -> Result<Option<AccountId>> {
    let a: Option<String> = conn
        .query_row(
            "SELECT account_id FROM mail_domains WHERE domain = ?1",
            [domain.to_lowercase()],
            |r| r.get(0),
        )
        .optional()?;
    Ok(a.and_then(|a| a.parse().ok()))
}

/// Domains of public mail providers: an address there says nothing about
/// the company, so such a domain cannot be verified for an account.
const PUBLIC_MAIL: &[&str] = &[
    "gmail.com",
    "googlemail.com",
    "outlook.com",
    "hotmail.com",
    "live.com",
    "yahoo.com",
    "icloud.com",
    "me.com",
    "aol.com",
    "gmx.de",
    "gmx.net",
    "web.de",
    "proton.me",
    "protonmail.com",
    "yandex.ru",
    "mail.ru",
    "qq.com",
    "163.com",
];

/// Marks `domain` as the account's: later mail from any address there is
/// placed on it. Public mail domains are refused.
pub fn verify_domain(
    conn: &Connection,
    domain: &str,
    account: AccountId,
    at_ms: i64,
) -> Result<()> {
    let domain = domain.trim().to_lowercase();
    if !domain.contains('.') || domain.contains('@') || domain.chars().any(char::is_whitespace) {
        return Err(
            portico_model::Invalid::new("domain", "must be a domain like example.com").into(),
        );
    }
    if PUBLIC_MAIL.contains(&domain.as_str()) {
        return Err(portico_model::Invalid::new(
            "domain",
            "is a public mail provider; anyone can have an address there",
        )
        .into());
    }
    conn.execute(
        "INSERT INTO mail_domains (domain, account_id, verified_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (domain) DO UPDATE SET account_id = excluded.account_id, verified_at = excluded.verified_at",
        params![domain, account.to_string(), at_ms],
    )?;
    Ok(())
}

/// A held sender as staff see it (the wire type is the model's).
pub use portico_model::email::HeldContact as Contact;

/// Records (or refreshes) the held sender `address`; returns its id.
pub fn hold(
    conn: &Connection,
    address: &str,
    name: &str,
    reason: &str,
    at_ms: i64,
    new_id: uuid::Uuid,
) -> Result<uuid::Uuid> {
    conn.execute(
        "INSERT INTO mail_contacts (id, email, name, reason, first_seen, last_seen)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5)
         ON CONFLICT (email) DO UPDATE SET last_seen = excluded.last_seen, reason = excluded.reason,
             name = CASE WHEN excluded.name != '' THEN excluded.name ELSE name END",
        params![new_id.to_string(), address, name, reason, at_ms],
    )?;
    let id: String = conn.query_row(
        "SELECT id FROM mail_contacts WHERE email = ?1",
        [address],
        |r| r.get(0),
    )?;
    Ok(id.parse().expect("contact ids are UUIDs"))
}

/// Held senders with mail waiting, most recent first.
pub fn held_contacts(conn: &Connection, limit: usize) -> Result<Vec<Contact>> {
    let mut stmt = conn.prepare_cached(
        "SELECT c.id, c.email, c.name, c.reason, c.linked_account_id,
                (SELECT count(*) FROM mail_inbound i WHERE i.contact_id = c.id AND i.disposition = 'held'),
                (SELECT subject FROM mail_inbound i WHERE i.contact_id = c.id AND i.disposition = 'held' ORDER BY id DESC LIMIT 1)
         FROM mail_contacts c ORDER BY c.last_seen DESC, c.id LIMIT ?1",
    )?;
    let rows = stmt.query_map([limit as i64], |r| {
        Ok(Contact {
            id: r.get::<_, String>(0)?.parse().unwrap_or_default(),
            email: r.get(1)?,
            name: r.get(2)?,
            reason: r.get(3)?,
            linked_account_id: r.get::<_, Option<String>>(4)?.and_then(|a| a.parse().ok()),
            held: r.get(5)?,
            latest_subject: r.get(6)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}
