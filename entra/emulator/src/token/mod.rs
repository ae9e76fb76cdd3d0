//! The v2 token endpoint: authorization code (+ PKCE), refresh token (rotating), On-Behalf-Of,
//! client credentials and device code.

mod client_auth;

use std::collections::HashMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use entra_manifest::User;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::claims::{self, AccessClaims, ClientAuth, Subject, client_info, now, random_id};
use crate::directory::{ClientApp, ScopeRequest};
use crate::error::EntraError;
use crate::state::Emulator;
use crate::store::{DeviceState, RefreshGrant};

const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const DEVICE_CODE: &str = "urn:ietf:params:oauth:grant-type:device_code";

type Params = HashMap<String, String>;

pub async fn token(
    State(emulator): State<Emulator>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = match emulator.tenant(&tenant) {
        Ok(()) => handle(&emulator, &headers, &body),
        Err(e) => Err(e),
    };
    match result {
        Ok(body) => {
            let mut response = Json(body).into_response();
            response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(e) => {
            emulator.count(|c| &c.refused);
            e.into_response()
        }
    }
}

fn parse_form(body: &[u8]) -> Result<Params, EntraError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body).map_err(|_| {
        EntraError::new("invalid_request", 9002313, "Invalid request. Request is malformed or invalid.")
    })?;
    let mut params = Params::new();
    for (k, v) in pairs {
        if params.insert(k.clone(), v).is_some() {
            return Err(EntraError::new(
                "invalid_request",
                9002313,
                format!("Invalid request. The parameter '{k}' is duplicated."),
            ));
        }
    }
    Ok(params)
}

fn required<'p>(params: &'p Params, name: &str) -> Result<&'p str, EntraError> {
    params.get(name).map(String::as_str).filter(|v| !v.is_empty()).ok_or_else(|| EntraError::missing_parameter(name))
}

fn handle(emulator: &Emulator, headers: &HeaderMap, body: &[u8]) -> Result<Value, EntraError> {
    let params = parse_form(body)?;
    match required(&params, "grant_type")? {
        "authorization_code" => authorization_code(emulator, &params, headers),
        "refresh_token" => refresh_token(emulator, &params, headers),
        JWT_BEARER => on_behalf_of(emulator, &params, headers),
        "client_credentials" => client_credentials(emulator, &params, headers),
        DEVICE_CODE => device_code(emulator, &params, headers),
        other => Err(EntraError::new(
            "unsupported_grant_type",
            70003,
            format!("The app requested an unsupported grant type '{other}'."),
        )),
    }
}

/// What a user-token response is made of.
struct Issue<'a> {
    client: &'a ClientApp,
    auth: ClientAuth,
    user: &'a User,
    scopes: ScopeRequest,
    /// The scope string to remember with a refresh token.
    scope_text: String,
    session_id: String,
    nonce: Option<String>,
    client_info: bool,
}

fn user_response(emulator: &Emulator, issue: Issue) -> Result<Value, EntraError> {
    let inner = &emulator.0;
    let tenant = &inner.dir.manifest.tenant;
    let lifetime = inner.config.token_lifetime.as_secs() as i64;
    let granted = inner.dir.grant(issue.client, &issue.scopes)?;
    let mut body = Map::new();
    let resource = issue.scopes.resource.clone();
    // Only OpenID scopes: Entra issues a token for Microsoft Graph; so does the emulator.
    let resource = resource.or_else(|| inner.dir.parse_scopes("https://graph.microsoft.com/User.Read").ok()?.resource);
    let mut scope_list: Vec<String> = Vec::new();
    if let Some(resource) = &resource {
        let granted = if granted.is_empty() { resource.scopes.clone() } else { granted };
        let roles = inner.dir.user_roles(issue.user, resource);
        let access = claims::access_token(
            &inner.issuers,
            tenant,
            lifetime,
            &AccessClaims {
                subject: Subject::User(issue.user),
                client_id: &issue.client.client_id,
                client_auth: issue.auth,
                resource,
                scopes: &granted,
                roles: &roles,
                session_id: Some(&issue.session_id),
            },
        );
        body.insert("access_token".into(), json!(emulator.sign(&access).map_err(internal)?));
        scope_list = resource.full_scopes(&granted);
    }
    scope_list.extend(issue.scopes.oidc.iter().cloned());
    body.insert("token_type".into(), json!("Bearer"));
    body.insert("scope".into(), json!(scope_list.join(" ")));
    body.insert("expires_in".into(), json!(lifetime));
    body.insert("ext_expires_in".into(), json!(lifetime));
    if issue.scopes.has("openid") {
        let id = claims::id_token(
            &inner.issuers,
            tenant,
            lifetime,
            issue.user,
            &issue.client.client_id,
            issue.nonce.as_deref(),
            &issue.session_id,
        );
        body.insert("id_token".into(), json!(emulator.sign(&id).map_err(internal)?));
    }
    if issue.scopes.has("offline_access") {
        let refresh = random_id(64);
        inner.store.refresh_tokens.insert(
            refresh.clone(),
            RefreshGrant {
                client_id: issue.client.client_id.clone(),
                user_oid: issue.user.oid.clone(),
                scope: issue.scope_text,
                session_id: issue.session_id,
                expires_at: now() + inner.config.refresh_token_lifetime.as_secs() as i64,
            },
        );
        body.insert("refresh_token".into(), json!(refresh));
    }
    if issue.client_info {
        body.insert("client_info".into(), json!(client_info(issue.user, tenant)));
    }
    Ok(Value::Object(body))
}

fn internal(e: anyhow::Error) -> EntraError {
    tracing::error!(error = %e, "cannot sign a token");
    EntraError::new("temporarily_unavailable", 50000, "There was an error issuing a token.")
}

fn wants_client_info(params: &Params) -> bool {
    params.get("client_info").is_some_and(|v| v == "1")
}

fn authorization_code(emulator: &Emulator, params: &Params, headers: &HeaderMap) -> Result<Value, EntraError> {
    let (client, auth) = emulator.authenticate_client(params, headers)?;
    let code = required(params, "code")?;
    let store = &emulator.0.store;
    let Some((grant, expired)) = store.codes.lookup(code) else {
        return Err(EntraError::invalid_grant(
            "The provided authorization code is invalid. Send a new interactive authorization request for this user and resource.",
        ));
    };
    if expired {
        return Err(EntraError::new(
            "invalid_grant",
            70008,
            "The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.",
        ));
    }
    // Mark redeemed first, atomically: two concurrent redemptions cannot both succeed.
    let first_use = store.codes.update(code, |c| !std::mem::replace(&mut c.redeemed, true)).unwrap_or(false);
    if !first_use {
        return Err(EntraError::new(
            "invalid_grant",
            54005,
            "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.",
        ));
    }
    if !grant.client_id.eq_ignore_ascii_case(&client.client_id) {
        return Err(EntraError::invalid_grant("The authorization code was issued to a different client."));
    }
    if params.get("redirect_uri").map(String::as_str) != Some(grant.redirect_uri.as_str()) {
        return Err(EntraError::new(
            "invalid_grant",
            500112,
            "The reply address does not match the reply address provided when requesting the authorization code.",
        ));
    }
    if let Some(challenge) = &grant.code_challenge {
        let verifier = params.get("code_verifier").ok_or_else(|| EntraError::missing_parameter("code_verifier"))?;
        if URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) != *challenge {
            return Err(EntraError::new(
                "invalid_grant",
                50148,
                "The code_verifier does not match the code_challenge supplied in the authorization request for PKCE.",
            ));
        }
    }
    let user = emulator
        .0
        .dir
        .user_by_oid(&grant.user_oid)
        .ok_or_else(|| EntraError::invalid_grant("The user no longer exists."))?;
    // The token request may narrow the scope; it is the authorization request's otherwise.
    let scope_text = params.get("scope").cloned().filter(|s| !s.is_empty()).unwrap_or_else(|| grant.scope.clone());
    let mut scopes = emulator.0.dir.parse_scopes(&scope_text)?;
    // OpenID scopes consented at authorize stay in effect (Entra returns the ID token anyway).
    for oidc in emulator.0.dir.parse_scopes(&grant.scope)?.oidc {
        if !scopes.oidc.contains(&oidc) {
            scopes.oidc.push(oidc);
        }
    }
    let response = user_response(
        emulator,
        Issue {
            client: &client,
            auth,
            user,
            scopes,
            scope_text: grant.scope.clone(),
            session_id: grant.session_id.clone(),
            nonce: grant.nonce.clone(),
            client_info: wants_client_info(params),
        },
    )?;
    emulator.count(|c| &c.authorization_code);
    Ok(response)
}

fn refresh_token(emulator: &Emulator, params: &Params, headers: &HeaderMap) -> Result<Value, EntraError> {
    let (client, auth) = emulator.authenticate_client(params, headers)?;
    let token = required(params, "refresh_token")?;
    let store = &emulator.0.store;
    let Some((grant, expired)) = store.refresh_tokens.lookup(token) else {
        return Err(EntraError::invalid_grant(
            "The refresh token is invalid or was already used (refresh tokens rotate: use the one from the latest response).",
        ));
    };
    if expired {
        store.refresh_tokens.remove(token);
        return Err(EntraError::new(
            "invalid_grant",
            700082,
            "The refresh token has expired due to inactivity. The token was issued and was inactive for too long.",
        ));
    }
    if !grant.client_id.eq_ignore_ascii_case(&client.client_id) {
        return Err(EntraError::invalid_grant("The refresh token was issued to a different client."));
    }
    // Rotation: this token is spent whatever happens next.
    if store.refresh_tokens.remove(token).is_none() {
        return Err(EntraError::invalid_grant("The refresh token was already used."));
    }
    let user = emulator
        .0
        .dir
        .user_by_oid(&grant.user_oid)
        .ok_or_else(|| EntraError::invalid_grant("The user no longer exists."))?;
    let scope_text = params.get("scope").cloned().filter(|s| !s.is_empty()).unwrap_or_else(|| grant.scope.clone());
    let mut scopes = emulator.0.dir.parse_scopes(&scope_text)?;
    if !scopes.has("offline_access") {
        // A refresh token keeps its offline access: the response carries the next one.
        scopes.oidc.push("offline_access".into());
    }
    let response = user_response(
        emulator,
        Issue {
            client: &client,
            auth,
            user,
            scopes,
            scope_text: grant.scope.clone(),
            session_id: grant.session_id.clone(),
            nonce: None,
            client_info: wants_client_info(params),
        },
    )?;
    emulator.count(|c| &c.refresh_token);
    Ok(response)
}

fn on_behalf_of(emulator: &Emulator, params: &Params, headers: &HeaderMap) -> Result<Value, EntraError> {
    let (client, auth) = emulator.authenticate_client(params, headers)?;
    if auth == ClientAuth::Public {
        return Err(EntraError::new(
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        ));
    }
    if params.get("requested_token_use").map(String::as_str) != Some("on_behalf_of") {
        return Err(EntraError::new(
            "invalid_request",
            90014,
            "The request body must contain the following parameter: 'requested_token_use' with the value 'on_behalf_of'.",
        ));
    }
    let assertion = required(params, "assertion")?;
    let claims = emulator.check_user_assertion(assertion, &client)?;
    let oid = claims["oid"].as_str().unwrap_or_default();
    let user =
        emulator.0.dir.user_by_oid(oid).ok_or_else(|| {
            EntraError::new("invalid_grant", 50034, "The user account does not exist in the directory.")
        })?;
    let scopes = emulator.0.dir.parse_scopes(required(params, "scope")?)?;
    let resource =
        scopes.resource.clone().ok_or_else(|| EntraError::invalid_scope("On-Behalf-Of needs a resource scope."))?;
    let granted = emulator.0.dir.grant(&client, &scopes)?;
    let inner = &emulator.0;
    let lifetime = inner.config.token_lifetime.as_secs() as i64;
    let roles = inner.dir.user_roles(user, &resource);
    let access = claims::access_token(
        &inner.issuers,
        &inner.dir.manifest.tenant,
        lifetime,
        &AccessClaims {
            subject: Subject::User(user),
            client_id: &client.client_id,
            client_auth: auth,
            resource: &resource,
            scopes: &granted,
            roles: &roles,
            session_id: claims["sid"].as_str(),
        },
    );
    let body = json!({
        "token_type": "Bearer",
        "scope": resource.full_scopes(&granted).join(" "),
        "expires_in": lifetime,
        "ext_expires_in": lifetime,
        "access_token": emulator.sign(&access).map_err(internal)?,
    });
    emulator.count(|c| &c.on_behalf_of);
    Ok(body)
}

fn client_credentials(emulator: &Emulator, params: &Params, headers: &HeaderMap) -> Result<Value, EntraError> {
    let (client, auth) = emulator.authenticate_client(params, headers)?;
    if auth == ClientAuth::Public {
        return Err(EntraError::new(
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        ));
    }
    let scope = required(params, "scope")?;
    let scopes = emulator.0.dir.parse_scopes(scope)?;
    let resource = match (&scopes.resource, scopes.is_default() && scopes.oidc.is_empty()) {
        (Some(resource), true) => resource.clone(),
        _ => {
            return Err(EntraError::new(
                "invalid_scope",
                1002012,
                format!(
                    "The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."
                ),
            ));
        }
    };
    let inner = &emulator.0;
    let lifetime = inner.config.token_lifetime.as_secs() as i64;
    // No app role is granted to applications in the manifest: the token carries no roles,
    // which is exactly what lets resources tell (and refuse) app-only callers.
    let access = claims::access_token(
        &inner.issuers,
        &inner.dir.manifest.tenant,
        lifetime,
        &AccessClaims {
            subject: Subject::App { object_id: &client.object_id },
            client_id: &client.client_id,
            client_auth: auth,
            resource: &resource,
            scopes: &[],
            roles: &[],
            session_id: None,
        },
    );
    let body = json!({
        "token_type": "Bearer",
        "expires_in": lifetime,
        "ext_expires_in": lifetime,
        "access_token": emulator.sign(&access).map_err(internal)?,
    });
    emulator.count(|c| &c.client_credentials);
    Ok(body)
}

fn device_code(emulator: &Emulator, params: &Params, headers: &HeaderMap) -> Result<Value, EntraError> {
    let (client, auth) = emulator.authenticate_client(params, headers)?;
    let code = required(params, "device_code")?;
    let store = &emulator.0.store;
    let Some((grant, expired)) = store.devices.lookup(code) else {
        return Err(EntraError::invalid_grant("The provided device code is invalid."));
    };
    if expired {
        store.devices.remove(code);
        return Err(EntraError::new("expired_token", 70019, "Verification code expired."));
    }
    if !grant.client_id.eq_ignore_ascii_case(&client.client_id) {
        return Err(EntraError::invalid_grant("The device code was issued to a different client."));
    }
    match grant.state {
        DeviceState::Pending => Err(EntraError::new(
            "authorization_pending",
            70016,
            "OAuth 2.0 device flow error. Authorization is pending. Continue polling.",
        )),
        DeviceState::Declined => {
            store.devices.remove(code);
            Err(EntraError::new("authorization_declined", 70000, "The end user denied the authorization request."))
        }
        DeviceState::Approved { user_oid, session_id } => {
            if store.devices.remove(code).is_none() {
                return Err(EntraError::invalid_grant("The device code was already redeemed."));
            }
            let user = emulator
                .0
                .dir
                .user_by_oid(&user_oid)
                .ok_or_else(|| EntraError::invalid_grant("The user no longer exists."))?;
            let scopes = emulator.0.dir.parse_scopes(&grant.scope)?;
            let response = user_response(
                emulator,
                Issue {
                    client: &client,
                    auth,
                    user,
                    scopes,
                    scope_text: grant.scope.clone(),
                    session_id,
                    nonce: None,
                    client_info: wants_client_info(params),
                },
            )?;
            emulator.count(|c| &c.device_code);
            Ok(response)
        }
    }
}
