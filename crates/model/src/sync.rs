//! The sync protocol's write side and bootstrap: what the desktop queues
//! offline and pushes, what the server answers, and the snapshot pages a new
//! client starts from. Pull is [`crate::wire::ChangesPage`].
//!
//! Idempotency: every mutation carries `(client_id, id)` where `id` grows by
//! one per mutation on that client. The server applies each pair at most once
//! and answers a replay with the outcome it stored the first time, so a push
//! retried after a lost answer never applies anything twice.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::ids::{ConversationId, DraftId, MessageId, UserId};
use crate::records::{ConversationStatus, Kind, Priority};
use crate::role::Viewer;

/// What decides which rows and fields a viewer gets: role, account, plan,
/// and for staff their conversation access and teams. A client bootstraps
/// under one scope and sends it with every pull; when it differs (a customer
/// changed plan, a user's role changed, an agent moved teams) the server
/// asks for a resync, so rows no longer visible are dropped and new ones
/// loaded.
pub fn scope_key(viewer: &Viewer) -> String {
    let mut key = format!(
        "{}:{}:{}",
        viewer.role.as_str(),
        viewer
            .account_id
            .map(|a| a.to_string())
            .unwrap_or_else(|| "-".into()),
        viewer.plan_code.as_deref().unwrap_or("-")
    );
    if viewer.is_staff() && viewer.access == crate::role::ConversationAccess::Teams {
        let mut teams: Vec<String> = viewer.team_ids.iter().map(|t| t.to_string()).collect();
        teams.sort();
        key.push_str(":teams=");
        key.push_str(&teams.join(","));
    }
    key
}

/// Protocol version; a server or client seeing another refuses with a clear error.
pub const SYNC_PROTOCOL: u32 = 1;

/// Most mutations in one push.
pub const MAX_PUSH: usize = 100;

/// One change an agent made, possibly offline.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum MutationOp {
    /// Assign (or with `None`, unassign) a conversation. Last writer wins.
    Assign {
        conversation_id: ConversationId,
        assignee_id: Option<UserId>,
    },
    /// A guarded status transition: applied only if the conversation is still
    /// at `if_version` (when given); otherwise rejected, visibly.
    SetStatus {
        conversation_id: ConversationId,
        status: ConversationStatus,
        #[serde(default)]
        snoozed_until: Option<Timestamp>,
        #[serde(default)]
        if_version: Option<u64>,
    },
    /// Last writer wins.
    SetPriority {
        conversation_id: ConversationId,
        priority: Priority,
    },
    /// Set semantics: adding a present tag or removing an absent one is a no-op.
    AddTags {
        conversation_id: ConversationId,
        tags: Vec<String>,
    },
    RemoveTags {
        conversation_id: ConversationId,
        tags: Vec<String>,
    },
    /// A reply to the customer; `message_id` is minted by the client, so a
    /// retried send never duplicates the message.
    Reply {
        conversation_id: ConversationId,
        message_id: MessageId,
        body: String,
    },
    /// An internal note, optionally mentioning staff.
    Note {
        conversation_id: ConversationId,
        message_id: MessageId,
        body: String,
        #[serde(default)]
        mentions: Vec<UserId>,
    },
    /// Approve an AI draft of `conversation_id`: `body` (the draft's text,
    /// or the reviewer's edit of it) is sent as the reviewer's reply with
    /// the client-minted `message_id`, and only the proposed actions whose
    /// indexes are in `run_actions` run, each authorized for the reviewer.
    /// Guarded by `if_version` (the draft version reviewed).
    ApproveDraft {
        conversation_id: ConversationId,
        draft_id: DraftId,
        message_id: MessageId,
        body: String,
        #[serde(default)]
        run_actions: Vec<u32>,
        #[serde(default)]
        if_version: Option<u64>,
    },
    /// Reject an AI draft; nothing is sent. The reason is audited.
    RejectDraft {
        conversation_id: ConversationId,
        draft_id: DraftId,
        reason: String,
        #[serde(default)]
        if_version: Option<u64>,
    },
}

impl MutationOp {
    pub fn conversation_id(&self) -> ConversationId {
        match self {
            MutationOp::Assign {
                conversation_id, ..
            }
            | MutationOp::SetStatus {
                conversation_id, ..
            }
            | MutationOp::SetPriority {
                conversation_id, ..
            }
            | MutationOp::AddTags {
                conversation_id, ..
            }
            | MutationOp::RemoveTags {
                conversation_id, ..
            }
            | MutationOp::Reply {
                conversation_id, ..
            }
            | MutationOp::Note {
                conversation_id, ..
            }
            | MutationOp::ApproveDraft {
                conversation_id, ..
            }
            | MutationOp::RejectDraft {
                conversation_id, ..
            } => *conversation_id,
        }
    }
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mutation {
    /// Monotonic per client, starting at 1.
    pub id: u64,
    pub op: MutationOp,
}

/// `POST /v1/sync/push`.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushRequest {
    pub protocol: u32,
    /// The installation pushing (a UUID minted once per local database).
    pub client_id: uuid::Uuid,
    /// In mutation-id order.
    pub mutations: Vec<Mutation>,
}

/// What became of one mutation. Stored with the mutation, so a replay gets
/// the same answer.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    Applied,
    /// Refused; `code` is the stable error code (e.g. `version_conflict`,
    /// `forbidden`, `not_found`), `message` says why, for the person.
    Rejected {
        code: String,
        message: String,
    },
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MutationResult {
    pub id: u64,
    #[serde(flatten)]
    pub outcome: Outcome,
    /// True when this answer is a replay of an earlier push.
    pub duplicate: bool,
}

/// `POST /v1/sync/push` answer, one result per mutation in order.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushResponse {
    pub protocol: u32,
    pub results: Vec<MutationResult>,
    /// The highest mutation id of this client the server has processed.
    pub last_mutation_id: u64,
}

/// `GET /v1/sync/bootstrap?kind=&after_id=&limit=[&snapshot=]`: one keyset
/// page of one kind, redacted for the viewer. The first call (no snapshot)
/// pins `snapshot`, the change seq to pull from once every kind is loaded;
/// rows newer than it are harmless because applying keeps the newest version.
///
/// `R` is how a row is held: a JSON map by default; a reader that stores
/// rows as they came (the desktop) or a writer that shapes them as text (the
/// server) may use `serde_json`'s raw values instead. The JSON is the same.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BootstrapPage<R = Map<String, Value>> {
    pub protocol: u32,
    pub snapshot: i64,
    pub kind: Kind,
    /// The viewer's [`scope_key`]: send it back as `scope` on every pull.
    #[serde(default)]
    pub scope: String,
    pub rows: Vec<R>,
    /// Pass as `after_id` for the next page of this kind; absent when done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_after_id: Option<String>,
}

/// The kinds a staff desktop mirrors, in bootstrap order (parents first).
pub const BOOTSTRAP_KINDS: [Kind; 18] = [
    Kind::Plan,
    Kind::Team,
    Kind::User,
    Kind::Account,
    Kind::Subscription,
    Kind::Seat,
    Kind::UsageMeter,
    Kind::Invoice,
    Kind::Request,
    Kind::Conversation,
    Kind::Message,
    Kind::Article,
    Kind::RoutingRule,
    Kind::SlaPolicy,
    Kind::Automation,
    Kind::Alert,
    // AI drafts waiting for review (staff only, like alerts).
    Kind::Draft,
    // Saved replies for the composer (team ones and the viewer's own).
    Kind::SavedReply,
];
