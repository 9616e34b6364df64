//! Issue 13 item 3 against the real binary: with `CHATWIRE_OTLP_ENDPOINT` set, one message's
//! webhook, turn, send and delivery receipts arrive at an OTLP/HTTP collector as spans of ONE
//! trace, linked parent to child although they ran in different tasks (the context travels
//! with the stored rows); spans still queued are flushed on a graceful stop; without the
//! setting nothing is exported and no context is stored. The collector is a few lines of axum
//! on 127.0.0.1 reading the OTLP JSON encoding.
use crate::common::{backends, fresh_database, Backend};
use crate::logs::Server;
use axum::routing::post;
use chatwire::domain::delivery::MessageStatus;
use chatwire::emulator::{self, EmulatorConfig, EmulatorHandle};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const NUMBER: &str = "+15005550006";
const TOKEN: &str = "otel-test-token";

/// A stand-in collector: every span posted to `/v1/traces`, with its resource's service name.
struct Collector {
    url: String,
    spans: Arc<Mutex<Vec<Value>>>,
    requests: Arc<Mutex<usize>>,
}

impl Collector {
    async fn start() -> Self {
        let spans = Arc::new(Mutex::new(Vec::new()));
        let requests = Arc::new(Mutex::new(0_usize));
        let (kept, counted) = (spans.clone(), requests.clone());
        let app = axum::Router::new().route(
            "/v1/traces",
            post(move |body: axum::body::Bytes| {
                let (kept, counted) = (kept.clone(), counted.clone());
                async move {
                    *counted.lock().expect("lock") += 1;
                    let export: Value = serde_json::from_slice(&body).expect("OTLP JSON");
                    let mut found = Vec::new();
                    for resource in export["resourceSpans"].as_array().into_iter().flatten() {
                        let service = attribute(&resource["resource"], "service.name");
                        for scope in resource["scopeSpans"].as_array().into_iter().flatten() {
                            for span in scope["spans"].as_array().into_iter().flatten() {
                                let mut span = span.clone();
                                span["service"] = service.clone().into();
                                found.push(span);
                            }
                        }
                    }
                    kept.lock().expect("lock").extend(found);
                    axum::Json(json!({}))
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            url,
            spans,
            requests,
        }
    }

    fn spans(&self) -> Vec<Value> {
        self.spans.lock().expect("lock").clone()
    }

    fn requests(&self) -> usize {
        *self.requests.lock().expect("lock")
    }

    /// The spans once `done` holds for them, within 20 s.
    async fn until(&self, what: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let spans = self.spans();
            if done(&spans) {
                return spans;
            }
            if tokio::time::Instant::now() >= deadline {
                panic!("{what} never arrived; spans: {spans:#?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// An attribute of a span (or a resource) as text, whatever its OTLP JSON type.
fn attribute(holder: &Value, key: &str) -> Option<String> {
    let found = holder["attributes"]
        .as_array()?
        .iter()
        .find(|a| a["key"] == key)?;
    let value = &found["value"];
    ["stringValue", "intValue", "boolValue", "doubleValue"]
        .iter()
        .find_map(|kind| match &value[kind] {
            Value::String(s) => Some(s.clone()),
            Value::Null => None,
            other => Some(other.to_string()),
        })
}

fn named<'a>(spans: &'a [Value], name: &str) -> Vec<&'a Value> {
    spans.iter().filter(|s| s["name"] == name).collect()
}

fn has(span: &Value, key: &str, want: &str) -> bool {
    attribute(span, key).as_deref() == Some(want)
}

/// SIGTERM, as an orchestrator stops a container, then the exit.
async fn stop_gracefully(server: &mut Server) {
    let pid = server.child.id().expect("running").to_string();
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(sent.success());
    let exit = tokio::time::timeout(Duration::from_secs(30), server.child.wait())
        .await
        .expect("exits after SIGTERM")
        .expect("wait");
    assert!(exit.success(), "graceful stop exits 0: {exit:?}");
}

/// Creates an echo bot and an integration on the emulator's number; the integration's id.
async fn integration(base: &str, twilio: &EmulatorHandle) -> String {
    let client = reqwest::Client::new();
    let post = |path: &str, body: Value| {
        client
            .post(format!("{base}/v1/{path}"))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
    };
    let bot: Value = post("bot/create", json!({"model": "echo"}))
        .await
        .expect("bot")
        .json()
        .await
        .expect("json");
    let account = twilio.account();
    let created: Value = post(
        "integration/twilio/create",
        json!({"botId": bot["id"], "accountSid": account.sid, "authToken": account.auth_token, "phoneNumber": NUMBER}),
    )
    .await
    .expect("integration")
    .json()
    .await
    .expect("json");
    let id = created["id"].as_str().expect("id").to_owned();
    let setup = post(&format!("integration/twilio/{id}/setup"), json!({}))
        .await
        .expect("setup");
    assert_eq!(setup.status(), 200);
    id
}

/// `chatwire serve` on `backend`'s fresh database, sending through `twilio`, with `extra`;
/// the lines it wrote until it listened.
async fn serve(
    backend: Backend,
    twilio: &EmulatorHandle,
    extra: &[(&str, &str)],
) -> (Server, Vec<String>) {
    // SQLite: the server's own temporary directory holds the database.
    let database_url = match backend {
        Backend::Sqlite => None,
        Backend::Postgres => Some(fresh_database(backend).await.0),
    };
    let secret_key = "2".repeat(64);
    let mut env = vec![
        ("CHATWIRE_API_TOKEN", TOKEN),
        ("CHATWIRE_SECRET_KEY", secret_key.as_str()),
        ("CHATWIRE_TWILIO_API_URL", twilio.url()),
        ("CHATWIRE_SEND_RATE", "100"),
        ("CHATWIRE_BACKFILL_INTERVAL_MS", "0"),
    ];
    if let Some(url) = &database_url {
        env.push(("CHATWIRE_DATABASE_URL", url.as_str()));
    }
    env.extend_from_slice(extra);
    let mut server = Server::start(&env);
    let started = server.until(|l| l.contains("chatwire listening")).await;
    (server, started)
}

/// Counts rows matching `sql` in the server's database (`SELECT COUNT(*) AS n ...`).
async fn count(database_url: &str, sql: &str) -> i64 {
    let db = chatwire::store::Db::connect(database_url)
        .await
        .expect("database");
    let row = db
        .fetch_optional(&chatwire::store::Sql::new(sql))
        .await
        .expect("count")
        .expect("a row");
    sqlx::Row::try_get::<i64, _>(&row, "n").expect("n")
}

#[tokio::test]
async fn one_message_is_one_trace_from_the_webhook_through_the_turn_to_its_send_and_receipts() {
    for backend in backends() {
        let collector = Collector::start().await;
        let twilio = emulator::spawn(EmulatorConfig::default())
            .await
            .expect("emulator");
        let (mut server, started) = serve(
            backend,
            &twilio,
            &[
                ("CHATWIRE_OTLP_ENDPOINT", collector.url.as_str()),
                // Export within 100 ms instead of the SDK's 5 s.
                ("OTEL_BSP_SCHEDULE_DELAY", "100"),
            ],
        )
        .await;
        assert!(
            started.iter().any(|l| l.contains("exporting traces")),
            "{started:?}"
        );
        let base = server.base.clone().expect("address logged");
        let int = integration(&base, &twilio).await;
        let words = "otel private words";
        let sid = twilio
            .send_text("+15551230001", NUMBER, words)
            .await
            .expect("inject")
            .message_sid;
        let reply = twilio
            .wait_for_messages(1, Duration::from_secs(15))
            .await
            .expect("reply")[0]
            .sid
            .clone();
        twilio
            .wait_for_status(&reply, MessageStatus::Delivered, Duration::from_secs(15))
            .await
            .expect("delivered");
        let spans = collector
            .until("the delivered receipt's span", |spans| {
                named(spans, "status")
                    .iter()
                    .any(|s| has(s, "status", "delivered"))
                    && !named(spans, "send").is_empty()
            })
            .await;

        let webhook = *named(&spans, "webhook")
            .iter()
            .find(|s| has(s, "message_sid", &sid))
            .unwrap_or_else(|| panic!("{backend:?}: no webhook span for {sid}: {spans:#?}"));
        let trace = webhook["traceId"].as_str().expect("traceId").to_owned();
        assert!(!trace.is_empty() && trace != "0".repeat(32), "{webhook}");
        assert!(has(webhook, "integration", &int), "{webhook}");
        assert!(has(webhook, "channel", "twilio"), "{webhook}");
        assert!(has(webhook, "outcome", "accepted"), "{webhook}");
        assert!(
            has(webhook, "http.response.status_code", "200"),
            "{webhook}"
        );
        assert_eq!(
            webhook["service"], "chatwire",
            "OTEL_SERVICE_NAME's default"
        );

        let in_trace = |name: &str| -> Vec<&Value> {
            named(&spans, name)
                .into_iter()
                .filter(|s| s["traceId"] == trace.as_str())
                .collect()
        };
        let turns = in_trace("turn");
        assert_eq!(
            turns.len(),
            1,
            "{backend:?}: one turn in the trace: {spans:#?}"
        );
        let turn = turns[0];
        assert_eq!(
            turn["parentSpanId"], webhook["spanId"],
            "the turn continues the webhook's span"
        );
        assert!(has(turn, "correlation", &sid), "{turn}");
        assert!(has(turn, "integration", &int), "{turn}");
        assert!(attribute(turn, "conversation").is_some_and(|c| !c.is_empty()));

        let sends = in_trace("send");
        assert_eq!(
            sends.len(),
            1,
            "{backend:?}: one send in the trace: {spans:#?}"
        );
        let send = sends[0];
        assert_eq!(
            send["parentSpanId"], turn["spanId"],
            "the send continues the turn that wrote it"
        );
        assert!(has(send, "sid", &reply), "{send}");
        assert!(has(send, "outcome", "sent"), "{send}");
        assert!(has(send, "correlation", &sid), "{send}");

        let receipts = in_trace("status");
        assert!(
            receipts
                .iter()
                .any(|s| has(s, "status", "delivered") && has(s, "sid", &reply)),
            "{backend:?}: the delivered receipt is in the message's trace: {spans:#?}"
        );
        for receipt in &receipts {
            assert_eq!(receipt["parentSpanId"], turn["spanId"], "{receipt}");
        }

        let exported = serde_json::to_string(&spans).expect("json");
        assert!(!exported.contains(words), "a body was exported");
        assert!(
            !exported.contains(&twilio.account().auth_token),
            "a secret was exported"
        );
        assert!(!exported.contains(TOKEN), "the API token was exported");

        stop_gracefully(&mut server).await;
        twilio.shutdown().await;
    }
}

#[tokio::test]
async fn spans_still_queued_are_exported_on_a_graceful_stop() {
    let collector = Collector::start().await;
    let twilio = emulator::spawn(EmulatorConfig::default())
        .await
        .expect("emulator");
    let (mut server, _) = serve(
        Backend::Sqlite,
        &twilio,
        &[
            ("CHATWIRE_OTLP_ENDPOINT", collector.url.as_str()),
            ("OTEL_SERVICE_NAME", "chatwire-otel-test"),
            // Nothing leaves on the timer in this test: only the shutdown's flush sends.
            ("OTEL_BSP_SCHEDULE_DELAY", "3600000"),
        ],
    )
    .await;
    let base = server.base.clone().expect("address logged");
    // A callback naming no integration: one webhook span, answered 404.
    let refused = reqwest::Client::new()
        .post(format!("{base}/v1/integration/twilio/nope/webhook"))
        .form(&[("MessageSid", "SM0")])
        .send()
        .await
        .expect("request");
    assert_eq!(refused.status(), 404);
    assert_eq!(collector.requests(), 0, "held until the batch is due");
    stop_gracefully(&mut server).await;
    let spans = collector.spans();
    let webhook = named(&spans, "webhook");
    assert_eq!(webhook.len(), 1, "{spans:#?}");
    assert!(has(webhook[0], "http.response.status_code", "404"));
    assert_eq!(webhook[0]["service"], "chatwire-otel-test");
    twilio.shutdown().await;
}

#[tokio::test]
async fn without_an_endpoint_nothing_is_exported_and_no_trace_context_is_stored() {
    let collector = Collector::start().await;
    let twilio = emulator::spawn(EmulatorConfig::default())
        .await
        .expect("emulator");
    // The SDK's own variables alone turn nothing on: CHATWIRE_OTLP_ENDPOINT is the switch.
    let (mut server, started) = serve(
        Backend::Sqlite,
        &twilio,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", collector.url.as_str()),
            ("OTEL_BSP_SCHEDULE_DELAY", "50"),
        ],
    )
    .await;
    let base = server.base.clone().expect("address logged");
    integration(&base, &twilio).await;
    twilio
        .send_text("+15551230002", NUMBER, "hello")
        .await
        .expect("inject");
    let reply = twilio
        .wait_for_messages(1, Duration::from_secs(15))
        .await
        .expect("reply")[0]
        .sid
        .clone();
    twilio
        .wait_for_status(&reply, MessageStatus::Delivered, Duration::from_secs(15))
        .await
        .expect("delivered");
    stop_gracefully(&mut server).await;
    assert!(
        !started.iter().any(|l| l.contains("exporting traces")),
        "{started:?}"
    );
    assert_eq!(collector.requests(), 0, "nothing was exported");
    let url = format!("sqlite://{}", server.dir.path().join("c.db").display());
    assert_eq!(
        count(
            &url,
            "SELECT COUNT(*) AS n FROM inbound WHERE trace_parent IS NOT NULL"
        )
        .await,
        0
    );
    assert_eq!(
        count(
            &url,
            "SELECT COUNT(*) AS n FROM outbox WHERE trace_parent IS NOT NULL"
        )
        .await,
        0
    );
    assert_eq!(
        count(
            &url,
            "SELECT COUNT(*) AS n FROM outbox WHERE provider_sid IS NOT NULL"
        )
        .await,
        1,
        "the reply was sent"
    );
    twilio.shutdown().await;
}

#[tokio::test]
async fn a_turn_run_by_another_replica_after_a_restart_joins_the_webhooks_trace() {
    let collector = Collector::start().await;
    let twilio = emulator::spawn(EmulatorConfig::default())
        .await
        .expect("emulator");
    let shared = tempfile::tempdir().expect("tempdir");
    let database_url = format!("sqlite://{}", shared.path().join("shared.db").display());
    let replica = |name: &'static str| {
        [
            ("CHATWIRE_DATABASE_URL", database_url.clone()),
            ("CHATWIRE_OTLP_ENDPOINT", collector.url.clone()),
            ("OTEL_BSP_SCHEDULE_DELAY", "100".to_owned()),
            ("OTEL_SERVICE_NAME", name.to_owned()),
        ]
    };
    let env_a = replica("replica-a");
    let env_a: Vec<(&str, &str)> = env_a.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (mut a, _) = serve(Backend::Sqlite, &twilio, &env_a).await;
    let base = a.base.clone().expect("address logged");
    let int = integration(&base, &twilio).await;
    // Replica A takes the messages in, and holds the first back for the burst window.
    let update = reqwest::Client::new()
        .post(format!("{base}/v1/integration/twilio/{int}/update"))
        .bearer_auth(TOKEN)
        .json(&json!({"burstWindow": 3000}))
        .send()
        .await
        .expect("update");
    assert_eq!(update.status(), 200);
    let person = "+15551230003";
    let first = twilio
        .send_text(person, NUMBER, "first")
        .await
        .expect("inject")
        .message_sid;
    let second = twilio
        .send_text(person, NUMBER, "second")
        .await
        .expect("inject")
        .message_sid;
    collector
        .until("replica A's webhook spans", |spans| {
            named(spans, "webhook").len() == 2
        })
        .await;
    stop_gracefully(&mut a).await;
    assert!(twilio.sent_messages().is_empty(), "A answered nothing");

    // Replica B, started on the same database, runs the turn and sends the reply.
    let env_b = replica("replica-b");
    let env_b: Vec<(&str, &str)> = env_b.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (mut b, _) = serve(Backend::Sqlite, &twilio, &env_b).await;
    let sent = twilio
        .wait_for_messages(1, Duration::from_secs(20))
        .await
        .expect("reply");
    assert_eq!(sent[0].body, "first\nsecond", "one turn over the burst");
    let reply = sent[0].sid.clone();
    let spans = collector
        .until("replica B's send and the delivered receipt", |spans| {
            named(spans, "send").len() == 1
                && named(spans, "status")
                    .iter()
                    .any(|s| has(s, "status", "delivered"))
        })
        .await;
    let webhook_of = |sid: &str| -> Value {
        let found = named(&spans, "webhook")
            .into_iter()
            .find(|s| has(s, "message_sid", sid))
            .unwrap_or_else(|| panic!("no webhook span for {sid}: {spans:#?}"));
        assert_eq!(found["service"], "replica-a");
        found.clone()
    };
    let (w1, w2) = (webhook_of(&first), webhook_of(&second));
    let turn = named(&spans, "turn")
        .into_iter()
        .find(|s| s["service"] == "replica-b" && attribute(s, "conversation").is_some())
        .unwrap_or_else(|| panic!("no turn on replica B: {spans:#?}"));
    assert_eq!(turn["traceId"], w1["traceId"], "{turn}");
    assert_eq!(turn["parentSpanId"], w1["spanId"], "{turn}");
    assert!(
        turn["links"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|l| l["traceId"] == w2["traceId"] && l["spanId"] == w2["spanId"]),
        "the folded message's trace links to the turn that answered it: {turn}"
    );
    let send = named(&spans, "send")[0];
    assert_eq!(send["service"], "replica-b");
    assert_eq!(send["traceId"], w1["traceId"]);
    assert_eq!(send["parentSpanId"], turn["spanId"]);
    assert!(has(send, "sid", &reply), "{send}");
    let delivered = named(&spans, "status")
        .into_iter()
        .find(|s| has(s, "status", "delivered"))
        .expect("delivered");
    assert_eq!(delivered["traceId"], w1["traceId"]);
    assert_eq!(delivered["parentSpanId"], turn["spanId"]);
    stop_gracefully(&mut b).await;
    twilio.shutdown().await;
}
