//! `apply`: the steps that make the tenant, the azd environment and the container apps match
//! the manifest, in the order they run. The order lives here and only here.
//!
//! Each step covers every app before the next one starts: an app's patch names the other apps'
//! ids and scopes (pre-authorized clients, required access), and admin consent names every
//! service principal. The application patches themselves go phase by phase, in the order Graph
//! accepts them ([`Phase`]).
//!
//! In agent mode ([`Deployment::agent_mode`]) the manifest's agent blueprints go along with the
//! apps (a blueprint is an application object: same phases, its principal and federated
//! credential in the same steps), then come their inheritable permissions, their admin consent
//! and, last, the agent identities, which need their blueprint's principal. Off, none of them
//! is read, planned or deleted. Before them all comes the provisioning client their writes go
//! through (Graph refuses them from the Azure CLI's: see [`super::provisioning_client`]).

use std::collections::BTreeMap;

use super::agent_identities;
use super::applications;
use super::error::RunError;
use super::federated_credentials;
use super::grants;
use super::inheritable_permissions;
use super::kind::Kind;
use super::outputs;
use super::provisioning_client;
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

    // Agent mode: the signed-in user sponsors the agent objects (Graph requires a sponsor at
    // creation), known before any write.
    let off = BTreeMap::new();
    let blueprints = if deployment.agent_mode { &manifest.agent_blueprints } else { &off };
    let sponsor = if deployment.agent_mode {
        Some(tenant::signed_in_user(&run).await?.ok_or(RunError::NoSponsor)?)
    } else {
        None
    };
    // 0. Agent mode: the client the developer signs in to for the Agent ID writes.
    if deployment.agent_mode {
        provisioning_client::ensure(&mut run).await?;
    }
    let entries = || {
        let apps = manifest.apps.iter().map(|(name, app)| (name, app, Kind::App));
        apps.chain(blueprints.iter().map(|(name, app)| (name, app, Kind::Blueprint)))
    };

    // 1. Every app registration (and blueprint) exists, so every app id is known.
    let vars = deployment.vars();
    let mut registrations = BTreeMap::new();
    for (name, app, kind) in entries() {
        let uris: Vec<String> = app.identifier_uri.iter().map(|t| t.render(&vars)).collect();
        let registration = applications::find_or_create(&mut run, name, app, kind, sponsor.as_deref(), &uris).await?;
        registrations.insert(name.clone(), registration);
    }
    let app_ids: BTreeMap<String, String> =
        registrations.iter().map(|(name, r)| (name.clone(), r.app_id.clone())).collect();
    let context = Context { manifest, deployment, app_ids: &app_ids };
    let wanted: BTreeMap<String, _> =
        entries().map(|(name, app, _)| (name.clone(), context.application(app))).collect();

    // 2. Each registration matches the manifest, one phase at a time for all of them.
    for phase in Phase::ALL {
        for (name, app) in &wanted {
            let Some(registration) = registrations.get_mut(name) else { continue };
            applications::update(&mut run, name, registration, app, phase).await?;
        }
    }

    // 3. Each app (and blueprint) has its service principal.
    let mut principals = BTreeMap::new();
    for (name, registration) in &registrations {
        principals.insert(name.clone(), service_principals::find_or_create(&mut run, name, registration).await?);
    }

    // 4. Each app trusts the managed identities the manifest names.
    for (name, app, _) in entries() {
        let Some(registration) = registrations.get(name) else { continue };
        federated_credentials::update(&mut run, name, registration, &context.federated_credentials(app)).await?;
    }

    // 5. What each blueprint's agent identities inherit, and an administrator's consent to it.
    for (name, blueprint) in blueprints {
        let Some(registration) = registrations.get(name) else { continue };
        let permissions = context.inheritable_permissions(blueprint);
        inheritable_permissions::update(&mut run, name, registration, &permissions).await?;
    }

    // 6. Admin consent for each app's required access (optional: pre-authorization already
    //    spares users a prompt for the project's own APIs) and each blueprint's inheritable
    //    permissions (required: agent identities cannot be consented to), then the signed-in
    //    user's app roles.
    for (name, app, kind) in entries() {
        let Some(registration) = registrations.get(name) else { continue };
        let access = match kind {
            Kind::App => &app.required_access,
            Kind::Blueprint => &app.inheritable_permissions,
        };
        grants::admin_consent(&mut run, deployment, name, access, registration, &principals).await?;
    }
    grants::assign_roles(&mut run, deployment, &principals).await?;

    // 7. The agent identities, from their blueprint's principal.
    let mut agents = BTreeMap::new();
    if let Some(sponsor) = &sponsor {
        for (name, agent) in &manifest.agent_identities {
            let Some(blueprint) = registrations.get(&agent.blueprint) else { continue };
            let app_id = agent_identities::find_or_create(&mut run, name, agent, blueprint, sponsor).await?;
            agents.insert(name.clone(), app_id);
        }
    }

    // 8. The ids go to the azd environment, then to the container apps.
    let published = outputs::values(&run, deployment, &registrations, &agents);
    outputs::write_to_azd_env(&mut run, deployment, &published)?;
    outputs::update_container_apps(&mut run, deployment, &published).await?;

    Ok(run.finish("the tenant, the azd environment and the container apps already match the manifest"))
}
