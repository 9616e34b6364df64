//! The storage an engine may use, and nothing more: dataset search, a FAQ bot's ratings, a
//! Studio flow's execution record, a webhook bot's sealed secret.
//!
//! Engines name these capabilities, not the database: `store` implements [`EngineStore`] for
//! its `Db`, so no SQL lives in `bot`, and an engine can be tested against any implementation.
//! The conversation itself (history, contact, engine state) is not here: it arrives in the
//! [`super::Turn`], and the pipeline persists the [`super::Reply`].
use async_trait::async_trait;
use serde_json::{Map, Value};

/// A storage failure, as an engine sees it: something to log or to turn into an
/// [`super::EngineError`], never something to inspect.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct StoreError(Box<dyn std::error::Error + Send + Sync>);

impl StoreError {
    pub fn new(err: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self(Box::new(err))
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A record of a dataset.
#[derive(Debug, Clone, PartialEq)]
pub struct DatasetRecord {
    pub id: String,
    pub text: String,
    /// The record's `meta` object, if it has one.
    pub meta: Option<Value>,
}

/// A content rating a FAQ bot was given.
#[derive(Debug, Clone)]
pub struct NewRating<'a> {
    pub id: &'a str,
    pub bot_id: &'a str,
    pub conversation_id: &'a str,
    /// The dataset record that was rated.
    pub record_id: &'a str,
    /// The rating option chosen.
    pub rating_id: &'a str,
    pub negative: bool,
    pub created_at: i64,
}

/// A Studio flow execution as the API shows it (the execution itself lives in engine state).
#[derive(Debug, Clone)]
pub struct FlowExecutionRecord<'a> {
    pub id: &'a str,
    pub bot_id: &'a str,
    pub conversation_id: Option<&'a str>,
    pub contact_address: &'a str,
    pub channel_address: Option<&'a str>,
    /// The trigger event that started it.
    pub trigger: &'a str,
    pub ended: bool,
    /// Why it ended, when it ended with an error.
    pub error: Option<&'a str>,
    /// The widget waiting for a reply, and until when.
    pub current_state: Option<&'a str>,
    pub expires_at: Option<i64>,
    /// `flow.data`.
    pub data: Option<&'a Value>,
    /// The Liquid context.
    pub context: &'a Value,
    pub started_at: i64,
    pub updated_at: i64,
}

/// One transition an execution took.
#[derive(Debug, Clone)]
pub struct FlowStepRecord<'a> {
    pub seq: u32,
    /// The event that caused the transition.
    pub name: &'a str,
    pub transitioned_from: &'a str,
    pub transitioned_to: &'a str,
    pub widget_type: Option<&'a str>,
    /// What the widget produced, if anything.
    pub context: Option<&'a Value>,
    pub error: Option<&'a str>,
    pub at_ms: i64,
}

/// A flow bot as a `run-subflow` widget finds it: its id, its flow (JSON text) and its meta.
#[derive(Debug, Clone, PartialEq)]
pub struct FlowBot {
    pub id: String,
    pub flow: Option<String>,
    pub meta: Option<Value>,
}

#[async_trait]
pub trait EngineStore: Send + Sync {
    /// A dataset as the API shows it (its search settings included), or `None` if it is gone.
    async fn dataset(&self, dataset_id: &str) -> StoreResult<Option<Map<String, Value>>>;

    /// The records of a dataset that best match `query`, most relevant first: at most `limit`,
    /// none scoring below `min_score`.
    async fn search_dataset(
        &self,
        dataset_id: &str,
        query: &str,
        limit: i64,
        min_score: Option<f64>,
    ) -> StoreResult<Vec<DatasetRecord>>;

    /// One record of a dataset, or `None`.
    async fn dataset_record(
        &self,
        dataset_id: &str,
        record_id: &str,
    ) -> StoreResult<Option<DatasetRecord>>;

    /// The first `limit` records of a dataset (by id), for matching misspelled questions that
    /// full-text search cannot find.
    async fn dataset_records(
        &self,
        dataset_id: &str,
        limit: i64,
    ) -> StoreResult<Vec<DatasetRecord>> {
        let _ = (dataset_id, limit);
        Ok(Vec::new())
    }

    async fn record_rating(&self, rating: &NewRating<'_>) -> StoreResult<()>;

    /// Adds the comment asked after a rating.
    async fn record_rating_comment(&self, rating_id: &str, comment: &str) -> StoreResult<()>;

    /// Records an execution's current status and its new steps. Idempotent: a retried turn
    /// records the same steps once, and an ended execution stays ended.
    async fn record_flow_execution(
        &self,
        execution: &FlowExecutionRecord<'_>,
        steps: &[FlowStepRecord<'_>],
    ) -> StoreResult<()>;

    /// Was this execution ended (through the API, or superseded)?
    async fn flow_execution_ended(&self, execution_id: &str) -> StoreResult<bool>;

    /// The id of the contact's active, unexpired execution of this flow, if any.
    async fn active_flow_execution(
        &self,
        bot_id: &str,
        contact_address: &str,
        now_ms: i64,
    ) -> StoreResult<Option<String>>;

    /// Ends the contact's active executions of this flow other than `keep`.
    async fn end_other_flow_executions(
        &self,
        bot_id: &str,
        contact_address: &str,
        keep: &str,
        now_ms: i64,
    ) -> StoreResult<()>;

    /// Flow bots whose id is `flow_sid` or whose `meta` may name it as their Twilio flow SID
    /// (the caller checks `meta.flowSid`), by id.
    async fn flow_bots(&self, flow_sid: &str) -> StoreResult<Vec<FlowBot>> {
        let _ = flow_sid;
        Ok(Vec::new())
    }

    /// The flow bot `bot_id`, if it exists.
    async fn flow_bot(&self, bot_id: &str) -> StoreResult<Option<FlowBot>> {
        let _ = bot_id;
        Ok(None)
    }

    /// A webhook bot's signing secret, sealed as stored (the engine opens it with the cipher).
    async fn sealed_webhook_secret(&self, bot_id: &str) -> StoreResult<Option<String>>;
}
