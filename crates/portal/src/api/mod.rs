//! The HTTP API under `/v1` (and the OAuth endpoints under `/oauth`).
//!
//! Handlers are thin: authenticate, run one store operation on a blocking
//! thread, shape the answer with the policy's `redact`. Errors leave as
//! `{"error": {"code", "message", "field"?}}` with a stable code.

pub(crate) mod accounts;
mod ai;
pub(crate) mod billing;
mod community;
pub(crate) mod conversations;
mod dashboard;
mod directory;
mod knowledge;
mod mail;
mod oauth;
mod onboarding;
mod replies;
mod request_thread;
mod requests;
mod rules;
pub mod sync;

use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts};
use axum::http::{StatusCode, header, request::Parts};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portico_model::wire::{API_VERSION, ErrorBody, ErrorDetail, Page};
use portico_model::{Viewer, Visible};
use rusqlite::Connection;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::auth::LoginLimiter;
use crate::clock::Clock;
use crate::error::{PortalError, Result};
use crate::store::{Actor, Store, Writer};

/// Largest request body accepted anywhere (messages are capped lower by validation).
pub const MAX_BODY_BYTES: usize = 256 * 1024;
pub const SESSION_COOKIE: &str = "portico_session";

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<Store>,
    pub clock: Arc<dyn Clock>,
    pub limiter: Arc<LoginLimiter>,
    /// Mark cookies `Secure` (set when served over HTTPS).
    pub secure_cookies: bool,
    /// Live WebSocket clients.
    pub live: Arc<crate::live::Hub>,
    /// The email channel's settings; `None` when mail is not configured.
    pub mail: Option<Arc<crate::mail::MailSettings>>,
    /// Search library, composer and drafter wake-ups.
    pub knowledge: Arc<crate::knowledge::Knowledge>,
    /// The chat writer: messages sent over the live socket, group-committed.
    pub chat: Arc<crate::group_commit::GroupCommit>,
}

impl AppState {
    pub fn new(store: Arc<Store>, clock: Arc<dyn Clock>) -> Self {
        let knowledge: Arc<crate::knowledge::Knowledge> = Arc::default();
        let drafter = knowledge.clone();
        let chat = crate::group_commit::GroupCommit::start(store.clone(), move || drafter.wake());
        AppState {
            store,
            clock,
            limiter: Arc::new(LoginLimiter::new(10, 15 * 60)),
            secure_cookies: false,
            live: Arc::default(),
            mail: None,
            knowledge,
            chat: Arc::new(chat),
        }
    }

    /// Runs a read on a pooled connection off the async threads.
    pub async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.read(f))
            .await
            .map_err(|_| PortalError::Unavailable)?
    }

    /// Runs one write transaction at the clock's current time.
    pub async fn write<T: Send + 'static>(
        &self,
        actor: Actor,
        f: impl FnOnce(&mut Writer<'_>) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let store = self.store.clone();
        let at = self.clock.now();
        let out = tokio::task::spawn_blocking(move || store.write(actor, at, f))
            .await
            .map_err(|_| PortalError::Unavailable)?;
        if out.is_ok() {
            // Live clients got the changes as the transaction committed (the
            // hub listens to the store); the drafter is woken here.
            self.knowledge.wake();
        }
        out
    }

    /// Runs blocking work that needs the whole store (auth bookkeeping).
    pub async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(|_| PortalError::Unavailable)?
    }
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1/health", get(health))
        .merge(oauth::routes())
        .merge(accounts::routes())
        .merge(billing::routes())
        .merge(conversations::routes())
        .merge(requests::routes())
        .merge(request_thread::routes())
        .merge(dashboard::routes())
        .merge(onboarding::routes())
        .merge(community::routes())
        .merge(knowledge::routes())
        .merge(ai::routes())
        .merge(directory::routes())
        .merge(sync::routes())
        .merge(rules::routes())
        .merge(replies::routes())
        .merge(mail::routes())
        .route("/v1/live", get(crate::live::upgrade))
        .route("/chat", get(chat_page))
        .merge(crate::pages::routes())
        // The customer portal web app (ui/portal) under /portal/.
        .merge(crate::web::routes())
        // After every route is added: it applies to the routes present now.
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(|| async {
            ApiError(PortalError::NotFound {
                kind: "route",
                id: "for this method and path".into(),
            })
        })
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(
            crate::web_guard::refuse_cross_site,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::web_guard::security_headers,
        ))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

async fn health(state: axum::extract::State<AppState>) -> Result<axum::Json<Value>, ApiError> {
    let seq: i64 = state
        .read(|c| {
            Ok(
                c.query_row("SELECT coalesce(max(seq), 0) FROM change_log", [], |r| {
                    r.get(0)
                })?,
            )
        })
        .await?;
    Ok(axum::Json(
        serde_json::json!({ "status": "ok", "api_version": API_VERSION, "seq": seq }),
    ))
}

/// A known path asked with a method it does not take: our JSON error, not
/// axum's empty 405 (the `Allow` header is still added).
async fn method_not_allowed() -> Response {
    ApiError::plain(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this path does not take that method; the Allow header lists those it does".into(),
    )
}

/// The customer chat page: sign in, open a chat, talk over `/v1/live`.
async fn chat_page() -> axum::response::Html<&'static str> {
    axum::response::Html(include_str!("../chat.html"))
}

/// An error on its way out as JSON.
#[derive(Debug)]
pub struct ApiError(pub PortalError);

impl<E: Into<PortalError>> From<E> for ApiError {
    fn from(e: E) -> Self {
        ApiError(e.into())
    }
}

impl ApiError {
    fn plain(status: StatusCode, code: &str, message: String) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: code.into(),
                message,
                field: None,
            },
        };
        (status, axum::Json(body)).into_response()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let e = self.0;
        let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status.is_server_error() {
            tracing::error!(error = %e, code = e.code(), "request failed");
        } else {
            tracing::debug!(error = %e, code = e.code(), "request refused");
        }
        let message = if status.is_server_error() {
            "internal error; the server log has details".into()
        } else {
            e.to_string()
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code: e.code().into(),
                message,
                field: e.field().map(str::to_owned),
            },
        };
        let mut resp = (status, axum::Json(body)).into_response();
        if let PortalError::RateLimited { retry_after_secs } = e {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, retry_after_secs.into());
        }
        resp
    }
}

/// A JSON body whose rejections speak our error format.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(BodyError))]
pub struct Json<T>(pub T);

impl<T: serde::Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

pub struct BodyError(JsonRejection);

impl From<JsonRejection> for BodyError {
    fn from(r: JsonRejection) -> Self {
        BodyError(r)
    }
}

impl IntoResponse for BodyError {
    fn into_response(self) -> Response {
        let (status, code, message) = match &self.0 {
            JsonRejection::JsonSyntaxError(e) => (
                StatusCode::BAD_REQUEST,
                "malformed_json",
                format!("the body is not valid JSON: {}", source_text(e)),
            ),
            JsonRejection::JsonDataError(e) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_body",
                format!("the body does not fit: {}", source_text(e)),
            ),
            JsonRejection::MissingJsonContentType(_) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as JSON with Content-Type: application/json".to_owned(),
            ),
            JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("the body is larger than {MAX_BODY_BYTES} bytes"),
            ),
            other => (other.status(), "invalid_body", other.body_text()),
        };
        ApiError::plain(status, code, message)
    }
}

/// The innermost cause: serde's message says which field and why.
fn source_text(e: &dyn std::error::Error) -> String {
    let mut cur: &dyn std::error::Error = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// Query string parameters with our error format.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(QueryError))]
pub struct Query<T>(pub T);

pub struct QueryError(QueryRejection);

impl From<QueryRejection> for QueryError {
    fn from(r: QueryRejection) -> Self {
        QueryError(r)
    }
}

impl IntoResponse for QueryError {
    fn into_response(self) -> Response {
        ApiError::plain(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            format!("the query string does not fit: {}", source_text(&self.0)),
        )
    }
}

/// Path parameters with our error format (a malformed id is a 400, not a 500).
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(PathError))]
pub struct Path<T>(pub T);

pub struct PathError(PathRejection);

impl From<PathRejection> for PathError {
    fn from(r: PathRejection) -> Self {
        PathError(r)
    }
}

impl IntoResponse for PathError {
    fn into_response(self) -> Response {
        ApiError::plain(
            StatusCode::BAD_REQUEST,
            "invalid_id",
            format!(
                "the path does not fit: {}; ids are UUIDs",
                source_text(&self.0)
            ),
        )
    }
}

/// The signed-in viewer, from `Authorization: Bearer` or the session cookie.
/// A change (POST, PATCH, PUT, DELETE) carried by the cookie must also pass
/// the CSRF check (`web_guard`); Bearer tokens are not sent by browsers on
/// their own, so they need none.
pub struct Auth(pub Viewer);

/// Where a request's credential came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    Bearer(String),
    /// The `portico_session` cookie (browsers send it by themselves).
    Cookie(String),
}

impl Credential {
    pub fn token(&self) -> &str {
        match self {
            Credential::Bearer(t) | Credential::Cookie(t) => t,
        }
    }
}

/// The credential a request carried: the Authorization header wins over
/// the cookie.
pub fn presented_credential(headers: &axum::http::HeaderMap) -> Option<Credential> {
    if let Some(h) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        return h
            .strip_prefix("Bearer ")
            .map(|t| Credential::Bearer(t.trim().to_owned()));
    }
    crate::web_guard::cookie(headers, SESSION_COOKIE).map(Credential::Cookie)
}

/// The raw credential a request carried, for sign-out.
pub fn presented_token(headers: &axum::http::HeaderMap) -> Option<String> {
    presented_credential(headers).map(|c| c.token().to_owned())
}

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    /// Authenticates first (a revoked or expired session is a 401 whatever
    /// else is wrong), then holds a cookie session's change to its CSRF token.
    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let credential =
            presented_credential(&parts.headers).ok_or(PortalError::Unauthenticated(
                "send Authorization: Bearer <token> or sign in for a session cookie",
            ))?;
        let token = credential.token().to_owned();
        let at = state.clock.now();
        let viewer = state
            .read(move |c| crate::auth::viewer_for_token(c, &token, at))
            .await?;
        if let Credential::Cookie(session) = &credential
            && !crate::web_guard::is_safe(&parts.method)
        {
            crate::web_guard::check_csrf_token(&parts.headers, session)?;
        }
        Ok(Auth(viewer))
    }
}

/// `?limit=&cursor=` for every list.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    pub limit: Option<usize>,
    pub cursor: Option<String>,
}

pub const MAX_PAGE: usize = 200;
pub const DEFAULT_PAGE: usize = 50;

impl PageQuery {
    pub fn limit(&self) -> Result<usize> {
        match self.limit {
            None => Ok(DEFAULT_PAGE),
            Some(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
            Some(_) => Err(portico_model::Invalid::new(
                "limit",
                format!("must be between 1 and {MAX_PAGE}"),
            )
            .into()),
        }
    }

    /// The id cursor of id-ordered lists.
    pub fn id_cursor(&self) -> Result<Option<uuid::Uuid>> {
        self.cursor
            .as_deref()
            .map(|c| {
                decode_cursor(c)
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(bad_cursor)
            })
            .transpose()
    }
}

pub fn bad_cursor() -> PortalError {
    portico_model::Invalid::new(
        "cursor",
        "is not a cursor this server issued; start from the first page",
    )
    .into()
}

pub fn encode_cursor(raw: &str) -> String {
    URL_SAFE_NO_PAD.encode(raw)
}

pub fn decode_cursor(c: &str) -> Option<String> {
    URL_SAFE_NO_PAD
        .decode(c)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
}

/// Redacts a page of records for `viewer`, dropping hidden rows; the cursor
/// comes from the last record fetched so hidden rows never stall paging.
pub fn page_of<R: Visible>(
    viewer: &Viewer,
    records: Vec<R>,
    limit: usize,
    cursor: impl Fn(&R) -> String,
) -> Page<Map<String, Value>> {
    let next_cursor = (records.len() == limit)
        .then(|| records.last().map(|r| encode_cursor(&cursor(r))))
        .flatten();
    let items = records
        .iter()
        .filter_map(|r| portico_model::redact(viewer, r))
        .collect();
    Page { items, next_cursor }
}

/// Shapes one record, or hides it as not found.
pub fn shape<R: Visible>(viewer: &Viewer, record: &R) -> Result<Json<Map<String, Value>>> {
    portico_model::redact(viewer, record)
        .map(Json)
        .ok_or_else(|| PortalError::not_found(R::KIND, record.uuid()))
}

/// Authorizes or fails with the policy's reason (hidden accounts look missing).
pub fn authorize(
    viewer: &Viewer,
    action: portico_model::Action,
    kind: portico_model::Kind,
    id: impl ToString,
) -> Result<()> {
    portico_model::authorize(viewer, action).map_err(|d| PortalError::denied(d, kind, id))
}

/// The `if_version` guard of a write: refused with `version_conflict` when the
/// record moved on since the client read it.
pub fn check_version(kind: &'static str, if_version: Option<u64>, version: u64) -> Result<()> {
    match if_version {
        Some(expected) if expected != version => Err(PortalError::VersionConflict {
            kind,
            expected,
            actual: version,
        }),
        _ => Ok(()),
    }
}

/// The account a new conversation or request is for: staff must name it;
/// customers always act on their own (naming another looks like a missing one).
pub fn target_account(
    viewer: &Viewer,
    requested: Option<portico_model::AccountId>,
    what: &str,
) -> Result<portico_model::AccountId> {
    if viewer.is_staff() {
        return requested.ok_or_else(|| {
            portico_model::Invalid::new(
                "account_id",
                format!("staff must say which account the {what} is for"),
            )
            .into()
        });
    }
    let own = viewer.account_id.expect("customers always have an account");
    match requested {
        Some(a) if a != own => Err(PortalError::not_found(portico_model::Kind::Account, a)),
        _ => Ok(own),
    }
}
