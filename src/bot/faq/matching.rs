//! What makes FAQ matching forgiving: misspelled words, a dataset's own synonyms, and the
//! records a misspelled question cannot find through full-text search.
//!
//! * **Typos.** Two words match when they are equal, or when they start with the same letter
//!   and are one edit apart (Damerau-Levenshtein: a wrong, missing, extra or swapped letter;
//!   two edits when both words have 9 letters or more): "saterday" is "saturday", "tim" is "time",
//!   "dentl" is "dental". A close match counts for less than an exact one (1 − edits / length),
//!   so a correctly spelled question still wins.
//! * **Synonyms** are per dataset, in the dataset's `meta.synonyms`: `{"parking": ["car park",
//!   "garage"], "insurance": ["coverage"]}`. Each listed word or phrase (matched as whole words,
//!   case and accents ignored) is read as its key, in the message and in the questions alike.
//!   Assumption: synonyms belong to the dataset (they describe its vocabulary), so every bot
//!   over a dataset shares them; a malformed `synonyms` value is ignored.
//! * **Candidates.** Full-text search only finds records sharing a correctly spelled word, so
//!   the first [`MAX_SCANNED`] records of the dataset are scored as well; a larger dataset
//!   still gets its full-text matches beyond those.
use crate::bot::dialogue::normalize;
use crate::bot::EngineStore;
use serde_json::Value;
use std::collections::BTreeSet;

/// Records of a dataset scored besides the full-text search's candidates.
pub const MAX_SCANNED: i64 = 2000;

/// How alike two (normalized, stemmed) words are: 1 when equal, less for a close spelling,
/// 0 when they are different words.
pub fn similarity(a: &str, b: &str) -> f64 {
    if a == b {
        return 1.0;
    }
    let (la, lb) = (a.chars().count(), b.chars().count());
    if la.min(lb) < 3 || a.chars().next() != b.chars().next() {
        return 0.0;
    }
    let allowed = if la.min(lb) >= 9 { 2 } else { 1 };
    let edits = strsim::damerau_levenshtein(a, b);
    if edits > allowed {
        return 0.0;
    }
    1.0 - edits as f64 / la.max(lb) as f64
}

/// How well `message` words match `question` words (0..1): the Dice coefficient, each
/// message word counting with its best [`similarity`] to a question word.
pub fn confidence(message: &BTreeSet<String>, question: &BTreeSet<String>) -> f64 {
    if message.is_empty() || question.is_empty() {
        return 0.0;
    }
    let common: f64 = message.iter().map(|w| best(w, question)).sum();
    (2.0 * common / (message.len() + question.len()) as f64).min(1.0)
}

/// The best similarity of `word` to any of `words`.
pub fn best(word: &str, words: &BTreeSet<String>) -> f64 {
    words
        .iter()
        .map(|w| similarity(word, w))
        .fold(0.0, f64::max)
}

/// A dataset's synonyms: (variant as normalized words, the word it stands for).
#[derive(Debug, Clone, Default)]
pub struct Synonyms {
    /// Longest variants first, so "car park" is replaced before "park".
    pairs: Vec<(Vec<String>, String)>,
}

impl Synonyms {
    /// Reads `meta.synonyms` (`{"word": ["variant", "two words"]}`).
    pub fn from_meta(meta: Option<&Value>) -> Self {
        let Some(Value::Object(map)) = meta.and_then(|m| m.get("synonyms")) else {
            return Self::default();
        };
        let mut pairs = Vec::new();
        for (key, variants) in map {
            let canonical = normalize(key);
            if canonical.is_empty() {
                continue;
            }
            let list: Vec<&str> = match variants {
                Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
                Value::String(one) => vec![one.as_str()],
                _ => Vec::new(),
            };
            for variant in list {
                let words: Vec<String> = normalize(variant)
                    .split(' ')
                    .filter(|w| !w.is_empty())
                    .map(str::to_owned)
                    .collect();
                if !words.is_empty() {
                    pairs.push((words, canonical.clone()));
                }
            }
        }
        pairs.sort_by_key(|p| std::cmp::Reverse(p.0.len()));
        Self { pairs }
    }

    /// `text`, normalized, with every variant replaced by the word it stands for.
    pub fn apply(&self, text: &str) -> String {
        let normalized = normalize(text);
        if self.pairs.is_empty() {
            return normalized;
        }
        let words: Vec<&str> = normalized.split(' ').filter(|w| !w.is_empty()).collect();
        let mut out: Vec<&str> = Vec::with_capacity(words.len());
        let mut i = 0;
        'words: while i < words.len() {
            for (variant, canonical) in &self.pairs {
                let n = variant.len();
                if words.len() - i >= n && words[i..i + n].iter().zip(variant).all(|(a, b)| a == b)
                {
                    out.push(canonical);
                    i += n;
                    continue 'words;
                }
            }
            out.push(words[i]);
            i += 1;
        }
        out.join(" ")
    }
}

/// The synonyms of dataset `dataset_id` (none when it has none or cannot be read).
pub async fn synonyms(store: &dyn EngineStore, dataset_id: &str) -> Synonyms {
    let meta = match store.dataset(dataset_id).await {
        Ok(dataset) => dataset.and_then(|mut d| d.remove("meta")),
        Err(err) => {
            tracing::warn!(error = %err, "reading the dataset's synonyms failed");
            None
        }
    };
    Synonyms::from_meta(meta.as_ref())
}

/// A record read for scoring: (id, text, meta).
pub type Record = (String, String, Option<Value>);

/// The first [`MAX_SCANNED`] records of a dataset, for matching misspelled questions.
pub async fn scan(store: &dyn EngineStore, dataset_id: &str) -> Vec<Record> {
    match store.dataset_records(dataset_id, MAX_SCANNED).await {
        Ok(records) => records
            .into_iter()
            .map(|r| (r.id, r.text, r.meta))
            .collect(),
        Err(err) => {
            tracing::warn!(error = %err, "reading the dataset for typo-tolerant matching failed");
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn set(words: &[&str]) -> BTreeSet<String> {
        words.iter().map(|w| (*w).to_owned()).collect()
    }

    #[test]
    fn close_spellings_match_for_less_than_exact_ones() {
        assert_eq!(similarity("open", "open"), 1.0);
        assert!(similarity("saterday", "saturday") > 0.8);
        assert!(similarity("tim", "time") > 0.7);
        assert!(similarity("dentl", "dental") > 0.8);
        assert_eq!(similarity("u", "you"), 0.0, "too short to guess");
        assert_eq!(similarity("cost", "post"), 0.0, "another first letter");
        assert_eq!(similarity("parking", "banking"), 0.0);
        assert_eq!(
            similarity("insurance", "instance"),
            0.0,
            "two edits, short word"
        );
        assert!(
            similarity("appointment", "apointmnet") > 0.8,
            "two edits, long words"
        );
    }

    #[test]
    fn confidence_tolerates_typos() {
        let question = set(&["time", "open", "saturday"]);
        let typed = set(&["tim", "open", "saterday"]);
        let c = confidence(&typed, &question);
        assert!(c > 0.8 && c < 1.0, "{c}");
        assert_eq!(confidence(&question, &question), 1.0);
        assert_eq!(confidence(&set(&["banana"]), &question), 0.0);
    }

    #[test]
    fn synonyms_replace_whole_words_and_phrases() {
        let s = Synonyms::from_meta(Some(&json!({"synonyms": {
            "parking": ["car park", "garage"], "insurance": "Coverage", "bad": 3}})));
        assert_eq!(s.apply("Is there a CAR PARK?"), "is there a parking");
        assert_eq!(s.apply("garages and garage"), "garages and parking");
        assert_eq!(s.apply("dental coverage"), "dental insurance");
        assert_eq!(
            Synonyms::from_meta(Some(&json!({"synonyms": "x"}))).apply("A car"),
            "a car"
        );
    }
}
