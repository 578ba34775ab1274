//! Draft replies for incoming customer messages, and their review.
//!
//! The drafter follows the change log (like the live fan-out), so every way
//! a customer message arrives (HTTP, live chat, sync push, email) gets a
//! draft, and a restart resumes where it stopped: its position is stored
//! with the drafts it writes, in the same transaction. A draft is a record,
//! so it reaches staff desktops through the sync feed like any other.
//!
//! **One draft per pause, not per line.** Chat customers write in bursts of
//! short lines, and a draft is only useful once they have stopped: the
//! drafter waits until a conversation's customer has been quiet for
//! [`QUIET`] (or, for one who never pauses, [`LONGEST_WAIT`] after the
//! first line not yet drafted), then writes one draft answering everything
//! they said since, attached to their latest message. A public reply from
//! staff in the meantime cancels it: the customer has been answered. This
//! is how Intercom's and Zendesk's AI agents behave, and it is what keeps
//! drafting (milliseconds of embedding per draft) from falling behind busy
//! chats and writing through every pause (docs/knowledge.md, docs/benchmarks.md).
//!
//! Drafting stays out of the chat's way: retrieval (embedding the question)
//! runs on one thread of its own, one draft at a time (so it never takes
//! more than one core), and each batch of drafts is written in one
//! transaction. The thread keeps the normal priority: measured at nice 10
//! on a loaded machine, it starved, its backlog ran into the next burst of
//! chat, and chat p99 went up instead of down (docs/benchmarks.md).
//!
//! Nothing a draft proposes happens by itself: a person approves the draft
//! (it is then sent as their reply) and picks the actions to run; each
//! action is authorized for that person by the same rules as doing it by
//! hand (adding seats needs an administrator), in the same transaction.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use portico_model::wire::{NewMessage, SubscriptionChange};
use portico_model::*;
use rusqlite::OptionalExtension;
use serde::Deserialize;
use serde_json::json;

use super::answer::{self, Outcome};
use super::index::MAX_QUERY_CHARS;
use crate::AppState;
use crate::error::{PortalError, Result};
use crate::store::{self, Actor, Writer};

const CURSOR: &str = "drafter";
/// Tag on conversations opened by an escalated customer answer: their
/// question was already counted as a content gap.
pub const ESCALATED_TAG: &str = "ai-escalated";

/// How long a customer must have been quiet in a conversation before it is
/// drafted.
pub const QUIET: Duration = Duration::from_secs(3);
/// A customer who keeps writing still gets a draft this long after their
/// first line not yet drafted.
pub const LONGEST_WAIT: Duration = Duration::from_secs(30);
/// Drafts written per transaction (and composed per round).
const BATCH: usize = 16;
/// Change-log rows read per query.
const PAGE: i64 = 500;
/// How often the change log is read while writes keep coming: drafts wait
/// seconds anyway, so reading it after every commit would be wasted work.
const READ_EVERY: Duration = Duration::from_millis(250);
/// The cursor moves with each batch of drafts; with no drafts to write, it
/// is saved at most this often (a restart reads again from there).
const SAVE_CURSOR_EVERY: Duration = Duration::from_secs(10);

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

/// Runs the drafter until the server stops.
pub fn spawn_drafter(st: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let retrieval = match RetrievalThread::start() {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(error = %e, "cannot start the drafter's thread; no drafts");
                return;
            }
        };
        let mut drafter = Drafter::default();
        loop {
            match drafter.run_once(&st, &retrieval, Instant::now()).await {
                Ok(n) => {
                    if n > 0 {
                        tracing::debug!(drafts = n, "drafted replies");
                        continue;
                    }
                    match drafter.next_due() {
                        Some(due) => {
                            let wait = due.saturating_duration_since(Instant::now());
                            // New lines move a due time later, never earlier:
                            // sleeping until the earliest one is enough, but
                            // keep reading the log meanwhile.
                            tokio::time::sleep(wait.clamp(READ_EVERY, SAVE_CURSOR_EVERY)).await;
                        }
                        None => {
                            // Idle: sleep until a write commits.
                            let _ =
                                tokio::time::timeout(SAVE_CURSOR_EVERY, st.knowledge.woken()).await;
                            tokio::time::sleep(READ_EVERY).await;
                        }
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "drafter failed; retrying shortly");
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
            }
        }
    })
}

/// Runs jobs one at a time on a thread of its own, so CPU-heavy retrieval
/// (embedding) never takes more than one core, nor a thread of the blocking
/// pool the message path writes from.
struct RetrievalThread {
    jobs: std::sync::mpsc::Sender<Box<dyn FnOnce() + Send>>,
}

impl RetrievalThread {
    /// The thread ends when this is dropped.
    fn start() -> std::io::Result<RetrievalThread> {
        let (jobs, queue) = std::sync::mpsc::channel::<Box<dyn FnOnce() + Send>>();
        std::thread::Builder::new()
            .name("drafter-retrieval".into())
            .spawn(move || {
                for job in queue {
                    job();
                }
            })?;
        Ok(RetrievalThread { jobs })
    }

    async fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
        let (done, result) = tokio::sync::oneshot::channel();
        self.jobs
            .send(Box::new(move || {
                let _ = done.send(f());
            }))
            .map_err(|_| PortalError::Unavailable)?;
        result.await.map_err(|_| PortalError::Unavailable)
    }
}

/// A conversation whose customer wrote since its last draft or reply.
#[derive(Debug)]
struct Waiting {
    /// The oldest of those lines: the stored cursor stays before it until
    /// the conversation is drafted, so a restart reads it again.
    first_seq: i64,
    /// The latest line: the draft is attached to it.
    latest: Message,
    /// What the customer said, oldest first, at most [`MAX_QUERY_CHARS`]
    /// in all (retrieval reads no more); older lines are dropped first.
    lines: VecDeque<String>,
    /// How many lines, including dropped ones.
    count: usize,
    first_seen: Instant,
    last_seen: Instant,
}

impl Waiting {
    fn due(&self) -> Instant {
        (self.last_seen + QUIET).min(self.first_seen + LONGEST_WAIT)
    }

    fn question(&self, conv: &Conversation) -> String {
        let said = self
            .lines
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join("\n");
        // The conversation's first line reads better with its subject.
        if conv.message_count as usize <= self.count {
            format!("{}. {said}", conv.subject)
        } else {
            said
        }
    }
}

/// The drafter's place in the change log and the conversations waiting for
/// their customer to pause.
#[derive(Debug, Default)]
struct Drafter {
    /// The change log is read up to here; `None` until first read.
    read_to: Option<i64>,
    /// The cursor as last stored (`None` on a first start, until stored).
    saved: Option<i64>,
    saved_at: Option<Instant>,
    waiting: HashMap<ConversationId, Waiting>,
}

impl Drafter {
    /// Takes in one committed change-log row seen at `now`.
    fn take(&mut self, seq: i64, m: Message, now: Instant) {
        match m.kind {
            MessageKind::Customer => {
                let w = self.waiting.entry(m.conversation_id).or_insert(Waiting {
                    first_seq: seq,
                    latest: m.clone(),
                    lines: VecDeque::new(),
                    count: 0,
                    first_seen: now,
                    last_seen: now,
                });
                let line: String = m.body.chars().take(MAX_QUERY_CHARS).collect();
                w.lines.push_back(line);
                while w.lines.iter().map(|l| l.chars().count() + 1).sum::<usize>() > MAX_QUERY_CHARS
                    && w.lines.len() > 1
                {
                    w.lines.pop_front();
                }
                w.count += 1;
                w.latest = m;
                w.last_seen = now;
            }
            // Answered by a person: no draft needed for what came before.
            MessageKind::Agent => {
                self.waiting.remove(&m.conversation_id);
            }
            MessageKind::InternalNote | MessageKind::System => {}
        }
    }

    /// Conversations due at `now`, oldest first, at most [`BATCH`].
    fn due(&self, now: Instant) -> Vec<ConversationId> {
        let mut due: Vec<(Instant, ConversationId)> = self
            .waiting
            .iter()
            .filter(|(_, w)| w.due() <= now)
            .map(|(id, w)| (w.due(), *id))
            .collect();
        due.sort();
        due.into_iter().take(BATCH).map(|(_, id)| id).collect()
    }

    fn next_due(&self) -> Option<Instant> {
        self.waiting.values().map(Waiting::due).min()
    }

    /// Where a restart must read from: before the oldest line not drafted.
    fn cursor(&self) -> Option<i64> {
        let read_to = self.read_to?;
        Some(
            self.waiting
                .values()
                .map(|w| w.first_seq - 1)
                .min()
                .unwrap_or(read_to)
                .min(read_to),
        )
    }

    /// Reads what committed since the last call, then drafts the
    /// conversations due at `now` (one batch). Returns how many drafts were
    /// written.
    async fn run_once(
        &mut self,
        st: &AppState,
        retrieval: &RetrievalThread,
        now: Instant,
    ) -> Result<usize> {
        self.read_log(st, now).await?;
        let due = self.due(now);
        if due.is_empty() {
            let stale = self.saved_at.is_none_or(|t| now >= t + SAVE_CURSOR_EVERY);
            if let Some(c) = self.cursor()
                && Some(c) != self.saved
                && stale
            {
                st.write(Actor::SYSTEM, move |w| set_cursor(w, c)).await?;
                (self.saved, self.saved_at) = (Some(c), Some(now));
            }
            return Ok(0);
        }
        let mut drafts = Vec::new();
        for id in &due {
            let w = &self.waiting[id];
            if let Some(d) = compose(st, retrieval, w).await? {
                drafts.push(d);
            }
        }
        for id in &due {
            self.waiting.remove(id);
        }
        let cursor = self.cursor().or(self.saved).unwrap_or(0);
        let written = drafts.len();
        st.write(Actor::SYSTEM, move |w| {
            for d in drafts {
                d.store(w)?;
            }
            set_cursor(w, cursor)
        })
        .await?;
        (self.saved, self.saved_at) = (Some(cursor), Some(now));
        Ok(written)
    }

    /// Reads the messages committed since the last read (all of them, in
    /// pages).
    async fn read_log(&mut self, st: &AppState, now: Instant) -> Result<()> {
        loop {
            let after = self.read_to;
            let (rows, start, stored) = st
                .read(move |c| {
                    let (start, stored) = match after {
                        Some(a) => (a, true),
                        None => match cursor(c)? {
                            Some(a) => (a, true),
                            // First start: history is not drafted, only what
                            // comes next.
                            None => (
                                c.query_row(
                                    "SELECT coalesce(max(seq), 0) FROM change_log",
                                    [],
                                    |r| r.get(0),
                                )?,
                                false,
                            ),
                        },
                    };
                    let mut stmt = c.prepare_cached(
                        "SELECT seq, row FROM change_log
                         WHERE seq > ?1 AND kind = 'message' AND op = 'upsert' AND version = 1
                         ORDER BY seq LIMIT ?2",
                    )?;
                    let rows = stmt
                        .query_map(rusqlite::params![start, PAGE], |r| {
                            Ok((r.get::<_, i64>(0)?, r.get::<_, Option<String>>(1)?))
                        })?
                        .collect::<rusqlite::Result<Vec<_>>>()?;
                    Ok((rows, start, stored))
                })
                .await?;
            if self.read_to.is_none() {
                self.saved = stored.then_some(start);
            }
            let full = rows.len() as i64 == PAGE;
            let mut read_to = start;
            for (seq, row) in rows {
                read_to = seq;
                if let Some(row) = row {
                    self.take(seq, store::parse(&row)?, now);
                }
            }
            self.read_to = Some(read_to);
            if !full {
                return Ok(());
            }
        }
    }
}

/// A draft composed and ready to store.
struct Composed {
    draft_for: Message,
    conv: Conversation,
    question: String,
    plan: Option<String>,
    outcome: Outcome,
}

impl Composed {
    fn store(self, w: &mut Writer<'_>) -> Result<()> {
        let Composed {
            draft_for,
            conv,
            question,
            plan,
            outcome,
        } = self;
        let mut d = draft_record(w, &conv, &draft_for, &outcome);
        w.insert(&mut d)?;
        w.audit(
            "draft.created",
            &d,
            json!({ "composer": d.composer, "confidence": d.confidence, "escalated": d.escalated }),
        )?;
        // An escalated customer answer opened this conversation and
        // already counted the question.
        let counted = conv.tags.iter().any(|t| t == ESCALATED_TAG);
        if d.escalated && !counted {
            super::gaps::record(w, &question, &conv.product_area, plan.as_deref())?;
        }
        Ok(())
    }
}

/// Composes the draft for a waiting conversation, or `None` when there is
/// nothing to draft (already drafted before a restart, gone, or the author
/// is staff).
async fn compose(
    st: &AppState,
    retrieval: &RetrievalThread,
    waiting: &Waiting,
) -> Result<Option<Composed>> {
    let m = waiting.latest.clone();
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
        return Ok(None);
    };
    let question = waiting.question(&conv);
    let (store, k, v, q) = (
        st.store.clone(),
        st.knowledge.clone(),
        customer.clone(),
        question.clone(),
    );
    let (grounding, picture) = retrieval
        .run(move || answer::ground(&store, &k, &v, &q, None))
        .await??;
    let outcome = answer::compose(&st.knowledge, &customer, grounding, &picture).await;
    Ok(Some(Composed {
        draft_for: waiting.latest.clone(),
        conv,
        question,
        plan: customer.plan_code.clone(),
        outcome,
    }))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn line(conv: ConversationId, kind: MessageKind, body: &str) -> Message {
        let at = jiff::Timestamp::UNIX_EPOCH;
        Message {
            id: MessageId(uuid::Uuid::now_v7()),
            conversation_id: conv,
            account_id: AccountId(uuid::Uuid::now_v7()),
            kind,
            author_id: Some(UserId(uuid::Uuid::now_v7())),
            author_name: "Ada".into(),
            body: body.into(),
            mentions: vec![],
            email: None,
            delivery: None,
            version: 1,
            created_at: at,
            updated_at: at,
        }
    }

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    fn reading_from(seq: i64) -> Drafter {
        Drafter {
            read_to: Some(seq),
            saved: Some(seq),
            ..Drafter::default()
        }
    }

    #[test]
    fn a_burst_of_lines_gets_one_draft_once_the_customer_pauses() {
        let t0 = Instant::now();
        let conv = ConversationId(uuid::Uuid::now_v7());
        let mut d = reading_from(10);
        d.take(11, line(conv, MessageKind::Customer, "Hi"), t0);
        d.take(
            14,
            line(conv, MessageKind::Customer, "my export failed"),
            t0 + secs(1.0),
        );
        let last = line(conv, MessageKind::Customer, "it says quota exceeded");
        let last_id = last.id;
        d.take(17, last, t0 + secs(2.0));
        d.read_to = Some(17);
        assert!(
            d.due(t0 + secs(2.0) + QUIET - secs(0.1)).is_empty(),
            "still within the quiet period after the last line"
        );
        assert_eq!(
            d.due(t0 + secs(2.0) + QUIET),
            vec![conv],
            "quiet long enough"
        );
        let w = &d.waiting[&conv];
        assert_eq!(w.latest.id, last_id, "the draft answers the latest line");
        assert_eq!(w.count, 3);
        assert_eq!(
            w.lines.iter().map(String::as_str).collect::<Vec<_>>(),
            ["Hi", "my export failed", "it says quota exceeded"],
            "the question is everything said since the last reply"
        );
        assert_eq!(
            d.cursor(),
            Some(10),
            "a restart must read the burst again until it is drafted"
        );
    }

    #[test]
    fn a_customer_who_never_pauses_is_drafted_after_the_longest_wait() {
        let t0 = Instant::now();
        let conv = ConversationId(uuid::Uuid::now_v7());
        let mut d = reading_from(0);
        let mut t = t0;
        let mut seq = 0;
        while t <= t0 + LONGEST_WAIT {
            seq += 1;
            d.take(
                seq,
                line(conv, MessageKind::Customer, "and another thing"),
                t,
            );
            assert!(
                d.due(t).is_empty() || t >= t0 + LONGEST_WAIT,
                "drafted before the longest wait while the customer kept writing"
            );
            t += QUIET / 2;
        }
        assert_eq!(d.due(t0 + LONGEST_WAIT), vec![conv]);
        let w = &d.waiting[&conv];
        assert!(
            w.lines.iter().map(|l| l.chars().count() + 1).sum::<usize>() <= MAX_QUERY_CHARS + 1,
            "the question is bounded to what retrieval reads"
        );
        assert_eq!(w.count, seq as usize);
    }

    #[test]
    fn a_reply_from_staff_cancels_the_draft_and_frees_the_cursor() {
        let t0 = Instant::now();
        let (answered, other) = (
            ConversationId(uuid::Uuid::now_v7()),
            ConversationId(uuid::Uuid::now_v7()),
        );
        let mut d = reading_from(0);
        d.take(1, line(answered, MessageKind::Customer, "help"), t0);
        d.take(2, line(other, MessageKind::Customer, "hello?"), t0);
        d.take(3, line(answered, MessageKind::InternalNote, "on it"), t0);
        assert_eq!(d.waiting.len(), 2, "an internal note answers nobody");
        d.take(4, line(answered, MessageKind::Agent, "Here you go"), t0);
        d.read_to = Some(4);
        assert_eq!(d.due(t0 + QUIET), vec![other]);
        assert_eq!(d.cursor(), Some(1), "only the other conversation holds it");
        d.waiting.remove(&other);
        assert_eq!(d.cursor(), Some(4), "nothing waits: all read is done");
        assert_eq!(d.next_due(), None);
    }

    #[test]
    fn due_conversations_come_oldest_first_a_batch_at_a_time() {
        let t0 = Instant::now();
        let mut d = reading_from(0);
        let convs: Vec<ConversationId> = (0..BATCH + 5)
            .map(|_| ConversationId(uuid::Uuid::now_v7()))
            .collect();
        for (i, c) in convs.iter().enumerate().rev() {
            d.take(
                i as i64 + 1,
                line(*c, MessageKind::Customer, "?"),
                t0 + secs(i as f64 * 0.01),
            );
        }
        let due = d.due(t0 + secs(10.0));
        assert_eq!(due, convs[..BATCH], "one transaction holds at most a batch");
    }
}
