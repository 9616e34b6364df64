//! `POST /dataset/{datasetId}/search` `{search, filter?}` → `{id, records: [{id, text, source,
//! meta, score}]}`, ranked by the database's full-text search (see `store::search`).
//!
//! The dataset's `searchMaxRecords` caps the answer ([`DEFAULT_MAX_RECORDS`] when unset) and
//! its `searchMinScore` drops weaker records. Scores are the backend's own (FTS5 -bm25 or
//! PostgreSQL ts_rank), so a minimum score is only meaningful for one backend.
use super::{Op, Routes};
use crate::app::AppState;
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::JsonBody;
use crate::store::schema::DATASET;
use crate::store::search::{self, MetaFilter, Options};
use axum::extract::{Path, State};
use axum::Json;
use serde_json::{json, Map, Value};

/// Records returned when the dataset does not set `searchMaxRecords`.
pub const DEFAULT_MAX_RECORDS: i64 = 5;
/// Longest search text accepted, in bytes.
const MAX_SEARCH: usize = 64 * 1024;

pub fn register(r: Routes) -> Routes {
    let scalar = json!({"oneOf": [{"type": "string"}, {"type": "number"}, {"type": "boolean"}]});
    let number = json!({"type": "number"});
    let operator = |name: &str, operand: &Value| json!({"type": "object", "additionalProperties": false, "required": [name], "properties": {name: operand}});
    let request = json!({"type": "object", "additionalProperties": false, "required": ["search"], "properties": {
        "search": {"type": "string", "description": "The keyword/phrase to search for"},
        "filter": {"type": "object", "nullable": true, "description": "Conditions on record meta (keys are dot paths without empty segments): a scalar (equality) or one of $eq, $ne, $gt, $gte, $lt, $lte",
            // OpenAPI 3.0 has no propertyNames: the extension states the key rule.
            "x-propertyNames": {"pattern": "^[^.]+(\\.[^.]+)*$"},
            "additionalProperties": {"oneOf": [
                scalar.clone(),
                operator("$eq", &scalar), operator("$ne", &scalar),
                operator("$gt", &number), operator("$gte", &number),
                operator("$lt", &number), operator("$lte", &number)]}}}});
    let record = json!({"type": "object", "required": ["id", "text", "score"], "properties": {
        "id": {"type": "string"}, "text": {"type": "string"}, "source": {"type": "string", "nullable": true},
        "meta": {"type": "object", "nullable": true}, "score": {"type": "number"}}});
    let response = json!({"type": "object", "required": ["id", "records"], "properties": {
        "id": {"type": "string", "description": "The ID of the dataset that was searched"},
        "records": {"type": "array", "items": record}}});
    let op = Op::post(
        "dataset/{datasetId}/search",
        "searchDataset",
        "Search a dataset for records matching a given search query",
        "dataset",
    )
    .request(request)
    .response(response);
    r.add(
        op,
        |State(s): State<AppState>, Path(key): Path<String>, JsonBody(b): JsonBody| run(s, key, b),
    )
}

async fn run(state: AppState, key: String, body: Map<String, Value>) -> ApiResult<Json<Value>> {
    let (query, filter) = parse(&body).map_err(ApiError::bad_request)?;
    let id = state
        .db
        .resolve_id(&DATASET, None, &key)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let dataset = state
        .db
        .fetch_resource(&DATASET, None, &id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let limit = dataset
        .get("searchMaxRecords")
        .and_then(Value::as_i64)
        .filter(|n| *n > 0)
        .unwrap_or(DEFAULT_MAX_RECORDS);
    let options = Options {
        limit,
        min_score: dataset.get("searchMinScore").and_then(Value::as_f64),
        filter,
    };
    let records = search::search_with(&state.db, &id, &query, &options).await?;
    Ok(Json(json!({ "id": id, "records": records })))
}

/// The search text and filter, with every problem reported at once like the other validators.
fn parse(body: &Map<String, Value>) -> Result<(String, MetaFilter), String> {
    let mut errors = Vec::new();
    for key in body
        .keys()
        .filter(|k| !matches!(k.as_str(), "search" | "filter"))
    {
        errors.push(format!("\"{key}\" is not allowed"));
    }
    let query = match body.get("search") {
        Some(Value::String(s)) if s.len() <= MAX_SEARCH => s.clone(),
        Some(Value::String(_)) => {
            errors.push(format!("\"search\" must be at most {MAX_SEARCH} bytes"));
            String::new()
        }
        None | Some(Value::Null) => {
            errors.push("\"search\" is required".to_owned());
            String::new()
        }
        Some(_) => {
            errors.push("\"search\" must be a string".to_owned());
            String::new()
        }
    };
    let filter = match body.get("filter") {
        None | Some(Value::Null) => MetaFilter::default(),
        Some(Value::Object(map)) => MetaFilter::parse(map).unwrap_or_else(|e| {
            errors.push(e);
            MetaFilter::default()
        }),
        Some(_) => {
            errors.push("\"filter\" must be of type object".to_owned());
            MetaFilter::default()
        }
    };
    if errors.is_empty() {
        Ok((query, filter))
    } else {
        Err(errors.join("; "))
    }
}
