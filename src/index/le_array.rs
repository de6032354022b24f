//! Arrays of fixed-width little-endian integers over shared bytes: an owned buffer, or a region of a
//! memory-mapped file (a stored directory summary), read in place without decoding.
//!
//! Reads never panic: [`LeArray::get`] answers `None` past the end, so a reader of bytes from outside
//! (a summary is a repository object) checks each reference where it follows it, not by a pass over
//! every value when the file is opened (which would touch every page of a mapped file).

use std::fmt;
use std::marker::PhantomData;

use bytes::Bytes;

/// An integer stored as `WIDTH` little-endian bytes.
pub trait LeValue: Copy {
    const WIDTH: usize;
    /// From exactly `WIDTH` bytes.
    fn from_le(b: &[u8]) -> Self;
    fn put_le(self, out: &mut Vec<u8>);
}

macro_rules! le_value {
    ($($t:ty),*) => {$(
        impl LeValue for $t {
            const WIDTH: usize = std::mem::size_of::<$t>();
            fn from_le(b: &[u8]) -> Self {
                <$t>::from_le_bytes(b.try_into().expect("WIDTH bytes"))
            }
            fn put_le(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
        }
    )*};
}
le_value!(u32, u64, i64);

/// `len()` values of `T`, little endian, back to back.
#[derive(Clone, PartialEq, Eq)]
pub struct LeArray<T> {
    bytes: Bytes,
    _t: PhantomData<T>,
}

impl<T: LeValue> Default for LeArray<T> {
    fn default() -> Self {
        LeArray { bytes: Bytes::new(), _t: PhantomData }
    }
}

impl<T> fmt::Debug for LeArray<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LeArray({} bytes)", self.bytes.len())
    }
}

impl<T: LeValue> LeArray<T> {
    /// The values in `bytes`; `None` unless its length is a multiple of the width.
    pub fn from_bytes(bytes: Bytes) -> Option<Self> {
        bytes.len().is_multiple_of(T::WIDTH).then_some(LeArray { bytes, _t: PhantomData })
    }

    pub fn from_values(values: impl IntoIterator<Item = T>) -> Self {
        let mut out = Vec::new();
        for v in values {
            v.put_le(&mut out);
        }
        LeArray { bytes: out.into(), _t: PhantomData }
    }

    pub fn len(&self) -> usize {
        self.bytes.len() / T::WIDTH
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Value `i`; `None` past the end.
    pub fn get(&self, i: usize) -> Option<T> {
        let at = i.checked_mul(T::WIDTH)?;
        self.bytes.get(at..at.checked_add(T::WIDTH)?).map(T::from_le)
    }

    pub fn iter(&self) -> impl Iterator<Item = T> + '_ {
        self.bytes.chunks_exact(T::WIDTH).map(T::from_le)
    }

    /// The stored bytes (what [`from_bytes`](Self::from_bytes) takes back).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Binary search of ascending values, as `slice::binary_search`; on values that are not ascending the
    /// answer is unspecified, but it is an index in range (or `Err`).
    pub fn binary_search(&self, x: T) -> Result<usize, usize>
    where
        T: Ord,
    {
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.get(mid).expect("mid < len").cmp(&x) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Ok(mid),
            }
        }
        Err(lo)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_and_reads_past_the_end_are_none() {
        let a = LeArray::from_values([1i64, 5, 9, -3]);
        assert_eq!(a.len(), 4);
        assert_eq!(a.iter().collect::<Vec<_>>(), [1, 5, 9, -3]);
        assert_eq!((a.get(3), a.get(4), a.get(usize::MAX)), (Some(-3), None, None));
        let b = LeArray::<i64>::from_bytes(Bytes::copy_from_slice(a.as_bytes())).unwrap();
        assert_eq!(a, b);
        assert!(LeArray::<u32>::from_bytes(Bytes::from_static(&[1, 2, 3])).is_none());
        let sorted = LeArray::from_values([2u32, 4, 6, 8]);
        assert_eq!(sorted.binary_search(6), Ok(2));
        assert_eq!(sorted.binary_search(5), Err(2));
        assert_eq!(sorted.binary_search(9), Err(4));
    }
}
