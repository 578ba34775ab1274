//! The desktop sign-in: OAuth 2.0 authorization code + PKCE with a loopback
//! redirect (RFC 6749, 7636, 8252), rotating refresh tokens with replay
//! detection, revocation, web sign-out and the sign-in rate limit.

mod common;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::*;
use jiff::SignedDuration;
use portico_portal::seed::DEMO_PASSWORD;
use reqwest::StatusCode;
use reqwest::header::{CACHE_CONTROL, COOKIE, LOCATION, RETRY_AFTER, SET_COOKIE};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const CLIENT_ID: &str = "portico-inbox";
const REDIRECT: &str = "http://127.0.0.1:49152/cb";

struct Pkce {
    verifier: String,
    challenge: String,
}

/// A fresh verifier (43 base64url characters of 32 random bytes) and its S256 challenge.
fn pkce() -> Pkce {
    let verifier = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    Pkce {
        verifier,
        challenge,
    }
}

/// A browser that shows redirects instead of following them, without cookies.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn authorize_params(p: &Pkce, redirect: &str, state: &str) -> Vec<(&'static str, String)> {
    vec![
        ("response_type", "code".into()),
        ("client_id", CLIENT_ID.into()),
        ("redirect_uri", redirect.into()),
        ("code_challenge", p.challenge.clone()),
        ("code_challenge_method", "S256".into()),
        ("state", state.into()),
    ]
}

/// Submits the sign-in form; returns the raw response.
async fn submit(
    srv: &TestServer,
    p: &Pkce,
    redirect: &str,
    email: &str,
    password: &str,
) -> reqwest::Response {
    let mut form = authorize_params(p, redirect, "st-123");
    form.push(("email", email.into()));
    form.push(("password", password.into()));
    browser()
        .post(srv.url("/oauth/authorize"))
        .form(&form)
        .send()
        .await
        .unwrap()
}

/// Signs in through the form and returns the code from the loopback redirect.
async fn code_for(srv: &TestServer, p: &Pkce, redirect: &str, email: &str) -> String {
    let resp = submit(srv, p, redirect, email, DEMO_PASSWORD).await;
    assert!(
        resp.status().is_redirection(),
        "a correct sign-in redirects back to the app, got {}",
        resp.status()
    );
    let location = resp.headers()[LOCATION].to_str().unwrap().to_owned();
    let url = url::Url::parse(&location).unwrap();
    let expected = url::Url::parse(redirect).unwrap();
    assert_eq!(
        (url.scheme(), url.host_str(), url.port(), url.path()),
        (
            expected.scheme(),
            expected.host_str(),
            expected.port(),
            expected.path()
        ),
        "the redirect goes to the registered loopback URI: {location}"
    );
    let q: std::collections::HashMap<String, String> = url.query_pairs().into_owned().collect();
    assert_eq!(
        q.get("state").map(String::as_str),
        Some("st-123"),
        "state comes back unchanged so the app can match the response"
    );
    q.get("code").expect("the redirect carries a code").clone()
}

async fn exchange(
    srv: &TestServer,
    code: &str,
    verifier: &str,
    redirect: &str,
) -> reqwest::Response {
    reqwest::Client::new()
        .post(srv.url("/oauth/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("code_verifier", verifier),
            ("redirect_uri", redirect),
            ("client_id", CLIENT_ID),
        ])
        .send()
        .await
        .unwrap()
}

async fn refresh(srv: &TestServer, refresh_token: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(srv.url("/oauth/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", CLIENT_ID),
        ])
        .send()
        .await
        .unwrap()
}

async fn me(srv: &TestServer, access: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(srv.url("/v1/me"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap()
}

/// The whole flow for `email`: the token response as JSON.
async fn tokens(srv: &TestServer, email: &str) -> Value {
    let p = pkce();
    let code = code_for(srv, &p, REDIRECT, email).await;
    let resp = exchange(srv, &code, &p.verifier, REDIRECT).await;
    assert_eq!(
        resp.status(),
        200,
        "a fresh code with its verifier is exchanged"
    );
    json(resp).await
}

fn s(v: &Value) -> &str {
    v.as_str()
        .unwrap_or_else(|| panic!("string expected, got {v}"))
}

/// Asserts an OAuth error (RFC 6749 §5.2 shape).
async fn expect_oauth_error(resp: reqwest::Response, status: u16, error: &str) {
    let got = resp.status().as_u16();
    let body = json(resp).await;
    assert_eq!(got, status, "status for {body}");
    assert_eq!(body["error"], error, "OAuth error code in {body}");
    assert!(
        body["error_description"]
            .as_str()
            .is_some_and(|d| !d.is_empty()),
        "OAuth errors explain themselves: {body}"
    );
}

async fn expect_unauthenticated(resp: reqwest::Response, why: &str) {
    assert_eq!(
        resp.status(),
        401,
        "{why}: the credential must no longer work"
    );
    expect_error(resp, 401, "unauthenticated").await;
}

#[tokio::test]
async fn full_authorization_code_flow_with_pkce() {
    let srv = TestServer::start().await;
    let p = pkce();

    // Step 1: the system browser opens the authorize URL and gets a form.
    let resp = browser()
        .get(srv.url("/oauth/authorize"))
        .query(&authorize_params(&p, REDIRECT, "st-123"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        200,
        "a valid request without a session shows the sign-in form"
    );
    let html = resp.text().await.unwrap();
    assert!(
        html.contains("<form") && html.contains("name=password"),
        "it is a sign-in form"
    );
    assert!(
        html.contains(&p.challenge),
        "the form carries the challenge through"
    );
    assert!(html.contains("st-123"), "and the state");

    // Step 2: the person signs in; the browser is sent back to the loopback URI.
    let code = code_for(&srv, &p, REDIRECT, "admin@acme.test").await;

    // Step 3: the app trades the code and its verifier for tokens.
    let resp = exchange(&srv, &code, &p.verifier, REDIRECT).await;
    assert_eq!(
        resp.status(),
        200,
        "a fresh code with the right verifier is exchanged"
    );
    assert_eq!(
        resp.headers()[CACHE_CONTROL],
        "no-store",
        "token responses must not be cached (RFC 6749 §5.1)"
    );
    let t = json(resp).await;
    assert_eq!(t["token_type"], "Bearer", "RFC 6749 bearer tokens");
    assert_eq!(
        t["expires_in"].as_i64(),
        Some(15 * 60),
        "access tokens live 15 minutes"
    );
    assert_ne!(
        t["access_token"], t["refresh_token"],
        "access and refresh tokens are distinct secrets"
    );

    // Step 4: the access token calls the API as the person who signed in.
    let resp = me(&srv, s(&t["access_token"])).await;
    assert_eq!(
        resp.status(),
        200,
        "the bearer token authenticates API calls"
    );
    let body = json(resp).await;
    assert_eq!(
        body["user"]["email"], "admin@acme.test",
        "the token stands for the person who signed in"
    );
    assert_eq!(
        body["account"]["name"], "Acme Corp",
        "and carries their account"
    );
    srv.stop().await;
}

#[tokio::test]
async fn a_signed_in_browser_skips_the_form() {
    let srv = TestServer::start().await;
    let login = browser()
        .post(srv.url("/v1/auth/login"))
        .json(&json!({ "email": "agent@portico.test", "password": DEMO_PASSWORD }))
        .send()
        .await
        .unwrap();
    let cookie = session_cookie(&login);
    let p = pkce();
    let resp = browser()
        .get(srv.url("/oauth/authorize"))
        .query(&authorize_params(&p, REDIRECT, "x"))
        .header(COOKIE, format!("portico_session={cookie}"))
        .send()
        .await
        .unwrap();
    assert!(
        resp.status().is_redirection(),
        "a session grants a code without asking again"
    );
    let location = resp.headers()[LOCATION].to_str().unwrap().to_owned();
    assert!(location.starts_with(REDIRECT), "{location}");
    let code = url::Url::parse(&location)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let t = json(exchange(&srv, &code, &p.verifier, REDIRECT).await).await;
    let body = json(me(&srv, s(&t["access_token"])).await).await;
    assert_eq!(
        body["user"]["email"], "agent@portico.test",
        "the code minted from the session is the session's user"
    );
    srv.stop().await;
}

#[tokio::test]
async fn wrong_password_shows_the_form_again_without_a_code() {
    let srv = TestServer::start().await;
    let p = pkce();
    let resp = submit(&srv, &p, REDIRECT, "admin@acme.test", "not-the-password").await;
    assert_eq!(resp.status(), 401, "a failed sign-in is not a redirect");
    assert!(
        resp.headers().get(LOCATION).is_none(),
        "no code leaves on failure"
    );
    let html = resp.text().await.unwrap();
    assert!(
        html.contains("wrong email or password"),
        "the person is told why: {html}"
    );
    assert_eq!(codes_issued(&srv), 0, "no code was minted");
    srv.stop().await;
}

#[tokio::test]
async fn refresh_rotates_and_a_replay_revokes_the_family() {
    let srv = TestServer::start().await;
    let t0 = tokens(&srv, "admin@acme.test").await;
    let other_sign_in = tokens(&srv, "admin@acme.test").await;

    let resp = refresh(&srv, s(&t0["refresh_token"])).await;
    assert_eq!(resp.status(), 200, "a refresh token is good once");
    let t1 = json(resp).await;
    assert_ne!(
        t1["refresh_token"], t0["refresh_token"],
        "refresh tokens rotate"
    );
    assert_ne!(
        t1["access_token"], t0["access_token"],
        "access tokens rotate with the refresh"
    );
    assert_eq!(
        me(&srv, s(&t1["access_token"])).await.status(),
        200,
        "the rotated access token works"
    );

    let resp = refresh(&srv, s(&t1["refresh_token"])).await;
    assert_eq!(resp.status(), 200, "the new refresh token works once");
    let t2 = json(resp).await;
    assert_eq!(
        me(&srv, s(&t2["access_token"])).await.status(),
        200,
        "the second rotation's access token works"
    );

    // Someone replays the already-used t1 refresh token: treat as stolen.
    let resp = refresh(&srv, s(&t1["refresh_token"])).await;
    expect_oauth_error(resp, 400, "invalid_grant").await;
    let resp = refresh(&srv, s(&t2["refresh_token"])).await;
    expect_oauth_error(resp, 400, "invalid_grant").await;
    for (name, t) in [("newest", &t2), ("previous", &t1), ("first", &t0)] {
        let resp = me(&srv, s(&t["access_token"])).await;
        assert_eq!(
            resp.status(),
            401,
            "the {name} access token of a replayed family must stop working"
        );
    }
    // A separate sign-in is a separate family and keeps working.
    assert_eq!(
        me(&srv, s(&other_sign_in["access_token"])).await.status(),
        200,
        "revocation is per sign-in, not per user"
    );
    let resp = refresh(&srv, s(&other_sign_in["refresh_token"])).await;
    assert_eq!(
        resp.status(),
        200,
        "a sign-in untouched by the replay still refreshes"
    );

    // A refresh token of the app cannot be used by another client id.
    let t = tokens(&srv, "admin@acme.test").await;
    let resp = reqwest::Client::new()
        .post(srv.url("/oauth/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", s(&t["refresh_token"])),
            ("client_id", "someone-else"),
        ])
        .send()
        .await
        .unwrap();
    expect_oauth_error(resp, 401, "invalid_client").await;
    srv.stop().await;
}

#[tokio::test]
async fn the_code_needs_its_verifier_and_works_once() {
    let srv = TestServer::start().await;
    let p = pkce();
    let code = code_for(&srv, &p, REDIRECT, "member@acme.test").await;

    // Another valid-looking verifier is refused.
    let wrong = pkce();
    let resp = exchange(&srv, &code, &wrong.verifier, REDIRECT).await;
    expect_oauth_error(resp, 400, "invalid_grant").await;
    // A verifier too short for RFC 7636 is a malformed request.
    let resp = exchange(&srv, &code, "short", REDIRECT).await;
    expect_oauth_error(resp, 400, "invalid_request").await;
    // The redirect URI must be the one the code was issued for.
    let resp = exchange(&srv, &code, &p.verifier, "http://127.0.0.1:49153/cb").await;
    expect_oauth_error(resp, 400, "invalid_grant").await;

    let resp = exchange(&srv, &code, &p.verifier, REDIRECT).await;
    assert_eq!(resp.status(), 200, "the right verifier gets the tokens");
    let first = json(resp).await;
    assert_eq!(
        me(&srv, s(&first["access_token"])).await.status(),
        200,
        "the first exchange's access token works"
    );

    // Replaying the code: refused, and what it minted is revoked (RFC 6749 §4.1.2).
    let resp = exchange(&srv, &code, &p.verifier, REDIRECT).await;
    expect_oauth_error(resp, 400, "invalid_grant").await;
    assert_eq!(
        me(&srv, s(&first["access_token"])).await.status(),
        401,
        "tokens from a replayed code must be revoked"
    );
    let resp = refresh(&srv, s(&first["refresh_token"])).await;
    expect_oauth_error(resp, 400, "invalid_grant").await;

    // An unknown code.
    let resp = exchange(&srv, "no-such-code", &p.verifier, REDIRECT).await;
    expect_oauth_error(resp, 400, "invalid_grant").await;
    srv.stop().await;
}

#[tokio::test]
async fn codes_and_tokens_expire() {
    let srv = TestServer::start().await;
    // A code lives 60 seconds.
    let p = pkce();
    let code = code_for(&srv, &p, REDIRECT, "admin@acme.test").await;
    srv.clock.advance(SignedDuration::from_secs(60));
    let resp = exchange(&srv, &code, &p.verifier, REDIRECT).await;
    expect_oauth_error(resp, 400, "invalid_grant").await;

    // An access token lives 15 minutes; its refresh token 30 days.
    let t = tokens(&srv, "admin@acme.test").await;
    srv.clock.advance(SignedDuration::from_secs(15 * 60 - 1));
    assert_eq!(
        me(&srv, s(&t["access_token"])).await.status(),
        200,
        "still valid one second before expiry"
    );
    srv.clock.advance(SignedDuration::from_secs(1));
    let resp = me(&srv, s(&t["access_token"])).await;
    let body = expect_error(resp, 401, "unauthenticated").await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("expired"),
        "the client learns to refresh: {body}"
    );
    let resp = refresh(&srv, s(&t["refresh_token"])).await;
    assert_eq!(
        resp.status(),
        200,
        "an expired access token is renewed with the refresh token"
    );
    let t2 = json(resp).await;
    assert_eq!(
        me(&srv, s(&t2["access_token"])).await.status(),
        200,
        "the renewed access token works"
    );

    srv.clock.advance(SignedDuration::from_hours(24 * 30));
    let resp = refresh(&srv, s(&t2["refresh_token"])).await;
    expect_oauth_error(resp, 400, "invalid_grant").await;
    srv.stop().await;
}

/// Rows in the one-time code table.
fn codes_issued(srv: &TestServer) -> i64 {
    srv.state
        .store
        .read(|c| Ok(c.query_row("SELECT count(*) FROM oauth_codes", [], |r| r.get(0))?))
        .unwrap()
}

#[tokio::test]
async fn bad_authorization_requests_are_shown_never_redirected() {
    let srv = TestServer::start().await;
    let p = pkce();
    for bad in [
        "http://evil.example/cb",
        "https://127.0.0.1:49152/cb",
        "http://localhost:49152/cb",
        "http://10.0.0.1/cb",
        "http://127.0.0.1:49152/cb#frag",
        "javascript:alert(1)",
        "",
    ] {
        let resp = browser()
            .get(srv.url("/oauth/authorize"))
            .query(&authorize_params(&p, bad, "s"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "redirect_uri {bad:?} must be refused");
        assert!(
            resp.headers().get(LOCATION).is_none(),
            "never redirect to {bad:?}"
        );
        // Even with the right password the form must not send a code there.
        let resp = submit(&srv, &p, bad, "admin@acme.test", DEMO_PASSWORD).await;
        assert_eq!(resp.status(), 400, "submitting for {bad:?} is refused too");
        assert!(
            resp.headers().get(LOCATION).is_none(),
            "no redirect to {bad:?} after sign-in"
        );
        let html = resp.text().await.unwrap();
        assert!(
            html.contains("redirect_uri"),
            "the page says what is wrong: {html}"
        );
    }

    // PKCE is mandatory, the method must be S256, the client must be known.
    let cases: [(&str, &str, &str); 4] = [
        ("code_challenge", "", "missing challenge"),
        ("code_challenge_method", "plain", "plain PKCE"),
        ("client_id", "other-app", "unknown client"),
        ("response_type", "token", "implicit grant"),
    ];
    for (key, value, what) in cases {
        let params: Vec<(&str, String)> = authorize_params(&p, REDIRECT, "s")
            .into_iter()
            .map(|(k, v)| {
                if k == key {
                    (k, value.to_owned())
                } else {
                    (k, v)
                }
            })
            .collect();
        let resp = browser()
            .get(srv.url("/oauth/authorize"))
            .query(&params)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{what} must be refused");
        assert!(
            resp.headers().get(LOCATION).is_none(),
            "{what}: no redirect"
        );
    }
    assert_eq!(codes_issued(&srv), 0, "no refused request minted a code");
    srv.stop().await;
}

#[tokio::test]
async fn loopback_redirects_round_trip_exactly() {
    let srv = TestServer::start().await;
    // RFC 8252 §7.3: any port, IPv4 or IPv6 loopback, with or without a path.
    for redirect in [
        "http://127.0.0.1:53682",
        "http://[::1]:8000/callback",
        "http://127.0.0.1:1/cb?app=inbox",
    ] {
        let p = pkce();
        let resp = submit(&srv, &p, redirect, "admin@acme.test", DEMO_PASSWORD).await;
        assert!(
            resp.status().is_redirection(),
            "{redirect} is a loopback URI"
        );
        let location = resp.headers()[LOCATION].to_str().unwrap().to_owned();
        let code = url::Url::parse(&location)
            .unwrap()
            .query_pairs()
            .find(|(k, _)| k == "code")
            .unwrap_or_else(|| panic!("code in {location}"))
            .1
            .into_owned();
        // The app sends back exactly the string it sent to /authorize.
        let resp = exchange(&srv, &code, &p.verifier, redirect).await;
        assert_eq!(
            resp.status(),
            200,
            "the identical redirect_uri {redirect:?} must be accepted at the token endpoint: {}",
            resp.text().await.unwrap()
        );
    }
    srv.stop().await;
}

#[tokio::test]
async fn revoke_ends_the_sign_in() {
    let srv = TestServer::start().await;
    let revoke = |token: String| {
        let url = srv.url("/oauth/revoke");
        async move {
            reqwest::Client::new()
                .post(url)
                .form(&[("token", token)])
                .send()
                .await
                .unwrap()
        }
    };
    // Revoking the refresh token ends the access token too.
    let t = tokens(&srv, "admin@acme.test").await;
    assert_eq!(
        revoke(s(&t["refresh_token"]).to_owned()).await.status(),
        200,
        "revocation answers 200 (RFC 7009)"
    );
    expect_oauth_error(
        refresh(&srv, s(&t["refresh_token"])).await,
        400,
        "invalid_grant",
    )
    .await;
    expect_unauthenticated(me(&srv, s(&t["access_token"])).await, "revoked family").await;

    // Revoking the access token ends the refresh token too.
    let t = tokens(&srv, "admin@acme.test").await;
    assert_eq!(
        revoke(s(&t["access_token"]).to_owned()).await.status(),
        200,
        "revocation answers 200 (RFC 7009)"
    );
    expect_unauthenticated(me(&srv, s(&t["access_token"])).await, "revoked").await;
    expect_oauth_error(
        refresh(&srv, s(&t["refresh_token"])).await,
        400,
        "invalid_grant",
    )
    .await;

    // Unknown tokens: 200 all the same (RFC 7009 §2.2), and nothing else is touched.
    let keep = tokens(&srv, "admin@acme.test").await;
    assert_eq!(
        revoke("never-issued".into()).await.status(),
        200,
        "unknown tokens are not an error (RFC 7009 §2.2)"
    );
    assert_eq!(
        me(&srv, s(&keep["access_token"])).await.status(),
        200,
        "revoking an unknown token touches no other sign-in"
    );
    srv.stop().await;
}

fn session_cookie(resp: &reqwest::Response) -> String {
    let set = resp
        .headers()
        .get(SET_COOKIE)
        .expect("sign-in sets the session cookie")
        .to_str()
        .unwrap();
    assert!(
        set.contains("HttpOnly"),
        "session cookies are HttpOnly: {set}"
    );
    set.split(';')
        .next()
        .unwrap()
        .strip_prefix("portico_session=")
        .expect("the session cookie")
        .to_owned()
}

#[tokio::test]
async fn logout_ends_the_session_and_clears_the_cookie() {
    let srv = TestServer::start().await;
    let client = browser();
    let resp = client
        .post(srv.url("/v1/auth/login"))
        .json(&json!({ "email": "member@acme.test", "password": DEMO_PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "the demo user signs in");
    let session = session_cookie(&resp);
    let csrf = resp.json::<Value>().await.unwrap()["csrf_token"]
        .as_str()
        .expect("a cookie sign-in returns its CSRF token")
        .to_owned();
    let cookie = format!("portico_session={session}; portico_csrf={csrf}");
    let with_cookie = |path: &str| client.get(srv.url(path)).header(COOKIE, cookie.clone());
    assert_eq!(
        with_cookie("/v1/me").send().await.unwrap().status(),
        200,
        "the session cookie authenticates"
    );

    let resp = client
        .post(srv.url("/v1/auth/logout"))
        .header(COOKIE, cookie.clone())
        .send()
        .await
        .unwrap();
    expect_error(resp, 403, "csrf_failed").await;
    let resp = client
        .post(srv.url("/v1/auth/logout"))
        .header(COOKIE, cookie.clone())
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::NO_CONTENT,
        "sign-out answers 204"
    );
    let cleared = resp.headers()[SET_COOKIE].to_str().unwrap();
    assert!(
        cleared.starts_with("portico_session=;") && cleared.contains("Max-Age=0"),
        "the browser is told to drop the cookie: {cleared}"
    );
    // A copy of the old cookie is dead on the server, not just in the browser.
    let resp = with_cookie("/v1/me").send().await.unwrap();
    expect_unauthenticated(resp, "session ended").await;
    let resp = client
        .post(srv.url("/v1/auth/logout"))
        .send()
        .await
        .unwrap();
    expect_error(resp, 401, "unauthenticated").await;

    // Signing out with an access token ends its whole sign-in.
    let t = tokens(&srv, "member@acme.test").await;
    let resp = client
        .post(srv.url("/v1/auth/logout"))
        .bearer_auth(s(&t["access_token"]))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::NO_CONTENT,
        "sign-out with a bearer token answers 204"
    );
    expect_unauthenticated(me(&srv, s(&t["access_token"])).await, "signed out").await;
    expect_oauth_error(
        refresh(&srv, s(&t["refresh_token"])).await,
        400,
        "invalid_grant",
    )
    .await;
    srv.stop().await;
}

async fn login(srv: &TestServer, email: &str, password: &str) -> reqwest::Response {
    browser()
        .post(srv.url("/v1/auth/login"))
        .json(&json!({ "email": email, "password": password }))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn sign_in_is_rate_limited_and_recovers_after_the_window() {
    let srv = TestServer::start().await;
    let p = pkce();
    // Ten failures across both entry points: the JSON login and the OAuth form.
    for i in 0..10 {
        if i % 2 == 0 {
            let resp = login(&srv, "admin@acme.test", "guess").await;
            expect_error(resp, 401, "unauthenticated").await;
        } else {
            let resp = submit(&srv, &p, REDIRECT, "admin@acme.test", "guess").await;
            assert_eq!(
                resp.status(),
                401,
                "failure {i} is an ordinary wrong password"
            );
        }
    }

    // The eleventh attempt is refused even with the right password.
    let resp = login(&srv, "admin@acme.test", DEMO_PASSWORD).await;
    let retry: u64 = resp.headers()[RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        retry,
        15 * 60,
        "Retry-After says when the 15-minute window ends"
    );
    expect_error(resp, 429, "rate_limited").await;
    let resp = submit(&srv, &p, REDIRECT, "admin@acme.test", DEMO_PASSWORD).await;
    assert!(
        resp.status().is_client_error() && resp.headers().get(LOCATION).is_none(),
        "the OAuth form is limited too: no code while blocked"
    );
    assert!(
        resp.text().await.unwrap().contains("too many attempts"),
        "the form tells the person why"
    );

    // Later in the window, the wait shrinks.
    srv.clock.advance(SignedDuration::from_secs(10 * 60));
    let resp = login(&srv, "admin@acme.test", DEMO_PASSWORD).await;
    assert_eq!(
        resp.headers()[RETRY_AFTER],
        "300",
        "Retry-After counts down to the end of the window"
    );
    expect_error(resp, 429, "rate_limited").await;

    // After the window, the right password works again.
    srv.clock.advance(SignedDuration::from_secs(5 * 60));
    let resp = login(&srv, "admin@acme.test", DEMO_PASSWORD).await;
    assert_eq!(
        resp.status(),
        200,
        "the limit lifts once the window is over"
    );
    let code = code_for(&srv, &p, REDIRECT, "admin@acme.test").await;
    assert!(!code.is_empty(), "a code is issued once the limit lifts");
    srv.stop().await;
}

#[tokio::test]
async fn token_endpoint_rejects_malformed_requests() {
    let srv = TestServer::start().await;
    let post_form = |form: Vec<(&'static str, &'static str)>| {
        let url = srv.url("/oauth/token");
        async move {
            reqwest::Client::new()
                .post(url)
                .form(&form)
                .send()
                .await
                .unwrap()
        }
    };
    expect_oauth_error(
        post_form(vec![("grant_type", "password")]).await,
        400,
        "unsupported_grant_type",
    )
    .await;
    expect_oauth_error(post_form(vec![("code", "x")]).await, 400, "invalid_request").await;
    expect_oauth_error(
        post_form(vec![("grant_type", "authorization_code")]).await,
        400,
        "invalid_request",
    )
    .await;
    expect_oauth_error(
        post_form(vec![("grant_type", "refresh_token")]).await,
        400,
        "invalid_request",
    )
    .await;
    let resp = reqwest::Client::new()
        .post(srv.url("/oauth/token"))
        .json(
            &json!({ "grant_type": "refresh_token", "refresh_token": "x", "client_id": CLIENT_ID }),
        )
        .send()
        .await
        .unwrap();
    expect_oauth_error(resp, 400, "invalid_request").await;
    // Revocation without a token is a malformed request, in the OAuth shape.
    let resp = reqwest::Client::new()
        .post(srv.url("/oauth/revoke"))
        .form(&[("tokn", "x")])
        .send()
        .await
        .unwrap();
    expect_oauth_error(resp, 400, "invalid_request").await;
    // An access token is not a refresh token.
    let t = tokens(&srv, "admin@acme.test").await;
    expect_oauth_error(
        refresh(&srv, s(&t["access_token"])).await,
        400,
        "invalid_grant",
    )
    .await;
    assert_eq!(
        me(&srv, s(&t["access_token"])).await.status(),
        200,
        "a confused client does not lose its sign-in"
    );
    srv.stop().await;
}
