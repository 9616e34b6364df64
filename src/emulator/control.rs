//! The control API under `/_emulator/` (no auth, JSON): what a test does to the emulator that
//! a real phone or carrier would do to Twilio, and how it reads back what was sent.
//!
//! | route | effect |
//! |---|---|
//! | `POST /_emulator/inbound` `{from, to, body, media?, profile_name?}` | signed inbound webhook; `{message_sid, status, attempts, error?, opt_out?}` |
//! | `POST /_emulator/inbound/replay` `{message_sid}` | deliver that webhook again (duplicate test) |
//! | `GET /_emulator/messages` | `{messages: [...]}` every Messages create, oldest first, current status |
//! | `GET /_emulator/sent?after=N` | `{next, messages: [{sid, from, to, body, status, sent_at_us}]}` creates from cursor N on (cheap polling for load tests) |
//! | `POST /_emulator/messages/{sid}/status` `{status, error_code?}` | force a status, post its callback |
//! | `GET /_emulator/webhooks`, `GET /_emulator/status-callbacks` | `{webhooks}` / `{callbacks}` delivered |
//! | `POST /_emulator/faults` `{count, kind: "500"\|"429"\|"21610"\|"slow", delay_ms?}` | next creates fail |
//! | `POST /_emulator/numbers` `{account_sid, address, sms_url?, status_callback?}` | add/configure a number |
//! | `POST /_emulator/reset` | forget traffic, faults and opt-outs |

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::json;

use crate::channel::twilio::form::MessageStatus;

use super::state::{Emulator, Fault, InboundRequest, NumberConfig};

/// A control API error: `{message, code}` with a 4xx status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ControlError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

impl ControlError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        ControlError {
            status: 400,
            code: "bad_request",
            message: message.into(),
        }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        ControlError {
            status: 404,
            code: "not_found",
            message: message.into(),
        }
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        ControlError {
            status: 409,
            code: "conflict",
            message: message.into(),
        }
    }
}

impl IntoResponse for ControlError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_REQUEST);
        (
            status,
            Json(json!({"message": self.message, "code": self.code})),
        )
            .into_response()
    }
}

type Shared = Arc<Emulator>;

pub(crate) fn routes() -> Router<Shared> {
    Router::new()
        .route("/_emulator/inbound", post(inbound))
        .route("/_emulator/inbound/replay", post(replay))
        .route("/_emulator/messages", get(messages))
        .route("/_emulator/sent", get(sent))
        .route("/_emulator/messages/{sid}/status", post(set_status))
        .route("/_emulator/webhooks", get(webhooks))
        .route("/_emulator/status-callbacks", get(callbacks))
        .route("/_emulator/faults", post(faults))
        .route("/_emulator/numbers", post(numbers))
        .route("/_emulator/reset", post(reset))
}

/// Parses JSON ourselves so a bad body gets the same `{message, code}` shape as other errors.
fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ControlError> {
    serde_json::from_slice(body)
        .map_err(|e| ControlError::bad_request(format!("invalid JSON: {e}")))
}

async fn inbound(State(emu): State<Shared>, body: Bytes) -> Result<Response, ControlError> {
    let request: InboundRequest = parse(&body)?;
    Ok(Json(emu.inject_inbound(&request).await?).into_response())
}

#[derive(Deserialize)]
struct ReplayRequest {
    message_sid: String,
}

async fn replay(State(emu): State<Shared>, body: Bytes) -> Result<Response, ControlError> {
    let request: ReplayRequest = parse(&body)?;
    Ok(Json(emu.replay_inbound(&request.message_sid).await?).into_response())
}

async fn messages(State(emu): State<Shared>) -> Response {
    Json(json!({"messages": emu.sent_messages()})).into_response()
}

#[derive(Deserialize)]
struct SentQuery {
    #[serde(default)]
    after: usize,
}

/// Outbound messages created since cursor `after` (0 = from the start), with the microsecond
/// they were accepted, and the cursor to pass next time. Only the new tail is copied, so a load
/// generator can poll it many times a second without the cost growing with the history.
async fn sent(State(emu): State<Shared>, Query(query): Query<SentQuery>) -> Response {
    let (next, messages) = emu.sent_since(query.after);
    Json(json!({"next": next, "messages": messages})).into_response()
}

#[derive(Deserialize)]
struct StatusRequest {
    status: MessageStatus,
    #[serde(default)]
    error_code: Option<i64>,
}

async fn set_status(
    State(emu): State<Shared>,
    Path(sid): Path<String>,
    body: Bytes,
) -> Result<Response, ControlError> {
    let request: StatusRequest = parse(&body)?;
    let callback_status = emu
        .force_status(&sid, request.status, request.error_code)
        .await?;
    Ok(Json(
        json!({"message_sid": sid, "status": request.status, "callback_status": callback_status}),
    )
    .into_response())
}

async fn webhooks(State(emu): State<Shared>) -> Response {
    Json(json!({"webhooks": emu.webhooks()})).into_response()
}

async fn callbacks(State(emu): State<Shared>) -> Response {
    Json(json!({"callbacks": emu.status_callbacks()})).into_response()
}

async fn faults(State(emu): State<Shared>, body: Bytes) -> Result<Response, ControlError> {
    let fault: Fault = parse(&body)?;
    let pending = emu.add_fault(fault);
    Ok(Json(json!({"pending": pending})).into_response())
}

async fn numbers(State(emu): State<Shared>, body: Bytes) -> Result<Response, ControlError> {
    let config: NumberConfig = parse(&body)?;
    let number = emu
        .add_number(&config)
        .map_err(|e| ControlError::bad_request(e.to_string()))?;
    Ok(Json(number).into_response())
}

async fn reset(State(emu): State<Shared>) -> Response {
    emu.reset();
    Json(json!({"ok": true})).into_response()
}

impl Emulator {
    /// Outbound messages at positions `after..` of the message log, and the next cursor.
    pub fn sent_since(&self, after: usize) -> (usize, Vec<serde_json::Value>) {
        let inner = self.lock();
        let tail = inner.messages.get(after..).unwrap_or_default();
        let messages = tail
            .iter()
            .filter(|m| m.resource.direction != "inbound")
            .map(|m| {
                let sent_at_us = m
                    .sent_at
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_micros() as u64);
                json!({
                    "sid": m.resource.sid,
                    "from": m.resource.from,
                    "to": m.resource.to,
                    "body": m.resource.body,
                    "status": m.resource.status_raw,
                    "sent_at_us": sent_at_us,
                })
            })
            .collect();
        (inner.messages.len(), messages)
    }

    /// Moves a message to any status (e.g. `undelivered` with 30003) and posts its callback;
    /// returns the callback's HTTP status, `None` if there was no callback URL or no answer.
    pub async fn force_status(
        &self,
        message_sid: &str,
        status: MessageStatus,
        error_code: Option<i64>,
    ) -> Result<Option<u16>, ControlError> {
        if self.lock().message_mut(message_sid).is_none() {
            return Err(ControlError::not_found(format!("no message {message_sid}")));
        }
        match self.set_status(message_sid, status, error_code, true) {
            Some(job) => Ok(self.post_status_callback(job).await),
            None => Ok(None),
        }
    }
}
