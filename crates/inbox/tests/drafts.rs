//! Reviewing AI drafts from the desktop engine against a real portal-core
//! (its drafter writes a draft once a customer pauses in a conversation): drafts
//! arrive by sync with what they cite, an approval (edited) made offline is
//! shown at once and reaches the customer once when the server is back,
//! only the actions the reviewer picked run, a rejection keeps its reason,
//! and a draft someone else reviewed first is refused visibly. Also the
//! SLA-due list fed by the server's SLA clocks, and saved replies: kept on
//! the server (team or personal, staff only), synced, and filled in for a
//! conversation with every placeholder it cannot fill reported.

use std::sync::Arc;
use std::time::Duration;

use portico_inbox::drafts::{DraftView, QueuedReview};
use portico_inbox::engine::{EngineConfig, StaticToken};
use portico_inbox::query::{InboxFilters, InboxQuery, View};
use portico_inbox::{Engine, EngineError};
use portico_model::sync::MutationOp;
use portico_model::{
    ActionProposal, ActionStatus, Conversation, ConversationId, Draft, DraftState, Kind, Message,
    User,
};
use portico_portal::seed::{self, DEMO_PASSWORD, SeedSize};
use portico_portal::{AppState, ManualClock, store};
use serde_json::{Value, json};

struct Server {
    base: String,
    state: AppState,
    _dir: tempfile::TempDir,
}

fn anchor() -> jiff::Timestamp {
    "2026-11-15T12:00:00Z".parse().unwrap()
}

async fn server() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let state = portico_portal::open_state(
        &dir.path().join("portal.db"),
        Arc::new(ManualClock::new(anchor())),
    )
    .unwrap();
    seed::seed(&state.store, SeedSize::TINY, anchor()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let st = state.clone();
    tokio::spawn(async move {
        let _ = portico_portal::serve(listener, st, std::future::pending()).await;
    });
    Server {
        base,
        state,
        _dir: dir,
    }
}

impl Server {
    fn user(&self, email: &str) -> User {
        self.state
            .store
            .read(|c| store::query::<User>(c, "SELECT data FROM users WHERE email = ?1", [email]))
            .unwrap()
            .pop()
            .unwrap_or_else(|| panic!("the seed has {email}"))
    }

    fn engine(&self, email: &str, dir: &std::path::Path) -> Engine {
        let user = self.user(email);
        let token =
            portico_portal::auth::start_session(&self.state.store, user.id, anchor()).unwrap();
        Engine::open_with(
            dir.join("inbox.db"),
            EngineConfig::new(self.base.clone(), StaticToken(token)),
        )
        .unwrap()
    }

    fn draft(&self, id: uuid::Uuid) -> Draft {
        self.state
            .store
            .read(|c| store::require::<Draft>(c, id))
            .unwrap()
    }

    fn drafts_of(&self, conversation: ConversationId) -> Vec<Draft> {
        self.state
            .store
            .read(|c| {
                store::query::<Draft>(
                    c,
                    "SELECT data FROM drafts WHERE data ->> '$.conversation_id' = ?1",
                    [conversation.to_string()],
                )
            })
            .unwrap()
    }

    /// A signed-in web session (cookie) for `email`.
    async fn web(&self, email: &str) -> Web {
        let r = reqwest::Client::new()
            .post(format!("{}/v1/auth/login", self.base))
            .json(&json!({"email": email, "password": DEMO_PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{email} signs in");
        // As the web app does: the session cookie, and its CSRF token sent
        // back in a header on every request.
        let cookies: Vec<String> = r
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|c| c.to_str().unwrap().split(';').next().unwrap().to_owned())
            .collect();
        let body: Value = r.json().await.unwrap();
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("cookie", cookies.join("; ").parse().unwrap());
        headers.insert(
            "x-csrf-token",
            body["csrf_token"].as_str().unwrap().parse().unwrap(),
        );
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .build()
            .unwrap();
        Web {
            http,
            base: self.base.clone(),
        }
    }
}

struct Web {
    http: reqwest::Client,
    base: String,
}

impl Web {
    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }
    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut r = self.http.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            r = r.json(&b);
        }
        let r = r.send().await.unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }
    async fn get(&self, path: &str) -> Value {
        self.http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

async fn until<F: FnMut() -> Fut, Fut: std::future::Future<Output = bool>>(what: &str, mut f: F) {
    for _ in 0..300 {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

/// A customer asks in a new conversation; waits for the server's draft.
async fn ask(srv: &Server, customer: &Web, subject: &str, body: &str) -> (ConversationId, Draft) {
    let (status, conv) = customer
        .post(
            "/v1/conversations",
            json!({"subject": subject, "body": body}),
        )
        .await;
    assert_eq!(status, 201, "{conv}");
    let id: ConversationId = serde_json::from_value(conv["id"].clone()).unwrap();
    until("the server drafts a reply", || async {
        !srv.drafts_of(id).is_empty()
    })
    .await;
    (id, srv.drafts_of(id).pop().unwrap())
}

async fn synced_drafts(engine: &Engine, want: &[&Draft]) -> Vec<DraftView> {
    for _ in 0..300 {
        engine.sync_now().await.unwrap();
        let out = engine.drafts_to_review(200).unwrap();
        if want.iter().all(|d| out.iter().any(|v| v.draft.id == d.id)) {
            return out;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the drafts never reached the desktop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drafts_are_reviewed_from_the_desktop_offline_and_online() {
    let srv = server().await;
    let dir = tempfile::tempdir().unwrap();
    let engine = srv.engine("agent@portico.test", dir.path());
    engine.sync_now().await.unwrap();
    let customer = srv.web("admin@acme.test").await;

    let (conv_a, a) = ask(
        &srv,
        &customer,
        "Single sign-on",
        "How do I set up SSO with Okta for our team?",
    )
    .await;
    let (conv_b, b) = ask(
        &srv,
        &customer,
        "API limit",
        "We are running out of API calls this month, what can we do?",
    )
    .await;
    let views = synced_drafts(&engine, &[&a, &b]).await;
    let va = views.iter().find(|v| v.draft.id == a.id).unwrap();
    assert_eq!(va.subject.as_deref(), Some("Single sign-on"));
    assert_eq!(va.account_name.as_deref(), Some("Acme Corp"));
    assert_eq!(
        va.draft.body, a.body,
        "the draft's text as the server wrote it"
    );
    // What it cites is listed, and the cited articles open offline.
    assert_eq!(va.citations.len(), a.sources.len());
    let articles: Vec<_> = views
        .iter()
        .flat_map(|v| &v.citations)
        .filter(|c| c.kind == Kind::Article)
        .collect();
    assert!(
        !articles.is_empty(),
        "a help-centre question cites an article: {views:#?}"
    );
    for c in &articles {
        assert!(c.available, "cited article {} is mirrored", c.title);
        let art = engine.record(Kind::Article, c.id).unwrap().unwrap();
        assert_eq!(art["title"], c.title.as_str());
    }

    // The server's SLA clocks (a new conversation runs one) fill the
    // SLA-due list, soonest first.
    let agent = srv.user("agent@portico.test");
    let server_conv: Conversation = srv
        .state
        .store
        .read(|c| store::require::<Conversation>(c, conv_a.0))
        .unwrap();
    let clock = server_conv
        .sla
        .clone()
        .expect("a new conversation runs an SLA clock");
    let due = [
        clock.first_response_due,
        clock.next_response_due,
        clock.resolution_due,
    ]
    .into_iter()
    .flatten()
    .min()
    .unwrap();
    let sla_list = |before: jiff::Timestamp| {
        let q = InboxQuery {
            filters: InboxFilters {
                sla_due_before: Some(before),
                ..InboxFilters::default()
            },
            limit: 500,
            ..InboxQuery::new(agent.id, View::All)
        };
        engine.inbox(&q).unwrap()
    };
    let rows = sla_list(due + jiff::SignedDuration::from_secs(1));
    let row = rows
        .iter()
        .find(|r| r.conversation.id == conv_a)
        .expect("due before the bound");
    assert_eq!(row.sla_due.as_ref().unwrap().at, due);
    assert!(
        rows.windows(2)
            .all(|w| w[0].sla_due.as_ref().unwrap().at <= w[1].sla_due.as_ref().unwrap().at),
        "in due order"
    );
    assert!(
        sla_list(due).iter().all(|r| r.conversation.id != conv_a),
        "not yet due at its due instant's bound"
    );

    // Hostile or mistaken reviews are refused before anything is queued.
    let err = engine.reject_draft(a.id, "  ").unwrap_err();
    assert_eq!(err.code(), "invalid", "a rejection needs a reason");
    let err = engine
        .approve_draft(a.id, None, vec![a.actions.len() as u32])
        .unwrap_err();
    assert!(err.to_string().contains("no action"), "{err}");
    let err = engine
        .approve_draft(portico_model::DraftId(uuid::Uuid::now_v7()), None, vec![])
        .unwrap_err();
    assert!(err.to_string().contains("not in the local store"), "{err}");
    let err = engine
        .approve_draft(a.id, Some(String::new()), vec![])
        .unwrap_err();
    assert_eq!(err.code(), "invalid", "an empty reply is not sent");
    assert_eq!(engine.pending_count().unwrap(), 0);

    // Offline: an edited approval shows at once and waits in the outbox.
    let base = srv.base.clone();
    engine.set_base_url("http://127.0.0.1:9");
    let edited = format!("{}\n\nI've also sent you our SSO checklist.", a.body);
    let queued = engine
        .approve_draft(a.id, Some(edited.clone()), vec![])
        .unwrap();
    assert!(matches!(
        engine.sync_now().await,
        Err(EngineError::Offline(_))
    ));
    assert_eq!(engine.pending_count().unwrap(), 1);
    assert!(
        engine
            .drafts_to_review(200)
            .unwrap()
            .iter()
            .all(|v| v.draft.id != a.id),
        "an approved draft leaves the list at once"
    );
    let open = engine.open_conversation(conv_a).unwrap().unwrap();
    assert_eq!(open.drafts.len(), 1);
    assert_eq!(open.drafts[0].queued, Some(QueuedReview::Approved));
    let sending = open
        .messages
        .iter()
        .find(|m| m.data["id"] == queued.message_id.unwrap().to_string())
        .expect("the reply shows in the thread before the server has it");
    assert!(sending.pending);
    assert_eq!(sending.data["body"], edited.as_str());
    assert_eq!(sending.data["kind"], "agent");
    assert!(
        engine.approve_draft(a.id, None, vec![]).is_err(),
        "a draft is reviewed once"
    );

    // Back online: sent once, as edited, by the reviewer, no action run.
    engine.set_base_url(base);
    engine.sync_now().await.unwrap();
    engine.sync_now().await.unwrap();
    assert_eq!(engine.pending_count().unwrap(), 0);
    assert!(engine.rejections().unwrap().is_empty());
    let sa = srv.draft(a.id.0);
    assert_eq!(sa.state, DraftState::Approved);
    assert_eq!(sa.reviewer_id, Some(agent.id));
    assert_eq!(sa.sent_message_id, queued.message_id);
    assert!(
        sa.actions
            .iter()
            .all(|x| x.status == ActionStatus::Declined),
        "nothing the reviewer did not pick runs"
    );
    let msgs = customer
        .get(&format!("/v1/conversations/{conv_a}/messages"))
        .await;
    let replies: Vec<&Value> = msgs["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["kind"] == "agent")
        .collect();
    assert_eq!(replies.len(), 1, "the customer gets the reply once");
    assert_eq!(replies[0]["body"], edited.as_str());
    let open = engine.open_conversation(conv_a).unwrap().unwrap();
    assert!(open.drafts.is_empty(), "nothing left to review there");
    let m: Message =
        serde_json::from_value(Value::Object(open.messages.last().unwrap().data.clone())).unwrap();
    assert_eq!(m.body, edited);

    // The usage question proposes an action: only the one picked runs.
    let vb = engine
        .drafts_to_review(200)
        .unwrap()
        .into_iter()
        .find(|v| v.draft.id == b.id)
        .unwrap();
    let pick = vb
        .draft
        .actions
        .iter()
        .position(|x| matches!(x.action, ActionProposal::OpenRequest { .. }))
        .unwrap_or_else(|| panic!("usage at 92 % proposes a request: {:?}", vb.draft.actions));
    engine.approve_draft(b.id, None, vec![pick as u32]).unwrap();
    engine.sync_now().await.unwrap();
    let sb = srv.draft(b.id.0);
    assert_eq!(sb.state, DraftState::Approved, "{:?}", engine.rejections());
    for (i, x) in sb.actions.iter().enumerate() {
        let want = if i == pick {
            ActionStatus::Done
        } else {
            ActionStatus::Declined
        };
        assert_eq!(x.status, want, "action {i}: {x:?}");
    }
    let _ = conv_b;

    // A rejection keeps the reviewer's reason; nothing is sent.
    let (conv_c, c) = ask(
        &srv,
        &customer,
        "Invoice",
        "Where can I download my invoice?",
    )
    .await;
    synced_drafts(&engine, &[&c]).await;
    engine
        .reject_draft(c.id, "Cites the old billing page")
        .unwrap();
    engine.sync_now().await.unwrap();
    let sc = srv.draft(c.id.0);
    assert_eq!(sc.state, DraftState::Rejected);
    let audit = customer
        .http
        .get(format!("{}/v1/conversations/{conv_c}/messages", srv.base))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert!(
        audit["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["kind"] != "agent"),
        "a rejected draft is never sent"
    );
    let reason: String = srv
        .state
        .store
        .read(|c| {
            c.query_row(
                "SELECT data ->> '$.detail.reason' FROM audit_events WHERE data ->> '$.action' = 'draft.rejected'",
                [],
                |r| r.get(0),
            )
            .map_err(Into::into)
        })
        .unwrap();
    assert_eq!(reason, "Cites the old billing page");

    // Someone else reviews first: the late approval is refused, visibly.
    let (_conv_d, d) = ask(&srv, &customer, "Seats", "How do I add another seat?").await;
    synced_drafts(&engine, &[&d]).await;
    let lead = srv.web("lead@portico.test").await;
    let (status, body) = lead
        .post(
            &format!("/v1/drafts/{}/reject", d.id),
            json!({"reason": "handled by phone"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    engine.approve_draft(d.id, None, vec![]).unwrap();
    engine.sync_now().await.unwrap();
    let rejections = engine.rejections().unwrap();
    assert_eq!(rejections.len(), 1, "{rejections:?}");
    assert!(matches!(rejections[0].op, MutationOp::ApproveDraft { .. }));
    assert_eq!(rejections[0].code, "version_conflict");
    assert_eq!(srv.draft(d.id.0).state, DraftState::Rejected);
    assert!(
        engine
            .drafts_to_review(200)
            .unwrap()
            .iter()
            .all(|v| v.draft.id != d.id),
        "the pulled rejection takes it off the list"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saved_replies_are_kept_on_the_server_synced_by_owner_and_filled_in() {
    use reqwest::Method;
    let srv = server().await;
    let dir = tempfile::tempdir().unwrap();
    let engine = srv.engine("agent@portico.test", dir.path());
    let agent = srv.web("agent@portico.test").await;
    let lead = srv.web("lead@portico.test").await;
    let customer = srv.web("admin@acme.test").await;

    // Who may write what.
    let (status, body) = agent
        .post(
            "/v1/saved-replies",
            json!({"title": "Team thing", "body": "x"}),
        )
        .await;
    assert_eq!(
        status, 403,
        "an agent cannot change the team's replies: {body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("personal")
    );
    let (status, mine) = agent
        .post(
            "/v1/saved-replies",
            json!({"title": "My sign-off", "body": "Cheers, {{agent.first_name}} ({{customer.phone}})", "personal": true}),
        )
        .await;
    assert_eq!(status, 201, "{mine}");
    let (status, team) = lead
        .post(
            "/v1/saved-replies",
            json!({"title": "SSO how-to", "body": "Hi {{customer.first_name}}, SSO for {{account.name}} is under Settings."}),
        )
        .await;
    assert_eq!(status, 201, "{team}");
    let (status, leads_own) = lead
        .post(
            "/v1/saved-replies",
            json!({"title": "Lead private", "body": "only mine", "personal": true}),
        )
        .await;
    assert_eq!(status, 201, "{leads_own}");
    let (status, _) = agent
        .send(
            Method::GET,
            &format!("/v1/saved-replies/{}", leads_own["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(status, 404, "someone else's personal reply looks missing");
    let (status, _) = agent
        .send(
            Method::PATCH,
            &format!("/v1/saved-replies/{}", team["id"].as_str().unwrap()),
            Some(json!({"body": "changed"})),
        )
        .await;
    assert_eq!(status, 403, "an agent cannot edit a team reply");
    let (status, _) = agent
        .send(
            Method::DELETE,
            &format!("/v1/saved-replies/{}", leads_own["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = customer.send(Method::GET, "/v1/saved-replies", None).await;
    assert_eq!(status, 403, "customers have no saved replies");
    let (status, _) = lead
        .post(
            "/v1/saved-replies",
            json!({"title": "x".repeat(121), "body": "y"}),
        )
        .await;
    assert_eq!(status, 422, "titles are bounded");
    let (status, _) = lead
        .post(
            "/v1/saved-replies",
            json!({"title": "t", "body": "y", "colour": "red"}),
        )
        .await;
    assert_eq!(status, 422, "unknown fields are refused");
    let (status, _) = lead
        .post("/v1/saved-replies", json!({"title": "t", "body": "  "}))
        .await;
    assert_eq!(status, 422, "an empty reply is refused");
    let listed = agent.get("/v1/saved-replies").await;
    let titles: Vec<&str> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["title"].as_str().unwrap())
        .collect();
    assert!(titles.contains(&"My sign-off") && titles.contains(&"SSO how-to"));
    assert!(!titles.contains(&"Lead private"), "{titles:?}");

    // The desktop gets the team's and the agent's own, never the lead's own.
    engine.sync_now().await.unwrap();
    let replies = engine.saved_replies().unwrap();
    let titles: Vec<&str> = replies.iter().map(|r| r.title.as_str()).collect();
    assert!(
        titles.contains(&"Looking into it"),
        "the seeded team replies: {titles:?}"
    );
    assert!(titles.contains(&"My sign-off") && titles.contains(&"SSO how-to"));
    assert!(!titles.contains(&"Lead private"), "{titles:?}");
    let sorted = {
        let mut t = titles.clone();
        t.sort_by_key(|s| s.to_lowercase());
        t
    };
    assert_eq!(titles, sorted, "by title");

    // Filled in from the conversation; what it cannot fill is reported.
    let (status, conv) = customer
        .post(
            "/v1/conversations",
            json!({"subject": "SSO", "body": "How do I set up SSO?"}),
        )
        .await;
    assert_eq!(status, 201);
    let conv: ConversationId = serde_json::from_value(conv["id"].clone()).unwrap();
    engine.sync_now().await.unwrap();
    let me = srv.user("agent@portico.test");
    let requester = srv.user("admin@acme.test");
    let id = |v: &Value| portico_model::SavedReplyId(v["id"].as_str().unwrap().parse().unwrap());
    let filled = engine.fill_saved_reply(id(&team), conv, me.id).unwrap();
    let first = requester.name.split_whitespace().next().unwrap();
    assert_eq!(
        filled.text,
        format!("Hi {first}, SSO for Acme Corp is under Settings.")
    );
    assert!(filled.unfilled.is_empty());
    let filled = engine.fill_saved_reply(id(&mine), conv, me.id).unwrap();
    let agent_first = me.name.split_whitespace().next().unwrap();
    assert_eq!(
        filled.text,
        format!("Cheers, {agent_first} ({{{{customer.phone}}}})")
    );
    assert_eq!(
        filled.unfilled,
        vec!["customer.phone"],
        "never left silently"
    );

    // A deletion reaches the desktop.
    let (status, _) = agent
        .send(
            Method::DELETE,
            &format!("/v1/saved-replies/{}", mine["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(status, 204);
    engine.sync_now().await.unwrap();
    assert!(
        engine
            .saved_replies()
            .unwrap()
            .iter()
            .all(|r| r.title != "My sign-off")
    );
}
