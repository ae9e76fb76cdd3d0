//! `cleanup` (azd's predown hook): removes the app registrations this deployment's runs
//! created, and their service principals, for good; never an app without this deployment's tag.
//! Agent ID objects go in the reverse of their creation: the agent identities (tagged like the
//! apps), then each blueprint's principal, then the blueprint, which is an application; their
//! deletes go through agent mode's provisioning client (as their creation did), which goes last.

use serde::Deserialize;

use super::error::RunError;
use super::kind::Kind;
use super::provisioning_client;
use super::run::{Run, Summary};
use super::tenant;
use crate::model::{AgentIdentity, ServicePrincipal};
use crate::plan::{Action, Change};
use crate::rest::NotFound;

/// What cleanup reads of a tagged application (or agent blueprint).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Tagged {
    id: String,
    app_id: String,
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(rename = "@odata.type", default)]
    odata_type: Option<String>,
}

impl Tagged {
    fn kind(&self) -> Kind {
        match self.odata_type.as_deref() {
            Some("#microsoft.graph.agentIdentityBlueprint") => Kind::Blueprint,
            _ => Kind::App,
        }
    }
}

#[tracing::instrument(skip_all, fields(env = %run.id.env_name))]
pub async fn cleanup(mut run: Run<'_>) -> Result<Summary, RunError> {
    let tag = run.id.tag();
    run.say(&format!("Removing the app registrations tagged {tag} from tenant {}.", run.id.tenant_id));
    tenant::check(&run).await?;
    let filter = format!("tags/any(t:t eq '{tag}')");
    let agents: Vec<AgentIdentity> = run.list("servicePrincipals", &[("$filter", &filter)]).await?;
    let mut apps: Vec<Tagged> = run.list("applications", &[("$filter", &filter)]).await?;
    if !agents.is_empty() || apps.iter().any(|a| a.kind() == Kind::Blueprint) {
        provisioning_client::ensure(&mut run).await?;
        // It may have just been made again (a run stopped before it existed): remove it too.
        apps = run.list("applications", &[("$filter", &filter)]).await?;
    }
    for agent in &agents {
        let change = Change::new(
            Action::Delete,
            "agent identity",
            &name_in(&tag, &agent.tags, &agent.id),
            format!("object id {}", agent.id),
        );
        run.delete(Kind::Blueprint, change, &format!("servicePrincipals/{}", agent.id), NotFound::Gone).await?;
    }
    // The provisioning client last: the Agent ID deletes need it.
    let provisioning = run.id.app_tag(provisioning_client::NAME);
    apps.sort_by_key(|a| a.tags.contains(&provisioning));
    for app in &apps {
        let fallback = app.display_name.clone().unwrap_or_else(|| app.id.clone());
        remove(&mut run, &name_in(&tag, &app.tags, &fallback), app).await?;
    }
    Ok(run.finish(&format!("no app registrations are tagged {tag}")))
}

/// The manifest name an object's tags give it (`<deployment tag>:<name>`), else `fallback`.
fn name_in(tag: &str, tags: &[String], fallback: &str) -> String {
    tags.iter().find_map(|t| t.strip_prefix(&format!("{tag}:"))).unwrap_or(fallback).to_string()
}

/// Deletes `app` (manifest app `name`) and its service principals, then purges it.
#[tracing::instrument(skip_all, fields(app = name))]
async fn remove(run: &mut Run<'_>, name: &str, app: &Tagged) -> Result<(), RunError> {
    let kind = app.kind();
    let filter = format!("appId eq '{}'", app.app_id);
    let principals: Vec<ServicePrincipal> = run.list("servicePrincipals", &[("$filter", &filter)]).await?;
    for sp in principals {
        let change = Change::new(Action::Delete, "service principal", name, format!("object id {}", sp.id));
        run.delete(kind, change, &format!("servicePrincipals/{}", sp.id), NotFound::Gone).await?;
    }
    let change = Change::new(Action::Delete, "application", name, format!("object id {}", app.id));
    run.delete(kind, change, &format!("applications/{}", app.id), NotFound::Gone).await?;
    // Deleted applications are kept 30 days and keep their identifier URIs reserved: delete
    // for good, so the next `azd up` of this environment can reuse them.
    let change = Change::new(Action::Delete, "deleted application", name, "permanently (frees its identifier URI)");
    run.delete(kind, change, &format!("directory/deletedItems/{}", app.id), NotFound::Lag).await
}
