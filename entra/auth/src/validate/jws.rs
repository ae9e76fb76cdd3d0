//! Compact JWS as Entra signs its tokens: `header.payload.signature`, base64url, RS256 only.
//!
//! [`Jws::parse`] checks what costs nothing (size, shape, the header rules), so hostile input
//! is refused before any key lookup. [`Jws::verify`] then checks the RSASSA-PKCS1-v1_5 SHA-256
//! signature with a key parsed once when the JWKS was loaded: aws-lc keeps the key's Montgomery
//! setup, so each token pays for the RSA operation alone, and the payload is decoded once.

use aws_lc_rs::signature::{ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::error::ValidationError;
use super::issuers::Issuers;
use crate::hop::TokenHeader;
use crate::jwt;

/// Tokens longer than this are refused before any parsing. Entra access tokens are a few KB,
/// even with many groups; 16 KiB leaves room and bounds the work an attacker can cause.
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// A JWKS signing key, ready to verify RS256 signatures (2048 to 8192 bits).
pub(crate) type VerifyingKey = ParsedPublicKey;

/// Parses a JWK's base64url modulus and exponent; `None` if they do not form an RSA key.
pub(crate) fn verifying_key(n: &str, e: &str) -> Option<VerifyingKey> {
    let n = URL_SAFE_NO_PAD.decode(n).ok()?;
    let e = URL_SAFE_NO_PAD.decode(e).ok()?;
    RsaPublicKeyComponents { n: n.as_slice(), e: e.as_slice() }.to_parsed_public_key(&RSA_PKCS1_2048_8192_SHA256).ok()
}

/// The JOSE header fields this validator looks at; the rest are ignored.
#[derive(Deserialize)]
struct Header {
    alg: Option<String>,
    typ: Option<String>,
    kid: Option<String>,
    crit: Option<serde_json::Value>,
}

/// A token split into its parts, its header checked, its signature not yet.
pub(crate) struct Jws<'a> {
    pub kid: String,
    /// The header's `typ`, kept for the hop trace only.
    pub typ: Option<String>,
    /// `header.payload`: the bytes the signature covers.
    signed: &'a str,
    payload: &'a str,
    signature: &'a str,
}

impl<'a> Jws<'a> {
    pub fn parse(token: &'a str) -> Result<Self, ValidationError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(ValidationError::TooLarge);
        }
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(ValidationError::Malformed);
        };
        if header.is_empty() || payload.is_empty() {
            return Err(ValidationError::Malformed);
        }
        if signature.is_empty() {
            // An unsigned token (`alg: none` style) never gets near a key.
            return Err(ValidationError::UnsupportedAlgorithm);
        }
        let header_json = URL_SAFE_NO_PAD.decode(header).map_err(|_| ValidationError::Malformed)?;
        let parsed: Header = serde_json::from_slice(&header_json).map_err(|_| ValidationError::Malformed)?;
        if parsed.alg.as_deref() != Some("RS256") {
            return Err(ValidationError::UnsupportedAlgorithm);
        }
        // RFC 7515 §4.1.11: a recipient must reject extensions it does not understand.
        if parsed.crit.is_some() {
            return Err(ValidationError::CriticalHeader);
        }
        let kid = match parsed.kid {
            Some(kid) if !kid.is_empty() && kid.len() <= 256 => kid,
            _ => return Err(ValidationError::MissingKeyId),
        };
        let signed = &token[..header.len() + 1 + payload.len()];
        Ok(Jws { kid, typ: parsed.typ, signed, payload, signature })
    }

    /// The header as the hop trace shows it (`alg` is RS256: nothing else gets this far).
    pub fn header(&self) -> TokenHeader {
        TokenHeader { alg: "RS256".to_string(), typ: self.typ.clone(), kid: self.kid.clone() }
    }

    /// Checks the signature with `key`, then decodes the payload as `C`.
    pub fn verify<C: DeserializeOwned>(&self, key: &VerifyingKey) -> Result<C, ValidationError> {
        // An 8192-bit signature is 1024 bytes; anything longer cannot be valid.
        let mut signature = [0u8; 1024];
        let len =
            URL_SAFE_NO_PAD.decode_slice(self.signature, &mut signature).map_err(|_| ValidationError::BadSignature)?;
        key.verify_sig(self.signed.as_bytes(), &signature[..len]).map_err(|_| ValidationError::BadSignature)?;
        jwt::decode_payload(self.payload).map_err(|_| ValidationError::Malformed)
    }
}

/// The registered claims every token must carry and pass (RFC 7519 §4.1), borrowed from the
/// token's own claim set.
pub(crate) struct Registered<'a> {
    pub exp: Option<i64>,
    pub nbf: Option<i64>,
    pub iss: Option<&'a str>,
    pub aud: Option<&'a str>,
}

impl Registered<'_> {
    /// `exp` and `nbf` against `now` (seconds) with `leeway` either way; `iss` and `aud` against
    /// the trusted sets.
    pub fn check(&self, now: i64, leeway: i64, issuers: &Issuers, audiences: &[String]) -> Result<(), ValidationError> {
        let (Some(exp), Some(nbf), Some(iss), Some(aud)) = (self.exp, self.nbf, self.iss, self.aud) else {
            return Err(ValidationError::MissingClaim);
        };
        if now > exp.saturating_add(leeway) {
            return Err(ValidationError::Expired);
        }
        if nbf.saturating_sub(leeway) > now {
            return Err(ValidationError::NotYetValid);
        }
        if !issuers.trusts(iss) {
            return Err(ValidationError::WrongIssuer);
        }
        if !audiences.iter().any(|a| a == aud) {
            return Err(ValidationError::WrongAudience);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registered(exp: i64, nbf: i64) -> Registered<'static> {
        Registered { exp: Some(exp), nbf: Some(nbf), iss: Some("iss"), aud: Some("aud") }
    }

    #[test]
    fn time_claims_allow_the_leeway_and_not_a_second_more() {
        let (iss, aud) = (Issuers { v1: Some("iss".into()), v2: None }, vec!["aud".to_string()]);
        assert_eq!(registered(1_000, 0).check(1_060, 60, &iss, &aud), Ok(()));
        assert_eq!(registered(1_000, 0).check(1_061, 60, &iss, &aud), Err(ValidationError::Expired));
        assert_eq!(registered(2_000, 1_060).check(1_000, 60, &iss, &aud), Ok(()));
        assert_eq!(registered(2_000, 1_061).check(1_000, 60, &iss, &aud), Err(ValidationError::NotYetValid));
        assert_eq!(registered(i64::MAX, i64::MIN).check(0, i64::MAX, &iss, &aud), Ok(()), "no overflow");
    }

    #[test]
    fn every_registered_claim_is_required_and_matched_exactly() {
        let (iss, aud) = (Issuers { v1: Some("iss".into()), v2: None }, vec!["aud".to_string()]);
        let missing = Registered { iss: None, ..registered(10, 0) };
        assert_eq!(missing.check(5, 0, &iss, &aud), Err(ValidationError::MissingClaim));
        let wrong_iss = Registered { iss: Some("iss/"), ..registered(10, 0) };
        assert_eq!(wrong_iss.check(5, 0, &iss, &aud), Err(ValidationError::WrongIssuer));
        let empty = Registered { iss: Some(""), ..registered(10, 0) };
        assert_eq!(
            empty.check(5, 0, &iss, &aud),
            Err(ValidationError::WrongIssuer),
            "an unconfigured version trusts nothing"
        );
        let wrong_aud = Registered { aud: Some("AUD"), ..registered(10, 0) };
        assert_eq!(wrong_aud.check(5, 0, &iss, &aud), Err(ValidationError::WrongAudience));
    }

    #[test]
    fn a_signature_longer_than_any_rsa_key_is_refused() {
        let n = URL_SAFE_NO_PAD.encode([0xc5u8; 256]);
        let key = verifying_key(&n, "AQAB").unwrap();
        let long = URL_SAFE_NO_PAD.encode([1u8; 1025]);
        let token = format!("{}.e30.{long}", URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","kid":"k"}"#));
        let jws = Jws::parse(&token).unwrap();
        assert_eq!(jws.verify::<serde_json::Value>(&key).err(), Some(ValidationError::BadSignature));
    }
}
