//! Tokens this validator has already accepted, so a token presented again (a user's next
//! request, or orders-mcp's cached On-Behalf-Of token at orders-api) costs a hash lookup instead
//! of an RSA verification.
//!
//! Only tokens that passed every check enter, keyed by the whole token text. An entry serves
//! only until the token expires (with the configured leeway: the same rule as a full check), and
//! it lives in the key snapshot, so every JWKS refresh (a rotated or withdrawn key) starts empty.
//! The size is bounded; no one can fill it without valid tokens, and a full cache first drops
//! expired entries, then everything. A hit shares the entry's caller (an `Arc`): every request
//! with a known token would otherwise copy a dozen claim strings.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use super::caller::Caller;

pub(crate) struct Accepted {
    entries: RwLock<HashMap<Box<str>, Arc<Caller>>>,
    capacity: usize,
}

impl Accepted {
    /// `capacity` 0 disables the cache: every token is checked in full.
    pub fn new(capacity: usize) -> Self {
        Accepted { entries: RwLock::new(HashMap::new()), capacity }
    }

    /// The caller of `token` if it was accepted before and has not expired at `now` (seconds).
    pub fn get(&self, token: &str, now: i64, leeway: i64) -> Option<Arc<Caller>> {
        if self.capacity == 0 {
            return None;
        }
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        entries.get(token).filter(|caller| now <= caller.expires_at.saturating_add(leeway)).cloned()
    }

    /// Remembers a token that just passed every check.
    pub fn insert(&self, token: &str, caller: &Arc<Caller>, now: i64, leeway: i64) {
        if self.capacity == 0 {
            return;
        }
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= self.capacity {
            entries.retain(|_, c| now <= c.expires_at.saturating_add(leeway));
            if entries.len() >= self.capacity {
                entries.clear();
            }
        }
        entries.insert(token.into(), Arc::clone(caller));
    }
}

#[cfg(test)]
mod tests {
    use super::super::{CallerKind, TokenVersion};
    use super::*;

    fn caller(expires_at: i64) -> Caller {
        Caller {
            kind: CallerKind::User,
            oid: "oid".into(),
            tid: "tid".into(),
            name: None,
            preferred_username: None,
            scopes: vec!["Orders.Read".into()],
            roles: Vec::new(),
            client_id: "client".into(),
            version: TokenVersion::V1,
            token_id: "uti".into(),
            audience: "api://afb67780-0dec-4124-a11c-b6e461eb7aad/orders-api-local".into(),
            issuer: "iss".into(),
            expires_at,
            header: Default::default(),
            agent: None,
            acrs: Vec::new(),
        }
    }

    #[test]
    fn an_entry_serves_until_its_token_expires_plus_leeway() {
        let cache = Accepted::new(8);
        cache.insert("t", &Arc::new(caller(1_000)), 900, 60);
        assert!(cache.get("t", 1_000, 60).is_some());
        assert!(cache.get("t", 1_060, 60).is_some());
        assert!(cache.get("t", 1_061, 60).is_none(), "expired: checked in full again, and refused");
        assert!(cache.get("other", 900, 60).is_none());
        assert!(cache.get("t-suffix", 900, 60).is_none() && cache.get("", 900, 60).is_none());
    }

    #[test]
    fn a_full_cache_drops_expired_entries_then_everything_and_zero_disables_it() {
        let cache = Accepted::new(2);
        cache.insert("old", &Arc::new(caller(100)), 50, 0);
        cache.insert("live", &Arc::new(caller(10_000)), 50, 0);
        cache.insert("new", &Arc::new(caller(10_000)), 500, 0);
        assert!(cache.get("old", 500, 0).is_none() && cache.get("live", 500, 0).is_some());
        cache.insert("newest", &Arc::new(caller(10_000)), 500, 0);
        assert!(cache.get("newest", 500, 0).is_some());
        assert_eq!(cache.entries.read().unwrap().len(), 1, "bounded: cleared when nothing had expired");

        let off = Accepted::new(0);
        off.insert("t", &Arc::new(caller(10_000)), 0, 0);
        assert!(off.get("t", 0, 0).is_none());
    }
}
