//! The load generator: signed Twilio webhooks from many senders, closed loop (as fast as the
//! server answers, optionally with a bound on messages outstanding end to end) or open loop (a
//! fixed rate whatever the server does), and a collector that matches each echo reply the
//! emulator accepted to the webhook that caused it.
//!
//! Every webhook carries a unique number in its body (`bench 123 ...`); the echo bot sends the
//! body back, and the emulator's `GET /_emulator/sent?after=N` gives each reply's body and the
//! microsecond Twilio (the emulator) accepted it. Both processes read the same wall clock, so
//! "inbound to Twilio-accepted" is that timestamp minus the time the webhook was sent.
use crate::procs::CpuProbe;
use crate::stats::{PhaseResult, Recorder};
use chatwire::channel::twilio::signature;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

/// Where the webhooks go and how they are signed.
#[derive(Debug, Clone)]
pub struct Target {
    /// One URL per replica; message `n` goes to `webhook_urls[n % len]`, signed for that URL.
    pub webhook_urls: Vec<String>,
    pub auth_token: String,
    pub account_sid: String,
    /// Our number (the webhook's `To`).
    pub to: String,
}

/// Who sends message `n`: `prefix` followed by 7 digits, `(n / repeat * stride) % count`
/// (with `repeat` above 1, each sender sends that many messages in a row: a burst).
#[derive(Debug, Clone)]
pub struct Senders {
    pub prefix: &'static str,
    pub count: u64,
    pub stride: u64,
    pub repeat: u64,
}

impl Senders {
    pub fn address(&self, n: u64) -> String {
        format!(
            "{}{:07}",
            self.prefix,
            (n / self.repeat.max(1)).wrapping_mul(self.stride) % self.count.max(1)
        )
    }
}

/// Send times of accepted webhooks and accept times of their replies, by message number.
#[derive(Default)]
struct Tracker {
    sent: Mutex<HashMap<u64, u64>>,
    replies: Mutex<HashMap<u64, u64>>,
    /// The first message number each reply message answers: one entry per bot turn (a turn
    /// over a burst answers several messages).
    turns: Mutex<Vec<u64>>,
    /// The current phase's end-to-end window: a reply frees one slot.
    window: Mutex<Option<Arc<Semaphore>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn wall_us(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// One load generator against one target; the reply collector runs while it lives.
pub struct Load {
    client: reqwest::Client,
    target: Target,
    next: AtomicU64,
    tracker: Arc<Tracker>,
    collector: Option<JoinHandle<()>>,
}

impl Drop for Load {
    fn drop(&mut self) {
        if let Some(task) = &self.collector {
            task.abort();
        }
    }
}

/// A closed-loop phase: `concurrency` connections send back to back for `duration` (at most
/// `max_messages`); with `window`, no more than that many messages are outstanding end to end.
pub struct ClosedLoop {
    pub name: String,
    pub concurrency: usize,
    pub duration: Duration,
    pub max_messages: u64,
    pub window: Option<usize>,
    pub senders: Senders,
    /// Wait this long at most for the replies after sending stops (zero: don't wait).
    pub drain: Duration,
}

/// An open-loop phase: one webhook every `1/rate` s for `duration`, each on its own task, so a
/// slow answer never delays the next send (no coordinated omission: latency counts from the
/// intended send time).
pub struct OpenLoop {
    pub name: String,
    pub rate: f64,
    pub duration: Duration,
    pub senders: Senders,
    pub drain: Duration,
}

impl Load {
    /// `emulator`: the emulator's base URL, to collect replies from (`None` for the ceiling).
    pub fn new(target: Target, emulator: Option<String>) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .no_proxy()
            .pool_max_idle_per_host(1024)
            .timeout(Duration::from_secs(30))
            .build()?;
        let tracker = Arc::new(Tracker::default());
        let collector =
            emulator.map(|url| tokio::spawn(collect(client.clone(), url, tracker.clone())));
        Ok(Self {
            client,
            target,
            next: AtomicU64::new(1),
            tracker,
            collector,
        })
    }

    /// Numbers the next messages from `n` on (a second generator on the same server must not
    /// reuse the first one's MessageSids).
    pub fn starting_at(self, n: u64) -> Self {
        self.skip_to(n);
        self
    }

    /// Moves the numbering on to `n` (after another generator used the numbers before it).
    pub fn skip_to(&self, n: u64) {
        self.next.fetch_max(n, Ordering::SeqCst);
    }

    /// The number the next message gets.
    pub fn next_number(&self) -> u64 {
        self.next.load(Ordering::SeqCst)
    }

    /// Posts message `n` from `from`; returns the HTTP status (0 on a transport error).
    async fn send(&self, n: u64, from: &str) -> u16 {
        let sid = format!("SM{n:032x}");
        let body = format!("bench {n} hello from the load generator");
        let t = &self.target;
        let params: Vec<(String, String)> = [
            ("ToCountry", "US"),
            ("ToState", "CA"),
            ("SmsMessageSid", &sid),
            ("NumMedia", "0"),
            ("SmsSid", &sid),
            ("SmsStatus", "received"),
            ("Body", &body),
            ("FromCountry", "US"),
            ("To", &t.to),
            ("NumSegments", "1"),
            ("MessageSid", &sid),
            ("AccountSid", &t.account_sid),
            ("From", from),
            ("ApiVersion", "2010-04-01"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let url = &t.webhook_urls[(n % t.webhook_urls.len().max(1) as u64) as usize];
        let signed = signature::compute(&t.auth_token, url, &params);
        let form = serde_urlencoded::to_string(&params).unwrap_or_default();
        let response = self
            .client
            .post(url)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .header("X-Twilio-Signature", signed)
            .body(form)
            .send()
            .await;
        match response {
            Ok(r) => {
                let status = r.status().as_u16();
                let _ = r.bytes().await;
                status
            }
            Err(_) => 0,
        }
    }

    fn record_sent(&self, n: u64, at: SystemTime) {
        lock(&self.tracker.sent).insert(n, wall_us(at));
    }

    /// Runs a closed-loop phase.
    pub async fn closed(self: &Arc<Self>, phase: ClosedLoop, cpu: &CpuProbe) -> PhaseResult {
        let first = self.next.load(Ordering::SeqCst);
        let window = phase.window.map(|w| Arc::new(Semaphore::new(w)));
        *lock(&self.tracker.window) = window.clone();
        let cpu_start = cpu.snapshot();
        let start = Instant::now();
        let end = start + phase.duration;
        let limit = first + phase.max_messages;
        let senders = Arc::new(phase.senders.clone());
        let mut workers = Vec::new();
        for _ in 0..phase.concurrency.max(1) {
            let (load, window, senders) = (self.clone(), window.clone(), senders.clone());
            workers.push(tokio::spawn(async move {
                let mut rec = Recorder::default();
                loop {
                    if let Some(w) = &window {
                        match tokio::time::timeout_at(end.into(), w.acquire()).await {
                            Ok(Ok(permit)) => permit.forget(),
                            _ => break,
                        }
                    }
                    if Instant::now() >= end {
                        break;
                    }
                    let n = load.next.fetch_add(1, Ordering::SeqCst);
                    if n >= limit {
                        break;
                    }
                    let (t0, wall) = (Instant::now(), SystemTime::now());
                    let status = load.send(n, &senders.address(n)).await;
                    rec.webhook(status, t0.elapsed());
                    if status == 200 {
                        load.record_sent(n, wall);
                    } else if let Some(w) = &window {
                        w.add_permits(1);
                    }
                }
                rec
            }));
        }
        let mut rec = Recorder::default();
        for w in workers {
            if let Ok(r) = w.await {
                rec.merge(r);
            }
        }
        let send_secs = start.elapsed().as_secs_f64();
        self.finish(
            phase.name,
            first,
            rec,
            send_secs,
            start,
            phase.drain,
            cpu,
            cpu_start,
        )
        .await
    }

    /// Runs an open-loop phase.
    pub async fn open(self: &Arc<Self>, phase: OpenLoop, cpu: &CpuProbe) -> PhaseResult {
        let first = self.next.load(Ordering::SeqCst);
        *lock(&self.tracker.window) = None;
        let count = (phase.rate * phase.duration.as_secs_f64()).round() as u64;
        let period = Duration::from_secs_f64(1.0 / phase.rate.max(0.001));
        let rec = Arc::new(Mutex::new(Recorder::default()));
        let cpu_start = cpu.snapshot();
        let (start, wall0) = (Instant::now(), SystemTime::now());
        let mut tasks = Vec::with_capacity(count as usize);
        for i in 0..count {
            let offset = period.mul_f64(i as f64);
            tokio::time::sleep_until((start + offset).into()).await;
            let n = self.next.fetch_add(1, Ordering::SeqCst);
            let (load, rec, from) = (self.clone(), rec.clone(), phase.senders.address(n));
            tasks.push(tokio::spawn(async move {
                let status = load.send(n, &from).await;
                let latency = start.elapsed().saturating_sub(offset);
                lock(&rec).webhook(status, latency);
                if status == 200 {
                    load.record_sent(n, wall0 + offset);
                }
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
        let send_secs = start.elapsed().as_secs_f64();
        let rec = std::mem::take(&mut *lock(&rec));
        self.finish(
            phase.name,
            first,
            rec,
            send_secs,
            start,
            phase.drain,
            cpu,
            cpu_start,
        )
        .await
    }

    /// Waits for the replies of messages `first..` (at most `drain`) and builds the result.
    #[allow(clippy::too_many_arguments)]
    async fn finish(
        &self,
        name: String,
        first: u64,
        rec: Recorder,
        send_secs: f64,
        start: Instant,
        drain: Duration,
        cpu: &CpuProbe,
        cpu_start: Vec<u64>,
    ) -> PhaseResult {
        let last = self.next.load(Ordering::SeqCst);
        if self.collector.is_some() && !drain.is_zero() {
            let deadline = Instant::now() + drain;
            while Instant::now() < deadline && self.missing(first, last) > 0 {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        let cpu = cpu.percent_since(&cpu_start, start.elapsed());
        let turns = lock(&self.tracker.turns)
            .iter()
            .filter(|n| (first..last).contains(n))
            .count() as u64;
        let sent = lock(&self.tracker.sent);
        let replies = lock(&self.tracker.replies);
        let pairs = (first..last).filter_map(|n| Some((*sent.get(&n)?, replies.get(&n).copied())));
        let mut result = rec.result(name, send_secs, pairs, self.collector.is_some());
        result.cpu_percent = cpu;
        result.turns = self.collector.is_some().then_some(turns);
        result
    }

    /// Accepted messages of `first..last` whose reply has not been seen yet.
    fn missing(&self, first: u64, last: u64) -> usize {
        let sent = lock(&self.tracker.sent);
        let replies = lock(&self.tracker.replies);
        (first..last)
            .filter(|n| sent.contains_key(n) && !replies.contains_key(n))
            .count()
    }
}

/// Polls the emulator's log of accepted messages every 10 ms and records each reply.
async fn collect(client: reqwest::Client, emulator: String, tracker: Arc<Tracker>) {
    let mut cursor = 0_u64;
    loop {
        let url = format!("{emulator}/_emulator/sent?after={cursor}");
        let page: Option<Value> = match client.get(&url).send().await {
            Ok(r) => r.json().await.ok(),
            Err(_) => None,
        };
        if let Some(page) = page {
            cursor = page["next"].as_u64().unwrap_or(cursor);
            let messages = page["messages"].as_array().cloned().unwrap_or_default();
            let window = lock(&tracker.window).clone();
            let mut replies = lock(&tracker.replies);
            for m in &messages {
                let Some(at) = m["sent_at_us"].as_u64() else {
                    continue;
                };
                // One line per message the turn answered (several after a burst).
                let body = m["body"].as_str().unwrap_or_default();
                let numbers: Vec<u64> = body
                    .lines()
                    .filter_map(|line| {
                        line.strip_prefix("bench ")?
                            .split(' ')
                            .next()?
                            .parse::<u64>()
                            .ok()
                    })
                    .collect();
                if let Some(first) = numbers.first() {
                    lock(&tracker.turns).push(*first);
                }
                for n in numbers {
                    if replies.insert(n, at).is_none() {
                        if let Some(w) = &window {
                            w.add_permits(1);
                        }
                    }
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
