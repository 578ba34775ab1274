//! Work rules in action: routing, SLA clocks, auto-assignment with a holding
//! queue, automations and alerts.
//!
//! Everything here runs inside the write transaction of the change that
//! triggered it, so an automatic change commits with its cause (and its audit
//! event naming the rule and the event) or not at all. The decisions
//! themselves are pure functions in `portico_model` (`routing`, `assign`,
//! `sla`); this module gathers their inputs and stores their outputs.

use jiff::Timestamp;
use portico_model::assign::{self, Candidate, Strategy};
use portico_model::routing::{self, Facts, NotifyTarget, RuleAction};
use portico_model::sla::{
    BusinessHours, SlaClock, SlaError, SlaEvent, SlaEventKind, SlaMetric, SlaTargets,
};
use portico_model::*;
use serde_json::json;

use crate::error::{PortalError, Result};
use crate::store::{self, Writer};
use crate::webhooks;

/// The account behind an event and its plan code.
struct AccountView {
    account: Account,
    plan_code: Option<String>,
}

fn account_view(w: &Writer<'_>, account: AccountId) -> Result<AccountView> {
    let account: Account = store::require(w, account.0)?;
    let sub: Option<Subscription> = store::query(
        w,
        "SELECT data FROM subscriptions WHERE account_id = ?1",
        [account.id.to_string()],
    )?
    .pop();
    let plan_code = match sub {
        Some(s) => store::get::<Plan>(w, s.plan_id.0)?.map(|p| p.code),
        None => None,
    };
    Ok(AccountView { account, plan_code })
}

fn facts(
    a: &AccountView,
    channel: Option<Channel>,
    product_area: &str,
    priority: Priority,
    request_type: Option<RequestKind>,
    text: String,
) -> Facts {
    Facts {
        channel,
        plan_code: a.plan_code.clone(),
        product_area: product_area.to_owned(),
        region: a.account.region.clone(),
        language: a.account.language.clone(),
        key_account: a.account.key_account,
        priority,
        request_type,
        text: text.to_lowercase(),
    }
}

/// What an action acts on.
enum Subject<'a> {
    Conversation(&'a mut Conversation),
    Request(&'a mut Request),
    /// Account-level events (seats, usage): only notifying actions apply.
    Account(String),
}

impl Subject<'_> {
    fn priority_mut(&mut self) -> Option<&mut Priority> {
        match self {
            Subject::Conversation(c) => Some(&mut c.priority),
            Subject::Request(r) => Some(&mut r.priority),
            Subject::Account(_) => None,
        }
    }
    fn team(&self) -> Option<TeamId> {
        match self {
            Subject::Conversation(c) => c.team_id,
            Subject::Request(r) => r.team_id,
            Subject::Account(_) => None,
        }
    }
    fn label(&self) -> String {
        match self {
            Subject::Conversation(c) => format!("conversation \"{}\"", c.subject),
            Subject::Request(r) => format!("{} request \"{}\"", r.kind.as_str(), r.title),
            Subject::Account(what) => what.clone(),
        }
    }
    fn ids(&self) -> (Option<ConversationId>, Option<RequestId>) {
        match self {
            Subject::Conversation(c) => (Some(c.id), None),
            Subject::Request(r) => (r.conversation_id, Some(r.id)),
            Subject::Account(_) => (None, None),
        }
    }
}

/// Applies one action; `source` names the rule or automation for the audit
/// trail and alerts, `event` the event that fired it.
fn apply_action(
    w: &mut Writer<'_>,
    action: &RuleAction,
    subject: &mut Subject<'_>,
    acct: &AccountView,
    source: &str,
    source_id: uuid::Uuid,
    event: AutomationEvent,
) -> Result<()> {
    match action {
        RuleAction::RouteToTeam { team_id } => match subject {
            Subject::Conversation(c) => c.team_id = Some(*team_id),
            Subject::Request(r) => r.team_id = Some(*team_id),
            Subject::Account(_) => {}
        },
        RuleAction::SetPriority { priority } => {
            if let Some(p) = subject.priority_mut() {
                *p = *priority;
            }
        }
        RuleAction::AddTags { tags } => {
            if let Subject::Conversation(c) = subject {
                for t in tags {
                    if !c.tags.contains(t) {
                        c.tags.push(t.clone());
                    }
                }
            }
        }
        RuleAction::ApplySla { policy_id } => {
            if let Subject::Conversation(c) = subject {
                c.sla_policy_id = Some(*policy_id);
            }
        }
        RuleAction::Assign { user_id } => match subject {
            Subject::Conversation(c) => c.assignee_id = Some(*user_id),
            Subject::Request(r) => r.assignee_id = Some(*user_id),
            Subject::Account(_) => {}
        },
        RuleAction::Notify { target } => {
            let recipients = recipients(w, *target, subject.team(), &acct.account)?;
            let title = format!("{}: {}", acct.account.name, subject.label());
            for r in recipients {
                raise_alert(w, r, AlertKind::Notification, &title, acct, subject, source)?;
            }
        }
        RuleAction::Escalate => {
            if let Some(p) = subject.priority_mut() {
                *p = routing::raise(*p);
            }
            let title = format!("Escalated: {}", subject.label());
            for r in recipients(w, NotifyTarget::TeamLead, subject.team(), &acct.account)? {
                raise_alert(w, r, AlertKind::Escalation, &title, acct, subject, source)?;
            }
        }
        RuleAction::Webhook { url } => {
            let secret: Option<String> = w
                .query_row(
                    "SELECT secret FROM automation_secrets WHERE automation_id = ?1",
                    [source_id.to_string()],
                    |r| r.get(0),
                )
                .ok();
            let Some(secret) = secret else {
                tracing::warn!(%source, "webhook action without a secret; skipped");
                return Ok(());
            };
            let (conversation_id, request_id) = subject.ids();
            // The receiver (e.g. a CRM) gets the account's context with the event.
            let payload = json!({
                "event": event.as_str(),
                "source": source,
                "account": portico_model::policy::without_internal(&acct.account),
                "plan": acct.plan_code,
                "conversation_id": conversation_id,
                "request_id": request_id,
                "subject": subject.label(),
                "at": w.at(),
            });
            let event_id: uuid::Uuid = w.new_id();
            let endpoint = webhooks::Endpoint {
                url: url.clone(),
                secret,
                automation_id: Some(source_id),
            };
            let ev = webhooks::WebhookEvent {
                id: event_id,
                event_type: event.as_str().to_owned(),
                payload,
            };
            // A misconfigured endpoint must not block the customer's write:
            // the automation is skipped and the reason logged.
            match webhooks::enqueue(w, &endpoint, &ev, w.at()) {
                Err(PortalError::Invalid(why)) => {
                    tracing::warn!(%source, %why, "webhook not queued")
                }
                other => other?,
            }
        }
    }
    Ok(())
}

fn recipients(
    w: &Writer<'_>,
    target: NotifyTarget,
    team: Option<TeamId>,
    account: &Account,
) -> Result<Vec<UserId>> {
    Ok(match target {
        NotifyTarget::User { user_id } => vec![user_id],
        NotifyTarget::AccountCsm => account.csm_owner_id.into_iter().collect(),
        NotifyTarget::TeamLead => {
            let leads: Vec<User> = store::query(
                w,
                "SELECT data FROM users WHERE account_id IS NULL AND data ->> '$.role' = 'lead'",
                [],
            )?;
            let in_team: Vec<UserId> = leads
                .iter()
                .filter(|u| team.is_some_and(|t| u.team_ids.contains(&t)))
                .map(|u| u.id)
                .collect();
            if in_team.is_empty() {
                leads.iter().map(|u| u.id).collect()
            } else {
                in_team
            }
        }
    })
}

fn raise_alert(
    w: &mut Writer<'_>,
    recipient: UserId,
    kind: AlertKind,
    title: &str,
    acct: &AccountView,
    subject: &Subject<'_>,
    source: &str,
) -> Result<()> {
    let (conversation_id, request_id) = subject.ids();
    let mut alert = Alert {
        id: w.new_id(),
        account_id: Some(acct.account.id),
        recipient_id: recipient,
        kind,
        title: title.to_owned(),
        body: format!(
            "{} ({}, key account: {})",
            subject.label(),
            acct.plan_code.as_deref().unwrap_or("no plan"),
            if acct.account.key_account {
                "yes"
            } else {
                "no"
            }
        ),
        conversation_id,
        request_id,
        source: source.to_owned(),
        read: false,
        version: 0,
        created_at: w.at(),
        updated_at: w.at(),
    };
    w.insert(&mut alert)
}

fn all<R: Record>(w: &Writer<'_>) -> Result<Vec<R>> {
    store::query(w, &format!("SELECT data FROM {}", R::KIND.table()), [])
}

/// Runs enabled automations listening for `event` whose conditions hold.
fn run_automations(
    w: &mut Writer<'_>,
    event: AutomationEvent,
    f: &Facts,
    subject: &mut Subject<'_>,
    acct: &AccountView,
) -> Result<bool> {
    let autos: Vec<Automation> = store::query(
        w,
        "SELECT data FROM automations WHERE event = ?1 ORDER BY id",
        [event.as_str()],
    )?;
    let fired: Vec<Automation> = routing::evaluate(&autos, f).into_iter().cloned().collect();
    // Notifications and webhooks leave the subject as it was; the rest change it.
    let changes = fired
        .iter()
        .flat_map(|a| &a.actions)
        .any(|a| !matches!(a, RuleAction::Notify { .. } | RuleAction::Webhook { .. }));
    for a in fired {
        for action in &a.actions {
            apply_action(w, action, subject, acct, &a.name, a.id.0, event)?;
        }
        audit_rule(
            w,
            subject,
            "automation.applied",
            a.id.0,
            &a.name,
            event,
            &a.actions,
        )?;
    }
    Ok(changes)
}

fn audit_rule(
    w: &mut Writer<'_>,
    subject: &Subject<'_>,
    action: &str,
    id: uuid::Uuid,
    name: &str,
    event: AutomationEvent,
    actions: &[RuleAction],
) -> Result<()> {
    let detail =
        json!({ "rule_id": id, "rule": name, "event": event.as_str(), "actions": actions });
    match subject {
        Subject::Conversation(c) => w.audit(action, &**c, detail),
        Subject::Request(r) => w.audit(action, &**r, detail),
        // Account events are audited by the caller against the account.
        Subject::Account(_) => Ok(()),
    }
}

/// A new conversation: routing rules, SLA, assignment, automations. The
/// conversation is already stored; it is updated once with every effect.
pub fn conversation_created(
    w: &mut Writer<'_>,
    conv: &mut Conversation,
    first_message: &str,
) -> Result<()> {
    let acct = account_view(w, conv.account_id)?;
    let text = format!("{} {}", conv.subject, first_message);
    let f = facts(
        &acct,
        Some(conv.channel),
        &conv.product_area,
        conv.priority,
        None,
        text.clone(),
    );
    let rules: Vec<RoutingRule> = all(w)?;
    let fired: Vec<RoutingRule> = routing::evaluate(&rules, &f).into_iter().cloned().collect();
    let event = AutomationEvent::ConversationCreated;
    for rule in &fired {
        let mut subject = Subject::Conversation(conv);
        for action in &rule.actions {
            apply_action(w, action, &mut subject, &acct, &rule.name, rule.id.0, event)?;
        }
        audit_rule(
            w,
            &subject,
            "rule.applied",
            rule.id.0,
            &rule.name,
            event,
            &rule.actions,
        )?;
    }
    start_sla(w, conv, &acct)?;
    if conv.assignee_id.is_none() {
        auto_assign(w, conv, "conversation_created")?;
    }
    let f = facts(
        &acct,
        Some(conv.channel),
        &conv.product_area,
        conv.priority,
        None,
        text,
    );
    run_automations(w, event, &f, &mut Subject::Conversation(conv), &acct)?;
    w.update(conv)
}

/// A triaged conversation: `conversation_updated` automations. Saves the
/// conversation again only if an automation changed it.
pub fn conversation_updated(w: &mut Writer<'_>, conv: &mut Conversation) -> Result<()> {
    let acct = account_view(w, conv.account_id)?;
    let f = facts(
        &acct,
        Some(conv.channel),
        &conv.product_area,
        conv.priority,
        None,
        conv.subject.clone(),
    );
    let mut subject = Subject::Conversation(conv);
    if run_automations(
        w,
        AutomationEvent::ConversationUpdated,
        &f,
        &mut subject,
        &acct,
    )? {
        w.update(conv)?;
    }
    Ok(())
}

/// A new request: automations (e.g. tell the CSM about a key account's
/// high-priority request).
pub fn request_created(w: &mut Writer<'_>, req: &mut Request) -> Result<()> {
    let acct = account_view(w, req.account_id)?;
    let f = facts(
        &acct,
        None,
        &req.product_area,
        req.priority,
        Some(req.kind),
        format!("{} {}", req.title, req.body),
    );
    let mut subject = Subject::Request(req);
    if run_automations(w, AutomationEvent::RequestCreated, &f, &mut subject, &acct)? {
        w.update(req)?;
    }
    Ok(())
}

/// The team's hours, or around the clock for conversations without a team.
fn hours_for(w: &Writer<'_>, team: Option<TeamId>) -> Result<BusinessHours> {
    Ok(match team {
        Some(t) => store::get::<Team>(w, t.0)?
            .map(|t| t.business_hours)
            .unwrap_or_else(BusinessHours::always),
        None => BusinessHours::always(),
    })
}

fn policy_for(
    w: &Writer<'_>,
    conv: &Conversation,
    plan_code: Option<&str>,
) -> Result<Option<SlaPolicy>> {
    let mut policies: Vec<SlaPolicy> = all(w)?;
    if let Some(id) = conv.sla_policy_id {
        return Ok(policies.into_iter().find(|p| p.id == id));
    }
    policies.sort_by_key(|p| p.position);
    Ok(policies.into_iter().find(|p| {
        (p.plans.is_empty() || plan_code.is_some_and(|c| p.plans.iter().any(|x| x == c)))
            && (p.priorities.is_empty() || p.priorities.contains(&conv.priority))
    }))
}

/// A team's hours that cannot be computed are a configuration error that
/// names the hours, not a crash.
fn sla_error(e: SlaError) -> PortalError {
    Invalid::new("business_hours", e.to_string()).into()
}

/// The next instant the sweep must look at this clock: the earliest warning
/// or breach not yet fired. `None` while paused or when nothing is due.
pub fn next_check(clock: &SlaClock, targets: &SlaTargets) -> Option<Timestamp> {
    if clock.is_paused() {
        return None;
    }
    SlaMetric::ALL
        .iter()
        .filter_map(|&m| {
            let due = clock.due(m)?;
            if clock.breached.contains(&m) {
                return None;
            }
            let warn = due - jiff::SignedDuration::from_secs(targets.warn_before_secs);
            Some(if clock.warned.contains(&m) {
                due
            } else {
                warn.min(due)
            })
        })
        .min()
}

fn start_sla(w: &mut Writer<'_>, conv: &mut Conversation, acct: &AccountView) -> Result<()> {
    let Some(policy) = policy_for(w, conv, acct.plan_code.as_deref())? else {
        return Ok(());
    };
    let hours = hours_for(w, conv.team_id)?;
    let clock = SlaClock::start(&policy.targets, &hours, w.at()).map_err(sla_error)?;
    conv.sla_policy_id = Some(policy.id);
    conv.sla_next_check = next_check(&clock, &policy.targets);
    conv.sla = Some(clock);
    Ok(())
}

/// Keeps the SLA clock in step with a conversation change: replies, waiting
/// on the customer (pending pauses it), resolution.
pub fn sla_on_change(
    w: &Writer<'_>,
    conv: &mut Conversation,
    before_status: ConversationStatus,
    reply: Option<MessageKind>,
) -> Result<()> {
    let (Some(mut clock), Some(policy_id)) = (conv.sla.clone(), conv.sla_policy_id) else {
        return Ok(());
    };
    let Some(policy) = store::get::<SlaPolicy>(w, policy_id.0)? else {
        return Ok(());
    };
    let hours = hours_for(w, conv.team_id)?;
    let at = w.at();
    match reply {
        Some(MessageKind::Agent) => clock.agent_replied(at),
        Some(MessageKind::Customer) => clock
            .customer_replied(&policy.targets, &hours, at)
            .map_err(sla_error)?,
        _ => {}
    }
    let (was, now) = (before_status, conv.status);
    if was != now {
        if now == ConversationStatus::Resolved {
            clock.resolved(at);
        } else if now == ConversationStatus::Pending || now == ConversationStatus::Snoozed {
            clock.pause(at);
        } else if now == ConversationStatus::Open {
            clock.resume(&hours, at).map_err(sla_error)?;
        }
    }
    conv.sla_next_check = next_check(&clock, &policy.targets);
    conv.sla = Some(clock);
    Ok(())
}

/// Fires SLA warnings and breaches that are due by `at`: alerts, automations
/// (escalation) and audit events. Returns how many fired.
pub fn sla_sweep(w: &mut Writer<'_>, at: Timestamp) -> Result<usize> {
    let due: Vec<Conversation> = store::query(
        w,
        "SELECT data FROM conversations WHERE sla_next_ts IS NOT NULL AND sla_next_ts <= ?1 ORDER BY sla_next_ts LIMIT 500",
        [at.as_second()],
    )?;
    let mut fired = 0;
    for mut conv in due {
        let (Some(mut clock), Some(policy_id)) = (conv.sla.clone(), conv.sla_policy_id) else {
            continue;
        };
        let Some(policy) = store::get::<SlaPolicy>(w, policy_id.0)? else {
            continue;
        };
        let events: Vec<SlaEvent> = clock.check(&policy.targets, at);
        clock.record(&events);
        conv.sla_next_check = next_check(&clock, &policy.targets);
        conv.sla = Some(clock);
        let acct = account_view(w, conv.account_id)?;
        for ev in &events {
            fired += 1;
            let (event, kind) = match ev.kind {
                SlaEventKind::Warning => (AutomationEvent::SlaWarning, AlertKind::SlaWarning),
                SlaEventKind::Breach => (AutomationEvent::SlaBreach, AlertKind::SlaBreach),
            };
            let title = format!(
                "SLA {} ({:?}) on \"{}\"",
                if kind == AlertKind::SlaBreach {
                    "breached"
                } else {
                    "due soon"
                },
                ev.metric,
                conv.subject
            );
            if let Some(assignee) = conv.assignee_id {
                raise_alert(
                    w,
                    assignee,
                    kind,
                    &title,
                    &acct,
                    &Subject::Conversation(&mut conv),
                    &policy.name,
                )?;
            }
            w.audit(
                &format!("sla.{}", event.as_str().trim_start_matches("sla_")),
                &conv,
                json!({ "metric": ev.metric, "due": ev.due, "policy": policy.name }),
            )?;
            let f = facts(
                &acct,
                Some(conv.channel),
                &conv.product_area,
                conv.priority,
                None,
                conv.subject.clone(),
            );
            run_automations(w, event, &f, &mut Subject::Conversation(&mut conv), &acct)?;
        }
        w.update(&mut conv)?;
    }
    Ok(fired)
}

/// Open conversations per agent, for capacity.
fn open_counts(w: &Writer<'_>, agents: &[UserId]) -> Result<Vec<u32>> {
    let mut stmt = w.prepare_cached("SELECT count(*) FROM conversations WHERE assignee_id = ?1 AND status IN ('open', 'pending')")?;
    agents
        .iter()
        .map(|a| Ok(stmt.query_row([a.to_string()], |r| r.get(0))?))
        .collect()
}

/// The agent the team's strategy picks now, with the team, or `None` when
/// the team assigns manually or nobody available has room.
fn pick_agent(w: &Writer<'_>, team_id: TeamId) -> Result<Option<(UserId, Team)>> {
    let Some(team) = store::get::<Team>(w, team_id.0)? else {
        return Ok(None);
    };
    if team.assignment == Strategy::Manual {
        return Ok(None);
    }
    let mut members: Vec<User> = Vec::new();
    for id in &team.member_ids {
        if let Some(u) = store::get::<User>(w, id.0)?
            && u.role.is_staff()
            && u.status == UserStatus::Active
        {
            members.push(u);
        }
    }
    members.sort_by_key(|u| u.id);
    let ids: Vec<UserId> = members.iter().map(|u| u.id).collect();
    let counts = open_counts(w, &ids)?;
    let candidates: Vec<Candidate> = members
        .iter()
        .zip(counts)
        .map(|(u, open)| Candidate {
            user_id: u.id,
            open,
            capacity: u.capacity,
            available: u.online && !u.away,
        })
        .collect();
    Ok(
        assign::choose(team.assignment, &candidates, team.last_assigned_id)
            .map(|agent| (agent, team)),
    )
}

fn assign_to(
    w: &mut Writer<'_>,
    conv: &mut Conversation,
    agent: UserId,
    mut team: Team,
    reason: &str,
) -> Result<()> {
    conv.assignee_id = Some(agent);
    team.last_assigned_id = Some(agent);
    w.update(&mut team)?;
    w.audit("conversation.auto_assigned", &*conv, json!({ "team": team.name, "strategy": team.assignment, "assignee_id": agent, "reason": reason }))
}

/// Assigns a new conversation within its team by the team's strategy, or
/// leaves it in the team's holding queue (unassigned, audited as queued).
pub fn auto_assign(w: &mut Writer<'_>, conv: &mut Conversation, reason: &str) -> Result<()> {
    let Some(team_id) = conv.team_id else {
        return Ok(());
    };
    match pick_agent(w, team_id)? {
        Some((agent, team)) => assign_to(w, conv, agent, team, reason),
        None => w.audit(
            "conversation.queued",
            &*conv,
            json!({ "team_id": team_id, "reason": "no available agent has capacity" }),
        ),
    }
}

/// Hands queued conversations of `team` (unassigned, open, oldest first) to
/// agents with room, until nobody has any. Called when capacity frees up.
pub fn drain_queue(w: &mut Writer<'_>, team: TeamId) -> Result<usize> {
    let queued: Vec<Conversation> = store::query(
        w,
        "SELECT data FROM conversations WHERE team_id = ?1 AND assignee_id IS NULL AND status = 'open' ORDER BY id LIMIT 100",
        [team.to_string()],
    )?;
    let mut assigned = 0;
    for mut conv in queued {
        let Some((agent, t)) = pick_agent(w, team)? else {
            break;
        };
        assign_to(w, &mut conv, agent, t, "queue_drained")?;
        w.update(&mut conv)?;
        assigned += 1;
    }
    Ok(assigned)
}

/// Runs [`sla_sweep`] every `every` at the clock's time, on a blocking
/// thread; errors are logged and the loop goes on.
pub fn spawn_sla_sweeper(
    store: std::sync::Arc<crate::Store>,
    clock: std::sync::Arc<dyn crate::Clock>,
    every: std::time::Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            let (store, at) = (store.clone(), clock.now());
            let result = tokio::task::spawn_blocking(move || {
                store.write(crate::store::Actor::SYSTEM, at, |w| sla_sweep(w, at))
            })
            .await;
            match result {
                Ok(Ok(0)) => {}
                Ok(Ok(n)) => tracing::info!(fired = n, "SLA sweep fired warnings and breaches"),
                Ok(Err(e)) => tracing::error!(error = %e, "SLA sweep failed"),
                Err(e) => tracing::error!(error = %e, "SLA sweep task panicked"),
            }
        }
    })
}

/// Usage and seat thresholds that fire automations, in percent of the limit.
pub const THRESHOLDS: [u64; 2] = [80, 100];

/// The highest threshold crossed upwards going from `before` (used, limit)
/// to `after` (used, limit). Limits may change too (seats bought).
pub fn crossed(before: (u64, u64), after: (u64, u64)) -> Option<u64> {
    let below = |(used, limit): (u64, u64), t: u64| used * 100 < t * limit;
    if after.1 == 0 {
        return None;
    }
    THRESHOLDS
        .iter()
        .rev()
        .copied()
        .find(|&t| below(before, t) && !below(after, t))
}

fn account_event(
    w: &mut Writer<'_>,
    account: AccountId,
    event: AutomationEvent,
    what: String,
    detail: serde_json::Value,
) -> Result<()> {
    let acct = account_view(w, account)?;
    let f = facts(&acct, None, "", Priority::Normal, None, String::new());
    let mut subject = Subject::Account(what);
    run_automations(w, event, &f, &mut subject, &acct)?;
    w.audit(
        &format!("account.{}", event.as_str()),
        &acct.account,
        detail,
    )
}

/// Seats held against seats paid for changed: fires `seats_threshold`
/// automations when 80 % or 100 % is crossed upwards.
pub fn seats_changed(
    w: &mut Writer<'_>,
    account: AccountId,
    held: (u32, u32),
    seats: (u32, u32),
) -> Result<()> {
    let Some(t) = crossed(
        (held.0 as u64, seats.0 as u64),
        (held.1 as u64, seats.1 as u64),
    ) else {
        return Ok(());
    };
    let what = format!("{} of {} seats in use ({t} % threshold)", held.1, seats.1);
    account_event(
        w,
        account,
        AutomationEvent::SeatsThreshold,
        what,
        json!({ "held": held.1, "seats": seats.1, "threshold": t }),
    )
}

/// A meter moved: fires `usage_threshold` automations when 80 % or 100 % of
/// its limit is crossed upwards.
pub fn usage_changed(w: &mut Writer<'_>, meter: &UsageMeter, used_before: u64) -> Result<()> {
    let Some(limit) = meter.limit else {
        return Ok(());
    };
    let Some(t) = crossed((used_before, limit), (meter.used, limit)) else {
        return Ok(());
    };
    let what = format!(
        "{}: {} of {} {} used ({t} % threshold)",
        meter.name, meter.used, limit, meter.unit
    );
    account_event(
        w,
        meter.account_id,
        AutomationEvent::UsageThreshold,
        what,
        json!({ "meter": meter.meter, "used": meter.used, "limit": limit, "threshold": t }),
    )
}

#[cfg(test)]
mod tests {
    use super::crossed;

    #[test]
    fn thresholds_fire_only_when_crossed_upwards() {
        assert_eq!(crossed((70, 100), (85, 100)), Some(80));
        assert_eq!(
            crossed((70, 100), (100, 100)),
            Some(100),
            "the highest crossed wins"
        );
        assert_eq!(crossed((85, 100), (90, 100)), None, "already above 80 %");
        assert_eq!(
            crossed((9, 10), (9, 20)),
            None,
            "buying seats moves away from the limit"
        );
        assert_eq!(crossed((7, 10), (8, 10)), Some(80));
        assert_eq!(crossed((0, 0), (1, 0)), None, "no limit, no threshold");
    }
}
