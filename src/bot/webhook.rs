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
use super::fallback::fallback_reply;
use super::{upstream, Action, BotEngine, EngineContext, EngineError, Reply, Turn};
use crate::http::api::resources::BOT;
use async_trait::async_trait;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use sha2::Sha256;
use std::time::Duration;
use tokio::time::Instant;

const DEFAULT_TIMEOUT_MS: u64 = 10_000;
const MAX_TIMEOUT_MS: u64 = 120_000;
/// Attempts after the first on 429/5xx/connection errors.
const RETRIES: u32 = 2;
/// Earlier messages sent in the Chatwire format.
const HISTORY: usize = 20;
/// How far a verifier should let a timestamp drift.
pub const TOLERANCE_SECS: i64 = 300;

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

type HmacSha256 = Hmac<Sha256>;

/// The `X-Chatwire-Signature` value for `body` sent at `timestamp`.
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// What a bot owner's service should do with a call: check the signature in constant time and
/// the timestamp against its clock (`now` in Unix seconds).
pub fn verify(secret: &str, timestamp: &str, body: &[u8], signature: &str, now: i64) -> bool {
    let Ok(ts) = timestamp.trim().parse::<i64>() else {
        return false;
    };
    if (now - ts).abs() > TOLERANCE_SECS {
        return false;
    }
    let Some(hex_mac) = signature.trim().strip_prefix("sha256=") else {
        return false;
    };
    let Ok(given) = hex::decode(hex_mac) else {
        return false;
    };
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(ts.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&given).is_ok()
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
        let url =
            upstream::check_public_url(&settings.url, self.ctx.config.allow_private_http).await?;
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
                .http
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
            .db
            .column_text(&BOT, bot_id, "webhook_secret")
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

fn chatwire_request(turn: &Turn, delivery: &str) -> Value {
    let skip = turn.history.len().saturating_sub(HISTORY);
    json!({
        "type": "message",
        "deliveryId": delivery,
        "conversationId": turn.conversation_id,
        "bot": {"id": turn.bot.id, "name": turn.bot.name},
        "channel": turn.channel,
        "contact": {"id": turn.contact.id, "name": turn.contact.name, "address": turn.contact.address},
        "to": turn.channel_address,
        "message": {
            "text": turn.text,
            "media": turn.media.iter().map(|m| json!({"url": m.url, "contentType": m.content_type})).collect::<Vec<_>>(),
        },
        "history": turn.history.iter().skip(skip).map(|m| json!({"type": m.kind, "text": m.text})).collect::<Vec<_>>(),
        "state": turn.state,
        "timestamp": turn.now_ms,
    })
}

fn chatwire_reply(turn: &Turn, value: Value) -> Result<Reply, EngineError> {
    let bad = |what: &str| {
        EngineError::Upstream(format!(
            "the webhook bot's answer is not Chatwire JSON: {what}"
        ))
    };
    let Value::Object(mut answer) = value else {
        return Err(bad("not an object"));
    };
    let mut messages = Vec::new();
    match answer.remove("messages") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for item in items {
                let text = match &item {
                    Value::String(s) => s.as_str(),
                    Value::Object(o) => o
                        .get("text")
                        .and_then(Value::as_str)
                        .ok_or_else(|| bad("a message has no text"))?,
                    _ => return Err(bad("messages must be strings or {\"text\"}")),
                };
                if !text.trim().is_empty() {
                    messages.push(text.to_owned());
                }
            }
        }
        Some(_) => return Err(bad("messages must be an array")),
    }
    let mut actions = Vec::new();
    if let Some(Value::Array(items)) = answer.remove("actions") {
        for item in items {
            match serde_json::from_value::<Action>(item) {
                Ok(action) => actions.push(action),
                Err(err) => tracing::debug!(error = %err, "webhook bot sent an unknown action"),
            }
        }
    }
    let state = answer.remove("state").unwrap_or_else(|| turn.state.clone());
    Ok(Reply {
        messages,
        state,
        actions,
        ..Reply::default()
    })
}

/// The Rasa REST channel's request; a numbered choice is sent as its button's payload.
fn rasa_request(turn: &Turn) -> Value {
    let text = turn.text.trim();
    let message = match chosen_payload(&turn.state, text) {
        Some(payload) => payload,
        None if text.is_empty() => turn
            .media
            .first()
            .map(|m| m.url.clone())
            .unwrap_or_default(),
        None => text.to_owned(),
    };
    let sender = if turn.contact.address.is_empty() {
        turn.conversation_id.as_str()
    } else {
        turn.contact.address.as_str()
    };
    json!({
        "sender": sender,
        "message": message,
        "metadata": {"conversationId": turn.conversation_id, "channel": turn.channel},
    })
}

/// The payload of the button the person picked by number or by title, if any.
fn chosen_payload(state: &Value, text: &str) -> Option<String> {
    let buttons = state.get("rasaButtons")?.as_array()?;
    let title = |b: &Value| {
        b.get("title")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let picked = match text.parse::<usize>() {
        Ok(n) if (1..=buttons.len()).contains(&n) => &buttons[n - 1],
        _ => buttons
            .iter()
            .find(|b| title(b).trim().eq_ignore_ascii_case(text))?,
    };
    let payload = picked
        .get("payload")
        .and_then(Value::as_str)
        .filter(|p| !p.is_empty());
    Some(payload.map(str::to_owned).unwrap_or_else(|| title(picked)))
}

fn rasa_reply(value: Value) -> Result<Reply, EngineError> {
    let Value::Array(items) = value else {
        return Err(EngineError::Upstream(
            "the Rasa bot's answer is not a JSON array".into(),
        ));
    };
    let mut messages = Vec::new();
    let mut buttons_state = Value::Null;
    for item in items {
        let Value::Object(item) = item else {
            return Err(EngineError::Upstream(
                "the Rasa bot's answer holds a non-object".into(),
            ));
        };
        let mut text = item
            .get("text")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .trim()
            .to_owned();
        if let Some(buttons) = item
            .get("buttons")
            .and_then(Value::as_array)
            .filter(|b| !b.is_empty())
        {
            for (i, button) in buttons.iter().enumerate() {
                let title = button
                    .get("title")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                if !text.is_empty() {
                    text.push('\n');
                }
                text.push_str(&format!("{}. {}", i + 1, title));
            }
            buttons_state = json!({ "rasaButtons": buttons });
        }
        if !text.is_empty() {
            messages.push(text);
        }
        if let Some(image) = item
            .get("image")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
        {
            messages.push(image.to_owned());
        }
    }
    Ok(Reply {
        messages,
        state: buttons_state,
        ..Reply::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_and_stale_or_tampered_ones_do_not() {
        let sig = sign("s3cret", 1_700_000_000, b"{\"a\":1}");
        assert!(sig.starts_with("sha256=") && sig.len() == 7 + 64);
        assert!(verify(
            "s3cret",
            "1700000000",
            b"{\"a\":1}",
            &sig,
            1_700_000_100
        ));
        assert!(
            !verify("s3cret", "1700000000", b"{\"a\":2}", &sig, 1_700_000_100),
            "body changed"
        );
        assert!(
            !verify("other", "1700000000", b"{\"a\":1}", &sig, 1_700_000_100),
            "wrong key"
        );
        assert!(
            !verify("s3cret", "1700000001", b"{\"a\":1}", &sig, 1_700_000_100),
            "timestamp changed"
        );
        assert!(
            !verify(
                "s3cret",
                "1700000000",
                b"{\"a\":1}",
                &sig,
                1_700_000_000 + 301
            ),
            "stale"
        );
    }

    #[test]
    fn known_signature_vector() {
        // printf '1700000000.{}' | openssl dgst -sha256 -hmac key
        assert_eq!(
            sign("key", 1_700_000_000, b"{}"),
            "sha256=9d713ed406bb7076d4123f0dc2c39d2df5c654ed4b0cd56b52c8b4c940bd63ae"
        );
    }

    #[test]
    fn rasa_buttons_become_numbered_lines_and_numbers_map_back() {
        let answer = json!([
            {"recipient_id": "+1555", "text": "Where do you want to sit?",
             "buttons": [{"title": "Inside", "payload": "/inside"}, {"title": "Outside", "payload": "/outside"}]},
            {"recipient_id": "+1555", "image": "https://example.com/map.png"}
        ]);
        let reply = rasa_reply(answer).expect("valid");
        assert_eq!(
            reply.messages,
            [
                "Where do you want to sit?\n1. Inside\n2. Outside",
                "https://example.com/map.png"
            ]
        );
        assert_eq!(
            chosen_payload(&reply.state, "2").as_deref(),
            Some("/outside")
        );
        assert_eq!(
            chosen_payload(&reply.state, "inside").as_deref(),
            Some("/inside")
        );
        assert_eq!(chosen_payload(&reply.state, "3"), None);
        assert_eq!(chosen_payload(&reply.state, "somewhere else"), None);
        assert!(rasa_reply(json!({"text": "x"})).is_err());
        assert!(rasa_reply(json!(["x"])).is_err());
    }

    #[test]
    fn chatwire_answers_are_checked() {
        let turn_state = json!({"step": 1});
        let mut turn = crate::bot::compliance::turn_with("hi");
        turn.state = turn_state.clone();
        let reply = chatwire_reply(&turn, json!({"messages": ["a", {"text": "b"}, ""], "actions": [{"type": "handoff", "reason": "vip"}, {"type": "dance"}]}))
            .expect("valid");
        assert_eq!(reply.messages, ["a", "b"]);
        assert_eq!(
            reply.actions,
            [Action::Handoff {
                reason: Some("vip".into())
            }]
        );
        assert_eq!(reply.state, turn_state, "absent state is kept");
        assert_eq!(
            chatwire_reply(&turn, json!({"state": null}))
                .expect("valid")
                .state,
            Value::Null
        );
        assert!(chatwire_reply(&turn, json!(["a"])).is_err());
        assert!(chatwire_reply(&turn, json!({"messages": "a"})).is_err());
        assert!(chatwire_reply(&turn, json!({"messages": [1]})).is_err());
    }

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
