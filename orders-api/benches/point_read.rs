//! One order read by id: as orders-api reads it, through sqlx, and at its floor.
//!
//! orders-api reads with rusqlite on the request's own thread (`database/readers.rs`): the
//! statement prepared once per connection, a connection taken from and given back to a list
//! under a mutex, the row decoded into an `Order`. sqlx, which it used before and still writes
//! with, runs each SQLite connection on a thread of its own: the statement goes to that thread
//! over a channel and the row comes back over another, so a read wakes two threads; under the
//! full-path load (`full_path` bench) those wake-ups were most of orders-api's CPU per call.
//! The floor is the same statement on the same file on the calling thread, with nothing around
//! it: what SQLite itself costs.
//!
//! Run: `cargo xtask bench` (or `cargo bench -p orders-api --bench point_read`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark that cannot set up should stop

use criterion::{Criterion, criterion_group, criterion_main};
use orders_api::database::Database;
use orders_api::domain::{NewOrder, OrderId, User};
use orders_api::store::{Created, GET_OWNED, OrderStore};
use sqlx::ConnectOptions;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A row of `GET_OWNED` as owned values, as the service decodes it: seq, owner_oid,
/// customer_name, product, quantity, status, created_at, updated_at.
type Row = (i64, String, String, String, i64, String, String, String);

fn point_read(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("orders.db");
    let user = User { oid: "bench-oid".into(), name: "Bench User".into(), admin: false };
    let db = rt.block_on(Database::open(&path)).unwrap();
    let store = OrderStore::new(db.clone());
    let order = NewOrder::parse("Keyboard", 2).unwrap();
    let Created::New(order) = rt.block_on(store.create(&user, &order, None)).unwrap() else { unreachable!() };
    let id: OrderId = order.id;
    // The row's number, as SQLite stores it (`ORD-001` is row 1).
    let seq: i64 = id.to_string().trim_start_matches("ORD-").parse().unwrap();
    let floor = rusqlite::Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let mut sqlx_connection =
        rt.block_on(sqlx::sqlite::SqliteConnectOptions::new().filename(&path).read_only(true).connect()).unwrap();

    let mut group = c.benchmark_group("orders-api");
    group.bench_function("point_read_store", |b| {
        b.to_async(&rt).iter(|| async {
            let order: Option<_> = store.get(id, user.visibility()).await.unwrap();
            assert!(order.is_some());
            order
        })
    });
    group.bench_function("point_read_sqlx", |b| {
        b.iter(|| {
            let row: Row = rt
                .block_on(sqlx::query_as(GET_OWNED).bind(seq).bind(user.oid.as_str()).fetch_one(&mut sqlx_connection))
                .unwrap();
            std::hint::black_box(row)
        })
    });
    group.bench_function("point_read_floor", |b| {
        b.iter(|| {
            let mut statement = floor.prepare_cached(GET_OWNED).unwrap();
            let row = statement
                .query_row((seq, user.oid.as_str()), |r| {
                    Ok::<Row, _>((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                        r.get(6)?,
                        r.get(7)?,
                    ))
                })
                .unwrap();
            std::hint::black_box(row)
        })
    });
    group.finish();
    rt.block_on(db.close());
}

criterion_group!(benches, point_read);
criterion_main!(benches);
