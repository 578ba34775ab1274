//! Raw RFC 822 bytes to the parts Portico keeps, with mail-parser (the
//! MIME parser of the Stalwart mail server: lenient with broken mail,
//! decodes every charset through encoding_rs). Nothing here touches storage.

use std::collections::HashMap;

use mail_parser::{HeaderValue, MessageParser, MimeHeaders, PartType};

use super::classify::{self, MailKind};
use super::normalize_address;

/// A mail as Portico sees it.
#[derive(Debug, Clone)]
pub struct Parsed {
    /// `Message-ID` without brackets; `None` when the mail has none.
    pub message_id: Option<String>,
    /// Sender address (lowercased) and display name.
    pub from: Option<(String, String)>,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    /// Envelope recipients left by the receiving server (`Delivered-To`,
    /// `X-Original-To`): where a reply token in `support+token@` survives
    /// even when the customer's client rewrote To.
    pub delivered_to: Vec<String>,
    pub subject: String,
    pub in_reply_to: Vec<String>,
    pub references: Vec<String>,
    /// The new text, quoted history cut off.
    pub text: String,
    /// The quoted history, for the desktop to fold.
    pub quoted: Option<String>,
    /// The HTML part as sent: sanitize with [`sanitize_html`] before storing.
    pub html: Option<String>,
    pub attachments: Vec<FilePart>,
    pub kind: MailKind,
    /// Why the sender's address cannot be trusted (failed SPF/DKIM/DMARC as
    /// reported by the receiving server), if so.
    pub auth_failure: Option<String>,
    /// Problems found while parsing, in words.
    pub notes: Vec<String>,
}

/// One attached (or inline) file.
#[derive(Debug, Clone)]
pub struct FilePart {
    pub filename: String,
    pub content_type: String,
    pub content_id: Option<String>,
    pub inline: bool,
    pub bytes: Vec<u8>,
}

/// Parses `raw`. `None` only when the bytes are not a mail at all (no
/// header could be read); broken MIME inside a mail still parses, with notes.
pub fn parse(raw: &[u8], authserv_id: Option<&str>) -> Option<Parsed> {
    let msg = MessageParser::default().parse(raw)?;
    if msg.headers().is_empty() {
        return None;
    }
    let mut notes = Vec::new();
    let from = msg.from().and_then(|a| a.first()).and_then(|a| {
        let addr = normalize_address(a.address()?);
        (!addr.is_empty()).then(|| (addr, a.name().unwrap_or_default().trim().to_owned()))
    });
    let addresses = |a: Option<&mail_parser::Address<'_>>| -> Vec<String> {
        a.map(|a| {
            a.iter()
                .filter_map(|x| x.address().map(normalize_address))
                .collect()
        })
        .unwrap_or_default()
    };
    let mut delivered_to = Vec::new();
    for name in ["Delivered-To", "X-Original-To", "Envelope-To"] {
        for v in msg.header_values(name) {
            if let Some(t) = header_text(v) {
                delivered_to.push(normalize_address(&t));
            }
        }
    }
    let body_text = msg.body_text(0).map(|t| t.into_owned()).unwrap_or_default();
    let (text, quoted) = split_quoted(&body_text);
    let html = msg.body_html(0).and_then(|h| {
        // body_html renders a text-only mail as HTML too; keep real HTML only.
        msg.html_body
            .first()
            .and_then(|&id| msg.part(id))
            .filter(|p| matches!(p.body, PartType::Html(_)))
            .map(|_| h.into_owned())
    });
    let mut attachments = Vec::new();
    for (n, part) in msg.attachments().enumerate() {
        let content_type = part
            .content_type()
            .map(|ct| match ct.subtype() {
                Some(sub) => format!("{}/{}", ct.ctype(), sub),
                None => ct.ctype().to_owned(),
            })
            .unwrap_or_else(|| "application/octet-stream".into())
            .to_lowercase();
        let bytes = match &part.body {
            PartType::Message(_) => raw
                .get(part.offset_body as usize..part.offset_end as usize)
                .unwrap_or_default()
                .to_vec(),
            _ => part.contents().to_vec(),
        };
        let default_name = if content_type == "message/rfc822" {
            format!("attached-message-{}.eml", n + 1)
        } else {
            format!("attachment-{}", n + 1)
        };
        attachments.push(FilePart {
            filename: clean_filename(part.attachment_name().unwrap_or(&default_name)),
            content_type,
            content_id: part.content_id().map(normalize_address),
            inline: part.content_disposition().is_some_and(|d| d.is_inline())
                || (part.content_id().is_some()
                    && part
                        .content_disposition()
                        .is_none_or(|d| !d.is_attachment())),
            bytes,
        });
    }
    if msg.parts.iter().any(|p| p.is_encoding_problem) {
        notes.push(
            "Part of this mail was badly encoded; what could be decoded is shown.".to_owned(),
        );
    }
    let kind = classify::classify(&msg);
    let auth_failure = classify::auth_failure(&msg, authserv_id);
    Some(Parsed {
        message_id: msg.message_id().map(normalize_id).filter(|m| !m.is_empty()),
        from,
        to: addresses(msg.to()),
        cc: addresses(msg.cc()),
        delivered_to,
        subject: msg.subject().unwrap_or_default().trim().to_owned(),
        in_reply_to: id_list(msg.in_reply_to()),
        references: id_list(msg.references()),
        text,
        quoted,
        html,
        attachments,
        kind,
        auth_failure,
        notes,
    })
}

/// A Message-ID without brackets or surrounding space.
pub fn normalize_id(raw: &str) -> String {
    raw.trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim()
        .to_owned()
}

fn header_text(v: &HeaderValue<'_>) -> Option<String> {
    match v {
        HeaderValue::Text(t) => Some(t.to_string()),
        HeaderValue::TextList(l) => l.first().map(|t| t.to_string()),
        HeaderValue::Address(a) => a.first().and_then(|a| a.address()).map(str::to_owned),
        _ => None,
    }
}

fn id_list(v: &HeaderValue<'_>) -> Vec<String> {
    match v {
        HeaderValue::Text(t) => vec![normalize_id(t)],
        HeaderValue::TextList(l) => l.iter().map(|t| normalize_id(t)).collect(),
        _ => vec![],
    }
}

/// A file name safe to show and to offer as a download name: no path, no
/// control characters, bounded length.
fn clean_filename(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let cleaned: String = base
        .chars()
        .filter(|c| !c.is_control() && *c != '"')
        .take(200)
        .collect();
    let cleaned = cleaned.trim().trim_start_matches('.').to_owned();
    if cleaned.is_empty() {
        "attachment".into()
    } else {
        cleaned
    }
}

/// Splits a plain-text body into the new text and the quoted history below
/// it: from an "On … wrote:" line, an Outlook "-----Original Message-----" or
/// "From: … " block after a rule, or a run of `>` lines that lasts to the end.
/// Text that is all quote is kept whole (nothing would be left to show).
pub fn split_quoted(body: &str) -> (String, Option<String>) {
    let lines: Vec<&str> = body.lines().collect();
    let is_quote = |l: &str| l.trim_start().starts_with('>');
    let mut cut = None;
    for (i, line) in lines.iter().enumerate() {
        let t = line.trim();
        let next_quoted = lines
            .get(i + 1)
            .is_some_and(|l| is_quote(l) || l.trim().is_empty());
        if (t.starts_with("On ") && t.ends_with("wrote:") && next_quoted)
            || t.starts_with("-----Original Message-----")
            || (t.starts_with("________________")
                && lines.get(i + 1).is_some_and(|l| l.starts_with("From:")))
        {
            cut = Some(i);
            break;
        }
        if is_quote(line)
            && lines[i..]
                .iter()
                .all(|l| is_quote(l) || l.trim().is_empty())
        {
            cut = Some(i);
            break;
        }
    }
    match cut {
        Some(i) if lines[..i].iter().any(|l| !l.trim().is_empty()) => (
            lines[..i].join("\n").trim_end().to_owned(),
            Some(lines[i..].join("\n")),
        ),
        _ => (lines.join("\n").trim_end().to_owned(), None),
    }
}

/// Sanitizes mail HTML with ammonia before anyone renders it: scripts,
/// event handlers, forms, `style` (which can load URLs) and every element
/// or attribute not on ammonia's safe list are removed; links get
/// `rel="noopener noreferrer"`; images show only when they are attachments of
/// this mail (`cid:` rewritten to `/v1/attachments/{id}`), never from remote
/// servers (tracking pixels, IP leaks).
pub fn sanitize_html(html: &str, cid_to_url: &HashMap<String, String>) -> String {
    let cids = cid_to_url.clone();
    ammonia::Builder::default()
        .add_url_schemes(["cid"])
        .attribute_filter(move |element, attribute, value| {
            let is_cid = value.trim().to_ascii_lowercase().starts_with("cid:");
            match (element, attribute) {
                ("img", "src") if is_cid => {
                    let key = normalize_address(&value.trim()[4..]);
                    cids.get(&key).map(|u| u.clone().into())
                }
                ("img", "src") => None,
                _ if is_cid => None,
                _ => Some(value.into()),
            }
        })
        .clean(html)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_mail_parts() {
        let raw = b"From: Ada Lovelace <Ada@Acme.test>\r\nTo: support@portico.test\r\nSubject: Export fails\r\nMessage-ID: <abc@acme.test>\r\nIn-Reply-To: <x1@portico.test>\r\nReferences: <x0@portico.test> <x1@portico.test>\r\n\r\nHello,\r\nexports fail.\r\n\r\nOn Mon, 1 Jan 2026, Support wrote:\r\n> earlier answer\r\n> more\r\n";
        let p = parse(raw, None).unwrap();
        assert_eq!(
            p.from,
            Some(("ada@acme.test".into(), "Ada Lovelace".into()))
        );
        assert_eq!(p.message_id.as_deref(), Some("abc@acme.test"));
        assert_eq!(p.in_reply_to, vec!["x1@portico.test"]);
        assert_eq!(p.references, vec!["x0@portico.test", "x1@portico.test"]);
        assert_eq!(p.text, "Hello,\nexports fail.");
        assert!(p.quoted.unwrap().contains("> earlier answer"));
        assert_eq!(p.kind, MailKind::Person);
    }

    #[test]
    fn charsets_and_encoded_words_decode() {
        let raw = "From: =?ISO-8859-1?Q?J=F6rg?= <jorg@acme.test>\r\nSubject: =?UTF-8?B?w5xiZXJ3ZWlzdW5n?=\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nGr=FC=DFe\r\n";
        let p = parse(raw.as_bytes(), None).unwrap();
        assert_eq!(p.from.unwrap().1, "Jörg");
        assert_eq!(p.subject, "Überweisung");
        assert_eq!(p.text, "Grüße");
    }

    #[test]
    fn html_is_sanitized_and_cid_images_point_at_attachments() {
        let html = r#"<p onclick="steal()">Hi<script>alert(1)</script></p><img src="cid:logo@x"><img src="https://track.example/p.gif"><a href="javascript:alert(1)">x</a><a href="https://ok.example">ok</a><style>body{background:url(https://t.example)}</style>"#;
        let mut cids = HashMap::new();
        cids.insert("logo@x".to_owned(), "/v1/attachments/1".to_owned());
        let out = sanitize_html(html, &cids);
        assert!(
            !out.contains("script") && !out.contains("onclick") && !out.contains("alert"),
            "{out}"
        );
        assert!(
            !out.contains("track.example") && !out.contains("t.example"),
            "{out}"
        );
        assert!(out.contains(r#"src="/v1/attachments/1""#), "{out}");
        assert!(
            out.contains("https://ok.example") && out.contains("noopener"),
            "{out}"
        );
    }

    #[test]
    fn quoted_history_is_split_only_when_something_new_is_left() {
        assert_eq!(split_quoted("> only a quote\n> here").1, None);
        let (text, quoted) = split_quoted("Thanks!\n\n-----Original Message-----\nFrom: x");
        assert_eq!(text, "Thanks!");
        assert!(quoted.unwrap().starts_with("-----Original"));
        assert_eq!(split_quoted("No quote here.").1, None);
    }

    #[test]
    fn not_a_mail_is_none_and_broken_mime_still_parses() {
        assert!(parse(b"", None).is_none());
        let raw = b"From: a@acme.test\r\nSubject: broken\r\nContent-Type: multipart/mixed; boundary=\"zz\"\r\n\r\n--zz\r\nContent-Type: text/plain\r\n\r\nstill readable\r\n--zz\r\nContent-Type: application/pdf; name=\"x.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!not base64!!!";
        let p = parse(raw, None).unwrap();
        assert!(p.text.contains("still readable"));
        assert_eq!(p.attachments.len(), 1);
    }

    #[test]
    fn filenames_lose_paths_and_control_characters() {
        assert_eq!(clean_filename("../../etc/passwd"), "passwd");
        assert_eq!(clean_filename("C:\\x\\evil\u{7}.exe"), "evil.exe");
        assert_eq!(clean_filename(".."), "attachment");
    }
}
