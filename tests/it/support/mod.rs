//! Helpers shared by the integration tests: scratch PostgreSQL databases and both queue backends
//! (`jobs`), whole-tree reads for byte-identical comparisons (`tree`), plain TCP servers answering fixed
//! HTTP responses and counting connections (`net`).

pub mod jobs;
pub mod net;
pub mod tree;

/// Writes a master key file as every key file must be written: mode 0600, from creation on.
pub fn write_key_file(path: &std::path::Path, hex: &str) {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).unwrap();
    f.write_all(hex.as_bytes()).unwrap();
}
