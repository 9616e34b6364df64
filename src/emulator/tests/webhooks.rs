//! Signed webhooks: inbound messages, retries, replays, opt-out keywords, status callbacks.

use std::time::Duration;

use super::*;
use crate::channel::twilio::form::{InboundMessage, Media, MessageStatus, StatusCallback};
use crate::channel::twilio::signature;

#[tokio::test]
async fn status_callbacks_post_sent_then_delivered_signed_over_exact_url() {
    let emu = emulator().await;
    let receiver = Receiver::spawn().await;
    let callback = format!("{}/status?integration=7&kind=sms", receiver.base);
    let (_, _, json) = create(
        &emu,
        &[
            ("To", PERSON),
            ("From", SMS_NUMBER),
            ("Body", "hi"),
            ("StatusCallback", &callback),
        ],
    )
    .await;
    let sid = json["sid"].as_str().expect("sid").to_owned();
    let hits = receiver.wait_for_hits(2).await;
    assert_eq!(hits.len(), 2);
    let statuses: Vec<_> = hits
        .iter()
        .map(|h| h.param("MessageStatus").unwrap_or_default())
        .collect();
    assert_eq!(statuses, ["sent", "delivered"]);
    for hit in &hits {
        let parsed = StatusCallback::parse(&hit.params).expect("parses");
        assert_eq!(parsed.message_sid, sid);
        assert_eq!(hit.param("SmsStatus"), hit.param("MessageStatus"));
        assert_eq!(hit.header("user-agent"), "TwilioProxy/1.1");
        assert!(signature::validate(
            DEFAULT_AUTH_TOKEN,
            &callback,
            &hit.params,
            hit.header("x-twilio-signature")
        ));
    }
    assert!(hits[1]
        .param("RawDlrDoneDate")
        .is_some_and(|d| d.len() == 10));
    let done = emu
        .wait_for_status(&sid, MessageStatus::Delivered, Duration::from_secs(2))
        .await
        .expect("delivered");
    assert_eq!(done.status(), Some(MessageStatus::Delivered));
    // The emulator records a delivery once the receiver's response is back, which can be just
    // after the receiver saw the request.
    for _ in 0..100 {
        if emu.status_callbacks().len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(emu.status_callbacks().len(), 2);
}

#[tokio::test]
async fn number_status_callback_is_used_when_message_has_none() {
    let emu = emulator().await;
    let receiver = Receiver::spawn().await;
    let callback = format!("{}/number-status", receiver.base);
    emu.configure_number(&NumberConfig {
        account_sid: DEFAULT_ACCOUNT_SID.into(),
        address: SMS_NUMBER.parse().expect("address"),
        sms_url: None,
        status_callback: Some(callback.clone()),
    })
    .expect("configure");
    create(
        &emu,
        &[("To", PERSON), ("From", SMS_NUMBER), ("Body", "hi")],
    )
    .await;
    let hits = receiver.wait_for_hits(2).await;
    assert_eq!(hits.len(), 2);
    assert!(hits.iter().all(|h| h.uri == "/number-status"));
}

#[tokio::test]
async fn inbound_webhook_is_a_signed_twilio_form() {
    let (emu, receiver) = wired().await;
    let result = emu
        .send_text(PERSON, SMS_NUMBER, "Hello there")
        .await
        .expect("delivered");
    assert_eq!((result.status, result.attempts), (Some(200), 1));
    let hits = receiver.hits();
    assert_eq!(hits.len(), 1);
    let hit = &hits[0];
    let url = format!("{}/sms?tenant=acme", receiver.base);
    assert!(signature::validate(
        DEFAULT_AUTH_TOKEN,
        &url,
        &hit.params,
        hit.header("x-twilio-signature")
    ));
    assert_eq!(
        hit.header("content-type"),
        "application/x-www-form-urlencoded"
    );
    assert_eq!(hit.header("user-agent"), "TwilioProxy/1.1");
    assert!(!hit.header("i-twilio-idempotency-token").is_empty());
    let message = InboundMessage::parse(&hit.params).expect("parses");
    assert_eq!(message.message_sid, result.message_sid);
    assert_eq!(message.account_sid, DEFAULT_ACCOUNT_SID);
    assert_eq!(
        (message.from.to_string(), message.to.to_string()),
        (PERSON.into(), SMS_NUMBER.into())
    );
    assert_eq!(message.body, "Hello there");
    for (name, value) in [
        ("SmsStatus", "received"),
        ("ApiVersion", "2010-04-01"),
        ("NumMedia", "0"),
        ("NumSegments", "1"),
    ] {
        assert_eq!(hit.param(name), Some(value), "{name}");
    }
    assert_eq!(hit.param("SmsSid"), Some(result.message_sid.as_str()));
    assert_eq!(hit.param("WaId"), None);
}

#[tokio::test]
async fn whatsapp_inbound_carries_profile_name_and_wa_id() {
    let (emu, receiver) = wired().await;
    let mut request = text(WA_NUMBER, "Olá 👋");
    request.from = "whatsapp:+5215512345678".into();
    request.profile_name = Some("Ana".into());
    emu.inject_inbound(request).await.expect("delivered");
    let hit = &receiver.hits()[0];
    let message = InboundMessage::parse(&hit.params).expect("parses");
    assert_eq!(message.profile_name.as_deref(), Some("Ana"));
    assert_eq!(message.wa_id.as_deref(), Some("5215512345678"));
    assert_eq!(hit.param("MessageType"), Some("text"));
    assert_eq!(hit.param("To"), Some(WA_NUMBER));
}

#[tokio::test]
async fn inbound_with_media_lists_every_item() {
    let (emu, receiver) = wired().await;
    let mut request = text(SMS_NUMBER, "");
    request.media = vec![
        Media {
            url: "https://example.com/a.jpg".into(),
            content_type: "image/jpeg".into(),
        },
        Media {
            url: "https://example.com/b.pdf".into(),
            content_type: "application/pdf".into(),
        },
    ];
    let result = emu
        .inject_inbound(request.clone())
        .await
        .expect("delivered");
    assert!(result.message_sid.starts_with("MM"));
    let message = InboundMessage::parse(&receiver.hits()[0].params).expect("parses");
    assert_eq!(message.media, request.media);
}

/// Points the SMS number at the receiver with `fragment` (connection overrides) appended.
async fn wired_with(fragment: &str) -> (EmulatorHandle, Receiver) {
    let (emu, receiver) = wired().await;
    emu.configure_number(&NumberConfig {
        account_sid: DEFAULT_ACCOUNT_SID.into(),
        address: SMS_NUMBER.parse().expect("address"),
        sms_url: Some(format!("{}/sms?tenant=acme{fragment}", receiver.base)),
        status_callback: None,
    })
    .expect("configure");
    (emu, receiver)
}

#[tokio::test]
async fn inbound_webhook_is_retried_on_5xx_with_the_same_message_sid_when_the_url_asks() {
    let (emu, receiver) = wired_with("#rc=5&rp=ct,5xx").await;
    receiver.answer(&[500, 503]);
    let result = emu
        .send_text(PERSON, SMS_NUMBER, "retry me")
        .await
        .expect("delivered");
    assert_eq!((result.status, result.attempts), (Some(200), 3));
    let hits = receiver.hits();
    assert_eq!(hits.len(), 3);
    assert!(hits
        .iter()
        .all(|h| h.param("MessageSid") == Some(result.message_sid.as_str())));
    let token = hits[0].header("i-twilio-idempotency-token");
    assert!(hits
        .iter()
        .all(|h| h.header("i-twilio-idempotency-token") == token));
    // The fragment is not sent, and the signature is over the URL without it.
    assert!(hits.iter().all(|h| signature::validate(
        DEFAULT_AUTH_TOKEN,
        &format!("{}/sms?tenant=acme", receiver.base),
        &h.params,
        h.header("x-twilio-signature")
    )));
}

#[tokio::test]
async fn without_overrides_a_5xx_is_not_retried_as_twilio_does_not() {
    let (emu, receiver) = wired().await;
    receiver.answer(&[503]);
    let result = emu
        .send_text(PERSON, SMS_NUMBER, "once")
        .await
        .expect("answered");
    assert_eq!((result.status, result.attempts), (Some(503), 1));
}

#[tokio::test]
async fn retries_stop_at_the_count_the_url_gives() {
    let (emu, receiver) = wired_with("#rc=2&rp=5xx").await;
    receiver.answer(&[500, 500, 500, 500]);
    let result = emu
        .send_text(PERSON, SMS_NUMBER, "three tries")
        .await
        .expect("answered");
    assert_eq!((result.status, result.attempts), (Some(500), 3));
}

#[tokio::test]
async fn a_url_with_an_unknown_retry_policy_is_not_called() {
    let (emu, receiver) = wired_with("#rp=sometimes").await;
    let result = emu
        .send_text(PERSON, SMS_NUMBER, "never")
        .await
        .expect("attempted");
    assert_eq!((result.status, result.attempts), (None, 0));
    assert!(result.error.unwrap_or_default().contains("11243"));
    assert!(receiver.hits().is_empty());
}

#[tokio::test]
async fn inbound_webhook_is_not_retried_on_4xx() {
    let (emu, receiver) = wired().await;
    receiver.answer(&[403]);
    let result = emu
        .send_text(PERSON, SMS_NUMBER, "forbidden")
        .await
        .expect("answered");
    assert_eq!((result.status, result.attempts), (Some(403), 1));
}

#[tokio::test]
async fn unreachable_webhook_reports_no_status_after_all_attempts() {
    let emu = emulator().await;
    emu.configure_number(&NumberConfig {
        account_sid: DEFAULT_ACCOUNT_SID.into(),
        address: SMS_NUMBER.parse().expect("address"),
        sms_url: Some("http://127.0.0.1:9/closed".into()),
        status_callback: None,
    })
    .expect("configure");
    let result = emu
        .send_text(PERSON, SMS_NUMBER, "anyone?")
        .await
        .expect("attempted");
    // Twilio's default without overrides: one retry, because the connection failed.
    assert_eq!((result.status, result.attempts), (None, 2));
    assert!(result.error.is_some());
}

#[tokio::test]
async fn replay_resends_the_same_message_sid() {
    let (emu, receiver) = wired().await;
    let first = emu
        .send_text(PERSON, SMS_NUMBER, "once")
        .await
        .expect("delivered");
    let again = emu
        .replay_inbound(&first.message_sid)
        .await
        .expect("replayed");
    assert_eq!(again.message_sid, first.message_sid);
    let hits = receiver.hits();
    assert_eq!(hits.len(), 2);
    assert_eq!(hits[0].params, hits[1].params);
    assert_eq!(
        hits[0].header("x-twilio-signature"),
        hits[1].header("x-twilio-signature")
    );
    assert!(emu
        .replay_inbound("SM00000000000000000000000000000000")
        .await
        .is_err());
}

#[tokio::test]
async fn inbound_to_unknown_or_unwired_number_is_refused() {
    let emu = emulator().await;
    let unknown = emu.send_text(PERSON, "+15557777777", "hi").await;
    assert_eq!(unknown.map_err(|e| e.status), Err(404));
    let unwired = emu.send_text(PERSON, SMS_NUMBER, "hi").await;
    assert_eq!(unwired.map_err(|e| e.status), Err(409));
    let bad = emu.send_text("not a number", SMS_NUMBER, "hi").await;
    assert_eq!(bad.map_err(|e| e.status), Err(400));
}

#[tokio::test]
async fn stop_opts_out_and_start_opts_back_in() {
    let (emu, receiver) = wired().await;
    let stop = emu
        .send_text(PERSON, SMS_NUMBER, "  stop ")
        .await
        .expect("delivered");
    assert_eq!(stop.opt_out.as_deref(), Some("STOP"));
    assert_eq!(
        receiver.hits().len(),
        1,
        "the STOP webhook is still forwarded"
    );
    let (status, _, json) = create(
        &emu,
        &[("To", PERSON), ("From", SMS_NUMBER), ("Body", "hi")],
    )
    .await;
    assert_eq!((status, json["code"].as_i64()), (400, Some(21610)));
    let other = emu
        .send_text(PERSON, SMS_NUMBER, "stop texting me")
        .await
        .expect("delivered");
    assert_eq!(other.opt_out, None, "only a bare keyword counts");
    let start = emu
        .send_text(PERSON, SMS_NUMBER, "START")
        .await
        .expect("delivered");
    assert_eq!(start.opt_out.as_deref(), Some("START"));
    let (status, _, _) = create(
        &emu,
        &[("To", PERSON), ("From", SMS_NUMBER), ("Body", "hi")],
    )
    .await;
    assert_eq!(status, 201);
}
