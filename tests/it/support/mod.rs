//! Helpers shared by the integration tests: scratch PostgreSQL databases and both queue backends
//! (`jobs`), whole-tree reads for byte-identical comparisons (`tree`).

pub mod jobs;
pub mod tree;
