//! The web chat channel: the widget served by Chatwire (`/widget.js`) posts a visitor's messages
//! with their signed visitor token, and reads replies from a live stream. It is one more
//! implementation of the channel seam: a posted message is parsed here and accepted by the
//! same pipeline as an SMS, and replies leave through the same outbox, whose "send" to a
//! browser is publishing it to the visitor's stream.
pub mod token;

use super::{
    Accepted, CallbackRequest, Channel, InboundMessage, OutgoingPart, ProviderId, Refusal,
    SendError, StatusUpdate,
};
use crate::crypto::Cipher;
use crate::domain::address::Address;
use crate::domain::{ids, now_ms};
use crate::store::integration::Integration;
use async_trait::async_trait;
use axum::http::header::AUTHORIZATION;
use serde::Deserialize;
use tokio::sync::watch;

/// Longest message a visitor may send.
pub const MAX_TEXT: usize = 4_000;

/// What the widget posts.
#[derive(Debug, Deserialize)]
struct Posted {
    text: String,
    /// The browser's id for the message: a retried post is the same message.
    id: String,
}

pub struct WebChat {
    cipher: Cipher,
    /// Bumped on every reply published, so open streams look at once.
    published: watch::Sender<u64>,
}

impl WebChat {
    pub const NAME: &'static str = "webchat";

    pub fn new(cipher: Cipher) -> Self {
        Self {
            cipher,
            published: watch::Sender::new(0),
        }
    }

    /// Our side of a widget's conversations.
    pub fn address_of(integration: &str) -> String {
        format!("chat:widget-{integration}")
    }

    /// Wakes when a reply is published.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.published.subscribe()
    }

    /// Tells open streams something changed (a message was accepted, a turn finished).
    pub fn nudge(&self) {
        self.published.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// The visitor a request's bearer token names, for `integration`.
    pub fn visitor(&self, integration: &str, bearer: Option<&str>) -> Option<token::Visitor> {
        token::verify(&self.cipher, bearer?, integration, now_ms())
    }

    pub fn mint(&self, integration: &str, visitor: &str) -> String {
        token::mint(&self.cipher, integration, visitor, now_ms())
    }
}

fn bearer(request: &CallbackRequest<'_>) -> Option<String> {
    request
        .headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned)
}

#[async_trait]
impl Channel for WebChat {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn parse_inbound(
        &self,
        integration: &Integration,
        request: CallbackRequest<'_>,
    ) -> Result<InboundMessage, Refusal> {
        let visitor = self
            .visitor(&integration.id, bearer(&request).as_deref())
            .ok_or_else(|| Refusal::Unauthenticated("missing or invalid visitor token".into()))?;
        let posted: Posted = serde_json::from_slice(request.body)
            .map_err(|e| Refusal::Malformed(format!("expected {{\"text\", \"id\"}}: {e}")))?;
        let text = posted.text.trim();
        if text.is_empty() || text.chars().count() > MAX_TEXT {
            return Err(Refusal::Malformed(format!(
                "\"text\" must be 1 to {MAX_TEXT} characters"
            )));
        }
        if !token::valid_part(&posted.id) {
            return Err(Refusal::Malformed(
                "\"id\" must be 1 to 100 letters, digits, '-', '_' or '@'".into(),
            ));
        }
        let from = Address::parse(&format!("chat:{}", visitor.id))
            .map_err(|e| Refusal::Malformed(e.to_string()))?;
        let to = Address::parse(&Self::address_of(&integration.id))
            .map_err(|e| Refusal::Malformed(e.to_string()))?;
        Ok(InboundMessage {
            id: ProviderId(format!("WC-{}-{}", visitor.id, posted.id)),
            account: None,
            from,
            to,
            body: text.to_owned(),
            media: Vec::new(),
            profile_name: None,
            author: None,
            received_at: None,
        })
    }

    fn parse_status(
        &self,
        _integration: &Integration,
        _request: CallbackRequest<'_>,
    ) -> Result<StatusUpdate, Refusal> {
        Err(Refusal::Malformed(
            "web chat has no delivery receipts".into(),
        ))
    }

    fn acknowledgement(&self) -> (&'static str, &'static str) {
        ("application/json", "{}")
    }

    async fn send(
        &self,
        _integration: &Integration,
        _part: &OutgoingPart,
    ) -> Result<Accepted, SendError> {
        // The message is stored already; publishing it is telling the visitor's stream.
        self.nudge();
        Ok(Accepted {
            id: ProviderId(format!("WC{}", ids::new_id())),
            status: "delivered".into(),
        })
    }
}
