//! One path for every message: a channel defined here (not in the crate) runs a full turn and a
//! delivery through the unchanged pipeline and outbox; every producer of outgoing messages
//! writes through the one door, so a failure mid-write leaves nothing and a retried call with
//! the same `Idempotency-Key` sends once; delivery is visible in message meta; contacts are
//! fingerprinted as ChatBotKit fingerprints them.
use crate::channel::Rig;
use crate::common::{backends, fresh_database, start_with_channels, Backend, TestApp, TOKEN};
use async_trait::async_trait;
use chatwire::channel::{
    Accepted, CallbackRequest, Channel, InboundMessage, OutgoingPart, ProviderId, Refusal,
    SendError, StatusUpdate,
};
use chatwire::config::Config;
use chatwire::domain::address::Address;
use chatwire::store::integration::Integration;
use chatwire::store::{Db, Sql};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A channel that exists only in this test: JSON callbacks authenticated by a shared header,
/// sends kept in memory.
#[derive(Default)]
struct Loopback {
    sent: Mutex<Vec<OutgoingPart>>,
}

const SECRET: &str = "loopback-secret";

fn json_body(request: &CallbackRequest<'_>) -> Result<Value, Refusal> {
    if request
        .headers
        .get("x-loopback-secret")
        .and_then(|v| v.to_str().ok())
        != Some(SECRET)
    {
        return Err(Refusal::Unauthenticated("wrong secret".into()));
    }
    serde_json::from_slice(request.body).map_err(|e| Refusal::Malformed(e.to_string()))
}

fn field<'a>(body: &'a Value, key: &str) -> Result<&'a str, Refusal> {
    body[key]
        .as_str()
        .ok_or_else(|| Refusal::Malformed(format!("{key} missing")))
}

#[async_trait]
impl Channel for Loopback {
    fn name(&self) -> &'static str {
        "loopback"
    }

    fn parse_inbound(
        &self,
        _integration: &Integration,
        request: CallbackRequest<'_>,
    ) -> Result<InboundMessage, Refusal> {
        let body = json_body(&request)?;
        let address =
            |k| Address::parse(field(&body, k)?).map_err(|e| Refusal::Malformed(e.to_string()));
        Ok(InboundMessage {
            id: ProviderId(field(&body, "id")?.to_owned()),
            account: None,
            from: address("from")?,
            to: address("to")?,
            body: field(&body, "text")?.to_owned(),
            media: Vec::new(),
            profile_name: None,
            author: None,
            received_at: None,
        })
    }

    fn parse_status(
        &self,
        _integration: &Integration,
        request: CallbackRequest<'_>,
    ) -> Result<StatusUpdate, Refusal> {
        let body = json_body(&request)?;
        Ok(StatusUpdate {
            id: ProviderId(field(&body, "id")?.to_owned()),
            status: field(&body, "status")?.parse().map_err(
                |e: chatwire::domain::delivery::UnknownStatus| Refusal::Malformed(e.to_string()),
            )?,
            error_code: None,
        })
    }

    async fn send(
        &self,
        _integration: &Integration,
        part: &OutgoingPart,
    ) -> Result<Accepted, SendError> {
        let mut sent = self.sent.lock().expect("lock");
        sent.push(part.clone());
        Ok(Accepted {
            id: ProviderId(format!("LB{}", sent.len())),
            status: "queued".into(),
        })
    }
}

async fn eventually<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn post_raw(
    app: &TestApp,
    path: &str,
    headers: &[(&str, &str)],
    body: Value,
) -> (u16, Value) {
    let mut req = app.client.post(app.url(path)).json(&body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// The bot messages of the conversation with `person`'s latest message, as the API shows them.
async fn bot_messages(app: &TestApp, bot: &str) -> Vec<Value> {
    let (_, conversations) = app.get(&format!("/conversation/list?botId={bot}")).await;
    let id = conversations["items"][0]["id"]
        .as_str()
        .expect("a conversation")
        .to_owned();
    let (_, messages) = app.get(&format!("/conversation/{id}/message/list")).await;
    messages["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|m| m["type"] == "bot")
        .cloned()
        .collect()
}

#[tokio::test]
async fn a_channel_defined_in_the_tests_runs_a_turn_and_a_delivery() {
    for backend in backends() {
        let (url, dir) = fresh_database(backend).await;
        let loopback = Arc::new(Loopback::default());
        let app = start_with_channels(
            Config::for_tests(&url),
            dir,
            vec![loopback.clone() as Arc<dyn Channel>],
        )
        .await;
        let bot = app
            .create("/bot", json!({"name": "Echo", "model": "echo"}))
            .await;
        let integration = app
            .create("/integration/twilio", json!({"name": "any", "botId": bot}))
            .await;
        let webhook = format!("/v1/integration/loopback/{integration}/webhook");
        let message = json!({"id": "m-1", "from": "chat:visitor-7", "to": "chat:site", "text": "hello there"});
        let (status, _) = post_raw(&app, &webhook, &[], message.clone()).await;
        assert_eq!(status, 403, "{backend:?}: the channel's own check refuses");
        let secret = [("x-loopback-secret", SECRET)];
        let (status, _) = post_raw(&app, &webhook, &secret, message.clone()).await;
        assert_eq!(status, 200, "{backend:?}");
        // The channel's retry of the same message makes no second turn.
        let (status, _) = post_raw(&app, &webhook, &secret, message).await;
        assert_eq!(status, 200, "{backend:?}");
        let part = eventually("the echo", || {
            loopback.sent.lock().expect("lock").first().cloned()
        })
        .await;
        assert_eq!(part.to.to_string(), "chat:visitor-7");
        assert_eq!(part.from.to_string(), "chat:site");
        assert_eq!(part.body, "hello there");
        assert!(part.status_callback.as_deref().is_some_and(
            |u| u.ends_with(&format!("/v1/integration/loopback/{integration}/status"))
        ));

        let status_url = format!("/v1/integration/loopback/{integration}/status");
        let (status, _) = post_raw(
            &app,
            &status_url,
            &secret,
            json!({"id": "LB1", "status": "delivered"}),
        )
        .await;
        assert_eq!(status, 204, "{backend:?}");
        let replies = bot_messages(&app, &bot).await;
        assert_eq!(
            replies.len(),
            1,
            "{backend:?}: one reply for a retried message"
        );
        let delivery = &replies[0]["meta"]["delivery"];
        assert_eq!(delivery["channel"], "loopback", "{backend:?}: {delivery}");
        assert_eq!(delivery["messageSid"], "LB1");
        assert_eq!(delivery["status"], "delivered");
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(loopback.sent.lock().expect("lock").len(), 1, "{backend:?}");
        app.stop().await;
    }
}

#[tokio::test]
async fn a_reply_shows_its_delivery_in_message_meta() {
    for backend in backends() {
        let rig = Rig::start(backend).await;
        rig.text("+15551230030", "how are you").await;
        let sent = rig.replies(1).await;
        // The emulator reports sent, then delivered.
        let deadline = Instant::now() + Duration::from_secs(15);
        let delivery = loop {
            let replies = bot_messages(&rig.app, &rig.bot).await;
            let delivery = replies[0]["meta"]["delivery"].clone();
            if delivery["status"] == "delivered" || Instant::now() > deadline {
                break delivery;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(delivery["status"], "delivered", "{backend:?}: {delivery}");
        assert_eq!(delivery["channel"], "twilio");
        assert_eq!(delivery["messageSid"], json!(sent[0].sid));
        assert_eq!(delivery["segments"], 1);
        assert_eq!(delivery["errorCode"], Value::Null);
        rig.stop().await;
    }
}

async fn count(db: &Db, table: &str) -> i64 {
    let row = db
        .fetch_optional(&Sql::new(format!("SELECT COUNT(*) AS n FROM {table}")))
        .await
        .expect("count")
        .expect("row");
    sqlx::Row::try_get::<i64, _>(&row, "n").expect("n")
}

/// Makes every outbox insert fail (the last statement of the one door) until lifted.
async fn break_outbox(db: &Db, backend: Backend, broken: bool) {
    let statements: &[&str] = match (backend, broken) {
        (Backend::Sqlite, true) => &["CREATE TRIGGER break_outbox BEFORE INSERT ON outbox BEGIN SELECT RAISE(ABORT, 'injected failure'); END"],
        (Backend::Sqlite, false) => &["DROP TRIGGER break_outbox"],
        (Backend::Postgres, true) => &[
            "CREATE FUNCTION break_outbox() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'injected failure'; END $$ LANGUAGE plpgsql",
            "CREATE TRIGGER break_outbox BEFORE INSERT ON outbox FOR EACH ROW EXECUTE FUNCTION break_outbox()",
        ],
        (Backend::Postgres, false) => &["DROP TRIGGER break_outbox ON outbox", "DROP FUNCTION break_outbox()"],
    };
    for sql in statements {
        db.exec(&Sql::new(*sql)).await.expect("trigger");
    }
}

async fn post_keyed(app: &TestApp, path: &str, key: &str, body: Value) -> (u16, Value) {
    post_raw(
        app,
        &format!("/v1{path}"),
        &[
            ("authorization", &format!("Bearer {TOKEN}")),
            ("idempotency-key", key),
        ],
        body,
    )
    .await
}

/// What a producer leaves behind besides outbox rows.
async fn leftovers(db: &Db) -> [i64; 4] {
    [
        count(db, "conversations").await,
        count(db, "messages").await,
        count(db, "sessions").await,
        count(db, "idempotency_keys").await,
    ]
}

#[tokio::test]
async fn initiate_that_fails_mid_write_leaves_nothing_and_a_retry_sends_once() {
    for backend in backends() {
        let rig = Rig::start(backend).await;
        let db = rig.app.state.db.clone();
        let path = format!("/integration/twilio/{}/initiate", rig.integration);
        let body = json!({"to": "+15551230040", "text": "Your order shipped."});
        break_outbox(&db, backend, true).await;
        let (status, out) = post_keyed(&rig.app, &path, "order-77", body.clone()).await;
        assert_eq!(status, 500, "{backend:?}: {out}");
        assert_eq!(
            leftovers(&db).await,
            [0, 0, 0, 0],
            "{backend:?}: all or nothing"
        );
        break_outbox(&db, backend, false).await;
        for _ in 0..3 {
            let (status, out) = post_keyed(&rig.app, &path, "order-77", body.clone()).await;
            assert_eq!(status, 200, "{backend:?}: {out}");
            assert_eq!(out["id"], json!(rig.integration));
        }
        rig.replies(1).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(
            rig.twilio.sent_messages().len(),
            1,
            "{backend:?}: sent once"
        );
        assert_eq!(count(&db, "conversations").await, 1, "{backend:?}");
        // Another key is another message.
        let (status, _) = post_keyed(&rig.app, &path, "order-78", body).await;
        assert_eq!(status, 200);
        rig.replies(2).await;
        rig.stop().await;
    }
}

#[tokio::test]
async fn flow_execute_that_fails_mid_write_leaves_nothing_and_a_retry_sends_once() {
    let flow = json!({"description": "notify", "initial_state": "Trigger", "flags": {"allow_concurrent_calls": true}, "states": [
        {"name": "Trigger", "type": "trigger", "transitions": [{"event": "incomingRequest", "next": "hello"}], "properties": {}},
        {"name": "hello", "type": "send-message", "properties": {"body": "Hello {{flow.data.name}}"}, "transitions": [{"event": "sent"}, {"event": "failed"}]}]});
    for backend in backends() {
        let rig = Rig::with(backend, json!({"model": "flow", "flow": flow}), json!({})).await;
        let db = rig.app.state.db.clone();
        let path = format!("/bot/{}/flow/execute", rig.bot);
        let body = json!({"to": "+15551230050", "data": {"name": "Ada"}});
        break_outbox(&db, backend, true).await;
        let (status, out) = post_keyed(&rig.app, &path, "run-1", body.clone()).await;
        assert_eq!(status, 500, "{backend:?}: {out}");
        assert_eq!(
            leftovers(&db).await,
            [0, 0, 0, 0],
            "{backend:?}: all or nothing"
        );
        break_outbox(&db, backend, false).await;
        let (status, first) = post_keyed(&rig.app, &path, "run-1", body.clone()).await;
        assert_eq!(status, 200, "{backend:?}: {first}");
        let (status, again) = post_keyed(&rig.app, &path, "run-1", body.clone()).await;
        assert_eq!(status, 200, "{backend:?}: {again}");
        assert_eq!(again, first, "{backend:?}: a retry gets the first answer");
        let sent = rig.replies(1).await;
        assert_eq!(sent[0].body, "Hello Ada");
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(
            rig.twilio.sent_messages().len(),
            1,
            "{backend:?}: sent once"
        );
        rig.stop().await;
    }
}

#[tokio::test]
async fn a_bad_idempotency_key_is_refused() {
    let rig = Rig::start(Backend::Sqlite).await;
    let path = format!("/integration/twilio/{}/initiate", rig.integration);
    let long = "k".repeat(300);
    let (status, out) = post_keyed(
        &rig.app,
        &path,
        &long,
        json!({"to": "+15551230060", "text": "x"}),
    )
    .await;
    assert_eq!(status, 400, "{out}");
    assert!(out["message"]
        .as_str()
        .is_some_and(|m| m.contains("Idempotency-Key")));
    rig.stop().await;
}

#[tokio::test]
async fn sms_contacts_carry_chatbotkits_fingerprint() {
    // uuid5(5bd7fb78-73be-48aa-8a1e-e4e1984fed22, "+15551230042"), computed with Python's uuid:
    // ChatBotKit's createContactFingerprint(TWILIO_NAMESPACE, [phone]).
    const EXPECTED: &str = "96eaf131-69d6-5692-afb9-004d173c786c";
    for backend in backends() {
        let rig = Rig::with(
            backend,
            json!({"model": "echo"}),
            json!({"contactCollection": true}),
        )
        .await;
        // A contact a CRM sync ensured the ChatBotKit way before the person ever texted.
        let known = rig
            .app
            .post(
                "/contact/ensure",
                json!({"fingerprint": EXPECTED, "name": "Known"}),
            )
            .await
            .1["id"]
            .as_str()
            .expect("id")
            .to_owned();
        rig.text("+15551230042", "hi").await;
        rig.replies(1).await;
        let (_, contacts) = rig.app.get("/contact/list").await;
        let items = contacts["items"].as_array().expect("items");
        assert_eq!(
            items.len(),
            1,
            "{backend:?}: one contact per phone number: {contacts}"
        );
        assert_eq!(items[0]["fingerprint"], EXPECTED);
        let (_, conversations) = rig
            .app
            .get(&format!("/conversation/list?botId={}", rig.bot))
            .await;
        assert_eq!(
            conversations["items"][0]["contactId"],
            json!(known),
            "{backend:?}"
        );
        rig.stop().await;
    }
}

#[tokio::test]
async fn old_sms_fingerprints_are_rewritten_and_duplicates_merged() {
    for backend in backends() {
        let (url, _dir) = fresh_database(backend).await;
        let db = Db::connect(&url).await.expect("db");
        let old = |id: &str, phone: &str, fp: &str| {
            Sql::new("INSERT INTO contacts (id, fingerprint, phone, created_at, updated_at) VALUES ($1, $2, $3, 1, 1)")
                .arg(id.to_owned())
                .arg(fp.to_owned())
                .arg(phone.to_owned())
        };
        let sha = |phone: &str| format!("{:0>64}", phone.trim_start_matches('+'));
        // One phone collected the old way and ensured the ChatBotKit way: two contacts.
        db.exec(&old("c-old", "+15551230042", &sha("+15551230042")))
            .await
            .expect("old");
        db.exec(&old(
            "c-new",
            "+15551230042",
            "96eaf131-69d6-5692-afb9-004d173c786c",
        ))
        .await
        .expect("new");
        // Another phone collected the old way only.
        db.exec(&old("c-solo", "+15551230043", &sha("+15551230043")))
            .await
            .expect("solo");
        db.exec(&Sql::new("INSERT INTO conversations (id, contact_id, created_at, updated_at) VALUES ('conv-1', 'c-old', 1, 1)"))
            .await
            .expect("conversation");
        assert_eq!(db.refingerprint_phone_contacts().await.expect("rewrite"), 2);
        assert_eq!(
            count(&db, "contacts").await,
            2,
            "{backend:?}: the duplicate merged"
        );
        let row = db
            .fetch_optional(&Sql::new(
                "SELECT contact_id FROM conversations WHERE id = 'conv-1'",
            ))
            .await
            .expect("read")
            .expect("row");
        assert_eq!(
            sqlx::Row::try_get::<String, _>(&row, "contact_id").expect("id"),
            "c-new"
        );
        let row = db
            .fetch_optional(&Sql::new(
                "SELECT fingerprint FROM contacts WHERE id = 'c-solo'",
            ))
            .await
            .expect("read")
            .expect("row");
        assert_eq!(
            sqlx::Row::try_get::<String, _>(&row, "fingerprint").expect("fp"),
            chatwire::store::contacts::phone_fingerprint("+15551230043")
        );
        assert_eq!(
            db.refingerprint_phone_contacts().await.expect("again"),
            0,
            "idempotent"
        );
    }
}
