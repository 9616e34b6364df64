//! The Conversations subset (`https://conversations.twilio.com/v1`) Chatwire uses: services and
//! their post-event webhook, Address Configurations with auto-creation, conversations,
//! participants and messages, signed post-event webhooks (`onMessageAdded`,
//! `onDeliveryUpdated`, `onConversationStateUpdated`), and control endpoints that make a person
//! write into a conversation through SMS, WhatsApp or chat.
//!
//! Errors are Twilio's: 20404 for an unknown resource, 50377 for a closed conversation, 50416
//! for an address pair already in another open conversation, 50433 for a participant already
//! present. A WhatsApp participant outside its 24-hour window gets a `failed` receipt with
//! 63016 for a free-form message, as on Twilio.
use std::sync::Arc;
use std::time::SystemTime;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use subtle::ConstantTimeEq;

use super::control::ControlError;
use super::messages::first;
use super::rest::TwilioFailure;
use super::state::{new_sid, AccountConfig, Emulator};
use crate::channel::twilio::address::Address;

/// The service every emulated account starts with.
pub const DEFAULT_SERVICE_SID: &str = "IS00000000000000000000000000000001";

#[derive(Debug, Clone, Serialize)]
pub struct Service {
    pub sid: String,
    pub account_sid: String,
    pub friendly_name: String,
    pub post_webhook_url: Option<String>,
    pub filters: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AddressConfig {
    pub sid: String,
    pub account_sid: String,
    pub kind: String,
    pub address: String,
    pub auto_creation: bool,
    pub service_sid: Option<String>,
    pub webhook_url: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Participant {
    pub sid: String,
    pub identity: Option<String>,
    pub address: Option<String>,
    pub proxy_address: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ConvMessage {
    pub sid: String,
    pub index: u64,
    pub author: String,
    pub body: String,
    pub content_sid: Option<String>,
    pub content_variables: Option<String>,
    pub attributes: String,
    pub participant_sid: Option<String>,
    /// Each messaging participant's receipt: (participant SID, status, error code).
    pub receipts: Vec<(String, String, Option<i64>)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Conversation {
    pub sid: String,
    pub account_sid: String,
    pub service_sid: String,
    pub state: String,
    /// A conversation-scoped webhook (auto-creation of type `webhook`).
    pub webhook_url: Option<String>,
    pub participants: Vec<Participant>,
    pub messages: Vec<ConvMessage>,
}

#[derive(Default)]
pub(crate) struct ConversationsState {
    pub services: Vec<Service>,
    pub addresses: Vec<AddressConfig>,
    pub conversations: Vec<Conversation>,
}

impl ConversationsState {
    fn conversation_mut(&mut self, service: &str, sid: &str) -> Option<&mut Conversation> {
        self.conversations
            .iter_mut()
            .find(|c| c.sid == sid && c.service_sid == service)
    }
}

/// `POST /_emulator/conversations/inbound`: someone writes into a conversation. `to` is one of
/// our numbers or WhatsApp senders (SMS/WhatsApp: the conversation is found by the address
/// pair, or auto-created); for a chat identity (`chat:alice`), `conversationSid` names it.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConversationInbound {
    pub from: String,
    #[serde(default)]
    pub to: Option<String>,
    #[serde(default)]
    pub conversation_sid: Option<String>,
    #[serde(default)]
    pub body: String,
    /// Message attributes (JSON text), e.g. `{"role":"agent"}`.
    #[serde(default)]
    pub attributes: Option<String>,
}

/// What became of a [`ConversationInbound`].
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConversationInboundResult {
    pub conversation_sid: String,
    pub message_sid: String,
    /// The conversation was auto-created by this message.
    pub created: bool,
    /// Statuses of the webhooks delivered for the message.
    pub webhook_statuses: Vec<Option<u16>>,
}

type Shared = Arc<Emulator>;
type Reply = Result<Response, TwilioFailure>;

fn iso(t: SystemTime) -> String {
    time::OffsetDateTime::from(t)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn not_found(what: &str) -> TwilioFailure {
    TwilioFailure::new(
        404,
        20404,
        format!("The requested resource {what} was not found"),
    )
}

fn form(body: &[u8]) -> Result<Vec<(String, String)>, TwilioFailure> {
    serde_urlencoded::from_bytes(body)
        .map_err(|_| TwilioFailure::new(400, 20001, "The request body is not form-encoded"))
}

/// Basic auth against any configured account (Conversations URLs carry no account SID).
fn authenticate(emu: &Emulator, headers: &HeaderMap) -> Result<AccountConfig, TwilioFailure> {
    let denied = || TwilioFailure::new(401, 20003, "Authenticate");
    let decoded = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|v| {
            base64::engine::general_purpose::STANDARD
                .decode(v.trim())
                .ok()
        })
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(denied)?;
    let (sid, token) = decoded.split_once(':').ok_or_else(denied)?;
    emu.accounts()
        .into_iter()
        .find(|a| a.sid == sid && bool::from(a.auth_token.as_bytes().ct_eq(token.as_bytes())))
        .ok_or_else(denied)
}

fn webhooks_enabled(headers: &HeaderMap) -> bool {
    headers
        .get("x-twilio-webhook-enabled")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

fn service_json(s: &Service) -> Value {
    json!({"sid": s.sid, "account_sid": s.account_sid, "friendly_name": s.friendly_name,
           "url": format!("https://conversations.twilio.com/v1/Services/{}", s.sid)})
}

fn webhook_config_json(s: &Service) -> Value {
    json!({"account_sid": s.account_sid, "chat_service_sid": s.sid, "pre_webhook_url": null,
           "post_webhook_url": s.post_webhook_url, "filters": s.filters, "method": "POST",
           "url": format!("https://conversations.twilio.com/v1/Services/{}/Configuration/Webhooks", s.sid)})
}

fn address_json(a: &AddressConfig) -> Value {
    json!({"sid": a.sid, "account_sid": a.account_sid, "type": a.kind, "address": a.address,
           "friendly_name": null, "address_country": null,
           "auto_creation": {"enabled": a.auto_creation, "type": "default",
              "conversation_service_sid": a.service_sid, "webhook_url": a.webhook_url,
              "webhook_method": "POST", "webhook_filters": []},
           "url": format!("https://conversations.twilio.com/v1/Configuration/Addresses/{}", a.sid)})
}

fn conversation_json(c: &Conversation) -> Value {
    json!({"sid": c.sid, "account_sid": c.account_sid, "chat_service_sid": c.service_sid,
           "state": c.state, "attributes": "{}", "friendly_name": null, "unique_name": null,
           "timers": {}, "bindings": {},
           "url": format!("https://conversations.twilio.com/v1/Services/{}/Conversations/{}", c.service_sid, c.sid)})
}

fn participant_json(c: &Conversation, p: &Participant) -> Value {
    let binding = p.address.as_ref().map(|a| {
        let kind = if a.starts_with("whatsapp:") {
            "whatsapp"
        } else {
            "sms"
        };
        json!({"type": kind, "address": a, "proxy_address": p.proxy_address})
    });
    json!({"sid": p.sid, "account_sid": c.account_sid, "conversation_sid": c.sid, "identity": p.identity,
           "messaging_binding": binding, "attributes": "{}", "role_sid": null})
}

fn message_json(c: &Conversation, m: &ConvMessage) -> Value {
    let count = |s: &str| m.receipts.iter().filter(|r| r.1 == s).count();
    let summary = |n: usize| match n {
        0 => "none",
        n if n == m.receipts.len() => "all",
        _ => "some",
    };
    json!({"sid": m.sid, "account_sid": c.account_sid, "conversation_sid": c.sid, "chat_service_sid": c.service_sid,
           "index": m.index, "author": m.author, "body": m.body, "media": null, "attributes": m.attributes,
           "participant_sid": m.participant_sid, "content_sid": m.content_sid,
           "delivery": (!m.receipts.is_empty()).then(|| json!({"total": m.receipts.len(),
               "sent": summary(count("sent") + count("delivered")), "delivered": summary(count("delivered")),
               "read": "none", "failed": summary(count("failed")), "undelivered": "none"})),
           "url": format!("https://conversations.twilio.com/v1/Services/{}/Conversations/{}/Messages/{}", c.service_sid, c.sid, m.sid)})
}

fn page(key: &str, items: Vec<Value>) -> Value {
    json!({key: items, "meta": {"page": 0, "page_size": 1000, "first_page_url": null,
           "previous_page_url": null, "next_page_url": null, "url": null, "key": key}})
}

pub(crate) fn routes() -> Router<Shared> {
    Router::new()
        .route("/v1/Services", post(create_service))
        .route("/v1/Services/{service}", get(fetch_service))
        .route(
            "/v1/Services/{service}/Configuration/Webhooks",
            get(fetch_webhooks).post(update_webhooks),
        )
        .route(
            "/v1/Configuration/Addresses",
            get(list_addresses).post(create_address),
        )
        .route("/v1/Configuration/Addresses/{sid}", post(update_address))
        .route(
            "/v1/Services/{service}/Conversations",
            post(create_conversation),
        )
        .route(
            "/v1/Services/{service}/Conversations/{conversation}",
            get(fetch_conversation).post(update_conversation),
        )
        .route(
            "/v1/Services/{service}/Conversations/{conversation}/Participants",
            get(list_participants).post(add_participant),
        )
        .route(
            "/v1/Services/{service}/Conversations/{conversation}/Messages",
            get(list_messages).post(create_message),
        )
        .route("/_emulator/conversations", get(dump))
        .route("/_emulator/conversations/inbound", post(control_inbound))
        .route(
            "/_emulator/conversations/{conversation}/close",
            post(control_close),
        )
}

async fn create_service(State(emu): State<Shared>, headers: HeaderMap, body: Bytes) -> Reply {
    let account = authenticate(&emu, &headers)?;
    let form = form(&body)?;
    let name = first(&form, "FriendlyName").ok_or_else(|| {
        TwilioFailure::new(
            400,
            20001,
            "Missing required parameter FriendlyName in the post body",
        )
    })?;
    let service = Service {
        sid: new_sid("IS"),
        account_sid: account.sid,
        friendly_name: name.to_owned(),
        post_webhook_url: None,
        filters: Vec::new(),
    };
    let out = service_json(&service);
    emu.lock().conversations.services.push(service);
    Ok((StatusCode::CREATED, Json(out)).into_response())
}

fn service_of(
    emu: &Emulator,
    account: &AccountConfig,
    sid: &str,
) -> Result<Service, TwilioFailure> {
    emu.lock()
        .conversations
        .services
        .iter()
        .find(|s| s.sid == sid && s.account_sid == account.sid)
        .cloned()
        .ok_or_else(|| not_found(&format!("/v1/Services/{sid}")))
}

async fn fetch_service(
    State(emu): State<Shared>,
    Path(sid): Path<String>,
    headers: HeaderMap,
) -> Reply {
    let account = authenticate(&emu, &headers)?;
    Ok(Json(service_json(&service_of(&emu, &account, &sid)?)).into_response())
}

async fn fetch_webhooks(
    State(emu): State<Shared>,
    Path(sid): Path<String>,
    headers: HeaderMap,
) -> Reply {
    let account = authenticate(&emu, &headers)?;
    Ok(Json(webhook_config_json(&service_of(&emu, &account, &sid)?)).into_response())
}

async fn update_webhooks(
    State(emu): State<Shared>,
    Path(sid): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    let account = authenticate(&emu, &headers)?;
    service_of(&emu, &account, &sid)?;
    let form = form(&body)?;
    let mut inner = emu.lock();
    let service = inner
        .conversations
        .services
        .iter_mut()
        .find(|s| s.sid == sid)
        .ok_or_else(|| not_found(&sid))?;
    if let Some(url) = first(&form, "PostWebhookUrl") {
        service.post_webhook_url = Some(url.to_owned());
    }
    let filters: Vec<String> = form
        .iter()
        .filter(|(k, v)| k == "Filters" && !v.is_empty())
        .map(|(_, v)| v.clone())
        .collect();
    if !filters.is_empty() {
        service.filters = filters;
    }
    Ok(Json(webhook_config_json(service)).into_response())
}

async fn list_addresses(State(emu): State<Shared>, headers: HeaderMap) -> Reply {
    let account = authenticate(&emu, &headers)?;
    let items = emu
        .lock()
        .conversations
        .addresses
        .iter()
        .filter(|a| a.account_sid == account.sid)
        .map(address_json)
        .collect();
    Ok(Json(page("address_configurations", items)).into_response())
}

/// Applies the `AutoCreation.*` fields of a create or update.
fn apply_auto_creation(config: &mut AddressConfig, form: &[(String, String)]) {
    if let Some(enabled) = first(form, "AutoCreation.Enabled") {
        config.auto_creation = enabled.eq_ignore_ascii_case("true");
    }
    if let Some(service) = first(form, "AutoCreation.ConversationServiceSid") {
        config.service_sid = Some(service.to_owned());
    }
    let kind = first(form, "AutoCreation.Type").unwrap_or("default");
    if kind == "webhook" {
        config.webhook_url = first(form, "AutoCreation.WebhookUrl").map(str::to_owned);
    }
}

async fn create_address(State(emu): State<Shared>, headers: HeaderMap, body: Bytes) -> Reply {
    let account = authenticate(&emu, &headers)?;
    let form = form(&body)?;
    let kind = first(&form, "Type")
        .filter(|t| {
            [
                "sms",
                "whatsapp",
                "messenger",
                "gbm",
                "email",
                "rcs",
                "apple",
                "chat",
            ]
            .contains(t)
        })
        .ok_or_else(|| {
            TwilioFailure::new(
                400,
                20001,
                "Missing or invalid required parameter Type in the post body",
            )
        })?;
    let address = first(&form, "Address").ok_or_else(|| {
        TwilioFailure::new(
            400,
            20001,
            "Missing required parameter Address in the post body",
        )
    })?;
    let mut inner = emu.lock();
    if inner
        .conversations
        .addresses
        .iter()
        .any(|a| a.address == address)
    {
        return Err(TwilioFailure::new(
            409,
            20409,
            format!("An Address Configuration for {address} already exists"),
        ));
    }
    let mut config = AddressConfig {
        sid: new_sid("IG"),
        account_sid: account.sid,
        kind: kind.to_owned(),
        address: address.to_owned(),
        auto_creation: false,
        service_sid: None,
        webhook_url: None,
    };
    apply_auto_creation(&mut config, &form);
    let out = address_json(&config);
    inner.conversations.addresses.push(config);
    Ok((StatusCode::CREATED, Json(out)).into_response())
}

async fn update_address(
    State(emu): State<Shared>,
    Path(sid): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    let account = authenticate(&emu, &headers)?;
    let form = form(&body)?;
    let mut inner = emu.lock();
    let config = inner
        .conversations
        .addresses
        .iter_mut()
        .find(|a| a.sid == sid && a.account_sid == account.sid)
        .ok_or_else(|| not_found(&format!("/v1/Configuration/Addresses/{sid}")))?;
    apply_auto_creation(config, &form);
    Ok(Json(address_json(config)).into_response())
}

async fn create_conversation(
    State(emu): State<Shared>,
    Path(service): Path<String>,
    headers: HeaderMap,
) -> Reply {
    let account = authenticate(&emu, &headers)?;
    service_of(&emu, &account, &service)?;
    let conversation = Conversation {
        sid: new_sid("CH"),
        account_sid: account.sid,
        service_sid: service,
        state: "active".into(),
        webhook_url: None,
        participants: Vec::new(),
        messages: Vec::new(),
    };
    let out = conversation_json(&conversation);
    emu.lock().conversations.conversations.push(conversation);
    Ok((StatusCode::CREATED, Json(out)).into_response())
}

fn conversation_of(
    emu: &Emulator,
    account: &AccountConfig,
    service: &str,
    sid: &str,
) -> Result<Conversation, TwilioFailure> {
    emu.lock()
        .conversations
        .conversations
        .iter()
        .find(|c| c.sid == sid && c.service_sid == service && c.account_sid == account.sid)
        .cloned()
        .ok_or_else(|| not_found(&format!("/v1/Services/{service}/Conversations/{sid}")))
}

async fn fetch_conversation(
    State(emu): State<Shared>,
    Path((service, sid)): Path<(String, String)>,
    headers: HeaderMap,
) -> Reply {
    let account = authenticate(&emu, &headers)?;
    Ok(Json(conversation_json(&conversation_of(
        &emu, &account, &service, &sid,
    )?))
    .into_response())
}

async fn update_conversation(
    State(emu): State<Shared>,
    Path((service, sid)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    let account = authenticate(&emu, &headers)?;
    let current = conversation_of(&emu, &account, &service, &sid)?;
    let form = form(&body)?;
    let Some(state) = first(&form, "State") else {
        return Ok(Json(conversation_json(&current)).into_response());
    };
    if !["active", "inactive", "closed"].contains(&state) {
        return Err(TwilioFailure::new(
            400,
            20001,
            format!("Invalid State {state}"),
        ));
    }
    if current.state == "closed" && state != "closed" {
        return Err(TwilioFailure::new(
            400,
            50377,
            "Can't update conversation as it's in final closed state",
        ));
    }
    let out = emu
        .set_conversation_state(&service, &sid, state, webhooks_enabled(&headers), "API")
        .await;
    Ok(Json(out).into_response())
}

async fn list_participants(
    State(emu): State<Shared>,
    Path((service, sid)): Path<(String, String)>,
    headers: HeaderMap,
) -> Reply {
    let account = authenticate(&emu, &headers)?;
    let c = conversation_of(&emu, &account, &service, &sid)?;
    let items = c
        .participants
        .iter()
        .map(|p| participant_json(&c, p))
        .collect();
    Ok(Json(page("participants", items)).into_response())
}

async fn add_participant(
    State(emu): State<Shared>,
    Path((service, sid)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    let account = authenticate(&emu, &headers)?;
    conversation_of(&emu, &account, &service, &sid)?;
    let form = form(&body)?;
    let identity = first(&form, "Identity").map(str::to_owned);
    let address = first(&form, "MessagingBinding.Address").map(str::to_owned);
    let proxy = first(&form, "MessagingBinding.ProxyAddress").map(str::to_owned);
    if let Some(a) = &address {
        if Address::parse(a).is_err() {
            return Err(TwilioFailure::new(
                400,
                50407,
                format!("Invalid messaging binding address {a}"),
            ));
        }
    }
    if identity.is_none() && address.is_none() {
        return Err(TwilioFailure::new(
            400,
            20001,
            "Either Identity or MessagingBinding.Address is required",
        ));
    }
    let mut inner = emu.lock();
    let state = &mut inner.conversations;
    if let (Some(a), Some(p)) = (&address, &proxy) {
        let in_use = state.conversations.iter().any(|c| {
            c.sid != sid
                && c.state != "closed"
                && c.participants
                    .iter()
                    .any(|x| x.address.as_ref() == Some(a) && x.proxy_address.as_ref() == Some(p))
        });
        if in_use {
            return Err(TwilioFailure::new(409, 50416, "A binding for this participant and proxy address already exists in another Conversation"));
        }
    }
    let conversation = state
        .conversation_mut(&service, &sid)
        .ok_or_else(|| not_found(&sid))?;
    if conversation.state == "closed" {
        return Err(TwilioFailure::new(
            400,
            50377,
            "Can't update conversation as it's in final closed state",
        ));
    }
    let duplicate = conversation.participants.iter().any(|p| {
        (identity.is_some() && p.identity == identity)
            || (address.is_some() && p.address == address)
    });
    if duplicate {
        return Err(TwilioFailure::new(409, 50433, "Participant already exists"));
    }
    let participant = Participant {
        sid: new_sid("MB"),
        identity,
        address,
        proxy_address: proxy,
    };
    conversation.participants.push(participant.clone());
    let out = participant_json(conversation, &participant);
    Ok((StatusCode::CREATED, Json(out)).into_response())
}

async fn list_messages(
    State(emu): State<Shared>,
    Path((service, sid)): Path<(String, String)>,
    headers: HeaderMap,
) -> Reply {
    let account = authenticate(&emu, &headers)?;
    let c = conversation_of(&emu, &account, &service, &sid)?;
    let items = c.messages.iter().map(|m| message_json(&c, m)).collect();
    Ok(Json(page("messages", items)).into_response())
}

async fn create_message(
    State(emu): State<Shared>,
    Path((service, sid)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    let account = authenticate(&emu, &headers)?;
    conversation_of(&emu, &account, &service, &sid)?;
    let form = form(&body)?;
    let text = first(&form, "Body").unwrap_or_default();
    let content_sid = first(&form, "ContentSid").map(str::to_owned);
    if text.is_empty() && content_sid.is_none() && first(&form, "MediaSid").is_none() {
        return Err(TwilioFailure::new(
            400,
            20001,
            "Body, MediaSid or ContentSid is required",
        ));
    }
    if text.chars().count() > crate::sms::MAX_BODY_CHARS {
        return Err(TwilioFailure::new(
            400,
            50010,
            "Message body is too long (at most 1600 characters)",
        ));
    }
    let added = emu
        .add_message(
            &service,
            &sid,
            NewConvMessage {
                author: first(&form, "Author").unwrap_or("system").to_owned(),
                body: text.to_owned(),
                content_sid,
                content_variables: first(&form, "ContentVariables").map(str::to_owned),
                attributes: first(&form, "Attributes").unwrap_or("{}").to_owned(),
                participant_sid: None,
                source: "API",
            },
            webhooks_enabled(&headers),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(added)).into_response())
}

async fn dump(State(emu): State<Shared>) -> Response {
    Json(emu.conversations()).into_response()
}

async fn control_inbound(State(emu): State<Shared>, body: Bytes) -> Result<Response, ControlError> {
    let request: ConversationInbound = serde_json::from_slice(&body)
        .map_err(|e| ControlError::bad_request(format!("invalid JSON: {e}")))?;
    Ok(Json(emu.conversation_inbound(&request).await?).into_response())
}

async fn control_close(
    State(emu): State<Shared>,
    Path(sid): Path<String>,
) -> Result<Response, ControlError> {
    emu.close_conversation(&sid).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A message to add to a conversation.
pub(crate) struct NewConvMessage {
    pub author: String,
    pub body: String,
    pub content_sid: Option<String>,
    pub content_variables: Option<String>,
    pub attributes: String,
    pub participant_sid: Option<String>,
    pub source: &'static str,
}

/// A webhook to deliver: URL, account token and parameters.
struct Hook {
    urls: Vec<String>,
    token: String,
    params: Vec<(String, String)>,
}

impl Emulator {
    /// Every conversation, with its participants and messages.
    pub fn conversations(&self) -> Vec<Conversation> {
        self.lock().conversations.conversations.clone()
    }

    /// The webhook targets of `event` in a conversation: the service's post-event webhook (if
    /// its filters name the event) and the conversation's own.
    fn hook(
        &self,
        service: &str,
        conversation: &str,
        event: &str,
        params: Vec<(&str, String)>,
    ) -> Hook {
        let inner = self.lock();
        let state = &inner.conversations;
        let mut urls = Vec::new();
        let mut account = String::new();
        if let Some(s) = state.services.iter().find(|s| s.sid == service) {
            account.clone_from(&s.account_sid);
            if let Some(url) = &s.post_webhook_url {
                if s.filters.is_empty() || s.filters.iter().any(|f| f == event) {
                    urls.push(url.clone());
                }
            }
        }
        if let Some(url) = state
            .conversations
            .iter()
            .find(|c| c.sid == conversation)
            .and_then(|c| c.webhook_url.clone())
        {
            if !urls.contains(&url) {
                urls.push(url);
            }
        }
        let token = inner.token(&account).unwrap_or_default();
        let mut all = vec![
            ("EventType".to_owned(), event.to_owned()),
            ("AccountSid".to_owned(), account),
            ("ChatServiceSid".to_owned(), service.to_owned()),
            ("ConversationSid".to_owned(), conversation.to_owned()),
            ("RetryCount".to_owned(), "0".to_owned()),
            ("DateCreated".to_owned(), iso(SystemTime::now())),
        ];
        all.extend(params.into_iter().map(|(k, v)| (k.to_owned(), v)));
        Hook {
            urls,
            token,
            params: all,
        }
    }

    async fn fire(&self, hook: Hook) -> Vec<Option<u16>> {
        let mut statuses = Vec::new();
        for url in &hook.urls {
            let idempotency = new_sid("");
            let delivery = self
                .deliver(
                    url,
                    "POST",
                    &hook.token,
                    &hook.params,
                    &idempotency,
                    &self.retry_plan(url).unwrap_or_default(),
                )
                .await;
            statuses.push(delivery.status);
        }
        statuses
    }

    /// Adds a message, fires `onMessageAdded` when asked, and delivers it to each messaging
    /// participant (receipts follow as `onDeliveryUpdated`).
    pub(crate) async fn add_message(
        self: &Arc<Self>,
        service: &str,
        sid: &str,
        message: NewConvMessage,
        fire: bool,
    ) -> Result<Value, TwilioFailure> {
        let (out, added, receipts) = {
            let mut inner = self.lock();
            let whatsapp_open: Vec<(String, bool)> = {
                let c = inner
                    .conversations
                    .conversations
                    .iter()
                    .find(|c| c.sid == sid)
                    .ok_or_else(|| not_found(sid))?;
                c.participants
                    .iter()
                    .filter(|p| {
                        p.address
                            .as_deref()
                            .is_some_and(|a| a.starts_with("whatsapp:"))
                    })
                    .map(|p| {
                        let pair = (
                            p.proxy_address
                                .clone()
                                .unwrap_or_default()
                                .trim_start_matches("whatsapp:")
                                .to_owned(),
                            p.address
                                .clone()
                                .unwrap_or_default()
                                .trim_start_matches("whatsapp:")
                                .to_owned(),
                        );
                        (p.sid.clone(), inner.whatsapp_window_open(&pair))
                    })
                    .collect()
            };
            let c = inner
                .conversations
                .conversation_mut(service, sid)
                .ok_or_else(|| not_found(sid))?;
            if c.state == "closed" {
                return Err(TwilioFailure::new(
                    400,
                    50377,
                    "Can't update conversation as it's in final closed state",
                ));
            }
            let index = c.messages.last().map_or(0, |m| m.index + 1);
            // Everyone with a messaging binding but the author gets the message.
            let receipts: Vec<(String, String, Option<i64>)> = c
                .participants
                .iter()
                .filter(|p| {
                    p.address.is_some()
                        && p.sid.as_str() != message.participant_sid.as_deref().unwrap_or("")
                })
                .map(|p| {
                    let closed = whatsapp_open.iter().any(|(s, open)| s == &p.sid && !open);
                    if closed && message.content_sid.is_none() {
                        (p.sid.clone(), "failed".to_owned(), Some(63016))
                    } else {
                        (p.sid.clone(), "delivered".to_owned(), None)
                    }
                })
                .collect();
            let added = ConvMessage {
                sid: new_sid("IM"),
                index,
                author: message.author.clone(),
                body: message.body.clone(),
                content_sid: message.content_sid.clone(),
                content_variables: message.content_variables.clone(),
                attributes: message.attributes.clone(),
                participant_sid: message.participant_sid.clone(),
                receipts: receipts.clone(),
            };
            c.messages.push(added.clone());
            (message_json(c, &added), added, receipts)
        };
        self.created.notify_waiters();
        if fire {
            let mut params = vec![
                ("MessageSid", added.sid.clone()),
                ("Index", added.index.to_string()),
                ("Body", added.body.clone()),
                ("Author", added.author.clone()),
                ("Attributes", added.attributes.clone()),
                ("Source", message.source.to_owned()),
            ];
            if let Some(p) = &added.participant_sid {
                params.push(("ParticipantSid", p.clone()));
            }
            if message.source == "SDK" {
                params.push(("ClientIdentity", added.author.clone()));
            }
            let hook = self.hook(service, sid, "onMessageAdded", params);
            self.fire(hook).await;
        }
        // Receipts arrive later, as Twilio's do.
        let emu = self.clone();
        let (service, sid) = (service.to_owned(), sid.to_owned());
        tokio::spawn(async move {
            for (participant, status, code) in receipts {
                for step in ["sent", status.as_str()] {
                    if step == "sent" && status == "failed" {
                        continue;
                    }
                    tokio::time::sleep(emu.timing.status_delay).await;
                    let mut params = vec![
                        ("MessageSid", added.sid.clone()),
                        ("ParticipantSid", participant.clone()),
                        ("DeliveryReceiptSid", new_sid("DY")),
                        ("ChannelMessageSid", new_sid("SM")),
                        ("Status", step.to_owned()),
                    ];
                    if let Some(code) = code {
                        params.push(("ErrorCode", code.to_string()));
                    }
                    let hook = emu.hook(&service, &sid, "onDeliveryUpdated", params);
                    emu.fire(hook).await;
                }
            }
        });
        Ok(out)
    }

    async fn set_conversation_state(
        &self,
        service: &str,
        sid: &str,
        state: &str,
        fire: bool,
        reason: &str,
    ) -> Value {
        let (out, from) = {
            let mut inner = self.lock();
            let Some(c) = inner.conversations.conversation_mut(service, sid) else {
                return Value::Null;
            };
            let from = std::mem::replace(&mut c.state, state.to_owned());
            (conversation_json(c), from)
        };
        if fire && from != state {
            let hook = self.hook(
                service,
                sid,
                "onConversationStateUpdated",
                vec![
                    ("StateFrom", from),
                    ("StateTo", state.to_owned()),
                    ("Reason", reason.to_owned()),
                ],
            );
            self.fire(hook).await;
        }
        out
    }

    /// Closes a conversation as Twilio's `Timers.Closed` does, firing
    /// `onConversationStateUpdated`.
    pub async fn close_conversation(&self, sid: &str) -> Result<(), ControlError> {
        let service = self
            .lock()
            .conversations
            .conversations
            .iter()
            .find(|c| c.sid == sid)
            .map(|c| c.service_sid.clone())
            .ok_or_else(|| ControlError::not_found(format!("no conversation {sid}")))?;
        self.set_conversation_state(&service, sid, "closed", true, "TIMER")
            .await;
        Ok(())
    }

    /// Someone writes into a conversation (see [`ConversationInbound`]).
    pub async fn conversation_inbound(
        self: &Arc<Self>,
        request: &ConversationInbound,
    ) -> Result<ConversationInboundResult, ControlError> {
        let (service, sid, participant, created, source) = if let Some(identity) =
            request.from.strip_prefix("chat:")
        {
            let sid = request.conversation_sid.clone().ok_or_else(|| {
                ControlError::bad_request("a chat participant needs conversationSid")
            })?;
            let mut inner = self.lock();
            let c = inner
                .conversations
                .conversations
                .iter_mut()
                .find(|c| c.sid == sid)
                .ok_or_else(|| ControlError::not_found(format!("no conversation {sid}")))?;
            let participant = match c
                .participants
                .iter()
                .find(|p| p.identity.as_deref() == Some(identity))
            {
                Some(p) => p.sid.clone(),
                None => {
                    let p = Participant {
                        sid: new_sid("MB"),
                        identity: Some(identity.to_owned()),
                        address: None,
                        proxy_address: None,
                    };
                    c.participants.push(p.clone());
                    p.sid
                }
            };
            (c.service_sid.clone(), sid, participant, false, "SDK")
        } else {
            let from = Address::parse(&request.from)
                .map_err(|e| ControlError::bad_request(format!("from: {e}")))?;
            let to = request
                .to
                .as_deref()
                .ok_or_else(|| ControlError::bad_request("to is required for SMS and WhatsApp"))
                .and_then(|t| {
                    Address::parse(t).map_err(|e| ControlError::bad_request(format!("to: {e}")))
                })?;
            if from.channel() != to.channel() {
                return Err(ControlError::bad_request(
                    "from and to must be on the same channel",
                ));
            }
            let (from, to) = (from.to_string(), to.to_string());
            let whatsapp = request.from.starts_with("whatsapp:");
            let mut inner = self.lock();
            if whatsapp {
                let pair = (
                    to.trim_start_matches("whatsapp:").to_owned(),
                    from.trim_start_matches("whatsapp:").to_owned(),
                );
                inner.whatsapp_inbound.insert(pair, SystemTime::now());
            }
            let state = &mut inner.conversations;
            let open = state.conversations.iter().find(|c| {
                c.state != "closed"
                    && c.participants.iter().any(|p| {
                        p.address.as_ref() == Some(&from) && p.proxy_address.as_ref() == Some(&to)
                    })
            });
            match open {
                Some(c) => {
                    let p = c
                        .participants
                        .iter()
                        .find(|p| p.address.as_ref() == Some(&from))
                        .map(|p| p.sid.clone())
                        .unwrap_or_default();
                    (
                        c.service_sid.clone(),
                        c.sid.clone(),
                        p,
                        false,
                        if whatsapp { "WHATSAPP" } else { "SMS" },
                    )
                }
                None => {
                    let config = state
                        .addresses
                        .iter()
                        .find(|a| a.address == to && a.auto_creation)
                        .cloned()
                        .ok_or_else(|| ControlError::conflict(format!("{to} has no Address Configuration with auto-creation and {from} is in no open conversation with it")))?;
                    let service = config
                        .service_sid
                        .clone()
                        .unwrap_or_else(|| DEFAULT_SERVICE_SID.to_owned());
                    let participant = Participant {
                        sid: new_sid("MB"),
                        identity: None,
                        address: Some(from.clone()),
                        proxy_address: Some(to.clone()),
                    };
                    let sid = new_sid("CH");
                    state.conversations.push(Conversation {
                        sid: sid.clone(),
                        account_sid: config.account_sid.clone(),
                        service_sid: service.clone(),
                        state: "active".into(),
                        webhook_url: config.webhook_url.clone(),
                        participants: vec![participant.clone()],
                        messages: Vec::new(),
                    });
                    (
                        service,
                        sid,
                        participant.sid,
                        true,
                        if whatsapp { "WHATSAPP" } else { "SMS" },
                    )
                }
            }
        };
        let author = if source == "SDK" {
            request.from.trim_start_matches("chat:").to_owned()
        } else {
            request.from.clone()
        };
        let out = self
            .add_message(
                &service,
                &sid,
                NewConvMessage {
                    author,
                    body: request.body.clone(),
                    content_sid: None,
                    content_variables: None,
                    attributes: request.attributes.clone().unwrap_or_else(|| "{}".into()),
                    participant_sid: Some(participant),
                    source,
                },
                false,
            )
            .await
            .map_err(|e| ControlError::conflict(e.body.message.clone().unwrap_or_default()))?;
        let message_sid = out["sid"].as_str().unwrap_or_default().to_owned();
        let index = out["index"].as_u64().unwrap_or_default();
        // A person's message always fires the webhooks (it is not REST-initiated).
        let (body, author, attributes, participant_sid) = {
            let inner = self.lock();
            let m = inner
                .conversations
                .conversations
                .iter()
                .find(|c| c.sid == sid)
                .and_then(|c| c.messages.iter().find(|m| m.sid == message_sid))
                .cloned();
            m.map(|m| {
                (
                    m.body,
                    m.author,
                    m.attributes,
                    m.participant_sid.unwrap_or_default(),
                )
            })
            .unwrap_or_default()
        };
        let mut params = vec![
            ("MessageSid", message_sid.clone()),
            ("Index", index.to_string()),
            ("Body", body),
            ("Author", author.clone()),
            ("Attributes", attributes),
            ("ParticipantSid", participant_sid),
            ("Source", source.to_owned()),
        ];
        if source == "SDK" {
            params.push(("ClientIdentity", author));
        }
        let hook = self.hook(&service, &sid, "onMessageAdded", params);
        let webhook_statuses = self.fire(hook).await;
        Ok(ConversationInboundResult {
            conversation_sid: sid,
            message_sid,
            created,
            webhook_statuses,
        })
    }
}
