//! The live hub over real sockets on loopback: order, resume without loss or
//! duplicates, account isolation, hostile clients closed with their codes,
//! a stalled client dropped without slowing others, and collision signals.

mod common;

use std::time::Duration;

use common::*;
use futures_util::{SinkExt, StreamExt};
use portico_model::live::{ClientFrame, ServerFrame, close};
use portico_model::*;
use portico_portal::store::{self, Actor};
use serde_json::json;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Message as Ws, Utf8Bytes};
use uuid::Uuid;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Signs in with the demo password and returns the session token.
async fn token(srv: &TestServer, email: &str) -> String {
    let resp = reqwest::Client::new()
        .post(srv.url("/v1/auth/login"))
        .json(&json!({ "email": email, "password": portico_portal::seed::DEMO_PASSWORD }))
        .send()
        .await
        .unwrap();
    let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
    cookie
        .split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
        .to_owned()
}

async fn connect(srv: &TestServer, token: &str) -> Socket {
    let mut req = format!("{}/v1/live", srv.base.replace("http", "ws"))
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .expect("the hub accepts a signed-in client");
    match next(&mut ws).await {
        ServerFrame::Hello { .. } => ws,
        other => panic!("the first frame is hello, got {other:?}"),
    }
}

/// A client whose socket receive buffer is tiny, so that not reading stalls
/// the server's writes within a few frames (loopback buffers otherwise grow
/// to tens of megabytes and hide a stuck client for a long time).
async fn connect_small_buffer(srv: &TestServer, token: &str) -> Socket {
    let addr: std::net::SocketAddr = srv.base.trim_start_matches("http://").parse().unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(addr).await.unwrap();
    let mut req = format!("{}/v1/live", srv.base.replace("http", "ws"))
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let (mut ws, _) =
        tokio_tungstenite::client_async(req, tokio_tungstenite::MaybeTlsStream::Plain(stream))
            .await
            .unwrap();
    assert!(
        matches!(next(&mut ws).await, ServerFrame::Hello { .. }),
        "hello first"
    );
    ws
}

/// The next frame, within a generous bound so a hang fails instead of blocking.
async fn next(ws: &mut Socket) -> ServerFrame {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a frame within 10 s")
            .expect("socket open")
            .unwrap();
        match msg {
            Ws::Text(t) => {
                return serde_json::from_str(&t)
                    .unwrap_or_else(|e| panic!("server frames parse: {e}: {t}"));
            }
            Ws::Ping(_) | Ws::Pong(_) => continue,
            other => panic!("expected a text frame, got {other:?}"),
        }
    }
}

async fn send(ws: &mut Socket, frame: &ClientFrame) {
    ws.send(Ws::Text(serde_json::to_string(frame).unwrap().into()))
        .await
        .unwrap();
}

/// Frames until a pong: everything the server sent before it, in order.
async fn until_pong(ws: &mut Socket) -> Vec<ServerFrame> {
    send(ws, &ClientFrame::Ping).await;
    let mut out = Vec::new();
    loop {
        match next(ws).await {
            ServerFrame::Pong => return out,
            f => out.push(f),
        }
    }
}

/// Subscribes to a conversation and waits until the server handled it.
async fn subscribe(ws: &mut Socket, conversation_id: ConversationId) {
    send(ws, &ClientFrame::Subscribe { conversation_id }).await;
    until_pong(ws).await;
}

/// Reads until the server closes; returns the close code.
async fn close_code(ws: &mut Socket) -> Option<u16> {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("the server closes within 10 s")
        {
            Some(Ok(Ws::Close(Some(CloseFrame { code, .. })))) => return Some(code.into()),
            Some(Ok(Ws::Close(None))) | None | Some(Err(_)) => return None,
            Some(Ok(_)) => continue,
        }
    }
}

fn message_ids(frames: &[ServerFrame], conv: ConversationId) -> Vec<Uuid> {
    frames
        .iter()
        .filter_map(|f| match f {
            ServerFrame::Change { change } if change.kind == Kind::Message => {
                let row = change.row.as_ref()?;
                (row["conversation_id"] == conv.to_string()).then_some(change.id)
            }
            _ => None,
        })
        .collect()
}

fn acme_conversation(srv: &TestServer) -> Conversation {
    srv.records::<Conversation>(&format!("account_id = '{}'", srv.acme().id))
        .remove(0)
}

async fn post(
    client: &reqwest::Client,
    srv: &TestServer,
    conv: ConversationId,
    body: &str,
) -> Uuid {
    let id = Uuid::now_v7();
    let r = client
        .post(srv.url(&format!("/v1/conversations/{conv}/messages")))
        .json(&json!({ "id": id, "body": body }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    id
}

#[tokio::test]
async fn changes_arrive_in_commit_order() {
    let srv = TestServer::start().await;
    let mut agent = connect(&srv, &token(&srv, "agent@portico.test").await).await;
    let customer = srv.client_as("admin@acme.test").await;
    let conv = acme_conversation(&srv);
    let mut sent = Vec::new();
    for i in 0..20 {
        sent.push(post(&customer, &srv, conv.id, &format!("message {i}")).await);
    }
    let mut got = Vec::new();
    let mut seqs = Vec::new();
    while got.len() < sent.len() {
        let frame = next(&mut agent).await;
        if let ServerFrame::Change { change } = &frame {
            seqs.push(change.seq);
        }
        got.extend(message_ids(&[frame], conv.id));
    }
    assert_eq!(
        got, sent,
        "messages reach the agent in the order they were written"
    );
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "seq only grows on the socket"
    );
    srv.stop().await;
}

#[tokio::test]
async fn a_dropped_client_resumes_without_loss_or_duplicates() {
    let srv = TestServer::start().await;
    let tok = token(&srv, "agent@portico.test").await;
    let customer = srv.client_as("admin@acme.test").await;
    let conv = acme_conversation(&srv);
    let mut ws = connect(&srv, &tok).await;
    let first = post(&customer, &srv, conv.id, "before the drop").await;
    let mut seen = Vec::new();
    let mut cursor = 0;
    while !seen.contains(&first) {
        let f = next(&mut ws).await;
        if let ServerFrame::Change { change } = &f {
            cursor = change.seq;
        }
        seen.extend(message_ids(&[f], conv.id));
    }
    drop(ws);

    let mut missed = Vec::new();
    for i in 0..10 {
        missed.push(post(&customer, &srv, conv.id, &format!("while away {i}")).await);
    }
    let mut ws = connect(&srv, &tok).await;
    send(&mut ws, &ClientFrame::Resume { after_seq: cursor }).await;
    let mut frames = Vec::new();
    loop {
        match next(&mut ws).await {
            ServerFrame::Resumed { complete, .. } => {
                assert!(complete, "ten messages fit in one resume");
                break;
            }
            f => frames.push(f),
        }
    }
    assert_eq!(
        message_ids(&frames, conv.id),
        missed,
        "exactly the missed messages, once each, in order"
    );
    srv.stop().await;
}

#[tokio::test]
async fn a_customer_cannot_reach_another_account() {
    let srv = TestServer::start().await;
    let mut ws = connect(&srv, &token(&srv, "admin@acme.test").await).await;
    let mut staff = connect(&srv, &token(&srv, "agent@portico.test").await).await;
    let other = srv
        .records::<Conversation>(&format!("account_id = '{}'", srv.other_account().id))
        .remove(0);
    send(
        &mut ws,
        &ClientFrame::Subscribe {
            conversation_id: other.id,
        },
    )
    .await;
    match next(&mut ws).await {
        ServerFrame::Error { code, .. } => assert_eq!(
            code, "not_found",
            "another account's conversation does not exist for this customer"
        ),
        f => panic!("expected an error, got {f:?}"),
    }
    let fp = srv.fingerprint();
    let message_id = MessageId(Uuid::now_v7());
    send(
        &mut ws,
        &ClientFrame::Send {
            conversation_id: other.id,
            message_id,
            body: "hello?".into(),
            after_message_id: None,
            force: false,
        },
    )
    .await;
    match next(&mut ws).await {
        ServerFrame::Error {
            code,
            message_id: Some(m),
            ..
        } => {
            assert_eq!(code, "not_found");
            assert_eq!(m, message_id, "the error names the refused message");
        }
        f => panic!("expected an error, got {f:?}"),
    }
    assert_eq!(srv.fingerprint(), fp, "nothing was written");
    let frames = until_pong(&mut staff).await;
    assert!(
        arriving(&frames).is_empty(),
        "a message into another account's conversation is not shown to staff either: {frames:?}"
    );

    // Staff write into the other account: nothing of it reaches this customer.
    let agent = srv.client_as("agent@portico.test").await;
    post(&agent, &srv, other.id, "for the other company").await;
    let frames = until_pong(&mut ws).await;
    let frames_after_wake = until_pong(&mut ws).await;
    for f in frames.iter().chain(&frames_after_wake) {
        if let ServerFrame::Change { change } = f {
            let account = change
                .row
                .as_ref()
                .and_then(|r| r.get("account_id"))
                .and_then(|a| a.as_str())
                .unwrap_or_default();
            assert_ne!(
                account,
                other.account_id.to_string(),
                "another account's change reached a customer: {change:?}"
            );
        }
    }
    srv.stop().await;
}

#[tokio::test]
async fn hostile_clients_are_closed_with_their_codes_and_accepted_messages_stay() {
    let srv = TestServer::start().await;
    let tok = token(&srv, "admin@acme.test").await;
    let conv = acme_conversation(&srv);

    let mut ws = connect(&srv, &tok).await;
    ws.send(Ws::Text("{not json".into())).await.unwrap();
    assert_eq!(
        close_code(&mut ws).await,
        Some(close::MALFORMED),
        "malformed frames close with 4000"
    );

    let mut ws = connect(&srv, &tok).await;
    ws.send(Ws::Text(r#"{"type":"launch_missiles"}"#.into()))
        .await
        .unwrap();
    assert_eq!(
        close_code(&mut ws).await,
        Some(close::MALFORMED),
        "unknown frame types close with 4000"
    );

    let mut ws = connect(&srv, &tok).await;
    ws.send(Ws::Binary(vec![1, 2, 3].into())).await.unwrap();
    assert_eq!(
        close_code(&mut ws).await,
        Some(close::MALFORMED),
        "binary frames close with 4000"
    );

    let mut ws = connect(&srv, &tok).await;
    let huge = json!({ "type": "typing", "conversation_id": conv.id, "typing": true, "pad": "x".repeat(70_000) }).to_string();
    let _ = ws.send(Ws::Text(Utf8Bytes::from(huge))).await;
    assert_eq!(
        close_code(&mut ws).await,
        Some(close::TOO_BIG),
        "oversized frames close with 1009"
    );

    // A flood: every message acknowledged before the cut is stored.
    let mut ws = connect(&srv, &tok).await;
    let mut ids = Vec::new();
    for i in 0..200 {
        let id = MessageId(Uuid::now_v7());
        ids.push(id);
        let frame = ClientFrame::Send {
            conversation_id: conv.id,
            message_id: id,
            body: format!("flood {i}"),
            after_message_id: None,
            force: false,
        };
        if ws
            .send(Ws::Text(serde_json::to_string(&frame).unwrap().into()))
            .await
            .is_err()
        {
            break;
        }
    }
    let mut acked = Vec::new();
    let code = loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("closed within 10 s")
        {
            Some(Ok(Ws::Text(t))) => {
                if let Ok(ServerFrame::Ack { message_id }) = serde_json::from_str(&t) {
                    acked.push(message_id);
                }
            }
            Some(Ok(Ws::Close(Some(f)))) => break Some(u16::from(f.code)),
            Some(Ok(_)) => {}
            _ => break None,
        }
    };
    assert_eq!(code, Some(close::RATE_LIMITED), "flooding closes with 4029");
    assert!(
        !acked.is_empty() && acked.len() < ids.len(),
        "some were accepted before the cut ({} of {})",
        acked.len(),
        ids.len()
    );
    for id in &acked {
        assert_eq!(
            srv.records::<Message>(&format!("id = '{id}'")).len(),
            1,
            "an acknowledged message is stored, once"
        );
    }
    srv.stop().await;
}

#[tokio::test]
async fn a_stalled_client_is_dropped_and_others_keep_receiving() {
    let srv = TestServer::start().await;
    let tok = token(&srv, "agent@portico.test").await;
    let stalled = connect_small_buffer(&srv, &tok).await; // never read from again
    let mut healthy = connect(&srv, &tok).await;
    assert_eq!(srv.state.live.connections(), 2);
    let conv = acme_conversation(&srv);

    // Rounds of committed changes, ~4 KB each: each round overflows the
    // stalled client's queue, and a few rounds fill its kernel buffers too,
    // until its writer blocks and the hub closes it.
    let agent = srv.client_as("agent@portico.test").await;
    let per_round = 500;
    let mut total = 0;
    let mut got = std::collections::HashSet::new();
    for round in 0..20 {
        srv.state
            .store
            .write(Actor::SYSTEM, anchor(), |w| {
                let c: Conversation = store::require(w, conv.id.0)?;
                for i in 0..per_round {
                    let mut m = Message {
                        id: w.new_id(),
                        conversation_id: c.id,
                        account_id: c.account_id,
                        kind: MessageKind::Customer,
                        author_id: Some(c.requester_id),
                        author_name: "Ada".into(),
                        body: format!("round {round} bulk {i} {}", "lorem ipsum ".repeat(340)),
                        mentions: vec![],
                        email: None,
                        delivery: None,
                        version: 0,
                        created_at: anchor(),
                        updated_at: anchor(),
                    };
                    w.insert(&mut m)?;
                }
                Ok(())
            })
            .unwrap();
        srv.state.live.wake();
        total += per_round;

        // The healthy client reads as fast as it can; a burst bigger than
        // its queue is cut short with `lagged`, and the rest comes over HTTP.
        while got.len() < total {
            match next(&mut healthy).await {
                ServerFrame::Change { change } if change.kind == Kind::Message => {
                    got.insert(change.id);
                }
                ServerFrame::Lagged { mut after_seq } => loop {
                    let page: portico_model::wire::ChangesPage = agent
                        .get(srv.url(&format!("/v1/sync/changes?after={after_seq}&limit=1000")))
                        .send()
                        .await
                        .unwrap()
                        .json()
                        .await
                        .unwrap();
                    got.extend(
                        page.changes
                            .iter()
                            .filter(|c| c.kind == Kind::Message)
                            .map(|c| c.id),
                    );
                    after_seq = page.next_after;
                    if !page.has_more {
                        break;
                    }
                },
                _ => {}
            }
        }
        assert_eq!(
            got.len(),
            total,
            "the healthy client has every change of round {round}"
        );
        if srv.state.live.connections() == 1 {
            break;
        }
    }
    // The stalled one is dropped once its writer has been blocked a while.
    for _ in 0..200 {
        if srv.state.live.connections() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        srv.state.live.connections(),
        1,
        "the stalled client was closed instead of holding up the hub"
    );
    drop(stalled);
    srv.stop().await;
}

#[tokio::test]
async fn agents_see_each_other_and_the_traffic_cop_warns() {
    let srv = TestServer::start().await;
    let conv = acme_conversation(&srv);
    let (ta, tb) = (
        token(&srv, "agent@portico.test").await,
        token(&srv, "lead@portico.test").await,
    );
    let mut a = connect(&srv, &ta).await;
    let mut b = connect(&srv, &tb).await;
    for ws in [&mut a, &mut b] {
        send(
            ws,
            &ClientFrame::Subscribe {
                conversation_id: conv.id,
            },
        )
        .await;
        send(
            ws,
            &ClientFrame::Viewing {
                conversation_id: conv.id,
                replying: true,
            },
        )
        .await;
        // Wait until the server handled this client's frames before the next.
        until_pong(ws).await;
    }
    let frames = until_pong(&mut a).await;
    let lead = srv
        .records::<User>("data ->> '$.email' = 'lead@portico.test'")
        .remove(0);
    let sees_lead = frames.iter().any(|f| matches!(f, ServerFrame::Presence { viewers, .. } if viewers.iter().any(|v| v.user_id == lead.id && v.replying)));
    assert!(
        sees_lead,
        "agent A sees the lead replying to the same conversation: {frames:?}"
    );

    // Both saw the same last message; the lead answers first.
    let last: Message = srv
        .records::<Message>(&format!(
            "data ->> '$.conversation_id' = '{}' ORDER BY id DESC LIMIT 1 --",
            conv.id
        ))
        .remove(0);
    let lead_msg = MessageId(Uuid::now_v7());
    send(
        &mut b,
        &ClientFrame::Send {
            conversation_id: conv.id,
            message_id: lead_msg,
            body: "On it!".into(),
            after_message_id: Some(last.id),
            force: false,
        },
    )
    .await;
    assert!(
        until_pong(&mut b)
            .await
            .iter()
            .any(|f| matches!(f, ServerFrame::Ack { message_id } if *message_id == lead_msg))
    );
    let mine = MessageId(Uuid::now_v7());
    send(
        &mut a,
        &ClientFrame::Send {
            conversation_id: conv.id,
            message_id: mine,
            body: "Looking now".into(),
            after_message_id: Some(last.id),
            force: false,
        },
    )
    .await;
    let frames = until_pong(&mut a).await;
    let warned = frames.iter().any(|f| matches!(f, ServerFrame::Error { code, message_id: Some(m), message } if code == "newer_reply" && *m == mine && message.contains("Lee Lead")));
    assert!(
        warned,
        "the second reply is held with a warning naming who answered: {frames:?}"
    );
    assert!(
        srv.records::<Message>(&format!("id = '{mine}'")).is_empty(),
        "the held reply was not sent"
    );
    send(
        &mut a,
        &ClientFrame::Send {
            conversation_id: conv.id,
            message_id: mine,
            body: "Looking now".into(),
            after_message_id: Some(last.id),
            force: true,
        },
    )
    .await;
    assert!(
        until_pong(&mut a)
            .await
            .iter()
            .any(|f| matches!(f, ServerFrame::Ack { message_id } if *message_id == mine)),
        "force sends anyway"
    );
    srv.stop().await;
}

#[tokio::test]
async fn a_refused_sign_in_gets_401_before_any_socket() {
    let srv = TestServer::start().await;
    let url = format!("{}/v1/live", srv.base.replace("http", "ws"));
    for token in [None, Some("not-a-token")] {
        let mut req = url.as_str().into_client_request().unwrap();
        if let Some(t) = token {
            req.headers_mut()
                .insert("authorization", format!("Bearer {t}").parse().unwrap());
        }
        match tokio_tungstenite::connect_async(req).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
                assert_eq!(resp.status(), 401, "token {token:?} is refused with 401")
            }
            other => panic!("token {token:?} must be refused, got {other:?}"),
        }
    }
    assert_eq!(srv.state.live.connections(), 0, "no socket was opened");
    srv.stop().await;
}

#[tokio::test]
async fn chat_over_the_socket_keeps_order_and_carries_typing_and_reads() {
    let srv = TestServer::start().await;
    let conv = acme_conversation(&srv);
    let mut customer = connect(&srv, &token(&srv, "admin@acme.test").await).await;
    let mut agent = connect(&srv, &token(&srv, "agent@portico.test").await).await;
    for ws in [&mut customer, &mut agent] {
        subscribe(ws, conv.id).await;
    }

    // A burst of sends (within the rate limit) reaches the agent in order.
    let mut sent = Vec::new();
    for i in 0..30 {
        let id = MessageId(Uuid::now_v7());
        sent.push(id.0);
        send(
            &mut customer,
            &ClientFrame::Send {
                conversation_id: conv.id,
                message_id: id,
                body: format!("line {i}"),
                after_message_id: None,
                force: false,
            },
        )
        .await;
    }
    let mut got = Vec::new();
    while got.len() < sent.len() {
        got.extend(message_ids(&[next(&mut agent).await], conv.id));
    }
    assert_eq!(got, sent, "the agent sees the customer's lines in order");

    // Typing and read receipts reach the other side, named.
    send(
        &mut agent,
        &ClientFrame::Typing {
            conversation_id: conv.id,
            typing: true,
        },
    )
    .await;
    let last = MessageId(*sent.last().unwrap());
    send(
        &mut agent,
        &ClientFrame::Read {
            conversation_id: conv.id,
            message_id: last,
        },
    )
    .await;
    until_pong(&mut agent).await;
    let frames = until_pong(&mut customer).await;
    let staff = srv
        .records::<User>("data ->> '$.email' = 'agent@portico.test'")
        .remove(0);
    assert!(
        frames.iter().any(|f| matches!(f, ServerFrame::Typing { conversation_id, user_id, name, typing: true } if *conversation_id == conv.id && *user_id == staff.id && *name == staff.name)),
        "the customer sees the agent typing: {frames:?}"
    );
    assert!(
        frames.iter().any(|f| matches!(f, ServerFrame::Read { message_id, user_id, .. } if *message_id == last && *user_id == staff.id)),
        "the customer sees the agent read the last line: {frames:?}"
    );
    assert!(
        !frames
            .iter()
            .any(|f| matches!(f, ServerFrame::Presence { .. })),
        "who-is-viewing is for staff only: {frames:?}"
    );
    srv.stop().await;
}

#[tokio::test]
async fn an_agent_with_team_access_gets_only_its_teams_messages_live() {
    let srv = TestServer::start().await;
    let kai = srv
        .records::<User>("data ->> '$.email' = 'kai@portico.test'")
        .remove(0);
    let team = kai.team_ids[0];
    let admin = srv.client_as("admin@portico.test").await;
    let r = admin
        .patch(srv.url(&format!("/v1/users/{}/access", kai.id)))
        .json(&json!({ "conversation_access": "teams" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let convs = srv.records::<Conversation>("1 = 1");
    let theirs = convs
        .iter()
        .find(|c| c.team_id == Some(team) && c.assignee_id != Some(kai.id))
        .expect("the seed gives Kai's team a conversation");
    let other = convs
        .iter()
        .find(|c| c.team_id != Some(team) && c.assignee_id != Some(kai.id))
        .expect("and other teams theirs");

    let mut ws = connect(&srv, &token(&srv, "kai@portico.test").await).await;
    let agent = srv.client_as("agent@portico.test").await;
    let in_team = post(&agent, &srv, theirs.id, "for Kai's team").await;
    let outside = post(&agent, &srv, other.id, "for another team").await;
    let frames = until_pong(&mut ws).await;
    assert_eq!(
        message_ids(&frames, theirs.id),
        vec![in_team],
        "Kai gets the message in a conversation of his team: {frames:?}"
    );
    assert!(
        !frames
            .iter()
            .any(|f| matches!(f, ServerFrame::Change { change } if change.id == outside)),
        "another team's message never reaches Kai: {frames:?}"
    );
    assert!(
        !frames.iter().any(|f| matches!(f, ServerFrame::Change { change } if change.id == other.id.0 && change.row.is_some())),
        "nor that conversation's record: {frames:?}"
    );
    srv.stop().await;
}

#[tokio::test]
async fn a_resume_replays_what_was_missed_and_never_repeats_what_came_live() {
    let srv = TestServer::start().await;
    let conv = acme_conversation(&srv);
    let customer = srv.client_as("admin@acme.test").await;
    let cursor = srv.max_seq();
    let missed = post(&customer, &srv, conv.id, "while away").await;
    let mut ws = connect(&srv, &token(&srv, "agent@portico.test").await).await;
    // Committed (and sent live) before the client's resume is handled.
    let live = post(&customer, &srv, conv.id, "just now").await;
    send(&mut ws, &ClientFrame::Resume { after_seq: cursor }).await;
    let mut frames = Vec::new();
    loop {
        match next(&mut ws).await {
            ServerFrame::Resumed { complete, .. } => {
                assert!(complete);
                break;
            }
            f => frames.push(f),
        }
    }
    let mut got = message_ids(&frames, conv.id);
    got.sort();
    assert_eq!(
        got,
        vec![missed, live],
        "the missed message once (replayed), the new one once (live)"
    );
    srv.stop().await;
}

/// An open socket does not keep a staff member's old scope: when an admin
/// moves Kai to another team, his socket is closed with `SCOPE_CHANGED`
/// before any later change is shaped for the old team, and a new socket
/// carries the new team's messages and not the old team's.
#[tokio::test]
async fn a_team_change_closes_an_open_socket_and_the_new_one_has_the_new_scope() {
    let srv = TestServer::start().await;
    let kai = srv
        .records::<User>("data ->> '$.email' = 'kai@portico.test'")
        .remove(0);
    let old_team = kai.team_ids[0];
    let new_team = srv
        .records::<Team>("1 = 1")
        .into_iter()
        .map(|t| t.id)
        .find(|t| *t != old_team)
        .expect("the seed has a second team");
    let admin = srv.client_as("admin@portico.test").await;
    let set_access = |body: serde_json::Value| {
        let admin = admin.clone();
        let url = srv.url(&format!("/v1/users/{}/access", kai.id));
        async move {
            let r = admin.patch(url).json(&body).send().await.unwrap();
            assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
        }
    };
    set_access(json!({ "conversation_access": "teams" })).await;
    let convs = srv.records::<Conversation>("1 = 1");
    let in_old = convs
        .iter()
        .find(|c| c.team_id == Some(old_team) && c.assignee_id != Some(kai.id))
        .expect("the seed gives Kai's team a conversation");
    let in_new = convs
        .iter()
        .find(|c| c.team_id == Some(new_team) && c.assignee_id != Some(kai.id))
        .expect("and the other team one");

    let kai_token = token(&srv, "kai@portico.test").await;
    let mut ws = connect(&srv, &kai_token).await;
    let agent = srv.client_as("agent@portico.test").await;
    let before = post(&agent, &srv, in_old.id, "for Kai's old team").await;
    assert_eq!(
        message_ids(&until_pong(&mut ws).await, in_old.id),
        vec![before],
        "while in the old team, Kai gets its messages"
    );

    set_access(json!({ "team_ids": [new_team] })).await;
    let after_move = post(&agent, &srv, in_old.id, "after Kai left").await;
    let mut frames = Vec::new();
    let code = loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("the server acts within 10 s")
        {
            Some(Ok(Ws::Text(t))) => frames.push(serde_json::from_str::<ServerFrame>(&t).unwrap()),
            Some(Ok(Ws::Close(Some(CloseFrame { code, .. })))) => break Some(u16::from(code)),
            Some(Ok(Ws::Close(None))) | None | Some(Err(_)) => break None,
            Some(Ok(_)) => continue,
        }
    };
    assert_eq!(
        code,
        Some(close::SCOPE_CHANGED),
        "the open socket is closed with the code that makes the client resync"
    );
    assert!(
        !frames
            .iter()
            .any(|f| matches!(f, ServerFrame::Change { change } if change.id == after_move)),
        "nothing of the old team is shaped for Kai after the move: {frames:?}"
    );

    // The client reconnects: the new socket has the new scope.
    let mut ws = connect(&srv, &kai_token).await;
    let old_again = post(&agent, &srv, in_old.id, "old team again").await;
    let new_one = post(&agent, &srv, in_new.id, "for Kai's new team").await;
    let frames = until_pong(&mut ws).await;
    assert_eq!(
        message_ids(&frames, in_new.id),
        vec![new_one],
        "the new team's message reaches Kai: {frames:?}"
    );
    assert!(
        !frames
            .iter()
            .any(|f| matches!(f, ServerFrame::Change { change } if change.id == old_again)),
        "the old team's does not: {frames:?}"
    );

    // Disabling the user closes the socket as signed out.
    let mut ws_other = connect(&srv, &kai_token).await;
    srv.state
        .store
        .write(Actor::SYSTEM, anchor(), |w| {
            let mut u: User = store::require(w, kai.id.0)?;
            u.status = UserStatus::Disabled;
            w.update(&mut u)
        })
        .unwrap();
    assert_eq!(
        close_code(&mut ws_other).await,
        Some(close::UNAUTHENTICATED),
        "a disabled user's socket is closed as signed out"
    );
    srv.stop().await;
}

/// Chat sends from many sockets at once are group-committed by the chat
/// writer: the agent still gets every change in `seq` order (and each
/// socket's lines in the order sent), every good line is acked, and a line
/// that fails (an id already used for another message, another account's
/// conversation) is answered with its own error and stored nowhere, without
/// failing the lines committed beside it.
#[tokio::test]
async fn concurrent_chat_sends_fan_out_in_seq_order_and_a_bad_line_fails_alone() {
    let srv = TestServer::start().await;
    let conv = acme_conversation(&srv);
    let other = srv
        .records::<Conversation>(&format!("account_id = '{}'", srv.other_account().id))
        .remove(0);
    let customer_token = token(&srv, "admin@acme.test").await;
    let customer_http = srv.client_as("admin@acme.test").await;
    let taken = post(&customer_http, &srv, conv.id, "an earlier line").await;
    let mut agent = connect(&srv, &token(&srv, "agent@portico.test").await).await;
    let mut sockets = Vec::new();
    for _ in 0..4 {
        sockets.push(connect(&srv, &customer_token).await);
    }

    // Interleaved, without waiting for answers: the server handles the
    // sockets concurrently, so lines queue behind each other's commits.
    let mut sent: Vec<Vec<Uuid>> = vec![Vec::new(); sockets.len()];
    let (reused, foreign) = (MessageId(taken), MessageId(Uuid::now_v7()));
    for i in 0..12 {
        for (k, ws) in sockets.iter_mut().enumerate() {
            let (conversation_id, message_id) = match (i, k) {
                (5, 1) => (conv.id, reused),
                (7, 2) => (other.id, foreign),
                _ => (conv.id, MessageId(Uuid::now_v7())),
            };
            if message_id != reused && message_id != foreign {
                sent[k].push(message_id.0);
            }
            send(
                ws,
                &ClientFrame::Send {
                    conversation_id,
                    message_id,
                    body: format!("line {i} from socket {k}"),
                    after_message_id: None,
                    force: false,
                },
            )
            .await;
        }
    }

    // Each socket: an ack for each good line, the error for its bad one.
    let mut errors = Vec::new();
    for (k, ws) in sockets.iter_mut().enumerate() {
        let mut acked = Vec::new();
        let expected_errors = usize::from(k == 1 || k == 2);
        let mut mine = 0;
        while acked.len() < sent[k].len() || mine < expected_errors {
            match next(ws).await {
                ServerFrame::Ack { message_id } => acked.push(message_id.0),
                ServerFrame::Error {
                    code, message_id, ..
                } => {
                    mine += 1;
                    errors.push((k, code, message_id));
                }
                _ => {}
            }
        }
        assert_eq!(
            acked, sent[k],
            "socket {k}'s lines are acked in the order sent"
        );
    }
    errors.sort_by_key(|(k, _, _)| *k);
    assert_eq!(
        errors,
        vec![
            (1, "conflict".to_owned(), Some(reused)),
            (2, "not_found".to_owned(), Some(foreign)),
        ],
        "each bad line is answered with its own error"
    );

    // The agent: every good line once, in each socket's order, seq only growing.
    let all: std::collections::HashSet<Uuid> = sent.iter().flatten().copied().collect();
    let mut got = Vec::new();
    let mut seqs = Vec::new();
    while got.len() < all.len() {
        let frame = next(&mut agent).await;
        if let ServerFrame::Change { change } = &frame {
            seqs.push(change.seq);
            assert_ne!(change.id, foreign.0, "a failed line is never fanned out");
        }
        got.extend(message_ids(&[frame], conv.id));
    }
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "changes reach the agent in seq order: {seqs:?}"
    );
    for (k, lines) in sent.iter().enumerate() {
        let order: Vec<Uuid> = got
            .iter()
            .copied()
            .filter(|id| lines.contains(id))
            .collect();
        assert_eq!(
            &order, lines,
            "socket {k}'s lines reach the agent in the order sent"
        );
    }
    assert_eq!(got.len(), all.len(), "no line arrives twice");
    let stored = srv.records::<Message>(&format!("conversation_id = '{}'", conv.id));
    let earlier = stored.iter().find(|m| m.id.0 == taken).unwrap();
    assert_eq!(
        earlier.body, "an earlier line",
        "the reused id kept its message"
    );
    assert!(
        srv.records::<Message>(&format!("id = '{}'", foreign.0))
            .is_empty(),
        "the line for another account's conversation was not stored"
    );
    assert!(
        all.iter().all(|id| stored.iter().any(|m| m.id.0 == *id)),
        "every acked line is stored"
    );
    srv.stop().await;
}

/// The `message` frames of `frames` (a chat message as it arrives, before
/// it is stored).
fn arriving(frames: &[ServerFrame]) -> Vec<&Message> {
    frames
        .iter()
        .filter_map(|f| match f {
            ServerFrame::Message { message } => Some(message.as_ref()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_chat_message_is_shown_as_it_arrives_and_withdrawn_if_refused() {
    let srv = TestServer::start().await;
    let conv = acme_conversation(&srv);
    let mut customer = connect(&srv, &token(&srv, "admin@acme.test").await).await;
    // Same account, not subscribed: sees the stored change only.
    let mut colleague = connect(&srv, &token(&srv, "member@acme.test").await).await;
    let mut agent = connect(&srv, &token(&srv, "agent@portico.test").await).await;
    let mut lead = connect(&srv, &token(&srv, "lead@portico.test").await).await;

    // Not subscribed yet: the message is stored and fanned out, but not
    // offered as it arrives (the hub has not checked this client may see
    // the conversation).
    let early = MessageId(Uuid::now_v7());
    send(
        &mut customer,
        &ClientFrame::Send {
            conversation_id: conv.id,
            message_id: early,
            body: "before subscribing".into(),
            after_message_id: None,
            force: false,
        },
    )
    .await;
    until_pong(&mut customer).await;
    let frames = until_pong(&mut agent).await;
    assert!(
        arriving(&frames).is_empty(),
        "an unsubscribed sender is not announced: {frames:?}"
    );
    assert_eq!(message_ids(&frames, conv.id), vec![early.0], "but stored");

    for ws in [&mut customer, &mut lead] {
        subscribe(ws, conv.id).await;
    }
    let question = MessageId(Uuid::now_v7());
    send(
        &mut customer,
        &ClientFrame::Send {
            conversation_id: conv.id,
            message_id: question,
            body: "Can I export to CSV?".into(),
            after_message_id: None,
            force: false,
        },
    )
    .await;
    let mine = until_pong(&mut customer).await;
    assert!(
        arriving(&mine).is_empty(),
        "the sender is not sent its own message back: {mine:?}"
    );
    // The agent sees every conversation: offered the message as it arrived,
    // then its stored change, in that order.
    let frames = until_pong(&mut agent).await;
    let first = frames
        .iter()
        .position(|f| matches!(f, ServerFrame::Message { message } if message.id == question));
    let stored_at = frames
        .iter()
        .position(|f| matches!(f, ServerFrame::Change { change } if change.id == question.0));
    assert!(
        matches!((first, stored_at), (Some(a), Some(b)) if a < b),
        "the agent gets the arriving message before its change: {frames:?}"
    );
    let stored: Message = srv
        .records::<Message>(&format!("id = '{question}'"))
        .remove(0);
    let shown = arriving(&frames)[0];
    assert_eq!(
        (
            shown.conversation_id,
            shown.account_id,
            shown.kind,
            shown.author_id,
            &shown.author_name,
            &shown.body
        ),
        (
            stored.conversation_id,
            stored.account_id,
            stored.kind,
            stored.author_id,
            &stored.author_name,
            &stored.body
        ),
        "what was shown as it arrived is what was stored"
    );
    let frames = until_pong(&mut colleague).await;
    assert!(
        arriving(&frames).is_empty() && message_ids(&frames, conv.id) == vec![early.0, question.0],
        "a customer not in the conversation gets the stored change only: {frames:?}"
    );

    // The lead answers; the customer is offered the reply as it arrives,
    // with the fields a customer may see of the stored row and no others.
    let answer = MessageId(Uuid::now_v7());
    send(
        &mut lead,
        &ClientFrame::Send {
            conversation_id: conv.id,
            message_id: answer,
            body: "Yes: Reports, then Export.".into(),
            after_message_id: Some(question),
            force: false,
        },
    )
    .await;
    until_pong(&mut lead).await;
    let raw = customer_frames_raw(&mut customer).await;
    let shown = raw
        .iter()
        .find(|f| f["type"] == "message" && f["message"]["id"] == answer.to_string())
        .unwrap_or_else(|| panic!("the customer is offered the reply: {raw:?}"));
    let change = raw
        .iter()
        .find(|f| f["type"] == "change" && f["change"]["id"] == answer.to_string())
        .unwrap_or_else(|| panic!("and then its change: {raw:?}"));
    let keys = |v: &serde_json::Value| {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(
        keys(&shown["message"]),
        keys(&change["change"]["row"]),
        "a customer is shown the same fields of the arriving message as of the stored one"
    );
    assert!(
        shown["message"].get("mentions").is_none(),
        "staff-only fields never reach a customer: {shown}"
    );

    // The agent answers the question too, not having seen the lead's reply:
    // refused (the traffic cop), so everyone offered it is told to take it
    // back, and nothing is stored.
    subscribe(&mut agent, conv.id).await;
    let late = MessageId(Uuid::now_v7());
    send(
        &mut agent,
        &ClientFrame::Send {
            conversation_id: conv.id,
            message_id: late,
            body: "You can export from Reports.".into(),
            after_message_id: Some(question),
            force: false,
        },
    )
    .await;
    let frames = until_pong(&mut agent).await;
    assert!(
        frames.iter().any(|f| matches!(f, ServerFrame::Error { code, message_id: Some(m), .. } if code == "newer_reply" && *m == late)),
        "the agent is warned: {frames:?}"
    );
    for ws in [&mut customer, &mut lead] {
        let frames = until_pong(ws).await;
        let shown = frames
            .iter()
            .position(|f| matches!(f, ServerFrame::Message { message } if message.id == late));
        let withdrawn = frames.iter().position(|f| matches!(f, ServerFrame::Withdrawn { message_id, conversation_id } if *message_id == late && *conversation_id == conv.id));
        assert!(
            matches!((shown, withdrawn), (Some(a), Some(b)) if a < b),
            "a refused message is withdrawn after it was shown: {frames:?}"
        );
    }
    assert!(
        srv.records::<Message>(&format!("id = '{late}'")).is_empty(),
        "the refused message was not stored"
    );
    srv.stop().await;
}

/// Frames until a pong, as JSON values (to see exactly which fields came).
async fn customer_frames_raw(ws: &mut Socket) -> Vec<serde_json::Value> {
    send(ws, &ClientFrame::Ping).await;
    let mut out = Vec::new();
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a frame within 10 s")
            .expect("socket open")
            .unwrap();
        if let Ws::Text(t) = msg {
            let v: serde_json::Value = serde_json::from_str(&t).unwrap();
            if v["type"] == "pong" {
                return out;
            }
            out.push(v);
        }
    }
}
