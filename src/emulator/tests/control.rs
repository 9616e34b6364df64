//! The control API over HTTP, forced statuses, waiting helpers and CLI arguments.

use std::time::Duration;

use serde_json::{json, Value};

use super::*;
use crate::channel::twilio::form::{MessageStatus, StatusCallback};

#[tokio::test]
async fn control_api_over_http() {
    let emu = emulator().await;
    let receiver = Receiver::spawn().await;
    let http = client();
    let control = |path: &str| format!("{}/_emulator/{path}", emu.url());
    let number = json!({"account_sid": DEFAULT_ACCOUNT_SID, "address": SMS_NUMBER, "sms_url": format!("{}/in", receiver.base)});
    let response = http
        .post(control("numbers"))
        .json(&number)
        .send()
        .await
        .expect("numbers");
    assert_eq!(response.status(), 200);

    let inbound = json!({"from": PERSON, "to": SMS_NUMBER, "body": "hey"});
    let result: Value = http
        .post(control("inbound"))
        .json(&inbound)
        .send()
        .await
        .expect("inbound")
        .json()
        .await
        .expect("json");
    assert_eq!(
        (result["status"].clone(), result["attempts"].clone()),
        (json!(200), json!(1))
    );
    let sid = result["message_sid"].clone();
    let replay: Value = http
        .post(control("inbound/replay"))
        .json(&json!({"message_sid": sid}))
        .send()
        .await
        .expect("replay")
        .json()
        .await
        .expect("json");
    assert_eq!(replay["message_sid"], sid);
    let webhooks: Value = http
        .get(control("webhooks"))
        .send()
        .await
        .expect("webhooks")
        .json()
        .await
        .expect("json");
    assert_eq!(webhooks["webhooks"].as_array().map(Vec::len), Some(2));

    let fault = json!({"count": 2, "kind": "429"});
    let pending: Value = http
        .post(control("faults"))
        .json(&fault)
        .send()
        .await
        .expect("faults")
        .json()
        .await
        .expect("json");
    assert_eq!(pending["pending"], 2);
    let (status, _, _) = create(&emu, &[("To", PERSON), ("From", SMS_NUMBER), ("Body", "x")]).await;
    assert_eq!(status, 429);

    let bad = http
        .post(control("faults"))
        .body("{nope")
        .send()
        .await
        .expect("faults");
    assert_eq!(bad.status(), 400);
    assert_eq!(
        bad.json::<Value>().await.expect("json")["code"],
        "bad_request"
    );

    let reset = http.post(control("reset")).send().await.expect("reset");
    assert_eq!(reset.status(), 200);
    let (status, _, _) = create(&emu, &[("To", PERSON), ("From", SMS_NUMBER), ("Body", "x")]).await;
    assert_eq!(status, 201, "reset cleared the remaining fault");
    let messages: Value = http
        .get(control("messages"))
        .send()
        .await
        .expect("messages")
        .json()
        .await
        .expect("json");
    let listed = messages["messages"].as_array().expect("list");
    assert_eq!(listed.len(), 1, "reset cleared earlier traffic");
    assert!(listed[0]["status"].is_string());
}

#[tokio::test]
async fn forced_failure_posts_callback_with_error_code() {
    let emu = emulator().await;
    let receiver = Receiver::spawn().await;
    let callback = format!("{}/status", receiver.base);
    let (_, _, json) = create(
        &emu,
        &[
            ("To", PERSON),
            ("From", SMS_NUMBER),
            ("Body", "x"),
            ("StatusCallback", &callback),
        ],
    )
    .await;
    let sid = json["sid"].as_str().expect("sid");
    let status = emu
        .set_status(sid, MessageStatus::Undelivered, Some(30003))
        .await
        .expect("known message");
    assert_eq!(status, Some(200));
    let hits = receiver.wait_for_hits(1).await;
    let failure = hits
        .iter()
        .find(|h| h.param("MessageStatus") == Some("undelivered"))
        .expect("failure callback");
    assert_eq!(
        StatusCallback::parse(&failure.params)
            .expect("parses")
            .error_code,
        Some(30003)
    );
    tokio::time::sleep(Duration::from_millis(60)).await;
    let message = emu
        .sent_messages()
        .into_iter()
        .find(|m| m.sid == sid)
        .expect("message");
    assert_eq!(
        message.status(),
        Some(MessageStatus::Undelivered),
        "progress never overrides a terminal status"
    );
}

#[tokio::test]
async fn wait_for_messages_returns_when_enough_exist_and_times_out_otherwise() {
    let emu = emulator().await;
    let short = emu.wait_for_messages(1, Duration::from_millis(50)).await;
    assert!(short.is_err());
    let url = emu.url().to_owned();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(20)).await;
        client()
            .post(format!(
                "{url}/2010-04-01/Accounts/{DEFAULT_ACCOUNT_SID}/Messages.json"
            ))
            .basic_auth(DEFAULT_ACCOUNT_SID, Some(DEFAULT_AUTH_TOKEN))
            .form(&[("To", PERSON), ("From", SMS_NUMBER), ("Body", "late")])
            .send()
            .await
    });
    let messages = emu
        .wait_for_messages(1, Duration::from_secs(2))
        .await
        .expect("arrives");
    assert_eq!(messages[0].body, "late");
}

#[test]
fn cli_args_parse_accounts_and_numbers() {
    use clap::Parser;
    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        emulator: EmulatorArgs,
    }
    let sid = "AC0123456789abcdef0123456789abcdef";
    let cli = Cli::try_parse_from([
        "x",
        "--listen",
        "127.0.0.1:9000",
        "--account",
        &format!("{sid}:secret"),
        "--number",
        &format!("{sid}:whatsapp:+14155238886=http://127.0.0.1:8080/hook"),
    ])
    .expect("parses");
    let config = EmulatorConfig::from_args(&cli.emulator);
    assert_eq!(config.accounts[0].sid, sid);
    assert_eq!(
        config.numbers[0].address.to_string(),
        "whatsapp:+14155238886"
    );
    assert_eq!(
        config.numbers[0].sms_url.as_deref(),
        Some("http://127.0.0.1:8080/hook")
    );
    assert!(Cli::try_parse_from(["x", "--account", "nope"]).is_err());
    assert!(Cli::try_parse_from(["x", "--number", "AC1:12345"]).is_err());
    let defaults = EmulatorConfig::from_args(&Cli::try_parse_from(["x"]).expect("parses").emulator);
    assert_eq!(defaults.accounts[0].sid, DEFAULT_ACCOUNT_SID);
    assert_eq!(defaults.numbers.len(), 2);
}
