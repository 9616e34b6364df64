//! Every messaging branch of every fixture flow in `tests/fixtures/studio/` (the flows of
//! `shared/fixtures/studio/`, exported from the Twilio console by other people), run over the
//! Twilio emulator on each backend, asserting the texts each person receives.
//!
//! The flows are imported unchanged except where they name the outside world: the URLs of
//! their HTTP and Function widgets (and a flow variable holding one) point at local stand-ins
//! that answer as the authors' Functions and APIs would and record what they were sent. Waits
//! of 30 minutes to an hour cannot pass in a test, so a timeout branch is run after a bot
//! update that shortens that one widget's `timeout` to a second; executions already waiting
//! keep the deadline they were given.
//!
//! Branches no message can reach, named where they would be: `deliveryFailure` (Chatwire takes
//! it when a body does not render; every fixture body renders), the voice paths from
//! `incomingCall` (`frontline.rs` shows what happens if a messaging path reaches one), and
//! failure transitions that end the execution without a message. The seed flow's three
//! answers are in `studio.rs`.
mod frontline;
mod patient;
mod pride;
mod requestbin;
mod webchat;

use crate::channel::Rig;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long a test waits for something that should happen within moments.
const WAIT: Duration = Duration::from_secs(20);

/// One person texting the flow's number, or its WhatsApp sender when `number` is a
/// `whatsapp:` address (see [`Rig::serve_whatsapp`]).
pub struct Person<'r> {
    rig: &'r Rig,
    pub number: String,
    /// Texts to this person seen so far.
    seen: Mutex<usize>,
    /// The Twilio SID of the person's latest text.
    last_sid: Mutex<String>,
}

impl<'r> Person<'r> {
    pub fn new(rig: &'r Rig, number: &str) -> Self {
        Self {
            rig,
            number: number.to_owned(),
            seen: Mutex::new(0),
            last_sid: Mutex::default(),
        }
    }

    /// Texts `body` and returns what the person got back for it: the turn that answered it is
    /// waited for in the conversation (the person's message and the bot's replies are written
    /// in one transaction), then its replies are waited for at Twilio. An empty list means the
    /// flow answered nothing, not that the test stopped waiting.
    pub async fn says(&self, body: &str) -> Vec<String> {
        let (sid, status) = if self.number.starts_with("whatsapp:") {
            self.rig.whatsapp(&self.number, body).await
        } else {
            self.rig.text(&self.number, body).await
        };
        assert_eq!(status, Some(200), "webhook for {body:?}");
        sid.clone_into(&mut self.last_sid.lock().expect("lock"));
        let replies = self.turn_replies(&sid).await;
        self.receives(replies).await
    }

    /// The Twilio SID of the person's latest text.
    pub fn last_sid(&self) -> String {
        self.last_sid.lock().expect("lock").clone()
    }

    /// Waits for the next `n` texts Twilio sends this person and returns them.
    pub async fn receives(&self, n: usize) -> Vec<String> {
        let seen = *self.seen.lock().expect("lock");
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let mine: Vec<String> = self
                .rig
                .twilio
                .sent_messages()
                .into_iter()
                .filter(|m| m.to == self.number)
                .map(|m| m.body)
                .collect();
            if mine.len() >= seen + n {
                *self.seen.lock().expect("lock") = seen + n;
                return mine[seen..seen + n].to_vec();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{}: waited for {n} more texts after {seen}, have {mine:?}",
                self.number
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// How many bot messages the turn that took the inbound message `sid` wrote.
    async fn turn_replies(&self, sid: &str) -> usize {
        let app = &self.rig.app;
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let (_, list) = app
                .get(&format!("/conversation/list?botId={}", self.rig.bot))
                .await;
            for conversation in list["items"].as_array().into_iter().flatten() {
                let id = conversation["id"].as_str().unwrap_or_default();
                let (_, messages) = app.get(&format!("/conversation/{id}/message/list")).await;
                let messages = messages["items"].as_array().cloned().unwrap_or_default();
                if let Some(at) = messages
                    .iter()
                    .position(|m| m["type"] == "user" && m["meta"].to_string().contains(sid))
                {
                    return messages[at + 1..]
                        .iter()
                        .take_while(|m| m["type"] == "bot")
                        .count();
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the turn for {sid} was never recorded"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

/// What local stand-ins were sent, by path: a form, a query string or a JSON body, as JSON.
#[derive(Clone, Default)]
pub struct Calls(Arc<Mutex<Vec<(String, Value)>>>);

impl Calls {
    pub fn push(&self, path: &str, params: Value) {
        self.0.lock().expect("lock").push((path.to_owned(), params));
    }

    /// What `path` received, oldest first.
    pub fn to(&self, path: &str) -> Vec<Value> {
        self.0
            .lock()
            .expect("lock")
            .iter()
            .filter(|(p, _)| p == path)
            .map(|(_, v)| v.clone())
            .collect()
    }
}

/// The flow with widget `state`'s property `key` set to `value`.
pub fn with_property(mut flow: Value, state: &str, key: &str, value: Value) -> Value {
    let states = flow["states"].as_array_mut().expect("states");
    let found = states
        .iter_mut()
        .find(|s| s["name"] == state)
        .unwrap_or_else(|| panic!("no state {state}"));
    found["properties"][key] = value;
    flow
}

/// Replaces the bot's flow (as a flow author editing it would) and returns the warnings.
pub async fn update_flow(rig: &Rig, flow: &Value) -> Value {
    let (status, out) = rig
        .app
        .post(&format!("/bot/{}/update", rig.bot), json!({ "flow": flow }))
        .await;
    assert_eq!(status, 200, "update: {out}");
    out.get("warnings").cloned().unwrap_or(Value::Null)
}

/// Waits until the contact's latest execution is no longer active, and returns it.
pub async fn ended_execution(rig: &Rig, contact: &str) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (_, list) = rig
            .app
            .get(&format!("/bot/{}/flow/execution/list", rig.bot))
            .await;
        let latest = list["items"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|e| e["contactAddress"] == contact)
            .cloned();
        if let Some(e) = latest.filter(|e| e["status"] != "active") {
            let id = e["id"].as_str().unwrap_or_default();
            let (_, full) = rig
                .app
                .get(&format!("/bot/{}/flow/execution/{id}/fetch", rig.bot))
                .await;
            return full;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{contact}'s execution never ended"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
