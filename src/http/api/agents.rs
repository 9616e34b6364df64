//! `agent/*`: human agents' accounts, for teams that manage them by API (the CLI has
//! `chatwire agent create`). Passwords are write-only and stored as argon2 hashes.
use super::{id_schema, Op, Routes};
use crate::app::AppState;
use crate::handoff::accounts;
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::JsonBody;
use axum::extract::{Path, State};
use axum::Json;
use serde_json::{json, Value};

fn agent_schema() -> Value {
    json!({"type": "object", "required": ["id", "email", "name", "status", "maxConversations", "integrationIds"],
        "properties": {
            "id": {"type": "string"}, "email": {"type": "string"}, "name": {"type": "string"},
            "status": {"type": "string", "enum": ["online", "away"]},
            "maxConversations": {"type": "integer"},
            "integrationIds": {"type": "array", "items": {"type": "string"}},
            "createdAt": {"type": "integer"}, "updatedAt": {"type": "integer"}}})
}

fn write_schema(required: &[&str]) -> Value {
    let mut schema = json!({"type": "object", "additionalProperties": false, "properties": {
        "email": {"type": "string", "format": "email", "maxLength": 254, "nullable": true},
        "name": {"type": "string", "minLength": 1, "maxLength": 200, "pattern": "\\S", "nullable": true},
        "password": {"type": "string", "minLength": crate::handoff::password::MIN_LENGTH, "writeOnly": true, "nullable": true},
        "status": {"type": "string", "enum": ["online", "away", null], "nullable": true},
        "maxConversations": {"type": "integer", "minimum": 1, "maximum": 100, "nullable": true},
        "integrationIds": {"type": "array", "items": {"type": "string"}, "nullable": true}}});
    // Null means absent (crate::handoff::accounts).
    if !required.is_empty() {
        schema["required"] = json!(required);
    }
    schema
}

pub fn register(r: Routes) -> Routes {
    r.add(
        Op::get("agent/list", "listAgents", "List human agents", "agent").response(
            json!({"type": "object", "required": ["items"], "properties": {"items": {"type": "array", "items": agent_schema()}}}),
        ),
        |State(s): State<AppState>| async move {
            ApiResult::Ok(Json(json!({"items": s.db.agents().await?})))
        },
    )
    .add(
        Op::post("agent/create", "createAgent", "Create a human agent", "agent")
            .request(write_schema(&["email", "name", "password"]))
            .response(id_schema()),
        |State(s): State<AppState>, JsonBody(b): JsonBody| async move {
            let id = accounts::create(&s.db, &b).await?;
            ApiResult::Ok(Json(json!({"id": id})))
        },
    )
    .add(
        Op::get("agent/{agentId}/fetch", "fetchAgent", "Fetch a human agent", "agent")
            .response(agent_schema()),
        |State(s): State<AppState>, Path(id): Path<String>| async move {
            let agent = s.db.agent(&id).await?.ok_or_else(ApiError::not_found)?;
            ApiResult::Ok(Json(json!(agent)))
        },
    )
    .add(
        Op::post("agent/{agentId}/update", "updateAgent", "Update a human agent (status, limits, integrations, password)", "agent")
            .request(write_schema(&[]))
            .response(id_schema()),
        |State(s): State<AppState>, Path(id): Path<String>, JsonBody(b): JsonBody| async move {
            accounts::update(&s.db, &id, &b).await?;
            crate::handoff::changed(&s);
            ApiResult::Ok(Json(json!({"id": id})))
        },
    )
    .add(
        Op::post("agent/{agentId}/delete", "deleteAgent", "Delete a human agent; their conversations go back to the queue", "agent")
            .request(json!({"type": "object"}))
            .response(id_schema()),
        |State(s): State<AppState>, Path(id): Path<String>, JsonBody(_): JsonBody| async move {
            if !s.db.delete_agent(&id).await? {
                return Err(ApiError::not_found());
            }
            crate::handoff::changed(&s);
            ApiResult::Ok(Json(json!({"id": id})))
        },
    )
}
