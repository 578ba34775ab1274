//! The one place that decides who may see and do what.
//!
//! Every exit of the server (HTTP responses, the sync feed, live frames,
//! search results, the context handed to the AI) shapes records with
//! [`redact`] (or [`redact_row`] for stored JSON), and every change is gated
//! by [`authorize`]. A field the viewer may not see is *absent* from the
//! output, not null, and a field the policy does not know is dropped.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::ids::{AccountId, TeamId, UserId};
use crate::records::*;
use crate::role::{ConversationAccess, Role, Viewer};

/// Who may read a field, from widest to narrowest.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    /// Anyone who may see the row.
    Public,
    /// The account's own users (and staff). On rows without an account
    /// (plans, articles) any signed-in customer who may see the row.
    Customer,
    /// The account's administrators (and staff): billing details.
    CustomerAdmin,
    /// Staff only: operational fields such as assignee, team, tags.
    Staff,
    /// Staff only, and sensitive: health, MRR, internal notes. Never put in a
    /// customer-facing answer, even one a staff member drafts.
    Internal,
}

/// May `viewer` read a field of class `class` on a row owned by `account`?
/// Assumes the row itself is visible (see [`Visible`]).
///
/// Staff see every field, except that staff with team access (restricted
/// agents) do not get `Internal` ones: account health, MRR and notes are for
/// the people who manage the relationship (CSMs, leads, admins, and agents
/// with access to every conversation).
pub fn field_visible(viewer: &Viewer, class: Visibility, account: Option<AccountId>) -> bool {
    if viewer.is_staff() {
        return class != Visibility::Internal || viewer.access == ConversationAccess::All;
    }
    let own = match account {
        Some(a) => viewer.belongs_to(a),
        None => true,
    };
    match class {
        Visibility::Public => true,
        Visibility::Customer => own,
        Visibility::CustomerAdmin => own && viewer.role == Role::CustomerAdmin,
        Visibility::Staff | Visibility::Internal => false,
    }
}

/// Row-level rule: may `viewer` see this record at all?
pub trait Visible: Record {
    fn visible_to(&self, viewer: &Viewer) -> bool;

    /// True when `viewer` may see every row of this kind, whatever it holds
    /// (`visible_to` is then true for all of them: the kinds that answer
    /// true here start their `visible_to` with this). Lets an exit that
    /// also sees every field skip reading the row ([`redact_text_json`]).
    fn every_row_visible_to(_viewer: &Viewer) -> bool {
        false
    }
}

fn staff_or_own(viewer: &Viewer, account: AccountId) -> bool {
    viewer.is_staff() || viewer.belongs_to(account)
}

fn plan_allows(viewer: &Viewer, plans: &[String]) -> bool {
    plans.is_empty() || viewer.plan_code.as_ref().is_some_and(|p| plans.contains(p))
}

macro_rules! own_account_rows {
    ($($t:ty),*) => {$(
        impl Visible for $t {
            fn visible_to(&self, viewer: &Viewer) -> bool {
                staff_or_own(viewer, self.account_id)
            }
        }
    )*};
}

own_account_rows!(
    Workspace,
    Subscription,
    Seat,
    UsageMeter,
    UsageRecord,
    Request,
    OnboardingProgress
);

/// Does the viewer's conversation access cover a conversation of `team`
/// assigned to `assignee`? Zendesk's agent ticket access: a staff member
/// with `Teams` access works the conversations of their teams and those
/// assigned to them, nothing else (a conversation no team holds yet is
/// not theirs until routed or assigned). `All` access, and customers (whose
/// rows are decided by account), always pass here.
///
/// Messages carry no team: every exit that hands out a message checks its
/// conversation with this rule (HTTP reads the conversation first; the sync
/// feed, bootstrap and live frames carry the conversation's team and
/// assignee beside the message).
pub fn in_conversation_scope(
    viewer: &Viewer,
    team: Option<TeamId>,
    assignee: Option<UserId>,
) -> bool {
    if !viewer.is_staff() {
        return true;
    }
    match viewer.access {
        ConversationAccess::All => true,
        ConversationAccess::Teams => {
            assignee == Some(viewer.user_id) || team.is_some_and(|t| viewer.team_ids.contains(&t))
        }
    }
}

impl Visible for Conversation {
    fn visible_to(&self, viewer: &Viewer) -> bool {
        Self::every_row_visible_to(viewer)
            || (staff_or_own(viewer, self.account_id)
                && in_conversation_scope(viewer, self.team_id, self.assignee_id))
    }

    /// Staff with access to all conversations.
    fn every_row_visible_to(viewer: &Viewer) -> bool {
        viewer.is_staff() && viewer.access == ConversationAccess::All
    }
}

impl Visible for Account {
    fn visible_to(&self, viewer: &Viewer) -> bool {
        staff_or_own(viewer, self.id)
    }
}

impl Visible for Plan {
    fn visible_to(&self, _viewer: &Viewer) -> bool {
        true
    }
}

impl Visible for Invoice {
    /// Billing is for the account's administrators; members see no invoices.
    fn visible_to(&self, viewer: &Viewer) -> bool {
        viewer.is_staff()
            || (viewer.belongs_to(self.account_id) && viewer.role == Role::CustomerAdmin)
    }
}

impl Visible for User {
    /// Staff see everyone; customers see the users of their own account only
    /// (agents' names reach them on messages, not through the directory).
    fn visible_to(&self, viewer: &Viewer) -> bool {
        match self.account_id {
            Some(a) => staff_or_own(viewer, a),
            None => viewer.is_staff(),
        }
    }
}

impl Visible for Team {
    fn visible_to(&self, viewer: &Viewer) -> bool {
        viewer.is_staff()
    }
}

impl Visible for Message {
    /// Internal notes never reach customers. For staff with team access the
    /// exits also check the message's conversation ([`in_conversation_scope`]).
    fn visible_to(&self, viewer: &Viewer) -> bool {
        Self::every_row_visible_to(viewer)
            || (self.kind != MessageKind::InternalNote && viewer.belongs_to(self.account_id))
    }

    /// Staff (team access is checked on the conversation, not here).
    fn every_row_visible_to(viewer: &Viewer) -> bool {
        viewer.is_staff()
    }
}

/// Which knowledge a viewer may read, in a form a search index can apply
/// as a filter *before* ranking (so a customer's results are full pages of
/// what they may read). [`Article`]'s row rule is this same scope, so the
/// index filter and the policy cannot disagree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnowledgeScope {
    /// Only these editorial states; `None`: any.
    pub states: Option<Vec<ArticleState>>,
    /// Only these audiences; `None`: any.
    pub audiences: Option<Vec<Audience>>,
    /// Only knowledge for every plan or for this one; `None`: any plan.
    /// A customer without a plan gets `Some(None)`: every-plan knowledge only.
    pub plan: Option<Option<String>>,
}

impl KnowledgeScope {
    pub fn admits(&self, state: ArticleState, audience: Audience, plans: &[String]) -> bool {
        self.states.as_ref().is_none_or(|s| s.contains(&state))
            && self
                .audiences
                .as_ref()
                .is_none_or(|a| a.contains(&audience))
            && match &self.plan {
                None => true,
                Some(p) => plans.is_empty() || p.as_ref().is_some_and(|p| plans.contains(p)),
            }
    }
}

/// Staff read all knowledge (drafts and internal articles included);
/// customers read approved articles for customers or the public, for their
/// plan or every plan.
pub fn knowledge_scope(viewer: &Viewer) -> KnowledgeScope {
    if viewer.is_staff() {
        return KnowledgeScope {
            states: None,
            audiences: None,
            plan: None,
        };
    }
    KnowledgeScope {
        states: Some(vec![ArticleState::Approved]),
        audiences: Some(vec![Audience::Public, Audience::Customers]),
        plan: Some(viewer.plan_code.clone()),
    }
}

impl Visible for Article {
    /// See [`knowledge_scope`].
    fn visible_to(&self, viewer: &Viewer) -> bool {
        knowledge_scope(viewer).admits(self.state, self.audience, &self.plans)
    }
}

impl Visible for ReleaseNote {
    fn visible_to(&self, viewer: &Viewer) -> bool {
        viewer.is_staff() || (self.published && plan_allows(viewer, &self.plans))
    }
}

impl Visible for CommunityPost {
    fn visible_to(&self, _viewer: &Viewer) -> bool {
        true
    }
}

impl Visible for OnboardingPath {
    fn visible_to(&self, viewer: &Viewer) -> bool {
        viewer.is_staff() || plan_allows(viewer, &self.plans)
    }
}

macro_rules! staff_rows {
    ($($t:ty),*) => {$(
        impl Visible for $t {
            fn visible_to(&self, viewer: &Viewer) -> bool {
                viewer.is_staff()
            }
        }
    )*};
}

staff_rows!(RoutingRule, SlaPolicy, Automation, Alert, Draft, ContentGap);

impl Visible for SavedReply {
    /// Team replies for all staff; a personal one for its owner only (not
    /// even admins read someone's personal replies).
    fn visible_to(&self, viewer: &Viewer) -> bool {
        viewer.is_staff() && self.owner_id.is_none_or(|o| o == viewer.user_id)
    }
}

impl Visible for AuditEvent {
    fn visible_to(&self, viewer: &Viewer) -> bool {
        viewer.is_staff()
    }
}

/// The record as `viewer` may see it, or `None` when the row is hidden.
pub fn redact<R: Visible>(viewer: &Viewer, record: &R) -> Option<Map<String, Value>> {
    if !record.visible_to(viewer) {
        return None;
    }
    let Value::Object(mut map) = serde_json::to_value(record).ok()? else {
        return None;
    };
    let account = record.account_id();
    map.retain(|key, _| {
        R::FIELDS
            .iter()
            .find(|(name, _)| name == key)
            .is_some_and(|(_, class)| field_visible(viewer, *class, account))
    });
    Some(map)
}

/// The record for staff tools outside Portico (a CRM hand-off): every field
/// but the `Internal` ones, which never leave Portico.
pub fn without_internal<R: Record>(record: &R) -> Map<String, Value> {
    let Ok(Value::Object(mut map)) = serde_json::to_value(record) else {
        return Map::new();
    };
    map.retain(|key, _| {
        R::FIELDS
            .iter()
            .any(|(name, class)| name == key && *class != Visibility::Internal)
    });
    map
}

/// Why a stored row could not be shaped for a viewer.
#[derive(Debug, thiserror::Error)]
#[error("stored {kind:?} row does not match its record type: {source}")]
pub struct CorruptRow {
    pub kind: Kind,
    #[source]
    pub source: serde_json::Error,
}

/// Calls `$go::<RecordType>(args)` for the record type of `kind`: the one
/// list of kinds and their types the row shapers below share.
macro_rules! by_kind {
    ($kind:expr, $go:ident, $($arg:expr),*) => {
        match $kind {
            Kind::Account => $go::<Account>($($arg),*),
            Kind::Workspace => $go::<Workspace>($($arg),*),
            Kind::Plan => $go::<Plan>($($arg),*),
            Kind::Subscription => $go::<Subscription>($($arg),*),
            Kind::Seat => $go::<Seat>($($arg),*),
            Kind::Invoice => $go::<Invoice>($($arg),*),
            Kind::UsageMeter => $go::<UsageMeter>($($arg),*),
            Kind::UsageRecord => $go::<UsageRecord>($($arg),*),
            Kind::User => $go::<User>($($arg),*),
            Kind::Team => $go::<Team>($($arg),*),
            Kind::Request => $go::<Request>($($arg),*),
            Kind::Conversation => $go::<Conversation>($($arg),*),
            Kind::Message => $go::<Message>($($arg),*),
            Kind::Article => $go::<Article>($($arg),*),
            Kind::ReleaseNote => $go::<ReleaseNote>($($arg),*),
            Kind::CommunityPost => $go::<CommunityPost>($($arg),*),
            Kind::OnboardingPath => $go::<OnboardingPath>($($arg),*),
            Kind::OnboardingProgress => $go::<OnboardingProgress>($($arg),*),
            Kind::AuditEvent => $go::<AuditEvent>($($arg),*),
            Kind::RoutingRule => $go::<RoutingRule>($($arg),*),
            Kind::SlaPolicy => $go::<SlaPolicy>($($arg),*),
            Kind::Automation => $go::<Automation>($($arg),*),
            Kind::Alert => $go::<Alert>($($arg),*),
            Kind::Draft => $go::<Draft>($($arg),*),
            Kind::ContentGap => $go::<ContentGap>($($arg),*),
            Kind::SavedReply => $go::<SavedReply>($($arg),*),
        }
    };
}

/// [`redact`] for a row stored as JSON (tables, change log): parses it as its
/// record type so the same rules apply. `Ok(None)` when the row is hidden.
pub fn redact_row(
    viewer: &Viewer,
    kind: Kind,
    row: &Value,
) -> Result<Option<Map<String, Value>>, CorruptRow> {
    fn go<R: Visible>(
        viewer: &Viewer,
        kind: Kind,
        row: &Value,
    ) -> Result<Option<Map<String, Value>>, CorruptRow> {
        let record: R =
            serde_json::from_value(row.clone()).map_err(|source| CorruptRow { kind, source })?;
        Ok(redact(viewer, &record))
    }
    by_kind!(kind, go, viewer, kind, row)
}

/// [`redact_row`] for a row still in its stored text: parsed straight into
/// its record type, with no generic JSON value in between (the bootstrap
/// reads a million rows this way).
pub fn redact_text(
    viewer: &Viewer,
    kind: Kind,
    text: &str,
) -> Result<Option<Map<String, Value>>, CorruptRow> {
    fn go<R: Visible>(
        viewer: &Viewer,
        kind: Kind,
        text: &str,
    ) -> Result<Option<Map<String, Value>>, CorruptRow> {
        let record: R = serde_json::from_str(text).map_err(|source| CorruptRow { kind, source })?;
        Ok(redact(viewer, &record))
    }
    by_kind!(kind, go, viewer, kind, text)
}

/// [`redact_text`] written back as JSON text: the same fields, decided by
/// the same rule, serialized straight from the typed record instead of
/// through a map (the bootstrap pages of a million rows). `Ok(None)` when
/// the row is hidden.
pub fn redact_text_json(
    viewer: &Viewer,
    kind: Kind,
    text: &str,
) -> Result<Option<String>, CorruptRow> {
    fn go<R: Visible>(
        viewer: &Viewer,
        kind: Kind,
        text: &str,
    ) -> Result<Option<String>, CorruptRow> {
        // Nothing to take out for a viewer who sees every row of this kind
        // and every field (staff with access to all conversations): the
        // row goes out as stored, without being parsed and written again
        // (a bootstrap's million messages).
        let every_field = || {
            viewer.is_staff()
                && R::FIELDS
                    .iter()
                    .all(|(_, class)| field_visible(viewer, *class, None))
        };
        if R::every_row_visible_to(viewer) && every_field() {
            return Ok(Some(text.to_owned()));
        }
        let record: R = serde_json::from_str(text).map_err(|source| CorruptRow { kind, source })?;
        if !record.visible_to(viewer) {
            return Ok(None);
        }
        let account = record.account_id();
        let keep = |key: &str| {
            R::FIELDS
                .iter()
                .find(|(name, _)| *name == key)
                .is_some_and(|(_, class)| field_visible(viewer, *class, account))
        };
        let text = crate::field_filter::to_string_keeping(&record, &keep)
            .or_else(|| redact(viewer, &record).map(|m| Value::Object(m).to_string()));
        Ok(text)
    }
    by_kind!(kind, go, viewer, kind, text)
}

/// Something a viewer wants to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Read an account's own records (subscription, seats, usage, users, requests).
    ReadAccount(AccountId),
    /// Change seats on the subscription.
    ManageSeats(AccountId),
    /// Preview or change the plan.
    ChangePlan(AccountId),
    /// Invite, remove and set the role of the account's users.
    ManageUsers(AccountId),
    /// Edit the account's profile (name, language, SSO).
    EditProfile(AccountId),
    /// Tick onboarding steps by hand.
    ManageOnboarding(AccountId),
    /// List invoices and download their documents.
    ReadInvoices(AccountId),
    /// Open a request or conversation for the account.
    OpenRequest(AccountId),
    /// Post a customer-visible message in the account's conversation.
    PostReply(AccountId),
    /// Post an internal note.
    PostInternalNote,
    /// Change staff-side fields of accounts (key account, CSM, health, notes).
    UpdateAccountStaffFields,
    /// Triage conversations and requests (status, assignee, priority, tags).
    Triage,
    /// Write knowledge (draft articles, release notes).
    WriteKnowledge,
    /// Approve or archive knowledge.
    ApproveKnowledge,
    /// Read the staff directory (staff users, teams).
    ReadStaffDirectory,
    /// Manage staff users and teams.
    ManageStaff,
    /// Edit routing rules, SLA policies and automations.
    ManageRules,
    /// Read, edit, approve (send) or reject AI drafts; read content gaps.
    ReviewDrafts,
    /// Write saved replies: personal ones (any staff member, their own) or
    /// the team's (leads and admins, like shared macros).
    ManageSavedReplies { team: bool },
}

/// Why an action is refused. `NotFound` hides another account's existence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    Forbidden(&'static str),
}

/// The action rules. Customers act only on their own account (others look
/// like missing records); within it, only admins change seats, plan, users
/// or see invoices.
pub fn authorize(viewer: &Viewer, action: Action) -> Result<(), Denied> {
    use Action::*;
    let role = viewer.role;
    let own = |a: AccountId| {
        if viewer.is_staff() || viewer.belongs_to(a) {
            Ok(())
        } else {
            Err(Denied::NotFound)
        }
    };
    // Billing and users: the customer's admin, or a staff admin acting for them.
    let admin_or_staff_admin = |a: AccountId, why: &'static str| {
        own(a)?;
        match role {
            Role::CustomerAdmin | Role::Admin => Ok(()),
            _ => Err(Denied::Forbidden(why)),
        }
    };
    // Reading invoices, editing the profile: the customer's admin, or any staff.
    let admin_or_staff = |a: AccountId, why: &'static str| {
        own(a)?;
        if viewer.is_staff() || role == Role::CustomerAdmin {
            Ok(())
        } else {
            Err(Denied::Forbidden(why))
        }
    };
    let staff = |why: &'static str| {
        if viewer.is_staff() {
            Ok(())
        } else {
            Err(Denied::Forbidden(why))
        }
    };
    match action {
        ReadAccount(a) | OpenRequest(a) | PostReply(a) => own(a),
        ManageSeats(a) => admin_or_staff_admin(a, "only an account administrator can change seats"),
        ChangePlan(a) => {
            admin_or_staff_admin(a, "only an account administrator can change the plan")
        }
        ManageUsers(a) => admin_or_staff_admin(a, "only an account administrator can manage users"),
        EditProfile(a) => admin_or_staff(
            a,
            "only an account administrator can edit the account profile",
        ),
        ReadInvoices(a) => admin_or_staff(a, "only an account administrator can see invoices"),
        ManageOnboarding(a) => {
            admin_or_staff(a, "only an account administrator can mark onboarding steps")
        }
        PostInternalNote => staff("internal notes are for staff"),
        UpdateAccountStaffFields => staff("only staff can change account management fields"),
        Triage => staff("only staff can triage"),
        WriteKnowledge => staff("only staff can write knowledge"),
        ApproveKnowledge => match role {
            Role::Lead | Role::Admin => Ok(()),
            _ => Err(Denied::Forbidden(
                "only a lead or admin can approve knowledge",
            )),
        },
        ReadStaffDirectory => staff("the staff directory is for staff"),
        ReviewDrafts => staff("drafts and content gaps are for staff"),
        ManageSavedReplies { team: false } => staff("saved replies are for staff"),
        ManageSavedReplies { team: true } => match role {
            Role::Lead | Role::Admin => Ok(()),
            _ => Err(Denied::Forbidden(
                "only a lead or admin can change the team's saved replies; save it as a personal reply",
            )),
        },
        ManageRules => match role {
            Role::Lead | Role::Admin => Ok(()),
            _ => Err(Denied::Forbidden(
                "only a lead or admin can change routing rules, SLA policies and automations",
            )),
        },
        ManageStaff => match role {
            Role::Admin => Ok(()),
            _ => Err(Denied::Forbidden(
                "only an admin can manage staff and teams",
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::*;
    use uuid::Uuid;

    fn viewer(role: Role, account: Option<AccountId>) -> Viewer {
        Viewer {
            user_id: UserId(Uuid::nil()),
            role,
            account_id: account,
            plan_code: Some("team".into()),
            access: ConversationAccess::All,
            team_ids: vec![],
        }
    }

    fn account(id: AccountId) -> Account {
        Account {
            id,
            name: "Acme".into(),
            domain: "acme.test".into(),
            region: "eu".into(),
            language: "en".into(),
            csm_owner_id: None,
            product_version: String::new(),
            sso: None,
            key_account: true,
            lifecycle_stage: LifecycleStage::Active,
            health_score: 40,
            mrr: 120_000,
            notes: "renewal risk".into(),
            version: 1,
            created_at: jiff::Timestamp::UNIX_EPOCH,
            updated_at: jiff::Timestamp::UNIX_EPOCH,
        }
    }

    #[test]
    fn customer_sees_own_account_without_staff_fields() {
        let a = AccountId(Uuid::from_u128(1));
        let v = viewer(Role::CustomerAdmin, Some(a));
        let out = redact(&v, &account(a)).expect("own account is visible");
        assert!(out.contains_key("name"));
        for hidden in [
            "key_account",
            "lifecycle_stage",
            "health_score",
            "mrr",
            "notes",
        ] {
            assert!(
                !out.contains_key(hidden),
                "{hidden} must be absent for customers"
            );
        }
    }

    #[test]
    fn customer_never_sees_another_account() {
        let v = viewer(Role::CustomerAdmin, Some(AccountId(Uuid::from_u128(2))));
        assert!(redact(&v, &account(AccountId(Uuid::from_u128(1)))).is_none());
        assert_eq!(
            authorize(&v, Action::ReadAccount(AccountId(Uuid::from_u128(1)))),
            Err(Denied::NotFound)
        );
    }

    #[test]
    fn staff_see_everything() {
        let a = AccountId(Uuid::from_u128(1));
        let out = redact(&viewer(Role::Agent, None), &account(a)).unwrap();
        assert_eq!(out.len(), Account::FIELDS.len(), "staff get every field");
    }

    #[test]
    fn member_cannot_change_billing() {
        let a = AccountId(Uuid::from_u128(1));
        let m = viewer(Role::CustomerMember, Some(a));
        assert!(matches!(
            authorize(&m, Action::ManageSeats(a)),
            Err(Denied::Forbidden(_))
        ));
        assert!(matches!(
            authorize(&m, Action::ChangePlan(a)),
            Err(Denied::Forbidden(_))
        ));
        assert!(
            authorize(
                &viewer(Role::CustomerAdmin, Some(a)),
                Action::ManageSeats(a)
            )
            .is_ok()
        );
    }

    #[test]
    fn shaping_as_text_keeps_exactly_what_redact_keeps() {
        let a = AccountId(Uuid::from_u128(1));
        let text = serde_json::to_string(&account(a)).unwrap();
        let mut team_agent = viewer(Role::Agent, None);
        team_agent.access = ConversationAccess::Teams;
        for v in [
            viewer(Role::CustomerAdmin, Some(a)),
            viewer(Role::CustomerMember, Some(a)),
            viewer(Role::Agent, None),
            team_agent,
            viewer(Role::CustomerAdmin, Some(AccountId(Uuid::from_u128(2)))),
        ] {
            let as_text = redact_text_json(&v, Kind::Account, &text)
                .unwrap()
                .map(|t| serde_json::from_str::<Map<String, Value>>(&t).unwrap());
            assert_eq!(
                as_text,
                redact_text(&v, Kind::Account, &text).unwrap(),
                "{:?} with {:?} access gets the same fields either way",
                v.role,
                v.access
            );
        }
    }

    #[test]
    fn staff_who_see_every_row_and_field_get_the_stored_row_and_others_the_filtered_one() {
        let a = AccountId(Uuid::from_u128(1));
        let note = Message {
            id: MessageId(Uuid::from_u128(7)),
            conversation_id: ConversationId(Uuid::from_u128(3)),
            account_id: a,
            kind: MessageKind::InternalNote,
            author_id: Some(UserId(Uuid::from_u128(9))),
            author_name: "Sam".into(),
            body: "Refund approved, see @Ana".into(),
            mentions: vec![UserId(Uuid::from_u128(10))],
            email: None,
            delivery: None,
            version: 1,
            created_at: jiff::Timestamp::UNIX_EPOCH,
            updated_at: jiff::Timestamp::UNIX_EPOCH,
        };
        let reply = Message {
            kind: MessageKind::Customer,
            ..note.clone()
        };
        let stored = |m: &Message| serde_json::to_string(m).unwrap();
        let agent = viewer(Role::Agent, None);
        assert_eq!(
            redact_text_json(&agent, Kind::Message, &stored(&note)).unwrap(),
            Some(stored(&note)),
            "an all-access agent reads the note as stored, mentions included"
        );
        let customer = viewer(Role::CustomerAdmin, Some(a));
        assert_eq!(
            redact_text_json(&customer, Kind::Message, &stored(&note)).unwrap(),
            None,
            "an internal note never reaches a customer"
        );
        let shaped = redact_text_json(&customer, Kind::Message, &stored(&reply))
            .unwrap()
            .map(|t| serde_json::from_str::<Map<String, Value>>(&t).unwrap());
        assert_eq!(
            shaped,
            redact_text(&customer, Kind::Message, &stored(&reply)).unwrap(),
            "a customer's reply goes through the field filter"
        );
        assert!(
            !shaped.unwrap().contains_key("mentions"),
            "staff fields stay out of what a customer gets"
        );
        let mut team_agent = viewer(Role::Agent, None);
        team_agent.access = ConversationAccess::Teams;
        assert!(
            !Conversation::every_row_visible_to(&team_agent),
            "a team agent's conversations are checked row by row"
        );
        assert!(Conversation::every_row_visible_to(&agent));
        assert!(!Conversation::every_row_visible_to(&customer));
    }

    #[test]
    fn every_serialized_field_has_a_class() {
        // A field missing from FIELDS would silently vanish for everyone; this
        // makes that mistake loud instead.
        let a = account(AccountId(Uuid::from_u128(1)));
        let Value::Object(map) = serde_json::to_value(&a).unwrap() else {
            unreachable!()
        };
        for key in map.keys() {
            assert!(
                Account::FIELDS.iter().any(|(n, _)| n == key),
                "{key} has no visibility class"
            );
        }
    }
}
