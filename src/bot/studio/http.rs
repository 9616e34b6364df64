//! Outbound HTTP for flow widgets (`make-http-request`, `run-function`) and form webhooks.
//!
//! A flow author chooses the URL, and the URL can come from a template fed by what a person
//! typed, so requests are refused when the host is (or resolves to) a loopback, private,
//! link-local or otherwise non-public address, unless `CHATWIRE_ALLOW_PRIVATE_HTTP` is set (tests
//! and on-premises Functions stand-ins need it). The checked address is pinned for the
//! connection, so a second DNS answer cannot swap in an internal one, and redirects are not
//! followed for the same reason (a 3xx is simply not a success). Every call has a timeout and
//! a cap on the body it reads, so a slow or huge answer cannot hold a conversation.
use crate::bot::EngineContext;
use serde_json::Value;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

/// Whole-request time limit (Studio's own widgets give up after about ten seconds).
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// Most response bytes read; the rest is cut off.
pub const MAX_BODY: usize = 64 * 1024;

/// What a request carries.
#[derive(Debug, Clone)]
pub enum Body {
    None,
    /// `application/x-www-form-urlencoded` fields.
    Form(Vec<(String, String)>),
    /// A raw body with its content type.
    Raw {
        content_type: String,
        text: String,
    },
}

/// A request built from a widget.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: reqwest::Method,
    pub url: String,
    pub query: Vec<(String, String)>,
    pub body: Body,
    /// Whole-request limit; [`TIMEOUT`] for widgets.
    pub timeout: Duration,
}

/// A response as Studio exposes it to later widgets.
#[derive(Debug, Clone)]
pub struct Response {
    pub status_code: u16,
    pub content_type: String,
    pub body: String,
    /// The body as JSON when it is JSON, otherwise null.
    pub parsed: Value,
}

impl Response {
    /// `widgets.NAME` for this response.
    pub fn to_context(&self) -> Value {
        serde_json::json!({
            "status_code": self.status_code,
            "content_type": self.content_type,
            "body": self.body,
            "parsed": self.parsed,
        })
    }

    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status_code)
    }
}

/// Sends `req`, refusing non-public destinations unless the configuration allows them.
pub async fn send(ctx: &EngineContext, req: Request) -> Result<Response, String> {
    let url =
        url::Url::parse(req.url.trim()).map_err(|e| format!("invalid URL {:?}: {e}", req.url))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("URL scheme {:?} is not allowed", url.scheme()));
    }
    let host = url.host_str().ok_or("URL has no host")?.to_owned();
    let client = if ctx.config.allow_private_http {
        ctx.http.clone()
    } else {
        let port = url.port_or_known_default().unwrap_or(443);
        let addr = public_address(&host, port).await?;
        reqwest::Client::builder()
            .resolve(host.trim_start_matches('[').trim_end_matches(']'), addr)
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?
    };
    let mut builder = client.request(req.method.clone(), url).timeout(req.timeout);
    if !req.query.is_empty() {
        builder = builder.query(&req.query);
    }
    builder = match req.body {
        Body::None => builder,
        Body::Form(fields) => builder.form(&fields),
        Body::Raw { content_type, text } => builder
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(text),
    };
    let mut resp = builder.send().await.map_err(|e| describe(&e))?;
    let status_code = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let mut bytes = Vec::new();
    while let Some(chunk) = tokio::time::timeout(req.timeout, resp.chunk())
        .await
        .map_err(|_| "reading the response timed out".to_owned())?
        .map_err(|e| describe(&e))?
    {
        let room = MAX_BODY.saturating_sub(bytes.len());
        bytes.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if bytes.len() >= MAX_BODY {
            break;
        }
    }
    let body = String::from_utf8_lossy(&bytes).into_owned();
    let trimmed = body.trim_start();
    let parsed =
        if content_type.contains("json") || trimmed.starts_with('{') || trimmed.starts_with('[') {
            serde_json::from_str(&body).unwrap_or(Value::Null)
        } else {
            Value::Null
        };
    Ok(Response {
        status_code,
        content_type,
        body,
        parsed,
    })
}

fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "the request timed out".into()
    } else if e.is_connect() {
        "could not connect".into()
    } else {
        let mut text = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            text.push_str(": ");
            text.push_str(&s.to_string());
            source = s.source();
        }
        text
    }
}

/// The first address of `host`, refusing the lookup if any answer is not public (a name that
/// resolves to both is treated as internal).
async fn public_address(host: &str, port: u16) -> Result<SocketAddr, String> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<SocketAddr> = match bare.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::time::timeout(
            Duration::from_secs(5),
            tokio::net::lookup_host((bare, port)),
        )
        .await
        .map_err(|_| format!("resolving {bare} timed out"))?
        .map_err(|e| format!("resolving {bare}: {e}"))?
        .collect(),
    };
    if addrs.is_empty() {
        return Err(format!("{bare} has no address"));
    }
    if let Some(bad) = addrs.iter().find(|a| !is_public(a.ip())) {
        return Err(format!(
            "{bare} resolves to {}, a private or loopback address; set CHATWIRE_ALLOW_PRIVATE_HTTP to allow it",
            bad.ip()
        ));
    }
    Ok(addrs[0])
}

/// Is `ip` a public unicast address?
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_multicast()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (18..20).contains(&b)) // benchmarking
        || a >= 240) // reserved
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00 // unique local
        || (first & 0xffc0) == 0xfe80 // link local
        || (first == 0x2001 && ip.segments()[1] == 0x0db8) // documentation
        || ip.segments()[..6].iter().all(|s| *s == 0)) // IPv4-compatible, deprecated
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_loopback_addresses_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fc00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::",
        ] {
            assert!(!is_public(ip.parse().expect("ip")), "{ip}");
        }
        for ip in ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111"] {
            assert!(is_public(ip.parse().expect("ip")), "{ip}");
        }
    }

    #[tokio::test]
    async fn a_slow_answer_times_out() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let router = axum::Router::new().route(
            "/slow",
            axum::routing::get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "late"
            }),
        );
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        let (ctx, _dir) = crate::bot::studio::testkit::context(true).await;
        let req = Request {
            method: reqwest::Method::GET,
            url: format!("http://{addr}/slow"),
            query: Vec::new(),
            body: Body::None,
            timeout: Duration::from_millis(200),
        };
        let started = std::time::Instant::now();
        let err = send(&ctx, req).await.expect_err("times out");
        assert!(err.contains("timed out"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(3));
    }

    #[tokio::test]
    async fn literal_private_hosts_are_refused_before_connecting() {
        let err = public_address("127.0.0.1", 80).await.unwrap_err();
        assert!(err.contains("CHATWIRE_ALLOW_PRIVATE_HTTP"), "{err}");
        assert!(public_address("[::1]", 80).await.is_err());
        assert!(public_address("localhost", 80).await.is_err());
    }
}
