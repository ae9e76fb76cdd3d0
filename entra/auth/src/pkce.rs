//! Proof Key for Code Exchange (RFC 7636), `S256` only: the client makes a verifier and sends
//! its challenge; the token endpoint checks that the verifier redeeming the code matches.

use aws_lc_rs::digest::{SHA256, digest};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use service_kit::secret::{self, RandomError};

/// A new verifier: 32 random bytes, base64url (43 characters, RFC 7636 §4.1).
pub fn verifier() -> Result<String, RandomError> {
    secret::urlsafe::<32>()
}

/// `BASE64URL(SHA256(verifier))`, the `S256` code challenge.
pub fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest(&SHA256, verifier.as_bytes()))
}

/// Whether `verifier` answers `challenge` (compared in constant time).
pub fn verifies(verifier: &str, challenge: &str) -> bool {
    secret::same(&self::challenge(verifier), challenge)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7636_appendix_b_example() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert_eq!(challenge(verifier), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
        assert!(verifies(verifier, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"));
        assert!(!verifies("another", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"));
        assert_eq!(super::verifier().unwrap().len(), 43);
    }
}
