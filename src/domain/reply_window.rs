//! WhatsApp's 24-hour customer-service window: a free-form message reaches a WhatsApp user
//! only within 24 hours of their last message; outside it only an approved template does
//! (Twilio refuses anything else with error 63016).
use serde_json::Value;

/// The window's length.
pub const WINDOW_MS: i64 = 24 * 60 * 60 * 1000;
/// Twilio's code for a free-form WhatsApp message outside the window.
pub const OUTSIDE_WINDOW: i64 = 63016;

/// Whether a free-form message may go out at `now` to someone who last wrote at `last_inbound`.
pub fn is_open(last_inbound: Option<i64>, now: i64) -> bool {
    last_inbound.is_some_and(|at| now - at < WINDOW_MS)
}

/// A template setting (`{"contentSid": "HX...", "contentVariables": {...}}`) made ready for a
/// message: `{{body}}` in a variable is the message's text. `None` when the setting has no
/// `contentSid`.
pub fn template_for(setting: &Value, body: &str) -> Option<(String, Option<String>)> {
    let sid = setting["contentSid"].as_str().filter(|s| !s.is_empty())?;
    let variables = setting["contentVariables"].as_object().map(|vars| {
        let filled: serde_json::Map<String, Value> = vars
            .iter()
            .map(|(k, v)| {
                let v = match v {
                    Value::String(s) => Value::String(s.replace("{{body}}", body)),
                    other => Value::String(other.to_string()),
                };
                (k.clone(), v)
            })
            .collect();
        Value::Object(filled).to_string()
    });
    Some((sid.to_owned(), variables))
}

/// The template a caller gives with one message (`contentSid`, and `contentVariables` as an
/// object or, as Twilio takes it, a JSON string of one), as a template setting. `Ok(None)` when
/// no `contentSid` is given; an error names what is wrong.
pub fn given(
    content_sid: Option<&Value>,
    variables: Option<&Value>,
) -> Result<Option<Value>, String> {
    let sid = match content_sid {
        None | Some(Value::Null) => {
            return match variables {
                None | Some(Value::Null) => Ok(None),
                Some(_) => Err("\"contentVariables\" needs \"contentSid\"".into()),
            }
        }
        Some(Value::String(s)) => s,
        Some(_) => return Err("\"contentSid\" must be a string".into()),
    };
    let well_formed =
        sid.len() == 34 && sid.starts_with("HX") && sid[2..].bytes().all(|b| b.is_ascii_hexdigit());
    if !well_formed {
        return Err(
            "\"contentSid\" must be a Content SID: HX followed by 32 hexadecimal digits".into(),
        );
    }
    let variables = match variables {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(serde_json::from_str::<Value>(s).map_err(|_| {
            "\"contentVariables\" must be an object or a JSON string of one".to_owned()
        })?),
        Some(v) => Some(v.clone()),
    };
    match &variables {
        None => {}
        Some(Value::Object(vars)) if vars.values().any(|v| v.is_object() || v.is_array()) => {
            return Err("\"contentVariables\" values must be strings or numbers".into());
        }
        Some(Value::Object(_)) => {}
        Some(_) => {
            return Err("\"contentVariables\" must be an object or a JSON string of one".into())
        }
    }
    let mut setting = serde_json::Map::new();
    setting.insert("contentSid".into(), Value::String(sid.clone()));
    if let Some(vars) = variables {
        setting.insert("contentVariables".into(), vars);
    }
    Ok(Some(Value::Object(setting)))
}

/// Why a message outside the window was not sent.
pub fn refusal() -> String {
    format!(
        "outside WhatsApp's 24-hour window and no approved template is configured (set whatsappTemplate on the integration); Twilio would refuse it with error {OUTSIDE_WINDOW}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_window_is_open_for_24_hours_after_the_last_inbound_message() {
        assert!(is_open(Some(0), WINDOW_MS - 1));
        assert!(!is_open(Some(0), WINDOW_MS));
        assert!(!is_open(None, 0), "nobody wrote: no window");
    }

    #[test]
    fn a_template_given_with_a_call_is_checked_and_takes_variables_as_object_or_json_string() {
        let sid = json!("HX0123456789abcdef0123456789abcdef");
        assert_eq!(given(None, None), Ok(None));
        assert_eq!(
            given(Some(&sid), Some(&json!("{\"1\": \"Ana\"}"))),
            Ok(Some(
                json!({"contentSid": sid, "contentVariables": {"1": "Ana"}})
            ))
        );
        assert_eq!(
            given(Some(&sid), Some(&json!({"1": 2}))),
            Ok(Some(
                json!({"contentSid": sid, "contentVariables": {"1": 2}})
            ))
        );
        assert!(
            given(Some(&json!("HX1")), None).is_err(),
            "not a Content SID"
        );
        assert!(given(Some(&json!(7)), None).is_err());
        assert!(
            given(None, Some(&json!({"1": "x"}))).is_err(),
            "variables alone"
        );
        assert!(given(Some(&sid), Some(&json!("not json"))).is_err());
        assert!(given(Some(&sid), Some(&json!({"1": {"deep": 1}}))).is_err());
        assert!(given(Some(&sid), Some(&json!([1]))).is_err());
    }

    #[test]
    fn a_template_fills_the_body_into_its_variables() {
        let setting =
            json!({"contentSid": "HX1", "contentVariables": {"1": "Re: {{body}}", "2": 5}});
        let (sid, vars) = template_for(&setting, "your order").expect("template");
        assert_eq!(sid, "HX1");
        let vars: Value = serde_json::from_str(&vars.expect("vars")).expect("json");
        assert_eq!(vars, json!({"1": "Re: your order", "2": "5"}));
        assert_eq!(template_for(&json!({}), "x"), None);
    }
}
