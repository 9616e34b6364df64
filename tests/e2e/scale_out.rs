//! Replicas on one database (issue 14, item 3) and burst debounce (item 4).
//!
//! - Two app instances on one PostgreSQL database keep one number's send rate together: the
//!   schedule is a row in the database, not a limiter per process. Measured on the emulator's
//!   side (when it accepted each message), with a generous bound.
//! - Inbound messages of one millisecond are claimed in the order the database stored them,
//!   not by the per-process counter inside their ids (which two replicas do not share).
//! - A burst of quick messages gets one turn when the integration sets `burstWindow`.
use crate::channel::{Rig, NUMBER};
use crate::common::{backends, fresh_database, start, Backend};
use chatwire::config::Config;
use chatwire::emulator::{self, EmulatorConfig};
use chatwire::store::Db;
use serde_json::{json, Value};
use std::time::Duration;

/// Seconds between the first and the last message the emulator accepted, over `n` messages.
async fn accepted_span_s(twilio_url: &str, n: usize) -> f64 {
    let sent: Value = reqwest::get(format!("{twilio_url}/_emulator/sent?after=0"))
        .await
        .expect("emulator answers")
        .json()
        .await
        .expect("json");
    let mut times: Vec<u64> = sent["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter_map(|m| m["sent_at_us"].as_u64())
        .collect();
    assert_eq!(times.len(), n, "{sent}");
    times.sort_unstable();
    (times[n - 1] - times[0]) as f64 / 1e6
}

#[tokio::test]
async fn two_replicas_on_one_postgres_keep_the_numbers_send_rate_together() {
    if !backends().contains(&Backend::Postgres) {
        eprintln!("skipped: set CHATWIRE_TEST_POSTGRES_URL to run two replicas on PostgreSQL");
        return;
    }
    const RATE: f64 = 10.0;
    const MESSAGES: usize = 30;
    let twilio = emulator::spawn(EmulatorConfig::default())
        .await
        .expect("emulator");
    let (url, _db) = fresh_database(Backend::Postgres).await;
    // Two send slots per replica, so that both replicas' delivery loops take part.
    let config = |url: &str| {
        let mut c = Config::for_tests(url);
        c.twilio_api_url = twilio.url().to_owned();
        c.workers = 4;
        c
    };
    let a = start(config(&url), None).await;
    let b = start(config(&url), None).await;
    let bot = a
        .create("/bot", json!({"name": "Echo", "model": "echo"}))
        .await;
    let account = twilio.account();
    let integration = a
        .create(
            "/integration/twilio",
            json!({"name": "SMS", "botId": bot, "accountSid": account.sid,
                   "authToken": account.auth_token, "phoneNumber": NUMBER, "sendRate": RATE}),
        )
        .await;
    let setup = format!("/integration/twilio/{integration}/setup");
    assert_eq!(a.post(&setup, json!({})).await.0, 200);

    for i in 0..MESSAGES {
        let out = twilio
            .send_text(&format!("+1555123{i:04}"), NUMBER, "hello")
            .await
            .expect("inject");
        assert_eq!(out.status, Some(200));
    }
    twilio
        .wait_for_messages(MESSAGES, Duration::from_secs(30))
        .await
        .expect("every reply is sent");

    // Each replica counts a send once Twilio's answer is in: the last count may trail the
    // emulator's record by a moment.
    let sent = || (sends_of(&a.state.metrics), sends_of(&b.state.metrics));
    for _ in 0..100 {
        let (sent_a, sent_b) = sent();
        if sent_a + sent_b >= MESSAGES as u64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (sent_a, sent_b) = sent();
    assert_eq!(sent_a + sent_b, MESSAGES as u64);
    assert!(
        sent_a > 0 && sent_b > 0,
        "both replicas sent (a: {sent_a}, b: {sent_b})"
    );
    // At 10/s, 30 sends span at least 2.9 s; a limiter per replica lets two replicas send at
    // 20/s (about 1.5 s). The bound allows 30% over the rate for scheduling noise.
    let span = accepted_span_s(twilio.url(), MESSAGES).await;
    let observed = (MESSAGES - 1) as f64 / span.max(1e-6);
    assert!(
        observed <= RATE * 1.3,
        "the number sent at {observed:.1}/s over {span:.2} s (a: {sent_a}, b: {sent_b}); its rate is {RATE}/s"
    );
    a.stop().await;
    b.stop().await;
    twilio.shutdown().await;
}

#[tokio::test]
async fn messages_of_one_millisecond_are_claimed_in_the_order_they_were_stored() {
    for backend in backends() {
        let (url, _dir) = fresh_database(backend).await;
        let db = Db::connect(&url).await.expect("database");
        // Two replicas store two messages of one sender in the same millisecond. Their ids come
        // from two processes' counters, so the second one's id may well sort first.
        let at = chatwire::domain::now_ms() - 1_000;
        for (id, sid, body) in [
            ("czzzzzzzzzzzzzzzzzzzzzzzz", "SMfirst", "first"),
            ("caaaaaaaaaaaaaaaaaaaaaaaa", "SMsecond", "second"),
        ] {
            sqlx::query(
                "INSERT INTO inbound (id, integration_id, channel, message_sid, sender, recipient, body, status, created_at) \
                 VALUES ($1, 'int', 'twilio', $2, '+15551239999', $3, $4, 'pending', $5)",
            )
            .bind(id)
            .bind(sid)
            .bind(NUMBER)
            .bind(body)
            .bind(at)
            .execute(&db.pool)
            .await
            .expect("insert");
        }
        let mut order = Vec::new();
        for _ in 0..2 {
            let claimed = db.claim_inbound(15_000, 10).await.expect("claim");
            assert_eq!(claimed.len(), 1, "one message of a sender at a time");
            let m = &claimed[0];
            order.push(m.body.clone());
            db.finish_inbound(&m.id, &m.claim_token, None)
                .await
                .expect("finish");
        }
        assert_eq!(order, ["first", "second"], "{backend:?}");
    }
}

#[tokio::test]
async fn quick_messages_get_one_turn_when_the_integration_sets_a_burst_window() {
    for backend in backends() {
        let rig = Rig::with(
            backend,
            json!({"model": "echo"}),
            json!({"burstWindow": 2000}),
        )
        .await;
        let person = "+15551230777";
        for text in ["hi", "I need", "to change my booking"] {
            assert_eq!(rig.text(person, text).await.1, Some(200));
        }
        let sent = rig.replies(1).await;
        assert_eq!(sent[0].body, "hi\nI need\nto change my booking");
        // The burst is over: a later message is its own turn, and nothing else was answered.
        assert_eq!(rig.text(person, "thanks").await.1, Some(200));
        let sent = rig.replies(2).await;
        assert_eq!(
            sent.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(),
            ["hi\nI need\nto change my booking", "thanks"]
        );
        // Every message is in the conversation, each as the person wrote it.
        let (_, convs) = rig
            .app
            .get(&format!("/conversation/list?botId={}", rig.bot))
            .await;
        let conversation = convs["items"][0]["id"].as_str().expect("conversation");
        let (_, msgs) = rig
            .app
            .get(&format!("/conversation/{conversation}/message/list"))
            .await;
        let users: Vec<&str> = msgs["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter(|m| m["type"] == "user")
            .filter_map(|m| m["text"].as_str())
            .collect();
        assert_eq!(users, ["hi", "I need", "to change my booking", "thanks"]);
        // Out of range is refused.
        let update = format!("/integration/twilio/{}/update", rig.integration);
        for bad in [json!(-1), json!(3_600_000), json!("soon")] {
            let (status, out) = rig.app.post(&update, json!({"burstWindow": bad})).await;
            assert_eq!(status, 400, "{bad}: {out}");
        }
        rig.stop().await;
    }
}

#[tokio::test]
async fn without_a_burst_window_every_quick_message_is_answered() {
    for backend in backends() {
        let rig = Rig::start(backend).await;
        let person = "+15551230778";
        for text in ["hi", "I need", "to change my booking"] {
            assert_eq!(rig.text(person, text).await.1, Some(200));
        }
        let sent = rig.replies(3).await;
        assert_eq!(
            sent.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(),
            ["hi", "I need", "to change my booking"]
        );
        rig.stop().await;
    }
}

/// Parts a replica's outbox handed to the provider successfully.
fn sends_of(metrics: &chatwire::metrics::Metrics) -> u64 {
    use prometheus::core::Collector;
    metrics
        .sends
        .collect()
        .iter()
        .flat_map(|family| family.get_metric())
        .filter(|m| {
            m.get_label()
                .iter()
                .any(|l| l.name() == "outcome" && l.value() == "sent")
        })
        .map(|m| m.get_counter().get_value() as u64)
        .sum()
}
