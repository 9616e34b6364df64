//! `setup` and `initiate` for Twilio integrations.
//!
//! ChatBotKit documents `setup` as verifying and connecting the number but implements it as a
//! no-op; Chatwire does it: the credentials are checked against Twilio (account fetch), the
//! integration's `phoneNumber` is found among the account's IncomingPhoneNumbers, and its
//! SmsUrl and StatusCallback are pointed at this server's webhook URLs.
use super::{crud, idempotent, Op, Routes};
use crate::app::AppState;
use crate::channel::twilio::messaging::{SetupError, TwilioMessaging};
use crate::domain::address::{Address, ChannelKind};
use crate::domain::{ids, now_ms, phone, reply_window};
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::{IdempotencyKey, JsonBody};
use crate::pipeline::render::{self, Route, Text};
use crate::store::integration::Integration;
use crate::store::outgoing::{Author, NewConversation, Outgoing, Session};
use crate::store::schema::TWILIO;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Map, Value};

pub fn register(r: Routes) -> Routes {
    let id_only =
        json!({"type": "object", "required": ["id"], "properties": {"id": {"type": "string"}}});
    let url = json!({"type": "string", "nullable": true});
    let setup_answer = json!({"type": "object", "required": ["id", "phoneNumber", "webhookUrl", "statusUrl", "previous"], "properties": {
        "id": {"type": "string"},
        "phoneNumber": {"type": "string", "description": "The number configured"},
        "numberSid": {"type": "string", "description": "Twilio's PN... SID of the number"},
        "webhookUrl": {"type": "string", "description": "The SmsUrl now set: where Twilio posts incoming messages"},
        "statusUrl": {"type": "string", "description": "The StatusCallback now set"},
        "previous": {"type": "object", "description": "The number's values before setup", "properties": {"webhookUrl": url, "statusUrl": url}}}});
    r.add(
        Op::post(
            "integration/twilio/{twilioIntegrationId}/setup",
            "setupTwilioIntegration",
            "Verify the Twilio credentials and point the number's SmsUrl and StatusCallback at Chatwire; answers with what was configured and the number's previous values",
            "integration",
        )
        .request(json!({"type": "object", "additionalProperties": false}))
        .response(setup_answer),
        setup,
    )
    .add(
        Op::post(
            "integration/twilio/{twilioIntegrationId}/initiate",
            "initiateTwilio",
            "Start a conversation towards a phone number (proactive outbound); refused for opted-out recipients",
            "integration",
        )
        .request(json!({"type": "object", "additionalProperties": false, "required": ["to", "text"], "properties": {
            "channel": {"type": "string", "enum": ["sms", "whatsapp"], "default": "sms"},
            "from": {"type": "string"}, "to": {"type": "string"}, "text": {"type": "string"},
            "contentSid": {"type": "string", "pattern": "^HX[0-9a-fA-F]{32}$", "description": "An approved template (Twilio Content SID) the message goes out as if it would leave outside WhatsApp's 24-hour window; overrides the integration's whatsappTemplate for this call (Chatwire)"},
            "contentVariables": {"description": "The template's variables: an object of strings or numbers, or a JSON string of one, as Twilio takes it; `{{body}}` in a value is the message's text (Chatwire)", "oneOf": [{"type": "object", "additionalProperties": {"oneOf": [{"type": "string"}, {"type": "number"}]}}, {"type": "string"}]}}}))
        .response(id_only),
        initiate,
    )
}

async fn load(state: &AppState, key: &str) -> ApiResult<Integration> {
    let ids = crud::Ids {
        parent: None,
        id: Some(key.to_owned()),
    };
    let (_, id) = crud::existing(state, &TWILIO, &ids).await?;
    state
        .db
        .integration(&state.cipher, &id)
        .await?
        .ok_or_else(ApiError::not_found)
}

async fn setup(
    State(state): State<AppState>,
    Path(key): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    if let Some(k) = body.keys().next() {
        return Err(ApiError::bad_request(format!("\"{k}\" is not allowed")));
    }
    let integration = load(&state, &key).await?;
    let base = format!(
        "{}/v1/integration/{}/{}",
        state.public_base,
        TwilioMessaging::NAME,
        integration.id
    );
    let (webhook_url, status_url) = (format!("{base}/webhook"), format!("{base}/status"));
    let before = state
        .twilio
        .configure_number(&integration, &webhook_url, &status_url)
        .await
        .map_err(|e| match e {
            SetupError::BadNumber(_) => ApiError::bad_request(e.to_string()),
            e if e.is_unreachable() => ApiError::bad_gateway(e.to_string()),
            e => ApiError::conflict(e.to_string()),
        })?;
    // From now on the number's messages are Chatwire's to answer, even those whose webhook
    // never arrives.
    state.db.start_backfill(&integration.id, now_ms()).await?;
    // What the number now holds: the URLs with the connection overrides appended.
    let overrides =
        crate::channel::twilio::overrides::ConnectionOverrides::chatwire().to_fragment();
    let (webhook_url, status_url) = (
        format!("{webhook_url}{overrides}"),
        format!("{status_url}{overrides}"),
    );
    tracing::info!(
        integration = %integration.id,
        number = %before.phone_number,
        webhook_url = %webhook_url,
        previous_webhook_url = before.sms_url.as_deref().unwrap_or("-"),
        "Twilio number pointed at Chatwire"
    );
    Ok(Json(json!({
        "id": integration.id,
        "phoneNumber": before.phone_number,
        "numberSid": before.sid,
        "webhookUrl": webhook_url,
        "statusUrl": status_url,
        "previous": {"webhookUrl": before.sms_url, "statusUrl": before.status_callback},
    })))
}

fn field<'a>(body: &'a Map<String, Value>, key: &str) -> ApiResult<Option<&'a str>> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ApiError::bad_request(format!("\"{key}\" must be a string"))),
    }
}

async fn initiate(
    State(state): State<AppState>,
    Path(key): Path<String>,
    IdempotencyKey(idempotency_key): IdempotencyKey,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    if let Some(k) = body.keys().find(|k| {
        ![
            "channel",
            "from",
            "to",
            "text",
            "contentSid",
            "contentVariables",
        ]
        .contains(&k.as_str())
    }) {
        return Err(ApiError::bad_request(format!("\"{k}\" is not allowed")));
    }
    let integration = load(&state, &key).await?;
    let channel = match field(&body, "channel")?.unwrap_or("sms") {
        "sms" => ChannelKind::Sms,
        "whatsapp" => ChannelKind::WhatsApp,
        "call" => {
            return Err(ApiError::new(
                StatusCode::NOT_IMPLEMENTED,
                "NOT_IMPLEMENTED",
                "Voice calls are not supported",
            ))
        }
        _ => {
            return Err(ApiError::bad_request(
                "\"channel\" must be one of [sms, whatsapp]",
            ))
        }
    };
    let text = field(&body, "text")?
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| ApiError::bad_request("\"text\" is required"))?;
    let template = reply_window::given(body.get("contentSid"), body.get("contentVariables"))
        .map_err(ApiError::bad_request)?;
    let to_raw = field(&body, "to")?.ok_or_else(|| ApiError::bad_request("\"to\" is required"))?;
    let to_e164 = phone::normalize_e164(
        to_raw.trim_start_matches("whatsapp:"),
        state.config.default_region,
    )
    .ok_or_else(|| ApiError::bad_request("\"to\" must be a phone number"))?;
    let from = match field(&body, "from")?.or(integration.phone_number.as_deref()) {
        Some(f) => {
            Address::parse(f).map_err(|e| ApiError::bad_request(format!("\"from\": {e}")))?
        }
        None => {
            return Err(ApiError::bad_request(
                "\"from\" is required when the integration has no phoneNumber",
            ))
        }
    };
    let to = Address::new(channel, &to_e164)
        .map_err(|e| ApiError::bad_request(format!("\"to\": {e}")))?;
    let from = from.with_channel(channel);
    if integration.account_sid.is_none() || integration.auth_token.is_none() {
        return Err(ApiError::bad_request(
            "The integration needs accountSid and authToken to send",
        ));
    }
    let Some(bot_id) = integration.bot_id.clone() else {
        return Err(ApiError::bad_request(
            "The integration needs a botId to start a conversation",
        ));
    };
    let response = json!({ "id": integration.id });
    let scope = format!("initiate:{}", integration.id);
    if let Some(first) = idempotent::earlier(&state, &scope, idempotency_key.as_deref()).await? {
        return Ok(first);
    }
    if state
        .db
        .is_opted_out(&integration.id, &to.to_string())
        .await?
    {
        return Err(ApiError::conflict(
            "The recipient has opted out (STOP) and cannot be messaged",
        ));
    }
    // WhatsApp's 24-hour window: told here rather than only in the message's delivery.
    if channel == ChannelKind::WhatsApp
        && integration.whatsapp_template.is_none()
        && template.is_none()
    {
        let last = state
            .db
            .whatsapp_last_inbound(&integration.id, &to.to_string())
            .await?;
        if !reply_window::is_open(last, now_ms()) {
            return Err(ApiError::conflict(format!(
                "Not sent: {}",
                reply_window::refusal()
            )));
        }
    }
    let route = Route {
        integration_id: integration.id.clone(),
        channel: TwilioMessaging::NAME.to_owned(),
        to,
        from,
    };
    let now = now_ms();
    let conversation_id = ids::new_id();
    let (messages, outbox) = render::render(
        &route,
        Some(&conversation_id),
        Author::Bot,
        None,
        &[Text {
            template,
            ..Text::plain(text)
        }],
    );
    let address = route.to.to_string();
    let write = Outgoing {
        conversation_id: Some(conversation_id),
        new_conversation: Some(NewConversation {
            bot_id: Some(bot_id),
            contact_id: None,
            meta: json!({"app": "twilio", "twilio": {"integrationId": integration.id, "address": address, "initiated": true}}).to_string(),
        }),
        messages,
        outbox,
        session: Some(Session {
            integration_id: integration.id.clone(),
            address,
            at: now,
        }),
        ..Outgoing::default()
    };
    idempotent::record(&state, write, scope, idempotency_key, response).await
}
