//! Client mistakes on the custom operations: each gets a 4xx `{message, code}` answer and
//! leaves the database exactly as it was.
use crate::common::{backends, spawn_app, TestApp, TOKEN};
use serde_json::{json, Value};

/// Every row the API can list, as one comparable snapshot.
async fn snapshot(app: &TestApp, conversation: &str, dataset: &str) -> Value {
    let mut all = serde_json::Map::new();
    for path in [
        "/blueprint/list".to_owned(),
        "/bot/list".to_owned(),
        "/contact/list".to_owned(),
        "/conversation/list".to_owned(),
        "/dataset/list".to_owned(),
        "/integration/twilio/list".to_owned(),
        format!("/conversation/{conversation}/message/list"),
        format!("/dataset/{dataset}/record/list"),
    ] {
        let (status, list) = app.get(&path).await;
        assert_eq!(status, 200, "{path}");
        all.insert(path, list);
    }
    Value::Object(all)
}

fn assert_error(status: u16, body: &Value, expected: u16, what: &str) {
    assert_eq!(status, expected, "{what}: {body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{what}: message in {body}"
    );
    assert!(
        body["code"].as_str().is_some_and(|c| !c.is_empty()),
        "{what}: code in {body}"
    );
}

#[tokio::test]
async fn custom_operations_refuse_bad_bodies_and_change_nothing() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let blueprint = app.create("/blueprint", json!({})).await;
        app.create("/bot", json!({"blueprintId": blueprint})).await;
        let conversation = app.create("/conversation", json!({})).await;
        let dataset = app.create("/dataset", json!({})).await;
        app.create(
            &format!("/dataset/{dataset}/record"),
            json!({"text": "kept"}),
        )
        .await;
        app.post(
            "/contact/ensure",
            json!({"fingerprint": "existing-fingerprint"}),
        )
        .await;
        let before = snapshot(&app, &conversation, &dataset).await;

        let cases: Vec<(String, Value, u16)> = vec![
            ("/contact/ensure".into(), json!({"alias": "x"}), 400),
            (
                "/contact/ensure".into(),
                json!({"blueprintId": blueprint}),
                400,
            ),
            ("/contact/ensure".into(), json!({"fingerprint": 42}), 400),
            ("/contact/ensure".into(), json!({"fingerprint": "  "}), 400),
            (
                "/contact/ensure".into(),
                json!({"fingerprint": "new-one", "phone": "call me"}),
                400,
            ),
            (
                "/contact/ensure".into(),
                json!({"email": "not-an-email"}),
                400,
            ),
            (
                "/contact/ensure".into(),
                json!({"meta": {"_private": 1}}),
                400,
            ),
            (
                "/contact/ensure".into(),
                json!({"fingerprint": "new-one", "verifiedAt": "yesterday"}),
                400,
            ),
            (
                "/conversation/create".into(),
                json!({"messages": "hello"}),
                400,
            ),
            (
                "/conversation/create".into(),
                json!({"messages": [{"type": "user"}]}),
                400,
            ),
            (
                "/conversation/create".into(),
                json!({"messages": [{"type": "shout", "text": "x"}]}),
                400,
            ),
            (
                "/conversation/create".into(),
                json!({"messages": [{"type": "user", "text": "ok"}, {"type": "user", "text": "x", "extra": 1}]}),
                400,
            ),
            ("/conversation/create".into(), json!({"messages": [7]}), 400),
            (
                "/conversation/create".into(),
                json!({"botId": "no-such-bot", "messages": [{"type": "user", "text": "x"}]}),
                400,
            ),
            ("/conversation/create".into(), json!({"unknown": true}), 400),
            (
                format!("/conversation/{conversation}/message/create"),
                json!({"type": "user"}),
                400,
            ),
            (
                format!("/conversation/{conversation}/message/create"),
                json!({"text": "x", "type": "user", "entities": "none"}),
                400,
            ),
            (
                format!("/conversation/{conversation}/message/create"),
                json!({"text": "x", "type": "user", "foo": 1}),
                400,
            ),
            (
                "/conversation/missing/message/create".into(),
                json!({"text": "x", "type": "user"}),
                404,
            ),
            (
                format!("/blueprint/{blueprint}/delete"),
                json!({"deleteResources": "yes"}),
                400,
            ),
            (
                format!("/blueprint/{blueprint}/delete"),
                json!({"deleteResources": true, "force": true}),
                400,
            ),
            (
                "/blueprint/missing/delete".into(),
                json!({"deleteResources": true}),
                404,
            ),
            (format!("/dataset/{dataset}/search"), json!({}), 400),
            (
                format!("/dataset/{dataset}/search"),
                json!({"search": 5}),
                400,
            ),
            (
                format!("/dataset/{dataset}/search"),
                json!({"search": "kept", "filter": []}),
                400,
            ),
            (
                format!("/dataset/{dataset}/search"),
                json!({"search": "kept", "filter": {"a": {"$gt": "x"}}}),
                400,
            ),
            (
                format!("/dataset/{dataset}/search"),
                json!({"search": "kept", "filter": {"a": {"$regex": "x"}}}),
                400,
            ),
            (
                format!("/dataset/{dataset}/search"),
                json!({"search": "kept", "limit": 3}),
                400,
            ),
            (
                "/dataset/missing/search".into(),
                json!({"search": "kept"}),
                404,
            ),
        ];
        for (path, body, expected) in &cases {
            let (status, answer) = app.post(path, body.clone()).await;
            assert_error(
                status,
                &answer,
                *expected,
                &format!("{backend:?} POST {path} {body}"),
            );
        }
        let (status, answer) = app.get("/contact/missing/conversation/list").await;
        assert_error(status, &answer, 404, "unknown contact");
        let (status, answer) = app.get("/blueprint/missing/resource/list").await;
        assert_error(status, &answer, 404, "unknown blueprint");

        // Transport mistakes on the custom routes: content type, JSON, method, size.
        for path in [
            "/v1/contact/ensure",
            "/v1/conversation/create",
            &format!("/api/v1/dataset/{dataset}/search"),
        ] {
            let send = |ct: &'static str, body: String| {
                app.client
                    .post(app.url(path))
                    .bearer_auth(TOKEN)
                    .header("content-type", ct)
                    .body(body)
                    .send()
            };
            for (ct, body, expected) in [
                ("text/plain", "{}".to_owned(), 400),
                ("application/json", "{\"search\": ".to_owned(), 400),
                ("application/json", "[1, 2]".to_owned(), 400),
                (
                    "application/json",
                    format!("{{\"search\":\"{}\"}}", "x".repeat(2 * 1024 * 1024)),
                    413,
                ),
            ] {
                let resp = send(ct, body).await.expect("send");
                let status = resp.status().as_u16();
                let answer: Value = resp.json().await.unwrap_or(Value::Null);
                assert_error(
                    status,
                    &answer,
                    expected,
                    &format!("{backend:?} {path} {ct} -> {expected}"),
                );
            }
            let resp = app
                .client
                .get(app.url(path))
                .bearer_auth(TOKEN)
                .send()
                .await
                .expect("send");
            let status = resp.status().as_u16();
            let answer: Value = resp.json().await.unwrap_or(Value::Null);
            assert_error(status, &answer, 405, &format!("{backend:?} GET {path}"));
            let resp = app
                .client
                .post(app.url(path))
                .json(&json!({}))
                .send()
                .await
                .expect("send");
            assert_eq!(
                resp.status().as_u16(),
                401,
                "{backend:?} {path} without a token"
            );
        }

        let after = snapshot(&app, &conversation, &dataset).await;
        assert_eq!(before, after, "{backend:?}: no mistake changed anything");
        app.stop().await;
    }
}

#[tokio::test]
async fn a_message_list_of_an_unknown_conversation_is_not_found() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let (status, answer) = app.get("/conversation/missing/message/list").await;
        assert_error(status, &answer, 404, "unknown conversation");
        assert_eq!(answer, json!({"message": "Not found", "code": "NOT_FOUND"}));
        app.stop().await;
    }
}
