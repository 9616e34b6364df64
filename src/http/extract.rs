//! Request extractors: a JSON object body checked the way ChatBotKit checks it.
use super::error::ApiError;
use axum::extract::{FromRequest, Request};
use axum::http::header::CONTENT_TYPE;
use serde_json::{Map, Value};

/// Largest management API body accepted.
pub const MAX_BODY: usize = 1024 * 1024;

/// A POST body that must be `Content-Type: application/json` and a JSON object. An empty body
/// counts as `{}` because the SDK sends nothing more for delete and setup.
pub struct JsonBody(pub Map<String, Value>);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, ApiError> {
        let media = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                v.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            });
        let bytes = axum::body::to_bytes(req.into_body(), MAX_BODY)
            .await
            .map_err(|_| ApiError::too_large(MAX_BODY))?;
        // Nothing at all is what the SDK sends (with or without a Content-Type: there is nothing
        // to read); whitespace alone is not JSON.
        if bytes.is_empty() {
            return Ok(Self(Map::new()));
        }
        if media.as_deref() != Some("application/json") {
            return Err(ApiError::bad_request(
                "Content-Type must be application/json",
            ));
        }
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(map)) => Ok(Self(map)),
            Ok(_) => Err(ApiError::bad_request("Request body must be a JSON object")),
            Err(err) => Err(ApiError::bad_request(format!("Malformed JSON: {err}"))),
        }
    }
}

/// The `Idempotency-Key` header of a call that sends (ChatBotKit has none; Stripe's convention):
/// a retried call with the same key gets the first call's answer and sends nothing.
pub struct IdempotencyKey(pub Option<String>);

/// Longest idempotency key accepted.
const MAX_IDEMPOTENCY_KEY: usize = 255;

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, ApiError> {
        let Some(value) = parts.headers.get("idempotency-key") else {
            return Ok(Self(None));
        };
        match value.to_str().map(str::trim) {
            Ok(key) if !key.is_empty() && key.len() <= MAX_IDEMPOTENCY_KEY => {
                Ok(Self(Some(key.to_owned())))
            }
            _ => Err(ApiError::bad_request(format!(
                "Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters"
            ))),
        }
    }
}
