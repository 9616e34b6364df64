//! Bearer tokens for the management API: `CHATWIRE_API_TOKEN` and tokens made with
//! `chatwire token create` or `POST /v1/token/create` (stored as SHA-256 hashes).
//!
//! A 401 says which of the two usual mistakes was made: no token at all (the header is
//! missing or has no second word), or a token this server does not know (mistyped, revoked,
//! or created against another database). The code stays ChatBotKit's `NOT_AUTHENTICATED`.
//! Failures are counted per client address ([`super::auth_throttle`]): past the limit, 429.
use super::error::ApiError;
use crate::app::AppState;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::{AUTHORIZATION, RETRY_AFTER};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use secrecy::ExposeSecret;
use std::net::SocketAddr;
use std::time::Instant;
use subtle::ConstantTimeEq;

/// Like ChatBotKit, the scheme word is ignored: the token is the header's second word.
pub async fn require_token(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let now = Instant::now();
    if let Some(wait) = peer.and_then(|ip| state.auth_throttle.blocked(ip, now)) {
        return too_many_failures(wait);
    }
    let token = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(' ').nth(1))
        .filter(|t| !t.is_empty())
        .map(str::to_owned);
    let failed = |message: &str| {
        if let Some(ip) = peer {
            state.auth_throttle.failed(ip, now);
        }
        unauthenticated(message)
    };
    let Some(token) = token else {
        return failed("Not authenticated: no token given; send \"Authorization: Bearer <token>\"");
    };
    match token_is_valid(&state, &token).await {
        Ok(true) => next.run(req).await,
        Ok(false) => failed(
            "Not authenticated: the token is not known to this server (mistyped, revoked, or made for another database)",
        ),
        Err(err) => ApiError::internal(err).into_response(),
    }
}

fn unauthenticated(message: &str) -> Response {
    ApiError::new(StatusCode::UNAUTHORIZED, "NOT_AUTHENTICATED", message).into_response()
}

/// 429 with the whole seconds left in the window (at least 1).
fn too_many_failures(wait: std::time::Duration) -> Response {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let mut response = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "TOO_MANY_REQUESTS",
        format!("Too many failed authentications from this address; retry in {seconds} s"),
    )
    .into_response();
    if let Ok(value) = HeaderValue::from_str(&seconds.max(1).to_string()) {
        response.headers_mut().insert(RETRY_AFTER, value);
    }
    response
}

async fn token_is_valid(state: &AppState, token: &str) -> Result<bool, sqlx::Error> {
    if let Some(expected) = &state.config.api_token {
        if bool::from(expected.expose_secret().as_bytes().ct_eq(token.as_bytes())) {
            return Ok(true);
        }
    }
    crate::store::tokens::is_known(&state.db, token).await
}
