//! Full-text search over a dataset's records, ranked by the database itself.
//!
//! SQLite ranks with FTS5 (`dataset_records_fts`, kept in step by triggers; score = -bm25) and
//! PostgreSQL with the generated `tsv` column (`ts_rank`). The two scales differ, so a score
//! only orders results of one backend; higher is always more relevant. User text never reaches
//! the FTS query language as is: [`terms`] reduces it to content words (English stop words
//! dropped on both backends, as PostgreSQL's `english` configuration drops them), which are
//! OR-ed, so no input can cause a syntax error and a record matching any word is a candidate.
//!
//! [`search`] finds the best matches; [`search_with`] adds a minimum score and a meta filter, for
//! the bot engines (through `bot::EngineStore`) and the management API's
//! `POST /dataset/{id}/search`.
use super::{Backend, Db, Sql};
use serde::Serialize;
use serde_json::{Map, Value};
use sqlx::Row;

/// Most words taken from one query; the rest are ignored.
const MAX_TERMS: usize = 32;
/// Longest word kept, in characters.
const MAX_TERM_CHARS: usize = 64;
/// Most candidates read while a filter or minimum score thins them out.
const MAX_SCANNED: i64 = 5_000;

/// One record found by a search.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scored {
    pub id: String,
    pub text: String,
    pub source: Option<String>,
    pub meta: Option<Value>,
    /// Relevance; higher is better. Comparable only within one backend.
    pub score: f64,
}

/// English stop words (Snowball's list, which PostgreSQL's `english` configuration drops too),
/// left out on both backends so that a question ranks by its content words alike.
#[rustfmt::skip]
const STOP_WORDS: &[&str] = &[
    "a", "about", "above", "after", "again", "against", "all", "am", "an", "and", "any", "are",
    "as", "at", "be", "because", "been", "before", "being", "below", "between", "both", "but", "by",
    "can", "did", "do", "does", "doing", "don", "down", "during", "each", "few", "for", "from",
    "further", "had", "has", "have", "having", "he", "her", "here", "hers", "herself", "him",
    "himself", "his", "how", "i", "if", "in", "into", "is", "it", "its", "itself", "just", "me",
    "more", "most", "my", "myself", "no", "nor", "not", "now", "of", "off", "on", "once", "only",
    "or", "other", "our", "ours", "ourselves", "out", "over", "own", "s", "same", "she", "should",
    "so", "some", "such", "t", "than", "that", "the", "their", "theirs", "them", "themselves",
    "then", "there", "these", "they", "this", "those", "through", "to", "too", "under", "until",
    "up", "very", "was", "we", "were", "what", "when", "where", "which", "while", "who", "whom",
    "why", "will", "with", "you", "your", "yours", "yourself", "yourselves",
];

/// Lowercased content words of `query` (runs of letters and digits, stop words left out),
/// deduplicated, in order of appearance.
pub fn terms(query: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for word in query.split(|c: char| !c.is_alphanumeric()) {
        if word.is_empty() {
            continue;
        }
        let word: String = word
            .chars()
            .take(MAX_TERM_CHARS)
            .collect::<String>()
            .to_lowercase();
        if STOP_WORDS.contains(&word.as_str()) {
            continue;
        }
        if !out.contains(&word) {
            out.push(word);
        }
        if out.len() == MAX_TERMS {
            break;
        }
    }
    out
}

/// The records of `dataset_id` that best match `query`, most relevant first, at most `limit`.
///
/// A query without any word (empty, punctuation only) finds nothing.
pub async fn search(
    db: &Db,
    dataset_id: &str,
    query: &str,
    limit: i64,
) -> Result<Vec<Scored>, sqlx::Error> {
    let options = Options {
        limit,
        ..Options::default()
    };
    search_with(db, dataset_id, query, &options).await
}

/// How [`search_with`] narrows its results.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Most records returned.
    pub limit: i64,
    /// Records scoring below this are left out.
    pub min_score: Option<f64>,
    /// Conditions on each record's `meta`, ANDed.
    pub filter: MetaFilter,
}

/// [`search`] with a minimum score and a meta filter. Candidates are read in relevance order, a
/// page at a time, until `limit` of them pass (at most [`MAX_SCANNED`] are looked at).
pub async fn search_with(
    db: &Db,
    dataset_id: &str,
    query: &str,
    options: &Options,
) -> Result<Vec<Scored>, sqlx::Error> {
    let words = terms(query);
    let limit = options.limit.max(0);
    if words.is_empty() || limit == 0 {
        return Ok(Vec::new());
    }
    let page = if options.filter.is_empty() {
        limit
    } else {
        (limit * 4).clamp(50, 500)
    };
    let mut found = Vec::new();
    let mut offset = 0;
    while offset < MAX_SCANNED {
        let rows = db
            .fetch_all(&page_sql(db.backend, &words, dataset_id, page, offset))
            .await?;
        let exhausted = (rows.len() as i64) < page;
        offset += page;
        for row in rows {
            let record = Scored {
                id: row.try_get(0)?,
                text: row.try_get(1)?,
                source: row.try_get(2)?,
                meta: row
                    .try_get::<Option<String>, _>(3)?
                    .and_then(|s| serde_json::from_str(&s).ok()),
                score: row.try_get(4)?,
            };
            // Rows come best first, so the first one under the minimum ends the search.
            if options.min_score.is_some_and(|min| record.score < min) {
                return Ok(found);
            }
            if options.filter.matches(record.meta.as_ref()) {
                found.push(record);
                if found.len() as i64 == limit {
                    return Ok(found);
                }
            }
        }
        if exhausted {
            break;
        }
    }
    Ok(found)
}

/// One page of candidates: (id, text, source, meta, score), best first, ties by id.
fn page_sql(backend: Backend, words: &[String], dataset_id: &str, take: i64, skip: i64) -> Sql {
    let mut sql = match backend {
        Backend::Sqlite => {
            // Each word is a quoted FTS5 string (it holds no quote), so it is matched as text
            // and still stemmed by the table's porter tokenizer.
            let query = words
                .iter()
                .map(|w| format!("\"{w}\""))
                .collect::<Vec<_>>()
                .join(" OR ");
            let mut sql = Sql::new(
                "SELECT r.id, r.text, r.source, r.meta, -bm25(dataset_records_fts) AS score \
                 FROM dataset_records_fts JOIN dataset_records r ON r.rid = dataset_records_fts.rowid \
                 WHERE dataset_records_fts MATCH ",
            );
            sql.bind(query)
                .push(" AND r.dataset_id = ")
                .bind(dataset_id);
            sql.push(" ORDER BY score DESC, r.id ASC");
            sql
        }
        Backend::Postgres => {
            // Words are letters and digits only, so `a | b` is always a valid tsquery; English
            // stop words drop out of it (a query of stop words only matches nothing).
            let query = words.join(" | ");
            let mut sql = Sql::new(
                "SELECT id, text, source, meta, CAST(ts_rank(tsv, q) AS DOUBLE PRECISION) AS score \
                 FROM dataset_records, to_tsquery('english', ",
            );
            sql.bind(query)
                .push(") AS q WHERE tsv @@ q AND dataset_id = ")
                .bind(dataset_id);
            sql.push(" ORDER BY score DESC, id ASC");
            sql
        }
    };
    sql.push(" LIMIT ").bind(take).push(" OFFSET ").bind(skip);
    sql
}

/// One condition of a filter, as in ChatBotKit's dataset filter: a scalar means `$eq`.
#[derive(Debug, Clone, PartialEq)]
pub enum Cond {
    Eq(Value),
    Ne(Value),
    Gt(f64),
    Gte(f64),
    Lt(f64),
    Lte(f64),
}

/// Conditions on record `meta`, keyed by a dotted path (`category`, `meta.category` or
/// `a.b`), all of which must hold.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetaFilter(pub Vec<(Vec<String>, Cond)>);

impl MetaFilter {
    /// Parses `{"key": scalar | {"$eq"|"$ne": scalar} | {"$gt"|"$gte"|"$lt"|"$lte": number}}`;
    /// the error names the offending key.
    pub fn parse(filter: &Map<String, Value>) -> Result<Self, String> {
        let mut conds = Vec::new();
        for (key, value) in filter {
            let path: Vec<String> = key
                .strip_prefix("meta.")
                .unwrap_or(key)
                .split('.')
                .map(str::to_owned)
                .collect();
            if path.iter().any(String::is_empty) {
                return Err(format!("\"filter.{key}\" is not a valid key"));
            }
            let cond = match value {
                Value::String(_) | Value::Number(_) | Value::Bool(_) => Cond::Eq(value.clone()),
                Value::Object(op) if op.len() == 1 => {
                    let (name, operand) = op
                        .iter()
                        .next()
                        .ok_or_else(|| format!("\"filter.{key}\" is empty"))?;
                    let scalar = || match operand {
                        Value::String(_) | Value::Number(_) | Value::Bool(_) => Ok(operand.clone()),
                        _ => Err(format!(
                            "\"filter.{key}.{name}\" must be a string, number or boolean"
                        )),
                    };
                    let number = || {
                        operand
                            .as_f64()
                            .ok_or_else(|| format!("\"filter.{key}.{name}\" must be a number"))
                    };
                    match name.as_str() {
                        "$eq" => Cond::Eq(scalar()?),
                        "$ne" => Cond::Ne(scalar()?),
                        "$gt" => Cond::Gt(number()?),
                        "$gte" => Cond::Gte(number()?),
                        "$lt" => Cond::Lt(number()?),
                        "$lte" => Cond::Lte(number()?),
                        _ => return Err(format!("\"filter.{key}.{name}\" is not allowed")),
                    }
                }
                _ => {
                    return Err(format!(
                        "\"filter.{key}\" must be a scalar or one operator object"
                    ))
                }
            };
            conds.push((path, cond));
        }
        Ok(Self(conds))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether a record's meta satisfies every condition. A missing key fails every condition
    /// except `$ne`.
    pub fn matches(&self, meta: Option<&Value>) -> bool {
        self.0.iter().all(|(path, cond)| {
            let value = meta.and_then(|m| path.iter().try_fold(m, |v, key| v.get(key)));
            let number = value.and_then(Value::as_f64);
            match cond {
                Cond::Eq(expected) => value.is_some_and(|v| same(v, expected)),
                Cond::Ne(expected) => !value.is_some_and(|v| same(v, expected)),
                Cond::Gt(n) => number.is_some_and(|v| v > *n),
                Cond::Gte(n) => number.is_some_and(|v| v >= *n),
                Cond::Lt(n) => number.is_some_and(|v| v < *n),
                Cond::Lte(n) => number.is_some_and(|v| v <= *n),
            }
        })
    }
}

/// JSON equality where `1` equals `1.0`.
fn same(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn terms_keep_only_words() {
        assert_eq!(
            terms("Reset my PASSWORD? \"kiwi\" OR NOT (x*) kiwi"),
            ["reset", "password", "kiwi", "x"]
        );
        assert!(terms("\"*^():-").is_empty());
        assert_eq!(terms("café café"), ["café"]);
    }

    #[test]
    fn filter_parses_operators_and_matches() {
        let filter = json!({"lang": "en", "meta.rank": {"$gte": 2}, "tier": {"$ne": "gold"}});
        let filter = MetaFilter::parse(filter.as_object().expect("object")).expect("valid filter");
        assert!(filter.matches(Some(&json!({"lang": "en", "rank": 2}))));
        assert!(!filter.matches(Some(&json!({"lang": "en", "rank": 1}))));
        assert!(!filter.matches(Some(&json!({"lang": "en", "rank": 3, "tier": "gold"}))));
        assert!(!filter.matches(None));
    }

    #[test]
    fn filter_rejects_bad_shapes() {
        for bad in [
            json!({"a": {"$gt": "x"}}),
            json!({"a": {"$foo": 1}}),
            json!({"a": [1]}),
            json!({"a": {"$eq": 1, "$ne": 2}}),
        ] {
            assert!(
                MetaFilter::parse(bad.as_object().expect("object")).is_err(),
                "{bad}"
            );
        }
    }
}
