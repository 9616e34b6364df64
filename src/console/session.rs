//! Signing agents in and out of the console. The session token lives in an HttpOnly,
//! SameSite=Strict cookie and is stored only as a hash; every state-changing request must also
//! carry the session's CSRF token in `X-CSRF-Token`, which a page on another origin cannot read.
use super::throttle::LoginThrottle;
use crate::app::AppState;
use crate::crypto::hash_token;
use crate::domain::now_ms;
use crate::handoff::password;
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::JsonBody;
use crate::store::agents::Agent;
use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::header::{COOKIE, RETRY_AFTER, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use rand::RngCore;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::Arc;
use subtle::ConstantTimeEq;

const COOKIE_NAME: &str = "chatwire_console";
/// How long a console session lasts.
const LIFETIME_MS: i64 = 12 * 3_600_000;

/// The agent behind a console request.
pub struct SignedIn {
    pub agent: Agent,
    pub csrf: String,
    token_hash: String,
}

fn cookie_token(parts: &Parts) -> Option<String> {
    parts
        .headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE_NAME)
        .map(|(_, value)| value.to_owned())
        .filter(|v| !v.is_empty())
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = cookie_token(parts).ok_or_else(ApiError::not_authenticated)?;
        let token_hash = hash_token(&token);
        let session = state
            .db
            .agent_session(&token_hash)
            .await?
            .ok_or_else(ApiError::not_authenticated)?;
        if !matches!(parts.method, Method::GET | Method::HEAD) {
            let sent = parts
                .headers
                .get("x-csrf-token")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if !bool::from(sent.as_bytes().ct_eq(session.csrf.as_bytes())) {
                return Err(ApiError::not_authorized(
                    "Missing or wrong X-CSRF-Token header",
                ));
            }
        }
        Ok(SignedIn {
            agent: session.agent,
            csrf: session.csrf,
            token_hash,
        })
    }
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

fn string_field(body: &serde_json::Map<String, Value>, name: &str) -> ApiResult<String> {
    match body.get(name) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        _ => Err(ApiError::bad_request(format!(
            "\"{name}\" is required and must be a non-empty string"
        ))),
    }
}

fn cookie(state: &AppState, value: &str, max_age_s: i64) -> HeaderValue {
    let secure = if state.public_base.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    let text = format!(
        "{COOKIE_NAME}={value}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={max_age_s}{secure}"
    );
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// What the page needs about the signed-in agent.
pub fn me(agent: &Agent, csrf: &str) -> Value {
    json!({"agent": agent, "csrf": csrf})
}

/// `POST /console/api/login {email, password}`.
pub async fn login(
    State(state): State<AppState>,
    Extension(throttle): Extension<Arc<LoginThrottle>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let email = string_field(&body, "email")?;
    let given = string_field(&body, "password")?;
    let keys = vec![
        format!("ip:{}", peer.ip()),
        format!("account:{}", email.to_lowercase()),
    ];
    if let Some(wait) = throttle.wait(&keys) {
        let mut response = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "TOO_MANY_REQUESTS",
            "Too many failed logins: wait before trying again",
        )
        .into_response();
        let secs = wait.as_secs().max(1).to_string();
        if let Ok(v) = HeaderValue::from_str(&secs) {
            response.headers_mut().insert(RETRY_AFTER, v);
        }
        return Ok(response);
    }
    let found = state.db.agent_login(&email).await?;
    // An unknown email costs the same hashing as a known one, so timing does not tell them apart.
    let phc = match &found {
        Some((_, phc)) => phc.clone(),
        None => password::decoy().await,
    };
    let matches = password::verify(&given, &phc).await;
    let agent = match found {
        Some((agent, _)) if matches => agent,
        _ => {
            throttle.failed(&keys);
            return Err(ApiError::not_authenticated_because(
                "Wrong email or password",
            ));
        }
    };
    throttle.succeeded(&keys);
    let (token, csrf) = (random_token(), random_token());
    state
        .db
        .create_agent_session(
            &agent.id,
            &hash_token(&token),
            &csrf,
            now_ms() + LIFETIME_MS,
        )
        .await?;
    // Signing in means being ready for conversations.
    let fields = crate::store::agents::AgentFields {
        status: Some("online".into()),
        ..Default::default()
    };
    state.db.update_agent(&agent.id, &fields).await?;
    let agent = state.db.agent(&agent.id).await?.unwrap_or(agent);
    crate::handoff::changed(&state);
    let mut response = Json(me(&agent, &csrf)).into_response();
    response
        .headers_mut()
        .insert(SET_COOKIE, cookie(&state, &token, LIFETIME_MS / 1000));
    Ok(response)
}

/// `POST /console/api/logout`: ends the session and marks the agent away.
pub async fn logout(State(state): State<AppState>, who: SignedIn) -> ApiResult<Response> {
    state.db.delete_agent_session(&who.token_hash).await?;
    let fields = crate::store::agents::AgentFields {
        status: Some("away".into()),
        ..Default::default()
    };
    state.db.update_agent(&who.agent.id, &fields).await?;
    crate::handoff::changed(&state);
    let mut response = Json(json!({})).into_response();
    response
        .headers_mut()
        .insert(SET_COOKIE, cookie(&state, "", 0));
    Ok(response)
}

/// `GET /console/api/me`.
pub async fn whoami(who: SignedIn) -> Json<Value> {
    Json(me(&who.agent, &who.csrf))
}
