//! In-memory grants: authorization codes, refresh tokens, device codes and browser sessions.
//! Each entry expires; expired entries are swept as new ones arrive.

use std::collections::HashMap;
use std::sync::Mutex;

use service_kit::clock::unix_now_i64;

/// Sweep a map of expiring entries once it holds this many.
const SWEEP_AT: usize = 256;

pub trait Expiring {
    fn expires_at(&self) -> i64;
}

/// A map of expiring entries behind a lock.
pub struct Table<T> {
    entries: Mutex<HashMap<String, T>>,
}

impl<T: Expiring + Clone> Table<T> {
    pub fn new() -> Self {
        Table { entries: Mutex::new(HashMap::new()) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, T>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn insert(&self, key: String, value: T) {
        let mut entries = self.lock();
        if entries.len() >= SWEEP_AT {
            let now = unix_now_i64();
            entries.retain(|_, e| e.expires_at() > now);
        }
        entries.insert(key, value);
    }

    /// The live entry for `key`, if any.
    pub fn get(&self, key: &str) -> Option<T> {
        self.lock().get(key).filter(|e| e.expires_at() > unix_now_i64()).cloned()
    }

    /// The entry for `key` even if it expired, and whether it did: to tell "expired" from "unknown".
    pub fn lookup(&self, key: &str) -> Option<(T, bool)> {
        self.lock().get(key).map(|e| (e.clone(), e.expires_at() <= unix_now_i64()))
    }

    pub fn remove(&self, key: &str) -> Option<T> {
        self.lock().remove(key)
    }

    /// Changes an entry in place; returns what `f` returned, or `None` if there is no entry.
    pub fn update<R>(&self, key: &str, f: impl FnOnce(&mut T) -> R) -> Option<R> {
        self.lock().get_mut(key).map(f)
    }

    /// Finds the key of the first entry matching `pred`.
    pub fn find_key(&self, pred: impl Fn(&T) -> bool) -> Option<String> {
        self.lock().iter().find(|(_, v)| pred(v)).map(|(k, _)| k.clone())
    }
}

impl<T: Expiring + Clone> Default for Table<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// An issued authorization code, redeemable once.
#[derive(Clone)]
pub struct AuthCode {
    pub client_id: String,
    pub redirect_uri: String,
    pub user_oid: String,
    /// The `scope` parameter of the authorization request.
    pub scope: String,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub session_id: String,
    pub expires_at: i64,
    pub redeemed: bool,
    /// The authentication contexts the user stepped up for in this authorization request.
    pub acrs: Vec<String>,
}

impl Expiring for AuthCode {
    fn expires_at(&self) -> i64 {
        self.expires_at
    }
}

/// A refresh token's grant. Refresh tokens rotate: each use retires the old one.
#[derive(Clone)]
pub struct RefreshGrant {
    pub client_id: String,
    pub user_oid: String,
    pub scope: String,
    pub session_id: String,
    pub expires_at: i64,
    /// The authentication contexts stepped up for, and when: refreshed tokens keep them while
    /// the step-up is fresh (`auth_context::STEP_UP_LIFETIME_SECS`).
    pub acrs: Vec<String>,
    pub stepped_up_at: i64,
}

impl Expiring for RefreshGrant {
    fn expires_at(&self) -> i64 {
        self.expires_at
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeviceState {
    Pending,
    Approved { user_oid: String, session_id: String },
    Declined,
}

/// A device-code sign-in in progress.
#[derive(Clone)]
pub struct DeviceGrant {
    pub user_code: String,
    pub client_id: String,
    pub scope: String,
    pub expires_at: i64,
    pub state: DeviceState,
}

impl Expiring for DeviceGrant {
    fn expires_at(&self) -> i64 {
        self.expires_at
    }
}

/// A browser's sign-in session at the emulator (single sign-on across apps).
#[derive(Clone)]
pub struct Session {
    /// The session's id as apps see it (`sid`, `session_state`); never the cookie.
    pub sid: String,
    pub user_oid: String,
    /// Clients signed in through this session, for front-channel logout.
    pub clients: Vec<String>,
    pub expires_at: i64,
}

impl Expiring for Session {
    fn expires_at(&self) -> i64 {
        self.expires_at
    }
}

#[derive(Default)]
pub struct Store {
    pub codes: Table<AuthCode>,
    pub refresh_tokens: Table<RefreshGrant>,
    /// Keyed by device code.
    pub devices: Table<DeviceGrant>,
    pub sessions: Table<Session>,
}
