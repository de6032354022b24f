//! Chunking: splitting file content into chunks whose ids decide deduplication.
//!
//! Two strategies, both deterministic functions of the content (and, for fixed blocks, of file offsets):
//! - [`Chunking::Cdc`]: content-defined chunking with FastCDC (the 2020 variant, normalisation level 1,
//!   the `fastcdc` crate's default gear table). Boundaries move with the content, so an insertion
//!   changes only the chunks around it.
//! - [`Chunking::Fixed`]: blocks of `size` bytes at offsets `0, size, 2*size, ...`; the last may be
//!   shorter. An in-place rewrite changes exactly the blocks it touches, and the ranges Azure's List Ranges
//!   reports map to blocks without reading anything else; an insertion changes every later block.
//!
//! [`Chunking::DEFAULT`] is what the backup uses; `docs/repository.md` has the measurements behind it.
//! The chunking of a file is not recorded in the repository format: readers only need the chunk ids and
//! lengths listed in the node's metadata.

use std::ops::Range;

use fastcdc::v2020::FastCDC;

/// How content is cut into chunks. Sizes in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Chunking {
    /// FastCDC with minimum, average (target) and maximum chunk sizes; `min >= 64`, `min <= avg <= max`.
    Cdc { min: u32, avg: u32, max: u32 },
    /// Fixed blocks of `size` bytes aligned to file offsets.
    Fixed { size: u32 },
}

impl Chunking {
    /// The backup's default: FastCDC, 16 KiB minimum, 64 KiB average, 256 KiB maximum. Measured best of
    /// the candidates for edited mixed files and for scattered in-place rewrites, and unlike fixed blocks it
    /// survives insertions (figures in `docs/repository.md`).
    pub const DEFAULT: Chunking = Chunking::Cdc { min: 16 << 10, avg: 64 << 10, max: 256 << 10 };

    /// The largest chunk this strategy makes.
    pub fn max_chunk(&self) -> usize {
        match *self {
            Chunking::Cdc { max, .. } => max as usize,
            Chunking::Fixed { size } => size as usize,
        }
    }

    /// Cuts `data` (a whole file) into consecutive ranges covering it; empty input gives no ranges.
    pub fn split(&self, data: &[u8]) -> Vec<Range<usize>> {
        match *self {
            Chunking::Cdc { min, avg, max } => FastCDC::new(data, min as usize, avg as usize, max as usize)
                .map(|c| c.offset..c.offset + c.length)
                .collect(),
            Chunking::Fixed { size } => {
                (0..data.len()).step_by(size as usize).map(|s| s..(s + size as usize).min(data.len())).collect()
            }
        }
    }
}

/// Streaming chunker: feed content in any split with [`Chunker::push`], then [`Chunker::finish`]; the
/// chunks are the same as [`Chunking::split`] of the whole. Buffers at most `max_chunk` plus one push.
pub struct Chunker {
    chunking: Chunking,
    buf: Vec<u8>,
}

impl Chunker {
    pub fn new(chunking: Chunking) -> Self {
        Self { chunking, buf: Vec::new() }
    }

    /// Adds content and calls `emit` with each chunk that is now final.
    pub fn push_chunks(&mut self, data: &[u8], mut emit: impl FnMut(&[u8])) {
        self.buf.extend_from_slice(data);
        let max = self.chunking.max_chunk();
        let mut start = 0;
        // A cut is final once `max` bytes are available past the previous cut: no cut can depend on more.
        while self.buf.len() - start >= max {
            let len = self.cut(&self.buf[start..]);
            emit(&self.buf[start..start + len]);
            start += len;
        }
        self.buf.drain(..start);
    }

    /// Emits the remaining chunks (the end of the content).
    pub fn finish_chunks(mut self, mut emit: impl FnMut(&[u8])) {
        let mut start = 0;
        while start < self.buf.len() {
            let len = self.cut(&self.buf[start..]);
            emit(&self.buf[start..start + len]);
            start += len;
        }
        self.buf.clear();
    }

    /// Length of the first chunk of `data` (which holds at least `max` bytes, or the end of the content).
    fn cut(&self, data: &[u8]) -> usize {
        match self.chunking {
            Chunking::Fixed { size } => data.len().min(size as usize),
            Chunking::Cdc { min, avg, max } => {
                let cdc = FastCDC::new(data, min as usize, avg as usize, max as usize);
                let (_, end) = cdc.cut(0, data.len());
                end.max(1)
            }
        }
    }
}
