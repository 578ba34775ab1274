//! Knowledge, search and grounded AI in portal-core.
//!
//! - [`index`]: the search library (crate `portico-knowledge`) kept in step
//!   with the change log, and search scoped by the field policy.
//! - [`facts`]: the asker's account as sentences, read through the policy.
//! - [`answer`]: retrieve, ground, compose, judge confidence, propose actions.
//! - [`drafts`]: a draft reply once a customer pauses (one per burst); review.
//! - [`gaps`]: questions answered with low confidence, counted.
//! - [`resolve`]: a resolved conversation into a draft article or revision.
//!
//! The rule that makes the AI safe is structural: the composer is handed a
//! grounding built only from what the *customer who will read the answer*
//! may see (their approved, plan-scoped articles; their own account's
//! fields as `redact` shapes them). A staff member's draft is composed for
//! the customer, never with the staff member's wider view.

pub mod answer;
pub mod drafts;
pub mod facts;
pub mod gaps;
pub mod index;
pub mod resolve;

use std::sync::{Arc, Mutex, RwLock};

use portico_knowledge::compose::{ChatCompletions, Composer, Extractive};
use portico_knowledge::{Embeddings, Library};
use tokio::sync::Notify;

/// The knowledge side of the server's state.
pub struct Knowledge {
    embeddings: Embeddings,
    /// Loaded on first use (embedding the help centre takes a moment).
    library: Mutex<Option<index::Loaded>>,
    composer: RwLock<Arc<dyn Composer>>,
    /// Wakes the drafter when writes commit.
    wake: Notify,
}

impl Default for Knowledge {
    fn default() -> Self {
        Knowledge::new(Embeddings::On)
    }
}

impl Knowledge {
    pub fn new(embeddings: Embeddings) -> Knowledge {
        Knowledge {
            embeddings,
            library: Mutex::new(None),
            composer: RwLock::new(Arc::new(Extractive)),
            wake: Notify::new(),
        }
    }

    /// Answers and drafts through an OpenAI-compatible endpoint (which
    /// falls back to the built-in composer when it fails).
    pub fn use_chat_completions(&self, chat: ChatCompletions) {
        *self.composer.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(chat);
    }

    pub fn composer(&self) -> Arc<dyn Composer> {
        self.composer
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn wake(&self) {
        self.wake.notify_one();
    }

    pub(crate) async fn woken(&self) {
        self.wake.notified().await
    }

    fn library_slot(&self) -> std::sync::MutexGuard<'_, Option<index::Loaded>> {
        self.library.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn embeddings(&self) -> Embeddings {
        self.embeddings
    }

    /// The library, for tools and benchmarks that index directly.
    pub fn library_arc(&self) -> Option<Arc<Library>> {
        self.library_slot().as_ref().map(|l| l.library.clone())
    }
}
