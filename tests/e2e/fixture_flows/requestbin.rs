//! `requestbin-minimal`: started through the API (`incomingRequest`), it asks for a name, posts
//! it with the campaign data to a callback, and acknowledges whether the callback worked or not.
use super::{Calls, Person};
use crate::channel::Rig;
use crate::common::backends;
use crate::studio::{fixture, point, serve};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};

const ASK: &str = "Hi, how may I address you?";

/// The author's callback: records what it was sent, and is down for anyone called Alan.
async fn callback(calls: Calls) -> String {
    serve(Router::new().route(
        "/callback",
        post(move |Json(body): Json<Value>| {
            let calls = calls.clone();
            async move {
                calls.push("/callback", body.clone());
                if body["inbound"]["inboundText"] == "Alan" {
                    (StatusCode::SERVICE_UNAVAILABLE, "unavailable").into_response()
                } else {
                    Json(json!({"message": "noted"})).into_response()
                }
            }
        }),
    ))
    .await
}

#[tokio::test]
async fn requestbin_minimal_acknowledges_with_or_without_its_callback() {
    for backend in backends() {
        let calls = Calls::default();
        let base = callback(calls.clone()).await;
        let flow = point(
            fixture("requestbin-minimal"),
            &[("callback", format!("{base}/callback"))],
        );
        let rig = Rig::with(backend, json!({"model": "flow", "flow": flow}), json!({})).await;
        // Its trigger starts nothing on an incoming message: a text out of the blue gets nothing.
        let stranger = Person::new(&rig, "+15551120009");
        assert!(stranger.says("hello?").await.is_empty(), "{backend:?}");

        for (number, name, answer) in [
            ("+15551120001", "Grace", "noted"),
            ("+15551120002", "Alan", ""),
        ] {
            let person = Person::new(&rig, number);
            let (status, out) = rig
                .app
                .post(
                    &format!("/bot/{}/flow/execute", rig.bot),
                    json!({"to": number, "data": {"campaignname": "spring", "samplegiven": "yes", "campaignid": "C-7"}}),
                )
                .await;
            assert_eq!(status, 200, "{out}");
            assert_eq!(person.receives(1).await, [ASK], "{backend:?}");
            assert_eq!(
                person.says(name).await,
                [format!(
                    "Pleasure to meet you, {name}. HTTP response from callback was: \"{answer}\""
                )],
                "{backend:?}: the failed callback leads to the same acknowledgement"
            );
            let inbound_sid = person.last_sid();
            assert!(
                person.says("thanks").await.is_empty(),
                "{backend:?}: the flow has ended"
            );
            let posted = calls.to("/callback");
            let posted = posted.last().expect("the callback was called");
            assert_eq!(posted["inbound"]["inboundText"], name);
            assert_eq!(posted["inbound"]["inboundSID"], inbound_sid.as_str());
            assert_eq!(posted["inbound"]["mobilenumber"], number);
            assert_eq!(posted["inbound"]["campaignName"], "spring");
            assert_eq!(posted["inbound"]["campaignId"], "C-7");
            assert_eq!(posted["outbound"]["outboundText"], ASK);
            assert_eq!(posted["outbound"]["mobilenumber"], number);
            assert!(
                posted["outbound"]["outboundSID"]
                    .as_str()
                    .is_some_and(|s| s.starts_with("SM") && s.len() == 34),
                "{posted}"
            );
        }
        assert_eq!(calls.to("/callback").len(), 2);
        rig.stop().await;
    }
}
