//! Wire types of the `/v1` API: pages, errors, the change feed and request
//! bodies. Inputs reject unknown fields, so a typo is an error, not a no-op.

use jiff::Timestamp;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::billing::Timing;
use crate::ids::*;
use crate::records::*;
use crate::role::Role;
use crate::validate::{Invalid, check_email, check_len, check_nonempty, check_tag};

/// API version reported by `/v1/health` and carried by sync pages.
pub const API_VERSION: u32 = 1;

/// A page of a list, with an opaque cursor for the next one.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// The body of every error response.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// Stable, machine-readable: clients branch on this, never on `message`.
    pub code: String,
    /// For people: what went wrong and what to do.
    pub message: String,
    /// The offending input field, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeOp {
    Upsert,
    Delete,
}

/// One committed write as the viewer may see it.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Change {
    pub seq: i64,
    pub kind: Kind,
    pub id: uuid::Uuid,
    pub op: ChangeOp,
    pub version: u64,
    /// The redacted row for upserts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row: Option<Map<String, Value>>,
}

/// `GET /v1/sync/changes` answer.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChangesPage {
    /// The sync protocol version (see `sync::SYNC_PROTOCOL`).
    #[serde(default)]
    pub protocol: u32,
    pub changes: Vec<Change>,
    /// Pass as `after` next time (the last seq examined, visible or not).
    pub next_after: i64,
    pub has_more: bool,
    /// With `?client_id=`: the highest mutation id of that client the server
    /// has processed, so the client drops confirmed mutations from its outbox.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_mutation_id: Option<u64>,
    /// Set when the client must start over with a bootstrap: its cursor is
    /// older than the retained history or its scope changed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub resync: bool,
}

/// Treats a present `null` as `Some(None)` and an absent field as `None`,
/// so a patch can clear a value (`"assignee_id": null`) or leave it alone.
pub fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// An admin changes a staff member's teams or conversation access
/// (`PATCH /v1/users/{id}/access`). Either changes what that person may see:
/// their desktop resyncs on its next pull.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaffAccessPatch {
    /// The full list of teams (replaces the current one).
    pub team_ids: Option<Vec<TeamId>>,
    pub conversation_access: Option<crate::role::ConversationAccess>,
    /// Guard: apply only if the user is still at this version.
    pub if_version: Option<u64>,
}

impl StaffAccessPatch {
    pub fn validate(&self) -> Result<(), Invalid> {
        if self.team_ids.is_none() && self.conversation_access.is_none() {
            return Err(Invalid::new(
                "body",
                "nothing to change: give team_ids or conversation_access",
            ));
        }
        if self.team_ids.as_ref().is_some_and(|t| t.len() > 50) {
            return Err(Invalid::new("team_ids", "at most 50 teams"));
        }
        Ok(())
    }
}

/// Staff triage of a conversation.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConversationPatch {
    pub status: Option<ConversationStatus>,
    #[serde(default, deserialize_with = "nullable")]
    pub snoozed_until: Option<Option<Timestamp>>,
    pub priority: Option<Priority>,
    #[serde(default, deserialize_with = "nullable")]
    pub assignee_id: Option<Option<UserId>>,
    #[serde(default, deserialize_with = "nullable")]
    pub team_id: Option<Option<TeamId>>,
    #[serde(default)]
    pub add_tags: Vec<String>,
    #[serde(default)]
    pub remove_tags: Vec<String>,
    /// Guard: apply only if the record is still at this version.
    pub if_version: Option<u64>,
}

impl ConversationPatch {
    pub fn validate(&self) -> Result<(), Invalid> {
        for t in self.add_tags.iter().chain(&self.remove_tags) {
            check_tag(t)?;
        }
        if self.status == Some(ConversationStatus::Snoozed)
            && !matches!(self.snoozed_until, Some(Some(_)))
        {
            return Err(Invalid::new(
                "snoozed_until",
                "give snoozed_until when snoozing",
            ));
        }
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.status.is_none()
            && self.snoozed_until.is_none()
            && self.priority.is_none()
            && self.assignee_id.is_none()
            && self.team_id.is_none()
            && self.add_tags.is_empty()
            && self.remove_tags.is_empty()
    }
}

/// A new message. `id` may be minted by the client so a retried send never
/// duplicates; `kind` defaults to the sender's side (customer or agent).
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewMessage {
    pub id: Option<MessageId>,
    #[serde(default)]
    pub internal: bool,
    pub body: String,
    #[serde(default)]
    pub mentions: Vec<UserId>,
}

impl NewMessage {
    pub fn validate(&self) -> Result<(), Invalid> {
        check_nonempty("body", &self.body)?;
        check_len("body", &self.body, 64 * 1024)?;
        if self.id.is_some_and(|id| id.0.get_version_num() != 7) {
            return Err(Invalid::new(
                "id",
                "client-minted message ids must be UUIDv7 (time-ordered)",
            ));
        }
        if self.mentions.len() > 50 {
            return Err(Invalid::new("mentions", "at most 50 mentions"));
        }
        Ok(())
    }
}

/// A customer (or staff on their behalf) opens a conversation.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewConversation {
    /// Required for staff; customers always open on their own account.
    pub account_id: Option<AccountId>,
    #[serde(default = "default_channel")]
    pub channel: Channel,
    pub subject: String,
    pub body: String,
    #[serde(default)]
    pub product_area: String,
}

fn default_channel() -> Channel {
    Channel::Chat
}

impl NewConversation {
    pub fn validate(&self) -> Result<(), Invalid> {
        check_nonempty("subject", &self.subject)?;
        check_len("subject", &self.subject, 300)?;
        check_nonempty("body", &self.body)?;
        check_len("body", &self.body, 64 * 1024)?;
        check_len("product_area", &self.product_area, 100)
    }
}

/// A customer opens a support, bug or feature request.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewRequest {
    pub account_id: Option<AccountId>,
    pub kind: RequestKind,
    pub title: String,
    #[serde(default)]
    pub body: String,
    #[serde(default)]
    pub product_area: String,
    #[serde(default = "default_priority")]
    pub priority: Priority,
}

fn default_priority() -> Priority {
    Priority::Normal
}

impl NewRequest {
    pub fn validate(&self) -> Result<(), Invalid> {
        check_nonempty("title", &self.title)?;
        check_len("title", &self.title, 300)?;
        check_len("body", &self.body, 100_000)?;
        check_len("product_area", &self.product_area, 100)
    }
}

/// Staff update of a request.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestPatch {
    pub status: Option<RequestStatus>,
    pub priority: Option<Priority>,
    #[serde(default, deserialize_with = "nullable")]
    pub assignee_id: Option<Option<UserId>>,
    #[serde(default, deserialize_with = "nullable")]
    pub team_id: Option<Option<TeamId>>,
    pub internal_note: Option<String>,
    pub if_version: Option<u64>,
}

/// Account fields. Customer admins may change the profile; staff may also
/// change the account-management fields.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountPatch {
    pub name: Option<String>,
    pub language: Option<String>,
    pub key_account: Option<bool>,
    pub lifecycle_stage: Option<LifecycleStage>,
    #[serde(default, deserialize_with = "nullable")]
    pub csm_owner_id: Option<Option<UserId>>,
    pub health_score: Option<u8>,
    pub notes: Option<String>,
    /// Single sign-on settings (`null` turns SSO off); needs a plan with `sso`.
    #[serde(default, deserialize_with = "nullable")]
    pub sso: Option<Option<SsoSettings>>,
    pub if_version: Option<u64>,
}

impl AccountPatch {
    pub fn touches_staff_fields(&self) -> bool {
        self.key_account.is_some()
            || self.lifecycle_stage.is_some()
            || self.csm_owner_id.is_some()
            || self.health_score.is_some()
            || self.notes.is_some()
    }
}

/// Preview or confirm a change of plan and/or seats.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionChange {
    /// The new plan; omit to keep the current one.
    pub plan_id: Option<PlanId>,
    /// The new seat count; omit to keep the current one.
    pub seats: Option<u32>,
    /// Only for plan downgrades: `period_end` (default) or `now`.
    pub timing: Option<Timing>,
    /// On confirm: the `proration_at` of the preview being accepted, so the
    /// charge equals the preview to the cent. Must be recent.
    pub proration_at: Option<Timestamp>,
}

/// Invite a user to the account.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InviteUser {
    pub email: String,
    pub name: String,
    pub role: Role,
}

impl InviteUser {
    pub fn validate(&self) -> Result<(), Invalid> {
        check_email("email", &self.email)?;
        check_nonempty("name", &self.name)?;
        check_len("name", &self.name, 200)?;
        if !self.role.is_customer() {
            return Err(Invalid::new(
                "role",
                "must be customer_admin or customer_member",
            ));
        }
        Ok(())
    }
}

/// Change a customer user's role.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    pub role: Role,
}

/// New or edited article (staff).
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArticleInput {
    pub slug: String,
    pub title: String,
    #[serde(default)]
    pub summary: String,
    pub body: String,
    #[serde(default)]
    pub product_area: String,
    #[serde(default)]
    pub plans: Vec<String>,
    #[serde(default)]
    pub versions: Vec<String>,
    #[serde(default = "default_locale")]
    pub locale: String,
    pub audience: Audience,
    /// The article this one translates.
    #[serde(default)]
    pub translation_of: Option<ArticleId>,
    /// Moving to `approved` or `archived` needs a lead or admin.
    pub state: Option<ArticleState>,
    pub if_version: Option<u64>,
}

fn default_locale() -> String {
    "en".into()
}

/// Password sign-in.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Login {
    pub email: String,
    pub password: String,
}

/// The OAuth token endpoint's answer (RFC 6749 §5.1).
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: i64,
    pub refresh_token: String,
}

/// `GET /v1/me`: who the token belongs to.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Me {
    pub user: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<Map<String, Value>>,
}

/// `POST /v1/auth/login` and `GET /v1/auth/session`: who is signed in and,
/// for a cookie session, the CSRF token its changes must send in
/// `X-CSRF-Token` (the same value as the `portico_csrf` cookie).
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionInfo {
    pub user: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<Map<String, Value>>,
    /// Absent for Bearer tokens (they need no CSRF token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csrf_token: Option<String>,
}

/// Usage of one meter against its plan limit.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UsageLine {
    pub meter: String,
    pub name: String,
    pub unit: String,
    pub used: u64,
    pub limit: Option<u64>,
    /// `used / limit` in percent, rounded down; absent when unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<u64>,
    pub over_limit: bool,
}

impl From<UsageMeter> for UsageLine {
    fn from(m: UsageMeter) -> Self {
        UsageLine {
            percent: m
                .limit
                .filter(|l| *l > 0)
                .map(|l| m.used.saturating_mul(100) / l),
            over_limit: m.limit.is_some_and(|l| m.used > l),
            meter: m.meter,
            name: m.name,
            unit: m.unit,
            used: m.used,
            limit: m.limit,
        }
    }
}

/// Seats paid for against seats held.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SeatSummary {
    pub seats: u32,
    pub assigned: u32,
    pub available: u32,
    pub min_seats: u32,
    pub max_seats: u32,
}

/// A routing rule as written by a lead or admin.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutingRuleInput {
    pub name: String,
    pub position: u32,
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    pub stop: bool,
    #[serde(default)]
    pub conditions: Vec<crate::routing::Condition>,
    pub actions: Vec<crate::routing::RuleAction>,
    pub if_version: Option<u64>,
}

fn yes() -> bool {
    true
}

/// An SLA policy as written by a lead or admin.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlaPolicyInput {
    pub name: String,
    pub position: u32,
    #[serde(default)]
    pub plans: Vec<String>,
    #[serde(default)]
    pub priorities: Vec<Priority>,
    pub targets: crate::sla::SlaTargets,
    pub if_version: Option<u64>,
}

/// An automation as written by a lead or admin. `webhook_secret` (for its
/// webhook actions) is stored apart from the record and never read back.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutomationInput {
    pub name: String,
    pub event: AutomationEvent,
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    pub conditions: Vec<crate::routing::Condition>,
    pub actions: Vec<crate::routing::RuleAction>,
    pub webhook_secret: Option<String>,
    pub if_version: Option<u64>,
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertPatch {
    pub read: bool,
}

/// A staff member's availability for auto-assignment.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Presence {
    pub online: bool,
    #[serde(default)]
    pub away: bool,
}

/// Consumption reported by the product for one meter.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsageReport {
    pub meter: String,
    pub quantity: u64,
}

/// `POST /v1/saved-replies`.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSavedReply {
    pub title: String,
    pub body: String,
    /// Only for me (any staff member), or for the team (leads and admins).
    #[serde(default)]
    pub personal: bool,
}

/// `PATCH /v1/saved-replies/{id}`: the fields given change.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedReplyPatch {
    pub title: Option<String>,
    pub body: Option<String>,
    pub if_version: Option<u64>,
}
