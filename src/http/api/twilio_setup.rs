//! `setup` and `initiate` for Twilio integrations.
//!
//! ChatBotKit documents `setup` as verifying and connecting the number but implements it as a
//! no-op; Chatwire does it: the credentials are checked against Twilio (account fetch), the
//! integration's `phoneNumber` is found among the account's IncomingPhoneNumbers, and its
//! SmsUrl and StatusCallback are pointed at this server's webhook URLs.
use super::{crud, Op, Routes};
use crate::app::AppState;
use crate::channel::twilio::address::{Address, ChannelKind};
use crate::channel::twilio::rest_client::{Credentials, TwilioError};
use crate::domain::{ids, now_ms, phone};
use crate::http::api::resources::{CONVERSATION, TWILIO};
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::JsonBody;
use crate::store::integration::Integration;
use crate::store::outbox::NewOutbox;
use crate::store::Param;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use secrecy::ExposeSecret;
use serde_json::{json, Map, Value};

pub fn register(r: Routes) -> Routes {
    let id_only =
        json!({"type": "object", "required": ["id"], "properties": {"id": {"type": "string"}}});
    r.add(
        Op {
            method: "post",
            path: "integration/twilio/{twilioIntegrationId}/setup".into(),
            id: "setupTwilioIntegration".into(),
            summary: "Verify the Twilio credentials and point the number's SmsUrl and StatusCallback at Chatwire".into(),
            tag: "integration".into(),
            request: Some(json!({"type": "object", "additionalProperties": false})),
            response: id_only.clone(),
        },
        setup,
    )
    .add(
        Op {
            method: "post",
            path: "integration/twilio/{twilioIntegrationId}/initiate".into(),
            id: "initiateTwilio".into(),
            summary: "Start a conversation towards a phone number (proactive outbound); refused for opted-out recipients".into(),
            tag: "integration".into(),
            request: Some(json!({"type": "object", "additionalProperties": false, "required": ["to", "text"], "properties": {
                "channel": {"type": "string", "enum": ["sms", "whatsapp"], "default": "sms"},
                "from": {"type": "string"}, "to": {"type": "string"}, "text": {"type": "string"}}})),
            response: id_only,
        },
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

fn twilio_error(err: TwilioError, what: &str) -> ApiError {
    match err.status() {
        Some(401) | Some(403) => ApiError::conflict(format!(
            "Twilio rejected the credentials while {what} (code {:?})",
            err.code()
        )),
        Some(404) => ApiError::conflict(format!("Twilio could not find the account while {what}")),
        _ if err.is_retryable() => {
            ApiError::bad_gateway(format!("Twilio is unreachable while {what}: {err}"))
        }
        _ => ApiError::conflict(format!("Twilio refused {what}: {err}")),
    }
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
    let (Some(account_sid), Some(token)) = (
        integration.account_sid.as_deref(),
        integration.auth_token.as_ref(),
    ) else {
        return Err(ApiError::conflict(
            "No Twilio credentials found: set accountSid and authToken",
        ));
    };
    let creds = Credentials {
        account_sid,
        auth_token: token.expose_secret(),
    };
    state
        .twilio
        .fetch_account(&creds)
        .await
        .map_err(|e| twilio_error(e, "verifying the account"))?;
    let Some(number) = integration.phone_number.as_deref() else {
        return Err(ApiError::conflict("No phoneNumber set on the integration: set it to the Twilio number (E.164 or whatsapp:+E.164)"));
    };
    let address =
        Address::parse(number).map_err(|e| ApiError::bad_request(format!("phoneNumber: {e}")))?;
    let found = state
        .twilio
        .list_incoming_numbers(&creds, Some(address.e164()))
        .await
        .map_err(|e| twilio_error(e, "listing the account's numbers"))?;
    let Some(incoming) = found
        .into_iter()
        .find(|n| n.phone_number.trim_start_matches("whatsapp:") == address.e164())
    else {
        return Err(ApiError::conflict(format!(
            "The number {} is not one of this Twilio account's incoming phone numbers",
            address.e164()
        )));
    };
    let base = format!(
        "{}/v1/integration/twilio/{}",
        state.public_base, integration.id
    );
    state
        .twilio
        .update_incoming_number(
            &creds,
            &incoming.sid,
            &format!("{base}/webhook"),
            Some(&format!("{base}/status")),
        )
        .await
        .map_err(|e| twilio_error(e, "updating the number's webhook"))?;
    tracing::info!(integration = %integration.id, number = %address, "Twilio number pointed at Chatwire");
    Ok(Json(json!({ "id": integration.id })))
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
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    if let Some(k) = body
        .keys()
        .find(|k| !["channel", "from", "to", "text"].contains(&k.as_str()))
    {
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
    let to_raw = field(&body, "to")?.ok_or_else(|| ApiError::bad_request("\"to\" is required"))?;
    let to_e164 = phone::normalize_e164(to_raw.trim_start_matches("whatsapp:"))
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
    let (to, from) = (to.to_string(), from.to_string());
    if state.db.is_opted_out(&integration.id, &to).await? {
        return Err(ApiError::conflict(
            "The recipient has opted out (STOP) and cannot be messaged",
        ));
    }
    let now = now_ms();
    let conversation_id = ids::new_id();
    let meta = json!({"app": "twilio", "twilio": {"integrationId": integration.id, "address": to, "initiated": true}});
    let cols = [
        ("bot_id", Param::from(bot_id)),
        ("meta", Param::from(meta.to_string())),
    ];
    state
        .db
        .insert_resource(&CONVERSATION, &conversation_id, &cols, now)
        .await?;
    state
        .db
        .touch_session(&integration.id, &to, &conversation_id, now)
        .await?;
    let message_id = ids::new_id();
    let message = crate::store::Sql::new(
        "INSERT INTO messages (id, conversation_id, type, text, created_at, updated_at) VALUES ($1, $2, 'bot', $3, $4, $4)",
    )
    .arg(message_id.as_str())
    .arg(conversation_id.as_str())
    .arg(text)
    .arg(now);
    state.db.exec(&message).await?;
    let rows: Vec<NewOutbox> = crate::pipeline::outbox_rows(
        &integration,
        Some(&conversation_id),
        Some(&message_id),
        &to,
        &from,
        text,
    );
    state.db.enqueue(&rows).await?;
    state.outbox_ready.notify_one();
    Ok(Json(json!({ "id": integration.id })))
}
