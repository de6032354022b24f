//! Azure FileId → dense node id, stable across renames and moves.
//!
//! Azure Files gives every file and directory a 64-bit FileId that survives rename and move. Stored as is
//! it compresses badly (random-looking 64-bit values), so each share maps FileIds to dense node ids
//! `1, 2, 3, ...` in first-seen order, and the node table stores only the dense id. Ids are never reused:
//! a FileId seen again keeps its id, a new FileId gets the next one.
//!
//! The map is persisted in the repository as append-only segments (Parquet, columns `node_id` INT64,
//! `file_id` INT64 holding the FileId's two's-complement bits), each holding the ids first assigned by one
//! snapshot; see `docs/index.md`. In memory it is a sorted vector of the loaded pairs plus a hash map of the
//! pairs assigned since (16 bytes per known FileId, plus ~32 per new one).

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{AsArray, Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef};

/// The Arrow schema of an idmap segment.
pub fn idmap_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("node_id", DataType::Int64, false),
        Field::new("file_id", DataType::Int64, false),
    ]))
}

/// FileId → node id for one share.
#[derive(Debug, Default, Clone)]
pub struct IdMap {
    /// Pairs from committed segments, sorted by FileId.
    loaded: Vec<(u64, i64)>,
    /// Pairs assigned since loading (not yet persisted), FileId → node id.
    fresh: HashMap<u64, i64>,
    /// The next id to hand out (ids start at 1; 0 is the share root).
    next_id: i64,
}

impl IdMap {
    /// An empty map; the first id handed out is 1.
    pub fn new() -> Self {
        IdMap { loaded: Vec::new(), fresh: HashMap::new(), next_id: 1 }
    }

    /// Rebuild from persisted segments (batches with [`idmap_schema`]), in any order.
    ///
    /// Fails if a FileId maps to two node ids or a node id to two FileIds.
    pub fn from_segments(batches: &[RecordBatch]) -> anyhow::Result<Self> {
        let mut loaded = Vec::with_capacity(batches.iter().map(|b| b.num_rows()).sum());
        let mut next_id = 1;
        for b in batches {
            if b.num_columns() != 2
                || b.schema().field(0).name() != "node_id"
                || b.schema().field(1).name() != "file_id"
            {
                anyhow::bail!(
                    "idmap segment has columns {:?}, expected [node_id, file_id]",
                    b.schema().fields().iter().map(|f| f.name()).collect::<Vec<_>>()
                );
            }
            let ids = b
                .column(0)
                .as_primitive_opt::<Int64Type>()
                .ok_or_else(|| anyhow::anyhow!("idmap node_id is not INT64"))?;
            let fids = b
                .column(1)
                .as_primitive_opt::<Int64Type>()
                .ok_or_else(|| anyhow::anyhow!("idmap file_id is not INT64"))?;
            for (id, fid) in ids.values().iter().zip(fids.values()) {
                loaded.push((*fid as u64, *id));
                next_id = next_id.max(id + 1);
            }
        }
        loaded.sort_unstable();
        for w in loaded.windows(2) {
            if w[0].0 == w[1].0 && w[0].1 != w[1].1 {
                anyhow::bail!("idmap is inconsistent: FileId {} maps to node ids {} and {}", w[0].0, w[0].1, w[1].1);
            }
        }
        loaded.dedup();
        let mut by_id: Vec<i64> = loaded.iter().map(|p| p.1).collect();
        by_id.sort_unstable();
        if let Some(w) = by_id.windows(2).find(|w| w[0] == w[1]) {
            anyhow::bail!("idmap is inconsistent: node id {} is assigned to two FileIds", w[0]);
        }
        Ok(IdMap { loaded, fresh: HashMap::new(), next_id })
    }

    /// The node id for `file_id`, if known.
    pub fn get(&self, file_id: u64) -> Option<i64> {
        if let Ok(i) = self.loaded.binary_search_by_key(&file_id, |p| p.0) {
            return Some(self.loaded[i].1);
        }
        self.fresh.get(&file_id).copied()
    }

    /// The node id for `file_id`, assigning the next dense id if it is new.
    pub fn assign(&mut self, file_id: u64) -> i64 {
        if let Some(id) = self.get(file_id) {
            return id;
        }
        let id = self.next_id;
        self.next_id += 1;
        self.fresh.insert(file_id, id);
        id
    }

    /// The id the next new FileId will get (one more than the largest assigned).
    pub fn next_id(&self) -> i64 {
        self.next_id
    }

    /// Number of FileIds known.
    pub fn len(&self) -> usize {
        self.loaded.len() + self.fresh.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Pairs assigned since loading, as a segment batch sorted by node id; `None` if there are none.
    pub fn unsaved_segment(&self) -> Option<RecordBatch> {
        if self.fresh.is_empty() {
            return None;
        }
        let mut pairs: Vec<(i64, i64)> = self.fresh.iter().map(|(f, n)| (*n, *f as i64)).collect();
        pairs.sort_unstable();
        let ids = Int64Array::from_iter_values(pairs.iter().map(|p| p.0));
        let fids = Int64Array::from_iter_values(pairs.iter().map(|p| p.1));
        Some(RecordBatch::try_new(idmap_schema(), vec![Arc::new(ids), Arc::new(fids)]).expect("idmap schema"))
    }

    /// Mark every pair as persisted (after the segment from [`Self::unsaved_segment`] was committed).
    pub fn mark_saved(&mut self) {
        self.loaded.extend(self.fresh.drain());
        self.loaded.sort_unstable();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_dense_stable_and_survive_a_round_trip() {
        let mut m = IdMap::new();
        assert_eq!(m.assign(u64::MAX), 1);
        assert_eq!(m.assign(42), 2);
        assert_eq!(m.assign(u64::MAX), 1);
        let seg = m.unsaved_segment().unwrap();
        let mut back = IdMap::from_segments(&[seg]).unwrap();
        assert_eq!(back.get(u64::MAX), Some(1));
        assert_eq!(back.get(42), Some(2));
        assert_eq!(back.assign(7), 3);
        assert!(back.unsaved_segment().unwrap().num_rows() == 1);
    }
}
