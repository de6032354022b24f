//! Helpers shared by the integration tests: scratch PostgreSQL databases and both queue backends
//! (`jobs`), the emulator ([`emulator`]), node rows for index tests (`nodes`), plain TCP servers answering
//! fixed HTTP responses and counting connections (`net`), whole-tree reads for byte-identical comparisons
//! (`tree`).

pub mod bytes;
pub mod jobs;
pub mod net;
pub mod nodes;
pub mod tree;

/// Limits the size of every file `cmd`'s process writes to `bytes` (RLIMIT_FSIZE, with SIGXFSZ ignored so a
/// write past it fails with EFBIG): a spill directory without room, without filling a real disk.
pub fn limit_file_size(cmd: &mut std::process::Command, bytes: u64) {
    use std::os::unix::process::CommandExt as _;
    // SAFETY: setrlimit and signal are async-signal-safe; the closure allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            let limit = libc::rlimit { rlim_cur: bytes, rlim_max: bytes };
            libc::setrlimit(libc::RLIMIT_FSIZE, &limit);
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            Ok(())
        });
    }
}

/// The Azure Files emulator on a free local port, keeping its state in `data`, with `faults` injected.
pub fn emulator(data: &std::path::Path, faults: afb::emulator::faults::FaultConfig) -> afb::emulator::Emulator {
    afb::emulator::Emulator::start(afb::emulator::EmulatorConfig {
        addr: "127.0.0.1:0".parse().expect("a socket address"),
        data: data.to_path_buf(),
        faults,
        virtual_shares: Vec::new(),
        tls: Default::default(),
    })
    .expect("start the emulator")
}

/// Every node version of backup `m`, by node id (tests only: the product never holds a whole backup).
pub async fn versions(
    repo: &afb::repository::Repository,
    m: &afb::repository::BackupManifest,
) -> anyhow::Result<std::collections::BTreeMap<u64, afb::repository::generated::NodeVersion>> {
    let mut out = std::collections::BTreeMap::new();
    for id in &m.metadata {
        for v in afb::backup::load_bucket(repo, id).await? {
            out.insert(v.node_id, v);
        }
    }
    Ok(out)
}
