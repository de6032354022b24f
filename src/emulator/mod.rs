//! Azure Files emulator: a local service speaking the Azure Files REST API on a path-style endpoint
//! (`http://127.0.0.1:PORT/devstoreaccount1`) with the well-known development account.
//!
//! Behaviour and on-disk layout: `docs/emulator.md`.
//!
//! - [`wire`]: the HTTP/1.1 server (connections, TLS, header-name case); [`tls`]: certificates; [`server`]: routing, common
//!   response headers; [`auth`]: Shared Key and SAS checks;
//!   [`request`]: the parsed request and the reply an operation builds.
//! - [`ops`]: the operations; [`props`]: property headers; [`error`]: Azure error codes.
//! - [`store`]: SQLite state (node tree per share version, extent maps over immutable blobs).
//! - [`virtual_share`]: shares whose tree is computed from a seed, for tests at millions of files.
//! - [`bench`]: `afb bench emulator`, the emulator's ceiling in requests per second.
//! - [`faults`]: fault injection (latency, 503 ServerBusy, 500, connection resets, slow bodies, IOPS caps),
//!   applied as a layer around the service, never inside handlers.

mod auth;
pub mod bench;
pub mod clock;
mod dir_cache;
pub mod error;
pub mod faults;
pub mod node;
mod ops;
mod props;
mod request;
mod server;
pub mod store;
pub mod tls;
pub mod virtual_share;
pub mod wire;
mod xml;

use crate::azure::credential::{DEV_ACCOUNT_KEY, DEV_ACCOUNT_NAME};
use anyhow::Context as _;
use base64::Engine as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// How to run an emulator.
#[derive(Debug, Clone, clap::Args)]
pub struct EmulatorConfig {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:10004")]
    pub addr: SocketAddr,
    /// Directory holding the emulator's state; it survives restarts.
    #[arg(long)]
    pub data: PathBuf,
    #[command(flatten)]
    pub faults: faults::FaultConfig,
    /// A read-only share with a generated tree of FILES files (repeatable): `NAME=FILES[,seed=N][,change=F][,every=K]`.
    /// FILES may end in k, M or G; `change` is the fraction of files modified per snapshot (see
    /// docs/emulator.md).
    #[arg(long = "virtual-share", value_name = "NAME=FILES[,seed=N][,change=F][,every=K]", value_parser = virtual_share::VirtualShareSpec::parse)]
    pub virtual_shares: Vec<virtual_share::VirtualShareSpec>,
    #[command(flatten)]
    pub tls: tls::TlsConfig,
}

/// A running emulator. Dropping it does not stop it; call [`Emulator::shutdown`].
pub struct Emulator {
    addr: SocketAddr,
    /// The certificate clients must trust when serving HTTPS.
    cert_path: Option<PathBuf>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Emulator {
    /// Opens the state in `config.data`, binds `config.addr` and serves on the current tokio runtime
    /// (call from within one). Returns once the socket is bound; requests are served in the background
    /// until [`Emulator::shutdown`].
    pub fn start(config: EmulatorConfig) -> anyhow::Result<Emulator> {
        let tls = tls::load(&config.tls, &config.data)?;
        let store = store::Store::open(&config.data, &config.virtual_shares)?;
        let key =
            base64::engine::general_purpose::STANDARD.decode(DEV_ACCOUNT_KEY).expect("the development key is base64");
        let app = Arc::new(server::App::new(store, key));
        let faults = faults::Faults::for_config(config.faults.clone());
        let handler: wire::Handler = Arc::new(move |request| {
            let app = Arc::clone(&app);
            let faults = faults.clone();
            Box::pin(async move {
                match faults {
                    None => server::handle(app, request).await,
                    Some(f) => f.apply(request, |r| server::handle(app, r)).await,
                }
            })
        });
        let listener =
            std::net::TcpListener::bind(config.addr).with_context(|| format!("cannot listen on {}", config.addr))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let listener = tokio::net::TcpListener::from_std(listener).context("start needs a tokio runtime")?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server_tls = tls.as_ref().map(|t| Arc::clone(&t.server));
        let cert_path = tls.map(|t| t.cert_path);
        let task = tokio::spawn(async move {
            let shutdown = async move {
                let _ = rx.await;
            };
            if let Err(e) = wire::serve(listener, server_tls, handler, server::MAX_BODY, shutdown).await {
                tracing::error!("emulator server on {addr} failed: {e}");
            }
        });
        Ok(Emulator { addr, cert_path, shutdown: Some(tx), task: Some(task) })
    }

    /// The bound address (the real port when the config asked for port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The file service endpoint, e.g. `http://127.0.0.1:10004/devstoreaccount1` (`https://` when
    /// serving TLS).
    pub fn endpoint(&self) -> String {
        format!("{}://{}/{DEV_ACCOUNT_NAME}", self.scheme(), self.addr)
    }

    /// A connection string for the development account on this emulator.
    pub fn connection_string(&self) -> String {
        connection_string_with(self.scheme(), self.addr)
    }

    /// The certificate clients must trust, when serving HTTPS.
    pub fn cert_path(&self) -> Option<&std::path::Path> {
        self.cert_path.as_deref()
    }

    fn scheme(&self) -> &'static str {
        if self.cert_path.is_some() { "https" } else { "http" }
    }

    /// Stops accepting requests and waits for the server task to end.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

/// The connection string for the development account at `addr` over plain HTTP.
pub fn connection_string_for(addr: SocketAddr) -> String {
    connection_string_with("http", addr)
}

/// The connection string for `addr`; an unspecified address (`0.0.0.0`, `::`) is given as loopback,
/// the address a client on the same host (or of a published container port) uses.
fn connection_string_with(scheme: &str, addr: SocketAddr) -> String {
    let addr = if addr.ip().is_unspecified() {
        SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), addr.port())
    } else {
        addr
    };
    format!(
        "DefaultEndpointsProtocol={scheme};AccountName={DEV_ACCOUNT_NAME};AccountKey={DEV_ACCOUNT_KEY};FileEndpoint={scheme}://{addr}/{DEV_ACCOUNT_NAME};"
    )
}

/// `afb emulator`: starts the emulator, prints its connection string as the first line on stdout, and
/// serves until SIGINT or SIGTERM.
pub async fn run(config: EmulatorConfig) -> anyhow::Result<crate::cli::ExitCode> {
    use std::io::Write as _;
    let emulator = Emulator::start(config)?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", emulator.connection_string())?;
        out.flush()?;
    }
    if let Some(cert) = emulator.cert_path() {
        eprintln!("afb emulator: serving HTTPS with the certificate {} (clients must trust it)", cert.display());
    }
    shutdown_signal().await;
    emulator.shutdown().await;
    Ok(crate::cli::ExitCode::Ok)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
