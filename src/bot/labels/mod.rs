//! Translations: every fixed text a bot sends (ratings, yes/no, escalation, queue messages, form
//! prompts) comes from a per-language label file compiled into the binary, chosen by the bot's
//! `lang`, with English as the fallback for a missing language or key.
//!
//! A bot may override labels through its `labels` field, as Inbenta's connector lets an
//! instance override its labels from ExtraInfo. Either a flat object (`{"thanks": "Cheers!"}`,
//! applied whatever the language) or an object per language (`{"es": {"thanks": "¡Genial!"}}`)
//! is accepted; per-language entries win over flat ones. Label texts may contain `$name`
//! placeholders (`$agentName`, `$queuePosition`, `$options`) filled by [`Labels::fill`].
//!
//! Keys ending in `_synonyms` or `_keywords` are comma-separated lists (see [`Labels::list`]).
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::LazyLock;

/// Languages with a label file, in the order they are documented.
pub const LANGUAGES: &[&str] = &["en", "es", "fr", "de", "pt"];

static FILES: LazyLock<HashMap<&'static str, HashMap<String, String>>> = LazyLock::new(|| {
    let sources = [
        ("en", include_str!("en.json")),
        ("es", include_str!("es.json")),
        ("fr", include_str!("fr.json")),
        ("de", include_str!("de.json")),
        ("pt", include_str!("pt.json")),
    ];
    sources
        .into_iter()
        .map(|(lang, text)| {
            // The files are part of the source tree and checked by a unit test; a broken one
            // degrades to the key names rather than taking the process down.
            let map: HashMap<String, String> = serde_json::from_str(text).unwrap_or_default();
            (lang, map)
        })
        .collect()
});

/// The labels of one bot: its language's file, English underneath, its overrides on top.
#[derive(Debug, Clone)]
pub struct Labels {
    lang: String,
    overrides: HashMap<String, String>,
}

impl Default for Labels {
    fn default() -> Self {
        Self::new("en", None)
    }
}

impl Labels {
    /// Labels for `lang` (an ISO 639-1 code; region suffixes such as `es-MX` are ignored) with
    /// the bot's `labels` overrides.
    pub fn new(lang: &str, overrides: Option<&Value>) -> Self {
        let lang = lang.trim().to_ascii_lowercase();
        let lang = lang.split(['-', '_']).next().unwrap_or("en").to_owned();
        let lang = if lang.is_empty() {
            "en".to_owned()
        } else {
            lang
        };
        let mut map = HashMap::new();
        if let Some(Value::Object(obj)) = overrides {
            collect_strings(obj, &mut map);
            if let Some(Value::Object(per_lang)) = obj.get(&lang) {
                collect_strings(per_lang, &mut map);
            }
        }
        Self {
            lang,
            overrides: map,
        }
    }

    /// Labels for a bot from its `lang` and `labels` fields.
    pub fn for_bot(raw: &Map<String, Value>) -> Self {
        let lang = raw.get("lang").and_then(Value::as_str).unwrap_or("en");
        Self::new(lang, raw.get("labels"))
    }

    /// The bot's language code.
    pub fn lang(&self) -> &str {
        &self.lang
    }

    /// The text of `key`: override, then the language's file, then English, then the key.
    pub fn get(&self, key: &str) -> String {
        if let Some(text) = self.overrides.get(key) {
            return text.clone();
        }
        FILES
            .get(self.lang.as_str())
            .and_then(|m| m.get(key))
            .or_else(|| FILES.get("en").and_then(|m| m.get(key)))
            .cloned()
            .unwrap_or_else(|| key.to_owned())
    }

    /// The text of `key` with each `$name` replaced (longest names first, so `$a` cannot eat
    /// part of `$ab`).
    pub fn fill(&self, key: &str, vars: &[(&str, &str)]) -> String {
        let mut text = self.get(key);
        let mut vars: Vec<_> = vars.to_vec();
        vars.sort_by_key(|(name, _)| std::cmp::Reverse(name.len()));
        for (name, value) in vars {
            text = text.replace(&format!("${name}"), value);
        }
        text
    }

    /// A comma-separated label as a list of trimmed, non-empty entries.
    pub fn list(&self, key: &str) -> Vec<String> {
        self.get(key)
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// "1, 2 or 3" for `n` options, in the bot's language.
    pub fn numbers(&self, n: usize) -> String {
        let or = self.get("or");
        match n {
            0 => String::new(),
            1 => "1".to_owned(),
            _ => {
                let head: Vec<String> = (1..n).map(|i| i.to_string()).collect();
                format!("{} {or} {n}", head.join(", "))
            }
        }
    }
}

fn collect_strings(obj: &Map<String, Value>, into: &mut HashMap<String, String>) {
    for (key, value) in obj {
        if let Value::String(text) = value {
            into.insert(key.clone(), text.clone());
        }
    }
}

/// Checks a bot's `labels` field: an object whose values are strings or per-language objects
/// of strings. Returns a message naming the offending key.
pub fn validate_overrides(value: &Value) -> Result<(), String> {
    let Value::Object(obj) = value else {
        return match value {
            Value::Null => Ok(()),
            _ => Err("\"labels\" must be an object of strings".into()),
        };
    };
    for (key, v) in obj {
        match v {
            Value::String(_) => {}
            Value::Object(inner) => {
                if let Some((k, _)) = inner.iter().find(|(_, v)| !v.is_string()) {
                    return Err(format!("\"labels.{key}.{k}\" must be a string"));
                }
            }
            _ => {
                return Err(format!(
                    "\"labels.{key}\" must be a string or an object of strings"
                ))
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_language_file_parses_and_has_every_english_key() {
        let en = FILES.get("en").expect("en");
        assert!(en.len() > 20);
        for lang in LANGUAGES {
            let file = FILES.get(lang).expect(lang);
            for key in en.keys() {
                assert!(file.contains_key(key), "{lang}.json lacks {key}");
            }
            assert_eq!(file.len(), en.len(), "{lang}.json has keys English lacks");
        }
    }

    #[test]
    fn language_then_english_then_key() {
        let es = Labels::new("es-MX", None);
        assert_eq!(es.lang(), "es");
        assert_eq!(es.get("yes"), "Sí");
        let unknown = Labels::new("xx", None);
        assert_eq!(unknown.get("thanks"), "Thanks!");
        assert_eq!(unknown.get("no_such_label"), "no_such_label");
    }

    #[test]
    fn overrides_flat_and_per_language() {
        let labels = Labels::new(
            "es",
            Some(&json!({"thanks": "Cheers", "es": {"yes": "Vale"}, "fr": {"yes": "Ouais"}})),
        );
        assert_eq!(labels.get("thanks"), "Cheers");
        assert_eq!(labels.get("yes"), "Vale");
        assert_eq!(labels.get("no"), "No");
    }

    #[test]
    fn placeholders_are_filled() {
        let labels = Labels::default();
        assert_eq!(
            labels.fill("queue_estimation", &[("queuePosition", "3")]),
            "There are 3 people ahead of you."
        );
        assert_eq!(
            labels.fill("agent_joined", &[("agentName", "Ana")]),
            "Agent Ana has joined the conversation."
        );
        assert_eq!(labels.numbers(3), "1, 2 or 3");
        assert_eq!(Labels::new("es", None).numbers(2), "1 o 2");
    }

    #[test]
    fn overrides_are_validated() {
        assert!(validate_overrides(&json!({"thanks": "x", "es": {"yes": "y"}})).is_ok());
        assert!(validate_overrides(&json!({"thanks": 1}))
            .unwrap_err()
            .contains("labels.thanks"));
        assert!(validate_overrides(&json!({"es": {"yes": 1}}))
            .unwrap_err()
            .contains("labels.es.yes"));
        assert!(validate_overrides(&json!([1])).is_err());
    }
}
