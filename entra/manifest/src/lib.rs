//! The identity manifest, `infra/app-registrations.toml`: the one description of the tenant
//! (apps, scopes, roles, clients, managed identities, demo users). The emulator behaves like the
//! tenant it describes, `postprovision` applies it to a real tenant, the services take their
//! default ids from it.
//!
//! [`Manifest::load`] parses it and checks every cross-reference, so a typo fails with a message
//! naming the file and line instead of surfacing later as a confusing token error.

mod check;
mod error;
mod load;
mod model;
mod raw;
mod template;

pub use error::ManifestError;
pub use load::{DEFAULT_PATH, REPOSITORY_MANIFEST};
pub use model::{
    AgentIdentity, App, AppRole, AuthContext, Client, DEFAULT_SCOPE, FederatedCredential, ManagedIdentity, Manifest,
    MemberType, PreAuthorized, RequiredAccess, RoleAssignment, Scope, Tenant, User, is_auth_context_id,
};
pub use template::{Template, Vars};
