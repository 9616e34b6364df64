//! Accepting a verified inbound message from any channel: the integration's allow list, then
//! one stored row per provider id. The bot turn runs later in [`super::turn`], so a slow bot
//! never makes the provider time out and retry, and a retry never makes a second turn.
use crate::app::AppState;
use crate::channel::InboundMessage;
use crate::domain::address::{Address, ChannelKind};
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
    /// Written to a number another integration holds: answering it here would reply from
    /// that integration's number with this one's bot. Refused (403), nothing stored.
    Misdirected,
}

impl Accepted {
    /// The outcome word, as logs and traces show it.
    pub fn as_str(self) -> &'static str {
        match self {
            Accepted::New => "accepted",
            Accepted::Duplicate => "duplicate",
            Accepted::Ignored => "ignored",
            Accepted::Misdirected => "misdirected",
        }
    }
}

/// Whether `to` may be answered by `integration`. Its own `phoneNumber` always may (the
/// common case, decided without a query). Any other address is refused when another
/// integration holds it exactly, or holds the same number on the other channel while this
/// integration's number is a different one. What remains, e.g. a WhatsApp sender on the same
/// account beside the integration's SMS number, is accepted: Twilio posts a number's messages
/// only to the URL configured on it, and the callback's account was already checked.
pub async fn addressed_here(
    state: &AppState,
    integration: &Integration,
    to: &Address,
) -> Result<bool, sqlx::Error> {
    let ours = integration.phone_number.as_deref();
    let exact = to.to_string();
    if ours == Some(exact.as_str()) {
        return Ok(true);
    }
    let other_channel = match to.channel() {
        ChannelKind::WhatsApp => to.with_channel(ChannelKind::Sms).to_string(),
        _ => to.with_channel(ChannelKind::WhatsApp).to_string(),
    };
    let held = state
        .db
        .numbers_held_elsewhere(&[exact.clone(), other_channel], &integration.id)
        .await?;
    let our_number = ours
        .and_then(|n| Address::parse(n).ok())
        .is_some_and(|n| n.e164() == to.e164());
    Ok(!held.contains(&exact) && (held.is_empty() || our_number))
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
    if !addressed_here(state, integration, &message.to).await? {
        tracing::warn!(integration = %integration.id, to = %message.to, "message to another integration's number refused");
        return Ok(Accepted::Misdirected);
    }
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
        author: message.author.as_ref().map(ToString::to_string),
        received_at: message.received_at,
        // The turn continues the trace of the webhook that stored the message.
        trace_parent: crate::telemetry::current(),
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
