//! The desktop engine's local store at full size: loading 100k conversations,
//! 1M messages and 10k articles through `Mirror::apply`, next to a raw SQLite
//! bulk insert of the same rows, then inbox lists, opening a 500-message
//! conversation and offline search, each timed over many runs, and the
//! process's memory after loading.
//!
//! ```sh
//! cargo bench -p portico-inbox --bench local
//! cargo bench -p portico-inbox --bench local -- --conversations 10000 --runs 2000
//! ```
//!
//! Options: `--conversations N` (100000), `--messages N` (1000000),
//! `--articles N` (10000), `--runs N` per scenario (2000), `--dir PATH`
//! (where the database files go; a temporary folder by default, removed
//! afterwards), `--reuse` (keep `mirror.db` from an earlier run in `--dir`:
//! queries only), `--quick-load` (build it the fast way, unmeasured: for
//! iterating on queries), `--skip-uncached` (leave out the slowest load,
//! `Mirror::apply` as it is today).
//!
//! The data is synthetic and deterministic (fixed seed): 400 accounts on 4
//! plans, 50 agents in 5 teams, conversations spread over statuses,
//! priorities, channels, 7 product areas and 90 days; 20 conversations hold
//! 500 messages each, the others share the remaining messages; text is drawn
//! from a Zipf-distributed vocabulary (support words plus a long tail of
//! made-up ones), so common words are in a large share of the rows as in a
//! real mailbox. Results go to stdout as markdown for `docs/benchmarks.md`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use portico_inbox::Mirror;
use portico_inbox::query::{self, InboxFilters, InboxQuery, Sort, View};
use portico_inbox::search::{self, SearchFilters, SearchQuery};
use portico_model::wire::{Change, ChangeOp, ChangesPage};
use portico_model::*;

const PAGE: usize = 1_000;
const ACCOUNTS: usize = 400;
const AGENTS: usize = 50;
const TEAMS: usize = 5;
const BIG_CONVERSATIONS: usize = 20;
const BIG_MESSAGES: usize = 500;
const AREAS: &[&str] = &[
    "billing",
    "integrations",
    "reporting",
    "api",
    "sso",
    "mobile",
    "workflows",
];
const PLANS: &[&str] = &["starter", "team", "business", "enterprise"];
const TAGS: &[&str] = &["bug", "how-to", "refund", "upgrade", "outage", "vip"];

/// Frequent words first: function words, then the support vocabulary; a
/// long tail of made-up words follows (see `Vocabulary`).
const FUNCTION_WORDS: &[&str] = &[
    "the", "to", "and", "a", "is", "of", "we", "in", "it", "for", "our", "you", "on", "this",
    "that", "with", "not", "can", "be", "are", "have", "but", "from", "when", "please", "thanks",
    "after", "still", "all", "some", "any", "there", "since", "now", "just", "also", "again",
];
const SUPPORT_WORDS: &[&str] = &[
    "invoice",
    "billing",
    "export",
    "report",
    "login",
    "password",
    "sso",
    "api",
    "webhook",
    "sync",
    "error",
    "crash",
    "mobile",
    "app",
    "dashboard",
    "workflow",
    "seats",
    "upgrade",
    "plan",
    "refund",
    "charge",
    "customer",
    "account",
    "user",
    "team",
    "integration",
    "slack",
    "salesforce",
    "timeout",
    "latency",
    "page",
    "settings",
    "permission",
    "admin",
    "role",
    "invite",
    "email",
    "notification",
    "delivery",
    "delayed",
    "failed",
    "failing",
    "broken",
    "missing",
    "wrong",
    "duplicate",
    "payment",
    "card",
    "receipt",
    "tax",
    "vat",
    "currency",
    "subscription",
    "renewal",
    "cancel",
    "trial",
    "license",
    "workspace",
    "project",
    "folder",
    "file",
    "upload",
    "download",
    "csv",
    "pdf",
    "import",
    "filter",
    "search",
    "chart",
    "widget",
    "token",
    "key",
    "limit",
    "quota",
    "rate",
    "request",
    "response",
    "status",
    "server",
    "outage",
    "incident",
    "latest",
    "version",
    "release",
    "update",
    "install",
    "browser",
    "chrome",
    "safari",
    "android",
    "ios",
    "screen",
    "button",
    "link",
    "redirect",
    "loop",
    "session",
    "cookie",
    "certificate",
    "domain",
    "dns",
    "saml",
    "okta",
    "azure",
    "google",
    "calendar",
    "schedule",
    "automation",
    "trigger",
    "rule",
    "condition",
    "field",
    "custom",
    "template",
    "language",
    "translation",
    "timezone",
    "date",
    "format",
    "number",
    "decimal",
    "rounding",
    "performance",
    "slow",
    "loading",
    "spinner",
    "blank",
    "freeze",
    "memory",
    "storage",
    "backup",
    "restore",
    "delete",
    "archive",
    "history",
    "audit",
    "log",
    "security",
    "mfa",
    "reset",
    "locked",
    "unlock",
    "verify",
    "confirmation",
    "onboarding",
    "training",
    "guide",
    "documentation",
    "feature",
    "roadmap",
    "feedback",
    "dark",
    "mode",
    "theme",
    "printing",
    "nightly",
    "monthly",
    "quarterly",
    "yearly",
    "close",
    "deadline",
    "urgent",
    "blocking",
    "production",
    "staging",
    "sandbox",
    "environment",
    "endpoint",
    "payload",
    "json",
    "header",
];

/// SplitMix64: small, fast, deterministic.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
    fn bytes(&mut self) -> [u8; 10] {
        let a = self.next().to_le_bytes();
        let b = self.next().to_le_bytes();
        [a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], b[0], b[1]]
    }
}

/// Words with Zipf(1.0) frequencies over their rank.
struct Vocabulary {
    words: Vec<String>,
    cdf: Vec<f64>,
}

impl Vocabulary {
    fn new(rng: &mut Rng) -> Vocabulary {
        const SYLLABLES: &[&str] = &[
            "ka", "lo", "ve", "ri", "tan", "mor", "sel", "qui", "bra", "den", "tol", "fi", "gar",
            "nu", "pex", "zor", "lam", "vis", "cor", "ent",
        ];
        let mut words: Vec<String> = FUNCTION_WORDS
            .iter()
            .chain(SUPPORT_WORDS)
            .map(|w| w.to_string())
            .collect();
        let mut seen: std::collections::HashSet<String> = words.iter().cloned().collect();
        while words.len() < 20_000 {
            let n = 2 + rng.below(3);
            let w: String = (0..n)
                .map(|_| SYLLABLES[rng.below(SYLLABLES.len())])
                .collect();
            if seen.insert(w.clone()) {
                words.push(w);
            }
        }
        let mut total = 0.0;
        let mut cdf = Vec::with_capacity(words.len());
        for rank in 1..=words.len() {
            total += 1.0 / rank as f64;
            cdf.push(total);
        }
        for c in &mut cdf {
            *c /= total;
        }
        Vocabulary { words, cdf }
    }

    fn word(&self, rng: &mut Rng) -> &str {
        let x = (rng.next() >> 11) as f64 / (1u64 << 53) as f64;
        let i = self
            .cdf
            .partition_point(|c| *c < x)
            .min(self.words.len() - 1);
        &self.words[i]
    }

    fn text(&self, rng: &mut Rng, min: usize, max: usize) -> String {
        let n = min + rng.below(max - min + 1);
        let mut s = String::new();
        for i in 0..n {
            if i > 0 {
                s.push(' ');
            }
            s.push_str(self.word(rng));
        }
        s
    }
}

struct Size {
    conversations: usize,
    messages: usize,
    articles: usize,
}

/// Everything small enough to keep (ids the queries need).
struct World {
    agents: Vec<User>,
    teams: Vec<TeamId>,
    big: Vec<ConversationId>,
    records: usize,
}

/// Streams the dataset as change pages of `PAGE` changes, in bootstrap
/// order (plans, teams' staff, accounts, subscriptions, conversations,
/// messages, articles). Deterministic: the same pages every call.
fn generate(size: &Size, mut sink: impl FnMut(&ChangesPage)) -> World {
    let mut rng = Rng(0x5EED_1B0C);
    let vocab = Vocabulary::new(&mut rng);
    let anchor: Timestamp = "2026-11-01T00:00:00Z".parse().unwrap();
    let start = anchor - SignedDuration::from_hours(24 * 90);
    let mut seq = 0i64;
    let mut buf: Vec<Change> = Vec::with_capacity(PAGE);
    let mut records = 0usize;
    let mut put = |kind: Kind, id: uuid::Uuid, row: serde_json::Value| {
        seq += 1;
        records += 1;
        buf.push(Change {
            seq,
            kind,
            id,
            op: ChangeOp::Upsert,
            version: 1,
            row: match row {
                serde_json::Value::Object(m) => Some(m),
                _ => unreachable!("records serialize as objects"),
            },
        });
        if buf.len() == PAGE {
            sink(&ChangesPage {
                protocol: 1,
                changes: std::mem::take(&mut buf),
                next_after: seq,
                has_more: true,
                last_mutation_id: None,
                resync: false,
            });
        }
    };
    let id_at = |rng: &mut Rng, t: Timestamp| uuid_v7(t.as_millisecond() as u64, rng.bytes());

    let plans: Vec<Plan> = PLANS
        .iter()
        .enumerate()
        .map(|(i, code)| Plan {
            id: PlanId(id_at(&mut rng, start)),
            code: code.to_string(),
            name: code.to_uppercase(),
            tier: i as u8,
            currency: "EUR".into(),
            interval: BillingInterval::Month,
            seat_price: 1_000 * (i as i64 + 1),
            min_seats: 1,
            max_seats: 1_000,
            features: vec![],
            meters: vec![],
            version: 1,
            created_at: start,
            updated_at: start,
        })
        .collect();
    for p in &plans {
        put(Kind::Plan, p.id.0, json(p));
    }
    let teams: Vec<TeamId> = (0..TEAMS).map(|_| TeamId(id_at(&mut rng, start))).collect();
    let agents: Vec<User> = (0..AGENTS)
        .map(|i| User {
            id: UserId(id_at(&mut rng, start)),
            account_id: None,
            email: format!("agent{i}@portico.test"),
            name: format!("Agent {i}"),
            role: Role::Agent,
            status: UserStatus::Active,
            locale: None,
            team_ids: vec![teams[i % TEAMS]],
            capacity: 30,
            away: false,
            last_seen_at: None,
            online: true,
            conversation_access: Default::default(),
            version: 1,
            created_at: start,
            updated_at: start,
        })
        .collect();
    for a in &agents {
        put(Kind::User, a.id.0, json(a));
    }
    let accounts: Vec<Account> = (0..ACCOUNTS)
        .map(|i| Account {
            id: AccountId(id_at(&mut rng, start)),
            name: format!(
                "{} {}",
                vocab.word(&mut rng),
                ["Labs", "Foods", "Media"][i % 3]
            ),
            domain: format!("customer{i}.test"),
            region: "eu".into(),
            language: "en".into(),
            csm_owner_id: None,
            product_version: String::new(),
            sso: None,
            key_account: i % 10 == 0,
            lifecycle_stage: LifecycleStage::Active,
            health_score: (i % 101) as u8,
            mrr: 10_000 + i as i64,
            notes: String::new(),
            version: 1,
            created_at: start,
            updated_at: start,
        })
        .collect();
    for a in &accounts {
        put(Kind::Account, a.id.0, json(a));
    }
    for (i, a) in accounts.iter().enumerate() {
        // 40 % starter, 30 % team, 20 % business, 10 % enterprise.
        let p = [0, 0, 0, 0, 1, 1, 1, 2, 2, 3][i % 10];
        let s = Subscription {
            id: SubscriptionId(id_at(&mut rng, start)),
            account_id: a.id,
            plan_id: plans[p].id,
            status: SubscriptionStatus::Active,
            seats: 10 + (i % 50) as u32,
            current_period_start: start,
            current_period_end: anchor + SignedDuration::from_hours(24 * 20),
            pending_change: None,
            tax_rate_bps: 2_000,
            credit_balance: 0,
            billing_email: format!("billing@customer{i}.test"),
            version: 1,
            created_at: start,
            updated_at: start,
        };
        put(Kind::Subscription, s.id.0, json(&s));
    }

    // Conversations, opened in time order over 90 days.
    let span_ms = 90 * 24 * 3_600_000i64;
    let mut convs: Vec<(ConversationId, AccountId, Timestamp)> =
        Vec::with_capacity(size.conversations);
    let mut big = Vec::new();
    for i in 0..size.conversations {
        let opened = start
            + SignedDuration::from_millis(span_ms * i as i64 / size.conversations.max(1) as i64);
        let updated = opened + SignedDuration::from_mins(rng.below(60 * 24 * 3) as i64);
        let account = &accounts[rng.below(ACCOUNTS)];
        let status = [
            ConversationStatus::Open,
            ConversationStatus::Open,
            ConversationStatus::Pending,
            ConversationStatus::Snoozed,
            ConversationStatus::Resolved,
            ConversationStatus::Resolved,
            ConversationStatus::Resolved,
        ][rng.below(7)];
        let agent = &agents[rng.below(AGENTS)];
        let assigned = rng.chance(0.8);
        let team = if assigned {
            Some(agent.team_ids[0])
        } else if rng.chance(0.5) {
            Some(teams[rng.below(TEAMS)])
        } else {
            None
        };
        let c = Conversation {
            id: ConversationId(id_at(&mut rng, opened)),
            account_id: account.id,
            channel: [
                Channel::Chat,
                Channel::Chat,
                Channel::Email,
                Channel::Email,
                Channel::Video,
            ][rng.below(5)],
            subject: vocab.text(&mut rng, 4, 9),
            status,
            requester_id: UserId(id_at(&mut rng, opened)),
            product_area: AREAS[rng.below(AREAS.len())].into(),
            request_id: None,
            last_message_at: updated,
            message_count: 0,
            snoozed_until: (status == ConversationStatus::Snoozed)
                .then(|| anchor + SignedDuration::from_hours(24)),
            priority: [
                Priority::Low,
                Priority::Normal,
                Priority::Normal,
                Priority::High,
                Priority::Urgent,
            ][rng.below(5)],
            assignee_id: assigned.then_some(agent.id),
            team_id: team,
            tags: (0..rng.below(3))
                .map(|_| TAGS[rng.below(TAGS.len())].to_string())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect(),
            sla_policy_id: None,
            sla: None,
            sla_next_check: None,
            version: 1,
            created_at: opened,
            updated_at: updated,
        };
        if i % (size.conversations / BIG_CONVERSATIONS).max(1) == 7 && big.len() < BIG_CONVERSATIONS
        {
            big.push(c.id);
        }
        put(Kind::Conversation, c.id.0, json(&c));
        convs.push((c.id, c.account_id, opened));
    }

    // Messages: 500 for each big conversation, the rest spread 1..=2×avg-1.
    let rest = size.messages.saturating_sub(big.len() * BIG_MESSAGES);
    let others = convs.len().saturating_sub(big.len()).max(1);
    let mut left = rest;
    let mut small_seen = 0usize;
    for (conv, account, opened) in &convs {
        let n = if big.contains(conv) {
            BIG_MESSAGES
        } else {
            small_seen += 1;
            let remaining_convs = others - small_seen + 1;
            let avg = left / remaining_convs.max(1);
            let n = if remaining_convs == 1 {
                left
            } else {
                1 + rng.below((2 * avg).max(1))
            };
            let n = n.min(left);
            left -= n;
            n
        };
        for k in 0..n {
            let at = *opened + SignedDuration::from_secs(30 * k as i64);
            let m = Message {
                id: MessageId(id_at(&mut rng, at)),
                conversation_id: *conv,
                account_id: *account,
                kind: if k % 2 == 0 {
                    MessageKind::Customer
                } else {
                    MessageKind::Agent
                },
                author_id: None,
                author_name: "Ana Silva".into(),
                body: vocab.text(&mut rng, 12, 60),
                mentions: vec![],
                email: None,
                delivery: None,
                version: 1,
                created_at: at,
                updated_at: at,
            };
            put(Kind::Message, m.id.0, json(&m));
        }
    }

    for i in 0..size.articles {
        let a = Article {
            id: ArticleId(id_at(&mut rng, start)),
            slug: format!("article-{i}"),
            title: vocab.text(&mut rng, 3, 8),
            summary: vocab.text(&mut rng, 10, 20),
            body: vocab.text(&mut rng, 80, 250),
            product_area: AREAS[rng.below(AREAS.len())].into(),
            plans: if rng.chance(0.5) {
                vec![]
            } else {
                PLANS[rng.below(PLANS.len())..]
                    .iter()
                    .map(|p| p.to_string())
                    .collect()
            },
            versions: vec![],
            locale: "en".into(),
            audience: Audience::Customers,
            state: ArticleState::Approved,
            author_id: None,
            revises: None,
            from_conversation_id: None,
            translation_of: None,
            version: 1,
            created_at: start,
            updated_at: start,
        };
        put(Kind::Article, a.id.0, json(&a));
    }
    if !buf.is_empty() {
        sink(&ChangesPage {
            protocol: 1,
            changes: std::mem::take(&mut buf),
            next_after: seq,
            has_more: false,
            last_mutation_id: None,
            resync: false,
        });
    }
    World {
        agents,
        teams,
        big,
        records,
    }
}

fn json<T: serde::Serialize>(rec: &T) -> serde_json::Value {
    serde_json::to_value(rec).expect("records serialize")
}

fn vm(field: &str) -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .map(|l| l[field.len()..].trim().to_string())
        })
        .unwrap_or_else(|| "n/a".into())
}

fn mib(path: &Path) -> f64 {
    let mut total = 0u64;
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        total += std::fs::metadata(PathBuf::from(p))
            .map(|m| m.len())
            .unwrap_or(0);
    }
    total as f64 / (1024.0 * 1024.0)
}

struct Stats {
    n: usize,
    p50: Duration,
    p99: Duration,
    max: Duration,
}

fn stats(mut v: Vec<Duration>) -> Stats {
    v.sort();
    let at = |q: f64| v[((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1];
    Stats {
        n: v.len(),
        p50: at(0.50),
        p99: at(0.99),
        max: *v.last().unwrap(),
    }
}

fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1_000.0)
}

fn row(name: &str, s: &Stats, extra: &str) {
    println!(
        "| {name} | {} | {} | {} | {} | {extra} |",
        s.n,
        ms(s.p50),
        ms(s.p99),
        ms(s.max)
    );
}

/// Removes a database file with its WAL and shared-memory files.
fn remove_db(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut s = path.as_os_str().to_owned();
        s.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(s));
    }
}

/// Loads the dataset four ways and prints the rates; returns the world of
/// the mirror left at `mirror_path` (built through `Mirror::apply`).
fn load(size: &Size, dir: &Path, mirror_path: &Path, uncached: bool) -> World {
    let raw_path = dir.join("raw.db");
    let cached_path = dir.join("cached.db");
    let bulk_path = dir.join("bulk.db");
    for p in [mirror_path, &raw_path, &cached_path, &bulk_path] {
        remove_db(p);
    }

    // Raw floor: the same rows, a prepared INSERT into a bare table of the
    // same shape, one transaction per page, same journal settings.
    let mut raw = rusqlite::Connection::open(&raw_path).unwrap();
    raw.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;
         CREATE TABLE records (kind TEXT NOT NULL, id TEXT NOT NULL, account_id TEXT,
             version INTEGER NOT NULL, data TEXT NOT NULL, PRIMARY KEY (kind, id)) WITHOUT ROWID;",
    )
    .unwrap();
    let mut raw_time = Duration::ZERO;
    generate(size, |page| {
        let rows: Vec<(&str, String, Option<String>, u64, String)> = page
            .changes
            .iter()
            .map(|c| {
                let row = c.row.as_ref().unwrap();
                (
                    c.kind.as_str(),
                    c.id.to_string(),
                    row.get("account_id")
                        .and_then(|v| v.as_str())
                        .map(str::to_owned),
                    c.version,
                    serde_json::Value::Object(row.clone()).to_string(),
                )
            })
            .collect();
        let t = Instant::now();
        let tx = raw.transaction().unwrap();
        {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO records (kind, id, account_id, version, data) VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .unwrap();
            for r in &rows {
                stmt.execute(rusqlite::params![r.0, r.1, r.2, r.3, r.4])
                    .unwrap();
            }
        }
        tx.commit().unwrap();
        raw_time += t.elapsed();
    });
    drop(raw);

    // `Mirror::apply` (its statements are cached), indexing live.
    let mut cached = Mirror::open(&cached_path).unwrap();
    let mut cached_time = Duration::ZERO;
    generate(size, |page| {
        let t = Instant::now();
        cached.apply(page).unwrap();
        cached_time += t.elapsed();
    });
    drop(cached);

    // Bulk: the same with search indexing suspended while loading, one
    // rebuild at the end.
    let mut bulk = Mirror::open(&bulk_path).unwrap();
    search::suspend_indexing(&bulk).unwrap();
    let mut bulk_time = Duration::ZERO;
    generate(size, |page| {
        let t = Instant::now();
        bulk.apply(page).unwrap();
        bulk_time += t.elapsed();
    });
    drop(bulk);
    let bulk = Mirror::open(&bulk_path).unwrap();
    let t = Instant::now();
    let indexed = search::rebuild_index(&bulk).unwrap();
    let rebuild_time = t.elapsed();
    drop(bulk);

    // The engine's path as it is: Mirror::apply, page by page, indexing as
    // it goes (includes the version check, encoding each row as JSON, the
    // list indexes and the search triggers).
    let mut apply_time = Duration::ZERO;
    let mut pages = 0usize;
    let world = if uncached {
        let mut mirror = Mirror::open(mirror_path).unwrap();
        let world = generate(size, |page| {
            let t = Instant::now();
            mirror.apply(page).unwrap();
            apply_time += t.elapsed();
            pages += 1;
        });
        println!(
            "Memory after loading through Mirror::apply: VmRSS {}, VmHWM (peak) {}.",
            vm("VmRSS:"),
            vm("VmHWM:")
        );
        world
    } else {
        // Skipped: the queries run on the mirror loaded with cached
        // statements (same rows, same schema).
        std::fs::rename(&cached_path, mirror_path).unwrap();
        generate(size, |_| pages += 1)
    };

    let n = world.records as f64;
    let rate = |d: Duration| format!("{:.0}", n / d.as_secs_f64());
    println!();
    println!("| load ({pages} pages of {PAGE} changes) | records | seconds | records/s | vs raw |");
    println!("|---|---|---|---|---|");
    let line = |name: &str, d: Duration| {
        println!(
            "| {name} | {} | {:.1} | {} | {:.2} |",
            world.records,
            d.as_secs_f64(),
            rate(d),
            raw_time.as_secs_f64() / d.as_secs_f64()
        )
    };
    line("raw SQLite bulk insert, bare table (floor)", raw_time);
    if uncached {
        line("`Mirror::apply`, indexing live (as is)", apply_time);
    }
    line(
        "`Mirror::apply` (statements cached), indexing live",
        cached_time,
    );
    line(
        "same, search indexing suspended (`suspend_indexing`)",
        bulk_time,
    );
    line(
        &format!("… then `rebuild_index` ({indexed} search rows)"),
        rebuild_time,
    );
    line(
        "… suspended load + rebuild, total",
        bulk_time + rebuild_time,
    );
    println!(
        "\nOn disk: mirror {:.0} MiB (rebuilt: {:.0} MiB), raw table {:.0} MiB.",
        mib(mirror_path),
        mib(&bulk_path),
        mib(&raw_path)
    );
    for p in [&raw_path, &cached_path, &bulk_path] {
        remove_db(p);
    }
    world
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut size = Size {
        conversations: 100_000,
        messages: 1_000_000,
        articles: 10_000,
    };
    let mut runs = 2_000usize;
    let mut dir: Option<PathBuf> = None;
    let mut reuse = false;
    let mut quick = false;
    let mut skip_uncached = false;
    while let Some(a) = args.next() {
        let mut num = |what: &str| -> usize {
            args.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{what} takes a number"))
        };
        match a.as_str() {
            "--conversations" => size.conversations = num("--conversations"),
            "--messages" => size.messages = num("--messages"),
            "--articles" => size.articles = num("--articles"),
            "--runs" => runs = num("--runs"),
            "--dir" => dir = args.next().map(PathBuf::from),
            "--reuse" => reuse = true,
            "--quick-load" => quick = true,
            "--skip-uncached" => skip_uncached = true,
            "--bench" => {}
            other => panic!("unknown option {other}"),
        }
    }
    let tmp = tempfile::tempdir().expect("a temporary folder");
    let dir = dir.unwrap_or_else(|| tmp.path().to_owned());
    std::fs::create_dir_all(&dir).unwrap();
    let mirror_path = dir.join("mirror.db");

    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .next()
                .map(|l| l.trim_start_matches("MemTotal:").trim().to_owned())
        })
        .unwrap_or_default();
    println!(
        "Machine: {cpu}, {} cores, {mem} RAM; SQLite {}.",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        rusqlite::version()
    );
    println!(
        "Dataset: {} conversations, {} messages, {} articles, {ACCOUNTS} accounts, {AGENTS} agents in {TEAMS} teams; {runs} runs per scenario.",
        size.conversations, size.messages, size.articles
    );

    let world = if reuse && mirror_path.exists() {
        println!("Reusing {} (load not measured).", mirror_path.display());
        generate(&size, |_| {})
    } else if quick {
        // For iterating on queries: the fast path only, figures not kept.
        remove_db(&mirror_path);
        let mut quick = Mirror::open(&mirror_path).unwrap();
        search::suspend_indexing(&quick).unwrap();
        let world = generate(&size, |page| {
            quick.apply(page).unwrap();
        });
        drop(quick);
        search::rebuild_index(&Mirror::open(&mirror_path).unwrap()).unwrap();
        world
    } else {
        load(&size, &dir, &mirror_path, !skip_uncached)
    };

    // Reopen, as the app does at start, so the figures below are for a
    // mirror read from disk, not one still warm from loading.
    let mirror = Mirror::open(&mirror_path).unwrap();
    println!(
        "Memory with the mirror open, before the runs: VmRSS {}.",
        vm("VmRSS:")
    );

    let mut rng = Rng(0xBE7C4);
    println!();
    println!("| scenario | runs | p50 ms | p99 ms | max ms | notes |");
    println!("|---|---|---|---|---|---|");

    // Inbox lists: random views, filters, sorts; a fifth are second pages.
    let mut inbox_times = Vec::with_capacity(runs);
    let mut rows_seen = 0usize;
    let mut by_kind: HashMap<&str, Vec<Duration>> = HashMap::new();
    let mut slowest_lists: Vec<(Duration, String)> = Vec::new();
    for i in 0..runs + runs / 10 {
        let me = world.agents[rng.below(AGENTS)].id;
        let view = [View::Mine, View::Unassigned, View::MyTeams, View::All][rng.below(4)];
        let mut filters = InboxFilters {
            status: match rng.below(3) {
                0 => vec![],
                1 => vec![ConversationStatus::Open],
                _ => vec![ConversationStatus::Open, ConversationStatus::Pending],
            },
            ..Default::default()
        };
        let extra = rng.below(10);
        match extra {
            0 => filters.priority = vec![Priority::Urgent, Priority::High],
            1 => filters.channel = vec![Channel::Video],
            2 => filters.plan = vec!["enterprise".into()],
            3 => filters.product_area = vec![AREAS[rng.below(AREAS.len())].into()],
            4 => filters.team = vec![world.teams[rng.below(TEAMS)]],
            _ => {}
        }
        let sort = [Sort::UpdatedDesc, Sort::UpdatedAsc, Sort::PriorityDesc][rng.below(3)];
        let mut q = InboxQuery {
            filters,
            sort,
            ..InboxQuery::new(me, view)
        };
        let second = rng.chance(0.2);
        if second {
            let first = query::inbox(&mirror, &q).unwrap();
            q.after = first.last().map(|r| r.cursor());
        }
        let t = Instant::now();
        let rows = query::inbox(&mirror, &q).unwrap();
        let d = t.elapsed();
        if i >= runs / 10 {
            // The first tenth warms the cache and is not counted.
            inbox_times.push(d);
            rows_seen += rows.len();
            slowest_lists.push((
                d,
                format!(
                    "{:?} {:?} page {} {:?}",
                    q.view,
                    q.sort,
                    if q.after.is_some() { 2 } else { 1 },
                    q.filters
                ),
            ));
            let key = match extra {
                0..=4 => "with an extra filter",
                _ => "view + status only",
            };
            by_kind.entry(key).or_default().push(d);
        }
    }
    let s = stats(inbox_times);
    row(
        "inbox list (50 rows; view × status × sort, some with an extra filter, 20 % second pages)",
        &s,
        &format!("{:.1} rows/page on average", rows_seen as f64 / s.n as f64),
    );
    for (k, v) in by_kind {
        row(&format!("  … {k}"), &stats(v), "");
    }
    slowest_lists.sort_by_key(|s| std::cmp::Reverse(s.0));
    println!("\nSlowest lists:");
    for (d, q) in slowest_lists.iter().take(8) {
        println!("- {} ms: {q}", ms(*d));
    }
    println!();

    // Opening a 500-message conversation.
    let mut open_times = Vec::with_capacity(runs);
    for i in 0..runs + runs / 10 {
        let id = world.big[rng.below(world.big.len())];
        let t = Instant::now();
        let view = query::conversation(&mirror, id).unwrap().unwrap();
        let d = t.elapsed();
        assert_eq!(view.messages.len(), BIG_MESSAGES);
        if i >= runs / 10 {
            open_times.push(d);
        }
    }
    row(
        "open a conversation with 500 messages (+ account summary)",
        &stats(open_times),
        "typed records parsed",
    );

    // Offline search: queries are words taken from the mirrored text (so
    // they match something), 1–3 content words; 60 % typed partially (the
    // last word cut to 2+ letters); 30 % filtered.
    let mut qrng = Rng(0x5EA7C4);
    let vocab = Vocabulary::new(&mut Rng(0x5EED_1B0C));
    let mut search_times = Vec::with_capacity(runs);
    let mut by_shape: HashMap<&str, Vec<Duration>> = HashMap::new();
    let mut hits_seen = 0usize;
    let mut slowest: Vec<(Duration, String)> = Vec::new();
    for i in 0..runs + runs / 10 {
        let words = 1 + qrng.below(3);
        let mut text: Vec<String> = (0..words)
            .map(|_| {
                // Zipf over the content words: frequent ones are searched more.
                let mut w = vocab.word(&mut qrng);
                while FUNCTION_WORDS.contains(&w) {
                    w = vocab.word(&mut qrng);
                }
                w.to_string()
            })
            .collect();
        let typing = qrng.chance(0.6);
        if typing {
            // Cut at 3 letters or more: prefix matching starts at
            // search::MIN_PREFIX, shorter words being typed are ignored.
            let last = text.last_mut().unwrap();
            let len = last.chars().count();
            let keep =
                search::MIN_PREFIX + qrng.below(len.saturating_sub(search::MIN_PREFIX - 1).max(1));
            *last = last.chars().take(keep).collect();
        }
        let mut filters = SearchFilters::default();
        let filtered = qrng.chance(0.3);
        if filtered {
            match qrng.below(4) {
                0 => filters.status = vec![ConversationStatus::Open],
                1 => filters.assignee = vec![Some(world.agents[qrng.below(AGENTS)].id)],
                2 => filters.plan = vec![PLANS[qrng.below(PLANS.len())].into()],
                _ => filters.product_area = vec![AREAS[qrng.below(AREAS.len())].into()],
            }
        }
        let q = SearchQuery {
            filters,
            ..SearchQuery::new(text.join(" ") + if typing { "" } else { " " })
        };
        let t = Instant::now();
        let hits = search::search(&mirror, &q).unwrap();
        let d = t.elapsed();
        if i >= runs / 10 {
            search_times.push(d);
            hits_seen += hits.len();
            slowest.push((d, format!("{:?} {:?}", q.text, q.filters)));
            let shape = match (words, typing, filtered) {
                (_, _, true) => "filtered",
                (1, true, false) => "one word, being typed",
                (1, false, false) => "one whole word",
                (_, true, false) => "2–3 words, last being typed",
                (_, false, false) => "2–3 whole words",
            };
            by_shape.entry(shape).or_default().push(d);
        }
    }
    let s = stats(search_times);
    row(
        "offline search (top 20 across conversations, messages, accounts, articles)",
        &s,
        &format!("{:.1} hits on average", hits_seen as f64 / s.n as f64),
    );
    let mut shapes: Vec<_> = by_shape.into_iter().collect();
    shapes.sort_by_key(|(k, _)| *k);
    for (k, v) in shapes {
        row(&format!("  … {k}"), &stats(v), "");
    }
    slowest.sort_by_key(|s| std::cmp::Reverse(s.0));
    println!("\nSlowest searches:");
    for (d, q) in slowest.iter().take(8) {
        println!("- {} ms: {q}", ms(*d));
    }
    println!(
        "\nMemory after the runs: VmRSS {}, VmHWM (peak) {}.",
        vm("VmRSS:"),
        vm("VmHWM:")
    );
}
