//! `docs/openapi.json` is hand-kept; this keeps it honest. Every route the
//! router registers is documented with the same methods, and every documented
//! operation is served (not the "no such route" fallback, not 405).

mod common;

use std::collections::BTreeSet;

use common::*;

const METHODS: [&str; 5] = ["get", "post", "patch", "put", "delete"];

fn documented() -> BTreeSet<(String, String)> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/openapi.json"
    ))
    .unwrap();
    let doc: serde_json::Value =
        serde_json::from_str(&text).expect("docs/openapi.json is valid JSON");
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for m in item.as_object().unwrap().keys() {
            assert!(
                METHODS.contains(&m.as_str()),
                "unexpected method {m} for {path}"
            );
            out.insert((m.clone(), path.clone()));
        }
    }
    out
}

/// Routes as written in the router source: `.route("/path", get(a).post(b))`.
fn registered() -> BTreeSet<(String, String)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/api");
    let mut out = BTreeSet::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let src = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for chunk in src.split(".route(").skip(1) {
            let path = chunk
                .split('"')
                .nth(1)
                .expect("route path literal")
                .to_owned();
            // The route's method list ends where the call closes on its line.
            let call = chunk.split("\n        .").next().unwrap_or(chunk);
            let call = call.split("\n}").next().unwrap_or(call);
            for m in METHODS {
                let aliased = format!("{m}_route(");
                if call.contains(&format!(" {m}("))
                    || call.contains(&format!(".{m}("))
                    || call.contains(&format!("({m}("))
                    || call.contains(&aliased)
                {
                    out.insert((m.to_owned(), path.clone()));
                }
            }
        }
    }
    out
}

#[test]
fn every_route_is_documented_and_nothing_else() {
    let (doc, code) = (documented(), registered());
    let undocumented: Vec<_> = code.difference(&doc).collect();
    let phantom: Vec<_> = doc.difference(&code).collect();
    assert!(
        undocumented.is_empty(),
        "routes missing from docs/openapi.json: {undocumented:?}"
    );
    assert!(
        phantom.is_empty(),
        "docs/openapi.json documents routes the server lacks: {phantom:?}"
    );
}

#[tokio::test]
async fn every_documented_operation_is_served() {
    let srv = TestServer::start().await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let id = "0190a000-0000-7000-8000-000000000000";
    for (method, path) in documented() {
        let url = srv.url(
            &path
                .replace("{id}", id)
                .replace("{user_id}", id)
                .replace("{invoice_id}", id),
        );
        let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let resp = client.request(m, &url).send().await.unwrap();
        let status = resp.status().as_u16();
        let body = resp.text().await.unwrap_or_default();
        assert_ne!(
            status, 405,
            "{method} {path} is documented but the server does not allow the method"
        );
        assert!(
            !body.contains("route for this method and path"),
            "{method} {path} is documented but falls through to no route"
        );
    }
    srv.stop().await;
}
