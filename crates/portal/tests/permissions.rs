//! The permission matrix, over the real HTTP API and the change feed.
//!
//! For each of the six demo roles and every record kind, what a viewer
//! receives is checked against the model's visibility table (`R::FIELDS`) and
//! against the product's row rules, which are written out again here
//! ([`hidden_because`]) rather than borrowed from `model::policy`, so a
//! mistake in the policy cannot hide itself. Customers never get staff or
//! internal fields, another account's rows, internal notes, unapproved or
//! internal articles, teams, staff users or the audit trail; members get no
//! invoices. Staff must get every field, so the checks fail in both
//! directions. Another account's ids answer `404 not_found` for reads and
//! writes alike; refused actions answer `403 forbidden`; neither writes
//! anything.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::*;
use portico_model::*;
use portico_portal::store::Actor;
use reqwest::{Client, Method};
use serde_json::{Map, Value, json};

/// The demo sign-ins, one per role.
const SIGN_INS: [(Role, &str); 6] = [
    (Role::CustomerAdmin, "admin@acme.test"),
    (Role::CustomerMember, "member@acme.test"),
    (Role::Agent, "agent@portico.test"),
    (Role::Csm, "csm@portico.test"),
    (Role::Lead, "lead@portico.test"),
    (Role::Admin, "admin@portico.test"),
];

/// A signed-in viewer and what the expected answers depend on.
struct Who {
    role: Role,
    email: &'static str,
    user_id: UserId,
    /// Acme for customers, `None` for staff.
    account: Option<AccountId>,
    /// The plan code of the customer's account (scopes knowledge).
    plan: Option<String>,
    client: Client,
}

impl Who {
    fn is_staff(&self) -> bool {
        self.role.is_staff()
    }

    fn label(&self) -> String {
        format!("{} ({})", self.role.as_str(), self.email)
    }
}

async fn sign_in_all(srv: &TestServer) -> Vec<Who> {
    let acme = srv.acme().id;
    let plan = acme_plan(srv).code;
    let mut out = Vec::new();
    for (role, email) in SIGN_INS {
        let user = srv
            .records::<User>(&format!("email = '{email}'"))
            .pop()
            .expect("every demo sign-in is seeded");
        assert_eq!(user.role, role, "{email} is the demo {role:?}");
        out.push(Who {
            role,
            email,
            user_id: user.id,
            account: role.is_customer().then_some(acme),
            plan: role.is_customer().then(|| plan.clone()),
            client: srv.client_as(email).await,
        });
    }
    out
}

fn who(all: &[Who], role: Role) -> &Who {
    all.iter()
        .find(|w| w.role == role)
        .expect("every role signed in")
}

fn acme_subscription(srv: &TestServer) -> Subscription {
    srv.records::<Subscription>(&format!("account_id = '{}'", srv.acme().id))
        .pop()
        .expect("Acme has a subscription")
}

fn acme_plan(srv: &TestServer) -> Plan {
    let sub = acme_subscription(srv);
    srv.records::<Plan>(&format!("id = '{}'", sub.plan_id))
        .pop()
        .expect("the subscription's plan exists")
}

// ---------------------------------------------------------------------------
// The rules, stated independently of the server's policy code.
// ---------------------------------------------------------------------------

/// The visibility table of a kind, as declared in the model.
fn fields(kind: Kind) -> &'static [(&'static str, Visibility)] {
    match kind {
        Kind::Account => Account::FIELDS,
        Kind::Workspace => Workspace::FIELDS,
        Kind::Plan => Plan::FIELDS,
        Kind::Subscription => Subscription::FIELDS,
        Kind::Seat => Seat::FIELDS,
        Kind::Invoice => Invoice::FIELDS,
        Kind::UsageMeter => UsageMeter::FIELDS,
        Kind::UsageRecord => UsageRecord::FIELDS,
        Kind::User => User::FIELDS,
        Kind::Team => Team::FIELDS,
        Kind::Request => Request::FIELDS,
        Kind::Conversation => Conversation::FIELDS,
        Kind::Message => Message::FIELDS,
        Kind::Article => Article::FIELDS,
        Kind::ReleaseNote => ReleaseNote::FIELDS,
        Kind::CommunityPost => CommunityPost::FIELDS,
        Kind::OnboardingPath => OnboardingPath::FIELDS,
        Kind::OnboardingProgress => OnboardingProgress::FIELDS,
        Kind::AuditEvent => AuditEvent::FIELDS,
        Kind::RoutingRule => RoutingRule::FIELDS,
        Kind::SlaPolicy => SlaPolicy::FIELDS,
        Kind::Automation => Automation::FIELDS,
        Kind::Alert => Alert::FIELDS,
        Kind::Draft => Draft::FIELDS,
        Kind::ContentGap => ContentGap::FIELDS,
        Kind::SavedReply => SavedReply::FIELDS,
    }
}

/// The account a stored row belongs to: an account is its own, other rows
/// name theirs in `account_id`; global rows (plans, knowledge, teams, staff
/// users) have none.
fn owner_of(kind: Kind, stored: &Value) -> Option<String> {
    let v = if kind == Kind::Account {
        &stored["id"]
    } else {
        stored.get("account_id").unwrap_or(&Value::Null)
    };
    v.as_str().map(str::to_owned)
}

fn account_str(a: Option<AccountId>) -> Option<String> {
    a.map(|a| a.to_string())
}

/// Why `who` must not receive this stored row at all, or `None` if they may.
fn hidden_because(kind: Kind, stored: &Value, who: &Who) -> Option<String> {
    if kind == Kind::SavedReply
        && who.is_staff()
        && stored["owner_id"]
            .as_str()
            .is_some_and(|o| o != who.user_id.to_string())
    {
        return Some("a personal saved reply is its owner's only".into());
    }
    if who.is_staff() {
        return None;
    }
    let owner = owner_of(kind, stored);
    let own = owner.is_some() && owner == account_str(who.account);
    let plan_ok = || {
        let plans = stored["plans"]
            .as_array()
            .expect("knowledge rows list plans");
        plans.is_empty() || plans.iter().any(|p| p.as_str() == who.plan.as_deref())
    };
    let why = match kind {
        Kind::Team => "teams are the staff directory",
        Kind::AuditEvent => "the audit trail is for staff only",
        Kind::RoutingRule | Kind::SlaPolicy | Kind::Automation => "work rules are for staff only",
        Kind::Alert => "alerts are for staff only",
        Kind::Draft => "AI drafts are reviewed by staff before anything is sent",
        Kind::ContentGap => "content gaps are for staff only",
        Kind::SavedReply => "saved replies are for staff only",
        Kind::Plan | Kind::CommunityPost => return None,
        Kind::Article if stored["state"] != "approved" => {
            "drafts, articles in review and archived articles stay with staff"
        }
        Kind::Article if stored["audience"] == "internal" => "internal articles stay with staff",
        Kind::ReleaseNote if stored["published"] != true => {
            "unpublished release notes stay with staff"
        }
        Kind::Article | Kind::ReleaseNote | Kind::OnboardingPath if !plan_ok() => {
            "it is for plans other than the customer's"
        }
        Kind::Article | Kind::ReleaseNote | Kind::OnboardingPath => return None,
        Kind::User if owner.is_none() => "staff users are not in a customer's directory",
        _ if !own => "it belongs to another account",
        Kind::Invoice if who.role != Role::CustomerAdmin => {
            "billing is for account administrators; members see no invoices"
        }
        Kind::Message if stored["kind"] == "internal_note" => {
            "internal notes never reach customers"
        }
        _ => return None,
    };
    Some(why.to_owned())
}

/// Fields that must never reach a customer (admin-only ones: never a member),
/// written out again so that reclassifying one in `FIELDS` cannot leak it
/// without this test noticing.
const NEVER_FOR_CUSTOMERS: &[(Kind, &[&str])] = &[
    (
        Kind::Account,
        &[
            "key_account",
            "lifecycle_stage",
            "health_score",
            "mrr",
            "notes",
        ],
    ),
    (
        Kind::User,
        &["team_ids", "capacity", "away", "last_seen_at", "online"],
    ),
    (Kind::Request, &["assignee_id", "team_id", "internal_note"]),
    (
        Kind::Conversation,
        &[
            "snoozed_until",
            "priority",
            "assignee_id",
            "team_id",
            "tags",
            "sla_policy_id",
            "sla",
            "sla_next_check",
        ],
    ),
    (Kind::Message, &["mentions"]),
    (Kind::Article, &["state", "author_id"]),
    (Kind::CommunityPost, &["account_id"]),
];
const NEVER_FOR_MEMBERS: &[(Kind, &[&str])] = &[
    (
        Kind::Subscription,
        &["tax_rate_bps", "credit_balance", "billing_email"],
    ),
    (
        Kind::Invoice,
        &["number", "lines", "subtotal", "tax", "total", "amount_due"],
    ),
];

/// May `who` read a field of `class` on this stored row (the row being visible)?
fn may_read_field(class: Visibility, kind: Kind, stored: &Value, who: &Who) -> bool {
    if who.is_staff() {
        return true;
    }
    let owner = owner_of(kind, stored);
    let own = owner.is_none() || owner == account_str(who.account);
    match class {
        Visibility::Public => true,
        Visibility::Customer => own,
        Visibility::CustomerAdmin => own && who.role == Role::CustomerAdmin,
        Visibility::Staff | Visibility::Internal => false,
    }
}

/// The check every received row goes through: `who` may receive the row at
/// all, every key in it is a field the model's FIELDS table grants `who`, it
/// carries the stored value, and no granted field is missing (so a policy
/// that hides too much fails as loudly as one that leaks).
///
/// `stored` is the full record the row was shaped from (the table row for
/// HTTP answers, the change-log row for the feed).
fn assert_row_allowed(kind: Kind, row: &Map<String, Value>, stored: &Value, who: &Who, at: &str) {
    let me = who.label();
    let id = &stored["id"];
    assert_eq!(
        row.get("id"),
        Some(id),
        "{at}: {me} got a {kind:?} row without its id; every row carries its Public id"
    );
    if let Some(why) = hidden_because(kind, stored, who) {
        panic!("{at}: {me} received {kind:?} {id} although {why}: {row:?}");
    }
    if !who.is_staff() {
        let acme = account_str(who.account).map(Value::String);
        if let Some(a) = row.get("account_id") {
            assert_eq!(
                Some(a),
                acme.as_ref(),
                "{at}: {me} received a {kind:?} row of account {a}; customers only ever see their own account's rows"
            );
        }
        if kind == Kind::Account {
            assert_eq!(
                Some(id),
                acme.as_ref(),
                "{at}: {me} received another account; an account row's own id is its account"
            );
        }
    }
    let mut never: Vec<&str> = Vec::new();
    if !who.is_staff() {
        never.extend(
            NEVER_FOR_CUSTOMERS
                .iter()
                .filter(|(k, _)| *k == kind)
                .flat_map(|(_, f)| f.iter()),
        );
    }
    if who.role == Role::CustomerMember {
        never.extend(
            NEVER_FOR_MEMBERS
                .iter()
                .filter(|(k, _)| *k == kind)
                .flat_map(|(_, f)| f.iter()),
        );
    }
    for key in never {
        assert!(
            !row.contains_key(key),
            "{at}: {me} received {kind:?}.{key} on {id}; it is staff-only (or admin-only) by the product's rules, \
             whatever class FIELDS gives it now"
        );
    }
    let table = fields(kind);
    for (key, value) in row {
        let Some((_, class)) = table.iter().find(|(name, _)| name == key) else {
            panic!(
                "{at}: {me} received {kind:?}.{key}, which has no visibility class in {kind:?}::FIELDS; \
                 the policy must drop fields it does not know (fail closed)"
            );
        };
        assert!(
            may_read_field(*class, kind, stored, who),
            "{at}: {me} received {kind:?}.{key} of class {class:?} on {kind:?} {id}; {}",
            match class {
                Visibility::Staff | Visibility::Internal =>
                    "staff and internal fields never reach customers",
                Visibility::CustomerAdmin =>
                    "billing fields are for the account's administrators only",
                _ => "customer fields are for the row's own account only",
            }
        );
        assert_eq!(
            Some(value),
            stored.get(key),
            "{at}: {kind:?}.{key} of {id} must be the stored value, as shaped for {me}"
        );
    }
    for (key, class) in table {
        if may_read_field(*class, kind, stored, who) {
            assert!(
                row.contains_key(*key),
                "{at}: {me} must receive {kind:?}.{key} (class {class:?}) on {id}: the visibility table grants it, \
                 so its absence means the policy hides too much"
            );
        }
    }
}

// ---------------------------------------------------------------------------
// Database truth.
// ---------------------------------------------------------------------------

/// Stored rows of a kind as JSON.
fn stored_rows(srv: &TestServer, kind: Kind, sql_where: &str) -> Vec<Value> {
    let sql = format!(
        "SELECT data FROM {} WHERE {sql_where} ORDER BY id",
        kind.table()
    );
    srv.state
        .store
        .read(|c| {
            let mut stmt = c.prepare(&sql)?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
            let mut out = Vec::new();
            for data in rows {
                out.push(serde_json::from_str(&data?).expect("stored rows are JSON"));
            }
            Ok(out)
        })
        .unwrap()
}

fn stored(srv: &TestServer, kind: Kind, id: &Value) -> Value {
    let id = id
        .as_str()
        .unwrap_or_else(|| panic!("{kind:?} id must be a string, got {id}"));
    stored_rows(srv, kind, &format!("id = '{id}'"))
        .pop()
        .unwrap_or_else(|| panic!("{kind:?} {id} in an answer must exist in the store"))
}

/// Ids of the stored rows of `kind` matching `sql_where` that `who` may see.
fn expected_ids(srv: &TestServer, kind: Kind, sql_where: &str, who: &Who) -> BTreeSet<String> {
    stored_rows(srv, kind, sql_where)
        .into_iter()
        .filter(|r| hidden_because(kind, r, who).is_none())
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect()
}

struct Logged {
    kind: Kind,
    id: String,
    op: String,
    account: Option<String>,
    row: Option<Value>,
}

/// The whole change log, unredacted, by seq.
fn change_log(srv: &TestServer) -> BTreeMap<i64, Logged> {
    srv.state
        .store
        .read(|c| {
            let mut stmt = c.prepare(
                "SELECT seq, kind, entity_id, op, account_id, row FROM change_log ORDER BY seq",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, Option<String>>(4)?,
                    r.get::<_, Option<String>>(5)?,
                ))
            })?;
            let mut out = BTreeMap::new();
            for row in rows {
                let (seq, kind, id, op, account, data) = row?;
                out.insert(
                    seq,
                    Logged {
                        kind: Kind::parse(&kind).expect("change log kinds are known"),
                        id,
                        op,
                        account,
                        row: data.map(|d| serde_json::from_str(&d).expect("change rows are JSON")),
                    },
                );
            }
            Ok(out)
        })
        .unwrap()
}

// ---------------------------------------------------------------------------
// HTTP helpers.
// ---------------------------------------------------------------------------

async fn call(
    srv: &TestServer,
    who: &Who,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> reqwest::Response {
    let mut req = who.client.request(method, srv.url(path));
    if let Some(b) = body {
        req = req.json(b);
    }
    req.send().await.unwrap()
}

/// A GET that must succeed; its JSON body.
async fn get_ok(srv: &TestServer, who: &Who, path: &str) -> Value {
    let resp = call(srv, who, Method::GET, path, None).await;
    let status = resp.status();
    let body = resp.text().await.unwrap();
    assert_eq!(status, 200, "{} may read GET {path}: {body}", who.label());
    serde_json::from_str(&body).unwrap_or_else(|_| panic!("GET {path} answers JSON: {body}"))
}

/// Every item of a paginated list, following `next_cursor`, `limit` at a time.
///
/// Cursors are opaque but only base64: each must name only rows the viewer
/// has already received, never a hidden row (an internal note's id, say).
async fn get_list(
    srv: &TestServer,
    who: &Who,
    path: &str,
    limit: usize,
) -> Vec<Map<String, Value>> {
    let sep = if path.contains('?') { '&' } else { '?' };
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..500 {
        let mut url = format!("{path}{sep}limit={limit}");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let page = get_ok(srv, who, &url).await;
        let batch = page["items"]
            .as_array()
            .unwrap_or_else(|| panic!("GET {url} answers a page with items: {page}"));
        items.extend(
            batch
                .iter()
                .map(|v| v.as_object().expect("list items are objects").clone()),
        );
        match page.get("next_cursor").and_then(Value::as_str) {
            Some(next) => {
                let raw = URL_SAFE_NO_PAD
                    .decode(next)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .unwrap_or_default();
                for part in raw.split(':').filter(|p| p.parse::<uuid::Uuid>().is_ok()) {
                    assert!(
                        items.iter().any(|r| r["id"] == part),
                        "GET {url} for {}: the cursor names {part}, a row the viewer did not receive; \
                         a cursor must not reveal hidden rows",
                        who.label()
                    );
                }
                cursor = Some(next.to_owned());
            }
            None => return items,
        }
    }
    panic!("GET {path} kept paging past 500 pages")
}

/// Checks one record from an HTTP answer against its stored row.
fn check_http_row(srv: &TestServer, kind: Kind, row: &Map<String, Value>, who: &Who, at: &str) {
    let id = row
        .get("id")
        .unwrap_or_else(|| panic!("{at}: every {kind:?} row carries its id: {row:?}"));
    let truth = stored(srv, kind, id);
    assert_row_allowed(kind, row, &truth, who, at);
}

/// Checks a list answer: each row, and that the ids are exactly those `who`
/// may see among the stored rows matching `sql_where` (nothing leaked,
/// nothing withheld).
async fn check_list(
    srv: &TestServer,
    who: &Who,
    path: &str,
    kind: Kind,
    sql_where: &str,
) -> Vec<Map<String, Value>> {
    let items = get_list(srv, who, path, 200).await;
    let at = format!("GET {path}");
    for row in &items {
        check_http_row(srv, kind, row, who, &at);
    }
    let got: BTreeSet<String> = items
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        got.len(),
        items.len(),
        "{at}: a list never repeats a row across pages"
    );
    let want = expected_ids(srv, kind, sql_where, who);
    assert_eq!(
        got,
        want,
        "{at} for {}: the list must hold exactly the {kind:?} rows the viewer may see",
        who.label()
    );
    // One row per page: same rows, and every row fetched becomes a cursor,
    // so a cursor naming a hidden row cannot slip through.
    let paged: BTreeSet<String> = get_list(srv, who, path, 1)
        .await
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        paged,
        want,
        "{at} for {}: paging one at a time must give the same rows, hiding none and leaking none",
        who.label()
    );
    items
}

/// A single-record GET: the row is checked and returned.
async fn check_one(srv: &TestServer, who: &Who, path: &str, kind: Kind) -> Map<String, Value> {
    let body = get_ok(srv, who, path).await;
    let row = body
        .as_object()
        .unwrap_or_else(|| panic!("GET {path} answers an object: {body}"))
        .clone();
    check_http_row(srv, kind, &row, who, &format!("GET {path}"));
    row
}

/// Asserts that `keys` are present when the viewer `may` see them and absent
/// otherwise, with the reason.
fn assert_presence(row: &Map<String, Value>, keys: &[&str], may: bool, who: &Who, what: &str) {
    for key in keys {
        assert_eq!(
            row.contains_key(*key),
            may,
            "{what}.{key} for {}: {}",
            who.label(),
            if may {
                "must be present; this viewer is entitled to it"
            } else {
                "must be absent; this viewer is not entitled to it"
            }
        );
    }
}

// ---------------------------------------------------------------------------
// Fixtures written before the reads, so every kind of interesting row exists.
// ---------------------------------------------------------------------------

struct Fixtures {
    conversation: ConversationId,
    request: RequestId,
    invoice: InvoiceId,
    draft_article: ArticleId,
}

/// Adds an Acme request with an internal note and an Acme conversation with
/// an internal note, through the API (so the change feed has them too).
async fn acme_fixtures(srv: &TestServer, all: &[Who]) -> Fixtures {
    let acme = srv.acme().id;
    let member = who(all, Role::CustomerMember);
    let agent = who(all, Role::Agent);

    let resp = call(
        srv,
        member,
        Method::POST,
        "/v1/requests",
        Some(&json!({ "kind": "bug", "title": "Export fails", "body": "Since Monday." })),
    )
    .await;
    assert_eq!(resp.status(), 201, "a member may open a request");
    let request: RequestId = json(resp).await["id"].as_str().unwrap().parse().unwrap();
    let resp = call(
        srv,
        agent,
        Method::PATCH,
        &format!("/v1/requests/{request}"),
        Some(&json!({
            "status": "in_progress",
            "assignee_id": agent.user_id,
            "internal_note": "Same root cause as the renewal escalation.",
        })),
    )
    .await;
    assert_eq!(resp.status(), 200, "an agent may triage a request");

    if srv
        .records::<Conversation>(&format!("account_id = '{acme}'"))
        .is_empty()
    {
        let body = json!({ "subject": "Export", "body": "The export fails." });
        let resp = call(srv, member, Method::POST, "/v1/conversations", Some(&body)).await;
        assert_eq!(resp.status(), 201, "a member may open a conversation");
    }
    let conversation = srv
        .records::<Conversation>(&format!("account_id = '{acme}'"))
        .remove(0)
        .id;
    let resp = call(
        srv,
        agent,
        Method::POST,
        &format!("/v1/conversations/{conversation}/messages"),
        Some(&json!({ "body": "Renewal risk, keep an eye on this.", "internal": true })),
    )
    .await;
    assert_eq!(resp.status(), 201, "an agent may post an internal note");
    let resp = call(
        srv,
        agent,
        Method::PATCH,
        &format!("/v1/conversations/{conversation}"),
        Some(&json!({ "add_tags": ["renewal"], "assignee_id": agent.user_id })),
    )
    .await;
    assert_eq!(resp.status(), 200, "an agent may triage a conversation");

    let invoice = srv
        .records::<Invoice>(&format!("account_id = '{acme}'"))
        .remove(0)
        .id;
    let draft_article = srv
        .records::<Article>("data ->> '$.state' = 'draft'")
        .remove(0)
        .id;
    Fixtures {
        conversation,
        request,
        invoice,
        draft_article,
    }
}

/// Writes the kinds the demo seed does not (workspaces, usage records,
/// community posts, onboarding progress) for Acme and another account, plan-
/// scoped knowledge, and a deletion on each account, so the feed test covers
/// every kind and tombstones.
fn rare_kinds(srv: &TestServer) {
    let accounts = [srv.acme().id, srv.other_account().id];
    let path = srv.records::<OnboardingPath>("1 = 1").remove(0).id;
    srv.state
        .store
        .write(Actor::SYSTEM, anchor(), |w| {
            let at = w.at();
            for (i, account_id) in accounts.into_iter().enumerate() {
                w.insert(&mut Workspace {
                    id: w.new_id(),
                    account_id,
                    name: "Main".into(),
                    slug: format!("main-{i}"),
                    version: 0,
                    created_at: at,
                    updated_at: at,
                })?;
                let mut usage = UsageRecord {
                    id: w.new_id(),
                    account_id,
                    meter: "api_calls".into(),
                    quantity: 10,
                    recorded_at: at,
                    version: 0,
                    created_at: at,
                    updated_at: at,
                };
                w.insert(&mut usage.clone())?;
                usage.id = w.new_id();
                w.insert(&mut usage)?;
                w.delete(&usage)?;
                w.insert(&mut CommunityPost {
                    id: w.new_id(),
                    account_id: Some(account_id),
                    author_id: None,
                    by_staff: false,
                    verified: false,
                    author_name: "Pat".into(),
                    title: "Tips for exports".into(),
                    body: "Schedule them at night.".into(),
                    product_area: "reporting".into(),
                    parent_id: None,
                    accepted: false,
                    votes: 3,
                    version: 0,
                    created_at: at,
                    updated_at: at,
                })?;
                let csm: User = portico_portal::store::query(
                    w,
                    "SELECT data FROM users WHERE data ->> '$.role' = 'csm' LIMIT 1",
                    [],
                )?
                .remove(0);
                w.insert(&mut Alert {
                    id: w.new_id(),
                    account_id: Some(account_id),
                    recipient_id: csm.id,
                    kind: AlertKind::Notification,
                    title: "Key account needs a call".into(),
                    body: "Renewal risk".into(),
                    conversation_id: None,
                    request_id: None,
                    source: "test".into(),
                    read: false,
                    version: 0,
                    created_at: at,
                    updated_at: at,
                })?;
                w.insert(&mut SavedReply {
                    id: w.new_id(),
                    title: "CSM's own sign-off".into(),
                    body: "Talk soon, {{agent.first_name}}".into(),
                    owner_id: Some(csm.id),
                    version: 0,
                    created_at: at,
                    updated_at: at,
                })?;
                w.insert(&mut OnboardingProgress {
                    id: w.new_id(),
                    account_id,
                    path_id: path,
                    completed_steps: vec!["invite_team".into()],
                    steps: vec![],
                    version: 0,
                    created_at: at,
                    updated_at: at,
                })?;
                let message: Message = portico_portal::store::query(
                    w,
                    "SELECT data FROM messages WHERE account_id = ?1 AND data ->> '$.kind' = 'customer' LIMIT 1",
                    [account_id.to_string()],
                )?
                .remove(0);
                w.insert(&mut Draft {
                    id: w.new_id(),
                    account_id,
                    conversation_id: message.conversation_id,
                    message_id: message.id,
                    body: "Here is how to export.".into(),
                    sources: vec![],
                    facts: vec!["seats".into()],
                    actions: vec![],
                    composer: "extractive".into(),
                    note: None,
                    confidence: 80,
                    escalated: false,
                    state: DraftState::Pending,
                    reviewer_id: None,
                    sent_message_id: None,
                    version: 0,
                    created_at: at,
                    updated_at: at,
                })?;
            }
            w.insert(&mut ContentGap {
                id: w.new_id(),
                question: "Can I pay in seashells?".into(),
                key: "pai seashel".into(),
                examples: vec!["Can I pay in seashells?".into()],
                count: 2,
                product_area: "billing".into(),
                plans: vec!["team".into()],
                last_asked_at: at,
                resolved: false,
                version: 0,
                created_at: at,
                updated_at: at,
            })?;
            for (plans, published) in [
                (vec!["team"], true),
                (vec!["enterprise"], true),
                (vec![], false),
            ] {
                w.insert(&mut ReleaseNote {
                    id: w.new_id(),
                    title: format!("Release for {plans:?}"),
                    body: "Notes.".into(),
                    version_tag: "5.1".into(),
                    product_area: "api".into(),
                    plans: plans.iter().map(|p| p.to_string()).collect(),
                    published,
                    version: 0,
                    created_at: at,
                    updated_at: at,
                })?;
            }
            w.insert(&mut OnboardingPath {
                id: w.new_id(),
                name: "Enterprise rollout".into(),
                plans: vec!["enterprise".into()],
                stages: vec![],
                steps: vec![],
                version: 0,
                created_at: at,
                updated_at: at,
            })?;
            Ok(())
        })
        .unwrap();
}

// ---------------------------------------------------------------------------
// 1a. The change feed.
// ---------------------------------------------------------------------------

async fn read_feed(srv: &TestServer, who: &Who) -> Vec<Value> {
    let mut after = 0i64;
    let mut out = Vec::new();
    loop {
        let page = get_ok(
            srv,
            who,
            &format!("/v1/sync/changes?after={after}&limit=1000"),
        )
        .await;
        out.extend(
            page["changes"]
                .as_array()
                .expect("a page of changes")
                .iter()
                .cloned(),
        );
        let next = page["next_after"].as_i64().expect("next_after");
        if page["has_more"] != true {
            return out;
        }
        assert!(
            next > after,
            "next_after must advance while has_more, or a client pages forever"
        );
        after = next;
    }
}

#[tokio::test]
async fn change_feed_carries_only_what_each_role_may_see() {
    let srv = TestServer::start().await;
    let all = sign_in_all(&srv).await;
    acme_fixtures(&srv, &all).await;
    rare_kinds(&srv);
    let log = change_log(&srv);
    for kind in Kind::ALL {
        assert!(
            log.values().any(|l| l.kind == kind),
            "the log must hold {kind:?} rows for the matrix to cover every kind"
        );
    }
    assert!(
        log.values().filter(|l| l.op == "delete").count() >= 2,
        "tombstones of Acme and another account are in the log"
    );

    for who in &all {
        let me = who.label();
        let changes = read_feed(&srv, who).await;
        let mut got = BTreeSet::new();
        for ch in &changes {
            let seq = ch["seq"].as_i64().expect("changes carry seq");
            let at = format!("feed seq {seq}");
            let logged = log
                .get(&seq)
                .unwrap_or_else(|| panic!("{at}: a change must exist in the change log"));
            assert_eq!(ch["kind"], logged.kind.as_str(), "{at}: kind as logged");
            assert_eq!(ch["id"], logged.id.as_str(), "{at}: id as logged");
            assert_eq!(ch["op"], logged.op.as_str(), "{at}: op as logged");
            assert!(got.insert(seq), "{at}: each change is sent once");
            match ch["op"].as_str() {
                Some("upsert") => {
                    let row = ch["row"]
                        .as_object()
                        .unwrap_or_else(|| panic!("{at}: an upsert carries its row"));
                    let truth = logged.row.as_ref().expect("logged upserts keep the row");
                    assert_row_allowed(logged.kind, row, truth, who, &at);
                }
                Some("delete") => {
                    assert!(ch.get("row").is_none(), "{at}: tombstones carry no data");
                    if !who.is_staff() {
                        assert_eq!(
                            logged.account,
                            account_str(who.account),
                            "{at}: {me} got a tombstone of another account's row; even ids of other accounts stay hidden"
                        );
                    }
                }
                other => panic!("{at}: unknown op {other:?}"),
            }
        }

        // Both directions: the feed holds exactly what the rules allow.
        let expected: BTreeSet<i64> = log
            .iter()
            .filter(|(_, l)| match &l.row {
                Some(row) => {
                    // Community posts are public to every customer, whichever
                    // account wrote them; everything else follows the row rules.
                    hidden_because(l.kind, row, who).is_none()
                }
                None => who.is_staff() || l.account == account_str(who.account),
            })
            .map(|(seq, _)| *seq)
            .collect();
        for kind in Kind::ALL {
            let count = |seqs: &BTreeSet<i64>| seqs.iter().filter(|s| log[s].kind == kind).count();
            assert_eq!(
                count(&got),
                count(&expected),
                "{me} must receive exactly the {kind:?} changes the rules allow ({} of the {} in the log)",
                count(&expected),
                log.values().filter(|l| l.kind == kind).count()
            );
        }
        let leaked: Vec<_> = got.difference(&expected).take(5).collect();
        let withheld: Vec<_> = expected.difference(&got).take(5).collect();
        assert!(
            leaked.is_empty() && withheld.is_empty(),
            "{me}: feed leaked seqs {leaked:?} and withheld seqs {withheld:?}"
        );

        // Spelled out for the record: the kinds a customer must never get.
        if !who.is_staff() {
            let kinds: BTreeSet<&str> = changes.iter().filter_map(|c| c["kind"].as_str()).collect();
            for never in ["team", "audit_event"] {
                assert!(
                    !kinds.contains(never),
                    "{me} must never receive {never} rows"
                );
            }
            if who.role == Role::CustomerMember {
                assert!(!kinds.contains("invoice"), "members receive no invoices");
            } else {
                assert!(
                    kinds.contains("invoice"),
                    "the customer admin receives Acme's invoices"
                );
            }
            for some in [
                "account",
                "subscription",
                "seat",
                "user",
                "conversation",
                "message",
                "article",
                "plan",
            ] {
                assert!(
                    kinds.contains(some),
                    "{me} must receive their own {some} rows"
                );
            }
        } else {
            for kind in Kind::ALL {
                let logged = log.values().filter(|l| l.kind == kind).count();
                assert!(
                    logged == 0 || got.iter().any(|s| log[s].kind == kind),
                    "{me} (staff) must receive {kind:?} rows"
                );
            }
        }
    }
    srv.stop().await;
}

// ---------------------------------------------------------------------------
// 1b. Every GET endpoint.
// ---------------------------------------------------------------------------

#[tokio::test]
async fn every_get_endpoint_shapes_rows_for_each_role() {
    let srv = TestServer::start().await;
    let all = sign_in_all(&srv).await;
    let fx = acme_fixtures(&srv, &all).await;
    let acme = srv.acme().id;
    let acct = format!("/v1/accounts/{acme}");

    for who in &all {
        let me = who.label();
        let staff = who.is_staff();
        let admin = who.role == Role::CustomerAdmin;

        // /v1/me (and the sign-in answer, which is the same shape): the
        // viewer's own user, and for customers their account.
        let login = reqwest::Client::new()
            .post(srv.url("/v1/auth/login"))
            .json(&json!({ "email": who.email, "password": portico_portal::seed::DEMO_PASSWORD }))
            .send()
            .await
            .unwrap();
        assert_eq!(login.status(), 200, "{me} signs in");
        let signed_in = json(login).await;
        let me_body = get_ok(&srv, who, "/v1/me").await;
        for (at, body) in [("POST /v1/auth/login", signed_in), ("GET /v1/me", me_body)] {
            let user = body["user"].as_object().expect("me has a user").clone();
            assert_eq!(
                user["id"],
                who.user_id.to_string(),
                "{at}: {me} is the signed-in user"
            );
            check_http_row(&srv, Kind::User, &user, who, at);
            match body.get("account").and_then(Value::as_object) {
                Some(account) => {
                    assert!(!staff, "{at}: staff belong to no account");
                    check_http_row(&srv, Kind::Account, account, who, at);
                }
                None => assert!(staff, "{at}: a customer's answer names their account"),
            }
        }

        // Accounts.
        let accounts = check_list(&srv, who, "/v1/accounts", Kind::Account, "1 = 1").await;
        if !staff {
            assert_eq!(
                accounts.len(),
                1,
                "{me}: a customer's account list is their own account"
            );
        }
        let account = check_one(&srv, who, &acct, Kind::Account).await;
        assert_presence(
            &account,
            &[
                "key_account",
                "lifecycle_stage",
                "health_score",
                "mrr",
                "notes",
            ],
            staff,
            who,
            "account",
        );
        let users = check_list(
            &srv,
            who,
            &format!("{acct}/users"),
            Kind::User,
            &format!("account_id = '{acme}'"),
        )
        .await;
        for u in &users {
            assert_presence(
                u,
                &["team_ids", "capacity", "away", "last_seen_at", "online"],
                staff,
                who,
                "user",
            );
        }

        // Customer portal: the dashboard's records, the community and a
        // request's thread, shaped like every other exit.
        let dash = get_ok(&srv, who, &format!("{acct}/dashboard")).await;
        let dash_account = dash["account"]
            .as_object()
            .expect("the dashboard names the account");
        check_http_row(&srv, Kind::Account, dash_account, who, "GET dashboard");
        for r in dash["requests"]["latest"].as_array().unwrap() {
            check_http_row(
                &srv,
                Kind::Request,
                r.as_object().unwrap(),
                who,
                "GET dashboard",
            );
        }
        for n in dash["release_notes"].as_array().unwrap() {
            check_http_row(
                &srv,
                Kind::ReleaseNote,
                n.as_object().unwrap(),
                who,
                "GET dashboard",
            );
        }
        assert_eq!(
            dash.get("billing").is_some(),
            staff || admin,
            "dashboard billing for {me}: only those who may read invoices"
        );
        if let Some(inv) = dash["billing"]
            .get("latest_invoice")
            .and_then(Value::as_object)
        {
            check_http_row(&srv, Kind::Invoice, inv, who, "GET dashboard");
        }
        check_list(
            &srv,
            who,
            "/v1/community/questions",
            Kind::CommunityPost,
            "data ->> '$.parent_id' IS NULL",
        )
        .await;
        let thread = get_list(
            &srv,
            who,
            &format!("/v1/requests/{}/comments", fx.request),
            200,
        )
        .await;
        for m in &thread {
            check_http_row(&srv, Kind::Message, m, who, "GET request comments");
        }

        // Billing.
        let sub = check_one(
            &srv,
            who,
            &format!("{acct}/subscription"),
            Kind::Subscription,
        )
        .await;
        assert_presence(
            &sub,
            &["tax_rate_bps", "credit_balance", "billing_email"],
            staff || admin,
            who,
            "subscription",
        );
        assert_presence(
            &sub,
            &["seats", "plan_id", "current_period_end"],
            true,
            who,
            "subscription",
        );

        let seats = get_ok(&srv, who, &format!("{acct}/seats")).await;
        let keys: BTreeSet<&str> = seats
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            BTreeSet::from(["seats", "assigned", "available", "min_seats", "max_seats"]),
            "{me}: the seat summary carries the counts and nothing else"
        );
        assert_eq!(
            seats["seats"],
            acme_subscription(&srv).seats,
            "{me}: seats as stored"
        );

        let usage = get_ok(&srv, who, &format!("{acct}/usage")).await;
        let lines = usage.as_array().expect("usage is a list of lines");
        assert!(!lines.is_empty(), "{me}: Acme has usage meters");
        let allowed = [
            "meter",
            "name",
            "unit",
            "used",
            "limit",
            "percent",
            "over_limit",
        ];
        for line in lines {
            for key in line.as_object().unwrap().keys() {
                assert!(
                    allowed.contains(&key.as_str()),
                    "{me}: usage line field {key} is not a usage field"
                );
            }
        }

        let invoices_path = format!("{acct}/invoices");
        let invoice_path = format!("{invoices_path}/{}", fx.invoice);
        let document_path = format!("{invoice_path}/document");
        if staff || admin {
            let invoices = check_list(
                &srv,
                who,
                &invoices_path,
                Kind::Invoice,
                &format!("account_id = '{acme}'"),
            )
            .await;
            assert!(
                !invoices.is_empty(),
                "{me}: Acme's invoices are listed for billing viewers"
            );
            let inv = check_one(&srv, who, &invoice_path, Kind::Invoice).await;
            let resp = call(&srv, who, Method::GET, &document_path, None).await;
            assert_eq!(
                resp.status(),
                200,
                "{me}: billing viewers may download the invoice document"
            );
            let ctype = resp.headers()["content-type"].to_str().unwrap().to_owned();
            assert!(
                ctype.starts_with("text/html"),
                "the invoice document is HTML: {ctype}"
            );
            let html = resp.text().await.unwrap();
            assert!(
                html.contains(inv["number"].as_str().unwrap()),
                "the document is the requested invoice"
            );
        } else {
            for path in [&invoices_path, &invoice_path, &document_path] {
                let resp = call(&srv, who, Method::GET, path, None).await;
                expect_error(resp, 403, "forbidden").await;
            }
        }

        // Conversations and messages.
        let convs = check_list(&srv, who, "/v1/conversations", Kind::Conversation, "1 = 1").await;
        for c in &convs {
            assert_presence(
                c,
                &[
                    "assignee_id",
                    "tags",
                    "priority",
                    "team_id",
                    "snoozed_until",
                ],
                staff,
                who,
                "conversation",
            );
        }
        // Staff-only filters must not work for customers, or they would be an
        // oracle for hidden fields (who is assigned, which team).
        let all_ids = |rows: &[Map<String, Value>]| -> BTreeSet<String> {
            rows.iter()
                .map(|r| r["id"].as_str().unwrap().to_owned())
                .collect()
        };
        let agent_id = srv.user_with_role(Role::Agent, None).id;
        let team_id = srv.records::<Team>("1 = 1").remove(0).id;
        for filter in [
            format!("assignee_id={agent_id}"),
            "unassigned=true".to_owned(),
            format!("team_id={team_id}"),
        ] {
            let filtered =
                all_ids(&get_list(&srv, who, &format!("/v1/conversations?{filter}"), 200).await);
            if staff {
                assert!(
                    filtered.len() < convs.len(),
                    "{me}: the {filter} filter narrows the staff's list"
                );
            } else {
                assert_eq!(
                    filtered,
                    all_ids(&convs),
                    "{me}: the staff-only filter {filter} must be ignored for customers, not reveal who is assigned"
                );
            }
        }
        let conv_path = format!("/v1/conversations/{}", fx.conversation);
        let conv = check_one(&srv, who, &conv_path, Kind::Conversation).await;
        assert_presence(&conv, &["assignee_id", "tags"], staff, who, "conversation");
        let msgs = check_list(
            &srv,
            who,
            &format!("{conv_path}/messages"),
            Kind::Message,
            &format!("data ->> '$.conversation_id' = '{}'", fx.conversation),
        )
        .await;
        let notes = msgs.iter().filter(|m| m["kind"] == "internal_note").count();
        if staff {
            assert!(notes > 0, "{me}: staff see internal notes in the thread");
        } else {
            assert_eq!(notes, 0, "{me}: internal notes never reach customers");
        }
        for m in &msgs {
            assert_presence(m, &["mentions"], staff, who, "message");
        }

        // Requests.
        check_list(&srv, who, "/v1/requests", Kind::Request, "1 = 1").await;
        let req = check_one(
            &srv,
            who,
            &format!("/v1/requests/{}", fx.request),
            Kind::Request,
        )
        .await;
        assert_presence(
            &req,
            &["internal_note", "assignee_id", "team_id"],
            staff,
            who,
            "request",
        );

        // Knowledge and plans.
        let articles = check_list(&srv, who, "/v1/articles", Kind::Article, "1 = 1").await;
        let total = stored_rows(&srv, Kind::Article, "1 = 1").len();
        if staff {
            assert_eq!(articles.len(), total, "{me}: staff see every article");
        } else {
            assert!(
                !articles.is_empty() && articles.len() < total,
                "{me}: customers see some articles, never drafts or internal ones"
            );
        }
        for a in &articles {
            assert_presence(a, &["state", "author_id"], staff, who, "article");
        }
        let draft = format!("/v1/articles/{}", fx.draft_article);
        if staff {
            check_one(&srv, who, &draft, Kind::Article).await;
        } else {
            let resp = call(&srv, who, Method::GET, &draft, None).await;
            expect_error(resp, 404, "not_found").await;
        }
        let plans = check_list(&srv, who, "/v1/plans", Kind::Plan, "1 = 1").await;
        assert_eq!(plans.len(), 4, "{me}: every plan is public");

        // The staff directory.
        if staff {
            let users = check_list(&srv, who, "/v1/users", Kind::User, "account_id IS NULL").await;
            assert!(
                users.iter().all(|u| u["account_id"].is_null()),
                "the directory lists staff"
            );
            check_list(&srv, who, "/v1/teams", Kind::Team, "1 = 1").await;
        } else {
            for path in ["/v1/users", "/v1/teams"] {
                let resp = call(&srv, who, Method::GET, path, None).await;
                expect_error(resp, 403, "forbidden").await;
            }
        }
    }
    srv.stop().await;
}

// ---------------------------------------------------------------------------
// 2. Another account's ids.
// ---------------------------------------------------------------------------

#[tokio::test]
async fn another_accounts_ids_are_not_found_and_write_nothing() {
    let srv = TestServer::start().await;
    let all = sign_in_all(&srv).await;
    let acme = srv.acme().id;
    let other = srv.other_account().id;
    assert_ne!(other, acme);
    let agent = who(&all, Role::Agent);

    // Make sure the other account has a conversation and a request to aim at.
    let on_other = |sql: &str| format!("account_id = '{other}'{sql}");
    if srv.records::<Conversation>(&on_other("")).is_empty() {
        let resp = call(
            &srv,
            agent,
            Method::POST,
            "/v1/conversations",
            Some(&json!({ "account_id": other, "subject": "Hello", "body": "Checking in." })),
        )
        .await;
        assert_eq!(
            resp.status(),
            201,
            "staff may open a conversation for any account"
        );
    }
    if srv.records::<Request>(&on_other("")).is_empty() {
        let resp = call(
            &srv,
            agent,
            Method::POST,
            "/v1/requests",
            Some(&json!({ "account_id": other, "kind": "feature", "title": "Dark mode" })),
        )
        .await;
        assert_eq!(
            resp.status(),
            201,
            "staff may open a request for any account"
        );
    }
    let conv = srv.records::<Conversation>(&on_other("")).remove(0).id;
    let req = srv.records::<Request>(&on_other("")).remove(0).id;
    let inv = srv.records::<Invoice>(&on_other("")).remove(0).id;
    let user = srv.records::<User>(&on_other("")).remove(0).id;
    let business = srv.records::<Plan>("code = 'business'").remove(0).id;
    let a = format!("/v1/accounts/{other}");

    let reads = [
        a.clone(),
        format!("{a}/users"),
        format!("{a}/subscription"),
        format!("{a}/seats"),
        format!("{a}/usage"),
        format!("{a}/invoices"),
        format!("{a}/invoices/{inv}"),
        format!("{a}/invoices/{inv}/document"),
        format!("/v1/conversations/{conv}"),
        format!("/v1/conversations/{conv}/messages"),
        format!("/v1/conversations?account_id={other}"),
        format!("/v1/requests/{req}"),
        format!("/v1/requests?account_id={other}"),
    ];
    let writes: Vec<(Method, String, Value)> = vec![
        (Method::PATCH, a.clone(), json!({ "name": "Taken over" })),
        (Method::PATCH, a.clone(), json!({ "health_score": 1 })),
        (
            Method::POST,
            format!("{a}/users"),
            json!({ "email": "intruder@acme.test", "name": "Intruder", "role": "customer_admin" }),
        ),
        (
            Method::PATCH,
            format!("{a}/users/{user}"),
            json!({ "role": "customer_member" }),
        ),
        (Method::DELETE, format!("{a}/users/{user}"), Value::Null),
        (
            Method::POST,
            format!("{a}/subscription/preview"),
            json!({ "seats": 60 }),
        ),
        (
            Method::POST,
            format!("{a}/subscription/change"),
            json!({ "seats": 60 }),
        ),
        (
            Method::POST,
            format!("{a}/subscription/change"),
            json!({ "plan_id": business }),
        ),
        (
            Method::PATCH,
            format!("/v1/conversations/{conv}"),
            json!({ "priority": "low" }),
        ),
        (
            Method::POST,
            format!("/v1/conversations/{conv}/messages"),
            json!({ "body": "hello?" }),
        ),
        (
            Method::POST,
            format!("/v1/conversations/{conv}/messages"),
            json!({ "body": "x", "internal": true }),
        ),
        (
            Method::PATCH,
            format!("/v1/requests/{req}"),
            json!({ "status": "closed" }),
        ),
        (
            Method::POST,
            "/v1/conversations".into(),
            json!({ "account_id": other, "subject": "Hi", "body": "Opened on their behalf" }),
        ),
        (
            Method::POST,
            "/v1/requests".into(),
            json!({ "account_id": other, "kind": "bug", "title": "Filed on their behalf" }),
        ),
    ];

    for role in [Role::CustomerAdmin, Role::CustomerMember] {
        let who = who(&all, role);
        let me = who.label();
        let before = srv.fingerprint();
        for path in &reads {
            let resp = call(&srv, who, Method::GET, path, None).await;
            assert_eq!(
                resp.status(),
                404,
                "{me} GET {path}: another account's ids must look missing (404, not 403), so existence is not revealed"
            );
            expect_error(resp, 404, "not_found").await;
        }
        for (method, path, body) in &writes {
            let body = (!body.is_null()).then_some(body);
            let resp = call(&srv, who, method.clone(), path, body).await;
            assert_eq!(
                resp.status(),
                404,
                "{me} {method} {path}: writes aimed at another account must look missing (404, not 403)"
            );
            expect_error(resp, 404, "not_found").await;
            assert_eq!(
                srv.fingerprint(),
                before,
                "{me} {method} {path}: a refused write must leave every record and the change log untouched"
            );
        }

        // Another account's ids addressed through the customer's own account.
        // An admin gets 404 (the id is not theirs); a member is refused before
        // any lookup (403 for every id alike, so nothing is revealed either).
        let own = format!("/v1/accounts/{acme}");
        let (status, code) = if role == Role::CustomerAdmin {
            (404, "not_found")
        } else {
            (403, "forbidden")
        };
        for (method, path, body) in [
            (Method::GET, format!("{own}/invoices/{inv}"), None),
            (Method::GET, format!("{own}/invoices/{inv}/document"), None),
            (
                Method::PATCH,
                format!("{own}/users/{user}"),
                Some(json!({ "role": "customer_admin" })),
            ),
            (Method::DELETE, format!("{own}/users/{user}"), None),
        ] {
            let resp = call(&srv, who, method.clone(), &path, body.as_ref()).await;
            assert_eq!(
                resp.status().as_u16(),
                status,
                "{me} {method} {path}: another account's user or invoice under Acme's path must not be reachable"
            );
            expect_error(resp, status, code).await;
            assert_eq!(
                srv.fingerprint(),
                before,
                "{me} {method} {path}: nothing may change"
            );
        }

        // The feed agrees: nothing of the other account reaches the customer.
        for ch in read_feed(&srv, who).await {
            if let Some(row) = ch["row"].as_object() {
                assert_ne!(
                    row.get("account_id").and_then(Value::as_str),
                    Some(other.to_string().as_str()),
                    "{me}: the feed never carries another account's rows"
                );
                assert!(
                    !(ch["kind"] == "account" && row["id"] == other.to_string()),
                    "{me}: the feed never carries another account"
                );
            }
        }
    }
    srv.stop().await;
}

// ---------------------------------------------------------------------------
// 3. Actions by role.
// ---------------------------------------------------------------------------

struct Case {
    role: Role,
    method: Method,
    path: String,
    body: Option<Value>,
    status: u16,
    /// The error code for refusals.
    code: &'static str,
    why: &'static str,
}

fn case(
    role: Role,
    method: Method,
    path: String,
    body: Option<Value>,
    status: u16,
    why: &'static str,
) -> Case {
    let code = match status {
        403 => "forbidden",
        404 => "not_found",
        _ => "",
    };
    Case {
        role,
        method,
        path,
        body,
        status,
        code,
        why,
    }
}

async fn run(srv: &TestServer, all: &[Who], cases: Vec<Case>) {
    for c in cases {
        let w = who(all, c.role);
        let at = format!("{} {} {}", w.label(), c.method, c.path);
        let before = srv.fingerprint();
        let resp = call(srv, w, c.method.clone(), &c.path, c.body.as_ref()).await;
        let got = resp.status().as_u16();
        if got != c.status {
            let body = resp.text().await.unwrap();
            panic!(
                "{at}: expected {} because {}, got {got}: {body}",
                c.status, c.why
            );
        }
        if c.status >= 400 {
            expect_error(resp, c.status, c.code).await;
            assert_eq!(
                srv.fingerprint(),
                before,
                "{at}: refused ({}), so no record and no change-log row may be written",
                c.why
            );
        } else {
            let body = if c.status == 204 {
                Value::Null
            } else {
                json(resp).await
            };
            // A preview only prices the change; other allowed non-GETs write.
            if c.method == Method::GET || c.path.ends_with("/preview") {
                assert_eq!(
                    srv.fingerprint(),
                    before,
                    "{at}: a read ({}) writes nothing",
                    c.why
                );
            } else {
                assert_ne!(
                    srv.fingerprint(),
                    before,
                    "{at}: an allowed write ({}) is stored",
                    c.why
                );
            }
            // Whatever an allowed action answers is shaped for its caller too.
            let kind = if c.path.contains("/articles") {
                Some(Kind::Article)
            } else if c.path.contains("/users") {
                Some(Kind::User)
            } else if c.path.starts_with("/v1/accounts/") && !c.path.contains("/subscription") {
                Some(Kind::Account)
            } else if c.path.ends_with("/messages") {
                Some(Kind::Message)
            } else {
                None
            };
            if let (Some(kind), Some(row)) = (kind, body.as_object())
                && row.contains_key("id")
            {
                check_http_row(srv, kind, row, w, &at);
            }
            if let Some(sub) = body.get("subscription").and_then(Value::as_object) {
                check_http_row(srv, Kind::Subscription, sub, w, &at);
            }
            if let Some(inv) = body.get("invoice").and_then(Value::as_object) {
                check_http_row(srv, Kind::Invoice, inv, w, &at);
            }
        }
    }
}

#[tokio::test]
async fn actions_are_allowed_or_refused_by_role() {
    use Method as M;
    use Role::*;
    let srv = TestServer::start().await;
    let all = sign_in_all(&srv).await;
    let fx = acme_fixtures(&srv, &all).await;
    let acme = srv.acme().id;
    let a = format!("/v1/accounts/{acme}");
    let seats = acme_subscription(&srv).seats;
    let business = srv.records::<Plan>("code = 'business'").remove(0).id;
    let member_id = who(&all, CustomerMember).user_id;
    let colleague = srv
        .records::<User>(&format!(
            "account_id = '{acme}' AND data ->> '$.role' = 'customer_member'"
        ))
        .into_iter()
        .find(|u| u.id != member_id)
        .expect("Acme has more members than the demo one")
        .id;
    let conv = format!("/v1/conversations/{}", fx.conversation);
    let request = format!("/v1/requests/{}", fx.request);
    let invoice = format!("{a}/invoices/{}", fx.invoice);
    let draft = srv
        .records::<Article>(&format!("id = '{}'", fx.draft_article))
        .remove(0);
    let mut article = serde_json::to_value(&draft).unwrap();
    let article = article.as_object_mut().unwrap();
    article.retain(|k, _| {
        [
            "slug",
            "title",
            "summary",
            "body",
            "product_area",
            "plans",
            "versions",
            "locale",
            "audience",
        ]
        .contains(&k.as_str())
    });
    let approve = {
        let mut b = article.clone();
        b.insert("state".into(), json!("approved"));
        Value::Object(b)
    };
    let new_article = |state: &str| json!({ "slug": format!("new-{state}"), "title": "New", "body": "Text", "audience": "customers", "state": state });
    let more = json!({ "seats": seats + 1 });
    let plan = json!({ "plan_id": business });
    let invite =
        json!({ "email": "new.hire@acme.test", "name": "New Hire", "role": "customer_member" });

    #[rustfmt::skip]
    let mut cases = vec![
        // A member reads and opens requests; seats, plan, users and invoices are the admin's.
        case(CustomerMember, M::POST, format!("{a}/subscription/preview"), Some(more.clone()), 403, "only an account administrator changes seats"),
        case(CustomerMember, M::POST, format!("{a}/subscription/change"), Some(more.clone()), 403, "only an account administrator changes seats"),
        case(CustomerMember, M::POST, format!("{a}/subscription/preview"), Some(plan.clone()), 403, "only an account administrator changes the plan"),
        case(CustomerMember, M::POST, format!("{a}/subscription/change"), Some(plan.clone()), 403, "only an account administrator changes the plan"),
        case(CustomerMember, M::POST, format!("{a}/users"), Some(invite.clone()), 403, "only an account administrator invites users"),
        case(CustomerMember, M::DELETE, format!("{a}/users/{colleague}"), None, 403, "only an account administrator removes users"),
        case(CustomerMember, M::PATCH, format!("{a}/users/{colleague}"), Some(json!({ "role": "customer_admin" })), 403, "only an account administrator sets roles"),
        case(CustomerMember, M::PATCH, format!("{a}/users/{member_id}"), Some(json!({ "role": "customer_admin" })), 403, "a member cannot promote themselves"),
        case(CustomerMember, M::PATCH, a.clone(), Some(json!({ "name": "Renamed" })), 403, "only an account administrator edits the profile"),
        case(CustomerMember, M::GET, format!("{a}/invoices"), None, 403, "members see no invoices"),
        case(CustomerMember, M::GET, invoice.clone(), None, 403, "members see no invoices"),
        case(CustomerMember, M::GET, format!("{invoice}/document"), None, 403, "members download no invoices"),
        // A member may reply in their own thread (the flag below is what is refused).
        case(CustomerMember, M::POST, format!("{conv}/messages"), Some(json!({ "body": "Any news?" })), 201, "customers reply in their own conversations"),
        // Staff other than admins do not act on a customer's billing.
        case(Agent, M::POST, format!("{a}/subscription/change"), Some(more.clone()), 403, "only account administrators (or staff admins) change seats"),
        case(Csm, M::POST, format!("{a}/subscription/preview"), Some(plan.clone()), 403, "only account administrators (or staff admins) change the plan"),
        case(Lead, M::POST, format!("{a}/users"), Some(invite.clone()), 403, "only account administrators (or staff admins) invite users"),
    ];
    for c in [CustomerAdmin, CustomerMember] {
        #[rustfmt::skip]
        cases.extend([
            case(c, M::PATCH, conv.clone(), Some(json!({ "priority": "urgent" })), 403, "triage is for staff"),
            case(c, M::PATCH, conv.clone(), Some(json!({ "add_tags": ["vip"] })), 403, "tags are staff triage"),
            case(c, M::POST, format!("{conv}/messages"), Some(json!({ "body": "x", "internal": true })), 403, "internal notes are for staff"),
            case(c, M::PATCH, request.clone(), Some(json!({ "status": "closed" })), 403, "triage is for staff"),
            case(c, M::PATCH, a.clone(), Some(json!({ "health_score": 99 })), 403, "account management fields are for staff"),
            case(c, M::PATCH, a.clone(), Some(json!({ "key_account": false })), 403, "account management fields are for staff"),
            case(c, M::POST, "/v1/articles".into(), Some(new_article("draft")), 403, "knowledge is written by staff"),
            case(c, M::PUT, format!("/v1/articles/{}", fx.draft_article), Some(approve.clone()), 403, "knowledge is approved by leads"),
            case(c, M::GET, "/v1/users".into(), None, 403, "the staff directory is for staff"),
            case(c, M::GET, "/v1/teams".into(), None, 403, "teams are for staff"),
        ]);
    }
    for s in [Agent, Csm, Lead, Admin] {
        #[rustfmt::skip]
        cases.extend([
            case(s, M::GET, "/v1/users".into(), None, 200, "staff read the staff directory"),
            case(s, M::GET, "/v1/teams".into(), None, 200, "staff read the teams"),
        ]);
    }
    #[rustfmt::skip]
    cases.extend([
        // Agents write knowledge but do not approve it; leads do.
        case(Agent, M::POST, "/v1/articles".into(), Some(new_article("approved")), 403, "only a lead or admin publishes an approved article"),
        case(Agent, M::PUT, format!("/v1/articles/{}", fx.draft_article), Some(approve.clone()), 403, "only a lead or admin approves knowledge"),
        case(Csm, M::PUT, format!("/v1/articles/{}", fx.draft_article), Some(approve.clone()), 403, "only a lead or admin approves knowledge"),
        case(Agent, M::POST, "/v1/articles".into(), Some(new_article("draft")), 201, "agents write drafts"),
        case(Lead, M::PUT, format!("/v1/articles/{}", fx.draft_article), Some(approve.clone()), 200, "leads approve knowledge"),
        // Agents triage.
        case(Agent, M::PATCH, conv.clone(), Some(json!({ "priority": "urgent" })), 200, "agents triage"),
        // The customer admin manages seats, plan previews and users.
        case(CustomerAdmin, M::POST, format!("{a}/subscription/preview"), Some(more.clone()), 200, "admins preview seat changes"),
        case(CustomerAdmin, M::POST, format!("{a}/subscription/change"), Some(more.clone()), 200, "admins change seats"),
        case(CustomerAdmin, M::POST, format!("{a}/users"), Some(invite.clone()), 201, "admins invite into a free seat"),
        case(CustomerAdmin, M::GET, format!("{a}/invoices"), None, 200, "admins read invoices"),
        case(CustomerAdmin, M::PATCH, a.clone(), Some(json!({ "name": "Acme Corporation" })), 200, "admins edit the profile"),
        case(CustomerAdmin, M::PATCH, format!("{a}/users/{colleague}"), Some(json!({ "role": "customer_admin" })), 200, "admins set roles"),
        case(CustomerAdmin, M::DELETE, format!("{a}/users/{colleague}"), None, 204, "admins remove users"),
        case(Admin, M::POST, format!("{a}/subscription/preview"), Some(plan.clone()), 200, "staff admins may act on a customer's billing"),
    ]);
    run(&srv, &all, cases).await;

    assert_eq!(
        acme_subscription(&srv).seats,
        seats + 1,
        "the admin's seat change is stored, and the member's attempts before it were not"
    );
    let invited = srv.records::<User>("email = 'new.hire@acme.test'");
    assert_eq!(
        invited.len(),
        1,
        "the admin's invitation is stored once, the member's never"
    );
    assert_eq!(invited[0].status, UserStatus::Invited);
    let approved = srv
        .records::<Article>(&format!("id = '{}'", fx.draft_article))
        .remove(0);
    assert_eq!(
        approved.state,
        ArticleState::Approved,
        "the lead's approval is stored"
    );
    srv.stop().await;
}

// ---------------------------------------------------------------------------
// Team access (Zendesk's agent ticket access)
// ---------------------------------------------------------------------------

/// An agent limited to their teams gets, on every exit, the conversations of
/// their teams and those assigned to them, with their messages, and no
/// internal fields; anything else answers as missing and writes nothing.
/// Only an admin sets access. The rule is written out again here (team or
/// assignee), not borrowed from the policy.
#[tokio::test]
async fn team_access_is_applied_on_every_exit() {
    let srv = TestServer::start().await;
    let kai = srv
        .records::<User>("email = 'kai@portico.test'")
        .pop()
        .unwrap();
    let billing = kai.team_ids[0];
    let admin = srv.client_as("admin@portico.test").await;

    // Only a staff admin sets access; a customer's user has none to set.
    let body = json!({ "conversation_access": "teams" });
    for email in ["lead@portico.test", "agent@portico.test"] {
        let r = srv
            .client_as(email)
            .await
            .patch(srv.url(&format!("/v1/users/{}/access", kai.id)))
            .json(&body)
            .send()
            .await
            .unwrap();
        expect_error(r, 403, "forbidden").await;
    }
    let customer = srv
        .records::<User>("email = 'member@acme.test'")
        .pop()
        .unwrap();
    let r = admin
        .patch(srv.url(&format!("/v1/users/{}/access", customer.id)))
        .json(&body)
        .send()
        .await
        .unwrap();
    expect_error(r, 422, "validation_failed").await;
    let r = admin
        .patch(srv.url(&format!("/v1/users/{}/access", kai.id)))
        .json(&json!({ "team_ids": [uuid::Uuid::now_v7()] }))
        .send()
        .await
        .unwrap();
    expect_error(r, 422, "validation_failed").await;
    let r = admin
        .patch(srv.url(&format!("/v1/users/{}/access", kai.id)))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let convs = srv.records::<Conversation>("1 = 1");
    let mine = |c: &Conversation| c.team_id == Some(billing) || c.assignee_id == Some(kai.id);
    let expected: BTreeSet<String> = convs
        .iter()
        .filter(|c| mine(c))
        .map(|c| c.id.to_string())
        .collect();
    let outside: Vec<&Conversation> = convs.iter().filter(|c| !mine(c)).collect();
    assert!(!expected.is_empty() && !outside.is_empty());
    let client = srv.client_as("kai@portico.test").await;

    // HTTP list, every page.
    let mut listed = BTreeSet::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = srv.url("/v1/conversations?limit=7");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let page = json(client.get(url).send().await.unwrap()).await;
        for item in page["items"].as_array().unwrap() {
            listed.insert(item["id"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(
        listed, expected,
        "the list holds exactly Kai's conversations"
    );

    // Reads and writes of a conversation outside: missing, nothing written.
    let other = outside[0];
    let before = srv.fingerprint();
    let r = client
        .get(srv.url(&format!("/v1/conversations/{}", other.id)))
        .send()
        .await
        .unwrap();
    expect_error(r, 404, "not_found").await;
    let r = client
        .get(srv.url(&format!("/v1/conversations/{}/messages", other.id)))
        .send()
        .await
        .unwrap();
    expect_error(r, 404, "not_found").await;
    let r = client
        .get(srv.url(&format!("/v1/conversations/{}/audit", other.id)))
        .send()
        .await
        .unwrap();
    expect_error(r, 404, "not_found").await;
    let r = client
        .patch(srv.url(&format!("/v1/conversations/{}", other.id)))
        .json(&json!({ "priority": "urgent" }))
        .send()
        .await
        .unwrap();
    expect_error(r, 404, "not_found").await;
    let r = client
        .post(srv.url(&format!("/v1/conversations/{}/messages", other.id)))
        .json(&json!({ "body": "hello", "internal": true }))
        .send()
        .await
        .unwrap();
    expect_error(r, 404, "not_found").await;
    assert_eq!(srv.fingerprint(), before, "nothing was written");
    let own = convs.iter().find(|c| mine(c)).unwrap();
    let r = client
        .get(srv.url(&format!("/v1/conversations/{}/messages", own.id)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "Kai's own conversation reads");

    // Internal fields: absent on accounts for a team-access agent.
    let account = json(
        client
            .get(srv.url(&format!("/v1/accounts/{}", own.account_id)))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(account.get("name").is_some(), "{account}");
    for internal in ["health_score", "mrr", "notes"] {
        assert!(
            account.get(internal).is_none(),
            "{internal} is internal: {account}"
        );
    }

    // The change feed: conversations in scope (or removals), messages of
    // those conversations only, no internal field anywhere.
    let messages = srv.records::<Message>("1 = 1");
    let conv_of: BTreeMap<String, String> = messages
        .iter()
        .map(|m| (m.id.to_string(), m.conversation_id.to_string()))
        .collect();
    let mut after = 0;
    loop {
        let page = json(
            client
                .get(srv.url(&format!("/v1/sync/changes?after={after}&limit=1000")))
                .send()
                .await
                .unwrap(),
        )
        .await;
        for c in page["changes"].as_array().unwrap() {
            let id = c["id"].as_str().unwrap();
            match (c["kind"].as_str().unwrap(), c["op"].as_str().unwrap()) {
                ("conversation", "upsert") => {
                    assert!(expected.contains(id), "conversation {id} is Kai's")
                }
                ("message", "upsert") => assert!(
                    expected.contains(&conv_of[id]),
                    "message {id} belongs to one of Kai's conversations"
                ),
                ("account", "upsert") => {
                    assert!(
                        c["row"].get("mrr").is_none(),
                        "no internal field in the feed"
                    )
                }
                _ => {}
            }
        }
        after = page["next_after"].as_i64().unwrap();
        if !page["has_more"].as_bool().unwrap() {
            break;
        }
    }

    // Bootstrap pages: the same rows.
    for (kind, want) in [
        ("conversation", expected.clone()),
        (
            "message",
            messages
                .iter()
                .filter(|m| expected.contains(&m.conversation_id.to_string()))
                .map(|m| m.id.to_string())
                .collect(),
        ),
    ] {
        let mut got = BTreeSet::new();
        let mut after_id: Option<String> = None;
        loop {
            let mut url = srv.url(&format!("/v1/sync/bootstrap?kind={kind}&limit=50"));
            if let Some(a) = &after_id {
                url.push_str(&format!("&after_id={a}"));
            }
            let page = json(client.get(url).send().await.unwrap()).await;
            for row in page["rows"].as_array().unwrap() {
                got.insert(row["id"].as_str().unwrap().to_owned());
            }
            match page["next_after_id"].as_str() {
                Some(a) => after_id = Some(a.to_owned()),
                None => break,
            }
        }
        assert_eq!(got, want, "bootstrap of {kind}s holds exactly Kai's");
    }

    // The same agent with access to every conversation sees them all again.
    let r = admin
        .patch(srv.url(&format!("/v1/users/{}/access", kai.id)))
        .json(&json!({ "conversation_access": "all" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = client
        .get(srv.url(&format!("/v1/conversations/{}", other.id)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "all access reads every conversation");
}
