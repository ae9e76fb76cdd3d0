//! Who is asking: client authentication at the token endpoint (nothing for a public client; a
//! secret, or a managed identity's token as client assertion, for a confidential one).

use axum::http::{HeaderMap, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use service_kit::secret;

use super::params::Params;
use crate::claims::ClientAuth;
use crate::directory::{ClientApp, ClientKind};
use crate::error::EntraError;
use crate::keys::Unverified;
use crate::state::Emulator;

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const TOKEN_EXCHANGE_AUDIENCES: [&str; 2] =
    [entra_auth::acquire::TOKEN_EXCHANGE_AUDIENCE, "fb60f99c-7a34-4190-8149-302f77469936"];

/// Authenticates the client of a token request: a public client presents nothing; a
/// confidential client presents its secret (post or basic) or a client assertion. The client id
/// goes into the current span (the grant's).
pub fn authenticate(
    emulator: &Emulator,
    params: &Params,
    headers: &HeaderMap,
) -> Result<(ClientApp, ClientAuth), EntraError> {
    let basic = basic_credentials(headers);
    let client_id = params
        .get("client_id")
        .cloned()
        .or_else(|| basic.as_ref().map(|(id, _)| id.clone()))
        .ok_or_else(|| EntraError::missing_parameter("client_id"))?;
    if let Some((basic_id, _)) = &basic
        && !basic_id.eq_ignore_ascii_case(&client_id)
    {
        return Err(EntraError::new(
            "invalid_request",
            9002313,
            "Invalid request. The client_id in the body does not match the Authorization header.",
        ));
    }
    let client = emulator.0.dir.client(&client_id)?;
    tracing::Span::current().record("client_id", client.client_id.as_str());
    let secret = params.get("client_secret").cloned().or_else(|| basic.map(|(_, s)| s));
    let assertion = params.get("client_assertion");
    match &client.kind {
        ClientKind::AgentIdentity { blueprint_client_id } => {
            if secret.is_some() {
                // Agent identities hold no credential ("Agent identities ... don't have their
                // own credentials", Agent ID): a secret can only be a mistake. Entra documents no
                // code for this exact case; we answer as for a secret the app does not have.
                return Err(EntraError::new(
                    "invalid_client",
                    7000215,
                    format!(
                        "Invalid client secret provided: agent identity '{}' has no credential of its own; present its blueprint's token as client_assertion.",
                        client.client_id
                    ),
                ));
            }
            let Some(assertion) = assertion else {
                return Err(EntraError::credential_required());
            };
            check_assertion_type(params)?;
            check_agent_assertion(emulator, assertion, &client.client_id, blueprint_client_id)?;
            Ok((client, ClientAuth::Assertion))
        }
        ClientKind::Public => {
            if secret.is_some() || assertion.is_some() {
                return Err(EntraError::new(
                    "invalid_request",
                    700025,
                    "Client is public so neither 'client_assertion' nor 'client_secret' should be presented.",
                ));
            }
            Ok((client, ClientAuth::Public))
        }
        ClientKind::Confidential { secret: expected, federated_principals } => {
            if let Some(assertion) = assertion {
                check_assertion_type(params)?;
                check_client_assertion(emulator, assertion, federated_principals)?;
                return Ok((client, ClientAuth::Assertion));
            }
            match (secret, expected) {
                (Some(given), Some(expected)) if secret::same(&given, expected) => Ok((client, ClientAuth::Secret)),
                (Some(_), _) => Err(EntraError::new(
                    "invalid_client",
                    7000215,
                    format!(
                        "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{}'.",
                        client.client_id
                    ),
                )),
                (None, _) => Err(EntraError::credential_required()),
            }
        }
    }
}

fn check_assertion_type(params: &Params) -> Result<(), EntraError> {
    if params.get("client_assertion_type").map(String::as_str) != Some(ASSERTION_TYPE) {
        return Err(EntraError::new(
            "invalid_request",
            50027,
            "Invalid client_assertion_type: expected urn:ietf:params:oauth:client-assertion-type:jwt-bearer.",
        ));
    }
    Ok(())
}

/// [`authenticate`], for grants only a confidential client may use (On-Behalf-Of, client
/// credentials).
pub fn authenticate_confidential(
    emulator: &Emulator,
    params: &Params,
    headers: &HeaderMap,
) -> Result<(ClientApp, ClientAuth), EntraError> {
    match authenticate(emulator, params, headers)? {
        (_, ClientAuth::Public) => Err(EntraError::credential_required()),
        confidential => Ok(confidential),
    }
}

/// Whether `claims` name this emulator as issuer (either version).
pub fn is_own_issuer(emulator: &Emulator, claims: &Value) -> bool {
    let iss = claims["iss"].as_str().unwrap_or_default();
    iss == emulator.issuers().v1 || iss == emulator.issuers().v2
}

/// A client assertion must be a managed identity's token for the token-exchange audience,
/// from a managed identity the app's federated credentials trust.
fn check_client_assertion(
    emulator: &Emulator,
    assertion: &str,
    federated_principals: &[String],
) -> Result<(), EntraError> {
    let claims = exchange_assertion(emulator, assertion)?;
    let sub = claims["sub"].as_str().unwrap_or_default();
    if !federated_principals.iter().any(|p| p.eq_ignore_ascii_case(sub)) {
        return Err(EntraError::new(
            "invalid_client",
            700213,
            format!("No matching federated identity record found for presented assertion subject '{sub}'."),
        ));
    }
    Ok(())
}

/// An agent identity's client assertion: the token its own blueprint got for it with
/// `fmi_path` (client credentials, audience `api://AzureADTokenExchange`, `sub` = the agent
/// identity), from this issuer. Anything else is refused like a federated credential that
/// matches nothing (AADSTS700211/700212/700213), the closest documented shapes.
fn check_agent_assertion(
    emulator: &Emulator,
    assertion: &str,
    agent_id: &str,
    blueprint_id: &str,
) -> Result<(), EntraError> {
    let claims = exchange_assertion(emulator, assertion)?;
    let issued_to = claims["azp"].as_str().or_else(|| claims["appid"].as_str()).unwrap_or_default();
    let sub = claims["sub"].as_str().unwrap_or_default();
    if !issued_to.eq_ignore_ascii_case(blueprint_id) || !sub.eq_ignore_ascii_case(agent_id) {
        return Err(EntraError::new(
            "invalid_client",
            700213,
            format!(
                "No matching federated identity record found for presented assertion subject '{sub}': an agent identity accepts only its own blueprint's token for it (fmi_path)."
            ),
        ));
    }
    Ok(())
}

/// The claims of a token this emulator issued for the token-exchange audience, the part every
/// assertion-as-credential shares; the caller then checks whom it names.
fn exchange_assertion(emulator: &Emulator, assertion: &str) -> Result<Value, EntraError> {
    let claims = verify_assertion(emulator, assertion)?;
    if !is_own_issuer(emulator, &claims) {
        return Err(EntraError::new(
            "invalid_client",
            700211,
            "No matching federated identity record found for presented assertion issuer.",
        ));
    }
    let aud = claims["aud"].as_str().unwrap_or_default();
    if !TOKEN_EXCHANGE_AUDIENCES.contains(&aud) {
        return Err(EntraError::new(
            "invalid_client",
            700212,
            "No matching federated identity record found for presented assertion audience.",
        ));
    }
    Ok(claims)
}

fn verify_assertion(emulator: &Emulator, assertion: &str) -> Result<Value, EntraError> {
    emulator.0.keys.verify(assertion).map_err(|problem| match problem {
        Unverified::Expired => {
            EntraError::new("invalid_client", 700024, "Client assertion is not within its valid time range.")
        }
        Unverified::Signature | Unverified::Malformed => {
            EntraError::new("invalid_client", 700027, "Client assertion failed signature validation.")
        }
    })
}

/// `Authorization: Basic base64(urlencode(id):urlencode(secret))` (RFC 6749 §2.3.1).
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let unescape =
        |s: &str| url::form_urlencoded::parse(format!("x={s}").as_bytes()).next().map(|(_, v)| v.into_owned());
    Some((unescape(id)?, unescape(secret)?))
}
