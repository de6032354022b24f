//! Snapshots of a share's node table in a repository: atomic commit, base + delta history, merged reads,
//! garbage collection.
//!
//! A snapshot is committed in two steps: its data files are written first, then its manifest is created
//! with create-if-absent (see [`crate::index::manifest`]). Readers only ever start from a manifest, so
//! they never see a half-written snapshot; a crash leaves unreferenced data files that [`NodeIndex::gc`]
//! removes.
//!
//! History: every `max_deltas + 1`-th snapshot is a *base* (all rows); the others are *deltas* holding
//! only the rows added or changed since the previous snapshot and the ids deleted since. An unchanged
//! file costs nothing in a delta. Reading a snapshot merges its base with its deltas in one streaming pass
//! over files sorted by `node_id`, in memory bounded by a few row groups.

use std::collections::HashSet;
use std::sync::Arc;

use anyhow::{Context, bail};
use arrow::array::{Int64Array, RecordBatch};
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};

use super::idmap::{NewIds, SORTED_TAG, idmap_schema};
use super::manifest::{
    ChangeRecord, FORMAT, FileRef, IndexManifest, Layer, LayerKind, SnapshotSource, Totals, check_id, data_dir_prefix,
    manifest_key, share_prefix,
};
use super::node::{NodeColumns, NodeId, NodeKind, check_ascending, check_node_schema, node_schema};
use super::node_index::{Cursor, NodeIndex, READ_BATCH_ROWS, deleted_schema};
use super::parquet_io::{FileWriter, ParquetTuning};

/// How snapshots are written.
#[derive(Debug, Clone, Copy)]
pub struct WriteOptions {
    /// At most this many deltas follow a base before the next snapshot is written as a base again.
    /// 0 writes every snapshot as a base.
    pub max_deltas: usize,
    pub parquet: ParquetTuning,
    /// The snapshot's creation time, ms since the Unix epoch (`None`: the time of the commit). For sample
    /// histories and imports; a scan always takes the default.
    pub created_ms: Option<i64>,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions { max_deltas: 7, parquet: ParquetTuning::default(), created_ms: None }
    }
}

impl NodeIndex {
    /// Start writing the next snapshot of a share. Rows go in with [`SnapshotWriter::write`], strictly
    /// ascending by `node_id`; nothing is visible until [`SnapshotWriter::commit`].
    pub async fn begin(&self, tenant: &str, share: &str, opts: WriteOptions) -> anyhow::Result<SnapshotWriter> {
        check_id("tenant", tenant)?;
        check_id("share", share)?;
        let prev = self.latest(tenant, share).await?;
        let snapshot_id = prev.as_ref().map_or(1, |m| m.snapshot_id + 1);
        let nonce = format!("{:016x}", rand::random::<u64>());
        let dir = format!("{}-{nonce}", data_dir_prefix(tenant, share, snapshot_id));
        let as_delta = prev.as_ref().is_some_and(|m| m.layers.len() <= opts.max_deltas);
        let nodes_key = format!("{dir}/{}.parquet", if as_delta { "changed" } else { "nodes" });
        let nodes = FileWriter::create(self.store(), &nodes_key, node_schema(), opts.parquet)?;
        // Every snapshot after the first is compared row by row with its predecessor, to record its
        // change (and, for a delta, to write only what changed).
        let compare = match &prev {
            Some(m) => Some(Compare {
                prev: Box::new(Cursor::new(self.read_layers(m, None)?, "previous snapshot")),
                prev_hashes: super::hashes::open(self.store(), tenant, share, m.snapshot_id).await?,
                before: FileWriter::create(
                    self.store(),
                    &format!("{dir}/before.parquet"),
                    node_schema(),
                    opts.parquet,
                )?,
                before_rows: super::node::NodeBatchBuilder::new(READ_BATCH_ROWS),
                after: match as_delta {
                    true => None,
                    false => Some(FileWriter::create(
                        self.store(),
                        &format!("{dir}/after.parquet"),
                        node_schema(),
                        opts.parquet,
                    )?),
                },
                deleted: match as_delta {
                    true => Some(FileWriter::create(
                        self.store(),
                        &format!("{dir}/deleted.parquet"),
                        deleted_schema(),
                        opts.parquet,
                    )?),
                    false => None,
                },
                deleted_buf: Vec::new(),
            }),
            None => None,
        };
        Ok(SnapshotWriter {
            repo: self.clone(),
            tenant: tenant.to_string(),
            share: share.to_string(),
            snapshot_id,
            dir,
            prev,
            as_delta,
            compare,
            nodes,
            changed: super::node::NodeBatchBuilder::new(READ_BATCH_ROWS),
            last_id: None,
            totals: Totals::default(),
            opts,
            source: None,
        })
    }

    /// Delete data files and directory summaries of a share that no manifest references and that are
    /// older than `grace` (so a writer still in progress is left alone). Returns the deleted keys.
    pub async fn gc(&self, tenant: &str, share: &str, grace: std::time::Duration) -> anyhow::Result<Vec<String>> {
        let mut referenced = HashSet::new();
        for m in self.manifests(tenant, share).await? {
            referenced.extend(m.referenced_keys().map(str::to_string));
            referenced.extend(super::summary::summary_key(&m));
        }
        let cutoff = chrono_now() - chrono_duration(grace);
        let mut deleted = Vec::new();
        for dir in ["data", "summaries"] {
            let prefix = Path::from(format!("{}/{dir}", share_prefix(tenant, share)));
            let objects: Vec<_> = self.store().list(Some(&prefix)).try_collect().await?;
            for o in objects {
                let key = o.location.to_string();
                if !referenced.contains(&key) && o.last_modified <= cutoff {
                    self.store().delete(&o.location).await.with_context(|| format!("deleting {key}"))?;
                    deleted.push(key);
                }
            }
        }
        deleted.sort();
        Ok(deleted)
    }
}

fn chrono_now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}

fn chrono_duration(d: std::time::Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// The previous snapshot, walked in step with the rows being written.
struct Compare {
    /// The previous snapshot's rows as its layers store them.
    prev: Box<Cursor>,
    /// The previous snapshot's hash layer, if its backup wrote one.
    prev_hashes: Option<super::hashes::HashLayer>,
    /// The change record's `before`: previous rows of every node changed or deleted.
    before: FileWriter,
    before_rows: super::node::NodeBatchBuilder,
    /// Base only: the change record's `after` (a delta's `nodes` file is its `after`).
    after: Option<FileWriter>,
    /// Delta only: ids deleted since the previous snapshot (the merge reader needs them).
    deleted: Option<FileWriter>,
    deleted_buf: Vec<i64>,
}

impl Compare {
    /// The previous snapshot's row at the cursor is gone or changed: keep it in `before`.
    async fn keep_before(&mut self) -> anyhow::Result<()> {
        let (pb, pi) = self.prev.current_ref();
        if let Some(full) = self.before_rows.push_from(&NodeColumns::new(pb), pi) {
            self.before.write(&full).await?;
        }
        Ok(())
    }

    /// Every previous row below `bound` is gone (`None`: every remaining row).
    async fn delete_below(&mut self, bound: Option<NodeId>) -> anyhow::Result<()> {
        while let Some(pid) = self.prev.head().await? {
            if bound.is_some_and(|b| pid >= b) {
                break;
            }
            self.keep_before().await?;
            if let Some(d) = &mut self.deleted {
                self.deleted_buf.push(pid.0);
                if self.deleted_buf.len() >= READ_BATCH_ROWS {
                    flush_deleted(d, &mut self.deleted_buf).await?;
                }
            }
            self.prev.advance();
        }
        Ok(())
    }
}

/// Writes one snapshot. Dropping it without [`commit`](Self::commit) leaves only garbage for `gc`.
pub struct SnapshotWriter {
    repo: NodeIndex,
    tenant: String,
    share: String,
    snapshot_id: i64,
    dir: String,
    prev: Option<IndexManifest>,
    /// `nodes` holds only the rows that changed (a delta layer), not every row (a base).
    as_delta: bool,
    /// Present when there is a previous snapshot.
    compare: Option<Compare>,
    nodes: FileWriter,
    /// Rows new or changed since the previous snapshot, batched for `nodes` (delta) or `after` (base).
    changed: super::node::NodeBatchBuilder,
    last_id: Option<NodeId>,
    totals: Totals,
    opts: WriteOptions,
    source: Option<SnapshotSource>,
}

impl SnapshotWriter {
    /// Record where the rows come from (an Azure share snapshot); written into the manifest.
    pub fn set_source(&mut self, source: SnapshotSource) {
        self.source = Some(source);
    }

    /// The id this snapshot will have when committed.
    pub fn snapshot_id(&self) -> i64 {
        self.snapshot_id
    }

    /// Append node rows. Across all calls, `node_id` must be strictly ascending and `>= 1`.
    ///
    /// A row with `xorhash` 0 (unknown: a scan's rows) takes the previous snapshot's hash of the node
    /// (from its row or its hash layer) when the node is not modified since
    /// ([`Properties::modified_since`](super::node::Properties::modified_since)), so the hashes backups
    /// learned stay with unchanged files.
    pub async fn write(&mut self, batch: &RecordBatch) -> anyhow::Result<()> {
        check_node_schema(&batch.schema())?;
        self.last_id = check_ascending(batch, self.last_id)?;
        let c = NodeColumns::new(batch);
        for i in 0..c.len() {
            if NodeKind::from_i8(c.kind.value(i))? == NodeKind::Dir {
                self.totals.dirs += 1;
            } else {
                self.totals.files += 1;
                self.totals.bytes += c.size.value(i).max(0) as u64;
            }
        }
        self.totals.nodes += c.len() as u64;
        let Some(cmp) = &mut self.compare else {
            return self.nodes.write(batch).await;
        };
        // Hashes kept from the previous snapshot, and the rows that differ from its stored rows.
        let mut hashes: Option<Vec<i64>> = None;
        let mut changed = Vec::new();
        for i in 0..c.len() {
            let id = NodeId(c.node_id.value(i));
            cmp.delete_below(Some(id)).await?;
            let same = match cmp.prev.head().await? {
                Some(pid) if pid == id => {
                    let (pb, pi) = cmp.prev.current_ref();
                    let p = NodeColumns::new(pb);
                    let mut hash = c.xorhash.value(i);
                    if hash == 0 {
                        let mut known = p.properties(pi);
                        if let Some(h) = super::hashes::hash_of(&mut cmp.prev_hashes, id).await? {
                            known.xorhash = h;
                        }
                        if known.xorhash != 0 && !c.properties(i).modified_since(&known) {
                            hash = known.xorhash;
                            hashes.get_or_insert_with(|| c.xorhash.values().to_vec())[i] = hash;
                        }
                    }
                    let same = rows_equal_but_hash(&p, pi, &c, i) && p.xorhash.value(pi) == hash;
                    if !same {
                        cmp.keep_before().await?;
                    }
                    cmp.prev.advance();
                    same
                }
                _ => false,
            };
            if !same {
                changed.push(i);
            }
        }
        let batch = match hashes {
            Some(h) => {
                let mut cols = batch.columns().to_vec();
                cols[super::node::col::XORHASH] = Arc::new(Int64Array::from(h));
                RecordBatch::try_new(batch.schema(), cols)?
            }
            None => batch.clone(),
        };
        if !self.as_delta {
            self.nodes.write(&batch).await?;
        }
        let c = NodeColumns::new(&batch);
        for i in changed {
            if let Some(full) = self.changed.push_from(&c, i) {
                match &mut cmp.after {
                    Some(after) => after.write(&full).await?,
                    None => self.nodes.write(&full).await?,
                }
            }
        }
        Ok(())
    }

    /// Write the idmap segment (the pairs `new_ids` handed out, if any), then the manifest: the snapshot
    /// becomes visible atomically. Fails without committing if another writer committed the same id first.
    pub async fn commit(mut self, new_ids: Option<NewIds>) -> anyhow::Result<IndexManifest> {
        let store = self.repo.store().clone();
        // Finish the comparison: what is left of the previous snapshot was deleted.
        let mut change_files = None;
        let mut deleted_ref = None;
        if let Some(mut cmp) = self.compare.take() {
            cmp.delete_below(None).await?;
            if let Some(rest) = self.changed.finish() {
                match &mut cmp.after {
                    Some(after) => after.write(&rest).await?,
                    None => self.nodes.write(&rest).await?,
                }
            }
            if let Some(rest) = cmp.before_rows.finish() {
                cmp.before.write(&rest).await?;
            }
            if let Some(mut d) = cmp.deleted {
                flush_deleted(&mut d, &mut cmp.deleted_buf).await?;
                let (key, rows, bytes) = d.close().await?;
                deleted_ref = Some(FileRef { key, rows, bytes });
            }
            let (key, rows, bytes) = cmp.before.close().await?;
            let before = FileRef { key, rows, bytes };
            let after = match cmp.after {
                Some(a) => {
                    let (key, rows, bytes) = a.close().await?;
                    Some(FileRef { key, rows, bytes })
                }
                None => None,
            };
            change_files = Some((before, after));
        }
        let (key, rows, bytes) = self.nodes.close().await?;
        let own_layer = Layer {
            snapshot_id: self.snapshot_id,
            kind: if self.as_delta { LayerKind::Delta } else { LayerKind::Base },
            nodes: FileRef { key, rows, bytes },
            deleted: deleted_ref,
        };
        let since = self.prev.as_ref().map_or(0, |p| p.snapshot_id);
        let changes = change_files.map(|(before, after)| ChangeRecord {
            since,
            after: after.unwrap_or_else(|| own_layer.nodes.clone()),
            before,
        });
        let mut layers = match (&self.prev, own_layer.kind) {
            (Some(p), LayerKind::Delta) => p.layers.clone(),
            _ => Vec::new(),
        };
        layers.push(own_layer);
        let mut idmap_refs = self.prev.as_ref().map(|p| p.idmap.clone()).unwrap_or_default();
        let mut next_node_id =
            self.prev.as_ref().map_or(1, |p| p.next_node_id).max(self.last_id.map_or(1, |i| i.0 + 1));
        if let Some(new_ids) = new_ids {
            next_node_id = next_node_id.max(new_ids.next_id().0);
            if !new_ids.is_empty() {
                let key = format!("{}/idmap.parquet", self.dir);
                let mut w = FileWriter::create_tagged(&store, &key, idmap_schema(), self.opts.parquet, &[SORTED_TAG])?;
                for b in new_ids.into_batches()? {
                    w.write(&b?).await?;
                }
                let (key, rows, bytes) = w.close().await?;
                idmap_refs.push(FileRef { key, rows, bytes });
            }
        }
        let m = IndexManifest {
            format: FORMAT.to_string(),
            tenant_id: self.tenant.clone(),
            share_id: self.share.clone(),
            snapshot_id: self.snapshot_id,
            created_at: self.opts.created_ms.and_then(rfc3339_ms).unwrap_or_else(now_rfc3339),
            layers,
            idmap: idmap_refs,
            next_node_id,
            totals: self.totals,
            source: self.source.take(),
            changes,
        };
        // The directory summary (readers list directories without a full read) goes in before the manifest.
        super::summary::write_for_commit(&self.repo, &m).await?;
        let key = manifest_key(&self.tenant, &self.share, self.snapshot_id);
        let body = serde_json::to_vec_pretty(&m)?;
        let opts = PutOptions { mode: PutMode::Create, ..Default::default() };
        match store.put_opts(&Path::from(key.as_str()), PutPayload::from(body), opts).await {
            Ok(_) => {}
            Err(object_store::Error::AlreadyExists { .. }) => {
                bail!(
                    "snapshot {} of {}/{} was committed by another writer; this one was not",
                    self.snapshot_id,
                    self.tenant,
                    self.share
                )
            }
            Err(e) => return Err(e).with_context(|| format!("committing {key}")),
        }
        Ok(m)
    }
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// ms since the epoch as RFC 3339 UTC with milliseconds; `None` out of chrono's range.
fn rfc3339_ms(ms: i64) -> Option<String> {
    chrono::DateTime::from_timestamp_millis(ms).map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

async fn flush_deleted(w: &mut FileWriter, buf: &mut Vec<i64>) -> anyhow::Result<()> {
    if buf.is_empty() {
        return Ok(());
    }
    let ids = Int64Array::from(std::mem::take(buf));
    w.write(&RecordBatch::try_new(deleted_schema(), vec![Arc::new(ids)])?).await
}

/// Row `i` of `a` equals row `j` of `b` in every column but `xorhash`.
fn rows_equal_but_hash(a: &NodeColumns<'_>, i: usize, b: &NodeColumns<'_>, j: usize) -> bool {
    a.node_id.value(i) == b.node_id.value(j)
        && a.parent_id.value(i) == b.parent_id.value(j)
        && a.size.value(i) == b.size.value(j)
        && a.mtime.value(i) == b.mtime.value(j)
        && a.ctime.value(i) == b.ctime.value(j)
        && a.attributes.value(i) == b.attributes.value(j)
        && a.kind.value(i) == b.kind.value(j)
        && a.name.value(i) == b.name.value(j)
}
