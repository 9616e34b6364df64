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
use axum::extract::{ConnectInfo, OriginalUri, Path, Request, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use gate::Gate;
use std::net::SocketAddr;
use std::sync::Arc;

mod gate;

/// Provider callbacks are small; anything larger is not one.
pub const MAX_WEBHOOK_BODY: usize = 64 * 1024;

/// Most callbacks handled at once, once their bodies are read. Past this, further requests
/// wait rather than being refused: a 503 makes Twilio retry at best once. This bounds the
/// database work an overload can queue.
pub const MAX_CONCURRENT_WEBHOOKS: usize = 512;

/// Unauthenticated routes (providers prove themselves with their signatures).
/// `per_client` caps what one client address may have in flight (0: no cap).
pub fn routes(channels: &Channels, per_client: usize) -> Router<AppState> {
    let gate = Gate::new(MAX_CONCURRENT_WEBHOOKS, per_client);
    let mut router = Router::new();
    for channel in channels.iter() {
        let name = channel.name();
        let (messages, statuses) = (channel.clone(), channel.clone());
        let (inbound_gate, status_gate) = (gate.clone(), gate.clone());
        router = router
            .route(
                &format!("/integration/{name}/{{id}}/webhook"),
                any(move |state, id, uri, request| {
                    inbound(
                        messages.clone(),
                        inbound_gate.clone(),
                        state,
                        id,
                        uri,
                        request,
                    )
                }),
            )
            .route(
                &format!("/integration/{name}/{{id}}/status"),
                any(move |state, id, uri, request| {
                    status(
                        statuses.clone(),
                        status_gate.clone(),
                        state,
                        id,
                        uri,
                        request,
                    )
                }),
            );
    }
    router
}

/// A callback past the gate: its headers and whole body, and what it holds while handled.
struct Admitted {
    headers: HeaderMap,
    body: axum::body::Bytes,
    _slot: Option<gate::ClientSlot>,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

/// The client's slot first (free), then the body within its time limit, then a permit.
async fn admit(gate: &Arc<Gate>, request: Request) -> Result<Admitted, StatusCode> {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let slot = gate.enter(peer)?;
    let (parts, body) = request.into_parts();
    let body = gate::read_body(body, MAX_WEBHOOK_BODY, gate::BODY_READ_TIMEOUT).await?;
    let permit = gate.permit().await?;
    Ok(Admitted {
        headers: parts.headers,
        body,
        _slot: slot,
        _permit: permit,
    })
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

/// An admitted callback: its body read, its integration loaded, the URL the provider called.
struct Callback {
    admitted: Admitted,
    integration: Integration,
    url: String,
}

impl Callback {
    fn request(&self) -> CallbackRequest<'_> {
        CallbackRequest {
            url: &self.url,
            headers: &self.admitted.headers,
            body: &self.admitted.body,
        }
    }
}

/// Admits a callback and loads its integration, or the bare status refusing it.
async fn callback(
    gate: &Arc<Gate>,
    state: &AppState,
    id: &str,
    uri: &Uri,
    request: Request,
) -> Result<Callback, Response> {
    let admitted = admit(gate, request)
        .await
        .map_err(IntoResponse::into_response)?;
    let integration = integration(state, id)
        .await
        .map_err(IntoResponse::into_response)?;
    Ok(Callback {
        admitted,
        integration,
        url: called_url(state, uri),
    })
}

async fn inbound(
    channel: Arc<dyn Channel>,
    gate: Arc<Gate>,
    State(state): State<AppState>,
    Path(id): Path<String>,
    OriginalUri(uri): OriginalUri,
    request: Request,
) -> Response {
    let cb = match callback(&gate, &state, &id, &uri, request).await {
        Ok(cb) => cb,
        Err(refused) => return refused,
    };
    let integration = &cb.integration;
    let message = match channel.parse_inbound(integration, cb.request()) {
        Ok(m) => m,
        Err(refusal) => return refused(&state, &id, &cb.url, refusal),
    };
    match accept::inbound(&state, channel.name(), integration, message).await {
        Ok(Accepted::New | Accepted::Duplicate | Accepted::Ignored) => acknowledge(&*channel),
        Ok(Accepted::Misdirected) => StatusCode::FORBIDDEN.into_response(),
        // The provider retries on a 5xx; the message is not lost.
        Err(err) => {
            tracing::error!(error = %err, "recording inbound message");
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
    }
}

async fn status(
    channel: Arc<dyn Channel>,
    gate: Arc<Gate>,
    State(state): State<AppState>,
    Path(id): Path<String>,
    OriginalUri(uri): OriginalUri,
    request: Request,
) -> Response {
    let cb = match callback(&gate, &state, &id, &uri, request).await {
        Ok(cb) => cb,
        Err(refused) => return refused,
    };
    let integration = &cb.integration;
    let update = match channel.parse_status(integration, cb.request()) {
        Ok(u) => u,
        Err(refusal) => return refused(&state, &id, &cb.url, refusal),
    };
    match crate::outbox::apply_status(&state, integration, &update).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(err) => {
            tracing::error!(error = %err, "applying status callback");
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
    }
}
