//! The Redis backend, shared by any number of replicas: conversations (owner, and entries as a
//! list of JSON values), the map from identity provider sessions to local ones, and the lease
//! that keeps one turn at a time per conversation across replicas. Everything expires by itself
//! after a session's absolute lifetime. The keys of one conversation share a hash tag (`{id}`),
//! so the scripts that touch two of them stay on one shard of a clustered Redis.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use entra_auth::acquire::Credential;
use fred::prelude::{
    Builder, ClientLike, Config, Error as RedisError, ErrorKind, Expiration, KeysInterface, ListInterface,
    LuaInterface, Pool, ReconnectPolicy, Server, SetOptions, SetsInterface, TransactionInterface,
};
use fred::types::config::CredentialProvider;
use secrecy::ExposeSecret;
use tokio::sync::oneshot;

use crate::configuration::RedisSettings;
use crate::transcript::{Entry, MAX_ENTRIES, Transcript};

/// Connections per replica: commands are pipelined, a few suffice.
const CONNECTIONS: usize = 4;
/// Every command answers within this or fails: a Redis that is down is an error page, not a
/// request that waits (fred otherwise queues commands until it reconnects).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);
/// A turn's lease lasts this long unless renewed, so a replica that dies mid-turn frees its
/// conversation within it; the replica running the turn renews it at a third of that.
const LEASE: Duration = Duration::from_secs(30);
/// The scope of Entra tokens for Azure Managed Redis and Azure Cache for Redis.
const REDIS_SCOPE: &str = "https://redis.azure.com/.default";

/// Appends ARGV[3..] to the entries if the conversation exists, keeps the newest ARGV[1], and
/// renews both keys' lifetime (ARGV[2] seconds). 0 when the conversation is gone (signed out
/// while the turn ran), as SQLite's foreign key refuses the insert.
const APPEND: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('RPUSH', KEYS[2], unpack(ARGV, 3))
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[1]), -1)
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('EXPIRE', KEYS[2], ARGV[2])
return 1";
/// Renews (ARGV[2] ms) or releases (no ARGV[2]) a lease, only if it is still ours (ARGV[1]).
const RENEW: &str = r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('PEXPIRE', KEYS[1], ARGV[2])";
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1])";

#[derive(Clone)]
pub struct Redis {
    pool: Pool,
    /// How long data outlives its last change.
    lifetime: Duration,
}

impl Redis {
    pub async fn connect(settings: &RedisSettings, lifetime: Duration) -> anyhow::Result<Redis> {
        // fred's parse errors do not repeat the URL, which may hold a password.
        let mut config = Config::from_url(settings.url.expose_secret())
            .map_err(|e| anyhow::anyhow!("CHAT_APP_SESSION_STORE is not a usable Redis URL: {}", e.details()))?;
        if let Some((user, credential)) = &settings.entra {
            config.credential_provider =
                Some(Arc::new(EntraToken { user: user.clone(), credential: credential.clone() }));
        }
        let pool = Builder::from_config(config)
            .with_connection_config(|c| {
                c.connection_timeout = COMMAND_TIMEOUT;
                c.internal_command_timeout = COMMAND_TIMEOUT;
            })
            .with_performance_config(|p| p.default_command_timeout = COMMAND_TIMEOUT)
            // Reconnect for ever, backing off to 5 s: a restarted Redis is picked up again.
            .set_policy(ReconnectPolicy::new_exponential(0, 100, 5_000, 2))
            .build_pool(CONNECTIONS)
            .map_err(|e| anyhow::anyhow!("cannot configure the Redis client: {}", e.details()))?;
        pool.init().await.map_err(|e| anyhow::anyhow!("cannot connect to Redis (CHAT_APP_SESSION_STORE): {e}"))?;
        Ok(Redis { pool, lifetime })
    }

    /// The connections, for tower-sessions' Redis store (sessions live beside conversations).
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    pub async fn ready(&self) -> anyhow::Result<()> {
        let _: String = self.pool.ping(None).await?;
        Ok(())
    }

    pub async fn create_conversation(&self, owner_oid: &str) -> anyhow::Result<String> {
        let id = uuid::Uuid::new_v4().to_string();
        let expire = Some(Expiration::EX(self.seconds()));
        let created: Option<String> =
            self.pool.set(owner_key(&id), owner_oid, expire, Some(SetOptions::NX), false).await?;
        created.context("a new conversation id was taken")?;
        Ok(id)
    }

    pub async fn owner(&self, conversation: &str) -> anyhow::Result<Option<String>> {
        Ok(self.pool.get(owner_key(conversation)).await?)
    }

    pub async fn delete_conversation(&self, conversation: &str) -> anyhow::Result<()> {
        let _: i64 = self.pool.del(vec![owner_key(conversation), entries_key(conversation)]).await?;
        Ok(())
    }

    pub async fn append(&self, conversation: &str, entries: &[Entry]) -> anyhow::Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut args = vec![MAX_ENTRIES.to_string(), self.seconds().to_string()];
        for entry in entries {
            args.push(serde_json::to_string(entry)?);
        }
        let keys = vec![owner_key(conversation), entries_key(conversation)];
        let appended: i64 = self.pool.eval(APPEND, keys, args).await?;
        anyhow::ensure!(appended == 1, "the conversation no longer exists");
        Ok(())
    }

    pub async fn transcript(&self, conversation: &str, most: usize) -> anyhow::Result<Transcript> {
        let rows: Vec<String> =
            self.pool.lrange(entries_key(conversation), -(most.min(MAX_ENTRIES) as i64), -1).await?;
        let entries = rows.iter().filter_map(|json| serde_json::from_str(json).ok()).collect();
        Ok(Transcript { entries })
    }

    pub async fn remember_idp_session(&self, sid: &str, session_id: &str) -> anyhow::Result<()> {
        let key = idp_key(sid);
        let transaction = self.pool.multi();
        let () = transaction.sadd(&key, session_id).await?;
        let () = transaction.expire(&key, self.seconds(), None).await?;
        let _: (i64, i64) = transaction.exec(true).await?;
        Ok(())
    }

    pub async fn take_idp_sessions(&self, sid: &str) -> anyhow::Result<Vec<String>> {
        let key = idp_key(sid);
        let transaction = self.pool.multi();
        let () = transaction.smembers(&key).await?;
        let () = transaction.del(&key).await?;
        let (ids, _): (Vec<String>, i64) = transaction.exec(true).await?;
        Ok(ids)
    }

    /// Claims `conversation`'s turn for this replica; `None` when one runs anywhere. The lease
    /// is renewed while the returned value lives and released when it is dropped.
    pub async fn lease_turn(&self, conversation: &str) -> anyhow::Result<Option<Lease>> {
        let (key, token) = (turn_key(conversation), uuid::Uuid::new_v4().to_string());
        let expire = Some(Expiration::PX(LEASE.as_millis() as i64));
        let taken: Option<String> = self.pool.set(&key, token.as_str(), expire, Some(SetOptions::NX), false).await?;
        if taken.is_none() {
            return Ok(None);
        }
        let (renewing, mut ended) = oneshot::channel::<()>();
        let (pool, renewed_key) = (self.pool.clone(), key.clone());
        let renew_args = vec![token.clone(), LEASE.as_millis().to_string()];
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = &mut ended => break,
                    () = tokio::time::sleep(LEASE / 3) => {
                        let renewed: Result<i64, _> = pool.eval(RENEW, renewed_key.as_str(), renew_args.clone()).await;
                        if let Err(e) = renewed {
                            tracing::warn!(error = %e, "cannot renew a turn's lease");
                        }
                    }
                }
            }
        });
        Ok(Some(Lease { pool: self.pool.clone(), key, token, released: false, _renewing: renewing }))
    }

    fn seconds(&self) -> i64 {
        i64::try_from(self.lifetime.as_secs()).unwrap_or(i64::MAX).max(1)
    }
}

/// A replica's claim on a conversation's turn, renewed while it lives. [`Lease::release`] frees
/// the conversation before the turn says it is done, so the user's next message finds it free;
/// dropping it unreleased (a turn that panicked) releases it in the background.
pub struct Lease {
    pool: Pool,
    key: String,
    token: String,
    released: bool,
    /// Dropped with the lease: stops the renewal.
    _renewing: oneshot::Sender<()>,
}

impl Lease {
    pub async fn release(mut self) {
        self.released = true;
        release(&self.pool, &self.key, &self.token).await;
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if self.released {
            return;
        }
        let (pool, key, token) = (self.pool.clone(), std::mem::take(&mut self.key), std::mem::take(&mut self.token));
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move { release(&pool, &key, &token).await });
        }
    }
}

/// Deletes the lease if it is still `token`'s; on failure it lapses by itself within [`LEASE`].
async fn release(pool: &Pool, key: &str, token: &str) {
    let released: Result<i64, _> = pool.eval(RELEASE, key, vec![token.to_string()]).await;
    if let Err(e) = released {
        tracing::warn!(error = %e, "cannot release a turn's lease");
    }
}

fn owner_key(conversation: &str) -> String {
    format!("chat-app:conversation:{{{conversation}}}:owner")
}

fn entries_key(conversation: &str) -> String {
    format!("chat-app:conversation:{{{conversation}}}:entries")
}

fn turn_key(conversation: &str) -> String {
    format!("chat-app:conversation:{{{conversation}}}:turn")
}

fn idp_key(sid: &str) -> String {
    format!("chat-app:idp-session:{{{sid}}}")
}

/// Redis credentials from chat-app's managed identity (Azure Managed Redis): the identity's
/// object id as the user, a token for Redis as the password. fred sends `AUTH` again on the
/// interval, so connections outlive any one token ("Use Microsoft Entra for cache
/// authentication": clients must re-authenticate before the token expires).
#[derive(Debug)]
struct EntraToken {
    user: String,
    credential: Credential,
}

#[async_trait]
impl CredentialProvider for EntraToken {
    async fn fetch(&self, _server: Option<&Server>) -> Result<(Option<String>, Option<String>), RedisError> {
        let token = self
            .credential
            .token(REDIS_SCOPE)
            .await
            .map_err(|e| RedisError::new(ErrorKind::Auth, format!("no Entra token for Redis: {e}")))?;
        Ok((Some(self.user.clone()), Some(token.secret().to_string())))
    }

    fn refresh_interval(&self) -> Option<Duration> {
        Some(Duration::from_secs(15 * 60))
    }
}
