//! The interpreter: follows transitions from widget to widget until the flow waits for a reply
//! or ends.
//!
//! An [`Execution`] is plain data (the Liquid context, which widget waits and until when, how
//! many steps it took) kept in the engine state the pipeline stores with each reply, so a
//! restart resumes exactly where it was. Each transition taken is a [`Step`], recorded as
//! Studio records them (`name` = the event, `transitioned_from`, `transitioned_to`, with
//! "Ended" when a transition has no `next`). A widget that fails (a template that does not
//! render, an HTTP call that fails) sends nothing broken: the error is kept on its step and the
//! widget's failure transition is taken. A turn stops after [`MAX_STEPS`] steps without a wait,
//! ending the execution with an error, so a flow that loops cannot hang a conversation.
use super::conditions;
use super::flow::{Flow, KeyValue, State, Transition, Widget};
use super::http::{self, Body};
use super::template::render;
use crate::bot::{Action, EngineContext};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

/// Steps one turn may take without reaching a wait.
pub const MAX_STEPS: usize = 100;

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
    pub messages: Vec<String>,
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
}

/// Runs widgets of one flow for one turn.
pub struct Runner<'a> {
    pub flow: &'a Flow,
    pub ctx: &'a EngineContext,
    pub now_ms: i64,
}

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

impl Runner<'_> {
    /// Takes `event` out of state `from` and runs until the flow waits or ends.
    pub async fn advance(
        &self,
        exec: &mut Execution,
        from: &str,
        event: &'static str,
        out: &mut Outcome,
    ) {
        let mut from = from.to_owned();
        let mut event = event;
        let mut transition: Option<Transition> =
            self.flow.state(&from).and_then(|s| s.on(event)).cloned();
        exec.waiting = None;
        for _ in 0..MAX_STEPS {
            let Some(next) = transition.as_ref().and_then(|t| t.next.clone()) else {
                self.record(exec, out, event, &from, None, None);
                out.ended = Some(None);
                return;
            };
            let Some(state) = self.flow.state(&next) else {
                // Validation makes this unreachable for a stored flow; kept as an end, not a panic.
                let error = format!("no state named \"{next}\"");
                self.record(exec, out, event, &from, None, Some(error.clone()));
                out.ended = Some(Some(error));
                return;
            };
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
                    out.ended = Some(reason.or(error));
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
                match self.message(exec, name, &w.body, w.media_url.as_deref()) {
                    Ok(text) => {
                        out.messages.push(text);
                        (Next::Event("sent", None), None)
                    }
                    Err(e) => (Next::Event("failed", None), Some(e)),
                }
            }
            Widget::SendAndWait(w) => {
                match self.message(exec, name, &w.body, w.media_url.as_deref()) {
                    Ok(text) => {
                        out.messages.push(text);
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
                exec.set_widget(name, "attributes", parsed);
                out.actions.push(Action::Handoff {
                    reason: Some(format!("Studio flow widget \"{name}\" (send-to-flex)")),
                });
                // Chatwire's human inbox takes the conversation from here; the flow is done.
                (Next::End(None), None)
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

    /// Renders a message body and records `widgets.NAME.outbound`.
    fn message(
        &self,
        exec: &mut Execution,
        name: &str,
        body: &str,
        media_url: Option<&str>,
    ) -> Result<String, String> {
        let text = render(body, &exec.context).map_err(|e| format!("body: {e}"))?;
        if text.trim().is_empty() {
            let has_media = media_url.is_some_and(|m| !m.trim().is_empty());
            return Err(if has_media {
                "media messages are not supported; the body rendered empty".into()
            } else {
                "body: the message is empty".into()
            });
        }
        let contact = exec
            .context
            .pointer("/contact/channel/address")
            .cloned()
            .unwrap_or(Value::Null);
        let channel = exec
            .context
            .pointer("/flow/channel/address")
            .cloned()
            .unwrap_or(Value::Null);
        exec.set_widget(
            name,
            "outbound",
            json!({"Body": text, "To": contact, "From": channel}),
        );
        Ok(text)
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
