//! The Studio flow engine (`model: "flow"`): runs a Twilio Studio flow, exported from the
//! console and stored unchanged in the bot's `flow` field, without Twilio.
//!
//! A message from a contact without an active execution starts one at the `Trigger` state
//! (`incomingMessage`; a flow built for Conversations, whose `incomingMessage` leads nowhere but
//! whose `incomingConversationMessage` does, starts there instead, since to Chatwire every SMS
//! or WhatsApp conversation is both). A message to an execution waiting in a
//! `send-and-wait-for-reply` resumes it through `incomingMessage`; the pipeline's timer turn
//! (empty text at [`Reply::wake_at_ms`]) fires the widget's `timeout` transition even if the
//! person never answers. A message that arrives after the deadline first plays the timeout,
//! as Twilio would have at the time, and then meets whatever the flow does next. An API call
//! ([`start_execution`]) starts one towards a contact through `incomingRequest` with `flow.data`.
//!
//! The execution lives in the engine state the pipeline stores with every reply, so a restart
//! resumes it; its public record (`store::flows`) is written through
//! [`crate::bot::EngineStore`] for the API (see `record.rs`). A contact
//! has at most one active execution per flow: a new one ends the others, and an execution
//! ended through the API is dropped on its next turn.
//!
//! Widgets and what Chatwire does with them: see `run.rs` (and the README's table). Limits worth
//! knowing: messages go out from the integration's number (`from` is rendered but not used);
//! `deliveryFailure` only follows a body that fails to render, because delivery happens later,
//! in the outbox; `send-to-flex` hands the conversation to Chatwire's human inbox and ends the
//! execution; voice widgets end the execution (or take `failed`) with the reason recorded, and
//! a flow that has some imports with a warning.
//! `run-subflow` runs another flow bot's flow (see `subflow.rs` and `run.rs`).
//!
//! Bot settings read here: `flow` (the export) and `meta.flowSid`, the Twilio flow SID the flow
//! was exported from (`flow.flow_sid` in Liquid, and how other flows' `run-subflow` find it).
//! `trigger.message.MessageSid`/`AccountSid` are the inbound message's when the turn carries
//! them, else placeholders of the same shape; `widgets.NAME.outbound.Sid` is always a
//! placeholder (see `run.rs`).
pub mod conditions;
pub mod filters;
pub mod flow;
pub mod http;
mod record;
pub mod run;
pub mod subflow;
pub mod template;
#[cfg(test)]
pub(crate) mod testkit;
pub mod validate;

use super::{BotConfig, BotEngine, ChannelKind, EngineContext, EngineError, Reply, Turn};
use async_trait::async_trait;
use flow::Flow;
use record::{is_ended, record};
use run::{Execution, Outcome, Runner};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::sync::Arc;

/// What the engine keeps between turns.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct FlowState {
    /// The active execution, if any.
    pub execution: Option<Execution>,
}

impl FlowState {
    fn from_turn(state: &Value) -> Self {
        // Anything unreadable (another engine's state after a model change) starts afresh
        // rather than wedging the conversation.
        state
            .get("studio")
            .and_then(|s| serde_json::from_value(s.clone()).ok())
            .unwrap_or_default()
    }

    fn to_value(&self) -> Value {
        json!({ "studio": self })
    }
}

/// The Studio flow engine.
pub struct FlowEngine {
    ctx: EngineContext,
}

impl FlowEngine {
    pub fn new(ctx: EngineContext) -> Self {
        Self { ctx }
    }
}

/// The bot's flow, validated.
pub fn load(bot: &BotConfig) -> Result<Flow, EngineError> {
    let value = bot
        .raw
        .get("flow")
        .filter(|v| !v.is_null())
        .ok_or_else(|| EngineError::Config("the bot has no \"flow\"".into()))?;
    let mut flow = Flow::load(value).map_err(EngineError::Config)?;
    flow.sid = subflow::sid_of(bot.raw.get("meta"));
    Ok(flow)
}

/// Why an execution could not be started through `incomingRequest`.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Twilio's 20409: one active execution per contact per flow.
    #[error("an execution ({0}) is already active for this contact")]
    AlreadyActive(String),
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// Starts an execution towards `turn.contact` through the `incomingRequest` trigger, with
/// `data` as `flow.data` (Studio's REST `Parameters`).
///
/// `turn` is built like an inbound turn for the conversation the messages will belong to, with
/// empty `text` and that conversation's current engine `state`. The returned [`Reply`] is
/// recorded and delivered exactly like a bot reply to an inbound message (messages to the
/// outbox, `state`, `wake_at_ms`).
pub async fn start_execution(
    ctx: &EngineContext,
    turn: &Turn,
    data: Value,
) -> Result<Reply, StartError> {
    let flow = Arc::new(load(&turn.bot)?);
    let mut state = FlowState::from_turn(&turn.state);
    if let Some(exec) = &state.execution {
        let live = exec
            .waiting
            .as_ref()
            .is_some_and(|w| w.until_ms > turn.now_ms);
        if live && !is_ended(ctx, &exec.id).await {
            return Err(StartError::AlreadyActive(exec.id.clone()));
        }
        state.execution = None;
    }
    if let Ok(Some(id)) = ctx
        .store
        .active_flow_execution(&turn.bot.id, &turn.contact.address, turn.now_ms)
        .await
    {
        return Err(StartError::AlreadyActive(id));
    }
    let engine = FlowEngine::new(ctx.clone());
    let mut reply = Reply::default();
    let data = if data.is_object() {
        data
    } else {
        Value::Object(Map::new())
    };
    let request = json!({
        "From": turn.channel_address,
        "To": turn.contact.address,
        "parameters": data,
    });
    engine
        .start(
            &flow,
            turn,
            &mut state,
            "incomingRequest",
            json!({ "request": request }),
            data,
            &mut reply,
        )
        .await;
    Ok(engine.finish(state, reply))
}

#[async_trait]
impl BotEngine for FlowEngine {
    async fn respond(&self, turn: &Turn) -> Result<Reply, EngineError> {
        let flow = Arc::new(load(&turn.bot)?);
        let mut state = FlowState::from_turn(&turn.state);
        let is_timer = turn.text.trim().is_empty() && turn.media.is_empty();
        if is_timer && state.execution.is_none() {
            // Nothing runs and nothing waits: leave the stored state exactly as it was.
            return Ok(Reply {
                state: turn.state.clone(),
                ..Reply::default()
            });
        }
        let mut reply = Reply::default();
        if let Some(exec) = &state.execution {
            if is_ended(&self.ctx, &exec.id).await {
                state.execution = None;
            }
        }
        // A wait whose deadline has passed times out first, whatever else this turn brings.
        if let Some(mut exec) = state.execution.take() {
            match exec.waiting.clone() {
                Some(wait) if turn.now_ms >= wait.until_ms => {
                    let mut out = Outcome::default();
                    self.runner(&flow, turn)
                        .advance(&mut exec, &wait.state, "timeout", &mut out)
                        .await;
                    state.execution = self.settle(turn, exec, out, &mut reply).await;
                }
                Some(_) => state.execution = Some(exec),
                // Not waiting: it ended without being cleared; a message starts a new one.
                None => {}
            }
        }
        if is_timer {
            return Ok(self.finish(state, reply));
        }
        match state.execution.take() {
            Some(mut exec) => {
                let wait = exec.waiting.clone();
                // The waiting widget may be in a subflow.
                let current = self.runner(&flow, turn).current(&exec).await.ok();
                let waits_in = |w: &run::Waiting| {
                    current
                        .as_ref()
                        .is_some_and(|f| f.state(&w.state).is_some())
                };
                match wait.filter(waits_in) {
                    Some(wait) => {
                        exec.set_widget(&wait.state, "inbound", inbound_params(turn));
                        let mut out = Outcome::default();
                        self.runner(&flow, turn)
                            .advance(&mut exec, &wait.state, "incomingMessage", &mut out)
                            .await;
                        state.execution = self.settle(turn, exec, out, &mut reply).await;
                    }
                    None => {
                        // The flow was edited and the waiting widget is gone: end this execution
                        // and let the message start a new one.
                        let out = Outcome {
                            ended: Some(Some(
                                "the waiting widget no longer exists in the flow".into(),
                            )),
                            ..Outcome::default()
                        };
                        self.settle(turn, exec, out, &mut reply).await;
                        self.start(
                            &flow,
                            turn,
                            &mut state,
                            trigger_event(&flow, turn.channel),
                            message_trigger(turn),
                            Value::Object(Map::new()),
                            &mut reply,
                        )
                        .await;
                    }
                }
            }
            None => {
                self.start(
                    &flow,
                    turn,
                    &mut state,
                    trigger_event(&flow, turn.channel),
                    message_trigger(turn),
                    Value::Object(Map::new()),
                    &mut reply,
                )
                .await;
            }
        }
        Ok(self.finish(state, reply))
    }
}

impl FlowEngine {
    fn runner(&self, flow: &Arc<Flow>, turn: &Turn) -> Runner<'_> {
        Runner::new(flow.clone(), &self.ctx, turn.now_ms)
    }

    /// Starts a new execution from the trigger with `event`.
    #[allow(clippy::too_many_arguments)]
    async fn start(
        &self,
        flow: &Arc<Flow>,
        turn: &Turn,
        state: &mut FlowState,
        event: &'static str,
        trigger: Value,
        data: Value,
        reply: &mut Reply,
    ) {
        let id = format!("FN{}", crate::domain::ids::new_id());
        let context = json!({
            "trigger": trigger,
            "widgets": {},
            "flow": {
                "flow_sid": flow.sid.as_deref().unwrap_or(&turn.bot.id),
                "sid": id,
                "channel": {"address": turn.channel_address},
                "data": data,
                "variables": {},
            },
            "contact": {"channel": {"address": turn.contact.address}},
        });
        let mut exec = Execution::new(id, event, turn.now_ms, context);
        if let Err(err) = self
            .ctx
            .store
            .end_other_flow_executions(&turn.bot.id, &turn.contact.address, &exec.id, turn.now_ms)
            .await
        {
            tracing::warn!(error = %err, "ending superseded flow executions failed");
        }
        let mut out = Outcome::default();
        self.runner(flow, turn)
            .advance(&mut exec, &flow.initial_state, event, &mut out)
            .await;
        state.execution = self.settle(turn, exec, out, reply).await;
    }

    /// Records what a run produced, moves its messages and actions into the reply, and keeps
    /// the execution if it is still running.
    async fn settle(
        &self,
        turn: &Turn,
        exec: Execution,
        out: Outcome,
        reply: &mut Reply,
    ) -> Option<Execution> {
        record(&self.ctx, turn, &exec, &out).await;
        if let Some(Some(error)) = &out.ended {
            tracing::warn!(execution = %exec.id, conversation = %turn.conversation_id, error = %error, "flow execution ended with an error");
        }
        for (text, media, to) in out.messages {
            reply.push_to(text, media, to);
        }
        reply.actions.extend(out.actions);
        out.ended.is_none().then_some(exec)
    }

    fn finish(&self, state: FlowState, mut reply: Reply) -> Reply {
        reply.wake_at_ms = state
            .execution
            .as_ref()
            .and_then(|e| e.waiting.as_ref())
            .map(|w| w.until_ms);
        reply.state = state.to_value();
        reply
    }
}

/// The trigger event for an inbound message (see the module documentation).
fn trigger_event(flow: &Flow, _channel: ChannelKind) -> &'static str {
    let leads = |event: &str| {
        flow.state(&flow.initial_state)
            .and_then(|s| s.on(event))
            .is_some_and(|t| t.next.is_some())
    };
    if !leads("incomingMessage") && leads("incomingConversationMessage") {
        "incomingConversationMessage"
    } else {
        "incomingMessage"
    }
}

/// The inbound webhook parameters of this turn's message, as Studio exposes them.
fn inbound_params(turn: &Turn) -> Value {
    let mut p = Map::new();
    let message_sid = turn
        .message_sid
        .clone()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| run::placeholder_sid("SM"));
    for key in ["MessageSid", "SmsMessageSid", "SmsSid"] {
        p.insert(key.into(), Value::String(message_sid.clone()));
    }
    p.insert(
        "AccountSid".into(),
        Value::String(
            turn.account_sid
                .clone()
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| placeholder_account(&turn.bot.id)),
        ),
    );
    p.insert("Body".into(), Value::String(turn.text.clone()));
    p.insert("From".into(), Value::String(turn.contact.address.clone()));
    p.insert(
        "To".into(),
        turn.channel_address
            .clone()
            .map_or(Value::Null, Value::String),
    );
    p.insert(
        "NumMedia".into(),
        Value::String(turn.media.len().to_string()),
    );
    for (i, m) in turn.media.iter().enumerate() {
        p.insert(format!("MediaUrl{i}"), Value::String(m.url.clone()));
        p.insert(
            format!("MediaContentType{i}"),
            Value::String(m.content_type.clone()),
        );
    }
    if let Some(name) = &turn.contact.name {
        p.insert("ProfileName".into(), Value::String(name.clone()));
    }
    if turn.channel == ChannelKind::Whatsapp {
        let wa_id = turn
            .contact
            .address
            .trim_start_matches("whatsapp:")
            .trim_start_matches('+');
        p.insert("WaId".into(), Value::String(wa_id.to_owned()));
    }
    Value::Object(p)
}

/// An `AC...` SID that stays the same for a bot, for turns that do not say which Twilio
/// account they came through (the completion API, or a caller that leaves it out).
fn placeholder_account(bot_id: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(bot_id.as_bytes());
    format!("AC{}", hex::encode(&digest[..16]))
}

/// The participant who wrote and Twilio's `Source` for their channel: in a shared thread (a
/// Conversation) the stored author (an SDK user's identity arrives as the contact's name);
/// otherwise the contact. A phone is `SMS`, a WhatsApp address `WHATSAPP`, an identity `SDK`.
fn conversation_author(turn: &Turn) -> (String, &'static str) {
    let thread = turn.contact.address.starts_with("chat:");
    let author = match (&turn.contact.author, &turn.contact.name) {
        (Some(author), _) => author.clone(),
        (None, Some(identity)) if thread => identity.clone(),
        _ => turn.contact.address.clone(),
    };
    let source = if author.starts_with("whatsapp:") {
        "WHATSAPP"
    } else if author.starts_with('+') {
        "SMS"
    } else if thread {
        "SDK"
    } else if turn.channel == ChannelKind::Whatsapp {
        "WHATSAPP"
    } else {
        "SMS"
    };
    (author, source)
}

/// `trigger` for a message: `trigger.message` and, for flows built on Conversations,
/// `trigger.conversation` with the same message.
fn message_trigger(turn: &Turn) -> Value {
    let message = inbound_params(turn);
    let mut conversation = message.clone();
    if let Value::Object(c) = &mut conversation {
        // On Twilio Conversations the thread is the Conversation itself (`chat:CH...`).
        let sid = turn
            .contact
            .address
            .strip_prefix("chat:")
            .filter(|s| s.starts_with("CH"))
            .unwrap_or(&turn.conversation_id);
        c.insert("ConversationSid".into(), Value::String(sid.to_owned()));
        let (author, source) = conversation_author(turn);
        c.insert("Author".into(), Value::String(author.clone()));
        c.insert("Source".into(), Value::String(source.into()));
        if turn.contact.address.starts_with("chat:") {
            // In a shared thread the person is the participant who wrote, not the thread.
            c.insert("From".into(), Value::String(author));
        }
    }
    json!({ "message": message, "conversation": conversation })
}

#[cfg(test)]
mod tests;
