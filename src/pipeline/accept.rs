//! Accepting a verified inbound message from any channel: the integration's allow list, then
//! one stored row per provider id. The bot turn runs later in [`super::turn`], so a slow bot
//! never makes the provider time out and retry, and a retry never makes a second turn.
use crate::app::AppState;
use crate::channel::InboundMessage;
use crate::domain::address::ChannelKind;
use crate::domain::allow_from;
use crate::metrics::Metrics;
use crate::store::channel::NewInbound;
use crate::store::integration::Integration;

/// What became of an inbound message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    /// Stored; a turn will answer it.
    New,
    /// Already stored (a provider retry): nothing more happens.
    Duplicate,
    /// The sender is not in the integration's `allowFrom`.
    Ignored,
}

/// Stores `message`, received on `channel`, for `integration`'s pipeline.
pub async fn inbound(
    state: &AppState,
    channel: &str,
    integration: &Integration,
    message: InboundMessage,
) -> Result<Accepted, sqlx::Error> {
    let sender = message.from.to_string();
    // In a thread, the allow list is about the person who wrote, not the thread.
    let person = message
        .author
        .as_ref()
        .map_or_else(|| sender.clone(), ToString::to_string);
    if !allow_from::allows(Some(&integration.allow_from), &person) {
        Metrics::inc(&state.metrics.webhooks_blocked);
        tracing::info!(integration = %integration.id, "sender not in allowFrom; ignored");
        return Ok(Accepted::Ignored);
    }
    let media = (!message.media.is_empty())
        .then(|| serde_json::to_string(&message.media).unwrap_or_default());
    let id = message.id.clone();
    let record = NewInbound {
        integration_id: integration.id.clone(),
        channel: channel.to_owned(),
        message_sid: message.id.0,
        sender: sender.clone(),
        recipient: message.to.to_string(),
        body: message.body,
        media,
        profile_name: message.profile_name,
    };
    // A WhatsApp message (in a thread: from a WhatsApp participant) opens the 24-hour window
    // for replies to its sender.
    let on_whatsapp =
        message.author.as_ref().unwrap_or(&message.from).channel() == ChannelKind::WhatsApp;
    if state.db.record_inbound(record).await? {
        if on_whatsapp {
            state
                .db
                .note_whatsapp_inbound(&integration.id, &sender, crate::domain::now_ms())
                .await?;
        }
        Metrics::inc(&state.metrics.webhooks_accepted);
        state.inbound_ready.notify_one();
        Ok(Accepted::New)
    } else {
        Metrics::inc(&state.metrics.webhooks_duplicate);
        tracing::info!(integration = %integration.id, id = %id, "duplicate webhook (provider retry); already recorded");
        Ok(Accepted::Duplicate)
    }
}
