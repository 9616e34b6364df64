//! The two wire formats of webhook bots (documented in the parent module): Chatwire's own JSON,
//! and Rasa's REST channel, whose buttons become numbered options in text.
use super::super::{Action, EngineError, Reply, Turn};
use super::HISTORY;
use serde_json::{json, Value};

pub(super) fn chatwire_request(turn: &Turn, delivery: &str) -> Value {
    let skip = turn.history.len().saturating_sub(HISTORY);
    json!({
        "type": "message",
        "deliveryId": delivery,
        "conversationId": turn.conversation_id,
        "bot": {"id": turn.bot.id, "name": turn.bot.name},
        "channel": turn.channel,
        "contact": {"id": turn.contact.id, "name": turn.contact.name, "address": turn.contact.address},
        "to": turn.channel_address,
        "message": {
            "text": turn.text,
            "media": turn.media.iter().map(|m| json!({"url": m.url, "contentType": m.content_type})).collect::<Vec<_>>(),
        },
        "history": turn.history.iter().skip(skip).map(|m| json!({"type": m.kind, "text": m.text})).collect::<Vec<_>>(),
        "state": turn.state,
        "timestamp": turn.now_ms,
    })
}

pub(super) fn chatwire_reply(turn: &Turn, value: Value) -> Result<Reply, EngineError> {
    let bad = |what: &str| {
        EngineError::Upstream(format!(
            "the webhook bot's answer is not Chatwire JSON: {what}"
        ))
    };
    let Value::Object(mut answer) = value else {
        return Err(bad("not an object"));
    };
    let mut messages = Vec::new();
    match answer.remove("messages") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for item in items {
                let text = match &item {
                    Value::String(s) => s.as_str(),
                    Value::Object(o) => o
                        .get("text")
                        .and_then(Value::as_str)
                        .ok_or_else(|| bad("a message has no text"))?,
                    _ => return Err(bad("messages must be strings or {\"text\"}")),
                };
                if !text.trim().is_empty() {
                    messages.push(text.to_owned());
                }
            }
        }
        Some(_) => return Err(bad("messages must be an array")),
    }
    let mut actions = Vec::new();
    if let Some(Value::Array(items)) = answer.remove("actions") {
        for item in items {
            match serde_json::from_value::<Action>(item) {
                Ok(action) => actions.push(action),
                Err(err) => tracing::debug!(error = %err, "webhook bot sent an unknown action"),
            }
        }
    }
    let state = answer.remove("state").unwrap_or_else(|| turn.state.clone());
    Ok(Reply {
        messages,
        state,
        actions,
        ..Reply::default()
    })
}

/// The Rasa REST channel's request; a numbered choice is sent as its button's payload.
pub(super) fn rasa_request(turn: &Turn) -> Value {
    let text = turn.text.trim();
    let message = match chosen_payload(&turn.state, text) {
        Some(payload) => payload,
        None if text.is_empty() => turn
            .media
            .first()
            .map(|m| m.url.clone())
            .unwrap_or_default(),
        None => text.to_owned(),
    };
    let sender = if turn.contact.address.is_empty() {
        turn.conversation_id.as_str()
    } else {
        turn.contact.address.as_str()
    };
    json!({
        "sender": sender,
        "message": message,
        "metadata": {"conversationId": turn.conversation_id, "channel": turn.channel},
    })
}

/// The payload of the button the person picked by number or by title, if any.
fn chosen_payload(state: &Value, text: &str) -> Option<String> {
    let buttons = state.get("rasaButtons")?.as_array()?;
    let title = |b: &Value| {
        b.get("title")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let picked = match text.parse::<usize>() {
        Ok(n) if (1..=buttons.len()).contains(&n) => &buttons[n - 1],
        _ => buttons
            .iter()
            .find(|b| title(b).trim().eq_ignore_ascii_case(text))?,
    };
    let payload = picked
        .get("payload")
        .and_then(Value::as_str)
        .filter(|p| !p.is_empty());
    Some(payload.map(str::to_owned).unwrap_or_else(|| title(picked)))
}

/// Rasa's answer: each item's `text`, with its `buttons` or `quick_replies` as numbered lines
/// (remembered so that a number picks the payload), its `image` (or a URL `attachment`) as
/// media of that message, and a `custom` payload's `text` when the item has no other.
pub(super) fn rasa_reply(value: Value) -> Result<Reply, EngineError> {
    let Value::Array(items) = value else {
        return Err(EngineError::Upstream(
            "the Rasa bot's answer is not a JSON array".into(),
        ));
    };
    let mut reply = Reply::default();
    let mut choices: Vec<Value> = Vec::new();
    for item in items {
        let Value::Object(item) = item else {
            return Err(EngineError::Upstream(
                "the Rasa bot's answer holds a non-object".into(),
            ));
        };
        let custom = item.get("custom").filter(|c| !c.is_null());
        let mut text = item
            .get("text")
            .and_then(Value::as_str)
            .or_else(|| custom.and_then(|c| c.get("text")).and_then(Value::as_str))
            .unwrap_or_default()
            .trim()
            .to_owned();
        let options: Vec<&Value> = ["buttons", "quick_replies"]
            .iter()
            .filter_map(|k| item.get(*k).and_then(Value::as_array))
            .flatten()
            .collect();
        if !options.is_empty() {
            // A new set of options replaces the last one: the numbers shown are these.
            choices.clear();
            for (i, option) in options.iter().enumerate() {
                let title = option
                    .get("title")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                if !text.is_empty() {
                    text.push('\n');
                }
                text.push_str(&format!("{}. {}", i + 1, title));
                choices.push((*option).clone());
            }
        }
        let media: Vec<String> = ["image", "attachment"]
            .iter()
            .filter_map(|k| item.get(*k).and_then(Value::as_str))
            .map(str::trim)
            .filter(|u| u.starts_with("http://") || u.starts_with("https://"))
            .map(str::to_owned)
            .collect();
        if text.is_empty() && media.is_empty() {
            let keys: Vec<&str> = item
                .keys()
                .map(String::as_str)
                .filter(|k| *k != "recipient_id")
                .collect();
            tracing::info!(
                keys = ?keys,
                "a Rasa message had nothing Chatwire can send (no text, buttons, image URL, or custom.text); it was skipped"
            );
            continue;
        }
        reply.push_with_media(text, media);
    }
    reply.state = if choices.is_empty() {
        Value::Null
    } else {
        json!({ "rasaButtons": choices })
    };
    Ok(reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rasa_buttons_become_numbered_lines_and_numbers_map_back() {
        let answer = json!([
            {"recipient_id": "+1555", "text": "Where do you want to sit?",
             "buttons": [{"title": "Inside", "payload": "/inside"}, {"title": "Outside", "payload": "/outside"}]},
            {"recipient_id": "+1555", "image": "https://example.com/map.png"}
        ]);
        let reply = rasa_reply(answer).expect("valid");
        assert_eq!(
            reply.messages,
            ["Where do you want to sit?\n1. Inside\n2. Outside", ""]
        );
        assert_eq!(reply.media_of(0), [] as [String; 0]);
        assert_eq!(reply.media_of(1), ["https://example.com/map.png"]);
        assert_eq!(
            chosen_payload(&reply.state, "2").as_deref(),
            Some("/outside")
        );
        assert_eq!(
            chosen_payload(&reply.state, "inside").as_deref(),
            Some("/inside")
        );
        assert_eq!(chosen_payload(&reply.state, "3"), None);
        assert_eq!(chosen_payload(&reply.state, "somewhere else"), None);
        assert!(rasa_reply(json!({"text": "x"})).is_err());
        assert!(rasa_reply(json!(["x"])).is_err());
    }

    #[test]
    fn rasa_images_are_media_and_quick_replies_are_options() {
        let answer = json!([
            {"recipient_id": "+1555", "text": "Here is the menu", "image": "https://example.com/menu.jpg"},
            {"recipient_id": "+1555", "text": "Anything else?",
             "quick_replies": [{"title": "Yes", "payload": "/affirm"}, {"title": "No", "payload": "/deny"}]}
        ]);
        let reply = rasa_reply(answer).expect("valid");
        assert_eq!(
            reply.messages,
            ["Here is the menu", "Anything else?\n1. Yes\n2. No"]
        );
        assert_eq!(reply.media_of(0), ["https://example.com/menu.jpg"]);
        assert!(reply.media_of(1).is_empty());
        assert_eq!(chosen_payload(&reply.state, "2").as_deref(), Some("/deny"));
    }

    #[test]
    fn rasa_custom_payloads_send_their_text_or_nothing() {
        let reply = rasa_reply(json!([
            {"recipient_id": "+1555", "custom": {"text": "From a custom payload", "blocks": []}},
            {"recipient_id": "+1555", "custom": {"type": "carousel", "items": [1, 2]}}
        ]))
        .expect("valid");
        assert_eq!(reply.messages, ["From a custom payload"]);
        assert!(reply.media.is_empty());
        assert_eq!(reply.state, Value::Null);
    }

    #[test]
    fn chatwire_answers_are_checked() {
        let turn_state = json!({"step": 1});
        let mut turn = crate::bot::compliance::turn_with("hi");
        turn.state = turn_state.clone();
        let reply = chatwire_reply(&turn, json!({"messages": ["a", {"text": "b"}, ""], "actions": [{"type": "handoff", "reason": "vip"}, {"type": "dance"}]}))
            .expect("valid");
        assert_eq!(reply.messages, ["a", "b"]);
        assert_eq!(
            reply.actions,
            [Action::Handoff {
                reason: Some("vip".into()),
                attributes: None,
            }]
        );
        assert_eq!(reply.state, turn_state, "absent state is kept");
        assert_eq!(
            chatwire_reply(&turn, json!({"state": null}))
                .expect("valid")
                .state,
            Value::Null
        );
        assert!(chatwire_reply(&turn, json!(["a"])).is_err());
        assert!(chatwire_reply(&turn, json!({"messages": "a"})).is_err());
        assert!(chatwire_reply(&turn, json!({"messages": [1]})).is_err());
    }
}
