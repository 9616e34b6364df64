//! Reading a bot's configuration for an engine: the `bots` row as the API shows it, so engines
//! see exactly the documented fields (write-only secrets excluded) in [`BotConfig::raw`].
use super::BotConfig;
use crate::http::api::resources::BOT;
use crate::store::Db;
use serde_json::{Map, Value};

/// The bot whose id or alias is `key`, or `None`.
pub async fn load_bot(db: &Db, key: &str) -> Result<Option<BotConfig>, sqlx::Error> {
    let Some(id) = db.resolve_id(&BOT, None, key).await? else {
        return Ok(None);
    };
    Ok(db.fetch_resource(&BOT, None, &id).await?.map(from_wire))
}

/// A [`BotConfig`] from a bot (or an inline configuration) in its wire shape.
pub fn from_wire(raw: Map<String, Value>) -> BotConfig {
    let text = |key: &str| {
        raw.get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    BotConfig {
        id: text("id"),
        name: text("name"),
        model: text("model"),
        backstory: text("backstory"),
        dataset_id: raw
            .get("datasetId")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned),
        raw,
    }
}
