//! Synthetic share generator (filled in later).
