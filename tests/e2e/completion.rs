//! The completion API (ChatBotKit v1 `conversation/{id}/send|receive|complete` and the
//! stateless `conversation/complete`), as JSON and as JSONL / event streams.
use crate::common::{backends, TOKEN};
use crate::standins::{self, app_with_llm};
use serde_json::{json, Value};

/// POSTs with `Accept: accept`; returns status, content type and body text.
async fn raw(
    app: &crate::common::TestApp,
    path: &str,
    accept: &str,
    body: Value,
) -> (u16, String, String) {
    let resp = app
        .client
        .post(app.url(&format!("/api/v1{path}")))
        .bearer_auth(TOKEN)
        .header("accept", accept)
        .json(&body)
        .send()
        .await
        .expect("request");
    let status = resp.status().as_u16();
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (status, ct, resp.text().await.expect("body"))
}

/// Parses a JSONL body, refusing blank lines (the SDK would choke on them).
fn jsonl(text: &str) -> Vec<Value> {
    assert!(text.ends_with('\n'), "every line ends with a newline");
    text.split_terminator('\n')
        .map(|line| {
            assert!(!line.trim().is_empty(), "blank line in {text:?}");
            let v: Value = serde_json::from_str(line).expect("each line is JSON");
            assert!(v["type"].is_string() && v.get("data").is_some(), "{v}");
            v
        })
        .collect()
}

#[tokio::test]
async fn send_receive_and_complete_store_the_conversation() {
    for backend in backends() {
        let llm = standins::llm().await;
        let app = app_with_llm(backend, &llm).await;
        let bot = app
            .create("/bot", json!({"model": "m", "backstory": "Be brief."}))
            .await;
        let conv = app.create("/conversation", json!({"botId": bot})).await;

        let (status, sent) = app
            .post(
                &format!("/conversation/{conv}/send"),
                json!({"text": "Hello", "entities": []}),
            )
            .await;
        assert_eq!(status, 200, "{sent}");
        assert_eq!(sent["entities"], json!([]));
        assert!(sent["id"].is_string());

        let (status, received) = app
            .post(&format!("/conversation/{conv}/receive"), json!({}))
            .await;
        assert_eq!(status, 200, "{received}");
        assert_eq!(received["text"], "Echo: Hello");
        assert_eq!(received["usage"], json!({"token": 49}));
        assert!(received.get("end").is_none(), "receive has no end");

        let (status, done) = app
            .post(
                &format!("/conversation/{conv}/complete"),
                json!({"text": "Again"}),
            )
            .await;
        assert_eq!(status, 200, "{done}");
        assert_eq!(
            (done["text"].as_str(), done["end"]["reason"].as_str()),
            (Some("Echo: Again"), Some("stop"))
        );

        let (_, list) = app.get(&format!("/conversation/{conv}/message/list")).await;
        let items: Vec<(String, String, String)> = list["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|m| {
                (
                    m["id"].as_str().unwrap_or_default().into(),
                    m["type"].as_str().unwrap_or_default().into(),
                    m["text"].as_str().unwrap_or_default().into(),
                )
            })
            .collect();
        let kinds: Vec<(&str, &str)> = items
            .iter()
            .map(|(_, k, t)| (k.as_str(), t.as_str()))
            .collect();
        assert_eq!(
            kinds,
            [
                ("user", "Hello"),
                ("bot", "Echo: Hello"),
                ("user", "Again"),
                ("bot", "Echo: Again")
            ]
        );
        assert_eq!(items[0].0, sent["id"].as_str().unwrap_or_default());
        assert_eq!(items[1].0, received["id"].as_str().unwrap_or_default());
        assert_eq!(items[3].0, done["id"].as_str().unwrap_or_default());

        // Completing without text answers the conversation as it stands (last word: the bot).
        let (status, out) = app
            .post(&format!("/conversation/{conv}/complete"), json!({}))
            .await;
        assert_eq!((status, out["text"].as_str()), (200, Some("")));
        app.stop().await;
    }
}

#[tokio::test]
async fn stateless_complete_uses_an_inline_bot_or_a_bot_id_and_stores_nothing() {
    for backend in backends() {
        let llm = standins::llm().await;
        let app = app_with_llm(backend, &llm).await;
        let body = json!({
            "model": "inline-model", "backstory": "You are a pirate.",
            "extensions": {"backstory": "Say arr."},
            "messages": [{"type": "user", "text": "Hi"}, {"type": "bot", "text": "Ahoy"}, {"type": "user", "text": "Where is the treasure?"}]
        });
        let (status, out) = app.post("/conversation/complete", body).await;
        assert_eq!(status, 200, "{out}");
        assert_eq!(
            out,
            json!({"text": "Echo: Where is the treasure?", "usage": {"token": 49}, "end": {"reason": "stop"}})
        );
        let seen = llm.last().body;
        assert_eq!(seen["model"], "inline-model");
        let system = seen["messages"][0]["content"].as_str().unwrap_or_default();
        assert!(
            system.starts_with("You are a pirate.\n\nSay arr."),
            "{system}"
        );
        assert_eq!(seen["messages"].as_array().map(Vec::len), Some(4));
        let (_, list) = app.get("/conversation/list").await;
        assert_eq!(list["items"], json!([]), "nothing stored");

        let echo = app.create("/bot", json!({"model": "echo"})).await;
        let (status, out) = app
            .post(
                "/conversation/complete",
                json!({"botId": echo, "messages": [{"type": "user", "text": "same"}]}),
            )
            .await;
        assert_eq!((status, out["text"].as_str()), (200, Some("same")));
        app.stop().await;
    }
}

#[tokio::test]
async fn jsonl_streams_tokens_message_usage_and_a_final_result() {
    for backend in backends() {
        let llm = standins::llm().await;
        let app = app_with_llm(backend, &llm).await;
        let bot = app.create("/bot", json!({"model": "m"})).await;
        let conv = app.create("/conversation", json!({"botId": bot})).await;

        let (status, ct, text) = raw(
            &app,
            &format!("/conversation/{conv}/complete"),
            "application/jsonl",
            json!({"text": "stream me please"}),
        )
        .await;
        assert_eq!((status, ct.as_str()), (200, "application/jsonl"));
        let events = jsonl(&text);
        let kinds: Vec<&str> = events.iter().filter_map(|e| e["type"].as_str()).collect();
        let tokens = kinds.iter().take_while(|k| **k == "token").count();
        assert!(tokens >= 3, "{kinds:?}");
        assert_eq!(&kinds[tokens..], ["message", "usage", "result"]);
        let streamed: String = events[..tokens]
            .iter()
            .filter_map(|e| e["data"]["token"].as_str())
            .collect();
        assert_eq!(streamed, "Echo: stream me please");
        assert_eq!(
            events[tokens]["data"],
            json!({"type": "bot", "text": "Echo: stream me please"})
        );
        assert_eq!(
            events[tokens + 1]["data"],
            json!({"model": "m", "inputTokensUsed": 42, "outputTokensUsed": 7})
        );
        let result = &events[tokens + 2]["data"];
        assert_eq!(
            (
                result["text"].as_str(),
                result["end"]["reason"].as_str(),
                result["usage"]["token"].as_i64()
            ),
            (Some("Echo: stream me please"), Some("stop"), Some(49))
        );
        assert!(result["id"].is_string());

        let (_, _, text) = raw(
            &app,
            &format!("/conversation/{conv}/send"),
            "application/jsonl",
            json!({"text": "only stored"}),
        )
        .await;
        let events = jsonl(&text);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0]["type"], "result");
        assert_eq!(events[0]["data"]["entities"], json!([]));

        let (_, _, text) = raw(
            &app,
            &format!("/conversation/{conv}/receive"),
            "application/jsonl",
            json!({}),
        )
        .await;
        let events = jsonl(&text);
        assert_eq!(
            events.last().map(|e| e["data"]["text"].clone()),
            Some(json!("Echo: only stored"))
        );

        let (status, ct, text) = raw(
            &app,
            "/conversation/complete",
            "application/jsonl",
            json!({"model": "m", "messages": [{"type": "user", "text": "x"}]}),
        )
        .await;
        assert_eq!((status, ct.as_str()), (200, "application/jsonl"));
        assert_eq!(
            jsonl(&text).last().map(|e| e["type"].clone()),
            Some(json!("result"))
        );

        let (status, ct, text) = raw(
            &app,
            "/conversation/complete",
            "text/event-stream",
            json!({"model": "m", "messages": [{"type": "user", "text": "x"}]}),
        )
        .await;
        assert_eq!((status, ct.as_str()), (200, "text/event-stream"));
        assert!(
            text.contains("event: token\ndata: {\"token\":\"Echo: \"}\n\n"),
            "{text}"
        );
        assert!(text.ends_with("\n\n") && text.contains("event: result\n"));
        app.stop().await;
    }
}

#[tokio::test]
async fn completion_mistakes_get_4xx() {
    for backend in backends() {
        let app = crate::common::spawn_app(backend).await;
        let bot = app.create("/bot", json!({"model": "echo"})).await;
        let conv = app.create("/conversation", json!({"botId": bot})).await;
        let cases = [
            ("/conversation/nope/send", json!({"text": "x"}), 404),
            ("/conversation/nope/complete", json!({"text": "x"}), 404),
            (&*format!("/conversation/{conv}/send"), json!({}), 400),
            (
                &*format!("/conversation/{conv}/send"),
                json!({"text": 5}),
                400,
            ),
            (
                &*format!("/conversation/{conv}/send"),
                json!({"text": "x", "bogus": 1}),
                400,
            ),
            (
                &*format!("/conversation/{conv}/receive"),
                json!({"text": "x"}),
                400,
            ),
            ("/conversation/complete", json!({}), 400),
            (
                "/conversation/complete",
                json!({"messages": [{"type": "alien", "text": "x"}]}),
                400,
            ),
            (
                "/conversation/complete",
                json!({"messages": [{"type": "user"}]}),
                400,
            ),
            (
                "/conversation/complete",
                json!({"botId": "nope", "messages": []}),
                400,
            ),
            (
                "/conversation/complete",
                json!({"datasetId": "nope", "messages": []}),
                400,
            ),
        ];
        for (path, body, expected) in cases {
            let (status, out) = app.post(path, body.clone()).await;
            assert_eq!(status, expected, "{path} {body}: {out}");
            assert!(
                out["message"].is_string() && out["code"].is_string(),
                "{out}"
            );
        }
        let (status, _, _) = raw(
            &app,
            &format!("/conversation/{conv}/complete"),
            "text/csv",
            json!({"text": "x"}),
        )
        .await;
        assert_eq!(status, 400, "unsupported accept");
        // The echo bot through the stateful API, and the OpenAPI document lists the routes.
        let (_, out) = app
            .post(
                &format!("/conversation/{conv}/complete"),
                json!({"text": "echo me"}),
            )
            .await;
        assert_eq!(out["text"], "echo me");
        let (_, spec) = app.get("/openapi.json").await;
        for path in [
            "/conversation/{conversationId}/send",
            "/conversation/{conversationId}/receive",
            "/conversation/{conversationId}/complete",
            "/conversation/complete",
        ] {
            assert!(spec["paths"][path]["post"].is_object(), "{path} documented");
        }
        app.stop().await;
    }
}

#[tokio::test]
async fn llm_tokens_stream_while_the_model_is_still_writing() {
    for backend in backends() {
        let llm = standins::llm().await;
        let app = app_with_llm(backend, &llm).await;
        let pause = std::time::Duration::from_millis(150);
        llm.script([crate::standins::Answer::Drip(
            vec!["Once ", "upon ", "a ", "time."],
            pause,
        )]);
        let started = std::time::Instant::now();
        let mut resp = app
            .client
            .post(app.url("/v1/conversation/complete"))
            .bearer_auth(TOKEN)
            .header("accept", "application/jsonl")
            .json(&json!({"model": "m", "messages": [{"type": "user", "text": "tell me a story"}]}))
            .send()
            .await
            .expect("request");
        let mut body = String::new();
        let mut first_token = None;
        while let Some(chunk) = resp.chunk().await.expect("chunk") {
            body.push_str(&String::from_utf8_lossy(&chunk));
            if first_token.is_none() && body.contains("\"type\":\"token\"") {
                first_token = Some(started.elapsed());
            }
        }
        let finished = started.elapsed();
        let events = jsonl(&body);
        let tokens: String = events
            .iter()
            .filter(|e| e["type"] == "token")
            .filter_map(|e| e["data"]["token"].as_str())
            .collect();
        assert_eq!(tokens, "Once upon a time.");
        let first = first_token.expect("a token event");
        assert!(
            finished >= first + pause * 2,
            "tokens arrived as written: first {first:?}, end {finished:?}"
        );
        let last = events.last().expect("events");
        assert_eq!(
            (last["type"].as_str(), last["data"]["text"].as_str()),
            (Some("result"), Some("Once upon a time."))
        );
        assert_eq!(
            events[events.len() - 2]["data"],
            json!({"model": "m", "inputTokensUsed": 11, "outputTokensUsed": 5})
        );
        let seen = llm.last().body;
        assert_eq!(
            (seen["stream"].clone(), seen["stream_options"].clone()),
            (json!(true), json!({"include_usage": true}))
        );

        // A model that fails before streaming anything: the fallback text, reason `error`.
        llm.script([
            crate::standins::Answer::Status(500),
            crate::standins::Answer::Status(500),
            crate::standins::Answer::Status(500),
        ]);
        let (_, _, text) = raw(
            &app,
            "/conversation/complete",
            "application/jsonl",
            json!({"model": "m", "messages": [{"type": "user", "text": "x"}]}),
        )
        .await;
        let events = jsonl(&text);
        let result = &events.last().expect("events")["data"];
        assert_eq!(result["end"]["reason"], "error");
        let fallback = chatwire::config::Config::for_tests("sqlite::memory:").fallback_text;
        assert_eq!(result["text"], json!(fallback));
        let tokens: String = events
            .iter()
            .filter(|e| e["type"] == "token")
            .filter_map(|e| e["data"]["token"].as_str())
            .collect();
        assert_eq!(tokens, fallback);
        app.stop().await;
    }
}
