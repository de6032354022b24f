//! The `noop` handler: benchmarks, smoke tests and crash tests.
//!
//! Payload (all optional): `sleep_ms` (milliseconds to sleep, stopping early on cancellation) and `fail`
//! (a message: the job fails transiently with it every time, to exercise retries and dead-lettering).
//!
//! With an effects directory (`afb worker --noop-effects-dir`, or `AFB_NOOP_EFFECTS_DIR`), each run also
//! appends `job_id attempt` to `runs.log` when it starts, and finishes by writing the file `done/<job_id>`
//! through a temporary file and a rename: an idempotent effect, so crash tests can check that every job
//! took effect exactly once however often it ran.

use super::handler::{Handlers, JobContext, JobError, JobHandler, Outcome};
use super::model::JobKind;
use async_trait::async_trait;
use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

/// The handlers every worker has: `noop`.
pub fn builtin_handlers() -> Handlers {
    Handlers::new().with(JobKind::Noop, NoopHandler)
}

#[derive(Debug, Clone, Default)]
pub struct NoopHandler;

#[async_trait]
impl JobHandler for NoopHandler {
    async fn run(&self, ctx: &JobContext, payload: &serde_json::Value) -> Result<Outcome, JobError> {
        noop(ctx, payload).await
    }
}

async fn noop(ctx: &JobContext, payload: &serde_json::Value) -> Result<Outcome, JobError> {
    if let Some(ms) = payload.get("sleep_ms").and_then(|v| v.as_u64()) {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(ms)) => {}
            _ = ctx.cancelled().cancelled() => return Err(anyhow::anyhow!("stopped").into()),
        }
    }
    if let Some(msg) = payload.get("fail").and_then(|v| v.as_str()) {
        return Err(anyhow::anyhow!("{msg}").into());
    }
    Ok(Outcome::Done)
}

/// `noop` plus an idempotent effect on disk (see the module documentation).
#[derive(Debug, Clone)]
pub struct EffectFileHandler {
    pub dir: PathBuf,
}

#[async_trait]
impl JobHandler for EffectFileHandler {
    async fn run(&self, ctx: &JobContext, payload: &serde_json::Value) -> Result<Outcome, JobError> {
        let id = ctx.job.job_id;
        {
            let mut log = std::fs::OpenOptions::new().create(true).append(true).open(self.dir.join("runs.log"))?;
            // One write(2) per line: O_APPEND keeps it whole even if the process is killed.
            log.write_all(format!("{id} {}\n", ctx.job.attempt).as_bytes())?;
        }
        noop(ctx, payload).await?;
        let done = self.dir.join("done");
        std::fs::create_dir_all(&done)?;
        let tmp = done.join(format!(".{id}.{}.tmp", std::process::id()));
        std::fs::write(&tmp, format!("{id}\n"))?;
        std::fs::rename(&tmp, done.join(id.to_string()))?;
        Ok(Outcome::Done)
    }
}
