//! `patient-appointment-management`: an EHR starts it through the API (`incomingRequest`)
//! with an appointment event; each event type saves the appointment through its Function and
//! texts the patient; reminders and bookings wait for CONFIRM APPT / CANCEL APPT and report the
//! answer to the EHR.
use super::{Calls, Person};
use crate::channel::Rig;
use crate::common::backends;
use crate::studio::{fixture, point, serve};
use axum::extract::{Form, Path};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};
use std::collections::HashMap;

const WHEN: &str = "Monday, July 1 at 2:00 PM";
const FROM: &str = "\n\n- From YOUR_HEALTH_SYSTEM_NAME";
const FUNCTIONS: [&str; 8] = [
    "get-datetime-parts",
    "save-remind",
    "save-booked",
    "save-canceled",
    "save-modified",
    "save-noshowed",
    "save-confirmed",
    "save-rescheduled",
];

/// The Functions (one route for all, by name) and the EHR's inbound endpoint.
async fn stand_ins(calls: Calls) -> String {
    let ehr = calls.clone();
    let router = Router::new()
        .route(
            "/fn/{name}",
            post(
                move |Path(name): Path<String>, Form(f): Form<HashMap<String, String>>| {
                    let calls = calls.clone();
                    async move {
                        calls.push(&name, json!(f));
                        if name == "get-datetime-parts" {
                            Json(json!({ "readable_datetime": WHEN }))
                        } else {
                            Json(json!({ "success": true }))
                        }
                    }
                },
            ),
        )
        .route(
            "/ehr",
            post(move |Json(body): Json<Value>| async move {
                ehr.push("/ehr", body);
                Json(json!({}))
            }),
        );
    serve(router).await
}

/// The fixture with its Functions and its `IE_ENDPOINT` variable pointed at the stand-ins.
fn pointed(base: &str) -> Value {
    let urls: Vec<(&str, String)> = FUNCTIONS
        .iter()
        .map(|name| (*name, format!("{base}/fn/{name}")))
        .collect();
    let mut flow = point(fixture("patient-appointment-management"), &urls);
    let globals = flow["states"]
        .as_array_mut()
        .expect("states")
        .iter_mut()
        .find(|s| s["name"] == "set_global_variables")
        .expect("set_global_variables");
    for v in globals["properties"]["variables"]
        .as_array_mut()
        .expect("variables")
    {
        if v["key"] == "IE_ENDPOINT" {
            v["value"] = json!(format!("{base}/ehr"));
        }
    }
    flow
}

fn data(event: &str) -> Value {
    json!({"event_type": event, "patient_first_name": "Ana", "provider_last_name": "Silva",
           "appointment_location": "Main St Clinic", "provider_callback_phone": "+15551239999",
           "appointment_datetime": "2024-07-01T14:00:00-04:00", "appointment_id": "A-1",
           "provider_id": "P-1", "patient_id": "PT-1"})
}

/// What each event texts the patient.
fn expected(event: &str) -> String {
    let body = match event {
        "OPTED-IN" => "Hello, Ana. You have opted in to receive appointment communication messages. You can opt out at any time by replying STOP to this message.".to_owned(),
        "OPTED-OUT" => "Hello, Ana. You have opted out of receiving appointment communication messages. You will no longer receive messages from this number.".to_owned(),
        "CANCELED" => format!("Hello, Ana. Your appointment with Dr. Silva for {WHEN} at Main St Clinic has been canceled.\n\nIf you would like to reschedule, please call us at +15551239999."),
        "MODIFIED" => format!("Hello, Ana. Your appointment with Dr. Silva has been modified. Your appointment is now scheduled for {WHEN} at Main St Clinic.\n\nIf you would like to make changes to your appointment details, please call us at +15551239999."),
        "NOSHOWED" => format!("Hello, Ana. You missed your appointment with Dr. Silva which was scheduled for {WHEN} at Main St Clinic.\n\nIf you would like to reschedule, please call us at +15551239999."),
        "CONFIRMED" => "Hello, Ana. Your appointment has been confirmed.".to_owned(),
        "RESCHEDULED" => format!("Hello, Ana. Your appointment with Dr. Silva is rescheduled for {WHEN} at Main St Clinic.\n\nIf you would like to make changes to your appointment details, please call us at +15551239999."),
        // The flow's own two spaces around the date are kept.
        "REMIND" => format!("Hello, Ana. This is a reminder that you have an appointment scheduled with Dr. Silva for  {WHEN}  at Main St Clinic.\n\nPlease respond to this message with CONFIRM APPT to confirm or CANCEL APPT to cancel your appointment.\n\nIf you would like to make changes to your appointment details, please call us at +15551239999."),
        "BOOKED" => format!("Hello, Ana. Your appointment with Dr. Silva is scheduled for {WHEN} at Main St Clinic.\n\nPlease respond to this message with CANCEL APPT to cancel your appointment.\n\nIf you would like to make changes to your appointment details, please call us at +15551239999."),
        other => panic!("no text for {other}"),
    };
    format!("{body}{FROM}")
}

/// Starts the flow towards `person` for `event`; returns the API's answer.
async fn start(rig: &Rig, person: &Person<'_>, event: &str) -> Value {
    let (status, out) = rig
        .app
        .post(
            &format!("/bot/{}/flow/execute", rig.bot),
            json!({"to": person.number, "data": data(event)}),
        )
        .await;
    assert_eq!(status, 200, "{event}: {out}");
    out
}

#[tokio::test]
async fn patient_appointment_management_texts_each_event_and_reports_replies() {
    for backend in backends() {
        let calls = Calls::default();
        let base = stand_ins(calls.clone()).await;
        let rig = Rig::with(
            backend,
            json!({"model": "flow", "flow": pointed(&base)}),
            json!({}),
        )
        .await;
        let one_way = [
            "OPTED-IN",
            "OPTED-OUT",
            "CANCELED",
            "MODIFIED",
            "NOSHOWED",
            "CONFIRMED",
            "RESCHEDULED",
        ];
        for (i, event) in one_way.into_iter().enumerate() {
            let patient = Person::new(&rig, &format!("+1555115000{i}"));
            let out = start(&rig, &patient, event).await;
            assert_eq!(out["status"], "ended", "{backend:?} {event}: {out}");
            assert_eq!(
                patient.receives(1).await,
                [expected(event)],
                "{backend:?} {event}"
            );
        }
        // Each one-way event but the opt-ins saved the appointment through its own Function.
        for name in &FUNCTIONS[3..] {
            let saved = calls.to(name);
            assert_eq!(saved.len(), 1, "{name} saved the appointment once");
            assert!(saved[0]["appointment"]
                .as_str()
                .is_some_and(|a| a.contains("A-1")));
        }
        assert_eq!(
            calls.to("get-datetime-parts")[0]["datetime_iso"],
            "2024-07-01T14:00:00-04:00"
        );

        // Reminders wait for an answer; each answer the flow knows is reported to the EHR.
        for (i, answer, reported) in [
            (1, "CONFIRM APPT", Some("Confirm")),
            (2, "CANCEL APPT", Some("Cancel")),
            (3, "maybe", None),
        ] {
            let patient = Person::new(&rig, &format!("+1555115010{i}"));
            let out = start(&rig, &patient, "REMIND").await;
            assert_eq!(out["status"], "active", "{backend:?}: waits for the answer");
            assert_eq!(patient.receives(1).await, [expected("REMIND")]);
            let before = calls.to("/ehr").len();
            assert!(patient.says(answer).await.is_empty(), "{backend:?}");
            let ehr = calls.to("/ehr");
            match reported {
                Some(event) => {
                    assert_eq!(ehr.len(), before + 1, "{backend:?} {answer}");
                    let last = &ehr[before];
                    assert_eq!(last["event_type"], event);
                    assert_eq!(last["appointment_id"], "A-1");
                    assert_eq!(last["patient_id"], "PT-1");
                }
                None => assert_eq!(ehr.len(), before, "{backend:?}: nothing to report"),
            }
        }

        // A booking offers only CANCEL APPT (which the flow reports as "Confirm", as written).
        for (i, answer, reported) in [(1, "CANCEL APPT", true), (2, "see you", false)] {
            let patient = Person::new(&rig, &format!("+1555115020{i}"));
            start(&rig, &patient, "BOOKED").await;
            assert_eq!(patient.receives(1).await, [expected("BOOKED")]);
            let before = calls.to("/ehr").len();
            assert!(patient.says(answer).await.is_empty());
            assert_eq!(calls.to("/ehr").len(), before + usize::from(reported));
        }

        assert_eq!(calls.to("save-remind").len(), 3);
        assert_eq!(calls.to("save-booked").len(), 2);

        // An event the flow does not know ends it without a text.
        let stranger = Person::new(&rig, "+15551150300");
        let out = start(&rig, &stranger, "ARCHIVED").await;
        assert_eq!(out["status"], "ended");
        assert_eq!(out["messages"], 0, "{backend:?}: {out}");
        // And a patient's own text starts nothing (the flow answers the API only).
        assert!(stranger.says("hello").await.is_empty());
        rig.stop().await;
    }
}
