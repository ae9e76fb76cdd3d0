//! The Azure Monitor workbook "Identity propagation" (infra/workbook/identity-propagation.json,
//! deployed by infra/modules/workbook.bicep), checked offline: it has the workbook format's shape
//! (`Notebook/1.0`, items with a type and content, Logs queries against the Application Insights
//! component), every span attribute its KQL reads is one the services emit
//! (`entra_auth::span_attributes::NAMES`), and every query passes Microsoft's own Kusto parser and
//! semantic analyzer (Kusto.Language, from npm as `@kusto/language-service-next`, run by Node)
//! against the Application Insights tables' columns. The analyzer is installed from its pinned
//! lock into `target/kql-check/`; when the npm registry cannot be reached that test says so on
//! the terminal and skips, any other failure fails it.

// Test code, helpers included: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::io::Write;
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use entra_auth::span_attributes;
use serde_json::{Value, json};

const WORKBOOK: &str = "infra/workbook/identity-propagation.json";
/// Items of the workbook format (Application-Insights-Workbooks, `schema/workbook.json`): text,
/// query, parameters, links, group.
const ITEM_TYPES: [u64; 5] = [1, 3, 9, 11, 12];
/// What a workbook scoped to an Application Insights component queries: its Logs (queryType 0).
const RESOURCE_TYPE: &str = "microsoft.insights/components";
/// Sample values for the workbook's parameters, so the analyzer sees the query the portal runs.
const PARAMETER_SAMPLES: [(&str, &str); 2] =
    [("{Turn}", "0af7651916cd43dd8448eb211c80319c"), ("{TimeRange:grain}", "1h")];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn workbook() -> Value {
    serde_json::from_str(&std::fs::read_to_string(root().join(WORKBOOK)).unwrap()).unwrap()
}

/// `(item name, KQL)` of every query item.
fn queries(workbook: &Value) -> Vec<(String, String)> {
    workbook["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|item| item["type"] == 3)
        .map(|item| {
            (item["name"].as_str().unwrap().to_string(), item["content"]["query"].as_str().unwrap().to_string())
        })
        .collect()
}

#[test]
fn the_workbook_has_the_workbook_format_and_is_deployed_from_this_file() {
    let workbook = workbook();
    assert_eq!(workbook["version"], "Notebook/1.0");
    let items = workbook["items"].as_array().expect("items");
    assert!(!items.is_empty());
    let mut names = BTreeSet::new();
    let mut parameters = BTreeSet::new();
    for item in items {
        let name = item["name"].as_str().expect("every item is named");
        assert!(names.insert(name), "two items are named {name}");
        let kind = item["type"].as_u64().unwrap_or_else(|| panic!("{name}: type is not a number"));
        assert!(ITEM_TYPES.contains(&kind), "{name}: unknown item type {kind}");
        let content = item["content"].as_object().unwrap_or_else(|| panic!("{name}: no content"));
        match kind {
            1 => assert!(content["json"].is_string(), "{name}: a text item's markdown is content.json"),
            3 => {
                assert_eq!(content["version"], "KqlItem/1.0", "{name}");
                assert!(content["query"].as_str().is_some_and(|q| !q.trim().is_empty()), "{name}: no query");
                assert_eq!(content["queryType"], 0, "{name}: a Logs query");
                assert_eq!(content["resourceType"], RESOURCE_TYPE, "{name}");
            }
            9 => {
                assert_eq!(content["version"], "KqlParameterItem/1.0", "{name}");
                for parameter in content["parameters"].as_array().expect("parameters") {
                    assert!(parameter["type"].is_u64() && parameter["id"].is_string(), "{name}: {parameter}");
                    parameters.insert(parameter["name"].as_str().unwrap().to_string());
                }
            }
            _ => {}
        }
    }
    // Every `{Name}` / `{Name:format}` a query uses is a declared parameter, and has a sample.
    for (name, query) in queries(&workbook) {
        for (index, _) in query.match_indices('{') {
            let used: String = query[index + 1..].chars().take_while(|c| *c != '}' && *c != ':').collect();
            assert!(parameters.contains(&used), "{name}: {{{used}}} is not a parameter");
        }
    }
    for (sample, _) in PARAMETER_SAMPLES {
        let name = sample.trim_matches(['{', '}']).split(':').next().unwrap();
        assert!(parameters.contains(name), "sample for an undeclared parameter {sample}");
    }
    // The drill-down: selecting a turn sets the parameter the hops query reads.
    let turns = items.iter().find(|i| i["name"] == "turns").unwrap();
    assert_eq!(turns["content"]["exportParameterName"], "Turn");
    assert_eq!(turns["content"]["exportFieldName"], "operation_Id");

    let module = std::fs::read_to_string(root().join("infra/modules/workbook.bicep")).unwrap();
    assert!(module.contains("serializedData: loadTextContent('../workbook/identity-propagation.json')"));
    assert!(module.contains("displayName: 'Identity propagation'"));
    assert!(module.contains("sourceId: applicationInsights.id"));
}

#[test]
fn the_workbook_reads_only_span_attributes_the_services_emit() {
    let mut read = BTreeSet::new();
    for (name, query) in queries(&workbook()) {
        // Attributes are read one way only, so none escapes this check.
        let accesses = query.matches("customDimensions").count();
        let indexed: Vec<&str> = query.split("customDimensions[\"").skip(1).collect();
        assert_eq!(accesses, indexed.len(), "{name}: read customDimensions only as customDimensions[\"name\"]");
        for rest in indexed {
            let attribute = rest.split('"').next().unwrap();
            let emitted = span_attributes::NAMES.iter().find(|emitted| **emitted == attribute);
            let emitted = emitted.unwrap_or_else(|| {
                panic!("{name} reads `{attribute}`, which no service emits (entra_auth::span_attributes::NAMES)")
            });
            read.insert(*emitted);
        }
    }
    // What the issue asks the workbook to show: per hop the user, audience, grant and outcome,
    // and refusals by reason.
    for needed in [
        span_attributes::USER,
        span_attributes::AUDIENCE,
        span_attributes::GRANT,
        span_attributes::TOKEN_SOURCE,
        span_attributes::OUTCOME,
        span_attributes::REASON,
    ] {
        assert!(read.contains(needed), "the workbook does not show {needed}");
    }
}

fn registry_reachable(host: &str) -> bool {
    let Ok(mut addrs) = (host, 443).to_socket_addrs() else { return false };
    addrs.any(|addr| TcpStream::connect_timeout(&addr, Duration::from_secs(5)).is_ok())
}

/// `target/kql-check/` with the analyzer installed from `tests/kql/package-lock.json` and the
/// checking program beside it; `None` when the npm registry is unreachable.
fn analyzer() -> Option<PathBuf> {
    let sources = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/kql");
    let dir = root().join("target/kql-check");
    std::fs::create_dir_all(&dir).unwrap();
    for file in ["package.json", "package-lock.json", "check.cjs"] {
        std::fs::copy(sources.join(file), dir.join(file)).unwrap();
    }
    let lock = std::fs::read_to_string(sources.join("package-lock.json")).unwrap();
    let marker = dir.join("installed.txt");
    if std::fs::read_to_string(&marker).is_ok_and(|m| m == lock) {
        return Some(dir);
    }
    let installed = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(&dir)
        .output()
        .expect("npm is needed for the KQL check (Debian: apt-get install nodejs npm)");
    if !installed.status.success() {
        if !registry_reachable("registry.npmjs.org") {
            let _ =
                writeln!(std::io::stderr(), "SKIPPED: the KQL check needs registry.npmjs.org, which is unreachable");
            return None;
        }
        panic!("npm ci in {} failed: {}", dir.display(), String::from_utf8_lossy(&installed.stderr));
    }
    std::fs::write(&marker, lock).unwrap();
    Some(dir)
}

/// Every diagnostic Kusto.Language reports for each `(name, query)`.
fn analyze(dir: &Path, queries: &[(String, String)]) -> Vec<(String, Vec<String>)> {
    let input: Vec<Value> = queries.iter().map(|(name, query)| json!({ "name": name, "query": query })).collect();
    let mut node = Command::new("node")
        .arg(dir.join("check.cjs"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node is needed for the KQL check");
    node.stdin.take().unwrap().write_all(serde_json::to_string(&input).unwrap().as_bytes()).unwrap();
    let output = node.wait_with_output().unwrap();
    assert!(output.status.success(), "check.cjs failed: {}", String::from_utf8_lossy(&output.stderr));
    let results: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap();
    results
        .into_iter()
        .map(|r| {
            let found = r["diagnostics"].as_array().unwrap().iter().map(|d| d.as_str().unwrap().to_string()).collect();
            (r["name"].as_str().unwrap().to_string(), found)
        })
        .collect()
}

#[test]
fn every_workbook_query_passes_the_kusto_analyzer() {
    let Some(dir) = analyzer() else { return };
    let mut queries = queries(&workbook());
    for (_, query) in &mut queries {
        for (parameter, sample) in PARAMETER_SAMPLES {
            *query = query.replace(parameter, sample);
        }
    }
    // The check can fail: a misspelt operator, an unknown column and a reserved word used as a
    // name (the mistake this check first caught in the workbook) are all reported.
    let broken = [
        ("typo", "requests | wher timestamp > ago(1h)"),
        ("unknown column", "dependencies | project nosuch"),
        ("keyword as name", "requests | summarize last = max(timestamp) by name"),
    ];
    queries.extend(broken.iter().map(|(n, q)| (format!("broken: {n}"), q.to_string())));
    for (name, diagnostics) in analyze(&dir, &queries) {
        if name.starts_with("broken: ") {
            assert!(!diagnostics.is_empty(), "{name}: the analyzer found nothing");
        } else {
            assert!(diagnostics.is_empty(), "{name}: {diagnostics:#?}");
        }
    }
}
