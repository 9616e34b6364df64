//! Reading a streamed chat completion (`stream: true`, server-sent events of
//! `chat.completion.chunk`s) for the completion API's `token` events.
//!
//! The [`Assembler`] takes the body in whatever pieces the network delivers, passes on the text
//! a person would see (reasoning in a leading `<think>…</think>` is held back), and at the end
//! rebuilds an ordinary chat completion (content, tool calls, usage) so the rest of the engine
//! reads streamed and whole answers the same way.
use super::EngineError;
use serde_json::{json, Value};

/// One tool call being assembled from its deltas.
#[derive(Debug, Default)]
struct ToolCall {
    id: String,
    name: String,
    arguments: String,
}

#[derive(Debug, Default)]
pub struct Assembler {
    /// Bytes of an unfinished line.
    pending: Vec<u8>,
    content: String,
    /// Bytes of the visible text already passed on.
    emitted: usize,
    tools: Vec<ToolCall>,
    usage: Option<Value>,
    chunks: usize,
    done: bool,
}

impl Assembler {
    /// Takes the next piece of the body; returns the new visible text, one piece per chunk.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Vec<String>, EngineError> {
        self.pending.extend_from_slice(bytes);
        let mut out = Vec::new();
        while let Some(end) = self.pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line);
            let Some(data) = line.trim_end_matches(['\n', '\r']).strip_prefix("data:") else {
                continue; // comments, `event:` lines, blank separators
            };
            let data = data.trim();
            if data == "[DONE]" {
                self.done = true;
                break;
            }
            self.chunk(data)?;
            if let Some(visible) = visible(&self.content) {
                if visible.len() > self.emitted {
                    out.push(visible[self.emitted..].to_owned());
                    self.emitted = visible.len();
                }
            }
        }
        Ok(out)
    }

    /// Whether the server said `[DONE]`.
    pub fn done(&self) -> bool {
        self.done
    }

    fn chunk(&mut self, data: &str) -> Result<(), EngineError> {
        let Ok(chunk) = serde_json::from_str::<Value>(data) else {
            return Ok(()); // a line that is not JSON is skipped; no chunks at all is an error
        };
        if let Some(error) = chunk.get("error") {
            let message = error
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("error");
            let message: String = message.chars().take(200).collect();
            return Err(EngineError::Upstream(format!(
                "the LLM stream reported: {message}"
            )));
        }
        self.chunks += 1;
        if let Some(usage) = chunk.get("usage").filter(|u| u.is_object()) {
            self.usage = Some(usage.clone());
        }
        let Some(delta) = chunk.pointer("/choices/0/delta") else {
            return Ok(());
        };
        if let Some(text) = delta.get("content").and_then(Value::as_str) {
            self.content.push_str(text);
        }
        for call in delta
            .get("tool_calls")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let index = call.get("index").and_then(Value::as_u64).unwrap_or(0) as usize;
            if index >= 16 {
                continue; // more tools than Chatwire offers: not ours
            }
            while self.tools.len() <= index {
                self.tools.push(ToolCall::default());
            }
            let tool = &mut self.tools[index];
            if let Some(id) = call.get("id").and_then(Value::as_str) {
                tool.id = id.to_owned();
            }
            let function = call.get("function");
            if let Some(name) = function.and_then(|f| f.get("name")).and_then(Value::as_str) {
                tool.name.push_str(name);
            }
            if let Some(args) = function
                .and_then(|f| f.get("arguments"))
                .and_then(Value::as_str)
            {
                tool.arguments.push_str(args);
            }
        }
        Ok(())
    }

    /// The whole answer as a non-streamed chat completion.
    pub fn finish(mut self) -> Result<Value, EngineError> {
        // A last line without its newline still counts.
        if !self.pending.is_empty() && !self.done {
            self.feed(b"\n")?;
        }
        if self.chunks == 0 {
            return Err(EngineError::Upstream(
                "the LLM stream held no chat completion chunks".into(),
            ));
        }
        let mut message = json!({"role": "assistant", "content": self.content});
        if !self.tools.is_empty() {
            let calls: Vec<Value> = self
                .tools
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    let id = if t.id.is_empty() { format!("call_{i}") } else { t.id.clone() };
                    json!({"id": id, "type": "function", "function": {"name": t.name, "arguments": t.arguments}})
                })
                .collect();
            message["tool_calls"] = Value::Array(calls);
        }
        let mut value = json!({"choices": [{"index": 0, "message": message}]});
        if let Some(usage) = self.usage {
            value["usage"] = usage;
        }
        Ok(value)
    }
}

/// The text a person should see so far: without a leading `<think>…</think>`, and nothing
/// while it is not yet clear whether the text starts with one.
fn visible(raw: &str) -> Option<&str> {
    let text = raw.trim_start();
    if text.is_empty() || "<think>".starts_with(text) {
        return None;
    }
    match text.strip_prefix("<think>") {
        Some(rest) => rest
            .find("</think>")
            .and_then(|end| visible(&rest[end + "</think>".len()..])),
        None => Some(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sse(chunks: &[Value]) -> String {
        let mut out: String = chunks.iter().map(|c| format!("data: {c}\n\n")).collect();
        out.push_str("data: [DONE]\n\n");
        out
    }

    #[test]
    fn text_arrives_piece_by_piece_even_split_mid_line_and_mid_character() {
        let body = sse(&[
            json!({"choices": [{"delta": {"role": "assistant"}}]}),
            json!({"choices": [{"delta": {"content": "Grüße, "}}]}),
            json!({"choices": [{"delta": {"content": "Ada 👋"}}]}),
            json!({"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 4}}),
        ]);
        let bytes = body.as_bytes();
        let mut a = Assembler::default();
        let mut seen = Vec::new();
        // Three bytes at a time splits lines and multi-byte characters.
        for piece in bytes.chunks(3) {
            seen.extend(a.feed(piece).expect("valid"));
        }
        assert!(a.done());
        assert_eq!(seen.concat(), "Grüße, Ada 👋");
        assert!(seen.len() >= 2, "{seen:?}");
        let value = a.finish().expect("assembled");
        assert_eq!(value["choices"][0]["message"]["content"], "Grüße, Ada 👋");
        assert_eq!(value["usage"]["completion_tokens"], 4);
    }

    #[test]
    fn tool_calls_are_assembled_from_deltas() {
        let body = sse(&[
            json!({"choices": [{"delta": {"tool_calls": [{"index": 0, "id": "call_9", "function": {"name": "handoff_to_human", "arguments": ""}}]}}]}),
            json!({"choices": [{"delta": {"tool_calls": [{"index": 0, "function": {"arguments": "{\"reason\":"}}]}}]}),
            json!({"choices": [{"delta": {"tool_calls": [{"index": 0, "function": {"arguments": "\"vip\"}"}}]}}]}),
        ]);
        let mut a = Assembler::default();
        assert!(a.feed(body.as_bytes()).expect("valid").is_empty());
        let value = a.finish().expect("assembled");
        let call = &value["choices"][0]["message"]["tool_calls"][0];
        assert_eq!(
            (call["id"].as_str(), call["function"]["name"].as_str()),
            (Some("call_9"), Some("handoff_to_human"))
        );
        assert_eq!(call["function"]["arguments"], "{\"reason\":\"vip\"}");
    }

    #[test]
    fn reasoning_is_held_back_and_garbage_is_an_error() {
        let mut a = Assembler::default();
        let mut seen = Vec::new();
        for piece in ["<th", "ink>let me think", "</think>\n\nHello", " there"] {
            let chunk = json!({"choices": [{"delta": {"content": piece}}]});
            seen.extend(
                a.feed(format!("data: {chunk}\n\n").as_bytes())
                    .expect("valid"),
            );
        }
        assert_eq!(seen, ["Hello", " there"]);
        let mut junk = Assembler::default();
        junk.feed(b"<html>bad gateway</html>\n").expect("skipped");
        assert!(junk.finish().is_err());
        let mut failed = Assembler::default();
        assert!(failed
            .feed(b"data: {\"error\": {\"message\": \"overloaded\"}}\n")
            .is_err());
    }
}
