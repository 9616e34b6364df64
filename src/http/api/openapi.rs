//! The OpenAPI 3 document, generated from the route registry and the resource descriptions.
use super::Op;
use crate::store::resource::{Resource, Ty};
use serde_json::{json, Map, Value};

/// The schema of one field. `write`: as create and update accept it, where null stands for the
/// default of a field that is never null once stored.
fn field_schema(ty: Ty, doc: &str, write: bool) -> Value {
    let mut s = match ty {
        Ty::Enum(values, default) => {
            let mut values: Vec<Value> = values.iter().map(|v| json!(v)).collect();
            // OpenAPI 3.0.3: a nullable enum must list null to allow it.
            if write {
                values.push(Value::Null);
            }
            json!({"type": "string", "enum": values, "default": default, "nullable": write})
        }
        Ty::Bool(default) => json!({"type": "boolean", "default": default, "nullable": write}),
        Ty::Int(min, max) => {
            json!({"type": "integer", "minimum": min, "maximum": max, "nullable": true})
        }
        Ty::Float(min, max) => {
            json!({"type": "number", "nullable": true, "minimum": min, "maximum": max})
        }
        // ChatBotKit refuses keys that start with `_` or are empty (`^[^_]`). OpenAPI 3.0 has
        // no `propertyNames`; the extension states the rule for tools that can apply it
        // (scripts/schemathesis_run.py does).
        Ty::Meta => json!({"type": "object", "additionalProperties": true, "nullable": true,
                           "x-propertyNames": {"pattern": "^[^_]"}}),
        Ty::Json => json!({"nullable": true}),
        Ty::Name => json!({"type": "string", "default": "", "nullable": write}),
        Ty::Text(default) => json!({"type": "string", "default": default, "nullable": write}),
        // "" counts as absent, like null.
        Ty::Email => json!({"type": "string", "nullable": true,
                            "anyOf": [{"format": "email"}, {"maxLength": 0}]}),
        Ty::Sid(prefix) => {
            json!({"type": "string", "nullable": true, "pattern": format!("^({prefix}[0-9a-fA-F]{{32}})?$")})
        }
        _ => json!({"type": "string", "nullable": true}),
    };
    if s["nullable"] == false {
        if let Some(map) = s.as_object_mut() {
            map.remove("nullable");
        }
    }
    if !doc.is_empty() {
        s["description"] = Value::String(doc.to_owned());
    }
    s
}

/// What fetch and list return for `res`.
pub fn read_schema(res: &Resource) -> Value {
    let mut props = Map::new();
    props.insert("id".into(), json!({"type": "string"}));
    for f in res.fields.iter().filter(|f| f.read) {
        props.insert(f.wire.into(), field_schema(f.ty, f.doc, false));
    }
    props.insert("createdAt".into(), json!({"type": "number", "description": "The timestamp (ms) when the instance was created"}));
    props.insert("updatedAt".into(), json!({"type": "number", "description": "The timestamp (ms) when the instance was updated"}));
    json!({"type": "object", "required": ["id", "createdAt", "updatedAt"], "properties": props})
}

/// What create and update accept for `res` (unknown keys are refused).
pub fn write_schema(res: &Resource) -> Value {
    let mut props = Map::new();
    for f in res.fields.iter().filter(|f| f.write) {
        props.insert(f.wire.into(), field_schema(f.ty, f.doc, true));
    }
    let mut schema = json!({"type": "object", "additionalProperties": false, "properties": props});
    // OpenAPI 3.0 forbids an empty `required` list.
    if !res.required.is_empty() {
        schema["required"] = json!(res.required);
    }
    schema
}

/// One line of a JSONL stream of completion events (`Accept: application/jsonl`).
pub fn completion_event_schema() -> Value {
    json!({"type": "object", "required": ["type", "data"], "properties": {
        "type": {"type": "string", "enum": ["token", "message", "usage", "result", "error"]},
        "data": {"description": "`token`: {token}; `message`: the bot message; `usage`: {token}; `result`: the JSON answer; `error`: {message, code}"}}})
}

fn operation(op: &Op) -> Value {
    let mut ok = json!({"application/json": {"schema": op.response}});
    if let Some(line) = &op.jsonl {
        ok["application/jsonl"] = json!({"schema": line});
    }
    let mut operation = json!({
        "operationId": op.id,
        "summary": op.summary,
        "tags": [op.tag],
        "responses": {
            "200": {"description": "OK", "content": ok},
            "default": {"description": "An error response", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
        }
    });
    if op.jsonl.is_some() {
        operation["description"] = json!("With `Accept: application/jsonl` the answer is a stream of JSON lines, each described by the `application/jsonl` schema.");
    }
    let params: Vec<Value> = op
        .path
        .split('/')
        .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
        .collect();
    let mut params = params;
    params.extend(op.query.iter().cloned());
    if !params.is_empty() {
        operation["parameters"] = Value::Array(params);
    }
    if let Some(request) = &op.request {
        operation["requestBody"] = request_body(request);
    }
    operation
}

/// An operation's JSON body as the server reads it (crate::http::extract::JsonBody).
fn request_body(schema: &Value) -> Value {
    let mut schema = schema.clone();
    // Every route refuses keys it does not know, as ChatBotKit's schemas do.
    if schema["type"] == "object" && schema.get("additionalProperties").is_none() {
        schema["additionalProperties"] = Value::Bool(false);
    }
    let required: Vec<String> = schema["required"]
        .as_array()
        .map(|r| {
            r.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    // A required field is refused as null, where optional ones read null as absent.
    for name in &required {
        if let Some(field) = schema["properties"][name].as_object_mut() {
            field.remove("nullable");
            if let Some(Value::Array(values)) = field.get_mut("enum") {
                values.retain(|v| !v.is_null());
            }
        }
    }
    // An empty body counts as `{}` (the SDK sends none for delete and setup), so a body is
    // required only where a field is.
    json!({"required": !required.is_empty(),
        "content": {"application/json": {"schema": schema}}})
}

/// A provider's callbacks for `channel`: signed, unauthenticated, form-encoded.
fn webhook_paths(paths: &mut Map<String, Value>, channel: &str) {
    let path_param = json!([{"name": "integrationId", "in": "path", "required": true, "schema": {"type": "string"}}]);
    let form = |fields: Value, required: Value| {
        json!({"required": true, "content": {
        "application/x-www-form-urlencoded": {"schema": {"type": "object", "required": required, "properties": fields, "additionalProperties": {"type": "string"}}}}})
    };
    let refusals = json!({
        "400": {"description": "Signed, but not a message callback Chatwire understands (recorded in the channel log)"},
        "403": {"description": "The signature does not match the public URL, or the integration has no auth token or another account (recorded in the channel log)"},
        "404": {"description": "No integration has this id (recorded in the channel log)"},
        "413": {"description": "Body over 64 KB"},
        "503": {"description": "The database could not record it; the provider retries"}
    });
    let mut message_responses = refusals.clone();
    message_responses["200"] = json!({"description": "Recorded (or a duplicate): empty TwiML", "content": {"text/xml": {"schema": {"type": "string", "example": "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response/>"}}}});
    let mut status_responses = refusals;
    status_responses["204"] = json!({"description": "Applied (statuses only move forward)"});
    let security = json!([]);
    let signature = json!({"name": "X-Twilio-Signature", "in": "header", "required": true, "schema": {"type": "string"},
        "description": "HMAC-SHA1 of CHATWIRE_PUBLIC_URL + path + sorted parameters, keyed by the integration's auth token"});
    let mut params = path_param.as_array().cloned().unwrap_or_default();
    params.push(signature);
    paths.insert(
        format!("/integration/{channel}/{{integrationId}}/webhook"),
        json!({"post": {
            "operationId": format!("{channel}MessageWebhook"),
            "summary": "Incoming message callback (Twilio's SmsUrl); `setup` points the number here (Chatwire)",
            "tags": ["webhook"], "security": security, "parameters": params,
            "requestBody": form(
                json!({"MessageSid": {"type": "string"}, "AccountSid": {"type": "string"}, "From": {"type": "string"},
                       "To": {"type": "string"}, "Body": {"type": "string"}, "NumMedia": {"type": "string"},
                       "ProfileName": {"type": "string"}}),
                json!(["MessageSid", "AccountSid", "From", "To"])),
            "responses": message_responses}}),
    );
    paths.insert(
        format!("/integration/{channel}/{{integrationId}}/status"),
        json!({"post": {
            "operationId": format!("{channel}StatusWebhook"),
            "summary": "Delivery status callback (StatusCallback of every message Chatwire sends) (Chatwire)",
            "tags": ["webhook"], "security": security, "parameters": params,
            "requestBody": form(
                json!({"MessageSid": {"type": "string"}, "MessageStatus": {"type": "string"}, "ErrorCode": {"type": "string"}}),
                json!(["MessageSid", "MessageStatus"])),
            "responses": status_responses}}),
    );
}

/// The operations routes, served at the root rather than under `/v1`.
fn operations_paths(paths: &mut Map<String, Value>) {
    let root = json!([{"url": "/"}]);
    let text = |description: &str| json!({"description": description, "content": {"text/plain": {"schema": {"type": "string"}}}});
    let plain = |id: &str, summary: &str, ok: Value, more: Value| {
        let mut responses = json!({"200": ok});
        if let Value::Object(more) = more {
            for (k, v) in more {
                responses[k] = v;
            }
        }
        json!({"servers": root, "get": {"operationId": id, "summary": summary, "tags": ["operations"],
            "security": [], "responses": responses}})
    };
    paths.insert(
        "/healthz".into(),
        plain("healthz", "The process answers", text("`ok`"), json!({})),
    );
    paths.insert(
        "/readyz".into(),
        plain(
            "readyz",
            "Able to accept: the database takes a write within 2 s and both claim loops are alive",
            text("`ready`"),
            json!({"503": text("`database not writable` or `claim loop stalled: ...`")}),
        ),
    );
    paths.insert(
        "/metrics".into(),
        plain(
            "metrics",
            "Prometheus metrics (text exposition format 0.0.4)",
            json!({"description": "Counters, gauges and histograms with HELP and TYPE lines",
                   "content": {"text/plain": {"schema": {"type": "string"}}}}),
            json!({}),
        ),
    );
    paths.insert(
        "/openapi.json".into(),
        json!({"get": {"operationId": "openapi", "summary": "This document", "tags": ["operations"], "security": [],
            "responses": {"200": {"description": "OpenAPI 3.0 document", "content": {"application/json": {"schema": {"type": "object"}}}}}}}),
    );
}

/// Builds the document from the registered operations, the webhooks of `channels` and the
/// operations routes.
pub fn document(ops: &[Op], channels: &[&str]) -> Value {
    let mut paths = Map::new();
    for op in ops {
        let entry = paths
            .entry(format!("/{}", op.path))
            .or_insert_with(|| json!({}));
        entry[op.method] = operation(op);
    }
    for channel in channels {
        webhook_paths(&mut paths, channel);
    }
    operations_paths(&mut paths);
    json!({
        "openapi": "3.0.3",
        "info": {"title": "Chatwire API", "version": env!("CARGO_PKG_VERSION"),
                 "description": "ChatBotKit v1 compatible management API of Chatwire, its providers' webhooks and its operations routes. Every path is served under /v1 and /api/v1, except /healthz, /readyz and /metrics (at the root). Chatwire's additions are marked (Chatwire)."},
        "servers": [{"url": "/v1"}],
        "security": [{"BearerAuth": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"BearerAuth": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": {"type": "object", "required": ["message", "code"],
                "properties": {"message": {"type": "string"}, "code": {"type": "string"}}}}
        }
    })
}
