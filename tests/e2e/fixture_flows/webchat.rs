//! `webchat-send-to-flex` (built for Conversations): a short intake (reason, new or existing,
//! names, date of birth) that ends in a thank-you and a hand-off to a human, also when the
//! person picks something unknown or stops answering.
use super::{ended_execution, update_flow, with_property, Person};
use crate::channel::Rig;
use crate::common::backends;
use crate::studio::fixture;
use serde_json::json;

const HELLO: &str = "Hello! In order for us to assist you today, please answer a few questions.";
const REASON: &str = "Please select a reason for your visit today from the following options:";
const NEW_OR_EXISTING: &str = "Are you a new or existing patient?";
const FIRST_NAME: &str = "Please enter your first name.";
const LAST_NAME: &str = "Please enter your last name.";
const BIRTH: &str = "Please enter your date of birth (YYYY-mm-dd).";
const THANKS: &str = "Thank you! Please hold on for just a few moments while I connect you with someone who can help.";
/// The hand-off's answer when no agent is online (see `tests/e2e/handoff.rs`).
const HANDED: [&str; 3] = [
    THANKS,
    "No agents available",
    "Write your message and an agent will answer you here later, or reply NO to go back to the chatbot.",
];

/// Answers `answers` in turn after the greeting, checking each question.
async fn intake(person: &Person<'_>, answers: &[&str]) {
    let questions = [NEW_OR_EXISTING, FIRST_NAME, LAST_NAME, BIRTH];
    assert_eq!(person.says("hi").await, [HELLO, REASON]);
    for (answer, question) in answers.iter().zip(questions) {
        assert_eq!(person.says(answer).await, [question], "after {answer:?}");
    }
}

#[tokio::test]
async fn webchat_send_to_flex_hands_off_after_each_intake_path() {
    for backend in backends() {
        let flow = fixture("webchat-send-to-flex");
        let rig = Rig::with(backend, json!({"model": "flow", "flow": flow}), json!({})).await;

        // The whole intake, then the hand-off with what was collected.
        let full = Person::new(&rig, "+15551160001");
        intake(&full, &["Parking", "new", "Ana", "Lima"]).await;
        assert_eq!(full.says("1990-01-01").await, HANDED, "{backend:?}");
        let execution = ended_execution(&rig, &full.number).await;
        let handed = &execution["context"]["widgets"]["send_to_flex_agent"]["attributes"];
        assert_eq!(handed["name"], "Ana Lima", "{backend:?}: {execution}");
        assert_eq!(handed["dob"], "1990-01-01");
        assert_eq!(execution["error"], json!(null));

        // A reason that is not offered, and an answer that is neither new nor existing.
        let other = Person::new(&rig, "+15551160002");
        intake(&other, &[]).await;
        assert_eq!(other.says("Billing").await, HANDED, "{backend:?}");
        let unsure = Person::new(&rig, "+15551160003");
        intake(&unsure, &["hours"]).await;
        assert_eq!(unsure.says("not sure").await, HANDED, "{backend:?}");

        // Nobody answers: each wait's timeout, shortened to a second for its own run.
        let timeouts = [
            ("selection_offering", 0, true),
            ("return_customer_offering", 1, true),
            ("enter_firstname", 2, false),
            ("enter_lastname", 3, true),
            ("enter_dob", 4, true),
        ];
        for (i, (widget, answered, thanked)) in timeouts.into_iter().enumerate() {
            update_flow(
                &rig,
                &with_property(flow.clone(), widget, "timeout", json!("1")),
            )
            .await;
            let silent = Person::new(&rig, &format!("+1555116010{i}"));
            intake(
                &silent,
                &["Consultation", "Existing", "Ana", "Lima"][..answered],
            )
            .await;
            if thanked {
                assert_eq!(silent.receives(3).await, HANDED, "{backend:?}: {widget}");
            } else {
                // The first name's timeout leads nowhere: the execution ends quietly and the
                // next text starts the intake again.
                let execution = ended_execution(&rig, &silent.number).await;
                assert_eq!(execution["error"], json!(null), "{execution}");
                assert_eq!(silent.says("hello").await, [HELLO, REASON], "{backend:?}");
            }
        }
        rig.stop().await;
    }
}
