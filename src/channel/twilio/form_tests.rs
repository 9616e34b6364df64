//! Inbound and status-callback forms as Twilio really sends them (reference sections (b), (c)).

use super::*;
use crate::domain::delivery::ALL_STATUSES;

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect()
}

/// The D1 inbound SMS fixture from the reference.
fn sms_form() -> Vec<(String, String)> {
    pairs(&[
        ("AccountSid", "AC00000000000000000000000000000001"),
        ("ApiVersion", "2010-04-01"),
        ("Body", "Hello there"),
        ("From", "+15551230001"),
        ("MessageSid", "SM00000000000000000000000000000001"),
        ("NumMedia", "0"),
        ("NumSegments", "1"),
        ("SmsMessageSid", "SM00000000000000000000000000000001"),
        ("SmsSid", "SM00000000000000000000000000000001"),
        ("SmsStatus", "received"),
        ("To", "+15559870002"),
    ])
}

fn with(mut form: Vec<(String, String)>, name: &str, value: &str) -> Vec<(String, String)> {
    form.retain(|(n, _)| n != name);
    form.push((name.to_owned(), value.to_owned()));
    form
}

fn without(mut form: Vec<(String, String)>, name: &str) -> Vec<(String, String)> {
    form.retain(|(n, _)| n != name);
    form
}

#[test]
fn sms_webhook_parses_into_typed_message() {
    let message = InboundMessage::parse(&sms_form()).expect("valid form");
    assert_eq!(message.message_sid, "SM00000000000000000000000000000001");
    assert_eq!(message.account_sid, "AC00000000000000000000000000000001");
    assert_eq!(message.from.to_string(), "+15551230001");
    assert_eq!(message.to.e164(), "+15559870002");
    assert_eq!(message.body, "Hello there");
    assert_eq!(message.channel, ChannelKind::Sms);
    assert!(message.media.is_empty());
    assert_eq!(message.profile_name, None);
    assert_eq!(message.wa_id, None);
}

#[test]
fn whatsapp_webhook_carries_profile_name_and_wa_id() {
    let form = pairs(&[
        ("AccountSid", "AC00000000000000000000000000000001"),
        ("Body", "Olá 👋 ¿qué tal?"),
        ("From", "whatsapp:+5215512345678"),
        ("MessageSid", "SM00000000000000000000000000000002"),
        ("NumMedia", "0"),
        ("ProfileName", "Ana"),
        ("To", "whatsapp:+14155238886"),
        ("WaId", "5215512345678"),
    ]);
    let message = InboundMessage::parse(&form).expect("valid form");
    assert_eq!(message.channel, ChannelKind::WhatsApp);
    assert_eq!(message.from.to_string(), "whatsapp:+5215512345678");
    assert_eq!(message.from.e164(), "+5215512345678");
    assert_eq!(message.profile_name.as_deref(), Some("Ana"));
    assert_eq!(message.wa_id.as_deref(), Some("5215512345678"));
    assert_eq!(message.body, "Olá 👋 ¿qué tal?");
}

#[test]
fn every_media_item_is_collected_in_order() {
    let form = with(
        sms_form(),
        "MessageSid",
        "MM00000000000000000000000000000003",
    );
    let mut form = with(form, "NumMedia", "2");
    form.extend(pairs(&[
        ("MediaUrl1", "https://api.twilio.com/media/ME2"),
        ("MediaContentType1", "application/pdf"),
        ("MediaUrl0", "https://api.twilio.com/media/ME1"),
        ("MediaContentType0", "image/jpeg"),
    ]));
    let message = InboundMessage::parse(&form).expect("valid form");
    assert_eq!(
        message.media,
        vec![
            Media {
                url: "https://api.twilio.com/media/ME1".into(),
                content_type: "image/jpeg".into()
            },
            Media {
                url: "https://api.twilio.com/media/ME2".into(),
                content_type: "application/pdf".into()
            },
        ]
    );
}

#[test]
fn media_only_message_has_empty_body() {
    let mut form = with(without(sms_form(), "Body"), "NumMedia", "1");
    form.push(("MediaUrl0".into(), "https://example.com/a.png".into()));
    let message = InboundMessage::parse(&form).expect("valid form");
    assert_eq!(message.body, "");
    assert_eq!(message.media[0].content_type, "application/octet-stream");
}

#[test]
fn missing_media_url_for_num_media_is_an_error() {
    let form = with(sms_form(), "NumMedia", "1");
    assert!(matches!(
        InboundMessage::parse(&form),
        Err(FormError::Invalid { name, .. }) if name == "MediaUrl0"
    ));
}

#[test]
fn absurd_num_media_is_an_error() {
    for bad in ["11", "-1", "lots"] {
        let form = with(sms_form(), "NumMedia", bad);
        assert!(
            matches!(InboundMessage::parse(&form), Err(FormError::Invalid { name, .. }) if name == "NumMedia"),
            "{bad}"
        );
    }
}

#[test]
fn missing_required_fields_are_named() {
    for name in ["MessageSid", "AccountSid", "From", "To"] {
        assert_eq!(
            InboundMessage::parse(&without(sms_form(), name)),
            Err(FormError::Missing(name))
        );
        assert_eq!(
            InboundMessage::parse(&with(sms_form(), name, "  ")),
            Err(FormError::Missing(name))
        );
    }
}

#[test]
fn malformed_sids_and_addresses_are_invalid() {
    let cases = [
        ("MessageSid", "SM123"),
        ("MessageSid", "XX00000000000000000000000000000001"),
        ("MessageSid", "SM0000000000000000000000000000000!"),
        ("AccountSid", "SM00000000000000000000000000000001"),
        ("From", "5551230001"),
        ("To", "whatsapp:abc"),
    ];
    for (name, value) in cases {
        let result = InboundMessage::parse(&with(sms_form(), name, value));
        assert!(
            matches!(&result, Err(FormError::Invalid { name: n, .. }) if n == name),
            "{name}={value}: {result:?}"
        );
    }
}

#[test]
fn sms_sender_to_whatsapp_number_is_a_channel_mismatch() {
    let form = with(sms_form(), "To", "whatsapp:+15559870002");
    assert_eq!(
        InboundMessage::parse(&form),
        Err(FormError::ChannelMismatch {
            from: ChannelKind::Sms,
            to: ChannelKind::WhatsApp
        })
    );
}

#[test]
fn status_rank_is_monotonic_along_the_lifecycle() {
    use MessageStatus::*;
    let path = [Scheduled, Accepted, Queued, Sending, Sent, Delivered, Read];
    for pair in path.windows(2) {
        assert!(pair[1].advances(pair[0]), "{} -> {}", pair[0], pair[1]);
        assert!(!pair[0].advances(pair[1]), "{} after {}", pair[0], pair[1]);
    }
    for failure in [Failed, Undelivered, Canceled] {
        assert!(failure.is_terminal() && failure.is_failure());
        for status in path {
            assert!(failure.advances(status));
            assert!(
                !status.advances(failure),
                "{status} must not replace {failure}"
            );
        }
    }
    assert!(!Delivered.is_terminal(), "read may still follow delivered");
}

#[test]
fn status_strings_round_trip() {
    for status in ALL_STATUSES {
        assert_eq!(status.as_str().parse::<MessageStatus>(), Ok(status));
        let json = serde_json::to_string(&status).expect("serialize");
        assert_eq!(
            serde_json::from_str::<MessageStatus>(&json).ok(),
            Some(status)
        );
    }
    assert_eq!("Delivered".parse(), Ok(MessageStatus::Delivered));
    assert!("bogus".parse::<MessageStatus>().is_err());
}

#[test]
fn status_callback_parses_status_and_error_code() {
    let form = pairs(&[
        ("MessageSid", "SM00000000000000000000000000000009"),
        ("SmsSid", "SM00000000000000000000000000000009"),
        ("MessageStatus", "undelivered"),
        ("SmsStatus", "undelivered"),
        ("ErrorCode", "30003"),
        ("AccountSid", "AC00000000000000000000000000000001"),
    ]);
    let callback = StatusCallback::parse(&form).expect("valid form");
    assert_eq!(callback.message_sid, "SM00000000000000000000000000000009");
    assert_eq!(callback.status, MessageStatus::Undelivered);
    assert_eq!(callback.error_code, Some(30003));
}

#[test]
fn status_callback_falls_back_to_sms_status() {
    let form = pairs(&[
        ("MessageSid", "SM00000000000000000000000000000009"),
        ("SmsStatus", "delivered"),
    ]);
    let callback = StatusCallback::parse(&form).expect("valid form");
    assert_eq!(callback.status, MessageStatus::Delivered);
    assert_eq!(callback.error_code, None);
}

#[test]
fn status_callback_rejects_missing_or_unknown_status() {
    let sid = ("MessageSid", "SM00000000000000000000000000000009");
    assert_eq!(
        StatusCallback::parse(&pairs(&[sid])),
        Err(FormError::Missing("MessageStatus"))
    );
    assert!(matches!(
        StatusCallback::parse(&pairs(&[sid, ("MessageStatus", "teleported")])),
        Err(FormError::Invalid { .. })
    ));
    assert!(matches!(
        StatusCallback::parse(&pairs(&[
            sid,
            ("MessageStatus", "sent"),
            ("ErrorCode", "x")
        ])),
        Err(FormError::Invalid { .. })
    ));
}
