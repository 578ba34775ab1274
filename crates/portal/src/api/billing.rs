//! Plans, subscription changes (preview and confirm), seats, invoices, usage.

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use jiff::SignedDuration;
use portico_model::billing::{self, ChangeRequest, Quote};
use portico_model::wire::{Page, SeatSummary, SubscriptionChange, UsageLine};
use portico_model::*;
use serde::Serialize;
use serde_json::{Map, Value};

use super::accounts::subscription_of;
use super::{ApiError, AppState, Auth, Json, PageQuery, Path, Query, authorize, page_of, shape};
use crate::error::{PortalError, Result};
use crate::store::{self, Actor};

/// How long a preview's `proration_at` can be confirmed for.
const QUOTE_VALID_SECS: i64 = 15 * 60;
const INVOICE_DUE_DAYS: i64 = 14;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/plans", get(list_plans))
        .route("/v1/accounts/{id}/subscription", get(read_subscription))
        .route("/v1/accounts/{id}/subscription/preview", post(preview))
        .route("/v1/accounts/{id}/subscription/change", post(change))
        .route("/v1/accounts/{id}/seats", get(seats))
        .route("/v1/accounts/{id}/invoices", get(list_invoices))
        .route("/v1/accounts/{id}/invoices/{invoice_id}", get(read_invoice))
        .route(
            "/v1/accounts/{id}/invoices/{invoice_id}/document",
            get(invoice_document),
        )
        .route("/v1/accounts/{id}/usage", get(usage).post(record_usage))
}

async fn list_plans(
    State(st): State<AppState>,
    Auth(viewer): Auth,
) -> Result<Json<Page<Map<String, Value>>>, ApiError> {
    let plans: Vec<Plan> = st
        .read(|c| store::query(c, "SELECT data FROM plans ORDER BY data ->> '$.tier'", []))
        .await?;
    let items = plans.iter().filter_map(|p| redact(&viewer, p)).collect();
    Ok(Json(Page {
        items,
        next_cursor: None,
    }))
}

async fn read_subscription(
    State(st): State<AppState>,
    Auth(viewer): Auth,
    Path(id): Path<AccountId>,
) -> Result<Json<Map<String, Value>>, ApiError> {
    authorize(&viewer, Action::ReadAccount(id), Kind::Account, id)?;
    let sub = st.read(move |c| subscription_of(c, id)).await?;
    Ok(shape(&viewer, &sub)?)
}

async fn seats(
    State(st): State<AppState>,
    Auth(viewer): Auth,
    Path(id): Path<AccountId>,
) -> Result<Json<SeatSummary>, ApiError> {
    authorize(&viewer, Action::ReadAccount(id), Kind::Account, id)?;
    let summary = st
        .read(move |c| {
            let sub = subscription_of(c, id)?;
            let plan: Plan = store::require(c, sub.plan_id.0)?;
            let assigned = store::count_for_account(c, Kind::Seat, id)?;
            Ok(SeatSummary {
                seats: sub.seats,
                assigned,
                available: sub.seats.saturating_sub(assigned),
                min_seats: plan.min_seats,
                max_seats: plan.max_seats,
            })
        })
        .await?;
    Ok(Json(summary))
}

/// Seats only → `ManageSeats`; a new plan → `ChangePlan`.
fn authorize_change(
    viewer: &Viewer,
    account: AccountId,
    change: &SubscriptionChange,
    current_plan: PlanId,
) -> Result<()> {
    let plan_changes = change.plan_id.is_some_and(|p| p != current_plan);
    let action = if plan_changes {
        Action::ChangePlan(account)
    } else {
        Action::ManageSeats(account)
    };
    authorize(viewer, action, Kind::Account, account)
}

/// Prices the change inside the caller's transaction, from current state.
fn price(
    c: &rusqlite::Connection,
    viewer: &Viewer,
    account: AccountId,
    change: &SubscriptionChange,
    at: jiff::Timestamp,
) -> Result<(Subscription, Quote)> {
    let sub = subscription_of(c, account)?;
    authorize_change(viewer, account, change, sub.plan_id)?;
    let from_plan: Plan = store::require(c, sub.plan_id.0)?;
    let to_plan: Plan = match change.plan_id {
        Some(p) => store::get(c, p.0)?.ok_or_else(|| Invalid::new("plan_id", "no such plan"))?,
        None => from_plan.clone(),
    };
    if change.plan_id.is_none() && change.seats.is_none() {
        return Err(Invalid::new("body", "give plan_id, seats, or both").into());
    }
    let assigned = store::count_for_account(c, Kind::Seat, account)?;
    let req = ChangeRequest {
        to_plan: &to_plan,
        to_seats: change.seats.unwrap_or(sub.seats),
        timing: change.timing,
        at,
    };
    let quote = billing::quote(&sub, &from_plan, assigned, req)?;
    Ok((sub, quote))
}

async fn preview(
    State(st): State<AppState>,
    Auth(viewer): Auth,
    Path(id): Path<AccountId>,
    Json(change): Json<SubscriptionChange>,
) -> Result<Json<Quote>, ApiError> {
    authorize(&viewer, Action::ReadAccount(id), Kind::Account, id)?;
    if change.proration_at.is_some() {
        return Err(Invalid::new(
            "proration_at",
            "is set by the preview; send it only to confirm",
        )
        .into());
    }
    let at = st.clock.now();
    let quote = st
        .read(move |c| price(c, &viewer, id, &change, at).map(|(_, q)| q))
        .await?;
    Ok(Json(quote))
}

#[derive(Debug, Serialize)]
struct ChangeResult {
    quote: Quote,
    subscription: Map<String, Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    invoice: Option<Map<String, Value>>,
}

/// Applies a change. Runs in one write transaction, so concurrent seat
/// changes are priced and checked one after another and never oversell.
async fn change(
    State(st): State<AppState>,
    Auth(viewer): Auth,
    Path(id): Path<AccountId>,
    Json(change): Json<SubscriptionChange>,
) -> Result<Json<ChangeResult>, ApiError> {
    authorize(&viewer, Action::ReadAccount(id), Kind::Account, id)?;
    let now = st.clock.now();
    let at = match change.proration_at {
        None => now,
        Some(t)
            if t <= now && now.duration_since(t) <= SignedDuration::from_secs(QUOTE_VALID_SECS) =>
        {
            t
        }
        Some(_) => {
            return Err(Invalid::new(
                "proration_at",
                "the preview has expired or is from the future; preview the change again",
            )
            .into());
        }
    };
    let v = viewer.clone();
    let (quote, sub, invoice) = st
        .write(Actor::from(&viewer), move |w| {
            apply_change(w, &v, id, &change, at)
        })
        .await?;
    let subscription =
        redact(&viewer, &sub).ok_or_else(|| PortalError::not_found(Kind::Subscription, sub.id))?;
    let invoice = invoice.and_then(|i| redact(&viewer, &i));
    Ok(Json(ChangeResult {
        quote,
        subscription,
        invoice,
    }))
}

/// Prices and applies a change of plan and/or seats inside the caller's
/// transaction: the subscription, the invoice for what is due now, the
/// threshold automations and the audit event. Shared by the billing API and
/// approved AI draft actions, so both follow the same rules.
pub(crate) fn apply_change(
    w: &mut crate::store::Writer<'_>,
    v: &Viewer,
    id: AccountId,
    change: &SubscriptionChange,
    at: jiff::Timestamp,
) -> Result<(Quote, Subscription, Option<Invoice>)> {
    let (sub, quote) = price(w, v, id, change, at)?;
    let mut next = billing::apply(&sub, &quote);
    w.update(&mut next)?;
    if next.seats != sub.seats {
        let held = store::count_for_account(w, Kind::Seat, id)?;
        crate::work::seats_changed(w, id, (held, held), (sub.seats, next.seats))?;
    }
    let invoice = if quote.total > 0 {
        let mut inv = Invoice {
            id: w.new_id(),
            account_id: id,
            number: crate::invoices::next_number(w)?,
            status: InvoiceStatus::Open,
            currency: quote.currency.clone(),
            period_start: quote.proration_at,
            period_end: sub.current_period_end,
            issued_at: w.at(),
            due_at: w.at() + SignedDuration::from_hours(24 * INVOICE_DUE_DAYS),
            paid_at: None,
            lines: quote.lines.clone(),
            subtotal: quote.subtotal,
            tax_rate_bps: quote.tax_rate_bps,
            tax: quote.tax,
            total: quote.total,
            amount_due: quote.total,
            version: 0,
            created_at: w.at(),
            updated_at: w.at(),
        };
        w.insert(&mut inv)?;
        Some(inv)
    } else {
        None
    };
    let action = if quote.from_plan_id == quote.to_plan_id {
        "subscription.seats_changed"
    } else {
        "subscription.plan_changed"
    };
    w.audit(
        action,
        &next,
        serde_json::to_value(&quote).expect("quotes serialize"),
    )?;
    Ok((quote, next, invoice))
}

async fn list_invoices(
    State(st): State<AppState>,
    Auth(viewer): Auth,
    Path(id): Path<AccountId>,
    Query(q): Query<PageQuery>,
) -> Result<Json<Page<Map<String, Value>>>, ApiError> {
    authorize(&viewer, Action::ReadInvoices(id), Kind::Account, id)?;
    let limit = q.limit()?;
    let before = q.id_cursor()?;
    let invoices: Vec<Invoice> = st
        .read(move |c| {
            let _: Account = store::require(c, id.0)?; // staff asking for an unknown account
            store::list_for_account(c, id, before, limit)
        })
        .await?;
    Ok(Json(page_of(&viewer, invoices, limit, |i| {
        i.id.to_string()
    })))
}

async fn load_invoice(
    st: &AppState,
    viewer: &Viewer,
    account: AccountId,
    invoice: InvoiceId,
) -> Result<Invoice> {
    authorize(
        viewer,
        Action::ReadInvoices(account),
        Kind::Account,
        account,
    )?;
    let inv: Invoice = st.read(move |c| store::require(c, invoice.0)).await?;
    if inv.account_id != account {
        return Err(PortalError::not_found(Kind::Invoice, invoice));
    }
    Ok(inv)
}

async fn read_invoice(
    State(st): State<AppState>,
    Auth(viewer): Auth,
    Path((id, invoice_id)): Path<(AccountId, InvoiceId)>,
) -> Result<Json<Map<String, Value>>, ApiError> {
    let inv = load_invoice(&st, &viewer, id, invoice_id).await?;
    Ok(shape(&viewer, &inv)?)
}

/// The invoice as a printable HTML document, sent as a download.
async fn invoice_document(
    State(st): State<AppState>,
    Auth(viewer): Auth,
    Path((id, invoice_id)): Path<(AccountId, InvoiceId)>,
) -> Result<impl IntoResponse, ApiError> {
    let inv = load_invoice(&st, &viewer, id, invoice_id).await?;
    let account: Account = st.read(move |c| store::require(c, id.0)).await?;
    let html = crate::invoices::render(&inv, &account);
    let disposition = format!("attachment; filename=\"{}.html\"", inv.number);
    Ok((
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        html,
    ))
}

async fn usage(
    State(st): State<AppState>,
    Auth(viewer): Auth,
    Path(id): Path<AccountId>,
) -> Result<Json<Vec<UsageLine>>, ApiError> {
    authorize(&viewer, Action::ReadAccount(id), Kind::Account, id)?;
    let meters: Vec<UsageMeter> = st
        .read(move |c| {
            let _: Account = store::require(c, id.0)?; // staff asking for an unknown account
            store::query(
                c,
                "SELECT data FROM usage_meters WHERE account_id = ?1 ORDER BY data ->> '$.meter'",
                [id.to_string()],
            )
        })
        .await?;
    let lines = meters.into_iter().map(UsageLine::from).collect();
    Ok(Json(lines))
}

/// Records consumption reported by the product (staff admin credentials):
/// a usage record, the meter moved, and threshold automations at 80 %/100 %.
async fn record_usage(
    State(st): State<AppState>,
    Auth(viewer): Auth,
    Path(id): Path<AccountId>,
    Json(report): Json<portico_model::wire::UsageReport>,
) -> Result<Json<UsageLine>, ApiError> {
    authorize(&viewer, Action::ReadAccount(id), Kind::Account, id)?;
    authorize(&viewer, Action::ManageStaff, Kind::Account, id)?;
    if report.quantity == 0 {
        return Err(Invalid::new("quantity", "must be at least 1").into());
    }
    let meter = st
        .write(Actor::from(&viewer), move |w| {
            let mut meter: UsageMeter = store::query(
                w,
                "SELECT data FROM usage_meters WHERE account_id = ?1 AND data ->> '$.meter' = ?2",
                [id.to_string(), report.meter.clone()],
            )?
            .pop()
            .ok_or_else(|| {
                Invalid::new(
                    "meter",
                    format!("the account has no meter {:?}", report.meter),
                )
            })?;
            let mut record = UsageRecord {
                id: w.new_id(),
                account_id: id,
                meter: report.meter.clone(),
                quantity: report.quantity,
                recorded_at: w.at(),
                version: 0,
                created_at: w.at(),
                updated_at: w.at(),
            };
            w.insert(&mut record)?;
            let before = meter.used;
            meter.used = meter.used.saturating_add(report.quantity);
            w.update(&mut meter)?;
            crate::work::usage_changed(w, &meter, before)?;
            // The account's own systems calling the product's API: its
            // first integration is live.
            if meter.meter == "api_calls" {
                crate::onboarding::record_event(w, id, OnboardingEvent::IntegrationConnected)?;
            }
            Ok(meter)
        })
        .await?;
    Ok(Json(UsageLine::from(meter)))
}
