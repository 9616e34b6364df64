//! The management API, wire-compatible with ChatBotKit's v1 API.
//!
//! Routes are declared once in a [`Routes`] registry that builds both the axum router and the
//! OpenAPI document, so the published spec cannot drift from what is served.
pub mod agents;
pub mod blueprint_delete;
pub mod blueprint_resources;
pub mod bot_flow;
pub mod bot_settings;
pub mod channel_log;
pub mod completion;
pub mod contact_conversations;
pub mod contact_ensure;
pub mod conversation_create;
pub mod conversations_setup;
pub mod crud;
pub mod dataset_search;
pub mod handoffs;
pub mod idempotent;
pub mod integration_guard;
pub mod lists;
pub mod message_create;
pub mod openapi;
pub mod resources;
pub mod tokens;
pub mod twilio_setup;
pub mod validate;
pub mod widget;

use crate::app::AppState;
use crate::http::error::ApiError;
use crate::http::extract::JsonBody;
use crate::store::resource::Resource;
use axum::extract::{Path, State};
use axum::handler::Handler;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{on, MethodFilter};
use axum::{Json, Router};
use serde_json::{json, Value};

/// One documented operation.
#[derive(Debug, Clone)]
pub struct Op {
    pub method: &'static str,
    pub path: String,
    pub id: String,
    pub summary: String,
    pub tag: String,
    pub request: Option<Value>,
    pub response: Value,
    /// The schema of one line when the answer can also be JSONL (`Accept: application/jsonl`).
    pub jsonl: Option<Value>,
    /// Query parameters (OpenAPI parameter objects).
    pub query: Vec<Value>,
}

impl Op {
    /// A POST operation (every mutation in ChatBotKit's API is a POST with a JSON body).
    pub fn post(path: impl Into<String>, id: &str, summary: &str, tag: &str) -> Self {
        Self::new("post", path.into(), id, summary, tag)
    }

    /// A GET operation (list and fetch).
    pub fn get(path: impl Into<String>, id: &str, summary: &str, tag: &str) -> Self {
        Self::new("get", path.into(), id, summary, tag)
    }

    fn new(method: &'static str, path: String, id: &str, summary: &str, tag: &str) -> Self {
        Self {
            method,
            path,
            id: id.to_owned(),
            summary: summary.to_owned(),
            tag: tag.to_owned(),
            request: None,
            response: json!({"type": "object"}),
            jsonl: None,
            query: Vec::new(),
        }
    }

    /// The answer can also be a JSONL stream of lines shaped like `line`.
    pub fn jsonl(mut self, line: Value) -> Self {
        self.jsonl = Some(line);
        self
    }

    /// A documented query parameter.
    pub fn query(mut self, name: &str, schema: Value, description: &str) -> Self {
        self.query.push(json!({"name": name, "in": "query", "required": false, "schema": schema, "description": description}));
        self
    }

    /// The JSON schema of the request body.
    pub fn request(mut self, schema: Value) -> Self {
        self.request = Some(schema);
        self
    }

    /// The JSON schema of the 200 response.
    pub fn response(mut self, schema: Value) -> Self {
        self.response = schema;
        self
    }
}

/// The generic verbs [`Routes::crud`] registers; a resource whose verb behaves differently
/// skips it with [`Routes::crud_except`] and registers its own handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Create,
    Fetch,
    Update,
    Delete,
    List,
}

/// The `{id}` answer of create, update and delete.
pub fn id_schema() -> Value {
    json!({"type": "object", "required": ["id"], "properties": {"id": {"type": "string"}}})
}

/// Router plus the documentation of every route in it.
pub struct Routes {
    pub router: Router<AppState>,
    pub ops: Vec<Op>,
}

impl Default for Routes {
    fn default() -> Self {
        Self {
            router: Router::new(),
            ops: Vec::new(),
        }
    }
}

/// Methods other than the route's own: HEAD is an empty 200 and OPTIONS `{}` (as ChatBotKit
/// answers), anything else 405.
async fn other_method(method: Method) -> Response {
    match method {
        Method::HEAD => StatusCode::OK.into_response(),
        Method::OPTIONS => Json(json!({})).into_response(),
        _ => ApiError::method_not_allowed().into_response(),
    }
}

impl Routes {
    /// Adds a route served for `op.method` at `/{op.path}`.
    pub fn add<H, T>(mut self, op: Op, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        let filter = if op.method == "get" {
            MethodFilter::GET
        } else {
            MethodFilter::POST
        };
        let path = format!("/{}", op.path);
        self.router = self
            .router
            .route(&path, on(filter, handler).fallback(other_method));
        self.ops.push(op);
        self
    }

    /// Registers create, fetch, update, delete and list for `res`.
    pub fn crud(self, res: &'static Resource, singular: &'static str) -> Self {
        self.crud_except(res, singular, &[])
    }

    /// Registers the generic verbs of `res` except those in `skip`, which the caller registers
    /// itself (axum refuses two handlers for one method and path).
    pub fn crud_except(
        mut self,
        res: &'static Resource,
        singular: &'static str,
        skip: &[Verb],
    ) -> Self {
        let base = res.path;
        let item = format!("{base}/{{{}}}", id_param(singular));
        let read = openapi::read_schema(res);
        let write = openapi::write_schema(res);
        // An update changes only what it names: nothing is required.
        let mut partial = write.clone();
        if let Some(map) = partial.as_object_mut() {
            map.remove("required");
        }
        let id_only = id_schema();
        let op = |method, path: String, verb: &str, request: Option<Value>, response: Value| Op {
            method,
            path,
            id: format!("{verb}{}", pascal(singular)),
            summary: format!("{} {}", verb, res.label),
            tag: res.path.split('/').next().unwrap_or(res.path).to_owned(),
            request,
            response,
            jsonl: None,
            query: Vec::new(),
        };
        let list_response = json!({"type": "object", "properties": {
            "items": {"type": "array", "items": read.clone()}, "cursor": {"type": "string"}}});
        let list_line = read.clone();
        if !skip.contains(&Verb::Create) {
            self = self.add(
                op(
                    "post",
                    format!("{base}/create"),
                    "create",
                    Some(write.clone()),
                    id_only.clone(),
                ),
                move |State(s): State<AppState>,
                      Path(p): Path<Vec<String>>,
                      JsonBody(b): JsonBody| async move {
                    crud::create(s, res, crud::Ids::split(res, p), b).await
                },
            );
        }
        if !skip.contains(&Verb::Fetch) {
            self = self.add(
                op("get", format!("{item}/fetch"), "fetch", None, read),
                move |State(s): State<AppState>, Path(p): Path<Vec<String>>| async move {
                    crud::fetch(s, res, crud::Ids::split(res, p)).await
                },
            );
        }
        if !skip.contains(&Verb::Update) {
            self = self.add(
                op(
                    "post",
                    format!("{item}/update"),
                    "update",
                    Some(partial),
                    id_only.clone(),
                ),
                move |State(s): State<AppState>,
                      Path(p): Path<Vec<String>>,
                      JsonBody(b): JsonBody| async move {
                    crud::update(s, res, crud::Ids::split(res, p), b).await
                },
            );
        }
        if !skip.contains(&Verb::Delete) {
            self = self.add(
                op(
                    "post",
                    format!("{item}/delete"),
                    "delete",
                    Some(json!({"type": "object"})),
                    id_only,
                ),
                move |State(s): State<AppState>,
                      Path(p): Path<Vec<String>>,
                      JsonBody(b): JsonBody| async move {
                    crud::delete(s, res, crud::Ids::split(res, p), b).await
                },
            );
        }
        if !skip.contains(&Verb::List) {
            self = self.add(
                op("get", format!("{base}/list"), "list", None, list_response)
                    .jsonl(list_line)
                    .query(
                        "cursor",
                        json!({"type": "string"}),
                        "The id of the last item of the previous page",
                    )
                    // ChatBotKit reads both leniently (`getTakeConstraints`): any other
                    // value means the default, so the schemas name the values without
                    // forbidding the rest.
                    .query(
                        "order",
                        json!({"type": "string", "example": "asc"}),
                        "Sort order by creation time: `asc` or `desc`; anything else means the default (desc; asc for messages)",
                    )
                    .query(
                        "take",
                        json!({"type": "string", "example": "20"}),
                        "Most items in the page: an integer, clamped to 1-100; 0 or anything that is not an integer means 100",
                    ),
                move |State(s): State<AppState>,
                      Path(p): Path<Vec<String>>,
                      headers: HeaderMap,
                      uri: Uri| async move {
                    crud::list(s, res, crud::Ids::split(res, p), headers, uri).await
                },
            );
        }
        self
    }
}

/// `bot` → `botId`; `integration/twilio` → `twilioIntegrationId` is passed already camel-cased.
fn id_param(singular: &str) -> String {
    format!("{singular}Id")
}

fn pascal(s: &str) -> String {
    let mut chars = s.chars();
    chars
        .next()
        .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
        .unwrap_or_default()
}

/// Every management route (authenticated), relative to `/v1` or `/api/v1`.
pub fn routes() -> Routes {
    resources::register(Routes::default())
}
