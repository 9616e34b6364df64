//! The REST client against the in-process emulator (and, for malformed answers, a tiny fake).

use std::time::{Duration, SystemTime};

use axum::http::StatusCode;
use axum::response::IntoResponse;

use super::*;
use crate::channel::twilio::form::MessageStatus;
use crate::emulator::{self, EmulatorConfig, EmulatorHandle, Fault, FaultKind};

const SMS_NUMBER: &str = "+15005550006";
const PERSON: &str = "+15551230001";
const SID: &str = emulator::DEFAULT_ACCOUNT_SID;
const TOKEN: &str = emulator::DEFAULT_AUTH_TOKEN;

fn creds() -> Credentials<'static> {
    Credentials {
        account_sid: SID,
        auth_token: TOKEN,
    }
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
}

async fn setup() -> (EmulatorHandle, TwilioClient) {
    let emu = emulator::spawn(EmulatorConfig::default())
        .await
        .expect("emulator");
    let client = TwilioClient::new(&format!("{}/", emu.url()), http());
    (emu, client)
}

fn text(body: &str) -> SendMessage {
    SendMessage {
        to: PERSON.into(),
        from: SMS_NUMBER.into(),
        body: body.into(),
        ..SendMessage::default()
    }
}

#[tokio::test]
async fn send_message_returns_the_queued_resource() {
    let (emu, client) = setup().await;
    let mut message = text("Hello");
    message.media_urls = vec!["https://example.com/a.png".into()];
    message.status_callback = Some("http://127.0.0.1:9/status".into());
    let sent = client.send_message(&creds(), &message).await.expect("sent");
    assert!(sent.sid.starts_with("MM"), "media message sid {}", sent.sid);
    assert_eq!(sent.status(), Some(MessageStatus::Queued));
    assert_eq!(
        (sent.to.as_str(), sent.from.as_str(), sent.body.as_str()),
        (PERSON, SMS_NUMBER, "Hello")
    );
    assert_eq!(sent.num_media, "1");
    assert_eq!(emu.sent_messages()[0].sid, sent.sid);
}

#[tokio::test]
async fn twilio_refusal_is_permanent_with_code_and_status() {
    let (_emu, client) = setup().await;
    let mut message = text("hi");
    message.to = "12345".into();
    let error = client
        .send_message(&creds(), &message)
        .await
        .expect_err("refused");
    assert!(!error.is_retryable());
    assert_eq!((error.status(), error.code()), (Some(400), Some(21211)));
    assert!(
        error.to_string().contains("not a valid phone number"),
        "{error}"
    );
}

#[tokio::test]
async fn unsubscribed_recipient_is_a_permanent_opt_out() {
    let (emu, client) = setup().await;
    emu.add_fault(Fault {
        count: 1,
        kind: FaultKind::Unsubscribed,
        delay_ms: None,
    });
    let error = client
        .send_message(&creds(), &text("hi"))
        .await
        .expect_err("refused");
    assert!(error.is_opt_out() && !error.is_retryable());
}

#[tokio::test]
async fn rate_limit_is_retryable_and_honours_retry_after() {
    let (emu, client) = setup().await;
    emu.add_fault(Fault {
        count: 1,
        kind: FaultKind::TooManyRequests,
        delay_ms: None,
    });
    let error = client
        .send_message(&creds(), &text("hi"))
        .await
        .expect_err("limited");
    assert!(error.is_retryable());
    assert_eq!((error.status(), error.code()), (Some(429), Some(20429)));
    assert_eq!(error.retry_after(), Some(Duration::from_secs(1)));
    client
        .send_message(&creds(), &text("hi"))
        .await
        .expect("next one goes through");
}

#[tokio::test]
async fn server_error_is_retryable() {
    let (emu, client) = setup().await;
    emu.add_fault(Fault {
        count: 1,
        kind: FaultKind::ServerError,
        delay_ms: None,
    });
    let error = client
        .send_message(&creds(), &text("hi"))
        .await
        .expect_err("failed");
    assert!(error.is_retryable());
    assert_eq!(error.status(), Some(500));
}

#[tokio::test]
async fn timeout_and_connection_failure_are_retryable_without_status() {
    let (emu, client) = setup().await;
    emu.add_fault(Fault {
        count: 1,
        kind: FaultKind::Slow,
        delay_ms: Some(500),
    });
    let impatient = client.clone().with_timeout(Duration::from_millis(50));
    let error = impatient
        .send_message(&creds(), &text("hi"))
        .await
        .expect_err("timed out");
    assert!(error.is_retryable());
    assert_eq!(error.status(), None);
    let nowhere = TwilioClient::new("http://127.0.0.1:9", http());
    let error = nowhere.fetch_account(&creds()).await.expect_err("refused");
    assert!(error.is_retryable() && error.status().is_none());
}

#[tokio::test]
async fn wrong_credentials_are_permanent_20003() {
    let (_emu, client) = setup().await;
    let wrong = Credentials {
        account_sid: SID,
        auth_token: "wrong",
    };
    let error = client.fetch_account(&wrong).await.expect_err("denied");
    assert_eq!(
        (error.status(), error.code(), error.is_retryable()),
        (Some(401), Some(20003), false)
    );
}

#[tokio::test]
async fn malformed_account_sid_is_refused_before_sending() {
    let (_emu, client) = setup().await;
    let sneaky = Credentials {
        account_sid: "AC1/../../other",
        auth_token: TOKEN,
    };
    let error = client.fetch_account(&sneaky).await.expect_err("refused");
    assert_eq!((error.status(), error.is_retryable()), (None, false));
}

#[tokio::test]
async fn fetch_account_and_message() {
    let (_emu, client) = setup().await;
    let account = client.fetch_account(&creds()).await.expect("account");
    assert_eq!(
        (account.sid.as_str(), account.status.as_str()),
        (SID, "active")
    );
    let sent = client
        .send_message(&creds(), &text("hi"))
        .await
        .expect("sent");
    let fetched = client
        .fetch_message(&creds(), &sent.sid)
        .await
        .expect("fetched");
    assert_eq!(fetched.sid, sent.sid);
}

#[tokio::test]
async fn incoming_numbers_can_be_found_and_pointed_at_the_gateway() {
    let (_emu, client) = setup().await;
    let found = client
        .list_incoming_numbers(&creds(), Some(SMS_NUMBER))
        .await
        .expect("listed");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].phone_number, SMS_NUMBER);
    assert!(found[0].sid.starts_with("PN"));
    let updated = client
        .update_incoming_number(
            &creds(),
            &found[0].sid,
            "https://gw.example/v1/integration/twilio/1/webhook",
            Some("https://gw.example/status"),
        )
        .await
        .expect("updated");
    assert_eq!(
        updated.sms_url.as_deref(),
        Some("https://gw.example/v1/integration/twilio/1/webhook")
    );
    assert_eq!(
        updated.status_callback.as_deref(),
        Some("https://gw.example/status")
    );
    let none = client
        .list_incoming_numbers(&creds(), Some("+1999"))
        .await
        .expect("listed");
    assert!(none.is_empty());
}

#[tokio::test]
async fn list_messages_follows_next_page_uri_and_filters() {
    let (_emu, client) = setup().await;
    let before = SystemTime::now() - Duration::from_secs(2);
    for i in 0..5 {
        client
            .send_message(&creds(), &text(&format!("m{i}")))
            .await
            .expect("sent");
    }
    let mut other = text("elsewhere");
    other.to = "+15551230002".into();
    client.send_message(&creds(), &other).await.expect("sent");

    let paged = client.clone().with_page_size(2);
    let filter = MessageFilter {
        to: Some(PERSON.into()),
        date_sent_after: Some(before),
        ..MessageFilter::default()
    };
    let listed = paged
        .list_messages(&creds(), &filter)
        .await
        .expect("listed");
    let bodies: Vec<&str> = listed.iter().map(|m| m.body.as_str()).collect();
    assert_eq!(bodies, ["m4", "m3", "m2", "m1", "m0"]);

    let later = MessageFilter {
        date_sent_after: Some(SystemTime::now() + Duration::from_secs(3600)),
        ..MessageFilter::default()
    };
    assert!(paged
        .list_messages(&creds(), &later)
        .await
        .expect("listed")
        .is_empty());
}

/// A server that answers every request with one canned response.
async fn canned(status: u16, body: &'static str) -> String {
    let app = axum::Router::new().fallback(move || async move {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
        (status, [("content-type", "application/json")], body).into_response()
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

#[tokio::test]
async fn non_json_gateway_error_is_retryable_with_quoted_body() {
    let base = canned(502, "<html>Bad Gateway</html>").await;
    let error = TwilioClient::new(&base, http())
        .fetch_account(&creds())
        .await
        .expect_err("502");
    assert!(error.is_retryable());
    assert_eq!((error.status(), error.code()), (Some(502), None));
    assert!(error.to_string().contains("Bad Gateway"));
}

#[tokio::test]
async fn foreign_next_page_uri_is_not_followed() {
    let base = canned(
        200,
        r#"{"messages": [], "next_page_uri": "https://evil.example/steal"}"#,
    )
    .await;
    let client = TwilioClient::new(&base, http());
    let error = client
        .list_messages(&creds(), &MessageFilter::default())
        .await
        .expect_err("refused");
    assert!(!error.is_retryable());
    assert!(error.to_string().contains("next_page_uri"));
}

#[tokio::test]
async fn unreadable_success_body_is_permanent() {
    let base = canned(201, "not json").await;
    let error = TwilioClient::new(&base, http())
        .send_message(&creds(), &text("hi"))
        .await
        .expect_err("garbage");
    assert!(
        !error.is_retryable(),
        "Twilio accepted it; resending could duplicate"
    );
}

#[test]
fn debug_output_never_contains_the_token() {
    let creds = Credentials {
        account_sid: SID,
        auth_token: "super-secret-token",
    };
    assert!(!format!("{creds:?}").contains("super-secret-token"));
    let client = TwilioClient::new("https://api.twilio.com", reqwest::Client::new());
    assert!(!format!("{client:?}").contains("super-secret-token"));
}

#[test]
fn errors_read_as_sentences_without_rust_option_syntax() {
    let refused = TwilioError::Permanent {
        status: Some(401),
        code: Some(20003),
        message: "Authenticate".into(),
    };
    assert_eq!(
        refused.to_string(),
        "Twilio refused the call (HTTP 401, Twilio error 20003): Authenticate"
    );
    let unanswered = TwilioError::Retryable {
        status: None,
        code: None,
        retry_after: None,
        message: "connection reset".into(),
    };
    assert_eq!(
        unanswered.to_string(),
        "Twilio call failed, will retry (no answer): connection reset"
    );
}
