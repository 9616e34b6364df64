//! Recording finished turns: the person's message, the bot's reply, the rows that will send it,
//! the session and the conversation state are written with the inbound message's completion in
//! one transaction, so a reply exists exactly once.
//!
//! Turns finished by different workers at about the same time are written together (see
//! [`super::batch`]): one statement per table for the whole batch.
use super::channel::returned_pairs;
use super::outbox::{insert_outbox, NewOutbox};
use super::{Db, Param, Sql};
use crate::domain::{ids, now_ms};
use sqlx::AnyPool;
use std::collections::HashMap;

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
pub struct Session {
    pub integration_id: String,
    pub address: String,
    pub at: i64,
}

/// A bot message to store with the reply.
#[derive(Debug, Clone)]
pub struct NewBotMessage {
    pub id: String,
    pub text: String,
    pub tokens: Option<i64>,
}

/// Everything one finished turn writes.
#[derive(Debug, Clone)]
pub struct TurnResult {
    pub inbound_id: String,
    pub claim_token: String,
    pub conversation_id: String,
    pub user_message: Option<UserMessage>,
    pub session: Option<Session>,
    pub messages: Vec<NewBotMessage>,
    pub outbox: Vec<NewOutbox>,
    pub engine_state: Option<String>,
    pub expires_at: Option<i64>,
    /// (timer id, due time): wake the engine again then, unless the conversation moved on.
    pub timer: Option<(String, i64)>,
}

/// Most turns written by one transaction.
pub(super) const MAX_BATCH: usize = 64;

impl Db {
    /// Records a finished turn. `false` (and nothing written) when the claim was lost, e.g. the
    /// lease expired and another worker took the message.
    pub async fn record_turn(&self, turn: TurnResult) -> Result<bool, sqlx::Error> {
        self.writes.turns.submit(turn).await
    }
}

/// Writes a batch of turns in one transaction; one `bool` per turn, `false` for a turn whose
/// claim was lost (nothing of it is written).
pub(super) async fn record_turns(
    pool: AnyPool,
    turns: Vec<TurnResult>,
) -> Result<Vec<bool>, sqlx::Error> {
    let now = now_ms();
    let mut tx = pool.begin().await?;
    // Finishing the inbound rows first tells which claims are still ours.
    let mut done = Sql::new("WITH v (vid, vtoken, vconv) AS (VALUES ");
    done.values(turns.iter().map(|t| {
        vec![
            Param::from(t.inbound_id.as_str()),
            t.claim_token.as_str().into(),
            t.conversation_id.as_str().into(),
        ]
    }))
    .push(
        ") UPDATE inbound SET status = 'done', conversation_id = v.vconv FROM v \
         WHERE inbound.id = v.vid AND inbound.claim_token = v.vtoken RETURNING id, claim_token",
    );
    let returned = done.query().fetch_all(&mut *tx).await?;
    let owned = returned_pairs(&returned, "id", "claim_token");
    let is_owned = |t: &TurnResult| owned.contains(&(t.inbound_id.clone(), t.claim_token.clone()));
    let kept: Vec<&TurnResult> = turns.iter().filter(|t| is_owned(t)).collect();

    let mut messages = Vec::new();
    for t in &kept {
        if let Some(u) = &t.user_message {
            messages.push(vec![
                Param::from(u.id.as_str()),
                t.conversation_id.as_str().into(),
                "user".into(),
                u.text.as_str().into(),
                Some(u.meta.clone()).into(),
                Option::<i64>::None.into(),
                u.created_at.into(),
                u.created_at.into(),
            ]);
        }
        for m in &t.messages {
            messages.push(vec![
                Param::from(m.id.as_str()),
                t.conversation_id.as_str().into(),
                "bot".into(),
                m.text.as_str().into(),
                Option::<String>::None.into(),
                m.tokens.into(),
                now.into(),
                now.into(),
            ]);
        }
    }
    if !messages.is_empty() {
        let mut sql = Sql::new(
            "INSERT INTO messages (id, conversation_id, type, text, meta, tokens, created_at, updated_at) VALUES ",
        );
        // A retried turn may find its person's message already stored.
        sql.values(messages).push(" ON CONFLICT (id) DO NOTHING");
        sql.query().execute(&mut *tx).await?;
    }

    // One row per session key: an upsert may not touch a row twice.
    let sessions: HashMap<(&str, &str), (&str, i64)> = kept
        .iter()
        .filter_map(|t| {
            let s = t.session.as_ref()?;
            Some((
                (s.integration_id.as_str(), s.address.as_str()),
                (t.conversation_id.as_str(), s.at),
            ))
        })
        .collect();
    if !sessions.is_empty() {
        let mut sql = Sql::new(
            "INSERT INTO sessions (integration_id, address, conversation_id, last_activity_at) VALUES ",
        );
        sql.values(sessions.iter().map(|((integration, address), (conv, at))| {
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

    let outbox: Vec<NewOutbox> = kept.iter().flat_map(|t| t.outbox.clone()).collect();
    if !outbox.is_empty() {
        insert_outbox(&outbox, now)
            .query()
            .execute(&mut *tx)
            .await?;
    }

    if !kept.is_empty() {
        let mut sql = Sql::new("WITH v (vid, vstate, vexpires) AS (VALUES ");
        sql.values(kept.iter().map(|t| {
            vec![
                Param::from(t.conversation_id.as_str()),
                t.engine_state.clone().into(),
                t.expires_at.into(),
            ]
        }))
        .push(
            ") UPDATE conversations SET engine_state = v.vstate, expires_at = v.vexpires, updated_at = ",
        )
        .bind(now)
        .push(" FROM v WHERE conversations.id = v.vid");
        sql.query().execute(&mut *tx).await?;
    }

    for t in &kept {
        let Some((sid, at)) = &t.timer else { continue };
        // A timer is an inbound row dated at its due time: claims skip it until then, and it
        // never blocks the sender's real messages, which are all dated earlier.
        Sql::new(
            "INSERT INTO inbound (id, integration_id, message_sid, sender, recipient, body, status, conversation_id, created_at) \
             SELECT $1, integration_id, $2, sender, recipient, '', 'pending', $3, $4 FROM inbound WHERE id = $5 \
             ON CONFLICT (integration_id, message_sid) DO NOTHING",
        )
        .arg(ids::new_id())
        .arg(sid.as_str())
        .arg(t.conversation_id.as_str())
        .arg(*at)
        .arg(t.inbound_id.as_str())
        .query()
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(turns.iter().map(is_owned).collect())
}
