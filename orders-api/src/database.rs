//! The SQLite file: opening it safely, migrating it, and telling whether it is usable.
//!
//! One writer connection (sqlx) serialises every write in this process, so writers never
//! contend with each other; WAL lets readers (read-only connections used on the request's own
//! thread, [`readers`]) run alongside it; and any other process's lock (a `--reset` run,
//! `sqlite3` in a terminal) is a short wait rather than a `database is locked` error.
//!
//! At start the file must open, migrate, and accept a write (a probe recording the start
//! time), or [`Database::open`] fails naming the file and the cause: corrupt, read-only,
//! unreadable. While running, [`Database::check_ready`] re-checks the file from scratch, as a
//! restarted process would see it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rusqlite::OptionalExtension;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection};

use crate::domain::timestamp_now;

mod readers;

pub use readers::ReadError;
use readers::Readers;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// How long a statement waits for another connection's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
#[derive(Clone)]
pub struct Database {
    path: PathBuf,
    readers: Arc<Readers>,
    writer: SqlitePool,
}

/// Why the database cannot be used, naming the file.
#[derive(Debug, thiserror::Error)]
#[error("the order database {path} {problem}: {cause}")]
pub struct DatabaseError {
    pub path: PathBuf,
    pub problem: DatabaseProblem,
    pub cause: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseProblem {
    CannotCreateDirectory,
    CannotOpen,
    Corrupt,
    ReadOnly,
    CannotMigrate,
}

impl std::fmt::Display for DatabaseProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DatabaseProblem::CannotCreateDirectory => "cannot be created (its directory cannot be made)",
            DatabaseProblem::CannotOpen => "cannot be opened",
            DatabaseProblem::Corrupt => "is corrupt or not a SQLite database",
            DatabaseProblem::ReadOnly => "is read-only (this process cannot write it)",
            DatabaseProblem::CannotMigrate => "cannot be migrated",
        })
    }
}

impl Database {
    /// Opens (creating if missing) and migrates the database, and checks it accepts writes.
    pub async fn open(path: &Path) -> Result<Database, DatabaseError> {
        let fail = |problem: DatabaseProblem, cause: String| DatabaseError { path: path.to_path_buf(), problem, cause };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| fail(DatabaseProblem::CannotCreateDirectory, e.to_string()))?;
        }
        // Orders are personal data: a new file is the service user's alone.
        service_kit::private_file::create(path).map_err(|e| fail(DatabaseProblem::CannotOpen, e.to_string()))?;
        let options = SqliteConnectOptions::new().filename(path).busy_timeout(BUSY_TIMEOUT).foreign_keys(true);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            .test_before_acquire(false)
            .connect_with(
                options
                    .clone()
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal),
            )
            .await
            .map_err(|e| classify(path, DatabaseProblem::CannotOpen, &e))?;
        MIGRATOR.run(&writer).await.map_err(|e| classify(path, DatabaseProblem::CannotMigrate, &e.into()))?;
        // The write probe: a file that opens and migrates (nothing to do) may still refuse writes.
        sqlx::query(
            "INSERT INTO meta (key, value) VALUES ('last_started_at', ?1)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(timestamp_now())
        .execute(&writer)
        .await
        .map_err(|e| classify(path, DatabaseProblem::CannotOpen, &e))?;
        // Opened now, so a file this process may write but not read fails here, not later.
        let readers = Readers::open(path, BUSY_TIMEOUT).map_err(|e| DatabaseError {
            path: path.to_path_buf(),
            problem: problem(e.sqlite_code(), DatabaseProblem::CannotOpen),
            cause: e.to_string(),
        })?;
        Ok(Database { path: path.to_path_buf(), readers: Arc::new(readers), writer })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A read that takes microseconds (rows found by key, a bounded number of them), run on a
    /// read-only connection on this task's thread. Were the file locked, it is tried again
    /// after a pause, up to the busy timeout.
    pub async fn read<T>(&self, read: impl Fn(&rusqlite::Connection) -> rusqlite::Result<T>) -> Result<T, ReadError> {
        self.readers.read(read).await
    }

    /// A read whose cost grows with the table (a filter no index serves), run on a blocking
    /// thread so no request's task waits for it.
    pub async fn scan<T: Send + 'static>(
        &self,
        read: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, ReadError> {
        self.readers.scan(read).await
    }

    /// The single connection every write goes through.
    pub fn writer(&self) -> &SqlitePool {
        &self.writer
    }

    /// Whether the database is usable now; `Err` says why not (without the path, for clients).
    pub async fn check_ready(&self) -> Result<(), String> {
        let query = "SELECT seq FROM orders ORDER BY seq LIMIT 1";
        // First the file as a restart would find it: pooled connections may still hold a file
        // that was replaced, or answer from pages cached before it went bad.
        let fresh = SqliteConnectOptions::new().filename(&self.path).read_only(true).busy_timeout(BUSY_TIMEOUT);
        let mut conn = fresh.connect().await.map_err(|e| format!("the database file cannot be opened: {e}"))?;
        let read = sqlx::query(query).fetch_optional(&mut conn).await;
        let _ = conn.close().await;
        read.map_err(|e| format!("the database file cannot be read: {e}"))?;
        // SQLite opens a file it may not write read-only without complaint; writes fail later.
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || writable(&path))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("the database file is not writable: {e}"))?;
        // Then the service's own connections.
        self.read(|c| c.query_row(query, (), |_| Ok(())).optional())
            .await
            .map_err(|e| format!("the read connections fail: {e}"))?;
        Ok(())
    }

    /// Closes every connection, checkpointing the WAL into the file (unless a scan still
    /// running holds a read connection: then SQLite replays the WAL at the next open).
    pub async fn close(&self) {
        self.readers.close();
        self.writer.close().await;
    }
}

/// Whether this process may write the file, asked of the kernel (`access(2)`), never by opening
/// it: closing a descriptor of a file releases every POSIX lock the process holds on it, its
/// SQLite connections' too ("How To Corrupt An SQLite Database File", §2.2), and another
/// process closing its connection could then take the file for its own and delete the WAL the
/// service is still writing to. (SQLite avoids this for descriptors it opens itself, by keeping
/// them: so a fresh SQLite connection would reuse a writable one and not notice either.)
#[cfg(unix)]
fn writable(path: &Path) -> std::io::Result<()> {
    rustix::fs::access(path, rustix::fs::Access::WRITE_OK).map_err(std::io::Error::from)
}

#[cfg(not(unix))]
fn writable(path: &Path) -> std::io::Result<()> {
    if std::fs::metadata(path)?.permissions().readonly() {
        return Err(std::io::Error::new(std::io::ErrorKind::PermissionDenied, "the file is read-only"));
    }
    Ok(())
}

fn classify(path: &Path, default: DatabaseProblem, error: &sqlx::Error) -> DatabaseError {
    DatabaseError { path: path.to_path_buf(), problem: problem(sqlite_code(error), default), cause: error.to_string() }
}

/// Names the problem from SQLite's result code, falling back to `default`.
fn problem(code: Option<i32>, default: DatabaseProblem) -> DatabaseProblem {
    // Primary result codes: https://sqlite.org/rescode.html
    match code.map(|c| c & 0xff) {
        Some(8) => DatabaseProblem::ReadOnly,
        Some(11 | 26) => DatabaseProblem::Corrupt,
        _ => default,
    }
}

fn sqlite_code(error: &sqlx::Error) -> Option<i32> {
    match error {
        sqlx::Error::Database(e) => e.code()?.parse().ok(),
        sqlx::Error::Migrate(m) => match m.as_ref() {
            sqlx::migrate::MigrateError::Execute(e) | sqlx::migrate::MigrateError::ExecuteMigration(e, _) => {
                sqlite_code(e)
            }
            _ => None,
        },
        _ => None,
    }
}
