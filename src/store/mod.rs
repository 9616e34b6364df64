//! Storage: one `Db` over SQLite (embedded default) or PostgreSQL, chosen by the URL.
//!
//! Both backends go through sqlx's `Any` driver with the same SQL (`$1` placeholders work on
//! both), so every domain verb is written once; the few places where the dialects differ
//! (full-text search, row claiming) branch on [`Backend`]. Each backend has its own migrations
//! with the same table and column names. The conformance tests run every verb on both.
pub mod agents;
pub mod backfill;
pub mod batch;
pub mod cache;
pub mod cascade;
pub mod channel;
pub mod channel_log;
pub mod contacts;
pub mod delivery;
pub mod engine;
pub mod faq;
pub mod flows;
pub mod handoff;
pub mod history;
pub mod integration;
pub mod outbox;
pub mod outgoing;
pub mod overview;
pub mod planner_stats;
pub mod priority;
pub mod refs;
pub mod resource;
pub mod schema;
pub mod search;
pub mod send_slots;
pub mod sql;
pub mod sqlite_file;
pub mod threads;
pub mod tokens;
pub mod visitor;

use anyhow::Context;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Executor};
use std::sync::Arc;
use std::time::Duration;

pub use sql::{Param, Sql};

/// Which database is behind the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The claim queries' row lock: on PostgreSQL, rows another replica is claiming are
    /// skipped rather than waited for. SQLite has one writer, so nothing to skip.
    pub(crate) fn skip_locked(self) -> &'static str {
        match self {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        }
    }

    /// Ends a claim's "no older open row of this sender" subquery. On PostgreSQL, `OFFSET 0`
    /// keeps it a per-row lookup on the sender's index. Without it the planner may turn it into
    /// an anti-join that reads the whole open-rows index once per candidate: it does so
    /// whenever its statistics say the queue is empty (taken while it was), and a backlog of
    /// 3,000 messages then made each claim 45-105 ms instead of 2 ms (bench/REPORT.md,
    /// session 7). SQLite always runs it per row.
    pub(crate) fn per_row(self) -> &'static str {
        match self {
            Backend::Postgres => " OFFSET 0",
            Backend::Sqlite => "",
        }
    }
}

/// A cheap-to-clone handle to the database.
#[derive(Clone, Debug)]
pub struct Db {
    /// Every write goes here. On SQLite it is the one writing connection.
    pub pool: AnyPool,
    /// Plain reads. On SQLite, read-only connections beside the writer (WAL lets them read
    /// while it writes), so lookups never wait behind writes; on PostgreSQL the same pool.
    read: AnyPool,
    pub backend: Backend,
    integrations: cache::TtlCache<integration::Integration>,
    rows: cache::TtlCache<serde_json::Map<String, serde_json::Value>>,
    writes: Writes,
    priority: priority::WriterPriority,
    /// Notified when a write makes a stored inbound message claimable that was not: its
    /// sender's earlier message is finished and it waits behind it. The turn loop listens (it
    /// is `AppState::inbound_ready`), so it claims again when something waits rather than
    /// after every turn, where at a low rate the claim found nothing (one statement in twenty
    /// of each message on PostgreSQL, and the dearest).
    pub inbound_claimable: Arc<tokio::sync::Notify>,
    /// The same for outbox rows: notified when the one door writes rows, and when a recorded
    /// send (or a failure) leaves the next row to its recipient claimable. The delivery loop
    /// listens (it is `AppState::outbox_ready`).
    pub outbox_claimable: Arc<tokio::sync::Notify>,
    /// Background tasks of this database stop once every clone is dropped.
    _alive: Arc<()>,
}

/// The hot-path writes, each batched across concurrent callers (see [`batch`]).
#[derive(Clone, Debug)]
struct Writes {
    inbound: batch::Batcher<channel::NewInbound, bool>,
    outgoing: batch::Batcher<outgoing::Outgoing, outgoing::Done>,
    sent: batch::Batcher<outbox::Sent, outbox::SentDone>,
    statuses: batch::Batcher<outbox::StatusChange, bool>,
    channel_log: batch::Batcher<channel_log::NewEntry, ()>,
    slots: batch::Batcher<send_slots::SlotRequest, send_slots::Slot>,
}

impl Writes {
    fn spawn(pool: &AnyPool, backend: Backend, priority: &priority::WriterPriority) -> Self {
        let (p, prio) = (pool.clone(), priority.clone());
        let inbound = batch::Batcher::spawn(BATCH, move |b| {
            let (p, urgent) = (p.clone(), prio.urgent());
            async move {
                let stored = channel::record_inbound_batch(&p, backend, b).await;
                drop(urgent);
                stored
            }
        });
        Self {
            inbound,
            outgoing: after_webhooks(
                pool,
                backend,
                priority,
                (outgoing::MAX_BATCH, Duration::ZERO),
                outgoing::record_batch,
            ),
            sent: after_webhooks(
                pool,
                backend,
                priority,
                (BATCH, Duration::ZERO),
                outbox::record_sent,
            ),
            statuses: after_webhooks(
                pool,
                backend,
                priority,
                (BATCH, STATUS_LINGER),
                outbox::record_statuses,
            ),
            channel_log: after_webhooks(
                pool,
                backend,
                priority,
                (BATCH, LOG_LINGER),
                channel_log::record_batch,
            ),
            slots: after_webhooks(
                pool,
                backend,
                priority,
                (BATCH, Duration::ZERO),
                send_slots::book_batch,
            ),
        }
    }
}

/// A batcher for one of the pipeline's writes: each batch first lets pending webhook inserts
/// go (see [`priority`]).
fn after_webhooks<I, O, W, Fut>(
    pool: &AnyPool,
    backend: Backend,
    priority: &priority::WriterPriority,
    (max, linger): (usize, Duration),
    write: W,
) -> batch::Batcher<I, O>
where
    I: Clone + Send + 'static,
    O: Send + 'static,
    W: Fn(AnyPool, Backend, Vec<I>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<Vec<O>, sqlx::Error>> + Send + 'static,
{
    let (pool, priority) = (pool.clone(), priority.clone());
    batch::Batcher::spawn_lingering(max, linger, move |b| {
        // Futures are lazy: nothing is written before the yield.
        let (priority, written) = (priority.clone(), write(pool.clone(), backend, b));
        async move {
            let _turn = priority.pipeline_turn().await;
            written.await
        }
    })
}

/// Most single-row writes of one kind in one statement.
const BATCH: usize = 128;
/// How long a status-callback batch waits for more. Twilio waits up to 15 s for the answer and
/// no person waits for it; at a low rate each callback was a statement of its own, two per
/// message.
const STATUS_LINGER: Duration = Duration::from_millis(20);
/// How long a channel-log batch waits for more: entries are written beside the hot path
/// (four per message), and the log is read by people, for whom 50 ms is nothing.
const LOG_LINGER: Duration = Duration::from_millis(50);

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

impl Db {
    /// Connects and runs the backend's migrations. A SQLite file is created on first start.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            anyhow::bail!("CHATWIRE_DATABASE_URL must start with sqlite: or postgres://");
        };
        // SQLite gets one writing connection: it has one write lock anyway, and several
        // connections contending for it wait in busy-timeout sleeps of milliseconds each
        // (measured: 2.5 ms per write with 8 writers against 0.05 ms with one).
        if let Some(file) = sqlite_file::path_of(url) {
            sqlite_file::make_private(&file)
                .with_context(|| format!("making {} private", file.display()))?;
        }
        let (url, max) = match backend {
            Backend::Sqlite if !url.contains("mode=") => {
                let sep = if url.contains('?') { '&' } else { '?' };
                (format!("{url}{sep}mode=rwc"), 1)
            }
            Backend::Sqlite => (url.to_owned(), 1),
            Backend::Postgres => (url.to_owned(), 16),
        };
        let pool = pool_options(backend, max, false)
            .connect(&url)
            .await
            .with_context(|| format!("connecting to {}", redact_url(&url)))?;
        // An in-memory SQLite database exists once per connection, so it cannot be shared.
        let read = if backend == Backend::Sqlite && !url.contains(":memory:") {
            pool_options(backend, SQLITE_READERS, true)
                .connect(&url)
                .await
                .with_context(|| format!("connecting to {}", redact_url(&url)))?
        } else {
            pool.clone()
        };
        let migrator = match backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator.run(&pool).await.context("running migrations")?;
        let alive = Arc::new(());
        match backend {
            Backend::Sqlite => tokio::spawn(checkpoints(read.clone(), Arc::downgrade(&alive))),
            Backend::Postgres => tokio::spawn(planner_stats::keep_fresh(
                pool.clone(),
                Arc::downgrade(&alive),
            )),
        };
        let priority = priority::WriterPriority::new(backend == Backend::Sqlite);
        let writes = Writes::spawn(&pool, backend, &priority);
        Ok(Self {
            pool,
            read,
            backend,
            integrations: cache::TtlCache::default(),
            rows: cache::TtlCache::default(),
            writes,
            priority,
            inbound_claimable: Arc::default(),
            outbox_claimable: Arc::default(),
            _alive: alive,
        })
    }

    /// Books the next send slot of the number `sender` at `per_second`, shared by every
    /// replica on this database; a slot further than `horizon` away is not booked (see
    /// [`send_slots`]).
    pub async fn book_send_slot(
        &self,
        sender: &str,
        per_second: f64,
        horizon: Duration,
    ) -> Result<send_slots::Slot, sqlx::Error> {
        let request = send_slots::SlotRequest {
            sender: sender.to_owned(),
            interval_us: send_slots::interval_us(per_second),
            horizon_us: horizon.as_micros() as i64,
        };
        self.writes.slots.submit(request).await
    }

    /// Forgets every cached row; called on every resource update or delete.
    pub fn forget_cached(&self) {
        self.integrations.clear();
        self.rows.clear();
    }

    /// True when the database answers a trivial query.
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    /// True when a small write commits within `limit`: what accepting a webhook needs.
    pub async fn write_probe(&self, limit: Duration) -> bool {
        let probe = sqlx::query(
            "INSERT INTO health (id, checked_at) VALUES (1, $1) \
             ON CONFLICT (id) DO UPDATE SET checked_at = excluded.checked_at",
        )
        .bind(crate::domain::now_ms())
        .execute(&self.pool);
        matches!(tokio::time::timeout(limit, probe).await, Ok(Ok(_)))
    }

    /// Runs a built statement, returning affected rows.
    pub async fn exec(&self, sql: &Sql) -> Result<u64, sqlx::Error> {
        Ok(sql.query().execute(&self.pool).await?.rows_affected())
    }

    /// Runs a read-only query (a write here fails on SQLite's read-only connections).
    pub async fn fetch_all(&self, sql: &Sql) -> Result<Vec<AnyRow>, sqlx::Error> {
        sql.query().fetch_all(&self.read).await
    }

    /// Runs a read-only query for at most one row.
    pub async fn fetch_optional(&self, sql: &Sql) -> Result<Option<AnyRow>, sqlx::Error> {
        sql.query().fetch_optional(&self.read).await
    }

    /// Runs a write that returns rows (`UPDATE ... RETURNING`: the claims), after any pending
    /// webhook insert.
    pub async fn write_returning(&self, sql: &Sql) -> Result<Vec<AnyRow>, sqlx::Error> {
        let _turn = self.priority.pipeline_turn().await;
        sql.query().fetch_all(&self.pool).await
    }
}

/// Copies SQLite's WAL back into the database file every second from a reader connection (a
/// passive checkpoint never blocks the writer), so the WAL stays small and the writer's
/// commits never pay for a checkpoint. Ends when the `Db` is dropped.
async fn checkpoints(read: AnyPool, alive: std::sync::Weak<()>) {
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        if alive.upgrade().is_none() {
            return;
        }
        if let Err(err) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&read)
            .await
        {
            tracing::warn!(error = %err, "WAL checkpoint failed; will try again");
        }
    }
}

/// Read-only SQLite connections beside the writer.
const SQLITE_READERS: u32 = 4;

fn pool_options(backend: Backend, max: u32, read_only: bool) -> AnyPoolOptions {
    AnyPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(Duration::from_secs(10))
        // sqlx pings every connection it hands out by default: a second round trip for each
        // statement. A connection that has died shows up as that statement's error instead,
        // which every caller already handles (webhooks answer 503 and Twilio retries; the
        // claim loops try again).
        .test_before_acquire(false)
        .after_connect(move |conn, _| {
            Box::pin(async move {
                if backend == Backend::Sqlite {
                    // WAL lets readers run beside the writer (and other processes, such as
                    // `chatwire migrate` or a backup, beside the server); the busy timeout
                    // makes them wait for the lock instead of failing at once.
                    conn.execute(
                        "PRAGMA journal_mode=WAL; PRAGMA busy_timeout=10000; \
                         PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; \
                         PRAGMA cache_size=-16384; PRAGMA temp_store=MEMORY;",
                    )
                    .await?;
                    if read_only {
                        conn.execute("PRAGMA query_only=ON;").await?;
                    } else {
                        // The writer never checkpoints inside a commit (that commit would
                        // take milliseconds while webhooks wait); `checkpoints` does it beside.
                        conn.execute("PRAGMA wal_autocheckpoint=0;").await?;
                    }
                }
                Ok(())
            })
        })
}

/// A database URL with any password removed, for logs and errors.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

/// Is this error a unique-constraint violation (duplicate alias, duplicate MessageSid)?
pub fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
}
