//! The read connections: a few read-only SQLite connections, each lent to one query at a time.
//!
//! sqlx runs every SQLite connection on its own thread and hands it each statement over a
//! channel, so a query is a round trip between threads. sqlx's pool adds a second one: a
//! connection going back to the pool is first pinged on its thread (from a task spawned for it),
//! to catch a connection left mid-transaction by a cancelled query. Read-only connections used
//! only for single autocommit `SELECT`s have nothing to catch: sqlx resets a statement whose
//! rows were not all read, and a connection runs its statements in order. So a connection comes
//! back here as soon as its query is done, and a point read costs one round trip.

use std::ops::{Deref, DerefMut};
use std::sync::Mutex;

use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{ConnectOptions, Connection};
use tokio::sync::{Semaphore, SemaphorePermit};

pub struct Readers {
    options: SqliteConnectOptions,
    /// Connections not lent out; at most `max` exist, opened as needed.
    idle: Mutex<Vec<SqliteConnection>>,
    /// One permit per connection that may exist; closed when the database closes.
    permits: Semaphore,
}

/// A connection lent to one query; it goes back when dropped.
pub struct Reader<'a> {
    connection: Option<SqliteConnection>,
    readers: &'a Readers,
    _permit: SemaphorePermit<'a>,
}

impl Readers {
    /// `options` must open the file read-only.
    pub fn new(options: SqliteConnectOptions, max: usize) -> Readers {
        Readers { options, idle: Mutex::new(Vec::with_capacity(max)), permits: Semaphore::new(max) }
    }

    /// An idle connection, or a new one while fewer than `max` exist; otherwise waits for one.
    pub async fn acquire(&self) -> Result<Reader<'_>, sqlx::Error> {
        let permit = self.permits.acquire().await.map_err(|_| sqlx::Error::PoolClosed)?;
        let idle = self.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).pop();
        let connection = match idle {
            Some(connection) => connection,
            None => self.options.connect().await?,
        };
        Ok(Reader { connection: Some(connection), readers: self, _permit: permit })
    }

    /// Closes the idle connections and refuses new queries; a connection still lent out closes
    /// when its query ends.
    pub async fn close(&self) {
        self.permits.close();
        let idle = std::mem::take(&mut *self.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner()));
        for connection in idle {
            let _ = connection.close().await;
        }
    }
}

impl Reader<'_> {
    /// Closes this connection instead of lending it again: after a failed query, a fresh one is
    /// the safe choice (it is opened when next needed).
    pub fn discard(&mut self) {
        self.connection.take();
    }
}

impl Deref for Reader<'_> {
    type Target = SqliteConnection;

    fn deref(&self) -> &SqliteConnection {
        self.connection.as_ref().unwrap_or_else(|| unreachable!("a connection is present until discarded"))
    }
}

impl DerefMut for Reader<'_> {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        self.connection.as_mut().unwrap_or_else(|| unreachable!("a connection is present until discarded"))
    }
}

impl Drop for Reader<'_> {
    fn drop(&mut self) {
        let Some(connection) = self.connection.take() else { return };
        // After `close`, dropping the connection ends its thread, which closes the file.
        if !self.readers.permits.is_closed() {
            self.readers.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(connection);
        }
    }
}
