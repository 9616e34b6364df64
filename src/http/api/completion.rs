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
use super::lists::{self, Format};
use super::{Op, Routes};
use crate::app::AppState;
use crate::bot::{
    self, load, ChannelKind, ContactInfo, EngineContext, HistoryMessage, Reply, Turn,
};
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
const MESSAGE_TYPES: &[&str] = &[
    "user",
    "bot",
    "reasoning",
    "context",
    "instruction",
    "backstory",
    "activity",
    "checkpoint",
];

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
            converse(s, id, h, b, Shape::Receive).await
        })
        .add(complete, |State(s): State<AppState>, Path(id): Path<String>, h: HeaderMap, JsonBody(b): JsonBody| async move {
            converse(s, id, h, b, Shape::Complete).await
        })
        .add(stateless, |State(s): State<AppState>, h: HeaderMap, JsonBody(b): JsonBody| stateless_handler(s, h, b))
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
            &super::resources::CONVERSATION,
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
    let mut bot = match body
        .get("botId")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    {
        Some(key) => load::load_bot(&state.db, key)
            .await?
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
    Ok(load::from_wire(raw))
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

/// What kind of answer a call gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Receive,
    Complete,
    Stateless,
}

/// A turn ready to run.
struct Prepared {
    ctx: EngineContext,
    engine: Box<dyn bot::BotEngine>,
    turn: Turn,
    shape: Shape,
    /// Where the answer is stored (`None`: stateless).
    conversation: Option<String>,
}

fn prepare(
    state: &AppState,
    turn: Turn,
    shape: Shape,
    conversation: Option<String>,
) -> ApiResult<Prepared> {
    let ctx = EngineContext::new(state);
    let engine = bot::select(&ctx, &turn.bot).map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok(Prepared {
        ctx,
        engine,
        turn,
        shape,
        conversation,
    })
}

/// What a turn produced, as the completion API reports it.
struct Outcome {
    reply: Reply,
    text: String,
    /// ChatBotKit's `end.reason`: `stop`, or `error` when the fallback text was used.
    reason: &'static str,
    model: String,
}

impl Outcome {
    fn tokens(&self) -> u64 {
        self.reply
            .usage
            .map_or(0, |u| u.prompt_tokens + u.completion_tokens)
    }
}

/// Runs the engine; an error becomes the fallback text, as on the phone channels.
async fn run(p: &Prepared, tokens: Option<&bot::TokenSink>) -> Outcome {
    let result = match tokens {
        Some(tokens) => p.engine.respond_streaming(&p.turn, tokens).await,
        None => p.engine.try_respond(&p.turn).await,
    };
    let (reply, reason) = match result {
        Ok(reply) => (reply, "stop"),
        Err(err) => (
            bot::fallback::fallback_reply(&p.ctx, &p.turn, "engine", &err),
            "error",
        ),
    };
    let model = if reply.usage.is_some() {
        bot::llm::parse_model(&p.turn.bot.model, &p.ctx.config.llm_model).name
    } else {
        p.turn.bot.model.clone()
    };
    let text = reply.messages.join("\n\n");
    Outcome {
        reply,
        text,
        reason,
        model,
    }
}

/// Runs the turn, stores its answer (stateful calls) and builds the JSON answer.
async fn execute(p: Prepared, tokens: Option<bot::TokenSink>) -> ApiResult<(Value, Outcome)> {
    let outcome = run(&p, tokens.as_ref()).await;
    // Dropping the sink ends the token stream before the closing events.
    drop(tokens);
    let mut answer = json!({"text": outcome.text, "usage": {"token": outcome.tokens()}});
    if let Some(conversation) = &p.conversation {
        let id = record_reply(&p.ctx.db, conversation, &outcome).await?;
        answer["id"] = json!(id);
    }
    if p.shape != Shape::Receive {
        answer["end"] = json!({"reason": outcome.reason});
    }
    if !outcome.reply.actions.is_empty() {
        answer["actions"] = json!(outcome.reply.actions);
    }
    Ok((answer, outcome))
}

async fn respond(format: Format, p: Prepared) -> ApiResult<Response> {
    if format == Format::Json {
        let (answer, _) = execute(p, None).await?;
        return Ok(Json(answer).into_response());
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<String>(64);
    tokio::spawn(async move {
        // The turn runs to the end even if the client goes away (sends then fail and are
        // ignored), so a stored conversation always gets its answer.
        let (token_tx, mut token_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        let turn = execute(p, Some(token_tx));
        tokio::pin!(turn);
        let mut streamed = false;
        let result = loop {
            tokio::select! {
                Some(token) = token_rx.recv() => {
                    streamed = true;
                    let _ = tx.send(event(format, "token", json!({"token": token}))).await;
                }
                result = &mut turn => break result,
            }
        };
        while let Ok(token) = token_rx.try_recv() {
            streamed = true;
            let _ = tx
                .send(event(format, "token", json!({"token": token})))
                .await;
        }
        let lines = match result {
            Ok((answer, outcome)) => closing_events(format, &answer, &outcome, streamed),
            Err(err) => {
                tracing::error!(error = %err.message, "completion failed");
                vec![event(format, "error", err.body())]
            }
        };
        for line in lines {
            let _ = tx.send(line).await;
        }
    });
    let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
    let stream = futures::StreamExt::map(stream, |line| {
        Ok::<_, std::convert::Infallible>(Bytes::from(line))
    });
    Ok(stream_body(format, Body::from_stream(stream)))
}

/// The events after the turn: its text as word-sized tokens when the engine streamed none,
/// then the bot message, usage and the result.
fn closing_events(
    format: Format,
    answer: &Value,
    outcome: &Outcome,
    streamed: bool,
) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    if !streamed {
        lines.extend(
            outcome
                .text
                .split_inclusive(char::is_whitespace)
                .map(|token| event(format, "token", json!({"token": token}))),
        );
    }
    lines.push(event(
        format,
        "message",
        json!({"type": "bot", "text": outcome.text}),
    ));
    let usage = outcome.reply.usage.unwrap_or_default();
    lines.push(event(
        format,
        "usage",
        json!({"model": outcome.model, "inputTokensUsed": usage.prompt_tokens, "outputTokensUsed": usage.completion_tokens}),
    ));
    lines.push(event(format, "result", answer.clone()));
    lines
}

/// One event line: `{"type", "data"}\n` (JSONL) or `event:`/`data:` (SSE). Never blank.
fn event(format: Format, kind: &str, data: Value) -> String {
    match format {
        Format::EventStream => format!("event: {kind}\ndata: {data}\n\n"),
        _ => format!("{}\n", json!({"type": kind, "data": data})),
    }
}

fn stream_response(format: Format, lines: Vec<String>) -> Response {
    stream_body(format, Body::from(lines.concat()))
}

fn stream_body(format: Format, body: Body) -> Response {
    let content_type = if format == Format::EventStream {
        "text/event-stream"
    } else {
        "application/jsonl"
    };
    let mut response = Response::new(body);
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// The conversation's id (the key may be an id or alias), 404 when unknown.
async fn conversation_id(state: &AppState, key: &str) -> ApiResult<String> {
    state
        .db
        .resolve_id(&super::resources::CONVERSATION, None, key)
        .await?
        .ok_or_else(ApiError::not_found)
}

/// The conversation's bot, or its inline configuration when it has none.
async fn conversation_bot(state: &AppState, conversation: &str) -> ApiResult<bot::BotConfig> {
    let row = state
        .db
        .fetch_resource(&super::resources::CONVERSATION, None, conversation)
        .await?
        .ok_or_else(ApiError::not_found)?;
    if let Some(bot_id) = row
        .get("botId")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    {
        return load::load_bot(&state.db, bot_id)
            .await?
            .ok_or_else(|| ApiError::bad_request("Bot not found"));
    }
    let mut raw = Map::new();
    for key in ["model", "backstory", "datasetId"] {
        if let Some(value) = row.get(key).filter(|v| v.is_string()) {
            raw.insert(key.into(), value.clone());
        }
    }
    Ok(load::from_wire(raw))
}

async fn conversation_contact(state: &AppState, conversation: &str) -> ApiResult<ContactInfo> {
    let row = Sql::new("SELECT c.id, c.name, c.phone FROM conversations v JOIN contacts c ON c.id = v.contact_id WHERE v.id = $1")
        .arg(conversation);
    let Some(row) = state.db.fetch_optional(&row).await? else {
        return Ok(ContactInfo::default());
    };
    Ok(ContactInfo {
        id: row.try_get::<Option<String>, _>(0)?,
        name: row
            .try_get::<Option<String>, _>(1)?
            .filter(|s| !s.is_empty()),
        address: row.try_get::<Option<String>, _>(2)?.unwrap_or_default(),
    })
}

/// The conversation's latest messages, oldest first.
async fn load_history(state: &AppState, conversation: &str) -> ApiResult<Vec<HistoryMessage>> {
    let sql = Sql::new("SELECT type, text FROM messages WHERE conversation_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2")
        .arg(conversation)
        .arg(HISTORY_LIMIT);
    let mut out = Vec::new();
    for row in state.db.fetch_all(&sql).await? {
        out.push(HistoryMessage {
            kind: row.try_get(0)?,
            text: row.try_get(1)?,
        });
    }
    out.reverse();
    Ok(out)
}

async fn insert_message(
    state: &AppState,
    conversation: &str,
    kind: &str,
    text: &str,
    tokens: Option<i64>,
) -> ApiResult<String> {
    let id = ids::new_id();
    let now = now_ms();
    let sql = Sql::new(
        "INSERT INTO messages (id, conversation_id, type, text, tokens, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6)",
    )
    .arg(id.as_str())
    .arg(conversation)
    .arg(kind)
    .arg(text)
    .arg(tokens)
    .arg(now);
    state.db.exec(&sql).await?;
    Ok(id)
}

/// Stores the bot's answer (with its token count) and the engine's new state together.
async fn record_reply(
    db: &crate::store::Db,
    conversation: &str,
    outcome: &Outcome,
) -> ApiResult<String> {
    let id = ids::new_id();
    let now = now_ms();
    let tokens = outcome.reply.usage.map(|_| outcome.tokens() as i64);
    let mut tx = db.pool.begin().await?;
    Sql::new("INSERT INTO messages (id, conversation_id, type, text, tokens, created_at, updated_at) VALUES ($1, $2, 'bot', $3, $4, $5, $5)")
        .arg(id.as_str())
        .arg(conversation)
        .arg(outcome.text.as_str())
        .arg(tokens)
        .arg(now)
        .query()
        .execute(&mut *tx)
        .await?;
    let engine_state = (!outcome.reply.state.is_null()).then(|| outcome.reply.state.to_string());
    Sql::new("UPDATE conversations SET engine_state = $1, updated_at = $2 WHERE id = $3")
        .arg(engine_state)
        .arg(now)
        .arg(conversation)
        .query()
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(id)
}
