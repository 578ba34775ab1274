//! Email channel endpoints: the provider's inbound hook, held contacts,
//! verified domains, team signatures and attachment downloads. The work is
//! in `crate::mail`; these handlers authenticate, authorize and shape.

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use futures_util::StreamExt;
use portico_model::*;
use rusqlite::OptionalExtension;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{ApiError, AppState, Auth, Json, Path, authorize};
use crate::error::PortalError;
use crate::mail::ingest::{self, Outcome, Received};
use crate::mail::sender;
use crate::store::{self, Actor};

/// Largest body the inbound hook reads; bigger posts are refused (413).
/// Mail between [`crate::mail::MAX_MESSAGE_BYTES`] and this is taken by its
/// head, like an over-size mail fetched over IMAP.
pub const MAX_HOOK_BYTES: usize = 100 * 1024 * 1024;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/mail/inbound", post(inbound))
        .route("/v1/mail/contacts", get(contacts))
        .route("/v1/mail/contacts/{id}/link", post(link))
        .route("/v1/mail/domains", get(domains))
        .route(
            "/v1/mail/domains/{domain}",
            put(verify_domain).delete(unverify_domain),
        )
        .route("/v1/mail/signatures/{team_id}", put(set_signature))
        .route("/v1/attachments/{id}", get(attachment))
}

fn not_configured() -> ApiError {
    ApiError(PortalError::NotFound {
        kind: "route",
        id: "/v1/mail/inbound (mail is not configured on this server: set PORTICO_MAIL_ADDRESS and PORTICO_MAIL_HOOK_SECRET)".into(),
    })
}

/// Raw RFC 822 from a mail provider's inbound hook, authenticated by
/// `Authorization: Bearer <hook secret>`. Answers `202` with what became of
/// the mail; the same mail posted again answers `duplicate`.
async fn inbound(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let mail = st.mail.clone().ok_or_else(not_configured)?;
    let Some(secret) = mail.hook_secret.as_deref() else {
        return Err(not_configured());
    };
    let presented = super::presented_token(&headers).unwrap_or_default();
    // Compare digests: equal-length inputs, no early exit on the secret.
    if Sha256::digest(presented.as_bytes()) != Sha256::digest(secret.as_bytes()) {
        return Err(PortalError::Unauthenticated(
            "send Authorization: Bearer <the inbound hook secret>",
        )
        .into());
    }
    let mut raw = Vec::new();
    let mut size = 0usize;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            PortalError::Invalid(Invalid::new("body", format!("the upload broke off: {e}")))
        })?;
        size += chunk.len();
        if size > MAX_HOOK_BYTES {
            return Ok(ApiError::plain(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("a mail over {} MB is refused", MAX_HOOK_BYTES / 1_048_576),
            ));
        }
        // Past the limit only the head is kept; the rest is read and dropped.
        if raw.len() < crate::mail::MAX_MESSAGE_BYTES + 1 {
            raw.extend_from_slice(&chunk);
        }
    }
    if raw.is_empty() {
        return Err(Invalid::new("body", "send the mail's raw RFC 822 bytes as the body").into());
    }
    let mut received = Received::new("hook", raw);
    received.size = size;
    let identity = mail.identity.clone();
    let at = st.clock.now();
    let outcome: Outcome = st
        .blocking(move |store| ingest::store_received(store, at, &identity, &received, |_| Ok(())))
        .await?;
    tracing::info!(disposition = ?outcome.disposition, conversation = ?outcome.conversation_id, "mail received by hook");
    Ok((StatusCode::ACCEPTED, axum::Json(outcome)).into_response())
}

/// Held senders (staff): who wrote, why they were held, how many mails wait.
async fn contacts(State(st): State<AppState>, Auth(viewer): Auth) -> Result<Json<Value>, ApiError> {
    authorize(&viewer, Action::Triage, Kind::Conversation, "contacts")?;
    let list = st.read(|c| sender::held_contacts(c, 200)).await?;
    Ok(Json(json!({ "items": list })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LinkInput {
    account_id: AccountId,
}

/// Links a held sender to an account (staff); its held mail becomes
/// conversations there now, and its later mail goes there directly.
async fn link(
    State(st): State<AppState>,
    Auth(viewer): Auth,
    Path(id): Path<uuid::Uuid>,
    Json(input): Json<LinkInput>,
) -> Result<Json<Value>, ApiError> {
    authorize(&viewer, Action::Triage, Kind::Conversation, id)?;
    let identity = st
        .mail
        .as_ref()
        .map(|m| m.identity.clone())
        .unwrap_or_else(|| crate::mail::MailIdentity::new("support@localhost", ""));
    let placed = st
        .write(Actor::from(&viewer), move |w| {
            ingest::link_contact(w, &identity, id, input.account_id)
        })
        .await?;
    Ok(Json(json!({ "placed": placed })))
}

/// Verified domains (staff).
async fn domains(State(st): State<AppState>, Auth(viewer): Auth) -> Result<Json<Value>, ApiError> {
    authorize(&viewer, Action::Triage, Kind::Account, "domains")?;
    let rows = st
        .read(|c| {
            let mut stmt = c.prepare("SELECT domain, account_id FROM mail_domains ORDER BY domain")?;
            let rows = stmt.query_map([], |r| {
                Ok(json!({ "domain": r.get::<_, String>(0)?, "account_id": r.get::<_, String>(1)? }))
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await?;
    Ok(Json(json!({ "items": rows })))
}

/// Marks a domain as the account's (staff who manage accounts).
async fn verify_domain(
    State(st): State<AppState>,
    Auth(viewer): Auth,
    Path(domain): Path<String>,
    Json(input): Json<LinkInput>,
) -> Result<Json<Value>, ApiError> {
    authorize(
        &viewer,
        Action::UpdateAccountStaffFields,
        Kind::Account,
        input.account_id,
    )?;
    let account = input.account_id;
    let d = domain.clone();
    st.write(Actor::from(&viewer), move |w| {
        let acct: Account = store::require(w, account.0)?;
        sender::verify_domain(w, &d, account, w.at().as_millisecond())?;
        w.audit(
            "mail.domain_verified",
            &acct,
            json!({ "domain": d.to_lowercase() }),
        )
    })
    .await?;
    Ok(Json(
        json!({ "domain": domain.to_lowercase(), "account_id": account }),
    ))
}

async fn unverify_domain(
    State(st): State<AppState>,
    Auth(viewer): Auth,
    Path(domain): Path<String>,
) -> Result<StatusCode, ApiError> {
    authorize(
        &viewer,
        Action::UpdateAccountStaffFields,
        Kind::Account,
        &domain,
    )?;
    let d = domain.to_lowercase();
    let n = st
        .write(Actor::from(&viewer), move |w| {
            Ok(w.execute("DELETE FROM mail_domains WHERE domain = ?1", [d])?)
        })
        .await?;
    if n == 0 {
        return Err(PortalError::NotFound {
            kind: "domain",
            id: domain,
        }
        .into());
    }
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignatureInput {
    signature: String,
}

/// Sets the signature appended to a team's email replies (leads, admins).
async fn set_signature(
    State(st): State<AppState>,
    Auth(viewer): Auth,
    Path(team): Path<TeamId>,
    Json(input): Json<SignatureInput>,
) -> Result<Json<Value>, ApiError> {
    authorize(&viewer, Action::ManageRules, Kind::Team, team)?;
    validate::check_len("signature", &input.signature, 2_000)?;
    let sig = input.signature.clone();
    st.write(Actor::from(&viewer), move |w| {
        let t: Team = store::require(w, team.0)?;
        w.execute(
            "INSERT INTO mail_signatures (team_id, signature) VALUES (?1, ?2)
             ON CONFLICT (team_id) DO UPDATE SET signature = excluded.signature",
            [team.to_string(), sig],
        )?;
        w.audit("mail.signature_set", &t, json!({}))
    })
    .await?;
    Ok(Json(
        json!({ "team_id": team, "signature": input.signature }),
    ))
}

/// Types a browser may show as themselves; everything else downloads as
/// bytes, so an HTML or SVG attachment can never run in Portico's origin.
const SHOWN_AS_IS: &[&str] = &[
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "application/pdf",
    "text/plain",
];

/// An attachment's bytes, to whoever may see its message.
async fn attachment(
    State(st): State<AppState>,
    Auth(viewer): Auth,
    Path(id): Path<uuid::Uuid>,
) -> Result<Response, ApiError> {
    let v = viewer.clone();
    let (filename, content_type, data) = st
        .read(move |c| {
            let row: Option<(String, String, String, Vec<u8>)> = c
                .query_row(
                    "SELECT message_id, filename, content_type, data FROM mail_attachments WHERE id = ?1",
                    [id.to_string()],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )
                .optional()?;
            let missing = || PortalError::NotFound { kind: "attachment", id: id.to_string() };
            let (mid, filename, ct, data) = row.ok_or_else(missing)?;
            // The message's rule and its conversation's (team access).
            let msg: Option<Message> = store::get(c, mid.parse().map_err(|_| missing())?)?;
            let Some(m) = msg.filter(|m| m.visible_to(&v)) else {
                return Err(missing());
            };
            match store::get::<Conversation>(c, m.conversation_id.0)? {
                Some(conv) if conv.visible_to(&v) => Ok((filename, ct, data)),
                _ => Err(missing()),
            }
        })
        .await?;
    let served = if SHOWN_AS_IS.contains(&content_type.as_str()) {
        content_type
    } else {
        "application/octet-stream".to_owned()
    };
    let ascii: String = filename
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || ".-_ ".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    Ok((
        [
            (header::CONTENT_TYPE, served),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{ascii}\""),
            ),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; sandbox".to_owned(),
            ),
            (header::CACHE_CONTROL, "private, no-store".to_owned()),
        ],
        data,
    )
        .into_response())
}
