//! One async lock per TID, so that a purchase, its repeats, recovery and
//! the deposit task never work on the same record at once, while different
//! TIDs proceed in parallel. Idle locks are dropped.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use acd_core::entry::Tid;
use tokio::sync::OwnedMutexGuard;

#[derive(Default)]
pub struct TidLocks {
    map: Mutex<HashMap<Tid, Arc<tokio::sync::Mutex<()>>>>,
}

/// Held while working on one TID.
pub struct TidGuard<'a> {
    locks: &'a TidLocks,
    tid: Tid,
    guard: Option<OwnedMutexGuard<()>>,
}

impl TidLocks {
    pub async fn lock(&self, tid: Tid) -> TidGuard<'_> {
        let lock = {
            let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
            map.entry(tid).or_default().clone()
        };
        TidGuard {
            locks: self,
            tid,
            guard: Some(lock.lock_owned().await),
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

impl Drop for TidGuard<'_> {
    fn drop(&mut self) {
        self.guard.take();
        let mut map = self.locks.map.lock().unwrap_or_else(|e| e.into_inner());
        // Only the map holds it: nobody waits, so it can go.
        if map
            .get(&self.tid)
            .is_some_and(|l| Arc::strong_count(l) == 1)
        {
            map.remove(&self.tid);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    // A second locker of the same TID waits for the first; other TIDs do not; idle locks are dropped.
    #[tokio::test]
    async fn one_holder_per_tid() {
        let locks = Arc::new(TidLocks::default());
        let a = locks.lock(Tid([1; 16])).await;
        let _b = locks.lock(Tid([2; 16])).await;
        let l2 = locks.clone();
        let waiter = tokio::spawn(async move {
            let _g = l2.lock(Tid([1; 16])).await;
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished());
        drop(a);
        waiter.await.expect("joins");
        drop(_b);
        assert_eq!(locks.len(), 0);
    }
}
