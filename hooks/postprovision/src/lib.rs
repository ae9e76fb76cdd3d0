//! `postprovision`: the azd hook that applies the identity manifest
//! (`infra/app-registrations.toml`) to a real Entra tenant through Microsoft Graph.
//!
//! - [`deployment`]: the azd environment's values (Bicep outputs), typed; the variables' names.
//! - [`model`]: the Graph objects the hook manages; [`desired`]: those the manifest asks for;
//!   [`diff`]: the patches that get there.
//! - [`reconcile`]: read the tenant, write only differences (`apply`, its steps in order), or
//!   remove (`cleanup`).
//! - [`rest`]: Graph / ARM requests with retries ([`retry`]: throttling, replication delay).
//! - [`credential`]: tokens from the developer's azd / Azure CLI sign-in, for the deployment's
//!   tenant (agent mode's Agent ID writes: a browser or device-code sign-in to its provisioning client).
//! - [`azd`] (with [`dotenv`]), [`container_apps`]: where the resulting ids go.
//! - [`plan`]: the changes a run makes, and the dry run's table.
//! - [`preprovision`]: the Azure OpenAI model and quota check before provisioning.
//! - [`cli`]: the command line.

pub mod azd;
pub mod cli;
pub mod container_apps;
pub mod credential;
pub mod deployment;
pub mod desired;
pub mod diff;
pub mod dotenv;
pub mod model;
pub mod plan;
pub mod preprovision;
pub mod reconcile;
pub mod rest;
pub mod retry;
