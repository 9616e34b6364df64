//! The attack paths of issue 12, closed: each test replays one finding against the real app.
use crate::channel::{Rig, NUMBER};
use crate::common::{backends, spawn_app, Backend};
use chatwire::channel::twilio::signature;
use serde_json::json;
use std::time::Duration;

/// A signed form webhook to `path` of the rig's integration; returns the HTTP status.
pub async fn signed(rig: &Rig, path: &str, params: &[(String, String)]) -> u16 {
    let url = rig.app.url(&format!(
        "/v1/integration/twilio/{}/{path}",
        rig.integration
    ));
    let sig = signature::compute(&rig.twilio.account().auth_token, &url, params);
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
