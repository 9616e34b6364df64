//! `POST /conversation/{conversationId}/message/create`: the generic create, answering
//! ChatBotKit's `{id, entities}`.
//!
//! ChatBotKit extracts entities (e.g. redacted personal data) from the text; Chatwire does no
//! extraction, so it accepts the optional `entities` array and reports none extracted.
use super::crud::{self, Ids};
use super::{openapi, Op, Routes};
use crate::app::AppState;
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::JsonBody;
use crate::store::schema::MESSAGE;
use axum::extract::{Path, State};
use axum::Json;
use serde_json::{json, Map, Value};

pub fn register(r: Routes) -> Routes {
    let mut request = openapi::write_schema(&MESSAGE);
    request["properties"]["entities"] = json!({"type": "array", "nullable": true, "description": "Known entities (accepted, not used)"});
    let response = json!({"type": "object", "required": ["id", "entities"], "properties": {
        "id": {"type": "string"}, "entities": {"type": "array", "items": {"type": "object"}}}});
    let op = Op::post(
        "conversation/{conversationId}/message/create",
        "createConversationMessage",
        "Create a conversation message",
        "conversation",
    )
    .request(request)
    .response(response);
    r.add(
        op,
        |State(s): State<AppState>, Path(p): Path<Vec<String>>, JsonBody(b): JsonBody| {
            create(s, p, b)
        },
    )
}

async fn create(
    state: AppState,
    path: Vec<String>,
    body: Map<String, Value>,
) -> ApiResult<Json<Value>> {
    if body
        .get("entities")
        .is_some_and(|e| !e.is_array() && !e.is_null())
    {
        return Err(ApiError::bad_request("\"entities\" must be an array"));
    }
    let id = crud::insert(
        &state,
        &MESSAGE,
        &Ids::split(&MESSAGE, path),
        &body,
        &["entities"],
    )
    .await?;
    Ok(Json(json!({ "id": id, "entities": [] })))
}
