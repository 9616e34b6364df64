//! Which flow a `run-subflow` widget runs.
//!
//! A Studio export names its subflow by Twilio flow SID (`"flow_sid": "FW..."`), which means
//! nothing to Chatwire until a bot says which flow that was: a flow bot (`model: "flow"`)
//! whose `meta.flowSid` is that SID is the subflow, so a set of flows exported together keeps
//! working unchanged once each is imported as a bot with its SID in `meta.flowSid`. A
//! `flow_sid` that is a Chatwire bot id works too, for flows written by hand. The revision
//! (`flow_revision`) is ignored: a bot has one flow.
use super::flow::Flow;
use crate::bot::EngineStore;
use serde_json::Value;

/// The bot meta key holding the Twilio flow SID a bot's flow was exported from.
pub const META_KEY: &str = "flowSid";

/// The Twilio flow SID in a bot's `meta`, if any.
pub fn sid_of(meta: Option<&Value>) -> Option<String> {
    meta.and_then(|m| m.get(META_KEY))
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// The flow bot that `flow_sid` names, with its flow; `None` when there is none.
pub async fn resolve(
    store: &dyn EngineStore,
    flow_sid: &str,
) -> Result<Option<(String, Flow)>, String> {
    if flow_sid.is_empty() {
        return Ok(None);
    }
    let bots = store
        .flow_bots(flow_sid)
        .await
        .map_err(|e| format!("looking up the subflow: {e}"))?;
    let mut by_id = None;
    for bot in bots {
        let sid = sid_of(bot.meta.as_ref());
        if sid.as_deref() == Some(flow_sid) {
            return parse(&bot.id, bot.flow.as_deref(), sid).map(|f| Some((bot.id, f)));
        }
        if bot.id == flow_sid {
            by_id = Some((bot.id, bot.flow, sid));
        }
    }
    match by_id {
        Some((id, flow, sid)) => parse(&id, flow.as_deref(), sid).map(|f| Some((id, f))),
        None => Ok(None),
    }
}

/// The flow of bot `bot_id` (a subflow an execution is inside).
pub async fn load(store: &dyn EngineStore, bot_id: &str) -> Result<Flow, String> {
    let bot = store
        .flow_bot(bot_id)
        .await
        .map_err(|e| format!("loading the subflow: {e}"))?
        .ok_or_else(|| format!("the subflow bot {bot_id} is gone"))?;
    parse(bot_id, bot.flow.as_deref(), sid_of(bot.meta.as_ref()))
}

fn parse(bot_id: &str, flow: Option<&str>, sid: Option<String>) -> Result<Flow, String> {
    let value: Value = flow
        .and_then(|f| serde_json::from_str(f).ok())
        .filter(|v: &Value| !v.is_null())
        .ok_or_else(|| format!("the subflow bot {bot_id} has no flow"))?;
    let mut flow =
        Flow::load(&value).map_err(|e| format!("the subflow bot {bot_id}'s flow: {e}"))?;
    flow.sid = sid;
    Ok(flow)
}
