//! Reading a bot's configuration for an engine: the `bots` row as the API shows it, so engines
//! see exactly the documented fields (write-only secrets excluded) in [`BotConfig::raw`].
use super::BotConfig;
use serde_json::{Map, Value};

impl BotConfig {
    /// A bot (or an inline configuration) in its wire shape. The one place a bot row becomes
    /// engine settings, for the pipeline, the completion API and Studio's execute call alike.
    pub fn from_row(raw: Map<String, Value>) -> Self {
        let text = |key: &str| {
            raw.get(key)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        Self {
            id: text("id"),
            name: text("name"),
            model: text("model"),
            backstory: text("backstory"),
            // An empty `datasetId` is how a client clears it: no dataset.
            dataset_id: raw
                .get("datasetId")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
            raw,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_bot_row_becomes_its_settings_and_an_empty_dataset_is_none() {
        let row = json!({"id": "b1", "name": "Help", "model": "faq", "backstory": "Be kind.",
            "datasetId": "", "lang": "es"});
        let bot = BotConfig::from_row(row.as_object().cloned().unwrap_or_default());
        assert_eq!(
            (bot.id.as_str(), bot.name.as_str(), bot.model.as_str()),
            ("b1", "Help", "faq")
        );
        assert_eq!(bot.backstory, "Be kind.");
        assert_eq!(bot.dataset_id, None);
        assert_eq!(bot.raw.get("lang"), Some(&json!("es")));
        let with = BotConfig::from_row(
            json!({"datasetId": "ds-1"})
                .as_object()
                .cloned()
                .unwrap_or_default(),
        );
        assert_eq!(with.dataset_id.as_deref(), Some("ds-1"));
    }
}
