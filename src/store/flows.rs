//! Studio flow executions and their steps (`flow_executions`, `flow_steps`): written by the
//! flow engine through `bot::EngineStore`, read by the management API.
//!
//! Writes are idempotent (an upsert per execution, steps keyed by execution and sequence
//! number), so a turn that is retried after a crash records the same steps once, and an
//! execution ended through the API stays ended whatever a late turn writes.
use super::{Db, Sql};
use crate::bot::engine_store::{FlowExecutionRecord, FlowStepRecord};
use serde_json::{json, Map, Value};
use sqlx::any::AnyRow;
use sqlx::Row;

/// Records the execution's current status and its new steps.
pub async fn record(
    db: &Db,
    exec: &FlowExecutionRecord<'_>,
    steps: &[FlowStepRecord<'_>],
) -> Result<(), sqlx::Error> {
    let sql = Sql::new(
        "INSERT INTO flow_executions (id, bot_id, conversation_id, contact_address, channel_address, status, trigger_event, \
         current_state, expires_at, error, data, context, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
         ON CONFLICT (id) DO UPDATE SET \
         status = CASE WHEN flow_executions.status = 'ended' THEN 'ended' ELSE excluded.status END, \
         current_state = excluded.current_state, expires_at = excluded.expires_at, \
         error = COALESCE(excluded.error, flow_executions.error), context = excluded.context, updated_at = excluded.updated_at",
    )
    .arg(exec.id)
    .arg(exec.bot_id)
    .arg(exec.conversation_id)
    .arg(exec.contact_address)
    .arg(exec.channel_address)
    .arg(if exec.ended { "ended" } else { "active" })
    .arg(exec.trigger)
    .arg(exec.current_state)
    .arg(exec.expires_at)
    .arg(exec.error)
    .arg(exec.data.map(Value::to_string))
    .arg(exec.context.to_string())
    .arg(exec.started_at)
    .arg(exec.updated_at);
    db.exec(&sql).await?;
    for s in steps {
        let sql = Sql::new(
            "INSERT INTO flow_steps (execution_id, seq, name, transitioned_from, transitioned_to, widget_type, context, error, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (execution_id, seq) DO NOTHING",
        )
        .arg(exec.id)
        .arg(i64::from(s.seq))
        .arg(s.name)
        .arg(s.transitioned_from)
        .arg(s.transitioned_to)
        .arg(s.widget_type)
        .arg(s.context.map(Value::to_string))
        .arg(s.error)
        .arg(s.at_ms);
        db.exec(&sql).await?;
    }
    Ok(())
}

/// Is this execution ended? An unknown execution is not.
pub async fn is_ended(db: &Db, id: &str) -> Result<bool, sqlx::Error> {
    let sql = Sql::new("SELECT status FROM flow_executions WHERE id = $1").arg(id);
    Ok(db
        .fetch_optional(&sql)
        .await?
        .is_some_and(|row| row.try_get::<String, _>(0).is_ok_and(|s| s == "ended")))
}

/// The id of the contact's active, unexpired execution of this flow, if any.
pub async fn active_for_contact(
    db: &Db,
    bot_id: &str,
    contact: &str,
    now: i64,
) -> Result<Option<String>, sqlx::Error> {
    let sql = Sql::new(
        "SELECT id FROM flow_executions WHERE bot_id = $1 AND contact_address = $2 AND status = 'active' \
         AND (expires_at IS NULL OR expires_at > $3) ORDER BY created_at DESC LIMIT 1",
    )
    .arg(bot_id)
    .arg(contact)
    .arg(now);
    Ok(db
        .fetch_optional(&sql)
        .await?
        .and_then(|r| r.try_get::<String, _>(0).ok()))
}

/// Ends the contact's other active executions of this flow: one active execution per contact.
pub async fn end_others(
    db: &Db,
    bot_id: &str,
    contact: &str,
    keep: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    let sql = Sql::new(
        "UPDATE flow_executions SET status = 'ended', error = COALESCE(error, 'superseded by a new execution'), \
         current_state = NULL, expires_at = NULL, updated_at = $4 \
         WHERE bot_id = $1 AND contact_address = $2 AND status = 'active' AND id <> $3",
    )
    .arg(bot_id)
    .arg(contact)
    .arg(keep)
    .arg(now);
    db.exec(&sql).await.map(|_| ())
}

/// Ends an execution from the API; `false` when there is no such execution of this bot.
pub async fn end(db: &Db, bot_id: &str, id: &str, now: i64) -> Result<bool, sqlx::Error> {
    let sql = Sql::new(
        "UPDATE flow_executions SET status = 'ended', error = COALESCE(error, 'ended through the API'), \
         current_state = NULL, expires_at = NULL, updated_at = $3 WHERE bot_id = $1 AND id = $2",
    )
    .arg(bot_id)
    .arg(id)
    .arg(now);
    Ok(db.exec(&sql).await? > 0)
}

const EXEC_COLUMNS: &str =
    "id, bot_id, conversation_id, contact_address, channel_address, status, trigger_event, \
     current_state, expires_at, error, data, created_at, updated_at, context";

fn opt_text(row: &AnyRow, i: usize) -> Value {
    row.try_get::<Option<String>, _>(i)
        .ok()
        .flatten()
        .map_or(Value::Null, Value::String)
}

fn opt_int(row: &AnyRow, i: usize) -> Value {
    row.try_get::<Option<i64>, _>(i)
        .ok()
        .flatten()
        .map_or(Value::Null, Value::from)
}

fn opt_json(row: &AnyRow, i: usize) -> Value {
    row.try_get::<Option<String>, _>(i)
        .ok()
        .flatten()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or(Value::Null)
}

/// An execution row on the wire (camelCase, ms timestamps, like every API resource).
fn execution_wire(row: &AnyRow, with_context: bool) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("id".into(), opt_text(row, 0));
    m.insert("botId".into(), opt_text(row, 1));
    m.insert("conversationId".into(), opt_text(row, 2));
    m.insert("contactAddress".into(), opt_text(row, 3));
    m.insert("channelAddress".into(), opt_text(row, 4));
    m.insert("status".into(), opt_text(row, 5));
    m.insert("trigger".into(), opt_text(row, 6));
    m.insert("currentState".into(), opt_text(row, 7));
    m.insert("expiresAt".into(), opt_int(row, 8));
    m.insert("error".into(), opt_text(row, 9));
    m.insert("data".into(), opt_json(row, 10));
    m.insert("createdAt".into(), opt_int(row, 11));
    m.insert("updatedAt".into(), opt_int(row, 12));
    if with_context {
        m.insert("context".into(), opt_json(row, 13));
    }
    m
}

/// Executions of a bot, newest first; `cursor` is the last id of the previous page.
pub async fn list(
    db: &Db,
    bot_id: &str,
    conversation_id: Option<&str>,
    cursor: Option<&str>,
    take: i64,
) -> Result<Vec<Map<String, Value>>, sqlx::Error> {
    let mut sql = Sql::new(format!(
        "SELECT {EXEC_COLUMNS} FROM flow_executions WHERE bot_id = "
    ));
    sql.bind(bot_id);
    if let Some(conversation) = conversation_id {
        sql.push(" AND conversation_id = ").bind(conversation);
    }
    sql.newest_first_page("flow_executions", cursor, take);
    Ok(db
        .fetch_all(&sql)
        .await?
        .iter()
        .map(|r| execution_wire(r, false))
        .collect())
}

/// One execution of a bot with its Liquid context.
pub async fn fetch(
    db: &Db,
    bot_id: &str,
    id: &str,
) -> Result<Option<Map<String, Value>>, sqlx::Error> {
    let sql = Sql::new(format!(
        "SELECT {EXEC_COLUMNS} FROM flow_executions WHERE bot_id = $1 AND id = $2"
    ))
    .arg(bot_id)
    .arg(id);
    Ok(db
        .fetch_optional(&sql)
        .await?
        .map(|r| execution_wire(&r, true)))
}

/// The steps of an execution, in order.
pub async fn steps(db: &Db, execution_id: &str) -> Result<Vec<Value>, sqlx::Error> {
    let sql = Sql::new(
        "SELECT seq, name, transitioned_from, transitioned_to, widget_type, context, error, created_at \
         FROM flow_steps WHERE execution_id = $1 ORDER BY seq",
    )
    .arg(execution_id);
    Ok(db
        .fetch_all(&sql)
        .await?
        .iter()
        .map(|r| {
            json!({
                "executionId": execution_id,
                "seq": opt_int(r, 0),
                "name": opt_text(r, 1),
                "transitionedFrom": opt_text(r, 2),
                "transitionedTo": opt_text(r, 3),
                "type": opt_text(r, 4),
                "context": opt_json(r, 5),
                "error": opt_text(r, 6),
                "createdAt": opt_int(r, 7),
            })
        })
        .collect())
}
