//! Where the refresh token lives: the OS keychain (the Secret Service on
//! Linux, through `keyring-core` and its zbus store), or, when there is none,
//! nowhere but memory. Tokens are never written to a plain file: without a
//! keychain the person signs in again after a restart, and the app says so.

use std::sync::Arc;

use keyring_core::{CredentialStore, Entry, Error as KeyringError};
use serde::Serialize;

/// The keychain service name entries are filed under; the user part is the
/// server address, so one install can hold sign-ins to several servers.
const SERVICE: &str = "portico-inbox";

/// Whether tokens survive a restart, for the UI to say.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Keychain {
    /// Refresh tokens are kept in the OS keychain.
    Available,
    /// No keychain: tokens are kept in memory only; `reason` says why.
    MemoryOnly { reason: String },
}

/// The refresh-token store.
#[derive(Clone)]
pub struct SecretStore {
    store: Option<Arc<CredentialStore>>,
    state: Keychain,
}

impl SecretStore {
    /// Connects to the Secret Service and checks it answers (a locked or
    /// missing keychain shows up here, not at the first sign-in). Blocking:
    /// call off the async runtime's workers.
    pub fn open_system() -> SecretStore {
        let store: Arc<CredentialStore> = match zbus_secret_service_keyring_store::Store::new() {
            Ok(s) => s,
            Err(e) => return SecretStore::memory_only(format!("no Secret Service: {e}")),
        };
        match Entry::new_in_store(&store, SERVICE, "probe").and_then(|e| e.get_password()) {
            Ok(_) | Err(KeyringError::NoEntry) => SecretStore {
                store: Some(store),
                state: Keychain::Available,
            },
            Err(e) => SecretStore::memory_only(format!("the keychain cannot be used: {e}")),
        }
    }

    /// No keychain: tokens stay in memory.
    pub fn memory_only(reason: impl Into<String>) -> SecretStore {
        let reason = reason.into();
        tracing::warn!(%reason, "no keychain; sign-in tokens are kept in memory only");
        SecretStore {
            store: None,
            state: Keychain::MemoryOnly { reason },
        }
    }

    pub fn state(&self) -> &Keychain {
        &self.state
    }

    /// Stores the refresh token for `server`; false when there is no
    /// keychain or it refused (the caller keeps the token in memory).
    pub async fn set(&self, server: &str, token: &str) -> bool {
        let Some(store) = self.store.clone() else {
            return false;
        };
        let (server, token) = (server.to_owned(), token.to_owned());
        let result = tokio::task::spawn_blocking(move || {
            Entry::new_in_store(&store, SERVICE, &server)?.set_password(&token)
        })
        .await;
        match result {
            Ok(Ok(())) => true,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "keychain refused the token; keeping it in memory");
                false
            }
            Err(e) => {
                tracing::warn!(error = %e, "keychain task failed");
                false
            }
        }
    }

    /// The stored refresh token for `server`, if any.
    pub async fn get(&self, server: &str) -> Option<String> {
        let store = self.store.clone()?;
        let server = server.to_owned();
        let result = tokio::task::spawn_blocking(move || {
            Entry::new_in_store(&store, SERVICE, &server)?.get_password()
        })
        .await;
        match result {
            Ok(Ok(t)) => Some(t),
            Ok(Err(KeyringError::NoEntry)) => None,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "could not read the keychain");
                None
            }
            Err(_) => None,
        }
    }

    /// Removes the stored token for `server` (nothing stored is fine).
    pub async fn delete(&self, server: &str) {
        let Some(store) = self.store.clone() else {
            return;
        };
        let server = server.to_owned();
        let result = tokio::task::spawn_blocking(move || {
            Entry::new_in_store(&store, SERVICE, &server)?.delete_credential()
        })
        .await;
        if let Ok(Err(e)) = result
            && !matches!(e, KeyringError::NoEntry)
        {
            tracing::warn!(error = %e, "could not remove the token from the keychain");
        }
    }
}
