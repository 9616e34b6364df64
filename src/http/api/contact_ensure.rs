//! `POST /contact/ensure`: idempotent get-or-create of a contact, as ChatBotKit's.
//!
//! With a `fingerprint` the contact is "trusted" (created verified); without one the fingerprint
//! is derived from the name, email, phone and nick the way ChatBotKit derives it, so the same
//! attributes always ensure the same contact. An existing contact is returned unchanged.
use super::validate::{self, Mode};
use super::{id_schema, openapi, Op, Routes};
use crate::app::AppState;
use crate::domain::fingerprint::{fingerprint, UNTRUSTED_NAMESPACE};
use crate::domain::now_ms;
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::JsonBody;
use crate::store::schema::CONTACT;
use crate::store::{contacts, Param};
use axum::extract::State;
use axum::Json;
use serde_json::{json, Map, Value};

/// Body keys ChatBotKit's ensure accepts (no alias or blueprint).
const ALLOWED: &[&str] = &[
    "name",
    "description",
    "meta",
    "fingerprint",
    "email",
    "phone",
    "nick",
    "preferences",
    "verifiedAt",
];

pub fn register(r: Routes) -> Routes {
    let mut request = openapi::write_schema(&CONTACT);
    if let Some(props) = request["properties"].as_object_mut() {
        props.retain(|k, _| ALLOWED.contains(&k.as_str()));
    }
    let op = Op::post(
        "contact/ensure",
        "ensureContact",
        "Ensure a contact exists or create a new one",
        "contact",
    )
    .request(request)
    .response(id_schema());
    r.add(op, |State(s): State<AppState>, JsonBody(b): JsonBody| {
        ensure(s, b)
    })
}

async fn ensure(state: AppState, mut body: Map<String, Value>) -> ApiResult<Json<Value>> {
    if let Some(key) = body.keys().find(|k| !ALLOWED.contains(&k.as_str())) {
        return Err(ApiError::bad_request(format!("\"{key}\" is not allowed")));
    }
    let given = match body.get("fingerprint") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
        Some(_) => {
            return Err(ApiError::bad_request(
                "\"fingerprint\" must be a non-empty string",
            ))
        }
    };
    let trusted = given.is_some();
    // A trusted contact is verified now unless the caller says when.
    if trusted && body.get("verifiedAt").is_none_or(Value::is_null) {
        body.insert("verifiedAt".into(), json!(now_ms()));
    }
    body.insert(
        "fingerprint".into(),
        Value::String(given.clone().unwrap_or_default()),
    );
    let cols = validate::columns(&state, &CONTACT, &body, Mode::Create, &[]).await?;
    let fingerprint = match given {
        Some(f) => f,
        None => derived(&body, &cols),
    };
    let (id, _created) =
        contacts::ensure(&state.db, &CONTACT, &fingerprint, &cols, now_ms()).await?;
    Ok(Json(json!({ "id": id })))
}

/// ChatBotKit's untrusted fingerprint: name, email, phone (as normalised) and nick, absent ones
/// counted as absent rather than empty.
fn derived(body: &Map<String, Value>, cols: &[(&'static str, Param)]) -> String {
    let part = |wire: &str, column: &str| -> Option<String> {
        body.get(wire).filter(|v| !v.is_null())?;
        cols.iter()
            .find(|(c, _)| *c == column)
            .and_then(|(_, p)| match p {
                Param::Text(s) => s.clone(),
                _ => None,
            })
    };
    let parts = [
        part("name", "name"),
        part("email", "email"),
        part("phone", "phone"),
        part("nick", "nick"),
    ];
    let refs: Vec<Option<&str>> = parts.iter().map(Option::as_deref).collect();
    fingerprint(UNTRUSTED_NAMESPACE, &refs)
}
