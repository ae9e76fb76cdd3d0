//! `apply`: the steps that make the tenant, the azd environment and the container apps match
//! the manifest, in the order they run. The order lives here and only here.
//!
//! Each step covers every app before the next one starts: an app's patch names the other apps'
//! ids and scopes (pre-authorized clients, required access), and admin consent names every
//! service principal. The application patches themselves go phase by phase, in the order Graph
//! accepts them ([`Phase`]).

use std::collections::BTreeMap;

use super::applications;
use super::error::RunError;
use super::federated_credentials;
use super::grants;
use super::outputs;
use super::run::{Run, Summary};
use super::service_principals;
use super::tenant;
use crate::deployment::Deployment;
use crate::desired::Context;
use crate::diff::Phase;

#[tracing::instrument(skip_all, fields(env = %deployment.id.env_name))]
pub async fn apply(mut run: Run<'_>, deployment: &Deployment) -> Result<Summary, RunError> {
    let manifest = run.manifest;
    run.say(&format!(
        "Applying the identity manifest to tenant {} for azd environment {:?} (deployment {}).",
        deployment.id.tenant_id,
        deployment.id.env_name,
        deployment.id.tag()
    ));
    tenant::check(&run).await?;

    // 1. Every app registration exists, so every app id is known.
    let vars = deployment.vars();
    let mut registrations = BTreeMap::new();
    for (name, app) in &manifest.apps {
        let uris: Vec<String> = app.identifier_uri.iter().map(|t| t.render(&vars)).collect();
        registrations.insert(name.clone(), applications::find_or_create(&mut run, name, app, &uris).await?);
    }
    let app_ids: BTreeMap<String, String> =
        registrations.iter().map(|(name, r)| (name.clone(), r.app_id.clone())).collect();
    let wanted = Context { manifest, deployment, app_ids: &app_ids };
    let wanted: BTreeMap<String, _> =
        manifest.apps.iter().map(|(name, app)| (name.clone(), wanted.application(app))).collect();

    // 2. Each registration matches the manifest, one phase at a time for all of them.
    for phase in Phase::ALL {
        for (name, app) in &wanted {
            let Some(registration) = registrations.get_mut(name) else { continue };
            applications::update(&mut run, name, registration, app, phase).await?;
        }
    }

    // 3. Each app has its service principal.
    let mut principals = BTreeMap::new();
    for (name, registration) in &registrations {
        principals.insert(name.clone(), service_principals::find_or_create(&mut run, name, registration).await?);
    }

    // 4. Each app trusts the managed identities the manifest names.
    let context = Context { manifest, deployment, app_ids: &app_ids };
    for (name, app) in &manifest.apps {
        let Some(registration) = registrations.get(name) else { continue };
        federated_credentials::update(&mut run, name, registration, &context.federated_credentials(app)).await?;
    }

    // 5. Admin consent for each app's required access (optional: pre-authorization already
    //    spares users a prompt for the project's own APIs), then the signed-in user's app roles.
    for (name, app) in &manifest.apps {
        let Some(registration) = registrations.get(name) else { continue };
        grants::admin_consent(&mut run, deployment, name, app, registration, &principals).await?;
    }
    grants::assign_roles(&mut run, deployment, &principals).await?;

    // 6. The ids go to the azd environment, then to the container apps.
    let published = outputs::values(&run, deployment, &registrations);
    outputs::write_to_azd_env(&mut run, deployment, &published)?;
    outputs::update_container_apps(&mut run, deployment, &published).await?;

    Ok(run.finish("the tenant, the azd environment and the container apps already match the manifest"))
}
