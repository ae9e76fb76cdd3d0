//! The hook against a fake Microsoft Graph and Azure Resource Manager (tests/support/fake_cloud/):
//! what a first run creates, that a second run writes nothing, that a manifest edit changes only
//! the difference, that throttling and replication delay are retried, that a killed or failed
//! run is finished by the next one, `--dry-run`, cleanup, and the refusals.

// Test code, helpers included: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use entra_manifest::Manifest;
use serde_json::{Value, json};
use support::fake_cloud::{Config, Fault, GRAPH_PRINCIPAL_ID, GRAPH_SCOPE_IDS, SignInAnswer};
use support::{CHAT_APP_URL, CHAT_MI, MCP_MI, Provisioned, RESOURCE_TOKEN, SUBSCRIPTION, TENANT};

/// orders-api's Application ID URI in the test deployment: the tenant id names it, the suffix
/// is the environment name and the resource token (unique per deployment).
const ORDERS_API_URI: &str = "api://5a8f0e3c-2d4b-4c1e-9f6a-7b8c9d0e1f2a/orders-api-dev-abc123xyz7890";

fn app<'a>(d: &Provisioned, name: &str, apps: &'a [Value]) -> &'a Value {
    let tag = d.app_tag(name);
    apps.iter().find(|a| a["tags"].as_array().unwrap().iter().any(|t| t == &tag)).unwrap()
}

fn ids(values: &Value) -> Vec<String> {
    let mut list: Vec<String> = values.as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
    list.sort();
    list
}

#[tokio::test]
async fn the_first_run_creates_exactly_what_the_manifest_says() {
    let d = Provisioned::new().await;
    let (out, result) = d.run(&["apply"]).await;
    let summary = result.unwrap_or_else(|e| panic!("{out}\n{e}"));
    let manifest = Manifest::load(&d.manifest).unwrap();

    let apps: Vec<Value> = d.cloud.dir(|dir| dir.applications.values().cloned().collect());
    assert_eq!(apps.len(), 3);
    let api = app(&d, "orders-api", &apps);
    let mcp = app(&d, "orders-mcp", &apps);
    let chat = app(&d, "chat-app", &apps);
    let app_id = |a: &Value| a["appId"].as_str().unwrap().to_string();

    // orders-api: v1 tokens, its two scopes with the manifest's ids, the admin role.
    assert_eq!(api["displayName"], format!("Orders API (dev {RESOURCE_TOKEN})"));
    assert_eq!(api["signInAudience"], "AzureADMyOrg");
    assert_eq!(api["identifierUris"], json!([ORDERS_API_URI]));
    assert_eq!(api["api"]["requestedAccessTokenVersion"], 1);
    let m_api = manifest.app("orders-api").unwrap();
    let scopes = api["api"]["oauth2PermissionScopes"].as_array().unwrap();
    assert_eq!(scopes.len(), 2);
    for scope in &m_api.scopes {
        let s = scopes.iter().find(|s| s["id"] == scope.id.as_str()).unwrap();
        assert_eq!(s["value"], scope.value.as_str());
        assert_eq!(s["isEnabled"], true);
        assert_eq!(s["type"], "User");
        assert_eq!(s["adminConsentDisplayName"], scope.admin_consent_display_name.as_str());
        assert_eq!(s["userConsentDescription"], scope.user_consent_description.as_str());
    }
    let role = &api["appRoles"][0];
    assert_eq!(role["id"], m_api.app_role("Orders.Admin").unwrap().id.as_str());
    assert_eq!(role["value"], "Orders.Admin");
    assert_eq!(role["allowedMemberTypes"], json!(["User"]));
    assert_eq!(api["web"]["redirectUris"], json!([]));
    // orders-mcp is pre-authorized for both scopes: On-Behalf-Of needs no consent.
    let mut obo_scopes = ids(&api["api"]["preAuthorizedApplications"][0]["delegatedPermissionIds"]);
    obo_scopes.sort();
    let mut api_scope_ids: Vec<String> = m_api.scopes.iter().map(|s| s.id.clone()).collect();
    api_scope_ids.sort();
    assert_eq!(api["api"]["preAuthorizedApplications"][0]["appId"], app_id(mcp));
    assert_eq!(obo_scopes, api_scope_ids);

    // orders-mcp: v2 tokens, pre-authorized chat-app (real app id), Azure CLI, VS Code; knows chat-app;
    // requires orders-api's scopes (for On-Behalf-Of).
    let m_mcp = manifest.app("orders-mcp").unwrap();
    assert_eq!(
        mcp["identifierUris"],
        json!(["https://orders-mcp-abc123.happyfield-1234.swedencentral.azurecontainerapps.io/mcp"])
    );
    assert_eq!(mcp["api"]["requestedAccessTokenVersion"], 2);
    let access_as_user = m_mcp.scope("access_as_user").unwrap().id.clone();
    let pre: BTreeMap<String, Value> = mcp["api"]["preAuthorizedApplications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["appId"].as_str().unwrap().to_string(), p["delegatedPermissionIds"].clone()))
        .collect();
    let expected_clients =
        [app_id(chat), manifest.clients["azure-cli"].client_id.clone(), manifest.clients["vscode"].client_id.clone()];
    assert_eq!(pre.len(), 3);
    for client in expected_clients {
        assert_eq!(pre[&client], json!([access_as_user]), "{client}");
    }
    assert_eq!(mcp["api"]["knownClientApplications"], json!([app_id(chat)]));
    let required = &mcp["requiredResourceAccess"][0];
    assert_eq!(required["resourceAppId"], app_id(api));
    let required_ids =
        ids(&json!(required["resourceAccess"].as_array().unwrap().iter().map(|r| r["id"].clone()).collect::<Vec<_>>()));
    let mut expected_ids: Vec<String> = m_api.scopes.iter().map(|s| s.id.clone()).collect();
    expected_ids.sort();
    assert_eq!(required_ids, expected_ids);
    assert!(required["resourceAccess"].as_array().unwrap().iter().all(|r| r["type"] == "Scope"));

    // chat-app: redirect and logout URLs from the deployed origin; requires orders-mcp's scope.
    assert_eq!(chat["identifierUris"], json!([]));
    assert_eq!(
        chat["web"]["redirectUris"],
        json!([format!("{CHAT_APP_URL}/auth/callback"), format!("{CHAT_APP_URL}/auth/signed-out")])
    );
    assert_eq!(chat["web"]["logoutUrl"], format!("{CHAT_APP_URL}/auth/front-channel-logout"));
    assert_eq!(chat["requiredResourceAccess"][0]["resourceAppId"], app_id(mcp));
    assert_eq!(chat["requiredResourceAccess"][0]["resourceAccess"], json!([{"id": access_as_user, "type": "Scope"}]));

    // No secret anywhere: no password or key credential on any app.
    for a in &apps {
        assert_eq!(a["passwordCredentials"], json!([]));
        assert_eq!(a["keyCredentials"], json!([]));
    }

    // One service principal per app; federated credentials trusting each managed identity.
    let (sps, federated, grants) =
        d.cloud.dir(|dir| (dir.service_principals.clone(), dir.federated.clone(), dir.grants.clone()));
    let mut sp_apps: Vec<String> = sps.values().map(|sp| sp["appId"].as_str().unwrap().to_string()).collect();
    sp_apps.sort();
    let mut all_apps: Vec<String> = apps.iter().map(app_id).collect();
    all_apps.sort();
    assert_eq!(sp_apps, all_apps);
    let sp_of =
        |a: &Value| sps.values().find(|sp| sp["appId"] == a["appId"]).unwrap()["id"].as_str().unwrap().to_string();
    let issuer = format!("https://login.microsoftonline.com/{TENANT}/v2.0");
    for (a, subject, name) in
        [(mcp, MCP_MI, "orders-mcp-managed-identity"), (chat, CHAT_MI, "chat-app-managed-identity")]
    {
        let list = &federated[a["id"].as_str().unwrap()];
        assert_eq!(list.len(), 1);
        assert_eq!(list[0]["name"], name);
        assert_eq!(list[0]["issuer"], issuer.as_str());
        assert_eq!(list[0]["subject"], subject);
        assert_eq!(list[0]["audiences"], json!(["api://AzureADTokenExchange"]));
    }
    assert!(federated.get(api["id"].as_str().unwrap()).is_none_or(Vec::is_empty));

    // Admin consent: orders-mcp -> orders-api, chat-app -> orders-mcp, for all users.
    let mut consents: Vec<(String, String, String, String)> = grants
        .values()
        .map(|g| {
            (
                g["clientId"].as_str().unwrap().to_string(),
                g["resourceId"].as_str().unwrap().to_string(),
                g["scope"].as_str().unwrap().to_string(),
                g["consentType"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    consents.sort();
    let mut expected = vec![
        (sp_of(mcp), sp_of(api), "Orders.Read Orders.ReadWrite".to_string(), "AllPrincipals".to_string()),
        (sp_of(chat), sp_of(mcp), "access_as_user".to_string(), "AllPrincipals".to_string()),
    ];
    expected.sort();
    assert_eq!(consents, expected);

    // The ids went to the azd environment and to the container apps that declare them.
    let env = d.env_values();
    assert_eq!(env["ORDERS_API_CLIENT_ID"], app_id(api));
    assert_eq!(env["ORDERS_MCP_CLIENT_ID"], app_id(mcp));
    assert_eq!(env["CHAT_APP_CLIENT_ID"], app_id(chat));
    assert_eq!(env["ORDERS_API_APP_ID_URI"], ORDERS_API_URI);
    assert_eq!(
        env["ORDERS_MCP_APP_ID_URI"],
        "https://orders-mcp-abc123.happyfield-1234.swedencentral.azurecontainerapps.io/mcp"
    );
    assert_eq!(env["AZURE_TENANT_ID"], TENANT, "the values azd wrote are kept");
    for (_, container_app, vars) in support::CONTAINER_APPS {
        let actual = d.cloud.container_env(container_app);
        for var in vars {
            // Agent mode's ids stay empty outside agent mode.
            assert_eq!(actual[*var], env.get(*var).cloned().unwrap_or_default(), "{container_app} {var}");
        }
        assert_eq!(actual["LOG_FORMAT"], "json", "other variables are untouched");
    }
    assert!(!d.cloud.container_env("orders-api-abc123").contains_key("CHAT_APP_CLIENT_ID"));

    // Exactly these writes, each reported once.
    let writes = d.cloud.writes();
    let count = |prefix: &str| writes.iter().filter(|w| w.starts_with(prefix)).count();
    assert_eq!(count("POST /v1.0/applications"), 3 + 2, "3 apps + 2 federated credentials: {writes:#?}");
    // In the order Graph accepts: chat-app 2 (version and web; required access), orders-api 3
    // (identifier URI; scopes and role; pre-authorized orders-mcp), orders-mcp 4 (version;
    // identifier URI; scope; pre-authorized clients and required access).
    assert_eq!(count("PATCH /v1.0/applications/"), 9);
    assert_eq!(count("POST /v1.0/servicePrincipals"), 3);
    assert_eq!(count("POST /v1.0/oauth2PermissionGrants"), 2);
    assert_eq!(count("PATCH /subscriptions/"), 3);
    assert_eq!(writes.len(), 22, "{writes:#?}");
    assert_eq!(summary.changes.len(), 22 + 5, "22 cloud writes + 5 azd env values");
    assert!(out.contains("Done: 27 change(s) made."), "{out}");
}

#[tokio::test]
async fn a_second_run_makes_zero_writes_and_says_so() {
    let d = Provisioned::new().await;
    d.run(&["apply"]).await.1.unwrap();
    let before = (d.cloud.snapshot(), std::fs::read_to_string(d.env_file()).unwrap());
    let writes = d.cloud.writes().len();

    let (out, result) = d.run(&[]).await;
    let summary = result.unwrap();
    assert_eq!(d.cloud.writes().len(), writes, "{:#?}", &d.cloud.writes()[writes..]);
    assert!(summary.changes.is_empty());
    assert!(out.contains("Nothing to change"), "{out}");
    assert_eq!((d.cloud.snapshot(), std::fs::read_to_string(d.env_file()).unwrap()), before);
}

#[tokio::test]
async fn a_manifest_edit_changes_only_the_difference() {
    let d = Provisioned::new().await;
    d.run(&["apply"]).await.1.unwrap();
    let (api_id, chat_id) = d.cloud.dir(|dir| {
        let find = |tag: &str| {
            dir.applications.values().find(|a| a["tags"].as_array().unwrap().iter().any(|t| t == tag)).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string()
        };
        (find(&d.app_tag("orders-api")), find(&d.app_tag("chat-app")))
    });

    // A new scope on orders-api and a new display name for chat-app: one patch each.
    d.edit_manifest(|t| {
        t.replace("display_name = \"Orders Copilot\"", "display_name = \"Orders Copilot Demo\"").replacen(
            "[[app.orders-api.app_role]]",
            "[[app.orders-api.scope]]\nvalue = \"Orders.Export\"\nid = \"3c5b1f0e-8f9a-4f6e-b5d2-6a7c8e9f0a1b\"\n\
admin_consent_display_name = \"Export orders\"\nadmin_consent_description = \"Export.\"\n\
user_consent_display_name = \"Export your orders\"\nuser_consent_description = \"Export.\"\n\n[[app.orders-api.app_role]]",
            1,
        )
    });
    let before = d.cloud.writes().len();
    let (out, result) = d.run(&["apply"]).await;
    result.unwrap_or_else(|e| panic!("{out}\n{e}"));
    let writes = d.cloud.writes()[before..].to_vec();
    let mut expected =
        vec![format!("PATCH /v1.0/applications/{api_id}"), format!("PATCH /v1.0/applications/{chat_id}")];
    expected.sort();
    let mut sorted = writes.clone();
    sorted.sort();
    assert_eq!(sorted, expected);
    let (api, chat) = d.cloud.dir(|dir| (dir.applications[&api_id].clone(), dir.applications[&chat_id].clone()));
    assert!(api["api"]["oauth2PermissionScopes"].as_array().unwrap().iter().any(|s| s["value"] == "Orders.Export"));
    assert_eq!(chat["displayName"], format!("Orders Copilot Demo (dev {RESOURCE_TOKEN})"));
    assert!(out.contains("add scope Orders.Export"), "{out}");

    // Removing a scope that is in use: disabled first, then every reference (orders-api's
    // pre-authorization of orders-mcp, orders-mcp's required access, its admin consent)
    // follows, then removed.
    d.edit_manifest(|t| {
        let start = t.find("[[app.orders-api.scope]]\nvalue = \"Orders.ReadWrite\"").unwrap();
        let end = start + t[start..].find("\n\n").unwrap();
        let mut t = format!("{}{}", &t[..start], &t[end + 2..]);
        t = t.replace("scopes = [\"Orders.Read\", \"Orders.ReadWrite\"]", "scopes = [\"Orders.Read\"]");
        t
    });
    let before = d.cloud.writes().len();
    let (out, result) = d.run(&["apply"]).await;
    result.unwrap_or_else(|e| panic!("{out}\n{e}"));
    let writes = d.cloud.writes()[before..].to_vec();
    assert_eq!(writes.iter().filter(|w| **w == format!("PATCH /v1.0/applications/{api_id}")).count(), 3, "{writes:#?}");
    assert_eq!(
        writes.iter().filter(|w| w.starts_with("PATCH /v1.0/oauth2PermissionGrants/")).count(),
        1,
        "{writes:#?}"
    );
    assert_eq!(writes.len(), 5, "orders-api 3 times, orders-mcp's required access, the consent: {writes:#?}");
    let (api, grants) = d.cloud.dir(|dir| (dir.applications[&api_id].clone(), dir.grants.clone()));
    assert!(!api["api"]["oauth2PermissionScopes"].as_array().unwrap().iter().any(|s| s["value"] == "Orders.ReadWrite"));
    assert!(grants.values().any(|g| g["scope"] == "Orders.Read"));
    assert!(out.contains("disable scope Orders.ReadWrite before removing it"), "{out}");

    let (_, result) = d.run(&["apply"]).await;
    assert!(result.unwrap().changes.is_empty());
}

async fn clean_run_snapshot() -> (Value, BTreeMap<String, String>, usize) {
    clean_run_snapshot_in(false).await
}

/// What a first run against an empty tenant leaves (`agent_mode`: with chat-app's agent mode on).
async fn clean_run_snapshot_in(agent_mode: bool) -> (Value, BTreeMap<String, String>, usize) {
    let d = Provisioned::new().await;
    if agent_mode {
        d.set_agent_mode();
    }
    d.run(&["apply"]).await.1.unwrap();
    let mut env = d.env_values();
    normalize_env(&mut env);
    (d.cloud.snapshot(), env, d.cloud.writes().len())
}

/// App ids differ from run to run: compare the environment's shape, not the GUIDs.
fn normalize_env(env: &mut BTreeMap<String, String>) {
    for (key, value) in env.iter_mut() {
        let an_id = key.ends_with("_CLIENT_ID") || key == "CHAT_APP_AGENT_BLUEPRINT_ID" || key == "CHAT_APP_AGENT_ID";
        if an_id && postprovision::deployment::is_guid(value) {
            *value = "<guid>".into();
        }
    }
}

fn same_result(d: &Provisioned, reference: &(Value, BTreeMap<String, String>, usize)) {
    let mut env = d.env_values();
    normalize_env(&mut env);
    assert_eq!(d.cloud.snapshot(), reference.0);
    assert_eq!(env, reference.1);
}

#[tokio::test]
async fn throttling_and_replication_delay_are_retried() {
    let reference = clean_run_snapshot().await;
    let mut config = Config::new(TENANT);
    config.throttle_every = Some(4);
    config.lag = 2;
    let d = Provisioned::with(config, "dev").await;
    let (out, result) = d.run(&["apply"]).await;
    result.unwrap_or_else(|e| panic!("{out}\n{e}"));
    let (throttled, lagged) = d.cloud.dir(|dir| (dir.throttled, dir.lag_answers));
    assert!(throttled >= 10, "{throttled} requests throttled");
    assert!(lagged >= 10, "{lagged} requests answered as not yet replicated");
    same_result(&d, &reference);
    assert_eq!(d.cloud.writes().len(), reference.2, "no write was made twice");
}

/// The same in agent mode, plus Entra's own delay: the device-code sign-in (`--device-code`) to
/// the provisioning client made moments before is answered AADSTS700016 ("not found in the
/// directory") a few times, and retried like Graph's replication delay, before the code is shown.
#[tokio::test]
async fn agent_mode_rides_out_throttling_and_replication_delay() {
    let reference = clean_run_snapshot_in(true).await;
    let mut config = Config::new(TENANT);
    config.throttle_every = Some(4);
    config.lag = 2;
    config.client_lag = 3;
    let d = Provisioned::with(config, "dev").await;
    d.set_agent_mode();
    let (out, result) = d.run(&["apply", "--device-code"]).await;
    result.unwrap_or_else(|e| panic!("{out}\n{e}"));
    assert!(out.contains(&format!("{}To sign in, use a web browser", support::PROMPTED)), "{out}");
    assert_eq!(d.cloud.dir(|dir| (dir.client_lag_answers, dir.device_sign_ins)), (3, 1), "{out}");
    assert!(d.cloud.dir(|dir| dir.throttled >= 10 && dir.lag_answers >= 10));
    same_result(&d, &reference);
    assert_eq!(d.cloud.writes().len(), reference.2, "no write was made twice");
}

/// The same through the browser sign-in: the provisioning client made moments before is not
/// found at Entra's page (AADSTS700016) a few times; the message tells the person to wait and
/// reload, and the sign-in completes when they do.
#[tokio::test]
async fn agent_mode_in_the_browser_rides_out_the_new_clients_replication() {
    let mut config = Config::new(TENANT);
    config.client_lag = 2;
    let d = Provisioned::with(config, "dev").await;
    d.set_agent_mode();
    let (out, result) = d.run(&["apply"]).await;
    result.unwrap_or_else(|e| panic!("{out}\n{e}"));
    assert!(out.contains("wait a minute and reload the page"), "{out}");
    assert_eq!(d.cloud.dir(|dir| (dir.client_lag_answers, dir.browser_sign_ins)), (2, 1), "{out}");
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let mut config = Config::new(TENANT);
    config.throttle_every = Some(1_000_000);
    let d = Provisioned::with(config, "dev").await;
    // Throttle the very next request, for one second.
    d.cloud.config(|c| {
        c.throttle_every = Some(1);
        c.retry_after_secs = 1;
    });
    let cloud = d.cloud.shared.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(5)).await;
            if cloud.dir.lock().unwrap().throttled > 0 {
                cloud.config.lock().unwrap().throttle_every = None;
                break;
            }
        }
    });
    let started = Instant::now();
    let (out, result) = d.run(&["apply"]).await;
    result.unwrap_or_else(|e| panic!("{out}\n{e}"));
    assert!(d.cloud.dir(|dir| dir.throttled) >= 1);
    assert!(started.elapsed() >= Duration::from_secs(1), "waited {:?}", started.elapsed());
}

#[tokio::test]
async fn a_run_killed_at_any_write_is_finished_by_the_next_run() {
    let reference = clean_run_snapshot().await;
    let total = reference.2;
    // Killed before the server acted on the write, or after it acted but before the answer.
    for (fault, made) in [(Fault::Hang, 0), (Fault::HangAfterWrite, 1)] {
        for killed_after in 0..total {
            let mut config = Config::new(TENANT);
            config.fail_after_writes = Some((killed_after, fault));
            let d = Provisioned::with(config, "dev").await;
            let shared = d.cloud.shared.clone();
            tokio::select! {
                _ = d.run(&["apply"]) => panic!("the run should have hung after {killed_after} writes"),
                () = shared.hung.notified() => {}
            }
            assert_eq!(d.cloud.writes().len(), killed_after + made);
            d.cloud.config(|c| c.fail_after_writes = None);
            let (out, result) = d.run(&["apply"]).await;
            result.unwrap_or_else(|e| panic!("{fault:?} after {killed_after}: {out}\n{e}"));
            same_result(&d, &reference);
            assert_eq!(d.cloud.writes().len(), total, "{fault:?} after {killed_after}: nothing done twice or left out");
        }
    }
}

#[tokio::test]
async fn a_failed_write_stops_with_what_to_do_and_the_next_run_finishes() {
    let reference = clean_run_snapshot().await;
    let mut config = Config::new(TENANT);
    config.fail_after_writes = Some((5, Fault::Refuse));
    let d = Provisioned::with(config, "dev").await;
    let (out, result) = d.run(&["apply"]).await;
    let message = result.unwrap_err();
    assert!(message.starts_with("stopped after 5 change(s): Microsoft Graph refused"), "{message}");
    assert!(message.contains("Injected fault"), "{message}");
    assert!(message.contains("running it again continues from here"), "{message}");
    assert!(message.contains("azd hooks run postprovision"), "{message}");
    assert_eq!(out.lines().filter(|l| l.starts_with("  ")).count(), 5, "each change made is reported:\n{out}");

    d.cloud.config(|c| c.fail_after_writes = None);
    d.run(&["apply"]).await.1.unwrap();
    same_result(&d, &reference);
}

#[tokio::test]
async fn dry_run_prints_the_plan_and_writes_nothing() {
    let d = Provisioned::new().await;
    let env_before = std::fs::read_to_string(d.env_file()).unwrap();
    let (out, result) = d.run(&["--dry-run"]).await;
    let summary = result.unwrap_or_else(|e| panic!("{out}\n{e}"));
    println!("{out}");
    assert!(d.cloud.writes().is_empty(), "{:#?}", d.cloud.writes());
    assert_eq!(std::fs::read_to_string(d.env_file()).unwrap(), env_before);
    assert!(d.cloud.container_env("chat-app-abc123")["CHAT_APP_CLIENT_ID"].is_empty());
    let header = out.lines().find(|l| l.starts_with("ACTION")).unwrap();
    assert!(header.contains("OBJECT") && header.contains("NAME") && header.contains("DETAIL"), "{out}");
    let rows: Vec<Vec<&str>> = out
        .lines()
        .skip_while(|l| !l.starts_with("ACTION"))
        .skip(2)
        .take_while(|l| !l.starts_with("Dry run"))
        .map(|l| l.split("  ").map(str::trim).filter(|c| !c.is_empty()).collect())
        .collect();
    assert_eq!(rows.len(), summary.changes.len());
    for app in ["orders-api", "orders-mcp", "chat-app"] {
        for object in ["application", "service principal"] {
            assert!(
                rows.iter().any(|r| r[0] == "create" && r[1] == object && r[2] == app),
                "create {object} {app}:\n{out}"
            );
        }
    }
    assert!(rows.iter().any(|r| r[0] == "set" && r[2] == "ORDERS_API_APP_ID_URI" && r[3] == ORDERS_API_URI));
    assert!(rows.iter().any(|r| r[0] == "update" && r[1] == "container app" && r[2] == "chat-app-abc123"));
    assert!(out.contains(&format!("Dry run: {} change(s) planned, nothing written.", summary.changes.len())));
    // The plan is what an apply then does (ids only Graph assigns are placeholders in the plan).
    let (_, applied) = d.run(&[]).await;
    let triples = |changes: &[postprovision::plan::Change]| {
        changes.iter().map(|c| (c.action, c.object, c.name.clone())).collect::<Vec<_>>()
    };
    assert_eq!(triples(&applied.unwrap().changes), triples(&summary.changes));

    // Against a configured tenant the plan is empty; after an edit it is exactly the edit.
    let (out, result) = d.run(&["--dry-run"]).await;
    assert!(result.unwrap().changes.is_empty());
    assert!(out.contains("Nothing to change"), "{out}");
    d.edit_manifest(|t| t.replace("display_name = \"Orders MCP server\"", "display_name = \"Orders tools\""));
    let writes = d.cloud.writes().len();
    let (out, result) = d.run(&["--dry-run"]).await;
    let changes = result.unwrap().changes;
    assert_eq!(changes.len(), 1, "{out}");
    assert_eq!((changes[0].object, changes[0].name.as_str()), ("application", "orders-mcp"));
    assert!(changes[0].detail.contains(&format!("Orders tools (dev {RESOURCE_TOKEN})")), "{out}");
    assert_eq!(d.cloud.writes().len(), writes);
}

#[tokio::test]
async fn cleanup_removes_what_this_environment_created_and_only_that() {
    let d = Provisioned::new().await;
    d.run(&["apply"]).await.1.unwrap();
    // A second environment in the same tenant: its own name, its own orders-mcp endpoint (and so
    // its own Application ID URI: identifier URIs are unique in a tenant).
    let test_env = d.files.path().join("test.env");
    std::fs::write(
        &test_env,
        std::fs::read_to_string(d.env_file())
            .unwrap()
            .replace("AZURE_ENV_NAME=\"dev\"", "AZURE_ENV_NAME=\"test\"")
            .replace("orders-mcp-abc123", "orders-mcp-def456"),
    )
    .unwrap();
    let run_test = |args: &[&str]| {
        let mut argv: Vec<String> = ["postprovision", "--manifest"].iter().map(|s| s.to_string()).collect();
        argv.extend([d.manifest.display().to_string(), "--env-file".into(), test_env.display().to_string()]);
        argv.extend(["--graph-url".into(), d.cloud.graph_url(), "--skip-container-apps".into()]);
        argv.extend(args.iter().map(|s| s.to_string()));
        support::run_cli(argv, BTreeMap::new())
    };
    run_test(&["apply"]).await.1.unwrap();
    assert_eq!(d.cloud.dir(|dir| dir.applications.len()), 6);

    let (out, result) = d.run(&["cleanup", "--dry-run"]).await;
    assert_eq!(result.unwrap().changes.len(), 9, "{out}");
    assert_eq!(d.cloud.dir(|dir| dir.applications.len()), 6, "a dry run deletes nothing");

    let (out, result) = d.run(&["cleanup"]).await;
    result.unwrap_or_else(|e| panic!("{out}\n{e}"));
    let (apps, sps, grants, deleted) = d
        .cloud
        .dir(|dir| (dir.applications.clone(), dir.service_principals.len(), dir.grants.len(), dir.deleted.len()));
    assert_eq!(apps.len(), 3);
    let test_tag = support::deployment_tag("test", SUBSCRIPTION, RESOURCE_TOKEN);
    assert!(apps.values().all(|a| a["tags"].as_array().unwrap().iter().any(|t| *t == test_tag)));
    assert_eq!((sps, grants, deleted), (3, 2, 0), "the test environment keeps its own; dev's are gone for good");

    let (out, result) = d.run(&["cleanup"]).await;
    assert!(result.unwrap().changes.is_empty());
    assert!(out.contains(&format!("Nothing to change: no app registrations are tagged {}", d.tag())), "{out}");

    // The identifier URIs are free again: the environment can be brought up anew.
    let (out, result) = d.run(&["apply"]).await;
    result.unwrap_or_else(|e| panic!("{out}\n{e}"));
    assert_eq!(d.cloud.dir(|dir| dir.applications.len()), 6);
}

#[tokio::test]
async fn a_soft_deleted_app_keeps_its_identifier_uri_which_is_why_cleanup_purges() {
    let d = Provisioned::new().await;
    d.run(&["apply"]).await.1.unwrap();
    // Delete the apps the way the portal does (soft delete), not the hook's way.
    d.cloud.dir(|dir| {
        let ids: Vec<String> = dir.applications.keys().cloned().collect();
        for id in ids {
            let app = dir.applications.remove(&id).unwrap();
            dir.deleted.insert(id, app);
        }
    });
    let (_, result) = d.run(&["apply"]).await;
    let message = result.unwrap_err();
    assert!(message.contains("identifierUris already exists"), "{message}");
}

#[tokio::test]
async fn a_token_for_another_tenant_is_refused_before_any_write() {
    let d = Provisioned::with(Config::new("0e8f1c2d-0000-4000-8000-000000000000"), "dev").await;
    let (_, result) = d.run(&["apply"]).await;
    let message = result.unwrap_err();
    assert!(message.contains("the developer sign-in is for tenant 0e8f1c2d-0000-4000-8000-000000000000"), "{message}");
    assert!(message.contains(&format!("azd auth login --tenant-id {TENANT}")), "{message}");
    assert!(d.cloud.writes().is_empty());
}

#[tokio::test]
async fn without_admin_rights_consent_is_left_to_an_administrator() {
    let mut config = Config::new(TENANT);
    config.admin = false;
    let d = Provisioned::with(config, "dev").await;
    let (out, result) = d.run(&["apply", "--assign-role", "orders-api/Orders.Admin"]).await;
    result.unwrap_or_else(|e| panic!("{out}\n{e}"));
    assert_eq!(d.cloud.dir(|dir| (dir.grants.len(), dir.assignments.len())), (0, 0));
    assert_eq!(d.cloud.dir(|dir| dir.applications.len()), 3, "everything else is done");
    let chat_app_id = d.env_values()["CHAT_APP_CLIENT_ID"].clone();
    assert!(
        out.contains(&format!("https://login.microsoftonline.com/{TENANT}/adminconsent?client_id={chat_app_id}")),
        "{out}"
    );
    assert!(out.contains("note: assigning orders-api/Orders.Admin needs an administrator"), "{out}");
}

#[tokio::test]
async fn the_signed_in_user_can_be_made_orders_admin_once() {
    let d = Provisioned::new().await;
    let (out, result) = d.run(&["--assign-role", "orders-api/Orders.Admin"]).await;
    result.unwrap_or_else(|e| panic!("{out}\n{e}"));
    let manifest = Manifest::load(&d.manifest).unwrap();
    let role_id = manifest.app("orders-api").unwrap().app_role("Orders.Admin").unwrap().id.clone();
    let assignments = d.cloud.dir(|dir| dir.assignments.clone());
    let me = d.cloud.shared.config.lock().unwrap().me.clone();
    assert_eq!(assignments.len(), 1);
    let assignment = assignments.values().next().unwrap();
    assert_eq!(assignment["principalId"], me.as_str());
    assert_eq!(assignment["appRoleId"], role_id.as_str());

    // The same request through the azd environment: nothing new.
    let mut env = d.env_values();
    env.insert("ORDERS_COPILOT_ASSIGN_ROLES".into(), "orders-api/Orders.Admin".into());
    std::fs::write(d.env_file(), postprovision::dotenv::render(&env)).unwrap();
    let writes = d.cloud.writes().len();
    let (_, result) = d.run(&[]).await;
    assert!(result.unwrap().changes.is_empty());
    assert_eq!(d.cloud.writes().len(), writes);
}

#[tokio::test]
async fn two_apps_with_one_tag_are_refused_with_their_ids() {
    let d = Provisioned::new().await;
    d.run(&["apply"]).await.1.unwrap();
    let copy = d.cloud.dir(|dir| {
        let original = dir
            .applications
            .values()
            .find(|a| a["displayName"] == format!("Orders API (dev {RESOURCE_TOKEN})"))
            .cloned()
            .unwrap();
        let mut copy = original;
        copy["id"] = json!("11111111-2222-3333-4444-555555555555");
        copy["appId"] = json!("66666666-7777-8888-9999-000000000000");
        copy["identifierUris"] = json!([]);
        dir.applications.insert("11111111-2222-3333-4444-555555555555".into(), copy.clone());
        copy
    });
    let (_, result) = d.run(&[]).await;
    let message = result.unwrap_err();
    assert!(message.contains(&format!("2 app registrations carry the tag {:?}", d.app_tag("orders-api"))), "{message}");
    assert!(message.contains(copy["id"].as_str().unwrap()), "{message}");
}

#[tokio::test]
async fn missing_deployment_values_are_all_named() {
    let d = Provisioned::new().await;
    std::fs::write(d.env_file(), "AZURE_ENV_NAME=\"dev\"\nCHAT_APP_URL=\"http://chat.example\"\n").unwrap();
    let (_, result) = d.run(&[]).await;
    let message = result.unwrap_err();
    for expected in
        ["AZURE_TENANT_ID is not set", "must use https", "ORDERS_MCP_MANAGED_IDENTITY_PRINCIPAL_ID", "azd provision"]
    {
        assert!(message.contains(expected), "{expected:?} missing from:\n{message}");
    }
    assert!(d.cloud.dir(|dir| dir.requests) == 0, "nothing was sent");
}

/// As an azd hook: values from the process environment, results through `azd env set`.
#[cfg(unix)]
#[tokio::test]
async fn as_an_azd_hook_it_reads_the_process_environment_and_calls_azd_env_set() {
    use std::os::unix::fs::PermissionsExt;

    let d = Provisioned::new().await;
    let log = d.files.path().join("azd.log");
    let azd = d.files.path().join("azd");
    std::fs::write(&azd, format!("#!/bin/sh\necho \"$@\" >> {}\n", log.display())).unwrap();
    std::fs::set_permissions(&azd, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut process_env = d.env_values();
    process_env.insert("AZD".into(), azd.display().to_string());
    let argv: Vec<String> = [
        "postprovision",
        "apply",
        "--manifest",
        &d.manifest.display().to_string(),
        "--graph-url",
        &d.cloud.graph_url(),
        "--arm-url",
        &d.cloud.url,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let (out, result) = support::run_cli(argv, process_env).await;
    result.unwrap_or_else(|e| panic!("{out}\n{e}"));
    let calls = std::fs::read_to_string(&log).unwrap();
    let api_id = d.cloud.dir(|dir| {
        dir.applications
                .values()
                .find(|a| a["displayName"] == format!("Orders API (dev {RESOURCE_TOKEN})"))
                .unwrap()["appId"]
                .as_str()
                .unwrap()
                .to_string()
    });
    assert!(calls.lines().any(|l| l == format!("env set ORDERS_API_CLIENT_ID {api_id} --environment dev")), "{calls}");
    assert!(
        calls.lines().any(|l| l == "env set ORDERS_MCP_APP_ID_URI https://orders-mcp-abc123.happyfield-1234.swedencentral.azurecontainerapps.io/mcp --environment dev"),
        "{calls}"
    );
    assert_eq!(calls.lines().count(), 5, "{calls}");
}

/// Defect 1: on a new app Graph checks `preAuthorizedApplications` against the scopes it already
/// holds, so the pre-authorization must come in a later patch than the scopes; and the token
/// version must be 2 before orders-mcp's https identifier URI is added. The first run above
/// succeeds against this strict fake only because the writes come in that order; here the fake
/// itself is shown refusing the one-request version with Graph's body.
#[tokio::test]
async fn graph_refuses_a_pre_authorization_sent_with_the_scopes_it_names() {
    let d = Provisioned::new().await;
    let http = reqwest::Client::new();
    let created: Value = http
        .post(format!("{}/applications", d.cloud.graph_url()))
        .bearer_auth(support::fake_cloud::TOKEN)
        .json(&json!({"displayName": "x", "signInAudience": "AzureADMyOrg"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let scope = "8e1c2b0a-0000-4000-8000-000000000001";
    let patch = json!({"api": {
        "oauth2PermissionScopes": [{"id": scope, "value": "Orders.Read", "type": "User", "isEnabled": true,
            "adminConsentDisplayName": "r", "adminConsentDescription": "r"}],
        "preAuthorizedApplications": [{"appId": "04b07795-8ddb-461a-bbee-02f9e1bf7b46", "delegatedPermissionIds": [scope]}]
    }});
    let url = format!("{}/applications/{}", d.cloud.graph_url(), created["id"].as_str().unwrap());
    let answer = http.patch(&url).bearer_auth(support::fake_cloud::TOKEN).json(&patch).send().await.unwrap();
    assert_eq!(answer.status(), 400);
    let body: Value = answer.json().await.unwrap();
    assert_eq!(
        body["error"]["message"],
        "Property api.preAuthorizedApplications.delegatedPermissionIds has a Permission Id that cannot be found in the AppPermissions sets."
    );
    // The https URI of an app still issuing v1 tokens, on a host that is not a verified domain.
    let answer = http
        .patch(&url)
        .bearer_auth(support::fake_cloud::TOKEN)
        .json(&json!({"identifierUris": [format!("{}/mcp", support::ORDERS_MCP_URL)]}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 400);
    let body: Value = answer.json().await.unwrap();
    assert_eq!(body["error"]["code"], "HostNameNotOnVerifiedDomain", "{body}");
}

/// Defect 2: Entra's default identifier-URI policy refuses `api://<string>` without the tenant
/// id or app id ("Restrictions on identifier URIs of Microsoft Entra applications").
#[tokio::test]
async fn an_api_uri_without_the_tenant_id_is_refused_as_entra_does() {
    let d = Provisioned::new().await;
    d.edit_manifest(|t| t.replace("api://{tenant_id}/orders-api-{suffix}", "api://orders-api-{suffix}"));
    let (out, result) = d.run(&["apply"]).await;
    let message = result.unwrap_err();
    assert!(message.contains("must contain a tenant verified domain, tenant ID, or app ID"), "{out}\n{message}");
}

/// Defect 7: a new service principal cannot be named by a grant for a while (400 "Not a valid
/// reference update."): the hook waits, saying so, instead of stopping.
#[tokio::test]
async fn grants_wait_for_a_new_service_principal_to_replicate() {
    let mut config = Config::new(TENANT);
    config.grant_replication = Duration::from_millis(600);
    let d = Provisioned::with(config, "dev").await;
    let (out, result) = d.run(&["apply", "--assign-role", "orders-api/Orders.Admin"]).await;
    result.unwrap_or_else(|e| panic!("{out}\n{e}"));
    assert!(d.cloud.dir(|dir| dir.reference_lag_answers) >= 2, "{out}");
    assert!(out.contains("waiting for Entra to replicate the new service principals"), "{out}");
    assert_eq!(d.cloud.dir(|dir| (dir.grants.len(), dir.assignments.len())), (2, 1));
    assert!(d.run(&["apply", "--assign-role", "orders-api/Orders.Admin"]).await.1.unwrap().changes.is_empty());
}

/// Defect 6: two people's `dev` environments in one tenant (other subscription, other resource
/// token, other orders-mcp endpoint) get their own apps, and one's cleanup leaves the other's.
#[tokio::test]
async fn two_dev_environments_in_one_tenant_keep_their_own_apps() {
    let d = Provisioned::new().await;
    d.run(&["apply"]).await.1.unwrap();
    let other_env = d.files.path().join("other-dev.env");
    std::fs::write(
        &other_env,
        std::fs::read_to_string(d.env_file())
            .unwrap()
            .replace(SUBSCRIPTION, "99999999-4b5c-4d6e-8f90-a1b2c3d4e5f6")
            .replace(RESOURCE_TOKEN, "zzz999qqq0001")
            .replace("orders-mcp-abc123", "orders-mcp-zzz999"),
    )
    .unwrap();
    let run_other = |args: &[&str]| {
        let mut argv: Vec<String> = ["postprovision", "--manifest"].iter().map(|s| s.to_string()).collect();
        argv.extend([d.manifest.display().to_string(), "--env-file".into(), other_env.display().to_string()]);
        argv.extend(["--graph-url".into(), d.cloud.graph_url(), "--skip-container-apps".into()]);
        argv.extend(args.iter().map(|s| s.to_string()));
        support::run_cli(argv, BTreeMap::new())
    };
    let (out, result) = run_other(&["apply"]).await;
    result.unwrap_or_else(|e| panic!("{out}\n{e}"));
    assert_eq!(d.cloud.dir(|dir| dir.applications.len()), 6, "the second dev environment adopted nothing: {out}");
    let (out, result) = run_other(&["cleanup"]).await;
    result.unwrap_or_else(|e| panic!("{out}\n{e}"));
    let apps = d.cloud.dir(|dir| dir.applications.clone());
    assert_eq!(apps.len(), 3);
    assert!(apps.values().all(|a| a["tags"].as_array().unwrap().iter().any(|t| *t == d.tag())));
    assert!(d.run(&["apply"]).await.1.unwrap().changes.is_empty(), "the first one is untouched");
}

/// Defect 6: an app holding one of our identifier URIs that this deployment did not create
/// (no tag of ours) is named and left alone, never adopted, changed or deleted.
#[tokio::test]
async fn an_app_this_deployment_did_not_create_is_never_touched() {
    let d = Provisioned::new().await;
    let stranger = json!({
        "id": "11111111-2222-3333-4444-555555555555", "appId": "66666666-7777-8888-9999-000000000000",
        "displayName": "Someone's Orders API", "tags": ["orders-copilot", "orders-copilot:dev"],
        "identifierUris": [ORDERS_API_URI], "api": {}, "appRoles": [], "web": {}, "requiredResourceAccess": []
    });
    d.cloud.dir(|dir| dir.applications.insert("11111111-2222-3333-4444-555555555555".into(), stranger.clone()));
    let (out, result) = d.run(&["apply"]).await;
    let message = result.unwrap_err();
    assert!(message.contains("belongs to an app registration this deployment did not create"), "{out}\n{message}");
    assert!(message.contains("11111111-2222-3333-4444-555555555555"), "{message}");
    let (out, result) = d.run(&["cleanup"]).await;
    result.unwrap_or_else(|e| panic!("{out}\n{e}"));
    assert_eq!(d.cloud.dir(|dir| dir.applications["11111111-2222-3333-4444-555555555555"].clone()), stranger);
}

/// Defect 5: after a provision that failed before its outputs, azd's `down` runs the predown
/// hook with only azd's own values; cleanup says there is nothing of this deployment and succeeds.
/// With the outputs that identify the deployment (and nothing else), it removes what was made.
#[tokio::test]
async fn cleanup_works_after_a_failed_provision() {
    let d = Provisioned::new().await;
    let full = std::fs::read_to_string(d.env_file()).unwrap();
    std::fs::write(
        d.env_file(),
        format!("AZURE_ENV_NAME=\"dev\"\nAZURE_LOCATION=\"swedencentral\"\nAZURE_SUBSCRIPTION_ID=\"{SUBSCRIPTION}\"\n"),
    )
    .unwrap();
    let (out, result) = d.run(&["cleanup"]).await;
    result.unwrap_or_else(|e| panic!("{out}\n{e}"));
    assert!(out.contains("never provisioned to the end"), "{out}");

    std::fs::write(d.env_file(), full).unwrap();
    d.run(&["apply"]).await.1.unwrap();
    std::fs::write(
        d.env_file(),
        format!(
            "AZURE_ENV_NAME=\"dev\"\nAZURE_SUBSCRIPTION_ID=\"{SUBSCRIPTION}\"\nAZURE_TENANT_ID=\"{TENANT}\"\nAZURE_RESOURCE_TOKEN=\"{RESOURCE_TOKEN}\"\n"
        ),
    )
    .unwrap();
    let (out, result) = d.run(&["cleanup"]).await;
    result.unwrap_or_else(|e| panic!("{out}\n{e}"));
    assert_eq!(d.cloud.dir(|dir| dir.applications.len()), 0, "{out}");
}

/// Defect 4: the retired default model failed ten minutes into provisioning. The preprovision
/// check reads the model from the parameters azd gives Bicep and asks ARM what the region
/// offers and what quota is free, before anything is provisioned.
#[tokio::test]
async fn preprovision_stops_on_a_model_the_region_does_not_offer_or_has_no_quota_for() {
    let d = Provisioned::new().await;
    std::fs::copy(
        std::path::Path::new(entra_manifest::REPOSITORY_MANIFEST).with_file_name("main.parameters.json"),
        d.files.path().join("main.parameters.json"),
    )
    .unwrap();
    // What swedencentral offers: the retired model's SKU is past its deprecation date.
    d.cloud.offer_model("swedencentral", "gpt-4o-mini", "2024-07-18", "GlobalStandard", Some("2025-10-01T00:00:00Z"));
    d.cloud.offer_model("swedencentral", "gpt-5-mini", "2025-08-07", "GlobalStandard", None);
    d.cloud.set_quota("swedencentral", "OpenAI.GlobalStandard.gpt-5-mini", 0, 1000);

    let (out, result) = d.run(&["preprovision"]).await;
    result.unwrap_or_else(|e| panic!("{out}\n{e}"));
    assert!(out.contains("gpt-5-mini 2025-08-07 (GlobalStandard) is offered in swedencentral"), "{out}");

    let with = |extra: &str| {
        let text = std::fs::read_to_string(d.env_file()).unwrap();
        std::fs::write(d.env_file(), format!("{text}{extra}")).unwrap();
    };
    with("AZURE_OPENAI_MODEL=\"gpt-4o-mini\"\nAZURE_OPENAI_MODEL_VERSION=\"2024-07-18\"\n");
    let message = d.run(&["preprovision"]).await.1.unwrap_err();
    assert!(message.contains("does not offer gpt-4o-mini version 2024-07-18"), "{message}");
    assert!(message.contains("Offered there with GlobalStandard: gpt-5-mini 2025-08-07."), "{message}");

    d.write_env_file("dev");
    d.cloud.set_quota("swedencentral", "OpenAI.GlobalStandard.gpt-5-mini", 990, 1000);
    let message = d.run(&["preprovision"]).await.1.unwrap_err();
    assert!(message.contains("has 10 (thousand tokens per minute) free, and the deployment asks for 30"), "{message}");
    assert!(d.cloud.writes().is_empty(), "the check writes nothing");
}

/// What each service of a container app resolves its identity from, as its configuration does
/// (entra_auth::settings::Identity, in a deployment): `Err` names what is missing.
fn service_identities(env: &BTreeMap<String, String>, container_app: &str) -> Result<Vec<String>, String> {
    use entra_auth::settings::Identity;
    let mut env = service_kit::settings::Env::from_map(env.clone().into_iter().chain([
        ("CONTAINER_APP_NAME".to_string(), container_app.to_string()),
        ("ENTRA_TENANT_ID".to_string(), TENANT.to_string()),
        ("IDENTITY_MANIFEST".to_string(), entra_manifest::REPOSITORY_MANIFEST.to_string()),
    ]));
    let identity = Identity::from_env(&mut env);
    let apps: &[(&str, &str)] = match container_app {
        "orders-api-abc123" => &[("ORDERS_API", "orders-api")],
        "orders-mcp-abc123" => &[("ORDERS_MCP", "orders-mcp"), ("ORDERS_API", "orders-api")],
        _ => &[("CHAT_APP", "chat-app"), ("ORDERS_MCP", "orders-mcp")],
    };
    let ids: Vec<String> = apps.iter().map(|(prefix, name)| identity.app(&mut env, prefix, name).client_id).collect();
    env.finish().map_err(|e| e.to_string())?;
    Ok(ids)
}

/// The whole sequence the way azd runs it, against the strict fakes: the preprovision check,
/// the provision's outputs, the hook (failing at each Graph write in turn, then run again), the
/// services' identity settings from what the hook wrote into the container apps (they refuse
/// the placeholders before), and `azd down`'s cleanup, which also works right after a failure.
/// In agent mode, so the agent blueprint, its principal, inheritable permission, consent and
/// the agent identity each take their turn at failing too.
#[tokio::test]
async fn dress_rehearsal_from_preprovision_to_down_with_a_failure_at_every_write() {
    let reference = clean_run_snapshot_in(true).await;
    for failed_after in 0..reference.2 {
        let mut config = Config::new(TENANT);
        config.fail_after_writes = Some((failed_after, Fault::Refuse));
        config.grant_replication = Duration::from_millis(50);
        let d = Provisioned::with(config, "dev").await;
        d.set_agent_mode();
        std::fs::copy(
            std::path::Path::new(entra_manifest::REPOSITORY_MANIFEST).with_file_name("main.parameters.json"),
            d.files.path().join("main.parameters.json"),
        )
        .unwrap();
        d.cloud.offer_model("swedencentral", "gpt-5-mini", "2025-08-07", "GlobalStandard", None);
        d.cloud.set_quota("swedencentral", "OpenAI.GlobalStandard.gpt-5-mini", 0, 1000);
        d.run(&["preprovision"]).await.1.unwrap();

        // Provisioned, hook not yet run: the services refuse to start on the emulator's ids.
        let refused = service_identities(&d.cloud.container_env("orders-api-abc123"), "orders-api-abc123");
        assert!(refused.unwrap_err().contains("ORDERS_API_CLIENT_ID"), "before the hook");

        let (out, result) = d.run(&["apply"]).await;
        let message = result.unwrap_err();
        assert!(message.starts_with("stopped after") && message.contains("Injected fault"), "{out}\n{message}");
        assert_eq!(d.cloud.writes().len(), failed_after);
        d.cloud.config(|c| c.fail_after_writes = None);
        if failed_after % 2 == 1 {
            // azd down right after the failure removes what the failed run made.
            let (out, result) = d.run(&["cleanup"]).await;
            result.unwrap_or_else(|e| panic!("{out}\n{e}"));
            assert!(d.cloud.dir(|dir| dir.applications.is_empty()), "{out}");
        }
        let (out, result) = d.run(&["apply"]).await;
        result.unwrap_or_else(|e| panic!("after {failed_after}: {out}\n{e}"));
        same_result(&d, &reference);
        assert!(d.run(&["apply"]).await.1.unwrap().changes.is_empty(), "converged after {failed_after}");

        let env = d.env_values();
        for (_, container_app, _) in support::CONTAINER_APPS {
            let ids = service_identities(&d.cloud.container_env(container_app), container_app)
                .unwrap_or_else(|e| panic!("{container_app}: {e}"));
            assert!(ids.iter().all(|id| env.values().any(|v| v == id)), "{container_app}: {ids:?}");
        }
        let chat = d.cloud.container_env("chat-app-abc123");
        for key in ["CHAT_APP_AGENT_BLUEPRINT_ID", "CHAT_APP_AGENT_BLUEPRINT_APP_ID_URI", "CHAT_APP_AGENT_ID"] {
            assert!(!chat[key].is_empty() && chat[key] == env[key], "chat-app {key} after {failed_after}");
        }

        let (out, result) = d.run(&["cleanup"]).await;
        result.unwrap_or_else(|e| panic!("{out}\n{e}"));
        assert!(d.cloud.dir(|dir| dir.applications.is_empty() && dir.service_principals.is_empty()), "{out}");
    }
}

// ---------------------------------------------------------------------------------------------
// Agent mode (CHAT_APP_AGENT_IDENTITY=entra-agent-id): Microsoft Entra Agent ID through Graph v1.0.

/// The blueprint's Application ID URI in the test deployment (the manifest's
/// `api://{tenant_id}/orders-copilot-agent-{suffix}`).
const BLUEPRINT_URI: &str = "api://5a8f0e3c-2d4b-4c1e-9f6a-7b8c9d0e1f2a/orders-copilot-agent-dev-abc123xyz7890";

/// Everything agent mode needs, created in the order Graph requires and once: the blueprint
/// (sponsored by the signed-in user: "You must specify the displayName property and sponsors
/// relationship", https://learn.microsoft.com/graph/api/agentidentityblueprint-post?view=graph-rest-1.0)
/// with its identifier URI, scope, pre-authorized chat-app and federated credential trusting
/// chat-app's managed identity; its principal, through its own type; the inheritable
/// permission and its admin consent; the agent identity, from the blueprint's principal
/// ("Create agentIdentity", https://learn.microsoft.com/graph/api/agentidentity-post?view=graph-rest-1.0),
/// with no credential of its own; the ids chat-app reads. All of it written through the
/// provisioning client the developer signed in to once, in the browser (the default; the fake
/// refuses these writes from the Azure CLI's token). A second run changes nothing and needs no
/// sign-in.
#[tokio::test]
async fn agent_mode_creates_the_blueprint_its_principal_the_agent_identity_and_their_permissions() {
    let d = Provisioned::new().await;
    d.set_agent_mode();
    let (out, result) = d.run(&["apply"]).await;
    result.unwrap_or_else(|e| panic!("{out}\n{e}"));
    assert!(out.contains(&format!("{}To sign in, open this page in a browser", support::PROMPTED)), "{out}");
    assert_eq!(d.cloud.dir(|dir| (dir.browser_sign_ins, dir.device_sign_ins)), (1, 0), "one sign-in for the whole run");
    let me = d.cloud.shared.config.lock().unwrap().me.clone();
    let manifest = Manifest::load(&d.manifest).unwrap();
    let m_blueprint = &manifest.agent_blueprints["orders-copilot"];

    let apps: Vec<Value> = d.cloud.dir(|dir| dir.applications.values().cloned().collect());
    assert_eq!(apps.len(), 5, "3 apps + the blueprint + the provisioning client");
    let blueprint = app(&d, "orders-copilot", &apps);
    let chat = app(&d, "chat-app", &apps);
    let mcp = app(&d, "orders-mcp", &apps);
    assert_eq!(blueprint["@odata.type"], "#microsoft.graph.agentIdentityBlueprint");
    assert_eq!(blueprint["sponsors"], json!([me]));
    assert_eq!(blueprint["displayName"], format!("Orders Copilot agent blueprint (dev {RESOURCE_TOKEN})"));
    assert_eq!(blueprint["identifierUris"], json!([BLUEPRINT_URI]));
    assert_eq!(blueprint["api"]["requestedAccessTokenVersion"], 2);
    let scope = &blueprint["api"]["oauth2PermissionScopes"][0];
    assert_eq!(
        (scope["value"].as_str(), scope["id"].as_str()),
        (Some("access_as_user"), Some(m_blueprint.scopes[0].id.as_str()))
    );
    assert_eq!(
        blueprint["api"]["preAuthorizedApplications"],
        json!([{"appId": chat["appId"], "delegatedPermissionIds": [m_blueprint.scopes[0].id]}])
    );
    let (fics, inheritable, sps, grants) = d.cloud.dir(|dir| {
        let id = blueprint["id"].as_str().unwrap();
        (dir.federated[id].clone(), dir.inheritable[id].clone(), dir.service_principals.clone(), dir.grants.clone())
    });
    assert_eq!(fics.len(), 1);
    assert_eq!(
        (fics[0]["subject"].as_str(), fics[0]["name"].as_str()),
        (Some(CHAT_MI), Some("chat-app-managed-identity"))
    );
    assert_eq!(
        inheritable,
        [json!({"resourceAppId": mcp["appId"], "inheritableScopes": {
            "@odata.type": "#microsoft.graph.enumeratedScopes", "kind": "enumerated", "scopes": ["access_as_user"]}})]
    );
    let principal = sps.values().find(|sp| sp["appId"] == blueprint["appId"]).unwrap();
    assert_eq!(principal["@odata.type"], "#microsoft.graph.agentIdentityBlueprintPrincipal");
    let mcp_sp = sps.values().find(|sp| sp["appId"] == mcp["appId"]).unwrap();
    let consent = grants.values().find(|g| g["clientId"] == principal["id"]).unwrap();
    assert_eq!(
        (consent["resourceId"].clone(), consent["scope"].clone()),
        (mcp_sp["id"].clone(), json!("access_as_user"))
    );
    assert_eq!(consent["consentType"], "AllPrincipals");
    let agent = sps.values().find(|sp| sp["agentIdentityBlueprintId"] == blueprint["appId"]).unwrap();
    assert_eq!(agent["@odata.type"], "#microsoft.graph.agentIdentity");
    assert_eq!(agent["displayName"], format!("Orders Copilot agent (dev {RESOURCE_TOKEN})"));
    assert_eq!(agent["sponsors"], json!([me]));
    assert_eq!((agent["passwordCredentials"].clone(), agent["keyCredentials"].clone()), (json!([]), json!([])));
    assert!(!d.cloud.dir(|dir| dir.federated.contains_key(agent["id"].as_str().unwrap())), "no credential of its own");

    // chat-app's agent mode reads these (chat-app/src/configuration.rs).
    let env = d.env_values();
    assert_eq!(env["CHAT_APP_AGENT_BLUEPRINT_ID"], blueprint["appId"].as_str().unwrap());
    assert_eq!(env["CHAT_APP_AGENT_BLUEPRINT_APP_ID_URI"], BLUEPRINT_URI);
    assert_eq!(env["CHAT_APP_AGENT_ID"], agent["appId"].as_str().unwrap());
    let container = d.cloud.container_env("chat-app-abc123");
    for key in ["CHAT_APP_AGENT_BLUEPRINT_ID", "CHAT_APP_AGENT_BLUEPRINT_APP_ID_URI", "CHAT_APP_AGENT_ID"] {
        assert_eq!(container[key], env[key], "{key}");
    }
    assert_eq!(container["CHAT_APP_AGENT_IDENTITY"], "entra-agent-id");

    // In Graph's order: blueprint, its principal, its inheritable permission, consent, agent.
    let writes = d.cloud.writes();
    let at = |w: &str| writes.iter().position(|x| x == w).unwrap_or_else(|| panic!("{w}: {writes:#?}"));
    assert!(
        at("POST /v1.0/applications/microsoft.graph.agentIdentityBlueprint")
            < at("POST /v1.0/servicePrincipals/microsoft.graph.agentIdentityBlueprintPrincipal")
    );
    assert!(
        at("POST /v1.0/servicePrincipals/microsoft.graph.agentIdentityBlueprintPrincipal")
            < at("POST /v1.0/servicePrincipals/microsoft.graph.agentIdentity")
    );
    assert_eq!(writes.iter().filter(|w| w.contains("agentIdentityBlueprint/inheritablePermissions")).count(), 1);

    let (out, result) = d.run(&["apply"]).await;
    assert!(result.unwrap().changes.is_empty(), "{out}");
    assert!(out.contains("Nothing to change"), "{out}");
    assert_eq!(d.cloud.dir(|dir| dir.browser_sign_ins), 1, "nothing to write, no sign-in: {out}");
}

/// `--dry-run` in agent mode plans the agent objects and writes nothing; the apply that follows
/// makes exactly that plan.
#[tokio::test]
async fn agent_mode_dry_run_plans_the_agent_objects() {
    let d = Provisioned::new().await;
    d.set_agent_mode();
    let (out, result) = d.run(&["--dry-run"]).await;
    let planned = result.unwrap_or_else(|e| panic!("{out}\n{e}")).changes;
    assert!(d.cloud.writes().is_empty());
    for (object, name) in [
        ("agent blueprint", "orders-copilot"),
        ("agent blueprint principal", "orders-copilot"),
        ("inheritable permission", "orders-copilot"),
        ("admin consent", "orders-copilot"),
        ("agent identity", "orders-copilot-agent"),
        ("azd env", "CHAT_APP_AGENT_ID"),
    ] {
        assert!(planned.iter().any(|c| c.object == object && c.name == name), "{object} {name}:\n{out}");
    }
    let (_, applied) = d.run(&["apply"]).await;
    let triples = |changes: &[postprovision::plan::Change]| {
        changes.iter().map(|c| (c.action, c.object, c.name.clone())).collect::<Vec<_>>()
    };
    assert_eq!(triples(&applied.unwrap().changes), triples(&planned));
}

/// Outside agent mode the hook plans nothing for the agent objects and never deletes them:
/// turning agent mode off leaves what agent mode made (only `azd down` removes it).
#[tokio::test]
async fn outside_agent_mode_the_agent_objects_are_neither_made_nor_removed() {
    let d = Provisioned::new().await;
    d.run(&["apply"]).await.1.unwrap();
    assert!(d.cloud.writes().iter().all(|w| !w.contains("agentIdentity")), "{:#?}", d.cloud.writes());
    d.set_agent_mode();
    d.run(&["apply"]).await.1.unwrap();
    let mut values = d.env_values();
    values.insert("CHAT_APP_AGENT_IDENTITY".into(), "none".into());
    std::fs::write(d.env_file(), postprovision::dotenv::render(&values)).unwrap();
    let writes = d.cloud.writes().len();
    let (out, result) = d.run(&["apply"]).await;
    assert!(result.unwrap().changes.is_empty(), "{out}");
    assert_eq!(d.cloud.writes().len(), writes);
    assert_eq!(d.cloud.dir(|dir| dir.applications.len()), 5, "the blueprint (and its provisioning client) stays");

    // `azd down` removes them in the reverse order: agent identity, blueprint principal, blueprint.
    let (out, result) = d.run(&["cleanup"]).await;
    result.unwrap_or_else(|e| panic!("{out}\n{e}"));
    assert!(d.cloud.dir(|dir| dir.applications.is_empty() && dir.service_principals.is_empty()), "{out}");
    let deletes: Vec<String> = d.cloud.writes()[writes..].to_vec();
    assert!(deletes[0].starts_with("DELETE /v1.0/servicePrincipals/"), "the agent identity first: {deletes:#?}");
    let lines: Vec<&str> = out
        .lines()
        .filter(|l| l.trim_start().starts_with("delete"))
        .filter(|l| l.contains(" orders-copilot: ") || l.contains(" orders-copilot-agent: "))
        .collect();
    assert!(lines[0].contains("delete agent identity orders-copilot-agent"), "{out}");
    assert!(lines[1].contains("delete service principal orders-copilot"), "{out}");
    assert!(lines[2].contains("delete application orders-copilot"), "{out}");
}

/// Without Agent ID Developer or Agent ID Administrator, Graph refuses the blueprint (403), even
/// through the provisioning client: the run stops there, naming the roles and how to go on
/// without agent mode.
#[tokio::test]
async fn without_an_agent_id_role_agent_mode_stops_with_what_to_ask_for() {
    let mut config = Config::new(TENANT);
    config.agent_id_role = false;
    let d = Provisioned::with(config, "dev").await;
    d.set_agent_mode();
    let (out, result) = d.run(&["apply"]).await;
    let message = result.unwrap_err();
    for expected in ["403", "Agent ID Developer", "Agent ID Administrator", "azd env set CHAT_APP_AGENT_IDENTITY none"]
    {
        assert!(message.contains(expected), "{expected}:\n{out}\n{message}");
    }
    assert!(d.cloud.dir(|dir| dir.applications.values().all(|a| a["@odata.type"].is_null())), "no blueprint");
}

/// Without an administrator neither the provisioning client's consent nor the blueprint's can
/// be granted, and agent mode cannot do without them (the Agent ID writes go through the one;
/// agent identities cannot be consented to interactively, they inherit the other): the run
/// stops at the first, giving the exact request for an administrator, and once one sent it,
/// the next run goes through and gives the exact request for the second.
#[tokio::test]
async fn without_an_administrator_the_blueprint_consent_is_asked_for_exactly() {
    let mut config = Config::new(TENANT);
    config.admin = false;
    let d = Provisioned::with(config, "dev").await;
    d.set_agent_mode();
    let (out, result) = d.run(&["apply"]).await;
    let message = result.unwrap_err();
    let client = d.cloud.dir(|dir| {
        let app = dir.applications.values().find(|a| a["isFallbackPublicClient"] == true).unwrap().clone();
        dir.service_principals.values().find(|sp| sp["appId"] == app["appId"]).unwrap()["id"].clone()
    });
    let scope = "AgentIdentity.Create.All AgentIdentity.DeleteRestore.All AgentIdentityBlueprint.ReadWrite.All \
AgentIdentityBlueprintPrincipal.ReadWrite.All";
    let request =
        json!({"clientId": client, "consentType": "AllPrincipals", "resourceId": GRAPH_PRINCIPAL_ID, "scope": scope});
    assert!(message.contains(&format!("--body '{request}'")), "{out}\n{message}");
    assert!(message.contains("Cloud Application Administrator"), "{message}");
    assert!(d.cloud.dir(|dir| dir.applications.values().all(|a| a["@odata.type"].is_null())), "no blueprint yet");

    // An administrator sends exactly that request.
    d.cloud.config(|c| c.admin = true);
    let response = reqwest::Client::new()
        .post(format!("{}/oauth2PermissionGrants", d.cloud.graph_url()))
        .bearer_auth(support::fake_cloud::TOKEN)
        .json(&request)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    d.cloud.config(|c| c.admin = false);
    let (out, result) = d.run(&["apply"]).await;
    result.unwrap_or_else(|e| panic!("{out}\n{e}"));
    let principal = d.cloud.dir(|dir| {
        let blueprint = dir.applications.values().find(|a| a["@odata.type"].is_string()).unwrap().clone();
        dir.service_principals.values().find(|sp| sp["appId"] == blueprint["appId"]).unwrap()["id"].clone()
    });
    assert!(out.contains("admin consent for agent blueprint orders-copilot -> orders-mcp (access_as_user) was not granted, and agent mode needs it"), "{out}");
    assert!(out.contains(&format!("\"clientId\":{principal}")), "{out}");
    assert!(
        out.contains("az rest --method POST --url https://graph.microsoft.com/v1.0/oauth2PermissionGrants"),
        "{out}"
    );
}

/// The fake refuses what Graph documents it refuses, so the hook's passing runs show it obeys:
/// each request here breaks one rule (see tests/support/fake_cloud/graph/agents.rs for the
/// sources) and gets Graph's error body.
#[tokio::test]
async fn the_fake_graph_refuses_agent_objects_made_out_of_order_or_without_a_sponsor() {
    let d = Provisioned::new().await;
    let me = d.cloud.shared.config.lock().unwrap().me.clone();
    let sponsor = json!([format!("https://graph.microsoft.com/v1.0/users/{me}")]);
    // Signed in through a client Graph honours Agent ID permissions for (see the test below).
    let token = d.cloud.token_for(&[&AGENT_ID_SCOPES[..], &["Application.ReadWrite.All"]].concat());
    let http = reqwest::Client::new();
    let post = |path: &str, body: Value| {
        let request = http.post(format!("{}/{path}", d.cloud.graph_url())).bearer_auth(&token).json(&body);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let refused = |(status, body): (u16, Value), what: &str| {
        assert_eq!(status, 400, "{what}: {body}");
        assert!(body["error"]["code"].is_string() && body["error"]["innerError"].is_object(), "{what}: {body}");
    };
    refused(
        post("applications/microsoft.graph.agentIdentityBlueprint", json!({"displayName": "b"})).await,
        "no sponsor",
    );
    let (status, blueprint) = post(
        "applications/microsoft.graph.agentIdentityBlueprint",
        json!({"displayName": "b", "sponsors@odata.bind": sponsor}),
    )
    .await;
    assert_eq!(status, 201, "{blueprint}");
    let blueprint_id = blueprint["appId"].as_str().unwrap();
    refused(post("servicePrincipals", json!({"appId": blueprint_id})).await, "a plain service principal");
    let agent = json!({"displayName": "a", "agentIdentityBlueprintId": blueprint_id, "sponsors@odata.bind": sponsor});
    refused(post("servicePrincipals/microsoft.graph.agentIdentity", agent.clone()).await, "before the principal");
    let (status, _) =
        post("servicePrincipals/microsoft.graph.agentIdentityBlueprintPrincipal", json!({"appId": blueprint_id})).await;
    assert_eq!(status, 201);
    let mut without_sponsor = agent.clone();
    without_sponsor.as_object_mut().unwrap().remove("sponsors@odata.bind");
    refused(post("servicePrincipals/microsoft.graph.agentIdentity", without_sponsor).await, "agent without a sponsor");
    let mut with_secret = agent.clone();
    with_secret["passwordCredentials"] = json!([{"displayName": "secret"}]);
    refused(post("servicePrincipals/microsoft.graph.agentIdentity", with_secret).await, "an agent's own credential");
    assert_eq!(post("servicePrincipals/microsoft.graph.agentIdentity", agent).await.0, 201);
    let permissions = format!(
        "applications/{}/microsoft.graph.agentIdentityBlueprint/inheritablePermissions",
        blueprint["id"].as_str().unwrap()
    );
    let scopes =
        |list: Value| json!({"@odata.type": "#microsoft.graph.enumeratedScopes", "kind": "enumerated", "scopes": list});
    refused(
        post(&permissions, json!({"resourceAppId": blueprint_id, "inheritableScopes": scopes(json!([]))})).await,
        "no scopes",
    );
    refused(
        post(&permissions, json!({"resourceAppId": blueprint_id, "inheritableScopes": scopes(json!(["Orders.Nope"]))}))
            .await,
        "a scope the resource does not publish",
    );
}

/// The provisioning client's delegated permissions (hooks/postprovision/src/reconcile/provisioning_client.rs).
const AGENT_ID_SCOPES: [&str; 4] = [
    "AgentIdentity.Create.All",
    "AgentIdentity.DeleteRestore.All",
    "AgentIdentityBlueprint.ReadWrite.All",
    "AgentIdentityBlueprintPrincipal.ReadWrite.All",
];

/// Graph's known issue on every Agent ID write API: "If the client is granted either the
/// Directory.AccessAsUser.All or Directory.ReadWrite.All permission, the client's permissions to
/// create, update, and delete Agent IDs are ignored, which can cause requests to fail with 403
/// Forbidden error" (https://learn.microsoft.com/graph/api/agentidentityblueprint-post?view=graph-rest-1.0,
/// and the same include on agentidentityblueprintprincipal-post, agentidentity-post, their
/// update and delete, inheritable permissions and federated credentials). The fake refuses
/// each such write from the Azure CLI's token (which azd's is too) and from a client holding
/// the Agent ID permissions plus `Directory.ReadWrite.All`, and accepts it from one holding
/// the Agent ID permissions alone; so the hook's passing agent-mode runs show it does not use
/// the Azure CLI's sign-in for them.
#[tokio::test]
async fn the_fake_graph_refuses_agent_id_writes_from_the_azure_cli_as_graph_documents() {
    let d = Provisioned::new().await;
    let me = d.cloud.shared.config.lock().unwrap().me.clone();
    let sponsor = json!([format!("https://graph.microsoft.com/v1.0/users/{me}")]);
    let agent_id = d.cloud.token_for(&AGENT_ID_SCOPES);
    let voided = d.cloud.token_for(&[&AGENT_ID_SCOPES[..], &["Directory.ReadWrite.All"]].concat());
    let http = reqwest::Client::new();
    let send = |method: reqwest::Method, path: String, token: String, body: Option<Value>| {
        let mut request = http.request(method, format!("{}/{path}", d.cloud.graph_url())).bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    // Refused to the Azure CLI and to the voided client, then done by the Agent ID client.
    let write = |method: reqwest::Method, path: String, body: Option<Value>| {
        let send = &send;
        let (agent_id, voided) = (agent_id.clone(), voided.clone());
        async move {
            for (who, token) in
                [("the Azure CLI", support::fake_cloud::TOKEN.to_string()), ("Directory.ReadWrite.All", voided)]
            {
                let (status, body) = send(method.clone(), path.clone(), token, body.clone()).await;
                assert_eq!(status, 403, "{method} {path} as {who}: {body}");
                assert_eq!(body["error"]["code"], "Authorization_RequestDenied", "{body}");
                assert_eq!(body["error"]["message"], "Insufficient privileges to complete the operation.");
            }
            let (status, body) = send(method.clone(), path.clone(), agent_id, body).await;
            assert!(status < 300, "{method} {path} through the Agent ID client: {status} {body}");
            body
        }
    };
    let blueprint = write(
        reqwest::Method::POST,
        "applications/microsoft.graph.agentIdentityBlueprint".into(),
        Some(json!({"displayName": "b", "sponsors@odata.bind": sponsor})),
    )
    .await;
    let (object_id, app_id) = (blueprint["id"].as_str().unwrap(), blueprint["appId"].as_str().unwrap());
    let typed = format!("applications/{object_id}/microsoft.graph.agentIdentityBlueprint");
    write(reqwest::Method::PATCH, typed.clone(), Some(json!({"api": {"requestedAccessTokenVersion": 2}}))).await;
    let fic = json!({"name": "mi", "issuer": "https://login.microsoftonline.com/t/v2.0", "subject": CHAT_MI,
                     "audiences": ["api://AzureADTokenExchange"]});
    write(reqwest::Method::POST, format!("{typed}/federatedIdentityCredentials"), Some(fic)).await;
    let principal = write(
        reqwest::Method::POST,
        "servicePrincipals/microsoft.graph.agentIdentityBlueprintPrincipal".into(),
        Some(json!({"appId": app_id})),
    )
    .await;
    let agent = write(
        reqwest::Method::POST,
        "servicePrincipals/microsoft.graph.agentIdentity".into(),
        Some(json!({"displayName": "a", "agentIdentityBlueprintId": app_id, "sponsors@odata.bind": sponsor})),
    )
    .await;
    write(reqwest::Method::DELETE, format!("servicePrincipals/{}", agent["id"].as_str().unwrap()), None).await;
    write(reqwest::Method::DELETE, format!("servicePrincipals/{}", principal["id"].as_str().unwrap()), None).await;
    write(reqwest::Method::DELETE, format!("applications/{object_id}"), None).await;
    write(reqwest::Method::DELETE, format!("directory/deletedItems/{object_id}"), None).await;

    // The Azure CLI's token still does what is not Agent ID's: an ordinary app registration.
    let (status, _) = send(
        reqwest::Method::POST,
        "applications".into(),
        support::fake_cloud::TOKEN.into(),
        Some(json!({"displayName": "x"})),
    )
    .await;
    assert_eq!(status, 201);
}

/// Agent mode's provisioning client (Graph ignores the Azure CLI's Agent ID permissions, see the
/// test above): made with the Azure CLI's sign-in before any Agent ID write, once, as a
/// single-tenant public client (browser sign-in: the loopback redirect URI `http://127.0.0.1/`,
/// whatever port; device code flow: public client flows allowed) with no credential, asking for exactly the
/// Agent ID permissions the hook's calls need (never Directory.AccessAsUser.All or
/// Directory.ReadWrite.All), admin consented; set back when changed; planned by a dry run;
/// removed last by `azd down`.
#[tokio::test]
async fn the_provisioning_client_is_made_once_with_exactly_the_agent_id_permissions() {
    let d = Provisioned::new().await;
    d.set_agent_mode();
    let (out, result) = d.run(&["--dry-run"]).await;
    let planned = result.unwrap_or_else(|e| panic!("{out}\n{e}")).changes;
    assert!(planned.iter().any(|c| c.object == "application" && c.name == "agent-id-provisioning"), "{out}");
    let (out, result) = d.run(&["apply"]).await;
    result.unwrap_or_else(|e| panic!("{out}\n{e}"));

    let tag = d.app_tag("agent-id-provisioning");
    let find = |d: &Provisioned| {
        d.cloud.dir(|dir| {
            let app = dir
                .applications
                .values()
                .find(|a| a["tags"].as_array().unwrap().contains(&json!(tag)))
                .cloned()
                .unwrap();
            let sp = dir.service_principals.values().find(|sp| sp["appId"] == app["appId"]).cloned().unwrap();
            let grants: Vec<Value> = dir.grants.values().filter(|g| g["clientId"] == sp["id"]).cloned().collect();
            let federated = dir.federated.get(app["id"].as_str().unwrap()).cloned().unwrap_or_default();
            (app, grants, federated)
        })
    };
    let name_of = |id: &Value| GRAPH_SCOPE_IDS.iter().find(|(_, i)| id == *i).map(|(name, _)| *name).unwrap();
    let (app, grants, federated) = find(&d);
    assert_eq!(app["displayName"], format!("Orders Copilot provisioning (Agent ID) (dev {RESOURCE_TOKEN})"));
    assert_eq!(
        (app["signInAudience"].clone(), app["isFallbackPublicClient"].clone()),
        (json!("AzureADMyOrg"), json!(true))
    );
    assert_eq!(app["publicClient"]["redirectUris"], json!(["http://127.0.0.1/"]));
    assert_eq!(app["web"]["redirectUris"], json!([]), "no web platform: a public client");
    assert_eq!((app["passwordCredentials"].clone(), app["keyCredentials"].clone()), (json!([]), json!([])));
    assert!(federated.is_empty(), "no credential: a public client");
    let access = app["requiredResourceAccess"].as_array().unwrap();
    assert_eq!(access.len(), 1);
    assert_eq!(access[0]["resourceAppId"], "00000003-0000-0000-c000-000000000000");
    let mut asked: Vec<&str> = access[0]["resourceAccess"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            assert_eq!(a["type"], "Scope", "delegated only");
            name_of(&a["id"])
        })
        .collect();
    asked.sort();
    assert_eq!(asked, AGENT_ID_SCOPES);
    assert_eq!(grants.len(), 1);
    assert_eq!(
        (grants[0]["resourceId"].clone(), grants[0]["consentType"].clone(), grants[0]["scope"].clone()),
        (json!(GRAPH_PRINCIPAL_ID), json!("AllPrincipals"), json!(AGENT_ID_SCOPES.join(" ")))
    );
    for forbidden in ["Directory.AccessAsUser.All", "Directory.ReadWrite.All"] {
        assert!(!asked.contains(&forbidden) && !grants[0]["scope"].as_str().unwrap().contains(forbidden));
    }
    let writes = d.cloud.writes();
    let first_agent_id = writes.iter().position(|w| w.contains("agentIdentity")).unwrap();
    assert!(writes[..first_agent_id].iter().any(|w| w == "POST /v1.0/oauth2PermissionGrants"), "{writes:#?}");

    // Someone widens it (the voiding permission), turns public client flows off and removes the
    // loopback redirect URI: set back.
    let directory = GRAPH_SCOPE_IDS.iter().find(|(n, _)| *n == "Directory.AccessAsUser.All").unwrap().1;
    d.cloud.dir(|dir| {
        let app = dir.applications.get_mut(app["id"].as_str().unwrap()).unwrap();
        app["requiredResourceAccess"][0]["resourceAccess"]
            .as_array_mut()
            .unwrap()
            .push(json!({"id": directory, "type": "Scope"}));
        app["isFallbackPublicClient"] = json!(false);
        app["publicClient"]["redirectUris"] = json!([]);
    });
    let (out, result) = d.run(&["apply"]).await;
    let changes = result.unwrap_or_else(|e| panic!("{out}\n{e}")).changes;
    assert_eq!(changes.len(), 1, "{out}");
    assert_eq!((changes[0].object, changes[0].name.as_str()), ("application", "agent-id-provisioning"));
    assert_eq!(find(&d).0["requiredResourceAccess"], app["requiredResourceAccess"]);
    assert_eq!(find(&d).0["isFallbackPublicClient"], true);
    assert_eq!(find(&d).0["publicClient"]["redirectUris"], json!(["http://127.0.0.1/"]));
    let (out, result) = d.run(&["apply"]).await;
    assert!(result.unwrap().changes.is_empty(), "{out}");
    // Only the redirect URI changed (to one the browser sign-in does not use): set back too.
    d.cloud.dir(|dir| {
        dir.applications.get_mut(app["id"].as_str().unwrap()).unwrap()["publicClient"]["redirectUris"] =
            json!(["http://localhost/"]);
    });
    let (out, result) = d.run(&["apply"]).await;
    assert_eq!(result.unwrap_or_else(|e| panic!("{out}\n{e}")).changes.len(), 1, "{out}");
    assert_eq!(find(&d).0["publicClient"]["redirectUris"], json!(["http://127.0.0.1/"]));

    // `azd down`: the Agent ID objects through it, then it, last.
    let (out, result) = d.run(&["cleanup"]).await;
    result.unwrap_or_else(|e| panic!("{out}\n{e}"));
    assert!(d.cloud.dir(|dir| dir.applications.is_empty() && dir.service_principals.is_empty()), "{out}");
    let deletes: Vec<&str> = out.lines().filter(|l| l.trim_start().starts_with("delete application")).collect();
    assert!(deletes.last().unwrap().contains("agent-id-provisioning"), "{out}");
}

/// The device-code sign-in ends one way or the other, never hangs: declined at the verification
/// page, or never answered until the code expires (RFC 8628 §3.5: `authorization_declined`,
/// `expired_token`; the client stops at `expires_in`). The run stops before any Agent ID write,
/// saying why, and the next run, signed in, finishes the job.
#[tokio::test]
async fn a_declined_or_expired_device_code_sign_in_stops_the_run_saying_so() {
    for (answer, expected) in [
        (SignInAnswer::Decline, "the sign-in was declined at the verification page"),
        (SignInAnswer::Expire, "expired before the sign-in was completed"),
    ] {
        let mut config = Config::new(TENANT);
        config.sign_in_answer = answer;
        // Entra's interval (5 s) and lifetime (15 min), scaled down: two polls, then the code expires.
        config.device_interval = 1;
        config.device_expires_in = 3;
        let d = Provisioned::with(config, "dev").await;
        d.set_agent_mode();
        let started = Instant::now();
        let run = d.run(&["apply", "--device-code"]);
        let (out, result) = tokio::time::timeout(Duration::from_secs(30), run).await.expect("no hang");
        let message = result.unwrap_err();
        assert!(message.contains(expected) && message.contains("stopped after"), "{answer:?}:\n{out}\n{message}");
        assert!(out.contains(&format!("{}To sign in, use a web browser", support::PROMPTED)), "the code: {out}");
        assert!(started.elapsed() < Duration::from_secs(10), "{answer:?}: {:?}", started.elapsed());
        assert!(d.cloud.dir(|dir| dir.applications.values().all(|a| a["@odata.type"].is_null())), "no blueprint");

        d.cloud.config(|c| c.sign_in_answer = SignInAnswer::Approve);
        let (out, result) = d.run(&["apply", "--device-code"]).await;
        result.unwrap_or_else(|e| panic!("{out}\n{e}"));
        assert!(
            d.cloud.dir(|dir| dir.service_principals.values().any(|sp| sp["agentIdentityBlueprintId"].is_string()))
        );
    }
}

/// The browser sign-in ends one way or the other, never hangs: refused at Entra's page (the
/// redirect brings `error=access_denied`, "Microsoft identity platform and OAuth 2.0
/// authorization code flow", Error response, https://learn.microsoft.com/entra/identity-platform/v2-oauth2-auth-code-flow),
/// or never finished until the time limit. The run stops before any Agent ID write, saying why,
/// and the next run, signed in, finishes the job.
#[tokio::test]
async fn a_refused_or_unfinished_browser_sign_in_stops_the_run_saying_so() {
    for (answer, expected) in
        [(SignInAnswer::Decline, "access_denied"), (SignInAnswer::Expire, "nobody finished signing in to client")]
    {
        let mut config = Config::new(TENANT);
        config.sign_in_answer = answer;
        let d = Provisioned::with(config, "dev").await;
        d.set_agent_mode();
        let started = Instant::now();
        let (out, result) = tokio::time::timeout(Duration::from_secs(30), d.run(&["apply"])).await.expect("no hang");
        let message = result.unwrap_err();
        assert!(message.contains(expected) && message.contains("stopped after"), "{answer:?}:\n{out}\n{message}");
        assert!(out.contains(&format!("{}To sign in, open this page", support::PROMPTED)), "{out}");
        assert!(started.elapsed() < support::SIGN_IN_TIME_LIMIT * 3, "{answer:?}: {:?}", started.elapsed());
        assert!(d.cloud.dir(|dir| dir.applications.values().all(|a| a["@odata.type"].is_null())), "no blueprint");

        d.cloud.config(|c| c.sign_in_answer = SignInAnswer::Approve);
        let (out, result) = d.run(&["apply"]).await;
        result.unwrap_or_else(|e| panic!("{out}\n{e}"));
        assert_eq!(d.cloud.dir(|dir| dir.browser_sign_ins), 1, "{out}");
    }
}

/// `--device-code`, or `ORDERS_COPILOT_SIGN_IN=device-code` in the azd environment, chooses the
/// device code flow (machines without a browser); the default is the browser; another value is
/// refused before anything is written.
#[tokio::test]
async fn the_device_code_flow_is_chosen_by_flag_or_azd_environment() {
    let d = Provisioned::new().await;
    d.set_agent_mode();
    let mut values = d.env_values();
    values.insert("ORDERS_COPILOT_SIGN_IN".into(), "devicecode".into());
    std::fs::write(d.env_file(), postprovision::dotenv::render(&values)).unwrap();
    let (out, result) = d.run(&["apply"]).await;
    let message = result.unwrap_err();
    assert!(message.contains("ORDERS_COPILOT_SIGN_IN=\"devicecode\" is not one of: browser, device-code"), "{message}");
    assert!(d.cloud.writes().is_empty(), "{out}");

    values.insert("ORDERS_COPILOT_SIGN_IN".into(), "device-code".into());
    std::fs::write(d.env_file(), postprovision::dotenv::render(&values)).unwrap();
    let (out, result) = d.run(&["apply"]).await;
    result.unwrap_or_else(|e| panic!("{out}\n{e}"));
    assert_eq!(d.cloud.dir(|dir| (dir.device_sign_ins, dir.browser_sign_ins)), (1, 0), "{out}");
}

/// The fake Entra's device-code sign-in is as strict as Entra's: a client that does not allow
/// public client flows gets AADSTS7000218 (the confidential-client error), one without an
/// administrator's consent to its Graph permissions AADSTS65001 ("Microsoft identity platform
/// and the OAuth 2.0 device authorization grant flow", https://learn.microsoft.com/entra/identity-platform/v2-oauth2-device-code;
/// AADSTS error codes, https://learn.microsoft.com/entra/identity-platform/reference-error-codes);
/// a consented public client gets a token with exactly the consented scopes.
#[tokio::test]
async fn the_fake_entra_signs_in_only_a_consented_public_client() {
    let d = Provisioned::new().await;
    let http = reqwest::Client::new();
    let graph = |method: reqwest::Method, path: &str, body: Value| {
        let request = http
            .request(method, format!("{}/{path}", d.cloud.graph_url()))
            .bearer_auth(support::fake_cloud::TOKEN)
            .json(&body);
        async move { request.send().await.unwrap().json::<Value>().await.unwrap_or(Value::Null) }
    };
    // The person approves at the second poll (the first is `authorization_pending`).
    let sign_in = |client: String| {
        let http = http.clone();
        let base = format!("{}/{TENANT}/oauth2/v2.0", d.cloud.url);
        async move {
            let form = [("client_id", client.as_str()), ("scope", "https://graph.microsoft.com/.default")];
            let code: Value =
                http.post(format!("{base}/devicecode")).form(&form).send().await.unwrap().json().await.unwrap();
            let device_code = code["device_code"].as_str().unwrap().to_string();
            let mut last = Value::Null;
            for _ in 0..2 {
                let form = [
                    ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                    ("client_id", client.as_str()),
                    ("device_code", device_code.as_str()),
                ];
                last = http.post(format!("{base}/token")).form(&form).send().await.unwrap().json().await.unwrap();
            }
            last
        }
    };
    let app = graph(reqwest::Method::POST, "applications", json!({"displayName": "p"})).await;
    let (object_id, client) = (app["id"].as_str().unwrap().to_string(), app["appId"].as_str().unwrap().to_string());
    let refused = sign_in(client.clone()).await;
    assert_eq!((refused["error"].clone(), refused["error_codes"].clone()), (json!("invalid_client"), json!([7000218])));

    graph(reqwest::Method::PATCH, &format!("applications/{object_id}"), json!({"isFallbackPublicClient": true})).await;
    let refused = sign_in(client.clone()).await;
    assert_eq!((refused["error"].clone(), refused["error_codes"].clone()), (json!("invalid_grant"), json!([65001])));

    let sp = graph(reqwest::Method::POST, "servicePrincipals", json!({"appId": client})).await;
    let grant = json!({"clientId": sp["id"], "consentType": "AllPrincipals", "resourceId": GRAPH_PRINCIPAL_ID,
                       "scope": "AgentIdentity.Create.All"});
    graph(reqwest::Method::POST, "oauth2PermissionGrants", grant).await;
    let token = sign_in(client).await;
    assert_eq!(token["scope"], "AgentIdentity.Create.All", "{token}");
    assert!(token["access_token"].is_string());
}

/// The fake Entra's browser sign-in is at least as strict as Entra's. `/authorize`: the redirect URI must
/// be one of the app's `publicClient.redirectUris`, exactly but for the port of a loopback one
/// ("the port component ... is ignored for the purposes of matching a redirect URI"; the host is
/// not: `localhost` is not `127.0.0.1`, https://learn.microsoft.com/entra/identity-platform/reply-url),
/// else AADSTS50011 on a page, never a redirect; PKCE with `S256` is required, which is stricter
/// than Entra (it recommends PKCE and accepts `plain` too: "Microsoft identity platform and OAuth
/// 2.0 authorization code flow", https://learn.microsoft.com/entra/identity-platform/v2-oauth2-auth-code-flow)
/// so that the hook's sign-in cannot drift to a weaker one unnoticed. `/token`: a code
/// is redeemed once (AADSTS54005), by its client, with its redirect URI and the verifier of its
/// challenge (AADSTS50148).
#[tokio::test]
async fn the_fake_entra_browser_sign_in_checks_redirect_uri_pkce_and_code_as_entra_does() {
    let d = Provisioned::new().await;
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let graph = |method: reqwest::Method, path: &str, body: Value| {
        let request = http
            .request(method, format!("{}/{path}", d.cloud.graph_url()))
            .bearer_auth(support::fake_cloud::TOKEN)
            .json(&body);
        async move { request.send().await.unwrap().json::<Value>().await.unwrap_or(Value::Null) }
    };
    let app = graph(
        reqwest::Method::POST,
        "applications",
        json!({"displayName": "p", "publicClient": {"redirectUris": ["http://127.0.0.1/"]}}),
    )
    .await;
    let client = app["appId"].as_str().unwrap().to_string();
    let sp = graph(reqwest::Method::POST, "servicePrincipals", json!({"appId": client})).await;
    let grant = json!({"clientId": sp["id"], "consentType": "AllPrincipals", "resourceId": GRAPH_PRINCIPAL_ID,
                       "scope": "AgentIdentity.Create.All"});
    graph(reqwest::Method::POST, "oauth2PermissionGrants", grant).await;
    let refused = graph(
        reqwest::Method::POST,
        "applications",
        json!({"displayName": "q", "publicClient": {"redirectUris": ["http://192.168.1.2/"]}}),
    )
    .await;
    assert!(refused["error"]["message"].as_str().unwrap().contains("must use https"), "{refused}");

    let base = format!("{}/{TENANT}/oauth2/v2.0", d.cloud.url);
    let verifier = entra_auth::pkce::verifier().unwrap();
    let challenge = entra_auth::pkce::challenge(&verifier);
    // `/authorize` with `redirect_uri` and PKCE `method`: the status and where it redirects to.
    let authorize = |redirect_uri: &str, method: Option<&str>| {
        let mut query = vec![
            ("client_id", client.clone()),
            ("response_type", "code".to_string()),
            ("redirect_uri", redirect_uri.to_string()),
            ("scope", "https://graph.microsoft.com/.default".to_string()),
            ("state", "s".to_string()),
        ];
        if let Some(method) = method {
            query.extend([("code_challenge", challenge.clone()), ("code_challenge_method", method.to_string())]);
        }
        let request = http.get(format!("{base}/authorize")).query(&query);
        async move {
            let answer = request.send().await.unwrap();
            let location = answer.headers().get("location").map(|l| l.to_str().unwrap().to_string());
            let params: BTreeMap<String, String> = location
                .as_deref()
                .map(|l| url::Url::parse(l).unwrap().query_pairs().into_owned().collect())
                .unwrap_or_default();
            (answer.status().as_u16(), location, params, answer.text().await.unwrap())
        }
    };
    for other in ["http://localhost:50000/", "http://127.0.0.1:50000/other", "https://127.0.0.1:50000/"] {
        let (status, location, _, page) = authorize(other, Some("S256")).await;
        assert_eq!((status, location), (400, None), "{other}: shown on a page, never sent there");
        assert!(page.contains("AADSTS50011"), "{other}: {page}");
    }
    let (_, _, params, _) = authorize("http://127.0.0.1:50000/", None).await;
    assert_eq!((params["error"].as_str(), params["state"].as_str()), ("invalid_request", "s"), "PKCE required");
    let (_, _, params, _) = authorize("http://127.0.0.1:50000/", Some("plain")).await;
    assert!(params["error_description"].contains("S256"), "{params:?}");

    let (status, location, params, _) = authorize("http://127.0.0.1:50000/", Some("S256")).await;
    assert_eq!(status, 302);
    assert!(location.unwrap().starts_with("http://127.0.0.1:50000/?code="), "any port");
    assert_eq!(params["state"], "s");
    let redeem = |code: &str, client: &str, redirect_uri: &str, verifier: &str| {
        let form = [
            ("grant_type", "authorization_code"),
            ("client_id", client),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier),
        ];
        let request = http.post(format!("{base}/token")).form(&form);
        async move { request.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let code = params["code"].clone();
    let wrong = redeem(&code, &client, "http://127.0.0.1:50000/", "another-verifier-another-verifier-another-v").await;
    assert_eq!(wrong["error_codes"], json!([50148]), "{wrong}");
    let used = redeem(&code, &client, "http://127.0.0.1:50000/", &verifier).await;
    assert_eq!(used["error_codes"], json!([54005]), "a code is tried once: {used}");

    let (_, _, params, _) = authorize("http://127.0.0.1:50001/", Some("S256")).await;
    let moved = redeem(&params["code"], &client, "http://127.0.0.1:50002/", &verifier).await;
    assert_eq!(moved["error"], "invalid_grant", "another redirect URI: {moved}");
    let (_, _, params, _) = authorize("http://127.0.0.1:50001/", Some("S256")).await;
    let other = redeem(&params["code"], "another-client", "http://127.0.0.1:50001/", &verifier).await;
    assert_eq!(other["error"], "invalid_grant", "another client: {other}");
    let (_, _, params, _) = authorize("http://127.0.0.1:50001/", Some("S256")).await;
    let token = redeem(&params["code"], &client, "http://127.0.0.1:50001/", &verifier).await;
    assert_eq!(token["scope"], "AgentIdentity.Create.All", "{token}");
    assert_eq!(d.cloud.dir(|dir| dir.browser_sign_ins), 1);
}
