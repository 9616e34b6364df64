//! Test helpers for the flow and FAQ engines: a context over a fresh SQLite file, local HTTP
//! stand-ins, and turns with an explicit clock.
use crate::bot::{BotConfig, ChannelKind, ContactInfo, EngineContext, Media, Reply, Turn};
use crate::config::Config;
use crate::store::Db;
use axum::Router;
use serde_json::{json, Map, Value};
use std::sync::Arc;

pub const CONTACT: &str = "+15550001111";
pub const NUMBER: &str = "+15559990000";
pub const T0: i64 = 1_700_000_000_000;

/// The database behind a test's engine context, for seeding it and reading what the engine
/// recorded; the file is removed when this is dropped.
pub struct Scratch {
    pub db: Db,
    _dir: tempfile::TempDir,
}

/// An engine context over a fresh database; `allow_private` lets flows reach the local
/// stand-ins.
pub async fn context(allow_private: bool) -> (EngineContext, Scratch) {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let mut config = Config::for_tests(&url);
    config.allow_private_http = allow_private;
    let db = Db::connect(&url).await.expect("db");
    let ctx = EngineContext::new(
        Arc::new(db.clone()),
        reqwest::Client::new(),
        crate::net::outbound::Outbound::new(crate::net::outbound::Policy::new(
            config.allow_private_http,
        ))
        .expect("client"),
        Arc::new(config),
        crate::crypto::Cipher::from_key_text(&"0".repeat(64)).expect("key"),
        Arc::default(),
    );
    (ctx, Scratch { db, _dir: dir })
}

/// Serves `router` on 127.0.0.1:0 and returns its base URL.
pub async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    format!("http://{addr}")
}

/// A bot with `model` and extra fields.
pub fn bot(model: &str, extra: Value) -> BotConfig {
    let mut raw: Map<String, Value> = extra.as_object().cloned().unwrap_or_default();
    raw.insert("id".into(), json!("bot-1"));
    raw.insert("model".into(), json!(model));
    BotConfig {
        id: "bot-1".into(),
        name: "test".into(),
        model: model.into(),
        backstory: String::new(),
        dataset_id: raw
            .get("datasetId")
            .and_then(Value::as_str)
            .map(str::to_owned),
        raw,
    }
}

/// A turn of `bot` with `text` at `now_ms`, carrying the state of the previous reply.
pub fn turn(bot: &BotConfig, text: &str, state: &Value, now_ms: i64) -> Turn {
    Turn {
        conversation_id: "conv-1".into(),
        bot: bot.clone(),
        history: Vec::new(),
        text: text.into(),
        media: Vec::<Media>::new(),
        contact: ContactInfo {
            id: None,
            name: Some("Ana".into()),
            address: CONTACT.into(),
            author: None,
        },
        channel: ChannelKind::Sms,
        channel_address: Some(NUMBER.into()),
        // The pipeline stores the state as JSON text; go through that to catch anything that
        // does not survive it.
        state: serde_json::from_str(&state.to_string()).expect("state round-trips"),
        now_ms,
        message_sid: None,
        account_sid: None,
    }
}

/// Drives one engine through a conversation, keeping its state between turns.
pub struct Chat<'a> {
    pub engine: &'a dyn crate::bot::BotEngine,
    pub bot: BotConfig,
    pub state: Value,
    pub now: i64,
}

impl<'a> Chat<'a> {
    pub fn new(engine: &'a dyn crate::bot::BotEngine, bot: BotConfig) -> Self {
        Self {
            engine,
            bot,
            state: Value::Null,
            now: T0,
        }
    }

    /// Sends `text` one second after the previous turn.
    pub async fn say(&mut self, text: &str) -> Reply {
        self.now += 1000;
        let reply = self
            .engine
            .respond(&turn(&self.bot, text, &self.state, self.now))
            .await
            .expect("turn");
        self.state = reply.state.clone();
        reply
    }

    /// The pipeline's timer turn at `at_ms`.
    pub async fn wake(&mut self, at_ms: i64) -> Reply {
        self.now = at_ms;
        let reply = self
            .engine
            .respond(&turn(&self.bot, "", &self.state, at_ms))
            .await
            .expect("timer turn");
        self.state = reply.state.clone();
        reply
    }
}

/// A fixture flow from `tests/fixtures/studio/`.
pub fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/tests/fixtures/studio/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).expect("fixture JSON")
}
