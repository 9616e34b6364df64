//! The inbound path and the workers, by job:
//!
//! * [`accept`]: a verified message from any channel is stored once per provider id, before the
//!   provider gets its answer.
//! * [`turn`]: one claimed message start to finish (keywords, session, bot, one write);
//!   [`burst`]: quick messages of one person folded into one turn.
//! * [`render`]: a reply's texts become stored messages and outbox parts for its channel.
//! * [`backfill`]: messages whose webhook never arrived, found by asking the provider.
//! * this module: both claim loops (turns and deliveries) and the lease keeping they share.
pub mod accept;
pub mod backfill;
pub mod burst;
pub mod compliance;
pub mod held;
pub mod render;
pub mod turn;

use crate::app::AppState;
use crate::domain::now_ms;
use crate::store::channel::ClaimQueue;
use std::future::Future;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How long a claimed message stays ours without a renewal. A live worker renews it every
/// third of this for as long as the turn takes, so this bounds only how long the messages of a
/// worker that died (kill -9, a lost replica) wait before another worker takes them over.
pub const LEASE_MS: i64 = 15_000;

/// Starts the backfill, the turn loop and the delivery loop.
pub fn spawn_workers(state: AppState, stop: watch::Receiver<bool>) -> Vec<JoinHandle<()>> {
    let mut workers = Vec::new();
    let gate = match state.config.backfill_interval_ms {
        0 => backfill::StartGate::new(Duration::ZERO),
        every => {
            let gate = backfill::StartGate::new(backfill::START_WAIT);
            workers.push(tokio::spawn(backfill::run(
                state.clone(),
                Duration::from_millis(every),
                gate.clone(),
                stop.clone(),
            )));
            gate
        }
    };
    let turns = {
        let (state, db) = (state.clone(), state.db.clone());
        tokio::spawn(crate::dispatch::run(
            "inbound",
            state.config.workers,
            state.inbound_ready.clone(),
            stop.clone(),
            state.liveness.inbound.clone(),
            move |n| {
                let (db, gate) = (db.clone(), gate.clone());
                async move {
                    // Until the start backfill is done, what it records could precede what is
                    // stored already.
                    if !gate.is_open() {
                        return Ok(Vec::new());
                    }
                    db.claim_inbound(LEASE_MS, n).await
                }
            },
            move |inbound| {
                let state = state.clone();
                async move {
                    let (db, id, token) = (
                        state.db.clone(),
                        inbound.id.clone(),
                        inbound.claim_token.clone(),
                    );
                    let renew = move |until| {
                        let (db, id, token) = (db.clone(), id.clone(), token.clone());
                        async move {
                            db.renew_claim(ClaimQueue::Inbound, &id, &token, until)
                                .await
                        }
                    };
                    holding(LEASE_MS, renew, turn::run(&state, inbound)).await
                }
            },
        ))
    };
    let clock = tokio::spawn(crate::handoff::sweep::run(state.clone(), stop.clone()));
    let threads = tokio::spawn(crate::channel::conversations::lifecycle::run(
        state.clone(),
        stop.clone(),
    ));
    let sends = {
        let db = state.db.clone();
        tokio::spawn(crate::dispatch::run(
            "outbox",
            state.config.send_workers.max(1),
            state.outbox_ready.clone(),
            stop.clone(),
            state.liveness.outbox.clone(),
            move |n| {
                let db = db.clone();
                async move { db.claim_outbox(crate::outbox::LEASE_MS, n).await }
            },
            move |row| {
                let state = state.clone();
                async move {
                    let (db, id, token) =
                        (state.db.clone(), row.id.clone(), row.claim_token.clone());
                    let renew = move |until| {
                        let (db, id, token) = (db.clone(), id.clone(), token.clone());
                        async move { db.renew_claim(ClaimQueue::Outbox, &id, &token, until).await }
                    };
                    holding(
                        crate::outbox::LEASE_MS,
                        renew,
                        crate::outbox::deliver(&state, row),
                    )
                    .await
                }
            },
        ))
    };
    workers.extend([turns, sends, clock, threads]);
    workers
}

/// Runs `work` while renewing its claim every third of `lease_ms`: a live worker keeps its
/// claim however long a bot turn or a provider call takes, and the claim of a worker that died
/// expires within one lease. Renewal stops once the claim is found lost (the final write of
/// `work` is then refused by its claim token).
pub async fn holding<T, F>(
    lease_ms: i64,
    renew: impl Fn(i64) -> F,
    work: impl Future<Output = T>,
) -> T
where
    F: Future<Output = Result<bool, sqlx::Error>>,
{
    let every = Duration::from_millis((lease_ms / 3).max(1) as u64);
    let renewing = async {
        loop {
            tokio::time::sleep(every).await;
            match renew(now_ms() + lease_ms).await {
                Ok(true) => {}
                Ok(false) => return,
                Err(err) => tracing::warn!(error = %err, "renewing a claim's lease failed"),
            }
        }
    };
    tokio::pin!(work);
    tokio::select! {
        out = &mut work => out,
        () = renewing => work.await,
    }
}
