//! A fake Microsoft Graph (v1.0) and Azure Resource Manager, in one axum server on port 0.
//!
//! It speaks the real wire format: `{"value": [...]}` lists with `@odata.context` and
//! `@odata.nextLink` paging, `$filter` on `tags/any(...)`, `appId`, `clientId`, Graph's error
//! body `{"error": {"code", "message", "innerError"}}`, and ARM's long-running `PATCH` (`202` +
//! `Azure-AsyncOperation`). It enforces the Graph rules the hook must respect: unique
//! identifier URIs (soft-deleted apps keep theirs), https redirect URIs, no removal of an
//! enabled scope or app role, pre-authorized permission ids must exist, a service principal
//! needs an existing application, admin consent and role assignments need an administrator,
//! unknown properties are refused; and Microsoft Entra Agent ID's (`graph/agents.rs`), the
//! Azure CLI's token refused for Agent ID writes among them. Entra's sign-ins to a public
//! client (`entra.rs`: browser, device code) issue the other tokens it accepts.
//!
//! Faults to inject: `429` + `Retry-After` every n-th request, replication delay (`404` for an
//! object just created), and a failure or a hang after n writes (a killed run).

// Handlers answer errors as responses; their size does not matter in a test server.
#![allow(clippy::result_large_err)]

mod arm;
mod entra;
mod graph;
mod http;
mod reply;
mod state;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use serde_json::{Value, json};
use tokio::sync::Notify;

pub use graph::{GRAPH_PRINCIPAL_ID, GRAPH_SCOPE_IDS};
pub use http::{AZURE_CLI_CLIENT_ID, TOKEN};
pub use state::{AuthCode, Caller, Config, Directory, Fault, Shared, SignInAnswer};

pub struct FakeCloud {
    pub url: String,
    pub shared: Arc<Shared>,
}

impl FakeCloud {
    pub async fn start(config: Config) -> FakeCloud {
        let shared = Arc::new(Shared {
            config: Mutex::new(config),
            dir: Mutex::new(Directory::default()),
            hung: Notify::new(),
            base: Mutex::new(String::new()),
        });
        {
            let graph = graph::microsoft_graph();
            shared.dir.lock().unwrap().first_party.insert(GRAPH_PRINCIPAL_ID.to_string(), graph);
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        *shared.base.lock().unwrap() = url.clone();
        let app = Router::new().fallback(http::handle).with_state(shared.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        FakeCloud { url, shared }
    }

    pub fn graph_url(&self) -> String {
        format!("{}/v1.0", self.url)
    }

    pub fn config(&self, edit: impl FnOnce(&mut Config)) {
        edit(&mut self.shared.config.lock().unwrap());
    }

    pub fn dir<T>(&self, read: impl FnOnce(&mut Directory) -> T) -> T {
        read(&mut self.shared.dir.lock().unwrap())
    }

    /// A token for a client of the test's own holding exactly the delegated Microsoft Graph
    /// permissions `scopes`, as if signed in to it.
    pub fn token_for(&self, scopes: &[&str]) -> String {
        let token = format!("fake-test-token-{}", uuid::Uuid::new_v4());
        let caller = Caller {
            client_id: uuid::Uuid::new_v4().to_string(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
        };
        self.dir(|d| d.tokens.insert(token.clone(), caller));
        token
    }

    pub fn writes(&self) -> Vec<String> {
        self.dir(|d| d.writes.clone())
    }

    pub fn add_container_app(&self, subscription: &str, group: &str, name: &str, env: &[(&str, &str)]) {
        let id = format!(
            "/subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.App/containerApps/{name}"
        );
        let env: Vec<Value> = env.iter().map(|(k, v)| json!({"name": k, "value": v})).collect();
        let app = json!({
            "id": id, "name": name, "type": "Microsoft.App/containerApps", "location": "swedencentral",
            "properties": {
                "provisioningState": "Succeeded",
                "configuration": {"activeRevisionsMode": "Single", "ingress": {"external": true, "targetPort": 3000}},
                "template": {
                    "containers": [{"name": name, "image": "crabc.azurecr.io/orders-copilot/app:1", "env": env,
                                    "resources": {"cpu": 0.5, "memory": "1Gi"}}],
                    "scale": {"minReplicas": 1, "maxReplicas": 1}
                }
            }
        });
        self.dir(|d| d.container_apps.insert(id.to_ascii_lowercase(), app));
    }

    /// Azure OpenAI offers model `name` `version` in `location` with deployment SKU `sku`, as ARM
    /// lists it; `deprecated` is the SKU's `deprecationDate` (no new deployments after it).
    pub fn offer_model(&self, location: &str, name: &str, version: &str, sku: &str, deprecated: Option<&str>) {
        let mut sku_item = json!({
            "name": sku, "usageName": format!("OpenAI.{sku}.{name}"),
            "capacity": {"minimum": 1, "maximum": 10000, "step": 1, "default": 10}
        });
        if let Some(date) = deprecated {
            sku_item["deprecationDate"] = json!(date);
        }
        let model = json!({
            "kind": "OpenAI", "skuName": "S0",
            "model": {
                "format": "OpenAI", "name": name, "version": version, "maxCapacity": 10000,
                "capabilities": {"chatCompletion": "true"},
                "lifecycleStatus": "GenerallyAvailable",
                "skus": [sku_item]
            }
        });
        self.dir(|d| d.models.entry(location.to_ascii_lowercase()).or_default().push(model));
    }

    /// The subscription's quota for `usage_name` (e.g. `OpenAI.GlobalStandard.gpt-5-mini`) in
    /// `location`, in thousands of tokens per minute.
    pub fn set_quota(&self, location: &str, usage_name: &str, current: u64, limit: u64) {
        let usage = json!({
            "name": {"value": usage_name, "localizedValue": usage_name},
            "currentValue": current, "limit": limit, "unit": "Count"
        });
        self.dir(|d| {
            let usages = d.usages.entry(location.to_ascii_lowercase()).or_default();
            usages.retain(|u| u["name"]["value"] != usage_name);
            usages.push(usage);
        });
    }

    /// A container app's environment variables.
    pub fn container_env(&self, name: &str) -> BTreeMap<String, String> {
        self.dir(|d| {
            let app = d.container_apps.values().find(|a| a["name"] == name).cloned().unwrap();
            app["properties"]["template"]["containers"][0]["env"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| (e["name"].as_str().unwrap().to_string(), e["value"].as_str().unwrap_or("").to_string()))
                .collect()
        })
    }

    /// The directory with generated ids replaced by names, so two runs' results compare equal.
    pub fn snapshot(&self) -> Value {
        self.dir(|d| {
            let mut names: Vec<(String, String)> = Vec::new();
            for app in d.applications.values() {
                let tag =
                    app["tags"].as_array().and_then(|t| t.last()).and_then(Value::as_str).unwrap_or("?").to_string();
                names.push((app["id"].as_str().unwrap().to_string(), format!("<app {tag}>")));
                names.push((app["appId"].as_str().unwrap().to_string(), format!("<appId {tag}>")));
                for sp in d.service_principals.values().filter(|sp| sp["appId"] == app["appId"]) {
                    names.push((sp["id"].as_str().unwrap().to_string(), format!("<sp {tag}>")));
                }
            }
            // Agent identities: their own ids, named by their tag.
            for agent in d.service_principals.values().filter(|sp| sp["agentIdentityBlueprintId"].is_string()) {
                let tag =
                    agent["tags"].as_array().and_then(|t| t.last()).and_then(Value::as_str).unwrap_or("?").to_string();
                names.push((agent["id"].as_str().unwrap().to_string(), format!("<agent {tag}>")));
                names.push((agent["appId"].as_str().unwrap().to_string(), format!("<agent appId {tag}>")));
            }
            names.push((self.shared.config.lock().unwrap().me.clone(), "<me>".into()));
            names.push((GRAPH_PRINCIPAL_ID.to_string(), "<Microsoft Graph sp>".into()));
            let strip = |v: &Value| {
                let mut v = v.clone();
                if let Some(o) = v.as_object_mut() {
                    o.remove("id");
                }
                v
            };
            let mut federated: Vec<Value> = d
                .federated
                .iter()
                .flat_map(|(app, list)| list.iter().map(move |f| json!({"app": app, "fic": f})))
                .map(|mut f| {
                    f["fic"].as_object_mut().unwrap().remove("id");
                    f
                })
                .collect();
            federated.sort_by_key(|f| f.to_string());
            let sorted = |m: &BTreeMap<String, Value>| {
                let mut list: Vec<Value> = m.values().map(strip).collect();
                list.sort_by_key(|v| v.to_string());
                list
            };
            let snapshot = json!({
                "applications": d.applications.values().cloned().collect::<Vec<_>>(),
                "servicePrincipals": sorted(&d.service_principals),
                "federated": federated,
                "inheritable": d.inheritable.clone(),
                "grants": sorted(&d.grants),
                "assignments": sorted(&d.assignments),
                "deleted": d.deleted.len(),
                "containerApps": d.container_apps.values().cloned().collect::<Vec<_>>(),
            });
            let mut text = snapshot.to_string();
            for (id, name) in names {
                text = text.replace(&id, &name);
            }
            let mut value: Value = serde_json::from_str(&text).unwrap();
            for list in ["applications", "servicePrincipals", "federated", "grants", "assignments", "containerApps"] {
                let mut items = value[list].as_array().cloned().unwrap();
                for item in &mut items {
                    // Names the server's own address.
                    item.as_object_mut().map(|o| o.remove("@odata.context"));
                }
                items.sort_by_key(|v| v.to_string());
                value[list] = Value::Array(items);
            }
            value
        })
    }
}
