//! Planner statistics on a PostgreSQL server whose autovacuum is off.
//!
//! PostgreSQL plans from statistics that only `ANALYZE` refreshes, and a connection keeps the
//! generic plan of a prepared statement (sqlx prepares every statement) until a table's
//! statistics change. With autovacuum off nothing refreshes them: plans made while the queues
//! were nearly empty stay in use as the tables grow. Measured on the bench (session 7): the
//! status callbacks' update by provider id kept scanning the whole outbox (8-19 ms a batch),
//! and PostgreSQL used 1.6 cores at 100 messages/s. So when autovacuum is off, Chatwire
//! analyzes its own tables by autovacuum's default rule: a table whose rows changed by more
//! than 50 plus 10% of its size since its last analysis. Vacuuming (dead rows) stays the
//! operator's job, and the start-up warning says so.
use sqlx::{AnyPool, Row};
use std::sync::Weak;
use std::time::Duration;

/// How often the tables' change counts are looked at.
const EVERY: Duration = Duration::from_secs(10);

/// Analyzes the database's tables as autovacuum would, until `alive` is gone, when the
/// server's autovacuum is off. Returns at once when it is on.
pub async fn keep_fresh(pool: AnyPool, alive: Weak<()>) {
    match autovacuum_on(&pool).await {
        Ok(true) => return,
        Ok(false) => tracing::warn!(
            "PostgreSQL's autovacuum is off: Chatwire will ANALYZE its own tables as they \
             change, but dead rows pile up until something runs VACUUM; turn autovacuum on"
        ),
        Err(err) => {
            tracing::warn!(error = %err, "could not read PostgreSQL's autovacuum setting");
            return;
        }
    }
    loop {
        tokio::time::sleep(EVERY).await;
        if alive.upgrade().is_none() {
            return;
        }
        if let Err(err) = analyze_changed(&pool).await {
            tracing::warn!(error = %err, "analyzing changed tables failed; will try again");
        }
    }
}

async fn autovacuum_on(pool: &AnyPool) -> Result<bool, sqlx::Error> {
    let row = sqlx::query("SELECT current_setting('autovacuum') AS on")
        .fetch_one(pool)
        .await?;
    Ok(row.try_get::<String, _>("on")? != "off")
}

/// `ANALYZE` of each table of the current schema past autovacuum's default threshold.
pub async fn analyze_changed(pool: &AnyPool) -> Result<(), sqlx::Error> {
    let due = sqlx::query(
        "SELECT s.relname::text AS name FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid \
         WHERE s.schemaname = current_schema() \
         AND s.n_mod_since_analyze > 50 + 0.1 * GREATEST(c.reltuples, 0)",
    )
    .fetch_all(pool)
    .await?;
    for row in due {
        let name: String = row.try_get("name")?;
        // The name comes from the catalog; quoted all the same.
        let quoted = format!("\"{}\"", name.replace('"', "\"\""));
        sqlx::query(&format!("ANALYZE {quoted}"))
            .execute(pool)
            .await?;
    }
    Ok(())
}
