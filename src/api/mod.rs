//! `afb serve`: the JSON REST API over a repository's index, and the web dashboard ([`crate::web`]).
//!
//! - [`error`]: the one JSON error shape.
//! - [`auth`]: API tokens (stored hashed), scopes (operator or one tenant), web sessions.
//! - [`data`]: reads from the index (manifests, directory maps, streaming snapshot reads) with caches.
//! - [`routes`]: the API handlers and the route table that `/openapi.json` is generated from.
//! - [`settings`]: shares' Azure connection settings (secrets stored, never echoed).
//!
//! Reference: `docs/api.md`.

pub mod auth;
pub mod data;
pub mod error;
pub mod jobs;
pub mod limit;
pub mod routes;
pub mod sample;
pub mod settings;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;

use crate::cli::{ExitCode, RepoArgs};
use crate::index::snapshot::NodeIndex;

/// Largest request body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Everything a request handler needs.
pub struct AppState {
    pub index: data::Index,
    pub auth: auth::Auth,
    pub settings: settings::Settings,
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

/// Arguments of `afb serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// PostgreSQL control plane: API tokens (table `api_tokens`) and the job queue. Without it, tokens are
    /// kept in the repository's control area (`.afb/`) and jobs in an in-process queue. Share settings stay
    /// in `.afb/shares.json` either way.
    #[arg(long, env = "AFB_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Do not run jobs in this process (with `--database-url`, separate `afb worker`s run them).
    #[arg(long)]
    pub no_runner: bool,
    /// Also let tenants register share sources on this host: `*.suffix` or `host[:port]` (repeatable).
    /// By default a tenant may name only Azure's public file endpoints; the operator may name any.
    #[arg(long = "allow-endpoint", value_name = "HOST")]
    pub allow_endpoint: Vec<String>,
    /// An operator API token accepted in addition to the token file.
    #[arg(long, env = "AFB_API_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// File holding the master key (64 hex digits), or set AFB_MASTER_KEY: the embedded runner needs it to
    /// run scan, backup, restore and verify jobs, and share secrets are stored sealed with it. Without it
    /// only `noop` jobs run and no share source can be stored.
    #[arg(long)]
    pub master_key_file: Option<PathBuf>,
    /// Let tenants restore to local directories, only below DIR/<tenant> (created 0700). Without it tenants
    /// restore to their shares only; the operator may restore to any absolute path either way.
    #[arg(long, value_name = "DIR")]
    pub restore_root: Option<PathBuf>,
    /// The URL users reach this server at, when a proxy in front of it terminates TLS: an `https://` URL
    /// marks the session cookie `Secure`.
    #[arg(long, value_name = "URL")]
    pub public_url: Option<String>,
}

impl ServeArgs {
    /// The master key, if one is configured; a configured but unreadable or malformed key is an error.
    fn master_key(&self) -> anyhow::Result<Option<crate::repository::MasterKey>> {
        let hex = match &self.master_key_file {
            Some(f) => {
                std::fs::read_to_string(f).with_context(|| format!("reading master key file {}", f.display()))?
            }
            None => match std::env::var("AFB_MASTER_KEY") {
                Ok(v) => v,
                Err(_) => return Ok(None),
            },
        };
        Ok(Some(crate::repository::MasterKey::from_hex(hex.trim()).context("master key")?))
    }
}

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
    let dir = crate::repository::store::Location::parse(repo_dir)?.control_root()?;
    let restore_root = match &opts.restore_root {
        Some(r) => {
            std::fs::create_dir_all(r).with_context(|| format!("creating --restore-root {}", r.display()))?;
            Some(r.canonicalize().with_context(|| format!("--restore-root {}", r.display()))?)
        }
        None => None,
    };
    let settings = settings::Settings::new(dir.join(".afb").join("shares.json"), opts.master_key.clone());
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

/// The whole application: API under `/api/v1`, `/openapi.json`, the dashboard under `/`.
pub fn app(state: SharedState) -> axum::Router {
    routes::router()
        .merge(crate::web::router())
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// `afb serve`.
pub async fn serve(a: ServeArgs) -> anyhow::Result<ExitCode> {
    let master = a.master_key()?;
    let handlers = if a.no_runner { None } else { Some(jobs::job_handlers(&a.repo.repo, master.clone())) };
    let secure_cookies = match &a.public_url {
        Some(u) => {
            let u = url::Url::parse(u).with_context(|| format!("--public-url {u:?}"))?;
            anyhow::ensure!(matches!(u.scheme(), "http" | "https"), "--public-url must be an http(s) URL");
            u.scheme() == "https"
        }
        None => false,
    };
    let (auth, jobs) = match &a.database_url {
        Some(url) => {
            let jobs = jobs::Jobs::postgres(url, handlers)
                .await
                .with_context(|| format!("--database-url {}", crate::jobs::migrate::redact(url)))?;
            (auth::Auth::postgres(crate::jobs::postgres::pool(url, 4)?, a.token.as_deref()), jobs)
        }
        None => {
            let dir = crate::repository::store::Location::parse(&a.repo.repo)?.control_root()?;
            (auth::Auth::new(auth::token_file(&dir), a.token.as_deref()), jobs::Jobs::memory(handlers))
        }
    };
    let opts = ServeOptions {
        master_key: master,
        restore_root: a.restore_root.clone(),
        allow_endpoints: a.allow_endpoint.clone(),
        secure_cookies,
    };
    let st = state_with(&a.repo.repo, auth, jobs, opts)?;
    let listener = tokio::net::TcpListener::bind(a.addr).await.with_context(|| format!("binding {}", a.addr))?;
    let stop = crate::jobs::cli::signal_listener()?;
    eprintln!(
        "afb serve: http://{} (repository {}, jobs: {}{})",
        listener.local_addr()?,
        a.repo.repo,
        if a.database_url.is_some() { "PostgreSQL queue" } else { "in-process queue" },
        if a.no_runner { ", no runner" } else { ", embedded runner" }
    );
    serve_until(listener, st, stop).await?;
    Ok(ExitCode::Ok)
}

/// Serves [`app`] on `listener` until `stop` resolves (`afb serve` and `afb demo` pass SIGTERM or
/// Ctrl-C), lets open requests finish, then stops the embedded runner.
pub async fn serve_until(
    listener: tokio::net::TcpListener,
    st: SharedState,
    stop: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let jobs = st.jobs.clone();
    // Load the directory summaries the first pages need while the server already answers.
    let warm = st.clone();
    tokio::spawn(async move { warm.index.warm().await });
    axum::serve(listener, app(st).into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(stop)
        .await?;
    jobs.shutdown().await;
    Ok(())
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
