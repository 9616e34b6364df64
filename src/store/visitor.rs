//! What a web chat visitor sees: their live conversation's messages and whether a turn is
//! running for them (the typing indicator).
use super::channel::{int, opt_text};
use super::{Db, Sql};
use serde_json::{Map, Value};

/// Messages a visitor's view carries.
const SHOWN: i64 = 100;

impl Db {
    /// The visitor's conversation: an open hand-off's, else the live session's.
    pub async fn visitor_conversation(
        &self,
        integration_id: &str,
        address: &str,
        duration_ms: i64,
        now: i64,
    ) -> Result<Option<String>, sqlx::Error> {
        let sql = Sql::new(
            "SELECT conversation_id FROM handoffs WHERE integration_id = $1 AND person = $2 \
             AND state IN ('queued', 'agent', 'leaving_message')",
        )
        .arg(integration_id)
        .arg(address);
        if let Some(row) = self.fetch_optional(&sql).await? {
            return Ok(opt_text(&row, "conversation_id"));
        }
        self.live_session(integration_id, address, duration_ms, now)
            .await
    }

    /// The conversation's latest messages as the visitor sees them: what they wrote and what
    /// was written to them (`author`: `person`, `bot`, `agent` with `agentName`, `system`),
    /// oldest first; the hand-off's history markers are not shown.
    pub async fn visitor_messages(&self, conversation_id: &str) -> Result<Vec<Value>, sqlx::Error> {
        let items = self.transcript(conversation_id, SHOWN).await?;
        Ok(items.into_iter().filter_map(|m| shown(&m)).collect())
    }

    /// Whether a message of the visitor's is waiting for or in its turn.
    pub async fn visitor_waiting(
        &self,
        integration_id: &str,
        address: &str,
    ) -> Result<bool, sqlx::Error> {
        let sql = Sql::new(
            "SELECT COUNT(*) AS n FROM inbound WHERE integration_id = $1 AND sender = $2 \
             AND status IN ('pending', 'processing') AND message_sid NOT LIKE 'timer-%'",
        )
        .arg(integration_id)
        .arg(address);
        Ok(self
            .fetch_optional(&sql)
            .await?
            .is_some_and(|r| int(&r, "n") > 0))
    }
}

fn shown(m: &Map<String, Value>) -> Option<Value> {
    let kind = m.get("type").and_then(Value::as_str)?;
    let meta = m.get("meta").cloned().unwrap_or(Value::Null);
    let author = match (kind, meta.get("author").and_then(Value::as_str)) {
        ("user", _) => "person",
        ("bot", Some("agent")) => "agent",
        ("bot", Some("system")) => "system",
        ("bot", _) => "bot",
        _ => return None,
    };
    Some(serde_json::json!({
        "id": m.get("id"),
        "author": author,
        "agentName": meta.get("agentName"),
        "text": m.get("text"),
        "createdAt": m.get("createdAt"),
    }))
}
