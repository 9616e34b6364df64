//! The signature check shared by every Twilio callback: the URL Twilio called, the parameters,
//! the integration's auth token.
use crate::app::AppState;
use crate::channel::twilio::signature;
use crate::metrics::Metrics;
use crate::store::integration::Integration;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, Uri};
use secrecy::ExposeSecret;

/// A verified callback: its integration and decoded parameters.
pub struct Signed {
    pub integration: Integration,
    pub params: Vec<(String, String)>,
}

/// Loads the integration and checks the signature. Errors are bare statuses: Twilio reads no
/// body, and an attacker learns nothing from one.
pub async fn verify(
    state: &AppState,
    id: &str,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Signed, StatusCode> {
    let integration = match state.db.integration(&state.cipher, id).await {
        Ok(Some(i)) => i,
        Ok(None) => return Err(StatusCode::NOT_FOUND),
        Err(err) => {
            tracing::error!(error = %err, "loading integration for webhook");
            return Err(StatusCode::SERVICE_UNAVAILABLE);
        }
    };
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let url = format!("{}{}", state.public_base, path);
    let Some(token) = &integration.auth_token else {
        Metrics::inc(&state.metrics.webhook_signature_failures);
        tracing::warn!(integration = id, url = %url, "webhook refused: integration has no auth token to check signatures with");
        return Err(StatusCode::FORBIDDEN);
    };
    let given = headers
        .get("x-twilio-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let is_json = body.first() == Some(&b'{');
    let (valid, params) = if is_json {
        let valid = signature::validate_json_body(token.expose_secret(), &url, body, given);
        (valid, json_params(body))
    } else {
        let params: Vec<(String, String)> =
            url::form_urlencoded::parse(body).into_owned().collect();
        (
            signature::validate(token.expose_secret(), &url, &params, given),
            params,
        )
    };
    if given.is_empty() || !valid {
        Metrics::inc(&state.metrics.webhook_signature_failures);
        tracing::warn!(integration = id, url = %url, signature_present = !given.is_empty(), "webhook refused: signature does not match");
        return Err(StatusCode::FORBIDDEN);
    }
    Ok(Signed {
        integration,
        params,
    })
}

/// A JSON body's top-level scalars as parameters (ChatBotKit accepts JSON webhooks too).
fn json_params(body: &[u8]) -> Vec<(String, String)> {
    let Ok(serde_json::Value::Object(map)) = serde_json::from_slice(body) else {
        return Vec::new();
    };
    map.into_iter()
        .filter_map(|(k, v)| match v {
            serde_json::Value::String(s) => Some((k, s)),
            serde_json::Value::Number(n) => Some((k, n.to_string())),
            serde_json::Value::Bool(b) => Some((k, b.to_string())),
            _ => None,
        })
        .collect()
}
