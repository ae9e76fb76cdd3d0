//! The read connections: read-only SQLite connections, each used by one read at a time, on the
//! thread that asks.
//!
//! sqlx runs every SQLite connection on a thread of its own and hands it each statement over a
//! channel: a read is a round trip between threads, and under load those wake-ups were most of
//! orders-api's CPU (the full path's orders-api 59 → 33 µs per call when reads moved here, in
//! a paired run; the criterion rows `orders-api/point_read_*` show one read). Reads are
//! therefore made with rusqlite, on the same SQLite library as sqlx's (one `libsqlite3-sys`):
//! SQLite's C API is synchronous, and a read by key takes a few microseconds, less than the
//! round trip it replaces, so it runs on the request's own task. Writes, migrations and the
//! seed stay on sqlx's writer connection.
//!
//! Such a read must not wait for a lock on a tokio worker. In WAL mode readers do not wait for
//! the writer, and these connections' busy timeout is zero, so whatever would make them wait
//! (another process holding the file exclusively, WAL recovery after a crash) answers
//! `SQLITE_BUSY` at once; [`Readers::read`] then tries again after a pause, as SQLite's own
//! busy handler would, without holding the thread. (SQLite itself may still sleep a few
//! microseconds to milliseconds while a WAL read lock is contended, `walTryBeginRead`; rare.)

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags};
use tokio::sync::Semaphore;

/// Why a read failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("the database is closed")]
    Closed,
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    #[error("the read's thread failed: {0}")]
    Thread(#[from] tokio::task::JoinError),
}

impl ReadError {
    /// SQLite's result code, if SQLite failed.
    pub fn sqlite_code(&self) -> Option<i32> {
        match self {
            ReadError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => Some(e.extended_code),
            _ => None,
        }
    }

    /// Another connection holds a lock this read would have to wait for.
    fn is_busy(&self) -> bool {
        matches!(self, ReadError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) if e.code == ErrorCode::DatabaseBusy)
    }
}

/// The pauses between a busy read's tries, then the last one repeated: SQLite's own busy
/// handler's (`sqliteDefaultBusyCallback` in its main.c).
const BUSY_PAUSES_MS: [u64; 12] = [1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, 100];

/// What a read does when another connection holds a lock it needs.
#[derive(Debug, Clone, Copy)]
enum Wait {
    /// Answer `SQLITE_BUSY` at once (a read on a request's task).
    Never,
    /// Wait up to the busy timeout in SQLite's own handler (a read on a blocking thread).
    Blocking,
}

/// Reads on blocking threads at once; more wait their turn. tokio's blocking pool would run
/// hundreds, each on a connection (and page cache) of its own.
const SCANS: usize = 4;

pub struct Readers {
    path: PathBuf,
    busy_timeout: Duration,
    /// One permit per scan running; held by the blocking job itself, so a scan whose caller
    /// went away still counts until it ends.
    scans: Arc<Semaphore>,
    /// Connections not in use, `None` once closed. No more exist than threads have read at
    /// once: a connection is taken and given back within one synchronous call.
    idle: Mutex<Option<Vec<Connection>>>,
}

impl Readers {
    /// Opens one connection now, so a file this process cannot read fails at start.
    /// `busy_timeout`: how long a read waits for another connection's lock before failing.
    pub fn open(path: &Path, busy_timeout: Duration) -> Result<Readers, ReadError> {
        let first = connect(path)?;
        Ok(Readers {
            path: path.to_path_buf(),
            busy_timeout,
            scans: Arc::new(Semaphore::new(SCANS)),
            idle: Mutex::new(Some(vec![first])),
        })
    }

    /// Runs `read` on this thread; were the file locked, again after a pause, until the busy
    /// timeout has passed.
    pub async fn read<T>(&self, read: impl Fn(&Connection) -> rusqlite::Result<T>) -> Result<T, ReadError> {
        let mut waited = Duration::ZERO;
        let mut pauses = BUSY_PAUSES_MS.iter().copied().map(Duration::from_millis);
        loop {
            match self.with(Wait::Never, &read) {
                Err(e) if e.is_busy() && waited < self.busy_timeout => {}
                result => return result,
            }
            let pause = pauses.next().unwrap_or(Duration::from_millis(100));
            tokio::time::sleep(pause).await;
            waited += pause;
        }
    }

    /// Runs `read` on a blocking thread, waiting for another's lock in SQLite's handler.
    pub async fn scan<T: Send + 'static>(
        self: &Arc<Self>,
        read: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, ReadError> {
        let permit = Arc::clone(&self.scans).acquire_owned().await.map_err(|_| ReadError::Closed)?;
        let readers = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            readers.with(Wait::Blocking, read)
        })
        .await?
    }

    /// Runs `read` once on an idle connection (a new one if none is), on this thread.
    fn with<T>(&self, wait: Wait, read: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T, ReadError> {
        let idle = self.idle().as_mut().ok_or(ReadError::Closed)?.pop();
        let connection = match idle {
            Some(connection) => connection,
            None => connect(&self.path)?,
        };
        let result = match wait {
            Wait::Never => read(&connection),
            Wait::Blocking => {
                let result = connection.busy_timeout(self.busy_timeout).and_then(|()| read(&connection));
                // Whatever the outcome (a connection that met a lock is kept), it may serve a
                // request's task next, where it must not wait.
                connection.busy_timeout(Duration::ZERO).and(result)
            }
        };
        let result = result.map_err(ReadError::from);
        // A connection whose read failed is closed, not lent again: a fresh one is the safe
        // choice (SQLite resets a statement whose rows were not all read, so a plain early
        // return is not a failure). One that met a lock is fine, and reopening it on every
        // try would parse the schema each time. After `close`, it is closed too.
        let keep = result.as_ref().err().is_none_or(ReadError::is_busy);
        if keep && let Some(idle) = self.idle().as_mut() {
            idle.push(connection);
        }
        result
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Option<Vec<Connection>>> {
        self.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Closes the idle connections and refuses new reads and scans; a read still running
    /// closes its connection when it ends.
    pub fn close(&self) {
        self.scans.close();
        drop(self.idle().take());
    }
}

fn connect(path: &Path) -> rusqlite::Result<Connection> {
    // NO_MUTEX: SQLite's per-connection mutex guards against concurrent use, which `Readers`
    // already rules out (a connection is in one thread's hands at a time).
    let connection =
        Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
    // rusqlite sets a 5 s busy timeout on every connection it opens; these must not wait.
    connection.busy_timeout(Duration::ZERO)?;
    Ok(connection)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// A file in SQLite's rollback-journal mode, where a writer's `EXCLUSIVE` transaction locks
    /// readers out (orders-api's file is in WAL mode, where only another process's exclusive
    /// locking mode or WAL recovery after a crash does): the lock a read may meet, made at will.
    fn locked_file(dir: &Path) -> (PathBuf, Connection) {
        let path = dir.join("locked.db");
        let locker = Connection::open(&path).unwrap();
        locker.execute_batch("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (7); BEGIN EXCLUSIVE;").unwrap();
        (path, locker)
    }

    fn select(c: &Connection) -> rusqlite::Result<i64> {
        c.query_row("SELECT x FROM t", (), |r| r.get(0))
    }

    fn idle_connections(readers: &Readers) -> Option<usize> {
        readers.idle().as_ref().map(Vec::len)
    }

    /// SQLite's documented busy behaviour (https://sqlite.org/rescode.html#busy): a connection
    /// that meets another's lock answers SQLITE_BUSY, unless a busy handler waits. rusqlite gives
    /// every connection a 5 s handler; on a request's task that would stall every other request
    /// on the thread, so these have none.
    #[test]
    fn a_read_that_meets_a_lock_fails_busy_at_once_and_keeps_its_connection() {
        let dir = tempfile::tempdir().unwrap();
        let (path, locker) = locked_file(dir.path());
        locker.execute_batch("COMMIT").unwrap();
        let readers = Readers::open(&path, Duration::from_secs(10)).unwrap();
        assert_eq!(readers.with(Wait::Never, select).unwrap(), 7);
        locker.execute_batch("BEGIN EXCLUSIVE").unwrap();
        let started = std::time::Instant::now();
        let error = readers.with(Wait::Never, select).unwrap_err();
        assert!(error.is_busy(), "{error:?}");
        // A bound on behaviour (no busy handler ran), not a speed target: rusqlite's takes 5 s.
        assert!(started.elapsed() < Duration::from_secs(2), "the read waited {:?}", started.elapsed());
        assert_eq!(idle_connections(&readers), Some(1), "a connection that met a lock is still good");
        locker.execute_batch("COMMIT").unwrap();
        assert_eq!(readers.with(Wait::Never, select).unwrap(), 7);
        // Any other failure closes the connection rather than lending it again.
        assert!(readers.with(Wait::Never, |c| c.query_row("SELECT nope FROM t", (), |r| r.get::<_, i64>(0))).is_err());
        assert_eq!(idle_connections(&readers), Some(0));
    }

    /// The read waits for the lock as SQLite's handler would, but in pauses the task awaits: a
    /// task beside it on the same single thread keeps running meanwhile.
    #[tokio::test(flavor = "current_thread")]
    async fn a_busy_read_waits_for_the_lock_without_holding_the_thread() {
        let dir = tempfile::tempdir().unwrap();
        let (path, locker) = locked_file(dir.path());
        let readers = Readers::open(&path, Duration::from_secs(10)).unwrap();
        let ticks = Arc::new(AtomicUsize::new(0));
        let ticker = tokio::spawn({
            let ticks = Arc::clone(&ticks);
            async move {
                loop {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    ticks.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        let unlock = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            locker.execute_batch("COMMIT").unwrap();
        });
        assert_eq!(readers.read(select).await.unwrap(), 7);
        let ticked = ticks.load(Ordering::Relaxed);
        ticker.abort();
        unlock.join().unwrap();
        assert!(ticked >= 10, "the thread was held while the read waited: {ticked} ticks in 300 ms");
    }

    /// A scan waits for the lock in SQLite's own handler, on its blocking thread.
    #[tokio::test]
    async fn a_scan_waits_for_the_lock_on_its_own_thread() {
        let dir = tempfile::tempdir().unwrap();
        let (path, locker) = locked_file(dir.path());
        let readers = Arc::new(Readers::open(&path, Duration::from_secs(10)).unwrap());
        let unlock = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            locker.execute_batch("COMMIT").unwrap();
        });
        assert_eq!(readers.scan(select).await.unwrap(), 7);
        unlock.join().unwrap();
    }

    /// Waiting stops at the busy timeout with SQLite's error; it does not hang.
    #[tokio::test]
    async fn reads_and_scans_give_up_at_the_busy_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _locker) = locked_file(dir.path());
        let readers = Arc::new(Readers::open(&path, Duration::from_millis(50)).unwrap());
        let outcomes = tokio::time::timeout(Duration::from_secs(10), async {
            (readers.read(select).await, readers.scan(select).await)
        });
        let (read, scan) = outcomes.await.expect("a read waited past its busy timeout");
        for error in [read.unwrap_err(), scan.unwrap_err()] {
            assert!(error.is_busy(), "{error:?}");
        }
        // The connection the scan kept waits no more, for the request's task it may serve next.
        let kept = readers.idle().as_mut().unwrap().pop().unwrap();
        let wait: i64 = kept.query_row("PRAGMA busy_timeout", (), |r| r.get(0)).unwrap();
        assert_eq!(wait, 0);
    }

    /// A scan whose caller went away (a client hung up) keeps its place in the limit until its
    /// blocking job ends: callers giving up cannot start more than `SCANS` at once, each on a
    /// connection of its own.
    #[tokio::test]
    async fn scans_whose_callers_gave_up_still_count_against_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let (path, locker) = locked_file(dir.path());
        let readers = Arc::new(Readers::open(&path, Duration::from_secs(2)).unwrap());
        for _ in 0..3 {
            let callers: Vec<_> = (0..SCANS * 2)
                .map(|_| {
                    let readers = Arc::clone(&readers);
                    tokio::spawn(async move { readers.scan(select).await })
                })
                .collect();
            tokio::time::sleep(Duration::from_millis(50)).await;
            callers.iter().for_each(tokio::task::JoinHandle::abort);
        }
        locker.execute_batch("COMMIT").unwrap();
        // Every scan that started ends once the lock is gone (SQLite's handler tries again
        // within 100 ms), giving its connection back: all the permits are free then, and the
        // pause lets scans that had not kept theirs end too, so they are counted.
        let scans = Arc::clone(&readers.scans);
        let _all = tokio::time::timeout(Duration::from_secs(10), scans.acquire_many(SCANS as u32)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let opened = idle_connections(&readers).unwrap();
        assert!(opened <= SCANS, "{opened} connections for at most {SCANS} scans at once");
    }

    #[tokio::test]
    async fn after_close_reads_and_scans_are_refused_and_no_connection_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let (path, locker) = locked_file(dir.path());
        locker.execute_batch("COMMIT").unwrap();
        let readers = Arc::new(Readers::open(&path, Duration::from_secs(1)).unwrap());
        readers.close();
        assert!(matches!(readers.read(select).await, Err(ReadError::Closed)));
        assert!(matches!(readers.scan(select).await, Err(ReadError::Closed)));
        assert!(readers.scans.is_closed(), "scans waiting their turn are refused at once");
        assert_eq!(idle_connections(&readers), None);
    }
}
