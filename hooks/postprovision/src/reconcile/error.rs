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
    #[error("stopped after {done} change(s): {cause}\n{hint}{}", RESUME)]
    Stopped { done: usize, cause: String, hint: String },
}

impl RunError {
    /// Stopped by a refused or failed request, after `done` changes.
    pub fn stopped(done: usize, cause: &ApiError) -> RunError {
        let hint = if cause.is_forbidden() {
            "Your account lacks a permission this needs: creating app registrations needs the Application \
Developer role (or 'Users can register applications' on); updating them needs you to own them or be an \
Application Administrator.\n"
        } else {
            ""
        };
        RunError::Stopped { done, cause: cause.to_string(), hint: hint.to_string() }
    }
}
