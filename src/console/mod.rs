//! The web console at `/console`: the agents' inbox and the operations page
//! (`/console/operations`: channel log and overview), served by `chatwire serve` itself. The
//! page, its script and its style are compiled into the binary (no CDN, no build step); the
//! page talks to the JSON endpoints under `/console/api/` with a session cookie and a CSRF
//! token, and follows changes over server-sent events.
pub mod inbox;
pub mod operations;
pub mod session;
pub mod throttle;

use crate::app::AppState;
use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Extension, Router};
use std::sync::Arc;

const INDEX: &str = include_str!("assets/index.html");
const SCRIPT: &str = include_str!("assets/app.js");
const SHARED_SCRIPT: &str = include_str!("assets/shared.js");
const STYLE: &str = include_str!("assets/app.css");
const OPERATIONS: &str = include_str!("assets/operations.html");
const OPERATIONS_SCRIPT: &str = include_str!("assets/operations.js");

/// Only the console's own script and style run on its pages.
const POLICY: &str =
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
    connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (CONTENT_TYPE, content_type),
            (CACHE_CONTROL, "no-cache"),
            (CONTENT_SECURITY_POLICY, POLICY),
        ],
        body,
    )
}

/// The console's routes.
pub fn routes() -> Router<AppState> {
    let api = Router::new()
        .route("/login", post(session::login))
        .route("/logout", post(session::logout))
        .route("/me", get(session::whoami))
        .route("/status", post(inbox::status))
        .route("/inbox", get(inbox::inbox))
        .route("/events", get(inbox::events))
        .route("/handoffs/{id}", get(inbox::detail))
        .route("/handoffs/{id}/take", post(inbox::take))
        .route("/handoffs/{id}/reply", post(inbox::reply))
        .route("/handoffs/{id}/answer", post(inbox::answer))
        .route("/handoffs/{id}/close", post(inbox::close))
        .route("/channel-log", get(operations::log))
        .route("/channel-log/{id}/replay", post(operations::replay))
        .route("/overview", get(operations::overview))
        .layer(Extension(Arc::new(throttle::LoginThrottle::default())));
    Router::new()
        .route(
            "/console",
            get(|| async { asset("text/html; charset=utf-8", INDEX) }),
        )
        .route(
            "/console/",
            get(|| async { asset("text/html; charset=utf-8", INDEX) }),
        )
        .route(
            "/console/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", SCRIPT) }),
        )
        .route(
            "/console/shared.js",
            get(|| async { asset("text/javascript; charset=utf-8", SHARED_SCRIPT) }),
        )
        .route(
            "/console/operations",
            get(|| async { asset("text/html; charset=utf-8", OPERATIONS) }),
        )
        .route(
            "/console/operations.js",
            get(|| async { asset("text/javascript; charset=utf-8", OPERATIONS_SCRIPT) }),
        )
        .route(
            "/console/app.css",
            get(|| async { asset("text/css; charset=utf-8", STYLE) }),
        )
        .nest("/console/api", api)
}
