//! Invitations by email: inviting a user queues a mail with a one-time
//! link through the mail outbox (the same transactional outbox as agents'
//! replies: queued if and only if the invitation is stored); the link's
//! token lets the invited person choose a password and sign in.
//!
//! Tokens are 256 random bits, stored only as their SHA-256, valid for 7
//! days and usable once; a new invitation of the same user replaces the
//! old ones. The token travels in the link's fragment (`#token=`), which
//! browsers never send to servers or in `Referer`. The link's page first
//! asks what the link invites to (`pending`), then accepts (`accept`); both
//! refuse a dead link with the same stable code per reason.

use jiff::Timestamp;
use portico_model::*;
use rusqlite::{OptionalExtension, params};

use crate::auth;
use crate::error::{PortalError, Result};
use crate::store::{self, Store, Writer};

pub const INVITE_TTL_SECS: i64 = 7 * 86_400;
pub const MIN_PASSWORD_CHARS: usize = 10;
/// Where invitation links point when `--public-url` is not set.
pub const DEFAULT_PUBLIC_URL: &str = "http://127.0.0.1:8080";

/// Stores the portal's public address, for links in mail.
pub fn set_public_url(store: &Store, url: &str) -> Result<()> {
    store.write_raw(|c| {
        c.execute(
            "INSERT INTO mail_settings (key, value) VALUES ('public_url', ?1)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [url.trim_end_matches('/')],
        )?;
        Ok(())
    })
}

fn public_url(w: &Writer<'_>) -> Result<String> {
    Ok(w.query_row(
        "SELECT value FROM mail_settings WHERE key = 'public_url'",
        [],
        |r| r.get(0),
    )
    .optional()?
    .unwrap_or_else(|| DEFAULT_PUBLIC_URL.to_owned()))
}

/// Queues the invitation mail for `user` (just invited) inside the
/// invitation's transaction. Returns the token (for tests and the log).
pub fn send(w: &mut Writer<'_>, user: &User, account: &Account, inviter: &User) -> Result<String> {
    let token = auth::new_token();
    let now = w.at().as_second();
    w.execute(
        "UPDATE invitations SET used_at = ?2 WHERE user_id = ?1 AND used_at IS NULL",
        params![user.id.to_string(), now],
    )?;
    w.execute(
        "INSERT INTO invitations (token_hash, user_id, account_id, expires_at, created_at, invited_by) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            auth::token_hash(&token),
            user.id.to_string(),
            account.id.to_string(),
            now + INVITE_TTL_SECS,
            now,
            inviter.id.to_string()
        ],
    )?;
    let link = format!("{}/portal/invite#token={token}", public_url(w)?);
    let inviter = &inviter.name;
    let subject = format!("{inviter} invited you to {} on Portico", account.name);
    let body = format!(
        "Hello {name},\n\n{inviter} invited you to join {account} on Portico, where your team \
         sees its plan, usage and requests and talks to our support team.\n\n\
         Accept the invitation and choose your password:\n{link}\n\n\
         The link works once and expires in 7 days. If you did not expect this mail, ignore it.\n",
        name = user.name,
        account = account.name,
    );
    let id = uuid::Uuid::new_v4().to_string();
    w.execute(
        "INSERT INTO mail_notices (id, to_address, to_name, subject, body, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![id, user.email, user.name, subject, body, w.at().as_millisecond()],
    )?;
    w.execute(
        "INSERT INTO mail_outbound (message_id, conversation_id, kind, next_attempt_at, created_at) VALUES (?1, '', 'notice', ?2, ?2)",
        params![id, w.at().as_millisecond()],
    )?;
    Ok(token)
}

/// A queued notice: what the outbox sends for it.
#[derive(Debug, Clone)]
pub struct Notice {
    pub to_address: String,
    pub to_name: String,
    pub subject: String,
    pub body: String,
}

pub fn notice(c: &rusqlite::Connection, id: &str) -> Result<Option<Notice>> {
    Ok(c.query_row(
        "SELECT to_address, to_name, subject, body FROM mail_notices WHERE id = ?1",
        [id],
        |r| {
            Ok(Notice {
                to_address: r.get(0)?,
                to_name: r.get(1)?,
                subject: r.get(2)?,
                body: r.get(3)?,
            })
        },
    )
    .optional()?)
}

/// Why a link no longer works. Each has its own stable code so the page
/// can say what happened and what to do: hiding which case it is would
/// protect nothing (tokens are 256 random bits) and leave people stuck.
fn refused(status: u16, code: &'static str, message: &str) -> PortalError {
    PortalError::Refused {
        status,
        code,
        message: message.to_owned(),
    }
}

fn unknown() -> PortalError {
    refused(
        404,
        "invitation_unknown",
        "this invitation link is not valid; check that you opened the whole link from the mail, or ask your administrator to invite you again",
    )
}

fn used() -> PortalError {
    refused(
        410,
        "invitation_used",
        "this invitation was already used or replaced by a newer one; sign in, or ask your administrator for a new invitation",
    )
}

fn expired() -> PortalError {
    refused(
        410,
        "invitation_expired",
        "this invitation has expired; ask your administrator to invite you again",
    )
}

fn withdrawn() -> PortalError {
    refused(
        410,
        "invitation_withdrawn",
        "this invitation was withdrawn; ask your administrator to invite you again",
    )
}

/// What the invitation link's page shows before a password is chosen:
/// only what the mail already told the person holding the link.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Pending {
    pub account_name: String,
    pub email: String,
    pub name: String,
    /// The inviter's name now; absent for invitations stored without it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invited_by: Option<String>,
    pub expires_at: Timestamp,
    /// The password rule `accept` enforces, so the page can say it up front.
    pub password_min_chars: usize,
}

/// A token that can still be accepted: its invited user and the row's facts.
struct Valid {
    user: User,
    account_id: String,
    invited_by: Option<String>,
    expires_at: i64,
}

/// Checks a token the way `accept` does, without using it.
fn valid(c: &rusqlite::Connection, token: &str, at: Timestamp) -> Result<Valid> {
    if token.is_empty() || token.len() > 100 {
        return Err(unknown());
    }
    /// user_id, account_id, expires_at, used_at, invited_by
    type Row = (String, String, i64, Option<i64>, Option<String>);
    let row: Option<Row> = c
        .query_row(
            "SELECT user_id, account_id, expires_at, used_at, invited_by FROM invitations WHERE token_hash = ?1",
            [auth::token_hash(token)],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .optional()?;
    let Some((user_id, account_id, expires_at, used_at, invited_by)) = row else {
        return Err(unknown());
    };
    if used_at.is_some() {
        return Err(used());
    }
    if at.as_second() >= expires_at {
        return Err(expired());
    }
    let id: UserId = user_id.parse().map_err(|_| unknown())?;
    let user: User = store::get(c, id.0)?.ok_or_else(unknown)?;
    // A user removed after the mail went out keeps the unused row.
    if user.status != UserStatus::Invited {
        return Err(withdrawn());
    }
    Ok(Valid {
        user,
        account_id,
        invited_by,
        expires_at,
    })
}

/// What a still-valid link invites to (`GET /v1/auth/invitation`).
pub fn pending(c: &rusqlite::Connection, token: &str, at: Timestamp) -> Result<Pending> {
    let v = valid(c, token, at)?;
    let account_id: AccountId = v.account_id.parse().map_err(|_| unknown())?;
    let account: Account = store::get(c, account_id.0)?.ok_or_else(unknown)?;
    let inviter = match v.invited_by.as_deref().map(str::parse::<UserId>) {
        Some(Ok(id)) => store::get::<User>(c, id.0)?.map(|u| u.name),
        _ => None,
    };
    Ok(Pending {
        account_name: account.name,
        email: v.user.email,
        name: v.user.name,
        invited_by: inviter,
        expires_at: Timestamp::from_second(v.expires_at).map_err(|_| unknown())?,
        password_min_chars: MIN_PASSWORD_CHARS,
    })
}

/// Accepts an invitation: checks the token, sets the password, activates
/// the user and marks the token used, in one transaction.
pub fn accept(store: &Store, token: &str, password: &str, at: Timestamp) -> Result<User> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(Invalid::new(
            "password",
            format!("choose at least {MIN_PASSWORD_CHARS} characters"),
        )
        .into());
    }
    if password.len() > 1024 {
        return Err(Invalid::new("password", "at most 1024 bytes").into());
    }
    let hash = auth::hash_password(password);
    let id = store.read(|c| valid(c, token, at))?.user.id;
    store.write(
        crate::store::Actor {
            user_id: Some(id),
            role: None,
        },
        at,
        |w| {
            let mut u: User = store::require(w, id.0)?;
            if u.status != UserStatus::Invited {
                return Err(withdrawn());
            }
            // Claimed in the same transaction: a second use finds it used.
            let n = w.execute(
                "UPDATE invitations SET used_at = ?2 WHERE token_hash = ?1 AND used_at IS NULL",
                params![auth::token_hash(token), at.as_second()],
            )?;
            if n == 0 {
                return Err(used());
            }
            auth::set_password_hash(w, u.id, &hash, at)?;
            u.status = UserStatus::Active;
            w.update(&mut u)?;
            w.audit("user.invitation_accepted", &u, serde_json::Value::Null)?;
            Ok(u)
        },
    )
}
