//! Providers' calls into Chatwire: one message route and one status route per channel,
//! `/v1/integration/{channel}/{id}/webhook` and `.../status`.
//!
//! The handlers know only the channel seam: the channel verifies and parses the callback, and
//! the pipeline accepts the message (stored once per provider id before the provider gets its
//! answer). Refusals are bare statuses: providers read no body, and an attacker learns nothing
//! from one. The operator learns why from the log line, the `chatwire_webhooks_refused_total`
//! series and the channel log, which keeps a refused request so it can be replayed once the
//! configuration is fixed (`replay`).
use crate::app::AppState;
use crate::channel::{CallbackRequest, Channel, Channels, Event, Refusal};
use crate::metrics::RefusedReason;
use crate::pipeline::accept;
use crate::store::channel_log::{NewEntry, StoredRequest};
use crate::store::integration::Integration;
use crate::telemetry;
use axum::extract::{ConnectInfo, OriginalUri, Path, Request, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use gate::Gate;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
use tracing::field::Empty;
use tracing::Instrument;

mod gate;
pub mod replay;

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

/// What the channel log keeps of a refused callback so that it can be replayed: the path it
/// was sent to, the headers a channel verifies, the body.
fn stored_request(uri: &Uri, headers: &HeaderMap, body: &[u8]) -> StoredRequest {
    let kept: serde_json::Map<String, serde_json::Value> = headers
        .iter()
        .filter(|(name, _)| {
            let name = name.as_str();
            name == "content-type" || name.starts_with("x-twilio-")
        })
        .filter_map(|(name, value)| Some((name.as_str().to_owned(), value.to_str().ok()?.into())))
        .collect();
    StoredRequest {
        path: uri
            .path_and_query()
            .map_or_else(|| uri.path().to_owned(), |p| p.as_str().to_owned()),
        headers: serde_json::Value::Object(kept).to_string(),
        body: String::from_utf8_lossy(body).into_owned(),
    }
}

/// A refusal's reason word, log text and status.
fn classify(refusal: &Refusal) -> (RefusedReason, &str, StatusCode) {
    match refusal {
        Refusal::Unauthenticated(why) => (RefusedReason::BadSignature, why, StatusCode::FORBIDDEN),
        Refusal::WrongAccount(why) => (RefusedReason::WrongAccount, why, StatusCode::FORBIDDEN),
        Refusal::Malformed(why) => (RefusedReason::Malformed, why, StatusCode::BAD_REQUEST),
    }
}

/// Counts, logs and records a refused callback of a known integration; the bare answer.
async fn refused(
    state: &AppState,
    kind: &'static str,
    channel: &str,
    cb: &Callback,
    uri: &Uri,
    refusal: Refusal,
) -> Response {
    let (reason, why, status) = classify(&refusal);
    state.metrics.refused(channel, reason);
    let integration = cb.integration.id.as_str();
    tracing::warn!(integration, kind, url = %cb.url, reason = reason.as_str(), detail = %why, "webhook refused");
    let entry = NewEntry {
        kind,
        channel: channel.to_owned(),
        integration_id: Some(integration.to_owned()),
        outcome: "refused",
        reason: Some(reason.as_str()),
        detail: Some(why.to_owned()),
        url: Some(cb.url.clone()),
        request: Some(stored_request(uri, &cb.admitted.headers, &cb.admitted.body)),
        ..NewEntry::default()
    };
    if let Err(err) = state.db.log_channel(entry).await {
        tracing::warn!(error = %err, "writing the channel log failed");
    }
    match refusal {
        Refusal::Malformed(why) => (status, why).into_response(),
        _ => status.into_response(),
    }
}

/// Counts, logs and records a callback naming no integration.
async fn unknown_integration(
    state: &AppState,
    kind: &'static str,
    channel: &str,
    id: &str,
    uri: &Uri,
) {
    state
        .metrics
        .refused(channel, RefusedReason::UnknownIntegration);
    // The id comes from whoever called: bounded before it is logged or stored.
    let shown: String = id.chars().take(64).collect();
    tracing::warn!(integration = %shown, kind, "webhook refused: no integration has this id");
    let entry = NewEntry {
        kind,
        channel: channel.to_owned(),
        outcome: "refused",
        reason: Some(RefusedReason::UnknownIntegration.as_str()),
        detail: Some(format!(
            "No integration has the id \"{shown}\": the number's webhook URL points at an integration that was deleted or belongs to another Chatwire; run setup on the integration that should answer"
        )),
        url: Some(format!("{}{}", state.public_base, uri.path().chars().take(256).collect::<String>())),
        ..NewEntry::default()
    };
    if let Err(err) = state.db.log_channel(entry).await {
        tracing::warn!(error = %err, "writing the channel log failed");
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
    (kind, channel): (&'static str, &str),
    id: &str,
    uri: &Uri,
    request: Request,
) -> Result<Callback, Response> {
    let admitted = admit(gate, request)
        .await
        .map_err(IntoResponse::into_response)?;
    let integration = match integration(state, id).await {
        Ok(integration) => integration,
        Err(StatusCode::NOT_FOUND) => {
            unknown_integration(state, kind, channel, id, uri).await;
            return Err(StatusCode::NOT_FOUND.into_response());
        }
        Err(status) => return Err(status.into_response()),
    };
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
    // The root of the message's trace (when traces are exported): the turn and the sends it
    // causes continue it through the stored message.
    let span = telemetry::span(|| {
        tracing::info_span!(
            "webhook",
            otel.kind = "server",
            channel = channel.name(),
            integration = Empty,
            message_sid = Empty,
            outcome = Empty,
            http.response.status_code = Empty
        )
    });
    // Boxed, as in `status`: the handling future is kilobytes, and axum's and tower's wrappers
    // would each move it before it runs; a box is moved as a pointer.
    let handled = Box::pin(handle_inbound(&*channel, &gate, &state, &id, &uri, request));
    let response = timed(&state, channel.name(), "message", handled)
        .instrument(span.clone())
        .await;
    span.record(
        "http.response.status_code",
        i64::from(response.status().as_u16()),
    );
    response
}

/// Runs a callback's handling and records how long it took.
async fn timed(
    state: &AppState,
    channel: &str,
    kind: &str,
    handling: impl std::future::Future<Output = Response>,
) -> Response {
    let started = Instant::now();
    let response = handling.await;
    state
        .metrics
        .webhook_seconds
        .with_label_values(&[channel, kind])
        .observe(started.elapsed().as_secs_f64());
    response
}

async fn handle_inbound(
    channel: &dyn Channel,
    gate: &Arc<Gate>,
    state: &AppState,
    id: &str,
    uri: &Uri,
    request: Request,
) -> Response {
    let cb = match callback(gate, state, ("message", channel.name()), id, uri, request).await {
        Ok(cb) => cb,
        Err(refused) => return refused,
    };
    let integration = &cb.integration;
    telemetry::note("integration", integration.id.as_str());
    let event = match channel.parse_event(integration, cb.request()) {
        Ok(e) => e,
        Err(refusal) => return refused(state, "message", channel.name(), &cb, uri, refusal).await,
    };
    let handled = match event {
        Event::Message(message) => {
            telemetry::note("message_sid", message.id.as_str());
            let accepted = accept::inbound(state, channel.name(), integration, message).await;
            if let Ok(outcome) = &accepted {
                telemetry::note("outcome", outcome.as_str());
            }
            match accepted {
                Ok(accept::Accepted::Misdirected) => return StatusCode::FORBIDDEN.into_response(),
                other => other.map(|_| ()),
            }
        }
        Event::Status(update) => crate::outbox::apply_status(state, integration, &update).await,
        Event::Ended { thread } => state
            .db
            .end_session(&integration.id, &thread.to_string())
            .await
            .map(|()| tracing::info!(integration = %integration.id, %thread, "thread ended by the provider; session ended")),
        Event::Ignored(why) => {
            tracing::debug!(integration = %integration.id, reason = %why, "callback ignored");
            Ok(())
        }
    };
    match handled {
        Ok(()) => acknowledge(channel),
        // The provider retries on a 5xx; the message is not lost.
        Err(err) => {
            tracing::error!(error = %err, "recording inbound callback");
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
    let handled = Box::pin(handle_status(&*channel, &gate, &state, &id, &uri, request));
    timed(&state, channel.name(), "status", handled).await
}

async fn handle_status(
    channel: &dyn Channel,
    gate: &Arc<Gate>,
    state: &AppState,
    id: &str,
    uri: &Uri,
    request: Request,
) -> Response {
    let cb = match callback(gate, state, ("status", channel.name()), id, uri, request).await {
        Ok(cb) => cb,
        Err(refused) => return refused,
    };
    let integration = &cb.integration;
    let update = match channel.parse_status(integration, cb.request()) {
        Ok(u) => u,
        Err(refusal) => return refused(state, "status", channel.name(), &cb, uri, refusal).await,
    };
    // Made now, so that it starts now; its parent (the turn that wrote the message) is looked
    // up once the status is applied, when an early receipt's message is recorded too.
    let span = telemetry::span(|| {
        tracing::info_span!("status", otel.kind = "server", channel = channel.name(),
            integration = %integration.id, sid = %update.id, status = %update.status,
            error_code = update.error_code, otel.status_code = Empty)
    });
    let applied = crate::outbox::apply_status(state, integration, &update).await;
    if !span.is_none() {
        let parent = state
            .db
            .outbox_trace_parent(&integration.id, update.id.as_str())
            .await
            .ok()
            .flatten();
        telemetry::continue_from(&span, parent.as_deref());
        if matches!(
            update.status,
            crate::domain::delivery::MessageStatus::Failed
                | crate::domain::delivery::MessageStatus::Undelivered
        ) {
            span.record("otel.status_code", "error");
        }
    }
    match applied {
        Ok(()) => {
            let status = update.status.to_string();
            state
                .metrics
                .status_callbacks
                .with_label_values(&[channel.name(), integration.id.as_str(), status.as_str()])
                .inc();
            state.db.log_channel_later(NewEntry {
                kind: "status",
                channel: channel.name().to_owned(),
                integration_id: Some(integration.id.clone()),
                outcome: "applied",
                detail: Some(status),
                message_sid: Some(update.id.0.clone()),
                error_code: update.error_code,
                ..NewEntry::default()
            });
            StatusCode::NO_CONTENT.into_response()
        }
        Err(err) => {
            tracing::error!(error = %err, "applying status callback");
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
    }
}
