//! Guided onboarding: which path an account follows, how far it is, and
//! steps completed by real events or by hand.
//!
//! The account's path is the most specific one for its plan and lifecycle
//! stage. Progress lives in one `OnboardingProgress` record per account and
//! path (a synced record: the CSM's desktop sees it change). Events are
//! recorded inside the write that caused them (an invitation, SSO set up,
//! the first API call, the first request), on every path of the account's
//! plan that has a step for the event, so a later change of stage keeps
//! what was already done.

use jiff::Timestamp;
use portico_model::*;
use rusqlite::Connection;
use serde::Serialize;

use crate::error::{PortalError, Result};
use crate::store::{self, Writer};

/// One step as the portal shows it.
#[derive(Debug, Clone, Serialize)]
pub struct StepStatus {
    pub key: String,
    pub title: String,
    pub description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub feature: Option<String>,
    /// The event that completes it by itself, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completes_on: Option<OnboardingEvent>,
    pub done: bool,
    /// `event` or `manual`, when done.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub how: Option<CompletedBy>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at: Option<Timestamp>,
}

/// The account's path and where it stands.
#[derive(Debug, Clone, Serialize)]
pub struct OnboardingStatus {
    pub account_id: AccountId,
    pub path_id: OnboardingPathId,
    pub name: String,
    pub plan: String,
    pub steps: Vec<StepStatus>,
    pub done: usize,
    pub total: usize,
}

impl OnboardingStatus {
    /// The first step not done yet.
    pub fn next(&self) -> Option<&StepStatus> {
        self.steps.iter().find(|s| !s.done)
    }
}

/// How well a path fits: `None` if it does not apply; higher is more specific.
fn fit(path: &OnboardingPath, plan: &str, stage: LifecycleStage) -> Option<u8> {
    let plan_fits = path.plans.is_empty() || path.plans.iter().any(|p| p == plan);
    let stage_fits = path.stages.is_empty() || path.stages.contains(&stage);
    (plan_fits && stage_fits)
        .then_some(u8::from(!path.plans.is_empty()) * 2 + u8::from(!path.stages.is_empty()))
}

fn all_paths(c: &Connection) -> Result<Vec<OnboardingPath>> {
    store::query(c, "SELECT data FROM onboarding_paths ORDER BY id", [])
}

/// The path for a plan and stage: the most specific that applies (plan and
/// stage named, then plan, then stage, then the general one), oldest first.
pub fn path_for(
    c: &Connection,
    plan: &str,
    stage: LifecycleStage,
) -> Result<Option<OnboardingPath>> {
    let mut best: Option<(u8, OnboardingPath)> = None;
    for p in all_paths(c)? {
        if let Some(score) = fit(&p, plan, stage)
            && best.as_ref().is_none_or(|(b, _)| score > *b)
        {
            best = Some((score, p));
        }
    }
    Ok(best.map(|(_, p)| p))
}

fn progress_of(
    c: &Connection,
    account: AccountId,
    path: OnboardingPathId,
) -> Result<Option<OnboardingProgress>> {
    Ok(store::query::<OnboardingProgress>(
        c,
        "SELECT data FROM onboarding_progress WHERE account_id = ?1 ORDER BY id",
        [account.to_string()],
    )?
    .into_iter()
    .find(|p| p.path_id == path))
}

/// The account's plan code and the plan.
pub fn plan_of(c: &Connection, account: AccountId) -> Result<Plan> {
    let sub = crate::api::accounts::subscription_of(c, account)?;
    store::require(c, sub.plan_id.0)
}

/// Where `account` stands on its path; `None` when no path applies.
pub fn status(c: &Connection, account: &Account, plan: &Plan) -> Result<Option<OnboardingStatus>> {
    let Some(path) = path_for(c, &plan.code, account.lifecycle_stage)? else {
        return Ok(None);
    };
    let progress = progress_of(c, account.id, path.id)?;
    let steps: Vec<StepStatus> = path
        .steps
        .iter()
        .map(|s| {
            let done = progress.as_ref().and_then(|p| completion(p, &s.key));
            StepStatus {
                key: s.key.clone(),
                title: s.title.clone(),
                description: s.description.clone(),
                feature: s.feature.clone(),
                completes_on: s.completes_on,
                done: done.is_some(),
                how: done.map(|d| d.0),
                at: done.map(|d| d.1),
            }
        })
        .collect();
    Ok(Some(OnboardingStatus {
        account_id: account.id,
        path_id: path.id,
        name: path.name,
        plan: plan.code.clone(),
        done: steps.iter().filter(|s| s.done).count(),
        total: steps.len(),
        steps,
    }))
}

/// How and when a step was completed. Steps listed only in
/// `completed_steps` (older records) count as done by hand at the record's
/// last change.
fn completion(p: &OnboardingProgress, key: &str) -> Option<(CompletedBy, Timestamp)> {
    if let Some(s) = p.steps.iter().find(|s| s.key == key) {
        return Some((s.how, s.at));
    }
    p.completed_steps
        .iter()
        .any(|k| k == key)
        .then_some((CompletedBy::Manual, p.updated_at))
}

/// Marks `key` done (or not) on `account`'s progress along `path`, creating
/// the progress record on first use. Returns whether anything changed.
fn mark(
    w: &mut Writer<'_>,
    account: AccountId,
    path: OnboardingPathId,
    key: &str,
    done: Option<StepCompletion>,
) -> Result<bool> {
    let existing = progress_of(w, account, path)?;
    let is_done = existing
        .as_ref()
        .is_some_and(|p| completion(p, key).is_some());
    if is_done == done.is_some() {
        return Ok(false);
    }
    let mut p = existing.unwrap_or_else(|| OnboardingProgress {
        id: w.new_id(),
        account_id: account,
        path_id: path,
        completed_steps: vec![],
        steps: vec![],
        version: 0,
        created_at: w.at(),
        updated_at: w.at(),
    });
    p.steps.retain(|s| s.key != key);
    p.completed_steps.retain(|k| k != key);
    let how = done.as_ref().map(|d| d.how);
    if let Some(d) = done {
        p.completed_steps.push(key.to_owned());
        p.steps.push(d);
    }
    if p.version == 0 {
        w.insert(&mut p)?;
    } else {
        w.update(&mut p)?;
    }
    w.audit(
        if how.is_some() {
            "onboarding.step_done"
        } else {
            "onboarding.step_reopened"
        },
        &p,
        serde_json::json!({ "step": key, "how": how }),
    )?;
    Ok(true)
}

/// Records a real event: every path of the account's plan with a step that
/// `event` completes gets it done (once; a later event changes nothing).
/// Runs inside the write that caused the event.
pub fn record_event(w: &mut Writer<'_>, account: AccountId, event: OnboardingEvent) -> Result<()> {
    let Ok(plan) = plan_of(w, account) else {
        return Ok(()); // no subscription: no plan, no path
    };
    for path in all_paths(w)? {
        if !(path.plans.is_empty() || path.plans.contains(&plan.code)) {
            continue;
        }
        for step in path.steps.iter().filter(|s| s.completes_on == Some(event)) {
            let done = StepCompletion {
                key: step.key.clone(),
                how: CompletedBy::Event,
                at: w.at(),
                by: w.actor().user_id,
            };
            mark(w, account, path.id, &step.key, Some(done))?;
        }
    }
    Ok(())
}

/// A person marks a step of the account's current path done or not done.
pub fn set_step(
    w: &mut Writer<'_>,
    viewer: &Viewer,
    account: AccountId,
    key: &str,
    done: bool,
) -> Result<OnboardingStatus> {
    let acct: Account = store::require(w, account.0)?;
    let plan = plan_of(w, account)?;
    let path = path_for(w, &plan.code, acct.lifecycle_stage)?
        .ok_or_else(|| PortalError::not_found(Kind::OnboardingPath, "for this account"))?;
    if !path.steps.iter().any(|s| s.key == key) {
        return Err(PortalError::NotFound {
            kind: "onboarding step",
            id: key.to_owned(),
        });
    }
    let completion = done.then(|| StepCompletion {
        key: key.to_owned(),
        how: CompletedBy::Manual,
        at: w.at(),
        by: Some(viewer.user_id),
    });
    mark(w, account, path.id, key, completion)?;
    status(w, &acct, &plan)?
        .ok_or_else(|| PortalError::not_found(Kind::OnboardingPath, "for this account"))
}
