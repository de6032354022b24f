//! The command line's contract on bad input: one error line on stderr naming what failed, exit code 1.

use afb::azure::credential::{DEV_ACCOUNT_KEY, DEV_ACCOUNT_NAME, SasFields};
use afb::emulator::Emulator;
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
    crate::support::emulator(dir.path(), Default::default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gives_one_clear_error_line() {
    let dir = tempfile::tempdir().unwrap();
    let emulator = start(&dir);
    let conn = emulator.connection_string();
    let addr = emulator.addr().to_string();

    let (run_missing, run_wrong_key, run_bad_name, run_expired, run_no_source, run_bad_conn, run_ok) =
        tokio::task::spawn_blocking(move || {
            let missing = afb(&["ls", "--share", "nosuchshare"], &[("AZURE_STORAGE_CONNECTION_STRING", &conn)]);
            let other_key = base64::engine::general_purpose::STANDARD.encode([7u8; 64]);
            let wrong = conn.replace(DEV_ACCOUNT_KEY, &other_key);
            let wrong_key = afb(&["ls", "--share", "anything", "--connection-string", &wrong], &[]);
            let bad_name =
                afb(&["gen", "--share", "Bad_Name", "--files", "1"], &[("AZURE_STORAGE_CONNECTION_STRING", &conn)]);
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
            let ok = afb(
                &["gen", "--share", "fine", "--files", "3", "--now", "1790000000", "--json"],
                &[("AZURE_STORAGE_CONNECTION_STRING", &conn)],
            );
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
    let share =
        afb::azure::FileServiceClient::from_connection_string(&emulator.connection_string()).unwrap().share("fine");
    for e in planned.iter().filter(|e| e.kind == afb::generate::plan::EntryKind::File) {
        let props = share.file(&e.path).properties().await.unwrap();
        assert_eq!(props.last_write_time.map(|t| t.unix_timestamp()), Some(e.mtime_unix), "{}", e.path);
        assert_eq!(props.content_length, e.size, "{}", e.path);
    }
    emulator.shutdown().await;
}

/// The first number after `prefix` in `text`.
fn number_after(text: &str, prefix: &str) -> u64 {
    let i = text.find(prefix).unwrap_or_else(|| panic!("{prefix:?} not in:\n{text}")) + prefix.len();
    text[i..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect::<String>()
        .parse()
        .unwrap_or_else(|_| panic!("no number after {prefix:?} in:\n{text}"))
}

/// The number just before `suffix` in `text`.
fn number_before(text: &str, suffix: &str) -> u64 {
    let i = text.find(suffix).unwrap_or_else(|| panic!("{suffix:?} not in:\n{text}"));
    let digits: String =
        text[..i].chars().rev().take_while(|c| c.is_ascii_digit()).collect::<Vec<_>>().into_iter().rev().collect();
    digits.parse().unwrap_or_else(|_| panic!("no number before {suffix:?} in:\n{text}"))
}

/// `afb demo --no-serve` runs the whole pipeline with the product's jobs and ends: a backup, a verify
/// with no problems, a restore identical to the share; the repository it leaves holds that backup.
#[tokio::test]
async fn demo_backs_up_verifies_and_restores_identically_then_ends() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("demo");
    let run = afb(&["demo", "--no-serve", "--data", data.to_str().unwrap(), "--files", "120"], &[]);
    assert_eq!(run.code, 0, "stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
    let out = &run.stdout;
    assert!(!out.contains("dashboard at"), "--no-serve serves nothing:\n{out}");
    let backup_id = out
        .split("backup snapshot ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("no backup snapshot in:\n{out}"))
        .to_string();
    assert!(!backup_id.is_empty());
    let backed_up = number_before(out, " files backed up (");
    assert!(out.contains(": 0 problems, in "), "a clean verify:\n{out}");
    assert!(
        number_after(out, "verified it with job #2: ") > 0 && number_after(out, "objects and ") > 0,
        "the verify read the data back:\n{out}"
    );
    let restored = number_after(out, "identical to the share: ");
    assert_eq!(restored, backed_up, "every file backed up is restored and compared:\n{out}");
    assert_eq!(number_after(out, "with job #3: "), restored, "the restore job wrote every file:\n{out}");

    // The repository holds the backup snapshot the demo named, readable with the key it made.
    let target = afb::backup::cli::RepoTarget {
        repo: data.join("repo").to_str().unwrap().to_string(),
        tenant: "demo".into(),
        share: "demo".into(),
        master_key_file: Some(data.join("master.key")),
    };
    let repo = target.open().await.expect("the demo's repository opens with its master key");
    assert_eq!(repo.list_snapshots().await.unwrap(), vec![backup_id.clone()]);
    // The restore directory holds the files the demo compared.
    let mut files = 0u64;
    let mut stack = vec![data.join("restore")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(d).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() { stack.push(e.path()) } else { files += 1 }
        }
    }
    assert_eq!(files, restored);

    // A second demo in the same directory starts over; a directory of someone else's files is refused.
    let again = afb(&["demo", "--no-serve", "--data", data.to_str().unwrap(), "--files", "120"], &[]);
    assert_eq!(
        again.code, 0,
        "a second demo with the same --data:\nstdout:\n{}\nstderr:\n{}",
        again.stdout, again.stderr
    );
    let foreign = dir.path().join("mine");
    std::fs::create_dir_all(&foreign).unwrap();
    std::fs::write(foreign.join("thesis.txt"), "keep me").unwrap();
    let refused = afb(&["demo", "--no-serve", "--data", foreign.to_str().unwrap()], &[]);
    assert_eq!(refused.code, 1, "stderr:\n{}", refused.stderr);
    assert_one_error_line(&refused, &["--data", "not empty"]);
    assert_eq!(std::fs::read_to_string(foreign.join("thesis.txt")).unwrap(), "keep me");
}

/// `afb demo` serves the dashboard after the pipeline: it prints one line with the URL and a token, the
/// overview answers with the demo share, and SIGTERM stops it. A taken `--port` falls back to a free one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_serves_the_dashboard_until_sigterm() {
    use std::io::BufRead as _;
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let mut child = Command::new(env!("CARGO_BIN_EXE_afb"))
        .args(["demo", "--data", dir.path().join("demo").to_str().unwrap(), "--files", "60", "--port", &port])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    let dashboard = loop {
        match rx.recv_timeout(std::time::Duration::from_secs(300)) {
            Ok(l) if l.contains("dashboard at ") => break l,
            Ok(l) => lines.push(l),
            Err(e) => {
                let _ = child.kill();
                panic!("no dashboard line ({e}); output so far:\n{}", lines.join("\n"));
            }
        }
    };
    assert!(
        lines.iter().any(|l| l.contains(&format!("port {port} is in use"))),
        "the fallback is reported:\n{}",
        lines.join("\n")
    );
    // `13. dashboard at http://127.0.0.1:PORT/ — log in with token afb_...; Ctrl-C stops`
    let url = dashboard.split("dashboard at ").nth(1).unwrap().split_whitespace().next().unwrap().to_string();
    let token = dashboard.split("log in with token ").nth(1).unwrap().trim_end_matches("; Ctrl-C stops").to_string();
    assert!(url.starts_with("http://127.0.0.1:") && !url.ends_with(&format!(":{port}/")), "{dashboard}");
    assert!(token.starts_with("afb_") && token.len() == 68, "{dashboard}");

    let c = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let r = c.get(format!("{url}api/v1/tenants/demo/shares")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let v: serde_json::Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(v["shares"][0]["share_id"], "demo", "{v}");
    assert_eq!(v["shares"][0]["snapshots"], 3, "two scans and the backup's: {v}");
    // The login form's CSRF token comes with the form (and as a cookie).
    let r = c.get(format!("{url}login")).send().await.unwrap();
    let login_cookie = r.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string();
    let form = r.text().await.unwrap();
    let csrf = form.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
    let r = c
        .post(format!("{url}login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("cookie", login_cookie)
        .body(format!("token={token}&csrf={csrf}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string();
    let r = c.get(&url).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let overview = r.text().await.unwrap();
    assert!(overview.contains("href=\"/t/demo/s/demo\""), "{overview}");
    // The demo's jobs are in the job monitor's list.
    let jobs = c.get(format!("{url}jobs")).header("cookie", &cookie).send().await.unwrap().text().await.unwrap();
    for kind in ["backup", "verify", "restore"] {
        assert!(jobs.contains(&format!("<td>{kind}</td>")), "{kind} job listed: {jobs}");
    }

    // SAFETY: kill(2) with the pid of our own child and a valid signal number.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(std::time::Instant::now() < deadline, "afb demo still running 60 s after SIGTERM");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(0), "afb demo ends cleanly on SIGTERM");
    drop(taken);
}

/// `afb init` creates the repository and a master key file of mode 0600 at the default path, says where
/// they are and what to keep safe, and never overwrites a key; before it, a backup's error points to
/// `afb init`; after it, a backup finds the key without flags.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_makes_a_repository_and_a_private_key_that_backup_finds() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let emulator = start(&dir);
    let conn = emulator.connection_string();
    let home = dir.path().join("home");
    std::fs::create_dir(&home).unwrap();
    let repo = dir.path().join("repo");
    let (repo_s, home_s) = (repo.to_str().unwrap().to_string(), home.to_str().unwrap().to_string());
    let (no_key, first, second, backup, elsewhere) = tokio::task::spawn_blocking(move || {
        // No flag, no AFB_MASTER_KEY, no key at the default path (HOME is empty).
        let env = [("HOME", home_s.as_str()), ("XDG_CONFIG_HOME", ""), ("AFB_MASTER_KEY", "")];
        let generated = afb(&["gen", "--share", "first", "--files", "5", "--connection-string", &conn], &[]);
        assert_eq!(generated.code, 0, "{}", generated.stderr);
        let backup_args =
            ["backup", "--repo", &repo_s, "--tenant", "t1", "--share", "first", "--connection-string", &conn];
        let no_key = afb(&backup_args, &env);
        let first = afb(&["init", "--repo", &repo_s], &env);
        let second = afb(&["init", "--repo", &repo_s], &env);
        let backup = afb(&backup_args, &env);
        let other = format!("{home_s}/keys/other.key");
        let elsewhere = afb(&["init", "--repo", &format!("{repo_s}-2"), "--master-key-file", &other], &env);
        (no_key, first, second, backup, elsewhere)
    })
    .await
    .unwrap();

    assert_one_error_line(&no_key, &["no master key", "afb init --repo"]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    let key_file = home.join(".config/afb/master.key");
    assert!(first.stdout.contains(&format!("created repository {}", repo.display())), "{}", first.stdout);
    assert!(
        first.stdout.contains(&format!("created master key {} (mode 0600)", key_file.display())),
        "{}",
        first.stdout
    );
    assert!(first.stdout.contains("Keep the master key safe"), "{}", first.stdout);
    assert!(first.stdout.contains("afb backup --repo"), "the next step is shown: {}", first.stdout);
    assert!(repo.is_dir());
    let meta = std::fs::metadata(&key_file).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let hex = std::fs::read_to_string(&key_file).unwrap();
    assert!(hex.trim().len() == 64 && hex.trim().chars().all(|c| c.is_ascii_hexdigit()), "{hex:?}");

    assert_one_error_line(&second, &["already exists", "never overwrites"]);
    assert_eq!(std::fs::read_to_string(&key_file).unwrap(), hex, "the key was not replaced");

    assert_eq!(backup.code, 0, "a backup with the key at the default path:\n{}\n{}", backup.stdout, backup.stderr);
    assert!(backup.stdout.contains("files: 5 new"), "{}", backup.stdout);

    assert_eq!(elsewhere.code, 0, "{}", elsewhere.stderr);
    let other = home.join("keys/other.key");
    assert_eq!(std::fs::metadata(&other).unwrap().permissions().mode() & 0o777, 0o600);
    assert!(elsewhere.stdout.contains(&format!("--master-key-file {}", other.display())), "{}", elsewhere.stdout);
    emulator.shutdown().await;
}
