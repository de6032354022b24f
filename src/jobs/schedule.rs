//! Cron-like schedules per share. `afb schedule run` enqueues a job for every schedule whose
//! `next_run_at` has passed and moves `next_run_at` to the next occurrence after now (UTC): a scheduler
//! that was down for a day enqueues one job per schedule, not one per missed occurrence.
//!
//! Several schedulers may run at once: each due schedule is locked with `SKIP LOCKED`, and the job's
//! dedupe key (`schedule:<id>:<due time in Unix seconds>`) makes a second enqueue of the same occurrence a
//! no-op.

use super::model::JobState;
use super::model::{JobKind, NewJob, ShareId, TenantId};
use super::postgres::{WORK_CHANNEL, insert_jobs};
use anyhow::Context as _;
use chrono::{DateTime, Utc};
use croner::Cron;

/// Parses a cron expression: five fields (minute hour day-of-month month day-of-week), an optional
/// leading seconds field, or an alias such as `@daily`.
pub fn parse_cron(expr: &str) -> anyhow::Result<Cron> {
    expr.parse::<Cron>().map_err(|e| anyhow::anyhow!("invalid cron expression {expr:?}: {e}"))
}

/// The first occurrence of `cron` strictly after `after`.
pub fn next_after(cron: &Cron, after: DateTime<Utc>) -> anyhow::Result<DateTime<Utc>> {
    cron.find_next_occurrence(&after, false).map_err(|e| anyhow::anyhow!("no next occurrence of {}: {e}", cron.pattern))
}

/// Adds a schedule that first fires at the next occurrence after now. Returns its id.
pub async fn add(
    client: &tokio_postgres::Client,
    tenant_id: TenantId,
    share_id: ShareId,
    kind: JobKind,
    cron: &str,
    payload: &serde_json::Value,
) -> anyhow::Result<i64> {
    let next = next_after(&parse_cron(cron)?, Utc::now())?;
    let row = client
        .query_one(
            "INSERT INTO schedules (tenant_id, share_id, kind, cron, payload, next_run_at)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING schedule_id",
            &[&tenant_id, &share_id, &kind.as_str(), &cron, payload, &next],
        )
        .await
        .context("adding a schedule")?;
    Ok(row.get(0))
}

/// Enqueues the jobs of every schedule due at `now`. Returns how many jobs were enqueued.
pub async fn run_due(client: &mut tokio_postgres::Client, now: DateTime<Utc>) -> anyhow::Result<usize> {
    let tx = client.transaction().await?;
    let rows = tx
        .query(
            "SELECT schedule_id, tenant_id, share_id, kind, cron, payload, priority, next_run_at
             FROM schedules WHERE enabled AND next_run_at <= $1
             ORDER BY next_run_at LIMIT 1000 FOR UPDATE SKIP LOCKED",
            &[&now],
        )
        .await?;
    let mut enqueued = 0;
    for r in rows {
        let id: i64 = r.get(0);
        let expr: &str = r.get(4);
        let due: DateTime<Utc> = r.get(7);
        let kind: JobKind =
            r.get::<_, &str>(3).parse().map_err(anyhow::Error::msg).with_context(|| format!("schedule {id}"))?;
        // A schedule whose expression no longer parses is disabled rather than retried every tick.
        let next = match parse_cron(expr).and_then(|c| next_after(&c, now)) {
            Ok(n) => Some(n),
            Err(e) => {
                tracing::warn!("disabling schedule {id}: {e:#}");
                None
            }
        };
        if let Some(next) = next {
            let job = NewJob {
                tenant_id: r.get(1),
                share_id: Some(r.get(2)),
                kind,
                payload: r.get(5),
                priority: r.get(6),
                max_attempts: 5,
                dedupe_key: Some(format!("schedule:{id}:{}", due.timestamp())),
            };
            enqueued += insert_jobs(&tx, &[job], JobState::Queued, None, 0).await?.len();
            tx.execute(
                "UPDATE schedules SET next_run_at = $2, last_enqueued_at = $3 WHERE schedule_id = $1",
                &[&id, &next, &now],
            )
            .await?;
        } else {
            tx.execute("UPDATE schedules SET enabled = false WHERE schedule_id = $1", &[&id]).await?;
        }
    }
    if enqueued > 0 {
        tx.execute("SELECT pg_notify($1, '')", &[&WORK_CHANNEL]).await?;
    }
    tx.commit().await?;
    Ok(enqueued)
}
