//! Helpers shared by the integration tests: scratch PostgreSQL databases and both queue backends
//! (`jobs`), whole-tree reads for byte-identical comparisons (`tree`), plain TCP servers answering fixed
//! HTTP responses and counting connections (`net`).

pub mod jobs;
pub mod net;
pub mod tree;
