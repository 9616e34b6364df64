//! The claim loop shared by both leased queues (inbound turns, outbox sends).
//!
//! One loop per queue claims as many rows as there are free worker slots in one statement and
//! runs each on its own task. Claiming in batches keeps the database's write path free: with
//! one claim per worker, every idle worker polled on its own and each turn paid for a claim
//! statement of its own. Per-conversation order is the claim query's business (only the
//! oldest open row of a sender or recipient is claimable), so rows of one batch never belong
//! to the same conversation.
use std::future::Future;
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

/// Claims and runs rows until `stop` turns true, then waits (bounded) for running tasks.
///
/// `claim(n)` claims up to `n` rows; `work(row)` handles one. `ready` is notified by whoever
/// writes new rows; the loop also notifies it when a task finishes, since that can make the
/// next row of the same conversation claimable.
pub async fn run<T, C, CF, W, WF>(
    name: &'static str,
    slots: usize,
    ready: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
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
    while !*stop.borrow() {
        let first = tokio::select! {
            permit = free.clone().acquire_owned() => permit,
            _ = stop.changed() => continue,
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
                let claimed = rows.len();
                for (row, permit) in rows.into_iter().zip(permits) {
                    let job = work(row);
                    let ready = ready.clone();
                    tokio::spawn(async move {
                        job.await;
                        drop(permit);
                        ready.notify_one();
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
