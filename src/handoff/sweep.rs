//! The queue's clock: people waiting too long go back to the bot, conversations whose agent
//! went silent go back to the queue (first in line), and people queued hear when their place
//! changes meaningfully. Every replica runs it; the compare-and-set moves make each change
//! happen once.
use super::desk::{give_back, notice};
use super::{labels_of, route_of, texts};
use crate::app::AppState;
use crate::domain::now_ms;
use crate::store::handoff::{HandoffFilter, HandoffMove, HandoffState};
use crate::store::outgoing::Recorded;
use std::time::Duration;
use tokio::sync::watch;

/// How often the clock looks.
const EVERY: Duration = Duration::from_secs(2);

/// Runs until `stop` turns true.
pub async fn run(state: AppState, stop: watch::Receiver<bool>) {
    crate::dispatch::every("hand-off clock", EVERY, stop, || tick(&state)).await;
}

/// One look at the clock.
pub async fn tick(state: &AppState) -> anyhow::Result<()> {
    let now = now_ms();
    let db = &state.db;
    let mut touched = Vec::new();
    for h in db
        .handoffs_idle(HandoffState::Queued, now - state.config.queue_timeout_ms)
        .await?
    {
        let labels = labels_of(state, h.bot_id.as_deref()).await;
        let Ok(route) = route_of(&h) else { continue };
        let out = give_back(
            &h,
            &route,
            vec![labels.get("queue_timeout")],
            "No agent took the conversation in time",
            HandoffState::Returned,
        );
        if db.record_outgoing(out).await? == Recorded::Written {
            touched.push(h.integration_id.clone());
        }
    }
    for h in db
        .handoffs_idle(
            HandoffState::LeavingMessage,
            now - state.config.queue_timeout_ms,
        )
        .await?
    {
        let Ok(route) = route_of(&h) else { continue };
        let out = give_back(
            &h,
            &route,
            Vec::new(),
            "The person left no message for the team",
            HandoffState::Returned,
        );
        if db.record_outgoing(out).await? == Recorded::Written {
            touched.push(h.integration_id.clone());
        }
    }
    for h in db
        .handoffs_idle(
            HandoffState::Agent,
            now - state.config.agent_idle_timeout_ms,
        )
        .await?
    {
        let labels = labels_of(state, h.bot_id.as_deref()).await;
        let Ok(route) = route_of(&h) else { continue };
        let mut change = HandoffMove::new(&h.id, &[HandoffState::Agent], HandoffState::Queued);
        change.expect_agent = h.agent_id.clone();
        change.set_agent = Some(None);
        change.told_ahead = Some(0);
        let out = notice(&h, &route, vec![labels.get("agent_left")], change);
        if db.record_outgoing(out).await? == Recorded::Written {
            touched.push(h.integration_id.clone());
        }
    }
    touched.extend(db.integrations_with_queue().await?);
    touched.sort();
    touched.dedup();
    for integration in touched {
        announce_positions(state, &integration).await?;
    }
    Ok(())
}

/// Tells each person queued for an integration their new place, when it changed meaningfully.
pub async fn announce_positions(state: &AppState, integration_id: &str) -> anyhow::Result<()> {
    let queue = state
        .db
        .handoffs(&HandoffFilter {
            states: vec![HandoffState::Queued],
            integrations: Some(vec![integration_id.to_owned()]),
            agent_id: None,
            limit: 500,
        })
        .await?;
    for (ahead, h) in queue.iter().enumerate() {
        let ahead = ahead as i64;
        if h.told_ahead.is_some() && !texts::worth_telling(h.told_ahead, ahead) {
            continue;
        }
        if h.told_ahead.is_none() && ahead > 0 {
            // Entered while nobody was ahead and never told: nothing changed for them.
            continue;
        }
        let labels = labels_of(state, h.bot_id.as_deref()).await;
        let Ok(route) = route_of(h) else { continue };
        let mut change = HandoffMove::new(&h.id, &[HandoffState::Queued], HandoffState::Queued);
        change.expect_told = Some(h.told_ahead);
        change.told_ahead = Some(ahead);
        change.touch = false;
        // Keep the time it entered: the queue is first come, first served.
        let out = notice(h, &route, vec![texts::position(&labels, ahead)], change);
        state.db.record_outgoing(out).await?;
    }
    super::changed(state);
    Ok(())
}
