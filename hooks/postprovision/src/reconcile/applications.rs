//! App registrations: found by their tag (created when missing), then patched until they
//! match the manifest.

use entra_manifest::App;
use reqwest::Method;
use serde_json::json;

use super::error::RunError;
use super::run::Run;
use crate::desired;
use crate::diff::application_patches;
use crate::model::Application;
use crate::plan::{Action, Change};

/// An app registration as this run knows it.
pub struct Registration {
    pub object_id: String,
    pub app_id: String,
    /// Its properties in Graph (once [`update`]d: as the manifest wants them).
    pub current: Application,
    /// Only planned (dry run): nothing to read from Graph about it.
    pub planned: bool,
}

impl Registration {
    fn found(current: Application) -> Registration {
        Registration { object_id: current.id.clone(), app_id: current.app_id.clone(), current, planned: false }
    }
}

/// The registration tagged for manifest app `name` in this environment, created with just its
/// name and tags when there is none ([`update`] sets the rest, once every app id is known).
#[tracing::instrument(skip_all, fields(app = name))]
pub async fn find_or_create(run: &mut Run<'_>, name: &str, app: &App) -> Result<Registration, RunError> {
    let env_name = run.deployment.env_name.clone();
    let tag = desired::app_tag(&env_name, name);
    let filter = format!("tags/any(t:t eq '{tag}')");
    let found: Vec<Application> = run.list("applications", &[("$filter", &filter)]).await?;
    match found.len() {
        0 => {}
        1 => return Ok(Registration::found(found.into_iter().next().unwrap_or_default())),
        count => {
            let ids = found.iter().map(|a| a.id.as_str()).collect::<Vec<_>>().join(", ");
            return Err(RunError::Duplicate { tag, count, ids });
        }
    }
    let body = json!({
        "displayName": format!("{} ({env_name})", app.display_name),
        "signInAudience": "AzureADMyOrg",
        "tags": [desired::TAG, desired::env_tag(&env_name), tag],
    });
    let change = Change::new(Action::Create, "application", name, format!("tagged {tag}"));
    Ok(match run.write(change, Method::POST, "applications", Some(body.clone())).await? {
        Some(created) => Registration::found(run.parse(created, "applications")?),
        None => Registration {
            object_id: format!("<{name} object id>"),
            app_id: format!("<{name} app id>"),
            current: serde_json::from_value(body).unwrap_or_default(),
            planned: true,
        },
    })
}

/// Patches the registration until it is `wanted`: only what differs, in two patches when a
/// scope or app role must be disabled before it can be removed.
#[tracing::instrument(skip_all, fields(app = name))]
pub async fn update(
    run: &mut Run<'_>,
    name: &str,
    registration: &mut Registration,
    wanted: Application,
) -> Result<(), RunError> {
    let path = format!("applications/{}", registration.object_id);
    for patch in application_patches(&registration.current, &wanted) {
        let change = Change::new(Action::Update, "application", name, patch.details.join("; "));
        run.write(change, Method::PATCH, &path, Some(patch.body)).await?;
    }
    registration.current = wanted;
    Ok(())
}
