//! Management API behaviour, on every backend.
use crate::common::{backends, spawn_app, TOKEN};
use serde_json::{json, Value};

#[tokio::test]
async fn twilio_integration_crud_round_trip_hides_auth_token() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let bot = app
            .create("/bot", json!({"name": "Echo", "model": "echo"}))
            .await;
        let id = app
            .create(
                "/integration/twilio",
                json!({"name": "Support SMS", "botId": bot, "accountSid": "ACa0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5", "authToken": "s3cret",
                       "sessionDuration": 1_800_000, "meta": {"env": "prod"}}),
            )
            .await;
        let (status, fetched) = app.get(&format!("/integration/twilio/{id}/fetch")).await;
        assert_eq!(status, 200, "{backend:?}");
        assert_eq!(fetched["name"], "Support SMS");
        assert_eq!(fetched["botId"], Value::String(bot.clone()));
        assert_eq!(fetched["allowFrom"], "*");
        assert_eq!(fetched["description"], "");
        assert_eq!(fetched["blueprintId"], Value::Null);
        assert_eq!(fetched["contactCollection"], false);
        assert!(fetched["createdAt"].is_i64());
        assert!(
            fetched.get("authToken").is_none(),
            "authToken must never be returned"
        );
        assert!(!fetched.to_string().contains("s3cret"));

        let (status, _) = app
            .post(
                &format!("/integration/twilio/{id}/update"),
                json!({"name": "Renamed"}),
            )
            .await;
        assert_eq!(status, 200);
        let (_, fetched) = app.get(&format!("/integration/twilio/{id}/fetch")).await;
        assert_eq!(fetched["name"], "Renamed");
        assert_eq!(
            fetched["meta"],
            json!({"env": "prod"}),
            "partial update keeps other fields"
        );

        let (status, listed) = app.get("/integration/twilio/list").await;
        assert_eq!(status, 200);
        assert_eq!(listed["items"].as_array().map(Vec::len), Some(1));
        assert_eq!(listed["cursor"], Value::String(id.clone()));

        let (status, out) = app
            .post(&format!("/integration/twilio/{id}/delete"), json!({}))
            .await;
        assert_eq!(
            (status, out["id"].clone()),
            (200, Value::String(id.clone()))
        );
        let (status, err) = app.get(&format!("/integration/twilio/{id}/fetch")).await;
        assert_eq!(status, 404);
        assert_eq!(err, json!({"message": "Not found", "code": "NOT_FOUND"}));
        app.stop().await;
    }
}

#[tokio::test]
async fn client_mistakes_get_4xx_with_message_and_code() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let (s, e) = app
            .post(
                "/integration/twilio/create",
                json!({"sessionDuration": 2_592_000_001_i64}),
            )
            .await;
        assert_eq!((s, e["code"].as_str()), (400, Some("BAD_REQUEST")));
        let (s, e) = app
            .post("/integration/twilio/create", json!({"foo": 1}))
            .await;
        assert_eq!(s, 400);
        assert_eq!(e["message"], "\"foo\" is not allowed");
        let (s, e) = app
            .post("/integration/twilio/create", json!({"botId": "nope"}))
            .await;
        assert_eq!(s, 400);
        assert!(e["message"]
            .as_str()
            .unwrap_or("")
            .contains("Bot not found"));
        let (s, _) = app.post("/bot/create", json!({"alias": "dup"})).await;
        assert_eq!(s, 200);
        let (s, e) = app.post("/bot/create", json!({"alias": "dup"})).await;
        assert_eq!((s, e["code"].as_str()), (409, Some("CONFLICT")));

        let raw = |body: &'static str, ct: &'static str| {
            app.client
                .post(app.url("/v1/bot/create"))
                .bearer_auth(TOKEN)
                .header("content-type", ct)
                .body(body)
        };
        let r = raw("{not json", "application/json")
            .send()
            .await
            .expect("send");
        assert_eq!(r.status(), 400);
        let r = raw("{}", "text/plain").send().await.expect("send");
        assert_eq!(r.status(), 400);
        let big = "x".repeat(2 * 1024 * 1024);
        let r = app
            .client
            .post(app.url("/v1/bot/create"))
            .bearer_auth(TOKEN)
            .header("content-type", "application/json")
            .body(format!("{{\"name\":\"{big}\"}}"))
            .send()
            .await
            .expect("send");
        assert_eq!(r.status(), 413);
        let body: Value = r.json().await.expect("json");
        assert_eq!(
            body["message"],
            json!("Request body too large: the limit is 1 MB (1048576 bytes)"),
            "the 413 says the limit"
        );
        let r = app
            .client
            .delete(app.url("/v1/bot/list"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("send");
        assert_eq!(r.status(), 405);
        let body: Value = r.json().await.expect("json");
        assert_eq!(body["code"], "METHOD_NOT_ALLOWED");
        let r = app
            .client
            .get(app.url("/v1/bot/list"))
            .send()
            .await
            .expect("send");
        assert_eq!(r.status(), 401);
        let r = app
            .client
            .get(app.url("/api/v1/bot/list"))
            .header("authorization", format!("Token {TOKEN}"))
            .send()
            .await
            .expect("send");
        assert_eq!(
            r.status(),
            200,
            "scheme word is ignored and /api/v1 is served"
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn lists_page_with_cursor_filter_by_meta_and_stream_jsonl() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let mut ids = Vec::new();
        for i in 0..7 {
            ids.push(app.create("/bot", json!({"name": format!("b{i}"), "meta": {"group": if i % 2 == 0 {"even"} else {"odd"}, "flag": i == 3}})).await);
        }
        let (_, page1) = app.get("/bot/list?take=3").await;
        let page1_ids: Vec<&str> = page1["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter_map(|i| i["id"].as_str())
            .collect();
        assert_eq!(
            page1_ids,
            vec![ids[6].as_str(), ids[5].as_str(), ids[4].as_str()],
            "desc by default"
        );
        // A row inserted between pages must not shift the next page.
        app.create("/bot", json!({"name": "late"})).await;
        let cursor = page1["cursor"].as_str().expect("cursor");
        let (_, page2) = app.get(&format!("/bot/list?take=3&cursor={cursor}")).await;
        let page2_ids: Vec<&str> = page2["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter_map(|i| i["id"].as_str())
            .collect();
        assert_eq!(
            page2_ids,
            vec![ids[3].as_str(), ids[2].as_str(), ids[1].as_str()]
        );
        let (_, asc) = app.get("/bot/list?order=asc&take=2").await;
        assert_eq!(asc["items"][0]["id"], Value::String(ids[0].clone()));

        let (_, even) = app.get("/bot/list?meta.group=even").await;
        assert_eq!(even["items"].as_array().map(Vec::len), Some(4));
        let (_, odd_flag) = app.get("/bot/list?meta[group]=odd&meta.flag=true").await;
        assert_eq!(odd_flag["items"].as_array().map(Vec::len), Some(1));
        assert_eq!(odd_flag["items"][0]["id"], Value::String(ids[3].clone()));

        let (_, empty) = app.get(&format!("/bot/list?cursor={}", ids[0])).await;
        assert_eq!(
            empty,
            json!({"items": []}),
            "no cursor key on an empty page"
        );

        let text = app
            .client
            .get(app.url("/v1/bot/list"))
            .bearer_auth(TOKEN)
            .header("accept", "application/jsonl")
            .send()
            .await
            .expect("send")
            .text()
            .await
            .expect("text");
        let lines: Vec<&str> = text.split_terminator('\n').collect();
        assert_eq!(lines.len(), 8);
        assert!(
            lines.iter().all(|l| !l.trim().is_empty()),
            "never a blank line"
        );
        let first: Value = serde_json::from_str(lines[0]).expect("json line");
        assert_eq!(first["type"], "item");
        assert!(first["data"]["id"].is_string());
        app.stop().await;
    }
}
