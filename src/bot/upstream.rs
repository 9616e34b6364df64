//! Calling what an engine depends on (an LLM server, a webhook bot) within one deadline.
//!
//! A turn has a single time budget: every attempt gets what is left of it, so retries can never
//! stretch a slow upstream beyond the configured timeout. 429, 5xx and connection failures are
//! retried with exponential backoff (a `Retry-After` in seconds is honoured when it fits);
//! other answers are final. Error texts never carry the URL or the request, because both can
//! hold credentials (`?token=` in a webhook URL, the API key header).
use super::EngineError;
use crate::net::outbound::Refused;
use bytes::Bytes;
use rand::Rng;
use reqwest::StatusCode;
use std::time::Duration;
use tokio::time::Instant;

/// Largest upstream body read; chat answers and bot replies are far smaller.
const MAX_BODY: usize = 1024 * 1024;
/// First backoff; doubled per retry.
const BACKOFF: Duration = Duration::from_millis(250);

/// A 2xx answer.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub body: Bytes,
}

/// Sends the request `build` makes (once per attempt, so signatures and timestamps are fresh)
/// until it succeeds, fails for good, or `deadline` passes, and reads the whole body. `what`
/// names the upstream in errors.
pub async fn send(
    what: &str,
    retries: u32,
    deadline: Instant,
    build: impl FnMut() -> reqwest::RequestBuilder,
) -> Result<Answer, EngineError> {
    let response = open(what, retries, deadline, build).await?;
    let status = response.status();
    match tokio::time::timeout_at(deadline, read_capped(response)).await {
        Ok(Ok(body)) => Ok(Answer { status, body }),
        Ok(Err(err)) if !err.is_timeout() => Err(EngineError::Upstream(format!(
            "{what} failed: {}",
            err.without_url()
        ))),
        _ => Err(EngineError::Upstream(format!("{what} timed out"))),
    }
}

/// Like [`send`], but hands over a 2xx response as soon as its headers arrive, for reading a
/// streamed body. Retries happen only before that point; the request's timeout still ends
/// the body at `deadline`.
pub async fn open(
    what: &str,
    retries: u32,
    deadline: Instant,
    mut build: impl FnMut() -> reqwest::RequestBuilder,
) -> Result<reqwest::Response, EngineError> {
    let timed_out = || EngineError::Upstream(format!("{what} timed out"));
    let mut attempt = 0u32;
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(timed_out());
        }
        let outcome = tokio::time::timeout(remaining, build().timeout(remaining).send()).await;
        let (error, wait_hint) = match outcome {
            Err(_) => return Err(timed_out()),
            Ok(Err(err)) if err.is_timeout() => return Err(timed_out()),
            // The destination (or a redirect) is internal: asking again cannot help.
            Ok(Err(err)) if Refused::within(&err).is_some() => {
                let refused = Refused::within(&err)
                    .map(|r| r.0.clone())
                    .unwrap_or_default();
                return Err(EngineError::Config(format!("{what} refused: {refused}")));
            }
            Ok(Err(err)) if err.is_connect() || err.is_request() => {
                (format!("{what} unreachable: {}", err.without_url()), None)
            }
            Ok(Err(err)) => {
                return Err(EngineError::Upstream(format!(
                    "{what} failed: {}",
                    err.without_url()
                )))
            }
            Ok(Ok(response)) if response.status().is_success() => return Ok(response),
            Ok(Ok(response))
                if response.status() == StatusCode::TOO_MANY_REQUESTS
                    || response.status().is_server_error() =>
            {
                (
                    format!("{what} answered HTTP {}", response.status().as_u16()),
                    retry_after(&response),
                )
            }
            Ok(Ok(response)) => {
                let status = response.status();
                let body = tokio::time::timeout_at(deadline, read_capped(response)).await;
                let body = body.ok().and_then(Result::ok).unwrap_or_default();
                return Err(EngineError::Upstream(client_error(what, status, &body)));
            }
        };
        if attempt >= retries {
            return Err(EngineError::Upstream(error));
        }
        let jitter = Duration::from_millis(rand::thread_rng().gen_range(0..100));
        let wait = wait_hint.unwrap_or(BACKOFF * 2u32.saturating_pow(attempt) + jitter);
        if Instant::now() + wait >= deadline {
            return Err(EngineError::Upstream(error));
        }
        tracing::debug!(
            error,
            attempt,
            wait_ms = wait.as_millis() as u64,
            "retrying upstream"
        );
        tokio::time::sleep(wait).await;
        attempt += 1;
    }
}

/// A 4xx other than 429: final. The body helps with "model not found" or "tools not
/// supported", except on 401/403, where servers may echo part of the key.
fn client_error(what: &str, status: StatusCode, body: &[u8]) -> String {
    if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
        return format!("{what} refused the credentials (HTTP {})", status.as_u16());
    }
    let text: String = String::from_utf8_lossy(body).chars().take(200).collect();
    format!("{what} answered HTTP {}: {}", status.as_u16(), text.trim())
}

fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    let value = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

async fn read_capped(mut response: reqwest::Response) -> Result<Bytes, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = MAX_BODY.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if room <= chunk.len() {
            break;
        }
    }
    Ok(Bytes::from(body))
}
