//! `apply`: the steps that make the tenant, the azd environment and the container apps match
//! the manifest, in the order they run. The order lives here and only here.
//!
//! Each step covers every app before the next one starts: an app's patch names the other apps'
//! ids (pre-authorized clients, required access), and admin consent names every service
//! principal.

use std::collections::BTreeMap;

use super::applications;
use super::error::RunError;
use super::federated_credentials;
use super::grants;
use super::outputs;
use super::run::{Run, Summary};
use super::service_principals;
use super::tenant;
use crate::desired::Context;

#[tracing::instrument(skip_all, fields(env = %run.deployment.env_name))]
pub async fn apply(mut run: Run<'_>) -> Result<Summary, RunError> {
    let (manifest, deployment) = (run.manifest, run.deployment);
    run.say(&format!(
        "Applying the identity manifest to tenant {} for azd environment {:?}.",
        deployment.tenant_id, deployment.env_name
    ));
    tenant::check(&run).await?;

    // 1. Every app registration exists, so every app id is known.
    let mut registrations = BTreeMap::new();
    for (name, app) in &manifest.apps {
        registrations.insert(name.clone(), applications::find_or_create(&mut run, name, app).await?);
    }
    let app_ids: BTreeMap<String, String> =
        registrations.iter().map(|(name, r)| (name.clone(), r.app_id.clone())).collect();
    let wanted = Context { manifest, deployment, app_ids: &app_ids };

    // 2. Each registration matches the manifest.
    for (name, app) in &manifest.apps {
        let Some(registration) = registrations.get_mut(name) else { continue };
        applications::update(&mut run, name, registration, wanted.application(app)).await?;
    }

    // 3. Each app has its service principal.
    let mut principals = BTreeMap::new();
    for (name, registration) in &registrations {
        principals.insert(name.clone(), service_principals::find_or_create(&mut run, name, registration).await?);
    }

    // 4. Each app trusts the managed identities the manifest names.
    for (name, app) in &manifest.apps {
        let Some(registration) = registrations.get(name) else { continue };
        federated_credentials::update(&mut run, name, registration, &wanted.federated_credentials(app)).await?;
    }

    // 5. Admin consent for each app's required access, then the signed-in user's app roles.
    for (name, app) in &manifest.apps {
        let Some(registration) = registrations.get(name) else { continue };
        grants::admin_consent(&mut run, name, app, registration, &principals).await?;
    }
    grants::assign_roles(&mut run, &principals).await?;

    // 6. The ids go to the azd environment, then to the container apps.
    let published = outputs::values(&run, &registrations);
    outputs::write_to_azd_env(&mut run, &published)?;
    outputs::update_container_apps(&mut run, &published).await?;

    Ok(run.finish("the tenant, the azd environment and the container apps already match the manifest"))
}
