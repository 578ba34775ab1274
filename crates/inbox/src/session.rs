//! Signing in to portal-core from the desktop: OAuth 2.0 authorization code
//! with PKCE (S256) and a loopback redirect (RFC 6749, 7636, 8252), the
//! rotating refresh token kept in the OS keychain, the short-lived access
//! token in memory only.
//!
//! The flow: [`Session::begin`] binds `127.0.0.1:0`, builds the authorize
//! URL with a fresh verifier and state, and opens it in the system browser;
//! [`SignIn::finish`] waits for the browser to come back to the loopback
//! address, checks the state, trades the code for tokens and stores the
//! refresh token. Access tokens are refreshed before they expire; a refresh
//! token the server refuses signs the person out (the server revokes the
//! whole family on a replay, so there is nothing else to try).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jiff::{SignedDuration, Timestamp};
use portico_model::wire::{Me, TokenResponse};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::engine::{Clock, TokenSource};
use crate::secrets::SecretStore;

/// The public OAuth client portal-core knows the desktop app as.
pub const CLIENT_ID: &str = "portico-inbox";

/// How long a browser sign-in may take before the attempt is dropped.
pub const SIGN_IN_TIMEOUT: Duration = Duration::from_secs(600);

/// Refresh this long before the access token expires.
const REFRESH_MARGIN: SignedDuration = SignedDuration::from_secs(60);

/// What went wrong signing in, with a stable [`SessionError::code`].
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("could not reach the server: {0}")]
    Offline(String),
    /// The server refused the code or refresh token (expired, replayed,
    /// revoked): sign in again.
    #[error("the server refused the sign-in: {0}")]
    Refused(String),
    #[error("the browser came back with an error: {0}")]
    Denied(String),
    #[error("the sign-in answer did not match this attempt (state mismatch); start again")]
    StateMismatch,
    #[error("no sign-in arrived within {0} s; start again")]
    TimedOut(u64),
    #[error("not signed in")]
    SignedOut,
    #[error("cannot listen for the browser on the loopback address: {0}")]
    Loopback(String),
    #[error("the server's answer is malformed: {0}")]
    Malformed(String),
}

impl SessionError {
    pub fn code(&self) -> &'static str {
        match self {
            SessionError::Offline(_) => "offline",
            SessionError::Refused(_) => "sign_in_refused",
            SessionError::Denied(_) => "sign_in_denied",
            SessionError::StateMismatch => "state_mismatch",
            SessionError::TimedOut(_) => "sign_in_timed_out",
            SessionError::SignedOut => "unauthenticated",
            SessionError::Loopback(_) => "loopback",
            SessionError::Malformed(_) => "malformed_response",
        }
    }
}

type Result<T, E = SessionError> = std::result::Result<T, E>;

/// Who is signed in; kept next to the local store (not secret) so the app
/// can show the inbox offline after a restart.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub user_id: portico_model::UserId,
    pub name: String,
    pub email: String,
    pub role: portico_model::Role,
}

impl Identity {
    fn from_me(me: &Me) -> Result<Identity> {
        serde_json::from_value(serde_json::Value::Object(me.user.clone()))
            .map(|u: UserFields| Identity {
                user_id: u.id,
                name: u.name,
                email: u.email,
                role: u.role,
            })
            .map_err(|e| SessionError::Malformed(format!("/v1/me: {e}")))
    }
}

#[derive(Deserialize)]
struct UserFields {
    id: portico_model::UserId,
    name: String,
    email: String,
    role: portico_model::Role,
}

struct Access {
    token: String,
    expires_at: Timestamp,
}

/// A signed-in (or signed-out) desktop session against one server.
pub struct Session {
    base: String,
    http: reqwest::Client,
    clock: Arc<dyn Clock>,
    secrets: SecretStore,
    access: Mutex<Option<Access>>,
    /// The refresh token when the keychain is not available (memory only).
    refresh_in_memory: Mutex<Option<String>>,
}

/// A browser sign-in in progress.
pub struct SignIn {
    /// Open this in a browser (the app already tried the system browser).
    pub authorize_url: String,
    listener: TcpListener,
    verifier: String,
    state: String,
    redirect_uri: String,
}

impl Session {
    pub fn new(base: impl Into<String>, clock: Arc<dyn Clock>, secrets: SecretStore) -> Session {
        Session {
            base: base.into().trim_end_matches('/').to_owned(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()
                .expect("a default HTTP client builds"),
            clock,
            secrets,
            access: Mutex::new(None),
            refresh_in_memory: Mutex::new(None),
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn secrets(&self) -> &SecretStore {
        &self.secrets
    }

    /// Starts a browser sign-in: binds a loopback port and builds the
    /// authorize URL (PKCE S256, random state). Opening the browser is the
    /// caller's choice (see [`open_in_browser`]).
    pub async fn begin(&self) -> Result<SignIn> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| SessionError::Loopback(e.to_string()))?;
        let port = listener
            .local_addr()
            .map_err(|e| SessionError::Loopback(e.to_string()))?
            .port();
        let redirect_uri = format!("http://127.0.0.1:{port}/callback");
        let verifier = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        let state = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 16]>());
        let mut url = url::Url::parse(&format!("{}/oauth/authorize", self.base))
            .map_err(|e| SessionError::Loopback(format!("bad server address: {e}")))?;
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", CLIENT_ID)
            .append_pair("redirect_uri", &redirect_uri)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256")
            .append_pair("state", &state);
        Ok(SignIn {
            authorize_url: url.to_string(),
            listener,
            verifier,
            state,
            redirect_uri,
        })
    }

    /// Waits for the browser's redirect, trades the code for tokens, stores
    /// the refresh token and returns who signed in.
    pub async fn finish(&self, sign_in: SignIn) -> Result<Identity> {
        let code = tokio::time::timeout(SIGN_IN_TIMEOUT, sign_in.receive_code())
            .await
            .map_err(|_| SessionError::TimedOut(SIGN_IN_TIMEOUT.as_secs()))??;
        let tokens = self
            .token_request(&[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("code_verifier", &sign_in.verifier),
                ("redirect_uri", &sign_in.redirect_uri),
                ("client_id", CLIENT_ID),
            ])
            .await?;
        self.keep(tokens).await;
        self.me().await
    }

    /// Signs in again with the stored refresh token, if there is one.
    /// `Ok(None)`: nothing stored. Offline: the error says so and the stored
    /// token stays for later.
    pub async fn restore(&self) -> Result<Option<Identity>> {
        if self.stored_refresh_token().await.is_none() {
            return Ok(None);
        }
        self.refresh().await?;
        self.me().await.map(Some)
    }

    /// Whether a refresh token is stored (the person signed in before).
    pub async fn has_stored_token(&self) -> bool {
        self.stored_refresh_token().await.is_some()
    }

    /// Trades the refresh token for a new pair (it rotates). A refusal
    /// clears it: the person must sign in again.
    pub async fn refresh(&self) -> Result<()> {
        let Some(refresh) = self.stored_refresh_token().await else {
            return Err(SessionError::SignedOut);
        };
        match self
            .token_request(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", &refresh),
                ("client_id", CLIENT_ID),
            ])
            .await
        {
            Ok(tokens) => {
                self.keep(tokens).await;
                Ok(())
            }
            Err(e @ SessionError::Refused(_)) => {
                self.forget().await;
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    /// Refreshes when the access token is missing or about to expire.
    pub async fn refresh_if_due(&self) -> Result<()> {
        let due = match &*self.access.lock().unwrap_or_else(|p| p.into_inner()) {
            None => true,
            Some(a) => self.clock.now() + REFRESH_MARGIN >= a.expires_at,
        };
        if due { self.refresh().await } else { Ok(()) }
    }

    /// The access token, if one is held and not expired.
    pub fn access_token(&self) -> Option<String> {
        let access = self.access.lock().unwrap_or_else(|p| p.into_inner());
        access
            .as_ref()
            .filter(|a| a.expires_at > self.clock.now())
            .map(|a| a.token.clone())
    }

    /// Signs out: revokes the refresh token on the server (best effort:
    /// offline, it is still forgotten here) and clears every token.
    pub async fn sign_out(&self) {
        if let Some(refresh) = self.stored_refresh_token().await {
            let revoked = self
                .http
                .post(format!("{}/oauth/revoke", self.base))
                .form(&[("token", refresh.as_str())])
                .send()
                .await;
            if let Err(e) = revoked {
                tracing::info!(error = %e, "could not revoke the refresh token (offline?); forgetting it anyway");
            }
        }
        self.forget().await;
    }

    /// Who the current token belongs to.
    pub async fn me(&self) -> Result<Identity> {
        let token = self.access_token().ok_or(SessionError::SignedOut)?;
        let resp = self
            .http
            .get(format!("{}/v1/me", self.base))
            .bearer_auth(token)
            .send()
            .await
            .map_err(|e| SessionError::Offline(e.to_string()))?;
        if !resp.status().is_success() {
            return Err(SessionError::Refused(format!("/v1/me: {}", resp.status())));
        }
        let me: Me = resp
            .json()
            .await
            .map_err(|e| SessionError::Malformed(e.to_string()))?;
        Identity::from_me(&me)
    }

    async fn token_request(&self, form: &[(&str, &str)]) -> Result<TokenResponse> {
        let resp = self
            .http
            .post(format!("{}/oauth/token", self.base))
            .form(form)
            .send()
            .await
            .map_err(|e| SessionError::Offline(e.to_string()))?;
        let status = resp.status();
        let body = resp
            .bytes()
            .await
            .map_err(|e| SessionError::Offline(e.to_string()))?;
        if !status.is_success() {
            #[derive(Deserialize)]
            struct OAuthError {
                error: String,
                #[serde(default)]
                error_description: String,
            }
            return Err(match serde_json::from_slice::<OAuthError>(&body) {
                Ok(e) if status.is_client_error() => {
                    SessionError::Refused(format!("{}: {}", e.error, e.error_description))
                }
                _ => SessionError::Offline(format!("token endpoint answered {status}")),
            });
        }
        serde_json::from_slice(&body).map_err(|e| SessionError::Malformed(e.to_string()))
    }

    async fn keep(&self, tokens: TokenResponse) {
        let expires_at = self.clock.now() + SignedDuration::from_secs(tokens.expires_in.max(0));
        *self.access.lock().unwrap_or_else(|p| p.into_inner()) = Some(Access {
            token: tokens.access_token,
            expires_at,
        });
        if !self.secrets.set(&self.base, &tokens.refresh_token).await {
            *self
                .refresh_in_memory
                .lock()
                .unwrap_or_else(|p| p.into_inner()) = Some(tokens.refresh_token);
        }
    }

    async fn stored_refresh_token(&self) -> Option<String> {
        let in_memory = self
            .refresh_in_memory
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        match in_memory {
            Some(t) => Some(t),
            None => self.secrets.get(&self.base).await,
        }
    }

    async fn forget(&self) {
        *self.access.lock().unwrap_or_else(|p| p.into_inner()) = None;
        *self
            .refresh_in_memory
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = None;
        self.secrets.delete(&self.base).await;
    }
}

/// The engine asks the session for its bearer token on every request.
pub struct SessionTokens(pub Arc<Session>);

impl TokenSource for SessionTokens {
    fn token(&self) -> Option<String> {
        self.0.access_token()
    }
}

impl SignIn {
    /// Accepts browser connections on the loopback port until one carries
    /// the redirect; answers it with a page saying to go back to the app.
    async fn receive_code(&self) -> Result<String> {
        loop {
            let (mut stream, _) = self
                .listener
                .accept()
                .await
                .map_err(|e| SessionError::Loopback(e.to_string()))?;
            let mut buf = vec![0u8; 8192];
            let mut len = 0;
            // The request line is all we need; read until the header ends.
            while len < buf.len() {
                match stream.read(&mut buf[len..]).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => len += n,
                }
                if buf[..len].windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
            let head = String::from_utf8_lossy(&buf[..len]);
            let target = head
                .lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1))
                .unwrap_or("/");
            let Some(query) = target
                .strip_prefix("/callback?")
                .map(|q| url::form_urlencoded::parse(q.as_bytes()))
            else {
                let _ = stream
                    .write_all(
                        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    )
                    .await;
                continue;
            };
            let params: Vec<(String, String)> = query.into_owned().collect();
            let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
            let outcome = match (get("state"), get("code"), get("error")) {
                (Some(s), _, _) if s != self.state => Err(SessionError::StateMismatch),
                (_, _, Some(err)) => Err(SessionError::Denied(err)),
                (Some(_), Some(code), None) => Ok(code),
                _ => Err(SessionError::Denied("no code in the redirect".into())),
            };
            let (title, text) = match &outcome {
                Ok(_) => (
                    "Signed in",
                    "You are signed in to Portico Inbox. You can close this tab and go back to the app.",
                ),
                Err(_) => (
                    "Sign-in failed",
                    "The sign-in did not complete. Go back to Portico Inbox and try again.",
                ),
            };
            let page = format!(
                "<!doctype html><meta charset=utf-8><title>{title}</title>\
                 <body style=\"font:16px system-ui;margin:4em auto;max-width:30em\"><h1>{title}</h1><p>{text}</p>"
            );
            let response = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\nCache-Control: no-store\r\n\r\n{page}",
                page.len()
            );
            let _ = stream.write_all(response.as_bytes()).await;
            let _ = stream.shutdown().await;
            return outcome;
        }
    }
}

/// Opens `url` in the system browser. `BROWSER` is honoured (tests set it
/// to `true` to open nothing and drive the page themselves). A failure is
/// logged and reported; the app also shows the link to open by hand.
pub fn open_in_browser(url: &str) -> bool {
    match webbrowser::open(url) {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(error = %e, "could not open the system browser");
            false
        }
    }
}
