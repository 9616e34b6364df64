//! Bearer tokens for the management API: `CHATWIRE_API_TOKEN` and tokens made with
//! `chatwire token create` (stored as SHA-256 hashes).
use super::error::ApiError;
use crate::app::AppState;
use crate::crypto::hash_token;
use crate::store::Sql;
use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
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
        .map(str::to_owned);
    match token {
        Some(token) if !token.is_empty() && token_is_valid(&state, &token).await => {
            next.run(req).await
        }
        _ => ApiError::not_authenticated().into_response(),
    }
}

async fn token_is_valid(state: &AppState, token: &str) -> bool {
    if let Some(expected) = &state.config.api_token {
        if bool::from(expected.expose_secret().as_bytes().ct_eq(token.as_bytes())) {
            return true;
        }
    }
    let mut sql = Sql::new("SELECT id FROM api_tokens WHERE token_hash = ");
    sql.bind(hash_token(token));
    matches!(state.db.fetch_optional(&sql).await, Ok(Some(_)))
}
