//! What happened to an outgoing message, shown where API users look: each message read through
//! the API carries `meta.delivery` built from its outbox rows (channel, the provider's message
//! id, the latest status, the provider's error code, the segment count, and each part), so an
//! SDK user can see the fate of a reply without reading logs. It is assembled at read time, so
//! status callbacks on the hot path write nothing more.
use super::channel::{int, opt_text, text};
use super::{Db, Sql};
use crate::domain::delivery::MessageStatus;
use serde_json::{json, Map, Value};
use std::collections::HashMap;

impl Db {
    /// Adds `meta.delivery` to every message of `items` that has outbox rows.
    pub async fn attach_delivery(
        &self,
        items: &mut [Map<String, Value>],
    ) -> Result<(), sqlx::Error> {
        let ids: Vec<&str> = items
            .iter()
            .filter_map(|m| m.get("id").and_then(Value::as_str))
            .collect();
        if ids.is_empty() {
            return Ok(());
        }
        let mut sql = Sql::new(
            "SELECT message_id, channel, part, status, provider_sid, provider_status, error_code, \
             error_message, segments FROM outbox WHERE message_id IN ",
        );
        sql.in_list(ids.iter().copied())
            .push(" ORDER BY message_id, part");
        let mut parts: HashMap<String, Vec<Value>> = HashMap::new();
        for row in self.fetch_all(&sql).await? {
            let code = row.try_get_unchecked_code();
            parts
                .entry(text(&row, "message_id"))
                .or_default()
                .push(json!({
                    "channel": text(&row, "channel"),
                    "messageSid": opt_text(&row, "provider_sid"),
                    "status": part_status(&text(&row, "status"), opt_text(&row, "provider_status")),
                    "errorCode": code,
                    "errorMessage": opt_text(&row, "error_message"),
                    "segments": int(&row, "segments"),
                }));
        }
        for item in items.iter_mut() {
            let Some(id) = item.get("id").and_then(Value::as_str) else {
                continue;
            };
            let Some(parts) = parts.remove(id) else {
                continue;
            };
            let delivery = summary(parts);
            let meta = item
                .entry("meta")
                .or_insert_with(|| Value::Object(Map::new()));
            if !meta.is_object() {
                *meta = Value::Object(Map::new());
            }
            if let Some(meta) = meta.as_object_mut() {
                meta.insert("delivery".into(), delivery);
            }
        }
        Ok(())
    }
}

/// A part's status: the provider's, once it answered; before that the outbox's own
/// (`pending` waits to be sent, `sending` is in flight, `failed` was given up).
fn part_status(outbox: &str, provider: Option<String>) -> String {
    match (outbox, provider) {
        ("failed", _) => "failed".to_owned(),
        (_, Some(p)) => p,
        (o, None) => o.to_owned(),
    }
}

/// The message as a whole: the first part's channel and id, the least advanced status (a
/// failure of any part wins), the first error, the total segments, and every part.
fn summary(parts: Vec<Value>) -> Value {
    let str_of = |p: &Value, k: &str| p.get(k).and_then(Value::as_str).map(str::to_owned);
    let rank = |s: &str| match s.parse::<MessageStatus>() {
        Ok(st) if st.is_failure() => 100,
        Ok(st) => i32::from(st.rank()),
        Err(_) if s == "failed" => 100,
        Err(_) => -1,
    };
    let failed = parts
        .iter()
        .filter_map(|p| str_of(p, "status"))
        .find(|s| rank(s) == 100);
    let status = failed.or_else(|| {
        parts
            .iter()
            .filter_map(|p| str_of(p, "status"))
            .min_by_key(|s| rank(s))
    });
    let first = parts.first().cloned().unwrap_or(Value::Null);
    json!({
        "channel": first.get("channel"),
        "messageSid": first.get("messageSid"),
        "status": status,
        "errorCode": parts.iter().find_map(|p| p.get("errorCode").filter(|c| !c.is_null())),
        "segments": parts.iter().filter_map(|p| p.get("segments").and_then(Value::as_i64)).sum::<i64>(),
        "parts": parts,
    })
}

/// Reads the nullable error code column.
trait ErrorCode {
    fn try_get_unchecked_code(&self) -> Option<i64>;
}

impl ErrorCode for sqlx::any::AnyRow {
    fn try_get_unchecked_code(&self) -> Option<i64> {
        sqlx::Row::try_get::<Option<i64>, _>(self, "error_code")
            .ok()
            .flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_part_makes_the_message_failed_and_segments_add_up() {
        let parts = vec![
            json!({"channel": "twilio", "messageSid": "SM1", "status": "delivered", "errorCode": null, "segments": 2}),
            json!({"channel": "twilio", "messageSid": "SM2", "status": "undelivered", "errorCode": 30003, "segments": 1}),
        ];
        let s = summary(parts);
        assert_eq!(s["status"], "undelivered");
        assert_eq!(s["errorCode"], 30003);
        assert_eq!(s["segments"], 3);
        assert_eq!(s["messageSid"], "SM1");
    }

    #[test]
    fn the_least_advanced_part_is_the_message_status() {
        let parts = vec![
            json!({"status": "delivered", "segments": 1}),
            json!({"status": "sent", "segments": 1}),
        ];
        assert_eq!(summary(parts)["status"], "sent");
        assert_eq!(part_status("pending", None), "pending");
        assert_eq!(part_status("sent", Some("delivered".into())), "delivered");
        assert_eq!(part_status("failed", Some("queued".into())), "failed");
    }
}
