//! The OpenAPI 3 document, generated from the route registry and the resource descriptions.
use super::Op;
use crate::store::resource::{Resource, Ty};
use serde_json::{json, Map, Value};

fn field_schema(ty: Ty, doc: &str) -> Value {
    let mut s = match ty {
        Ty::Enum(values, default) => json!({"type": "string", "enum": values, "default": default}),
        Ty::Bool(default) => json!({"type": "boolean", "default": default}),
        Ty::Int(min, max) => {
            json!({"type": "integer", "minimum": min, "maximum": max, "nullable": true})
        }
        Ty::Float(min, max) => {
            json!({"type": "number", "nullable": true, "minimum": min, "maximum": max})
        }
        Ty::Meta => json!({"type": "object", "additionalProperties": true, "nullable": true}),
        Ty::Json => json!({"nullable": true}),
        Ty::Name => json!({"type": "string", "default": ""}),
        Ty::Text(default) => json!({"type": "string", "default": default}),
        Ty::Sid(prefix) => {
            json!({"type": "string", "nullable": true, "pattern": format!("^({prefix}[0-9a-fA-F]{{32}})?$")})
        }
        _ => json!({"type": "string", "nullable": true}),
    };
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
        props.insert(f.wire.into(), field_schema(f.ty, f.doc));
    }
    props.insert("createdAt".into(), json!({"type": "number", "description": "The timestamp (ms) when the instance was created"}));
    props.insert("updatedAt".into(), json!({"type": "number", "description": "The timestamp (ms) when the instance was updated"}));
    json!({"type": "object", "required": ["id", "createdAt", "updatedAt"], "properties": props})
}

/// What create and update accept for `res` (unknown keys are refused).
pub fn write_schema(res: &Resource) -> Value {
    let mut props = Map::new();
    for f in res.fields.iter().filter(|f| f.write) {
        props.insert(f.wire.into(), field_schema(f.ty, f.doc));
    }
    json!({"type": "object", "additionalProperties": false, "required": res.required, "properties": props})
}

/// Builds the document from the registered operations.
pub fn document(ops: &[Op]) -> Value {
    let mut paths = Map::new();
    for op in ops {
        let mut operation = json!({
            "operationId": op.id,
            "summary": op.summary,
            "tags": [op.tag],
            "responses": {
                "200": {"description": "OK", "content": {"application/json": {"schema": op.response}}},
                "default": {"description": "An error response", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
            }
        });
        let params: Vec<Value> = op
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        if !params.is_empty() {
            operation["parameters"] = Value::Array(params);
        }
        if let Some(request) = &op.request {
            operation["requestBody"] =
                json!({"required": true, "content": {"application/json": {"schema": request}}});
        }
        let entry = paths
            .entry(format!("/{}", op.path))
            .or_insert_with(|| json!({}));
        entry[op.method] = operation;
    }
    json!({
        "openapi": "3.0.3",
        "info": {"title": "Chatwire API", "version": env!("CARGO_PKG_VERSION"),
                 "description": "ChatBotKit v1 compatible management API of Chatwire. Every path is served under /v1 and /api/v1."},
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
