//! OpenID Connect ID tokens, as a web app validates them after sign-in: same keys and issuer
//! rules as access tokens, audience = the app's own client id, and the `nonce` it sent.

use serde::{Deserialize, Serialize};

use super::error::ValidationError;
use super::issuers::Issuers;
use super::jws::Registered;

/// Who signed in, from a validated ID token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdToken {
    pub oid: String,
    pub tid: String,
    /// Pairwise subject: stable per user and app.
    pub sub: String,
    pub name: Option<String>,
    pub preferred_username: Option<String>,
    /// The IdP session id (`sid`), for front-channel logout.
    pub sid: Option<String>,
    /// Seconds since the Unix epoch.
    pub expires_at: i64,
}

#[derive(Deserialize)]
pub(super) struct IdClaims {
    iss: Option<String>,
    aud: Option<String>,
    exp: Option<i64>,
    nbf: Option<i64>,
    tid: String,
    sub: String,
    oid: Option<String>,
    nonce: Option<String>,
    name: Option<String>,
    preferred_username: Option<String>,
    sid: Option<String>,
}

impl IdClaims {
    pub(super) fn registered(&self) -> Registered<'_> {
        Registered { exp: self.exp, nbf: self.nbf, iss: self.iss.as_deref(), aud: self.aud.as_deref() }
    }
}

impl IdToken {
    /// From claims whose signature and registered claims were checked.
    pub(super) fn from_claims(
        c: IdClaims,
        tenant_id: &str,
        issuers: &Issuers,
        nonce: &str,
    ) -> Result<IdToken, ValidationError> {
        let Some(expires_at) = c.exp else {
            return Err(ValidationError::MissingClaim);
        };
        if !c.tid.eq_ignore_ascii_case(tenant_id) {
            return Err(ValidationError::WrongTenant);
        }
        // ID tokens from the v2 endpoint always carry the v2 issuer.
        if c.iss.is_none() || issuers.v2 != c.iss {
            return Err(ValidationError::WrongIssuer);
        }
        if c.nonce.as_deref() != Some(nonce) {
            return Err(ValidationError::NonceMismatch);
        }
        Ok(IdToken {
            oid: c.oid.ok_or(ValidationError::MissingClaim)?,
            tid: c.tid,
            sub: c.sub,
            name: c.name,
            preferred_username: c.preferred_username,
            sid: c.sid,
            expires_at,
        })
    }
}
