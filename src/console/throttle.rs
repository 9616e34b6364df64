//! Slows down password guessing: after a few failed logins from one client address, or for
//! one account, further attempts are refused with 429 and a growing `Retry-After`, whether
//! or not the password would be right. Kept in memory: a restart forgets it, which costs an
//! attacker a restart per few guesses.
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures allowed before the delay starts.
const FREE: u32 = 5;
/// Failures older than this are forgotten.
const WINDOW: Duration = Duration::from_secs(15 * 60);
const MAX_DELAY: Duration = Duration::from_secs(15 * 60);
/// Most keys remembered; the oldest go first.
const MAX_KEYS: usize = 10_000;

#[derive(Debug, Default)]
pub struct LoginThrottle {
    failures: Mutex<HashMap<String, (u32, Instant)>>,
}

impl LoginThrottle {
    /// How long `keys` (client address, account) must wait before trying again, if at all.
    pub fn wait(&self, keys: &[String]) -> Option<Duration> {
        let now = Instant::now();
        let map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        keys.iter()
            .filter_map(|k| map.get(k))
            .filter(|(n, last)| *n >= FREE && now.duration_since(*last) < WINDOW)
            .map(|(n, last)| {
                let delay = Duration::from_secs(1u64 << (n - FREE).min(10)).min(MAX_DELAY);
                delay.saturating_sub(now.duration_since(*last))
            })
            .filter(|d| !d.is_zero())
            .max()
    }

    pub fn failed(&self, keys: &[String]) {
        let now = Instant::now();
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_KEYS {
            map.retain(|_, (_, last)| now.duration_since(*last) < WINDOW);
        }
        for key in keys {
            let entry = map.entry(key.clone()).or_insert((0, now));
            if now.duration_since(entry.1) >= WINDOW {
                entry.0 = 0;
            }
            entry.0 += 1;
            entry.1 = now;
        }
    }

    pub fn succeeded(&self, keys: &[String]) {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        for key in keys {
            map.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_failures_make_the_client_wait() {
        let t = LoginThrottle::default();
        let keys = vec!["ip:1.2.3.4".to_owned(), "acct:a@b.c".to_owned()];
        for _ in 0..FREE - 1 {
            t.failed(&keys);
            assert_eq!(t.wait(&keys), None);
        }
        t.failed(&keys);
        assert!(t.wait(&keys).is_some());
        // Another client on another account is not slowed down.
        assert_eq!(t.wait(&["ip:5.6.7.8".to_owned()]), None);
        t.succeeded(&keys);
        assert_eq!(t.wait(&keys), None);
    }
}
