//! The attack paths of issue 12, closed: each test replays one finding against the real app.
use crate::channel::{Rig, NUMBER};
use crate::common::{backends, spawn_app, Backend, TOKEN};
use chatwire::channel::twilio::signature;
use serde_json::json;
use std::time::Duration;

/// A signed form webhook to `path` of the rig's integration; returns the HTTP status.
pub async fn signed(rig: &Rig, path: &str, params: &[(String, String)]) -> u16 {
    let token = rig.twilio.account().auth_token;
    signed_as(rig, &rig.integration, &token, path, params).await
}

/// A form webhook to `path` of `integration`, signed with `token`; returns the HTTP status.
async fn signed_as(
    rig: &Rig,
    integration: &str,
    token: &str,
    path: &str,
    params: &[(String, String)],
) -> u16 {
    let url = rig
        .app
        .url(&format!("/v1/integration/twilio/{integration}/{path}"));
    let sig = signature::compute(token, &url, params);
    rig.app
        .client
        .post(&url)
        .header("X-Twilio-Signature", sig)
        .form(params)
        .send()
        .await
        .expect("send")
        .status()
        .as_u16()
}

fn inbound(rig: &Rig, sid: &str, extra: usize) -> Vec<(String, String)> {
    let mut params = vec![
        ("MessageSid".to_owned(), sid.to_owned()),
        ("AccountSid".to_owned(), rig.twilio.account().sid),
        ("From".to_owned(), "+15551230101".to_owned()),
        ("To".to_owned(), NUMBER.to_owned()),
        ("Body".to_owned(), "hi".to_owned()),
    ];
    params.extend((0..extra).map(|i| (format!("X{i}"), String::new())));
    params
}

#[tokio::test]
async fn a_webhook_with_too_many_fields_is_refused_before_any_signature_work() {
    for backend in backends() {
        let rig = Rig::start(backend).await;
        // Correctly signed: only the field cap can refuse it.
        let many = inbound(&rig, "SM0000000000000000000000000000a001", 300);
        assert_eq!(signed(&rig, "webhook", &many).await, 400);
        let normal = inbound(&rig, "SM0000000000000000000000000000a002", 40);
        assert_eq!(signed(&rig, "webhook", &normal).await, 200);
        rig.stop().await;
    }
}

/// Makes every write of the readiness row fail the way a full disk fails SQLite's writes.
async fn fill_the_disk(app: &crate::common::TestApp, backend: Backend) {
    use sqlx::Executor;
    match backend {
        Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&app.database_url)
                .await
                .expect("connect");
            for op in ["INSERT", "UPDATE"] {
                pool.execute(
                    format!(
                        "CREATE TRIGGER full_{op} BEFORE {op} ON health \
                         BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
                    )
                    .as_str(),
                )
                .await
                .expect("trigger");
            }
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&app.database_url)
                .await
                .expect("connect");
            pool.execute(
                "CREATE FUNCTION disk_full() RETURNS trigger AS $$ BEGIN \
                 RAISE EXCEPTION 'could not extend file: No space left on device' \
                 USING ERRCODE = '53100'; END $$ LANGUAGE plpgsql; \
                 CREATE TRIGGER health_disk_full BEFORE INSERT OR UPDATE ON health \
                 FOR EACH ROW EXECUTE FUNCTION disk_full();",
            )
            .await
            .expect("trigger");
        }
    }
}

#[tokio::test]
async fn readiness_fails_when_nothing_can_be_written() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let ready = || async {
            let r = app
                .client
                .get(app.url("/readyz"))
                .send()
                .await
                .expect("get");
            (r.status().as_u16(), r.text().await.unwrap_or_default())
        };
        assert_eq!(ready().await.0, 200);
        fill_the_disk(&app, backend).await;
        let (status, why) = ready().await;
        assert_eq!(status, 503);
        assert!(why.contains("not writable"), "{why}");
        let health = app
            .client
            .get(app.url("/healthz"))
            .send()
            .await
            .expect("get");
        assert_eq!(health.status(), 200, "liveness is not readiness");
        app.stop().await;
    }
}

#[tokio::test]
async fn send_rates_out_of_bounds_are_refused_with_400() {
    for backend in backends() {
        let rig = Rig::start(backend).await;
        let update = format!("/integration/twilio/{}/update", rig.integration);
        for bad in [
            json!(0),
            json!(-1),
            json!(1e-300),
            json!(5000),
            json!("fast"),
        ] {
            let (status, out) = rig.app.post(&update, json!({"sendRate": bad})).await;
            assert_eq!(status, 400, "{bad}: {out}");
        }
        for bad in [json!(-1), json!(1e15)] {
            let (status, _) = rig.app.post(&update, json!({"sessionDuration": bad})).await;
            assert_eq!(status, 400, "sessionDuration {bad}");
        }
        assert_eq!(rig.app.post(&update, json!({"sendRate": 2.5})).await.0, 200);
        rig.stop().await;
    }
}

#[tokio::test]
async fn raising_the_send_rate_releases_replies_deferred_by_the_old_one() {
    for backend in backends() {
        // One message per 100 s: the second reply is deferred far past the test's patience.
        let rig = Rig::with(backend, json!({"model": "echo"}), json!({"sendRate": 0.01})).await;
        rig.text("+15551230201", "one").await;
        rig.replies(1).await;
        rig.text("+15551230202", "two").await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(
            rig.twilio.sent_messages().len(),
            1,
            "the second reply waits"
        );
        let update = format!("/integration/twilio/{}/update", rig.integration);
        assert_eq!(rig.app.post(&update, json!({"sendRate": 100})).await.0, 200);
        let sent = rig.replies(2).await;
        assert_eq!(sent.len(), 2);
        rig.stop().await;
    }
}

/// The Twilio status of the bot's first reply, as the API shows it (`meta.delivery.status`).
async fn reply_status(rig: &Rig) -> Option<String> {
    let (_, convs) = rig.app.get("/conversation/list").await;
    let conv = convs["items"][0]["id"].as_str()?.to_owned();
    let (_, msgs) = rig
        .app
        .get(&format!("/conversation/{conv}/message/list"))
        .await;
    let items = msgs["items"].as_array()?;
    let reply = items.iter().find(|m| m["type"] == "bot")?;
    reply["meta"]["delivery"]["status"]
        .as_str()
        .map(str::to_owned)
}

async fn wait_for_reply_status(rig: &Rig, want: &str) {
    for _ in 0..300 {
        if reply_status(rig).await.as_deref() == Some(want) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "the reply never reached {want}: {:?}",
        reply_status(rig).await
    );
}

#[tokio::test]
async fn a_status_callback_signed_for_another_integration_cannot_touch_this_ones_messages() {
    const B_ACCOUNT: &str = "AC00000000000000000000000000000b0b";
    const B_TOKEN: &str = "other0auth0token00000000000000bb";
    for backend in backends() {
        let rig = Rig::start(backend).await;
        rig.text("+15551230301", "hello").await;
        let sid = rig.replies(1).await[0].sid.clone();
        wait_for_reply_status(&rig, "delivered").await;
        // Integration B: another account with its own token and number, in the same Chatwire.
        let b = rig
            .app
            .create(
                "/integration/twilio",
                json!({"name": "B", "accountSid": B_ACCOUNT, "authToken": B_TOKEN, "phoneNumber": "+15005550009"}),
            )
            .await;
        let failed = |account: &str| -> Vec<(String, String)> {
            [
                ("MessageSid", sid.as_str()),
                ("MessageStatus", "failed"),
                ("ErrorCode", "30003"),
                ("AccountSid", account),
                ("To", "+15551230301"),
                ("From", NUMBER),
            ]
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
        };
        let post = |integration: &str, token: &str, account: &str| {
            let (integration, token, params) =
                (integration.to_owned(), token.to_owned(), failed(account));
            let rig = &rig;
            async move { signed_as(rig, &integration, &token, "status", &params).await }
        };
        let (a, a_token, a_account) = (
            rig.integration.clone(),
            rig.twilio.account().auth_token,
            rig.twilio.account().sid,
        );
        // Genuinely B's (its URL, its token, its account): accepted, but A's message is not B's.
        assert_eq!(post(&b, B_TOKEN, B_ACCOUNT).await, 204);
        // Signed with B's token but posted to A's URL: the signature does not match.
        assert_eq!(post(&a, B_TOKEN, B_ACCOUNT).await, 403);
        // A's token naming B's account: refused on the account.
        assert_eq!(post(&a, &a_token, B_ACCOUNT).await, 403);
        assert_eq!(reply_status(&rig).await.as_deref(), Some("delivered"));
        // The same receipt from A itself does move A's message (failures outrank delivered),
        // so the checks above could have failed.
        assert_eq!(post(&a, &a_token, &a_account).await, 204);
        wait_for_reply_status(&rig, "failed").await;
        rig.stop().await;
    }
}

#[tokio::test]
async fn account_sids_must_be_ac_and_32_hex_digits() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        for bad in [
            json!("ACbad"),
            json!("AC0000000000000000000000000000000"),
            json!("AC0000000000000000000000000000000g"),
            json!("SK00000000000000000000000000000001"),
            json!(42),
        ] {
            let (status, out) = app
                .post("/integration/twilio/create", json!({"accountSid": bad}))
                .await;
            assert_eq!(status, 400, "{bad}: {out}");
            assert_eq!(out["code"], "BAD_REQUEST");
            assert!(
                out["message"].as_str().unwrap_or("").contains("accountSid"),
                "{out}"
            );
        }
        let good = "ACa0b1c2d3e4f5A6B7C8D9E0F1a2b3c4d5";
        let (status, out) = app
            .post("/integration/twilio/create", json!({"accountSid": good}))
            .await;
        assert_eq!(status, 200, "{out}");
        let (status, _) = app
            .post(
                &format!(
                    "/integration/twilio/{}/update",
                    out["id"].as_str().unwrap_or("")
                ),
                json!({"accountSid": "ACbad"}),
            )
            .await;
        assert_eq!(status, 400, "update is checked too");
        app.stop().await;
    }
}

#[cfg(unix)]
#[tokio::test]
async fn sqlite_database_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let rig = Rig::start(Backend::Sqlite).await;
    rig.text("+15551230401", "hello").await;
    rig.replies(1).await;
    let db = chatwire::store::sqlite_file::path_of(&rig.app.database_url).expect("a file");
    for suffix in ["", "-wal", "-shm"] {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        let mode = std::fs::metadata(&name)
            .unwrap_or_else(|e| panic!("{name:?}: {e}"))
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{name:?}");
    }
    rig.stop().await;
}

#[tokio::test]
async fn failed_authentications_are_throttled_per_client_address() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let url = app.url("/v1/bot/list");
        let from = |client: &reqwest::Client, token: &'static str| {
            client.get(&url).bearer_auth(token).send()
        };
        for i in 0..20 {
            let r = from(&app.client, "wrong").await.expect("get");
            assert_eq!(r.status(), 401, "failure {i} is answered normally");
        }
        let r = from(&app.client, "wrong").await.expect("get");
        assert_eq!(r.status(), 429);
        let retry: u64 = r
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .expect("Retry-After in seconds");
        assert!((1..=60).contains(&retry), "{retry}");
        let body: serde_json::Value = r.json().await.expect("json");
        assert_eq!(body["code"], "TOO_MANY_REQUESTS");
        // While throttled even the right token is refused, so guessing teaches nothing...
        let r = from(&app.client, TOKEN).await.expect("get");
        assert_eq!(r.status(), 429);
        // ...and only this address is throttled.
        let other = reqwest::Client::builder()
            .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
            .build()
            .expect("client");
        assert_eq!(from(&other, TOKEN).await.expect("get").status(), 200);
        app.stop().await;
    }
}

#[tokio::test]
async fn messages_whose_webhook_never_arrived_are_backfilled_once_and_in_order() {
    use chatwire::channel::twilio::overrides::ConnectionOverrides;
    use chatwire::emulator::NumberConfig;
    for backend in backends() {
        let rig = Rig::configured(backend, json!({"model": "echo"}), json!({}), |c| {
            c.backfill_interval_ms = 300
        })
        .await;
        let point = |url: String| {
            rig.twilio
                .configure_number(&NumberConfig {
                    account_sid: rig.twilio.account().sid,
                    address: NUMBER.parse().expect("number"),
                    sms_url: Some(url),
                    status_callback: None,
                })
                .expect("configure")
        };
        // Twilio cannot reach Chatwire: every attempt of these webhooks fails.
        point("http://127.0.0.1:9/down".into());
        let person = "+15551230501";
        let (first, status) = rig.text(person, "first").await;
        assert_eq!(status, None, "{backend:?}: the webhook never arrived");
        let (_, status) = rig.text(person, "second").await;
        assert_eq!(status, None);
        let sent = rig.replies(2).await;
        let bodies: Vec<(&str, &str)> = sent
            .iter()
            .map(|m| (m.to.as_str(), m.body.as_str()))
            .collect();
        assert_eq!(
            bodies,
            [(person, "first"), (person, "second")],
            "{backend:?}"
        );
        // Twilio reaching Chatwire late with the same message (a retry) changes nothing, and
        // neither do further passes.
        point(format!(
            "{}/v1/integration/twilio/{}/webhook{}",
            rig.app.base,
            rig.integration,
            ConnectionOverrides::chatwire().to_fragment()
        ));
        let replay = rig.twilio.replay_inbound(&first).await.expect("replay");
        assert_eq!(replay.status, Some(200));
        tokio::time::sleep(Duration::from_millis(1000)).await;
        assert_eq!(
            rig.twilio.sent_messages().len(),
            2,
            "{backend:?}: answered once"
        );
        rig.stop().await;
    }
}
