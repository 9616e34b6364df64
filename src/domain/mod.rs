//! Pure types and rules, no I/O: identifiers, clocks, phone numbers, allow lists, sessions.
pub mod address;
pub mod allow_from;
pub mod delivery;
pub mod fingerprint;
pub mod ids;
pub mod keywords;
pub mod message;
pub mod phone;
pub mod reply_window;

/// Milliseconds since the Unix epoch, the unit of every timestamp on the wire and in storage.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
