//! Microsoft Entra Agent ID at a resource: the agent On-Behalf-Of flow through entra-auth's own
//! client (the blueprint's credential from a managed identity, the agent identity's assertion
//! from the blueprint, the per-user cache of `OnBehalfOf`), the validated caller and its hop
//! record naming the agent, and no authorization on `xms_par_app_azp`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure report

mod support;

use std::sync::Arc;

use entra_auth::acquire::{
    AgentIdentityAssertion, ConfidentialClient, Credential, ManagedIdentityCredential, ManagedIdentitySource,
    OnBehalfOf,
};
use entra_auth::hop::{AgentActor, AgentNamedAs, Decision, How};
use entra_auth::validate::TokenValidator;
use entra_emulator::{EmulatorConfig, Running};
use serde_json::json;
use url::Url;

const IDENTITY_HEADER: &str = "test-identity-header";
const MCP_SCOPE: &str = "http://localhost:3001/mcp/access_as_user";

async fn emulator() -> Running {
    let mut config = EmulatorConfig::from_repository().unwrap();
    config.identity_header = Some(IDENTITY_HEADER.into());
    entra_emulator::Application::build(config).await.unwrap().spawn()
}

/// The agent's On-Behalf-Of client as chat-app builds it: the blueprint authenticated by
/// chat-app's managed identity, the agent identity by the blueprint's token for it.
fn agent_obo(idp: &Running) -> OnBehalfOf {
    let m = idp.handle().manifest();
    let http = reqwest::Client::new();
    let endpoint =
        ConfidentialClient::token_endpoint(&Url::parse(&idp.url()).unwrap(), idp.handle().tenant_id()).unwrap();
    let mi = ManagedIdentityCredential::new(
        http.clone(),
        ManagedIdentitySource::AppService {
            endpoint: Url::parse(&format!("{}/msi/token", idp.url())).unwrap(),
            header: IDENTITY_HEADER.into(),
        },
        Some(m.managed_identities["chat-app"].client_id.clone()),
    );
    let blueprint_id = &m.agent_blueprints["orders-copilot"].client_id;
    let blueprint = ConfidentialClient::new(
        http.clone(),
        endpoint.clone(),
        blueprint_id,
        Credential::ManagedIdentity(Arc::new(mi)),
    );
    let agent_id = &m.agent_identities["orders-copilot-agent"].client_id;
    let assertion = AgentIdentityAssertion::new(blueprint, agent_id);
    OnBehalfOf::new(ConfidentialClient::new(http, endpoint, agent_id, Credential::Assertion(Arc::new(assertion))))
}

fn expected_agent(idp: &Running) -> AgentActor {
    let m = idp.handle().manifest();
    AgentActor {
        id: m.agent_identities["orders-copilot-agent"].client_id.clone(),
        blueprint_id: m.agent_blueprints["orders-copilot"].client_id.clone(),
        named_as: AgentNamedAs::Client,
    }
}

#[tokio::test]
async fn the_agent_obo_token_validates_as_the_user_through_the_agent_and_is_cached_per_user() {
    let idp = emulator().await;
    let m = idp.handle().manifest().clone();
    let mut config = support::validator_config(&idp, "orders-mcp");
    config.audiences = vec![m.agent_blueprints["orders-copilot"].client_id.clone()];
    let blueprint_validator = TokenValidator::new(config, reqwest::Client::new());
    let sign_in = idp.handle().user_token("alice", "chat-app", "orders-copilot", &["access_as_user"]).unwrap();
    let user = blueprint_validator.validate(&sign_in).await.unwrap();
    assert!(user.agent.is_none(), "the user's own token names no agent");

    let obo = agent_obo(&idp);
    let token = obo.token(&user, &sign_in, MCP_SCOPE).await.unwrap();
    let again = obo.token(&user, &sign_in, MCP_SCOPE).await.unwrap();
    assert_eq!(token.secret(), again.secret(), "cached per user and scope");
    assert_eq!(idp.handle().stats().on_behalf_of, 1);
    assert_eq!(idp.handle().stats().client_credentials, 1, "one fmi_path token for the agent");

    let mcp = TokenValidator::new(support::validator_config(&idp, "orders-mcp"), reqwest::Client::new());
    let caller = mcp.validate(token.secret()).await.unwrap();
    assert!(caller.is_user());
    assert_eq!(caller.oid, m.user("alice").unwrap().oid, "the same user");
    assert_eq!(caller.client_id, m.agent_identities["orders-copilot-agent"].client_id, "azp is the agent");
    assert_eq!(caller.agent, Some(expected_agent(&idp)));
    let hop = caller.hop("orders-mcp", How::Direct, Decision::Allowed, std::time::Duration::ZERO);
    assert_eq!(hop.token.agent, Some(expected_agent(&idp)), "the hop record shows the agent");
    let header = hop.to_header_value();
    assert_eq!(entra_auth::hop::Hop::from_header_value(&header).unwrap().token.agent, Some(expected_agent(&idp)));
}

/// "Do not authorize on the blueprint id": a token whose `xms_par_app_azp` names the blueprint
/// (or any app a service might be tempted to trust) is still judged on its scopes alone. Here
/// orders-mcp's policy needs `access_as_user`; the agent token without it is refused, with it
/// allowed; an app-only token carrying `xms_par_app_azp` is refused as app-only.
#[tokio::test]
async fn no_resource_authorizes_on_xms_par_app_azp() {
    let idp = emulator().await;
    let m = idp.handle().manifest().clone();
    let resource = support::resource::<support::AccessAsUser>(support::validator_config(&idp, "orders-mcp")).await;
    let http = reqwest::Client::new();
    let call = |token: String| {
        let http = http.clone();
        let url = format!("{}/protected", resource.url);
        async move { http.get(url).bearer_auth(token).send().await.unwrap().status().as_u16() }
    };
    let agent_claims = |scp: &str| {
        let mut claims = idp.handle().user_claims("alice", "chat-app", "orders-mcp", &["access_as_user"]).unwrap();
        claims["azp"] = json!(m.agent_identities["orders-copilot-agent"].client_id);
        claims["xms_par_app_azp"] = json!(m.agent_blueprints["orders-copilot"].client_id);
        claims["xms_act_fct"] = json!("3 11");
        claims["scp"] = json!(scp);
        claims
    };
    assert_eq!(call(idp.handle().sign(&agent_claims("access_as_user")).unwrap()).await, 200);
    assert_eq!(call(idp.handle().sign(&agent_claims("Mail.Read")).unwrap()).await, 403);
    // xms_par_app_azp naming an app pre-authorized on orders-mcp (chat-app) changes nothing.
    let mut trusted_parent = agent_claims("Mail.Read");
    trusted_parent["xms_par_app_azp"] = json!(m.app("chat-app").unwrap().client_id);
    assert_eq!(call(idp.handle().sign(&trusted_parent).unwrap()).await, 403);
    let mut app_only = idp.handle().app_claims("chat-app", "orders-mcp").unwrap();
    app_only["xms_par_app_azp"] = json!(m.agent_blueprints["orders-copilot"].client_id);
    assert_eq!(call(idp.handle().sign(&app_only).unwrap()).await, 403);
}

/// A middle tier's On-Behalf-Of cache keeps a user's calls through an agent apart from their own:
/// the token it gets names the agent (`act`), so reusing it for the user's direct calls would
/// show (and authorize) an agent that is not there, and the other way round.
#[tokio::test]
async fn a_middle_tiers_cache_keeps_calls_through_an_agent_apart() {
    let idp = emulator().await;
    let m = idp.handle().manifest().clone();
    let http = reqwest::Client::new();
    let endpoint =
        ConfidentialClient::token_endpoint(&Url::parse(&idp.url()).unwrap(), idp.handle().tenant_id()).unwrap();
    let mcp = OnBehalfOf::new(ConfidentialClient::new(
        http,
        endpoint,
        &m.app("orders-mcp").unwrap().client_id,
        Credential::Secret("orders-mcp-local-secret".into()),
    ));
    let at_mcp = TokenValidator::new(support::validator_config(&idp, "orders-mcp"), reqwest::Client::new());
    let at_api = TokenValidator::new(support::validator_config(&idp, "orders-api"), reqwest::Client::new());
    let api_scope = "api://afb67780-0dec-4124-a11c-b6e461eb7aad/orders-api-local/.default";

    let own = idp.handle().user_token("alice", "chat-app", "orders-mcp", &["access_as_user"]).unwrap();
    let own_caller = at_mcp.validate(&own).await.unwrap();
    let direct = mcp.token(&own_caller, &own, api_scope).await.unwrap();
    assert!(at_api.validate(direct.secret()).await.unwrap().agent.is_none());

    let sign_in = idp.handle().user_token("alice", "chat-app", "orders-copilot", &["access_as_user"]).unwrap();
    let mut config = support::validator_config(&idp, "orders-mcp");
    config.audiences = vec![m.agent_blueprints["orders-copilot"].client_id.clone()];
    let user = TokenValidator::new(config, reqwest::Client::new()).validate(&sign_in).await.unwrap();
    let agent_token = agent_obo(&idp).token(&user, &sign_in, MCP_SCOPE).await.unwrap();
    let agent_caller = at_mcp.validate(agent_token.secret()).await.unwrap();
    let through_agent = mcp.token(&agent_caller, agent_token.secret(), api_scope).await.unwrap();
    let seen = at_api.validate(through_agent.secret()).await.unwrap();
    assert_eq!(seen.agent.as_ref().map(|a| a.named_as), Some(AgentNamedAs::PriorActor), "not the cached direct token");
    assert_eq!(seen.oid, own_caller.oid);
}
