//! Short-lived copies of rows that every message needs and that rarely change: integrations
//! (read by every webhook, status callback, turn and send, with the auth token decrypted) and
//! bots (read by every turn). Reading them once a second instead of several times per message
//! takes them off the hot path.
//!
//! Any resource update or delete made through this process clears the caches at once; changes
//! made through another replica are seen within [`TTL`].
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a cached row is trusted without reading it again.
pub const TTL: Duration = Duration::from_secs(1);
/// Past this many entries a cache starts again from empty rather than growing.
const MAX_ENTRIES: usize = 10_000;

/// Values by key, each trusted for [`TTL`] after it was loaded; shared by clones.
#[derive(Debug)]
pub struct TtlCache<V>(Arc<Mutex<HashMap<String, (Instant, V)>>>);

impl<V> Clone for TtlCache<V> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<V> Default for TtlCache<V> {
    fn default() -> Self {
        Self(Arc::default())
    }
}

impl<V: Clone> TtlCache<V> {
    pub fn get(&self, key: &str) -> Option<V> {
        let cache = self.0.lock().ok()?;
        let (loaded, value) = cache.get(key)?;
        (loaded.elapsed() < TTL).then(|| value.clone())
    }

    pub fn put(&self, key: &str, value: &V) {
        if let Ok(mut cache) = self.0.lock() {
            if cache.len() >= MAX_ENTRIES {
                cache.clear();
            }
            cache.insert(key.to_owned(), (Instant::now(), value.clone()));
        }
    }

    pub fn clear(&self) {
        if let Ok(mut cache) = self.0.lock() {
            cache.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_is_served_until_cleared() {
        let cache = TtlCache::default();
        assert_eq!(cache.get("a"), None);
        cache.put("a", &1);
        assert_eq!(cache.get("a"), Some(1));
        cache.clear();
        assert_eq!(cache.get("a"), None);
    }

    #[test]
    fn a_value_older_than_the_ttl_is_not_served() {
        let cache = TtlCache::default();
        cache.put("a", &1);
        if let Ok(mut map) = cache.0.lock() {
            if let Some(entry) = map.get_mut("a") {
                entry.0 = Instant::now() - TTL - Duration::from_millis(1);
            }
        }
        assert_eq!(cache.get("a"), None);
    }
}
