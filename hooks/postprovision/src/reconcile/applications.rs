//! App registrations: found by their tag (created when missing), then patched until they
//! match the manifest, phase by phase (see [`crate::diff`]). An app this deployment did not
//! create is never changed: one already holding a wanted identifier URI stops the run.
//!
//! Agent identity blueprints (Microsoft Entra Agent ID) are application objects too, created
//! and addressed through their own type (Graph v1.0 "Create agentIdentityBlueprint",
//! https://learn.microsoft.com/graph/api/agentidentityblueprint-post?view=graph-rest-1.0:
//! `POST /applications/microsoft.graph.agentIdentityBlueprint`, with `displayName` and the
//! `sponsors` relationship required); everything else about them goes the same way.

use entra_manifest::App;
use reqwest::Method;
use serde_json::json;

use super::error::RunError;
use super::kind::Kind;
use super::run::Run;
use crate::deployment::TAG;
use crate::diff::{self, Phase};
use crate::model::Application;
use crate::plan::{Action, Change};

/// An app registration (or agent blueprint) as this run knows it.
pub struct Registration {
    pub kind: Kind,
    pub object_id: String,
    pub app_id: String,
    /// Its properties in Graph (once [`update`]d: as the manifest wants them).
    pub current: Application,
    /// Only planned (dry run): nothing to read from Graph about it.
    pub planned: bool,
}

impl Registration {
    fn found(kind: Kind, current: Application) -> Registration {
        Registration { kind, object_id: current.id.clone(), app_id: current.app_id.clone(), current, planned: false }
    }

    /// Where Graph addresses it: `applications/{id}`, or a blueprint's typed path.
    pub fn path(&self) -> String {
        self.kind.path(&self.object_id)
    }
}

/// The registration tagged for manifest app `name` in this deployment, created with just its
/// name and tags when there is none ([`update`] sets the rest, once every app id is known).
/// `identifier_uris`: the ones it will have; an app of someone else's holding one stops the run.
/// `sponsor`: a blueprint's sponsor (object id of the signed-in user), required to create one.
#[tracing::instrument(skip_all, fields(app = name))]
pub async fn find_or_create(
    run: &mut Run<'_>,
    name: &str,
    app: &App,
    kind: Kind,
    sponsor: Option<&str>,
    identifier_uris: &[String],
) -> Result<Registration, RunError> {
    let id = run.id;
    let tag = id.app_tag(name);
    let filter = format!("tags/any(t:t eq '{tag}')");
    let found: Vec<Application> = run.list("applications", &[("$filter", &filter)]).await?;
    match found.len() {
        0 => {}
        1 => return Ok(Registration::found(kind, found.into_iter().next().unwrap_or_default())),
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
    let mut body = json!({
        "displayName": id.display_name(&app.display_name),
        "signInAudience": "AzureADMyOrg",
        "tags": [TAG, id.tag(), tag],
    });
    let mut detail = format!("tagged {tag}");
    if let Some(sponsor) = sponsor.filter(|_| kind == Kind::Blueprint) {
        // A blueprint needs a sponsor at creation: the person accountable for it.
        body["sponsors@odata.bind"] = json!([format!("https://graph.microsoft.com/v1.0/users/{sponsor}")]);
        detail.push_str(&format!(", sponsored by the signed-in user {sponsor}"));
    }
    let change = Change::new(Action::Create, kind.object(), name, detail);
    let path = kind.create_path();
    Ok(match run.write_as(kind, change, Method::POST, path, Some(body.clone())).await? {
        Some(created) => Registration::found(kind, run.parse(created, path)?),
        None => Registration {
            kind,
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
        let change = Change::new(Action::Update, registration.kind.object(), name, patch.details.join("; "));
        run.write_as(registration.kind, change, Method::PATCH, &registration.path(), Some(patch.body)).await?;
    }
    registration.current = next;
    Ok(())
}
