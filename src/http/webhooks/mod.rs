//! Providers' calls into Chatwire: one message route and one status route per channel,
//! `/v1/integration/{channel}/{id}/webhook` and `.../status`.
//!
//! The handlers know only the channel seam: the channel verifies and parses the callback, and
//! the pipeline accepts the message (stored once per provider id before the provider gets its
//! answer). Refusals are bare statuses: providers read no body, and an attacker learns nothing
//! from one.
use crate::app::AppState;
use crate::channel::{CallbackRequest, Channel, Channels, Refusal};
use crate::metrics::Metrics;
use crate::pipeline::accept::{self, Accepted};
use crate::store::integration::Integration;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, OriginalUri, Path, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use std::sync::Arc;
use tower::limit::GlobalConcurrencyLimitLayer;

/// Provider callbacks are small; anything larger is not one.
pub const MAX_WEBHOOK_BODY: usize = 64 * 1024;

/// Most callbacks handled at once. Past this, further requests wait unread (their bodies stay
/// in the socket) rather than being refused: Twilio does not retry an inbound message webhook
/// by default, so a 503 would lose it. This bounds the memory an overload can take.
pub const MAX_CONCURRENT_WEBHOOKS: usize = 512;

/// Unauthenticated routes (providers prove themselves with their signatures).
pub fn routes(channels: &Channels) -> Router<AppState> {
    let mut router = Router::new();
    for channel in channels.iter() {
        let name = channel.name();
        let (messages, statuses) = (channel.clone(), channel.clone());
        router = router
            .route(
                &format!("/integration/{name}/{{id}}/webhook"),
                any(move |state, id, uri, headers, body| {
                    inbound(messages.clone(), state, id, uri, headers, body)
                }),
            )
            .route(
                &format!("/integration/{name}/{{id}}/status"),
                any(move |state, id, uri, headers, body| {
                    status(statuses.clone(), state, id, uri, headers, body)
                }),
            );
    }
    router
        .layer(DefaultBodyLimit::max(MAX_WEBHOOK_BODY))
        .layer(GlobalConcurrencyLimitLayer::new(MAX_CONCURRENT_WEBHOOKS))
}

/// The integration a callback names; errors are bare statuses.
async fn integration(state: &AppState, id: &str) -> Result<Integration, StatusCode> {
    match state.db.integration(&state.cipher, id).await {
        Ok(Some(i)) => Ok(i),
        Ok(None) => Err(StatusCode::NOT_FOUND),
        Err(err) => {
            tracing::error!(error = %err, "loading integration for webhook");
            Err(StatusCode::SERVICE_UNAVAILABLE)
        }
    }
}

/// The URL the provider called, which is what its signature covers.
fn called_url(state: &AppState, uri: &Uri) -> String {
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    format!("{}{}", state.public_base, path)
}

fn refused(state: &AppState, integration: &str, url: &str, refusal: Refusal) -> Response {
    match refusal {
        Refusal::Unauthenticated(why) => {
            Metrics::inc(&state.metrics.webhook_signature_failures);
            tracing::warn!(integration, url, reason = %why, "webhook refused: not authenticated");
            StatusCode::FORBIDDEN.into_response()
        }
        Refusal::Malformed(why) => {
            tracing::warn!(integration, reason = %why, "webhook refused: malformed");
            (StatusCode::BAD_REQUEST, why).into_response()
        }
    }
}

fn acknowledge(channel: &dyn Channel) -> Response {
    let (content_type, body) = channel.acknowledgement();
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

/// A callback's integration and the URL the provider called, or the bare status refusing it.
async fn callback(
    state: &AppState,
    id: &str,
    uri: &Uri,
) -> Result<(Integration, String), Response> {
    let integration = integration(state, id)
        .await
        .map_err(IntoResponse::into_response)?;
    Ok((integration, called_url(state, uri)))
}

async fn inbound(
    channel: Arc<dyn Channel>,
    State(state): State<AppState>,
    Path(id): Path<String>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (integration, url) = match callback(&state, &id, &uri).await {
        Ok(found) => found,
        Err(refused) => return refused,
    };
    let request = CallbackRequest {
        url: &url,
        headers: &headers,
        body: &body,
    };
    let message = match channel.parse_inbound(&integration, request) {
        Ok(m) => m,
        Err(refusal) => return refused(&state, &id, &url, refusal),
    };
    match accept::inbound(&state, channel.name(), &integration, message).await {
        Ok(Accepted::New | Accepted::Duplicate | Accepted::Ignored) => acknowledge(&*channel),
        // The provider retries on a 5xx; the message is not lost.
        Err(err) => {
            tracing::error!(error = %err, "recording inbound message");
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
    }
}

async fn status(
    channel: Arc<dyn Channel>,
    State(state): State<AppState>,
    Path(id): Path<String>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (integration, url) = match callback(&state, &id, &uri).await {
        Ok(found) => found,
        Err(refused) => return refused,
    };
    let request = CallbackRequest {
        url: &url,
        headers: &headers,
        body: &body,
    };
    let update = match channel.parse_status(&integration, request) {
        Ok(u) => u,
        Err(refusal) => return refused(&state, &id, &url, refusal),
    };
    match crate::outbox::apply_status(&state, &integration, &update).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(err) => {
            tracing::error!(error = %err, "applying status callback");
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
    }
}
