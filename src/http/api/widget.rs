//! `setup` and `visitor` for web chat widgets. ChatBotKit's `setup` verifies nothing for a
//! widget; Chatwire's answers `{id}` once the widget exists, like theirs. `visitor` (Chatwire)
//! mints a visitor token for a site's signed-in user, so that person continues their
//! conversation wherever they open the widget.
use super::{crud, id_schema, Op, Routes};
use crate::app::AppState;
use crate::channel::webchat::token;
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::JsonBody;
use crate::store::schema::WIDGET;
use axum::extract::{Path, State};
use axum::Json;
use serde_json::{json, Value};

async fn existing(state: &AppState, key: &str) -> ApiResult<String> {
    let ids = crud::Ids {
        parent: None,
        id: Some(key.to_owned()),
    };
    Ok(crud::existing(state, &WIDGET, &ids).await?.1)
}

pub fn register(r: Routes) -> Routes {
    r.add(
        Op::post(
            "integration/widget/{widgetIntegrationId}/setup",
            "setupWidgetIntegration",
            "Set up a widget integration (nothing to configure: answers once the widget exists)",
            "integration",
        )
        .request(json!({"type": "object"}))
        .response(id_schema()),
        |State(s): State<AppState>, Path(key): Path<String>, JsonBody(_): JsonBody| async move {
            let id = existing(&s, &key).await?;
            ApiResult::Ok(Json(json!({"id": id})))
        },
    )
    .add(
        Op::post(
            "integration/widget/{widgetIntegrationId}/visitor",
            "createWidgetVisitor",
            "Mint a visitor token for a user signed in on your site; give it to the widget as data-token (Chatwire)",
            "integration",
        )
        .request(json!({"type": "object", "required": ["userId"], "additionalProperties": false,
            "properties": {"userId": {"type": "string", "minLength": 1, "maxLength": 98, "pattern": "^[A-Za-z0-9_@-]+$"}}}))
        .response(json!({"type": "object", "required": ["token", "visitor"], "properties": {
            "token": {"type": "string"}, "visitor": {"type": "string"}}})),
        |State(s): State<AppState>, Path(key): Path<String>, JsonBody(b): JsonBody| async move {
            let id = existing(&s, &key).await?;
            if let Some(k) = b.keys().find(|k| *k != "userId") {
                return Err(ApiError::bad_request(format!("\"{k}\" is not allowed")));
            }
            let user = b.get("userId").and_then(Value::as_str).unwrap_or_default();
            let visitor = format!("u-{user}");
            if user.is_empty() || !token::valid_part(&visitor) {
                return Err(ApiError::bad_request(
                    "\"userId\" must be 1 to 98 letters, digits, '-', '_' or '@'",
                ));
            }
            let minted = s.webchat.mint(&id, &visitor);
            ApiResult::Ok(Json(json!({"token": minted, "visitor": visitor})))
        },
    )
}
