//! Synthetic shares: `afb gen` fills a share (emulator or real) with a realistic tree.
//!
//! - [`plan`]: the seeded shape of the share (names, sizes, times, permissions, modes).

pub mod plan;
