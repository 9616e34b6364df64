//! Reply rendering, in one place for every producer: texts become stored messages and the
//! outbox parts that send them on the conversation's channel.
//!
//! Markdown is turned into plain text only where it was written as markdown (an LLM's answer)
//! and only for SMS, which shows it as literal asterisks and brackets; texts that people wrote
//! (flows, FAQ answers, `initiate`) go out as written. Long texts are split at sentence or word
//! boundaries into parts of at most 1,600 characters, each with its segment count.
use crate::bot::markdown;
use crate::domain::address::{Address, ChannelKind};
use crate::domain::ids;
use crate::sms;
use crate::store::outbox::NewOutbox;
use crate::store::outgoing::{Author, NewMessage};

/// Where a conversation's messages go: the integration, the channel that carries them, the
/// person and our side.
#[derive(Debug, Clone)]
pub struct Route {
    pub integration_id: String,
    pub channel: String,
    pub to: Address,
    pub from: Address,
}

/// One text to send and how it was written.
#[derive(Debug, Clone)]
pub struct Text {
    pub body: String,
    pub markdown: bool,
    pub media: Vec<String>,
    /// Someone other than the route's person (a flow notifying a staff phone).
    pub to: Option<Address>,
    /// The approved template it goes out as if it would leave outside WhatsApp's 24-hour
    /// window (`{"contentSid", "contentVariables"}`, given with the call); the integration's
    /// `whatsappTemplate` when `None`.
    pub template: Option<serde_json::Value>,
}

impl Text {
    /// A text sent as written.
    pub fn plain(body: impl Into<String>) -> Self {
        Text {
            body: body.into(),
            markdown: false,
            media: Vec::new(),
            to: None,
            template: None,
        }
    }
}

/// The stored messages and outbox rows for `texts`, in order. Blank texts without media are
/// dropped.
pub fn render(
    route: &Route,
    conversation_id: Option<&str>,
    author: Author,
    tokens: Option<i64>,
    texts: &[Text],
) -> (Vec<NewMessage>, Vec<NewOutbox>) {
    let mut messages = Vec::new();
    let mut outbox = Vec::new();
    for text in texts
        .iter()
        .filter(|t| !t.body.trim().is_empty() || !t.media.is_empty())
    {
        let redirected;
        let route = match &text.to {
            Some(to) => {
                redirected = Route {
                    to: to.clone(),
                    from: route.from.with_channel(to.channel()),
                    ..route.clone()
                };
                &redirected
            }
            None => route,
        };
        let body = match (text.markdown, route.to.channel()) {
            (true, ChannelKind::Sms) => markdown::to_plain_text(&text.body),
            _ => text.body.clone(),
        };
        let id = ids::new_id();
        let template = text.template.as_ref().map(ToString::to_string);
        outbox.extend(
            parts(route, conversation_id, Some(&id), &body, &text.media)
                .into_iter()
                .map(|part| NewOutbox {
                    template: template.clone(),
                    ..part
                }),
        );
        messages.push(NewMessage {
            id,
            author: author.clone(),
            text: body,
            tokens,
        });
    }
    (messages, outbox)
}

/// Splits one text into outbox parts; media travel with the first part.
pub fn parts(
    route: &Route,
    conversation_id: Option<&str>,
    message_id: Option<&str>,
    body: &str,
    media: &[String],
) -> Vec<NewOutbox> {
    let mut split = sms::split_reply(body, sms::MAX_BODY_CHARS);
    if split.is_empty() {
        split.push(String::new());
    }
    split
        .into_iter()
        .enumerate()
        .map(|(i, part)| {
            let info = sms::segments(&part);
            NewOutbox {
                integration_id: route.integration_id.clone(),
                channel: route.channel.clone(),
                conversation_id: conversation_id.map(str::to_owned),
                message_id: message_id.map(str::to_owned),
                part: i as i64,
                recipient: route.to.to_string(),
                sender: route.from.to_string(),
                segments: i64::from(info.segments),
                encoding: match info.encoding {
                    sms::Encoding::Gsm7 => "GSM-7",
                    sms::Encoding::Ucs2 => "UCS-2",
                },
                media: if i == 0 { media.to_vec() } else { Vec::new() },
                body: part,
                correlation_id: None,
                trace_parent: None,
                template: None,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(to: &str) -> Route {
        Route {
            integration_id: "i".into(),
            channel: "twilio".into(),
            to: Address::parse(to).expect("to"),
            from: Address::parse("+15005550006").expect("from"),
        }
    }

    #[test]
    fn markdown_is_flattened_only_when_written_as_markdown_and_only_for_sms() {
        let llm = Text {
            body: "**Yes**, see [the docs](https://x.test)".into(),
            markdown: true,
            media: Vec::new(),
            to: None,
            template: None,
        };
        let flow = Text::plain("Reply *YES* to confirm __init__");
        let (sms, _) = render(
            &route("+15551230001"),
            None,
            Author::Bot,
            None,
            &[llm.clone(), flow.clone()],
        );
        assert!(!sms[0].text.contains("**") && sms[0].text.starts_with("Yes"));
        assert_eq!(sms[1].text, "Reply *YES* to confirm __init__");
        let (wa, _) = render(
            &route("whatsapp:+15551230001"),
            None,
            Author::Bot,
            None,
            &[llm],
        );
        assert_eq!(wa[0].text, "**Yes**, see [the docs](https://x.test)");
    }

    #[test]
    fn long_texts_become_ordered_parts_with_media_on_the_first() {
        let body = "A sentence that is long enough. ".repeat(80);
        let text = Text {
            body,
            markdown: false,
            media: vec!["https://x.test/a.png".into()],
            to: None,
            template: None,
        };
        let (messages, rows) = render(
            &route("+15551230001"),
            Some("c"),
            Author::Bot,
            None,
            &[text],
        );
        assert_eq!(messages.len(), 1);
        assert!(rows.len() >= 2);
        assert!(rows
            .iter()
            .all(|r| r.body.chars().count() <= sms::MAX_BODY_CHARS));
        assert_eq!(rows[0].media, vec!["https://x.test/a.png".to_owned()]);
        assert!(rows[1..].iter().all(|r| r.media.is_empty()));
        assert_eq!(
            rows.iter().map(|r| r.part).collect::<Vec<_>>(),
            (0..rows.len() as i64).collect::<Vec<_>>()
        );
    }

    #[test]
    fn a_text_for_someone_else_goes_to_them_from_our_number() {
        let staff = Text {
            to: Some(Address::parse("+15559990000").expect("staff")),
            template: None,
            ..Text::plain("New lead")
        };
        let (_, rows) = render(
            &route("whatsapp:+15551230001"),
            None,
            Author::Bot,
            None,
            &[staff],
        );
        assert_eq!(rows[0].recipient, "+15559990000");
        assert_eq!(rows[0].sender, "+15005550006");
    }

    #[test]
    fn blank_texts_are_dropped_but_media_only_messages_are_kept() {
        let media_only = Text {
            body: String::new(),
            markdown: false,
            media: vec!["https://x.test/a.png".into()],
            to: None,
            template: None,
        };
        let (messages, rows) = render(
            &route("+15551230001"),
            None,
            Author::Bot,
            None,
            &[Text::plain("  "), media_only],
        );
        assert_eq!(messages.len(), 1);
        assert_eq!(rows.len(), 1);
    }
}
