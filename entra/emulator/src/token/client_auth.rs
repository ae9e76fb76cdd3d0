//! Who is asking: client authentication at the token endpoint, and verification of tokens the
//! emulator itself issued (client assertions from managed identities, OBO user assertions).

use std::collections::HashMap;

use axum::http::{HeaderMap, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jsonwebtoken::{Algorithm, Validation};
use serde_json::Value;

use crate::claims::ClientAuth;
use crate::directory::{ClientApp, ClientKind};
use crate::error::EntraError;
use crate::state::Emulator;

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const TOKEN_EXCHANGE_AUDIENCES: [&str; 2] =
    [entra_auth::acquire::TOKEN_EXCHANGE_AUDIENCE, "fb60f99c-7a34-4190-8149-302f77469936"];

/// Why one of our own tokens did not verify.
pub enum AssertionProblem {
    Malformed,
    Signature,
    Expired,
}

impl Emulator {
    /// Verifies a token this emulator signed (current or previous key) and returns its claims.
    /// Issuer and audience are the caller's business.
    pub(crate) fn verify_own(&self, token: &str) -> Result<Value, AssertionProblem> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| AssertionProblem::Malformed)?;
        if header.alg != Algorithm::RS256 {
            return Err(AssertionProblem::Signature);
        }
        let keys = self.0.keys.verification_keys();
        let key =
            keys.iter().find(|k| header.kid.as_deref() == Some(k.kid.as_str())).ok_or(AssertionProblem::Signature)?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.validate_aud = false;
        validation.validate_nbf = true;
        validation.leeway = 60;
        match jsonwebtoken::decode::<Value>(token, key.decoding_key(), &validation) {
            Ok(data) => Ok(data.claims),
            Err(e) => match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature
                | jsonwebtoken::errors::ErrorKind::ImmatureSignature => Err(AssertionProblem::Expired),
                jsonwebtoken::errors::ErrorKind::InvalidSignature => Err(AssertionProblem::Signature),
                _ => Err(AssertionProblem::Malformed),
            },
        }
    }

    fn is_own_issuer(&self, claims: &Value) -> bool {
        let iss = claims["iss"].as_str().unwrap_or_default();
        iss == self.issuers().v1 || iss == self.issuers().v2
    }

    /// Authenticates the client of a token request: a public client presents nothing; a
    /// confidential client presents its secret (post or basic) or a client assertion.
    pub(crate) fn authenticate_client(
        &self,
        params: &HashMap<String, String>,
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
        let client = self.0.dir.client(&client_id)?;
        let secret = params.get("client_secret").cloned().or_else(|| basic.map(|(_, s)| s));
        let assertion = params.get("client_assertion");
        match &client.kind {
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
                    if params.get("client_assertion_type").map(String::as_str) != Some(ASSERTION_TYPE) {
                        return Err(EntraError::new(
                            "invalid_request",
                            50027,
                            "Invalid client_assertion_type: expected urn:ietf:params:oauth:client-assertion-type:jwt-bearer.",
                        ));
                    }
                    self.check_client_assertion(assertion, federated_principals)?;
                    return Ok((client, ClientAuth::Assertion));
                }
                match (secret, expected) {
                    (Some(given), Some(expected))
                        if aws_lc_rs::constant_time::verify_slices_are_equal(given.as_bytes(), expected.as_bytes())
                            .is_ok() =>
                    {
                        Ok((client, ClientAuth::Secret))
                    }
                    (Some(_), _) => Err(EntraError::new(
                        "invalid_client",
                        7000215,
                        format!(
                            "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{}'.",
                            client.client_id
                        ),
                    )),
                    (None, _) => Err(EntraError::new(
                        "invalid_client",
                        7000218,
                        "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
                    )),
                }
            }
        }
    }

    /// A client assertion must be a managed identity's token for the token-exchange audience,
    /// from a managed identity the app's federated credentials trust.
    fn check_client_assertion(&self, assertion: &str, federated_principals: &[String]) -> Result<(), EntraError> {
        let claims = self.verify_own(assertion).map_err(|p| match p {
            AssertionProblem::Expired => {
                EntraError::new("invalid_client", 700024, "Client assertion is not within its valid time range.")
            }
            _ => EntraError::new("invalid_client", 700027, "Client assertion failed signature validation."),
        })?;
        if !self.is_own_issuer(&claims) {
            return Err(EntraError::new(
                "invalid_client",
                700211,
                "No matching federated identity record found for presented assertion issuer.",
            ));
        }
        let sub = claims["sub"].as_str().unwrap_or_default();
        if !federated_principals.iter().any(|p| p.eq_ignore_ascii_case(sub)) {
            return Err(EntraError::new(
                "invalid_client",
                700213,
                format!("No matching federated identity record found for presented assertion subject '{sub}'."),
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
        Ok(())
    }

    /// Verifies an On-Behalf-Of user assertion: our token, for this client, with a user in it.
    pub(crate) fn check_user_assertion(&self, assertion: &str, client: &ClientApp) -> Result<Value, EntraError> {
        let claims = self.verify_own(assertion).map_err(|p| match p {
            AssertionProblem::Expired => {
                EntraError::new("invalid_grant", 500133, "Assertion is not within its valid time range.")
            }
            AssertionProblem::Signature => {
                EntraError::new("invalid_grant", 50013, "Assertion failed signature validation.")
            }
            AssertionProblem::Malformed => {
                EntraError::new("invalid_request", 50027, "JWT token is invalid or malformed.")
            }
        })?;
        if !self.is_own_issuer(&claims) {
            return Err(EntraError::new(
                "invalid_grant",
                50013,
                "Assertion failed signature validation. The issuer is not trusted.",
            ));
        }
        let aud = claims["aud"].as_str().unwrap_or_default();
        let for_this_client =
            self.0.dir.resource(aud).is_some_and(|r| r.client_id.eq_ignore_ascii_case(&client.client_id));
        if !for_this_client {
            return Err(EntraError::new(
                "invalid_grant",
                50013,
                "Assertion failed signature validation. [Reason - The provided audience does not match the client presenting the assertion.]",
            ));
        }
        if claims.get("scp").is_none() {
            return Err(EntraError::new(
                "invalid_grant",
                50013,
                "Assertion is an application token: On-Behalf-Of needs a user's token.",
            ));
        }
        Ok(claims)
    }
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
