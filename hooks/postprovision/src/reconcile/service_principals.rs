//! Service principals: each app registration's identity in this tenant, which consent and
//! role assignments name. An agent blueprint's is an agent identity blueprint principal,
//! created through its own type ("Create agentIdentityBlueprintPrincipal",
//! https://learn.microsoft.com/graph/api/agentidentityblueprintprincipal-post?view=graph-rest-1.0);
//! agent identities are created from it.

use reqwest::Method;
use serde_json::json;

use super::applications::Registration;
use super::error::RunError;
use super::kind::Kind;
use super::run::Run;
use crate::model::ServicePrincipal;
use crate::plan::{Action, Change};

/// An app's service principal as this run knows it.
pub struct Principal {
    pub id: String,
    /// Only planned (dry run): nothing to read from Graph about it.
    pub planned: bool,
}

/// The service principal of `registration` (manifest app or blueprint `name`), created when missing.
#[tracing::instrument(skip_all, fields(app = name))]
pub async fn find_or_create(run: &mut Run<'_>, name: &str, registration: &Registration) -> Result<Principal, RunError> {
    let (object, path, detail) = if registration.kind == Kind::Blueprint {
        (
            "agent blueprint principal",
            "servicePrincipals/microsoft.graph.agentIdentityBlueprintPrincipal",
            "the blueprint's identity in this tenant, which its agent identities are created from",
        )
    } else {
        ("service principal", "servicePrincipals", "the app's identity in this tenant")
    };
    let existing: Vec<ServicePrincipal> = if registration.planned {
        Vec::new()
    } else {
        let filter = format!("appId eq '{}'", registration.app_id);
        run.list("servicePrincipals", &[("$filter", &filter)]).await?
    };
    if let Some(sp) = existing.into_iter().next() {
        return Ok(Principal { id: sp.id, planned: false });
    }
    let change = Change::new(Action::Create, object, name, detail);
    let body = json!({ "appId": registration.app_id });
    Ok(match run.write_as(registration.kind, change, Method::POST, path, Some(body)).await? {
        Some(created) => Principal { id: run.parse::<ServicePrincipal>(created, path)?.id, planned: false },
        None => Principal { id: format!("<{name} service principal>"), planned: true },
    })
}
