//! The account's onboarding path and its steps (see `crate::onboarding`).

use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use portico_model::*;
use serde::Deserialize;

use super::{ApiError, AppState, Auth, Json, Path, authorize};
use crate::error::PortalError;
use crate::onboarding::{self, OnboardingStatus};
use crate::store::{self, Actor};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/accounts/{id}/onboarding", get(read))
        .route("/v1/accounts/{id}/onboarding/steps/{key}", post(set_step))
}

async fn read(
    State(st): State<AppState>,
    Auth(viewer): Auth,
    Path(id): Path<AccountId>,
) -> Result<Json<OnboardingStatus>, ApiError> {
    authorize(&viewer, Action::ReadAccount(id), Kind::Account, id)?;
    let status = st
        .read(move |c| {
            let account: Account = store::require(c, id.0)?;
            let plan = onboarding::plan_of(c, id)?;
            onboarding::status(c, &account, &plan)
        })
        .await?
        .ok_or_else(|| PortalError::not_found(Kind::OnboardingPath, "for this account"))?;
    Ok(Json(status))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StepInput {
    done: bool,
}

/// An administrator (or staff) marks a step done or not done by hand.
async fn set_step(
    State(st): State<AppState>,
    Auth(viewer): Auth,
    Path((id, key)): Path<(AccountId, String)>,
    Json(input): Json<StepInput>,
) -> Result<Json<OnboardingStatus>, ApiError> {
    authorize(&viewer, Action::ManageOnboarding(id), Kind::Account, id)?;
    if key.is_empty() || key.len() > 100 {
        return Err(Invalid::new("key", "a step key is 1 to 100 characters").into());
    }
    let v = viewer.clone();
    let status = st
        .write(Actor::from(&viewer), move |w| {
            onboarding::set_step(w, &v, id, &key, input.done)
        })
        .await?;
    Ok(Json(status))
}
