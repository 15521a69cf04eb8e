//! A fair queue in front of each upstream: at most `capacity` requests run at once, and when
//! requests wait, free slots go to the waiting agents in turn, so one agent flooding a GPU
//! cannot starve the others.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::oneshot;

struct Inner {
    capacity: usize,
    running: usize,
    /// Agents with waiting requests, in the order they get the next slots.
    turn: VecDeque<String>,
    waiting: HashMap<String, VecDeque<oneshot::Sender<Permit>>>,
}

/// The queue of one upstream.
pub struct FairQueue {
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for FairQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (running, waiting) = self.load();
        f.debug_struct("FairQueue")
            .field("running", &running)
            .field("waiting", &waiting)
            .finish()
    }
}

/// A running slot; dropping it hands the slot to the next agent in turn.
pub struct Permit {
    queue: Option<Arc<FairQueue>>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let Some(q) = self.queue.take() {
            q.release();
        }
    }
}

impl FairQueue {
    /// A queue running at most `capacity` requests at once.
    pub fn new(capacity: usize) -> Arc<Self> {
        Arc::new(Self {
            inner: Mutex::new(Inner {
                capacity: capacity.max(1),
                running: 0,
                turn: VecDeque::new(),
                waiting: HashMap::new(),
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Counters and queues only; a panic elsewhere cannot leave them half-updated.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Requests running and waiting now.
    pub fn load(&self) -> (usize, usize) {
        let i = self.lock();
        (i.running, i.waiting.values().map(VecDeque::len).sum())
    }

    /// Wait for a slot for a request of `agent`.
    pub async fn acquire(self: &Arc<Self>, agent: &str) -> Permit {
        let rx = {
            let mut i = self.lock();
            if i.running < i.capacity && i.turn.is_empty() {
                i.running += 1;
                return Permit {
                    queue: Some(self.clone()),
                };
            }
            let (tx, rx) = oneshot::channel();
            let q = i.waiting.entry(agent.to_string()).or_default();
            if q.is_empty() {
                i.turn.push_back(agent.to_string());
            }
            if let Some(q) = i.waiting.get_mut(agent) {
                q.push_back(tx);
            }
            rx
        };
        match rx.await {
            Ok(p) => p,
            // Unreachable in practice: senders are only dropped after a send.
            Err(_) => Box::pin(self.acquire(agent)).await,
        }
    }

    /// A slot came free: give it to the next agent in turn (skipping abandoned waiters).
    fn release(self: &Arc<Self>) {
        let mut i = self.lock();
        loop {
            let Some(agent) = i.turn.pop_front() else {
                i.running -= 1;
                return;
            };
            let Some(q) = i.waiting.get_mut(&agent) else {
                continue;
            };
            let next = q.pop_front();
            let more = !q.is_empty();
            if more {
                i.turn.push_back(agent.clone());
            } else {
                i.waiting.remove(&agent);
            }
            let Some(tx) = next else { continue };
            if tx.is_closed() {
                continue;
            }
            // The running count stays: the slot moves to the next request. If that waiter
            // vanished meanwhile, the permit comes back through its Drop.
            let permit = Permit {
                queue: Some(self.clone()),
            };
            drop(i);
            if let Err(p) = tx.send(permit) {
                drop(p);
            }
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_flooding_agent_does_not_starve_another() {
        let q = FairQueue::new(1);
        let order = Arc::new(Mutex::new(Vec::new()));
        let first = q.acquire("a").await;
        let mut tasks = Vec::new();
        for i in 0..10 {
            let (q, order) = (q.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                let _p = q.acquire("a").await;
                order.lock().unwrap().push(format!("a{i}"));
                tokio::time::sleep(Duration::from_millis(2)).await;
            }));
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let (q2, order2) = (q.clone(), order.clone());
        tasks.push(tokio::spawn(async move {
            let _p = q2.acquire("b").await;
            order2.lock().unwrap().push("b".to_string());
        }));
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert_eq!(q.load(), (1, 11));
        drop(first);
        for t in tasks {
            t.await.unwrap();
        }
        let order = order.lock().unwrap().clone();
        let b_at = order.iter().position(|x| x == "b").unwrap();
        assert!(
            b_at <= 1,
            "b must get the second slot at the latest: {order:?}"
        );
        assert_eq!(q.load(), (0, 0));
    }

    #[tokio::test]
    async fn abandoned_waiters_do_not_leak_slots() {
        let q = FairQueue::new(1);
        let p = q.acquire("a").await;
        let waiting = tokio::spawn({
            let q = q.clone();
            async move { q.acquire("b").await }
        });
        tokio::time::sleep(Duration::from_millis(5)).await;
        waiting.abort();
        let _ = waiting.await;
        drop(p);
        let _again = tokio::time::timeout(Duration::from_secs(1), q.acquire("c"))
            .await
            .expect("the slot must be free again");
        assert_eq!(q.load(), (1, 0));
    }
}
