//! Token responses in Entra's shape: for a signed-in user (access, ID and refresh token, as the
//! scopes ask), and the access-token-only answers of On-Behalf-Of and client credentials.

use entra_manifest::User;
use serde_json::{Map, Value, json};
use service_kit::clock::unix_now_i64;

use crate::claims::{self, AccessClaims, ClientAuth, Subject, client_info};
use crate::codes;
use crate::directory::{ClientApp, Resource, ScopeRequest};
use crate::error::EntraError;
use crate::state::Emulator;
use crate::store::RefreshGrant;

/// What a user-token response is made of.
pub struct Issue<'a> {
    pub client: &'a ClientApp,
    pub auth: ClientAuth,
    pub user: &'a User,
    pub scopes: ScopeRequest,
    /// The scope string to remember with a refresh token.
    pub scope_text: String,
    pub session_id: String,
    pub nonce: Option<String>,
    pub client_info: bool,
    /// Authentication contexts the user stepped up for (`acrs`), and when.
    pub acrs: Vec<String>,
    pub stepped_up_at: i64,
}

/// The response to a user's grant (authorization code, refresh token, device code).
pub fn for_user(emulator: &Emulator, issue: Issue) -> Result<Value, EntraError> {
    let inner = &emulator.0;
    let tenant = &inner.dir.manifest.tenant;
    let lifetime = emulator.token_lifetime();
    let granted = inner.dir.grant(issue.client, &issue.scopes)?;
    // Only OpenID scopes: Entra issues a token for Microsoft Graph; so does the emulator.
    let resource = issue.scopes.resource.clone().unwrap_or_else(Resource::graph);
    let granted = if granted.is_empty() { resource.scopes.clone() } else { granted };
    let roles = inner.dir.user_roles(issue.user, &resource);
    let access = emulator.access_claims(&AccessClaims {
        subject: Subject::User(issue.user),
        client_id: &issue.client.client_id,
        client_auth: issue.auth,
        resource: &resource,
        scopes: &granted,
        roles: &roles,
        session_id: Some(&issue.session_id),
        agent: None,
        acrs: &issue.acrs,
    })?;
    let mut body = Map::new();
    body.insert("access_token".into(), json!(sign(emulator, &access)?));
    let mut scope_list = resource.full_scopes(&granted);
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
        )?;
        body.insert("id_token".into(), json!(sign(emulator, &id)?));
    }
    if issue.scopes.has("offline_access") {
        let refresh = codes::refresh_token()?;
        inner.store.refresh_tokens.insert(
            refresh.clone(),
            RefreshGrant {
                client_id: issue.client.client_id.clone(),
                user_oid: issue.user.oid.clone(),
                scope: issue.scope_text,
                session_id: issue.session_id,
                expires_at: unix_now_i64() + inner.config.refresh_token_lifetime.as_secs() as i64,
                acrs: issue.acrs,
                stepped_up_at: issue.stepped_up_at,
            },
        );
        body.insert("refresh_token".into(), json!(refresh));
    }
    if issue.client_info {
        body.insert("client_info".into(), json!(client_info(issue.user, tenant)));
    }
    Ok(Value::Object(body))
}

/// A response with an access token only; `scope` lists the granted scopes where the grant
/// names them (On-Behalf-Of), and is absent where it does not (client credentials).
pub fn access_only(emulator: &Emulator, access: &Value, scope: Option<String>) -> Result<Value, EntraError> {
    let lifetime = emulator.token_lifetime();
    let mut body = json!({
        "token_type": "Bearer",
        "expires_in": lifetime,
        "ext_expires_in": lifetime,
        "access_token": sign(emulator, access)?,
    });
    if let (Some(scope), Some(map)) = (scope, body.as_object_mut()) {
        map.insert("scope".into(), json!(scope));
    }
    Ok(body)
}

fn sign(emulator: &Emulator, claims: &Value) -> Result<String, EntraError> {
    emulator.sign(claims).map_err(EntraError::server_error)
}

/// The user a stored grant was issued to, if they still exist.
pub fn user<'e>(emulator: &'e Emulator, oid: &str) -> Result<&'e User, EntraError> {
    emulator.0.dir.user_by_oid(oid).ok_or_else(|| EntraError::invalid_grant("The user no longer exists."))
}

/// Refuses a grant (`what`: "authorization code", ...) redeemed by another client than the
/// one it was issued to.
pub fn check_client(issued_to: &str, client: &ClientApp, what: &str) -> Result<(), EntraError> {
    if issued_to.eq_ignore_ascii_case(&client.client_id) {
        Ok(())
    } else {
        Err(EntraError::invalid_grant(format!("The {what} was issued to a different client.")))
    }
}
