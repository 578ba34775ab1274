//! The customer portal's server side over a real portal-core on loopback:
//! dashboard, onboarding, request comments, attachments and votes,
//! community Q&A, the AI hand-off and the reading language, each with its
//! hostile cases (wrong role, another account's ids, oversized and
//! mistyped files, missing CSRF header, replayed votes).

mod common;

use common::*;
use portico_model::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn body(resp: reqwest::Response) -> (StatusCode, Value) {
    let status = resp.status();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn expect_error(resp: reqwest::Response, status: u16, code: &str) -> Value {
    let (s, b) = body(resp).await;
    assert_eq!(s.as_u16(), status, "{b}");
    assert_eq!(b["error"]["code"], code, "{b}");
    b
}

fn staff_patch_stage(srv: &TestServer, account: AccountId, stage: LifecycleStage) {
    srv.state
        .store
        .write(portico_portal::store::Actor::SYSTEM, anchor(), |w| {
            let mut a: Account = portico_portal::store::require(w, account.0)?;
            a.lifecycle_stage = stage;
            w.update(&mut a)
        })
        .unwrap();
}

#[tokio::test]
async fn dashboard_shows_the_account_and_hides_billing_from_members() {
    let srv = TestServer::start().await;
    let acme = srv.acme();
    staff_patch_stage(&srv, acme.id, LifecycleStage::AtRisk);
    let admin = srv.client_as("admin@acme.test").await;
    let member = srv.client_as("member@acme.test").await;
    let url = srv.url(&format!("/v1/accounts/{}/dashboard", acme.id));

    let (s, d) = body(admin.get(&url).send().await.unwrap()).await;
    assert_eq!(s, 200, "{d}");
    assert_eq!(d["plan"]["code"], "team");
    assert_eq!(d["plan"]["interval"], "month");
    assert!(d["plan"]["seat_price"].as_i64().unwrap() > 0);
    assert!(d["renewal"]["date"].is_string());
    assert_eq!(d["seats"]["seats"], 10);
    assert_eq!(d["seats"]["assigned"], 8);
    let usage = d["usage"].as_array().unwrap();
    let api = usage.iter().find(|m| m["meter"] == "api_calls").unwrap();
    assert_eq!(
        api["percent"], 92,
        "Acme is seeded at 92 % of its API calls"
    );
    let daily = api["daily"].as_array().unwrap();
    assert_eq!(daily.len(), 30, "30 days of history for the chart");
    assert!(
        daily.iter().any(|d| d["quantity"].as_u64().unwrap() > 0),
        "the seeded history shows"
    );
    assert!(d["onboarding"]["total"].as_u64().unwrap() > 0);
    assert!(d["requests"]["open"].is_u64());
    assert!(d["requests"]["latest"].as_array().unwrap().len() <= 5);
    for note in d["release_notes"].as_array().unwrap() {
        assert!(note["published"].as_bool().unwrap(), "only published notes");
        let plans = note["plans"].as_array().unwrap();
        assert!(plans.is_empty() || plans.contains(&json!("team")), "{note}");
    }
    assert_eq!(
        d["lifecycle_stage"], "active",
        "customers never learn they are seen as at risk"
    );
    assert!(d["billing"]["period_amount"].as_i64().unwrap() > 0);
    assert!(d["billing"]["latest_invoice"]["number"].is_string());
    for hidden in [
        "health_score",
        "mrr",
        "notes",
        "key_account",
        "lifecycle_stage",
    ] {
        assert!(d["account"].get(hidden).is_none(), "{hidden} is staff-only");
    }

    let (s, m) = body(member.get(&url).send().await.unwrap()).await;
    assert_eq!(s, 200);
    assert!(
        m.get("billing").is_none(),
        "members get no billing amounts: {m}"
    );
    assert!(
        !m.to_string().contains("\"amount_due\""),
        "no invoice reaches a member"
    );
    assert_eq!(
        m["plan"]["code"], "team",
        "the plan itself is shown to members"
    );

    let staff = srv.client_as("csm@portico.test").await;
    let (_, s_view) = body(staff.get(&url).send().await.unwrap()).await;
    assert_eq!(
        s_view["lifecycle_stage"], "at_risk",
        "staff see the real stage"
    );

    // Another account's dashboard does not exist for Acme's admin.
    let other = srv.other_account();
    expect_error(
        admin
            .get(srv.url(&format!("/v1/accounts/{}/dashboard", other.id)))
            .send()
            .await
            .unwrap(),
        404,
        "not_found",
    )
    .await;
    srv.stop().await;
}

#[tokio::test]
async fn onboarding_steps_complete_from_events_and_by_hand() {
    let srv = TestServer::start().await;
    let acme = srv.acme();
    staff_patch_stage(&srv, acme.id, LifecycleStage::Onboarding);
    let admin = srv.client_as("admin@acme.test").await;
    let member = srv.client_as("member@acme.test").await;
    let url = srv.url(&format!("/v1/accounts/{}/onboarding", acme.id));
    let (s, o) = body(admin.get(&url).send().await.unwrap()).await;
    assert_eq!(s, 200, "{o}");
    assert_eq!(o["name"], "Team: get your team productive");
    let step = |o: &Value, key: &str| {
        o["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["key"] == key)
            .cloned()
            .unwrap_or_else(|| panic!("step {key} in {o}"))
    };
    assert_eq!(
        step(&o, "invite_team")["done"],
        true,
        "seeded: the team was invited"
    );
    assert_eq!(step(&o, "first_request")["done"], false);

    // A real event: the first request completes its step.
    let resp = member
        .post(srv.url("/v1/requests"))
        .json(&json!({ "kind": "support", "title": "How do I export?" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let (_, o) = body(admin.get(&url).send().await.unwrap()).await;
    let s = step(&o, "first_request");
    assert_eq!(s["done"], true, "{s}");
    assert_eq!(s["how"], "event");
    assert!(s["at"].is_string());

    // An API call recorded for the account: its integration is live.
    let usage = srv.client_as("admin@portico.test").await;
    let resp = usage
        .post(srv.url(&format!("/v1/accounts/{}/usage", acme.id)))
        .json(&json!({ "meter": "api_calls", "quantity": 10 }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let (_, o) = body(admin.get(&url).send().await.unwrap()).await;
    assert_eq!(step(&o, "connect_integration")["how"], "event");

    // By hand: only administrators; a member is refused and nothing moves.
    let step_url = |k: &str| srv.url(&format!("/v1/accounts/{}/onboarding/steps/{k}", acme.id));
    let before = srv.fingerprint();
    expect_error(
        member
            .post(step_url("build_workflow"))
            .json(&json!({ "done": true }))
            .send()
            .await
            .unwrap(),
        403,
        "forbidden",
    )
    .await;
    assert_eq!(srv.fingerprint(), before);
    let (s, o) = body(
        admin
            .post(step_url("build_workflow"))
            .json(&json!({ "done": true }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 200, "{o}");
    assert_eq!(step(&o, "build_workflow")["how"], "manual");
    assert_eq!(o["done"], 4);
    assert_eq!(o["total"], 4);
    let (_, o) = body(
        admin
            .post(step_url("build_workflow"))
            .json(&json!({ "done": false }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        step(&o, "build_workflow")["done"],
        false,
        "a step can be reopened"
    );
    expect_error(
        admin
            .post(step_url("no_such_step"))
            .json(&json!({ "done": true }))
            .send()
            .await
            .unwrap(),
        404,
        "not_found",
    )
    .await;
    // The progress is a record in the change feed: the CSM's desktop sees it.
    let progress: Vec<OnboardingProgress> = srv.records(&format!("account_id = '{}'", acme.id));
    assert!(
        progress.iter().any(|p| p
            .steps
            .iter()
            .any(|s| s.key == "first_request" && s.how == CompletedBy::Event)),
        "{progress:?}"
    );
    let other = srv.other_account();
    expect_error(
        admin
            .get(srv.url(&format!("/v1/accounts/{}/onboarding", other.id)))
            .send()
            .await
            .unwrap(),
        404,
        "not_found",
    )
    .await;
    expect_error(
        admin
            .post(srv.url(&format!(
                "/v1/accounts/{}/onboarding/steps/invite_team",
                other.id
            )))
            .json(&json!({ "done": true }))
            .send()
            .await
            .unwrap(),
        404,
        "not_found",
    )
    .await;
    srv.stop().await;
}

#[tokio::test]
async fn sso_set_up_by_an_admin_completes_its_step_on_plans_that_have_it() {
    let srv = TestServer::start().await;
    let acme = srv.acme();
    let admin = srv.client_as("admin@acme.test").await;
    let sso = json!({ "sso": { "issuer": "https://idp.acme.test", "client_id": "portico" } });
    let url = srv.url(&format!("/v1/accounts/{}", acme.id));
    let b = expect_error(
        admin.patch(&url).json(&sso).send().await.unwrap(),
        422,
        "validation_failed",
    )
    .await;
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("single sign-on"),
        "{b}"
    );
    // Upgrade Acme to Business by hand in the store, then SSO is allowed.
    let business: Vec<Plan> = srv.records("data ->> '$.code' = 'business'");
    srv.state
        .store
        .write(portico_portal::store::Actor::SYSTEM, anchor(), |w| {
            let mut s: Subscription = portico_portal::store::query(
                w,
                "SELECT data FROM subscriptions WHERE account_id = ?1",
                [acme.id.to_string()],
            )?
            .remove(0);
            s.plan_id = business[0].id;
            w.update(&mut s)
        })
        .unwrap();
    let member = srv.client_as("member@acme.test").await;
    expect_error(
        member.patch(&url).json(&sso).send().await.unwrap(),
        403,
        "forbidden",
    )
    .await;
    expect_error(
        admin
            .patch(&url)
            .json(&json!({ "sso": { "issuer": "http://plain.test", "client_id": "x" } }))
            .send()
            .await
            .unwrap(),
        422,
        "validation_failed",
    )
    .await;
    let (s, a) = body(admin.patch(&url).json(&sso).send().await.unwrap()).await;
    assert_eq!(s, 200, "{a}");
    assert_eq!(a["sso"]["issuer"], "https://idp.acme.test");
    let (_, m) = body(member.get(&url).send().await.unwrap()).await;
    assert!(
        m.get("sso").is_none(),
        "SSO settings are for administrators"
    );
    let progress: Vec<OnboardingProgress> = srv.records(&format!("account_id = '{}'", acme.id));
    assert!(
        progress.iter().any(|p| p
            .steps
            .iter()
            .any(|s| s.key == "set_up_sso" && s.how == CompletedBy::Event)),
        "SSO configured completes its step: {progress:?}"
    );
    srv.stop().await;
}

#[tokio::test]
async fn request_comments_attachments_and_votes() {
    let srv = TestServer::start().await;
    let admin = srv.client_as("admin@acme.test").await;
    let member = srv.client_as("member@acme.test").await;
    let agent = srv.client_as("agent@portico.test").await;
    let (s, req) = body(
        member
            .post(srv.url("/v1/requests"))
            .json(&json!({ "kind": "feature", "title": "Dark mode", "body": "<script>alert(1)</script>" }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 201);
    let id = req["id"].as_str().unwrap().to_owned();
    let r = |p: &str| srv.url(&format!("/v1/requests/{id}{p}"));

    // Comments: the customer writes, staff reply and leave a note.
    let (s, c) = body(
        member
            .post(r("/comments"))
            .json(&json!({ "body": "Any news?" }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 201, "{c}");
    assert_eq!(c["kind"], "customer");
    let resp = agent
        .post(r("/comments"))
        .json(&json!({ "body": "On the roadmap." }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let resp = agent
        .post(r("/comments"))
        .json(&json!({ "body": "INTERNAL: big account", "internal": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    expect_error(
        member
            .post(r("/comments"))
            .json(&json!({ "body": "sneaky", "internal": true }))
            .send()
            .await
            .unwrap(),
        403,
        "forbidden",
    )
    .await;
    let (_, thread) = body(admin.get(r("/comments")).send().await.unwrap()).await;
    let mut bodies: Vec<&str> = thread["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["body"].as_str().unwrap())
        .collect();
    // (The test clock stands still: messages of one instant order by their random bits.)
    bodies.sort();
    assert_eq!(
        bodies,
        ["Any news?", "On the roadmap."],
        "no internal note for customers"
    );
    let (_, staff_thread) = body(agent.get(r("/comments")).send().await.unwrap()).await;
    assert_eq!(staff_thread["items"].as_array().unwrap().len(), 3);
    let (_, stored) = body(member.get(r("")).send().await.unwrap()).await;
    assert!(
        stored["conversation_id"].is_string(),
        "the thread is linked"
    );

    // Attachments.
    let png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR".to_vec();
    let upload = |client: &reqwest::Client, name: &str, ct: &str, bytes: Vec<u8>| {
        client
            .post(r("/attachments"))
            .query(&[("name", name)])
            .header("content-type", ct)
            .body(bytes)
    };
    let (s, att) = body(
        upload(&member, "screen.png", "image/png", png.clone())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 201, "{att}");
    let att_id = att["id"].as_str().unwrap().to_owned();
    let resp = admin
        .get(r(&format!("/attachments/{att_id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "image/png");
    assert!(
        resp.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );
    assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
    assert_eq!(resp.bytes().await.unwrap().to_vec(), png);

    // (Counted, not fingerprinted: the drafter may be drafting a reply to
    // the comment above.)
    let stored_files = || {
        srv.state
            .store
            .read(|c| {
                Ok(
                    c.query_row("SELECT count(*) FROM request_attachments", [], |r| {
                        r.get::<_, i64>(0)
                    })?,
                )
            })
            .unwrap()
    };
    let before = (
        stored_files(),
        srv.records::<Request>(&format!("id = '{id}'"))[0].version,
    );
    let big = vec![b'a'; 10 * 1024 * 1024 + 1];
    expect_error(
        upload(&member, "big.txt", "text/plain", big)
            .send()
            .await
            .unwrap(),
        413,
        "attachment_too_large",
    )
    .await;
    expect_error(
        upload(&member, "page.html", "text/html", b"<h1>x</h1>".to_vec())
            .send()
            .await
            .unwrap(),
        415,
        "attachment_type_not_allowed",
    )
    .await;
    expect_error(
        upload(
            &member,
            "run.exe",
            "application/zip",
            b"PK\x03\x04".to_vec(),
        )
        .send()
        .await
        .unwrap(),
        415,
        "attachment_type_not_allowed",
    )
    .await;
    expect_error(
        upload(
            &member,
            "fake.png",
            "image/png",
            b"<script>alert(1)</script>".to_vec(),
        )
        .send()
        .await
        .unwrap(),
        422,
        "attachment_content_mismatch",
    )
    .await;
    expect_error(
        upload(&member, "a.png", "application/pdf", b"%PDF-1.7".to_vec())
            .send()
            .await
            .unwrap(),
        422,
        "attachment_content_mismatch",
    )
    .await;
    expect_error(
        upload(&member, "../x.png", "image/png", png.clone())
            .send()
            .await
            .unwrap(),
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(
        (
            stored_files(),
            srv.records::<Request>(&format!("id = '{id}'"))[0].version
        ),
        before,
        "refused files store nothing"
    );

    // Another account: neither the request nor its file exists for them.
    let other = srv.other_account();
    let outsider_user = srv.user_with_role(Role::CustomerAdmin, Some(other.id));
    let outsider = srv.client_as(&outsider_user.email).await;
    for path in [
        format!("/attachments/{att_id}"),
        "/comments".into(),
        String::new(),
    ] {
        expect_error(
            outsider.get(r(&path)).send().await.unwrap(),
            404,
            "not_found",
        )
        .await;
    }
    expect_error(
        upload(&outsider, "x.png", "image/png", png.clone())
            .send()
            .await
            .unwrap(),
        404,
        "not_found",
    )
    .await;
    expect_error(
        outsider.post(r("/vote")).send().await.unwrap(),
        404,
        "not_found",
    )
    .await;
    expect_error(
        outsider
            .post(r("/comments"))
            .json(&json!({ "body": "hi" }))
            .send()
            .await
            .unwrap(),
        404,
        "not_found",
    )
    .await;

    // Votes: once per user, replays change nothing, the count is on the request.
    let (s, v) = body(member.post(r("/vote")).send().await.unwrap()).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["votes"], 1);
    assert_eq!(v["changed"], true);
    let (_, v) = body(member.post(r("/vote")).send().await.unwrap()).await;
    assert_eq!(
        (v["votes"].clone(), v["changed"].clone()),
        (json!(1), json!(false)),
        "a replayed vote counts once"
    );
    let (_, v) = body(admin.post(r("/vote")).send().await.unwrap()).await;
    assert_eq!(v["votes"], 2);
    let (_, stored) = body(member.get(r("")).send().await.unwrap()).await;
    assert_eq!(stored["votes"], 2);
    let (_, v) = body(admin.delete(r("/vote")).send().await.unwrap()).await;
    assert_eq!(v["votes"], 1);
    expect_error(
        agent.post(r("/vote")).send().await.unwrap(),
        403,
        "forbidden",
    )
    .await;
    // Without the CSRF header the cookie session cannot vote.
    let forged = srv.client_without_csrf("admin@acme.test").await;
    expect_error(
        forged.post(r("/vote")).send().await.unwrap(),
        403,
        "csrf_failed",
    )
    .await;
    // Support requests take no votes.
    let (_, support) = body(
        member
            .post(srv.url("/v1/requests"))
            .json(&json!({ "kind": "support", "title": "Help" }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    expect_error(
        member
            .post(srv.url(&format!(
                "/v1/requests/{}/vote",
                support["id"].as_str().unwrap()
            )))
            .send()
            .await
            .unwrap(),
        422,
        "validation_failed",
    )
    .await;
    srv.stop().await;
}

#[tokio::test]
async fn community_questions_answers_and_staff_verification() {
    let srv = TestServer::start().await;
    let member = srv.client_as("member@acme.test").await;
    let agent = srv.client_as("agent@portico.test").await;
    let other = srv.other_account();
    let outsider_user = srv.user_with_role(Role::CustomerMember, Some(other.id));
    let outsider = srv.client_as(&outsider_user.email).await;

    let (s, list) = body(
        member
            .get(srv.url("/v1/community/questions"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 200);
    assert!(
        list["items"].as_array().unwrap().len() >= 3,
        "seeded questions"
    );
    for q in list["items"].as_array().unwrap() {
        assert!(
            q.get("account_id").is_none() && q.get("author_id").is_none(),
            "{q}"
        );
    }
    let (s, q) = body(
        member
            .post(srv.url("/v1/community/questions"))
            .json(&json!({ "title": "Export to CSV?", "body": "<img src=x onerror=alert(1)>", "product_area": "reporting" }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 201, "{q}");
    assert_eq!(
        q["body"], "<img src=x onerror=alert(1)>",
        "stored as text, as typed"
    );
    let qid = q["id"].as_str().unwrap().to_owned();
    let (s, a) = body(
        outsider
            .post(srv.url(&format!("/v1/community/questions/{qid}/answers")))
            .json(&json!({ "body": "Use the reports page." }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 201, "another company's customer can answer: {a}");
    let aid = a["id"].as_str().unwrap().to_owned();
    expect_error(
        member
            .post(srv.url(&format!("/v1/community/answers/{aid}/verify")))
            .send()
            .await
            .unwrap(),
        403,
        "forbidden",
    )
    .await;
    let (s, v) = body(
        agent
            .post(srv.url(&format!("/v1/community/answers/{aid}/verify")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["verified"], true);
    let (_, thread) = body(
        outsider
            .get(srv.url(&format!("/v1/community/questions/{qid}")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(thread["answers"][0]["verified"], true);
    assert!(
        thread["question"].get("account_id").is_none(),
        "which company asked stays with staff: {thread}"
    );
    let (_, staff_view) = body(
        agent
            .get(srv.url(&format!("/v1/community/questions/{qid}")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        staff_view["question"]["account_id"],
        srv.acme().id.to_string()
    );
    expect_error(
        member
            .get(srv.url(&format!("/v1/community/questions/{aid}")))
            .send()
            .await
            .unwrap(),
        404,
        "not_found",
    )
    .await;
    expect_error(
        member
            .post(srv.url("/v1/community/questions"))
            .json(&json!({ "title": "", "body": "x" }))
            .send()
            .await
            .unwrap(),
        422,
        "validation_failed",
    )
    .await;
    srv.stop().await;
}

#[tokio::test]
async fn handoff_opens_a_conversation_carrying_the_question_and_answer() {
    let srv = TestServer::start().await;
    let member = srv.client_as("member@acme.test").await;
    let (_, answer) = body(
        member
            .post(srv.url("/v1/answers"))
            .json(&json!({ "question": "How do I invite people?", "escalate": false }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let citations = answer["citations"].clone();
    let (s, h) = body(
        member
            .post(srv.url("/v1/answers/handoff"))
            .json(&json!({
                "question": "How do I invite people?",
                "answer": answer["answer"],
                "citations": citations,
            }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 201, "{h}");
    let conv = h["conversation_id"].as_str().unwrap();
    let (_, msgs) = body(
        member
            .get(srv.url(&format!("/v1/conversations/{conv}/messages")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let items = msgs["items"].as_array().unwrap();
    let of_kind = |k: &str| {
        items
            .iter()
            .find(|m| m["kind"] == k)
            .unwrap_or_else(|| panic!("a {k} message in {msgs}"))
    };
    assert_eq!(of_kind("customer")["body"], "How do I invite people?");
    let context = of_kind("system")["body"].as_str().unwrap();
    assert!(
        context.contains("Answer shown") && context.contains("Sources:"),
        "{context}"
    );
    let agent = srv.client_as("agent@portico.test").await;
    let (_, c) = body(
        agent
            .get(srv.url(&format!("/v1/conversations/{conv}")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(
        c["tags"].as_array().unwrap().contains(&json!("ai-handoff")),
        "{c}"
    );

    // A citation the customer cannot read is refused, nothing is opened.
    let internal: Vec<Article> = srv.records("data ->> '$.audience' = 'internal'");
    // (Counted, not fingerprinted: the drafter may still be writing a
    // draft for the conversation opened above.)
    let conversations = || srv.records::<Conversation>("1 = 1").len();
    let before = conversations();
    expect_error(
        member
            .post(srv.url("/v1/answers/handoff"))
            .json(&json!({
                "question": "Q",
                "citations": [{ "kind": "article", "id": internal[0].id }],
            }))
            .send()
            .await
            .unwrap(),
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(conversations(), before, "no conversation is opened");
    expect_error(
        agent
            .post(srv.url("/v1/answers/handoff"))
            .json(&json!({ "question": "Q" }))
            .send()
            .await
            .unwrap(),
        403,
        "forbidden",
    )
    .await;
    srv.stop().await;
}

#[tokio::test]
async fn the_reading_language_is_stored_and_articles_follow_it() {
    let srv = TestServer::start().await;
    let member = srv.client_as("member@acme.test").await;
    let (s, me) = body(
        member
            .patch(srv.url("/v1/me"))
            .json(&json!({ "locale": "de" }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 200, "{me}");
    assert_eq!(me["user"]["locale"], "de");
    let (_, me) = body(member.get(srv.url("/v1/me")).send().await.unwrap()).await;
    assert_eq!(me["user"]["locale"], "de");
    expect_error(
        member
            .patch(srv.url("/v1/me"))
            .json(&json!({ "locale": "<script>" }))
            .send()
            .await
            .unwrap(),
        422,
        "validation_failed",
    )
    .await;
    // The seeded German translation is served for the English original.
    let fr: Vec<Article> = srv.records("data ->> '$.locale' = 'de'");
    let fr = fr.first().expect("a German translation is seeded");
    let original = fr.translation_of.expect("it translates an article");
    let (_, a) = body(
        member
            .get(srv.url(&format!("/v1/articles/{original}")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(a["locale"], "de", "{a}");
    assert_eq!(a["id"], fr.id.to_string());
    let (_, a) = body(
        member
            .get(srv.url(&format!("/v1/articles/{original}?locale=en")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(a["locale"], "en", "asking for English gets the original");
    // Search: German where it exists, English otherwise, never both.
    let (_, hits) = body(
        member
            .get(srv.url("/v1/search"))
            .query(&[("q", fr.title.as_str()), ("kind", "article")])
            .send()
            .await
            .unwrap(),
    )
    .await;
    let ids: Vec<&str> = hits["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&fr.id.to_string().as_str()), "{hits}");
    assert!(
        !ids.contains(&original.to_string().as_str()),
        "the English original gives way: {hits}"
    );
    srv.stop().await;
}

#[tokio::test]
async fn inviting_a_user_mails_a_link_that_signs_them_in_once() {
    let srv = TestServer::start().await;
    let acme = srv.acme();
    let admin = srv.client_as("admin@acme.test").await;
    let member = srv.client_as("member@acme.test").await;
    let users = srv.url(&format!("/v1/accounts/{}/users", acme.id));
    let invite =
        json!({ "email": "new.person@acme.test", "name": "New Person", "role": "customer_member" });
    expect_error(
        member.post(&users).json(&invite).send().await.unwrap(),
        403,
        "forbidden",
    )
    .await;
    let (s, u) = body(admin.post(&users).json(&invite).send().await.unwrap()).await;
    assert_eq!(s, 201, "{u}");
    assert_eq!(u["status"], "invited");
    let (to, subject, text, kind): (String, String, String, String) = srv
        .state
        .store
        .read(|c| {
            Ok(c.query_row(
                "SELECT n.to_address, n.subject, n.body, o.kind FROM mail_notices n JOIN mail_outbound o ON o.message_id = n.id",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )?)
        })
        .unwrap();
    assert_eq!(to, "new.person@acme.test");
    assert_eq!(kind, "notice", "queued in the mail outbox");
    assert!(subject.contains("Acme Corp"), "{subject}");
    let token = text
        .split("#token=")
        .nth(1)
        .and_then(|t| t.split_whitespace().next())
        .expect("the mail carries the link")
        .to_owned();
    let accept = |password: &str| {
        reqwest::Client::new()
            .post(srv.url("/v1/auth/invitations/accept"))
            .json(&json!({ "token": token, "password": password }))
    };
    expect_error(
        accept("short").send().await.unwrap(),
        422,
        "validation_failed",
    )
    .await;
    let resp = accept("a long enough password").send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .starts_with("portico_session=")
    );
    let (_, me) = body(resp).await;
    assert_eq!(me["user"]["status"], "active");
    assert!(me["csrf_token"].is_string());
    expect_error(
        accept("a long enough password").send().await.unwrap(),
        410,
        "invitation_used",
    )
    .await;
    // The new person signs in with the password they chose.
    let resp = reqwest::Client::new()
        .post(srv.url("/v1/auth/login"))
        .json(&json!({ "email": "new.person@acme.test", "password": "a long enough password" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    expect_error(
        reqwest::Client::new()
            .post(srv.url("/v1/auth/invitations/accept"))
            .json(&json!({ "token": "made-up", "password": "a long enough password" }))
            .send()
            .await
            .unwrap(),
        404,
        "invitation_unknown",
    )
    .await;
    srv.stop().await;
}

/// Invites `email` as Acme's admin and returns the token from the queued mail.
async fn invite_and_read_token(srv: &TestServer, email: &str) -> String {
    let admin = srv.client_as("admin@acme.test").await;
    let users = srv.url(&format!("/v1/accounts/{}/users", srv.acme().id));
    let (s, u) = body(
        admin
            .post(&users)
            .json(&json!({ "email": email, "name": "Pat Pending", "role": "customer_admin" }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 201, "{u}");
    latest_invitation_token(srv, email)
}

/// `GET /v1/auth/invitation` for `token`, as the link's page asks.
fn invitation_lookup(srv: &TestServer, token: &str) -> reqwest::RequestBuilder {
    reqwest::Client::new()
        .get(srv.url("/v1/auth/invitation"))
        .header("x-invitation-token", token)
}

/// The id of the user with `email`.
fn user_id_of(srv: &TestServer, email: &str) -> String {
    srv.state
        .store
        .read(|c| {
            Ok(
                c.query_row("SELECT id FROM users WHERE email = ?1", [email], |r| {
                    r.get(0)
                })?,
            )
        })
        .unwrap()
}

/// The token in the newest invitation mail queued for `email`.
fn latest_invitation_token(srv: &TestServer, email: &str) -> String {
    let text: String = srv
        .state
        .store
        .read(|c| {
            Ok(c.query_row(
                "SELECT body FROM mail_notices WHERE to_address = ?1 ORDER BY rowid DESC LIMIT 1",
                [email],
                |r| r.get(0),
            )?)
        })
        .unwrap();
    text.split("#token=")
        .nth(1)
        .and_then(|t| t.split_whitespace().next())
        .expect("the mail carries the link")
        .to_owned()
}

/// The link's page asks what it accepts before the person types a password:
/// the token travels in a header, the answer says only what the mail said,
/// and a link that no longer works is refused with its own stable code.
#[tokio::test]
async fn an_invitation_link_says_what_it_invites_to_until_it_is_used_or_expires() {
    let srv = TestServer::start().await;
    let lookup = |token: &str| invitation_lookup(&srv, token);
    let token = invite_and_read_token(&srv, "pat.pending@acme.test").await;
    let resp = lookup(&token).send().await.unwrap();
    assert_eq!(
        resp.headers()["cache-control"],
        "no-store",
        "an invitation is not cached"
    );
    let (s, found) = body(resp).await;
    assert_eq!(s, 200, "{found}");
    assert_eq!(found["account_name"], "Acme Corp");
    assert_eq!(found["email"], "pat.pending@acme.test");
    assert_eq!(found["name"], "Pat Pending");
    assert_eq!(
        found["invited_by"], "Ada Acme",
        "the inviter, as the mail named them"
    );
    assert_eq!(found["password_min_chars"], 10);
    assert!(found["expires_at"].is_string());
    let keys: Vec<&String> = found.as_object().unwrap().keys().collect();
    assert_eq!(
        keys.len(),
        6,
        "nothing beyond what the page shows: {keys:?}"
    );
    for bad in ["", "made-up", &"x".repeat(500)] {
        expect_error(lookup(bad).send().await.unwrap(), 404, "invitation_unknown").await;
    }
    expect_error(
        reqwest::Client::new()
            .get(srv.url(&format!("/v1/auth/invitation?token={token}")))
            .send()
            .await
            .unwrap(),
        404,
        "invitation_unknown",
    )
    .await;

    let accept = |token: &str| {
        reqwest::Client::new()
            .post(srv.url("/v1/auth/invitations/accept"))
            .json(&json!({ "token": token, "password": "a long enough password" }))
    };
    let (s, me) = body(accept(&token).send().await.unwrap()).await;
    assert_eq!(s, 200, "{me}");
    expect_error(lookup(&token).send().await.unwrap(), 410, "invitation_used").await;

    // Seven days after it was sent, a link has expired, and nothing changed.
    let later = invite_and_read_token(&srv, "too.late@acme.test").await;
    srv.clock.advance(jiff::SignedDuration::from_hours(7 * 24));
    expect_error(
        lookup(&later).send().await.unwrap(),
        410,
        "invitation_expired",
    )
    .await;
    expect_error(
        accept(&later).send().await.unwrap(),
        410,
        "invitation_expired",
    )
    .await;
    let status: String = srv
        .state
        .store
        .read(|c| {
            Ok(c.query_row(
                "SELECT json_extract(data, '$.status') FROM users WHERE email = 'too.late@acme.test'",
                [],
                |r| r.get(0),
            )?)
        })
        .unwrap();
    assert_eq!(status, "invited", "an expired link activates no one");
    srv.stop().await;
}

/// A person removed after the mail went out cannot use its link; inviting
/// them again replaces it with a new one.
#[tokio::test]
async fn a_removed_invitees_link_is_withdrawn_and_a_new_invitation_replaces_it() {
    let srv = TestServer::start().await;
    let token = invite_and_read_token(&srv, "gone.soon@acme.test").await;
    let admin = srv.client_as("admin@acme.test").await;
    let uid = user_id_of(&srv, "gone.soon@acme.test");
    let resp = admin
        .delete(srv.url(&format!("/v1/accounts/{}/users/{uid}", srv.acme().id)))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
    expect_error(
        invitation_lookup(&srv, &token).send().await.unwrap(),
        410,
        "invitation_withdrawn",
    )
    .await;
    expect_error(
        reqwest::Client::new()
            .post(srv.url("/v1/auth/invitations/accept"))
            .json(&json!({ "token": token, "password": "a long enough password" }))
            .send()
            .await
            .unwrap(),
        410,
        "invitation_withdrawn",
    )
    .await;
    let newer = invite_and_read_token(&srv, "gone.soon@acme.test").await;
    assert_ne!(newer, token, "a new mail, a new link");
    let lookup = |token: &str| invitation_lookup(&srv, token);
    expect_error(lookup(&token).send().await.unwrap(), 410, "invitation_used").await;
    assert_eq!(lookup(&newer).send().await.unwrap().status(), 200);
    srv.stop().await;
}

/// An admin resends a lost or expired invitation: a new mail with a new
/// link, the earlier link stops working, a double click sends one mail, and
/// nobody else can make the server mail Acme's invitees.
#[tokio::test]
async fn an_admin_resends_an_invitation_and_only_the_newest_link_works() {
    let srv = TestServer::start().await;
    let email = "lost.mail@acme.test";
    let first = invite_and_read_token(&srv, email).await;
    let acme = srv.acme().id;
    let uid = user_id_of(&srv, email);
    let mails = || -> i64 {
        srv.state
            .store
            .read(|c| {
                Ok(c.query_row(
                    "SELECT count(*) FROM mail_notices WHERE to_address = ?1",
                    [email],
                    |r| r.get(0),
                )?)
            })
            .unwrap()
    };
    let resend = srv.url(&format!("/v1/accounts/{acme}/users/{uid}/invitation"));
    let admin = srv.client_as("admin@acme.test").await;

    let e = expect_error(
        admin.post(&resend).send().await.unwrap(),
        429,
        "resend_too_soon",
    )
    .await;
    assert!(
        e["error"]["message"].as_str().unwrap().contains("seconds"),
        "says when to try again: {e}"
    );
    assert_eq!(
        mails(),
        1,
        "a click right after inviting sends no second mail"
    );

    srv.clock.advance(jiff::SignedDuration::from_secs(61));
    let (s, sent) = body(admin.post(&resend).send().await.unwrap()).await;
    assert_eq!(s, 200, "{sent}");
    assert_eq!(sent["sent_to"], email);
    assert!(sent["expires_at"].is_string());
    assert_eq!(mails(), 2, "one new mail");
    let second = latest_invitation_token(&srv, email);
    assert_ne!(second, first, "a new link");
    let lookup = |token: &str| invitation_lookup(&srv, token);
    expect_error(lookup(&first).send().await.unwrap(), 410, "invitation_used").await;
    assert_eq!(lookup(&second).send().await.unwrap().status(), 200);

    // Not a member, not another account's admin (with either account in
    // the path), and not for someone who already joined.
    srv.clock.advance(jiff::SignedDuration::from_secs(61));
    let member = srv.client_as("member@acme.test").await;
    let s = member.post(&resend).send().await.unwrap().status();
    assert_eq!(s, 403, "a member cannot send invitations");
    let other = srv.other_account();
    let stranger = srv
        .client_as(
            &srv.user_with_role(Role::CustomerAdmin, Some(other.id))
                .email,
        )
        .await;
    let s = stranger.post(&resend).send().await.unwrap().status();
    assert!(s == 403 || s == 404, "another account's admin: {s}");
    let s = stranger
        .post(srv.url(&format!("/v1/accounts/{}/users/{uid}/invitation", other.id)))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(
        s, 404,
        "Acme's invitee is not found through another account"
    );
    let joined = srv.user_with_role(Role::CustomerMember, Some(acme));
    expect_error(
        admin
            .post(srv.url(&format!(
                "/v1/accounts/{acme}/users/{}/invitation",
                joined.id
            )))
            .send()
            .await
            .unwrap(),
        409,
        "conflict",
    )
    .await;
    assert_eq!(mails(), 2, "none of those sent anything");
    srv.stop().await;
}
