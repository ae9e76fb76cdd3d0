//! A token cache keyed by anything (user + scope, resource, ...).
//!
//! Each key has its own async slot: the first caller to find it empty or stale fetches while
//! the others wait on the slot and then reuse the result, so a burst of concurrent misses costs
//! one request to the identity provider. Different keys never wait on each other.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use service_kit::clock::unix_now;

use super::error::AcquireError;
use super::token::AccessToken;

/// The most keys the cache holds (one per user and scope for On-Behalf-Of: tokens of an hour
/// are a few KiB each, so this bounds it to a few MiB).
const CAPACITY: usize = 1024;

#[derive(Clone)]
struct Cached {
    token: AccessToken,
    /// When to fetch a new one (seconds since the epoch): ahead of expiry.
    refresh_at: u64,
}

type Slot = Arc<tokio::sync::Mutex<Option<Cached>>>;

pub struct TokenCache<K> {
    slots: Mutex<HashMap<K, Slot>>,
    refresh_margin: Duration,
}

/// Shows only the refresh margin: the tokens are secrets.
impl<K> std::fmt::Debug for TokenCache<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache").field("refresh_margin", &self.refresh_margin).finish_non_exhaustive()
    }
}

impl<K: Eq + Hash + Clone> TokenCache<K> {
    /// Tokens are refreshed `refresh_margin` before they expire (or halfway through their
    /// lifetime, if that is sooner, so short-lived tokens are not refetched on every call).
    pub fn new(refresh_margin: Duration) -> Self {
        TokenCache { slots: Mutex::new(HashMap::new()), refresh_margin }
    }

    fn slot(&self, key: K) -> Slot {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        if slots.len() >= CAPACITY && !slots.contains_key(&key) {
            make_room(&mut slots);
        }
        slots.entry(key).or_default().clone()
    }

    /// The cached token for `key`, or the result of `fetch` (stored for the next caller).
    pub async fn get_or_fetch<F, Fut>(&self, key: K, fetch: F) -> Result<AccessToken, AcquireError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<AccessToken, AcquireError>>,
    {
        let slot = self.slot(key);
        let mut cached = slot.lock().await;
        let now = unix_now();
        if let Some(c) = cached.as_ref().filter(|c| now < c.refresh_at) {
            return Ok(c.token.clone());
        }
        let token = fetch().await?;
        let lifetime = token.expires_on.saturating_sub(now);
        let margin = self.refresh_margin.as_secs().min(lifetime / 2);
        *cached = Some(Cached { token: token.clone(), refresh_at: token.expires_on.saturating_sub(margin) });
        Ok(token)
    }

    /// Forgets `key`'s token (for example after the resource refused it).
    pub fn invalidate(&self, key: &K) {
        self.slots.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
    }

    /// How many keys are cached.
    pub fn len(&self) -> usize {
        self.slots.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Drops expired tokens and, if the cache is still full, those that expire soonest, down to
/// three quarters of [`CAPACITY`] (so the next eviction is many new keys away). A slot being
/// filled right now is locked: it stays.
fn make_room<K: Eq + Hash + Clone>(slots: &mut HashMap<K, Slot>) {
    let now = unix_now();
    slots.retain(|_, slot| slot.try_lock().map_or(true, |c| c.as_ref().is_some_and(|c| c.token.expires_on > now)));
    if slots.len() < CAPACITY {
        return;
    }
    let mut by_expiry: Vec<(u64, K)> = slots
        .iter()
        .filter_map(|(key, slot)| {
            let cached = slot.try_lock().ok()?;
            Some((cached.as_ref().map_or(0, |c| c.token.expires_on), key.clone()))
        })
        .collect();
    by_expiry.sort_unstable_by_key(|(expires_on, _)| *expires_on);
    let excess = slots.len().saturating_sub(CAPACITY * 3 / 4);
    for (_, key) in by_expiry.into_iter().take(excess) {
        slots.remove(&key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn concurrent_misses_share_one_fetch_and_keys_stay_apart() {
        let cache = Arc::new(TokenCache::new(Duration::from_secs(300)));
        let fetches = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for i in 0..50 {
            let (cache, fetches) = (cache.clone(), fetches.clone());
            tasks.push(tokio::spawn(async move {
                let user = if i % 2 == 0 { "alice" } else { "bob" };
                cache
                    .get_or_fetch(user.to_string(), || async move {
                        fetches.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        Ok(AccessToken::expiring_in(format!("token-for-{user}"), 3600))
                    })
                    .await
                    .map(|t| (user, t.secret().to_string()))
            }));
        }
        for task in tasks {
            let (user, token) = task.await.unwrap().unwrap();
            assert_eq!(token, format!("token-for-{user}"));
        }
        assert_eq!(fetches.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn tokens_near_expiry_are_refetched_and_failures_are_not_cached() {
        let cache = TokenCache::new(Duration::from_secs(300));
        let t = cache.get_or_fetch("k", || async { Ok(AccessToken::expiring_in("short", 1)) }).await.unwrap();
        assert_eq!(t.secret(), "short");
        // Lifetime 1 s: margin is half of it, so the token is stale at once on second boundaries;
        // an error from the next fetch reaches the caller and leaves nothing cached.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let err =
            cache.get_or_fetch("k", || async { Err(AcquireError::NotConfigured("down".into())) }).await.unwrap_err();
        assert!(err.to_string().contains("down"));
        let t = cache.get_or_fetch("k", || async { Ok(AccessToken::expiring_in("new", 3600)) }).await.unwrap();
        assert_eq!(t.secret(), "new");
        let t = cache.get_or_fetch("k", || async { Ok(AccessToken::expiring_in("unused", 3600)) }).await.unwrap();
        assert_eq!(t.secret(), "new");
    }

    /// Many users, each with a token still valid: the map stays at its capacity instead of
    /// growing with every user seen (issue #17's soak: memory flat under load).
    #[tokio::test]
    async fn the_cache_holds_at_most_its_capacity_of_valid_tokens() {
        let cache = TokenCache::new(Duration::from_secs(300));
        for user in 0..CAPACITY + 500 {
            cache.get_or_fetch(user, || async { Ok(AccessToken::expiring_in("t", 3600)) }).await.unwrap();
        }
        assert!(cache.len() <= CAPACITY, "{} keys", cache.len());
        // The newest key is still cached: no fetch.
        let t = cache.get_or_fetch(CAPACITY + 499, || async { Err(AcquireError::NotConfigured("fetched".into())) });
        assert!(t.await.is_ok());
    }

    #[test]
    fn debug_never_prints_the_token() {
        let t = AccessToken::expiring_in("eyJhbGciOiJSUzI1NiJ9.payload.signature", 60);
        let shown = format!("{t:?}");
        assert!(!shown.contains("eyJ") && !shown.contains("payload") && shown.contains("REDACTED"), "{shown}");
    }
}
