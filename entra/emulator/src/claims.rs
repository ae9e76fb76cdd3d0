//! Token contents in Entra's shapes: v1 and v2 access tokens (delegated and app-only) and v2
//! ID tokens. Which shape a resource gets is its manifest `access_token_version`, as in Entra.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use entra_manifest::{Tenant, User};
use serde_json::{Map, Value, json};
use service_kit::clock::unix_now_i64;
use service_kit::secret::{self, RandomError};
use sha2::{Digest, Sha256};

use crate::directory::Resource;

/// Issuer identifiers for the tenant, derived from the emulator's public URL.
#[derive(Debug, Clone)]
pub struct Issuers {
    /// `{public}/{tid}/`: the emulator's counterpart of `https://sts.windows.net/{tid}/`.
    pub v1: String,
    /// `{public}/{tid}/v2.0`: the counterpart of `https://login.microsoftonline.com/{tid}/v2.0`.
    pub v2: String,
}

impl Issuers {
    pub fn new(public_url: &str, tenant_id: &str) -> Self {
        let base = public_url.trim_end_matches('/');
        Issuers { v1: format!("{base}/{tenant_id}/"), v2: format!("{base}/{tenant_id}/v2.0") }
    }

    pub fn for_version(&self, version: u8) -> &str {
        if version == 1 { &self.v1 } else { &self.v2 }
    }
}

/// How the client authenticated: Entra's `azpacr` / `appidacr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    Public,
    Secret,
    Assertion,
}

impl ClientAuth {
    fn acr(self) -> &'static str {
        match self {
            ClientAuth::Public => "0",
            ClientAuth::Secret => "1",
            ClientAuth::Assertion => "2",
        }
    }
}

/// Who a token is about.
#[derive(Debug, Clone, Copy)]
pub enum Subject<'a> {
    /// A user, signed in through `client` (delegated token: `scp`).
    User(&'a User),
    /// An application acting as itself (app-only token: no `scp`, `idtyp: app`), by the object
    /// id of its service principal (or of the managed identity).
    App { object_id: &'a str },
}

/// An agent identity in a token (Microsoft Entra Agent ID).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Agent {
    /// The token is issued to an agent identity (`azp`/`appid` is its app id): Entra adds
    /// `xms_par_app_azp` (the blueprint's app id) and the facet claims ("Token claims reference
    /// for agents", learn.microsoft.com/entra/agent-id/agent-token-claims).
    Client { blueprint: String },
    /// A middle tier's On-Behalf-Of token for a user whose incoming token was an agent's. Entra's
    /// docs do not say what such a token carries; we keep the agent visible as the prior actor
    /// in RFC 8693's `act` claim (`sub` = the agent's app id), and `azp` stays the middle tier,
    /// so nothing mistakes the middle tier for an agent. docs/agent-identity.md says so.
    Upstream { agent_id: String, blueprint: String },
}

/// An access token to mint.
pub struct AccessClaims<'a> {
    pub subject: Subject<'a>,
    /// The client the token is issued to (`azp` / `appid`).
    pub client_id: &'a str,
    pub client_auth: ClientAuth,
    pub resource: &'a Resource,
    pub scopes: &'a [String],
    pub roles: &'a [String],
    /// Sign-in session id, when a browser session exists.
    pub session_id: Option<&'a str>,
    pub agent: Option<Agent>,
    /// Conditional Access authentication contexts satisfied (`acrs`), delegated tokens only.
    pub acrs: &'a [String],
}

impl<'a> AccessClaims<'a> {
    /// An app-only token for `resource`: no scopes, no roles (no app role is granted to
    /// applications in the manifest, which is what lets resources tell app-only callers apart).
    pub fn app(object_id: &'a str, client_id: &'a str, client_auth: ClientAuth, resource: &'a Resource) -> Self {
        AccessClaims {
            subject: Subject::App { object_id },
            client_id,
            client_auth,
            resource,
            scopes: &[],
            roles: &[],
            session_id: None,
            agent: None,
            acrs: &[],
        }
    }
}

/// Entra's `sub` is pairwise: the same user has a different `sub` for each app.
fn pairwise_sub(oid: &str, app_id: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(format!("{oid}:{app_id}")))[..43].to_string()
}

fn split_name(display: &str) -> (&str, &str) {
    display.split_once(' ').unwrap_or((display, ""))
}

pub fn access_token(
    issuers: &Issuers,
    tenant: &Tenant,
    lifetime_secs: i64,
    c: &AccessClaims,
) -> Result<Value, RandomError> {
    let iat = unix_now_i64();
    let v1 = c.resource.version == 1;
    let mut claims = Map::new();
    let mut put = |k: &str, v: Value| {
        claims.insert(k.to_string(), v);
    };
    put("aud", json!(c.resource.audience()));
    put("iss", json!(issuers.for_version(c.resource.version)));
    put("iat", json!(iat));
    put("nbf", json!(iat));
    put("exp", json!(iat + lifetime_secs));
    put("aio", json!(secret::urlsafe::<40>()?));
    put("rh", json!(format!("1.{}.", secret::urlsafe::<32>()?)));
    put("tid", json!(tenant.id));
    put("uti", json!(secret::urlsafe::<16>()?));
    put("ver", json!(if v1 { "1.0" } else { "2.0" }));
    if v1 {
        put("appid", json!(c.client_id));
        put("appidacr", json!(c.client_auth.acr()));
    } else {
        put("azp", json!(c.client_id));
        put("azpacr", json!(c.client_auth.acr()));
    }
    if !c.roles.is_empty() {
        put("roles", json!(c.roles));
    }
    match c.subject {
        Subject::User(user) => {
            let upn = user.upn(tenant);
            put("oid", json!(user.oid));
            put("sub", json!(pairwise_sub(&user.oid, c.client_id)));
            put("name", json!(user.display_name));
            put("scp", json!(c.scopes.join(" ")));
            if let Some(sid) = c.session_id {
                put("sid", json!(sid));
            }
            // "acrs: Indicates the authentication context IDs of the operations that the bearer
            // is eligible to perform" (access token claims reference).
            if !c.acrs.is_empty() {
                put("acrs", json!(c.acrs));
            }
            if v1 {
                let (given, family) = split_name(&user.display_name);
                put("acr", json!("1"));
                put("amr", json!(["pwd"]));
                put("given_name", json!(given));
                put("family_name", json!(family));
                put("ipaddr", json!("127.0.0.1"));
                put("upn", json!(upn));
                put("unique_name", json!(upn));
            } else {
                put("preferred_username", json!(upn));
            }
        }
        Subject::App { object_id } => {
            put("oid", json!(object_id));
            put("sub", json!(object_id));
            put("idtyp", json!("app"));
            if v1 {
                put("idp", json!(issuers.v1));
            }
        }
    }
    match &c.agent {
        Some(Agent::Client { blueprint }) => {
            put("xms_par_app_azp", json!(blueprint));
            // Facets are space-separated odd numbers; 11 marks an agent identity acting. The
            // docs' table of the other values is not something we could read in full: "3" (an
            // application) and the user's "1" are our choice. No service reads facets (Microsoft
            // warns against authorizing on them); they are here to be shown.
            put("xms_act_fct", json!("3 11"));
            if let Subject::User(_) = c.subject {
                put("xms_sub_fct", json!("1"));
                put("idtyp", json!("user"));
            }
        }
        Some(Agent::Upstream { agent_id, blueprint }) => {
            put("act", json!({ "sub": agent_id, "xms_par_app_azp": blueprint }));
        }
        None => {}
    }
    Ok(Value::Object(claims))
}

/// A v2 ID token for `user`, for `client_id`.
pub fn id_token(
    issuers: &Issuers,
    tenant: &Tenant,
    lifetime_secs: i64,
    user: &User,
    client_id: &str,
    nonce: Option<&str>,
    session_id: &str,
) -> Result<Value, RandomError> {
    let iat = unix_now_i64();
    let mut claims = json!({
        "aud": client_id,
        "iss": issuers.v2,
        "iat": iat,
        "nbf": iat,
        "exp": iat + lifetime_secs,
        "name": user.display_name,
        "oid": user.oid,
        "preferred_username": user.upn(tenant),
        "email": user.upn(tenant),
        "rh": format!("1.{}.", secret::urlsafe::<32>()?),
        "sid": session_id,
        "sub": pairwise_sub(&user.oid, client_id),
        "tid": tenant.id,
        "uti": secret::urlsafe::<16>()?,
        "ver": "2.0",
        "aio": secret::urlsafe::<40>()?,
    });
    if let (Some(nonce), Some(map)) = (nonce, claims.as_object_mut()) {
        map.insert("nonce".into(), json!(nonce));
    }
    Ok(claims)
}

/// MSAL's `client_info`: base64url of `{"uid": oid, "utid": tid}`.
pub fn client_info(user: &User, tenant: &Tenant) -> String {
    URL_SAFE_NO_PAD.encode(json!({ "uid": user.oid, "utid": tenant.id }).to_string())
}
