//! The JSON REST API over a repository's index (`afb serve` runs it beside the dashboard, [`crate::server`]).
//!
//! - [`error`]: the one JSON error shape.
//! - [`auth`]: API tokens (stored hashed), scopes (operator or one tenant), web sessions.
//! - [`data`]: reads from the index (manifests, directory maps, streaming snapshot reads) with caches.
//! - [`routes`]: the API handlers and the route table that `/openapi.json` is generated from.
//!
//! Reference: `docs/api.md`.

pub mod auth;
pub mod data;
pub mod error;
pub mod jobs;
pub mod limit;
pub mod routes;
pub mod sample;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;

use crate::cli::{ExitCode, RepoArgs};
use crate::index::NodeIndex;

/// Largest request body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Everything a request handler needs.
pub struct AppState {
    pub index: data::Index,
    pub auth: auth::Auth,
    pub settings: crate::jobs::settings::Settings,
    /// The job queue and the embedded runner.
    pub jobs: Arc<jobs::Jobs>,
    /// Where `htmx.min.js` is served from (`node_modules/htmx.org/dist/` of the source tree by default).
    pub static_dir: PathBuf,
    /// `--restore-root`: tenants restore to local directories only below `{root}/{tenant}`.
    pub restore_root: Option<PathBuf>,
    /// Session cookies get `Secure` (served over TLS, or behind `--public-url https://...`).
    pub secure_cookies: bool,
    /// Failed token checks per client address and per token prefix.
    pub limiter: limit::Limiter,
}

/// What `afb serve` configures beyond the repository, the token store and the job queue.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// Seals share secrets in `.afb/shares.json`; without it no secret can be stored.
    pub master_key: Option<crate::repository::MasterKey>,
    /// `--restore-root`: created if missing; tenants' local restores go below `{root}/{tenant}`.
    pub restore_root: Option<PathBuf>,
    /// `--allow-endpoint` host patterns tenants may also register sources on.
    pub allow_endpoints: Vec<String>,
    /// Mark session cookies `Secure`.
    pub secure_cookies: bool,
}

pub type SharedState = Arc<AppState>;

/// Build the state for a repository location: tokens in its control area (`.afb/`, local: see
/// `Location::control_root`), an in-process job queue with no runner (jobs stay queued).
pub fn state(repo_dir: &str, operator_token: Option<&str>) -> anyhow::Result<SharedState> {
    let dir = crate::repository::store::Location::parse(repo_dir)?.control_root()?;
    state_with(
        repo_dir,
        auth::Auth::new(auth::token_file(&dir), operator_token),
        jobs::Jobs::memory(None),
        ServeOptions::default(),
    )
}

/// Build the state with a given token store, job queue and options.
pub fn state_with(
    repo_dir: &str,
    auth: auth::Auth,
    jobs: Arc<jobs::Jobs>,
    opts: ServeOptions,
) -> anyhow::Result<SharedState> {
    let repo = NodeIndex::open(repo_dir)?;
    let restore_root = match &opts.restore_root {
        Some(r) => {
            std::fs::create_dir_all(r).with_context(|| format!("creating --restore-root {}", r.display()))?;
            Some(r.canonicalize().with_context(|| format!("--restore-root {}", r.display()))?)
        }
        None => None,
    };
    let settings =
        crate::jobs::settings::Settings::new(crate::jobs::settings::settings_file(repo_dir)?, opts.master_key.clone());
    settings.allow_tenant_endpoints(&opts.allow_endpoints);
    Ok(Arc::new(AppState {
        index: data::Index::new(repo),
        auth,
        settings,
        jobs,
        static_dir: PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/node_modules/htmx.org/dist")),
        restore_root,
        secure_cookies: opts.secure_cookies,
        limiter: limit::Limiter::new(limit::FAILURES_PER_WINDOW, limit::WINDOW, limit::MAX_KEYS),
    }))
}

/// Arguments of `afb api-token`.
#[derive(Debug, Clone, Args)]
pub struct TokenArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    /// Scope the token to this tenant.
    #[arg(long, conflicts_with = "operator", required_unless_present = "operator")]
    pub tenant: Option<String>,
    /// An operator token (every tenant).
    #[arg(long)]
    pub operator: bool,
    /// Expire after this many hours.
    #[arg(long, default_value_t = 24 * 90, conflicts_with = "never_expires")]
    pub expires_hours: u64,
    /// A token that never expires (default: it expires after `--expires-hours`).
    #[arg(long)]
    pub never_expires: bool,
    /// Store the token's hash in this PostgreSQL database (table `api_tokens`, migrated first) instead of
    /// the repository's `.afb/api-tokens.json`; for `afb serve --database-url`.
    #[arg(long, env = "AFB_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// A note stored with the token's hash.
    #[arg(long)]
    pub label: Option<String>,
}

/// `afb api-token`: create a token, store its hash, print it once.
pub async fn issue(a: TokenArgs) -> anyhow::Result<ExitCode> {
    let scope = match a.tenant {
        Some(t) => {
            crate::index::manifest::check_id("tenant", &t)?;
            auth::Scope::Tenant(t)
        }
        None => auth::Scope::Operator,
    };
    let ttl = (!a.never_expires).then(|| std::time::Duration::from_secs(a.expires_hours.saturating_mul(3600)));
    let token = match &a.database_url {
        Some(url) => {
            crate::jobs::migrate::migrate_url(url).await?;
            let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                .await
                .with_context(|| format!("connecting to {}", crate::jobs::migrate::redact(url)))?;
            let driver = tokio::spawn(conn);
            let t = auth::issue_token_pg(&client, &scope, ttl, a.label).await;
            drop(client);
            let _ = driver.await;
            t?
        }
        None => {
            let dir = crate::repository::store::Location::parse(&a.repo.repo)?.control_root()?;
            auth::issue_token(&auth::token_file(&dir), &scope, ttl, a.label)?
        }
    };
    println!("{token}");
    Ok(ExitCode::Ok)
}
