//! Acceptance 3: clients that are not the emulator's own code complete every flow against it.
//!
//! The `openidconnect` crate (a generic OIDC/OAuth client) drives authorization code + PKCE
//! through the HTML login form, refresh, client credentials and device code. On-Behalf-Of and
//! managed identity have no generic-crate support, so entra-auth's client side (a separate crate
//! with its own wire code) drives those. Every refusal is checked for Entra's error shape.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure report

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use entra_auth::acquire::{ConfidentialClient, Credential, ManagedIdentityCredential, ManagedIdentitySource};
use entra_auth::validate::{TokenValidator, TokenVersion, ValidatorConfig};
use entra_emulator::{EmulatorConfig, Running};
use entra_manifest::Vars;
use openidconnect::core::{CoreClient, CoreDeviceAuthorizationResponse, CoreProviderMetadata, CoreResponseType};
use openidconnect::{
    AuthenticationFlow, AuthorizationCode, ClientId, ClientSecret, CsrfToken, DeviceAuthorizationUrl, IssuerUrl, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RefreshToken, RequestTokenError, Scope,
    TokenResponse,
};
use secrecy::ExposeSecret;
use serde_json::Value;
use url::Url;

mod support;

const IDENTITY_HEADER: &str = "test-identity-header";

async fn start(configure: impl FnOnce(&mut EmulatorConfig)) -> Running {
    let mut config = EmulatorConfig::from_repository().unwrap();
    config.identity_header = Some(IDENTITY_HEADER.into());
    config.device_poll_interval = Duration::from_secs(1);
    configure(&mut config);
    entra_emulator::Application::build(config).await.unwrap().spawn()
}

fn browser() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// openidconnect's HTTP client, over reqwest.
fn http_client() -> impl Fn(
    openidconnect::HttpRequest,
) -> std::pin::Pin<Box<dyn Future<Output = Result<openidconnect::HttpResponse, reqwest::Error>>>> {
    let client = browser();
    move |request: openidconnect::HttpRequest| {
        let client = client.clone();
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let response =
                client.request(parts.method, parts.uri.to_string()).headers(parts.headers).body(body).send().await?;
            let mut builder = http::Response::builder().status(response.status());
            for (name, value) in response.headers() {
                builder = builder.header(name, value);
            }
            Ok(builder.body(response.bytes().await?.to_vec()).unwrap())
        })
    }
}

struct Oidc {
    client: openidconnect::core::CoreClient<
        openidconnect::EndpointSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointMaybeSet,
        openidconnect::EndpointMaybeSet,
    >,
    metadata: CoreProviderMetadata,
}

async fn discover(idp: &Running, client: &str, secret: Option<&str>, redirect: &str) -> Oidc {
    let issuer = IssuerUrl::new(idp.handle().issuers().v2.clone()).unwrap();
    let metadata = CoreProviderMetadata::discover_async(issuer, &http_client()).await.unwrap();
    let m = idp.handle().manifest();
    let client_id = m.app(client).map(|a| a.client_id.clone()).unwrap_or_else(|| m.clients[client].client_id.clone());
    let client = CoreClient::from_provider_metadata(
        metadata.clone(),
        ClientId::new(client_id),
        secret.map(|s| ClientSecret::new(s.into())),
    )
    .set_redirect_uri(RedirectUrl::new(redirect.into()).unwrap());
    Oidc { client, metadata }
}

/// Submits the login page's form for `user`, as a browser would on a click.
async fn sign_in_through_form(page_url: &Url, user: &str) -> reqwest::Response {
    let http = browser();
    let page = http.get(page_url.clone()).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    support::submit(&http, &html, &format!("data-user=\"{user}\"")).await
}

fn redirect_params(response: &reqwest::Response) -> std::collections::HashMap<String, String> {
    assert_eq!(response.status(), 303, "expected a redirect back to the client");
    let location = Url::parse(response.headers()["location"].to_str().unwrap()).unwrap();
    location.query_pairs().into_owned().collect()
}

/// Entra's error body: `error`, `error_description` starting with the AADSTS code, `error_codes`,
/// `timestamp`, `trace_id`, `correlation_id`.
fn assert_entra_error(body: &Value, error: &str, code: u32) {
    assert_eq!(body["error"], error, "{body}");
    let description = body["error_description"].as_str().unwrap();
    assert!(description.starts_with(&format!("AADSTS{code}: ")), "{description}");
    assert!(description.contains("Trace ID: ") && description.contains("Correlation ID: "), "{description}");
    assert_eq!(body["error_codes"], serde_json::json!([code]), "{body}");
    for field in ["timestamp", "trace_id", "correlation_id"] {
        assert!(body[field].as_str().is_some_and(|v| !v.is_empty()), "missing {field}: {body}");
    }
}

async fn token_request(idp: &Running, form: &[(&str, &str)]) -> (u16, Value) {
    let url = format!("{}/{}/oauth2/v2.0/token", idp.url(), idp.handle().tenant_id());
    let response = reqwest::Client::new().post(url).form(form).send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

fn validator(idp: &Running, app: &str) -> TokenValidator {
    let m = idp.handle().manifest();
    let app = m.app(app).unwrap();
    let uri = app.identifier_uri.as_ref().unwrap().render(&Vars::local(&m.tenant.id));
    let version = if app.access_token_version == 1 { TokenVersion::V1 } else { TokenVersion::V2 };
    let config = ValidatorConfig::new(
        Url::parse(&idp.url()).unwrap(),
        idp.handle().tenant_id(),
        vec![app.client_id.clone(), uri],
    );
    TokenValidator::new(config.versions(&[version]), reqwest::Client::new())
}

const CHAT_SECRET: &str = "chat-app-local-secret";
const MCP_SCOPE: &str = "http://localhost:3001/mcp/access_as_user";

/// Authorization code + PKCE through the login form; returns (access, refresh) tokens.
async fn sign_in(idp: &Running, user: &str) -> (String, String) {
    let oidc = discover(idp, "chat-app", Some(CHAT_SECRET), "http://localhost:3000/auth/callback").await;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state, nonce) = oidc
        .client
        .authorize_url(
            AuthenticationFlow::<CoreResponseType>::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new(MCP_SCOPE.into()))
        .add_scope(Scope::new("offline_access".into()))
        .add_scope(Scope::new("profile".into()))
        .set_pkce_challenge(challenge)
        .url();
    let params = redirect_params(&sign_in_through_form(&url, user).await);
    assert_eq!(params["state"], *state.secret(), "state must round-trip");
    let tokens = oidc
        .client
        .exchange_code(AuthorizationCode::new(params["code"].clone()))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http_client())
        .await
        .unwrap();
    // openidconnect verifies the ID token: signature against the JWKS, issuer, audience, nonce.
    let id_token = tokens.id_token().expect("an ID token for the openid scope");
    let claims = id_token.claims(&oidc.client.id_token_verifier(), &nonce).unwrap();
    assert_eq!(claims.preferred_username().unwrap().as_str(), format!("{user}@contoso.example"));
    assert!(!oidc.metadata.jwks().keys().is_empty());
    (tokens.access_token().secret().clone(), tokens.refresh_token().unwrap().secret().clone())
}

#[tokio::test]
async fn authorization_code_with_pkce_through_the_login_form_then_refresh() {
    let idp = start(|_| {}).await;
    let (access, refresh) = sign_in(&idp, "alice").await;
    let mcp = validator(&idp, "orders-mcp");
    let caller = mcp.validate(&access).await.unwrap();
    assert_eq!(caller.scopes, ["access_as_user"]);
    assert_eq!(caller.version, TokenVersion::V2);
    assert_eq!(caller.client_id, idp.handle().manifest().app("chat-app").unwrap().client_id);

    // Refresh rotates: the new refresh token works, the spent one is refused with Entra's shape.
    let oidc = discover(&idp, "chat-app", Some(CHAT_SECRET), "http://localhost:3000/auth/callback").await;
    let renewed = oidc
        .client
        .exchange_refresh_token(&RefreshToken::new(refresh.clone()))
        .unwrap()
        .request_async(&http_client())
        .await
        .unwrap();
    let next_refresh = renewed.refresh_token().unwrap().secret().clone();
    assert_ne!(next_refresh, refresh);
    assert_eq!(mcp.validate(renewed.access_token().secret()).await.unwrap().oid, caller.oid);
    let client_id = idp.handle().manifest().app("chat-app").unwrap().client_id.clone();
    let (status, body) = token_request(
        &idp,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", &client_id),
            ("client_secret", CHAT_SECRET),
            ("refresh_token", &refresh),
        ],
    )
    .await;
    assert_eq!(status, 400);
    assert_entra_error(&body, "invalid_grant", 70000);
    assert_eq!(idp.handle().stats().authorization_code, 1);
    assert_eq!(idp.handle().stats().refresh_token, 1);
}

#[tokio::test]
async fn single_sign_on_session_and_prompt_login() {
    let idp = start(|_| {}).await;
    let oidc = discover(&idp, "chat-app", Some(CHAT_SECRET), "http://localhost:3000/auth/callback").await;
    let url = |prompt: Option<&str>| {
        let mut request = oidc
            .client
            .authorize_url(
                AuthenticationFlow::<CoreResponseType>::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scope(Scope::new(MCP_SCOPE.into()));
        if let Some(p) = prompt {
            request = request.add_extra_param("prompt", p);
        }
        request.url().0
    };
    let http =
        reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).cookie_store(true).build().unwrap();
    let silent = http.get(url(Some("none"))).send().await.unwrap();
    assert_eq!(redirect_params(&silent)["error"], "login_required");

    // Sign in once through the form, keeping the emulator's session cookie.
    let html = http.get(url(None)).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("data-user=\"bob\""));
    let page_form_fields: Vec<(String, String)> = url(None)
        .query_pairs()
        .into_owned()
        .chain([("login".into(), "bob".into()), ("password".into(), "wrong".into())])
        .collect();
    let action = format!("{}/{}/oauth2/v2.0/authorize", idp.url(), idp.handle().tenant_id());
    let refused = http.post(&action).form(&page_form_fields).send().await.unwrap();
    assert_eq!(refused.status(), 200);
    assert!(refused.text().await.unwrap().contains("AADSTS50126"));
    let mut fields = page_form_fields.clone();
    fields.last_mut().unwrap().1 = "bob".into();
    let signed_in = http.post(&action).form(&fields).send().await.unwrap();
    let cookie = signed_in.headers()["set-cookie"].to_str().unwrap().to_string();
    let returned = redirect_params(&signed_in);
    assert!(returned.contains_key("code"));

    // The session's id travels to every app (`session_state` here, `sid` in tokens and in
    // front-channel logout), so the cookie that signs the browser in must be a separate secret:
    // an app that knows `sid` must not be able to sign in as the user. Entra's SSO cookies
    // (ESTSAUTH, ESTSAUTHPERSISTENT) are opaque session tokens of their own ("Web browser cookies
    // used in Microsoft Entra authentication", learn.microsoft.com/entra/identity/authentication/
    // concept-authentication-web-browser-cookies).
    let sid = &returned["session_state"];
    assert!(!cookie.contains(sid.as_str()), "the SSO cookie must not be the session id: {cookie}");
    let planted =
        browser().get(url(Some("none"))).header("cookie", format!("emulator_sso={sid}")).send().await.unwrap();
    assert_eq!(redirect_params(&planted)["error"], "login_required");

    // The session signs the user in silently next time; prompt=login asks again.
    let sso = http.get(url(Some("none"))).send().await.unwrap();
    assert!(redirect_params(&sso).contains_key("code"));
    let forced = http.get(url(Some("login"))).send().await.unwrap();
    assert_eq!(forced.status(), 200, "prompt=login shows the login page");

    // Logout ends the session: silent sign-in fails again.
    let logout = format!("{}/{}/oauth2/v2.0/logout", idp.url(), idp.handle().tenant_id());
    assert_eq!(http.get(logout).send().await.unwrap().status(), 200);
    let after = http.get(url(Some("none"))).send().await.unwrap();
    assert_eq!(redirect_params(&after)["error"], "login_required");
}

#[tokio::test]
async fn client_credentials_gives_an_app_only_token() {
    let idp = start(|_| {}).await;
    let oidc = discover(&idp, "orders-mcp", Some("orders-mcp-local-secret"), "http://localhost/unused").await;
    let token = oidc
        .client
        .exchange_client_credentials()
        .unwrap()
        .add_scope(Scope::new("api://afb67780-0dec-4124-a11c-b6e461eb7aad/orders-api-local/.default".into()))
        .request_async(&http_client())
        .await
        .unwrap();
    let caller = validator(&idp, "orders-api").validate(token.access_token().secret()).await.unwrap();
    assert_eq!(caller.kind, entra_auth::validate::CallerKind::App);
    assert!(caller.scopes.is_empty() && caller.roles.is_empty());
    assert_eq!(caller.oid, idp.handle().manifest().app("orders-mcp").unwrap().object_id);

    // Without /.default Entra refuses client credentials.
    let client_id = idp.handle().manifest().app("orders-mcp").unwrap().client_id.clone();
    let (status, body) = token_request(
        &idp,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &client_id),
            ("client_secret", "orders-mcp-local-secret"),
            ("scope", "api://afb67780-0dec-4124-a11c-b6e461eb7aad/orders-api-local/Orders.Read"),
        ],
    )
    .await;
    assert_eq!(status, 400);
    assert_entra_error(&body, "invalid_scope", 1002012);
}

#[tokio::test]
async fn device_code_for_the_azure_cli() {
    let idp = start(|_| {}).await;
    let oidc = discover(&idp, "azure-cli", None, "http://localhost").await;
    let client = oidc.client.set_device_authorization_url(
        DeviceAuthorizationUrl::new(format!("{}/{}/oauth2/v2.0/devicecode", idp.url(), idp.handle().tenant_id()))
            .unwrap(),
    );
    let details: CoreDeviceAuthorizationResponse = client
        .exchange_device_code()
        .add_scope(Scope::new(MCP_SCOPE.into()))
        .add_scope(Scope::new("openid".into()))
        .request_async(&http_client())
        .await
        .unwrap();
    let user_code = details.user_code().secret().clone();
    let verification = details.verification_uri().to_string();
    // The user enters the code at the verification page and signs in, while the device polls.
    let approve = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let page = reqwest::get(&verification).await.unwrap().text().await.unwrap();
        assert!(page.contains("Enter code"));
        let form =
            [("user_code", user_code.as_str()), ("login", "carol"), ("password", "carol"), ("decision", "approve")];
        let done = reqwest::Client::new().post(&verification).form(&form).send().await.unwrap().text().await.unwrap();
        assert!(done.contains("signed in"), "{done}");
    });
    let token = client
        .exchange_device_access_token(&details)
        .unwrap()
        .request_async(&http_client(), tokio::time::sleep, Some(Duration::from_secs(30)))
        .await
        .unwrap();
    approve.await.unwrap();
    let caller = validator(&idp, "orders-mcp").validate(token.access_token().secret()).await.unwrap();
    assert_eq!(caller.oid, idp.handle().manifest().user("carol").unwrap().oid);
    assert_eq!(caller.client_id, "04b07795-8ddb-461a-bbee-02f9e1bf7b46");
    assert_eq!(idp.handle().stats().device_code, 1);
}

#[tokio::test]
async fn on_behalf_of_with_a_managed_identity_assertion_and_with_a_secret() {
    let idp = start(|_| {}).await;
    let (user_token, _) = sign_in(&idp, "carol").await;
    let m = idp.handle().manifest().clone();
    let mcp = m.app("orders-mcp").unwrap();
    let http = reqwest::Client::new();
    let token_endpoint =
        ConfidentialClient::token_endpoint(&Url::parse(&idp.url()).unwrap(), idp.handle().tenant_id()).unwrap();
    let mi = ManagedIdentityCredential::new(
        http.clone(),
        ManagedIdentitySource::AppService {
            endpoint: Url::parse(&format!("{}/msi/token", idp.url())).unwrap(),
            header: IDENTITY_HEADER.into(),
        },
        Some(m.managed_identities["orders-mcp"].client_id.clone()),
    );
    let api = validator(&idp, "orders-api");
    for credential in [Credential::ManagedIdentity(Arc::new(mi)), Credential::Secret("orders-mcp-local-secret".into())]
    {
        let client = ConfidentialClient::new(http.clone(), token_endpoint.clone(), &mcp.client_id, credential);
        let obo = client
            .on_behalf_of(&user_token, "api://afb67780-0dec-4124-a11c-b6e461eb7aad/orders-api-local/.default", None)
            .await
            .unwrap();
        let caller = api.validate(obo.access_token.expose_secret()).await.unwrap();
        assert_eq!(caller.version, TokenVersion::V1, "orders-api gets v1 tokens");
        assert_eq!(caller.audience, "api://afb67780-0dec-4124-a11c-b6e461eb7aad/orders-api-local");
        assert_eq!(caller.client_id, mcp.client_id, "appid is the middle tier");
        assert_eq!(caller.oid, m.user("carol").unwrap().oid, "the user is unchanged");
        assert_eq!(caller.scopes, ["Orders.Read", "Orders.ReadWrite"]);
        assert_eq!(caller.roles, ["Orders.Admin"]);
    }
    assert_eq!(idp.handle().stats().on_behalf_of, 2);
    assert_eq!(idp.handle().stats().managed_identity, 1);
}

#[tokio::test]
async fn the_managed_identity_endpoint_checks_its_secret_header() {
    let idp = start(|_| {}).await;
    let m = idp.handle().manifest().clone();
    let url = format!("{}/msi/token", idp.url());
    let query = [
        ("api-version", "2019-08-01"),
        ("resource", "https://cognitiveservices.azure.com"),
        ("client_id", m.managed_identities["chat-app"].client_id.as_str()),
    ];
    let http = reqwest::Client::new();
    for header in [None, Some("wrong")] {
        let mut request = http.get(&url).query(&query);
        if let Some(h) = header {
            request = request.header("X-IDENTITY-HEADER", h);
        }
        assert_eq!(request.send().await.unwrap().status(), 401);
    }
    let ok: Value = http
        .get(&url)
        .query(&query)
        .header("X-IDENTITY-HEADER", IDENTITY_HEADER)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = entra_auth::hop::TokenSummary::from_unverified(ok["access_token"].as_str().unwrap()).unwrap();
    assert_eq!(token.aud, "https://cognitiveservices.azure.com");
    assert_eq!(token.oid, m.managed_identities["chat-app"].principal_id);
    assert!(ok["expires_on"].as_str().unwrap().parse::<u64>().is_ok(), "App Service sends expires_on as a string");

    // A resource Entra does not know, or a scope where the endpoint takes a resource, is
    // refused rather than signed for: a typo in a service's resource fails here as it would in
    // Azure ("AADSTS500011: The resource principal named {name} was not found in the tenant",
    // Microsoft Entra authentication and authorization error codes). The status and body
    // follow this endpoint's other refusals (App Service's shape).
    let chat = m.managed_identities["chat-app"].client_id.as_str();
    for (resource, known) in [
        ("https://cognitiveservices.azure.com/", true),
        ("https://redis.azure.com", true),
        ("https://cognitiveservice.azure.com", false),
        ("https://cognitiveservices.azure.com/.default", false),
    ] {
        let query = [("api-version", "2019-08-01"), ("resource", resource), ("client_id", chat)];
        let response = http.get(&url).query(&query).header("X-IDENTITY-HEADER", IDENTITY_HEADER).send().await.unwrap();
        assert_eq!(response.status() == 200, known, "{resource}");
        if !known {
            assert_eq!(response.status(), 400, "{resource}");
            let body: Value = response.json().await.unwrap();
            assert!(body["message"].as_str().unwrap().starts_with("AADSTS500011"), "{body}");
        }
    }
}

#[tokio::test]
async fn common_failures_answer_in_entra_shape() {
    let idp = start(|c| c.refresh_token_lifetime = Duration::from_secs(1)).await;
    let m = idp.handle().manifest().clone();
    let chat = m.app("chat-app").unwrap().client_id.clone();
    let mcp = m.app("orders-mcp").unwrap().client_id.clone();

    // Unknown client.
    let (status, body) = token_request(
        &idp,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "11111111-2222-3333-4444-555555555555"),
            ("client_secret", "x"),
            ("scope", "api://afb67780-0dec-4124-a11c-b6e461eb7aad/orders-api-local/.default"),
        ],
    )
    .await;
    assert_eq!(status, 400);
    assert_entra_error(&body, "unauthorized_client", 700016);

    // Bad PKCE verifier, then the same code reused.
    let oidc = discover(&idp, "chat-app", Some(CHAT_SECRET), "http://localhost:3000/auth/callback").await;
    let (challenge, _verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, _, _) = oidc
        .client
        .authorize_url(
            AuthenticationFlow::<CoreResponseType>::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new(MCP_SCOPE.into()))
        .set_pkce_challenge(challenge)
        .url();
    let code = redirect_params(&sign_in_through_form(&url, "alice").await)["code"].clone();
    let wrong = PkceCodeVerifier::new("x".repeat(64));
    match oidc
        .client
        .exchange_code(AuthorizationCode::new(code.clone()))
        .unwrap()
        .set_pkce_verifier(wrong)
        .request_async(&http_client())
        .await
    {
        Err(RequestTokenError::ServerResponse(e)) => {
            assert!(e.error_description().unwrap().starts_with("AADSTS50148"), "{e:?}");
        }
        other => panic!("expected a PKCE refusal, got {other:?}"),
    }
    let (status, body) = token_request(
        &idp,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", &chat),
            ("client_secret", CHAT_SECRET),
            ("code", &code),
            ("redirect_uri", "http://localhost:3000/auth/callback"),
            ("code_verifier", "whatever"),
        ],
    )
    .await;
    assert_eq!(status, 400);
    assert_entra_error(&body, "invalid_grant", 54005);

    // Bad redirect URI: shown on a page (never redirected to), with the AADSTS code.
    let bad = oidc.client.set_redirect_uri(RedirectUrl::new("https://evil.example/callback".into()).unwrap());
    let (url, _, _) = bad
        .authorize_url(
            AuthenticationFlow::<CoreResponseType>::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .url();
    let page = browser().get(url).send().await.unwrap();
    assert_eq!(page.status(), 400);
    assert!(page.text().await.unwrap().contains("AADSTS50011"));

    // Consent missing: the Azure CLI is not pre-authorized for orders-api.
    let form = [
        ("client_id", "04b07795-8ddb-461a-bbee-02f9e1bf7b46"),
        ("scope", "api://afb67780-0dec-4124-a11c-b6e461eb7aad/orders-api-local/Orders.Read"),
    ];
    let url = format!("{}/{}/oauth2/v2.0/devicecode", idp.url(), idp.handle().tenant_id());
    let response = reqwest::Client::new().post(url).form(&form).send().await.unwrap();
    assert_eq!(response.status(), 400);
    assert_entra_error(&response.json().await.unwrap(), "invalid_grant", 65001);

    // Invalid client assertion.
    let (status, body) = token_request(
        &idp,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &mcp),
            ("scope", "api://afb67780-0dec-4124-a11c-b6e461eb7aad/orders-api-local/.default"),
            ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
            ("client_assertion", "eyJhbGciOiJSUzI1NiJ9.e30.c2ln"),
        ],
    )
    .await;
    assert_eq!(status, 401);
    assert_entra_error(&body, "invalid_client", 700027);

    // An OBO assertion for another audience.
    let wrong_audience = idp.handle().user_token("alice", "chat-app", "orders-api", &["Orders.Read"]).unwrap();
    let (status, body) = token_request(
        &idp,
        &[
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("client_id", &mcp),
            ("client_secret", "orders-mcp-local-secret"),
            ("assertion", &wrong_audience),
            ("scope", "api://afb67780-0dec-4124-a11c-b6e461eb7aad/orders-api-local/.default"),
            ("requested_token_use", "on_behalf_of"),
        ],
    )
    .await;
    assert_eq!(status, 400);
    assert_entra_error(&body, "invalid_grant", 50013);

    // Expired refresh token.
    let (_, refresh) = sign_in(&idp, "bob").await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (status, body) = token_request(
        &idp,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", &chat),
            ("client_secret", CHAT_SECRET),
            ("refresh_token", &refresh),
        ],
    )
    .await;
    assert_eq!(status, 400);
    assert_entra_error(&body, "invalid_grant", 700082);

    // Wrong secret, unsupported grant, missing parameter.
    let (status, body) = token_request(
        &idp,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &mcp),
            ("client_secret", "nope"),
            ("scope", "api://afb67780-0dec-4124-a11c-b6e461eb7aad/orders-api-local/.default"),
        ],
    )
    .await;
    assert_eq!(status, 401);
    assert_entra_error(&body, "invalid_client", 7000215);
    let (_, body) = token_request(&idp, &[("grant_type", "password"), ("client_id", &chat)]).await;
    assert_entra_error(&body, "unsupported_grant_type", 70003);
    let (_, body) = token_request(&idp, &[("client_id", &chat)]).await;
    assert_entra_error(&body, "invalid_request", 900144);
    assert!(idp.handle().stats().refused >= 8);
}

/// RFC 8707 `resource` on the v2 endpoints, as MCP clients send it: Entra accepts it only when
/// it is an Application ID URI of the app that owns every requested scope (AADSTS9010010
/// otherwise, at authorize before anyone signs in, and at the token endpoint). orders-mcp's
/// Application ID URI is its MCP endpoint URL, so the URL from its resource metadata works.
#[tokio::test]
async fn the_resource_parameter_must_name_the_app_that_owns_the_scopes() {
    let idp = start(|_| {}).await;
    let tid = idp.handle().tenant_id().to_string();
    let m = idp.handle().manifest().clone();
    let vscode = m.clients["vscode"].client_id.clone();
    let redirect = "http://localhost:33418/";
    let mcp_resource = "http://localhost:3001/mcp";
    let api_uri = format!("api://{tid}/orders-api-local");
    let authorize = |scope: &str, resource: &str, challenge: &PkceCodeChallenge| {
        let mut url = Url::parse(&format!("{}/{tid}/oauth2/v2.0/authorize", idp.url())).unwrap();
        url.query_pairs_mut()
            .append_pair("client_id", &vscode)
            .append_pair("response_type", "code")
            .append_pair("redirect_uri", redirect)
            .append_pair("scope", scope)
            .append_pair("resource", resource)
            .append_pair("state", "s")
            .append_pair("code_challenge", challenge.as_str())
            .append_pair("code_challenge_method", "S256");
        url
    };

    // The MCP server's URL with its own scope: signed in, and the token is orders-mcp's.
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let url = authorize(&format!("{MCP_SCOPE} offline_access"), mcp_resource, &challenge);
    let params = redirect_params(&sign_in_through_form(&url, "alice").await);
    let (status, body) = token_request(
        &idp,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", &vscode),
            ("code", &params["code"]),
            ("redirect_uri", redirect),
            ("code_verifier", verifier.secret()),
            ("resource", mcp_resource),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let caller = validator(&idp, "orders-mcp").validate(body["access_token"].as_str().unwrap()).await.unwrap();
    assert_eq!(
        (caller.client_id.as_str(), caller.scopes.as_slice()),
        (vscode.as_str(), &["access_as_user".to_string()][..])
    );
    let refresh = body["refresh_token"].as_str().unwrap().to_string();
    let (status, body) = token_request(
        &idp,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", &vscode),
            ("refresh_token", &refresh),
            ("resource", mcp_resource),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");

    // At authorize, a mismatch goes back to the client before anyone signs in.
    for (scope, resource) in [
        (MCP_SCOPE.to_string(), "http://localhost:3001".to_string()), // the origin, not the endpoint
        (MCP_SCOPE.to_string(), api_uri.clone()),                     // another app's URI
        (format!("{api_uri}/Orders.Read"), mcp_resource.to_string()), // another app's scope
        ("openid profile".to_string(), mcp_resource.to_string()),     // Graph's scopes
    ] {
        let (challenge, _) = PkceCodeChallenge::new_random_sha256();
        let page = browser().get(authorize(&scope, &resource, &challenge)).send().await.unwrap();
        let params = redirect_params(&page);
        assert_eq!(params["error"], "invalid_target", "{scope} with {resource}");
        assert!(
            params["error_description"].starts_with(
                "AADSTS9010010: The resource parameter provided in the request doesn't match with the requested scopes."
            ),
            "{params:?}"
        );
    }

    // At the token endpoint, in Entra's JSON shape; the right URI passes.
    let mcp = m.app("orders-mcp").unwrap().client_id.clone();
    let client_credentials = |resource: &str| {
        let (mcp, scope, resource) = (mcp.clone(), format!("{api_uri}/.default"), resource.to_string());
        let idp = &idp;
        async move {
            token_request(
                idp,
                &[
                    ("grant_type", "client_credentials"),
                    ("client_id", &mcp),
                    ("client_secret", "orders-mcp-local-secret"),
                    ("scope", &scope),
                    ("resource", &resource),
                ],
            )
            .await
        }
    };
    let (status, body) = client_credentials(mcp_resource).await;
    assert_eq!(status, 400);
    assert_entra_error(&body, "invalid_target", 9010010);
    let (status, body) = client_credentials(&api_uri).await;
    assert_eq!(status, 200, "{body}");
}

/// `--tls`: discovery, the login page and tokens over HTTPS from a local CA that clients trust
/// explicitly; issuers and browser-facing endpoints are https; a client that does not trust the
/// CA (the system's roots only) is refused at the handshake.
#[tokio::test]
async fn tls_mode_serves_everything_over_https_from_a_local_ca() {
    let dir = tempfile::tempdir().unwrap();
    let idp =
        start(|c| c.tls = Some(entra_emulator::TlsSettings { dir: dir.path().to_path_buf(), names: vec![] })).await;
    let (tid, port) = (idp.handle().tenant_id().to_string(), idp.addr().port());
    let ca =
        reqwest::Certificate::from_pem(&std::fs::read(dir.path().join(entra_emulator::tls::CA_FILE)).unwrap()).unwrap();
    let trusting =
        reqwest::Client::builder().tls_certs_only([ca]).redirect(reqwest::redirect::Policy::none()).build().unwrap();
    for host in ["localhost", "127.0.0.1"] {
        let url = format!("https://{host}:{port}/{tid}/v2.0/.well-known/openid-configuration");
        let doc: Value = trusting.get(&url).send().await.unwrap().json().await.unwrap();
        assert_eq!(doc["issuer"], format!("https://127.0.0.1:{port}/{tid}/v2.0"));
        assert!(doc["authorization_endpoint"].as_str().unwrap().starts_with("https://"), "{doc}");
        assert!(doc["token_endpoint"].as_str().unwrap().starts_with(&format!("https://{host}:{port}/")), "{doc}");
    }
    let page = trusting
        .get(format!("https://localhost:{port}/{tid}/oauth2/v2.0/authorize"))
        .query(&[("client_id", "04b07795-8ddb-461a-bbee-02f9e1bf7b46"), ("redirect_uri", "http://localhost:8400/")])
        .query(&[("response_type", "code"), ("scope", MCP_SCOPE), ("code_challenge", &"a".repeat(43))])
        .query(&[("code_challenge_method", "S256")])
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.text()
            .await
            .unwrap()
            .contains(&format!("action=\"https://127.0.0.1:{port}/{tid}/oauth2/v2.0/authorize\""))
    );
    let refused = reqwest::Client::new().get(format!("https://localhost:{port}/healthz")).send().await;
    assert!(refused.is_err(), "the system's roots do not include the local CA");
    let plain = reqwest::Client::new().get(format!("http://127.0.0.1:{port}/healthz")).send().await;
    assert!(plain.is_err() || plain.is_ok_and(|r| !r.status().is_success()), "no plain HTTP on a TLS port");
}

/// Where the emulator was easier than Entra, and a client working here would fail there.
#[tokio::test]
async fn what_entra_does_not_offer_the_emulator_does_not_either() {
    let idp = start(|_| {}).await;
    let tid = idp.handle().tenant_id().to_string();
    let m = idp.handle().manifest().clone();

    // Entra's OpenID metadata lists no `code_challenge_methods_supported`, though it supports
    // S256 (modelcontextprotocol/typescript-sdk#832; anthropics/claude-ai-mcp#786: a client
    // that refuses such metadata, as MCP 2025-11-25 says it MUST, cannot sign in with Entra).
    // MCP clients are tested against metadata without it.
    let url = format!("{}/{tid}/v2.0/.well-known/openid-configuration", idp.url());
    let doc: Value = reqwest::get(url).await.unwrap().json().await.unwrap();
    assert!(doc["authorization_endpoint"].is_string(), "{doc}");
    assert_eq!(doc.get("code_challenge_methods_supported"), None, "{doc}");

    // A code challenge that is not 43 to 128 characters: AADSTS501491 ("Invalid size of
    // Code_Challenge parameter", Microsoft Entra authentication and authorization error codes),
    // back to the client. A right-sized challenge outside RFC 7636 §4.2's alphabet (the `=` case)
    // is refused with the same code: what Entra answers to that is not documented.
    let cli = "04b07795-8ddb-461a-bbee-02f9e1bf7b46";
    let authorize = |challenge: &str| {
        let mut url = Url::parse(&format!("{}/{tid}/oauth2/v2.0/authorize", idp.url())).unwrap();
        url.query_pairs_mut()
            .append_pair("client_id", cli)
            .append_pair("response_type", "code")
            .append_pair("redirect_uri", "http://localhost:8400/")
            .append_pair("scope", MCP_SCOPE)
            .append_pair("code_challenge", challenge)
            .append_pair("code_challenge_method", "S256");
        url
    };
    for challenge in ["test", &"a".repeat(129), &format!("{}=", "a".repeat(42))] {
        let response = browser().get(authorize(challenge)).send().await.unwrap();
        let params = redirect_params(&response);
        assert_eq!(params["error"], "invalid_request", "{challenge}: {params:?}");
        assert!(params["error_description"].starts_with("AADSTS501491"), "{params:?}");
    }
    assert_eq!(browser().get(authorize(&"a".repeat(43))).send().await.unwrap().status(), 200, "the sign-in page");

    // `api://<client id>` names an app only when it is the app's registered identifier URI
    // (its `identifierUris`); orders-mcp's is its URL. Entra: "AADSTS500011: The resource
    // principal named {name} was not found in the tenant" (error codes reference).
    let mcp = &m.app("orders-mcp").unwrap().client_id;
    let form = [("client_id", cli), ("scope", &format!("api://{mcp}/access_as_user"))];
    let url = format!("{}/{tid}/oauth2/v2.0/devicecode", idp.url());
    let response = reqwest::Client::new().post(url).form(&form).send().await.unwrap();
    assert_eq!(response.status(), 400);
    assert_entra_error(&response.json().await.unwrap(), "invalid_resource", 500011);
}
