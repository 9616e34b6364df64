//! The figures of the console's overview: messages in and out per hour, how the replies'
//! deliveries ended, and the most frequent provider error codes, for a set of integrations.
use super::channel::int;
use super::channel_log::in_list;
use super::{Db, Sql};
use serde::Serialize;
use sqlx::Row;

/// One hour's traffic (`hour` is the hour's start, ms).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Hour {
    pub hour: i64,
    pub inbound: i64,
    pub outbound: i64,
}

/// How outgoing parts ended.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Delivery {
    pub delivered: i64,
    /// Accepted by the provider, no final receipt (yet).
    pub sent: i64,
    pub failed: i64,
    /// Not yet accepted by the provider.
    pub pending: i64,
}

/// One provider error code and how often it came.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorCount {
    pub code: i64,
    pub count: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Overview {
    /// Every hour from the first to the current one, oldest first (empty hours included).
    pub hours: Vec<Hour>,
    pub delivery: Delivery,
    #[serde(rename = "topErrors")]
    pub top_errors: Vec<ErrorCount>,
}

const HOUR_MS: i64 = 3_600_000;

impl Db {
    /// The overview of `integrations` over the `hours` hours up to `now_ms`.
    pub async fn overview(
        &self,
        integrations: &[String],
        hours: i64,
        now_ms: i64,
    ) -> Result<Overview, sqlx::Error> {
        let first = (now_ms / HOUR_MS - hours + 1) * HOUR_MS;
        let mut out = Overview {
            hours: (0..hours)
                .map(|i| Hour {
                    hour: first + i * HOUR_MS,
                    ..Hour::default()
                })
                .collect(),
            ..Overview::default()
        };
        let scoped = |select: &str, table: &str, tail: &str| {
            let mut sql = Sql::new(format!("{select} FROM {table} WHERE created_at >= "));
            sql.bind(first).push(" AND integration_id");
            in_list(&mut sql, integrations);
            sql.push(tail);
            sql
        };
        for (table, inbound) in [("inbound", true), ("outbox", false)] {
            let sql = scoped(
                &format!("SELECT created_at / {HOUR_MS} AS h, COUNT(*) AS n"),
                table,
                " GROUP BY 1",
            );
            for row in self.fetch_all(&sql).await? {
                let index = int(&row, "h") - first / HOUR_MS;
                if let Some(hour) = usize::try_from(index)
                    .ok()
                    .and_then(|i| out.hours.get_mut(i))
                {
                    if inbound {
                        hour.inbound = int(&row, "n");
                    } else {
                        hour.outbound = int(&row, "n");
                    }
                }
            }
        }
        let sql = scoped(
            "SELECT status, provider_status, COUNT(*) AS n",
            "outbox",
            " GROUP BY status, provider_status",
        );
        for row in self.fetch_all(&sql).await? {
            let status: String = row.try_get("status").unwrap_or_default();
            let provider: Option<String> = row.try_get("provider_status").ok().flatten();
            let n = int(&row, "n");
            let d = &mut out.delivery;
            match (status.as_str(), provider.as_deref()) {
                (_, Some("delivered" | "read")) => d.delivered += n,
                ("failed", _) | (_, Some("failed" | "undelivered")) => d.failed += n,
                ("sent", _) => d.sent += n,
                _ => d.pending += n,
            }
        }
        let sql = scoped(
            "SELECT error_code, COUNT(*) AS n",
            "outbox",
            " AND error_code IS NOT NULL GROUP BY error_code ORDER BY n DESC, error_code LIMIT 5",
        );
        out.top_errors = self
            .fetch_all(&sql)
            .await?
            .iter()
            .map(|row| ErrorCount {
                code: int(row, "error_code"),
                count: int(row, "n"),
            })
            .collect();
        Ok(out)
    }
}
