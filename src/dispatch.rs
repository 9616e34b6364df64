//! The claim loop shared by both leased queues (inbound turns, outbox sends).
//!
//! One loop per queue claims as many rows as there are free worker slots in one statement and
//! runs each on its own task. Claiming in batches keeps the database's write path free: with
//! one claim per worker, every idle worker polled on its own and each turn paid for a claim
//! statement of its own. Per-conversation order is the claim query's business (only the
//! oldest open row of a sender or recipient is claimable), so rows of one batch never belong
//! to the same conversation.
use std::future::Future;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Notify, Semaphore};

/// Most rows claimed by one statement.
const MAX_BATCH: usize = 64;
/// How often an idle loop looks for work nobody announced (due retries, timers, expired
/// leases of a dead replica, rows written by another replica).
const IDLE_POLL: Duration = Duration::from_millis(200);
/// How long a stopping loop waits for its running tasks.
const DRAIN: Duration = Duration::from_secs(10);

/// Longest a healthy loop goes without a beat: it beats at least every [`IDLE_POLL`] while
/// waiting and after every successful claim; a claim that fails or hangs stops the beats.
pub const STALE_AFTER_MS: i64 = 15_000;

/// When each claim loop last showed it works, for readiness.
#[derive(Debug)]
pub struct Liveness {
    pub inbound: Arc<AtomicI64>,
    pub outbox: Arc<AtomicI64>,
}

impl Default for Liveness {
    fn default() -> Self {
        let now = crate::domain::now_ms();
        Self {
            inbound: Arc::new(AtomicI64::new(now)),
            outbox: Arc::new(AtomicI64::new(now)),
        }
    }
}

impl Liveness {
    /// The loops that have not beaten for [`STALE_AFTER_MS`].
    pub fn stale(&self, now_ms: i64) -> Vec<&'static str> {
        [("inbound", &*self.inbound), ("outbox", &*self.outbox)]
            .into_iter()
            .filter(|(_, beat)| now_ms - beat.load(Ordering::Relaxed) > STALE_AFTER_MS)
            .map(|(name, _)| name)
            .collect()
    }
}

/// Claims and runs rows until `stop` turns true, then waits (bounded) for running tasks.
///
/// `claim(n)` claims up to `n` rows; `work(row)` handles one. `ready` is notified by whoever
/// writes new rows, and by the store when a finished row makes the next row of the same
/// conversation claimable (`Db::inbound_claimable`, `Db::outbox_claimable`). A finished task
/// does not wake the loop itself: it cannot know whether anything waits, and at a low rate
/// the claim it made found nothing, one needless write per message and queue.
pub async fn run<T, C, CF, W, WF>(
    name: &'static str,
    slots: usize,
    ready: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
    beat: Arc<AtomicI64>,
    claim: C,
    work: W,
) where
    T: Send + 'static,
    C: Fn(usize) -> CF,
    CF: Future<Output = Result<Vec<T>, sqlx::Error>>,
    W: Fn(T) -> WF,
    WF: Future<Output = ()> + Send + 'static,
{
    let slots = slots.max(1);
    let free = Arc::new(Semaphore::new(slots));
    let alive = || beat.store(crate::domain::now_ms(), Ordering::Relaxed);
    while !*stop.borrow() {
        let first = tokio::select! {
            permit = free.clone().acquire_owned() => permit,
            _ = stop.changed() => continue,
            // Every slot busy (slow turns) is not a dead loop.
            _ = tokio::time::sleep(IDLE_POLL) => {
                alive();
                continue;
            }
        };
        let Ok(first) = first else { break };
        let mut permits = vec![first];
        while permits.len() < MAX_BATCH {
            match free.clone().try_acquire_owned() {
                Ok(p) => permits.push(p),
                Err(_) => break,
            }
        }
        let wanted = permits.len();
        match claim(wanted).await {
            Ok(rows) => {
                alive();
                let claimed = rows.len();
                for (row, permit) in rows.into_iter().zip(permits) {
                    // Boxed: a turn's future is tens of kilobytes, and the task would copy it
                    // whole when spawned and again when it ends; a box is copied once.
                    let job = Box::pin(work(row));
                    tokio::spawn(async move {
                        job.await;
                        drop(permit);
                    });
                }
                if claimed < wanted {
                    // Nothing more is claimable now: wait until something changes.
                    tokio::select! {
                        _ = ready.notified() => {}
                        _ = tokio::time::sleep(IDLE_POLL) => {}
                        _ = stop.changed() => {}
                    }
                }
            }
            Err(err) => {
                drop(permits);
                tracing::error!(error = %err, queue = name, "claiming work failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
    // Running tasks finish their row (its lease would otherwise hold it until it expires).
    let all = u32::try_from(slots).unwrap_or(u32::MAX);
    if tokio::time::timeout(DRAIN, free.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!(
            queue = name,
            "stopped with tasks still running; their rows are claimed again after the lease"
        );
    }
}

/// Runs `tick` every `period` until `stop` turns true: the periodic background work (the
/// hand-off clock, the Conversations lifecycle). A failed tick is logged as `what` and tried
/// again at the next one.
pub async fn every<F, Fut>(
    what: &'static str,
    period: Duration,
    mut stop: watch::Receiver<bool>,
    mut tick: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    loop {
        if let Err(err) = tick().await {
            tracing::warn!(error = format!("{err:#}"), "{what} failed; trying again");
        }
        tokio::select! {
            _ = tokio::time::sleep(period) => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loop_without_a_beat_for_too_long_is_stale() {
        let liveness = Liveness::default();
        let now = crate::domain::now_ms();
        assert!(liveness.stale(now).is_empty());
        liveness
            .outbox
            .store(now - STALE_AFTER_MS - 1, Ordering::Relaxed);
        assert_eq!(liveness.stale(now), vec!["outbox"]);
    }

    #[tokio::test]
    async fn an_idle_loop_keeps_beating_and_a_failing_claim_does_not() {
        let liveness = Arc::new(Liveness::default());
        let (stop_tx, stop) = watch::channel(false);
        let long_ago = crate::domain::now_ms() - 60_000;
        liveness.inbound.store(long_ago, Ordering::Relaxed);
        liveness.outbox.store(long_ago, Ordering::Relaxed);
        let idle = tokio::spawn(run(
            "inbound",
            2,
            Arc::new(Notify::new()),
            stop.clone(),
            liveness.inbound.clone(),
            |_| async { Ok(Vec::<()>::new()) },
            |_| async {},
        ));
        let failing = tokio::spawn(run(
            "outbox",
            2,
            Arc::new(Notify::new()),
            stop,
            liveness.outbox.clone(),
            |_| async { Err::<Vec<()>, _>(sqlx::Error::PoolTimedOut) },
            |_| async {},
        ));
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(liveness.stale(crate::domain::now_ms()), vec!["outbox"]);
        let _ = stop_tx.send(true);
        let _ = idle.await;
        let _ = failing.await;
    }

    /// A loop that finds one row, then nothing: the claims it makes within 100 ms (less than
    /// one idle poll), before and after `ready` is notified 50 ms in.
    #[tokio::test(start_paused = true)]
    async fn a_finished_row_does_not_wake_the_loop_an_announcement_does() {
        let claims = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let ready = Arc::new(Notify::new());
        let (stop_tx, stop) = watch::channel(false);
        let counted = claims.clone();
        let looping = tokio::spawn(run(
            "inbound",
            4,
            ready.clone(),
            stop,
            Arc::new(AtomicI64::new(0)),
            move |_| {
                let first = counted.fetch_add(1, Ordering::SeqCst) == 0;
                async move { Ok(if first { vec![()] } else { Vec::new() }) }
            },
            |_| async {},
        ));
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(
            claims.load(Ordering::SeqCst),
            1,
            "the finished task made the loop claim again"
        );
        ready.notify_one();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(
            claims.load(Ordering::SeqCst),
            2,
            "an announced row is claimed at once, not at the idle poll"
        );
        let _ = stop_tx.send(true);
        let _ = looping.await;
    }
}
