//! Accepting a verified inbound message from any channel: the integration's allow list, then
//! one stored row per provider id. The bot turn runs later in [`super::turn`], so a slow bot
//! never makes the provider time out and retry, and a retry never makes a second turn.
use crate::app::AppState;
use crate::channel::InboundMessage;
use crate::domain::address::ChannelKind;
use crate::domain::allow_from;
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
    let count = |outcome: &str| {
        state
            .metrics
            .webhooks
            .with_label_values(&[channel, integration.id.as_str(), outcome])
            .inc();
    };
    let sender = message.from.to_string();
    // In a thread, the allow list is about the person who wrote, not the thread.
    let person = message
        .author
        .as_ref()
        .map_or_else(|| sender.clone(), ToString::to_string);
    if !allow_from::allows(Some(&integration.allow_from), &person) {
        count("ignored");
        tracing::info!(integration = %integration.id, channel, message_sid = %message.id, correlation = %message.id, status = "ignored", "message received; sender not in allowFrom");
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
    // for replies to its sender. No conversation yet: the turn finds or starts it, and logs
    // under the same correlation.
    let on_whatsapp =
        message.author.as_ref().unwrap_or(&message.from).channel() == ChannelKind::WhatsApp;
    if state.db.record_inbound(record).await? {
        if on_whatsapp {
            state
                .db
                .note_whatsapp_inbound(&integration.id, &sender, crate::domain::now_ms())
                .await?;
        }
        count("accepted");
        tracing::info!(integration = %integration.id, channel, message_sid = %id, correlation = %id, status = "accepted", "message received");
        state.inbound_ready.notify_one();
        Ok(Accepted::New)
    } else {
        count("duplicate");
        tracing::info!(integration = %integration.id, channel, message_sid = %id, correlation = %id, status = "duplicate", "message received again (provider retry); already recorded");
        Ok(Accepted::Duplicate)
    }
}
