//! portal-core's typed errors. Each has a stable `code()` that clients branch
//! on and an HTTP status; the message is for people.

use portico_model::billing::ChangeRejected;
use portico_model::{Denied, Invalid, Kind};

#[derive(Debug, thiserror::Error)]
pub enum PortalError {
    #[error("{kind} {id} was not found")]
    NotFound { kind: &'static str, id: String },
    #[error("{0}")]
    Forbidden(&'static str),
    /// A cookie-authenticated change without a valid CSRF token, or from
    /// another site (see `web_guard`).
    #[error("{0}")]
    CsrfFailed(&'static str),
    #[error("sign in first: {0}")]
    Unauthenticated(&'static str),
    #[error("{0}")]
    Invalid(#[from] Invalid),
    #[error(
        "{kind} changed since you loaded it (you had version {expected}, it is now {actual}); reload and try again"
    )]
    VersionConflict {
        kind: &'static str,
        expected: u64,
        actual: u64,
    },
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Billing(#[from] ChangeRejected),
    #[error("too many attempts; try again in {retry_after_secs} seconds")]
    RateLimited { retry_after_secs: u64 },
    #[error("{0}")]
    OAuth(OAuthError),
    #[error("storage failed: {0}")]
    Storage(#[from] rusqlite::Error),
    #[error("storage pool failed: {0}")]
    Pool(#[from] r2d2::Error),
    #[error("stored {kind:?} record is unreadable: {source}")]
    Corrupt {
        kind: Kind,
        source: serde_json::Error,
    },
    #[error("the server is shutting down or overloaded")]
    Unavailable,
    #[error(
        "sync protocol {got} is not supported; this server speaks protocol {want}: update the app"
    )]
    UnsupportedProtocol { got: u32, want: u32 },
    #[error(
        "{0} replied since you opened this conversation; read their answer, then send again with force to reply anyway"
    )]
    NewerReply(String),
    /// A refusal with its own status and stable code (attachment limits).
    #[error("{message}")]
    Refused {
        status: u16,
        code: &'static str,
        message: String,
    },
    #[error("knowledge search failed: {0}")]
    Knowledge(portico_knowledge::KnowledgeError),
}

/// OAuth 2.0 error codes (RFC 6749 §5.2), kept as their standard strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OAuthErrorCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnsupportedGrantType,
}

#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct OAuthError {
    pub code: OAuthErrorCode,
    pub message: String,
}

impl OAuthErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            OAuthErrorCode::InvalidRequest => "invalid_request",
            OAuthErrorCode::InvalidClient => "invalid_client",
            OAuthErrorCode::InvalidGrant => "invalid_grant",
            OAuthErrorCode::UnsupportedGrantType => "unsupported_grant_type",
        }
    }
}

impl PortalError {
    pub fn not_found(kind: Kind, id: impl ToString) -> Self {
        PortalError::NotFound {
            kind: kind.as_str(),
            id: id.to_string(),
        }
    }

    pub fn oauth(code: OAuthErrorCode, message: impl Into<String>) -> Self {
        PortalError::OAuth(OAuthError {
            code,
            message: message.into(),
        })
    }

    /// Maps a policy refusal; `kind`/`id` name what a hidden record looks like.
    pub fn denied(d: Denied, kind: Kind, id: impl ToString) -> Self {
        match d {
            Denied::NotFound => PortalError::not_found(kind, id),
            Denied::Forbidden(why) => PortalError::Forbidden(why),
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            PortalError::NotFound { .. } => "not_found",
            PortalError::Forbidden(_) => "forbidden",
            PortalError::CsrfFailed(_) => "csrf_failed",
            PortalError::Unauthenticated(_) => "unauthenticated",
            PortalError::Invalid(_) => "validation_failed",
            PortalError::VersionConflict { .. } => "version_conflict",
            PortalError::Conflict(_) => "conflict",
            PortalError::Billing(b) => b.code(),
            PortalError::RateLimited { .. } => "rate_limited",
            PortalError::OAuth(o) => o.code.as_str(),
            PortalError::Storage(_) | PortalError::Pool(_) | PortalError::Corrupt { .. } => {
                "internal"
            }
            PortalError::Unavailable => "unavailable",
            PortalError::UnsupportedProtocol { .. } => "unsupported_protocol",
            PortalError::NewerReply(_) => "newer_reply",
            PortalError::Knowledge(k) => k.code(),
            PortalError::Refused { code, .. } => code,
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            PortalError::NotFound { .. } => 404,
            PortalError::Forbidden(_) | PortalError::CsrfFailed(_) => 403,
            PortalError::Unauthenticated(_) => 401,
            PortalError::Invalid(_) => 422,
            PortalError::VersionConflict { .. } | PortalError::Conflict(_) => 409,
            PortalError::Billing(_) => 422,
            PortalError::RateLimited { .. } => 429,
            PortalError::OAuth(o) => match o.code {
                OAuthErrorCode::InvalidClient => 401,
                _ => 400,
            },
            PortalError::Storage(_) | PortalError::Pool(_) | PortalError::Corrupt { .. } => 500,
            PortalError::Unavailable => 503,
            PortalError::UnsupportedProtocol { .. } => 400,
            PortalError::NewerReply(_) => 409,
            PortalError::Knowledge(_) => 500,
            PortalError::Refused { status, .. } => *status,
        }
    }

    pub fn field(&self) -> Option<&str> {
        match self {
            PortalError::Invalid(i) => Some(&i.field),
            _ => None,
        }
    }
}

pub type Result<T, E = PortalError> = std::result::Result<T, E>;
