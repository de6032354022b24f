//! `afb forget`: retention over backup manifests (restic's rules).
//!
//! Snapshots are taken newest first. `keep_last` keeps the N newest; `keep_daily` keeps the newest
//! snapshot of each of the N most recent days that have one, and likewise weekly (ISO week), monthly and
//! yearly. A snapshot kept by any rule is kept. Forgetting deletes only the manifest: the data objects stay
//! until prune ([`super::prune`], `docs/backup.md`).

use std::collections::BTreeSet;

use object_store::ObjectStoreExt;
use serde::Serialize;

use crate::repository::Repository;

#[derive(Clone, Copy, Debug, Default)]
pub struct Policy {
    pub keep_last: usize,
    pub keep_daily: usize,
    pub keep_weekly: usize,
    pub keep_monthly: usize,
    pub keep_yearly: usize,
}

impl Policy {
    pub fn is_empty(&self) -> bool {
        self.keep_last + self.keep_daily + self.keep_weekly + self.keep_monthly + self.keep_yearly == 0
    }
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct ForgetOutcome {
    pub kept: Vec<String>,
    pub forgotten: Vec<String>,
}

/// Which of `snapshots` (id, created ns) to keep. Pure, for tests.
pub fn select(snapshots: &[(String, i64)], p: &Policy) -> BTreeSet<String> {
    let mut sorted: Vec<&(String, i64)> = snapshots.iter().collect();
    sorted.sort_by(|a, b| b.1.cmp(&a.1).then(b.0.cmp(&a.0)));
    let mut keep = BTreeSet::new();
    for (id, _) in sorted.iter().take(p.keep_last) {
        keep.insert(id.clone());
    }
    let period = |ns: i64, kind: u8| -> (i32, u32) {
        let t = time::OffsetDateTime::from_unix_timestamp_nanos(ns as i128).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        match kind {
            0 => (t.year(), t.ordinal() as u32),
            1 => {
                let (y, w, _) = t.to_iso_week_date();
                (y, w as u32)
            }
            2 => (t.year(), t.month() as u32),
            _ => (t.year(), 0),
        }
    };
    for (kind, n) in [(0u8, p.keep_daily), (1, p.keep_weekly), (2, p.keep_monthly), (3, p.keep_yearly)] {
        let mut seen = BTreeSet::new();
        for (id, ns) in &sorted {
            if seen.len() >= n {
                break;
            }
            if seen.insert(period(*ns, kind)) {
                keep.insert(id.clone());
            }
        }
    }
    keep
}

pub async fn forget(repo: &Repository, policy: &Policy, dry_run: bool) -> anyhow::Result<ForgetOutcome> {
    anyhow::ensure!(!policy.is_empty(), "no keep rule given: refusing to forget every snapshot");
    let mut snaps = Vec::new();
    for id in repo.list_snapshots().await? {
        let m = repo.load_manifest(&id).await?;
        snaps.push((id, m.created_ns));
    }
    let keep = select(&snaps, policy);
    let mut out = ForgetOutcome::default();
    for (id, _) in snaps {
        if keep.contains(&id) {
            out.kept.push(id);
        } else {
            if !dry_run {
                let path = repo.scope().snapshot(&id);
                repo.store().delete(&path).await?;
            }
            out.forgotten.push(id);
        }
    }
    Ok(out)
}
