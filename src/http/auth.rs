//! Bearer tokens for the management API: `CHATWIRE_API_TOKEN` and tokens made with
//! `chatwire token create` or `POST /v1/token/create` (stored as SHA-256 hashes).
//!
//! A 401 says which of the two usual mistakes was made: no token at all (the header is
//! missing or has no second word), or a token this server does not know (mistyped, revoked,
//! or created against another database). The code stays ChatBotKit's `NOT_AUTHENTICATED`.
use super::error::ApiError;
use crate::app::AppState;
use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use secrecy::ExposeSecret;
use subtle::ConstantTimeEq;

/// Like ChatBotKit, the scheme word is ignored: the token is the header's second word.
pub async fn require_token(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let token = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(' ').nth(1))
        .filter(|t| !t.is_empty())
        .map(str::to_owned);
    let Some(token) = token else {
        return unauthenticated(
            "Not authenticated: no token given; send \"Authorization: Bearer <token>\"",
        );
    };
    match token_is_valid(&state, &token).await {
        Ok(true) => next.run(req).await,
        Ok(false) => unauthenticated(
            "Not authenticated: the token is not known to this server (mistyped, revoked, or made for another database)",
        ),
        Err(err) => ApiError::internal(err).into_response(),
    }
}

fn unauthenticated(message: &str) -> Response {
    ApiError::new(StatusCode::UNAUTHORIZED, "NOT_AUTHENTICATED", message).into_response()
}

async fn token_is_valid(state: &AppState, token: &str) -> Result<bool, sqlx::Error> {
    if let Some(expected) = &state.config.api_token {
        if bool::from(expected.expose_secret().as_bytes().ct_eq(token.as_bytes())) {
            return Ok(true);
        }
    }
    crate::store::tokens::is_known(&state.db, token).await
}
