//! The ceiling: a bare axum server that answers the webhook route with `200` and empty TwiML
//! without verifying, parsing or storing anything. It runs as a child process of the bench
//! (`chatwire-bench ceiling --listen ADDR`) on the same default multi-threaded tokio runtime as
//! `chatwire serve`, so the load generator drives both the same way and the ratio between them
//! is what Chatwire's own work costs.
use axum::body::Bytes;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use std::net::SocketAddr;

async fn webhook(body: Bytes) -> impl IntoResponse {
    // Reading the body keeps the comparison fair: Chatwire has to read it too.
    let _ = body.len();
    (
        [(header::CONTENT_TYPE, "text/xml")],
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response/>",
    )
}

/// Serves until killed.
pub async fn serve(listen: SocketAddr) -> anyhow::Result<()> {
    let app = Router::new()
        .route("/v1/integration/twilio/{id}/webhook", post(webhook))
        .route("/healthz", get(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind(listen).await?;
    axum::serve(listener, app).await?;
    Ok(())
}
