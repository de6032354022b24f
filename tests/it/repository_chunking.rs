//! Chunking: stability under insertion and in-place edits, plus the measurements behind the default
//! (`cargo test --test repository_chunking -- --ignored --nocapture` prints the tables in
//! `docs/repository.md`).

use crate::support::bytes::noise;
use std::collections::HashSet;

use afb::generate::plan::{EntryKind, ShareSpec, content, plan};
use afb::repository::chunker::{Chunker, Chunking};

const SMALL_CDC: Chunking = Chunking::Cdc { min: 2 << 10, avg: 8 << 10, max: 32 << 10 };

fn chunk_set(c: Chunking, data: &[u8]) -> Vec<(blake3::Hash, usize)> {
    c.split(data).into_iter().map(|r| (blake3::hash(&data[r.clone()]), r.len())).collect()
}

/// Bytes of `new`'s chunks that `old` does not have.
fn new_bytes(c: Chunking, old: &[u8], new: &[u8]) -> (usize, usize) {
    let known: HashSet<_> = chunk_set(c, old).into_iter().map(|(h, _)| h).collect();
    let fresh: Vec<_> = chunk_set(c, new).into_iter().filter(|(h, _)| !known.contains(h)).collect();
    (fresh.iter().map(|(_, l)| l).sum(), fresh.len())
}

#[test]
fn chunks_cover_the_content_in_order_within_the_size_limits() {
    let data = noise(1 << 20, 1);
    for c in [SMALL_CDC, Chunking::Fixed { size: 10_000 }] {
        let ranges = c.split(&data);
        assert_eq!(ranges.first().unwrap().start, 0);
        assert_eq!(ranges.last().unwrap().end, data.len());
        assert!(ranges.windows(2).all(|w| w[0].end == w[1].start));
        assert!(ranges.iter().all(|r| r.len() <= c.max_chunk()));
    }
    assert!(SMALL_CDC.split(&[]).is_empty());
}

#[test]
fn streaming_chunker_equals_whole_file_split_for_any_push_sizes() {
    let data = noise(500_000, 2);
    for c in [SMALL_CDC, Chunking::Fixed { size: 4096 }] {
        let want: Vec<usize> = c.split(&data).iter().map(|r| r.len()).collect();
        for step in [1_000, 4_096, 33_333, 500_000] {
            let mut got = Vec::new();
            let mut ch = Chunker::new(c);
            for piece in data.chunks(step) {
                ch.push_chunks(piece, |x| got.push(x.len()));
            }
            ch.finish_chunks(|x| got.push(x.len()));
            assert_eq!(got, want, "{c:?} step {step}");
        }
    }
}

#[test]
fn cdc_insertion_changes_only_the_chunks_around_it() {
    let old = noise(4 << 20, 3);
    let mut new = old.clone();
    let at = old.len() / 2 + 1234;
    new.splice(at..at, noise(100, 4));
    let (bytes, chunks) = new_bytes(SMALL_CDC, &old, &new);
    // One or two chunks around the insertion point: at most 2 max-size chunks plus the insertion.
    assert!(chunks <= 3, "{chunks} new chunks");
    assert!(bytes <= 2 * SMALL_CDC.max_chunk() + 100, "{bytes} new bytes");
}

#[test]
fn fixed_blocks_shift_after_an_insertion_but_cdc_does_not() {
    let old = noise(2 << 20, 5);
    let mut new = old.clone();
    new.splice(1000..1000, noise(10, 6));
    let fixed = Chunking::Fixed { size: 8192 };
    let (fixed_bytes, _) = new_bytes(fixed, &old, &new);
    let (cdc_bytes, _) = new_bytes(SMALL_CDC, &old, &new);
    assert!(fixed_bytes > new.len() * 9 / 10, "fixed blocks all change: {fixed_bytes}");
    assert!(cdc_bytes < 100_000, "cdc resynchronises: {cdc_bytes}");
}

#[test]
fn in_place_rewrite_changes_only_the_blocks_it_touches() {
    let old = noise(2 << 20, 7);
    let mut new = old.clone();
    new[40_960..45_056].copy_from_slice(&noise(4096, 8));
    let (bytes, chunks) = new_bytes(Chunking::Fixed { size: 16384 }, &old, &new);
    assert_eq!((bytes, chunks), (16384, 1));
    let (_, chunks) = new_bytes(SMALL_CDC, &old, &new);
    assert!(chunks <= 3, "{chunks}");
}

// ----- measurements (ignored: run on demand) -----

fn configs() -> Vec<(&'static str, Chunking)> {
    vec![
        ("CDC 16K/64K/256K", Chunking::Cdc { min: 16 << 10, avg: 64 << 10, max: 256 << 10 }),
        ("CDC 64K/256K/1M", Chunking::Cdc { min: 64 << 10, avg: 256 << 10, max: 1 << 20 }),
        ("CDC 128K/512K/2M", Chunking::Cdc { min: 128 << 10, avg: 512 << 10, max: 2 << 20 }),
        ("CDC 256K/1M/4M", Chunking::Cdc { min: 256 << 10, avg: 1 << 20, max: 4 << 20 }),
        ("Fixed 64K", Chunking::Fixed { size: 64 << 10 }),
        ("Fixed 256K", Chunking::Fixed { size: 256 << 10 }),
        ("Fixed 1M", Chunking::Fixed { size: 1 << 20 }),
    ]
}

fn rng(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

/// A generated share (the sample spec, 3,000 files) and a second version with 10% of files edited:
/// a third get 100 bytes inserted, a third a 4 KiB-aligned range rewritten, a third 1 KiB appended.
fn mixed_versions() -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let mut spec = ShareSpec::sample();
    spec.files = 3000;
    let entries = plan(&spec, 42, 1_700_000_000);
    let v1: Vec<Vec<u8>> =
        entries.iter().filter(|e| e.kind == EntryKind::File).map(|e| content(e.content_seed, e.size)).collect();
    let mut seed = 99u64;
    let v2 = v1
        .iter()
        .map(|f| {
            let mut f = f.clone();
            if f.len() > 8192 && rng(&mut seed).is_multiple_of(10) {
                match rng(&mut seed) % 3 {
                    0 => {
                        let at = (rng(&mut seed) as usize) % f.len();
                        f.splice(at..at, noise(100, rng(&mut seed)));
                    }
                    1 => {
                        let at = (rng(&mut seed) as usize % (f.len() / 4096)) * 4096;
                        let end = (at + 4096).min(f.len());
                        f[at..end].copy_from_slice(&noise(end - at, rng(&mut seed)));
                    }
                    _ => f.extend_from_slice(&noise(1024, rng(&mut seed))),
                }
            }
            f
        })
        .collect();
    (v1, v2)
}

#[test]
#[ignore]
fn measure_chunking_strategies() {
    let (v1, v2) = mixed_versions();
    let total: usize = v1.iter().map(Vec::len).sum();
    println!(
        "\n(a) mixed generated files: {} files, {:.1} MiB; v2 edits 10% of files larger than 8 KiB",
        v1.len(),
        total as f64 / 1048576.0
    );
    println!(
        "| chunking | chunks v1 | unique bytes v1 | zstd-3 of unique chunks | new bytes for v2 | new chunks for v2 |"
    );
    println!("| --- | --- | --- | --- | --- | --- |");
    for (name, c) in configs() {
        let mut seen = HashSet::new();
        let (mut chunks, mut unique, mut zbytes) = (0, 0usize, 0usize);
        for f in &v1 {
            for r in c.split(f) {
                chunks += 1;
                if seen.insert(blake3::hash(&f[r.clone()])) {
                    unique += r.len();
                    zbytes += zstd::bulk::compress(&f[r.clone()], 3).unwrap().len().min(r.len());
                }
            }
        }
        let (mut nb, mut nc) = (0usize, 0usize);
        for f in &v2 {
            for r in c.split(f) {
                if seen.insert(blake3::hash(&f[r.clone()])) {
                    nb += r.len();
                    nc += 1;
                }
            }
        }
        println!(
            "| {name} | {chunks} | {:.1} MiB | {:.1} MiB ({:.2}x) | {:.2} MiB | {nc} |",
            unique as f64 / 1048576.0,
            zbytes as f64 / 1048576.0,
            unique as f64 / zbytes as f64,
            nb as f64 / 1048576.0
        );
    }

    let size = 256usize << 20;
    let old = content(7, size as u64);
    let mut rewritten = old.clone();
    let blocks = size / 4096;
    let mut seed = 12345u64;
    for _ in 0..blocks / 100 {
        let b = rng(&mut seed) as usize % blocks;
        rewritten[b * 4096..(b + 1) * 4096].copy_from_slice(&noise(4096, rng(&mut seed)));
    }
    let mut inserted = old.clone();
    inserted.splice(size / 3..size / 3, noise(100, 1));
    println!(
        "\n(b) one {} MiB file: 1% of its 4 KiB blocks rewritten in place ({} blocks), or 100 bytes inserted at 1/3",
        size >> 20,
        blocks / 100
    );
    println!("| chunking | chunks | new bytes, 1% rewritten | new bytes, insertion |");
    println!("| --- | --- | --- | --- |");
    for (name, c) in configs() {
        let chunks = c.split(&old).len();
        let (rb, _) = new_bytes(c, &old, &rewritten);
        let (ib, _) = new_bytes(c, &old, &inserted);
        println!(
            "| {name} | {chunks} | {:.1} MiB ({:.0}%) | {:.2} MiB |",
            rb as f64 / 1048576.0,
            100.0 * rb as f64 / size as f64,
            ib as f64 / 1048576.0
        );
    }
}

#[test]
#[ignore]
fn measure_bundle_threshold() {
    use afb::repository::bundle::BundleBuilder;
    use afb::repository::keys::TenantKey;
    use afb::repository::pack::PackWriter;
    let mut spec = ShareSpec::sample();
    spec.files = 20_000;
    let entries = plan(&spec, 42, 1_700_000_000);
    let files: Vec<_> = entries.iter().filter(|e| e.kind == EntryKind::File).collect();
    let total_bytes: u64 = files.iter().map(|e| e.size).sum();
    println!("\nbundle threshold, sample spec with {} files, {:.0} MiB", files.len(), total_bytes as f64 / 1048576.0);
    println!(
        "| threshold | files bundled | bytes bundled | index entries avoided | bundles of 4 MiB | mean bundle / mean member |"
    );
    println!("| --- | --- | --- | --- | --- | --- |");
    for t in [16u64 << 10, 64 << 10, 256 << 10, 1 << 20] {
        let small: Vec<_> = files.iter().filter(|e| e.size <= t).collect();
        let bytes: u64 = small.iter().map(|e| e.size).sum();
        let bundles = (bytes as f64 / (4u64 << 20) as f64).ceil();
        let mean_member = bytes as f64 / small.len() as f64;
        let mean_bundle = bytes as f64 / bundles;
        println!(
            "| {} KiB | {:.0}% | {:.1}% | {} | {} | {:.0}x |",
            t >> 10,
            100.0 * small.len() as f64 / files.len() as f64,
            100.0 * bytes as f64 / total_bytes as f64,
            small.len(),
            bundles,
            mean_bundle / mean_member
        );
    }
    // Stored overhead of the two small-file paths for the same 1,000 files of at most 64 KiB.
    let key = TenantKey::from_secret("t", &[7; 32]);
    let sample: Vec<Vec<u8>> =
        files.iter().filter(|e| e.size <= 64 << 10).take(1000).map(|e| content(e.content_seed, e.size)).collect();
    let raw: usize = sample.iter().map(Vec::len).sum();
    let mut b = BundleBuilder::new();
    sample.iter().for_each(|f| {
        b.add(&key, f);
    });
    let tar_len = b.size();
    let (_, bundle, _) = b.finish(&key);
    let mut p = PackWriter::new(usize::MAX);
    for f in &sample {
        p.add(&key, key.chunk_id(f), f);
    }
    let (_, pack, _) = p.finish(&key);
    println!(
        "\n1,000 files <= 64 KiB, {:.2} MiB raw: TAR {:.2} MiB, bundle object (zstd whole TAR) {:.2} MiB; pack (zstd per blob) {:.2} MiB + {} KiB of index entries",
        raw as f64 / 1048576.0,
        tar_len as f64 / 1048576.0,
        bundle.len() as f64 / 1048576.0,
        pack.len() as f64 / 1048576.0,
        1000 * 77 / 1024
    );
}
