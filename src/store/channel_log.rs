//! The channel log: what passed between Chatwire and its providers (see the migration
//! `0014_operator_channel_log.sql`). Entries are written in batches beside the hot path and
//! pruned after the configured number of days.
use super::channel::{int, opt_text, text};
use super::{Db, Param, Sql};
use crate::domain::{ids, now_ms};
use sqlx::any::AnyRow;
use sqlx::Row;

/// A refused request, kept so that it can be replayed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRequest {
    /// Path and query as called (the signature covers the public URL plus this).
    pub path: String,
    /// The headers a channel needs to verify it again, as a JSON object.
    pub headers: String,
    pub body: String,
}

/// One entry to write.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewEntry {
    /// `message` (an inbound webhook), `status` (a status callback) or `send`.
    pub kind: &'static str,
    pub channel: String,
    pub integration_id: Option<String>,
    /// refused | applied | sent | retry | failed | opted_out
    pub outcome: &'static str,
    /// A machine word: bad_signature, unknown_integration, wrong_account, malformed.
    pub reason: Option<&'static str>,
    /// For people: what was checked and what to do, or the provider's message.
    pub detail: Option<String>,
    pub url: Option<String>,
    pub message_sid: Option<String>,
    pub correlation_id: Option<String>,
    pub error_code: Option<i64>,
    pub elapsed_ms: Option<i64>,
    pub request: Option<StoredRequest>,
}

/// A stored entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub id: String,
    pub created_at: i64,
    pub kind: String,
    pub channel: String,
    pub integration_id: Option<String>,
    pub outcome: String,
    pub reason: Option<String>,
    pub detail: Option<String>,
    pub url: Option<String>,
    pub message_sid: Option<String>,
    pub correlation_id: Option<String>,
    pub error_code: Option<i64>,
    pub elapsed_ms: Option<i64>,
    pub request: Option<StoredRequest>,
    pub replayed_at: Option<i64>,
    pub replay_outcome: Option<String>,
}

/// Filters of [`Db::channel_log`]; unset ones do not filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub integration_id: Option<String>,
    /// Only entries of these integrations (a console agent's); `None` does not restrict.
    pub integrations: Option<Vec<String>>,
    pub kind: Option<String>,
    pub outcome: Option<String>,
    pub reason: Option<String>,
    pub message_sid: Option<String>,
    /// Entries at or after this time (ms).
    pub since: Option<i64>,
    /// Entries older than this entry (keyset paging, newest first).
    pub cursor: Option<String>,
    pub take: i64,
}

fn opt_int(row: &AnyRow, col: &str) -> Option<i64> {
    row.try_get::<Option<i64>, _>(col).ok().flatten()
}

fn entry(row: &AnyRow) -> Entry {
    let request = opt_text(row, "request_path").map(|path| StoredRequest {
        path,
        headers: opt_text(row, "request_headers").unwrap_or_else(|| "{}".into()),
        body: opt_text(row, "request_body").unwrap_or_default(),
    });
    Entry {
        id: text(row, "id"),
        created_at: int(row, "created_at"),
        kind: text(row, "kind"),
        channel: text(row, "channel"),
        integration_id: opt_text(row, "integration_id"),
        outcome: text(row, "outcome"),
        reason: opt_text(row, "reason"),
        detail: opt_text(row, "detail"),
        url: opt_text(row, "url"),
        message_sid: opt_text(row, "message_sid"),
        correlation_id: opt_text(row, "correlation_id"),
        error_code: opt_int(row, "error_code"),
        elapsed_ms: opt_int(row, "elapsed_ms"),
        request,
        replayed_at: opt_int(row, "replayed_at"),
        replay_outcome: opt_text(row, "replay_outcome"),
    }
}

/// Writes a batch of entries in one statement.
pub(super) async fn record_batch(
    pool: sqlx::AnyPool,
    backend: super::Backend,
    batch: Vec<NewEntry>,
) -> Result<Vec<()>, sqlx::Error> {
    let now = now_ms();
    let mut sql = Sql::new(
        "INSERT INTO channel_log (id, created_at, kind, channel, integration_id, outcome, reason, detail, url, \
         message_sid, correlation_id, error_code, elapsed_ms, request_path, request_headers, request_body) ",
    );
    sql.json_rows(
        backend,
        batch.iter().map(|e| {
            let request = e.request.as_ref();
            vec![
                Param::from(ids::new_id()),
                now.into(),
                e.kind.into(),
                e.channel.as_str().into(),
                e.integration_id.clone().into(),
                e.outcome.into(),
                e.reason.into(),
                e.detail.clone().into(),
                e.url.clone().into(),
                e.message_sid.clone().into(),
                e.correlation_id.clone().into(),
                e.error_code.into(),
                e.elapsed_ms.into(),
                request.map(|r| r.path.clone()).into(),
                request.map(|r| r.headers.clone()).into(),
                request.map(|r| r.body.clone()).into(),
            ]
        }),
    );
    sql.query().execute(&pool).await?;
    Ok(vec![(); batch.len()])
}

/// ` IN ($n, ...)` for `values`; an empty list matches nothing.
pub(super) fn in_list(sql: &mut Sql, values: &[String]) {
    if values.is_empty() {
        sql.push(" IN (NULL)");
        return;
    }
    sql.push(" IN (");
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            sql.push(", ");
        }
        sql.bind(v.as_str());
    }
    sql.push(")");
}

const COLUMNS: &str = "id, created_at, kind, channel, integration_id, outcome, reason, detail, url, message_sid, \
     correlation_id, error_code, elapsed_ms, request_path, request_headers, request_body, replayed_at, replay_outcome";

impl Db {
    /// Writes an entry (batched with concurrent ones).
    pub async fn log_channel(&self, entry: NewEntry) -> Result<(), sqlx::Error> {
        self.writes.channel_log.submit(entry).await
    }

    /// Writes an entry without waiting for it; a failure is logged, never the caller's.
    pub fn log_channel_later(&self, entry: NewEntry) {
        let db = self.clone();
        tokio::spawn(async move {
            if let Err(err) = db.log_channel(entry).await {
                tracing::warn!(error = %err, "writing the channel log failed");
            }
        });
    }

    /// Entries matching `filter`, newest first.
    pub async fn channel_log(&self, filter: &Filter) -> Result<Vec<Entry>, sqlx::Error> {
        let mut sql = Sql::new(format!("SELECT {COLUMNS} FROM channel_log WHERE 1 = 1"));
        let eq = [
            ("integration_id", &filter.integration_id),
            ("kind", &filter.kind),
            ("outcome", &filter.outcome),
            ("reason", &filter.reason),
            ("message_sid", &filter.message_sid),
        ];
        for (col, value) in eq {
            if let Some(v) = value {
                sql.push(&format!(" AND {col} = ")).bind(v.as_str());
            }
        }
        if let Some(since) = filter.since {
            sql.push(" AND created_at >= ").bind(since);
        }
        if let Some(allowed) = &filter.integrations {
            sql.push(" AND integration_id");
            in_list(&mut sql, allowed);
        }
        sql.newest_first_page("channel_log", filter.cursor.as_deref(), filter.take);
        Ok(self.fetch_all(&sql).await?.iter().map(entry).collect())
    }

    /// One entry by id.
    pub async fn channel_log_entry(&self, id: &str) -> Result<Option<Entry>, sqlx::Error> {
        let sql = Sql::new(format!("SELECT {COLUMNS} FROM channel_log WHERE id = $1")).arg(id);
        Ok(self.fetch_optional(&sql).await?.as_ref().map(entry))
    }

    /// Marks an entry replayed with what the replay came to.
    pub async fn channel_log_replayed(&self, id: &str, outcome: &str) -> Result<(), sqlx::Error> {
        let sql =
            Sql::new("UPDATE channel_log SET replayed_at = $1, replay_outcome = $2 WHERE id = $3")
                .arg(now_ms())
                .arg(outcome)
                .arg(id);
        self.exec(&sql).await.map(|_| ())
    }

    /// Deletes entries older than `before_ms`; returns how many.
    pub async fn prune_channel_log(&self, before_ms: i64) -> Result<u64, sqlx::Error> {
        self.exec(&Sql::new("DELETE FROM channel_log WHERE created_at < $1").arg(before_ms))
            .await
    }
}
