//! Web security over a real portal-core: the session and CSRF cookies, the
//! CSRF check on cookie-authenticated changes (and not on Bearer tokens),
//! Origin / Sec-Fetch-Site refusals, and the security headers.

mod common;

use common::*;
use reqwest::header::{COOKIE, SET_COOKIE};
use serde_json::{Value, json};

async fn login(srv: &TestServer, email: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(srv.url("/v1/auth/login"))
        .json(&json!({ "email": email, "password": portico_portal::seed::DEMO_PASSWORD }))
        .send()
        .await
        .unwrap()
}

fn set_cookies(resp: &reqwest::Response) -> Vec<String> {
    resp.headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

fn cookie_value(set: &str) -> String {
    set.split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
        .to_owned()
}

async fn error_code(resp: reqwest::Response) -> (u16, String) {
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    (
        status,
        body["error"]["code"].as_str().unwrap_or("").to_owned(),
    )
}

#[tokio::test]
async fn sign_in_sets_a_locked_session_cookie_and_a_readable_csrf_cookie() {
    let srv = TestServer::start().await;
    let resp = login(&srv, "admin@acme.test").await;
    assert_eq!(resp.status(), 200);
    let cookies = set_cookies(&resp);
    let session = cookies
        .iter()
        .find(|c| c.starts_with("portico_session="))
        .expect("a session cookie");
    let csrf = cookies
        .iter()
        .find(|c| c.starts_with("portico_csrf="))
        .expect("a CSRF cookie");
    assert!(
        cookies[0].starts_with("portico_session="),
        "the session cookie comes first (clients reading one Set-Cookie expect it)"
    );
    for flag in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(
            session.contains(flag),
            "session cookie has {flag}: {session}"
        );
    }
    assert!(
        !session.contains("Secure"),
        "no Secure flag over plain http"
    );
    assert!(
        !csrf.contains("HttpOnly"),
        "the page's script must read the CSRF cookie: {csrf}"
    );
    assert!(csrf.contains("SameSite=Lax"), "{csrf}");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body["csrf_token"].as_str().unwrap(),
        cookie_value(csrf),
        "the answer carries the same token as the cookie"
    );
    assert_eq!(body["user"]["email"], "admin@acme.test");
    assert!(
        body["account"].get("health_score").is_none(),
        "the sign-in answer is redacted like any other"
    );
    srv.stop().await;
}

#[tokio::test]
async fn cookie_changes_need_the_csrf_token_bearer_changes_do_not() {
    let srv = TestServer::start().await;
    let resp = login(&srv, "admin@acme.test").await;
    let cookies = set_cookies(&resp);
    let session = cookie_value(&cookies[0]);
    let csrf = cookie_value(&cookies[1]);
    let http = reqwest::Client::new();
    let conv = json!({ "subject": "CSRF check", "body": "hello" });
    let both = format!("portico_session={session}; portico_csrf={csrf}");

    let before = srv.fingerprint();
    // No header: a forged form or fetch from another site.
    let resp = http
        .post(srv.url("/v1/conversations"))
        .header(COOKIE, &both)
        .json(&conv)
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(resp).await, (403, "csrf_failed".into()));
    // A header that is not this session's token, with a matching planted cookie.
    let resp = http
        .post(srv.url("/v1/conversations"))
        .header(
            COOKIE,
            format!("portico_session={session}; portico_csrf=forged"),
        )
        .header("x-csrf-token", "forged")
        .json(&conv)
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(resp).await, (403, "csrf_failed".into()));
    // The right token in the header but no cookie to match: not double-submitted.
    let resp = http
        .post(srv.url("/v1/conversations"))
        .header(COOKIE, format!("portico_session={session}"))
        .header("x-csrf-token", &csrf)
        .json(&conv)
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(resp).await, (403, "csrf_failed".into()));
    // DELETE and PATCH are held to it too.
    let acme = srv.acme();
    let member = srv.user_with_role(portico_model::Role::CustomerMember, Some(acme.id));
    let resp = http
        .delete(srv.url(&format!("/v1/accounts/{}/users/{}", acme.id, member.id)))
        .header(COOKIE, &both)
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(resp).await, (403, "csrf_failed".into()));
    assert_eq!(srv.fingerprint(), before, "refused changes write nothing");

    // Reads need no token.
    let resp = http
        .get(srv.url("/v1/me"))
        .header(COOKIE, &both)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    // With the token the change goes through.
    let resp = http
        .post(srv.url("/v1/conversations"))
        .header(COOKIE, &both)
        .header("x-csrf-token", &csrf)
        .json(&conv)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    // A Bearer token (the same secret, presented as a program would) needs none.
    let resp = http
        .post(srv.url("/v1/conversations"))
        .bearer_auth(&session)
        .json(&conv)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201, "Bearer requests are not CSRF-checked");
    srv.stop().await;
}

#[tokio::test]
async fn another_origin_or_site_is_refused_even_with_the_token() {
    let srv = TestServer::start().await;
    let (client, _) = srv.client_and_csrf("admin@acme.test").await;
    let conv = json!({ "subject": "Origin check", "body": "hello" });
    let before = srv.fingerprint();
    for (name, value) in [
        ("origin", "https://evil.test"),
        ("origin", "null"),
        ("sec-fetch-site", "cross-site"),
        ("sec-fetch-site", "same-site"),
    ] {
        let resp = client
            .post(srv.url("/v1/conversations"))
            .header(name, value)
            .json(&conv)
            .send()
            .await
            .unwrap();
        assert_eq!(
            error_code(resp).await,
            (403, "csrf_failed".into()),
            "{name}: {value} is refused"
        );
    }
    // Bearer requests from another origin are refused too (a browser sent them).
    let resp = reqwest::Client::new()
        .post(srv.url("/v1/auth/login"))
        .header("origin", "https://evil.test")
        .json(
            &json!({ "email": "admin@acme.test", "password": portico_portal::seed::DEMO_PASSWORD }),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(resp).await,
        (403, "csrf_failed".into()),
        "a cross-site sign-in (login CSRF) is refused"
    );
    assert_eq!(srv.fingerprint(), before);
    let host = srv.base.trim_start_matches("http://").to_owned();
    let resp = client
        .post(srv.url("/v1/conversations"))
        .header("origin", format!("http://{host}"))
        .header("sec-fetch-site", "same-origin")
        .json(&conv)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201, "our own origin passes");
    srv.stop().await;
}

#[tokio::test]
async fn session_endpoint_tells_the_page_its_token() {
    let srv = TestServer::start().await;
    let (client, csrf) = srv.client_and_csrf("member@acme.test").await;
    let body: Value = client
        .get(srv.url("/v1/auth/session"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["csrf_token"], csrf);
    assert_eq!(body["user"]["role"], "customer_member");
    let resp = reqwest::Client::new()
        .get(srv.url("/v1/auth/session"))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(resp).await, (401, "unauthenticated".into()));
    srv.stop().await;
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let srv = TestServer::start().await;
    let http = reqwest::Client::new();
    for path in ["/v1/health", "/chat", "/v1/nope", "/chat/chat.js"] {
        let resp = http.get(srv.url(path)).send().await.unwrap();
        let h = resp.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        for part in [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
        ] {
            assert!(csp.contains(part), "{path}: CSP has {part}: {csp}");
        }
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["referrer-policy"], "same-origin", "{path}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert!(h.contains_key("permissions-policy"), "{path}");
        if path.starts_with("/v1/") {
            assert_eq!(h["cache-control"], "no-store", "{path}: API answers");
        }
    }
    // The chat page runs under that CSP: no inline script or style.
    let html = http
        .get(srv.url("/chat"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !html.contains("<script>") && !html.contains("<style"),
        "{html}"
    );
    assert!(html.contains(r#"<script src="/chat/chat.js">"#));
    for (asset, kind) in [
        ("/chat/chat.js", "text/javascript"),
        ("/chat/chat.css", "text/css"),
    ] {
        let resp = http.get(srv.url(asset)).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{asset}");
        assert!(
            resp.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with(kind),
            "{asset}"
        );
    }
    srv.stop().await;
}

#[tokio::test]
async fn over_https_the_cookies_are_secure() {
    let srv = TestServer::start_configured(portico_portal::seed::SeedSize::TINY, |st| {
        st.secure_cookies = true
    })
    .await;
    let resp = login(&srv, "admin@acme.test").await;
    for c in set_cookies(&resp) {
        assert!(c.contains("; Secure"), "{c}");
    }
    assert!(resp.headers().contains_key("strict-transport-security"));
    srv.stop().await;
}
