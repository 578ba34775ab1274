//! The Portico Inbox engine, UI-agnostic: today the local mirror of the
//! server's records and the pull side of sync; the outbox, live client and
//! offline search build on it.

pub mod attachments;
pub mod bootstrap;
pub mod desk;
pub mod drafts;
pub mod engine;
pub mod held;
pub mod live;
pub mod mirror;
pub mod notify;
pub mod outbox;
pub mod pull;
pub mod push;
pub mod query;
pub mod reads;
pub mod replies;
pub mod search;
pub mod secrets;
pub mod session;

pub use desk::{Command, Desk, DeskConfig, DeskError, DeskEvent};
pub use engine::{Engine, EngineConfig, EngineError, Event};
pub use mirror::{Mirror, MirrorError};
