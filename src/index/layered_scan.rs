//! SQL over a snapshot with deltas through DataFusion's own Parquet scan of each layer.
//!
//! A snapshot of a base and deltas holds, for each node id, the row of the newest layer that mentions the
//! id (in its `nodes` file), unless a newer layer's `deleted` file names it. So the snapshot's rows are, for
//! each layer `l`, the rows of `l`'s `nodes` file whose id no newer layer mentions. [`LayerMask`] holds the
//! ids the deltas mention (sorted, with the newest layer mentioning each); [`SnapshotLayersExec`] runs one
//! Parquet scan per layer (all of DataFusion's projection, row-group, page and row-filter pushdown, byte
//! ranges on every core) and drops the rows the mask says a newer layer replaced or deleted. A filter on a
//! row's own columns gives the same answer before or after the mask (the mask is by id only), so filters
//! pass through to the scans.
//!
//! Memory: the mask, 9 bytes per id the deltas mention (16 while it is sorted), read when the scan first
//! runs ([`LazyMask`]), not while the query is planned. The masks of one query's snapshots together hold
//! at most [`MASK_BUDGET_IDS`] ids; a snapshot whose mask would not fit is read by the streaming merge
//! instead ([`super::NodeIndex::read`], memory-flat).

use std::sync::Arc;

use anyhow::Context;
use arrow::array::{Array, AsArray, BooleanArray, Int64Array, RecordBatch};
use arrow::compute::filter_record_batch;
use arrow::datatypes::{DataType, Field, Int64Type, Schema};
use datafusion::common::stats::Precision;
use datafusion::common::{DataFusionError, Result as DfResult, Statistics};
use datafusion::config::ConfigOptions;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::{EquivalenceProperties, Partitioning, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::filter_pushdown::{
    ChildPushdownResult, FilterDescription, FilterPushdownPhase, FilterPushdownPropagation, PushedDown,
};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, PlanProperties, StatisticsArgs,
};
use futures::{StreamExt, TryStreamExt};
use object_store::ObjectStore;

use super::manifest::{FileRef, Layer};
use super::node_index::{READ_BATCH_ROWS, deleted_schema};
use super::parquet_io::open_stream;

/// Most ids the masks of one query may hold together (9 bytes each: 72 MiB).
pub const MASK_BUDGET_IDS: u64 = 8 << 20;

/// The ids the deltas of a snapshot mention, ascending, each with the newest layer mentioning it.
#[derive(Debug, Default)]
pub struct LayerMask {
    ids: Vec<i64>,
    newest: Vec<u8>,
}

/// The deltas' files a mask reads: (layer, file, whether it is a `deleted` file).
fn delta_files(layers: &[Layer]) -> impl Iterator<Item = (usize, &FileRef, bool)> {
    layers.iter().enumerate().skip(1).flat_map(|(l, layer)| {
        std::iter::once((l, &layer.nodes, false)).chain(layer.deleted.as_ref().map(|d| (l, d, true)))
    })
}

/// Ids the deltas' files hold by their manifest's counts (at least the mask's length); `None` beyond
/// `budget` or with more than 255 layers.
fn mentioned_within(layers: &[Layer], budget: u64) -> Option<u64> {
    let total = delta_files(layers).map(|(_, f, _)| f.rows).fold(0u64, u64::saturating_add);
    (total <= budget && layers.len() <= usize::from(u8::MAX)).then_some(total)
}

impl LayerMask {
    /// Read the ids of every delta's `nodes` and `deleted` files; `None` when the manifest says they hold
    /// more than `budget` ids (or there are more than 255 layers).
    pub async fn load(store: &Arc<dyn ObjectStore>, layers: &[Layer], budget: u64) -> anyhow::Result<Option<Self>> {
        let Some(total) = mentioned_within(layers, budget) else { return Ok(None) };
        let files: Vec<_> = delta_files(layers).collect();
        let id_only = Schema::new(vec![Field::new("node_id", DataType::Int64, false)]);
        let mut pairs: Vec<(i64, u8)> = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
        for (l, f, deleted) in files {
            let expected = if deleted { deleted_schema() } else { Arc::new(id_only.clone()) };
            let mut s = open_stream(store, &f.key, Some(f.bytes), &expected, READ_BATCH_ROWS).await?;
            while let Some(b) = s.next().await {
                let b = b.with_context(|| format!("reading {}", f.key))?;
                let ids = b.column(0).as_primitive::<Int64Type>();
                pairs.extend(ids.values().iter().map(|&id| (id, l as u8)));
                if pairs.len() as u64 > budget {
                    return Ok(None);
                }
            }
        }
        // Ascending ids; of one id's entries the newest layer last, and only that one kept.
        pairs.sort_unstable();
        let mut mask = LayerMask { ids: Vec::with_capacity(pairs.len()), newest: Vec::with_capacity(pairs.len()) };
        for (i, &(id, l)) in pairs.iter().enumerate() {
            if pairs.get(i + 1).is_none_or(|next| next.0 != id) {
                mask.ids.push(id);
                mask.newest.push(l);
            }
        }
        Ok(Some(mask))
    }

    /// Ids in the mask (every id a delta mentions, once).
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Which rows of `layer` with these ids the snapshot holds (no newer layer mentions them); `None` when
    /// it holds all of them.
    pub fn keep(&self, layer: usize, ids: &Int64Array) -> Option<BooleanArray> {
        if ids.is_empty() || ids.null_count() > 0 {
            return None;
        }
        let v = ids.values();
        let (lo, hi) = v.iter().fold((i64::MAX, i64::MIN), |(lo, hi), &x| (lo.min(x), hi.max(x)));
        let from = self.ids.partition_point(|&x| x < lo);
        let to = self.ids.partition_point(|&x| x <= hi);
        let (near, newest) = (&self.ids[from..to], &self.newest[from..to]);
        let replaced = |k: usize| usize::from(newest[k]) > layer;
        if !(0..near.len()).any(replaced) {
            return None;
        }
        let keep: BooleanArray = if v.windows(2).all(|w| w[0] < w[1]) {
            // Both ascending: one merge walk.
            let mut k = 0;
            v.iter()
                .map(|&id| {
                    while k < near.len() && near[k] < id {
                        k += 1;
                    }
                    Some(!(k < near.len() && near[k] == id && replaced(k)))
                })
                .collect()
        } else {
            v.iter().map(|id| Some(near.binary_search(id).map_or(true, |k| !replaced(k)))).collect()
        };
        Some(keep)
    }
}

/// A snapshot's [`LayerMask`], read when a partition first executes (so planning, `EXPLAIN` and a
/// `count(*)` answered from statistics read nothing), then shared by every partition.
#[derive(Debug)]
pub struct LazyMask {
    store: Arc<dyn ObjectStore>,
    layers: Vec<Layer>,
    /// Ids the deltas' files hold by the manifest: the most the mask can hold.
    ids_at_most: u64,
    mask: tokio::sync::OnceCell<Arc<LayerMask>>,
}

impl LazyMask {
    /// `None` when, by the manifest's counts, the mask would hold more than `budget` ids.
    pub fn new(store: &Arc<dyn ObjectStore>, layers: &[Layer], budget: u64) -> Option<Self> {
        let ids_at_most = mentioned_within(layers, budget)?;
        Some(LazyMask { store: store.clone(), layers: layers.to_vec(), ids_at_most, mask: Default::default() })
    }

    /// The most ids the mask can hold (what it takes of a query's budget).
    pub fn ids_at_most(&self) -> u64 {
        self.ids_at_most
    }

    /// The mask, read on the first call.
    pub async fn get(&self) -> anyhow::Result<Arc<LayerMask>> {
        let load = || async {
            let mask = LayerMask::load(&self.store, &self.layers, self.ids_at_most).await?;
            mask.map(Arc::new).context("the deltas hold more ids than their manifest counts")
        };
        self.mask.get_or_try_init(load).await.cloned()
    }
}

/// The rows of one snapshot of a base and deltas: one child per layer (a Parquet scan of its `nodes` file
/// with the same schema, holding a `node_id` column at `node_id`), each child's rows masked by
/// [`LayerMask`]. Output partitions are the children's, one after the other.
#[derive(Debug)]
pub struct SnapshotLayersExec {
    layers: Vec<Arc<dyn ExecutionPlan>>,
    mask: Arc<LazyMask>,
    node_id: usize,
    /// The snapshot's rows (its manifest's `totals.nodes`, checked against its layers when read).
    rows: usize,
    /// A filter was pushed into the layers, so `rows` is no longer what comes out.
    filtered: bool,
    props: Arc<PlanProperties>,
}

impl SnapshotLayersExec {
    pub fn try_new(
        layers: Vec<Arc<dyn ExecutionPlan>>,
        mask: Arc<LazyMask>,
        node_id: usize,
        rows: usize,
    ) -> DfResult<Self> {
        let schema =
            layers.first().ok_or_else(|| DataFusionError::Internal("a snapshot without layers".into()))?.schema();
        if layers.iter().any(|l| l.schema() != schema) || schema.fields().get(node_id).is_none() {
            return Err(DataFusionError::Internal("layers of one snapshot read with different schemas".into()));
        }
        let partitions = layers.iter().map(|l| l.output_partitioning().partition_count()).sum();
        let props = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(schema),
            Partitioning::UnknownPartitioning(partitions),
            EmissionType::Incremental,
            Boundedness::Bounded,
        ));
        Ok(SnapshotLayersExec { layers, mask, node_id, rows, filtered: false, props })
    }

    /// The layer and that layer's partition behind output partition `p`.
    fn locate(&self, mut p: usize) -> Option<(usize, usize)> {
        for (l, plan) in self.layers.iter().enumerate() {
            let n = plan.output_partitioning().partition_count();
            if p < n {
                return Some((l, p));
            }
            p -= n;
        }
        None
    }
}

impl DisplayAs for SnapshotLayersExec {
    fn fmt_as(&self, _: DisplayFormatType, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "SnapshotLayersExec: layers={}, masked_ids<={}", self.layers.len(), self.mask.ids_at_most)
    }
}

impl ExecutionPlan for SnapshotLayersExec {
    fn name(&self) -> &str {
        "SnapshotLayersExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.props
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        self.layers.iter().collect()
    }

    fn apply_expressions(
        &self,
        _: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DfResult<datafusion::common::tree_node::TreeNodeRecursion>,
    ) -> DfResult<datafusion::common::tree_node::TreeNodeRecursion> {
        Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
    }

    fn with_new_children(self: Arc<Self>, children: Vec<Arc<dyn ExecutionPlan>>) -> DfResult<Arc<dyn ExecutionPlan>> {
        let mut new = SnapshotLayersExec::try_new(children, self.mask.clone(), self.node_id, self.rows)?;
        new.filtered = self.filtered;
        Ok(Arc::new(new))
    }

    fn execute(&self, partition: usize, ctx: Arc<TaskContext>) -> DfResult<SendableRecordBatchStream> {
        let (layer, p) = self
            .locate(partition)
            .ok_or_else(|| DataFusionError::Internal(format!("SnapshotLayersExec has no partition {partition}")))?;
        let input = self.layers[layer].execute(p, ctx)?;
        let (lazy, node_id) = (self.mask.clone(), self.node_id);
        let masked = futures::stream::once(async move {
            let mask = lazy.get().await.map_err(|e| DataFusionError::External(e.into()))?;
            Ok::<_, DataFusionError>(input.map(move |b| {
                let b: RecordBatch = b?;
                match mask.keep(layer, b.column(node_id).as_primitive::<Int64Type>()) {
                    None => Ok(b),
                    Some(keep) => Ok(filter_record_batch(&b, &keep)?),
                }
            }))
        })
        .try_flatten();
        Ok(Box::pin(RecordBatchStreamAdapter::new(self.schema(), masked)))
    }

    /// The snapshot's exact row count (what `count(*)` answers from) while no filter was pushed below.
    fn statistics_from_inputs(&self, _: &[Arc<Statistics>], args: &StatisticsArgs) -> DfResult<Arc<Statistics>> {
        let mut stats = Statistics::new_unknown(&self.schema());
        if args.partition().is_none() && !self.filtered {
            stats.num_rows = Precision::Exact(self.rows);
        }
        Ok(Arc::new(stats))
    }

    fn gather_filters_for_pushdown(
        &self,
        _phase: FilterPushdownPhase,
        parent_filters: Vec<Arc<dyn PhysicalExpr>>,
        _config: &ConfigOptions,
    ) -> DfResult<FilterDescription> {
        FilterDescription::from_children(parent_filters, &self.children())
    }

    fn handle_child_pushdown_result(
        &self,
        _phase: FilterPushdownPhase,
        result: ChildPushdownResult,
        _config: &ConfigOptions,
    ) -> DfResult<FilterPushdownPropagation<Arc<dyn ExecutionPlan>>> {
        let pushed = result.parent_filters.iter().any(|f| matches!(f.any(), PushedDown::Yes));
        let propagation = FilterPushdownPropagation::if_all(result);
        if !pushed || self.filtered {
            return Ok(propagation);
        }
        let mut new = SnapshotLayersExec::try_new(self.layers.clone(), self.mask.clone(), self.node_id, self.rows)?;
        new.filtered = true;
        Ok(propagation.with_updated_node(Arc::new(new)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ids 10 (newest in layer 1), 20 (layer 2), 30 (layer 1): a row of layer `l` is kept unless a newer
    /// layer mentions its id, whether the batch's ids ascend (merge walk) or not (binary search).
    #[test]
    fn keep_drops_exactly_the_ids_a_newer_layer_mentions() {
        let mask = LayerMask { ids: vec![10, 20, 30], newest: vec![1, 2, 1] };
        let keep = |layer, ids: Vec<i64>| mask.keep(layer, &Int64Array::from(ids)).map(|k| k.values().iter().collect());
        assert_eq!(keep(0, vec![5, 10, 15, 20, 30, 40]), Some(vec![true, false, true, false, false, true]));
        assert_eq!(keep(0, vec![40, 30, 5, 20, 10, 15]), Some(vec![true, false, true, false, false, true]));
        assert_eq!(keep(1, vec![10, 20, 30]), Some(vec![true, false, true]));
        assert_eq!(keep(1, vec![30, 20, 10]), Some(vec![true, false, true]));
        assert_eq!(keep(2, vec![10, 20, 30]), None, "the newest layer keeps every row");
        assert_eq!(keep(0, vec![11, 12, 19]), None, "no masked id in the batch's range");
        assert_eq!(keep(0, vec![]), None);
    }
}
