//! Studio flow executions and FAQ ratings of a bot, through the management API (Chatwire).
//!
//! * `GET  bot/{botId}/flow/execution/list` (`?conversationId=&cursor=&take=`): executions,
//!   newest first, like Studio's Executions list.
//! * `GET  bot/{botId}/flow/execution/{executionId}/fetch`: one execution with its Liquid
//!   context (Studio's execution Context).
//! * `GET  bot/{botId}/flow/execution/{executionId}/step/list` (`?cursor=&take=`): the
//!   transitions it took, in order; `cursor` is the `seq` of the last step of the previous page.
//! * `POST bot/{botId}/flow/execution/{executionId}/update` `{"status": "ended"}`: ends it, as
//!   Studio's `Status=ended` does; its next turn starts afresh.
//! * `POST bot/{botId}/flow/execute` `{to, integrationId?, channel?, data?}`: starts an execution
//!   towards a contact through the `incomingRequest` trigger with `data` as `flow.data`
//!   (Studio's `POST /Executions` with `To` and `Parameters`). 409 while the contact has an
//!   active execution of this flow (Twilio's 20409).
//! * `GET  bot/{botId}/faq/rating/list`: content ratings given to a FAQ bot's answers.
use super::{crud, idempotent, Op, Routes};
use crate::app::AppState;
use crate::bot::studio::{self, StartError};
use crate::bot::{BotConfig, ChannelKind, ContactInfo, Turn};
use crate::channel::twilio::messaging::TwilioMessaging;
use crate::domain::address::{Address, ChannelKind as Wire};
use crate::domain::{ids, now_ms, phone};
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::{IdempotencyKey, JsonBody};
use crate::pipeline::render::{self, Route, Text};
use crate::store::outgoing::{Author, NewConversation, Outgoing, Session, Timer};
use crate::store::schema::{BOT, TWILIO};
use crate::store::{faq, flows, Sql};
use axum::extract::{Path, Query, State};
use axum::Json;
use serde_json::{json, Map, Value};
use sqlx::Row;
use std::collections::HashMap;

const MAX_TAKE: i64 = 100;

pub fn register(r: Routes) -> Routes {
    let execution = json!({"type": "object", "properties": {
        "id": {"type": "string"}, "botId": {"type": "string"}, "conversationId": {"type": "string", "nullable": true},
        "contactAddress": {"type": "string"}, "channelAddress": {"type": "string", "nullable": true},
        "status": {"type": "string", "enum": ["active", "ended"]}, "trigger": {"type": "string"},
        "currentState": {"type": "string", "nullable": true, "description": "The widget waiting for a reply"},
        "expiresAt": {"type": "integer", "nullable": true, "description": "When that wait times out (ms)"},
        "error": {"type": "string", "nullable": true}, "data": {"type": "object", "nullable": true},
        "context": {"type": "object", "description": "The Liquid context (fetch only)"},
        "createdAt": {"type": "integer"}, "updatedAt": {"type": "integer"}}});
    let step = json!({"type": "object", "properties": {
        "executionId": {"type": "string"}, "seq": {"type": "integer"}, "name": {"type": "string", "description": "The event that caused the transition"},
        "transitionedFrom": {"type": "string"}, "transitionedTo": {"type": "string", "description": "A widget name or \"Ended\""},
        "type": {"type": "string", "nullable": true}, "context": {"type": "object", "nullable": true}, "error": {"type": "string", "nullable": true},
        "createdAt": {"type": "integer"}}});
    let list = |items: &Value| json!({"type": "object", "properties": {"items": {"type": "array", "items": items}, "cursor": {"type": "string"}}});
    let id_only =
        json!({"type": "object", "required": ["id"], "properties": {"id": {"type": "string"}}});
    r.add(
        Op::get("bot/{botId}/flow/execution/list", "listBotFlowExecutions", "List the Studio flow executions of a bot (Chatwire)", "bot")
            .response(list(&execution)),
        |State(s): State<AppState>, Path(bot): Path<String>, Query(q): Query<HashMap<String, String>>| list_executions(s, bot, q),
    )
    .add(
        Op::get("bot/{botId}/flow/execution/{executionId}/fetch", "fetchBotFlowExecution", "Fetch a Studio flow execution with its context (Chatwire)", "bot")
            .response(execution.clone()),
        |State(s): State<AppState>, Path((bot, id)): Path<(String, String)>| fetch_execution(s, bot, id),
    )
    .add(
        Op::get("bot/{botId}/flow/execution/{executionId}/step/list", "listBotFlowExecutionSteps", "List the steps of a Studio flow execution (Chatwire)", "bot")
            .response(list(&step)),
        |State(s): State<AppState>, Path((bot, id)): Path<(String, String)>, Query(q): Query<HashMap<String, String>>| list_steps(s, bot, id, q),
    )
    .add(
        Op::post("bot/{botId}/flow/execution/{executionId}/update", "updateBotFlowExecution", "End a Studio flow execution (Chatwire)", "bot")
            .request(json!({"type": "object", "required": ["status"], "properties": {"status": {"type": "string", "enum": ["ended"]}}}))
            .response(id_only.clone()),
        |State(s): State<AppState>, Path((bot, id)): Path<(String, String)>, JsonBody(b): JsonBody| end_execution(s, bot, id, b),
    )
    .add(
        Op::post("bot/{botId}/flow/execute", "executeBotFlow", "Start a Studio flow execution towards a contact (incomingRequest trigger) (Chatwire)", "bot")
            .request(json!({"type": "object", "required": ["to"], "additionalProperties": false, "properties": {
                "to": {"type": "string", "description": "The contact: E.164 or whatsapp:+E.164 (contact.channel.address)"},
                "from": {"type": "string", "description": "The number or WhatsApp sender to send from (flow.channel.address; default: the integration's phoneNumber), as Studio's Executions API takes `From`"},
                "integrationId": {"type": "string", "description": "The Twilio integration to send from (default: the bot's first)"},
                "channel": {"type": "string", "enum": ["sms", "whatsapp"], "description": "Default: whatsapp when `to` has the prefix, else sms"},
                "data": {"type": "object", "description": "flow.data (Studio's Parameters)"},
                "contentSid": {"type": "string", "pattern": "^HX[0-9a-fA-F]{32}$", "description": "An approved template (Twilio Content SID) the flow's messages to the contact go out as if they would leave outside WhatsApp's 24-hour window; overrides the integration's whatsappTemplate for this call (Chatwire)"},
                "contentVariables": {"description": "The template's variables: an object of strings or numbers, or a JSON string of one; `{{body}}` in a value is the message's text (Chatwire)", "oneOf": [{"type": "object", "additionalProperties": {"oneOf": [{"type": "string"}, {"type": "number"}]}}, {"type": "string"}]}}}))
            .response(json!({"type": "object", "required": ["id"], "properties": {
                "id": {"type": "string", "description": "The execution id"}, "conversationId": {"type": "string"},
                "status": {"type": "string", "enum": ["active", "ended"]}, "messages": {"type": "integer"}}})),
        |State(s): State<AppState>, Path(bot): Path<String>, IdempotencyKey(k): IdempotencyKey, JsonBody(b): JsonBody| execute(s, bot, k, b),
    )
    .add(
        Op::get("bot/{botId}/faq/rating/list", "listBotFaqRatings", "List the content ratings given to a FAQ bot's answers (Chatwire)", "bot")
            .response(list(&json!({"type": "object", "properties": {"id": {"type": "string"}, "conversationId": {"type": "string"},
                "recordId": {"type": "string"}, "ratingId": {"type": "string"}, "negative": {"type": "boolean"},
                "comment": {"type": "string", "nullable": true}, "createdAt": {"type": "integer"}}}))),
        |State(s): State<AppState>, Path(bot): Path<String>, Query(q): Query<HashMap<String, String>>| list_ratings(s, bot, q),
    )
}

async fn bot_id(state: &AppState, key: &str) -> ApiResult<String> {
    let ids = crud::Ids {
        parent: None,
        id: Some(key.to_owned()),
    };
    Ok(crud::existing(state, &BOT, &ids).await?.1)
}

fn take(q: &HashMap<String, String>) -> ApiResult<i64> {
    match q.get("take") {
        None => Ok(20),
        Some(t) => t
            .parse::<i64>()
            .ok()
            .filter(|t| (1..=MAX_TAKE).contains(t))
            .ok_or_else(|| {
                ApiError::bad_request(format!("\"take\" must be between 1 and {MAX_TAKE}"))
            }),
    }
}

fn page(items: Vec<Value>, take: i64) -> Json<Value> {
    let cursor = (items.len() as i64 == take)
        .then(|| items.last().and_then(|i| i.get("id")).cloned())
        .flatten();
    let mut body = json!({ "items": items });
    if let Some(c) = cursor {
        body["cursor"] = c;
    }
    Json(body)
}

async fn list_executions(
    state: AppState,
    bot: String,
    q: HashMap<String, String>,
) -> ApiResult<Json<Value>> {
    let bot = bot_id(&state, &bot).await?;
    let take = take(&q)?;
    let items = flows::list(
        &state.db,
        &bot,
        q.get("conversationId").map(String::as_str),
        q.get("cursor").map(String::as_str),
        take,
    )
    .await?;
    Ok(page(items.into_iter().map(Value::Object).collect(), take))
}

async fn fetch_execution(state: AppState, bot: String, id: String) -> ApiResult<Json<Value>> {
    let bot = bot_id(&state, &bot).await?;
    let exec = flows::fetch(&state.db, &bot, &id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    Ok(Json(Value::Object(exec)))
}

async fn list_steps(
    state: AppState,
    bot: String,
    id: String,
    q: HashMap<String, String>,
) -> ApiResult<Json<Value>> {
    let take = take(&q)?;
    let after = match q.get("cursor") {
        None => None,
        Some(c) => Some(
            c.parse::<i64>()
                .map_err(|_| ApiError::bad_request("\"cursor\" must be a step's seq"))?,
        ),
    };
    let bot = bot_id(&state, &bot).await?;
    flows::fetch(&state.db, &bot, &id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    // Steps come in seq order; paging here keeps the store's query as it is.
    let items: Vec<Value> = flows::steps(&state.db, &id)
        .await?
        .into_iter()
        .filter(|s| after.is_none_or(|a| s["seq"].as_i64().is_some_and(|seq| seq > a)))
        .take(usize::try_from(take).unwrap_or(usize::MAX))
        .collect();
    let cursor = (items.len() as i64 == take)
        .then(|| items.last().map(|s| s["seq"].to_string()))
        .flatten();
    let mut body = json!({ "items": items });
    if let Some(c) = cursor {
        body["cursor"] = Value::String(c);
    }
    Ok(Json(body))
}

async fn end_execution(
    state: AppState,
    bot: String,
    id: String,
    body: Map<String, Value>,
) -> ApiResult<Json<Value>> {
    if let Some(k) = body.keys().find(|k| *k != "status") {
        return Err(ApiError::bad_request(format!("\"{k}\" is not allowed")));
    }
    if body.get("status").and_then(Value::as_str) != Some("ended") {
        return Err(ApiError::bad_request("\"status\" must be \"ended\""));
    }
    let bot = bot_id(&state, &bot).await?;
    if !flows::end(&state.db, &bot, &id, now_ms()).await? {
        return Err(ApiError::not_found());
    }
    Ok(Json(json!({ "id": id })))
}

async fn list_ratings(
    state: AppState,
    bot: String,
    q: HashMap<String, String>,
) -> ApiResult<Json<Value>> {
    let bot = bot_id(&state, &bot).await?;
    let take = take(&q)?;
    let items =
        faq::list_ratings(&state.db, &bot, q.get("cursor").map(String::as_str), take).await?;
    Ok(page(items, take))
}

fn text<'a>(body: &'a Map<String, Value>, key: &str) -> ApiResult<Option<&'a str>> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ApiError::bad_request(format!("\"{key}\" must be a string"))),
    }
}

/// Starts an execution and delivers its first reply the way an inbound turn's reply is
/// delivered: bot messages in the contact's live conversation (or a new one), outbox rows,
/// the engine state, and a timer for the first wait.
async fn execute(
    state: AppState,
    bot_key: String,
    idempotency_key: Option<String>,
    body: Map<String, Value>,
) -> ApiResult<Json<Value>> {
    if let Some(k) = body.keys().find(|k| {
        ![
            "to",
            "from",
            "integrationId",
            "channel",
            "data",
            "contentSid",
            "contentVariables",
        ]
        .contains(&k.as_str())
    }) {
        return Err(ApiError::bad_request(format!("\"{k}\" is not allowed")));
    }
    let data = match body.get("data") {
        None | Some(Value::Null) => json!({}),
        Some(Value::Object(d)) => Value::Object(d.clone()),
        Some(_) => return Err(ApiError::bad_request("\"data\" must be an object")),
    };
    let template =
        crate::domain::reply_window::given(body.get("contentSid"), body.get("contentVariables"))
            .map_err(ApiError::bad_request)?;
    let bot = bot_id(&state, &bot_key).await?;
    let bot_row = state
        .db
        .fetch_resource(&BOT, None, &bot)
        .await?
        .ok_or_else(ApiError::not_found)?;
    if bot_row.get("model").and_then(Value::as_str) != Some("flow") {
        return Err(ApiError::bad_request(
            "The bot's model must be \"flow\" to execute a flow",
        ));
    }
    let integration_id = match text(&body, "integrationId")? {
        Some(key) => {
            crud::existing(
                &state,
                &TWILIO,
                &crud::Ids {
                    parent: None,
                    id: Some(key.to_owned()),
                },
            )
            .await?
            .1
        }
        None => {
            let sql = Sql::new(
                "SELECT id FROM twilio_integrations WHERE bot_id = $1 ORDER BY created_at LIMIT 1",
            )
            .arg(bot.as_str());
            let row = state.db.fetch_optional(&sql).await?;
            row.and_then(|r| r.try_get::<String, _>(0).ok())
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "The bot has no Twilio integration; give \"integrationId\"",
                    )
                })?
        }
    };
    let integration = state
        .db
        .integration(&state.cipher, &integration_id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let to_raw = text(&body, "to")?.ok_or_else(|| ApiError::bad_request("\"to\" is required"))?;
    let channel = match text(&body, "channel")? {
        None if to_raw.starts_with("whatsapp:") => Wire::WhatsApp,
        None | Some("sms") => Wire::Sms,
        Some("whatsapp") => Wire::WhatsApp,
        Some(_) => {
            return Err(ApiError::bad_request(
                "\"channel\" must be one of [sms, whatsapp]",
            ))
        }
    };
    let e164 = phone::normalize_e164(
        to_raw.trim_start_matches("whatsapp:"),
        state.config.default_region,
    )
    .ok_or_else(|| ApiError::bad_request("\"to\" must be a phone number"))?;
    let to = Address::new(channel, &e164)
        .map_err(|e| ApiError::bad_request(format!("\"to\": {e}")))?
        .to_string();
    // Studio's Executions API takes `From` (a WhatsApp sender beside the number, say).
    let from = match text(&body, "from")? {
        Some(f) => {
            Address::parse(f).map_err(|e| ApiError::bad_request(format!("\"from\": {e}")))?
        }
        None => integration
            .phone_number
            .as_deref()
            .ok_or_else(|| {
                ApiError::bad_request("The integration needs a phoneNumber to send from")
            })
            .and_then(|f| {
                Address::parse(f).map_err(|e| ApiError::bad_request(format!("phoneNumber: {e}")))
            })?,
    }
    .with_channel(channel)
    .to_string();
    let scope = format!("flow-execute:{bot}");
    if let Some(first) = idempotent::earlier(&state, &scope, idempotency_key.as_deref()).await? {
        return Ok(first);
    }
    let now = now_ms();
    let duration = integration
        .session_duration
        .unwrap_or(state.config.session_timeout_ms);
    let sender = state
        .db
        .sender_state(&integration.id, &to, duration.max(1), now)
        .await?;
    if sender.opted_out {
        return Err(ApiError::conflict(
            "The recipient has opted out (STOP) and cannot be messaged",
        ));
    }
    let live = sender.live.filter(|_| duration > 0);
    let conversation_id = live
        .as_ref()
        .map(|l| l.id.clone())
        .unwrap_or_else(ids::new_id);
    let engine_state = live
        .as_ref()
        .and_then(|l| l.engine_state.as_deref())
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or(Value::Null);
    let turn = Turn {
        conversation_id: conversation_id.clone(),
        bot: BotConfig::from_row(bot_row),
        history: Vec::new(),
        text: String::new(),
        media: Vec::new(),
        contact: ContactInfo {
            id: live.as_ref().and_then(|l| l.contact_id.clone()),
            name: None,
            address: to.clone(),
            author: None,
        },
        channel: if channel == Wire::WhatsApp {
            ChannelKind::Whatsapp
        } else {
            ChannelKind::Sms
        },
        channel_address: Some(from.clone()),
        state: engine_state,
        now_ms: now,
        message_sid: None,
        account_sid: None,
    };
    let reply = match studio::start_execution(&state.engine_context(), &turn, data).await {
        Ok(reply) => reply,
        Err(StartError::AlreadyActive(id)) => {
            return Err(ApiError::conflict(format!(
                "Execution {id} is already active for this contact (Twilio error 20409)"
            )))
        }
        Err(StartError::Engine(e)) => return Err(ApiError::bad_request(e.to_string())),
    };
    // The execution may already have ended in this first turn, so ask the record, not the state.
    let execution = flows::list(&state.db, &bot, Some(&conversation_id), None, 1)
        .await?
        .first()
        .and_then(|e| e.get("id").cloned())
        .unwrap_or(Value::Null);
    let route = Route {
        integration_id: integration.id.clone(),
        channel: TwilioMessaging::NAME.to_owned(),
        to: Address::parse(&to).map_err(|e| ApiError::bad_request(format!("\"to\": {e}")))?,
        from: Address::parse(&from)
            .map_err(|e| ApiError::bad_request(format!("phoneNumber: {e}")))?,
    };
    let texts: Vec<Text> = reply
        .messages
        .iter()
        .enumerate()
        .map(|(i, body)| {
            let to = reply.recipient_of(i).and_then(|to| Address::parse(to).ok());
            Text {
                media: reply.media_of(i).to_vec(),
                // The call's template is for the contact, not for a staff phone the flow notifies.
                template: template.clone().filter(|_| to.is_none()),
                to,
                ..Text::plain(body)
            }
        })
        .collect();
    let (messages, outbox) =
        render::render(&route, Some(&conversation_id), Author::Bot, None, &texts);
    let status = if reply.wake_at_ms.is_some() {
        "active"
    } else {
        "ended"
    };
    let response = json!({
        "id": execution,
        "conversationId": conversation_id,
        "status": status,
        "messages": messages.len(),
    });
    let write = Outgoing {
        conversation_id: Some(conversation_id.clone()),
        new_conversation: live.is_none().then(|| NewConversation {
            bot_id: Some(bot.clone()),
            contact_id: None,
            meta: json!({"app": "twilio", "twilio": {"integrationId": integration.id, "address": to, "initiated": true}}).to_string(),
        }),
        messages,
        outbox,
        session: Some(Session {
            integration_id: integration.id.clone(),
            address: to.clone(),
            at: now,
        }),
        engine_state: Some(Some(reply.state.to_string())),
        expires_at: (duration > 0).then_some(now + duration),
        // The same kind of timer a turn sets: the pipeline runs it as an empty-text turn.
        timer: reply.wake_at_ms.map(|at| Timer {
            integration_id: integration.id.clone(),
            channel: TwilioMessaging::NAME.to_owned(),
            sender: to.clone(),
            recipient: from.clone(),
            at,
        }),
        ..Outgoing::default()
    };
    idempotent::record(&state, write, scope, idempotency_key, response).await
}
