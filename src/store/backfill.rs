//! Where each integration's inbound backfill resumes, and which listed messages are already
//! stored (see `pipeline::backfill`).
use super::channel::{int, text};
use super::{Db, Sql};
use std::collections::HashSet;

/// Most message ids compared in one query.
const CHUNK: usize = 500;

impl Db {
    /// Starts backfilling `integration_id` from `at_ms`, unless it already backfills (a second
    /// `setup` keeps the older starting point).
    pub async fn start_backfill(
        &self,
        integration_id: &str,
        at_ms: i64,
    ) -> Result<(), sqlx::Error> {
        let sql = Sql::new(
            "INSERT INTO inbound_backfill (integration_id, since_ms) VALUES ($1, $2) \
             ON CONFLICT (integration_id) DO NOTHING",
        )
        .arg(integration_id)
        .arg(at_ms);
        self.exec(&sql).await.map(|_| ())
    }

    /// Every integration that backfills, with where it resumes.
    pub async fn backfill_marks(&self) -> Result<Vec<(String, i64)>, sqlx::Error> {
        let sql = Sql::new(
            "SELECT b.integration_id, b.since_ms FROM inbound_backfill b \
             JOIN twilio_integrations t ON t.id = b.integration_id ORDER BY b.integration_id",
        );
        let rows = self.fetch_all(&sql).await?;
        Ok(rows
            .iter()
            .map(|r| (text(r, "integration_id"), int(r, "since_ms")))
            .collect())
    }

    /// Moves an integration's resume point forward to `to_ms` (never back).
    pub async fn advance_backfill(
        &self,
        integration_id: &str,
        to_ms: i64,
    ) -> Result<(), sqlx::Error> {
        let sql = Sql::new(
            "UPDATE inbound_backfill SET since_ms = $1 WHERE integration_id = $2 AND since_ms < $1",
        )
        .arg(to_ms)
        .arg(integration_id);
        self.exec(&sql).await.map(|_| ())
    }

    /// Which of `sids` are already stored for `integration_id`.
    pub async fn stored_inbound(
        &self,
        integration_id: &str,
        sids: &[String],
    ) -> Result<HashSet<String>, sqlx::Error> {
        let mut stored = HashSet::new();
        for chunk in sids.chunks(CHUNK) {
            let mut sql = Sql::new("SELECT message_sid FROM inbound WHERE integration_id = ");
            sql.bind(integration_id);
            sql.push(" AND message_sid IN ")
                .in_list(chunk.iter().map(String::as_str));
            for row in self.fetch_all(&sql).await? {
                stored.insert(text(&row, "message_sid"));
            }
        }
        Ok(stored)
    }
}
