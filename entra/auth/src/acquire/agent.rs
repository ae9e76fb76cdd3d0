//! Microsoft Entra Agent ID: how an agent identity authenticates. It has no credential of its
//! own; its blueprint, with the blueprint's credential (a managed identity through a federated
//! credential, the preferred kind), asks for a token for `api://AzureADTokenExchange` naming the
//! agent identity in `fmi_path`, and the agent identity presents that token as its
//! `client_assertion` ("Agent OAuth flows: On behalf of flow",
//! learn.microsoft.com/entra/agent-id/agent-on-behalf-of-oauth-flow).
//!
//! As a [`ClientAssertion`] inside a [`Credential`](super::Credential), it makes a plain
//! [`ConfidentialClient`] (client id = the agent identity) and so [`OnBehalfOf`](super::OnBehalfOf)
//! with its per-user cache work for agents unchanged: the agent On-Behalf-Of flow is the
//! ordinary one with this client authentication.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use super::cache::TokenCache;
use super::client::ConfidentialClient;
use super::credential::{ClientAssertion, TOKEN_EXCHANGE_AUDIENCE};
use super::error::AcquireError;
use super::token::AccessToken;

/// An agent identity's client assertion, from its blueprint. The blueprint's token for it is
/// cached (one per agent identity) until shortly before it expires.
#[derive(Debug)]
pub struct AgentIdentityAssertion {
    blueprint: ConfidentialClient,
    agent_id: String,
    cache: TokenCache<()>,
}

impl AgentIdentityAssertion {
    /// `blueprint` is the blueprint's confidential client (its app id and credential).
    pub fn new(blueprint: ConfidentialClient, agent_id: impl Into<String>) -> Self {
        AgentIdentityAssertion {
            blueprint,
            agent_id: agent_id.into(),
            cache: TokenCache::new(Duration::from_secs(300)),
        }
    }

    pub fn agent_id(&self) -> &str {
        &self.agent_id
    }

    async fn fetch(&self) -> Result<AccessToken, AcquireError> {
        let scope = format!("{TOKEN_EXCHANGE_AUDIENCE}/.default");
        self.cache
            .get_or_fetch((), || async {
                let response = self
                    .blueprint
                    .request(&[("grant_type", "client_credentials"), ("scope", &scope), ("fmi_path", &self.agent_id)])
                    .await?;
                Ok(response.access())
            })
            .await
    }
}

impl ClientAssertion for AgentIdentityAssertion {
    fn assertion(&self) -> Pin<Box<dyn Future<Output = Result<AccessToken, AcquireError>> + Send + '_>> {
        Box::pin(self.fetch())
    }
}
