//! The phone page of `chatwire dev` (`/dev/phone`): a person's phone in the browser. It texts
//! the demo numbers through the emulator (which signs the webhook as Twilio does), and an SSE
//! stream (`/dev/phone/events`) shows what the bots send back and each message's delivery
//! status as the emulator's callbacks move it (queued, sent, delivered).
//!
//! | route | |
//! |---|---|
//! | `GET /dev/phone` | the page |
//! | `GET /dev/phone/bots` | `{person, bots: [{key, name, number, hint}]}` |
//! | `POST /dev/phone/send` `{to, body}` | a text from the person to a demo number: `{messageSid, status}` |
//! | `GET /dev/phone/events` | SSE, one `message` event per new message or status change |
use super::{Dev, PERSON};
use crate::app::AppState;
use crate::emulator::{Emulator, InboundRequest};
use axum::http::{header, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

const PAGE: &str = include_str!("phone.html");
/// How often the event stream looks at the emulator.
const POLL: Duration = Duration::from_millis(200);

/// The demo, once it is created (the server starts first, so that `setup` can reach it).
#[derive(Clone, Default)]
pub struct Slot(Arc<OnceLock<Dev>>);

impl Slot {
    pub fn set(&self, dev: Dev) {
        let _ = self.0.set(dev);
    }

    pub fn get(&self) -> Option<Dev> {
        self.0.get().cloned()
    }
}

/// The answer while the demo is still being created.
fn not_ready() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({"message": "The demo is still being set up; try again in a second", "code": "NOT_READY"})),
    )
        .into_response()
}

/// One message on the person's phone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PhoneMessage {
    pub sid: String,
    /// `in`: the person texted a bot; `out`: a bot texted the person.
    pub direction: &'static str,
    /// The demo number on the other side.
    pub number: String,
    pub body: String,
    pub status: String,
    #[serde(rename = "errorCode")]
    pub error_code: Option<i64>,
}

/// What the person's phone shows, oldest first: texts sent (as the emulator delivered them to
/// Chatwire) and texts received (as Chatwire sent them), with their latest status.
pub fn messages(emulator: &Emulator) -> Vec<PhoneMessage> {
    let mut out: Vec<PhoneMessage> = emulator
        .webhooks()
        .into_iter()
        .filter_map(|w| {
            let param = |k: &str| {
                w.params
                    .iter()
                    .find(|(n, _)| n == k)
                    .map(|(_, v)| v.clone())
            };
            (param("From")? == PERSON).then(|| PhoneMessage {
                sid: w.message_sid.clone(),
                direction: "in",
                number: param("To").unwrap_or_default(),
                body: param("Body").unwrap_or_default(),
                status: match w.status {
                    Some(s) if (200..300).contains(&s) => "received".to_owned(),
                    Some(s) => format!("refused (HTTP {s})"),
                    None => "not answered".to_owned(),
                },
                error_code: None,
            })
        })
        .collect();
    out.extend(
        emulator
            .sent_messages()
            .into_iter()
            .filter(|m| m.to == PERSON)
            .map(|m| PhoneMessage {
                sid: m.sid,
                direction: "out",
                number: m.from,
                body: m.body,
                status: m.status_raw,
                error_code: m.error_code,
            }),
    );
    out
}

/// Messages new or changed since the last call.
#[derive(Default)]
pub struct Feed {
    seen: HashMap<String, String>,
}

impl Feed {
    pub fn poll(&mut self, emulator: &Emulator) -> Vec<PhoneMessage> {
        messages(emulator)
            .into_iter()
            .filter(|m| {
                self.seen.insert(m.sid.clone(), m.status.clone()).as_ref() != Some(&m.status)
            })
            .collect()
    }
}

pub fn routes(slot: Slot) -> Router<AppState> {
    let (bots_slot, send_slot, events_slot) = (slot.clone(), slot.clone(), slot);
    Router::new()
        .route(
            "/dev/phone",
            get(|| async { ([(header::CACHE_CONTROL, "no-store")], Html(PAGE)) }),
        )
        .route("/dev/phone/bots", get(move || bots(bots_slot.clone())))
        .route(
            "/dev/phone/send",
            post(move |body: axum::body::Bytes| send(send_slot.clone(), body)),
        )
        .route(
            "/dev/phone/events",
            get(move || events(events_slot.clone())),
        )
}

async fn bots(slot: Slot) -> Response {
    match slot.get() {
        Some(dev) => Json(json!({"person": PERSON, "bots": *dev.bots})).into_response(),
        None => not_ready(),
    }
}

#[derive(Deserialize)]
struct Text {
    to: String,
    body: String,
}

fn bad_request(message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"message": message, "code": "BAD_REQUEST"})),
    )
        .into_response()
}

async fn send(slot: Slot, body: axum::body::Bytes) -> Response {
    let Some(dev) = slot.get() else {
        return not_ready();
    };
    let Ok(text) = serde_json::from_slice::<Text>(&body) else {
        return bad_request("Send {\"to\": \"<a demo number>\", \"body\": \"<text>\"}");
    };
    if !dev.bots.iter().any(|b| b.number == text.to) {
        return bad_request("\"to\" must be one of the demo numbers (GET /dev/phone/bots)");
    }
    if text.body.trim().is_empty() || text.body.len() > 1600 {
        return bad_request("\"body\" must be 1 to 1600 bytes");
    }
    match dev
        .emulator
        .inject_inbound(&request(&text.to, &text.body))
        .await
    {
        Ok(result) => {
            Json(json!({"messageSid": result.message_sid, "status": result.status})).into_response()
        }
        Err(err) => (
            StatusCode::from_u16(err.status).unwrap_or(StatusCode::BAD_GATEWAY),
            Json(json!({"message": err.message, "code": err.code})),
        )
            .into_response(),
    }
}

/// The person's text to `to`.
pub fn request(to: &str, body: &str) -> InboundRequest {
    InboundRequest {
        from: PERSON.to_owned(),
        to: to.to_owned(),
        body: body.to_owned(),
        media: Vec::new(),
        profile_name: None,
    }
}

async fn events(slot: Slot) -> Response {
    let Some(dev) = slot.get() else {
        return not_ready();
    };
    let stream = futures::stream::unfold(
        (Feed::default(), dev, Vec::<PhoneMessage>::new()),
        |(mut feed, dev, mut pending)| async move {
            while pending.is_empty() {
                pending = feed.poll(&dev.emulator);
                if pending.is_empty() {
                    tokio::time::sleep(POLL).await;
                }
            }
            let next = pending.remove(0);
            let event = Event::default()
                .event("message")
                .json_data(&next)
                .unwrap_or_else(|_| Event::default().comment("unserializable"));
            Some((Ok::<_, Infallible>(event), (feed, dev, pending)))
        },
    );
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}
