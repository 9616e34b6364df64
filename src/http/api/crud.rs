//! The five verbs every resource shares (create, fetch, update, delete, list), written once
//! against a [`Resource`] description and registered by [`super::Routes::crud`].
use super::lists;
use super::validate::{self, Mode};
use crate::app::AppState;
use crate::domain::{ids, now_ms};
use crate::http::error::{ApiError, ApiResult};
use crate::store::resource::Resource;
use crate::store::Param;
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use axum::Json;
use serde_json::{json, Map, Value};

/// Path parameters in order: the parent id (nested resources) and then the resource id.
pub struct Ids {
    pub parent: Option<String>,
    pub id: Option<String>,
}

impl Ids {
    pub fn split(res: &Resource, mut params: Vec<String>) -> Self {
        let parent = if res.parent.is_some() && !params.is_empty() {
            Some(params.remove(0))
        } else {
            None
        };
        Self {
            parent,
            id: params.into_iter().next(),
        }
    }
}

/// Resolves the parent (404 if missing) and returns its real id.
pub async fn parent_scope(
    state: &AppState,
    res: &Resource,
    ids: &Ids,
) -> ApiResult<Option<String>> {
    match (res.parent, &ids.parent) {
        (Some((_, parent)), Some(key)) => {
            let id = state
                .db
                .resolve_id(parent, None, key)
                .await?
                .ok_or_else(ApiError::not_found)?;
            Ok(Some(id))
        }
        _ => Ok(None),
    }
}

/// Resolves the resource id or alias (404 if missing) within the parent scope.
pub async fn existing(
    state: &AppState,
    res: &Resource,
    ids: &Ids,
) -> ApiResult<(Option<String>, String)> {
    let scope = parent_scope(state, res, ids).await?;
    let key = ids.id.as_deref().ok_or_else(ApiError::not_found)?;
    let id = state
        .db
        .resolve_id(res, scope.as_deref(), key)
        .await?
        .ok_or_else(ApiError::not_found)?;
    Ok((scope, id))
}

/// Inserts a validated row; `extra` keys are allowed in the body but handled by the caller.
pub async fn insert(
    state: &AppState,
    res: &Resource,
    ids: &Ids,
    body: &Map<String, Value>,
    extra: &[&str],
) -> ApiResult<String> {
    let scope = parent_scope(state, res, ids).await?;
    super::bot_settings::check(state, res, body, None).await?;
    let mut cols = validate::columns(state, res, body, Mode::Create, extra).await?;
    super::integration_guard::number_free(state, res, &cols, None).await?;
    if let (Some((col, _)), Some(parent)) = (res.parent, scope) {
        cols.push((col, Param::from(parent)));
    }
    let id = ids::new_id();
    state.db.insert_resource(res, &id, &cols, now_ms()).await?;
    Ok(id)
}

pub async fn create(
    state: AppState,
    res: &'static Resource,
    ids: Ids,
    body: Map<String, Value>,
) -> ApiResult<Json<Value>> {
    let id = insert(&state, res, &ids, &body, &[]).await?;
    let mut warnings = super::bot_settings::warnings(&state, res, &body).await;
    warnings.extend(super::bot_settings::llm_warning(&state, res, &body));
    Ok(Json(super::bot_settings::with_warnings(
        json!({ "id": id }),
        warnings,
    )))
}

pub async fn fetch(state: AppState, res: &'static Resource, ids: Ids) -> ApiResult<Json<Value>> {
    let (scope, id) = existing(&state, res, &ids).await?;
    let row = state
        .db
        .fetch_resource(res, scope.as_deref(), &id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    Ok(Json(Value::Object(row)))
}

/// Applies a partial update; `extra` keys are allowed but handled by the caller.
pub async fn apply_update(
    state: &AppState,
    res: &Resource,
    ids: &Ids,
    mut body: Map<String, Value>,
    extra: &[&str],
) -> ApiResult<String> {
    let (_, id) = existing(state, res, ids).await?;
    super::bot_settings::check(state, res, &body, Some(&id)).await?;
    if let Some(meta) = body.get("meta") {
        let stored = state.db.column_text(res, &id, "meta").await?;
        if let Some(merged) = validate::merge_meta(stored.as_deref(), meta) {
            body.insert("meta".into(), merged);
        }
    }
    let cols = validate::columns(state, res, &body, Mode::Update, extra).await?;
    super::integration_guard::number_free(state, res, &cols, Some(&id)).await?;
    if !state.db.update_resource(res, &id, &cols, now_ms()).await? {
        return Err(ApiError::not_found());
    }
    if std::ptr::eq(res, &crate::store::schema::TWILIO) && body.contains_key("sendRate") {
        state.db.outbox_release_rate_limited(&id).await?;
    }
    Ok(id)
}

pub async fn update(
    state: AppState,
    res: &'static Resource,
    ids: Ids,
    body: Map<String, Value>,
) -> ApiResult<Json<Value>> {
    let warnings = super::bot_settings::warnings(&state, res, &body).await;
    let id = apply_update(&state, res, &ids, body, &[]).await?;
    Ok(Json(super::bot_settings::with_warnings(
        json!({ "id": id }),
        warnings,
    )))
}

pub async fn delete(
    state: AppState,
    res: &'static Resource,
    ids: Ids,
    body: Map<String, Value>,
) -> ApiResult<Json<Value>> {
    if let Some(key) = body.keys().next() {
        return Err(ApiError::bad_request(format!("\"{key}\" is not allowed")));
    }
    let (_, id) = existing(&state, res, &ids).await?;
    state
        .db
        .delete_with_children(res, &id, &crate::store::schema::children(res))
        .await?;
    Ok(Json(json!({ "id": id })))
}

pub async fn list(
    state: AppState,
    res: &'static Resource,
    ids: Ids,
    headers: HeaderMap,
    uri: Uri,
) -> ApiResult<Response> {
    let format = lists::format(&headers)?;
    let scope = parent_scope(&state, res, &ids).await?;
    let query = lists::parse_query(uri.query(), res, scope);
    lists::respond(&state.db, res, query, format).await
}
