//! The customer portal's web app (`ui/portal`, built by Vite into
//! `ui/portal/dist`), served under `/portal/`.
//!
//! - `/portal/assets/*`: the hashed scripts and styles, cached for a year
//!   (`immutable`): a new build has new names.
//! - Every other `GET /portal/...`: `index.html` (not cached), so the app's
//!   own routes survive a reload or a pasted link; the app decides what a
//!   path shows, the API decides what the person may see.
//! - `/`: a redirect to `/portal/`.
//!
//! Files are read from disk on each request (a rebuild shows without a
//! restart). The folder is `--portal-ui` / `PORTICO_PORTAL_UI`, by default
//! `ui/portal/dist` of this repository. When it has not been built, the
//! portal answers with a page saying how to build it.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use axum::Router;
use axum::extract::Path as RawPath;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

use crate::api::AppState;

/// The app's policy: only its own scripts, styles and connections (the
/// build has no inline script or style). The server-wide security headers
/// keep a policy a response already has, so this is the one the page gets.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The built app next to this crate in the repository.
const DEFAULT_DIST: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../ui/portal/dist");

static DIST: OnceLock<PathBuf> = OnceLock::new();

/// Serves the portal from `dir` instead of the repository's `ui/portal/dist`.
/// Call before the first request; later calls are ignored.
pub fn serve_from(dir: PathBuf) {
    let _ = DIST.set(dir);
}

fn dist() -> &'static Path {
    DIST.get_or_init(|| PathBuf::from(DEFAULT_DIST))
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/portal/") }))
        .route("/portal", get(|| async { Redirect::to("/portal/") }))
        .route("/portal/", get(app_page))
        .route("/portal/assets/{file}", get(asset))
        .route("/portal/{*path}", get(app_page))
}

/// `index.html` for every app route.
async fn app_page() -> Response {
    let index = dist().join("index.html");
    match read(index.clone()).await {
        Ok(html) => (
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/html; charset=utf-8"),
                ),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
                (
                    header::CONTENT_SECURITY_POLICY,
                    HeaderValue::from_static(CONTENT_SECURITY_POLICY),
                ),
            ],
            html,
        )
            .into_response(),
        Err(e) => {
            tracing::warn!(path = %index.display(), error = %e, "the portal UI is not built");
            not_built(&index)
        }
    }
}

/// A page for people, not JSON: someone opened the portal in a browser.
fn not_built(index: &Path) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>Portico portal not built</title></head><body>\
         <h1>The customer portal has not been built</h1>\
         <p>portal-core serves the web app from <code>{}</code>, which has no \
         <code>index.html</code>.</p>\
         <p>Build it from the repository root with <code>./scripts/build-ui</code> \
         (needs Node 20 and npm), then reload this page. To serve a build kept \
         elsewhere, start portal-core with <code>--portal-ui DIR</code> or \
         <code>PORTICO_PORTAL_UI=DIR</code>.</p></body></html>",
        escape(&index.parent().unwrap_or(index).display().to_string())
    );
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CONTENT_SECURITY_POLICY),
            ),
        ],
        html,
    )
        .into_response()
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A built asset. Names are Vite's (`index-<hash>.js`): anything else,
/// including any attempt to leave the folder, is not found.
async fn asset(RawPath(file): RawPath<String>) -> Response {
    let Some(content_type) = safe_name(&file).then(|| content_type(&file)).flatten() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    match read(dist().join("assets").join(&file)).await {
        Ok(bytes) => (
            [
                (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
                (
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("public, max-age=31536000, immutable"),
                ),
                (
                    header::X_CONTENT_TYPE_OPTIONS,
                    HeaderValue::from_static("nosniff"),
                ),
            ],
            bytes,
        )
            .into_response(),
        Err(_) => StatusCode::NOT_FOUND.into_response(),
    }
}

/// Reads a file off the async threads.
async fn read(path: PathBuf) -> std::io::Result<Vec<u8>> {
    tokio::task::spawn_blocking(move || std::fs::read(path))
        .await
        .map_err(std::io::Error::other)?
}

fn safe_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

fn content_type(name: &str) -> Option<&'static str> {
    let ext = name.rsplit_once('.')?.1;
    Some(match ext {
        "js" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "woff2" => "font/woff2",
        "json" => "application/json",
        "map" => "application/json",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_file_names_are_served() {
        assert!(safe_name("index-BmfbHhCX.js"), "Vite's hashed names pass");
        for bad in [
            "",
            "..",
            "../Cargo.toml",
            ".env",
            "a/b.js",
            "a\\b.js",
            "%2e%2e",
        ] {
            assert!(!safe_name(bad), "{bad:?} must not reach the file system");
        }
        assert_eq!(content_type("x.exe"), None, "unknown types are not served");
    }
}
