//! The demo orders: eight orders spread over alice and bob (ORD-001 … ORD-008 in a fresh
//! database), inserted once per database, and again only on `--reset`.

use entra_manifest::Manifest;
use sqlx::SqliteConnection;
use time::{Duration, OffsetDateTime};

use crate::database::Database;
use crate::domain::{OrderStatus, timestamp, timestamp_now};

/// The manifest users who own the demo orders.
pub const SEED_USERS: [&str; 2] = ["alice", "bob"];

/// A demo user, as the manifest defines them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedUser {
    /// The manifest name (`alice`).
    pub name: String,
    pub oid: String,
    pub display_name: String,
}

/// The [`SEED_USERS`] the manifest defines.
pub fn seed_users(manifest: &Manifest) -> Vec<SeedUser> {
    SEED_USERS
        .iter()
        .filter_map(|name| manifest.user(name))
        .map(|u| SeedUser { name: u.name.clone(), oid: u.oid.clone(), display_name: u.display_name.clone() })
        .collect()
}

struct SeedOrder {
    user: &'static str,
    product: &'static str,
    quantity: i64,
    status: OrderStatus,
    days_ago: i64,
}

const fn order(
    user: &'static str,
    product: &'static str,
    quantity: i64,
    status: OrderStatus,
    days_ago: i64,
) -> SeedOrder {
    SeedOrder { user, product, quantity, status, days_ago }
}

/// Every status appears, so both a successful cancel and a refused one can be shown.
const ORDERS: [SeedOrder; 8] = [
    order("alice", "Wireless mouse", 2, OrderStatus::Delivered, 30),
    order("alice", "Mechanical keyboard", 1, OrderStatus::Shipped, 12),
    order("bob", "27-inch monitor", 1, OrderStatus::Processing, 5),
    order("alice", "USB-C hub", 3, OrderStatus::Pending, 2),
    order("bob", "Laptop stand", 1, OrderStatus::Delivered, 20),
    order("bob", "Noise-cancelling headphones", 1, OrderStatus::Pending, 1),
    order("alice", "Webcam", 1, OrderStatus::Cancelled, 8),
    order("bob", "Ergonomic chair", 2, OrderStatus::Shipped, 3),
];

/// What seeding did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seeded {
    Inserted(usize),
    AlreadySeeded,
    /// No demo users are known (no identity manifest): nothing to seed.
    NoUsers,
}

impl std::fmt::Display for Seeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Seeded::Inserted(n) => write!(f, "{n} demo orders seeded"),
            Seeded::AlreadySeeded => f.write_str("the demo orders were seeded before"),
            Seeded::NoUsers => f.write_str("no demo users in the identity manifest: no demo orders seeded"),
        }
    }
}

/// Inserts the demo orders unless this database was seeded before.
pub async fn seed(db: &Database, users: &[SeedUser]) -> Result<Seeded, sqlx::Error> {
    let mut tx = db.writer().begin_with("BEGIN IMMEDIATE").await?;
    let seeded = seed_in(&mut tx, users).await?;
    tx.commit().await?;
    Ok(seeded)
}

/// Removes every order and idempotency key, restarts ids at ORD-001, and seeds again.
pub async fn reset(db: &Database, users: &[SeedUser]) -> Result<Seeded, sqlx::Error> {
    let mut tx = db.writer().begin_with("BEGIN IMMEDIATE").await?;
    for statement in [
        "DELETE FROM orders",
        "DELETE FROM idempotency_keys",
        "DELETE FROM sqlite_sequence WHERE name = 'orders'",
        "DELETE FROM meta WHERE key = 'seeded_at'",
    ] {
        sqlx::query(statement).execute(&mut *tx).await?;
    }
    let seeded = seed_in(&mut tx, users).await?;
    tx.commit().await?;
    Ok(seeded)
}

async fn seed_in(conn: &mut SqliteConnection, users: &[SeedUser]) -> Result<Seeded, sqlx::Error> {
    if users.is_empty() {
        return Ok(Seeded::NoUsers);
    }
    let now = OffsetDateTime::now_utc();
    let first = sqlx::query("INSERT INTO meta (key, value) VALUES ('seeded_at', ?1) ON CONFLICT (key) DO NOTHING")
        .bind(timestamp_now())
        .execute(&mut *conn)
        .await?;
    if first.rows_affected() == 0 {
        return Ok(Seeded::AlreadySeeded);
    }
    let mut inserted = 0;
    for seed in &ORDERS {
        let Some(user) = users.iter().find(|u| u.name == seed.user) else { continue };
        let at = timestamp(now - Duration::days(seed.days_ago));
        sqlx::query(
            "INSERT INTO orders (owner_oid, customer_name, product, quantity, status, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
        )
        .bind(&user.oid)
        .bind(&user.display_name)
        .bind(seed.product)
        .bind(seed.quantity)
        .bind(seed.status.as_str())
        .bind(&at)
        .execute(&mut *conn)
        .await?;
        inserted += 1;
    }
    Ok(Seeded::Inserted(inserted))
}
