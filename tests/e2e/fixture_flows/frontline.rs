//! `frontline-airtable` (Portuguese, built for Conversations): looks the conversation and the
//! customer up, greets a new customer by the name they give or a known one by theirs, and on
//! "agente" names the conversation and routes it. Its voice path (from `incomingCall`) cannot
//! be reached by a message; a messaging path led into it ends the execution, as documented.
use super::{ended_execution, update_flow, Calls, Person};
use crate::channel::Rig;
use crate::common::backends;
use crate::studio::{fixture, point, serve};
use axum::extract::{Form, Query};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

const WELCOME: &str =
    "Olá, bem vindo(a) ao atendimento Twilio! Antes de iniciarmos, nos informe seu nome por favor.";
const TRANSFER: &str = "Um momento enquanto te transfiro ao seu agente exclusivo.";
/// Numbers the customer API knows.
const KNOWN: [&str; 2] = ["+15551140002", "+15551140003"];

fn pleased(name: &str) -> String {
    format!("Muito prazer {name}! Para falar com um agente exclusivo, digite \"agente\".")
}

fn welcome_back(name: &str) -> String {
    format!("Bem vindo(a) de volta {name}! Para eu te transferir ao seu agente exclusivo, digite \"agente\".")
}

/// The author's serverless callbacks: conversation names (set by add-convo-name), a customer
/// directory, and routing.
async fn callbacks(calls: Calls) -> String {
    type Params = HashMap<String, String>;
    let names: Arc<Mutex<HashMap<String, String>>> = Arc::default();
    let (c1, c2, c3, c4) = (calls.clone(), calls.clone(), calls.clone(), calls);
    let (n1, n2) = (names.clone(), names);
    let router = Router::new()
        .route(
            "/get-convo-name",
            get(move |Query(q): Query<Params>| async move {
                c1.push("/get-convo-name", json!(q));
                let sid = q.get("conversationSid").cloned().unwrap_or_default();
                let name = n1.lock().expect("lock").get(&sid).cloned();
                Json(json!({ "name": name.unwrap_or_default() }))
            }),
        )
        .route(
            "/get-customer",
            get(move |Query(q): Query<Params>| async move {
                c2.push("/get-customer", json!(q));
                let known = q
                    .get("customerNumber")
                    .is_some_and(|n| KNOWN.contains(&n.as_str()));
                Json(if known {
                    json!({"customer": {"display_name": "Maria Souza", "worker": "agent@example.com"}})
                } else {
                    json!({ "customer": null })
                })
            }),
        )
        .route(
            "/add-convo-name",
            post(move |Form(f): Form<Params>| async move {
                c3.push("/add-convo-name", json!(f));
                let sid = f.get("conversationSid").cloned().unwrap_or_default();
                let number = f.get("customerNumber").cloned().unwrap_or_default();
                n2.lock().expect("lock").insert(sid, number);
                Json(json!({}))
            }),
        )
        .route(
            "/routing",
            post(move |Form(f): Form<Params>| async move {
                c4.push("/routing", json!(f));
                Json(json!({}))
            }),
        );
    serve(router).await
}

fn pointed(base: &str) -> Value {
    let urls: Vec<(&str, String)> = [
        "get-convo-name",
        "get-customer",
        "add-convo-name",
        "routing",
    ]
    .into_iter()
    .map(|name| (name, format!("{base}/{name}")))
    .collect();
    point(fixture("frontline-airtable"), &urls)
}

#[tokio::test]
async fn frontline_airtable_greets_new_and_known_customers_and_routes_them() {
    for backend in backends() {
        let calls = Calls::default();
        let base = callbacks(calls.clone()).await;
        let flow = pointed(&base);
        let rig = Rig::with(backend, json!({"model": "flow", "flow": flow}), json!({})).await;
        let warnings = update_flow(&rig, &flow).await.to_string();
        assert!(
            warnings.contains("gather_1") && warnings.contains("say_play_2"),
            "{backend:?}: the voice widgets are named at import: {warnings}"
        );

        // A new customer gives a name and asks for an agent.
        let new = Person::new(&rig, "+15551140001");
        assert_eq!(new.says("Oi").await, [WELCOME], "{backend:?}");
        assert_eq!(new.says("Ana").await, [pleased("Ana")]);
        assert_eq!(new.says("agente").await, [TRANSFER], "{backend:?}");
        let named = calls.to("/add-convo-name");
        assert_eq!(named.len(), 1);
        assert_eq!(named[0]["customerNumber"], new.number.as_str());
        let conversation = named[0]["conversationSid"].clone();
        assert!(conversation.as_str().is_some_and(|s| !s.is_empty()));
        assert_eq!(
            calls.to("/routing"),
            [json!({"customerNumber": new.number, "conversationSid": conversation})]
        );
        assert_eq!(
            calls.to("/get-convo-name")[0],
            json!({ "conversationSid": conversation })
        );
        // The conversation has a name now: the flow stays silent (its `noMatch` ends it).
        assert!(new.says("oi de novo").await.is_empty(), "{backend:?}");

        // The same on WhatsApp, the channel the flow was written for.
        rig.serve_whatsapp();
        let whatsapp = Person::new(&rig, "whatsapp:+5511987650001");
        assert_eq!(whatsapp.says("Oi").await, [WELCOME], "{backend:?}");
        assert_eq!(whatsapp.says("Bia").await, [pleased("Bia")]);
        assert_eq!(whatsapp.says("agente").await, [TRANSFER]);
        assert_eq!(
            calls.to("/add-convo-name")[1]["customerNumber"],
            "whatsapp:+5511987650001"
        );

        // A new customer who does not ask for an agent.
        let browsing = Person::new(&rig, "+15551140004");
        assert_eq!(browsing.says("oi").await, [WELCOME]);
        assert_eq!(browsing.says("João").await, [pleased("João")]);
        assert!(browsing.says("depois").await.is_empty());

        // Known customers are welcomed back by name; "Agente" matches too.
        let known = Person::new(&rig, KNOWN[0]);
        assert_eq!(
            known.says("Olá").await,
            [welcome_back("Maria Souza")],
            "{backend:?}"
        );
        assert_eq!(known.says("Agente").await, [TRANSFER]);
        let other = Person::new(&rig, KNOWN[1]);
        assert_eq!(other.says("Olá").await, [welcome_back("Maria Souza")]);
        assert!(other.says("obrigado").await.is_empty());
        assert_eq!(calls.to("/routing").len(), 3);

        // A messaging path led into the voice widgets: nothing is sent and the execution ends
        // with the reason, as the README says.
        let mut voice = flow.clone();
        for t in voice["states"][0]["transitions"]
            .as_array_mut()
            .expect("transitions")
        {
            if t["event"] == "incomingConversationMessage" {
                t["next"] = json!("set_variables_2");
            }
        }
        update_flow(&rig, &voice).await;
        let caller = Person::new(&rig, "+15551140005");
        assert!(caller.says("alô").await.is_empty(), "{backend:?}");
        let execution = ended_execution(&rig, &caller.number).await;
        assert!(
            execution["error"]
                .as_str()
                .is_some_and(|e| e.contains("gather-input-on-call")),
            "{backend:?}: {execution}"
        );
        rig.stop().await;
    }
}
