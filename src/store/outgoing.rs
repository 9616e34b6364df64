//! The one door for outgoing messages. Whatever writes to a person (a bot's reply to a turn,
//! the HELP answer, `initiate`, a flow started by `flow/execute`, agents' replies and the hand-off
//! notices) records it here: the messages, the outbox rows that will send them, the
//! conversation (new or existing), the session slide, the engine state and its timer, the
//! inbound message's completion, the API call's idempotency key and the conversation's change
//! of owner (see [`super::handoff`]), all in ONE transaction. A crash leaves all of it or none of
//! it, and nothing else writes outbox rows.
//!
//! Writes made at about the same time are committed together (see [`super::batch`]): one
//! statement per table for the whole batch.
use super::channel::returned_pairs;
use super::handoff::{self, HandoffWrite};
use super::outbox::{insert_outbox, NewOutbox};
use super::{Db, Param, Sql};
use crate::domain::{ids, now_ms};
use sqlx::AnyPool;
use std::collections::{HashMap, HashSet};

/// The person's message, stored with the turn that answers it.
#[derive(Debug, Clone)]
pub struct UserMessage {
    pub id: String,
    pub text: String,
    pub meta: String,
    pub created_at: i64,
}

/// Who wrote an outgoing message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Author {
    /// A bot engine (or a flow, or `initiate` on the bot's behalf).
    Bot,
    /// Chatwire itself (HELP answers, queue positions and other notices).
    System,
    /// A human agent.
    Agent { id: String, name: String },
    /// A marker in the history that is never sent (the hand-off's start and end), so an LLM
    /// reading the history does not take an agent's words for its own.
    Marker,
}

impl Author {
    /// The ChatBotKit message type the message is stored as: what people read is a `bot`
    /// message to an SDK user, whoever wrote it (`meta.author` tells them apart); a marker is
    /// an `activity`.
    fn kind(&self) -> &'static str {
        match self {
            Author::Marker => "activity",
            _ => "bot",
        }
    }

    fn meta(&self) -> String {
        match self {
            Author::Bot => r#"{"author":"bot"}"#.to_owned(),
            Author::System => r#"{"author":"system"}"#.to_owned(),
            Author::Marker => r#"{"author":"system","marker":"handoff"}"#.to_owned(),
            Author::Agent { id, name } => {
                serde_json::json!({"author": "agent", "agentId": id, "agentName": name}).to_string()
            }
        }
    }
}

/// An outgoing message to store.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub id: String,
    pub author: Author,
    pub text: String,
    pub tokens: Option<i64>,
}

/// A conversation created by the write itself (first message of a sender, `initiate`).
#[derive(Debug, Clone)]
pub struct NewConversation {
    pub bot_id: Option<String>,
    pub contact_id: Option<String>,
    pub meta: String,
}

/// A sender's session to point at the write's conversation and slide to `at`.
#[derive(Debug, Clone)]
pub struct Session {
    pub integration_id: String,
    pub address: String,
    pub at: i64,
}

/// A claimed inbound message the write completes.
#[derive(Debug, Clone)]
pub struct Claim {
    pub inbound_id: String,
    pub token: String,
}

/// Wake the engine again at `at` unless the conversation moved on (Studio's waits).
#[derive(Debug, Clone)]
pub struct Timer {
    pub integration_id: String,
    pub channel: String,
    /// The person, and our side, as on the inbound message that set it.
    pub sender: String,
    pub recipient: String,
    pub at: i64,
}

/// An API call's idempotency key and the answer a retry of the call gets.
#[derive(Debug, Clone)]
pub struct Idempotency {
    pub scope: String,
    pub key: String,
    pub response: String,
}

/// Everything one producer writes.
#[derive(Debug, Clone, Default)]
pub struct Outgoing {
    /// The conversation the messages belong to. `None` only for notices outside any
    /// conversation (the HELP answer), which write outbox rows and no messages.
    pub conversation_id: Option<String>,
    pub new_conversation: Option<NewConversation>,
    pub claim: Option<Claim>,
    pub user_message: Option<UserMessage>,
    /// Later pending inbound messages of the claim's sender that this write answers too (a
    /// burst, see [`crate::pipeline::burst`]): each is stored as a user message and its inbound
    /// row finished, with the claimed one.
    pub folded: Vec<UserMessage>,
    pub messages: Vec<NewMessage>,
    pub outbox: Vec<NewOutbox>,
    pub session: Option<Session>,
    /// `Some`: replace the conversation's engine state (and expiry) with this.
    pub engine_state: Option<Option<String>>,
    pub expires_at: Option<i64>,
    pub timer: Option<Timer>,
    pub idempotency: Option<Idempotency>,
    /// A change of the conversation's owner, applied only if its compare-and-set holds.
    pub handoff: Option<HandoffWrite>,
}

/// What became of a write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    Written,
    /// The claim was lost (another worker owns the message): nothing was written.
    ClaimLost,
    /// The idempotency key was used before: nothing was written; the first call's answer.
    Repeated(String),
    /// The hand-off was no longer where the write expected it (another agent took it, it was
    /// closed, the sender already has one open): nothing was written.
    Conflict,
}

/// Per write of a batch, before repeated keys are looked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
    Written,
    ClaimLost,
    Repeated,
    Conflict,
}

/// What a batch did with one write.
#[derive(Debug, Clone, Copy)]
pub(super) struct Done {
    pub outcome: Outcome,
    /// The write finished its claimed inbound message while another message of the same
    /// sender is open (a later one waiting behind it, which has just become claimable).
    pub successor_waits: bool,
}

/// Most writes committed by one transaction.
pub(super) const MAX_BATCH: usize = 64;

impl Db {
    /// Records an outgoing write through the one door.
    pub async fn record_outgoing(&self, mut write: Outgoing) -> Result<Recorded, sqlx::Error> {
        // Each send continues the writer's trace (a turn's, usually); taken here, in the
        // writer's span, before the write joins a batch committed by another task.
        if let Some(parent) = crate::telemetry::current() {
            for row in write.outbox.iter_mut().filter(|r| r.trace_parent.is_none()) {
                row.trace_parent = Some(parent.clone());
            }
        }
        let key = write
            .idempotency
            .as_ref()
            .map(|i| (i.scope.clone(), i.key.clone()));
        let sends = !write.outbox.is_empty();
        // A change of owner is a compare-and-set that may fail; it gets a transaction of its
        // own so that a failed one rolls back nothing but itself. They are rare.
        let done = if write.handoff.is_some() {
            record_batch(self.pool.clone(), self.backend, vec![write])
                .await?
                .pop()
                .unwrap_or(Done {
                    outcome: Outcome::Conflict,
                    successor_waits: false,
                })
        } else {
            self.writes.outgoing.submit(write).await?
        };
        if done.successor_waits {
            self.inbound_claimable.notify_one();
        }
        if sends && done.outcome == Outcome::Written {
            self.outbox_claimable.notify_one();
        }
        match done.outcome {
            Outcome::Written => Ok(Recorded::Written),
            Outcome::ClaimLost => Ok(Recorded::ClaimLost),
            Outcome::Conflict => Ok(Recorded::Conflict),
            Outcome::Repeated => {
                let (scope, key) = key.unwrap_or_default();
                let first = self.idempotent_response(&scope, &key).await?;
                Ok(Recorded::Repeated(first.unwrap_or_default()))
            }
        }
    }

    /// The answer stored with an idempotency key, if the key was used.
    pub async fn idempotent_response(
        &self,
        scope: &str,
        key: &str,
    ) -> Result<Option<String>, sqlx::Error> {
        let sql = Sql::new("SELECT response FROM idempotency_keys WHERE scope = $1 AND key = $2")
            .arg(scope)
            .arg(key);
        Ok(self
            .fetch_optional(&sql)
            .await?
            .map(|r| super::channel::text(&r, "response")))
    }
}

/// Writes a batch in one transaction; per write, whether it was written, and if not, why.
pub(super) async fn record_batch(
    pool: AnyPool,
    backend: super::Backend,
    writes: Vec<Outgoing>,
) -> Result<Vec<Done>, sqlx::Error> {
    let mut successor_waits = vec![false; writes.len()];
    let outcome = write_batch(pool, backend, &writes, &mut successor_waits).await?;
    Ok(outcome
        .into_iter()
        .zip(successor_waits)
        .map(|(outcome, waits)| Done {
            outcome,
            successor_waits: waits && outcome == Outcome::Written,
        })
        .collect())
}

async fn write_batch(
    pool: AnyPool,
    backend: super::Backend,
    writes: &[Outgoing],
    successor_waits: &mut [bool],
) -> Result<Vec<Outcome>, sqlx::Error> {
    let now = now_ms();
    let mut tx = pool.begin().await?;
    let mut outcome = vec![Outcome::Written; writes.len()];

    // Claims first: finishing the inbound rows tells which are still ours.
    let claimed: Vec<(usize, &Claim)> = writes
        .iter()
        .enumerate()
        .filter_map(|(i, w)| w.claim.as_ref().map(|c| (i, c)))
        .collect();
    if !claimed.is_empty() {
        let mut done = Sql::new("WITH v (vid, vtoken, vconv) AS (");
        done.json_rows(
            backend,
            claimed.iter().map(|(i, c)| {
                vec![
                    Param::from(c.inbound_id.as_str()),
                    c.token.as_str().into(),
                    writes[*i].conversation_id.clone().into(),
                ]
            }),
        )
        .push(
            // Whether another message of the sender is open: the claim loop is told (see
            // `Db::inbound_claimable`) instead of claiming again after every turn. The status
            // test is the open-rows index's own condition, without which SQLite cannot use it
            // (a scan of `inbound` per row: measured, the writer's time per message tripled).
            ") UPDATE inbound SET status = 'done', conversation_id = v.vconv FROM v \
             WHERE inbound.id = v.vid AND inbound.claim_token = v.vtoken RETURNING id, claim_token, \
             CASE WHEN EXISTS (SELECT 1 FROM inbound j WHERE j.integration_id = inbound.integration_id \
               AND j.sender = inbound.sender AND j.status IN ('pending', 'processing') AND j.id <> inbound.id) \
             THEN 1 ELSE 0 END AS waits",
        );
        let returned = done.query().fetch_all(&mut *tx).await?;
        let owned = returned_pairs(&returned, "id", "claim_token");
        let waiting: HashSet<String> = returned
            .iter()
            .filter(|r| super::channel::int(r, "waits") > 0)
            .map(|r| super::channel::text(r, "id"))
            .collect();
        for (i, c) in &claimed {
            if !owned.contains(&(c.inbound_id.clone(), c.token.clone())) {
                outcome[*i] = Outcome::ClaimLost;
            }
            successor_waits[*i] = waiting.contains(&c.inbound_id);
        }
    }

    // Then idempotency keys: a key already stored (or repeated within the batch) is a retry.
    let mut seen = HashSet::new();
    let mut keyed: Vec<(usize, &Idempotency)> = Vec::new();
    for (i, w) in writes.iter().enumerate() {
        let Some(k) = w.idempotency.as_ref() else {
            continue;
        };
        if outcome[i] != Outcome::Written {
            continue;
        }
        if seen.insert((k.scope.as_str(), k.key.as_str())) {
            keyed.push((i, k));
        } else {
            outcome[i] = Outcome::Repeated;
        }
    }
    if !keyed.is_empty() {
        let mut sql = Sql::new("INSERT INTO idempotency_keys (scope, key, response, created_at) ");
        sql.json_rows(
            backend,
            keyed.iter().map(|(_, k)| {
                vec![
                    Param::from(k.scope.as_str()),
                    k.key.as_str().into(),
                    k.response.as_str().into(),
                    now.into(),
                ]
            }),
        )
        .push(" ON CONFLICT (scope, key) DO NOTHING RETURNING scope, key");
        let returned = sql.query().fetch_all(&mut *tx).await?;
        let stored = returned_pairs(&returned, "scope", "key");
        for (i, k) in &keyed {
            if !stored.contains(&(k.scope.clone(), k.key.clone())) {
                outcome[*i] = Outcome::Repeated;
            }
        }
    }

    let kept: Vec<&Outgoing> = writes
        .iter()
        .zip(&outcome)
        .filter(|(_, o)| **o == Outcome::Written)
        .map(|(w, _)| w)
        .collect();
    if kept.is_empty() {
        tx.commit().await?;
        return Ok(outcome);
    }
    for w in &kept {
        if let Some(change) = &w.handoff {
            if !handoff::apply(&mut tx, change, now).await? {
                // Only ever one write in a transaction with a hand-off (see `record_outgoing`).
                tx.rollback().await?;
                return Ok(vec![Outcome::Conflict; writes.len()]);
            }
        }
    }

    let folded: Vec<Vec<Param>> = kept
        .iter()
        .flat_map(|w| {
            w.folded
                .iter()
                .map(|u| vec![Param::from(u.id.as_str()), w.conversation_id.clone().into()])
        })
        .collect();
    if !folded.is_empty() {
        // They cannot be claimed while the claimed message, older, is open.
        let mut sql = Sql::new("WITH v (vid, vconv) AS (");
        sql.json_rows(backend, folded).push(
            ") UPDATE inbound SET status = 'done', conversation_id = v.vconv FROM v \
             WHERE inbound.id = v.vid AND inbound.status = 'pending'",
        );
        sql.query().execute(&mut *tx).await?;
    }

    let conversations: Vec<Vec<Param>> = kept
        .iter()
        .filter_map(|w| {
            let c = w.new_conversation.as_ref()?;
            Some(vec![
                Param::from(w.conversation_id.as_deref()?),
                c.bot_id.clone().into(),
                c.contact_id.clone().into(),
                Some(c.meta.clone()).into(),
                now.into(),
                now.into(),
            ])
        })
        .collect();
    if !conversations.is_empty() {
        let mut sql = Sql::new(
            "INSERT INTO conversations (id, bot_id, contact_id, meta, created_at, updated_at) ",
        );
        sql.json_rows(backend, conversations);
        sql.query().execute(&mut *tx).await?;
    }

    let mut messages = Vec::new();
    for w in &kept {
        let Some(conversation_id) = w.conversation_id.as_deref() else {
            continue;
        };
        for u in w.user_message.iter().chain(&w.folded) {
            messages.push(vec![
                Param::from(u.id.as_str()),
                conversation_id.into(),
                "user".into(),
                u.text.as_str().into(),
                Some(u.meta.clone()).into(),
                Option::<i64>::None.into(),
                u.created_at.into(),
                u.created_at.into(),
            ]);
        }
        for m in &w.messages {
            messages.push(vec![
                Param::from(m.id.as_str()),
                conversation_id.into(),
                m.author.kind().into(),
                m.text.as_str().into(),
                Some(m.author.meta()).into(),
                m.tokens.into(),
                now.into(),
                now.into(),
            ]);
        }
    }
    if !messages.is_empty() {
        let mut sql = Sql::new(
            "INSERT INTO messages (id, conversation_id, type, text, meta, tokens, created_at, updated_at) ",
        );
        // A retried turn may find its person's message already stored.
        sql.json_rows(backend, messages)
            .push(" ON CONFLICT (id) DO NOTHING");
        sql.query().execute(&mut *tx).await?;
    }

    // One row per session key: an upsert may not touch a row twice.
    let sessions: HashMap<(&str, &str), (&str, i64)> = kept
        .iter()
        .filter_map(|w| {
            let s = w.session.as_ref()?;
            Some((
                (s.integration_id.as_str(), s.address.as_str()),
                (w.conversation_id.as_deref()?, s.at),
            ))
        })
        .collect();
    if !sessions.is_empty() {
        let mut sql = Sql::new(
            "INSERT INTO sessions (integration_id, address, conversation_id, last_activity_at) ",
        );
        sql.json_rows(backend, sessions.iter().map(|((integration, address), (conv, at))| {
            vec![
                Param::from(*integration),
                (*address).into(),
                (*conv).into(),
                (*at).into(),
            ]
        }))
        .push(
            " ON CONFLICT (integration_id, address) DO UPDATE SET \
             conversation_id = excluded.conversation_id, last_activity_at = excluded.last_activity_at",
        );
        sql.query().execute(&mut *tx).await?;
    }

    let outbox: Vec<NewOutbox> = kept.iter().flat_map(|w| w.outbox.clone()).collect();
    if !outbox.is_empty() {
        insert_outbox(backend, &outbox, now)
            .query()
            .execute(&mut *tx)
            .await?;
    }

    let states: Vec<Vec<Param>> = kept
        .iter()
        .filter_map(|w| {
            let state = w.engine_state.as_ref()?;
            Some(vec![
                Param::from(w.conversation_id.as_deref()?),
                state.clone().into(),
                w.expires_at.into(),
            ])
        })
        .collect();
    if !states.is_empty() {
        let mut sql = Sql::new("WITH v (vid, vstate, vexpires) AS (");
        sql.json_rows(backend, states)
            .push(
                ") UPDATE conversations SET engine_state = v.vstate, expires_at = v.vexpires, updated_at = ",
            )
            .bind(now)
            .push(" FROM v WHERE conversations.id = v.vid");
        sql.query().execute(&mut *tx).await?;
    }

    let timers: Vec<Vec<Param>> = kept
        .iter()
        .filter_map(|w| {
            let t = w.timer.as_ref()?;
            let conversation_id = w.conversation_id.as_deref()?;
            // A timer is an inbound row dated at its due time: claims skip it until then, and
            // it never blocks the sender's real messages, which are all dated earlier.
            Some(vec![
                Param::from(ids::new_id()),
                t.integration_id.as_str().into(),
                t.channel.as_str().into(),
                format!("timer-{conversation_id}-{}", t.at).into(),
                t.sender.as_str().into(),
                t.recipient.as_str().into(),
                "".into(),
                "pending".into(),
                conversation_id.into(),
                t.at.into(),
            ])
        })
        .collect();
    if !timers.is_empty() {
        let mut sql = Sql::new(
            "INSERT INTO inbound (id, integration_id, channel, message_sid, sender, recipient, body, status, \
             conversation_id, created_at) ",
        );
        sql.json_rows(backend, timers)
            .push(" ON CONFLICT (integration_id, message_sid) DO NOTHING");
        sql.query().execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(outcome)
}
