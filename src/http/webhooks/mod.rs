//! Twilio's calls into Chatwire: inbound messages and status callbacks, both signed.
//!
//! Each request is checked against `X-Twilio-Signature` computed over the public URL Twilio
//! called (`CHATWIRE_PUBLIC_URL` + the request path and query). Without a stored auth token
//! nothing can be checked, so the request is refused (fail closed), unlike ChatBotKit.
mod signed;
mod twilio;

use crate::app::AppState;
use axum::extract::DefaultBodyLimit;
use axum::routing::any;
use axum::Router;
use tower::limit::GlobalConcurrencyLimitLayer;

/// Twilio bodies are small; anything larger is not a Twilio webhook.
pub const MAX_WEBHOOK_BODY: usize = 64 * 1024;

/// Most Twilio callbacks handled at once. Past this, further requests wait unread (their bodies
/// stay in the socket) rather than being refused: Twilio does not retry an inbound message
/// webhook by default, so a 503 would lose it. This bounds the memory an overload can take.
pub const MAX_CONCURRENT_WEBHOOKS: usize = 512;

/// Unauthenticated routes (Twilio proves itself with `X-Twilio-Signature`).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/integration/twilio/{id}/webhook", any(twilio::inbound))
        .route("/integration/twilio/{id}/status", any(twilio::status))
        .layer(DefaultBodyLimit::max(MAX_WEBHOOK_BODY))
        .layer(GlobalConcurrencyLimitLayer::new(MAX_CONCURRENT_WEBHOOKS))
}
