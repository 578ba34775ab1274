//! Account self-service over HTTP: plan and seat changes with their exact
//! prorated money, invites and seats under concurrency, user management,
//! invoices and usage. Every change must be audited and reach the change feed.

mod common;

use std::sync::Arc;

use common::*;
use jiff::{SignedDuration, Timestamp};
use portico_model::*;
use portico_portal::store::Actor;
use serde_json::{Value, json};

const DAY: i64 = 86_400;

/// `n / d` rounded half up, for `n >= 0`: the rounding the billing rules
/// promise ("half away from zero") written out for non-negative amounts.
fn div_round(n: i64, d: i64) -> i64 {
    assert!(
        n >= 0 && d > 0,
        "the helper only rounds non-negative amounts over a positive period"
    );
    (2 * n + d) / (2 * d)
}

fn acme_sub(srv: &TestServer) -> Subscription {
    let acme = srv.acme();
    srv.records::<Subscription>(&format!("account_id = '{}'", acme.id))
        .pop()
        .expect("Acme has a subscription")
}

fn user_by_email(srv: &TestServer, email: &str) -> User {
    srv.records::<User>(&format!("email = '{email}'"))
        .pop()
        .unwrap_or_else(|| panic!("{email} exists"))
}

fn invoices_of(srv: &TestServer, account: AccountId) -> Vec<Invoice> {
    srv.records::<Invoice>(&format!("account_id = '{account}'"))
}

fn audits(srv: &TestServer, action: &str, entity: uuid::Uuid) -> Vec<AuditEvent> {
    srv.records::<AuditEvent>(&format!(
        "data ->> '$.action' = '{action}' AND data ->> '$.entity_id' = '{entity}'"
    ))
}

fn assigned_seats(srv: &TestServer, account: AccountId) -> usize {
    srv.records::<Seat>(&format!("account_id = '{account}'"))
        .len()
}

/// Plan ids by code, as a client finds them: from `/v1/plans`.
async fn plans(srv: &TestServer, client: &reqwest::Client) -> Vec<Value> {
    let resp = client.get(srv.url("/v1/plans")).send().await.unwrap();
    assert_eq!(resp.status(), 200, "any signed-in user may list plans");
    json(resp).await["items"].as_array().unwrap().clone()
}

fn plan_id(plans: &[Value], code: &str) -> String {
    plans
        .iter()
        .find(|p| p["code"] == code)
        .unwrap_or_else(|| panic!("plan {code} is listed"))["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn post(
    srv: &TestServer,
    client: &reqwest::Client,
    path: &str,
    body: Value,
) -> reqwest::Response {
    client.post(srv.url(path)).json(&body).send().await.unwrap()
}

fn sub_path(account: AccountId, what: &str) -> String {
    format!("/v1/accounts/{account}/subscription/{what}")
}

/// Change rows after `after` as `client` sees them.
async fn feed(srv: &TestServer, client: &reqwest::Client, after: i64) -> Vec<Value> {
    let resp = client
        .get(srv.url(&format!("/v1/sync/changes?after={after}&limit=1000")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "the change feed is readable");
    json(resp).await["changes"].as_array().unwrap().clone()
}

fn feed_has(changes: &[Value], kind: &str, id: impl ToString) -> bool {
    let id = id.to_string();
    changes.iter().any(|c| c["kind"] == kind && c["id"] == id)
}

fn amounts(quote: &Value) -> Vec<i64> {
    quote["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["amount"].as_i64().unwrap())
        .collect()
}

fn ts(v: &Value) -> Timestamp {
    v.as_str()
        .unwrap_or_else(|| panic!("timestamp expected, got {v}"))
        .parse()
        .unwrap()
}

#[tokio::test]
async fn mid_period_upgrade_charges_exactly_the_preview_even_minutes_later() {
    let srv = TestServer::start().await;
    let sub = acme_sub(&srv);
    let acme = srv.acme();
    let (start, end) = (sub.current_period_start, sub.current_period_end);
    let period = end.as_second() - start.as_second();
    // Ten days into Acme's period.
    let t1 = start + SignedDuration::from_secs(10 * DAY);
    srv.clock.set(t1);
    let admin = srv.client_as("admin@acme.test").await;
    let staff = srv.client_as("admin@portico.test").await;
    let plans = plans(&srv, &admin).await;
    let business = plan_id(&plans, "business");
    let team_price = 2_000; // Team: USD 20.00 per seat per month
    let business_price = 4_000; // Business: USD 40.00 per seat per month
    assert_eq!(
        sub.plan_id.to_string(),
        plan_id(&plans, "team"),
        "Acme starts on Team"
    );
    let seats = sub.seats as i64;
    assert!(seats >= 10, "Business needs 10 seats; Acme has {seats}");

    // Worked example: the unused time on Team is credited, the remaining time
    // on Business charged, each rounded to the cent on its own.
    let remaining = end.as_second() - t1.as_second();
    let credit = div_round(team_price * seats * remaining, period);
    let charge = div_round(business_price * seats * remaining, period);
    let tax = div_round((charge - credit) * sub.tax_rate_bps as i64, 10_000);
    let expected_total = charge - credit + tax;
    if seats == 11 && period == 31 * DAY && sub.tax_rate_bps == 0 {
        // The seeded case by hand: 21 of 31 days left.
        // Credit 11 x 20.00 x 21/31 = 149.0322 -> 149.03;
        // charge 11 x 40.00 x 21/31 = 298.0645 -> 298.06; due 149.03.
        assert_eq!(
            (credit, charge, expected_total),
            (14_903, 29_806, 14_903),
            "the formula must agree with the hand-worked seeded example"
        );
    }

    let before_seq = srv.max_seq();
    let invoices_before = invoices_of(&srv, acme.id).len();
    let resp = post(
        &srv,
        &admin,
        &sub_path(acme.id, "preview"),
        json!({ "plan_id": business }),
    )
    .await;
    assert_eq!(resp.status(), 200, "an admin may preview an upgrade");
    let preview = json(resp).await;
    assert_eq!(preview["timing"], "now", "upgrades take effect immediately");
    assert_eq!(
        ts(&preview["proration_at"]),
        t1,
        "the preview is priced at the server's now"
    );
    assert_eq!(
        amounts(&preview),
        vec![-credit, charge],
        "credit old plan, charge new plan, to the cent"
    );
    assert_eq!(
        preview["total"].as_i64(),
        Some(expected_total),
        "total = charge - credit + tax: {preview}"
    );
    assert_eq!(
        preview["next_period_amount"].as_i64(),
        Some(business_price * seats),
        "after the upgrade the plan costs the Business price for every seat each period"
    );
    assert_eq!(srv.max_seq(), before_seq, "a preview writes nothing");

    // The customer reads the quote for a few minutes; a fresh preview now
    // would cost slightly less, but confirming the old one keeps its price.
    srv.clock.advance(SignedDuration::from_secs(5 * 60));
    let later = json(
        post(
            &srv,
            &admin,
            &sub_path(acme.id, "preview"),
            json!({ "plan_id": business }),
        )
        .await,
    )
    .await;
    let remaining_later = remaining - 300;
    let later_total = div_round(business_price * seats * remaining_later, period)
        - div_round(team_price * seats * remaining_later, period);
    assert_eq!(
        later["total"].as_i64(),
        Some(later_total + div_round(later_total * sub.tax_rate_bps as i64, 10_000)),
        "a fresh preview is priced at the later instant, with less time left"
    );
    assert_ne!(
        later["total"], preview["total"],
        "five minutes of proration must show in a fresh preview (else the next check proves nothing)"
    );

    let resp = post(
        &srv,
        &admin,
        &sub_path(acme.id, "change"),
        json!({ "plan_id": business, "proration_at": preview["proration_at"] }),
    )
    .await;
    assert_eq!(
        resp.status(),
        200,
        "confirming a 5-minute-old preview is allowed"
    );
    let done = json(resp).await;
    assert_eq!(
        done["quote"]["total"], preview["total"],
        "the charge equals the accepted preview to the cent"
    );
    assert_eq!(
        done["quote"]["lines"], preview["lines"],
        "line by line, too"
    );
    assert_eq!(
        done["subscription"]["plan_id"], business,
        "the upgrade is effective now"
    );
    assert_eq!(
        done["subscription"]["seats"].as_i64(),
        Some(seats),
        "an upgrade without a seat count keeps the seats"
    );
    let invoice = &done["invoice"];
    assert_eq!(
        invoice["status"], "open",
        "an upgrade's charge is billed at once: {done}"
    );
    assert_eq!(
        invoice["total"], preview["total"],
        "the invoice total is the preview's total"
    );
    assert_eq!(
        invoice["amount_due"], preview["total"],
        "nothing of the new invoice is paid yet"
    );

    // The stored state agrees with the answer.
    let after = acme_sub(&srv);
    assert_eq!(
        after.plan_id.to_string(),
        business,
        "the stored subscription is on Business after an immediate upgrade"
    );
    assert_eq!(
        after.pending_change, None,
        "an immediate change leaves nothing scheduled"
    );
    let invoices = invoices_of(&srv, acme.id);
    assert_eq!(
        invoices.len(),
        invoices_before + 1,
        "exactly one invoice for one change"
    );
    let stored = invoices
        .iter()
        .find(|i| i.id.to_string() == invoice["id"])
        .expect("invoice stored");
    assert_eq!(
        stored.total, expected_total,
        "the stored invoice total is the worked amount"
    );
    assert_eq!(
        stored.status,
        InvoiceStatus::Open,
        "a new charge is open until paid"
    );
    assert_eq!(
        stored.period_start, t1,
        "billed from the accepted proration instant"
    );
    assert_eq!(
        stored.period_end, end,
        "the proration runs to the end of the current period"
    );

    // Audited, with who did it, and in the feed.
    let admin_user = user_by_email(&srv, "admin@acme.test");
    let events = audits(&srv, "subscription.plan_changed", sub.id.0);
    assert_eq!(events.len(), 1, "one audit event per change");
    assert_eq!(
        events[0].actor_id,
        Some(admin_user.id),
        "the audit names the customer admin"
    );
    assert_eq!(
        events[0].detail["total"].as_i64(),
        Some(expected_total),
        "the audit keeps the quote"
    );
    let changes = feed(&srv, &staff, before_seq).await;
    assert!(
        feed_has(&changes, "subscription", sub.id),
        "staff feed carries the subscription"
    );
    assert!(
        feed_has(&changes, "invoice", stored.id),
        "staff feed carries the invoice"
    );
    assert!(
        feed_has(&changes, "audit_event", events[0].id),
        "staff feed carries the audit event"
    );
    let changes = feed(&srv, &admin, before_seq).await;
    assert!(
        feed_has(&changes, "subscription", sub.id),
        "the customer's own feed carries the subscription"
    );
    assert!(
        feed_has(&changes, "invoice", stored.id),
        "and, for an admin, the invoice"
    );
    assert!(
        !changes.iter().any(|c| c["kind"] == "audit_event"),
        "audit events are staff-only, even in the feed"
    );

    // The subscription read reflects it.
    let read = json(
        admin
            .get(srv.url(&format!("/v1/accounts/{}/subscription", acme.id)))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        read["plan_id"], business,
        "reading the subscription shows the new plan"
    );
    srv.stop().await;
}

#[tokio::test]
async fn downgrade_waits_for_period_end_and_charges_nothing() {
    let srv = TestServer::start().await;
    let sub = acme_sub(&srv);
    let acme = srv.acme();
    let (start, end) = (sub.current_period_start, sub.current_period_end);
    let period = end.as_second() - start.as_second();
    assert_eq!(
        period % 2,
        0,
        "a period of whole days has an exact midpoint"
    );
    // Exactly halfway: every prorated amount is half a month, no rounding.
    let mid = start + SignedDuration::from_secs(period / 2);
    srv.clock.set(mid);
    let admin = srv.client_as("admin@acme.test").await;
    let plans = plans(&srv, &admin).await;
    let (team, business) = (plan_id(&plans, "team"), plan_id(&plans, "business"));
    let seats = sub.seats as i64;

    // Upgrade first (half of 20.00 credited, half of 40.00 charged per seat).
    let up = json(
        post(
            &srv,
            &admin,
            &sub_path(acme.id, "change"),
            json!({ "plan_id": business }),
        )
        .await,
    )
    .await;
    assert_eq!(
        amounts(&up["quote"]),
        vec![-1_000 * seats, 2_000 * seats],
        "{up}"
    );
    assert_eq!(
        up["quote"]["subtotal"].as_i64(),
        Some(1_000 * seats),
        "half a month at 40.00 minus half at 20.00 per seat"
    );

    // Now back down to Team: scheduled, nothing due, the plan stays.
    let invoices_before = invoices_of(&srv, acme.id).len();
    let preview = json(
        post(
            &srv,
            &admin,
            &sub_path(acme.id, "preview"),
            json!({ "plan_id": team }),
        )
        .await,
    )
    .await;
    assert_eq!(
        preview["timing"], "period_end",
        "downgrades default to the period end: {preview}"
    );
    assert_eq!(
        ts(&preview["effective_at"]),
        end,
        "a scheduled downgrade takes effect when the current period ends"
    );
    assert_eq!(
        preview["total"].as_i64(),
        Some(0),
        "nothing is due for a scheduled downgrade"
    );
    assert_eq!(
        preview["lines"].as_array().map(Vec::len),
        Some(0),
        "nothing is charged now, so there are no lines"
    );
    let resp = post(
        &srv,
        &admin,
        &sub_path(acme.id, "change"),
        json!({ "plan_id": team, "proration_at": preview["proration_at"] }),
    )
    .await;
    assert_eq!(
        resp.status(),
        200,
        "confirming a scheduled downgrade succeeds"
    );
    let done = json(resp).await;
    assert!(
        done.get("invoice").is_none(),
        "no invoice for a change that costs nothing: {done}"
    );
    assert_eq!(
        done["subscription"]["plan_id"], business,
        "the plan stays until the period ends"
    );
    assert_eq!(
        done["subscription"]["pending_change"]["plan_id"], team,
        "the answer names the scheduled plan"
    );
    let after = acme_sub(&srv);
    assert_eq!(
        after.plan_id.to_string(),
        business,
        "the stored plan is still Business until the period ends"
    );
    let pending = after.pending_change.expect("the downgrade is scheduled");
    assert_eq!(
        (
            pending.plan_id.to_string(),
            pending.seats,
            pending.effective_at
        ),
        (team.clone(), sub.seats, end),
        "the stored schedule names plan, seats and the period end"
    );
    assert_eq!(
        after.credit_balance, 0,
        "a scheduled downgrade credits nothing"
    );
    assert_eq!(
        invoices_of(&srv, acme.id).len(),
        invoices_before,
        "no invoice was written"
    );
    assert_eq!(
        audits(&srv, "subscription.plan_changed", sub.id.0).len(),
        2,
        "both the upgrade and the scheduled downgrade are audited"
    );

    // Asking for the downgrade now instead credits the difference:
    // 40.00 - 20.00 per seat for half a month.
    let now = json(
        post(
            &srv,
            &admin,
            &sub_path(acme.id, "change"),
            json!({ "plan_id": team, "timing": "now" }),
        )
        .await,
    )
    .await;
    assert_eq!(
        now["quote"]["timing"], "now",
        "timing=now is honoured for a downgrade"
    );
    assert_eq!(
        amounts(&now["quote"]),
        vec![-2_000 * seats, 1_000 * seats],
        "credit half a month of Business, charge half a month of Team"
    );
    assert_eq!(
        now["quote"]["credit_added"].as_i64(),
        Some(1_000 * seats),
        "the net credit goes to the balance"
    );
    let after = acme_sub(&srv);
    assert_eq!(
        after.plan_id.to_string(),
        team,
        "an immediate downgrade switches the plan"
    );
    assert_eq!(after.pending_change, None, "and replaces the scheduled one");
    assert_eq!(
        after.credit_balance,
        1_000 * seats,
        "the balance holds the downgrade's credit"
    );

    // An upgrade cannot be deferred.
    let resp = post(
        &srv,
        &admin,
        &sub_path(acme.id, "preview"),
        json!({ "plan_id": business, "timing": "period_end" }),
    )
    .await;
    expect_error(resp, 422, "timing_not_allowed").await;
    srv.stop().await;
}

#[tokio::test]
async fn seat_changes_are_prorated_and_guarded() {
    let srv = TestServer::start().await;
    let sub = acme_sub(&srv);
    let acme = srv.acme();
    let (start, end) = (sub.current_period_start, sub.current_period_end);
    let period = end.as_second() - start.as_second();
    // An awkward instant so the amounts need rounding: 3 days, 7 h, 13 s in.
    let t = start + SignedDuration::from_secs(3 * DAY + 7 * 3_600 + 13);
    srv.clock.set(t);
    let admin = srv.client_as("admin@acme.test").await;
    let assigned = assigned_seats(&srv, acme.id) as i64;
    let seats = sub.seats as i64;
    let remaining = end.as_second() - t.as_second();

    // Add 3 seats: 3 x 20.00 for the remaining part of the period.
    let add = div_round(3 * 2_000 * remaining, period);
    let before_seq = srv.max_seq();
    let resp = post(
        &srv,
        &admin,
        &sub_path(acme.id, "change"),
        json!({ "seats": seats + 3 }),
    )
    .await;
    assert_eq!(resp.status(), 200, "an admin may add seats");
    let done = json(resp).await;
    assert_eq!(
        amounts(&done["quote"]),
        vec![add],
        "one prorated line for the added seats"
    );
    let tax = div_round(add * sub.tax_rate_bps as i64, 10_000);
    assert_eq!(
        done["quote"]["total"].as_i64(),
        Some(add + tax),
        "the total is the prorated charge plus tax"
    );
    assert_eq!(
        done["invoice"]["total"].as_i64(),
        Some(add + tax),
        "added seats are invoiced now"
    );
    assert_eq!(
        done["subscription"]["seats"].as_i64(),
        Some(seats + 3),
        "the seats are added at once"
    );
    assert_eq!(
        audits(&srv, "subscription.seats_changed", sub.id.0).len(),
        1,
        "seat changes are audited"
    );
    let staff = srv.client_as("admin@portico.test").await;
    let changes = feed(&srv, &staff, before_seq).await;
    assert!(
        feed_has(&changes, "subscription", sub.id),
        "the seat change reaches the feed"
    );
    let event = audits(&srv, "subscription.seats_changed", sub.id.0).remove(0);
    assert!(
        feed_has(&changes, "audit_event", event.id),
        "and so does its audit event, for staff"
    );

    // Remove 4 seats: 4 x 20.00 for the remaining period goes to the credit balance.
    let credit = div_round(4 * 2_000 * remaining, period);
    let invoices_before = invoices_of(&srv, acme.id).len();
    let resp = post(
        &srv,
        &admin,
        &sub_path(acme.id, "change"),
        json!({ "seats": seats - 1 }),
    )
    .await;
    assert_eq!(resp.status(), 200, "an admin may remove free seats");
    let done = json(resp).await;
    assert_eq!(
        amounts(&done["quote"]),
        vec![-credit],
        "one prorated credit line for the removed seats"
    );
    assert_eq!(
        done["quote"]["total"].as_i64(),
        Some(0),
        "nothing is due for a removal"
    );
    assert_eq!(
        done["quote"]["credit_added"].as_i64(),
        Some(credit),
        "the whole credit is added to the balance"
    );
    assert_eq!(
        done["subscription"]["credit_balance"].as_i64(),
        Some(credit),
        "the admin sees the credit"
    );
    assert!(done.get("invoice").is_none(), "a credit is not an invoice");
    assert_eq!(
        invoices_of(&srv, acme.id).len(),
        invoices_before,
        "no invoice for a removal"
    );
    assert_eq!(
        acme_sub(&srv).credit_balance,
        credit,
        "the stored balance holds the credit"
    );
    assert_eq!(
        audits(&srv, "subscription.seats_changed", sub.id.0).len(),
        2,
        "both seat changes are audited"
    );

    // Below the users holding seats, above the plan maximum, below its minimum.
    let fp = srv.fingerprint();
    let resp = post(
        &srv,
        &admin,
        &sub_path(acme.id, "change"),
        json!({ "seats": assigned - 1 }),
    )
    .await;
    let body = expect_error(resp, 422, "seats_below_assigned").await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&assigned.to_string()),
        "the message says how many seats are held: {body}"
    );
    let resp = post(
        &srv,
        &admin,
        &sub_path(acme.id, "change"),
        json!({ "seats": 51 }),
    )
    .await;
    expect_error(resp, 422, "seats_out_of_range").await;
    let resp = post(
        &srv,
        &admin,
        &sub_path(acme.id, "preview"),
        json!({ "seats": 2 }),
    )
    .await;
    expect_error(resp, 422, "seats_out_of_range").await;
    let resp = post(
        &srv,
        &admin,
        &sub_path(acme.id, "change"),
        json!({ "seats": seats - 1 }),
    )
    .await;
    expect_error(resp, 422, "no_change").await;
    let resp = post(&srv, &admin, &sub_path(acme.id, "change"), json!({})).await;
    expect_error(resp, 422, "validation_failed").await;
    assert_eq!(srv.fingerprint(), fp, "refused changes write nothing");

    // The credit pays for the next charge before tax is added.
    srv.state
        .store
        .write(Actor::SYSTEM, t, |w| {
            let mut s: Subscription = portico_portal::store::require(w, sub.id.0)?;
            s.tax_rate_bps = 2_000;
            w.update(&mut s)
        })
        .unwrap();
    let charge = div_round(10 * 2_000 * remaining, period);
    let subtotal = charge - credit;
    assert!(subtotal > 0, "ten seats cost more than four seats' credit");
    let resp = post(
        &srv,
        &admin,
        &sub_path(acme.id, "change"),
        json!({ "seats": seats + 9 }),
    )
    .await;
    let done = json(resp).await;
    assert_eq!(
        amounts(&done["quote"]),
        vec![charge, -credit],
        "the credit is a line of its own: {done}"
    );
    assert_eq!(
        done["quote"]["subtotal"].as_i64(),
        Some(subtotal),
        "the subtotal is the charge less the applied credit"
    );
    assert_eq!(
        done["quote"]["tax"].as_i64(),
        Some(div_round(subtotal * 2_000, 10_000)),
        "20 % tax on what is left after credit"
    );
    assert_eq!(
        done["invoice"]["total"], done["quote"]["total"],
        "the invoice bills exactly the quote"
    );
    assert_eq!(acme_sub(&srv).credit_balance, 0, "the credit is used up");
    srv.stop().await;
}

#[tokio::test]
async fn stale_or_future_proration_instants_are_refused() {
    let srv = TestServer::start().await;
    let acme = srv.acme();
    let sub = acme_sub(&srv);
    let admin = srv.client_as("admin@acme.test").await;
    let preview = json(
        post(
            &srv,
            &admin,
            &sub_path(acme.id, "preview"),
            json!({ "seats": sub.seats + 1 }),
        )
        .await,
    )
    .await;
    let fp = srv.fingerprint();

    srv.clock.advance(SignedDuration::from_secs(15 * 60 + 1));
    let resp = post(
        &srv,
        &admin,
        &sub_path(acme.id, "change"),
        json!({ "seats": sub.seats + 1, "proration_at": preview["proration_at"] }),
    )
    .await;
    let body = expect_error(resp, 422, "validation_failed").await;
    assert_eq!(
        body["error"]["field"], "proration_at",
        "the error names the stale field"
    );

    let future = anchor() + SignedDuration::from_secs(3_600);
    let resp = post(
        &srv,
        &admin,
        &sub_path(acme.id, "change"),
        json!({ "seats": sub.seats + 1, "proration_at": future }),
    )
    .await;
    let body = expect_error(resp, 422, "validation_failed").await;
    assert_eq!(
        body["error"]["field"], "proration_at",
        "a quote from the future is not a quote"
    );

    let resp = post(
        &srv,
        &admin,
        &sub_path(acme.id, "preview"),
        json!({ "seats": sub.seats + 1, "proration_at": anchor() }),
    )
    .await;
    expect_error(resp, 422, "validation_failed").await;
    assert_eq!(
        srv.fingerprint(),
        fp,
        "no refused confirmation charges anything"
    );

    // Exactly 15 minutes old is still fine.
    let fresh = json(
        post(
            &srv,
            &admin,
            &sub_path(acme.id, "preview"),
            json!({ "seats": sub.seats + 1 }),
        )
        .await,
    )
    .await;
    srv.clock.advance(SignedDuration::from_secs(15 * 60));
    let resp = post(
        &srv,
        &admin,
        &sub_path(acme.id, "change"),
        json!({ "seats": sub.seats + 1, "proration_at": fresh["proration_at"] }),
    )
    .await;
    assert_eq!(resp.status(), 200, "a preview is valid for 15 minutes");
    assert_eq!(
        json(resp).await["quote"]["total"],
        fresh["total"],
        "the confirmed charge equals the preview"
    );
    srv.stop().await;
}

#[tokio::test]
async fn members_cannot_change_billing_or_read_invoices() {
    let srv = TestServer::start().await;
    let acme = srv.acme();
    let sub = acme_sub(&srv);
    let member = srv.client_as("member@acme.test").await;
    let plans = plans(&srv, &member).await;
    let fp = srv.fingerprint();
    let resp = post(
        &srv,
        &member,
        &sub_path(acme.id, "change"),
        json!({ "seats": sub.seats + 1 }),
    )
    .await;
    expect_error(resp, 403, "forbidden").await;
    let resp = post(
        &srv,
        &member,
        &sub_path(acme.id, "change"),
        json!({ "plan_id": plan_id(&plans, "business") }),
    )
    .await;
    expect_error(resp, 403, "forbidden").await;
    let resp = post(
        &srv,
        &member,
        &format!("/v1/accounts/{}/users", acme.id),
        json!({ "email": "x@acme.test", "name": "X", "role": "customer_member" }),
    )
    .await;
    expect_error(resp, 403, "forbidden").await;
    let resp = member
        .get(srv.url(&format!("/v1/accounts/{}/invoices", acme.id)))
        .send()
        .await
        .unwrap();
    expect_error(resp, 403, "forbidden").await;
    // Another account is invisible, not forbidden.
    let other = srv.other_account();
    let resp = post(
        &srv,
        &member,
        &sub_path(other.id, "change"),
        json!({ "seats": 3 }),
    )
    .await;
    expect_error(resp, 404, "not_found").await;
    let admin = srv.client_as("admin@acme.test").await;
    let resp = post(
        &srv,
        &admin,
        &sub_path(other.id, "change"),
        json!({ "seats": 3 }),
    )
    .await;
    expect_error(resp, 404, "not_found").await;
    assert_eq!(srv.fingerprint(), fp, "refused requests write nothing");
    // Members see the subscription but not its billing fields.
    let read = json(
        member
            .get(srv.url(&format!("/v1/accounts/{}/subscription", acme.id)))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(
        read.get("seats").is_some() && read.get("credit_balance").is_none(),
        "billing fields are for admins: {read}"
    );
    srv.stop().await;
}

#[tokio::test]
async fn concurrent_invites_fill_the_last_free_seat_exactly_once() {
    let srv = TestServer::start().await;
    let acme = srv.acme();
    let admin = srv.client_as("admin@acme.test").await;
    let assigned = assigned_seats(&srv, acme.id) as u32;
    // Leave exactly one free seat.
    let resp = post(
        &srv,
        &admin,
        &sub_path(acme.id, "change"),
        json!({ "seats": assigned + 1 }),
    )
    .await;
    assert_eq!(resp.status(), 200, "shrinking to one free seat is allowed");
    let before_users = srv
        .records::<User>(&format!("account_id = '{}'", acme.id))
        .len();

    let start = Arc::new(tokio::sync::Barrier::new(10));
    let mut tasks = Vec::new();
    for i in 0..10 {
        let (admin, url, start) = (
            admin.clone(),
            srv.url(&format!("/v1/accounts/{}/users", acme.id)),
            start.clone(),
        );
        tasks.push(tokio::spawn(async move {
            start.wait().await;
            let resp = admin
                .post(url)
                .json(&json!({ "email": format!("racer{i}@acme.test"), "name": format!("Racer {i}"), "role": "customer_member" }))
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            (status, json(resp).await)
        }));
    }
    let mut created = 0;
    for t in tasks {
        let (status, body) = t.await.unwrap();
        match status {
            201 => created += 1,
            409 => assert_eq!(
                body["error"]["code"], "conflict",
                "a full account refuses with conflict: {body}"
            ),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(
        created, 1,
        "one free seat admits exactly one of ten concurrent invites"
    );
    let sub = acme_sub(&srv);
    assert_eq!(
        assigned_seats(&srv, acme.id) as u32,
        sub.seats,
        "every seat is now held, none oversold"
    );
    assert_eq!(
        srv.records::<User>(&format!("account_id = '{}'", acme.id))
            .len(),
        before_users + 1,
        "refused invites leave no user behind"
    );
    let summary = json(
        admin
            .get(srv.url(&format!("/v1/accounts/{}/seats", acme.id)))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(summary["available"].as_u64(), Some(0), "{summary}");

    // A further invite is a conflict with a message saying what to do.
    let resp = post(
        &srv,
        &admin,
        &format!("/v1/accounts/{}/users", acme.id),
        json!({ "email": "late@acme.test", "name": "Late", "role": "customer_member" }),
    )
    .await;
    let body = expect_error(resp, 409, "conflict").await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("add seats"),
        "{body}"
    );
    srv.stop().await;
}

#[tokio::test]
async fn concurrent_seat_requests_never_exceed_the_plan() {
    let srv = TestServer::start().await;
    let acme = srv.acme();
    let admin = srv.client_as("admin@acme.test").await;
    let sub = acme_sub(&srv);
    let invoices_before = invoices_of(&srv, acme.id).len();

    // 30 clients read the seat count, then all ask for one more at once.
    let start = Arc::new(tokio::sync::Barrier::new(30));
    let seats_url = srv.url(&format!("/v1/accounts/{}/seats", acme.id));
    let change_url = srv.url(&sub_path(acme.id, "change"));
    let mut tasks = Vec::new();
    for _ in 0..30 {
        let (admin, seats_url, change_url, start) = (
            admin.clone(),
            seats_url.clone(),
            change_url.clone(),
            start.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let current = json(admin.get(seats_url).send().await.unwrap()).await["seats"]
                .as_u64()
                .unwrap();
            start.wait().await;
            let resp = admin
                .post(change_url)
                .json(&json!({ "seats": current + 1 }))
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            (status, json(resp).await)
        }));
    }
    let mut ok = 0;
    for t in tasks {
        let (status, body) = t.await.unwrap();
        match status {
            200 => ok += 1,
            422 => assert_eq!(
                body["error"]["code"], "no_change",
                "the losers' ask is already met: {body}"
            ),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(
        ok, 1,
        "all asked for the same count; exactly one change applies"
    );
    assert_eq!(
        acme_sub(&srv).seats,
        sub.seats + 1,
        "exactly one seat was added"
    );
    assert_eq!(
        invoices_of(&srv, acme.id).len(),
        invoices_before + 1,
        "one change, one invoice: nobody was charged twice"
    );

    // 30 clients ask for the plan maximum at once, and 30 for one more.
    let mut tasks = Vec::new();
    for i in 0..60 {
        let (admin, change_url) = (admin.clone(), change_url.clone());
        let ask = if i % 2 == 0 { 50 } else { 51 };
        tasks.push(tokio::spawn(async move {
            let resp = admin
                .post(change_url)
                .json(&json!({ "seats": ask }))
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            (ask, status, json(resp).await)
        }));
    }
    let mut ok = 0;
    for t in tasks {
        let (ask, status, body) = t.await.unwrap();
        match (ask, status) {
            (50, 200) => ok += 1,
            (50, 422) => assert_eq!(body["error"]["code"], "no_change", "{body}"),
            (51, 422) => assert_eq!(
                body["error"]["code"], "seats_out_of_range",
                "Team has at most 50 seats: {body}"
            ),
            other => panic!("unexpected {other:?}: {body}"),
        }
    }
    assert_eq!(ok, 1, "exactly one request moves the count to the maximum");
    let after = acme_sub(&srv);
    assert_eq!(after.seats, 50, "seats stop at the plan maximum");
    assert_eq!(
        invoices_of(&srv, acme.id).len(),
        invoices_before + 2,
        "one invoice for each applied increase, none for refused ones"
    );
    assert_eq!(
        audits(&srv, "subscription.seats_changed", sub.id.0).len(),
        2,
        "one audit per applied change"
    );
    srv.stop().await;
}

#[tokio::test]
async fn invites_racing_a_seat_reduction_never_oversell() {
    let srv = TestServer::start().await;
    let acme = srv.acme();
    let admin = srv.client_as("admin@acme.test").await;
    let sub = acme_sub(&srv);
    let assigned = assigned_seats(&srv, acme.id) as u32;
    assert!(sub.seats >= assigned + 2, "Acme starts with free seats");
    let start = Arc::new(tokio::sync::Barrier::new(12));
    let mut tasks = Vec::new();
    for i in 0..12 {
        let (admin, start) = (admin.clone(), start.clone());
        let (url, body) = if i % 3 == 0 {
            // Shrink to exactly the seats held now.
            (
                srv.url(&sub_path(acme.id, "change")),
                json!({ "seats": assigned }),
            )
        } else {
            (
                srv.url(&format!("/v1/accounts/{}/users", acme.id)),
                json!({ "email": format!("mix{i}@acme.test"), "name": "Mix", "role": "customer_member" }),
            )
        };
        tasks.push(tokio::spawn(async move {
            start.wait().await;
            let resp = admin.post(url).json(&body).send().await.unwrap();
            let status = resp.status().as_u16();
            (i % 3 == 0, status, json(resp).await)
        }));
    }
    let (mut invited, mut shrunk) = (0u32, 0u32);
    for t in tasks {
        let (is_shrink, status, body) = t.await.unwrap();
        match (is_shrink, status) {
            (false, 201) => invited += 1,
            (false, 409) => assert_eq!(
                body["error"]["code"], "conflict",
                "a refused invite is a conflict"
            ),
            (true, 200) => shrunk += 1,
            (true, 422) => assert!(
                ["no_change", "seats_below_assigned"]
                    .contains(&body["error"]["code"].as_str().unwrap()),
                "{body}"
            ),
            other => panic!("unexpected {other:?}: {body}"),
        }
    }
    let after = acme_sub(&srv);
    let held = assigned_seats(&srv, acme.id) as u32;
    assert!(
        held <= after.seats,
        "{held} seats held but only {} paid for",
        after.seats
    );
    assert_eq!(
        held,
        assigned + invited,
        "every successful invite holds one seat"
    );
    assert!(shrunk <= 1, "only the first shrink can apply");
    if shrunk == 1 {
        assert_eq!(
            after.seats, assigned,
            "the shrink applied, so no invite can have got in before it"
        );
        assert_eq!(
            invited, 0,
            "once the seats shrink to those held, no invite fits"
        );
    } else {
        assert_eq!(
            after.seats, sub.seats,
            "without a shrink the seat count stays"
        );
        assert_eq!(
            invited,
            sub.seats - assigned,
            "without the shrink every free seat fills"
        );
    }
    srv.stop().await;
}

#[tokio::test]
async fn invite_role_change_and_removal() {
    let srv = TestServer::start().await;
    let acme = srv.acme();
    let admin = srv.client_as("admin@acme.test").await;
    let member = srv.client_as("member@acme.test").await;
    let staff = srv.client_as("admin@portico.test").await;
    let users_path = format!("/v1/accounts/{}/users", acme.id);
    let held = assigned_seats(&srv, acme.id);
    let before_seq = srv.max_seq();

    // Invite: 201, invited status, a seat held from now on, audited.
    let resp = post(
        &srv,
        &admin,
        &users_path,
        json!({ "email": "New.Hire@Acme.test", "name": "New Hire", "role": "customer_member" }),
    )
    .await;
    assert_eq!(resp.status(), 201, "an admin may invite into a free seat");
    let invited = json(resp).await;
    assert_eq!(
        invited["status"], "invited",
        "an invited user has not signed in yet"
    );
    assert_eq!(
        invited["email"], "new.hire@acme.test",
        "emails are stored lowercased"
    );
    let invited_id = invited["id"].as_str().unwrap().to_owned();
    assert_eq!(
        assigned_seats(&srv, acme.id),
        held + 1,
        "the invitation holds a seat"
    );
    let seat = srv.records::<Seat>(&format!("user_id = '{invited_id}'"));
    assert_eq!(seat.len(), 1, "exactly one seat for the invited user");
    let ev = audits(&srv, "user.invited", invited_id.parse().unwrap());
    assert_eq!(ev.len(), 1, "the invite is audited");
    assert_eq!(
        ev[0].detail["role"], "customer_member",
        "the audit records the role invited with"
    );
    let changes = feed(&srv, &admin, before_seq).await;
    assert!(
        feed_has(&changes, "user", &invited_id) && feed_has(&changes, "seat", seat[0].id),
        "the admin's feed shows the new user and seat"
    );
    let changes = feed(&srv, &staff, before_seq).await;
    assert!(
        feed_has(&changes, "audit_event", ev[0].id),
        "staff see the invite's audit event in the feed"
    );

    // The same email again, or a staff role, is refused without a write.
    let fp = srv.fingerprint();
    let resp = post(
        &srv,
        &admin,
        &users_path,
        json!({ "email": "new.hire@acme.test", "name": "Twin", "role": "customer_member" }),
    )
    .await;
    expect_error(resp, 409, "conflict").await;
    let resp = post(
        &srv,
        &admin,
        &users_path,
        json!({ "email": "boss@acme.test", "name": "Boss", "role": "admin" }),
    )
    .await;
    let body = expect_error(resp, 422, "validation_failed").await;
    assert_eq!(
        body["error"]["field"], "role",
        "customers cannot mint staff"
    );
    assert_eq!(srv.fingerprint(), fp, "refused invites write nothing");

    // The only admin can neither step down nor leave.
    let admin_user = user_by_email(&srv, "admin@acme.test");
    let member_user = user_by_email(&srv, "member@acme.test");
    let me_path = format!("{users_path}/{}", admin_user.id);
    let resp = admin
        .patch(srv.url(&me_path))
        .json(&json!({ "role": "customer_member" }))
        .send()
        .await
        .unwrap();
    expect_error(resp, 409, "conflict").await;
    let resp = admin.delete(srv.url(&me_path)).send().await.unwrap();
    expect_error(resp, 409, "conflict").await;
    assert_eq!(
        srv.fingerprint(),
        fp,
        "refused last-admin changes write nothing"
    );

    // Promote the member; audited with from and to.
    let member_path = format!("{users_path}/{}", member_user.id);
    let resp = admin
        .patch(srv.url(&member_path))
        .json(&json!({ "role": "customer_admin" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "an admin may promote a member");
    assert_eq!(
        json(resp).await["role"],
        "customer_admin",
        "the answer shows the new role"
    );
    let ev = audits(&srv, "user.role_changed", member_user.id.0);
    assert_eq!(ev.len(), 1, "a role change is audited");
    let changes = feed(&srv, &staff, before_seq).await;
    assert!(
        feed_has(&changes, "user", member_user.id) && feed_has(&changes, "audit_event", ev[0].id),
        "the role change and its audit reach the feed"
    );
    assert_eq!(
        (ev[0].detail["from"].as_str(), ev[0].detail["to"].as_str()),
        (Some("customer_member"), Some("customer_admin")),
        "the audit records the old and new role"
    );
    // Demote back: there is another admin now.
    let resp = admin
        .patch(srv.url(&member_path))
        .json(&json!({ "role": "customer_member" }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        200,
        "demoting is fine while another admin remains"
    );

    // Remove the member: disabled, seat freed, sessions ended.
    let me = member.get(srv.url("/v1/me")).send().await.unwrap();
    assert_eq!(me.status(), 200, "the member is signed in before removal");
    let before_seq = srv.max_seq();
    let member_seat = srv
        .records::<Seat>(&format!("user_id = '{}'", member_user.id))
        .pop()
        .expect("member holds a seat");
    let resp = admin.delete(srv.url(&member_path)).send().await.unwrap();
    assert_eq!(resp.status(), 204, "an admin may remove a user");
    let resp = member.get(srv.url("/v1/me")).send().await.unwrap();
    expect_error(resp, 401, "unauthenticated").await;
    assert_eq!(
        user_by_email(&srv, "member@acme.test").status,
        UserStatus::Disabled,
        "a removed user is disabled, not deleted, so history keeps its author"
    );
    assert!(
        srv.records::<Seat>(&format!("user_id = '{}'", member_user.id))
            .is_empty(),
        "the seat is freed"
    );
    assert_eq!(assigned_seats(&srv, acme.id), held, "invite +1, removal -1");
    let revoked: i64 = srv
        .state
        .store
        .read(|c| {
            Ok(c.query_row(
                "SELECT count(*) FROM tokens WHERE user_id = ?1 AND revoked_at IS NULL",
                [member_user.id.to_string()],
                |r| r.get(0),
            )?)
        })
        .unwrap();
    assert_eq!(revoked, 0, "every token of the removed user is revoked");
    let resp = srv_login(&srv, "member@acme.test").await;
    expect_error(resp, 401, "unauthenticated").await;
    assert_eq!(
        audits(&srv, "user.removed", member_user.id.0).len(),
        1,
        "removal is audited"
    );
    let changes = feed(&srv, &admin, before_seq).await;
    assert!(
        feed_has(&changes, "user", member_user.id),
        "the disabled user reaches the feed"
    );
    assert!(
        changes.iter().any(|c| c["kind"] == "seat"
            && c["id"] == member_seat.id.to_string()
            && c["op"] == "delete"),
        "the freed seat reaches the feed as a tombstone: {changes:?}"
    );
    let resp = admin.delete(srv.url(&member_path)).send().await.unwrap();
    expect_error(resp, 404, "not_found").await;

    // Users of another account, and staff, are not Acme's to manage.
    let other_user = srv
        .records::<User>(&format!("account_id = '{}'", srv.other_account().id))
        .remove(0);
    let resp = admin
        .delete(srv.url(&format!("{users_path}/{}", other_user.id)))
        .send()
        .await
        .unwrap();
    expect_error(resp, 404, "not_found").await;
    srv.stop().await;
}

#[tokio::test]
async fn an_invited_admin_does_not_count_as_the_remaining_admin() {
    let srv = TestServer::start().await;
    let acme = srv.acme();
    let admin = srv.client_as("admin@acme.test").await;
    let users_path = format!("/v1/accounts/{}/users", acme.id);
    let resp = post(
        &srv,
        &admin,
        &users_path,
        json!({ "email": "next.admin@acme.test", "name": "Next Admin", "role": "customer_admin" }),
    )
    .await;
    assert_eq!(resp.status(), 201, "inviting an admin is allowed");
    // The invitee cannot sign in yet: if the only active admin stepped down
    // or left, nobody could administer the account.
    let fp = srv.fingerprint();
    let admin_user = user_by_email(&srv, "admin@acme.test");
    let me_path = format!("{users_path}/{}", admin_user.id);
    let resp = admin
        .patch(srv.url(&me_path))
        .json(&json!({ "role": "customer_member" }))
        .send()
        .await
        .unwrap();
    expect_error(resp, 409, "conflict").await;
    let resp = admin.delete(srv.url(&me_path)).send().await.unwrap();
    expect_error(resp, 409, "conflict").await;
    assert_eq!(srv.fingerprint(), fp, "the refused changes write nothing");
    srv.stop().await;
}

async fn srv_login(srv: &TestServer, email: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(srv.url("/v1/auth/login"))
        .json(&json!({ "email": email, "password": portico_portal::seed::DEMO_PASSWORD }))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn invoices_list_and_download() {
    let srv = TestServer::start().await;
    let acme = srv.acme();
    let admin = srv.client_as("admin@acme.test").await;
    let stored = invoices_of(&srv, acme.id);
    assert!(!stored.is_empty(), "Acme has invoices");

    let resp = admin
        .get(srv.url(&format!("/v1/accounts/{}/invoices", acme.id)))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "an admin may list invoices");
    let page = json(resp).await;
    let items = page["items"].as_array().unwrap();
    assert_eq!(
        items.len(),
        stored.len(),
        "every invoice of the account is listed"
    );
    let ids: Vec<&str> = items.iter().map(|i| i["id"].as_str().unwrap()).collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(ids, sorted, "newest first");

    // Paging with limit=1 walks every invoice once.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let q = match &cursor {
            Some(c) => format!("?limit=1&cursor={c}"),
            None => "?limit=1".into(),
        };
        let page = json(
            admin
                .get(srv.url(&format!("/v1/accounts/{}/invoices{q}", acme.id)))
                .send()
                .await
                .unwrap(),
        )
        .await;
        for i in page["items"].as_array().unwrap() {
            seen.push(i["id"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
        assert!(seen.len() <= stored.len(), "paging terminates");
    }
    assert_eq!(seen, ids, "pages add up to the full list");

    let inv = &stored[stored.len() - 1];
    let resp = admin
        .get(srv.url(&format!("/v1/accounts/{}/invoices/{}", acme.id, inv.id)))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "an admin may read an invoice");
    let one = json(resp).await;
    assert_eq!(
        one["number"], inv.number,
        "the invoice read is the stored one"
    );
    assert_eq!(
        one["total"].as_i64(),
        Some(inv.total),
        "with the stored total"
    );

    let resp = admin
        .get(srv.url(&format!(
            "/v1/accounts/{}/invoices/{}/document",
            acme.id, inv.id
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        200,
        "an admin may download the invoice document"
    );
    let disposition = resp.headers()[reqwest::header::CONTENT_DISPOSITION]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        disposition.starts_with("attachment"),
        "the document downloads: {disposition}"
    );
    assert!(
        disposition.contains(&inv.number),
        "the file is named after the invoice: {disposition}"
    );
    let ctype = resp.headers()[reqwest::header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(ctype.starts_with("text/html"), "{ctype}");
    let html = resp.text().await.unwrap();
    let total = format!(
        "{} {}.{:02}",
        inv.currency,
        inv.total / 100,
        inv.total % 100
    );
    assert!(
        html.contains(&inv.number),
        "the document shows the invoice number"
    );
    assert!(
        html.contains(&format!("Total {total}")),
        "the document shows the total {total}"
    );
    assert!(html.contains(&acme.name), "and who is billed");

    // Another account's invoice through Acme's path looks missing.
    let other = invoices_of(&srv, srv.other_account().id).remove(0);
    let resp = admin
        .get(srv.url(&format!(
            "/v1/accounts/{}/invoices/{}/document",
            acme.id, other.id
        )))
        .send()
        .await
        .unwrap();
    expect_error(resp, 404, "not_found").await;
    let resp = admin
        .get(srv.url(&format!(
            "/v1/accounts/{}/invoices/{}",
            other.account_id, other.id
        )))
        .send()
        .await
        .unwrap();
    expect_error(resp, 404, "not_found").await;
    srv.stop().await;
}

#[tokio::test]
async fn usage_shows_used_against_limits() {
    let srv = TestServer::start().await;
    let acme = srv.acme();
    // Put one meter over its limit and one exactly at it.
    let meters = srv.records::<UsageMeter>(&format!("account_id = '{}'", acme.id));
    assert!(meters.len() >= 2, "Acme has metered usage");
    srv.state
        .store
        .write(Actor::SYSTEM, anchor(), |w| {
            for (i, m) in meters.iter().enumerate() {
                let mut m = m.clone();
                let limit = m.limit.expect("Team meters are limited");
                m.used = if i == 0 { limit } else { limit + limit / 50 };
                w.update(&mut m)?;
            }
            Ok(())
        })
        .unwrap();
    let member = srv.client_as("member@acme.test").await;
    let resp = member
        .get(srv.url(&format!("/v1/accounts/{}/usage", acme.id)))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "every user of the account sees usage");
    let lines = json(resp).await;
    let lines = lines.as_array().unwrap();
    assert_eq!(lines.len(), meters.len(), "one usage line per meter");
    for m in &meters {
        let line = lines
            .iter()
            .find(|l| l["meter"] == m.meter.as_str())
            .expect("each meter is shown");
        let limit = m.limit.unwrap();
        let used = line["used"].as_u64().unwrap();
        assert_eq!(
            line["limit"].as_u64(),
            Some(limit),
            "the limit comes from the plan's allowance"
        );
        assert_eq!(
            line["over_limit"].as_bool(),
            Some(used > limit),
            "over_limit means strictly above the limit: {line}"
        );
        assert_eq!(
            line["percent"].as_u64(),
            Some(used * 100 / limit),
            "percent is used/limit rounded down"
        );
    }
    let at = lines
        .iter()
        .find(|l| l["meter"] == meters[0].meter.as_str())
        .unwrap();
    assert_eq!(
        (at["percent"].as_u64(), at["over_limit"].as_bool()),
        (Some(100), Some(false)),
        "at the limit is not over it"
    );
    let over = lines
        .iter()
        .find(|l| l["meter"] == meters[1].meter.as_str())
        .unwrap();
    assert_eq!(
        (over["percent"].as_u64(), over["over_limit"].as_bool()),
        (Some(102), Some(true)),
        "2 % over the limit is over it"
    );

    let summary = json(
        member
            .get(srv.url(&format!("/v1/accounts/{}/seats", acme.id)))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let sub = acme_sub(&srv);
    let held = assigned_seats(&srv, acme.id) as u64;
    assert_eq!(
        summary["seats"].as_u64(),
        Some(sub.seats as u64),
        "seats paid for"
    );
    assert_eq!(
        summary["assigned"].as_u64(),
        Some(held),
        "seats held by users"
    );
    assert_eq!(
        summary["available"].as_u64(),
        Some(sub.seats as u64 - held),
        "free seats are paid minus held"
    );
    assert_eq!(
        (summary["min_seats"].as_u64(), summary["max_seats"].as_u64()),
        (Some(3), Some(50)),
        "Team allows 3 to 50 seats"
    );
    srv.stop().await;
}
