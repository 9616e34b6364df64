//! Issue 13 points 2 and 6: a first start that says what is missing, 401s that say why,
//! tokens that can be listed and revoked, and the guards that stop the silent mistakes (two
//! integrations on one number, an LLM bot without an LLM endpoint), with errors for people.
use crate::channel::{Rig, NUMBER};
use crate::common::{backends, spawn_app, spawn_with, TestApp};
use serde_json::{json, Value};

/// A management call with `token` (or none): its status and body.
async fn list_bots(app: &TestApp, token: Option<&str>) -> (u16, Value) {
    let mut request = app.client.get(app.url("/v1/bot/list"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_401_says_whether_the_token_was_missing_or_unknown() {
    let app = spawn_app(crate::common::Backend::Sqlite).await;
    for (token, says) in [
        (None, "no token given"),
        (Some("cw_not_a_real_token"), "not known"),
    ] {
        let (status, out) = list_bots(&app, token).await;
        assert_eq!(status, 401);
        assert_eq!(out["code"], "NOT_AUTHENTICATED");
        assert!(
            out["message"].as_str().unwrap_or("").contains(says),
            "{out}"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn tokens_are_created_listed_and_revoked_through_the_api() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let (status, made) = app.post("/token/create", json!({"name": "ci"})).await;
        assert_eq!(status, 200, "{made}");
        let token = made["token"].as_str().expect("token").to_owned();
        let id = made["id"].as_str().expect("id").to_owned();
        // The new token works.
        assert_eq!(list_bots(&app, Some(&token)).await.0, 200);
        let (_, listed) = app.get("/token/list").await;
        let items = listed["items"].as_array().expect("items");
        assert_eq!(items.len(), 1);
        assert_eq!(items[0]["id"], id.as_str());
        assert_eq!(items[0]["name"], "ci");
        assert!(items[0]["createdAt"].as_i64().is_some());
        // A list never shows a token's value.
        assert!(!listed.to_string().contains(&token));
        let (status, revoked) = app.post(&format!("/token/{id}/revoke"), json!({})).await;
        assert_eq!((status, revoked["id"].as_str()), (200, Some(id.as_str())));
        assert_eq!(
            list_bots(&app, Some(&token)).await.0,
            401,
            "a revoked token no longer works"
        );
        let (status, missing) = app.post("/token/nope/revoke", json!({})).await;
        assert_eq!(status, 404, "{missing}");
        assert!(missing["message"].as_str().unwrap_or("").contains("nope"));
        app.stop().await;
    }
}

#[tokio::test]
async fn revoking_by_a_shared_name_asks_for_an_id() {
    let app = spawn_app(crate::common::Backend::Sqlite).await;
    for _ in 0..2 {
        let (status, _) = app.post("/token/create", json!({"name": "twin"})).await;
        assert_eq!(status, 200);
    }
    let (status, out) = app.post("/token/twin/revoke", json!({})).await;
    assert_eq!(status, 409, "{out}");
    assert!(
        out["message"].as_str().unwrap_or("").contains("by id"),
        "{out}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_second_integration_on_a_taken_number_is_refused_naming_the_first() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let bot = app.create("/bot", json!({"model": "echo"})).await;
        let first = app
            .create(
                "/integration/twilio",
                json!({"name": "Support SMS", "botId": bot, "phoneNumber": "+15005550006"}),
            )
            .await;
        // The same number written differently is the same number.
        let (status, out) = app
            .post(
                "/integration/twilio/create",
                json!({"name": "Sales", "botId": bot, "phoneNumber": "(500) 555-0006"}),
            )
            .await;
        assert_eq!(status, 409, "{out}");
        assert_eq!(out["code"], "CONFLICT");
        let message = out["message"].as_str().unwrap_or("");
        assert!(
            message.contains("Support SMS") && message.contains(&first),
            "{message}"
        );
        // An update onto the taken number is refused too; the integration itself may keep it.
        let other = app
            .create(
                "/integration/twilio",
                json!({"name": "Sales", "botId": bot, "phoneNumber": "+15005550007"}),
            )
            .await;
        let (status, _) = app
            .post(
                &format!("/integration/twilio/{other}/update"),
                json!({"phoneNumber": "+15005550006"}),
            )
            .await;
        assert_eq!(status, 409);
        let (status, out) = app
            .post(
                &format!("/integration/twilio/{first}/update"),
                json!({"phoneNumber": "+15005550006", "name": "Support"}),
            )
            .await;
        assert_eq!(status, 200, "{out}");
        // Once the first is removed, the number is free.
        let (status, _) = app
            .post(&format!("/integration/twilio/{first}/delete"), json!({}))
            .await;
        assert_eq!(status, 200);
        let (status, out) = app
            .post(
                &format!("/integration/twilio/{other}/update"),
                json!({"phoneNumber": "+15005550006"}),
            )
            .await;
        assert_eq!(status, 200, "{out}");
        app.stop().await;
    }
}

#[tokio::test]
async fn an_llm_bot_without_an_llm_endpoint_is_refused_naming_the_setting() {
    let app = spawn_app(crate::common::Backend::Sqlite).await;
    let (status, out) = app
        .post(
            "/bot/create",
            json!({"model": "gpt-4o", "backstory": "Be brief."}),
        )
        .await;
    assert_eq!(status, 400, "{out}");
    let message = out["message"].as_str().unwrap_or("");
    assert!(message.contains("CHATWIRE_LLM_URL"), "{message}");
    // Switching an existing bot to an LLM is refused the same way.
    let bot = app.create("/bot", json!({"model": "echo"})).await;
    let (status, _) = app
        .post(&format!("/bot/{bot}/update"), json!({"model": "gpt-4o"}))
        .await;
    assert_eq!(status, 400);
    // A bare bot (ChatBotKit users create them and configure later) is accepted, with a
    // warning that says what it will do.
    let (status, out) = app.post("/bot/create", json!({"name": "Later"})).await;
    assert_eq!(status, 200, "{out}");
    assert!(
        out["warnings"][0]
            .as_str()
            .unwrap_or("")
            .contains("CHATWIRE_LLM_URL"),
        "{out}"
    );
    app.stop().await;
    // With an endpoint configured the same bot is accepted.
    let app = spawn_with(crate::common::Backend::Sqlite, |c| {
        c.llm_url = Some("http://127.0.0.1:9/v1".into())
    })
    .await;
    let (status, out) = app.post("/bot/create", json!({"model": "gpt-4o"})).await;
    assert_eq!(status, 200, "{out}");
    assert!(out.get("warnings").is_none(), "{out}");
    app.stop().await;
}

#[tokio::test]
async fn setup_answers_with_what_it_configured_and_the_previous_values() {
    for backend in backends() {
        let rig = Rig::start(backend).await;
        // The rig ran setup once; a second run reports the first one's URLs as previous.
        let (status, out) = rig
            .app
            .post(
                &format!("/integration/twilio/{}/setup", rig.integration),
                json!({}),
            )
            .await;
        assert_eq!(status, 200, "{out}");
        // With the connection overrides that make Twilio retry while Chatwire restarts.
        let overrides = "#ct=2000&rt=5000&tt=15000&rc=5&rp=ct,rt,5xx";
        let webhook = format!(
            "{}/v1/integration/twilio/{}/webhook{overrides}",
            rig.app.base, rig.integration
        );
        let status_url = format!(
            "{}/v1/integration/twilio/{}/status{overrides}",
            rig.app.base, rig.integration
        );
        assert_eq!(out["id"], rig.integration.as_str());
        assert_eq!(out["phoneNumber"], NUMBER);
        assert!(
            out["numberSid"].as_str().unwrap_or("").starts_with("PN"),
            "{out}"
        );
        assert_eq!(out["webhookUrl"], webhook.as_str());
        assert_eq!(out["statusUrl"], status_url.as_str());
        assert_eq!(out["previous"]["webhookUrl"], webhook.as_str());
        assert_eq!(out["previous"]["statusUrl"], status_url.as_str());
        rig.stop().await;
    }
}

#[tokio::test]
async fn twilio_refusals_read_without_rust_syntax() {
    let rig = Rig::with(
        crate::common::Backend::Sqlite,
        json!({"model": "echo"}),
        json!({}),
    )
    .await;
    let (status, _) = rig
        .app
        .post(
            &format!("/integration/twilio/{}/update", rig.integration),
            json!({"authToken": "wrong0token0000000000000000000000"}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, out) = rig
        .app
        .post(
            &format!("/integration/twilio/{}/setup", rig.integration),
            json!({}),
        )
        .await;
    assert_eq!(status, 409, "{out}");
    let message = out["message"].as_str().unwrap_or("");
    assert!(message.contains("Twilio error 20003"), "{message}");
    for rust in ["Some(", "None"] {
        assert!(!message.contains(rust), "{message}");
    }
    rig.stop().await;
}
