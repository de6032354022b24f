//! [`CpuPool`]: where content processing runs (chunking, hashing, compression, encryption, decryption).
//!
//! At most `workers` closures run at once, each on one of tokio's blocking threads, so the async tasks
//! that send requests and the one writer that owns packs, bundles and the index never stall behind
//! CPU-bound work, and that work spreads over the cores. Callers wait their turn in FIFO order (tokio's
//! semaphore is fair), so a pool never reorders the work of one caller that awaits each job in turn.

use std::sync::Arc;

use tokio::sync::Semaphore;

/// A bounded pool for CPU-bound closures (see the module docs). Cheap to clone: clones share the slots.
#[derive(Clone, Debug)]
pub struct CpuPool {
    slots: Arc<Semaphore>,
    workers: usize,
}

impl CpuPool {
    /// A pool running at most `workers` closures at once (at least 1).
    pub fn new(workers: usize) -> CpuPool {
        let workers = workers.max(1);
        CpuPool { slots: Arc::new(Semaphore::new(workers)), workers }
    }

    /// The cores this process may use (1 if unknown): the default number of workers.
    pub fn cores() -> usize {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    }

    /// Closures run at once, at most.
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// Runs `f` on a blocking thread once a slot is free and returns its result. A panic in `f` is
    /// resumed in the caller.
    ///
    /// The slot is freed as soon as `f` returns, whether or not the caller polls again; but a caller
    /// that stops polling while it waits for a slot keeps the slot it is then given. So every caller must
    /// be a task that keeps polling (a spawned task, or one awaiting this call), never a future parked
    /// in a collection that is polled only now and then.
    pub async fn run<T, F>(&self, f: F) -> T
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let slot = self.slots.clone().acquire_owned().await.expect("the pool's semaphore is never closed");
        let job = move || {
            let out = f();
            drop(slot);
            out
        };
        match tokio::task::spawn_blocking(job).await {
            Ok(v) => v,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => panic!("a CPU pool job was cancelled: {e}"),
        }
    }

    /// `f` of every item, in order: the items are cut into up to `workers` runs of consecutive items,
    /// which run at once.
    pub async fn map<T, U, F>(&self, items: Vec<T>, f: F) -> Vec<U>
    where
        T: Send + 'static,
        U: Send + 'static,
        F: Fn(T) -> U + Send + Sync + 'static,
    {
        if items.is_empty() {
            return Vec::new();
        }
        let f = Arc::new(f);
        let per_run = items.len().div_ceil(self.workers);
        let mut runs: Vec<Vec<T>> = Vec::new();
        let mut items = items.into_iter().peekable();
        while items.peek().is_some() {
            runs.push(items.by_ref().take(per_run).collect());
        }
        let jobs = runs.into_iter().map(|run| {
            let f = f.clone();
            self.run(move || run.into_iter().map(|t| f(t)).collect::<Vec<U>>())
        });
        futures::future::join_all(jobs).await.into_iter().flatten().collect()
    }
}

impl Default for CpuPool {
    /// One worker per core.
    fn default() -> Self {
        CpuPool::new(CpuPool::cores())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn map_keeps_the_order_and_runs_on_at_most_the_workers() {
        let pool = CpuPool::new(3);
        let busy = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let most = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (b, m) = (busy.clone(), most.clone());
        let out = pool
            .map((0..100u64).collect(), move |i| {
                let now = b.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                m.fetch_max(now, std::sync::atomic::Ordering::SeqCst);
                std::thread::sleep(std::time::Duration::from_millis(1));
                b.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                i * 2
            })
            .await;
        assert_eq!(out, (0..100u64).map(|i| i * 2).collect::<Vec<_>>());
        assert!(most.load(std::sync::atomic::Ordering::SeqCst) <= 3);
        assert_eq!(pool.run(|| 7).await, 7);
    }
}
