//! Applying the new ids to the running container apps through Azure Resource Manager, so the
//! first `azd up` works without a second provision: `azd deploy` then only swaps the image
//! and keeps these values.
//!
//! Only variables a container already declares are updated (infra/main.bicep declares each
//! one on the services that read it), so Bicep stays the one place that says who gets what.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::rest::{ApiError, NotFound, Rest};

pub const API_VERSION: &str = "2024-03-01";

/// How long a container app update may take before the hook gives up waiting.
const UPDATE_TIMEOUT: Duration = Duration::from_secs(600);

pub fn resource_path(subscription_id: &str, resource_group: &str, name: &str) -> String {
    format!(
        "subscriptions/{subscription_id}/resourceGroups/{resource_group}/providers/Microsoft.App/containerApps/{name}"
    )
}

/// The app's containers with `values` applied to the variables they declare, and the names of
/// those that change; `None` when nothing changes.
pub fn updated_containers(app: &Value, values: &BTreeMap<String, String>) -> Option<(Value, Vec<String>)> {
    let mut containers = app.pointer("/properties/template/containers")?.clone();
    let mut changed = Vec::new();
    for container in containers.as_array_mut()? {
        let Some(env) = container.get_mut("env").and_then(Value::as_array_mut) else { continue };
        for var in env {
            let Some(name) = var.get("name").and_then(Value::as_str).map(str::to_string) else { continue };
            let Some(wanted) = values.get(&name) else { continue };
            if var.get("value").and_then(Value::as_str) != Some(wanted.as_str()) {
                var["value"] = json!(wanted);
                if !changed.contains(&name) {
                    changed.push(name);
                }
            }
        }
    }
    if changed.is_empty() { None } else { Some((containers, changed)) }
}

#[tracing::instrument(skip_all, fields(container_app = %name_of(path)))]
pub async fn get(arm: &Rest, path: &str) -> Result<Value, ApiError> {
    let answer = arm.send(Method::GET, path, &[("api-version", API_VERSION)], None, NotFound::Error).await?;
    answer.body.ok_or_else(|| arm.bad(&Method::GET, path, "empty body".into()))
}

/// `PATCH`es the containers (ARM merges the patch; the containers array is replaced whole) and
/// waits for the long-running operation to finish.
#[tracing::instrument(skip_all, fields(container_app = %name_of(path)))]
pub async fn patch_containers(arm: &Rest, path: &str, containers: Value) -> Result<(), ApiError> {
    let body = json!({ "properties": { "template": { "containers": containers } } });
    let answer = arm.send(Method::PATCH, path, &[("api-version", API_VERSION)], Some(&body), NotFound::Error).await?;
    let Some(status_url) = answer
        .headers
        .get("azure-asyncoperation")
        .or_else(|| answer.headers.get(reqwest::header::LOCATION))
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
    else {
        return Ok(());
    };
    let started = Instant::now();
    let mut hint = retry_after(&answer.headers);
    let mut attempt = 0;
    loop {
        attempt += 1;
        tokio::time::sleep(hint.unwrap_or(Duration::from_millis(500).saturating_mul(attempt.min(10)))).await;
        let answer = arm.send(Method::GET, &status_url, &[], None, NotFound::Lag).await?;
        hint = retry_after(&answer.headers);
        let status = answer.body.as_ref().and_then(|b| b.get("status")).and_then(Value::as_str).unwrap_or("InProgress");
        match status {
            "Succeeded" => return Ok(()),
            "Failed" | "Canceled" => {
                let reason = answer
                    .body
                    .as_ref()
                    .and_then(|b| b.pointer("/error/message"))
                    .and_then(Value::as_str)
                    .unwrap_or("no reason given");
                return Err(arm.bad(&Method::PATCH, path, format!("the update {status}: {reason}")));
            }
            _ if started.elapsed() > UPDATE_TIMEOUT => {
                return Err(arm.bad(&Method::PATCH, path, "the update did not finish within 10 minutes".into()));
            }
            _ => {}
        }
    }
}

/// The container app's name: the last segment of its resource path.
fn name_of(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// ARM's `Retry-After` on a long-running operation: how long to wait before polling.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let seconds = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim().parse::<u64>().ok()?;
    Some(Duration::from_secs(seconds.min(60)))
}
