//! Local stand-ins for what bot engines call: an OpenAI-compatible chat-completions server and
//! a webhook bot (Chatwire or Rasa format). Both run on 127.0.0.1:0 inside the test, record
//! every request, and answer from a script (then a default), so tests can check the prompts
//! sent and drive the failure paths (5xx, slow, garbage, empty).
#![allow(dead_code)]
use crate::common::{spawn_with, Backend, TestApp};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use chatwire::emulator::{self, EmulatorConfig, EmulatorHandle};
use futures::StreamExt;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How a stand-in answers one request.
#[derive(Debug, Clone)]
pub enum Answer {
    /// 200 with this JSON body.
    Json(Value),
    /// This status with a JSON error body.
    Status(u16),
    /// 200 with a body that is not JSON.
    Garbage,
    /// Waits this long, then answers the default.
    Slow(Duration),
    /// A streamed completion of these pieces, one every `Duration` (LLM stand-in only).
    Drip(Vec<&'static str>, Duration),
}

/// One recorded request.
#[derive(Debug, Clone)]
pub struct Seen {
    pub headers: HeaderMap,
    pub raw: Bytes,
    pub body: Value,
}

#[derive(Clone, Default)]
struct Shared {
    seen: Arc<Mutex<Vec<Seen>>>,
    script: Arc<Mutex<VecDeque<Answer>>>,
}

/// A running stand-in.
pub struct StandIn {
    /// Base URL: `http://127.0.0.1:port/v1` (LLM) or the full hook URL (webhook bots).
    pub url: String,
    shared: Shared,
}

impl StandIn {
    /// Queues answers used before the default.
    pub fn script(&self, answers: impl IntoIterator<Item = Answer>) {
        self.shared.script.lock().expect("lock").extend(answers);
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.shared.seen.lock().expect("lock").clone()
    }

    pub fn last(&self) -> Seen {
        self.seen()
            .last()
            .cloned()
            .expect("the stand-in was called")
    }
}

async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    format!("http://{addr}")
}

async fn answer(
    shared: &Shared,
    headers: HeaderMap,
    raw: Bytes,
    default: impl Fn(&Value) -> Value,
) -> Response {
    let body: Value = serde_json::from_slice(&raw).unwrap_or(Value::Null);
    shared.seen.lock().expect("lock").push(Seen {
        headers,
        raw,
        body: body.clone(),
    });
    let next = shared.script.lock().expect("lock").pop_front();
    // A client that asked for a stream gets chat completions as server-sent chunks.
    let reply = |v: Value| {
        if body["stream"] == true && v.get("choices").is_some() {
            sse(&v)
        } else {
            axum::Json(v).into_response()
        }
    };
    match next {
        Some(Answer::Json(v)) => reply(v),
        Some(Answer::Status(code)) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            (
                status,
                axum::Json(json!({"error": {"message": "scripted failure"}})),
            )
                .into_response()
        }
        Some(Answer::Garbage) => {
            (StatusCode::OK, "<html>definitely not json</html>").into_response()
        }
        Some(Answer::Slow(wait)) => {
            tokio::time::sleep(wait).await;
            reply(default(&body))
        }
        Some(Answer::Drip(pieces, every)) => {
            let chunks = pieces
                .into_iter()
                .map(|p| json!({"choices": [{"index": 0, "delta": {"content": p}}]}));
            let stream = futures::stream::iter(chunks.map(|c| format!("data: {c}\n\n")).chain([
                format!(
                    "data: {}\n\n",
                    json!({"choices": [], "usage": {"prompt_tokens": 11, "completion_tokens": 5}})
                ),
                "data: [DONE]\n\n".to_owned(),
            ]))
            .then(move |line| async move {
                tokio::time::sleep(every).await;
                Ok::<_, std::convert::Infallible>(line)
            });
            event_stream(axum::body::Body::from_stream(stream))
        }
        None => reply(default(&body)),
    }
}

/// A whole chat completion re-sent as a stream: word pieces, tool calls, usage, `[DONE]`.
fn sse(completion: &Value) -> Response {
    let message = &completion["choices"][0]["message"];
    let mut out = String::new();
    let mut push = |chunk: Value| out.push_str(&format!("data: {chunk}\n\n"));
    push(json!({"choices": [{"index": 0, "delta": {"role": "assistant"}}]}));
    for piece in message["content"]
        .as_str()
        .unwrap_or_default()
        .split_inclusive(' ')
    {
        push(json!({"choices": [{"index": 0, "delta": {"content": piece}}]}));
    }
    for (i, call) in message["tool_calls"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        push(
            json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": i, "id": call["id"], "type": "function",
              "function": {"name": call["function"]["name"], "arguments": call["function"]["arguments"]}}]}}]}),
        );
    }
    if let Some(usage) = completion.get("usage") {
        push(json!({"choices": [], "usage": usage}));
    }
    out.push_str("data: [DONE]\n\n");
    event_stream(axum::body::Body::from(out))
}

fn event_stream(body: axum::body::Body) -> Response {
    ([("content-type", "text/event-stream")], body).into_response()
}

/// A chat completion saying `text`, with usage.
pub fn completion(text: &str) -> Value {
    json!({"id": "chatcmpl-1", "object": "chat.completion",
           "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
           "usage": {"prompt_tokens": 42, "completion_tokens": 7, "total_tokens": 49}})
}

/// A chat completion that calls `tool` with `args` and says nothing.
pub fn tool_call(tool: &str, args: Value) -> Value {
    json!({"choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": null,
           "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": tool, "arguments": args.to_string()}}]}}],
           "usage": {"prompt_tokens": 30, "completion_tokens": 5}})
}

/// The OpenAI-compatible stand-in. By default it answers `Echo: <last user message>`.
pub async fn llm() -> StandIn {
    let shared = Shared::default();
    let router = Router::new()
        .route(
            "/v1/chat/completions",
            post(
                |State(s): State<Shared>, headers: HeaderMap, raw: Bytes| async move {
                    answer(&s, headers, raw, |body| {
                        let last = body["messages"]
                            .as_array()
                            .and_then(|m| m.last())
                            .cloned()
                            .unwrap_or_default();
                        completion(&format!(
                            "Echo: {}",
                            last["content"].as_str().unwrap_or_default()
                        ))
                    })
                    .await
                },
            ),
        )
        .with_state(shared.clone());
    StandIn {
        url: format!("{}/v1", serve(router).await),
        shared,
    }
}

/// A Chatwire-format webhook bot. By default it answers `Hook got: <text>` and counts turns in
/// its state.
pub async fn chatwire_bot() -> StandIn {
    let shared = Shared::default();
    let router = Router::new()
        .route(
            "/bot",
            post(|State(s): State<Shared>, headers: HeaderMap, raw: Bytes| async move {
                answer(&s, headers, raw, |body| {
                    let n = body["state"]["turns"].as_i64().unwrap_or(0) + 1;
                    json!({"messages": [format!("Hook got: {}", body["message"]["text"].as_str().unwrap_or_default())],
                           "state": {"turns": n}})
                })
                .await
            }),
        )
        .with_state(shared.clone());
    StandIn {
        url: format!("{}/bot", serve(router).await),
        shared,
    }
}

/// A Rasa REST channel. By default it answers `Rasa heard: <message>`.
pub async fn rasa_bot() -> StandIn {
    let shared = Shared::default();
    let router = Router::new()
        .route(
            "/webhooks/rest/webhook",
            post(|State(s): State<Shared>, headers: HeaderMap, raw: Bytes| async move {
                answer(&s, headers, raw, |body| {
                    json!([{"recipient_id": body["sender"], "text": format!("Rasa heard: {}", body["message"].as_str().unwrap_or_default())}])
                })
                .await
            }),
        )
        .with_state(shared.clone());
    StandIn {
        url: format!("{}/webhooks/rest/webhook", serve(router).await),
        shared,
    }
}

/// Chatwire pointed at an LLM stand-in, with short timeouts so failure tests stay fast.
pub async fn app_with_llm(backend: Backend, llm: &StandIn) -> TestApp {
    let url = llm.url.clone();
    spawn_with(backend, move |c| {
        c.llm_url = Some(url);
        c.llm_api_key = Some("sk-test-key".into());
        c.llm_timeout_ms = 1_500;
    })
    .await
}

/// Chatwire, the Twilio emulator, and an integration on `NUMBER` answered by `bot`.
pub struct PhoneRig {
    pub app: TestApp,
    pub twilio: EmulatorHandle,
    pub bot: String,
}

pub const NUMBER: &str = "+15005550006";

impl PhoneRig {
    pub async fn start(backend: Backend, llm: Option<&StandIn>, bot: Value) -> Self {
        let twilio = emulator::spawn(EmulatorConfig::default())
            .await
            .expect("emulator");
        let twilio_url = twilio.url().to_owned();
        let llm_url = llm.map(|l| l.url.clone());
        let app = spawn_with(backend, move |c| {
            c.twilio_api_url = twilio_url;
            c.llm_url = llm_url;
            c.llm_timeout_ms = 1_500;
        })
        .await;
        let bot = app.create("/bot", bot).await;
        let account = twilio.account();
        let integration = app
            .create(
                "/integration/twilio",
                json!({"name": "SMS", "botId": bot, "accountSid": account.sid, "authToken": account.auth_token, "phoneNumber": NUMBER}),
            )
            .await;
        let (status, out) = app
            .post(
                &format!("/integration/twilio/{integration}/setup"),
                json!({}),
            )
            .await;
        assert_eq!(status, 200, "setup: {out}");
        Self { app, twilio, bot }
    }

    /// The person at `from` texts `body`; returns every reply sent so far once `n` exist.
    pub async fn text_and_wait(&self, from: &str, body: &str, n: usize) -> Vec<String> {
        let out = self
            .twilio
            .send_text(from, NUMBER, body)
            .await
            .expect("inject");
        assert_eq!(out.status, Some(200));
        let sent = self
            .twilio
            .wait_for_messages(n, Duration::from_secs(15))
            .await
            .expect("replies arrive");
        sent.into_iter().map(|m| m.body).collect()
    }

    pub async fn stop(self) {
        self.app.stop().await;
        self.twilio.shutdown().await;
    }
}
