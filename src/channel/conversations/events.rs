//! Twilio Conversations' post-event webhook, parsed: `onMessageAdded` becomes a message for the
//! pipeline unless the bot, an agent or the system wrote it; `onDeliveryUpdated` a delivery
//! receipt; `onConversationStateUpdated` to `closed` the end of the thread's session.
use crate::channel::{Event, InboundMessage, ProviderId, Refusal, StatusUpdate};
use crate::domain::address::Address;
use crate::domain::delivery::MessageStatus;

/// The key Chatwire puts in the Attributes of every message it posts.
pub const OWN_ATTRIBUTE: &str = "chatwire";

fn get<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

fn required<'a>(params: &'a [(String, String)], name: &str) -> Result<&'a str, Refusal> {
    get(params, name).ok_or_else(|| Refusal::Malformed(format!("{name} is missing")))
}

/// The thread address of a Conversation: every participant's message lands in its session.
pub fn thread(conversation_sid: &str) -> Result<Address, Refusal> {
    Address::parse(&format!("chat:{conversation_sid}"))
        .map_err(|e| Refusal::Malformed(format!("ConversationSid: {e}")))
}

/// Why a message must not start a turn, if it must not.
fn not_a_person(params: &[(String, String)], identity: &str) -> Option<String> {
    let author = get(params, "Author").unwrap_or("system");
    if author == identity {
        return Some("written by the bot's own identity".into());
    }
    if author == "system" || get(params, "ParticipantSid").is_none() {
        return Some("written by the system (no participant)".into());
    }
    let attributes: serde_json::Value = get(params, "Attributes")
        .and_then(|a| serde_json::from_str(a).ok())
        .unwrap_or_default();
    if attributes.get(OWN_ATTRIBUTE).is_some() {
        return Some("posted by Chatwire".into());
    }
    if attributes["role"] == "agent" {
        return Some("written by an agent".into());
    }
    None
}

/// The event a verified callback carries. `identity` is the bot's author name.
pub fn parse(params: &[(String, String)], identity: &str) -> Result<Event, Refusal> {
    let kind = required(params, "EventType")?;
    match kind {
        "onMessageAdded" => {
            let conversation = required(params, "ConversationSid")?;
            if let Some(why) = not_a_person(params, identity) {
                return Ok(Event::Ignored(why));
            }
            let author = required(params, "Author")?;
            let to = Address::parse(&format!("chat:{identity}"))
                .map_err(|e| Refusal::Malformed(format!("identity: {e}")))?;
            Ok(Event::Message(InboundMessage {
                id: ProviderId(required(params, "MessageSid")?.to_owned()),
                account: get(params, "AccountSid").map(str::to_owned),
                from: thread(conversation)?,
                to,
                body: get(params, "Body").unwrap_or_default().to_owned(),
                media: Vec::new(),
                profile_name: Some(author.to_owned()),
                // An SDK identity is not an address; a phone or WhatsApp author is.
                author: Address::parse(author).ok(),
                received_at: None,
            }))
        }
        "onDeliveryUpdated" => {
            let status = required(params, "Status")?;
            let status: MessageStatus = status
                .parse()
                .map_err(|_| Refusal::Malformed(format!("unknown delivery status {status:?}")))?;
            Ok(Event::Status(StatusUpdate {
                id: ProviderId(required(params, "MessageSid")?.to_owned()),
                status,
                error_code: get(params, "ErrorCode").and_then(|c| c.parse().ok()),
            }))
        }
        "onConversationStateUpdated" if get(params, "StateTo") == Some("closed") => {
            Ok(Event::Ended {
                thread: thread(required(params, "ConversationSid")?)?,
            })
        }
        other => Ok(Event::Ignored(format!("event {other} is not used"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    const CH: &str = "CH00000000000000000000000000000001";

    fn added(author: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut p = params(&[
            ("EventType", "onMessageAdded"),
            ("ConversationSid", CH),
            ("MessageSid", "IM00000000000000000000000000000001"),
            ("Author", author),
            ("Body", "hi"),
            ("ParticipantSid", "MB00000000000000000000000000000001"),
        ]);
        p.extend(params(extra));
        p
    }

    #[test]
    fn a_person_writing_is_a_message_of_the_conversation_thread() {
        let Ok(Event::Message(m)) = parse(&added("whatsapp:+15551230001", &[]), "bot") else {
            panic!("expected a message");
        };
        assert_eq!(m.from.to_string(), format!("chat:{CH}"));
        assert_eq!(m.to.to_string(), "chat:bot");
        assert_eq!(
            m.author.map(|a| a.to_string()),
            Some("whatsapp:+15551230001".into())
        );
        assert_eq!(m.profile_name.as_deref(), Some("whatsapp:+15551230001"));
    }

    #[test]
    fn the_bot_agents_and_the_system_never_start_a_turn() {
        for p in [
            added("bot", &[]),
            added("system", &[]),
            added("+15551230001", &[("Attributes", r#"{"chatwire":{}}"#)]),
            added("ana", &[("Attributes", r#"{"role":"agent"}"#)]),
            params(&[
                ("EventType", "onMessageAdded"),
                ("ConversationSid", CH),
                ("MessageSid", "IM1"),
                ("Author", "someone"),
            ]),
        ] {
            assert!(matches!(parse(&p, "bot"), Ok(Event::Ignored(_))), "{p:?}");
        }
    }

    #[test]
    fn receipts_and_closing_are_mapped() {
        let receipt = params(&[
            ("EventType", "onDeliveryUpdated"),
            ("MessageSid", "IM1"),
            ("Status", "failed"),
            ("ErrorCode", "63016"),
        ]);
        assert_eq!(
            parse(&receipt, "bot"),
            Ok(Event::Status(StatusUpdate {
                id: ProviderId("IM1".into()),
                status: MessageStatus::Failed,
                error_code: Some(63016),
            }))
        );
        let closed = params(&[
            ("EventType", "onConversationStateUpdated"),
            ("ConversationSid", CH),
            ("StateFrom", "active"),
            ("StateTo", "closed"),
        ]);
        assert!(matches!(parse(&closed, "bot"), Ok(Event::Ended { .. })));
        assert!(matches!(
            parse(&params(&[("EventType", "onParticipantAdded")]), "bot"),
            Ok(Event::Ignored(_))
        ));
        assert!(matches!(
            parse(&params(&[]), "bot"),
            Err(Refusal::Malformed(_))
        ));
    }
}
