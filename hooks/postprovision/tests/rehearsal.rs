//! The dress rehearsal's middle: after the hook has configured the (fake) tenant as a user who
//! is not an administrator, the services start with exactly the environment the (fake) ARM
//! holds for their container apps, the Entra emulator stands in for Entra with the app
//! registrations the hook created (read back from the fake Graph, not from the repository's
//! manifest, and with no admin consent), and `cargo xtask verify --env-file` passes against
//! them with the azd environment the hook left behind.
//!
//! The per-write failure loop, preprovision and `azd down` are in graph.rs
//! (`dress_rehearsal_from_preprovision_to_down_with_a_failure_at_every_write`).

// Test code, helpers included: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::serve::Listener;
use serde_json::{Value, json};
use service_kit::tls::rustls::ServerConfig;
use support::fake_cloud::Config;
use support::{CHAT_MI, CHAT_MI_CLIENT, CONTAINER_APPS, MCP_MI, MCP_MI_CLIENT, Origins, Provisioned, TENANT};

/// Container Apps' ingress for one app, on loopback: it terminates TLS (here with a
/// certificate from the emulator's local CA instead of a public one) and forwards the bytes to
/// the app's plain-HTTP target port, as the platform's ingress does. Its address is the app's
/// public origin.
async fn ingress(tls: &Arc<ServerConfig>) -> (SocketAddr, impl FnOnce(u16)) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // HTTP/1.1 only: the target sees exactly the request the client sent.
    let mut config = (**tls).clone();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let start = move |target: u16| {
        let mut tls = service_kit::tls::TlsListener::new(listener, Arc::new(config)).unwrap();
        tokio::spawn(async move {
            loop {
                let (mut client, _) = tls.accept().await;
                tokio::spawn(async move {
                    if let Ok(mut app) = tokio::net::TcpStream::connect(("127.0.0.1", target)).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut app).await;
                    }
                });
            }
        });
    };
    (addr, start)
}

/// The identity manifest the emulator stands in for Entra with: the tenant as the hook left it
/// in the fake Graph (app and object ids Graph assigned, identifier URIs, scopes, roles,
/// pre-authorizations, required access, redirect URIs, federated credentials), the managed
/// identities Bicep created, and, from the repository's manifest, what exists in every tenant
/// (Microsoft's first-party clients) or only in the emulator (its demo users).
fn manifest_from_the_tenant(d: &Provisioned) -> String {
    let (apps, federated) = d.cloud.dir(|dir| (dir.applications.clone(), dir.federated.clone()));
    let repository: toml::Table =
        toml::from_str(&std::fs::read_to_string(entra_manifest::REPOSITORY_MANIFEST).unwrap()).unwrap();
    let prefix = format!("{}:", d.tag());
    let manifest_name = |app: &Value| -> String {
        let tags = app["tags"].as_array().unwrap();
        tags.iter().filter_map(Value::as_str).find_map(|t| t.strip_prefix(&prefix)).unwrap().to_string()
    };
    // Who an app id is (ours, or Microsoft's clients), and what a permission id names.
    let mut names: BTreeMap<String, String> =
        apps.values().map(|a| (a["appId"].as_str().unwrap().to_string(), manifest_name(a))).collect();
    for (name, client) in repository["client"].as_table().unwrap() {
        names.insert(client["client_id"].as_str().unwrap().to_string(), name.clone());
    }
    let mut permissions: BTreeMap<String, String> = BTreeMap::new();
    for app in apps.values() {
        for scope in app["api"]["oauth2PermissionScopes"].as_array().unwrap() {
            permissions.insert(scope["id"].as_str().unwrap().into(), scope["value"].as_str().unwrap().into());
        }
    }
    let values = |ids: &Value| -> Vec<String> {
        ids.as_array().unwrap().iter().map(|id| permissions[id.as_str().unwrap()].clone()).collect()
    };
    let identities = [(CHAT_MI, "chat-app", CHAT_MI_CLIENT), (MCP_MI, "orders-mcp", MCP_MI_CLIENT)];
    let mut registrations = serde_json::Map::new();
    for app in apps.values() {
        let api = &app["api"];
        let mut entry = json!({
            "display_name": app["displayName"],
            "client_id": app["appId"],
            "object_id": app["id"],
            "access_token_version": api["requestedAccessTokenVersion"].as_u64().unwrap_or(1),
            "scope": api["oauth2PermissionScopes"].as_array().unwrap().iter().map(|s| json!({
                "value": s["value"], "id": s["id"],
                "admin_consent_display_name": s["adminConsentDisplayName"],
                "admin_consent_description": s["adminConsentDescription"],
                "user_consent_display_name": s["userConsentDisplayName"],
                "user_consent_description": s["userConsentDescription"],
            })).collect::<Vec<_>>(),
            "app_role": app["appRoles"].as_array().unwrap().iter().map(|r| json!({
                "value": r["value"], "id": r["id"], "display_name": r["displayName"],
                "description": r["description"], "allowed_member_types": r["allowedMemberTypes"],
            })).collect::<Vec<_>>(),
            "pre_authorized": api["preAuthorizedApplications"].as_array().unwrap().iter().map(|p| json!({
                "client": names[p["appId"].as_str().unwrap()], "scopes": values(&p["delegatedPermissionIds"]),
            })).collect::<Vec<_>>(),
            "required_access": app["requiredResourceAccess"].as_array().unwrap().iter().map(|r| json!({
                "resource": names[r["resourceAppId"].as_str().unwrap()],
                "scopes": values(&json!(r["resourceAccess"].as_array().unwrap().iter().map(|a| a["id"].clone()).collect::<Vec<_>>())),
            })).collect::<Vec<_>>(),
            "known_client_applications": api["knownClientApplications"].as_array().unwrap().iter()
                .map(|id| names[id.as_str().unwrap()].clone()).collect::<Vec<_>>(),
            "federated_credential": federated.get(app["id"].as_str().unwrap()).into_iter().flatten().map(|f| json!({
                "name": f["name"],
                "managed_identity": identities.iter().find(|(principal, _, _)| f["subject"] == *principal).unwrap().1,
            })).collect::<Vec<_>>(),
            "redirect_uris": app["web"]["redirectUris"],
        });
        if let Some(uri) = app["identifierUris"].as_array().unwrap().first() {
            entry["identifier_uri"] = uri.clone();
        }
        if let Some(url) = app["web"]["logoutUrl"].as_str() {
            entry["front_channel_logout_url"] = json!(url);
        }
        registrations.insert(manifest_name(app), entry);
    }
    let manifest = json!({
        "tenant": {"id": TENANT, "domain": "contoso.onmicrosoft.com", "display_name": "Contoso (dress rehearsal)"},
        "app": registrations,
        "client": repository["client"],
        "managed_identity": identities.iter().map(|(principal, name, client)| {
            (name.to_string(), json!({"client_id": client, "principal_id": principal}))
        }).collect::<serde_json::Map<_, _>>(),
        "user": repository["user"],
    });
    toml::to_string(&manifest).unwrap()
}

/// This machine's stand-ins for what Azure provides.
struct Here {
    /// The emulator's URL, in place of `https://login.microsoftonline.com`.
    emulator: String,
    /// The emulator's local CA.
    ca_file: PathBuf,
    /// The managed-identity endpoint's secret (the emulator's `EMULATOR_IDENTITY_HEADER`).
    identity_header: String,
    /// The containers' volumes.
    data: PathBuf,
    /// The services' free loopback ports.
    ports: BTreeMap<&'static str, u16>,
}

/// A service's environment: the image's `ENV` (Dockerfile), then exactly what the container app
/// holds in ARM, then what Container Apps injects into every container, then only what running
/// on this machine must replace (each says why).
fn service_env(d: &Provisioned, service: &str, container_app: &str, here: &Here) -> Vec<(String, String)> {
    // The image's `ENV IDENTITY_MANIFEST=/app/app-registrations.toml`, in this checkout.
    let mut env = BTreeMap::from([("IDENTITY_MANIFEST".to_string(), entra_manifest::REPOSITORY_MANIFEST.to_string())]);
    env.extend(d.cloud.container_env(container_app));
    // The platform's own: the app's name (which puts the service in deployment mode: ids only
    // from variables) and the managed-identity endpoint, here the emulator's.
    env.insert("CONTAINER_APP_NAME".into(), container_app.into());
    env.insert("IDENTITY_ENDPOINT".into(), format!("{}/msi/token", here.emulator));
    env.insert("IDENTITY_HEADER".into(), here.identity_header.clone());
    for (name, value) in env.iter_mut() {
        if name.ends_with("_ADDR") {
            // Behind the ingress on a free loopback port (the container's port may be taken).
            *value = format!("127.0.0.1:{}", here.ports[service]);
        } else if let Some(file) = value.strip_prefix("/data/") {
            // The container's volume.
            *value = here.data.join(format!("{service}-{file}")).display().to_string();
        }
    }
    // The emulator in place of login.microsoftonline.com (no internet here); its CA is not a
    // public one, so the services are told to trust it, as they trust Entra's.
    env.insert("ENTRA_AUTHORITY".into(), here.emulator.clone());
    env.insert("ENTRA_CA_FILE".into(), here.ca_file.display().to_string());
    if env.contains_key("ORDERS_API_URL") {
        // orders-api's internal ingress name resolves only inside the Container Apps environment.
        env.insert("ORDERS_API_URL".into(), format!("http://127.0.0.1:{}", here.ports["orders-api"]));
    }
    env.into_iter().collect()
}

/// Runs the blocking `work` (processes, their health checks, `xtask verify`) off the runtime
/// the ingresses and the fake cloud run on.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(work).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_services_started_with_what_the_hook_wrote_pass_xtask_verify_against_the_emulator() {
    let data = tempfile::tempdir().unwrap();
    let emulator_dir = data.path().join("emulator");
    let ca = entra_emulator::tls::load_or_create(&emulator_dir, &[]).unwrap();
    let ca_file: PathBuf = ca.ca_file.clone();

    // The public origins are the ingresses' loopback addresses: Bicep's
    // https://<app>.<environment domain> cannot resolve here, and the hook derives orders-mcp's
    // Application ID URI (https://<origin>/mcp) and chat-app's redirect URIs from them, so the
    // origins clients use and the ones registered in the tenant are the same, as in Azure.
    let (chat_ingress, start_chat_ingress) = ingress(&ca.server).await;
    let (mcp_ingress, start_mcp_ingress) = ingress(&ca.server).await;
    let origins = Origins {
        chat_app: format!("https://localhost:{}", chat_ingress.port()),
        orders_mcp: format!("https://localhost:{}", mcp_ingress.port()),
    };

    // A tenant where the person running `azd up` is not an administrator.
    let mut config = Config::new(TENANT);
    config.admin = false;
    let d = Provisioned::at(config, "dev", origins.clone()).await;
    let (out, result) = d.run(&["apply"]).await;
    result.unwrap_or_else(|e| panic!("{out}\n{e}"));
    assert!(d.cloud.dir(|dir| dir.grants.is_empty()), "nobody granted admin consent");

    let manifest = data.path().join("tenant.toml");
    std::fs::write(&manifest, manifest_from_the_tenant(&d)).unwrap();
    entra_manifest::Manifest::load(&manifest).unwrap_or_else(|e| panic!("the tenant as a manifest: {e}"));

    let names = ["entra-emulator", "orders-api", "orders-mcp", "chat-app"];
    let ports: BTreeMap<&'static str, u16> =
        names.into_iter().zip(xtask::stack::free_ports(names.len()).unwrap()).collect();
    let here = Here {
        emulator: format!("https://localhost:{}", ports["entra-emulator"]),
        ca_file: ca_file.clone(),
        identity_header: uuid::Uuid::new_v4().simple().to_string(),
        data: data.path().to_path_buf(),
        ports,
    };
    let emulator_service = xtask::stack::Service {
        name: "entra-emulator",
        bin: "entra-emulator",
        package: "entra-emulator",
        features: "",
        port: here.ports["entra-emulator"],
        env: [
            ("EMULATOR_ADDR", format!("127.0.0.1:{}", here.ports["entra-emulator"])),
            ("EMULATOR_PUBLIC_URL", here.emulator.clone()),
            ("EMULATOR_TLS", "true".into()),
            ("EMULATOR_DATA_DIR", emulator_dir.display().to_string()),
            ("EMULATOR_MANIFEST", manifest.display().to_string()),
            // Only pre-authorization counts, as in a tenant where nobody could consent.
            ("EMULATOR_ADMIN_CONSENT", "false".into()),
            ("EMULATOR_IDENTITY_HEADER", here.identity_header.clone()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect(),
        ca_file: Some(ca_file.clone()),
    };
    let services: Vec<xtask::stack::Service> = CONTAINER_APPS
        .iter()
        .map(|(app, container_app, _)| {
            let name: &'static str = match *app {
                "orders-api" => "orders-api",
                "orders-mcp" => "orders-mcp",
                _ => "chat-app",
            };
            xtask::stack::Service {
                name,
                bin: name,
                package: name,
                features: "",
                port: here.ports[name],
                env: service_env(&d, name, container_app, &here),
                ca_file: None,
            }
        })
        .collect();
    start_chat_ingress(here.ports["chat-app"]);
    start_mcp_ingress(here.ports["orders-mcp"]);
    let emulator = here.emulator.clone();

    let env_file = d.env_file();
    let output = blocking(move || {
        let bin_dir = xtask::stack::workspace_binaries().unwrap();
        let emulator_only = [emulator_service];
        let mut stack = xtask::stack::Stack::start(&emulator_only, &bin_dir).unwrap();
        stack.wait_ready(&emulator_only, Duration::from_secs(60)).unwrap();
        stack.start_more(&services, &bin_dir).unwrap();
        stack.wait_ready(&services, Duration::from_secs(60)).unwrap();
        // `cargo xtask verify --env-file`, the real binary, with the azd environment the hook
        // wrote, trusting the emulator's CA (which also signs the ingresses' certificate) the
        // way any rustls client on Linux is told to: SSL_CERT_FILE.
        let output = std::process::Command::new(bin_dir.join("xtask"))
            .arg("verify")
            .arg("--env-file")
            .arg(&env_file)
            .args(["--authority", &emulator])
            .env("SSL_CERT_FILE", &ca_file)
            .output()
            .unwrap();
        stack.stop();
        output
    })
    .await;
    let report = format!("{}\n{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    println!("{report}");
    assert!(output.status.success(), "xtask verify --env-file failed:\n{report}");
    // The checks that need no token ran against these services and passed.
    for check in ["OpenID discovery (v2)", "orders-mcp RFC 9728 metadata", "POST /mcp without a token → 401 challenge"]
    {
        assert!(report.lines().any(|l| l.contains("PASS") && l.contains(check)), "{check}:\n{report}");
    }
}
