//! The shared engine compliance test: every engine goes through the same turns (empty input,
//! very long input, unicode, state round-trip) and must answer each without an error, with
//! no blank messages, and with a state that survives being stored as JSON and handed back.
//! Engines that call out (LLM, webhook) run against stand-ins started here on 127.0.0.1:0.
//! A new engine joins by adding a case to [`cases`].
use super::{
    select, BotConfig, BotEngine, ChannelKind, ContactInfo, EngineContext, HistoryMessage, Turn,
};
use crate::config::Config;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Map, Value};
use std::sync::Arc;

/// A turn with `text` from a fixed contact over SMS, for engine unit tests.
pub(crate) fn turn_with(text: &str) -> Turn {
    Turn {
        conversation_id: "conv-1".into(),
        bot: BotConfig::default(),
        history: vec![HistoryMessage {
            kind: "user".into(),
            text: "earlier".into(),
        }],
        text: text.into(),
        media: Vec::new(),
        contact: ContactInfo {
            id: None,
            name: None,
            address: "+15550001111".into(),
            author: None,
        },
        channel: ChannelKind::Sms,
        channel_address: Some("+15559990000".into()),
        state: Value::Null,
        now_ms: 1_700_000_000_000,
        message_sid: None,
        account_sid: None,
    }
}

/// Starts `router` on a free local port and returns its base URL.
async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind stand-in");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    format!("http://{addr}")
}

/// An OpenAI-compatible stand-in that answers "You said: <last user message>".
async fn llm_stand_in() -> String {
    let router = Router::new().route(
        "/v1/chat/completions",
        post(|Json(body): Json<Value>| async move {
            let last = body["messages"].as_array().and_then(|m| m.last()).cloned().unwrap_or_default();
            let said = last["content"].as_str().unwrap_or_default().chars().take(200).collect::<String>();
            Json(json!({"choices": [{"message": {"role": "assistant", "content": format!("You said: {said}")}}],
                        "usage": {"prompt_tokens": 10, "completion_tokens": 5}}))
        }),
    );
    format!("{}/v1", serve(router).await)
}

/// A Chatwire-format webhook bot that echoes and counts turns in its state.
async fn chatwire_stand_in() -> String {
    let router = Router::new().route(
        "/hook",
        post(|Json(body): Json<Value>| async move {
            let n = body["state"]["n"].as_i64().unwrap_or(0);
            Json(json!({"messages": [format!("got: {}", body["message"]["text"].as_str().unwrap_or_default())], "state": {"n": n + 1}}))
        }),
    );
    format!("{}/hook", serve(router).await)
}

/// A Rasa REST channel stand-in.
async fn rasa_stand_in() -> String {
    let router = Router::new().route(
        "/webhooks/rest/webhook",
        post(|Json(body): Json<Value>| async move {
            Json(json!([{"recipient_id": body["sender"], "text": format!("rasa: {}", body["message"].as_str().unwrap_or_default())}]))
        }),
    );
    format!("{}/webhooks/rest/webhook", serve(router).await)
}

async fn context(llm_url: String) -> (EngineContext, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("c.db").display());
    let mut config = Config::for_tests(&url);
    config.llm_url = Some(llm_url);
    config.llm_timeout_ms = 5_000;
    let db = crate::store::Db::connect(&url).await.expect("db");
    let cipher = crate::crypto::Cipher::from_key_text(&"0".repeat(64)).expect("key");
    let ctx = EngineContext::new(
        Arc::new(db),
        reqwest::Client::new(),
        crate::net::outbound::Outbound::new(crate::net::outbound::Policy::new(
            config.allow_private_http,
        ))
        .expect("client"),
        Arc::new(config),
        cipher,
        Arc::default(),
    );
    (ctx, dir)
}

fn bot(model: &str, extra: Value) -> BotConfig {
    let mut raw: Map<String, Value> = extra.as_object().cloned().unwrap_or_default();
    raw.insert("model".into(), json!(model));
    BotConfig {
        id: String::new(),
        name: "compliance".into(),
        model: model.into(),
        backstory: "Be brief.".into(),
        dataset_id: None,
        raw,
    }
}

/// (name, engine, bot) for every engine under test, stand-ins started.
async fn cases(ctx: &EngineContext) -> Vec<(&'static str, Box<dyn BotEngine>, BotConfig)> {
    let chatwire = chatwire_stand_in().await;
    let rasa = rasa_stand_in().await;
    let bots = [
        ("echo", bot("echo", json!({}))),
        ("llm", bot("stand-in-model", json!({}))),
        (
            "webhook/chatwire",
            bot("webhook", json!({"webhook": {"url": chatwire}})),
        ),
        (
            "webhook/rasa",
            bot(
                "webhook",
                json!({"webhook": {"url": rasa, "format": "rasa"}}),
            ),
        ),
        (
            "flow",
            bot(
                "flow",
                json!({"flow": {"initial_state": "Trigger", "states": [
                    {"name": "Trigger", "type": "trigger", "transitions": [{"event": "incomingMessage", "next": "echo"}]},
                    {"name": "echo", "type": "send-message", "properties": {"body": "{{trigger.message.Body}}"}, "transitions": []}]}}),
            ),
        ),
    ];
    bots.into_iter()
        .map(|(name, b)| (name, select(ctx, &b).expect("engine"), b))
        .collect()
}

fn check_reply(name: &str, what: &str, reply: &super::Reply) {
    for m in &reply.messages {
        assert!(
            !m.trim().is_empty(),
            "{name}/{what}: blank message in {:?}",
            reply.messages
        );
    }
    let stored = serde_json::to_string(&reply.state).expect("state serialises");
    let back: Value = serde_json::from_str(&stored).expect("state parses");
    assert_eq!(
        back, reply.state,
        "{name}/{what}: state must survive a JSON round trip"
    );
}

#[tokio::test]
async fn every_engine_passes_the_compliance_turns() {
    let (ctx, _dir) = context(llm_stand_in().await).await;
    for (name, engine, bot) in cases(&ctx).await {
        let base = || Turn {
            bot: bot.clone(),
            ..turn_with("")
        };

        // Empty input: no error, nothing blank, state untouched.
        let turn = Turn {
            state: json!({"keep": true}),
            ..base()
        };
        let reply = engine
            .respond(&turn)
            .await
            .unwrap_or_else(|e| panic!("{name}/empty: {e}"));
        check_reply(name, "empty", &reply);
        assert_eq!(
            reply.state,
            json!({"keep": true}),
            "{name}/empty keeps state"
        );

        // Very long input: answered, not an error.
        let long = "lorem ipsum ".repeat(20_000);
        let reply = engine
            .respond(&Turn {
                text: long,
                ..base()
            })
            .await
            .unwrap_or_else(|e| panic!("{name}/long: {e}"));
        check_reply(name, "long", &reply);
        assert!(!reply.messages.is_empty(), "{name}/long gets an answer");
        assert_eq!(
            ctx.metrics.engine_failures_total(),
            0,
            "{name}/long: no fallback"
        );

        // Unicode comes through unmangled (every engine here repeats what it was told).
        let text = "Grüße 👋🏽 日本語 مرحبا — «ok»";
        let reply = engine
            .respond(&Turn {
                text: text.into(),
                ..base()
            })
            .await
            .unwrap_or_else(|e| panic!("{name}/unicode: {e}"));
        check_reply(name, "unicode", &reply);
        assert!(
            reply.messages.iter().any(|m| m.contains(text)),
            "{name}/unicode: {:?}",
            reply.messages
        );

        // State round trip: what a turn returns, handed back, is accepted and carried on.
        let first = engine
            .respond(&Turn {
                text: "one".into(),
                ..base()
            })
            .await
            .unwrap_or_else(|e| panic!("{name}/state1: {e}"));
        check_reply(name, "state1", &first);
        let stored: Value =
            serde_json::from_str(&serde_json::to_string(&first.state).expect("json"))
                .expect("json");
        let second = engine
            .respond(&Turn {
                text: "two".into(),
                state: stored,
                ..base()
            })
            .await
            .unwrap_or_else(|e| panic!("{name}/state2: {e}"));
        check_reply(name, "state2", &second);
        if name == "webhook/chatwire" {
            assert_eq!(
                (first.state.clone(), second.state.clone()),
                (json!({"n": 1}), json!({"n": 2})),
                "{name}: state threads through"
            );
        }
        if matches!(name, "echo" | "llm") {
            let kept = engine
                .respond(&Turn {
                    text: "x".into(),
                    state: json!({"s": [1, "二"]}),
                    ..base()
                })
                .await
                .expect("ok");
            assert_eq!(
                kept.state,
                json!({"s": [1, "二"]}),
                "{name} keeps the state it does not use"
            );
        }
    }
}
