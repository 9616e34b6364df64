//! The channel log through the API (Chatwire): `GET channel/log/list` with filters,
//! `GET channel/log/{entryId}/fetch`, and `POST channel/log/{entryId}/replay`, which runs a
//! refused webhook again once the configuration is fixed.
use super::{Op, Routes};
use crate::app::AppState;
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::JsonBody;
use crate::http::webhooks::replay::{self, Replayed};
use crate::store::channel_log::{Entry, Filter};
use axum::extract::{Path, Query, State};
use axum::Json;
use serde_json::{json, Value};
use std::collections::HashMap;

/// Most entries in one page, and the default.
const MAX_TAKE: i64 = 500;
const DEFAULT_TAKE: i64 = 50;

fn entry_schema() -> Value {
    let s = json!({"type": "string", "nullable": true});
    let n = json!({"type": "number", "nullable": true});
    json!({"type": "object", "required": ["id", "createdAt", "kind", "channel", "outcome", "replayable"], "properties": {
        "id": {"type": "string"},
        "createdAt": {"type": "number"},
        "kind": {"type": "string", "enum": ["message", "status", "send"]},
        "channel": {"type": "string"},
        "integrationId": s,
        "outcome": {"type": "string", "description": "refused, applied (status callbacks), sent, retry, failed, opted_out (sends)"},
        "reason": {"type": "string", "nullable": true, "description": "For refusals: bad_signature, unknown_integration, wrong_account, malformed"},
        "detail": {"type": "string", "nullable": true, "description": "What was checked and what to do, or the provider's answer"},
        "url": {"type": "string", "nullable": true, "description": "For refusals: the URL the signature was checked against"},
        "messageSid": s, "correlationId": s, "errorCode": n,
        "elapsedMs": {"type": "number", "nullable": true, "description": "For sends: how long the provider took to answer"},
        "replayable": {"type": "boolean"},
        "replayedAt": n, "replayOutcome": s,
        "request": {"type": "object", "description": "fetch only: the refused request kept for replay", "properties": {
            "path": {"type": "string"}, "headers": {"type": "object"}, "body": {"type": "string"}}}}})
}

pub fn register(r: Routes) -> Routes {
    let filters = [
        ("integrationId", "Only this integration's entries"),
        ("kind", "message, status or send"),
        ("outcome", "e.g. refused, failed, retry, sent"),
        ("reason", "e.g. bad_signature"),
        ("messageSid", "The provider's message id"),
    ];
    let mut list = Op::get(
        "channel/log/list",
        "listChannelLog",
        "List the channel log, newest first: refused webhooks, send attempts, status callbacks (Chatwire)",
        "channel",
    )
    .response(json!({"type": "object", "required": ["items"], "properties": {
        "items": {"type": "array", "items": entry_schema()}, "cursor": {"type": "string"}}}));
    for (name, doc) in filters {
        list = list.query(name, json!({"type": "string"}), doc);
    }
    let list = list
        .query(
            "since",
            json!({"type": "integer", "format": "int64", "minimum": i64::MIN, "maximum": i64::MAX}),
            "Entries at or after this time (ms)",
        )
        .query(
            "cursor",
            json!({"type": "string"}),
            "The id of the last entry of the previous page",
        )
        .query(
            "take",
            json!({"type": "integer", "minimum": 1, "maximum": MAX_TAKE}),
            "Most entries (default 50)",
        );
    r.add(list, list_handler)
        .add(
            Op::get(
                "channel/log/{entryId}/fetch",
                "fetchChannelLogEntry",
                "Fetch a channel log entry with the request it kept (Chatwire)",
                "channel",
            )
            .response(entry_schema()),
            fetch,
        )
        .add(
            Op::post(
                "channel/log/{entryId}/replay",
                "replayChannelLogEntry",
                "Run a refused webhook again with today's configuration; accepted messages go on to the bot (Chatwire)",
                "channel",
            )
            .request(json!({"type": "object", "additionalProperties": false}))
            .response(json!({"type": "object", "required": ["id", "outcome"], "properties": {
                "id": {"type": "string"},
                "outcome": {"type": "string", "description": "accepted, duplicate, ignored, applied, or refused: <reason>"},
                "reason": {"type": "string"}, "detail": {"type": "string"}}})),
            replay_handler,
        )
}

/// An entry on the wire; `with_request` adds the kept request (fetch).
pub fn wire(e: &Entry, with_request: bool) -> Value {
    let mut out = json!({
        "id": e.id, "createdAt": e.created_at, "kind": e.kind, "channel": e.channel,
        "integrationId": e.integration_id, "outcome": e.outcome, "reason": e.reason,
        "detail": e.detail, "url": e.url, "messageSid": e.message_sid,
        "correlationId": e.correlation_id, "errorCode": e.error_code, "elapsedMs": e.elapsed_ms,
        "replayable": e.request.is_some(), "replayedAt": e.replayed_at, "replayOutcome": e.replay_outcome,
    });
    if let (true, Some(r)) = (with_request, &e.request) {
        out["request"] = json!({
            "path": r.path,
            "headers": serde_json::from_str::<Value>(&r.headers).unwrap_or(Value::Null),
            "body": r.body,
        });
    }
    out
}

fn number(q: &HashMap<String, String>, key: &str) -> ApiResult<Option<i64>> {
    q.get(key)
        .map(|v| {
            v.trim()
                .parse::<i64>()
                .map_err(|_| ApiError::bad_request(format!("\"{key}\" must be a whole number")))
        })
        .transpose()
}

/// The filter a list query asks for (the API's and the console's).
pub fn filter(q: &HashMap<String, String>) -> ApiResult<Filter> {
    let known = [
        "integrationId",
        "kind",
        "outcome",
        "reason",
        "messageSid",
        "since",
        "cursor",
        "take",
    ];
    if let Some(k) = q.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(ApiError::bad_request(format!(
            "\"{k}\" is not a filter of the channel log; use {}",
            known.join(", ")
        )));
    }
    let take = number(q, "take")?.unwrap_or(DEFAULT_TAKE);
    if !(1..=MAX_TAKE).contains(&take) {
        return Err(ApiError::bad_request(format!(
            "\"take\" must be between 1 and {MAX_TAKE}"
        )));
    }
    let text = |key: &str| q.get(key).filter(|v| !v.is_empty()).cloned();
    Ok(Filter {
        integration_id: text("integrationId"),
        integrations: None,
        kind: text("kind"),
        outcome: text("outcome"),
        reason: text("reason"),
        message_sid: text("messageSid"),
        since: number(q, "since")?,
        cursor: text("cursor"),
        take,
    })
}

/// One page of entries: `{items, cursor?}`.
pub async fn page(state: &AppState, filter: &Filter) -> ApiResult<Value> {
    let entries = state.db.channel_log(filter).await?;
    let mut out = json!({"items": entries.iter().map(|e| wire(e, false)).collect::<Vec<_>>()});
    if entries.len() as i64 == filter.take {
        if let Some(last) = entries.last() {
            out["cursor"] = Value::String(last.id.clone());
        }
    }
    Ok(out)
}

async fn list_handler(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    Ok(Json(page(&state, &filter(&q)?).await?))
}

async fn existing(state: &AppState, id: &str) -> ApiResult<Entry> {
    state
        .db
        .channel_log_entry(id)
        .await?
        .ok_or_else(ApiError::not_found)
}

async fn fetch(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    Ok(Json(wire(&existing(&state, &id).await?, true)))
}

async fn replay_handler(
    State(state): State<AppState>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    if let Some(k) = body.keys().next() {
        return Err(ApiError::bad_request(format!("\"{k}\" is not allowed")));
    }
    let entry = existing(&state, &id).await?;
    Ok(Json(replay_entry(&state, &entry).await?))
}

/// Replays `entry` and records the outcome: `{id, outcome, reason?, detail?}`.
pub async fn replay_entry(state: &AppState, entry: &Entry) -> ApiResult<Value> {
    let replayed = replay::replay(state, entry).await?;
    if let Replayed::Impossible(why) = &replayed {
        return Err(ApiError::conflict(format!("Cannot replay: {why}")));
    }
    let outcome = replayed.outcome();
    state.db.channel_log_replayed(&entry.id, &outcome).await?;
    tracing::info!(entry = %entry.id, outcome, "channel log entry replayed");
    Ok(match replayed {
        Replayed::Refused(reason, detail) => {
            json!({"id": entry.id, "outcome": outcome, "reason": reason, "detail": detail})
        }
        _ => json!({"id": entry.id, "outcome": outcome}),
    })
}
