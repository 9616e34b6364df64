//! `chatwire-edge-bench`: what hostile clients cost a genuine webhook (issue 12, point 2).
//!
//! Runs Chatwire in process on a fresh SQLite file with the emulator as Twilio, creates an echo
//! bot and an integration, and measures a genuine signed inbound webhook's response time:
//! 1. alone;
//! 2. the server's time for one 64 KB body of 16k distinct field names with a bogus
//!    signature, and genuine webhooks while 8 clients send such bodies in a loop;
//! 3. genuine webhooks while 600 connections from another address (127.0.0.2) trickle a body
//!    one byte every 2 s.
//!
//! A genuine webhook that takes longer than Twilio's 15 s is counted as failed. Run it with
//! `cargo run --bin chatwire-edge-bench` (figures in `docs/reliability.md` are from the debug
//! build on a shared 2-core machine: compare before and after, not absolute values).
use chatwire::app::App;
use chatwire::channel::twilio::signature;
use chatwire::config::Config;
use chatwire::emulator::{self, EmulatorConfig};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;

const NUMBER: &str = "+15005550006";
const TWILIO_DEADLINE: Duration = Duration::from_secs(15);

struct Target {
    base: String,
    hook: String,
    account: String,
    token: String,
    client: reqwest::Client,
    seq: AtomicU64,
}

impl Target {
    /// One genuine signed webhook; its response time, or `None` past Twilio's deadline or on
    /// a non-2xx answer.
    async fn genuine(&self) -> Option<Duration> {
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        let params = vec![
            ("MessageSid".to_owned(), format!("SM{n:032x}")),
            ("AccountSid".to_owned(), self.account.clone()),
            ("From".to_owned(), format!("+1555{:07}", n % 10_000_000)),
            ("To".to_owned(), NUMBER.to_owned()),
            ("Body".to_owned(), "hello".to_owned()),
            ("NumMedia".to_owned(), "0".to_owned()),
        ];
        let sig = signature::compute(&self.token, &self.hook, &params);
        let started = Instant::now();
        let sent = self
            .client
            .post(&self.hook)
            .header("X-Twilio-Signature", sig)
            .form(&params)
            .timeout(TWILIO_DEADLINE)
            .send()
            .await;
        match sent {
            Ok(r) if r.status().is_success() => Some(started.elapsed()),
            _ => None,
        }
    }

    /// `count` genuine webhooks one after another, summarised.
    async fn series(&self, count: usize) -> String {
        let mut times = Vec::new();
        let mut failed = 0;
        for _ in 0..count {
            match self.genuine().await {
                Some(t) => times.push(t),
                None => failed += 1,
            }
        }
        summary(&mut times, failed)
    }
}

fn summary(times: &mut [Duration], failed: usize) -> String {
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    match (times.first(), times.last()) {
        (Some(_), Some(max)) => format!(
            "{} ok, {failed} failed; median {:.1} ms, max {:.1} ms",
            times.len(),
            ms(times[times.len() / 2]),
            ms(*max)
        ),
        _ => format!("0 ok, {failed} failed"),
    }
}

/// 64 KB of distinct field names.
fn hostile_body() -> String {
    (0..16_000)
        .map(|i| format!("f{i:x}="))
        .collect::<Vec<_>>()
        .join("&")
        .chars()
        .take(64 * 1024 - 1)
        .collect()
}

async fn hostile(target: &Target, body: &str) -> Duration {
    let started = Instant::now();
    let _ = target
        .client
        .post(&target.hook)
        .header("X-Twilio-Signature", "bogus")
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(body.to_owned())
        .timeout(Duration::from_secs(60))
        .send()
        .await;
    started.elapsed()
}

/// A connection from `from` that sends headers, then one body byte every 2 s until `stop`.
async fn trickle(
    from: SocketAddr,
    to: SocketAddr,
    path: String,
    stop: Arc<AtomicBool>,
    open: Arc<AtomicU64>,
) {
    let Ok(socket) = tokio::net::TcpSocket::new_v4() else {
        return;
    };
    if socket.bind(from).is_err() {
        return;
    }
    let Ok(mut stream) = socket.connect(to).await else {
        return;
    };
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {to}\r\nContent-Type: application/x-www-form-urlencoded\r\nX-Twilio-Signature: x\r\nContent-Length: 1000\r\n\r\n"
    );
    if stream.write_all(head.as_bytes()).await.is_err() {
        return;
    }
    open.fetch_add(1, Ordering::Relaxed);
    while !stop.load(Ordering::Relaxed) {
        if stream.write_all(b"a").await.is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("chatwire-edge-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let twilio = emulator::spawn(EmulatorConfig::default()).await?;
    let mut config = Config::for_tests(&format!("sqlite://{}", dir.join("edge.db").display()));
    config.twilio_api_url = twilio.url().to_owned();
    let app = App::build(config).await?;
    let addr = app.local_addr();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async move {
        let _ = stop_rx.await;
    }));
    let base = format!("http://{addr}");
    let client = reqwest::Client::new();
    let api = |path: &str, body: Value| {
        client
            .post(format!("{base}/v1{path}"))
            .bearer_auth("test-token")
            .json(&body)
            .send()
    };
    let bot: Value = api("/bot/create", json!({"name": "edge", "model": "echo"}))
        .await?
        .json()
        .await?;
    let account = twilio.account();
    let integration: Value = api(
        "/integration/twilio/create",
        json!({"name": "edge", "botId": bot["id"], "accountSid": account.sid,
               "authToken": account.auth_token, "phoneNumber": NUMBER}),
    )
    .await?
    .json()
    .await?;
    let id = integration["id"].as_str().unwrap_or_default().to_owned();
    let path = format!("/v1/integration/twilio/{id}/webhook");
    let target = Arc::new(Target {
        hook: format!("{base}{path}"),
        base,
        account: account.sid.clone(),
        token: account.auth_token.clone(),
        client: reqwest::Client::new(),
        seq: AtomicU64::new(1),
    });
    let _ = &target.base;

    println!("genuine webhook alone: {}", target.series(20).await);

    let body = Arc::new(hostile_body());
    println!(
        "one 64 KB body of 16k distinct names, bogus signature: server answered in {:.1} ms",
        hostile(&target, &body).await.as_secs_f64() * 1000.0
    );
    let stop = Arc::new(AtomicBool::new(false));
    let mut attackers = Vec::new();
    for _ in 0..8 {
        let (target, body, stop) = (target.clone(), body.clone(), stop.clone());
        attackers.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                hostile(&target, &body).await;
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    println!(
        "genuine webhook beside 8 such clients: {}",
        target.series(10).await
    );
    stop.store(true, Ordering::Relaxed);
    for a in attackers {
        let _ = a.await;
    }

    let stop = Arc::new(AtomicBool::new(false));
    let mut slow = Vec::new();
    let open = Arc::new(AtomicU64::new(0));
    let slow_count: usize = std::env::var("EDGE_SLOW")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(600);
    for _ in 0..slow_count {
        slow.push(tokio::spawn(trickle(
            SocketAddr::from(([127, 0, 0, 2], 0)),
            addr,
            path.clone(),
            stop.clone(),
            open.clone(),
        )));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    println!(
        "genuine webhook beside {} slow-body connections: {}",
        open.load(Ordering::Relaxed),
        target.series(10).await
    );
    stop.store(true, Ordering::Relaxed);
    for s in slow {
        s.abort();
    }

    let _ = stop_tx.send(());
    let _ = tokio::time::timeout(Duration::from_secs(15), server).await;
    twilio.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
