//! The demo `chatwire dev` sets up, through the management API exactly as the README's
//! walk-through does: three bots, a dataset for the FAQ, an integration per bot on its own
//! emulated number, and `setup` on each (which points the number's webhooks at Chatwire).
use anyhow::{bail, Context};
use serde_json::{json, Value};

/// The emulated numbers, one per demo bot, in [`create`]'s order.
pub const NUMBERS: [&str; 3] = ["+15005550006", "+15005550007", "+15005550008"];

/// A demo bot and the number that reaches it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DemoBot {
    /// `echo`, `flow` or `faq`.
    pub key: &'static str,
    pub name: &'static str,
    pub number: &'static str,
    /// What to text it.
    pub hint: &'static str,
    pub bot_id: String,
    pub integration_id: String,
}

/// A Studio flow as exported from Twilio's console: asks a name, greets, offers a choice.
fn flow() -> Value {
    let send = |name: &str, body: &str, next: Option<&str>| {
        json!({"name": name, "type": "send-message",
            "transitions": [{"event": "sent", "next": next}, {"event": "failed"}],
            "properties": {"from": "{{flow.channel.address}}", "to": "{{contact.channel.address}}", "body": body}})
    };
    json!({
        "description": "Chatwire dev demo",
        "initial_state": "Trigger",
        "flags": {"allow_concurrent_calls": true},
        "states": [
            {"name": "Trigger", "type": "trigger",
             "transitions": [{"event": "incomingMessage", "next": "ask_name"}, {"event": "incomingCall"}, {"event": "incomingRequest"}],
             "properties": {}},
            {"name": "ask_name", "type": "send-and-wait-for-reply",
             "transitions": [{"event": "incomingMessage", "next": "ask_topic"}, {"event": "timeout"}, {"event": "deliveryFailure"}],
             "properties": {"from": "{{flow.channel.address}}", "body": "Hi! I'm a Studio flow. What's your name?", "timeout": "3600"}},
            {"name": "ask_topic", "type": "send-and-wait-for-reply",
             "transitions": [{"event": "incomingMessage", "next": "split"}, {"event": "timeout"}, {"event": "deliveryFailure"}],
             "properties": {"from": "{{flow.channel.address}}", "body": "Nice to meet you, {{widgets.ask_name.inbound.Body}}! Reply 1 for opening hours or 2 for our address.", "timeout": "3600"}},
            {"name": "split", "type": "split-based-on",
             "transitions": [
                {"event": "noMatch", "next": "other"},
                {"event": "match", "next": "hours", "conditions": [{"friendly_name": "1", "arguments": ["{{widgets.ask_topic.inbound.Body}}"], "type": "equal_to", "value": "1"}]},
                {"event": "match", "next": "address", "conditions": [{"friendly_name": "2", "arguments": ["{{widgets.ask_topic.inbound.Body}}"], "type": "equal_to", "value": "2"}]}
             ],
             "properties": {"input": "{{widgets.ask_topic.inbound.Body}}"}},
            send("hours", "We're open 9am to 5pm, Monday to Friday.", None),
            send("address", "You'll find us at 1 Demo Street.", None),
            send("other", "I only know 1 and 2. Text me again to start over.", None),
        ]
    })
}

const FAQ: [&str; 3] = [
    "Q: What are your opening hours?\nA: 9am to 5pm, Monday to Friday.",
    "Q: Where can I park?\nA: Free parking behind the building.",
    "Q: Do you deliver?\nA: Yes, within 10 km, free on orders over $30.",
];

/// Calls the management API at `base` with `token`.
struct Api<'a> {
    base: &'a str,
    token: &'a str,
    http: reqwest::Client,
}

impl Api<'_> {
    async fn post(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        let resp = self
            .http
            .post(format!("{}/v1/{path}", self.base))
            .bearer_auth(self.token)
            .json(&body)
            .send()
            .await
            .with_context(|| format!("POST /v1/{path}"))?;
        let status = resp.status();
        let out: Value = resp.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("POST /v1/{path} answered {status}: {out}");
        }
        Ok(out)
    }

    async fn get(&self, path: &str) -> anyhow::Result<Value> {
        let resp = self
            .http
            .get(format!("{}/v1/{path}", self.base))
            .bearer_auth(self.token)
            .send()
            .await
            .with_context(|| format!("GET /v1/{path}"))?;
        let status = resp.status();
        let out: Value = resp.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("GET /v1/{path} answered {status}: {out}");
        }
        Ok(out)
    }

    async fn create(&self, path: &str, body: Value) -> anyhow::Result<String> {
        let out = self.post(&format!("{path}/create"), body).await?;
        out["id"]
            .as_str()
            .map(str::to_owned)
            .with_context(|| format!("{path}/create answered no id: {out}"))
    }
}

/// Creates the demo bots and their integrations, and runs `setup` on each. A database kept
/// from an earlier run (`--database`) already has them: they are reused, and only `setup` runs
/// again (the emulator's numbers are new each run).
pub async fn create(base: &str, token: &str) -> anyhow::Result<Vec<DemoBot>> {
    let api = Api {
        base,
        token,
        http: reqwest::Client::new(),
    };
    let listed = api.get("integration/twilio/list?take=100").await?;
    let existing = |number: &str| {
        listed["items"].as_array().and_then(|items| {
            items
                .iter()
                .find(|i| i["phoneNumber"] == number)
                .and_then(|i| {
                    Some((
                        i["id"].as_str()?.to_owned(),
                        i["botId"].as_str()?.to_owned(),
                    ))
                })
        })
    };
    let bots = [
        ("echo", "Echo", "replies with what you text"),
        (
            "flow",
            "Studio flow",
            "asks your name, then offers a choice",
        ),
        ("faq", "FAQ", "try \"when are you open?\" or \"parking\""),
    ];
    let mut out = Vec::new();
    for ((key, name, hint), number) in bots.into_iter().zip(NUMBERS) {
        let (integration_id, bot_id) = match existing(number) {
            Some(found) => found,
            None => {
                let bot_id = api.create("bot", bot_body(&api, key, name).await?).await?;
                let integration_id = api
                    .create(
                        "integration/twilio",
                        json!({
                            "name": format!("{name} SMS"), "botId": bot_id,
                            "accountSid": crate::emulator::DEFAULT_ACCOUNT_SID,
                            "authToken": crate::emulator::DEFAULT_AUTH_TOKEN,
                            "phoneNumber": number, "contactCollection": true,
                        }),
                    )
                    .await?;
                (integration_id, bot_id)
            }
        };
        api.post(
            &format!("integration/twilio/{integration_id}/setup"),
            json!({}),
        )
        .await?;
        out.push(DemoBot {
            key,
            name,
            number,
            hint,
            bot_id,
            integration_id,
        });
    }
    Ok(out)
}

/// The create body of the demo bot `key` (the FAQ's dataset is created with it).
async fn bot_body(api: &Api<'_>, key: &str, name: &str) -> anyhow::Result<Value> {
    Ok(match key {
        "flow" => json!({"name": name, "model": "flow", "flow": flow()}),
        "faq" => {
            let dataset = api.create("dataset", json!({"name": "Demo FAQ"})).await?;
            for text in FAQ {
                api.create(&format!("dataset/{dataset}/record"), json!({"text": text}))
                    .await?;
            }
            json!({"name": name, "model": "faq", "datasetId": dataset})
        }
        _ => json!({"name": name, "model": "echo"}),
    })
}
