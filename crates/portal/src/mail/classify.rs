//! Mail no person wrote: bounces (delivery status notifications),
//! auto-replies (out of office, ticket acknowledgements) and mailing-list
//! traffic. None of them opens a conversation, and Portico never answers
//! them, so two auto-responders cannot loop through the desk. A bounce
//! names the outgoing message it returns, which is marked failed.

use mail_parser::{HeaderValue, Message, MessageParser, MimeHeaders, PartType};

use super::parse::normalize_id;

/// What kind of sender a mail has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailKind {
    /// Written by a person: becomes a conversation or joins one.
    Person,
    /// A delivery failure report.
    Bounce(Bounce),
    /// Out of office and other automatic answers (RFC 3834 `Auto-Submitted`,
    /// `Precedence: auto_reply`, `X-Autoreply`, or a null return path).
    AutoReply(String),
    /// Mailing list or bulk mail (`List-Id`, `List-Unsubscribe`,
    /// `Precedence: list/bulk/junk`).
    List(String),
}

/// What a delivery status notification says.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Bounce {
    /// Message-ID of the mail that failed, when the report includes it.
    pub original_id: Option<String>,
    pub recipient: Option<String>,
    /// `Status:` and `Diagnostic-Code:` as the reporting server gave them.
    pub reason: String,
    /// `Action: delayed` reports: still being tried, not a failure.
    pub delayed: bool,
}

fn raw_header(msg: &Message<'_>, name: &str) -> Option<String> {
    msg.header_raw(name).map(|v| v.trim().to_owned())
}

/// Sorts a parsed mail into [`MailKind`].
pub fn classify(msg: &Message<'_>) -> MailKind {
    if let Some(b) = bounce(msg) {
        return MailKind::Bounce(b);
    }
    let precedence = raw_header(msg, "Precedence")
        .unwrap_or_default()
        .to_ascii_lowercase();
    if !matches!(msg.list_id(), HeaderValue::Empty)
        || !matches!(msg.list_unsubscribe(), HeaderValue::Empty)
        || matches!(precedence.as_str(), "list" | "bulk" | "junk")
    {
        let why = if precedence.is_empty() {
            "list headers (List-Id / List-Unsubscribe)".to_owned()
        } else {
            format!("Precedence: {precedence}")
        };
        return MailKind::List(why);
    }
    if let Some(auto) = raw_header(msg, "Auto-Submitted")
        && !auto.eq_ignore_ascii_case("no")
    {
        return MailKind::AutoReply(format!("Auto-Submitted: {auto}"));
    }
    if precedence == "auto_reply" {
        return MailKind::AutoReply("Precedence: auto_reply".into());
    }
    for h in ["X-Autoreply", "X-Autorespond", "X-Autoresponder"] {
        if raw_header(msg, h).is_some() {
            return MailKind::AutoReply(format!("{h} header"));
        }
    }
    if raw_header(msg, "Return-Path").is_some_and(|r| r == "<>") {
        return MailKind::AutoReply("null return path (Return-Path: <>)".into());
    }
    MailKind::Person
}

/// A delivery status notification (RFC 3464): `multipart/report;
/// report-type=delivery-status`, or a `message/delivery-status` part.
fn bounce(msg: &Message<'_>) -> Option<Bounce> {
    let root_report = msg.root_part().content_type().is_some_and(|ct| {
        ct.ctype().eq_ignore_ascii_case("multipart")
            && ct
                .subtype()
                .is_some_and(|s| s.eq_ignore_ascii_case("report"))
            && ct
                .attribute("report-type")
                .is_some_and(|r| r.eq_ignore_ascii_case("delivery-status"))
    });
    let status_part = msg.parts.iter().find(|p| {
        p.content_type().is_some_and(|ct| {
            ct.ctype().eq_ignore_ascii_case("message")
                && ct
                    .subtype()
                    .is_some_and(|s| s.eq_ignore_ascii_case("delivery-status"))
        })
    });
    if !root_report && status_part.is_none() {
        return None;
    }
    let mut b = Bounce::default();
    if let Some(p) = status_part {
        let text = part_text(p, msg);
        let mut status = None;
        let mut diagnostic = None;
        for line in text.lines() {
            let Some((k, v)) = line.split_once(':') else {
                continue;
            };
            let v = v.trim();
            match k.trim().to_ascii_lowercase().as_str() {
                "action" => b.delayed = v.eq_ignore_ascii_case("delayed"),
                "status" => status = Some(v.to_owned()),
                "diagnostic-code" => diagnostic = Some(v.to_owned()),
                "final-recipient" | "original-recipient" if b.recipient.is_none() => {
                    let addr = v.rsplit(';').next().unwrap_or(v);
                    b.recipient = Some(super::normalize_address(addr));
                }
                _ => {}
            }
        }
        b.reason = match (status, diagnostic) {
            (Some(s), Some(d)) => format!("{s} {d}"),
            (Some(s), None) => s,
            (None, Some(d)) => d,
            (None, None) => "returned as undeliverable".into(),
        };
    }
    // The returned mail (or its headers) names the Message-ID that failed.
    for p in &msg.parts {
        let Some(ct) = p.content_type() else { continue };
        let sub = ct.subtype().unwrap_or_default().to_ascii_lowercase();
        let id = match (&p.body, sub.as_str()) {
            (PartType::Message(inner), _) => inner.message_id().map(normalize_id),
            (_, "rfc822-headers") | (_, "rfc822") => {
                let text = part_text(p, msg);
                MessageParser::default()
                    .parse(text.as_bytes())
                    .and_then(|m| m.message_id().map(normalize_id))
            }
            _ => None,
        };
        if id.is_some() {
            b.original_id = id;
            break;
        }
    }
    Some(b)
}

fn part_text(p: &mail_parser::MessagePart<'_>, msg: &Message<'_>) -> String {
    match &p.body {
        PartType::Text(t) | PartType::Html(t) => t.to_string(),
        PartType::Binary(b) | PartType::InlineBinary(b) => String::from_utf8_lossy(b).into_owned(),
        _ => String::from_utf8_lossy(
            msg.raw_message()
                .get(p.offset_body as usize..p.offset_end as usize)
                .unwrap_or_default(),
        )
        .into_owned(),
    }
}

/// Why the From address cannot be trusted, from the receiving server's
/// `Authentication-Results` (RFC 8601): DMARC failed, or SPF/DKIM failed with
/// nothing passing. Only the header of the server we trust counts (by
/// `authserv-id` when configured, else the topmost, which the last hop
/// added): a sender can write any such header lower down.
pub fn auth_failure(msg: &Message<'_>, authserv_id: Option<&str>) -> Option<String> {
    let results: Vec<String> = msg
        .header_values("Authentication-Results")
        .filter_map(|v| match v {
            HeaderValue::Text(t) => Some(t.to_string()),
            _ => None,
        })
        .collect();
    let trusted = match authserv_id {
        Some(id) => results.iter().find(|r| {
            r.trim()
                .split([';', ' '])
                .next()
                .is_some_and(|first| first.eq_ignore_ascii_case(id))
        }),
        None => results.first(),
    }?;
    let r = trusted.to_ascii_lowercase();
    let has = |m: &str| r.contains(m);
    if has("dmarc=fail") {
        return Some("DMARC failed for the From domain".into());
    }
    let passes = has("dkim=pass") || has("spf=pass") || has("dmarc=pass");
    if (has("spf=fail") || has("dkim=fail")) && !passes {
        return Some("SPF/DKIM failed for the sender".into());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(raw: &str) -> MailKind {
        classify(&MessageParser::default().parse(raw.as_bytes()).unwrap())
    }

    #[test]
    fn automatic_mail_is_recognised() {
        assert!(matches!(
            kind(
                "From: a@x.test\r\nAuto-Submitted: auto-replied\r\nSubject: Out of office\r\n\r\nAway"
            ),
            MailKind::AutoReply(_)
        ));
        assert_eq!(
            kind("From: a@x.test\r\nAuto-Submitted: no\r\n\r\nHi"),
            MailKind::Person
        );
        assert!(matches!(
            kind("From: a@x.test\r\nPrecedence: auto_reply\r\n\r\nAway"),
            MailKind::AutoReply(_)
        ));
        assert!(matches!(
            kind("From: a@x.test\r\nX-Autoreply: yes\r\n\r\nAway"),
            MailKind::AutoReply(_)
        ));
        assert!(matches!(
            kind("From: a@x.test\r\nList-Id: <news.x.test>\r\n\r\nNews"),
            MailKind::List(_)
        ));
        assert!(matches!(
            kind("From: a@x.test\r\nPrecedence: bulk\r\n\r\nNews"),
            MailKind::List(_)
        ));
        assert_eq!(
            kind("From: a@x.test\r\nSubject: help\r\n\r\nHi"),
            MailKind::Person
        );
    }

    #[test]
    fn bounce_names_the_failed_message() {
        let raw = "From: MAILER-DAEMON@mx.x.test\r\nTo: support@portico.test\r\nSubject: Undelivered Mail\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nCould not deliver.\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.x.test\r\n\r\nFinal-Recipient: rfc822; gone@x.test\r\nAction: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 user unknown\r\n--b\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: <m1.tok@portico.test>\r\nSubject: Re: help\r\n--b--\r\n";
        let MailKind::Bounce(b) = kind(raw) else {
            panic!("a DSN is a bounce")
        };
        assert_eq!(b.original_id.as_deref(), Some("m1.tok@portico.test"));
        assert_eq!(b.recipient.as_deref(), Some("gone@x.test"));
        assert!(b.reason.contains("5.1.1") && b.reason.contains("user unknown"));
        assert!(!b.delayed);
    }

    #[test]
    fn only_the_trusted_authentication_results_count() {
        fn parse(raw: &str) -> Message<'_> {
            MessageParser::default().parse(raw.as_bytes()).unwrap()
        }
        let spoof = parse(
            "Authentication-Results: mx.portico.test; spf=fail smtp.mailfrom=acme.test; dmarc=fail header.from=acme.test\r\nAuthentication-Results: evil.test; dmarc=pass\r\nFrom: ceo@acme.test\r\n\r\nx",
        );
        assert!(auth_failure(&spoof, None).is_some());
        assert!(auth_failure(&spoof, Some("mx.portico.test")).is_some());
        let forged = parse(
            "Authentication-Results: mx.portico.test; dmarc=pass\r\nAuthentication-Results: evil.test; dmarc=fail\r\nFrom: ceo@acme.test\r\n\r\nx",
        );
        assert!(auth_failure(&forged, Some("mx.portico.test")).is_none());
        let none = parse("From: a@acme.test\r\n\r\nx");
        assert!(auth_failure(&none, None).is_none());
    }
}
