//! Work rules over HTTP: routing rules, SLA policies and automations (leads
//! and admins write, staff read), alerts, presence, a conversation's audit
//! timeline, and the webhook delivery log.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, patch as patch_route, put};
use portico_model::routing::{self, RuleAction, RuleContext};
use portico_model::wire::{
    AlertPatch, AutomationInput, Page, Presence, RoutingRuleInput, SlaPolicyInput,
};
use portico_model::*;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{ApiError, AppState, Auth, Json, Path, Query, authorize, shape};
use crate::error::{PortalError, Result};
use crate::store::{self, Actor, Writer};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/routing-rules", get(list_rules).post(create_rule))
        .route(
            "/v1/routing-rules/{id}",
            put(update_rule).delete(delete_rule),
        )
        .route("/v1/sla-policies", get(list_policies).post(create_policy))
        .route(
            "/v1/sla-policies/{id}",
            put(update_policy).delete(delete_policy),
        )
        .route(
            "/v1/automations",
            get(list_automations).post(create_automation),
        )
        .route(
            "/v1/automations/{id}",
            put(update_automation).delete(delete_automation),
        )
        .route("/v1/alerts", get(list_alerts))
        .route("/v1/alerts/{id}", patch_route(mark_alert))
        .route("/v1/me/presence", put(set_presence))
        .route("/v1/conversations/{id}/audit", get(conversation_audit))
        .route("/v1/webhooks/deliveries", get(deliveries))
}

fn staff_only(viewer: &Viewer, kind: Kind) -> Result<()> {
    authorize(viewer, Action::Triage, kind, "list")
}

async fn list_all<R: Visible>(
    st: &AppState,
    viewer: &Viewer,
) -> Result<Json<Page<Map<String, Value>>>> {
    staff_only(viewer, R::KIND)?;
    let rows: Vec<R> = st
        .read(|c| {
            store::query(
                c,
                &format!("SELECT data FROM {} ORDER BY id", R::KIND.table()),
                [],
            )
        })
        .await?;
    Ok(Json(Page {
        items: rows.iter().filter_map(|r| redact(viewer, r)).collect(),
        next_cursor: None,
    }))
}

/// What rules may refer to, read inside the writing transaction.
fn check_rule(
    w: &Writer<'_>,
    conditions: &[routing::Condition],
    actions: &[RuleAction],
) -> Result<()> {
    let plans: Vec<Plan> = store::query(w, "SELECT data FROM plans", [])?;
    let teams: Vec<Team> = store::query(w, "SELECT data FROM teams", [])?;
    let policies: Vec<SlaPolicy> = store::query(w, "SELECT data FROM sla_policies", [])?;
    let staff: Vec<User> = store::query(w, "SELECT data FROM users WHERE account_id IS NULL", [])?;
    let plan_codes: Vec<String> = plans.into_iter().map(|p| p.code).collect();
    let team_ids: Vec<TeamId> = teams.iter().map(|t| t.id).collect();
    let sla_ids: Vec<SlaPolicyId> = policies.iter().map(|p| p.id).collect();
    let staff_ids: Vec<UserId> = staff.iter().map(|u| u.id).collect();
    let ctx = RuleContext {
        plan_codes: &plan_codes,
        team_ids: &team_ids,
        sla_policy_ids: &sla_ids,
        staff_ids: &staff_ids,
    };
    routing::check_conditions(conditions, &ctx)?;
    routing::check_actions(actions, &ctx)?;
    Ok(())
}

/// Writes a rule-like record (new when `existing` is `None`) and audits it.
fn save<R: Record>(w: &mut Writer<'_>, mut rec: R, new: bool, what: &str) -> Result<R> {
    if new {
        w.insert(&mut rec)?;
    } else {
        w.update(&mut rec)?;
    }
    w.audit(
        &format!("{what}.{}", if new { "created" } else { "updated" }),
        &rec,
        serde_json::to_value(&rec).expect("records serialize"),
    )?;
    Ok(rec)
}

fn remove<R: Record>(w: &mut Writer<'_>, id: uuid::Uuid, what: &str) -> Result<()> {
    let rec: R = store::require(w, id)?;
    w.delete(&rec)?;
    w.audit(&format!("{what}.deleted"), &rec, Value::Null)
}

async fn list_rules(
    State(st): State<AppState>,
    Auth(v): Auth,
) -> Result<Json<Page<Map<String, Value>>>, ApiError> {
    Ok(list_all::<RoutingRule>(&st, &v).await?)
}

fn rule_from(
    w: &Writer<'_>,
    i: RoutingRuleInput,
    existing: Option<RoutingRule>,
) -> Result<RoutingRule> {
    check_rule(w, &i.conditions, &i.actions)?;
    let (id, version, created_at) = match &existing {
        Some(e) => {
            super::check_version("routing rule", i.if_version, e.version)?;
            (e.id, e.version, e.created_at)
        }
        None => (w.new_id(), 0, w.at()),
    };
    Ok(RoutingRule {
        id,
        name: i.name,
        position: i.position,
        enabled: i.enabled,
        stop: i.stop,
        conditions: i.conditions,
        actions: i.actions,
        version,
        created_at,
        updated_at: w.at(),
    })
}

async fn create_rule(
    State(st): State<AppState>,
    Auth(v): Auth,
    Json(i): Json<RoutingRuleInput>,
) -> Result<(StatusCode, Json<Map<String, Value>>), ApiError> {
    authorize(&v, Action::ManageRules, Kind::RoutingRule, "new")?;
    let rule = st
        .write(Actor::from(&v), move |w| {
            let r = rule_from(w, i, None)?;
            save(w, r, true, "routing_rule")
        })
        .await?;
    Ok((StatusCode::CREATED, shape(&v, &rule)?))
}

async fn update_rule(
    State(st): State<AppState>,
    Auth(v): Auth,
    Path(id): Path<RoutingRuleId>,
    Json(i): Json<RoutingRuleInput>,
) -> Result<Json<Map<String, Value>>, ApiError> {
    authorize(&v, Action::ManageRules, Kind::RoutingRule, id)?;
    let rule = st
        .write(Actor::from(&v), move |w| {
            let existing: RoutingRule = store::require(w, id.0)?;
            let r = rule_from(w, i, Some(existing))?;
            save(w, r, false, "routing_rule")
        })
        .await?;
    Ok(shape(&v, &rule)?)
}

async fn delete_rule(
    State(st): State<AppState>,
    Auth(v): Auth,
    Path(id): Path<RoutingRuleId>,
) -> Result<StatusCode, ApiError> {
    authorize(&v, Action::ManageRules, Kind::RoutingRule, id)?;
    st.write(Actor::from(&v), move |w| {
        remove::<RoutingRule>(w, id.0, "routing_rule")
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_policies(
    State(st): State<AppState>,
    Auth(v): Auth,
) -> Result<Json<Page<Map<String, Value>>>, ApiError> {
    Ok(list_all::<SlaPolicy>(&st, &v).await?)
}

fn policy_from(
    w: &Writer<'_>,
    i: SlaPolicyInput,
    existing: Option<SlaPolicy>,
) -> Result<SlaPolicy> {
    let conditions = if i.plans.is_empty() {
        vec![]
    } else {
        vec![routing::Condition::Plan {
            is: i.plans.clone(),
        }]
    };
    routing::check_conditions(
        &conditions,
        &RuleContext {
            plan_codes: &store::query::<Plan>(w, "SELECT data FROM plans", [])?
                .into_iter()
                .map(|p| p.code)
                .collect::<Vec<_>>(),
            team_ids: &[],
            sla_policy_ids: &[],
            staff_ids: &[],
        },
    )
    .map_err(|e| Invalid::new(e.field.replace("conditions[0].is", "plans"), e.message))?;
    let (id, version, created_at) = match &existing {
        Some(e) => {
            super::check_version("SLA policy", i.if_version, e.version)?;
            (e.id, e.version, e.created_at)
        }
        None => (w.new_id(), 0, w.at()),
    };
    Ok(SlaPolicy {
        id,
        name: i.name,
        position: i.position,
        plans: i.plans,
        priorities: i.priorities,
        targets: i.targets,
        version,
        created_at,
        updated_at: w.at(),
    })
}

async fn create_policy(
    State(st): State<AppState>,
    Auth(v): Auth,
    Json(i): Json<SlaPolicyInput>,
) -> Result<(StatusCode, Json<Map<String, Value>>), ApiError> {
    authorize(&v, Action::ManageRules, Kind::SlaPolicy, "new")?;
    let p = st
        .write(Actor::from(&v), move |w| {
            let p = policy_from(w, i, None)?;
            save(w, p, true, "sla_policy")
        })
        .await?;
    Ok((StatusCode::CREATED, shape(&v, &p)?))
}

async fn update_policy(
    State(st): State<AppState>,
    Auth(v): Auth,
    Path(id): Path<SlaPolicyId>,
    Json(i): Json<SlaPolicyInput>,
) -> Result<Json<Map<String, Value>>, ApiError> {
    authorize(&v, Action::ManageRules, Kind::SlaPolicy, id)?;
    let p = st
        .write(Actor::from(&v), move |w| {
            let existing: SlaPolicy = store::require(w, id.0)?;
            let p = policy_from(w, i, Some(existing))?;
            save(w, p, false, "sla_policy")
        })
        .await?;
    Ok(shape(&v, &p)?)
}

async fn delete_policy(
    State(st): State<AppState>,
    Auth(v): Auth,
    Path(id): Path<SlaPolicyId>,
) -> Result<StatusCode, ApiError> {
    authorize(&v, Action::ManageRules, Kind::SlaPolicy, id)?;
    st.write(Actor::from(&v), move |w| {
        remove::<SlaPolicy>(w, id.0, "sla_policy")
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_automations(
    State(st): State<AppState>,
    Auth(v): Auth,
) -> Result<Json<Page<Map<String, Value>>>, ApiError> {
    Ok(list_all::<Automation>(&st, &v).await?)
}

fn automation_from(
    w: &Writer<'_>,
    i: AutomationInput,
    existing: Option<Automation>,
) -> Result<Automation> {
    check_rule(w, &i.conditions, &i.actions)?;
    let has_webhook = i
        .actions
        .iter()
        .any(|a| matches!(a, RuleAction::Webhook { .. }));
    let (id, version, created_at) = match &existing {
        Some(e) => {
            super::check_version("automation", i.if_version, e.version)?;
            (e.id, e.version, e.created_at)
        }
        None => (w.new_id(), 0, w.at()),
    };
    let stored_secret: bool = w.query_row(
        "SELECT count(*) FROM automation_secrets WHERE automation_id = ?1",
        [id.to_string()],
        |r| r.get::<_, i64>(0),
    )? > 0;
    match &i.webhook_secret {
        Some(s) if s.len() < 16 => {
            return Err(Invalid::new("webhook_secret", "use at least 16 characters").into());
        }
        Some(s) => {
            w.execute(
                "INSERT INTO automation_secrets (automation_id, secret) VALUES (?1, ?2)
                 ON CONFLICT (automation_id) DO UPDATE SET secret = excluded.secret",
                rusqlite::params![id.to_string(), s],
            )?;
        }
        None if has_webhook && !stored_secret => {
            return Err(Invalid::new(
                "webhook_secret",
                "a webhook action needs a secret to sign its requests",
            )
            .into());
        }
        None => {}
    }
    Ok(Automation {
        id,
        name: i.name,
        event: i.event,
        enabled: i.enabled,
        conditions: i.conditions,
        actions: i.actions,
        version,
        created_at,
        updated_at: w.at(),
    })
}

async fn create_automation(
    State(st): State<AppState>,
    Auth(v): Auth,
    Json(i): Json<AutomationInput>,
) -> Result<(StatusCode, Json<Map<String, Value>>), ApiError> {
    authorize(&v, Action::ManageRules, Kind::Automation, "new")?;
    let a = st
        .write(Actor::from(&v), move |w| {
            let a = automation_from(w, i, None)?;
            save(w, a, true, "automation")
        })
        .await?;
    Ok((StatusCode::CREATED, shape(&v, &a)?))
}

async fn update_automation(
    State(st): State<AppState>,
    Auth(v): Auth,
    Path(id): Path<AutomationId>,
    Json(i): Json<AutomationInput>,
) -> Result<Json<Map<String, Value>>, ApiError> {
    authorize(&v, Action::ManageRules, Kind::Automation, id)?;
    let a = st
        .write(Actor::from(&v), move |w| {
            let existing: Automation = store::require(w, id.0)?;
            let a = automation_from(w, i, Some(existing))?;
            save(w, a, false, "automation")
        })
        .await?;
    Ok(shape(&v, &a)?)
}

async fn delete_automation(
    State(st): State<AppState>,
    Auth(v): Auth,
    Path(id): Path<AutomationId>,
) -> Result<StatusCode, ApiError> {
    authorize(&v, Action::ManageRules, Kind::Automation, id)?;
    st.write(Actor::from(&v), move |w| {
        remove::<Automation>(w, id.0, "automation")?;
        w.execute(
            "DELETE FROM automation_secrets WHERE automation_id = ?1",
            [id.to_string()],
        )?;
        Ok(())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertQuery {
    /// Only alerts for the signed-in staff member (default true).
    mine: Option<bool>,
    unread: Option<bool>,
}

async fn list_alerts(
    State(st): State<AppState>,
    Auth(v): Auth,
    Query(q): Query<AlertQuery>,
) -> Result<Json<Page<Map<String, Value>>>, ApiError> {
    staff_only(&v, Kind::Alert)?;
    let me = v.user_id;
    let alerts: Vec<Alert> = st
        .read(move |c| match q.mine.unwrap_or(true) {
            true => store::query(
                c,
                "SELECT data FROM alerts WHERE recipient_id = ?1 ORDER BY id DESC LIMIT 200",
                [me.to_string()],
            ),
            false => store::query(c, "SELECT data FROM alerts ORDER BY id DESC LIMIT 200", []),
        })
        .await?;
    let items = alerts
        .iter()
        .filter(|a| !q.unread.unwrap_or(false) || !a.read)
        .filter_map(|a| redact(&v, a))
        .collect();
    Ok(Json(Page {
        items,
        next_cursor: None,
    }))
}

async fn mark_alert(
    State(st): State<AppState>,
    Auth(v): Auth,
    Path(id): Path<AlertId>,
    Json(p): Json<AlertPatch>,
) -> Result<Json<Map<String, Value>>, ApiError> {
    staff_only(&v, Kind::Alert)?;
    let me = v.user_id;
    let alert = st
        .write(Actor::from(&v), move |w| {
            let mut a: Alert = store::require(w, id.0)?;
            if a.recipient_id != me {
                return Err(PortalError::Forbidden(
                    "only the alert's recipient can mark it read",
                ));
            }
            a.read = p.read;
            w.update(&mut a)?;
            Ok(a)
        })
        .await?;
    Ok(shape(&v, &alert)?)
}

/// Online and not away makes an agent eligible for auto-assignment; coming
/// back drains the holding queues of the agent's teams.
async fn set_presence(
    State(st): State<AppState>,
    Auth(v): Auth,
    Json(p): Json<Presence>,
) -> Result<Json<Map<String, Value>>, ApiError> {
    staff_only(&v, Kind::User)?;
    let me = v.user_id;
    let user = st
        .write(Actor::from(&v), move |w| {
            let mut u: User = store::require(w, me.0)?;
            let was_available = u.online && !u.away;
            u.online = p.online;
            u.away = p.away;
            u.last_seen_at = Some(w.at());
            w.update(&mut u)?;
            if !was_available && u.online && !u.away {
                for team in u.team_ids.clone() {
                    crate::work::drain_queue(w, team)?;
                }
            }
            Ok(u)
        })
        .await?;
    Ok(shape(&v, &user)?)
}

/// The conversation's audit trail, oldest first: who or which rule changed
/// what, for the timeline next to its messages.
async fn conversation_audit(
    State(st): State<AppState>,
    Auth(v): Auth,
    Path(id): Path<ConversationId>,
) -> Result<Json<Page<Map<String, Value>>>, ApiError> {
    staff_only(&v, Kind::AuditEvent)?;
    let viewer = v.clone();
    let events: Vec<AuditEvent> = st
        .read(move |c| {
            let conv: Conversation = store::require(c, id.0)?;
            if !conv.visible_to(&viewer) {
                return Err(PortalError::not_found(Kind::Conversation, id.0));
            }
            store::query(
                c,
                "SELECT data FROM audit_events WHERE entity_id = ?1 ORDER BY id",
                [id.to_string()],
            )
        })
        .await?;
    Ok(Json(Page {
        items: events.iter().filter_map(|e| redact(&v, e)).collect(),
        next_cursor: None,
    }))
}

async fn deliveries(
    State(st): State<AppState>,
    Auth(v): Auth,
) -> Result<Json<Vec<crate::webhooks::Delivery>>, ApiError> {
    authorize(&v, Action::ManageRules, Kind::Automation, "deliveries")?;
    let list = st
        .read(|c| crate::webhooks::list_deliveries(c, 200))
        .await?;
    Ok(Json(list))
}
