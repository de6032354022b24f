//! `afb serve` end to end in-process: a repository built with the index's snapshot writer (a synthetic
//! share for tenant `acme`, a small hand-made share with hostile names for tenant `beta`), the server on
//! 127.0.0.1:0, and every route checked through HTTP: data, errors, auth, tenant isolation, the dashboard.

use std::time::Duration;

use crate::support::nodes::synthetic_history;

use afb::api::auth::{Auth, Scope, issue_token, issue_token_pg, token_file};
use afb::api::routes::ROUTES;
use afb::api::sample::sample_node as node;
use afb::index::NodeIndex;
use afb::index::node::{Node, NodeKind, nodes_to_batch};
use afb::index::snapshot::WriteOptions;
use afb::index::synthetic::Mutation;
use serde_json::Value;

struct Fixture {
    _db: Option<afb::jobs::bench::Scratch>,
    _dir: tempfile::TempDir,
    base: String,
    acme: String,
    beta: String,
    operator: String,
    expired: String,
    client: reqwest::Client,
    /// The server's `--restore-root`.
    restore_root: std::path::PathBuf,
}

/// The master key the fixture's server seals share secrets with.
fn master_key() -> afb::repository::MasterKey {
    afb::repository::MasterKey::from_hex(&"22".repeat(32)).unwrap()
}

/// What the fixture's `afb serve` is started with: a master key, `--restore-root {dir}/restore-root`,
/// `--allow-endpoint files.internal:8443`.
fn options(dir: &std::path::Path) -> afb::api::ServeOptions {
    afb::api::ServeOptions {
        master_key: Some(master_key()),
        restore_root: Some(dir.join("restore-root")),
        allow_endpoints: vec!["files.internal:8443".into()],
        secure_cookies: false,
    }
}

/// Serves the app as `afb serve` does (with the client's address, which the failure limiter uses).
async fn serve(listener: tokio::net::TcpListener, st: afb::api::SharedState) {
    axum::serve(listener, afb::server::app(st).into_make_service_with_connect_info::<std::net::SocketAddr>())
        .await
        .unwrap()
}

const SECRET_KEY: &str = "c2VjcmV0a2V5c2VjcmV0a2V5c2VjcmV0a2V5";

async fn write_nodes(repo: &NodeIndex, t: &str, s: &str, nodes: &[Node]) {
    let mut w = repo.begin(t, s, WriteOptions::default()).await.unwrap();
    w.write(&nodes_to_batch(nodes)).await.unwrap();
    w.commit(None).await.unwrap();
}

async fn fixture() -> Fixture {
    fixture_with(None, false).await
}

/// The server tests use for PostgreSQL; override with AFB_TEST_DATABASE_URL.
fn pg_server_url() -> String {
    std::env::var("AFB_TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// With `pg`: tokens in PostgreSQL table `api_tokens` and jobs in the PostgreSQL queue of a scratch
/// database (dropped by the test's end, see `drop_db`); else tokens in `.afb/` and the memory queue.
/// No runner either way: jobs stay queued, so their state is the API's doing alone.
/// With `runner`: the embedded runner with the data handlers (and the master key) runs the jobs.
async fn fixture_with(pg: Option<afb::jobs::bench::Scratch>, runner: bool) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let repo = NodeIndex::open(dir.path().to_str().unwrap()).unwrap();
    // acme/files: synthetic, base + 2 deltas.
    synthetic_history(&repo, "acme", "files", 3000, Mutation { dir_renames: 3, added: 0.05, ..Default::default() })
        .await;
    // beta/docs: hostile names, two snapshots.
    let mut v1 = vec![
        node(1, 0, "<script>", NodeKind::Dir, 0),
        node(2, 1, "<script>alert(1).txt", NodeKind::File, 10),
        node(3, 0, "a&b \"q\".txt", NodeKind::File, 20),
    ];
    write_nodes(&repo, "beta", "docs", &v1).await;
    v1.push(node(4, 1, "new.txt", NodeKind::File, 5));
    write_nodes(&repo, "beta", "docs", &v1).await;

    let operator = "op-token-for-tests-0123456789abcdef".to_string();
    let repo_dir = dir.path().to_str().unwrap();
    let (acme, beta, expired, st) = match &pg {
        None => {
            let tf = token_file(dir.path());
            let acme = issue_token(&tf, &Scope::Tenant("acme".into()), None, None).unwrap();
            let beta = issue_token(&tf, &Scope::Tenant("beta".into()), None, None).unwrap();
            let expired = issue_token(&tf, &Scope::Tenant("acme".into()), Some(Duration::ZERO), None).unwrap();
            let auth = Auth::new(tf, Some(&operator));
            let handlers = runner.then(|| afb::api::jobs::job_handlers(repo_dir, Some(master_key())).unwrap());
            let jobs = afb::api::jobs::Jobs::memory(handlers);
            (acme, beta, expired, afb::api::state_with(repo_dir, auth, jobs, options(dir.path())).unwrap())
        }
        Some(db) => {
            afb::jobs::migrate::migrate_url(&db.url).await.unwrap();
            let (c, conn) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls).await.unwrap();
            tokio::spawn(conn);
            let acme =
                issue_token_pg(&c, &Scope::Tenant("acme".into()), Some(Duration::from_secs(3600)), None).await.unwrap();
            let beta = issue_token_pg(&c, &Scope::Tenant("beta".into()), None, Some("beta".into())).await.unwrap();
            let expired = issue_token_pg(&c, &Scope::Tenant("acme".into()), Some(Duration::ZERO), None).await.unwrap();
            let auth = Auth::postgres(afb::jobs::postgres::pool(&db.url, 2).unwrap(), Some(&operator));
            let jobs = afb::api::jobs::Jobs::postgres(&db.url, None).await.unwrap();
            (acme, beta, expired, afb::api::state_with(repo_dir, auth, jobs, options(dir.path())).unwrap())
        }
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { serve(listener, st).await });
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let restore_root = dir.path().join("restore-root");
    Fixture { _db: pg, _dir: dir, base, acme, beta, operator, expired, client, restore_root }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Some(db) = self._db.take() {
            // Drop runs inside the test's runtime: do the async work on a thread of its own.
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                rt.block_on(db.drop_db()).expect("dropping the scratch database");
            })
            .join()
            .unwrap();
        }
    }
}

impl Fixture {
    async fn post_json(&self, path: &str, token: &str, body: &str) -> (u16, String) {
        self.req("POST", path, Some(token), Some(("application/json", body.as_bytes().to_vec()))).await
    }

    async fn req(&self, method: &str, path: &str, token: Option<&str>, body: Option<(&str, Vec<u8>)>) -> (u16, String) {
        let mut r = self.client.request(method.parse().unwrap(), format!("{}{path}", self.base));
        if let Some(t) = token {
            r = r.header("authorization", format!("Bearer {t}"));
        }
        if let Some((ct, b)) = body {
            r = r.header("content-type", ct).body(b);
        }
        let resp = r.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.text().await.unwrap())
    }

    async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        let (s, b) = self.req("GET", path, Some(token), None).await;
        (s, serde_json::from_str(&b).unwrap_or_else(|e| panic!("GET {path}: {s} not JSON ({e}): {b}")))
    }

    async fn ok(&self, path: &str, token: &str) -> Value {
        let (s, v) = self.get(path, token).await;
        assert_eq!(s, 200, "GET {path}: {v}");
        v
    }

    /// Queues a restore of acme's share `files` (to `r`) through the API; its job id.
    async fn queue_acme_restore(&self) -> i64 {
        let (s, b) = self
            .post_json(
                "/api/v1/tenants/acme/shares/files/jobs",
                &self.acme,
                r#"{"kind": "restore", "target": {"kind": "local", "path": "r"}}"#,
            )
            .await;
        assert_eq!(s, 202, "{b}");
        serde_json::from_str::<Value>(&b).unwrap()["job_id"].as_i64().unwrap()
    }
}

fn error_code(body: &str) -> String {
    let v: Value = serde_json::from_str(body).unwrap_or_else(|_| panic!("error body is not JSON: {body}"));
    assert!(v["error"]["message"].is_string(), "no error.message in {body}");
    v["error"]["code"].as_str().unwrap_or_else(|| panic!("no error.code in {body}")).to_string()
}

#[tokio::test]
async fn tenants_shares_snapshots_and_trends() {
    let f = fixture().await;
    let v = f.ok("/api/v1/tenants", &f.operator).await;
    let names: Vec<&str> = v["tenants"].as_array().unwrap().iter().map(|t| t["tenant_id"].as_str().unwrap()).collect();
    assert_eq!(names, ["acme", "beta"]);
    let v = f.ok("/api/v1/tenants", &f.acme).await;
    assert_eq!(v["tenants"].as_array().unwrap().len(), 1);
    assert_eq!(v["tenants"][0]["tenant_id"], "acme");

    let v = f.ok("/api/v1/tenants/acme/shares", &f.acme).await;
    assert_eq!(v["shares"][0]["share_id"], "files");
    assert_eq!(v["shares"][0]["snapshots"], 3);
    let v = f.ok("/api/v1/tenants/acme/shares/files/snapshots", &f.acme).await;
    assert_eq!(v["snapshots"].as_array().unwrap().len(), 3);
    assert_eq!(v["snapshots"][1]["kind"], "delta");
    let v = f.ok("/api/v1/tenants/acme/shares/files/snapshots/2", &f.acme).await;
    assert_eq!(v["snapshot_id"], 2);

    let t = f.ok("/api/v1/tenants/acme/shares/files/trends", &f.acme).await;
    let pts = t["points"].as_array().unwrap();
    assert_eq!(pts.len(), 3);
    assert!(pts[0]["added"].is_null());
    // The trend's change counts agree with a full diff.
    let d = f.ok("/api/v1/tenants/acme/shares/files/diff?from=1&to=2&limit=0", &f.acme).await;
    assert_eq!(pts[1]["added"], d["summary"]["added"]["count"]);
    assert_eq!(pts[1]["deleted"], d["summary"]["deleted"]["count"]);
    assert_eq!(pts[1]["modified"], d["summary"]["changed"]["count"]);
    assert!(pts[1]["added"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn browse_paginates_with_a_cursor_and_totals_add_up() {
    let f = fixture().await;
    let root = f.ok("/api/v1/tenants/acme/shares/files/snapshots/1/browse", &f.acme).await;
    let n = root["entry_count"].as_u64().unwrap() as usize;
    assert!(n >= 3, "{root}");
    let sum: u64 = root["entries"].as_array().unwrap().iter().map(|e| e["size"].as_u64().unwrap()).sum();
    assert_eq!(
        sum,
        root["totals"]["bytes"].as_u64().unwrap(),
        "subtree totals of the root's entries add up to the share"
    );
    // Walk in pages of 2.
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let v = f
            .ok(
                &format!("/api/v1/tenants/acme/shares/files/snapshots/1/browse?path=/&limit=2&cursor={cursor}"),
                &f.acme,
            )
            .await;
        seen.extend(v["entries"].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap().to_string()));
        match v["next_cursor"].as_str() {
            Some(c) => cursor = c.to_string(),
            None => break,
        }
    }
    let all: Vec<String> =
        root["entries"].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap().to_string()).collect();
    assert_eq!(seen, all);
    // The count (taken from the directory summary) is what the pages hold, across subdirectories and files.
    assert_eq!(all.len(), n, "{root}");
    let kinds: std::collections::HashSet<&str> =
        root["entries"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds.len(), 2, "the root holds directories and files: {root}");
    // Into a subdirectory.
    let dir = root["entries"].as_array().unwrap().iter().find(|e| e["kind"] == "dir").expect("a directory at the root");
    let name = dir["name"].as_str().unwrap();
    let path = format!("/{name}");
    let enc: String = percent_encoding::utf8_percent_encode(&path, percent_encoding::NON_ALPHANUMERIC).to_string();
    let sub = f.ok(&format!("/api/v1/tenants/acme/shares/files/snapshots/1/browse?path={enc}"), &f.acme).await;
    assert_eq!(sub["path"], path);
    assert_eq!(sub["totals"]["bytes"], dir["size"]);

    // Search.
    let v = f.ok("/api/v1/tenants/acme/shares/files/snapshots/1/search?glob=*&limit=5", &f.acme).await;
    assert_eq!(v["results"].as_array().unwrap().len(), 5);
    assert_eq!(v["truncated"], true);
    let v = f.ok("/api/v1/tenants/beta/shares/docs/snapshots/1/search?glob=/%3Cscript%3E/*", &f.beta).await;
    assert_eq!(v["results"][0]["path"], "/<script>/<script>alert(1).txt");
}

#[tokio::test]
async fn diff_lists_changes_with_paths() {
    let f = fixture().await;
    let v = f.ok("/api/v1/tenants/beta/shares/docs/diff?from=1&to=2", &f.beta).await;
    assert_eq!(v["summary"]["added"]["count"], 1);
    assert_eq!(v["changes"][0]["path"], "/<script>/new.txt");
    assert_eq!(v["changes"][0]["change"], "added");
    let v = f.ok("/api/v1/tenants/acme/shares/files/diff?from=1&to=3&limit=10", &f.acme).await;
    assert_eq!(v["changes"].as_array().unwrap().len(), 10);
    assert_eq!(v["truncated"], true);
}

#[tokio::test]
async fn bad_input_gets_clear_json_errors() {
    let f = fixture().await;
    let cases: &[(&str, u16, &str)] = &[
        ("/api/v1/tenants/nobody", 404, "not_found"),
        ("/api/v1/tenants/acme/shares/nope/snapshots", 404, "not_found"),
        ("/api/v1/tenants/acme/shares/files/snapshots/999", 404, "not_found"),
        ("/api/v1/tenants/acme/shares/files/snapshots/abc", 400, "bad_request"),
        ("/api/v1/tenants/acme/shares/files/snapshots/1/browse?path=/no/such/dir", 404, "not_found"),
        ("/api/v1/tenants/acme/shares/files/snapshots/1/browse?cursor=zz", 400, "bad_request"),
        ("/api/v1/tenants/acme/shares/files/snapshots/1/browse?limit=0", 400, "bad_request"),
        ("/api/v1/tenants/acme/shares/files/snapshots/1/browse?bogus=1", 400, "bad_request"),
        ("/api/v1/tenants/acme/shares/files/snapshots/1/search", 400, "bad_request"),
        ("/api/v1/tenants/acme/shares/files/diff?from=1", 400, "bad_request"),
        ("/api/v1/tenants/acme/shares/files/diff?from=1&to=77", 404, "not_found"),
        ("/api/v1/no/such/route", 404, "not_found"),
    ];
    for (path, status, code) in cases {
        let (s, b) = f.req("GET", path, Some(&f.operator), None).await;
        assert_eq!((s, error_code(&b).as_str()), (*status, *code), "GET {path}: {b}");
    }
    // Bodies.
    let url = "/api/v1/tenants/acme/shares/files/settings";
    let (s, b) = f.req("PUT", url, Some(&f.operator), Some(("application/json", b"{not json".to_vec()))).await;
    assert_eq!((s, error_code(&b).as_str()), (400, "bad_request"), "{b}");
    let (s, b) = f.req("PUT", url, Some(&f.operator), Some(("text/plain", b"{}".to_vec()))).await;
    assert_eq!((s, error_code(&b).as_str()), (415, "unsupported_media_type"), "{b}");
    let big = format!("{{\"connection_string\": \"{}\"}}", "x".repeat(200_000));
    let (s, b) = f.req("PUT", url, Some(&f.operator), Some(("application/json", big.into_bytes()))).await;
    assert_eq!((s, error_code(&b).as_str()), (413, "payload_too_large"), "{b}");
    let (s, b) = f.req("PUT", url, Some(&f.operator), Some(("application/json", br#"{"nope": 1}"#.to_vec()))).await;
    assert_eq!((s, error_code(&b).as_str()), (422, "invalid_body"), "{b}");
    let (s, b) = f
        .req("PUT", url, Some(&f.operator), Some(("application/json", br#"{"connection_string": "garbage"}"#.to_vec())))
        .await;
    assert_eq!((s, error_code(&b).as_str()), (422, "invalid_settings"), "{b}");
    // Nothing changed.
    let v = f.ok("/api/v1/tenants/acme/shares/files", &f.operator).await;
    assert_eq!(v["settings"]["configured"], false);
    let (s, b) = f
        .req(
            "POST",
            "/api/v1/tenants/acme/shares/files/jobs",
            Some(&f.acme),
            Some(("application/json", br#"{"kind": "dance"}"#.to_vec())),
        )
        .await;
    assert_eq!((s, error_code(&b).as_str()), (422, "invalid_body"), "{b}");
}

#[tokio::test]
async fn settings_store_secrets_and_never_echo_them() {
    let f = fixture().await;
    let cs = public_cs("acct1");
    let body = serde_json::to_vec(&serde_json::json!({ "connection_string": cs })).unwrap();
    let url = "/api/v1/tenants/acme/shares/files/settings";
    let (s, b) = f.req("PUT", url, Some(&f.acme), Some(("application/json", body.clone()))).await;
    assert_eq!((s, error_code(&b).as_str()), (403, "forbidden"), "tenant tokens may not set settings");
    let (s, b) = f.req("PUT", url, Some(&f.operator), Some(("application/json", body))).await;
    assert_eq!(s, 200, "{b}");
    assert!(!b.contains(SECRET_KEY), "secret echoed: {b}");
    let (s, b) = f.req("GET", "/api/v1/tenants/acme/shares/files", Some(&f.acme), None).await;
    assert_eq!(s, 200);
    assert!(!b.contains(SECRET_KEY), "secret echoed: {b}");
    let v: Value = serde_json::from_str(&b).unwrap();
    assert_eq!(v["settings"]["configured"], true);
    assert_eq!(v["settings"]["account_name"], "acct1");
}

#[tokio::test]
async fn tokens_are_checked() {
    let f = fixture().await;
    let path = "/api/v1/tenants";
    let (s, b) = f.req("GET", path, None, None).await;
    assert_eq!((s, error_code(&b).as_str()), (401, "unauthorized"));
    let (s, b) = f.req("GET", path, Some("afb_0000"), None).await;
    assert_eq!((s, error_code(&b).as_str()), (401, "unauthorized"));
    let (s, b) = f.req("GET", path, Some(&f.expired), None).await;
    assert_eq!((s, error_code(&b).as_str()), (401, "token_expired"));
    // The token file holds hashes only.
    let file = std::fs::read_to_string(token_file(f._dir.path())).unwrap();
    assert!(!file.contains(&f.acme) && !file.contains(&f.acme[4..]));
}

#[tokio::test]
async fn another_tenants_token_gets_no_data_on_any_route() {
    let f = fixture().await;
    let doc = f.ok("/openapi.json", "unused").await;
    // A job of acme's, so the job routes have something to hide.
    let job = f.queue_acme_restore().await.to_string();
    for d in ROUTES {
        assert!(doc["paths"][d.path][d.method].is_object(), "{} {} missing from /openapi.json", d.method, d.path);
        let path = d
            .path
            .replace("{tenant}", "acme")
            .replace("{share}", "files")
            .replace("{snapshot}", "1")
            .replace("{job}", &job);
        let path = match path.as_str() {
            p if p.ends_with("/diff") => format!("{p}?from=1&to=2"),
            p if p.ends_with("/search") => format!("{p}?glob=*"),
            p => p.to_string(),
        };
        let body = d.body.map(|b| ("application/json", b.as_bytes().to_vec()));
        let before = fingerprint(&f).await;
        let (s, b) = f.req(&d.method.to_uppercase(), &path, Some(&f.beta), body.clone()).await;
        assert_eq!(fingerprint(&f).await, before, "{} {path} with beta's token changed something", d.method);
        if d.path.contains("{tenant}") || d.path.contains("{job}") {
            assert!(s == 404 || s == 403, "{} {path} with beta's token: {s} {b}", d.method);
            error_code(&b);
        } else {
            assert!(!b.contains("acme"), "{} {path} with beta's token leaks: {b}", d.method);
        }
        // The owner gets past the scope check (operator-only routes: 403 for every tenant token).
        let (s, b) = f.req(&d.method.to_uppercase(), &path, Some(&f.acme), body).await;
        if d.operator_only {
            assert_eq!(s, 403, "{} {path} with acme's token: {b}", d.method);
        } else {
            assert!(s != 404 && s != 403, "{} {path} with acme's token: {s} {b}", d.method);
        }
    }
    // beta's refused cancel did not cancel: acme's cancel in the walk did (once).
    let v = f.ok(&format!("/api/v1/jobs/{job}"), &f.acme).await;
    assert_eq!(v["state"], "cancelled", "{v}");
    // Hostile restore targets and sources from a tenant token, on a server whose runner would run
    // whatever they started.
    hostile_inputs_walk(&fixture_with(None, true).await).await;
}

/// Every file below `dir`, sorted.
fn files_below(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p.clone());
            }
            out.push(p);
        }
    }
    out.sort();
    out
}

/// A tenant token's hostile restore targets (absolute, `..`, backslash, NUL; local and share) and share
/// sources (parser bypasses, userinfo, fragments, queries, loopback, metadata and private addresses) on
/// every route that takes them: each refused with a JSON error, nothing stored, no job, no file written
/// (the restore root included), and no connection to a local listener the sources name.
async fn hostile_inputs_walk(f: &Fixture) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((_conn, _)) = listener.accept().await {
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    });
    let before = (fingerprint(f).await, files_below(f._dir.path()));
    let refused = |what: &str, s: u16, b: &str| {
        assert!([400, 403, 404, 409, 422].contains(&s), "{what}: {s} {b}");
        error_code(b);
    };
    let start = "/api/v1/tenants/acme/shares/files/jobs";
    for path in HOSTILE_LOCAL_TARGETS {
        let body = serde_json::json!({"kind": "restore", "target": {"kind": "local", "path": path}}).to_string();
        let (s, b) = f.post_json(start, &f.acme, &body).await;
        refused(&format!("restore to local {path:?}"), s, &b);
    }
    for share in ["../beta", "/etc", "evil", "a\\b", ""] {
        let body = serde_json::json!({"kind": "restore", "target": {"kind": "share", "share": share}}).to_string();
        let (s, b) = f.post_json(start, &f.acme, &body).await;
        refused(&format!("restore to share {share:?}"), s, &b);
    }
    let mut sources: Vec<Value> = hostile_endpoints(port)
        .iter()
        .map(|e| serde_json::json!({"connection_string": cs_for(e)}))
        .chain(hostile_sas_urls(port).iter().map(|u| serde_json::json!({"sas_url": u})))
        .collect();
    for host in ["127.0.0.1", "169.254.169.254", "[::1]", "10.0.0.5", "localhost"] {
        sources
            .push(serde_json::json!({"connection_string": cs_for(&format!("http://{host}:{port}/devstoreaccount1"))}));
    }
    for src in &sources {
        let mut body = src.clone();
        body["share"] = "evil".into();
        let (s, b) = f.post_json("/api/v1/tenants/acme/shares", &f.acme, &body.to_string()).await;
        refused(&format!("register {src}"), s, &b);
        let (s, b) = f
            .req(
                "PUT",
                "/api/v1/tenants/acme/shares/files/settings",
                Some(&f.acme),
                Some(("application/json", src.to_string().into_bytes())),
            )
            .await;
        refused(&format!("settings {src}"), s, &b);
    }
    // Nothing was registered, so nothing can start on it.
    for kind in ["scan", "backup"] {
        let (s, b) =
            f.post_json("/api/v1/tenants/acme/shares/evil/jobs", &f.acme, &format!(r#"{{"kind": "{kind}"}}"#)).await;
        refused(&format!("{kind} of evil"), s, &b);
    }
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!((fingerprint(f).await, files_below(f._dir.path())), before, "a refused request changed something");
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 0, "a refused source got a connection");
}

/// What a refused request must leave alone: stored share settings, the shares with their snapshot counts
/// (registered ones too), and every job with its state.
async fn fingerprint(f: &Fixture) -> (Option<Vec<u8>>, Vec<(String, String, u64)>, Value) {
    let settings = std::fs::read(f._dir.path().join(".afb").join("shares.json")).ok();
    let mut shares = Vec::new();
    for t in f.ok("/api/v1/tenants", &f.operator).await["tenants"].as_array().unwrap() {
        let t = t["tenant_id"].as_str().unwrap();
        for r in f.ok(&format!("/api/v1/tenants/{t}/shares"), &f.operator).await["shares"].as_array().unwrap() {
            shares.push((t.to_string(), r["share_id"].as_str().unwrap().to_string(), r["snapshots"].as_u64().unwrap()));
        }
    }
    (settings, shares, f.ok("/api/v1/jobs", &f.operator).await)
}

/// Start, read, list and cancel jobs through the API; scope checks and bad input on every job route.
async fn jobs_scenario(f: &Fixture) {
    let start = "/api/v1/tenants/acme/shares/files/jobs";
    // Backups need the share's Azure settings.
    let (s, b) = f.post_json(start, &f.acme, r#"{"kind": "backup"}"#).await;
    assert_eq!((s, error_code(&b).as_str()), (409, "share_not_configured"), "{b}");
    let cs = public_cs("acct1");
    let (s, b) = f
        .req(
            "PUT",
            "/api/v1/tenants/acme/shares/files/settings",
            Some(&f.operator),
            Some(("application/json", serde_json::to_vec(&serde_json::json!({"connection_string": cs})).unwrap())),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = f.post_json(start, &f.acme, r#"{"kind": "backup"}"#).await;
    assert_eq!(s, 202, "{b}");
    let backup: Value = serde_json::from_str(&b).unwrap();
    assert!(!b.contains(SECRET_KEY));
    // Exactly the payload contract of jobs::payloads, with the queue's tenant id derived from the name.
    assert_eq!(backup["payload"], serde_json::json!({"tenant": "acme", "share": "files"}));
    assert_eq!(backup["kind"], "backup");
    assert_eq!(backup["state"], "queued");
    let (s, b) = f.post_json(start, &f.acme, r#"{"kind": "restore", "snapshot": "s-1", "path": "/a/b/", "target": {"kind": "local", "path": "srv/r"}, "overwrite": true}"#).await;
    assert_eq!(s, 202, "{b}");
    let restore: Value = serde_json::from_str(&b).unwrap();
    let p: afb::jobs::payloads::RestorePayload = serde_json::from_value(restore["payload"].clone()).unwrap();
    assert_eq!(p.share.tenant, "acme");
    assert_eq!(p.path.as_deref(), Some("a/b"));
    assert_eq!(p.snapshot.as_deref(), Some("s-1"));
    let want = f.restore_root.canonicalize().unwrap().join("acme/srv/r");
    assert_eq!(p.target, afb::jobs::payloads::RestoreTarget::Local { path: want.to_str().unwrap().into() });
    assert!(p.overwrite);
    let (s, b) = f.post_json(start, &f.operator, r#"{"kind": "verify", "read_data_percent": 10}"#).await;
    assert_eq!(s, 202, "{b}");
    let rid = restore["job_id"].as_i64().unwrap();
    let bid = backup["job_id"].as_i64().unwrap();

    // Status and progress: the owner and the operator see it; another tenant gets 404 like a missing job.
    for t in [&f.acme, &f.operator] {
        let v = f.ok(&format!("/api/v1/jobs/{rid}"), t).await;
        assert_eq!(
            (v["job_id"].as_i64(), v["tenant"].as_str(), v["share"].as_str()),
            (Some(rid), Some("acme"), Some("files"))
        );
        let v = f.ok(&format!("/api/v1/jobs/{rid}/progress"), t).await;
        assert_eq!(v["state"], "queued");
    }
    for p in [format!("/api/v1/jobs/{rid}"), format!("/api/v1/jobs/{rid}/progress")] {
        let (s, b) = f.req("GET", &p, Some(&f.beta), None).await;
        assert_eq!((s, error_code(&b).as_str()), (404, "not_found"), "{p}: {b}");
    }
    // Lists.
    let ids =
        |v: &Value| v["jobs"].as_array().unwrap().iter().map(|j| j["job_id"].as_i64().unwrap()).collect::<Vec<_>>();
    let acme_jobs = ids(&f.ok("/api/v1/jobs", &f.acme).await);
    assert_eq!(acme_jobs.len(), 3, "{acme_jobs:?}");
    assert!(acme_jobs.contains(&rid) && acme_jobs.contains(&bid));
    assert!(ids(&f.ok("/api/v1/jobs", &f.beta).await).is_empty());
    assert_eq!(ids(&f.ok("/api/v1/jobs?tenant=acme", &f.operator).await).len(), 3);
    assert_eq!(ids(&f.ok("/api/v1/tenants/acme/shares/files/jobs", &f.acme).await).len(), 3);
    let (s, _) = f.req("GET", "/api/v1/jobs?tenant=acme", Some(&f.beta), None).await;
    assert_eq!(s, 404);

    // Cancel: another tenant cannot; the owner can, once.
    let (s, b) = f.req("POST", &format!("/api/v1/jobs/{bid}/cancel"), Some(&f.beta), None).await;
    assert_eq!((s, error_code(&b).as_str()), (404, "not_found"), "{b}");
    assert_eq!(f.ok(&format!("/api/v1/jobs/{bid}"), &f.acme).await["state"], "queued");
    let (s, b) = f.req("POST", &format!("/api/v1/jobs/{bid}/cancel"), Some(&f.acme), None).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(serde_json::from_str::<Value>(&b).unwrap()["state"], "cancelled");
    let (s, b) = f.req("POST", &format!("/api/v1/jobs/{bid}/cancel"), Some(&f.acme), None).await;
    assert_eq!((s, error_code(&b).as_str()), (409, "job_finished"), "{b}");

    // Bad input: clear errors, and no job is created.
    let cases: &[(&str, &str, &[u8], u16, &str)] = &[
        (start, "application/json", b"{not json", 400, "bad_request"),
        (start, "text/plain", br#"{"kind": "scan"}"#, 415, "unsupported_media_type"),
        (start, "application/json", br#"{"kind": "dance"}"#, 422, "invalid_body"),
        (start, "application/json", br#"{"nokind": 1}"#, 422, "invalid_body"),
        (start, "application/json", br#"[1, 2]"#, 422, "invalid_body"),
        (start, "application/json", br#"{"kind": "backup", "extra": 1}"#, 422, "invalid_body"),
        (start, "application/json", br#"{"kind": "restore", "path": "/a/../../etc"}"#, 422, "invalid_body"),
        (
            start,
            "application/json",
            br#"{"kind": "restore", "target": {"kind": "local", "path": "/etc"}}"#,
            422,
            "invalid_body",
        ),
        (start, "application/json", br#"{"kind": "restore", "target": {"kind": "moon"}}"#, 422, "invalid_body"),
        (start, "application/json", br#"{"kind": "verify", "read_data_percent": 150}"#, 422, "invalid_body"),
        ("/api/v1/tenants/acme/shares/nope/jobs", "application/json", br#"{"kind": "verify"}"#, 404, "not_found"),
        ("/api/v1/tenants/nobody/shares/files/jobs", "application/json", br#"{"kind": "verify"}"#, 404, "not_found"),
        ("/api/v1/jobs/abc/cancel", "application/json", b"", 400, "bad_request"),
        ("/api/v1/jobs/987654/cancel", "application/json", b"", 404, "not_found"),
    ];
    for (path, ct, body, status, code) in cases {
        let (s, b) = f.req("POST", path, Some(&f.acme), Some((ct, body.to_vec()))).await;
        assert_eq!(
            (s, error_code(&b).as_str()),
            (*status, *code),
            "POST {path} {}: {b}",
            String::from_utf8_lossy(body)
        );
    }
    let big = format!("{{\"kind\": \"restore\", \"path\": \"{}\"}}", "x".repeat(100_000));
    let (s, b) = f.post_json(start, &f.acme, &big).await;
    assert_eq!((s, error_code(&b).as_str()), (413, "payload_too_large"), "{b}");
    for (p, status, code) in [
        ("/api/v1/jobs/abc", 400, "bad_request"),
        ("/api/v1/jobs/987654", 404, "not_found"),
        ("/api/v1/jobs/0/progress", 400, "bad_request"),
        ("/api/v1/jobs?limit=0", 400, "bad_request"),
    ] {
        let (s, b) = f.req("GET", p, Some(&f.acme), None).await;
        assert_eq!((s, error_code(&b).as_str()), (status, code), "{p}: {b}");
    }
    assert_eq!(ids(&f.ok("/api/v1/jobs", &f.acme).await), acme_jobs, "refused requests created or changed jobs");
    let (s, b) = f.req("GET", "/api/v1/jobs", Some(&f.expired), None).await;
    assert_eq!((s, error_code(&b).as_str()), (401, "token_expired"), "{b}");
}

#[tokio::test]
async fn jobs_start_report_and_cancel_within_their_tenant() {
    let f = fixture().await;
    jobs_scenario(&f).await;
}

#[tokio::test]
async fn postgres_control_plane_keeps_hashed_tokens_and_jobs() {
    let db = afb::jobs::bench::Scratch::create(&pg_server_url())
        .await
        .expect("create a test database (is PostgreSQL running?)");
    let url = db.url.clone();
    let f = fixture_with(Some(db), false).await;
    // Tokens: valid, unknown, expired; the table holds hashes only.
    let v = f.ok("/api/v1/tenants", &f.acme).await;
    assert_eq!(v["tenants"].as_array().unwrap().len(), 1);
    let (s, b) = f.req("GET", "/api/v1/tenants", Some("afb_0000"), None).await;
    assert_eq!((s, error_code(&b).as_str()), (401, "unauthorized"));
    let (s, b) = f.req("GET", "/api/v1/tenants", Some(&f.expired), None).await;
    assert_eq!((s, error_code(&b).as_str()), (401, "token_expired"), "{b}");
    let (c, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    let rows = c
        .query("SELECT token_sha256, scope, expires_at IS NOT NULL FROM api_tokens ORDER BY scope", &[])
        .await
        .unwrap();
    assert_eq!(rows.len(), 3);
    for r in &rows {
        let h: &str = r.get(0);
        assert!(h != f.acme && h != f.beta && !f.acme.contains(h) && h.len() == 64);
    }
    assert_eq!(
        rows.iter().map(|r| r.get::<_, &str>(1)).collect::<Vec<_>>(),
        ["tenant:acme", "tenant:acme", "tenant:beta"]
    );
    // Jobs in the PostgreSQL queue, listed from the jobs table.
    jobs_scenario(&f).await;
    let n: i64 = c.query_one("SELECT count(*) FROM jobs WHERE payload->>'tenant' = 'acme'", &[]).await.unwrap().get(0);
    assert_eq!(n, 3);
    let web = login(&f, &f.beta).await;
    assert!(web.starts_with("afb_session="));
}

#[tokio::test]
async fn the_embedded_runner_runs_jobs_started_from_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let repo = NodeIndex::open(dir.path().to_str().unwrap()).unwrap();
    write_nodes(&repo, "acme", "files", &[node(1, 0, "a.txt", NodeKind::File, 3)]).await;
    let jobs = afb::api::jobs::Jobs::memory(Some(
        afb::api::jobs::job_handlers(
            dir.path().to_str().unwrap(),
            Some(afb::repository::MasterKey::from_hex(&"11".repeat(32)).unwrap()),
        )
        .unwrap(),
    ));
    let op = "op-token-for-tests-0123456789abcdef";
    let st = afb::api::state_with(
        dir.path().to_str().unwrap(),
        Auth::new(token_file(dir.path()), Some(op)),
        jobs.clone(),
        afb::api::ServeOptions::default(),
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, afb::server::app(st)).await.unwrap() });
    let c = reqwest::Client::new();
    let r = c
        .post(format!("{base}/api/v1/tenants/acme/shares/files/jobs"))
        .bearer_auth(op)
        .header("content-type", "application/json")
        .body(r#"{"kind": "verify"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let id = serde_json::from_str::<Value>(&r.text().await.unwrap()).unwrap()["job_id"].as_i64().unwrap();
    // The runner claims it and it ends; its state and error come back through the API.
    let mut last = Value::Null;
    for _ in 0..200 {
        last = serde_json::from_str(
            &c.get(format!("{base}/api/v1/jobs/{id}")).bearer_auth(op).send().await.unwrap().text().await.unwrap(),
        )
        .unwrap();
        if ["succeeded", "dead", "cancelled"].contains(&last["state"].as_str().unwrap()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(last["attempts"].as_i64().unwrap() >= 1, "the runner never claimed job {id}: {last}");
    assert!(last["state"] == "succeeded" || last["last_error"].as_str().is_some_and(|e| !e.is_empty()), "{last}");
    jobs.shutdown().await;
}

/// The login form's CSRF cookie and field value (a fresh pair per GET).
async fn login_csrf(f: &Fixture) -> (String, String) {
    let r = f.client.get(format!("{}/login", f.base)).send().await.unwrap();
    let c = r.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string();
    let html = r.text().await.unwrap();
    (c, csrf_of(&html))
}

/// POSTs the login form: `token`, and `csrf` with the login cookie when given.
async fn post_login(f: &Fixture, token: &str, form: Option<(&str, &str)>) -> reqwest::Response {
    let mut req =
        f.client.post(format!("{}/login", f.base)).header("content-type", "application/x-www-form-urlencoded");
    let body = match form {
        Some((cookie, csrf)) => {
            req = req.header("cookie", cookie);
            format!("token={token}&csrf={csrf}")
        }
        None => format!("token={token}"),
    };
    req.body(body).send().await.unwrap()
}

async fn login(f: &Fixture, token: &str) -> String {
    let (cookie, csrf) = login_csrf(f).await;
    let resp = post_login(f, token, Some((&cookie, &csrf))).await;
    assert_eq!(resp.status().as_u16(), 303);
    let c = resp.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict"), "{c}");
    c.split(';').next().unwrap().to_string()
}

async fn page(f: &Fixture, cookie: &str, path: &str) -> (u16, String) {
    let r = f.client.get(format!("{}{path}", f.base)).header("cookie", cookie).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test]
async fn dashboard_escapes_names_and_keeps_tenants_apart() {
    let f = fixture().await;
    let r = f.client.get(format!("{}/", f.base)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 303, "no session: redirect to the login page");
    let (cookie, csrf) = login_csrf(&f).await;
    let bad = post_login(&f, "nope", Some((&cookie, &csrf))).await;
    assert_eq!(bad.status().as_u16(), 401);

    let beta = login(&f, &f.beta).await;
    let (s, b) = page(&f, &beta, "/").await;
    assert_eq!(s, 200);
    assert!(b.contains("docs") && !b.contains("acme"), "{b}");
    let (s, b) = page(&f, &beta, "/t/beta/s/docs/snap/1?path=%2F%3Cscript%3E").await;
    assert_eq!(s, 200, "{b}");
    assert!(b.contains("&#60;script&#62;alert(1).txt") || b.contains("&lt;script&gt;alert(1).txt"), "{b}");
    assert!(!b.contains("<script>alert"), "unescaped name: {b}");
    let (s, b) = page(&f, &beta, "/t/beta/s/docs/diff?from=1&to=2").await;
    assert_eq!(s, 200, "{b}");
    assert!(b.contains("/&#60;script&#62;/new.txt") || b.contains("/&lt;script&gt;/new.txt"), "{b}");
    for p in ["/t/acme", "/t/acme/s/files", "/t/acme/s/files/snap/1", "/t/acme/s/files/diff?from=1&to=2"] {
        let (s, b) = page(&f, &beta, p).await;
        assert_eq!(s, 404, "{p}: {b}");
    }
    // Forms need the session's CSRF token.
    let r = f
        .client
        .post(format!("{}/logout", f.base))
        .header("cookie", &beta)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("csrf=wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);

    let op = login(&f, &f.operator).await;
    for p in ["/", "/t/acme", "/t/acme/s/files", "/t/acme/s/files/snap/3", "/t/acme/s/files/diff?from=2&to=3"] {
        let (s, b) = page(&f, &op, p).await;
        assert_eq!(s, 200, "{p}: {b}");
    }
    let (_, b) = page(&f, &op, "/t/acme/s/files").await;
    assert!(b.contains("<svg"), "share page has charts");
}

fn csrf_of(html: &str) -> String {
    let i = html.find("name=\"csrf\" value=\"").expect("a form with a CSRF field") + "name=\"csrf\" value=\"".len();
    html[i..].split('"').next().unwrap().to_string()
}

async fn post_form(f: &Fixture, cookie: &str, path: &str, body: &str) -> (u16, String, String) {
    let r = f
        .client
        .post(format!("{}{path}", f.base))
        .header("cookie", cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let loc = r.headers().get("location").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    (r.status().as_u16(), loc, r.text().await.unwrap())
}

#[tokio::test]
async fn restore_form_starts_a_job_shown_in_the_job_monitor() {
    let f = fixture().await;
    let acme = login(&f, &f.acme).await;
    let (s, html) = page(&f, &acme, "/t/acme/s/files").await;
    assert_eq!(s, 200);
    assert!(html.contains("id=\"restore-form\"") && html.contains("id=\"start-backup\""), "{html}");
    let csrf = csrf_of(&html);
    let restore = |body: String| {
        let (f, acme) = (&f, &acme);
        async move { post_form(f, acme, "/t/acme/s/files/restore", &body).await }
    };
    let no_jobs = || async { f.ok("/api/v1/jobs", &f.acme).await["jobs"].as_array().unwrap().is_empty() };
    // Without the session's CSRF token nothing starts.
    let (s, _, _) = restore("csrf=wrong&path=%2F&target=local&target_path=%2Ftmp%2Fr".into()).await;
    assert_eq!(s, 403);
    assert!(no_jobs().await);
    // Bad target path: an error page, no job.
    let (s, _, b) = restore(format!("csrf={csrf}&path=%2F&target=local&target_path=%2Fetc")).await;
    assert_eq!(s, 422, "{b}");
    assert!(no_jobs().await);
    let (s, loc, b) =
        restore(format!("csrf={csrf}&snapshot=&path=%2Fdocs&target=local&target_path=r&overwrite=1")).await;
    assert_eq!(s, 303, "{b}");
    let id: i64 = loc.strip_prefix("/jobs/").expect("redirect to the job monitor").parse().unwrap();
    let v = f.ok(&format!("/api/v1/jobs/{id}"), &f.acme).await;
    assert_eq!(v["kind"], "restore");
    assert_eq!(v["payload"]["path"], "docs");
    assert_eq!(v["payload"]["overwrite"], true);
    let want = f.restore_root.canonicalize().unwrap().join("acme/r");
    assert_eq!(v["payload"]["target"], serde_json::json!({"kind": "local", "path": want.to_str().unwrap()}));
    // The monitor polls while the job is unfinished, offers Cancel and holds the Start buttons back;
    // the share page holds them back too and polls its jobs. Other tenants get 404.
    let (s, b) = page(&f, &acme, &loc).await;
    assert_eq!(s, 200, "{b}");
    assert!(b.contains("hx-trigger=\"every 1s\"") && b.contains("id=\"job-state\""), "{b}");
    assert!(b.contains("id=\"cancel\"") && b.contains("id=\"start-backup\" disabled"), "{b}");
    let (_, b) = page(&f, &acme, "/t/acme/s/files").await;
    assert!(b.contains("id=\"start-backup\" disabled") && b.contains("hx-get=\"/t/acme/s/files/jobs\""), "{b}");
    let beta = login(&f, &f.beta).await;
    for p in [loc.clone(), format!("{loc}/status")] {
        assert_eq!(page(&f, &beta, &p).await.0, 404, "{p}");
    }
    let (_, b) = page(&f, &beta, "/jobs").await;
    assert!(!b.contains("acme"), "{b}");
    let (_, b) = page(&f, &acme, "/jobs").await;
    assert!(b.contains(&format!("/jobs/{id}")), "{b}");
    let beta_csrf = csrf_of(&page(&f, &beta, "/jobs").await.1);
    let (s, _, _) = post_form(&f, &beta, &format!("{loc}/cancel"), &format!("csrf={beta_csrf}")).await;
    assert_eq!(s, 404);
    // The owner cancels from the monitor; the status fragment stops polling.
    let (s, _, _) = post_form(&f, &acme, &format!("{loc}/cancel"), &format!("csrf={csrf}")).await;
    assert_eq!(s, 303);
    let (_, b) = page(&f, &acme, &format!("{loc}/status")).await;
    assert!(b.contains("cancelled") && !b.contains("hx-trigger"), "{b}");
    // Once it has ended: no Cancel, and the Start buttons are usable again, here and on the share page.
    assert!(
        !b.contains("id=\"cancel\"") && b.contains("id=\"start-backup\">") && b.contains("id=\"start-scan\">"),
        "{b}"
    );
    let (_, b) = page(&f, &acme, &loc).await;
    assert!(!b.contains("id=\"cancel\"") && b.contains("id=\"start-backup\">"), "{b}");
    let (s, b) = page(&f, &acme, "/t/acme/s/files/jobs").await;
    assert_eq!(s, 200, "{b}");
    assert!(b.contains("id=\"start-backup\">") && !b.contains("hx-trigger") && b.contains("cancelled"), "{b}");
    // A backup from the share page is refused until the share has connection settings.
    let (s, _, b) = post_form(&f, &acme, "/t/acme/s/files/jobs", &format!("csrf={csrf}&kind=backup")).await;
    assert_eq!(s, 409, "{b}");
    assert!(b.contains("share_not_configured"), "{b}");
}

#[tokio::test]
async fn shares_are_registered_before_their_first_snapshot_within_their_tenant() {
    let f = fixture().await;
    let cs = public_cs("acct2");
    let sas = "https://acct3.file.core.windows.net/?sv=2025-11-05&ss=f&srt=sco&sp=rl&se=2099-01-01T00:00:00Z&sig=c2lnbmF0dXJl";
    let url = "/api/v1/tenants/acme/shares";
    let private_cs = format!(
        "DefaultEndpointsProtocol=http;AccountName=acct2;AccountKey={SECRET_KEY};FileEndpoint=http://10.0.0.5:445/acct2"
    );
    let loopback_cs = format!(
        "DefaultEndpointsProtocol=http;AccountName=acct2;AccountKey={SECRET_KEY};FileEndpoint=http://127.0.0.1:10004/devstoreaccount1"
    );
    let body = |share: &str, extra: Value| {
        let mut b = serde_json::json!({ "share": share, "connection_string": cs });
        for (k, v) in extra.as_object().into_iter().flatten() {
            if v.is_null() {
                b.as_object_mut().unwrap().remove(k);
            } else {
                b[k] = v.clone();
            }
        }
        b.to_string()
    };
    let before = fingerprint(&f).await;
    // Refused, each with one clear error; nothing is stored.
    let long = "a".repeat(64);
    let cases: Vec<(&str, &str, String, u16, &str)> = vec![
        (url, f.acme.as_str(), body("Bad_Name", Value::Null), 422, "invalid_body"),
        (url, f.acme.as_str(), body("ab", Value::Null), 422, "invalid_body"),
        (url, f.acme.as_str(), body("a--b", Value::Null), 422, "invalid_body"),
        (url, f.acme.as_str(), body("-abc", Value::Null), 422, "invalid_body"),
        (url, f.acme.as_str(), body("abc-", Value::Null), 422, "invalid_body"),
        (url, f.acme.as_str(), body(&long, Value::Null), 422, "invalid_body"),
        (
            url,
            f.acme.as_str(),
            body("fine", serde_json::json!({"connection_string": "garbage"})),
            422,
            "invalid_settings",
        ),
        (url, f.acme.as_str(), body("fine", serde_json::json!({"sas_url": sas})), 422, "invalid_settings"),
        (url, f.acme.as_str(), body("fine", serde_json::json!({"connection_string": null})), 422, "invalid_settings"),
        (url, f.acme.as_str(), body("fine", serde_json::json!({"azure_share": "Not_Azure"})), 422, "invalid_settings"),
        (url, f.acme.as_str(), body("fine", serde_json::json!({"colour": "red"})), 422, "invalid_body"),
        (url, f.acme.as_str(), body("files", Value::Null), 409, "share_exists"),
        (url, f.beta.as_str(), body("fine", Value::Null), 404, "not_found"),
        ("/api/v1/tenants/newco/shares", f.acme.as_str(), body("fine", Value::Null), 404, "not_found"),
        ("/api/v1/tenants/bad!tenant/shares", f.operator.as_str(), body("fine", Value::Null), 422, "invalid_body"),
        // A tenant may not point the workers at a private or loopback endpoint (only the operator may).
        (
            url,
            f.acme.as_str(),
            body("fine", serde_json::json!({"connection_string": private_cs})),
            403,
            "endpoint_not_allowed",
        ),
        (
            url,
            f.acme.as_str(),
            body("fine", serde_json::json!({"connection_string": loopback_cs})),
            403,
            "endpoint_not_allowed",
        ),
    ];
    for (path, token, b, status, code) in &cases {
        let (s, r) = f.post_json(path, token, b).await;
        assert_eq!((s, error_code(&r).as_str()), (*status, *code), "POST {path} {b}: {r}");
        assert!(!r.contains(SECRET_KEY), "secret echoed: {r}");
    }
    assert_eq!(fingerprint(&f).await, before, "a refused registration changed something");

    // A tenant token registers a share of its own tenant: 201, the settings without the secret.
    let resp = f
        .client
        .post(format!("{}{url}", f.base))
        .bearer_auth(&f.acme)
        .header("content-type", "application/json")
        .body(body("new-share", Value::Null))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    assert_eq!(resp.headers()["location"], "/api/v1/tenants/acme/shares/new-share");
    let b = resp.text().await.unwrap();
    assert!(!b.contains(SECRET_KEY), "secret echoed: {b}");
    let v: Value = serde_json::from_str(&b).unwrap();
    assert_eq!(
        (v["snapshots"].as_u64(), v["latest"].is_null(), v["settings"]["configured"].as_bool()),
        (Some(0), true, Some(true)),
        "{v}"
    );
    assert_eq!(v["settings"]["account_name"], "acct2");
    let (s, r) = f.post_json(url, &f.acme, &body("new-share", Value::Null)).await;
    assert_eq!((s, error_code(&r).as_str()), (409, "share_exists"), "{r}");

    // It is listed, with no snapshot, to its tenant and the operator; another tenant gets 404.
    let v = f.ok(url, &f.acme).await;
    let rows = v["shares"].as_array().unwrap();
    assert_eq!(rows.iter().map(|r| r["share_id"].as_str().unwrap()).collect::<Vec<_>>(), ["files", "new-share"]);
    assert_eq!(
        (rows[1]["snapshots"].as_u64(), rows[1]["last_snapshot_id"].is_null(), rows[1]["age_seconds"].is_null()),
        (Some(0), true, true),
        "{v}"
    );
    assert_eq!(f.ok("/api/v1/tenants/acme", &f.operator).await["tenant"]["shares"], 2);
    let (s, b) = f.req("GET", "/api/v1/tenants/acme/shares/new-share", Some(&f.acme), None).await;
    assert_eq!(s, 200, "{b}");
    assert!(!b.contains(SECRET_KEY));
    assert_eq!(
        f.ok("/api/v1/tenants/acme/shares/new-share/snapshots", &f.acme).await["snapshots"],
        serde_json::json!([])
    );
    assert_eq!(f.ok("/api/v1/tenants/acme/shares/new-share/trends", &f.acme).await["points"], serde_json::json!([]));
    for p in ["/api/v1/tenants/acme/shares/new-share", "/api/v1/tenants/acme/shares/new-share/snapshots"] {
        let (s, b) = f.req("GET", p, Some(&f.beta), None).await;
        assert_eq!((s, error_code(&b).as_str()), (404, "not_found"), "{p}: {b}");
    }

    // Backups and scans start on it; a verify or restore has nothing to work on yet.
    let jobs = "/api/v1/tenants/acme/shares/new-share/jobs";
    for kind in ["backup", "scan"] {
        let (s, b) = f.post_json(jobs, &f.acme, &format!(r#"{{"kind": "{kind}"}}"#)).await;
        assert_eq!(s, 202, "{kind}: {b}");
    }
    let (s, b) = f.post_json(jobs, &f.acme, r#"{"kind": "verify"}"#).await;
    assert_eq!((s, error_code(&b).as_str()), (409, "no_snapshots"), "{b}");

    // The operator registers a share of a new tenant (with a SAS URL); tenants see only their own.
    let (s, b) = f
        .post_json(
            "/api/v1/tenants/newco/shares",
            &f.operator,
            &body("first", serde_json::json!({"connection_string": null, "sas_url": sas})),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    assert!(!b.contains("sig=") && !b.contains("c2lnbmF0dXJl"), "SAS signature echoed: {b}");
    let names = |v: Value| {
        v["tenants"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["tenant_id"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(f.ok("/api/v1/tenants", &f.operator).await), ["acme", "beta", "newco"]);
    assert_eq!(names(f.ok("/api/v1/tenants", &f.acme).await), ["acme"]);
    assert!(f.ok("/api/v1/tenants/newco", &f.operator).await["tenant"]["last_snapshot_at"].is_null());
    // The operator may register a source on a private endpoint that a tenant may not.
    let (s, b) =
        f.post_json(url, &f.operator, &body("private-one", serde_json::json!({"connection_string": private_cs}))).await;
    assert_eq!(s, 201, "{b}");

    // The dashboard lists registered shares as never backed up, and their pages offer the Start buttons.
    let op = login(&f, &f.operator).await;
    for p in ["/", "/t/acme", "/t/newco"] {
        let (s, b) = page(&f, &op, p).await;
        assert_eq!(s, 200, "{p}: {b}");
        assert!(b.contains("never backed up"), "{p}: {b}");
        assert!(b.contains("id=\"add-share-form\""), "{p}: {b}");
    }
    let (s, b) = page(&f, &op, "/t/acme/s/new-share").await;
    assert_eq!(s, 200, "{b}");
    // The backup and scan started above are still queued (no runner here): the buttons wait for them.
    assert!(
        b.contains("id=\"never-backed-up\"")
            && b.contains("id=\"start-backup\" disabled")
            && !b.contains("id=\"restore-form\""),
        "{b}"
    );
    assert!(!b.contains(SECRET_KEY), "{b}");

    // "Add share" on the tenant page: CSRF-checked, the API's rules, another tenant is 404.
    let acme = login(&f, &f.acme).await;
    let (_, html) = page(&f, &acme, "/").await;
    assert!(
        html.contains("<input type=\"hidden\" name=\"tenant\" value=\"acme\">"),
        "a tenant's overview adds to its own tenant: {html}"
    );
    let (_, html) = page(&f, &op, "/").await;
    assert!(html.contains("<input name=\"tenant\" required"), "the operator's overview asks for the tenant: {html}");
    let (_, html) = page(&f, &acme, "/t/acme").await;
    assert!(html.contains("id=\"add-share-form\""), "{html}");
    let csrf = csrf_of(&html);
    let enc = |v: &str| percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC).to_string();
    let form = |csrf: &str, tenant: &str, share: &str, conn: &str| {
        format!("csrf={csrf}&tenant={tenant}&share={share}&connection_string={}&sas_url=&azure_share=", enc(conn))
    };
    let before = fingerprint(&f).await;
    let (s, _, _) = post_form(&f, &acme, "/shares", &form("wrong", "acme", "web-share", &cs)).await;
    assert_eq!(s, 403);
    let (s, _, b) = post_form(&f, &acme, "/shares", &form(&csrf, "acme", "Web_Share", &cs)).await;
    assert_eq!(s, 422, "{b}");
    assert!(b.contains("Azure share names"), "{b}");
    let (s, _, _) = post_form(&f, &acme, "/shares", &form(&csrf, "beta", "web-share", &cs)).await;
    assert_eq!(s, 404);
    let (s, _, b) = post_form(&f, &acme, "/shares", &form(&csrf, "acme", "web-share", "")).await;
    assert_eq!(s, 422, "{b}");
    assert_eq!(fingerprint(&f).await, before, "a refused form changed something");
    let (s, loc, b) = post_form(&f, &acme, "/shares", &form(&csrf, "acme", "web-share", &cs)).await;
    assert_eq!((s, loc.as_str()), (303, "/t/acme/s/web-share"), "{b}");
    let v = f.ok("/api/v1/tenants/acme/shares/web-share", &f.acme).await;
    assert_eq!(
        (v["settings"]["configured"].as_bool(), v["settings"]["account_name"].as_str()),
        (Some(true), Some("acct2")),
        "{v}"
    );
    let (s, b) = page(&f, &acme, &loc).await;
    assert_eq!(s, 200, "{b}");
    assert!(b.contains("id=\"start-backup\">") && !b.contains(SECRET_KEY), "{b}");
}

// ---- Issue 12: hostile input from a tenant token -------------------------------------------------------

/// Local restore targets a tenant may not use: absolute, `..`, backslash, NUL.
const HOSTILE_LOCAL_TARGETS: &[&str] =
    &["/tmp/x", "/", "//etc", "../beta", "a/../../x", "..", "a/..", "a\\..\\x", "a\u{0}b", "C:\\x"];

/// Endpoints whose host a hand-made split reads differently from `url::Url`, userinfo, fragments,
/// queries, loopback and metadata addresses.
fn hostile_endpoints(port: u16) -> Vec<String> {
    vec![
        "http://169.254.169.254\\@x.file.core.windows.net".into(),
        format!("http://127.0.0.1:{port}#@x.file.core.windows.net"),
        format!("http://127.0.0.1:{port}\\@x.file.core.windows.net"),
        format!("http://127.0.0.1:{port}?@x.file.core.windows.net"),
        format!("http://x.file.core.windows.net@127.0.0.1:{port}"),
        "https://user:pass@x.file.core.windows.net".into(),
        "https://x.file.core.windows.net#frag".into(),
        "https://x.file.core.windows.net?q=1".into(),
        format!("http://127.0.0.1:{port}/devstoreaccount1"),
        "http://169.254.169.254/x.file.core.windows.net".into(),
        "http://[::1]:80/x".into(),
        "http://10.0.0.1/x".into(),
    ]
}

fn hostile_sas_urls(port: u16) -> Vec<String> {
    let q = "?sv=2025-11-05&ss=f&srt=sco&sp=rl&se=2099-01-01T00:00:00Z&sig=c2lnbmF0dXJl";
    vec![
        format!("http://127.0.0.1:{port}/devstoreaccount1/share{q}"),
        format!("https://user:pass@x.file.core.windows.net/share{q}"),
        format!("http://169.254.169.254\\@x.file.core.windows.net/share{q}"),
        format!("https://x.file.core.windows.net/share{q}#frag"),
    ]
}

/// A connection string of account `account` on Azure's public endpoints.
fn public_cs(account: &str) -> String {
    format!(
        "DefaultEndpointsProtocol=https;AccountName={account};AccountKey={SECRET_KEY};EndpointSuffix=core.windows.net"
    )
}

fn cs_for(endpoint: &str) -> String {
    format!("DefaultEndpointsProtocol=http;AccountName=x;AccountKey={SECRET_KEY};FileEndpoint={endpoint}")
}

#[tokio::test]
async fn tenant_restores_stay_below_its_restore_root() {
    let f = fixture().await;
    let start = "/api/v1/tenants/acme/shares/files/jobs";
    let before = fingerprint(&f).await;
    for path in HOSTILE_LOCAL_TARGETS {
        let body = serde_json::json!({"kind": "restore", "target": {"kind": "local", "path": path}}).to_string();
        let (s, b) = f.post_json(start, &f.acme, &body).await;
        assert!([400, 403, 422].contains(&s), "tenant restore to {path:?}: {s} {b}");
        error_code(&b);
    }
    assert_eq!(fingerprint(&f).await, before, "a refused restore started a job");
    // A relative path lands in the tenant's directory of the restore root, created 0700.
    let (s, b) =
        f.post_json(start, &f.acme, r#"{"kind": "restore", "target": {"kind": "local", "path": "out/day1"}}"#).await;
    assert_eq!(s, 202, "{b}");
    let v: Value = serde_json::from_str(&b).unwrap();
    let want = f.restore_root.canonicalize().unwrap().join("acme").join("out/day1");
    assert_eq!(v["payload"]["target"], serde_json::json!({"kind": "local", "path": want.to_str().unwrap()}));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(f.restore_root.join("acme")).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);
    // The operator keeps arbitrary absolute targets.
    let (s, b) =
        f.post_json(start, &f.operator, r#"{"kind": "restore", "target": {"kind": "local", "path": "/srv/r"}}"#).await;
    assert_eq!(s, 202, "{b}");
    // The dashboard's restore form is the same check.
    let acme = login(&f, &f.acme).await;
    let csrf = csrf_of(&page(&f, &acme, "/t/acme/s/files").await.1);
    let (s, _, b) = post_form(
        &f,
        &acme,
        "/t/acme/s/files/restore",
        &format!("csrf={csrf}&path=%2F&target=local&target_path=%2Ftmp%2Fr"),
    )
    .await;
    assert!([400, 403, 422].contains(&s), "{s} {b}");
}

#[tokio::test]
async fn endpoint_bypass_strings_are_refused_at_registration() {
    let f = fixture().await;
    let url = "/api/v1/tenants/acme/shares";
    let before = fingerprint(&f).await;
    for e in hostile_endpoints(9) {
        let body = serde_json::json!({"share": "evil", "connection_string": cs_for(&e)}).to_string();
        let (s, b) = f.post_json(url, &f.acme, &body).await;
        assert!(s == 403 || s == 422, "tenant source {e}: {s} {b}");
        error_code(&b);
    }
    for u in hostile_sas_urls(9) {
        let body = serde_json::json!({"share": "evil", "sas_url": u}).to_string();
        let (s, b) = f.post_json(url, &f.acme, &body).await;
        assert!(s == 403 || s == 422, "tenant SAS URL {u}: {s} {b}");
        error_code(&b);
    }
    assert_eq!(fingerprint(&f).await, before, "a refused registration changed something");
    // The parser bypasses are malformed for the operator too: nothing could connect to them.
    for e in ["http://169.254.169.254\\@x.file.core.windows.net", "http://127.0.0.1:8080#@x.file.core.windows.net"] {
        let body = serde_json::json!({"share": "evil", "connection_string": cs_for(e)}).to_string();
        let (s, b) = f.post_json(url, &f.operator, &body).await;
        assert_eq!((s, error_code(&b).as_str()), (422, "invalid_settings"), "operator source {e}: {b}");
    }
}

#[tokio::test]
async fn sources_keep_the_address_policy_of_who_registered_them() {
    let f = fixture().await;
    let public = public_cs("acct2");
    let allowed = cs_for("https://files.internal:8443/acct");
    for (token, share, cs) in [
        (&f.acme, "tenant-public", &public),
        (&f.operator, "operator-public", &public),
        (&f.acme, "tenant-allowed", &allowed),
    ] {
        let body = serde_json::json!({"share": share, "connection_string": cs}).to_string();
        let (s, b) = f.post_json("/api/v1/tenants/acme/shares", token, &body).await;
        assert_eq!(s, 201, "{share}: {b}");
    }
    // What reaches the client a worker builds for the share.
    let env = afb::jobs::data::DataEnv::new(f._dir.path().to_str().unwrap(), master_key()).unwrap();
    let policy = |share: &str| env.source("acme", share).unwrap().0.options().address_policy;
    assert_eq!(policy("tenant-public"), afb::azure::AddressPolicy::PublicOnly);
    assert_eq!(policy("operator-public"), afb::azure::AddressPolicy::Any);
    assert_eq!(policy("tenant-allowed"), afb::azure::AddressPolicy::Any);
}

#[tokio::test]
async fn share_secrets_are_sealed_in_a_private_file() {
    let f = fixture().await;
    let cs = public_cs("acct1");
    let sas = "https://acct3.file.core.windows.net/?sv=2025-11-05&ss=f&srt=sco&sp=rl&se=2099-01-01T00:00:00Z&sig=c2lnbmF0dXJl";
    let body = serde_json::to_vec(&serde_json::json!({ "connection_string": cs })).unwrap();
    let (s, b) = f
        .req("PUT", "/api/v1/tenants/acme/shares/files/settings", Some(&f.operator), Some(("application/json", body)))
        .await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = f
        .post_json(
            "/api/v1/tenants/acme/shares",
            &f.acme,
            &serde_json::json!({"share": "viasas", "sas_url": sas}).to_string(),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let file = f._dir.path().join(".afb").join("shares.json");
    let text = std::fs::read_to_string(&file).unwrap();
    for secret in [SECRET_KEY, "c2lnbmF0dXJl", "sig="] {
        assert!(!text.contains(secret), "{secret} in plain text: {text}");
    }
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    // The views still work, and a worker with the master key reads the secret back.
    assert_eq!(f.ok("/api/v1/tenants/acme/shares/files", &f.acme).await["settings"]["account_name"], "acct1");
    let env = afb::jobs::data::DataEnv::new(f._dir.path().to_str().unwrap(), master_key()).unwrap();
    assert_eq!(env.source("acme", "files").unwrap().0.account(), "acct1");
}

#[tokio::test]
async fn login_and_api_failures_are_rate_limited() {
    let f = fixture().await;
    let mut limited = None;
    for i in 0..40 {
        let (s, _) = f.req("GET", "/api/v1/tenants", Some(&format!("afb_{i:064x}")), None).await;
        if s == 429 {
            limited = Some(i);
            break;
        }
        assert_eq!(s, 401);
    }
    assert!(limited.is_some(), "40 bad tokens in a row were never limited");
    let r = f.client.get(format!("{}/api/v1/tenants", f.base)).bearer_auth("afb_nope").send().await.unwrap();
    assert_eq!(r.status().as_u16(), 429);
    assert!(r.headers().contains_key("retry-after"));
    error_code(&r.text().await.unwrap());
}

#[tokio::test]
async fn sessions_end_when_their_token_is_revoked() {
    let f = fixture().await;
    let tf = token_file(f._dir.path());
    let t = issue_token(&tf, &Scope::Tenant("acme".into()), None, Some("revoke-me".into())).unwrap();
    let cookie = login(&f, &t).await;
    assert_eq!(page(&f, &cookie, "/").await.0, 200);
    let records: Vec<Value> = serde_json::from_slice(&std::fs::read(&tf).unwrap()).unwrap();
    let kept: Vec<Value> = records.into_iter().filter(|r| r["label"] != "revoke-me").collect();
    std::fs::write(&tf, serde_json::to_vec(&kept).unwrap()).unwrap();
    let r = f.client.get(format!("{}/", f.base)).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 303, "a session outlived its revoked token");
}

#[tokio::test]
async fn login_needs_its_csrf_token() {
    let f = fixture().await;
    let r = post_login(&f, &f.acme, None).await;
    assert_eq!(r.status().as_u16(), 403, "a login without the form's CSRF token was accepted");
    // Another form's token does not do either; the form's own does.
    let (cookie, _) = login_csrf(&f).await;
    let (_, other) = login_csrf(&f).await;
    let r = post_login(&f, &f.acme, Some((&cookie, &other))).await;
    assert_eq!(r.status().as_u16(), 403);
    assert!(login(&f, &f.acme).await.starts_with("afb_session="));
}

#[tokio::test]
async fn internal_errors_answer_an_id_not_server_paths() {
    let f = fixture().await;
    std::fs::create_dir_all(f._dir.path().join(".afb")).unwrap();
    std::fs::write(f._dir.path().join(".afb").join("shares.json"), b"{not json").unwrap();
    let (s, b) = f.req("GET", "/api/v1/tenants", Some(&f.operator), None).await;
    assert_eq!((s, error_code(&b).as_str()), (500, "internal"), "{b}");
    let dir = f._dir.path().to_str().unwrap();
    assert!(!b.contains(dir) && !b.contains("shares.json"), "a 500 shows server paths: {b}");
}

#[tokio::test]
async fn cookies_are_secure_behind_https() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().to_str().unwrap();
    let auth = Auth::new(token_file(dir.path()), Some("op-token-for-tests-0123456789abcdef"));
    let opts = afb::api::ServeOptions { secure_cookies: true, ..Default::default() };
    let st = afb::api::state_with(repo, auth, afb::api::jobs::Jobs::memory(None), opts).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { serve(listener, st).await });
    let r = reqwest::get(format!("{base}/login")).await.unwrap();
    let c = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(c.contains("; Secure") && c.contains("HttpOnly") && c.contains("SameSite=Strict"), "{c}");
}

/// The space map and the change view: a rectangle per top directory with its exact bytes in the title,
/// names escaped, links into the tree browser; the directories with added bytes; and, like every page,
/// another tenant's share answers 404 (also with a session of the other tenant on its own share).
#[tokio::test]
async fn space_map_and_change_view_show_directories_within_their_tenant() {
    let f = fixture().await;
    let beta = login(&f, &f.beta).await;
    let (s, b) = page(&f, &beta, "/t/beta/s/docs/snap/2/map").await;
    assert_eq!(s, 200, "{b}");
    assert!(!b.contains("<script>"), "unescaped name: {b}");
    // `<script>` holds 10 + 5 bytes in snapshot 2 (new.txt was added), the root's own file 20 bytes.
    let tile = b.split("<a class=\"tile\" data-depth=\"1\"").nth(1).expect("a tile for the top directory");
    assert!(tile.contains("href=\"/t/beta/s/docs/snap/2?path=%2F%3Cscript%3E\""), "{tile}");
    assert!(
        tile.contains("<title>/&lt;script&gt; · 15 bytes (15 B) · +5 B since the previous snapshot</title>"),
        "{tile}"
    );
    assert_eq!(b.matches("<a class=\"tile\" data-depth=\"1\"").count(), 1, "{b}");
    assert!(b.contains("files directly in / · 20 bytes"), "{b}");
    let (s, b) = page(&f, &beta, "/t/beta/s/docs/changes?from=1&to=2").await;
    assert_eq!(s, 200, "{b}");
    let added = b.split("id=\"added\"").nth(1).expect("an added list");
    assert!(added.contains("href=\"/t/beta/s/docs/snap/2?path=%2F%3Cscript%3E\""), "{added}");
    assert!(added.contains("title=\"5 bytes\">5 B</td>"), "{added}");
    assert!(!b.contains("<script>"), "unescaped name: {b}");
    for p in [
        "/t/acme/s/files/snap/3/map",
        "/t/acme/s/files/snap/3/map?path=%2F&depth=3",
        "/t/acme/s/files/changes",
        "/t/acme/s/files/changes?from=1&to=3",
    ] {
        let (s, b) = page(&f, &beta, p).await;
        assert_eq!(s, 404, "{p}: {b}");
    }
    let (s, _) = page(&f, &beta, "/t/beta/s/docs/snap/2/map?path=%2Fnosuchdir").await;
    assert_eq!(s, 404);

    let op = login(&f, &f.operator).await;
    for d in 1..=3 {
        let (s, b) = page(&f, &op, &format!("/t/acme/s/files/snap/3/map?depth={d}")).await;
        assert_eq!(s, 200, "{b}");
        assert!(b.matches("<a class=\"tile\"").count() >= 1, "{b}");
        assert_eq!(b.contains("data-depth=\"2\""), d >= 2, "depth {d}");
    }
    let (s, b) = page(&f, &op, "/t/acme/s/files/changes").await;
    assert_eq!(s, 200, "{b}");
    assert!(b.contains("#2 → #3"), "the last two snapshots by default: {b}");
    assert!(b.split("id=\"added\"").nth(1).is_some_and(|t| t.contains("/t/acme/s/files/snap/3?path=")), "{b}");
}

/// A queued job (no runner here) shows in the monitor as waiting, with an indeterminate progress bar
/// (no value: no total is known), its phase in words and no raw JSON; the API keeps the JSON fields.
#[tokio::test]
async fn a_queued_job_shows_an_indeterminate_bar_and_its_phase_in_words() {
    let f = fixture().await;
    let id = f.queue_acme_restore().await;
    let acme = login(&f, &f.acme).await;
    let (s, b) = page(&f, &acme, &format!("/jobs/{id}/status")).await;
    assert_eq!(s, 200, "{b}");
    assert!(b.contains(r#"<div id="job-phase">waiting to start</div>"#), "{b}");
    let bar = b.split("<progress").nth(1).expect("a progress bar").split('>').next().unwrap();
    assert!(bar.contains(r#"id="job-bar""#) && !bar.contains("value="), "indeterminate: {bar}");
    let (_, b) = page(&f, &acme, "/jobs").await;
    assert!(b.contains("waiting to start"), "{b}");
    let v = f.ok(&format!("/api/v1/jobs/{id}"), &f.acme).await;
    assert!(v["started_at"].is_null() && v["finished_at"].is_null(), "{v}");
    // Cancelled while queued: it ended, so the bar goes and its end time is known.
    let (s, _) = f.post_json(&format!("/api/v1/jobs/{id}/cancel"), &f.acme, "").await;
    assert!(s < 300, "cancel: {s}");
    let (_, b) = page(&f, &acme, &format!("/jobs/{id}/status")).await;
    assert!(!b.contains("<progress"), "{b}");
    let v = f.ok(&format!("/api/v1/jobs/{id}"), &f.acme).await;
    assert!(v["finished_at"].as_str().is_some_and(|t| t.ends_with('Z')), "{v}");
}
