//! Running one completion turn: the engine (streaming when the caller streams), storing the
//! answer for stateful calls, and writing the JSON answer or the event stream.
use super::store::record_reply;
use crate::app::AppState;
use crate::bot::{self, EngineContext, Reply, Turn};
use crate::http::api::lists::Format;
use crate::http::error::{ApiError, ApiResult};
use axum::body::{Body, Bytes};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

/// What kind of answer a call gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Shape {
    Receive,
    Complete,
    Stateless,
}

/// A turn ready to run.
pub(super) struct Prepared {
    /// Where a stateful call's answer is stored (the engine's context does not expose it).
    db: crate::store::Db,
    ctx: EngineContext,
    engine: Box<dyn bot::BotEngine>,
    turn: Turn,
    shape: Shape,
    /// Where the answer is stored (`None`: stateless).
    conversation: Option<String>,
}

pub(super) fn prepare(
    state: &AppState,
    turn: Turn,
    shape: Shape,
    conversation: Option<String>,
) -> ApiResult<Prepared> {
    let ctx = state.engine_context();
    let engine = bot::select(&ctx, &turn.bot).map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok(Prepared {
        db: state.db.clone(),
        ctx,
        engine,
        turn,
        shape,
        conversation,
    })
}

/// What a turn produced, as the completion API reports it.
pub(super) struct Outcome {
    pub(super) reply: Reply,
    pub(super) text: String,
    /// ChatBotKit's `end.reason`: `stop`, or `error` when the fallback text was used.
    reason: &'static str,
    model: String,
}

impl Outcome {
    pub(super) fn tokens(&self) -> u64 {
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
            bot::fallback::fallback_reply(
                &p.ctx,
                &p.turn,
                bot::engine_name(&p.turn.bot.model),
                &err,
            ),
            "error",
        ),
    };
    let model = if reply.usage.is_some() {
        bot::llm::parse_model(&p.turn.bot.model, &p.ctx.config.llm_model).name
    } else {
        p.turn.bot.model.clone()
    };
    // No phone carries media here: a message's media URLs follow its text as lines.
    let text = reply
        .messages
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let mut lines: Vec<&str> = vec![m.as_str()];
            lines.extend(reply.media_of(i).iter().map(String::as_str));
            lines.retain(|l| !l.trim().is_empty());
            lines.join("\n")
        })
        .filter(|m| !m.is_empty())
        .collect::<Vec<_>>()
        .join("\n\n");
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
        let id = record_reply(&p.db, conversation, &outcome).await?;
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

pub(super) async fn respond(format: Format, p: Prepared) -> ApiResult<Response> {
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
pub(super) fn event(format: Format, kind: &str, data: Value) -> String {
    match format {
        Format::EventStream => format!("event: {kind}\ndata: {data}\n\n"),
        _ => format!("{}\n", json!({"type": kind, "data": data})),
    }
}

pub(super) fn stream_response(format: Format, lines: Vec<String>) -> Response {
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
