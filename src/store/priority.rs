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
use tokio::sync::Notify;

/// Longest a pipeline write waits for webhook inserts before it goes anyway.
const MAX_YIELD: Duration = Duration::from_millis(5);

/// Shared by the clones of one `Db`; inactive (never waits) on PostgreSQL, which has many
/// connections.
#[derive(Clone, Debug, Default)]
pub struct WriterPriority {
    active: bool,
    urgent: Arc<AtomicUsize>,
    clear: Arc<Notify>,
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
}
