//! Bot engines: what answers a person. Every engine implements [`BotEngine`]; a bot's `model`
//! field picks one (see [`select`]).
//!
//! An engine gets one [`Turn`] (the conversation so far, the new message, the contact, the
//! channel and the state it left last time) and returns a [`Reply`] (messages to send, its new
//! state, and actions such as a hand-off to a human). Engines do not write the conversation: the
//! pipeline persists the reply and the state in one transaction, which is what makes a crash or
//! a retried webhook unable to double a reply. What else they read or record (dataset search,
//! ratings, a flow's execution record) goes through the narrow [`EngineStore`] in their
//! [`EngineContext`]; `bot` never sees the application state, the HTTP layer or SQL.
#[cfg(test)]
mod compliance;
pub mod dialogue;
pub mod echo;
pub mod engine_store;
pub mod fallback;
pub mod faq;
pub mod labels;
pub mod llm;
mod llm_stream;
pub mod load;
pub mod markdown;
pub mod prompt;
pub mod retrieval;
pub mod studio;
pub mod upstream;
pub mod webhook;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;

pub use engine_store::{EngineStore, StoreError, StoreResult};

/// The channel a turn arrived on; it shapes what a reply may contain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelKind {
    Sms,
    Whatsapp,
    /// The completion API (`conversation/{id}/complete`): no phone involved.
    Api,
}

/// A media item attached to an inbound message.
pub use crate::domain::message::Media;

/// One earlier message of the conversation, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryMessage {
    /// ChatBotKit message type: `user`, `bot`, ...
    #[serde(rename = "type")]
    pub kind: String,
    pub text: String,
}

/// The bot as configured through the API (the `bots` row).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BotConfig {
    pub id: String,
    pub name: String,
    pub model: String,
    pub backstory: String,
    pub dataset_id: Option<String>,
    /// Every field of the bot as read through the API, for engine-specific settings.
    pub raw: serde_json::Map<String, Value>,
}

/// The person on the other side.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ContactInfo {
    pub id: Option<String>,
    pub name: Option<String>,
    /// `+E164` or `whatsapp:+E164`, or the shared thread (`chat:CH...`) on Conversations.
    pub address: String,
    /// Who wrote, when `address` is a shared thread: the participant's `+E164`,
    /// `whatsapp:+E164` or chat identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
}

/// Everything an engine needs for one turn.
#[derive(Debug, Clone)]
pub struct Turn {
    pub conversation_id: String,
    pub bot: BotConfig,
    /// Messages before this one, oldest first.
    pub history: Vec<HistoryMessage>,
    pub text: String,
    pub media: Vec<Media>,
    pub contact: ContactInfo,
    pub channel: ChannelKind,
    /// The Chatwire number the person wrote to (`+E164` or `whatsapp:+E164`), if known.
    pub channel_address: Option<String>,
    /// What the engine returned as `state` last turn (`Value::Null` at the start).
    pub state: Value,
    pub now_ms: i64,
    /// Twilio's `MessageSid` of the inbound message, when the turn answers one (Studio's
    /// `trigger.message.MessageSid`); engines make up a placeholder when it is missing.
    pub message_sid: Option<String>,
    /// The Twilio account the message came through (`AccountSid`), when known.
    pub account_sid: Option<String>,
}

/// What an engine wants done besides sending messages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Action {
    /// Hand the conversation to a human agent, with what the bot collected for them (a Studio
    /// `send-to-flex` widget's attributes).
    Handoff {
        reason: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        attributes: Option<Value>,
    },
    /// The conversation is over; the next message starts a new one.
    EndConversation,
}

/// Tokens an LLM used for a turn.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

/// An engine's answer to one turn.
#[derive(Debug, Clone, Default)]
pub struct Reply {
    /// Texts to send, in order (each may be split further for SMS).
    pub messages: Vec<String>,
    /// Media URLs to send with `messages[i]` (as MMS / WhatsApp media), by the same index.
    /// Shorter than `messages` (usually empty) when later messages carry none; a message
    /// whose text is empty but which has media is a media-only message. See [`Reply::media_of`].
    pub media: Vec<Vec<String>>,
    /// Where `messages[i]` goes when not to the person of the turn (a Studio Send Message
    /// widget addressed to a staff phone), by the same index; shorter when later messages go
    /// to the person. See [`Reply::recipient_of`].
    pub recipients: Vec<Option<String>>,
    pub state: Value,
    pub actions: Vec<Action>,
    pub usage: Option<Usage>,
    /// When set, the pipeline calls the engine again with an empty `text` and
    /// `Turn::state` = this reply's state at this time (Studio's wait-for-reply timeouts).
    pub wake_at_ms: Option<i64>,
}

impl Reply {
    /// The media URLs to send with `messages[index]` (none for most messages).
    pub fn media_of(&self, index: usize) -> &[String] {
        self.media.get(index).map_or(&[], Vec::as_slice)
    }

    /// Appends a message with its media, keeping `media` aligned with `messages`.
    /// Where message `index` goes, when not to the person of the turn.
    pub fn recipient_of(&self, index: usize) -> Option<&str> {
        self.recipients.get(index).and_then(Option::as_deref)
    }

    /// Appends a message with its media and, when it goes to someone other than the person of
    /// the turn, its recipient, keeping `media` and `recipients` aligned with `messages`.
    pub fn push_to(&mut self, text: String, media: Vec<String>, to: Option<String>) {
        if to.is_some() {
            self.recipients.resize(self.messages.len(), None);
            self.recipients.push(to);
        }
        self.push_with_media(text, media);
    }

    pub fn push_with_media(&mut self, text: String, media: Vec<String>) {
        if !media.is_empty() {
            self.media.resize(self.messages.len(), Vec::new());
            self.media.push(media);
        }
        self.messages.push(text);
    }
}

/// An engine that failed; the pipeline answers the person with a fallback text instead.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("engine misconfigured: {0}")]
    Config(String),
    #[error("engine upstream failed: {0}")]
    Upstream(String),
}

#[async_trait]
pub trait BotEngine: Send + Sync {
    async fn respond(&self, turn: &Turn) -> Result<Reply, EngineError>;

    /// Like `respond`, but an engine that answers its own failures with the fallback text
    /// (LLM, webhook) returns the failure instead, for callers that report it (the completion
    /// API's `end.reason: "error"`).
    async fn try_respond(&self, turn: &Turn) -> Result<Reply, EngineError> {
        self.respond(turn).await
    }

    /// Like `try_respond`, sending pieces of the reply text to `tokens` while it is being
    /// written (the LLM engine streams from the model). Engines that cannot stream send
    /// nothing, and the caller shows the finished text.
    async fn respond_streaming(
        &self,
        turn: &Turn,
        tokens: &TokenSink,
    ) -> Result<Reply, EngineError> {
        let _ = tokens;
        self.try_respond(turn).await
    }
}

/// Where a streaming engine sends pieces of its reply as they are produced.
pub type TokenSink = tokio::sync::mpsc::UnboundedSender<String>;

/// What engines may use: their storage capabilities ([`EngineStore`]), an HTTP client, the
/// settings, the cipher (webhook bots' signing secrets are sealed at rest) and the process
/// counters. Nothing else of the application reaches an engine.
#[derive(Clone)]
pub struct EngineContext {
    pub store: Arc<dyn EngineStore>,
    /// For what the operator configured (the LLM server).
    pub http: reqwest::Client,
    /// For what a bot's or flow's settings aim at: refuses internal addresses on every hop.
    pub outbound: crate::net::outbound::Outbound,
    pub config: Arc<crate::config::Config>,
    pub cipher: crate::crypto::Cipher,
    pub metrics: Arc<crate::metrics::Metrics>,
}

impl EngineContext {
    pub fn new(
        store: Arc<dyn EngineStore>,
        http: reqwest::Client,
        outbound: crate::net::outbound::Outbound,
        config: Arc<crate::config::Config>,
        cipher: crate::crypto::Cipher,
        metrics: Arc<crate::metrics::Metrics>,
    ) -> Self {
        Self {
            store,
            http,
            outbound,
            config,
            cipher,
            metrics,
        }
    }
}

/// Whether the bot's texts are written as markdown (an LLM's answers are; flows, FAQ answers,
/// echoes and webhook bots' texts are sent as written).
pub fn writes_markdown(bot: &BotConfig) -> bool {
    !matches!(bot.model.as_str(), "echo" | "webhook" | "flow" | "faq")
}

/// Picks the engine for a bot by its `model` field: `echo`, `flow`, `faq`, `webhook` select the
/// built-in engines; any other value is an LLM model name.
/// The engines that are not an LLM, by `model`; every other value names an LLM model.
pub const BUILT_IN_ENGINES: [&str; 4] = ["echo", "webhook", "flow", "faq"];

/// Does a bot with this `model` run the LLM engine (and so need `CHATWIRE_LLM_URL`)?
pub fn is_llm_model(model: &str) -> bool {
    !BUILT_IN_ENGINES.contains(&model)
}

/// The engine a `model` selects, as metrics label it: a built-in engine's name, else `llm`.
pub fn engine_name(model: &str) -> &str {
    if is_llm_model(model) {
        "llm"
    } else {
        model
    }
}

/// Whether the engine [`select`] picks for `bot` reads [`Turn::history`]. The LLM and webhook
/// engines do; echo, flows and FAQ answer from the message (and their own state) alone, so
/// their turns skip reading up to [`crate::pipeline::turn`]'s history limit of rows per
/// message.
pub fn reads_history(bot: &BotConfig) -> bool {
    !matches!(bot.model.as_str(), "echo" | "flow" | "faq")
}

pub fn select(ctx: &EngineContext, bot: &BotConfig) -> Result<Box<dyn BotEngine>, EngineError> {
    match bot.model.as_str() {
        "echo" => Ok(Box::new(echo::Echo)),
        "webhook" => Ok(Box::new(webhook::WebhookBot::new(ctx.clone()))),
        "flow" => Ok(Box::new(studio::FlowEngine::new(ctx.clone()))),
        "faq" => Ok(Box::new(faq::FaqEngine::new(ctx.clone()))),
        // An empty model is a ChatBotKit-shaped bot without a model: the default LLM model.
        _ => Ok(Box::new(llm::LlmBot::new(ctx.clone()))),
    }
}
