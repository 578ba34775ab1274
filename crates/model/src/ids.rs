//! Typed record ids.
//!
//! Every id is a UUIDv7 (time-ordered), so a primary-key index is also a
//! creation-order index. A distinct type per record keeps an `AccountId` from
//! being passed where a `ConversationId` is meant. Minting takes the time and
//! the random bits from the caller: this crate never reads a clock or an RNG.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Builds a UUIDv7 from a millisecond timestamp and 10 caller-supplied random
/// bytes (seeded RNG in the demo seeder, OS RNG in the server).
pub fn uuid_v7(unix_millis: u64, random: [u8; 10]) -> Uuid {
    uuid::Builder::from_unix_timestamp_millis(unix_millis, &random).into_uuid()
}

macro_rules! id_type {
    ($($(#[$meta:meta])* $name:ident;)*) => {$(
        $(#[$meta])*
        #[cfg_attr(feature = "ts", derive(ts_rs::TS))]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map($name)
            }
        }

        impl From<Uuid> for $name {
            fn from(u: Uuid) -> Self {
                $name(u)
            }
        }
    )*};
}

id_type! {
    AccountId;
    WorkspaceId;
    PlanId;
    SubscriptionId;
    SeatId;
    InvoiceId;
    UsageMeterId;
    UsageRecordId;
    UserId;
    TeamId;
    RequestId;
    ConversationId;
    MessageId;
    ArticleId;
    ReleaseNoteId;
    CommunityPostId;
    OnboardingPathId;
    OnboardingProgressId;
    AuditEventId;
    RoutingRuleId;
    SlaPolicyId;
    AutomationId;
    AlertId;
    DraftId;
    ContentGapId;
    SavedReplyId;
}
