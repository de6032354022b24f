//! The command line's contract on bad input: one error line on stderr naming what failed, exit code 1.

use afb::azure::credential::{DEV_ACCOUNT_KEY, DEV_ACCOUNT_NAME, SasFields};
use afb::emulator::{Emulator, EmulatorConfig};
use base64::Engine as _;
use std::process::Command;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn afb(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_afb"));
    cmd.args(args).env_remove("AZURE_STORAGE_CONNECTION_STRING").env_remove("AFB_SAS_URL");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("afb runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Exit code 1 and exactly one stderr line, `afb: error: ...`, containing every one of `needles`.
fn assert_one_error_line(run: &Run, needles: &[&str]) {
    assert_eq!(run.code, 1, "exit code; stderr: {}", run.stderr);
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one error line, got: {:?}", run.stderr);
    assert!(lines[0].starts_with("afb: error: "), "{}", lines[0]);
    for n in needles {
        assert!(lines[0].contains(n), "error line {:?} should name {n:?}", lines[0]);
    }
}

fn start(dir: &tempfile::TempDir) -> Emulator {
    Emulator::start(EmulatorConfig { addr: "127.0.0.1:0".parse().unwrap(), data: dir.path().to_path_buf(), faults: Default::default() })
        .expect("emulator starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gives_one_clear_error_line() {
    let dir = tempfile::tempdir().unwrap();
    let emulator = start(&dir);
    let conn = emulator.connection_string();
    let addr = emulator.addr().to_string();

    let (run_missing, run_wrong_key, run_bad_name, run_expired, run_no_source, run_bad_conn, run_ok) = tokio::task::spawn_blocking(move || {
        let missing = afb(&["ls", "--share", "nosuchshare"], &[("AZURE_STORAGE_CONNECTION_STRING", &conn)]);
        let other_key = base64::engine::general_purpose::STANDARD.encode([7u8; 64]);
        let wrong = conn.replace(DEV_ACCOUNT_KEY, &other_key);
        let wrong_key = afb(&["ls", "--share", "anything", "--connection-string", &wrong], &[]);
        let bad_name = afb(&["gen", "--share", "Bad_Name", "--files", "1"], &[("AZURE_STORAGE_CONNECTION_STRING", &conn)]);
        let key = base64::engine::general_purpose::STANDARD.decode(DEV_ACCOUNT_KEY).unwrap();
        let expired = SasFields {
            version: "2025-11-05".into(),
            permissions: "rl".into(),
            services: "f".into(),
            resource_types: "sco".into(),
            expiry: "2020-01-01T00:00:00Z".into(),
            ..Default::default()
        }
        .sign_account(DEV_ACCOUNT_NAME, &key);
        let sas_url = format!("http://{addr}/{DEV_ACCOUNT_NAME}/demo?{expired}");
        let expired = afb(&["ls", "--sas-url", &sas_url], &[]);
        let no_source = afb(&["ls", "--share", "x"], &[]);
        let bad_conn = afb(&["ls", "--share", "x", "--connection-string", "AccountName=a;AccountKey=%%%"], &[]);
        let ok = afb(&["gen", "--share", "fine", "--files", "3", "--now", "1790000000", "--json"], &[("AZURE_STORAGE_CONNECTION_STRING", &conn)]);
        (missing, wrong_key, bad_name, expired, no_source, bad_conn, ok)
    })
    .await
    .unwrap();

    assert_one_error_line(&run_missing, &["nosuchshare", "ShareNotFound"]);
    assert_one_error_line(&run_wrong_key, &["anything", "AuthenticationFailed"]);
    assert_one_error_line(&run_bad_name, &["Bad_Name", "InvalidResourceName"]);
    assert_one_error_line(&run_expired, &["demo", "AuthenticationFailed"]);
    assert_one_error_line(&run_no_source, &["AZURE_STORAGE_CONNECTION_STRING"]);
    assert_one_error_line(&run_bad_conn, &["connection string", "base64"]);
    assert_eq!(run_ok.code, 0, "{}", run_ok.stderr);
    let summary: serde_json::Value = serde_json::from_str(run_ok.stdout.trim()).expect("gen --json prints JSON");
    assert_eq!(summary["summary"]["files"], 3);

    // The generated files carry their planned last-write times (Put Range alone would make them "now").
    let mut spec = afb::generate::plan::ShareSpec::sample();
    spec.files = 3;
    let planned = afb::generate::plan::plan(&spec, 1, 1_790_000_000);
    let share = afb::azure::FileServiceClient::from_connection_string(&emulator.connection_string()).unwrap().share("fine");
    for e in planned.iter().filter(|e| e.kind == afb::generate::plan::EntryKind::File) {
        let props = share.file(&e.path).properties().await.unwrap();
        assert_eq!(props.last_write_time.map(|t| t.unix_timestamp()), Some(e.mtime_unix), "{}", e.path);
        assert_eq!(props.content_length, e.size, "{}", e.path);
    }
    emulator.shutdown().await;
}
