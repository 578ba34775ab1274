//! The pull side of sync: fetch the change feed after the mirror's cursor,
//! page by page, applying each page in one local transaction. An interrupted
//! pull resumes from the last applied page.

use portico_model::wire::{ChangesPage, ErrorBody};

use crate::mirror::{Mirror, MirrorError};

/// Changes per request; the server caps it at 1,000.
pub const PAGE: usize = 1_000;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PullReport {
    pub pages: usize,
    pub changes: usize,
    pub cursor: i64,
}

/// Pulls until the feed is drained. `token` is an access or session token.
pub async fn pull(
    mirror: &mut Mirror,
    http: &reqwest::Client,
    base: &str,
    token: &str,
) -> Result<PullReport, MirrorError> {
    let mut report = PullReport {
        cursor: mirror.cursor()?,
        ..PullReport::default()
    };
    loop {
        let url = format!(
            "{base}/v1/sync/changes?after={}&limit={PAGE}",
            report.cursor
        );
        let resp = http.get(&url).bearer_auth(token).send().await?;
        let status = resp.status();
        if !status.is_success() {
            let message = match resp.json::<ErrorBody>().await {
                Ok(b) => b.error.message,
                Err(_) => status
                    .canonical_reason()
                    .unwrap_or("unknown error")
                    .to_owned(),
            };
            return Err(MirrorError::Server {
                status: status.as_u16(),
                message,
            });
        }
        let page: ChangesPage = resp.json().await?;
        report.changes += mirror.apply(&page)?;
        report.pages += 1;
        report.cursor = mirror.cursor()?;
        tracing::debug!(
            cursor = report.cursor,
            changes = report.changes,
            "pulled a page of changes"
        );
        if !page.has_more {
            return Ok(report);
        }
    }
}
