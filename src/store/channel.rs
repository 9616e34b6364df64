//! Storage verbs of the Twilio channel: inbound messages, sessions, opt-outs.
//!
//! An inbound message is written once per (integration, MessageSid) before Twilio gets its 200,
//! then claimed by a worker under a lease. A sender's messages are claimed strictly one at a time
//! and in arrival order: only the oldest unfinished message of a sender can be claimed, so a
//! conversation never runs two turns at once, on one replica or several.
use super::{Backend, Db, Sql};
use crate::domain::{ids, now_ms};
use sqlx::any::AnyRow;
use sqlx::Row;

/// The two leased queues: inbound turns and outbox sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimQueue {
    Inbound,
    Outbox,
}

/// An inbound message as stored.
#[derive(Debug, Clone)]
pub struct Inbound {
    pub id: String,
    pub integration_id: String,
    pub message_sid: String,
    pub sender: String,
    pub recipient: String,
    pub body: String,
    /// JSON array of `{url, content_type}`.
    pub media: Option<String>,
    pub profile_name: Option<String>,
    pub claim_token: String,
    pub attempts: i64,
    pub created_at: i64,
    /// Set on timer rows: the conversation that asked to be woken.
    pub conversation: Option<String>,
}

impl Inbound {
    pub fn conversation_id(&self) -> Option<&str> {
        self.conversation.as_deref()
    }
}

/// A new inbound message to record.
#[derive(Debug, Clone)]
pub struct NewInbound<'a> {
    pub integration_id: &'a str,
    pub message_sid: &'a str,
    pub sender: &'a str,
    pub recipient: &'a str,
    pub body: &'a str,
    pub media: Option<String>,
    pub profile_name: Option<&'a str>,
}

pub(crate) fn text(row: &AnyRow, col: &str) -> String {
    row.try_get::<Option<String>, _>(col)
        .ok()
        .flatten()
        .unwrap_or_default()
}

pub(crate) fn opt_text(row: &AnyRow, col: &str) -> Option<String> {
    row.try_get::<Option<String>, _>(col).ok().flatten()
}

pub(crate) fn int(row: &AnyRow, col: &str) -> i64 {
    row.try_get::<Option<i64>, _>(col)
        .ok()
        .flatten()
        .unwrap_or_default()
}

impl Db {
    /// Records an inbound message; `false` when this MessageSid was already recorded (a retry).
    pub async fn record_inbound(&self, m: &NewInbound<'_>) -> Result<bool, sqlx::Error> {
        let sql = Sql::new(
            "INSERT INTO inbound (id, integration_id, message_sid, sender, recipient, body, media, profile_name, \
             status, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', $9) \
             ON CONFLICT (integration_id, message_sid) DO NOTHING",
        )
        .arg(ids::new_id())
        .arg(m.integration_id)
        .arg(m.message_sid)
        .arg(m.sender)
        .arg(m.recipient)
        .arg(m.body)
        .arg(m.media.clone())
        .arg(m.profile_name)
        .arg(now_ms());
        Ok(self.exec(&sql).await? == 1)
    }

    /// Claims up to `limit` inbound messages, each the oldest unfinished one of its sender (so
    /// no two of one sender), under a lease of `lease_ms`. An expired lease (a crashed worker)
    /// makes a message claimable again.
    pub async fn claim_inbound(
        &self,
        lease_ms: i64,
        limit: usize,
    ) -> Result<Vec<Inbound>, sqlx::Error> {
        let now = now_ms();
        let token = ids::new_id();
        let lock = match self.backend {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let sql = Sql::new(format!(
            "UPDATE inbound SET status = 'processing', claim_token = $1, lease_until = $2, attempts = attempts + 1 \
             WHERE id IN (SELECT i.id FROM inbound i \
               WHERE i.status IN ('pending', 'processing') AND (i.status = 'pending' OR i.lease_until < $3) AND i.created_at <= $3 \
               AND NOT EXISTS (SELECT 1 FROM inbound j WHERE j.integration_id = i.integration_id \
                 AND j.sender = i.sender AND j.status IN ('pending', 'processing') \
                 AND (j.created_at < i.created_at OR (j.created_at = i.created_at AND j.id < i.id))) \
               ORDER BY i.created_at, i.id LIMIT $4{lock}) \
             AND (status = 'pending' OR lease_until < $3) \
             RETURNING id, integration_id, message_sid, sender, recipient, body, media, profile_name, claim_token, \
               attempts, created_at, conversation_id"
        ))
        .arg(token)
        .arg(now + lease_ms)
        .arg(now)
        .arg(limit as i64);
        let rows = self.write_returning(&sql).await?;
        Ok(rows
            .iter()
            .map(|r| Inbound {
                id: text(r, "id"),
                integration_id: text(r, "integration_id"),
                message_sid: text(r, "message_sid"),
                sender: text(r, "sender"),
                recipient: text(r, "recipient"),
                body: text(r, "body"),
                media: opt_text(r, "media"),
                profile_name: opt_text(r, "profile_name"),
                claim_token: text(r, "claim_token"),
                attempts: int(r, "attempts"),
                created_at: int(r, "created_at"),
                conversation: opt_text(r, "conversation_id"),
            })
            .collect())
    }

    /// Extends a claim's lease to `until_ms`; `false` when the claim is no longer ours.
    pub async fn renew_claim(
        &self,
        queue: ClaimQueue,
        id: &str,
        token: &str,
        until_ms: i64,
    ) -> Result<bool, sqlx::Error> {
        let (table, status) = match queue {
            ClaimQueue::Inbound => ("inbound", "processing"),
            ClaimQueue::Outbox => ("outbox", "sending"),
        };
        let sql = Sql::new(format!(
            "UPDATE {table} SET lease_until = $1 WHERE id = $2 AND claim_token = $3 AND status = '{status}'"
        ))
        .arg(until_ms)
        .arg(id)
        .arg(token);
        Ok(self.exec(&sql).await? == 1)
    }

    /// Marks a claimed message finished without a reply (reset keyword, no bot, blocked).
    pub async fn finish_inbound(
        &self,
        id: &str,
        token: &str,
        error: Option<&str>,
    ) -> Result<bool, sqlx::Error> {
        let sql = Sql::new(
            "UPDATE inbound SET status = 'done', error = $1 WHERE id = $2 AND claim_token = $3",
        )
        .arg(error)
        .arg(id)
        .arg(token);
        Ok(self.exec(&sql).await? == 1)
    }

    /// The live conversation of a sender, if its last activity is within `duration_ms`.
    pub async fn live_session(
        &self,
        integration_id: &str,
        address: &str,
        duration_ms: i64,
        now: i64,
    ) -> Result<Option<String>, sqlx::Error> {
        let sql = Sql::new(
            "SELECT s.conversation_id FROM sessions s JOIN conversations c ON c.id = s.conversation_id \
             WHERE s.integration_id = $1 AND s.address = $2 AND s.last_activity_at >= $3",
        )
        .arg(integration_id)
        .arg(address)
        .arg(now - duration_ms);
        Ok(self
            .fetch_optional(&sql)
            .await?
            .map(|r| text(&r, "conversation_id")))
    }

    /// Points a sender's session at `conversation_id` and slides its activity time.
    pub async fn touch_session(
        &self,
        integration_id: &str,
        address: &str,
        conversation_id: &str,
        now: i64,
    ) -> Result<(), sqlx::Error> {
        let session = super::outbox::Session {
            integration_id,
            address,
            at: now,
        };
        let sql = touch_session(&session, conversation_id);
        self.exec(&sql).await.map(|_| ())
    }

    /// Ends a sender's session: the next message starts a new conversation.
    pub async fn end_session(
        &self,
        integration_id: &str,
        address: &str,
    ) -> Result<(), sqlx::Error> {
        let sql = Sql::new("DELETE FROM sessions WHERE integration_id = $1 AND address = $2")
            .arg(integration_id)
            .arg(address);
        self.exec(&sql).await.map(|_| ())
    }

    pub async fn set_opt_out(
        &self,
        integration_id: &str,
        address: &str,
        opted_out: bool,
    ) -> Result<(), sqlx::Error> {
        let sql = if opted_out {
            Sql::new(
                "INSERT INTO opt_outs (integration_id, address, created_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (integration_id, address) DO NOTHING",
            )
            .arg(integration_id)
            .arg(address)
            .arg(now_ms())
        } else {
            Sql::new("DELETE FROM opt_outs WHERE integration_id = $1 AND address = $2")
                .arg(integration_id)
                .arg(address)
        };
        self.exec(&sql).await.map(|_| ())
    }

    pub async fn is_opted_out(
        &self,
        integration_id: &str,
        address: &str,
    ) -> Result<bool, sqlx::Error> {
        let sql = Sql::new("SELECT 1 FROM opt_outs WHERE integration_id = $1 AND address = $2")
            .arg(integration_id)
            .arg(address);
        Ok(self.fetch_optional(&sql).await?.is_some())
    }

    /// Counts inbound messages by status, for tests and metrics.
    pub async fn inbound_count(&self, status: &str) -> Result<i64, sqlx::Error> {
        let sql = Sql::new("SELECT COUNT(*) AS n FROM inbound WHERE status = $1").arg(status);
        Ok(self
            .fetch_optional(&sql)
            .await?
            .map(|r| int(&r, "n"))
            .unwrap_or(0))
    }
}

/// Points a sender's session at `conversation_id`, active at `s.at` (insert or slide).
pub(crate) fn touch_session(s: &super::outbox::Session<'_>, conversation_id: &str) -> Sql {
    Sql::new(
        "INSERT INTO sessions (integration_id, address, conversation_id, last_activity_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (integration_id, address) DO UPDATE SET conversation_id = $3, last_activity_at = $4",
    )
    .arg(s.integration_id)
    .arg(s.address)
    .arg(conversation_id)
    .arg(s.at)
}
