//! The compose files against the code they deploy: a renamed setting, a missing variable, a
//! wrong port or health check breaks these tests, not the demo.
//!
//! - `docker-compose config` (what CI installs: Debian's `docker-compose`) accepts both files.
//! - Every value a service gets (the Dockerfile's `ENV` for its target, then the compose file's
//!   `environment`) is read by that service's typed settings, which parse it without a problem.
//! - Services, ports, health checks, start order and the URLs between containers agree.
//! - The offline file's four services, started as processes with its values (container hostnames
//!   and ports mapped to free local ones), pass `xtask verify --local`.
//! - The offline file's trace viewer (a third-party image) receives every service's spans.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure report

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use clap::Parser;
use serde_yaml::Value;
use service_kit::settings::Env;

const OFFLINE: &str = "docker-compose.yml";
const AZURE: &str = "docker-compose.azure.yml";
/// An override of the offline file: the emulator on https, the services trusting its CA.
const TLS: &str = "docker-compose.tls.yml";
const REDIS: &str = "docker-compose.redis.yml";
const SERVICES: [&str; 4] = ["emulator", "orders-api", "orders-mcp", "chat-app"];
/// The offline file's OpenTelemetry trace viewer: not ours, so not in [`services`].
const TRACE_VIEWER: &str = "trace-viewer";
/// Read by `service_kit::telemetry::init` before any settings (logging, OTLP export).
const PLATFORM_VARS: [&str; 19] = service_kit::telemetry::VARIABLES;

/// What `azd env get-values > .env.azure` and the README's steps give the Azure file.
const AZURE_ENV: [(&str, &str); 13] = [
    ("AZURE_TENANT_ID", "5a8f0e3c-2d4b-4c1e-9f6a-7b8c9d0e1f2a"),
    ("AZURE_ENV_NAME", "dev"),
    ("ORDERS_API_CLIENT_ID", "0b5f9c52-7d0e-4f4e-9d55-2f3f7f4c1a01"),
    ("ORDERS_API_APP_ID_URI", "api://5a8f0e3c-2d4b-4c1e-9f6a-7b8c9d0e1f2a/orders-api-dev"),
    ("ORDERS_MCP_CLIENT_ID", "0b5f9c52-7d0e-4f4e-9d55-2f3f7f4c1a02"),
    ("ORDERS_MCP_APP_ID_URI", "https://orders-mcp.example.azurecontainerapps.io/mcp"),
    ("CHAT_APP_CLIENT_ID", "0b5f9c52-7d0e-4f4e-9d55-2f3f7f4c1a03"),
    ("BROKER_IDENTITY_HEADER", "0123456789abcdef0123456789abcdef"),
    ("ORDERS_MCP_CLIENT_SECRET", "orders-mcp-laptop-secret"),
    ("CHAT_APP_CLIENT_SECRET", "chat-app-laptop-secret"),
    ("AZURE_OPENAI_ENDPOINT", "https://oc-dev.openai.azure.com"),
    ("AZURE_OPENAI_DEPLOYMENT", "gpt-4o-mini"),
    ("BROKER_PORT", "3009"),
];

fn root() -> PathBuf {
    xtask::root()
}

// ---------------------------------------------------------------------------------------------
// Reading the files as Compose does

/// Compose's variable interpolation: `${VAR}`, `${VAR:-default}`, `${VAR:?message}`, `$$`.
fn interpolate(text: &str, vars: &HashMap<&str, &str>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        rest = &rest[i + 1..];
        if let Some(after) = rest.strip_prefix('$') {
            out.push('$');
            rest = after;
            continue;
        }
        let Some(body) = rest.strip_prefix('{') else {
            out.push('$');
            continue;
        };
        let end = body.find('}').ok_or_else(|| format!("unclosed ${{ in {text:?}"))?;
        let expr = &body[..end];
        rest = &body[end + 1..];
        let value = if let Some((name, default)) = expr.split_once(":-") {
            vars.get(name).filter(|v| !v.is_empty()).map_or(default.to_string(), |v| v.to_string())
        } else if let Some((name, message)) = expr.split_once(":?") {
            match vars.get(name).filter(|v| !v.is_empty()) {
                Some(v) => v.to_string(),
                None => return Err(format!("{name}: {message}")),
            }
        } else {
            vars.get(expr).map(|v| v.to_string()).unwrap_or_default()
        };
        out.push_str(&value);
    }
    out.push_str(rest);
    Ok(out)
}

/// A compose file, interpolated, with YAML merge keys applied (as Compose applies them).
fn load(file: &str, vars: &HashMap<&str, &str>) -> Value {
    let text = std::fs::read_to_string(root().join(file)).unwrap();
    let text = interpolate(&text, vars).unwrap_or_else(|e| panic!("{file}: {e}"));
    let mut value: Value = serde_yaml::from_str(&text).unwrap();
    value.apply_merge().unwrap();
    value
}

/// Every service, ours and third-party images alike.
fn all_services(compose: &Value) -> BTreeMap<String, Value> {
    let map = compose["services"].as_mapping().expect("a services mapping");
    map.iter().map(|(k, v)| (k.as_str().unwrap().to_string(), v.clone())).collect()
}

/// Our services: the ones built from this repository's Dockerfile.
fn services(compose: &Value) -> BTreeMap<String, Value> {
    all_services(compose).into_iter().filter(|(_, s)| !s["build"].is_null()).collect()
}

fn environment(service: &Value) -> BTreeMap<String, String> {
    let Some(env) = service["environment"].as_mapping() else { return BTreeMap::new() };
    env.iter()
        .map(|(k, v)| {
            let value = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                other => panic!("environment value {other:?} is not a scalar"),
            };
            (k.as_str().unwrap().to_string(), value)
        })
        .collect()
}

fn target(service: &Value) -> String {
    service["build"]["target"].as_str().expect("every service names its Dockerfile target").to_string()
}

/// The Dockerfile's `ENV` values for `target`: the shared `runtime` stage's, then the target's.
fn dockerfile_env(target: &str) -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(root().join("Dockerfile")).unwrap();
    let joined = text.replace("\\\n", " ");
    let mut stage = String::new();
    let mut env = BTreeMap::new();
    for line in joined.lines().map(str::trim) {
        if let Some(from) = line.strip_prefix("FROM ") {
            stage = from.split(" AS ").nth(1).unwrap_or_default().trim().to_string();
        } else if let Some(pairs) = line.strip_prefix("ENV ")
            && (stage == "runtime" || stage == target)
        {
            for pair in pairs.split_whitespace() {
                let (k, v) = pair.split_once('=').expect("ENV KEY=VALUE");
                env.insert(k.to_string(), v.to_string());
            }
        }
    }
    env
}

/// What the container's process sees: the image's `ENV`, then compose's `environment`.
fn container_env(service: &Value) -> BTreeMap<String, String> {
    let mut env = dockerfile_env(&target(service));
    env.extend(environment(service));
    env
}

/// The image's layout, mapped into this checkout (the manifest) or a temporary directory.
fn localize(env: &mut BTreeMap<String, String>, data: &Path) {
    let manifest = entra_manifest::REPOSITORY_MANIFEST.to_string();
    for value in env.values_mut() {
        if value == "/app/app-registrations.toml" {
            value.clone_from(&manifest);
        } else if let Some(file) = value.strip_prefix("/data/").or_else(|| value.strip_prefix("/ca/")) {
            // `/ca` is the emulator's data volume mounted read-only (docker-compose.tls.yml).
            *value = data.join(file).display().to_string();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The services' own settings

/// Parses `env` with the settings of the service built by `target`; the names it read.
fn settings_read(target: &str, env: &BTreeMap<String, String>) -> Result<BTreeSet<String>, String> {
    let env = Env::from_map(env.clone());
    let read = env.names_read();
    let parsed = match target {
        "entra-emulator" => {
            entra_emulator::config::EmulatorConfig::from_env(env, false).map(drop).map_err(|e| e.to_string())
        }
        "orders-api" => orders_api::configuration::Settings::from_env(env).map(drop).map_err(|e| e.to_string()),
        "orders-mcp" => orders_mcp::configuration::Settings::from_env(env).map(drop).map_err(|e| e.to_string()),
        "chat-app" => chat_app::configuration::Settings::from(env).map(drop).map_err(|e| e.to_string()),
        other => panic!("no settings known for target {other}"),
    };
    parsed.map(|()| read.names())
}

fn check_every_value_is_read(file: &str, vars: &HashMap<&str, &str>) {
    let data = tempfile::tempdir().unwrap();
    check_values_are_read(file, &load(file, vars), data.path());
}

fn check_values_are_read(file: &str, compose: &Value, data: &Path) {
    for (name, service) in services(compose) {
        let mut env = container_env(&service);
        localize(&mut env, data);
        let read = settings_read(&target(&service), &env)
            .unwrap_or_else(|e| panic!("{file}: {name}'s settings refuse its environment: {e}"));
        let unread: Vec<&String> =
            env.keys().filter(|k| !read.contains(*k) && !PLATFORM_VARS.contains(&k.as_str())).collect();
        assert!(unread.is_empty(), "{file}: {name} is given variables it never reads (renamed?): {unread:?}");
    }
}

#[test]
fn every_value_the_offline_file_sets_is_read_by_the_service_and_parses() {
    check_every_value_is_read(OFFLINE, &HashMap::new());
}

#[test]
fn every_value_the_azure_file_sets_is_read_by_the_service_and_parses() {
    check_every_value_is_read(AZURE, &AZURE_ENV.into_iter().collect());
}

/// The Redis variant as Compose merges it over the offline file: chat-app reads its store from
/// the Redis service, which it waits for, and nothing else changes.
#[test]
fn the_redis_variant_merges_and_chat_app_uses_it() {
    let mut command = compose_command();
    command.current_dir(root()).env_clear().env("PATH", std::env::var("PATH").unwrap_or_default());
    let output = command.args(["-f", OFFLINE, "-f", REDIS, "config"]).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let merged: Value = serde_yaml::from_slice(&output.stdout).unwrap();
    check_values_are_read(REDIS, &merged, tempfile::tempdir().unwrap().path());
    let all = all_services(&merged);
    let chat = environment(&all["chat-app"]);
    assert_eq!(chat["CHAT_APP_SESSION_STORE"], "redis://redis:6379");
    assert_eq!(all["chat-app"]["depends_on"]["redis"]["condition"].as_str(), Some("service_healthy"));
    let image = all["redis"]["image"].as_str().unwrap();
    assert!(
        image.starts_with("redis:") && image.split(['.', ':', '-']).filter(|p| p.parse::<u32>().is_ok()).count() == 3,
        "pinned: {image}"
    );
    assert!(all["redis"]["ports"].is_null(), "Redis is reachable from the stack only");
}

/// The https variant as Compose merges it over the offline file: every value is read and parses
/// (with the CA the emulator creates in its volume where the services read it), and every
/// service reaches the emulator over https, trusting that CA.
#[test]
fn the_tls_variant_merges_and_every_value_is_read() {
    let mut command = compose_command();
    command.current_dir(root()).env_clear().env("PATH", std::env::var("PATH").unwrap_or_default());
    let output = command.args(["-f", OFFLINE, "-f", TLS, "config"]).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let merged: Value = serde_yaml::from_slice(&output.stdout).unwrap();
    let data = tempfile::tempdir().unwrap();
    entra_emulator::tls::load_or_create(&data.path().join("emulator"), &["emulator".into()]).unwrap();
    check_values_are_read(TLS, &merged, data.path());
    let services = services(&merged);
    let emulator = environment(&services["emulator"]);
    assert_eq!(emulator["EMULATOR_TLS"], "true");
    assert!(emulator["EMULATOR_TLS_NAMES"].split(',').any(|n| n == "emulator"), "the certificate names the service");
    for name in ["orders-api", "orders-mcp", "chat-app"] {
        let env = environment(&services[name]);
        assert_eq!(env["ENTRA_AUTHORITY"], "https://emulator:3003", "{name}");
        assert_eq!(env["ENTRA_PUBLIC_AUTHORITY"], emulator["EMULATOR_PUBLIC_URL"], "{name}");
        let ca = env["ENTRA_CA_FILE"].strip_prefix("/ca/").unwrap();
        assert_eq!(
            Some(ca),
            emulator["EMULATOR_DATA_DIR"].strip_prefix("/data/").map(|d| format!("{d}/ca.pem")).as_deref()
        );
        if let Some(endpoint) = env.get("IDENTITY_ENDPOINT") {
            assert!(endpoint.starts_with("https://emulator:3003/"), "{name}: {endpoint}");
        }
    }
}

#[test]
fn a_renamed_setting_is_caught() {
    // The check above, on a copy of orders-api's environment with one name changed.
    let compose = load(OFFLINE, &HashMap::new());
    let mut env = container_env(&services(&compose)["orders-api"]);
    localize(&mut env, Path::new("/tmp"));
    let value = env.remove("ORDERS_API_DATABASE").unwrap();
    env.insert("ORDERS_API_DB".into(), value);
    let read = settings_read("orders-api", &env).unwrap();
    assert!(!read.contains("ORDERS_API_DB"));
}

// ---------------------------------------------------------------------------------------------
// Structure: services, ports, health checks, start order, URLs between containers

/// `host:port` of a `*_ADDR` value.
fn listen_port(env: &BTreeMap<String, String>) -> u16 {
    let (name, addr) = env.iter().find(|(k, _)| k.ends_with("_ADDR")).expect("a listen address");
    assert!(addr.starts_with("0.0.0.0:"), "{name}={addr}: containers must listen on every interface");
    addr.rsplit(':').next().unwrap().parse().unwrap()
}

fn check_structure(file: &str, vars: &HashMap<&str, &str>, expected: &[&str]) {
    let all = services(&load(file, vars));
    let names: Vec<&str> = all.keys().map(String::as_str).collect();
    let mut wanted = expected.to_vec();
    wanted.sort_unstable();
    assert_eq!(names, wanted, "{file}: services");
    let ports: HashMap<&str, u16> = all.iter().map(|(n, s)| (n.as_str(), listen_port(&container_env(s)))).collect();
    for (name, service) in &all {
        let target = target(service);
        let port = ports[name.as_str()];
        assert_eq!(service["image"].as_str(), Some(format!("orders-copilot/{target}").as_str()), "{file}: {name}");
        let published: Vec<&str> = service["ports"].as_sequence().unwrap().iter().filter_map(Value::as_str).collect();
        // Published on the host's loopback unless COMPOSE_BIND_ADDRESS says otherwise: the
        // emulator signs anyone in and hands out tokens, so it must not be on the LAN by default.
        let bind = vars.get("COMPOSE_BIND_ADDRESS").copied().unwrap_or("127.0.0.1");
        assert_eq!(published, [format!("{bind}:{port}:{port}")], "{file}: {name} publishes its listen port");
        let test: Vec<&str> =
            service["healthcheck"]["test"].as_sequence().unwrap().iter().filter_map(Value::as_str).collect();
        assert_eq!(test, ["CMD", &format!("/app/{target}"), "healthcheck"], "{file}: {name}'s health check");
        if let Some(deps) = service["depends_on"].as_mapping() {
            for (dep, condition) in deps {
                let dep = dep.as_str().unwrap();
                // The trace viewer's image has no health check; spans sent before it listens
                // are dropped, never waited for.
                let wanted = if dep == TRACE_VIEWER { "service_started" } else { "service_healthy" };
                assert!(all.contains_key(dep) || dep == TRACE_VIEWER, "{file}: {name} depends on unknown {dep}");
                assert_eq!(condition["condition"].as_str(), Some(wanted), "{file}: {name} → {dep}");
            }
        }
        // Every URL naming another container uses that container's port, and the container is
        // started first.
        for (var, value) in container_env(service) {
            let Ok(url) = url::Url::parse(&value) else { continue };
            let Some(host) = url.host_str() else { continue };
            if let Some(other) = ports.get(host) {
                assert_eq!(url.port(), Some(*other), "{file}: {name} {var}={value}");
                assert!(
                    service["depends_on"][host].is_mapping(),
                    "{file}: {name} calls {host} ({var}) so must start after it"
                );
            }
        }
    }
    let chat = container_env(&all["chat-app"]);
    let mcp = container_env(&all["orders-mcp"]);
    let mcp_host = url::Url::parse(&chat["ORDERS_MCP_URL"]).unwrap().host_str().unwrap().to_string();
    assert!(
        mcp["ORDERS_MCP_ALLOWED_HOSTS"].split(',').any(|h| h.trim() == mcp_host),
        "{file}: orders-mcp must allow the Host chat-app calls it by ({mcp_host})"
    );
}

#[test]
fn the_offline_file_wires_the_four_services_together() {
    check_structure(OFFLINE, &HashMap::new(), &SERVICES);
    let all = services(&load(OFFLINE, &HashMap::new()));
    let emulator = container_env(&all["emulator"]);
    for name in ["orders-mcp", "chat-app"] {
        let env = container_env(&all[name]);
        assert_eq!(env["IDENTITY_HEADER"], emulator["EMULATOR_IDENTITY_HEADER"], "{name}'s managed identity");
        assert_eq!(env["IDENTITY_ENDPOINT"], "http://emulator:3003/msi/token");
    }
    for name in ["orders-api", "orders-mcp", "chat-app"] {
        let env = container_env(&all[name]);
        // Tokens name the public URL as issuer; containers fetch keys over the compose network.
        assert_eq!(env["ENTRA_PUBLIC_AUTHORITY"], emulator["EMULATOR_PUBLIC_URL"], "{name}");
        assert_eq!(env["ENTRA_AUTHORITY"], "http://emulator:3003", "{name}");
    }
    assert_eq!(emulator["EMULATOR_CHAT_APP_URL"], container_env(&all["chat-app"])["CHAT_APP_URL"]);
}

#[test]
fn ports_are_on_loopback_unless_one_variable_opens_them() {
    let open: HashMap<&str, &str> = [("COMPOSE_BIND_ADDRESS", "0.0.0.0")].into_iter().collect();
    check_structure(OFFLINE, &open, &SERVICES);
    for (name, service) in all_services(&load(OFFLINE, &HashMap::new())) {
        for port in service["ports"].as_sequence().unwrap().iter().filter_map(Value::as_str) {
            assert!(port.starts_with("127.0.0.1:"), "{name} publishes {port} beyond this machine by default");
        }
    }
}

/// `docker compose up` shows traces with no setup: Jaeger (pinned, UI and OTLP/HTTP on loopback)
/// receives every service's spans, and chat-app's trace panel links to Jaeger's trace page.
#[test]
fn the_offline_file_sends_every_services_spans_to_its_trace_viewer() {
    let compose = load(OFFLINE, &HashMap::new());
    let viewer = &all_services(&compose)[TRACE_VIEWER];
    let image = viewer["image"].as_str().unwrap();
    let (repository, tag) = image.rsplit_once(':').unwrap();
    assert_eq!(repository, "jaegertracing/jaeger", "Jaeger v2 (the v1 all-in-one image is retired)");
    assert!(tag.split('.').count() == 3 && tag.split('.').all(|n| n.parse::<u32>().is_ok()), "pinned: {image}");
    let ports: Vec<&str> = viewer["ports"].as_sequence().unwrap().iter().filter_map(Value::as_str).collect();
    assert_eq!(ports, ["127.0.0.1:16686:16686", "127.0.0.1:4318:4318"]);
    let command: Vec<&str> = viewer["command"].as_sequence().unwrap().iter().filter_map(Value::as_str).collect();
    assert!(command.contains(&"receivers.otlp.protocols.http.endpoint=0.0.0.0:4318"), "{command:?}");
    for (name, service) in services(&compose) {
        let env = container_env(&service);
        assert_eq!(
            env.get("OTEL_EXPORTER_OTLP_ENDPOINT").map(String::as_str),
            Some("http://trace-viewer:4318"),
            "{name}"
        );
        assert_eq!(service["depends_on"][TRACE_VIEWER]["condition"].as_str(), Some("service_started"), "{name}");
    }
    let chat = container_env(&services(&compose)["chat-app"]);
    assert_eq!(chat["CHAT_APP_TRACE_URL"], "http://localhost:16686/trace/{trace_id}");
}

#[test]
fn the_azure_file_runs_the_same_images_against_entra_and_the_broker() {
    let vars: HashMap<&str, &str> = AZURE_ENV.into_iter().collect();
    check_structure(AZURE, &vars, &SERVICES[1..]);
    let offline = services(&load(OFFLINE, &HashMap::new()));
    for (name, service) in services(&load(AZURE, &vars)) {
        for key in ["image", "build", "ports", "healthcheck", "volumes"] {
            assert_eq!(service[key], offline[&name][key], "{name}: {key} differs between the two files");
        }
        let env = container_env(&service);
        assert_eq!(env["ENTRA_AUTHORITY"], "https://login.microsoftonline.com", "{name}");
        assert!(!env.values().any(|v| v.contains("emulator")), "{name}: no emulator in the Azure file");
    }
    let chat = container_env(&services(&load(AZURE, &vars))["chat-app"]);
    assert_eq!(chat["IDENTITY_ENDPOINT"], "http://host.docker.internal:3009/msi/token");
    assert_eq!(chat["IDENTITY_HEADER"], vars["BROKER_IDENTITY_HEADER"]);
}

#[test]
fn the_azure_file_says_what_is_missing() {
    let mut vars: HashMap<&str, &str> = AZURE_ENV.into_iter().collect();
    vars.remove("BROKER_IDENTITY_HEADER");
    let text = std::fs::read_to_string(root().join(AZURE)).unwrap();
    let err = interpolate(&text, &vars).unwrap_err();
    assert!(err.contains("BROKER_IDENTITY_HEADER") && err.contains("broker"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// docker-compose itself

/// `docker-compose` (Debian's package, what CI installs) or Compose v2 (`docker compose`).
fn compose_command() -> Command {
    let works =
        |program: &str, args: &[&str]| Command::new(program).args(args).output().is_ok_and(|o| o.status.success());
    if works("docker-compose", &["version"]) {
        return Command::new("docker-compose");
    }
    if works("docker", &["compose", "version"]) {
        let mut command = Command::new("docker");
        command.arg("compose");
        return command;
    }
    panic!(
        "neither `docker-compose` nor `docker compose` is installed: `apt-get install docker-compose` (.ci/run does)"
    );
}

fn compose_config(file: &str, env_file: Option<&Path>) -> std::process::Output {
    let mut command = compose_command();
    command.current_dir(root()).env_clear().env("PATH", std::env::var("PATH").unwrap_or_default());
    if let Some(env_file) = env_file {
        command.arg("--env-file").arg(env_file);
    }
    command.args(["-f", file, "config"]).output().unwrap()
}

#[test]
fn docker_compose_accepts_both_files() {
    let output = compose_config(OFFLINE, None);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let resolved = String::from_utf8_lossy(&output.stdout);
    for service in SERVICES {
        assert!(resolved.contains(&format!("  {service}:")), "{service} in:\n{resolved}");
    }

    let dir = tempfile::tempdir().unwrap();
    let env_file = dir.path().join(".env.azure");
    let lines: Vec<String> = AZURE_ENV.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    std::fs::write(&env_file, lines.join("\n")).unwrap();
    let output = compose_config(AZURE, Some(&env_file));
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));

    // Without the azd values, Compose stops with the file's own instructions.
    let output = compose_config(AZURE, None);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("azd env get-values"), "{stderr}");
}

// ---------------------------------------------------------------------------------------------
// The offline file's stack as processes, verified

#[test]
fn the_offline_file_as_processes_passes_xtask_verify() {
    let compose = load(OFFLINE, &HashMap::new());
    let all = services(&compose);
    // Container hostnames become 127.0.0.1 and every container port a free local port
    // (in URLs, listen addresses and published localhost URLs alike).
    let mapping: Vec<(String, u16, u16)> = all
        .iter()
        .zip(xtask::stack::free_ports(all.len()).unwrap())
        .map(|((name, service), local)| (name.clone(), listen_port(&container_env(service)), local))
        .collect();
    let remap = |value: &str| {
        let mut value = value.to_string();
        for (host, port, local) in &mapping {
            value = value
                .replace(&format!("//{host}:{port}"), &format!("//127.0.0.1:{local}"))
                .replace(&format!("localhost:{port}"), &format!("localhost:{local}"))
                .replace(&format!("0.0.0.0:{port}"), &format!("127.0.0.1:{local}"));
        }
        value
    };
    let data = tempfile::tempdir().unwrap();
    let site = std::env::var("CHAT_APP_SITE_ROOT").ok();
    let specs: Vec<xtask::stack::Service> = SERVICES
        .iter()
        .map(|name| {
            let service = &all[*name];
            let mut env = container_env(service);
            localize(&mut env, data.path());
            // No trace viewer runs here: nothing to export to.
            env.retain(|name, _| !name.starts_with("OTEL_"));
            if let Some(site) = &site {
                env.insert("LEPTOS_SITE_ROOT".into(), site.clone());
            }
            let target: &'static str = match target(service).as_str() {
                "entra-emulator" => "entra-emulator",
                "orders-api" => "orders-api",
                "orders-mcp" => "orders-mcp",
                "chat-app" => "chat-app",
                other => panic!("unknown target {other}"),
            };
            let (_, _, port) = mapping.iter().find(|(n, _, _)| n == name).unwrap();
            xtask::stack::Service {
                name: target,
                bin: target,
                package: target,
                features: "",
                port: *port,
                env: env.into_iter().map(|(k, v)| (k, remap(&v))).collect(),
                ca_file: None,
            }
        })
        .collect();

    let bin_dir = xtask::stack::workspace_binaries().unwrap();
    let mut stack = xtask::stack::Stack::start(&specs, &bin_dir).unwrap();
    stack.wait_ready(&specs, Duration::from_secs(60)).unwrap();

    let url = |name: &str, path: &str| {
        let (_, _, port) = mapping.iter().find(|(n, _, _)| n == name).unwrap();
        format!("http://localhost:{port}{path}")
    };
    let options = xtask::verify::Options::try_parse_from([
        "verify",
        "--local",
        "--url",
        &url("chat-app", ""),
        "--mcp-url",
        &url("orders-mcp", "/mcp"),
        "--api-url",
        &url("orders-api", ""),
        "--authority",
        &url("emulator", ""),
    ])
    .unwrap();
    let verified = xtask::verify::run(&options);
    stack.stop();
    verified.unwrap();
}
