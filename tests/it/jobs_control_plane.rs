//! Migrations and schedules against the real PostgreSQL.

use crate::support::jobs::TestDb;
use afb::jobs::migrate::{MIGRATIONS, migrate_url};
use afb::jobs::schedule;
use afb::jobs::{JobKind, Queue};
use chrono::{Duration as ChronoDuration, Utc};
use serde_json::json;

#[tokio::test]
async fn migrating_twice_applies_nothing_the_second_time() {
    let db = TestDb::new().await; // already migrated once
    assert!(migrate_url(&db.url).await.unwrap().is_empty());
    let c = db.client().await;
    let n: i64 = c.query_one("SELECT count(*) FROM schema_migrations", &[]).await.unwrap().get(0);
    assert_eq!(n as usize, MIGRATIONS.len());
    for table in ["tenants", "shares", "schedules", "jobs", "snapshots"] {
        c.execute(&format!("SELECT 1 FROM {table} LIMIT 0"), &[]).await.unwrap();
    }
}

#[tokio::test]
async fn concurrent_migrators_do_not_collide() {
    let scratch = afb::jobs::bench::Scratch::create(&crate::support::jobs::server_url()).await.unwrap();
    let runs = futures::future::join_all((0..4).map(|_| migrate_url(&scratch.url))).await;
    let applied: usize = runs.into_iter().map(|r| r.unwrap().len()).sum();
    scratch.drop_db().await.unwrap();
    assert_eq!(applied, MIGRATIONS.len(), "each migration applied by exactly one migrator");
}

#[tokio::test]
async fn a_due_schedule_enqueues_one_job_and_moves_to_its_next_occurrence() {
    let db = TestDb::new().await;
    let mut c = db.client().await;
    let tenant: i64 =
        c.query_one("INSERT INTO tenants (name) VALUES ('contoso') RETURNING tenant_id", &[]).await.unwrap().get(0);
    let share: i64 = c
        .query_one(
            "INSERT INTO shares (tenant_id, account, share_name) VALUES ($1, 'acct', 'finance') RETURNING share_id",
            &[&tenant],
        )
        .await
        .unwrap()
        .get(0);
    let id = schedule::add(&c, tenant, share, JobKind::Backup, "0 2 * * *", &json!({"full": false})).await.unwrap();
    let next: chrono::DateTime<Utc> =
        c.query_one("SELECT next_run_at FROM schedules WHERE schedule_id = $1", &[&id]).await.unwrap().get(0);
    assert_eq!(next.format("%H:%M").to_string(), "02:00");

    assert_eq!(schedule::run_due(&mut c, next - ChronoDuration::seconds(1)).await.unwrap(), 0, "not due yet");
    // A scheduler that was down for three days enqueues one job, not three.
    let late = next + ChronoDuration::days(3);
    assert_eq!(schedule::run_due(&mut c, late).await.unwrap(), 1);
    assert_eq!(schedule::run_due(&mut c, late).await.unwrap(), 0);
    let after: chrono::DateTime<Utc> =
        c.query_one("SELECT next_run_at FROM schedules WHERE schedule_id = $1", &[&id]).await.unwrap().get(0);
    assert!(after > late && after - late <= ChronoDuration::days(1));

    let q = db.queue().await;
    let counts = q.counts().await.unwrap();
    assert_eq!(counts.queued, 1);
    let job = q.claim("w", 1, std::time::Duration::from_secs(30)).await.unwrap().remove(0);
    assert_eq!((job.kind, job.tenant_id, job.share_id), (JobKind::Backup, tenant, Some(share)));
    assert_eq!(job.payload, json!({"full": false}));
}

#[test]
fn cron_expressions_are_checked_when_added() {
    assert!(schedule::parse_cron("0 2 * * *").is_ok());
    assert!(schedule::parse_cron("@hourly").is_ok());
    let e = schedule::parse_cron("61 * * * *").unwrap_err().to_string();
    assert!(e.contains("61 * * * *"), "{e}");
}
