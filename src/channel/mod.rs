//! The channel seam: how messages get between people and Chatwire.
//!
//! A channel (Twilio Messaging today; Conversations and web chat next) does three things and
//! nothing else: turns a provider's signed callback into a channel-neutral [`InboundMessage`] or
//! [`StatusUpdate`], sends one outgoing [`OutgoingPart`] (the provider's id, or a [`SendError`]
//! saying whether to retry, give up, or treat the person as opted out), and, where the provider
//! allows it, looks up messages an interrupted send may already have delivered and lists the
//! messages people sent, so that those whose callback never arrived can be recorded late. The pipeline,
//! the outbox and the webhook edge know only this trait and the [`Channels`] registry; every
//! queued row names its channel, so adding one needs no change to them.
pub mod conversations;
pub mod twilio;
pub mod webchat;

use crate::domain::address::Address;
use crate::domain::delivery::MessageStatus;
pub use crate::domain::message::Media;
use crate::store::integration::Integration;
use async_trait::async_trait;
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// A provider's id for one message (Twilio's `SM…`/`MM…` SID).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ProviderId(pub String);

impl ProviderId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ProviderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A callback as it reached the edge: the URL the provider called (what signatures cover),
/// its headers and its raw body.
#[derive(Debug, Clone, Copy)]
pub struct CallbackRequest<'a> {
    pub url: &'a str,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

/// A message a person sent, as every channel hands it to the pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundMessage {
    /// The provider's id: the idempotency key of the inbound turn.
    pub id: ProviderId,
    /// The provider account the callback speaks for, where the provider names one.
    pub account: Option<String>,
    /// The person.
    pub from: Address,
    /// Our side (the number or identity the person wrote to).
    pub to: Address,
    /// Empty for a media-only message.
    pub body: String,
    pub media: Vec<Media>,
    pub profile_name: Option<String>,
    /// The person's own address when `from` names a shared thread (a Twilio Conversation with
    /// several participants) rather than the person.
    pub author: Option<Address>,
    /// When the provider received it (ms since the epoch), for a message found by listing
    /// ([`Channel::received_since`]); `None` for a callback, which arrives as it happens.
    pub received_at: Option<i64>,
}

/// What a verified callback on a channel's message route carries. Providers with one event
/// stream (Twilio Conversations' post-event webhook) send receipts and lifecycle changes on the
/// same route as messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Message(InboundMessage),
    Status(StatusUpdate),
    /// The provider ended the thread (a Conversation closed on Twilio's side): its session ends.
    Ended {
        thread: Address,
    },
    /// Nothing for Chatwire to do (the bot's own message, a system message, an event it does
    /// not use); acknowledged so the provider does not retry.
    Ignored(String),
}

/// What a session's end does to the provider's thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThreadEnd {
    Close,
    Deactivate,
}

/// An approved template a message is sent as (Twilio's `ContentSid` + `ContentVariables`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pub content_sid: String,
    /// JSON object, as Twilio takes it.
    pub variables: Option<String>,
}

/// A provider's delivery receipt, mapped to Chatwire's statuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusUpdate {
    pub id: ProviderId,
    pub status: MessageStatus,
    pub error_code: Option<i64>,
}

/// Why a callback was refused. Callers answer with a bare status: providers read no body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The signature does not match, or nothing could be checked (fail closed): 403.
    #[error("signature does not match: {0}")]
    Unauthenticated(String),
    /// Signed, but for another provider account than the integration's: 403.
    #[error("wrong account: {0}")]
    WrongAccount(String),
    /// Signed, but not a message this channel understands: 400.
    #[error("malformed callback: {0}")]
    Malformed(String),
}

/// One part of an outgoing message, ready for the provider.
#[derive(Debug, Clone)]
pub struct OutgoingPart {
    pub to: Address,
    pub from: Address,
    pub body: String,
    pub media: Vec<String>,
    /// Where the provider should post delivery receipts for this part.
    pub status_callback: Option<String>,
    /// Sent as this template instead of the free-form body (outside WhatsApp's window).
    pub template: Option<Template>,
}

/// What the provider answered to an accepted send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub id: ProviderId,
    /// The provider's own status word at acceptance (e.g. `queued`).
    pub status: String,
}

/// A message the provider already has (see [`Channel::find_sent`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub accepted: Accepted,
    pub body: String,
}

/// A failed send, classified by what the outbox does next.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Try again later. `maybe_sent` when no answer arrived: the provider may have acted on the
    /// request, so the next attempt looks for it first.
    #[error("{message}")]
    Retryable {
        code: Option<i64>,
        retry_after: Option<Duration>,
        maybe_sent: bool,
        message: String,
    },
    /// The provider refused; the same request would be refused again.
    #[error("{message}")]
    Permanent { code: Option<i64>, message: String },
    /// The person opted out with the provider: stop writing to them.
    #[error("{message}")]
    OptedOut { code: Option<i64>, message: String },
}

impl SendError {
    pub fn code(&self) -> Option<i64> {
        match self {
            SendError::Retryable { code, .. }
            | SendError::Permanent { code, .. }
            | SendError::OptedOut { code, .. } => *code,
        }
    }
}

/// One way of reaching people. See the module documentation.
#[async_trait]
pub trait Channel: Send + Sync + 'static {
    /// The name stored with every queued row of this channel and used in its callback URLs
    /// (`/v1/integration/{name}/{id}/webhook` and `.../status`).
    fn name(&self) -> &'static str;

    /// Verifies a message callback and parses it.
    fn parse_inbound(
        &self,
        integration: &Integration,
        request: CallbackRequest<'_>,
    ) -> Result<InboundMessage, Refusal>;

    /// Verifies a callback on the message route and says what it carries. Channels whose message
    /// route carries only messages keep this default.
    fn parse_event(
        &self,
        integration: &Integration,
        request: CallbackRequest<'_>,
    ) -> Result<Event, Refusal> {
        self.parse_inbound(integration, request).map(Event::Message)
    }

    /// Whether a session's thread lives on at the provider and must be ended there when the
    /// session ends ([`Channel::end_thread`]). Channels without threads keep this default.
    fn has_threads(&self) -> bool {
        false
    }

    /// Ends the provider's side of a thread whose session ended. Channels without threads keep
    /// this default.
    async fn end_thread(
        &self,
        integration: &Integration,
        thread: &Address,
        how: ThreadEnd,
    ) -> Result<(), SendError> {
        let _ = (integration, thread, how);
        Ok(())
    }

    /// Verifies a delivery-receipt callback and parses it.
    fn parse_status(
        &self,
        integration: &Integration,
        request: CallbackRequest<'_>,
    ) -> Result<StatusUpdate, Refusal>;

    /// The body and content type that acknowledge an accepted callback.
    fn acknowledgement(&self) -> (&'static str, &'static str) {
        ("text/plain", "")
    }

    /// Sends one part.
    async fn send(
        &self,
        integration: &Integration,
        part: &OutgoingPart,
    ) -> Result<Accepted, SendError>;

    /// Messages from `part.from` to `part.to` the provider accepted since `since_ms`: an
    /// interrupted send is looked for here before it is sent again. A provider that cannot be
    /// asked returns nothing, and such a send may be repeated after a crash.
    async fn find_sent(
        &self,
        integration: &Integration,
        part: &OutgoingPart,
        since_ms: i64,
    ) -> Result<Vec<Found>, SendError> {
        let _ = (integration, part, since_ms);
        Ok(Vec::new())
    }

    /// Messages people sent to the integration since `since_ms`, oldest first, each with its
    /// `received_at`, as the provider lists them. The backfill records those whose callback
    /// never arrived (Chatwire was down, or the network failed), so nothing is lost while
    /// down. A provider that cannot be asked returns nothing.
    async fn received_since(
        &self,
        integration: &Integration,
        since_ms: i64,
    ) -> Result<Vec<InboundMessage>, SendError> {
        let _ = (integration, since_ms);
        Ok(Vec::new())
    }
}

/// The channels this process serves, by name.
#[derive(Clone, Default)]
pub struct Channels(BTreeMap<&'static str, Arc<dyn Channel>>);

impl Channels {
    pub fn with(mut self, channel: Arc<dyn Channel>) -> Self {
        self.0.insert(channel.name(), channel);
        self
    }

    pub fn get(&self, name: &str) -> Option<&Arc<dyn Channel>> {
        self.0.get(name)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<dyn Channel>> {
        self.0.values()
    }
}

impl fmt::Debug for Channels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0.keys()).finish()
    }
}
