//! The inbox's data: the queue, the agent's conversations and messages left for the team, one
//! conversation's whole history, the agent's actions, and a live stream of changes (SSE).
//!
//! The stream sends a fresh snapshot whenever it differs from the last one sent: at once when
//! this process changes something, and within two seconds when another replica sharing the
//! database did (a look every two seconds costs one small query per open console).
use super::session::SignedIn;
use crate::app::AppState;
use crate::handoff::desk;
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::JsonBody;
use crate::store::agents::AgentFields;
use crate::store::handoff::{Handoff, HandoffFilter, HandoffState};
use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::Json;
use futures::Stream;
use serde_json::{json, Map, Value};
use std::convert::Infallible;
use std::time::Duration;

/// Messages of a conversation the console shows.
const TRANSCRIPT: i64 = 500;
/// How often a stream looks for changes made by other replicas.
const LOOK_EVERY: Duration = Duration::from_secs(2);

/// The lists the inbox shows an agent.
pub async fn snapshot(state: &AppState, who: &crate::store::agents::Agent) -> ApiResult<Value> {
    let integrations = Some(who.integration_ids.clone());
    let list = |states: Vec<HandoffState>, agent: Option<String>| HandoffFilter {
        states,
        integrations: integrations.clone(),
        agent_id: agent,
        limit: 200,
    };
    let db = &state.db;
    let queue = db
        .handoffs(&list(
            vec![HandoffState::Queued, HandoffState::LeavingMessage],
            None,
        ))
        .await?;
    let mine = db
        .handoffs(&list(vec![HandoffState::Agent], Some(who.id.clone())))
        .await?;
    let tickets = db.handoffs(&list(vec![HandoffState::Ticket], None)).await?;
    let agent = db.agent(&who.id).await?;
    Ok(json!({
        "agent": agent,
        "queue": queue,
        "mine": mine,
        "tickets": tickets,
        "activity": activity(state, &queue, &mine).await?,
    }))
}

/// The time of each listed conversation's latest message, so an open conversation reloads when
/// the person writes.
async fn activity(state: &AppState, queue: &[Handoff], mine: &[Handoff]) -> ApiResult<Value> {
    let mut out = Map::new();
    for h in queue.iter().chain(mine) {
        let latest = state.db.transcript(&h.conversation_id, 1).await?;
        let at = latest
            .first()
            .and_then(|m| m.get("id").cloned())
            .unwrap_or(Value::Null);
        out.insert(h.id.clone(), at);
    }
    Ok(Value::Object(out))
}

/// `GET /console/api/inbox`.
pub async fn inbox(State(state): State<AppState>, who: SignedIn) -> ApiResult<Json<Value>> {
    Ok(Json(snapshot(&state, &who.agent).await?))
}

/// `GET /console/api/handoffs/{id}`: the hand-off, its conversation's history with each
/// message's delivery, and what the bot collected.
pub async fn detail(
    State(state): State<AppState>,
    who: SignedIn,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let h = desk::visible(&state, &who.agent, &id).await?;
    Ok(Json(conversation(&state, h).await?))
}

/// A hand-off with its conversation, as the console and the API show it.
pub async fn conversation(state: &AppState, h: Handoff) -> ApiResult<Value> {
    let messages = state.db.transcript(&h.conversation_id, TRANSCRIPT).await?;
    let (meta, engine_state) = state.db.collected(&h.conversation_id).await?;
    Ok(json!({
        "handoff": h,
        "messages": messages,
        "conversationMeta": meta,
        "botState": engine_state,
    }))
}

fn text_of(body: &Map<String, Value>) -> ApiResult<String> {
    match body.get("text") {
        Some(Value::String(s)) => Ok(s.clone()),
        _ => Err(ApiError::bad_request(
            "\"text\" is required and must be a string",
        )),
    }
}

pub async fn take(
    State(state): State<AppState>,
    who: SignedIn,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    desk::take(&state, &who.agent, &id).await?;
    detail(State(state), who, Path(id)).await
}

pub async fn reply(
    State(state): State<AppState>,
    who: SignedIn,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    let text = text_of(&body)?;
    desk::reply(&state, &who.agent, &id, &text).await?;
    detail(State(state), who, Path(id)).await
}

pub async fn answer(
    State(state): State<AppState>,
    who: SignedIn,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    let text = text_of(&body)?;
    desk::answer_ticket(&state, &who.agent, &id, &text).await?;
    detail(State(state), who, Path(id)).await
}

pub async fn close(
    State(state): State<AppState>,
    who: SignedIn,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    desk::close(&state, &who.agent, &id).await?;
    detail(State(state), who, Path(id)).await
}

/// `POST /console/api/status {status: "online" | "away"}`.
pub async fn status(
    State(state): State<AppState>,
    who: SignedIn,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    let status = match body.get("status").and_then(Value::as_str) {
        Some(s @ ("online" | "away")) => s.to_owned(),
        _ => {
            return Err(ApiError::bad_request(
                "\"status\" must be \"online\" or \"away\"",
            ))
        }
    };
    let fields = AgentFields {
        status: Some(status),
        ..Default::default()
    };
    state.db.update_agent(&who.agent.id, &fields).await?;
    crate::handoff::changed(&state);
    Ok(Json(snapshot(&state, &who.agent).await?))
}

/// `GET /console/api/events`: a `snapshot` event whenever the inbox changes.
pub async fn events(
    State(state): State<AppState>,
    who: SignedIn,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let changes = state.desk_events.subscribe();
    let start = (state, who.agent, changes, String::new());
    let stream = futures::stream::unfold(start, |(state, agent, mut changes, last)| async move {
        loop {
            let now = match snapshot(&state, &agent).await {
                Ok(v) => v.to_string(),
                // A failed look (database busy) is retried at the next change or look.
                Err(_) => last.clone(),
            };
            if now != last {
                let event = Event::default().event("snapshot").data(now.clone());
                return Some((Ok(event), (state, agent, changes, now)));
            }
            tokio::select! {
                changed = changes.changed() => if changed.is_err() { return None },
                _ = tokio::time::sleep(LOOK_EVERY) => {}
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}
