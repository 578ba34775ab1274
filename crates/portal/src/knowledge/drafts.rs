//! Draft replies for incoming customer messages, and their review.
//!
//! The drafter follows the change log (like the live fan-out), so every way
//! a customer message arrives (HTTP, live chat, sync push, email) gets a
//! draft, and a restart resumes where it stopped: its position is stored
//! with the drafts it writes, in the same transaction. A draft is a record,
//! so it reaches staff desktops through the sync feed like any other.
//!
//! Nothing a draft proposes happens by itself: a person approves the draft
//! (it is then sent as their reply) and picks the actions to run; each
//! action is authorized for that person by the same rules as doing it by
//! hand (adding seats needs an administrator), in the same transaction.

use std::time::Duration;

use portico_model::wire::{NewMessage, SubscriptionChange};
use portico_model::*;
use rusqlite::OptionalExtension;
use serde::Deserialize;
use serde_json::json;

use super::answer::{self, Outcome};
use crate::AppState;
use crate::error::{PortalError, Result};
use crate::store::{self, Actor, Writer};

const CURSOR: &str = "drafter";
/// Tag on conversations opened by an escalated customer answer: their
/// question was already counted as a content gap.
pub const ESCALATED_TAG: &str = "ai-escalated";

fn cursor(c: &rusqlite::Connection) -> Result<Option<i64>> {
    Ok(c.query_row(
        "SELECT seq FROM knowledge_cursor WHERE name = ?1",
        [CURSOR],
        |r| r.get(0),
    )
    .optional()?)
}

fn set_cursor(w: &Writer<'_>, seq: i64) -> Result<()> {
    w.execute(
        "INSERT INTO knowledge_cursor (name, seq) VALUES (?1, ?2)
         ON CONFLICT (name) DO UPDATE SET seq = max(seq, excluded.seq)",
        rusqlite::params![CURSOR, seq],
    )?;
    Ok(())
}

/// Runs the drafter until the server stops: woken by every committed write,
/// and every second in case a wake-up was missed.
pub fn spawn_drafter(st: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            match run_once(&st).await {
                Ok(0) => {
                    let _ =
                        tokio::time::timeout(Duration::from_secs(1), st.knowledge.woken()).await;
                }
                Ok(n) => tracing::debug!(drafts = n, "drafted replies"),
                Err(e) => {
                    tracing::error!(error = %e, "drafter failed; retrying shortly");
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
            }
        }
    })
}

/// A customer message waiting for a draft.
struct Pending {
    seq: i64,
    message: Message,
}

/// Drafts replies for customer messages committed since the last run.
/// Returns how many drafts were written.
pub async fn run_once(st: &AppState) -> Result<usize> {
    let (pending, upto) = st
        .read(|c| {
            let upto: i64 =
                c.query_row("SELECT coalesce(max(seq), 0) FROM change_log", [], |r| {
                    r.get(0)
                })?;
            let Some(after) = cursor(c)? else {
                // First start: history is not drafted, only what comes next.
                return Ok((Vec::new(), Some(upto)));
            };
            let mut stmt = c.prepare_cached(
                "SELECT seq, row FROM change_log
                 WHERE seq > ?1 AND seq <= ?2 AND kind = 'message' AND op = 'upsert' AND version = 1
                 ORDER BY seq LIMIT 50",
            )?;
            let rows = stmt.query_map([after, upto], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, Option<String>>(1)?))
            })?;
            let mut out = Vec::new();
            let (mut examined, mut last) = (0, after);
            for r in rows {
                let (seq, row) = r?;
                examined += 1;
                last = seq;
                if let Some(row) = row {
                    let message: Message = store::parse(&row)?;
                    if message.kind == MessageKind::Customer {
                        out.push(Pending { seq, message });
                    }
                }
            }
            // A full page may have more after it; otherwise all up to `upto` is seen.
            Ok((out, Some(if examined == 50 { last } else { upto })))
        })
        .await?;
    let mut written = 0;
    for p in pending {
        if draft_for(st, &p).await? {
            written += 1;
        }
    }
    if let Some(upto) = upto {
        st.store
            .write(Actor::SYSTEM, st.clock.now(), |w| set_cursor(w, upto))?;
    }
    Ok(written)
}

/// Composes and stores the draft for one customer message.
async fn draft_for(st: &AppState, p: &Pending) -> Result<bool> {
    let m = p.message.clone();
    let found = st
        .read(move |c| {
            let exists: Option<String> = c
                .query_row(
                    "SELECT id FROM drafts WHERE message_id = ?1",
                    [m.id.to_string()],
                    |r| r.get(0),
                )
                .optional()?;
            if exists.is_some() {
                return Ok(None);
            }
            let Some(conv) = store::get::<Conversation>(c, m.conversation_id.0)? else {
                return Ok(None);
            };
            let Some(author) = m.author_id else {
                return Ok(None);
            };
            let Some(user) = store::get::<User>(c, author.0)? else {
                return Ok(None);
            };
            if user.role.is_staff() {
                return Ok(None);
            }
            // The draft is written for the customer who asked: their view,
            // never the reviewing agent's.
            let customer = crate::auth::viewer_for_user(c, &user)?;
            Ok(Some((conv, customer)))
        })
        .await?;
    let Some((conv, customer)) = found else {
        let seq = p.seq;
        st.store
            .write(Actor::SYSTEM, st.clock.now(), |w| set_cursor(w, seq))?;
        return Ok(false);
    };
    let question = if conv.message_count <= 1 {
        format!("{}. {}", conv.subject, p.message.body)
    } else {
        p.message.body.clone()
    };
    let outcome = answer::answer(st, &customer, &question, None).await?;
    let message = p.message.clone();
    let seq = p.seq;
    let plan = customer.plan_code.clone();
    let counted = conv.tags.iter().any(|t| t == ESCALATED_TAG);
    st.write(Actor::SYSTEM, move |w| {
        let mut d = draft_record(w, &conv, &message, &outcome);
        w.insert(&mut d)?;
        w.audit(
            "draft.created",
            &d,
            json!({ "composer": d.composer, "confidence": d.confidence, "escalated": d.escalated }),
        )?;
        if d.escalated && !counted {
            super::gaps::record(w, &question, &conv.product_area, plan.as_deref())?;
        }
        set_cursor(w, seq)
    })
    .await?;
    Ok(true)
}

fn draft_record(w: &Writer<'_>, conv: &Conversation, m: &Message, o: &Outcome) -> Draft {
    let note = match (&o.answer.note, o.escalate) {
        (Some(n), true) => Some(format!("{n}. Low confidence: a person should answer.")),
        (Some(n), false) => Some(n.clone()),
        (None, true) => Some(
            "Low confidence: the knowledge base does not cover this well; a person should answer."
                .into(),
        ),
        (None, false) => None,
    };
    let body = if o.answer.sentences.is_empty() {
        "Thanks for your message. I'm looking into this and will get back to you shortly."
            .to_owned()
    } else {
        o.answer.text.clone()
    };
    Draft {
        id: w.new_id(),
        account_id: conv.account_id,
        conversation_id: conv.id,
        message_id: m.id,
        body,
        sources: o
            .citations
            .iter()
            .map(|c| DraftSource {
                n: c.n as u32,
                kind: c.kind,
                id: c.id,
                title: c.title.clone(),
            })
            .collect(),
        facts: o.facts_used.clone(),
        actions: o.actions.clone(),
        composer: o.answer.composer.clone(),
        note,
        confidence: (o.confidence * 100.0).round().clamp(0.0, 100.0) as u8,
        escalated: o.escalate,
        state: DraftState::Pending,
        reviewer_id: None,
        sent_message_id: None,
        version: 0,
        created_at: w.at(),
        updated_at: w.at(),
    }
}

/// Approve a draft: send it (as edited, if a body is given) and run the
/// chosen actions.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Approve {
    /// The text to send; omit to send the draft as written.
    pub body: Option<String>,
    /// Indexes into the draft's `actions` to run; the others are declined.
    #[serde(default)]
    pub run_actions: Vec<usize>,
    pub if_version: Option<u64>,
    /// The reply's id when the client minted it (a desktop approving
    /// offline through sync push), so a retried push sends it once. Not
    /// part of the HTTP body.
    #[serde(skip)]
    pub message_id: Option<MessageId>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Edit {
    pub body: String,
    pub if_version: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reject {
    #[serde(default)]
    pub reason: String,
    pub if_version: Option<u64>,
}

fn pending(
    w: &Writer<'_>,
    reviewer: &Viewer,
    id: DraftId,
    if_version: Option<u64>,
) -> Result<Draft> {
    crate::api::authorize(reviewer, Action::ReviewDrafts, Kind::Draft, id)?;
    let d: Draft = store::require(w, id.0)?;
    crate::api::check_version("draft", if_version, d.version)?;
    if d.state != DraftState::Pending {
        return Err(PortalError::Conflict(format!(
            "the draft is already {}; only a pending draft can be reviewed",
            d.state.as_str()
        )));
    }
    Ok(d)
}

fn check_body(body: &str) -> Result<()> {
    if body.trim().is_empty() {
        return Err(Invalid::new("body", "must not be empty").into());
    }
    if body.len() > 64 * 1024 {
        return Err(Invalid::new("body", "at most 64 KiB").into());
    }
    Ok(())
}

pub fn edit(w: &mut Writer<'_>, reviewer: &Viewer, id: DraftId, e: Edit) -> Result<Draft> {
    check_body(&e.body)?;
    let mut d = pending(w, reviewer, id, e.if_version)?;
    let before = std::mem::replace(&mut d.body, e.body);
    w.update(&mut d)?;
    w.audit(
        "draft.edited",
        &d,
        json!({ "before": before, "after": d.body }),
    )?;
    Ok(d)
}

pub fn reject(w: &mut Writer<'_>, reviewer: &Viewer, id: DraftId, r: Reject) -> Result<Draft> {
    if r.reason.len() > 2000 {
        return Err(Invalid::new("reason", "at most 2,000 bytes").into());
    }
    let mut d = pending(w, reviewer, id, r.if_version)?;
    d.state = DraftState::Rejected;
    d.reviewer_id = Some(reviewer.user_id);
    for a in &mut d.actions {
        a.status = ActionStatus::Declined;
    }
    w.update(&mut d)?;
    w.audit("draft.rejected", &d, json!({ "reason": r.reason }))?;
    Ok(d)
}

pub fn approve(
    w: &mut Writer<'_>,
    reviewer: &Viewer,
    id: DraftId,
    a: Approve,
) -> Result<(Draft, Message)> {
    let mut d = pending(w, reviewer, id, a.if_version)?;
    if let Some(i) = a.run_actions.iter().find(|i| **i >= d.actions.len()) {
        return Err(Invalid::new(
            "run_actions",
            format!(
                "the draft proposes {} actions; there is no action {i}",
                d.actions.len()
            ),
        )
        .into());
    }
    let original = d.body.clone();
    let body = a.body.unwrap_or_else(|| d.body.clone());
    check_body(&body)?;
    let conv: Conversation = store::require(w, d.conversation_id.0)?;
    let mut actions = std::mem::take(&mut d.actions);
    for (i, action) in actions.iter_mut().enumerate() {
        if a.run_actions.contains(&i) {
            action.result = Some(run(w, reviewer, &conv, &action.action)?);
            action.status = ActionStatus::Done;
        } else {
            action.status = ActionStatus::Declined;
        }
    }
    d.actions = actions;
    let (msg, _) = crate::api::conversations::post_in(
        w,
        reviewer,
        conv.id.0,
        NewMessage {
            id: a.message_id,
            internal: false,
            body: body.clone(),
            mentions: vec![],
        },
    )?;
    d.body = body;
    d.state = DraftState::Approved;
    d.reviewer_id = Some(reviewer.user_id);
    d.sent_message_id = Some(msg.id);
    w.update(&mut d)?;
    let ran: Vec<&ProposedAction> = d
        .actions
        .iter()
        .filter(|x| x.status == ActionStatus::Done)
        .collect();
    w.audit(
        "draft.approved",
        &d,
        json!({
            "edited": d.body != original,
            "original_body": original,
            "message_id": msg.id,
            "actions_run": ran,
        }),
    )?;
    Ok((d, msg))
}

/// Runs one approved action as `reviewer`, under the rules for doing it by
/// hand. Returns what it did.
fn run(
    w: &mut Writer<'_>,
    reviewer: &Viewer,
    conv: &Conversation,
    action: &ActionProposal,
) -> Result<String> {
    let account = conv.account_id;
    let at = w.at();
    match action {
        ActionProposal::AddSeats { seats } => {
            let change = SubscriptionChange {
                plan_id: None,
                seats: Some(*seats),
                timing: None,
                proration_at: None,
            };
            let (quote, _, _) =
                crate::api::billing::apply_change(w, reviewer, account, &change, at)?;
            Ok(format!(
                "seats changed from {} to {}",
                quote.from_seats, quote.to_seats
            ))
        }
        ActionProposal::ChangePlan { plan_id, plan_code } => {
            let change = SubscriptionChange {
                plan_id: Some(*plan_id),
                seats: None,
                timing: None,
                proration_at: None,
            };
            let (quote, _, _) =
                crate::api::billing::apply_change(w, reviewer, account, &change, at)?;
            Ok(format!(
                "plan changed to {plan_code}, effective {}",
                quote.effective_at
            ))
        }
        ActionProposal::OpenRequest { kind, title } => {
            crate::api::authorize(
                reviewer,
                Action::OpenRequest(account),
                Kind::Account,
                account,
            )?;
            let mut r = Request {
                id: w.new_id(),
                account_id: account,
                kind: *kind,
                title: title.clone(),
                body: String::new(),
                status: RequestStatus::New,
                priority: Priority::Normal,
                product_area: conv.product_area.clone(),
                requester_id: conv.requester_id,
                conversation_id: Some(conv.id),
                assignee_id: None,
                team_id: None,
                internal_note: String::new(),
                votes: 0,
                attachments: vec![],
                version: 0,
                created_at: at,
                updated_at: at,
            };
            w.insert(&mut r)?;
            w.audit("request.created", &r, json!({ "from": "draft" }))?;
            crate::work::request_created(w, &mut r)?;
            Ok(format!("request {} opened", r.id))
        }
        ActionProposal::PointToEntitlement { feature } => {
            Ok(format!("the reply points the customer to {feature}"))
        }
    }
}
