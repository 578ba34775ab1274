//! Who am I, staff users and teams.

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use portico_model::wire::{Me, Page};
use portico_model::*;
use serde_json::{Map, Value};

use super::{ApiError, AppState, Auth, Json, PageQuery, Query, authorize, page_of};
use crate::error::PortalError;
use crate::store;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/me", get(me))
        .route("/v1/users", get(list_users))
        .route("/v1/teams", get(list_teams))
}

async fn me(State(st): State<AppState>, Auth(viewer): Auth) -> Result<Json<Me>, ApiError> {
    let v = viewer.clone();
    let (user, account): (User, Option<Account>) = st
        .read(move |c| {
            let user = store::require(c, v.user_id.0)?;
            let account = match v.account_id {
                Some(a) => store::get(c, a.0)?,
                None => None,
            };
            Ok((user, account))
        })
        .await?;
    let user =
        redact(&viewer, &user).ok_or_else(|| PortalError::not_found(Kind::User, viewer.user_id))?;
    let account = account.and_then(|a| redact(&viewer, &a));
    Ok(Json(Me { user, account }))
}

/// The staff directory (staff only), newest first.
async fn list_users(
    State(st): State<AppState>,
    Auth(viewer): Auth,
    Query(q): Query<PageQuery>,
) -> Result<Json<Page<Map<String, Value>>>, ApiError> {
    authorize(&viewer, Action::ReadStaffDirectory, Kind::User, "directory")?;
    let limit = q.limit()?;
    let before = q.id_cursor()?;
    let users: Vec<User> = st
        .read(move |c| {
            store::query(
                c,
                "SELECT data FROM users WHERE account_id IS NULL AND id < ?1 ORDER BY id DESC LIMIT ?2",
                rusqlite::params![before.map(|b| b.to_string()).unwrap_or_else(|| "g".into()), limit as i64],
            )
        })
        .await?;
    Ok(Json(page_of(&viewer, users, limit, |u| u.id.to_string())))
}

async fn list_teams(
    State(st): State<AppState>,
    Auth(viewer): Auth,
) -> Result<Json<Page<Map<String, Value>>>, ApiError> {
    authorize(&viewer, Action::ReadStaffDirectory, Kind::Team, "directory")?;
    let teams: Vec<Team> = st
        .read(|c| store::query(c, "SELECT data FROM teams ORDER BY data ->> '$.name'", []))
        .await?;
    let items = teams.iter().filter_map(|t| redact(&viewer, t)).collect();
    Ok(Json(Page {
        items,
        next_cursor: None,
    }))
}
