//! Deterministic pseudo-random bytes (xorshift64), so failures reproduce.

/// The xorshift64 states that follow `state` (which must not be 0), one per step.
pub fn xorshift(state: u64) -> impl Iterator<Item = u64> {
    std::iter::successors(Some(state), |&s| {
        let s = s ^ (s << 13);
        let s = s ^ (s >> 7);
        Some(s ^ (s << 17))
    })
    .skip(1)
}

/// `n` incompressible bytes, like real media.
pub fn noise(n: usize, seed: u64) -> Vec<u8> {
    xorshift(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1).take(n).map(|s| (s >> 24) as u8).collect()
}

/// `n` printable bytes (`'0'..='l'`), compressible like text.
pub fn printable(n: usize, seed: u64) -> Vec<u8> {
    xorshift(seed | 1).take(n).map(|s| (s % 61) as u8 + b'0').collect()
}
