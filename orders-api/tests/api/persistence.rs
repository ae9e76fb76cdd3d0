//! Acceptance 4: data survives a restart, migrations and seeding happen once, and a database
//! that is corrupt (at start or while running) is reported clearly.

use std::io::Write;

use orders_api::database::{Database, DatabaseProblem};
use orders_api::startup::{Application, StartError};
use serde_json::{Value, json};

use crate::helpers::{ALL_SCOPES, assert_problem, settings, spawn_app, spawn_idp, start};

#[tokio::test]
async fn a_restart_keeps_every_order_and_neither_migrates_nor_seeds_again() {
    let app = spawn_app().await;
    let alice = app.token("alice", ALL_SCOPES);
    let carol = app.token("carol", ALL_SCOPES);
    let created: Value =
        app.create(&alice, &json!({ "product": "Survivor", "quantity": 3 })).await.json().await.unwrap();
    assert_eq!(app.cancel("ORD-004", &alice).await.status(), 200);
    assert_eq!(app.delete("ORD-005", &carol).await.status(), 204);
    let before = app.list_all(&carol, "").await;
    let (mut idp, mut dir, settings) = app.stop().await;

    for restart in 0..2 {
        let app = start(idp, dir, settings.clone()).await;
        let carol = app.token("carol", ALL_SCOPES);
        let after = app.list_all(&carol, "").await;
        assert_eq!(after, before, "restart {restart}: the data changed");
        assert!(after.iter().all(|o| o["id"] != "ORD-005"), "a deleted demo order was seeded again");
        let path = format!("/api/orders/{}", created["id"].as_str().unwrap());
        let fetched: Value = app.get(&path, &carol).await.json().await.unwrap();
        assert_eq!(fetched, created);
        (idp, dir, _) = app.stop().await;
    }

    // The migration ran exactly once.
    let db = Database::open(&settings.database).await.unwrap();
    let applied: Vec<(i64, bool)> =
        sqlx::query_as("SELECT version, success FROM _sqlx_migrations").fetch_all(db.writer()).await.unwrap();
    assert_eq!(applied.len(), 1, "{applied:?}");
    assert!(applied[0].1);
    let journal: (String,) = sqlx::query_as("PRAGMA journal_mode").fetch_one(db.writer()).await.unwrap();
    assert_eq!(journal.0, "wal");
    db.close().await;
    drop((idp, dir));
}

/// Orders are personal data: a new database file, and the WAL and shared-memory files beside
/// it, are the service user's alone (SQLite's own default is 0644, readable by every local user).
#[cfg(unix)]
#[tokio::test]
async fn a_new_database_is_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("orders.db");
    let database = Database::open(&path).await.unwrap();
    for file in ["orders.db", "orders.db-wal", "orders.db-shm"] {
        let mode = std::fs::metadata(dir.path().join(file)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{file}: {mode:o}");
    }
    database.close().await;

    // A file that already exists keeps the permissions its owner gave it.
    let shared = dir.path().join("shared.db");
    std::fs::write(&shared, b"").unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o640)).unwrap();
    Database::open(&shared).await.unwrap().close().await;
    assert_eq!(std::fs::metadata(&shared).unwrap().permissions().mode() & 0o777, 0o640);
}

#[tokio::test]
async fn a_corrupt_database_file_fails_the_start_with_a_message_naming_it() {
    let idp = spawn_idp().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("orders.db");
    std::fs::write(&path, b"this is not a SQLite database, just some text that happens to be here......".repeat(64))
        .unwrap();
    let error = match Application::build(settings(&idp.url(), &path, &[])).await {
        Ok(_) => panic!("a corrupt database was accepted"),
        Err(e) => e,
    };
    let Some(StartError::Database(db_error)) = error.downcast_ref::<StartError>() else {
        panic!("unexpected error: {error}")
    };
    assert_eq!(db_error.problem, DatabaseProblem::Corrupt);
    let message = format!("{error:#}");
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("corrupt or not a SQLite database"), "{message}");
    // Nothing was written over the broken file.
    assert!(std::fs::read(&path).unwrap().starts_with(b"this is not a SQLite database"));
}

#[tokio::test]
async fn a_database_path_that_cannot_be_created_fails_the_start_clearly() {
    let idp = spawn_idp().await;
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("not-a-directory");
    std::fs::write(&blocker, b"a file where a directory should be").unwrap();
    let path = blocker.join("orders.db");
    let error = Application::build(settings(&idp.url(), &path, &[])).await.err().expect("the start fails");
    let message = format!("{error:#}");
    assert!(message.contains(&path.display().to_string()) && message.contains("directory"), "{message}");
}

#[tokio::test]
async fn readyz_says_not_ready_when_the_file_goes_bad_under_a_running_service() {
    let app = spawn_app().await;
    let path = app.database();
    assert_eq!(app.client.get(app.url("/readyz")).send().await.unwrap().status(), 200);

    // Someone replaces the file (a bad restore, a stray write): the open connections still
    // hold the old file, but a restart would not start, so the service is not ready.
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    let mut file = std::fs::File::create(&path).unwrap();
    file.write_all(&[0x5a; 8192]).unwrap();
    drop(file);
    let response = app.client.get(app.url("/readyz")).send().await.unwrap();
    let problem = assert_problem(response, 503, "not-ready").await;
    assert!(problem["detail"].as_str().unwrap().contains("not a database"), "{problem}");
    assert!(!problem["detail"].as_str().unwrap().contains(&path.display().to_string()), "the path is not disclosed");

    // Emptied instead: a valid but empty database without the orders table.
    std::fs::remove_file(&path).unwrap();
    std::fs::File::create(&path).unwrap();
    let response = app.client.get(app.url("/readyz")).send().await.unwrap();
    let problem = assert_problem(response, 503, "not-ready").await;
    assert!(problem["detail"].as_str().unwrap().contains("no such table"), "{problem}");
    // The process itself is still alive.
    assert_eq!(app.client.get(app.url("/healthz")).send().await.unwrap().status(), 200);
}
