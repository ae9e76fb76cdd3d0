//! An agent blueprint's inheritable permissions: the delegated scopes its agent identities
//! inherit, per resource app ("Create inheritablePermission",
//! https://learn.microsoft.com/graph/api/agentidentityblueprint-post-inheritablepermissions?view=graph-rest-1.0;
//! `PATCH .../inheritablePermissions/{resourceAppId}` to change one). The hook created the
//! blueprint, so it owns them all: one leaving the manifest is deleted.

use reqwest::Method;
use serde_json::json;

use super::applications::Registration;
use super::error::RunError;
use super::run::Run;
use crate::model::InheritablePermission;
use crate::plan::{Action, Change};

/// Creates, updates and removes `blueprint`'s inheritable permissions (manifest blueprint
/// `name`) until they are `wanted`.
#[tracing::instrument(skip_all, fields(blueprint = name))]
pub async fn update(
    run: &mut Run<'_>,
    name: &str,
    blueprint: &Registration,
    wanted: &[InheritablePermission],
) -> Result<(), RunError> {
    let path = format!("{}/inheritablePermissions", blueprint.path());
    let kind = blueprint.kind;
    let existing: Vec<InheritablePermission> =
        if blueprint.planned { Vec::new() } else { run.list(&path, &[]).await? };
    let same_resource = |a: &InheritablePermission, b: &InheritablePermission| {
        a.resource_app_id.eq_ignore_ascii_case(&b.resource_app_id)
    };
    for permission in wanted {
        let detail = format!(
            "{}: {} inherited by its agent identities",
            permission.resource_app_id,
            permission.inheritable_scopes.scopes.join(" ")
        );
        match existing.iter().find(|e| same_resource(e, permission)) {
            None => {
                let change = Change::new(Action::Create, "inheritable permission", name, detail);
                run.write_as(kind, change, Method::POST, &path, Some(json!(permission))).await?;
            }
            Some(e) if !e.inheritable_scopes.same_as(&permission.inheritable_scopes) => {
                let change = Change::new(Action::Update, "inheritable permission", name, detail);
                let body = json!({ "inheritableScopes": permission.inheritable_scopes });
                run.write_as(kind, change, Method::PATCH, &format!("{path}/{}", e.resource_app_id), Some(body)).await?;
            }
            Some(_) => {}
        }
    }
    for stale in existing.iter().filter(|e| !wanted.iter().any(|w| same_resource(e, w))) {
        let detail = format!("{}: no longer in the manifest", stale.resource_app_id);
        let change = Change::new(Action::Delete, "inheritable permission", name, detail);
        run.write_as(kind, change, Method::DELETE, &format!("{path}/{}", stale.resource_app_id), None).await?;
    }
    Ok(())
}
