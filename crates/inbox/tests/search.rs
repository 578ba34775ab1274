//! Inbox lists and offline search over mirrors built from synthetic change
//! pages (real `portico_model` records serialized as the server sends them),
//! applied through `Mirror::apply` like a pull would: lists return exactly
//! the expected rows in order and page without gaps, searches rank, filter
//! and follow every later change, and nothing typed can break a search.

mod common;

use jiff::{SignedDuration, Timestamp};
use portico_inbox::Mirror;
use portico_inbox::query::{self, InboxFilters, InboxQuery, Sort, View};
use portico_inbox::search::{self, HitKind, SearchFilters, SearchQuery};
use portico_model::wire::{Change, ChangeOp, ChangesPage};
use portico_model::*;

// ---------------------------------------------------------------------------
// Building records and pages

fn t0() -> Timestamp {
    "2026-11-01T09:00:00Z".parse().unwrap()
}

fn at(minutes: i64) -> Timestamp {
    t0() + SignedDuration::from_mins(minutes)
}

/// Deterministic UUIDv7s: time-ordered like the server's.
struct Ids(u64);

impl Ids {
    fn next(&mut self) -> uuid::Uuid {
        self.0 += 1;
        let mut random = [0u8; 10];
        random[2..].copy_from_slice(&self.0.to_be_bytes());
        uuid_v7(t0().as_millisecond() as u64 + self.0, random)
    }
}

/// Collects changes with increasing seq and versions, as the feed would.
#[derive(Default)]
struct Feed {
    seq: i64,
    changes: Vec<Change>,
}

impl Feed {
    fn put<T: Record>(&mut self, rec: &T) {
        self.seq += 1;
        let row = serde_json::to_value(rec).unwrap();
        self.changes.push(Change {
            seq: self.seq,
            kind: T::KIND,
            id: rec.uuid(),
            op: ChangeOp::Upsert,
            version: rec.version(),
            row: Some(row.as_object().unwrap().clone()),
        });
    }

    fn delete<T: Record>(&mut self, rec: &T, version: u64) {
        self.seq += 1;
        self.changes.push(Change {
            seq: self.seq,
            kind: T::KIND,
            id: rec.uuid(),
            op: ChangeOp::Delete,
            version,
            row: None,
        });
    }

    /// Applies what was collected as one page.
    fn flush(&mut self, mirror: &mut Mirror) {
        let page = ChangesPage {
            protocol: 1,
            changes: std::mem::take(&mut self.changes),
            next_after: self.seq,
            has_more: false,
            last_mutation_id: None,
            resync: false,
        };
        mirror.apply(&page).unwrap();
    }
}

fn plan(ids: &mut Ids, code: &str) -> Plan {
    Plan {
        id: PlanId(ids.next()),
        code: code.into(),
        name: code.to_uppercase(),
        tier: 1,
        currency: "EUR".into(),
        interval: BillingInterval::Month,
        seat_price: 1_000,
        min_seats: 1,
        max_seats: 500,
        features: vec![],
        meters: vec![],
        version: 1,
        created_at: t0(),
        updated_at: t0(),
    }
}

fn account(ids: &mut Ids, name: &str, domain: &str) -> Account {
    Account {
        id: AccountId(ids.next()),
        name: name.into(),
        domain: domain.into(),
        region: "eu".into(),
        language: "en".into(),
        csm_owner_id: None,
        product_version: String::new(),
        sso: None,
        key_account: true,
        lifecycle_stage: LifecycleStage::Active,
        health_score: 72,
        mrr: 120_000,
        notes: String::new(),
        version: 1,
        created_at: t0(),
        updated_at: t0(),
    }
}

fn subscription(ids: &mut Ids, account: &Account, plan: &Plan, seats: u32) -> Subscription {
    Subscription {
        id: SubscriptionId(ids.next()),
        account_id: account.id,
        plan_id: plan.id,
        status: SubscriptionStatus::Active,
        seats,
        current_period_start: t0(),
        current_period_end: at(60 * 24 * 30),
        pending_change: None,
        tax_rate_bps: 2_000,
        credit_balance: 0,
        billing_email: "billing@example.test".into(),
        version: 1,
        created_at: t0(),
        updated_at: t0(),
    }
}

fn staff(ids: &mut Ids, name: &str, teams: &[TeamId]) -> User {
    User {
        id: UserId(ids.next()),
        account_id: None,
        email: format!("{}@portico.test", name.to_lowercase()),
        name: name.into(),
        role: Role::Agent,
        status: UserStatus::Active,
        locale: None,
        team_ids: teams.to_vec(),
        capacity: 20,
        away: false,
        last_seen_at: None,
        online: true,
        conversation_access: Default::default(),
        version: 1,
        created_at: t0(),
        updated_at: t0(),
    }
}

/// Everything a conversation test varies; the rest is fixed.
#[derive(Clone)]
struct Conv {
    subject: &'static str,
    status: ConversationStatus,
    priority: Priority,
    channel: Channel,
    area: &'static str,
    assignee: Option<UserId>,
    team: Option<TeamId>,
    updated: i64,
}

fn conversation(ids: &mut Ids, account: &Account, c: &Conv) -> Conversation {
    Conversation {
        id: ConversationId(ids.next()),
        account_id: account.id,
        channel: c.channel,
        subject: c.subject.into(),
        status: c.status,
        requester_id: UserId(ids.next()),
        product_area: c.area.into(),
        request_id: None,
        last_message_at: at(c.updated),
        message_count: 0,
        snoozed_until: (c.status == ConversationStatus::Snoozed).then(|| at(100_000)),
        priority: c.priority,
        assignee_id: c.assignee,
        team_id: c.team,
        tags: vec![],
        sla_policy_id: None,
        sla: None,
        sla_next_check: None,
        version: 1,
        created_at: at(0),
        updated_at: at(c.updated),
    }
}

fn message(ids: &mut Ids, conv: &Conversation, body: &str, minute: i64) -> Message {
    Message {
        id: MessageId(ids.next()),
        conversation_id: conv.id,
        account_id: conv.account_id,
        kind: MessageKind::Customer,
        author_id: None,
        author_name: "Ana Silva".into(),
        body: body.into(),
        mentions: vec![],
        email: None,
        delivery: None,
        version: 1,
        created_at: at(minute),
        updated_at: at(minute),
    }
}

fn article(ids: &mut Ids, title: &str, body: &str, area: &str, plans: &[&str]) -> Article {
    Article {
        id: ArticleId(ids.next()),
        slug: title.to_lowercase().replace(' ', "-"),
        title: title.into(),
        summary: String::new(),
        body: body.into(),
        product_area: area.into(),
        plans: plans.iter().map(|p| p.to_string()).collect(),
        versions: vec![],
        locale: "en".into(),
        audience: Audience::Customers,
        state: ArticleState::Approved,
        author_id: None,
        revises: None,
        from_conversation_id: None,
        translation_of: None,
        version: 1,
        created_at: t0(),
        updated_at: t0(),
    }
}

// ---------------------------------------------------------------------------
// A small desk: two accounts on two plans, two agents in two teams.

struct Desk {
    mirror: Mirror,
    feed: Feed,
    ids: Ids,
    me: User,
    other: User,
    team_a: TeamId,
    team_b: TeamId,
    acme: Account,
    globex: Account,
    starter: Plan,
    business: Plan,
    acme_sub: Subscription,
    convs: Vec<Conversation>,
}

fn desk() -> Desk {
    let mut ids = Ids(0);
    let mut feed = Feed::default();
    let team_a = TeamId(ids.next());
    let team_b = TeamId(ids.next());
    let me = staff(&mut ids, "Mia", &[team_a]);
    let other = staff(&mut ids, "Omar", &[team_b]);
    let starter = plan(&mut ids, "starter");
    let business = plan(&mut ids, "business");
    let acme = account(&mut ids, "Acme Robotics", "acme.test");
    let globex = account(&mut ids, "Globex Foods", "globex.test");
    let acme_sub = subscription(&mut ids, &acme, &business, 25);
    let globex_sub = subscription(&mut ids, &globex, &starter, 3);
    for p in [&starter, &business] {
        feed.put(p);
    }
    for u in [&me, &other] {
        feed.put(u);
    }
    for a in [&acme, &globex] {
        feed.put(a);
    }
    for s in [&acme_sub, &globex_sub] {
        feed.put(s);
    }
    let mut mirror = Mirror::open_in_memory().unwrap();
    feed.flush(&mut mirror);
    Desk {
        mirror,
        feed,
        ids,
        me,
        other,
        team_a,
        team_b,
        acme,
        globex,
        starter,
        business,
        acme_sub,
        convs: Vec::new(),
    }
}

impl Desk {
    fn add(&mut self, account: &Account, c: Conv) -> Conversation {
        let conv = conversation(&mut self.ids, account, &c);
        self.feed.put(&conv);
        self.feed.flush(&mut self.mirror);
        self.convs.push(conv.clone());
        conv
    }

    fn say(&mut self, conv: &Conversation, body: &str, minute: i64) -> Message {
        let m = message(&mut self.ids, conv, body, minute);
        self.feed.put(&m);
        self.feed.flush(&mut self.mirror);
        m
    }

    /// Stores a new version of `conv` as the server would send it.
    fn update(&mut self, conv: &mut Conversation, edit: impl FnOnce(&mut Conversation)) {
        edit(conv);
        conv.version += 1;
        self.feed.put(conv);
        self.feed.flush(&mut self.mirror);
    }

    fn list(&self, q: &InboxQuery) -> Vec<ConversationId> {
        query::inbox(&self.mirror, q)
            .unwrap()
            .into_iter()
            .map(|r| r.conversation.id)
            .collect()
    }

    fn find(&self, q: &SearchQuery) -> Vec<(HitKind, uuid::Uuid)> {
        search::search(&self.mirror, q)
            .unwrap()
            .into_iter()
            .map(|h| (h.kind, h.id))
            .collect()
    }
}

fn base(subject: &'static str, updated: i64) -> Conv {
    Conv {
        subject,
        status: ConversationStatus::Open,
        priority: Priority::Normal,
        channel: Channel::Email,
        area: "billing",
        assignee: None,
        team: None,
        updated,
    }
}

/// Six conversations with distinct update times, spread over views.
fn stocked() -> Desk {
    stock(desk())
}

fn stock(mut d: Desk) -> Desk {
    let (me, other, a, b) = (d.me.id, d.other.id, d.team_a, d.team_b);
    let (acme, globex) = (d.acme.clone(), d.globex.clone());
    d.add(
        &acme,
        Conv {
            assignee: Some(me),
            team: Some(a),
            priority: Priority::Urgent,
            ..base("Invoice shows the wrong number of seats", 10)
        },
    );
    d.add(
        &globex,
        Conv {
            assignee: Some(me),
            team: Some(a),
            status: ConversationStatus::Pending,
            channel: Channel::Chat,
            area: "sso",
            ..base("SSO login loops back to the sign-in page", 50)
        },
    );
    d.add(
        &acme,
        Conv {
            team: Some(a),
            priority: Priority::High,
            channel: Channel::Chat,
            area: "api",
            ..base("API returns 429 during nightly sync", 30)
        },
    );
    d.add(
        &globex,
        Conv {
            priority: Priority::Low,
            ..base("How do I add a workspace?", 40)
        },
    );
    d.add(
        &acme,
        Conv {
            assignee: Some(other),
            team: Some(b),
            status: ConversationStatus::Resolved,
            channel: Channel::Video,
            area: "mobile",
            ..base("Mobile app crashes on launch", 20)
        },
    );
    d.add(
        &globex,
        Conv {
            assignee: Some(other),
            team: Some(b),
            priority: Priority::Urgent,
            ..base("Webhook deliveries are delayed", 60)
        },
    );
    d
}

/// Ids in the order `sort` puts them, computed from the records directly.
fn expected(d: &Desk, pick: impl Fn(&Conversation) -> bool, sort: Sort) -> Vec<ConversationId> {
    let mut v: Vec<&Conversation> = d.convs.iter().filter(|c| pick(c)).collect();
    let rank = |p: Priority| match p {
        Priority::Urgent => 3,
        Priority::High => 2,
        Priority::Normal => 1,
        Priority::Low => 0,
    };
    v.sort_by(|a, b| {
        let newest = (b.updated_at, b.id).cmp(&(a.updated_at, a.id));
        match sort {
            Sort::UpdatedDesc => newest,
            Sort::UpdatedAsc => newest.reverse(),
            Sort::PriorityDesc => rank(b.priority).cmp(&rank(a.priority)).then(newest),
        }
    });
    v.into_iter().map(|c| c.id).collect()
}

// ---------------------------------------------------------------------------
// Inbox lists

#[test]
fn views_return_exactly_their_conversations() {
    let d = stocked();
    let me = d.me.id;
    let q = |view| InboxQuery::new(me, view);
    assert_eq!(
        d.list(&q(View::Mine)),
        expected(&d, |c| c.assignee_id == Some(me), Sort::UpdatedDesc),
        "mine is what is assigned to me, newest first"
    );
    assert_eq!(
        d.list(&q(View::Unassigned)),
        expected(&d, |c| c.assignee_id.is_none(), Sort::UpdatedDesc),
        "unassigned is what nobody holds"
    );
    let team_a = d.team_a;
    assert_eq!(
        d.list(&q(View::MyTeams)),
        expected(&d, |c| c.team_id == Some(team_a), Sort::UpdatedDesc),
        "my teams come from my mirrored user record (team A only)"
    );
    assert_eq!(
        d.list(&q(View::All)),
        expected(&d, |_| true, Sort::UpdatedDesc),
        "all is every mirrored conversation"
    );
    let stranger = InboxQuery::new(UserId(uuid::Uuid::nil()), View::MyTeams);
    assert!(
        d.list(&stranger).is_empty(),
        "a user without a mirrored record has no teams, so no team view"
    );
}

#[test]
fn filters_narrow_and_combine() {
    let d = stocked();
    let me = d.me.id;
    let (acme, team_b, other) = (d.acme.id, d.team_b, d.other.id);
    let all = |filters: InboxFilters| InboxQuery {
        filters,
        ..InboxQuery::new(me, View::All)
    };
    type Case<'a> = (&'a str, InboxFilters, Box<dyn Fn(&Conversation) -> bool>);
    let cases: Vec<Case<'_>> = vec![
        (
            "status open or pending",
            InboxFilters {
                status: vec![ConversationStatus::Open, ConversationStatus::Pending],
                ..Default::default()
            },
            Box::new(|c| {
                matches!(
                    c.status,
                    ConversationStatus::Open | ConversationStatus::Pending
                )
            }),
        ),
        (
            "urgent",
            InboxFilters {
                priority: vec![Priority::Urgent],
                ..Default::default()
            },
            Box::new(|c| c.priority == Priority::Urgent),
        ),
        (
            "chat",
            InboxFilters {
                channel: vec![Channel::Chat],
                ..Default::default()
            },
            Box::new(|c| c.channel == Channel::Chat),
        ),
        (
            "business plan is Acme's",
            InboxFilters {
                plan: vec!["business".into()],
                ..Default::default()
            },
            Box::new(move |c| c.account_id == acme),
        ),
        (
            "product area",
            InboxFilters {
                product_area: vec!["sso".into(), "api".into()],
                ..Default::default()
            },
            Box::new(|c| c.product_area == "sso" || c.product_area == "api"),
        ),
        (
            "assignee, including unassigned",
            InboxFilters {
                assignee: vec![Some(other), None],
                ..Default::default()
            },
            Box::new(move |c| c.assignee_id == Some(other) || c.assignee_id.is_none()),
        ),
        (
            "team",
            InboxFilters {
                team: vec![team_b],
                ..Default::default()
            },
            Box::new(move |c| c.team_id == Some(team_b)),
        ),
        (
            "open, email, billing on starter",
            InboxFilters {
                status: vec![ConversationStatus::Open],
                channel: vec![Channel::Email],
                product_area: vec!["billing".into()],
                plan: vec!["starter".into()],
                ..Default::default()
            },
            Box::new(move |c| {
                c.status == ConversationStatus::Open
                    && c.channel == Channel::Email
                    && c.product_area == "billing"
                    && c.account_id != acme
            }),
        ),
        (
            "an unknown plan matches nothing",
            InboxFilters {
                plan: vec!["gold".into()],
                ..Default::default()
            },
            Box::new(|_| false),
        ),
    ];
    for (why, filters, pick) in cases {
        assert_eq!(
            d.list(&all(filters)),
            expected(&d, pick, Sort::UpdatedDesc),
            "filter: {why}"
        );
    }
    // A view and a filter combine: mine ∩ team B is empty, mine ∩ team A is mine.
    let mine_in = |team| InboxQuery {
        filters: InboxFilters {
            team: vec![team],
            ..Default::default()
        },
        ..InboxQuery::new(me, View::Mine)
    };
    assert!(
        d.list(&mine_in(team_b)).is_empty(),
        "none of mine is in team B"
    );
    assert_eq!(
        d.list(&mine_in(d.team_a)),
        expected(&d, |c| c.assignee_id == Some(me), Sort::UpdatedDesc),
        "all of mine is in team A"
    );
    let unassigned_of_other = InboxQuery {
        filters: InboxFilters {
            assignee: vec![Some(other)],
            ..Default::default()
        },
        ..InboxQuery::new(me, View::Unassigned)
    };
    assert!(
        d.list(&unassigned_of_other).is_empty(),
        "unassigned and assigned to Omar cannot both hold"
    );
}

#[test]
fn sorts_order_by_time_or_urgency() {
    let d = stocked();
    for sort in [Sort::UpdatedDesc, Sort::UpdatedAsc, Sort::PriorityDesc] {
        let q = InboxQuery {
            sort,
            ..InboxQuery::new(d.me.id, View::All)
        };
        assert_eq!(
            d.list(&q),
            expected(&d, |_| true, sort),
            "{sort:?} orders the whole list"
        );
    }
}

#[test]
fn keyset_pages_cover_the_list_once_in_order() {
    let mut d = stocked();
    // Ties on update time: paging must still neither skip nor repeat.
    let acme = d.acme.clone();
    for i in 0..9 {
        let subject = ["Export fails", "Export is slow", "Export is empty"][i % 3];
        d.add(
            &acme,
            Conv {
                priority: [Priority::High, Priority::Normal, Priority::Urgent][i % 3],
                ..base(subject, 30)
            },
        );
    }
    let filtered = InboxFilters {
        status: vec![ConversationStatus::Open, ConversationStatus::Pending],
        ..Default::default()
    };
    for sort in [Sort::UpdatedDesc, Sort::UpdatedAsc, Sort::PriorityDesc] {
        for (filters, pick) in [
            (
                InboxFilters::default(),
                Box::new(|_: &Conversation| true) as Box<dyn Fn(&Conversation) -> bool>,
            ),
            (
                filtered.clone(),
                Box::new(|c: &Conversation| c.status != ConversationStatus::Resolved),
            ),
        ] {
            let mut q = InboxQuery {
                sort,
                limit: 2,
                filters,
                ..InboxQuery::new(d.me.id, View::All)
            };
            let mut seen = Vec::new();
            loop {
                assert!(
                    seen.len() <= d.convs.len(),
                    "paging must end: a cursor that does not advance would loop forever"
                );
                let page = query::inbox(&d.mirror, &q).unwrap();
                assert!(page.len() <= 2, "a page holds at most `limit` rows");
                let Some(last) = page.last() else { break };
                q.after = Some(last.cursor());
                seen.extend(page.iter().map(|r| r.conversation.id));
            }
            assert_eq!(
                seen,
                expected(&d, pick, sort),
                "pages of two under {sort:?} add up to the whole list, once, in order"
            );
        }
    }
}

#[test]
fn lists_follow_updates_and_deletes() {
    let mut d = stocked();
    let me = d.me.id;
    let mut conv = d.convs[3].clone(); // unassigned, open
    d.update(&mut conv, |c| {
        c.assignee_id = Some(me);
        c.updated_at = at(70);
    });
    let mine = d.list(&InboxQuery::new(me, View::Mine));
    assert_eq!(
        mine.first(),
        Some(&conv.id),
        "taken by me, it tops my list as the newest update"
    );
    assert!(
        !d.list(&InboxQuery::new(me, View::Unassigned))
            .contains(&conv.id),
        "and it leaves the unassigned view"
    );
    d.feed.delete(&conv, conv.version + 1);
    d.feed.flush(&mut d.mirror);
    assert!(
        !d.list(&InboxQuery::new(me, View::All)).contains(&conv.id),
        "a deleted conversation is listed nowhere"
    );
}

#[test]
fn list_rows_carry_account_name_and_plan() {
    let d = stocked();
    let rows = query::inbox(&d.mirror, &InboxQuery::new(d.me.id, View::All)).unwrap();
    for r in rows {
        let (name, plan) = if r.conversation.account_id == d.acme.id {
            ("Acme Robotics", "business")
        } else {
            ("Globex Foods", "starter")
        };
        assert_eq!(
            r.account_name.as_deref(),
            Some(name),
            "the list shows who is asking"
        );
        assert_eq!(
            r.plan.as_deref(),
            Some(plan),
            "and on which plan, for triage"
        );
    }
}

#[test]
fn opening_a_conversation_gives_messages_in_order_and_the_account() {
    let mut d = stocked();
    let conv = d.convs[0].clone();
    // Sent out of order across pages: the view orders by message id (time).
    let first = message(&mut d.ids, &conv, "Our invoice lists 30 seats", 1);
    let second = message(&mut d.ids, &conv, "We only have 25 users", 2);
    let third = message(&mut d.ids, &conv, "Thanks, checking now", 3);
    d.feed.put(&third);
    d.feed.put(&first);
    d.feed.flush(&mut d.mirror);
    d.feed.put(&second);
    let seat = Seat {
        id: SeatId(d.ids.next()),
        account_id: d.acme.id,
        user_id: UserId(d.ids.next()),
        assigned_at: t0(),
        version: 1,
        created_at: t0(),
        updated_at: t0(),
    };
    d.feed.put(&seat);
    let other = d.convs[1].clone();
    d.say(&other, "Not part of the Acme conversation", 5);

    let view = query::conversation(&d.mirror, conv.id).unwrap().unwrap();
    assert_eq!(
        view.conversation, conv,
        "the record comes back as the server sent it"
    );
    assert_eq!(
        view.messages.iter().map(|m| m.id).collect::<Vec<_>>(),
        vec![first.id, second.id, third.id],
        "its own messages only, oldest first"
    );
    let acct = view.account.expect("Acme is mirrored");
    assert_eq!(acct.account.name, "Acme Robotics");
    assert_eq!(
        acct.account.health_score, 72,
        "staff see the health score in the side panel"
    );
    assert_eq!(
        acct.plan.map(|p| p.code).as_deref(),
        Some("business"),
        "the plan of the current subscription"
    );
    assert_eq!(
        acct.subscription.map(|s| s.seats),
        Some(25),
        "seats paid for"
    );
    assert_eq!(acct.seats_used, 1, "seats assigned, from the seat records");
    assert!(
        query::conversation(&d.mirror, ConversationId(uuid::Uuid::nil()))
            .unwrap()
            .is_none(),
        "an unknown conversation is None, not an error"
    );
}

/// Random conversations and random queries: every list, paged or not,
/// equals the same filter and sort done naively over the records.
#[test]
fn lists_agree_with_a_naive_model() {
    let mut d = desk();
    let mut rng = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move |n: usize| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        (rng % n as u64) as usize
    };
    let assignees = [Some(d.me.id), Some(d.other.id), None];
    let teams = [Some(d.team_a), Some(d.team_b), None];
    let accounts = [d.acme.clone(), d.globex.clone()];
    let areas = ["billing", "sso", "api"];
    for _ in 0..150 {
        let c = Conv {
            subject: "Random",
            status: ConversationStatus::ALL[next(4)],
            priority: Priority::ALL[next(4)],
            channel: Channel::ALL[next(3)],
            area: areas[next(3)],
            assignee: assignees[next(3)],
            team: teams[next(3)],
            updated: next(40) as i64,
        };
        let acc = accounts[next(2)].clone();
        let conv = conversation(&mut d.ids, &acc, &c);
        d.feed.put(&conv);
        d.convs.push(conv);
    }
    d.feed.flush(&mut d.mirror);
    let acme = d.acme.id;
    let me_teams = d.team_a;
    for round in 0..200 {
        let pick_some = |next: &mut dyn FnMut(usize) -> usize, n: usize| -> Vec<usize> {
            (0..n).filter(|_| next(3) == 0).collect()
        };
        let view = [View::Mine, View::Unassigned, View::MyTeams, View::All][next(4)];
        let sort = [Sort::UpdatedDesc, Sort::UpdatedAsc, Sort::PriorityDesc][next(3)];
        let f = InboxFilters {
            status: pick_some(&mut next, 4)
                .into_iter()
                .map(|i| ConversationStatus::ALL[i])
                .collect(),
            priority: pick_some(&mut next, 4)
                .into_iter()
                .map(|i| Priority::ALL[i])
                .collect(),
            channel: pick_some(&mut next, 3)
                .into_iter()
                .map(|i| Channel::ALL[i])
                .collect(),
            plan: pick_some(&mut next, 2)
                .into_iter()
                .map(|i| ["business", "starter"][i].to_string())
                .collect(),
            product_area: pick_some(&mut next, 3)
                .into_iter()
                .map(|i| areas[i].to_string())
                .collect(),
            assignee: pick_some(&mut next, 3)
                .into_iter()
                .map(|i| assignees[i])
                .collect(),
            team: pick_some(&mut next, 2)
                .into_iter()
                .map(|i| [d.team_a, d.team_b][i])
                .collect(),
            sla_due_before: None,
        };
        let me = d.me.id;
        let holds = |c: &Conversation| {
            let any = |v: bool, empty: bool| empty || v;
            let view_ok = match view {
                View::Mine => c.assignee_id == Some(me),
                View::Unassigned => c.assignee_id.is_none(),
                View::MyTeams => c.team_id == Some(me_teams),
                View::All => true,
            };
            let plan = if c.account_id == acme {
                "business"
            } else {
                "starter"
            };
            view_ok
                && any(f.status.contains(&c.status), f.status.is_empty())
                && any(f.priority.contains(&c.priority), f.priority.is_empty())
                && any(f.channel.contains(&c.channel), f.channel.is_empty())
                && any(f.plan.iter().any(|p| p == plan), f.plan.is_empty())
                && any(
                    f.product_area.contains(&c.product_area),
                    f.product_area.is_empty(),
                )
                && any(f.assignee.contains(&c.assignee_id), f.assignee.is_empty())
                && any(
                    c.team_id.is_some_and(|t| f.team.contains(&t)),
                    f.team.is_empty(),
                )
        };
        let want = expected(&d, holds, sort);
        let limit = 1 + next(7);
        let mut q = InboxQuery {
            view,
            sort,
            limit,
            filters: f.clone(),
            ..InboxQuery::new(me, view)
        };
        let mut got = Vec::new();
        loop {
            assert!(
                got.len() <= d.convs.len(),
                "round {round}: paging must end, a cursor that does not advance loops forever"
            );
            let page = query::inbox(&d.mirror, &q).unwrap();
            let Some(last) = page.last() else { break };
            q.after = Some(last.cursor());
            got.extend(page.iter().map(|r| r.conversation.id));
        }
        assert_eq!(
            got, want,
            "round {round}: {view:?} {sort:?} {f:?} paged by {limit} must equal the naive list"
        );
    }
}

// ---------------------------------------------------------------------------
// Search

#[test]
fn exact_subject_ranks_above_a_body_mention() {
    let mut d = stocked();
    let api = d.convs[2].clone(); // "API returns 429 during nightly sync"
    let other = d.convs[3].clone();
    d.say(
        &other,
        "Also, is the nightly sync affected by the API limits you mentioned? It returns errors.",
        41,
    );
    let hits = search::search(
        &d.mirror,
        &SearchQuery::new("API returns 429 during nightly sync"),
    )
    .unwrap();
    assert_eq!(
        hits.first().map(|h| (h.kind, h.conversation_id)),
        Some((HitKind::Conversation, Some(api.id))),
        "the conversation whose subject is the query comes first: {hits:?}"
    );
    let hits = search::search(&d.mirror, &SearchQuery::new("nightly sync")).unwrap();
    let kinds: Vec<_> = hits.iter().map(|h| (h.kind, h.conversation_id)).collect();
    assert_eq!(
        kinds,
        vec![
            (HitKind::Conversation, Some(api.id)),
            (HitKind::Message, Some(other.id))
        ],
        "a subject match outranks a body mention of the same words"
    );
    let snippet = &hits[1].snippet;
    assert!(
        snippet.iter().any(|f| f.matched && f.text == "nightly")
            && snippet.iter().any(|f| f.matched && f.text == "sync"),
        "the snippet marks the matched words: {snippet:?}"
    );
    assert_eq!(
        hits[1].title, "How do I add a workspace?",
        "a message hit is headed by its conversation's subject"
    );
}

#[test]
fn the_word_being_typed_matches_as_a_prefix() {
    let mut d = stocked();
    let invoice = d.convs[0].id;
    assert!(
        d.find(&SearchQuery::new("inv")).is_empty(),
        "three letters being typed are not matched yet (prefixes start at four)"
    );
    for typed in ["invo", "invoi", "invoice", "INVOICES", "wrong numb"] {
        let hits = d.find(&SearchQuery::new(typed));
        assert!(
            hits.contains(&(HitKind::Conversation, invoice.0)),
            "typing {typed:?} already finds \"Invoice shows the wrong number of seats\": {hits:?}"
        );
    }
    assert!(
        d.find(&SearchQuery::new("invo ")).is_empty(),
        "after a space the word is finished: \"invo\" is not a word here"
    );
    let acme = d.acme.id;
    assert_eq!(
        d.find(&SearchQuery::new("acme.te")),
        vec![(HitKind::Account, acme.0)],
        "an account is found by its domain while typing it"
    );
    let art = article(
        &mut d.ids,
        "Réinitialiser le mot de passe",
        "Use the reset link",
        "sso",
        &[],
    );
    d.feed.put(&art);
    d.feed.flush(&mut d.mirror);
    assert_eq!(
        d.find(&SearchQuery::new("reinitialiser")),
        vec![(HitKind::Article, art.id.0)],
        "diacritics do not matter"
    );
}

#[test]
fn filters_exclude_what_does_not_match() {
    let mut d = stocked();
    let (acme, globex) = (d.acme.clone(), d.globex.clone());
    let a = d.add(
        &acme,
        Conv {
            assignee: Some(d.me.id),
            team: Some(d.team_a),
            area: "reporting",
            ..base("Export of the quarterly report fails", 70)
        },
    );
    let b = d.add(
        &globex,
        Conv {
            status: ConversationStatus::Resolved,
            area: "reporting",
            ..base("Report export times out", 71)
        },
    );
    let msg_b = d.say(&b, "The export still fails for the quarterly report", 72);
    let art_all = article(
        &mut d.ids,
        "Exporting reports",
        "How to export",
        "reporting",
        &[],
    );
    let art_biz = article(
        &mut d.ids,
        "Scheduled report export",
        "Business plan feature",
        "reporting",
        &["business"],
    );
    let art_api = article(&mut d.ids, "Export via API", "Use the API", "api", &[]);
    for art in [&art_all, &art_biz, &art_api] {
        d.feed.put(art);
    }
    d.feed.flush(&mut d.mirror);

    let with = |filters: SearchFilters| SearchQuery {
        filters,
        ..SearchQuery::new("export")
    };
    let all = d.find(&SearchQuery::new("export"));
    for want in [a.id.0, b.id.0, art_all.id.0, art_biz.id.0, art_api.id.0] {
        assert!(
            all.iter().any(|(_, id)| *id == want),
            "unfiltered, every export record is found"
        );
    }
    assert_eq!(
        all.iter()
            .filter(
                |(k, _)| *k == HitKind::Message && all.contains(&(HitKind::Conversation, b.id.0))
            )
            .count(),
        0,
        "a message folds into its conversation when the conversation is already a hit"
    );

    let open = d.find(&with(SearchFilters {
        status: vec![ConversationStatus::Open],
        ..Default::default()
    }));
    assert_eq!(
        open,
        vec![(HitKind::Conversation, a.id.0)],
        "status keeps the open conversation and drops the resolved one, its message, \
         and articles (which have no status)"
    );
    let resolved = d.find(&SearchQuery {
        kinds: vec![HitKind::Message],
        ..with(SearchFilters {
            status: vec![ConversationStatus::Resolved],
            ..Default::default()
        })
    });
    assert_eq!(
        resolved,
        vec![(HitKind::Message, msg_b.id.0)],
        "a message carries its conversation's status"
    );
    let mine = d.find(&with(SearchFilters {
        assignee: vec![Some(d.me.id)],
        ..Default::default()
    }));
    assert_eq!(
        mine,
        vec![(HitKind::Conversation, a.id.0)],
        "assignee filter"
    );
    let unassigned = d.find(&with(SearchFilters {
        assignee: vec![None],
        ..Default::default()
    }));
    assert_eq!(
        unassigned,
        vec![(HitKind::Conversation, b.id.0)],
        "unassigned is a filter value too"
    );
    let team_b = d.find(&with(SearchFilters {
        team: vec![d.team_b],
        ..Default::default()
    }));
    assert!(team_b.is_empty(), "no export conversation is in team B");
    let starter = d.find(&with(SearchFilters {
        plan: vec!["starter".into()],
        ..Default::default()
    }));
    assert!(
        starter.contains(&(HitKind::Conversation, b.id.0))
            && !starter.contains(&(HitKind::Conversation, a.id.0)),
        "plan follows the conversation's account (Globex is on starter)"
    );
    assert!(
        starter.contains(&(HitKind::Article, art_all.id.0))
            && !starter.contains(&(HitKind::Article, art_biz.id.0)),
        "an article for every plan matches starter; a business-only article does not"
    );
    let area = d.find(&with(SearchFilters {
        product_area: vec!["api".into()],
        ..Default::default()
    }));
    assert_eq!(
        area,
        vec![(HitKind::Article, art_api.id.0)],
        "product area filters conversations and articles alike"
    );
    let articles_only = d.find(&SearchQuery {
        kinds: vec![HitKind::Article],
        ..SearchQuery::new("export")
    });
    assert!(
        articles_only.iter().all(|(k, _)| *k == HitKind::Article) && articles_only.len() == 3,
        "kinds restrict what is searched"
    );
}

#[test]
fn the_index_follows_updates_and_deletes() {
    let mut d = stocked();
    let mut conv = d.convs[3].clone(); // "How do I add a workspace?", unassigned
    let msg = d.say(&conv, "We need a second workspace for our agency", 41);
    d.update(&mut conv, |c| {
        c.subject = "Adding a sandbox environment".into();
        c.status = ConversationStatus::Pending;
        c.assignee_id = Some(c.requester_id);
    });
    assert!(
        d.find(&SearchQuery::new("sandbox environment"))
            .contains(&(HitKind::Conversation, conv.id.0)),
        "an edited subject is found by its new words"
    );
    assert!(
        !d.find(&SearchQuery::new("add a workspace"))
            .contains(&(HitKind::Conversation, conv.id.0)),
        "and no longer by its old ones"
    );
    let pending_msgs = d.find(&SearchQuery {
        kinds: vec![HitKind::Message],
        filters: SearchFilters {
            status: vec![ConversationStatus::Pending],
            ..Default::default()
        },
        ..SearchQuery::new("agency")
    });
    assert_eq!(
        pending_msgs,
        vec![(HitKind::Message, msg.id.0)],
        "the conversation's messages take its new status"
    );
    let open_msgs = d.find(&SearchQuery {
        filters: SearchFilters {
            status: vec![ConversationStatus::Open],
            ..Default::default()
        },
        ..SearchQuery::new("agency")
    });
    assert!(open_msgs.is_empty(), "and lose the old one: {open_msgs:?}");

    // The account moves from business to starter: its rows follow.
    let mut sub = d.acme_sub.clone();
    sub.plan_id = d.starter.id;
    sub.version += 1;
    d.feed.put(&sub);
    d.feed.flush(&mut d.mirror);
    let starter_invoice = d.find(&SearchQuery {
        filters: SearchFilters {
            plan: vec!["starter".into()],
            ..Default::default()
        },
        ..SearchQuery::new("invoice")
    });
    assert_eq!(
        starter_invoice,
        vec![(HitKind::Conversation, d.convs[0].id.0)],
        "a plan change re-files the account's conversations under the new plan"
    );
    let business = InboxQuery {
        filters: InboxFilters {
            plan: vec![d.business.code.clone()],
            ..Default::default()
        },
        ..InboxQuery::new(d.me.id, View::All)
    };
    assert!(
        d.list(&business).is_empty(),
        "and the inbox's plan filter follows too"
    );

    d.feed.delete(&msg, 2);
    d.feed.delete(&conv, conv.version + 1);
    d.feed.flush(&mut d.mirror);
    assert!(
        d.find(&SearchQuery::new("agency")).is_empty(),
        "a deleted message is not found"
    );
    assert!(
        d.find(&SearchQuery::new("sandbox")).is_empty(),
        "a deleted conversation is not found"
    );
    let acme = d.acme.clone();
    let mut renamed = acme.clone();
    renamed.name = "Acme Automation".into();
    renamed.version += 1;
    d.feed.put(&renamed);
    d.feed.flush(&mut d.mirror);
    assert_eq!(
        d.find(&SearchQuery::new("automation")),
        vec![(HitKind::Account, acme.id.0)],
        "a renamed account is found by its new name"
    );
    assert!(
        d.find(&SearchQuery::new("robotics")).is_empty(),
        "and not by its old one"
    );
}

#[test]
fn a_plan_change_refiles_the_accounts_messages() {
    // The messages are reached through their conversations (migration
    // 0006: `records_account` holds no messages).
    let mut d = stocked();
    let (acme_conv, globex_conv) = (d.convs[0].clone(), d.convs[1].clone());
    let acme_msg = d.say(&acme_conv, "The quota banner flickers on the dashboard", 11);
    let globex_msg = d.say(&globex_conv, "The quota banner is gone for us", 51);
    let quota_on = |d: &Desk, plan: &str| {
        d.find(&SearchQuery {
            kinds: vec![HitKind::Message],
            filters: SearchFilters {
                plan: vec![plan.into()],
                ..Default::default()
            },
            ..SearchQuery::new("quota banner")
        })
    };
    assert_eq!(
        quota_on(&d, "business"),
        vec![(HitKind::Message, acme_msg.id.0)]
    );
    assert_eq!(
        quota_on(&d, "starter"),
        vec![(HitKind::Message, globex_msg.id.0)]
    );

    let mut sub = d.acme_sub.clone();
    sub.plan_id = d.starter.id;
    sub.version += 1;
    d.feed.put(&sub);
    d.feed.flush(&mut d.mirror);
    assert!(
        quota_on(&d, "business").is_empty(),
        "Acme's message leaves its old plan"
    );
    let starter = quota_on(&d, "starter");
    assert!(
        starter.len() == 2
            && starter.contains(&(HitKind::Message, acme_msg.id.0))
            && starter.contains(&(HitKind::Message, globex_msg.id.0)),
        "and is found under the new one, beside Globex's (which did not move): {starter:?}"
    );
}

#[test]
fn messages_before_their_conversation_get_its_filters_on_arrival() {
    let mut d = desk();
    let acme = d.acme.clone();
    let conv = conversation(
        &mut d.ids,
        &acme,
        &Conv {
            assignee: Some(d.me.id),
            ..base("Refund request", 1)
        },
    );
    let m = message(&mut d.ids, &conv, "Please refund the duplicate charge", 2);
    d.feed.put(&m);
    d.feed.flush(&mut d.mirror);
    let mine = SearchQuery {
        filters: SearchFilters {
            assignee: vec![Some(d.me.id)],
            ..Default::default()
        },
        ..SearchQuery::new("duplicate charge")
    };
    assert!(
        d.find(&mine).is_empty(),
        "without its conversation a message has no assignee to match"
    );
    assert_eq!(
        d.find(&SearchQuery::new("duplicate charge")),
        vec![(HitKind::Message, m.id.0)],
        "but it is searchable by its words already"
    );
    d.feed.put(&conv);
    d.feed.flush(&mut d.mirror);
    assert_eq!(
        d.find(&mine),
        vec![(HitKind::Message, m.id.0)],
        "once the conversation arrives, the message matches its assignee"
    );
}

#[test]
fn hostile_or_odd_queries_never_fail() {
    let d = stocked();
    let nasty = [
        "\"AND OR (",
        "AND",
        "OR OR OR",
        "NOT",
        "NEAR(a b, 2)",
        "*",
        "\"",
        "\"\"\"",
        "title:invoice",
        "{title body}: invoice",
        "tags : 0s6F70656E0",
        "^invoice",
        "invoice -seats",
        "a + b",
        "(((((",
        ")))",
        "'; DROP TABLE records; --",
        "%_content",
        "\u{0}\u{2}\u{3}",
        "🙂 emoji",
        "   ",
        "",
        "x",
        "ß straße",
        "日本語のテキスト",
        &"long ".repeat(500),
    ];
    for text in nasty {
        let hits = search::search(&d.mirror, &SearchQuery::new(text));
        assert!(
            hits.is_ok(),
            "{text:?} is searched as plain words, never as FTS5 syntax: {hits:?}"
        );
    }
    assert!(
        d.find(&SearchQuery::new("tags : 0s6F70656E0")).is_empty(),
        "typed text never matches the hidden filter tokens"
    );
    assert_eq!(
        d.mirror.count(Kind::Conversation).unwrap(),
        6,
        "and nothing typed reaches SQL"
    );
}

#[test]
fn a_rebuilt_index_answers_like_one_kept_live() {
    let live = stocked();
    let bulk = desk();
    search::suspend_indexing(&bulk.mirror).unwrap();
    assert!(
        !search::indexing_live(&bulk.mirror).unwrap(),
        "suspended indexing is visible, so a UI can say results may be stale"
    );
    let mut bulk = stock(bulk);
    assert!(
        bulk.find(&SearchQuery::new("invoice")).is_empty(),
        "while suspended, new records are not indexed"
    );
    assert_eq!(
        bulk.list(&InboxQuery::new(bulk.me.id, View::All)).len(),
        6,
        "lists do not depend on the search index and stay complete"
    );
    let rows = search::rebuild_index(&bulk.mirror).unwrap();
    assert_eq!(
        rows,
        6 + 2,
        "every conversation and account has one search row after the rebuild"
    );
    assert!(
        search::indexing_live(&bulk.mirror).unwrap(),
        "a rebuild resumes live indexing"
    );
    let plan_filter = SearchFilters {
        plan: vec!["starter".into()],
        ..Default::default()
    };
    for (text, filters) in [
        ("invoice", SearchFilters::default()),
        ("sync", SearchFilters::default()),
        ("acme", SearchFilters::default()),
        ("mobi", SearchFilters::default()),
        ("dela", plan_filter.clone()),
        (
            "sso",
            SearchFilters {
                status: vec![ConversationStatus::Open],
                ..Default::default()
            },
        ),
    ] {
        let q = SearchQuery {
            filters: filters.clone(),
            ..SearchQuery::new(text)
        };
        assert_eq!(
            bulk.find(&q),
            live.find(&q),
            "{text:?} {filters:?}: the rebuilt index finds what the live one does, in the same order"
        );
    }
    let globex = bulk.globex.clone();
    let late = bulk.add(&globex, base("Calendar sync drops events", 80));
    assert_eq!(
        bulk.find(&SearchQuery::new("calendar")),
        vec![(HitKind::Conversation, late.id.0)],
        "after the rebuild, changes are indexed as they arrive again"
    );
}

// ---------------------------------------------------------------------------
// Against a real portal-core: rows exactly as the server shapes them

mod real_server {
    use std::collections::HashMap;
    use std::sync::Arc;

    use portico_inbox::Mirror;
    use portico_inbox::pull::pull;
    use portico_inbox::query::{self, InboxFilters, InboxQuery, Sort, View};
    use portico_inbox::search::{self, HitKind, SearchQuery};
    use portico_model::*;
    use portico_portal::seed::{self, SeedSize};
    use portico_portal::{ManualClock, store};

    /// Records as the server stores them (unredacted: the test's truth).
    fn read<T: Record>(state: &portico_portal::AppState, sql: &str) -> Vec<T> {
        state.store.read(|c| store::query(c, sql, [])).unwrap()
    }

    #[tokio::test]
    async fn a_mirror_pulled_from_portal_core_lists_opens_and_searches() {
        let dir = tempfile::tempdir().unwrap();
        let at: jiff::Timestamp = "2026-11-15T12:00:00Z".parse().unwrap();
        let state =
            portico_portal::open_state(&dir.path().join("p.db"), Arc::new(ManualClock::new(at)))
                .unwrap();
        seed::seed(&state.store, SeedSize::TINY, at).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(portico_portal::serve(
            listener,
            state.clone(),
            std::future::pending(),
        ));
        let http = reqwest::Client::new();
        let token = crate::common::session_token(&base, "agent@portico.test").await;
        let mut mirror = Mirror::open_in_memory().unwrap();
        pull(&mut mirror, &http, &base, &token).await.unwrap();

        let convs: Vec<Conversation> = read(&state, "SELECT data FROM conversations");
        let subs: Vec<Subscription> = read(&state, "SELECT data FROM subscriptions");
        let plans: Vec<Plan> = read(&state, "SELECT data FROM plans");
        let me: User = read::<User>(&state, "SELECT data FROM users")
            .into_iter()
            .find(|u: &User| u.email == "agent@portico.test")
            .unwrap();

        // Every conversation, newest first, across pages.
        let mut q = InboxQuery {
            limit: 7,
            ..InboxQuery::new(me.id, View::All)
        };
        let mut listed: Vec<Conversation> = Vec::new();
        loop {
            assert!(listed.len() <= convs.len(), "paging must end");
            let page = query::inbox(&mirror, &q).unwrap();
            let Some(last) = page.last() else { break };
            q.after = Some(last.cursor());
            listed.extend(page.into_iter().map(|r| r.conversation));
        }
        assert_eq!(
            listed.len(),
            convs.len(),
            "the all view lists every conversation the server holds"
        );
        assert!(
            listed
                .windows(2)
                .all(|w| (w[0].updated_at, w[0].id) >= (w[1].updated_at, w[1].id)),
            "newest first by the server's own timestamps"
        );

        // The plan filter follows the server's subscriptions.
        let code_of: HashMap<PlanId, &str> =
            plans.iter().map(|p| (p.id, p.code.as_str())).collect();
        let plan_of: HashMap<AccountId, &str> = subs
            .iter()
            .filter(|s| s.status != SubscriptionStatus::Canceled)
            .map(|s| (s.account_id, code_of[&s.plan_id]))
            .collect();
        for p in &plans {
            let q = InboxQuery {
                limit: 500,
                filters: InboxFilters {
                    plan: vec![p.code.clone()],
                    ..Default::default()
                },
                sort: Sort::UpdatedAsc,
                ..InboxQuery::new(me.id, View::All)
            };
            let mut got: Vec<ConversationId> = query::inbox(&mirror, &q)
                .unwrap()
                .into_iter()
                .map(|r| r.conversation.id)
                .collect();
            let mut want: Vec<ConversationId> = convs
                .iter()
                .filter(|c| plan_of.get(&c.account_id) == Some(&p.code.as_str()))
                .map(|c| c.id)
                .collect();
            got.sort();
            want.sort();
            assert_eq!(
                got, want,
                "plan {} lists its accounts' conversations",
                p.code
            );
        }

        // Opening shows every message, oldest first.
        let busiest = convs.iter().max_by_key(|c| c.message_count).unwrap();
        let view = query::conversation(&mirror, busiest.id).unwrap().unwrap();
        assert_eq!(
            view.messages.len(),
            busiest.message_count as usize,
            "all of its messages are there for staff, internal notes included"
        );
        assert!(
            view.messages
                .windows(2)
                .all(|w| w[0].created_at <= w[1].created_at),
            "oldest first"
        );
        assert!(
            view.account
                .is_some_and(|a| a.plan.is_some() && a.subscription.is_some()),
            "the side panel has the account's plan and subscription"
        );

        // A seeded subject is found while typing it.
        let subject = &busiest.subject;
        let word: String = subject
            .split_whitespace()
            .find(|w| w.chars().count() >= 6)
            .unwrap()
            .chars()
            .take(5)
            .collect();
        let hits = search::search(&mirror, &SearchQuery::new(word.clone())).unwrap();
        assert!(
            hits.iter().any(|h| h.kind == HitKind::Conversation
                && convs
                    .iter()
                    .any(|c| c.id.0 == h.id && c.subject == *subject)),
            "typing {word:?} finds a conversation titled {subject:?}: {hits:?}"
        );
    }
}

// ---------------------------------------------------------------------------
// SLA-due lists and the mentions index

fn clock(first: Option<i64>, next: Option<i64>, resolution: Option<i64>) -> sla::SlaClock {
    sla::SlaClock {
        started_at: at(0),
        first_response_due: first.map(at),
        next_response_due: next.map(at),
        resolution_due: resolution.map(at),
        first_responded_at: None,
        resolved_at: None,
        paused_since: None,
        warned: vec![],
        breached: vec![],
    }
}

#[test]
fn sla_due_lists_hold_running_clocks_due_before_the_bound_in_due_order() {
    let mut d = desk();
    let me = d.me.id;
    let base = Conv {
        subject: "sla",
        status: ConversationStatus::Open,
        priority: Priority::Normal,
        channel: Channel::Email,
        area: "billing",
        assignee: Some(me),
        team: Some(d.team_a),
        updated: 10,
    };
    let acme = d.acme.clone();
    // (first response due, next response due, resolution due) in minutes.
    let make = |d: &mut Desk,
                subject,
                due: (Option<i64>, Option<i64>, Option<i64>),
                edit: fn(&mut Conversation)| {
        let mut c = d.add(
            &acme,
            Conv {
                subject,
                ..base.clone()
            },
        );
        d.update(&mut c, |c| {
            c.sla = Some(clock(due.0, due.1, due.2));
            edit(c);
        });
        c
    };
    let breached = make(&mut d, "breached", (Some(30), None, Some(600)), |_| {});
    let soon = make(&mut d, "soon", (None, Some(70), Some(500)), |_| {});
    let later = make(&mut d, "later", (None, None, Some(300)), |_| {});
    let _far = make(&mut d, "far", (Some(5_000), None, None), |_| {});
    let _paused = make(&mut d, "paused", (Some(20), None, None), |c| {
        c.status = ConversationStatus::Pending;
        c.sla.as_mut().unwrap().paused_since = Some(at(15));
    });
    let _resolved = make(&mut d, "resolved", (None, None, Some(40)), |c| {
        c.status = ConversationStatus::Resolved;
        c.sla.as_mut().unwrap().resolved_at = Some(at(35));
    });
    let theirs = make(&mut d, "theirs", (Some(10), None, None), |c| {
        c.assignee_id = None
    });
    let _no_sla = d.add(
        &acme,
        Conv {
            subject: "none",
            ..base.clone()
        },
    );

    let q = |view, before: i64| InboxQuery {
        filters: InboxFilters {
            sla_due_before: Some(at(before)),
            ..InboxFilters::default()
        },
        // Ignored: SLA lists are in due order.
        sort: Sort::UpdatedDesc,
        limit: 50,
        ..InboxQuery::new(me, view)
    };
    assert_eq!(
        d.list(&q(View::All, 400)),
        vec![theirs.id, breached.id, soon.id, later.id],
        "due before the bound, soonest first; paused, resolved, far and no-SLA conversations are not due"
    );
    assert_eq!(
        d.list(&q(View::Mine, 60)),
        vec![breached.id],
        "the view still applies"
    );
    let rows = query::inbox(&d.mirror, &q(View::All, 400)).unwrap();
    let soon_row = rows.iter().find(|r| r.conversation.id == soon.id).unwrap();
    let due = soon_row
        .sla_due
        .as_ref()
        .expect("a running clock shows its due");
    assert_eq!(due.at, at(70));
    assert_eq!(due.metric, sla::SlaMetric::NextResponse);
    // Pages of one continue in due order without gaps.
    let mut seen = Vec::new();
    let mut page = q(View::All, 400);
    page.limit = 1;
    loop {
        let rows = query::inbox(&d.mirror, &page).unwrap();
        let Some(last) = rows.last() else { break };
        seen.push(last.conversation.id);
        page.after = Some(last.cursor());
    }
    assert_eq!(seen, vec![theirs.id, breached.id, soon.id, later.id]);

    // A first reply settles that metric: the resolution due is next.
    let mut b = breached.clone();
    d.update(&mut b, |c| {
        let s = c.sla.as_mut().unwrap();
        s.first_response_due = None;
        s.first_responded_at = Some(at(45));
    });
    assert_eq!(
        d.list(&q(View::All, 400)),
        vec![theirs.id, soon.id, later.id],
        "its resolution is due at 600, after the bound"
    );
}

#[test]
fn mentions_come_from_the_index_written_with_the_note() {
    let mut d = desk();
    let me = d.me.id;
    let other = d.other.id;
    let acme = d.acme.clone();
    let conv = d.add(
        &acme,
        Conv {
            subject: "mention me",
            status: ConversationStatus::Open,
            priority: Priority::Normal,
            channel: Channel::Chat,
            area: "billing",
            assignee: None,
            team: None,
            updated: 1,
        },
    );
    let note = |d: &mut Desk, body: &str, minute, mentions: Vec<UserId>| {
        let mut m = message(&mut d.ids, &conv, body, minute);
        m.kind = MessageKind::InternalNote;
        m.mentions = mentions;
        d.feed.put(&m);
        d.feed.flush(&mut d.mirror);
        m
    };
    let first = note(&mut d, "@Mia look", 2, vec![me]);
    let _not_me = note(&mut d, "@Omar look", 3, vec![other]);
    let both = note(&mut d, "@Mia @Omar", 4, vec![me, other]);
    // A customer message naming me is not a mention.
    let mut said = message(&mut d.ids, &conv, "Mia?", 5);
    said.mentions = vec![me];
    d.feed.put(&said);
    d.feed.flush(&mut d.mirror);
    let ids = |d: &Desk, who| -> Vec<MessageId> {
        query::mentions(&d.mirror, who, 50)
            .unwrap()
            .into_iter()
            .map(|m| m.message.id)
            .collect()
    };
    assert_eq!(ids(&d, me), vec![both.id, first.id], "newest first");
    assert_eq!(
        query::mentions(&d.mirror, me, 50).unwrap()[0]
            .subject
            .as_deref(),
        Some("mention me")
    );
    // An edit dropping the mention and a deletion leave the index.
    let mut edited = first.clone();
    edited.mentions = vec![];
    edited.version += 1;
    d.feed.put(&edited);
    d.feed.flush(&mut d.mirror);
    assert_eq!(ids(&d, me), vec![both.id]);
    d.feed.delete(&both, both.version + 1);
    d.feed.flush(&mut d.mirror);
    assert!(ids(&d, me).is_empty());
    assert_eq!(ids(&d, other).len(), 1);
}

/// A store written by version 4 of the schema (fields read through
/// generated columns) holding records is upgraded in place by migration
/// 0005: nothing is lost, the new plain columns say what the JSON says, and
/// lists, search, opening a conversation and later changes work as before.
#[test]
fn a_version_4_store_with_records_upgrades_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v4.db");
    let mut ids = Ids(0);
    let team = TeamId(ids.next());
    let me = staff(&mut ids, "Mia", &[team]);
    let business = plan(&mut ids, "business");
    let acme = account(&mut ids, "Acme Robotics", "acme.test");
    let sub = subscription(&mut ids, &acme, &business, 25);
    let conv = conversation(
        &mut ids,
        &acme,
        &Conv {
            assignee: Some(me.id),
            team: Some(team),
            ..base("Seats on the invoice", 10)
        },
    );
    let first = message(&mut ids, &conv, "Our invoice lists 30 seats", 1);
    let mut note = message(&mut ids, &conv, "Checking with billing", 2);
    note.kind = MessageKind::InternalNote;
    note.mentions = vec![me.id];
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        common::version_4_schema(&c);
        let put = |kind: Kind, id: uuid::Uuid, account: Option<AccountId>, data: String| {
            c.execute(
                "INSERT INTO records (kind, id, account_id, version, data) VALUES (?1, ?2, ?3, 1, ?4)",
                rusqlite::params![kind.as_str(), id.to_string(), account.map(|a| a.to_string()), data],
            )
            .unwrap();
        };
        put(
            Kind::User,
            me.id.0,
            None,
            serde_json::to_string(&me).unwrap(),
        );
        put(
            Kind::Plan,
            business.id.0,
            None,
            serde_json::to_string(&business).unwrap(),
        );
        put(
            Kind::Account,
            acme.id.0,
            None,
            serde_json::to_string(&acme).unwrap(),
        );
        put(
            Kind::Subscription,
            sub.id.0,
            Some(acme.id),
            serde_json::to_string(&sub).unwrap(),
        );
        put(
            Kind::Conversation,
            conv.id.0,
            Some(acme.id),
            serde_json::to_string(&conv).unwrap(),
        );
        for m in [&first, &note] {
            put(
                Kind::Message,
                m.id.0,
                Some(acme.id),
                serde_json::to_string(m).unwrap(),
            );
        }
    }

    let mut mirror = Mirror::open(&path).unwrap();
    let c = rusqlite::Connection::open(&path).unwrap();
    let count = |sql: &str| -> i64 { c.query_row(sql, [], |r| r.get(0)).unwrap() };
    assert_eq!(count("PRAGMA user_version"), 7, "migrated to version 7");
    assert_eq!(
        count("SELECT count(*) FROM records"),
        7,
        "every record is kept"
    );
    assert_eq!(
        count(common::COLUMNS_DISAGREEING_WITH_DATA),
        0,
        "the new columns are filled from the JSON"
    );
    assert_eq!(
        count("SELECT count(*) FROM mentions"),
        1,
        "the note's mention is kept"
    );

    let mine = query::inbox(&mirror, &InboxQuery::new(me.id, View::Mine)).unwrap();
    assert_eq!(
        mine.iter().map(|r| r.conversation.id).collect::<Vec<_>>(),
        vec![conv.id],
        "the list still finds the conversation by its assignee"
    );
    assert_eq!(mine[0].plan.as_deref(), Some("business"));
    // "lists" is in the message only (the subject would fold it away).
    let hits = search::search(&mirror, &SearchQuery::new("lists ")).unwrap();
    assert!(
        hits.iter()
            .any(|h| h.kind == HitKind::Message && h.conversation_id == Some(conv.id)),
        "search still finds the message and its conversation: {hits:?}"
    );
    let view = query::conversation(&mirror, conv.id).unwrap().unwrap();
    assert_eq!(
        view.messages.iter().map(|m| m.id).collect::<Vec<_>>(),
        vec![first.id, note.id],
        "opening it still lists its messages"
    );

    // Changes after the upgrade go through the same triggers.
    let mut feed = Feed {
        seq: 100,
        ..Feed::default()
    };
    let mut resolved = conv.clone();
    resolved.status = ConversationStatus::Resolved;
    resolved.version = 2;
    feed.put(&resolved);
    feed.flush(&mut mirror);
    let open_mine = query::inbox(
        &mirror,
        &InboxQuery {
            filters: InboxFilters {
                status: vec![ConversationStatus::Open],
                ..Default::default()
            },
            ..InboxQuery::new(me.id, View::Mine)
        },
    )
    .unwrap();
    assert!(
        open_mine.is_empty(),
        "a resolved conversation leaves the open list"
    );
    assert_eq!(
        count("SELECT count(*) FROM records WHERE kind = 'conversation' AND status = 'resolved'"),
        1,
        "the column follows the update"
    );
}
