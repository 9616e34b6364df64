//! The REST subset under `/2010-04-01/`: Basic auth, the account, incoming numbers and
//! messages, with Twilio's JSON error shape and the 2010 paging envelope.
//!
//! Paths keep Twilio's `.json` suffix inside the last segment (`Messages/SM….json`), so handlers
//! take the whole segment and strip the suffix themselves.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine as _;
use serde_json::{json, Value};
use subtle::ConstantTimeEq;

use crate::channel::twilio::dates::rfc2822;
use crate::channel::twilio::resources::{AccountResource, ErrorBody};

use super::messages::{first, spawn_progress};
use super::state::{AccountConfig, Emulator, FaultKind, API_VERSION};

/// A Twilio error response: status, `{code, message, more_info, status}` and maybe a
/// `Retry-After`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TwilioFailure {
    pub status: u16,
    pub body: ErrorBody,
    pub retry_after: Option<u64>,
}

impl TwilioFailure {
    pub fn new(status: u16, code: i64, message: impl Into<String>) -> Self {
        TwilioFailure {
            status,
            body: ErrorBody::new(status, code, message),
            retry_after: None,
        }
    }

    fn not_found(path: &str) -> Self {
        TwilioFailure::new(
            404,
            20404,
            format!("The requested resource {path} was not found"),
        )
    }
}

impl IntoResponse for TwilioFailure {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, Json(self.body)).into_response();
        let headers = response.headers_mut();
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"Twilio API\""),
            );
        }
        response
    }
}

type Shared = Arc<Emulator>;
type Reply = Result<Response, TwilioFailure>;

pub(crate) fn routes() -> Router<Shared> {
    let accounts = "/2010-04-01/Accounts";
    Router::new()
        .route(&format!("{accounts}/{{account}}"), get(fetch_account))
        .route(
            &format!("{accounts}/{{account}}/IncomingPhoneNumbers.json"),
            get(list_numbers),
        )
        .route(
            &format!("{accounts}/{{account}}/IncomingPhoneNumbers/{{number}}"),
            get(fetch_number).post(update_number),
        )
        .route(
            &format!("{accounts}/{{account}}/Messages.json"),
            get(list_messages).post(create_message),
        )
        .route(
            &format!("{accounts}/{{account}}/Messages/{{message}}"),
            get(fetch_message),
        )
}

/// Any unknown path answers like Twilio: 404 with code 20404.
pub(crate) async fn not_found(uri: axum::http::Uri) -> TwilioFailure {
    TwilioFailure::not_found(uri.path())
}

/// Checks Basic auth against the account in the path; 401/20003 like Twilio otherwise.
fn authenticate(
    emulator: &Emulator,
    headers: &HeaderMap,
    path_sid: &str,
) -> Result<AccountConfig, TwilioFailure> {
    let denied = || TwilioFailure::new(401, 20003, "Authenticate");
    let encoded = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .ok_or_else(denied)?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(denied)?;
    let (sid, token) = decoded.split_once(':').ok_or_else(denied)?;
    let account = emulator
        .accounts()
        .into_iter()
        .find(|a| a.sid == sid)
        .ok_or_else(denied)?;
    let token_ok = bool::from(account.auth_token.as_bytes().ct_eq(token.as_bytes()));
    if !token_ok || account.sid != path_sid {
        return Err(denied());
    }
    Ok(account)
}

fn strip_json<'a>(segment: &'a str, path: &str) -> Result<&'a str, TwilioFailure> {
    segment
        .strip_suffix(".json")
        .ok_or_else(|| TwilioFailure::not_found(path))
}

fn parse_form(bytes: &[u8]) -> Result<Vec<(String, String)>, TwilioFailure> {
    serde_urlencoded::from_bytes(bytes)
        .map_err(|_| TwilioFailure::new(400, 20001, "The request body is not form-encoded"))
}

fn parse_query(raw: Option<&str>) -> Result<Vec<(String, String)>, TwilioFailure> {
    parse_form(raw.unwrap_or_default().as_bytes())
}

async fn fetch_account(
    State(emu): State<Shared>,
    Path(segment): Path<String>,
    headers: HeaderMap,
) -> Reply {
    let path = format!("/{API_VERSION}/Accounts/{segment}");
    let sid = strip_json(&segment, &path)?;
    let account = authenticate(&emu, &headers, sid)?;
    let base = format!("/{API_VERSION}/Accounts/{sid}");
    let created = rfc2822(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_438_286_400));
    let resource = AccountResource {
        sid: account.sid.clone(),
        friendly_name: "Chatwire emulator account".to_owned(),
        status: "active".to_owned(),
        account_type: "Full".to_owned(),
        owner_account_sid: account.sid.clone(),
        date_created: Some(created.clone()),
        date_updated: Some(created),
        subresource_uris: [
            ("messages".to_owned(), format!("{base}/Messages.json")),
            (
                "incoming_phone_numbers".to_owned(),
                format!("{base}/IncomingPhoneNumbers.json"),
            ),
        ]
        .into(),
        uri: format!("{base}.json"),
    };
    let mut json = serde_json::to_value(resource).unwrap_or_default();
    // Twilio returns the token here; the client's resource type deliberately drops it.
    json["auth_token"] = Value::String(account.auth_token);
    Ok(Json(json).into_response())
}

/// `*` matches one digit; anything else is a substring match, as Twilio's filter is partial.
fn number_matches(phone_number: &str, pattern: &str) -> bool {
    let pattern: Vec<char> = pattern.trim().chars().collect();
    let number: Vec<char> = phone_number.chars().collect();
    if pattern.is_empty() {
        return true;
    }
    number.windows(pattern.len()).any(|window| {
        window
            .iter()
            .zip(&pattern)
            .all(|(n, p)| *p == *n || (*p == '*' && n.is_ascii_digit()))
    })
}

async fn list_numbers(
    State(emu): State<Shared>,
    Path(account): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Reply {
    authenticate(&emu, &headers, &account)?;
    let query = parse_query(raw.as_deref())?;
    let pattern = first(&query, "PhoneNumber").unwrap_or_default();
    let numbers: Vec<Value> = emu
        .lock()
        .numbers
        .iter()
        .filter(|n| n.account_sid == account && number_matches(&n.e164, pattern))
        .map(|n| serde_json::to_value(n.resource()).unwrap_or_default())
        .collect();
    let path = format!("/{API_VERSION}/Accounts/{account}/IncomingPhoneNumbers.json");
    Ok(Json(page_envelope(
        "incoming_phone_numbers",
        numbers,
        &path,
        &query,
    )?)
    .into_response())
}

fn number_sid<'a>(account: &str, segment: &'a str) -> Result<&'a str, TwilioFailure> {
    strip_json(
        segment,
        &format!("/{API_VERSION}/Accounts/{account}/IncomingPhoneNumbers/{segment}"),
    )
}

async fn fetch_number(
    State(emu): State<Shared>,
    Path((account, segment)): Path<(String, String)>,
    headers: HeaderMap,
) -> Reply {
    authenticate(&emu, &headers, &account)?;
    let sid = number_sid(&account, &segment)?;
    let inner = emu.lock();
    let number = inner
        .numbers
        .iter()
        .find(|n| n.sid == sid && n.account_sid == account)
        .ok_or_else(|| TwilioFailure::not_found(&segment))?;
    Ok(Json(number.resource()).into_response())
}

async fn update_number(
    State(emu): State<Shared>,
    Path((account, segment)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    authenticate(&emu, &headers, &account)?;
    let sid = number_sid(&account, &segment)?;
    let form = parse_form(&body)?;
    let method = |name: &str| -> Result<Option<String>, TwilioFailure> {
        match form
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.to_ascii_uppercase())
        {
            None => Ok(None),
            Some(m) if m == "GET" || m == "POST" => Ok(Some(m)),
            Some(m) => Err(TwilioFailure::new(
                400,
                20001,
                format!("{name} {m} is not GET or POST"),
            )),
        }
    };
    let sms_method = method("SmsMethod")?;
    let callback_method = method("StatusCallbackMethod")?;
    let value = |name: &str| form.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
    let mut inner = emu.lock();
    let number = inner
        .numbers
        .iter_mut()
        .find(|n| n.sid == sid && n.account_sid == account)
        .ok_or_else(|| TwilioFailure::not_found(&segment))?;
    // An empty value clears a URL, as in Twilio's console.
    let url = |v: String| Some(v).filter(|v| !v.is_empty());
    if let Some(v) = value("SmsUrl") {
        number.sms_url = url(v);
    }
    if let Some(v) = value("SmsFallbackUrl") {
        number.sms_fallback_url = url(v);
    }
    if let Some(v) = value("StatusCallback") {
        number.status_callback = url(v);
    }
    if let Some(v) = value("FriendlyName") {
        number.friendly_name = v;
    }
    if let Some(m) = sms_method {
        number.sms_method = m;
    }
    if let Some(m) = callback_method {
        number.status_callback_method = m;
    }
    number.updated = std::time::SystemTime::now();
    Ok(Json(number.resource()).into_response())
}

async fn create_message(
    State(emu): State<Shared>,
    Path(account): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    let account = authenticate(&emu, &headers, &account)?;
    let form = parse_form(&body)?;
    if let Some(fault) = emu.take_fault() {
        match fault.kind {
            FaultKind::ServerError => {
                return Err(TwilioFailure::new(500, 20500, "Internal Server Error"))
            }
            FaultKind::TooManyRequests => {
                let mut failure = TwilioFailure::new(429, 20429, "Too Many Requests");
                failure.retry_after = Some(1);
                return Err(failure);
            }
            FaultKind::Unsubscribed => {
                return Err(TwilioFailure::new(
                    400,
                    21610,
                    "Attempt to send to unsubscribed recipient",
                ))
            }
            FaultKind::Slow => tokio::time::sleep(fault.delay).await,
        }
    }
    let resource = emu.create_message(&account.sid, &form)?;
    spawn_progress(emu.clone(), resource.sid.clone());
    Ok((StatusCode::CREATED, Json(resource)).into_response())
}

async fn fetch_message(
    State(emu): State<Shared>,
    Path((account, segment)): Path<(String, String)>,
    headers: HeaderMap,
) -> Reply {
    authenticate(&emu, &headers, &account)?;
    let path = format!("/{API_VERSION}/Accounts/{account}/Messages/{segment}");
    let sid = strip_json(&segment, &path)?;
    let mut inner = emu.lock();
    let message = inner
        .message_mut(sid)
        .filter(|m| m.resource.account_sid == account)
        .ok_or_else(|| TwilioFailure::not_found(&path))?;
    Ok(Json(message.resource.clone()).into_response())
}

async fn list_messages(
    State(emu): State<Shared>,
    Path(account): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Reply {
    authenticate(&emu, &headers, &account)?;
    let query = parse_query(raw.as_deref())?;
    let messages: Vec<Value> = emu
        .find_messages(&account, &query)?
        .into_iter()
        .map(|m| serde_json::to_value(m).unwrap_or_default())
        .collect();
    let path = format!("/{API_VERSION}/Accounts/{account}/Messages.json");
    Ok(Json(page_envelope("messages", messages, &path, &query)?).into_response())
}

/// One page of `items` in the 2010 envelope; filters are carried into the page URIs.
fn page_envelope(
    key: &str,
    items: Vec<Value>,
    path: &str,
    query: &[(String, String)],
) -> Result<Value, TwilioFailure> {
    let number = |name: &str, default: usize| -> Result<usize, TwilioFailure> {
        match first(query, name) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| TwilioFailure::new(400, 20001, format!("Invalid {name} {v:?}"))),
        }
    };
    let page_size = number("PageSize", 50)?.clamp(1, 1000);
    let page = number("Page", 0)?;
    let start = page.saturating_mul(page_size);
    let total = items.len();
    let slice: Vec<Value> = items.into_iter().skip(start).take(page_size).collect();
    let filters: Vec<(String, String)> = query
        .iter()
        .filter(|(n, _)| !matches!(n.as_str(), "Page" | "PageSize" | "PageToken"))
        .cloned()
        .collect();
    let uri_for = |page: usize| {
        let mut params = filters.clone();
        params.push(("PageSize".into(), page_size.to_string()));
        params.push(("Page".into(), page.to_string()));
        if page > 0 {
            params.push(("PageToken".into(), format!("PA{}", page * page_size)));
        }
        format!(
            "{path}?{}",
            serde_urlencoded::to_string(&params).unwrap_or_default()
        )
    };
    let end = (start + slice.len()).saturating_sub(1).max(start);
    let next = (start + page_size < total).then(|| uri_for(page + 1));
    let previous = (page > 0).then(|| uri_for(page - 1));
    let mut envelope = json!({
        "page": page,
        "page_size": page_size,
        "start": start,
        "end": end,
        "uri": uri_for(page),
        "first_page_uri": uri_for(0),
        "next_page_uri": next,
        "previous_page_uri": previous,
    });
    envelope[key] = Value::Array(slice);
    Ok(envelope)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_number_filter_is_partial_with_digit_wildcards() {
        assert!(number_matches("+15005550006", "+15005550006"));
        assert!(number_matches("+15005550006", "555"));
        assert!(number_matches("+15005550006", "+1500*55*006"));
        assert!(!number_matches("+15005550006", "+1415"));
        assert!(number_matches("+15005550006", ""));
    }

    #[test]
    fn envelope_pages_and_carries_filters() {
        let items: Vec<Value> = (0..5).map(|i| json!(i)).collect();
        let query = vec![
            ("To".to_owned(), "+15551230001".to_owned()),
            ("PageSize".to_owned(), "2".to_owned()),
            ("Page".to_owned(), "1".to_owned()),
        ];
        let page = page_envelope("messages", items, "/x.json", &query).expect("valid query");
        assert_eq!(page["messages"], json!([2, 3]));
        assert_eq!(
            (page["start"].clone(), page["end"].clone()),
            (json!(2), json!(3))
        );
        let next = page["next_page_uri"].as_str().expect("has next page");
        assert!(
            next.starts_with("/x.json?To=%2B15551230001&PageSize=2&Page=2"),
            "{next}"
        );
        assert!(page["previous_page_uri"].as_str().is_some());
    }
}
