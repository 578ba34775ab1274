//! Who am I, staff users and teams.

use axum::Router;
use axum::extract::State;
use axum::routing::{get, patch};
use portico_model::wire::{Me, Page, StaffAccessPatch};
use portico_model::*;
use serde_json::{Map, Value};

use super::{
    ApiError, AppState, Auth, Json, PageQuery, Path, Query, authorize, check_version, page_of,
    shape,
};
use crate::error::PortalError;
use crate::store::{self, Actor};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/me", get(me).patch(patch_me))
        .route("/v1/users", get(list_users))
        .route("/v1/users/{id}/access", patch(set_access))
        .route("/v1/teams", get(list_teams))
}

/// An admin sets a staff member's teams and conversation access. Team
/// membership is held on both sides (the user's `team_ids`, each team's
/// `member_ids`); both change in the same transaction.
async fn set_access(
    State(st): State<AppState>,
    Auth(viewer): Auth,
    Path(id): Path<UserId>,
    Json(p): Json<StaffAccessPatch>,
) -> Result<Json<Map<String, Value>>, ApiError> {
    authorize(&viewer, Action::ManageStaff, Kind::User, id)?;
    p.validate()?;
    let user = st
        .write(Actor::from(&viewer), move |w| {
            let mut user: User = store::require(w, id.0)?;
            if !user.role.is_staff() {
                return Err(Invalid::new(
                    "id",
                    "teams and conversation access are for staff users, not customers",
                )
                .into());
            }
            check_version("user", p.if_version, user.version)?;
            let before = serde_json::json!({
                "team_ids": user.team_ids,
                "conversation_access": user.conversation_access,
            });
            if let Some(access) = p.conversation_access {
                user.conversation_access = access;
            }
            if let Some(mut teams) = p.team_ids {
                teams.sort_by_key(|t| t.0);
                teams.dedup();
                for team in teams
                    .iter()
                    .chain(&user.team_ids)
                    .copied()
                    .collect::<Vec<_>>()
                {
                    let mut t: Team = store::get(w, team.0)?
                        .ok_or_else(|| Invalid::new("team_ids", format!("no team {team}")))?;
                    let member = teams.contains(&team);
                    if member != t.member_ids.contains(&user.id) {
                        t.member_ids.retain(|m| *m != user.id);
                        if member {
                            t.member_ids.push(user.id);
                        }
                        w.update(&mut t)?;
                    }
                }
                user.team_ids = teams;
            }
            w.update(&mut user)?;
            w.audit(
                "user.access_changed",
                &user,
                serde_json::json!({ "before": before }),
            )?;
            Ok(user)
        })
        .await?;
    Ok(shape(&viewer, &user)?)
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

/// What a person changes about themselves.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct MePatch {
    /// BCP 47 language tag (`en`, `fr`, `pt-BR`); `null` follows the browser.
    #[serde(default, deserialize_with = "portico_model::wire::nullable")]
    locale: Option<Option<String>>,
}

/// The signed-in user's own preferences (today: the reading language).
async fn patch_me(
    State(st): State<AppState>,
    Auth(viewer): Auth,
    Json(p): Json<MePatch>,
) -> Result<Json<Me>, ApiError> {
    let Some(locale) = p.locale else {
        return Err(Invalid::new("body", "nothing to change: give locale").into());
    };
    if let Some(l) = &locale {
        portico_model::validate::check_locale("locale", l)?;
    }
    let uid = viewer.user_id;
    st.write(Actor::from(&viewer), move |w| {
        let mut u: User = store::require(w, uid.0)?;
        if u.locale != locale {
            u.locale = locale;
            w.update(&mut u)?;
            w.audit(
                "user.locale_changed",
                &u,
                serde_json::json!({ "locale": u.locale }),
            )?;
        }
        Ok(())
    })
    .await?;
    me(State(st), Auth(viewer)).await
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
