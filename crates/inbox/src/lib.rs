//! The Portico Inbox engine, UI-agnostic: today the local mirror of the
//! server's records and the pull side of sync; the outbox, live client and
//! offline search build on it.

pub mod mirror;
pub mod pull;

pub use mirror::{Mirror, MirrorError};
