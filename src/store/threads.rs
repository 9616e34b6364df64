//! Storage verbs of provider threads and reply windows: sessions of Conversations whose time is
//! up (so the Conversation is closed on Twilio too), and each WhatsApp recipient's last inbound
//! message (WhatsApp's 24-hour window).
use super::channel::{int, text};
use super::{Db, Sql};

/// A session whose time is up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdleThread {
    pub integration_id: String,
    pub address: String,
    pub last_activity_at: i64,
}

impl Db {
    /// Sessions of Conversations integrations idle for longer than their `sessionDuration`
    /// (`default_ms` when unset), with no open hand-off (a human may still be answering) and
    /// nothing left to send to them (a closed Conversation would refuse it).
    pub async fn idle_threads(
        &self,
        now: i64,
        default_ms: i64,
        limit: i64,
    ) -> Result<Vec<IdleThread>, sqlx::Error> {
        let sql = Sql::new(
            "SELECT s.integration_id, s.address, s.last_activity_at FROM sessions s \
             JOIN conversations_integrations ci ON ci.id = s.integration_id \
             WHERE s.last_activity_at + COALESCE(ci.session_duration, $2) < $1 \
             AND NOT EXISTS (SELECT 1 FROM handoffs h WHERE h.integration_id = s.integration_id \
               AND h.person = s.address AND h.state IN ('queued', 'agent', 'leaving_message')) \
             AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.integration_id = s.integration_id \
               AND o.recipient = s.address AND o.status IN ('pending', 'sending')) \
             ORDER BY s.last_activity_at LIMIT $3",
        )
        .arg(now)
        .arg(default_ms)
        .arg(limit);
        Ok(self
            .fetch_all(&sql)
            .await?
            .iter()
            .map(|r| IdleThread {
                integration_id: text(r, "integration_id"),
                address: text(r, "address"),
                last_activity_at: int(r, "last_activity_at"),
            })
            .collect())
    }

    /// Ends `thread`'s session unless it saw activity since it was found idle.
    pub async fn end_idle_session(&self, thread: &IdleThread) -> Result<bool, sqlx::Error> {
        let sql = Sql::new(
            "DELETE FROM sessions WHERE integration_id = $1 AND address = $2 AND last_activity_at = $3",
        )
        .arg(thread.integration_id.as_str())
        .arg(thread.address.as_str())
        .arg(thread.last_activity_at);
        Ok(self.exec(&sql).await? == 1)
    }

    /// Notes a WhatsApp message from `address` (a WhatsApp sender, or a Conversation one wrote
    /// in): it opens the 24-hour window for replies to `address`.
    pub async fn note_whatsapp_inbound(
        &self,
        integration_id: &str,
        address: &str,
        at: i64,
    ) -> Result<(), sqlx::Error> {
        let sql = Sql::new(
            "INSERT INTO whatsapp_windows (integration_id, address, last_inbound_at) VALUES ($1, $2, $3) \
             ON CONFLICT (integration_id, address) DO UPDATE SET last_inbound_at = $3 \
             WHERE whatsapp_windows.last_inbound_at < $3",
        )
        .arg(integration_id)
        .arg(address)
        .arg(at);
        self.exec(&sql).await.map(|_| ())
    }

    /// When `address` last wrote on WhatsApp, if ever.
    pub async fn whatsapp_last_inbound(
        &self,
        integration_id: &str,
        address: &str,
    ) -> Result<Option<i64>, sqlx::Error> {
        let sql = Sql::new(
            "SELECT last_inbound_at FROM whatsapp_windows WHERE integration_id = $1 AND address = $2",
        )
        .arg(integration_id)
        .arg(address);
        Ok(self
            .fetch_optional(&sql)
            .await?
            .map(|r| int(&r, "last_inbound_at")))
    }
}
