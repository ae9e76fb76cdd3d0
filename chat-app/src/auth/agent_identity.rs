//! The agent's own identity (Microsoft Entra Agent ID, `CHAT_APP_AGENT_IDENTITY=entra-agent-id`):
//! the user's sign-in token is for the agent identity blueprint; before the agent calls
//! orders-mcp it exchanges that token On-Behalf-Of, as the agent identity, for one for
//! orders-mcp. The blueprint authenticates with chat-app's managed identity (a federated
//! credential, no secret); the agent identity with the blueprint's `fmi_path` token for it
//! ("Agent OAuth flows: On behalf of flow", learn.microsoft.com/entra/agent-id/agent-on-behalf-of-oauth-flow).
//!
//! The agent validates the user's token first (it is the token's audience, through its
//! blueprint), and the exchange is cached per user and scope by entra-auth's `OnBehalfOf`.

use std::sync::Arc;

use entra_auth::acquire::{
    AccessToken, AcquireError, AgentIdentityAssertion, ConfidentialClient, Credential, OnBehalfOf,
};
use entra_auth::validate::{TokenValidator, TokenVersion, ValidatorConfig};

use crate::configuration::{AgentIdentitySettings, Settings};

/// Why the agent has no token for orders-mcp.
#[derive(Debug, thiserror::Error)]
pub enum AgentTokenError {
    /// The user's sign-in token is not one the agent accepts: signing in again gets one.
    #[error("your sign-in is not valid for the agent ({0})")]
    SignIn(String),
    #[error("the agent could not get a token for orders-mcp: {0}")]
    Exchange(#[from] AcquireError),
}

pub struct AgentTokens {
    /// Validates the user's token: audience the blueprint, v2.
    validator: TokenValidator,
    obo: OnBehalfOf,
    scope: String,
}

impl AgentTokens {
    pub fn new(settings: &Settings, agent: &AgentIdentitySettings, http: reqwest::Client) -> anyhow::Result<Self> {
        let identity = &settings.identity;
        let endpoint = ConfidentialClient::token_endpoint(&identity.authority, &identity.tenant_id)?;
        let blueprint = ConfidentialClient::new(
            http.clone(),
            endpoint.clone(),
            &agent.blueprint_id,
            agent.blueprint_credential.clone(),
        );
        let assertion = AgentIdentityAssertion::new(blueprint, &agent.agent_id);
        let client = ConfidentialClient::new(
            http.clone(),
            endpoint,
            &agent.agent_id,
            Credential::Assertion(Arc::new(assertion)),
        );
        let audiences = vec![agent.blueprint_id.clone(), agent.blueprint_app_id_uri.clone()];
        let config = ValidatorConfig::new(identity.authority.clone(), &identity.tenant_id, audiences)
            .versions(&[TokenVersion::V2]);
        Ok(AgentTokens {
            validator: TokenValidator::new(config, http),
            obo: OnBehalfOf::new(client),
            scope: agent.orders_mcp_scope.clone(),
        })
    }

    /// The agent's token for orders-mcp, for the user whose sign-in token is `sign_in`.
    #[tracing::instrument(name = "agent_identity.token", skip_all)]
    pub async fn for_orders_mcp(&self, sign_in: &AccessToken) -> Result<AccessToken, AgentTokenError> {
        let user =
            self.validator.validate(sign_in.secret()).await.map_err(|e| AgentTokenError::SignIn(e.to_string()))?;
        Ok(self.obo.token(&user, sign_in.secret(), &self.scope).await?)
    }
}
