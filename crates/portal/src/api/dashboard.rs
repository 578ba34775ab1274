//! The customer portal's home in one call: plan and renewal, seats, usage
//! with 30 days of history, onboarding, open requests, release notes for
//! the account's plan and version, included features not used yet, and the
//! lifecycle stage. Every record in it is shaped by the policy; billing
//! amounts and the latest invoice appear only for those who may read
//! invoices (customer admins and staff).

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use jiff::civil::Date;
use jiff::{SignedDuration, Timestamp};
use portico_model::wire::{SeatSummary, UsageLine};
use portico_model::*;
use rusqlite::Connection;
use serde::Serialize;
use serde_json::{Map, Value};

use super::{ApiError, AppState, Auth, Json, Path, authorize};
use crate::error::Result;
use crate::onboarding::{self, OnboardingStatus};
use crate::store;

pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/accounts/{id}/dashboard", get(dashboard))
}

/// Days of usage history the charts show.
pub const HISTORY_DAYS: i64 = 30;
const LATEST_REQUESTS: usize = 5;
const RELEASE_NOTES: usize = 5;

#[derive(Debug, Serialize)]
pub struct Dashboard {
    /// The account as the viewer may see it.
    pub account: Map<String, Value>,
    /// Customers see `at_risk` as `active`: the risk call is the CSM's.
    pub lifecycle_stage: LifecycleStage,
    pub plan: PlanSummary,
    pub renewal: Renewal,
    pub seats: SeatSummary,
    pub usage: Vec<MeterUsage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub onboarding: Option<OnboardingSummary>,
    pub requests: OpenRequests,
    pub release_notes: Vec<Map<String, Value>>,
    /// Features the plan includes that the account has not set up yet.
    pub unused_features: Vec<FeatureHint>,
    /// Absent for those who may not read invoices (members).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub billing: Option<Billing>,
}

#[derive(Debug, Serialize)]
pub struct PlanSummary {
    pub id: PlanId,
    pub code: String,
    pub name: String,
    pub interval: BillingInterval,
    pub currency: String,
    /// Per seat per interval, minor units (the public list price).
    pub seat_price: i64,
    pub features: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct Renewal {
    /// When the current period ends and the subscription renews.
    pub date: Timestamp,
    pub status: SubscriptionStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending_change: Option<PendingChange>,
}

#[derive(Debug, Serialize)]
pub struct MeterUsage {
    #[serde(flatten)]
    pub current: UsageLine,
    /// One entry per UTC day, oldest first, ending today.
    pub daily: Vec<DailyUsage>,
}

#[derive(Debug, Serialize)]
pub struct DailyUsage {
    pub date: Date,
    pub quantity: u64,
}

#[derive(Debug, Serialize)]
pub struct OnboardingSummary {
    pub path_id: OnboardingPathId,
    pub name: String,
    pub done: usize,
    pub total: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_step: Option<NextStep>,
}

#[derive(Debug, Serialize)]
pub struct NextStep {
    pub key: String,
    pub title: String,
}

#[derive(Debug, Serialize)]
pub struct OpenRequests {
    /// Requests not resolved or closed.
    pub open: u32,
    /// The newest open ones.
    pub latest: Vec<Map<String, Value>>,
}

#[derive(Debug, Serialize)]
pub struct FeatureHint {
    pub feature: String,
    pub label: String,
    /// The onboarding step that sets it up.
    pub step: String,
}

#[derive(Debug, Serialize)]
pub struct Billing {
    /// What a period costs now: seats × seat price, before tax and credit.
    pub period_amount: i64,
    pub currency: String,
    pub tax_rate_bps: u32,
    pub credit_balance: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latest_invoice: Option<Map<String, Value>>,
}

async fn dashboard(
    State(st): State<AppState>,
    Auth(viewer): Auth,
    Path(id): Path<AccountId>,
) -> Result<Json<Dashboard>, ApiError> {
    authorize(&viewer, Action::ReadAccount(id), Kind::Account, id)?;
    let at = st.clock.now();
    Ok(Json(st.read(move |c| build(c, &viewer, id, at)).await?))
}

/// Assembles the dashboard from one read connection (one consistent view).
pub fn build(c: &Connection, viewer: &Viewer, id: AccountId, at: Timestamp) -> Result<Dashboard> {
    let account: Account = store::require(c, id.0)?;
    let shaped = redact(viewer, &account)
        .ok_or_else(|| crate::error::PortalError::not_found(Kind::Account, id))?;
    let sub = super::accounts::subscription_of(c, id)?;
    let plan: Plan = store::require(c, sub.plan_id.0)?;
    let assigned = store::count_for_account(c, Kind::Seat, id)?;
    let onboarding = onboarding::status(c, &account, &plan)?;
    let unused_features = unused(&plan, onboarding.as_ref());
    let billing = portico_model::authorize(viewer, Action::ReadInvoices(id))
        .is_ok()
        .then(|| billing(c, viewer, &sub, &plan))
        .transpose()?;
    Ok(Dashboard {
        account: shaped,
        lifecycle_stage: if viewer.is_staff() {
            account.lifecycle_stage
        } else {
            account.lifecycle_stage.as_customers_see()
        },
        renewal: Renewal {
            date: sub.current_period_end,
            status: sub.status,
            pending_change: sub.pending_change.clone(),
        },
        seats: SeatSummary {
            seats: sub.seats,
            assigned,
            available: sub.seats.saturating_sub(assigned),
            min_seats: plan.min_seats,
            max_seats: plan.max_seats,
        },
        usage: usage(c, id, at)?,
        onboarding: onboarding.map(|o| OnboardingSummary {
            next_step: o.next().map(|s| NextStep {
                key: s.key.clone(),
                title: s.title.clone(),
            }),
            path_id: o.path_id,
            name: o.name,
            done: o.done,
            total: o.total,
        }),
        requests: open_requests(c, viewer, id)?,
        release_notes: release_notes(c, viewer, &plan, &account.product_version)?,
        unused_features,
        billing,
        plan: PlanSummary {
            id: plan.id,
            code: plan.code,
            name: plan.name,
            interval: plan.interval,
            currency: plan.currency,
            seat_price: plan.seat_price,
            features: plan.features,
        },
    })
}

fn billing(c: &Connection, viewer: &Viewer, sub: &Subscription, plan: &Plan) -> Result<Billing> {
    let latest: Option<Invoice> = store::query(
        c,
        "SELECT data FROM invoices WHERE account_id = ?1 ORDER BY id DESC LIMIT 1",
        [sub.account_id.to_string()],
    )?
    .pop();
    Ok(Billing {
        period_amount: plan.seat_price * i64::from(sub.seats),
        currency: plan.currency.clone(),
        tax_rate_bps: sub.tax_rate_bps,
        credit_balance: sub.credit_balance,
        latest_invoice: latest.and_then(|i| redact(viewer, &i)),
    })
}

/// Plan features taught by a step of the account's path that is not done.
fn unused(plan: &Plan, onboarding: Option<&OnboardingStatus>) -> Vec<FeatureHint> {
    let Some(o) = onboarding else {
        return vec![];
    };
    let mut out: Vec<FeatureHint> = Vec::new();
    for s in o.steps.iter().filter(|s| !s.done) {
        if let Some(f) = &s.feature
            && plan.features.contains(f)
            && !out.iter().any(|h| &h.feature == f)
        {
            out.push(FeatureHint {
                feature: f.clone(),
                label: feature_label(f),
                step: s.key.clone(),
            });
        }
    }
    out
}

fn feature_label(code: &str) -> String {
    match crate::knowledge::facts::feature_words(code).0 {
        "" => code.replace('_', " "),
        l => l.to_owned(),
    }
}

/// Meters with the current period's use and daily totals of the last
/// [`HISTORY_DAYS`] days (usage records are time-ordered by id, so the
/// window is an id range of the account's index).
fn usage(c: &Connection, id: AccountId, at: Timestamp) -> Result<Vec<MeterUsage>> {
    let meters: Vec<UsageMeter> = store::query(
        c,
        "SELECT data FROM usage_meters WHERE account_id = ?1 ORDER BY data ->> '$.meter'",
        [id.to_string()],
    )?;
    let today = at.to_zoned(jiff::tz::TimeZone::UTC).date();
    let first = today
        .checked_sub(SignedDuration::from_hours(24 * (HISTORY_DAYS - 1)))
        .unwrap_or(today);
    let from = first
        .to_zoned(jiff::tz::TimeZone::UTC)
        .map(|z| z.timestamp())
        .unwrap_or(at);
    let lower = ids::uuid_v7(from.as_millisecond().max(0) as u64, [0; 10]);
    let mut stmt = c.prepare_cached(
        "SELECT data ->> '$.meter', data ->> '$.recorded_at', data ->> '$.quantity'
         FROM usage_records WHERE account_id = ?1 AND id >= ?2",
    )?;
    let rows = stmt.query_map([id.to_string(), lower.to_string()], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, i64>(2)?,
        ))
    })?;
    let mut totals: std::collections::HashMap<(String, i64), u64> = Default::default();
    for row in rows {
        let (meter, when, qty) = row?;
        let Ok(when) = when.parse::<Timestamp>() else {
            continue;
        };
        let day = when.to_zoned(jiff::tz::TimeZone::UTC).date();
        let index = (day - first).get_days() as i64;
        if (0..HISTORY_DAYS).contains(&index) {
            *totals.entry((meter, index)).or_default() += qty.max(0) as u64;
        }
    }
    Ok(meters
        .into_iter()
        .map(|m| {
            let daily = (0..HISTORY_DAYS)
                .map(|i| DailyUsage {
                    date: first
                        .checked_add(SignedDuration::from_hours(24 * i))
                        .unwrap_or(first),
                    quantity: totals.get(&(m.meter.clone(), i)).copied().unwrap_or(0),
                })
                .collect();
            MeterUsage {
                current: UsageLine::from(m),
                daily,
            }
        })
        .collect())
}

fn open_requests(c: &Connection, viewer: &Viewer, id: AccountId) -> Result<OpenRequests> {
    let open: u32 = c.query_row(
        "SELECT count(*) FROM requests WHERE account_id = ?1 AND status NOT IN ('resolved', 'closed')",
        [id.to_string()],
        |r| r.get(0),
    )?;
    let latest: Vec<Request> = store::query(
        c,
        "SELECT data FROM requests WHERE account_id = ?1 AND status NOT IN ('resolved', 'closed')
         ORDER BY id DESC LIMIT ?2",
        rusqlite::params![id.to_string(), LATEST_REQUESTS as i64],
    )?;
    Ok(OpenRequests {
        open,
        latest: latest.iter().filter_map(|r| redact(viewer, r)).collect(),
    })
}

/// Published notes for the plan (or every plan) up to the account's product
/// version (all versions when the account's is unknown), newest version first.
fn release_notes(
    c: &Connection,
    viewer: &Viewer,
    plan: &Plan,
    version: &str,
) -> Result<Vec<Map<String, Value>>> {
    let mut notes: Vec<ReleaseNote> = store::query(c, "SELECT data FROM release_notes", [])?;
    notes.retain(|n| {
        n.published
            && (n.plans.is_empty() || n.plans.contains(&plan.code))
            && (version.is_empty() || version_key(&n.version_tag) <= version_key(version))
    });
    notes.sort_by(|a, b| {
        version_key(&b.version_tag)
            .cmp(&version_key(&a.version_tag))
            .then(b.id.0.cmp(&a.id.0))
    });
    Ok(notes
        .iter()
        .filter_map(|n| redact(viewer, n))
        .take(RELEASE_NOTES)
        .collect())
}

/// `5.10` after `5.9`: dotted versions compare part by part as numbers.
pub fn version_key(v: &str) -> Vec<u64> {
    v.split('.')
        .map(|p| p.trim().parse().unwrap_or(0))
        .collect()
}
