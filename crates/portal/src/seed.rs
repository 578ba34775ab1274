//! Deterministic demo data: a SaaS company with four plans, staff of every
//! role, customer accounts near and over their limits, invoices paid, open
//! and overdue, knowledge, and conversations with messages.
//!
//! The same size and anchor time always give the same data (ids included):
//! randomness comes from a fixed-seed ChaCha generator and time from the
//! anchor. Everything is written through the store's one write path, so the
//! change log holds the seed too. Large sizes (100k conversations, 1M
//! messages) are written in batches with progress in the log.

use jiff::{SignedDuration, Timestamp, ToSpan};
use portico_model::*;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::Result;
use crate::store::{Actor, Store, Writer};

/// Demo password for every seeded user.
pub const DEMO_PASSWORD: &str = "portico-demo";

pub const DEMO_SIGN_INS: &str = "Demo sign-ins (password: portico-demo)
  staff:    admin@portico.test (admin), lead@portico.test (lead),
            agent@portico.test (agent), csm@portico.test (csm)
  customer: admin@acme.test (customer admin), member@acme.test (customer member)";

#[derive(Debug, Clone, Copy)]
pub struct SeedSize {
    pub accounts: u32,
    pub conversations: u32,
    pub messages: u64,
}

impl SeedSize {
    /// Small and quick, for tests.
    pub const TINY: SeedSize = SeedSize {
        accounts: 6,
        conversations: 60,
        messages: 300,
    };
}

/// What a seed run wrote.
#[derive(Debug, Clone, Default)]
pub struct SeedReport {
    pub accounts: u32,
    pub users: u32,
    pub conversations: u32,
    pub messages: u64,
    pub articles: u32,
    pub invoices: u32,
}

impl std::fmt::Display for SeedReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "seeded {} accounts, {} users, {} conversations, {} messages, {} articles, {} invoices",
            self.accounts,
            self.users,
            self.conversations,
            self.messages,
            self.articles,
            self.invoices
        )
    }
}

pub fn is_empty(store: &Store) -> Result<bool> {
    store.read(|c| Ok(c.query_row("SELECT count(*) FROM plans", [], |r| r.get::<_, i64>(0))? == 0))
}

/// Ids from the seeded generator, time-ordered by the record's own time.
struct Ids(ChaCha8Rng);

impl Ids {
    fn at<I: From<uuid::Uuid>>(&mut self, t: Timestamp) -> I {
        I::from(ids::uuid_v7(
            t.as_millisecond().max(0) as u64,
            self.0.random(),
        ))
    }
}

const PRODUCT_AREAS: &[&str] = &[
    "billing",
    "integrations",
    "reporting",
    "api",
    "sso",
    "mobile",
    "workflows",
];
const VERSIONS: &[&str] = &["4.2", "4.3", "5.0"];
const TAGS: &[&str] = &[
    "bug",
    "how-to",
    "refund",
    "upgrade",
    "outage",
    "feedback",
    "vip",
    "renewal",
    "onboarding",
];
const FIRST: &[&str] = &[
    "Ana", "Ben", "Chloé", "Dmitri", "Eva", "Farid", "Grace", "Hiro", "Ines", "Jonas", "Kemi",
    "Luca", "Mei", "Noah", "Olga", "Pavel",
];
const LAST: &[&str] = &[
    "Silva", "Okafor", "Dubois", "Ivanov", "Larsen", "Haddad", "Kim", "Tanaka", "Rossi", "Novak",
    "Weber", "Moreau",
];
const COMPANY_A: &[&str] = &[
    "Blue", "North", "Bright", "Silver", "Rapid", "Quiet", "Green", "Iron", "Lumen", "Atlas",
    "Nimbus", "Harbor",
];
const COMPANY_B: &[&str] = &[
    "Labs",
    "Logistics",
    "Health",
    "Foods",
    "Analytics",
    "Robotics",
    "Media",
    "Finance",
    "Travel",
    "Studio",
];
const REGIONS: &[(&str, &str)] = &[
    ("eu", "de"),
    ("eu", "fr"),
    ("us", "en"),
    ("uk", "en"),
    ("apac", "ja"),
    ("latam", "es"),
];
const SUBJECTS: &[&str] = &[
    "Can't export the monthly report",
    "SSO login loops back to the sign-in page",
    "Invoice shows the wrong number of seats",
    "Webhook deliveries are delayed",
    "How do I add a workspace?",
    "API returns 429 during nightly sync",
    "Mobile app crashes on launch",
    "Request: dark mode for dashboards",
    "Need to upgrade before our launch",
    "Users can't see the new workflow builder",
];
const CUSTOMER_LINES: &[&str] = &[
    "Hi team, since this morning the {area} page keeps failing for several of our users.",
    "We are on version {version} and followed the article, but the problem is still there.",
    "Could you check our account? This is blocking our month-end close.",
    "Thanks, that worked for most people, but two users still see the old behaviour.",
    "Is there a way to do this from the API instead of the dashboard?",
];
const AGENT_LINES: &[&str] = &[
    "Thanks for reaching out! I've checked your account and can see what is happening with {area}.",
    "Could you send the time it last failed and the user's email? That lets us find it in our logs.",
    "A fix for this shipped in {version}; updating should resolve it. I've linked the release note.",
    "I've raised this with our engineers and will update you here as soon as I hear back.",
    "Glad it's working now. I'll close this conversation, but just reply if anything comes up.",
];
const NOTE_LINES: &[&str] = &[
    "Key account, renewal next month: please keep response times tight.",
    "Looks like the known {area} issue; linking to the engineering ticket.",
    "Customer was charged twice last month, billing team already refunded.",
];

fn fill(template: &str, area: &str, version: &str) -> String {
    template
        .replace("{area}", area)
        .replace("{version}", version)
}

/// Seeds an empty store. `anchor` is "now" for the demo: subscriptions'
/// current periods contain it and history lies before it.
pub fn seed(store: &Store, size: SeedSize, anchor: Timestamp) -> Result<SeedReport> {
    let anchor = anchor.round(jiff::Unit::Second).unwrap_or(anchor);
    let mut rng = ChaCha8Rng::seed_from_u64(0x5EED_0F90_21C0);
    let mut ids = Ids(ChaCha8Rng::seed_from_u64(0x1D5));
    let mut report = SeedReport::default();
    let password_hash = crate::auth::hash_password(DEMO_PASSWORD);
    let start = anchor - SignedDuration::from_hours(24 * 90);
    tracing::info!(
        accounts = size.accounts,
        conversations = size.conversations,
        messages = size.messages,
        "seeding demo data"
    );

    // Plans, teams, staff, knowledge: one transaction.
    let (plans, staff, teams) = store.write(Actor::SYSTEM, start, |w| {
        let plans = seed_plans(w, &mut ids, start)?;
        let (staff, teams) = seed_staff(w, &mut ids, start, &password_hash)?;
        report.articles = seed_knowledge(w, &mut ids, start, &staff)?;
        seed_work_rules(w, &mut ids, start, &teams)?;
        Ok((plans, staff, teams))
    })?;
    let agents: Vec<&User> = staff
        .iter()
        .filter(|u| matches!(u.role, Role::Agent | Role::Lead))
        .collect();
    let csms: Vec<&User> = staff.iter().filter(|u| u.role == Role::Csm).collect();

    // Accounts with subscriptions, users, seats, usage and invoices.
    let mut accounts: Vec<(Account, Vec<User>)> = Vec::new();
    for chunk_start in (0..size.accounts).step_by(500) {
        let chunk_end = (chunk_start + 500).min(size.accounts);
        let mut batch = store.write(Actor::SYSTEM, start, |w| {
            let mut out = Vec::new();
            for i in chunk_start..chunk_end {
                out.push(seed_account(
                    w,
                    &mut ids,
                    &mut rng,
                    i,
                    anchor,
                    &plans,
                    &csms,
                    &password_hash,
                    &mut report,
                )?);
            }
            Ok(out)
        })?;
        accounts.append(&mut batch);
    }
    report.accounts = size.accounts;
    if let Some((first, _)) = accounts.first() {
        let first = first.id;
        store.write(Actor::SYSTEM, start, |w| {
            seed_community(w, &mut ids, start, first)
        })?;
    }
    report.users += staff.len() as u32;
    tracing::info!(
        accounts = size.accounts,
        "seeded accounts, plans, staff and knowledge"
    );

    // Conversations and messages, in batches so memory stays flat.
    let per = size.messages / size.conversations.max(1) as u64;
    let extra = size.messages % size.conversations.max(1) as u64;
    let span_secs = anchor.duration_since(start).as_secs();
    let batch = 2_000u32;
    let mut last_pct = 0;
    let mut carry = 0u64;
    for first in (0..size.conversations).step_by(batch as usize) {
        let last = (first + batch).min(size.conversations);
        store.write(Actor::SYSTEM, start, |w| {
            for i in first..last {
                // Spread counts around `per` while keeping the exact total:
                // each pair of conversations trades a random number of messages.
                let base = per + u64::from((i as u64) < extra);
                let count = if i % 2 == 0 && i + 1 < size.conversations {
                    carry = if per >= 2 {
                        rng.random_range(0..=per / 2)
                    } else {
                        0
                    };
                    base + carry
                } else if i % 2 == 1 {
                    base - carry
                } else {
                    base
                };
                let opened =
                    start + SignedDuration::from_secs(rng.random_range(0..span_secs.max(1)));
                let (account, users) = &accounts[rng.random_range(0..accounts.len())];
                seed_conversation(
                    w, &mut ids, &mut rng, account, users, &agents, &teams, opened, anchor, count,
                )?;
                report.messages += count;
            }
            Ok(())
        })?;
        report.conversations = last;
        let pct = (last as u64 * 100 / size.conversations.max(1) as u64) as u32;
        if pct / 10 > last_pct / 10 || last == size.conversations {
            tracing::info!(
                conversations = last,
                messages = report.messages,
                "seeding: {pct}% of conversations written"
            );
            last_pct = pct;
        }
    }
    // Last, so the ids of everything above stay as they were.
    store.write(Actor::SYSTEM, start, |w| {
        seed_saved_replies(w, &mut ids, start)
    })?;
    // The portal's demo extras come last, from their own generators, so
    // everything above stays exactly as before.
    store.write(Actor::SYSTEM, start, |w| {
        crate::seed_portal::seed(w, anchor, &plans, &accounts)
    })?;
    // Conversations were written with their messages, so out of id order;
    // a live server's tables are in id order (docs/benchmarks.md, "Desktop
    // bootstrap"), and benchmarks should read the same layout.
    tracing::info!(
        messages = report.messages,
        "seeding: putting conversations and messages in id order (one pass; about 50 s per million messages)"
    );
    store.cluster_by_id()?;
    tracing::info!("{report}");
    Ok(report)
}

/// The team's everyday saved replies, with placeholders the desktop fills.
fn seed_saved_replies(w: &mut Writer<'_>, ids: &mut Ids, at: Timestamp) -> Result<()> {
    let replies = [
        (
            "Looking into it",
            "Hi {{customer.first_name}},\n\nThanks for reaching out. I'm looking into this now and will get back to you shortly.\n\n{{agent.first_name}}",
        ),
        (
            "Need more details",
            "Hi {{customer.first_name}},\n\nCould you tell me a bit more: what you expected to happen, what happened instead, and roughly when?",
        ),
        (
            "Fixed, please confirm",
            "Hi {{customer.first_name}},\n\nThis should be fixed now for {{account.name}}. Could you check on your side and let me know if anything still looks off?",
        ),
        (
            "Closing",
            "I'll close this conversation for now. Just reply here if you need anything else.\n\n{{agent.first_name}}",
        ),
    ];
    for (title, body) in replies {
        let mut r = SavedReply {
            id: ids.at(at),
            title: title.into(),
            body: body.into(),
            owner_id: None,
            version: 0,
            created_at: at,
            updated_at: at,
        };
        w.insert(&mut r)?;
    }
    Ok(())
}

#[allow(clippy::type_complexity)] // a literal table of plan specs reads best inline
fn seed_plans(w: &mut Writer<'_>, ids: &mut Ids, at: Timestamp) -> Result<Vec<Plan>> {
    let meter = |meter: &str, name: &str, unit: &str, included: Option<u64>| MeterLimit {
        meter: meter.into(),
        name: name.into(),
        unit: unit.into(),
        included,
    };
    let specs: [(&str, &str, u8, i64, u32, u32, &[&str], Vec<MeterLimit>); 4] = [
        (
            "starter",
            "Starter",
            1,
            1_000,
            1,
            5,
            &["dashboards", "email_support"],
            vec![
                meter("api_calls", "API calls", "calls", Some(10_000)),
                meter("storage_gb", "Storage", "GB", Some(5)),
            ],
        ),
        (
            "team",
            "Team",
            2,
            2_000,
            3,
            50,
            &["dashboards", "email_support", "workflows", "integrations"],
            vec![
                meter("api_calls", "API calls", "calls", Some(100_000)),
                meter("storage_gb", "Storage", "GB", Some(50)),
            ],
        ),
        (
            "business",
            "Business",
            3,
            4_000,
            10,
            500,
            &[
                "dashboards",
                "email_support",
                "workflows",
                "integrations",
                "sso",
                "audit_log",
                "chat_support",
            ],
            vec![
                meter("api_calls", "API calls", "calls", Some(1_000_000)),
                meter("storage_gb", "Storage", "GB", Some(500)),
            ],
        ),
        (
            "enterprise",
            "Enterprise",
            4,
            7_000,
            50,
            10_000,
            &[
                "dashboards",
                "email_support",
                "workflows",
                "integrations",
                "sso",
                "audit_log",
                "chat_support",
                "video_support",
                "sandbox",
                "dedicated_csm",
            ],
            vec![
                meter("api_calls", "API calls", "calls", None),
                meter("storage_gb", "Storage", "GB", Some(5_000)),
            ],
        ),
    ];
    let mut plans = Vec::new();
    for (code, name, tier, price, min, max, features, meters) in specs {
        let mut p = Plan {
            id: ids.at(at),
            code: code.into(),
            name: name.into(),
            tier,
            currency: "USD".into(),
            interval: BillingInterval::Month,
            seat_price: price,
            min_seats: min,
            max_seats: max,
            features: features.iter().map(|f| f.to_string()).collect(),
            meters,
            version: 0,
            created_at: at,
            updated_at: at,
        };
        w.insert(&mut p)?;
        plans.push(p);
    }
    Ok(plans)
}

fn staff_user(
    ids: &mut Ids,
    at: Timestamp,
    email: &str,
    name: &str,
    role: Role,
    teams: Vec<TeamId>,
) -> User {
    User {
        id: ids.at(at),
        account_id: None,
        email: email.into(),
        name: name.into(),
        role,
        status: UserStatus::Active,
        locale: None,
        team_ids: teams,
        capacity: if matches!(role, Role::Agent | Role::Lead) {
            12
        } else {
            0
        },
        away: false,
        last_seen_at: None,
        online: false,
        conversation_access: Default::default(),
        version: 0,
        created_at: at,
        updated_at: at,
    }
}

fn seed_staff(
    w: &mut Writer<'_>,
    ids: &mut Ids,
    at: Timestamp,
    hash: &str,
) -> Result<(Vec<User>, Vec<Team>)> {
    let team_specs = [
        (
            "Frontline",
            "First response for every channel",
            "Europe/Berlin",
        ),
        ("Billing", "Invoices, plans and refunds", "America/New_York"),
        ("Technical", "API, SSO and integrations", "Asia/Tokyo"),
    ];
    let mut teams: Vec<Team> = team_specs
        .iter()
        .map(|(name, desc, tz)| Team {
            id: ids.at(at),
            name: (*name).into(),
            description: (*desc).into(),
            business_hours: office_hours(tz),
            member_ids: vec![],
            assignment: portico_model::assign::Strategy::Balanced,
            last_assigned_id: None,
            version: 0,
            created_at: at,
            updated_at: at,
        })
        .collect();
    let t = |i: usize| vec![teams[i].id];
    let mut staff = vec![
        staff_user(
            ids,
            at,
            "admin@portico.test",
            "Alex Admin",
            Role::Admin,
            vec![],
        ),
        staff_user(ids, at, "lead@portico.test", "Lee Lead", Role::Lead, t(0)),
        staff_user(
            ids,
            at,
            "agent@portico.test",
            "Avery Agent",
            Role::Agent,
            t(0),
        ),
        staff_user(ids, at, "csm@portico.test", "Casey CSM", Role::Csm, vec![]),
        staff_user(
            ids,
            at,
            "csm2@portico.test",
            "Robin Success",
            Role::Csm,
            vec![],
        ),
    ];
    for (i, (first, last)) in [
        ("Sam", "Frontline"),
        ("Kai", "Billing"),
        ("Noor", "Billing"),
        ("Jo", "Technical"),
        ("Ren", "Technical"),
    ]
    .iter()
    .enumerate()
    {
        // Sam joins Frontline; Kai and Noor Billing; Jo and Ren Technical.
        let team = i.div_ceil(2);
        staff.push(staff_user(
            ids,
            at,
            &format!("{}@portico.test", first.to_lowercase()),
            &format!("{first} {last}"),
            Role::Agent,
            t(team),
        ));
    }
    for u in &mut staff {
        w.insert(u)?;
        crate::auth::set_password_hash(w, u.id, hash, at)?;
    }
    for team in &mut teams {
        team.member_ids = staff
            .iter()
            .filter(|u| u.team_ids.contains(&team.id))
            .map(|u| u.id)
            .collect();
        w.insert(team)?;
    }
    Ok((staff, teams))
}

/// The demo help centre (`demo_knowledge.json`): articles written for the
/// questions customers ask most (seats, plans, invoices, usage, SSO), scoped
/// by plan, version, locale and audience, in every editorial state; release
/// notes (one unpublished) and community questions with accepted answers.
const DEMO_KNOWLEDGE: &str = include_str!("demo_knowledge.json");

#[derive(serde::Deserialize)]
struct DemoKnowledge {
    articles: Vec<DemoArticle>,
    release_notes: Vec<DemoNote>,
    community: Vec<DemoQuestion>,
}

#[derive(serde::Deserialize)]
struct DemoArticle {
    slug: String,
    title: String,
    summary: String,
    body: String,
    product_area: String,
    plans: Vec<String>,
    #[serde(default)]
    versions: Vec<String>,
    #[serde(default = "english")]
    locale: String,
    audience: Audience,
    state: ArticleState,
}

fn english() -> String {
    "en".into()
}

#[derive(serde::Deserialize)]
struct DemoNote {
    title: String,
    body: String,
    version_tag: String,
    product_area: String,
    plans: Vec<String>,
    published: bool,
}

#[derive(serde::Deserialize)]
struct DemoQuestion {
    title: String,
    body: String,
    product_area: String,
    answer: String,
}

/// The demo knowledge as stored articles would read (for tools and
/// evaluations that need the slugs without a server).
pub fn demo_article_slugs() -> Vec<String> {
    let k: DemoKnowledge = serde_json::from_str(DEMO_KNOWLEDGE).expect("demo knowledge parses");
    k.articles.into_iter().map(|a| a.slug).collect()
}

fn seed_knowledge(w: &mut Writer<'_>, ids: &mut Ids, at: Timestamp, staff: &[User]) -> Result<u32> {
    let k: DemoKnowledge = serde_json::from_str(DEMO_KNOWLEDGE).expect("demo knowledge parses");
    let mut n = 0;
    for d in k.articles {
        let mut a = Article {
            id: ids.at(at),
            slug: d.slug,
            title: d.title,
            summary: d.summary,
            body: d.body,
            product_area: d.product_area,
            plans: d.plans,
            versions: d.versions,
            locale: d.locale,
            audience: d.audience,
            state: d.state,
            author_id: staff.get(1).map(|u| u.id),
            revises: None,
            from_conversation_id: None,
            translation_of: None,
            version: 0,
            created_at: at,
            updated_at: at,
        };
        w.insert(&mut a)?;
        n += 1;
    }
    for d in k.release_notes {
        let mut note = ReleaseNote {
            id: ids.at(at),
            title: d.title,
            body: d.body,
            version_tag: d.version_tag,
            product_area: d.product_area,
            plans: d.plans,
            published: d.published,
            version: 0,
            created_at: at,
            updated_at: at,
        };
        w.insert(&mut note)?;
    }
    let mut path = OnboardingPath {
        id: ids.at(at),
        name: "Get your team productive".into(),
        plans: vec![],
        stages: vec![],
        steps: [
            "invite_team",
            "connect_integration",
            "first_dashboard",
            "set_up_sso",
        ]
        .iter()
        .map(|k| OnboardingStep {
            key: (*k).into(),
            title: k.replace('_', " "),
            description: format!("Complete {}", k.replace('_', " ")),
            feature: match *k {
                "set_up_sso" => Some("sso".into()),
                "connect_integration" => Some("integrations".into()),
                "first_dashboard" => Some("dashboards".into()),
                _ => None,
            },
            completes_on: match *k {
                "invite_team" => Some(OnboardingEvent::UserInvited),
                "connect_integration" => Some(OnboardingEvent::IntegrationConnected),
                "set_up_sso" => Some(OnboardingEvent::SsoConfigured),
                _ => None,
            },
        })
        .collect(),
        version: 0,
        created_at: at,
        updated_at: at,
    };
    w.insert(&mut path)?;
    Ok(n)
}

/// Community questions with accepted answers (asked by the first account),
/// and that account's onboarding progress: it has invited its team and
/// built a dashboard, not yet connected an integration or set up SSO.
fn seed_community(
    w: &mut Writer<'_>,
    ids: &mut Ids,
    at: Timestamp,
    first: AccountId,
) -> Result<()> {
    let k: DemoKnowledge = serde_json::from_str(DEMO_KNOWLEDGE).expect("demo knowledge parses");
    let paths: Vec<OnboardingPath> =
        crate::store::query(w, "SELECT data FROM onboarding_paths", [])?;
    for p in paths {
        let mut progress = OnboardingProgress {
            id: ids.at(at),
            account_id: first,
            path_id: p.id,
            completed_steps: vec!["invite_team".into(), "first_dashboard".into()],
            steps: ["invite_team", "first_dashboard"]
                .iter()
                .map(|k| StepCompletion {
                    key: (*k).into(),
                    how: CompletedBy::Manual,
                    at,
                    by: None,
                })
                .collect(),
            version: 0,
            created_at: at,
            updated_at: at,
        };
        w.insert(&mut progress)?;
    }
    for d in k.community {
        let mut q = CommunityPost {
            id: ids.at(at),
            account_id: Some(first),
            author_id: None,
            by_staff: false,
            verified: false,
            author_name: "Community member".into(),
            title: d.title,
            body: d.body,
            product_area: d.product_area.clone(),
            parent_id: None,
            accepted: false,
            votes: 3,
            version: 0,
            created_at: at,
            updated_at: at,
        };
        w.insert(&mut q)?;
        let mut answer = CommunityPost {
            id: ids.at(at),
            account_id: Some(first),
            author_id: None,
            by_staff: false,
            // Staff checked the accepted answers of the demo.
            verified: true,
            author_name: "Community member".into(),
            title: String::new(),
            body: d.answer,
            product_area: d.product_area,
            parent_id: Some(q.id),
            accepted: true,
            votes: 7,
            version: 0,
            created_at: at,
            updated_at: at,
        };
        w.insert(&mut answer)?;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn seed_account(
    w: &mut Writer<'_>,
    ids: &mut Ids,
    rng: &mut ChaCha8Rng,
    i: u32,
    anchor: Timestamp,
    plans: &[Plan],
    csms: &[&User],
    hash: &str,
    report: &mut SeedReport,
) -> Result<(Account, Vec<User>)> {
    let created = anchor - SignedDuration::from_hours(24 * rng.random_range(100..700));
    w.backdate(created);
    let (name, domain) = if i == 0 {
        ("Acme Corp".to_string(), "acme.test".to_string())
    } else {
        let n = format!(
            "{} {}",
            COMPANY_A.choose(rng).unwrap(),
            COMPANY_B.choose(rng).unwrap()
        );
        let d = format!("{}-{}.test", n.to_lowercase().replace(' ', ""), i);
        (format!("{n} {i}"), d)
    };
    // Acme is on Team so the demo can show seat and plan changes both ways.
    // The next three cover Starter, Business and Enterprise so every plan has
    // a customer even in the smallest seed (plan-scoped knowledge, answers).
    let random_plan = [0, 1, 1, 2, 2, 3][rng.random_range(0..6)];
    let plan = match i {
        0 => &plans[1],
        1 => &plans[0],
        2 => &plans[2],
        3 => &plans[3],
        _ => &plans[random_plan],
    };
    let (region, language) = REGIONS[rng.random_range(0..REGIONS.len())];
    let key = plan.tier >= 3 && rng.random_bool(0.5) || i == 0;
    let mut account = Account {
        id: ids.at(created),
        name,
        domain: domain.clone(),
        region: region.into(),
        language: language.into(),
        csm_owner_id: if key {
            csms.choose(rng).map(|u| u.id)
        } else {
            None
        },
        // Not drawn from the generator: the rest of the demo stays as it was.
        product_version: VERSIONS[(i as usize + 2) % VERSIONS.len()].into(),
        sso: None,
        key_account: key,
        lifecycle_stage: [
            LifecycleStage::Onboarding,
            LifecycleStage::Active,
            LifecycleStage::Active,
            LifecycleStage::AtRisk,
        ][rng.random_range(0..4)],
        health_score: rng.random_range(15..100),
        mrr: 0,
        notes: if key {
            "Exec sponsor wants a quarterly review.".into()
        } else {
            String::new()
        },
        version: 0,
        created_at: created,
        updated_at: created,
    };
    // Seats: some accounts full, some with room.
    let drawn = match plan.code.as_str() {
        "starter" => rng.random_range(plan.min_seats..=plan.max_seats),
        "team" => rng.random_range(5..=20),
        "business" => rng.random_range(12..=40),
        _ => rng.random_range(50..=80),
    };
    // Acme: 10 seats with 8 users, whatever the generator drew, so the demo
    // (and tests) can fill, add and upgrade from a known start.
    let seats = if i == 0 { 10 } else { drawn };
    let users_wanted = if i == 0 {
        seats - 2
    } else if rng.random_bool(0.3) {
        seats
    } else {
        rng.random_range(1..=seats)
    };
    account.mrr = plan.seat_price * seats as i64;
    w.insert(&mut account)?;
    // Demo accounts own their domains, so mail from any address there lands
    // on the account (see docs/email.md).
    crate::mail::sender::verify_domain(w, &account.domain, account.id, created.as_millisecond())?;

    let period_start = anchor - SignedDuration::from_hours(24 * rng.random_range(1..28));
    let period_end = period_start
        .to_zoned(jiff::tz::TimeZone::UTC)
        .checked_add(1.month())
        .expect("in range")
        .timestamp();
    let mut sub = Subscription {
        id: ids.at(created),
        account_id: account.id,
        plan_id: plan.id,
        status: SubscriptionStatus::Active,
        seats,
        current_period_start: period_start,
        current_period_end: period_end,
        pending_change: None,
        tax_rate_bps: if region == "eu" { 2_000 } else { 0 },
        credit_balance: 0,
        billing_email: format!("billing@{domain}"),
        version: 0,
        created_at: created,
        updated_at: created,
    };
    w.insert(&mut sub)?;

    let mut users = Vec::new();
    for u in 0..users_wanted {
        let (email, uname, role) = match (i, u) {
            (0, 0) => (
                "admin@acme.test".to_string(),
                "Ada Acme".to_string(),
                Role::CustomerAdmin,
            ),
            (0, 1) => (
                "member@acme.test".to_string(),
                "Milo Member".to_string(),
                Role::CustomerMember,
            ),
            _ => {
                let f = FIRST.choose(rng).unwrap();
                let l = LAST.choose(rng).unwrap();
                let role = if u == 0 {
                    Role::CustomerAdmin
                } else {
                    Role::CustomerMember
                };
                (
                    format!("{}.{}{}@{domain}", f.to_lowercase(), l.to_lowercase(), u),
                    format!("{f} {l}"),
                    role,
                )
            }
        };
        let mut user = User {
            id: ids.at(created),
            account_id: Some(account.id),
            email,
            name: uname,
            role,
            status: UserStatus::Active,
            locale: None,
            team_ids: vec![],
            capacity: 0,
            away: false,
            last_seen_at: None,
            online: false,
            conversation_access: Default::default(),
            version: 0,
            created_at: created,
            updated_at: created,
        };
        w.insert(&mut user)?;
        crate::auth::set_password_hash(w, user.id, hash, created)?;
        let mut seat = Seat {
            id: ids.at(created),
            account_id: account.id,
            user_id: user.id,
            assigned_at: created,
            version: 0,
            created_at: created,
            updated_at: created,
        };
        w.insert(&mut seat)?;
        users.push(user);
    }
    report.users += users.len() as u32;

    for m in &plan.meters {
        let mut used = match m.included {
            Some(limit) => limit * rng.random_range(20..=130) / 100,
            None => rng.random_range(1_000..5_000_000),
        };
        // Acme is near its API limit and well inside storage, so the demo's
        // "why am I near my usage limit?" has one clear answer.
        if i == 0 {
            used = m.included.unwrap_or(0) * if m.meter == "api_calls" { 92 } else { 30 } / 100;
        }
        let mut meter = UsageMeter {
            id: ids.at(created),
            account_id: account.id,
            meter: m.meter.clone(),
            name: m.name.clone(),
            unit: m.unit.clone(),
            period_start,
            period_end,
            used,
            limit: m.included,
            version: 0,
            created_at: created,
            updated_at: created,
        };
        w.insert(&mut meter)?;
    }

    // Three past monthly invoices: two paid, the latest paid, open or overdue.
    let zoned = period_start.to_zoned(jiff::tz::TimeZone::UTC);
    for k in (1..=3).rev() {
        let ps = zoned
            .checked_sub((k as i64).months())
            .expect("in range")
            .timestamp();
        let pe = zoned
            .checked_sub(((k - 1) as i64).months())
            .expect("in range")
            .timestamp();
        let subtotal = plan.seat_price * seats as i64;
        let tax = portico_model::billing::tax(subtotal, sub.tax_rate_bps);
        let status = match (k, rng.random_range(0..10)) {
            (1, 0..=1) => InvoiceStatus::Overdue,
            (1, 2..=4) => InvoiceStatus::Open,
            _ => InvoiceStatus::Paid,
        };
        let due = ps + SignedDuration::from_hours(24 * 14);
        let mut inv = Invoice {
            id: ids.at(ps),
            account_id: account.id,
            number: crate::invoices::next_number(w)?,
            status,
            currency: plan.currency.clone(),
            period_start: ps,
            period_end: pe,
            issued_at: ps,
            due_at: due,
            paid_at: (status == InvoiceStatus::Paid)
                .then(|| ps + SignedDuration::from_hours(24 * 3)),
            lines: vec![InvoiceLine {
                kind: InvoiceLineKind::Subscription,
                description: format!("{} plan, {seats} seats", plan.name),
                quantity: seats,
                unit_amount: plan.seat_price,
                amount: subtotal,
                period_start: ps,
                period_end: pe,
            }],
            subtotal,
            tax_rate_bps: sub.tax_rate_bps,
            tax,
            total: subtotal + tax,
            amount_due: if status == InvoiceStatus::Paid {
                0
            } else {
                subtotal + tax
            },
            version: 0,
            created_at: ps,
            updated_at: ps,
        };
        w.insert(&mut inv)?;
        report.invoices += 1;
    }
    Ok((account, users))
}

#[allow(clippy::too_many_arguments)]
fn seed_conversation(
    w: &mut Writer<'_>,
    ids: &mut Ids,
    rng: &mut ChaCha8Rng,
    account: &Account,
    users: &[User],
    agents: &[&User],
    teams: &[Team],
    opened: Timestamp,
    anchor: Timestamp,
    messages: u64,
) -> Result<()> {
    let requester = users.choose(rng).expect("every account has a user");
    let agent = agents.choose(rng).expect("there are agents");
    let area = *PRODUCT_AREAS.choose(rng).unwrap();
    let version = *VERSIONS.choose(rng).unwrap();
    let gap = SignedDuration::from_mins(rng.random_range(3..240));
    let mut times = Vec::with_capacity(messages as usize);
    let mut t = opened;
    for _ in 0..messages {
        times.push(t.min(anchor));
        t += gap;
    }
    let last = times.last().copied().unwrap_or(opened);
    let status = [
        ConversationStatus::Open,
        ConversationStatus::Open,
        ConversationStatus::Pending,
        ConversationStatus::Snoozed,
        ConversationStatus::Resolved,
        ConversationStatus::Resolved,
        ConversationStatus::Resolved,
    ][rng.random_range(0..7)];
    let assigned = rng.random_bool(0.8);
    let mut tags: Vec<String> = Vec::new();
    for _ in 0..rng.random_range(0..3) {
        let tag = TAGS.choose(rng).unwrap().to_string();
        if !tags.contains(&tag) {
            tags.push(tag);
        }
    }
    w.backdate(opened);
    let mut conv = Conversation {
        id: ids.at(opened),
        account_id: account.id,
        channel: [
            Channel::Chat,
            Channel::Chat,
            Channel::Email,
            Channel::Email,
            Channel::Video,
        ][rng.random_range(0..5)],
        subject: SUBJECTS.choose(rng).unwrap().to_string(),
        status,
        requester_id: requester.id,
        product_area: area.into(),
        request_id: None,
        last_message_at: last,
        message_count: messages as u32,
        snoozed_until: (status == ConversationStatus::Snoozed)
            .then(|| anchor + SignedDuration::from_hours(rng.random_range(1..72))),
        priority: if account.key_account && rng.random_bool(0.3) {
            Priority::High
        } else {
            [
                Priority::Low,
                Priority::Normal,
                Priority::Normal,
                Priority::High,
                Priority::Urgent,
            ][rng.random_range(0..5)]
        },
        assignee_id: assigned.then_some(agent.id),
        team_id: teams
            .iter()
            .find(|t| agent.team_ids.contains(&t.id))
            .map(|t| t.id),
        tags,
        sla_policy_id: None,
        sla: None,
        sla_next_check: None,
        version: 0,
        created_at: opened,
        updated_at: last,
    };
    w.insert(&mut conv)?;
    for (k, at) in times.into_iter().enumerate() {
        let (kind, author, lines) = if k % 2 == 0 {
            (MessageKind::Customer, requester, CUSTOMER_LINES)
        } else if k % 7 == 5 {
            (MessageKind::InternalNote, *agent, NOTE_LINES)
        } else {
            (MessageKind::Agent, *agent, AGENT_LINES)
        };
        w.backdate(at);
        let mut msg = Message {
            id: ids.at(at),
            conversation_id: conv.id,
            account_id: account.id,
            kind,
            author_id: Some(author.id),
            author_name: author.name.clone(),
            body: fill(lines[k % lines.len()], area, version),
            mentions: vec![],
            email: None,
            delivery: None,
            version: 0,
            created_at: at,
            updated_at: at,
        };
        w.insert(&mut msg)?;
    }
    // The conversation was opened at `opened` and last touched at `last`.
    w.backdate(last);
    w.update(&mut conv)?;
    if rng.random_bool(0.1) {
        w.backdate(opened);
        let mut req = Request {
            id: ids.at(opened),
            account_id: account.id,
            kind: [RequestKind::Support, RequestKind::Bug, RequestKind::Feature]
                [rng.random_range(0..3)],
            title: conv.subject.clone(),
            body: fill(CUSTOMER_LINES[0], area, version),
            status: [
                RequestStatus::New,
                RequestStatus::Open,
                RequestStatus::InProgress,
                RequestStatus::Planned,
                RequestStatus::Resolved,
            ][rng.random_range(0..5)],
            priority: conv.priority,
            product_area: area.into(),
            requester_id: requester.id,
            conversation_id: Some(conv.id),
            assignee_id: conv.assignee_id,
            team_id: conv.team_id,
            internal_note: "Linked from the conversation.".into(),
            votes: 0,
            attachments: vec![],
            version: 0,
            created_at: opened,
            updated_at: opened,
        };
        w.insert(&mut req)?;
    }
    Ok(())
}

/// Mon–Fri 09:00–17:00 in `tz`, no holidays.
fn office_hours(tz: &str) -> portico_model::sla::BusinessHours {
    use jiff::civil::time;
    portico_model::sla::BusinessHours::weekdays(tz, time(9, 0, 0, 0), time(17, 0, 0, 0))
}

/// The rules a new desk starts with: billing questions go to Billing, SSO
/// and API to Technical, key accounts are high priority; SLA policies by
/// plan; the key-account request alert to the CSM; SLA breaches escalate.
fn seed_work_rules(w: &mut Writer<'_>, ids: &mut Ids, at: Timestamp, teams: &[Team]) -> Result<()> {
    use portico_model::routing::{Condition, NotifyTarget, RuleAction};
    let hours = |h: i64| Some(h * 3_600);
    let rules = [
        (
            "Key accounts are high priority",
            10,
            vec![Condition::KeyAccount { is: true }],
            vec![
                RuleAction::SetPriority {
                    priority: Priority::High,
                },
                RuleAction::AddTags {
                    tags: vec!["vip".into()],
                },
            ],
        ),
        (
            "Billing questions to Billing",
            20,
            vec![Condition::ProductArea {
                is: vec!["billing".into()],
            }],
            vec![RuleAction::RouteToTeam {
                team_id: teams[1].id,
            }],
        ),
        (
            "SSO and API to Technical",
            30,
            vec![Condition::ProductArea {
                is: vec!["sso".into(), "api".into(), "integrations".into()],
            }],
            vec![RuleAction::RouteToTeam {
                team_id: teams[2].id,
            }],
        ),
        (
            "Everything else to Frontline",
            90,
            vec![],
            vec![RuleAction::RouteToTeam {
                team_id: teams[0].id,
            }],
        ),
    ];
    for (name, position, conditions, actions) in rules {
        // A rule that picks a team ends evaluation: the first team that fits wins.
        let stop = actions
            .iter()
            .any(|a| matches!(a, RuleAction::RouteToTeam { .. }));
        let mut r = RoutingRule {
            id: ids.at(at),
            name: name.into(),
            position,
            enabled: true,
            stop,
            conditions,
            actions,
            version: 0,
            created_at: at,
            updated_at: at,
        };
        w.insert(&mut r)?;
    }
    let policies = [
        (
            "Enterprise",
            10,
            vec!["enterprise"],
            portico_model::sla::SlaTargets {
                first_response_secs: hours(1),
                next_response_secs: hours(2),
                resolution_secs: hours(8),
                warn_before_secs: 900,
            },
        ),
        (
            "Business",
            20,
            vec!["business"],
            portico_model::sla::SlaTargets {
                first_response_secs: hours(4),
                next_response_secs: hours(8),
                resolution_secs: hours(24),
                warn_before_secs: 1_800,
            },
        ),
        (
            "Standard",
            90,
            vec![],
            portico_model::sla::SlaTargets {
                first_response_secs: hours(8),
                next_response_secs: hours(16),
                resolution_secs: hours(40),
                warn_before_secs: 3_600,
            },
        ),
    ];
    for (name, position, plans, targets) in policies {
        let mut p = SlaPolicy {
            id: ids.at(at),
            name: name.into(),
            position,
            plans: plans.into_iter().map(String::from).collect(),
            priorities: vec![],
            targets,
            version: 0,
            created_at: at,
            updated_at: at,
        };
        w.insert(&mut p)?;
    }
    let key_high = vec![
        Condition::KeyAccount { is: true },
        Condition::Priority {
            is: vec![Priority::High, Priority::Urgent],
        },
    ];
    let automations = [
        (
            "Key-account high-priority request: tell the CSM",
            AutomationEvent::RequestCreated,
            key_high.clone(),
            vec![RuleAction::Notify {
                target: NotifyTarget::AccountCsm,
            }],
        ),
        (
            "SLA breach: escalate to the lead",
            AutomationEvent::SlaBreach,
            vec![],
            vec![RuleAction::Escalate],
        ),
    ];
    for (name, event, conditions, actions) in automations {
        let mut a = Automation {
            id: ids.at(at),
            name: name.into(),
            event,
            enabled: true,
            conditions,
            actions,
            version: 0,
            created_at: at,
            updated_at: at,
        };
        w.insert(&mut a)?;
    }
    Ok(())
}
