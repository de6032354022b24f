//! Synthetic shares: `afb gen` fills a share (emulator or real) with a realistic tree.
//!
//! - [`plan`]: the seeded shape of the share (names, sizes, times, permissions, modes).
//! - [`fill`]: writes a plan through the Azure Files client.
//! - [`cli`]: the `afb gen` command.

pub mod cli;
pub mod fill;
pub mod plan;
