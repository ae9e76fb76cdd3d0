//! Who is calling: the typed result of a validated token.

use serde::{Deserialize, Serialize};

use super::error::ValidationError;
use super::issuers::Issuers;
use super::jws::Registered;
use crate::hop::{Act, AgentActor, Decision, Hop, How, TokenHeader, TokenSummary, agent_of};

/// Entra access-token version (`ver` claim), chosen by the *resource's* manifest entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TokenVersion {
    /// `ver: "1.0"`, issuer `https://sts.windows.net/<tid>/`, `appid`, `upn`.
    #[serde(rename = "1.0")]
    V1,
    /// `ver: "2.0"`, issuer `https://login.microsoftonline.com/<tid>/v2.0`, `azp`.
    #[serde(rename = "2.0")]
    V2,
}

impl TokenVersion {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenVersion::V1 => "1.0",
            TokenVersion::V2 => "2.0",
        }
    }
}

/// Whether a user is present: delegated tokens carry `scp`, app-only tokens do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CallerKind {
    /// A user, through a client acting on their behalf (`scp` present).
    User,
    /// An application acting as itself (client credentials or managed identity): no user.
    App,
}

/// A validated caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Caller {
    pub kind: CallerKind,
    /// Object id: the user's, or the service principal's for app-only tokens.
    pub oid: String,
    pub tid: String,
    pub name: Option<String>,
    /// `preferred_username` (v2) or `upn` / `unique_name` (v1).
    pub preferred_username: Option<String>,
    /// Delegated scopes (`scp`, space-separated in the token).
    pub scopes: Vec<String>,
    /// App roles (`roles`): for a user, roles assigned to them; for an app, roles granted to it.
    pub roles: Vec<String>,
    /// The client the token was issued to: `azp` (v2) or `appid` (v1).
    pub client_id: String,
    pub version: TokenVersion,
    /// Entra's unique token identifier (`uti`).
    pub token_id: String,
    pub audience: String,
    pub issuer: String,
    /// Seconds since the Unix epoch.
    pub expires_at: i64,
    /// The token's JOSE header (`alg`, `typ`, `kid`), for the hop trace.
    #[serde(default)]
    pub header: TokenHeader,
    /// The agent acting for the user, when the token names one (Microsoft Entra Agent ID: the
    /// agent identity is `client_id` when `xms_par_app_azp` is present). For the record and for
    /// policies about agents; never a grant: scopes and roles decide.
    #[serde(default)]
    pub agent: Option<AgentActor>,
    /// Conditional Access authentication contexts the user satisfied (`acrs`: "the
    /// authentication context IDs of the operations that the bearer is eligible to perform",
    /// access token claims reference). Read only from the validated token: a step-up is proof
    /// only here, never in a header or a request body.
    #[serde(default)]
    pub acrs: Vec<String>,
}

impl Claims {
    pub(super) fn registered(&self) -> Registered<'_> {
        Registered { exp: self.exp, nbf: self.nbf, iss: self.iss.as_deref(), aud: self.aud.as_deref() }
    }
}

impl Caller {
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    pub fn is_user(&self) -> bool {
        self.kind == CallerKind::User
    }

    /// Whether an agent acts in this call (directly, or before a middle tier).
    pub fn is_agent(&self) -> bool {
        self.agent.is_some()
    }

    /// Whether the token carries authentication context `id` (`acrs`).
    pub fn has_auth_context(&self, id: &str) -> bool {
        self.acrs.iter().any(|a| a == id)
    }

    /// What this hop saw, for the hop trace.
    pub fn summary(&self) -> TokenSummary {
        TokenSummary {
            aud: self.audience.clone(),
            iss: self.issuer.clone(),
            ver: self.version.as_str().to_string(),
            scp: self.scopes.clone(),
            roles: self.roles.clone(),
            client_id: self.client_id.clone(),
            oid: self.oid.clone(),
            name: self.name.clone(),
            tid: self.tid.clone(),
            exp: self.expires_at,
            token_id_suffix: crate::hop::id_suffix(&self.token_id),
            header: Some(self.header.clone()),
            agent: self.agent.clone(),
            acrs: self.acrs.clone(),
        }
    }

    /// This hop's trace record.
    pub fn hop(&self, service: &str, how: How, decision: Decision, elapsed: std::time::Duration) -> Hop {
        Hop {
            service: service.to_string(),
            token: self.summary(),
            how,
            decision,
            elapsed_ms: elapsed.as_secs_f64() * 1000.0,
        }
    }

    /// From claims whose signature and registered claims were checked.
    pub(super) fn from_claims(
        c: Claims,
        header: TokenHeader,
        tenant_id: &str,
        issuers: &Issuers,
    ) -> Result<Caller, ValidationError> {
        let (Some(iss), Some(aud), Some(exp)) = (c.iss, c.aud, c.exp) else {
            return Err(ValidationError::MissingClaim);
        };
        if !c.tid.eq_ignore_ascii_case(tenant_id) {
            return Err(ValidationError::WrongTenant);
        }
        // The issuer was already checked against the trusted set; it must also match the
        // version the token claims, or a v1 token could pass where only v2 is configured.
        let version = match c.ver.as_deref() {
            Some("1.0") if issuers.v1.as_deref() == Some(iss.as_str()) => TokenVersion::V1,
            Some("2.0") if issuers.v2.as_deref() == Some(iss.as_str()) => TokenVersion::V2,
            _ => return Err(ValidationError::VersionMismatch),
        };
        let client_id = match version {
            TokenVersion::V1 => c.appid,
            TokenVersion::V2 => c.azp,
        }
        .ok_or(ValidationError::MissingClaim)?;
        let oid = c.oid.ok_or(ValidationError::MissingClaim)?;
        let agent = agent_of(&client_id, c.xms_par_app_azp.as_deref(), c.act.as_ref());
        let scopes: Vec<String> = c
            .scp
            .as_deref()
            .map(|s| s.split(' ').filter(|s| !s.is_empty()).map(String::from).collect())
            .unwrap_or_default();
        // `idtyp: app` is Entra's explicit marker; the absence of `scp` is the rule it documents.
        let kind =
            if scopes.is_empty() || c.idtyp.as_deref() == Some("app") { CallerKind::App } else { CallerKind::User };
        Ok(Caller {
            kind,
            oid,
            tid: c.tid,
            name: c.name,
            preferred_username: c.preferred_username.or(c.upn).or(c.unique_name),
            scopes,
            roles: c.roles.unwrap_or_default(),
            client_id,
            version,
            token_id: c.uti.unwrap_or_default(),
            audience: aud,
            issuer: iss,
            expires_at: exp,
            header,
            agent,
            acrs: c.acrs.unwrap_or_default(),
        })
    }
}

/// The Entra access-token claims this crate reads (v1 and v2 shapes).
#[derive(Deserialize)]
pub(super) struct Claims {
    aud: Option<String>,
    iss: Option<String>,
    exp: Option<i64>,
    nbf: Option<i64>,
    tid: String,
    ver: Option<String>,
    oid: Option<String>,
    scp: Option<String>,
    roles: Option<Vec<String>>,
    azp: Option<String>,
    appid: Option<String>,
    idtyp: Option<String>,
    name: Option<String>,
    preferred_username: Option<String>,
    upn: Option<String>,
    unique_name: Option<String>,
    uti: Option<String>,
    /// Present only in tokens issued to an agent identity: its blueprint's app id.
    xms_par_app_azp: Option<String>,
    act: Option<Act>,
    acrs: Option<Vec<String>>,
}
