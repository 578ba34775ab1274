//! Work rules under a burst: 10,000 new conversations across 50 agents.
//!
//! ```text
//! cargo bench -p portico-portal --bench work_rules -- [--conversations N] [--agents N]
//! ```
//!
//! Two measurements in one run:
//! 1. decisions only (pure): routing-rule evaluation, SLA clock start over
//!    business hours, and balanced assignment, per conversation, in memory;
//! 2. the full write path: each conversation stored with its first message,
//!    then routed, timed, assigned and audited in its own transaction, as
//!    `POST /v1/conversations` does (no HTTP), against SQLite on disk.
//!
//! The floor printed beside them is an empty write transaction (begin,
//! one insert, commit) on the same store: what any write costs here.

use std::sync::Arc;
use std::time::{Duration, Instant};

use portico_model::assign::{self, Candidate, Strategy};
use portico_model::routing::{self, Facts};
use portico_model::sla::SlaClock;
use portico_model::*;
use portico_portal::seed::{self, SeedSize};
use portico_portal::store::{self, Actor};
use portico_portal::{ManualClock, work};

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn report(name: &str, mut lat: Vec<Duration>, total: Duration) {
    lat.sort();
    println!(
        "| {name} | {} | {:.0} | {:.1} | {:.1} | {:.1} |",
        lat.len(),
        lat.len() as f64 / total.as_secs_f64(),
        pct(&lat, 0.5).as_secs_f64() * 1e6,
        pct(&lat, 0.99).as_secs_f64() * 1e6,
        lat.last().unwrap().as_secs_f64() * 1e6
    );
}

fn main() {
    let n = arg("--conversations", 10_000);
    let agents = arg("--agents", 50);
    let dir = tempfile::tempdir().unwrap();
    let at: jiff::Timestamp = "2026-11-16T10:00:00Z".parse().unwrap(); // a Monday morning
    let clock = Arc::new(ManualClock::new(at));
    let state = portico_portal::open_state(&dir.path().join("rules.db"), clock).unwrap();
    seed::seed(
        &state.store,
        SeedSize {
            accounts: 40,
            conversations: 200,
            messages: 1_000,
        },
        at,
    )
    .unwrap();

    // 50 agents spread over the three teams, online, room for the burst.
    let teams: Vec<Team> = state
        .store
        .read(|c| store::query(c, "SELECT data FROM teams ORDER BY id", []))
        .unwrap();
    let capacity = (n / agents * 3) as u32; // room for the burst in every team
    state
        .store
        .write(Actor::SYSTEM, at, |w| {
            for i in 0..agents {
                let team = &teams[i % teams.len()];
                let mut u = User {
                    id: w.new_id(),
                    account_id: None,
                    email: format!("bench{i}@portico.test"),
                    name: format!("Bench Agent {i}"),
                    role: Role::Agent,
                    status: UserStatus::Active,
                    locale: None,
                    team_ids: vec![team.id],
                    capacity,
                    away: false,
                    last_seen_at: None,
                    online: true,
                    conversation_access: Default::default(),
                    version: 0,
                    created_at: at,
                    updated_at: at,
                };
                w.insert(&mut u)?;
                let mut t: Team = store::require(w, team.id.0)?;
                t.member_ids.push(u.id);
                w.update(&mut t)?;
            }
            Ok(())
        })
        .unwrap();
    let accounts: Vec<Account> = state
        .store
        .read(|c| store::query(c, "SELECT data FROM accounts", []))
        .unwrap();
    let rules: Vec<RoutingRule> = state
        .store
        .read(|c| store::query(c, "SELECT data FROM routing_rules", []))
        .unwrap();
    let policies: Vec<SlaPolicy> = state
        .store
        .read(|c| store::query(c, "SELECT data FROM sla_policies", []))
        .unwrap();
    let areas = ["billing", "api", "reporting", "sso", "mobile"];

    // 1. Decisions only.
    let mut candidates: Vec<Candidate> = (0..agents)
        .map(|i| Candidate {
            user_id: UserId(uuid::Uuid::from_u128(i as u128 + 1)),
            open: 0,
            capacity,
            available: true,
        })
        .collect();
    let mut last = None;
    let mut lat = Vec::with_capacity(n);
    let t0 = Instant::now();
    for i in 0..n {
        let t = Instant::now();
        let acct = &accounts[i % accounts.len()];
        let facts = Facts {
            channel: Some(Channel::Chat),
            plan_code: Some(["starter", "team", "business", "enterprise"][i % 4].into()),
            product_area: areas[i % areas.len()].into(),
            region: acct.region.clone(),
            language: acct.language.clone(),
            key_account: acct.key_account,
            priority: Priority::Normal,
            request_type: None,
            text: format!("conversation {i} about exports failing"),
        };
        let fired = routing::evaluate(&rules, &facts);
        let team = fired.iter().flat_map(|r| &r.actions).find_map(|a| match a {
            routing::RuleAction::RouteToTeam { team_id } => Some(*team_id),
            _ => None,
        });
        let hours = teams
            .iter()
            .find(|t| Some(t.id) == team)
            .map(|t| t.business_hours.clone())
            .unwrap_or_else(sla::BusinessHours::always);
        let clock = SlaClock::start(&policies[i % policies.len()].targets, &hours, at);
        std::hint::black_box(&clock);
        if let Some(pick) = assign::choose(Strategy::Balanced, &candidates, last) {
            candidates
                .iter_mut()
                .find(|c| c.user_id == pick)
                .unwrap()
                .open += 1;
            last = Some(pick);
        }
        lat.push(t.elapsed());
    }
    let pure_total = t0.elapsed();

    // 2. Full write path, one transaction per conversation.
    let mut full = Vec::with_capacity(n);
    let t1 = Instant::now();
    for i in 0..n {
        let t = Instant::now();
        let acct = &accounts[i % accounts.len()];
        state
            .store
            .write(Actor::SYSTEM, at, |w| {
                let requester: User = store::query(
                    w,
                    "SELECT data FROM users WHERE account_id = ?1 LIMIT 1",
                    [acct.id.to_string()],
                )?
                .remove(0);
                let mut conv = Conversation {
                    id: w.new_id(),
                    account_id: acct.id,
                    channel: Channel::Chat,
                    subject: format!("Burst conversation {i}"),
                    status: ConversationStatus::Open,
                    requester_id: requester.id,
                    product_area: areas[i % areas.len()].into(),
                    request_id: None,
                    last_message_at: at,
                    message_count: 1,
                    snoozed_until: None,
                    priority: Priority::Normal,
                    assignee_id: None,
                    team_id: None,
                    tags: vec![],
                    sla_policy_id: None,
                    sla: None,
                    sla_next_check: None,
                    version: 0,
                    created_at: at,
                    updated_at: at,
                };
                w.insert(&mut conv)?;
                let mut msg = Message {
                    id: w.new_id(),
                    conversation_id: conv.id,
                    account_id: acct.id,
                    kind: MessageKind::Customer,
                    author_id: Some(requester.id),
                    author_name: requester.name.clone(),
                    body: "Exports fail since this morning.".into(),
                    mentions: vec![],
                    email: None,
                    delivery: None,
                    version: 0,
                    created_at: at,
                    updated_at: at,
                };
                w.insert(&mut msg)?;
                work::conversation_created(w, &mut conv, &msg.body)
            })
            .unwrap();
        full.push(t.elapsed());
    }
    let full_total = t1.elapsed();

    // Floor: one insert per transaction on the same store.
    let mut floor = Vec::with_capacity(n);
    let t2 = Instant::now();
    for i in 0..n {
        let t = Instant::now();
        state
            .store
            .write(Actor::SYSTEM, at, |w| {
                let mut r = UsageRecord {
                    id: w.new_id(),
                    account_id: accounts[i % accounts.len()].id,
                    meter: "api_calls".into(),
                    quantity: 1,
                    recorded_at: at,
                    version: 0,
                    created_at: at,
                    updated_at: at,
                };
                w.insert(&mut r)
            })
            .unwrap();
        floor.push(t.elapsed());
    }
    let floor_total = t2.elapsed();

    let assigned: i64 = state
        .store
        .read(|c| Ok(c.query_row("SELECT count(*) FROM conversations WHERE data ->> '$.subject' LIKE 'Burst%' AND assignee_id IS NOT NULL", [], |r| r.get(0))?))
        .unwrap();
    // Spread within each team: balanced assignment keeps it within one.
    let spreads: Vec<String> = teams
        .iter()
        .map(|t| {
            let loads: Vec<i64> = state
                .store
                .read(|c| {
                    let mut s = c.prepare(
                        "SELECT count(*) FROM conversations WHERE data ->> '$.subject' LIKE 'Burst%'
                         AND team_id = ?1 AND assignee_id IS NOT NULL GROUP BY assignee_id",
                    )?;
                    let v = s
                        .query_map([t.id.to_string()], |r| r.get(0))?
                        .collect::<Result<Vec<i64>, _>>()?;
                    Ok(v)
                })
                .unwrap();
            format!(
                "{} {}-{}",
                t.name,
                loads.iter().min().unwrap_or(&0),
                loads.iter().max().unwrap_or(&0)
            )
        })
        .collect();
    println!(
        "\n{n} new conversations, {agents} agents in {} teams, {} routing rules, {} SLA policies.",
        teams.len(),
        rules.len(),
        policies.len()
    );
    println!(
        "Assigned {assigned} of {n}. Per-agent load (min-max) by team: {}.\n",
        spreads.join(", ")
    );
    println!("| path | conversations | per second | p50 µs | p99 µs | max µs |");
    println!("|---|---|---|---|---|---|");
    report("decisions only (rules + SLA + assignment)", lat, pure_total);
    report(
        "full write path (store, route, SLA, assign, audit)",
        full,
        full_total,
    );
    report("floor: one-insert write transaction", floor, floor_total);
}
