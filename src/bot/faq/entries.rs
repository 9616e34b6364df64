//! FAQ entries read from dataset records, and how well a message matches one.
//!
//! Record convention (documented for dataset authors):
//! * `text` is `Q: <question>` and `A: <answer>` on their own lines (`Question:`/`Answer:` and
//!   any case work too; the answer may span several lines), **or**
//! * `meta` has `question` and `answer` (then `text` is only what search indexes, so repeating
//!   the question and answer there is what makes the record findable).
//! * Optional `meta` keys: `related` (ids of records offered as related contents after the
//!   answer), `form` (a form asked after the answer, see `dialogue::FormSpec`, plus an optional
//!   `webhook` URL the answers are POSTed to), `escalate: true` (answering it hands the
//!   conversation to a human, Inbenta's `directCall: escalationStart`).
//! * A record without a recognisable question is matched on its whole text and answered with it.
//!
//! The dataset's full-text search finds candidates; the confidence used for the threshold is
//! this module's own: the share of meaningful words the message and the question have in
//! common (Dice coefficient over lowercased, accent-folded, lightly stemmed words without
//! stop words, a misspelled word counting for a little less; see `matching.rs`). It is on a
//! 0..1 scale whatever the database backend, so one `minScore` works on SQLite and PostgreSQL
//! alike.
use super::settings::FormDefaults;
use crate::bot::dialogue::{normalize, FormSpec};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeSet;

/// A question and its answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub id: String,
    pub question: String,
    pub answer: String,
    #[serde(default)]
    pub related: Vec<String>,
    #[serde(default)]
    pub form: Option<EntryForm>,
    #[serde(default)]
    pub escalate: bool,
}

/// A form attached to an entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntryForm {
    #[serde(flatten)]
    pub spec: FormSpec,
    #[serde(default)]
    pub webhook: Option<String>,
}

impl Entry {
    /// Reads a dataset record (`text`, `meta`); a form without its own `errorRetries` or
    /// `allowUserToAbandonForm` takes the bot's defaults.
    pub fn from_record(
        id: &str,
        text: &str,
        meta: Option<&Value>,
        defaults: &FormDefaults,
    ) -> Self {
        let meta_str = |k: &str| {
            meta.and_then(|m| m.get(k))
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
        };
        let (question, answer) = match (meta_str("question"), meta_str("answer")) {
            (Some(q), Some(a)) => (q.to_owned(), a.to_owned()),
            _ => split_qa(text).unwrap_or_else(|| (text.trim().to_owned(), text.trim().to_owned())),
        };
        let related = meta
            .and_then(|m| m.get("related"))
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        let form = meta.and_then(|m| m.get("form")).and_then(|f| {
            let mut f = f.clone();
            if let Value::Object(map) = &mut f {
                map.entry("errorRetries")
                    .or_insert(Value::from(defaults.error_retries));
                map.entry("allowUserToAbandonForm")
                    .or_insert(Value::Bool(defaults.allow_user_to_abandon_form));
            }
            // A malformed form is ignored rather than breaking the answer it is attached to.
            serde_json::from_value::<EntryForm>(f)
                .ok()
                .filter(|f| f.spec.validate().is_ok())
        });
        let escalate = meta
            .and_then(|m| m.get("escalate"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        Self {
            id: id.to_owned(),
            question,
            answer,
            related,
            form,
            escalate,
        }
    }
}

/// `Q: ...` / `A: ...` (either order of lines before them is ignored).
fn split_qa(text: &str) -> Option<(String, String)> {
    let mut question: Option<String> = None;
    let mut answer: Option<String> = None;
    for line in text.lines() {
        let trimmed = line.trim();
        if let Some(q) = strip_label(trimmed, &["q:", "question:"]) {
            question = Some(q.to_owned());
        } else if let Some(a) = strip_label(trimmed, &["a:", "answer:"]) {
            answer = Some(a.to_owned());
        } else if let Some(a) = answer.as_mut() {
            a.push('\n');
            a.push_str(line);
        }
    }
    let (q, a) = (question?, answer?);
    let a = a.trim().to_owned();
    (!q.trim().is_empty() && !a.is_empty()).then(|| (q.trim().to_owned(), a))
}

fn strip_label<'a>(line: &'a str, labels: &[&str]) -> Option<&'a str> {
    labels.iter().find_map(|l| {
        let head = line.get(..l.len())?;
        head.eq_ignore_ascii_case(l).then(|| line[l.len()..].trim())
    })
}

const STOP_WORDS: &[&str] = &[
    // English
    "a", "an", "the", "is", "are", "was", "were", "be", "do", "does", "did", "i", "you", "your",
    "we", "our", "my", "me", "it", "its", "to", "of", "in", "on", "at", "for", "and", "or", "what",
    "how", "can", "could", "there", "this", "that", "with", "have", "has", "please", "hi", "hello",
    "tell", "about", "will", "would", "should", "any", "if",
    // Spanish, Portuguese, French
    "el", "la", "los", "las", "un", "una", "de", "del", "en", "y", "o", "que", "es", "son", "por",
    "para", "con", "mi", "su", "se", "lo", "como", "cual", "hola", "o", "os", "as", "do", "da",
    "um", "uma", "e", "le", "les", "des", "et", "est", "je", "vous", "quel", "quelle",
    // Text-message spellings of the English ones
    "u", "ur", "r", "wat", "wht", "whats", "pls", "plz", "thx",
];

/// Meaningful words: normalized, stop words dropped, plurals and verb endings trimmed.
pub fn words(text: &str) -> BTreeSet<String> {
    normalize(text)
        .split(' ')
        .filter(|w| !w.is_empty() && !STOP_WORDS.contains(w))
        .map(stem)
        .collect()
}

fn stem(word: &str) -> String {
    let w = word.trim_matches('\'');
    for suffix in ["ing", "ed", "es", "s"] {
        if w.len() > suffix.len() + 3 {
            if let Some(root) = w.strip_suffix(suffix) {
                return root.to_owned();
            }
        }
    }
    w.to_owned()
}

/// How well `message` matches `entry` (0..1): words in common over words in both, close
/// spellings counting for a little less.
pub fn confidence(message: &BTreeSet<String>, entry: &Entry) -> f64 {
    super::matching::confidence(message, &words(&entry.question))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn d() -> FormDefaults {
        FormDefaults::default()
    }

    #[test]
    fn records_follow_the_q_a_convention() {
        let e = Entry::from_record(
            "r1",
            "Q: What are your opening hours?\nA: 9 to 5.\nClosed on Sundays.",
            None,
            &d(),
        );
        assert_eq!(e.question, "What are your opening hours?");
        assert_eq!(e.answer, "9 to 5.\nClosed on Sundays.");
        let e = Entry::from_record("r2", "question: Parking?\nANSWER: Free.", None, &d());
        assert_eq!(
            (e.question.as_str(), e.answer.as_str()),
            ("Parking?", "Free.")
        );
    }

    #[test]
    fn meta_question_and_answer_win() {
        let meta = json!({"question": "Prices?", "answer": "From $5.", "related": ["r9"], "escalate": true,
            "form": {"fields": [{"name": "email", "question": "Email?", "type": "email"}], "webhook": "https://example.com/h"}});
        let e = Entry::from_record(
            "r3",
            "prices cost fee",
            Some(&meta),
            &FormDefaults {
                error_retries: 2,
                allow_user_to_abandon_form: false,
            },
        );
        assert_eq!(
            (e.question.as_str(), e.answer.as_str()),
            ("Prices?", "From $5.")
        );
        assert_eq!(e.related, vec!["r9"]);
        assert!(e.escalate);
        let form = e.form.expect("form");
        assert_eq!(form.webhook.as_deref(), Some("https://example.com/h"));
        assert_eq!(form.spec.error_retries, 2);
        assert!(!form.spec.allow_user_to_abandon_form);
    }

    #[test]
    fn plain_records_answer_with_their_text() {
        let e = Entry::from_record("r4", "  We ship worldwide. ", None, &d());
        assert_eq!(e.question, "We ship worldwide.");
        assert_eq!(e.answer, "We ship worldwide.");
    }

    #[test]
    fn confidence_ignores_stop_words_case_and_plurals() {
        let e = Entry::from_record("r", "Q: What are your opening hours?\nA: 9-5", None, &d());
        assert_eq!(confidence(&words("opening hours"), &e), 1.0);
        assert_eq!(confidence(&words("OPENING HOUR?"), &e), 1.0);
        let partial = confidence(&words("when do you open"), &e);
        assert!(partial > 0.3 && partial < 0.8, "{partial}");
        assert_eq!(confidence(&words("banana"), &e), 0.0);
        assert_eq!(confidence(&words("the a of"), &e), 0.0);
    }
}
