//! What the fuzz targets in `fuzz/` run (cargo-fuzz, see `scripts/fuzz.sh`), and what
//! `tests/fuzz_corpus.rs` replays over the committed corpus on every test run. Each entry takes
//! arbitrary bytes, must never panic, and asserts what its code promises for any input.
use crate::bot::markdown;
use crate::bot::studio::{flow::Flow, template};
use crate::channel::twilio::messaging::TwilioMessaging;
use crate::channel::twilio::signature;
use crate::channel::{CallbackRequest, Channel, Refusal};
use crate::sms;
use crate::store::integration::Integration;
use axum::http::{HeaderMap, HeaderValue};
use serde_json::Value;
use std::sync::LazyLock;
use unicode_segmentation::UnicodeSegmentation;

const TOKEN: &str = "fuzz0auth0token00000000000000001";
const ACCOUNT: &str = "AC00000000000000000000000000000001";
const URL: &str = "https://chatwire.example/v1/integration/twilio/fz/webhook";

static TWILIO: LazyLock<TwilioMessaging> =
    LazyLock::new(|| TwilioMessaging::new("http://127.0.0.1:9", reqwest::Client::new()));

fn integration() -> Integration {
    Integration {
        id: "fz".into(),
        bot_id: None,
        account_sid: Some(ACCOUNT.into()),
        auth_token: Some(TOKEN.into()),
        allow_from: "*".into(),
        contact_collection: false,
        session_duration: None,
        phone_number: Some("+15005550006".into()),
        send_rate: None,
        whatsapp_keywords: false,
        whatsapp_template: None,
        burst_window_ms: 0,
        conversations: None,
    }
}

/// The webhook edge's form parser and signature check. The first byte picks how the body is
/// signed (correctly, so the parser is reached; or wrongly); the rest is the body.
pub fn webhook(data: &[u8]) {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    let params: Vec<(String, String)> = url::form_urlencoded::parse(body).into_owned().collect();
    let genuine = mode & 1 == 0;
    let sig = if genuine {
        signature::compute(TOKEN, URL, &params)
    } else {
        signature::compute("another0token", URL, &params)
    };
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_str(&sig) {
        headers.insert("x-twilio-signature", value);
    }
    let request = CallbackRequest {
        url: URL,
        headers: &headers,
        body,
    };
    let integration = integration();
    let inbound = TWILIO.parse_inbound(&integration, request);
    let status = TWILIO.parse_status(&integration, request);
    if !genuine {
        assert!(
            inbound.is_err() && status.is_err(),
            "a wrong signature is never accepted"
        );
    }
    match inbound {
        Ok(message) => assert_eq!(message.account.as_deref(), Some(ACCOUNT)),
        Err(
            Refusal::Malformed(why) | Refusal::Unauthenticated(why) | Refusal::WrongAccount(why),
        ) => assert!(!why.is_empty()),
    }
}

/// The Studio flow loader: any JSON either loads (and then every transition names a state
/// of the flow) or is refused with reasons.
pub fn studio_flow(data: &[u8]) {
    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    match Flow::load(&value) {
        Ok(flow) => {
            assert!(flow.state(&flow.initial_state).is_some());
            for state in &flow.states {
                for t in &state.transitions {
                    if let Some(next) = t.next.as_deref().filter(|n| !n.is_empty()) {
                        assert!(flow.state(next).is_some(), "dangling next {next}");
                    }
                }
            }
            let _ = flow.warnings();
        }
        Err(why) => assert!(!why.is_empty()),
    }
}

/// Liquid rendering: the template is the text before the first NUL byte, the context the
/// JSON after it. A template that checks may still fail to render, but never panics.
pub fn liquid(data: &[u8]) {
    let (template, context) = match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let template = String::from_utf8_lossy(template);
    let context = serde_json::from_slice(context).unwrap_or(Value::Null);
    let checked = template::check(&template);
    let rendered = template::render(&template, &context);
    if checked.is_err() {
        assert!(
            rendered.is_err(),
            "a template that does not parse cannot render"
        );
    }
}

/// The SMS segmenter and splitter: parts are non-empty, within the limit (a single grapheme
/// longer than the limit excepted), and together hold every non-blank character in order.
pub fn sms(data: &[u8]) {
    let Some((&limit, text)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(text);
    let info = sms::segments(&text);
    assert!(info.segments >= 1 || text.is_empty());
    let max = usize::from(limit).max(1);
    let parts = sms::split_reply(&text, max);
    for part in &parts {
        assert!(!part.is_empty());
        let units = part.encode_utf16().count();
        assert!(
            units <= max || part.graphemes(true).count() == 1,
            "part of {units} units over {max}"
        );
    }
    let squeeze = |s: &str| s.chars().filter(|c| !c.is_whitespace()).collect::<String>();
    assert_eq!(squeeze(&parts.concat()), squeeze(&text));
}

/// The markdown converter: both renderings (plain SMS text, WhatsApp) finish for any text.
pub fn markdown(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = markdown::to_plain_text(&text);
    let _ = markdown::to_whatsapp(&text);
}
