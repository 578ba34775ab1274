//! The customer portal's demo data: an onboarding path per plan, 30 days
//! of daily usage for the charts, and a few more community questions (one
//! with a staff answer). Written after the rest of the demo, from its own
//! generators, so the earlier demo data does not change.

use jiff::{SignedDuration, Timestamp};
use portico_model::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::Result;
use crate::store::{self, Writer};

/// Accounts that get usage history (the charts of the first ones; a large
/// demo does not need a million usage records).
const HISTORY_ACCOUNTS: usize = 50;
/// Days of history (as the dashboard shows).
const HISTORY_DAYS: i64 = 30;

fn step(
    key: &str,
    title: &str,
    description: &str,
    feature: Option<&str>,
    on: Option<OnboardingEvent>,
) -> OnboardingStep {
    OnboardingStep {
        key: key.into(),
        title: title.into(),
        description: description.into(),
        feature: feature.map(Into::into),
        completes_on: on,
    }
}

fn invite() -> OnboardingStep {
    step(
        "invite_team",
        "Invite your team",
        "Invite the colleagues who will use the product; each invitation takes a seat.",
        None,
        Some(OnboardingEvent::UserInvited),
    )
}

fn first_request() -> OnboardingStep {
    step(
        "first_request",
        "Tell us what you need",
        "Open your first support, bug or feature request from the portal.",
        None,
        Some(OnboardingEvent::RequestSubmitted),
    )
}

fn integration() -> OnboardingStep {
    step(
        "connect_integration",
        "Connect your first integration",
        "Call the API from your systems (or install a connector); the first call completes this step.",
        Some("integrations"),
        Some(OnboardingEvent::IntegrationConnected),
    )
}

fn sso() -> OnboardingStep {
    step(
        "set_up_sso",
        "Set up single sign-on",
        "Connect your identity provider (OpenID Connect) in the account settings.",
        Some("sso"),
        Some(OnboardingEvent::SsoConfigured),
    )
}

/// Paths for new accounts (trial and onboarding stages), one per plan.
fn paths() -> Vec<(&'static str, &'static str, Vec<OnboardingStep>)> {
    let dashboard = step(
        "first_dashboard",
        "Build a dashboard",
        "Pin the numbers your team looks at every morning.",
        Some("dashboards"),
        None,
    );
    vec![
        (
            "starter",
            "Starter: first steps",
            vec![invite(), dashboard.clone(), first_request()],
        ),
        (
            "team",
            "Team: get your team productive",
            vec![
                invite(),
                integration(),
                step(
                    "build_workflow",
                    "Automate a workflow",
                    "Turn a routine hand-off into a workflow.",
                    Some("workflows"),
                    None,
                ),
                first_request(),
            ],
        ),
        (
            "business",
            "Business: a secure rollout",
            vec![
                invite(),
                sso(),
                integration(),
                step(
                    "review_audit_log",
                    "Review the audit log",
                    "See who changed what in your workspace.",
                    Some("audit_log"),
                    None,
                ),
                first_request(),
            ],
        ),
        (
            "enterprise",
            "Enterprise: launch plan",
            vec![
                invite(),
                sso(),
                integration(),
                step(
                    "set_up_sandbox",
                    "Set up a sandbox",
                    "Try changes in a sandbox workspace before they reach production.",
                    Some("sandbox"),
                    None,
                ),
                step(
                    "meet_csm",
                    "Meet your customer success manager",
                    "Book the kick-off call with your dedicated CSM.",
                    Some("dedicated_csm"),
                    None,
                ),
            ],
        ),
    ]
}

pub fn seed(
    w: &mut Writer<'_>,
    anchor: Timestamp,
    plans: &[Plan],
    accounts: &[(Account, Vec<User>)],
) -> Result<()> {
    let mut rng = ChaCha8Rng::seed_from_u64(0x90_27A1);
    let mut id_at = |t: Timestamp, rng: &mut ChaCha8Rng| {
        ids::uuid_v7(t.as_millisecond().max(0) as u64, rng.random())
    };
    let start = w.at();
    for (plan, name, steps) in paths() {
        if !plans.iter().any(|p| p.code == plan) {
            continue;
        }
        let mut p = OnboardingPath {
            id: id_at(start, &mut rng).into(),
            name: name.into(),
            plans: vec![plan.into()],
            stages: vec![LifecycleStage::Trial, LifecycleStage::Onboarding],
            steps,
            version: 0,
            created_at: start,
            updated_at: start,
        };
        w.insert(&mut p)?;
    }
    // The first account invited its team when it started.
    if let Some((first, _)) = accounts.first() {
        crate::onboarding::record_event(w, first.id, OnboardingEvent::UserInvited)?;
    }
    usage_history(w, anchor, accounts, &mut rng, &mut id_at)?;
    community(w, accounts, &mut rng, &mut id_at)?;
    link_translations(w)
}

/// The demo's German article translates "Add seats": readers who chose
/// German get it in place of the English one.
fn link_translations(w: &mut Writer<'_>) -> Result<()> {
    let by_slug = |w: &Writer<'_>, slug: &str| -> Result<Option<Article>> {
        Ok(store::query::<Article>(w, "SELECT data FROM articles WHERE slug = ?1", [slug])?.pop())
    };
    if let (Some(en), Some(mut de)) = (by_slug(w, "add-seats")?, by_slug(w, "sitze-hinzufuegen")?) {
        de.translation_of = Some(en.id);
        w.update(&mut de)?;
    }
    Ok(())
}

/// One usage record per limited meter and day for the last 30 days,
/// shaped so the current period's records add up to the meter's use.
fn usage_history(
    w: &mut Writer<'_>,
    anchor: Timestamp,
    accounts: &[(Account, Vec<User>)],
    rng: &mut ChaCha8Rng,
    id_at: &mut impl FnMut(Timestamp, &mut ChaCha8Rng) -> uuid::Uuid,
) -> Result<()> {
    let day = SignedDuration::from_hours(24);
    let today = anchor
        .to_zoned(jiff::tz::TimeZone::UTC)
        .start_of_day()
        .map(|z| z.timestamp())
        .unwrap_or(anchor);
    for (account, _) in accounts.iter().take(HISTORY_ACCOUNTS) {
        let meters: Vec<UsageMeter> = store::query(
            w,
            "SELECT data FROM usage_meters WHERE account_id = ?1 ORDER BY id",
            [account.id.to_string()],
        )?;
        for m in meters {
            let days: Vec<Timestamp> = (0..HISTORY_DAYS)
                .rev()
                .map(|d| today - day * (d as i32) + SignedDuration::from_hours(12))
                .filter(|t| *t <= anchor)
                .collect();
            let in_period = days.iter().filter(|t| **t >= m.period_start).count().max(1) as u64;
            let per_day = (m.used / in_period).max(1);
            let mut left = m.used;
            let mut remaining_in_period = days.iter().filter(|t| **t >= m.period_start).count();
            for t in &days {
                let current = *t >= m.period_start;
                let quantity = if current {
                    remaining_in_period -= 1;
                    let q = if remaining_in_period == 0 {
                        left
                    } else {
                        (per_day * rng.random_range(60..=140) / 100).min(left)
                    };
                    left -= q;
                    q
                } else {
                    per_day * rng.random_range(50..=120) / 100
                };
                if quantity == 0 {
                    continue;
                }
                let mut r = UsageRecord {
                    id: id_at(*t, rng).into(),
                    account_id: account.id,
                    meter: m.meter.clone(),
                    quantity,
                    recorded_at: *t,
                    version: 0,
                    created_at: *t,
                    updated_at: *t,
                };
                w.insert(&mut r)?;
            }
        }
    }
    Ok(())
}

/// Questions from other accounts: one answered and verified by staff, one
/// still open.
fn community(
    w: &mut Writer<'_>,
    accounts: &[(Account, Vec<User>)],
    rng: &mut ChaCha8Rng,
    id_at: &mut impl FnMut(Timestamp, &mut ChaCha8Rng) -> uuid::Uuid,
) -> Result<()> {
    let at = w.at();
    let asker = accounts.get(1).or(accounts.first());
    let Some((account, users)) = asker else {
        return Ok(());
    };
    let author = users
        .first()
        .map(|u| u.name.clone())
        .unwrap_or_else(|| "Community member".into());
    let mut post = |w: &mut Writer<'_>,
                    rng: &mut ChaCha8Rng,
                    title: &str,
                    body: &str,
                    area: &str,
                    parent: Option<CommunityPostId>,
                    by_staff: bool,
                    verified: bool|
     -> Result<CommunityPostId> {
        let mut p = CommunityPost {
            id: id_at(at, rng).into(),
            account_id: (!by_staff).then_some(account.id),
            author_id: None,
            author_name: if by_staff {
                "Portico Support".into()
            } else {
                author.clone()
            },
            title: title.into(),
            body: body.into(),
            product_area: area.into(),
            parent_id: parent,
            accepted: verified,
            votes: 0,
            by_staff,
            verified,
            version: 0,
            created_at: at,
            updated_at: at,
        };
        w.insert(&mut p)?;
        Ok(p.id)
    };
    let q = post(
        w,
        rng,
        "How do we export usage to our data warehouse?",
        "We want the daily API usage in BigQuery. Is there an export or do we poll the API?",
        "reporting",
        None,
        false,
        false,
    )?;
    post(
        w,
        rng,
        "",
        "The usage endpoint returns each meter with its daily history; most teams poll it nightly and load the JSON. A scheduled export is on the roadmap.",
        "reporting",
        Some(q),
        true,
        true,
    )?;
    post(
        w,
        rng,
        "Can members see invoices?",
        "One of our members asked where the invoices are. Is that an admin-only page?",
        "billing",
        None,
        false,
        false,
    )?;
    Ok(())
}
