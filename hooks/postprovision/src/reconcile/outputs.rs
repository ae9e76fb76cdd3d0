//! Publishing what the services need to know: each app's client id and application id URI
//! (and in agent mode chat-app's blueprint and agent identity), to the azd environment and to
//! the container apps that declare those variables.

use std::collections::BTreeMap;

use super::applications::Registration;
use super::error::RunError;
use super::run::{Mode, Run};
use crate::container_apps;
use crate::deployment::{Deployment, variables};
use crate::plan::{Action, Change};

/// The values to publish, by variable name. `registrations`: by manifest app (or blueprint)
/// name; `agents`: agent identities' app ids, by manifest name.
pub fn values(
    run: &Run<'_>,
    deployment: &Deployment,
    registrations: &BTreeMap<String, Registration>,
    agents: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let vars = deployment.vars();
    let mut outputs = BTreeMap::new();
    for (name, app) in &run.manifest.apps {
        if let Some(registration) = registrations.get(name) {
            outputs.insert(variables::client_id_key(name), registration.app_id.clone());
        }
        if let Some(uri) = &app.identifier_uri {
            outputs.insert(variables::app_id_uri_key(name), uri.render(&vars));
        }
    }
    // chat-app acts as the manifest's (first) agent identity, as its configuration reads it.
    let agent = run.manifest.agent_identities.iter().next();
    if let Some((name, agent)) = agent
        && let Some(agent_id) = agents.get(name)
        && let (Some(registration), Some(blueprint)) =
            (registrations.get(&agent.blueprint), run.manifest.agent_blueprints.get(&agent.blueprint))
    {
        outputs.insert(variables::AGENT_ID.to_string(), agent_id.clone());
        outputs.insert(variables::AGENT_BLUEPRINT_ID.to_string(), registration.app_id.clone());
        if let Some(uri) = &blueprint.identifier_uri {
            outputs.insert(variables::AGENT_BLUEPRINT_APP_ID_URI.to_string(), uri.render(&vars));
        }
    }
    outputs
}

/// Sets the values the azd environment does not hold yet.
#[tracing::instrument(skip_all)]
pub fn write_to_azd_env(
    run: &mut Run<'_>,
    deployment: &Deployment,
    outputs: &BTreeMap<String, String>,
) -> Result<(), RunError> {
    for (key, value) in outputs {
        if deployment.values.get(key) == Some(value) {
            continue;
        }
        let change = Change::new(Action::Set, "azd env", key, value.clone());
        if run.mode == Mode::DryRun {
            run.plan(change);
            continue;
        }
        if let Err(cause) = run.azd_env.set(key, value) {
            return Err(RunError::Stopped { done: run.done(), cause, hint: String::new() });
        }
        run.record(change);
    }
    Ok(())
}

/// Applies the values to the container apps whose containers declare them (Azure Resource
/// Manager), so the first `azd up` works without a second provision.
#[tracing::instrument(skip_all)]
pub async fn update_container_apps(
    run: &mut Run<'_>,
    deployment: &Deployment,
    outputs: &BTreeMap<String, String>,
) -> Result<(), RunError> {
    let (Some(arm), Some(target)) = (run.arm, &deployment.container_apps) else {
        run.note(
            "no container apps in the environment (or --skip-container-apps): their settings were not updated".into(),
        );
        return Ok(());
    };
    for (app, name) in &target.apps {
        let path = container_apps::resource_path(&target.subscription_id, &target.resource_group, name);
        let current = container_apps::get(arm, &path).await.map_err(|e| run.stopped(&e))?;
        let Some((containers, changed)) = container_apps::updated_containers(&current, outputs) else { continue };
        let change = Change::new(Action::Update, "container app", name, format!("{app}: {}", changed.join(", ")));
        if run.mode == Mode::DryRun {
            run.plan(change);
            continue;
        }
        container_apps::patch_containers(arm, &path, containers).await.map_err(|e| run.stopped(&e))?;
        run.record(change);
    }
    Ok(())
}
