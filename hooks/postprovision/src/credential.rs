//! Where the hook's access tokens (Microsoft Graph, Azure Resource Manager) come from: the
//! developer's own azd or Azure CLI sign-in. A trait, so tests hand in a fixed token instead.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use entra_auth::acquire::AccessToken;
use entra_auth::acquire::{self, Executor};

/// Microsoft Graph, every permission the signed-in user has.
pub const GRAPH_SCOPE: &str = "https://graph.microsoft.com/.default";
/// Azure Resource Manager.
pub const ARM_SCOPE: &str = "https://management.azure.com/.default";

#[derive(Debug, Clone, thiserror::Error)]
#[error("cannot get a token for {scope}: {reason}")]
pub struct CredentialError {
    pub scope: String,
    pub reason: String,
}

pub type TokenFuture<'a> = Pin<Box<dyn Future<Output = Result<AccessToken, CredentialError>> + Send + 'a>>;

pub trait TokenSource: Send + Sync {
    fn token<'a>(&'a self, scope: &'a str) -> TokenFuture<'a>;
}

/// The same token for every scope: tests against the fake Graph.
pub struct StaticToken(pub AccessToken);

impl TokenSource for StaticToken {
    fn token<'a>(&'a self, _scope: &'a str) -> TokenFuture<'a> {
        Box::pin(async move { Ok(self.0.clone()) })
    }
}

/// The developer's sign-in (`entra-auth`'s: azd first, then the Azure CLI), always for the
/// deployment's tenant, so apps are never created in another directory.
pub struct DeveloperSignIn(acquire::DeveloperSignIn);

impl DeveloperSignIn {
    /// `executor` runs the CLIs; `None` runs the real ones.
    pub fn new(tenant_id: &str, executor: Option<Arc<dyn Executor>>) -> Result<Self, CredentialError> {
        acquire::DeveloperSignIn::new(Some(tenant_id), executor)
            .map(DeveloperSignIn)
            .map_err(|e| CredentialError { scope: "any".into(), reason: e.to_string() })
    }
}

impl TokenSource for DeveloperSignIn {
    fn token<'a>(&'a self, scope: &'a str) -> TokenFuture<'a> {
        Box::pin(async move {
            self.0.token(scope).await.map_err(|e| CredentialError { scope: scope.to_string(), reason: e.to_string() })
        })
    }
}
