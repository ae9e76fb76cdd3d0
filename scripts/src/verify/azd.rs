//! A deployment described by the azd environment: `azd env get-values`, or a saved copy of its
//! output.

use std::collections::HashMap;
use std::path::Path;

use url::Url;

use super::target::{ENTRA, Target};

/// The deployment in `env_file`, or in the current azd environment without one, whose services
/// trust `authority` (default: Microsoft Entra ID).
pub fn target(env_file: Option<&Path>, authority: Option<&Url>) -> anyhow::Result<Target> {
    let values = match env_file {
        Some(path) => {
            std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?
        }
        None => env_values()?,
    };
    from_values(&parse(&values), authority)
}

fn env_values() -> anyhow::Result<String> {
    let output = std::process::Command::new("azd")
        .args(["env", "get-values"])
        .current_dir(crate::root())
        .output()
        .map_err(|e| anyhow::anyhow!("cannot run `azd env get-values` ({e}); pass --env-file instead"))?;
    if !output.status.success() {
        anyhow::bail!("`azd env get-values` failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// `KEY="value"` lines, as `azd env get-values` prints them.
fn parse(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().trim_matches('"').to_string()))
        .collect()
}

fn from_values(env: &HashMap<String, String>, authority: Option<&Url>) -> anyhow::Result<Target> {
    let get = |k: &str| env.get(k).cloned().ok_or_else(|| anyhow::anyhow!("the azd environment has no {k}"));
    Ok(Target {
        chat_app: Url::parse(&get("CHAT_APP_URL")?)?,
        orders_mcp: Some(Url::parse(&get("ORDERS_MCP_URL")?)?),
        orders_api: None,
        authority: authority.cloned().map_or_else(|| Url::parse(ENTRA), Ok)?,
        tenant: get("AZURE_TENANT_ID")?,
        local: None,
    })
}
