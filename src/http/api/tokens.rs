//! `token/create`, `token/list` and `token/{tokenId}/revoke` (Chatwire): the management API's
//! own bearer tokens, as `chatwire token create|list|revoke` manages them. A token's value is
//! shown once, by create; list shows ids, names and creation times only.
use super::{Op, Routes};
use crate::app::AppState;
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::JsonBody;
use crate::store::tokens::{self, Revoked, TokenInfo};
use axum::extract::{Path, State};
use axum::Json;
use serde_json::{json, Value};

fn info_schema() -> Value {
    json!({"type": "object", "required": ["id", "name", "createdAt"], "properties": {
        "id": {"type": "string"}, "name": {"type": "string"},
        "createdAt": {"type": "number", "description": "When the token was created (ms)"}}})
}

pub fn register(r: Routes) -> Routes {
    r.add(
        Op::post("token/create", "createToken", "Create an API token; its value is in this answer only (Chatwire)", "token")
            .request(json!({"type": "object", "additionalProperties": false, "properties": {"name": {"type": "string", "nullable": true, "description": "At most 256 bytes"}}}))
            .response(json!({"type": "object", "required": ["id", "token"], "properties": {
                "id": {"type": "string"}, "token": {"type": "string", "description": "The bearer token; shown once, stored only as a hash"}}})),
        create,
    )
    .add(
        Op::get("token/list", "listTokens", "List API tokens (ids and names, never values) (Chatwire)", "token")
            .response(json!({"type": "object", "required": ["items"], "properties": {
                "items": {"type": "array", "items": info_schema()}}})),
        list,
    )
    .add(
        Op::post("token/{tokenId}/revoke", "revokeToken", "Revoke an API token by id (or by name when one token has it) (Chatwire)", "token")
            .request(json!({"type": "object", "additionalProperties": false}))
            .response(super::id_schema()),
        revoke,
    )
}

fn wire(t: &TokenInfo) -> Value {
    json!({"id": t.id, "name": t.name, "createdAt": t.created_at})
}

async fn create(State(state): State<AppState>, JsonBody(body): JsonBody) -> ApiResult<Json<Value>> {
    if let Some(k) = body.keys().find(|k| k.as_str() != "name") {
        return Err(ApiError::bad_request(format!("\"{k}\" is not allowed")));
    }
    let name = match body.get("name") {
        None | Some(Value::Null) => "",
        Some(Value::String(s)) if s.len() <= 256 => s.as_str(),
        Some(Value::String(_)) => {
            return Err(ApiError::bad_request("\"name\" must be at most 256 bytes"))
        }
        Some(_) => return Err(ApiError::bad_request("\"name\" must be a string")),
    };
    let (id, token) = tokens::create(&state.db, name).await?;
    tracing::info!(token_id = %id, name, "API token created");
    Ok(Json(json!({"id": id, "token": token})))
}

async fn list(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let items: Vec<Value> = tokens::list(&state.db).await?.iter().map(wire).collect();
    Ok(Json(json!({ "items": items })))
}

async fn revoke(
    State(state): State<AppState>,
    Path(key): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    if let Some(k) = body.keys().next() {
        return Err(ApiError::bad_request(format!("\"{k}\" is not allowed")));
    }
    match tokens::revoke(&state.db, &key).await? {
        Revoked::One(t) => {
            tracing::info!(token_id = %t.id, name = %t.name, "API token revoked");
            Ok(Json(json!({ "id": t.id })))
        }
        Revoked::NotFound => Err(ApiError::new(
            axum::http::StatusCode::NOT_FOUND,
            "NOT_FOUND",
            format!("No token has the id or name \"{key}\""),
        )),
        Revoked::Ambiguous(all) => Err(ApiError::conflict(format!(
            "{} tokens are named \"{key}\"; revoke one by id: {}",
            all.len(),
            all.iter()
                .map(|t| t.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}
