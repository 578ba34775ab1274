//! The push side of sync: queued mutations go to `POST /v1/sync/push` in id
//! order, in batches, and each answer is recorded.
//!
//! Exactly-once is the server's job: it applies each (client id, mutation
//! id) at most once and answers a replay with the stored outcome. So the
//! client's rule is simple: whatever did not get an answer stays queued and
//! is pushed again later; a network failure never loses or doubles anything.

use portico_model::Kind;
use portico_model::sync::{
    Mutation, MutationOp, MutationResult, Outcome, PushRequest, PushResponse, SYNC_PROTOCOL,
};
use serde::Serialize;

use crate::engine::{EngineError, Event, Inner, Result, check_protocol};
use crate::outbox;

/// The server refuses bodies over 256 KiB; batches stay well under it (a
/// single reply of 64 Ki characters still fits on its own).
const MAX_PUSH_BYTES: usize = 192 * 1024;

/// What a push did.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct PushReport {
    pub batches: usize,
    pub applied: usize,
    pub rejected: usize,
    /// Answers the server marked as replays of an earlier push.
    pub duplicates: usize,
}

impl PushReport {
    pub(crate) fn add(&mut self, other: &PushReport) {
        self.batches += other.batches;
        self.applied += other.applied;
        self.rejected += other.rejected;
        self.duplicates += other.duplicates;
    }
}

/// Cuts the queue's head into one request: at most `max` mutations and
/// [`MAX_PUSH_BYTES`] of JSON, never fewer than one.
fn batch(client_id: uuid::Uuid, queued: Vec<Mutation>, max: usize) -> PushRequest {
    let mut mutations = Vec::new();
    let mut bytes = 0;
    for m in queued.into_iter().take(max) {
        let size = serde_json::to_vec(&m).map(|v| v.len()).unwrap_or(0) + 1;
        if !mutations.is_empty() && bytes + size > MAX_PUSH_BYTES {
            break;
        }
        bytes += size;
        mutations.push(m);
    }
    PushRequest {
        protocol: SYNC_PROTOCOL,
        client_id,
        mutations,
    }
}

/// The answer must speak our protocol and account for every mutation sent,
/// in order; anything else is not recorded at all (the batch stays queued).
fn check_response(req: &PushRequest, resp: &PushResponse) -> Result<()> {
    check_protocol(resp.protocol)?;
    let bad = |detail: String| EngineError::Malformed {
        what: "push",
        detail,
    };
    if resp.results.len() != req.mutations.len() {
        return Err(bad(format!(
            "{} results for {} mutations",
            resp.results.len(),
            req.mutations.len()
        )));
    }
    for (sent, got) in req.mutations.iter().zip(&resp.results) {
        if sent.id != got.id {
            return Err(bad(format!(
                "result for mutation {} where {} was expected",
                got.id, sent.id
            )));
        }
    }
    let highest = req.mutations.iter().map(|m| m.id).max().unwrap_or(0);
    if resp.last_mutation_id < highest {
        return Err(bad(format!(
            "last_mutation_id {} is below mutation {highest} it just answered",
            resp.last_mutation_id
        )));
    }
    Ok(())
}

/// Statuses with which the server refuses a push request as a whole,
/// before applying anything (its shape, size or ids): retrying the same
/// request can never succeed. Other failures (5xx, 404 from an older server,
/// 429) are transient and leave the queue as it is.
fn refused_as_a_whole(status: u16) -> bool {
    matches!(status, 400 | 413 | 422)
}

/// Pushes until nothing is queued. Stops at the first transient failure,
/// leaving the rest queued.
///
/// A batch refused as a whole is pushed again one mutation at a time, so a
/// single mutation the server will never take (a "poison pill", e.g. one an
/// older client queued in a shape a newer server refuses) is isolated and
/// listed as a rejection with the server's reason, instead of blocking
/// everything queued behind it forever. This is safe because such a refusal
/// means the server applied nothing of that request.
pub(crate) async fn run(inner: &Inner) -> Result<PushReport> {
    let mut report = PushReport::default();
    // Mutations still to push one by one after a batch was refused.
    let mut singles = 0usize;
    loop {
        let max = if singles > 0 { 1 } else { inner.push_batch };
        let queued = outbox::to_push(inner.db().mirror.conn(), max)?;
        if queued.is_empty() {
            return Ok(report);
        }
        let req = batch(inner.client_id, queued, max);
        let results = match inner
            .api
            .post::<_, PushResponse>("/v1/sync/push", &req, "push")
            .await
        {
            Ok(resp) => {
                check_response(&req, &resp)?;
                Ok((resp.results, resp.last_mutation_id))
            }
            Err(EngineError::Server {
                status,
                code,
                message,
                ..
            }) if refused_as_a_whole(status) => Err((status, code, message)),
            Err(e) => return Err(e),
        };
        let (results, last) = match results {
            Ok(r) => r,
            Err((status, code, message)) if req.mutations.len() > 1 => {
                tracing::warn!(status, %code, %message, size = req.mutations.len(), "push refused as a whole; isolating its mutations");
                singles = req.mutations.len();
                continue;
            }
            Err((status, code, message)) => {
                tracing::warn!(status, %code, %message, id = req.mutations[0].id, "the server refuses this mutation outright");
                let refused = MutationResult {
                    id: req.mutations[0].id,
                    outcome: Outcome::Rejected { code, message },
                    duplicate: false,
                };
                (vec![refused], 0)
            }
        };
        singles = singles.saturating_sub(1);
        let recorded = {
            let mut db = inner.db();
            let tx = db.mirror.conn_mut().transaction()?;
            let recorded = outbox::record_results(&tx, &results)?;
            outbox::raise_counter(&tx, last)?;
            tx.commit()?;
            recorded
        };
        report.batches += 1;
        report.applied += recorded.applied.len();
        report.rejected += recorded.rejected.len();
        report.duplicates += recorded.duplicates;
        tracing::debug!(
            batch = req.mutations.len(),
            applied = recorded.applied.len(),
            rejected = recorded.rejected.len(),
            duplicates = recorded.duplicates,
            "pushed a batch of mutations"
        );
        if !recorded.rejected.is_empty() {
            // The reverted edits change what the person sees: the
            // conversation, and a reply or note that will not appear.
            let mut changed = Vec::new();
            for r in &recorded.rejected {
                changed.push((Kind::Conversation, r.conversation_id.0));
                if let MutationOp::Reply { message_id, .. } | MutationOp::Note { message_id, .. } =
                    &r.op
                {
                    changed.push((Kind::Message, message_id.0));
                }
            }
            inner.emit_records(changed);
        }
        for rejection in recorded.rejected {
            inner.emit(Event::RejectionAdded { rejection });
        }
        inner.emit_outbox();
    }
}
