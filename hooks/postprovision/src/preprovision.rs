//! `preprovision` (azd's preprovision hook): before ten minutes of provisioning, checks that
//! the Azure OpenAI model Bicep will deploy is offered in the region for the chosen deployment
//! SKU, is still open to new deployments, and that the subscription has the quota for it; else
//! stops naming the models that are offered there.
//!
//! Azure Resource Manager lists both: `GET /subscriptions/{id}/providers/
//! Microsoft.CognitiveServices/locations/{location}/models` (each model's SKUs with their
//! `usageName` and `deprecationDate`, after which no new deployment is accepted) and `.../usages`
//! (`currentValue` and `limit` per usage name, in thousands of tokens per minute). The model's
//! defaults are read from `infra/main.parameters.json`, the file azd gives Bicep, so the check
//! and the deployment cannot disagree.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;
use service_kit::settings::{Env, SettingsError};

use crate::rest::Rest;

/// The Cognitive Services API version of the two lists (the one the Bicep account uses).
const API_VERSION: &str = "2024-10-01";

/// The model deployment Bicep will make, as the azd environment (else the parameters file) says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelChoice {
    pub subscription_id: String,
    pub location: String,
    pub model: String,
    pub version: String,
    pub sku: String,
    /// Thousands of tokens per minute.
    pub capacity: u64,
}

/// `(variable, parameter)`: main.parameters.json passes `${VARIABLE=default}` to each parameter.
const PARAMETERS: [(&str, &str); 5] = [
    ("AZURE_OPENAI_LOCATION", "openAiLocation"),
    ("AZURE_OPENAI_MODEL", "openAiModelName"),
    ("AZURE_OPENAI_MODEL_VERSION", "openAiModelVersion"),
    ("AZURE_OPENAI_DEPLOYMENT_SKU", "openAiDeploymentSku"),
    ("AZURE_OPENAI_DEPLOYMENT_CAPACITY", "openAiDeploymentCapacity"),
];

impl ModelChoice {
    /// `values`: the azd environment; `parameters`: the text of infra/main.parameters.json.
    pub fn read(values: BTreeMap<String, String>, parameters: &str) -> Result<ModelChoice, SettingsError> {
        let mut env = Env::from_map(values);
        let defaults = parameter_defaults(parameters).unwrap_or_else(|e| {
            env.problem(format!("infra/main.parameters.json: {e}"));
            BTreeMap::new()
        });
        let value = |variable: &str| -> String {
            env.get(variable).or_else(|| defaults.get(variable).cloned()).unwrap_or_default()
        };
        let (model, version, sku) =
            (value("AZURE_OPENAI_MODEL"), value("AZURE_OPENAI_MODEL_VERSION"), value("AZURE_OPENAI_DEPLOYMENT_SKU"));
        let capacity = value("AZURE_OPENAI_DEPLOYMENT_CAPACITY");
        let openai_location = value("AZURE_OPENAI_LOCATION");
        let subscription_id: Option<String> = env.required("AZURE_SUBSCRIPTION_ID", "the subscription (set by azd)");
        let location: Option<String> = env.required("AZURE_LOCATION", "the region (set by azd)");
        let capacity: Option<u64> = match capacity.parse() {
            Ok(c) if c > 0 => Some(c),
            _ => {
                env.problem(format!(
                    "AZURE_OPENAI_DEPLOYMENT_CAPACITY={capacity:?} is not a whole number of thousands of tokens per minute"
                ));
                None
            }
        };
        for (name, v) in [("AZURE_OPENAI_MODEL", &model), ("AZURE_OPENAI_MODEL_VERSION", &version)] {
            if v.is_empty() {
                env.problem(format!("{name} is not set and infra/main.parameters.json has no default for it"));
            }
        }
        env.finish()?;
        let (Some(subscription_id), Some(location), Some(capacity)) = (subscription_id, location, capacity) else {
            return Err(SettingsError { problems: vec!["incomplete settings".into()] });
        };
        // main.bicep: an empty openAiLocation means the primary region.
        let location = if openai_location.is_empty() { location } else { openai_location };
        Ok(ModelChoice { subscription_id, location: location.to_ascii_lowercase(), model, version, sku, capacity })
    }
}

/// `VARIABLE -> default` from main.parameters.json's `"${VARIABLE=default}"` values.
fn parameter_defaults(text: &str) -> Result<BTreeMap<String, String>, String> {
    let json: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let mut defaults = BTreeMap::new();
    for (variable, parameter) in PARAMETERS {
        let raw = json["parameters"][parameter]["value"].as_str().unwrap_or_default();
        let inner = raw.strip_prefix("${").and_then(|r| r.strip_suffix('}')).unwrap_or_default();
        if let Some((name, default)) = inner.split_once('=')
            && name == variable
        {
            defaults.insert(variable.to_string(), default.to_string());
        }
    }
    Ok(defaults)
}

/// Checks `choice` against what ARM offers; `Ok` is the line to print, `Err` the message that
/// stops provisioning. `today`: `YYYY-MM-DD` (a SKU past its `deprecationDate` takes no new
/// deployments).
pub async fn check(arm: &Rest, choice: &ModelChoice, today: &str) -> Result<String, String> {
    let base = format!(
        "subscriptions/{}/providers/Microsoft.CognitiveServices/locations/{}",
        choice.subscription_id, choice.location
    );
    let query = [("api-version", API_VERSION)];
    let models: Vec<Value> = arm.list(&format!("{base}/models"), &query).await.map_err(|e| e.to_string())?;
    let open = |sku: &Value| sku["deprecationDate"].as_str().is_none_or(|d| d.get(..10).unwrap_or(d) > today);
    let wanted = models.iter().filter(|m| m["model"]["name"] == choice.model.as_str()).find_map(|m| {
        let skus = m["model"]["skus"].as_array()?;
        let sku = skus.iter().find(|s| s["name"] == choice.sku.as_str() && open(s))?;
        (m["model"]["version"] == choice.version.as_str()).then_some(sku)
    });
    let Some(sku) = wanted else {
        return Err(format!(
            "Azure OpenAI does not offer {} version {} with deployment type {} for new deployments in {} \
(retired, not yet there, or not in this region). Offered there with {}: {}.\n\
Choose one with `azd env set AZURE_OPENAI_MODEL <name>` and `azd env set AZURE_OPENAI_MODEL_VERSION <version>`, \
or another region for the model with `azd env set AZURE_OPENAI_LOCATION <region>`, then run `azd up` again.",
            choice.model,
            choice.version,
            choice.sku,
            choice.location,
            choice.sku,
            offered(&models, &choice.sku, today).unwrap_or_else(|| "nothing".into()),
        ));
    };
    let usage_name = sku["usageName"].as_str().unwrap_or_default();
    let usages: Vec<Value> = arm.list(&format!("{base}/usages"), &query).await.map_err(|e| e.to_string())?;
    let usage = usages.iter().find(|u| u["name"]["value"] == usage_name);
    let free = usage.map_or(0.0, |u| u["limit"].as_f64().unwrap_or(0.0) - u["currentValue"].as_f64().unwrap_or(0.0));
    if free < choice.capacity as f64 {
        return Err(format!(
            "the subscription's Azure OpenAI quota for {usage_name} in {} has {free} (thousand tokens per minute) free, \
and the deployment asks for {}. Lower it (`azd env set AZURE_OPENAI_DEPLOYMENT_CAPACITY <n>`), free some \
(delete another deployment of the model), request more quota, or choose another region with \
`azd env set AZURE_OPENAI_LOCATION <region>`.",
            choice.location, choice.capacity
        ));
    }
    Ok(format!(
        "Azure OpenAI: {} {} ({}) is offered in {}, and {free} of the subscription's quota ({} asked) is free.",
        choice.model, choice.version, choice.sku, choice.location, choice.capacity
    ))
}

/// The chat models offered with deployment type `sku` and open to new deployments, as
/// `name version` (for the message that stops provisioning).
fn offered(models: &[Value], sku: &str, today: &str) -> Option<String> {
    let mut names: Vec<String> = models
        .iter()
        .filter(|m| m["model"]["capabilities"]["chatCompletion"] == "true")
        .filter(|m| {
            m["model"]["skus"].as_array().into_iter().flatten().any(|s| {
                s["name"] == sku && s["deprecationDate"].as_str().is_none_or(|d| d.get(..10).unwrap_or(d) > today)
            })
        })
        .filter_map(|m| Some(format!("{} {}", m["model"]["name"].as_str()?, m["model"]["version"].as_str()?)))
        .collect();
    names.sort();
    names.dedup();
    (!names.is_empty()).then(|| names.join(", "))
}

/// Reads infra/main.parameters.json next to the manifest.
pub fn parameters_text(manifest: &Path) -> Result<String, String> {
    let path = manifest.with_file_name("main.parameters.json");
    std::fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// Today in UTC as `YYYY-MM-DD`.
pub fn today() -> String {
    time::OffsetDateTime::now_utc().date().to_string()
}
