//! The command line: `postprovision [apply|cleanup] [--dry-run] ...`, and the run it starts.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use entra_manifest::Manifest;

use crate::azd::{AzdCli, DotEnvFile, EnvStore};
use crate::credential::{ARM_SCOPE, GRAPH_SCOPE, TokenSource};
use crate::deployment::{AZD_ENV_NAME, Deployment};
use crate::reconcile::{Mode, Reconciler, Summary};
use crate::rest::Rest;
use crate::retry::RetryPolicy;

pub const GRAPH_URL: &str = "https://graph.microsoft.com/v1.0";
pub const ARM_URL: &str = "https://management.azure.com";

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

    /// Give the signed-in user an app role, e.g. orders-api/Orders.Admin (repeatable; also
    /// ORDERS_COPILOT_ASSIGN_ROLES in the azd environment, comma-separated).
    #[arg(long = "assign-role", global = true, value_name = "APP/ROLE")]
    pub assign_roles: Vec<String>,

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
}

/// Makes the token source for a tenant.
pub type TokenFactory<'a> = Box<dyn FnOnce(&str) -> Result<Arc<dyn TokenSource>, String> + 'a>;

/// What a run needs from outside: given by `main` for real, by tests for the fake Graph.
pub struct Io<'a> {
    /// The process environment (azd passes its environment's values to hooks this way).
    pub process_env: BTreeMap<String, String>,
    /// Makes the token source once the tenant is known.
    pub tokens: TokenFactory<'a>,
    /// The `azd` program (`azd` on PATH unless a test says otherwise).
    pub azd: OsString,
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
            let environment = io.process_env.get(AZD_ENV_NAME).cloned().unwrap_or_default();
            (io.process_env.clone(), Box::new(AzdCli { program: io.azd.clone(), environment }))
        }
    };
    let deployment = Deployment::from_values(values, &manifest, &cli.assign_roles).map_err(|e| {
        format!("{e}These come from the azd environment (`azd env get-values`): run `azd provision` first, or pass --env-file.")
    })?;

    let tokens = (io.tokens)(&deployment.tenant_id)?;
    let graph = Rest::new("Microsoft Graph", &cli.graph_url, GRAPH_SCOPE, tokens.clone(), io.retry)
        .map_err(|e| e.to_string())?;
    let arm =
        Rest::new("Azure Resource Manager", &cli.arm_url, ARM_SCOPE, tokens, io.retry).map_err(|e| e.to_string())?;
    let arm = (!cli.skip_container_apps).then_some(&arm);
    let mode = if cli.dry_run { Mode::DryRun } else { Mode::Apply };
    let reconciler = Reconciler::new(&graph, arm, store.as_mut(), &manifest, &deployment, mode, io.out);
    let result = match cli.command.unwrap_or(Command::Apply) {
        Command::Apply => reconciler.apply().await,
        Command::Cleanup => reconciler.cleanup().await,
    };
    result.map_err(|e| e.to_string())
}
