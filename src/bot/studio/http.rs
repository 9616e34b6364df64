//! Outbound HTTP for flow widgets (`make-http-request`, `run-function`) and form webhooks.
//!
//! A flow author chooses the URL, and the URL can come from a template fed by what a person
//! typed, so requests go through the shared outbound policy (`net::outbound`): internal
//! addresses are refused on every hop, unless `CHATWIRE_ALLOW_PRIVATE_HTTP` is set (tests and
//! on-premises Functions stand-ins need it). Every call has a timeout and a cap on the body it
//! reads, so a slow or huge answer cannot hold a conversation.
use crate::bot::EngineContext;
use serde_json::Value;
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
    let url = ctx.outbound.check(&req.url).map_err(|r| r.0)?;
    let client = ctx.outbound.client();
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
    if let Some(refused) = crate::net::outbound::Refused::within(e) {
        refused.0.clone()
    } else if e.is_timeout() {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
