//! The interpreter: follows transitions from widget to widget until the flow waits for a reply
//! or ends.
//!
//! An [`Execution`] is plain data (the Liquid context, which widget waits and until when, how
//! many steps it took) kept in the engine state the pipeline stores with each reply, so a
//! restart resumes exactly where it was. Each transition taken is a [`Step`], recorded as
//! Studio records them (`name` = the event, `transitioned_from`, `transitioned_to`, with
//! "Ended" when a transition has no `next`). A widget that fails (a template that does not
//! render, an HTTP call that fails) sends nothing broken: the error is kept on its step and the
//! widget's failure transition is taken.
//!
//! Runaway flows: as Twilio does, a widget that runs [`MAX_WIDGET_RUNS`] times in a row within
//! one execution is stopped, ending the execution with an error; "in a row" here means without
//! the flow waiting for the person in between (a menu that re-asks after each wrong answer is
//! not a runaway). A turn also stops after [`MAX_STEPS`] steps without a wait, whatever loops.
//!
//! Subflows: `run-subflow` runs the flow of the bot its `flow_sid` names (see `subflow.rs`) in
//! the same execution. The parent's context is kept in a [`Frame`]; the subflow starts at its
//! trigger's `incomingParent` with `trigger.parent.parameters` and the parent's trigger data,
//! may wait for replies like any flow, and when one of its transitions ends it, its
//! `flow.variables` come back as `widgets.<run-subflow widget>.<key>` and the parent takes
//! `completed`; a subflow that ends with an error (or cannot be found) takes `failed`.
use super::conditions;
use super::flow::{Flow, KeyValue, RunSubflow, State, Transition, Widget};
use super::http::{self, Body};
use super::subflow;
use super::template::render;
use crate::bot::{Action, EngineContext};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Steps one turn may take without reaching a wait.
pub const MAX_STEPS: usize = 100;
/// Runs of one widget in a row (without a wait) before it is stopped, as in Twilio.
pub const MAX_WIDGET_RUNS: u32 = 10;
/// Subflows running inside subflows, at most.
pub const MAX_SUBFLOW_DEPTH: usize = 5;

/// A running flow: everything needed to continue it on the next message or timer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Execution {
    pub id: String,
    /// The trigger event that started it.
    pub trigger: String,
    pub started_at: i64,
    /// `{trigger, widgets, flow, contact}` as Liquid sees it.
    pub context: Value,
    pub waiting: Option<Waiting>,
    /// Steps recorded so far (the next step's sequence number).
    #[serde(default)]
    pub seq: u32,
    /// Parents waiting for the subflows running above them, outermost first.
    #[serde(default)]
    pub frames: Vec<Frame>,
}

/// A parent flow waiting for the subflow its `run-subflow` widget started.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Frame {
    /// The parent's `run-subflow` widget, which takes `completed` or `failed` afterwards.
    pub widget: String,
    /// The bot whose flow is the subflow.
    pub bot_id: String,
    /// The parent's Liquid context, restored when the subflow ends.
    pub context: Value,
}

/// A `send-and-wait-for-reply` widget waiting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Waiting {
    pub state: String,
    /// When its `timeout` transition fires (ms since the epoch).
    pub until_ms: i64,
}

/// One transition taken.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    pub seq: u32,
    /// The event that caused the transition (`incomingMessage`, `sent`, `match`, ...).
    pub name: String,
    pub transitioned_from: String,
    /// The widget entered, or "Ended".
    pub transitioned_to: String,
    /// The widget type entered (None for "Ended").
    pub kind: Option<String>,
    /// What the widget produced (`widgets.NAME`), when it produced anything.
    pub context: Value,
    pub error: Option<String>,
    pub at_ms: i64,
}

/// What running part of a flow produced.
#[derive(Debug, Default)]
pub struct Outcome {
    /// (text, media URLs, recipient when not the contact), in send order.
    pub messages: Vec<(String, Vec<String>, Option<String>)>,
    pub actions: Vec<Action>,
    pub steps: Vec<Step>,
    /// Set when the execution ended: `Some(None)` normally, `Some(Some(error))` on an error.
    pub ended: Option<Option<String>>,
}

/// What a widget asks for next.
enum Next {
    /// Take the transition for this event (or this exact transition, for splits).
    Event(&'static str, Option<usize>),
    Wait(i64),
    End(Option<String>),
    /// Run this subflow (bot id, flow) with these parameters.
    Subflow(String, Arc<Flow>, Map<String, Value>),
}

/// Runs widgets of one flow (and its subflows) for one turn.
pub struct Runner<'a> {
    /// The bot's own flow.
    pub flow: Arc<Flow>,
    pub ctx: &'a EngineContext,
    pub now_ms: i64,
    /// Subflows loaded this turn, by bot id.
    subflows: Mutex<HashMap<String, Arc<Flow>>>,
}

/// Where the loop in [`Runner::advance`] goes next: a flow, the state it leaves, the event,
/// and the transition that event takes.
type Position = (Arc<Flow>, String, &'static str, Option<Transition>);

impl Execution {
    /// A new execution with its Liquid context.
    pub fn new(id: String, trigger: &str, now_ms: i64, context: Value) -> Self {
        Self {
            id,
            trigger: trigger.to_owned(),
            started_at: now_ms,
            context,
            waiting: None,
            seq: 0,
            frames: Vec::new(),
        }
    }

    /// Sets `widgets.NAME.KEY`.
    pub fn set_widget(&mut self, name: &str, key: &str, value: Value) {
        if let Some(entry) = object_at(&mut self.context, &["widgets", name]) {
            entry.insert(key.to_owned(), value);
        }
    }

    fn widget(&self, name: &str) -> Value {
        self.context
            .get("widgets")
            .and_then(|w| w.get(name))
            .cloned()
            .unwrap_or(Value::Null)
    }
}

/// The object at `path` inside `root`, created (replacing non-objects) on the way.
fn object_at<'v>(root: &'v mut Value, path: &[&str]) -> Option<&'v mut Map<String, Value>> {
    let mut cur = root;
    for key in path {
        if !cur.is_object() {
            *cur = Value::Object(Map::new());
        }
        let map = cur.as_object_mut()?;
        cur = map
            .entry((*key).to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    if !cur.is_object() {
        *cur = Value::Object(Map::new());
    }
    cur.as_object_mut()
}

impl<'a> Runner<'a> {
    pub fn new(flow: Arc<Flow>, ctx: &'a EngineContext, now_ms: i64) -> Self {
        Self {
            flow,
            ctx,
            now_ms,
            subflows: Mutex::default(),
        }
    }

    /// The flow the execution is in: the innermost subflow's, else the bot's own.
    pub async fn current(&self, exec: &Execution) -> Result<Arc<Flow>, String> {
        match exec.frames.last() {
            None => Ok(self.flow.clone()),
            Some(frame) => self.subflow(&frame.bot_id).await,
        }
    }

    async fn subflow(&self, bot_id: &str) -> Result<Arc<Flow>, String> {
        if let Some(flow) = self.cached(bot_id) {
            return Ok(flow);
        }
        let flow = Arc::new(subflow::load(&*self.ctx.store, bot_id).await?);
        if let Ok(mut cache) = self.subflows.lock() {
            cache.insert(bot_id.to_owned(), flow.clone());
        }
        Ok(flow)
    }

    fn cached(&self, bot_id: &str) -> Option<Arc<Flow>> {
        self.subflows.lock().ok()?.get(bot_id).cloned()
    }

    /// Takes `event` out of state `from` and runs until the flow waits or ends.
    pub async fn advance(
        &self,
        exec: &mut Execution,
        from: &str,
        event: &'static str,
        out: &mut Outcome,
    ) {
        let mut flow = match self.current(exec).await {
            Ok(flow) => flow,
            Err(error) => {
                self.record(exec, out, event, from, None, Some(error.clone()));
                out.ended = Some(Some(error));
                return;
            }
        };
        let mut from = from.to_owned();
        let mut event = event;
        let mut transition: Option<Transition> =
            flow.state(&from).and_then(|s| s.on(event)).cloned();
        exec.waiting = None;
        // Runs per widget since the last wait, by subflow depth and name.
        let mut runs: HashMap<(usize, String), u32> = HashMap::new();
        for _ in 0..MAX_STEPS {
            let Some(next) = transition.as_ref().and_then(|t| t.next.clone()) else {
                self.record(exec, out, event, &from, None, None);
                match self.return_to_parent(exec, None).await {
                    Some(Ok(position)) => {
                        (flow, from, event, transition) = position;
                        continue;
                    }
                    Some(Err(error)) => out.ended = Some(Some(error)),
                    None => out.ended = Some(None),
                }
                return;
            };
            let Some(state) = flow.state(&next) else {
                // Validation makes this unreachable for a stored flow; kept as an end, not a panic.
                let error = format!("no state named \"{next}\"");
                self.record(exec, out, event, &from, None, Some(error.clone()));
                out.ended = Some(Some(error));
                return;
            };
            let count = runs.entry((exec.frames.len(), next.clone())).or_default();
            *count += 1;
            if *count > MAX_WIDGET_RUNS {
                let error = format!(
                    "widget \"{next}\" stopped after running {MAX_WIDGET_RUNS} times in a row (the flow loops)"
                );
                self.record(exec, out, event, &from, None, Some(error.clone()));
                tracing::warn!(execution = %exec.id, "{error}");
                out.ended = Some(Some(error));
                return;
            }
            let (result, error) = self.execute(exec, state, out).await;
            self.record(exec, out, event, &from, Some(state), error.clone());
            match result {
                Next::Wait(until_ms) => {
                    exec.waiting = Some(Waiting {
                        state: state.name.clone(),
                        until_ms,
                    });
                    return;
                }
                Next::End(reason) => {
                    let reason = reason.or(error);
                    // A subflow that fails hands its parent `failed`; a hand-off (no error)
                    // ends everything, as the conversation has left the bot.
                    if let Some(failure) = reason.as_deref().filter(|_| !exec.frames.is_empty()) {
                        if let Some(Ok(position)) = self.return_to_parent(exec, Some(failure)).await
                        {
                            (flow, from, event, transition) = position;
                            continue;
                        }
                    }
                    out.ended = Some(reason);
                    return;
                }
                Next::Event(ev, index) => {
                    event = ev;
                    from = state.name.clone();
                    transition = match index {
                        Some(i) => state.transitions.get(i).cloned(),
                        None => state.on(ev).cloned(),
                    };
                }
                Next::Subflow(bot_id, sub, parameters) => {
                    let inner = subflow_context(&exec.context, &sub, &bot_id, parameters);
                    let parent = std::mem::replace(&mut exec.context, inner);
                    exec.frames.push(Frame {
                        widget: state.name.clone(),
                        bot_id: bot_id.clone(),
                        context: parent,
                    });
                    if let Ok(mut cache) = self.subflows.lock() {
                        cache.insert(bot_id, sub.clone());
                    }
                    from = sub.initial_state.clone();
                    event = "incomingParent";
                    transition = sub.state(&from).and_then(|s| s.on(event)).cloned();
                    flow = sub;
                }
            }
        }
        let error =
            format!("stopped after {MAX_STEPS} steps without waiting for a reply (the flow loops)");
        if let Some(last) = out.steps.last_mut() {
            last.error.get_or_insert_with(|| error.clone());
        }
        tracing::warn!(execution = %exec.id, "{error}");
        out.ended = Some(Some(error));
    }

    /// Leaves the innermost subflow: the parent's context comes back with the subflow's
    /// `flow.variables` under its `run-subflow` widget, and the parent continues through that
    /// widget's `completed` (or `failed`, with the error as `widgets.NAME.error`). `None` when
    /// no subflow runs.
    async fn return_to_parent(
        &self,
        exec: &mut Execution,
        failure: Option<&str>,
    ) -> Option<Result<Position, String>> {
        let frame = exec.frames.pop()?;
        let finished = std::mem::replace(&mut exec.context, frame.context);
        match failure {
            None => {
                if let Some(Value::Object(vars)) = finished.pointer("/flow/variables") {
                    for (key, value) in vars {
                        exec.set_widget(&frame.widget, key, value.clone());
                    }
                }
            }
            Some(error) => exec.set_widget(&frame.widget, "error", Value::String(error.into())),
        }
        let event = if failure.is_some() {
            "failed"
        } else {
            "completed"
        };
        Some(self.current(exec).await.map(|parent| {
            let transition = parent
                .state(&frame.widget)
                .and_then(|s| s.on(event))
                .cloned();
            (parent, frame.widget, event, transition)
        }))
    }

    fn record(
        &self,
        exec: &mut Execution,
        out: &mut Outcome,
        event: &str,
        from: &str,
        to: Option<&State>,
        error: Option<String>,
    ) {
        out.steps.push(Step {
            seq: exec.seq,
            name: event.to_owned(),
            transitioned_from: from.to_owned(),
            transitioned_to: to.map_or_else(|| "Ended".to_owned(), |s| s.name.clone()),
            kind: to.map(|s| s.kind.clone()),
            context: to.map_or(Value::Null, |s| exec.widget(&s.name)),
            error,
            at_ms: self.now_ms,
        });
        exec.seq += 1;
    }

    /// Runs one widget; the error, if any, is recorded on its step.
    async fn execute(
        &self,
        exec: &mut Execution,
        state: &State,
        out: &mut Outcome,
    ) -> (Next, Option<String>) {
        let name = state.name.as_str();
        match &state.widget {
            Widget::SendMessage(w) => {
                match self.message(exec, name, &w.body, w.media_url.as_deref(), w.to.as_deref()) {
                    Ok(message) => {
                        out.messages.push(message);
                        (Next::Event("sent", None), None)
                    }
                    Err(e) => (Next::Event("failed", None), Some(e)),
                }
            }
            Widget::SendAndWait(w) => {
                match self.message(exec, name, &w.body, w.media_url.as_deref(), None) {
                    Ok(message) => {
                        out.messages.push(message);
                        let until = self
                            .now_ms
                            .saturating_add((w.timeout_secs() as i64).saturating_mul(1000));
                        (Next::Wait(until), None)
                    }
                    Err(e) => (Next::Event("deliveryFailure", None), Some(e)),
                }
            }
            Widget::Split(w) => {
                let input = match render(&w.input, &exec.context) {
                    Ok(s) => s,
                    Err(e) => return (Next::Event("noMatch", None), Some(format!("input: {e}"))),
                };
                for (i, t) in state.transitions.iter().enumerate() {
                    if t.event == "match"
                        && !t.conditions.is_empty()
                        && t.conditions
                            .iter()
                            .all(|c| self.condition(c, &input, &exec.context))
                    {
                        return (Next::Event("match", Some(i)), None);
                    }
                }
                (Next::Event("noMatch", None), None)
            }
            Widget::SetVariables(w) => {
                for v in &w.variables {
                    match render(&v.value, &exec.context) {
                        Ok(value) => {
                            if let Some(vars) = object_at(&mut exec.context, &["flow", "variables"])
                            {
                                vars.insert(v.key.clone(), Value::String(value));
                            }
                        }
                        Err(e) => {
                            return (Next::End(None), Some(format!("variables.{}: {e}", v.key)))
                        }
                    }
                }
                (Next::Event("next", None), None)
            }
            Widget::HttpRequest(w) => {
                let request = (|| -> Result<http::Request, String> {
                    let url = render(&w.url, &exec.context).map_err(|e| format!("url: {e}"))?;
                    let method = reqwest::Method::from_bytes(
                        w.method.trim().to_ascii_uppercase().as_bytes(),
                    )
                    .map_err(|_| format!("method: {:?} is not an HTTP method", w.method))?;
                    let params = render_pairs(&w.parameters, &exec.context)?;
                    let content_type = w
                        .content_type
                        .clone()
                        .unwrap_or_else(|| "application/x-www-form-urlencoded".into());
                    let (query, body) = if method == reqwest::Method::GET {
                        (params, Body::None)
                    } else if content_type.starts_with("application/x-www-form-urlencoded") {
                        (Vec::new(), Body::Form(params))
                    } else {
                        let text = render(w.body.as_deref().unwrap_or(""), &exec.context)
                            .map_err(|e| format!("body: {e}"))?;
                        (params, Body::Raw { content_type, text })
                    };
                    Ok(http::Request {
                        method,
                        url,
                        query,
                        body,
                        timeout: http::TIMEOUT,
                    })
                })();
                self.call(exec, name, request, ("success", "failed")).await
            }
            Widget::RunFunction(w) => {
                let request = (|| -> Result<http::Request, String> {
                    let url = render(&w.url, &exec.context).map_err(|e| format!("url: {e}"))?;
                    let params = render_pairs(&w.parameters, &exec.context)?;
                    Ok(http::Request {
                        method: reqwest::Method::POST,
                        url,
                        query: Vec::new(),
                        body: Body::Form(params),
                        timeout: http::TIMEOUT,
                    })
                })();
                self.call(exec, name, request, ("success", "fail")).await
            }
            Widget::SendToFlex(w) => {
                let attributes = match render(w.attributes.as_deref().unwrap_or(""), &exec.context)
                {
                    Ok(a) => a,
                    Err(e) => {
                        return (
                            Next::Event("failedToEnqueue", None),
                            Some(format!("attributes: {e}")),
                        )
                    }
                };
                let parsed =
                    serde_json::from_str::<Value>(&attributes).unwrap_or(Value::String(attributes));
                exec.set_widget(name, "attributes", parsed.clone());
                out.actions.push(Action::Handoff {
                    reason: Some(format!("Studio flow widget \"{name}\" (send-to-flex)")),
                    attributes: Some(parsed),
                });
                // Chatwire's human inbox takes the conversation from here; the flow is done.
                (Next::End(None), None)
            }
            Widget::RunSubflow(w) => {
                let (next, error) = self.run_subflow(exec, w).await;
                if let Some(e) = &error {
                    exec.set_widget(name, "error", Value::String(e.clone()));
                }
                (next, error)
            }
            Widget::Trigger | Widget::Unsupported => {
                let error = format!(
                    "widget type \"{}\" cannot run in Chatwire (messaging widgets only)",
                    state.kind
                );
                if state.on("failed").is_some() {
                    (Next::Event("failed", None), Some(error))
                } else {
                    (Next::End(Some(error.clone())), Some(error))
                }
            }
        }
    }

    /// Renders a message (body, media, recipient) and records `widgets.NAME.outbound`.
    fn message(
        &self,
        exec: &mut Execution,
        name: &str,
        body: &str,
        media_url: Option<&str>,
        to: Option<&str>,
    ) -> Result<(String, Vec<String>, Option<String>), String> {
        let text = render(body, &exec.context).map_err(|e| format!("body: {e}"))?;
        let media: Vec<String> = match media_url.filter(|m| !m.trim().is_empty()) {
            Some(m) => render(m, &exec.context)
                .map_err(|e| format!("media_url: {e}"))?
                .split(',')
                .map(str::trim)
                .filter(|u| !u.is_empty())
                .map(str::to_owned)
                .collect(),
            None => Vec::new(),
        };
        if text.trim().is_empty() && media.is_empty() {
            return Err("body: the message is empty".into());
        }
        let contact = exec
            .context
            .pointer("/contact/channel/address")
            .cloned()
            .unwrap_or(Value::Null);
        // A Send Message widget may address someone else (a staff phone): the message goes
        // there, never to the contact by mistake.
        let recipient = match to.filter(|t| !t.trim().is_empty()) {
            Some(t) => {
                let to = render(t, &exec.context).map_err(|e| format!("to: {e}"))?;
                let to = to.trim().to_owned();
                crate::domain::address::Address::parse(&to).map_err(|e| format!("to: {e}"))?;
                (contact.as_str() != Some(to.as_str())).then_some(to)
            }
            None => None,
        };
        let shown_to = recipient
            .clone()
            .map(Value::String)
            .unwrap_or_else(|| contact.clone());
        let channel = exec
            .context
            .pointer("/flow/channel/address")
            .cloned()
            .unwrap_or(Value::Null);
        let account = exec
            .context
            .pointer("/trigger/message/AccountSid")
            .cloned()
            .unwrap_or(Value::Null);
        // Twilio knows the message's SID once it has accepted it, which here happens later, in
        // the outbox; flows only pass `outbound.Sid` on (to a log, an HTTP call), so a SID of
        // the right shape, fixed when the widget runs, stands in for it.
        exec.set_widget(
            name,
            "outbound",
            json!({"Body": text, "To": shown_to, "From": channel, "Sid": placeholder_sid(if media.is_empty() { "SM" } else { "MM" }),
                   "AccountSid": account, "Status": "queued", "MediaUrl": media.first()}),
        );
        Ok((text, media, recipient))
    }

    /// Resolves a `run-subflow` widget's flow and renders its parameters.
    async fn run_subflow(&self, exec: &Execution, w: &RunSubflow) -> (Next, Option<String>) {
        if exec.frames.len() >= MAX_SUBFLOW_DEPTH {
            return (
                Next::Event("failed", None),
                Some(format!("subflows nest more than {MAX_SUBFLOW_DEPTH} deep")),
            );
        }
        let sid = match render(&w.flow_sid, &exec.context) {
            Ok(s) => s.trim().to_owned(),
            Err(e) => return (Next::Event("failed", None), Some(format!("flow_sid: {e}"))),
        };
        let parameters = match render_pairs(&w.parameters, &exec.context) {
            Ok(pairs) => pairs
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect::<Map<String, Value>>(),
            Err(e) => return (Next::Event("failed", None), Some(e)),
        };
        match subflow::resolve(&*self.ctx.store, &sid).await {
            Ok(Some((bot_id, flow))) => (Next::Subflow(bot_id, Arc::new(flow), parameters), None),
            Ok(None) => (
                Next::Event("failed", None),
                Some(format!(
                    "no flow bot has meta.flowSid (or id) \"{sid}\" to run as a subflow"
                )),
            ),
            Err(e) => (Next::Event("failed", None), Some(e)),
        }
    }

    fn condition(&self, c: &super::flow::Condition, input: &str, context: &Value) -> bool {
        let Some(kind) = c.kind() else { return false };
        let tested = match c.arguments.first() {
            Some(arg) => match render(arg, context) {
                Ok(s) => s,
                Err(_) => return false,
            },
            None => input.to_owned(),
        };
        match render(&c.value, context) {
            Ok(value) => conditions::holds(kind, &tested, &value),
            Err(_) => false,
        }
    }

    async fn call(
        &self,
        exec: &mut Execution,
        name: &str,
        request: Result<http::Request, String>,
        (ok, failed): (&'static str, &'static str),
    ) -> (Next, Option<String>) {
        let request = match request {
            Ok(r) => r,
            Err(e) => return (Next::Event(failed, None), Some(e)),
        };
        match http::send(self.ctx, request).await {
            Ok(resp) => {
                if let Some(map) = object_at(&mut exec.context, &["widgets", name]) {
                    if let Value::Object(fields) = resp.to_context() {
                        map.extend(fields);
                    }
                }
                if resp.is_success() {
                    (Next::Event(ok, None), None)
                } else {
                    (
                        Next::Event(failed, None),
                        Some(format!("HTTP status {}", resp.status_code)),
                    )
                }
            }
            Err(e) => (Next::Event(failed, None), Some(e)),
        }
    }
}

/// A Twilio-shaped SID (`SM` + 32 hex digits) for what Chatwire cannot know from Twilio.
pub fn placeholder_sid(prefix: &str) -> String {
    format!("{prefix}{:032x}", rand::random::<u128>())
}

/// The context a subflow starts with: the parent's trigger data plus
/// `trigger.parent.parameters`, the same contact and channel, its own empty widgets and
/// variables.
fn subflow_context(
    parent: &Value,
    flow: &Flow,
    bot_id: &str,
    parameters: Map<String, Value>,
) -> Value {
    let mut trigger = parent
        .get("trigger")
        .cloned()
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({}));
    if let Value::Object(t) = &mut trigger {
        t.insert("parent".into(), json!({ "parameters": parameters }));
    }
    let parent_flow = parent.get("flow").cloned().unwrap_or(Value::Null);
    let flow_sid = flow.sid.clone().unwrap_or_else(|| bot_id.to_owned());
    json!({
        "trigger": trigger,
        "widgets": {},
        "flow": {
            "flow_sid": flow_sid,
            "sid": parent_flow.get("sid").cloned().unwrap_or(Value::Null),
            "channel": parent_flow.get("channel").cloned().unwrap_or(Value::Null),
            "data": {},
            "variables": {},
        },
        "contact": parent.get("contact").cloned().unwrap_or(Value::Null),
    })
}

fn render_pairs(pairs: &[KeyValue], context: &Value) -> Result<Vec<(String, String)>, String> {
    pairs
        .iter()
        .map(|p| {
            render(&p.value, context)
                .map(|v| (p.key.clone(), v))
                .map_err(|e| format!("parameters.{}: {e}", p.key))
        })
        .collect()
}
