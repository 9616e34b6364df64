//! ChatBotKit's completion API: try a bot without a phone.
//!
//! `POST /conversation/{id}/send` stores a user message; `/receive` runs the conversation's bot
//! on it and stores the answer; `/complete` does both; `POST /conversation/complete` is the
//! stateless form (`messages` plus a `botId` or an inline `model`/`backstory`/`datasetId`). All
//! four run the same engines as the phone channels (`bot::select`), on channel `api`, with the
//! same fallback text when an engine fails (`end.reason` is then `error`).
//!
//! With `Accept: application/jsonl` (or `text/event-stream`) the answer is a stream of events:
//! `token` (the reply in word-sized pieces), `message` (the bot message), `usage`, then a final
//! `result` carrying the JSON answer; a failure is an `error` event. Lines are never blank (the
//! SDK parses every line). Engines answer whole turns, so the `token` events arrive once the
//! engine has finished, not while the model is still writing.
//!
//! Accepted but not acted on, for SDK compatibility: `entities`, `functions`, `limits`,
//! `attachments`, `contactId` (stateless), and `extensions` other than `extensions.backstory`.
use super::lists::{self, Format};
use super::{Op, Routes};
use crate::app::AppState;
use crate::bot::{self, load, ChannelKind, ContactInfo, EngineContext, HistoryMessage, Reply, Turn};
use crate::domain::{ids, now_ms};
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::JsonBody;
use crate::store::Sql;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};
use sqlx::Row;

/// Most earlier messages handed to an engine (the LLM prompt trims further by tokens).
const HISTORY_LIMIT: i64 = 200;
/// Most messages in a stateless completion.
const MAX_MESSAGES: usize = 1000;
/// Longest message text accepted, in bytes.
const MAX_TEXT: usize = 512 * 1024;
const MESSAGE_TYPES: &[&str] = &["user", "bot", "reasoning", "context", "instruction", "backstory", "activity", "checkpoint"];

pub fn register(r: Routes) -> Routes {
    let usage = json!({"type": "object", "properties": {"token": {"type": "number"}}});
    let end = json!({"type": "object", "properties": {"reason": {"type": "string", "enum": ["length", "stop", "activity", "abort", "error", "iteration"]}}});
    let actions = json!({"type": "array", "description": "Actions the bot took: {\"type\": \"handoff\", \"reason\"} or {\"type\": \"end_conversation\"} (Chatwire)", "items": {"type": "object"}});
    let extras = json!({
        "entities": {"type": "array", "items": {"type": "object"}},
        "functions": {"type": "array", "items": {"type": "object"}},
        "extensions": {"type": "object", "description": "`backstory` is appended to the bot's backstory; other extensions are accepted and ignored"},
        "limits": {"type": "object"},
    });
    let with = |mut base: Value, keys: &[&str]| {
        for key in keys {
            base["properties"][*key] = extras[*key].clone();
        }
        base
    };
    let text = json!({"type": "string"});
    let send = Op::post("conversation/{conversationId}/send", "sendConversationMessage", "Send a message to a conversation", "conversation")
        .request(with(json!({"type": "object", "required": ["text"], "properties": {"text": text}}), &["entities", "functions", "extensions"]))
        .response(json!({"type": "object", "required": ["id", "entities"], "properties": {"id": text, "entities": {"type": "array", "items": {"type": "object"}}}}));
    let receive = Op::post("conversation/{conversationId}/receive", "receiveConversationMessage", "Receive the bot's message", "conversation")
        .request(with(json!({"type": "object", "properties": {}}), &["functions", "extensions"]))
        .response(json!({"type": "object", "required": ["id", "text", "usage"], "properties": {"id": text, "text": text, "usage": usage, "actions": actions}}));
    let complete = Op::post("conversation/{conversationId}/complete", "completeConversationMessage", "Send a message and receive the bot's answer", "conversation")
        .request(with(json!({"type": "object", "properties": {"text": text}}), &["entities", "functions", "extensions", "limits"]))
        .response(json!({"type": "object", "required": ["id", "text", "usage", "end"], "properties": {"id": text, "text": text, "usage": usage, "end": end, "actions": actions}}));
    let message = json!({"type": "object", "required": ["type", "text"], "properties": {"type": {"type": "string", "enum": MESSAGE_TYPES}, "text": text, "meta": {"type": "object"}}});
    let stateless = Op::post("conversation/complete", "completeConversation", "Complete a conversation without storing it", "conversation")
        .request(with(
            json!({"type": "object", "required": ["messages"], "properties": {
                "messages": {"type": "array", "items": message},
                "botId": text, "model": text, "backstory": text, "datasetId": text, "skillsetId": text,
                "privacy": {"type": "boolean"}, "moderation": {"type": "boolean"},
                "contactId": {}, "attachments": {"type": "array", "items": {"type": "object"}}}}),
            &["functions", "extensions", "limits"],
        ))
        .response(json!({"type": "object", "required": ["text", "usage", "end"], "properties": {"text": text, "usage": usage, "end": end, "actions": actions}}));
    r.add(send, |State(s): State<AppState>, Path(id): Path<String>, h: HeaderMap, JsonBody(b): JsonBody| send_handler(s, id, h, b))
        .add(receive, |State(s): State<AppState>, Path(id): Path<String>, h: HeaderMap, JsonBody(b): JsonBody| async move {
            converse(s, id, h, b, Kind::Receive).await
        })
        .add(complete, |State(s): State<AppState>, Path(id): Path<String>, h: HeaderMap, JsonBody(b): JsonBody| async move {
            converse(s, id, h, b, Kind::Complete).await
        })
        .add(stateless, |State(s): State<AppState>, h: HeaderMap, JsonBody(b): JsonBody| stateless_handler(s, h, b))
}

/// Which answer shape a stateful call gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Receive,
    Complete,
}

/// Refuses keys outside `allowed`, as ChatBotKit's schemas do.
fn only(body: &Map<String, Value>, allowed: &[&str]) -> ApiResult<()> {
    match body.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(key) => Err(ApiError::bad_request(format!("\"{key}\" is not allowed"))),
        None => Ok(()),
    }
}

fn text_field(body: &Map<String, Value>, key: &str) -> ApiResult<Option<String>> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.len() > MAX_TEXT => Err(ApiError::bad_request(format!("\"{key}\" must be at most {MAX_TEXT} bytes"))),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ApiError::bad_request(format!("\"{key}\" must be a string"))),
    }
}

/// `extensions.backstory`, checked.
fn extra_backstory(body: &Map<String, Value>) -> ApiResult<Option<String>> {
    match body.get("extensions") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(ext)) => text_field(ext, "backstory").map_err(|e| ApiError::bad_request(format!("extensions: {}", e.message))),
        Some(_) => Err(ApiError::bad_request("\"extensions\" must be of type object")),
    }
}

async fn send_handler(state: AppState, key: String, headers: HeaderMap, body: Map<String, Value>) -> ApiResult<Response> {
    let format = lists::format(&headers)?;
    only(&body, &["text", "entities", "functions", "extensions"])?;
    let text = text_field(&body, "text")?.ok_or_else(|| ApiError::bad_request("\"text\" is required"))?;
    let conversation = conversation_id(&state, &key).await?;
    let id = insert_message(&state, &conversation, "user", &text, None).await?;
    let result = json!({"id": id, "entities": []});
    Ok(match format {
        Format::Json => Json(result).into_response(),
        _ => stream_response(format, vec![event(format, "result", result)]),
    })
}

async fn converse(state: AppState, key: String, headers: HeaderMap, body: Map<String, Value>, kind: Kind) -> ApiResult<Response> {
    let format = lists::format(&headers)?;
    let text = match kind {
        Kind::Receive => {
            only(&body, &["functions", "extensions"])?;
            None
        }
        Kind::Complete => {
            only(&body, &["text", "entities", "functions", "extensions", "limits"])?;
            text_field(&body, "text")?
        }
    };
    let backstory = extra_backstory(&body)?;
    let conversation = conversation_id(&state, &key).await?;
    let mut bot = conversation_bot(&state, &conversation).await?;
    append_backstory(&mut bot, backstory);
    if let Some(text) = text.as_deref().filter(|t| !t.trim().is_empty()) {
        insert_message(&state, &conversation, "user", text, None).await?;
    }
    let mut history = load_history(&state, &conversation).await?;
    // The newest user message, if it is the last word, is what the bot answers.
    let text = match history.last() {
        Some(last) if last.kind == "user" => history.pop().map(|m| m.text).unwrap_or_default(),
        _ => String::new(),
    };
    let engine_state = state
        .db
        .column_text(&super::resources::CONVERSATION, &conversation, "engine_state")
        .await?
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or(Value::Null);
    let turn = Turn {
        conversation_id: conversation.clone(),
        contact: conversation_contact(&state, &conversation).await?,
        bot,
        history,
        text,
        media: Vec::new(),
        channel: ChannelKind::Api,
        channel_address: None,
        state: engine_state,
        now_ms: now_ms(),
    };
    let ctx = EngineContext::new(&state);
    let engine = bot::select(&ctx, &turn.bot).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let finish = move |outcome: Outcome| async move {
        let id = record_reply(&state, &turn.conversation_id, &outcome).await?;
        let mut answer = json!({"id": id, "text": outcome.text, "usage": {"token": outcome.tokens()}});
        if kind == Kind::Complete {
            answer["end"] = json!({"reason": outcome.reason});
        }
        outcome.add_actions(&mut answer);
        Ok::<_, ApiError>((answer, outcome))
    };
    match format {
        Format::Json => {
            let outcome = run(&ctx, engine.as_ref(), &turn_clone_for_run(&turn)).await;
            let (answer, _) = finish(outcome).await?;
            Ok(Json(answer).into_response())
        }
        _ => Ok(stream_turn(format, ctx, engine, turn_clone_for_run(&turn), finish)),
    }
}
