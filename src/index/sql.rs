//! SQL over a repository with DataFusion: tables `nodes`, `current_nodes`, `snapshots`, `changes`; functions
//! `path`, `du`, `du_files`, `du_dirs`, `dir_id`; table functions `ls(path)` and `find(glob)`.
//!
//! Tables (every share of the repository):
//! - `snapshots`: one row per committed snapshot (from the manifests; no data file is read).
//! - `nodes`: the rows of every snapshot, with `tenant_id`, `share_id`, `snapshot_id` in front of the node
//!   columns. Equality filters on those three prune whole snapshots before anything is read.
//! - `current_nodes`: the same for the latest snapshot of each share only.
//! - `changes`: the diff between each snapshot and the one before it (one row per changed node).
//!
//! Path functions resolve against one snapshot *in focus* (the `--tenant/--share/--snapshot` of
//! `afb sql`, or the latest snapshot of the only share), through its [`DirMap`]: no recursive join.
//! - `path(node_id)`: path of a directory (`/` for 0, the root); NULL if the id is not a directory.
//! - `path(parent_id, name)`: path of any row: `SELECT path(parent_id, name) FROM current_nodes`.
//! - `du(node_id)`, `du_files(node_id)`, `du_dirs(node_id)`: bytes, files, directories below a directory.
//! - `dir_id(path)`: the id of the directory at a path, or NULL.
//! - `ls(path)`, `find(glob)`: rows of the focus snapshot in a directory, or whose path matches a glob
//!   (`*`, `?`, `**`; a pattern without `/` matches names), with a `path` column appended.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, OnceLock};

use anyhow::Context;
use arrow::array::{
    Array, ArrayRef, AsArray, BooleanBuilder, Int8Builder, Int64Array, Int64Builder, RecordBatch, RecordBatchOptions,
    StringArray, StringBuilder, TimestampMillisecondArray, TimestampNanosecondBuilder,
};
use arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef, TimeUnit};
use async_trait::async_trait;
use datafusion::catalog::{Session, TableFunctionImpl};
use datafusion::common::{DataFusionError, Result as DfResult, ScalarValue};
use datafusion::datasource::{MemTable, TableProvider, TableType};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{
    ColumnarValue, Expr, Operator, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    TableProviderFilterPushDown, Volatility,
};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::{PartitionStream, StreamingTableExec};
use datafusion::prelude::{SessionConfig, SessionContext};
use futures::StreamExt;

use super::BatchStream;
use super::NodeIndex;
use super::diff::{Change, diff_snapshots};
use super::dirmap::{DirMap, glob_match};
use super::layered_scan::{LazyMask, MASK_BUDGET_IDS, SnapshotLayersExec};
use super::manifest::{FileRef, IndexManifest, LayerKind};
use super::node::{NodeColumns, NodeId, col, node_schema, time_type};
use super::parquet_io::{IdRuns, in_runs};

/// Default memory budget of a query's operators: 1 GiB.
pub const SQL_MEMORY_BYTES: usize = 1 << 30;

/// The snapshot path functions resolve against.
#[derive(Debug, Clone, Default)]
pub struct Focus {
    pub tenant: Option<String>,
    pub share: Option<String>,
    pub snapshot: Option<i64>,
}

/// A DataFusion session over a repository.
pub struct SqlSession {
    pub ctx: SessionContext,
    repo: NodeIndex,
    focus: Option<IndexManifest>,
    focus_error: String,
    dirmap: Arc<OnceLock<Arc<DirMap>>>,
}

fn df_err(e: anyhow::Error) -> DataFusionError {
    DataFusionError::External(format!("{e:#}").into())
}

const KEY_COLUMNS: usize = 3;

fn key_fields() -> Vec<Field> {
    vec![
        Field::new("tenant_id", DataType::Utf8, false),
        Field::new("share_id", DataType::Utf8, false),
        Field::new("snapshot_id", DataType::Int64, false),
    ]
}

impl SqlSession {
    /// Open a session over every share of `repo`; `focus` picks the snapshot path functions use. Queries
    /// hold at most [`SQL_MEMORY_BYTES`], see [`Self::with_memory`].
    pub async fn new(repo: NodeIndex, focus: Focus) -> anyhow::Result<Self> {
        Self::with_memory(repo, focus, SQL_MEMORY_BYTES).await
    }

    /// [`Self::new`] with a memory budget for the query's operators (hash tables of aggregations and
    /// joins, sorts): beyond it they spill sorted runs to the system's temporary directory, or fail with
    /// an error naming the budget when they cannot.
    pub async fn with_memory(repo: NodeIndex, focus: Focus, memory_bytes: usize) -> anyhow::Result<Self> {
        let mut config = SessionConfig::new().with_information_schema(true);
        // Filters are evaluated while decoding (late materialization) and prune pages by the page index.
        config.options_mut().execution.parquet.pushdown_filters = true;
        config.options_mut().execution.parquet.reorder_filters = true;
        let runtime = datafusion::execution::runtime_env::RuntimeEnvBuilder::new()
            .with_memory_limit(memory_bytes, 1.0)
            .build_arc()?;
        let ctx = SessionContext::new_with_config_rt(config, runtime);
        let url = url::Url::parse(STORE_URL).expect("a valid URL");
        ctx.runtime_env().register_object_store(&url, repo.store().clone());
        let mut all = Vec::new();
        for (t, s) in repo.shares().await? {
            all.extend(repo.manifests(&t, &s).await?);
        }
        let (focus_m, focus_error) = pick_focus(&repo, &all, &focus).await?;
        let mut latest: HashMap<(String, String), IndexManifest> = HashMap::new();
        for m in &all {
            latest.insert((m.tenant_id.clone(), m.share_id.clone()), m.clone());
        }
        let mut current: Vec<IndexManifest> = latest.into_values().collect();
        current.sort_by(|a, b| (&a.tenant_id, &a.share_id).cmp(&(&b.tenant_id, &b.share_id)));

        ctx.register_table("snapshots", Arc::new(snapshots_table(&all)?))?;
        let table = |rows| Arc::new(SnapshotTable { repo: repo.clone(), rows });
        ctx.register_table("nodes", table(TableRows::Nodes(all.clone())))?;
        ctx.register_table("current_nodes", table(TableRows::Nodes(current)))?;
        let mut pairs = Vec::new();
        for w in all.windows(2) {
            if w[0].tenant_id == w[1].tenant_id && w[0].share_id == w[1].share_id {
                pairs.push((w[0].clone(), w[1].clone()));
            }
        }
        ctx.register_table("changes", table(TableRows::Changes(pairs)))?;

        let dirmap: Arc<OnceLock<Arc<DirMap>>> = Arc::new(OnceLock::new());
        let f = |kind| ScalarUDF::from(DirUdf::new(kind, dirmap.clone(), focus_error.clone()));
        for k in [UdfKind::Path, UdfKind::Du, UdfKind::DuFiles, UdfKind::DuDirs, UdfKind::DirId] {
            ctx.register_udf(f(k));
        }
        for find in [false, true] {
            ctx.register_udtf(
                if find { "find" } else { "ls" },
                Arc::new(WalkFunction {
                    find,
                    repo: repo.clone(),
                    focus: focus_m.clone(),
                    dirmap: dirmap.clone(),
                    focus_error: focus_error.clone(),
                }),
            );
        }
        Ok(SqlSession { ctx, repo, focus: focus_m, focus_error, dirmap })
    }

    /// The snapshot path functions use, if one could be chosen.
    pub fn focus(&self) -> Option<&IndexManifest> {
        self.focus.as_ref()
    }

    /// Build the focus snapshot's directory map now (otherwise done on the first query that needs it).
    pub async fn load_dirmap(&self) -> anyhow::Result<Arc<DirMap>> {
        if let Some(d) = self.dirmap.get() {
            return Ok(d.clone());
        }
        let m = self.focus.as_ref().ok_or_else(|| anyhow::anyhow!("{}", self.focus_error))?;
        let d = Arc::new(super::summary::load_dirmap(&self.repo, m).await?);
        let _ = self.dirmap.set(d.clone());
        Ok(d)
    }

    /// Run one statement and collect its result.
    pub async fn query(&self, sql: &str) -> anyhow::Result<Vec<RecordBatch>> {
        let s = self.stream(sql).await?;
        futures::TryStreamExt::try_collect(s).await.map_err(|e| anyhow::anyhow!("{e}"))
    }

    /// Run one statement and stream its result: memory is the batches in flight, not the result.
    pub async fn stream(&self, sql: &str) -> anyhow::Result<datafusion::execution::SendableRecordBatchStream> {
        if uses_dir_functions(sql) && self.focus.is_some() {
            self.load_dirmap().await?;
        }
        let df = self.ctx.sql(sql).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        df.execute_stream().await.map_err(|e| anyhow::anyhow!("{e}"))
    }
}

/// Does the query call a function that needs the directory map?
fn uses_dir_functions(sql: &str) -> bool {
    let lower = sql.to_ascii_lowercase();
    ["path", "du", "du_files", "du_dirs", "dir_id", "ls", "find"].iter().any(|f| {
        lower.match_indices(f).any(|(i, _)| {
            let before_ok =
                i == 0 || !lower.as_bytes()[i - 1].is_ascii_alphanumeric() && lower.as_bytes()[i - 1] != b'_';
            let rest = lower[i + f.len()..].trim_start();
            before_ok && rest.starts_with('(')
        })
    })
}

async fn pick_focus(
    repo: &NodeIndex,
    all: &[IndexManifest],
    f: &Focus,
) -> anyhow::Result<(Option<IndexManifest>, String)> {
    let mut shares: Vec<(&str, &str)> = all.iter().map(|m| (m.tenant_id.as_str(), m.share_id.as_str())).collect();
    shares.dedup();
    let chosen: Vec<(&str, &str)> = shares
        .into_iter()
        .filter(|(t, s)| f.tenant.as_deref().is_none_or(|x| x == *t) && f.share.as_deref().is_none_or(|x| x == *s))
        .collect();
    match chosen.as_slice() {
        [(t, s)] => {
            let m = match f.snapshot {
                Some(id) => repo.manifest(t, s, id).await?,
                None => {
                    all.iter().rfind(|m| m.tenant_id == *t && m.share_id == *s).cloned().expect("share has snapshots")
                }
            };
            Ok((Some(m), String::new()))
        }
        [] if f.tenant.is_some() || f.share.is_some() => {
            anyhow::bail!(
                "no snapshots for tenant {:?} share {:?} in this repository",
                f.tenant.as_deref().unwrap_or("*"),
                f.share.as_deref().unwrap_or("*")
            )
        }
        [] => Ok((None, "path functions need a snapshot, and the repository has none".into())),
        _ => Ok((
            None,
            "path functions need one snapshot in focus: pass --tenant and --share (and --snapshot for an older one)"
                .into(),
        )),
    }
}

fn snapshots_table(all: &[IndexManifest]) -> anyhow::Result<MemTable> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("tenant_id", DataType::Utf8, false),
        Field::new("share_id", DataType::Utf8, false),
        Field::new("snapshot_id", DataType::Int64, false),
        Field::new("created_at", DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())), false),
        Field::new("layer", DataType::Utf8, false),
        Field::new("nodes", DataType::Int64, false),
        Field::new("files", DataType::Int64, false),
        Field::new("dirs", DataType::Int64, false),
        Field::new("bytes", DataType::Int64, false),
        Field::new("stored_bytes", DataType::Int64, false),
    ]));
    let created: Vec<i64> = all
        .iter()
        .map(|m| {
            time::OffsetDateTime::parse(&m.created_at, &time::format_description::well_known::Rfc3339)
                .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
                .with_context(|| format!("manifest of snapshot {}: bad created_at", m.snapshot_id))
        })
        .collect::<anyhow::Result<_>>()?;
    let i64s =
        |f: &dyn Fn(&IndexManifest) -> i64| -> ArrayRef { Arc::new(Int64Array::from_iter_values(all.iter().map(f))) };
    let cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(all.iter().map(|m| m.tenant_id.as_str()))),
        Arc::new(StringArray::from_iter_values(all.iter().map(|m| m.share_id.as_str()))),
        i64s(&|m| m.snapshot_id),
        Arc::new(TimestampMillisecondArray::from(created).with_timezone("UTC")),
        Arc::new(StringArray::from_iter_values(all.iter().map(|m| match m.layers.last().map(|l| l.kind) {
            Some(LayerKind::Delta) => "delta",
            _ => "base",
        }))),
        i64s(&|m| m.totals.nodes as i64),
        i64s(&|m| m.totals.files as i64),
        i64s(&|m| m.totals.dirs as i64),
        i64s(&|m| m.totals.bytes as i64),
        i64s(&|m| m.own_bytes() as i64),
    ];
    let batch = RecordBatch::try_new(schema.clone(), cols)?;
    Ok(MemTable::try_new(schema, vec![vec![batch]])?)
}

/// A filter `key = literal` on one of the key columns, which [`prune`] applies exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyEquality<'a> {
    Tenant(&'a str),
    Share(&'a str),
    Snapshot(i64),
}

/// The [`KeyEquality`] a filter is: `tenant_id`, `share_id` or `snapshot_id` `=` a literal of the column's
/// type (not NULL), either way round.
fn key_equality(f: &Expr) -> Option<KeyEquality<'_>> {
    let Expr::BinaryExpr(b) = f else { return None };
    if b.op != Operator::Eq {
        return None;
    }
    let (c, v) = match (&*b.left, &*b.right) {
        (Expr::Column(c), Expr::Literal(v, _)) | (Expr::Literal(v, _), Expr::Column(c)) => (c, v),
        _ => return None,
    };
    match (c.name.as_str(), v) {
        ("tenant_id", ScalarValue::Utf8(Some(x))) => Some(KeyEquality::Tenant(x)),
        ("share_id", ScalarValue::Utf8(Some(x))) => Some(KeyEquality::Share(x)),
        ("snapshot_id", ScalarValue::Int64(Some(x))) => Some(KeyEquality::Snapshot(*x)),
        _ => None,
    }
}

/// Keep the snapshots that pass every [`key_equality`] filter; other filters keep everything (they are
/// applied above the scan).
fn prune<'a, T>(items: &'a [T], key: impl Fn(&T) -> (&str, &str, i64), filters: &[Expr]) -> Vec<&'a T> {
    items
        .iter()
        .filter(|it| {
            let (t, s, id) = key(it);
            filters.iter().filter_map(key_equality).all(|eq| match eq {
                KeyEquality::Tenant(x) => x == t,
                KeyEquality::Share(x) => x == s,
                KeyEquality::Snapshot(x) => x == id,
            })
        })
        .collect()
}

fn key_arrays(n: usize, t: &str, s: &str, id: i64) -> [ArrayRef; KEY_COLUMNS] {
    [
        Arc::new(StringArray::from_iter_values(std::iter::repeat_n(t, n))),
        Arc::new(StringArray::from_iter_values(std::iter::repeat_n(s, n))),
        Arc::new(Int64Array::from_value(id, n)),
    ]
}

/// Pick `projection` columns out of a batch, given constant key columns for its snapshot.
fn project(
    full: &SchemaRef,
    projection: &[usize],
    out: &SchemaRef,
    b: &RecordBatch,
    keys: &[ArrayRef],
) -> anyhow::Result<RecordBatch> {
    let cols: Vec<ArrayRef> = projection
        .iter()
        .map(|&i| {
            if i < keys.len() {
                Ok(keys[i].clone())
            } else {
                let name = full.field(i).name();
                b.column_by_name(name).cloned().with_context(|| format!("column {name} missing"))
            }
        })
        .collect::<anyhow::Result<_>>()?;
    Ok(RecordBatch::try_new_with_options(
        out.clone(),
        cols,
        &RecordBatchOptions::new().with_row_count(Some(b.num_rows())),
    )?)
}

/// A partition produced by an async closure returning a stream of batches in `schema`.
struct FnPartition {
    schema: SchemaRef,
    make: Box<dyn Fn() -> anyhow::Result<BatchStream> + Send + Sync>,
}

impl std::fmt::Debug for FnPartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("afb index partition")
    }
}

impl PartitionStream for FnPartition {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> datafusion::execution::SendableRecordBatchStream {
        let s = match (self.make)() {
            Ok(s) => s.map(|r| r.map_err(df_err)).boxed(),
            Err(e) => futures::stream::once(async move { Err(df_err(e)) }).boxed(),
        };
        Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), s))
    }
}

fn exec(schema: SchemaRef, partitions: Vec<Arc<dyn PartitionStream>>) -> DfResult<Arc<dyn ExecutionPlan>> {
    if partitions.is_empty() {
        return Ok(Arc::new(datafusion::physical_plan::empty::EmptyExec::new(schema)));
    }
    Ok(Arc::new(StreamingTableExec::try_new(schema, partitions, None, vec![], false, None)?))
}

/// A table over snapshots of the repository: their node rows, or what changed between consecutive ones.
/// Equality filters on the key columns pick the snapshots (see [`prune`]); every other filter is applied
/// again above the scan.
#[derive(Debug)]
struct SnapshotTable {
    repo: NodeIndex,
    rows: TableRows,
}

#[derive(Debug)]
enum TableRows {
    /// The node rows of each snapshot (`nodes_table_schema`).
    Nodes(Vec<IndexManifest>),
    /// The diff of each (older, newer) pair (`changes_schema`).
    Changes(Vec<(IndexManifest, IndexManifest)>),
}

fn nodes_table_schema() -> SchemaRef {
    let mut f = key_fields();
    f.extend(node_schema().fields().iter().map(|x| x.as_ref().clone()));
    Arc::new(Schema::new(f))
}

#[async_trait]
impl TableProvider for SnapshotTable {
    fn schema(&self) -> SchemaRef {
        match self.rows {
            TableRows::Nodes(_) => nodes_table_schema(),
            TableRows::Changes(_) => changes_schema(),
        }
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    /// Equalities on the key columns pick whole snapshots ([`prune`]) and need no filter above the scan,
    /// so `count(*)` of one share is still answered from the manifests; the rest are applied again.
    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> DfResult<Vec<TableProviderFilterPushDown>> {
        Ok(filters
            .iter()
            .map(|f| {
                if key_equality(f).is_some() {
                    TableProviderFilterPushDown::Exact
                } else {
                    TableProviderFilterPushDown::Inexact
                }
            })
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let full = self.schema();
        let projection: Vec<usize> = projection.cloned().unwrap_or_else(|| (0..full.fields().len()).collect());
        let out = Arc::new(full.project(&projection)?);
        match &self.rows {
            TableRows::Nodes(manifests) => {
                let picked = prune(manifests, |m| (m.tenant_id.as_str(), m.share_id.as_str(), m.snapshot_id), filters);
                scan_nodes(&self.repo, state, picked, projection, out, limit).await
            }
            TableRows::Changes(pairs) => {
                let picked =
                    prune(pairs, |p| (p.1.tenant_id.as_str(), p.1.share_id.as_str(), p.1.snapshot_id), filters);
                scan_changes(&self.repo, picked, projection, out)
            }
        }
    }
}

/// The node rows of `snapshots`; `projection` indexes [`nodes_table_schema`], `out` is its projection.
async fn scan_nodes(
    repo: &NodeIndex,
    state: &dyn Session,
    snapshots: Vec<&IndexManifest>,
    projection: Vec<usize>,
    out: SchemaRef,
    limit: Option<usize>,
) -> DfResult<Arc<dyn ExecutionPlan>> {
    let full = nodes_table_schema();
    let node_cols: Vec<usize> = projection.iter().filter(|&&i| i >= KEY_COLUMNS).map(|&i| i - KEY_COLUMNS).collect();
    // A snapshot that is one base file, read without a hash layer to merge, is read by DataFusion's
    // Parquet scan (projection, row-group and page pruning by the pushed-down filters, LIMIT, byte
    // ranges on every core); one of a base and deltas by one such scan per layer with the rows newer
    // layers replaced masked out ([`SnapshotLayersExec`]); the others (a hash layer to apply, or deltas
    // mentioning more ids than the mask's budget) by the streaming merge of their layers.
    let mut files = Vec::new();
    let mut merged = Vec::new();
    let mut plans = Vec::new();
    // Masks of all the query's snapshots together stay within MASK_BUDGET_IDS ids.
    let mut mask_budget = MASK_BUDGET_IDS;
    for m in snapshots {
        let hash_layer = node_cols.contains(&col::XORHASH)
            && super::hashes::exists(repo.store(), &m.tenant_id, &m.share_id, m.snapshot_id).await.map_err(df_err)?;
        if hash_layer {
            merged.push(m);
        } else if m.layers.len() == 1 {
            files.push(m);
        } else if let Some(mask) = LazyMask::new(repo.store(), &m.layers, mask_budget) {
            mask_budget -= mask.ids_at_most();
            plans.push(layered_scan(state, m, Arc::new(mask), &projection, &out).await?);
        } else {
            merged.push(m);
        }
    }
    if !files.is_empty() {
        let files: Vec<ScanFile> = files.iter().map(|m| ScanFile::of(m, &m.layers[0].nodes)).collect();
        let rows = files.iter().map(|f| f.file.rows as usize).sum();
        plans.push(parquet_scan(state, &files, rows, &projection, limit).await?);
    }
    let mut parts: Vec<Arc<dyn PartitionStream>> = Vec::new();
    let merged_rows = merged.iter().map(|m| m.totals.nodes as usize).collect();
    for m in merged {
        let (repo, m, full, out2, projection, node_cols) =
            (repo.clone(), m.clone(), full.clone(), out.clone(), projection.clone(), node_cols.clone());
        parts.push(Arc::new(FnPartition {
            schema: out.clone(),
            make: Box::new(move || {
                let (full, out, projection) = (full.clone(), out2.clone(), projection.clone());
                let (t, s, id) = (m.tenant_id.clone(), m.share_id.clone(), m.snapshot_id);
                Ok(repo
                    .read(&m, Some(&node_cols))?
                    .map(move |b| {
                        let b = b?;
                        let keys = key_arrays(b.num_rows(), &t, &s, id);
                        project(&full, &projection, &out, &b, &keys)
                    })
                    .boxed())
            }),
        }));
    }
    if !parts.is_empty() {
        plans.push(Arc::new(MergedSnapshotsExec { inner: exec(out, parts)?, rows: merged_rows }));
    } else if plans.is_empty() {
        plans.push(exec(out, parts)?);
    }
    datafusion::physical_plan::union::UnionExec::try_new(plans)
}

/// The snapshots read by merging their layers, one partition each, with each snapshot's exact row count
/// from its manifest ([`super::manifest::Totals::nodes`]) as its statistics: `count(*)` over any mix of
/// one-file and merged snapshots is answered without reading a row.
#[derive(Debug)]
struct MergedSnapshotsExec {
    /// A [`StreamingTableExec`] with one partition per snapshot.
    inner: Arc<dyn ExecutionPlan>,
    /// Rows of each partition's snapshot, in partition order.
    rows: Vec<usize>,
}

impl datafusion::physical_plan::DisplayAs for MergedSnapshotsExec {
    fn fmt_as(&self, _: datafusion::physical_plan::DisplayFormatType, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "MergedSnapshotsExec: snapshots={}", self.rows.len())
    }
}

impl ExecutionPlan for MergedSnapshotsExec {
    fn name(&self) -> &str {
        "MergedSnapshotsExec"
    }

    fn properties(&self) -> &Arc<datafusion::physical_plan::PlanProperties> {
        self.inner.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![]
    }

    fn apply_expressions(
        &self,
        _: &mut dyn FnMut(
            &Arc<dyn datafusion::physical_plan::PhysicalExpr>,
        ) -> DfResult<datafusion::common::tree_node::TreeNodeRecursion>,
    ) -> DfResult<datafusion::common::tree_node::TreeNodeRecursion> {
        Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
    }

    fn with_new_children(self: Arc<Self>, children: Vec<Arc<dyn ExecutionPlan>>) -> DfResult<Arc<dyn ExecutionPlan>> {
        if children.is_empty() {
            Ok(self)
        } else {
            Err(DataFusionError::Internal("MergedSnapshotsExec has no children".into()))
        }
    }

    fn execute(
        &self,
        partition: usize,
        ctx: Arc<TaskContext>,
    ) -> DfResult<datafusion::execution::SendableRecordBatchStream> {
        self.inner.execute(partition, ctx)
    }

    fn statistics_from_inputs(
        &self,
        _: &[Arc<datafusion::common::Statistics>],
        args: &datafusion::physical_plan::StatisticsArgs,
    ) -> DfResult<Arc<datafusion::common::Statistics>> {
        use datafusion::common::stats::Precision;
        let mut stats = datafusion::common::Statistics::new_unknown(&self.schema());
        let rows = match args.partition() {
            Some(p) => self.rows.get(p).copied(),
            None => Some(self.rows.iter().sum()),
        };
        stats.num_rows = rows.map_or(Precision::Absent, Precision::Exact);
        Ok(Arc::new(stats))
    }
}

/// The object store URL under which a session reaches the repository's store.
const STORE_URL: &str = "afb-index://repository";

/// One Parquet file of a snapshot (a layer's `nodes` file) with the snapshot's key.
struct ScanFile<'a> {
    file: &'a FileRef,
    tenant: &'a str,
    share: &'a str,
    snapshot_id: i64,
}

impl<'a> ScanFile<'a> {
    fn of(m: &'a IndexManifest, file: &'a FileRef) -> Self {
        ScanFile { file, tenant: &m.tenant_id, share: &m.share_id, snapshot_id: m.snapshot_id }
    }
}

/// DataFusion's Parquet scan over `files`, with the key columns as partition values and `rows` rows in
/// all (from the manifests, so `count(*)` reads no data). `projection` indexes [`nodes_table_schema`].
async fn parquet_scan(
    state: &dyn Session,
    files: &[ScanFile<'_>],
    rows: usize,
    projection: &[usize],
    limit: Option<usize>,
) -> DfResult<Arc<dyn ExecutionPlan>> {
    use datafusion::common::stats::{Precision, Statistics};
    use datafusion::datasource::file_format::FileFormat;
    use datafusion::datasource::file_format::parquet::ParquetFormat;
    use datafusion::datasource::listing::PartitionedFile;
    use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder, ParquetSource};
    use datafusion::datasource::table_schema::TableSchema;
    use datafusion::execution::object_store::ObjectStoreUrl;

    let node_count = node_schema().fields().len();
    let table = TableSchema::builder(node_schema())
        .with_table_partition_cols(key_fields().into_iter().map(Arc::new).collect::<Vec<_>>())
        .build();
    let mut stats = Statistics::new_unknown(table.table_schema());
    stats.num_rows = Precision::Exact(rows);
    let files = files
        .iter()
        .map(|f| {
            PartitionedFile::new(f.file.key.clone(), f.file.bytes).with_partition_values(vec![
                ScalarValue::Utf8(Some(f.tenant.to_string())),
                ScalarValue::Utf8(Some(f.share.to_string())),
                ScalarValue::Int64(Some(f.snapshot_id)),
            ])
        })
        .collect();
    // The table's key columns come first; the scan puts partition columns after the file's.
    let indices = projection.iter().map(|&i| if i < KEY_COLUMNS { node_count + i } else { i - KEY_COLUMNS }).collect();
    let config = FileScanConfigBuilder::new(ObjectStoreUrl::parse(STORE_URL)?, Arc::new(ParquetSource::new(table)))
        .with_file_group(FileGroup::new(files))
        .with_statistics(stats)
        .with_projection_indices(Some(indices))?
        .with_limit(limit)
        .build();
    ParquetFormat::default()
        .with_options(state.table_options().parquet.clone())
        .create_physical_plan(state, config)
        .await
}

/// The rows of snapshot `m` (a base and deltas) as one Parquet scan per layer masked by `mask`, in the
/// columns of `out` (`projection` indexes [`nodes_table_schema`]). No LIMIT reaches the scans: a masked
/// row would leave fewer rows than the limit.
async fn layered_scan(
    state: &dyn Session,
    m: &IndexManifest,
    mask: Arc<LazyMask>,
    projection: &[usize],
    out: &SchemaRef,
) -> DfResult<Arc<dyn ExecutionPlan>> {
    use datafusion::physical_plan::expressions::Column;
    use datafusion::physical_plan::projection::ProjectionExec;

    let node_id = KEY_COLUMNS + col::NODE_ID;
    let mut with_id = projection.to_vec();
    let id_at = match with_id.iter().position(|&i| i == node_id) {
        Some(at) => at,
        None => {
            with_id.push(node_id);
            with_id.len() - 1
        }
    };
    let mut layers = Vec::with_capacity(m.layers.len());
    for l in &m.layers {
        layers.push(parquet_scan(state, &[ScanFile::of(m, &l.nodes)], l.nodes.rows as usize, &with_id, None).await?);
    }
    let rows = m.totals.nodes as usize;
    let exec: Arc<dyn ExecutionPlan> = Arc::new(SnapshotLayersExec::try_new(layers, mask, id_at, rows)?);
    if with_id.len() == projection.len() {
        return Ok(exec);
    }
    let exprs: Vec<(Arc<dyn datafusion::physical_plan::PhysicalExpr>, String)> = out
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| (Arc::new(Column::new(f.name(), i)) as _, f.name().clone()))
        .collect();
    Ok(Arc::new(ProjectionExec::try_new(exprs, exec)?))
}

fn changes_schema() -> SchemaRef {
    let mut f = key_fields();
    f.extend([
        Field::new("prev_snapshot_id", DataType::Int64, false),
        Field::new("node_id", DataType::Int64, false),
        Field::new("kind", DataType::Int8, false),
        Field::new("change", DataType::Utf8, false),
        Field::new("modified", DataType::Boolean, false),
        Field::new("renamed", DataType::Boolean, false),
        Field::new("moved", DataType::Boolean, false),
        Field::new("parent_id", DataType::Int64, true),
        Field::new("old_parent_id", DataType::Int64, true),
        Field::new("name", DataType::Utf8, true),
        Field::new("old_name", DataType::Utf8, true),
        Field::new("size", DataType::Int64, true),
        Field::new("old_size", DataType::Int64, true),
        Field::new("mtime", time_type(), true),
        Field::new("old_mtime", time_type(), true),
    ]);
    Arc::new(Schema::new(f))
}

/// Collects [`Change`]s into batches with [`changes_schema`].
#[derive(Default)]
struct ChangeRows {
    rows: usize,
    node_id: Int64Builder,
    kind: Int8Builder,
    change: StringBuilder,
    modified: BooleanBuilder,
    renamed: BooleanBuilder,
    moved: BooleanBuilder,
    parent: Int64Builder,
    old_parent: Int64Builder,
    name: StringBuilder,
    old_name: StringBuilder,
    size: Int64Builder,
    old_size: Int64Builder,
    mtime: TimestampNanosecondBuilder,
    old_mtime: TimestampNanosecondBuilder,
}

impl ChangeRows {
    fn push(&mut self, c: &Change) {
        self.rows += 1;
        let any = c.new.as_ref().or(c.old.as_ref()).expect("a change has a side");
        self.node_id.append_value(any.node_id.0);
        self.kind.append_value(any.kind as i8);
        self.change.append_value(c.kind.as_str());
        self.modified.append_value(c.modified);
        self.renamed.append_value(c.renamed);
        self.moved.append_value(c.moved);
        self.parent.append_option(c.new.as_ref().map(|n| n.parent_id.0));
        self.old_parent.append_option(c.old.as_ref().map(|n| n.parent_id.0));
        self.name.append_option(c.new.as_ref().map(|n| n.name.as_str()));
        self.old_name.append_option(c.old.as_ref().map(|n| n.name.as_str()));
        self.size.append_option(c.new.as_ref().map(|n| n.size));
        self.old_size.append_option(c.old.as_ref().map(|n| n.size));
        self.mtime.append_option(c.new.as_ref().map(|n| n.mtime));
        self.old_mtime.append_option(c.old.as_ref().map(|n| n.mtime));
    }

    fn finish(&mut self, new: &IndexManifest, prev: i64) -> RecordBatch {
        let n = std::mem::take(&mut self.rows);
        let [t, s, id] = key_arrays(n, &new.tenant_id, &new.share_id, new.snapshot_id);
        let cols: Vec<ArrayRef> = vec![
            t,
            s,
            id,
            Arc::new(Int64Array::from_value(prev, n)),
            Arc::new(self.node_id.finish()),
            Arc::new(self.kind.finish()),
            Arc::new(self.change.finish()),
            Arc::new(self.modified.finish()),
            Arc::new(self.renamed.finish()),
            Arc::new(self.moved.finish()),
            Arc::new(self.parent.finish()),
            Arc::new(self.old_parent.finish()),
            Arc::new(self.name.finish()),
            Arc::new(self.old_name.finish()),
            Arc::new(self.size.finish()),
            Arc::new(self.old_size.finish()),
            Arc::new(self.mtime.finish().with_timezone("UTC")),
            Arc::new(self.old_mtime.finish().with_timezone("UTC")),
        ];
        RecordBatch::try_new(changes_schema(), cols).expect("changes schema")
    }
}

/// Batches of changes a `changes` partition computes ahead of its reader.
const CHANGE_BATCHES_AHEAD: usize = 2;

/// The changes of each (older, newer) pair; `projection` indexes [`changes_schema`], `out` is its
/// projection.
fn scan_changes(
    repo: &NodeIndex,
    pairs: Vec<&(IndexManifest, IndexManifest)>,
    projection: Vec<usize>,
    out: SchemaRef,
) -> DfResult<Arc<dyn ExecutionPlan>> {
    let mut parts: Vec<Arc<dyn PartitionStream>> = Vec::new();
    for (old, new) in pairs {
        let (repo, old, new, projection) = (repo.clone(), old.clone(), new.clone(), projection.clone());
        parts.push(Arc::new(FnPartition {
            schema: out.clone(),
            make: Box::new(move || {
                // The diff calls back synchronously, so it runs on a blocking thread and waits there while
                // CHANGE_BATCHES_AHEAD batches are unread: memory stays bounded however slow the reader.
                let (tx, rx) = std::sync::mpsc::sync_channel::<anyhow::Result<RecordBatch>>(CHANGE_BATCHES_AHEAD);
                let (repo, old, new, projection) = (repo.clone(), old.clone(), new.clone(), projection.clone());
                let runtime = tokio::runtime::Handle::current();
                tokio::task::spawn_blocking(move || {
                    runtime.block_on(async move {
                        let mut rows = ChangeRows::default();
                        let prev = old.snapshot_id;
                        let gone = || anyhow::anyhow!("the query stopped reading the changes");
                        let r = diff_snapshots(&repo, &old, &new, |c| {
                            rows.push(c);
                            if rows.rows >= 8192 {
                                tx.send(Ok(rows.finish(&new, prev).project(&projection)?)).map_err(|_| gone())?;
                            }
                            Ok(())
                        })
                        .await;
                        let last = match r {
                            Ok(_) if rows.rows == 0 => return,
                            Ok(_) => rows.finish(&new, prev).project(&projection).map_err(Into::into),
                            Err(e) => Err(e),
                        };
                        let _ = tx.send(last);
                    })
                });
                Ok(futures::stream::unfold(Some(rx), |rx| async move {
                    let rx = rx?;
                    let (next, rx) = tokio::task::spawn_blocking(move || (rx.recv().ok(), rx)).await.ok()?;
                    next.map(|b| (b, Some(rx)))
                })
                .boxed())
            }),
        }));
    }
    exec(out, parts)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum UdfKind {
    Path,
    Du,
    DuFiles,
    DuDirs,
    DirId,
}

/// Scalar functions answered from the focus snapshot's directory map.
#[derive(Debug)]
struct DirUdf {
    kind: UdfKind,
    signature: Signature,
    dirmap: Arc<OnceLock<Arc<DirMap>>>,
    focus_error: String,
}

impl PartialEq for DirUdf {
    fn eq(&self, o: &Self) -> bool {
        self.kind == o.kind && Arc::ptr_eq(&self.dirmap, &o.dirmap)
    }
}
impl Eq for DirUdf {}
impl std::hash::Hash for DirUdf {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.kind.hash(h);
        (Arc::as_ptr(&self.dirmap) as usize).hash(h);
    }
}

impl DirUdf {
    fn new(kind: UdfKind, dirmap: Arc<OnceLock<Arc<DirMap>>>, focus_error: String) -> Self {
        use datafusion::logical_expr::TypeSignature::Exact;
        let sig = match kind {
            UdfKind::Path => Signature::one_of(
                vec![Exact(vec![DataType::Int64]), Exact(vec![DataType::Int64, DataType::Utf8])],
                Volatility::Immutable,
            ),
            UdfKind::DirId => Signature::exact(vec![DataType::Utf8], Volatility::Immutable),
            _ => Signature::exact(vec![DataType::Int64], Volatility::Immutable),
        };
        DirUdf { kind, signature: sig, dirmap, focus_error }
    }
}

impl ScalarUDFImpl for DirUdf {
    fn name(&self) -> &str {
        match self.kind {
            UdfKind::Path => "path",
            UdfKind::Du => "du",
            UdfKind::DuFiles => "du_files",
            UdfKind::DuDirs => "du_dirs",
            UdfKind::DirId => "dir_id",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> DfResult<DataType> {
        Ok(if self.kind == UdfKind::Path { DataType::Utf8 } else { DataType::Int64 })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let d = self
            .dirmap
            .get()
            .ok_or_else(|| DataFusionError::Execution(format!("{}(): {}", self.name(), self.focus_error)))?;
        let n = args.number_rows;
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let out: ArrayRef = match self.kind {
            UdfKind::Path if arrays.len() == 2 => {
                let p = arrays[0].as_primitive::<Int64Type>();
                let names = arrays[1].as_string::<i32>();
                let mut b = StringBuilder::with_capacity(n, n * 48);
                // Rows of one directory mostly follow each other (node ids are given in scan order), so
                // a directory's path is looked up once per run of its rows, not once per row. `prefix`
                // is the path of `parent` without a trailing `/` ("" for the root).
                let mut last: Option<(NodeId, Option<String>)> = None;
                for i in 0..n {
                    if p.is_null(i) || names.is_null(i) {
                        b.append_null();
                        continue;
                    }
                    let parent = NodeId(p.value(i));
                    if last.as_ref().is_none_or(|(id, _)| *id != parent) {
                        let prefix = d.path(parent).map(|dir| if dir == "/" { String::new() } else { dir });
                        last = Some((parent, prefix));
                    }
                    match last.as_ref().and_then(|(_, prefix)| prefix.as_deref()) {
                        Some(prefix) => {
                            b.write_str(prefix)
                                .and_then(|()| b.write_char('/'))
                                .and_then(|()| b.write_str(names.value(i)))
                                .map_err(|e| DataFusionError::Execution(format!("path(): {e}")))?;
                            b.append_value("");
                        }
                        None => b.append_null(),
                    }
                }
                Arc::new(b.finish())
            }
            UdfKind::Path => {
                let ids = arrays[0].as_primitive::<Int64Type>();
                let mut b = StringBuilder::with_capacity(n, n * 40);
                for i in 0..n {
                    b.append_option(if ids.is_null(i) { None } else { d.path(NodeId(ids.value(i))) });
                }
                Arc::new(b.finish())
            }
            UdfKind::DirId => {
                let p = arrays[0].as_string::<i32>();
                Arc::new(
                    (0..n)
                        .map(|i| if p.is_null(i) { None } else { d.resolve(p.value(i)).map(|id| id.0) })
                        .collect::<Int64Array>(),
                )
            }
            k => {
                let ids = arrays[0].as_primitive::<Int64Type>();
                Arc::new(
                    (0..n)
                        .map(|i| {
                            if ids.is_null(i) {
                                return None;
                            }
                            d.du(NodeId(ids.value(i))).map(|t| match k {
                                UdfKind::Du => t.bytes as i64,
                                UdfKind::DuFiles => t.files as i64,
                                _ => t.dirs as i64,
                            })
                        })
                        .collect::<Int64Array>(),
                )
            }
        };
        if args.args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_))) {
            return Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?));
        }
        Ok(ColumnarValue::Array(out))
    }
}

/// `ls(path)` and `find(glob)`: rows of the focus snapshot, with their path.
#[derive(Debug)]
struct WalkFunction {
    find: bool,
    repo: NodeIndex,
    focus: Option<IndexManifest>,
    dirmap: Arc<OnceLock<Arc<DirMap>>>,
    focus_error: String,
}

impl TableFunctionImpl for WalkFunction {
    fn call_with_args(&self, args: datafusion::catalog::TableFunctionArgs) -> DfResult<Arc<dyn TableProvider>> {
        let name = if self.find { "find" } else { "ls" };
        let arg = match args.exprs() {
            [Expr::Literal(ScalarValue::Utf8(Some(s)), _)] => s.clone(),
            _ => {
                return Err(DataFusionError::Plan(format!(
                    "{name}() takes one string literal, e.g. {name}('{}')",
                    if self.find { "*.pdf" } else { "/docs" }
                )));
            }
        };
        let m = self.focus.clone().ok_or_else(|| DataFusionError::Plan(format!("{name}(): {}", self.focus_error)))?;
        let d = self
            .dirmap
            .get()
            .cloned()
            .ok_or_else(|| DataFusionError::Plan(format!("{name}(): directory map not loaded")))?;
        let filter = if self.find {
            WalkFilter::Glob(arg)
        } else {
            let id = d.resolve(&arg).ok_or_else(|| {
                DataFusionError::Plan(format!("ls(): no directory {arg:?} in snapshot {}", m.snapshot_id))
            })?;
            WalkFilter::Parent(id)
        };
        Ok(Arc::new(WalkTable { repo: self.repo.clone(), m, d, filter }))
    }
}

#[derive(Debug, Clone)]
enum WalkFilter {
    /// The entries of this directory (`ls`).
    Parent(NodeId),
    Glob(String),
}

#[derive(Debug)]
struct WalkTable {
    repo: NodeIndex,
    m: IndexManifest,
    d: Arc<DirMap>,
    filter: WalkFilter,
}

fn walk_schema() -> SchemaRef {
    let mut f: Vec<Field> = node_schema().fields().iter().map(|x| x.as_ref().clone()).collect();
    f.push(Field::new("path", DataType::Utf8, false));
    Arc::new(Schema::new(f))
}

#[async_trait]
impl TableProvider for WalkTable {
    fn schema(&self) -> SchemaRef {
        walk_schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Temporary
    }

    async fn scan(
        &self,
        _s: &dyn Session,
        projection: Option<&Vec<usize>>,
        _f: &[Expr],
        _l: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let full = walk_schema();
        let projection: Vec<usize> = projection.cloned().unwrap_or_else(|| (0..full.fields().len()).collect());
        let out = Arc::new(full.project(&projection)?);
        // A listing reads only the pages that may hold the directory's entries, found in the summary
        // stored with the snapshot; without a usable summary, every row.
        let runs: Option<Arc<IdRuns>> = match &self.filter {
            WalkFilter::Parent(dir) => match super::summary::load(&self.repo, &self.m).await {
                Ok(Some(summary)) => Some(summary.entry_runs(*dir).into()),
                Ok(None) => None,
                Err(e) => {
                    tracing::warn!("ls(): {e:#}; reading every row");
                    None
                }
            },
            WalkFilter::Glob(_) => None,
        };
        let (repo, m, d, filter, out2) =
            (self.repo.clone(), self.m.clone(), self.d.clone(), self.filter.clone(), out.clone());
        let part = FnPartition {
            schema: out.clone(),
            make: Box::new(move || {
                let (d, filter, out, projection) = (d.clone(), filter.clone(), out2.clone(), projection.clone());
                let wanted = runs.clone();
                Ok(repo
                    .read_in(&m, None, runs.clone())?
                    .map(move |b| {
                        let b = b?;
                        let c = NodeColumns::new(&b);
                        let mut keep = Vec::new();
                        let mut paths = StringBuilder::new();
                        for i in 0..c.len() {
                            let (p, name) = (NodeId(c.parent_id.value(i)), c.name.value(i));
                            let ok = match &filter {
                                WalkFilter::Parent(id) => {
                                    p == *id && wanted.as_deref().is_none_or(|r| in_runs(r, c.node_id.value(i)))
                                }
                                WalkFilter::Glob(_) => true,
                            };
                            if !ok {
                                continue;
                            }
                            let path = d.path_of(p, name).unwrap_or_else(|| format!("?/{name}"));
                            if let WalkFilter::Glob(g) = &filter
                                && !glob_match(g, &path)
                            {
                                continue;
                            }
                            keep.push(i as u32);
                            paths.append_value(path);
                        }
                        let idx = arrow::array::UInt32Array::from(keep);
                        let mut cols: Vec<ArrayRef> = b
                            .columns()
                            .iter()
                            .map(|a| arrow::compute::take(a, &idx, None))
                            .collect::<Result<_, _>>()?;
                        cols.push(Arc::new(paths.finish()));
                        let all = RecordBatch::try_new(walk_schema(), cols)?;
                        Ok(RecordBatch::try_new_with_options(
                            out.clone(),
                            projection.iter().map(|&i| all.column(i).clone()).collect(),
                            &RecordBatchOptions::new().with_row_count(Some(all.num_rows())),
                        )?)
                    })
                    .boxed())
            }),
        };
        exec(out, vec![Arc::new(part)])
    }
}

/// Render batches as text: a table, JSON (an array of objects), or CSV with a header.
pub fn render(batches: &[RecordBatch], format: OutputFormat) -> anyhow::Result<String> {
    match format {
        OutputFormat::Table => Ok(arrow::util::pretty::pretty_format_batches(batches)?.to_string()),
        OutputFormat::Json => {
            let mut w = arrow::json::ArrayWriter::new(Vec::new());
            for b in batches {
                w.write(b)?;
            }
            w.finish()?; // `[]` when there were no rows
            Ok(String::from_utf8(w.into_inner())?)
        }
        OutputFormat::Csv => {
            let mut w = arrow::csv::WriterBuilder::new().with_header(true).build(Vec::new());
            for b in batches {
                w.write(b)?;
            }
            Ok(String::from_utf8(w.into_inner())?)
        }
    }
}

/// Text output formats of `afb sql`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    Table,
    Json,
    Csv,
}

/// Write a query's result to `out` as CSV (with a header, also for no rows) or JSON (one array) as it
/// streams in; returns the rows written. A table needs every row for its widths: use [`render`].
pub async fn write_stream(
    mut s: datafusion::execution::SendableRecordBatchStream,
    format: OutputFormat,
    out: impl std::io::Write,
) -> anyhow::Result<usize> {
    let schema = s.schema();
    match format {
        OutputFormat::Csv => {
            let mut w = arrow::csv::WriterBuilder::new().with_header(true).build(out);
            w.write(&RecordBatch::new_empty(schema))?;
            let rows = each_batch(&mut s, |b| Ok(w.write(b)?)).await?;
            w.into_inner().flush()?;
            Ok(rows)
        }
        OutputFormat::Json => {
            let mut w = arrow::json::ArrayWriter::new(out);
            let rows = each_batch(&mut s, |b| Ok(w.write(b)?)).await?;
            w.finish()?; // `[]` when there were no rows
            let mut out = w.into_inner();
            out.write_all(b"\n")?;
            out.flush()?;
            Ok(rows)
        }
        OutputFormat::Table => anyhow::bail!("a table needs the whole result: render it"),
    }
}

/// Hand each batch of a query's result to `write` as it arrives; returns the rows handed over.
async fn each_batch(
    s: &mut datafusion::execution::SendableRecordBatchStream,
    mut write: impl FnMut(&RecordBatch) -> anyhow::Result<()>,
) -> anyhow::Result<usize> {
    let mut rows = 0;
    while let Some(b) = s.next().await {
        let b = b.map_err(|e| anyhow::anyhow!("{e}"))?;
        rows += b.num_rows();
        write(&b)?;
    }
    Ok(rows)
}

/// Write a query's result to a local Parquet file as it streams in: to a temporary file beside `path`,
/// renamed into place at the end, so a failed query leaves no file. Returns the rows written.
pub async fn write_parquet(
    mut s: datafusion::execution::SendableRecordBatchStream,
    path: &std::path::Path,
) -> anyhow::Result<usize> {
    let name = path.file_name().with_context(|| format!("{}: not a file name", path.display()))?;
    let tmp = path.with_file_name(format!(".{}.{}.tmp", name.to_string_lossy(), std::process::id()));
    let written = async {
        let f = std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        let mut w = parquet::arrow::ArrowWriter::try_new(f, s.schema(), None)?;
        let rows = each_batch(&mut s, |b| Ok(w.write(b)?)).await?;
        w.close()?;
        std::fs::rename(&tmp, path).with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
        anyhow::Ok(rows)
    }
    .await;
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}
