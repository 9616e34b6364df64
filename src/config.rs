//! Settings for `chatwire serve`, each a flag and a `CHATWIRE_*` environment variable.
use clap::Args;
use secrecy::SecretString;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Everything `chatwire serve` can be told. Defaults give a working local server.
#[derive(Args, Debug, Clone)]
pub struct Config {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "CHATWIRE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// `sqlite://path.db` (default: chatwire.db in the working directory) or `postgres://...`.
    #[arg(
        long,
        env = "CHATWIRE_DATABASE_URL",
        default_value = "sqlite://chatwire.db"
    )]
    pub database_url: String,

    /// Base URL Twilio calls; webhook signatures are computed over it. Default `http://<listen>`.
    #[arg(long, env = "CHATWIRE_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// A bearer token accepted by the management API (more with `chatwire token create`).
    #[arg(long, env = "CHATWIRE_API_TOKEN", hide_env_values = true)]
    pub api_token: Option<SecretString>,

    /// 32-byte key (64 hex chars or base64) encrypting Twilio auth tokens at rest. Without it a
    /// key file is generated beside the SQLite database (mode 0600).
    #[arg(long, env = "CHATWIRE_SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<SecretString>,

    /// Where the generated key lives when `CHATWIRE_SECRET_KEY` is unset.
    #[arg(long, env = "CHATWIRE_SECRET_KEY_FILE")]
    pub secret_key_file: Option<PathBuf>,

    /// Twilio's REST API base URL; the emulator's URL in tests and demos.
    #[arg(
        long,
        env = "CHATWIRE_TWILIO_API_URL",
        default_value = "https://api.twilio.com"
    )]
    pub twilio_api_url: String,

    /// Twilio Conversations REST base URL (the emulator's in tests; it serves both APIs).
    #[arg(
        long,
        env = "CHATWIRE_TWILIO_CONVERSATIONS_URL",
        default_value = "https://conversations.twilio.com"
    )]
    pub twilio_conversations_url: String,

    /// Session length used when an integration's `sessionDuration` is null.
    #[arg(long, env = "CHATWIRE_SESSION_TIMEOUT_MS", default_value_t = 1_800_000)]
    pub session_timeout_ms: i64,

    /// Reply to HELP/INFO keywords.
    #[arg(
        long,
        env = "CHATWIRE_HELP_TEXT",
        default_value = "Reply STOP to unsubscribe. Msg&data rates may apply."
    )]
    pub help_text: String,

    /// Default outbound messages per second per sender number (Twilio long codes: 1).
    #[arg(long, env = "CHATWIRE_SEND_RATE", default_value_t = 1.0)]
    pub send_rate_per_sec: f64,

    /// Concurrent bot turns per process (different conversations run in parallel). Turns are
    /// tasks, mostly waiting (for the database, an LLM, a webhook bot), so this is sized by how
    /// much waiting can overlap, not by cores. Measured on 2 cores (bench/REPORT.md): 32
    /// capped throughput; 128 gained little over 64 but cost about 30% more peak memory and
    /// longer webhook queues.
    #[arg(long, env = "CHATWIRE_WORKERS", default_value_t = 64)]
    pub workers: usize,

    /// Concurrent sends per process (outbox rows being handed to Twilio). A send mostly waits
    /// (its number's rate slot, Twilio's answer, the database), so this is sized by how much
    /// waiting must overlap to keep up with the turns: measured on 2 cores (bench/REPORT.md,
    /// session 6), 32 concurrent sends capped the whole pipeline at 1,200-1,400 messages/s
    /// with 470 of 500 messages waiting in the outbox. Twilio answers requests over an
    /// account's concurrency limit with 429/20429, which is retried with backoff.
    #[arg(long, env = "CHATWIRE_SEND_WORKERS", default_value_t = 128)]
    pub send_workers: usize,

    /// Base URL of an OpenAI-compatible API, e.g. `https://api.openai.com/v1`.
    #[arg(long, env = "CHATWIRE_LLM_URL")]
    pub llm_url: Option<String>,

    /// API key for the LLM endpoint.
    #[arg(long, env = "CHATWIRE_LLM_API_KEY", hide_env_values = true)]
    pub llm_api_key: Option<SecretString>,

    /// Model used when a bot names none.
    #[arg(long, env = "CHATWIRE_LLM_MODEL", default_value = "gpt-4o-mini")]
    pub llm_model: String,

    /// Time one LLM turn may take, retries included; past it the person gets the fallback text.
    #[arg(long, env = "CHATWIRE_LLM_TIMEOUT_MS", default_value_t = 30_000)]
    pub llm_timeout_ms: u64,

    /// Extra attempts after an LLM answer of 429/5xx or a connection error (with backoff).
    #[arg(long, env = "CHATWIRE_LLM_RETRIES", default_value_t = 2)]
    pub llm_retries: u32,

    /// Token budget (estimated as characters / 4) for conversation history and the new
    /// message in an LLM prompt; older messages are dropped first.
    #[arg(long, env = "CHATWIRE_LLM_HISTORY_TOKENS", default_value_t = 3_000)]
    pub llm_history_tokens: usize,

    /// `max_tokens` sent to the LLM (0 sends none and leaves the server's default).
    #[arg(long, env = "CHATWIRE_LLM_MAX_TOKENS", default_value_t = 600)]
    pub llm_max_tokens: u32,

    /// Offer the model the `handoff_to_human` and `end_conversation` tools (function calling).
    /// Turn off for servers that reject `tools`.
    #[arg(long, env = "CHATWIRE_LLM_TOOLS", default_value_t = true, action = clap::ArgAction::Set)]
    pub llm_tools: bool,

    /// What the person gets when a bot engine fails (LLM down, slow, garbage; webhook bot 500).
    /// A bot's `fallbackText` overrides it.
    #[arg(
        long,
        env = "CHATWIRE_FALLBACK_TEXT",
        default_value = "Sorry, I can't answer right now. Please try again in a few minutes."
    )]
    pub fallback_text: String,

    /// Outbound HTTP from bots (flow HTTP widgets) may reach private and loopback addresses.
    #[arg(long, env = "CHATWIRE_ALLOW_PRIVATE_HTTP", default_value_t = false)]
    pub allow_private_http: bool,

    /// Most webhook requests one client address may have in flight (reading or handled);
    /// past it, 503. 0 (the default) turns the cap off: Twilio does not retry an inbound
    /// webhook it got a 503 for, and its bursts come from few addresses, so the cap would drop
    /// real messages under load (the bench saw 503s at 1,000 msg/s from one client); behind a
    /// reverse proxy every request comes from the proxy anyway. Set it where hostile clients
    /// can reach the webhook directly.
    #[arg(long, env = "CHATWIRE_WEBHOOK_CLIENT_LIMIT", default_value_t = 0)]
    pub webhook_client_limit: usize,

    /// Failed management-API authentications one client address may make per minute before
    /// it is refused with 429 and `Retry-After` for the rest of the minute; 0 turns this off
    /// (e.g. behind a proxy that hides client addresses).
    #[arg(long, env = "CHATWIRE_AUTH_FAILURE_LIMIT", default_value_t = 20)]
    pub auth_failure_limit: u32,

    /// How often (ms) to list each number's recent inbound messages through Twilio's REST API
    /// and record those whose webhook never arrived (also done on start); 0 turns it off.
    #[arg(long, env = "CHATWIRE_BACKFILL_INTERVAL_MS", default_value_t = 60_000)]
    pub backfill_interval_ms: u64,

    /// Region (ISO 3166 code) whose national format applies to phone numbers given without
    /// `+` through the API, e.g. `US` (ChatBotKit's default) or `GB`.
    #[arg(long, env = "CHATWIRE_DEFAULT_REGION", default_value = "US")]
    pub default_region: crate::domain::phone::Region,

    /// Days the channel log (refused webhooks, send attempts, status callbacks) is kept.
    #[arg(long, env = "CHATWIRE_CHANNEL_LOG_DAYS", default_value_t = 7,
          value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub channel_log_days: u32,
    /// How long a person waits in the agents' queue before the bot takes the conversation back
    /// (with a note to the person). Also how long a "leave a message" offer stays open.
    #[arg(long, env = "CHATWIRE_QUEUE_TIMEOUT_MS", default_value_t = 900_000)]
    pub queue_timeout_ms: i64,

    /// How long an agent may stay silent in a conversation before it returns to the queue,
    /// first in line, for another agent.
    #[arg(
        long,
        env = "CHATWIRE_AGENT_IDLE_TIMEOUT_MS",
        default_value_t = 1_800_000
    )]
    pub agent_idle_timeout_ms: i64,

    /// OpenTelemetry collector (OTLP/HTTP) to export traces to, e.g. `http://127.0.0.1:4318`
    /// (`/v1/traces` is appended): one trace per message, webhook to delivery. Unset: nothing
    /// is exported. `OTEL_SERVICE_NAME` (default `chatwire`), `OTEL_EXPORTER_OTLP_HEADERS`,
    /// `OTEL_BSP_*` and `OTEL_TRACES_SAMPLER` apply as the OpenTelemetry SDK reads them.
    #[arg(long, env = "CHATWIRE_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
}

impl Config {
    /// The public base URL without a trailing slash.
    pub fn public_base(&self, bound: SocketAddr) -> String {
        match &self.public_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => format!("http://{bound}"),
        }
    }

    /// Defaults as `chatwire serve` would have them with no flags and no environment.
    pub fn for_tests(database_url: &str) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            database_url: database_url.to_owned(),
            public_url: None,
            api_token: Some("test-token".into()),
            secret_key: Some("0".repeat(64).into()),
            secret_key_file: None,
            twilio_api_url: "http://127.0.0.1:9".into(),
            twilio_conversations_url: "http://127.0.0.1:9".into(),
            session_timeout_ms: 1_800_000,
            help_text: "Reply STOP to unsubscribe. Msg&data rates may apply.".into(),
            send_rate_per_sec: 1000.0,
            workers: 8,
            send_workers: 4,
            llm_url: None,
            llm_api_key: None,
            llm_model: "gpt-4o-mini".into(),
            llm_timeout_ms: 30_000,
            llm_retries: 2,
            llm_history_tokens: 3_000,
            llm_max_tokens: 600,
            llm_tools: true,
            fallback_text: "Sorry, I can't answer right now. Please try again in a few minutes."
                .into(),
            allow_private_http: true,
            webhook_client_limit: 128,
            auth_failure_limit: 20,
            backfill_interval_ms: 0,
            default_region: crate::domain::phone::Region::US,
            channel_log_days: 7,
            queue_timeout_ms: 900_000,
            agent_idle_timeout_ms: 1_800_000,
            otlp_endpoint: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_redacts_every_secret() {
        let mut config = Config::for_tests("sqlite::memory:");
        config.llm_api_key = Some("sk-live-key".into());
        let shown = format!("{config:?}");
        for secret in ["test-token", &"0".repeat(64), "sk-live-key"] {
            assert!(!shown.contains(secret), "{secret} leaked: {shown}");
        }
        assert!(shown.contains("REDACTED"), "{shown}");
    }
}
