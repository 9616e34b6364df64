//! A sender number's send rate, kept in the database so that every replica books its sends
//! from one schedule: two replicas sending from one Twilio number together keep the number's
//! rate, where a limiter in each process let each of them send at the full rate.
//!
//! The schedule is one row per number: its next free slot and the interval between slots. A
//! booking takes the next slots in one statement (an upsert, so concurrent replicas queue on
//! the row instead of racing), but only slots within the caller's horizon: a send that would
//! wait longer is told when to come back and books nothing, so a backlog never reserves slots
//! that its rescheduled rows then leave unused.
use super::channel::int;
use super::{Backend, Sql};
use sqlx::AnyPool;
use std::collections::HashMap;

/// One send asking for its number's next slot.
#[derive(Debug, Clone)]
pub struct SlotRequest {
    pub sender: String,
    /// Time between two sends of this number, in microseconds (at least 1).
    pub interval_us: i64,
    /// Only slots before now + this are booked.
    pub horizon_us: i64,
}

/// The answer to a [`SlotRequest`], in microseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// Booked: send at this time.
    At(i64),
    /// Nothing free within the horizon: ask again at about this time.
    Later(i64),
}

/// The interval between sends at `per_second`, in microseconds.
pub fn interval_us(per_second: f64) -> i64 {
    let per_second = if per_second.is_finite() && per_second > 0.0 {
        per_second
    } else {
        1.0
    };
    ((1_000_000.0 / per_second).round() as i64).max(1)
}

pub fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// Books the slots of a batch of requests: one statement per (number, interval, horizon), the
/// requests of a group getting consecutive slots in their order.
pub(super) async fn book_batch(
    pool: AnyPool,
    _backend: Backend,
    batch: Vec<SlotRequest>,
) -> Result<Vec<Slot>, sqlx::Error> {
    let now = now_us();
    let mut groups: HashMap<(&str, i64, i64), Vec<usize>> = HashMap::new();
    for (i, r) in batch.iter().enumerate() {
        groups
            .entry((r.sender.as_str(), r.interval_us.max(1), r.horizon_us))
            .or_default()
            .push(i);
    }
    let mut out = vec![Slot::Later(now); batch.len()];
    for ((sender, interval, horizon), members) in groups {
        let (from, next) = book(&pool, sender, interval, now, horizon, members.len()).await?;
        let granted = ((next - from) / interval).max(0) as usize;
        for (k, i) in members.into_iter().enumerate() {
            out[i] = if k < granted {
                Slot::At(from + k as i64 * interval)
            } else {
                Slot::Later(next + (k - granted) as i64 * interval)
            };
        }
    }
    Ok(out)
}

/// Books up to `wanted` consecutive slots of `sender` that start before `now + horizon`;
/// returns where the booking started and the number's next free slot after it.
async fn book(
    pool: &AnyPool,
    sender: &str,
    interval: i64,
    now: i64,
    horizon: i64,
    wanted: usize,
) -> Result<(i64, i64), sqlx::Error> {
    let wanted = wanted as i64;
    let end = now + horizon;
    // A first booking starts now.
    let first = wanted.min(horizon.max(0) / interval + 1);
    // The schedule continues from its next free slot, unless that is past or was set at
    // another rate (a rate raised after a slow one must not inherit the slow one's backlog).
    let start = "(CASE WHEN send_slots.next_at_us > $3 AND send_slots.interval_us = $2 \
                 THEN send_slots.next_at_us ELSE $3 END)";
    let count = format!(
        "(CASE WHEN {start} > $6 THEN 0 WHEN ($6 - {start}) / $2 + 1 < $5 \
         THEN ($6 - {start}) / $2 + 1 ELSE $5 END)"
    );
    let sql = Sql::new(format!(
        "INSERT INTO send_slots (sender, interval_us, granted_from_us, next_at_us) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (sender) DO UPDATE SET interval_us = $2, granted_from_us = {start}, \
           next_at_us = {start} + {count} * $2 \
         RETURNING granted_from_us, next_at_us"
    ))
    .arg(sender)
    .arg(interval)
    .arg(now)
    .arg(now + first * interval)
    .arg(wanted)
    .arg(end);
    let row = sql.query().fetch_one(pool).await?;
    Ok((int(&row, "granted_from_us"), int(&row, "next_at_us")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_are_whole_microseconds_and_never_zero() {
        assert_eq!(interval_us(1.0), 1_000_000);
        assert_eq!(interval_us(0.01), 100_000_000);
        assert_eq!(interval_us(1000.0), 1_000);
        assert_eq!(interval_us(1e9), 1);
        assert_eq!(
            interval_us(0.0),
            1_000_000,
            "a rate of 0 is read as the default 1/s"
        );
    }
}
