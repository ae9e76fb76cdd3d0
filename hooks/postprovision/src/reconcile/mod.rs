//! Making the tenant match the manifest ([`apply`]) and removing what was made ([`cleanup`]).
//!
//! Every run reads the tenant first and writes only differences, so a second run writes
//! nothing and a run that stopped halfway is finished by the next one. With `--dry-run` the
//! same steps run, reads included, but writes are only recorded.
//!
//! - `apply`: the steps in the order they run, one call each (the place to reorder them);
//!   `cleanup`: the way back.
//! - The steps, one module each: `tenant` (the sign-in's tenant and user),
//!   `provisioning_client` (agent mode's: the client Agent ID writes go through), `applications`
//!   (registrations and agent blueprints), `service_principals`, `federated_credentials`,
//!   `inheritable_permissions` (a blueprint's), `grants` (admin consent, app roles),
//!   `agent_identities`, `outputs` (the azd environment, the container apps); `kind`: the two
//!   kinds of application object (app registration, agent blueprint).
//! - `run`: what a run works on, its writes (or, in a dry run, their plan) and its [`Summary`];
//!   `error`: why a run stops.

mod agent_identities;
mod applications;
mod apply;
mod cleanup;
mod error;
mod federated_credentials;
mod grants;
mod inheritable_permissions;
mod kind;
mod outputs;
mod provisioning_client;
mod run;
mod service_principals;
mod tenant;

pub use apply::apply;
pub use cleanup::cleanup;
pub use error::RunError;
pub use run::{AgentIdSignIn, Mode, Run, SignInFlow, Summary};
