//! Signing keys: RSA 2048, generated at start, rotated on demand. After a rotation the previous
//! key stays in the JWKS (and stays valid for verifying), as Entra overlaps keys during rollover.

use std::sync::{Arc, RwLock, RwLockReadGuard};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub struct SigningKey {
    pair: KeyPair,
    pub kid: String,
    n: String,
    e: String,
    decoding: DecodingKey,
}

impl SigningKey {
    pub fn generate() -> anyhow::Result<Self> {
        let pair = KeyPair::generate(KeySize::Rsa2048).map_err(|_| anyhow::anyhow!("RSA key generation failed"))?;
        // A PKCS#8 round trip checks the key is usable before it signs anything.
        let pkcs8 = pair.as_der().map_err(|_| anyhow::anyhow!("cannot encode the RSA key"))?;
        let pair = KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(|e| anyhow::anyhow!("RSA key rejected: {e}"))?;
        let public = pair.public_key();
        let n = public.modulus().big_endian_without_leading_zero().to_vec();
        let e = public.exponent().big_endian_without_leading_zero().to_vec();
        let (n, e) = (URL_SAFE_NO_PAD.encode(n), URL_SAFE_NO_PAD.encode(e));
        // RFC 7638 thumbprint: stable, and unguessable enough to tell keys apart.
        let thumbprint = Sha256::digest(format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#));
        let kid = URL_SAFE_NO_PAD.encode(&thumbprint[..20]);
        let decoding = DecodingKey::from_rsa_components(&n, &e)?;
        Ok(SigningKey { pair, kid, n, e, decoding })
    }

    /// The public key as a JWK, without emulator-specific members.
    #[cfg(feature = "testing")]
    pub fn public_jwk(&self) -> Value {
        json!({ "kty": "RSA", "kid": self.kid, "n": self.n, "e": self.e })
    }

    fn jwk(&self, issuer: &str) -> Value {
        json!({ "kty": "RSA", "use": "sig", "alg": "RS256", "kid": self.kid, "n": self.n, "e": self.e, "issuer": issuer })
    }

    /// Signs `header.payload` and returns the compact JWT.
    pub fn sign_parts(&self, header: &Value, claims: &Value) -> anyhow::Result<String> {
        let encode = |v: &Value| -> anyhow::Result<String> { Ok(URL_SAFE_NO_PAD.encode(serde_json::to_vec(v)?)) };
        let message = format!("{}.{}", encode(header)?, encode(claims)?);
        let mut signature = vec![0; self.pair.public_modulus_len()];
        self.pair
            .sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), message.as_bytes(), &mut signature)
            .map_err(|_| anyhow::anyhow!("RSA signing failed"))?;
        Ok(format!("{message}.{}", URL_SAFE_NO_PAD.encode(signature)))
    }
}

pub struct KeySet {
    inner: RwLock<Keys>,
}

struct Keys {
    current: Arc<SigningKey>,
    previous: Option<Arc<SigningKey>>,
}

/// Why a token did not verify with these keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unverified {
    Malformed,
    Signature,
    /// Expired, or not valid yet.
    Expired,
}

#[derive(Serialize)]
pub struct Rotation {
    pub current_kid: String,
    pub previous_kid: String,
}

impl KeySet {
    pub fn generate() -> anyhow::Result<Self> {
        Ok(KeySet { inner: RwLock::new(Keys { current: Arc::new(SigningKey::generate()?), previous: None }) })
    }

    fn read(&self) -> RwLockReadGuard<'_, Keys> {
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }

    pub fn current(&self) -> Arc<SigningKey> {
        self.read().current.clone()
    }

    /// The keys tokens may be verified with: the current one and the previous one.
    pub fn verification_keys(&self) -> Vec<Arc<SigningKey>> {
        let keys = self.read();
        std::iter::once(keys.current.clone()).chain(keys.previous.clone()).collect()
    }

    pub fn jwks(&self, issuer: &str) -> Value {
        let keys: Vec<Value> = self.verification_keys().iter().map(|k| k.jwk(issuer)).collect();
        json!({ "keys": keys })
    }

    /// New signing key; the old one moves to `previous` (and the one before it is dropped).
    pub fn rotate(&self) -> anyhow::Result<Rotation> {
        let fresh = Arc::new(SigningKey::generate()?);
        let mut keys = self.inner.write().unwrap_or_else(|p| p.into_inner());
        let old = std::mem::replace(&mut keys.current, fresh);
        keys.previous = Some(old.clone());
        Ok(Rotation { current_kid: keys.current.kid.clone(), previous_kid: old.kid.clone() })
    }

    /// Verifies a token signed with one of these keys (current or previous) and returns its
    /// claims. Issuer and audience are the caller's business.
    pub fn verify(&self, token: &str) -> Result<Value, Unverified> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| Unverified::Malformed)?;
        if header.alg != Algorithm::RS256 {
            return Err(Unverified::Signature);
        }
        let keys = self.verification_keys();
        let key = keys.iter().find(|k| header.kid.as_deref() == Some(k.kid.as_str())).ok_or(Unverified::Signature)?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.validate_aud = false;
        validation.validate_nbf = true;
        validation.leeway = 60;
        match jsonwebtoken::decode::<Value>(token, &key.decoding, &validation) {
            Ok(data) => Ok(data.claims),
            Err(e) => match e.kind() {
                ErrorKind::ExpiredSignature | ErrorKind::ImmatureSignature => Err(Unverified::Expired),
                ErrorKind::InvalidSignature => Err(Unverified::Signature),
                _ => Err(Unverified::Malformed),
            },
        }
    }

    /// Signs claims with the current key, with Entra's header (`typ`, `alg`, `kid`, `x5t`).
    pub fn sign(&self, claims: &Value) -> anyhow::Result<String> {
        let key = self.current();
        let header = json!({ "typ": "JWT", "alg": "RS256", "kid": key.kid, "x5t": key.kid });
        key.sign_parts(&header, claims)
    }
}
