//! Hostile and broken input: every request here must get a 4xx with a JSON
//! error a client can branch on (`code`) and a person can read (`message`),
//! and must leave every record and the change log exactly as they were.

mod common;

use common::*;
use jiff::SignedDuration;
use portico_model::*;
use portico_portal::auth;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, COOKIE};
use serde_json::{Value, json};

const RANDOM_ID: &str = "0190b1c2-0000-7000-8000-000000000bad";

/// Sends `req`, checks the error, and checks nothing was written.
async fn refused(
    srv: &TestServer,
    what: &str,
    req: reqwest::RequestBuilder,
    status: u16,
    code: &str,
) -> Value {
    let before = srv.fingerprint();
    let resp = req.send().await.unwrap();
    let got = resp.status().as_u16();
    let ctype = resp
        .headers()
        .get(CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let text = resp.text().await.unwrap();
    assert_eq!(got, status, "{what}: status (body {text})");
    assert!(
        ctype.starts_with("application/json"),
        "{what}: errors are JSON, got {ctype:?}: {text}"
    );
    let body: Value = serde_json::from_str(&text)
        .unwrap_or_else(|_| panic!("{what}: error body is JSON: {text}"));
    assert_eq!(
        body["error"]["code"], code,
        "{what}: stable error code in {body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.len() > 10),
        "{what}: a message a person can act on: {body}"
    );
    assert_eq!(
        srv.fingerprint(),
        before,
        "{what}: a refused request must not write anything"
    );
    body
}

fn acme_conversation(srv: &TestServer) -> Conversation {
    srv.records::<Conversation>(&format!("account_id = '{}'", srv.acme().id))
        .remove(0)
}

#[tokio::test]
async fn malformed_and_mistyped_bodies() {
    let srv = TestServer::start().await;
    let admin = srv.client_as("admin@acme.test").await;
    let conv = acme_conversation(&srv);
    let messages = srv.url(&format!("/v1/conversations/{}/messages", conv.id));
    let raw = |body: &'static [u8]| {
        admin
            .post(&messages)
            .header(CONTENT_TYPE, "application/json")
            .body(body)
    };

    for (what, body) in [
        ("truncated JSON", &b"{\"body\": \"hi\""[..]),
        ("not JSON", b"body=hi"),
        ("trailing garbage", b"{\"body\": \"hi\"} extra"),
        ("empty body", b""),
        ("invalid UTF-8", b"{\"body\": \"\xff\xfe\"}"),
        ("single quotes", b"{'body': 'hi'}"),
    ] {
        refused(&srv, what, raw(body), 400, "malformed_json").await;
    }
    // Deep nesting is refused at the first bracket where a string belongs:
    // a typed body never recurses into it.
    let deep: &'static [u8] = Box::leak(
        format!(
            "{{\"body\": {}1{}}}",
            "[".repeat(10_000),
            "]".repeat(10_000)
        )
        .into_bytes()
        .into_boxed_slice(),
    );
    refused(&srv, "deep nesting", raw(deep), 422, "invalid_body").await;

    for (what, body) in [
        ("number for a string", json!({ "body": 42 })),
        ("null document", Value::Null),
        ("array document", json!(["hi"])),
        ("object for a string", json!({ "body": { "text": "hi" } })),
        (
            "malformed client id",
            json!({ "body": "hi", "id": "not-a-uuid" }),
        ),
        ("missing required field", json!({ "internal": false })),
    ] {
        refused(
            &srv,
            what,
            admin.post(&messages).json(&body),
            422,
            "invalid_body",
        )
        .await;
    }
    let body = refused(
        &srv,
        "unknown field",
        admin
            .post(&messages)
            .json(&json!({ "body": "hi", "sneaky": true })),
        422,
        "invalid_body",
    )
    .await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("sneaky"),
        "the message names the unknown field: {body}"
    );

    // Billing inputs: negative, overflowing and misspelt fields.
    let acme = srv.acme();
    let change = srv.url(&format!("/v1/accounts/{}/subscription/change", acme.id));
    for (what, body) in [
        ("negative seats", json!({ "seats": -1 })),
        ("seats beyond u32", json!({ "seats": 4_294_967_296u64 })),
        ("fractional seats", json!({ "seats": 12.5 })),
        ("seats as text", json!({ "seats": "12" })),
        ("misspelt field", json!({ "seat": 12 })),
        (
            "unknown timing",
            json!({ "seats": 12, "timing": "yesterday" }),
        ),
        (
            "garbage timestamp",
            json!({ "seats": 12, "proration_at": "soon" }),
        ),
        ("plan id not a uuid", json!({ "plan_id": "business" })),
    ] {
        refused(
            &srv,
            what,
            admin.post(&change).json(&body),
            422,
            "invalid_body",
        )
        .await;
    }
    // A customer cannot sneak in account-management fields, typed or not.
    let account = srv.url(&format!("/v1/accounts/{}", acme.id));
    refused(
        &srv,
        "unknown account field",
        admin.patch(&account).json(&json!({ "mrr": 0 })),
        422,
        "invalid_body",
    )
    .await;
    refused(
        &srv,
        "staff field",
        admin.patch(&account).json(&json!({ "key_account": false })),
        403,
        "forbidden",
    )
    .await;
    refused(
        &srv,
        "health out of u8",
        admin.patch(&account).json(&json!({ "health_score": 300 })),
        422,
        "invalid_body",
    )
    .await;
    let body = refused(
        &srv,
        "empty name",
        admin.patch(&account).json(&json!({ "name": " " })),
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(body["error"]["field"], "name", "the error names the field");
    let users = srv.url(&format!("/v1/accounts/{}/users", acme.id));
    refused(
        &srv,
        "unknown role",
        admin
            .post(&users)
            .json(&json!({ "email": "x@acme.test", "name": "X", "role": "owner" })),
        422,
        "invalid_body",
    )
    .await;
    let body = refused(
        &srv,
        "bad email",
        admin
            .post(&users)
            .json(&json!({ "email": "not an email", "name": "X", "role": "customer_member" })),
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(body["error"]["field"], "email", "the error names the field");
    srv.stop().await;
}

#[tokio::test]
async fn content_type_and_size_limits() {
    let srv = TestServer::start().await;
    let admin = srv.client_as("admin@acme.test").await;
    let conv = acme_conversation(&srv);
    let messages = srv.url(&format!("/v1/conversations/{}/messages", conv.id));

    refused(
        &srv,
        "no content type",
        admin.post(&messages).body(r#"{"body":"hi"}"#),
        415,
        "unsupported_media_type",
    )
    .await;
    refused(
        &srv,
        "text/plain",
        admin
            .post(&messages)
            .header(CONTENT_TYPE, "text/plain")
            .body(r#"{"body":"hi"}"#),
        415,
        "unsupported_media_type",
    )
    .await;
    refused(
        &srv,
        "form encoded",
        admin.post(&messages).form(&[("body", "hi")]),
        415,
        "unsupported_media_type",
    )
    .await;

    // Over the 256 KiB request limit.
    let huge = json!({ "body": "x".repeat(300 * 1024) });
    refused(
        &srv,
        "oversized body",
        admin.post(&messages).json(&huge),
        413,
        "body_too_large",
    )
    .await;
    let huge_conv = json!({ "subject": "s", "body": "x".repeat(257 * 1024) });
    refused(
        &srv,
        "oversized new conversation",
        admin.post(srv.url("/v1/conversations")).json(&huge_conv),
        413,
        "body_too_large",
    )
    .await;

    // Under the request limit but over the 64 KiB message limit.
    let long = json!({ "body": "x".repeat(64 * 1024 + 1) });
    let body = refused(
        &srv,
        "message over 64 KiB",
        admin.post(&messages).json(&long),
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(
        body["error"]["field"], "body",
        "the error names the field: {body}"
    );
    let long_conv = json!({ "subject": "s", "body": "x".repeat(64 * 1024 + 1) });
    let body = refused(
        &srv,
        "first message over 64 KiB",
        admin.post(srv.url("/v1/conversations")).json(&long_conv),
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(body["error"]["field"], "body", "the error names the field");
    let body = refused(
        &srv,
        "subject over 300 characters",
        admin
            .post(srv.url("/v1/conversations"))
            .json(&json!({ "subject": "s".repeat(301), "body": "b" })),
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(
        body["error"]["field"], "subject",
        "the error names the field"
    );
    refused(
        &srv,
        "blank message",
        admin.post(&messages).json(&json!({ "body": "  \n " })),
        422,
        "validation_failed",
    )
    .await;
    let many: Vec<String> = (0..51).map(|_| RANDOM_ID.to_owned()).collect();
    let agent = srv.client_as("agent@portico.test").await;
    let body = refused(
        &srv,
        "too many mentions",
        agent
            .post(&messages)
            .json(&json!({ "body": "note", "internal": true, "mentions": many })),
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(
        body["error"]["field"], "mentions",
        "the error names the field"
    );
    refused(
        &srv,
        "customer writing an internal note",
        admin
            .post(&messages)
            .json(&json!({ "body": "psst", "internal": true })),
        403,
        "forbidden",
    )
    .await;

    // Exactly 64 KiB is allowed: the limit is not off by one.
    let at_limit = json!({ "body": "x".repeat(64 * 1024) });
    let resp = admin.post(&messages).json(&at_limit).send().await.unwrap();
    assert_eq!(
        resp.status(),
        201,
        "a message of exactly 64 KiB is accepted"
    );
    srv.stop().await;
}

#[tokio::test]
async fn malformed_and_unknown_ids_in_paths() {
    let srv = TestServer::start().await;
    let admin = srv.client_as("admin@acme.test").await;
    let staff = srv.client_as("admin@portico.test").await;
    let acme = srv.acme();

    for path in [
        "/v1/accounts/not-a-uuid".to_owned(),
        "/v1/accounts/123/subscription".to_owned(),
        "/v1/conversations/xyz".to_owned(),
        "/v1/requests/%00".to_owned(),
        "/v1/articles/..%2F..%2Fetc".to_owned(),
        format!("/v1/accounts/{}/invoices/INV-000001", acme.id),
        format!("/v1/accounts/{}/invoices/{}x/document", acme.id, RANDOM_ID),
    ] {
        let body = refused(&srv, &path, admin.get(srv.url(&path)), 400, "invalid_id").await;
        assert!(
            body["error"]["message"].as_str().unwrap().contains("UUID"),
            "{body}"
        );
    }
    refused(
        &srv,
        "malformed conversation id on POST",
        admin
            .post(srv.url("/v1/conversations/nope/messages"))
            .json(&json!({ "body": "hi" })),
        400,
        "invalid_id",
    )
    .await;
    refused(
        &srv,
        "malformed user id on PATCH",
        admin
            .patch(srv.url(&format!("/v1/accounts/{}/users/me", acme.id)))
            .json(&json!({ "role": "customer_member" })),
        400,
        "invalid_id",
    )
    .await;
    refused(
        &srv,
        "malformed user id on DELETE",
        admin.delete(srv.url(&format!("/v1/accounts/{}/users/1", acme.id))),
        400,
        "invalid_id",
    )
    .await;

    // Well-formed ids that name nothing.
    for (who, client) in [("customer", &admin), ("staff", &staff)] {
        for path in [
            format!("/v1/accounts/{RANDOM_ID}"),
            format!("/v1/accounts/{RANDOM_ID}/subscription"),
            format!("/v1/accounts/{RANDOM_ID}/seats"),
            format!("/v1/accounts/{RANDOM_ID}/users"),
            format!("/v1/accounts/{RANDOM_ID}/invoices"),
            format!("/v1/accounts/{RANDOM_ID}/usage"),
            format!("/v1/accounts/{}/invoices/{RANDOM_ID}", acme.id),
            format!("/v1/accounts/{}/invoices/{RANDOM_ID}/document", acme.id),
            format!("/v1/conversations/{RANDOM_ID}"),
            format!("/v1/conversations/{RANDOM_ID}/messages"),
            format!("/v1/requests/{RANDOM_ID}"),
            format!("/v1/articles/{RANDOM_ID}"),
        ] {
            refused(
                &srv,
                &format!("{who} GET {path}"),
                client.get(srv.url(&path)),
                404,
                "not_found",
            )
            .await;
        }
        refused(
            &srv,
            &format!("{who} posts to an unknown conversation"),
            client
                .post(srv.url(&format!("/v1/conversations/{RANDOM_ID}/messages")))
                .json(&json!({ "body": "hi" })),
            404,
            "not_found",
        )
        .await;
        refused(
            &srv,
            &format!("{who} changes seats of an unknown account"),
            client
                .post(srv.url(&format!("/v1/accounts/{RANDOM_ID}/subscription/change")))
                .json(&json!({ "seats": 5 })),
            404,
            "not_found",
        )
        .await;
        refused(
            &srv,
            &format!("{who} invites into an unknown account"),
            client
                .post(srv.url(&format!("/v1/accounts/{RANDOM_ID}/users")))
                .json(&json!({ "email": "ghost@nowhere.test", "name": "Ghost", "role": "customer_member" })),
            404,
            "not_found",
        )
        .await;
        refused(
            &srv,
            &format!("{who} removes an unknown user"),
            client.delete(srv.url(&format!("/v1/accounts/{}/users/{RANDOM_ID}", acme.id))),
            404,
            "not_found",
        )
        .await;
        refused(
            &srv,
            &format!("{who} changes the role of an unknown user"),
            client
                .patch(srv.url(&format!("/v1/accounts/{}/users/{RANDOM_ID}", acme.id)))
                .json(&json!({ "role": "customer_admin" })),
            404,
            "not_found",
        )
        .await;
    }
    // Another account's conversation looks missing to a customer.
    let foreign = srv
        .records::<Conversation>(&format!("account_id != '{}'", acme.id))
        .remove(0);
    refused(
        &srv,
        "reply into another account's conversation",
        admin
            .post(srv.url(&format!("/v1/conversations/{}/messages", foreign.id)))
            .json(&json!({ "body": "hi" })),
        404,
        "not_found",
    )
    .await;
    // A client-minted id that belongs to another message.
    let taken = srv
        .records::<Message>(&format!("account_id = '{}'", acme.id))
        .into_iter()
        .find(|m| m.kind == MessageKind::Customer)
        .expect("Acme has customer messages");
    let other_conv = srv
        .records::<Conversation>(&format!(
            "account_id = '{}' AND id != '{}'",
            acme.id, taken.conversation_id
        ))
        .remove(0);
    refused(
        &srv,
        "reused message id",
        admin
            .post(srv.url(&format!("/v1/conversations/{}/messages", other_conv.id)))
            .json(&json!({ "id": taken.id, "body": "hijack" })),
        409,
        "conflict",
    )
    .await;
    srv.stop().await;
}

#[tokio::test]
async fn bad_query_parameters() {
    let srv = TestServer::start().await;
    let admin = srv.client_as("admin@acme.test").await;
    let staff = srv.client_as("agent@portico.test").await;
    let acme = srv.acme();
    let invoices = format!("/v1/accounts/{}/invoices", acme.id);
    for (query, status, code, field) in [
        ("?limit=0", 422, "validation_failed", Some("limit")),
        ("?limit=201", 422, "validation_failed", Some("limit")),
        ("?limit=-1", 400, "invalid_query", None),
        ("?limit=ten", 400, "invalid_query", None),
        ("?limit=99999999999999999999999", 400, "invalid_query", None),
        (
            "?cursor=%25%25%25",
            422,
            "validation_failed",
            Some("cursor"),
        ),
        (
            "?cursor=bm90LWEtdXVpZA",
            422,
            "validation_failed",
            Some("cursor"),
        ),
        ("?bogus=1", 400, "invalid_query", None),
    ] {
        let body = refused(
            &srv,
            query,
            admin.get(srv.url(&format!("{invoices}{query}"))),
            status,
            code,
        )
        .await;
        if let Some(f) = field {
            assert_eq!(body["error"]["field"], f, "{query}: names the parameter");
        }
    }
    for (path, status, code) in [
        ("/v1/sync/changes?after=-1", 422, "validation_failed"),
        ("/v1/sync/changes?limit=0", 422, "validation_failed"),
        ("/v1/sync/changes?limit=1001", 422, "validation_failed"),
        ("/v1/sync/changes?after=abc", 400, "invalid_query"),
        ("/v1/sync/changes?since=5", 400, "invalid_query"),
        ("/v1/conversations?status=bogus", 400, "invalid_query"),
        ("/v1/conversations?account_id=acme", 400, "invalid_query"),
        ("/v1/conversations?limit=0", 422, "validation_failed"),
        ("/v1/conversations?cursor=nope", 422, "validation_failed"),
        ("/v1/conversations?unassigned=maybe", 400, "invalid_query"),
        ("/v1/requests?limit=500", 422, "validation_failed"),
        ("/v1/articles?limit=0", 422, "validation_failed"),
    ] {
        refused(&srv, path, staff.get(srv.url(path)), status, code).await;
    }
    srv.stop().await;
}

/// Issues an OAuth token pair for `user` directly through the auth module.
fn oauth_pair(srv: &TestServer, user: &User) -> portico_model::wire::TokenResponse {
    let verifier = "v".repeat(64);
    let redirect = "http://127.0.0.1:1/cb";
    let req = auth::AuthorizeRequest::new(
        "code",
        auth::INBOX_CLIENT_ID,
        redirect,
        &auth::pkce_challenge(&verifier),
        "S256",
        None,
    )
    .unwrap();
    let url = req.grant(&srv.state.store, user.id, srv_now(srv)).unwrap();
    let code = url
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    auth::exchange_code(
        &srv.state.store,
        &code,
        &verifier,
        redirect,
        auth::INBOX_CLIENT_ID,
        srv_now(srv),
    )
    .unwrap()
}

fn srv_now(srv: &TestServer) -> jiff::Timestamp {
    use portico_portal::Clock;
    srv.clock.now()
}

#[tokio::test]
async fn missing_bad_expired_and_revoked_credentials() {
    let srv = TestServer::start().await;
    let conv = acme_conversation(&srv);
    let messages = srv.url(&format!("/v1/conversations/{}/messages", conv.id));
    let anon = reqwest::Client::new();
    let hello = json!({ "body": "hello" });

    refused(
        &srv,
        "no credentials",
        anon.post(&messages).json(&hello),
        401,
        "unauthenticated",
    )
    .await;
    refused(
        &srv,
        "no credentials on a read",
        anon.get(srv.url("/v1/me")),
        401,
        "unauthenticated",
    )
    .await;
    for header in [
        "Bearer garbage",
        "Bearer ",
        "Basic YWRtaW5AYWNtZS50ZXN0OnBvcnRpY28tZGVtbw==",
        "Token abc",
        "Bearer a.b.c",
    ] {
        refused(
            &srv,
            header,
            anon.post(&messages)
                .header(AUTHORIZATION, header)
                .json(&hello),
            401,
            "unauthenticated",
        )
        .await;
    }
    refused(
        &srv,
        "garbage cookie",
        anon.post(&messages)
            .header(COOKIE, "portico_session=forged")
            .json(&hello),
        401,
        "unauthenticated",
    )
    .await;

    // A refresh token is not an access token.
    let admin_user = srv.user_with_role(Role::CustomerAdmin, Some(srv.acme().id));
    let pair = oauth_pair(&srv, &admin_user);
    let body = refused(
        &srv,
        "refresh token as bearer",
        anon.post(&messages)
            .bearer_auth(&pair.refresh_token)
            .json(&hello),
        401,
        "unauthenticated",
    )
    .await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("refresh"),
        "{body}"
    );
    let ok = anon
        .get(srv.url("/v1/me"))
        .bearer_auth(&pair.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200, "the access token of the same pair works");

    // Revoked: a session after sign-out.
    let login = anon
        .post(srv.url("/v1/auth/login"))
        .json(
            &json!({ "email": "admin@acme.test", "password": portico_portal::seed::DEMO_PASSWORD }),
        )
        .send()
        .await
        .unwrap();
    let cookie = login.headers()[reqwest::header::SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let csrf = login.json::<Value>().await.unwrap()["csrf_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let out = anon
        .post(srv.url("/v1/auth/logout"))
        .header(COOKIE, format!("{cookie}; portico_csrf={csrf}"))
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(
        out.status(),
        204,
        "sign-out succeeds before the cookie is replayed"
    );
    let body = refused(
        &srv,
        "revoked session",
        anon.post(&messages).header(COOKIE, &cookie).json(&hello),
        401,
        "unauthenticated",
    )
    .await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("revoked"),
        "{body}"
    );

    // Expired: the access token after 15 minutes, a session after 14 days.
    let login = anon
        .post(srv.url("/v1/auth/login"))
        .json(
            &json!({ "email": "admin@acme.test", "password": portico_portal::seed::DEMO_PASSWORD }),
        )
        .send()
        .await
        .unwrap();
    let cookie = login.headers()[reqwest::header::SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    srv.clock.advance(SignedDuration::from_secs(15 * 60));
    let body = refused(
        &srv,
        "expired access token",
        anon.post(&messages)
            .bearer_auth(&pair.access_token)
            .json(&hello),
        401,
        "unauthenticated",
    )
    .await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("expired"),
        "{body}"
    );
    srv.clock.advance(SignedDuration::from_hours(14 * 24));
    refused(
        &srv,
        "expired session",
        anon.post(&messages).header(COOKIE, &cookie).json(&hello),
        401,
        "unauthenticated",
    )
    .await;
    srv.stop().await;
}

#[tokio::test]
async fn unknown_routes_and_methods() {
    let srv = TestServer::start().await;
    let admin = srv.client_as("admin@acme.test").await;
    let anon = reqwest::Client::new();
    refused(
        &srv,
        "unknown route",
        admin.get(srv.url("/v1/nope")),
        404,
        "not_found",
    )
    .await;
    refused(
        &srv,
        "unknown route, signed out",
        anon.get(srv.url("/admin.php")),
        404,
        "not_found",
    )
    .await;
    refused(
        &srv,
        "unknown version",
        admin.get(srv.url("/v2/plans")),
        404,
        "not_found",
    )
    .await;
    refused(
        &srv,
        "unknown sub-resource",
        admin
            .post(srv.url(&format!("/v1/accounts/{}/nonsense", srv.acme().id)))
            .json(&json!({})),
        404,
        "not_found",
    )
    .await;
    refused(
        &srv,
        "trailing slash",
        admin.get(srv.url("/v1/plans/")),
        404,
        "not_found",
    )
    .await;
    for (method, path) in [
        (reqwest::Method::DELETE, "/v1/plans".to_owned()),
        (
            reqwest::Method::PUT,
            format!("/v1/accounts/{}/subscription", srv.acme().id),
        ),
        (reqwest::Method::GET, "/v1/auth/logout".to_owned()),
        (reqwest::Method::GET, "/oauth/token".to_owned()),
    ] {
        refused(
            &srv,
            &format!("{method} {path}"),
            admin.request(method.clone(), srv.url(&path)),
            405,
            "method_not_allowed",
        )
        .await;
    }
    let resp = admin.delete(srv.url("/v1/plans")).send().await.unwrap();
    let allow = resp
        .headers()
        .get(reqwest::header::ALLOW)
        .map(|v| v.to_str().unwrap().to_owned());
    assert!(
        allow.as_deref().is_some_and(|a| a.contains("GET")),
        "a 405 says which methods the path takes (RFC 9110 §15.5.6): {allow:?}"
    );
    srv.stop().await;
}
