//! Agent identities: each a service principal created from its blueprint's principal, with no
//! credential of its own ("Create agentIdentity",
//! https://learn.microsoft.com/graph/api/agentidentity-post?view=graph-rest-1.0:
//! `POST /servicePrincipals/microsoft.graph.agentIdentity` naming `agentIdentityBlueprintId`,
//! with at least one sponsor). Found again by their tag, like the app registrations.

use entra_manifest::AgentIdentity as ManifestAgent;
use reqwest::Method;
use serde_json::json;

use super::applications::Registration;
use super::error::RunError;
use super::kind::Kind;
use super::run::Run;
use crate::deployment::TAG;
use crate::model::AgentIdentity;
use crate::plan::{Action, Change};
use crate::rest::NotFound;

const CREATE_PATH: &str = "servicePrincipals/microsoft.graph.agentIdentity";

/// The agent identity tagged for manifest agent `name`, created from `blueprint` (sponsored by
/// `sponsor`, the signed-in user) when missing. One left from an earlier blueprint of this
/// deployment is replaced: an agent identity's blueprint is fixed at creation. Returns its app id.
#[tracing::instrument(skip_all, fields(agent = name))]
pub async fn find_or_create(
    run: &mut Run<'_>,
    name: &str,
    agent: &ManifestAgent,
    blueprint: &Registration,
    sponsor: &str,
) -> Result<String, RunError> {
    let id = run.id;
    let tag = id.app_tag(name);
    let existing: Vec<AgentIdentity> = if blueprint.planned {
        Vec::new()
    } else {
        run.list("servicePrincipals", &[("$filter", &format!("tags/any(t:t eq '{tag}')"))]).await?
    };
    for found in existing {
        if found.agent_identity_blueprint_id.eq_ignore_ascii_case(&blueprint.app_id) {
            return Ok(found.app_id);
        }
        let detail = format!("object id {}: made from an earlier blueprint", found.id);
        let change = Change::new(Action::Delete, "agent identity", name, detail);
        run.delete(Kind::Blueprint, change, &format!("servicePrincipals/{}", found.id), NotFound::Gone).await?;
    }
    let body = json!({
        "displayName": id.display_name(&agent.display_name),
        "agentIdentityBlueprintId": blueprint.app_id,
        "sponsors@odata.bind": [format!("https://graph.microsoft.com/v1.0/users/{sponsor}")],
        "tags": [TAG, id.tag(), tag],
    });
    let detail = format!("from blueprint {}, sponsored by the signed-in user {sponsor}, tagged {tag}", agent.blueprint);
    let change = Change::new(Action::Create, "agent identity", name, detail);
    Ok(match run.write_as(Kind::Blueprint, change, Method::POST, CREATE_PATH, Some(body)).await? {
        Some(created) => run.parse::<AgentIdentity>(created, CREATE_PATH)?.app_id,
        None => format!("<{name} agent id>"),
    })
}
