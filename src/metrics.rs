//! Process metrics in Prometheus' text format at `/metrics`, on the `prometheus` crate.
//!
//! Every series has HELP and TYPE lines. Labels: `channel` (the channel's name, `twilio`),
//! `integration` (the integration's id; refused webhooks carry none, since their path is
//! whatever a client sent), and what happened (`outcome`, `reason`, `error_code`, `status`).
//! Queue depths are gauges read from the database at scrape time, so every replica reports
//! the shared queue. Histograms: webhook handling, turn duration, and delivery latency (a
//! reply's outbox row written to the provider's acceptance).
use prometheus::core::Collector;
use prometheus::{
    HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};

/// Why a webhook was refused (the `reason` label and the channel log's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusedReason {
    /// The signature does not match the URL it was checked against.
    BadSignature,
    /// No integration has the id in the path.
    UnknownIntegration,
    /// Signed, but for another account, or nothing could be checked.
    WrongAccount,
    /// Not a callback the channel understands.
    Malformed,
}

impl RefusedReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadSignature => "bad_signature",
            Self::UnknownIntegration => "unknown_integration",
            Self::WrongAccount => "wrong_account",
            Self::Malformed => "malformed",
        }
    }
}

/// Every series this process exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// `channel`, `integration`, `outcome` (accepted, duplicate, ignored).
    pub webhooks: IntCounterVec,
    /// `channel`, `reason` (see [`RefusedReason`]).
    pub webhooks_refused: IntCounterVec,
    /// `channel`, `integration`, `status`.
    pub status_callbacks: IntCounterVec,
    /// `integration`, `outcome` (replied, handled: a keyword answered without the bot).
    pub turns: IntCounterVec,
    /// `engine`.
    pub engine_failures: IntCounterVec,
    /// `channel`, `integration`, `outcome` (sent, retry, failed, opted_out).
    pub sends: IntCounterVec,
    /// `channel`, `integration`, `error_code` (the provider's, or `none`).
    pub send_failures: IntCounterVec,
    /// `queue`: pending_turns, pending_sends, retrying_sends.
    pub queue_depth: IntGaugeVec,
    /// `channel`, `kind` (message, status).
    pub webhook_seconds: HistogramVec,
    /// `integration`.
    pub turn_seconds: HistogramVec,
    /// `channel`, `integration`.
    pub delivery_seconds: HistogramVec,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new().unwrap_or_else(|err| panic!("metric definitions are static and valid: {err}"))
    }
}

/// Bucket bounds in seconds, from a millisecond to a minute.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

impl Metrics {
    fn new() -> prometheus::Result<Self> {
        let registry = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| -> prometheus::Result<_> {
            let c = IntCounterVec::new(Opts::new(name, help), labels)?;
            registry.register(Box::new(c.clone()))?;
            Ok(c)
        };
        let histogram = |name: &str, help: &str, labels: &[&str]| -> prometheus::Result<_> {
            let h = HistogramVec::new(
                HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec()),
                labels,
            )?;
            registry.register(Box::new(h.clone()))?;
            Ok(h)
        };
        let queue_depth = IntGaugeVec::new(
            Opts::new(
                "chatwire_queue_depth",
                "Work waiting in the database: pending_turns (stored messages not yet answered), pending_sends (outbox rows never tried), retrying_sends (outbox rows waiting for a retry)",
            ),
            &["queue"],
        )?;
        registry.register(Box::new(queue_depth.clone()))?;
        Ok(Self {
            webhooks: counter(
                "chatwire_webhooks_total",
                "Message webhooks past their signature check, by outcome: accepted (stored), duplicate (a provider retry), ignored (sender not in allowFrom)",
                &["channel", "integration", "outcome"],
            )?,
            webhooks_refused: counter(
                "chatwire_webhooks_refused_total",
                "Webhooks (messages and status callbacks) refused, by reason: bad_signature, unknown_integration, wrong_account, malformed",
                &["channel", "reason"],
            )?,
            status_callbacks: counter(
                "chatwire_status_callbacks_total",
                "Delivery status callbacks applied, by the status they report",
                &["channel", "integration", "status"],
            )?,
            turns: counter(
                "chatwire_turns_total",
                "Inbound turns finished: replied (the bot's reply recorded) or handled (a keyword such as STOP or HELP answered without the bot)",
                &["integration", "outcome"],
            )?,
            engine_failures: counter(
                "chatwire_engine_failures_total",
                "Bot turns answered with the fallback text because the engine failed",
                &["engine"],
            )?,
            sends: counter(
                "chatwire_sends_total",
                "Send attempts by outcome: sent (accepted by the provider), retry, failed (given up), opted_out",
                &["channel", "integration", "outcome"],
            )?,
            send_failures: counter(
                "chatwire_send_failures_total",
                "Failed send attempts (retried or given up) by the provider's error code (none when there was none)",
                &["channel", "integration", "error_code"],
            )?,
            webhook_seconds: histogram(
                "chatwire_webhook_duration_seconds",
                "Time to handle a webhook, body read to answer",
                &["channel", "kind"],
            )?,
            turn_seconds: histogram(
                "chatwire_turn_duration_seconds",
                "Time of one inbound turn, claim to recorded reply (bot time included)",
                &["integration"],
            )?,
            delivery_seconds: histogram(
                "chatwire_delivery_duration_seconds",
                "Time from a reply's outbox row being written to the provider accepting it",
                &["channel", "integration"],
            )?,
            queue_depth,
            registry,
        })
    }

    /// Starts `channel`'s refusal series at 0, so that a rate over them works from the first
    /// scrape (labelled series otherwise appear only once counted).
    pub fn register_channel(&self, channel: &str) {
        for reason in [
            RefusedReason::BadSignature,
            RefusedReason::UnknownIntegration,
            RefusedReason::WrongAccount,
            RefusedReason::Malformed,
        ] {
            self.webhooks_refused
                .with_label_values(&[channel, reason.as_str()]);
        }
    }

    /// Counts a failed engine turn.
    pub fn engine_failed(&self, engine: &str) {
        self.engine_failures.with_label_values(&[engine]).inc();
    }

    /// Engine failures of every engine, summed (for tests).
    pub fn engine_failures_total(&self) -> u64 {
        self.engine_failures
            .collect()
            .iter()
            .flat_map(|family| family.get_metric())
            .map(|m| m.get_counter().get_value() as u64)
            .sum()
    }

    /// Counts a refused webhook.
    pub fn refused(&self, channel: &str, reason: RefusedReason) {
        self.webhooks_refused
            .with_label_values(&[channel, reason.as_str()])
            .inc();
    }

    /// Records a send attempt's outcome, and its error code when it failed.
    pub fn send_outcome(
        &self,
        channel: &str,
        integration: &str,
        outcome: &str,
        error_code: Option<i64>,
    ) {
        self.sends
            .with_label_values(&[channel, integration, outcome])
            .inc();
        if outcome != "sent" {
            let code = error_code.map_or_else(|| "none".to_owned(), |c| c.to_string());
            self.send_failures
                .with_label_values(&[channel, integration, code.as_str()])
                .inc();
        }
    }

    /// Sets the queue gauges.
    pub fn set_queues(&self, depths: &QueueDepths) {
        for (queue, n) in [
            ("pending_turns", depths.pending_turns),
            ("pending_sends", depths.pending_sends),
            ("retrying_sends", depths.retrying_sends),
        ] {
            self.queue_depth.with_label_values(&[queue]).set(n);
        }
    }

    /// The text exposition of every series.
    pub fn render(&self) -> String {
        TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .unwrap_or_else(|err| format!("# encoding metrics failed: {err}\n"))
    }
}

/// What is waiting in the database's queues.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueDepths {
    pub pending_turns: i64,
    pub pending_sends: i64,
    pub retrying_sends: i64,
}
