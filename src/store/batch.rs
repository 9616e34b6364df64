//! Group commit: the writes of many concurrent callers reach the database together.
//!
//! On SQLite every write goes through one connection, and each statement costs a hand-off to
//! that connection's thread and back whatever its size, so a statement that writes sixty rows
//! costs little more than one that writes one. A [`Batcher`] queues its callers' inputs and,
//! as soon as the previous batch is written, writes everything queued meanwhile as the next
//! batch. Under light load a batch holds one input and nothing waits; under heavy load batches
//! grow by themselves. PostgreSQL gains too: fewer round trips and fewer commits.
use std::fmt;
use std::future::Future;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

type Reply<O> = oneshot::Sender<Result<O, sqlx::Error>>;

/// A queue of inputs of one kind, written `max` at a time by `run`.
pub struct Batcher<I, O> {
    queue: mpsc::Sender<(I, Reply<O>)>,
}

impl<I, O> Clone for Batcher<I, O> {
    fn clone(&self) -> Self {
        Self {
            queue: self.queue.clone(),
        }
    }
}

impl<I, O> fmt::Debug for Batcher<I, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Batcher")
    }
}

impl<I, O> Batcher<I, O>
where
    I: Clone + Send + 'static,
    O: Send + 'static,
{
    /// Starts the writing task. `run` gets a batch and returns one output per input, in order.
    /// When a batch of several fails, its inputs are written again one by one, so one bad
    /// input fails alone rather than taking its batch-mates down with it. The task ends when
    /// the last clone of the batcher is dropped.
    pub fn spawn<F, Fut>(max: usize, run: F) -> Self
    where
        F: Fn(Vec<I>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Vec<O>, sqlx::Error>> + Send + 'static,
    {
        Self::spawn_lingering(max, Duration::ZERO, run)
    }

    /// As [`Self::spawn`], but a batch that is not full waits `linger` after its first input
    /// for more. For writes nobody waits on eagerly (the channel log, status callbacks): at a
    /// low rate each would otherwise be a statement of its own.
    pub fn spawn_lingering<F, Fut>(max: usize, linger: Duration, run: F) -> Self
    where
        F: Fn(Vec<I>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Vec<O>, sqlx::Error>> + Send + 'static,
    {
        let max = max.max(1);
        let (queue, mut rx) = mpsc::channel::<(I, Reply<O>)>(max * 16);
        tokio::spawn(async move {
            let mut pending = Vec::with_capacity(max);
            while rx.recv_many(&mut pending, max).await > 0 {
                if !linger.is_zero() && pending.len() < max {
                    tokio::time::sleep(linger).await;
                    while pending.len() < max {
                        match rx.try_recv() {
                            Ok(more) => pending.push(more),
                            Err(_) => break,
                        }
                    }
                }
                let (inputs, replies): (Vec<I>, Vec<Reply<O>>) = pending.drain(..).unzip();
                if inputs.len() > 1 {
                    if let Ok(outputs) = checked(run(inputs.clone()).await, inputs.len()) {
                        for (output, reply) in outputs.into_iter().zip(replies) {
                            let _ = reply.send(Ok(output));
                        }
                        continue;
                    }
                }
                for (input, reply) in inputs.into_iter().zip(replies) {
                    let one = checked(run(vec![input]).await, 1)
                        .and_then(|out| out.into_iter().next().ok_or_else(wrong_count));
                    let _ = reply.send(one);
                }
            }
        });
        Self { queue }
    }

    /// Queues `input` and waits until its batch is written.
    pub async fn submit(&self, input: I) -> Result<O, sqlx::Error> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send((input, reply))
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

fn checked<O>(result: Result<Vec<O>, sqlx::Error>, n: usize) -> Result<Vec<O>, sqlx::Error> {
    match result {
        Ok(outputs) if outputs.len() == n => Ok(outputs),
        Ok(_) => Err(wrong_count()),
        Err(err) => Err(err),
    }
}

fn wrong_count() -> sqlx::Error {
    sqlx::Error::Protocol("a batch write returned the wrong number of results".into())
}

fn stopped() -> sqlx::Error {
    sqlx::Error::PoolClosed
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[tokio::test]
    async fn concurrent_inputs_share_batches_and_get_their_own_outputs() {
        let batches = Arc::new(AtomicUsize::new(0));
        let counted = batches.clone();
        let doubler = Batcher::spawn(64, move |inputs: Vec<u32>| {
            counted.fetch_add(1, Ordering::SeqCst);
            async move {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                Ok(inputs.into_iter().map(|i| i * 2).collect())
            }
        });
        let calls: Vec<_> = (0..100u32)
            .map(|i| {
                let d = doubler.clone();
                tokio::spawn(async move { (i, d.submit(i).await) })
            })
            .collect();
        for call in calls {
            let (i, out) = call.await.expect("join");
            assert_eq!(out.expect("written"), i * 2);
        }
        assert!(
            batches.load(Ordering::SeqCst) < 100,
            "100 concurrent inputs were written in fewer than 100 batches"
        );
    }

    /// Inputs 10 ms apart, written by a batcher that lingers 50 ms and by one that does not.
    async fn batches_for_spaced_inputs(linger: Duration) -> usize {
        let batches = Arc::new(AtomicUsize::new(0));
        let counted = batches.clone();
        let writer = Batcher::spawn_lingering(64, linger, move |inputs: Vec<u32>| {
            counted.fetch_add(1, Ordering::SeqCst);
            async move { Ok(inputs) }
        });
        let mut calls = Vec::new();
        for i in 0..5u32 {
            let w = writer.clone();
            calls.push(tokio::spawn(async move { (i, w.submit(i).await) }));
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        for call in calls {
            let (i, out) = call.await.expect("join");
            assert_eq!(out.expect("written"), i, "each caller gets its own output");
        }
        batches.load(Ordering::SeqCst)
    }

    #[tokio::test(start_paused = true)]
    async fn a_lingering_batcher_gathers_inputs_that_arrive_apart() {
        assert_eq!(batches_for_spaced_inputs(Duration::ZERO).await, 5);
        assert_eq!(
            batches_for_spaced_inputs(Duration::from_millis(50)).await,
            1
        );
    }

    #[tokio::test]
    async fn a_bad_input_fails_alone() {
        let writer = Batcher::spawn(64, |inputs: Vec<u32>| async move {
            if inputs.contains(&13) {
                Err(sqlx::Error::Protocol("13 is refused".into()))
            } else {
                Ok(inputs)
            }
        });
        let calls: Vec<_> = (10..20u32)
            .map(|i| {
                let w = writer.clone();
                tokio::spawn(async move { (i, w.submit(i).await) })
            })
            .collect();
        for call in calls {
            let (i, out) = call.await.expect("join");
            match i {
                13 => assert!(out.is_err(), "the bad input fails"),
                _ => assert_eq!(out.expect("the others are written"), i),
            }
        }
    }
}
