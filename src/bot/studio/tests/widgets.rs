//! One test (or a few) per widget, on small flows written for the purpose.
use super::super::testkit::{bot, context, fixture, serve, Chat, Scratch};
use super::super::*;
use super::flow;
use crate::bot::Action;
use crate::store::{flows, Db};
use axum::extract::{Form, Query};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use std::collections::HashMap;

fn trigger(next: &str) -> Value {
    json!({"name": "Trigger", "type": "trigger", "transitions": [{"event": "incomingMessage", "next": next}], "properties": {}})
}

fn send(name: &str, body: &str, sent: Option<&str>, failed: Option<&str>) -> Value {
    json!({"name": name, "type": "send-message", "properties": {"body": body, "to": "{{contact.channel.address}}", "from": "{{flow.channel.address}}"},
           "transitions": [{"event": "sent", "next": sent}, {"event": "failed", "next": failed}]})
}

fn wait(
    name: &str,
    body: &str,
    timeout: Value,
    reply: Option<&str>,
    timed_out: Option<&str>,
    failure: Option<&str>,
) -> Value {
    json!({"name": name, "type": "send-and-wait-for-reply", "properties": {"body": body, "timeout": timeout},
           "transitions": [{"event": "incomingMessage", "next": reply}, {"event": "timeout", "next": timed_out}, {"event": "deliveryFailure", "next": failure}]})
}

async fn chat_for(ctx: &EngineContext, states: Value) -> (FlowEngine, BotConfig) {
    let f = flow(states);
    Flow::load(&f).unwrap_or_else(|e| panic!("test flow invalid: {e}"));
    (
        FlowEngine::new(ctx.clone()),
        bot("flow", json!({"flow": f})),
    )
}

async fn last_steps(db: &Db) -> Vec<Value> {
    let list = flows::list(db, "bot-1", None, None, 1).await.expect("list");
    flows::steps(db, list[0]["id"].as_str().expect("id"))
        .await
        .expect("steps")
}

#[tokio::test]
async fn send_message_renders_and_follows_sent() {
    let (ctx, _dir) = context(true).await;
    let (engine, bot) = chat_for(
        &ctx,
        json!([
            trigger("a"),
            send(
                "a",
                "You said {{trigger.message.Body}} from {{contact.channel.address}}",
                Some("b"),
                None
            ),
            send("b", "to {{flow.channel.address}}", None, None)
        ]),
    )
    .await;
    let mut chat = Chat::new(&engine, bot);
    let r = chat.say("hi there").await;
    assert_eq!(
        r.messages,
        vec!["You said hi there from +15550001111", "to +15559990000"]
    );
}

#[tokio::test]
async fn a_template_that_fails_sends_nothing_and_takes_failed() {
    let (ctx, scratch) = context(true).await;
    let (engine, bot) = chat_for(
        &ctx,
        json!([
            trigger("a"),
            send(
                "a",
                "Hi {{ trigger.message.Body | divided_by: 0 }}",
                None,
                Some("sorry")
            ),
            send("sorry", "Something went wrong", None, None)
        ]),
    )
    .await;
    let mut chat = Chat::new(&engine, bot);
    assert_eq!(chat.say("x").await.messages, vec!["Something went wrong"]);
    let steps = last_steps(&scratch.db).await;
    assert_eq!(steps[0]["transitionedTo"], json!("a"));
    assert!(
        steps[0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("body")),
        "{:?}",
        steps[0]
    );
    assert_eq!(steps[1]["name"], json!("failed"));
}

#[tokio::test]
async fn an_empty_body_is_a_failure_not_a_blank_message() {
    let (ctx, _dir) = context(true).await;
    let (engine, bot) = chat_for(
        &ctx,
        json!([
            trigger("a"),
            send("a", "{{flow.variables.nothing}}", None, None)
        ]),
    )
    .await;
    let mut chat = Chat::new(&engine, bot);
    assert!(chat.say("x").await.messages.is_empty());
}

#[tokio::test]
async fn send_and_wait_saves_the_reply_as_inbound() {
    let (ctx, _dir) = context(true).await;
    let (engine, bot) = chat_for(&ctx, json!([trigger("ask"), wait("ask", "Name?", json!("60"), Some("greet"), None, None),
        send("greet", "Hello {{widgets.ask.inbound.Body}} ({{widgets.ask.inbound.From}}), I asked \"{{widgets.ask.outbound.Body}}\"", None, None)])).await;
    let mut chat = Chat::new(&engine, bot);
    let r = chat.say("hi").await;
    assert_eq!(r.messages, vec!["Name?"]);
    assert_eq!(r.wake_at_ms, Some(chat.now + 60_000));
    assert_eq!(
        chat.say("Ana").await.messages,
        vec!["Hello Ana (+15550001111), I asked \"Name?\""]
    );
}

#[tokio::test]
async fn send_and_wait_timeout_follows_its_transition_numeric_timeout_too() {
    let (ctx, scratch) = context(true).await;
    let (engine, bot) = chat_for(
        &ctx,
        json!([
            trigger("ask"),
            wait("ask", "Still there?", json!(120), None, Some("bye"), None),
            send("bye", "Bye for now", None, None)
        ]),
    )
    .await;
    let mut chat = Chat::new(&engine, bot);
    let due = chat.say("hi").await.wake_at_ms.expect("wait");
    assert_eq!(due, chat.now + 120_000);
    let r = chat.wake(due).await;
    assert_eq!(r.messages, vec!["Bye for now"]);
    assert_eq!(last_steps(&scratch.db).await[1]["name"], json!("timeout"));
}

#[tokio::test]
async fn send_and_wait_with_a_broken_body_takes_delivery_failure() {
    let (ctx, _dir) = context(true).await;
    let f = flow(json!([
        trigger("ask"),
        wait("ask", "{% if %}", json!("60"), None, None, Some("oops")),
        send("oops", "Could not ask", None, None)
    ]));
    // A body that cannot even parse is refused on import...
    assert!(Flow::load(&f).is_err());
    // ...so the failure path is exercised with one that parses but fails to render.
    let (engine, bot) = chat_for(
        &ctx,
        json!([
            trigger("ask"),
            wait(
                "ask",
                "{{ trigger.message.Body | modulo: 0 }}",
                json!("60"),
                None,
                None,
                Some("oops")
            ),
            send("oops", "Could not ask", None, None)
        ]),
    )
    .await;
    let mut chat = Chat::new(&engine, bot);
    let r = chat.say("hi").await;
    assert_eq!(r.messages, vec!["Could not ask"]);
    assert_eq!(r.wake_at_ms, None);
}

fn split(transitions: Value) -> Value {
    json!({"name": "split", "type": "split-based-on", "properties": {"input": "{{trigger.message.Body}}"}, "transitions": transitions})
}

#[tokio::test]
async fn split_takes_the_first_matching_transition_else_no_match() {
    let (ctx, _dir) = context(true).await;
    let arg = json!(["{{trigger.message.Body}}"]);
    let states = json!([
        trigger("split"),
        split(json!([
            {"event": "noMatch", "next": "other"},
            {"event": "match", "next": "num", "conditions": [{"type": "greater_than", "value": "10", "arguments": arg}, {"type": "less_than", "value": "100", "arguments": arg}]},
            {"event": "match", "next": "hello", "conditions": [{"type": "starts_with", "value": "hello", "arguments": arg}]},
            {"event": "match", "next": "var", "conditions": [{"type": "equal_to", "value": "{{contact.channel.address}}", "arguments": arg}]},
            {"event": "match", "next": "blank", "conditions": [{"type": "is_blank", "value": "Is Blank", "arguments": ["{{widgets.none.parsed.x}}"]}]}
        ])),
        send("num", "between 10 and 100", None, None),
        send("hello", "greeting", None, None),
        send("var", "your own number", None, None),
        send("blank", "blank", None, None),
        send("other", "other", None, None)
    ]);
    for (input, expected) in [
        ("50", "between 10 and 100"),
        ("500", "blank"),
        ("HELLO you", "greeting"),
        (" +15550001111 ", "your own number"),
    ] {
        let (engine, bot) = chat_for(&ctx, states.clone()).await;
        let mut chat = Chat::new(&engine, bot);
        assert_eq!(
            chat.say(input).await.messages,
            vec![expected.to_owned()],
            "{input}"
        );
    }
    let no_blank = json!([
        trigger("split"),
        split(json!([{"event": "noMatch", "next": "other"},
        {"event": "match", "next": "num", "conditions": [{"type": "regex", "value": "^\\d+$", "arguments": arg}]}])),
        send("num", "digits", None, None),
        send("other", "other", None, None)
    ]);
    let (engine, bot) = chat_for(&ctx, no_blank.clone()).await;
    assert_eq!(
        Chat::new(&engine, bot).say("abc").await.messages,
        vec!["other"]
    );
    let (engine, bot) = chat_for(&ctx, no_blank).await;
    assert_eq!(
        Chat::new(&engine, bot).say("123").await.messages,
        vec!["digits"]
    );
}

#[tokio::test]
async fn set_variables_sets_flow_variables_in_order() {
    let (ctx, _dir) = context(true).await;
    let states = json!([trigger("vars"),
        {"name": "vars", "type": "set-variables", "transitions": [{"event": "next", "next": "show"}],
         "properties": {"variables": [{"key": "name", "value": "{{trigger.message.Body | upcase}}"}, {"key": "greeting", "value": "Hi {{flow.variables.name}}"}, {"key": "n", "value": 3}]}},
        send("show", "{{flow.variables.greeting}} x{{flow.variables.n | plus: 1}}", None, None)]);
    let (engine, bot) = chat_for(&ctx, states).await;
    assert_eq!(
        Chat::new(&engine, bot).say("ana").await.messages,
        vec!["Hi ANA x4"]
    );
}

/// The execution's record: (status, error, number of steps).
async fn last_execution(scratch: &Scratch) -> (Value, String, usize) {
    let list = flows::list(&scratch.db, "bot-1", None, None, 1)
        .await
        .expect("list");
    (
        list[0]["status"].clone(),
        list[0]["error"].as_str().unwrap_or("").to_owned(),
        last_steps(&scratch.db).await.len(),
    )
}

#[tokio::test]
async fn a_send_message_looping_on_itself_stops_after_ten_runs() {
    let (ctx, scratch) = context(true).await;
    let states = json!([
        trigger("spam"),
        send("spam", "again {{flow.sid}}", Some("spam"), None)
    ]);
    let (engine, bot) = chat_for(&ctx, states).await;
    let mut chat = Chat::new(&engine, bot);
    let r = chat.say("go").await;
    assert_eq!(
        r.messages.len(),
        run::MAX_WIDGET_RUNS as usize,
        "ten SMS, not a hundred"
    );
    assert_eq!(r.wake_at_ms, None);
    let (status, error, steps) = last_execution(&scratch).await;
    assert_eq!(status, json!("ended"));
    assert!(
        error.contains("\"spam\"") && error.contains("10 times in a row"),
        "{error}"
    );
    // Trigger->spam, nine spam->spam, and the stop.
    assert_eq!(steps, 11);
    // The conversation is not wedged: the next message starts again (and stops again).
    assert_eq!(chat.say("again").await.messages.len(), 10);
}

#[tokio::test]
async fn a_loop_through_several_widgets_stops_at_the_widget_limit() {
    let (ctx, scratch) = context(true).await;
    let states = json!([trigger("count"),
        {"name": "count", "type": "set-variables", "transitions": [{"event": "next", "next": "check"}],
         "properties": {"variables": [{"key": "n", "value": "{{flow.variables.n | plus: 1}}"}]}},
        {"name": "check", "type": "split-based-on", "properties": {"input": "{{flow.variables.n}}"},
         "transitions": [{"event": "noMatch", "next": "count"}, {"event": "match", "next": "done", "conditions": [{"type": "equal_to", "value": "-1", "arguments": ["{{flow.variables.n}}"]}]}]},
        send("done", "never", None, None)]);
    let (engine, bot) = chat_for(&ctx, states).await;
    let mut chat = Chat::new(&engine, bot);
    let r = tokio::time::timeout(std::time::Duration::from_secs(10), chat.say("go"))
        .await
        .expect("no hang");
    assert!(r.messages.is_empty());
    let (status, error, steps) = last_execution(&scratch).await;
    assert_eq!(status, json!("ended"));
    assert!(error.contains("\"count\""), "{error}");
    assert_eq!(steps, 21, "ten rounds of count and check, then the stop");
}

#[tokio::test]
async fn a_wait_between_runs_is_not_a_runaway() {
    let (ctx, _dir) = context(true).await;
    let states = json!([trigger("ask"),
        wait("ask", "Say stop", json!("60"), Some("check"), None, None),
        {"name": "check", "type": "split-based-on", "properties": {"input": "{{widgets.ask.inbound.Body}}"},
         "transitions": [{"event": "noMatch", "next": "ask"}, {"event": "match", "next": "bye", "conditions": [{"type": "equal_to", "value": "stop", "arguments": ["{{widgets.ask.inbound.Body}}"]}]}]},
        send("bye", "Bye", None, None)]);
    let (engine, bot) = chat_for(&ctx, states).await;
    let mut chat = Chat::new(&engine, bot);
    chat.say("hi").await;
    for _ in 0..12 {
        assert_eq!(chat.say("no").await.messages, vec!["Say stop"]);
    }
    assert_eq!(chat.say("stop").await.messages, vec!["Bye"]);
}

#[tokio::test]
async fn a_long_loop_of_distinct_widgets_stops_at_the_step_limit() {
    let (ctx, scratch) = context(true).await;
    // Twelve set-variables in a ring: no widget reaches ten runs before a hundred steps.
    let mut states = vec![trigger("v0")];
    for i in 0..12 {
        states.push(json!({"name": format!("v{i}"), "type": "set-variables",
            "transitions": [{"event": "next", "next": format!("v{}", (i + 1) % 12)}],
            "properties": {"variables": [{"key": "x", "value": "{{flow.variables.x | plus: 1}}"}]}}));
    }
    let (engine, bot) = chat_for(&ctx, Value::Array(states)).await;
    let r = Chat::new(&engine, bot).say("go").await;
    assert!(r.messages.is_empty());
    let (status, error, steps) = last_execution(&scratch).await;
    assert_eq!(status, json!("ended"));
    assert!(error.contains("100 steps"), "{error}");
    assert_eq!(steps, run::MAX_STEPS);
}

/// Local stand-ins for an API and for Twilio Functions.
async fn stand_in() -> String {
    let router = Router::new()
        .route("/lookup", get(|Query(q): Query<HashMap<String, String>>| async move { Json(json!({"name": q.get("who"), "items": [{"id": "a"}, {"id": "b"}]})) }))
        .route("/form", post(|Form(f): Form<HashMap<String, String>>| async move { Json(json!({"got": f})) }))
        .route("/json", post(|headers: axum::http::HeaderMap, body: String| async move {
            let parsed: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
            Json(json!({"type": headers.get("content-type").and_then(|v| v.to_str().ok()), "echo": parsed}))
        }))
        .route("/text", get(|| async { "plain words" }))
        .route("/boom", post(|| async { (axum::http::StatusCode::INTERNAL_SERVER_ERROR, Json(json!({"error": "boom"}))) }));
    serve(router).await
}

#[allow(clippy::too_many_arguments)]
fn http_widget(
    name: &str,
    method: &str,
    url: &str,
    content_type: &str,
    params: Value,
    body: Option<&str>,
    ok: &str,
    failed: &str,
) -> Value {
    json!({"name": name, "type": "make-http-request", "transitions": [{"event": "success", "next": ok}, {"event": "failed", "next": failed}],
           "properties": {"method": method, "url": url, "content_type": content_type, "parameters": params, "body": body}})
}

#[tokio::test]
async fn make_http_request_get_form_and_json() {
    let (ctx, _dir) = context(true).await;
    let base = stand_in().await;
    let states = json!([trigger("get"),
        http_widget("get", "GET", &format!("{base}/lookup"), "application/x-www-form-urlencoded;charset=utf-8", json!([{"key": "who", "value": "{{trigger.message.Body}}"}]), None, "form", "bad"),
        http_widget("form", "POST", &format!("{base}/form"), "application/x-www-form-urlencoded;charset=utf-8", json!([{"key": "name", "value": "{{widgets.get.parsed.name}}"}]), None, "json", "bad"),
        http_widget("json", "POST", &format!("{base}/json"), "application/json;charset=utf-8", json!([]), Some("{\"second\": \"{{widgets.get.parsed.items[1].id}}\"}"), "text", "bad"),
        http_widget("text", "GET", &format!("{base}/text"), "", json!([]), None, "show", "bad"),
        send("show", "{{widgets.get.status_code}} {{widgets.get.parsed.name}} {{widgets.form.parsed.got.name}} {{widgets.json.parsed.echo.second}} {{widgets.json.parsed.type}} [{{widgets.text.body}}]", None, None),
        send("bad", "failed", None, None)]);
    let (engine, bot) = chat_for(&ctx, states).await;
    let r = Chat::new(&engine, bot).say("Ana").await;
    assert_eq!(
        r.messages,
        vec!["200 Ana Ana b application/json;charset=utf-8 [plain words]"]
    );
}

#[tokio::test]
async fn make_http_request_failures_take_failed_with_the_response_kept() {
    let (ctx, scratch) = context(true).await;
    let base = stand_in().await;
    let states = json!([
        trigger("call"),
        http_widget(
            "call",
            "POST",
            &format!("{base}/boom"),
            "application/x-www-form-urlencoded",
            json!([]),
            None,
            "ok",
            "bad"
        ),
        send("ok", "ok", None, None),
        send(
            "bad",
            "failed with {{widgets.call.status_code}}: {{widgets.call.parsed.error}}",
            None,
            None
        )
    ]);
    let (engine, bot) = chat_for(&ctx, states).await;
    assert_eq!(
        Chat::new(&engine, bot).say("x").await.messages,
        vec!["failed with 500: boom"]
    );
    let steps = last_steps(&scratch.db).await;
    assert_eq!(steps[0]["error"], json!("HTTP status 500"));
}

#[tokio::test]
async fn private_addresses_are_refused_unless_allowed() {
    let (ctx, scratch) = context(false).await;
    let base = stand_in().await;
    let states = json!([
        trigger("call"),
        http_widget(
            "call",
            "GET",
            &format!("{base}/lookup"),
            "",
            json!([]),
            None,
            "ok",
            "bad"
        ),
        send("ok", "reached it", None, None),
        send("bad", "refused", None, None)
    ]);
    let (engine, bot) = chat_for(&ctx, states).await;
    assert_eq!(
        Chat::new(&engine, bot).say("x").await.messages,
        vec!["refused"]
    );
    let error = last_steps(&scratch.db).await[0]["error"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(error.contains("CHATWIRE_ALLOW_PRIVATE_HTTP"), "{error}");
}

#[tokio::test]
async fn run_function_posts_parameters_and_exposes_parsed() {
    let (ctx, _dir) = context(true).await;
    let base = stand_in().await;
    let states = json!([trigger("fn"),
        {"name": "fn", "type": "run-function", "transitions": [{"event": "success", "next": "ok"}, {"event": "fail", "next": "bad"}],
         "properties": {"url": format!("{base}/form"), "service_sid": "ZS1", "environment_sid": "ZE1", "function_sid": "ZH1",
                        "parameters": [{"key": "sign", "value": "{{trigger.message.Body}}"}]}},
        {"name": "missing", "type": "run-function", "transitions": [{"event": "success", "next": "ok"}, {"event": "fail", "next": "bad"}],
         "properties": {"url": ""}},
        send("ok", "sign={{widgets.fn.parsed.got.sign}}", Some("missing"), None),
        send("bad", "fail", None, None)]);
    let (engine, bot) = chat_for(&ctx, states).await;
    let r = Chat::new(&engine, bot).say("leo").await;
    // The second function has no URL (as in exported templates before deployment): it fails.
    assert_eq!(r.messages, vec!["sign=leo", "fail"]);
}

#[tokio::test]
async fn send_to_flex_hands_off_and_ends() {
    let (ctx, scratch) = context(true).await;
    let states = json!([trigger("flex"),
        {"name": "flex", "type": "send-to-flex", "transitions": [{"event": "callComplete"}, {"event": "failedToEnqueue"}, {"event": "callFailure"}],
         "properties": {"workflow": "WW1", "channel": "TC1", "attributes": "{\"name\": \"{{trigger.message.Body}}\"}"}}]);
    let (engine, bot) = chat_for(&ctx, states).await;
    let r = Chat::new(&engine, bot).say("Ana").await;
    assert!(
        matches!(r.actions.as_slice(), [Action::Handoff { reason: Some(reason), attributes: Some(a) }]
            if reason.contains("flex") && a["name"] == json!("Ana"))
    );
    assert_eq!(r.wake_at_ms, None);
    let steps = last_steps(&scratch.db).await;
    assert_eq!(steps[0]["context"]["attributes"]["name"], json!("Ana"));
}

#[tokio::test]
async fn voice_widgets_end_the_execution_with_the_reason() {
    let (ctx, scratch) = context(true).await;
    let states = json!([trigger("say"),
        {"name": "say", "type": "say-play", "transitions": [{"event": "audioComplete", "next": "after"}], "properties": {"say": "hello"}},
        send("after", "never", None, None)]);
    let (engine, bot) = chat_for(&ctx, states).await;
    let r = Chat::new(&engine, bot).say("x").await;
    assert!(r.messages.is_empty());
    let list = flows::list(&scratch.db, "bot-1", None, None, 1)
        .await
        .expect("list");
    assert!(list[0]["error"]
        .as_str()
        .is_some_and(|e| e.contains("say-play")));
}

#[tokio::test]
async fn the_pride_astrology_flow_runs_against_function_stand_ins() {
    let (ctx, _dir) = context(true).await;
    let base = serve(Router::new()
        .route("/horoscope", post(|Form(f): Form<HashMap<String, String>>| async move {
            Json(json!({"description": format!("A bright day, {}.", f.get("sign").cloned().unwrap_or_default()), "mood": "Sparkly"}))
        }))
        .route("/compatibility", post(|| async { Json(json!({"list": "Leo, Libra"})) }))
        .route("/celebrity", post(|| async { Json(json!({"name": "Lady Gaga", "description": "Born this way."})) })))
    .await;
    let mut f = fixture("pride-astrology");
    for s in f["states"].as_array_mut().expect("states") {
        let url = match s["name"].as_str() {
            Some("get_horoscope") => "horoscope",
            Some("get_compatibility") => "compatibility",
            Some("get_celebrity_match") => "celebrity",
            _ => continue,
        };
        s["properties"]["url"] = json!(format!("{base}/{url}"));
    }
    let engine = FlowEngine::new(ctx.clone());
    let mut chat = Chat::new(&engine, bot("flow", json!({"flow": f})));
    assert!(chat.say("hi").await.messages[0].starts_with("Hi there, tell us your sign"));
    let r = chat.say(" Sagittarius ").await;
    assert_eq!(
        r.messages[0],
        "Oh you're a  Sagittarius ? Please hold while we consult the stars ✨"
    );
    assert!(
        r.messages[1].contains("A bright day,  Sagittarius ."),
        "{:?}",
        r.messages
    );
    assert!(r.messages[1].contains("Leo, Libra"));
    assert_eq!(
        r.messages[2],
        "Would you like to see who your celebrity match is and what lesbian bar you should go to?"
    );
    let r = chat.say("Yes please").await;
    assert_eq!(
        r.messages[0],
        "Oh la la your match is Lady Gaga! Born this way."
    );
    assert!(r.messages[1].starts_with("Learn more about and support the last 21 Lesbian bars"));
    assert_eq!(r.wake_at_ms, None);
}

#[tokio::test]
async fn the_pride_astrology_flow_keeps_its_own_no_match_loop() {
    // After an unknown sign the flow asks again, but its split still tests the first answer
    // (`widgets.ask_sign.inbound.Body`), so on Twilio too every later answer gets the sign
    // dates again. Chatwire runs the flow as written, and the person is not stuck: the wait
    // times out after an hour and the execution ends.
    let (ctx, _dir) = context(true).await;
    let engine = FlowEngine::new(ctx.clone());
    let mut chat = Chat::new(
        &engine,
        bot("flow", json!({"flow": fixture("pride-astrology")})),
    );
    chat.say("hi").await;
    assert!(chat.say("Ophiuchus").await.messages[0].starts_with("If you need help with your sign"));
    let r = chat.say("leo").await;
    assert!(r.messages[0].starts_with("If you need help with your sign"));
    let r = chat.wake(r.wake_at_ms.expect("waits")).await;
    assert!(r.messages.is_empty());
    assert_eq!(r.wake_at_ms, None);
}
