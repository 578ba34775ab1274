//! Frames of the live WebSocket (`/v1/live`): JSON text frames, tagged by
//! `type`. The socket carries the same redacted changes as the sync feed
//! (tagged with their `seq`) plus ephemeral signals: typing, who is viewing or
//! replying (collision), read receipts. It is never the only path for data:
//! a client that sees a gap in `seq` pulls over HTTP.

use serde::{Deserialize, Serialize};

use crate::ids::{ConversationId, MessageId, UserId};
use crate::records::Message;
use crate::wire::Change;

/// Live protocol version, sent in `hello`. Version 2 added `message` and
/// `withdrawn`.
pub const LIVE_PROTOCOL: u32 = 2;

/// Largest frame a client may send.
pub const MAX_FRAME_BYTES: usize = 64 * 1024;

/// Close codes, so clients can tell why they were dropped.
pub mod close {
    /// Not signed in, or the token expired or was revoked.
    pub const UNAUTHENTICATED: u16 = 4001;
    /// A frame that is not JSON of a known type.
    pub const MALFORMED: u16 = 4000;
    /// A frame larger than [`super::MAX_FRAME_BYTES`] (RFC 6455's "message too big").
    pub const TOO_BIG: u16 = 1009;
    /// More frames than the rate limit allows.
    pub const RATE_LIMITED: u16 = 4029;
    /// The client read too slowly and its queue filled up: reconnect, then pull.
    pub const TOO_SLOW: u16 = 4008;
    /// The server is shutting down: reconnect with backoff.
    pub const GOING_AWAY: u16 = 1001;
    /// What this user may see changed (teams, conversation access, role,
    /// plan): reconnect, and pull so the server can ask for a resync.
    pub const SCOPE_CHANGED: u16 = 4003;
}

/// What a client sends.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientFrame {
    /// Start receiving ephemeral signals (typing, presence) for a conversation.
    Subscribe {
        conversation_id: ConversationId,
    },
    Unsubscribe {
        conversation_id: ConversationId,
    },
    /// Send the changes after `after_seq` that were missed while away.
    Resume {
        after_seq: i64,
    },
    /// "I am looking at this conversation" (`replying`: and writing a reply).
    Viewing {
        conversation_id: ConversationId,
        replying: bool,
    },
    /// Left the conversation.
    Left {
        conversation_id: ConversationId,
    },
    Typing {
        conversation_id: ConversationId,
        typing: bool,
    },
    Read {
        conversation_id: ConversationId,
        message_id: MessageId,
    },
    /// Send a chat message (customer or agent). `message_id` is minted by
    /// the client, so a resend after a drop never duplicates. With
    /// `after_message_id`, an agent's reply is refused with `newer_reply`
    /// if someone else answered since (Help Scout's traffic cop); `force`
    /// sends anyway.
    Send {
        conversation_id: ConversationId,
        message_id: MessageId,
        body: String,
        #[serde(default)]
        after_message_id: Option<MessageId>,
        #[serde(default)]
        force: bool,
    },
    Ping,
}

/// Someone looking at a conversation.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Viewer {
    pub user_id: UserId,
    pub name: String,
    pub replying: bool,
}

/// What the server sends.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    /// First frame: who you are and the newest `seq` at connection time.
    Hello {
        protocol: u32,
        user_id: UserId,
        seq: i64,
    },
    /// A chat message as it arrives, before it is stored, so the people in
    /// the conversation read it at once: show it as sending. Its `change`
    /// (same id) follows once it is committed, or `withdrawn` if it could
    /// not be stored. A `message` whose id is already shown (a resend) is
    /// ignored. Offered to staff who see every conversation and to the
    /// conversation's other subscribers, redacted like the stored message.
    Message {
        message: Box<Message>,
    },
    /// The `message` with this id was refused (the sender got an `error`):
    /// take it off the screen.
    Withdrawn {
        conversation_id: ConversationId,
        message_id: MessageId,
    },
    /// A committed change, redacted for this viewer.
    Change {
        change: Change,
    },
    /// Sent after a `resume` has replayed what was missed. `complete: false`
    /// means too much was missed: pull over HTTP.
    Resumed {
        seq: i64,
        complete: bool,
    },
    Typing {
        conversation_id: ConversationId,
        user_id: UserId,
        name: String,
        typing: bool,
    },
    /// Everyone else viewing the conversation now (collision detection).
    Presence {
        conversation_id: ConversationId,
        viewers: Vec<Viewer>,
    },
    Read {
        conversation_id: ConversationId,
        message_id: MessageId,
        user_id: UserId,
    },
    /// Changes after `after_seq` were skipped because this client's queue
    /// was full (a burst): pull them over HTTP. The socket goes on.
    Lagged {
        after_seq: i64,
    },
    /// A `send` was stored (the message also arrives as a change).
    Ack {
        message_id: MessageId,
    },
    /// Something a client asked for was refused; the socket stays open.
    Error {
        code: String,
        message: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message_id: Option<MessageId>,
    },
    Pong,
}
