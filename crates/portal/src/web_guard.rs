//! Web security for browsers: CSRF protection of cookie sessions and the
//! security headers on every response.
//!
//! A session cookie is sent by the browser on any request to our origin,
//! including ones a hostile page triggers; a Bearer token is not (a page
//! must hold it to send it). So only cookie-authenticated requests need
//! CSRF protection, and they get three layers:
//!
//! - **Double-submit token.** Sign-in sets `portico_csrf` (readable by
//!   scripts, unlike the session) next to the session cookie. Unsafe
//!   requests carried by the cookie must repeat it in `X-CSRF-Token`. The
//!   token is derived from the session (SHA-256 under a label), so it
//!   changes with every sign-in, needs no storage, and a cookie planted by a
//!   sibling subdomain cannot be paired with a header of the attacker's
//!   choosing: the header must match the *session*, not just the cookie.
//! - **Fetch metadata and Origin.** Any unsafe request whose
//!   `Sec-Fetch-Site` says `cross-site`/`same-site`, or whose `Origin` is
//!   not this server's, is refused before it reaches a handler (whatever
//!   its credential: a browser never sends those for our own pages).
//! - **SameSite=Lax** on the session cookie (see `api::oauth`).
//!
//! Refusals are `403` with code `csrf_failed`.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use crate::api::{ApiError, AppState};
use crate::error::PortalError;

/// The script-readable cookie holding the CSRF token.
pub const CSRF_COOKIE: &str = "portico_csrf";
/// The header unsafe cookie-authenticated requests repeat it in.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The strict policy of every page: only our own scripts, styles, images
/// (and `data:` images), fonts and connections; no plugins, no framing, no
/// `<base>`, forms post only to us.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Powerful browser features the portal never uses, switched off.
pub const PERMISSIONS_POLICY: &str =
    "camera=(), microphone=(), geolocation=(), payment=(), usb=(), interest-cohort=()";

/// The CSRF token of a session: base64url(SHA-256(label ‖ session)). The
/// session token is 256 random bits, so this cannot be guessed, and it
/// reveals nothing about the session.
pub fn csrf_token_for(session: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"portico-csrf\0");
    h.update(session.as_bytes());
    URL_SAFE_NO_PAD.encode(h.finalize())
}

/// GET, HEAD and OPTIONS change nothing (the API keeps them so).
pub fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The value of cookie `name`, if the request carries it.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// The double-submit check of an unsafe request authenticated by the
/// session cookie `session`.
pub fn check_csrf_token(headers: &HeaderMap, session: &str) -> Result<(), PortalError> {
    let Some(sent) = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()) else {
        return Err(PortalError::CsrfFailed(
            "send the X-CSRF-Token header with the value of the portico_csrf cookie",
        ));
    };
    let expected = csrf_token_for(session);
    let cookie_matches = cookie(headers, CSRF_COOKIE).is_some_and(|c| c == sent);
    if !cookie_matches || !constant_time_eq(sent.as_bytes(), expected.as_bytes()) {
        return Err(PortalError::CsrfFailed(
            "the X-CSRF-Token header does not match this session; reload the page or sign in again",
        ));
    }
    Ok(())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Fetch metadata and Origin for an unsafe request: refused when a browser
/// says it comes from another site or origin. Requests without those
/// headers (programs, older browsers) pass here and rely on the token.
pub fn check_origin(headers: &HeaderMap) -> Result<(), PortalError> {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok())
        && !matches!(site, "same-origin" | "none")
    {
        return Err(PortalError::CsrfFailed(
            "requests that change data must come from Portico's own pages (Sec-Fetch-Site)",
        ));
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
        let same = origin
            .to_str()
            .ok()
            .and_then(|o| url::Url::parse(o).ok())
            .filter(|o| matches!(o.scheme(), "http" | "https"))
            .zip(host)
            .is_some_and(|(o, host)| origin_authority(&o).eq_ignore_ascii_case(host));
        if !same {
            return Err(PortalError::CsrfFailed(
                "requests that change data must come from Portico's own origin (Origin)",
            ));
        }
    }
    Ok(())
}

/// `host[:port]` of an origin as a Host header writes it (default ports omitted).
fn origin_authority(o: &url::Url) -> String {
    let host = o.host_str().unwrap_or_default();
    match o.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_owned(),
    }
}

/// Refuses cross-site unsafe requests before routing (see [`check_origin`]).
pub async fn refuse_cross_site(req: Request, next: Next) -> Response {
    if !is_safe(req.method())
        && let Err(e) = check_origin(req.headers())
    {
        return axum::response::IntoResponse::into_response(ApiError(e));
    }
    next.run(req).await
}

/// Adds the security headers to every response (a handler's own CSP, such
/// as the sandbox of attachment downloads, is kept), and `no-store` to API
/// answers: they are per-user and must not sit in shared or disk caches.
pub async fn security_headers(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let api = req.uri().path().starts_with("/v1/") || req.uri().path().starts_with("/oauth/");
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    let set = |h: &mut HeaderMap, name: &'static str, value: &'static str| {
        if !h.contains_key(name) {
            h.insert(name, HeaderValue::from_static(value));
        }
    };
    set(h, "content-security-policy", CONTENT_SECURITY_POLICY);
    set(h, "x-content-type-options", "nosniff");
    set(h, "referrer-policy", "same-origin");
    set(h, "x-frame-options", "DENY");
    set(h, "permissions-policy", PERMISSIONS_POLICY);
    set(h, "cross-origin-opener-policy", "same-origin");
    if st.secure_cookies {
        set(h, "strict-transport-security", "max-age=31536000");
    }
    if api {
        set(h, "cache-control", "no-store");
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn token_is_bound_to_the_session() {
        assert_ne!(csrf_token_for("a"), csrf_token_for("b"));
        let t = csrf_token_for("s");
        let ok = headers(&[
            ("cookie", &format!("portico_session=s; portico_csrf={t}")),
            ("x-csrf-token", &t),
        ]);
        assert!(check_csrf_token(&ok, "s").is_ok());
        let planted = csrf_token_for("attacker");
        let tossed = headers(&[
            ("cookie", &format!("portico_csrf={planted}")),
            ("x-csrf-token", &planted),
        ]);
        assert!(
            check_csrf_token(&tossed, "s").is_err(),
            "a planted cookie with a matching header is still refused"
        );
        assert!(check_csrf_token(&headers(&[]), "s").is_err());
    }

    #[test]
    fn origin_must_be_ours() {
        let host = ("host", "127.0.0.1:8080");
        assert!(
            check_origin(&headers(&[host])).is_ok(),
            "no Origin: a program"
        );
        assert!(check_origin(&headers(&[host, ("origin", "http://127.0.0.1:8080")])).is_ok());
        for bad in ["http://evil.test", "null", "http://127.0.0.1:9999"] {
            assert!(
                check_origin(&headers(&[host, ("origin", bad)])).is_err(),
                "{bad} is refused"
            );
        }
        assert!(check_origin(&headers(&[host, ("sec-fetch-site", "cross-site")])).is_err());
        assert!(check_origin(&headers(&[host, ("sec-fetch-site", "same-site")])).is_err());
        assert!(check_origin(&headers(&[host, ("sec-fetch-site", "same-origin")])).is_ok());
    }
}
