//! Sign-in endpoints: web sessions (`/v1/auth/*`) and OAuth 2.0 for the
//! desktop app (`/oauth/*`: authorize with PKCE, token, revoke).
//!
//! OAuth endpoints answer errors in the RFC 6749 shape
//! (`{"error", "error_description"}`) because OAuth client libraries expect it.

use std::net::SocketAddr;

use axum::Router;
use axum::extract::{ConnectInfo, Form, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use portico_model::wire::{Login, SessionInfo};
use portico_model::{User, redact};
use serde::Deserialize;

use super::{ApiError, AppState, Auth, Credential, Json, SESSION_COOKIE, presented_credential};
use crate::auth::{self, AuthorizeRequest};
use crate::error::{PortalError, Result};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/auth/login", post(login))
        .route("/v1/auth/logout", post(logout))
        .route("/v1/auth/session", get(session))
        .route("/v1/auth/invitation", get(invitation))
        .route("/v1/auth/invitations/accept", post(accept_invitation))
        .route(
            "/oauth/authorize",
            get(authorize_page).post(authorize_submit),
        )
        .route("/oauth/token", post(token))
        .route("/oauth/revoke", post(revoke))
}

fn client_ip(addr: SocketAddr) -> String {
    format!("ip:{}", addr.ip())
}

/// Checks a password with the login rate limit applied per email and per
/// client address. Failures count; a success clears the email's count.
async fn sign_in(st: &AppState, email: String, password: String, ip: String) -> Result<User> {
    let at = st.clock.now();
    let email_key = format!("email:{}", email.to_lowercase());
    st.limiter.check(&[&email_key, &ip], at)?;
    let result = st
        .read(move |c| auth::check_password(c, &email, &password))
        .await;
    match &result {
        Ok(_) => st.limiter.succeeded(&email_key),
        Err(PortalError::Unauthenticated(_)) => {
            st.limiter.failed(&[&email_key, &ip], at);
            tracing::info!(email = %email_key, "failed sign-in");
        }
        Err(_) => {}
    }
    result
}

fn session_cookie(st: &AppState, token: &str, max_age: i64) -> String {
    let secure = if st.secure_cookies { "; Secure" } else { "" };
    format!("{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}")
}

/// The CSRF cookie: readable by the portal's scripts (not `HttpOnly`), so
/// they can repeat it in `X-CSRF-Token`; it lives as long as the session.
fn csrf_cookie(st: &AppState, token: &str, max_age: i64) -> String {
    let secure = if st.secure_cookies { "; Secure" } else { "" };
    format!(
        "{}={token}; Path=/; SameSite=Lax; Max-Age={max_age}{secure}",
        crate::web_guard::CSRF_COOKIE
    )
}

/// The signed-in user and account as the user may see them.
async fn session_info(
    st: &AppState,
    viewer: &portico_model::Viewer,
    csrf_token: Option<String>,
) -> Result<SessionInfo> {
    let v = viewer.clone();
    let (user, account): (User, Option<portico_model::Account>) = st
        .read(move |c| {
            let user = crate::store::require(c, v.user_id.0)?;
            let account = match v.account_id {
                Some(a) => crate::store::get(c, a.0)?,
                None => None,
            };
            Ok((user, account))
        })
        .await?;
    Ok(SessionInfo {
        user: redact(viewer, &user).unwrap_or_default(),
        account: account.and_then(|a| redact(viewer, &a)),
        csrf_token,
    })
}

/// Password sign-in for the web portal: sets the session cookie (first, as
/// clients reading one `Set-Cookie` expect) and the CSRF cookie.
async fn login(
    State(st): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Json(input): Json<Login>,
) -> Result<Response, ApiError> {
    let user = sign_in(&st, input.email, input.password, client_ip(addr)).await?;
    signed_in(&st, user).await
}

/// Starts a session for `user`: the answer of a sign-in, with both cookies.
async fn signed_in(st: &AppState, user: User) -> Result<Response, ApiError> {
    let at = st.clock.now();
    let uid = user.id;
    let token = st
        .blocking(move |s| auth::start_session(s, uid, at))
        .await?;
    let viewer = st.read(move |c| auth::viewer_for_user(c, &user)).await?;
    let csrf = crate::web_guard::csrf_token_for(&token);
    let info = session_info(st, &viewer, Some(csrf.clone())).await?;
    let mut resp = Json(info).into_response();
    let h = resp.headers_mut();
    for cookie in [
        session_cookie(st, &token, auth::SESSION_TTL_SECS),
        csrf_cookie(st, &csrf, auth::SESSION_TTL_SECS),
    ] {
        h.append(
            header::SET_COOKIE,
            cookie.parse().expect("cookies are header-safe"),
        );
    }
    Ok(resp)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AcceptInvitation {
    /// The token from the invitation link.
    token: String,
    /// The password the invited person chooses.
    password: String,
}

/// The invitation link's page posts here: sets the password, activates the
/// user and signs them in (the same answer and cookies as a sign-in).
async fn accept_invitation(
    State(st): State<AppState>,
    Json(input): Json<AcceptInvitation>,
) -> Result<Response, ApiError> {
    let at = st.clock.now();
    let user = st
        .blocking(move |s| crate::mail::invitation::accept(s, &input.token, &input.password, at))
        .await?;
    signed_in(&st, user).await
}

/// The header carrying an invitation's token to `GET /v1/auth/invitation`:
/// never the URL, which ends up in access logs, proxies and history.
pub const INVITATION_TOKEN_HEADER: &str = "x-invitation-token";

/// What an invitation link invites to (account, who, by whom), for its page
/// to show before the person chooses a password; refused with the same
/// codes as accepting. Reveals only what the mail told the link's holder.
async fn invitation(State(st): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let token = headers
        .get(INVITATION_TOKEN_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let at = st.clock.now();
    let pending = st
        .read(move |c| crate::mail::invitation::pending(c, &token, at))
        .await?;
    let mut resp = Json(pending).into_response();
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    Ok(resp)
}

/// Who is signed in, and the CSRF token of a cookie session: how the web
/// app learns both after a reload.
async fn session(
    State(st): State<AppState>,
    Auth(viewer): Auth,
    headers: HeaderMap,
) -> Result<Json<SessionInfo>, ApiError> {
    let csrf = match presented_credential(&headers) {
        Some(Credential::Cookie(s)) => Some(crate::web_guard::csrf_token_for(&s)),
        _ => None,
    };
    Ok(Json(session_info(&st, &viewer, csrf).await?))
}

/// Ends the session or token the request carries, and clears the cookies.
/// A cookie session signs out only with its CSRF token (a hostile page
/// must not be able to sign people out either).
async fn logout(State(st): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let credential = presented_credential(&headers)
        .ok_or(PortalError::Unauthenticated("nothing to sign out of"))?;
    if let Credential::Cookie(session) = &credential {
        crate::web_guard::check_csrf_token(&headers, session)?;
    }
    let token = credential.token().to_owned();
    let at = st.clock.now();
    st.blocking(move |s| auth::end_session(s, &token, at))
        .await?;
    let mut resp = StatusCode::NO_CONTENT.into_response();
    for cookie in [session_cookie(&st, "", 0), csrf_cookie(&st, "", 0)] {
        resp.headers_mut().append(
            header::SET_COOKIE,
            cookie.parse().expect("cookies are header-safe"),
        );
    }
    Ok(resp)
}

#[derive(Debug, Deserialize)]
struct AuthorizeParams {
    #[serde(default)]
    response_type: String,
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    redirect_uri: String,
    #[serde(default)]
    code_challenge: String,
    #[serde(default)]
    code_challenge_method: String,
    state: Option<String>,
    /// Present when the sign-in form is submitted.
    email: Option<String>,
    password: Option<String>,
}

impl AuthorizeParams {
    fn request(&self) -> Result<AuthorizeRequest> {
        AuthorizeRequest::new(
            &self.response_type,
            &self.client_id,
            &self.redirect_uri,
            &self.code_challenge,
            &self.code_challenge_method,
            self.state.clone(),
        )
    }
}

/// An invalid client or redirect URI is shown to the person, never
/// redirected to (RFC 6749 §4.1.2.1).
fn error_page(status: StatusCode, message: &str) -> Response {
    (
        status,
        Html(page(
            "Sign-in problem",
            &format!("<p class=err>{}</p>", escape(message)),
        )),
    )
        .into_response()
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>{title} · Portico</title>\
         <link rel=stylesheet href=/oauth/sign-in.css></head><body>{body}</body></html>"
    )
}

fn sign_in_form(p: &AuthorizeParams, error: Option<&str>, status: StatusCode) -> Response {
    let hidden = [
        ("response_type", p.response_type.as_str()),
        ("client_id", &p.client_id),
        ("redirect_uri", &p.redirect_uri),
        ("code_challenge", &p.code_challenge),
        ("code_challenge_method", &p.code_challenge_method),
        ("state", p.state.as_deref().unwrap_or("")),
    ]
    .iter()
    .map(|(k, v)| format!("<input type=hidden name={k} value=\"{}\">", escape(v)))
    .collect::<String>();
    let err = error
        .map(|e| format!("<p class=err role=alert>{}</p>", escape(e)))
        .unwrap_or_default();
    let body = format!(
        "<h1>Sign in to Portico Inbox</h1>{err}<form method=post action=/oauth/authorize>{hidden}\
         <label>Email <input name=email type=email autocomplete=username required autofocus></label>\
         <label>Password <input name=password type=password autocomplete=current-password required></label>\
         <button type=submit>Sign in</button></form>"
    );
    (
        status,
        [(header::CONTENT_SECURITY_POLICY, SIGN_IN_CSP)],
        Html(page("Sign in", &body)),
    )
        .into_response()
}

/// The site policy, except that the sign-in form's answer may redirect to
/// the desktop app's loopback address (browsers apply `form-action` to the
/// redirect after a form post too).
const SIGN_IN_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self' http://127.0.0.1:* http://[::1]:*; frame-ancestors 'none'";

/// Step 1 of the desktop sign-in, opened in the system browser: with a
/// session it redirects straight back with a code; otherwise it asks for the
/// password.
async fn authorize_page(
    State(st): State<AppState>,
    headers: HeaderMap,
    axum::extract::Query(p): axum::extract::Query<AuthorizeParams>,
) -> Response {
    let req = match p.request() {
        Ok(r) => r,
        Err(e) => return error_page(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    if let Some(token) = presented_credential(&headers).map(|c| c.token().to_owned()) {
        let at = st.clock.now();
        if let Ok(viewer) = st
            .read(move |c| auth::viewer_for_token(c, &token, at))
            .await
        {
            return grant(&st, &req, viewer.user_id).await;
        }
    }
    sign_in_form(&p, None, StatusCode::OK)
}

async fn authorize_submit(
    State(st): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Form(p): Form<AuthorizeParams>,
) -> Response {
    let req = match p.request() {
        Ok(r) => r,
        Err(e) => return error_page(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let (Some(email), Some(password)) = (p.email.clone(), p.password.clone()) else {
        return sign_in_form(
            &p,
            Some("Enter your email and password."),
            StatusCode::BAD_REQUEST,
        );
    };
    match sign_in(&st, email, password, client_ip(addr)).await {
        Ok(user) => grant(&st, &req, user.id).await,
        Err(e @ PortalError::RateLimited { .. }) => {
            sign_in_form(&p, Some(&e.to_string()), StatusCode::TOO_MANY_REQUESTS)
        }
        Err(PortalError::Unauthenticated(m)) => sign_in_form(&p, Some(m), StatusCode::UNAUTHORIZED),
        Err(e) => error_page(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

async fn grant(st: &AppState, req: &AuthorizeRequest, user: portico_model::UserId) -> Response {
    let at = st.clock.now();
    let req = req.clone();
    match st.blocking(move |s| req.grant(s, user, at)).await {
        Ok(url) => Redirect::to(url.as_str()).into_response(),
        Err(e) => error_page(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

#[derive(Debug, Deserialize)]
struct TokenParams {
    grant_type: Option<String>,
    code: Option<String>,
    code_verifier: Option<String>,
    redirect_uri: Option<String>,
    client_id: Option<String>,
    refresh_token: Option<String>,
}

/// An OAuth error in the RFC 6749 §5.2 shape.
fn oauth_error(e: PortalError) -> Response {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
    if status.is_server_error() {
        tracing::error!(error = %e, "token endpoint failed");
    }
    let body = serde_json::json!({ "error": e.code(), "error_description": e.to_string() });
    (
        status,
        [(header::CACHE_CONTROL, "no-store")],
        axum::Json(body),
    )
        .into_response()
}

/// Step 2: trades a code (with its PKCE verifier) or a refresh token for tokens.
async fn token(
    State(st): State<AppState>,
    form: std::result::Result<Form<TokenParams>, axum::extract::rejection::FormRejection>,
) -> Response {
    use crate::error::OAuthErrorCode::*;
    let Ok(Form(p)) = form else {
        return oauth_error(PortalError::oauth(
            InvalidRequest,
            "send the parameters as application/x-www-form-urlencoded",
        ));
    };
    let need = |v: Option<String>, name: &str| {
        v.ok_or_else(|| PortalError::oauth(InvalidRequest, format!("{name} is required")))
    };
    let at = st.clock.now();
    let result = match p.grant_type.as_deref() {
        Some("authorization_code") => {
            let args = (
                need(p.code, "code"),
                need(p.code_verifier, "code_verifier"),
                need(p.redirect_uri, "redirect_uri"),
                need(p.client_id, "client_id"),
            );
            match args {
                (Ok(code), Ok(verifier), Ok(redirect), Ok(client)) => {
                    st.blocking(move |s| {
                        auth::exchange_code(s, &code, &verifier, &redirect, &client, at)
                    })
                    .await
                }
                (a, b, c, d) => Err(a
                    .err()
                    .or(b.err())
                    .or(c.err())
                    .or(d.err())
                    .expect("one argument is missing")),
            }
        }
        Some("refresh_token") => match (
            need(p.refresh_token, "refresh_token"),
            need(p.client_id, "client_id"),
        ) {
            (Ok(rt), Ok(client)) => {
                st.blocking(move |s| auth::refresh(s, &rt, &client, at))
                    .await
            }
            (a, b) => Err(a.err().or(b.err()).expect("one argument is missing")),
        },
        Some(other) => Err(PortalError::oauth(
            UnsupportedGrantType,
            format!(
                "grant_type {other:?} is not supported; use authorization_code or refresh_token"
            ),
        )),
        None => Err(PortalError::oauth(InvalidRequest, "grant_type is required")),
    };
    match result {
        Ok(tokens) => ([(header::CACHE_CONTROL, "no-store")], axum::Json(tokens)).into_response(),
        Err(e) => oauth_error(e),
    }
}

#[derive(Debug, Deserialize)]
struct RevokeParams {
    token: String,
}

/// RFC 7009: always 200, whether or not the token was known.
async fn revoke(
    State(st): State<AppState>,
    form: std::result::Result<Form<RevokeParams>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Ok(Form(p)) = form else {
        return oauth_error(PortalError::oauth(
            crate::error::OAuthErrorCode::InvalidRequest,
            "send token as application/x-www-form-urlencoded",
        ));
    };
    let at = st.clock.now();
    match st.blocking(move |s| auth::revoke(s, &p.token, at)).await {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => oauth_error(e),
    }
}
