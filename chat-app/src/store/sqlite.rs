//! The SQLite backend (one replica): conversations and their entries, and the map from identity
//! provider sessions to local ones. (tower-sessions keeps its own table in the same file.)

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

use crate::transcript::{Entry, MAX_ENTRIES, Transcript};
use service_kit::clock::unix_now;

#[derive(Clone)]
pub struct Sqlite {
    pool: SqlitePool,
    lifetime: Duration,
}

impl Sqlite {
    /// Opens (creating if needed) the database at `path` and runs the migrations. `lifetime`:
    /// how long a conversation outlives its last change ([`Sqlite::delete_stale`]).
    pub async fn open(path: &Path, lifetime: Duration) -> anyhow::Result<Sqlite> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| anyhow::anyhow!("cannot create the directory of {}: {e}", path.display()))?;
        }
        // It holds the sessions, each user's access and refresh tokens among them.
        service_kit::private_file::create(path)
            .map_err(|e| anyhow::anyhow!("cannot create the session database {}: {e}", path.display()))?;
        let options = SqliteConnectOptions::from_str("sqlite:")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(|e| anyhow::anyhow!("cannot open the session database {}: {e}", path.display()))?;
        sqlx::migrate!("./migrations")
            .run(&pool)
            .await
            .map_err(|e| anyhow::anyhow!("cannot migrate the session database {}: {e}", path.display()))?;
        Ok(Sqlite { pool, lifetime })
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    pub async fn ready(&self) -> anyhow::Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn create_conversation(&self, owner_oid: &str) -> sqlx::Result<String> {
        let id = uuid::Uuid::new_v4().to_string();
        sqlx::query("INSERT INTO conversations (id, owner_oid, created_at, changed_at) VALUES (?1, ?2, ?3, ?3)")
            .bind(&id)
            .bind(owner_oid)
            .bind(unix_now() as i64)
            .execute(&self.pool)
            .await?;
        Ok(id)
    }

    /// The user a conversation belongs to, if it exists.
    pub async fn owner(&self, conversation: &str) -> sqlx::Result<Option<String>> {
        sqlx::query_scalar("SELECT owner_oid FROM conversations WHERE id = ?")
            .bind(conversation)
            .fetch_optional(&self.pool)
            .await
    }

    pub async fn delete_conversation(&self, conversation: &str) -> sqlx::Result<()> {
        sqlx::query("DELETE FROM conversations WHERE id = ?").bind(conversation).execute(&self.pool).await?;
        Ok(())
    }

    /// Appends entries after the existing ones, atomically.
    pub async fn append(&self, conversation: &str, entries: &[Entry]) -> anyhow::Result<()> {
        // Each statement writes before it reads: a deferred transaction whose first statement
        // only reads cannot upgrade its WAL snapshot once another connection has written, and
        // SQLite fails it at once with "database is locked" instead of waiting for the busy
        // timeout (https://sqlite.org/isolation.html).
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE conversations SET changed_at = ? WHERE id = ?")
            .bind(unix_now() as i64)
            .bind(conversation)
            .execute(&mut *tx)
            .await?;
        for entry in entries {
            sqlx::query(
                "INSERT INTO conversation_entries (conversation_id, seq, entry) \
                 SELECT ?1, COALESCE(MAX(seq), 0) + 1, ?2 FROM conversation_entries WHERE conversation_id = ?1",
            )
            .bind(conversation)
            .bind(serde_json::to_string(entry)?)
            .execute(&mut *tx)
            .await?;
        }
        // Only the latest MAX_ENTRIES are kept (as Redis's LTRIM keeps them): a conversation's
        // history, someone's personal data, does not grow without end.
        sqlx::query(
            "DELETE FROM conversation_entries WHERE conversation_id = ?1 AND seq <= \
             (SELECT MAX(seq) FROM conversation_entries WHERE conversation_id = ?1) - ?2",
        )
        .bind(conversation)
        .bind(MAX_ENTRIES as i64)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The latest entries of a conversation, oldest first.
    pub async fn transcript(&self, conversation: &str, most: usize) -> anyhow::Result<Transcript> {
        let rows: Vec<String> = sqlx::query_scalar(
            "SELECT entry FROM (SELECT seq, entry FROM conversation_entries WHERE conversation_id = ? \
             ORDER BY seq DESC LIMIT ?) ORDER BY seq",
        )
        .bind(conversation)
        .bind(most.min(MAX_ENTRIES) as i64)
        .fetch_all(&self.pool)
        .await?;
        let entries = rows.iter().filter_map(|json| serde_json::from_str(json).ok()).collect();
        Ok(Transcript { entries })
    }

    pub async fn remember_idp_session(&self, sid: &str, session_id: &str) -> sqlx::Result<()> {
        sqlx::query("INSERT OR IGNORE INTO idp_sessions (sid, session_id, created_at) VALUES (?, ?, ?)")
            .bind(sid)
            .bind(session_id)
            .bind(unix_now() as i64)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Forgets conversations unchanged for a session's lifetime (with their entries) and the
    /// identity provider sessions of sessions that have expired by now: no session can reach
    /// them any more, and they are someone's personal data. Redis expires the same keys itself.
    pub async fn delete_stale(&self) -> sqlx::Result<u64> {
        let before = unix_now().saturating_sub(self.lifetime.as_secs()) as i64;
        let mut tx = self.pool.begin().await?;
        let conversations = sqlx::query("DELETE FROM conversations WHERE changed_at < ?")
            .bind(before)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query("DELETE FROM idp_sessions WHERE created_at < ?").bind(before).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(conversations)
    }

    /// The local session ids started from `sid`, forgotten as they are returned.
    pub async fn take_idp_sessions(&self, sid: &str) -> sqlx::Result<Vec<String>> {
        sqlx::query_scalar("DELETE FROM idp_sessions WHERE sid = ? RETURNING session_id")
            .bind(sid)
            .fetch_all(&self.pool)
            .await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const DAY: Duration = Duration::from_secs(24 * 3600);

    /// The file holds every session's tokens: its owner's alone (SQLite would create it 0644).
    #[cfg(unix)]
    #[tokio::test]
    async fn the_session_database_is_readable_by_its_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let store = Sqlite::open(&dir.path().join("chat.db"), DAY).await.unwrap();
        store.create_conversation("oid").await.unwrap();
        for file in ["chat.db", "chat.db-wal"] {
            let mode = std::fs::metadata(dir.path().join(file)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{file}: {mode:o}");
        }
    }

    /// A user who never signs out left their conversation (and the map entry for front-channel
    /// logout) in SQLite for ever; Redis expired the same keys a session's lifetime after their
    /// last change. Now SQLite forgets them too, and a conversation still in use is kept.
    #[tokio::test]
    async fn conversations_unchanged_for_a_session_lifetime_are_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let store = Sqlite::open(&dir.path().join("chat.db"), DAY).await.unwrap();
        let (old, recent) =
            (store.create_conversation("a").await.unwrap(), store.create_conversation("b").await.unwrap());
        for conversation in [&old, &recent] {
            store.append(conversation, &[Entry::User { text: "hi".into() }]).await.unwrap();
        }
        store.remember_idp_session("old-sid", "s1").await.unwrap();
        store.remember_idp_session("new-sid", "s2").await.unwrap();
        let long_ago = unix_now() as i64 - 2 * DAY.as_secs() as i64;
        let age = |sql: &'static str, key: String| sqlx::query(sql).bind(long_ago).bind(key).execute(&store.pool);
        age("UPDATE conversations SET created_at = ?1, changed_at = ?1 WHERE id = ?2", old.clone()).await.unwrap();
        age("UPDATE conversations SET created_at = ?1, changed_at = ?1 WHERE id = ?2", recent.clone()).await.unwrap();
        age("UPDATE idp_sessions SET created_at = ?1 WHERE sid = ?2", "old-sid".into()).await.unwrap();
        // `recent` was created long ago but changed since: it stays.
        store.append(&recent, &[Entry::User { text: "still here".into() }]).await.unwrap();

        assert_eq!(store.delete_stale().await.unwrap(), 1);
        assert_eq!(store.owner(&old).await.unwrap(), None);
        assert_eq!(store.owner(&recent).await.unwrap().as_deref(), Some("b"));
        let entries: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM conversation_entries WHERE conversation_id = ?")
            .bind(&old)
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(entries, 0, "the entries go with their conversation");
        assert_eq!(store.transcript(&recent, 10).await.unwrap().entries.len(), 2);
        assert!(store.take_idp_sessions("old-sid").await.unwrap().is_empty());
        assert_eq!(store.take_idp_sessions("new-sid").await.unwrap(), ["s2"]);
    }

    /// Found by `cargo xtask soak`: under parallel turns, appends failed at once with "database is
    /// locked" (a 500 from /api/chat/send, a turn never saved). A deferred transaction that reads
    /// first and then writes cannot upgrade its WAL read snapshot once another connection has
    /// committed, and SQLite answers SQLITE_BUSY without waiting for the busy timeout
    /// (https://sqlite.org/isolation.html, https://sqlite.org/lang_transaction.html: "BEGIN
    /// IMMEDIATE ... start a write transaction immediately"; a first statement that writes does the
    /// same).
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn parallel_appends_to_different_conversations_all_succeed() {
        let dir = tempfile::tempdir().unwrap();
        let store = Sqlite::open(&dir.path().join("chat.db"), DAY).await.unwrap();
        let mut conversations = Vec::new();
        for _ in 0..8 {
            conversations.push(store.create_conversation("oid").await.unwrap());
        }
        let mut tasks = tokio::task::JoinSet::new();
        for conversation in conversations.clone() {
            let store = store.clone();
            tasks.spawn(async move {
                for i in 0..25 {
                    store.append(&conversation, &[Entry::User { text: format!("{i}") }]).await?;
                }
                anyhow::Ok(())
            });
        }
        while let Some(done) = tasks.join_next().await {
            done.unwrap().unwrap();
        }
        for conversation in conversations {
            assert_eq!(store.transcript(&conversation, MAX_ENTRIES).await.unwrap().entries.len(), 25);
        }
    }

    /// A page reads only the latest entries it shows, in order; at most `MAX_ENTRIES` are kept.
    #[tokio::test]
    async fn a_transcript_is_the_latest_entries_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        let store = Sqlite::open(&dir.path().join("chat.db"), DAY).await.unwrap();
        let conversation = store.create_conversation("oid").await.unwrap();
        let entries: Vec<Entry> = (0..MAX_ENTRIES + 10).map(|i| Entry::User { text: i.to_string() }).collect();
        store.append(&conversation, &entries).await.unwrap();
        let texts = |t: Transcript| -> Vec<String> {
            t.entries
                .into_iter()
                .map(|e| match e {
                    Entry::User { text } => text,
                    other => panic!("{other:?}"),
                })
                .collect()
        };
        let page = texts(store.transcript(&conversation, 3).await.unwrap());
        let last = MAX_ENTRIES + 9;
        assert_eq!(page, [(last - 2).to_string(), (last - 1).to_string(), last.to_string()]);
        let all = texts(store.transcript(&conversation, MAX_ENTRIES + 100).await.unwrap());
        assert_eq!(all.len(), MAX_ENTRIES);
        assert_eq!(all.last().map(String::as_str), Some(last.to_string().as_str()));
        // Kept, not only read: the older rows are gone from the file.
        store.append(&conversation, &[Entry::User { text: "one more".into() }]).await.unwrap();
        let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM conversation_entries WHERE conversation_id = ?")
            .bind(&conversation)
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(stored, MAX_ENTRIES as i64);
    }
}
