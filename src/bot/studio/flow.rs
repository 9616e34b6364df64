//! The Studio flow definition as the Twilio console exports it, read into typed values.
//!
//! A flow is `{description, states, initial_state, flags}`; a state is `{name, type,
//! transitions, properties}`. Properties differ per widget type, so each interpreted widget has
//! its own properties struct, read when the flow is loaded: a flow that loads is a flow the
//! interpreter can run without meeting a malformed widget half-way through a conversation.
//! Widgets Chatwire does not interpret (voice widgets) keep their raw properties and end an
//! execution that reaches them, with the reason recorded; importing a flow that has some is
//! allowed (a voice path may be unreachable from messaging) and answered with a warning
//! ([`Flow::warnings`]).
use super::conditions::ConditionKind;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};
use std::collections::HashMap;

/// Every widget type of Studio's flow schema. Anything else is refused on import.
pub const KNOWN_TYPES: &[&str] = &[
    "trigger",
    "send-message",
    "send-and-wait-for-reply",
    "split-based-on",
    "set-variables",
    "make-http-request",
    "run-function",
    "send-to-flex",
    "run-subflow",
    "say-play",
    "gather-input-on-call",
    "connect-call-to",
    "make-outgoing-call-v2",
    "record-voicemail",
    "record-call",
    "enqueue-call",
    "capture-payments",
    "fork-stream",
    "connect-virtual-agent",
    "connect-virtual-agent-v2",
    "add-twiml-redirect",
    "send-to-autopilot",
];

/// The flow as exported, before any checking.
#[derive(Debug, Clone)]
pub struct RawFlow {
    pub description: Option<String>,
    pub states: Vec<RawState>,
    pub initial_state: String,
}

impl RawFlow {
    /// Reads the top level and each state on its own, so a malformed state is reported by its
    /// position and name rather than by a byte offset.
    pub fn read(value: &Value) -> Result<Self, String> {
        let Value::Object(top) = value else {
            return Err("flow must be a JSON object".into());
        };
        let initial_state = match top.get("initial_state") {
            Some(Value::String(s)) => s.clone(),
            Some(_) => return Err("flow: \"initial_state\" must be a string".into()),
            None => return Err("flow: \"initial_state\" is required".into()),
        };
        let Some(Value::Array(items)) = top.get("states") else {
            return Err("flow: \"states\" must be an array".into());
        };
        let mut states = Vec::with_capacity(items.len());
        let mut errors = Vec::new();
        for (i, item) in items.iter().enumerate() {
            match serde_json::from_value::<RawState>(item.clone()) {
                Ok(s) => states.push(s),
                Err(e) => {
                    let name = item
                        .get("name")
                        .and_then(Value::as_str)
                        .map(|n| format!(" (\"{n}\")"))
                        .unwrap_or_default();
                    errors.push(format!("states[{i}]{name}: {e}"));
                }
            }
        }
        if !errors.is_empty() {
            return Err(errors.join("; "));
        }
        let description = top
            .get("description")
            .and_then(Value::as_str)
            .map(str::to_owned);
        Ok(Self {
            description,
            states,
            initial_state,
        })
    }
}

/// One state as exported.
#[derive(Debug, Clone, Deserialize)]
pub struct RawState {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub transitions: Vec<Transition>,
    #[serde(default)]
    pub properties: Map<String, Value>,
}

/// An edge: taken on `event` (and, for `match`, when every condition holds). No `next` ends
/// the execution.
#[derive(Debug, Clone, Deserialize)]
pub struct Transition {
    pub event: String,
    #[serde(default)]
    pub next: Option<String>,
    #[serde(default)]
    pub conditions: Vec<Condition>,
}

/// A `split-based-on` condition: `arguments[0]` is the tested expression (a copy of the
/// widget's `input` in console exports), `value` the operand.
#[derive(Debug, Clone, Deserialize)]
pub struct Condition {
    #[serde(default)]
    pub friendly_name: String,
    #[serde(default)]
    pub arguments: Vec<String>,
    /// One of the 17 condition types; checked by validation (see [`Condition::kind`]).
    #[serde(rename = "type")]
    pub kind_name: String,
    #[serde(default, deserialize_with = "string_or_number")]
    pub value: String,
}

impl Condition {
    /// The condition type, `None` when it is not one of Studio's.
    pub fn kind(&self) -> Option<ConditionKind> {
        ConditionKind::parse(&self.kind_name)
    }
}

/// A `{key, value}` pair (set-variables, HTTP parameters).
#[derive(Debug, Clone, Deserialize)]
pub struct KeyValue {
    pub key: String,
    #[serde(default, deserialize_with = "string_or_number")]
    pub value: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SendMessage {
    #[serde(default)]
    pub body: String,
    #[serde(default)]
    pub media_url: Option<String>,
    /// Liquid for the recipient; Studio's default is `{{contact.channel.address}}`.
    #[serde(default)]
    pub to: Option<String>,
}

/// Studio's default wait: one hour.
const DEFAULT_TIMEOUT_SECS: u64 = 3600;

#[derive(Debug, Clone, Deserialize)]
pub struct SendAndWait {
    #[serde(default)]
    pub body: String,
    #[serde(default)]
    pub media_url: Option<String>,
    /// Seconds, exported as a string (`"3600"`) and sometimes as a number.
    #[serde(default, deserialize_with = "opt_seconds")]
    pub timeout: Option<u64>,
}

impl SendAndWait {
    /// The wait in seconds: the configured value, one hour by default, at most 30 days.
    pub fn timeout_secs(&self) -> u64 {
        self.timeout
            .unwrap_or(DEFAULT_TIMEOUT_SECS)
            .clamp(1, 30 * 86_400)
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Split {
    pub input: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SetVariables {
    #[serde(default)]
    pub variables: Vec<KeyValue>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct HttpRequest {
    #[serde(default = "default_method")]
    pub method: String,
    pub url: String,
    #[serde(default)]
    pub content_type: Option<String>,
    #[serde(default)]
    pub parameters: Vec<KeyValue>,
    #[serde(default)]
    pub body: Option<String>,
}

fn default_method() -> String {
    "GET".into()
}

#[derive(Debug, Clone, Deserialize)]
pub struct RunFunction {
    pub url: String,
    #[serde(default)]
    pub parameters: Vec<KeyValue>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SendToFlex {
    #[serde(default)]
    pub attributes: Option<String>,
    #[serde(default)]
    pub workflow: Option<String>,
    #[serde(default)]
    pub channel: Option<String>,
}

/// `run-subflow`: `flow_sid` names the flow (see `subflow.rs`), `parameters` reach it as
/// `trigger.parent.parameters`.
#[derive(Debug, Clone, Deserialize)]
pub struct RunSubflow {
    #[serde(deserialize_with = "string_or_number")]
    pub flow_sid: String,
    #[serde(default)]
    pub parameters: Vec<KeyValue>,
}

/// What a state does, with its properties read.
#[derive(Debug, Clone)]
pub enum Widget {
    Trigger,
    SendMessage(SendMessage),
    SendAndWait(SendAndWait),
    Split(Split),
    SetVariables(SetVariables),
    HttpRequest(HttpRequest),
    RunFunction(RunFunction),
    SendToFlex(SendToFlex),
    RunSubflow(RunSubflow),
    /// A known widget Chatwire does not run offline (voice widgets).
    Unsupported,
}

/// A state ready to run.
#[derive(Debug, Clone)]
pub struct State {
    pub name: String,
    /// The widget type as exported (`send-message`, ...).
    pub kind: String,
    pub widget: Widget,
    pub transitions: Vec<Transition>,
}

impl State {
    /// The first transition for `event`.
    pub fn on(&self, event: &str) -> Option<&Transition> {
        self.transitions.iter().find(|t| t.event == event)
    }
}

/// A loaded flow. Build with [`Flow::load`], which validates.
#[derive(Debug, Clone)]
pub struct Flow {
    /// The Twilio flow SID (`FW...`) the flow was exported from, when the bot says
    /// (`meta.flowSid`); it is `flow.flow_sid` in Liquid and what `run-subflow` widgets name.
    pub sid: Option<String>,
    pub description: Option<String>,
    pub initial_state: String,
    pub states: Vec<State>,
    index: HashMap<String, usize>,
}

impl Flow {
    /// Reads and validates an exported flow; the error lists every problem found, each naming
    /// its state and field.
    pub fn load(value: &Value) -> Result<Self, String> {
        let raw = RawFlow::read(value)?;
        let mut problems = super::validate::check(&raw);
        let mut states = Vec::with_capacity(raw.states.len());
        for s in &raw.states {
            match widget(s) {
                Ok(widget) => states.push(State {
                    name: s.name.clone(),
                    kind: s.kind.clone(),
                    widget,
                    transitions: s.transitions.clone(),
                }),
                Err(e) => problems.push(e),
            }
        }
        if !problems.is_empty() {
            return Err(problems.join("; "));
        }
        let index = states
            .iter()
            .enumerate()
            .map(|(i, s)| (s.name.clone(), i))
            .collect();
        Ok(Self {
            sid: None,
            description: raw.description,
            initial_state: raw.initial_state,
            states,
            index,
        })
    }

    pub fn state(&self, name: &str) -> Option<&State> {
        self.index.get(name).map(|&i| &self.states[i])
    }

    /// What the flow's author should know although the flow is valid: widgets Chatwire does
    /// not run (voice ones, and Autopilot's or TwiML redirects), which end an execution that
    /// reaches them.
    pub fn warnings(&self) -> Vec<String> {
        self.states
            .iter()
            .filter(|s| matches!(s.widget, Widget::Unsupported))
            .map(|s| {
                format!(
                    "state \"{}\": type: \"{}\" does not run in Chatwire (a voice or retired widget; messaging only), so an execution that reaches it ends (or takes its failure transition)",
                    s.name, s.kind
                )
            })
            .collect()
    }
}

/// The typed widget of a raw state; an error names the state and the property.
fn widget(s: &RawState) -> Result<Widget, String> {
    fn props<T: serde::de::DeserializeOwned>(s: &RawState) -> Result<T, String> {
        serde_json::from_value(Value::Object(s.properties.clone()))
            .map_err(|e| format!("state \"{}\": properties: {e}", s.name))
    }
    Ok(match s.kind.as_str() {
        "trigger" => Widget::Trigger,
        "send-message" => Widget::SendMessage(props(s)?),
        "send-and-wait-for-reply" => Widget::SendAndWait(props(s)?),
        "split-based-on" => Widget::Split(props(s)?),
        "set-variables" => Widget::SetVariables(props(s)?),
        "make-http-request" => Widget::HttpRequest(props(s)?),
        "run-function" => Widget::RunFunction(props(s)?),
        "send-to-flex" => Widget::SendToFlex(props(s)?),
        "run-subflow" => Widget::RunSubflow(props(s)?),
        _ => Widget::Unsupported,
    })
}

/// Studio writes some scalars as strings and some as numbers; both read as text.
fn string_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => s,
        Value::Null => String::new(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => other.to_string(),
    })
}

fn opt_seconds<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    use serde::de::Error;
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        Value::Number(n) => n
            .as_f64()
            .filter(|f| *f >= 0.0)
            .map(|f| Some(f as u64))
            .ok_or_else(|| D::Error::custom("timeout must be a number of seconds")),
        Value::String(s) if s.trim().is_empty() => Ok(None),
        Value::String(s) => s
            .trim()
            .parse::<u64>()
            .map(Some)
            .map_err(|_| D::Error::custom("timeout must be a number of seconds")),
        _ => Err(D::Error::custom("timeout must be a number of seconds")),
    }
}
