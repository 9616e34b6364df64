//! The FAQ engine's settings: the bot's `faq` field, every key optional.
//!
//! ```json
//! {"minScore": 0.5, "ambiguityMargin": 0.15, "maxOptions": 3, "candidates": 10,
//!  "triesBeforeEscalation": 3, "negativeRatingsBeforeEscalation": 2, "askBeforeEscalation": false,
//!  "ratings": {"enabled": true, "options": [
//!     {"id": 1, "label": "yes", "comment": false, "isNegative": false},
//!     {"id": 2, "label": "no", "comment": true, "isNegative": true}]},
//!  "forms": {"errorRetries": 3, "allowUserToAbandonForm": true}}
//! ```
//! Names follow Inbenta's connector where it has one (`triesBeforeEscalation`,
//! `negativeRatingsBeforeEscalation`, `maxOptions`, rating options with `comment`/`isNegative`,
//! `errorRetries`, `allowUserToAbandonForm`); zero disables an escalation counter. A rating
//! option's `label` is a label key (`yes`, `no`, ... translated with the bot's `lang`) or literal
//! text.
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct FaqSettings {
    /// Confidence (0..1, how much of the question the message covers) needed to answer.
    pub min_score: f64,
    /// Matches within this much of the best one are offered as a numbered choice.
    pub ambiguity_margin: f64,
    /// Most options in a numbered choice.
    pub max_options: usize,
    /// Records read from the dataset search before ranking.
    pub candidates: i64,
    /// No-result answers in a row before a hand-off (0: never).
    pub tries_before_escalation: u32,
    /// Negative ratings in a row before a hand-off (0: never).
    pub negative_ratings_before_escalation: u32,
    /// Ask "Do you want to start a chat with a human agent?" instead of handing off at once.
    pub ask_before_escalation: bool,
    pub ratings: Ratings,
    pub forms: FormDefaults,
}

impl Default for FaqSettings {
    fn default() -> Self {
        Self {
            min_score: 0.5,
            ambiguity_margin: 0.15,
            max_options: 3,
            candidates: 10,
            tries_before_escalation: 0,
            negative_ratings_before_escalation: 0,
            ask_before_escalation: false,
            ratings: Ratings::default(),
            forms: FormDefaults::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct Ratings {
    pub enabled: bool,
    pub options: Vec<RatingOption>,
}

impl Default for Ratings {
    fn default() -> Self {
        Self {
            enabled: true,
            options: vec![
                RatingOption {
                    id: "1".into(),
                    label: "yes".into(),
                    comment: false,
                    is_negative: false,
                },
                RatingOption {
                    id: "2".into(),
                    label: "no".into(),
                    comment: true,
                    is_negative: true,
                },
            ],
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RatingOption {
    #[serde(deserialize_with = "id_text")]
    pub id: String,
    pub label: String,
    /// Ask the person why after this rating.
    #[serde(default)]
    pub comment: bool,
    /// Counts towards `negativeRatingsBeforeEscalation`.
    #[serde(default)]
    pub is_negative: bool,
}

/// Defaults for forms attached to FAQ entries (an entry's own form settings win).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct FormDefaults {
    pub error_retries: u32,
    pub allow_user_to_abandon_form: bool,
}

impl Default for FormDefaults {
    fn default() -> Self {
        Self {
            error_retries: 3,
            allow_user_to_abandon_form: true,
        }
    }
}

fn id_text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match Value::deserialize(d)? {
        Value::String(s) => Ok(s),
        Value::Number(n) => Ok(n.to_string()),
        _ => Err(serde::de::Error::custom(
            "a rating id must be a string or a number",
        )),
    }
}

impl FaqSettings {
    /// The bot's settings; `null` or absent means all defaults.
    pub fn from_value(value: Option<&Value>) -> Result<Self, String> {
        match value {
            None | Some(Value::Null) => Ok(Self::default()),
            Some(v) => {
                let s: Self =
                    serde_json::from_value(v.clone()).map_err(|e| format!("\"faq\": {e}"))?;
                s.check()?;
                Ok(s)
            }
        }
    }

    fn check(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.min_score) {
            return Err("\"faq.minScore\" must be between 0 and 1".into());
        }
        if !(0.0..=1.0).contains(&self.ambiguity_margin) {
            return Err("\"faq.ambiguityMargin\" must be between 0 and 1".into());
        }
        if !(1..=9).contains(&self.max_options) {
            return Err("\"faq.maxOptions\" must be between 1 and 9".into());
        }
        if !(1..=100).contains(&self.candidates) {
            return Err("\"faq.candidates\" must be between 1 and 100".into());
        }
        if self.ratings.enabled && !(2..=9).contains(&self.ratings.options.len()) {
            return Err("\"faq.ratings.options\" must have 2 to 9 options".into());
        }
        Ok(())
    }
}

/// Checks a bot's `faq` field (used by the management API).
pub fn validate(value: &Value) -> Result<(), String> {
    FaqSettings::from_value(Some(value)).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_and_inbenta_names() {
        assert_eq!(FaqSettings::from_value(None), Ok(FaqSettings::default()));
        let s = FaqSettings::from_value(Some(&json!({"triesBeforeEscalation": 2, "ratings": {"options": [
            {"id": 7, "label": "Great", "isNegative": false}, {"id": "8", "label": "Bad", "comment": true, "isNegative": true}]}})))
        .expect("valid");
        assert_eq!(s.tries_before_escalation, 2);
        assert_eq!(s.ratings.options[0].id, "7");
        assert!(s.ratings.options[1].comment);
    }

    #[test]
    fn bad_settings_are_named() {
        assert!(validate(&json!({"minScore": 2}))
            .unwrap_err()
            .contains("minScore"));
        assert!(validate(&json!({"maxOptions": 0}))
            .unwrap_err()
            .contains("maxOptions"));
        assert!(validate(&json!({"unknownKey": 1}))
            .unwrap_err()
            .contains("unknownKey"));
        assert!(
            validate(&json!({"ratings": {"options": [{"id": 1, "label": "x"}]}}))
                .unwrap_err()
                .contains("ratings.options")
        );
        assert!(validate(&json!("text")).is_err());
    }
}
