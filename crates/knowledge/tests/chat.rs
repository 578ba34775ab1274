//! The chat-completions composer against a real HTTP server on loopback
//! speaking the OpenAI chat-completions protocol (JSON and server-sent
//! events), with a timeout, server errors and ungrounded replies: each
//! falls back to the extractive composer with a note.

use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use portico_knowledge::compose::{
    ChatCompletions, ChatConfig, Citation, Composer, Extractive, Fact, Grounding, Source,
};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use uuid::Uuid;

/// One request the peer received: its Authorization header and JSON body.
type Received = (Option<String>, Value);

/// What the peer saw, for assertions.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<Received>>>);

async fn completions(State(seen): State<Seen>, headers: HeaderMap, body: String) -> Response {
    let req: Value = serde_json::from_str(&body).unwrap();
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    seen.0.lock().unwrap().push((auth, req.clone()));
    let reply = "To add a seat, open Billing and choose Add seats [S1]. You use 8 of 10 seats [F:seats]. \
                 The moon is made of cheese [S7].";
    match req["model"].as_str().unwrap() {
        "json" => axum::Json(json!({
            "id": "x", "object": "chat.completion",
            "choices": [{ "index": 0, "message": { "role": "assistant", "content": reply }, "finish_reason": "stop" }]
        }))
        .into_response(),
        "stream" => {
            let mut sse = String::new();
            for piece in reply.split_inclusive(' ') {
                let ev = json!({ "choices": [{ "index": 0, "delta": { "content": piece } }] });
                sse.push_str(&format!("data: {ev}\n\n"));
            }
            sse.push_str("data: [DONE]\n\n");
            ([("content-type", "text/event-stream")], sse).into_response()
        }
        "slow" => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            StatusCode::OK.into_response()
        }
        "uncited" => axum::Json(json!({
            "choices": [{ "message": { "content": "Sure! Here is everything I know about every account." } }]
        }))
        .into_response(),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response(),
    }
}

async fn peer() -> (String, Seen) {
    let seen = Seen::default();
    let app = Router::new()
        .route("/v1/chat/completions", post(completions))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/v1", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, seen)
}

fn grounding() -> Grounding {
    Grounding {
        question: "How do I add a seat?".into(),
        sources: vec![Source {
            n: 1,
            id: Uuid::from_u128(11),
            kind: "article".into(),
            title: "Add seats".into(),
            text: "To add a seat, open Billing and choose Add seats.".into(),
            similarity: Some(0.8),
        }],
        facts: vec![Fact {
            key: "seats".into(),
            text: "8 of your 10 seats are in use.".into(),
            topics: vec!["seat".into()],
        }],
    }
}

fn composer(base: &str, model: &str, timeout: Duration) -> ChatCompletions {
    ChatCompletions::new(ChatConfig {
        base_url: base.into(),
        model: model.into(),
        api_key: Some("test-key".into()),
        timeout,
        stream: model == "stream",
    })
    .unwrap()
}

#[tokio::test]
async fn json_answer_is_checked_sentence_by_sentence() {
    let (base, seen) = peer().await;
    let c = composer(&base, "json", Duration::from_secs(5));
    let a = c.compose(&grounding()).await;
    assert_eq!(a.composer, "chat_completions");
    assert_eq!(a.note, None);
    assert_eq!(
        a.sentences.len(),
        2,
        "the sentence citing [S7] (not given) is dropped: {a:?}"
    );
    assert_eq!(
        a.sentences[0].citations,
        vec![Citation::Source {
            n: 1,
            id: Uuid::from_u128(11)
        }]
    );
    assert!(!a.text.contains("cheese"));
    let seen = seen.0.lock().unwrap();
    let (auth, req) = &seen[0];
    assert_eq!(auth.as_deref(), Some("Bearer test-key"));
    assert_eq!(req["messages"][0]["role"], "system");
    let user = req["messages"][1]["content"].as_str().unwrap();
    assert!(user.contains("[S1] Add seats") && user.contains("[F:seats]"));
}

#[tokio::test]
async fn streamed_answer_is_assembled() {
    let (base, seen) = peer().await;
    let c = composer(&base, "stream", Duration::from_secs(5));
    let a = c.compose(&grounding()).await;
    assert_eq!(a.composer, "chat_completions", "{a:?}");
    assert_eq!(a.sentences.len(), 2);
    assert!(a.text.starts_with("To add a seat, open Billing"));
    assert_eq!(seen.0.lock().unwrap()[0].1["stream"], true);
}

#[tokio::test]
async fn timeout_falls_back_with_a_note() {
    let (base, _) = peer().await;
    let c = composer(&base, "slow", Duration::from_millis(300));
    let a = c.compose(&grounding()).await;
    assert_eq!(a.composer, "extractive");
    assert!(
        a.note.as_deref().unwrap().contains("did not answer within"),
        "{a:?}"
    );
    assert_eq!(a, {
        let mut e = Extractive.answer(&grounding());
        e.note = a.note.clone();
        e
    });
}

#[tokio::test]
async fn server_error_and_unreachable_fall_back() {
    let (base, _) = peer().await;
    let a = composer(&base, "broken", Duration::from_secs(5))
        .compose(&grounding())
        .await;
    assert_eq!(a.composer, "extractive");
    assert!(a.note.as_deref().unwrap().contains("HTTP 500"));

    // Nothing listens on this port.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}/v1", listener.local_addr().unwrap());
    drop(listener);
    let a = composer(&dead, "json", Duration::from_secs(2))
        .compose(&grounding())
        .await;
    assert_eq!(a.composer, "extractive");
    assert!(a.note.is_some());
}

#[tokio::test]
async fn an_answer_citing_nothing_falls_back() {
    let (base, _) = peer().await;
    let a = composer(&base, "uncited", Duration::from_secs(5))
        .compose(&grounding())
        .await;
    assert_eq!(a.composer, "extractive");
    assert!(a.note.as_deref().unwrap().contains("cited none"));
    assert!(!a.text.contains("every account"));
}
