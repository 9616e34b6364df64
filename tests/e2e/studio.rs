//! Studio flow and FAQ bots end to end: flows imported through the management API exactly as
//! exported, conversations driven over the Twilio emulator, Twilio Functions and APIs played
//! by local stand-ins. Every branch of the other fixture flows: `fixture_flows/`.
use crate::channel::Rig;
use crate::common::{backends, spawn_app};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};
use std::time::Duration;

const FIXTURES: &[&str] = &[
    "frontline-airtable",
    "patient-appointment-management",
    "pride-astrology",
    "requestbin-minimal",
    "seed-do-you-like-bots",
    "webchat-send-to-flex",
];

pub fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/tests/fixtures/studio/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(&path).expect("fixture")).expect("fixture JSON")
}

/// Points the named widgets' `url` at `base/<path>`.
pub fn point(mut flow: Value, urls: &[(&str, String)]) -> Value {
    for state in flow["states"].as_array_mut().expect("states") {
        if let Some((_, url)) = urls.iter().find(|(name, _)| state["name"] == *name) {
            state["properties"]["url"] = json!(url);
        }
    }
    flow
}

pub async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    format!("http://{addr}")
}

async fn bodies(rig: &Rig, n: usize) -> Vec<(String, String)> {
    rig.replies(n)
        .await
        .into_iter()
        .map(|m| (m.to, m.body))
        .collect()
}

#[tokio::test]
async fn every_fixture_flow_imports_through_the_api() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        for name in FIXTURES {
            let flow = fixture(name);
            let id = app
                .create("/bot", json!({"name": name, "model": "flow", "flow": flow}))
                .await;
            let (status, bot) = app.get(&format!("/bot/{id}/fetch")).await;
            assert_eq!(status, 200);
            assert_eq!(bot["flow"], flow, "{name}: stored unchanged");
            assert_eq!(bot["lang"], json!("en"));
        }
        app.stop().await;
    }
}

#[tokio::test]
async fn voice_widgets_and_unknown_subflows_import_with_warnings() {
    let app = spawn_app(crate::common::Backend::Sqlite).await;
    let (status, out) = app
        .post(
            "/bot/create",
            json!({"model": "flow", "flow": fixture("frontline-airtable")}),
        )
        .await;
    assert_eq!(status, 200, "{out}");
    let warnings = out["warnings"].as_array().expect("warnings");
    assert!(
        warnings
            .iter()
            .any(|w| w.as_str().is_some_and(|w| w.contains("say-play"))),
        "{out}"
    );
    let id = out["id"].as_str().expect("id");
    let (status, out) = app
        .post(
            &format!("/bot/{id}/update"),
            json!({"flow": fixture("seed-do-you-like-bots")}),
        )
        .await;
    assert_eq!(status, 200);
    assert!(out.get("warnings").is_none(), "no warnings, no key: {out}");
    let mut parent = fixture("seed-do-you-like-bots");
    parent["states"][1]["type"] = json!("run-subflow");
    parent["states"][1]["properties"] =
        json!({"flow_sid": "FW00000000000000000000000000000042", "parameters": []});
    parent["states"][1]["transitions"] = json!([{"event": "completed"}, {"event": "failed"}]);
    let (status, out) = app
        .post("/bot/create", json!({"model": "flow", "flow": parent}))
        .await;
    assert_eq!(status, 200, "{out}");
    assert!(
        out["warnings"][0]
            .as_str()
            .is_some_and(|w| w.contains("FW00000000000000000000000000000042")),
        "{out}"
    );
    app.stop().await;
}

#[tokio::test]
async fn an_invalid_flow_is_refused_naming_the_state_and_field() {
    let app = spawn_app(crate::common::Backend::Sqlite).await;
    let mut dangling = fixture("seed-do-you-like-bots");
    dangling["states"][5]["transitions"][0]["next"] = json!("send_message_9");
    let (status, out) = app
        .post("/bot/create", json!({"model": "flow", "flow": dangling}))
        .await;
    assert_eq!(status, 400);
    let message = out["message"].as_str().unwrap_or_default();
    assert!(
        message
            .contains("state \"split_1\": transitions[0].next: no state named \"send_message_9\""),
        "{message}"
    );
    assert_eq!(out["code"], json!("BAD_REQUEST"));

    let mut duplicate = fixture("seed-do-you-like-bots");
    duplicate["states"][3]["name"] = json!("send_message_1");
    let (status, out) = app
        .post("/bot/create", json!({"model": "flow", "flow": duplicate}))
        .await;
    assert_eq!(status, 400);
    assert!(
        out["message"]
            .as_str()
            .unwrap_or_default()
            .contains("state \"send_message_1\": name: duplicate state name"),
        "{out}"
    );

    let mut unknown = fixture("seed-do-you-like-bots");
    unknown["states"][2]["type"] = json!("send-pigeon");
    let id = app
        .create(
            "/bot",
            json!({"model": "flow", "flow": fixture("seed-do-you-like-bots")}),
        )
        .await;
    let (status, out) = app
        .post(&format!("/bot/{id}/update"), json!({"flow": unknown}))
        .await;
    assert_eq!(status, 400, "update is validated too");
    assert!(
        out["message"]
            .as_str()
            .unwrap_or_default()
            .contains("state \"send_message_1\": type: unknown widget type \"send-pigeon\""),
        "{out}"
    );

    let (status, out) = app.post("/bot/create", json!({"model": "flow"})).await;
    assert_eq!(status, 400);
    assert!(out["message"]
        .as_str()
        .unwrap_or_default()
        .contains("\"flow\" is required"));
    // Switching an existing bot with a stored flow to `flow` needs no flow in the body.
    let plain = app
        .create(
            "/bot",
            json!({"model": "echo", "flow": fixture("seed-do-you-like-bots")}),
        )
        .await;
    let (status, _) = app
        .post(&format!("/bot/{plain}/update"), json!({"model": "flow"}))
        .await;
    assert_eq!(status, 200);

    let (status, out) = app
        .post(
            "/bot/create",
            json!({"model": "faq", "faq": {"minScore": 3}}),
        )
        .await;
    assert_eq!(status, 400);
    assert!(out["message"]
        .as_str()
        .unwrap_or_default()
        .contains("minScore"));
    let (status, _) = app
        .post("/bot/create", json!({"labels": {"thanks": 5}}))
        .await;
    assert_eq!(status, 400);
    let (status, _) = app
        .post("/bot/create", json!({"lang": "english please"}))
        .await;
    assert_eq!(status, 400);
    app.stop().await;
}

#[tokio::test]
async fn the_seed_flow_answers_its_three_ways_over_twilio() {
    for backend in backends() {
        let rig = Rig::with(
            backend,
            json!({"model": "flow", "flow": fixture("seed-do-you-like-bots")}),
            json!({}),
        )
        .await;
        let people = [
            ("+15551110001", "Yes", "🤖"),
            ("+15551110002", "no", "👽"),
            ("+15551110003", "what?", "👻"),
        ];
        for (i, (from, answer, emoji)) in people.iter().enumerate() {
            rig.text(from, "hi").await;
            let sent = bodies(&rig, 2 * i + 1).await;
            assert_eq!(
                sent[2 * i],
                (from.to_string(), "Hi, do you like bots?".to_owned())
            );
            rig.text(from, answer).await;
            let sent = bodies(&rig, 2 * i + 2).await;
            assert_eq!(sent[2 * i + 1], (from.to_string(), emoji.to_string()));
        }
        // Each conversation left a recorded execution with its steps.
        let (status, list) = rig
            .app
            .get(&format!("/bot/{}/flow/execution/list", rig.bot))
            .await;
        assert_eq!(status, 200);
        let items = list["items"].as_array().expect("items");
        assert_eq!(items.len(), 3);
        assert!(items.iter().all(|e| e["status"] == json!("ended")));
        let id = items[0]["id"].as_str().expect("id");
        let (_, steps) = rig
            .app
            .get(&format!("/bot/{}/flow/execution/{id}/step/list", rig.bot))
            .await;
        let names: Vec<&str> = steps["items"]
            .as_array()
            .expect("steps")
            .iter()
            .filter_map(|s| s["name"].as_str())
            .collect();
        assert_eq!(
            names,
            vec![
                "incomingConversationMessage",
                "incomingMessage",
                "noMatch",
                "sent"
            ]
        );
        // The step list pages with take and cursor.
        let (_, page) = rig
            .app
            .get(&format!(
                "/bot/{}/flow/execution/{id}/step/list?take=3",
                rig.bot
            ))
            .await;
        assert_eq!(page["items"].as_array().map(Vec::len), Some(3));
        let cursor = page["cursor"].as_str().expect("a full page has a cursor");
        let (_, rest) = rig
            .app
            .get(&format!(
                "/bot/{}/flow/execution/{id}/step/list?take=3&cursor={cursor}",
                rig.bot
            ))
            .await;
        let rest = rest["items"].as_array().expect("items");
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0]["name"], json!("sent"));
        let (status, _) = rig
            .app
            .get(&format!(
                "/bot/{}/flow/execution/{id}/step/list?take=0",
                rig.bot
            ))
            .await;
        assert_eq!(status, 400);
        let (_, exec) = rig
            .app
            .get(&format!("/bot/{}/flow/execution/{id}/fetch", rig.bot))
            .await;
        assert_eq!(
            exec["context"]["widgets"]["send_and_reply_1"]["inbound"]["Body"],
            json!("what?")
        );
        rig.stop().await;
    }
}

#[tokio::test]
async fn a_wait_times_out_over_twilio_when_nobody_answers() {
    let flow = json!({"description": "timeout", "initial_state": "Trigger", "flags": {"allow_concurrent_calls": true}, "states": [
        {"name": "Trigger", "type": "trigger", "transitions": [{"event": "incomingMessage", "next": "ask"}], "properties": {}},
        {"name": "ask", "type": "send-and-wait-for-reply", "properties": {"body": "Quick, your name?", "timeout": "1"},
         "transitions": [{"event": "incomingMessage", "next": "hi"}, {"event": "timeout", "next": "late"}, {"event": "deliveryFailure"}]},
        {"name": "hi", "type": "send-message", "properties": {"body": "Hi {{widgets.ask.inbound.Body}}"}, "transitions": [{"event": "sent"}, {"event": "failed"}]},
        {"name": "late", "type": "send-message", "properties": {"body": "Too slow! Text again to retry."}, "transitions": [{"event": "sent"}, {"event": "failed"}]}]});
    let rig = Rig::with(
        crate::common::Backend::Sqlite,
        json!({"model": "flow", "flow": flow}),
        json!({}),
    )
    .await;
    rig.text("+15551110010", "start").await;
    let sent = rig
        .twilio
        .wait_for_messages(2, Duration::from_secs(20))
        .await
        .expect("timeout message");
    assert_eq!(sent[0].body, "Quick, your name?");
    assert_eq!(sent[1].body, "Too slow! Text again to retry.");
    rig.stop().await;
}

#[tokio::test]
async fn an_api_call_starts_a_flow_towards_a_contact() {
    for backend in backends() {
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Value>::new()));
        let sink = seen.clone();
        let callback = serve(Router::new().route(
            "/callback",
            post(move |Json(body): Json<Value>| {
                let sink = sink.clone();
                async move {
                    sink.lock().expect("lock").push(body);
                    Json(json!({"message": "noted"}))
                }
            }),
        ))
        .await;
        let flow = point(
            fixture("requestbin-minimal"),
            &[("callback", format!("{callback}/callback"))],
        );
        let rig = Rig::with(backend, json!({"model": "flow", "flow": flow}), json!({})).await;
        let to = "+15551110030";
        let (status, out) = rig
            .app
            .post(
                &format!("/bot/{}/flow/execute", rig.bot),
                json!({"to": to, "data": {"campaignname": "spring", "samplegiven": "yes"}}),
            )
            .await;
        assert_eq!(status, 200, "{out}");
        assert_eq!(out["status"], json!("active"));
        let sent = bodies(&rig, 1).await;
        assert_eq!(
            sent[0],
            (to.to_owned(), "Hi, how may I address you?".to_owned())
        );
        // One active execution per contact per flow.
        let (status, again) = rig
            .app
            .post(&format!("/bot/{}/flow/execute", rig.bot), json!({"to": to}))
            .await;
        assert_eq!(status, 409, "{again}");
        rig.text(to, "Grace").await;
        let sent = bodies(&rig, 2).await;
        assert_eq!(
            sent[1].1,
            "Pleasure to meet you, Grace. HTTP response from callback was: \"noted\""
        );
        let posted = seen.lock().expect("lock").clone();
        assert_eq!(posted[0]["inbound"]["inboundText"], json!("Grace"));
        assert_eq!(posted[0]["inbound"]["campaignName"], json!("spring"));
        let (_, list) = rig
            .app
            .get(&format!("/bot/{}/flow/execution/list", rig.bot))
            .await;
        assert_eq!(list["items"][0]["trigger"], json!("incomingRequest"));
        assert_eq!(list["items"][0]["status"], json!("ended"));
        rig.stop().await;
    }
}

#[tokio::test]
async fn an_execution_can_be_ended_through_the_api() {
    let rig = Rig::with(
        crate::common::Backend::Sqlite,
        json!({"model": "flow", "flow": fixture("seed-do-you-like-bots")}),
        json!({}),
    )
    .await;
    let me = "+15551110040";
    rig.text(me, "hi").await;
    bodies(&rig, 1).await;
    let (_, list) = rig
        .app
        .get(&format!("/bot/{}/flow/execution/list", rig.bot))
        .await;
    let id = list["items"][0]["id"].as_str().expect("id").to_owned();
    assert_eq!(list["items"][0]["currentState"], json!("send_and_reply_1"));
    let (status, _) = rig
        .app
        .post(
            &format!("/bot/{}/flow/execution/{id}/update", rig.bot),
            json!({"status": "ended"}),
        )
        .await;
    assert_eq!(status, 200);
    rig.text(me, "yes").await;
    let sent = bodies(&rig, 2).await;
    assert_eq!(
        sent[1].1, "Hi, do you like bots?",
        "the ended execution does not take the answer"
    );
    let (status, _) = rig
        .app
        .get(&format!("/bot/{}/flow/execution/nope/fetch", rig.bot))
        .await;
    assert_eq!(status, 404);
    rig.stop().await;
}

#[tokio::test]
async fn a_faq_bot_answers_from_its_dataset_over_twilio() {
    for backend in backends() {
        let app_probe = Rig::with(backend, json!({"model": "echo"}), json!({})).await;
        let dataset = app_probe
            .app
            .create("/dataset", json!({"name": "FAQ"}))
            .await;
        for text in [
            "Q: What are your opening hours?\nA: 9am to 5pm, Monday to Friday.",
            "Q: Where can I park?\nA: Free parking behind the building.",
        ] {
            app_probe
                .app
                .create(&format!("/dataset/{dataset}/record"), json!({"text": text}))
                .await;
        }
        let (status, out) = app_probe
            .app
            .post(&format!("/bot/{}/update", app_probe.bot), json!({"model": "faq", "datasetId": dataset, "lang": "es", "faq": {"triesBeforeEscalation": 1}}))
            .await;
        assert_eq!(status, 200, "{out}");
        let me = "+15551110050";
        app_probe.text(me, "opening hours?").await;
        let sent = bodies(&app_probe, 2).await;
        assert_eq!(sent[0].1, "9am to 5pm, Monday to Friday.");
        assert_eq!(
            sent[1].1,
            "¿Te ha resultado útil esta respuesta?\n1. Sí\n2. No\nResponde 1 o 2."
        );
        app_probe.text(me, "1").await;
        assert_eq!(bodies(&app_probe, 3).await[2].1, "¡Gracias!");
        app_probe.text(me, "bicycles").await;
        let sent = bodies(&app_probe, 5).await;
        assert!(sent[3].1.starts_with("Lo siento"), "{:?}", sent[3]);
        assert_eq!(
            sent[4].1,
            "Intentaré conectarte con un agente. Por favor, espera."
        );
        let (_, ratings) = app_probe
            .app
            .get(&format!("/bot/{}/faq/rating/list", app_probe.bot))
            .await;
        assert_eq!(ratings["items"].as_array().map(Vec::len), Some(1));
        app_probe.stop().await;
    }
}

/// A flow that waits `timeout` seconds for a name, on an integration whose sessions last one
/// second: shorter than the wait, as Studio's one-hour default is longer than Chatwire's
/// 30-minute sessions.
async fn short_session_rig(backend: crate::common::Backend, timeout: &str) -> Rig {
    let flow = json!({"description": "long wait", "initial_state": "Trigger", "flags": {"allow_concurrent_calls": true}, "states": [
        {"name": "Trigger", "type": "trigger", "transitions": [{"event": "incomingMessage", "next": "ask"}], "properties": {}},
        {"name": "ask", "type": "send-and-wait-for-reply", "properties": {"body": "Your name?", "timeout": timeout},
         "transitions": [{"event": "incomingMessage", "next": "hi"}, {"event": "timeout", "next": "late"}, {"event": "deliveryFailure"}]},
        {"name": "hi", "type": "send-message", "properties": {"body": "Hi {{widgets.ask.inbound.Body}}"}, "transitions": [{"event": "sent"}, {"event": "failed"}]},
        {"name": "late", "type": "send-message", "properties": {"body": "Too slow!"}, "transitions": [{"event": "sent"}, {"event": "failed"}]}]});
    Rig::with(
        backend,
        json!({"model": "flow", "flow": flow}),
        json!({"sessionDuration": 1000}),
    )
    .await
}

#[tokio::test]
async fn a_reply_after_the_session_but_within_the_wait_continues_the_flow() {
    for backend in backends() {
        let rig = short_session_rig(backend, "30").await;
        rig.text("+15551110070", "start").await;
        assert_eq!(bodies(&rig, 1).await[0].1, "Your name?");
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        rig.text("+15551110070", "Ada").await;
        assert_eq!(
            bodies(&rig, 2).await[1].1,
            "Hi Ada",
            "{backend:?}: the wait goes on past sessionDuration"
        );
        rig.stop().await;
    }
}

#[tokio::test]
async fn a_wait_longer_than_the_session_still_times_out() {
    for backend in backends() {
        let rig = short_session_rig(backend, "2").await;
        rig.text("+15551110071", "start").await;
        let sent = bodies(&rig, 2).await;
        assert_eq!(
            (sent[0].1.as_str(), sent[1].1.as_str()),
            ("Your name?", "Too slow!"),
            "{backend:?}: the timer fires although the session was shorter"
        );
        rig.stop().await;
    }
}

#[tokio::test]
async fn send_message_goes_to_its_own_recipient_with_its_media() {
    let flow = json!({"description": "notify staff", "initial_state": "Trigger", "flags": {"allow_concurrent_calls": true}, "states": [
        {"name": "Trigger", "type": "trigger", "transitions": [{"event": "incomingMessage", "next": "notify"}], "properties": {}},
        {"name": "notify", "type": "send-message", "transitions": [{"event": "sent", "next": "thanks"}, {"event": "failed"}],
         "properties": {"from": "{{flow.channel.address}}", "to": "+15559990000", "body": "Lead from {{contact.channel.address}}: {{trigger.message.Body}}"}},
        {"name": "thanks", "type": "send-message", "transitions": [{"event": "sent"}, {"event": "failed"}],
         "properties": {"from": "{{flow.channel.address}}", "to": "{{contact.channel.address}}", "body": "Thanks! Here is our menu.", "media_url": "https://example.test/menu.png"}}]});
    for backend in backends() {
        let rig = Rig::with(backend, json!({"model": "flow", "flow": flow}), json!({})).await;
        rig.text("+15551110080", "I want a quote").await;
        let sent = rig.replies(2).await;
        let staff = sent
            .iter()
            .find(|m| m.to == "+15559990000")
            .expect("staff notified");
        assert_eq!(
            staff.body, "Lead from +15551110080: I want a quote",
            "{backend:?}"
        );
        let person: Vec<_> = sent.iter().filter(|m| m.to == "+15551110080").collect();
        assert_eq!(
            person.len(),
            1,
            "{backend:?}: the person gets only their own message"
        );
        assert_eq!(person[0].body, "Thanks! Here is our menu.");
        assert_eq!(
            person[0].num_media, "1",
            "{backend:?}: media_url goes out as media"
        );
        rig.stop().await;
    }
}
