//! Nothing lost while down. Twilio gives up on an inbound webhook within 15 s, so a message
//! that arrives while Chatwire restarts (or while the network between them fails) may never
//! be delivered. On start and then every `CHATWIRE_BACKFILL_INTERVAL_MS`, each integration that
//! backfills (every one `setup` pointed at Chatwire) asks its channel for the messages people
//! sent since its resume point, and records those not yet stored, through the same acceptance
//! as a webhook (account, number, `allowFrom`, one row per MessageSid), dated when the
//! provider received them so that they are answered in their senders' order.
//!
//! Turns wait for the start pass (at most [`START_WAIT`]): a message lost while down is then
//! answered before the ones its sender wrote after the restart.
use super::accept::{self, Accepted};
use crate::app::AppState;
use crate::domain::now_ms;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Each pass looks this far behind where the previous one started: providers list a message
/// a moment after receiving it, and clocks differ.
pub const SLACK_MS: i64 = 60_000;
/// The furthest back a pass looks, however long Chatwire was down.
pub const MAX_LOOKBACK_MS: i64 = 24 * 3600 * 1000;
/// Longest turns wait for the start pass (a slow or unreachable provider must not stop them).
pub const START_WAIT: Duration = Duration::from_secs(10);

/// Open once the start pass is over or [`START_WAIT`] has passed.
#[derive(Debug)]
pub struct StartGate {
    passed: AtomicBool,
    deadline: Instant,
}

impl StartGate {
    pub fn new(wait: Duration) -> Arc<Self> {
        Arc::new(Self {
            passed: AtomicBool::new(false),
            deadline: Instant::now() + wait,
        })
    }

    pub fn open(&self) {
        self.passed.store(true, Ordering::Relaxed);
    }

    pub fn is_open(&self) -> bool {
        self.passed.load(Ordering::Relaxed) || Instant::now() >= self.deadline
    }
}

/// Runs a pass now, opens `gate`, then one pass every `interval` until `stop`.
pub async fn run(
    state: AppState,
    interval: Duration,
    gate: Arc<StartGate>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        match pass(&state).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                recorded = n,
                "backfill recorded inbound messages whose webhook never arrived"
            ),
            Err(err) => tracing::warn!(error = %err, "backfill pass failed"),
        }
        if !gate.is_open() {
            gate.open();
            state.inbound_ready.notify_one();
        }
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
    }
}

/// One pass over every integration that backfills; how many messages it recorded.
pub async fn pass(state: &AppState) -> anyhow::Result<usize> {
    let started = now_ms();
    let mut recorded = 0;
    for (id, since) in state.db.backfill_marks().await? {
        let Some(integration) = state.db.integration(&state.cipher, &id).await? else {
            continue;
        };
        let from = (since - SLACK_MS).max(started - MAX_LOOKBACK_MS);
        let mut complete = true;
        // Every channel is asked; one that cannot list answers nothing.
        for channel in state.channels.iter() {
            let received = match channel.received_since(&integration, from).await {
                Ok(received) => received,
                Err(err) => {
                    tracing::warn!(integration = %id, channel = channel.name(), error = %err, "backfill: listing received messages failed");
                    complete = false;
                    continue;
                }
            };
            let sids: Vec<String> = received.iter().map(|m| m.id.0.clone()).collect();
            let stored = state.db.stored_inbound(&id, &sids).await?;
            for message in received {
                if stored.contains(message.id.as_str()) {
                    continue;
                }
                // The listing answers our own credentials, but it is held to what a webhook
                // must show all the same.
                if message.account.as_deref() != integration.account_sid.as_deref() {
                    continue;
                }
                let sid = message.id.clone();
                if accept::inbound(state, channel.name(), &integration, message).await?
                    == Accepted::New
                {
                    recorded += 1;
                    tracing::info!(integration = %id, id = %sid, "backfill: recorded a message whose webhook never arrived");
                }
            }
        }
        // A failed listing is tried again from the same point next time.
        if complete {
            state.db.advance_backfill(&id, started).await?;
        }
    }
    Ok(recorded)
}
