//! Typed views of Twilio's form-encoded webhooks: inbound messages and status callbacks.
//!
//! Parsing happens after the signature check and before anything is stored, so a malformed
//! webhook is refused with a precise reason instead of becoming a half-filled row. Parsing is
//! deliberately loose where Twilio is loose (unknown parameters are ignored, `Body` may be absent
//! on a media-only message) and strict where the pipeline depends on a value (`MessageSid` is
//! the idempotency key; `From`/`To` pick the conversation).

pub use super::address::{Address, AddressError, ChannelKind};
pub use crate::domain::delivery::{MessageStatus, UnknownStatus};

/// Twilio sends at most 10 media items per message; more is not a Twilio webhook.
pub const MAX_MEDIA: usize = 10;

/// One attachment of an inbound MMS or WhatsApp message.
pub use crate::domain::message::Media;

/// An inbound message webhook (`SmsUrl`), parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundMessage {
    /// `SM…`/`MM…`: the idempotency key of the inbound turn.
    pub message_sid: String,
    pub account_sid: String,
    /// The person writing in.
    pub from: Address,
    /// Our Twilio number.
    pub to: Address,
    /// Empty for a media-only message.
    pub body: String,
    /// Every `MediaUrlN`/`MediaContentTypeN` pair, N = 0..NumMedia, in order.
    pub media: Vec<Media>,
    /// WhatsApp only: the sender's profile name.
    pub profile_name: Option<String>,
    /// WhatsApp only: the sender's WhatsApp id (digits, no `+`).
    pub wa_id: Option<String>,
    pub channel: ChannelKind,
}

/// Why a webhook form was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormError {
    #[error("missing parameter {0}")]
    Missing(&'static str),
    #[error("invalid {name}: {reason}")]
    Invalid { name: String, reason: String },
    #[error("From is on {from} but To is on {to}")]
    ChannelMismatch { from: ChannelKind, to: ChannelKind },
}

fn invalid(name: impl Into<String>, reason: impl Into<String>) -> FormError {
    FormError::Invalid {
        name: name.into(),
        reason: reason.into(),
    }
}

/// The first value of `name`; Twilio never repeats these keys, and the first one is what the
/// signature check saw first too.
fn get<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

fn require<'a>(params: &'a [(String, String)], name: &'static str) -> Result<&'a str, FormError> {
    match get(params, name) {
        Some(v) if !v.trim().is_empty() => Ok(v.trim()),
        _ => Err(FormError::Missing(name)),
    }
}

/// Checks the shape of a Twilio SID loosely: 34 ASCII alphanumerics starting with `prefixes`.
fn sid(
    params: &[(String, String)],
    name: &'static str,
    prefixes: &[&str],
) -> Result<String, FormError> {
    let value = require(params, name)?;
    let shaped = value.len() == 34 && value.bytes().all(|b| b.is_ascii_alphanumeric());
    if !shaped || !prefixes.iter().any(|p| value.starts_with(p)) {
        return Err(invalid(
            name,
            format!("expected {} followed by 32 hex digits", prefixes.join("|")),
        ));
    }
    Ok(value.to_owned())
}

fn address(params: &[(String, String)], name: &'static str) -> Result<Address, FormError> {
    let address =
        Address::parse(require(params, name)?).map_err(|e| invalid(name, e.to_string()))?;
    if address.phone().is_none() {
        return Err(invalid(name, "expected a phone number or whatsapp:+E.164"));
    }
    Ok(address)
}

fn non_empty(params: &[(String, String)], name: &str) -> Option<String> {
    get(params, name)
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

impl InboundMessage {
    /// Parses an inbound message webhook's decoded form pairs.
    pub fn parse(params: &[(String, String)]) -> Result<Self, FormError> {
        let message_sid = sid(params, "MessageSid", &["SM", "MM"])?;
        let account_sid = sid(params, "AccountSid", &["AC"])?;
        let from = address(params, "From")?;
        let to = address(params, "To")?;
        if from.channel() != to.channel() {
            return Err(FormError::ChannelMismatch {
                from: from.channel(),
                to: to.channel(),
            });
        }
        let num_media = match get(params, "NumMedia").map(str::trim) {
            None | Some("") => 0,
            Some(n) => n
                .parse::<usize>()
                .ok()
                .filter(|n| *n <= MAX_MEDIA)
                .ok_or_else(|| invalid("NumMedia", format!("expected 0 to {MAX_MEDIA}")))?,
        };
        let media = (0..num_media)
            .map(|i| {
                let url = non_empty(params, &format!("MediaUrl{i}"))
                    .ok_or_else(|| invalid(format!("MediaUrl{i}"), "missing for NumMedia"))?;
                let content_type = non_empty(params, &format!("MediaContentType{i}"))
                    .unwrap_or_else(|| "application/octet-stream".to_owned());
                Ok(Media { url, content_type })
            })
            .collect::<Result<Vec<_>, FormError>>()?;
        let whatsapp = from.channel() == ChannelKind::WhatsApp;
        Ok(InboundMessage {
            message_sid,
            account_sid,
            body: get(params, "Body").unwrap_or_default().to_owned(),
            media,
            profile_name: non_empty(params, "ProfileName").filter(|_| whatsapp),
            wa_id: non_empty(params, "WaId").filter(|_| whatsapp),
            channel: from.channel(),
            from,
            to,
        })
    }
}

/// A status callback webhook (`StatusCallback`), parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusCallback {
    pub message_sid: String,
    /// The account the callback speaks for (Twilio always sends it; absent in hand-made tests).
    pub account_sid: Option<String>,
    pub status: MessageStatus,
    /// Set on failed/undelivered, e.g. 30003.
    pub error_code: Option<i64>,
}

impl StatusCallback {
    /// Parses a status callback's decoded form pairs (`MessageStatus`, else legacy `SmsStatus`).
    pub fn parse(params: &[(String, String)]) -> Result<Self, FormError> {
        let message_sid = sid(params, "MessageSid", &["SM", "MM"])?;
        let raw_status = require(params, "MessageStatus")
            .or_else(|_| require(params, "SmsStatus"))
            .map_err(|_| FormError::Missing("MessageStatus"))?;
        let status = raw_status
            .parse()
            .map_err(|e: UnknownStatus| invalid("MessageStatus", e.to_string()))?;
        let error_code = match non_empty(params, "ErrorCode") {
            None => None,
            Some(code) => Some(
                code.parse::<i64>()
                    .map_err(|_| invalid("ErrorCode", "expected an integer"))?,
            ),
        };
        let account_sid = match get(params, "AccountSid") {
            None => None,
            Some(_) => Some(sid(params, "AccountSid", &["AC"])?),
        };
        Ok(StatusCallback {
            message_sid,
            account_sid,
            status,
            error_code,
        })
    }
}

#[cfg(test)]
#[path = "form_tests.rs"]
mod tests;
