//! Resource ids shaped like ChatBotKit's cuids: `c`, a time part, a counter and randomness.
//!
//! The time prefix plus a process-wide counter makes ids created later sort later, which keeps
//! `(createdAt, id)` ordering equal to insertion order even within one millisecond.
use rand::Rng;
use std::sync::atomic::{AtomicU32, Ordering};

static COUNTER: AtomicU32 = AtomicU32::new(0);
const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";

fn base36(mut n: u64, width: usize, out: &mut String) {
    let mut buf = vec![b'0'; width];
    for slot in buf.iter_mut().rev() {
        *slot = ALPHABET[(n % 36) as usize];
        n /= 36;
    }
    out.push_str(std::str::from_utf8(&buf).unwrap_or_default());
}

/// A new 25-character id, e.g. `cm3x9k2a0004q8w1r7t5y2u3i`.
pub fn new_id() -> String {
    let mut id = String::with_capacity(25);
    id.push('c');
    base36(super::now_ms() as u64, 9, &mut id);
    base36(
        u64::from(COUNTER.fetch_add(1, Ordering::Relaxed) % 1_679_616),
        4,
        &mut id,
    );
    let mut rng = rand::thread_rng();
    base36(rng.gen::<u64>() % 36u64.pow(11), 11, &mut id);
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_25_chars_and_unique() {
        let a = new_id();
        let b = new_id();
        assert_eq!(a.len(), 25);
        assert!(a.starts_with('c'));
        assert_ne!(a, b);
    }
}
