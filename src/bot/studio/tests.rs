//! Engine-level tests: the fixtures import, the seed flow answers its three ways, timeouts fire
//! through the timer turn, executions survive a restart, REST-started executions.
use super::testkit::{bot, context, fixture, turn, Chat, CONTACT, T0};
use super::*;
use crate::bot::Action;
use crate::store::flows;
use serde_json::json;

mod liquid;
mod subflows;
mod widgets;

const FIXTURES: &[&str] = &[
    "frontline-airtable",
    "patient-appointment-management",
    "pride-astrology",
    "requestbin-minimal",
    "seed-do-you-like-bots",
    "webchat-send-to-flex",
];

#[test]
fn every_fixture_imports() {
    for name in FIXTURES {
        let flow = Flow::load(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(flow.initial_state, "Trigger", "{name}");
    }
}

/// A minimal flow from `(name, type, transitions, properties)` tuples, Trigger first.
pub(super) fn flow(states: Value) -> Value {
    json!({"description": "test", "initial_state": "Trigger", "flags": {"allow_concurrent_calls": true}, "states": states})
}

fn engine_bot(ctx: &EngineContext, flow: Value) -> (FlowEngine, BotConfig) {
    (
        FlowEngine::new(ctx.clone()),
        bot("flow", json!({"flow": flow})),
    )
}

#[tokio::test]
async fn the_seed_flow_answers_its_three_ways() {
    let (ctx, _dir) = context(true).await;
    for (answer, emoji) in [
        ("yes", "🤖"),
        ("  No ", "👽"),
        ("maybe later", "👻"),
        ("YES", "🤖"),
    ] {
        let (engine, bot) = engine_bot(&ctx, fixture("seed-do-you-like-bots"));
        let mut chat = Chat::new(&engine, bot);
        let first = chat.say("hello").await;
        assert_eq!(first.messages, vec!["Hi, do you like bots?"]);
        assert_eq!(
            first.wake_at_ms,
            Some(chat.now + 3_600_000),
            "waits an hour"
        );
        let second = chat.say(answer).await;
        assert_eq!(second.messages, vec![emoji.to_owned()], "answer {answer:?}");
        assert_eq!(second.wake_at_ms, None, "the execution ended");
        assert!(chat.state["studio"]["execution"].is_null());
    }
}

#[tokio::test]
async fn a_message_after_the_flow_ended_starts_a_new_execution() {
    let (ctx, scratch) = context(true).await;
    let (engine, bot) = engine_bot(&ctx, fixture("seed-do-you-like-bots"));
    let mut chat = Chat::new(&engine, bot);
    chat.say("hi").await;
    chat.say("yes").await;
    assert_eq!(
        chat.say("hi again").await.messages,
        vec!["Hi, do you like bots?"]
    );
    let list = flows::list(&scratch.db, "bot-1", None, None, 10)
        .await
        .expect("list");
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["status"], json!("active"));
    assert_eq!(list[1]["status"], json!("ended"));
}

#[tokio::test]
async fn the_timeout_fires_on_the_timer_turn_even_without_an_answer() {
    let (ctx, _dir) = context(true).await;
    let (engine, bot) = engine_bot(&ctx, fixture("webchat-send-to-flex"));
    let mut chat = Chat::new(&engine, bot);
    let r = chat.say("hello").await;
    assert_eq!(
        r.messages[0],
        "Hello! In order for us to assist you today, please answer a few questions."
    );
    assert!(r.messages[1].starts_with("Please select a reason"));
    let r = chat.say("Parking").await;
    assert_eq!(r.messages, vec!["Are you a new or existing patient?"]);
    let r = chat.say("new").await;
    assert_eq!(r.messages, vec!["Please enter your first name."]);
    let r = chat.say("Ana").await;
    assert_eq!(r.messages, vec!["Please enter your last name."]);
    let deadline = r.wake_at_ms.expect("waits for the last name");
    assert_eq!(deadline, chat.now + 1_800_000);
    // A timer that comes early (the conversation moved on) changes nothing.
    let early = chat.wake(deadline - 1).await;
    assert!(early.messages.is_empty());
    assert_eq!(early.wake_at_ms, Some(deadline));
    // The person never answers: the timeout transition sends the thank-you and hands off.
    let r = chat.wake(deadline).await;
    assert_eq!(r.messages, vec!["Thank you! Please hold on for just a few moments while I connect you with someone who can help."]);
    assert!(matches!(r.actions.as_slice(), [Action::Handoff { .. }]));
    assert_eq!(r.wake_at_ms, None);
}

#[tokio::test]
async fn a_late_message_first_plays_the_timeout() {
    let (ctx, _dir) = context(true).await;
    let (engine, bot) = engine_bot(&ctx, fixture("seed-do-you-like-bots"));
    let mut chat = Chat::new(&engine, bot);
    chat.say("hi").await;
    // The timer never ran (say the process was down); the answer comes two hours later. The
    // old wait timed out (its timeout leads nowhere), so the message starts a new execution.
    chat.now += 7_200_000;
    let r = chat.say("yes").await;
    assert_eq!(r.messages, vec!["Hi, do you like bots?"]);
}

#[tokio::test]
async fn a_restart_resumes_from_the_stored_state() {
    let (ctx, _dir) = context(true).await;
    let (engine, bot) = engine_bot(&ctx, fixture("seed-do-you-like-bots"));
    let first = engine
        .respond(&turn(&bot, "hi", &Value::Null, T0))
        .await
        .expect("turn");
    // A new engine (a restarted process) with only the stored state.
    let (engine2, _) = engine_bot(&ctx, fixture("seed-do-you-like-bots"));
    let second = engine2
        .respond(&turn(&bot, "no", &first.state, T0 + 5_000))
        .await
        .expect("turn");
    assert_eq!(second.messages, vec!["👽"]);
}

#[tokio::test]
async fn steps_are_recorded_like_studio_steps() {
    let (ctx, scratch) = context(true).await;
    let (engine, bot) = engine_bot(&ctx, fixture("seed-do-you-like-bots"));
    let mut chat = Chat::new(&engine, bot);
    chat.say("hi").await;
    chat.say("yes").await;
    let list = flows::list(&scratch.db, "bot-1", Some("conv-1"), None, 10)
        .await
        .expect("list");
    let id = list[0]["id"].as_str().expect("id");
    let steps = flows::steps(&scratch.db, id).await.expect("steps");
    let path: Vec<(String, String, String)> = steps
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap_or("").into(),
                s["transitionedFrom"].as_str().unwrap_or("").into(),
                s["transitionedTo"].as_str().unwrap_or("").into(),
            )
        })
        .collect();
    let expected = [
        ("incomingConversationMessage", "Trigger", "send_and_reply_1"),
        ("incomingMessage", "send_and_reply_1", "split_1"),
        ("match", "split_1", "send_message_2"),
        ("sent", "send_message_2", "Ended"),
    ];
    assert_eq!(
        path,
        expected.map(|(a, b, c)| (a.to_owned(), b.to_owned(), c.to_owned()))
    );
    assert_eq!(
        steps[0]["context"]["outbound"]["Body"],
        json!("Hi, do you like bots?")
    );
    let exec = flows::fetch(&scratch.db, "bot-1", id)
        .await
        .expect("fetch")
        .expect("exists");
    assert_eq!(exec["status"], json!("ended"));
    assert_eq!(
        exec["context"]["widgets"]["send_and_reply_1"]["inbound"]["Body"],
        json!("yes")
    );
    assert_eq!(exec["contactAddress"], json!(CONTACT));
}

#[tokio::test]
async fn an_execution_ended_through_the_api_is_dropped() {
    let (ctx, scratch) = context(true).await;
    let (engine, bot) = engine_bot(&ctx, fixture("seed-do-you-like-bots"));
    let mut chat = Chat::new(&engine, bot);
    chat.say("hi").await;
    let id = chat.state["studio"]["execution"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    assert!(flows::end(&scratch.db, "bot-1", &id, chat.now)
        .await
        .expect("end"));
    // The next message does not answer the old question; it starts over.
    assert_eq!(
        chat.say("yes").await.messages,
        vec!["Hi, do you like bots?"]
    );
}

#[tokio::test]
async fn a_new_execution_supersedes_the_contacts_other_one() {
    let (ctx, scratch) = context(true).await;
    let (engine, bot) = engine_bot(&ctx, fixture("seed-do-you-like-bots"));
    let mut old = Chat::new(&engine, bot.clone());
    old.say("hi").await;
    // The same contact in a new conversation (the session expired) starts a new execution.
    let mut new = Chat::new(&engine, bot);
    new.now = old.now + 10;
    new.say("hi").await;
    let all = flows::list(&scratch.db, "bot-1", None, None, 10)
        .await
        .expect("list");
    let active: Vec<_> = all
        .iter()
        .filter(|e| e["status"] == json!("active"))
        .collect();
    assert_eq!(active.len(), 1, "one active execution per contact per flow");
    assert_eq!(
        old.say("yes").await.messages,
        vec!["Hi, do you like bots?"],
        "the superseded one is gone"
    );
}

#[tokio::test]
async fn a_rest_triggered_execution_uses_flow_data() {
    let (ctx, scratch) = context(true).await;
    let stand_in = super::testkit::serve(axum::Router::new().route(
        "/callback",
        axum::routing::post(|body: String| async move {
            axum::Json(json!({"message": format!("got {} bytes", body.len())}))
        }),
    ))
    .await;
    let mut f = fixture("requestbin-minimal");
    for s in f["states"].as_array_mut().expect("states") {
        if s["name"] == "callback" {
            s["properties"]["url"] = json!(format!("{stand_in}/callback"));
        }
    }
    let (engine, bot) = engine_bot(&ctx, f);
    let start = turn(&bot, "", &Value::Null, T0);
    let reply = start_execution(
        &ctx,
        &start,
        json!({"samplegiven": "yes", "campaignname": "spring"}),
    )
    .await
    .expect("started");
    assert_eq!(reply.messages, vec!["Hi, how may I address you?"]);
    assert!(reply.wake_at_ms.is_some());
    // A second start towards the same contact is refused while the first waits.
    let again = start_execution(&ctx, &turn(&bot, "", &reply.state, T0 + 1), json!({})).await;
    assert!(matches!(again, Err(StartError::AlreadyActive(_))));
    let other_conversation =
        start_execution(&ctx, &turn(&bot, "", &Value::Null, T0 + 1), json!({})).await;
    assert!(matches!(
        other_conversation,
        Err(StartError::AlreadyActive(_))
    ));
    let r = engine
        .respond(&turn(&bot, "Ana", &reply.state, T0 + 2_000))
        .await
        .expect("turn");
    assert!(
        r.messages[0]
            .starts_with("Pleasure to meet you, Ana. HTTP response from callback was: \"got "),
        "{:?}",
        r.messages
    );
    let exec = flows::list(&scratch.db, "bot-1", None, None, 1)
        .await
        .expect("list");
    assert_eq!(exec[0]["trigger"], json!("incomingRequest"));
    assert_eq!(exec[0]["data"]["campaignname"], json!("spring"));
}

#[tokio::test]
async fn a_flow_that_only_answers_rest_requests_ignores_messages() {
    let (ctx, _dir) = context(true).await;
    let (engine, bot) = engine_bot(&ctx, fixture("patient-appointment-management"));
    let mut chat = Chat::new(&engine, bot);
    let r = chat.say("hello?").await;
    assert!(r.messages.is_empty());
    assert_eq!(r.wake_at_ms, None);
}

#[tokio::test]
async fn a_bot_without_a_valid_flow_is_a_configuration_error() {
    let (ctx, _dir) = context(true).await;
    let engine = FlowEngine::new(ctx.clone());
    let missing = bot("flow", json!({}));
    assert!(matches!(
        engine
            .respond(&turn(&missing, "hi", &Value::Null, T0))
            .await,
        Err(EngineError::Config(_))
    ));
    let broken = bot(
        "flow",
        json!({"flow": {"states": [], "initial_state": "Trigger"}}),
    );
    assert!(matches!(
        engine.respond(&turn(&broken, "hi", &Value::Null, T0)).await,
        Err(EngineError::Config(_))
    ));
}

#[tokio::test]
async fn unreadable_state_starts_afresh() {
    let (ctx, _dir) = context(true).await;
    let (engine, bot) = engine_bot(&ctx, fixture("seed-do-you-like-bots"));
    for junk in [
        json!("text"),
        json!({"studio": 5}),
        json!({"studio": {"execution": {"id": 1}}}),
        json!({"other": "engine"}),
    ] {
        let r = engine
            .respond(&turn(&bot, "hi", &junk, T0))
            .await
            .expect("turn");
        assert_eq!(r.messages, vec!["Hi, do you like bots?"], "{junk}");
    }
}

#[test]
fn validation_names_the_state_and_field() {
    let cases = [
        (json!([{"name": "Trigger", "type": "trigger", "transitions": [{"event": "incomingMessage", "next": "a"}]},
                {"name": "a", "type": "send-message", "transitions": [], "properties": {"body": "x"}},
                {"name": "a", "type": "send-message", "transitions": [], "properties": {"body": "y"}}]),
         "state \"a\": name: duplicate state name"),
        (json!([{"name": "Trigger", "type": "trigger", "transitions": [{"event": "incomingMessage", "next": "nowhere"}]}]),
         "state \"Trigger\": transitions[0].next: no state named \"nowhere\""),
        (json!([{"name": "Trigger", "type": "trigger", "transitions": []},
                {"name": "x", "type": "send-fax", "transitions": []}]),
         "state \"x\": type: unknown widget type \"send-fax\""),
        (json!([{"name": "Trigger", "type": "trigger", "transitions": []},
                {"name": "s", "type": "split-based-on", "properties": {"input": "{{x}}"},
                 "transitions": [{"event": "match", "conditions": [{"type": "sounds_like", "value": "x", "arguments": ["{{x}}"]}]}]}]),
         "state \"s\": transitions[0].conditions[0].type: unknown condition type \"sounds_like\""),
        (json!([{"name": "Trigger", "type": "trigger", "transitions": []},
                {"name": "m", "type": "send-message", "properties": {"body": "x"}, "transitions": [{"event": "delivered"}]}]),
         "state \"m\": transitions[0].event: \"delivered\" is not an event of send-message"),
        (json!([{"name": "Trigger", "type": "trigger", "transitions": []},
                {"name": "m", "type": "send-message", "properties": {"body": "Hi {{ name"}, "transitions": []}]),
         "state \"m\": properties.body:"),
        (json!([{"name": "Trigger", "type": "trigger", "transitions": []},
                {"name": "s", "type": "split-based-on", "properties": {}, "transitions": []}]),
         "state \"s\": properties: missing field `input`"),
        (json!([{"name": "Trigger", "type": "trigger", "transitions": []},
                {"name": "h", "type": "make-http-request", "properties": {"method": "GET"}, "transitions": []}]),
         "state \"h\": properties: missing field `url`"),
        (json!([{"name": "Start", "type": "send-message", "properties": {"body": "x"}, "transitions": []}]),
         "flow: initial_state: no state named \"Trigger\""),
        (json!([{"type": "trigger", "transitions": []}]),
         "states[0]: missing field `name`"),
    ];
    for (states, expected) in cases {
        let err = Flow::load(&flow(states)).expect_err(expected);
        assert!(err.contains(expected), "expected {expected:?} in {err:?}");
    }
    assert!(Flow::load(&json!([1, 2])).is_err());
    assert!(Flow::load(&json!({"states": []}))
        .expect_err("no initial")
        .contains("initial_state"));
}

/// A flow that echoes the SIDs Studio exposes, waits, and echoes the reply's.
fn sid_flow() -> Value {
    flow(json!([
        {"name": "Trigger", "type": "trigger", "transitions": [{"event": "incomingMessage", "next": "ask"}], "properties": {}},
        {"name": "ask", "type": "send-and-wait-for-reply",
         "properties": {"body": "msg={{trigger.message.MessageSid}} acct={{trigger.message.AccountSid}}", "timeout": "60"},
         "transitions": [{"event": "incomingMessage", "next": "echo"}, {"event": "timeout"}, {"event": "deliveryFailure"}]},
        {"name": "echo", "type": "send-message",
         "properties": {"body": "in={{widgets.ask.inbound.MessageSid}} out={{widgets.ask.outbound.Sid}}"},
         "transitions": [{"event": "sent"}, {"event": "failed"}]}
    ]))
}

fn field<'a>(text: &'a str, key: &str) -> &'a str {
    text.split(' ')
        .find_map(|part| part.strip_prefix(&format!("{key}=")))
        .unwrap_or("")
}

#[tokio::test]
async fn message_and_account_sids_come_from_the_turn() {
    let (ctx, _dir) = context(true).await;
    let (engine, bot) = engine_bot(&ctx, sid_flow());
    let mut first = turn(&bot, "hi", &Value::Null, T0);
    first.message_sid = Some("SM11111111111111111111111111111111".into());
    first.account_sid = Some("AC22222222222222222222222222222222".into());
    let r = engine.respond(&first).await.expect("turn");
    assert_eq!(
        r.messages,
        vec!["msg=SM11111111111111111111111111111111 acct=AC22222222222222222222222222222222"]
    );
    let mut second = turn(&bot, "yes", &r.state, T0 + 1000);
    second.message_sid = Some("SM33333333333333333333333333333333".into());
    let r = engine.respond(&second).await.expect("turn");
    assert!(
        r.messages[0].starts_with("in=SM33333333333333333333333333333333 out=SM"),
        "{:?}",
        r.messages
    );
}

#[tokio::test]
async fn sids_are_never_empty_even_when_the_turn_lacks_them() {
    let (ctx, _dir) = context(true).await;
    let (engine, bot) = engine_bot(&ctx, sid_flow());
    let mut chat = Chat::new(&engine, bot);
    let first = chat.say("hi").await.messages[0].clone();
    let second = chat.say("yes").await.messages[0].clone();
    let sid_shaped = |s: &str, prefix: &str| {
        s.len() == 34 && s.starts_with(prefix) && s[2..].chars().all(|c| c.is_ascii_hexdigit())
    };
    assert!(sid_shaped(field(&first, "msg"), "SM"), "{first}");
    assert!(sid_shaped(field(&first, "acct"), "AC"), "{first}");
    assert!(sid_shaped(field(&second, "in"), "SM"), "{second}");
    assert!(sid_shaped(field(&second, "out"), "SM"), "{second}");
    assert_ne!(
        field(&first, "msg"),
        field(&second, "in"),
        "one per message"
    );
    // The account placeholder is the bot's, the same on every turn.
    let again = chat.say("hi").await.messages[0].clone();
    assert_eq!(field(&again, "acct"), field(&first, "acct"));
}

#[test]
fn voice_widgets_import_with_a_warning() {
    let f = Flow::load(&flow(json!([
        {"name": "Trigger", "type": "trigger", "transitions": [{"event": "incomingMessage", "next": "hi"}, {"event": "incomingCall", "next": "greet"}], "properties": {}},
        {"name": "hi", "type": "send-message", "properties": {"body": "Hi"}, "transitions": [{"event": "sent"}]},
        {"name": "greet", "type": "say-play", "properties": {"say": "Hello"}, "transitions": [{"event": "audioComplete", "next": "menu"}]},
        {"name": "menu", "type": "gather-input-on-call", "properties": {}, "transitions": [{"event": "keypress"}]}
    ])))
    .expect("a flow with voice widgets imports");
    let warnings = f.warnings();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(warnings[0].contains("\"greet\"") && warnings[0].contains("say-play"));
    assert!(warnings[1].contains("gather-input-on-call"));
    let frontline = Flow::load(&fixture("frontline-airtable")).expect("imports");
    assert!(
        !frontline.warnings().is_empty(),
        "the fixture's voice path is reported"
    );
    let seed = Flow::load(&fixture("seed-do-you-like-bots")).expect("imports");
    assert!(seed.warnings().is_empty());
}
