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
