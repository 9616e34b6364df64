//! Crashes and replicas, with the real binaries: `chatwire twilio-emulator` plays Twilio and
//! `chatwire serve` runs as child processes that these tests SIGKILL mid-run (issue 3, "Bad
//! input and faults").
//!
//! Both tests check one promise: every inbound message Chatwire accepted (answered 2xx) gets
//! exactly one reply at Twilio, and each sender's replies arrive in the order they texted. A
//! webhook that never got its 2xx (the server was down) is delivered again with the same
//! MessageSid until it is accepted, as Twilio retries, so in the end every message counts.
//!
//! - `kill_9_under_load_then_restart_answers_every_message_exactly_once`: SQLite, and
//!   PostgreSQL when `CHATWIRE_TEST_POSTGRES_URL` is set.
//! - `kill_9_mid_send_of_a_repeated_reply_still_sends_it_once`: the same words texted twice,
//!   the second echo in flight when the server dies; reconciliation must not take the first
//!   reply for the second. Same backends.
//! - `kill_9_in_a_loop_with_twilios_retries_loses_no_message`: three kills while people text,
//!   the emulator retrying only as Twilio does and nothing replayed; webhooks that failed every
//!   attempt are recovered by the backfill (issue 12). Same backends.
//! - `two_replicas_share_one_postgres_and_keep_per_conversation_order`: PostgreSQL only.
//!
//! A server that dies leaves its claims to expire (leases of 15 s, renewed while a worker
//! lives), so each scenario takes about 15-20 s.
//!
//! Each child's output goes to a log file whose tail is printed when an assertion fails.
use chatwire::channel::twilio::signature;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use tokio::time::timeout;

const BIN: &str = env!("CARGO_BIN_EXE_chatwire");
const ACCOUNT_SID: &str = "AC0123456789abcdef0123456789abcdef";
const AUTH_TOKEN: &str = "resilience0auth0token00000000001";
const NUMBER: &str = "+15005550006";
const API_TOKEN: &str = "resilience-api-token";
const SECRET_KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
const SENDERS: usize = 20;
const PER_SENDER: usize = 10;
/// Accepted messages before the faults and the kill.
const KILL_AFTER: usize = 60;
/// Pause between two messages of one sender, so the load spans the kill.
const PACE: Duration = Duration::from_millis(250);
/// Longest a whole scenario may take, start to verdict.
const SCENARIO_BUDGET: Duration = Duration::from_secs(90);

// ---------------------------------------------------------------------------------------------
// Child processes

/// A child process, SIGKILLed and reaped when dropped so no test leaves one behind.
struct Proc {
    name: String,
    child: Option<Child>,
    log: PathBuf,
}

impl Proc {
    fn spawn(name: &str, args: &[&str], env: &[(&str, String)], log: PathBuf) -> Proc {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("open the child's log file");
        let err = out.try_clone().expect("clone the log file handle");
        let mut command = Command::new(BIN);
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        // Only what the test sets: a developer's CHATWIRE_* variables must not leak in.
        for (key, _) in std::env::vars() {
            if key.starts_with("CHATWIRE_") {
                command.env_remove(key);
            }
        }
        if std::env::var_os("RUST_LOG").is_none() {
            command.env("RUST_LOG", "info,sqlx=warn");
        }
        command.envs(env.iter().map(|(k, v)| (*k, v.as_str())));
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {name} ({BIN}): {e}"));
        Proc {
            name: name.to_owned(),
            child: Some(child),
            log,
        }
    }

    /// SIGKILL (what `Child::kill` sends on Unix) and reap.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// `Some(status)` if the process is gone.
    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        let from = all.len().saturating_sub(lines);
        format!(
            "--- last lines of {} ---\n{}",
            self.name,
            all[from..].join("\n")
        )
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A port nobody listens on right now (bind port 0, read it, let it go).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0 to find a free port")
}

/// Waits for `GET {base}/healthz` to answer 200; fails early if the process died.
async fn wait_healthy(client: &reqwest::Client, base: &str, proc: &mut Proc) {
    let started = Instant::now();
    loop {
        if let Some(status) = proc.exited() {
            panic!(
                "{} exited with {status} before it was healthy\n{}",
                proc.name,
                proc.log_tail(40)
            );
        }
        let ok = client
            .get(format!("{base}/healthz"))
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if ok {
            return;
        }
        if started.elapsed() > Duration::from_secs(30) {
            panic!(
                "{} not healthy after 30 s\n{}",
                proc.name,
                proc.log_tail(40)
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("http client")
}

// ---------------------------------------------------------------------------------------------
// The emulator as Twilio

/// A running `chatwire twilio-emulator` and its control API.
struct Twilio {
    proc: Proc,
    base: String,
    client: reqwest::Client,
}

impl Twilio {
    async fn start(dir: &Path, client: &reqwest::Client) -> Twilio {
        Twilio::start_with(dir, client, &[]).await
    }

    /// The emulator with `extra` command-line options.
    async fn start_with(dir: &Path, client: &reqwest::Client, extra: &[&str]) -> Twilio {
        let listen = format!("127.0.0.1:{}", free_port());
        let (account, number) = (
            format!("{ACCOUNT_SID}:{AUTH_TOKEN}"),
            format!("{ACCOUNT_SID}:{NUMBER}"),
        );
        let mut args = vec![
            "twilio-emulator",
            "--listen",
            &listen,
            "--account",
            &account,
            "--number",
            &number,
            "--status-delay-ms",
            "50",
        ];
        args.extend_from_slice(extra);
        let mut proc = Proc::spawn("twilio-emulator", &args, &[], dir.join("emulator.log"));
        let base = format!("http://{listen}");
        // The emulator has no /healthz; its control API answers once it listens.
        let started = Instant::now();
        loop {
            if let Some(status) = proc.exited() {
                panic!("emulator exited with {status}\n{}", proc.log_tail(40));
            }
            let up = client
                .get(format!("{base}/_emulator/messages"))
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if up {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "emulator not up after 30 s\n{}",
                proc.log_tail(40)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Twilio {
            proc,
            base,
            client: client.clone(),
        }
    }

    async fn control(&self, path: &str, body: Value) -> Value {
        let response = self
            .client
            .post(format!("{}/_emulator/{path}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("emulator {path}: {e}"));
        let status = response.status();
        let out: Value = response.json().await.unwrap_or(Value::Null);
        assert!(
            status.is_success(),
            "emulator {path} answered {status}: {out}"
        );
        out
    }

    /// Someone texts `body` to our number: (MessageSid, Chatwire's answer after the emulator's
    /// own retries, `None` when Chatwire never answered).
    async fn text(&self, from: &str, body: &str) -> (String, Option<u16>) {
        let out = self
            .control("inbound", json!({"from": from, "to": NUMBER, "body": body}))
            .await;
        let sid = out["message_sid"].as_str().expect("message_sid").to_owned();
        (sid, status_of(&out))
    }

    /// Delivers that webhook again, same MessageSid: a Twilio retry.
    async fn replay(&self, sid: &str) -> Option<u16> {
        status_of(
            &self
                .control("inbound/replay", json!({"message_sid": sid}))
                .await,
        )
    }

    async fn fault(&self, count: u32, kind: &str, delay_ms: u64) {
        self.control(
            "faults",
            json!({"count": count, "kind": kind, "delay_ms": delay_ms}),
        )
        .await;
    }

    /// Faults queued and not yet taken by a create.
    async fn pending_faults(&self) -> u64 {
        let out = self
            .control("faults", json!({"count": 0, "kind": "slow"}))
            .await;
        out["pending"].as_u64().expect("pending fault count")
    }

    /// Every message Chatwire created through the REST API, oldest first: (to, body).
    async fn sent(&self) -> Vec<(String, String)> {
        let out: Value = self
            .client
            .get(format!("{}/_emulator/messages", self.base))
            .send()
            .await
            .expect("emulator messages")
            .json()
            .await
            .expect("emulator messages JSON");
        out["messages"]
            .as_array()
            .expect("messages array")
            .iter()
            .map(|m| {
                (
                    m["to"].as_str().unwrap_or_default().to_owned(),
                    m["body"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }
}

fn status_of(out: &Value) -> Option<u16> {
    out["status"].as_u64().and_then(|s| u16::try_from(s).ok())
}

// ---------------------------------------------------------------------------------------------
// Chatwire

/// A running `chatwire serve` that can be killed and started again on the same port.
struct Serve {
    proc: Proc,
    base: String,
    env: Vec<(&'static str, String)>,
    log: PathBuf,
    client: reqwest::Client,
}

impl Serve {
    async fn start(
        name: &str,
        dir: &Path,
        database_url: &str,
        twilio: &Twilio,
        client: &reqwest::Client,
    ) -> Serve {
        Serve::start_with(name, dir, database_url, twilio, client, Vec::new()).await
    }

    /// `chatwire serve` with `extra` environment variables.
    async fn start_with(
        name: &str,
        dir: &Path,
        database_url: &str,
        twilio: &Twilio,
        client: &reqwest::Client,
        extra: Vec<(&'static str, String)>,
    ) -> Serve {
        let listen = format!("127.0.0.1:{}", free_port());
        let base = format!("http://{listen}");
        let mut env = vec![
            ("CHATWIRE_LISTEN", listen),
            ("CHATWIRE_DATABASE_URL", database_url.to_owned()),
            ("CHATWIRE_PUBLIC_URL", base.clone()),
            ("CHATWIRE_API_TOKEN", API_TOKEN.to_owned()),
            ("CHATWIRE_SECRET_KEY", SECRET_KEY.to_owned()),
            ("CHATWIRE_TWILIO_API_URL", twilio.base.clone()),
            ("CHATWIRE_SEND_RATE", "1000".to_owned()),
        ];
        env.extend(extra);
        let log = dir.join(format!("{name}.log"));
        let proc = Proc::spawn(name, &["serve"], &env, log.clone());
        let mut serve = Serve {
            proc,
            base,
            env,
            log,
            client: client.clone(),
        };
        serve.wait_healthy().await;
        serve
    }

    async fn wait_healthy(&mut self) {
        wait_healthy(&self.client, &self.base, &mut self.proc).await;
    }

    fn kill(&mut self) {
        self.proc.kill();
    }

    /// Starts the same binary again with the same settings (same port, same database).
    async fn restart(&mut self) {
        let name = self.proc.name.clone();
        self.proc = Proc::spawn(&name, &["serve"], &self.env, self.log.clone());
        self.wait_healthy().await;
    }

    async fn api(&self, path: &str, body: Value) -> Value {
        let response = self
            .client
            .post(format!("{}/v1{path}", self.base))
            .bearer_auth(API_TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {path}: {e}"));
        let status = response.status();
        let out: Value = response.json().await.unwrap_or(Value::Null);
        assert_eq!(status, 200, "POST {path}: {out}");
        out
    }

    /// An echo bot on our number, the number's SmsUrl pointed here; the integration id.
    async fn configure(&self) -> String {
        let bot = self
            .api("/bot/create", json!({"name": "Echo", "model": "echo"}))
            .await;
        let integration = self
            .api(
                "/integration/twilio/create",
                json!({"name": "SMS", "botId": bot["id"], "accountSid": ACCOUNT_SID,
                       "authToken": AUTH_TOKEN, "phoneNumber": NUMBER}),
            )
            .await;
        let id = integration["id"]
            .as_str()
            .expect("integration id")
            .to_owned();
        self.api(&format!("/integration/twilio/{id}/setup"), json!({}))
            .await;
        id
    }
}

// ---------------------------------------------------------------------------------------------
// Databases

struct Database {
    url: String,
    /// PostgreSQL: (admin URL, database name), dropped at the end.
    postgres: Option<(String, String)>,
}

fn postgres_admin_url() -> Option<String> {
    std::env::var("CHATWIRE_TEST_POSTGRES_URL")
        .ok()
        .filter(|v| !v.is_empty())
}

/// SQLite always, PostgreSQL when `CHATWIRE_TEST_POSTGRES_URL` is set.
fn backends() -> Vec<&'static str> {
    let mut all = vec!["sqlite"];
    if postgres_admin_url().is_some() {
        all.push("postgres");
    }
    all
}

impl Database {
    async fn fresh(backend: &str, dir: &Path) -> Database {
        match postgres_admin_url().filter(|_| backend == "postgres") {
            Some(admin) => Database::postgres(&admin).await,
            None => Database::sqlite(dir),
        }
    }

    fn sqlite(dir: &Path) -> Database {
        Database {
            url: format!("sqlite://{}", dir.join("chatwire.db").display()),
            postgres: None,
        }
    }

    /// A fresh PostgreSQL database beside the one `admin` names.
    async fn postgres(admin: &str) -> Database {
        sqlx::any::install_default_drivers();
        let name = format!(
            "cw_resilience_{}_{:08x}",
            std::process::id(),
            rand::random::<u32>()
        );
        let pool = sqlx::AnyPool::connect(admin)
            .await
            .expect("connect to CHATWIRE_TEST_POSTGRES_URL");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&pool)
            .await
            .expect("CREATE DATABASE");
        pool.close().await;
        let mut url = url::Url::parse(admin).expect("CHATWIRE_TEST_POSTGRES_URL is a URL");
        url.set_path(&format!("/{name}"));
        Database {
            url: url.to_string(),
            postgres: Some((admin.to_owned(), name)),
        }
    }

    async fn pool(&self) -> sqlx::AnyPool {
        sqlx::any::install_default_drivers();
        sqlx::pool::PoolOptions::<sqlx::Any>::new()
            .max_connections(1)
            .connect(&self.url)
            .await
            .expect("open the test's database")
    }

    /// Best effort: drop a PostgreSQL test database once its servers are gone.
    async fn cleanup(self) {
        if let Some((admin, name)) = self.postgres {
            if let Ok(pool) = sqlx::AnyPool::connect(&admin).await {
                let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&pool)
                    .await;
                pool.close().await;
            }
        }
    }
}

async fn count(pool: &sqlx::AnyPool, sql: &str) -> i64 {
    use sqlx::Row;
    let row = sqlx::query(sql)
        .fetch_one(pool)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    row.try_get::<i64, _>(0)
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// (inbound messages not yet done, outbox rows not yet sent or failed).
async fn open_work(pool: &sqlx::AnyPool) -> (i64, i64) {
    (
        count(
            pool,
            "SELECT COUNT(*) FROM inbound WHERE status IN ('pending', 'processing')",
        )
        .await,
        count(
            pool,
            "SELECT COUNT(*) FROM outbox WHERE status IN ('pending', 'sending')",
        )
        .await,
    )
}

// ---------------------------------------------------------------------------------------------
// Load and verdict

fn sender(s: usize) -> String {
    format!("+1555301{s:04}")
}

fn body(s: usize, m: usize) -> String {
    format!("s{s}-m{m}")
}

/// What each sender texted, in order.
fn expected() -> HashMap<String, Vec<String>> {
    (0..SENDERS)
        .map(|s| (sender(s), (0..PER_SENDER).map(|m| body(s, m)).collect()))
        .collect()
}

/// Waits until every expected reply is at Twilio and the database holds no open work (so no
/// late duplicate can still be on its way), or the budget runs out; returns what was sent.
async fn settle(
    twilio: &Twilio,
    pool: &sqlx::AnyPool,
    expected: &HashMap<String, Vec<String>>,
    budget: Duration,
) -> Vec<(String, String)> {
    let started = Instant::now();
    let want: usize = expected.values().map(Vec::len).sum();
    loop {
        let sent = twilio.sent().await;
        let (inbound_open, outbox_open) = open_work(pool).await;
        let present = expected
            .iter()
            .flat_map(|(to, bodies)| bodies.iter().map(move |b| (to, b)))
            .filter(|(to, b)| sent.iter().any(|(t, sb)| t == *to && sb == *b))
            .count();
        if present == want && inbound_open == 0 && outbox_open == 0 {
            eprintln!("  settled in {:.1?}", started.elapsed());
            return sent;
        }
        if started.elapsed() > budget {
            eprintln!(
                "  not settled after {budget:?}: {present}/{want} replies present, {inbound_open} inbound and {outbox_open} outbox rows open"
            );
            return sent;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Every problem with what Twilio received: missing, duplicated, unexpected or out of order.
fn verdict(sent: &[(String, String)], expected: &HashMap<String, Vec<String>>) -> Vec<String> {
    let mut problems = Vec::new();
    for (to, bodies) in expected {
        let got: Vec<&str> = sent
            .iter()
            .filter(|(t, _)| t == to)
            .map(|(_, b)| b.as_str())
            .collect();
        for b in bodies {
            match got.iter().filter(|g| **g == b).count() {
                1 => {}
                0 => problems.push(format!("{to}: no reply to {b:?}")),
                n => problems.push(format!("{to}: {n} replies to {b:?}")),
            }
        }
        let mut seen = Vec::new();
        for g in &got {
            if !seen.contains(g) {
                seen.push(*g);
            }
        }
        let in_order: Vec<&str> = bodies
            .iter()
            .map(String::as_str)
            .filter(|b| seen.contains(b))
            .collect();
        if seen != in_order {
            problems.push(format!("{to}: replies out of order: {seen:?}"));
        }
    }
    for (to, b) in sent {
        if !expected.get(to).is_some_and(|bodies| bodies.contains(b)) {
            problems.push(format!("unexpected message to {to}: {b:?}"));
        }
    }
    problems
}

/// What the database says about the run, for the failure message.
async fn database_summary(pool: &sqlx::AnyPool) -> String {
    format!(
        "inbound: {} rows, {} done without error; outbox: {} rows, {} sent, {} failed",
        count(pool, "SELECT COUNT(*) FROM inbound").await,
        count(
            pool,
            "SELECT COUNT(*) FROM inbound WHERE status = 'done' AND error IS NULL"
        )
        .await,
        count(pool, "SELECT COUNT(*) FROM outbox").await,
        count(pool, "SELECT COUNT(*) FROM outbox WHERE status = 'sent'").await,
        count(pool, "SELECT COUNT(*) FROM outbox WHERE status = 'failed'").await,
    )
}

/// Waits for every expected reply (or the budget), then fails with every problem found.
async fn judge(
    twilio: &Twilio,
    serve: &Serve,
    pool: &sqlx::AnyPool,
    started: Instant,
    scenario: &str,
) {
    let expected = expected();
    let sent = settle(twilio, pool, &expected, Duration::from_secs(60)).await;
    let problems = verdict(&sent, &expected);
    let summary = database_summary(pool).await;
    eprintln!(
        "  {} replies; {summary}; took {:.1?}",
        sent.len(),
        started.elapsed()
    );
    assert!(
        problems.is_empty(),
        "{} problems after {scenario} ({summary}):\n{}\n{}\n{}",
        problems.len(),
        problems.join("\n"),
        serve.proc.log_tail(60),
        twilio.proc.log_tail(20),
    );
}

async fn in_flight(pool: &sqlx::AnyPool) -> (i64, i64) {
    (
        count(
            pool,
            "SELECT COUNT(*) FROM inbound WHERE status = 'processing'",
        )
        .await,
        count(
            pool,
            "SELECT COUNT(*) FROM outbox WHERE status = 'sending' AND sending_since IS NOT NULL",
        )
        .await,
    )
}

async fn wait_for(accepted: &AtomicUsize, n: usize) {
    let waited = timeout(Duration::from_secs(30), async {
        while accepted.load(Ordering::Relaxed) < n {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(
        waited.is_ok(),
        "only {} of {n} messages accepted after 30 s",
        accepted.load(Ordering::Relaxed)
    );
}

async fn join_senders(senders: Vec<JoinHandle<()>>) {
    let joined = timeout(Duration::from_secs(60), futures::future::join_all(senders))
        .await
        .expect("senders finish within 60 s");
    for result in joined {
        result.expect("a sender task panicked");
    }
}

// ---------------------------------------------------------------------------------------------
// kill -9 and restart

/// Texts through the emulator; a webhook Chatwire did not accept is replayed (same MessageSid)
/// until it is, so messages of one sender arrive in order. (The replays are more than Twilio
/// does; `kill_9_in_a_loop_with_twilios_retries_loses_no_message` makes none.)
fn spawn_emulator_senders(twilio: Arc<Twilio>, accepted: Arc<AtomicUsize>) -> Vec<JoinHandle<()>> {
    (0..SENDERS)
        .map(|s| {
            let twilio = twilio.clone();
            let accepted = accepted.clone();
            tokio::spawn(async move {
                let from = sender(s);
                for m in 0..PER_SENDER {
                    let text = body(s, m);
                    let (sid, mut status) = twilio.text(&from, &text).await;
                    let started = Instant::now();
                    while status != Some(200) {
                        if let Some(code) = status {
                            assert!(code >= 500, "webhook for {text} answered {code}");
                        }
                        assert!(
                            started.elapsed() < Duration::from_secs(40),
                            "webhook for {text} not accepted within 40 s (last {status:?})"
                        );
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        status = twilio.replay(&sid).await;
                    }
                    accepted.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(PACE).await;
                }
            })
        })
        .collect()
}

async fn kill_and_restart(database: &Database, dir: &Path) {
    let started = Instant::now();
    let client = http_client();
    let twilio = Arc::new(Twilio::start(dir, &client).await);
    let mut serve = Serve::start("serve", dir, &database.url, &twilio, &client).await;
    serve.configure().await;
    let pool = database.pool().await;

    let accepted = Arc::new(AtomicUsize::new(0));
    let senders = spawn_emulator_senders(twilio.clone(), accepted.clone());
    wait_for(&accepted, KILL_AFTER).await;
    // Slow creates keep sends in flight (marked `sending_since`) when the process dies.
    twilio.fault(24, "slow", 1500).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    let (turns, sends) = in_flight(&pool).await;
    let replies_before = twilio.sent().await.len();
    serve.kill();
    let killed_at = Instant::now();
    eprintln!(
        "  SIGKILL after {:.1?}: {} accepted, {replies_before} replies at Twilio, {turns} turns and {sends} sends in flight",
        started.elapsed(),
        accepted.load(Ordering::Relaxed),
    );
    tokio::time::sleep(Duration::from_millis(1000)).await;
    serve.restart().await;
    eprintln!("  restarted after {:.1?} down", killed_at.elapsed());
    join_senders(senders).await;
    eprintln!(
        "  all {} messages accepted",
        accepted.load(Ordering::Relaxed)
    );

    judge(&twilio, &serve, &pool, started, "kill -9 and restart").await;
    assert!(
        sends > 0,
        "the scenario meant to kill the server with sends in flight"
    );
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_load_then_restart_answers_every_message_exactly_once() {
    for backend in backends() {
        eprintln!("kill -9 and restart on {backend}");
        let dir = tempfile::tempdir().expect("tempdir");
        let database = Database::fresh(backend, dir.path()).await;
        let outcome = timeout(SCENARIO_BUDGET, kill_and_restart(&database, dir.path())).await;
        database.cleanup().await;
        outcome.unwrap_or_else(|_| panic!("{backend}: scenario took over {SCENARIO_BUDGET:?}"));
    }
}

// ---------------------------------------------------------------------------------------------
// kill -9 in a loop, Twilio's retries only, the backfill

/// Kills in the loop, and how long the server stays down each time: longer than the
/// emulator's retries last (100 ms doubling, 5 retries: 3.1 s), so some webhooks fail for good.
const LOOP_KILLS: usize = 3;
const LOOP_UP: Duration = Duration::from_millis(1500);
const LOOP_DOWN: Duration = Duration::from_millis(4000);
const LOOP_PACE: Duration = Duration::from_millis(500);
const LOOP_BUDGET: Duration = Duration::from_secs(150);

/// Texts through the emulator once per message, as a phone does: no replays. The emulator
/// retries as Twilio does (the overrides `setup` configured); what it gives up on is counted.
fn spawn_phone_senders(
    twilio: Arc<Twilio>,
    done: Arc<AtomicUsize>,
    lost: Arc<AtomicUsize>,
) -> Vec<JoinHandle<()>> {
    (0..SENDERS)
        .map(|s| {
            let (twilio, done, lost) = (twilio.clone(), done.clone(), lost.clone());
            tokio::spawn(async move {
                let from = sender(s);
                for m in 0..PER_SENDER {
                    let (_, status) = twilio.text(&from, &body(s, m)).await;
                    if status != Some(200) {
                        lost.fetch_add(1, Ordering::Relaxed);
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(LOOP_PACE).await;
                }
            })
        })
        .collect()
}

async fn kill_loop(database: &Database, dir: &Path) {
    let started = Instant::now();
    let client = http_client();
    let twilio = Arc::new(Twilio::start_with(dir, &client, &["--webhook-backoff-ms", "100"]).await);
    let backfill = vec![("CHATWIRE_BACKFILL_INTERVAL_MS", "1000".to_owned())];
    let mut serve =
        Serve::start_with("serve", dir, &database.url, &twilio, &client, backfill).await;
    serve.configure().await;
    let pool = database.pool().await;

    let (done, lost) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let senders = spawn_phone_senders(twilio.clone(), done.clone(), lost.clone());
    let total = SENDERS * PER_SENDER;
    let mut kills = 0;
    while kills < LOOP_KILLS && done.load(Ordering::Relaxed) < total {
        tokio::time::sleep(LOOP_UP).await;
        serve.kill();
        kills += 1;
        tokio::time::sleep(LOOP_DOWN).await;
        serve.restart().await;
    }
    join_senders(senders).await;
    let lost = lost.load(Ordering::Relaxed);
    eprintln!(
        "  {kills} kills in {:.1?}; {lost} of {total} webhooks failed every Twilio attempt",
        started.elapsed()
    );

    let scenario = format!("{kills} kills ({lost} webhooks lost at Twilio)");
    judge(&twilio, &serve, &pool, started, &scenario).await;
    assert!(
        kills > 0 && lost > 0,
        "the scenario meant some webhooks to fail every attempt ({kills} kills, {lost} lost)"
    );
    pool.close().await;
}

/// With an emulator that retries like real Twilio (issue 12, finding 8), messages whose every
/// attempt fell while the server was down are recovered by the backfill: each gets exactly one
/// reply, in its sender's order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_in_a_loop_with_twilios_retries_loses_no_message() {
    for backend in backends() {
        eprintln!("kill -9 loop on {backend}");
        let dir = tempfile::tempdir().expect("tempdir");
        let database = Database::fresh(backend, dir.path()).await;
        let outcome = timeout(LOOP_BUDGET, kill_loop(&database, dir.path())).await;
        database.cleanup().await;
        outcome.unwrap_or_else(|_| panic!("{backend}: kill loop took over {LOOP_BUDGET:?}"));
    }
}

/// A person texts the same words twice; the second echo is in flight at Twilio when the
/// server dies. After the restart, reconciliation must not mistake the first reply (same To,
/// From and body, sent seconds earlier) for the second: both replies reach the person.
async fn repeated_reply(database: &Database, dir: &Path) {
    let started = Instant::now();
    let client = http_client();
    let twilio = Twilio::start(dir, &client).await;
    let mut serve = Serve::start("serve", dir, &database.url, &twilio, &client).await;
    serve.configure().await;
    let pool = database.pool().await;
    let person = "+15553029999";
    let text = "ok thanks";
    let to_person = |sent: Vec<(String, String)>| -> Vec<String> {
        sent.into_iter()
            .filter(|(to, _)| to == person)
            .map(|(_, b)| b)
            .collect()
    };

    assert_eq!(twilio.text(person, text).await.1, Some(200));
    let first = timeout(Duration::from_secs(15), async {
        while twilio.sent().await.is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(first.is_ok(), "the first reply never reached Twilio");
    // The next create hangs at Twilio; the server dies while it waits for the answer.
    twilio.fault(1, "slow", 3000).await;
    assert_eq!(twilio.text(person, text).await.1, Some(200));
    let taken = timeout(Duration::from_secs(15), async {
        while twilio.pending_faults().await > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(
        taken.is_ok(),
        "the second reply's create never reached Twilio"
    );
    serve.kill();
    tokio::time::sleep(Duration::from_millis(300)).await;
    serve.restart().await;

    let settled = timeout(Duration::from_secs(40), async {
        while open_work(&pool).await != (0, 0) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    let sent = to_person(twilio.sent().await);
    let summary = database_summary(&pool).await;
    eprintln!("  {sent:?}; {summary}; took {:.1?}", started.elapsed());
    assert!(settled.is_ok(), "work still open after 40 s ({summary})");
    assert_eq!(
        sent,
        vec![text, text],
        "each of the two identical texts gets exactly one reply ({summary})\n{}",
        serve.proc.log_tail(30)
    );
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_send_of_a_repeated_reply_still_sends_it_once() {
    for backend in backends() {
        eprintln!("repeated reply in flight at kill -9 on {backend}");
        let dir = tempfile::tempdir().expect("tempdir");
        let database = Database::fresh(backend, dir.path()).await;
        let outcome = timeout(SCENARIO_BUDGET, repeated_reply(&database, dir.path())).await;
        database.cleanup().await;
        outcome.unwrap_or_else(|_| panic!("{backend}: scenario took over {SCENARIO_BUDGET:?}"));
    }
}

// ---------------------------------------------------------------------------------------------
// Two replicas

/// A signed inbound webhook exactly as Twilio sends it, to `base` (the replica's public URL).
async fn post_webhook(
    client: &reqwest::Client,
    base: &str,
    integration: &str,
    sid: &str,
    from: &str,
    text: &str,
) -> Option<u16> {
    let url = format!("{base}/v1/integration/twilio/{integration}/webhook");
    let params: Vec<(String, String)> = [
        ("SmsMessageSid", sid),
        ("NumMedia", "0"),
        ("SmsSid", sid),
        ("SmsStatus", "received"),
        ("Body", text),
        ("To", NUMBER),
        ("NumSegments", "1"),
        ("MessageSid", sid),
        ("AccountSid", ACCOUNT_SID),
        ("From", from),
        ("ApiVersion", "2010-04-01"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    let signature = signature::compute(AUTH_TOKEN, &url, &params);
    let response = client
        .post(&url)
        .header("X-Twilio-Signature", signature)
        .form(&params)
        .timeout(Duration::from_secs(15))
        .send()
        .await
        .ok()?;
    Some(response.status().as_u16())
}

/// Each webhook goes to a replica picked at random; one that fails is sent again (same
/// MessageSid) to a random live replica until one accepts it.
fn spawn_replica_senders(
    client: &reqwest::Client,
    bases: Arc<Vec<String>>,
    alive: Arc<Vec<AtomicBool>>,
    integration: &str,
    accepted: Arc<AtomicUsize>,
) -> Vec<JoinHandle<()>> {
    (0..SENDERS)
        .map(|s| {
            let (client, bases, alive, accepted) = (
                client.clone(),
                bases.clone(),
                alive.clone(),
                accepted.clone(),
            );
            let integration = integration.to_owned();
            tokio::spawn(async move {
                let from = sender(s);
                for m in 0..PER_SENDER {
                    let text = body(s, m);
                    let sid = format!("SM{:032x}", rand::random::<u128>());
                    let started = Instant::now();
                    loop {
                        let live: Vec<usize> = (0..bases.len())
                            .filter(|i| alive[*i].load(Ordering::Relaxed))
                            .collect();
                        let pick = live[rand::random::<usize>() % live.len()];
                        let status =
                            post_webhook(&client, &bases[pick], &integration, &sid, &from, &text)
                                .await;
                        if status == Some(200) {
                            break;
                        }
                        if let Some(code) = status {
                            assert!(code >= 500, "webhook for {text} answered {code}");
                        }
                        assert!(
                            started.elapsed() < Duration::from_secs(40),
                            "webhook for {text} not accepted within 40 s (last {status:?})"
                        );
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    accepted.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(PACE).await;
                }
            })
        })
        .collect()
}

async fn two_replicas(database: &Database, dir: &Path) {
    let started = Instant::now();
    let client = http_client();
    let twilio = Twilio::start(dir, &client).await;
    // Both start at once on the empty database: migrations must not trip over each other.
    let (a, mut b) = tokio::join!(
        Serve::start("replica-a", dir, &database.url, &twilio, &client),
        Serve::start("replica-b", dir, &database.url, &twilio, &client),
    );
    let integration = a.configure().await;
    let pool = database.pool().await;

    let bases = Arc::new(vec![a.base.clone(), b.base.clone()]);
    let alive = Arc::new(vec![AtomicBool::new(true), AtomicBool::new(true)]);
    let accepted = Arc::new(AtomicUsize::new(0));
    let senders = spawn_replica_senders(
        &client,
        bases,
        alive.clone(),
        &integration,
        accepted.clone(),
    );
    wait_for(&accepted, KILL_AFTER).await;
    twilio.fault(24, "slow", 1500).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    let (turns, sends) = in_flight(&pool).await;
    alive[1].store(false, Ordering::Relaxed);
    b.kill();
    eprintln!(
        "  SIGKILL replica B after {:.1?}: {} accepted, {turns} turns and {sends} sends in flight",
        started.elapsed(),
        accepted.load(Ordering::Relaxed),
    );
    join_senders(senders).await;
    eprintln!(
        "  all {} messages accepted",
        accepted.load(Ordering::Relaxed)
    );

    let expected = expected();
    let sent = settle(&twilio, &pool, &expected, Duration::from_secs(60)).await;
    let problems = verdict(&sent, &expected);
    let summary = database_summary(&pool).await;
    eprintln!(
        "  {} replies; {summary}; took {:.1?}",
        sent.len(),
        started.elapsed()
    );
    assert!(
        problems.is_empty(),
        "{} problems with two replicas, one killed ({summary}):\n{}\n{}\n{}",
        problems.len(),
        problems.join("\n"),
        a.proc.log_tail(40),
        b.proc.log_tail(40),
    );
    assert!(
        sends > 0,
        "the scenario meant to kill a replica with sends in flight"
    );
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_share_one_postgres_and_keep_per_conversation_order() {
    let Some(admin) = postgres_admin_url() else {
        eprintln!("skipped: set CHATWIRE_TEST_POSTGRES_URL to run two replicas on PostgreSQL");
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let database = Database::postgres(&admin).await;
    let outcome = timeout(SCENARIO_BUDGET, two_replicas(&database, dir.path())).await;
    database.cleanup().await;
    outcome.unwrap_or_else(|_| panic!("scenario took over {SCENARIO_BUDGET:?}"));
}

/// A short API token (the README's `dev`) is warned about when the server starts, without the
/// token itself appearing in the log.
#[tokio::test]
async fn a_short_api_token_is_warned_about_on_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let listen = format!("127.0.0.1:{}", free_port());
    let base = format!("http://{listen}");
    let env = [
        ("CHATWIRE_LISTEN", listen),
        (
            "CHATWIRE_DATABASE_URL",
            format!("sqlite://{}", dir.path().join("chatwire.db").display()),
        ),
        ("CHATWIRE_API_TOKEN", "dev0tok".to_owned()),
    ];
    let log = dir.path().join("serve.log");
    let mut proc = Proc::spawn("serve", &["serve"], &env, log.clone());
    wait_healthy(&http_client(), &base, &mut proc).await;
    let text = std::fs::read_to_string(&log).expect("log");
    assert!(
        text.contains("CHATWIRE_API_TOKEN is short"),
        "no warning in:\n{text}"
    );
    assert!(!text.contains("dev0tok"), "the token itself was logged");
}
