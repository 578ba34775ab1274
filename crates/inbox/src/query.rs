//! Typed local queries the inbox UI calls: conversation lists (views,
//! filters, sorts, keyset paging) and one conversation opened with its
//! messages and its account's summary. They read the mirror only, so they
//! answer the same with or without a network.
//!
//! A list is answered from the `inbox` table of
//! `migrations/inbox/0002_search.sql` (one compact row per conversation,
//! kept by triggers) and its indexes. Each index starts with the column a
//! view narrows on (status, assignee or team), then status, priority, update
//! time and id. A query is split into one ordered walk per combination of
//! those leading values (e.g. "mine" × {open, pending} × each priority), each
//! walk stopping after a page of rows, and the walks are merged. So a page
//! costs a few short index walks whatever the size of the mailbox, never a
//! sort of every matching conversation. Other filters (channel, product
//! area, plan, team) are checked on the index entries, which carry them.

use std::cmp::Ordering;

use portico_model::sla::SlaMetric;
use portico_model::{
    Account, AccountId, Alert, Channel, Conversation, ConversationId, ConversationStatus, Invoice,
    InvoiceStatus, Kind, Message, Plan, Priority, Record, Request, RequestStatus, Subscription,
    TeamId, UsageMeter, User, UserId,
};
use rusqlite::types::Value as Sql;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::mirror::{Mirror, MirrorError};

/// Most rows one list call returns, whatever the query asks.
pub const MAX_PAGE: usize = 500;

/// Which conversations a list starts from.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum View {
    /// Assigned to the signed-in staff member.
    Mine,
    /// Assigned to nobody.
    Unassigned,
    /// In any team the signed-in staff member belongs to (from their user
    /// record in the mirror; none if it is not mirrored).
    MyTeams,
    All,
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sort {
    /// Most recently updated first.
    UpdatedDesc,
    /// Least recently updated first (oldest waiting).
    UpdatedAsc,
    /// Most urgent first, then most recently updated.
    PriorityDesc,
}

/// Narrowing of a list; an empty list means "any". Values within a list are
/// alternatives (OR); lists and the view combine with AND.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InboxFilters {
    pub status: Vec<ConversationStatus>,
    pub priority: Vec<Priority>,
    pub channel: Vec<Channel>,
    /// Plan codes of the conversation's account, e.g. `enterprise`.
    pub plan: Vec<String>,
    pub product_area: Vec<String>,
    /// `None` in the list means "unassigned".
    pub assignee: Vec<Option<UserId>>,
    pub team: Vec<TeamId>,
    /// Only conversations whose running SLA clock falls due before this
    /// instant (breached ones included: their due has passed), soonest
    /// first whatever the sort. The caller picks the instant (e.g. now plus
    /// an hour), so the query stays a pure read.
    #[cfg_attr(feature = "ts", ts(type = "string | null"))]
    pub sla_due_before: Option<jiff::Timestamp>,
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboxQuery {
    /// The signed-in staff member ("mine", "my teams").
    pub me: UserId,
    pub view: View,
    pub filters: InboxFilters,
    pub sort: Sort,
    /// Rows wanted (capped at [`MAX_PAGE`]).
    pub limit: usize,
    /// Continue after this row (from [`ConversationRow::cursor`] of the
    /// last row of the previous page). Keyset paging: rows that change
    /// between pages neither repeat nor push others off the page boundary.
    pub after: Option<Cursor>,
}

impl InboxQuery {
    /// The first page of 50, most recently updated first, no filters.
    pub fn new(me: UserId, view: View) -> InboxQuery {
        InboxQuery {
            me,
            view,
            filters: InboxFilters::default(),
            sort: Sort::UpdatedDesc,
            limit: 50,
            after: None,
        }
    }
}

/// Where a page ended: the sort key of its last row. Opaque to callers:
/// they hand back what a row gave them.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    priority_rank: Option<i64>,
    updated_ms: i64,
    id: String,
    /// Set in SLA-due lists, which are ordered by it.
    #[serde(default)]
    sla_due_ms: Option<i64>,
}

/// When a conversation's running SLA clock falls due next, and for what.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlaDue {
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    pub at: jiff::Timestamp,
    pub metric: SlaMetric,
}

/// The earliest pending due of the conversation's SLA clock; `None` when no
/// clock runs (no SLA, waiting on the customer, resolved). The same rule as
/// `inbox.sla_due_ms` in `migrations/inbox/0004_sla_mentions.sql`.
pub fn sla_due(c: &Conversation) -> Option<SlaDue> {
    let clock = c.sla.as_ref()?;
    if matches!(
        c.status,
        ConversationStatus::Pending | ConversationStatus::Resolved
    ) || clock.paused_since.is_some()
        || clock.resolved_at.is_some()
    {
        return None;
    }
    SlaMetric::ALL
        .iter()
        .filter_map(|m| clock.due(*m).map(|at| SlaDue { at, metric: *m }))
        .min_by_key(|d| d.at)
}

/// One line of a conversation list.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConversationRow {
    pub conversation: Conversation,
    /// The account's name, if the account is mirrored.
    pub account_name: Option<String>,
    /// The account's plan code, if its subscription and plan are mirrored.
    pub plan: Option<String>,
    /// When its SLA clock next falls due, if one runs.
    pub sla_due: Option<SlaDue>,
    /// Whether the account is a key account (from the mirrored account).
    pub key_account: bool,
    /// This desktop's edits the server has not confirmed are shown.
    pub pending: bool,
    cursor: Cursor,
}

impl ConversationRow {
    /// Pass as [`InboxQuery::after`] to get the page after this row.
    pub fn cursor(&self) -> Cursor {
        self.cursor.clone()
    }
}

/// One conversation as the conversation pane shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConversationView {
    pub conversation: Conversation,
    /// Oldest first.
    pub messages: Vec<Message>,
    /// `None` if the account is not mirrored.
    pub account: Option<AccountSummary>,
}

/// What the side panel shows about the customer, as far as it is mirrored.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AccountSummary {
    /// Name, region, key account, lifecycle, health score and MRR (those
    /// two are staff-internal fields, present because the viewer is staff).
    pub account: Account,
    /// The current subscription: the latest one not canceled, else the
    /// latest one.
    pub subscription: Option<Subscription>,
    pub plan: Option<Plan>,
    /// Seats assigned to users, against `subscription.seats` paid for.
    pub seats_used: u32,
    pub usage: Vec<UsageMeter>,
    /// Invoices open or overdue, oldest due first.
    pub unpaid_invoices: Vec<Invoice>,
    /// Requests not resolved or closed, newest first.
    pub open_requests: Vec<Request>,
    /// The account's customer success manager, if mirrored.
    pub csm_owner: Option<User>,
}

/// A page of conversations for `q`, in its sort order.
pub fn inbox(mirror: &Mirror, q: &InboxQuery) -> Result<Vec<ConversationRow>, MirrorError> {
    let conn = mirror.conn();
    let limit = q.limit.clamp(1, MAX_PAGE);
    let f = &q.filters;

    // Who and which teams the view and the filters leave; an empty set
    // means nothing can match.
    let mut assignees: Option<Vec<Option<String>>> = (!f.assignee.is_empty()).then(|| {
        f.assignee
            .iter()
            .map(|a| a.map(|u| u.to_string()))
            .collect()
    });
    let mut teams: Option<Vec<String>> =
        (!f.team.is_empty()).then(|| f.team.iter().map(ToString::to_string).collect());
    match q.view {
        View::All => {}
        View::Mine => assignees = Some(intersect(assignees, vec![Some(q.me.to_string())])),
        View::Unassigned => assignees = Some(intersect(assignees, vec![None])),
        View::MyTeams => teams = Some(intersect(teams, my_teams(mirror, q.me)?)),
    }
    if assignees.as_ref().is_some_and(Vec::is_empty) || teams.as_ref().is_some_and(Vec::is_empty) {
        return Ok(Vec::new());
    }
    if let Some(before) = f.sla_due_before {
        return sla_list(conn, q, before, assignees, teams, limit);
    }

    // The index to walk and the values of its leading column.
    let (index, lead, leads): (&str, Option<&str>, Vec<Sql>) = match (&assignees, &teams) {
        (Some(a), _) => (
            "inbox_by_assignee",
            Some("assignee_id"),
            a.iter()
                .map(|v| v.clone().map_or(Sql::Null, Sql::Text))
                .collect(),
        ),
        (None, Some(t)) => (
            "inbox_by_team",
            Some("team_id"),
            t.iter().cloned().map(Sql::Text).collect(),
        ),
        (None, None) => ("inbox_by_status", None, vec![Sql::Null]),
    };
    let statuses: Vec<&str> = if f.status.is_empty() {
        ConversationStatus::ALL.iter().map(|s| s.as_str()).collect()
    } else {
        f.status.iter().map(|s| s.as_str()).collect()
    };
    // Most urgent first; a conversation without a priority sorts last.
    let mut ranks: Vec<Option<i64>> = if f.priority.is_empty() {
        vec![Some(3), Some(2), Some(1), Some(0), None]
    } else {
        f.priority.iter().map(|p| Some(priority_rank(*p))).collect()
    };
    ranks.sort_by(|a, b| b.cmp(a));
    ranks.dedup();

    let desc = q.sort != Sort::UpdatedAsc;
    let mut sql = format!(
        "SELECT id, updated_ms, priority_rank FROM inbox INDEXED BY {index}
          WHERE status = ?1 AND priority_rank IS ?2"
    );
    let mut fixed: Vec<Sql> = Vec::new();
    let mut param = |sql: &mut String, clause: &str, v: Sql| {
        fixed.push(v);
        sql.push_str(&clause.replace("?#", &format!("?{}", fixed.len() + 3)));
    };
    if let Some(col) = lead {
        param(&mut sql, &format!(" AND {col} IS ?#"), Sql::Null);
    }
    if let (Some(t), Some("assignee_id")) = (&teams, lead) {
        param(
            &mut sql,
            " AND team_id IN (SELECT value FROM json_each(?#))",
            json_list(t.iter().map(String::as_str)),
        );
    }
    if !f.channel.is_empty() {
        param(
            &mut sql,
            " AND channel IN (SELECT value FROM json_each(?#))",
            json_list(f.channel.iter().map(|c| c.as_str())),
        );
    }
    if !f.product_area.is_empty() {
        param(
            &mut sql,
            " AND product_area IN (SELECT value FROM json_each(?#))",
            json_list(f.product_area.iter().map(String::as_str)),
        );
    }
    if !f.plan.is_empty() {
        param(
            &mut sql,
            " AND plan_code IN (SELECT value FROM json_each(?#))",
            json_list(f.plan.iter().map(String::as_str)),
        );
    }
    // ?3 is the page size; the keyset bound, when there is one, comes last.
    let bounded = format!(
        "{sql} AND (updated_ms, id) {} (?{}, ?{})",
        if desc { "<" } else { ">" },
        fixed.len() + 4,
        fixed.len() + 5
    );
    let order = if desc {
        " ORDER BY updated_ms DESC, id DESC LIMIT ?3"
    } else {
        " ORDER BY updated_ms ASC, id ASC LIMIT ?3"
    };
    let (sql, bounded) = (sql + order, bounded + order);

    let mut keys: Vec<Cursor> = Vec::new();
    for rank in &ranks {
        // Sorted by priority, a whole page from higher priorities ends it.
        if q.sort == Sort::PriorityDesc && keys.len() >= limit {
            break;
        }
        let bound = match (&q.after, q.sort) {
            (None, _) => None,
            (Some(c), Sort::PriorityDesc) => match rank_cmp(*rank, c.priority_rank) {
                Ordering::Greater => continue,
                Ordering::Equal => Some(c),
                Ordering::Less => None,
            },
            (Some(c), _) => Some(c),
        };
        for status in &statuses {
            for lead_value in &leads {
                let mut args: Vec<Sql> = vec![
                    Sql::Text((*status).to_owned()),
                    rank.map_or(Sql::Null, Sql::Integer),
                    Sql::Integer(limit as i64),
                ];
                args.extend(fixed.iter().cloned());
                if lead.is_some() {
                    args[3] = lead_value.clone();
                }
                let text = match bound {
                    Some(c) => {
                        args.push(Sql::Integer(c.updated_ms));
                        args.push(Sql::Text(c.id.clone()));
                        &bounded
                    }
                    None => &sql,
                };
                let mut stmt = conn.prepare_cached(text)?;
                let rows = stmt.query_map(params_from_iter(args), |r| {
                    Ok(Cursor {
                        id: r.get(0)?,
                        updated_ms: r.get(1)?,
                        priority_rank: r.get(2)?,
                        sla_due_ms: None,
                    })
                })?;
                for row in rows {
                    keys.push(row?);
                }
            }
        }
    }
    keys.sort_by(|a, b| sort_cmp(q.sort, a, b));
    keys.truncate(limit);
    keys.into_iter().map(|k| row(conn, k)).collect()
}

/// Opens a conversation: the record, its messages oldest first, and its
/// account's summary. `None` if the conversation is not mirrored.
pub fn conversation(
    mirror: &Mirror,
    id: ConversationId,
) -> Result<Option<ConversationView>, MirrorError> {
    let conn = mirror.conn();
    let Some(conversation) = record::<Conversation>(conn, Kind::Conversation, &id.to_string())?
    else {
        return Ok(None);
    };
    let mut stmt = conn.prepare_cached(
        "SELECT data FROM records INDEXED BY messages_by_conversation
          WHERE kind = 'message' AND conversation_id = ?1 ORDER BY id",
    )?;
    let messages = stmt
        .query_map([id.to_string()], |r| r.get::<_, String>(0))?
        .map(|data| parse::<Message>(Kind::Message, &data?))
        .collect::<Result<Vec<_>, _>>()?;
    let account = account_summary(conn, conversation.account_id)?;
    Ok(Some(ConversationView {
        conversation,
        messages,
        account,
    }))
}

// The lookups by account. Each repeats `kind <> 'message'`:
// `records_account` leaves the messages out (migration 0006) and SQLite
// uses a partial index only for a query that states its condition (a test
// below checks the plan).

/// The account's current subscription: same choice as the
/// `account_plan_refresh` trigger, so the plan shown here is the plan lists
/// and searches filter on.
const ACCOUNT_SUBSCRIPTION: &str = "SELECT data FROM records
  WHERE kind = 'subscription' AND kind <> 'message' AND account_id = ?1
  ORDER BY status = 'canceled', data ->> '$.current_period_end' DESC, id DESC LIMIT 1";

const ACCOUNT_SEATS: &str =
    "SELECT count(*) FROM records WHERE kind = 'seat' AND kind <> 'message' AND account_id = ?1";

const ACCOUNT_USAGE: &str = "SELECT data FROM records
  WHERE kind = 'usage_meter' AND kind <> 'message' AND account_id = ?1 ORDER BY id";

/// Every record of one kind (?1) of one account (?2), oldest first.
const ACCOUNT_RECORDS: &str = "SELECT data FROM records
  WHERE kind = ?1 AND kind <> 'message' AND account_id = ?2 ORDER BY id";

fn account_summary(
    conn: &Connection,
    id: AccountId,
) -> Result<Option<AccountSummary>, MirrorError> {
    let key = id.to_string();
    let Some(account) = record::<Account>(conn, Kind::Account, &key)? else {
        return Ok(None);
    };
    let subscription: Option<Subscription> = conn
        .prepare_cached(ACCOUNT_SUBSCRIPTION)?
        .query_row([&key], |r| r.get::<_, String>(0))
        .optional()?
        .map(|d| parse(Kind::Subscription, &d))
        .transpose()?;
    let plan = match &subscription {
        Some(s) => record::<Plan>(conn, Kind::Plan, &s.plan_id.to_string())?,
        None => None,
    };
    let seats_used: u32 = conn
        .prepare_cached(ACCOUNT_SEATS)?
        .query_row([&key], |r| r.get(0))?;
    let usage = conn
        .prepare_cached(ACCOUNT_USAGE)?
        .query_map([&key], |r| r.get::<_, String>(0))?
        .map(|d| parse::<UsageMeter>(Kind::UsageMeter, &d?))
        .collect::<Result<Vec<_>, _>>()?;
    let unpaid_invoices = list::<Invoice>(conn, Kind::Invoice, &key)?
        .into_iter()
        .filter(|i| matches!(i.status, InvoiceStatus::Open | InvoiceStatus::Overdue))
        .collect::<Vec<_>>();
    let mut open_requests = list::<Request>(conn, Kind::Request, &key)?
        .into_iter()
        .filter(|r| !matches!(r.status, RequestStatus::Resolved | RequestStatus::Closed))
        .collect::<Vec<_>>();
    open_requests.reverse();
    let csm_owner = match account.csm_owner_id {
        Some(u) => record::<User>(conn, Kind::User, &u.to_string())?,
        None => None,
    };
    Ok(Some(AccountSummary {
        account,
        subscription,
        plan,
        seats_used,
        usage,
        unpaid_invoices,
        open_requests,
        csm_owner,
    }))
}

/// Every record of `kind` of one account, oldest first (small per account:
/// invoices, requests).
fn list<T: Record>(conn: &Connection, kind: Kind, account: &str) -> Result<Vec<T>, MirrorError> {
    conn.prepare_cached(ACCOUNT_RECORDS)?
        .query_map([kind.as_str(), account], |r| r.get::<_, String>(0))?
        .map(|d| parse::<T>(kind, &d?))
        .collect()
}

/// The list row for one key found by [`inbox`].
fn row(conn: &Connection, key: Cursor) -> Result<ConversationRow, MirrorError> {
    let (data, plan, account_name, key_account): (
        String,
        Option<String>,
        Option<String>,
        Option<bool>,
    ) = conn
        .prepare_cached(
            "SELECT r.data, i.plan_code, a.data ->> '$.name', a.data ->> '$.key_account'
               FROM records r
               LEFT JOIN inbox i ON i.id = r.id
               LEFT JOIN records a ON a.kind = 'account' AND a.id = r.account_id
              WHERE r.kind = 'conversation' AND r.id = ?1",
        )?
        .query_row(params![key.id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?;
    let conversation: Conversation = parse(Kind::Conversation, &data)?;
    Ok(ConversationRow {
        sla_due: sla_due(&conversation),
        conversation,
        account_name,
        plan,
        key_account: key_account.unwrap_or(false),
        pending: false,
        cursor: key,
    })
}

/// The list row of one conversation (for rows a local edit brings into a
/// list), `None` if it is not mirrored.
pub(crate) fn row_of(
    conn: &Connection,
    id: ConversationId,
) -> Result<Option<ConversationRow>, MirrorError> {
    let key = conn
        .prepare_cached(
            "SELECT id, updated_ms, priority_rank, sla_due_ms FROM inbox WHERE id = ?1",
        )?
        .query_row([id.to_string()], |r| {
            Ok(Cursor {
                id: r.get(0)?,
                updated_ms: r.get(1)?,
                priority_rank: r.get(2)?,
                sla_due_ms: r.get(3)?,
            })
        })
        .optional()?;
    key.map(|k| row(conn, k)).transpose()
}

impl ConversationRow {
    /// Shows `conversation` (the row with local edits applied) in this row;
    /// the sort key moves with the priority, so a re-prioritised row sorts
    /// where it will be once the server confirms.
    pub(crate) fn overlay(&mut self, conversation: Conversation) {
        self.cursor.priority_rank = Some(priority_rank(conversation.priority));
        self.sla_due = sla_due(&conversation);
        self.cursor.sla_due_ms = self.sla_due.as_ref().map(|d| d.at.as_millisecond());
        self.conversation = conversation;
        self.pending = true;
    }
}

impl InboxQuery {
    /// Whether a conversation (as the person sees it, local edits included)
    /// belongs in this list: the view and every filter. `my_teams` are the
    /// signed-in member's teams. The same rules as [`inbox`]'s SQL, for rows
    /// whose local edits move them in or out of the list.
    pub fn admits(&self, c: &Conversation, plan: Option<&str>, my_teams: &[TeamId]) -> bool {
        let f = &self.filters;
        let view = match self.view {
            View::All => true,
            View::Mine => c.assignee_id == Some(self.me),
            View::Unassigned => c.assignee_id.is_none(),
            View::MyTeams => c.team_id.is_some_and(|t| my_teams.contains(&t)),
        };
        let any = |list_empty: bool, hit: bool| list_empty || hit;
        view && any(f.status.is_empty(), f.status.contains(&c.status))
            && any(f.priority.is_empty(), f.priority.contains(&c.priority))
            && any(f.channel.is_empty(), f.channel.contains(&c.channel))
            && any(
                f.plan.is_empty(),
                plan.is_some_and(|p| f.plan.iter().any(|x| x == p)),
            )
            && any(
                f.product_area.is_empty(),
                f.product_area.contains(&c.product_area),
            )
            && any(f.assignee.is_empty(), f.assignee.contains(&c.assignee_id))
            && any(
                f.team.is_empty(),
                c.team_id.is_some_and(|t| f.team.contains(&t)),
            )
            && f.sla_due_before
                .is_none_or(|before| sla_due(c).is_some_and(|d| d.at < before))
    }

    /// SLA-due lists are ordered by due time, others by the sort asked.
    fn cmp_keys(&self, a: &Cursor, b: &Cursor) -> Ordering {
        if self.filters.sla_due_before.is_some() {
            sla_cmp(a, b)
        } else {
            sort_cmp(self.sort, a, b)
        }
    }

    /// Orders rows as [`inbox`] does.
    pub(crate) fn order(&self, a: &ConversationRow, b: &ConversationRow) -> Ordering {
        self.cmp_keys(&a.cursor, &b.cursor)
    }

    /// Whether `row` sorts after the page's keyset bound (or there is none).
    pub(crate) fn after_bound(&self, row: &ConversationRow) -> bool {
        match &self.after {
            None => true,
            Some(c) => self.cmp_keys(c, &row.cursor) == Ordering::Less,
        }
    }
}

/// The teams of the staff member's mirrored user record, typed.
pub(crate) fn teams_of(mirror: &Mirror, me: UserId) -> Result<Vec<TeamId>, MirrorError> {
    Ok(my_teams(mirror, me)?
        .iter()
        .filter_map(|t| t.parse().ok())
        .collect())
}

/// One internal note mentioning the signed-in member.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Mention {
    pub message: Message,
    pub subject: Option<String>,
}

/// Internal notes that mention `me`, newest first: a walk of the
/// `mentions` index (written by triggers when a note is stored), never a
/// scan of the notes.
pub fn mentions(mirror: &Mirror, me: UserId, limit: usize) -> Result<Vec<Mention>, MirrorError> {
    let conn = mirror.conn();
    conn.prepare_cached(
        "SELECT m.data, c.data ->> '$.subject' FROM mentions x
           JOIN records m ON m.kind = 'message' AND m.id = x.message_id
           LEFT JOIN records c ON c.kind = 'conversation' AND c.id = m.conversation_id
          WHERE x.user_id = ?1
          ORDER BY x.message_id DESC LIMIT ?2",
    )?
    .query_map(
        params![me.to_string(), limit.clamp(1, MAX_PAGE) as i64],
        |r| Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?)),
    )?
    .map(|row| {
        let (data, subject) = row?;
        Ok(Mention {
            message: parse(Kind::Message, &data)?,
            subject,
        })
    })
    .collect()
}

/// Alerts addressed to `me` on key accounts (escalations, SLA warnings and
/// breaches, key-account notifications), newest first, unread first.
pub fn key_account_alerts(
    mirror: &Mirror,
    me: UserId,
    limit: usize,
) -> Result<Vec<Alert>, MirrorError> {
    let conn = mirror.conn();
    let mut alerts = conn
        .prepare_cached(
            "SELECT al.data FROM records al
               LEFT JOIN records a ON a.kind = 'account' AND a.id = al.account_id
              WHERE al.kind = 'alert' AND al.data ->> '$.recipient_id' = ?1
                AND (a.data ->> '$.key_account' = 1 OR a.id IS NULL)
              ORDER BY al.id DESC LIMIT ?2",
        )?
        .query_map(
            params![me.to_string(), limit.clamp(1, MAX_PAGE) as i64],
            |r| r.get::<_, String>(0),
        )?
        .map(|d| parse::<Alert>(Kind::Alert, &d?))
        .collect::<Result<Vec<_>, _>>()?;
    alerts.sort_by_key(|a| a.read);
    Ok(alerts)
}

/// The teams of the staff member's mirrored user record.
fn my_teams(mirror: &Mirror, me: UserId) -> Result<Vec<String>, MirrorError> {
    let user = mirror.get(Kind::User, me.0)?;
    Ok(user
        .as_ref()
        .and_then(|u| u.get("team_ids"))
        .and_then(Value::as_array)
        .map(|ids| {
            ids.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default())
}

fn record<T: Record>(conn: &Connection, kind: Kind, id: &str) -> Result<Option<T>, MirrorError> {
    conn.prepare_cached("SELECT data FROM records WHERE kind = ?1 AND id = ?2")?
        .query_row([kind.as_str(), id], |r| r.get::<_, String>(0))
        .optional()?
        .map(|d| parse(kind, &d))
        .transpose()
}

/// Rows are the model's records as the server shaped them for staff; one
/// that does not parse is reported, not skipped, so a list never silently
/// loses a conversation.
fn parse<T: Record>(kind: Kind, data: &str) -> Result<T, MirrorError> {
    serde_json::from_str(data).map_err(|_| MirrorError::Corrupt(kind.as_str()))
}

/// `wanted ∩ allowed`, or `allowed` when nothing narrower was asked.
fn intersect<T: PartialEq>(wanted: Option<Vec<T>>, allowed: Vec<T>) -> Vec<T> {
    match wanted {
        None => allowed,
        Some(w) => allowed.into_iter().filter(|a| w.contains(a)).collect(),
    }
}

fn json_list<'a>(values: impl Iterator<Item = &'a str>) -> Sql {
    Sql::Text(Value::Array(values.map(|v| Value::String(v.to_owned())).collect()).to_string())
}

/// Same numbers as `inbox.priority_rank`.
fn priority_rank(p: Priority) -> i64 {
    match p {
        Priority::Urgent => 3,
        Priority::High => 2,
        Priority::Normal => 1,
        Priority::Low => 0,
    }
}

/// Priority order with "no priority" below every priority.
fn rank_cmp(a: Option<i64>, b: Option<i64>) -> Ordering {
    a.unwrap_or(-1).cmp(&b.unwrap_or(-1))
}

/// Soonest due first; rows without a due (only possible for a row a local
/// edit changed) last.
fn sla_cmp(a: &Cursor, b: &Cursor) -> Ordering {
    a.sla_due_ms
        .unwrap_or(i64::MAX)
        .cmp(&b.sla_due_ms.unwrap_or(i64::MAX))
        .then_with(|| a.id.cmp(&b.id))
}

/// An SLA-due list: one walk of `inbox_by_sla_due` in due order, up to
/// `before`, with the view and the other filters checked on the index
/// entries. Breached conversations (due already passed) come first.
fn sla_list(
    conn: &Connection,
    q: &InboxQuery,
    before: jiff::Timestamp,
    assignees: Option<Vec<Option<String>>>,
    teams: Option<Vec<String>>,
    limit: usize,
) -> Result<Vec<ConversationRow>, MirrorError> {
    let f = &q.filters;
    let mut sql = String::from(
        "SELECT id, updated_ms, priority_rank, sla_due_ms FROM inbox INDEXED BY inbox_by_sla_due
          WHERE sla_due_ms IS NOT NULL AND sla_due_ms < ?1",
    );
    let mut args: Vec<Sql> = vec![Sql::Integer(before.as_millisecond())];
    let mut list = |sql: &mut String, col: &str, values: Vec<String>| {
        args.push(Sql::Text(Value::from(values).to_string()));
        sql.push_str(&format!(
            " AND {col} IN (SELECT value FROM json_each(?{}))",
            args.len()
        ));
    };
    if !f.status.is_empty() {
        list(
            &mut sql,
            "status",
            f.status.iter().map(|s| s.as_str().to_owned()).collect(),
        );
    }
    if !f.channel.is_empty() {
        list(
            &mut sql,
            "channel",
            f.channel.iter().map(|c| c.as_str().to_owned()).collect(),
        );
    }
    if !f.product_area.is_empty() {
        list(&mut sql, "product_area", f.product_area.clone());
    }
    if !f.plan.is_empty() {
        list(&mut sql, "plan_code", f.plan.clone());
    }
    if !f.priority.is_empty() {
        let ranks: Vec<String> = f
            .priority
            .iter()
            .map(|p| priority_rank(*p).to_string())
            .collect();
        sql.push_str(&format!(" AND priority_rank IN ({})", ranks.join(", ")));
    }
    if let Some(t) = teams {
        list(&mut sql, "team_id", t);
    }
    if let Some(a) = assignees {
        let unassigned = a.iter().any(Option::is_none);
        let named: Vec<String> = a.into_iter().flatten().collect();
        args.push(Sql::Text(Value::from(named).to_string()));
        sql.push_str(&format!(
            " AND (assignee_id IN (SELECT value FROM json_each(?{})){})",
            args.len(),
            if unassigned {
                " OR assignee_id IS NULL"
            } else {
                ""
            }
        ));
    }
    if let Some(c) = &q.after {
        args.push(Sql::Integer(c.sla_due_ms.unwrap_or(i64::MAX)));
        args.push(Sql::Text(c.id.clone()));
        sql.push_str(&format!(
            " AND (sla_due_ms, id) > (?{}, ?{})",
            args.len() - 1,
            args.len()
        ));
    }
    args.push(Sql::Integer(limit as i64));
    sql.push_str(&format!(" ORDER BY sla_due_ms, id LIMIT ?{}", args.len()));
    let keys = conn
        .prepare_cached(&sql)?
        .query_map(params_from_iter(args), |r| {
            Ok(Cursor {
                id: r.get(0)?,
                updated_ms: r.get(1)?,
                priority_rank: r.get(2)?,
                sla_due_ms: r.get(3)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    keys.into_iter().map(|k| row(conn, k)).collect()
}

fn sort_cmp(sort: Sort, a: &Cursor, b: &Cursor) -> Ordering {
    let newest_first = b
        .updated_ms
        .cmp(&a.updated_ms)
        .then_with(|| b.id.cmp(&a.id));
    match sort {
        Sort::UpdatedDesc => newest_first,
        Sort::UpdatedAsc => newest_first.reverse(),
        Sort::PriorityDesc => rank_cmp(b.priority_rank, a.priority_rank).then(newest_first),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seat_count_uses_the_account_index() {
        // A plan that stopped using `records_account` would still answer
        // right, by scanning every seat: only the plan shows it. The ordered
        // lookups (ACCOUNT_SUBSCRIPTION, ACCOUNT_USAGE, ACCOUNT_RECORDS) are
        // left out: for their ORDER BY the planner reads the kind's rows by
        // primary key, with the full index of version 5 as with this one (a
        // few rows per account, no statistics kept).
        let mirror = Mirror::open_in_memory().unwrap();
        let plan: Vec<String> = mirror
            .conn()
            .prepare(&format!("EXPLAIN QUERY PLAN {ACCOUNT_SEATS}"))
            .unwrap()
            .query_map(["an account"], |r| r.get(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(
            plan.iter().any(|step| step.contains("records_account")),
            "the seat count should search records_account, plan {plan:?}"
        );
    }
}
