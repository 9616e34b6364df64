//! `POST .../integration/twilio/{id}/webhook` and `.../status`.
//!
//! The inbound handler only verifies, parses and records: the message is stored (once per
//! MessageSid) before Twilio gets its 200, and the bot turn runs later in the pipeline, so a
//! slow bot never makes Twilio time out and retry, and a retry never makes a second turn.
use super::signed::verify;
use crate::app::AppState;
use crate::channel::twilio::form::{InboundMessage, StatusCallback};
use crate::domain::allow_from;
use crate::metrics::Metrics;
use crate::store::channel::NewInbound;
use axum::body::Bytes;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

const EMPTY_TWIML: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response/>";

fn twiml() -> Response {
    ([(header::CONTENT_TYPE, "text/xml")], EMPTY_TWIML).into_response()
}

pub async fn inbound(
    State(state): State<AppState>,
    Path(id): Path<String>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let signed = match verify(&state, &id, &uri, &headers, &body).await {
        Ok(s) => s,
        Err(status) => return status.into_response(),
    };
    let message = match InboundMessage::parse(&signed.params) {
        Ok(m) => m,
        Err(err) => {
            tracing::warn!(integration = %id, error = %err, "webhook refused: malformed form");
            return (StatusCode::BAD_REQUEST, err.to_string()).into_response();
        }
    };
    let sender = message.from.to_string();
    if !allow_from::allows(Some(&signed.integration.allow_from), &sender) {
        Metrics::inc(&state.metrics.webhooks_blocked);
        tracing::info!(integration = %id, "sender not in allowFrom; ignored");
        return twiml();
    }
    let media = (!message.media.is_empty())
        .then(|| serde_json::to_string(&message.media).unwrap_or_default());
    let recipient = message.to.to_string();
    let sid = message.message_sid.clone();
    let record = NewInbound {
        integration_id: signed.integration.id,
        message_sid: message.message_sid,
        sender,
        recipient,
        body: message.body,
        media,
        profile_name: message.profile_name,
    };
    match state.db.record_inbound(record).await {
        Ok(true) => {
            Metrics::inc(&state.metrics.webhooks_accepted);
            state.inbound_ready.notify_one();
            twiml()
        }
        Ok(false) => {
            Metrics::inc(&state.metrics.webhooks_duplicate);
            tracing::info!(integration = %id, sid = %sid, "duplicate webhook (Twilio retry); already recorded");
            twiml()
        }
        Err(err) => {
            // Twilio retries on a 5xx; the message is not lost.
            tracing::error!(error = %err, "recording inbound message");
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
    }
}

pub async fn status(
    State(state): State<AppState>,
    Path(id): Path<String>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let signed = match verify(&state, &id, &uri, &headers, &body).await {
        Ok(s) => s,
        Err(status) => return status.into_response(),
    };
    let callback = match StatusCallback::parse(&signed.params) {
        Ok(c) => c,
        Err(err) => return (StatusCode::BAD_REQUEST, err.to_string()).into_response(),
    };
    match crate::outbox::apply_status(&state, &signed.integration, &callback).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(err) => {
            tracing::error!(error = %err, "applying status callback");
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
    }
}
