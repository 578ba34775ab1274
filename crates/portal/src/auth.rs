//! Sign-in and tokens: argon2 passwords, web sessions, and the OAuth 2.0
//! authorization-code + PKCE flow with loopback redirects (RFC 8252) used by
//! the desktop app.
//!
//! Every token is 256 random bits, handed out once and stored only as its
//! SHA-256. Refresh tokens rotate: each use returns a new one in the same
//! family, and presenting a used one (a replay) revokes the whole family.

use std::collections::HashMap;
use std::sync::Mutex;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, SaltString, rand_core::OsRng};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jiff::Timestamp;
use portico_model::{AccountId, Plan, Subscription, User, UserId, UserStatus, Viewer};
use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};

use crate::error::{OAuthErrorCode, PortalError, Result};
use crate::store::{self, Store};

/// The desktop app: a public native client (no secret) using loopback redirects.
pub const INBOX_CLIENT_ID: &str = "portico-inbox";

pub const ACCESS_TTL_SECS: i64 = 15 * 60;
pub const REFRESH_TTL_SECS: i64 = 30 * 86_400;
pub const SESSION_TTL_SECS: i64 = 14 * 86_400;
pub const CODE_TTL_SECS: i64 = 60;

pub fn hash_password(password: &str) -> String {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 with default parameters accepts any password")
        .to_string()
}

/// Checks `password` against a PHC argon2 hash, in constant time.
///
/// Argon2 needs 19 MiB of working memory per check at the default
/// parameters. Allocated per check (as `PasswordVerifier` does), glibc keeps
/// it: after the first such block is freed its mmap threshold rises above
/// 19 MiB, so later ones come from per-thread arenas that are not given
/// back. A thousand sign-ins on the blocking pool left portal-core at
/// ~570 MiB RSS (the live benchmark). So checks run in one of
/// [`ARGON2_WORK`]'s buffers, allocated once and reused: a fixed 38 MiB,
/// and no more than two checks at a time (they are CPU-bound anyway).
fn verify_password(hash: &str, password: &str) -> bool {
    let Ok(h) = PasswordHash::new(hash) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (h.salt, h.hash) else {
        return false;
    };
    let (Ok(params), Ok(algorithm)) = (
        argon2::Params::try_from(&h),
        argon2::Algorithm::try_from(h.algorithm),
    ) else {
        return false;
    };
    let Ok(version) = h.version.map(argon2::Version::try_from).transpose() else {
        return false;
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let blocks = params.block_count();
    let argon = Argon2::new(algorithm, version.unwrap_or_default(), params);
    let mut out = vec![0u8; expected.len()];
    let hashed = with_argon2_work(blocks, |work| {
        argon
            .hash_password_into_with_memory(password.as_bytes(), salt, &mut out, work)
            .is_ok()
    });
    // `Output`'s equality is constant-time.
    hashed && argon2::password_hash::Output::new(&out).is_ok_and(|o| o == expected)
}

/// Reusable argon2 working memory; see [`verify_password`].
static ARGON2_WORK: [Mutex<Vec<argon2::Block>>; 2] =
    [Mutex::new(Vec::new()), Mutex::new(Vec::new())];

/// Runs `f` with `blocks` blocks of argon2 working memory from a free
/// buffer of [`ARGON2_WORK`], waiting for one if both are in use.
fn with_argon2_work<T>(blocks: usize, f: impl FnOnce(&mut [argon2::Block]) -> T) -> T {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let mut work = ARGON2_WORK
        .iter()
        .find_map(|m| m.try_lock().ok())
        .unwrap_or_else(|| {
            let i = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % ARGON2_WORK.len();
            ARGON2_WORK[i].lock().unwrap_or_else(|p| p.into_inner())
        });
    if work.len() < blocks {
        *work = vec![argon2::Block::default(); blocks];
    }
    f(&mut work[..blocks])
}

/// Stores `password_hash` (from [`hash_password`]) for `user`.
pub fn set_password_hash(
    conn: &Connection,
    user: UserId,
    password_hash: &str,
    at: Timestamp,
) -> Result<()> {
    conn.execute(
        "INSERT INTO credentials (user_id, password_hash, updated_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (user_id) DO UPDATE SET password_hash = excluded.password_hash, updated_at = excluded.updated_at",
        params![user.to_string(), password_hash, at.to_string()],
    )?;
    Ok(())
}

/// A hash to verify against when the email is unknown, so a miss costs the
/// same time as a wrong password and does not reveal which emails exist.
static DUMMY_HASH: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| hash_password("not a real password"));

/// Checks an email and password; the same error for unknown email, wrong
/// password and disabled user.
pub fn check_password(conn: &Connection, email: &str, password: &str) -> Result<User> {
    let found = store::query::<User>(
        conn,
        "SELECT data FROM users WHERE email = lower(?1)",
        [email],
    )?
    .pop();
    let hash: Option<String> = match &found {
        Some(u) => conn
            .query_row(
                "SELECT password_hash FROM credentials WHERE user_id = ?1",
                [u.id.to_string()],
                |r| r.get(0),
            )
            .optional()?,
        None => None,
    };
    let ok = verify_password(hash.as_deref().unwrap_or(&DUMMY_HASH), password);
    match found {
        Some(u) if ok && hash.is_some() && u.status == UserStatus::Active => Ok(u),
        _ => Err(PortalError::Unauthenticated("wrong email or password")),
    }
}

pub fn new_token() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

pub fn token_hash(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum TokenKind {
    Session,
    Access,
    Refresh,
}

impl TokenKind {
    fn as_str(self) -> &'static str {
        match self {
            TokenKind::Session => "session",
            TokenKind::Access => "access",
            TokenKind::Refresh => "refresh",
        }
    }
}

fn insert_token(
    conn: &Connection,
    kind: TokenKind,
    user: UserId,
    family: Option<&str>,
    at: Timestamp,
    ttl: i64,
) -> Result<String> {
    let token = new_token();
    conn.execute(
        "INSERT INTO tokens (hash, kind, user_id, family, client_id, issued_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            token_hash(&token),
            kind.as_str(),
            user.to_string(),
            family,
            family.map(|_| INBOX_CLIENT_ID),
            at.as_second(),
            at.as_second() + ttl
        ],
    )?;
    Ok(token)
}

/// Starts a web session; returns the cookie value.
pub fn start_session(store: &Store, user: UserId, at: Timestamp) -> Result<String> {
    store.write_raw(|c| insert_token(c, TokenKind::Session, user, None, at, SESSION_TTL_SECS))
}

/// Ends whatever session or access token `token` is (and, for an access
/// token, its refresh family): sign-out.
pub fn end_session(store: &Store, token: &str, at: Timestamp) -> Result<()> {
    store.write_raw(|c| {
        let hash = token_hash(token);
        let family: Option<Option<String>> = c
            .query_row("SELECT family FROM tokens WHERE hash = ?1", [&hash], |r| {
                r.get(0)
            })
            .optional()?;
        match family.flatten() {
            Some(f) => revoke_family(c, &f, at),
            None => {
                c.execute(
                    "UPDATE tokens SET revoked_at = ?2 WHERE hash = ?1 AND revoked_at IS NULL",
                    params![hash, at.as_second()],
                )?;
                Ok(())
            }
        }
    })
}

fn revoke_family(conn: &Connection, family: &str, at: Timestamp) -> Result<()> {
    conn.execute(
        "UPDATE tokens SET revoked_at = ?2 WHERE family = ?1 AND revoked_at IS NULL",
        params![family, at.as_second()],
    )?;
    Ok(())
}

/// The viewer a session cookie or access token stands for.
pub fn viewer_for_token(conn: &Connection, token: &str, at: Timestamp) -> Result<Viewer> {
    let row: Option<(String, String, i64, Option<i64>)> = conn
        .query_row(
            "SELECT kind, user_id, expires_at, revoked_at FROM tokens WHERE hash = ?1",
            [token_hash(token)],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()?;
    let Some((kind, user_id, expires_at, revoked_at)) = row else {
        return Err(PortalError::Unauthenticated("the token is not recognised"));
    };
    if kind == "refresh" {
        return Err(PortalError::Unauthenticated(
            "a refresh token cannot be used to call the API; exchange it at /oauth/token",
        ));
    }
    if revoked_at.is_some() {
        return Err(PortalError::Unauthenticated("the token was revoked"));
    }
    if at.as_second() >= expires_at {
        return Err(PortalError::Unauthenticated("the token has expired"));
    }
    let user_id: UserId = user_id
        .parse()
        .map_err(|_| PortalError::Unauthenticated("the token is not recognised"))?;
    let user: User = store::get(conn, user_id.0)?
        .ok_or(PortalError::Unauthenticated("the user no longer exists"))?;
    if user.status != UserStatus::Active {
        return Err(PortalError::Unauthenticated("the user is disabled"));
    }
    viewer_for_user(conn, &user)
}

pub fn viewer_for_user(conn: &Connection, user: &User) -> Result<Viewer> {
    let plan_code = match user.account_id {
        Some(a) => plan_of(conn, a)?.map(|p| p.code),
        None => None,
    };
    Ok(Viewer {
        user_id: user.id,
        role: user.role,
        account_id: user.account_id,
        plan_code,
        access: user.conversation_access,
        team_ids: user.team_ids.clone(),
    })
}

fn plan_of(conn: &Connection, account: AccountId) -> Result<Option<Plan>> {
    let sub = store::query::<Subscription>(
        conn,
        "SELECT data FROM subscriptions WHERE account_id = ?1",
        [account.to_string()],
    )?
    .pop();
    match sub {
        Some(s) => store::get::<Plan>(conn, s.plan_id.0),
        None => Ok(None),
    }
}

/// Checks a redirect URI is a loopback one for the native client (RFC 8252
/// §7.3: `http`, literal `127.0.0.1` or `[::1]`, any port).
pub fn check_redirect_uri(uri: &str) -> Result<url::Url> {
    let bad = |why: &str| {
        PortalError::oauth(
            OAuthErrorCode::InvalidRequest,
            format!("redirect_uri {uri:?} {why}"),
        )
    };
    let url = url::Url::parse(uri).map_err(|_| bad("is not a URL"))?;
    if url.scheme() != "http" {
        return Err(bad("must use http on the loopback interface"));
    }
    match url.host() {
        Some(url::Host::Ipv4(ip)) if ip.is_loopback() => {}
        Some(url::Host::Ipv6(ip)) if ip.is_loopback() => {}
        _ => return Err(bad("must point at 127.0.0.1 or [::1]")),
    }
    if url.fragment().is_some() {
        return Err(bad("must not have a fragment"));
    }
    Ok(url)
}

/// A validated authorization request.
#[derive(Debug, Clone)]
pub struct AuthorizeRequest {
    pub client_id: String,
    pub redirect_uri: url::Url,
    pub code_challenge: String,
    pub state: Option<String>,
}

impl AuthorizeRequest {
    pub fn new(
        response_type: &str,
        client_id: &str,
        redirect_uri: &str,
        code_challenge: &str,
        method: &str,
        state: Option<String>,
    ) -> Result<Self> {
        let invalid = |m: &str| PortalError::oauth(OAuthErrorCode::InvalidRequest, m);
        if client_id != INBOX_CLIENT_ID {
            return Err(PortalError::oauth(
                OAuthErrorCode::InvalidClient,
                format!("unknown client_id {client_id:?}"),
            ));
        }
        let redirect_uri = check_redirect_uri(redirect_uri)?;
        if response_type != "code" {
            return Err(invalid("response_type must be \"code\""));
        }
        if method != "S256" {
            return Err(invalid(
                "code_challenge_method must be \"S256\" (PKCE is required)",
            ));
        }
        let challenge_ok =
            code_challenge.len() == 43 && URL_SAFE_NO_PAD.decode(code_challenge).is_ok();
        if !challenge_ok {
            return Err(invalid(
                "code_challenge must be the base64url SHA-256 of the verifier (43 characters)",
            ));
        }
        Ok(AuthorizeRequest {
            client_id: client_id.into(),
            redirect_uri,
            code_challenge: code_challenge.into(),
            state,
        })
    }

    /// Issues a one-time code for `user` and returns the URL to redirect to.
    pub fn grant(&self, store: &Store, user: UserId, at: Timestamp) -> Result<url::Url> {
        let code = new_token();
        store.write_raw(|c| {
            c.execute(
                "INSERT INTO oauth_codes (hash, user_id, client_id, redirect_uri, code_challenge, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    token_hash(&code),
                    user.to_string(),
                    self.client_id,
                    self.redirect_uri.as_str(),
                    self.code_challenge,
                    at.as_second() + CODE_TTL_SECS
                ],
            )?;
            Ok(())
        })?;
        let mut url = self.redirect_uri.clone();
        url.query_pairs_mut().append_pair("code", &code);
        if let Some(s) = &self.state {
            url.query_pairs_mut().append_pair("state", s);
        }
        Ok(url)
    }
}

/// PKCE S256: base64url(SHA-256(verifier)).
pub fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

fn grant_error(m: impl Into<String>) -> PortalError {
    PortalError::oauth(OAuthErrorCode::InvalidGrant, m)
}

/// Issues an access token and a new refresh token in `family`.
fn issue_pair(
    conn: &Connection,
    user: UserId,
    family: &str,
    at: Timestamp,
) -> Result<portico_model::wire::TokenResponse> {
    let access_token = insert_token(
        conn,
        TokenKind::Access,
        user,
        Some(family),
        at,
        ACCESS_TTL_SECS,
    )?;
    let refresh_token = insert_token(
        conn,
        TokenKind::Refresh,
        user,
        Some(family),
        at,
        REFRESH_TTL_SECS,
    )?;
    Ok(portico_model::wire::TokenResponse {
        access_token,
        token_type: "Bearer".into(),
        expires_in: ACCESS_TTL_SECS,
        refresh_token,
    })
}

/// `grant_type=authorization_code`: trades a code and its PKCE verifier for tokens.
pub fn exchange_code(
    store: &Store,
    code: &str,
    verifier: &str,
    redirect_uri: &str,
    client_id: &str,
    at: Timestamp,
) -> Result<portico_model::wire::TokenResponse> {
    if !(43..=128).contains(&verifier.len()) {
        return Err(PortalError::oauth(
            OAuthErrorCode::InvalidRequest,
            "code_verifier must be 43 to 128 characters (RFC 7636)",
        ));
    }
    store.write_raw(|c| {
        let tx = c.transaction()?;
        let row: Option<(String, String, String, String, i64, Option<i64>)> = tx
            .query_row(
                "SELECT user_id, client_id, redirect_uri, code_challenge, expires_at, used_at FROM oauth_codes WHERE hash = ?1",
                [token_hash(code)],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)),
            )
            .optional()?;
        let Some((user, code_client, code_redirect, challenge, expires_at, used_at)) = row else {
            return Err(grant_error("the authorization code is not recognised"));
        };
        if used_at.is_some() {
            // A code used twice may have been intercepted: kill what it minted.
            tx.execute("UPDATE tokens SET revoked_at = ?2 WHERE family = ?1 AND revoked_at IS NULL", params![token_hash(code), at.as_second()])?;
            tx.commit()?;
            return Err(grant_error("the authorization code was already used; its tokens are revoked"));
        }
        if at.as_second() >= expires_at {
            return Err(grant_error("the authorization code has expired; sign in again"));
        }
        if code_client != client_id {
            return Err(grant_error("the code was issued to another client"));
        }
        // The code stored the parsed (normalised) URI; compare like with like,
        // so "http://127.0.0.1:5000" matches its stored "http://127.0.0.1:5000/".
        if !url::Url::parse(redirect_uri).is_ok_and(|u| u.as_str() == code_redirect) {
            return Err(grant_error("redirect_uri differs from the one in the authorization request"));
        }
        if pkce_challenge(verifier) != challenge {
            return Err(grant_error("code_verifier does not match the code_challenge"));
        }
        tx.execute("UPDATE oauth_codes SET used_at = ?2 WHERE hash = ?1", params![token_hash(code), at.as_second()])?;
        let user: UserId = user.parse().map_err(|_| grant_error("the code's user is unknown"))?;
        // The family is named after the code, so a replayed code revokes it.
        let pair = issue_pair(&tx, user, &token_hash(code), at)?;
        tx.commit()?;
        Ok(pair)
    })
}

/// `grant_type=refresh_token`: rotates a refresh token.
pub fn refresh(
    store: &Store,
    refresh_token: &str,
    client_id: &str,
    at: Timestamp,
) -> Result<portico_model::wire::TokenResponse> {
    if client_id != INBOX_CLIENT_ID {
        return Err(PortalError::oauth(
            OAuthErrorCode::InvalidClient,
            format!("unknown client_id {client_id:?}"),
        ));
    }
    store.write_raw(|c| {
        let tx = c.transaction()?;
        type TokenRow = (String, String, Option<String>, i64, Option<i64>, Option<i64>);
        let row: Option<TokenRow> = tx
            .query_row(
                "SELECT kind, user_id, family, expires_at, used_at, revoked_at FROM tokens WHERE hash = ?1",
                [token_hash(refresh_token)],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)),
            )
            .optional()?;
        let Some((kind, user, family, expires_at, used_at, revoked_at)) = row else {
            return Err(grant_error("the refresh token is not recognised"));
        };
        let family = family.filter(|_| kind == "refresh").ok_or_else(|| grant_error("not a refresh token"))?;
        if revoked_at.is_some() {
            return Err(grant_error("the refresh token was revoked; sign in again"));
        }
        if used_at.is_some() {
            revoke_family(&tx, &family, at)?;
            tx.commit()?;
            tracing::warn!(%user, "refresh token replayed; revoked its family");
            return Err(grant_error("the refresh token was already used; every token from this sign-in is revoked"));
        }
        if at.as_second() >= expires_at {
            return Err(grant_error("the refresh token has expired; sign in again"));
        }
        tx.execute("UPDATE tokens SET used_at = ?2 WHERE hash = ?1", params![token_hash(refresh_token), at.as_second()])?;
        let user: UserId = user.parse().map_err(|_| grant_error("the token's user is unknown"))?;
        let pair = issue_pair(&tx, user, &family, at)?;
        tx.commit()?;
        Ok(pair)
    })
}

/// RFC 7009 revocation: revokes the token and everything of its sign-in.
/// Unknown tokens are not an error (the spec says answer 200 either way).
pub fn revoke(store: &Store, token: &str, at: Timestamp) -> Result<()> {
    end_session(store, token, at)
}

/// Counts failed sign-ins per key (email, client address) in a fixed window.
pub struct LoginLimiter {
    max_failures: u32,
    window_secs: i64,
    failures: Mutex<HashMap<String, (i64, u32)>>,
}

impl LoginLimiter {
    pub fn new(max_failures: u32, window_secs: i64) -> Self {
        LoginLimiter {
            max_failures,
            window_secs,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Errs with `rate_limited` if any key has used up its failures.
    pub fn check(&self, keys: &[&str], at: Timestamp) -> Result<()> {
        let map = self.failures.lock().unwrap();
        for key in keys {
            if let Some((start, n)) = map.get(*key) {
                let left = start + self.window_secs - at.as_second();
                if *n >= self.max_failures && left > 0 {
                    return Err(PortalError::RateLimited {
                        retry_after_secs: left as u64,
                    });
                }
            }
        }
        Ok(())
    }

    pub fn failed(&self, keys: &[&str], at: Timestamp) {
        let mut map = self.failures.lock().unwrap();
        let now = at.as_second();
        map.retain(|_, (start, _)| *start + self.window_secs > now);
        for key in keys {
            let entry = map.entry((*key).to_owned()).or_insert((now, 0));
            entry.1 += 1;
        }
    }

    pub fn succeeded(&self, key: &str) {
        self.failures.lock().unwrap().remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_matches_rfc7636_example() {
        // RFC 7636 appendix B.
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn loopback_redirects_only() {
        assert!(check_redirect_uri("http://127.0.0.1:49152/callback").is_ok());
        assert!(check_redirect_uri("http://[::1]:8000/cb").is_ok());
        for bad in [
            "https://127.0.0.1/cb",
            "http://example.com/cb",
            "http://localhost:1/cb",
            "http://10.0.0.1/cb",
            "nope",
        ] {
            assert!(check_redirect_uri(bad).is_err(), "{bad} must be refused");
        }
    }

    #[test]
    fn limiter_blocks_after_failures_and_forgets_after_window() {
        let l = LoginLimiter::new(3, 60);
        let t0 = Timestamp::from_second(1_000).unwrap();
        for _ in 0..3 {
            l.check(&["a"], t0).unwrap();
            l.failed(&["a"], t0);
        }
        assert!(matches!(
            l.check(&["a"], t0),
            Err(PortalError::RateLimited { .. })
        ));
        assert!(l.check(&["b"], t0).is_ok(), "other keys are unaffected");
        assert!(
            l.check(&["a"], Timestamp::from_second(1_061).unwrap())
                .is_ok()
        );
    }

    #[test]
    fn passwords_verify() {
        let h = hash_password("correct horse");
        assert!(verify_password(&h, "correct horse"));
        assert!(!verify_password(&h, "wrong"));
    }

    #[test]
    fn passwords_verify_with_the_parameters_of_their_hash() {
        // A hash made with other costs (e.g. before a parameter change)
        // still verifies: the check reads them from the hash.
        let params = argon2::Params::new(8 * 1024, 1, 1, None).unwrap();
        let salt = SaltString::generate(&mut OsRng);
        let h = Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
            .hash_password(b"battery staple", &salt)
            .unwrap()
            .to_string();
        assert!(verify_password(&h, "battery staple"));
        assert!(!verify_password(&h, "battery stapler"));
        assert!(
            !verify_password("$argon2id$garbage", "battery staple"),
            "an unreadable hash never verifies"
        );
    }
}
