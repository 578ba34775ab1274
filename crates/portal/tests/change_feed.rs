//! The change feed has one row per committed write, in commit order, and
//! none for a write that rolled back.

mod common;

use common::*;
use portico_model::*;
use portico_portal::store::Actor;

#[tokio::test]
async fn one_row_per_committed_write_in_commit_order() {
    let srv = TestServer::start().await;
    let agent = srv.client_as("agent@portico.test").await;
    let conv = srv.records::<Conversation>("1 = 1").remove(0);
    let before = srv.max_seq();

    // A triage patch writes the conversation and its audit event.
    let resp = agent
        .patch(srv.url(&format!("/v1/conversations/{}", conv.id)))
        .json(&serde_json::json!({ "priority": "urgent", "add_tags": ["vip"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let page = json(
        agent
            .get(srv.url(&format!("/v1/sync/changes?after={before}")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let changes = page["changes"].as_array().unwrap();
    let kinds: Vec<&str> = changes
        .iter()
        .map(|c| c["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["conversation", "audit_event"],
        "exactly the two records written, in order"
    );
    assert_eq!(changes[0]["row"]["priority"], "urgent");
    assert_eq!(changes[0]["version"], conv.version + 1);
    let seqs: Vec<i64> = changes.iter().map(|c| c["seq"].as_i64().unwrap()).collect();
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "seq is gapless and increasing: {seqs:?}"
    );
    srv.stop().await;
}

#[tokio::test]
async fn rolled_back_write_leaves_no_change_row() {
    let srv = TestServer::start().await;
    let conv = srv.records::<Conversation>("1 = 1").remove(0);
    let before = srv.max_seq();
    let fingerprint = srv.fingerprint();
    let result = srv.state.store.write(Actor::SYSTEM, anchor(), |w| {
        let mut c: Conversation = portico_portal::store::require(w, conv.id.0)?;
        c.priority = Priority::Urgent;
        w.update(&mut c)?;
        // A later step fails: the whole transaction must roll back.
        Err::<(), _>(portico_portal::error::PortalError::Conflict(
            "injected failure".into(),
        ))
    });
    assert!(result.is_err());
    assert_eq!(
        srv.max_seq(),
        before,
        "no change row for a rolled-back write"
    );
    assert_eq!(srv.fingerprint(), fingerprint, "no record changed either");
    srv.stop().await;
}

#[tokio::test]
async fn concurrent_writes_get_distinct_ordered_seqs() {
    let srv = TestServer::start().await;
    let agent = srv.client_as("agent@portico.test").await;
    let convs = srv.records::<Conversation>("1 = 1");
    let before = srv.max_seq();
    let mut tasks = Vec::new();
    for c in convs.iter().take(20) {
        let (agent, url) = (
            agent.clone(),
            srv.url(&format!("/v1/conversations/{}/messages", c.id)),
        );
        tasks.push(tokio::spawn(async move {
            agent
                .post(url)
                .json(&serde_json::json!({ "body": "On it." }))
                .send()
                .await
                .unwrap()
                .status()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 201);
    }
    // Each reply writes a message and bumps its conversation: 40 rows.
    let page = json(
        agent
            .get(srv.url(&format!("/v1/sync/changes?after={before}&limit=1000")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let changes = page["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 40);
    let messages = changes.iter().filter(|c| c["kind"] == "message").count();
    assert_eq!(messages, 20);
    assert_eq!(page["next_after"].as_i64().unwrap(), srv.max_seq());
    srv.stop().await;
}

/// Work that changes conversation `id` and then fails: nothing it wrote
/// may stay, and its error must come back as its own answer.
fn fails_after_writing<T: 'static>(id: ConversationId) -> portico_portal::store::Work<T> {
    use portico_portal::error::PortalError;
    Box::new(move |w| {
        let mut c: Conversation = portico_portal::store::require(w, id.0)?;
        c.tags.push("must-not-stay".into());
        w.update(&mut c)?;
        Err(PortalError::Conflict("injected failure".into()))
    })
}

/// Group commit (the chat writer): each piece of work runs in a savepoint
/// of one transaction, so one that fails leaves nothing behind and gets its
/// own error while the others commit, with gapless change-log rows in the
/// order the work was given.
#[tokio::test]
async fn a_failing_piece_of_a_group_commit_fails_alone() {
    use portico_portal::error::PortalError;
    use portico_portal::store::{self, Work};
    let srv = TestServer::start().await;
    let convs = srv.records::<Conversation>("1 = 1");
    let (a, b) = (convs[0].clone(), convs[1].clone());
    let before = srv.max_seq();
    let bump = |id: ConversationId, p: Priority| -> Work<ConversationId> {
        Box::new(move |w| {
            let mut c: Conversation = store::require(w, id.0)?;
            c.priority = p;
            w.update(&mut c)?;
            Ok(id)
        })
    };
    let failing = fails_after_writing(a.id);
    let answers = srv
        .state
        .store
        .write_each(vec![
            (Actor::SYSTEM, anchor(), bump(a.id, Priority::Urgent)),
            (Actor::SYSTEM, anchor(), failing),
            (Actor::SYSTEM, anchor(), bump(b.id, Priority::Low)),
        ])
        .expect("the batch commits");
    assert!(matches!(answers[0], Ok(id) if id == a.id), "{answers:?}");
    assert!(
        matches!(&answers[1], Err(PortalError::Conflict(m)) if m == "injected failure"),
        "the failing piece gets its own error: {answers:?}"
    );
    assert!(matches!(answers[2], Ok(id) if id == b.id), "{answers:?}");

    let a_now = srv
        .records::<Conversation>(&format!("id = '{}'", a.id))
        .remove(0);
    assert_eq!(
        a_now.priority,
        Priority::Urgent,
        "the first piece committed"
    );
    assert!(
        !a_now.tags.iter().any(|t| t == "must-not-stay"),
        "the failed piece's write was rolled back"
    );
    assert_eq!(a_now.version, a.version + 1, "one committed write on a");
    let b_now = srv
        .records::<Conversation>(&format!("id = '{}'", b.id))
        .remove(0);
    assert_eq!(
        b_now.priority,
        Priority::Low,
        "the piece after the failure committed"
    );

    let rows: Vec<(i64, String, i64)> = srv
        .state
        .store
        .read(|c| {
            let mut s = c.prepare(
                "SELECT seq, entity_id, version FROM change_log WHERE seq > ?1 ORDER BY seq",
            )?;
            let rows = s
                .query_map([before], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
        .unwrap();
    assert_eq!(
        rows,
        vec![
            (before + 1, a.id.to_string(), a.version as i64 + 1),
            (before + 2, b.id.to_string(), b.version as i64 + 1),
        ],
        "one gapless change row per committed write, in the order given"
    );
    srv.stop().await;
}

/// A batch of one piece runs without a savepoint (see `Store::write_each`):
/// when it fails after writing, its error is still its own answer and
/// nothing it wrote stays, as in a larger batch.
#[tokio::test]
async fn a_failing_batch_of_one_leaves_nothing_and_gets_its_own_error() {
    use portico_portal::error::PortalError;
    use portico_portal::store::{self, Work};
    let srv = TestServer::start().await;
    let a = srv.records::<Conversation>("1 = 1").remove(0);
    let before = srv.max_seq();
    let failing: Work<()> = fails_after_writing(a.id);
    let answers = srv
        .state
        .store
        .write_each(vec![(Actor::SYSTEM, anchor(), failing)])
        .expect("a failing piece is an answer, not a failed batch");
    assert!(
        matches!(&answers[..], [Err(PortalError::Conflict(m))] if m == "injected failure"),
        "the piece gets its own error: {answers:?}"
    );
    let a_now = srv
        .records::<Conversation>(&format!("id = '{}'", a.id))
        .remove(0);
    assert_eq!(a_now, a, "the failed piece's write was rolled back");
    assert_eq!(srv.max_seq(), before, "and left no change-log row");

    let ok: Work<()> = Box::new(move |w| {
        let mut c: Conversation = store::require(w, a.id.0)?;
        c.priority = Priority::Urgent;
        w.update(&mut c)
    });
    let answers = srv
        .state
        .store
        .write_each(vec![(Actor::SYSTEM, anchor(), ok)])
        .expect("the next batch commits");
    assert!(matches!(&answers[..], [Ok(())]), "{answers:?}");
    assert_eq!(srv.max_seq(), before + 1, "one change row for the write");
    srv.stop().await;
}

/// An update names `account_id` only when it changes (fewer index pages
/// rewritten); a record that does move keeps its account column and its
/// change-log row right.
#[tokio::test]
async fn a_record_moved_to_another_account_is_listed_under_the_new_one() {
    use portico_portal::store;
    let srv = TestServer::start().await;
    let (acme, other) = (srv.acme(), srv.other_account());
    let conv = srv
        .records::<Conversation>(&format!("account_id = '{}'", acme.id))
        .remove(0);
    let before = srv.max_seq();
    srv.state
        .store
        .write(Actor::SYSTEM, anchor(), |w| {
            let mut c: Conversation = store::require(w, conv.id.0)?;
            c.account_id = other.id;
            w.update(&mut c)
        })
        .unwrap();
    let listed = |account: AccountId| -> Vec<ConversationId> {
        srv.state
            .store
            .read(|c| store::list_for_account::<Conversation>(c, account, None, 1000))
            .unwrap()
            .into_iter()
            .map(|c| c.id)
            .collect()
    };
    assert!(
        listed(other.id).contains(&conv.id),
        "listed under its new account"
    );
    assert!(!listed(acme.id).contains(&conv.id), "gone from the old one");
    let logged: String = srv
        .state
        .store
        .read(|c| {
            Ok(c.query_row(
                "SELECT account_id FROM change_log WHERE seq > ?1 AND entity_id = ?2",
                rusqlite::params![before, conv.id.to_string()],
                |r| r.get(0),
            )?)
        })
        .unwrap();
    assert_eq!(
        logged,
        other.id.to_string(),
        "the change row carries the new account"
    );
    srv.stop().await;
}
