//! Process counters, served in Prometheus text format at `/metrics`.
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct Metrics {
    pub webhooks_accepted: AtomicU64,
    pub webhooks_duplicate: AtomicU64,
    pub webhook_signature_failures: AtomicU64,
    pub webhooks_blocked: AtomicU64,
    pub turns_completed: AtomicU64,
    pub engine_failures: AtomicU64,
    pub messages_sent: AtomicU64,
    pub send_retries: AtomicU64,
    pub send_failures: AtomicU64,
}

impl Metrics {
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn render(&self) -> String {
        let rows = [
            ("chatwire_webhooks_accepted_total", &self.webhooks_accepted),
            (
                "chatwire_webhooks_duplicate_total",
                &self.webhooks_duplicate,
            ),
            (
                "chatwire_webhook_signature_failures_total",
                &self.webhook_signature_failures,
            ),
            ("chatwire_webhooks_blocked_total", &self.webhooks_blocked),
            ("chatwire_turns_completed_total", &self.turns_completed),
            ("chatwire_engine_failures_total", &self.engine_failures),
            ("chatwire_messages_sent_total", &self.messages_sent),
            ("chatwire_send_retries_total", &self.send_retries),
            ("chatwire_send_failures_total", &self.send_failures),
        ];
        rows.iter()
            .map(|(name, v)| {
                format!(
                    "# TYPE {name} counter\n{name} {}\n",
                    v.load(Ordering::Relaxed)
                )
            })
            .collect()
    }
}
