//! The web chat widget's public routes. A site embeds one script tag,
//! `<script src="https://chatwire.example/widget.js" data-widget="ID"></script>`, and the
//! widget talks to these:
//!
//! | route | what |
//! |---|---|
//! | `GET /widget.js` | the widget itself (no CDN, no build step) |
//! | `GET /widget/{id}/config` | title, intro, initial message, placeholder, theme, language |
//! | `POST /widget/{id}/session {token?}` | the visitor's token: the one given if valid (a site's signed-in user, or the browser's earlier one), else a new anonymous visitor |
//! | `POST /widget/{id}/messages {text, id}` + `Authorization: Bearer <token>` | a message, accepted by the same pipeline as an SMS |
//! | `GET /widget/{id}/events?token=` | server-sent `view` events: the conversation's messages and whether a turn is running |
//!
//! Requests from a page whose origin the widget's `origin` setting does not list are refused
//! (403) and get no CORS headers; each visitor may post a bounded number of messages a minute.
use crate::app::AppState;
use crate::channel::webchat::WebChat;
use crate::channel::{CallbackRequest, Channel, Refusal};
use crate::domain::{ids, now_ms};
use crate::http::error::{ApiError, ApiResult};
use crate::pipeline::accept;
use crate::store::schema::WIDGET;
use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_MAX_AGE, CACHE_CONTROL, CONTENT_TYPE, ORIGIN, RETRY_AFTER, VARY,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use futures::Stream;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SCRIPT: &str = include_str!("widget.js");

/// Messages one visitor may post per minute.
const PER_MINUTE: u32 = 20;
/// How often a stream looks for changes made elsewhere (another replica, the clock).
const LOOK_EVERY: Duration = Duration::from_secs(1);

pub fn routes(state: &AppState) -> Router<AppState> {
    let api = Router::new()
        .route("/{id}/config", get(config).options(preflight))
        .route("/{id}/session", post(session).options(preflight))
        .route("/{id}/messages", post(message).options(preflight))
        .route("/{id}/events", get(events).options(preflight))
        .route_layer(middleware::from_fn_with_state(state.clone(), allow_origin))
        .layer(Extension(Arc::new(VisitorLimit::default())));
    Router::new()
        .route(
            "/widget.js",
            get(|| async {
                (
                    [
                        (CONTENT_TYPE, "text/javascript; charset=utf-8"),
                        (CACHE_CONTROL, "no-cache"),
                    ],
                    SCRIPT,
                )
            }),
        )
        .nest("/widget", api)
}

/// A CORS preflight; [`allow_origin`] adds its headers.
async fn preflight() -> StatusCode {
    StatusCode::NO_CONTENT
}

/// The widget's settings as stored.
async fn widget(state: &AppState, id: &str) -> ApiResult<Map<String, Value>> {
    state
        .db
        .fetch_resource_cached(&WIDGET, id)
        .await?
        .ok_or_else(ApiError::not_found)
}

/// Whether `origin` may embed a widget whose `origin` setting is `allowed`.
fn origin_allowed(allowed: Option<&str>, origin: &str) -> bool {
    match allowed.map(str::trim) {
        None | Some("") | Some("*") => true,
        Some(list) => list
            .split([',', ' ', '\n'])
            .map(|o| o.trim().trim_end_matches('/'))
            .any(|o| !o.is_empty() && o.eq_ignore_ascii_case(origin)),
    }
}

/// Checks the page's origin against the widget's and answers CORS, preflights included.
async fn allow_origin(
    State(state): State<AppState>,
    Path(params): Path<HashMap<String, String>>,
    request: Request,
    next: Next,
) -> Response {
    let id = params.get("id").cloned().unwrap_or_default();
    let origin = request
        .headers()
        .get(ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let Some(origin) = origin else {
        // Not from a browser page on another origin (same-origin GETs, servers): no CORS.
        return next.run(request).await;
    };
    let settings = match widget(&state, &id).await {
        Ok(w) => w,
        Err(e) => return e.into_response(),
    };
    if !origin_allowed(settings.get("origin").and_then(Value::as_str), &origin) {
        return ApiError::not_authorized("This site may not embed this widget (see its origin)")
            .into_response();
    }
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&origin) {
        headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, v);
    }
    headers.insert(VARY, HeaderValue::from_static("Origin"));
    headers.insert(
        ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("authorization, content-type"),
    );
    headers.insert(
        ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST, OPTIONS"),
    );
    headers.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
    response
}

/// `GET /widget/{id}/config`: what the widget shows before anyone writes.
async fn config(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let w = widget(&state, &id).await?;
    let pick = |k: &str| w.get(k).cloned().unwrap_or(Value::Null);
    Ok(Json(json!({
        "id": id,
        "name": pick("name"),
        "title": pick("title"),
        "intro": pick("intro"),
        "initial": pick("initial"),
        "placeholder": pick("placeholder"),
        "theme": pick("theme"),
        "language": pick("language"),
    })))
}

#[derive(Deserialize, Default)]
struct SessionBody {
    token: Option<String>,
}

/// `POST /widget/{id}/session {token?}`.
async fn session(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    widget(&state, &id).await?;
    let asked: SessionBody = if body.iter().all(u8::is_ascii_whitespace) {
        SessionBody::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|_| ApiError::bad_request("expected {\"token\"?: string}"))?
    };
    let known = asked.token.as_deref().and_then(|t| {
        state
            .webchat
            .visitor(&id, Some(t))
            .map(|v| (t.to_owned(), v))
    });
    let (token, visitor) = match known {
        Some((t, v)) => (t, v.id),
        None => {
            let visitor = format!("a-{}", ids::new_id());
            (state.webchat.mint(&id, &visitor), visitor)
        }
    };
    Ok(Json(json!({"token": token, "visitor": visitor})))
}

/// Per visitor, messages posted in the current minute.
#[derive(Default)]
struct VisitorLimit(Mutex<HashMap<String, (Instant, u32)>>);

impl VisitorLimit {
    /// `None` when the visitor may post now, else how long to wait.
    fn take(&self, visitor: &str) -> Option<Duration> {
        let now = Instant::now();
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() > 100_000 {
            map.retain(|_, (start, _)| now.duration_since(*start) < Duration::from_secs(60));
        }
        let entry = map.entry(visitor.to_owned()).or_insert((now, 0));
        if now.duration_since(entry.0) >= Duration::from_secs(60) {
            *entry = (now, 0);
        }
        if entry.1 >= PER_MINUTE {
            return Some(Duration::from_secs(60).saturating_sub(now.duration_since(entry.0)));
        }
        entry.1 += 1;
        None
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
}

/// `POST /widget/{id}/messages`: a visitor's message, into the pipeline.
async fn message(
    State(state): State<AppState>,
    Extension(limit): Extension<Arc<VisitorLimit>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let integration = state
        .db
        .integration(&state.cipher, &id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let visitor = state
        .webchat
        .visitor(&id, bearer(&headers))
        .ok_or_else(ApiError::not_authenticated)?;
    if let Some(wait) = limit.take(&visitor.id) {
        let mut response = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "TOO_MANY_REQUESTS",
            format!("At most {PER_MINUTE} messages a minute: wait before sending more"),
        )
        .into_response();
        if let Ok(v) = HeaderValue::from_str(&wait.as_secs().max(1).to_string()) {
            response.headers_mut().insert(RETRY_AFTER, v);
        }
        return Ok(response);
    }
    let url = format!("{}/widget/{id}/messages", state.public_base);
    let request = CallbackRequest {
        url: &url,
        headers: &headers,
        body: &body,
    };
    let parsed =
        state
            .webchat
            .parse_inbound(&integration, request)
            .map_err(|refusal| match refusal {
                Refusal::Unauthenticated(_) | Refusal::WrongAccount(_) => {
                    ApiError::not_authenticated()
                }
                Refusal::Malformed(why) => ApiError::bad_request(why),
            })?;
    accept::inbound(&state, WebChat::NAME, &integration, parsed).await?;
    state.webchat.nudge();
    Ok(Json(json!({})).into_response())
}

#[derive(Deserialize)]
struct EventsQuery {
    token: String,
}

/// The visitor's view: their conversation's messages and whether a turn is running.
async fn view(state: &AppState, integration: &str, address: &str, duration: i64) -> Value {
    let db = &state.db;
    let conversation = db
        .visitor_conversation(integration, address, duration.max(1), now_ms())
        .await
        .ok()
        .flatten();
    let messages = match &conversation {
        Some(c) => db.visitor_messages(c).await.unwrap_or_default(),
        None => Vec::new(),
    };
    let typing = db
        .visitor_waiting(integration, address)
        .await
        .unwrap_or(false);
    json!({"messages": messages, "typing": typing})
}

/// `GET /widget/{id}/events?token=`: a `view` event whenever the view changes.
async fn events(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<EventsQuery>,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let visitor = state
        .webchat
        .visitor(&id, Some(&q.token))
        .ok_or_else(ApiError::not_authenticated)?;
    let integration = state
        .db
        .integration(&state.cipher, &id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let duration = integration
        .session_duration
        .unwrap_or(state.config.session_timeout_ms);
    let address = format!("chat:{}", visitor.id);
    let changes = state.webchat.subscribe();
    let start = (state, id, address, changes, String::new());
    let stream = futures::stream::unfold(
        start,
        move |(state, id, address, mut changes, last)| async move {
            loop {
                let now = view(&state, &id, &address, duration).await.to_string();
                if now != last {
                    let event = Event::default().event("view").data(now.clone());
                    return Some((Ok(event), (state, id, address, changes, now)));
                }
                tokio::select! {
                    changed = changes.changed() => if changed.is_err() { return None },
                    _ = tokio::time::sleep(LOOK_EVERY) => {}
                }
            }
        },
    );
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_matched_exactly_from_the_widgets_list() {
        assert!(origin_allowed(None, "https://a.example"));
        assert!(origin_allowed(Some("*"), "https://a.example"));
        let list = Some("https://a.example, https://b.example/");
        assert!(origin_allowed(list, "https://a.example"));
        assert!(origin_allowed(list, "https://b.example"));
        assert!(!origin_allowed(list, "https://evil.example"));
        assert!(!origin_allowed(list, "https://a.example.evil.example"));
        assert!(!origin_allowed(list, "http://a.example"));
    }

    #[test]
    fn a_visitor_posting_too_fast_is_told_to_wait() {
        let limit = VisitorLimit::default();
        for _ in 0..PER_MINUTE {
            assert_eq!(limit.take("v1"), None);
        }
        assert!(limit.take("v1").is_some());
        assert_eq!(limit.take("v2"), None, "others are not slowed down");
    }
}
