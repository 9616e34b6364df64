//! Calling what an engine depends on (an LLM server, a webhook bot) within one deadline.
//!
//! A turn has a single time budget: every attempt gets what is left of it, so retries can never
//! stretch a slow upstream beyond the configured timeout. 429, 5xx and connection failures are
//! retried with exponential backoff (a `Retry-After` in seconds is honoured when it fits);
//! other answers are final. Error texts never carry the URL or the request, because both can
//! hold credentials (`?token=` in a webhook URL, the API key header).
use super::EngineError;
use bytes::Bytes;
use rand::Rng;
use reqwest::StatusCode;
use std::net::IpAddr;
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

/// Refuses URLs that are not http(s) or that resolve to a loopback, private, link-local or
/// otherwise internal address, so a bot's settings cannot reach Chatwire's own network
/// (`CHATWIRE_ALLOW_PRIVATE_HTTP` turns this off). The name is resolved here and again by the
/// HTTP client, so a DNS answer that changes in between is not caught.
pub async fn check_public_url(url: &str, allow_private: bool) -> Result<url::Url, EngineError> {
    let parsed = url::Url::parse(url)
        .map_err(|_| EngineError::Config("the webhook url is not a valid URL".into()))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(EngineError::Config(
            "the webhook url must be http or https".into(),
        ));
    }
    let host = parsed
        .host_str()
        .ok_or_else(|| EngineError::Config("the webhook url has no host".into()))?;
    if allow_private {
        return Ok(parsed);
    }
    let port = parsed.port_or_known_default().unwrap_or(443);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<IpAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![ip],
        Err(_) => tokio::net::lookup_host((host, port))
            .await
            .map_err(|_| EngineError::Upstream("the webhook host does not resolve".into()))?
            .map(|a| a.ip())
            .collect(),
    };
    if addrs.is_empty() || addrs.iter().any(|ip| !is_public(*ip)) {
        return Err(EngineError::Config(
            "the webhook url points to a private or loopback address (set CHATWIRE_ALLOW_PRIVATE_HTTP=true to allow)".into(),
        ));
    }
    Ok(parsed)
}

/// Whether an address is on the public internet.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || a >= 224)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.0.1",
            "172.16.0.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(!is_public(ip.parse().expect("ip")), "{ip}");
        }
        for ip in ["8.8.8.8", "2606:4700::1111"] {
            assert!(is_public(ip.parse().expect("ip")), "{ip}");
        }
    }

    #[tokio::test]
    async fn private_webhook_urls_are_refused_unless_allowed() {
        assert!(
            check_public_url("http://127.0.0.1:5005/webhooks/rest/webhook", false)
                .await
                .is_err()
        );
        assert!(check_public_url("http://[::1]/x", false).await.is_err());
        assert!(check_public_url("http://localhost/x", false).await.is_err());
        assert!(check_public_url("ftp://example.com/x", true).await.is_err());
        assert!(check_public_url("http://127.0.0.1:5005/x", true)
            .await
            .is_ok());
    }
}
