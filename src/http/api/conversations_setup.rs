//! `setup` for Conversations integrations: checks the service, points its post-event webhook
//! at Chatwire and gives each address in `addresses` an Address Configuration with
//! auto-creation (see `channel::conversations::setup`).
use super::{crud, Op, Routes};
use crate::app::AppState;
use crate::channel::conversations::TwilioConversations;
use crate::channel::twilio::messaging::SetupError;
use crate::domain::address::Address;
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::JsonBody;
use crate::store::schema::CONVERSATIONS;
use axum::extract::{Path, State};
use axum::Json;
use serde_json::{json, Value};

pub fn register(r: Routes) -> Routes {
    r.add(
        Op {
            method: "post",
            path: "integration/conversations/{conversationsIntegrationId}/setup".into(),
            id: "setupConversationsIntegration".into(),
            summary: "Verify the Conversations service, point its post-event webhook at Chatwire, and give each address an Address Configuration with auto-creation (Chatwire)".into(),
            tag: "integration".into(),
            request: Some(json!({"type": "object", "additionalProperties": false, "properties": {
                "addresses": {"type": "array", "nullable": true,
                  "items": {"type": "string", "pattern": "^(whatsapp:)?\\+[1-9][0-9]{6,14}$"},
                  "description": "Twilio numbers (+E.164) and WhatsApp senders (whatsapp:+E.164) whose first message creates a Conversation"}}})),
            response: json!({"type": "object", "required": ["id"], "properties": {
                "id": {"type": "string"}, "serviceSid": {"type": "string"}, "webhookUrl": {"type": "string"},
                "addresses": {"type": "array", "items": {"type": "object"}}}}),
            jsonl: None,
            query: Vec::new(),
        },
        setup,
    )
}

async fn setup(
    State(state): State<AppState>,
    Path(key): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    if let Some(k) = body.keys().find(|k| k.as_str() != "addresses") {
        return Err(ApiError::bad_request(format!("\"{k}\" is not allowed")));
    }
    let addresses = match body.get("addresses") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| {
                let raw = item
                    .as_str()
                    .ok_or_else(|| ApiError::bad_request("\"addresses\" must be strings"))?;
                Address::parse(raw)
                    .map_err(|e| ApiError::bad_request(format!("\"addresses\": {e}")))
            })
            .collect::<ApiResult<Vec<_>>>()?,
        Some(_) => return Err(ApiError::bad_request("\"addresses\" must be an array")),
    };
    let ids = crud::Ids {
        parent: None,
        id: Some(key),
    };
    let (_, id) = crud::existing(&state, &CONVERSATIONS, &ids).await?;
    let integration = state
        .db
        .integration(&state.cipher, &id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let webhook = format!(
        "{}/v1/integration/{}/{}/webhook",
        state.public_base,
        TwilioConversations::NAME,
        integration.id
    );
    let configured = state
        .conversations
        .configure_service(&integration, &webhook, &addresses)
        .await
        .map_err(|e| match e {
            SetupError::BadNumber(_) | SetupError::NoService | SetupError::NoCredentials => {
                ApiError::bad_request(e.to_string())
            }
            e if e.is_unreachable() => ApiError::bad_gateway(e.to_string()),
            e => ApiError::conflict(e.to_string()),
        })?;
    tracing::info!(integration = %integration.id, service = %configured.service_sid, "Conversations service pointed at Chatwire");
    Ok(Json(configured.wire(&integration.id, &webhook)))
}
