//! Accounts and their users (self-service user management for customer admins).

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, patch as patch_route, post};
use portico_model::wire::{AccountPatch, InviteUser, Page, UserPatch};
use portico_model::*;
use serde_json::{Map, Value};

use super::{ApiError, AppState, Auth, Json, PageQuery, Path, Query, authorize, page_of, shape};
use crate::error::{PortalError, Result};
use crate::store::{self, Actor, Writer};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/accounts", get(list))
        .route("/v1/accounts/{id}", get(read).patch(patch))
        .route("/v1/accounts/{id}/users", get(list_users).post(invite_user))
        .route(
            "/v1/accounts/{id}/users/{user_id}",
            patch_route(set_role).delete(remove_user),
        )
        .route(
            "/v1/accounts/{id}/users/{user_id}/invitation",
            post(resend_invitation),
        )
}

/// A resent invitation within this long of the last one is refused: a
/// double click, or a mailbox being flooded, gets one mail.
const RESEND_AFTER_SECS: i64 = 60;

/// Staff see every account; a customer sees a list of one, its own.
async fn list(
    State(st): State<AppState>,
    Auth(viewer): Auth,
    Query(q): Query<PageQuery>,
) -> Result<Json<Page<Map<String, Value>>>, ApiError> {
    let limit = q.limit()?;
    let before = q.id_cursor()?;
    let v = viewer.clone();
    let accounts: Vec<Account> = st
        .read(move |c| match v.account_id.filter(|_| !v.is_staff()) {
            Some(own) => Ok(store::get(c, own.0)?
                .into_iter()
                .filter(|a: &Account| before.is_none_or(|b| a.id.0 < b))
                .collect()),
            None => store::list_all(c, before, limit),
        })
        .await?;
    Ok(Json(page_of(&viewer, accounts, limit, |a| {
        a.id.to_string()
    })))
}

async fn read(
    State(st): State<AppState>,
    Auth(viewer): Auth,
    Path(id): Path<AccountId>,
) -> Result<Json<Map<String, Value>>, ApiError> {
    authorize(&viewer, Action::ReadAccount(id), Kind::Account, id)?;
    let account: Account = st.read(move |c| store::require(c, id.0)).await?;
    Ok(shape(&viewer, &account)?)
}

/// Customer admins edit the profile (name, language); staff also the
/// account-management fields (key account, lifecycle, CSM, health, notes).
async fn patch(
    State(st): State<AppState>,
    Auth(viewer): Auth,
    Path(id): Path<AccountId>,
    Json(p): Json<AccountPatch>,
) -> Result<Json<Map<String, Value>>, ApiError> {
    authorize(&viewer, Action::ReadAccount(id), Kind::Account, id)?;
    if p.touches_staff_fields() {
        authorize(&viewer, Action::UpdateAccountStaffFields, Kind::Account, id)?;
    } else {
        authorize(&viewer, Action::EditProfile(id), Kind::Account, id)?;
    }
    if let Some(Some(sso)) = &p.sso {
        sso.validate()?;
    }
    if !p.touches_staff_fields() && p.name.is_none() && p.language.is_none() && p.sso.is_none() {
        return Err(Invalid::new("body", "nothing to change: give at least one field").into());
    }
    let account = st
        .write(Actor::from(&viewer), move |w| {
            let mut a: Account = store::require(w, id.0)?;
            super::check_version("account", p.if_version, a.version)?;
            if let Some(n) = p.name {
                a.name = n;
            }
            if let Some(l) = p.language {
                a.language = l;
            }
            if let Some(k) = p.key_account {
                a.key_account = k;
            }
            if let Some(s) = p.lifecycle_stage {
                a.lifecycle_stage = s;
            }
            if let Some(csm) = p.csm_owner_id {
                if let Some(u) = csm {
                    let user: Option<User> = store::get(w, u.0)?;
                    if !user.is_some_and(|u| u.role.is_staff()) {
                        return Err(Invalid::new("csm_owner_id", "must be a staff user").into());
                    }
                }
                a.csm_owner_id = csm;
            }
            if let Some(h) = p.health_score {
                a.health_score = h;
            }
            if let Some(sso) = p.sso {
                if sso.is_some() {
                    let plan = crate::onboarding::plan_of(w, id)?;
                    if !plan.features.iter().any(|f| f == "sso") {
                        return Err(Invalid::new(
                            "sso",
                            format!(
                                "the {} plan does not include single sign-on; upgrade to set it up",
                                plan.name
                            ),
                        )
                        .into());
                    }
                }
                let configured = sso.is_some() && a.sso.is_none();
                a.sso = sso;
                if configured {
                    crate::onboarding::record_event(w, id, OnboardingEvent::SsoConfigured)?;
                }
            }
            if let Some(n) = p.notes {
                a.notes = n;
            }
            w.update(&mut a)?;
            w.audit("account.updated", &a, Value::Null)?;
            Ok(a)
        })
        .await?;
    Ok(shape(&viewer, &account)?)
}

async fn list_users(
    State(st): State<AppState>,
    Auth(viewer): Auth,
    Path(id): Path<AccountId>,
    Query(q): Query<PageQuery>,
) -> Result<Json<Page<Map<String, Value>>>, ApiError> {
    authorize(&viewer, Action::ReadAccount(id), Kind::Account, id)?;
    let limit = q.limit()?;
    let before = q.id_cursor()?;
    let users: Vec<User> = st
        .read(move |c| {
            let _: Account = store::require(c, id.0)?; // staff asking for an unknown account
            store::list_for_account(c, id, before, limit)
        })
        .await?;
    Ok(Json(page_of(&viewer, users, limit, |u| u.id.to_string())))
}

/// Invites a user into a free seat. The seat is held from the invitation on.
async fn invite_user(
    State(st): State<AppState>,
    Auth(viewer): Auth,
    Path(id): Path<AccountId>,
    Json(input): Json<InviteUser>,
) -> Result<(StatusCode, Json<Map<String, Value>>), ApiError> {
    authorize(&viewer, Action::ManageUsers(id), Kind::Account, id)?;
    input.validate()?;
    let v = viewer.clone();
    let user = st
        .write(Actor::from(&viewer), move |w| {
            let sub = subscription_of(w, id)?;
            let held = store::count_for_account(w, Kind::Seat, id)?;
            if held >= sub.seats {
                return Err(PortalError::Conflict(format!(
                    "all {} seats are taken; add seats before inviting another user",
                    sub.seats
                )));
            }
            let email = input.email.to_lowercase();
            let existing: Option<User> =
                store::query(w, "SELECT data FROM users WHERE email = ?1", [&email])?.pop();
            let user = match existing {
                // A removed user of this account comes back as a fresh invitation.
                Some(mut u) if u.account_id == Some(id) && u.status == UserStatus::Disabled => {
                    u.name = input.name;
                    u.role = input.role;
                    u.status = UserStatus::Invited;
                    w.update(&mut u)?;
                    u
                }
                Some(_) => {
                    return Err(PortalError::Conflict(format!(
                        "{email} already has a Portico user"
                    )));
                }
                None => {
                    let mut u = User {
                        id: w.new_id(),
                        account_id: Some(id),
                        email,
                        name: input.name,
                        role: input.role,
                        status: UserStatus::Invited,
                        locale: None,
                        team_ids: vec![],
                        capacity: 0,
                        away: false,
                        last_seen_at: None,
                        online: false,
                        conversation_access: Default::default(),
                        version: 0,
                        created_at: w.at(),
                        updated_at: w.at(),
                    };
                    w.insert(&mut u)?;
                    u
                }
            };
            let mut seat = Seat {
                id: w.new_id(),
                account_id: id,
                user_id: user.id,
                assigned_at: w.at(),
                version: 0,
                created_at: w.at(),
                updated_at: w.at(),
            };
            w.insert(&mut seat)?;
            crate::work::seats_changed(w, id, (held, held + 1), (sub.seats, sub.seats))?;
            w.audit(
                "user.invited",
                &user,
                serde_json::json!({ "role": user.role }),
            )?;
            crate::onboarding::record_event(w, id, OnboardingEvent::UserInvited)?;
            let account: Account = store::require(w, id.0)?;
            let inviter: User = store::require(w, v.user_id.0)?;
            crate::mail::invitation::send(w, &user, &account, &inviter)?;
            Ok(user)
        })
        .await?;
    Ok((StatusCode::CREATED, shape(&viewer, &user)?))
}

pub(crate) fn subscription_of(
    w: &rusqlite::Connection,
    account: AccountId,
) -> Result<Subscription> {
    if let Some(sub) = store::query::<Subscription>(
        w,
        "SELECT data FROM subscriptions WHERE account_id = ?1",
        [account.to_string()],
    )?
    .pop()
    {
        return Ok(sub);
    }
    // An unknown account is missing (404), not one without a subscription.
    let _: Account = store::require(w, account.0)?;
    Err(PortalError::Conflict(
        "the account has no subscription".into(),
    ))
}

/// Loads a user of `account`, hiding users of other accounts as missing.
fn account_user(w: &Writer<'_>, account: AccountId, user: UserId) -> Result<User> {
    let u: User = store::require(w, user.0)?;
    if u.account_id != Some(account) {
        return Err(PortalError::not_found(Kind::User, user));
    }
    Ok(u)
}

/// Active admins other than `without`; invited ones cannot sign in yet, so
/// they cannot administer the account and do not count.
fn admins_left(w: &Writer<'_>, account: AccountId, without: UserId) -> Result<usize> {
    let users: Vec<User> = store::query(
        w,
        "SELECT data FROM users WHERE account_id = ?1",
        [account.to_string()],
    )?;
    Ok(users
        .iter()
        .filter(|u| {
            u.id != without && u.role == Role::CustomerAdmin && u.status == UserStatus::Active
        })
        .count())
}

async fn set_role(
    State(st): State<AppState>,
    Auth(viewer): Auth,
    Path((id, user_id)): Path<(AccountId, UserId)>,
    Json(p): Json<UserPatch>,
) -> Result<Json<Map<String, Value>>, ApiError> {
    authorize(&viewer, Action::ManageUsers(id), Kind::Account, id)?;
    if !p.role.is_customer() {
        return Err(Invalid::new("role", "must be customer_admin or customer_member").into());
    }
    let user = st
        .write(Actor::from(&viewer), move |w| {
            let mut u = account_user(w, id, user_id)?;
            if u.role == Role::CustomerAdmin
                && p.role != Role::CustomerAdmin
                && admins_left(w, id, u.id)? == 0
            {
                return Err(PortalError::Conflict(
                    "an account needs at least one administrator; promote someone else first"
                        .into(),
                ));
            }
            let from = u.role;
            u.role = p.role;
            w.update(&mut u)?;
            w.audit(
                "user.role_changed",
                &u,
                serde_json::json!({ "from": from, "to": u.role }),
            )?;
            Ok(u)
        })
        .await?;
    Ok(shape(&viewer, &user)?)
}

/// Sends an invited user a new invitation mail (lost, expired, or sent to
/// spam): a fresh link valid for seven days; the earlier links stop working
/// ("already used or replaced by a newer one"). The seat stays held.
async fn resend_invitation(
    State(st): State<AppState>,
    Auth(viewer): Auth,
    Path((id, user_id)): Path<(AccountId, UserId)>,
) -> Result<Json<Value>, ApiError> {
    authorize(&viewer, Action::ManageUsers(id), Kind::Account, id)?;
    let inviter_id = viewer.user_id;
    let sent = st
        .write(Actor::from(&viewer), move |w| {
            let u = account_user(w, id, user_id)?;
            match u.status {
                UserStatus::Invited => {}
                UserStatus::Disabled => return Err(PortalError::not_found(Kind::User, user_id)),
                UserStatus::Active => {
                    return Err(PortalError::Conflict(format!(
                        "{} has already joined; there is no invitation to resend",
                        u.email
                    )));
                }
            }
            let last: Option<i64> = w.query_row(
                "SELECT max(created_at) FROM invitations WHERE user_id = ?1",
                [u.id.to_string()],
                |r| r.get(0),
            )?;
            let now = w.at().as_second();
            if let Some(wait) = last
                .map(|t| t + RESEND_AFTER_SECS - now)
                .filter(|wait| *wait > 0)
            {
                return Err(PortalError::Refused {
                    status: 429,
                    code: "resend_too_soon",
                    message: format!(
                        "an invitation was sent to {} less than a minute ago; try again in {wait} seconds",
                        u.email
                    ),
                });
            }
            let account: Account = store::require(w, id.0)?;
            let inviter: User = store::require(w, inviter_id.0)?;
            crate::mail::invitation::send(w, &u, &account, &inviter)?;
            w.audit("user.invitation_resent", &u, Value::Null)?;
            Ok(serde_json::json!({
                "sent_to": u.email,
                "expires_at": w.at()
                    + jiff::SignedDuration::from_secs(crate::mail::invitation::INVITE_TTL_SECS),
            }))
        })
        .await?;
    Ok(Json(sent))
}

/// Removes a user: disables them, frees their seat and ends their sessions.
async fn remove_user(
    State(st): State<AppState>,
    Auth(viewer): Auth,
    Path((id, user_id)): Path<(AccountId, UserId)>,
) -> Result<StatusCode, ApiError> {
    authorize(&viewer, Action::ManageUsers(id), Kind::Account, id)?;
    let at = st.clock.now();
    st.write(Actor::from(&viewer), move |w| {
        let mut u = account_user(w, id, user_id)?;
        if u.status == UserStatus::Disabled {
            return Err(PortalError::not_found(Kind::User, user_id));
        }
        if u.role == Role::CustomerAdmin && admins_left(w, id, u.id)? == 0 {
            return Err(PortalError::Conflict(
                "an account needs at least one administrator; promote someone else first".into(),
            ));
        }
        u.status = UserStatus::Disabled;
        w.update(&mut u)?;
        let seats: Vec<Seat> = store::query(
            w,
            "SELECT data FROM seats WHERE user_id = ?1",
            [u.id.to_string()],
        )?;
        for seat in &seats {
            w.delete(seat)?;
        }
        w.execute(
            "UPDATE tokens SET revoked_at = ?2 WHERE user_id = ?1 AND revoked_at IS NULL",
            rusqlite::params![u.id.to_string(), at.as_second()],
        )?;
        w.audit("user.removed", &u, Value::Null)?;
        Ok(())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
