//! Twilio Programmable Messaging (SMS, MMS, WhatsApp) as a [`Channel`].
//!
//! Callbacks are checked against `X-Twilio-Signature` computed over the public URL Twilio
//! called. Without a stored auth token nothing can be checked, so the callback is refused (fail
//! closed), unlike ChatBotKit. Sends go through the REST client, whose errors are mapped once,
//! here, onto the outbox's three outcomes.
use super::form::{InboundMessage as TwilioInbound, StatusCallback};
use super::overrides::ConnectionOverrides;
use super::rest_client::{
    Credentials, IncomingNumber, MessageFilter, SendMessage, TwilioClient, TwilioError,
};
use super::signature;
use crate::channel::{
    Accepted, CallbackRequest, Channel, Found, InboundMessage, OutgoingPart, ProviderId, Refusal,
    SendError, StatusUpdate,
};
use crate::domain::address::Address;
use crate::store::integration::Integration;
use async_trait::async_trait;
use secrecy::ExposeSecret;
use std::time::{Duration, UNIX_EPOCH};

const EMPTY_TWIML: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response/>";
/// Most form fields a callback may have, checked before any signature work.
pub const MAX_FORM_FIELDS: usize = 256;
/// Twilio's code for a recipient who replied STOP.
const OPTED_OUT: i64 = 21610;

/// The Twilio Messaging channel.
#[derive(Clone)]
pub struct TwilioMessaging {
    client: TwilioClient,
}

impl TwilioMessaging {
    pub const NAME: &'static str = "twilio";

    /// `api_url` is Twilio's REST base URL (the emulator's in tests).
    pub fn new(api_url: &str, http: reqwest::Client) -> Self {
        Self {
            client: TwilioClient::new(api_url, http),
        }
    }

    /// Checks the integration's credentials and points its number's SmsUrl and StatusCallback
    /// at `webhook_url` and `status_url`, with Chatwire's connection overrides appended (the
    /// `setup` operation).
    pub async fn configure_number(
        &self,
        integration: &Integration,
        webhook_url: &str,
        status_url: &str,
    ) -> Result<IncomingNumber, SetupError> {
        let creds = credentials(integration).ok_or(SetupError::NoCredentials)?;
        self.client
            .fetch_account(&creds)
            .await
            .map_err(|e| SetupError::twilio(e, "verifying the account"))?;
        let number = integration
            .phone_number
            .as_deref()
            .ok_or(SetupError::NoNumber)?;
        let address = crate::domain::address::Address::parse(number)
            .map_err(|e| SetupError::BadNumber(e.to_string()))?;
        let found = self
            .client
            .list_incoming_numbers(&creds, Some(address.e164()))
            .await
            .map_err(|e| SetupError::twilio(e, "listing the account's numbers"))?;
        let incoming = found
            .into_iter()
            .find(|n| n.phone_number == address.e164())
            .ok_or_else(|| SetupError::NumberNotOnAccount(address.e164().to_owned()))?;
        // Connection overrides make Twilio retry a webhook that fails while Chatwire restarts.
        let overrides = ConnectionOverrides::chatwire().to_fragment();
        let (webhook_url, status_url) = (
            format!("{webhook_url}{overrides}"),
            format!("{status_url}{overrides}"),
        );
        self.client
            .update_incoming_number(&creds, &incoming.sid, &webhook_url, Some(&status_url))
            .await
            .map_err(|e| SetupError::twilio(e, "updating the number's webhook"))?;
        Ok(incoming)
    }
}

/// Why `setup` could not configure the number.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("No Twilio credentials found: set accountSid and authToken")]
    NoCredentials,
    #[error("No phoneNumber set on the integration: set it to the Twilio number (E.164 or whatsapp:+E.164)")]
    NoNumber,
    #[error("phoneNumber: {0}")]
    BadNumber(String),
    #[error("The number {0} is not one of this Twilio account's incoming phone numbers")]
    NumberNotOnAccount(String),
    #[error("Twilio rejected the credentials while {0}{1}")]
    Rejected(&'static str, String),
    #[error("Twilio could not find the account while {0}")]
    AccountNotFound(&'static str),
    #[error("Twilio is unreachable while {0}: {1}")]
    Unreachable(&'static str, String),
    #[error("Twilio refused {0}: {1}")]
    Refused(&'static str, String),
    #[error(
        "No serviceSid set on the integration: set it to the Conversations service SID (IS...)"
    )]
    NoService,
    #[error(
        "The Conversations service {0} was not found on this Twilio account (Twilio error 20404)"
    )]
    ServiceNotFound(String),
}

impl SetupError {
    pub(crate) fn twilio(err: TwilioError, what: &'static str) -> Self {
        let code = err
            .code()
            .map(|c| format!(" (Twilio error {c})"))
            .unwrap_or_default();
        match err.status() {
            Some(401) | Some(403) => SetupError::Rejected(what, code),
            Some(404) => SetupError::AccountNotFound(what),
            _ if err.is_retryable() => SetupError::Unreachable(what, err.to_string()),
            _ => SetupError::Refused(what, err.to_string()),
        }
    }

    /// Twilio could not be reached (a 502 at the API), as opposed to a refusal (409).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, SetupError::Unreachable(..))
    }
}

pub(crate) fn credentials(integration: &Integration) -> Option<Credentials<'_>> {
    Some(Credentials {
        account_sid: integration.account_sid.as_deref()?,
        auth_token: integration.auth_token.as_ref()?.expose_secret(),
    })
}

/// The callback's parameters once its signature checks out.
pub(crate) fn verified(
    integration: &Integration,
    request: CallbackRequest<'_>,
) -> Result<Vec<(String, String)>, Refusal> {
    let Some(token) = &integration.auth_token else {
        return Err(Refusal::Unauthenticated(
            "the integration has no auth token to check signatures with".into(),
        ));
    };
    let given = request
        .headers
        .get("x-twilio-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if given.is_empty() {
        return Err(Refusal::Unauthenticated(
            "no X-Twilio-Signature header".into(),
        ));
    }
    // Counting separators costs one pass over at most 64 KB; Twilio's largest webhook (ten
    // media items, WhatsApp fields) has about 50 fields.
    if request.body.first() != Some(&b'{')
        && request.body.split(|b| *b == b'&').count() > MAX_FORM_FIELDS
    {
        return Err(Refusal::Malformed(format!(
            "more than {MAX_FORM_FIELDS} form fields"
        )));
    }
    // ChatBotKit accepts JSON webhooks too; Twilio signs those over the URL and a body hash.
    let (valid, params) = if request.body.first() == Some(&b'{') {
        let valid =
            signature::validate_json_body(token.expose_secret(), request.url, request.body, given);
        (valid, json_params(request.body))
    } else {
        let params: Vec<(String, String)> = url::form_urlencoded::parse(request.body)
            .into_owned()
            .collect();
        let fragment = ConnectionOverrides::chatwire().to_fragment();
        let valid = signature::validate_with_fragment(
            token.expose_secret(),
            request.url,
            Some(&fragment),
            &params,
            given,
        );
        (valid, params)
    };
    if !valid {
        return Err(Refusal::Unauthenticated(format!(
            "X-Twilio-Signature does not match the URL {} computed with this integration's auth token: check that CHATWIRE_PUBLIC_URL is the URL Twilio calls (behind a proxy, its public https URL) and that authToken is the account's current token",
            request.url
        )));
    }
    Ok(params)
}

/// Refuses a callback that names an account other than the integration's.
fn same_account(integration: &Integration, named: Option<&str>) -> Result<(), Refusal> {
    match (integration.account_sid.as_deref(), named) {
        (Some(ours), Some(theirs)) if ours != theirs => Err(Refusal::WrongAccount(format!(
            "AccountSid {theirs} is not this integration's account ({ours}): check the integration's accountSid"
        ))),
        _ => Ok(()),
    }
}

/// A JSON body's top-level scalars as parameters.
fn json_params(body: &[u8]) -> Vec<(String, String)> {
    let Ok(serde_json::Value::Object(map)) = serde_json::from_slice(body) else {
        return Vec::new();
    };
    map.into_iter()
        .filter_map(|(k, v)| match v {
            serde_json::Value::String(s) => Some((k, s)),
            serde_json::Value::Number(n) => Some((k, n.to_string())),
            serde_json::Value::Bool(b) => Some((k, b.to_string())),
            _ => None,
        })
        .collect()
}

pub(crate) fn send_error(err: TwilioError) -> SendError {
    let message = err.to_string();
    match err {
        TwilioError::Retryable {
            status,
            code,
            retry_after,
            ..
        } => SendError::Retryable {
            code,
            retry_after,
            // No HTTP answer at all means Twilio may have processed the request.
            maybe_sent: status.is_none(),
            message,
        },
        TwilioError::Permanent { code, .. } if code == Some(OPTED_OUT) => SendError::OptedOut {
            code,
            message: "recipient opted out (STOP)".into(),
        },
        TwilioError::Permanent { code, .. } => SendError::Permanent {
            code,
            message: match code {
                Some(21211) => "invalid recipient number".to_owned(),
                Some(21614) => "recipient is not a mobile number".to_owned(),
                Some(21617) => "message body too long".to_owned(),
                Some(63016) => {
                    "outside the WhatsApp 24-hour window; a template is required".to_owned()
                }
                _ => message,
            },
        },
    }
}

fn no_credentials() -> SendError {
    SendError::Permanent {
        code: None,
        message: "integration has no Twilio credentials".into(),
    }
}

#[async_trait]
impl Channel for TwilioMessaging {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn parse_inbound(
        &self,
        integration: &Integration,
        request: CallbackRequest<'_>,
    ) -> Result<InboundMessage, Refusal> {
        let params = verified(integration, request)?;
        let m = TwilioInbound::parse(&params).map_err(|e| Refusal::Malformed(e.to_string()))?;
        // A valid signature proves only that the sender knows the token: the message must also
        // be for this integration's account. (`To` is checked by the pipeline, which can see
        // the other integrations' numbers: see `pipeline::accept::addressed_here`.)
        same_account(integration, Some(&m.account_sid))?;
        Ok(InboundMessage {
            id: ProviderId(m.message_sid),
            account: Some(m.account_sid),
            from: m.from,
            to: m.to,
            body: m.body,
            media: m.media,
            profile_name: m.profile_name,
            author: None,
            received_at: None,
        })
    }

    fn parse_status(
        &self,
        integration: &Integration,
        request: CallbackRequest<'_>,
    ) -> Result<StatusUpdate, Refusal> {
        let params = verified(integration, request)?;
        let cb = StatusCallback::parse(&params).map_err(|e| Refusal::Malformed(e.to_string()))?;
        same_account(integration, cb.account_sid.as_deref())?;
        Ok(StatusUpdate {
            id: ProviderId(cb.message_sid),
            status: cb.status,
            error_code: cb.error_code,
        })
    }

    fn acknowledgement(&self) -> (&'static str, &'static str) {
        ("text/xml", EMPTY_TWIML)
    }

    async fn send(
        &self,
        integration: &Integration,
        part: &OutgoingPart,
    ) -> Result<Accepted, SendError> {
        let creds = credentials(integration).ok_or_else(no_credentials)?;
        let message = SendMessage {
            to: part.to.to_string(),
            from: part.from.to_string(),
            body: part.body.clone(),
            media_urls: part.media.clone(),
            status_callback: part.status_callback.clone(),
            content_sid: part.template.as_ref().map(|t| t.content_sid.clone()),
            content_variables: part.template.as_ref().and_then(|t| t.variables.clone()),
        };
        let sent = self
            .client
            .send_message(&creds, &message)
            .await
            .map_err(send_error)?;
        Ok(Accepted {
            id: ProviderId(sent.sid),
            status: sent.status_raw,
        })
    }

    async fn find_sent(
        &self,
        integration: &Integration,
        part: &OutgoingPart,
        since_ms: i64,
    ) -> Result<Vec<Found>, SendError> {
        let creds = credentials(integration).ok_or_else(no_credentials)?;
        // A minute of slack for clock differences; bodies are compared by the caller.
        let after = UNIX_EPOCH + Duration::from_millis((since_ms - 60_000).max(0) as u64);
        let filter = MessageFilter {
            to: Some(part.to.to_string()),
            from: Some(part.from.to_string()),
            date_sent_after: Some(after),
        };
        let found = self
            .client
            .list_messages(&creds, &filter)
            .await
            .map_err(send_error)?;
        Ok(found
            .into_iter()
            .map(|m| Found {
                accepted: Accepted {
                    id: ProviderId(m.sid),
                    status: m.status_raw,
                },
                body: m.body,
            })
            .collect())
    }

    async fn received_since(
        &self,
        integration: &Integration,
        since_ms: i64,
    ) -> Result<Vec<InboundMessage>, SendError> {
        let Some(number) = integration.phone_number.as_deref() else {
            return Ok(Vec::new());
        };
        let creds = credentials(integration).ok_or_else(no_credentials)?;
        // Twilio's dates have whole seconds.
        let since_ms = since_ms.max(0) / 1000 * 1000;
        let filter = MessageFilter {
            to: Some(number.to_owned()),
            from: None,
            date_sent_after: Some(UNIX_EPOCH + Duration::from_millis(since_ms as u64)),
        };
        let listed = self
            .client
            .list_messages(&creds, &filter)
            .await
            .map_err(send_error)?;
        // Twilio lists newest first: reversed, messages of one second keep their order.
        let mut received: Vec<InboundMessage> = listed
            .into_iter()
            .rev()
            .filter(|m| m.direction == "inbound")
            .filter_map(|m| {
                let at = m.date_sent.as_deref().or(m.date_created.as_deref())?;
                let at = super::dates::parse_rfc2822(at)?
                    .duration_since(UNIX_EPOCH)
                    .ok()?
                    .as_millis() as i64;
                let (from, to) = (Address::parse(&m.from).ok()?, Address::parse(&m.to).ok()?);
                // The message arrived within that second; its end keeps it after anything its
                // sender got through earlier in the same second.
                (at >= since_ms).then(|| InboundMessage {
                    id: ProviderId(m.sid),
                    account: Some(m.account_sid),
                    from,
                    to,
                    body: m.body,
                    // The listing has no media URLs; see docs/reliability.md.
                    media: Vec::new(),
                    profile_name: None,
                    author: None,
                    received_at: Some(at + 999),
                })
            })
            .collect();
        received.sort_by_key(|m| m.received_at);
        Ok(received)
    }
}
