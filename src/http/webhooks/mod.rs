//! Twilio's calls into Chatwire: inbound messages and status callbacks, both signed.
use crate::app::AppState;
use axum::Router;

/// Unauthenticated routes (Twilio proves itself with `X-Twilio-Signature`).
pub fn routes() -> Router<AppState> {
    Router::new()
}
