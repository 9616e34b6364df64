//! Chatwire's session and the Conversation's state agree: when a session's time is up, its
//! Conversation is closed (or made inactive, per `sessionEnd`) on Twilio, so the person's next
//! message auto-creates a new one and starts a new session. The other direction (closed on
//! Twilio's side) arrives as an `onConversationStateUpdated` event. Every replica runs this
//! loop; ending the same session twice is harmless (a closed Conversation stays closed).
use super::TwilioConversations;
use crate::app::AppState;
use crate::channel::ThreadEnd;
use crate::domain::address::Address;
use crate::domain::now_ms;
use std::time::Duration;
use tokio::sync::watch;

/// How often idle sessions are looked for.
const EVERY: Duration = Duration::from_secs(1);
/// Sessions ended per look.
const BATCH: i64 = 100;

/// Runs until `stop` turns true.
pub async fn run(state: AppState, stop: watch::Receiver<bool>) {
    crate::dispatch::every("ending idle Conversations", EVERY, stop, || tick(&state)).await;
}

/// One look: every idle session's Conversation is ended on Twilio, then the session.
pub async fn tick(state: &AppState) -> anyhow::Result<()> {
    let Some(channel) = state.channels.get(TwilioConversations::NAME) else {
        return Ok(());
    };
    let idle = state
        .db
        .idle_threads(now_ms(), state.config.session_timeout_ms, BATCH)
        .await?;
    for thread in idle {
        let Some(integration) = state
            .db
            .integration(&state.cipher, &thread.integration_id)
            .await?
        else {
            continue;
        };
        let how = match integration
            .conversations
            .as_ref()
            .map(|c| c.session_end.as_str())
        {
            Some("inactive") => ThreadEnd::Deactivate,
            _ => ThreadEnd::Close,
        };
        let Ok(address) = Address::parse(&thread.address) else {
            continue;
        };
        match channel.end_thread(&integration, &address, how).await {
            Ok(()) => {
                if state.db.end_idle_session(&thread).await? {
                    tracing::info!(integration = %integration.id, thread = %address, "session over; Conversation ended on Twilio");
                }
            }
            // Gone or closed for good on Twilio's side: nothing left to end there.
            Err(err @ crate::channel::SendError::Permanent { .. }) => {
                tracing::warn!(integration = %integration.id, thread = %address, error = %err, "could not end the Conversation; ending the session anyway");
                state.db.end_idle_session(&thread).await?;
            }
            Err(err) => {
                tracing::warn!(integration = %integration.id, thread = %address, error = %err, "could not end the Conversation; trying again");
            }
        }
    }
    Ok(())
}
