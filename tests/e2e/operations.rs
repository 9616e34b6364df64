//! The management API's custom operations (beyond the generic five verbs), on every backend:
//! contact ensure, a contact's conversations, conversation create with messages, message
//! create, cascading deletes, blueprint resources and delete, dataset search.
use crate::common::{backends, spawn_app, TestApp, TOKEN};
use chatwire::domain::fingerprint::{fingerprint, UNTRUSTED_NAMESPACE};
use serde_json::{json, Value};

fn item_ids(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

async fn fetch_status(app: &TestApp, path: &str) -> u16 {
    app.get(path).await.0
}

#[tokio::test]
async fn contact_ensure_returns_one_contact_per_fingerprint() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let (status, first) = app
            .post(
                "/contact/ensure",
                json!({"fingerprint": "user-123-from-oauth", "name": "Jane"}),
            )
            .await;
        assert_eq!(status, 200, "{backend:?}: {first}");
        let id = first["id"].as_str().expect("id").to_owned();
        let (_, again) = app
            .post(
                "/contact/ensure",
                json!({"fingerprint": "user-123-from-oauth", "name": "Other"}),
            )
            .await;
        assert_eq!(
            again["id"],
            Value::String(id.clone()),
            "{backend:?}: same fingerprint, same contact"
        );
        let (_, contact) = app.get(&format!("/contact/{id}/fetch")).await;
        assert_eq!(
            contact["name"], "Jane",
            "{backend:?}: an existing contact is returned unchanged"
        );
        assert_eq!(contact["fingerprint"], "user-123-from-oauth");
        assert!(
            contact["verifiedAt"].is_i64(),
            "{backend:?}: a trusted contact is verified"
        );

        // Without a fingerprint it is derived from the attributes, as ChatBotKit derives it.
        let body =
            json!({"email": "guest@example.com", "phone": "(415) 555-0100", "name": "Guest"});
        let (_, guest) = app.post("/contact/ensure", body.clone()).await;
        let (_, guest_again) = app.post("/contact/ensure", body).await;
        assert_eq!(guest["id"], guest_again["id"], "{backend:?}");
        let (_, fetched) = app
            .get(&format!(
                "/contact/{}/fetch",
                guest["id"].as_str().expect("id")
            ))
            .await;
        assert_eq!(
            fetched["phone"], "+14155550100",
            "{backend:?}: phone normalised to E.164"
        );
        let expected = fingerprint(
            UNTRUSTED_NAMESPACE,
            &[
                Some("Guest"),
                Some("guest@example.com"),
                Some("+14155550100"),
                None,
            ],
        );
        assert_eq!(
            fetched["fingerprint"],
            Value::String(expected),
            "{backend:?}"
        );
        assert_eq!(
            fetched["verifiedAt"],
            Value::Null,
            "{backend:?}: an untrusted contact is not verified"
        );
        let (_, other) = app
            .post("/contact/ensure", json!({"email": "someone@example.com"}))
            .await;
        assert_ne!(
            other["id"], guest["id"],
            "{backend:?}: other attributes, other contact"
        );

        // Many clients ensuring the same new contact at once still make one.
        let calls = (0..8).map(|_| {
            app.post(
                "/contact/ensure",
                json!({"fingerprint": "race-fingerprint-0001"}),
            )
        });
        let results = futures::future::join_all(calls).await;
        assert!(
            results.iter().all(|(s, _)| *s == 200),
            "{backend:?}: {results:?}"
        );
        assert!(
            results.windows(2).all(|w| w[0].1["id"] == w[1].1["id"]),
            "{backend:?}: one id"
        );
        let (_, all) = app.get("/contact/list").await;
        assert_eq!(
            item_ids(&all).len(),
            4,
            "{backend:?}: jane, guest, someone, race"
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn contact_conversation_list_shows_only_that_contacts_conversations() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let alice = app.create("/contact", json!({"name": "Alice"})).await;
        let bob = app
            .create("/contact", json!({"name": "Bob", "alias": "bob"}))
            .await;
        let a1 = app
            .create(
                "/conversation",
                json!({"contactId": alice, "meta": {"n": "1"}}),
            )
            .await;
        let _b1 = app.create("/conversation", json!({"contactId": bob})).await;
        let a2 = app
            .create(
                "/conversation",
                json!({"contactId": alice, "meta": {"n": "2"}}),
            )
            .await;
        let (status, list) = app
            .get(&format!("/contact/{alice}/conversation/list"))
            .await;
        assert_eq!(status, 200, "{backend:?}: {list}");
        assert_eq!(
            item_ids(&list),
            vec![a2.clone(), a1.clone()],
            "{backend:?}: desc, Alice's only"
        );
        assert_eq!(list["items"][0]["contactId"], Value::String(alice.clone()));
        let (_, asc) = app
            .get(&format!(
                "/contact/{alice}/conversation/list?order=asc&take=1"
            ))
            .await;
        assert_eq!(
            (item_ids(&asc), asc["cursor"].clone()),
            (vec![a1.clone()], Value::String(a1.clone())),
            "{backend:?}"
        );
        let (_, filtered) = app
            .get(&format!("/contact/{alice}/conversation/list?meta.n=2"))
            .await;
        assert_eq!(
            item_ids(&filtered),
            vec![a2.clone()],
            "{backend:?}: meta filters apply"
        );
        let (_, by_alias) = app.get("/contact/bob/conversation/list").await;
        assert_eq!(
            item_ids(&by_alias).len(),
            1,
            "{backend:?}: the contact can be named by alias"
        );
        let text = app
            .client
            .get(app.url(&format!("/api/v1/contact/{alice}/conversation/list")))
            .bearer_auth(TOKEN)
            .header("accept", "application/jsonl")
            .send()
            .await
            .expect("send")
            .text()
            .await
            .expect("body");
        assert_eq!(
            text.lines().count(),
            2,
            "{backend:?}: JSONL streams every item: {text}"
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn conversation_create_stores_given_messages_in_order() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let bot = app.create("/bot", json!({"name": "b"})).await;
        let messages: Vec<Value> = (0..12)
            .map(|i| json!({"type": if i % 2 == 0 {"user"} else {"bot"}, "text": format!("m{i}")}))
            .collect();
        let (status, created) = app
            .post(
                "/conversation/create",
                json!({"botId": bot, "name": "seeded", "messages": messages}),
            )
            .await;
        assert_eq!(status, 200, "{backend:?}: {created}");
        let id = created["id"].as_str().expect("id").to_owned();
        let returned = created["messages"]
            .as_array()
            .expect("messages echoed with ids");
        assert_eq!(returned.len(), 12);
        assert!(returned.iter().all(|m| m["id"].is_string()), "{backend:?}");
        let (_, list) = app.get(&format!("/conversation/{id}/message/list")).await;
        let texts: Vec<&str> = list["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter_map(|m| m["text"].as_str())
            .collect();
        let expected: Vec<String> = (0..12).map(|i| format!("m{i}")).collect();
        assert_eq!(
            texts, expected,
            "{backend:?}: asc by default, in the given order"
        );
        assert_eq!(list["items"][1]["type"], "bot");
        assert_eq!(
            item_ids(&list),
            returned
                .iter()
                .filter_map(|m| m["id"].as_str().map(str::to_owned))
                .collect::<Vec<_>>()
        );
        let (_, conversation) = app.get(&format!("/conversation/{id}/fetch")).await;
        assert_eq!(
            (conversation["botId"].clone(), conversation["name"].clone()),
            (json!(bot), json!("seeded"))
        );

        let (_, plain) = app.post("/conversation/create", json!({})).await;
        assert!(
            plain["id"].is_string() && plain.get("messages").is_none(),
            "{backend:?}: {plain}"
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn message_create_answers_id_and_entities() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let conversation = app.create("/conversation", json!({})).await;
        let (status, out) = app
            .post(
                &format!("/conversation/{conversation}/message/create"),
                json!({"type": "user", "text": "hi", "entities": []}),
            )
            .await;
        assert_eq!(status, 200, "{backend:?}: {out}");
        assert_eq!(out["entities"], json!([]));
        let id = out["id"].as_str().expect("id");
        let (_, message) = app
            .get(&format!("/conversation/{conversation}/message/{id}/fetch"))
            .await;
        assert_eq!(
            (message["type"].clone(), message["text"].clone()),
            (json!("user"), json!("hi")),
            "{backend:?}"
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn deleting_a_conversation_or_dataset_deletes_what_is_inside() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let (_, created) = app
            .post(
                "/conversation/create",
                json!({"messages": [{"type": "user", "text": "a"}, {"type": "bot", "text": "b"}]}),
            )
            .await;
        let conversation = created["id"].as_str().expect("id").to_owned();
        let message = created["messages"][0]["id"]
            .as_str()
            .expect("message id")
            .to_owned();
        let survivor = app.create("/conversation", json!({})).await;
        let (_, kept) = app
            .post(
                &format!("/conversation/{survivor}/message/create"),
                json!({"type": "user", "text": "stay"}),
            )
            .await;
        let (status, _) = app
            .post(&format!("/conversation/{conversation}/delete"), json!({}))
            .await;
        assert_eq!(status, 200);
        assert_eq!(
            fetch_status(&app, &format!("/conversation/{conversation}/fetch")).await,
            404,
            "{backend:?}"
        );
        assert!(
            app.state
                .db
                .resolve_id(&chatwire::store::schema::MESSAGE, None, &message)
                .await
                .expect("query")
                .is_none(),
            "{backend:?}: the messages are gone from the database"
        );
        let kept_id = kept["id"].as_str().expect("id");
        assert_eq!(
            fetch_status(
                &app,
                &format!("/conversation/{survivor}/message/{kept_id}/fetch")
            )
            .await,
            200,
            "{backend:?}"
        );

        let dataset = app.create("/dataset", json!({})).await;
        let record = app
            .create(
                &format!("/dataset/{dataset}/record"),
                json!({"text": "zebra facts"}),
            )
            .await;
        let (status, _) = app
            .post(&format!("/dataset/{dataset}/delete"), json!({}))
            .await;
        assert_eq!(status, 200);
        assert!(
            app.state
                .db
                .resolve_id(&chatwire::store::schema::DATASET_RECORD, None, &record)
                .await
                .expect("query")
                .is_none(),
            "{backend:?}: the records are gone"
        );
        let hits = chatwire::store::search::search(&app.state.db, &dataset, "zebra", 5)
            .await
            .expect("search");
        assert!(hits.is_empty(), "{backend:?}: and out of the search index");
        app.stop().await;
    }
}

/// A blueprint with one of each member; returns (blueprint, [bot, dataset, record, twilio, contact]).
async fn populated_blueprint(app: &TestApp, alias: &str) -> (String, Vec<String>) {
    let blueprint = app
        .create("/blueprint", json!({"name": "Support kit", "alias": alias}))
        .await;
    let bot = app
        .create(
            "/bot",
            json!({"name": "Helper", "blueprintId": blueprint, "meta": {"k": 1}}),
        )
        .await;
    let dataset = app
        .create("/dataset", json!({"name": "FAQ", "blueprintId": blueprint}))
        .await;
    let record = app
        .create(
            &format!("/dataset/{dataset}/record"),
            json!({"text": "hello"}),
        )
        .await;
    let twilio = app
        .create(
            "/integration/twilio",
            json!({"blueprintId": blueprint, "botId": bot, "authToken": "secret-token"}),
        )
        .await;
    let contact = app
        .create("/contact", json!({"blueprintId": blueprint, "name": "C"}))
        .await;
    (blueprint, vec![bot, dataset, record, twilio, contact])
}

#[tokio::test]
async fn blueprint_resource_list_groups_linked_resources() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let (blueprint, ids) = populated_blueprint(&app, "kit").await;
        let _unlinked = app.create("/bot", json!({"name": "loner"})).await;
        let (status, out) = app.get("/blueprint/kit/resource/list").await;
        assert_eq!(status, 200, "{backend:?}: {out}");
        assert_eq!(out["id"], Value::String(blueprint.clone()));
        let resources = &out["resources"];
        let bot = &resources["bot"][0];
        assert_eq!(
            resources["bot"].as_array().map(Vec::len),
            Some(1),
            "{backend:?}: the unlinked bot is not listed"
        );
        assert_eq!(
            (
                bot["id"].clone(),
                bot["name"].clone(),
                bot["description"].clone()
            ),
            (json!(ids[0]), json!("Helper"), json!(""))
        );
        assert_eq!(
            (
                bot["blueprintId"].clone(),
                bot["datasetId"].clone(),
                bot["meta"].clone()
            ),
            (json!(blueprint), Value::Null, json!({"k": 1}))
        );
        assert!(
            bot.get("model").is_none() && bot.get("createdAt").is_none(),
            "{backend:?}: only id, name, description, links, meta"
        );
        assert_eq!(resources["dataset"][0]["id"], Value::String(ids[1].clone()));
        assert_eq!(
            resources["twilioIntegration"][0]["botId"],
            Value::String(ids[0].clone())
        );
        assert!(
            !resources.to_string().contains("secret-token"),
            "{backend:?}: no secret in the listing"
        );
        assert_eq!(resources["contact"][0]["id"], Value::String(ids[4].clone()));
        let empty = app.create("/blueprint", json!({})).await;
        let (_, none) = app.get(&format!("/blueprint/{empty}/resource/list")).await;
        assert_eq!(
            none["resources"],
            json!({"bot": [], "dataset": [], "twilioIntegration": [], "widgetIntegration": [], "contact": []}),
            "{backend:?}"
        );
        assert_eq!(
            fetch_status(&app, "/blueprint/missing/resource/list").await,
            404
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn blueprint_delete_keeps_or_deletes_its_resources() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let (kept_bp, kept) = populated_blueprint(&app, "keep").await;
        let (gone_bp, gone) = populated_blueprint(&app, "gone").await;

        let (status, out) = app
            .post(&format!("/blueprint/{kept_bp}/delete"), json!({}))
            .await;
        assert_eq!(
            (status, out["id"].clone()),
            (200, Value::String(kept_bp.clone())),
            "{backend:?}"
        );
        assert_eq!(
            fetch_status(&app, &format!("/blueprint/{kept_bp}/fetch")).await,
            404
        );
        for (path, id) in [
            ("/bot", &kept[0]),
            ("/dataset", &kept[1]),
            ("/integration/twilio", &kept[3]),
            ("/contact", &kept[4]),
        ] {
            let (status, row) = app.get(&format!("{path}/{id}/fetch")).await;
            assert_eq!(status, 200, "{backend:?}: {path} stays");
            assert_eq!(
                row["blueprintId"],
                Value::Null,
                "{backend:?}: {path} is unlinked"
            );
        }
        assert_eq!(
            fetch_status(
                &app,
                &format!("/dataset/{}/record/{}/fetch", kept[1], kept[2])
            )
            .await,
            200
        );

        let (status, _) = app
            .post(
                &format!("/blueprint/{gone_bp}/delete"),
                json!({"deleteResources": true}),
            )
            .await;
        assert_eq!(status, 200, "{backend:?}");
        for (path, id) in [
            ("/bot", &gone[0]),
            ("/dataset", &gone[1]),
            ("/integration/twilio", &gone[3]),
            ("/contact", &gone[4]),
        ] {
            assert_eq!(
                fetch_status(&app, &format!("{path}/{id}/fetch")).await,
                404,
                "{backend:?}: {path} deleted"
            );
        }
        let record = app
            .state
            .db
            .resolve_id(&chatwire::store::schema::DATASET_RECORD, None, &gone[2])
            .await
            .expect("query");
        assert!(
            record.is_none(),
            "{backend:?}: the dataset's records went with it"
        );
        assert_eq!(
            fetch_status(&app, &format!("/bot/{}/fetch", kept[0])).await,
            200,
            "{backend:?}: other blueprints' resources stay"
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn dataset_search_ranks_records_and_honours_dataset_settings() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let dataset = app
            .create("/dataset", json!({"name": "FAQ", "alias": "faq"}))
            .await;
        let texts = [
            (
                "To reset your password, open Settings and choose Reset password.",
                json!({"topic": "account", "rank": 2}),
            ),
            (
                "Our support line is open 9 to 5.",
                json!({"topic": "support", "rank": 1}),
            ),
            (
                "Password rules: at least 12 characters.",
                json!({"topic": "account", "rank": 5}),
            ),
            (
                "Invoices are emailed monthly.",
                json!({"topic": "billing", "rank": 3}),
            ),
        ];
        let mut ids = Vec::new();
        for (text, meta) in &texts {
            ids.push(
                app.create(
                    &format!("/dataset/{dataset}/record"),
                    json!({"text": text, "source": "faq.md", "meta": meta}),
                )
                .await,
            );
        }
        let (status, out) = app
            .post(
                "/dataset/faq/search",
                json!({"search": "How do I reset my password?"}),
            )
            .await;
        assert_eq!(status, 200, "{backend:?}: {out}");
        assert_eq!(out["id"], Value::String(dataset.clone()));
        let records = out["records"].as_array().expect("records");
        assert_eq!(
            records
                .iter()
                .filter_map(|r| r["id"].as_str())
                .collect::<Vec<_>>(),
            vec![ids[0].as_str(), ids[2].as_str()],
            "{backend:?}: {out}"
        );
        assert!(
            records[0]["score"].as_f64() > records[1]["score"].as_f64(),
            "{backend:?}"
        );
        assert_eq!(records[0]["source"], "faq.md");
        assert_eq!(records[0]["meta"], json!({"topic": "account", "rank": 2}));
        assert!(records[0]["text"]
            .as_str()
            .is_some_and(|t| t.starts_with("To reset")));

        let (_, filtered) = app
            .post(
                &format!("/dataset/{dataset}/search"),
                json!({"search": "password", "filter": {"rank": {"$gt": 3}}}),
            )
            .await;
        assert_eq!(
            filtered["records"].as_array().map(Vec::len),
            Some(1),
            "{backend:?}: {filtered}"
        );
        assert_eq!(filtered["records"][0]["id"], Value::String(ids[2].clone()));
        let (_, eq) = app
            .post(
                &format!("/dataset/{dataset}/search"),
                json!({"search": "password support invoices", "filter": {"topic": "account"}}),
            )
            .await;
        assert_eq!(
            eq["records"].as_array().map(Vec::len),
            Some(2),
            "{backend:?}: {eq}"
        );

        let (_, wide) = app
            .post(
                &format!("/dataset/{dataset}/search"),
                json!({"search": "password support invoices open"}),
            )
            .await;
        assert_eq!(
            wide["records"].as_array().map(Vec::len),
            Some(4),
            "{backend:?}: all four match"
        );
        app.post(
            &format!("/dataset/{dataset}/update"),
            json!({"searchMaxRecords": 2}),
        )
        .await;
        let (_, capped) = app
            .post(
                &format!("/dataset/{dataset}/search"),
                json!({"search": "password support invoices open"}),
            )
            .await;
        assert_eq!(
            capped["records"].as_array().map(Vec::len),
            Some(2),
            "{backend:?}: searchMaxRecords caps the answer"
        );
        let best = capped["records"][0]["score"].as_f64().expect("score");
        app.post(
            &format!("/dataset/{dataset}/update"),
            json!({"searchMaxRecords": null, "searchMinScore": best}),
        )
        .await;
        let (_, strong) = app
            .post(
                &format!("/dataset/{dataset}/search"),
                json!({"search": "password support invoices open"}),
            )
            .await;
        let strong = strong["records"].as_array().expect("records");
        assert!(
            !strong.is_empty() && strong.iter().all(|r| r["score"].as_f64() >= Some(best)),
            "{backend:?}: searchMinScore drops weaker records"
        );

        let (_, nothing) = app
            .post(
                &format!("/dataset/{dataset}/search"),
                json!({"search": "?!*"}),
            )
            .await;
        assert_eq!(
            nothing["records"],
            json!([]),
            "{backend:?}: a query without words finds nothing"
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn openapi_documents_the_custom_operations() {
    let app = spawn_app(crate::common::Backend::Sqlite).await;
    let resp = app
        .client
        .get(app.url("/v1/openapi.json"))
        .send()
        .await
        .expect("send");
    let spec: Value = resp.json().await.expect("json");
    for (path, method, id) in [
        ("/contact/ensure", "post", "ensureContact"),
        (
            "/contact/{contactId}/conversation/list",
            "get",
            "listContactConversations",
        ),
        ("/conversation/create", "post", "createConversation"),
        (
            "/conversation/{conversationId}/message/create",
            "post",
            "createConversationMessage",
        ),
        ("/blueprint/{blueprintId}/delete", "post", "deleteBlueprint"),
        (
            "/blueprint/{blueprintId}/resource/list",
            "get",
            "listBlueprintResources",
        ),
        ("/dataset/{datasetId}/search", "post", "searchDataset"),
    ] {
        assert_eq!(spec["paths"][path][method]["operationId"], id, "{path}");
    }
    assert!(
        spec["paths"]["/conversation/create"]["post"]["requestBody"]["content"]["application/json"]
            ["schema"]["properties"]["messages"]
            .is_object()
    );
    app.stop().await;
}
