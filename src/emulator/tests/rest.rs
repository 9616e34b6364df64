//! The REST subset: creates, validation codes, faults, listing, accounts and numbers.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::*;

#[tokio::test]
async fn create_message_returns_201_with_full_resource() {
    let emu = emulator().await;
    let (status, _, json) = create(
        &emu,
        &[("To", PERSON), ("From", SMS_NUMBER), ("Body", "Hello! 👍")],
    )
    .await;
    assert_eq!(status, 201);
    let sid = json["sid"].as_str().expect("sid");
    assert!(sid.starts_with("SM") && sid.len() == 34, "{sid}");
    assert_eq!(json["status"], "queued");
    assert_eq!(json["direction"], "outbound-api");
    assert_eq!(json["api_version"], "2010-04-01");
    assert_eq!(json["num_segments"], "1");
    assert_eq!(json["num_media"], "0");
    assert_eq!(json["error_code"], Value::Null);
    assert_eq!(json["to"], PERSON);
    assert_eq!(
        json["uri"],
        format!("/2010-04-01/Accounts/{DEFAULT_ACCOUNT_SID}/Messages/{sid}.json")
    );
    let date = json["date_created"].as_str().expect("date");
    assert!(date.ends_with(" +0000") && date.contains(", "), "{date}");
    assert_eq!(emu.sent_messages().len(), 1);
}

#[tokio::test]
async fn wrong_credentials_get_401_with_code_20003() {
    let emu = emulator().await;
    let url = format!(
        "{}/2010-04-01/Accounts/{DEFAULT_ACCOUNT_SID}/Messages.json",
        emu.url()
    );
    for auth in [Some("wrong"), None] {
        let mut request =
            client()
                .post(&url)
                .form(&[("To", PERSON), ("From", SMS_NUMBER), ("Body", "x")]);
        if let Some(token) = auth {
            request = request.basic_auth(DEFAULT_ACCOUNT_SID, Some(token));
        }
        let response = request.send().await.expect("request");
        assert_eq!(response.status(), 401);
        let json: Value = response.json().await.expect("json");
        assert_eq!(json["code"], 20003);
        assert_eq!(json["status"], 401);
        assert_eq!(
            json["more_info"],
            "https://www.twilio.com/docs/errors/20003"
        );
    }
    assert!(emu.sent_messages().is_empty());
}

#[tokio::test]
async fn create_validation_errors_match_twilio_codes() {
    let emu = emulator().await;
    let long = "x".repeat(1601);
    let media: Vec<(&str, &str)> = (0..11)
        .map(|_| ("MediaUrl", "https://example.com/a.png"))
        .collect();
    let mut too_many_media = vec![("To", PERSON), ("From", SMS_NUMBER)];
    too_many_media.extend(media);
    let cases: Vec<(Vec<(&str, &str)>, i64)> = vec![
        (vec![("From", SMS_NUMBER), ("Body", "x")], 21604),
        (vec![("To", PERSON), ("Body", "x")], 21603),
        (
            vec![("To", "12345"), ("From", SMS_NUMBER), ("Body", "x")],
            21211,
        ),
        (vec![("To", PERSON), ("From", SMS_NUMBER)], 21602),
        (
            vec![("To", PERSON), ("From", SMS_NUMBER), ("Body", &long)],
            21617,
        ),
        (too_many_media, 21623),
        (
            vec![("To", PERSON), ("From", "+15559999999"), ("Body", "x")],
            21606,
        ),
        (
            vec![
                ("To", "whatsapp:+15551230001"),
                ("From", SMS_NUMBER),
                ("Body", "x"),
            ],
            21910,
        ),
        (
            vec![
                ("To", "whatsapp:+15551230001"),
                ("From", "whatsapp:+15559999999"),
                ("Body", "x"),
            ],
            63007,
        ),
    ];
    for (form, code) in cases {
        let (status, _, json) = create(&emu, &form).await;
        assert_eq!(
            (status, json["code"].as_i64()),
            (400, Some(code)),
            "{form:?}: {json}"
        );
        assert_eq!(json["status"], 400);
    }
    let (status, _, _) = create(
        &emu,
        &[
            ("To", PERSON),
            ("From", SMS_NUMBER),
            ("Body", &long[..1600]),
        ],
    )
    .await;
    assert_eq!(status, 201, "exactly 1600 characters is allowed");
}

#[tokio::test]
async fn num_segments_is_computed_with_sms_rules() {
    let emu = emulator().await;
    let long: String = "0123456789".repeat(17)[..161].to_owned();
    let (_, _, json) = create(
        &emu,
        &[("To", PERSON), ("From", SMS_NUMBER), ("Body", &long)],
    )
    .await;
    assert_eq!(json["num_segments"], "2");
    let emoji = format!("😜{}", "1".repeat(69));
    let (_, _, json) = create(
        &emu,
        &[("To", PERSON), ("From", SMS_NUMBER), ("Body", &emoji)],
    )
    .await;
    assert_eq!(json["num_segments"], "2");
}

#[tokio::test]
async fn faults_fail_the_next_creates_in_order() {
    let emu = emulator().await;
    for kind in [
        FaultKind::ServerError,
        FaultKind::TooManyRequests,
        FaultKind::Unsubscribed,
    ] {
        emu.add_fault(Fault {
            count: 1,
            kind,
            delay_ms: None,
        });
    }
    let form = [("To", PERSON), ("From", SMS_NUMBER), ("Body", "hi")];
    let (status, _, json) = create(&emu, &form).await;
    assert_eq!((status, json["code"].as_i64()), (500, Some(20500)));
    let (status, headers, json) = create(&emu, &form).await;
    assert_eq!((status, json["code"].as_i64()), (429, Some(20429)));
    assert_eq!(
        headers.get("retry-after").and_then(|v| v.to_str().ok()),
        Some("1")
    );
    let (status, _, json) = create(&emu, &form).await;
    assert_eq!((status, json["code"].as_i64()), (400, Some(21610)));
    let (status, _, _) = create(&emu, &form).await;
    assert_eq!(status, 201);
    assert_eq!(emu.sent_messages().len(), 1);
}

#[tokio::test]
async fn slow_fault_delays_the_create() {
    let emu = emulator().await;
    emu.add_fault(Fault {
        count: 1,
        kind: FaultKind::Slow,
        delay_ms: Some(150),
    });
    let started = Instant::now();
    let (status, _, _) = create(
        &emu,
        &[("To", PERSON), ("From", SMS_NUMBER), ("Body", "hi")],
    )
    .await;
    assert_eq!(status, 201);
    assert!(started.elapsed() >= Duration::from_millis(150));
}

#[tokio::test]
async fn list_messages_filters_and_pages_newest_first() {
    let emu = emulator().await;
    for (to, body) in [
        (PERSON, "a"),
        ("+15551230002", "b"),
        (PERSON, "c"),
        (PERSON, "d"),
    ] {
        create(&emu, &[("To", to), ("From", SMS_NUMBER), ("Body", body)]).await;
    }
    let base = format!("/2010-04-01/Accounts/{DEFAULT_ACCOUNT_SID}/Messages.json");
    let (status, page) = get_json(&emu, &format!("{base}?To=%2B15551230001&PageSize=2")).await;
    assert_eq!(status, 200);
    let bodies: Vec<_> = page["messages"]
        .as_array()
        .expect("list")
        .iter()
        .map(|m| m["body"].clone())
        .collect();
    assert_eq!(bodies, [json!("d"), json!("c")]);
    assert_eq!(
        (page["page"].clone(), page["page_size"].clone()),
        (json!(0), json!(2))
    );
    let next = page["next_page_uri"]
        .as_str()
        .expect("next page")
        .to_owned();
    let (_, second) = get_json(&emu, &next).await;
    let bodies: Vec<_> = second["messages"]
        .as_array()
        .expect("list")
        .iter()
        .map(|m| m["body"].clone())
        .collect();
    assert_eq!(bodies, [json!("a")]);
    assert_eq!(second["next_page_uri"], Value::Null);
    let (_, future) = get_json(&emu, &format!("{base}?DateSent%3E=2999-01-01")).await;
    assert_eq!(future["messages"], json!([]));
    let (_, past) = get_json(&emu, &format!("{base}?DateSent%3E=2000-01-01T00:00:00Z")).await;
    assert_eq!(past["messages"].as_array().map(Vec::len), Some(4));
    let (status, bad) = get_json(&emu, &format!("{base}?DateSent%3E=yesterday")).await;
    assert_eq!((status, bad["code"].clone()), (400, json!(20001)));
}

#[tokio::test]
async fn fetch_message_and_unknown_paths_answer_like_twilio() {
    let emu = emulator().await;
    let (_, _, created) = create(
        &emu,
        &[("To", PERSON), ("From", SMS_NUMBER), ("Body", "hi")],
    )
    .await;
    let uri = created["uri"].as_str().expect("uri");
    let (status, fetched) = get_json(&emu, uri).await;
    assert_eq!(
        (status, fetched["sid"].clone()),
        (200, created["sid"].clone())
    );
    let missing = format!("/2010-04-01/Accounts/{DEFAULT_ACCOUNT_SID}/Messages/SM00000000000000000000000000000000.json");
    let (status, json) = get_json(&emu, &missing).await;
    assert_eq!((status, json["code"].clone()), (404, json!(20404)));
    let (status, json) = get_json(&emu, "/2010-04-01/Nope.json").await;
    assert_eq!((status, json["code"].clone()), (404, json!(20404)));
}

#[tokio::test]
async fn account_fetch_and_number_update_round_trip() {
    let emu = emulator().await;
    let (status, account) = get_json(
        &emu,
        &format!("/2010-04-01/Accounts/{DEFAULT_ACCOUNT_SID}.json"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        (account["sid"].clone(), account["status"].clone()),
        (json!(DEFAULT_ACCOUNT_SID), json!("active"))
    );
    assert_eq!(account["auth_token"], DEFAULT_AUTH_TOKEN);

    let list = format!("/2010-04-01/Accounts/{DEFAULT_ACCOUNT_SID}/IncomingPhoneNumbers.json?PhoneNumber=%2B1500555*006");
    let (_, page) = get_json(&emu, &list).await;
    let numbers = page["incoming_phone_numbers"]
        .as_array()
        .expect("list")
        .clone();
    assert_eq!(numbers.len(), 1);
    assert_eq!(numbers[0]["phone_number"], SMS_NUMBER);
    let uri = numbers[0]["uri"].as_str().expect("uri");
    let response = client()
        .post(format!("{}{uri}", emu.url()))
        .basic_auth(DEFAULT_ACCOUNT_SID, Some(DEFAULT_AUTH_TOKEN))
        .form(&[
            ("SmsUrl", "https://gw.example/hook"),
            ("SmsMethod", "post"),
            ("StatusCallback", "https://gw.example/status"),
        ])
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    let updated: Value = response.json().await.expect("json");
    assert_eq!(updated["sms_url"], "https://gw.example/hook");
    assert_eq!(updated["sms_method"], "POST");
    assert_eq!(updated["status_callback"], "https://gw.example/status");
    let (_, fetched) = get_json(&emu, uri).await;
    assert_eq!(fetched["sms_url"], "https://gw.example/hook");
}
