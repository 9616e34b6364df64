//! The OpenAPI 3 document, generated from the route registry and the resource descriptions.
use super::Op;
use crate::store::resource::{Resource, Ty};
use serde_json::{json, Map, Value};

fn field_schema(ty: Ty, doc: &str) -> Value {
    let mut s = match ty {
        // Null is accepted for every field with a default, and writes the default.
        Ty::Enum(values, default) => {
            json!({"type": "string", "enum": values, "default": default, "nullable": true})
        }
        Ty::Bool(default) => json!({"type": "boolean", "default": default, "nullable": true}),
        Ty::Int(min, max) => {
            json!({"type": "integer", "minimum": min, "maximum": max, "nullable": true})
        }
        Ty::Float(min, max) => {
            json!({"type": "number", "nullable": true, "minimum": min, "maximum": max})
        }
        // Keys starting with `_` are ChatBotKit's own and refused.
        Ty::Meta => json!({"type": "object", "additionalProperties": true, "nullable": true,
                           "propertyNames": {"pattern": "^[^_]"}}),
        Ty::Json => json!({"nullable": true}),
        Ty::Name => json!({"type": "string", "default": "", "nullable": true}),
        Ty::Text(default) => json!({"type": "string", "default": default, "nullable": true}),
        // "" counts as absent, like null.
        Ty::Email => json!({"type": "string", "nullable": true,
                            "anyOf": [{"format": "email"}, {"maxLength": 0}]}),
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
            let mut request = request.clone();
            // Every route refuses keys it does not know, as ChatBotKit's schemas do.
            if request["type"] == "object" && request.get("additionalProperties").is_none() {
                request["additionalProperties"] = Value::Bool(false);
            }
            // A required field is refused as null, where optional ones read null as absent.
            let required: Vec<String> = request["required"]
                .as_array()
                .map(|r| {
                    r.iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            for name in required {
                if let Some(field) = request["properties"][&name].as_object_mut() {
                    field.remove("nullable");
                }
            }
            // An empty body counts as `{}` (the SDK sends none for delete and setup), so a body
            // is required only where a field is.
            let required = request["required"]
                .as_array()
                .is_some_and(|r| !r.is_empty());
            operation["requestBody"] = json!({"required": required,
                "content": {"application/json": {"schema": request}}});
        }
        let entry = paths
            .entry(format!("/{}", op.path))
            .or_insert_with(|| json!({}));
        entry[op.method] = operation;
    }
    let mut doc = json!({
        "openapi": "3.1.0",
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
    });
    nullable_as_type(&mut doc);
    doc
}

/// Rewrites OpenAPI 3.0's `nullable: true` (which the schemas above use) as OpenAPI 3.1's
/// `type: [T, "null"]` (and `null` among an `enum`'s values). 3.1 schemas are JSON Schema
/// 2020-12, which says what 3.0 cannot: `propertyNames` (no `_` keys in `meta`), for one.
fn nullable_as_type(node: &mut Value) {
    match node {
        Value::Object(map) => {
            if map.remove("nullable") == Some(Value::Bool(true)) {
                if let Some(Value::String(ty)) = map.get("type").cloned() {
                    map.insert("type".into(), json!([ty, "null"]));
                }
                if let Some(Value::Array(values)) = map.get_mut("enum") {
                    values.push(Value::Null);
                }
            }
            map.values_mut().for_each(nullable_as_type);
        }
        Value::Array(items) => items.iter_mut().for_each(nullable_as_type),
        _ => {}
    }
}
