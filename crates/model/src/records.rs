//! The records Portico holds, each field tagged with its visibility class.
//!
//! A record is declared once with [`record!`]: the struct, its serde shape and
//! the visibility of every field come from the same lines, so a new field
//! cannot be added without saying who may see it. `id`, `version`,
//! `created_at` and `updated_at` are added to every record.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::ids::*;
use crate::policy::Visibility;
use crate::role::Role;
use crate::validate::{Invalid, check_len, check_nonempty};

/// What kind of record a row is; also its table name and its name on the wire.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Account,
    Workspace,
    Plan,
    Subscription,
    Seat,
    Invoice,
    UsageMeter,
    UsageRecord,
    User,
    Team,
    Request,
    Conversation,
    Message,
    Article,
    ReleaseNote,
    CommunityPost,
    OnboardingPath,
    OnboardingProgress,
    AuditEvent,
    RoutingRule,
    SlaPolicy,
    Automation,
    Alert,
    Draft,
    ContentGap,
    SavedReply,
}

impl Kind {
    pub const ALL: [Kind; 26] = [
        Kind::Account,
        Kind::Workspace,
        Kind::Plan,
        Kind::Subscription,
        Kind::Seat,
        Kind::Invoice,
        Kind::UsageMeter,
        Kind::UsageRecord,
        Kind::User,
        Kind::Team,
        Kind::Request,
        Kind::Conversation,
        Kind::Message,
        Kind::Article,
        Kind::ReleaseNote,
        Kind::CommunityPost,
        Kind::OnboardingPath,
        Kind::OnboardingProgress,
        Kind::AuditEvent,
        Kind::RoutingRule,
        Kind::SlaPolicy,
        Kind::Automation,
        Kind::Alert,
        Kind::Draft,
        Kind::ContentGap,
        Kind::SavedReply,
    ];

    /// The SQL table holding this kind (see `migrations/portal`).
    pub fn table(self) -> &'static str {
        match self {
            Kind::Account => "accounts",
            Kind::Workspace => "workspaces",
            Kind::Plan => "plans",
            Kind::Subscription => "subscriptions",
            Kind::Seat => "seats",
            Kind::Invoice => "invoices",
            Kind::UsageMeter => "usage_meters",
            Kind::UsageRecord => "usage_records",
            Kind::User => "users",
            Kind::Team => "teams",
            Kind::Request => "requests",
            Kind::Conversation => "conversations",
            Kind::Message => "messages",
            Kind::Article => "articles",
            Kind::ReleaseNote => "release_notes",
            Kind::CommunityPost => "community_posts",
            Kind::OnboardingPath => "onboarding_paths",
            Kind::OnboardingProgress => "onboarding_progress",
            Kind::AuditEvent => "audit_events",
            Kind::RoutingRule => "routing_rules",
            Kind::SlaPolicy => "sla_policies",
            Kind::Automation => "automations",
            Kind::Alert => "alerts",
            Kind::Draft => "drafts",
            Kind::ContentGap => "content_gaps",
            Kind::SavedReply => "saved_replies",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Account => "account",
            Kind::Workspace => "workspace",
            Kind::Plan => "plan",
            Kind::Subscription => "subscription",
            Kind::Seat => "seat",
            Kind::Invoice => "invoice",
            Kind::UsageMeter => "usage_meter",
            Kind::UsageRecord => "usage_record",
            Kind::User => "user",
            Kind::Team => "team",
            Kind::Request => "request",
            Kind::Conversation => "conversation",
            Kind::Message => "message",
            Kind::Article => "article",
            Kind::ReleaseNote => "release_note",
            Kind::CommunityPost => "community_post",
            Kind::OnboardingPath => "onboarding_path",
            Kind::OnboardingProgress => "onboarding_progress",
            Kind::AuditEvent => "audit_event",
            Kind::RoutingRule => "routing_rule",
            Kind::SlaPolicy => "sla_policy",
            Kind::Automation => "automation",
            Kind::Alert => "alert",
            Kind::Draft => "draft",
            Kind::ContentGap => "content_gap",
            Kind::SavedReply => "saved_reply",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// Behaviour shared by every record; implemented by [`record!`].
pub trait Record: Serialize + serde::de::DeserializeOwned + Clone + Send + 'static {
    const KIND: Kind;
    /// Every serialized field with its visibility class. The policy removes
    /// any field not listed here (fail closed).
    const FIELDS: &'static [(&'static str, Visibility)];
    fn uuid(&self) -> uuid::Uuid;
    /// The customer account the row belongs to, if any (global rows: plans,
    /// articles, teams, staff users).
    fn account_id(&self) -> Option<AccountId>;
    fn version(&self) -> u64;
    /// Stamps a write: the store sets the version and times, never the caller.
    fn stamp(&mut self, version: u64, at: Timestamp);
    /// Field rules that hold for every stored copy of the record.
    fn validate(&self) -> Result<(), Invalid>;
}

macro_rules! record {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            id: $id:ty,
            account: |$r:ident| $account:expr,
            $( $(#[$fmeta:meta])* $class:ident $field:ident : $ty:ty, )*
        }
        validate |$v:ident| $validate:block
    ) => {
        $(#[$meta])*
        #[cfg_attr(feature = "ts", derive(ts_rs::TS))]
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        pub struct $name {
            pub id: $id,
            $( $(#[$fmeta])* pub $field: $ty, )*
            pub version: u64,
            pub created_at: Timestamp,
            pub updated_at: Timestamp,
        }

        impl Record for $name {
            const KIND: Kind = Kind::$name;
            const FIELDS: &'static [(&'static str, Visibility)] = &[
                ("id", Visibility::Public),
                $( (stringify!($field), Visibility::$class), )*
                ("version", Visibility::Public),
                ("created_at", Visibility::Public),
                ("updated_at", Visibility::Public),
            ];
            fn uuid(&self) -> uuid::Uuid {
                self.id.0
            }
            fn account_id(&self) -> Option<AccountId> {
                let $r = self;
                $account
            }
            fn version(&self) -> u64 {
                self.version
            }
            fn stamp(&mut self, version: u64, at: Timestamp) {
                if version == 1 {
                    self.created_at = at;
                }
                self.version = version;
                self.updated_at = at;
            }
            fn validate(&self) -> Result<(), Invalid> {
                let $v = self;
                $validate
            }
        }
    };
}

macro_rules! string_enum {
    ($(#[$meta:meta])* pub enum $name:ident { $($variant:ident = $s:literal,)* }) => {
        $(#[$meta])*
        #[cfg_attr(feature = "ts", derive(ts_rs::TS))]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant,)* }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $s,)* }
            }
        }
    };
}

string_enum! {
    pub enum LifecycleStage { Trial = "trial", Onboarding = "onboarding", Active = "active", AtRisk = "at_risk", Churned = "churned", }
}
impl LifecycleStage {
    /// The stage as customers are shown it: whether an account is at risk
    /// is the CSM's judgement, so it shows as `active`.
    pub fn as_customers_see(self) -> LifecycleStage {
        match self {
            LifecycleStage::AtRisk => LifecycleStage::Active,
            other => other,
        }
    }
}
string_enum! {
    pub enum BillingInterval { Month = "month", Year = "year", }
}
string_enum! {
    pub enum SubscriptionStatus { Trialing = "trialing", Active = "active", PastDue = "past_due", Canceled = "canceled", }
}
string_enum! {
    pub enum InvoiceStatus { Draft = "draft", Open = "open", Paid = "paid", Overdue = "overdue", Void = "void", }
}
string_enum! {
    pub enum UserStatus { Invited = "invited", Active = "active", Disabled = "disabled", }
}
string_enum! {
    pub enum RequestKind { Support = "support", Bug = "bug", Feature = "feature", }
}
string_enum! {
    pub enum RequestStatus { New = "new", Open = "open", InProgress = "in_progress", WaitingOnCustomer = "waiting_on_customer", Planned = "planned", Resolved = "resolved", Closed = "closed", }
}
string_enum! {
    pub enum Priority { Low = "low", Normal = "normal", High = "high", Urgent = "urgent", }
}
string_enum! {
    pub enum Channel { Chat = "chat", Email = "email", Video = "video", }
}
string_enum! {
    pub enum ConversationStatus { Open = "open", Pending = "pending", Snoozed = "snoozed", Resolved = "resolved", }
}
string_enum! {
    pub enum MessageKind { Customer = "customer", Agent = "agent", InternalNote = "internal_note", System = "system", }
}
string_enum! {
    pub enum Audience { Public = "public", Customers = "customers", Internal = "internal", }
}
string_enum! {
    pub enum ArticleState { Draft = "draft", InReview = "in_review", Approved = "approved", Archived = "archived", }
}
string_enum! {
    pub enum DraftState { Pending = "pending", Approved = "approved", Rejected = "rejected", }
}
string_enum! {
    pub enum ActionStatus { Proposed = "proposed", Done = "done", Declined = "declined", }
}
string_enum! {
    /// A real event that completes onboarding steps by itself.
    pub enum OnboardingEvent {
        UserInvited = "user_invited",
        SsoConfigured = "sso_configured",
        IntegrationConnected = "integration_connected",
        RequestSubmitted = "request_submitted",
    }
}
string_enum! {
    pub enum CompletedBy { Event = "event", Manual = "manual", }
}
string_enum! {
    pub enum InvoiceLineKind { Subscription = "subscription", Proration = "proration", Usage = "usage", Credit = "credit", }
}

/// A usage meter's allowance on a plan.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeterLimit {
    /// Meter key, e.g. `api_calls`.
    pub meter: String,
    pub name: String,
    pub unit: String,
    /// Included per billing period; `None` means unlimited.
    pub included: Option<u64>,
}

/// A plan change scheduled for the end of the current period.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingChange {
    pub plan_id: PlanId,
    pub seats: u32,
    pub effective_at: Timestamp,
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceLine {
    pub kind: InvoiceLineKind,
    pub description: String,
    pub quantity: u32,
    /// Minor units per unit; negative for credits.
    pub unit_amount: i64,
    /// Minor units for the line; negative for credits.
    pub amount: i64,
    pub period_start: Timestamp,
    pub period_end: Timestamp,
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OnboardingStep {
    pub key: String,
    pub title: String,
    pub description: String,
    /// The plan feature this step teaches, if any.
    pub feature: Option<String>,
    /// The real event that completes the step by itself; `None`: by hand.
    #[serde(default)]
    pub completes_on: Option<OnboardingEvent>,
}

/// A step of an onboarding path an account has completed, how and when.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepCompletion {
    pub key: String,
    pub how: CompletedBy,
    pub at: Timestamp,
    /// Who did it (the person whose action was the event, or who ticked it).
    #[serde(default)]
    pub by: Option<UserId>,
}

/// Single sign-on settings of an account (OpenID Connect).
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SsoSettings {
    /// The identity provider's issuer URL (https).
    pub issuer: String,
    pub client_id: String,
    /// Everyone of the account's domain must sign in through the provider.
    #[serde(default)]
    pub enforced: bool,
}

impl SsoSettings {
    pub fn validate(&self) -> Result<(), Invalid> {
        check_nonempty("sso.client_id", &self.client_id)?;
        check_len("sso.client_id", &self.client_id, 200)?;
        check_len("sso.issuer", &self.issuer, 500)?;
        if !self.issuer.starts_with("https://") || self.issuer.len() <= "https://".len() {
            return Err(Invalid::new(
                "sso.issuer",
                "must be the provider's https:// issuer URL",
            ));
        }
        Ok(())
    }
}

/// A file attached to a request (bytes are served by the attachment endpoint).
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentRef {
    pub id: uuid::Uuid,
    pub name: String,
    pub content_type: String,
    pub size: u64,
    pub uploaded_by_name: String,
    pub uploaded_at: Timestamp,
}

record! {
    /// A customer company.
    pub struct Account {
        id: AccountId,
        account: |r| Some(r.id),
        Customer name: String,
        Customer domain: String,
        Customer region: String,
        /// BCP 47 tag, e.g. `en` or `de-DE`.
        Customer language: String,
        /// The account's customer success manager (staff user).
        Customer csm_owner_id: Option<UserId>,
        /// The product version the account runs (release notes up to it
        /// are theirs); empty when unknown.
        #[serde(default)]
        Customer product_version: String,
        /// Single sign-on, set up by the account's administrator.
        #[serde(default)]
        CustomerAdmin sso: Option<SsoSettings>,
        Staff key_account: bool,
        Staff lifecycle_stage: LifecycleStage,
        /// 0–100, computed by CSM tooling.
        Internal health_score: u8,
        /// Monthly recurring revenue in minor units.
        Internal mrr: i64,
        Internal notes: String,
    }
    validate |a| {
        check_nonempty("name", &a.name)?;
        check_len("name", &a.name, 200)?;
        check_len("domain", &a.domain, 253)?;
        check_len("notes", &a.notes, 20_000)?;
        check_len("product_version", &a.product_version, 50)?;
        if let Some(s) = &a.sso {
            s.validate()?;
        }
        if a.health_score > 100 {
            return Err(Invalid::new("health_score", "must be between 0 and 100"));
        }
        Ok(())
    }
}

record! {
    /// A customer's workspace inside the product (an account may have several).
    pub struct Workspace {
        id: WorkspaceId,
        account: |r| Some(r.account_id),
        Customer account_id: AccountId,
        Customer name: String,
        Customer slug: String,
    }
    validate |w| {
        check_nonempty("name", &w.name)?;
        check_len("name", &w.name, 200)
    }
}

record! {
    /// A price tier with its entitlements and limits.
    pub struct Plan {
        id: PlanId,
        account: |_r| None,
        /// Stable code, e.g. `starter`.
        Public code: String,
        Public name: String,
        /// Ordering of tiers: higher is more capable.
        Public tier: u8,
        Public currency: String,
        Public interval: BillingInterval,
        /// Price per seat per interval, in minor units.
        Public seat_price: i64,
        Public min_seats: u32,
        Public max_seats: u32,
        /// Feature flags this plan grants, e.g. `sso`, `audit_log`.
        Public features: Vec<String>,
        Public meters: Vec<MeterLimit>,
    }
    validate |p| {
        check_nonempty("code", &p.code)?;
        if p.min_seats == 0 || p.min_seats > p.max_seats {
            return Err(Invalid::new("min_seats", "must be at least 1 and at most max_seats"));
        }
        if p.seat_price < 0 {
            return Err(Invalid::new("seat_price", "must not be negative"));
        }
        Ok(())
    }
}

record! {
    /// An account's subscription to a plan.
    pub struct Subscription {
        id: SubscriptionId,
        account: |r| Some(r.account_id),
        Customer account_id: AccountId,
        Customer plan_id: PlanId,
        Customer status: SubscriptionStatus,
        /// Seats paid for.
        Customer seats: u32,
        Customer current_period_start: Timestamp,
        Customer current_period_end: Timestamp,
        Customer pending_change: Option<PendingChange>,
        /// Tax rate in basis points (2000 = 20 %).
        CustomerAdmin tax_rate_bps: u32,
        /// Credit carried to the next invoice, minor units (>= 0).
        CustomerAdmin credit_balance: i64,
        CustomerAdmin billing_email: String,
    }
    validate |s| {
        if s.current_period_end <= s.current_period_start {
            return Err(Invalid::new("current_period_end", "must be after current_period_start"));
        }
        if s.seats == 0 {
            return Err(Invalid::new("seats", "must be at least 1"));
        }
        if s.credit_balance < 0 {
            return Err(Invalid::new("credit_balance", "must not be negative"));
        }
        Ok(())
    }
}

record! {
    /// A licence held by one customer user.
    pub struct Seat {
        id: SeatId,
        account: |r| Some(r.account_id),
        Customer account_id: AccountId,
        Customer user_id: UserId,
        Customer assigned_at: Timestamp,
    }
    validate |_s| { Ok(()) }
}

record! {
    /// A bill: lines, totals, tax and status. Visible to customer admins.
    pub struct Invoice {
        id: InvoiceId,
        account: |r| Some(r.account_id),
        CustomerAdmin account_id: AccountId,
        CustomerAdmin number: String,
        CustomerAdmin status: InvoiceStatus,
        CustomerAdmin currency: String,
        CustomerAdmin period_start: Timestamp,
        CustomerAdmin period_end: Timestamp,
        CustomerAdmin issued_at: Timestamp,
        CustomerAdmin due_at: Timestamp,
        CustomerAdmin paid_at: Option<Timestamp>,
        CustomerAdmin lines: Vec<InvoiceLine>,
        CustomerAdmin subtotal: i64,
        CustomerAdmin tax_rate_bps: u32,
        CustomerAdmin tax: i64,
        CustomerAdmin total: i64,
        CustomerAdmin amount_due: i64,
    }
    validate |i| {
        let sum: i64 = i.lines.iter().map(|l| l.amount).sum();
        if sum != i.subtotal {
            return Err(Invalid::new("subtotal", "must equal the sum of the lines"));
        }
        if i.subtotal + i.tax != i.total {
            return Err(Invalid::new("total", "must equal subtotal plus tax"));
        }
        Ok(())
    }
}

record! {
    /// Consumption of one meter in the current period against its limit.
    pub struct UsageMeter {
        id: UsageMeterId,
        account: |r| Some(r.account_id),
        Customer account_id: AccountId,
        Customer meter: String,
        Customer name: String,
        Customer unit: String,
        Customer period_start: Timestamp,
        Customer period_end: Timestamp,
        Customer used: u64,
        /// `None` means unlimited.
        Customer limit: Option<u64>,
    }
    validate |m| { check_nonempty("meter", &m.meter) }
}

record! {
    /// One reported usage event.
    pub struct UsageRecord {
        id: UsageRecordId,
        account: |r| Some(r.account_id),
        Customer account_id: AccountId,
        Customer meter: String,
        Customer quantity: u64,
        Customer recorded_at: Timestamp,
    }
    validate |u| { check_nonempty("meter", &u.meter) }
}

record! {
    /// A person: a customer's user (with `account_id`) or staff (without).
    pub struct User {
        id: UserId,
        account: |r| r.account_id,
        Customer account_id: Option<AccountId>,
        Customer email: String,
        Public name: String,
        Customer role: Role,
        Customer status: UserStatus,
        /// The language the user reads the portal and articles in (BCP 47,
        /// e.g. `fr`); `None`: the browser's.
        #[serde(default)]
        Customer locale: Option<String>,
        Staff team_ids: Vec<TeamId>,
        /// Concurrent open conversations an agent takes.
        Staff capacity: u32,
        Staff away: bool,
        Staff last_seen_at: Option<Timestamp>,
        /// Signed in and reachable now (set by presence); with `away` false,
        /// the agent takes auto-assigned work.
        #[serde(default)]
        Staff online: bool,
        /// Which conversations a staff member works: all, or their teams'
        /// (and those assigned to them). Decides what every exit shows them.
        #[serde(default)]
        Staff conversation_access: crate::role::ConversationAccess,
    }
    validate |u| {
        crate::validate::check_email("email", &u.email)?;
        check_nonempty("name", &u.name)?;
        check_len("name", &u.name, 200)?;
        if u.role.is_staff() != u.account_id.is_none() {
            return Err(Invalid::new("role", "staff users have no account; customer users need one"));
        }
        Ok(())
    }
}

record! {
    /// A group of staff working one queue.
    pub struct Team {
        id: TeamId,
        account: |_r| None,
        Staff name: String,
        Staff description: String,
        /// Opening hours and holidays in the team's IANA time zone; SLA
        /// clocks of the team's conversations run only inside them.
        Staff business_hours: crate::sla::BusinessHours,
        Staff member_ids: Vec<UserId>,
        /// How new conversations are handed out.
        #[serde(default)]
        Staff assignment: crate::assign::Strategy,
        /// The last agent auto-assigned (round-robin continues after them).
        #[serde(default)]
        Staff last_assigned_id: Option<UserId>,
    }
    validate |t| {
        check_nonempty("name", &t.name)?;
        t.business_hours.validate()
    }
}

record! {
    /// Something a customer asked for that the company tracks: support, bug or feature.
    pub struct Request {
        id: RequestId,
        account: |r| Some(r.account_id),
        Customer account_id: AccountId,
        Customer kind: RequestKind,
        Customer title: String,
        Customer body: String,
        Customer status: RequestStatus,
        Customer priority: Priority,
        Customer product_area: String,
        Customer requester_id: UserId,
        Customer conversation_id: Option<ConversationId>,
        Staff assignee_id: Option<UserId>,
        Staff team_id: Option<TeamId>,
        Internal internal_note: String,
        /// Customer votes on a feature request (one per user).
        #[serde(default)]
        Customer votes: u32,
        #[serde(default)]
        Customer attachments: Vec<AttachmentRef>,
    }
    validate |r| {
        check_nonempty("title", &r.title)?;
        check_len("title", &r.title, 300)?;
        check_len("body", &r.body, 100_000)
    }
}

record! {
    /// A thread with a customer over one channel.
    pub struct Conversation {
        id: ConversationId,
        account: |r| Some(r.account_id),
        Customer account_id: AccountId,
        Customer channel: Channel,
        Customer subject: String,
        Customer status: ConversationStatus,
        Customer requester_id: UserId,
        Customer product_area: String,
        Customer request_id: Option<RequestId>,
        Customer last_message_at: Timestamp,
        Customer message_count: u32,
        Staff snoozed_until: Option<Timestamp>,
        Staff priority: Priority,
        Staff assignee_id: Option<UserId>,
        Staff team_id: Option<TeamId>,
        Staff tags: Vec<String>,
        /// The SLA policy the clock runs under.
        #[serde(default)]
        Staff sla_policy_id: Option<SlaPolicyId>,
        /// Due times and what has fired; stored so the desktop shows it offline.
        #[serde(default)]
        Staff sla: Option<crate::sla::SlaClock>,
        /// When the SLA clock next needs a look (warning or breach), for the sweep.
        #[serde(default)]
        Staff sla_next_check: Option<Timestamp>,
    }
    validate |c| {
        check_len("subject", &c.subject, 300)?;
        if c.status == ConversationStatus::Snoozed && c.snoozed_until.is_none() {
            return Err(Invalid::new("snoozed_until", "a snoozed conversation needs snoozed_until"));
        }
        crate::validate::check_tags(&c.tags)
    }
}

record! {
    /// One message in a conversation. Append-only; the id may be minted by the client.
    pub struct Message {
        id: MessageId,
        account: |r| Some(r.account_id),
        Customer conversation_id: ConversationId,
        Customer account_id: AccountId,
        Customer kind: MessageKind,
        Customer author_id: Option<UserId>,
        Customer author_name: String,
        Customer body: String,
        /// Staff mentioned in an internal note. Defaulted so the row as a
        /// customer gets it (without staff fields) still parses.
        #[serde(default)]
        Staff mentions: Vec<UserId>,
        /// The email this message came in as or went out as (email channel).
        #[serde(default)]
        Customer email: Option<crate::email::MessageEmail>,
        /// How sending an agent's email reply went; failures show here.
        #[serde(default)]
        Staff delivery: Option<crate::email::Delivery>,
    }
    validate |m| {
        check_nonempty("body", &m.body)?;
        check_len("body", &m.body, 64 * 1024)
    }
}

record! {
    /// A knowledge-base article.
    pub struct Article {
        id: ArticleId,
        account: |_r| None,
        Public slug: String,
        Public title: String,
        Public summary: String,
        Public body: String,
        Public product_area: String,
        /// Plan codes the article applies to; empty means every plan.
        Public plans: Vec<String>,
        /// Product versions the article applies to; empty means every version.
        Public versions: Vec<String>,
        Public locale: String,
        Public audience: Audience,
        Staff state: ArticleState,
        Staff author_id: Option<UserId>,
        /// A proposed edit of this (approved) article: approving the
        /// revision copies its text onto the original and archives it.
        #[serde(default)]
        Staff revises: Option<ArticleId>,
        /// The resolved conversation this article was drafted from.
        #[serde(default)]
        Staff from_conversation_id: Option<ConversationId>,
        /// The article this one translates (its `locale` differs); readers
        /// get the translation in their language, the original otherwise.
        #[serde(default)]
        Public translation_of: Option<ArticleId>,
    }
    validate |a| {
        check_nonempty("title", &a.title)?;
        check_len("title", &a.title, 300)?;
        check_nonempty("slug", &a.slug)?;
        check_len("body", &a.body, 200_000)
    }
}

record! {
    /// A product release note.
    pub struct ReleaseNote {
        id: ReleaseNoteId,
        account: |_r| None,
        Public title: String,
        Public body: String,
        Public version_tag: String,
        Public product_area: String,
        Public plans: Vec<String>,
        Public published: bool,
    }
    validate |n| { check_nonempty("title", &n.title) }
}

record! {
    /// A question or answer in the customer community.
    pub struct CommunityPost {
        id: CommunityPostId,
        account: |r| r.account_id,
        /// Which company asked stays with staff; other customers see the
        /// post only. `None` for posts written by staff.
        Staff account_id: Option<AccountId>,
        #[serde(default)]
        Staff author_id: Option<UserId>,
        Public author_name: String,
        Public title: String,
        Public body: String,
        Public product_area: String,
        Public parent_id: Option<CommunityPostId>,
        Public accepted: bool,
        Public votes: u32,
        /// Written by Portico's staff.
        #[serde(default)]
        Public by_staff: bool,
        /// An answer staff checked and vouch for.
        #[serde(default)]
        Public verified: bool,
    }
    validate |p| {
        check_nonempty("body", &p.body)?;
        check_len("body", &p.body, 20_000)
    }
}

record! {
    /// A guided onboarding path for accounts on some plans.
    pub struct OnboardingPath {
        id: OnboardingPathId,
        account: |_r| None,
        Public name: String,
        Public plans: Vec<String>,
        /// Lifecycle stages the path is for; empty means every stage.
        #[serde(default)]
        Public stages: Vec<LifecycleStage>,
        Public steps: Vec<OnboardingStep>,
    }
    validate |p| { check_nonempty("name", &p.name) }
}

record! {
    /// An account's progress along an onboarding path.
    pub struct OnboardingProgress {
        id: OnboardingProgressId,
        account: |r| Some(r.account_id),
        Customer account_id: AccountId,
        Customer path_id: OnboardingPathId,
        /// Keys of the steps done (kept with `steps` for older readers).
        Customer completed_steps: Vec<String>,
        /// Each step done: how (event or by hand), when and by whom.
        #[serde(default)]
        Customer steps: Vec<StepCompletion>,
    }
    validate |_p| { Ok(()) }
}

record! {
    /// Who changed what, when, and through which rule or request.
    pub struct AuditEvent {
        id: AuditEventId,
        account: |r| r.account_id,
        Staff account_id: Option<AccountId>,
        Staff actor_id: Option<UserId>,
        Staff actor_role: Option<Role>,
        /// Dotted action name, e.g. `subscription.seats_changed`.
        Staff action: String,
        Staff entity: Kind,
        Staff entity_id: uuid::Uuid,
        Staff detail: serde_json::Value,
    }
    validate |e| { check_nonempty("action", &e.action) }
}

string_enum! {
    /// What an automation listens for.
    pub enum AutomationEvent {
        ConversationCreated = "conversation_created",
        ConversationUpdated = "conversation_updated",
        RequestCreated = "request_created",
        SlaWarning = "sla_warning",
        SlaBreach = "sla_breach",
        SeatsThreshold = "seats_threshold",
        UsageThreshold = "usage_threshold",
    }
}

string_enum! {
    pub enum AlertKind {
        Notification = "notification",
        Escalation = "escalation",
        SlaWarning = "sla_warning",
        SlaBreach = "sla_breach",
        Threshold = "threshold",
    }
}

record! {
    /// A routing rule: evaluated in `position` order when a conversation
    /// arrives; all conditions must hold; actions route, prioritise, tag,
    /// apply an SLA, notify or escalate.
    pub struct RoutingRule {
        id: RoutingRuleId,
        account: |_r| None,
        Staff name: String,
        Staff position: u32,
        Staff enabled: bool,
        /// Stop evaluating later rules when this one matched.
        Staff stop: bool,
        Staff conditions: Vec<crate::routing::Condition>,
        Staff actions: Vec<crate::routing::RuleAction>,
    }
    validate |r| {
        check_nonempty("name", &r.name)?;
        check_len("name", &r.name, 200)
    }
}

record! {
    /// Response and resolution targets for conversations of some plans and
    /// priorities; the first matching policy by `position` applies.
    pub struct SlaPolicy {
        id: SlaPolicyId,
        account: |_r| None,
        Staff name: String,
        Staff position: u32,
        /// Plan codes; empty means every plan.
        Staff plans: Vec<String>,
        /// Priorities; empty means every priority.
        Staff priorities: Vec<Priority>,
        Staff targets: crate::sla::SlaTargets,
    }
    validate |p| {
        check_nonempty("name", &p.name)?;
        p.targets.validate()
    }
}

record! {
    /// Something done automatically when an event happens and conditions hold.
    pub struct Automation {
        id: AutomationId,
        account: |_r| None,
        Staff name: String,
        Staff event: AutomationEvent,
        Staff enabled: bool,
        Staff conditions: Vec<crate::routing::Condition>,
        Staff actions: Vec<crate::routing::RuleAction>,
    }
    validate |a| { check_nonempty("name", &a.name) }
}

record! {
    /// A heads-up for one staff member (key-account request, SLA warning,
    /// escalation); synced to the desktop, which raises a notification.
    pub struct Alert {
        id: AlertId,
        account: |r| r.account_id,
        Staff account_id: Option<AccountId>,
        Staff recipient_id: UserId,
        Staff kind: AlertKind,
        Staff title: String,
        Staff body: String,
        Staff conversation_id: Option<ConversationId>,
        Staff request_id: Option<RequestId>,
        /// The rule or automation that raised it.
        Staff source: String,
        Staff read: bool,
    }
    validate |a| { check_nonempty("title", &a.title) }
}

/// Something an AI draft suggests doing for the customer. It runs only when
/// a person approving the draft picks it and has the role for it.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ActionProposal {
    /// Raise the subscription's seats to `seats`.
    AddSeats { seats: u32 },
    /// Move to another plan.
    ChangePlan { plan_id: PlanId, plan_code: String },
    /// Open a request for the account.
    OpenRequest { kind: RequestKind, title: String },
    /// Tell the customer about a feature their plan has that they have not
    /// set up yet (the reply says it; nothing else changes).
    PointToEntitlement { feature: String },
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProposedAction {
    pub action: ActionProposal,
    /// Why it is proposed, for the reviewer.
    pub reason: String,
    pub status: ActionStatus,
    /// What running it did (e.g. the request opened), or why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
}

/// A passage a draft cites.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DraftSource {
    /// The `[n]` marker in the draft's text.
    pub n: u32,
    pub kind: Kind,
    pub id: uuid::Uuid,
    pub title: String,
}

record! {
    /// A reply written for an incoming customer message by a composer, for a
    /// person to approve (it is sent then), edit or reject. Staff only.
    pub struct Draft {
        id: DraftId,
        account: |r| Some(r.account_id),
        Staff account_id: AccountId,
        Staff conversation_id: ConversationId,
        /// The customer message it answers.
        Staff message_id: MessageId,
        Staff body: String,
        Staff sources: Vec<DraftSource>,
        /// Keys of the account facts it used (e.g. `seats`, `usage:api_calls`).
        Staff facts: Vec<String>,
        Staff actions: Vec<ProposedAction>,
        /// `extractive` or `chat_completions`.
        Staff composer: String,
        Staff note: Option<String>,
        /// 0–100; below the threshold the draft is marked `escalated`.
        Staff confidence: u8,
        Staff escalated: bool,
        Staff state: DraftState,
        Staff reviewer_id: Option<UserId>,
        /// The agent message sent when the draft was approved.
        Staff sent_message_id: Option<MessageId>,
    }
    validate |d| {
        check_len("body", &d.body, 64 * 1024)?;
        if d.confidence > 100 {
            return Err(Invalid::new("confidence", "must be between 0 and 100"));
        }
        if d.state == DraftState::Approved && d.sent_message_id.is_none() {
            return Err(Invalid::new("sent_message_id", "an approved draft has been sent"));
        }
        Ok(())
    }
}

record! {
    /// A question the AI could not answer with confidence, grouped by its
    /// words, with how often it was asked. Staff only.
    pub struct ContentGap {
        id: ContentGapId,
        account: |_r| None,
        /// The first wording asked.
        Staff question: String,
        /// The question's analysed words, sorted: questions with the same
        /// words are the same gap.
        Staff key: String,
        /// Up to five wordings seen.
        Staff examples: Vec<String>,
        Staff count: u32,
        Staff product_area: String,
        /// Plans of the accounts that asked.
        Staff plans: Vec<String>,
        Staff last_asked_at: Timestamp,
        /// Set when an article covering it was written.
        Staff resolved: bool,
    }
    validate |g| {
        check_nonempty("question", &g.question)?;
        check_len("question", &g.question, 2_000)?;
        check_nonempty("key", &g.key)
    }
}

record! {
    /// A saved reply (canned response) staff insert in the composer, with
    /// placeholders such as `{{customer.first_name}}` filled from the
    /// conversation. A team reply (`owner_id` none) is for every staff
    /// member; a personal one for its owner only. Staff only.
    pub struct SavedReply {
        id: SavedReplyId,
        account: |_r| None,
        Staff title: String,
        Staff body: String,
        /// `None`: shared with the team; otherwise only this staff member
        /// sees and uses it.
        Staff owner_id: Option<UserId>,
    }
    validate |r| {
        check_nonempty("title", &r.title)?;
        check_len("title", &r.title, 120)?;
        check_nonempty("body", &r.body)?;
        check_len("body", &r.body, 16 * 1024)
    }
}
