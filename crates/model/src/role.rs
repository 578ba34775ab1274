//! Who is asking: roles and the viewer every policy decision is made for.

use serde::{Deserialize, Serialize};

use crate::ids::{AccountId, TeamId, UserId};

/// A person's role. Customer roles belong to one account; staff roles belong
/// to the SaaS company running Portico.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A customer's administrator: manages seats, users, plan and billing.
    CustomerAdmin,
    /// A customer's regular user: reads what the account shares, opens requests.
    CustomerMember,
    /// Support agent: works conversations.
    Agent,
    /// Customer success manager: owns key accounts, gets their alerts.
    Csm,
    /// Team lead: everything an agent does plus routing and team settings.
    Lead,
    /// Staff administrator: everything.
    Admin,
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::CustomerAdmin,
        Role::CustomerMember,
        Role::Agent,
        Role::Csm,
        Role::Lead,
        Role::Admin,
    ];

    pub fn is_staff(self) -> bool {
        matches!(self, Role::Agent | Role::Csm | Role::Lead | Role::Admin)
    }

    pub fn is_customer(self) -> bool {
        !self.is_staff()
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::CustomerAdmin => "customer_admin",
            Role::CustomerMember => "customer_member",
            Role::Agent => "agent",
            Role::Csm => "csm",
            Role::Lead => "lead",
            Role::Admin => "admin",
        }
    }
}

/// Which conversations a staff member works (Zendesk's "agent ticket
/// access"). Set per staff user by an admin; see `policy::in_conversation_scope`.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConversationAccess {
    /// Every conversation.
    #[default]
    All,
    /// Conversations of the member's teams, and those assigned to them.
    Teams,
}

impl ConversationAccess {
    pub fn as_str(self) -> &'static str {
        match self {
            ConversationAccess::All => "all",
            ConversationAccess::Teams => "teams",
        }
    }
}

/// The signed-in person a response is shaped for. Built by the server from a
/// verified token, never from anything the client claims.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Viewer {
    pub user_id: UserId,
    pub role: Role,
    /// The customer's own account; `None` for staff.
    pub account_id: Option<AccountId>,
    /// The plan code of the customer's account (e.g. `team`), used to scope
    /// plan-specific knowledge; `None` for staff.
    pub plan_code: Option<String>,
    /// Staff: which conversations they work, and their teams (from their
    /// user record at the time of the request).
    #[serde(default)]
    pub access: ConversationAccess,
    #[serde(default)]
    pub team_ids: Vec<TeamId>,
}

impl Viewer {
    pub fn is_staff(&self) -> bool {
        self.role.is_staff()
    }

    /// True when this viewer is a customer of `account`.
    pub fn belongs_to(&self, account: AccountId) -> bool {
        self.role.is_customer() && self.account_id == Some(account)
    }
}
