//! The webhook engine (`model: "webhook"`): each turn is POSTed to the bot owner's service,
//! which answers with what to send. Settings live in the bot's `webhook` field:
//! `{"url": "...", "format": "chatwire" | "rasa", "timeoutMs": 10000}`, and the signing key in
//! the write-only `webhookSecret` field (sealed at rest, never returned by the API).
//!
//! **Signature.** Every call carries `X-Chatwire-Timestamp` (Unix seconds),
//! `X-Chatwire-Delivery` (one id per turn, the same on retries, for de-duplication) and, when a
//! secret is set, `X-Chatwire-Signature: sha256=<hex>`, the HMAC-SHA256 with the secret as key
//! of `{timestamp}.{raw body}`. To verify: recompute it over the raw bytes received, compare in
//! constant time, and refuse timestamps more than 5 minutes from your clock; the timestamp is
//! inside the signed text, so an old request cannot be replayed with a new one.
//!
//! **Chatwire format.** Request:
//! `{"type": "message", "deliveryId", "conversationId", "bot": {"id", "name"}, "channel":
//! "sms"|"whatsapp"|"api", "contact": {"id", "name", "address"}, "to", "message": {"text",
//! "media": [{"url", "contentType"}]}, "history": [{"type": "user"|"bot", "text"}] (the last 20),
//! "state", "timestamp"}`. Answer (200, JSON): `{"messages": ["text" | {"text"}], "state": any,
//! "actions": [{"type": "handoff", "reason"?} | {"type": "end_conversation"}]}`; every key is
//! optional; `state` comes back as `state` next turn (absent keeps it, `null` clears it).
//!
//! **Rasa format** (Rasa's REST channel, so a Rasa bot plugs in unchanged: point `url` at
//! `http://rasa:5005/webhooks/rest/webhook`). Request `{"sender": <contact address or
//! conversation id>, "message": text, "metadata": {...}}`; answer
//! `[{"recipient_id", "text"?, "image"?, "buttons"?: [{"title", "payload"}]}]`. Buttons become
//! numbered lines (`1. Title`); the person's next message, if it is one of the numbers or a
//! button title, is sent to Rasa as that button's payload.
//!
//! A 5xx, 429 or unreachable service is retried within `timeoutMs`; after that, or on any other
//! error or an answer that is not the format's JSON, the person gets the fallback text.
mod signature;
mod wire;

pub use signature::{sign, verify, TOLERANCE_SECS};

use super::fallback::fallback_reply;
use super::{upstream, BotEngine, EngineContext, EngineError, Reply, Turn};
use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::time::Duration;
use tokio::time::Instant;
use wire::{chatwire_reply, chatwire_request, rasa_reply, rasa_request};

const DEFAULT_TIMEOUT_MS: u64 = 10_000;
const MAX_TIMEOUT_MS: u64 = 120_000;
/// Attempts after the first on 429/5xx/connection errors.
const RETRIES: u32 = 2;
/// Earlier messages sent in the Chatwire format.
const HISTORY: usize = 20;

/// The bot's `webhook` field.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WebhookSettings {
    pub url: String,
    #[serde(default)]
    pub format: WireFormat,
    pub timeout_ms: Option<u64>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WireFormat {
    #[default]
    Chatwire,
    Rasa,
}

impl WebhookSettings {
    /// The settings in a bot's `webhook` field; the error says what is wrong.
    pub fn from_bot(raw: &Map<String, Value>) -> Result<Self, String> {
        let value = raw
            .get("webhook")
            .filter(|v| !v.is_null())
            .ok_or("the bot has no webhook settings")?;
        Self::parse(value)
    }

    /// Checks a `webhook` value, as the API does on bot create and update.
    pub fn parse(value: &Value) -> Result<Self, String> {
        let settings: Self = serde_json::from_value(value.clone()).map_err(|e| {
            format!("\"webhook\" must be {{\"url\", \"format\": \"chatwire\"|\"rasa\", \"timeoutMs\"}}: {e}")
        })?;
        let valid = url::Url::parse(&settings.url)
            .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.has_host());
        if !valid {
            return Err("\"webhook.url\" must be an http(s) URL".into());
        }
        if settings
            .timeout_ms
            .is_some_and(|t| !(100..=MAX_TIMEOUT_MS).contains(&t))
        {
            return Err(format!(
                "\"webhook.timeoutMs\" must be between 100 and {MAX_TIMEOUT_MS}"
            ));
        }
        Ok(settings)
    }
}

pub struct WebhookBot {
    ctx: EngineContext,
}

impl WebhookBot {
    pub fn new(ctx: EngineContext) -> Self {
        Self { ctx }
    }
}

#[async_trait]
impl BotEngine for WebhookBot {
    async fn respond(&self, turn: &Turn) -> Result<Reply, EngineError> {
        match self.try_respond(turn).await {
            Ok(reply) => Ok(reply),
            Err(err) => Ok(fallback_reply(&self.ctx, turn, "webhook", &err)),
        }
    }

    async fn try_respond(&self, turn: &Turn) -> Result<Reply, EngineError> {
        if turn.text.trim().is_empty() && turn.media.is_empty() {
            // Nothing was said (a wake-up or an empty message): nothing to answer.
            return Ok(Reply {
                state: turn.state.clone(),
                ..Reply::default()
            });
        }
        self.run(turn).await
    }
}

impl WebhookBot {
    async fn run(&self, turn: &Turn) -> Result<Reply, EngineError> {
        let settings = WebhookSettings::from_bot(&turn.bot.raw).map_err(EngineError::Config)?;
        let url = self
            .ctx
            .outbound
            .check(&settings.url)
            .map_err(|r| EngineError::Config(format!("the webhook url: {r}")))?;
        let secret = self.secret(&turn.bot.id).await?;
        let timeout = settings
            .timeout_ms
            .unwrap_or(DEFAULT_TIMEOUT_MS)
            .clamp(100, MAX_TIMEOUT_MS);
        let deadline = Instant::now() + Duration::from_millis(timeout);
        let delivery = crate::domain::ids::new_id();
        let body = match settings.format {
            WireFormat::Chatwire => chatwire_request(turn, &delivery),
            WireFormat::Rasa => rasa_request(turn),
        };
        let body = serde_json::to_vec(&body).map_err(|e| EngineError::Upstream(e.to_string()))?;
        let answer = upstream::send("the webhook bot", RETRIES, deadline, || {
            let timestamp = crate::domain::now_ms() / 1000;
            let mut request = self
                .ctx
                .outbound
                .client()
                .post(url.clone())
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header(
                    reqwest::header::USER_AGENT,
                    concat!("Chatwire/", env!("CARGO_PKG_VERSION")),
                )
                .header("X-Chatwire-Timestamp", timestamp.to_string())
                .header("X-Chatwire-Delivery", delivery.as_str());
            if let Some(secret) = &secret {
                request = request.header("X-Chatwire-Signature", sign(secret, timestamp, &body));
            }
            request.body(body.clone())
        })
        .await?;
        let value: Value = serde_json::from_slice(&answer.body).map_err(|_| {
            EngineError::Upstream(format!(
                "the webhook bot answered HTTP {} without JSON",
                answer.status.as_u16()
            ))
        })?;
        match settings.format {
            WireFormat::Chatwire => chatwire_reply(turn, value),
            WireFormat::Rasa => rasa_reply(value),
        }
    }

    /// The bot's signing secret, opened; `None` when none is set.
    async fn secret(&self, bot_id: &str) -> Result<Option<String>, EngineError> {
        if bot_id.is_empty() {
            return Ok(None);
        }
        let sealed = self
            .ctx
            .store
            .sealed_webhook_secret(bot_id)
            .await
            .map_err(|e| EngineError::Upstream(format!("reading the webhook secret: {e}")))?;
        match sealed.filter(|s| !s.is_empty()) {
            None => Ok(None),
            Some(sealed) => self
                .ctx
                .cipher
                .open(&sealed)
                .map(Some)
                .map_err(|e| EngineError::Config(format!("webhook secret: {e}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn settings_are_validated() {
        let raw = |v: Value| v.as_object().cloned().unwrap_or_default();
        assert!(WebhookSettings::from_bot(&raw(json!({}))).is_err());
        assert!(WebhookSettings::from_bot(&raw(json!({"webhook": {"url": "ftp://x"}}))).is_err());
        assert!(WebhookSettings::from_bot(&raw(
            json!({"webhook": {"url": "http://x", "format": "xml"}})
        ))
        .is_err());
        for bad in [
            json!({"url": "http://x", "timeoutMs": 5}),
            json!({"url": "http://x", "timeout": 500}),
            json!({"url": "not a url"}),
            json!("http://x"),
        ] {
            assert!(WebhookSettings::parse(&bad).is_err(), "{bad}");
        }
        let s = WebhookSettings::from_bot(&raw(
            json!({"webhook": {"url": "http://x", "format": "rasa", "timeoutMs": 500}}),
        ))
        .expect("valid");
        assert_eq!((s.format, s.timeout_ms), (WireFormat::Rasa, Some(500)));
    }
}
