//! Short-lived copies of rows that every message needs and that rarely change: integrations
//! (read by every webhook, status callback, turn and send, with the auth token decrypted) and
//! bots (read by every turn). Reading them once a second instead of several times per message
//! takes them off the hot path.
//!
//! Any resource update or delete made through this process clears the caches at once; changes
//! made through another replica are seen within [`TTL`].
use moka::sync::Cache;
use std::time::Duration;

/// How long a cached row is trusted without reading it again.
pub const TTL: Duration = Duration::from_secs(1);
/// Past this many entries the least useful ones are evicted rather than the cache growing.
const MAX_ENTRIES: u64 = 10_000;

/// Values by key, each trusted for [`TTL`] after it was loaded; shared by clones.
#[derive(Clone)]
pub struct TtlCache<V: Clone + Send + Sync + 'static>(Cache<String, V>);

impl<V: Clone + Send + Sync + 'static> Default for TtlCache<V> {
    fn default() -> Self {
        Self::with_ttl(TTL)
    }
}

/// Only the size: the cached rows are not for logs.
impl<V: Clone + Send + Sync + 'static> std::fmt::Debug for TtlCache<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TtlCache({} entries)", self.0.entry_count())
    }
}

impl<V: Clone + Send + Sync + 'static> TtlCache<V> {
    fn with_ttl(ttl: Duration) -> Self {
        Self(
            Cache::builder()
                .max_capacity(MAX_ENTRIES)
                .time_to_live(ttl)
                .build(),
        )
    }

    pub fn get(&self, key: &str) -> Option<V> {
        self.0.get(key)
    }

    pub fn put(&self, key: &str, value: &V) {
        self.0.insert(key.to_owned(), value.clone());
    }

    pub fn clear(&self) {
        self.0.invalidate_all();
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
        let cache = TtlCache::with_ttl(Duration::from_millis(50));
        cache.put("a", &1);
        assert_eq!(cache.get("a"), Some(1));
        std::thread::sleep(Duration::from_millis(80));
        assert_eq!(cache.get("a"), None);
    }
}
