//! The transactional outbox: rows are written only through the one door
//! ([`super::outgoing`]), with the message they send, so a reply exists exactly once.
//!
//! Delivery claims the oldest due row of each recipient under a lease (parts and replies go out
//! in order, each after Twilio accepted the previous one). `sending_since` marks a row in flight
//! before the Twilio call: a claim that finds it already set knows an earlier attempt may have
//! reached Twilio and must reconcile against Twilio's message list before sending again.
use super::channel::{int, opt_text, returned_pairs, text};
use super::{Backend, Db, Param, Sql};
use crate::domain::delivery::MessageStatus;
use crate::domain::{ids, now_ms};

/// One outgoing message part to enqueue.
#[derive(Debug, Clone)]
pub struct NewOutbox {
    pub integration_id: String,
    /// The channel that carries it (see [`crate::channel::Channels`]).
    pub channel: String,
    pub conversation_id: Option<String>,
    pub message_id: Option<String>,
    pub part: i64,
    pub recipient: String,
    pub sender: String,
    pub body: String,
    /// Media URLs sent with this part.
    pub media: Vec<String>,
    pub segments: i64,
    pub encoding: &'static str,
    /// The provider id of the inbound message whose turn wrote this row, if one did.
    pub correlation_id: Option<String>,
    /// The W3C `traceparent` of the span that wrote it (traces exported only); the one door
    /// fills it from the writer's span (see [`crate::telemetry`]).
    pub trace_parent: Option<String>,
    /// The template (JSON `{"contentSid", "contentVariables"}`) given with the call that wrote
    /// the row, for a send outside WhatsApp's window.
    pub template: Option<String>,
}

/// A claimed outbox row.
#[derive(Debug, Clone)]
pub struct OutboxRow {
    pub id: String,
    pub integration_id: String,
    pub channel: String,
    pub recipient: String,
    pub sender: String,
    pub body: String,
    pub media: Vec<String>,
    pub claim_token: String,
    pub attempts: i64,
    /// The recipient is in the opt-out ledger (read with the claim).
    pub recipient_opted_out: bool,
    /// Set when an earlier attempt may have reached Twilio (crash or timeout mid-send).
    pub in_flight_since: Option<i64>,
    pub conversation_id: Option<String>,
    pub correlation_id: Option<String>,
    /// The `traceparent` the send continues (see [`NewOutbox::trace_parent`]).
    pub trace_parent: Option<String>,
    /// When the row was written (ms): the start of its delivery latency.
    pub created_at: i64,
    /// See [`NewOutbox::template`].
    pub template: Option<String>,
}

impl Db {
    /// Claims up to `limit` due rows, each the oldest unsent row of its recipient (so no two of
    /// one recipient, and parts go out in order).
    pub async fn claim_outbox(
        &self,
        lease_ms: i64,
        limit: usize,
    ) -> Result<Vec<OutboxRow>, sqlx::Error> {
        let now = now_ms();
        let sql = self.claim_outbox_statement(now, lease_ms, limit);
        let rows = self.write_returning(&sql).await?;
        Ok(rows
            .iter()
            .map(|r| {
                let since = int(r, "sending_since");
                OutboxRow {
                    id: text(r, "id"),
                    integration_id: text(r, "integration_id"),
                    channel: text(r, "channel"),
                    recipient: text(r, "recipient"),
                    sender: text(r, "sender"),
                    body: text(r, "body"),
                    media: opt_text(r, "media")
                        .and_then(|m| serde_json::from_str(&m).ok())
                        .unwrap_or_default(),
                    claim_token: text(r, "claim_token"),
                    attempts: int(r, "attempts"),
                    recipient_opted_out: int(r, "opted_out") > 0,
                    in_flight_since: (since != now).then_some(since),
                    conversation_id: opt_text(r, "conversation_id"),
                    correlation_id: opt_text(r, "correlation_id"),
                    trace_parent: opt_text(r, "trace_parent"),
                    created_at: int(r, "created_at"),
                    template: opt_text(r, "template"),
                }
            })
            .collect())
    }

    /// The statement [`Self::claim_outbox`] runs at `now` (public so that tests can look at
    /// its plan).
    pub fn claim_outbox_statement(&self, now: i64, lease_ms: i64, limit: usize) -> Sql {
        let (lock, per_row) = (self.backend.skip_locked(), self.backend.per_row());
        Sql::new(format!(
            "UPDATE outbox SET status = 'sending', claim_token = $1, lease_until = $2, attempts = attempts + 1, \
               sending_since = COALESCE(sending_since, $3), updated_at = $3 \
             WHERE id IN (SELECT o.id FROM outbox o \
               WHERE o.status IN ('pending', 'sending') \
               AND ((o.status = 'pending' AND o.next_attempt_at <= $3) OR (o.status = 'sending' AND o.lease_until < $3)) \
               AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.integration_id = o.integration_id \
                 AND p.recipient = o.recipient AND p.status IN ('pending', 'sending') \
                 AND (p.created_at < o.created_at OR (p.created_at = o.created_at AND p.id < o.id)){per_row}) \
               ORDER BY o.next_attempt_at, o.created_at, o.id LIMIT $4{lock}) \
             AND (status = 'pending' OR lease_until < $3) \
             RETURNING id, integration_id, channel, recipient, sender, body, media, claim_token, attempts, sending_since, \
               conversation_id, correlation_id, trace_parent, created_at, template, \
               (SELECT COUNT(*) FROM opt_outs x WHERE x.integration_id = outbox.integration_id \
                 AND x.address = outbox.recipient) AS opted_out"
        ))
        .arg(ids::new_id())
        .arg(now + lease_ms)
        .arg(now)
        .arg(limit as i64)
    }

    /// Whether a provider message id is recorded on an outbox row other than `except_id`.
    pub async fn outbox_sid_recorded(
        &self,
        sid: &str,
        except_id: &str,
    ) -> Result<bool, sqlx::Error> {
        let sql = Sql::new("SELECT 1 AS one FROM outbox WHERE provider_sid = $1 AND id <> $2")
            .arg(sid)
            .arg(except_id);
        Ok(self.fetch_optional(&sql).await?.is_some())
    }

    /// The provider accepted the message. `false` when the claim was lost meanwhile.
    pub async fn outbox_sent(
        &self,
        id: &str,
        token: &str,
        sid: &str,
        status: &str,
    ) -> Result<bool, sqlx::Error> {
        let sent = Sent {
            id: id.to_owned(),
            token: token.to_owned(),
            sid: sid.to_owned(),
            status: status.to_owned(),
        };
        let done = self.writes.sent.submit(sent).await?;
        if done.successor_waits {
            self.outbox_claimable.notify_one();
        }
        Ok(done.ours)
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

    /// The error a row deferred by its number's send rate carries.
    pub const RATE_LIMITED: &'static str = "rate limited";

    /// Makes the integration's rows deferred by its send rate due now; called when the rate
    /// changes, so a backlog paced by an old (mistaken) rate does not keep waiting for it.
    pub async fn outbox_release_rate_limited(
        &self,
        integration_id: &str,
    ) -> Result<u64, sqlx::Error> {
        let now = now_ms();
        let sql = Sql::new(
            "UPDATE outbox SET next_attempt_at = $1, updated_at = $1 \
             WHERE integration_id = $2 AND status = 'pending' AND next_attempt_at > $1 \
             AND error_message = $3",
        )
        .arg(now)
        .arg(integration_id)
        .arg(Self::RATE_LIMITED);
        let released = self.exec(&sql).await?;
        if released > 0 {
            self.outbox_claimable.notify_one();
        }
        Ok(released)
    }

    /// Gives up on a row, recording the provider's code and a human reason.
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
        let failed = self.exec(&sql).await?;
        if failed > 0 {
            // A later row to the recipient may wait behind this one. Failures are rare, so
            // they do not ask.
            self.outbox_claimable.notify_one();
        }
        Ok(())
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
        let sql = Sql::new("SELECT provider_status FROM outbox WHERE provider_sid = $1").arg(sid);
        Ok(self
            .fetch_optional(&sql)
            .await?
            .map(|r| opt_text(&r, "provider_status")))
    }

    /// Moves a message's delivery status forward to `to`: the row changes only if its current
    /// status ranks below `to` (or is unknown), so callbacks that arrive late or concurrently
    /// can never move it backwards. `false` when nothing changed.
    /// Only `integration_id`'s messages are touched: a callback signed by one integration
    /// never moves another's message.
    pub async fn outbox_advance_status(
        &self,
        integration_id: &str,
        sid: &str,
        to: MessageStatus,
        error_code: Option<i64>,
    ) -> Result<bool, sqlx::Error> {
        let change = StatusChange {
            integration_id: integration_id.to_owned(),
            sid: sid.to_owned(),
            to,
            error_code,
        };
        self.writes.statuses.submit(change).await
    }

    /// The `traceparent` stored with the outbox row that holds the provider message `sid`: the
    /// parent of the span applying a status callback for it.
    pub async fn outbox_trace_parent(
        &self,
        integration_id: &str,
        sid: &str,
    ) -> Result<Option<String>, sqlx::Error> {
        let sql = Sql::new(
            "SELECT trace_parent FROM outbox WHERE provider_sid = $1 AND integration_id = $2",
        )
        .arg(sid)
        .arg(integration_id);
        Ok(self
            .fetch_optional(&sql)
            .await?
            .and_then(|r| opt_text(&r, "trace_parent")))
    }

    /// Outbox rows of a conversation in send order: (body, status, twilio status, segments).
    pub async fn outbox_for_conversation(
        &self,
        conversation_id: &str,
    ) -> Result<Vec<(String, String, Option<String>, i64)>, sqlx::Error> {
        let sql = Sql::new("SELECT body, status, provider_status, segments FROM outbox WHERE conversation_id = $1 ORDER BY created_at, id")
            .arg(conversation_id);
        let rows = self.fetch_all(&sql).await?;
        Ok(rows
            .iter()
            .map(|r| {
                (
                    text(r, "body"),
                    text(r, "status"),
                    opt_text(r, "provider_status"),
                    int(r, "segments"),
                )
            })
            .collect())
    }
}

/// One INSERT for all `rows`. Ids are made in row order, so parts of one reply (created in
/// the same millisecond) keep their order by `(created_at, id)`.
pub(super) fn insert_outbox(backend: Backend, rows: &[NewOutbox], now: i64) -> Sql {
    let mut sql = Sql::new(
        "INSERT INTO outbox (id, integration_id, channel, conversation_id, message_id, part, recipient, sender, \
         body, media, segments, encoding, status, next_attempt_at, created_at, updated_at, correlation_id, template, \
         trace_parent) ",
    );
    sql.json_rows(
        backend,
        rows.iter().map(|o| {
            vec![
                Param::from(ids::new_id()),
                o.integration_id.as_str().into(),
                o.channel.as_str().into(),
                o.conversation_id.clone().into(),
                o.message_id.clone().into(),
                o.part.into(),
                o.recipient.as_str().into(),
                o.sender.as_str().into(),
                o.body.as_str().into(),
                (!o.media.is_empty())
                    .then(|| serde_json::to_string(&o.media).unwrap_or_default())
                    .into(),
                o.segments.into(),
                o.encoding.into(),
                "pending".into(),
                now.into(),
                now.into(),
                now.into(),
                o.correlation_id.clone().into(),
                o.template.clone().into(),
                o.trace_parent.clone().into(),
            ]
        }),
    );
    sql
}

/// Twilio's answer to one send.
#[derive(Debug, Clone)]
pub struct Sent {
    pub id: String,
    pub token: String,
    pub sid: String,
    pub status: String,
}

/// What recording one accepted send did.
#[derive(Debug, Clone, Copy, Default)]
pub struct SentDone {
    /// The row was still ours (its claim not lost meanwhile).
    pub ours: bool,
    /// Another open row to the same recipient waits behind this one: it has just become
    /// claimable.
    pub successor_waits: bool,
}

/// Records a batch of accepted sends in one statement.
pub(super) async fn record_sent(
    pool: sqlx::AnyPool,
    backend: Backend,
    batch: Vec<Sent>,
) -> Result<Vec<SentDone>, sqlx::Error> {
    let mut sql = Sql::new("WITH v (vid, vtoken, vsid, vstatus) AS (");
    sql.json_rows(backend, batch.iter().map(|s| {
        vec![
            Param::from(s.id.as_str()),
            s.token.as_str().into(),
            s.sid.as_str().into(),
            s.status.as_str().into(),
        ]
    }))
    .push(
        ") UPDATE outbox SET status = 'sent', provider_sid = v.vsid, \
         provider_status = COALESCE(outbox.provider_status, v.vstatus), updated_at = ",
    )
    .bind(now_ms())
    .push(
        // Whether another open row of the recipient waits: the delivery loop is told (see
        // `Db::outbox_claimable`) instead of claiming again after every send, where at a low
        // rate the claim found nothing. The status test is the open-rows index's own condition
        // (`outbox_recipient_open`), without which SQLite cannot use it.
        " FROM v WHERE outbox.id = v.vid AND outbox.claim_token = v.vtoken RETURNING id, claim_token, \
         CASE WHEN EXISTS (SELECT 1 FROM outbox p WHERE p.integration_id = outbox.integration_id \
           AND p.recipient = outbox.recipient AND p.status IN ('pending', 'sending') AND p.id <> outbox.id) \
         THEN 1 ELSE 0 END AS waits",
    );
    let returned = sql.query().fetch_all(&pool).await?;
    let ours = returned_pairs(&returned, "id", "claim_token");
    let waiting: std::collections::HashSet<String> = returned
        .iter()
        .filter(|r| int(r, "waits") > 0)
        .map(|r| text(r, "id"))
        .collect();
    Ok(batch
        .iter()
        .map(|s| SentDone {
            ours: ours.contains(&(s.id.clone(), s.token.clone())),
            successor_waits: waiting.contains(&s.id),
        })
        .collect())
}

/// A status callback to apply.
#[derive(Debug, Clone)]
pub struct StatusChange {
    pub integration_id: String,
    pub sid: String,
    pub to: MessageStatus,
    pub error_code: Option<i64>,
}

/// Applies a batch of status callbacks in one statement. Of several callbacks for one message
/// in the batch only the furthest counts (an UPDATE joins each row once). `true` for each
/// callback that moved its message.
pub(super) async fn record_statuses(
    pool: sqlx::AnyPool,
    backend: Backend,
    batch: Vec<StatusChange>,
) -> Result<Vec<bool>, sqlx::Error> {
    let mut furthest: std::collections::HashMap<(&str, &str), &StatusChange> =
        std::collections::HashMap::new();
    for change in &batch {
        let best = furthest
            .entry((change.integration_id.as_str(), change.sid.as_str()))
            .or_insert(change);
        if change.to.rank() > best.to.rank() {
            *best = change;
        }
    }
    let mut sql = Sql::new("WITH v (vint, vsid, vstatus, vrank, vcode) AS (");
    sql.json_rows(backend, furthest.values().map(|c| {
        vec![
            Param::from(c.integration_id.as_str()),
            c.sid.as_str().into(),
            c.to.as_str().into(),
            i64::from(c.to.rank()).into(),
            c.error_code.into(),
        ]
    }))
    .push(
        ") UPDATE outbox SET provider_status = v.vstatus, error_code = COALESCE(v.vcode, outbox.error_code), \
         updated_at = ",
    )
    .bind(now_ms())
    .push(&format!(
        " FROM v WHERE outbox.provider_sid = v.vsid AND outbox.integration_id = v.vint AND {} < v.vrank RETURNING provider_sid, provider_status",
        MessageStatus::rank_sql("outbox.provider_status")
    ));
    let returned = sql.query().fetch_all(&pool).await?;
    let moved = returned_pairs(&returned, "provider_sid", "provider_status");
    Ok(batch
        .iter()
        .map(|c| moved.contains(&(c.sid.clone(), c.to.as_str().to_owned())))
        .collect())
}

impl Db {
    /// What waits in the queues, for the `chatwire_queue_depth` gauges: stored messages not
    /// yet answered, outbox rows not yet tried (or being sent), and rows waiting for a retry.
    pub async fn queue_depths(&self) -> Result<crate::metrics::QueueDepths, sqlx::Error> {
        let sql = Sql::new(
            "SELECT \
               (SELECT COUNT(*) FROM inbound WHERE status IN ('pending', 'processing')) AS turns, \
               (SELECT COUNT(*) FROM outbox WHERE (status = 'pending' AND attempts = 0) OR status = 'sending') AS fresh, \
               (SELECT COUNT(*) FROM outbox WHERE status = 'pending' AND attempts > 0) AS retrying",
        );
        let row = self.fetch_optional(&sql).await?;
        Ok(
            row.map_or_else(Default::default, |r| crate::metrics::QueueDepths {
                pending_turns: int(&r, "turns"),
                pending_sends: int(&r, "fresh"),
                retrying_sends: int(&r, "retrying"),
            }),
        )
    }
}
