//! The slots every pooled client (Postgres, Redis) shares: at most `size` connections to a
//! target at once — callers beyond that wait for a slot, they never fail for lack of one
//! — and the idle connections kept for the next caller.

use std::sync::Mutex;

use tokio::sync::{Semaphore, SemaphorePermit};

pub struct Slots<C> {
    permits: Semaphore,
    idle: Mutex<Vec<C>>,
}

impl<C> Slots<C> {
    pub fn new(size: usize) -> Slots<C> {
        Slots {
            permits: Semaphore::new(size.max(1)),
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Free slots now (for `Debug`).
    pub fn available(&self) -> usize {
        self.permits.available_permits()
    }

    /// A slot; waits while all are taken. `None` only if the pool was closed.
    pub async fn acquire(&self) -> Option<SemaphorePermit<'_>> {
        self.permits.acquire().await.ok()
    }

    /// The most recently returned idle connection that `usable` accepts; the unusable ones
    /// met on the way are dropped.
    pub fn take_idle(&self, usable: impl Fn(&C) -> bool) -> Option<C> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        while let Some(c) = idle.pop() {
            if usable(&c) {
                return Some(c);
            }
        }
        None
    }

    /// Keeps a connection for the next caller.
    pub fn put_back(&self, c: C) {
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).push(c);
    }
}
