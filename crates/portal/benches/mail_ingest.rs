//! Ingest rate of a support mailbox next to the raw IMAP fetch rate.
//!
//! ```text
//! cargo bench -p portico-portal --bench mail_ingest -- [--mails N]
//! ```
//!
//! Needs Dovecot (dovecot-imapd, dovecot-lmtpd) and python3-aiosmtpd, as
//! the tests do; starts them privately on loopback. Fills a mailbox with N
//! mails (default 10,000; ~3 KB multipart/alternative each; 80 % new
//! questions from customer users, 20 % replies threaded by In-Reply-To, a
//! few auto-replies), then measures in the same run:
//!
//! 1. the floor: raw IMAP fetch of every mail (`UID FETCH` of `BODY.PEEK[]`
//!    in batches of 50, exactly the fetcher's commands), bytes discarded;
//! 2. for the breakdown, parsing and sanitizing those bytes alone;
//! 3. ingest: `mail::imap::fetch_new` into a seeded store on disk — fetch,
//!    parse, sanitize, thread, match the sender, write the conversation or
//!    message through the write path with routing/SLA/assignment, and move
//!    the mailbox position, one transaction per mail.

#[path = "../tests/mailservers/mod.rs"]
mod mailservers;

use std::sync::Arc;
use std::time::Instant;

use futures_util::StreamExt;
use mailservers::{MailServers, PASSWORD};
use portico_portal::mail::MailIdentity;
use portico_portal::mail::imap::{self, ImapConfig, ImapSecurity};
use portico_portal::seed::{self, SeedSize};
use portico_portal::{Clock, SystemClock};

const SUPPORT: &str = "support@portico.test";

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn mail(i: usize, users: &[String]) -> Vec<u8> {
    let from = &users[i % users.len()];
    let body = "Since this morning the export of our monthly report stops at 80 % and the page shows an error. We tried two browsers and cleared the cache. Could you have a look? The workspace is the main one; three colleagues see the same. ".repeat(3);
    let (subject, threading, auto) = if i % 5 == 4 && i >= 5 {
        (
            format!("Re: Export stops {}", i - 4),
            format!(
                "In-Reply-To: <bench{}@acme.test>\r\nReferences: <bench{}@acme.test>\r\n",
                i - 4,
                i - 4
            ),
            "",
        )
    } else if i.is_multiple_of(97) {
        (
            format!("Out of office {i}"),
            String::new(),
            "Auto-Submitted: auto-replied\r\n",
        )
    } else {
        (format!("Export stops {i}"), String::new(), "")
    };
    format!(
        "From: {from}\r\nTo: {SUPPORT}\r\nSubject: {subject}\r\nMessage-ID: <bench{i}@acme.test>\r\nDate: Sun, 15 Nov 2026 12:00:00 +0000\r\n{threading}{auto}MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"alt\"\r\n\r\n--alt\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n\r\nOn Sat, 14 Nov 2026, Support wrote:\r\n> Earlier answer.\r\n--alt\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<div><p>{body}</p><blockquote>Earlier answer.</blockquote><img src=\"https://tracker.example/p.gif\"></div>\r\n--alt--\r\n"
    )
    .into_bytes()
}

fn main() {
    let n = arg("--mails", 10_000);
    let m = MailServers::start().expect("the benchmark needs dovecot and python3-aiosmtpd");
    m.add_user(SUPPORT);
    let runtime = tokio::runtime::Runtime::new().unwrap();

    let dir = tempfile::tempdir().unwrap();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let state = portico_portal::open_state(&dir.path().join("portal.db"), clock.clone()).unwrap();
    seed::seed(&state.store, SeedSize::TINY, clock.now()).unwrap();
    let users: Vec<String> = state
        .store
        .read(|c| {
            let mut stmt =
                c.prepare("SELECT email FROM users WHERE account_id IS NOT NULL ORDER BY id")?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            Ok(rows.collect::<rusqlite::Result<Vec<String>>>()?)
        })
        .unwrap();
    let identity = MailIdentity::new(SUPPORT, "Portico Support");
    portico_portal::mail::outbox::configure(&state.store, &identity).unwrap();

    let t = Instant::now();
    mailservers::deliver_many(m.lmtp_port, SUPPORT, (0..n).map(|i| mail(i, &users)));
    let bytes: usize = (0..n).map(|i| mail(i, &users).len()).sum();
    println!(
        "Mailbox: {n} mails, {:.1} MB, delivered over LMTP in {:.1} s",
        bytes as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );

    let config = ImapConfig {
        host: "127.0.0.1".into(),
        port: m.imap_port,
        security: ImapSecurity::None,
        username: SUPPORT.into(),
        password: PASSWORD.into(),
        mailbox: "INBOX".into(),
        poll: std::time::Duration::from_secs(60),
    };
    runtime.block_on(async {
        // 1. Floor: the fetcher's IMAP commands, bytes dropped.
        let mut session = imap::connect(&config).await.unwrap();
        let t = Instant::now();
        session.select("INBOX").await.unwrap();
        let mut uids = Vec::new();
        {
            let mut s = session.uid_fetch("1:*", "(UID RFC822.SIZE)").await.unwrap();
            while let Some(f) = s.next().await {
                uids.push(f.unwrap().uid.unwrap());
            }
        }
        let mut bodies: Vec<Vec<u8>> = Vec::with_capacity(n);
        for chunk in uids.chunks(50) {
            let set: Vec<String> = chunk.iter().map(|u| u.to_string()).collect();
            let mut s = session
                .uid_fetch(set.join(","), "(UID BODY.PEEK[])")
                .await
                .unwrap();
            while let Some(f) = s.next().await {
                bodies.push(f.unwrap().body().unwrap().to_vec());
            }
        }
        let raw = t.elapsed();
        session.logout().await.unwrap();
        assert_eq!(bodies.len(), n);

        // For the breakdown: parsing and sanitizing alone, no storage.
        let t = Instant::now();
        for b in &bodies {
            let p = portico_portal::mail::parse::parse(b, None).unwrap();
            if let Some(h) = &p.html {
                std::hint::black_box(portico_portal::mail::parse::sanitize_html(
                    h,
                    &Default::default(),
                ));
            }
            std::hint::black_box(p);
        }
        let parse = t.elapsed();
        drop(bodies);

        // 3. Ingest through the desk.
        let mut session = imap::connect(&config).await.unwrap();
        let t = Instant::now();
        let report = imap::fetch_new(&mut session, &config, &state.store, &clock, &identity)
            .await
            .unwrap();
        let ingest = t.elapsed();
        assert_eq!(report.fetched, n);
        let dispositions: Vec<(String, i64)> = state
            .store
            .read(|c| {
                let mut stmt = c.prepare(
                    "SELECT disposition, count(*) FROM mail_inbound GROUP BY 1 ORDER BY 1",
                )?;
                let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
                Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
            })
            .unwrap();
        println!("Dispositions: {dispositions:?}");
        println!();
        println!("| what | mails | seconds | mails/s |");
        println!("|---|---|---|---|");
        println!(
            "| raw IMAP fetch (floor) | {n} | {:.2} | {:.0} |",
            raw.as_secs_f64(),
            n as f64 / raw.as_secs_f64()
        );
        println!(
            "| parse + sanitize only (no storage) | {n} | {:.2} | {:.0} |",
            parse.as_secs_f64(),
            n as f64 / parse.as_secs_f64()
        );
        println!(
            "| ingest (fetch + parse + write path) | {n} | {:.2} | {:.0} |",
            ingest.as_secs_f64(),
            n as f64 / ingest.as_secs_f64()
        );
        println!(
            "Ingest / raw fetch = {:.2}",
            (n as f64 / ingest.as_secs_f64()) / (n as f64 / raw.as_secs_f64())
        );
    });
}
