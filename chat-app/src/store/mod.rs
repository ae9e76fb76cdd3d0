//! Where chat-app keeps what outlives a request: conversations and their entries, the map from
//! identity provider sessions to local ones, and (with Redis) which conversations have a turn
//! running. SQLite by default (one replica); Redis when several replicas share the state.

pub mod redis;
pub mod sqlite;

use std::time::Duration;

use crate::configuration::StoreSettings;
use crate::transcript::{Entry, Transcript};

#[derive(Clone)]
pub enum Store {
    Sqlite(sqlite::Sqlite),
    Redis(redis::Redis),
}

impl Store {
    /// Opens the configured store. `lifetime`: how long a conversation outlives its last
    /// change (a session's absolute lifetime).
    pub async fn open(settings: &StoreSettings, lifetime: Duration) -> anyhow::Result<Store> {
        Ok(match settings {
            StoreSettings::Sqlite(path) => Store::Sqlite(sqlite::Sqlite::open(path, lifetime).await?),
            StoreSettings::Redis(redis) => Store::Redis(redis::Redis::connect(redis, lifetime).await?),
        })
    }

    /// The store shared by replicas, if this is one.
    pub fn shared(&self) -> Option<&redis::Redis> {
        match self {
            Store::Sqlite(_) => None,
            Store::Redis(redis) => Some(redis),
        }
    }

    /// Deletes what has outlived its lifetime, every `period`, until dropped (SQLite; Redis
    /// expires keys itself).
    pub async fn delete_stale(self, period: Duration) {
        let Store::Sqlite(db) = self else {
            return std::future::pending().await;
        };
        let mut every = tokio::time::interval(period);
        loop {
            every.tick().await;
            match db.delete_stale().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(conversations = n, "forgot conversations unchanged for a session's lifetime"),
                Err(e) => tracing::warn!(error = %e, "cannot delete stale conversations"),
            }
        }
    }

    /// Answers when the store can serve a request (for `/readyz`).
    pub async fn ready(&self) -> anyhow::Result<()> {
        match self {
            Store::Sqlite(db) => db.ready().await,
            Store::Redis(redis) => redis.ready().await,
        }
    }

    pub async fn create_conversation(&self, owner_oid: &str) -> anyhow::Result<String> {
        match self {
            Store::Sqlite(db) => Ok(db.create_conversation(owner_oid).await?),
            Store::Redis(redis) => redis.create_conversation(owner_oid).await,
        }
    }

    /// The user a conversation belongs to, if it exists.
    pub async fn owner(&self, conversation: &str) -> anyhow::Result<Option<String>> {
        match self {
            Store::Sqlite(db) => Ok(db.owner(conversation).await?),
            Store::Redis(redis) => redis.owner(conversation).await,
        }
    }

    pub async fn delete_conversation(&self, conversation: &str) -> anyhow::Result<()> {
        match self {
            Store::Sqlite(db) => Ok(db.delete_conversation(conversation).await?),
            Store::Redis(redis) => redis.delete_conversation(conversation).await,
        }
    }

    /// Appends entries after the existing ones, atomically; fails if the conversation is gone.
    pub async fn append(&self, conversation: &str, entries: &[Entry]) -> anyhow::Result<()> {
        match self {
            Store::Sqlite(db) => db.append(conversation, entries).await,
            Store::Redis(redis) => redis.append(conversation, entries).await,
        }
    }

    /// The latest `most` entries of a conversation (at most [`MAX_ENTRIES`](crate::transcript::MAX_ENTRIES) are kept), oldest
    /// first.
    pub async fn transcript(&self, conversation: &str, most: usize) -> anyhow::Result<Transcript> {
        match self {
            Store::Sqlite(db) => db.transcript(conversation, most).await,
            Store::Redis(redis) => redis.transcript(conversation, most).await,
        }
    }

    pub async fn remember_idp_session(&self, sid: &str, session_id: &str) -> anyhow::Result<()> {
        match self {
            Store::Sqlite(db) => Ok(db.remember_idp_session(sid, session_id).await?),
            Store::Redis(redis) => redis.remember_idp_session(sid, session_id).await,
        }
    }

    /// The local session ids started from `sid`, forgotten as they are returned.
    pub async fn take_idp_sessions(&self, sid: &str) -> anyhow::Result<Vec<String>> {
        match self {
            Store::Sqlite(db) => Ok(db.take_idp_sessions(sid).await?),
            Store::Redis(redis) => redis.take_idp_sessions(sid).await,
        }
    }
}
