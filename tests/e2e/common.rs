//! Test harness: `spawn_app` starts Chatwire in-process on port 0 with a fresh database.
#![allow(dead_code)]
use chatwire::app::App;
use chatwire::config::Config;
use serde_json::Value;
use std::sync::atomic::{AtomicU32, Ordering};

pub const TOKEN: &str = "test-token";

/// Which database a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The backends this run covers: SQLite always, PostgreSQL when configured.
pub fn backends() -> Vec<Backend> {
    let mut all = vec![Backend::Sqlite];
    if std::env::var("CHATWIRE_TEST_POSTGRES_URL").is_ok_and(|v| !v.is_empty()) {
        all.push(Backend::Postgres);
    }
    all
}

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub state: chatwire::app::AppState,
    pub database_url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    /// Last, so that the database goes after the server's handles.
    _dir: Option<Scratch>,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// Where a test's database lives, removed when the last owner drops it: SQLite's temporary
/// directory, or the PostgreSQL database, dropped on the admin connection (best effort:
/// scripts/test.sh drops what a killed run left behind).
pub struct Scratch {
    _dir: Option<tempfile::TempDir>,
    postgres: Option<(String, String)>,
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let Some((admin, name)) = self.postgres.take() else {
            return;
        };
        // Drop cannot await, and the test's runtime may be the one blocked here: a runtime of
        // its own on a thread of its own. FORCE ends the connections the app still holds.
        let dropped = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                if let Ok(pool) = sqlx::AnyPool::connect(&admin).await {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&pool)
                        .await;
                    pool.close().await;
                }
            });
        });
        let _ = dropped.join();
    }
}

/// A fresh, empty database URL for `backend`, and what removes the database when dropped
/// (keep it alive as long as the database is used).
pub async fn fresh_database(backend: Backend) -> (String, Option<Scratch>) {
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().expect("tempdir");
            let url = format!("sqlite://{}", dir.path().join("chatwire.db").display());
            let scratch = Scratch {
                _dir: Some(dir),
                postgres: None,
            };
            (url, Some(scratch))
        }
        Backend::Postgres => {
            let admin = std::env::var("CHATWIRE_TEST_POSTGRES_URL").expect("postgres url");
            let name = format!(
                "cw_test_{}_{}_{}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed),
                rand_suffix()
            );
            sqlx::any::install_default_drivers();
            let pool = sqlx::AnyPool::connect(&admin).await.expect("connect admin");
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&pool)
                .await
                .expect("create db");
            pool.close().await;
            let mut url = url::Url::parse(&admin).expect("url");
            url.set_path(&format!("/{name}"));
            let scratch = Scratch {
                _dir: None,
                postgres: Some((admin, name)),
            };
            (url.to_string(), Some(scratch))
        }
    }
}

fn rand_suffix() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() % 100_000)
        .unwrap_or(0)
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_with(backend, |_| {}).await
}

/// Starts the app with a configuration adjusted by `tweak`.
pub async fn spawn_with(backend: Backend, tweak: impl FnOnce(&mut Config)) -> TestApp {
    let (url, dir) = fresh_database(backend).await;
    let mut config = Config::for_tests(&url);
    tweak(&mut config);
    start(config, dir).await
}

pub async fn start(config: Config, dir: Option<Scratch>) -> TestApp {
    start_with_channels(config, dir, Vec::new()).await
}

/// Starts the app serving `channels` beside Twilio Messaging.
pub async fn start_with_channels(
    config: Config,
    dir: Option<Scratch>,
    channels: Vec<std::sync::Arc<dyn chatwire::channel::Channel>>,
) -> TestApp {
    // `RUST_LOG=chatwire=debug cargo test` shows the server's logs beside a failing test.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let database_url = config.database_url.clone();
    let app = App::build_with(config, channels).await.expect("app builds");
    let base = format!("http://{}", app.local_addr());
    let state = app.state().clone();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let _ = app
            .run_until_stopped(async move {
                let _ = rx.await;
            })
            .await;
    });
    TestApp {
        base,
        client: reqwest::Client::new(),
        state,
        database_url,
        _dir: dir,
        stop: Some(tx),
        task: Some(task),
    }
}

impl TestApp {
    /// Stops the server and waits for it to drain.
    pub async fn stop(mut self) -> Option<Scratch> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        self._dir.take()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// POSTs JSON to `/v1{path}` with the test token; returns (status, body).
    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let resp = self
            .client
            .post(self.url(&format!("/v1{path}")))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
            .await
            .expect("request");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// GETs `/v1{path}` with the test token; returns (status, body).
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let resp = self
            .client
            .get(self.url(&format!("/v1{path}")))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("request");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// The `/metrics` exposition text.
    pub async fn metrics_text(&self) -> String {
        self.client
            .get(self.url("/metrics"))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text")
    }

    /// Creates a resource and returns its id, failing the test otherwise.
    pub async fn create(&self, path: &str, body: Value) -> String {
        let (status, out) = self.post(&format!("{path}/create"), body).await;
        assert_eq!(status, 200, "create {path}: {out}");
        out["id"].as_str().expect("id").to_owned()
    }
}
