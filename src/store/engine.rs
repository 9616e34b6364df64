//! The storage capabilities bot engines get ([`EngineStore`]), implemented over [`Db`]: each one
//! a store verb from `search`, `faq`, `flows` or the resource schema, errors made opaque.
use super::schema::{BOT, DATASET, DATASET_RECORD};
use super::{faq, flows, search, Db};
use crate::bot::engine_store::{
    DatasetRecord, EngineStore, FlowBot, FlowExecutionRecord, FlowStepRecord, NewRating,
    StoreError, StoreResult,
};
use async_trait::async_trait;
use serde_json::{Map, Value};

fn opaque(err: sqlx::Error) -> StoreError {
    StoreError::new(err)
}

#[async_trait]
impl EngineStore for Db {
    async fn dataset(&self, dataset_id: &str) -> StoreResult<Option<Map<String, Value>>> {
        self.fetch_resource(&DATASET, None, dataset_id)
            .await
            .map_err(opaque)
    }

    async fn search_dataset(
        &self,
        dataset_id: &str,
        query: &str,
        limit: i64,
        min_score: Option<f64>,
    ) -> StoreResult<Vec<DatasetRecord>> {
        let options = search::Options {
            limit,
            min_score,
            ..search::Options::default()
        };
        let found = search::search_with(self, dataset_id, query, &options)
            .await
            .map_err(opaque)?;
        Ok(found
            .into_iter()
            .map(|r| DatasetRecord {
                id: r.id,
                text: r.text,
                meta: r.meta,
            })
            .collect())
    }

    async fn dataset_record(
        &self,
        dataset_id: &str,
        record_id: &str,
    ) -> StoreResult<Option<DatasetRecord>> {
        let row = self
            .fetch_resource(&DATASET_RECORD, Some(dataset_id), record_id)
            .await
            .map_err(opaque)?;
        Ok(row.map(|mut row| DatasetRecord {
            id: record_id.to_owned(),
            text: match row.remove("text") {
                Some(Value::String(text)) => text,
                _ => String::new(),
            },
            meta: row.remove("meta").filter(|m| !m.is_null()),
        }))
    }

    async fn dataset_records(
        &self,
        dataset_id: &str,
        limit: i64,
    ) -> StoreResult<Vec<DatasetRecord>> {
        let sql = super::Sql::new(
            "SELECT id, text, meta FROM dataset_records WHERE dataset_id = $1 ORDER BY id LIMIT $2",
        )
        .arg(dataset_id)
        .arg(limit);
        let rows = self.fetch_all(&sql).await.map_err(opaque)?;
        Ok(rows
            .iter()
            .map(|r| DatasetRecord {
                id: super::channel::text(r, "id"),
                text: super::channel::text(r, "text"),
                meta: super::channel::opt_text(r, "meta")
                    .and_then(|m| serde_json::from_str(&m).ok()),
            })
            .collect())
    }

    async fn flow_bots(&self, flow_sid: &str) -> StoreResult<Vec<FlowBot>> {
        // SIDs are letters and digits; anything else can only be a bot id, matched exactly.
        let like = flow_sid
            .chars()
            .all(|c| c.is_ascii_alphanumeric())
            .then(|| format!("%{flow_sid}%"));
        let mut sql =
            super::Sql::new("SELECT id, flow, meta FROM bots WHERE model = 'flow' AND (id = ");
        sql.bind(flow_sid);
        if let Some(pattern) = like {
            sql.push(" OR meta LIKE ").bind(pattern);
        }
        sql.push(") ORDER BY id");
        let rows = self.fetch_all(&sql).await.map_err(opaque)?;
        Ok(rows.iter().map(flow_bot).collect())
    }

    async fn flow_bot(&self, bot_id: &str) -> StoreResult<Option<FlowBot>> {
        let sql = super::Sql::new("SELECT id, flow, meta FROM bots WHERE id = $1").arg(bot_id);
        let row = self.fetch_optional(&sql).await.map_err(opaque)?;
        Ok(row.as_ref().map(flow_bot))
    }

    async fn record_rating(&self, rating: &NewRating<'_>) -> StoreResult<()> {
        faq::record_rating(self, rating).await.map_err(opaque)
    }

    async fn record_rating_comment(&self, rating_id: &str, comment: &str) -> StoreResult<()> {
        faq::record_comment(self, rating_id, comment)
            .await
            .map_err(opaque)
    }

    async fn record_flow_execution(
        &self,
        execution: &FlowExecutionRecord<'_>,
        steps: &[FlowStepRecord<'_>],
    ) -> StoreResult<()> {
        flows::record(self, execution, steps).await.map_err(opaque)
    }

    async fn flow_execution_ended(&self, execution_id: &str) -> StoreResult<bool> {
        flows::is_ended(self, execution_id).await.map_err(opaque)
    }

    async fn active_flow_execution(
        &self,
        bot_id: &str,
        contact_address: &str,
        now_ms: i64,
    ) -> StoreResult<Option<String>> {
        flows::active_for_contact(self, bot_id, contact_address, now_ms)
            .await
            .map_err(opaque)
    }

    async fn end_other_flow_executions(
        &self,
        bot_id: &str,
        contact_address: &str,
        keep: &str,
        now_ms: i64,
    ) -> StoreResult<()> {
        flows::end_others(self, bot_id, contact_address, keep, now_ms)
            .await
            .map_err(opaque)
    }

    async fn sealed_webhook_secret(&self, bot_id: &str) -> StoreResult<Option<String>> {
        self.column_text(&BOT, bot_id, "webhook_secret")
            .await
            .map_err(opaque)
    }
}

fn flow_bot(row: &sqlx::any::AnyRow) -> FlowBot {
    FlowBot {
        id: super::channel::text(row, "id"),
        flow: super::channel::opt_text(row, "flow"),
        meta: super::channel::opt_text(row, "meta").and_then(|m| serde_json::from_str(&m).ok()),
    }
}
