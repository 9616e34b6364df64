//! Human hand-off end to end: a person texts through the Twilio emulator, the conversation goes
//! to the agents' queue, an agent takes it, replies through the same channel and closes it,
//! and the bot answers again. Every trigger, the queue's texts, tickets, races and refusals.
use crate::channel::{Rig, NUMBER};
use crate::common::{backends, spawn_with, Backend};
use crate::standins::{self, tool_call, Answer};
use chatwire::emulator::{self, EmulatorConfig};
use serde_json::{json, Value};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(15);

/// Every body sent to `to` so far, once there are at least `n`.
async fn said_to(rig: &Rig, to: &str, n: usize) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let sent: Vec<String> = rig
            .twilio
            .sent_messages()
            .into_iter()
            .filter(|m| m.to == to)
            .map(|m| m.body)
            .collect();
        if sent.len() >= n || tokio::time::Instant::now() > deadline {
            assert!(
                sent.len() >= n,
                "expected {n} messages to {to}, got {sent:?}"
            );
            return sent;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// No more than `n` messages reach `to` within a short while.
async fn nothing_more_to(rig: &Rig, to: &str, n: usize) {
    tokio::time::sleep(Duration::from_millis(800)).await;
    let sent: Vec<String> = rig
        .twilio
        .sent_messages()
        .into_iter()
        .filter(|m| m.to == to)
        .map(|m| m.body)
        .collect();
    assert_eq!(sent.len(), n, "unexpected messages to {to}: {sent:?}");
}

/// An agent online for the rig's integration.
async fn agent(rig: &Rig, name: &str, status: &str) -> String {
    rig.app
        .create(
            "/agent",
            json!({"email": format!("{}@example.com", name.to_lowercase()), "name": name,
                   "password": "correct horse battery", "status": status,
                   "integrationIds": [rig.integration]}),
        )
        .await
}

/// The open hand-off of `person`, once there is one in `state`.
async fn handoff_of(rig: &Rig, person: &str, state: &str) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (status, list) = rig.app.get(&format!("/handoff/list?state={state}")).await;
        assert_eq!(status, 200, "{list}");
        if let Some(h) = list["items"]
            .as_array()
            .and_then(|items| items.iter().find(|h| h["person"] == person))
        {
            return h.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no {state} hand-off for {person}: {list}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn act(rig: &Rig, handoff: &Value, verb: &str, body: Value) -> (u16, Value) {
    rig.app
        .post(
            &format!(
                "/handoff/{}/{verb}",
                handoff["id"].as_str().unwrap_or_default()
            ),
            body,
        )
        .await
}

#[tokio::test]
async fn a_person_asking_for_a_human_is_queued_answered_by_an_agent_and_handed_back_on_close() {
    for backend in backends() {
        let rig = Rig::start(backend).await;
        let ana = agent(&rig, "Ana", "online").await;
        let me = "+15551230001";
        rig.text(me, "hello").await;
        assert_eq!(
            said_to(&rig, me, 1).await,
            ["hello"],
            "the echo bot answers"
        );
        rig.text(me, "Agent").await;
        let sent = said_to(&rig, me, 2).await;
        assert_eq!(
            sent[1],
            "I will try to connect you with an agent. Please wait."
        );
        let h = handoff_of(&rig, me, "queued").await;
        assert_eq!(h["reason"], "the person asked for an agent");

        // While queued, the person's messages are kept for the agent, never sent to the bot.
        rig.text(me, "are you there?").await;
        nothing_more_to(&rig, me, 2).await;

        let (status, out) = act(&rig, &h, "assign", json!({"agentId": ana})).await;
        assert_eq!(status, 200, "{out}");
        assert_eq!(
            said_to(&rig, me, 3).await[2],
            "Agent Ana has joined the conversation."
        );
        let (status, out) = act(
            &rig,
            &h,
            "send",
            json!({"agentId": ana, "text": "Hi, I'm Ana. How can I help?"}),
        )
        .await;
        assert_eq!(status, 200, "{out}");
        assert_eq!(
            said_to(&rig, me, 4).await[3],
            "Hi, I'm Ana. How can I help?"
        );
        rig.text(me, "my parcel is late").await;
        nothing_more_to(&rig, me, 4).await;

        // The agent sees the whole history, with the bot's, their own and the person's messages.
        let (status, detail) = rig
            .app
            .get(&format!(
                "/handoff/{}/fetch",
                h["id"].as_str().unwrap_or_default()
            ))
            .await;
        assert_eq!(status, 200, "{detail}");
        let texts: Vec<&str> = detail["messages"]
            .as_array()
            .map(|m| m.iter().filter_map(|m| m["text"].as_str()).collect())
            .unwrap_or_default();
        for expected in [
            "hello",
            "are you there?",
            "Hi, I'm Ana. How can I help?",
            "my parcel is late",
        ] {
            assert!(
                texts.contains(&expected),
                "{expected} missing from {texts:?}"
            );
        }
        let agent_message = detail["messages"]
            .as_array()
            .and_then(|m| m.iter().find(|m| m["meta"]["author"] == "agent"))
            .cloned()
            .unwrap_or_default();
        assert_eq!(agent_message["meta"]["agentName"], "Ana");
        assert!(
            agent_message["meta"]["delivery"]["messageSid"].is_string(),
            "the agent's message shows its delivery: {agent_message}"
        );

        let (status, out) = act(&rig, &h, "close", json!({"agentId": ana})).await;
        assert_eq!(status, 200, "{out}");
        assert_eq!(said_to(&rig, me, 5).await[4], "Chat closed");
        rig.text(me, "back to the bot").await;
        assert_eq!(said_to(&rig, me, 6).await[5], "back to the bot");

        // A closed conversation cannot be written to.
        let (status, out) = act(
            &rig,
            &h,
            "send",
            json!({"agentId": ana, "text": "one more"}),
        )
        .await;
        assert_eq!(status, 409, "{out}");
        assert!(
            out["message"]
                .as_str()
                .unwrap_or_default()
                .contains("closed"),
            "{out}"
        );
        rig.stop().await;
    }
}

#[tokio::test]
async fn two_agents_taking_the_same_conversation_at_once_one_wins_and_the_other_is_told_why() {
    for backend in backends() {
        let rig = Rig::start(backend).await;
        let ana = agent(&rig, "Ana", "online").await;
        let bob = agent(&rig, "Bob", "online").await;
        let me = "+15551230002";
        rig.text(me, "human").await;
        let h = handoff_of(&rig, me, "queued").await;
        let ((s1, o1), (s2, o2)) = tokio::join!(
            act(&rig, &h, "assign", json!({"agentId": ana})),
            act(&rig, &h, "assign", json!({"agentId": bob}))
        );
        let mut statuses = [s1, s2];
        statuses.sort();
        assert_eq!(statuses, [200, 409], "{o1} {o2}");
        let loser = if s1 == 409 { o1 } else { o2 };
        assert!(
            loser["message"]
                .as_str()
                .unwrap_or_default()
                .contains("already with"),
            "{loser}"
        );
        let sent = said_to(&rig, me, 2).await;
        nothing_more_to(&rig, me, 2).await;
        assert!(
            sent[1].ends_with("has joined the conversation."),
            "{sent:?}"
        );
        rig.stop().await;
    }
}

#[tokio::test]
async fn people_in_the_queue_hear_their_place_and_when_it_changes() {
    for backend in backends() {
        let rig = Rig::start(backend).await;
        let ana = agent(&rig, "Ana", "online").await;
        let people = ["+15551230011", "+15551230012", "+15551230013"];
        for p in people {
            rig.text(p, "agent").await;
            handoff_of(&rig, p, "queued").await;
        }
        assert_eq!(said_to(&rig, people[0], 1).await.len(), 1);
        assert_eq!(
            said_to(&rig, people[1], 2).await[1],
            "There is one person ahead of you."
        );
        assert_eq!(
            said_to(&rig, people[2], 2).await[1],
            "There are 2 people ahead of you."
        );
        let first = handoff_of(&rig, people[0], "queued").await;
        let (status, out) = act(&rig, &first, "assign", json!({"agentId": ana})).await;
        assert_eq!(status, 200, "{out}");
        assert_eq!(
            said_to(&rig, people[1], 3).await[2],
            "You are next in line."
        );
        assert_eq!(
            said_to(&rig, people[2], 3).await[2],
            "There is one person ahead of you."
        );
        rig.stop().await;
    }
}

#[tokio::test]
async fn with_nobody_online_the_person_leaves_a_message_that_an_agent_answers_later() {
    for backend in backends() {
        let rig = Rig::start(backend).await;
        let ana = agent(&rig, "Ana", "away").await;
        let me = "+15551230021";
        rig.text(me, "agent").await;
        let sent = said_to(&rig, me, 2).await;
        assert_eq!(sent[0], "No agents available");
        assert!(sent[1].starts_with("Write your message"), "{sent:?}");
        rig.text(me, "My order 42 never arrived").await;
        assert!(
            said_to(&rig, me, 3).await[2].starts_with("Thanks, your message has been passed on")
        );
        // The bot has the conversation back meanwhile.
        rig.text(me, "still there?").await;
        assert_eq!(said_to(&rig, me, 4).await[3], "still there?");

        let ticket = handoff_of(&rig, me, "ticket").await;
        assert_eq!(ticket["ticketText"], "My order 42 never arrived");
        let (status, out) = act(
            &rig,
            &ticket,
            "send",
            json!({"agentId": ana, "text": "It ships tomorrow."}),
        )
        .await;
        assert_eq!(status, 200, "{out}");
        let sent = said_to(&rig, me, 7).await;
        assert!(
            sent[4].starts_with("Hi, I'm the agent that you spoke to"),
            "{sent:?}"
        );
        assert_eq!(sent[5], "It ships tomorrow.");
        assert!(
            sent[6].starts_with("You can now continue chatting"),
            "{sent:?}"
        );
        let (status, out) = act(
            &rig,
            &ticket,
            "send",
            json!({"agentId": ana, "text": "again"}),
        )
        .await;
        assert_eq!(status, 409, "answered once: {out}");

        // Declining to leave a message gives the conversation straight back.
        let other = "+15551230022";
        rig.text(other, "agent").await;
        said_to(&rig, other, 2).await;
        // Not CANCEL: that is a carrier opt-out keyword on SMS.
        rig.text(other, "no").await;
        assert_eq!(
            said_to(&rig, other, 3).await[2],
            "What else can I do for you?"
        );
        rig.text(other, "ok").await;
        assert_eq!(said_to(&rig, other, 4).await[3], "ok");
        rig.stop().await;
    }
}

#[tokio::test]
async fn an_agent_cannot_write_to_a_person_who_opted_out() {
    for backend in backends() {
        let rig = Rig::start(backend).await;
        let ana = agent(&rig, "Ana", "online").await;
        let me = "+15551230031";
        rig.text(me, "agent").await;
        let h = handoff_of(&rig, me, "queued").await;
        let (status, _) = act(&rig, &h, "assign", json!({"agentId": ana})).await;
        assert_eq!(status, 200);
        said_to(&rig, me, 2).await;
        rig.text(me, "STOP").await;
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let (status, out) =
                act(&rig, &h, "send", json!({"agentId": ana, "text": "hello?"})).await;
            if status == 409 {
                assert!(
                    out["message"]
                        .as_str()
                        .unwrap_or_default()
                        .contains("opted out"),
                    "{out}"
                );
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "never refused: {status} {out}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        nothing_more_to(&rig, me, 2).await;
        rig.stop().await;
    }
}

#[tokio::test]
async fn a_studio_send_to_flex_hands_over_with_its_attributes_for_the_agent() {
    let flow = json!({"description": "to flex", "initial_state": "Trigger", "flags": {"allow_concurrent_calls": true}, "states": [
        {"name": "Trigger", "type": "trigger", "transitions": [{"event": "incomingMessage", "next": "ask"}], "properties": {}},
        {"name": "ask", "type": "send-and-wait-for-reply", "properties": {"body": "Your order number?", "timeout": "3600"},
         "transitions": [{"event": "incomingMessage", "next": "flex"}, {"event": "timeout"}, {"event": "deliveryFailure"}]},
        {"name": "flex", "type": "send-to-flex", "transitions": [{"event": "callComplete"}, {"event": "failedToEnqueue"}, {"event": "callFailure"}],
         "properties": {"workflow": "WW1", "channel": "TC1", "attributes": "{\"order\": \"{{widgets.ask.inbound.Body}}\"}"}}]});
    for backend in backends() {
        let rig = Rig::with(backend, json!({"model": "flow", "flow": flow}), json!({})).await;
        let ana = agent(&rig, "Ana", "online").await;
        let me = "+15551230041";
        rig.text(me, "hi").await;
        assert_eq!(said_to(&rig, me, 1).await[0], "Your order number?");
        rig.text(me, "A-77").await;
        let h = handoff_of(&rig, me, "queued").await;
        assert_eq!(h["attributes"]["order"], "A-77", "{h}");
        assert!(h["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("send-to-flex"));
        let (status, _) = act(&rig, &h, "assign", json!({"agentId": ana})).await;
        assert_eq!(status, 200);
        let sent = said_to(&rig, me, 3).await;
        assert_eq!(sent[2], "Agent Ana has joined the conversation.");
        rig.stop().await;
    }
}

#[tokio::test]
async fn a_faq_bot_hands_over_after_negative_ratings() {
    for backend in backends() {
        let rig = Rig::start(backend).await;
        let dataset = rig.app.create("/dataset", json!({"name": "FAQ"})).await;
        rig.app
            .create(
                &format!("/dataset/{dataset}/record"),
                json!({"text": "Q: What are your opening hours?\nA: 9am to 5pm."}),
            )
            .await;
        let (status, out) = rig
            .app
            .post(
                &format!("/bot/{}/update", rig.bot),
                json!({"model": "faq", "datasetId": dataset, "faq": {"negativeRatingsBeforeEscalation": 1}}),
            )
            .await;
        assert_eq!(status, 200, "{out}");
        let ana = agent(&rig, "Ana", "online").await;
        let me = "+15551230051";
        rig.text(me, "opening hours?").await;
        said_to(&rig, me, 2).await;
        rig.text(me, "2").await;
        assert_eq!(said_to(&rig, me, 3).await[2], "Please tell us why");
        rig.text(me, "it did not answer my question").await;
        let h = handoff_of(&rig, me, "queued").await;
        assert!(
            h["reason"]
                .as_str()
                .unwrap_or_default()
                .contains("negative"),
            "{h}"
        );
        let (status, _) = act(&rig, &h, "assign", json!({"agentId": ana})).await;
        assert_eq!(status, 200);
        let sent = said_to(&rig, me, 6).await;
        assert_eq!(sent[3], "Thanks!");
        assert_eq!(
            sent[4],
            "I will try to connect you with an agent. Please wait."
        );
        assert_eq!(sent[5], "Agent Ana has joined the conversation.");
        rig.stop().await;
    }
}

#[tokio::test]
async fn the_llm_tool_hands_over_and_after_closing_the_llm_is_told_what_the_agent_said() {
    for backend in backends() {
        let llm = standins::llm().await;
        llm.script([
            Answer::Json(tool_call(
                "handoff_to_human",
                json!({"reason": "refund request"}),
            )),
            // Asked once more what to say, the model answers in its own words.
            Answer::Json(standins::completion(
                "A person will help you with the refund.",
            )),
            Answer::Json(standins::completion("Glad it is sorted.")),
        ]);
        let twilio = emulator::spawn(EmulatorConfig::default())
            .await
            .expect("emulator");
        let (twilio_url, llm_url) = (twilio.url().to_owned(), llm.url.clone());
        let app = spawn_with(backend, move |c| {
            c.twilio_api_url = twilio_url;
            c.llm_url = Some(llm_url);
            c.llm_timeout_ms = 1_500;
        })
        .await;
        let bot = app
            .create(
                "/bot",
                json!({"name": "LLM", "model": "gpt-4o-mini", "backstory": "Be kind."}),
            )
            .await;
        let account = twilio.account();
        let integration = app
            .create("/integration/twilio", json!({"name": "SMS", "botId": bot, "accountSid": account.sid, "authToken": account.auth_token, "phoneNumber": NUMBER}))
            .await;
        let (status, _) = app
            .post(
                &format!("/integration/twilio/{integration}/setup"),
                json!({}),
            )
            .await;
        assert_eq!(status, 200);
        let rig = Rig {
            app,
            twilio,
            integration,
            bot,
        };
        let ana = agent(&rig, "Ana", "online").await;
        let me = "+15551230061";
        rig.text(me, "I want my money back").await;
        let h = handoff_of(&rig, me, "queued").await;
        assert_eq!(h["reason"], "refund request");
        act(&rig, &h, "assign", json!({"agentId": ana})).await;
        act(
            &rig,
            &h,
            "send",
            json!({"agentId": ana, "text": "Your refund of $20 is on its way."}),
        )
        .await;
        let (status, _) = act(&rig, &h, "close", json!({"agentId": ana})).await;
        assert_eq!(status, 200);
        // The model's own words, the agent joining, the agent, the closing text.
        let sent = said_to(&rig, me, 4).await;
        assert_eq!(sent[0], "A person will help you with the refund.");
        assert_eq!(sent[3], "Chat closed");
        rig.text(me, "thanks!").await;
        assert_eq!(said_to(&rig, me, 5).await[4], "Glad it is sorted.");
        let request = llm.last().body;
        let messages = request["messages"].as_array().cloned().unwrap_or_default();
        assert!(
            messages.iter().all(|m| m["role"] != "assistant"
                || !m["content"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("refund of $20")),
            "the agent's words are not the model's own: {messages:?}"
        );
        assert!(
            messages[0]["content"]
                .as_str()
                .unwrap_or_default()
                .contains("A human agent wrote to the person: Your refund of $20"),
            "{messages:?}"
        );
        rig.stop().await;
    }
}

#[tokio::test]
async fn the_queue_gives_the_conversation_back_to_the_bot_when_nobody_takes_it_in_time() {
    for backend in backends() {
        let twilio = emulator::spawn(EmulatorConfig::default())
            .await
            .expect("emulator");
        let url = twilio.url().to_owned();
        let app = spawn_with(backend, move |c| {
            c.twilio_api_url = url;
            c.queue_timeout_ms = 1_000;
        })
        .await;
        let bot = app
            .create("/bot", json!({"name": "Echo", "model": "echo"}))
            .await;
        let account = twilio.account();
        let integration = app
            .create("/integration/twilio", json!({"name": "SMS", "botId": bot, "accountSid": account.sid, "authToken": account.auth_token, "phoneNumber": NUMBER}))
            .await;
        app.post(
            &format!("/integration/twilio/{integration}/setup"),
            json!({}),
        )
        .await;
        let rig = Rig {
            app,
            twilio,
            integration,
            bot,
        };
        agent(&rig, "Ana", "online").await;
        let me = "+15551230071";
        rig.text(me, "agent").await;
        let sent = said_to(&rig, me, 2).await;
        assert!(
            sent[1].starts_with("Sorry, no agent could take your conversation"),
            "{sent:?}"
        );
        rig.text(me, "fine").await;
        assert_eq!(said_to(&rig, me, 3).await[2], "fine");
        rig.stop().await;
    }
}

/// A console client: its session cookie and CSRF token.
struct Console {
    http: reqwest::Client,
    base: String,
    cookie: String,
    csrf: String,
}

impl Console {
    async fn login(
        base: &str,
        email: &str,
        password: &str,
    ) -> Result<Self, (u16, reqwest::header::HeaderMap, Value)> {
        let http = reqwest::Client::new();
        let resp = http
            .post(format!("{base}/console/api/login"))
            .json(&json!({"email": email, "password": password}))
            .send()
            .await
            .expect("login");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if status != 200 {
            return Err((status, headers, body));
        }
        let set = headers
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert!(
            set.contains("HttpOnly") && set.contains("SameSite=Strict"),
            "{set}"
        );
        Ok(Console {
            http,
            base: base.to_owned(),
            cookie: set.split(';').next().unwrap_or_default().to_owned(),
            csrf: body["csrf"].as_str().unwrap_or_default().to_owned(),
        })
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let resp = self
            .http
            .get(format!("{}/console/api{path}", self.base))
            .header("cookie", &self.cookie)
            .send()
            .await
            .expect("get");
        (
            resp.status().as_u16(),
            resp.json().await.unwrap_or(Value::Null),
        )
    }

    async fn post(&self, path: &str, body: Value, csrf: bool) -> (u16, Value) {
        let mut req = self
            .http
            .post(format!("{}/console/api{path}", self.base))
            .header("cookie", &self.cookie)
            .json(&body);
        if csrf {
            req = req.header("x-csrf-token", &self.csrf);
        }
        let resp = req.send().await.expect("post");
        (
            resp.status().as_u16(),
            resp.json().await.unwrap_or(Value::Null),
        )
    }
}

#[tokio::test]
async fn the_console_signs_agents_in_checks_csrf_and_shows_only_their_integrations() {
    for backend in backends() {
        let rig = Rig::start(backend).await;
        agent(&rig, "Ana", "away").await;
        let base = rig.app.url("");
        let page = reqwest::get(format!("{base}/console")).await.expect("page");
        assert_eq!(page.status(), 200);
        assert!(page.headers()["content-security-policy"]
            .to_str()
            .unwrap_or_default()
            .contains("default-src 'self'"));
        assert!(page
            .text()
            .await
            .unwrap_or_default()
            .contains("/console/app.js"));

        let Err((status, _, body)) =
            Console::login(&base, "ana@example.com", "wrong password").await
        else {
            panic!("a wrong password signs in");
        };
        assert_eq!(status, 401, "{body}");
        let ana = Console::login(&base, "ANA@example.com", "correct horse battery")
            .await
            .expect("signs in");
        let (status, me) = ana.get("/me").await;
        assert_eq!(
            (status, me["agent"]["status"].as_str()),
            (200, Some("online")),
            "signing in is being online"
        );
        assert!(me["agent"].get("passwordHash").is_none() && !me.to_string().contains("argon2"));

        let person = "+15551230081";
        rig.text(person, "agent").await;
        let h = handoff_of(&rig, person, "queued").await;
        let id = h["id"].as_str().unwrap_or_default().to_owned();
        let (status, inbox) = ana.get("/inbox").await;
        assert_eq!(status, 200);
        assert_eq!(inbox["queue"][0]["person"], person, "{inbox}");

        let (status, out) = ana
            .post(&format!("/handoffs/{id}/take"), json!({}), false)
            .await;
        assert_eq!(status, 403, "no CSRF token, no take: {out}");
        let (status, out) = ana
            .post(&format!("/handoffs/{id}/take"), json!({}), true)
            .await;
        assert_eq!(status, 200, "{out}");
        let (status, out) = ana
            .post(
                &format!("/handoffs/{id}/reply"),
                json!({"text": "Hello from the console"}),
                true,
            )
            .await;
        assert_eq!(status, 200, "{out}");
        assert_eq!(said_to(&rig, person, 3).await[2], "Hello from the console");

        // An agent of another integration sees none of it.
        let other_integration = rig
            .app
            .create(
                "/integration/twilio",
                json!({"name": "Other", "botId": rig.bot, "phoneNumber": "+15005550009"}),
            )
            .await;
        rig.app
            .create("/agent", json!({"email": "bob@example.com", "name": "Bob", "password": "another password", "integrationIds": [other_integration]}))
            .await;
        let bob = Console::login(&base, "bob@example.com", "another password")
            .await
            .expect("bob");
        let (_, inbox) = bob.get("/inbox").await;
        assert_eq!(inbox["mine"].as_array().map(Vec::len), Some(0));
        assert_eq!(inbox["queue"].as_array().map(Vec::len), Some(0));
        let (status, _) = bob.get(&format!("/handoffs/{id}")).await;
        assert_eq!(status, 404);
        let (status, _) = bob
            .post(&format!("/handoffs/{id}/close"), json!({}), true)
            .await;
        assert_eq!(status, 404);

        let (status, _) = ana.post("/logout", json!({}), true).await;
        assert_eq!(status, 200);
        let (status, _) = ana.get("/inbox").await;
        assert_eq!(status, 401, "the session ended");
        rig.stop().await;
    }
}

#[tokio::test]
async fn repeated_wrong_passwords_are_slowed_down() {
    let rig = Rig::start(Backend::Sqlite).await;
    agent(&rig, "Ana", "away").await;
    let base = rig.app.url("");
    let mut last = 0;
    let mut retry_after = None;
    for _ in 0..8 {
        if let Err((status, headers, _)) =
            Console::login(&base, "ana@example.com", "guess guess").await
        {
            last = status;
            retry_after = headers
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
        }
    }
    assert_eq!(last, 429);
    assert!(retry_after
        .and_then(|s| s.parse::<u64>().ok())
        .is_some_and(|s| s >= 1));
    // Even the right password waits its turn.
    let Err((status, _, _)) =
        Console::login(&base, "ana@example.com", "correct horse battery").await
    else {
        panic!("signed in while throttled");
    };
    assert_eq!(status, 429);
    rig.stop().await;
}

#[tokio::test]
async fn agents_are_managed_by_api_with_clear_errors_and_no_password_returned() {
    let rig = Rig::start(Backend::Sqlite).await;
    let (status, out) = rig
        .app
        .post(
            "/agent/create",
            json!({"email": "x@example.com", "name": "X", "password": "short"}),
        )
        .await;
    assert_eq!(status, 400, "{out}");
    assert!(out["message"]
        .as_str()
        .unwrap_or_default()
        .contains("at least 8"));
    let (status, out) = rig.app.post("/agent/create", json!({"email": "x@example.com", "name": "X", "password": "long enough", "integrationIds": ["nope"]})).await;
    assert_eq!(status, 400, "{out}");
    let id = agent(&rig, "Ana", "away").await;
    let (status, out) = rig
        .app
        .post(
            "/agent/create",
            json!({"email": "ana@example.com", "name": "Ana 2", "password": "long enough"}),
        )
        .await;
    assert_eq!(status, 409, "{out}");
    let (status, out) = rig
        .app
        .post(
            &format!("/agent/{id}/update"),
            json!({"maxConversations": 0}),
        )
        .await;
    assert_eq!(status, 400, "{out}");
    let (status, out) = rig
        .app
        .post(
            &format!("/agent/{id}/update"),
            json!({"status": "online", "maxConversations": 2}),
        )
        .await;
    assert_eq!(status, 200, "{out}");
    let (_, list) = rig.app.get("/agent/list").await;
    assert_eq!(list["items"][0]["status"], "online");
    assert_eq!(list["items"][0]["maxConversations"], 2);
    assert!(
        !list.to_string().contains("argon2") && !list.to_string().contains("password"),
        "{list}"
    );
    let (status, _) = rig
        .app
        .post(&format!("/agent/{id}/delete"), json!({}))
        .await;
    assert_eq!(status, 200);
    let (status, _) = rig.app.get(&format!("/agent/{id}/fetch")).await;
    assert_eq!(status, 404);
    rig.stop().await;
}

#[tokio::test]
async fn a_silent_agent_loses_the_conversation_to_the_queue_first_in_line() {
    for backend in backends() {
        let twilio = emulator::spawn(EmulatorConfig::default())
            .await
            .expect("emulator");
        let url = twilio.url().to_owned();
        let app = spawn_with(backend, move |c| {
            c.twilio_api_url = url;
            c.agent_idle_timeout_ms = 1_000;
        })
        .await;
        let bot = app
            .create("/bot", json!({"name": "Echo", "model": "echo"}))
            .await;
        let account = twilio.account();
        let integration = app
            .create("/integration/twilio", json!({"name": "SMS", "botId": bot, "accountSid": account.sid, "authToken": account.auth_token, "phoneNumber": NUMBER}))
            .await;
        app.post(
            &format!("/integration/twilio/{integration}/setup"),
            json!({}),
        )
        .await;
        let rig = Rig {
            app,
            twilio,
            integration,
            bot,
        };
        let ana = agent(&rig, "Ana", "online").await;
        let me = "+15551230091";
        rig.text(me, "agent").await;
        let h = handoff_of(&rig, me, "queued").await;
        let (status, _) = act(&rig, &h, "assign", json!({"agentId": ana})).await;
        assert_eq!(status, 200);
        let sent = said_to(&rig, me, 3).await;
        assert!(
            sent[2].starts_with("Your agent had to step away"),
            "{sent:?}"
        );
        let back = handoff_of(&rig, me, "queued").await;
        assert_eq!(back["id"], h["id"]);
        assert_eq!(
            back["queuedAt"], h["queuedAt"],
            "it keeps its place in the queue"
        );
        assert!(back["agentId"].is_null());
        rig.stop().await;
    }
}

#[tokio::test]
async fn an_agent_can_take_a_conversation_over_from_the_bot() {
    for backend in backends() {
        let rig = Rig::start(backend).await;
        let ana = agent(&rig, "Ana", "online").await;
        let me = "+15551230101";
        rig.text(me, "hello").await;
        said_to(&rig, me, 1).await;
        let (_, conversations) = rig.app.get("/conversation/list").await;
        let conversation = conversations["items"][0]["id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let (status, out) = rig
            .app
            .post(
                &format!("/conversation/{conversation}/handoff"),
                json!({"agentId": ana, "reason": "VIP"}),
            )
            .await;
        assert_eq!(status, 200, "{out}");
        assert_eq!(
            said_to(&rig, me, 2).await[1],
            "Agent Ana has joined the conversation."
        );
        let h = handoff_of(&rig, me, "agent").await;
        assert_eq!(h["reason"], "VIP");
        rig.text(me, "oh, hi Ana").await;
        nothing_more_to(&rig, me, 2).await;
        let (status, out) = rig
            .app
            .post(&format!("/conversation/{conversation}/handoff"), json!({}))
            .await;
        assert_eq!(status, 409, "already with an agent: {out}");
        let (status, out) = rig.app.post("/conversation/nope/handoff", json!({})).await;
        assert_eq!(status, 404, "{out}");
        rig.stop().await;
    }
}
