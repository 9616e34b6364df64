//! Issue 13 points 4 and 7: metrics a Prometheus server can scrape (parsed here with a
//! Prometheus text parser) whose labelled series move as messages flow, and an OpenAPI
//! document that covers the webhooks, the operations routes and the JSONL answers.
use crate::channel::{Rig, NUMBER};
use crate::common::{backends, spawn_app, Backend, TestApp};
use prometheus_parse::{Sample, Scrape, Value as Metric};
use serde_json::{json, Value};
use std::time::Duration;

async fn scrape(app: &TestApp) -> (Scrape, String) {
    let text = app.metrics_text().await;
    let lines = text.lines().map(|l| Ok(l.to_owned()));
    (Scrape::parse(lines).expect("Prometheus text format"), text)
}

/// The value of the series `name` whose labels include all of `labels`.
fn value(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    scrape
        .samples
        .iter()
        .filter(|s: &&Sample| s.metric == name)
        .find(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match &s.value {
            Metric::Counter(v) | Metric::Gauge(v) | Metric::Untyped(v) => *v,
            Metric::Histogram(buckets) => buckets.last().map_or(0.0, |b| b.count),
            Metric::Summary(_) => f64::NAN,
        })
}

async fn wait_for(app: &TestApp, name: &str, labels: &[(&str, &str)], at_least: f64) -> Scrape {
    for _ in 0..100 {
        let (scrape, _) = scrape(app).await;
        if value(&scrape, name, labels).is_some_and(|v| v >= at_least) {
            return scrape;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, text) = scrape(app).await;
    panic!("{name}{labels:?} never reached {at_least}:\n{text}");
}

#[tokio::test]
async fn metrics_parse_and_their_labelled_series_move_as_messages_flow() {
    for backend in backends() {
        let rig = Rig::start(backend).await;
        let int = rig.integration.as_str();
        let (before, _) = scrape(&rig.app).await;
        assert_eq!(
            value(
                &before,
                "chatwire_webhooks_refused_total",
                &[("channel", "twilio"), ("reason", "bad_signature")]
            ),
            Some(0.0),
            "refusal series start at 0"
        );
        assert_eq!(
            value(
                &before,
                "chatwire_queue_depth",
                &[("queue", "pending_turns")]
            ),
            Some(0.0)
        );
        assert_eq!(
            value(&before, "chatwire_webhooks_total", &[("integration", int)]),
            None
        );

        rig.text("+15551230001", "hello").await;
        rig.replies(1).await;
        let after = wait_for(
            &rig.app,
            "chatwire_sends_total",
            &[
                ("channel", "twilio"),
                ("integration", int),
                ("outcome", "sent"),
            ],
            1.0,
        )
        .await;
        assert_eq!(
            value(
                &after,
                "chatwire_webhooks_total",
                &[
                    ("channel", "twilio"),
                    ("integration", int),
                    ("outcome", "accepted")
                ]
            ),
            Some(1.0)
        );
        assert_eq!(
            value(
                &after,
                "chatwire_turns_total",
                &[("integration", int), ("outcome", "replied")]
            ),
            Some(1.0)
        );
        // Histograms: one observation each, in buckets.
        for (name, labels) in [
            (
                "chatwire_webhook_duration_seconds",
                vec![("channel", "twilio"), ("kind", "message")],
            ),
            ("chatwire_turn_duration_seconds", vec![("integration", int)]),
            (
                "chatwire_delivery_duration_seconds",
                vec![("channel", "twilio"), ("integration", int)],
            ),
        ] {
            let sample = after
                .samples
                .iter()
                .find(|s| {
                    s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v))
                })
                .unwrap_or_else(|| panic!("{name} has a series for {labels:?}"));
            let Metric::Histogram(buckets) = &sample.value else {
                panic!("{name} is a histogram");
            };
            assert!(buckets.len() > 5, "{name} has buckets");
            assert_eq!(buckets.last().map(|b| b.count), Some(1.0), "{name}");
        }

        // A failed send is counted by Twilio's error code.
        rig.twilio.add_fault(chatwire::emulator::Fault {
            count: 1,
            kind: chatwire::emulator::FaultKind::Unsubscribed,
            delay_ms: None,
        });
        rig.text("+15551230002", "are you there?").await;
        wait_for(
            &rig.app,
            "chatwire_send_failures_total",
            &[("integration", int), ("error_code", "21610")],
            1.0,
        )
        .await;

        // A webhook with a bad signature is refused and counted by reason.
        let refused = rig
            .app
            .client
            .post(
                rig.app
                    .url(&format!("/v1/integration/twilio/{int}/webhook")),
            )
            .header("X-Twilio-Signature", "bm90IGEgc2lnbmF0dXJl")
            .form(&[
                ("MessageSid", "SM00000000000000000000000000000099"),
                ("From", "+15551230003"),
                ("To", NUMBER),
                ("Body", "hi"),
            ])
            .send()
            .await
            .expect("post");
        assert_eq!(refused.status(), 403);
        let unknown = rig
            .app
            .client
            .post(
                rig.app
                    .url("/v1/integration/twilio/no-such-integration/webhook"),
            )
            .form(&[("Body", "hi")])
            .send()
            .await
            .expect("post");
        assert_eq!(unknown.status(), 404);
        let (last, _) = scrape(&rig.app).await;
        assert_eq!(
            value(
                &last,
                "chatwire_webhooks_refused_total",
                &[("channel", "twilio"), ("reason", "bad_signature")]
            ),
            Some(1.0)
        );
        assert_eq!(
            value(
                &last,
                "chatwire_webhooks_refused_total",
                &[("channel", "twilio"), ("reason", "unknown_integration")]
            ),
            Some(1.0)
        );
        let (_, text) = scrape(&rig.app).await;
        for family in [
            "chatwire_webhooks_total",
            "chatwire_webhooks_refused_total",
            "chatwire_sends_total",
            "chatwire_send_failures_total",
            "chatwire_queue_depth",
            "chatwire_webhook_duration_seconds",
            "chatwire_turn_duration_seconds",
            "chatwire_delivery_duration_seconds",
        ] {
            assert!(
                text.contains(&format!("# HELP {family} ")),
                "HELP for {family}:\n{text}"
            );
            assert!(
                text.contains(&format!("# TYPE {family} ")),
                "TYPE for {family}:\n{text}"
            );
        }

        rig.stop().await;
    }
}

/// Where the document breaks OpenAPI 3.0 in ways seen before: an empty `required` list, or
/// a `type` list (3.1's `["string", "null"]`; 3.0 says `"nullable": true`).
fn not_openapi_3_0(value: &Value, path: &str, found: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                if k == "required" && v.as_array().is_some_and(Vec::is_empty) {
                    found.push(format!("{path}: empty required"));
                }
                if k == "type" && v.is_array() {
                    found.push(format!("{path}: type {v}"));
                }
                not_openapi_3_0(v, &format!("{path}/{k}"), found);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                not_openapi_3_0(v, &format!("{path}/{i}"), found);
            }
        }
        _ => {}
    }
}

#[tokio::test]
async fn the_openapi_document_covers_webhooks_operations_and_jsonl_answers() {
    let app = spawn_app(Backend::Sqlite).await;
    let doc: Value = app
        .client
        .get(app.url("/v1/openapi.json"))
        .send()
        .await
        .expect("spec")
        .json()
        .await
        .expect("json");
    let paths = doc["paths"].as_object().expect("paths");
    for path in [
        "/integration/twilio/{integrationId}/webhook",
        "/integration/twilio/{integrationId}/status",
        "/healthz",
        "/readyz",
        "/metrics",
        "/openapi.json",
        "/token/list",
        "/token/{tokenId}/revoke",
        "/channel/log/list",
        "/channel/log/{entryId}/replay",
    ] {
        assert!(paths.contains_key(path), "{path} is documented");
    }
    let webhook = &paths["/integration/twilio/{integrationId}/webhook"]["post"];
    assert_eq!(
        webhook["security"],
        json!([]),
        "webhooks are signed, not authenticated"
    );
    assert!(webhook["requestBody"]["content"]["application/x-www-form-urlencoded"].is_object());
    assert_eq!(paths["/healthz"]["servers"][0]["url"], "/");
    for jsonl in ["/bot/list", "/conversation/{conversationId}/complete"] {
        let op = paths[jsonl]
            .as_object()
            .and_then(|p| p.values().next())
            .expect("op");
        assert!(
            op["responses"]["200"]["content"]["application/jsonl"].is_object(),
            "{jsonl} documents its JSONL answer"
        );
    }
    let mut wrong = Vec::new();
    not_openapi_3_0(&doc, "", &mut wrong);
    assert!(wrong.is_empty(), "not OpenAPI 3.0: {wrong:?}");
    // Every served management path is documented: a documented path answers, an undocumented
    // one is the fallback's 404.
    for (path, item) in paths {
        if path.contains('{') || item.get("servers").is_some() {
            continue;
        }
        let method = item
            .as_object()
            .and_then(|m| m.keys().find(|k| *k == "get" || *k == "post"))
            .expect("method");
        let url = app.url(&format!("/v1{path}"));
        let request = if method == "get" {
            app.client.get(url)
        } else {
            app.client.post(url).json(&json!({}))
        };
        let status = request
            .bearer_auth(crate::common::TOKEN)
            .send()
            .await
            .expect("request")
            .status();
        assert_ne!(status, 404, "{method} {path} is served");
        assert_ne!(status, 405, "{method} {path} is served with its method");
    }
    app.stop().await;
}

#[tokio::test]
async fn queue_depth_counts_stored_messages_until_their_turn_runs() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let db = app.state.db.clone();
        assert_eq!(
            db.queue_depths().await.expect("depths"),
            chatwire::metrics::QueueDepths::default()
        );
        // With the workers stopped, a stored message waits, and the gauge shows it.
        app.stop().await;
        let stored = db
            .record_inbound(chatwire::store::channel::NewInbound {
                integration_id: "int-1".into(),
                channel: "twilio".into(),
                message_sid: "SM00000000000000000000000000000001".into(),
                sender: "+15551230001".into(),
                recipient: NUMBER.into(),
                body: "hello".into(),
                media: None,
                profile_name: None,
                received_at: None,
                trace_parent: None,
                author: None,
            })
            .await
            .expect("stored");
        assert!(stored);
        let depths = db.queue_depths().await.expect("depths");
        assert_eq!(
            (
                depths.pending_turns,
                depths.pending_sends,
                depths.retrying_sends
            ),
            (1, 0, 0)
        );
    }
}
