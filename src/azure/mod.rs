//! Azure Files REST client.
//!
//! - [`credential`]: connection strings, account keys, SAS tokens, and Shared Key signing
//!   (the same code verifies signatures in the emulator).

pub mod credential;
