//! The Azure deployment files, read with a real Bicep grammar (tree-sitter-bicep) and
//! cross-checked: every file parses; module paths exist; every parameter passed to a module is
//! declared there and every required one is passed; every module output read is declared; the
//! outputs the hook, azd and `xtask verify` read are declared by main.bicep; no parameter or
//! output holds a secret; every resource API version is a dated GA version from the table
//! below (one documented preview exception); the environment's OpenTelemetry agent sends
//! traces and logs to Application Insights; every parameter is described; main.parameters.json matches main.bicep; each container
//! app gets exactly the environment variables its service reads; azure.yaml names the services
//! and runs the hook.

// Test code, helpers included: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use clap::Parser;
use entra_manifest::Manifest;
use postprovision::cli::{Cli, Command};
use postprovision::deployment::variables;
use tree_sitter::{Node, Parser as TsParser, Tree};

/// The API version of every resource type the templates use: current GA versions, chosen on
/// purpose. A new type or version must be added here (and to docs/azure.md) deliberately.
const API_VERSIONS: [(&str, &str); 13] = [
    ("Microsoft.Resources/resourceGroups", "2024-03-01"),
    ("Microsoft.OperationalInsights/workspaces", "2023-09-01"),
    ("Microsoft.Insights/components", "2020-02-02"),
    ("Microsoft.ManagedIdentity/userAssignedIdentities", "2023-01-31"),
    ("Microsoft.ContainerRegistry/registries", "2023-07-01"),
    ("Microsoft.Authorization/roleAssignments", "2022-04-01"),
    ("Microsoft.Insights/workbooks", "2023-06-01"),
    ("Microsoft.App/containerApps", "2024-03-01"),
    ("Microsoft.CognitiveServices/accounts", "2024-10-01"),
    ("Microsoft.CognitiveServices/accounts/deployments", "2024-10-01"),
    ("Microsoft.Cache/redisEnterprise", "2025-04-01"),
    ("Microsoft.Cache/redisEnterprise/databases", "2025-04-01"),
    ("Microsoft.Cache/redisEnterprise/databases/accessPolicyAssignments", "2025-04-01"),
];

/// Preview API versions allowed anyway, each for one resource type and one reason. The managed
/// OpenTelemetry agent (`appInsightsConfiguration`, `openTelemetryConfiguration`) exists only in
/// Microsoft.App preview versions: no GA version up to 2025-07-01 carries either property (the
/// 2025-07-01 ManagedEnvironment schema in azure-rest-api-specs). 2024-10-02-preview is the
/// version Microsoft's "Collect and read OpenTelemetry data in Azure Container Apps" deploys it
/// with. Remove this once a GA version carries them.
const PREVIEW_EXCEPTIONS: [(&str, &str); 1] = [("Microsoft.App/managedEnvironments", "2024-10-02-preview")];

/// What `cargo xtask verify` reads from the azd environment (agreed with its owner).
const VERIFY_READS: [&str; 4] = ["AZURE_TENANT_ID", "CHAT_APP_URL", "ORDERS_MCP_URL", "AZURE_RESOURCE_GROUP"];
/// What azd itself needs from a Container Apps deployment: where to push images.
const AZD_READS: [&str; 1] = ["AZURE_CONTAINER_REGISTRY_ENDPOINT"];

/// The variables each service reads (the deployment decisions), exactly.
fn service_env() -> BTreeMap<&'static str, BTreeSet<&'static str>> {
    let common = ["ENTRA_AUTHORITY", "ENTRA_TENANT_ID", "LOG_FORMAT", "IDENTITY_SUFFIX"];
    let with = |own: &[&'static str]| common.iter().chain(own).copied().collect::<BTreeSet<_>>();
    BTreeMap::from([
        (
            "orders-api",
            with(&[
                "ORDERS_API_ADDR",
                "ORDERS_API_DATABASE",
                "ORDERS_API_PUBLIC_URL",
                "ORDERS_API_CLIENT_ID",
                "ORDERS_API_APP_ID_URI",
                "ORDERS_MCP_CLIENT_ID",
            ]),
        ),
        (
            "orders-mcp",
            with(&[
                "ORDERS_MCP_ADDR",
                "ORDERS_MCP_PUBLIC_URL",
                "ORDERS_MCP_CLIENT_ID",
                "ORDERS_MCP_APP_ID_URI",
                "ORDERS_MCP_ALLOWED_HOSTS",
                "ORDERS_API_URL",
                "ORDERS_API_CLIENT_ID",
                "ORDERS_API_APP_ID_URI",
                "ORDERS_MCP_MANAGED_IDENTITY_CLIENT_ID",
                "ORDERS_MCP_DOWNSTREAM",
            ]),
        ),
        (
            "chat-app",
            with(&[
                "CHAT_APP_ADDR",
                "CHAT_APP_URL",
                "CHAT_APP_CLIENT_ID",
                "CHAT_APP_AGENT_IDENTITY",
                "CHAT_APP_AGENT_BLUEPRINT_ID",
                "CHAT_APP_AGENT_BLUEPRINT_APP_ID_URI",
                "CHAT_APP_AGENT_ID",
                "ORDERS_MCP_URL",
                "ORDERS_MCP_CLIENT_ID",
                "ORDERS_MCP_APP_ID_URI",
                "CHAT_APP_MANAGED_IDENTITY_CLIENT_ID",
                "MODEL_PROVIDER",
                "AZURE_OPENAI_ENDPOINT",
                "AZURE_OPENAI_DEPLOYMENT",
                "CHAT_APP_SESSION_DB",
                "CHAT_APP_SESSION_STORE",
                "CHAT_APP_REDIS_ENTRA_USER",
            ]),
        ),
    ])
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

struct Param {
    name: String,
    has_default: bool,
    decorators: Vec<String>,
}

struct Module {
    symbol: String,
    path: PathBuf,
    /// Parameter name -> value node's text.
    params: BTreeMap<String, String>,
    env_names: BTreeSet<String>,
    body_text: String,
}

struct BicepFile {
    path: PathBuf,
    source: String,
    params: Vec<Param>,
    outputs: Vec<(String, String, Vec<String>)>,
    resources: Vec<(String, String)>,
    modules: Vec<Module>,
    variables: BTreeMap<String, String>,
}

fn text<'a>(node: Node, source: &'a str) -> &'a str {
    &source[node.byte_range()]
}

fn unquote(s: &str) -> String {
    s.trim_matches('\'').to_string()
}

fn named_children(node: Node) -> Vec<Node> {
    let mut cursor = node.walk();
    node.named_children(&mut cursor).collect()
}

fn first_error(node: Node) -> Option<Node> {
    if node.is_error() || node.is_missing() {
        return Some(node);
    }
    let mut cursor = node.walk();
    let children: Vec<Node> = node.children(&mut cursor).collect();
    children.into_iter().find_map(first_error)
}

/// Object properties of an `object` node: key -> value node.
fn properties<'t>(object: Node<'t>, source: &str) -> Vec<(String, Node<'t>)> {
    named_children(object)
        .into_iter()
        .filter(|n| n.kind() == "object_property")
        .filter_map(|p| {
            let children = named_children(p);
            let key = children.first()?;
            let value = children.get(1)?;
            Some((unquote(text(*key, source)), *value))
        })
        .collect()
}

/// Every `name: 'X'` string within `node`.
fn env_names(node: Node, source: &str, out: &mut BTreeSet<String>, variables: &BTreeMap<String, String>) {
    if node.kind() == "object_property" {
        let children = named_children(node);
        if let [key, value, ..] = children.as_slice()
            && text(*key, source) == "name"
            && value.kind() == "string"
        {
            out.insert(unquote(text(*value, source)));
        }
    }
    if node.kind() == "identifier"
        && let Some(var) = variables.get(text(node, source))
    {
        for name in var.split('\'').filter(|s| s.chars().all(|c| c.is_ascii_uppercase() || c == '_') && s.len() > 2) {
            out.insert(name.to_string());
        }
    }
    for child in named_children(node) {
        env_names(child, source, out, variables);
    }
}

fn parse(path: &Path) -> BicepFile {
    let source = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut parser = TsParser::new();
    parser.set_language(&tree_sitter_bicep::LANGUAGE.into()).unwrap();
    let tree: Tree = parser.parse(&source, None).unwrap();
    let root_node = tree.root_node();
    if let Some(error) = first_error(root_node) {
        let line = error.start_position().row + 1;
        panic!("{}:{line}: syntax error near {:?}", path.display(), source.lines().nth(line - 1).unwrap_or(""));
    }
    let mut file = BicepFile {
        path: path.to_path_buf(),
        source: source.clone(),
        params: Vec::new(),
        outputs: Vec::new(),
        resources: Vec::new(),
        modules: Vec::new(),
        variables: BTreeMap::new(),
    };
    for node in named_children(root_node) {
        if node.kind() == "variable_declaration" {
            let children = named_children(node);
            file.variables.insert(text(children[0], &source).to_string(), text(children[1], &source).to_string());
        }
    }
    let mut decorators: Vec<String> = Vec::new();
    for node in named_children(root_node) {
        let children = named_children(node);
        match node.kind() {
            "decorators" => {
                decorators = children.iter().map(|d| text(*d, &source).to_string()).collect();
                continue;
            }
            "parameter_declaration" => file.params.push(Param {
                name: text(children[0], &source).to_string(),
                has_default: children.len() > 2,
                decorators: decorators.clone(),
            }),
            "output_declaration" => file.outputs.push((
                text(children[0], &source).to_string(),
                text(*children.last().unwrap(), &source).to_string(),
                decorators.clone(),
            )),
            "module_declaration" => {
                let symbol = text(children[0], &source).to_string();
                let module_path = path.parent().unwrap().join(unquote(text(children[1], &source)));
                // `module x '…' = { … }`, or `= if (condition) { … }`.
                let conditional = children.iter().find(|c| c.kind() == "if_statement").map(|i| named_children(*i));
                let body = children
                    .iter()
                    .chain(conditional.iter().flatten())
                    .find(|c| c.kind() == "object")
                    .copied()
                    .unwrap();
                let mut params = BTreeMap::new();
                let mut names = BTreeSet::new();
                for (key, value) in properties(body, &source) {
                    if key == "params" {
                        for (param, value) in properties(value, &source) {
                            if param == "env" {
                                env_names(value, &source, &mut names, &file.variables);
                            }
                            params.insert(param, text(value, &source).to_string());
                        }
                    }
                }
                file.modules.push(Module {
                    symbol,
                    path: module_path,
                    params,
                    env_names: names,
                    body_text: text(body, &source).to_string(),
                });
            }
            "resource_declaration" => {
                let type_version = unquote(text(children[1], &source));
                file.resources.push((text(children[0], &source).to_string(), type_version));
            }
            _ => {}
        }
        decorators.clear();
    }
    file
}

fn bicep_files() -> BTreeMap<PathBuf, BicepFile> {
    let mut paths = vec![root().join("infra/main.bicep")];
    for entry in std::fs::read_dir(root().join("infra/modules")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "bicep") {
            paths.push(path);
        }
    }
    assert!(paths.len() >= 7, "main.bicep and the modules: {paths:?}");
    paths.into_iter().map(|p| (p.canonicalize().unwrap(), parse(&p))).collect()
}

#[test]
fn every_bicep_file_parses_and_modules_fit_together() {
    let files = bicep_files();
    for file in files.values() {
        for module in &file.modules {
            let target_path = module.path.canonicalize().unwrap_or_else(|_| {
                panic!(
                    "{}: module {} points at {}, which does not exist",
                    file.path.display(),
                    module.symbol,
                    module.path.display()
                )
            });
            let target = &files[&target_path];
            let declared: BTreeSet<&str> = target.params.iter().map(|p| p.name.as_str()).collect();
            for passed in module.params.keys() {
                assert!(
                    declared.contains(passed.as_str()),
                    "{}: module {} passes {passed:?}, which {} does not declare",
                    file.path.display(),
                    module.symbol,
                    target_path.display()
                );
            }
            for required in target.params.iter().filter(|p| !p.has_default) {
                assert!(
                    module.params.contains_key(&required.name),
                    "{}: module {} does not pass the required parameter {:?}",
                    file.path.display(),
                    module.symbol,
                    required.name
                );
            }
        }
        // `<module>.outputs.<name>`: the module must declare that output.
        for module in &file.modules {
            let target = &files[&module.path.canonicalize().unwrap()];
            let needle = format!("{}.outputs.", module.symbol);
            for (index, _) in file.source.match_indices(&needle) {
                let rest = &file.source[index + needle.len()..];
                let name: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                assert!(
                    target.outputs.iter().any(|(o, _, _)| *o == name),
                    "{}: reads {}{name}, which {} does not declare",
                    file.path.display(),
                    needle,
                    module.path.display()
                );
            }
        }
    }
}

#[test]
fn main_declares_every_output_that_is_read() {
    let main = parse(&root().join("infra/main.bicep"));
    let declared: BTreeSet<&str> = main.outputs.iter().map(|(name, _, _)| name.as_str()).collect();
    let manifest = Manifest::load(entra_manifest::REPOSITORY_MANIFEST).unwrap();
    let mut read: Vec<String> = variables::required_outputs(&manifest);
    read.extend(VERIFY_READS.iter().chain(&AZD_READS).map(|s| s.to_string()));
    // Anything azure.yaml interpolates.
    let azure_yaml = std::fs::read_to_string(root().join("azure.yaml")).unwrap();
    for (index, _) in azure_yaml.match_indices("${") {
        let name: String = azure_yaml[index + 2..].chars().take_while(|c| *c != '}' && *c != '=').collect();
        read.push(name);
    }
    for name in &read {
        assert!(declared.contains(name.as_str()), "main.bicep does not output {name}, which is read");
    }
    // The hook writes these; they come back as parameters on the next provision.
    let parameters = std::fs::read_to_string(root().join("infra/main.parameters.json")).unwrap();
    for key in variables::written_keys(&manifest) {
        assert!(parameters.contains(&format!("${{{key}}}")), "main.parameters.json does not pass {key} back");
    }
}

#[test]
fn nothing_holds_a_secret() {
    let secretive = ["key", "secret", "password", "connectionstring", "token", "credential"];
    for file in bicep_files().values() {
        for param in &file.params {
            assert!(
                !param.decorators.iter().any(|d| d.starts_with("@secure")),
                "{}: @secure() {}",
                file.path.display(),
                param.name
            );
            let lower = param.name.to_ascii_lowercase();
            assert!(!secretive.iter().any(|s| lower.contains(s)), "{}: parameter {}", file.path.display(), param.name);
        }
        for (name, value, _) in &file.outputs {
            // azd templates' "resource token" is a name suffix (uniqueString), not a credential.
            let lower = name.to_ascii_lowercase().replace('_', "").replace("resourcetoken", "");
            assert!(!secretive.iter().any(|s| lower.contains(s)), "{}: output {name}", file.path.display());
            assert!(!value.contains("list"), "{}: output {name} = {value} calls a list function", file.path.display());
        }
    }
    let registry = std::fs::read_to_string(root().join("infra/modules/registry.bicep")).unwrap();
    assert!(registry.contains("adminUserEnabled: false"));
    let openai = std::fs::read_to_string(root().join("infra/modules/openai.bicep")).unwrap();
    assert!(openai.contains("disableLocalAuth: true") && openai.contains("kind: 'OpenAI'"));
}

#[test]
fn every_resource_uses_a_dated_ga_api_version_from_the_table() {
    let table: BTreeMap<&str, &str> = API_VERSIONS.into_iter().collect();
    let exceptions: BTreeMap<&str, &str> = PREVIEW_EXCEPTIONS.into_iter().collect();
    let mut used = BTreeSet::new();
    let mut exceptions_used = BTreeSet::new();
    for file in bicep_files().values() {
        for (symbol, type_version) in &file.resources {
            let (kind, version) = type_version.split_once('@').unwrap();
            if exceptions.get(kind) == Some(&version) {
                exceptions_used.insert(kind.to_string());
                continue;
            }
            let dated = version.len() == 10
                && version
                    .chars()
                    .enumerate()
                    .all(|(i, c)| if i == 4 || i == 7 { c == '-' } else { c.is_ascii_digit() });
            assert!(dated, "{}: {symbol} uses {version}: not a dated GA version", file.path.display());
            assert_eq!(
                table.get(kind),
                Some(&version),
                "{}: {symbol} {type_version} is not in the table",
                file.path.display()
            );
            used.insert(kind.to_string());
        }
    }
    assert_eq!(used.len(), table.len(), "the table lists types no template uses");
    assert_eq!(exceptions_used.len(), exceptions.len(), "a preview exception no template needs any more");
}

/// Microsoft's "Collect and read OpenTelemetry data in Azure Container Apps": the environment's
/// `appInsightsConfiguration.connectionString` and `openTelemetryConfiguration`'s `destinations:
/// ['appInsights']` per signal route what the apps send over OTLP; "the Application Insights
/// resource must allow local authentication to receive data from the OpenTelemetry data agent".
#[test]
fn the_environment_agent_sends_traces_and_logs_to_application_insights() {
    let squeeze = |path: &str| -> String {
        let text = std::fs::read_to_string(root().join(path)).unwrap();
        text.lines().filter(|l| !l.trim_start().starts_with("//")).flat_map(|l| l.split_whitespace()).collect()
    };
    let environment = squeeze("infra/modules/container-apps-environment.bicep");
    assert!(
        environment.contains("resourceapplicationInsights'Microsoft.Insights/components@2020-02-02'existing"),
        "the connection string is read from the deployed component, not passed in"
    );
    assert!(
        environment
            .contains("appInsightsConfiguration:{connectionString:applicationInsights.properties.ConnectionString}")
    );
    for signal in ["tracesConfiguration", "logsConfiguration"] {
        assert!(environment.contains(&format!("{signal}:{{destinations:['appInsights']}}")), "{signal}");
    }
    let monitoring = squeeze("infra/modules/monitoring.bicep");
    assert!(monitoring.contains("DisableLocalAuth:false"), "the agent cannot send to a component without local auth");
    let main = parse(&root().join("infra/main.bicep"));
    let environment =
        main.modules.iter().find(|m| m.path.ends_with("modules/container-apps-environment.bicep")).unwrap();
    assert_eq!(environment.params["applicationInsightsName"], "monitoring.outputs.applicationInsightsName");
    let workbook = main.modules.iter().find(|m| m.path.ends_with("modules/workbook.bicep")).unwrap();
    assert_eq!(workbook.params["applicationInsightsName"], "monitoring.outputs.applicationInsightsName");
}

#[test]
fn every_parameter_is_described() {
    for file in bicep_files().values() {
        for param in &file.params {
            assert!(
                param.decorators.iter().any(|d| d.starts_with("@description(")),
                "{}: parameter {} has no @description",
                file.path.display(),
                param.name
            );
        }
    }
}

#[test]
fn main_parameters_match_main_bicep() {
    let main = parse(&root().join("infra/main.bicep"));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root().join("infra/main.parameters.json")).unwrap()).unwrap();
    let given = json["parameters"].as_object().unwrap();
    let declared: BTreeSet<&str> = main.params.iter().map(|p| p.name.as_str()).collect();
    for (name, value) in given {
        assert!(
            declared.contains(name.as_str()),
            "main.parameters.json sets {name}, which main.bicep does not declare"
        );
        let value = value["value"].as_str().unwrap();
        assert!(
            value.starts_with("${") && value.ends_with('}'),
            "{name} = {value}: not an azd environment substitution"
        );
    }
    for param in main.params.iter().filter(|p| !p.has_default) {
        assert!(given.contains_key(&param.name), "main.parameters.json does not set the required {}", param.name);
    }
    assert_eq!(given["environmentName"]["value"], "${AZURE_ENV_NAME}");
}

#[test]
fn each_container_app_gets_exactly_what_its_service_reads() {
    let main = parse(&root().join("infra/main.bicep"));
    let mut seen = BTreeMap::new();
    for module in main.modules.iter().filter(|m| m.path.ends_with("modules/container-app.bicep")) {
        let service = unquote(&module.params["serviceName"]);
        seen.insert(service, module);
    }
    let expected = service_env();
    assert_eq!(seen.keys().map(String::as_str).collect::<Vec<_>>(), expected.keys().copied().collect::<Vec<_>>());
    for (service, module) in &seen {
        let names: BTreeSet<&str> = module.env_names.iter().map(String::as_str).collect();
        assert_eq!(names, expected[service.as_str()], "{service}");
        // The fake ARM's container apps (tests/support) hold the same variables.
        let faked = support::bicep_container_env(service, "dev", &support::Origins::default());
        assert_eq!(faked.iter().map(|(k, _)| *k).collect::<BTreeSet<_>>(), names, "{service} in the fake ARM");
    }
    // The identifier URIs' suffix is the hook's (`Deployment::suffix`: environment and resource
    // token), so a service that renders the manifest names the URI the hook registered.
    assert!(
        main.variables["commonEnv"]
            .contains("{ name: 'IDENTITY_SUFFIX', value: '${environmentName}-${resourceToken}' }")
    );
    // orders-api: internal only, one replica, SQLite on its volume; chat-app's sessions too.
    let api = seen["orders-api"];
    assert_eq!(api.params["external"], "false");
    assert_eq!(api.params["maxReplicas"], "1");
    assert_eq!(api.params["dataVolume"], "true");
    // chat-app scales out only with the state its replicas share (Redis), and then with session
    // affinity (a turn's events and the user's answer to an approval stay with its replica).
    let chat = seen["chat-app"];
    assert_eq!(chat.params["maxReplicas"], "chatAppMaxReplicas");
    assert_eq!(chat.params["stickySessions"], "chatAppShared");
    assert!(main.variables["chatAppShared"].contains("chatAppMaxReplicas > 1"));
    let redis = main.modules.iter().find(|m| m.path.ends_with("modules/redis.bicep")).unwrap();
    assert_eq!(redis.params["principalId"], "chatAppIdentity.outputs.principalId");
    assert!(chat.body_text.contains("chatAppShared ? redis!.outputs.url : 'sqlite'"), "{}", chat.body_text);
    let cache = std::fs::read_to_string(root().join("infra/modules/redis.bicep")).unwrap();
    assert!(cache.contains("accessKeysAuthentication: 'Disabled'"), "Entra only, no access key");
    assert_eq!(seen["orders-mcp"].params["external"], "true");
    assert_eq!(seen["chat-app"].params["external"], "true");
    // Azure OpenAI's role goes to chat-app's identity, and to nothing else.
    let openai = main.modules.iter().find(|m| m.path.ends_with("modules/openai.bicep")).unwrap();
    assert_eq!(openai.params["chatAppPrincipalId"], "chatAppIdentity.outputs.principalId");
    let role_module = std::fs::read_to_string(root().join("infra/modules/openai.bicep")).unwrap();
    assert_eq!(role_module.matches("Microsoft.Authorization/roleAssignments").count(), 1);
    assert!(role_module.contains("5e0bd9bd-7b93-4f28-af87-19fc36ad61bd"));
    // The hook updates only variables a container declares: each it writes is declared somewhere.
    let manifest = Manifest::load(entra_manifest::REPOSITORY_MANIFEST).unwrap();
    for key in variables::written_keys(&manifest) {
        assert!(seen.values().any(|m| m.env_names.contains(&key)), "no container app declares {key}");
    }
    assert!(seen.values().all(|m| !m.body_text.contains("secretRef")));
}

/// Agent mode is chosen in the azd environment (`CHAT_APP_AGENT_IDENTITY`, default `none`),
/// passed to Bicep, given to chat-app as is, and read by the hook under the same name, which
/// then writes the blueprint's and the agent's ids that come back as parameters.
#[test]
fn agent_mode_reaches_chat_app_and_the_hook_from_one_azd_variable() {
    let main = parse(&root().join("infra/main.bicep"));
    let param = main.params.iter().find(|p| p.name == "chatAppAgentIdentity").expect("chatAppAgentIdentity");
    assert!(param.has_default, "agent mode is opt-in");
    let allowed = param.decorators.iter().find(|d| d.starts_with("@allowed")).expect("@allowed");
    assert!(allowed.contains("'none'") && allowed.contains("'entra-agent-id'"), "{allowed}");
    assert!(main.source.contains("param chatAppAgentIdentity string = 'none'"));
    let parameters = std::fs::read_to_string(root().join("infra/main.parameters.json")).unwrap();
    assert!(parameters.contains(&format!("${{{}=none}}", variables::AGENT_IDENTITY)), "{parameters}");
    let chat =
        main.modules.iter().find(|m| m.params.get("serviceName").is_some_and(|s| unquote(s) == "chat-app")).unwrap();
    for (name, value) in [
        (variables::AGENT_IDENTITY, "chatAppAgentIdentity"),
        (variables::AGENT_BLUEPRINT_ID, "chatAppAgentBlueprintId"),
        (variables::AGENT_BLUEPRINT_APP_ID_URI, "chatAppAgentBlueprintAppIdUri"),
        (variables::AGENT_ID, "chatAppAgentId"),
    ] {
        assert!(chat.body_text.contains(&format!("{{ name: '{name}', value: {value} }}")), "chat-app gets {name}");
    }
}

#[test]
fn azure_yaml_builds_each_service_and_runs_the_hook() {
    let yaml: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(root().join("azure.yaml")).unwrap()).unwrap();
    assert_eq!(yaml["infra"]["provider"].as_str(), Some("bicep"));
    assert_eq!(yaml["infra"]["path"].as_str(), Some("infra"));
    assert_eq!(yaml["infra"]["module"].as_str(), Some("main"));
    let services = yaml["services"].as_mapping().unwrap();
    let names: BTreeSet<&str> = services.keys().map(|k| k.as_str().unwrap()).collect();
    assert_eq!(names, service_env().keys().copied().collect());
    for (name, service) in services {
        let name = name.as_str().unwrap();
        assert_eq!(service["host"].as_str(), Some("containerapp"), "{name}");
        assert_eq!(service["docker"]["path"].as_str(), Some("./Dockerfile"), "{name}");
        assert_eq!(service["docker"]["context"].as_str(), Some("."), "{name}");
        assert_eq!(service["docker"]["target"].as_str(), Some(name), "{name}");
    }
    for (hook, command) in [("postprovision", Command::Apply), ("predown", Command::Cleanup)] {
        for os in ["posix", "windows"] {
            let run = yaml["hooks"][hook][os]["run"].as_str().unwrap_or_else(|| panic!("hooks.{hook}.{os}.run"));
            let (cargo, args) = run.split_once(" -- ").unwrap();
            assert!(cargo.starts_with("cargo run") && cargo.contains("--package postprovision"), "{run}");
            let cli = Cli::try_parse_from(std::iter::once("postprovision").chain(args.split_whitespace())).unwrap();
            assert_eq!(cli.command, Some(command), "{run}");
            assert!(!cli.dry_run);
        }
    }
}

#[test]
fn the_syntax_check_catches_broken_bicep() {
    let mut parser = TsParser::new();
    parser.set_language(&tree_sitter_bicep::LANGUAGE.into()).unwrap();
    let broken = "param name string\nresource x 'Microsoft.App/containerApps@2024-03-01' = {\n  name: name\n";
    assert!(first_error(parser.parse(broken, None).unwrap().root_node()).is_some());
    let fine = "param name string\nresource x 'Microsoft.App/containerApps@2024-03-01' = {\n  name: name\n}\n";
    assert!(first_error(parser.parse(fine, None).unwrap().root_node()).is_none());
}

/// The property names the resource schemas allow in the objects the templates write, for the
/// API versions of [`API_VERSIONS`]: a vendored subset of Azure/bicep-types-az
/// (`generated/app/microsoft.app/2024-03-01/types.md`, and for the environment's two
/// OpenTelemetry properties `2024-10-02-preview/types.md`, its API version; for the registry,
/// azure-resource-manager-schemas `schemas/2023-07-01/Microsoft.ContainerRegistry.json`),
/// writable properties only. A name not listed for its object is not in the schema: ARM
/// ignores it or refuses the deployment. Objects not listed here are not checked.
const SCHEMA: &[(&str, &str, &[&str])] = &[
    (
        "Microsoft.App/containerApps",
        "",
        &["extendedLocation", "identity", "location", "managedBy", "name", "properties", "tags"],
    ),
    ("Microsoft.App/containerApps", "identity", &["type", "userAssignedIdentities"]),
    (
        "Microsoft.App/containerApps",
        "properties",
        &["configuration", "environmentId", "managedEnvironmentId", "template", "workloadProfileName"],
    ),
    (
        "Microsoft.App/containerApps",
        "properties.configuration",
        &["activeRevisionsMode", "dapr", "ingress", "maxInactiveRevisions", "registries", "secrets", "service"],
    ),
    (
        "Microsoft.App/containerApps",
        "properties.configuration.ingress",
        &[
            "additionalPortMappings",
            "allowInsecure",
            "clientCertificateMode",
            "corsPolicy",
            "customDomains",
            "exposedPort",
            "external",
            "ipSecurityRestrictions",
            "stickySessions",
            "targetPort",
            "traffic",
            "transport",
        ],
    ),
    ("Microsoft.App/containerApps", "properties.configuration.ingress.stickySessions", &["affinity"]),
    (
        "Microsoft.App/containerApps",
        "properties.configuration.registries[]",
        &["identity", "passwordSecretRef", "server", "username"],
    ),
    (
        "Microsoft.App/containerApps",
        "properties.template",
        &[
            "containers",
            "initContainers",
            "revisionSuffix",
            "scale",
            "serviceBinds",
            "terminationGracePeriodSeconds",
            "volumes",
        ],
    ),
    (
        "Microsoft.App/containerApps",
        "properties.template.containers[]",
        &["args", "command", "env", "image", "name", "probes", "resources", "volumeMounts"],
    ),
    (
        "Microsoft.App/containerApps",
        "properties.template.containers[].probes[]",
        &[
            "failureThreshold",
            "httpGet",
            "initialDelaySeconds",
            "periodSeconds",
            "successThreshold",
            "tcpSocket",
            "terminationGracePeriodSeconds",
            "timeoutSeconds",
            "type",
        ],
    ),
    (
        "Microsoft.App/containerApps",
        "properties.template.containers[].probes[].httpGet",
        &["host", "httpHeaders", "path", "port", "scheme"],
    ),
    ("Microsoft.App/containerApps", "properties.template.containers[].resources", &["cpu", "memory"]),
    (
        "Microsoft.App/containerApps",
        "properties.template.containers[].volumeMounts[]",
        &["mountPath", "subPath", "volumeName"],
    ),
    ("Microsoft.App/containerApps", "properties.template.scale", &["maxReplicas", "minReplicas", "rules"]),
    (
        "Microsoft.App/containerApps",
        "properties.template.volumes[]",
        &["mountOptions", "name", "secrets", "storageName", "storageType"],
    ),
    ("Microsoft.App/managedEnvironments", "", &["kind", "location", "name", "properties", "tags"]),
    (
        "Microsoft.App/managedEnvironments",
        "properties",
        &[
            "appInsightsConfiguration",
            "appLogsConfiguration",
            "customDomainConfiguration",
            "daprAIConnectionString",
            "daprAIInstrumentationKey",
            "daprConfiguration",
            "infrastructureResourceGroup",
            "kedaConfiguration",
            "openTelemetryConfiguration",
            "peerAuthentication",
            "peerTrafficConfiguration",
            "vnetConfiguration",
            "workloadProfiles",
            "zoneRedundant",
        ],
    ),
    ("Microsoft.App/managedEnvironments", "properties.appInsightsConfiguration", &["connectionString"]),
    (
        "Microsoft.App/managedEnvironments",
        "properties.openTelemetryConfiguration",
        &["destinationsConfiguration", "logsConfiguration", "metricsConfiguration", "tracesConfiguration"],
    ),
    (
        "Microsoft.App/managedEnvironments",
        "properties.openTelemetryConfiguration.tracesConfiguration",
        &["destinations", "includeDapr"],
    ),
    ("Microsoft.App/managedEnvironments", "properties.openTelemetryConfiguration.logsConfiguration", &["destinations"]),
    (
        "Microsoft.App/managedEnvironments",
        "properties.appLogsConfiguration",
        &["destination", "logAnalyticsConfiguration"],
    ),
    (
        "Microsoft.App/managedEnvironments",
        "properties.appLogsConfiguration.logAnalyticsConfiguration",
        &["customerId", "sharedKey"],
    ),
    (
        "Microsoft.App/managedEnvironments",
        "properties.workloadProfiles[]",
        &["maximumCount", "minimumCount", "name", "workloadProfileType"],
    ),
    ("Microsoft.ContainerRegistry/registries", "", &["identity", "location", "name", "properties", "sku", "tags"]),
    (
        "Microsoft.ContainerRegistry/registries",
        "properties",
        &[
            "adminUserEnabled",
            "dataEndpointEnabled",
            "encryption",
            "networkRuleBypassOptions",
            "networkRuleSet",
            "policies",
            "publicNetworkAccess",
            "zoneRedundancy",
        ],
    ),
    ("Microsoft.ContainerRegistry/registries", "sku", &["name"]),
];

/// Every property a resource declaration in `source` writes that [`SCHEMA`] does not allow,
/// following the file's variables (the container app's `probes`).
fn schema_violations(source: &str) -> Vec<String> {
    let mut parser = TsParser::new();
    parser.set_language(&tree_sitter_bicep::LANGUAGE.into()).unwrap();
    let tree = parser.parse(source, None).unwrap();
    let root_node = tree.root_node();
    let variables: BTreeMap<&str, Node> = named_children(root_node)
        .into_iter()
        .filter(|n| n.kind() == "variable_declaration")
        .map(|n| {
            let children = named_children(n);
            (text(children[0], source), children[1])
        })
        .collect();
    let mut violations = Vec::new();
    for declaration in named_children(root_node).into_iter().filter(|n| n.kind() == "resource_declaration") {
        let children = named_children(declaration);
        let type_version = unquote(text(children[1], source));
        let kind = type_version.split('@').next().unwrap().to_string();
        let symbol = text(children[0], source);
        let body = *children.last().unwrap();
        walk_schema(body, "", &kind, symbol, source, &variables, &mut violations);
    }
    violations
}

fn walk_schema(
    node: Node,
    path: &str,
    kind: &str,
    symbol: &str,
    source: &str,
    variables: &BTreeMap<&str, Node>,
    out: &mut Vec<String>,
) {
    match node.kind() {
        "object" => {
            let allowed = SCHEMA.iter().find(|(k, p, _)| *k == kind && *p == path).map(|(_, _, names)| *names);
            for (key, value) in properties(node, source) {
                if let Some(allowed) = allowed
                    && !allowed.contains(&key.as_str())
                {
                    out.push(format!("{symbol} ({kind}): {path}{}{key}", if path.is_empty() { "" } else { "." }));
                }
                let child = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
                walk_schema(value, &child, kind, symbol, source, variables, out);
            }
        }
        "array" => {
            for item in named_children(node) {
                walk_schema(item, &format!("{path}[]"), kind, symbol, source, variables, out);
            }
        }
        "identifier" => {
            if let Some(value) = variables.get(text(node, source)) {
                walk_schema(*value, path, kind, symbol, source, variables, out);
            }
        }
        _ => {
            for child in named_children(node) {
                walk_schema(child, path, kind, symbol, source, variables, out);
            }
        }
    }
}

/// "Bicep properties that are not in the resource schema removed" (#14): the registry's
/// `anonymousPullEnabled` exists only in preview API versions, not in 2023-07-01.
#[test]
fn every_property_written_is_in_the_resource_schema() {
    for file in bicep_files().values() {
        let violations = schema_violations(&file.source);
        assert!(violations.is_empty(), "{}: not in the resource schema: {violations:?}", file.path.display());
    }
    let registry = "resource r 'Microsoft.ContainerRegistry/registries@2023-07-01' = {\n  name: 'x'\n  \
                    properties: {\n    adminUserEnabled: false\n    anonymousPullEnabled: false\n  }\n}\n";
    assert_eq!(
        schema_violations(registry),
        ["r (Microsoft.ContainerRegistry/registries): properties.anonymousPullEnabled"]
    );
    let probe = "var probes = [\n  { type: 'Liveness', httpGet: { path: '/healthz', port: 1, verb: 'GET' } }\n]\n\
                 resource a 'Microsoft.App/containerApps@2024-03-01' = {\n  name: 'a'\n  properties: {\n    \
                 template: {\n      containers: [\n        { name: 'a', probes: true ? [] : probes }\n      ]\n    }\n  }\n}\n";
    assert_eq!(
        schema_violations(probe),
        ["a (Microsoft.App/containerApps): properties.template.containers[].probes[].httpGet.verb"]
    );
}

/// #14 item 9: Container Apps probes the service's own `/healthz` (liveness) and `/readyz`
/// (readiness) on its port once the real image runs; the placeholder image that runs until the
/// first deploy answers on that same port (ASP.NET's sample listens on `ASPNETCORE_HTTP_PORTS`),
/// with the platform's default probes, so the first revision becomes healthy.
#[test]
fn probes_use_the_services_endpoints_and_the_placeholder_answers_on_the_service_port() {
    let path = root().join("infra/modules/container-app.bicep");
    let file = parse(&path);
    let probes = &file.variables["probes"];
    for (kind, endpoint) in [("Liveness", "/healthz"), ("Readiness", "/readyz")] {
        let start = probes.find(&format!("type: '{kind}'")).unwrap_or_else(|| panic!("no {kind} probe"));
        let probe = &probes[start..probes[start..].find('}').map_or(probes.len(), |end| start + end)];
        assert!(probe.contains(&format!("httpGet: {{ path: '{endpoint}', port: targetPort")), "{kind}: {probe}");
    }
    assert!(file.variables["placeholderImage"].contains("mcr.microsoft.com/dotnet/samples:aspnetapp"));
    assert!(file.source.contains("probes: placeholder ? [] : probes"), "the placeholder keeps the default probes");
    assert!(
        file.source.contains("{ name: 'ASPNETCORE_HTTP_PORTS', value: string(targetPort) }"),
        "the placeholder must listen on the service's port"
    );
}

/// #14 item 9: the Docker build context (everything `azd deploy` sends) leaves out local env
/// files (client secrets for laptop runs) and azd's environments (`.azure/<env>/.env`).
#[test]
fn the_docker_context_leaves_out_env_files_and_azd_state() {
    let ignore = std::fs::read_to_string(root().join(".dockerignore")).unwrap();
    let patterns: BTreeSet<&str> =
        ignore.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect();
    for wanted in [".env", ".env.*", ".azure"] {
        assert!(patterns.contains(wanted), ".dockerignore lacks {wanted}: {patterns:?}");
    }
    assert!(!patterns.iter().any(|p| p.starts_with('!')), "no exception re-includes anything: {patterns:?}");
}
