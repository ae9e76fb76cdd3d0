//! Why a run stops, and what the developer does about it.

use crate::rest::ApiError;

const RESUME: &str = "Nothing is lost: what was done stays done, and the hook compares the tenant with the manifest \
on every run, so running it again continues from here. Fix the cause above, then run the same step again: \
`azd hooks run postprovision` (`postprovision apply`) after a provision, `azd down` (`postprovision cleanup`) \
when removing the deployment.";

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(
        "the developer sign-in is for tenant {signed_in}, but the deployment is in tenant {expected}: \
sign in to the right one (`azd auth login --tenant-id {expected}`, `az login --tenant {expected}`) and run again"
    )]
    WrongTenant { signed_in: String, expected: String },
    #[error(
        "{count} app registrations carry the tag {tag:?} (object ids {ids}); there must be one. \
Delete the extra ones (`az ad app delete --id <object id>`) and run again"
    )]
    Duplicate { tag: String, count: usize, ids: String },
    #[error(
        "the identifier URI {uri} belongs to an app registration this deployment did not create \
(object id {object_id}, {display_name:?}, tags [{tags}]). The hook never changes or deletes an app it did not \
create: if that one is a leftover of yours, delete it (`az ad app delete --id {object_id}`) and run again; \
otherwise use another azd environment name"
    )]
    Foreign { uri: String, object_id: String, display_name: String, tags: String },
    #[error(
        "agent mode (CHAT_APP_AGENT_IDENTITY=entra-agent-id) needs a signed-in user to sponsor the agent blueprint \
and agent identity (Graph requires a sponsor at creation), but the sign-in is not a user: sign in as yourself \
(`azd auth login`) and run again"
    )]
    NoSponsor,
    #[error(
        "agent mode's Agent ID writes go through the provisioning client ({name}), which needs an administrator's \
consent to its Microsoft Graph permissions, and your account cannot grant it. Ask a Cloud Application \
Administrator or Application Administrator (or Global Administrator) to grant it, e.g. with {request}, then run \
the hook again (or turn agent mode off: `azd env set CHAT_APP_AGENT_IDENTITY none`)",
        name = super::provisioning_client::NAME
    )]
    ProvisioningConsent { request: String },
    #[error("stopped after {done} change(s): {cause}\n{hint}{}", RESUME)]
    Stopped { done: usize, cause: String, hint: String },
}

/// What a `403` on an app registration means.
pub const APPLICATIONS_FORBIDDEN: &str = "Your account lacks a permission this needs: creating app registrations \
needs the Application Developer role (or 'Users can register applications' on); updating them needs you to own them \
or be an Application Administrator.\n";

/// What a `403` on an Agent ID object means (Graph v1.0 "Create agentIdentityBlueprint",
/// "Create agentIdentityBlueprintPrincipal", "Create agentIdentity": the roles). The writes go
/// through the provisioning client, so the Azure CLI's `Directory.AccessAsUser.All` is not the cause.
pub const AGENT_ID_FORBIDDEN: &str = "Your account lacks a permission agent mode needs: creating agent identity \
blueprints, their principals and agent identities needs the Agent ID Developer role (for the blueprints you create, \
which you then own) or Agent ID Administrator. Ask for one, or turn agent mode off \
(`azd env set CHAT_APP_AGENT_IDENTITY none`) and run again: the rest of the deployment works without it.\n";

impl RunError {
    /// Stopped by a refused or failed request on an app registration, after `done` changes.
    pub fn stopped(done: usize, cause: &ApiError) -> RunError {
        RunError::stopped_with(done, cause, APPLICATIONS_FORBIDDEN)
    }

    /// Stopped by a refused or failed request, after `done` changes; `forbidden` says what a
    /// `403` means for this request.
    pub fn stopped_with(done: usize, cause: &ApiError, forbidden: &str) -> RunError {
        let hint = if cause.is_forbidden() { forbidden } else { "" };
        RunError::Stopped { done, cause: cause.to_string(), hint: hint.to_string() }
    }
}
