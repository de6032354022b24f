//! Schema migrations: the numbered files in `sql/migrations/`, embedded in the binary and applied in order.
//!
//! Each migration runs in its own transaction and is recorded in `schema_migrations`; one that is already
//! recorded is skipped, so running `afb migrate` (or starting a worker) again is harmless. Concurrent
//! migrators (many workers starting at once) serialize on an advisory lock.

use anyhow::Context as _;

/// `(version, name, sql)` in the order they apply. Append only: never edit a released migration.
pub const MIGRATIONS: &[(i32, &str, &str)] = &[
    (1, "control_plane", include_str!("../../sql/migrations/0001_control_plane.sql")),
    (2, "jobs", include_str!("../../sql/migrations/0002_jobs.sql")),
    (3, "api_tokens", include_str!("../../sql/migrations/0003_api_tokens.sql")),
];

/// Advisory lock key held while migrating ("afbmigr" in ASCII).
const LOCK_KEY: i64 = 0x0061_6662_6d69_6772;

/// Applies the migrations not yet recorded. Returns the versions applied by this call.
pub async fn migrate(client: &mut tokio_postgres::Client) -> anyhow::Result<Vec<i32>> {
    client.execute("SELECT pg_advisory_lock($1)", &[&LOCK_KEY]).await.context("taking the migration lock")?;
    let result = apply(client).await;
    let _ = client.execute("SELECT pg_advisory_unlock($1)", &[&LOCK_KEY]).await;
    result
}

async fn apply(client: &mut tokio_postgres::Client) -> anyhow::Result<Vec<i32>> {
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                 version    integer PRIMARY KEY,
                 name       text NOT NULL,
                 applied_at timestamptz NOT NULL DEFAULT now()
             )",
        )
        .await
        .context("creating schema_migrations")?;
    let mut applied = Vec::new();
    for &(version, name, sql) in MIGRATIONS {
        let tx = client.transaction().await?;
        let done = tx.query_opt("SELECT 1 FROM schema_migrations WHERE version = $1", &[&version]).await?.is_some();
        if done {
            continue;
        }
        tx.batch_execute(sql).await.with_context(|| format!("applying migration {version:04}_{name}"))?;
        tx.execute("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", &[&version, &name]).await?;
        tx.commit().await?;
        applied.push(version);
    }
    Ok(applied)
}

/// Connects to `database_url` and migrates.
pub async fn migrate_url(database_url: &str) -> anyhow::Result<Vec<i32>> {
    let (mut client, conn) = tokio_postgres::connect(database_url, tokio_postgres::NoTls)
        .await
        .with_context(|| format!("connecting to {}", redact(database_url)))?;
    let driver = tokio::spawn(conn);
    let r = migrate(&mut client).await;
    drop(client);
    let _ = driver.await;
    r
}

/// The URL with any password replaced by `***`, for error messages.
pub fn redact(database_url: &str) -> String {
    match url::Url::parse(database_url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => database_url.to_string(),
    }
}
