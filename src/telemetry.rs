//! Optional OpenTelemetry export (`CHATWIRE_OTLP_ENDPOINT`): the `tracing` spans of a message's
//! path go to an OTLP/HTTP collector, one trace per message:
//!
//! ```text
//! webhook (the provider's inbound call)
//! └── turn (the engine run, in a claim loop task, perhaps on another replica)
//!     ├── send (each outbox part's delivery, in the outbox claim loop)
//!     └── status (each delivery receipt the provider posts back)
//! ```
//!
//! Those four run in different tasks, at different times, possibly in different processes, so
//! the trace context travels with the work in the database: the webhook's W3C `traceparent` is
//! stored on the inbound row, the turn's on the outbox rows it writes (the one door fills it,
//! [`crate::store::outgoing`]), and each is the remote parent of the span that picks the row up.
//! A status callback finds its parent through the outbox row that holds its message id.
//!
//! Off by default: without an endpoint no exporter or provider is built, the spans that only
//! traces need are not created ([`span`]), nothing is stored in `trace_parent`, and no status
//! callback looks its row up. Span fields are ids, statuses and error codes: never a body,
//! never a secret.
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Whether this process exports traces; set once, when the subscriber with the exporting
/// layer is installed.
static ENABLED: AtomicBool = AtomicBool::new(false);

/// The service name when `OTEL_SERVICE_NAME` is unset.
pub const DEFAULT_SERVICE_NAME: &str = "chatwire";

/// How long shutdown waits for the last spans to reach the collector.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(5);

/// Whether spans are exported.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

pub(crate) fn set_enabled() {
    ENABLED.store(true, Ordering::Relaxed);
}

/// The OTLP/HTTP traces URL of a collector: `/v1/traces` is appended to a base URL, as the
/// standard `OTEL_EXPORTER_OTLP_ENDPOINT` is read, unless the URL already ends with it.
pub fn traces_url(endpoint: &str) -> String {
    let endpoint = endpoint.trim();
    let Ok(mut url) = url::Url::parse(endpoint) else {
        // Not a URL: refused by [`provider`], which names it.
        return endpoint.to_owned();
    };
    let path = url.path().trim_end_matches('/').to_owned();
    if !path.ends_with("/v1/traces") {
        url.set_path(&format!("{path}/v1/traces"));
    }
    url.to_string()
}

/// The traces URL as logged: without credentials or a query, which may hold secrets.
pub fn shown_url(endpoint: &str) -> String {
    match url::Url::parse(&traces_url(endpoint)) {
        Ok(mut url) => {
            let _ = url.set_username("");
            let _ = url.set_password(None);
            url.set_query(None);
            url.to_string()
        }
        Err(_) => "(not a URL)".to_owned(),
    }
}

/// `OTEL_SERVICE_NAME`, or [`DEFAULT_SERVICE_NAME`].
pub fn service_name() -> String {
    std::env::var("OTEL_SERVICE_NAME")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| DEFAULT_SERVICE_NAME.to_owned())
}

/// The tracer provider exporting to `endpoint` as OTLP/HTTP JSON through a batch processor
/// (its own thread; `OTEL_BSP_*` tune it, `OTEL_EXPORTER_OTLP_HEADERS` adds headers such as
/// a collector's credentials, `OTEL_TRACES_SAMPLER` samples).
pub fn provider(endpoint: &str) -> anyhow::Result<SdkTracerProvider> {
    use opentelemetry_otlp::{Protocol, WithExportConfig};
    let url = traces_url(endpoint);
    url::Url::parse(&url)
        .map_err(|e| anyhow::anyhow!("CHATWIRE_OTLP_ENDPOINT is not a URL ({e}): {endpoint}"))?;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpJson)
        .with_endpoint(url)
        .build()
        .map_err(|e| anyhow::anyhow!("building the OTLP exporter: {e}"))?;
    let resource = Resource::builder()
        .with_service_name(service_name())
        .with_attribute(opentelemetry::KeyValue::new(
            "service.version",
            env!("CARGO_PKG_VERSION"),
        ))
        .build();
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build())
}

/// The exporter's handle, kept by `main` until shutdown. Empty when nothing is exported.
#[derive(Default)]
pub struct Telemetry {
    pub(crate) provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Whether an exporter was built.
    pub fn exporting(&self) -> bool {
        self.provider.is_some()
    }

    /// Exports what is still queued and stops the exporter. The SDK blocks while it flushes,
    /// so this runs on a blocking thread, bounded by [`SHUTDOWN_WAIT`].
    pub async fn shutdown(self) {
        let Some(provider) = self.provider else {
            return;
        };
        let done =
            tokio::task::spawn_blocking(move || provider.shutdown_with_timeout(SHUTDOWN_WAIT))
                .await;
        match done {
            Ok(Ok(())) => {}
            Ok(Err(err)) => tracing::warn!(error = %err, "flushing traces at shutdown failed"),
            Err(err) => tracing::warn!(error = %err, "flushing traces at shutdown failed"),
        }
    }
}

/// `make()` when spans are exported, else a disabled span: spans that only traces need cost
/// nothing without an exporter.
pub fn span(make: impl FnOnce() -> tracing::Span) -> tracing::Span {
    if enabled() {
        make()
    } else {
        tracing::Span::none()
    }
}

/// Records `value` as `field` of the current span, when spans are exported (the field must
/// be declared, e.g. as `tracing::field::Empty`, where the span is made).
pub fn note(field: &str, value: impl tracing::Value) {
    if enabled() {
        tracing::Span::current().record(field, value);
    }
}

/// The W3C `traceparent` of `span`, to store with the work it hands on; `None` when nothing
/// is exported or the span is not part of a trace.
pub fn traceparent(span: &tracing::Span) -> Option<String> {
    if !enabled() {
        return None;
    }
    let cx = span.context();
    if !cx.span().span_context().is_valid() {
        return None;
    }
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(&cx, &mut carrier);
    carrier.remove("traceparent")
}

/// The `traceparent` of the span the caller runs in.
pub fn current() -> Option<String> {
    traceparent(&tracing::Span::current())
}

/// Makes `span` continue the trace that `traceparent` (stored with the work) names, as a child
/// of the span that stored it. Call before the span is first entered. A missing or malformed
/// value leaves the span the root of a trace of its own.
pub fn continue_from(span: &tracing::Span, traceparent: Option<&str>) {
    if let Some(cx) = remote(traceparent) {
        let _ = span.set_parent(cx);
    }
}

/// The remote context a stored `traceparent` names, when spans are exported and it is valid.
fn remote(traceparent: Option<&str>) -> Option<opentelemetry::Context> {
    let value = traceparent.filter(|_| enabled())?;
    let carrier = HashMap::from([("traceparent".to_owned(), value.to_owned())]);
    let cx = TraceContextPropagator::new().extract(&carrier);
    cx.span().span_context().is_valid().then_some(cx)
}

/// Links `span` to the trace that `traceparent` names: work it also does for that trace (a
/// turn answering several messages of a burst belongs to the first one's trace).
pub fn link(span: &tracing::Span, traceparent: Option<&str>) {
    if let Some(cx) = remote(traceparent) {
        span.add_link(cx.span().span_context().clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_base_url_gets_the_traces_path_and_a_full_one_is_kept() {
        assert_eq!(
            traces_url("http://collector:4318"),
            "http://collector:4318/v1/traces"
        );
        assert_eq!(
            traces_url("http://collector:4318/"),
            "http://collector:4318/v1/traces"
        );
        assert_eq!(
            traces_url("https://otel.example/v1/traces"),
            "https://otel.example/v1/traces"
        );
    }

    #[test]
    fn without_an_endpoint_nothing_is_built_and_no_context_is_handed_on() {
        let telemetry = Telemetry::default();
        assert!(!telemetry.exporting());
        assert!(!enabled());
        let span = span(|| tracing::info_span!("webhook"));
        assert!(span.is_none(), "no span is made for traces alone");
        assert_eq!(current(), None);
    }

    #[test]
    fn the_traces_path_goes_before_a_query() {
        assert_eq!(
            traces_url("http://collector:4318/base?tenant=a"),
            "http://collector:4318/base/v1/traces?tenant=a"
        );
    }

    #[test]
    fn the_logged_url_carries_no_credentials() {
        let shown = shown_url("https://user:s3cret@otel.example:4318/?token=abc");
        assert_eq!(shown, "https://otel.example:4318/v1/traces");
    }

    #[test]
    fn an_endpoint_that_is_no_url_is_refused_by_name() {
        let err = provider("not a url").err().map(|e| e.to_string());
        assert!(
            err.as_deref()
                .is_some_and(|e| e.contains("CHATWIRE_OTLP_ENDPOINT")),
            "{err:?}"
        );
    }
}
