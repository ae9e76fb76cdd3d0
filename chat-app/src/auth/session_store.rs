//! The session store, where a deleted session stays deleted. tower-sessions saves a changed
//! session when its response ends: a request that was in flight while the same session signed
//! out (or was signed out by the identity provider's front-channel logout, or had its id cycled
//! at sign-in) would write the record back, and the old cookie would be signed in again.
//! - SQLite saves with an upsert: a save goes ahead only while the session's row exists, checked
//!   under one lock with the write (and with every delete), so no delete can slip between them.
//!   The lock is this process's: SQLite means one replica. (It remembered deleted ids instead,
//!   for the session's lifetime: anyone could grow that list without end by signing in and out.)
//! - Redis saves with `SET … XX` (only if the key exists): a deleted session is never written
//!   back, whichever replica saves it.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Mutex;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, ExpiredDeletion, SessionStore};
use tower_sessions_redis_store::RedisStore;
use tower_sessions_sqlx_store::SqliteStore;

use crate::store::redis::Redis;

/// The configured session store.
#[derive(Debug, Clone)]
pub enum Sessions {
    Sqlite(SignOutWinsStore),
    Redis(RedisStore<fred::prelude::Pool>),
}

impl Sessions {
    /// Sessions in chat-app's SQLite database (its own table), one replica.
    pub async fn sqlite(pool: sqlx::SqlitePool) -> anyhow::Result<Sessions> {
        let store = SqliteStore::new(pool.clone());
        store.migrate().await.map_err(|e| anyhow::anyhow!("cannot migrate the session table: {e}"))?;
        Ok(Sessions::Sqlite(SignOutWinsStore::new(store, pool)))
    }

    /// Sessions beside the conversations in Redis, shared by replicas.
    pub fn redis(redis: &Redis) -> Sessions {
        Sessions::Redis(RedisStore::new(redis.pool().clone()))
    }

    /// Deletes expired sessions every `period` (SQLite; Redis expires them itself). Runs until
    /// dropped.
    pub async fn delete_expired(self, period: Duration) {
        match self {
            Sessions::Sqlite(store) => {
                if let Err(e) = store.inner.continuously_delete_expired(period).await {
                    tracing::error!(error = %e, "expired sessions are no longer deleted");
                }
            }
            Sessions::Redis(_) => std::future::pending().await,
        }
    }
}

#[async_trait]
impl SessionStore for Sessions {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        match self {
            Sessions::Sqlite(store) => store.create(record).await,
            Sessions::Redis(store) => store.create(record).await,
        }
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        match self {
            Sessions::Sqlite(store) => store.save(record).await,
            Sessions::Redis(store) => store.save(record).await,
        }
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        match self {
            Sessions::Sqlite(store) => store.load(id).await,
            Sessions::Redis(store) => store.load(id).await,
        }
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        match self {
            Sessions::Sqlite(store) => store.delete(id).await,
            Sessions::Redis(store) => store.delete(id).await,
        }
    }
}

#[derive(Debug, Clone)]
pub struct SignOutWinsStore {
    inner: SqliteStore,
    /// The pool `inner` writes with, to ask whether a session's row still exists.
    pool: sqlx::SqlitePool,
    /// Held across "does the row exist" and the save, and across every delete.
    writes: Arc<Mutex<()>>,
}

impl SignOutWinsStore {
    pub fn new(inner: SqliteStore, pool: sqlx::SqlitePool) -> Self {
        SignOutWinsStore { inner, pool, writes: Arc::default() }
    }
}

/// tower-sessions-sqlx-store's table ([`SqliteStore::new`]'s default name).
const EXISTS: &str = "SELECT EXISTS(SELECT 1 FROM tower_sessions WHERE id = ?)";

#[async_trait]
impl SessionStore for SignOutWinsStore {
    /// A new session: tower-sessions saves one through `create`, never `save`.
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        self.inner.create(record).await
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        let _writes = self.writes.lock().await;
        let exists: bool = sqlx::query_scalar(EXISTS)
            .bind(record.id.to_string())
            .fetch_one(&self.pool)
            .await
            .map_err(|e| session_store::Error::Backend(e.to_string()))?;
        if !exists {
            tracing::debug!("a save of a signed-out session was dropped");
            return Ok(());
        }
        self.inner.save(record).await
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        self.inner.load(id).await
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        let _writes = self.writes.lock().await;
        self.inner.delete(id).await
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use sqlx::sqlite::SqlitePoolOptions;

    use super::*;

    async fn sqlite(dir: &tempfile::TempDir) -> (SqliteStore, sqlx::SqlitePool) {
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("sessions.db").display());
        let pool = SqlitePoolOptions::new().connect(&url).await.unwrap();
        let store = SqliteStore::new(pool.clone());
        store.migrate().await.unwrap();
        (store, pool)
    }

    /// Request A loads the session; sign-out deletes it; A's response ends and saves what it
    /// loaded (tower-sessions' save is an upsert).
    async fn sign_out_during_a_request(store: &impl SessionStore) -> Option<Record> {
        let mut record = Record {
            id: Id::default(),
            data: HashMap::from([("auth.user".to_string(), serde_json::json!("alice"))]),
            expiry_date: time::OffsetDateTime::now_utc() + time::Duration::hours(1),
        };
        store.create(&mut record).await.unwrap();
        let in_flight = store.load(&record.id).await.unwrap().unwrap();
        store.delete(&record.id).await.unwrap();
        store.save(&in_flight).await.unwrap();
        store.load(&record.id).await.unwrap()
    }

    #[tokio::test]
    async fn a_request_in_flight_at_sign_out_does_not_bring_the_session_back() {
        let dir = tempfile::tempdir().unwrap();
        // The hazard: the plain store writes the signed-out session back.
        assert!(sign_out_during_a_request(&sqlite(&dir).await.0).await.is_some());
        let (inner, pool) = sqlite(&dir).await;
        let store = SignOutWinsStore::new(inner, pool);
        assert!(sign_out_during_a_request(&store).await.is_none(), "sign-out must win");

        // A session still signed in is saved as before.
        let mut record = Record {
            id: Id::default(),
            data: HashMap::from([("auth.user".to_string(), serde_json::json!("bob"))]),
            expiry_date: time::OffsetDateTime::now_utc() + time::Duration::hours(1),
        };
        store.create(&mut record).await.unwrap();
        record.data.insert("chat".into(), serde_json::json!(1));
        store.save(&record).await.unwrap();
        assert_eq!(store.load(&record.id).await.unwrap().unwrap().data["chat"], 1);
    }
}
