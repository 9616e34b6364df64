//! Checks of a bot's engine settings on create and update, beyond the generic field types:
//! a Studio `flow` must load (Twilio's validation rules, every problem named by state and
//! field), `faq` settings and `labels` overrides must have their documented shapes, and a bot
//! whose `model` is `flow` must have a flow.
//!
//! The generic create/update handlers call [`check`] for every resource; it does nothing for
//! resources other than bots. They also add [`warnings`] to their answer (`"warnings": [...]`,
//! only when there are some): what is accepted but will not behave as on Twilio, such as voice
//! widgets in a flow, or a `run-subflow` naming a flow no bot has (yet). Keeping it a hook (rather than bot-specific create and update
//! routes) leaves the bot's routes, OpenAPI entries and every other check where they are.
use crate::app::AppState;
use crate::bot::{faq, labels, studio};
use crate::http::error::{ApiError, ApiResult};
use crate::store::resource::Resource;
use crate::store::schema::BOT;
use serde_json::{Map, Value};

/// What a valid bot body holds that its author should know about (see the module docs).
pub async fn warnings(state: &AppState, res: &Resource, body: &Map<String, Value>) -> Vec<String> {
    if !std::ptr::eq(res, &BOT) {
        return Vec::new();
    }
    let Some(flow) = body.get("flow").filter(|v| !v.is_null()) else {
        return Vec::new();
    };
    let Ok(flow) = studio::flow::Flow::load(flow) else {
        return Vec::new();
    };
    let mut out = flow.warnings();
    for s in &flow.states {
        let studio::flow::Widget::RunSubflow(w) = &s.widget else {
            continue;
        };
        if w.flow_sid.contains("{{") || w.flow_sid.contains("{%") {
            continue;
        }
        if let Ok(None) = studio::subflow::resolve(&state.db, w.flow_sid.trim()).await {
            out.push(format!(
                "state \"{}\": properties.flow_sid: no flow bot has meta.{} \"{}\" yet; the widget takes \"failed\" until one does",
                s.name,
                studio::subflow::META_KEY,
                w.flow_sid.trim()
            ));
        }
    }
    out
}

/// On create: a bot without a model runs the LLM engine, which cannot answer without an LLM
/// endpoint. It is accepted (ChatBotKit users create bare bots and set them up later), with a
/// warning saying what it will do until one is configured.
pub fn llm_warning(state: &AppState, res: &Resource, body: &Map<String, Value>) -> Option<String> {
    let model = body.get("model").and_then(Value::as_str).unwrap_or("");
    (std::ptr::eq(res, &BOT) && model.is_empty() && state.config.llm_url.is_none()).then(|| {
        format!(
            "this bot has no \"model\", so it runs the LLM engine, and no LLM endpoint is configured (CHATWIRE_LLM_URL): it will answer every message with its fallback text; set a model such as {} or configure the endpoint",
            crate::bot::BUILT_IN_ENGINES.join(", ")
        )
    })
}

/// `answer` with `"warnings"` added when there are any.
pub fn with_warnings(mut answer: Value, warnings: Vec<String>) -> Value {
    if !warnings.is_empty() {
        answer["warnings"] = Value::from(warnings);
    }
    answer
}

/// Validates the engine settings in `body`; `existing` is the bot's id on update.
pub async fn check(
    state: &AppState,
    res: &Resource,
    body: &Map<String, Value>,
    existing: Option<&str>,
) -> ApiResult<()> {
    if !std::ptr::eq(res, &BOT) {
        return Ok(());
    }
    let mut errors = Vec::new();
    let given = |key: &str| body.get(key).filter(|v| !v.is_null());
    if let Some(flow) = given("flow") {
        if let Err(e) = studio::flow::Flow::load(flow) {
            errors.push(format!("\"flow\" is not a valid Studio flow: {e}"));
        }
    }
    if body.get("model").and_then(Value::as_str) == Some("flow") && given("flow").is_none() {
        let stored = match existing {
            Some(id) if !body.contains_key("flow") => state.db.column_text(res, id, "flow").await?,
            _ => None,
        };
        if stored.is_none_or(|s| s == "null") {
            errors.push("\"flow\" is required when \"model\" is \"flow\"".into());
        }
    }
    if let Some(model) = body.get("model").and_then(Value::as_str) {
        if !model.is_empty() && crate::bot::is_llm_model(model) && state.config.llm_url.is_none() {
            errors.push(format!(
                "\"model\" \"{model}\" runs the LLM engine, and no LLM endpoint is configured: set CHATWIRE_LLM_URL (and CHATWIRE_LLM_API_KEY) to an OpenAI-compatible server and restart, or pick a built-in engine ({})",
                crate::bot::BUILT_IN_ENGINES.join(", ")
            ));
        }
    }
    if let Some(webhook) = given("webhook") {
        if let Err(e) = crate::bot::webhook::WebhookSettings::parse(webhook) {
            errors.push(e);
        }
    }
    if let Some(settings) = given("faq") {
        if let Err(e) = faq::settings::validate(settings) {
            errors.push(e);
        }
    }
    if let Some(overrides) = given("labels") {
        if let Err(e) = labels::validate_overrides(overrides) {
            errors.push(e);
        }
    }
    if let Some(lang) = body.get("lang").and_then(Value::as_str) {
        let code = lang.split(['-', '_']).next().unwrap_or("");
        if !(2..=3).contains(&code.len()) || !code.chars().all(|c| c.is_ascii_alphabetic()) {
            errors.push("\"lang\" must be a language code such as \"en\" or \"es\"".into());
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::bad_request(errors.join("; ")))
    }
}
