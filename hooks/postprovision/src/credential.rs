//! Where the hook's access tokens (Microsoft Graph, Azure Resource Manager) come from: the
//! developer's own azd or Azure CLI sign-in. A trait, so tests hand in a fixed token instead.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use azure_core::credentials::TokenCredential;
use azure_identity::{
    AzureCliCredential, AzureCliCredentialOptions, AzureDeveloperCliCredential, AzureDeveloperCliCredentialOptions,
    Executor,
};
use entra_auth::acquire::AccessToken;

/// Microsoft Graph, every permission the signed-in user has.
pub const GRAPH_SCOPE: &str = "https://graph.microsoft.com/.default";
/// Azure Resource Manager.
pub const ARM_SCOPE: &str = "https://management.azure.com/.default";

/// Tokens are renewed when they have less than this left.
const RENEW_BEFORE_SECS: u64 = 300;

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

/// The developer's sign-in: azd's (`azd auth login`) first, then the Azure CLI's (`az login`),
/// always for the deployment's tenant, so apps are never created in another directory.
/// Tokens are cached per scope: each CLI call takes about a second.
pub struct DeveloperSignIn {
    sources: Vec<(&'static str, Arc<dyn TokenCredential>)>,
    cache: Mutex<HashMap<String, AccessToken>>,
}

impl DeveloperSignIn {
    /// `executor` runs the CLIs; `None` runs the real ones.
    pub fn new(tenant_id: &str, executor: Option<Arc<dyn Executor>>) -> Result<Self, CredentialError> {
        let failed = |e: azure_core::Error| CredentialError { scope: "any".into(), reason: e.to_string() };
        let azd = AzureDeveloperCliCredential::new(Some(AzureDeveloperCliCredentialOptions {
            executor: executor.clone(),
            tenant_id: Some(tenant_id.to_string()),
        }))
        .map_err(failed)?;
        let az = AzureCliCredential::new(Some(AzureCliCredentialOptions {
            executor,
            tenant_id: Some(tenant_id.to_string()),
            ..Default::default()
        }))
        .map_err(failed)?;
        Ok(DeveloperSignIn {
            sources: vec![("azd auth login", azd as Arc<dyn TokenCredential>), ("az login", az)],
            cache: Mutex::new(HashMap::new()),
        })
    }

    fn cached(&self, scope: &str) -> Option<AccessToken> {
        let cache = self.cache.lock().ok()?;
        cache.get(scope).filter(|t| t.remaining() > RENEW_BEFORE_SECS).cloned()
    }

    async fn fetch(&self, scope: &str) -> Result<AccessToken, CredentialError> {
        let mut reasons = Vec::new();
        for (login, source) in &self.sources {
            match source.get_token(&[scope], None).await {
                Ok(token) => {
                    let expires_on = u64::try_from(token.expires_on.unix_timestamp()).unwrap_or(0);
                    return Ok(AccessToken::new(token.token.secret(), expires_on));
                }
                // The CLIs' messages say what to do ("Please run 'az login'..."): keep them.
                Err(e) => reasons.push(format!("{login}: {}", first_line(&e.to_string()))),
            }
        }
        Err(CredentialError {
            scope: scope.to_string(),
            reason: format!(
                "no developer sign-in works for this tenant; sign in with `azd auth login` or `az login --tenant <tenant>` ({})",
                reasons.join("; ")
            ),
        })
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or(text)
}

impl TokenSource for DeveloperSignIn {
    fn token<'a>(&'a self, scope: &'a str) -> TokenFuture<'a> {
        Box::pin(async move {
            if let Some(token) = self.cached(scope) {
                return Ok(token);
            }
            let token = self.fetch(scope).await?;
            if let Ok(mut cache) = self.cache.lock() {
                cache.insert(scope.to_string(), token.clone());
            }
            Ok(token)
        })
    }
}
