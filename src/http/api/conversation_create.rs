//! `POST /conversation/create`: the generic create plus ChatBotKit's `messages: [{type, text}]`,
//! stored in order with the conversation in one transaction.
//!
//! Everything is validated before anything is written, so a bad message leaves no
//! conversation behind. The answer is `{id}`, plus `messages` (each with its new `id`) when
//! messages were given.
use super::validate::{self, Mode};
use super::{openapi, Op, Routes};
use crate::app::AppState;
use crate::domain::{ids, now_ms};
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::JsonBody;
use crate::store::resource::NewRow;
use crate::store::schema::{CONVERSATION, MESSAGE};
use crate::store::Param;
use axum::extract::State;
use axum::Json;
use serde_json::{json, Map, Value};

/// Most messages accepted in one create.
const MAX_MESSAGES: usize = 1000;

pub fn register(r: Routes) -> Routes {
    let mut request = openapi::write_schema(&CONVERSATION);
    let message = json!({"type": "object", "additionalProperties": false, "required": ["type", "text"], "properties": {
        "type": openapi::read_schema(&MESSAGE)["properties"]["type"].clone(),
        "text": {"type": "string"}}});
    request["properties"]["messages"] = json!({"type": "array", "nullable": true, "items": message, "description": "Messages to add to the conversation, in order"});
    let mut created = message.clone();
    created["properties"]["id"] = json!({"type": "string"});
    let response = json!({"type": "object", "required": ["id"], "properties": {
        "id": {"type": "string"}, "messages": {"type": "array", "items": created}}});
    let op = Op::post(
        "conversation/create",
        "createConversation",
        "Create a conversation",
        "conversation",
    )
    .request(request)
    .response(response);
    r.add(op, |State(s): State<AppState>, JsonBody(b): JsonBody| {
        create(s, b)
    })
}

async fn create(state: AppState, body: Map<String, Value>) -> ApiResult<Json<Value>> {
    let messages = match body.get("messages") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) if items.len() <= MAX_MESSAGES => items.clone(),
        Some(Value::Array(_)) => {
            return Err(ApiError::bad_request(format!(
                "\"messages\" must contain at most {MAX_MESSAGES} items"
            )))
        }
        Some(_) => return Err(ApiError::bad_request("\"messages\" must be an array")),
    };
    let conversation =
        validate::columns(&state, &CONVERSATION, &body, Mode::Create, &["messages"]).await?;
    let id = ids::new_id();
    let mut rows = vec![NewRow {
        res: &CONVERSATION,
        id: id.clone(),
        cols: conversation,
    }];
    let mut answer = Vec::new();
    for (i, message) in messages.iter().enumerate() {
        let cols = message_columns(&state, i, message).await?;
        let message_id = ids::new_id();
        answer.push(json!({"id": message_id, "type": message["type"], "text": message["text"]}));
        let mut cols = cols;
        cols.push(("conversation_id", Param::from(id.clone())));
        rows.push(NewRow {
            res: &MESSAGE,
            id: message_id,
            cols,
        });
    }
    // Ids made later sort later, so (createdAt, id) keeps the given order within one ms.
    state.db.insert_resources(&rows, now_ms()).await?;
    if body.get("messages").is_some_and(|m| !m.is_null()) {
        Ok(Json(json!({ "id": id, "messages": answer })))
    } else {
        Ok(Json(json!({ "id": id })))
    }
}

/// Validates `messages[i]`, which may only carry `type` and `text`.
async fn message_columns(
    state: &AppState,
    i: usize,
    message: &Value,
) -> ApiResult<Vec<(&'static str, Param)>> {
    let Value::Object(map) = message else {
        return Err(ApiError::bad_request(format!(
            "\"messages[{i}]\" must be of type object"
        )));
    };
    if let Some(key) = map.keys().find(|k| !matches!(k.as_str(), "type" | "text")) {
        return Err(ApiError::bad_request(format!(
            "\"messages[{i}].{key}\" is not allowed"
        )));
    }
    validate::columns(state, &MESSAGE, map, Mode::Create, &[])
        .await
        .map_err(|err| ApiError::bad_request(format!("messages[{i}]: {}", err.message)))
}
