//! The Twilio channel end to end: the emulator plays Twilio, Chatwire runs for real, on every
//! backend. A person texts, the bot answers through Twilio's REST API.
use crate::common::{backends, spawn_with, Backend, TestApp};
use chatwire::emulator::{self, EmulatorConfig, EmulatorHandle};
use serde_json::{json, Value};
use std::time::Duration;

pub const NUMBER: &str = "+15005550006";
pub const WHATSAPP: &str = "whatsapp:+14155238886";
const WAIT: Duration = Duration::from_secs(15);

/// Chatwire, the emulator, an echo bot and an integration whose number points at Chatwire.
pub struct Rig {
    pub app: TestApp,
    pub twilio: EmulatorHandle,
    pub integration: String,
    pub bot: String,
}

impl Rig {
    pub async fn start(backend: Backend) -> Self {
        Self::with(backend, json!({"model": "echo"}), json!({})).await
    }

    /// `bot` and `integration` are merged into the default bot and integration bodies.
    pub async fn with(backend: Backend, bot: Value, integration: Value) -> Self {
        Self::configured(backend, bot, integration, |_| {}).await
    }

    /// Like [`Rig::with`], with Chatwire's configuration tweaked.
    pub async fn configured(
        backend: Backend,
        bot: Value,
        integration: Value,
        tweak: impl FnOnce(&mut chatwire::config::Config),
    ) -> Self {
        let twilio = emulator::spawn(EmulatorConfig::default())
            .await
            .expect("emulator");
        let url = twilio.url().to_owned();
        let app = spawn_with(backend, |c| {
            c.twilio_api_url = url;
            tweak(c);
        })
        .await;
        let mut bot_body = json!({"name": "Test bot"});
        merge(&mut bot_body, bot);
        let bot = app.create("/bot", bot_body).await;
        let account = twilio.account();
        let mut body = json!({"name": "SMS", "botId": bot, "accountSid": account.sid, "authToken": account.auth_token, "phoneNumber": NUMBER});
        merge(&mut body, integration);
        let integration = app.create("/integration/twilio", body).await;
        let (status, out) = app
            .post(
                &format!("/integration/twilio/{integration}/setup"),
                json!({}),
            )
            .await;
        assert_eq!(status, 200, "setup: {out}");
        Self {
            app,
            twilio,
            integration,
            bot,
        }
    }

    /// Points the emulator's WhatsApp sender ([`WHATSAPP`]) at this integration too.
    pub fn serve_whatsapp(&self) {
        let base = format!(
            "{}/v1/integration/twilio/{}",
            self.app.base, self.integration
        );
        self.twilio
            .configure_number(&emulator::NumberConfig {
                account_sid: self.twilio.account().sid,
                address: WHATSAPP.parse().expect("address"),
                sms_url: Some(format!("{base}/webhook")),
                status_callback: Some(format!("{base}/status")),
            })
            .expect("configure");
    }

    /// The WhatsApp user `from` writes `body` to [`WHATSAPP`]; returns the message's SID and
    /// Chatwire's webhook status.
    pub async fn whatsapp(&self, from: &str, body: &str) -> (String, Option<u16>) {
        let request = emulator::InboundRequest {
            from: from.into(),
            to: WHATSAPP.into(),
            body: body.into(),
            media: Vec::new(),
            profile_name: None,
        };
        let out = self.twilio.inject_inbound(request).await.expect("inject");
        (out.message_sid, out.status)
    }

    /// The person at `from` texts `body` to our number; returns Chatwire's webhook status.
    pub async fn text(&self, from: &str, body: &str) -> (String, Option<u16>) {
        let out = self
            .twilio
            .send_text(from, NUMBER, body)
            .await
            .expect("inject");
        (out.message_sid, out.status)
    }

    pub async fn replies(
        &self,
        n: usize,
    ) -> Vec<chatwire::channel::twilio::resources::MessageResource> {
        self.twilio
            .wait_for_messages(n, WAIT)
            .await
            .expect("replies arrive")
    }

    pub async fn stop(self) {
        self.app.stop().await;
        self.twilio.shutdown().await;
    }
}

async fn conversations(rig: &Rig) -> usize {
    let (_, list) = rig
        .app
        .get(&format!("/conversation/list?botId={}", rig.bot))
        .await;
    list["items"].as_array().map(Vec::len).unwrap_or(0)
}

fn merge(base: &mut Value, extra: Value) {
    if let (Some(b), Value::Object(e)) = (base.as_object_mut(), extra) {
        b.extend(e);
    }
}

#[tokio::test]
async fn hello_gets_an_echo_reply_through_twilio() {
    for backend in backends() {
        let rig = Rig::start(backend).await;
        let (_, status) = rig.text("+15551230001", "hello").await;
        assert_eq!(status, Some(200));
        let sent = rig.replies(1).await;
        assert_eq!(sent[0].to, "+15551230001");
        assert_eq!(sent[0].from, NUMBER);
        assert_eq!(sent[0].body, "hello");
        // The conversation holds the person's message and the bot's answer, in order.
        let (_, convs) = rig
            .app
            .get(&format!("/conversation/list?botId={}", rig.bot))
            .await;
        let conv = convs["items"][0]["id"]
            .as_str()
            .expect("conversation")
            .to_owned();
        let (_, msgs) = rig
            .app
            .get(&format!("/conversation/{conv}/message/list"))
            .await;
        let kinds: Vec<(&str, &str)> = msgs["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|m| {
                (
                    m["type"].as_str().unwrap_or(""),
                    m["text"].as_str().unwrap_or(""),
                )
            })
            .collect();
        assert_eq!(kinds, vec![("user", "hello"), ("bot", "hello")]);
        rig.stop().await;
    }
}

#[tokio::test]
async fn duplicate_webhook_is_answered_once() {
    for backend in backends() {
        let rig = Rig::start(backend).await;
        let (sid, _) = rig.text("+15551230002", "only once").await;
        rig.replies(1).await;
        let replay = rig.twilio.replay_inbound(&sid).await.expect("replay");
        assert_eq!(replay.status, Some(200), "a retried webhook still gets 200");
        tokio::time::sleep(Duration::from_millis(800)).await;
        assert_eq!(rig.twilio.sent_messages().len(), 1, "no second reply");
        rig.stop().await;
    }
}

#[tokio::test]
async fn forged_or_unsigned_webhook_is_refused_and_stores_nothing() {
    for backend in backends() {
        let rig = Rig::start(backend).await;
        let url = rig.app.url(&format!(
            "/v1/integration/twilio/{}/webhook",
            rig.integration
        ));
        let form = [
            ("MessageSid", "SM0123456789abcdef0123456789abcdef"),
            ("AccountSid", "AC00000000000000000000000000000001"),
            ("From", "+15551230003"),
            ("To", NUMBER),
            ("Body", "forged"),
        ];
        let unsigned = rig
            .app
            .client
            .post(&url)
            .form(&form)
            .send()
            .await
            .expect("send");
        assert_eq!(unsigned.status(), 403);
        let forged = rig
            .app
            .client
            .post(&url)
            .header("X-Twilio-Signature", "RSOYDt4T1cUTdK1PDd93/VVr8B8=")
            .form(&form)
            .send()
            .await
            .expect("send");
        assert_eq!(forged.status(), 403);
        let unknown = rig
            .app
            .client
            .post(rig.app.url("/v1/integration/twilio/nope/webhook"))
            .form(&form)
            .send()
            .await
            .expect("send");
        assert_eq!(unknown.status(), 404);
        let big = rig
            .app
            .client
            .post(&url)
            .body("x".repeat(70 * 1024))
            .send()
            .await
            .expect("send");
        assert!(big.status().is_client_error());
        assert_eq!(
            rig.app
                .state
                .db
                .inbound_count("pending")
                .await
                .expect("count"),
            0
        );
        assert_eq!(
            rig.app.state.db.inbound_count("done").await.expect("count"),
            0
        );
        let metrics = rig.app.metrics_text().await;
        assert!(
            metrics.contains(
                "chatwire_webhooks_refused_total{channel=\"twilio\",reason=\"bad_signature\"} 2"
            ),
            "{metrics}"
        );
        rig.stop().await;
    }
}

#[tokio::test]
async fn long_reply_arrives_as_ordered_parts() {
    for backend in backends() {
        let rig = Rig::start(backend).await;
        let sentence = "This is a fairly long sentence that keeps going. ";
        let long: String = sentence.repeat(41).trim().to_owned();
        assert!(long.chars().count() > 2000);
        rig.text("+15551230004", &long).await;
        let sent = rig.replies(2).await;
        assert_eq!(sent.len(), 2);
        assert!(sent.iter().all(|m| m.body.chars().count() <= 1600));
        let joined = format!("{} {}", sent[0].body, sent[1].body);
        assert_eq!(joined, long, "parts in order, split at a sentence boundary");
        rig.stop().await;
    }
}

#[tokio::test]
async fn stop_silences_the_bot_and_start_lifts_it() {
    for backend in backends() {
        let rig = Rig::start(backend).await;
        let person = "+15551230005";
        rig.text(person, "STOP").await;
        rig.text(person, "are you there?").await;
        tokio::time::sleep(Duration::from_millis(800)).await;
        assert!(
            rig.twilio.sent_messages().is_empty(),
            "nothing is sent after STOP"
        );
        let (status, err) = rig
            .app
            .post(
                &format!("/integration/twilio/{}/initiate", rig.integration),
                json!({"to": person, "text": "Reminder"}),
            )
            .await;
        assert_eq!(status, 409, "initiate respects opt-outs: {err}");
        rig.text(person, "START").await;
        rig.text(person, "back again").await;
        let sent = rig.replies(1).await;
        assert_eq!(sent[0].body, "back again");
        rig.stop().await;
    }
}

#[tokio::test]
async fn help_answers_with_help_text_without_the_bot() {
    for backend in backends() {
        let rig = Rig::start(backend).await;
        rig.text("+15551230006", "help").await;
        let sent = rig.replies(1).await;
        assert!(sent[0].body.contains("STOP"), "help text: {}", sent[0].body);
        rig.stop().await;
    }
}

#[tokio::test]
async fn whatsapp_message_gets_a_whatsapp_reply_and_a_named_contact() {
    for backend in backends() {
        let rig = Rig::with(
            backend,
            json!({"model": "echo"}),
            json!({"contactCollection": true}),
        )
        .await;
        rig.serve_whatsapp();
        let request = emulator::InboundRequest {
            from: "whatsapp:+5215512345678".into(),
            to: WHATSAPP.into(),
            body: "Olá 👋".into(),
            media: Vec::new(),
            profile_name: Some("Ana".into()),
        };
        let out = rig.twilio.inject_inbound(request).await.expect("inject");
        assert_eq!(out.status, Some(200));
        let sent = rig.replies(1).await;
        assert_eq!(sent[0].to, "whatsapp:+5215512345678");
        assert_eq!(sent[0].from, WHATSAPP);
        assert_eq!(sent[0].body, "Olá 👋");
        let (_, contacts) = rig.app.get("/contact/list").await;
        assert_eq!(contacts["items"][0]["phone"], "+5215512345678");
        assert_eq!(contacts["items"][0]["name"], "Ana");
        rig.stop().await;
    }
}

#[tokio::test]
async fn session_ends_after_its_duration_and_reset_starts_anew() {
    for backend in backends() {
        let rig = Rig::with(
            backend,
            json!({"model": "echo"}),
            json!({"sessionDuration": 1500}),
        )
        .await;
        let person = "+15551230007";
        rig.text(person, "one").await;
        rig.replies(1).await;
        rig.text(person, "two").await;
        rig.replies(2).await;
        assert_eq!(
            conversations(&rig).await,
            1,
            "same session within the duration"
        );
        tokio::time::sleep(Duration::from_millis(1800)).await;
        rig.text(person, "three").await;
        rig.replies(3).await;
        assert_eq!(
            conversations(&rig).await,
            2,
            "silence longer than sessionDuration starts a new conversation"
        );
        rig.text(person, "///reset").await;
        rig.text(person, "four").await;
        rig.replies(4).await;
        assert_eq!(
            conversations(&rig).await,
            3,
            "///reset starts a new conversation"
        );
        assert_eq!(
            rig.twilio.sent_messages().len(),
            4,
            "///reset itself is not answered"
        );
        rig.stop().await;
    }
}

#[tokio::test]
async fn replies_wait_while_twilio_fails_and_go_out_in_order() {
    for backend in backends() {
        let rig = Rig::start(backend).await;
        rig.twilio.add_fault(emulator::Fault {
            count: 3,
            kind: emulator::FaultKind::ServerError,
            delay_ms: None,
        });
        let person = "+15551230008";
        rig.text(person, "first").await;
        rig.text(person, "second").await;
        let sent = rig
            .twilio
            .wait_for_messages(2, Duration::from_secs(30))
            .await
            .expect("delivered after faults");
        let bodies: Vec<&str> = sent.iter().map(|m| m.body.as_str()).collect();
        assert_eq!(bodies, vec!["first", "second"]);
        rig.stop().await;
    }
}

#[tokio::test]
async fn status_callbacks_move_the_status_forward_only() {
    for backend in backends() {
        let rig = Rig::start(backend).await;
        rig.text("+15551230009", "track me").await;
        let sent = rig.replies(1).await;
        let sid = sent[0].sid.clone();
        let db = &rig.app.state.db;
        let mut status = None;
        for _ in 0..100 {
            status = db.outbox_status(&sid).await.expect("status").flatten();
            if status.as_deref() == Some("delivered") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(
            status.as_deref(),
            Some("delivered"),
            "signed callbacks from the emulator applied"
        );
        // A late "sent" callback (callbacks can arrive out of order) must not move it back.
        let url = rig.app.url(&format!(
            "/v1/integration/twilio/{}/status",
            rig.integration
        ));
        let params = vec![
            ("MessageSid".to_owned(), sid.clone()),
            ("MessageStatus".to_owned(), "sent".to_owned()),
            ("AccountSid".to_owned(), rig.twilio.account().sid),
        ];
        let signature = chatwire::channel::twilio::signature::compute(
            &rig.twilio.account().auth_token,
            &url,
            &params,
        );
        let response = rig
            .app
            .client
            .post(&url)
            .header("X-Twilio-Signature", signature)
            .form(&params)
            .send()
            .await
            .expect("send");
        assert!(response.status().is_success());
        assert_eq!(
            db.outbox_status(&sid)
                .await
                .expect("status")
                .flatten()
                .as_deref(),
            Some("delivered")
        );
        let unsigned = rig
            .app
            .client
            .post(&url)
            .form(&params)
            .send()
            .await
            .expect("send");
        assert_eq!(unsigned.status(), 403);
        rig.stop().await;
    }
}

#[tokio::test]
async fn setup_explains_bad_credentials_and_missing_numbers() {
    let backend = Backend::Sqlite;
    let rig = Rig::start(backend).await;
    let app = &rig.app;
    // Another of the account's numbers: the rig's integration has NUMBER.
    let bad = app
        .create("/integration/twilio", json!({"accountSid": rig.twilio.account().sid, "authToken": "wrong", "phoneNumber": WHATSAPP}))
        .await;
    let (status, err) = app
        .post(&format!("/integration/twilio/{bad}/setup"), json!({}))
        .await;
    assert_eq!(status, 409, "{err}");
    assert!(
        err["message"]
            .as_str()
            .unwrap_or("")
            .contains("credentials"),
        "{err}"
    );
    let missing = app
        .create(
            "/integration/twilio",
            json!({"accountSid": rig.twilio.account().sid, "authToken": rig.twilio.account().auth_token, "phoneNumber": "+15559998888"}),
        )
        .await;
    let (status, err) = app
        .post(&format!("/integration/twilio/{missing}/setup"), json!({}))
        .await;
    assert_eq!(status, 409);
    assert!(
        err["message"]
            .as_str()
            .unwrap_or("")
            .contains("+15559998888"),
        "{err}"
    );
    let empty = app.create("/integration/twilio", json!({})).await;
    let (status, _) = app
        .post(&format!("/integration/twilio/{empty}/setup"), json!({}))
        .await;
    assert_eq!(status, 409);
    rig.stop().await;
}

#[tokio::test]
async fn initiate_sends_a_proactive_message_and_the_reply_continues_that_conversation() {
    for backend in backends() {
        let rig = Rig::start(backend).await;
        let person = "+15551230010";
        let (status, out) = rig
            .app
            .post(
                &format!("/integration/twilio/{}/initiate", rig.integration),
                json!({"to": person, "text": "Your appointment is tomorrow at 10."}),
            )
            .await;
        assert_eq!(status, 200, "{out}");
        let sent = rig.replies(1).await;
        assert_eq!(
            (sent[0].to.as_str(), sent[0].body.as_str()),
            (person, "Your appointment is tomorrow at 10.")
        );
        rig.text(person, "thanks").await;
        rig.replies(2).await;
        assert_eq!(
            conversations(&rig).await,
            1,
            "the answer joins the initiated conversation"
        );
        rig.stop().await;
    }
}

#[tokio::test]
async fn cancel_on_whatsapp_reaches_the_bot_instead_of_opting_out() {
    for backend in backends() {
        let rig = Rig::start(backend).await;
        rig.serve_whatsapp();
        for (i, word) in ["Cancel", "hello again"].into_iter().enumerate() {
            assert_eq!(
                rig.whatsapp("whatsapp:+5215512345679", word).await.1,
                Some(200)
            );
            let sent = rig.replies(i + 1).await;
            assert_eq!(
                sent[i].body, word,
                "{backend:?}: the bot answers, the sender is not opted out"
            );
        }
        rig.stop().await;
    }
}

#[tokio::test]
async fn whatsapp_keywords_apply_when_the_integration_opts_in() {
    for backend in backends() {
        let rig = Rig::with(
            backend,
            json!({"model": "echo"}),
            json!({"whatsappKeywords": true}),
        )
        .await;
        let (_, fetched) = rig
            .app
            .get(&format!("/integration/twilio/{}/fetch", rig.integration))
            .await;
        assert_eq!(fetched["whatsappKeywords"], json!(true));
        rig.serve_whatsapp();
        let me = "whatsapp:+5215512345680";
        for word in ["Cancel", "are you there?", "START", "hello again", "help"] {
            assert_eq!(rig.whatsapp(me, word).await.1, Some(200), "{word}");
        }
        let sent: Vec<(String, String)> = rig
            .replies(2)
            .await
            .into_iter()
            .map(|m| (m.to, m.body))
            .collect();
        assert_eq!(
            sent[0],
            (me.to_owned(), "hello again".to_owned()),
            "{backend:?}: Cancel opted out, so nothing was answered (in order) until START"
        );
        assert_eq!(sent[1].1, chatwire::config::Config::for_tests("").help_text);
        rig.stop().await;
    }
}

/// Posts a webhook signed with the integration's own token (as Twilio would) with `params`.
async fn signed_webhook(rig: &Rig, params: &[(&str, &str)]) -> u16 {
    let url = format!(
        "{}/v1/integration/twilio/{}/webhook",
        rig.app.base, rig.integration
    );
    let pairs: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let token = rig.twilio.account().auth_token.clone();
    let signature = chatwire::channel::twilio::signature::compute(&token, &url, &pairs);
    rig.app
        .client
        .post(&url)
        .header("x-twilio-signature", signature)
        .form(&pairs)
        .send()
        .await
        .expect("post")
        .status()
        .as_u16()
}

#[tokio::test]
async fn a_signed_webhook_for_another_account_or_integration_number_is_refused() {
    for backend in backends() {
        let rig = Rig::start(backend).await;
        let account = rig.twilio.account().sid.clone();
        // A second integration on the same account holds another number.
        let other = "+15005550007";
        rig.app
            .create(
                "/integration/twilio",
                json!({"name": "Other", "accountSid": account, "authToken": rig.twilio.account().auth_token, "phoneNumber": other}),
            )
            .await;
        let base = [
            ("MessageSid", "SM00000000000000000000000000000077"),
            ("From", "+15551230077"),
            ("Body", "hi"),
        ];
        let with = |extra: [(&'static str, String); 2]| {
            let mut all: Vec<(&str, String)> =
                base.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
            all.extend(extra);
            all
        };
        for (why, params) in [
            (
                "another account",
                with([
                    ("AccountSid", "AC00000000000000000000000000000099".into()),
                    ("To", NUMBER.into()),
                ]),
            ),
            (
                "another integration's number",
                with([("AccountSid", account.clone()), ("To", other.into())]),
            ),
        ] {
            let refs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
            assert_eq!(signed_webhook(&rig, &refs).await, 403, "{backend:?}: {why}");
        }
        let ok: Vec<(&str, String)> =
            with([("AccountSid", account.clone()), ("To", NUMBER.into())]);
        let refs: Vec<(&str, &str)> = ok.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(
            signed_webhook(&rig, &refs).await,
            200,
            "{backend:?}: its own account and number"
        );
        assert_eq!(rig.replies(1).await[0].body, "hi");
        rig.stop().await;
    }
}
