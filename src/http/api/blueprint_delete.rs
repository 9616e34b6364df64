//! `POST /blueprint/{blueprintId}/delete` with ChatBotKit's `{deleteResources?: boolean}`.
//!
//! `true` deletes the blueprint's bots, datasets (with their records), Twilio integrations and
//! contacts; `false` (the default) keeps them and clears their `blueprintId`, so no resource
//! points at a blueprint that is gone. Either way it is one transaction.
use super::blueprint_resources::MEMBERS;
use super::{id_schema, Op, Routes};
use crate::app::AppState;
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::JsonBody;
use crate::store::cascade::Member;
use crate::store::schema::BLUEPRINT;
use axum::extract::{Path, State};
use axum::Json;
use serde_json::{json, Map, Value};

pub fn register(r: Routes) -> Routes {
    let request = json!({"type": "object", "additionalProperties": false, "properties": {
        "deleteResources": {"type": "boolean", "nullable": true, "default": false,
            "description": "If true, deletes all resources associated with the blueprint. If false or omitted, only the blueprint is deleted and its resources are unlinked."}}});
    let op = Op::post(
        "blueprint/{blueprintId}/delete",
        "deleteBlueprint",
        "Delete a blueprint",
        "blueprint",
    )
    .request(request)
    .response(id_schema());
    r.add(
        op,
        |State(s): State<AppState>, Path(key): Path<String>, JsonBody(b): JsonBody| {
            delete(s, key, b)
        },
    )
}

async fn delete(state: AppState, key: String, body: Map<String, Value>) -> ApiResult<Json<Value>> {
    if let Some(other) = body.keys().find(|k| k.as_str() != "deleteResources") {
        return Err(ApiError::bad_request(format!("\"{other}\" is not allowed")));
    }
    let delete_resources = match body.get("deleteResources") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(ApiError::bad_request(
                "\"deleteResources\" must be a boolean",
            ))
        }
    };
    let id = state
        .db
        .resolve_id(&BLUEPRINT, None, &key)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let members: Vec<Member> = MEMBERS.iter().map(|(_, m)| *m).collect();
    if !state
        .db
        .delete_blueprint(&BLUEPRINT, &id, &members, delete_resources)
        .await?
    {
        return Err(ApiError::not_found());
    }
    Ok(Json(json!({ "id": id })))
}
