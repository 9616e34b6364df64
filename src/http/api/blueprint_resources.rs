//! `GET /blueprint/{blueprintId}/resource/list`: the resources linked to a blueprint.
//!
//! The answer has ChatBotKit's shape: `{id, resources: {bot: [...], dataset: [...],
//! twilioIntegration: [...], contact: [...]}}`, every category present (empty when nothing is
//! linked), each item `{id, name, description, <...>Id, meta}` in creation order.
//! [`MEMBERS`] is also what `blueprint/{id}/delete` removes or unlinks.
use super::{Op, Routes};
use crate::app::AppState;
use crate::http::error::{ApiError, ApiResult};
use crate::store::cascade::Member;
use crate::store::resource::{ListQuery, Order};
use crate::store::schema::{BLUEPRINT, BOT, CONTACT, DATASET, DATASET_RECORD, TWILIO, WIDGET};
use axum::extract::{Path, State};
use axum::Json;
use serde_json::{json, Map, Value};

/// The resources that carry a `blueprintId`, by their category name in the answer.
pub static MEMBERS: [(&str, Member); 5] = [
    (
        "bot",
        Member {
            res: &BOT,
            children: &[],
        },
    ),
    (
        "dataset",
        Member {
            res: &DATASET,
            children: &[&DATASET_RECORD],
        },
    ),
    (
        "twilioIntegration",
        Member {
            res: &TWILIO,
            children: &[],
        },
    ),
    (
        "widgetIntegration",
        Member {
            res: &WIDGET,
            children: &[],
        },
    ),
    (
        "contact",
        Member {
            res: &CONTACT,
            children: &[],
        },
    ),
];

pub fn register(r: Routes) -> Routes {
    let item = json!({"type": "object", "properties": {
        "id": {"type": "string"}, "name": {"type": "string"}, "description": {"type": "string"},
        "meta": {"type": "object", "nullable": true}}});
    let categories: Map<String, Value> = MEMBERS
        .iter()
        .map(|(name, _)| ((*name).to_owned(), json!({"type": "array", "items": item})))
        .collect();
    let response = json!({"type": "object", "required": ["id", "resources"], "properties": {
        "id": {"type": "string", "description": "The ID of the blueprint"},
        "resources": {"type": "object", "description": "A map of the resources", "properties": categories}}});
    let op = Op::get(
        "blueprint/{blueprintId}/resource/list",
        "listBlueprintResources",
        "List the resources of a blueprint",
        "blueprint",
    )
    .response(response);
    r.add(op, |State(s): State<AppState>, Path(key): Path<String>| {
        list(s, key)
    })
}

async fn list(state: AppState, key: String) -> ApiResult<Json<Value>> {
    let id = state
        .db
        .resolve_id(&BLUEPRINT, None, &key)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let mut resources = Map::new();
    for (category, member) in &MEMBERS {
        let mut items = Vec::new();
        let mut query = ListQuery {
            cursor: None,
            order: Order::Asc,
            take: 100,
            meta: Vec::new(),
            eq: vec![("blueprint_id", vec![id.clone()])],
            scope: None,
        };
        loop {
            let page = state.db.list_resources(member.res, &query).await?;
            let full = page.len() as i64 == query.take;
            query.cursor = page
                .last()
                .and_then(|row| row.get("id"))
                .and_then(Value::as_str)
                .map(str::to_owned);
            items.extend(page.into_iter().map(summary));
            if !full {
                break;
            }
        }
        resources.insert((*category).to_owned(), Value::Array(items));
    }
    Ok(Json(json!({ "id": id, "resources": resources })))
}

/// The item ChatBotKit lists: id, name, description, the `...Id` links, meta.
fn summary(row: Map<String, Value>) -> Value {
    let mut out = Map::new();
    for key in ["id", "name", "description"] {
        out.insert(key.to_owned(), row.get(key).cloned().unwrap_or(Value::Null));
    }
    for (key, value) in &row {
        if key.ends_with("Id") {
            out.insert(key.clone(), value.clone());
        }
    }
    out.insert(
        "meta".to_owned(),
        row.get("meta").cloned().unwrap_or(Value::Null),
    );
    Value::Object(out)
}
