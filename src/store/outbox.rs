//! The transactional outbox: a bot's reply and the rows that will send it are written in one
//! transaction with the inbound message's completion, so a reply exists exactly once.
//!
//! Delivery claims the oldest due row of each recipient under a lease (parts and replies go out
//! in order, each after Twilio accepted the previous one). `sending_since` marks a row in flight
//! before the Twilio call: a claim that finds it already set knows an earlier attempt may have
//! reached Twilio and must reconcile against Twilio's message list before sending again.
use super::channel::{int, opt_text, text, touch_session};
use super::{Backend, Db, Sql};
use crate::channel::twilio::form::MessageStatus;
use crate::domain::{ids, now_ms};

/// One outgoing message part to enqueue.
#[derive(Debug, Clone)]
pub struct NewOutbox {
    pub integration_id: String,
    pub conversation_id: Option<String>,
    pub message_id: Option<String>,
    pub part: i64,
    pub recipient: String,
    pub sender: String,
    pub body: String,
    pub segments: i64,
    pub encoding: &'static str,
}

/// A claimed outbox row.
#[derive(Debug, Clone)]
pub struct OutboxRow {
    pub id: String,
    pub integration_id: String,
    pub recipient: String,
    pub sender: String,
    pub body: String,
    pub claim_token: String,
    pub attempts: i64,
    /// Set when an earlier attempt may have reached Twilio (crash or timeout mid-send).
    pub in_flight_since: Option<i64>,
}

/// A bot message to store with the reply.
#[derive(Debug, Clone)]
pub struct NewBotMessage {
    pub id: String,
    pub text: String,
    pub tokens: Option<i64>,
}

/// The person's message, stored with the turn that answers it.
#[derive(Debug, Clone)]
pub struct UserMessage {
    pub id: String,
    pub text: String,
    pub meta: String,
    pub created_at: i64,
}

/// A sender's session to slide to `at`.
#[derive(Debug, Clone)]
pub struct Session<'a> {
    pub integration_id: &'a str,
    pub address: &'a str,
    pub at: i64,
}

/// Everything one finished turn writes.
#[derive(Debug, Clone)]
pub struct TurnResult<'a> {
    pub inbound_id: &'a str,
    pub claim_token: &'a str,
    pub conversation_id: &'a str,
    pub user_message: Option<UserMessage>,
    pub session: Option<Session<'a>>,
    pub messages: Vec<NewBotMessage>,
    pub outbox: Vec<NewOutbox>,
    pub engine_state: Option<String>,
    pub expires_at: Option<i64>,
    /// (timer id, due time): wake the engine again then, unless the conversation moved on.
    pub timer: Option<(String, i64)>,
}

impl Db {
    /// Writes the reply, its outbox rows and the conversation state, and marks the inbound
    /// message done, all in one transaction. `false` (and nothing written) when the claim was
    /// lost, e.g. the lease expired and another worker took the message.
    pub async fn record_turn(&self, t: &TurnResult<'_>) -> Result<bool, sqlx::Error> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        let done = Sql::new("UPDATE inbound SET status = 'done', conversation_id = $1 WHERE id = $2 AND claim_token = $3")
            .arg(t.conversation_id)
            .arg(t.inbound_id)
            .arg(t.claim_token);
        if done.query().execute(&mut *tx).await?.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        if let Some(u) = &t.user_message {
            Sql::new(
                "INSERT INTO messages (id, conversation_id, type, text, meta, created_at, updated_at) \
                 VALUES ($1, $2, 'user', $3, $4, $5, $5) ON CONFLICT (id) DO NOTHING",
            )
            .arg(u.id.as_str())
            .arg(t.conversation_id)
            .arg(u.text.as_str())
            .arg(u.meta.as_str())
            .arg(u.created_at)
            .query()
            .execute(&mut *tx)
            .await?;
        }
        if let Some(s) = &t.session {
            touch_session(s, t.conversation_id)
                .query()
                .execute(&mut *tx)
                .await?;
        }
        for m in &t.messages {
            let sql = Sql::new(
                "INSERT INTO messages (id, conversation_id, type, text, tokens, created_at, updated_at) \
                 VALUES ($1, $2, 'bot', $3, $4, $5, $5)",
            )
            .arg(m.id.as_str())
            .arg(t.conversation_id)
            .arg(m.text.as_str())
            .arg(m.tokens)
            .arg(now);
            sql.query().execute(&mut *tx).await?;
        }
        for o in &t.outbox {
            insert_outbox(o, now).query().execute(&mut *tx).await?;
        }
        let conv = Sql::new("UPDATE conversations SET engine_state = $1, expires_at = $2, updated_at = $3 WHERE id = $4")
            .arg(t.engine_state.clone())
            .arg(t.expires_at)
            .arg(now)
            .arg(t.conversation_id);
        conv.query().execute(&mut *tx).await?;
        if let Some((sid, at)) = &t.timer {
            // A timer is an inbound row dated at its due time: claims skip it until then, and it
            // never blocks the sender's real messages, which are all dated earlier.
            let timer = Sql::new(
                "INSERT INTO inbound (id, integration_id, message_sid, sender, recipient, body, status, conversation_id, created_at) \
                 SELECT $1, integration_id, $2, sender, recipient, '', 'pending', $3, $4 FROM inbound WHERE id = $5 \
                 ON CONFLICT (integration_id, message_sid) DO NOTHING",
            )
            .arg(ids::new_id())
            .arg(sid.as_str())
            .arg(t.conversation_id)
            .arg(*at)
            .arg(t.inbound_id);
            timer.query().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Enqueues messages outside a turn (HELP answers, `initiate`).
    pub async fn enqueue(&self, rows: &[NewOutbox]) -> Result<(), sqlx::Error> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        for o in rows {
            insert_outbox(o, now).query().execute(&mut *tx).await?;
        }
        tx.commit().await
    }

    /// Claims up to `limit` due rows, each the oldest unsent row of its recipient (so no two of
    /// one recipient, and parts go out in order).
    pub async fn claim_outbox(
        &self,
        lease_ms: i64,
        limit: usize,
    ) -> Result<Vec<OutboxRow>, sqlx::Error> {
        let now = now_ms();
        let lock = match self.backend {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let sql = Sql::new(format!(
            "UPDATE outbox SET status = 'sending', claim_token = $1, lease_until = $2, attempts = attempts + 1, \
               sending_since = COALESCE(sending_since, $3), updated_at = $3 \
             WHERE id IN (SELECT o.id FROM outbox o \
               WHERE o.status IN ('pending', 'sending') \
               AND ((o.status = 'pending' AND o.next_attempt_at <= $3) OR (o.status = 'sending' AND o.lease_until < $3)) \
               AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.integration_id = o.integration_id \
                 AND p.recipient = o.recipient AND p.status IN ('pending', 'sending') \
                 AND (p.created_at < o.created_at OR (p.created_at = o.created_at AND p.id < o.id))) \
               ORDER BY o.next_attempt_at, o.created_at, o.id LIMIT $4{lock}) \
             AND (status = 'pending' OR lease_until < $3) \
             RETURNING id, integration_id, recipient, sender, body, claim_token, attempts, sending_since"
        ))
        .arg(ids::new_id())
        .arg(now + lease_ms)
        .arg(now)
        .arg(limit as i64);
        let rows = self.write_returning(&sql).await?;
        Ok(rows
            .iter()
            .map(|r| {
                let since = int(r, "sending_since");
                OutboxRow {
                    id: text(r, "id"),
                    integration_id: text(r, "integration_id"),
                    recipient: text(r, "recipient"),
                    sender: text(r, "sender"),
                    body: text(r, "body"),
                    claim_token: text(r, "claim_token"),
                    attempts: int(r, "attempts"),
                    in_flight_since: (since != now).then_some(since),
                }
            })
            .collect())
    }

    /// Whether a Twilio message SID is recorded on an outbox row other than `except_id`.
    pub async fn outbox_sid_recorded(
        &self,
        sid: &str,
        except_id: &str,
    ) -> Result<bool, sqlx::Error> {
        let sql = Sql::new("SELECT 1 AS one FROM outbox WHERE twilio_sid = $1 AND id <> $2")
            .arg(sid)
            .arg(except_id);
        Ok(self.fetch_optional(&sql).await?.is_some())
    }

    /// Twilio accepted the message.
    pub async fn outbox_sent(
        &self,
        id: &str,
        token: &str,
        sid: &str,
        status: &str,
    ) -> Result<bool, sqlx::Error> {
        let sql = Sql::new(
            "UPDATE outbox SET status = 'sent', twilio_sid = $1, \
             twilio_status = COALESCE(twilio_status, $2), updated_at = $3 WHERE id = $4 AND claim_token = $5",
        )
        .arg(sid)
        .arg(status)
        .arg(now_ms())
        .arg(id)
        .arg(token);
        Ok(self.exec(&sql).await? == 1)
    }

    /// Try again at `at_ms`. `maybe_sent` keeps the in-flight mark (the request may have reached
    /// Twilio), so the next attempt reconciles first.
    pub async fn outbox_retry(
        &self,
        id: &str,
        token: &str,
        at_ms: i64,
        error: &str,
        maybe_sent: bool,
    ) -> Result<(), sqlx::Error> {
        let sql = Sql::new(format!(
            "UPDATE outbox SET status = 'pending', next_attempt_at = $1, error_message = $2, updated_at = $3{} \
             WHERE id = $4 AND claim_token = $5",
            if maybe_sent { "" } else { ", sending_since = NULL" }
        ))
        .arg(at_ms)
        .arg(error)
        .arg(now_ms())
        .arg(id)
        .arg(token);
        self.exec(&sql).await.map(|_| ())
    }

    /// Gives up on a row, recording Twilio's code and a human reason.
    pub async fn outbox_failed(
        &self,
        id: &str,
        token: &str,
        code: Option<i64>,
        reason: &str,
    ) -> Result<(), sqlx::Error> {
        let sql = Sql::new(
            "UPDATE outbox SET status = 'failed', error_code = $1, error_message = $2, updated_at = $3 \
             WHERE id = $4 AND claim_token = $5",
        )
        .arg(code)
        .arg(reason)
        .arg(now_ms())
        .arg(id)
        .arg(token);
        self.exec(&sql).await.map(|_| ())
    }

    /// Fails every unsent row towards a recipient who opted out.
    pub async fn outbox_fail_recipient(
        &self,
        integration_id: &str,
        recipient: &str,
        reason: &str,
    ) -> Result<u64, sqlx::Error> {
        let sql = Sql::new(
            "UPDATE outbox SET status = 'failed', error_code = 21610, error_message = $1, updated_at = $2 \
             WHERE integration_id = $3 AND recipient = $4 AND status IN ('pending', 'sending') AND status = 'pending'",
        )
        .arg(reason)
        .arg(now_ms())
        .arg(integration_id)
        .arg(recipient);
        self.exec(&sql).await
    }

    /// The current Twilio status of a sent message, by its SID.
    pub async fn outbox_status(&self, sid: &str) -> Result<Option<Option<String>>, sqlx::Error> {
        let sql = Sql::new("SELECT twilio_status FROM outbox WHERE twilio_sid = $1").arg(sid);
        Ok(self
            .fetch_optional(&sql)
            .await?
            .map(|r| opt_text(&r, "twilio_status")))
    }

    /// Moves a message's Twilio status forward to `to`, in one statement: the row changes only
    /// if its current status ranks below `to` (or is unknown), so callbacks that arrive late or
    /// concurrently can never move it backwards. `false` when nothing changed.
    pub async fn outbox_advance_status(
        &self,
        sid: &str,
        to: MessageStatus,
        error_code: Option<i64>,
    ) -> Result<bool, sqlx::Error> {
        let sql = Sql::new(format!(
            "UPDATE outbox SET twilio_status = $1, error_code = COALESCE($2, error_code), updated_at = $3 \
             WHERE twilio_sid = $4 AND {} < $5",
            MessageStatus::rank_sql("twilio_status")
        ))
        .arg(to.as_str())
        .arg(error_code)
        .arg(now_ms())
        .arg(sid)
        .arg(i64::from(to.rank()));
        Ok(self.exec(&sql).await? > 0)
    }

    /// Outbox rows of a conversation in send order: (body, status, twilio status, segments).
    pub async fn outbox_for_conversation(
        &self,
        conversation_id: &str,
    ) -> Result<Vec<(String, String, Option<String>, i64)>, sqlx::Error> {
        let sql = Sql::new("SELECT body, status, twilio_status, segments FROM outbox WHERE conversation_id = $1 ORDER BY created_at, id")
            .arg(conversation_id);
        let rows = self.fetch_all(&sql).await?;
        Ok(rows
            .iter()
            .map(|r| {
                (
                    text(r, "body"),
                    text(r, "status"),
                    opt_text(r, "twilio_status"),
                    int(r, "segments"),
                )
            })
            .collect())
    }
}

fn insert_outbox(o: &NewOutbox, now: i64) -> Sql {
    Sql::new(
        "INSERT INTO outbox (id, integration_id, conversation_id, message_id, part, recipient, sender, body, \
         segments, encoding, status, next_attempt_at, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'pending', $11, $11, $11)",
    )
    .arg(ids::new_id())
    .arg(o.integration_id.as_str())
    .arg(o.conversation_id.clone())
    .arg(o.message_id.clone())
    .arg(o.part)
    .arg(o.recipient.as_str())
    .arg(o.sender.as_str())
    .arg(o.body.as_str())
    .arg(o.segments)
    .arg(o.encoding)
    .arg(now)
}
