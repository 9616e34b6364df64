//! Log output: `CHATWIRE_LOG_FORMAT=pretty` (the default, one human-readable line per event)
//! or `json` (one JSON object per line, for log shippers), filtered by `RUST_LOG`. Colours are
//! used only when stdout is a terminal, so log files and journald carry no escape codes.
//!
//! What is logged at `info` per message (see `pipeline::accept` and `outbox`): one line when a
//! message is received and one per part sent, with the integration, the conversation, the
//! provider's ids, the status and the correlation id (the inbound message's provider id,
//! carried from the webhook through the turn to every send it caused). Never a body, never a
//! secret.
use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Pretty,
    Json,
}

impl LogFormat {
    /// `CHATWIRE_LOG_FORMAT`, or an error naming the accepted values.
    pub fn from_env() -> anyhow::Result<Self> {
        match std::env::var("CHATWIRE_LOG_FORMAT") {
            Err(_) => Ok(Self::Pretty),
            Ok(v) => match v.trim().to_ascii_lowercase().as_str() {
                "" | "pretty" | "text" => Ok(Self::Pretty),
                "json" => Ok(Self::Json),
                other => anyhow::bail!(
                    "CHATWIRE_LOG_FORMAT must be \"pretty\" or \"json\", not \"{other}\""
                ),
            },
        }
    }
}

/// The default filter: Chatwire's own events at info, libraries' warnings.
const DEFAULT_FILTER: &str = "info,sqlx=warn,tower_http=warn,hyper=warn";

/// Installs the global subscriber. Call once, before anything logs. With `otlp_endpoint`,
/// spans are also exported to that OpenTelemetry collector (see [`crate::telemetry`]); the
/// returned handle flushes them at shutdown.
pub fn init(
    format: LogFormat,
    otlp_endpoint: Option<&str>,
) -> anyhow::Result<crate::telemetry::Telemetry> {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| DEFAULT_FILTER.into());
    let ansi = std::io::stdout().is_terminal();
    let lines = tracing_subscriber::fmt::layer().with_ansi(ansi);
    let lines = match format {
        LogFormat::Pretty => lines.boxed(),
        LogFormat::Json => lines
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .boxed(),
    };
    let provider = match otlp_endpoint.map(str::trim).filter(|e| !e.is_empty()) {
        Some(endpoint) => Some(crate::telemetry::provider(endpoint)?),
        None => None,
    };
    let traces = provider.as_ref().map(|p| {
        use opentelemetry::trace::TracerProvider as _;
        tracing_opentelemetry::layer()
            .with_tracer(p.tracer("chatwire"))
            .with_threads(false)
            // busy_ns/idle_ns per span: noise beside the span's own duration.
            .with_tracked_inactivity(false)
    });
    let installed = tracing_subscriber::registry()
        .with(filter)
        .with(lines)
        .with(traces)
        .try_init()
        .is_ok();
    if installed && provider.is_some() {
        crate::telemetry::set_enabled();
        tracing::info!(
            endpoint = %crate::telemetry::shown_url(otlp_endpoint.unwrap_or_default()),
            service = %crate::telemetry::service_name(),
            "exporting traces (OTLP/HTTP JSON)"
        );
    }
    Ok(crate::telemetry::Telemetry { provider })
}
