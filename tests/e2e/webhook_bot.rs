//! Webhook bots against local stand-ins: the Chatwire format (signed, stateful) and Rasa's REST
//! channel (buttons as numbered options), over SMS through the Twilio emulator and over the
//! completion API, including the failure paths.
use crate::common::{backends, spawn_with, Backend, TestApp};
use crate::standins::{self, Answer, PhoneRig};
use chatwire::bot::webhook;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

async fn app(backend: Backend) -> TestApp {
    spawn_with(backend, |_| {}).await
}

async fn ask(app: &TestApp, bot: &str, text: &str) -> Value {
    let (status, out) = app
        .post(
            "/conversation/complete",
            json!({"botId": bot, "messages": [{"type": "user", "text": text}]}),
        )
        .await;
    assert_eq!(status, 200, "{out}");
    out
}

#[tokio::test]
async fn chatwire_format_turns_are_signed_carry_state_and_reach_the_person() {
    for backend in backends() {
        let hook = standins::chatwire_bot().await;
        let bot = json!({"name": "Hooked", "model": "webhook", "webhook": {"url": hook.url}, "webhookSecret": "whsec-123"});
        let rig = PhoneRig::start(backend, None, bot).await;

        // The secret is write-only.
        let (_, fetched) = rig.app.get(&format!("/bot/{}/fetch", rig.bot)).await;
        assert_eq!(fetched["webhook"], json!({"url": hook.url}));
        assert!(
            fetched.get("webhookSecret").is_none() && !fetched.to_string().contains("whsec-123")
        );

        let replies = rig.text_and_wait("+15552220001", "hi there", 1).await;
        assert_eq!(replies, ["Hook got: hi there"]);
        let first = hook.last();
        let header = |name: &str| {
            first
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        let now = chatwire::domain::now_ms() / 1000;
        assert!(
            webhook::verify(
                "whsec-123",
                &header("x-chatwire-timestamp"),
                &first.raw,
                &header("x-chatwire-signature"),
                now
            ),
            "signature verifies"
        );
        assert!(!webhook::verify(
            "wrong",
            &header("x-chatwire-timestamp"),
            &first.raw,
            &header("x-chatwire-signature"),
            now
        ));
        assert!(!header("x-chatwire-delivery").is_empty());
        let body = &first.body;
        assert_eq!(
            (body["type"].as_str(), body["channel"].as_str()),
            (Some("message"), Some("sms"))
        );
        assert_eq!(body["message"]["text"], "hi there");
        assert_eq!(body["contact"]["address"], "+15552220001");
        assert_eq!(body["to"], standins::NUMBER);
        assert_eq!(body["bot"]["id"], Value::String(rig.bot.clone()));
        assert_eq!(body["state"], Value::Null);

        let replies = rig.text_and_wait("+15552220001", "again", 2).await;
        assert_eq!(replies[1], "Hook got: again");
        let second = hook.last().body;
        assert_eq!(
            second["state"],
            json!({"turns": 1}),
            "the state the bot returned comes back"
        );
        let history: Vec<&str> = second["history"]
            .as_array()
            .expect("history")
            .iter()
            .filter_map(|m| m["text"].as_str())
            .collect();
        assert_eq!(history, ["hi there", "Hook got: hi there"]);
        rig.stop().await;
    }
}

#[tokio::test]
async fn a_rasa_bot_plugs_in_and_its_buttons_become_numbered_options() {
    for backend in backends() {
        let rasa = standins::rasa_bot().await;
        rasa.script([Answer::Json(json!([
            {"recipient_id": "+15552220002", "text": "Hi! Where would you like to sit?",
             "buttons": [{"title": "Inside", "payload": "/choose{\"seat\":\"inside\"}"}, {"title": "Outside", "payload": "/choose{\"seat\":\"outside\"}"}]}
        ]))]);
        let bot = json!({"name": "Rasa", "model": "webhook", "webhook": {"url": rasa.url, "format": "rasa"}});
        let rig = PhoneRig::start(backend, None, bot).await;
        let replies = rig.text_and_wait("+15552220002", "hello", 1).await;
        assert_eq!(
            replies,
            ["Hi! Where would you like to sit?\n1. Inside\n2. Outside"]
        );
        assert_eq!(rasa.last().body["sender"], "+15552220002");
        assert_eq!(rasa.last().body["message"], "hello");

        let replies = rig.text_and_wait("+15552220002", " 2 ", 2).await;
        assert_eq!(
            rasa.last().body["message"],
            "/choose{\"seat\":\"outside\"}",
            "the digit picks the button's payload"
        );
        assert_eq!(replies[1], "Rasa heard: /choose{\"seat\":\"outside\"}");
        let replies = rig.text_and_wait("+15552220002", "2", 3).await;
        assert_eq!(
            replies[2], "Rasa heard: 2",
            "without buttons on offer a digit is just text"
        );
        rig.stop().await;
    }
}

#[tokio::test]
async fn webhook_failures_answer_with_the_fallback_text() {
    for backend in backends() {
        let hook = standins::chatwire_bot().await;
        let app = app(backend).await;
        let bot = app
            .create(
                "/bot",
                json!({"model": "webhook", "webhook": {"url": hook.url, "timeoutMs": 800}, "fallbackText": "The bot is resting."}),
            )
            .await;
        let cases = [
            (
                "500 after retries",
                vec![
                    Answer::Status(500),
                    Answer::Status(500),
                    Answer::Status(500),
                ],
            ),
            ("invalid JSON", vec![Answer::Garbage]),
            (
                "wrong shape",
                vec![Answer::Json(json!({"messages": "not a list"}))],
            ),
            ("404", vec![Answer::Status(404)]),
            (
                "slow beyond timeoutMs",
                vec![Answer::Slow(Duration::from_secs(3))],
            ),
        ];
        for (what, script) in cases {
            hook.script(script);
            let started = Instant::now();
            let out = ask(&app, &bot, "ping").await;
            assert_eq!(
                (out["text"].as_str(), out["end"]["reason"].as_str()),
                (Some("The bot is resting."), Some("error")),
                "{what}"
            );
            assert!(
                started.elapsed() < Duration::from_secs(2),
                "{what}: bounded by timeoutMs"
            );
            assert_eq!(
                ask(&app, &bot, "pong").await["text"],
                "Hook got: pong",
                "{what}: the next turn works"
            );
        }
        // One 503 is retried away; the delivery id stays the same across the attempts.
        let before = hook.seen().len();
        hook.script([Answer::Status(503)]);
        assert_eq!(ask(&app, &bot, "blip").await["text"], "Hook got: blip");
        let attempts = &hook.seen()[before..];
        assert_eq!(attempts.len(), 2);
        assert_eq!(
            attempts[0].headers.get("x-chatwire-delivery"),
            attempts[1].headers.get("x-chatwire-delivery")
        );
        // No secret set: no signature header.
        assert!(attempts[0].headers.get("x-chatwire-signature").is_none());
        // Bad settings are refused up front; a webhook bot without settings gets the fallback.
        let (status, out) = app
            .post(
                "/bot/create",
                json!({"model": "webhook", "webhook": {"url": "not a url"}}),
            )
            .await;
        assert_eq!(status, 400, "{out}");
        assert!(out["message"]
            .as_str()
            .unwrap_or_default()
            .contains("webhook.url"));
        let (status, _) = app
            .post(
                &format!("/bot/{bot}/update"),
                json!({"webhook": {"url": hook.url, "timeout": 5}}),
            )
            .await;
        assert_eq!(status, 400, "unknown keys are refused");
        let unset = app.create("/bot", json!({"model": "webhook"})).await;
        assert_eq!(ask(&app, &unset, "x").await["end"]["reason"], "error");
        app.stop().await;
    }
}

#[tokio::test]
async fn private_webhook_addresses_are_refused_unless_allowed() {
    for backend in backends() {
        let hook = standins::chatwire_bot().await;
        let app = spawn_with(backend, |c| c.allow_private_http = false).await;
        let bot = app
            .create(
                "/bot",
                json!({"model": "webhook", "webhook": {"url": hook.url}}),
            )
            .await;
        let out = ask(&app, &bot, "hello").await;
        assert_eq!(out["end"]["reason"], "error");
        assert!(
            hook.seen().is_empty(),
            "nothing was sent to a loopback address"
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn a_rasa_image_goes_out_as_mms_media_not_as_a_link() {
    for backend in backends() {
        let rasa = standins::rasa_bot().await;
        rasa.script([Answer::Json(json!([
            {"recipient_id": "+15552220003", "text": "Here is the menu"},
            {"recipient_id": "+15552220003", "image": "https://example.test/menu.png"}
        ]))]);
        let bot = json!({"name": "Rasa", "model": "webhook", "webhook": {"url": rasa.url, "format": "rasa"}});
        let rig = PhoneRig::start(backend, None, bot).await;
        rig.text_and_wait("+15552220003", "menu?", 2).await;
        let sent = rig.twilio.sent_messages();
        assert_eq!(sent[0].body, "Here is the menu", "{backend:?}");
        assert_eq!(sent[1].num_media, "1", "{backend:?}: the image is media");
        assert!(sent[1].sid.starts_with("MM"), "{backend:?}: an MMS");
        assert!(
            !sent[1].body.contains("menu.png"),
            "{backend:?}: not a link in the text"
        );
        rig.stop().await;
    }
}
