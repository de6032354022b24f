//! The FlatBuffers schema and its checked-in generated code agree, and node versions round trip.

use afb::repository::generated::{KeyValue, NodeKind, NodeVersion};
use afb::repository::metadata::{decode_batch, encode_batch};

#[test]
fn generated_code_matches_the_schema() {
    let root = env!("CARGO_MANIFEST_DIR");
    // planus formats its output with rustfmt, which reads the rustfmt.toml of its working directory's
    // ancestors: run it on a copy of the schema in a directory of its own, with rustfmt's defaults.
    // The schema's relative path (`schema/node_version.fbs`) is written into the generated comments.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("schema")).unwrap();
    std::fs::copy(format!("{root}/schema/node_version.fbs"), dir.path().join("schema/node_version.fbs")).unwrap();
    let out = dir.path().join("node_version.rs");
    let status = std::process::Command::new("planus")
        .current_dir(dir.path())
        .args(["rust", "-o"])
        .arg(&out)
        .arg("schema/node_version.fbs")
        .status();
    match status {
        Ok(s) if s.success() => {}
        _ => {
            eprintln!("skipped: planus-cli 1.3 is not installed (cargo install planus-cli --version 1.3.0)");
            return;
        }
    }
    let want = std::fs::read_to_string(out).unwrap();
    let have = std::fs::read_to_string(format!("{root}/src/repository/generated/node_version.rs")).unwrap();
    assert!(
        want == have,
        "src/repository/generated/node_version.rs is stale: run `planus rust -o src/repository/generated/node_version.rs schema/node_version.fbs`"
    );
}

#[test]
fn node_versions_round_trip_through_flatbuffers() {
    let v = NodeVersion {
        node_id: 7,
        parent_id: 1,
        name: Some("résumé.docx".into()),
        kind: NodeKind::File,
        size: 3,
        attributes: 0x21,
        creation_time_ns: -5,
        last_write_time_ns: i64::MAX,
        change_time_ns: 1,
        metadata: Some(vec![KeyValue { key: Some("k".into()), value: Some("v".into()) }]),
        chunk_ids: Some(vec![9; 32]),
        chunk_lengths: Some(vec![3]),
        xorhash: Some(vec![1; 20]),
        ..Default::default()
    };
    let dir = NodeVersion { node_id: 1, kind: NodeKind::Directory, name: Some("".into()), ..Default::default() };
    let bytes = encode_batch(vec![dir.clone(), v.clone()]);
    assert_eq!(decode_batch("test", &bytes).unwrap(), vec![dir, v]);
    assert!(decode_batch("test", &bytes[..bytes.len() / 2]).is_err());
}
