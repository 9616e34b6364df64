//! Dataset records for an LLM prompt: the top matches of the new message in the bot's dataset
//! (`store::search`), bounded by the dataset's own ChatBotKit settings (`searchMaxRecords`,
//! `searchMinScore`, `searchMaxTokens`, `recordMaxTokens`) and introduced by its
//! `matchInstruction` / `mismatchInstruction` when set.
use super::prompt::{estimate_tokens, truncate_tokens};
use crate::http::api::resources::DATASET;
use crate::store::search::{self, Options};
use crate::store::Db;
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
pub async fn retrieve(db: &Db, dataset_id: &str, query: &str) -> Result<Knowledge, sqlx::Error> {
    let Some(dataset) = db.fetch_resource(&DATASET, None, dataset_id).await? else {
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
    let options = Options {
        limit: int("searchMaxRecords").unwrap_or(DEFAULT_RECORDS).min(50),
        min_score: dataset.get("searchMinScore").and_then(Value::as_f64),
        ..Options::default()
    };
    let found = search::search_with(db, dataset_id, query, &options).await?;
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
