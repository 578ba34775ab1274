//! The evaluation set `tests/eval/knowledge.json`, run through the real API:
//! retrieval quality (recall@3, MRR) of lexical vs hybrid search, and for
//! answers citation precision, coverage and leaks, with both composers.
//!
//! `cargo test -p portico-portal --test knowledge_eval -- --nocapture`
//! prints the figures reported in `docs/knowledge.md`. Zero leaks is asserted,
//! not reported: a leak fails the test. The chat-completions pass uses a
//! local endpoint that echoes *everything* it is given back as the answer —
//! the worst model imaginable — so any leak would be in the grounding itself.

mod common;

use axum::Router;
use axum::routing::post;
use common::*;
use portico_knowledge::compose::{ChatCompletions, ChatConfig};
use portico_model::*;
use serde_json::{Value, json};

fn eval_set() -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/eval/knowledge.json"
    ))
    .unwrap();
    serde_json::from_str(&text).unwrap()
}

fn first_user(srv: &TestServer, plan: &str, role: Role) -> (User, Account) {
    let plan: Plan = srv
        .records::<Plan>(&format!("data ->> '$.code' = '{plan}'"))
        .remove(0);
    // Acme for Team (the demo account), else the first account on the plan.
    let subs = srv.records::<Subscription>(&format!("data ->> '$.plan_id' = '{}'", plan.id));
    let acme = srv.acme();
    let sub = subs
        .iter()
        .find(|s| s.account_id == acme.id)
        .or(subs.first())
        .unwrap_or_else(|| panic!("the seed has an account on {}", plan.code));
    let account = srv
        .records::<Account>(&format!("id = '{}'", sub.account_id))
        .remove(0);
    (srv.user_with_role(role, Some(sub.account_id)), account)
}

fn slug_of(articles: &[Article], id: &str) -> Option<String> {
    articles
        .iter()
        .find(|a| a.id.to_string() == id)
        .map(|a| a.slug.clone())
}

struct Retrieval {
    recall3: f64,
    mrr: f64,
}

async fn retrieval(srv: &TestServer, c: &reqwest::Client, mode: &str, set: &Value) -> Retrieval {
    let articles: Vec<Article> = srv.records("1 = 1");
    let (mut hits3, mut rr, mut n) = (0.0, 0.0, 0.0);
    for item in set["retrieval"].as_array().unwrap() {
        let q = item["query"].as_str().unwrap();
        let expect: Vec<&str> = item["expect"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e.as_str().unwrap())
            .collect();
        let q_enc: String = url::form_urlencoded::byte_serialize(q.as_bytes()).collect();
        let resp = c
            .get(srv.url(&format!(
                "/v1/search?q={q_enc}&mode={mode}&limit=10&kind=article"
            )))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{q}");
        let body = json(resp).await;
        let ranked: Vec<String> = body["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|h| slug_of(&articles, h["id"].as_str()?))
            .collect();
        let first = ranked.iter().position(|s| expect.contains(&s.as_str()));
        if first.is_some_and(|p| p < 3) {
            hits3 += 1.0;
        }
        if let Some(p) = first {
            rr += 1.0 / (p as f64 + 1.0);
        }
        if std::env::var("EVAL_VERBOSE").is_ok() {
            println!("{mode:8} {q:60} -> {:?}", &ranked[..ranked.len().min(3)]);
        }
        n += 1.0;
    }
    Retrieval {
        recall3: hits3 / n,
        mrr: rr / n,
    }
}

#[derive(Default, Debug)]
struct AnswerFigures {
    questions: usize,
    covered: usize,
    cited: usize,
    cited_expected: usize,
    leaks: Vec<String>,
}

async fn answers(srv: &TestServer, set: &Value, composer: &str) -> AnswerFigures {
    let articles: Vec<Article> = srv.records("1 = 1");
    let mut f = AnswerFigures::default();
    let other = srv.other_account();
    for item in set["answers"].as_array().unwrap() {
        let role = match item["role"].as_str().unwrap() {
            "customer_admin" => Role::CustomerAdmin,
            _ => Role::CustomerMember,
        };
        let (user, own) = first_user(srv, item["plan"].as_str().unwrap(), role);
        let fill = |s: &str| {
            s.replace("{other_account}", &other.name)
                .replace("{own_account}", &own.name)
        };
        let question = fill(item["question"].as_str().unwrap());
        let c = srv.client_as(&user.email).await;
        let resp = c
            .post(srv.url("/v1/answers"))
            .json(&json!({ "question": question, "escalate": false }))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let a = json(resp).await;
        assert_eq!(a["composer"], composer, "{question}: {a}");
        // The asker's own words come back in a proposed request's title;
        // they are not a leak.
        let text = a.to_string().replace(&question, "");
        let answer = a["answer"].as_str().unwrap();
        let cited: Vec<String> = a["citations"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|c| slug_of(&articles, c["id"].as_str()?))
            .collect();
        let facts: Vec<&str> = a["facts_used"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|v| v.as_str())
            .collect();
        let expect_cite: Vec<&str> = item["cite"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let expect_facts: Vec<&str> = item["facts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        // Leaks: forbidden text or articles, and any citation the asker
        // could not open themselves.
        for bad in item["must_not"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| fill(v.as_str().unwrap()))
        {
            let found = if articles.iter().any(|a| a.slug == bad) {
                cited.contains(&bad)
            } else {
                text.to_lowercase().contains(&bad.to_lowercase()) || facts.contains(&bad.as_str())
            };
            if found {
                f.leaks.push(format!("[{composer}] {question}: {bad}"));
            }
        }
        for c_ in a["citations"].as_array().unwrap() {
            let kind = c_["kind"].as_str().unwrap();
            if kind == "article" {
                let resp = c
                    .get(srv.url(&format!("/v1/articles/{}", c_["id"].as_str().unwrap())))
                    .send()
                    .await
                    .unwrap();
                if resp.status() != 200 {
                    f.leaks.push(format!(
                        "[{composer}] {question}: cited an article the asker cannot open"
                    ));
                }
            }
        }
        for secret in [own.notes.as_str(), other.notes.as_str()] {
            if !secret.is_empty() && text.contains(secret) {
                f.leaks
                    .push(format!("[{composer}] {question}: account notes"));
            }
        }
        if own.id != other.id && text.contains(&other.name) && !question.contains(&other.name) {
            f.leaks
                .push(format!("[{composer}] {question}: another account's name"));
        }
        if std::env::var("EVAL_VERBOSE").is_ok() {
            println!(
                "[{composer}] {question}\n  cited {cited:?} facts {facts:?} confidence {}",
                a["confidence"]
            );
        }
        let graded = !expect_cite.is_empty()
            || !expect_facts.is_empty()
            || item["must"].as_array().is_some_and(|m| !m.is_empty());
        if graded {
            f.questions += 1;
            let cite_ok =
                expect_cite.is_empty() || cited.iter().any(|s| expect_cite.contains(&s.as_str()));
            let facts_ok = expect_facts.iter().all(|k| facts.contains(k));
            let must_ok = item["must"]
                .as_array()
                .unwrap()
                .iter()
                .all(|m| answer.contains(m.as_str().unwrap()));
            if cite_ok && facts_ok && must_ok {
                f.covered += 1;
            } else if std::env::var("EVAL_VERBOSE").is_ok() {
                println!(
                    "NOT COVERED [{composer}] {question}: cite_ok={cite_ok} facts_ok={facts_ok} must_ok={must_ok}\n  {a}"
                );
            }
            if !expect_cite.is_empty() {
                f.cited += cited.len();
                f.cited_expected += cited
                    .iter()
                    .filter(|s| expect_cite.contains(&s.as_str()))
                    .count();
            }
        }
    }
    f
}

/// A chat-completions endpoint that answers with everything it was given.
async fn echo_model() -> String {
    async fn complete(body: String) -> axum::Json<Value> {
        let req: Value = serde_json::from_str(&body).unwrap();
        let user = req["messages"][1]["content"].as_str().unwrap_or_default();
        // Everything but the question (the asker's own words).
        let data = user.split("SOURCES:").nth(1).unwrap_or_default();
        let content: String = data
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| format!("{} [S1] [F:plan].\n", l.trim_end_matches('.')))
            .collect();
        axum::Json(
            json!({ "choices": [{ "message": { "role": "assistant", "content": content } }] }),
        )
    }
    let app = Router::new().route("/v1/chat/completions", post(complete));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/v1", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

#[tokio::test]
async fn evaluation_set() {
    let set = eval_set();
    let srv = TestServer::start().await;
    let (ent, _) = first_user(&srv, "enterprise", Role::CustomerAdmin);
    let c = srv.client_as(&ent.email).await;
    let lexical = retrieval(&srv, &c, "lexical", &set).await;
    let semantic = retrieval(&srv, &c, "semantic", &set).await;
    let hybrid = retrieval(&srv, &c, "hybrid", &set).await;
    let n = set["retrieval"].as_array().unwrap().len();
    println!("retrieval over {n} queries (Enterprise customer scope):");
    for (name, r) in [
        ("lexical", &lexical),
        ("semantic", &semantic),
        ("hybrid", &hybrid),
    ] {
        println!("  {name:9} recall@3 {:.3}  MRR {:.3}", r.recall3, r.mrr);
    }

    let extractive = answers(&srv, &set, "extractive").await;
    srv.state.knowledge.use_chat_completions(
        ChatCompletions::new(ChatConfig {
            base_url: echo_model().await,
            model: "echo-everything".into(),
            api_key: None,
            timeout: std::time::Duration::from_secs(10),
            stream: false,
        })
        .unwrap(),
    );
    let chat = answers(&srv, &set, "chat_completions").await;
    for (name, f) in [("extractive", &extractive), ("chat (echo)", &chat)] {
        println!(
            "answers [{name}]: coverage {}/{} = {:.3}, citation precision {}/{} = {:.3}, leaks {}",
            f.covered,
            f.questions,
            f.covered as f64 / f.questions.max(1) as f64,
            f.cited_expected,
            f.cited,
            f.cited_expected as f64 / f.cited.max(1) as f64,
            f.leaks.len()
        );
    }
    assert!(
        extractive.leaks.is_empty(),
        "leaks: {:#?}",
        extractive.leaks
    );
    assert!(
        chat.leaks.is_empty(),
        "leaks with a model that repeats its whole input: {:#?}",
        chat.leaks
    );
    assert!(
        hybrid.recall3 >= lexical.recall3 && hybrid.mrr > lexical.mrr,
        "hybrid must beat lexical: {:.3}/{:.3} vs {:.3}/{:.3}",
        hybrid.recall3,
        hybrid.mrr,
        lexical.recall3,
        lexical.mrr
    );
    assert!(
        extractive.covered * 4 >= extractive.questions * 3,
        "the built-in composer covers at least 75% of graded questions"
    );
    srv.stop().await;
}
