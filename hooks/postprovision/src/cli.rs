//! The command line: `postprovision [apply|cleanup] [--dry-run] ...`, and the run it starts.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use entra_auth::acquire::{Executor, Prompt};
use entra_manifest::Manifest;
use service_kit::settings::Env;

use crate::azd::{AzdCli, DotEnvFile, EnvStore};
use crate::credential::{ARM_SCOPE, GRAPH_SCOPE, developer_sign_in};
use crate::deployment::{Deployment, DeploymentId};
use crate::preprovision::{self as model_check, ModelChoice};
use crate::reconcile::{self, AgentIdSignIn, Mode, Run, SignInFlow, Summary};
use crate::rest::Rest;
use crate::retry::RetryPolicy;

pub const GRAPH_URL: &str = "https://graph.microsoft.com/v1.0";
pub const ARM_URL: &str = "https://management.azure.com";
pub const AUTHORITY: &str = "https://login.microsoftonline.com";

/// Applies infra/app-registrations.toml to the Entra tenant of an azd environment: app
/// registrations, service principals, federated credentials, admin consent; then writes the
/// ids to the azd environment and the container apps. Safe to run again: it changes only
/// what differs.
#[derive(Debug, Parser)]
#[command(name = "postprovision", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Print the plan as a table and write nothing.
    #[arg(long, global = true)]
    pub dry_run: bool,

    /// The identity manifest (default: infra/app-registrations.toml, found from the current directory up).
    #[arg(long, global = true, value_name = "PATH")]
    pub manifest: Option<PathBuf>,

    /// Read the azd environment from this file (`azd env get-values` output) and write results
    /// back to it, instead of the process environment azd gives hooks and `azd env set`.
    #[arg(long, global = true, value_name = "PATH")]
    pub env_file: Option<PathBuf>,

    /// Microsoft Graph base URL.
    #[arg(long, global = true, value_name = "URL", default_value = GRAPH_URL)]
    pub graph_url: String,

    /// Azure Resource Manager base URL.
    #[arg(long, global = true, value_name = "URL", default_value = ARM_URL)]
    pub arm_url: String,

    /// Microsoft Entra authority of agent mode's sign-in to its provisioning client.
    #[arg(long, global = true, value_name = "URL", default_value = AUTHORITY)]
    pub authority: url::Url,

    /// Give the signed-in user an app role, e.g. orders-api/Orders.Admin (repeatable; also
    /// ORDERS_COPILOT_ASSIGN_ROLES in the azd environment, comma-separated).
    #[arg(long = "assign-role", global = true, value_name = "APP/ROLE")]
    pub assign_roles: Vec<String>,

    /// Agent mode: sign in to the provisioning client by device code instead of in a browser on
    /// this machine, e.g. over SSH or in Codespaces (also ORDERS_COPILOT_SIGN_IN=device-code in
    /// the azd environment).
    #[arg(long, global = true)]
    pub device_code: bool,

    /// Leave the container apps alone (the ids still go to the azd environment).
    #[arg(long, global = true)]
    pub skip_container_apps: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Subcommand)]
pub enum Command {
    /// Create or update everything the manifest describes (the default).
    Apply,
    /// Remove the app registrations this environment's runs created (azd's predown hook).
    Cleanup,
    /// Before provisioning (azd's preprovision hook): check that the Azure OpenAI model is
    /// offered in the region and the subscription has the quota for it.
    Preprovision,
}

/// What a run needs from outside: given by `main` for real, by tests for the fake Graph.
pub struct Io<'a> {
    /// The process environment (azd passes its environment's values to hooks this way).
    pub process_env: BTreeMap<String, String>,
    /// Runs the CLIs of the developer sign-in (`azd auth token`, `az account get-access-token`);
    /// `None` runs the real ones on `PATH`.
    pub sign_in_clis: Option<Arc<dyn Executor>>,
    /// Shows agent mode's sign-in message: the address to open, or the device code (`main`: on stderr).
    pub sign_in_prompt: Prompt,
    /// How long agent mode's browser sign-in waits for the person (`main`: 5 minutes).
    pub sign_in_time_limit: std::time::Duration,
    pub retry: RetryPolicy,
    pub out: &'a mut dyn Write,
}

/// Runs the command; the error is the message to print (already complete, with what to do).
pub async fn run(cli: Cli, io: Io<'_>) -> Result<Summary, String> {
    let manifest_path = match &cli.manifest {
        Some(path) => path.clone(),
        None => std::env::current_dir().ok().and_then(Manifest::locate).ok_or_else(|| {
            format!("cannot find {} from the current directory: pass --manifest", entra_manifest::DEFAULT_PATH)
        })?,
    };
    let manifest = Manifest::load(&manifest_path).map_err(|e| e.to_string())?;

    let (values, mut store): (BTreeMap<String, String>, Box<dyn EnvStore>) = match &cli.env_file {
        Some(path) => {
            let file = DotEnvFile { path: path.clone() };
            (file.read()?, Box::new(file))
        }
        None => {
            let azd = AzdCli::from_env(&Env::from_map(io.process_env.clone()));
            (io.process_env, Box::new(azd))
        }
    };
    let command = cli.command.unwrap_or(Command::Apply);
    if command == Command::Preprovision {
        return preprovision(&cli, &manifest_path, values, io.sign_in_clis, io.retry, io.out).await;
    }
    let from_azd = |e: service_kit::settings::SettingsError| {
        format!(
            "{e}These come from the azd environment (`azd env get-values`): run `azd provision` first, or pass --env-file."
        )
    };
    // `cleanup` must work after a failed provision (azd's `down`), so it reads only what
    // identifies the deployment; `apply` needs everything.
    let deployment = match command {
        Command::Apply => {
            Some(Deployment::from_values(values.clone(), &manifest, &cli.assign_roles).map_err(from_azd)?)
        }
        Command::Cleanup | Command::Preprovision => None,
    };
    let id = match &deployment {
        Some(deployment) => deployment.id.clone(),
        None => match DeploymentId::for_cleanup(values.clone()).map_err(from_azd)? {
            Some(id) => id,
            None => {
                let _ = writeln!(
                    io.out,
                    "Nothing to change: this azd environment was never provisioned to the end (it has no {} or {}), \
so the hook never created anything for it.",
                    crate::deployment::variables::TENANT_ID,
                    crate::deployment::variables::RESOURCE_TOKEN
                );
                return Ok(Summary::default());
            }
        },
    };

    let credential = developer_sign_in(&id.tenant_id, io.sign_in_clis).map_err(|e| e.to_string())?;
    let graph = Rest::new("Microsoft Graph", &cli.graph_url, GRAPH_SCOPE, credential.clone(), io.retry)
        .map_err(|e| e.to_string())?;
    let arm = Rest::new("Azure Resource Manager", &cli.arm_url, ARM_SCOPE, credential, io.retry)
        .map_err(|e| e.to_string())?;
    let arm = (!cli.skip_container_apps).then_some(&arm);
    let mode = if cli.dry_run { Mode::DryRun } else { Mode::Write };
    let agent_sign_in = AgentIdSignIn {
        authority: cli.authority.clone(),
        flow: sign_in_flow(cli.device_code, &values)?,
        time_limit: io.sign_in_time_limit,
        graph_url: cli.graph_url.clone(),
        retry: io.retry,
        prompt: io.sign_in_prompt,
    };
    let run = Run::new(&graph, arm, store.as_mut(), &manifest, &id, mode, io.out).with_agent_id_sign_in(agent_sign_in);
    let result = match &deployment {
        Some(deployment) => reconcile::apply(run, deployment).await,
        None => reconcile::cleanup(run).await,
    };
    result.map_err(|e| e.to_string())
}

/// How agent mode signs in to its provisioning client: `--device-code`, else
/// [`SIGN_IN`](crate::deployment::variables::SIGN_IN) in the azd environment, else the browser.
fn sign_in_flow(device_code: bool, values: &BTreeMap<String, String>) -> Result<SignInFlow, String> {
    use crate::deployment::variables::{SIGN_IN, SIGN_IN_FLOWS};
    let mut env = Env::from_map(values.clone());
    let chosen = env.choice(SIGN_IN, &SIGN_IN_FLOWS, SIGN_IN_FLOWS[0]);
    env.finish().map_err(|e| e.to_string())?;
    Ok(if device_code || chosen == SIGN_IN_FLOWS[1] { SignInFlow::DeviceCode } else { SignInFlow::Browser })
}

/// `preprovision`: the model check, before anything is provisioned (so before any Bicep output).
async fn preprovision(
    cli: &Cli,
    manifest_path: &std::path::Path,
    values: BTreeMap<String, String>,
    sign_in_clis: Option<Arc<dyn Executor>>,
    retry: RetryPolicy,
    out: &mut dyn Write,
) -> Result<Summary, String> {
    let tenant = values.get("AZURE_TENANT_ID").cloned();
    let choice = ModelChoice::read(values, &model_check::parameters_text(manifest_path)?)
        .map_err(|e| format!("{e}These come from the azd environment (azd sets them when it asks for them)."))?;
    let credential = entra_auth::acquire::Credential::Developer(Arc::new(
        entra_auth::acquire::DeveloperSignIn::new(tenant.as_deref(), sign_in_clis).map_err(|e| e.to_string())?,
    ));
    let arm =
        Rest::new("Azure Resource Manager", &cli.arm_url, ARM_SCOPE, credential, retry).map_err(|e| e.to_string())?;
    let line = model_check::check(&arm, &choice, &model_check::today()).await?;
    let _ = writeln!(out, "{line}");
    Ok(Summary::default())
}
