//! Portico's shared vocabulary: records, ids, roles, the field-visibility
//! policy, billing math and the wire types of the API.
//!
//! Pure by design: no I/O and no clock. Functions that depend on time take
//! the instant as an argument, so the server, the desktop engine and tests
//! all get the same answer for the same inputs.

pub mod assign;
pub mod billing;
pub mod email;
mod field_filter;
pub mod ids;
pub mod live;
pub mod policy;
pub mod records;
pub mod role;
pub mod routing;
pub mod sla;
pub mod sync;
pub mod validate;
pub mod wire;

pub use ids::*;
pub use policy::{
    Action, Denied, Visibility, Visible, authorize, in_conversation_scope, redact, redact_row,
    redact_text, redact_text_json,
};
pub use records::*;
pub use role::{ConversationAccess, Role, Viewer};
pub use validate::Invalid;
