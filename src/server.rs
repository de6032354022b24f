//! `afb serve`: one listener for the REST API ([`crate::api`]) and the web dashboard ([`crate::web`]), with
//! the job runner the API starts jobs on. The composition root of the HTTP side: the only module that
//! knows both.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use crate::api::{MAX_BODY_BYTES, ServeOptions, SharedState, auth, jobs, routes, state_with};
use crate::cli::{ExitCode, RepoArgs};

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
            Some(f) => return Ok(Some(crate::repository::MasterKey::from_file(f)?)),
            None => match std::env::var("AFB_MASTER_KEY") {
                Ok(v) => v,
                Err(_) => return Ok(None),
            },
        };
        Ok(Some(crate::repository::MasterKey::from_hex(hex.trim()).context("master key")?))
    }
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
    let handlers = if a.no_runner { None } else { Some(jobs::job_handlers(&a.repo.repo, master.clone())?) };
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
