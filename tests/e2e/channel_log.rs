//! Issue 13 point 5: the channel log. A webhook refused because `CHATWIRE_PUBLIC_URL` is wrong
//! shows up with its reason, the URL that was checked and the hint; once the setting is fixed
//! it is replayed and answered. Send attempts keep the provider's answer and timing, status
//! callbacks are kept, filters work, and old entries are pruned.
use crate::channel::{Rig, NUMBER};
use crate::common::{backends, start, Backend, TestApp};
use chatwire::config::Config;
use chatwire::emulator::{self, EmulatorConfig};
use serde_json::{json, Value};
use std::time::Duration;

async fn log(app: &TestApp, query: &str) -> Vec<Value> {
    let (status, out) = app.get(&format!("/channel/log/list?{query}")).await;
    assert_eq!(status, 200, "{out}");
    out["items"].as_array().cloned().unwrap_or_default()
}

async fn wait_log(app: &TestApp, query: &str, n: usize) -> Vec<Value> {
    for _ in 0..100 {
        let items = log(app, query).await;
        if items.len() >= n {
            return items;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "channel log never had {n} entries for {query}: {:?}",
        log(app, query).await
    );
}

#[tokio::test]
async fn a_webhook_refused_for_a_wrong_public_url_is_logged_and_replayed_after_the_fix() {
    for backend in backends() {
        let twilio = emulator::spawn(EmulatorConfig::default())
            .await
            .expect("emulator");
        let (url, dir) = crate::common::fresh_database(backend).await;
        let mut config = Config::for_tests(&url);
        config.twilio_api_url = twilio.url().to_owned();
        // Behind a proxy that was not described: Chatwire believes it is reached here.
        config.public_url = Some("https://chatwire.example.com".into());
        let app = start(config.clone(), dir).await;
        let bot = app.create("/bot", json!({"model": "echo"})).await;
        let account = twilio.account();
        let integration = app
            .create(
                "/integration/twilio",
                json!({"botId": bot, "accountSid": account.sid, "authToken": account.auth_token, "phoneNumber": NUMBER}),
            )
            .await;
        // The number points where Twilio really reaches this server (what a proxy would forward).
        let real = format!("{}/v1/integration/twilio/{integration}", app.base);
        twilio
            .configure_number(&chatwire::emulator::NumberConfig {
                account_sid: account.sid.clone(),
                address: chatwire::domain::address::Address::parse(NUMBER).expect("number"),
                sms_url: Some(format!("{real}/webhook")),
                status_callback: Some(format!("{real}/status")),
            })
            .expect("number configured");
        let sent = twilio
            .send_text("+15551230001", NUMBER, "hello")
            .await
            .expect("inject");
        assert_eq!(sent.status, Some(403));

        let refused = wait_log(&app, "outcome=refused&kind=message", 1).await;
        let entry = &refused[0];
        assert_eq!(entry["reason"], "bad_signature");
        assert_eq!(entry["integrationId"], integration.as_str());
        assert_eq!(entry["replayable"], true);
        let checked =
            format!("https://chatwire.example.com/v1/integration/twilio/{integration}/webhook");
        assert_eq!(entry["url"], checked.as_str());
        assert!(
            entry["detail"]
                .as_str()
                .unwrap_or("")
                .contains("CHATWIRE_PUBLIC_URL"),
            "{entry}"
        );
        let id = entry["id"].as_str().expect("id").to_owned();
        let (status, fetched) = app.get(&format!("/channel/log/{id}/fetch")).await;
        assert_eq!(status, 200);
        assert!(
            fetched["request"]["headers"]["x-twilio-signature"].is_string(),
            "{fetched}"
        );

        // Replaying before the fix is refused again, and says so.
        let (status, again) = app
            .post(&format!("/channel/log/{id}/replay"), json!({}))
            .await;
        assert_eq!(status, 200, "{again}");
        assert_eq!(again["outcome"], "refused: bad_signature");
        assert!(twilio.sent_messages().is_empty());

        // The fix: restart with the URL Twilio calls, on the same database.
        let database = app.database_url.clone();
        let old_base = app.base.clone();
        let dir = app.stop().await;
        let mut fixed = Config::for_tests(&database);
        fixed.twilio_api_url = twilio.url().to_owned();
        fixed.public_url = Some(old_base);
        let app = start(fixed, dir).await;
        let (status, replayed) = app
            .post(&format!("/channel/log/{id}/replay"), json!({}))
            .await;
        assert_eq!(status, 200, "{replayed}");
        assert_eq!(replayed["outcome"], "accepted");
        let replies = twilio
            .wait_for_messages(1, Duration::from_secs(15))
            .await
            .expect("the replayed message is answered");
        assert_eq!(
            (replies[0].to.as_str(), replies[0].body.as_str()),
            ("+15551230001", "hello")
        );
        let (_, entry) = app.get(&format!("/channel/log/{id}/fetch")).await;
        assert_eq!(entry["replayOutcome"], "accepted");
        assert!(entry["replayedAt"].as_i64().is_some());
        // A second replay finds the message already recorded: no second reply.
        let (_, twice) = app
            .post(&format!("/channel/log/{id}/replay"), json!({}))
            .await;
        assert_eq!(twice["outcome"], "duplicate");
        app.stop().await;
        twilio.shutdown().await;
    }
}

#[tokio::test]
async fn sends_and_status_callbacks_are_logged_with_the_providers_answer() {
    for backend in backends() {
        let rig = Rig::start(backend).await;
        let (inbound_sid, _) = rig.text("+15551230001", "hello").await;
        let sent = rig.replies(1).await;
        let sends = wait_log(&rig.app, "kind=send", 1).await;
        assert_eq!(sends[0]["outcome"], "sent");
        assert_eq!(sends[0]["messageSid"], sent[0].sid.as_str());
        assert_eq!(
            sends[0]["correlationId"],
            inbound_sid.as_str(),
            "the send names the webhook that caused it"
        );
        assert!(sends[0]["elapsedMs"].as_i64().is_some());
        // The emulator posts sent, then delivered.
        let statuses = wait_log(
            &rig.app,
            &format!("kind=status&messageSid={}", sent[0].sid),
            2,
        )
        .await;
        let words: Vec<&str> = statuses
            .iter()
            .filter_map(|e| e["detail"].as_str())
            .collect();
        assert!(words.contains(&"delivered"), "{words:?}");

        // A send Twilio refuses is logged with its error code.
        rig.twilio.add_fault(chatwire::emulator::Fault {
            count: 1,
            kind: chatwire::emulator::FaultKind::Unsubscribed,
            delay_ms: None,
        });
        rig.text("+15551230002", "hi").await;
        let failed = wait_log(&rig.app, "kind=send&outcome=opted_out", 1).await;
        assert_eq!(failed[0]["errorCode"], 21610);
        assert_eq!(failed[0]["replayable"], false);

        // Filters and paging.
        let (status, bad) = rig.app.get("/channel/log/list?colour=red").await;
        assert_eq!(status, 400, "{bad}");
        let (status, _) = rig.app.get("/channel/log/list?take=0").await;
        assert_eq!(status, 400);
        let first = log(&rig.app, "take=1").await;
        assert_eq!(first.len(), 1);
        let (_, page) = rig.app.get("/channel/log/list?take=1").await;
        let cursor = page["cursor"].as_str().expect("cursor").to_owned();
        let next = log(&rig.app, &format!("take=1&cursor={cursor}")).await;
        assert_ne!(next[0]["id"], first[0]["id"]);
        rig.stop().await;
    }
}

#[tokio::test]
async fn a_webhook_for_an_unknown_integration_is_logged_without_its_body() {
    let rig = Rig::start(Backend::Sqlite).await;
    let status = rig
        .app
        .client
        .post(rig.app.url("/v1/integration/twilio/gone/webhook"))
        .form(&[("Body", "secret words")])
        .send()
        .await
        .expect("post")
        .status();
    assert_eq!(status, 404);
    let entries = wait_log(&rig.app, "reason=unknown_integration", 1).await;
    assert_eq!(entries[0]["replayable"], false);
    assert!(entries[0]["detail"]
        .as_str()
        .unwrap_or("")
        .contains("\"gone\""));
    assert!(!entries[0].to_string().contains("secret words"));
    rig.stop().await;
}

#[tokio::test]
async fn entries_older_than_the_retention_are_pruned() {
    for backend in backends() {
        let rig = Rig::start(backend).await;
        rig.text("+15551230001", "hello").await;
        rig.replies(1).await;
        wait_log(&rig.app, "kind=send", 1).await;
        // The receipts (sent, delivered) too: one arriving after the ageing would be new.
        wait_log(&rig.app, "kind=status", 2).await;
        // Age every entry past the 7 days kept, then restart: pruning runs at start.
        let ten_days_ago = chatwire::domain::now_ms() - 10 * 86_400_000;
        rig.app
            .state
            .db
            .exec(
                &chatwire::store::Sql::new("UPDATE channel_log SET created_at = $1")
                    .arg(ten_days_ago),
            )
            .await
            .expect("aged");
        let database = rig.app.database_url.clone();
        let twilio_url = rig.twilio.url().to_owned();
        let dir = rig.app.stop().await;
        let mut config = Config::for_tests(&database);
        config.twilio_api_url = twilio_url;
        config.channel_log_days = 7;
        let app = start(config, dir).await;
        let mut left = log(&app, "").await;
        for _ in 0..50 {
            if left.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            left = log(&app, "").await;
        }
        assert!(left.is_empty(), "{left:?}");
        app.stop().await;
        rig.twilio.shutdown().await;
    }
}
