//! QuickXorHash: pinned vectors derived from the independent Python reference in
//! `tests/it/support/quickxorhash.py` (run it to print them again), and streaming equals one-shot.

use afb::hash::quickxor::{QuickXorHash, fold64, quickxor};

fn pattern(n: usize, mul: usize, add: usize) -> Vec<u8> {
    (0..n).map(|i| ((i * mul + add) % 256) as u8).collect()
}

fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

fn vectors() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    vec![
        ("empty", vec![], "0000000000000000000000000000000000000000"),
        ("a", b"a".to_vec(), "6100000000000000000000000100000000000000"),
        ("abc", b"abc".to_vec(), "6110c31800000000000000000300000000000000"),
        ("fox", b"The quick brown fox jumps over the lazy dog".to_vec(), "6cc4a56f2b26c492fa4bbe57c1f31c4193a972be"),
        ("pattern_159", pattern(159, 7, 3), "ee08bb4a84d9311c7981f74e33bb219ff90743a1"),
        ("pattern_160", pattern(160, 7, 3), "ee08bb4a84d9311c7981f74e0cbb219ff907c3aa"),
        ("pattern_161", pattern(161, 7, 3), "8d08bb4a84d9311c7981f74e0dbb219ff907c3aa"),
        ("pattern_1000", pattern(1000, 31, 17), "05483d01aebf757d30cd73121336408da937620f"),
        ("pattern_65537", pattern(65537, 131, 5), "c227a09f879c316f556b2159f5799c28e1a92d81"),
        ("zeros_1000", vec![0; 1000], "000000000000000000000000e803000000000000"),
        ("ff_321", vec![0xff; 321], "ff00000000000000000000004101000000000000"),
    ]
}

#[test]
fn empty_input_hashes_to_twenty_zero_bytes() {
    assert_eq!(quickxor(b""), [0u8; 20]);
    assert_eq!(QuickXorHash::new().digest64(), 0);
}

#[test]
fn digests_match_the_independent_reference_vectors() {
    for (name, data, want) in vectors() {
        assert_eq!(hex(&quickxor(&data)), want, "vector {name}");
    }
}

#[test]
fn streaming_in_arbitrary_splits_equals_one_shot() {
    let data = pattern(10_007, 97, 13);
    let whole = quickxor(&data);
    // Deterministic pseudo-random split sizes, including empty updates and splits across 160-byte periods.
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    for _ in 0..50 {
        let mut h = QuickXorHash::new();
        let mut rest = &data[..];
        while !rest.is_empty() {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let n = (seed % 400) as usize;
            let n = n.min(rest.len());
            h.update(&rest[..n]);
            rest = &rest[n..];
        }
        assert_eq!(h.digest(), whole);
        assert_eq!(h.len(), data.len() as u64);
    }
}

#[test]
fn fold64_xors_the_three_little_endian_words() {
    let d = quickxor(b"The quick brown fox jumps over the lazy dog");
    let a = u64::from_le_bytes(d[0..8].try_into().unwrap());
    let b = u64::from_le_bytes(d[8..16].try_into().unwrap());
    let c = u32::from_le_bytes(d[16..20].try_into().unwrap()) as u64;
    assert_eq!(fold64(&d), a ^ b ^ c);
}

#[test]
fn python_reference_agrees_on_a_random_file_when_python_is_available() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/support/quickxorhash.py");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.bin");
    let data = pattern(300_001, 251, 7);
    std::fs::write(&path, &data).unwrap();
    let out = match std::process::Command::new("python3").arg(script).arg(&path).output() {
        Ok(out) if out.status.success() => out,
        _ => {
            eprintln!("skipped: python3 is not available to run the reference implementation");
            return;
        }
    };
    let line = String::from_utf8(out.stdout).unwrap();
    let b64 = line.split_whitespace().next().unwrap();
    use base64::Engine;
    let want = base64::engine::general_purpose::STANDARD.decode(b64).unwrap();
    assert_eq!(quickxor(&data).to_vec(), want);
}
