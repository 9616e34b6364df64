//! A small client for the part of Twilio's 2010 REST API that Chatwire uses: send a message,
//! check credentials, point a number's webhooks at us, and list messages for reconciliation.
//!
//! Every failure is classified once, here, as [`TwilioError::Retryable`] (429, 5xx, code 20429,
//! network trouble: try again later, honouring `Retry-After`) or [`TwilioError::Permanent`]
//! (anything else Twilio refused: retrying cannot help), because that is the only decision the
//! outbox needs to make. The auth token only ever travels in the Basic auth header: it is never
//! stored in the client, and [`Credentials`] redacts it in `Debug`.

use std::fmt;
use std::time::{Duration, SystemTime};

use reqwest::{header::HeaderMap, Method, RequestBuilder, StatusCode};
use serde::de::DeserializeOwned;

pub use super::resources::{
    AccountResource, Capabilities, ErrorBody, IncomingNumber, MessageResource,
};

const API_PREFIX: &str = "/2010-04-01";
/// Stops a misbehaving server from keeping a listing loop alive forever.
const MAX_PAGES: usize = 1000;
/// Error bodies are quoted in messages; a proxy's HTML error page should not be.
const MAX_QUOTED_BODY: usize = 200;

/// An account SID and its auth token (or an API key SID and secret).
#[derive(Clone, Copy)]
pub struct Credentials<'a> {
    pub account_sid: &'a str,
    pub auth_token: &'a str,
}

impl fmt::Debug for Credentials<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("account_sid", &self.account_sid)
            .field("auth_token", &"<redacted>")
            .finish()
    }
}

/// A message to create (`POST Messages.json`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SendMessage {
    /// `+E164` or `whatsapp:+E164`.
    pub to: String,
    /// Our number, same channel as `to`.
    pub from: String,
    /// May be empty when `media_urls` is not.
    pub body: String,
    pub media_urls: Vec<String>,
    /// Where Twilio posts status changes for this message.
    pub status_callback: Option<String>,
    /// An approved template (`ContentSid`); Body and media are then not sent.
    pub content_sid: Option<String>,
    /// The template's `ContentVariables` (a JSON object).
    pub content_variables: Option<String>,
}

/// Filters for [`TwilioClient::list_messages`]; unset fields do not filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageFilter {
    pub to: Option<String>,
    pub from: Option<String>,
    /// Messages sent at or after this instant (`DateSent>`, second resolution).
    pub date_sent_after: Option<SystemTime>,
}

/// A failed Twilio call, classified by what the caller should do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TwilioError {
    /// Worth retrying later. `status` is `None` when no HTTP response arrived; a request that
    /// timed out may still have been processed, so a resend can duplicate a message.
    #[error("Twilio call failed, will retry ({}): {message}", answer(*status, *code))]
    Retryable {
        status: Option<u16>,
        code: Option<i64>,
        retry_after: Option<Duration>,
        message: String,
    },
    /// Twilio refused the request; the same request will be refused again. `status` is `None`
    /// when the request was refused before being sent (e.g. a malformed SID).
    #[error("Twilio refused the call ({}): {message}", answer(*status, *code))]
    Permanent {
        status: Option<u16>,
        code: Option<i64>,
        message: String,
    },
}

/// What Twilio answered, for people: "HTTP 401, Twilio error 20003", "no answer".
fn answer(status: Option<u16>, code: Option<i64>) -> String {
    match (status, code) {
        (Some(s), Some(c)) => format!("HTTP {s}, Twilio error {c}"),
        (Some(s), None) => format!("HTTP {s}"),
        (None, Some(c)) => format!("Twilio error {c}"),
        (None, None) => "no answer".to_owned(),
    }
}

impl TwilioError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, TwilioError::Retryable { .. })
    }

    /// Twilio's error code (e.g. 21610), when it sent one.
    pub fn code(&self) -> Option<i64> {
        match self {
            TwilioError::Retryable { code, .. } | TwilioError::Permanent { code, .. } => *code,
        }
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            TwilioError::Retryable { status, .. } | TwilioError::Permanent { status, .. } => {
                *status
            }
        }
    }

    /// How long Twilio asked us to wait, from `Retry-After`.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            TwilioError::Retryable { retry_after, .. } => *retry_after,
            TwilioError::Permanent { .. } => None,
        }
    }

    /// The recipient replied STOP (21610): stop writing to them until they send START.
    pub fn is_opt_out(&self) -> bool {
        self.code() == Some(21610)
    }

    fn invalid_argument(message: String) -> Self {
        TwilioError::Permanent {
            status: None,
            code: None,
            message,
        }
    }
}

/// Classifies a non-2xx response from its status, headers and body.
fn classify(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> TwilioError {
    let parsed: Option<ErrorBody> = serde_json::from_slice(body).ok();
    let code = parsed.as_ref().and_then(|b| b.code);
    let message = parsed
        .and_then(|b| b.message)
        .unwrap_or_else(|| quote_body(status, body));
    let retryable =
        status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() || code == Some(20429);
    if retryable {
        TwilioError::Retryable {
            status: Some(status.as_u16()),
            code,
            retry_after: retry_after(headers),
            message,
        }
    } else {
        TwilioError::Permanent {
            status: Some(status.as_u16()),
            code,
            message,
        }
    }
}

fn quote_body(status: StatusCode, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return status.canonical_reason().unwrap_or("no reason").to_owned();
    }
    text.chars().take(MAX_QUOTED_BODY).collect()
}

/// `Retry-After` in delta-seconds; an HTTP-date is rare enough from Twilio to treat as absent.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    let seconds: u64 = value.trim().parse().ok()?;
    Some(Duration::from_secs(seconds.min(3600)))
}

fn network_error(error: reqwest::Error) -> TwilioError {
    TwilioError::Retryable {
        status: None,
        code: None,
        retry_after: None,
        message: error.to_string(),
    }
}

/// SIDs go into URL paths; anything but ASCII alphanumerics could redirect the request.
pub(crate) fn checked_sid<'a>(what: &str, sid: &'a str) -> Result<&'a str, TwilioError> {
    if !sid.is_empty() && sid.len() <= 64 && sid.bytes().all(|b| b.is_ascii_alphanumeric()) {
        Ok(sid)
    } else {
        Err(TwilioError::invalid_argument(format!(
            "{what} {sid:?} is not a Twilio SID"
        )))
    }
}

/// Twilio REST client bound to one API base URL (Twilio's or the emulator's).
#[derive(Debug, Clone)]
pub struct TwilioClient {
    base_url: String,
    http: reqwest::Client,
    page_size: u32,
    timeout: Duration,
}

impl TwilioClient {
    /// `base_url` is e.g. `https://api.twilio.com`, without the `/2010-04-01` prefix.
    pub fn new(base_url: &str, http: reqwest::Client) -> Self {
        TwilioClient {
            base_url: base_url.trim_end_matches('/').to_owned(),
            http,
            page_size: 1000,
            timeout: Duration::from_secs(30),
        }
    }

    /// Page size for listings (Twilio allows 1-1000; fewer pages means fewer round trips).
    pub fn with_page_size(mut self, page_size: u32) -> Self {
        self.page_size = page_size.clamp(1, 1000);
        self
    }

    /// Per-request timeout, on top of whatever the `reqwest::Client` has.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    fn account_url(&self, creds: &Credentials<'_>, rest: &str) -> Result<String, TwilioError> {
        let account = checked_sid("account", creds.account_sid)?;
        Ok(format!(
            "{}{API_PREFIX}/Accounts/{account}{rest}",
            self.base_url
        ))
    }

    pub(crate) fn request(
        &self,
        method: Method,
        url: &str,
        creds: &Credentials<'_>,
    ) -> RequestBuilder {
        self.http
            .request(method, url)
            .basic_auth(creds.account_sid, Some(creds.auth_token))
            .header(reqwest::header::ACCEPT, "application/json")
            .timeout(self.timeout)
    }

    pub(crate) async fn execute<T: DeserializeOwned>(
        &self,
        request: RequestBuilder,
    ) -> Result<T, TwilioError> {
        let response = request.send().await.map_err(network_error)?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.bytes().await.map_err(network_error)?;
        if !status.is_success() {
            let error = classify(status, &headers, &body);
            tracing::debug!(status = status.as_u16(), code = ?error.code(), "twilio call failed");
            return Err(error);
        }
        // Twilio did accept the call; a resend would act twice, so this is not retryable.
        serde_json::from_slice(&body).map_err(|e| TwilioError::Permanent {
            status: Some(status.as_u16()),
            code: None,
            message: format!("unreadable Twilio response: {e}"),
        })
    }

    /// Creates (sends) a message. Twilio answers 201 with the queued message resource.
    pub async fn send_message(
        &self,
        creds: &Credentials<'_>,
        message: &SendMessage,
    ) -> Result<MessageResource, TwilioError> {
        let url = self.account_url(creds, "/Messages.json")?;
        let mut form: Vec<(&str, &str)> = vec![("To", &message.to), ("From", &message.from)];
        if let Some(sid) = &message.content_sid {
            form.push(("ContentSid", sid));
            if let Some(variables) = &message.content_variables {
                form.push(("ContentVariables", variables));
            }
        } else {
            if !message.body.is_empty() || message.media_urls.is_empty() {
                form.push(("Body", &message.body));
            }
            form.extend(message.media_urls.iter().map(|u| ("MediaUrl", u.as_str())));
        }
        if let Some(callback) = &message.status_callback {
            form.push(("StatusCallback", callback));
        }
        let sent: MessageResource = self
            .execute(self.request(Method::POST, &url, creds).form(&form))
            .await?;
        tracing::debug!(sid = %sent.sid, status = %sent.status_raw, "twilio message created");
        Ok(sent)
    }

    /// Fetches one message by SID.
    pub async fn fetch_message(
        &self,
        creds: &Credentials<'_>,
        message_sid: &str,
    ) -> Result<MessageResource, TwilioError> {
        let sid = checked_sid("message", message_sid)?;
        let url = self.account_url(creds, &format!("/Messages/{sid}.json"))?;
        self.execute(self.request(Method::GET, &url, creds)).await
    }

    /// Fetches the account itself: the cheapest way to check credentials (401/20003 if wrong).
    pub async fn fetch_account(
        &self,
        creds: &Credentials<'_>,
    ) -> Result<AccountResource, TwilioError> {
        let url = self.account_url(creds, ".json")?;
        self.execute(self.request(Method::GET, &url, creds)).await
    }

    /// Lists the account's numbers, optionally filtered by (partial) `PhoneNumber`.
    pub async fn list_incoming_numbers(
        &self,
        creds: &Credentials<'_>,
        phone_number: Option<&str>,
    ) -> Result<Vec<IncomingNumber>, TwilioError> {
        let url = self.account_url(creds, "/IncomingPhoneNumbers.json")?;
        let mut query = vec![("PageSize", self.page_size.to_string())];
        if let Some(number) = phone_number {
            query.push(("PhoneNumber", number.to_owned()));
        }
        let first = self.request(Method::GET, &url, creds).query(&query);
        self.list_all(creds, first, "incoming_phone_numbers").await
    }

    /// Points a number's inbound messages at `sms_url` (POST) and, if given, its status
    /// callbacks at `status_callback`.
    pub async fn update_incoming_number(
        &self,
        creds: &Credentials<'_>,
        number_sid: &str,
        sms_url: &str,
        status_callback: Option<&str>,
    ) -> Result<IncomingNumber, TwilioError> {
        let sid = checked_sid("number", number_sid)?;
        let url = self.account_url(creds, &format!("/IncomingPhoneNumbers/{sid}.json"))?;
        let mut form = vec![("SmsUrl", sms_url), ("SmsMethod", "POST")];
        if let Some(callback) = status_callback {
            form.push(("StatusCallback", callback));
            form.push(("StatusCallbackMethod", "POST"));
        }
        self.execute(self.request(Method::POST, &url, creds).form(&form))
            .await
    }

    /// Lists messages matching `filter`, following `next_page_uri` to the end.
    pub async fn list_messages(
        &self,
        creds: &Credentials<'_>,
        filter: &MessageFilter,
    ) -> Result<Vec<MessageResource>, TwilioError> {
        let url = self.account_url(creds, "/Messages.json")?;
        let mut query = vec![("PageSize", self.page_size.to_string())];
        if let Some(to) = &filter.to {
            query.push(("To", to.clone()));
        }
        if let Some(from) = &filter.from {
            query.push(("From", from.clone()));
        }
        if let Some(after) = filter.date_sent_after {
            // The SDKs' key is `DateSent>`; with its `=` it reads as the documented `DateSent>=`.
            query.push(("DateSent>", super::dates::iso8601(after)));
        }
        let first = self.request(Method::GET, &url, creds).query(&query);
        self.list_all(creds, first, "messages").await
    }

    /// Collects `key` from every page of a 2010-API list envelope.
    async fn list_all<T: DeserializeOwned>(
        &self,
        creds: &Credentials<'_>,
        first: RequestBuilder,
        key: &str,
    ) -> Result<Vec<T>, TwilioError> {
        let mut items = Vec::new();
        let mut request = first;
        for _ in 0..MAX_PAGES {
            let mut page: serde_json::Value = self.execute(request).await?;
            let batch: Vec<T> =
                serde_json::from_value(page[key].take()).map_err(|e| TwilioError::Permanent {
                    status: None,
                    code: None,
                    message: format!("unreadable {key} page: {e}"),
                })?;
            items.extend(batch);
            let next = match page["next_page_uri"].as_str() {
                Some(next) if !next.is_empty() => next,
                _ => return Ok(items),
            };
            // Only ever follow a path on our own base URL: the credentials go with the request.
            if !next.starts_with('/') {
                return Err(TwilioError::invalid_argument(format!(
                    "refusing to follow next_page_uri {next:?}"
                )));
            }
            let url = format!("{}{next}", self.base_url);
            request = self.request(Method::GET, &url, creds);
        }
        Err(TwilioError::invalid_argument(format!(
            "{key} listing exceeded {MAX_PAGES} pages"
        )))
    }
}

#[cfg(test)]
#[path = "rest_client_tests.rs"]
mod tests;
