//! The LLM engine: a bot whose `model` names a model (or is empty: `CHATWIRE_LLM_MODEL`) is
//! answered by any OpenAI-compatible chat-completions server (OpenAI, vLLM, Ollama, llama.cpp
//! server) at `CHATWIRE_LLM_URL` + `/chat/completions`.
//!
//! One turn: search the bot's dataset for the new message, build the prompt (`prompt`), POST it
//! within `CHATWIRE_LLM_TIMEOUT_MS` (retries included, `upstream`), and read the first choice.
//! Calls of the `handoff_to_human` / `end_conversation` tools become [`Action`]s; when the model
//! called a tool without saying anything, one follow-up request gets the words to send. Any
//! failure (unreachable, slow, 5xx after retries, a body that is not a chat completion, an empty
//! answer) turns into the fallback text (`fallback`), so the person always gets an answer.
//! For the completion API's event streams the request asks for `stream: true` and the text is
//! passed on as the model writes it (`llm_stream`); phone turns read the answer whole.
//!
//! A model may carry ChatBotKit-style parameters after slashes: `gpt-4o/temperature=0.2` or
//! `llama3.1:8b/maxTokens=300`; segments that are not `key=value` stay part of the name
//! (`meta-llama/Llama-3.1-8B-Instruct`).
use super::fallback::fallback_reply;
use super::llm_stream as stream;
use super::prompt::{self, estimate_tokens, PromptParts};
use super::retrieval::{self, Knowledge};
use super::{
    upstream, Action, BotEngine, EngineContext, EngineError, Reply, TokenSink, Turn, Usage,
};
use async_trait::async_trait;
use secrecy::ExposeSecret;
use serde_json::{json, Value};
use std::time::Duration;
use tokio::time::Instant;

/// Sent when the model handed off without words and the follow-up failed.
const HANDOFF_TEXT: &str = "Let me connect you with a person who can help.";

pub struct LlmBot {
    ctx: EngineContext,
}

impl LlmBot {
    pub fn new(ctx: EngineContext) -> Self {
        Self { ctx }
    }
}

#[async_trait]
impl BotEngine for LlmBot {
    async fn respond(&self, turn: &Turn) -> Result<Reply, EngineError> {
        match self.try_respond(turn).await {
            Ok(reply) => Ok(reply),
            Err(err) => Ok(fallback_reply(&self.ctx, turn, "llm", &err)),
        }
    }

    async fn try_respond(&self, turn: &Turn) -> Result<Reply, EngineError> {
        if turn.text.trim().is_empty() && turn.media.is_empty() {
            // Nothing was said (a wake-up or an empty message): nothing to answer.
            return Ok(Reply {
                state: turn.state.clone(),
                ..Reply::default()
            });
        }
        self.run(turn, None).await
    }

    async fn respond_streaming(
        &self,
        turn: &Turn,
        tokens: &TokenSink,
    ) -> Result<Reply, EngineError> {
        if turn.text.trim().is_empty() && turn.media.is_empty() {
            return Ok(Reply {
                state: turn.state.clone(),
                ..Reply::default()
            });
        }
        self.run(turn, Some(tokens)).await
    }
}

/// A model name and the parameters written after it.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelSpec {
    pub name: String,
    pub temperature: Option<f64>,
    pub max_tokens: Option<u32>,
}

/// Splits `gpt-4o/temperature=0.2` into name and parameters; empty means `default`.
pub fn parse_model(model: &str, default: &str) -> ModelSpec {
    let mut spec = ModelSpec {
        name: String::new(),
        temperature: None,
        max_tokens: None,
    };
    let mut name_parts = Vec::new();
    for segment in model.trim().split('/') {
        match segment.split_once('=') {
            Some(("temperature", v)) => spec.temperature = v.parse().ok(),
            Some(("maxTokens" | "max_tokens", v)) => spec.max_tokens = v.parse().ok(),
            Some(_) => {}
            None => name_parts.push(segment),
        }
    }
    spec.name = name_parts.join("/");
    if spec.name.is_empty() {
        spec.name = default.to_owned();
    }
    spec
}

/// What one chat completion said.
#[derive(Debug, Default)]
struct Said {
    text: String,
    actions: Vec<Action>,
    /// The assistant message as sent, echoed back in a follow-up after tool calls.
    message: Value,
    tool_call_ids: Vec<String>,
    usage: Option<Usage>,
}

impl LlmBot {
    async fn run(&self, turn: &Turn, tokens: Option<&TokenSink>) -> Result<Reply, EngineError> {
        let config = &self.ctx.config;
        let base = config
            .llm_url
            .as_deref()
            .map(|u| u.trim().trim_end_matches('/'))
            .filter(|u| !u.is_empty())
            .ok_or_else(|| EngineError::Config("CHATWIRE_LLM_URL is not set".into()))?;
        let url = format!("{base}/chat/completions");
        let deadline = Instant::now() + Duration::from_millis(config.llm_timeout_ms);
        let knowledge = match &turn.bot.dataset_id {
            Some(dataset) => retrieval::retrieve(self.ctx.store.as_ref(), dataset, &turn.text).await.unwrap_or_else(|err| {
                // Answering without the records beats not answering.
                tracing::warn!(conversation_id = %turn.conversation_id, error = %err, "dataset search failed");
                Knowledge::default()
            }),
            None => Knowledge::default(),
        };
        let parts = PromptParts {
            turn,
            knowledge: &knowledge,
            history_tokens: config.llm_history_tokens,
            tools: config.llm_tools,
        };
        let mut messages = prompt::messages(&parts);
        let spec = parse_model(&turn.bot.model, &config.llm_model);
        let first = self
            .complete(&url, &spec, &messages, config.llm_tools, deadline, tokens)
            .await?;
        let mut usage = first
            .usage
            .unwrap_or_else(|| estimated_usage(&messages, &first.text));
        let mut text = first.text.clone();
        if text.is_empty() && !first.actions.is_empty() {
            // The model acted without words; ask once more, tools answered, for what to say.
            messages.push(first.message.clone());
            for id in &first.tool_call_ids {
                messages
                    .push(json!({"role": "tool", "tool_call_id": id, "content": "{\"ok\":true}"}));
            }
            match self
                .complete(&url, &spec, &messages, false, deadline, tokens)
                .await
            {
                Ok(next) => {
                    let more = next
                        .usage
                        .unwrap_or_else(|| estimated_usage(&messages, &next.text));
                    usage.prompt_tokens += more.prompt_tokens;
                    usage.completion_tokens += more.completion_tokens;
                    text = next.text;
                }
                Err(err) => tracing::debug!(error = %err, "follow-up after a tool call failed"),
            }
            if text.is_empty()
                && first
                    .actions
                    .iter()
                    .any(|a| matches!(a, Action::Handoff { .. }))
            {
                text = HANDOFF_TEXT.to_owned();
            }
        }
        if text.is_empty() && first.actions.is_empty() {
            return Err(EngineError::Upstream(
                "the LLM returned an empty answer".into(),
            ));
        }
        Ok(Reply {
            messages: if text.is_empty() {
                Vec::new()
            } else {
                vec![text]
            },
            state: turn.state.clone(),
            actions: first.actions,
            usage: Some(usage),
            wake_at_ms: None,
            media: Vec::new(),
            recipients: Vec::new(),
        })
    }

    /// One chat completion within `deadline`; streamed (`stream: true`) when `tokens` is set.
    async fn complete(
        &self,
        url: &str,
        spec: &ModelSpec,
        messages: &[Value],
        tools: bool,
        deadline: Instant,
        tokens: Option<&TokenSink>,
    ) -> Result<Said, EngineError> {
        let config = &self.ctx.config;
        let mut body = json!({"model": spec.name, "messages": messages});
        if tools {
            body["tools"] = prompt::tools();
        }
        if let Some(n) = spec
            .max_tokens
            .or((config.llm_max_tokens > 0).then_some(config.llm_max_tokens))
        {
            body["max_tokens"] = json!(n);
        }
        if let Some(t) = spec.temperature {
            body["temperature"] = json!(t);
        }
        if tokens.is_some() {
            body["stream"] = json!(true);
            body["stream_options"] = json!({"include_usage": true});
        }
        let build = || {
            let request = self.ctx.http.post(url).json(&body);
            match &config.llm_api_key {
                Some(key) if !key.expose_secret().is_empty() => {
                    request.bearer_auth(key.expose_secret())
                }
                _ => request,
            }
        };
        let Some(tokens) = tokens else {
            let answer = upstream::send("the LLM", config.llm_retries, deadline, build).await?;
            return parse_completion(&answer.body);
        };
        let response = upstream::open("the LLM", config.llm_retries, deadline, build).await?;
        let is_stream = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        let value = tokio::time::timeout_at(deadline, read_events(response, is_stream, tokens))
            .await
            .map_err(|_| EngineError::Upstream("the LLM timed out".into()))??;
        parse_value(&value)
    }
}

/// Reads a streamed answer, passing visible text on as it arrives, and returns it assembled
/// as a plain chat completion. A server that ignored `stream` answers one JSON body.
async fn read_events(
    mut response: reqwest::Response,
    is_stream: bool,
    tokens: &TokenSink,
) -> Result<Value, EngineError> {
    let failed = |e: reqwest::Error| {
        EngineError::Upstream(format!("the LLM stream failed: {}", e.without_url()))
    };
    if !is_stream {
        let body = response.bytes().await.map_err(failed)?;
        return serde_json::from_slice(&body)
            .map_err(|_| EngineError::Upstream("the LLM answer is not a chat completion".into()));
    }
    let mut assembler = stream::Assembler::default();
    while let Some(chunk) = response.chunk().await.map_err(failed)? {
        for token in assembler.feed(&chunk)? {
            // A caller that went away only stops hearing tokens; the turn still completes.
            let _ = tokens.send(token);
        }
        if assembler.done() {
            break;
        }
    }
    assembler.finish()
}

/// Reads a chat-completions body; anything else is an error (garbage means fallback).
fn parse_completion(body: &[u8]) -> Result<Said, EngineError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|_| EngineError::Upstream("the LLM answer is not a chat completion".into()))?;
    parse_value(&value)
}

/// A chat completion (read whole or assembled from a stream) as what the model said.
fn parse_value(value: &Value) -> Result<Said, EngineError> {
    let garbage = || EngineError::Upstream("the LLM answer is not a chat completion".into());
    let message = value
        .get("choices")
        .and_then(|c| c.get(0))
        .and_then(|c| c.get("message"))
        .ok_or_else(garbage)?;
    let mut said = Said {
        text: clean_text(&content_text(message.get("content"))),
        message: message.clone(),
        ..Said::default()
    };
    if let Some(calls) = message.get("tool_calls").and_then(Value::as_array) {
        for call in calls {
            let function = call.get("function");
            let name = function
                .and_then(|f| f.get("name"))
                .and_then(Value::as_str)
                .unwrap_or_default();
            let args = parse_arguments(function.and_then(|f| f.get("arguments")));
            let action = match name {
                "handoff_to_human" => Action::Handoff {
                    reason: args
                        .get("reason")
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                        .filter(|s| !s.is_empty()),
                    attributes: None,
                },
                "end_conversation" => Action::EndConversation,
                other => {
                    tracing::debug!(tool = other, "the LLM called an unknown tool");
                    continue;
                }
            };
            if !said.actions.contains(&action) {
                said.actions.push(action);
            }
            said.tool_call_ids.push(
                call.get("id")
                    .and_then(Value::as_str)
                    .unwrap_or("call_0")
                    .to_owned(),
            );
        }
    }
    said.message["role"] = json!("assistant");
    if let Some(usage) = value.get("usage").filter(|u| u.is_object()) {
        let n = |key: &str| usage.get(key).and_then(Value::as_u64).unwrap_or(0);
        said.usage = Some(Usage {
            prompt_tokens: n("prompt_tokens"),
            completion_tokens: n("completion_tokens"),
        });
    }
    Ok(said)
}

/// `content` as a string, or as an array of `{type: "text", text}` parts.
fn content_text(content: Option<&Value>) -> String {
    match content {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(""),
        _ => String::new(),
    }
}

/// Tool arguments arrive as a JSON string (OpenAI) or an object (some local servers).
fn parse_arguments(arguments: Option<&Value>) -> Value {
    match arguments {
        Some(Value::String(s)) => serde_json::from_str(s).unwrap_or(Value::Null),
        Some(other) => other.clone(),
        None => Value::Null,
    }
}

/// Drops the `<think>…</think>` reasoning some local models write before their answer.
fn clean_text(text: &str) -> String {
    let mut out = text.trim();
    while let Some(rest) = out.strip_prefix("<think>") {
        out = match rest.find("</think>") {
            Some(end) => rest[end + "</think>".len()..].trim_start(),
            // Reasoning that never finished is not an answer.
            None => "",
        };
    }
    out.trim().to_owned()
}

/// Usage when the server reports none: estimated from the characters.
fn estimated_usage(messages: &[Value], answer: &str) -> Usage {
    let prompt: usize = messages
        .iter()
        .map(|m| estimate_tokens(&m["content"].to_string()))
        .sum();
    Usage {
        prompt_tokens: prompt as u64,
        completion_tokens: estimate_tokens(answer) as u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_parameters_after_slashes() {
        assert_eq!(parse_model("", "gpt-4o-mini").name, "gpt-4o-mini");
        let spec = parse_model("gpt-4o/temperature=0.2/maxTokens=300", "x");
        assert_eq!(
            (spec.name.as_str(), spec.temperature, spec.max_tokens),
            ("gpt-4o", Some(0.2), Some(300))
        );
        assert_eq!(
            parse_model("meta-llama/Llama-3.1-8B-Instruct", "x").name,
            "meta-llama/Llama-3.1-8B-Instruct"
        );
        assert_eq!(parse_model("llama3.1:8b", "x").name, "llama3.1:8b");
    }

    #[test]
    fn completions_with_text_tools_and_usage() {
        let body = br#"{"choices":[{"message":{"role":"assistant","content":"Hi!","tool_calls":[
            {"id":"c1","type":"function","function":{"name":"handoff_to_human","arguments":"{\"reason\":\"asked\"}"}},
            {"id":"c2","type":"function","function":{"name":"launch_rockets","arguments":"{}"}}]}}],
            "usage":{"prompt_tokens":12,"completion_tokens":3}}"#;
        let said = parse_completion(body).expect("parses");
        assert_eq!(said.text, "Hi!");
        assert_eq!(
            said.actions,
            [Action::Handoff {
                reason: Some("asked".into()),
                attributes: None,
            }]
        );
        assert_eq!(said.tool_call_ids, ["c1"]);
        assert_eq!(
            said.usage,
            Some(Usage {
                prompt_tokens: 12,
                completion_tokens: 3
            })
        );
    }

    #[test]
    fn garbage_is_an_error_and_empty_is_empty() {
        assert!(parse_completion(b"<html>502</html>").is_err());
        assert!(parse_completion(br#"{"choices":[]}"#).is_err());
        assert!(parse_completion(br#"{"error":{"message":"x"}}"#).is_err());
        let said =
            parse_completion(br#"{"choices":[{"message":{"content":null}}]}"#).expect("parses");
        assert!(said.text.is_empty() && said.actions.is_empty());
    }

    #[test]
    fn reasoning_blocks_and_content_parts() {
        assert_eq!(clean_text("<think>hmm</think>\n\nAnswer"), "Answer");
        assert_eq!(clean_text("<think>never ends"), "");
        let parts = json!([{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]);
        assert_eq!(content_text(Some(&parts)), "ab");
        assert_eq!(
            parse_arguments(Some(&json!({"reason": "x"})))["reason"],
            "x"
        );
    }
}
