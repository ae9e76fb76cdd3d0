//! Tokens from the developer's own sign-in: the Azure Developer CLI (`azd auth login`) first,
//! then the Azure CLI (`az login`), through `azure_identity`'s credentials (which run the CLIs
//! and parse what they print).
//!
//! Used where a laptop stands in for a managed identity: the post-provision hook (Graph, ARM)
//! and the emulator's managed-identity broker. Each CLI call takes about a second, so tokens are
//! cached per scope and concurrent misses share one call.

use std::sync::Arc;
use std::time::Duration;

use azure_core::credentials::TokenCredential;
use azure_identity::{
    AzureCliCredential, AzureCliCredentialOptions, AzureDeveloperCliCredential, AzureDeveloperCliCredentialOptions,
};

pub use azure_identity::Executor;

use super::cache::TokenCache;
use super::error::AcquireError;
use super::token::AccessToken;

/// Tokens are fetched again when they have less than this left.
const REFRESH_MARGIN: Duration = Duration::from_secs(300);

pub struct DeveloperSignIn {
    sources: Vec<(&'static str, Arc<dyn TokenCredential>)>,
    cache: TokenCache<String>,
}

impl DeveloperSignIn {
    /// `tenant_id`: ask the CLIs for tokens of this tenant (`None`: the CLI's default).
    /// `executor` runs the CLIs; `None` runs the real ones found on `PATH`.
    pub fn new(tenant_id: Option<&str>, executor: Option<Arc<dyn Executor>>) -> Result<Self, AcquireError> {
        let failed = |e: azure_core::Error| AcquireError::NotConfigured(format!("developer sign-in: {e}"));
        let tenant_id = tenant_id.map(str::to_string);
        let azd = AzureDeveloperCliCredential::new(Some(AzureDeveloperCliCredentialOptions {
            executor: executor.clone(),
            tenant_id: tenant_id.clone(),
        }))
        .map_err(failed)?;
        let az = AzureCliCredential::new(Some(AzureCliCredentialOptions { executor, tenant_id, ..Default::default() }))
            .map_err(failed)?;
        Ok(DeveloperSignIn {
            sources: vec![("azd auth login", azd as Arc<dyn TokenCredential>), ("az login", az)],
            cache: TokenCache::new(REFRESH_MARGIN),
        })
    }

    /// A token for `scope` (for example `https://graph.microsoft.com/.default`).
    pub async fn token(&self, scope: &str) -> Result<AccessToken, AcquireError> {
        self.cache.get_or_fetch(scope.to_string(), || self.fetch(scope)).await
    }

    async fn fetch(&self, scope: &str) -> Result<AccessToken, AcquireError> {
        let mut reasons = Vec::new();
        for (login, source) in &self.sources {
            match source.get_token(&[scope], None).await {
                Ok(token) => {
                    let expires_on = u64::try_from(token.expires_on.unix_timestamp()).unwrap_or(0);
                    let token = AccessToken::new(token.token.secret(), expires_on);
                    tracing::info!(
                        scope,
                        source = login,
                        expires_in_secs = token.remaining(),
                        "developer sign-in token"
                    );
                    return Ok(token);
                }
                // The CLIs' messages say what to do ("Please run 'az login'..."): keep them.
                Err(e) => reasons.push(format!("{login}: {}", first_line(&e.to_string()))),
            }
        }
        Err(AcquireError::NotConfigured(format!(
            "no developer sign-in gives a token for {scope}; sign in with `azd auth login` or `az login` ({})",
            reasons.join("; ")
        )))
    }
}

impl std::fmt::Debug for DeveloperSignIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let logins: Vec<&str> = self.sources.iter().map(|(login, _)| *login).collect();
        f.debug_struct("DeveloperSignIn").field("sources", &logins).finish_non_exhaustive()
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or(text)
}
