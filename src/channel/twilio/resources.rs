//! JSON resources of Twilio's 2010 REST API (reference sections (d) and (e)), shared by the
//! REST client that reads them and the emulator that writes them, so the two cannot drift.
//!
//! Reading is lenient on purpose: Twilio adds fields freely and returns `null` or `""` for
//! unset values, and a response we fail to decode after Twilio accepted a message would look
//! like a failure and invite a duplicate send. Strings that may be null decode to `""`, optional
//! URLs decode `""` to `None`.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

use super::form::MessageStatus;

/// `null` becomes the type's default instead of a decode error.
fn nullable<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// `null` and `""` both mean "not set".
fn empty_as_none<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<String>::deserialize(deserializer)?.filter(|s| !s.is_empty()))
}

/// A Message resource (`/Accounts/{AC}/Messages/{SM}.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageResource {
    pub sid: String,
    #[serde(default, deserialize_with = "nullable")]
    pub account_sid: String,
    #[serde(default, deserialize_with = "nullable")]
    pub api_version: String,
    #[serde(default, deserialize_with = "nullable")]
    pub body: String,
    #[serde(default)]
    pub date_created: Option<String>,
    #[serde(default)]
    pub date_sent: Option<String>,
    #[serde(default)]
    pub date_updated: Option<String>,
    /// `inbound`, `outbound-api`, `outbound-call` or `outbound-reply`.
    #[serde(default, deserialize_with = "nullable")]
    pub direction: String,
    #[serde(default)]
    pub error_code: Option<i64>,
    #[serde(default)]
    pub error_message: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub from: String,
    #[serde(default)]
    pub messaging_service_sid: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub num_media: String,
    #[serde(default, deserialize_with = "nullable")]
    pub num_segments: String,
    #[serde(default)]
    pub price: Option<String>,
    #[serde(default)]
    pub price_unit: Option<String>,
    /// Kept as text so an unknown future status never makes a sent message look failed; see
    /// [`MessageResource::status`].
    #[serde(rename = "status", default, deserialize_with = "nullable")]
    pub status_raw: String,
    #[serde(default, deserialize_with = "nullable")]
    pub subresource_uris: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "nullable")]
    pub to: String,
    #[serde(default, deserialize_with = "nullable")]
    pub uri: String,
}

impl MessageResource {
    /// The parsed status, `None` for a status this code does not know.
    pub fn status(&self) -> Option<MessageStatus> {
        self.status_raw.parse().ok()
    }

    /// `num_segments` as a number (Twilio sends a string; `"0"` while not yet computed).
    pub fn segments(&self) -> u32 {
        self.num_segments.parse().unwrap_or(0)
    }
}

/// An Account resource (`/Accounts/{AC}.json`), without the auth token Twilio also returns:
/// nothing here should hold a secret that could end up in a log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountResource {
    pub sid: String,
    #[serde(default, deserialize_with = "nullable")]
    pub friendly_name: String,
    /// `active`, `suspended` or `closed`.
    #[serde(default, deserialize_with = "nullable")]
    pub status: String,
    /// `Trial` or `Full`.
    #[serde(rename = "type", default, deserialize_with = "nullable")]
    pub account_type: String,
    #[serde(default, deserialize_with = "nullable")]
    pub owner_account_sid: String,
    #[serde(default)]
    pub date_created: Option<String>,
    #[serde(default)]
    pub date_updated: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub subresource_uris: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "nullable")]
    pub uri: String,
}

/// What a number can do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    #[serde(default, alias = "Voice")]
    pub voice: bool,
    #[serde(default, alias = "SMS")]
    pub sms: bool,
    #[serde(default, alias = "MMS")]
    pub mms: bool,
    #[serde(default, alias = "Fax")]
    pub fax: bool,
}

/// An IncomingPhoneNumber resource (`/Accounts/{AC}/IncomingPhoneNumbers/{PN}.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncomingNumber {
    /// `PN…`
    pub sid: String,
    #[serde(default, deserialize_with = "nullable")]
    pub account_sid: String,
    /// E.164.
    #[serde(default, deserialize_with = "nullable")]
    pub phone_number: String,
    #[serde(default, deserialize_with = "nullable")]
    pub friendly_name: String,
    #[serde(default, deserialize_with = "empty_as_none")]
    pub sms_url: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub sms_method: String,
    #[serde(default, deserialize_with = "empty_as_none")]
    pub sms_fallback_url: Option<String>,
    #[serde(default, deserialize_with = "empty_as_none")]
    pub sms_application_sid: Option<String>,
    #[serde(default, deserialize_with = "empty_as_none")]
    pub status_callback: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub status_callback_method: String,
    #[serde(default, deserialize_with = "nullable")]
    pub capabilities: Capabilities,
    #[serde(default, deserialize_with = "nullable")]
    pub api_version: String,
    #[serde(default)]
    pub date_created: Option<String>,
    #[serde(default)]
    pub date_updated: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub status: String,
    #[serde(default, deserialize_with = "nullable")]
    pub uri: String,
}

/// Twilio's error body: `{"code", "message", "more_info", "status"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    #[serde(default)]
    pub code: Option<i64>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub more_info: Option<String>,
    #[serde(default)]
    pub status: Option<u16>,
}

impl ErrorBody {
    /// The body Twilio sends for `code`, with its documentation link.
    pub fn new(status: u16, code: i64, message: impl Into<String>) -> Self {
        ErrorBody {
            code: Some(code),
            message: Some(message.into()),
            more_info: Some(format!("https://www.twilio.com/docs/errors/{code}")),
            status: Some(status),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_message_json_decodes() {
        let json = r#"{
          "account_sid": "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "api_version": "2010-04-01",
          "body": "Hello! 👍", "date_created": "Thu, 24 Aug 2023 05:01:45 +0000",
          "date_sent": null, "date_updated": "Thu, 24 Aug 2023 05:01:45 +0000",
          "direction": "outbound-api", "error_code": null, "error_message": null,
          "from": "+14155552345", "messaging_service_sid": null, "num_media": "0",
          "num_segments": "1", "price": null, "price_unit": null,
          "sid": "SMaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "status": "queued",
          "subresource_uris": {"media": "/2010-04-01/Accounts/AC/Messages/SM/Media.json"},
          "to": "+14155552345", "uri": "/2010-04-01/Accounts/AC/Messages/SM.json",
          "tags": {"future": "field"}
        }"#;
        let message: MessageResource = serde_json::from_str(json).expect("decodes");
        assert_eq!(message.status(), Some(MessageStatus::Queued));
        assert_eq!(message.segments(), 1);
        assert_eq!(message.date_sent, None);
        assert_eq!(message.body, "Hello! 👍");
    }

    #[test]
    fn nulls_and_unknown_status_do_not_fail_decoding() {
        let json = r#"{"sid": "SM1", "from": null, "status": "teleported", "num_segments": null}"#;
        let message: MessageResource = serde_json::from_str(json).expect("decodes");
        assert_eq!(message.from, "");
        assert_eq!(message.status(), None);
        assert_eq!(message.segments(), 0);
    }

    #[test]
    fn incoming_number_treats_empty_urls_as_unset() {
        let json = r#"{"sid": "PN1", "phone_number": "+15005550006", "sms_url": "",
            "status_callback": null, "capabilities": {"voice": true, "SMS": true}}"#;
        let number: IncomingNumber = serde_json::from_str(json).expect("decodes");
        assert_eq!(number.sms_url, None);
        assert_eq!(number.status_callback, None);
        assert!(number.capabilities.sms && !number.capabilities.mms);
    }

    #[test]
    fn error_body_links_to_the_code_page() {
        let body = ErrorBody::new(400, 21610, "Attempt to send to unsubscribed recipient");
        let json = serde_json::to_value(&body).expect("serializes");
        assert_eq!(
            json["more_info"],
            "https://www.twilio.com/docs/errors/21610"
        );
        assert_eq!(json["status"], 400);
    }
}
