//! Dataset records for an LLM prompt: the top matches of the new message in the bot's dataset
//! ([`EngineStore::search_dataset`]), bounded by the dataset's own ChatBotKit settings (`searchMaxRecords`,
//! `searchMinScore`, `searchMaxTokens`, `recordMaxTokens`) and introduced by its
//! `matchInstruction` / `mismatchInstruction` when set.
use super::prompt::{estimate_tokens, truncate_tokens};
use super::{EngineStore, StoreResult};
use serde_json::Value;

/// Records used when the dataset sets no `searchMaxRecords`.
const DEFAULT_RECORDS: i64 = 5;
/// Token budget for all records when the dataset sets no `searchMaxTokens`.
const DEFAULT_TOKENS: usize = 1_000;

/// What retrieval found for one turn, ready for the prompt.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Knowledge {
    /// Record texts, best first, each within the budgets.
    pub records: Vec<String>,
    /// Said before the records (matchInstruction) or instead of them (mismatchInstruction).
    pub instruction: Option<String>,
}

/// Searches `dataset_id` for `query`. A dataset that no longer exists gives no knowledge.
pub async fn retrieve(
    store: &dyn EngineStore,
    dataset_id: &str,
    query: &str,
) -> StoreResult<Knowledge> {
    let Some(dataset) = store.dataset(dataset_id).await? else {
        return Ok(Knowledge::default());
    };
    let int = |key: &str| dataset.get(key).and_then(Value::as_i64).filter(|n| *n > 0);
    let text = |key: &str| {
        dataset
            .get(key)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let limit = int("searchMaxRecords").unwrap_or(DEFAULT_RECORDS).min(50);
    let min_score = dataset.get("searchMinScore").and_then(Value::as_f64);
    let found = store
        .search_dataset(dataset_id, query, limit, min_score)
        .await?;
    let mut budget = int("searchMaxTokens").map_or(DEFAULT_TOKENS, |n| n as usize);
    let per_record = int("recordMaxTokens").map_or(usize::MAX, |n| n as usize);
    let mut records = Vec::new();
    for record in found {
        if budget == 0 {
            break;
        }
        let text = truncate_tokens(record.text.trim(), per_record.min(budget));
        budget = budget.saturating_sub(estimate_tokens(&text));
        if !text.is_empty() {
            records.push(text);
        }
    }
    let instruction = if records.is_empty() {
        text("mismatchInstruction")
    } else {
        text("matchInstruction")
    };
    Ok(Knowledge {
        records,
        instruction,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bot::engine_store::{DatasetRecord, FlowExecutionRecord, FlowStepRecord, NewRating};
    use async_trait::async_trait;
    use serde_json::{json, Map};
    use std::sync::Mutex;

    /// A dataset without a database: its settings, the records any search finds, and the
    /// searches asked for.
    struct OneDataset {
        settings: Option<Map<String, Value>>,
        records: Vec<&'static str>,
        searches: Mutex<Vec<(String, i64, Option<f64>)>>,
    }

    impl OneDataset {
        fn new(settings: Option<Value>, records: Vec<&'static str>) -> Self {
            Self {
                settings: settings.and_then(|s| s.as_object().cloned()),
                records,
                searches: Mutex::default(),
            }
        }
    }

    #[async_trait]
    impl EngineStore for OneDataset {
        async fn dataset(&self, _: &str) -> StoreResult<Option<Map<String, Value>>> {
            Ok(self.settings.clone())
        }
        async fn search_dataset(
            &self,
            _: &str,
            query: &str,
            limit: i64,
            min_score: Option<f64>,
        ) -> StoreResult<Vec<DatasetRecord>> {
            self.searches
                .lock()
                .unwrap()
                .push((query.to_owned(), limit, min_score));
            Ok(self
                .records
                .iter()
                .enumerate()
                .map(|(i, text)| DatasetRecord {
                    id: format!("r{i}"),
                    text: (*text).to_owned(),
                    meta: None,
                })
                .collect())
        }
        async fn dataset_record(&self, _: &str, _: &str) -> StoreResult<Option<DatasetRecord>> {
            Ok(None)
        }
        async fn record_rating(&self, _: &NewRating<'_>) -> StoreResult<()> {
            Ok(())
        }
        async fn record_rating_comment(&self, _: &str, _: &str) -> StoreResult<()> {
            Ok(())
        }
        async fn record_flow_execution(
            &self,
            _: &FlowExecutionRecord<'_>,
            _: &[FlowStepRecord<'_>],
        ) -> StoreResult<()> {
            Ok(())
        }
        async fn flow_execution_ended(&self, _: &str) -> StoreResult<bool> {
            Ok(false)
        }
        async fn active_flow_execution(
            &self,
            _: &str,
            _: &str,
            _: i64,
        ) -> StoreResult<Option<String>> {
            Ok(None)
        }
        async fn end_other_flow_executions(
            &self,
            _: &str,
            _: &str,
            _: &str,
            _: i64,
        ) -> StoreResult<()> {
            Ok(())
        }
        async fn sealed_webhook_secret(&self, _: &str) -> StoreResult<Option<String>> {
            Ok(None)
        }
    }

    #[tokio::test]
    async fn the_datasets_settings_bound_the_search_and_the_records() {
        let store = OneDataset::new(
            Some(
                json!({"searchMaxRecords": 2, "searchMinScore": 0.5, "searchMaxTokens": 5,
                "recordMaxTokens": 3, "matchInstruction": " Use these: ", "mismatchInstruction": "None."}),
            ),
            // 3 tokens (12 characters), then 4 cut to the 2 tokens left of the budget.
            vec!["abcdefghijkl", "mnopqrstuvwxyz", "never reached"],
        );
        let knowledge = retrieve(&store, "ds", "question").await.unwrap();
        assert_eq!(
            store.searches.lock().unwrap().as_slice(),
            [("question".to_owned(), 2, Some(0.5))]
        );
        assert_eq!(knowledge.records, ["abcdefghijkl", "mnopqrs…"]);
        assert_eq!(knowledge.instruction.as_deref(), Some("Use these:"));
    }

    #[tokio::test]
    async fn no_records_give_the_mismatch_instruction_and_defaults_apply() {
        let store = OneDataset::new(Some(json!({"mismatchInstruction": "None."})), vec![]);
        let knowledge = retrieve(&store, "ds", "q").await.unwrap();
        assert_eq!(
            store.searches.lock().unwrap().as_slice(),
            [("q".to_owned(), DEFAULT_RECORDS, None)]
        );
        assert!(knowledge.records.is_empty());
        assert_eq!(knowledge.instruction.as_deref(), Some("None."));
    }

    #[tokio::test]
    async fn a_dataset_that_is_gone_gives_no_knowledge_and_no_search() {
        let store = OneDataset::new(None, vec!["unused"]);
        let knowledge = retrieve(&store, "gone", "q").await.unwrap();
        assert_eq!(knowledge, Knowledge::default());
        assert!(store.searches.lock().unwrap().is_empty());
    }
}
