//! [`Window`]: the client's limit on requests in flight, adapted to throttling (AIMD).
//!
//! It starts at [`super::ClientOptions::max_concurrency`], the most it ever allows. A throttled answer
//! (503 ServerBusy, or any answer with `Retry-After`) halves the limit (down to 1), at most once per
//! overload episode: only an attempt sent after the last halving can halve it again, and not before the
//! `Retry-After` of that halving has passed (the throttled answers of one episode arrive together).
//! Afterwards every `limit` answers without throttling add one, about one per round trip, up to the
//! maximum. A lower limit takes effect as attempts end: their slots are not handed out again.
//!
//! Files per second = requests in flight / latency, capped by the share's limit: against a share that
//! allows L requests per second at a latency of d seconds, the limit settles around L·d, oscillating
//! between half of it and a little more.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, SemaphorePermit};

/// How long a halving holds when the throttled answer names no `Retry-After`.
const HOLD_WITHOUT_RETRY_AFTER: Duration = Duration::from_secs(1);

/// The adaptive limit (see the module docs).
pub struct Window {
    slots: Semaphore,
    state: Mutex<State>,
    throttled: AtomicU64,
}

struct State {
    limit: usize,
    max: usize,
    lowest: usize,
    /// Slots to take out of service as attempts end (the limit fell below the slots handed out).
    to_retire: usize,
    /// Answers without throttling since the limit last changed.
    clean: usize,
    /// Halvings so far; an attempt remembers the count it was sent under.
    halvings: u64,
    /// No halving or growth before this (the `Retry-After` of the last halving).
    hold_until: Option<Instant>,
}

/// How an attempt ended, for the window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// An answer that was not throttling (success, or an error such as 404).
    Clean,
    /// 503, or an answer with `Retry-After` (its value, if it had one).
    Throttled(Option<Duration>),
    /// No answer (a transport failure): says nothing about the share's load.
    None,
}

/// One attempt's slot: give it back with [`Slot::end`]; dropped without, it counts as [`Answer::None`].
pub struct Slot<'a> {
    window: &'a Window,
    permit: Option<SemaphorePermit<'a>>,
    halvings: u64,
    answer: Answer,
}

impl Slot<'_> {
    /// Ends the attempt with `answer`.
    pub fn end(mut self, answer: Answer) {
        self.answer = answer;
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        if let Some(permit) = self.permit.take() {
            self.window.release(permit, self.halvings, self.answer);
        }
    }
}

impl Window {
    /// A window of `max` requests in flight (at least 1).
    pub fn new(max: usize) -> Window {
        let max = max.max(1);
        Window {
            slots: Semaphore::new(max),
            state: Mutex::new(State {
                limit: max,
                max,
                lowest: max,
                to_retire: 0,
                clean: 0,
                halvings: 0,
                hold_until: None,
            }),
            throttled: AtomicU64::new(0),
        }
    }

    /// Waits for a slot; `None` if the window is closed (never, in practice).
    pub async fn acquire(&self) -> Option<Slot<'_>> {
        let permit = self.slots.acquire().await.ok()?;
        let halvings = self.state.lock().expect("window state").halvings;
        Some(Slot { window: self, permit: Some(permit), halvings, answer: Answer::None })
    }

    /// The limit now.
    pub fn limit(&self) -> usize {
        self.state.lock().expect("window state").limit
    }

    /// The lowest limit so far.
    pub fn lowest(&self) -> usize {
        self.state.lock().expect("window state").lowest
    }

    /// Throttled answers so far.
    pub fn throttled(&self) -> u64 {
        self.throttled.load(Ordering::Relaxed)
    }

    fn release(&self, permit: SemaphorePermit<'_>, sent_under: u64, answer: Answer) {
        let mut st = self.state.lock().expect("window state");
        let now = Instant::now();
        let holding = st.hold_until.is_some_and(|t| now < t);
        match answer {
            Answer::Throttled(after) => {
                self.throttled.fetch_add(1, Ordering::Relaxed);
                if sent_under == st.halvings && !holding {
                    let new = (st.limit / 2).max(1);
                    st.to_retire += st.limit - new;
                    st.limit = new;
                    st.lowest = st.lowest.min(new);
                    st.clean = 0;
                    st.halvings += 1;
                    st.hold_until = Some(now + after.unwrap_or(HOLD_WITHOUT_RETRY_AFTER));
                }
            }
            Answer::Clean if !holding && st.limit < st.max => {
                st.clean += 1;
                if st.clean >= st.limit {
                    st.clean = 0;
                    st.limit += 1;
                    if st.to_retire > 0 {
                        st.to_retire -= 1;
                    } else {
                        self.slots.add_permits(1);
                    }
                }
            }
            Answer::Clean | Answer::None => {}
        }
        if st.to_retire > 0 {
            st.to_retire -= 1;
            permit.forget();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn throttling_halves_once_per_episode_and_clean_answers_grow_it_back() {
        let w = Window::new(8);
        // Eight attempts in flight; all are throttled: one halving.
        let slots: Vec<Slot> =
            futures::future::join_all((0..8).map(|_| w.acquire())).await.into_iter().flatten().collect();
        for s in slots {
            s.end(Answer::Throttled(Some(Duration::ZERO)));
        }
        assert_eq!((w.limit(), w.lowest(), w.throttled()), (4, 4, 8));
        // Only four slots are handed out now.
        let four: Vec<Slot> =
            futures::future::join_all((0..4).map(|_| w.acquire())).await.into_iter().flatten().collect();
        assert!(w.slots.try_acquire().is_err());
        // A throttle of an attempt sent after the halving halves again.
        let mut four = four.into_iter();
        four.next().unwrap().end(Answer::Throttled(None));
        assert_eq!(w.limit(), 2);
        // Within the hold (no Retry-After: one second), nothing changes.
        four.next().unwrap().end(Answer::Clean);
        assert_eq!(w.limit(), 2);
        drop(four);
        // After the hold, `limit` clean answers add one.
        w.state.lock().unwrap().hold_until = None;
        for _ in 0..2 {
            w.acquire().await.unwrap().end(Answer::Clean);
        }
        assert_eq!(w.limit(), 3);
        let three: Vec<Slot> =
            futures::future::join_all((0..3).map(|_| w.acquire())).await.into_iter().flatten().collect();
        assert!(w.slots.try_acquire().is_err(), "exactly the limit is handed out");
        drop(three);
    }
}
