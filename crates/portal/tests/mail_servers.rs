//! The email channel against real mail servers on loopback: a private
//! Dovecot (IMAP + LMTP) and an aiosmtpd SMTP server delivering into it,
//! both started by the test (see `mailservers/`). Skips loudly when they are
//! not installed, fails under CI.

mod common;
mod mailservers;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use futures_util::StreamExt;
use mail_parser::MessageParser;
use mailservers::{MailServers, PASSWORD};
use portico_model::email::DeliveryStatus;
use portico_model::*;
use portico_portal::mail::imap::{self, ImapConfig, ImapSecurity};
use portico_portal::mail::outbox::{self, Security, SmtpConfig};
use portico_portal::mail::{MailIdentity, MailSettings};
use portico_portal::seed::SeedSize;
use portico_portal::{Clock, store};
use serde_json::json;

const SUPPORT: &str = "support@portico.test";
const CUSTOMER: &str = "admin@acme.test";

fn identity() -> MailIdentity {
    MailIdentity::new(SUPPORT, "Portico Support")
}

async fn server() -> TestServer {
    TestServer::start_configured(SeedSize::TINY, |state| {
        outbox::configure(&state.store, &identity()).unwrap();
        state.mail = Some(Arc::new(MailSettings {
            identity: identity(),
            hook_secret: None,
        }));
    })
    .await
}

fn imap_config(m: &MailServers, user: &str) -> ImapConfig {
    ImapConfig {
        host: "127.0.0.1".into(),
        port: m.imap_port,
        security: ImapSecurity::None,
        username: user.into(),
        password: PASSWORD.into(),
        mailbox: "INBOX".into(),
        poll: Duration::from_secs(1),
    }
}

fn sender(m: &MailServers) -> outbox::Sender {
    let config = SmtpConfig {
        host: "127.0.0.1".into(),
        port: m.smtp_port,
        security: Security::None,
        username: None,
        password: None,
    };
    outbox::Sender::new(&config, identity()).unwrap()
}

/// A customer's mail client sending through the real SMTP server.
async fn customer_sends(m: &MailServers, raw: String, to: &str) {
    use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
    let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(m.smtp_port)
        .build();
    let envelope =
        lettre::address::Envelope::new(Some(CUSTOMER.parse().unwrap()), vec![to.parse().unwrap()])
            .unwrap();
    transport.send_raw(&envelope, raw.as_bytes()).await.unwrap();
}

async fn fetch(m: &MailServers, s: &TestServer) -> imap::FetchReport {
    let config = imap_config(m, SUPPORT);
    let mut session = imap::connect(&config).await.unwrap();
    let clock: Arc<dyn Clock> = s.clock.clone();
    let r = imap::fetch_new(&mut session, &config, &s.state.store, &clock, &identity())
        .await
        .unwrap();
    session.logout().await.unwrap();
    r
}

/// Every mail in `user`'s INBOX, raw.
async fn mailbox(m: &MailServers, user: &str) -> Vec<Vec<u8>> {
    let config = imap_config(m, user);
    let mut session = imap::connect(&config).await.unwrap();
    let mb = session.select("INBOX").await.unwrap();
    let mut out = Vec::new();
    if mb.exists > 0 {
        let mut stream = session.uid_fetch("1:*", "(UID BODY.PEEK[])").await.unwrap();
        while let Some(f) = stream.next().await {
            out.push(f.unwrap().body().unwrap().to_vec());
        }
    }
    out
}

fn count(s: &TestServer, sql: &str) -> i64 {
    s.state
        .store
        .read(|c| Ok(c.query_row(sql, [], |r| r.get(0))?))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_to_support_becomes_a_conversation_and_replies_thread_both_ways() {
    let Some(m) = MailServers::start() else {
        return;
    };
    m.add_user(SUPPORT);
    m.add_user(CUSTOMER);
    let s = server().await;
    let acme = s.acme();

    // 1. The customer writes to the support address through SMTP.
    customer_sends(&m, format!("From: Acme Admin <{CUSTOMER}>\r\nTo: {SUPPORT}\r\nSubject: Sync stopped\r\nMessage-ID: <c1@acme.test>\r\nDate: Sun, 15 Nov 2026 12:00:00 +0000\r\n\r\nOur sync stopped an hour ago.\r\n"), SUPPORT).await;
    let report = fetch(&m, &s).await;
    assert_eq!(report.fetched, 1);
    let convs = s.records::<Conversation>("data ->> '$.subject' = 'Sync stopped'");
    assert_eq!(convs.len(), 1, "one conversation from the mail");
    let conv = &convs[0];
    assert_eq!(conv.account_id, acme.id, "on the sender's account");
    assert_eq!(conv.channel, Channel::Email);

    // 2. The team has its signature; an agent answers in Portico; the outbox
    //    sends it over SMTP.
    let team = conv.team_id.expect("routed to a team");
    let admin = s.client_as("admin@portico.test").await;
    let resp = admin
        .put(s.url(&format!("/v1/mail/signatures/{team}")))
        .json(&json!({ "signature": "-- \nThe Frontline team at Portico" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    s.clock.advance(jiff::SignedDuration::from_secs(60));
    let agent = s.client_as("agent@portico.test").await;
    let resp = agent
        .post(s.url(&format!("/v1/conversations/{}/messages", conv.id)))
        .json(&json!({ "body": "Restarted it on our side.\nPlease check." }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let reply_id = json(resp).await["id"].as_str().unwrap().to_owned();
    let report = outbox::send_due(&s.state.store, &sender(&m), s.clock.now())
        .await
        .unwrap();
    assert_eq!(report.sent, 1, "{report:?}");
    let reply: Message = s
        .records::<Message>(&format!("id = '{reply_id}'"))
        .pop()
        .unwrap();
    assert_eq!(
        reply.delivery.as_ref().unwrap().status,
        DeliveryStatus::Sent
    );

    // 3. It arrives in the customer's mailbox, threaded under their mail.
    let inbox = mailbox(&m, CUSTOMER).await;
    assert_eq!(inbox.len(), 1, "the reply reached the customer's mailbox");
    let got = MessageParser::default().parse(&inbox[0]).unwrap();
    assert_eq!(got.subject(), Some("Re: Sync stopped"));
    assert_eq!(
        got.in_reply_to().as_text(),
        Some("c1@acme.test"),
        "In-Reply-To names the customer's mail"
    );
    let refs: Vec<String> = match got.references() {
        mail_parser::HeaderValue::Text(t) => vec![t.to_string()],
        mail_parser::HeaderValue::TextList(l) => l.iter().map(|t| t.to_string()).collect(),
        _ => vec![],
    };
    assert_eq!(refs, vec!["c1@acme.test"]);
    let our_id = got.message_id().unwrap().to_owned();
    assert_eq!(our_id, reply.email.as_ref().unwrap().message_id);
    assert_eq!(
        got.from().unwrap().first().unwrap().address(),
        Some(SUPPORT)
    );
    let reply_to = got
        .reply_to()
        .unwrap()
        .first()
        .unwrap()
        .address()
        .unwrap()
        .to_owned();
    assert!(
        reply_to.starts_with("support+c") && reply_to.ends_with("@portico.test"),
        "reply token in Reply-To: {reply_to}"
    );
    let text = got.body_text(0).unwrap();
    assert!(
        text.contains("Restarted it on our side.")
            && text.contains("The Frontline team at Portico"),
        "plain text with the team's signature: {text}"
    );
    assert!(
        got.body_html(0)
            .unwrap()
            .contains("The Frontline team at Portico"),
        "the HTML part too"
    );
    let from_name = got
        .from()
        .unwrap()
        .first()
        .unwrap()
        .name()
        .unwrap_or_default()
        .to_owned();
    assert!(
        from_name.contains("Portico Support"),
        "the agent at the desk: {from_name}"
    );
    assert!(got.text_body_count() >= 1 && got.html_body_count() >= 1);
    assert!(
        got.text_part(0).unwrap().is_text() && !got.text_part(0).unwrap().is_text_html(),
        "a real text/plain part"
    );

    // 4. The customer answers (to the Reply-To, quoting): same conversation.
    s.clock.advance(jiff::SignedDuration::from_secs(60));
    let conversations = count(&s, "SELECT count(*) FROM conversations");
    customer_sends(&m, format!("From: {CUSTOMER}\r\nTo: Portico Support <{reply_to}>\r\nSubject: Re: Sync stopped\r\nMessage-ID: <c2@acme.test>\r\nIn-Reply-To: <{our_id}>\r\nReferences: <c1@acme.test> <{our_id}>\r\n\r\nWorks again, thanks!\r\n\r\nOn Sun, 15 Nov 2026, Portico Support wrote:\r\n> Restarted it on our side.\r\n"), &reply_to).await;
    let report = fetch(&m, &s).await;
    assert_eq!(report.fetched, 1);
    let msgs = s.records::<Message>(&format!("conversation_id = '{}'", conv.id));
    assert_eq!(msgs.len(), 3, "mail, reply, answer in one conversation");
    assert_eq!(msgs[2].kind, MessageKind::Customer);
    assert_eq!(msgs[2].body, "Works again, thanks!");
    assert_eq!(
        count(&s, "SELECT count(*) FROM conversations"),
        conversations,
        "no second conversation"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_refusals_show_on_the_message() {
    let Some(m) = MailServers::start() else {
        return;
    };
    m.add_user(SUPPORT);
    let s = server().await;
    let acme = s.acme();
    s.state
        .store
        .write_raw(|c| {
            for d in ["refuse.test", "later.test"] {
                portico_portal::mail::sender::verify_domain(c, d, acme.id, 0)?;
            }
            Ok(())
        })
        .unwrap();
    let mut reply_ids = Vec::new();
    for who in ["bob@refuse.test", "liz@later.test"] {
        let raw = format!(
            "From: {who}\r\nTo: {SUPPORT}\r\nSubject: from {who}\r\nMessage-ID: <{who}>\r\n\r\nHello\r\n"
        );
        let received = portico_portal::mail::ingest::Received::new("test", raw.into_bytes());
        let out = s
            .state
            .store
            .write(store::Actor::SYSTEM, s.clock.now(), |w| {
                portico_portal::mail::ingest::receive(w, &identity(), &received)
            })
            .unwrap();
        let agent = s.client_as("agent@portico.test").await;
        let resp = agent
            .post(s.url(&format!(
                "/v1/conversations/{}/messages",
                out.conversation_id.unwrap()
            )))
            .json(&json!({ "body": "Answer" }))
            .send()
            .await
            .unwrap();
        reply_ids.push(json(resp).await["id"].as_str().unwrap().to_owned());
    }
    let report = outbox::send_due(&s.state.store, &sender(&m), s.clock.now())
        .await
        .unwrap();
    assert_eq!(
        (report.sent, report.retry, report.failed),
        (0, 1, 1),
        "{report:?}"
    );
    let refused: Message = s
        .records::<Message>(&format!("id = '{}'", reply_ids[0]))
        .pop()
        .unwrap();
    let d = refused.delivery.unwrap();
    assert_eq!(d.status, DeliveryStatus::Failed, "a 5xx is final");
    assert!(
        d.error.unwrap().contains("no such mailbox"),
        "the server's words reach the agent"
    );
    let later: Message = s
        .records::<Message>(&format!("id = '{}'", reply_ids[1]))
        .pop()
        .unwrap();
    let d = later.delivery.unwrap();
    assert_eq!(d.status, DeliveryStatus::Queued, "a 4xx is retried");
    assert_eq!(d.attempts, 1);
    assert!(d.error.unwrap().contains("try again later"));
    assert!(d.next_attempt_at.unwrap() > s.clock.now());
    // Not due yet: nothing is sent; after the backoff it is tried again.
    let report = outbox::send_due(&s.state.store, &sender(&m), s.clock.now())
        .await
        .unwrap();
    assert_eq!(report, outbox::SendReport::default());
    s.clock.advance(jiff::SignedDuration::from_secs(31));
    let report = outbox::send_due(&s.state.store, &sender(&m), s.clock.now())
        .await
        .unwrap();
    assert_eq!(report.retry, 1);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarting_the_fetcher_mid_mailbox_neither_loses_nor_duplicates() {
    let Some(m) = MailServers::start() else {
        return;
    };
    m.add_user(SUPPORT);
    let s = server().await;
    const FIRST: usize = 300;
    const LATER: usize = 20;
    let mail = |i: usize| {
        format!("From: {CUSTOMER}\r\nTo: {SUPPORT}\r\nSubject: Question {i}\r\nMessage-ID: <q{i}@acme.test>\r\n\r\nQuestion number {i}.\r\n").into_bytes()
    };
    mailservers::deliver_many(m.lmtp_port, SUPPORT, (0..FIRST).map(mail));
    let inbound = || count(&s, "SELECT count(*) FROM mail_inbound");
    let clock: Arc<dyn Clock> = s.clock.clone();
    let config = imap_config(&m, SUPPORT);

    let task = imap::spawn_fetcher(
        config.clone(),
        s.state.store.clone(),
        clock.clone(),
        identity(),
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while inbound() < 30 {
        assert!(
            std::time::Instant::now() < deadline,
            "the fetcher made no progress"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    task.abort();
    let _ = task.await;
    // A write already running finishes (it is one transaction); then nothing moves.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stopped_at = inbound();
    assert!(
        stopped_at < FIRST as i64,
        "stopped mid-mailbox ({stopped_at} of {FIRST}); the test needs a bigger mailbox otherwise"
    );
    let (_, last_uid) = imap::position(&s.state.store, &config.key())
        .unwrap()
        .unwrap();
    assert_eq!(
        last_uid as i64, stopped_at,
        "the position covers exactly the stored mail"
    );

    // Restart; more mail arrives while it waits in IDLE.
    let task = imap::spawn_fetcher(
        config.clone(),
        s.state.store.clone(),
        clock.clone(),
        identity(),
    );
    while inbound() < FIRST as i64 {
        assert!(
            std::time::Instant::now() < deadline,
            "the restarted fetcher stalled at {}",
            inbound()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    mailservers::deliver_many(m.lmtp_port, SUPPORT, (FIRST..FIRST + LATER).map(mail));
    while inbound() < (FIRST + LATER) as i64 {
        assert!(
            std::time::Instant::now() < deadline,
            "mail delivered during IDLE did not arrive ({})",
            inbound()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    task.abort();
    let _ = task.await;
    let total = (FIRST + LATER) as i64;
    assert_eq!(inbound(), total, "nothing twice");
    assert_eq!(
        count(&s, "SELECT count(DISTINCT dedupe_key) FROM mail_inbound"),
        total
    );
    assert_eq!(
        count(
            &s,
            "SELECT count(*) FROM conversations WHERE data ->> '$.subject' LIKE 'Question %'"
        ),
        total,
        "nothing lost: one conversation per mail"
    );

    // The server renumbers the mailbox (new UIDVALIDITY): everything is read
    // again and recognised, nothing is added.
    s.state
        .store
        .write_raw(|c| Ok(c.execute("UPDATE mailbox_state SET uidvalidity = uidvalidity + 1", [])?))
        .unwrap();
    let report = fetch(&m, &s).await;
    assert_eq!(
        report.fetched as i64, total,
        "the whole mailbox is read again"
    );
    assert_eq!(
        inbound(),
        total,
        "and every mail is recognised as already received"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_size_mail_in_the_mailbox_is_read_by_its_head() {
    let Some(m) = MailServers::start() else {
        return;
    };
    m.add_user(SUPPORT);
    let s = server().await;
    let mut raw = format!("From: {CUSTOMER}\r\nTo: {SUPPORT}\r\nSubject: Dump\r\nMessage-ID: <dump@acme.test>\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nCore dump attached.\r\n--b\r\nContent-Type: application/octet-stream; name=\"core\"\r\nContent-Transfer-Encoding: base64\r\n\r\n").into_bytes();
    while raw.len() < 50 * 1024 * 1024 {
        raw.extend_from_slice(
            b"QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB\r\n",
        );
    }
    raw.extend_from_slice(b"--b--\r\n");
    m.deliver(SUPPORT, &raw);
    let report = fetch(&m, &s).await;
    assert_eq!((report.fetched, report.truncated), (1, 1));
    let conv = s
        .records::<Conversation>("data ->> '$.subject' = 'Dump'")
        .pop()
        .expect("the mail became a conversation");
    let msg = s
        .records::<Message>(&format!("conversation_id = '{}'", conv.id))
        .remove(0);
    assert_eq!(msg.body, "Core dump attached.");
    assert!(
        msg.email
            .unwrap()
            .notes
            .iter()
            .any(|n| n.contains("over the 30 MB limit"))
    );
    s.stop().await;
}

/// Inviting a user sends the invitation through the outbox and a real SMTP
/// server into the invitee's mailbox, with a link that signs them in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invitation_reaches_the_invitees_mailbox() {
    let Some(m) = MailServers::start() else {
        return;
    };
    const INVITEE: &str = "new.hire@acme.test";
    m.add_user(INVITEE);
    let s = server().await;
    let acme = s.acme();
    let admin = s.client_as(CUSTOMER).await;
    let resp = admin
        .post(s.url(&format!("/v1/accounts/{}/users", acme.id)))
        .json(&json!({ "email": INVITEE, "name": "New Hire", "role": "customer_member" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let report = outbox::send_due(&s.state.store, &sender(&m), s.clock.now())
        .await
        .unwrap();
    assert_eq!(report.sent, 1, "the invitation went out: {report:?}");
    let inbox = mailbox(&m, INVITEE).await;
    assert_eq!(inbox.len(), 1, "one mail in the invitee's mailbox");
    // The text part may be quoted-printable: undo its soft breaks and `=3D`.
    let raw = String::from_utf8_lossy(&inbox[0])
        .replace("=\r\n", "")
        .replace("=3D", "=");
    assert!(
        raw.contains("Subject: Ada Acme invited you to Acme Corp on Portico"),
        "{raw}"
    );
    assert!(raw.contains("Auto-Submitted: auto-generated"), "{raw}");
    let token = raw
        .split("#token=")
        .nth(1)
        .and_then(|t| t.split_whitespace().next())
        .expect("the mail carries the link")
        .to_owned();
    let resp = reqwest::Client::new()
        .post(s.url("/v1/auth/invitations/accept"))
        .json(&json!({ "token": token, "password": "a long enough password" }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        200,
        "the link from the real mail signs the person in"
    );
    assert_eq!(
        count(
            &s,
            "SELECT count(*) FROM mail_outbound WHERE kind = 'notice' AND sent_at IS NOT NULL"
        ),
        1
    );
}
