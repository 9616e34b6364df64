//! The one history loader: a conversation's latest messages as engines see them.
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
            "SELECT type, text FROM messages WHERE conversation_id = $1 AND id <> $2 \
             ORDER BY created_at DESC, id DESC LIMIT $3",
        )
        .arg(conversation_id)
        .arg(except.unwrap_or(""))
        .arg(limit);
        let mut history: Vec<HistoryMessage> = self
            .fetch_all(&sql)
            .await?
            .iter()
            .map(|r| HistoryMessage {
                kind: text(r, "type"),
                text: text(r, "text"),
            })
            .collect();
        history.reverse();
        Ok(history)
    }
}
