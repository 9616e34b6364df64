//! Webhook inserts go first on SQLite's one writing connection.
//!
//! A webhook is answered only once its message is stored, so its insert is the one write whose
//! wait Twilio (and the person texting) sees. The connection's queue is first come, first
//! served, and at 1,000 messages/s a webhook insert queued behind the pipeline's writes (turn
//! batches, claims, sends, status callbacks) for milliseconds. Now the pipeline's writers step
//! aside while a webhook insert is waiting or running, for at most [`MAX_YIELD`] each time, so
//! the pipeline still moves under a flood of webhooks.
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Mutex, Notify, OwnedMutexGuard};

/// Longest a pipeline write waits for webhook inserts before it goes anyway.
const MAX_YIELD: Duration = Duration::from_millis(5);

/// Shared by the clones of one `Db`; inactive (never waits) on PostgreSQL, which has many
/// connections.
#[derive(Clone, Debug, Default)]
pub struct WriterPriority {
    active: bool,
    urgent: Arc<AtomicUsize>,
    clear: Arc<Notify>,
    pipeline: Arc<Mutex<()>>,
}

/// Held while an urgent write waits for or uses the connection.
pub struct Urgent(WriterPriority);

impl Drop for Urgent {
    fn drop(&mut self) {
        if self.0.urgent.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.clear.notify_waiters();
        }
    }
}

impl WriterPriority {
    pub fn new(active: bool) -> Self {
        Self {
            active,
            ..Self::default()
        }
    }

    /// Marks an urgent write until the guard is dropped.
    pub fn urgent(&self) -> Urgent {
        self.urgent.fetch_add(1, Ordering::AcqRel);
        Urgent(self.clone())
    }

    /// The pipeline's turn at the connection: one pipeline write at a time waits for it or
    /// holds it, then it lets pending webhook inserts go first (see [`Self::yield_to_urgent`]).
    /// The connection serves its waiters in order, so without the turn a webhook insert could
    /// queue behind every batcher's write (the one door, sends, status callbacks, channel log,
    /// slots, two claims); with it, behind one at most. Hold the guard until the write is done.
    pub async fn pipeline_turn(&self) -> Option<OwnedMutexGuard<()>> {
        if !self.active {
            return None;
        }
        let turn = self.pipeline.clone().lock_owned().await;
        self.yield_to_urgent().await;
        Some(turn)
    }

    /// Waits (at most [`MAX_YIELD`]) while an urgent write is pending.
    pub async fn yield_to_urgent(&self) {
        if !self.active {
            return;
        }
        let deadline = tokio::time::Instant::now() + MAX_YIELD;
        loop {
            let cleared = self.clear.notified();
            tokio::pin!(cleared);
            // Registered before the check, so a guard dropped in between still wakes us.
            cleared.as_mut().enable();
            if self.urgent.load(Ordering::Acquire) == 0 {
                return;
            }
            if tokio::time::timeout_at(deadline, cleared).await.is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_pipeline_write_waits_for_a_pending_webhook_insert() {
        let priority = WriterPriority::new(true);
        let guard = priority.urgent();
        let waiter = tokio::spawn({
            let p = priority.clone();
            async move { p.yield_to_urgent().await }
        });
        tokio::task::yield_now().await;
        assert!(
            !waiter.is_finished(),
            "it waits while the insert is pending"
        );
        drop(guard);
        tokio::time::timeout(Duration::from_secs(1), waiter)
            .await
            .expect("released when the insert is done")
            .expect("join");
    }

    #[tokio::test]
    async fn the_wait_is_bounded() {
        let priority = WriterPriority::new(true);
        let _guard = priority.urgent();
        let started = tokio::time::Instant::now();
        tokio::time::timeout(Duration::from_secs(5), priority.yield_to_urgent())
            .await
            .expect("goes anyway while the insert is still pending");
        assert!(started.elapsed() >= MAX_YIELD, "it did wait first");
    }

    #[tokio::test]
    async fn inactive_priority_never_waits() {
        let priority = WriterPriority::new(false);
        let _guard = priority.urgent();
        tokio::time::timeout(Duration::from_millis(100), priority.yield_to_urgent())
            .await
            .expect("no wait on PostgreSQL");
    }

    #[tokio::test]
    async fn one_pipeline_write_at_a_time_holds_the_turn() {
        let priority = WriterPriority::new(true);
        let first = priority.pipeline_turn().await;
        assert!(first.is_some(), "SQLite: the turn is taken");
        let second = tokio::spawn({
            let p = priority.clone();
            async move { p.pipeline_turn().await.is_some() }
        });
        tokio::task::yield_now().await;
        assert!(
            !second.is_finished(),
            "a second pipeline write waits while the first holds the turn"
        );
        drop(first);
        let taken = tokio::time::timeout(Duration::from_secs(1), second)
            .await
            .expect("the turn passes on when the first write is done")
            .expect("join");
        assert!(taken);
    }

    #[tokio::test]
    async fn inactive_priority_hands_out_no_turn() {
        let priority = WriterPriority::new(false);
        let _first = priority.pipeline_turn().await;
        let second = tokio::time::timeout(Duration::from_millis(100), priority.pipeline_turn())
            .await
            .expect("PostgreSQL's writes never wait for each other here");
        assert!(second.is_none());
    }
}
