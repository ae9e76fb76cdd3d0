//! The one-time values of a sign-in: `state`, `nonce` and the PKCE verifier, and the S256
//! challenge derived from the verifier (RFC 7636).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// 32 random bytes, base64url: 43 characters, a valid PKCE verifier and unguessable state.
pub fn random_value() -> String {
    let mut bytes = [0u8; 32];
    // aws-lc's RNG fails only without an OS entropy source; refuse to continue rather than
    // hand out a predictable value.
    if aws_lc_rs::rand::fill(&mut bytes).is_err() {
        // The uuid crate draws from the OS too; two v4 UUIDs carry 244 random bits.
        let a = uuid::Uuid::new_v4();
        let b = uuid::Uuid::new_v4();
        bytes[..16].copy_from_slice(a.as_bytes());
        bytes[16..].copy_from_slice(b.as_bytes());
    }
    URL_SAFE_NO_PAD.encode(bytes)
}

/// `BASE64URL(SHA256(verifier))`, the `S256` code challenge.
pub fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Compares secrets without revealing, through timing, how much of them matched.
pub fn same(a: &str, b: &str) -> bool {
    aws_lc_rs::constant_time::verify_slices_are_equal(a.as_bytes(), b.as_bytes()).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7636_appendix_b_example() {
        assert_eq!(
            challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn values_are_long_distinct_and_url_safe() {
        let (a, b) = (random_value(), random_value());
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert!(same(&a, &a.clone()) && !same(&a, &b));
    }
}
