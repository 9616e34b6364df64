//! Calls that send (`initiate`, `flow/execute`) under an `Idempotency-Key`: a retry with the
//! same key gets the first call's answer and sends nothing, because the key is written through
//! the one door in the same transaction as what the first call sent.
use crate::app::AppState;
use crate::http::error::ApiResult;
use crate::store::outgoing::{Idempotency, Outgoing, Recorded};
use axum::Json;
use serde_json::Value;

/// The first answer to a call with `key` in `scope`, if there was one.
pub async fn earlier(
    state: &AppState,
    scope: &str,
    key: Option<&str>,
) -> ApiResult<Option<Json<Value>>> {
    let Some(key) = key else {
        return Ok(None);
    };
    Ok(state
        .db
        .idempotent_response(scope, key)
        .await?
        .map(|first| Json(serde_json::from_str(&first).unwrap_or(Value::Null))))
}

/// Records `write` with the call's key and answers `response` (or, when a concurrent call
/// with the same key won, that call's answer).
pub async fn record(
    state: &AppState,
    mut write: Outgoing,
    scope: String,
    key: Option<String>,
    response: Value,
) -> ApiResult<Json<Value>> {
    write.idempotency = key.map(|key| Idempotency {
        scope,
        key,
        response: response.to_string(),
    });
    match state.db.record_outgoing(write).await? {
        Recorded::Repeated(first) => Ok(Json(serde_json::from_str(&first).unwrap_or(response))),
        Recorded::Written | Recorded::ClaimLost | Recorded::Conflict => Ok(Json(response)),
    }
}
