//! Flow validation, with Twilio's rules (error 81022 "Flow definition validation failed"):
//! unique state names, every `next` naming a state, known widget types, the events each
//! messaging widget can emit, the 17 condition types, and templates that parse. Every message
//! names the state and the field, so the API can answer 400 with something a person can fix.
//!
//! Property shapes (a `split-based-on` without `input`, say) are checked when the widgets are
//! read, in `flow.rs`; both kinds of problem come back together from [`super::flow::Flow::load`].
use super::conditions;
use super::flow::{RawFlow, RawState, KNOWN_TYPES};
use super::template;
use serde_json::Value;
use std::collections::HashSet;

/// Studio's own limit on states per flow.
const MAX_STATES: usize = 1000;

/// Events each interpreted widget may have; other widget types are not checked.
fn events(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        "trigger" => &[
            "incomingMessage",
            "incomingCall",
            "incomingConversationMessage",
            "incomingRequest",
            "incomingParent",
        ],
        "send-message" => &["sent", "failed"],
        "send-and-wait-for-reply" => &["incomingMessage", "timeout", "deliveryFailure"],
        "split-based-on" => &["noMatch", "match"],
        "set-variables" => &["next"],
        "make-http-request" => &["success", "failed"],
        "run-function" => &["success", "fail"],
        "send-to-flex" => &["callComplete", "failedToEnqueue", "callFailure"],
        "run-subflow" => &["completed", "failed"],
        _ => return None,
    })
}

/// Every problem found, each naming its state and field; empty when the flow is valid.
pub fn check(flow: &RawFlow) -> Vec<String> {
    let mut errors = Vec::new();
    if flow.states.is_empty() {
        errors.push("flow: \"states\" must contain at least one state".into());
    }
    if flow.states.len() > MAX_STATES {
        errors.push(format!("flow: at most {MAX_STATES} states are allowed"));
    }
    let mut names = HashSet::new();
    for s in &flow.states {
        if s.name.trim().is_empty() {
            errors.push("state with an empty \"name\"".into());
        } else if !names.insert(s.name.as_str()) {
            errors.push(format!("state \"{}\": name: duplicate state name", s.name));
        }
    }
    match flow.states.iter().find(|s| s.name == flow.initial_state) {
        None => errors.push(format!(
            "flow: initial_state: no state named \"{}\"",
            flow.initial_state
        )),
        Some(s) if s.kind != "trigger" => errors.push(format!(
            "state \"{}\": type: the initial state must be a trigger",
            s.name
        )),
        Some(_) => {}
    }
    for s in &flow.states {
        check_state(s, &names, &mut errors);
    }
    errors
}

fn check_state(s: &RawState, names: &HashSet<&str>, errors: &mut Vec<String>) {
    let at = |field: String, msg: String| format!("state \"{}\": {field}: {msg}", s.name);
    if !KNOWN_TYPES.contains(&s.kind.as_str()) {
        errors.push(at(
            "type".into(),
            format!("unknown widget type \"{}\"", s.kind),
        ));
        return;
    }
    let allowed = events(&s.kind);
    for (i, t) in s.transitions.iter().enumerate() {
        if let Some(next) = &t.next {
            if !names.contains(next.as_str()) {
                errors.push(at(
                    format!("transitions[{i}].next"),
                    format!("no state named \"{next}\""),
                ));
            }
        }
        if let Some(allowed) = allowed {
            if !allowed.contains(&t.event.as_str()) {
                errors.push(at(
                    format!("transitions[{i}].event"),
                    format!(
                        "\"{}\" is not an event of {} (expected one of {})",
                        t.event,
                        s.kind,
                        allowed.join(", ")
                    ),
                ));
            }
        }
        for (j, c) in t.conditions.iter().enumerate() {
            let field = format!("transitions[{i}].conditions[{j}]");
            match c.kind() {
                None => errors.push(at(
                    format!("{field}.type"),
                    format!("unknown condition type \"{}\"", c.kind_name),
                )),
                Some(conditions::ConditionKind::Regex) if !c.value.contains("{{") => {
                    if let Err(e) = conditions::regex(&c.value) {
                        errors.push(at(
                            format!("{field}.value"),
                            format!("invalid regular expression: {}", one_line(&e)),
                        ));
                    }
                }
                Some(_) => {}
            }
            for (k, arg) in c.arguments.iter().enumerate() {
                if let Err(e) = template::check(arg) {
                    errors.push(at(format!("{field}.arguments[{k}]"), e));
                }
            }
        }
        if s.kind == "split-based-on" && t.event == "match" && t.conditions.is_empty() {
            errors.push(at(
                format!("transitions[{i}].conditions"),
                "a match transition needs at least one condition".into(),
            ));
        }
    }
    let mut bad = Vec::new();
    for (key, value) in &s.properties {
        check_templates(value, key, &mut bad);
    }
    errors.extend(bad.into_iter().map(|(field, e)| at(field, e)));
}

/// Parses every string in a property (recursively) as a Liquid template.
fn check_templates(value: &Value, path: &str, bad: &mut Vec<(String, String)>) {
    match value {
        Value::String(s) => {
            if let Err(e) = template::check(s) {
                bad.push((format!("properties.{path}"), e));
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                check_templates(v, &format!("{path}[{i}]"), bad);
            }
        }
        Value::Object(map) => {
            for (k, v) in map {
                check_templates(v, &format!("{path}.{k}"), bad);
            }
        }
        _ => {}
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}
