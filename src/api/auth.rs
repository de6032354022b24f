//! API tokens, scopes and web sessions.
//!
//! - A token is `afb_` followed by 64 hex digits (32 random bytes). Only its SHA-256 is stored: random
//!   256-bit tokens need no slow password hash.
//! - A token's scope is the operator (every tenant) or one tenant.
//! - Embedded mode keeps token records in `{repo}/.afb/api-tokens.json` (the repository's control area;
//!   tenant ids never start with `.`, so it is never mistaken for a tenant). `afb api-token` adds one.
//!   An operator token can also be given to `afb serve` by `--token` or `AFB_API_TOKEN`.
//! - The file is re-read on every check (it is small), so new or revoked tokens apply without a restart.
//! - With a PostgreSQL control plane (`--database-url`) token records live in table `api_tokens`
//!   (`sql/migrations/0003_api_tokens.sql`) instead: same hash, scope, expiry and label.
//! - Web sessions: logging in with a token sets an `afb_session` cookie (HttpOnly, SameSite=Strict,
//!   Path=/) naming a random in-memory session, which carries a CSRF token that every form posts back.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::error::ApiError;

/// What a principal may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every tenant; may change share settings and start jobs anywhere.
    Operator,
    /// One tenant only.
    Tenant(String),
}

impl Scope {
    pub fn parse(s: &str) -> anyhow::Result<Scope> {
        if s == "operator" {
            return Ok(Scope::Operator);
        }
        match s.strip_prefix("tenant:") {
            Some(t) if !t.is_empty() => Ok(Scope::Tenant(t.to_string())),
            _ => anyhow::bail!("scope {s:?}: expected \"operator\" or \"tenant:ID\""),
        }
    }

    pub fn as_string(&self) -> String {
        match self {
            Scope::Operator => "operator".into(),
            Scope::Tenant(t) => format!("tenant:{t}"),
        }
    }

    /// May this scope see `tenant`? Others' tenants answer 404, as if they did not exist.
    pub fn check_tenant(&self, tenant: &str) -> Result<(), ApiError> {
        match self {
            Scope::Operator => Ok(()),
            Scope::Tenant(t) if t == tenant => Ok(()),
            Scope::Tenant(_) => Err(ApiError::not_found(format!("tenant {tenant:?} not found"))),
        }
    }

    pub fn sees(&self, tenant: &str) -> bool {
        self.check_tenant(tenant).is_ok()
    }

    pub fn require_operator(&self) -> Result<(), ApiError> {
        match self {
            Scope::Operator => Ok(()),
            Scope::Tenant(_) => Err(ApiError::forbidden("this needs an operator token")),
        }
    }
}

/// One stored token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenRecord {
    /// Hex SHA-256 of the token.
    pub sha256: String,
    /// `operator` or `tenant:ID`.
    pub scope: String,
    /// RFC 3339 UTC; absent = never expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

pub fn sha256_hex(s: &str) -> String {
    let d = Sha256::digest(s.as_bytes());
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// 32 random bytes as 64 hex digits.
fn random_hex() -> String {
    (0..4).map(|_| format!("{:016x}", rand::random::<u64>())).collect()
}

/// A fresh token: `afb_` + 64 hex digits. Callers store only its hash ([`sha256_hex`]).
pub fn new_token() -> String {
    format!("afb_{}", random_hex())
}

/// The token file of a repository directory.
pub fn token_file(repo_dir: &Path) -> PathBuf {
    repo_dir.join(".afb").join("api-tokens.json")
}

/// Create a token, store its hash in `file`, return the token (shown once).
pub fn issue_token(file: &Path, scope: &Scope, ttl: Option<Duration>, label: Option<String>) -> anyhow::Result<String> {
    let token = new_token();
    let mut records = read_records(file)?;
    let expires_at = ttl.map(|d| {
        (time::OffsetDateTime::now_utc() + d)
            .format(&time::format_description::well_known::Rfc3339)
            .expect("formattable time")
    });
    records.push(TokenRecord { sha256: sha256_hex(&token), scope: scope.as_string(), expires_at, label });
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let tmp = file.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(&records)?).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, file).with_context(|| format!("replacing {}", file.display()))?;
    Ok(token)
}

fn read_records(file: &Path) -> anyhow::Result<Vec<TokenRecord>> {
    match std::fs::read(file) {
        Ok(b) => serde_json::from_slice(&b).with_context(|| format!("{}: not a token file", file.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e).with_context(|| format!("reading {}", file.display())),
    }
}

async fn pg_record(pool: &deadpool_postgres::Pool, sha256: &str) -> anyhow::Result<Option<TokenRecord>> {
    let c = pool.get().await.context("connecting to PostgreSQL for a token check")?;
    let row = c
        .query_opt(
            "SELECT scope, to_char(expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), label
             FROM api_tokens WHERE token_sha256 = $1",
            &[&sha256],
        )
        .await
        .context("reading api_tokens")?;
    Ok(row.map(|r| TokenRecord { sha256: sha256.to_string(), scope: r.get(0), expires_at: r.get(1), label: r.get(2) }))
}

/// Create a token, store its hash in PostgreSQL table `api_tokens`, return the token (shown once).
pub async fn issue_token_pg(
    client: &tokio_postgres::Client,
    scope: &Scope,
    ttl: Option<Duration>,
    label: Option<String>,
) -> anyhow::Result<String> {
    let token = new_token();
    let secs = ttl.map(|d| d.as_secs_f64());
    client
        .execute(
            "INSERT INTO api_tokens (token_sha256, scope, expires_at, label)
             VALUES ($1, $2, CASE WHEN $3::float8 IS NULL THEN NULL ELSE now() + make_interval(secs => $3::float8) END, $4)",
            &[&sha256_hex(&token), &scope.as_string(), &secs, &label],
        )
        .await
        .context("storing the token's hash in api_tokens")?;
    Ok(token)
}

/// A logged-in browser.
#[derive(Debug, Clone)]
pub struct Session {
    pub scope: Scope,
    pub csrf: String,
    /// SHA-256 (hex) of the token the session logged in with: checked again on every request, so a
    /// session ends when its token is revoked or expires.
    pub token_sha256: String,
    expires: Instant,
}

/// Sessions held at most; the one closest to its end goes first.
pub const MAX_SESSIONS: usize = 10_000;

/// A random value for a CSRF token: 32 random bytes as hex.
pub fn random_token() -> String {
    random_hex()
}

/// Where token records live.
enum TokenStore {
    File(PathBuf),
    Postgres(deadpool_postgres::Pool),
}

/// Token checks and web sessions.
pub struct Auth {
    store: TokenStore,
    operator_sha256: Option<String>,
    sessions: Mutex<HashMap<String, Session>>,
    session_ttl: Duration,
}

impl Auth {
    pub fn new(file: PathBuf, operator_token: Option<&str>) -> Self {
        Self::with_store(TokenStore::File(file), operator_token)
    }

    /// Token records in PostgreSQL table `api_tokens` (migrated by the caller).
    pub fn postgres(pool: deadpool_postgres::Pool, operator_token: Option<&str>) -> Self {
        Self::with_store(TokenStore::Postgres(pool), operator_token)
    }

    fn with_store(store: TokenStore, operator_token: Option<&str>) -> Self {
        Auth {
            store,
            operator_sha256: operator_token.map(sha256_hex),
            sessions: Mutex::new(HashMap::new()),
            session_ttl: Duration::from_secs(8 * 3600),
        }
    }

    /// The scope of a bearer token: 401 `unauthorized` if unknown, 401 `token_expired` if expired.
    pub async fn check_token(&self, token: &str) -> Result<Scope, ApiError> {
        self.check_token_sha256(&sha256_hex(token.trim())).await
    }

    /// [`Auth::check_token`] by the token's hash (what a session keeps).
    pub async fn check_token_sha256(&self, h: &str) -> Result<Scope, ApiError> {
        if self.operator_sha256.as_deref() == Some(h) {
            return Ok(Scope::Operator);
        }
        let found = match &self.store {
            TokenStore::File(file) => {
                read_records(file).map_err(ApiError::internal)?.into_iter().find(|r| r.sha256 == h)
            }
            TokenStore::Postgres(pool) => pg_record(pool, h).await.map_err(ApiError::internal)?,
        };
        let Some(r) = found else {
            return Err(ApiError::unauthorized("unknown API token"));
        };
        if let Some(e) = &r.expires_at {
            let t = time::OffsetDateTime::parse(e, &time::format_description::well_known::Rfc3339)
                .map_err(|_| ApiError::internal(anyhow::anyhow!("token record has a bad expires_at {e:?}")))?;
            if t <= time::OffsetDateTime::now_utc() {
                return Err(ApiError::new(
                    http::StatusCode::UNAUTHORIZED,
                    "token_expired",
                    format!("API token expired at {e}"),
                ));
            }
        }
        Scope::parse(&r.scope).map_err(ApiError::internal)
    }

    /// Start a session for a token (already checked) and its scope; returns (session id, session). At most
    /// [`MAX_SESSIONS`] are kept: ended ones are dropped, then the one closest to its end.
    pub fn login(&self, token: &str, scope: Scope) -> (String, Session) {
        let id = random_hex();
        let s = Session {
            scope,
            csrf: random_hex(),
            token_sha256: sha256_hex(token.trim()),
            expires: Instant::now() + self.session_ttl,
        };
        let mut m = self.sessions.lock().expect("sessions lock");
        m.retain(|_, s| s.expires > Instant::now());
        if m.len() >= MAX_SESSIONS
            && let Some(first) = m.iter().min_by_key(|(_, s)| s.expires).map(|(k, _)| k.clone())
        {
            m.remove(&first);
        }
        m.insert(id.clone(), s.clone());
        (id, s)
    }

    /// A live session whose token is still valid (a revoked or expired token ends it).
    pub async fn session(&self, id: &str) -> Option<Session> {
        let s = {
            let m = self.sessions.lock().expect("sessions lock");
            m.get(id).filter(|s| s.expires > Instant::now()).cloned()
        }?;
        match self.check_token_sha256(&s.token_sha256).await {
            Ok(scope) if scope == s.scope => Some(s),
            _ => {
                self.logout(id);
                None
            }
        }
    }

    /// Sessions held now.
    pub fn session_count(&self) -> usize {
        self.sessions.lock().expect("sessions lock").len()
    }

    pub fn logout(&self, id: &str) {
        self.sessions.lock().expect("sessions lock").remove(id);
    }
}

/// The value of cookie `name` in a request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_bounded_and_csrf_compares_whole_values() {
        let a = Auth::new(PathBuf::from("/nonexistent/api-tokens.json"), Some("op"));
        for _ in 0..MAX_SESSIONS + 50 {
            a.login("op", Scope::Operator);
        }
        assert_eq!(a.session_count(), MAX_SESSIONS);
        use crate::azure::credential::same_secret;
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd") && !same_secret("abc", "ab") && !same_secret("", "a"));
    }
}
