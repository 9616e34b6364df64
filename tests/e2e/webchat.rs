//! The web chat widget's channel end to end: a visitor's session, messages accepted by the same
//! pipeline as SMS, the live view, origins, tokens, rate limits, and hand-off to agents.
use crate::common::{backends, spawn_app, Backend, TestApp};
use serde_json::{json, Value};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(15);

struct Widget {
    app: TestApp,
    id: String,
    http: reqwest::Client,
}

impl Widget {
    async fn start(backend: Backend, settings: Value) -> Self {
        let echo = json!({"name": "Echo", "model": "echo"});
        Self::with(spawn_app(backend).await, echo, settings).await
    }

    async fn with(app: TestApp, bot: Value, settings: Value) -> Self {
        let bot = app.create("/bot", bot).await;
        let mut body = json!({"name": "Site chat", "botId": bot, "title": "Ask us", "initial": "Hi! How can I help?"});
        if let (Some(b), Some(s)) = (body.as_object_mut(), settings.as_object()) {
            b.extend(s.clone());
        }
        let id = app.create("/integration/widget", body).await;
        Self {
            app,
            id,
            http: reqwest::Client::new(),
        }
    }

    fn url(&self, path: &str) -> String {
        self.app.url(&format!("/widget/{}{path}", self.id))
    }

    async fn session(&self, token: Option<&str>) -> (String, String) {
        let out: Value = self
            .http
            .post(self.url("/session"))
            .json(&json!({"token": token}))
            .send()
            .await
            .expect("session")
            .json()
            .await
            .expect("json");
        (
            out["token"].as_str().unwrap_or_default().to_owned(),
            out["visitor"].as_str().unwrap_or_default().to_owned(),
        )
    }

    async fn post(&self, token: &str, text: &str, id: &str) -> (u16, Value) {
        let resp = self
            .http
            .post(self.url("/messages"))
            .bearer_auth(token)
            .json(&json!({"text": text, "id": id}))
            .send()
            .await
            .expect("post");
        (
            resp.status().as_u16(),
            resp.json().await.unwrap_or(Value::Null),
        )
    }

    /// Reads the visitor's live view until `ok` holds; returns that view.
    async fn view_until(&self, token: &str, ok: impl Fn(&Value) -> bool) -> Value {
        let resp = self
            .http
            .get(self.url("/events"))
            .query(&[("token", token)])
            .send()
            .await
            .expect("events");
        assert_eq!(resp.status(), 200);
        let mut resp = resp;
        let mut buffer = String::new();
        let mut last = Value::Null;
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let chunk = tokio::time::timeout_at(deadline, resp.chunk())
                .await
                .unwrap_or_else(|_| panic!("view never matched; last: {last}"))
                .expect("chunk")
                .expect("stream open");
            buffer.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buffer.find("\n\n") {
                let event: String = buffer.drain(..end + 2).collect();
                if let Some(data) = event.lines().find_map(|l| l.strip_prefix("data: ")) {
                    last = serde_json::from_str(data).unwrap_or(Value::Null);
                    if ok(&last) {
                        return last;
                    }
                }
            }
        }
    }
}

fn texts(view: &Value) -> Vec<(String, String)> {
    view["messages"]
        .as_array()
        .map(|m| {
            m.iter()
                .map(|m| {
                    (
                        m["author"].as_str().unwrap_or_default().to_owned(),
                        m["text"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn a_visitor_chats_with_the_bot_and_finds_the_conversation_again_with_their_token() {
    for backend in backends() {
        let w = Widget::start(backend, json!({})).await;
        let config: Value = w
            .http
            .get(w.url("/config"))
            .send()
            .await
            .expect("config")
            .json()
            .await
            .expect("json");
        assert_eq!(config["title"], "Ask us");
        assert_eq!(config["initial"], "Hi! How can I help?");
        let (token, visitor) = w.session(None).await;
        assert!(visitor.starts_with("a-"), "{visitor}");
        let (status, out) = w.post(&token, "hello there", "m1").await;
        assert_eq!(status, 200, "{out}");
        let view = w
            .view_until(&token, |v| texts(v).len() == 2 && v["typing"] == false)
            .await;
        assert_eq!(
            texts(&view),
            [
                ("person".to_owned(), "hello there".to_owned()),
                ("bot".to_owned(), "hello there".to_owned())
            ]
        );
        // A retried post of the same message is the same message.
        let (status, _) = w.post(&token, "hello there", "m1").await;
        assert_eq!(status, 200);
        // A reload: the same token gives the same visitor and the same conversation.
        let (again, same) = w.session(Some(&token)).await;
        assert_eq!(
            (again.as_str(), same.as_str()),
            (token.as_str(), visitor.as_str())
        );
        let view = w.view_until(&again, |v| texts(v).len() == 2).await;
        assert_eq!(
            texts(&view).len(),
            2,
            "one answer for the retried post: {view}"
        );
        // The reply went through the outbox like any channel's, and is marked delivered.
        let (_, list) = w.app.get("/conversation/list").await;
        let conversation = list["items"][0]["id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        // The view shows a reply once stored; the outbox marks it delivered right after.
        let deadline = tokio::time::Instant::now() + WAIT;
        let reply = loop {
            let (_, messages) = w
                .app
                .get(&format!("/conversation/{conversation}/message/list"))
                .await;
            let reply = messages["items"]
                .as_array()
                .and_then(|m| m.iter().find(|m| m["type"] == "bot"))
                .cloned()
                .unwrap_or_default();
            if reply["meta"]["delivery"]["status"] == "delivered"
                || tokio::time::Instant::now() > deadline
            {
                break reply;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert_eq!(reply["meta"]["delivery"]["channel"], "webchat", "{reply}");
        assert_eq!(reply["meta"]["delivery"]["status"], "delivered", "{reply}");
        w.app.stop().await;
    }
}

#[tokio::test]
async fn a_site_mints_tokens_for_its_users_and_forged_or_foreign_tokens_are_refused() {
    let w = Widget::start(Backend::Sqlite, json!({})).await;
    let (status, minted) = w
        .app
        .post(
            &format!("/integration/widget/{}/visitor", w.id),
            json!({"userId": "user-42"}),
        )
        .await;
    assert_eq!(status, 200, "{minted}");
    let token = minted["token"].as_str().unwrap_or_default().to_owned();
    let (kept, visitor) = w.session(Some(&token)).await;
    assert_eq!(
        (kept.as_str(), visitor.as_str()),
        (token.as_str(), "u-user-42")
    );
    let (status, _) = w
        .app
        .post(
            &format!("/integration/widget/{}/visitor", w.id),
            json!({"userId": "a b"}),
        )
        .await;
    assert_eq!(status, 400);

    let forged = token.replace("u-user-42", "u-user-43");
    let (status, _) = w.post(&forged, "hi", "m1").await;
    assert_eq!(status, 401);
    // A forged token asked for a session gets a fresh anonymous visitor, not the one it names.
    let (_, visitor) = w.session(Some(&forged)).await;
    assert!(visitor.starts_with("a-"));
    let other = w
        .app
        .create("/integration/widget", json!({"name": "Other"}))
        .await;
    let resp = w
        .http
        .post(w.app.url(&format!("/widget/{other}/messages")))
        .bearer_auth(&token)
        .json(&json!({"text": "hi", "id": "m1"}))
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status(), 401, "a token is for its own widget");
    let (status, out) = w.post(&token, "", "m2").await;
    assert_eq!(status, 400, "{out}");
    let (status, out) = w.post(&token, "hi", "bad id!").await;
    assert_eq!(status, 400, "{out}");
    w.app.stop().await;
}

#[tokio::test]
async fn only_the_listed_origins_may_embed_the_widget() {
    let w = Widget::start(Backend::Sqlite, json!({"origin": "https://shop.example"})).await;
    let preflight = w
        .http
        .request(reqwest::Method::OPTIONS, w.url("/messages"))
        .header("origin", "https://shop.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .expect("preflight");
    assert_eq!(preflight.status(), 204);
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        "https://shop.example"
    );
    let allowed = w
        .http
        .get(w.url("/config"))
        .header("origin", "https://shop.example")
        .send()
        .await
        .expect("config");
    assert_eq!(allowed.status(), 200);
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://shop.example"
    );
    let refused = w
        .http
        .post(w.url("/session"))
        .header("origin", "https://evil.example")
        .json(&json!({}))
        .send()
        .await
        .expect("session");
    assert_eq!(refused.status(), 403);
    assert!(refused
        .headers()
        .get("access-control-allow-origin")
        .is_none());
    w.app.stop().await;
}

#[tokio::test]
async fn a_visitor_posting_too_fast_is_slowed_down() {
    let w = Widget::start(Backend::Sqlite, json!({})).await;
    let (token, _) = w.session(None).await;
    let mut statuses = Vec::new();
    for i in 0..25 {
        statuses.push(w.post(&token, "spam", &format!("m{i}")).await.0);
    }
    assert!(statuses[..20].iter().all(|s| *s == 200), "{statuses:?}");
    assert!(statuses[20..].iter().all(|s| *s == 429), "{statuses:?}");
    w.app.stop().await;
}

#[tokio::test]
async fn a_web_chat_visitor_is_handed_to_an_agent_who_answers_in_the_widget() {
    for backend in backends() {
        let w = Widget::start(backend, json!({})).await;
        let agent = w
            .app
            .create("/agent", json!({"email": "ana@example.com", "name": "Ana", "password": "correct horse battery", "status": "online", "integrationIds": [w.id]}))
            .await;
        let (token, visitor) = w.session(None).await;
        w.post(&token, "agent", "m1").await;
        w.view_until(&token, |v| {
            texts(v)
                .iter()
                .any(|(_, t)| t.starts_with("I will try to connect you"))
        })
        .await;
        let (_, list) = w.app.get("/handoff/list?state=queued").await;
        let handoff = list["items"][0].clone();
        assert_eq!(handoff["person"], format!("chat:{visitor}"));
        let id = handoff["id"].as_str().unwrap_or_default().to_owned();
        let (status, out) = w
            .app
            .post(&format!("/handoff/{id}/assign"), json!({"agentId": agent}))
            .await;
        assert_eq!(status, 200, "{out}");
        let (status, out) = w
            .app
            .post(
                &format!("/handoff/{id}/send"),
                json!({"agentId": agent, "text": "Ana here, how can I help?"}),
            )
            .await;
        assert_eq!(status, 200, "{out}");
        let view = w
            .view_until(&token, |v| {
                texts(v)
                    .iter()
                    .any(|(a, t)| a == "agent" && t == "Ana here, how can I help?")
            })
            .await;
        let agent_message = view["messages"]
            .as_array()
            .and_then(|m| m.iter().find(|m| m["author"] == "agent"))
            .cloned()
            .unwrap_or_default();
        assert_eq!(agent_message["agentName"], "Ana");
        assert!(texts(&view)
            .iter()
            .any(|(a, t)| a == "system" && t == "Agent Ana has joined the conversation."));
        w.app.stop().await;
    }
}

#[tokio::test]
async fn the_widget_shows_typing_while_the_bots_turn_runs() {
    let llm = crate::standins::llm().await;
    llm.script([crate::standins::Answer::Slow(Duration::from_millis(1_200))]);
    let app = crate::standins::app_with_llm(Backend::Sqlite, &llm).await;
    let w = Widget::with(
        app,
        json!({"name": "LLM", "model": "gpt-4o-mini"}),
        json!({}),
    )
    .await;
    let (token, _) = w.session(None).await;
    w.post(&token, "tell me something", "m1").await;
    let typing = w.view_until(&token, |v| v["typing"] == true).await;
    assert_eq!(texts(&typing).len(), 0, "nothing answered yet: {typing}");
    let answered = w
        .view_until(&token, |v| v["typing"] == false && texts(v).len() == 2)
        .await;
    assert_eq!(texts(&answered)[1].0, "bot");
    w.app.stop().await;
}
