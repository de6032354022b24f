//! Azure Files REST client.
//!
//! - [`credential`]: connection strings, account keys, SAS tokens, and Shared Key signing
//!   (the same code verifies signatures in the emulator).
//! - [`client`]: the REST calls, on [`FileServiceClient`] → [`ShareClient`] → [`DirectoryClient`] /
//!   [`FileClient`], pinned to API version [`API_VERSION`].
//! - [`source_args`]: [`SourceArgs`], the command-line options naming a source.
//! - [`retry`]: which failures are retried and the backoff between attempts.
//! - [`window`]: the limit on requests in flight, halved on throttling and grown back (AIMD).
//! - [`xml`]: streaming parsers for the service's XML bodies.
//! - [`error`]: [`AzureError`], naming the operation, the share and path, the status and Azure's code.
//! - [`model`]: the types the client takes and returns.
//! - [`address`]: [`AddressPolicy`], which network addresses a client may connect to.
//! - [`bench`]: a listing benchmark (entries per second, requests per entry).

pub mod address;
pub mod bench;
pub mod client;
pub mod credential;
pub mod error;
pub mod ls;
pub mod model;
pub mod retry;
pub mod source_args;
pub mod window;
pub mod xml;

pub use address::{AddressPolicy, AddressRefused};
pub use client::{API_VERSION, DirectoryClient, FileClient, FileServiceClient, MAX_RANGE_BYTES, ShareClient};
pub use error::{AzureError, ErrorKind};
pub use model::*;
pub use retry::RetryPolicy;
pub use source_args::SourceArgs;
