//! What a new user does before the first message (an echo bot, a Twilio integration on the
//! emulator's number, `setup`), done through the management API; and seeding live sessions
//! straight into the database for the memory measurement.
use anyhow::Context as _;
use chatwire::domain::ids;
use chatwire::store::{Db, Sql};
use serde_json::{json, Value};

/// The bench's API token for `chatwire serve`.
pub const API_TOKEN: &str = "bench-api-token";
/// Lifts the per-number send rate (production default 1 msg/s for a long code, which would cap
/// the whole benchmark at one reply per second).
const SEND_RATE: &str = "1000000";

/// The environment of a `chatwire serve` the bench starts: listening on `addr`, on
/// `database_url`, Twilio at `twilio_url`, with `--workers` / `--send-workers` if given.
pub fn serve_env(
    opts: &crate::Opts,
    addr: &str,
    database_url: &str,
    twilio_url: &str,
) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("CHATWIRE_LISTEN", addr.to_owned()),
        ("CHATWIRE_DATABASE_URL", database_url.to_owned()),
        ("CHATWIRE_PUBLIC_URL", format!("http://{addr}")),
        ("CHATWIRE_API_TOKEN", API_TOKEN.to_owned()),
        ("CHATWIRE_SECRET_KEY", "ab".repeat(32)),
        ("CHATWIRE_TWILIO_API_URL", twilio_url.to_owned()),
        ("CHATWIRE_SEND_RATE", SEND_RATE.to_owned()),
    ];
    if let Some(workers) = opts.workers {
        env.push(("CHATWIRE_WORKERS", workers.to_string()));
    }
    if let Some(sends) = opts.send_workers {
        env.push(("CHATWIRE_SEND_WORKERS", sends.to_string()));
    }
    env
}

/// The integration the load is aimed at.
#[derive(Debug, Clone)]
pub struct Integration {
    pub id: String,
    pub bot_id: String,
    pub webhook_url: String,
}

async fn post(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    body: Value,
) -> anyhow::Result<Value> {
    let response = client
        .post(url)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .with_context(|| format!("POST {url}"))?;
    let status = response.status();
    let out: Value = response.json().await.unwrap_or(Value::Null);
    anyhow::ensure!(status.is_success(), "POST {url}: {status} {out}");
    Ok(out)
}

fn id_of(out: &Value) -> anyhow::Result<String> {
    out["id"]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("no id in {out}"))
}

/// Creates the echo bot and the integration and runs `setup`, which points the emulator's
/// number (SmsUrl, StatusCallback) at Chatwire.
pub async fn create(
    base: &str,
    api_token: &str,
    account_sid: &str,
    auth_token: &str,
    number: &str,
) -> anyhow::Result<Integration> {
    let client = reqwest::Client::builder().no_proxy().build()?;
    let bot = post(
        &client,
        &format!("{base}/v1/bot/create"),
        api_token,
        json!({"name": "Bench echo bot", "model": "echo"}),
    )
    .await?;
    let bot_id = id_of(&bot)?;
    let integration = post(
        &client,
        &format!("{base}/v1/integration/twilio/create"),
        api_token,
        json!({"name": "Bench SMS", "botId": bot_id, "accountSid": account_sid,
               "authToken": auth_token, "phoneNumber": number}),
    )
    .await?;
    let id = id_of(&integration)?;
    post(
        &client,
        &format!("{base}/v1/integration/twilio/{id}/setup"),
        api_token,
        json!({}),
    )
    .await?;
    Ok(Integration {
        webhook_url: format!("{base}/v1/integration/twilio/{id}/webhook"),
        id,
        bot_id,
    })
}

/// Sets the integration's burst debounce window (`burstWindow`, milliseconds; 0 is off).
pub async fn set_burst_window(
    base: &str,
    api_token: &str,
    integration: &str,
    window_ms: u64,
) -> anyhow::Result<()> {
    let client = reqwest::Client::builder().no_proxy().build()?;
    post(
        &client,
        &format!("{base}/v1/integration/twilio/{integration}/update"),
        api_token,
        json!({"burstWindow": window_ms}),
    )
    .await
    .map(|_| ())
}

/// Inserts `addresses.len()` live sessions, each with its conversation, directly into the
/// database Chatwire is running on, in one transaction of multi-row INSERTs: what 100,000
/// people texting within the session window would leave behind, written in seconds instead of
/// the minutes the webhooks would take.
pub async fn seed_sessions(
    database_url: &str,
    integration: &Integration,
    addresses: &[String],
) -> anyhow::Result<()> {
    let db = Db::connect(database_url).await?;
    let now = chatwire::domain::now_ms();
    let mut tx = db.pool.begin().await?;
    for chunk in addresses.chunks(500) {
        let rows: Vec<(String, &String)> = chunk.iter().map(|a| (ids::new_id(), a)).collect();
        let mut conversations = Sql::new(
            "INSERT INTO conversations (id, bot_id, meta, created_at, updated_at) VALUES ",
        );
        let mut sessions = Sql::new(
            "INSERT INTO sessions (integration_id, address, conversation_id, last_activity_at) VALUES ",
        );
        for (i, (conversation, address)) in rows.iter().enumerate() {
            let sep = if i == 0 { "(" } else { ", (" };
            let meta = json!({"app": "twilio", "twilio": {"integrationId": integration.id, "address": address}});
            conversations.push(sep);
            conversations.bind(conversation.as_str()).push(", ");
            conversations.bind(integration.bot_id.as_str()).push(", ");
            conversations.bind(meta.to_string()).push(", ");
            conversations.bind(now).push(", ");
            conversations.bind(now).push(")");
            sessions.push(sep);
            sessions.bind(integration.id.as_str()).push(", ");
            sessions.bind(address.as_str()).push(", ");
            sessions.bind(conversation.as_str()).push(", ");
            sessions.bind(now).push(")");
        }
        conversations.query().execute(&mut *tx).await?;
        sessions.query().execute(&mut *tx).await?;
    }
    tx.commit().await?;
    db.pool.close().await;
    Ok(())
}

/// Creates a fresh database `name` on the PostgreSQL server of `admin_url` and returns its URL.
pub async fn fresh_postgres(admin_url: &str, name: &str) -> anyhow::Result<String> {
    sqlx::any::install_default_drivers();
    let admin = sqlx::AnyPool::connect(admin_url)
        .await
        .with_context(|| format!("connecting to {admin_url}"))?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name}"))
        .execute(&admin)
        .await?;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&admin)
        .await?;
    admin.close().await;
    let mut url = url::Url::parse(admin_url)?;
    url.set_path(&format!("/{name}"));
    Ok(url.to_string())
}

/// Drops the database [`fresh_postgres`] made.
pub async fn drop_postgres(admin_url: &str, name: &str) -> anyhow::Result<()> {
    let admin = sqlx::AnyPool::connect(admin_url).await?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&admin)
        .await?;
    admin.close().await;
    Ok(())
}

/// Rows in `sessions`: every live (or expired but not yet replaced) session.
pub async fn count_sessions(database_url: &str) -> anyhow::Result<i64> {
    let db = Db::connect(database_url).await?;
    let row = db
        .fetch_optional(&Sql::new("SELECT COUNT(*) AS n FROM sessions"))
        .await?
        .context("no count")?;
    let n: i64 = sqlx::Row::try_get(&row, "n")?;
    db.pool.close().await;
    Ok(n)
}

/// `VACUUM ANALYZE` of the whole database (PostgreSQL).
pub async fn vacuum(database_url: &str) -> anyhow::Result<()> {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(database_url).await?;
    sqlx::query("VACUUM ANALYZE").execute(&pool).await?;
    pool.close().await;
    Ok(())
}
