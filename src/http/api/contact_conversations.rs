//! `GET /contact/{contactId}/conversation/list`: a contact's conversations, listed exactly like
//! `conversation/list` (paging, order, meta filters, JSONL) with the contact as a fixed filter.
use super::{lists, openapi, Op, Routes};
use crate::app::AppState;
use crate::http::error::{ApiError, ApiResult};
use crate::store::schema::{CONTACT, CONVERSATION};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use serde_json::json;

pub fn register(r: Routes) -> Routes {
    let items = json!({"type": "object", "properties": {
        "items": {"type": "array", "items": openapi::read_schema(&CONVERSATION)}, "cursor": {"type": "string"}}});
    let op = Op::get(
        "contact/{contactId}/conversation/list",
        "listContactConversations",
        "List the conversations of a contact",
        "contact",
    )
    .response(items);
    r.add(
        op,
        |State(s): State<AppState>, Path(contact): Path<String>, headers: HeaderMap, uri: Uri| {
            list(s, contact, headers, uri)
        },
    )
}

async fn list(
    state: AppState,
    contact: String,
    headers: HeaderMap,
    uri: Uri,
) -> ApiResult<Response> {
    let format = lists::format(&headers)?;
    let contact_id = state
        .db
        .resolve_id(&CONTACT, None, &contact)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let mut query = lists::parse_query(uri.query(), &CONVERSATION, None);
    query.eq.push(("contact_id", vec![contact_id]));
    lists::respond(&state.db, &CONVERSATION, query, format).await
}
