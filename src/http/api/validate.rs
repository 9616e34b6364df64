//! Turns a request body into column values for a [`Resource`], as ChatBotKit's Joi schemas do:
//! unknown keys are refused, every problem is reported (joined with `"; "`), references to
//! other resources are resolved, secrets are sealed.
use crate::app::AppState;
use crate::domain::{ids, phone};
use crate::http::error::ApiError;
use crate::store::resource::{Resource, Ty};
use crate::store::Param;
use serde_json::{Map, Value};

/// Whether absent fields take their defaults (create) or stay as they are (update).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Create,
    Update,
}

/// Longest `name` accepted, in bytes.
const MAX_NAME: usize = 1024;
/// Longest free text accepted (a backstory, a record), in bytes.
const MAX_TEXT: usize = 512 * 1024;

/// Validates `body` against `res`, skipping the keys in `extra` (handled by the caller).
pub async fn columns(
    state: &AppState,
    res: &Resource,
    body: &Map<String, Value>,
    mode: Mode,
    extra: &[&str],
) -> Result<Vec<(&'static str, Param)>, ApiError> {
    let mut errors = Vec::new();
    for key in body.keys() {
        let writable = res.field(key).is_some_and(|f| f.write);
        if !writable && !extra.contains(&key.as_str()) {
            errors.push(format!("\"{key}\" is not allowed"));
        }
    }
    if mode == Mode::Create {
        for key in res.required {
            if body.get(*key).is_none_or(Value::is_null) {
                errors.push(format!("\"{key}\" is required"));
            }
        }
    }
    let mut cols = Vec::new();
    for field in res.fields.iter().filter(|f| f.write) {
        let value = body.get(field.wire);
        if value.is_none() && mode == Mode::Update {
            continue;
        }
        match convert(state, field.wire, field.ty, value, mode).await {
            Ok(Some(param)) => cols.push((field.column, param)),
            Ok(None) => {}
            Err(msg) => errors.push(msg),
        }
    }
    if errors.is_empty() {
        Ok(cols)
    } else {
        Err(ApiError::bad_request(errors.join("; ")))
    }
}

fn text<'a>(key: &str, value: &'a Value, max: usize) -> Result<Option<&'a str>, String> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) if s.len() > max => Err(format!("\"{key}\" must be at most {max} bytes")),
        Value::String(s) => Ok(Some(s)),
        _ => Err(format!("\"{key}\" must be a string")),
    }
}

/// One field's value as a column parameter. `Ok(None)` leaves the column out of the statement.
async fn convert(
    state: &AppState,
    key: &str,
    ty: Ty,
    value: Option<&Value>,
    mode: Mode,
) -> Result<Option<Param>, String> {
    let v = value.unwrap_or(&Value::Null);
    let nonempty = |s: Option<&str>| s.filter(|s| !s.is_empty()).map(str::to_owned);
    Ok(Some(match ty {
        Ty::Name => Param::from(text(key, v, MAX_NAME)?.unwrap_or("")),
        Ty::Text(default) => Param::from(text(key, v, MAX_TEXT)?.unwrap_or(default)),
        Ty::OptStr => Param::from(text(key, v, MAX_TEXT)?.map(str::to_owned)),
        Ty::Alias => Param::from(nonempty(text(key, v, MAX_NAME)?)),
        Ty::Enum(allowed, default) => match text(key, v, MAX_NAME)? {
            None => Param::from(default),
            Some(s) if allowed.contains(&s) => Param::from(s),
            Some(_) => return Err(format!("\"{key}\" must be one of [{}]", allowed.join(", "))),
        },
        Ty::Bool(default) => Param::from(match v {
            Value::Null => default,
            Value::Bool(b) => *b,
            Value::String(s) if s == "true" => true,
            Value::String(s) if s == "false" => false,
            _ => return Err(format!("\"{key}\" must be a boolean")),
        }),
        Ty::Int(min, max) => match v {
            Value::Null => Param::Int(None),
            Value::Number(n) => match integer(n) {
                Some(i) if (min..=max).contains(&i) => Param::Int(Some(i)),
                Some(_) => return Err(format!("\"{key}\" must be between {min} and {max}")),
                None => {
                    return Err(format!(
                        "\"{key}\" must be an integer between {min} and {max}"
                    ))
                }
            },
            _ => return Err(format!("\"{key}\" must be a number")),
        },
        Ty::Float(min, max) => match v {
            Value::Null => Param::Float(None),
            Value::Number(n) => {
                let f = n.as_f64().unwrap_or(f64::NAN);
                if !(min..=max).contains(&f) {
                    return Err(format!("\"{key}\" must be between {min} and {max}"));
                }
                Param::Float(Some(f))
            }
            _ => return Err(format!("\"{key}\" must be a number")),
        },
        Ty::Meta => match v {
            Value::Null => Param::Text(None),
            Value::Object(map) => {
                // ChatBotKit's pattern `^[^_]`: the empty key fails it too.
                if let Some(bad) = map.keys().find(|k| k.is_empty() || k.starts_with('_')) {
                    return Err(format!("\"{key}.{bad}\" is not allowed"));
                }
                Param::from(Value::Object(map.clone()).to_string())
            }
            _ => return Err(format!("\"{key}\" must be of type object")),
        },
        Ty::Json => match v {
            Value::Null => Param::Text(None),
            other => Param::from(other.to_string()),
        },
        Ty::Ref(table, label) => match nonempty(text(key, v, MAX_NAME)?) {
            None => Param::Text(None),
            Some(id) => match crate::store::refs::resolve(&state.db, table, &id).await {
                Ok(Some(real)) => Param::from(real),
                Ok(None) => return Err(format!("{label} not found")),
                Err(err) => {
                    tracing::error!(error = %err, "resolving reference");
                    return Err(format!("{label} could not be checked"));
                }
            },
        },
        Ty::Secret => Param::from(nonempty(text(key, v, MAX_NAME)?).map(|s| state.cipher.seal(&s))),
        Ty::Phone => match nonempty(text(key, v, MAX_NAME)?) {
            None => Param::Text(None),
            Some(raw) => match phone::normalize_e164(&raw, state.config.default_region) {
                Some(e164) => Param::from(e164),
                None => return Err(format!("\"{key}\" must be a phone number")),
            },
        },
        Ty::Sid(prefix) => match nonempty(text(key, v, MAX_NAME)?) {
            None => Param::Text(None),
            Some(sid) if is_sid(&sid, prefix) => Param::from(sid),
            Some(_) => {
                return Err(format!(
                    "\"{key}\" must be {prefix} followed by 32 hexadecimal digits"
                ))
            }
        },
        Ty::Address => match nonempty(text(key, v, MAX_NAME)?) {
            None => Param::Text(None),
            Some(raw) => {
                let (prefix, number) = match raw.strip_prefix("whatsapp:") {
                    Some(rest) => ("whatsapp:", rest),
                    None => ("", raw.as_str()),
                };
                match phone::normalize_e164(number, state.config.default_region) {
                    Some(e164) => Param::from(format!("{prefix}{e164}")),
                    None => {
                        return Err(format!(
                            "\"{key}\" must be an E.164 number or whatsapp:+E.164"
                        ))
                    }
                }
            }
        },
        Ty::Email => match nonempty(text(key, v, MAX_NAME)?) {
            None => Param::Text(None),
            Some(s) => {
                let valid = s.split_once('@').is_some_and(|(user, host)| {
                    !user.is_empty()
                        && host.contains('.')
                        && !host.starts_with('.')
                        && !host.ends_with('.')
                }) && !s.contains(char::is_whitespace);
                if !valid {
                    return Err(format!("\"{key}\" must be a valid email"));
                }
                Param::from(s)
            }
        },
        Ty::Fingerprint => match nonempty(text(key, v, MAX_NAME)?) {
            Some(s) => Param::from(s),
            None if mode == Mode::Create => Param::from(ids::new_id()),
            None => return Ok(None),
        },
    }))
}

/// `n` as an exact integer: `1` and `1.0` are, `1.5` and numbers beyond `i64` are not (a float
/// comparison would let 2^63 pass as `i64::MAX`).
fn integer(n: &serde_json::Number) -> Option<i64> {
    if let Some(i) = n.as_i64() {
        return Some(i);
    }
    let f = n.as_f64()?;
    // 2^63 is the first float past i64::MAX; every whole float below it in magnitude converts
    // exactly.
    let limit = 2f64.powi(63);
    (f.fract() == 0.0 && (-limit..limit).contains(&f)).then_some(f as i64)
}

/// Whether `value` is a Twilio SID with `prefix`: Twilio's own pattern `^AC[0-9a-fA-F]{32}$`.
pub fn is_sid(value: &str, prefix: &str) -> bool {
    value.len() == prefix.len() + 32
        && value.starts_with(prefix)
        && value[prefix.len()..].bytes().all(|b| b.is_ascii_hexdigit())
}

/// `meta` on update: replaced wholesale, unless `{"$update": {...}}` asks for a merge; keys that
/// start with a non-word character or `_` are dropped, as ChatBotKit does.
pub fn merge_meta(stored: Option<&str>, incoming: &Value) -> Option<Value> {
    let Value::Object(map) = incoming else {
        return None;
    };
    let patch = map.get("$update")?.as_object()?;
    let mut base = stored
        .and_then(|s| serde_json::from_str::<Map<String, Value>>(s).ok())
        .unwrap_or_default();
    for (k, v) in patch {
        if k.starts_with(|c: char| !(c.is_alphanumeric())) {
            continue;
        }
        base.insert(k.clone(), v.clone());
    }
    Some(Value::Object(base))
}

#[cfg(test)]
mod tests {
    use super::merge_meta;
    use serde_json::json;

    #[test]
    fn integers_are_exact() {
        let n = |v: serde_json::Value| match v {
            serde_json::Value::Number(n) => super::integer(&n),
            _ => None,
        };
        assert_eq!(n(json!(42)), Some(42));
        assert_eq!(n(json!(1.0)), Some(1));
        assert_eq!(n(json!(1.5)), None);
        assert_eq!(n(json!(9_223_372_036_854_775_807_i64)), Some(i64::MAX));
        assert_eq!(
            n(json!(9_223_372_036_854_775_808_u64)),
            None,
            "2^63 is not i64::MAX"
        );
        assert_eq!(n(json!(9.3e18)), None);
    }

    #[test]
    fn meta_update_merges_only_with_dollar_update() {
        let merged = merge_meta(
            Some(r#"{"a":1,"b":2}"#),
            &json!({"$update": {"b": 3, "_x": 1, "c": 4}}),
        );
        assert_eq!(merged, Some(json!({"a": 1, "b": 3, "c": 4})));
        assert_eq!(merge_meta(Some(r#"{"a":1}"#), &json!({"b": 2})), None);
    }
}
