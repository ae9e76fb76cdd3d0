//! Federated identity credentials: each app trusts the managed identities the manifest names,
//! so no secret exists anywhere. Only credentials the hook made (marked in their description)
//! are updated or removed; ones added by hand stay. An agent blueprint's credentials are
//! addressed through its typed path ("Create federatedIdentityCredential" for "an application
//! or an agentIdentityBlueprint",
//! https://learn.microsoft.com/graph/api/federatedidentitycredential-post?view=graph-rest-1.0).

use reqwest::Method;
use serde_json::json;

use super::applications::Registration;
use super::error::RunError;
use super::run::Run;
use crate::desired::FIC_MARKER;
use crate::model::FederatedCredential;
use crate::plan::{Action, Change};

/// Creates, updates and removes `registration`'s credentials (manifest app `name`) until they
/// are `wanted`.
#[tracing::instrument(skip_all, fields(app = name))]
pub async fn update(
    run: &mut Run<'_>,
    name: &str,
    registration: &Registration,
    wanted: &[FederatedCredential],
) -> Result<(), RunError> {
    let path = format!("{}/federatedIdentityCredentials", registration.path());
    let kind = registration.kind;
    let existing: Vec<FederatedCredential> =
        if registration.planned { Vec::new() } else { run.list(&path, &[]).await? };
    for fic in wanted {
        let detail = format!("{}: subject {} (managed identity)", fic.name, fic.subject);
        match existing.iter().find(|e| e.name == fic.name) {
            None => {
                let change = Change::new(Action::Create, "federated credential", name, detail);
                run.write_as(kind, change, Method::POST, &path, Some(json!(fic))).await?;
            }
            Some(e)
                if e.issuer != fic.issuer
                    || e.subject != fic.subject
                    || e.audiences != fic.audiences
                    || e.description != fic.description =>
            {
                let change = Change::new(Action::Update, "federated credential", name, detail);
                let body = json!({
                    "issuer": fic.issuer, "subject": fic.subject, "audiences": fic.audiences, "description": fic.description,
                });
                run.write_as(kind, change, Method::PATCH, &format!("{path}/{}", e.id), Some(body)).await?;
            }
            Some(_) => {}
        }
    }
    let made_here = |e: &&FederatedCredential| e.description.as_deref().is_some_and(|d| d.starts_with(FIC_MARKER));
    for stale in existing.iter().filter(made_here).filter(|e| !wanted.iter().any(|w| w.name == e.name)) {
        let detail = format!("{}: no longer in the manifest", stale.name);
        let change = Change::new(Action::Delete, "federated credential", name, detail);
        run.write_as(kind, change, Method::DELETE, &format!("{path}/{}", stale.id), None).await?;
    }
    Ok(())
}
