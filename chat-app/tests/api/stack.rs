//! The real downstream services, in-process on port 0: orders-api (fresh SQLite file, seeded
//! from the manifest's users) and orders-mcp (On-Behalf-Of through the emulator's managed
//! identity endpoint).

#![allow(dead_code)] // each test binary uses a different part

use entra_manifest::REPOSITORY_MANIFEST;
use service_kit::serve::Running;
use service_kit::settings::Env;
use tempfile::TempDir;
use tokio::net::TcpListener;

pub struct OrdersStack {
    pub mcp_url: String,
    pub api_url: String,
    /// A second orders-mcp forwarding the user's token unchanged (`ORDERS_MCP_DOWNSTREAM=passthrough`),
    /// for the presenter view's confused-deputy replay.
    pub passthrough_mcp_url: Option<String>,
    _api: Running<()>,
    _mcp: Running<()>,
    _passthrough: Option<Running<()>>,
    _dir: TempDir,
}

impl OrdersStack {
    pub async fn spawn(idp: &entra_emulator::Running) -> OrdersStack {
        Self::spawn_with(idp, false).await
    }

    /// With `passthrough`, also the passthrough orders-mcp in front of the same orders-api
    /// (which does not accept its tokens: no `ORDERS_API_ALLOW_PASSTHROUGH_AUDIENCE`).
    pub async fn spawn_with(idp: &entra_emulator::Running, passthrough: bool) -> OrdersStack {
        Self::spawn_configured(idp, passthrough, &[]).await
    }

    /// With extra orders-api variables (`ORDERS_API_AGENT_POLICY`, ...).
    pub async fn spawn_configured(
        idp: &entra_emulator::Running,
        passthrough: bool,
        api_env: &[(&'static str, String)],
    ) -> OrdersStack {
        let dir = tempfile::tempdir().unwrap();
        let mut vars = vec![
            ("ORDERS_API_ADDR", "127.0.0.1:0".to_string()),
            ("ORDERS_API_DATABASE", dir.path().join("orders.db").display().to_string()),
            ("IDENTITY_MANIFEST", REPOSITORY_MANIFEST.to_string()),
            ("ENTRA_AUTHORITY", idp.url()),
        ];
        vars.extend(api_env.iter().cloned());
        let api = orders_api::configuration::Settings::from_env(Env::from_map(vars)).unwrap();
        let api = orders_api::startup::Application::build(api).await.unwrap().spawn();
        let api_url = api.url();

        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mcp_base = format!("http://{}", listener.local_addr().unwrap());
        let mcp = orders_mcp::configuration::Settings::from_env(Env::from_map([
            ("ORDERS_MCP_PUBLIC_URL", mcp_base.clone()),
            ("ORDERS_API_URL", api_url.clone()),
            ("IDENTITY_MANIFEST", REPOSITORY_MANIFEST.to_string()),
            ("ENTRA_AUTHORITY", idp.url()),
            ("IDENTITY_ENDPOINT", format!("{}/msi/token", idp.url())),
            ("IDENTITY_HEADER", "test-identity-header".to_string()),
        ]))
        .unwrap();
        let mcp = orders_mcp::startup::Application::build_on(listener, mcp).await.unwrap().spawn();
        let (passthrough_mcp_url, passthrough) = if passthrough {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let base = format!("http://{}", listener.local_addr().unwrap());
            let settings = orders_mcp::configuration::Settings::from_env(Env::from_map([
                ("ORDERS_MCP_PUBLIC_URL", base.clone()),
                ("ORDERS_API_URL", api_url.clone()),
                ("IDENTITY_MANIFEST", REPOSITORY_MANIFEST.to_string()),
                ("ENTRA_AUTHORITY", idp.url()),
                ("ORDERS_MCP_DOWNSTREAM", "passthrough".to_string()),
            ]))
            .unwrap();
            let running = orders_mcp::startup::Application::build_on(listener, settings).await.unwrap().spawn();
            (Some(format!("{base}/mcp")), Some(running))
        } else {
            (None, None)
        };
        OrdersStack {
            mcp_url: format!("{mcp_base}/mcp"),
            api_url,
            passthrough_mcp_url,
            _api: api,
            _mcp: mcp,
            _passthrough: passthrough,
            _dir: dir,
        }
    }

    /// `(owner_oid, product, quantity)` of every order, read from orders-api's SQLite file.
    pub async fn orders_in_database(&self) -> Vec<(String, String, i64)> {
        let url = format!("sqlite://{}?mode=ro", self._dir.path().join("orders.db").display());
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        let rows =
            sqlx::query_as("SELECT owner_oid, product, quantity FROM orders ORDER BY seq").fetch_all(&pool).await;
        pool.close().await;
        rows.unwrap()
    }

    /// The ids of the orders `user` owns, straight from orders-api.
    pub async fn order_ids_of(&self, idp: &entra_emulator::Running, user: &str) -> Vec<String> {
        self.orders_seen_by(idp, user).await.iter().map(|o| o["id"].as_str().unwrap().to_string()).collect()
    }

    /// The orders `user` sees, straight from orders-api.
    async fn orders_seen_by(&self, idp: &entra_emulator::Running, user: &str) -> Vec<serde_json::Value> {
        let token = idp.handle().user_token(user, "orders-mcp", "orders-api", &["Orders.Read"]).unwrap();
        let mut page: serde_json::Value = reqwest::Client::new()
            .get(format!("{}/api/orders?limit=100", self.api_url))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        serde_json::from_value(page["orders"].take()).unwrap()
    }

    /// Places an order as `user`, straight at orders-api; returns its id.
    pub async fn create_order_as(&self, idp: &entra_emulator::Running, user: &str, product: &str) -> String {
        let token = idp.handle().user_token(user, "orders-mcp", "orders-api", &["Orders.ReadWrite"]).unwrap();
        let order: serde_json::Value = reqwest::Client::new()
            .post(format!("{}/api/orders", self.api_url))
            .bearer_auth(token)
            .json(&serde_json::json!({"product": product, "quantity": 1}))
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap()
            .json()
            .await
            .unwrap();
        order["id"].as_str().unwrap().to_string()
    }

    /// Writes an order for `user` straight into orders-api's SQLite file, as a row stored before
    /// today's rules (or by another writer) would be: nothing it holds is checked.
    pub async fn store_order_directly(&self, idp: &entra_emulator::Running, user: &str, product: &str) {
        let person = idp.handle().manifest().user(user).unwrap().clone();
        let url = format!("sqlite://{}", self._dir.path().join("orders.db").display());
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        sqlx::query(
            "INSERT INTO orders (owner_oid, customer_name, product, quantity, status, created_at, updated_at) \
             VALUES (?1, ?2, ?3, 1, 'pending', '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z')",
        )
        .bind(&person.oid)
        .bind(&person.display_name)
        .bind(product)
        .execute(&pool)
        .await
        .unwrap();
        pool.close().await;
    }

    /// Every order's id and status, straight from orders-api (as the administrator sees them).
    pub async fn statuses(&self, idp: &entra_emulator::Running) -> Vec<(String, String)> {
        self.orders_seen_by(idp, "carol")
            .await
            .iter()
            .map(|o| (o["id"].as_str().unwrap().to_string(), o["status"].as_str().unwrap().to_string()))
            .collect()
    }
}
