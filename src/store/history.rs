//! The one history loader: a conversation's latest messages as engines see them.
//!
//! Two kinds exist only here, for engines: what a human agent wrote (stored as a `bot` message
//! with `meta.author = "agent"`) is `agent`, and the hand-off's markers are `handoff`, so an LLM
//! is told what people said on the bot's behalf instead of taking it for its own words.
use super::channel::text;
use super::{Db, Sql};
use crate::bot::HistoryMessage;

impl Db {
    /// Up to `limit` latest messages of a conversation, oldest first, without `except` (the
    /// message being answered, stored with its turn).
    pub async fn history(
        &self,
        conversation_id: &str,
        except: Option<&str>,
        limit: i64,
    ) -> Result<Vec<HistoryMessage>, sqlx::Error> {
        let sql = Sql::new(
            "SELECT type, text, meta FROM messages WHERE conversation_id = $1 AND id <> $2 \
             ORDER BY created_at DESC, id DESC LIMIT $3",
        )
        .arg(conversation_id)
        .arg(except.unwrap_or(""))
        .arg(limit);
        let mut history: Vec<HistoryMessage> = self
            .fetch_all(&sql)
            .await?
            .iter()
            .map(|r| {
                let meta = text(r, "meta");
                let kind = if meta.contains(r#""author":"agent""#) {
                    "agent".to_owned()
                } else if meta.contains(r#""marker":"handoff""#) {
                    "handoff".to_owned()
                } else {
                    text(r, "type")
                };
                HistoryMessage {
                    kind,
                    text: text(r, "text"),
                }
            })
            .collect();
        history.reverse();
        Ok(history)
    }
}
