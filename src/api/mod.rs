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
pub mod routes;
pub mod sample;
pub mod settings;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;

use crate::cli::{ExitCode, RepoArgs};
use crate::index::snapshot::Repo;

/// Largest request body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Everything a request handler needs.
pub struct AppState {
    pub index: data::Index,
    pub auth: auth::Auth,
    pub settings: settings::Settings,
    /// Where `htmx.min.js` is served from (`node_modules/htmx.org/dist/` of the source tree by default).
    pub static_dir: PathBuf,
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
    /// PostgreSQL control plane (shares' settings, jobs). Not supported by this build yet: the embedded
    /// mode keeps settings and tokens in the repository's control area (`.afb/`).
    #[arg(long, env = "AFB_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// An operator API token accepted in addition to the token file.
    #[arg(long, env = "AFB_API_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

/// Build the state for a repository location (its control area is local: see `Location::control_root`).
pub fn state(repo_dir: &str, operator_token: Option<&str>) -> anyhow::Result<SharedState> {
    let repo = Repo::open(repo_dir)?;
    let dir = crate::repository::store::Location::parse(repo_dir)?.control_root()?;
    Ok(Arc::new(AppState {
        index: data::Index::new(repo),
        auth: auth::Auth::new(auth::token_file(&dir), operator_token),
        settings: settings::Settings::new(dir.join(".afb").join("shares.json")),
        static_dir: PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/node_modules/htmx.org/dist")),
    }))
}

/// The whole application: API under `/api/v1`, `/openapi.json`, the dashboard under `/`.
pub fn app(state: SharedState) -> axum::Router {
    routes::router().merge(crate::web::router()).layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES)).with_state(state)
}

/// `afb serve`.
pub async fn serve(a: ServeArgs) -> anyhow::Result<ExitCode> {
    if a.database_url.is_some() {
        anyhow::bail!("--database-url: the PostgreSQL control plane is not wired into afb serve yet; run without it (embedded mode keeps tokens and settings in the repository's .afb/)");
    }
    let st = state(&a.repo.repo, a.token.as_deref())?;
    let listener = tokio::net::TcpListener::bind(a.addr).await.with_context(|| format!("binding {}", a.addr))?;
    eprintln!("afb serve: http://{} (repository {})", listener.local_addr()?, a.repo.repo);
    axum::serve(listener, app(st)).with_graceful_shutdown(async { let _ = tokio::signal::ctrl_c().await; }).await?;
    Ok(ExitCode::Ok)
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
    /// Expire after this many hours (default: never).
    #[arg(long)]
    pub expires_hours: Option<u64>,
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
    let dir = crate::repository::store::Location::parse(&a.repo.repo)?.control_root()?;
    let token = auth::issue_token(&auth::token_file(&dir), &scope, a.expires_hours.map(|h| std::time::Duration::from_secs(h * 3600)), a.label)?;
    println!("{token}");
    Ok(ExitCode::Ok)
}
