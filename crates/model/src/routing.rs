//! Routing rules and automations as data: ordered conditions over a
//! conversation's and its account's fields, and the actions they take.
//!
//! Pure: [`Facts`] are gathered by the server, [`evaluate`] says which rules
//! fire and what they do, in order. Rule definitions are checked on save by
//! [`check_conditions`] / [`check_actions`] against the records that exist,
//! with messages that point at the bad part (`conditions[1].is[0]: …`).

use serde::{Deserialize, Serialize};

use crate::ids::{SlaPolicyId, TeamId, UserId};
use crate::records::{Channel, Priority, RequestKind};
use crate::validate::{Invalid, check_tag};

/// One test; a rule matches when all of its conditions hold. Each lists the
/// values that match (any of them).
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "field", rename_all = "snake_case", deny_unknown_fields)]
pub enum Condition {
    Channel {
        is: Vec<Channel>,
    },
    /// Plan codes, e.g. `business`.
    Plan {
        is: Vec<String>,
    },
    ProductArea {
        is: Vec<String>,
    },
    Region {
        is: Vec<String>,
    },
    /// Language tags; `de` also matches `de-AT`.
    Language {
        is: Vec<String>,
    },
    KeyAccount {
        is: bool,
    },
    Priority {
        is: Vec<Priority>,
    },
    /// The kind of the request behind the event, if any.
    RequestType {
        is: Vec<RequestKind>,
    },
    /// Any of these words or phrases in the subject or first message (case-insensitive).
    Keywords {
        any: Vec<String>,
    },
}

/// What a rule does when it matches.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum RuleAction {
    RouteToTeam {
        team_id: TeamId,
    },
    SetPriority {
        priority: Priority,
    },
    AddTags {
        tags: Vec<String>,
    },
    ApplySla {
        policy_id: SlaPolicyId,
    },
    /// Raise an alert for a person, or for the account's CSM.
    Notify {
        target: NotifyTarget,
    },
    /// Raise priority one step and alert the team's lead.
    Escalate,
    /// Assign to one agent.
    Assign {
        user_id: UserId,
    },
    /// POST the event (with the account's context) to a URL, HMAC-signed.
    Webhook {
        url: String,
    },
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "to", rename_all = "snake_case", deny_unknown_fields)]
pub enum NotifyTarget {
    /// The account's customer success manager.
    AccountCsm,
    /// Every lead of the conversation's team (or every lead without a team).
    TeamLead,
    User {
        user_id: UserId,
    },
}

/// What a rule can look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    pub channel: Option<Channel>,
    pub plan_code: Option<String>,
    pub product_area: String,
    pub region: String,
    pub language: String,
    pub key_account: bool,
    pub priority: Priority,
    pub request_type: Option<RequestKind>,
    /// Subject and first message, lowercased.
    pub text: String,
}

impl Condition {
    pub fn holds(&self, f: &Facts) -> bool {
        let eq_any = |list: &[String], v: &str| list.iter().any(|x| x.eq_ignore_ascii_case(v));
        match self {
            Condition::Channel { is } => f.channel.is_some_and(|c| is.contains(&c)),
            Condition::Plan { is } => f.plan_code.as_deref().is_some_and(|p| eq_any(is, p)),
            Condition::ProductArea { is } => eq_any(is, &f.product_area),
            Condition::Region { is } => eq_any(is, &f.region),
            Condition::Language { is } => is.iter().any(|l| {
                f.language.eq_ignore_ascii_case(l)
                    || f.language.len() > l.len()
                        && f.language[..l.len()].eq_ignore_ascii_case(l)
                        && f.language.as_bytes()[l.len()] == b'-'
            }),
            Condition::KeyAccount { is } => f.key_account == *is,
            Condition::Priority { is } => is.contains(&f.priority),
            Condition::RequestType { is } => f.request_type.is_some_and(|k| is.contains(&k)),
            Condition::Keywords { any } => any.iter().any(|k| f.text.contains(&k.to_lowercase())),
        }
    }
}

/// A rule as the evaluator needs it.
pub trait RuleLike {
    fn enabled(&self) -> bool;
    fn position(&self) -> u32;
    fn conditions(&self) -> &[Condition];
    fn actions(&self) -> &[RuleAction];
    /// Stop evaluating later rules once this one matched.
    fn stop(&self) -> bool;
}

impl RuleLike for crate::records::RoutingRule {
    fn enabled(&self) -> bool {
        self.enabled
    }
    fn position(&self) -> u32 {
        self.position
    }
    fn conditions(&self) -> &[Condition] {
        &self.conditions
    }
    fn actions(&self) -> &[RuleAction] {
        &self.actions
    }
    fn stop(&self) -> bool {
        self.stop
    }
}

/// Automations all fire when their conditions hold; order is creation order.
impl RuleLike for crate::records::Automation {
    fn enabled(&self) -> bool {
        self.enabled
    }
    fn position(&self) -> u32 {
        0
    }
    fn conditions(&self) -> &[Condition] {
        &self.conditions
    }
    fn actions(&self) -> &[RuleAction] {
        &self.actions
    }
    fn stop(&self) -> bool {
        false
    }
}

/// The rules that fire for `facts`, by position, each with its actions.
/// Later rules see the effect of earlier `set_priority` actions, so an
/// "escalate urgent" rule can follow a "key accounts are high" rule.
pub fn evaluate<'r, R: RuleLike>(rules: &'r [R], facts: &Facts) -> Vec<&'r R> {
    let mut ordered: Vec<&R> = rules.iter().filter(|r| r.enabled()).collect();
    ordered.sort_by_key(|r| r.position());
    let mut facts = facts.clone();
    let mut fired = Vec::new();
    for rule in ordered {
        if rule.conditions().iter().all(|c| c.holds(&facts)) {
            for a in rule.actions() {
                match a {
                    RuleAction::SetPriority { priority } => facts.priority = *priority,
                    RuleAction::Escalate => facts.priority = raise(facts.priority),
                    _ => {}
                }
            }
            fired.push(rule);
            if rule.stop() {
                break;
            }
        }
    }
    fired
}

/// One step up, saturating at urgent.
pub fn raise(p: Priority) -> Priority {
    match p {
        Priority::Low => Priority::Normal,
        Priority::Normal => Priority::High,
        Priority::High | Priority::Urgent => Priority::Urgent,
    }
}

/// The records a rule may refer to, for checking it on save.
pub struct RuleContext<'a> {
    pub plan_codes: &'a [String],
    pub team_ids: &'a [TeamId],
    pub sla_policy_ids: &'a [SlaPolicyId],
    /// Staff users (assignable, notifiable).
    pub staff_ids: &'a [UserId],
}

pub fn check_conditions(conditions: &[Condition], ctx: &RuleContext<'_>) -> Result<(), Invalid> {
    for (i, c) in conditions.iter().enumerate() {
        let at = |what: &str| format!("conditions[{i}].{what}");
        let nonempty = |n: usize, what: &str| {
            if n == 0 {
                Err(Invalid::new(at(what), "list at least one value"))
            } else {
                Ok(())
            }
        };
        match c {
            Condition::Channel { is } => nonempty(is.len(), "is")?,
            Condition::Priority { is } => nonempty(is.len(), "is")?,
            Condition::RequestType { is } => nonempty(is.len(), "is")?,
            Condition::Plan { is } => {
                nonempty(is.len(), "is")?;
                for (k, p) in is.iter().enumerate() {
                    if !ctx.plan_codes.iter().any(|c| c == p) {
                        return Err(Invalid::new(
                            at(&format!("is[{k}]")),
                            format!(
                                "no plan with code {p:?}; plans are {}",
                                ctx.plan_codes.join(", ")
                            ),
                        ));
                    }
                }
            }
            Condition::ProductArea { is }
            | Condition::Region { is }
            | Condition::Language { is } => {
                nonempty(is.len(), "is")?;
                if let Some(k) = is.iter().position(|v| v.trim().is_empty()) {
                    return Err(Invalid::new(at(&format!("is[{k}]")), "must not be empty"));
                }
            }
            Condition::KeyAccount { .. } => {}
            Condition::Keywords { any } => {
                nonempty(any.len(), "any")?;
                if let Some(k) = any.iter().position(|v| v.trim().chars().count() < 2) {
                    return Err(Invalid::new(
                        at(&format!("any[{k}]")),
                        "keywords need at least 2 characters",
                    ));
                }
            }
        }
    }
    Ok(())
}

pub fn check_actions(actions: &[RuleAction], ctx: &RuleContext<'_>) -> Result<(), Invalid> {
    if actions.is_empty() {
        return Err(Invalid::new("actions", "a rule needs at least one action"));
    }
    for (i, a) in actions.iter().enumerate() {
        let at = |what: &str| format!("actions[{i}].{what}");
        match a {
            RuleAction::RouteToTeam { team_id } if !ctx.team_ids.contains(team_id) => {
                return Err(Invalid::new(at("team_id"), format!("no team {team_id}")));
            }
            RuleAction::ApplySla { policy_id } if !ctx.sla_policy_ids.contains(policy_id) => {
                return Err(Invalid::new(
                    at("policy_id"),
                    format!("no SLA policy {policy_id}"),
                ));
            }
            RuleAction::Assign { user_id }
            | RuleAction::Notify {
                target: NotifyTarget::User { user_id },
            } if !ctx.staff_ids.contains(user_id) => {
                return Err(Invalid::new(
                    at("user_id"),
                    format!("{user_id} is not a staff user"),
                ));
            }
            RuleAction::AddTags { tags } => {
                if tags.is_empty() {
                    return Err(Invalid::new(at("tags"), "list at least one tag"));
                }
                for t in tags {
                    check_tag(t).map_err(|e| Invalid::new(at("tags"), e.message))?;
                }
            }
            RuleAction::Webhook { url } => {
                let ok = (url.starts_with("https://") || url.starts_with("http://"))
                    && url.len() > 10
                    && !url.contains(char::is_whitespace);
                if !ok {
                    return Err(Invalid::new(at("url"), "must be an http(s) URL"));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    struct R {
        pos: u32,
        on: bool,
        stop: bool,
        when: Vec<Condition>,
        then: Vec<RuleAction>,
    }

    impl RuleLike for R {
        fn enabled(&self) -> bool {
            self.on
        }
        fn position(&self) -> u32 {
            self.pos
        }
        fn conditions(&self) -> &[Condition] {
            &self.when
        }
        fn actions(&self) -> &[RuleAction] {
            &self.then
        }
        fn stop(&self) -> bool {
            self.stop
        }
    }

    fn facts() -> Facts {
        Facts {
            channel: Some(Channel::Email),
            plan_code: Some("business".into()),
            product_area: "billing".into(),
            region: "eu".into(),
            language: "de-AT".into(),
            key_account: true,
            priority: Priority::Normal,
            request_type: Some(RequestKind::Bug),
            text: "our invoice export fails with error 500".into(),
        }
    }

    #[test]
    fn conditions_table() {
        let f = facts();
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let cases: Vec<(Condition, bool)> = vec![
            (
                Condition::Channel {
                    is: vec![Channel::Email],
                },
                true,
            ),
            (
                Condition::Channel {
                    is: vec![Channel::Chat, Channel::Video],
                },
                false,
            ),
            (
                Condition::Plan {
                    is: s(&["Business"]),
                },
                true,
            ),
            (
                Condition::Plan {
                    is: s(&["starter"]),
                },
                false,
            ),
            (
                Condition::ProductArea {
                    is: s(&["billing", "api"]),
                },
                true,
            ),
            (Condition::Region { is: s(&["us"]) }, false),
            (Condition::Language { is: s(&["de"]) }, true),
            (Condition::Language { is: s(&["d"]) }, false),
            (Condition::KeyAccount { is: true }, true),
            (Condition::KeyAccount { is: false }, false),
            (
                Condition::Priority {
                    is: vec![Priority::High, Priority::Urgent],
                },
                false,
            ),
            (
                Condition::RequestType {
                    is: vec![RequestKind::Bug],
                },
                true,
            ),
            (
                Condition::Keywords {
                    any: s(&["refund", "Invoice Export"]),
                },
                true,
            ),
            (
                Condition::Keywords {
                    any: s(&["refund"]),
                },
                false,
            ),
        ];
        for (c, expected) in cases {
            assert_eq!(c.holds(&f), expected, "{c:?} on the sample facts");
        }
    }

    #[test]
    fn rules_fire_in_position_order_and_see_earlier_priority_changes() {
        let rules = vec![
            R {
                pos: 2,
                on: true,
                stop: false,
                when: vec![Condition::Priority {
                    is: vec![Priority::High],
                }],
                then: vec![RuleAction::Escalate],
            },
            R {
                pos: 1,
                on: true,
                stop: false,
                when: vec![Condition::KeyAccount { is: true }],
                then: vec![RuleAction::SetPriority {
                    priority: Priority::High,
                }],
            },
            R {
                pos: 3,
                on: false,
                stop: false,
                when: vec![],
                then: vec![RuleAction::AddTags {
                    tags: vec!["x".into()],
                }],
            },
            R {
                pos: 4,
                on: true,
                stop: true,
                when: vec![],
                then: vec![RuleAction::AddTags {
                    tags: vec!["catch-all".into()],
                }],
            },
            R {
                pos: 5,
                on: true,
                stop: false,
                when: vec![],
                then: vec![RuleAction::AddTags {
                    tags: vec!["never".into()],
                }],
            },
        ];
        let fired: Vec<u32> = evaluate(&rules, &facts()).iter().map(|r| r.pos).collect();
        assert_eq!(
            fired,
            vec![1, 2, 4],
            "disabled rules skip, `stop` ends evaluation, rule 2 sees priority high from rule 1"
        );
    }

    #[test]
    fn bad_rules_are_refused_with_the_bad_part_named() {
        let plans = vec!["starter".to_string(), "team".to_string()];
        let ctx = RuleContext {
            plan_codes: &plans,
            team_ids: &[],
            sla_policy_ids: &[],
            staff_ids: &[],
        };
        let e = check_conditions(
            &[
                Condition::KeyAccount { is: true },
                Condition::Plan {
                    is: vec!["gold".into()],
                },
            ],
            &ctx,
        )
        .unwrap_err();
        assert_eq!(e.field, "conditions[1].is[0]");
        assert!(
            e.message.contains("gold") && e.message.contains("starter"),
            "says what is wrong and what is allowed: {}",
            e.message
        );
        let e = check_actions(
            &[RuleAction::AddTags {
                tags: vec!["ok".into(), "Not OK".into()],
            }],
            &ctx,
        )
        .unwrap_err();
        assert_eq!(e.field, "actions[0].tags");
        let e = check_actions(&[], &ctx).unwrap_err();
        assert_eq!(e.field, "actions");
        let e = check_actions(
            &[RuleAction::RouteToTeam {
                team_id: TeamId(uuid::Uuid::nil()),
            }],
            &ctx,
        )
        .unwrap_err();
        assert_eq!(e.field, "actions[0].team_id");
        // Unknown condition fields are refused by the type itself.
        let bad: Result<Condition, _> = serde_json::from_str(r#"{"field":"plann","is":["team"]}"#);
        assert!(
            bad.unwrap_err().to_string().contains("plann"),
            "serde names the unknown field"
        );
    }
}
