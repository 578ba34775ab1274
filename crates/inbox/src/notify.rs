//! Desktop notifications: which changes deserve one (a conversation newly
//! assigned to me, an internal note mentioning me, an alert for me, an email
//! reply of mine that failed or bounced), and how
//! they are delivered (one by one, or as one digest after being offline or
//! in a burst, never a flood).
//!
//! [`Watch`] decides from the mirror as the person sees it; [`show`] is the
//! platform adapter (notify-rust over D-Bus). A missing notification daemon
//! is logged and never fatal.

use std::collections::HashSet;

use portico_model::{AlertId, ConversationId, Kind, MessageId, UserId};
use serde::Serialize;

use crate::engine::{Engine, Result};

/// More notices than this from one sync become one digest.
pub const BURST: usize = 3;

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeKind {
    Assigned,
    Mentioned,
    Alert,
    /// An email reply I wrote failed to send or bounced.
    Undelivered,
    /// Several notices folded into one.
    Digest,
}

/// One notification as shown.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Notice {
    pub kind: NoticeKind,
    pub title: String,
    pub body: String,
    /// The conversation to open when the notice is clicked.
    pub conversation_id: Option<ConversationId>,
}

/// Remembers what the person has already been told about, so a change is
/// announced once, and a change the person made here is not announced.
#[derive(Debug, Default)]
pub struct Watch {
    me: Option<UserId>,
    primed: bool,
    mine: HashSet<ConversationId>,
    mentions: HashSet<MessageId>,
    alerts: HashSet<AlertId>,
    /// My email replies already announced as failed or bounced.
    undelivered: HashSet<MessageId>,
}

impl Watch {
    pub fn new(me: UserId) -> Watch {
        Watch {
            me: Some(me),
            ..Watch::default()
        }
    }

    pub fn primed(&self) -> bool {
        self.primed
    }

    /// Takes the current state as known (after the first load): nothing
    /// already there is announced.
    pub fn prime(&mut self, engine: &Engine) -> Result<()> {
        let Some(me) = self.me else { return Ok(()) };
        let (mine, alerts) = engine.read(|m| -> rusqlite::Result<_> {
            let conn = m.conn();
            let mine = conn
                .prepare("SELECT id FROM inbox WHERE assignee_id = ?1")?
                .query_map([me.to_string()], |r| r.get::<_, String>(0))?
                .filter_map(|r| r.ok()?.parse().ok())
                .collect::<HashSet<ConversationId>>();
            let alerts = conn
                .prepare(
                    "SELECT id FROM records WHERE kind = 'alert' AND data ->> '$.recipient_id' = ?1",
                )?
                .query_map([me.to_string()], |r| r.get::<_, String>(0))?
                .filter_map(|r| r.ok()?.parse().ok())
                .collect::<HashSet<AlertId>>();
            Ok((mine, alerts))
        })?;
        self.mine = mine;
        self.alerts = alerts;
        self.mentions = engine
            .mentions(me, crate::query::MAX_PAGE)?
            .into_iter()
            .map(|m| m.message.id)
            .collect();
        self.primed = true;
        Ok(())
    }

    /// Looks at records that changed; returns what deserves a notice.
    /// Before [`Watch::prime`] nothing is announced.
    pub fn observe(&mut self, engine: &Engine, changed: &[(Kind, uuid::Uuid)]) -> Vec<Notice> {
        let Some(me) = self.me else {
            return Vec::new();
        };
        if !self.primed {
            return Vec::new();
        }
        let mut out = Vec::new();
        for (kind, id) in changed {
            match kind {
                Kind::Conversation => {
                    let cid = ConversationId(*id);
                    let Ok(Some(local)) = engine.conversation(cid) else {
                        continue;
                    };
                    let assigned_to_me = local.data.get("assignee_id").and_then(|v| v.as_str())
                        == Some(me.to_string().as_str());
                    if !assigned_to_me {
                        self.mine.remove(&cid);
                        continue;
                    }
                    // A conversation with this desktop's own unconfirmed
                    // edits was assigned here: nothing to announce.
                    if self.mine.insert(cid) && !local.pending {
                        let subject = text(&local.data, "subject");
                        out.push(Notice {
                            kind: NoticeKind::Assigned,
                            title: "Assigned to you".into(),
                            body: subject,
                            conversation_id: Some(cid),
                        });
                    }
                }
                Kind::Message => {
                    let Ok(Some(m)) = engine.record(Kind::Message, *id) else {
                        continue;
                    };
                    let mentions_me = m
                        .get("mentions")
                        .and_then(|v| v.as_array())
                        .is_some_and(|a| a.iter().any(|u| u.as_str() == Some(&me.to_string())));
                    let by_me =
                        m.get("author_id").and_then(|v| v.as_str()) == Some(&me.to_string());
                    let delivery = m.get("delivery").and_then(|d| d.get("status")?.as_str());
                    if by_me
                        && matches!(delivery, Some("failed" | "bounced"))
                        && self.undelivered.insert(MessageId(*id))
                    {
                        let words = m
                            .get("delivery")
                            .and_then(|d| d.get("error")?.as_str())
                            .unwrap_or_default();
                        let to = m
                            .get("delivery")
                            .and_then(|d| d.get("to")?.as_array().cloned())
                            .unwrap_or_default()
                            .iter()
                            .filter_map(|v| v.as_str().map(str::to_owned))
                            .collect::<Vec<_>>()
                            .join(", ");
                        out.push(Notice {
                            kind: NoticeKind::Undelivered,
                            title: if delivery == Some("bounced") {
                                format!("Your reply to {to} bounced")
                            } else {
                                format!("Your reply to {to} could not be sent")
                            },
                            body: excerpt(words),
                            conversation_id: m
                                .get("conversation_id")
                                .and_then(|v| v.as_str())
                                .and_then(|s| s.parse().ok()),
                        });
                    }
                    if mentions_me && !by_me && self.mentions.insert(MessageId(*id)) {
                        out.push(Notice {
                            kind: NoticeKind::Mentioned,
                            title: format!("{} mentioned you", text(&m, "author_name")),
                            body: excerpt(&text(&m, "body")),
                            conversation_id: m
                                .get("conversation_id")
                                .and_then(|v| v.as_str())
                                .and_then(|s| s.parse().ok()),
                        });
                    }
                }
                Kind::Alert => {
                    let Ok(Some(a)) = engine.record(Kind::Alert, *id) else {
                        continue;
                    };
                    let for_me =
                        a.get("recipient_id").and_then(|v| v.as_str()) == Some(&me.to_string());
                    let unread = !a.get("read").and_then(|v| v.as_bool()).unwrap_or(false);
                    if for_me && unread && self.alerts.insert(AlertId(*id)) {
                        out.push(Notice {
                            kind: NoticeKind::Alert,
                            title: text(&a, "title"),
                            body: excerpt(&text(&a, "body")),
                            conversation_id: a
                                .get("conversation_id")
                                .and_then(|v| v.as_str())
                                .and_then(|s| s.parse().ok()),
                        });
                    }
                }
                _ => {}
            }
        }
        out
    }
}

/// What to show for the notices of one sync: each one, or a single digest
/// when catching up after being offline (more than one) or in a burst
/// (more than [`BURST`]).
pub fn bundle(notices: Vec<Notice>, catching_up: bool) -> Vec<Notice> {
    let digest = (catching_up && notices.len() > 1) || notices.len() > BURST;
    if !digest {
        return notices;
    }
    let count = |k: NoticeKind| notices.iter().filter(|n| n.kind == k).count();
    let parts: Vec<String> = [
        (count(NoticeKind::Assigned), "assigned to you"),
        (count(NoticeKind::Mentioned), "mentions"),
        (count(NoticeKind::Alert), "alerts"),
        (count(NoticeKind::Undelivered), "undelivered replies"),
    ]
    .into_iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, what)| format!("{n} {what}"))
    .collect();
    vec![Notice {
        kind: NoticeKind::Digest,
        title: if catching_up {
            format!("{} updates while you were offline", notices.len())
        } else {
            format!("{} new updates", notices.len())
        },
        body: parts.join(", "),
        conversation_id: None,
    }]
}

/// Shows a notice on the desktop. Blocking (D-Bus); an error (no session
/// bus, no notification daemon) is returned for the caller to log.
pub fn show(n: &Notice) -> Result<(), String> {
    notify_rust::Notification::new()
        .appname("Portico Inbox")
        .summary(&n.title)
        .body(&n.body)
        .show()
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn text(m: &serde_json::Map<String, serde_json::Value>, key: &str) -> String {
    m.get(key)
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_owned()
}

/// The first 140 characters, for a notice or a warning.
pub(crate) fn excerpt(s: &str) -> String {
    const MAX: usize = 140;
    if s.chars().count() <= MAX {
        s.to_owned()
    } else {
        format!("{}…", s.chars().take(MAX).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notice(kind: NoticeKind) -> Notice {
        Notice {
            kind,
            title: "t".into(),
            body: "b".into(),
            conversation_id: None,
        }
    }

    #[test]
    fn a_few_notices_online_are_shown_one_by_one() {
        let n = vec![notice(NoticeKind::Assigned), notice(NoticeKind::Alert)];
        assert_eq!(bundle(n.clone(), false), n);
    }

    #[test]
    fn notices_missed_offline_arrive_as_one_digest() {
        let n = vec![
            notice(NoticeKind::Assigned),
            notice(NoticeKind::Mentioned),
            notice(NoticeKind::Mentioned),
        ];
        let out = bundle(n, true);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].kind, NoticeKind::Digest);
        assert_eq!(out[0].title, "3 updates while you were offline");
        assert_eq!(out[0].body, "1 assigned to you, 2 mentions");
    }

    #[test]
    fn a_single_notice_after_offline_is_shown_as_itself() {
        let n = vec![notice(NoticeKind::Alert)];
        assert_eq!(bundle(n.clone(), true), n);
    }

    #[test]
    fn a_burst_becomes_a_digest() {
        let n = vec![notice(NoticeKind::Alert); BURST + 1];
        let out = bundle(n, false);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].body, format!("{} alerts", BURST + 1));
    }

    #[test]
    fn nothing_is_announced_before_priming() {
        let mut w = Watch::new(UserId(uuid::Uuid::nil()));
        assert!(!w.primed());
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(
            dir.path().join("m.db"),
            "http://127.0.0.1:9",
            crate::engine::StaticToken("x".into()),
        )
        .unwrap();
        assert!(
            w.observe(&engine, &[(Kind::Alert, uuid::Uuid::nil())])
                .is_empty()
        );
    }
}
