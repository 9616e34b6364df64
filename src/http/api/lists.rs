//! List requests as ChatBotKit serves them: `take`, `order`, `cursor`, `meta` filters, and
//! `Accept: application/jsonl` streaming every page without holding them all in memory.
use crate::http::error::ApiError;
use crate::store::resource::{ListQuery, Order, Resource};
use crate::store::Db;
use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

/// How a list answer is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Jsonl,
    EventStream,
}

/// Only the first media type of `Accept` counts; `*/*` or none means JSON.
pub fn format(headers: &HeaderMap) -> Result<Format, ApiError> {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(',')
        .next()
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match accept.as_str() {
        "" | "*/*" | "application/json" | "application/*" => Ok(Format::Json),
        "application/jsonl" | "application/x-ndjson" => Ok(Format::Jsonl),
        "text/event-stream" => Ok(Format::EventStream),
        _ => Err(ApiError::bad_request("Unsupported accept header")),
    }
}

/// Parses the query string. `filters` maps query names to columns (comma lists allowed).
pub fn parse_query(raw: Option<&str>, res: &Resource, scope: Option<String>) -> ListQuery {
    let mut q = ListQuery {
        cursor: None,
        order: if res.list_asc {
            Order::Asc
        } else {
            Order::Desc
        },
        take: 100,
        meta: Vec::new(),
        eq: Vec::new(),
        scope,
    };
    let pairs = url::form_urlencoded::parse(raw.unwrap_or("").as_bytes());
    for (key, value) in pairs {
        match key.as_ref() {
            "cursor" if !value.is_empty() => q.cursor = Some(value.into_owned()),
            "order" if value == "asc" => q.order = Order::Asc,
            "order" if value == "desc" => q.order = Order::Desc,
            "take" => {
                if let Ok(n) = value.trim().parse::<i64>() {
                    if n != 0 {
                        q.take = n.clamp(1, 100);
                    }
                }
            }
            k => {
                if let Some(path) = meta_key(k) {
                    let v = match value.as_ref() {
                        "true" => Value::Bool(true),
                        "false" => Value::Bool(false),
                        s => Value::String(s.to_owned()),
                    };
                    q.meta.push((path, v));
                } else if let Some((_, col)) = res.list_filters.iter().find(|(name, _)| *name == k)
                {
                    let values: Vec<String> = value
                        .split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect();
                    if !values.is_empty() {
                        q.eq.push((col, values));
                    }
                }
            }
        }
    }
    q
}

/// `meta.a.b` or `meta[a.b]` / `meta[a][b]` → `["a", "b"]`.
fn meta_key(key: &str) -> Option<Vec<String>> {
    let rest = if let Some(r) = key.strip_prefix("meta.") {
        r.to_owned()
    } else if let Some(r) = key.strip_prefix("meta[") {
        r.replace("][", ".").trim_end_matches(']').to_owned()
    } else {
        return None;
    };
    let parts: Vec<String> = rest.split('.').map(str::to_owned).collect();
    let valid = parts.iter().all(|p| {
        !p.is_empty()
            && p.chars()
                .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
    });
    valid.then_some(parts)
}

/// Answers a list request: one page as JSON, or every page as a stream.
pub async fn respond(
    db: &Db,
    res: &'static Resource,
    query: ListQuery,
    format: Format,
) -> Result<Response, ApiError> {
    if format == Format::Json {
        let items = db.list_resources(res, &query).await?;
        let mut body = Map::new();
        let cursor = items.last().and_then(|i| i.get("id").cloned());
        body.insert(
            "items".into(),
            Value::Array(items.into_iter().map(Value::Object).collect()),
        );
        if let Some(cursor) = cursor {
            body.insert("cursor".into(), cursor);
        }
        return Ok(Json(Value::Object(body)).into_response());
    }
    let stream = stream_items(db.clone(), res, query, format);
    let content_type = match format {
        Format::EventStream => "text/event-stream",
        _ => "application/jsonl",
    };
    let mut response = Response::new(Body::from_stream(stream));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    Ok(response)
}

fn line(format: Format, kind: &str, data: Value) -> String {
    match format {
        Format::EventStream => format!("event: {kind}\ndata: {data}\n\n"),
        _ => format!("{}\n", json!({ "type": kind, "data": data })),
    }
}

/// Pages through the table with the cursor; `take` caps the total streamed. One chunk per page.
fn stream_items(
    db: Db,
    res: &'static Resource,
    query: ListQuery,
    format: Format,
) -> impl futures::Stream<Item = Result<Bytes, std::convert::Infallible>> {
    let remaining = query.take;
    futures::stream::unfold(
        (db, query, remaining, false),
        move |(db, mut q, remaining, done)| async move {
            if done || remaining <= 0 {
                return None;
            }
            q.take = remaining.min(100);
            match db.list_resources(res, &q).await {
                Ok(items) if items.is_empty() => None,
                Ok(items) => {
                    let mut chunk = String::new();
                    let n = items.len() as i64;
                    q.cursor = items
                        .last()
                        .and_then(|i| i.get("id"))
                        .and_then(Value::as_str)
                        .map(str::to_owned);
                    for item in items {
                        chunk.push_str(&line(format, "item", Value::Object(item)));
                    }
                    let done = n < q.take;
                    Some((Ok(Bytes::from(chunk)), (db, q, remaining - n, done)))
                }
                Err(err) => {
                    tracing::error!(error = %err, "list stream failed");
                    let body = ApiError::internal(err).body();
                    Some((
                        Ok(Bytes::from(line(format, "error", body))),
                        (db, q, 0, true),
                    ))
                }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::meta_key;

    #[test]
    fn meta_keys_in_both_styles() {
        assert_eq!(meta_key("meta.env"), Some(vec!["env".to_owned()]));
        assert_eq!(
            meta_key("meta[a.b]"),
            Some(vec!["a".to_owned(), "b".to_owned()])
        );
        assert_eq!(
            meta_key("meta[a][b]"),
            Some(vec!["a".to_owned(), "b".to_owned()])
        );
        assert_eq!(meta_key("meta.a'--"), None);
        assert_eq!(meta_key("other"), None);
    }
}
