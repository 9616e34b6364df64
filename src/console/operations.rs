//! The console's operations pages (issue 13 point 5): the channel log with filters and replay,
//! and an overview of the last day (messages in and out per hour, how deliveries ended, the
//! most frequent provider errors). An agent sees only the integrations they work on.
use super::session::SignedIn;
use crate::app::AppState;
use crate::http::api::channel_log;
use crate::http::error::{ApiError, ApiResult};
use axum::extract::{Path, Query, State};
use axum::Json;
use serde_json::Value;
use std::collections::HashMap;

/// `GET /console/api/channel-log`: the API's filters, within the agent's integrations.
pub async fn log(
    State(state): State<AppState>,
    who: SignedIn,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    let mut filter = channel_log::filter(&q)?;
    filter.integrations = Some(who.agent.integration_ids.clone());
    Ok(Json(channel_log::page(&state, &filter).await?))
}

/// `POST /console/api/channel-log/{id}/replay`.
pub async fn replay(
    State(state): State<AppState>,
    who: SignedIn,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let entry = state
        .db
        .channel_log_entry(&id)
        .await?
        .filter(|e| {
            e.integration_id
                .as_ref()
                .is_some_and(|i| who.agent.integration_ids.contains(i))
        })
        .ok_or_else(ApiError::not_found)?;
    Ok(Json(channel_log::replay_entry(&state, &entry).await?))
}

/// Most hours the overview covers.
const MAX_HOURS: i64 = 24 * 14;

/// `GET /console/api/overview?hours=24`.
pub async fn overview(
    State(state): State<AppState>,
    who: SignedIn,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    let hours = match q.get("hours") {
        None => 24,
        Some(h) => h
            .parse::<i64>()
            .ok()
            .filter(|h| (1..=MAX_HOURS).contains(h))
            .ok_or_else(|| {
                ApiError::bad_request(format!("\"hours\" must be between 1 and {MAX_HOURS}"))
            })?,
    };
    let figures = state
        .db
        .overview(&who.agent.integration_ids, hours, crate::domain::now_ms())
        .await?;
    Ok(Json(
        serde_json::to_value(figures).map_err(anyhow::Error::from)?,
    ))
}
