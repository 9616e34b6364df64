//! Twilio Conversations end to end: `setup` configures the emulator's service and Address
//! Configurations, people write through SMS and WhatsApp into auto-created conversations, and
//! the bot answers in the conversation as its identity. Also WhatsApp's 24-hour window.
use crate::channel::{Rig, NUMBER, WHATSAPP};
use crate::common::{backends, spawn_with, Backend, TestApp};
use crate::standins;
use chatwire::emulator::{
    self, ConversationInbound, EmulatorConfig, EmulatorHandle, DEFAULT_SERVICE_SID,
};
use serde_json::{json, Value};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(15);
const BOT: &str = "chatwire-bot";

struct ConvRig {
    app: TestApp,
    twilio: EmulatorHandle,
}

impl ConvRig {
    async fn start(backend: Backend, bot: Value, integration: Value, llm: Option<String>) -> Self {
        let twilio = emulator::spawn(EmulatorConfig::default())
            .await
            .expect("emulator");
        let url = twilio.url().to_owned();
        let app = spawn_with(backend, |c| {
            c.twilio_api_url = url.clone();
            c.twilio_conversations_url = url;
            if let Some(llm) = llm {
                c.llm_url = Some(llm);
            }
        })
        .await;
        let mut bot_body = json!({"name": "Conversations bot"});
        merge(&mut bot_body, bot);
        let bot = app.create("/bot", bot_body).await;
        let account = twilio.account();
        let mut body = json!({"name": "Conversations", "botId": bot, "accountSid": account.sid,
                              "authToken": account.auth_token, "serviceSid": DEFAULT_SERVICE_SID});
        merge(&mut body, integration);
        let integration = app.create("/integration/conversations", body).await;
        let (status, out) = app
            .post(
                &format!("/integration/conversations/{integration}/setup"),
                json!({"addresses": [NUMBER, WHATSAPP]}),
            )
            .await;
        assert_eq!(status, 200, "setup: {out}");
        assert_eq!(out["addresses"].as_array().map(Vec::len), Some(2), "{out}");
        Self { app, twilio }
    }

    /// `from` writes `body` to our number or WhatsApp sender `to`.
    async fn write(&self, from: &str, to: &str, body: &str) -> emulator::ConversationInboundResult {
        let out = self
            .twilio
            .state()
            .conversation_inbound(&ConversationInbound {
                from: from.into(),
                to: Some(to.into()),
                conversation_sid: None,
                body: body.into(),
                attributes: None,
            })
            .await
            .expect("inbound");
        assert!(
            out.webhook_statuses.iter().all(|s| *s == Some(200)),
            "{out:?}"
        );
        out
    }

    /// A WhatsApp participant joins conversation `sid` through Twilio's REST API, as an app
    /// would add one.
    async fn add_whatsapp_participant(&self, sid: &str, address: &str) {
        let account = self.twilio.account();
        let added = reqwest::Client::new()
            .post(format!(
                "{}/v1/Services/{DEFAULT_SERVICE_SID}/Conversations/{sid}/Participants",
                self.twilio.url()
            ))
            .basic_auth(&account.sid, Some(&account.auth_token))
            .form(&[
                ("MessagingBinding.Address", address),
                ("MessagingBinding.ProxyAddress", WHATSAPP),
            ])
            .send()
            .await
            .expect("participant");
        assert_eq!(added.status().as_u16(), 201);
    }

    fn conversation(&self, sid: &str) -> emulator::Conversation {
        self.twilio
            .state()
            .conversations()
            .into_iter()
            .find(|c| c.sid == sid)
            .expect("conversation")
    }

    /// The bot's messages in `sid`, once there are at least `n`.
    async fn bot_said(&self, sid: &str, n: usize) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let said: Vec<String> = self
                .conversation(sid)
                .messages
                .into_iter()
                .filter(|m| m.author == BOT)
                .map(|m| m.body)
                .collect();
            if said.len() >= n {
                return said;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "expected {n} bot messages in {sid}, got {said:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn stop(self) {
        self.app.stop().await;
        self.twilio.shutdown().await;
    }
}

fn merge(base: &mut Value, extra: Value) {
    if let (Some(b), Value::Object(e)) = (base.as_object_mut(), extra) {
        b.extend(e);
    }
}

const FLOW: &str = r#"{"description": "Conversations greeter", "initial_state": "Trigger", "flags": {"allow_concurrent_calls": true},
 "states": [
  {"name": "Trigger", "type": "trigger", "properties": {"offset": {"x": 0, "y": 0}}, "transitions": [
     {"event": "incomingMessage"}, {"event": "incomingCall"},
     {"event": "incomingConversationMessage", "next": "greet"}, {"event": "incomingRequest"}, {"event": "incomingParent"}]},
  {"name": "greet", "type": "send-message", "properties": {"offset": {"x": 0, "y": 200},
     "from": "{{flow.channel.address}}", "to": "{{contact.channel.address}}",
     "body": "Flow heard: {{trigger.conversation.Body}} in {{trigger.conversation.ConversationSid | slice: 0, 2}} from {{trigger.conversation.Author}} via {{trigger.conversation.Source}}"},
   "transitions": [{"event": "sent"}, {"event": "failed"}]}]}"#;

#[tokio::test]
async fn a_first_text_to_a_number_with_auto_creation_is_answered_by_echo_llm_and_studio_bots() {
    for backend in backends() {
        let llm = standins::llm().await;
        let flow: Value = serde_json::from_str(FLOW).expect("flow");
        for (bot, expected) in [
            (json!({"model": "echo"}), "hello there"),
            (json!({"model": "gpt-4o-mini"}), "Echo: hello there"),
            (
                json!({"model": "flow", "flow": flow}),
                "Flow heard: hello there in CH from +15551230001 via SMS",
            ),
        ] {
            let rig = ConvRig::start(backend, bot, json!({}), Some(llm.url.clone())).await;
            let first = rig.write("+15551230001", NUMBER, "hello there").await;
            assert!(first.created, "the first text auto-creates a conversation");
            assert_eq!(
                rig.bot_said(&first.conversation_sid, 1).await,
                [expected],
                "{backend:?}"
            );
            rig.stop().await;
        }
    }
}

#[tokio::test]
async fn a_second_participant_on_whatsapp_is_answered_in_the_same_conversation_and_the_bot_never_answers_itself(
) {
    for backend in backends() {
        let rig = ConvRig::start(backend, json!({"model": "echo"}), json!({}), None).await;
        let first = rig.write("+15551230002", NUMBER, "one").await;
        let sid = first.conversation_sid.clone();
        rig.bot_said(&sid, 1).await;
        // A WhatsApp participant joins the same conversation (Twilio's REST API, as an app would).
        rig.add_whatsapp_participant(&sid, "whatsapp:+15551230003")
            .await;
        let account = rig.twilio.account();
        let second = rig.write("whatsapp:+15551230003", WHATSAPP, "two").await;
        assert_eq!(
            second.conversation_sid, sid,
            "the WhatsApp message lands in the same conversation"
        );
        assert!(!second.created);
        assert_eq!(rig.bot_said(&sid, 2).await, ["one", "two"]);

        // The bot's own messages reach Chatwire as onMessageAdded too (Chatwire posts them with
        // webhooks enabled); none of them starts a turn, nor does a system message.
        let system = reqwest::Client::new()
            .post(format!(
                "{}/v1/Services/{DEFAULT_SERVICE_SID}/Conversations/{sid}/Messages",
                rig.twilio.url()
            ))
            .basic_auth(&account.sid, Some(&account.auth_token))
            .header("X-Twilio-Webhook-Enabled", "true")
            .form(&[("Body", "system notice")])
            .send()
            .await
            .expect("system message");
        assert_eq!(system.status().as_u16(), 201);
        tokio::time::sleep(Duration::from_millis(800)).await;
        let said = rig.bot_said(&sid, 2).await;
        assert_eq!(
            said,
            ["one", "two"],
            "no answers to the bot's own or system messages"
        );
        rig.stop().await;
    }
}

#[tokio::test]
async fn session_end_closes_the_conversation_and_the_next_text_starts_anew() {
    for backend in backends() {
        let rig = ConvRig::start(
            backend,
            json!({"model": "echo"}),
            json!({"sessionDuration": 1000}),
            None,
        )
        .await;
        let first = rig.write("+15551230004", NUMBER, "first").await;
        rig.bot_said(&first.conversation_sid, 1).await;
        let deadline = tokio::time::Instant::now() + WAIT;
        while rig.conversation(&first.conversation_sid).state != "closed" {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the conversation was never closed"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let next = rig.write("+15551230004", NUMBER, "again").await;
        assert!(next.created, "a new conversation is auto-created");
        assert_ne!(next.conversation_sid, first.conversation_sid);
        assert_eq!(rig.bot_said(&next.conversation_sid, 1).await, ["again"]);
        // Two Chatwire conversations, one per Twilio conversation.
        let (_, list) = rig.app.get("/conversation/list").await;
        assert_eq!(list["items"].as_array().map(Vec::len), Some(2), "{list}");
        rig.stop().await;
    }
}

#[tokio::test]
async fn a_conversation_closed_on_twilio_ends_the_session() {
    for backend in backends() {
        let rig = ConvRig::start(backend, json!({"model": "echo"}), json!({}), None).await;
        let first = rig.write("+15551230005", NUMBER, "hi").await;
        rig.bot_said(&first.conversation_sid, 1).await;
        rig.twilio
            .state()
            .close_conversation(&first.conversation_sid)
            .await
            .expect("close");
        let next = rig.write("+15551230005", NUMBER, "hi again").await;
        assert!(next.created);
        assert_eq!(rig.bot_said(&next.conversation_sid, 1).await, ["hi again"]);
        let (_, list) = rig.app.get("/conversation/list").await;
        assert_eq!(list["items"].as_array().map(Vec::len), Some(2), "{list}");
        rig.stop().await;
    }
}

#[tokio::test]
async fn a_flow_names_the_participant_who_wrote_and_their_channel() {
    let flow: Value = serde_json::from_str(FLOW).expect("flow");
    for backend in backends() {
        let rig = ConvRig::start(
            backend,
            json!({"model": "flow", "flow": flow}),
            json!({}),
            None,
        )
        .await;
        let first = rig.write("whatsapp:+15551230011", WHATSAPP, "hola").await;
        let said = rig.bot_said(&first.conversation_sid, 1).await;
        assert_eq!(
            said,
            ["Flow heard: hola in CH from whatsapp:+15551230011 via WHATSAPP"],
            "{backend:?}"
        );
        rig.stop().await;
    }
}

#[tokio::test]
async fn a_chat_only_conversation_is_answered_and_a_flow_sees_the_sdk_identity() {
    let flow: Value = serde_json::from_str(FLOW).expect("flow");
    for backend in backends() {
        let rig = ConvRig::start(
            backend,
            json!({"model": "flow", "flow": flow}),
            json!({}),
            None,
        )
        .await;
        // An app creates the conversation over REST; nobody in it has a phone.
        let account = rig.twilio.account();
        let created: Value = reqwest::Client::new()
            .post(format!(
                "{}/v1/Services/{DEFAULT_SERVICE_SID}/Conversations",
                rig.twilio.url()
            ))
            .basic_auth(&account.sid, Some(&account.auth_token))
            .form(&[("FriendlyName", "web visitor")])
            .send()
            .await
            .expect("conversation")
            .json()
            .await
            .expect("json");
        let sid = created["sid"].as_str().expect("sid").to_owned();
        let out = rig
            .twilio
            .state()
            .conversation_inbound(&ConversationInbound {
                from: "chat:dave".into(),
                to: None,
                conversation_sid: Some(sid.clone()),
                body: "hi".into(),
                attributes: None,
            })
            .await
            .expect("inbound");
        assert!(
            out.webhook_statuses.iter().all(|s| *s == Some(200)),
            "{out:?}"
        );
        assert_eq!(
            rig.bot_said(&sid, 1).await,
            ["Flow heard: hi in CH from dave via SDK"],
            "{backend:?}"
        );
        rig.stop().await;
    }
}

#[tokio::test]
async fn contacts_are_collected_from_every_participant_by_phone() {
    for backend in backends() {
        let rig = ConvRig::start(
            backend,
            json!({"model": "echo"}),
            json!({"contactCollection": true}),
            None,
        )
        .await;
        let first = rig.write("+15551230012", NUMBER, "one").await;
        let sid = first.conversation_sid.clone();
        rig.bot_said(&sid, 1).await;
        rig.add_whatsapp_participant(&sid, "whatsapp:+15551230013")
            .await;
        rig.write("whatsapp:+15551230013", WHATSAPP, "two").await;
        rig.bot_said(&sid, 2).await;
        // The first participant writing again on WhatsApp is the same contact (one number).
        let (_, contacts) = rig.app.get("/contact/list").await;
        let mut phones: Vec<String> = contacts["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["phone"].as_str().map(str::to_owned))
            .collect();
        phones.sort();
        assert_eq!(
            phones,
            ["+15551230012", "+15551230013"],
            "{backend:?}: {contacts}"
        );
        let first_contact = contacts["items"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["phone"] == "+15551230012")
            .and_then(|c| c["id"].as_str())
            .unwrap_or_default()
            .to_owned();
        let (_, list) = rig.app.get("/conversation/list").await;
        assert_eq!(
            list["items"][0]["contactId"], first_contact,
            "{backend:?}: the conversation belongs to who started it: {list}"
        );
        rig.stop().await;
    }
}

#[tokio::test]
async fn a_bot_that_ends_the_conversation_closes_it_on_twilio_after_its_goodbye() {
    for backend in backends() {
        let hook = standins::chatwire_bot().await;
        hook.script([standins::Answer::Json(json!({
            "messages": ["Goodbye!"],
            "actions": [{"type": "end_conversation"}]
        }))]);
        let rig = ConvRig::start(
            backend,
            json!({"model": "webhook", "webhook": {"url": hook.url}}),
            json!({}),
            None,
        )
        .await;
        let first = rig.write("+15551230014", NUMBER, "bye").await;
        let sid = first.conversation_sid.clone();
        let deadline = tokio::time::Instant::now() + WAIT;
        while rig.conversation(&sid).state != "closed" {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{backend:?}: the conversation was never closed"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(
            rig.bot_said(&sid, 1).await,
            ["Goodbye!"],
            "{backend:?}: the goodbye went out before the close"
        );
        let next = rig.write("+15551230014", NUMBER, "back again").await;
        assert!(
            next.created,
            "{backend:?}: a new conversation is auto-created"
        );
        assert_eq!(
            rig.bot_said(&next.conversation_sid, 1).await,
            ["Hook got: back again"]
        );
        let (_, list) = rig.app.get("/conversation/list").await;
        assert_eq!(list["items"].as_array().map(Vec::len), Some(2), "{list}");
        rig.stop().await;
    }
}

/// Moves every WhatsApp window of the app `hours` into the past.
async fn age_windows(app: &TestApp, hours: i64) {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&app.database_url).await.expect("db");
    sqlx::query(&format!(
        "UPDATE whatsapp_windows SET last_inbound_at = last_inbound_at - {}",
        hours * 3_600_000
    ))
    .execute(&pool)
    .await
    .expect("age");
    pool.close().await;
}

#[tokio::test]
async fn a_whatsapp_message_outside_the_window_is_refused_with_the_reason_or_sent_as_a_template() {
    for backend in backends() {
        let rig = Rig::start(backend).await;
        rig.serve_whatsapp();
        let me = "whatsapp:+15551230006";
        rig.whatsapp(me, "hi").await;
        rig.replies(1).await;
        // A day later: the emulator refuses free-form WhatsApp (63016), and Chatwire knows.
        let day = Duration::from_secs(25 * 3600);
        rig.twilio.state().age_whatsapp_window(
            WHATSAPP.trim_start_matches("whatsapp:"),
            me.trim_start_matches("whatsapp:"),
            day,
        );
        age_windows(&rig.app, 25).await;
        let initiate = |text: &'static str| {
            let app = &rig.app;
            let path = format!("/integration/twilio/{}/initiate", rig.integration);
            async move {
                app.post(
                    &path,
                    json!({"channel": "whatsapp", "to": me, "text": text, "from": WHATSAPP}),
                )
                .await
            }
        };
        // `initiate` is told before anything is queued; a late reply from the outbox (an agent's,
        // a flow's) is refused there with the same reason (unit tests in domain/reply_window).
        let (status, out) = initiate("late news").await;
        assert_eq!(status, 409, "{out}");
        assert!(
            out["message"]
                .as_str()
                .unwrap_or_default()
                .contains("63016"),
            "{out}"
        );
        assert_eq!(
            rig.twilio.sent_messages().len(),
            1,
            "nothing reached Twilio"
        );

        // With a template configured, the same message goes out as the template.
        let (status, out) = rig
            .app
            .post(
                &format!("/integration/twilio/{}/update", rig.integration),
                json!({"whatsappTemplate": {"contentSid": "HX0000000000000000000000000000001", "contentVariables": {"1": "{{body}}"}}}),
            )
            .await;
        assert_eq!(status, 200, "{out}");
        initiate("later news").await;
        let sent = rig.replies(2).await;
        assert!(
            sent[1].body.contains("HX0000000000000000000000000000001")
                && sent[1].body.contains("later news"),
            "{:?}",
            sent[1].body
        );
        rig.stop().await;
    }
}

#[tokio::test]
async fn a_template_given_with_initiate_or_flow_execute_carries_a_message_outside_the_window() {
    let flow = json!({"description": "notify", "initial_state": "Trigger", "flags": {"allow_concurrent_calls": true}, "states": [
        {"name": "Trigger", "type": "trigger", "transitions": [{"event": "incomingRequest", "next": "hello"}], "properties": {}},
        {"name": "hello", "type": "send-message", "properties": {"body": "Your order {{flow.data.order}} shipped"}, "transitions": [{"event": "sent"}, {"event": "failed"}]}]});
    for backend in backends() {
        let rig = Rig::with(backend, json!({"model": "flow", "flow": flow}), json!({})).await;
        rig.serve_whatsapp();
        let me = "whatsapp:+15551230016";
        let initiate = format!("/integration/twilio/{}/initiate", rig.integration);
        // Nobody wrote yet: no window. A bad template is refused before anything is queued.
        for (bad, why) in [
            (json!({"contentSid": "HX1"}), "Content SID"),
            (
                json!({"contentSid": "HX0123456789abcdef0123456789abcdef", "contentVariables": "{oops"}),
                "contentVariables",
            ),
            (json!({"contentVariables": {"1": "x"}}), "needs"),
        ] {
            let mut body =
                json!({"channel": "whatsapp", "to": me, "text": "hello", "from": WHATSAPP});
            merge(&mut body, bad);
            let (status, out) = rig.app.post(&initiate, body).await;
            assert_eq!(status, 400, "{backend:?}: {out}");
            assert!(
                out["message"].as_str().unwrap_or_default().contains(why),
                "{out}"
            );
        }
        let (status, out) = rig
            .app
            .post(
                &initiate,
                json!({"channel": "whatsapp", "to": me, "text": "Hello Ana", "from": WHATSAPP,
                       "contentSid": "HX0123456789abcdef0123456789abcdef",
                       "contentVariables": "{\"1\": \"{{body}}\"}"}),
            )
            .await;
        assert_eq!(status, 200, "{backend:?}: {out}");
        let sent = rig.replies(1).await;
        assert!(
            sent[0].body.contains("HX0123456789abcdef0123456789abcdef")
                && sent[0].body.contains("Hello Ana"),
            "{backend:?}: {:?}",
            sent[0].body
        );
        let (status, out) = rig
            .app
            .post(
                &format!("/bot/{}/flow/execute", rig.bot),
                json!({"to": "whatsapp:+15551230017", "from": WHATSAPP, "data": {"order": "A-7"},
                       "contentSid": "HX00000000000000000000000000000abc",
                       "contentVariables": {"1": "A-7"}}),
            )
            .await;
        assert_eq!(status, 200, "{backend:?}: {out}");
        let sent = rig.replies(2).await;
        assert!(
            sent[1].body.contains("HX00000000000000000000000000000abc")
                && sent[1].body.contains("A-7"),
            "{backend:?}: {:?}",
            sent[1].body
        );
        rig.stop().await;
    }
}

#[tokio::test]
async fn a_person_on_conversations_is_handed_to_an_agent_who_answers_in_the_conversation() {
    for backend in backends() {
        let rig = ConvRig::start(backend, json!({"model": "echo"}), json!({}), None).await;
        let (_, integrations) = rig.app.get("/integration/conversations/list").await;
        let integration = integrations["items"][0]["id"].clone();
        let agent = rig
            .app
            .create(
                "/agent",
                json!({"email": "ana@example.com", "name": "Ana", "password": "correct horse battery",
                       "status": "online", "integrationIds": [integration]}),
            )
            .await;
        let first = rig.write("+15551230090", NUMBER, "agent").await;
        let sid = first.conversation_sid.clone();
        assert_eq!(
            rig.bot_said(&sid, 1).await,
            ["I will try to connect you with an agent. Please wait."]
        );
        let (_, queued) = rig.app.get("/handoff/list?state=queued").await;
        let handoff = queued["items"][0]["id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert_eq!(
            queued["items"][0]["person"],
            format!("chat:{sid}"),
            "{queued}"
        );
        let (status, out) = rig
            .app
            .post(
                &format!("/handoff/{handoff}/assign"),
                json!({"agentId": agent}),
            )
            .await;
        assert_eq!(status, 200, "{out}");
        let (status, out) = rig
            .app
            .post(
                &format!("/handoff/{handoff}/send"),
                json!({"agentId": agent, "text": "Ana here."}),
            )
            .await;
        assert_eq!(status, 200, "{out}");
        let said = rig.bot_said(&sid, 3).await;
        assert_eq!(
            said[1..],
            ["Agent Ana has joined the conversation.", "Ana here."]
        );
        // The person's next message is the agent's, not the bot's.
        rig.write("+15551230090", NUMBER, "thanks Ana").await;
        tokio::time::sleep(Duration::from_millis(800)).await;
        assert_eq!(
            rig.bot_said(&sid, 3).await.len(),
            3,
            "no bot answer while with an agent"
        );
        let (status, _) = rig
            .app
            .post(
                &format!("/handoff/{handoff}/close"),
                json!({"agentId": agent}),
            )
            .await;
        assert_eq!(status, 200);
        assert_eq!(rig.bot_said(&sid, 4).await[3], "Chat closed");
        rig.stop().await;
    }
}
