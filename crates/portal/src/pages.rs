//! Scripts and stylesheets of the server-rendered pages (the `/chat` page
//! and the desktop sign-in page). They are files, not inline blocks,
//! because the Content-Security-Policy (`web_guard`) allows only scripts
//! and styles from our own origin.

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use crate::api::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/chat/chat.js", get(chat_js))
        .route("/chat/chat.css", get(chat_css))
        .route("/oauth/sign-in.css", get(sign_in_css))
}

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

async fn chat_js() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, JS)], include_str!("chat.js"))
}

async fn chat_css() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, CSS)], include_str!("chat.css"))
}

async fn sign_in_css() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, CSS)], include_str!("sign-in.css"))
}
