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

/// Twilio bodies are small; anything larger is not a Twilio webhook.
pub const MAX_WEBHOOK_BODY: usize = 64 * 1024;

/// Unauthenticated routes (Twilio proves itself with `X-Twilio-Signature`).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/integration/twilio/{id}/webhook", any(twilio::inbound))
        .route("/integration/twilio/{id}/status", any(twilio::status))
        .layer(DefaultBodyLimit::max(MAX_WEBHOOK_BODY))
}
