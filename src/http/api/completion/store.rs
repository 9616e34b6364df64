//! What the stateful completion calls read and write: the conversation, its bot and contact,
//! its history, and new user and bot messages.
use super::run::Outcome;
use super::HISTORY_LIMIT;
use crate::app::AppState;
use crate::bot::{self, ContactInfo, HistoryMessage};
use crate::domain::{ids, now_ms};
use crate::http::error::{ApiError, ApiResult};
use crate::store::schema::{BOT, CONVERSATION};
use crate::store::Sql;
use serde_json::{Map, Value};
use sqlx::Row;

/// The conversation's id (the key may be an id or alias), 404 when unknown.
pub(super) async fn conversation_id(state: &AppState, key: &str) -> ApiResult<String> {
    state
        .db
        .resolve_id(&CONVERSATION, None, key)
        .await?
        .ok_or_else(ApiError::not_found)
}

/// The conversation's bot, or its inline configuration when it has none.
pub(super) async fn conversation_bot(
    state: &AppState,
    conversation: &str,
) -> ApiResult<bot::BotConfig> {
    let row = state
        .db
        .fetch_resource(&CONVERSATION, None, conversation)
        .await?
        .ok_or_else(ApiError::not_found)?;
    if let Some(bot_id) = row
        .get("botId")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    {
        return state
            .db
            .fetch_by_key(&BOT, bot_id)
            .await?
            .map(bot::BotConfig::from_row)
            .ok_or_else(|| ApiError::bad_request("Bot not found"));
    }
    let mut raw = Map::new();
    for key in ["model", "backstory", "datasetId"] {
        if let Some(value) = row.get(key).filter(|v| v.is_string()) {
            raw.insert(key.into(), value.clone());
        }
    }
    Ok(bot::BotConfig::from_row(raw))
}

pub(super) async fn conversation_contact(
    state: &AppState,
    conversation: &str,
) -> ApiResult<ContactInfo> {
    let row = Sql::new("SELECT c.id, c.name, c.phone FROM conversations v JOIN contacts c ON c.id = v.contact_id WHERE v.id = $1")
        .arg(conversation);
    let Some(row) = state.db.fetch_optional(&row).await? else {
        return Ok(ContactInfo::default());
    };
    Ok(ContactInfo {
        id: row.try_get::<Option<String>, _>(0)?,
        name: row
            .try_get::<Option<String>, _>(1)?
            .filter(|s| !s.is_empty()),
        address: row.try_get::<Option<String>, _>(2)?.unwrap_or_default(),
        author: None,
    })
}

/// The conversation's latest messages, oldest first.
pub(super) async fn load_history(
    state: &AppState,
    conversation: &str,
) -> ApiResult<Vec<HistoryMessage>> {
    Ok(state.db.history(conversation, None, HISTORY_LIMIT).await?)
}

pub(super) async fn insert_message(
    state: &AppState,
    conversation: &str,
    kind: &str,
    text: &str,
    tokens: Option<i64>,
) -> ApiResult<String> {
    let id = ids::new_id();
    let now = now_ms();
    let sql = Sql::new(
        "INSERT INTO messages (id, conversation_id, type, text, tokens, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6)",
    )
    .arg(id.as_str())
    .arg(conversation)
    .arg(kind)
    .arg(text)
    .arg(tokens)
    .arg(now);
    state.db.exec(&sql).await?;
    Ok(id)
}

/// Stores the bot's answer (with its token count) and the engine's new state together.
pub(super) async fn record_reply(
    db: &crate::store::Db,
    conversation: &str,
    outcome: &Outcome,
) -> ApiResult<String> {
    let id = ids::new_id();
    let now = now_ms();
    let tokens = outcome.reply.usage.map(|_| outcome.tokens() as i64);
    let mut tx = db.pool.begin().await?;
    Sql::new("INSERT INTO messages (id, conversation_id, type, text, tokens, created_at, updated_at) VALUES ($1, $2, 'bot', $3, $4, $5, $5)")
        .arg(id.as_str())
        .arg(conversation)
        .arg(outcome.text.as_str())
        .arg(tokens)
        .arg(now)
        .query()
        .execute(&mut *tx)
        .await?;
    let engine_state = (!outcome.reply.state.is_null()).then(|| outcome.reply.state.to_string());
    Sql::new("UPDATE conversations SET engine_state = $1, updated_at = $2 WHERE id = $3")
        .arg(engine_state)
        .arg(now)
        .arg(conversation)
        .query()
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(id)
}
