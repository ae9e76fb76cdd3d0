//! App registrations: found by their tag (created when missing), then patched until they
//! match the manifest, phase by phase (see [`crate::diff`]). An app this deployment did not
//! create is never changed: one already holding a wanted identifier URI stops the run.

use entra_manifest::App;
use reqwest::Method;
use serde_json::json;

use super::error::RunError;
use super::run::Run;
use crate::deployment::TAG;
use crate::diff::{self, Phase};
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

/// The registration tagged for manifest app `name` in this deployment, created with just its
/// name and tags when there is none ([`update`] sets the rest, once every app id is known).
/// `identifier_uris`: the ones it will have; an app of someone else's holding one stops the run.
#[tracing::instrument(skip_all, fields(app = name))]
pub async fn find_or_create(
    run: &mut Run<'_>,
    name: &str,
    app: &App,
    identifier_uris: &[String],
) -> Result<Registration, RunError> {
    let id = run.id;
    let tag = id.app_tag(name);
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
    for uri in identifier_uris {
        let filter = format!("identifierUris/any(x:x eq '{}')", uri.replace('\'', "''"));
        let holders: Vec<Application> = run.list("applications", &[("$filter", &filter)]).await?;
        if let Some(holder) = holders.into_iter().next() {
            return Err(RunError::Foreign {
                uri: uri.clone(),
                object_id: holder.id,
                display_name: holder.display_name,
                tags: holder.tags.join(", "),
            });
        }
    }
    let body = json!({
        "displayName": id.display_name(&app.display_name),
        "signInAudience": "AzureADMyOrg",
        "tags": [TAG, id.tag(), tag],
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

/// Does `phase` of bringing the registration to `wanted`: at most one patch, only what differs.
#[tracing::instrument(skip_all, fields(app = name, ?phase))]
pub async fn update(
    run: &mut Run<'_>,
    name: &str,
    registration: &mut Registration,
    wanted: &Application,
    phase: Phase,
) -> Result<(), RunError> {
    let next = diff::after(&registration.current, wanted, phase);
    if let Some(patch) = diff::patch(&registration.current, &next) {
        let path = format!("applications/{}", registration.object_id);
        let change = Change::new(Action::Update, "application", name, patch.details.join("; "));
        run.write(change, Method::PATCH, &path, Some(patch.body)).await?;
    }
    registration.current = next;
    Ok(())
}
