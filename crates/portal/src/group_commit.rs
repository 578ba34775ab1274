//! Chat messages sent over the live socket are written by one thread of
//! their own, in group commits.
//!
//! A socket task hands its message to the queue and waits for the answer;
//! the thread takes everything waiting, runs each message in a savepoint
//! of one transaction ([`Store::write_each`]) and commits once. Only then
//! are the changes fanned out (by the store's commit listener, in `seq`
//! order) and each sender answered, with its own error if its message
//! failed: one bad message never fails the others. Compared with one
//! transaction per message on the blocking pool this saves a thread hop per
//! message, and when commits stall (a checkpoint's fsync) the messages that
//! queued meanwhile share the next commit instead of each paying for its
//! own: the queue drains in one commit, not one per message.

use std::sync::Arc;

use jiff::Timestamp;
use tokio::sync::{mpsc, oneshot};

use crate::error::{PortalError, Result};
use crate::store::{Actor, Store, Work};

/// Messages waiting for the writer before senders wait too (backpressure
/// on the socket tasks, never an unbounded queue).
const QUEUE: usize = 4096;

/// Most messages in one transaction, so one commit stays short.
const MAX_BATCH: usize = 256;

struct Job {
    actor: Actor,
    at: Timestamp,
    work: Work<()>,
    done: oneshot::Sender<Result<()>>,
}

/// The queue to the chat writer thread; the thread ends when this is dropped.
pub struct GroupCommit {
    queue: mpsc::Sender<Job>,
}

impl GroupCommit {
    /// Starts the writer thread. `after_commit` runs after each commit that
    /// stored at least one message (it wakes the drafter).
    pub fn start(store: Arc<Store>, after_commit: impl Fn() + Send + 'static) -> GroupCommit {
        let (queue, mut waiting) = mpsc::channel::<Job>(QUEUE);
        std::thread::Builder::new()
            .name("chat-writer".into())
            .spawn(move || {
                while let Some(first) = waiting.blocking_recv() {
                    let mut batch = vec![first];
                    while batch.len() < MAX_BATCH {
                        match waiting.try_recv() {
                            Ok(job) => batch.push(job),
                            Err(_) => break,
                        }
                    }
                    // A panicking message drops its batch's answers (the
                    // senders see `unavailable`, nothing was committed) but
                    // not the thread.
                    let stored = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        commit_batch(&store, batch)
                    }));
                    if stored.unwrap_or(false) {
                        after_commit();
                    }
                }
            })
            .expect("cannot start the chat writer thread");
        GroupCommit { queue }
    }

    /// Runs `work` in the next group commit and answers once it is
    /// committed (or failed alone).
    pub async fn write(&self, actor: Actor, at: Timestamp, work: Work<()>) -> Result<()> {
        let (done, answer) = oneshot::channel();
        self.queue
            .send(Job {
                actor,
                at,
                work,
                done,
            })
            .await
            .map_err(|_| PortalError::Unavailable)?;
        answer.await.map_err(|_| PortalError::Unavailable)?
    }
}

/// Commits one batch and answers each sender; whether anything was stored.
fn commit_batch(store: &Store, batch: Vec<Job>) -> bool {
    let mut answers = Vec::with_capacity(batch.len());
    let work = batch
        .into_iter()
        .map(|job| {
            answers.push(job.done);
            (job.actor, job.at, job.work)
        })
        .collect();
    match store.write_each(work) {
        Ok(results) => {
            let stored = results.iter().any(|r| r.is_ok());
            for (done, result) in answers.into_iter().zip(results) {
                let _ = done.send(result);
            }
            stored
        }
        Err(e) => {
            tracing::error!(error = %e, messages = answers.len(), "a chat group commit failed; none of its messages were stored");
            // `unavailable`: nothing was stored, the client sends again
            // (ids are client-minted, so a resend never duplicates).
            for done in answers {
                let _ = done.send(Err(PortalError::Unavailable));
            }
            false
        }
    }
}
