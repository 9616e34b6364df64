//! Histograms and the figures of one phase.
use hdrhistogram::Histogram;
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

fn histogram() -> Histogram<u64> {
    // Microseconds, 3 significant digits, growing as needed.
    let mut h = Histogram::new(3).expect("3 significant digits is a valid precision");
    h.auto(true);
    h
}

/// p50, p99 and max of a latency distribution, in milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Percentiles {
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Percentiles {
    fn of(h: &Histogram<u64>) -> Option<Self> {
        (!h.is_empty()).then(|| Percentiles {
            p50_ms: h.value_at_quantile(0.50) as f64 / 1000.0,
            p99_ms: h.value_at_quantile(0.99) as f64 / 1000.0,
            max_ms: h.max() as f64 / 1000.0,
        })
    }
}

/// Webhook answers as a phase's senders saw them.
pub struct Recorder {
    latency_us: Histogram<u64>,
    sent: u64,
    accepted: u64,
    /// Non-200 answers by status (`0`: connection error or timeout).
    refused: BTreeMap<u16, u64>,
}

impl Default for Recorder {
    fn default() -> Self {
        Self {
            latency_us: histogram(),
            sent: 0,
            accepted: 0,
            refused: BTreeMap::new(),
        }
    }
}

impl Recorder {
    pub fn webhook(&mut self, status: u16, latency: Duration) {
        self.sent += 1;
        if status == 200 {
            self.accepted += 1;
            let _ = self.latency_us.record(latency.as_micros() as u64);
        } else {
            *self.refused.entry(status).or_default() += 1;
        }
    }

    pub fn merge(&mut self, other: Recorder) {
        let _ = self.latency_us.add(&other.latency_us);
        self.sent += other.sent;
        self.accepted += other.accepted;
        for (status, n) in other.refused {
            *self.refused.entry(status).or_default() += n;
        }
    }

    /// The phase's figures; `pairs` are (send time, reply time) in wall-clock microseconds of
    /// the accepted messages.
    pub fn result(
        self,
        name: String,
        send_secs: f64,
        pairs: impl Iterator<Item = (u64, Option<u64>)>,
        with_replies: bool,
    ) -> PhaseResult {
        let mut e2e = histogram();
        let (mut replied, mut first_sent, mut last_reply) = (0_u64, u64::MAX, 0_u64);
        for (sent, reply) in pairs {
            first_sent = first_sent.min(sent);
            if let Some(reply) = reply {
                replied += 1;
                last_reply = last_reply.max(reply);
                let _ = e2e.record(reply.saturating_sub(sent));
            }
        }
        let span = last_reply.saturating_sub(first_sent) as f64 / 1e6;
        PhaseResult {
            name,
            sent: self.sent,
            accepted: self.accepted,
            refused: self.refused,
            send_secs,
            webhook_per_sec: self.accepted as f64 / send_secs.max(1e-9),
            webhook: Percentiles::of(&self.latency_us),
            replied: with_replies.then_some(replied),
            e2e_per_sec: (with_replies && replied > 0).then(|| replied as f64 / span.max(1e-9)),
            e2e: if with_replies {
                Percentiles::of(&e2e)
            } else {
                None
            },
            cpu_percent: BTreeMap::new(),
            turns: None,
            server_webhook_ms: None,
        }
    }
}

/// The figures of one phase.
#[derive(Debug, Clone, Serialize)]
pub struct PhaseResult {
    pub name: String,
    /// Webhooks sent, and answered 200.
    pub sent: u64,
    pub accepted: u64,
    pub refused: BTreeMap<u16, u64>,
    /// How long sending lasted.
    pub send_secs: f64,
    /// Accepted webhooks per second of sending.
    pub webhook_per_sec: f64,
    /// Webhook response time (open loop: from the intended send time).
    pub webhook: Option<Percentiles>,
    /// Accepted messages whose echo reply the emulator accepted.
    pub replied: Option<u64>,
    /// Replies per second, from the first accepted webhook to the last reply.
    pub e2e_per_sec: Option<f64>,
    /// Webhook sent to reply accepted by the emulator (Twilio).
    pub e2e: Option<Percentiles>,
    /// CPU used during the phase (sending and draining), percent of one core, per process;
    /// `machine` is every process on the machine (at most 100 x cores).
    pub cpu_percent: BTreeMap<String, f64>,
    /// Reply messages the emulator accepted: one per bot turn (fewer than `replied` when
    /// bursts were folded into one turn).
    pub turns: Option<u64>,
    /// The server's own webhook handling time, p50 and p99, as the upper bounds (ms) of the
    /// buckets of its `chatwire_webhook_duration_seconds` histogram that hold them.
    pub server_webhook_ms: Option<(f64, f64)>,
}

fn ms(p: Option<Percentiles>) -> String {
    p.map_or("-".to_owned(), |p| {
        format!("{:.2} / {:.2} / {:.1}", p.p50_ms, p.p99_ms, p.max_ms)
    })
}

impl PhaseResult {
    pub fn header() -> &'static str {
        "| phase | sent | 200 | other | webhooks/s | webhook ms p50/p99/max | server-side webhook ms p50/p99 (bucket bound) | replied | turns | end-to-end msg/s | inbound->Twilio ms p50/p99/max | CPU % of one core |\n|---|---|---|---|---|---|---|---|---|---|---|---|"
    }

    /// One Markdown table row.
    pub fn row(&self) -> String {
        let refused = if self.refused.is_empty() {
            "0".to_owned()
        } else {
            self.refused
                .iter()
                .map(|(s, n)| format!("{n}x{s}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let cpu = self
            .cpu_percent
            .iter()
            .map(|(k, v)| format!("{k} {v:.0}"))
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            "| {} | {} | {} | {} | {:.0} | {} | {} | {} | {} | {} | {} | {} |",
            self.name,
            self.sent,
            self.accepted,
            refused,
            self.webhook_per_sec,
            ms(self.webhook),
            self.server_webhook_ms
                .map_or("-".to_owned(), |(p50, p99)| format!("<= {p50} / <= {p99}")),
            self.replied.map_or("-".to_owned(), |r| r.to_string()),
            self.turns.map_or("-".to_owned(), |r| r.to_string()),
            self.e2e_per_sec
                .map_or("-".to_owned(), |r| format!("{r:.0}")),
            ms(self.e2e),
            cpu
        )
    }
}
