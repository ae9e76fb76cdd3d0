//! Microsoft Entra Agent ID in the emulator, on the wire: the blueprint's `fmi_path` token, the
//! agent On-Behalf-Of exchange, the claims of the token it issues, and every refusal Entra
//! documents, in Entra's error shape. Sources, quoted where they decide a rule:
//! "Agent OAuth flows: On behalf of flow" (learn.microsoft.com/entra/agent-id/agent-on-behalf-of-oauth-flow),
//! "Token claims reference for agents" (learn.microsoft.com/entra/agent-id/agent-token-claims),
//! "Configure inheritable permissions for agent identity blueprints".

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure report

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use entra_emulator::{EmulatorConfig, Running};
use serde_json::Value;

const IDENTITY_HEADER: &str = "test-identity-header";
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const EXCHANGE_SCOPE: &str = "api://AzureADTokenExchange/.default";
const MCP_SCOPE: &str = "http://localhost:3001/mcp/access_as_user";

async fn start(admin_consent: bool) -> Running {
    let mut config = EmulatorConfig::from_repository().unwrap();
    config.identity_header = Some(IDENTITY_HEADER.into());
    config.admin_consent = admin_consent;
    entra_emulator::Application::build(config).await.unwrap().spawn()
}

struct Ids {
    blueprint: String,
    agent: String,
    chat_mi: String,
    mcp: String,
}

fn ids(idp: &Running) -> Ids {
    let m = idp.handle().manifest();
    Ids {
        blueprint: m.agent_blueprints["orders-copilot"].client_id.clone(),
        agent: m.agent_identities["orders-copilot-agent"].client_id.clone(),
        chat_mi: m.managed_identities["chat-app"].client_id.clone(),
        mcp: m.app("orders-mcp").unwrap().client_id.clone(),
    }
}

async fn token_request(idp: &Running, form: &[(&str, &str)]) -> (u16, Value) {
    let url = format!("{}/{}/oauth2/v2.0/token", idp.url(), idp.handle().tenant_id());
    let response = reqwest::Client::new().post(url).form(form).send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn assert_entra_error(body: &Value, error: &str, code: u32) {
    assert_eq!(body["error"], error, "{body}");
    let description = body["error_description"].as_str().unwrap();
    assert!(description.starts_with(&format!("AADSTS{code}: ")), "{description}");
    assert_eq!(body["error_codes"], serde_json::json!([code]), "{body}");
}

/// chat-app's managed identity's token for the token-exchange audience (the emulator's
/// App Service-style endpoint stands in for the container's identity endpoint).
async fn managed_identity_assertion(idp: &Running, client_id: &str) -> String {
    let url = format!("{}/msi/token", idp.url());
    let query = [("resource", "api://AzureADTokenExchange"), ("api-version", "2019-08-01"), ("client_id", client_id)];
    let response = reqwest::Client::new()
        .get(url)
        .query(&query)
        .header("X-IDENTITY-HEADER", IDENTITY_HEADER)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_string()
}

/// Step one: the blueprint, authenticated by chat-app's managed identity (its federated
/// credential), asks for a token for one of its agent identities (`fmi_path`).
async fn blueprint_token_for(idp: &Running, ids: &Ids, fmi_path: &str) -> (u16, Value) {
    let mi = managed_identity_assertion(idp, &ids.chat_mi).await;
    token_request(
        idp,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &ids.blueprint),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", &mi),
            ("scope", EXCHANGE_SCOPE),
            ("fmi_path", fmi_path),
        ],
    )
    .await
}

async fn agent_assertion(idp: &Running, ids: &Ids) -> String {
    let (status, body) = blueprint_token_for(idp, ids, &ids.agent).await;
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().unwrap().to_string()
}

/// Step two: the agent identity exchanges the user's token (for the blueprint) On-Behalf-Of.
async fn agent_obo(idp: &Running, ids: &Ids, assertion: &str, user_token: &str, scope: &str) -> (u16, Value) {
    token_request(
        idp,
        &[
            ("grant_type", JWT_BEARER),
            ("requested_token_use", "on_behalf_of"),
            ("client_id", &ids.agent),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", assertion),
            ("assertion", user_token),
            ("scope", scope),
        ],
    )
    .await
}

fn blueprint_user_token(idp: &Running, user: &str) -> String {
    idp.handle().user_token(user, "chat-app", "orders-copilot", &["access_as_user"]).unwrap()
}

#[tokio::test]
async fn the_agent_on_behalf_of_flow_names_the_agent_and_keeps_the_user() {
    let idp = start(true).await;
    let ids = ids(&idp);
    let assertion = agent_assertion(&idp, &ids).await;
    // The parent token: for the token-exchange audience, issued to the blueprint, about the agent.
    let parent = claims(&assertion);
    assert_eq!(parent["aud"], "api://AzureADTokenExchange");
    assert_eq!(parent["azp"], ids.blueprint.as_str());
    assert_eq!(parent["sub"], ids.agent.as_str());

    let (status, body) = agent_obo(&idp, &ids, &assertion, &blueprint_user_token(&idp, "alice"), MCP_SCOPE).await;
    assert_eq!(status, 200, "{body}");
    let token = claims(body["access_token"].as_str().unwrap());
    let alice = idp.handle().manifest().user("alice").unwrap().oid.clone();
    // "In v2 tokens, you see azp instead of appid. They both refer to the agent identity's app ID."
    assert_eq!(token["aud"], ids.mcp.as_str());
    assert_eq!(token["azp"], ids.agent.as_str(), "azp is the agent identity");
    assert_eq!(token["xms_par_app_azp"], ids.blueprint.as_str(), "xms_par_app_azp is the blueprint");
    assert!(token["xms_act_fct"].as_str().unwrap().split(' ').any(|f| f == "11"), "{token}");
    assert_eq!(token["idtyp"], "user");
    assert_eq!(token["oid"], alice.as_str(), "the user is unchanged");
    assert_eq!(token["scp"], "access_as_user", "the scope the blueprint lets its agents inherit");
    assert_eq!(token["ver"], "2.0");
}

/// "Users can't grant them consent interactively (attempting this on the child identity returns
/// the error AADSTS82014)"; "Agent identity blueprints can't initiate interactive authorization
/// (/authorize) flows directly."
#[tokio::test]
async fn agent_identities_and_blueprints_cannot_use_authorize() {
    let idp = start(true).await;
    let ids = ids(&idp);
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    for client_id in [&ids.agent, &ids.blueprint] {
        let url = format!("{}/{}/oauth2/v2.0/authorize", idp.url(), idp.handle().tenant_id());
        let query = [
            ("client_id", client_id.as_str()),
            ("response_type", "code"),
            ("redirect_uri", "http://localhost:3000/auth/callback"),
            ("scope", MCP_SCOPE),
            ("code_challenge", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"),
            ("code_challenge_method", "S256"),
        ];
        let response = http.get(url).query(&query).send().await.unwrap();
        assert_eq!(response.status(), 400, "{client_id}");
        let page = response.text().await.unwrap();
        assert!(page.contains("AADSTS82014"), "{page}");
    }
}

/// The user's token must be for the blueprint: a token for orders-mcp (the default mode's
/// sign-in token) is not one the agent may exchange.
#[tokio::test]
async fn the_users_token_must_be_for_the_blueprint() {
    let idp = start(true).await;
    let ids = ids(&idp);
    let assertion = agent_assertion(&idp, &ids).await;
    let for_mcp = idp.handle().user_token("alice", "chat-app", "orders-mcp", &["access_as_user"]).unwrap();
    let (status, body) = agent_obo(&idp, &ids, &assertion, &for_mcp, MCP_SCOPE).await;
    assert_eq!(status, 400);
    assert_entra_error(&body, "invalid_grant", 50013);
}

/// Consent for an agent identity comes only from its blueprint's inheritable permissions, once an
/// administrator consented: orders-api's scopes are not inheritable (AADSTS65001), and in a
/// tenant where nobody granted admin consent even orders-mcp's is refused.
#[tokio::test]
async fn an_agent_gets_only_inheritable_permissions_an_administrator_consented_to() {
    let idp = start(true).await;
    let ids = ids(&idp);
    let assertion = agent_assertion(&idp, &ids).await;
    let user = blueprint_user_token(&idp, "alice");
    let api_scope = "api://afb67780-0dec-4124-a11c-b6e461eb7aad/orders-api-local/Orders.ReadWrite";
    let (status, body) = agent_obo(&idp, &ids, &assertion, &user, api_scope).await;
    assert_eq!(status, 400);
    assert_entra_error(&body, "invalid_grant", 65001);

    let idp = start(false).await;
    let assertion = agent_assertion(&idp, &ids).await;
    let (status, body) = agent_obo(&idp, &ids, &assertion, &blueprint_user_token(&idp, "alice"), MCP_SCOPE).await;
    assert_eq!(status, 400);
    assert_entra_error(&body, "invalid_grant", 65001);
}

/// An agent identity has no credential of its own: no secret, no managed identity token, nothing
/// but its own blueprint's `fmi_path` token for it.
#[tokio::test]
async fn an_agent_identity_authenticates_only_with_its_blueprints_token_for_it() {
    let idp = start(true).await;
    let ids = ids(&idp);
    let user = blueprint_user_token(&idp, "alice");
    let obo = |extra: Vec<(&'static str, String)>| {
        let mut form: Vec<(&str, String)> = vec![
            ("grant_type", JWT_BEARER.into()),
            ("requested_token_use", "on_behalf_of".into()),
            ("client_id", ids.agent.clone()),
            ("assertion", user.clone()),
            ("scope", MCP_SCOPE.into()),
        ];
        form.extend(extra);
        form
    };
    let send = |form: Vec<(&'static str, String)>| {
        let idp = &idp;
        async move {
            let borrowed: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            token_request(idp, &borrowed).await
        }
    };
    let (status, body) = send(obo(vec![])).await;
    assert_eq!(status, 401, "{body}");
    assert_entra_error(&body, "invalid_client", 7000218);
    let (_, body) = send(obo(vec![("client_secret", "anything".into())])).await;
    assert_entra_error(&body, "invalid_client", 7000215);
    // chat-app's managed identity token authenticates the blueprint, never the agent directly.
    let mi = managed_identity_assertion(&idp, &ids.chat_mi).await;
    let (_, body) = send(obo(vec![("client_assertion_type", ASSERTION_TYPE.into()), ("client_assertion", mi)])).await;
    assert_entra_error(&body, "invalid_client", 700213);
}

/// Only a blueprint may ask with `fmi_path`, only for its own agent identities, only for the
/// token-exchange audience.
#[tokio::test]
async fn fmi_path_is_for_a_blueprint_and_its_own_agents() {
    let idp = start(true).await;
    let ids = ids(&idp);
    let (status, body) = blueprint_token_for(&idp, &ids, &ids.mcp).await;
    assert_eq!(status, 400);
    assert_entra_error(&body, "invalid_request", 700016);

    let (_, body) = token_request(
        &idp,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &ids.mcp),
            ("client_secret", "orders-mcp-local-secret"),
            ("scope", EXCHANGE_SCOPE),
            ("fmi_path", &ids.agent),
        ],
    )
    .await;
    assert_entra_error(&body, "unauthorized_client", 700016);

    let mi = managed_identity_assertion(&idp, &ids.chat_mi).await;
    let (_, body) = token_request(
        &idp,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &ids.blueprint),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", &mi),
            ("scope", "http://localhost:3001/mcp/.default"),
            ("fmi_path", &ids.agent),
        ],
    )
    .await;
    assert_entra_error(&body, "invalid_scope", 1002012);
}

/// What a middle tier's On-Behalf-Of makes of an agent's token is not in Entra's docs. Our
/// choice: `azp` is the middle tier (it is the client; nothing may take it for an agent, so no
/// `xms_par_app_azp`), and the agent stays visible as the prior actor in RFC 8693's `act`.
#[tokio::test]
async fn a_middle_tiers_on_behalf_of_keeps_the_agent_as_the_prior_actor() {
    let idp = start(true).await;
    let ids = ids(&idp);
    let assertion = agent_assertion(&idp, &ids).await;
    let (_, body) = agent_obo(&idp, &ids, &assertion, &blueprint_user_token(&idp, "alice"), MCP_SCOPE).await;
    let agent_token = body["access_token"].as_str().unwrap();
    let (status, body) = token_request(
        &idp,
        &[
            ("grant_type", JWT_BEARER),
            ("requested_token_use", "on_behalf_of"),
            ("client_id", &ids.mcp),
            ("client_secret", "orders-mcp-local-secret"),
            ("assertion", agent_token),
            ("scope", "api://afb67780-0dec-4124-a11c-b6e461eb7aad/orders-api-local/.default"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let token = claims(body["access_token"].as_str().unwrap());
    assert_eq!(token["appid"], ids.mcp.as_str(), "the middle tier is the client");
    assert!(token.get("xms_par_app_azp").is_none(), "{token}");
    assert_eq!(token["act"]["sub"], ids.agent.as_str());
    assert_eq!(token["act"]["xms_par_app_azp"], ids.blueprint.as_str());
    assert_eq!(token["oid"], idp.handle().manifest().user("alice").unwrap().oid.as_str());
}
