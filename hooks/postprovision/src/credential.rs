//! Where the hook's access tokens (Microsoft Graph, Azure Resource Manager) come from: the
//! developer's own azd or Azure CLI sign-in, as the workspace's one credential type. Agent
//! mode's Agent ID writes are the exception: Graph ignores the Azure CLI's permissions for them,
//! so they go with a browser (or device-code) sign-in to the hook's provisioning client
//! (`reconcile::provisioning_client`, `reconcile::Run::sign_in_for_agent_id`).

use std::sync::Arc;

use entra_auth::acquire::{AcquireError, Credential, DeveloperSignIn, Executor};

/// Microsoft Graph, every permission the signed-in user has.
pub const GRAPH_SCOPE: &str = "https://graph.microsoft.com/.default";
/// Azure Resource Manager.
pub const ARM_SCOPE: &str = "https://management.azure.com/.default";

/// The developer's sign-in (azd first, then the Azure CLI), always for the deployment's
/// tenant, so apps are never created in another directory. `clis` runs the two CLIs; `None`
/// runs the real ones found on `PATH`.
pub fn developer_sign_in(tenant_id: &str, clis: Option<Arc<dyn Executor>>) -> Result<Credential, AcquireError> {
    Ok(Credential::Developer(Arc::new(DeveloperSignIn::new(Some(tenant_id), clis)?)))
}
