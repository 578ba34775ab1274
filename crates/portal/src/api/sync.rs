//! The change feed: every committed write after a cursor, as the viewer may
//! see it. The sync engine (desktop) and tests read it; rows are redacted by
//! the same policy as every other exit.

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use portico_model::wire::{Change, ChangeOp, ChangesPage};
use portico_model::*;
use serde::Deserialize;

use super::{ApiError, AppState, Auth, Json, Query};
use crate::error::{PortalError, Result};

pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/sync/changes", get(changes))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChangesQuery {
    #[serde(default)]
    after: i64,
    limit: Option<usize>,
}

const MAX_CHANGES: usize = 1_000;

async fn changes(
    State(st): State<AppState>,
    Auth(viewer): Auth,
    Query(q): Query<ChangesQuery>,
) -> Result<Json<ChangesPage>, ApiError> {
    let limit = q.limit.unwrap_or(500);
    if limit == 0 || limit > MAX_CHANGES {
        return Err(Invalid::new("limit", format!("must be between 1 and {MAX_CHANGES}")).into());
    }
    if q.after < 0 {
        return Err(Invalid::new(
            "after",
            "must be a sequence number from a previous page, or 0",
        )
        .into());
    }
    let v = viewer.clone();
    let page = st
        .read(move |c| read_changes(c, &v, q.after, limit))
        .await?;
    Ok(Json(page))
}

/// Reads up to `limit` change rows after `after`, keeping those the viewer
/// may see. Customers only ever scan their own account's rows, global ones,
/// and the community (public to every customer).
pub fn read_changes(
    c: &rusqlite::Connection,
    viewer: &Viewer,
    after: i64,
    limit: usize,
) -> Result<ChangesPage> {
    let (sql, account) = match viewer.account_id.filter(|_| !viewer.is_staff()) {
        Some(a) => (
            "SELECT seq, kind, entity_id, op, version, row, account_id FROM change_log
             WHERE seq > ?1 AND (account_id = ?3 OR account_id IS NULL OR kind = 'community_post') ORDER BY seq LIMIT ?2",
            Some(a.to_string()),
        ),
        None => (
            "SELECT seq, kind, entity_id, op, version, row, account_id FROM change_log WHERE seq > ?1 AND ?3 IS NULL ORDER BY seq LIMIT ?2",
            None,
        ),
    };
    let mut stmt = c.prepare_cached(sql)?;
    let rows = stmt.query_map(rusqlite::params![after, limit as i64 + 1, account], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, u64>(4)?,
            r.get::<_, Option<String>>(5)?,
            r.get::<_, Option<String>>(6)?,
        ))
    })?;
    let mut changes = Vec::new();
    let mut next_after = after;
    let mut has_more = false;
    for (i, row) in rows.enumerate() {
        if i == limit {
            has_more = true;
            break;
        }
        let (seq, kind, id, op, version, row, row_account) = row?;
        next_after = seq;
        let kind = Kind::parse(&kind).ok_or_else(|| {
            PortalError::Conflict(format!("change {seq} has unknown kind {kind}"))
        })?;
        let id: uuid::Uuid = id
            .parse()
            .map_err(|_| PortalError::Conflict(format!("change {seq} has a malformed id")))?;
        match (op.as_str(), row) {
            ("upsert", Some(row)) => {
                let value: serde_json::Value = serde_json::from_str(&row)
                    .map_err(|source| PortalError::Corrupt { kind, source })?;
                let shaped =
                    redact_row(viewer, kind, &value).map_err(|e| PortalError::Corrupt {
                        kind,
                        source: e.source,
                    })?;
                if let Some(row) = shaped {
                    changes.push(Change {
                        seq,
                        kind,
                        id,
                        op: ChangeOp::Upsert,
                        version,
                        row: Some(row),
                    });
                }
            }
            _ => {
                // Tombstones carry no data; customers get them only for their own account's rows.
                if viewer.is_staff() || (row_account.is_some() && row_account == account) {
                    changes.push(Change {
                        seq,
                        kind,
                        id,
                        op: ChangeOp::Delete,
                        version,
                        row: None,
                    });
                }
            }
        }
    }
    Ok(ChangesPage {
        protocol: portico_model::sync::SYNC_PROTOCOL,
        changes,
        next_after,
        has_more,
        last_mutation_id: None,
        resync: false,
    })
}
