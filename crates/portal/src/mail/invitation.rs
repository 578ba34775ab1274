//! Invitations by email: inviting a user queues a mail with a one-time
//! link through the mail outbox (the same transactional outbox as agents'
//! replies: queued if and only if the invitation is stored); the link's
//! token lets the invited person choose a password and sign in.
//!
//! Tokens are 256 random bits, stored only as their SHA-256, valid for 7
//! days and usable once; a new invitation of the same user replaces the
//! old ones. The token travels in the link's fragment (`#token=`), which
//! browsers never send to servers or in `Referer`.

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
pub fn send(w: &mut Writer<'_>, user: &User, account: &Account, inviter: &str) -> Result<String> {
    let token = auth::new_token();
    let now = w.at().as_second();
    w.execute(
        "UPDATE invitations SET used_at = ?2 WHERE user_id = ?1 AND used_at IS NULL",
        params![user.id.to_string(), now],
    )?;
    w.execute(
        "INSERT INTO invitations (token_hash, user_id, account_id, expires_at, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![auth::token_hash(&token), user.id.to_string(), account.id.to_string(), now + INVITE_TTL_SECS, now],
    )?;
    let link = format!("{}/portal/invite#token={token}", public_url(w)?);
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

/// Accepts an invitation: checks the token, sets the password, activates
/// the user and marks the token used, in one transaction. The same error
/// for unknown, used and expired tokens would hide nothing useful, so each
/// says what happened and what to do.
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
    let row: Option<(String, i64, Option<i64>)> = store.read(|c| {
        Ok(c.query_row(
            "SELECT user_id, expires_at, used_at FROM invitations WHERE token_hash = ?1",
            [auth::token_hash(token)],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?)
    })?;
    let Some((user_id, expires_at, used_at)) = row else {
        return Err(PortalError::Unauthenticated(
            "this invitation link is not valid; ask your administrator to invite you again",
        ));
    };
    if used_at.is_some() {
        return Err(PortalError::Unauthenticated(
            "this invitation was already used or replaced; sign in, or ask for a new one",
        ));
    }
    if at.as_second() >= expires_at {
        return Err(PortalError::Unauthenticated(
            "this invitation has expired; ask your administrator to invite you again",
        ));
    }
    let id: UserId = user_id
        .parse()
        .map_err(|_| PortalError::Unauthenticated("the invited user is unknown"))?;
    store.write(
        crate::store::Actor {
            user_id: Some(id),
            role: None,
        },
        at,
        |w| {
            let mut u: User = store::require(w, id.0)?;
            if u.status != UserStatus::Invited {
                return Err(PortalError::Unauthenticated(
                    "this invitation no longer applies; ask your administrator",
                ));
            }
            // Claimed in the same transaction: a second use finds it used.
            let n = w.execute(
                "UPDATE invitations SET used_at = ?2 WHERE token_hash = ?1 AND used_at IS NULL",
                params![auth::token_hash(token), at.as_second()],
            )?;
            if n == 0 {
                return Err(PortalError::Unauthenticated(
                    "this invitation was already used",
                ));
            }
            auth::set_password_hash(w, u.id, &hash, at)?;
            u.status = UserStatus::Active;
            w.update(&mut u)?;
            w.audit("user.invitation_accepted", &u, serde_json::Value::Null)?;
            Ok(u)
        },
    )
}
