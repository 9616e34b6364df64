//! `handoff/*`: the queue and the agents' actions by API, for teams that wire their own desk.
//! The same operations as the console's (see `handoff::desk`), acting as the agent named in
//! the body.
use super::{id_schema, Op, Routes};
use crate::app::AppState;
use crate::handoff::desk;
use crate::handoff::entry::Request;
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::JsonBody;
use crate::store::agents::Agent;
use crate::store::handoff::{HandoffFilter, HandoffState};
use axum::extract::{Path, RawQuery, State};
use axum::Json;
use serde_json::{json, Map, Value};

fn handoff_schema() -> Value {
    json!({"type": "object", "required": ["id", "conversationId", "integrationId", "state", "person"], "properties": {
        "id": {"type": "string"}, "conversationId": {"type": "string"}, "integrationId": {"type": "string"},
        "channel": {"type": "string"}, "person": {"type": "string"}, "ours": {"type": "string"},
        "state": {"type": "string", "enum": HandoffState::ALL.map(HandoffState::as_str)},
        "agentId": {"type": "string", "nullable": true}, "agentName": {"type": "string", "nullable": true},
        "reason": {"type": "string", "nullable": true}, "attributes": {},
        "ticketText": {"type": "string", "nullable": true}, "queuedAt": {"type": "integer"},
        "assignedAt": {"type": "integer", "nullable": true}, "lastActivityAt": {"type": "integer"},
        "closedAt": {"type": "integer", "nullable": true}}})
}

fn acting(required_text: bool) -> Value {
    let mut schema = json!({"type": "object", "required": ["agentId"], "properties": {
        "agentId": {"type": "string"}, "text": {"type": "string", "minLength": 1}}});
    if required_text {
        schema["required"] = json!(["agentId", "text"]);
    }
    schema
}

/// The agent a request acts as (`agentId` in the body).
async fn agent_of(state: &AppState, body: &Map<String, Value>) -> ApiResult<Agent> {
    let Some(id) = body.get("agentId").and_then(Value::as_str) else {
        return Err(ApiError::bad_request(
            "\"agentId\" is required and must be a string",
        ));
    };
    state
        .db
        .agent(id)
        .await?
        .ok_or_else(|| ApiError::bad_request(format!("\"agentId\": no agent \"{id}\"")))
}

fn text_of(body: &Map<String, Value>) -> ApiResult<String> {
    body.get("text")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| ApiError::bad_request("\"text\" is required and must be a string"))
}

async fn list(state: AppState, query: Option<String>) -> ApiResult<Json<Value>> {
    let mut filter = HandoffFilter {
        limit: 100,
        ..HandoffFilter::default()
    };
    for (key, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match key.as_ref() {
            "state" => {
                for s in value.split(',').filter(|s| !s.is_empty()) {
                    let st = HandoffState::parse(s).ok_or_else(|| {
                        ApiError::bad_request(format!("\"state\": unknown state \"{s}\""))
                    })?;
                    filter.states.push(st);
                }
            }
            "integrationId" => filter.integrations = Some(vec![value.into_owned()]),
            "agentId" => filter.agent_id = Some(value.into_owned()),
            "take" => {
                filter.limit = value
                    .parse::<i64>()
                    .ok()
                    .filter(|n| (1..=500).contains(n))
                    .ok_or_else(|| ApiError::bad_request("\"take\" must be from 1 to 500"))?;
            }
            _ => {}
        }
    }
    if filter.states.is_empty() {
        filter.states = vec![
            HandoffState::Queued,
            HandoffState::Agent,
            HandoffState::LeavingMessage,
            HandoffState::Ticket,
        ];
    }
    Ok(Json(json!({"items": state.db.handoffs(&filter).await?})))
}

async fn fetch(state: AppState, id: String) -> ApiResult<Json<Value>> {
    let h = state
        .db
        .handoff(&id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    Ok(Json(crate::console::inbox::conversation(&state, h).await?))
}

pub fn register(r: Routes) -> Routes {
    r.add(
        Op::get("handoff/list", "listHandoffs", "List hand-offs (by default the open ones and the messages left): ?state=queued,agent&integrationId=&agentId=&take=", "handoff")
            .response(json!({"type": "object", "required": ["items"], "properties": {"items": {"type": "array", "items": handoff_schema()}}})),
        |State(s): State<AppState>, RawQuery(q): RawQuery| list(s, q),
    )
    .add(
        Op::get("handoff/{handoffId}/fetch", "fetchHandoff", "A hand-off with its conversation's messages (and their delivery) and what the bot collected", "handoff")
            .response(json!({"type": "object", "required": ["handoff", "messages"], "properties": {
                "handoff": handoff_schema(), "messages": {"type": "array", "items": {"type": "object"}},
                "conversationMeta": {}, "botState": {}}})),
        |State(s): State<AppState>, Path(id): Path<String>| fetch(s, id),
    )
    .add(
        Op::post("handoff/{handoffId}/assign", "assignHandoff", "Give a queued conversation to an agent (as if they took it)", "handoff")
            .request(acting(false))
            .response(id_schema()),
        |State(s): State<AppState>, Path(id): Path<String>, JsonBody(b): JsonBody| async move {
            let agent = agent_of(&s, &b).await?;
            desk::take(&s, &agent, &id).await?;
            ApiResult::Ok(Json(json!({"id": id})))
        },
    )
    .add(
        Op::post("handoff/{handoffId}/send", "sendHandoffMessage", "Send the agent's message to the person (answers a message left for the team when the hand-off is a ticket)", "handoff")
            .request(acting(true))
            .response(id_schema()),
        |State(s): State<AppState>, Path(id): Path<String>, JsonBody(b): JsonBody| async move {
            let agent = agent_of(&s, &b).await?;
            let text = text_of(&b)?;
            match s.db.handoff(&id).await? {
                Some(h) if h.state == HandoffState::Ticket => {
                    desk::answer_ticket(&s, &agent, &id, &text).await?
                }
                _ => desk::reply(&s, &agent, &id, &text).await?,
            }
            ApiResult::Ok(Json(json!({"id": id})))
        },
    )
    .add(
        Op::post("handoff/{handoffId}/close", "closeHandoff", "Close the conversation: the person gets the closing text and the bot answers again", "handoff")
            .request(acting(false))
            .response(id_schema()),
        |State(s): State<AppState>, Path(id): Path<String>, JsonBody(b): JsonBody| async move {
            let agent = agent_of(&s, &b).await?;
            desk::close(&s, &agent, &id).await?;
            ApiResult::Ok(Json(json!({"id": id})))
        },
    )
    .add(
        Op::post("conversation/{conversationId}/handoff", "requestHandoff", "Hand a conversation to the agents' queue, or with agentId straight to that agent", "handoff")
            .request(json!({"type": "object", "additionalProperties": false, "properties": {
                "reason": {"type": "string"}, "attributes": {}, "agentId": {"type": "string"}}}))
            .response(id_schema()),
        |State(s): State<AppState>, Path(id): Path<String>, JsonBody(b): JsonBody| async move {
            if let Some(k) = b.keys().find(|k| !["reason", "attributes", "agentId"].contains(&k.as_str())) {
                return Err(ApiError::bad_request(format!("\"{k}\" is not allowed")));
            }
            let agent = match b.get("agentId") {
                Some(_) => Some(agent_of(&s, &b).await?),
                None => None,
            };
            let reason = match b.get("reason") {
                None | Some(Value::Null) => None,
                Some(Value::String(r)) => Some(r.clone()),
                Some(_) => return Err(ApiError::bad_request("\"reason\" must be a string")),
            };
            let request = Request { reason, attributes: b.get("attributes").cloned() };
            let handoff = desk::request(&s, &id, request, agent.as_ref()).await?;
            ApiResult::Ok(Json(json!({"id": handoff})))
        },
    )
}
