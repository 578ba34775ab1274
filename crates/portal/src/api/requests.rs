//! Support, bug and feature requests a customer can track.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use portico_model::wire::{NewRequest, Page, RequestPatch};
use portico_model::*;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{ApiError, AppState, Auth, Json, Path, Query, authorize, page_of, shape};
use crate::error::{PortalError, Result};
use crate::store::{self, Actor};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/requests", get(list).post(create))
        .route("/v1/requests/{id}", get(read).patch(patch))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    account_id: Option<AccountId>,
    limit: Option<usize>,
    cursor: Option<String>,
}

/// Requests, newest first: staff see all (or one account's), customers their own.
async fn list(
    State(st): State<AppState>,
    Auth(viewer): Auth,
    Query(q): Query<ListQuery>,
) -> Result<Json<Page<Map<String, Value>>>, ApiError> {
    let page = super::PageQuery {
        limit: q.limit,
        cursor: q.cursor,
    };
    let (limit, before) = (page.limit()?, page.id_cursor()?);
    let account = if viewer.is_staff() {
        q.account_id
    } else {
        viewer.account_id
    };
    if let Some(a) = q.account_id {
        authorize(&viewer, Action::ReadAccount(a), Kind::Account, a)?;
    }
    let rows: Vec<Request> = st
        .read(move |c| match account {
            Some(a) => store::list_for_account(c, a, before, limit),
            None => store::list_all(c, before, limit),
        })
        .await?;
    Ok(Json(page_of(&viewer, rows, limit, |r| r.id.to_string())))
}

async fn read(
    State(st): State<AppState>,
    Auth(viewer): Auth,
    Path(id): Path<RequestId>,
) -> Result<Json<Map<String, Value>>, ApiError> {
    let r: Request = st.read(move |c| store::require(c, id.0)).await?;
    Ok(shape(&viewer, &r)?)
}

async fn create(
    State(st): State<AppState>,
    Auth(viewer): Auth,
    Json(input): Json<NewRequest>,
) -> Result<(StatusCode, Json<Map<String, Value>>), ApiError> {
    input.validate()?;
    let account = super::target_account(&viewer, input.account_id, "request")?;
    authorize(
        &viewer,
        Action::OpenRequest(account),
        Kind::Account,
        account,
    )?;
    let v = viewer.clone();
    let req = st
        .write(Actor::from(&viewer), move |w| {
            let _: Account = store::require(w, account.0)?;
            let mut r = Request {
                id: w.new_id(),
                account_id: account,
                kind: input.kind,
                title: input.title,
                body: input.body,
                status: RequestStatus::New,
                priority: input.priority,
                product_area: input.product_area,
                requester_id: v.user_id,
                conversation_id: None,
                assignee_id: None,
                team_id: None,
                internal_note: String::new(),
                votes: 0,
                attachments: vec![],
                version: 0,
                created_at: w.at(),
                updated_at: w.at(),
            };
            w.insert(&mut r)?;
            w.audit("request.created", &r, Value::Null)?;
            crate::onboarding::record_event(w, account, OnboardingEvent::RequestSubmitted)?;
            crate::work::request_created(w, &mut r)?;
            Ok(r)
        })
        .await?;
    Ok((StatusCode::CREATED, shape(&viewer, &req)?))
}

async fn patch(
    State(st): State<AppState>,
    Auth(viewer): Auth,
    Path(id): Path<RequestId>,
    Json(p): Json<RequestPatch>,
) -> Result<Json<Map<String, Value>>, ApiError> {
    let v = viewer.clone();
    let req = st
        .write(Actor::from(&viewer), move |w| {
            let mut r: Request = store::require(w, id.0)?;
            if !r.visible_to(&v) {
                return Err(PortalError::not_found(Kind::Request, id));
            }
            authorize(&v, Action::Triage, Kind::Request, id)?;
            super::check_version("request", p.if_version, r.version)?;
            if let Some(s) = p.status {
                r.status = s;
            }
            if let Some(pr) = p.priority {
                r.priority = pr;
            }
            if let Some(a) = p.assignee_id {
                r.assignee_id = a;
            }
            if let Some(t) = p.team_id {
                r.team_id = t;
            }
            if let Some(n) = p.internal_note {
                r.internal_note = n;
            }
            w.update(&mut r)?;
            w.audit("request.updated", &r, Value::Null)?;
            Ok(r)
        })
        .await?;
    Ok(shape(&viewer, &req)?)
}
