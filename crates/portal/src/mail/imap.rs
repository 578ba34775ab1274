//! Support mailboxes over IMAP (async-imap on tokio).
//!
//! The fetcher keeps, per mailbox, the `UIDVALIDITY` and the highest UID it
//! has stored (`mailbox_state`). Each mail is ingested in its own write
//! transaction that also moves `last_uid`, so a fetcher stopped at any point
//! resumes after the last mail it stored: nothing skipped, nothing taken
//! twice. If the server renumbers the mailbox (a new `UIDVALIDITY`), the
//! whole mailbox is read again and the Message-ID check in `ingest` drops
//! what was already received. Mail is read with `BODY.PEEK[]` and never
//! flagged, moved or deleted: the mailbox stays the untouched original.
//!
//! New mail is awaited with IDLE where the server offers it (re-issued every
//! [`IDLE_RENEW`], under the 30-minute limit of RFC 2177), by polling
//! otherwise. Connection failures retry with a capped backoff.

use std::sync::Arc;
use std::time::Duration;

use async_imap::Session;
use futures_util::StreamExt;
use rusqlite::{OptionalExtension, params};
use tokio::io::{AsyncRead, AsyncWrite};

use super::ingest::{self, Received};
use super::{HEAD_BYTES, MAX_MESSAGE_BYTES, MailIdentity};
use crate::clock::Clock;
use crate::error::PortalError;
use crate::store::Store;

/// How long one IDLE lasts before it is renewed.
pub const IDLE_RENEW: Duration = Duration::from_secs(25 * 60);

/// Mails fetched per `UID FETCH` command, at most.
const FETCH_BATCH: usize = 50;

/// Bytes fetched per `UID FETCH` command, at most (one mail may exceed it
/// alone): bounds memory when a mailbox holds many large mails.
const FETCH_BATCH_BYTES: usize = 32 * 1024 * 1024;

/// Splits `(uid, size)` pairs into fetch batches by count and bytes. A mail
/// over [`MAX_MESSAGE_BYTES`] counts as the head that is read of it.
fn batches(pending: &[(u32, u32)]) -> Vec<&[(u32, u32)]> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0usize);
    for (i, &(_, size)) in pending.iter().enumerate() {
        let size = size as usize;
        let read = if size > MAX_MESSAGE_BYTES {
            HEAD_BYTES
        } else {
            size
        };
        if i > start && (i - start == FETCH_BATCH || bytes + read > FETCH_BATCH_BYTES) {
            out.push(&pending[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += read;
    }
    if start < pending.len() {
        out.push(&pending[start..]);
    }
    out
}

/// Why a fetch pass stopped.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("IMAP: {0}")]
    Imap(#[from] async_imap::error::Error),
    #[error("connecting: {0}")]
    Io(#[from] std::io::Error),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("the server gave no UIDVALIDITY for {0}")]
    NoUidValidity(String),
    #[error("storing mail: {0}")]
    Store(#[from] PortalError),
}

impl FetchError {
    /// Stable code for logs and tests.
    pub fn code(&self) -> &'static str {
        match self {
            FetchError::Imap(_) => "imap",
            FetchError::Io(_) => "io",
            FetchError::Tls(_) => "tls",
            FetchError::NoUidValidity(_) => "no_uidvalidity",
            FetchError::Store(_) => "store",
        }
    }
}

/// Transport security towards the IMAP server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ImapSecurity {
    /// TLS from the first byte (port 993).
    Tls,
    /// No encryption: only for a server on the same machine or in tests.
    None,
}

/// One support mailbox.
#[derive(Debug, Clone)]
pub struct ImapConfig {
    pub host: String,
    pub port: u16,
    pub security: ImapSecurity,
    pub username: String,
    pub password: String,
    pub mailbox: String,
    /// Poll interval when the server has no IDLE.
    pub poll: Duration,
}

impl ImapConfig {
    /// The key of this mailbox's position in `mailbox_state`.
    pub fn key(&self) -> String {
        format!(
            "imap:{}@{}:{}/{}",
            self.username, self.host, self.port, self.mailbox
        )
    }
}

/// What one pass fetched.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct FetchReport {
    /// Mails read from the server and stored (whatever their disposition).
    pub fetched: usize,
    /// Of those, mails over the size limit read by their head only.
    pub truncated: usize,
}

/// The stored position of a mailbox: (uidvalidity, last_uid).
pub fn position(store: &Store, key: &str) -> crate::error::Result<Option<(u32, u32)>> {
    store.read(|c| {
        Ok(c.query_row(
            "SELECT uidvalidity, last_uid FROM mailbox_state WHERE mailbox = ?1",
            [key],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?)
    })
}

/// Connects and signs in.
pub async fn connect(config: &ImapConfig) -> Result<Session<Box<dyn Stream>>, FetchError> {
    let tcp = tokio::net::TcpStream::connect((config.host.as_str(), config.port)).await?;
    tcp.set_nodelay(true)?;
    let stream: Box<dyn Stream> = match config.security {
        ImapSecurity::None => Box::new(tcp),
        ImapSecurity::Tls => Box::new(tls(&config.host, tcp).await?),
    };
    let mut client = async_imap::Client::new(stream);
    client
        .read_response()
        .await?
        .ok_or(FetchError::Imap(async_imap::error::Error::ConnectionLost))?;
    client
        .login(&config.username, &config.password)
        .await
        .map_err(|(e, _)| FetchError::Imap(e))
}

/// A byte stream async-imap can run over (plain TCP or TLS).
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug> Stream for T {}

async fn tls(
    host: &str,
    tcp: tokio::net::TcpStream,
) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>, FetchError> {
    use tokio_rustls::rustls;
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| FetchError::Tls(e.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from(host.to_owned())
        .map_err(|e| FetchError::Tls(format!("{host}: {e}")))?;
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await?)
}

/// Fetches every mail after the stored position into the desk, in UID
/// order, each in its own transaction with the position. Selects the
/// mailbox itself, so it can follow an IDLE.
pub async fn fetch_new<T: Stream>(
    session: &mut Session<T>,
    config: &ImapConfig,
    store: &Arc<Store>,
    clock: &Arc<dyn Clock>,
    identity: &MailIdentity,
) -> Result<FetchReport, FetchError> {
    let key = config.key();
    let mailbox = session.select(&config.mailbox).await?;
    let validity = mailbox
        .uid_validity
        .ok_or_else(|| FetchError::NoUidValidity(config.mailbox.clone()))?;
    let last = match position(store, &key)? {
        Some((v, last)) if v == validity => last,
        Some((v, _)) => {
            tracing::warn!(mailbox = %key, old = v, new = validity, "UIDVALIDITY changed: reading the whole mailbox again; mail already received is recognised by Message-ID");
            0
        }
        None => 0,
    };
    let mut report = FetchReport::default();
    if mailbox.exists == 0 {
        return Ok(report);
    }
    // UIDs and sizes of everything newer. `n:*` always includes the highest
    // UID even when it is below n, hence the filter.
    let mut pending: Vec<(u32, u32)> = {
        let mut out = Vec::new();
        let mut stream = session
            .uid_fetch(format!("{}:*", last.saturating_add(1)), "(UID RFC822.SIZE)")
            .await?;
        while let Some(f) = stream.next().await {
            let f = f?;
            if let Some(uid) = f.uid.filter(|&u| u > last) {
                out.push((uid, f.size.unwrap_or(0)));
            }
        }
        out
    };
    pending.sort_unstable();
    if !pending.is_empty() {
        tracing::info!(mailbox = %key, new = pending.len(), "fetching new mail");
    }
    for batch in batches(&pending) {
        let (big, small): (Vec<_>, Vec<_>) = batch
            .iter()
            .partition(|(_, size)| *size as usize > MAX_MESSAGE_BYTES);
        let mut bodies: Vec<(u32, Vec<u8>, usize)> = Vec::with_capacity(batch.len());
        for (set, query) in [
            (small, "(UID BODY.PEEK[])".to_owned()),
            (big, format!("(UID BODY.PEEK[]<0.{HEAD_BYTES}>)")),
        ] {
            if set.is_empty() {
                continue;
            }
            let uids: Vec<String> = set.iter().map(|(u, _)| u.to_string()).collect();
            let sizes: std::collections::HashMap<u32, u32> = set.iter().copied().collect();
            let mut stream = session.uid_fetch(uids.join(","), &query).await?;
            while let Some(f) = stream.next().await {
                let f = f?;
                if let (Some(uid), Some(body)) = (f.uid, f.body()) {
                    let size = sizes.get(&uid).copied().unwrap_or(0) as usize;
                    bodies.push((uid, body.to_vec(), size.max(body.len())));
                }
            }
        }
        bodies.sort_unstable_by_key(|(uid, _, _)| *uid);
        for (uid, raw, size) in bodies {
            let received = Received {
                source: key.clone(),
                raw,
                size,
            };
            if received.truncated() {
                report.truncated += 1;
            }
            store_one(store, clock, identity, &key, validity, uid, received).await?;
            report.fetched += 1;
        }
    }
    Ok(report)
}

/// Ingests one mail and moves the position in one transaction. If placing
/// the mail fails, it is logged as rejected (bytes kept) and the position
/// still moves, so one bad mail cannot stop the mailbox.
async fn store_one(
    store: &Arc<Store>,
    clock: &Arc<dyn Clock>,
    identity: &MailIdentity,
    key: &str,
    validity: u32,
    uid: u32,
    mail: Received,
) -> Result<(), FetchError> {
    let (store, identity, key) = (store.clone(), identity.clone(), key.to_owned());
    let at = clock.now();
    tokio::task::spawn_blocking(move || {
        let advance = |w: &crate::store::Writer<'_>| -> crate::error::Result<()> {
            w.execute(
                "INSERT INTO mailbox_state (mailbox, uidvalidity, last_uid, updated_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (mailbox) DO UPDATE SET uidvalidity = excluded.uidvalidity, last_uid = excluded.last_uid, updated_at = excluded.updated_at",
                params![key, validity, uid, at.as_millisecond()],
            )?;
            Ok(())
        };
        let o = ingest::store_received(&store, at, &identity, &mail, advance)?;
        tracing::debug!(uid, disposition = ?o.disposition, "mail stored");
        Ok(())
    })
    .await
    .map_err(|_| FetchError::Store(PortalError::Unavailable))?
    .map_err(FetchError::Store)
}

/// Watches the mailbox until the task is aborted: fetch, then IDLE (or
/// sleep) until something changes, again. Reconnects after failures with a
/// backoff of 1 s doubling to 5 minutes.
pub fn spawn_fetcher(
    config: ImapConfig,
    store: Arc<Store>,
    clock: Arc<dyn Clock>,
    identity: MailIdentity,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut wait = Duration::from_secs(1);
        loop {
            match watch(&config, &store, &clock, &identity, &mut wait).await {
                Ok(()) => {}
                Err(e) => {
                    tracing::error!(mailbox = %config.key(), code = e.code(), error = %e, retry_in = ?wait, "mailbox fetch failed");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(300));
                }
            }
        }
    })
}

async fn watch(
    config: &ImapConfig,
    store: &Arc<Store>,
    clock: &Arc<dyn Clock>,
    identity: &MailIdentity,
    wait: &mut Duration,
) -> Result<(), FetchError> {
    let mut session = connect(config).await?;
    let idle = session.capabilities().await?.has_str("IDLE");
    tracing::info!(mailbox = %config.key(), idle, "connected to the support mailbox");
    loop {
        let report = fetch_new(&mut session, config, store, clock, identity).await?;
        *wait = Duration::from_secs(1);
        if report.fetched > 0 {
            tracing::info!(mailbox = %config.key(), ?report, "mail fetched");
        }
        if idle {
            let mut handle = session.idle();
            handle.init().await?;
            let (done, _stop) = handle.wait_with_timeout(IDLE_RENEW);
            done.await?;
            session = handle.done().await?;
        } else {
            tokio::time::sleep(config.poll).await;
            session.noop().await?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_are_bounded_by_count_and_bytes() {
        let small: Vec<(u32, u32)> = (1..=120).map(|u| (u, 2_000)).collect();
        let sizes: Vec<usize> = batches(&small).iter().map(|b| b.len()).collect();
        assert_eq!(sizes, vec![50, 50, 20]);
        let mb = 1024 * 1024;
        let big = vec![(1, 20 * mb), (2, 20 * mb), (3, 100 * mb), (4, 1_000)];
        let sizes: Vec<usize> = batches(&big).iter().map(|b| b.len()).collect();
        assert_eq!(
            sizes,
            vec![1, 3],
            "20 + 20 MB is over the budget; an over-size mail counts as its head"
        );
        assert!(batches(&[]).is_empty());
    }
}
