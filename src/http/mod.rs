//! The HTTP edge: the management API (authenticated), Twilio's webhooks (signed), health checks.
pub mod api;
pub mod auth;
pub mod auth_throttle;
pub mod error;
pub mod extract;
pub mod webhooks;
pub mod widget;

use crate::app::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{middleware, Json, Router};
use error::ApiError;
use serde_json::Value;
use std::sync::Arc;
use tower_http::trace::TraceLayer;

/// The whole application router.
pub fn router(state: AppState) -> Router {
    let api = api::routes();
    let names: Vec<&str> = state.channels.iter().map(|c| c.name()).collect();
    let spec: Arc<Value> = Arc::new(api::openapi::document(&api.ops, &names));
    let management = api.router.route_layer(middleware::from_fn_with_state(
        state.clone(),
        auth::require_token,
    ));
    let spec_route = {
        let spec = spec.clone();
        get(move || async move { Json(spec.as_ref().clone()) })
    };
    let v1 = Router::new()
        .route("/openapi.json", spec_route)
        .merge(webhooks::routes(
            &state.channels,
            state.config.webhook_client_limit,
        ))
        .merge(management);
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .nest("/v1", v1.clone())
        .nest("/api/v1", v1)
        .merge(crate::console::routes())
        .merge(widget::routes(&state))
        .fallback(|| async { ApiError::not_found() })
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// The Prometheus exposition, with the queue gauges read from the database now.
async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    match state.db.queue_depths().await {
        Ok(depths) => state.metrics.set_queues(&depths),
        Err(err) => tracing::warn!(error = %err, "reading queue depths for /metrics"),
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
}

/// The OpenAPI document of a server with the Twilio Messaging channel (what
/// `chatwire openapi` prints).
pub fn openapi_document() -> Value {
    api::openapi::document(
        &api::routes().ops,
        &[crate::channel::twilio::messaging::TwilioMessaging::NAME],
    )
}

/// Ready means able to accept: a write commits within [`READY_WRITE_LIMIT`] (a full disk, a
/// read-only directory or a lost primary fail it) and both claim loops are alive.
async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    if !state.db.write_probe(READY_WRITE_LIMIT).await {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "database not writable".to_owned(),
        );
    }
    let stale = state.liveness.stale(crate::domain::now_ms());
    if !stale.is_empty() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("claim loop stalled: {}", stale.join(", ")),
        );
    }
    (StatusCode::OK, "ready".to_owned())
}

/// How long the readiness write may take; a balancer's probe usually gives up after 1 to 5 s.
const READY_WRITE_LIMIT: std::time::Duration = std::time::Duration::from_secs(2);
