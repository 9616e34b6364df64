//! Storage verbs of the inbound side: inbound messages (of every channel), sessions, opt-outs.
//!
//! An inbound message is written once per (integration, MessageSid) before Twilio gets its 200,
//! then claimed by a worker under a lease. A sender's messages are claimed strictly one at a time
//! and in arrival order: only the oldest unfinished message of a sender can be claimed, so a
//! conversation never runs two turns at once, on one replica or several.
use super::{Backend, Db, Param, Sql};
use crate::domain::{ids, now_ms};
use sqlx::any::AnyRow;
use sqlx::Row;
use std::collections::HashSet;

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
    /// The channel it arrived on; replies go out on the same one.
    pub channel: String,
    pub message_sid: String,
    pub sender: String,
    pub recipient: String,
    pub body: String,
    /// JSON array of `{url, content_type}`.
    pub media: Option<String>,
    pub profile_name: Option<String>,
    /// The participant who wrote, when `sender` names a shared thread (a Conversation).
    pub author: Option<String>,
    pub claim_token: String,
    pub attempts: i64,
    pub created_at: i64,
    /// Set on timer rows: the conversation that asked to be woken.
    pub conversation: Option<String>,
    /// The W3C `traceparent` of the webhook that stored it, when traces are exported: the
    /// turn continues that trace (see [`crate::telemetry`]).
    pub trace_parent: Option<String>,
}

impl Inbound {
    pub fn conversation_id(&self) -> Option<&str> {
        self.conversation.as_deref()
    }
}

/// What a turn needs to know about its sender (see [`Db::sender_state`]).
#[derive(Debug, Clone, Default)]
pub struct SenderState {
    pub opted_out: bool,
    pub live: Option<LiveConversation>,
    /// The sender's open hand-off: a human owns the conversation (or is being waited for).
    pub handoff: Option<OpenHandoff>,
}

/// An open hand-off, as a turn needs it.
#[derive(Debug, Clone)]
pub struct OpenHandoff {
    pub id: String,
    pub state: super::handoff::HandoffState,
    pub conversation_id: String,
}

/// A sender's live conversation.
#[derive(Debug, Clone)]
pub struct LiveConversation {
    pub id: String,
    /// JSON, as the engine left it.
    pub engine_state: Option<String>,
    pub contact_id: Option<String>,
}

/// A new inbound message to record.
#[derive(Debug, Clone)]
pub struct NewInbound {
    pub integration_id: String,
    pub channel: String,
    pub message_sid: String,
    pub sender: String,
    pub recipient: String,
    pub body: String,
    pub media: Option<String>,
    pub profile_name: Option<String>,
    /// The participant who wrote, when `sender` names a shared thread.
    pub author: Option<String>,
    /// When the provider received it, for a message recorded late (the backfill): it then
    /// takes its place in its sender's order. `None`: now.
    pub received_at: Option<i64>,
    /// The W3C `traceparent` of the span that received it (traces exported only).
    pub trace_parent: Option<String>,
}

fn inbound_of(r: &AnyRow) -> Inbound {
    Inbound {
        id: text(r, "id"),
        integration_id: text(r, "integration_id"),
        channel: text(r, "channel"),
        message_sid: text(r, "message_sid"),
        sender: text(r, "sender"),
        recipient: text(r, "recipient"),
        body: text(r, "body"),
        media: opt_text(r, "media"),
        profile_name: opt_text(r, "profile_name"),
        author: opt_text(r, "author"),
        claim_token: text(r, "claim_token"),
        attempts: int(r, "attempts"),
        created_at: int(r, "created_at"),
        conversation: opt_text(r, "conversation_id"),
        trace_parent: opt_text(r, "trace_parent"),
    }
}

pub(crate) fn text(row: &AnyRow, col: &str) -> String {
    row.try_get::<Option<String>, _>(col)
        .ok()
        .flatten()
        .unwrap_or_default()
}

/// The `(a, b)` column pairs of rows a write returned: which of a batch's rows it touched.
pub(crate) fn returned_pairs(rows: &[AnyRow], a: &str, b: &str) -> HashSet<(String, String)> {
    rows.iter().map(|r| (text(r, a), text(r, b))).collect()
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
    /// The column that orders inbound rows of one millisecond: the order the database inserted
    /// them, whichever replica inserted them (a sequence on PostgreSQL; SQLite's rowid, which
    /// it hands out in insertion order and which ends every index entry).
    pub(crate) fn inbound_seq(&self) -> &'static str {
        match self.backend {
            Backend::Postgres => "seq",
            Backend::Sqlite => "rowid",
        }
    }

    /// Records an inbound message; `false` when this MessageSid was already recorded (a retry).
    /// Messages arriving together are written by one statement (see [`super::batch`]).
    pub async fn record_inbound(&self, m: NewInbound) -> Result<bool, sqlx::Error> {
        self.writes.inbound.submit(m).await
    }

    /// Claims up to `limit` inbound messages, each the oldest unfinished one of its sender (so
    /// no two of one sender), under a lease of `lease_ms`. An expired lease (a crashed worker)
    /// makes a message claimable again.
    pub async fn claim_inbound(
        &self,
        lease_ms: i64,
        limit: usize,
    ) -> Result<Vec<Inbound>, sqlx::Error> {
        let sql = self.claim_inbound_statement(now_ms(), lease_ms, limit);
        let rows = self.write_returning(&sql).await?;
        Ok(rows.iter().map(inbound_of).collect())
    }

    /// The statement [`Self::claim_inbound`] runs at `now` (public so that tests can look at
    /// its plan).
    pub fn claim_inbound_statement(&self, now: i64, lease_ms: i64, limit: usize) -> Sql {
        let token = ids::new_id();
        let (lock, per_row) = (self.backend.skip_locked(), self.backend.per_row());
        let seq = self.inbound_seq();
        Sql::new(format!(
            "UPDATE inbound SET status = 'processing', claim_token = $1, lease_until = $2, attempts = attempts + 1 \
             WHERE id IN (SELECT i.id FROM inbound i \
               WHERE i.status IN ('pending', 'processing') AND (i.status = 'pending' OR i.lease_until < $3) AND i.created_at <= $3 \
               AND NOT EXISTS (SELECT 1 FROM inbound j WHERE j.integration_id = i.integration_id \
                 AND j.sender = i.sender AND j.status IN ('pending', 'processing') \
                 AND (j.created_at < i.created_at OR (j.created_at = i.created_at AND j.{seq} < i.{seq})){per_row}) \
               ORDER BY i.created_at, i.{seq} LIMIT $4{lock}) \
             AND (status = 'pending' OR lease_until < $3) \
             RETURNING id, integration_id, channel, message_sid, sender, recipient, body, media, profile_name, author, claim_token, \
               attempts, created_at, conversation_id, trace_parent"
        ))
        .arg(token)
        .arg(now + lease_ms)
        .arg(now)
        .arg(limit as i64)
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

    /// The sender's other pending messages that are due, oldest first (timers included): what
    /// a burst of quick messages may fold into the claimed one's turn.
    pub async fn pending_of_sender(
        &self,
        integration_id: &str,
        sender: &str,
        except_id: &str,
        now: i64,
    ) -> Result<Vec<Inbound>, sqlx::Error> {
        let seq = self.inbound_seq();
        let sql = Sql::new(format!(
            "SELECT id, integration_id, channel, message_sid, sender, recipient, body, media, profile_name, author, \
             claim_token, attempts, created_at, conversation_id, trace_parent FROM inbound \
             WHERE integration_id = $1 AND sender = $2 AND status IN ('pending', 'processing') \
             AND status = 'pending' AND created_at <= $3 AND id <> $4 ORDER BY created_at, {seq}"
        ))
        .arg(integration_id)
        .arg(sender)
        .arg(now)
        .arg(except_id);
        Ok(self.fetch_all(&sql).await?.iter().map(inbound_of).collect())
    }

    /// Keeps a claimed message claimed, without running it, until `until_ms`; it is claimed
    /// again after that. The wait does not count as an attempt.
    pub async fn defer_claim(
        &self,
        id: &str,
        token: &str,
        until_ms: i64,
    ) -> Result<bool, sqlx::Error> {
        let sql = Sql::new(
            "UPDATE inbound SET lease_until = $1, attempts = attempts - 1 \
             WHERE id = $2 AND claim_token = $3 AND status = 'processing'",
        )
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
        let finished = self.exec(&sql).await? == 1;
        if finished {
            // A later message of the sender may wait behind this one. These paths are rare
            // (opt-outs, hand-offs, failures), so they do not ask.
            self.inbound_claimable.notify_one();
        }
        Ok(finished)
    }

    /// Everything a turn needs to know about its sender, in one read: whether they opted out,
    /// and their live conversation (last activity within `duration_ms`) with its engine state.
    pub async fn sender_state(
        &self,
        integration_id: &str,
        address: &str,
        duration_ms: i64,
        now: i64,
    ) -> Result<SenderState, sqlx::Error> {
        let sql = Sql::new(
            "SELECT (SELECT COUNT(*) FROM opt_outs o WHERE o.integration_id = $1 AND o.address = $2) AS opted_out, \
             c.id AS conversation_id, c.engine_state, c.contact_id, \
             h.id AS handoff_id, h.state AS handoff_state, h.conversation_id AS handoff_conversation \
             FROM (SELECT 1 AS one) AS here \
             LEFT JOIN sessions s ON s.integration_id = $1 AND s.address = $2 AND s.last_activity_at >= $3 \
             LEFT JOIN conversations c ON c.id = s.conversation_id \
             LEFT JOIN handoffs h ON h.integration_id = $1 AND h.person = $2 \
               AND h.state IN ('queued', 'agent', 'leaving_message')",
        )
        .arg(integration_id)
        .arg(address)
        .arg(now - duration_ms);
        let Some(row) = self.fetch_optional(&sql).await? else {
            return Ok(SenderState::default());
        };
        Ok(SenderState {
            opted_out: int(&row, "opted_out") > 0,
            live: opt_text(&row, "conversation_id").map(|id| LiveConversation {
                id,
                engine_state: opt_text(&row, "engine_state"),
                contact_id: opt_text(&row, "contact_id"),
            }),
            handoff: opt_text(&row, "handoff_id").map(|id| OpenHandoff {
                id,
                state: super::handoff::HandoffState::parse(&text(&row, "handoff_state"))
                    .unwrap_or(super::handoff::HandoffState::Queued),
                conversation_id: text(&row, "handoff_conversation"),
            }),
        })
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
        let sql = touch_session(integration_id, address, conversation_id, now);
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

    /// Ends a thread's session once what was written to it is sent: its activity goes back to
    /// the epoch, so the person's next message starts a new conversation at once, and the
    /// threads' lifecycle ([`Db::idle_threads`]) ends the provider's thread after the last
    /// reply left (a closed Conversation takes no more messages).
    pub async fn end_thread_session(
        &self,
        integration_id: &str,
        address: &str,
    ) -> Result<(), sqlx::Error> {
        let sql = Sql::new(
            "UPDATE sessions SET last_activity_at = 0 WHERE integration_id = $1 AND address = $2",
        )
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

/// Points a sender's session at `conversation_id`, active at `at` (insert or slide).
fn touch_session(integration_id: &str, address: &str, conversation_id: &str, at: i64) -> Sql {
    Sql::new(
        "INSERT INTO sessions (integration_id, address, conversation_id, last_activity_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (integration_id, address) DO UPDATE SET conversation_id = $3, last_activity_at = $4",
    )
    .arg(integration_id)
    .arg(address)
    .arg(conversation_id)
    .arg(at)
}

/// Writes a batch of inbound messages in one statement; `true` for each one that is new. A
/// MessageSid already stored, or repeated within the batch, is a retry: `false`.
pub(super) async fn record_inbound_batch(
    pool: &sqlx::AnyPool,
    backend: Backend,
    batch: Vec<NewInbound>,
) -> Result<Vec<bool>, sqlx::Error> {
    let now = now_ms();
    let mut seen = HashSet::new();
    let firsts: Vec<bool> = batch
        .iter()
        .map(|m| seen.insert((m.integration_id.as_str(), m.message_sid.as_str())))
        .collect();
    let mut sql = Sql::new(
        "INSERT INTO inbound (id, integration_id, channel, message_sid, sender, recipient, body, media, \
         profile_name, author, status, created_at, trace_parent) ",
    );
    // Rows are inserted in arrival order: the database numbers them so (see `inbound_seq`).
    sql.json_rows(backend, batch.iter().zip(&firsts).filter(|(_, first)| **first).map(|(m, _)| {
        vec![
            Param::from(ids::new_id()),
            m.integration_id.as_str().into(),
            m.channel.as_str().into(),
            m.message_sid.as_str().into(),
            m.sender.as_str().into(),
            m.recipient.as_str().into(),
            m.body.as_str().into(),
            m.media.clone().into(),
            m.profile_name.clone().into(),
            m.author.clone().into(),
            "pending".into(),
            m.received_at.unwrap_or(now).min(now).into(),
            m.trace_parent.clone().into(),
        ]
    }))
    .push(" ON CONFLICT (integration_id, message_sid) DO NOTHING RETURNING integration_id, message_sid");
    let returned = sql.query().fetch_all(pool).await?;
    let stored = returned_pairs(&returned, "integration_id", "message_sid");
    Ok(batch
        .iter()
        .zip(firsts)
        .map(|(m, first)| {
            first && stored.contains(&(m.integration_id.clone(), m.message_sid.clone()))
        })
        .collect())
}
