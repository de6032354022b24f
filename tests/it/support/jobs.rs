//! Shared helpers for the job system's tests: a scratch PostgreSQL database per test, and both queue
//! backends behind one constructor so scenarios run against each.
#![allow(dead_code)]

use afb::jobs::bench::Scratch;
use afb::jobs::postgres::{PgQueue, pool};
use afb::jobs::{MemoryQueue, Queue};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The server tests use; override with AFB_TEST_DATABASE_URL.
pub fn server_url() -> String {
    std::env::var("AFB_TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A database created for one test, migrated, and dropped when this value is dropped.
pub struct TestDb {
    scratch: Option<Scratch>,
    pub url: String,
}

impl TestDb {
    pub async fn new() -> TestDb {
        let scratch = Scratch::create(&server_url()).await.expect("create a test database (is PostgreSQL running?)");
        afb::jobs::migrate::migrate_url(&scratch.url).await.expect("migrate");
        TestDb { url: scratch.url.clone(), scratch: Some(scratch) }
    }

    /// A PostgreSQL queue with its own pool and LISTEN connection.
    pub async fn queue(&self) -> Arc<PgQueue> {
        Arc::new(PgQueue::connect(&self.url, pool(&self.url, 8).unwrap()).await.unwrap())
    }

    pub async fn client(&self) -> tokio_postgres::Client {
        let (c, conn) = tokio_postgres::connect(&self.url, tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(conn);
        c
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(s) = self.scratch.take() {
            // Drop runs inside the test's runtime: do the async work on a thread of its own.
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                let _ = rt.block_on(s.drop_db());
            })
            .join()
            .unwrap();
        }
    }
}

/// Which backend a scenario runs on.
#[derive(Debug, Clone, Copy)]
pub enum Backend {
    Memory,
    Postgres,
}

/// A queue of `backend`; the database (if any) lives as long as the returned guard.
pub async fn queue(backend: Backend) -> (Arc<dyn Queue>, Option<TestDb>) {
    match backend {
        Backend::Memory => (Arc::new(MemoryQueue::new()), None),
        Backend::Postgres => {
            let db = TestDb::new().await;
            let q = db.queue().await;
            (q, Some(db))
        }
    }
}

/// Polls `f` every 20 ms until it returns true or `timeout` passes; returns whether it did.
pub async fn eventually<F, Fut>(timeout: Duration, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let end = Instant::now() + timeout;
    loop {
        if f().await {
            return true;
        }
        if Instant::now() > end {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
