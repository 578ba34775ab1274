//! The asker's account as sentences an answer may quote.
//!
//! Every value is read from the record *as `redact` shapes it for the
//! asker*, never from the stored record: a field the asker may not see is
//! absent from the map and so absent from the facts (a member gets no
//! invoice facts; nobody gets health score, MRR or notes). Only the asker's
//! own account is read: the viewer carries it, the question cannot name it.

use portico_knowledge::compose::Fact;
use portico_model::*;
use rusqlite::Connection;
use serde_json::{Map, Value};

use crate::error::Result;
use crate::store;

/// Facts plus the numbers actions are proposed from.
#[derive(Debug, Clone, Default)]
pub struct AccountPicture {
    pub facts: Vec<Fact>,
    pub plan: Option<Plan>,
    /// Seats paid for, held, and the plan's maximum.
    pub seats: Option<(u32, u32, u32)>,
    /// (meter key, name, percent used) for limited meters.
    pub usage: Vec<(String, String, u64)>,
    /// Features the plan has that onboarding shows unused.
    pub unused: Vec<String>,
    /// Features the plan lacks, with the cheapest plan that has each.
    pub missing: Vec<(String, Plan)>,
}

/// A plan feature as customers call it, and the words that ask about it.
pub fn feature_words(code: &str) -> (&'static str, &'static [&'static str]) {
    match code {
        "sso" => (
            "single sign-on (SSO)",
            &[
                "sso",
                "single sign-on",
                "sign-on",
                "okta",
                "saml",
                "identity provider",
                "entra",
            ],
        ),
        "audit_log" => ("the audit log", &["audit", "log", "who changed"]),
        "workflows" => ("workflows", &["workflow", "automate", "automation"]),
        "integrations" => (
            "integrations",
            &["integration", "slack", "salesforce", "hubspot", "connect"],
        ),
        "chat_support" => ("chat support", &["chat support", "live chat"]),
        "video_support" => ("video support", &["video"]),
        "sandbox" => ("a sandbox workspace", &["sandbox", "test environment"]),
        "dedicated_csm" => (
            "a dedicated customer success manager",
            &["csm", "success manager"],
        ),
        "dashboards" => ("dashboards", &["dashboard"]),
        "email_support" => ("email support", &["email support"]),
        _ => ("", &[]),
    }
}

fn label(code: &str) -> String {
    match feature_words(code).0 {
        "" => code.replace('_', " "),
        l => l.to_owned(),
    }
}

fn str_of<'a>(m: &'a Map<String, Value>, k: &str) -> Option<&'a str> {
    m.get(k).and_then(Value::as_str)
}

fn u64_of(m: &Map<String, Value>, k: &str) -> Option<u64> {
    m.get(k).and_then(Value::as_u64)
}

fn i64_of(m: &Map<String, Value>, k: &str) -> Option<i64> {
    m.get(k).and_then(Value::as_i64)
}

fn grouped(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

fn day(m: &Map<String, Value>, k: &str) -> Option<String> {
    let t: jiff::Timestamp = str_of(m, k)?.parse().ok()?;
    Some(t.strftime("%B %-d, %Y").to_string())
}

fn list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

fn fact(key: impl Into<String>, text: impl Into<String>, topics: &[&str]) -> Fact {
    Fact {
        key: key.into(),
        text: text.into(),
        topics: topics.iter().map(|t| t.to_string()).collect(),
    }
}

/// The account facts for a customer viewer; staff get none (they ask about
/// knowledge, not about "my account").
pub fn account_picture(c: &Connection, viewer: &Viewer) -> Result<AccountPicture> {
    let mut pic = AccountPicture::default();
    let Some(account_id) = viewer.account_id.filter(|_| !viewer.is_staff()) else {
        return Ok(pic);
    };
    if authorize(viewer, Action::ReadAccount(account_id)).is_err() {
        return Ok(pic);
    }
    let Some(account) = store::get::<Account>(c, account_id.0)?.and_then(|a| redact(viewer, &a))
    else {
        return Ok(pic);
    };
    let account_name = str_of(&account, "name")
        .unwrap_or("your account")
        .to_owned();
    let sub: Option<Subscription> = store::query(
        c,
        "SELECT data FROM subscriptions WHERE account_id = ?1",
        [account_id.to_string()],
    )?
    .pop();
    let Some(sub) = sub.as_ref().and_then(|s| redact(viewer, s)) else {
        return Ok(pic);
    };
    let plans: Vec<Plan> =
        store::query(c, "SELECT data FROM plans ORDER BY data ->> '$.tier'", [])?;
    let plan_id = str_of(&sub, "plan_id").unwrap_or_default().to_owned();
    let Some(plan) = plans.iter().find(|p| p.id.to_string() == plan_id).cloned() else {
        return Ok(pic);
    };
    let Some(plan_view) = redact(viewer, &plan) else {
        return Ok(pic);
    };
    let plan_name = str_of(&plan_view, "name").unwrap_or_default().to_owned();
    let features: Vec<String> = plan_view
        .get("features")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();

    pic.plan = Some(plan.clone());
    pic.facts.push(fact(
        "plan",
        format!("{account_name} is on the {plan_name} plan."),
        &[
            "plan",
            "tier",
            "subscription",
            "include",
            "upgrade",
            "downgrade",
            "change",
        ],
    ));
    let labels: Vec<String> = features.iter().map(|f| label(f)).collect();
    let meters: Vec<String> = plan
        .meters
        .iter()
        .map(|m| match m.included {
            Some(n) => format!("{} {} of {}", grouped(n), m.unit, m.name.to_lowercase()),
            None => format!("unlimited {}", m.name.to_lowercase()),
        })
        .collect();
    pic.facts.push(fact(
        "plan_features",
        format!(
            "The {plan_name} plan includes {}, with {} per billing period.",
            list(&labels),
            list(&meters)
        ),
        &[
            "include",
            "feature",
            "offer",
            "come with",
            "entitle",
            "what do i get",
        ],
    ));

    // Seats: paid for (subscription, customer-visible) and held (seat rows).
    let seats = u64_of(&sub, "seats").unwrap_or(0) as u32;
    let held = store::count_for_account(c, Kind::Seat, account_id)?;
    let max = u64_of(&plan_view, "max_seats").unwrap_or(0) as u32;
    pic.seats = Some((seats, held, max));
    let free = seats.saturating_sub(held);
    pic.facts.push(fact(
        "seats",
        format!(
            "{held} of your {seats} seats are in use ({free} free); the {plan_name} plan allows up to {} seats.",
            grouped(max as u64)
        ),
        &["seat", "licence", "license", "user", "people", "invite", "hire", "teammate", "access"],
    ));
    if viewer.role == Role::CustomerMember {
        pic.facts.push(fact(
            "role",
            "Seats, the plan and invoices are managed by your account's administrators.",
            &[
                "seat", "plan", "invoice", "bill", "upgrade", "add", "change", "pay",
            ],
        ));
    }

    // Usage against limits, fullest first.
    let meters: Vec<UsageMeter> = store::query(
        c,
        "SELECT data FROM usage_meters WHERE account_id = ?1 ORDER BY id",
        [account_id.to_string()],
    )?;
    let mut usage: Vec<(u64, Fact, String, String)> = Vec::new();
    for m in &meters {
        let Some(v) = redact(viewer, m) else { continue };
        let (Some(used), Some(name), Some(unit), Some(key)) = (
            u64_of(&v, "used"),
            str_of(&v, "name"),
            str_of(&v, "unit"),
            str_of(&v, "meter"),
        ) else {
            continue;
        };
        let Some(limit) = u64_of(&v, "limit").filter(|l| *l > 0) else {
            continue;
        };
        let pct = used.saturating_mul(100) / limit;
        let state = match pct {
            100.. => ", over the limit",
            80..=99 => ", close to the limit",
            _ => "",
        };
        let ends = day(&v, "period_end")
            .map(|d| format!("; it resets on {d}"))
            .unwrap_or_default();
        usage.push((
            pct,
            fact(
                format!("usage:{key}"),
                format!(
                    "{name}: {} of {} {unit} used this billing period ({pct}%{state}){ends}.",
                    grouped(used),
                    grouped(limit)
                ),
                &[
                    "usage", "limit", "quota", "near", "api", "call", "storage", "throttle",
                    "slow", "used", "reset", "exceed",
                ],
            ),
            key.to_owned(),
            name.to_owned(),
        ));
    }
    usage.sort_by_key(|u| std::cmp::Reverse(u.0));
    for (pct, f, key, name) in usage {
        pic.usage.push((key, name, pct));
        pic.facts.push(f);
    }

    // Entitlements not used yet: plan features whose onboarding step the
    // account has not completed.
    let progress: Vec<OnboardingProgress> = store::query(
        c,
        "SELECT data FROM onboarding_progress WHERE account_id = ?1",
        [account_id.to_string()],
    )?;
    for p in &progress {
        if redact(viewer, p).is_none() {
            continue;
        }
        let Some(path) = store::get::<OnboardingPath>(c, p.path_id.0)? else {
            continue;
        };
        for step in &path.steps {
            let Some(feature) = &step.feature else {
                continue;
            };
            if features.contains(feature)
                && !p.completed_steps.contains(&step.key)
                && !pic.unused.contains(feature)
            {
                let (_, words) = feature_words(feature);
                let mut topics = vec!["unused", "include", "feature", "entitle", "set up"];
                topics.extend_from_slice(words);
                pic.facts.push(fact(
                    format!("unused:{feature}"),
                    format!(
                        "Your plan includes {}, which your team has not set up yet.",
                        label(feature)
                    ),
                    &topics,
                ));
                pic.unused.push(feature.clone());
            }
        }
    }

    // Features the plan lacks: say which plan has them.
    for f in [
        "sso",
        "audit_log",
        "workflows",
        "integrations",
        "sandbox",
        "video_support",
    ] {
        if features.iter().any(|x| x == f) {
            continue;
        }
        let with: Vec<&Plan> = plans
            .iter()
            .filter(|p| p.features.iter().any(|x| x == f))
            .collect();
        let Some(cheapest) = with.first() else {
            continue;
        };
        let names: Vec<String> = with.iter().map(|p| p.name.clone()).collect();
        let (_, words) = feature_words(f);
        let l = label(f);
        let mut first = l.chars();
        let capital = first
            .next()
            .map(|c| c.to_uppercase().collect::<String>() + first.as_str())
            .unwrap_or_default();
        pic.facts.push(fact(
            format!("missing:{f}"),
            format!(
                "{capital} is not included in the {plan_name} plan; it comes with the {} plans.",
                list(&names)
            ),
            words,
        ));
        pic.missing.push((f.to_owned(), (*cheapest).clone()));
    }

    // The latest invoice, if the viewer may see invoices at all.
    let invoices: Vec<Invoice> = store::query(
        c,
        "SELECT data FROM invoices WHERE account_id = ?1 ORDER BY id DESC LIMIT 1",
        [account_id.to_string()],
    )?;
    if let Some(inv) = invoices.first().and_then(|i| redact(viewer, i)) {
        let number = str_of(&inv, "number").unwrap_or_default();
        let currency = str_of(&inv, "currency").unwrap_or("USD");
        let total = crate::invoices::money(i64_of(&inv, "total").unwrap_or(0), currency);
        let status = str_of(&inv, "status").unwrap_or_default();
        let issued = day(&inv, "issued_at").unwrap_or_default();
        let due = match status {
            "open" | "overdue" => day(&inv, "due_at")
                .map(|d| format!(", due {d}"))
                .unwrap_or_default(),
            _ => String::new(),
        };
        pic.facts.push(fact(
            "invoice:latest",
            format!("Your latest invoice, {number} for {total}, was issued on {issued} and is {status}{due}."),
            &["invoice", "bill", "receipt", "payment", "charge", "pay", "latest", "statement"],
        ));
    }

    // Open requests.
    let requests: Vec<Request> = store::query(
        c,
        "SELECT data FROM requests WHERE account_id = ?1 ORDER BY id DESC LIMIT 50",
        [account_id.to_string()],
    )?;
    let open: Vec<String> = requests
        .iter()
        .filter_map(|r| redact(viewer, r))
        .filter(|r| {
            !matches!(
                str_of(r, "status"),
                Some("resolved") | Some("closed") | None
            )
        })
        .take(3)
        .map(|r| {
            format!(
                "\"{}\" ({})",
                str_of(&r, "title").unwrap_or_default(),
                str_of(&r, "status").unwrap_or_default().replace('_', " ")
            )
        })
        .collect();
    if !open.is_empty() {
        pic.facts.push(fact(
            "requests:open",
            format!("Your open requests: {}.", list(&open)),
            &[
                "request", "ticket", "case", "status", "open", "bug", "feature", "progress",
            ],
        ));
    }
    Ok(pic)
}
