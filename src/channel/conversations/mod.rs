//! Twilio Conversations as a [`Channel`]: one bot across SMS, WhatsApp and chat participants of
//! a Conversations service.
//!
//! A Conversation is one thread: its session is keyed by the thread address `chat:CH…`, so every
//! participant's message, whichever channel it came from, lands in the same Chatwire
//! conversation, and the reply is posted into the Conversation (Twilio fans it out to each
//! participant). Callbacks are the service's post-event webhook, signed with
//! `X-Twilio-Signature` like Messaging's; the same route carries messages, delivery receipts and
//! the Conversation closing.
pub mod client;
pub mod events;
pub mod lifecycle;
pub mod setup;

use crate::channel::twilio::messaging::{credentials, send_error, verified};
use crate::channel::{
    Accepted, CallbackRequest, Channel, Event, InboundMessage, OutgoingPart, ProviderId, Refusal,
    SendError, StatusUpdate, ThreadEnd,
};
use crate::domain::address::{Address, ChannelKind};
use crate::store::integration::{ConversationsSettings, Integration};
use async_trait::async_trait;
use client::{ConversationsClient, PostMessage};
use serde_json::json;

/// The Twilio Conversations channel.
#[derive(Clone)]
pub struct TwilioConversations {
    client: ConversationsClient,
}

impl TwilioConversations {
    pub const NAME: &'static str = "conversations";

    /// `api_url` is Conversations' REST base URL (the emulator's in tests).
    pub fn new(api_url: &str, http: reqwest::Client) -> Self {
        Self {
            client: ConversationsClient::new(api_url, http),
        }
    }

    pub fn client(&self) -> &ConversationsClient {
        &self.client
    }
}

fn settings(integration: &Integration) -> Result<&ConversationsSettings, SendError> {
    integration
        .conversations
        .as_ref()
        .ok_or_else(|| SendError::Permanent {
            code: None,
            message: "not a Conversations integration".into(),
        })
}

fn service_of(integration: &Integration) -> Result<&str, SendError> {
    settings(integration)?
        .service_sid
        .as_deref()
        .ok_or_else(|| SendError::Permanent {
            code: None,
            message: "the integration has no serviceSid".into(),
        })
}

/// The Conversation SID a thread address names.
fn conversation_sid(thread: &Address) -> Result<&str, SendError> {
    match thread.channel() {
        ChannelKind::Chat if thread.e164().starts_with("CH") => Ok(thread.e164()),
        _ => Err(SendError::Permanent {
            code: None,
            message: format!("{thread} is not a Conversation"),
        }),
    }
}

/// Twilio's Conversations errors, each with what it means here.
fn conversations_error(err: crate::channel::twilio::rest_client::TwilioError) -> SendError {
    let detail = |what: &str| format!("{what} (Twilio error {})", err.code().unwrap_or_default());
    match err.code() {
        Some(50377) => SendError::Permanent {
            code: Some(50377),
            message: detail("the Conversation is closed on Twilio and takes no more messages"),
        },
        Some(20404) => SendError::Permanent {
            code: Some(20404),
            message: detail("the Conversation or the service was not found on the account"),
        },
        Some(50416) => SendError::Permanent {
            code: Some(50416),
            message: detail(
                "the participant and proxy address pair is already in another open Conversation",
            ),
        },
        Some(50433) => SendError::Permanent {
            code: Some(50433),
            message: detail("the participant is already in the Conversation"),
        },
        _ => send_error(err),
    }
}

#[async_trait]
impl Channel for TwilioConversations {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn has_threads(&self) -> bool {
        true
    }

    fn parse_event(
        &self,
        integration: &Integration,
        request: CallbackRequest<'_>,
    ) -> Result<Event, Refusal> {
        let params = verified(integration, request)?;
        let Some(conv) = &integration.conversations else {
            return Err(Refusal::Unauthenticated(
                "not a Conversations integration".into(),
            ));
        };
        let param = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        // A valid signature proves the sender knows the token; the event must also be about
        // this integration's account and service.
        if let (Some(ours), Some(theirs)) =
            (integration.account_sid.as_deref(), param("AccountSid"))
        {
            if ours != theirs {
                return Err(Refusal::Unauthenticated(format!(
                    "AccountSid {theirs} is not this integration's account"
                )));
            }
        }
        if let (Some(ours), Some(theirs)) = (conv.service_sid.as_deref(), param("ChatServiceSid")) {
            if ours != theirs {
                return Err(Refusal::Unauthenticated(format!(
                    "ChatServiceSid {theirs} is not this integration's service"
                )));
            }
        }
        events::parse(&params, &conv.identity)
    }

    fn parse_inbound(
        &self,
        integration: &Integration,
        request: CallbackRequest<'_>,
    ) -> Result<InboundMessage, Refusal> {
        match self.parse_event(integration, request)? {
            Event::Message(m) => Ok(m),
            _ => Err(Refusal::Malformed("not a message event".into())),
        }
    }

    fn parse_status(
        &self,
        integration: &Integration,
        request: CallbackRequest<'_>,
    ) -> Result<StatusUpdate, Refusal> {
        match self.parse_event(integration, request)? {
            Event::Status(s) => Ok(s),
            _ => Err(Refusal::Malformed("not a delivery receipt".into())),
        }
    }

    async fn send(
        &self,
        integration: &Integration,
        part: &OutgoingPart,
    ) -> Result<Accepted, SendError> {
        let creds = credentials(integration).ok_or_else(|| SendError::Permanent {
            code: None,
            message: "integration has no Twilio credentials".into(),
        })?;
        let service = service_of(integration)?;
        let identity = &settings(integration)?.identity;
        let conversation = conversation_sid(&part.to)?;
        // Media goes into Conversations through its media service; links are sent instead.
        let mut body = part.body.clone();
        for url in &part.media {
            if !body.is_empty() {
                body.push('\n');
            }
            body.push_str(url);
        }
        let attributes =
            json!({ events::OWN_ATTRIBUTE: {"integrationId": integration.id} }).to_string();
        let message = PostMessage {
            author: identity,
            body: &body,
            content_sid: part.template.as_ref().map(|t| t.content_sid.as_str()),
            content_variables: part.template.as_ref().and_then(|t| t.variables.as_deref()),
            attributes: &attributes,
        };
        let posted = self
            .client
            .post_message(&creds, service, conversation, &message)
            .await
            .map_err(conversations_error)?;
        let sid = posted["sid"].as_str().unwrap_or_default();
        if sid.is_empty() {
            return Err(SendError::Permanent {
                code: None,
                message: "Twilio answered without a message SID".into(),
            });
        }
        Ok(Accepted {
            id: ProviderId(sid.to_owned()),
            // Accepted into the Conversation; each participant's receipt follows.
            status: "sent".into(),
        })
    }

    async fn end_thread(
        &self,
        integration: &Integration,
        thread: &Address,
        how: ThreadEnd,
    ) -> Result<(), SendError> {
        let creds = credentials(integration).ok_or_else(|| SendError::Permanent {
            code: None,
            message: "integration has no Twilio credentials".into(),
        })?;
        let state = match how {
            ThreadEnd::Close => "closed",
            ThreadEnd::Deactivate => "inactive",
        };
        match self
            .client
            .set_state(
                &creds,
                service_of(integration)?,
                conversation_sid(thread)?,
                state,
            )
            .await
        {
            Ok(_) => Ok(()),
            // Already closed on Twilio's side: what we wanted.
            Err(e) if e.code() == Some(50377) => Ok(()),
            Err(e) => Err(conversations_error(e)),
        }
    }
}
