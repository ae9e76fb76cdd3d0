//! Tokens from the emulator, as any client gets them: a user signed in through the login form
//! (authorization code + PKCE with the Azure CLI's public, pre-authorized client id), and
//! app-only tokens with the manifest's emulator-only client secrets.

use entra_auth::acquire::describe;
use entra_auth::pkce;
use serde_json::Value;
use url::Url;

use super::http::Http;
use super::report::Check;
use super::target::{Local, Target};

/// The demo user verify signs in.
pub const USER: &str = "alice";
/// Where the Azure CLI's client receives the code (never followed: the code is in the redirect).
const REDIRECT_URI: &str = "http://localhost:8400/";

/// Authorization code + PKCE for [`USER`] with the Azure CLI's client, through the login form.
pub async fn sign_in(http: &Http, target: &Target, local: &Local) -> Check<String> {
    let cli = local.manifest.clients.get("azure-cli").ok_or("no azure-cli client in the manifest")?;
    let mcp_uri = local.app_id_uri("orders-mcp").ok_or("no orders-mcp")?;
    let user = local.manifest.user(USER).ok_or(format!("no {USER}"))?;
    let verifier = pkce::verifier().map_err(|e| e.to_string())?;
    let challenge = pkce::challenge(&verifier);
    let scope = format!("{mcp_uri}/access_as_user");
    let form = [
        ("client_id", cli.client_id.as_str()),
        ("response_type", "code"),
        ("redirect_uri", REDIRECT_URI),
        ("scope", &scope),
        ("state", "verify"),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
        ("login", &user.name),
        ("password", &user.password),
    ];
    let r = http.client().post(target.authorize_endpoint()).form(&form).send().await.map_err(describe)?;
    let location =
        r.headers().get("location").and_then(|v| v.to_str().ok()).ok_or(format!("login answered {}", r.status()))?;
    let code = Url::parse(location)
        .map_err(|e| e.to_string())?
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .ok_or("no code in the redirect")?;
    let form = [
        ("grant_type", "authorization_code"),
        ("client_id", cli.client_id.as_str()),
        ("code", &code),
        ("redirect_uri", REDIRECT_URI),
        ("code_verifier", &verifier),
        ("scope", &scope),
    ];
    let body = token_request(http, target, &form).await?;
    body["access_token"].as_str().map(str::to_string).ok_or_else(|| format!("no token: {}", body["error_description"]))
}

/// Client credentials with the emulator-only secret of `client` (a manifest app), for
/// `resource` (another).
pub async fn app_token(http: &Http, target: &Target, local: &Local, client: &str, resource: &str) -> Check<String> {
    let app = local.manifest.app(client).ok_or(format!("no app {client}"))?;
    let secret = app.emulator_client_secret.as_deref().ok_or(format!("{client} has no emulator secret"))?;
    let resource_uri = local.app_id_uri(resource).ok_or("no resource")?;
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", app.client_id.as_str()),
        ("client_secret", secret),
        ("scope", &format!("{resource_uri}/.default")),
    ];
    let body = token_request(http, target, &form).await?;
    body["access_token"].as_str().map(str::to_string).ok_or_else(|| format!("no token: {body}"))
}

async fn token_request(http: &Http, target: &Target, form: &[(&str, &str)]) -> Check<Value> {
    let r = http.client().post(target.token_endpoint()).form(form).send().await.map_err(describe)?;
    r.json().await.map_err(describe)
}
