//! Azure Files emulator: a local service speaking the Azure Files REST API on a path-style endpoint
//! (`http://127.0.0.1:PORT/devstoreaccount1`) with the well-known development account.
//!
//! - [`faults`]: fault injection (latency, 503 ServerBusy, 500, connection resets, slow bodies, IOPS caps),
//!   applied as a layer around the service, never inside handlers.

pub mod faults;

use crate::azure::credential::{DEV_ACCOUNT_KEY, DEV_ACCOUNT_NAME};
use std::net::SocketAddr;
use std::path::PathBuf;

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
}

/// A running emulator. Dropping it does not stop it; call [`Emulator::shutdown`].
pub struct Emulator {
    addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Emulator {
    /// The bound address (the real port when the config asked for port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The file service endpoint, e.g. `http://127.0.0.1:10004/devstoreaccount1`.
    pub fn endpoint(&self) -> String {
        format!("http://{}/{DEV_ACCOUNT_NAME}", self.addr)
    }

    /// A connection string for the development account on this emulator.
    pub fn connection_string(&self) -> String {
        connection_string_for(self.addr)
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

/// The connection string for the development account at `addr`.
pub fn connection_string_for(addr: SocketAddr) -> String {
    format!(
        "DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT_NAME};AccountKey={DEV_ACCOUNT_KEY};FileEndpoint=http://{addr}/{DEV_ACCOUNT_NAME};"
    )
}
