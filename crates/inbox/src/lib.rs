//! The Portico Inbox engine, UI-agnostic: today the local mirror of the
//! server's records and the pull side of sync; the outbox, live client and
//! offline search build on it.

pub mod bootstrap;
pub mod engine;
pub mod live;
pub mod mirror;
pub mod outbox;
pub mod pull;
pub mod push;
pub mod query;
pub mod search;

pub use engine::{Engine, EngineConfig, EngineError, Event};
pub use mirror::{Mirror, MirrorError};
