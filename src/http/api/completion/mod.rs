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
//! SDK parses every line). LLM bots stream: `token` events carry the model's text as it is
//! written. Other engines answer whole turns; their text follows as word-sized tokens once
//! they finish. The tokens are the model's words as sent; the `message` and `result` carry the
//! final text (the fallback text if the model failed half-way).
//!
//! Accepted but not acted on, for SDK compatibility: `entities`, `functions`, `limits`,
//! `attachments`, `contactId` (stateless), and `extensions` other than `extensions.backstory`.
mod run;
mod store;

use super::lists::{self, Format};
use super::{Op, Routes};
use crate::app::AppState;
use crate::bot::{self, ChannelKind, ContactInfo, HistoryMessage, Turn};
use crate::domain::{ids, now_ms};
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::JsonBody;
use crate::store::schema::BOT;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use run::{event, prepare, respond, stream_response, Shape};
use serde_json::{json, Map, Value};
use store::{
    conversation_bot, conversation_contact, conversation_id, insert_message, load_history,
};

/// Most earlier messages handed to an engine (the LLM prompt trims further by tokens).
const HISTORY_LIMIT: i64 = 200;
/// Most messages in a stateless completion.
const MAX_MESSAGES: usize = 1000;
/// Longest message text accepted, in bytes.
const MAX_TEXT: usize = 512 * 1024;
use crate::store::schema::MESSAGE_TYPES;

pub fn register(r: Routes) -> Routes {
    let usage = json!({"type": "object", "properties": {"token": {"type": "number"}}});
    let end = json!({"type": "object", "properties": {"reason": {"type": "string", "enum": ["length", "stop", "activity", "abort", "error", "iteration"]}}});
    let actions = json!({"type": "array", "description": "Actions the bot took: {\"type\": \"handoff\", \"reason\"} or {\"type\": \"end_conversation\"} (Chatwire)", "items": {"type": "object"}});
    let extras = json!({
        "entities": {"type": "array", "nullable": true},
        "functions": {"type": "array", "nullable": true},
        "extensions": {"type": "object", "nullable": true, "description": "`backstory` is appended to the bot's backstory; other extensions are accepted and ignored"},
        "limits": {"type": "object", "nullable": true},
    });
    let with = |mut base: Value, keys: &[&str]| {
        for key in keys {
            base["properties"][*key] = extras[*key].clone();
        }
        base
    };
    let text = json!({"type": "string"});
    let opt_text = json!({"type": "string", "nullable": true});
    let send = Op::post("conversation/{conversationId}/send", "sendConversationMessage", "Send a message to a conversation", "conversation")
        .request(with(json!({"type": "object", "required": ["text"], "properties": {"text": text}}), &["entities", "functions", "extensions"]))
        .response(json!({"type": "object", "required": ["id", "entities"], "properties": {"id": text, "entities": {"type": "array", "items": {"type": "object"}}}}));
    let receive = Op::post("conversation/{conversationId}/receive", "receiveConversationMessage", "Receive the bot's message", "conversation")
        .request(with(json!({"type": "object", "properties": {}}), &["functions", "extensions"]))
        .response(json!({"type": "object", "required": ["id", "text", "usage"], "properties": {"id": text, "text": text, "usage": usage, "actions": actions}}))
        .jsonl(super::openapi::completion_event_schema());
    let complete = Op::post("conversation/{conversationId}/complete", "completeConversationMessage", "Send a message and receive the bot's answer", "conversation")
        .request(with(json!({"type": "object", "properties": {"text": opt_text}}), &["entities", "functions", "extensions", "limits"]))
        .response(json!({"type": "object", "required": ["id", "text", "usage", "end"], "properties": {"id": text, "text": text, "usage": usage, "end": end, "actions": actions}}))
        .jsonl(super::openapi::completion_event_schema());
    let message = json!({"type": "object", "required": ["type", "text"], "properties": {"type": {"type": "string", "enum": MESSAGE_TYPES}, "text": text, "meta": {"type": "object", "nullable": true}}});
    let stateless = Op::post("conversation/complete", "completeConversation", "Complete a conversation without storing it", "conversation")
        .request(with(
            json!({"type": "object", "required": ["messages"], "properties": {
                "messages": {"type": "array", "items": message},
                "botId": opt_text, "model": opt_text, "backstory": opt_text, "datasetId": opt_text, "skillsetId": opt_text,
                "privacy": {"type": "boolean", "nullable": true}, "moderation": {"type": "boolean", "nullable": true},
                "contactId": {}, "attachments": {"type": "array", "nullable": true}}}),
            &["functions", "extensions", "limits"],
        ))
        .response(json!({"type": "object", "required": ["text", "usage", "end"], "properties": {"text": text, "usage": usage, "end": end, "actions": actions}}))
        .jsonl(super::openapi::completion_event_schema());
    r.add(send, |State(s): State<AppState>, Path(id): Path<String>, h: HeaderMap, JsonBody(b): JsonBody| send_handler(s, id, h, b))
        .add(receive, |State(s): State<AppState>, Path(id): Path<String>, h: HeaderMap, JsonBody(b): JsonBody| async move {
            converse(s, id, h, b, Shape::Receive).await
        })
        .add(complete, |State(s): State<AppState>, Path(id): Path<String>, h: HeaderMap, JsonBody(b): JsonBody| async move {
            converse(s, id, h, b, Shape::Complete).await
        })
        .add(stateless, |State(s): State<AppState>, h: HeaderMap, JsonBody(b): JsonBody| stateless_handler(s, h, b))
}

/// The JSON type of optional fields, checked up front (some are accepted and not acted on, some
/// read only in some cases), so that what the OpenAPI document refuses is refused. Null stands
/// for absent.
const FIELD_SHAPES: &[(&str, &str)] = &[
    ("botId", "string"),
    ("model", "string"),
    ("backstory", "string"),
    ("datasetId", "string"),
    ("entities", "array"),
    ("functions", "array"),
    ("attachments", "array"),
    ("limits", "object"),
    ("extensions", "object"),
    ("privacy", "boolean"),
    ("moderation", "boolean"),
    ("skillsetId", "string"),
];

/// Refuses keys outside `allowed`, as ChatBotKit's schemas do, and ignored fields of the wrong
/// type.
fn only(body: &Map<String, Value>, allowed: &[&str]) -> ApiResult<()> {
    if let Some(key) = body.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(ApiError::bad_request(format!("\"{key}\" is not allowed")));
    }
    for (key, kind) in FIELD_SHAPES {
        let fits = match body.get(*key) {
            None | Some(Value::Null) => true,
            Some(Value::Array(_)) => *kind == "array",
            Some(Value::Object(_)) => *kind == "object",
            Some(Value::Bool(_)) => *kind == "boolean",
            Some(Value::String(_)) => *kind == "string",
            Some(_) => false,
        };
        if !fits {
            return Err(ApiError::bad_request(format!(
                "\"{key}\" must be of type {kind}"
            )));
        }
    }
    Ok(())
}

fn text_field(body: &Map<String, Value>, key: &str) -> ApiResult<Option<String>> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.len() > MAX_TEXT => Err(ApiError::bad_request(format!(
            "\"{key}\" must be at most {MAX_TEXT} bytes"
        ))),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ApiError::bad_request(format!("\"{key}\" must be a string"))),
    }
}

/// `extensions.backstory`, checked.
fn extra_backstory(body: &Map<String, Value>) -> ApiResult<Option<String>> {
    match body.get("extensions") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(ext)) => text_field(ext, "backstory")
            .map_err(|e| ApiError::bad_request(format!("extensions: {}", e.message))),
        Some(_) => Err(ApiError::bad_request(
            "\"extensions\" must be of type object",
        )),
    }
}

async fn send_handler(
    state: AppState,
    key: String,
    headers: HeaderMap,
    body: Map<String, Value>,
) -> ApiResult<Response> {
    let format = lists::format(&headers)?;
    only(&body, &["text", "entities", "functions", "extensions"])?;
    let text =
        text_field(&body, "text")?.ok_or_else(|| ApiError::bad_request("\"text\" is required"))?;
    let conversation = conversation_id(&state, &key).await?;
    let id = insert_message(&state, &conversation, "user", &text, None).await?;
    let result = json!({"id": id, "entities": []});
    Ok(match format {
        Format::Json => Json(result).into_response(),
        _ => stream_response(format, vec![event(format, "result", result)]),
    })
}

async fn converse(
    state: AppState,
    key: String,
    headers: HeaderMap,
    body: Map<String, Value>,
    shape: Shape,
) -> ApiResult<Response> {
    let format = lists::format(&headers)?;
    let text = match shape {
        Shape::Receive => {
            only(&body, &["functions", "extensions"])?;
            None
        }
        _ => {
            only(
                &body,
                &["text", "entities", "functions", "extensions", "limits"],
            )?;
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
    let (history, text) = split_last_user(load_history(&state, &conversation).await?);
    let engine_state = state
        .db
        .column_text(
            &crate::store::schema::CONVERSATION,
            &conversation,
            "engine_state",
        )
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
        message_sid: None,
        account_sid: None,
    };
    respond(format, prepare(&state, turn, shape, Some(conversation))?).await
}

async fn stateless_handler(
    state: AppState,
    headers: HeaderMap,
    body: Map<String, Value>,
) -> ApiResult<Response> {
    let format = lists::format(&headers)?;
    only(
        &body,
        &[
            "messages",
            "botId",
            "model",
            "backstory",
            "datasetId",
            "skillsetId",
            "privacy",
            "moderation",
            "contactId",
            "attachments",
            "functions",
            "extensions",
            "limits",
        ],
    )?;
    let messages = stateless_messages(&body)?;
    let backstory = extra_backstory(&body)?;
    let mut bot = match text_field(&body, "botId")?.filter(|s| !s.is_empty()) {
        Some(key) => state
            .db
            .fetch_by_key(&BOT, &key)
            .await?
            .map(bot::BotConfig::from_row)
            .ok_or_else(|| ApiError::bad_request("Bot not found"))?,
        None => inline_bot(&state, &body).await?,
    };
    append_backstory(&mut bot, backstory);
    let (history, text) = split_last_user(messages);
    let turn = Turn {
        // No conversation is stored; a fresh id keeps log lines of one call together.
        conversation_id: ids::new_id(),
        bot,
        history,
        text,
        media: Vec::new(),
        contact: ContactInfo::default(),
        channel: ChannelKind::Api,
        channel_address: None,
        state: Value::Null,
        now_ms: now_ms(),
        message_sid: None,
        account_sid: None,
    };
    respond(format, prepare(&state, turn, Shape::Stateless, None)?).await
}

/// `messages` of a stateless call: `[{type, text, meta?}]`.
fn stateless_messages(body: &Map<String, Value>) -> ApiResult<Vec<HistoryMessage>> {
    let items = match body.get("messages") {
        Some(Value::Array(items)) if items.len() <= MAX_MESSAGES => items,
        Some(Value::Array(_)) => {
            return Err(ApiError::bad_request(format!(
                "\"messages\" must contain at most {MAX_MESSAGES} items"
            )))
        }
        None | Some(Value::Null) => return Err(ApiError::bad_request("\"messages\" is required")),
        Some(_) => return Err(ApiError::bad_request("\"messages\" must be an array")),
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let Value::Object(map) = item else {
            return Err(ApiError::bad_request(format!(
                "\"messages[{i}]\" must be of type object"
            )));
        };
        if let Some(key) = map
            .keys()
            .find(|k| !matches!(k.as_str(), "type" | "text" | "meta"))
        {
            return Err(ApiError::bad_request(format!(
                "\"messages[{i}].{key}\" is not allowed"
            )));
        }
        let kind = map
            .get("type")
            .and_then(Value::as_str)
            .filter(|t| MESSAGE_TYPES.contains(t));
        let kind = kind.ok_or_else(|| {
            ApiError::bad_request(format!(
                "\"messages[{i}].type\" must be one of [{}]",
                MESSAGE_TYPES.join(", ")
            ))
        })?;
        if !matches!(map.get("meta"), None | Some(Value::Null | Value::Object(_))) {
            return Err(ApiError::bad_request(format!(
                "\"messages[{i}].meta\" must be of type object"
            )));
        }
        let text = text_field(map, "text")
            .map_err(|e| ApiError::bad_request(format!("messages[{i}]: {}", e.message)))?
            .ok_or_else(|| ApiError::bad_request(format!("\"messages[{i}].text\" is required")))?;
        out.push(HistoryMessage {
            kind: kind.to_owned(),
            text,
        });
    }
    Ok(out)
}

/// A bot made of the call's own `model`, `backstory` and `datasetId`.
async fn inline_bot(state: &AppState, body: &Map<String, Value>) -> ApiResult<bot::BotConfig> {
    let mut raw = Map::new();
    for key in ["model", "backstory"] {
        if let Some(value) = text_field(body, key)? {
            raw.insert(key.into(), Value::String(value));
        }
    }
    if let Some(key) = text_field(body, "datasetId")?.filter(|s| !s.is_empty()) {
        let id = crate::store::refs::resolve(&state.db, "datasets", &key)
            .await?
            .ok_or_else(|| ApiError::bad_request("Dataset not found"))?;
        raw.insert("datasetId".into(), Value::String(id));
    }
    Ok(bot::BotConfig::from_row(raw))
}

fn append_backstory(bot: &mut bot::BotConfig, extra: Option<String>) {
    if let Some(extra) = extra.filter(|e| !e.trim().is_empty()) {
        bot.backstory = if bot.backstory.trim().is_empty() {
            extra
        } else {
            format!("{}\n\n{extra}", bot.backstory)
        };
    }
}

/// History and the text to answer: the last message when a user wrote it.
fn split_last_user(mut messages: Vec<HistoryMessage>) -> (Vec<HistoryMessage>, String) {
    match messages.last() {
        Some(last) if last.kind == "user" => {
            let text = messages.pop().map(|m| m.text).unwrap_or_default();
            (messages, text)
        }
        _ => (messages, String::new()),
    }
}
