//! Order queries. Every one is scoped by [`Visibility`]: a user's query cannot reach another
//! user's rows, because the owner is part of the `WHERE` clause, not a check afterwards.

use rusqlite::OptionalExtension;
use sqlx::{FromRow, QueryBuilder, Sqlite};

use crate::database::{Database, ReadError};
use crate::domain::{
    Cursor, IdempotencyKey, NewOrder, Order, OrderId, OrderPage, OrderStatus, PageLimit, User, Visibility,
    timestamp_now,
};

macro_rules! columns {
    () => {
        "seq, owner_oid, customer_name, product, quantity, status, created_at, updated_at"
    };
}
const COLUMNS: &str = columns!();
/// One order, if `owner_oid` owns it (the owner check is part of the read, not a second query).
/// Public for the point-read benchmark's floor, which runs this very statement.
pub const GET_OWNED: &str = concat!("SELECT ", columns!(), " FROM orders WHERE seq = ?1 AND owner_oid = ?2");
const GET_ANY: &str = concat!("SELECT ", columns!(), " FROM orders WHERE seq = ?1");

#[derive(Clone)]
pub struct OrderStore {
    db: Database,
}

/// Why the store could not answer (the cause is for the log).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error(transparent)]
    Write(#[from] sqlx::Error),
}

/// What a create did.
#[derive(Debug)]
pub enum Created {
    New(Order),
    /// A retry with the same `Idempotency-Key` and request: the first response, again.
    Replayed(Order),
    /// The key was used before for a different request.
    KeyReused,
}

#[derive(Debug)]
pub enum Cancelled {
    Done(Order),
    NotFound,
    NotCancellable(OrderStatus),
}

#[derive(FromRow)]
struct OrderRow {
    seq: i64,
    owner_oid: String,
    customer_name: String,
    product: String,
    quantity: i64,
    status: String,
    created_at: String,
    updated_at: String,
}

/// An order from a row of [`COLUMNS`] as rusqlite reads it (reads; what a write returns comes
/// through sqlx, as an [`OrderRow`]).
fn read_order(row: &rusqlite::Row<'_>) -> rusqlite::Result<Order> {
    let status: String = row.get(5)?;
    Ok(Order {
        id: OrderId::from_seq(row.get(0)?),
        owner_oid: row.get(1)?,
        customer_name: row.get(2)?,
        product: row.get(3)?,
        quantity: row.get(4)?,
        status: status
            .parse()
            .map_err(|e| rusqlite::Error::FromSqlConversionFailure(5, rusqlite::types::Type::Text, Box::new(e)))?,
        created_at: row.get(6)?,
        updated_at: row.get(7)?,
    })
}

impl TryFrom<OrderRow> for Order {
    type Error = sqlx::Error;

    fn try_from(row: OrderRow) -> Result<Self, Self::Error> {
        Ok(Order {
            id: OrderId::from_seq(row.seq),
            owner_oid: row.owner_oid,
            customer_name: row.customer_name,
            product: row.product,
            quantity: row.quantity,
            status: row.status.parse().map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

/// Up to `rows` orders after `after`, in order, of `owner` and in `status` where given.
fn list_rows(
    c: &rusqlite::Connection,
    after: i64,
    owner: Option<&str>,
    status: Option<OrderStatus>,
    rows: i64,
) -> rusqlite::Result<Vec<Order>> {
    macro_rules! list {
        ($filters:literal) => {
            concat!("SELECT ", columns!(), " FROM orders WHERE seq > ?1", $filters, " ORDER BY seq LIMIT ?4")
        };
    }
    // A filter that does not apply is left out of the text rather than matched as a wildcard, so
    // SQLite picks the index for the ones that do; its parameter is still bound (SQLite numbers
    // parameters up to the highest `?N` in the text).
    let sql = match (owner.is_some(), status.is_some()) {
        (false, false) => list!(""),
        (true, false) => list!(" AND owner_oid = ?2"),
        (false, true) => list!(" AND status = ?3"),
        (true, true) => list!(" AND owner_oid = ?2 AND status = ?3"),
    };
    c.prepare_cached(sql)?.query_map((after, owner, status.map(OrderStatus::as_str), rows), read_order)?.collect()
}

/// `AND owner_oid = ?` for a user, nothing for an admin.
fn push_visibility(query: &mut QueryBuilder<'_, Sqlite>, visibility: Visibility<'_>) {
    if let Visibility::Owner(oid) = visibility {
        query.push(" AND owner_oid = ").push_bind(oid.to_string());
    }
}

impl OrderStore {
    pub fn new(db: Database) -> Self {
        OrderStore { db }
    }

    #[tracing::instrument(name = "store.list", skip_all, fields(visibility = ?visibility, status = ?status, limit = limit.get()))]
    pub async fn list(
        &self,
        visibility: Visibility<'_>,
        status: Option<OrderStatus>,
        limit: PageLimit,
        cursor: Option<Cursor>,
    ) -> Result<OrderPage, StoreError> {
        let after = cursor.map_or(0, |c| c.last_seen().seq());
        // One extra row tells whether another page follows.
        let rows = i64::from(limit.get()) + 1;
        let orders = match visibility {
            // An owner's rows come from an index, as do an administrator's unfiltered ones (a
            // range of the table's key): a bounded read, on this thread.
            Visibility::Owner(oid) => self.db.read(|c| list_rows(c, after, Some(oid), status, rows)).await,
            Visibility::All if status.is_none() => self.db.read(|c| list_rows(c, after, None, None, rows)).await,
            // Filtered by status, an administrator's listing may walk the whole table.
            Visibility::All => self.db.scan(move |c| list_rows(c, after, None, status, rows)).await,
        };
        let mut orders = orders?;
        let more = orders.len() > limit.get() as usize;
        orders.truncate(limit.get() as usize);
        let next_cursor = if more { orders.last().map(|o| Cursor::after(o.id).encode()) } else { None };
        Ok(OrderPage { orders, next_cursor })
    }

    #[tracing::instrument(name = "store.get", skip_all, fields(order = %id, visibility = ?visibility))]
    pub async fn get(&self, id: OrderId, visibility: Visibility<'_>) -> Result<Option<Order>, StoreError> {
        // Fixed statements: the hottest query, and its text (the key of each connection's
        // prepared statement cache) is not formatted per call.
        let order = self
            .db
            .read(|c| {
                match visibility {
                    Visibility::Owner(oid) => c.prepare_cached(GET_OWNED)?.query_row((id.seq(), oid), read_order),
                    Visibility::All => c.prepare_cached(GET_ANY)?.query_row((id.seq(),), read_order),
                }
                .optional()
            })
            .await?;
        Ok(order)
    }

    /// Creates an order for `user`. With a key, the check for an earlier use and the insert
    /// happen in one write transaction, so concurrent retries create exactly one order.
    #[tracing::instrument(name = "store.create", skip_all, fields(idempotency_key = key.is_some()))]
    pub async fn create(
        &self,
        user: &User,
        order: &NewOrder,
        key: Option<&IdempotencyKey>,
    ) -> Result<Created, StoreError> {
        let fingerprint = order.fingerprint();
        // IMMEDIATE takes the write lock up front: no read-then-upgrade race with another process.
        let mut tx = self.db.writer().begin_with("BEGIN IMMEDIATE").await?;
        if let Some(key) = key {
            let earlier: Option<(String, String)> =
                sqlx::query_as("SELECT fingerprint, response FROM idempotency_keys WHERE owner_oid = ?1 AND key = ?2")
                    .bind(&user.oid)
                    .bind(key.as_str())
                    .fetch_optional(&mut *tx)
                    .await?;
            if let Some((earlier_fingerprint, response)) = earlier {
                if earlier_fingerprint != fingerprint {
                    return Ok(Created::KeyReused);
                }
                let first: Order = serde_json::from_str(&response).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
                return Ok(Created::Replayed(first));
            }
        }
        let now = timestamp_now();
        let row: OrderRow = sqlx::query_as(&format!(
            "INSERT INTO orders (owner_oid, customer_name, product, quantity, status, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, 'pending', ?5, ?5) RETURNING {COLUMNS}"
        ))
        .bind(&user.oid)
        .bind(&user.name)
        .bind(order.product.as_str())
        .bind(order.quantity.get())
        .bind(&now)
        .fetch_one(&mut *tx)
        .await?;
        let created = Order::try_from(row)?;
        if let Some(key) = key {
            let response = serde_json::to_string(&created).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
            sqlx::query(
                "INSERT INTO idempotency_keys (owner_oid, key, fingerprint, response, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .bind(&user.oid)
            .bind(key.as_str())
            .bind(&fingerprint)
            .bind(response)
            .bind(&now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(Created::New(created))
    }

    #[tracing::instrument(name = "store.cancel", skip_all, fields(order = %id, visibility = ?visibility))]
    pub async fn cancel(&self, id: OrderId, visibility: Visibility<'_>) -> Result<Cancelled, StoreError> {
        let mut tx = self.db.writer().begin_with("BEGIN IMMEDIATE").await?;
        let mut query = QueryBuilder::new("SELECT status FROM orders WHERE seq = ");
        query.push_bind(id.seq());
        push_visibility(&mut query, visibility);
        let status: Option<(String,)> = query.build_query_as().fetch_optional(&mut *tx).await?;
        let Some((status,)) = status else {
            return Ok(Cancelled::NotFound);
        };
        let status: OrderStatus = status.parse().map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
        if !status.is_cancellable() {
            return Ok(Cancelled::NotCancellable(status));
        }
        let row: OrderRow = sqlx::query_as(&format!(
            "UPDATE orders SET status = 'cancelled', updated_at = ?1 WHERE seq = ?2 RETURNING {COLUMNS}"
        ))
        .bind(timestamp_now())
        .bind(id.seq())
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Cancelled::Done(Order::try_from(row)?))
    }

    /// Deletes any user's order (callers are admins); `false` if there was none.
    #[tracing::instrument(name = "store.delete", skip_all, fields(order = %id))]
    pub async fn delete(&self, id: OrderId) -> Result<bool, StoreError> {
        let result = sqlx::query("DELETE FROM orders WHERE seq = ?1").bind(id.seq()).execute(self.db.writer()).await?;
        Ok(result.rows_affected() > 0)
    }
}
