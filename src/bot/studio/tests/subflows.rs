//! `run-subflow`: a flow bot found by the Twilio flow SID in its `meta.flowSid`, parameters
//! in as `trigger.parent.parameters`, `flow.variables` back as `widgets.NAME.KEY`, waits inside
//! the subflow, and `failed` when there is no such flow.
use super::super::testkit::{bot, context, Chat};
use super::super::*;
use super::flow;
use crate::store::schema::BOT;
use crate::store::{flows, Db, Param};
use serde_json::json;

const SUB_SID: &str = "FW0000000000000000000000000000abcd";

/// Stores a flow bot with `meta` (the subflow a parent names).
async fn store_bot(db: &Db, id: &str, flow: &Value, meta: Value) {
    db.insert_resource(
        &BOT,
        id,
        &[
            ("model", Param::from("flow")),
            ("flow", Param::from(flow.to_string())),
            ("meta", Param::from(meta.to_string())),
        ],
        crate::bot::studio::testkit::T0,
    )
    .await
    .expect("bot");
}

fn parent(flow_sid: &str) -> Value {
    flow(json!([
        {"name": "Trigger", "type": "trigger", "transitions": [{"event": "incomingMessage", "next": "lookup"}], "properties": {}},
        {"name": "lookup", "type": "run-subflow",
         "properties": {"flow_sid": flow_sid, "flow_revision": "LatestPublished",
                        "parameters": [{"key": "name", "value": "{{trigger.message.Body | capitalize}}"}]},
         "transitions": [{"event": "completed", "next": "done"}, {"event": "failed", "next": "oops"}]},
        {"name": "done", "type": "send-message",
         "properties": {"body": "Parent got {{widgets.lookup.greeting}} ({{widgets.lookup.color}}) in {{flow.flow_sid}}"},
         "transitions": [{"event": "sent"}]},
        {"name": "oops", "type": "send-message",
         "properties": {"body": "Subflow failed: {{widgets.lookup.error}}"},
         "transitions": [{"event": "sent"}]}
    ]))
}

/// Greets with the parameter, asks a question, returns both as variables.
fn subflow() -> Value {
    flow(json!([
        {"name": "Trigger", "type": "trigger", "transitions": [{"event": "incomingParent", "next": "hello"}], "properties": {}},
        {"name": "hello", "type": "send-and-wait-for-reply",
         "properties": {"body": "Hi {{trigger.parent.parameters.name}} (you said {{trigger.message.Body}}) from {{flow.flow_sid}}. Favourite color?", "timeout": "60"},
         "transitions": [{"event": "incomingMessage", "next": "keep"}, {"event": "timeout"}, {"event": "deliveryFailure"}]},
        {"name": "keep", "type": "set-variables",
         "properties": {"variables": [
             {"key": "greeting", "value": "hello {{trigger.parent.parameters.name}}"},
             {"key": "color", "value": "{{widgets.hello.inbound.Body}}"}]},
         "transitions": [{"event": "next"}]}
    ]))
}

#[tokio::test]
async fn run_subflow_passes_parameters_in_and_variables_back() {
    let (ctx, scratch) = context(true).await;
    store_bot(
        &scratch.db,
        "sub-bot",
        &subflow(),
        json!({"flowSid": SUB_SID}),
    )
    .await;
    let engine = FlowEngine::new(ctx.clone());
    let parent_bot = bot(
        "flow",
        json!({"flow": parent(SUB_SID), "meta": {"flowSid": "FW00000000000000000000000000000001"}}),
    );
    let mut chat = Chat::new(&engine, parent_bot);
    let r = chat.say("ana").await;
    assert_eq!(
        r.messages,
        vec![format!(
            "Hi Ana (you said ana) from {SUB_SID}. Favourite color?"
        )]
    );
    assert!(r.wake_at_ms.is_some(), "the subflow waits for the reply");
    assert_eq!(
        chat.state["studio"]["execution"]["frames"][0]["widget"],
        json!("lookup")
    );
    let r = chat.say("green").await;
    assert_eq!(
        r.messages,
        vec!["Parent got hello Ana (green) in FW00000000000000000000000000000001"]
    );
    assert_eq!(
        r.wake_at_ms, None,
        "the parent ended after the subflow returned"
    );
    let list = flows::list(&scratch.db, "bot-1", None, None, 1)
        .await
        .expect("list");
    let steps = flows::steps(&scratch.db, list[0]["id"].as_str().expect("id"))
        .await
        .expect("steps");
    let names: Vec<(&str, &str)> = steps
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap_or(""),
                s["transitionedTo"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            ("incomingMessage", "lookup"),
            ("incomingParent", "hello"),
            ("incomingMessage", "keep"),
            ("next", "Ended"),
            ("completed", "done"),
            ("sent", "Ended"),
        ]
    );
}

#[tokio::test]
async fn a_subflow_can_be_named_by_bot_id_too() {
    let (ctx, scratch) = context(true).await;
    store_bot(&scratch.db, "sub-bot", &subflow(), json!({})).await;
    let engine = FlowEngine::new(ctx.clone());
    let mut chat = Chat::new(&engine, bot("flow", json!({"flow": parent("sub-bot")})));
    assert!(chat.say("bo").await.messages[0].starts_with("Hi Bo (you said bo) from sub-bot."));
    assert_eq!(
        chat.say("red").await.messages,
        vec!["Parent got hello Bo (red) in bot-1"]
    );
}

#[tokio::test]
async fn an_unknown_subflow_takes_failed() {
    let (ctx, _scratch) = context(true).await;
    let engine = FlowEngine::new(ctx.clone());
    let mut chat = Chat::new(&engine, bot("flow", json!({"flow": parent(SUB_SID)})));
    let r = chat.say("x").await;
    assert_eq!(r.messages.len(), 1);
    assert!(
        r.messages[0].starts_with("Subflow failed: ") && r.messages[0].contains(SUB_SID),
        "{:?}",
        r.messages
    );
}

#[tokio::test]
async fn a_subflow_that_fails_hands_its_parent_failed() {
    let (ctx, scratch) = context(true).await;
    let broken = flow(json!([
        {"name": "Trigger", "type": "trigger", "transitions": [{"event": "incomingParent", "next": "call"}], "properties": {}},
        {"name": "call", "type": "say-play", "properties": {"say": "hi"}, "transitions": [{"event": "audioComplete"}]}
    ]));
    store_bot(&scratch.db, "sub-bot", &broken, json!({"flowSid": SUB_SID})).await;
    let engine = FlowEngine::new(ctx.clone());
    let mut chat = Chat::new(&engine, bot("flow", json!({"flow": parent(SUB_SID)})));
    let r = chat.say("x").await;
    assert!(
        r.messages[0].starts_with("Subflow failed: ") && r.messages[0].contains("say-play"),
        "{:?}",
        r.messages
    );
}
