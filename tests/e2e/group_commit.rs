//! The batched hot-path writes (webhook inserts, turns, sends, status callbacks) on both
//! backends: concurrent callers share statements, yet each gets its own, correct answer.
use crate::common::{backends, fresh_database};
use chatwire::store::channel::NewInbound;
use chatwire::store::outbox::NewOutbox;
use chatwire::store::outgoing::{Author, Claim, NewMessage, Outgoing, Recorded};
use chatwire::store::{Db, Sql};

fn inbound(sid: &str, sender: &str) -> NewInbound {
    NewInbound {
        received_at: None,
        author: None,
        integration_id: "int-1".into(),
        channel: "twilio".into(),
        message_sid: sid.into(),
        sender: sender.into(),
        recipient: "+15005550006".into(),
        body: format!("body of {sid}"),
        media: None,
        profile_name: None,
        trace_parent: None,
    }
}

async fn count(db: &Db, sql: &str) -> i64 {
    let row = db
        .fetch_optional(&Sql::new(sql))
        .await
        .expect("count")
        .expect("a row");
    sqlx::Row::try_get::<i64, _>(&row, "n").expect("n")
}

#[tokio::test]
async fn concurrent_retries_of_one_webhook_store_it_once() {
    for backend in backends() {
        let (url, _dir) = fresh_database(backend).await;
        let db = Db::connect(&url).await.expect("connect");
        let mut calls = Vec::new();
        for i in 0..40 {
            let db = db.clone();
            // Even calls repeat one MessageSid (Twilio retrying); odd calls are all different.
            let sid = if i % 2 == 0 {
                "SM-retried".to_owned()
            } else {
                format!("SM-{i}")
            };
            calls.push(tokio::spawn(async move {
                (
                    sid.clone(),
                    db.record_inbound(inbound(&sid, "+15551230001")).await,
                )
            }));
        }
        let mut new_retried = 0;
        for call in calls {
            let (sid, stored) = call.await.expect("join");
            let stored = stored.expect("recorded");
            if sid == "SM-retried" {
                new_retried += i32::from(stored);
            } else {
                assert!(stored, "{backend:?}: a distinct MessageSid is new");
            }
        }
        assert_eq!(new_retried, 1, "{backend:?}: exactly one retry is new");
        assert_eq!(
            count(&db, "SELECT COUNT(*) AS n FROM inbound").await,
            21,
            "{backend:?}"
        );
    }
}

fn turn(inbound_id: &str, token: &str, conversation: &str, text: &str) -> Outgoing {
    let mut write = to("+15551230001", conversation, &[text]);
    write.claim = Some(Claim {
        inbound_id: inbound_id.into(),
        token: token.into(),
    });
    write
}

/// One message to `recipient`, in as many outbox parts as `parts`, written without a turn
/// (as `initiate` writes).
fn to(recipient: &str, conversation: &str, parts: &[&str]) -> Outgoing {
    let text = parts.join("");
    Outgoing {
        conversation_id: Some(conversation.into()),
        messages: vec![NewMessage {
            id: chatwire::domain::ids::new_id(),
            author: Author::Bot,
            text,
            tokens: None,
        }],
        outbox: parts
            .iter()
            .enumerate()
            .map(|(part, body)| NewOutbox {
                integration_id: "int-1".into(),
                channel: "twilio".into(),
                conversation_id: Some(conversation.into()),
                message_id: None,
                part: part as i64,
                recipient: recipient.into(),
                sender: "+15005550006".into(),
                body: (*body).into(),
                media: Vec::new(),
                segments: 1,
                encoding: "GSM-7",
                correlation_id: None,
                trace_parent: None,
                template: None,
            })
            .collect(),
        ..Outgoing::default()
    }
}

#[tokio::test]
async fn a_turn_whose_claim_was_lost_writes_nothing_while_its_batch_mates_do() {
    for backend in backends() {
        let (url, _dir) = fresh_database(backend).await;
        let db = Db::connect(&url).await.expect("connect");
        for i in 0..6 {
            let sender = format!("+1555123000{i}");
            db.record_inbound(inbound(&format!("SM-{i}"), &sender))
                .await
                .expect("recorded");
        }
        let claimed = db.claim_inbound(15_000, 10).await.expect("claim");
        assert_eq!(
            claimed.len(),
            6,
            "{backend:?}: one claim statement, six senders"
        );
        let mut calls = Vec::new();
        for (i, m) in claimed.iter().enumerate() {
            // Every third turn carries a token that is no longer the row's (a lost lease).
            let token = if i % 3 == 0 {
                "stale".to_owned()
            } else {
                m.claim_token.clone()
            };
            let t = turn(&m.id, &token, &format!("conv-{i}"), &format!("reply {i}"));
            let db = db.clone();
            calls.push(tokio::spawn(
                async move { (i, db.record_outgoing(t).await) },
            ));
        }
        for call in calls {
            let (i, recorded) = call.await.expect("join");
            assert_eq!(
                recorded.expect("written") == Recorded::Written,
                i % 3 != 0,
                "{backend:?}: turn {i} is recorded only with its own claim"
            );
        }
        assert_eq!(
            count(&db, "SELECT COUNT(*) AS n FROM messages").await,
            4,
            "{backend:?}: only the owned turns' replies"
        );
        assert_eq!(
            count(&db, "SELECT COUNT(*) AS n FROM outbox").await,
            4,
            "{backend:?}"
        );
        assert_eq!(
            count(
                &db,
                "SELECT COUNT(*) AS n FROM inbound WHERE status = 'done'"
            )
            .await,
            4,
            "{backend:?}: lost claims stay with their new owner"
        );
    }
}

/// Whether `db` announced a claimable inbound message since the last look.
async fn announced(db: &Db) -> bool {
    notified(&db.inbound_claimable).await
}

/// Whether `notify` was notified since the last look.
async fn notified(notify: &tokio::sync::Notify) -> bool {
    // An announcement made while nobody listened is kept (one permit), so a short wait is
    // enough to see it; none comes later by itself.
    tokio::time::timeout(std::time::Duration::from_millis(50), notify.notified())
        .await
        .is_ok()
}

#[tokio::test]
async fn a_finished_turn_announces_the_next_message_of_its_sender_and_only_then() {
    for backend in backends() {
        let (url, _dir) = fresh_database(backend).await;
        let db = Db::connect(&url).await.expect("connect");
        // Two messages of one person, one of another.
        for (sid, sender) in [
            ("SM-a1", "+15551230001"),
            ("SM-a2", "+15551230001"),
            ("SM-b1", "+15551230002"),
        ] {
            db.record_inbound(inbound(sid, sender))
                .await
                .expect("recorded");
        }
        let claimed = db.claim_inbound(15_000, 10).await.expect("claim");
        assert_eq!(
            claimed.len(),
            2,
            "{backend:?}: the second message of +15551230001 waits behind the first"
        );
        let of = |sid: &str| {
            claimed
                .iter()
                .find(|m| m.message_sid == sid)
                .expect("claimed")
        };
        let (a1, b1) = (of("SM-a1"), of("SM-b1"));
        assert!(!announced(&db).await, "{backend:?}: nothing finished yet");

        let reply = turn(&b1.id, &b1.claim_token, "conv-b", "to b");
        assert_eq!(
            db.record_outgoing(reply).await.expect("b"),
            Recorded::Written
        );
        assert!(
            !announced(&db).await,
            "{backend:?}: nothing of +15551230002 waits: no claim is asked for"
        );

        let reply = turn(&a1.id, &a1.claim_token, "conv-a", "to a");
        assert_eq!(
            db.record_outgoing(reply).await.expect("a"),
            Recorded::Written
        );
        assert!(
            announced(&db).await,
            "{backend:?}: the second message of +15551230001 became claimable and is announced"
        );
        let next = db.claim_inbound(15_000, 10).await.expect("claim");
        assert_eq!(
            next.iter()
                .map(|m| m.message_sid.as_str())
                .collect::<Vec<_>>(),
            ["SM-a2"],
            "{backend:?}"
        );
    }
}

#[tokio::test]
async fn a_recorded_send_announces_the_next_part_to_its_recipient_and_only_then() {
    for backend in backends() {
        let (url, _dir) = fresh_database(backend).await;
        let db = Db::connect(&url).await.expect("connect");
        for write in [
            to("+15551230001", "conv-a", &["part one, ", "part two"]),
            to("+15551230002", "conv-b", &["hello"]),
            to("+15551230003", "conv-c", &["first, ", "second"]),
        ] {
            assert_eq!(
                db.record_outgoing(write).await.expect("written"),
                Recorded::Written
            );
        }
        let _ = notified(&db.outbox_claimable).await;
        let claimed = db.claim_outbox(15_000, 10).await.expect("claim");
        let mut bodies: Vec<&str> = claimed.iter().map(|r| r.body.as_str()).collect();
        bodies.sort_unstable();
        assert_eq!(
            bodies,
            ["first, ", "hello", "part one, "],
            "{backend:?}: each second part waits behind its first"
        );
        let of = |body: &str| claimed.iter().find(|r| r.body == body).expect("claimed");

        let b = of("hello");
        assert!(db
            .outbox_sent(&b.id, &b.claim_token, "SM-b", "queued")
            .await
            .expect("sent"));
        assert!(
            !notified(&db.outbox_claimable).await,
            "{backend:?}: nothing else goes to +15551230002: no claim is asked for"
        );

        let a = of("part one, ");
        assert!(db
            .outbox_sent(&a.id, &a.claim_token, "SM-a", "queued")
            .await
            .expect("sent"));
        assert!(
            notified(&db.outbox_claimable).await,
            "{backend:?}: the second part to +15551230001 became claimable and is announced"
        );

        let c = of("first, ");
        db.outbox_failed(&c.id, &c.claim_token, Some(30003), "unreachable")
            .await
            .expect("failed");
        assert!(
            notified(&db.outbox_claimable).await,
            "{backend:?}: a failed part lets the next one go, and says so"
        );
        let mut next: Vec<String> = db
            .claim_outbox(15_000, 10)
            .await
            .expect("claim")
            .into_iter()
            .map(|r| r.body)
            .collect();
        next.sort_unstable();
        assert_eq!(next, ["part two", "second"], "{backend:?}");
    }
}
